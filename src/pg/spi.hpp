// SPI, the only way the extension runs SQL: prepared once per backend, executed with
// the search path pinned to pg_catalog (every name in our SQL is qualified anyway).
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard::pg {

// One SQL statement of the extension, prepared on first use and kept for the backend's life.
struct Statement {
    const char* sql;
    std::vector<Oid> arg_types;
    int cursor_options = 0;  // e.g. CURSOR_OPT_CUSTOM_PLAN where array sizes drive the plan
    SPIPlanPtr plan = nullptr;
};

struct Arg {
    Datum value = 0;
    bool is_null = true;

    static Arg null() { return {}; }
    static Arg of(Datum d) { return {d, false}; }
    static Arg text(std::string_view s);
    static Arg int8(std::int64_t v) { return of(Int64GetDatum(v)); }
    static Arg int4(std::int32_t v) { return of(Int32GetDatum(v)); }
    static Arg boolean(bool v) { return of(BoolGetDatum(v)); }
    template <typename T>
    static Arg optional_int8(const std::optional<T>& v) {
        return v ? int8(*v) : null();
    }
};

// The rows a statement returned. Owns SPI's result table and frees it when it goes out of
// scope: without that, every result stays in SPI's memory until SPI_finish, which in a
// CALL that commits between chunks is the end of the whole CALL. Must not outlive the
// SpiSession (or SPI connection) it came from.
class Rows {
  public:
    explicit Rows(SPITupleTable* table, std::uint64_t count) : table_(table), count_(count) {}
    ~Rows();
    Rows(Rows&& other) noexcept : table_(other.table_), count_(other.count_) {
        other.table_ = nullptr;
    }
    Rows(const Rows&) = delete;
    Rows& operator=(const Rows&) = delete;
    Rows& operator=(Rows&&) = delete;

    std::uint64_t size() const { return count_; }
    bool empty() const { return count_ == 0; }

    std::optional<Datum> datum(std::uint64_t row, int column) const;
    std::optional<std::string> text(std::uint64_t row, int column) const;
    std::optional<std::int64_t> int8(std::uint64_t row, int column) const;
    std::optional<std::int32_t> int4(std::uint64_t row, int column) const;
    std::optional<bool> boolean(std::uint64_t row, int column) const;
    // Copies a pass-by-reference value out of SPI's memory into the caller's context.
    std::optional<Datum> datum_for_caller(std::uint64_t row, int column) const;

  private:
    SPITupleTable* table_;
    std::uint64_t count_;
};

// An SPI connection for one SQL call. `kAsExtensionOwner` runs the statements as the
// owner of the extension's tables (callers only read them); `kAsCaller` keeps the caller's
// identity so that privileges and row-level security apply.
class SpiSession {
  public:
    enum class Identity { kAsExtensionOwner, kAsCaller };

    // A read-only session (for STABLE functions) sees the snapshot of the calling query;
    // otherwise each statement sees everything committed before it and our own writes.
    enum class Access { kReadWrite, kReadOnly };

    // kPinned: every statement sees only pg_catalog on its search path. kCallers: the
    // extension's statements are parsed with the path pinned (PinnedPlan, execute),
    // but run under the caller's own path, so that the caller's triggers, policies,
    // defaults and domain checks they fire resolve names as under a plain statement. The
    // plan cache analyses a statement again under the path it runs with: SQL run here
    // must still write every function, operator and type with its schema.
    enum class SearchPath { kPinned, kCallers };

    explicit SpiSession(Access access = Access::kReadWrite,
                        Identity identity = Identity::kAsExtensionOwner,
                        SearchPath path = SearchPath::kPinned);
    ~SpiSession();
    SpiSession(const SpiSession&) = delete;
    SpiSession& operator=(const SpiSession&) = delete;

    Identity identity() const { return identity_; }
    bool read_only() const { return read_only_; }
    // The role that called the extension (before the switch to the extension's owner).
    Oid caller() const { return switched_user_ ? saved_user_ : GetUserId(); }
    // The memory context that was current when the session connected: the one results
    // handed back to PostgreSQL are built in (SPI's own is freed at SPI_finish).
    MemoryContext caller_context() const { return caller_context_; }

    Rows execute(Statement& statement, std::initializer_list<Arg> args, long max_rows = 0) {
        return run(statement, args.begin(), args.size(), max_rows, false);
    }
    Rows execute(Statement& statement, const std::vector<Arg>& args, long max_rows = 0) {
        return run(statement, args.data(), args.size(), max_rows, false);
    }
    // A read under a snapshot taken now, whatever the isolation level: it sees every
    // transaction committed before it (a lock just taken makes that the last holder's).
    Rows execute_with_latest_snapshot(Statement& statement, std::initializer_list<Arg> args);

  private:
    Rows run(Statement& statement, const Arg* args, std::size_t count, long max_rows,
             bool latest_snapshot);

    bool read_only_;
    Identity identity_;
    MemoryContext caller_context_ = CurrentMemoryContext;
    Oid saved_user_ = InvalidOid;
    int saved_security_context_ = 0;
    bool switched_user_ = false;
    bool pushed_search_path_ = false;
    bool pinned_for_statements_ = false;
};

// A raw SPI connection that may commit (SpiSession's connections are atomic): for C
// procedures called with CALL outside a transaction block (CallContext.atomic false).
class NonAtomicSpi {
  public:
    NonAtomicSpi();
    ~NonAtomicSpi();
    NonAtomicSpi(const NonAtomicSpi&) = delete;
    NonAtomicSpi& operator=(const NonAtomicSpi&) = delete;

    // Commits the transaction and starts a new one.
    void commit();
};

// Whether the extension's table has the column: a database still at an older version of
// the extension lacks the newer columns, and the library serves it too.
bool extension_column_exists(const char* table, const char* column);

// SQL built by the extension, prepared with the search path pinned to pg_catalog; the plan
// then runs under whatever path is current, where the plan cache analyses it again: the
// SQL must qualify every name anyway.
// The plan is freed when this goes out of scope: an unsaved plan otherwise lives as long
// as the SPI procedure, and a CALL that commits chunk after chunk would keep every one.
class PinnedPlan {
  public:
    PinnedPlan(const std::string& sql, const std::vector<Oid>& types);
    ~PinnedPlan();
    PinnedPlan(const PinnedPlan&) = delete;
    PinnedPlan& operator=(const PinnedPlan&) = delete;
    SPIPlanPtr get() const { return plan_; }

  private:
    SPIPlanPtr plan_;
};

// The role that owns the extension's schema (and so its tables).
Oid extension_owner();

}  // namespace batchguard::pg
