// The extension's configuration parameters (batchguard.*), defined in _PG_init.
#pragma once

namespace batchguard::settings {

// Least time between two progress events (NOTIFY) of one job from one session, in ms
// (0: one per committed transaction that changed the job).
extern int notify_interval_ms;

// Whether complete_item, fail_item and save_checkpoint create the batch of an unknown
// job ("lazy" batches); off: they need a batch made by start_batch.
extern bool lazy_batches;

// Background workers (see docs/operations.md).
extern bool enable_worker;
extern char* database_names;            // comma-separated list of databases to maintain
extern int cleanup_interval_s;          // seconds between maintenance rounds
extern int finished_batch_retention_s;  // -1: keep finished batches forever

// Backups (see docs/operations.md).
extern char* backup_directory;  // superuser only; relative to the data directory
inline constexpr const char* kDefaultBackupDirectory = "pg_batchguard";
extern int backup_retention_s;      // default retention of a new backup
extern int max_backup_retention_s;  // longest retention export/extend accept
extern int compression_level;       // zstd level
extern int compression_workers;     // zstd worker threads per export
// Whether an export or a delete with backup that selects no rows may make an empty
// backup (with a NOTICE); off: it is an error.
extern bool allow_empty_backups;
// batchguard.max_backup_bytes[_per_owner], stored in kB (GUC_UNIT_KB); -1 = no limit.
extern int max_backup_bytes_kb;            // all backups of a database
extern int max_backup_bytes_per_owner_kb;  // one owner's backups
// Where new backups go (batchguard.backup_storage).
enum BackupStorage { kStorageDatabase = 0, kStorageFile = 1 };
extern int backup_storage;
// With file storage: a protected table's backup of fewer bytes of rows than this (kB) is
// kept in the database anyway — one WAL flush at commit instead of a file's fsyncs.
extern int small_backup_in_database_kb;
extern int quarantine_period_s;  // how long quarantined files are kept before deletion
// Discovery through foreign keys follows references from tables owned by another role
// than the source table's owner (their code then runs as the caller).
extern bool follow_foreign_owners;

void define();

}  // namespace batchguard::settings
