#include "pg/spi.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "utils/inval.h"
#include "utils/snapmgr.h"
}

#include <exception>

namespace batchguard::pg {

namespace {
// Outside class Rows, whose member text() hides the type name the macro uses.
::text* detoast_text(Datum value) { return DatumGetTextPP(value); }
}  // namespace

Arg Arg::text(std::string_view s) {
    return of(pg_call([&] {
        return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
    }));
}

Rows::~Rows() {
    // After a PostgreSQL error the transaction's abort frees SPI's memory itself.
    if (table_ == nullptr || std::uncaught_exceptions() > 0) return;
    try {
        pg_call([&] { SPI_freetuptable(table_); });
    } catch (...) {
    }
}

std::optional<Datum> Rows::datum(std::uint64_t row, int column) const {
    bool is_null = false;
    Datum value = pg_call(
        [&] { return SPI_getbinval(table_->vals[row], table_->tupdesc, column, &is_null); });
    if (is_null) return std::nullopt;
    return value;
}

std::optional<std::string> Rows::text(std::uint64_t row, int column) const {
    auto value = datum(row, column);
    if (!value) return std::nullopt;
    ::text* t = pg_call([&] { return detoast_text(*value); });
    return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

std::optional<std::int64_t> Rows::int8(std::uint64_t row, int column) const {
    auto value = datum(row, column);
    if (!value) return std::nullopt;
    return DatumGetInt64(*value);
}

std::optional<std::int32_t> Rows::int4(std::uint64_t row, int column) const {
    auto value = datum(row, column);
    if (!value) return std::nullopt;
    return DatumGetInt32(*value);
}

std::optional<bool> Rows::boolean(std::uint64_t row, int column) const {
    auto value = datum(row, column);
    if (!value) return std::nullopt;
    return DatumGetBool(*value);
}

std::optional<Datum> Rows::datum_for_caller(std::uint64_t row, int column) const {
    auto value = datum(row, column);
    if (!value) return std::nullopt;
    Form_pg_attribute attribute = TupleDescAttr(table_->tupdesc, column - 1);
    return pg_call(
        [&] { return SPI_datumTransfer(*value, attribute->attbyval, attribute->attlen); });
}

NonAtomicSpi::NonAtomicSpi() {
    pg_call([] {
        if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect_ext failed");
    });
}

NonAtomicSpi::~NonAtomicSpi() {
    // After a PostgreSQL error, transaction abort releases the connection.
    if (std::uncaught_exceptions() > 0) return;
    try {
        pg_call([] { SPI_finish(); });
    } catch (...) {
    }
}

void NonAtomicSpi::commit() {
    pg_call([] { SPI_commit(); });
}

bool extension_column_exists(const char* table, const char* column) {
    return pg_call([&] {
        const Oid schema = get_namespace_oid("batchguard", true);
        const Oid relation = OidIsValid(schema) ? get_relname_relid(table, schema) : InvalidOid;
        return OidIsValid(relation) && get_attnum(relation, column) != InvalidAttrNumber;
    });
}

namespace {
// The owner of the schema batchguard, which SPI sessions run as: looked up once, forgotten
// when any schema changes (ALTER SCHEMA ... OWNER TO or RENAME, DROP EXTENSION and a new
// CREATE EXTENSION by another role).
Oid cached_extension_owner = InvalidOid;
std::uint64_t schema_generation = 0;
bool schema_callback_registered = false;

void forget_extension_owner(Datum, int, uint32) {
    cached_extension_owner = InvalidOid;
    ++schema_generation;
}
}  // namespace

Oid extension_owner() {
    if (OidIsValid(cached_extension_owner)) return cached_extension_owner;
    const std::uint64_t generation = schema_generation;
    const Oid owner = pg_call([] {
        if (!schema_callback_registered) {
            CacheRegisterSyscacheCallback(NAMESPACEOID, forget_extension_owner, 0);
            schema_callback_registered = true;
        }
        Oid schema = get_namespace_oid("batchguard", false);
        HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for schema %u", schema);
        Oid owner = ((Form_pg_namespace)GETSTRUCT(tuple))->nspowner;
        ReleaseSysCache(tuple);
        return owner;
    });
    // Kept unless a change arrived during the lookup itself.
    if (generation == schema_generation) cached_extension_owner = owner;
    return owner;
}

namespace {
// Pushes the pinned path for one scope (unless the session already pinned it for good).
class PinnedPath {
  public:
    explicit PinnedPath(bool needed) : pushed_(needed) {
        if (!pushed_) return;
        pg_call([] {
            OverrideSearchPath path{NIL, true, false, 0};
            PushOverrideSearchPath(&path);
        });
    }
    ~PinnedPath() {
        if (!pushed_ || std::uncaught_exceptions() > 0) return;  // the abort pops it
        try {
            pg_call([] { PopOverrideSearchPath(); });
        } catch (...) {
        }
    }
    PinnedPath(const PinnedPath&) = delete;
    PinnedPath& operator=(const PinnedPath&) = delete;

  private:
    bool pushed_;
};

bool path_is_pinned() {
    return pg_call([] {
        List* path = fetch_search_path(true);
        // The pinned path: pg_catalog alone (and the temp schema never, see above).
        const bool pinned = list_length(path) == 1 && linitial_oid(path) == PG_CATALOG_NAMESPACE;
        list_free(path);
        return pinned;
    });
}
}  // namespace

PinnedPlan::PinnedPlan(const std::string& sql, const std::vector<Oid>& types) {
    PinnedPath pin(!path_is_pinned());
    plan_ = pg_call([&] {
        SPIPlanPtr plan = SPI_prepare(sql.c_str(), static_cast<int>(types.size()),
                                      const_cast<Oid*>(types.data()));
        if (plan == nullptr)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        return plan;
    });
}

PinnedPlan::~PinnedPlan() {
    if (std::uncaught_exceptions() > 0) return;  // the abort frees the procedure's memory
    try {
        pg_call([&] { SPI_freeplan(plan_); });
    } catch (...) {
    }
}

SpiSession::SpiSession(Access access, Identity identity, SearchPath search_path)
    : read_only_(access == Access::kReadOnly),
      identity_(identity),
      pinned_for_statements_(search_path == SearchPath::kCallers) {
    Oid owner = identity == Identity::kAsExtensionOwner ? extension_owner() : InvalidOid;
    // One guarded call for both (this runs for every per-item call).
    const bool pin_path = !pinned_for_statements_;
    pg_call([&] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        // pg_catalog only: nothing a caller puts on its search_path can capture our names.
        if (pin_path) {
            OverrideSearchPath path{NIL, true, false, 0};
            PushOverrideSearchPath(&path);
        }
    });
    pushed_search_path_ = pin_path;
    if (OidIsValid(owner)) {
        GetUserIdAndSecContext(&saved_user_, &saved_security_context_);
        SetUserIdAndSecContext(owner, saved_security_context_ | SECURITY_LOCAL_USERID_CHANGE);
        switched_user_ = true;
    }
}

SpiSession::~SpiSession() {
    if (switched_user_) SetUserIdAndSecContext(saved_user_, saved_security_context_);
    // After a PostgreSQL error, transaction abort releases SPI and the override search
    // path itself; touching them here could raise a second error inside a destructor.
    if (std::uncaught_exceptions() > 0) return;
    try {
        const bool pop_path = pushed_search_path_;
        pg_call([&] {
            if (pop_path) PopOverrideSearchPath();
            SPI_finish();
        });
    } catch (...) {
        // Nothing to do: the transaction's abort cleans up what is left.
    }
}

Rows SpiSession::execute_with_latest_snapshot(Statement& statement,
                                              std::initializer_list<Arg> args) {
    return run(statement, args.begin(), args.size(), 0, true);
}

Rows SpiSession::run(Statement& statement, const Arg* args, std::size_t count, long max_rows,
                     bool latest_snapshot) {
    if (count != statement.arg_types.size())
        throw Error(sqlstate::kInternalError, "wrong number of arguments for a prepared statement");
    check_for_interrupts();
    PinnedPath pin(pinned_for_statements_);
    if (statement.plan == nullptr) {
        pg_call([&] {
            SPIPlanPtr plan = SPI_prepare_cursor(
                statement.sql, static_cast<int>(statement.arg_types.size()),
                const_cast<Oid*>(statement.arg_types.data()), statement.cursor_options);
            if (plan == nullptr)
                elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
            SPI_keepplan(plan);
            statement.plan = plan;
        });
    }
    // On the stack for the usual few arguments: this runs for every per-item call.
    constexpr std::size_t kInline = 8;
    Datum inline_values[kInline];
    char inline_nulls[kInline];
    std::vector<Datum> more_values;
    std::vector<char> more_nulls;
    Datum* values = inline_values;
    char* nulls = inline_nulls;
    if (count > kInline) {
        more_values.resize(count);
        more_nulls.resize(count);
        values = more_values.data();
        nulls = more_nulls.data();
    }
    for (std::size_t i = 0; i < count; ++i) {
        values[i] = args[i].value;
        nulls[i] = args[i].is_null ? 'n' : ' ';
    }
    std::uint64_t processed = pg_call([&] {
        int rc = latest_snapshot
                     ? SPI_execute_snapshot(statement.plan, values, nulls, GetLatestSnapshot(),
                                            InvalidSnapshot, true, false, max_rows)
                     : SPI_execute_plan(statement.plan, values, nulls, read_only_, max_rows);
        if (rc < 0) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
        return SPI_processed;
    });
    return Rows(SPI_tuptable, processed);
}

}  // namespace batchguard::pg
