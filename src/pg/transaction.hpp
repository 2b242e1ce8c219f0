// Requirements on the caller's transaction.
#pragma once

namespace batchguard::pg {

// Throws 0A000 naming `function` unless the transaction is READ COMMITTED: under a
// transaction snapshot (REPEATABLE READ, SERIALIZABLE), rows locked with SKIP LOCKED or
// re-read after a lock wait would raise serialization failures. `hint` says what to do
// instead, for this function.
void require_read_committed(const char* function, const char* hint);

}  // namespace batchguard::pg
