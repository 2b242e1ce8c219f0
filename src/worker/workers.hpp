// Background workers: one launcher, one maintenance worker per database of
// batchguard.database_names (see docs/operations.md).
#pragma once

namespace batchguard::worker {

// Registers the launcher; called from _PG_init while shared_preload_libraries loads us.
void register_launcher();

// In binary upgrade mode (pg_upgrade): refuses to start the old cluster (FATAL) while file
// backups are under its data directory, where pg_upgrade would leave them behind.
void refuse_upgrade_leaving_files_behind();

}  // namespace batchguard::worker
