#include "pg/settings.hpp"

#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/varlena.h"
}

namespace batchguard::settings {

int notify_interval_ms = 250;
bool lazy_batches = true;
bool allow_empty_backups = true;
bool enable_worker = true;
char* database_names = nullptr;
int cleanup_interval_s = 600;
int finished_batch_retention_s = -1;
char* backup_directory = nullptr;
int backup_retention_s = 7 * 24 * 3600;
int max_backup_retention_s = 365 * 24 * 3600;
int compression_level = 3;
int compression_workers = 1;
int max_backup_bytes_kb = -1;
int max_backup_bytes_per_owner_kb = -1;
int backup_storage = kStorageDatabase;
int small_backup_in_database_kb = 256;
int quarantine_period_s = 7 * 24 * 3600;
bool follow_foreign_owners = false;

namespace {

const struct config_enum_entry storage_options[] = {
    {"database", kStorageDatabase, false}, {"file", kStorageFile, false}, {nullptr, 0, false}};

// A list of database names, as in shared_preload_libraries: comma-separated, quotes allowed.
bool check_database_names(char** newval, void**, GucSource) {
    char* copy = pstrdup(*newval);
    List* names = nullptr;
    const bool valid = SplitIdentifierString(copy, ',', &names);
    if (!valid) GUC_check_errdetail("List syntax is invalid.");
    list_free(names);
    pfree(copy);
    return valid;
}

// Not empty, and short enough to leave room for the database and file names.
bool check_backup_directory(char** newval, void**, GucSource) {
    if (*newval == nullptr || (*newval)[0] == '\0') {
        GUC_check_errdetail("batchguard.backup_directory must not be empty.");
        return false;
    }
    if (strlen(*newval) > MAXPGPATH - 128) {
        GUC_check_errdetail("batchguard.backup_directory is too long.");
        return false;
    }
    return true;
}

}  // namespace

void define() {
    DefineCustomIntVariable(
        "batchguard.notify_interval",
        "Least time between two progress events (NOTIFY) of one job from one session.",
        "Each event takes a database-wide lock at commit; 0 sends one per committed "
        "transaction that changed the job.",
        &notify_interval_ms, 250, 0, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomBoolVariable(
        "batchguard.lazy_batches",
        "complete_item, fail_item and save_checkpoint create the batch of an unknown job.",
        "Off: they need a batch made by start_batch(), so a mistyped job id is an error.",
        &lazy_batches, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "batchguard.allow_empty_backups",
        "An export or a delete with backup that selects no rows makes an empty backup.",
        "It always says so with a NOTICE; off makes it an error (nothing is written).",
        &allow_empty_backups, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "batchguard.follow_foreign_owners",
        "Lets backups and deletes follow foreign keys into tables of other owners.",
        "Off: a reference from a table owned by another role than the source table's owner "
        "is refused, because its triggers, policies and types would run as the caller.",
        &follow_foreign_owners, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "batchguard.enable_worker", "Runs pg_batchguard's maintenance workers.",
        "Needs shared_preload_libraries = 'pg_batchguard'. Without them, schedule "
        "batchguard.run_maintenance() or batchguard.cleanup_expired_backups() with pg_cron.",
        &enable_worker, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "batchguard.database_names", "Databases that pg_batchguard's workers maintain.",
        "Comma-separated. A listed database without the extension is skipped until it has it.",
        &database_names, "", PGC_SIGHUP, GUC_LIST_INPUT, check_database_names, nullptr, nullptr);
    DefineCustomIntVariable("batchguard.cleanup_interval",
                            "Time between two maintenance rounds of a worker.", nullptr,
                            &cleanup_interval_s, 600, 1, 7 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "batchguard.finished_batch_retention",
        "How long completed, failed and cancelled batches are kept after their last change.",
        "-1 keeps them until cleanup_checkpoint() discards them. The workers use the server's "
        "setting; a superuser may set it for the rounds of its own session.",
        &finished_batch_retention_s, -1, -1, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomStringVariable(
        "batchguard.backup_directory",
        "Directory of backup files (one subdirectory per database); a relative path is "
        "inside the data directory.",
        "Backup files are node-local: pg_dump, replicas and pg_upgrade do not carry them.",
        &backup_directory, kDefaultBackupDirectory, PGC_SIGHUP, GUC_SUPERUSER_ONLY,
        check_backup_directory, nullptr, nullptr);
    DefineCustomIntVariable(
        "batchguard.backup_retention",
        "How long a new backup is kept when export_backup is given no retention.", nullptr,
        &backup_retention_s, 7 * 24 * 3600, 60, INT_MAX, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "batchguard.max_backup_retention",
        "The longest retention a backup can be given (export_backup, extend_backup).", nullptr,
        &max_backup_retention_s, 365 * 24 * 3600, 60, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable("batchguard.compression_level", "zstd compression level of backups.",
                            nullptr, &compression_level, 3, 1, 19, PGC_USERSET, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable(
        "batchguard.compression_workers",
        "zstd worker threads per export (0 compresses in the backend process itself).", nullptr,
        &compression_workers, 1, 0, 8, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("batchguard.max_backup_bytes",
                            "Total size of the backup files of a database; -1 means no limit.",
                            nullptr, &max_backup_bytes_kb, -1, -1, INT_MAX, PGC_SUSET, GUC_UNIT_KB,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("batchguard.max_backup_bytes_per_owner",
                            "Total size of one owner's backup files; -1 means no limit.", nullptr,
                            &max_backup_bytes_per_owner_kb, -1, -1, INT_MAX, PGC_SUSET, GUC_UNIT_KB,
                            nullptr, nullptr, nullptr);
    DefineCustomEnumVariable(
        "batchguard.backup_storage", "Where new backups are stored: in the database or in files.",
        "database (the default) keeps a backup's bytes in batchguard.backup_chunks, WAL-logged "
        "with the exporting transaction: they replicate and survive failover and PITR. file "
        "writes node-local files under batchguard.backup_directory.",
        &backup_storage, kStorageDatabase, storage_options, PGC_SUSET, 0, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "batchguard.small_backup_in_database",
        "With backup_storage = file, a protected table's backup of rows smaller than this is "
        "kept in the database.",
        "A file costs several fsyncs per deleting transaction; in the database the backup is "
        "WAL-logged with the commit. 0 writes every backup to a file.",
        &small_backup_in_database_kb, 256, 0, 1024 * 1024, PGC_SUSET, GUC_UNIT_KB, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "batchguard.quarantine_period",
        "How long orphan backup files and the folders of dropped databases stay in quarantine "
        "before they are deleted.",
        "Files of backups on legal hold are never deleted from the folder of a dropped database.",
        &quarantine_period_s, 7 * 24 * 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
}

}  // namespace batchguard::settings
