// The extension's configuration parameters (batchguard.*), defined in _PG_init.
#pragma once

namespace batchguard::settings {

// Background workers (see docs/operations.md).
extern bool enable_worker;
extern char* database_names;         // comma-separated list of databases to maintain
extern int cleanup_interval_s;       // seconds between maintenance rounds
extern int finished_batch_retention_s;  // -1: keep finished batches forever

void define();

}  // namespace batchguard::settings
