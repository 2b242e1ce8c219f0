// Memory contexts from C++ (docs/internals.md, "Memory contexts"): a scratch context that
// a loop resets per row, chunk or item, and a scoped switch of CurrentMemoryContext. Both
// undo themselves in their destructors, which always run (PostgreSQL errors reach C++
// frames as exceptions, see pg/guard.hpp).
#pragma once
#include "pg/postgres.hpp"

namespace batchguard::pg {

// A child of the current memory context, deleted with the object.
class ScratchContext {
  public:
    // `name` must outlive the context (a string literal).
    explicit ScratchContext(const char* name);
    ~ScratchContext();
    ScratchContext(const ScratchContext&) = delete;
    ScratchContext& operator=(const ScratchContext&) = delete;

    MemoryContext get() const { return context_; }
    // Frees everything allocated in it since the last reset.
    void reset() { MemoryContextReset(context_); }

  private:
    MemoryContext context_;
};

// Makes `context` the current memory context until the end of the scope.
class ContextSwitch {
  public:
    explicit ContextSwitch(MemoryContext context) : saved_(MemoryContextSwitchTo(context)) {}
    ~ContextSwitch() { MemoryContextSwitchTo(saved_); }
    ContextSwitch(const ContextSwitch&) = delete;
    ContextSwitch& operator=(const ContextSwitch&) = delete;

  private:
    MemoryContext saved_;
};

}  // namespace batchguard::pg
