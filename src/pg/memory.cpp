#include "pg/memory.hpp"

#include "pg/guard.hpp"

namespace batchguard::pg {

ScratchContext::ScratchContext(const char* name)
    : context_(pg_call([&] {
          return AllocSetContextCreateInternal(CurrentMemoryContext, name, ALLOCSET_DEFAULT_SIZES);
      })) {}

ScratchContext::~ScratchContext() {
    // The current context must never be left pointing into a deleted one.
    if (CurrentMemoryContext == context_) MemoryContextSwitchTo(context_->parent);
    MemoryContextDelete(context_);
}

}  // namespace batchguard::pg
