// The three guards of the C++/PostgreSQL boundary (see docs/internals.md):
//   SQL entry guard   BATCHGUARD_FUNCTION: no C++ exception reaches PostgreSQL.
//   PostgreSQL calls  pg_call(): no PostgreSQL error skips a C++ destructor.
//   Callbacks         guard_callback(): a transaction callback never raises an ERROR.
//                     raising_callback(): a callback that feeds PostgreSQL's own work
//                     (COPY's data source) raises what it throws as an ERROR.
#pragma once
#include "pg/postgres.hpp"

#include "core/error.hpp"

#include <string>
#include <type_traits>
#include <utility>

namespace batchguard::pg {

// A PostgreSQL error caught by pg_call, carried through C++ frames and re-raised
// unchanged (same ErrorData) by the entry guard.
class PgError {
  public:
    explicit PgError(ErrorData* data) noexcept : data_(data) {}
    ErrorData* data() const noexcept { return data_; }

  private:
    ErrorData* data_;
};

// Runs fn(arg) under PG_TRY; returns the caught error (flushed, copied into the
// caller's memory context) or nullptr. fn must never throw a C++ exception.
ErrorData* run_catching(void (*fn)(void*), void* arg);

// Runs `body` (which only calls PostgreSQL, never throws) and turns a PostgreSQL error
// into a PgError, so that C++ destructors run before the entry guard re-raises it.
template <typename Body>
auto pg_call(Body&& body) -> decltype(body()) {
    using Result = decltype(body());
    if constexpr (std::is_void_v<Result>) {
        ErrorData* error = run_catching([](void* b) { (*static_cast<Body*>(b))(); }, &body);
        if (error != nullptr) throw PgError(error);
    } else {
        Result result{};
        auto store = [&] { result = body(); };
        ErrorData* error =
            run_catching([](void* s) { (*static_cast<decltype(store)*>(s))(); }, &store);
        if (error != nullptr) throw PgError(error);
        return result;
    }
}

// CHECK_FOR_INTERRUPTS through the wrapper: a cancel or statement_timeout unwinds C++ frames.
inline void check_for_interrupts() {
    if (unlikely(INTERRUPTS_PENDING_CONDITION())) pg_call([] { CHECK_FOR_INTERRUPTS(); });
}

// Names the object the current SQL call works on in every error it raises (errcontext).
void set_error_context(std::string context);

Datum run_guarded(FunctionCallInfo fcinfo, Datum (*body)(FunctionCallInfo)) noexcept;

// Commit/abort callbacks must never raise an ERROR: anything thrown is logged as a WARNING.
void guard_callback(const char* what, void (*body)(void*), void* arg) noexcept;

// Runs fn(arg); anything it throws is raised as a PostgreSQL ERROR once fn's C++ frames
// are gone (as the entry guard raises it).
void run_raising(void (*fn)(void*), void* arg) noexcept;

// For a callback PostgreSQL calls in the middle of its own work (COPY FROM's data source):
// `body` may throw; the error then unwinds body's C++ frames and is raised in PostgreSQL
// (a longjmp through PostgreSQL's frames only, to the pg_call that started that work).
template <typename Body>
auto raising_callback(Body&& body) noexcept -> decltype(body()) {
    decltype(body()) result{};
    auto store = [&] { result = body(); };
    run_raising([](void* s) { (*static_cast<decltype(store)*>(s))(); }, &store);
    return result;
}

}  // namespace batchguard::pg

// Declares a SQL-callable function whose C++ body runs inside the entry guard.
#define BATCHGUARD_FUNCTION(name)                                                             \
    static Datum name##_body(FunctionCallInfo fcinfo);                                        \
    extern "C" {                                                                              \
    PG_FUNCTION_INFO_V1(name);                                                                \
    Datum name(PG_FUNCTION_ARGS) { return batchguard::pg::run_guarded(fcinfo, name##_body); } \
    }                                                                                         \
    static Datum name##_body(FunctionCallInfo fcinfo)
