#include "pg/guard.hpp"

#include <cstring>
#include <exception>
#include <new>
#include <optional>

namespace batchguard::pg {

namespace {

// The context string of the innermost guarded call, read by the errcontext callback.
struct CallContext {
    std::string text;
    // The text copied into palloc'd memory just before an error is raised: the raise
    // longjmps over this frame, so the std::string must already be freed by then.
    const char* raised = nullptr;
};
CallContext* active_call = nullptr;

void error_context_callback(void* arg) {
    auto* call = static_cast<CallContext*>(arg);
    if (call->raised != nullptr)
        errcontext("%s", call->raised);
    else if (!call->text.empty())
        errcontext("%s", call->text.c_str());
}

// Copies into palloc'd memory without ever raising an error (we are about to raise one).
char* copy_for_ereport(const std::string& text) {
    auto* copy = static_cast<char*>(
        MemoryContextAllocExtended(CurrentMemoryContext, text.size() + 1, MCXT_ALLOC_NO_OOM));
    if (copy == nullptr) return nullptr;
    std::memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

struct PendingError {
    const char* sqlstate;
    std::string message, detail, hint;
};

// What a guarded frame caught, kept until the frame's C++ scopes are gone.
struct CaughtError {
    ErrorData* pg_error = nullptr;  // a PostgreSQL error, re-raised as it is
    std::optional<PendingError> error;
    bool out_of_memory = false;
};

// Classifies the exception being handled; called from inside a `catch (...)`.
void capture(CaughtError& caught) noexcept {
    try {
        throw;
    } catch (const PgError& e) {
        caught.pg_error = e.data();
    } catch (const Error& e) {
        try {
            caught.error.emplace(PendingError{e.sqlstate(), e.what(), e.detail(), e.hint()});
        } catch (...) {
            caught.out_of_memory = true;
        }
    } catch (const std::bad_alloc&) {
        caught.out_of_memory = true;
    } catch (const std::exception& e) {
        try {
            caught.error.emplace(PendingError{sqlstate::kInternalError, e.what(), {}, {}});
        } catch (...) {
            caught.out_of_memory = true;
        }
    } catch (...) {
        caught.error.emplace();  // no allocation: reported as "internal error"
        caught.error->sqlstate = sqlstate::kInternalError;
    }
}

// Raises what `capture` caught as a PostgreSQL error. Call it outside every catch scope,
// with no C++ object left on the frames it longjmps over: it frees the caught strings itself.
[[noreturn]] void raise_caught(CaughtError& caught) noexcept {
    if (caught.pg_error != nullptr) ReThrowError(caught.pg_error);
    if (caught.out_of_memory)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
    const PendingError& error = *caught.error;
    const char* state = error.sqlstate;
    char* message = copy_for_ereport(error.message.empty() ? "internal error" : error.message);
    char* detail = error.detail.empty() ? nullptr : copy_for_ereport(error.detail);
    char* hint = error.hint.empty() ? nullptr : copy_for_ereport(error.hint);
    caught.error.reset();  // frees the C++ strings before the longjmp
    ereport(ERROR, (errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])),
                    errmsg("%s", message ? message : "out of memory"),
                    detail ? errdetail("%s", detail) : 0, hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

}  // namespace

ErrorData* run_catching(void (*fn)(void*), void* arg) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile caught = nullptr;
    PG_TRY();
    { fn(arg); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        caught = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    return caught;
}

void set_error_context(std::string context) {
    if (active_call != nullptr) active_call->text = std::move(context);
}

Datum run_guarded(FunctionCallInfo fcinfo, Datum (*body)(FunctionCallInfo)) noexcept {
    CallContext call;
    CallContext* outer_call = active_call;
    ErrorContextCallback callback{error_context_stack, error_context_callback, &call};
    error_context_stack = &callback;
    active_call = &call;

    CaughtError caught;
    try {
        Datum result = body(fcinfo);
        error_context_stack = callback.previous;
        active_call = outer_call;
        return result;
    } catch (...) {
        capture(caught);
    }
    active_call = outer_call;

    // Outside every catch scope now: raising a PostgreSQL error (longjmp) is safe.
    // Every C++ object of this frame is freed before the longjmp skips its destructor (a
    // worker raising PB001 all day on one connection would leak them one by one).
    if (call.text.size() > 0) call.raised = copy_for_ereport(call.text);
    std::string().swap(call.text);
    // A PostgreSQL error already carries its context.
    if (caught.pg_error != nullptr) error_context_stack = callback.previous;
    raise_caught(caught);
}

void run_raising(void (*fn)(void*), void* arg) noexcept {
    CaughtError caught;
    try {
        fn(arg);
        return;
    } catch (...) {
        capture(caught);
    }
    // Outside every catch scope: fn's frames are gone, a longjmp skips no destructor.
    raise_caught(caught);
}

void guard_callback(const char* what, void (*body)(void*), void* arg) noexcept {
    bool failed = false;
    char* failure = nullptr;  // palloc'd inside the catch without ever raising an error
    try {
        body(arg);
    } catch (const PgError& e) {
        failed = true;
        failure = e.data()->message;
    } catch (const std::exception& e) {
        failed = true;
        failure = copy_for_ereport(e.what());
    } catch (...) {
        failed = true;
    }
    if (failed) {
        // A WARNING returns normally: a failing callback must not turn into a PANIC.
        ereport(WARNING, (errmsg("pg_batchguard: %s failed: %s", what,
                                 failure ? failure : "unknown error")));
    }
}

}  // namespace batchguard::pg
