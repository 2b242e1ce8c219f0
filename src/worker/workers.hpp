// Background workers: one launcher, one maintenance worker per database of
// batchguard.database_names (see docs/operations.md).
#pragma once

namespace batchguard::worker {

// Registers the launcher; called from _PG_init while shared_preload_libraries loads us.
void register_launcher();

}  // namespace batchguard::worker
