// The launcher keeps exactly one maintenance worker running per configured database that
// exists: it starts missing ones, restarts those that stopped (pg_terminate_backend, a
// crash) and stops those whose database left the list. It only reads shared catalogs.
#include "pg/postgres.hpp"
#include "core/backup_file_name.hpp"
#include "core/backup_folders.hpp"
#include "pg/instance.hpp"
#include "pg/files.hpp"
#include "pg/settings.hpp"
#include "worker/workers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "utils/snapmgr.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/varlena.h"

PGDLLEXPORT void batchguard_launcher_main(Datum);
}

namespace batchguard::worker {

namespace {

constexpr int kMaxDatabases = 64;
constexpr long kRestartDelayMs =
    1000;  // a worker that keeps dying is restarted at most once a second

// Plain C data: the launcher's loop never holds C++ objects across PostgreSQL calls.
struct Slot {
    char database[NAMEDATALEN];
    BackgroundWorkerHandle* handle;
    TimestampTz started_at;
};
Slot slots[kMaxDatabases];
int slot_count = 0;

bool worker_alive(Slot& slot) {
    pid_t pid;
    return slot.handle != nullptr && GetBackgroundWorkerPid(slot.handle, &pid) != BGWH_STOPPED;
}

void start_worker(Slot& slot) {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;  // the launcher decides
    strlcpy(worker.bgw_library_name, "pg_batchguard", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "batchguard_worker_main", BGW_MAXLEN);
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_batchguard worker %s", slot.database);
    strlcpy(worker.bgw_type, "pg_batchguard worker", BGW_MAXLEN);
    strlcpy(worker.bgw_extra, slot.database, BGW_EXTRALEN);
    worker.bgw_notify_pid = MyProcPid;
    slot.started_at = GetCurrentTimestamp();
    if (!RegisterDynamicBackgroundWorker(&worker, &slot.handle)) {
        slot.handle = nullptr;
        ereport(LOG, (errmsg("pg_batchguard: could not start a worker for database \"%s\"",
                             slot.database),
                      errhint("Raise max_worker_processes.")));
    }
}

void stop_worker(Slot& slot) {
    if (slot.handle != nullptr) {
        TerminateBackgroundWorker(slot.handle);
        pfree(slot.handle);
        slot.handle = nullptr;
    }
}

// Whether a database exists and accepts connections. Without a database of its own, the
// launcher can only scan pg_database itself (as the autovacuum launcher does).
bool database_exists(const char* name) {
    bool found = false;
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while (!found && HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection))) {
        auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
        found = strcmp(NameStr(db->datname), name) == 0 && db->datallowconn;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    return found;
}

// The databases to maintain now: listed, and existing.
int wanted_databases(char names[][NAMEDATALEN]) {
    if (!settings::enable_worker || settings::database_names == nullptr) return 0;
    char* copy = pstrdup(settings::database_names);
    List* list = nullptr;
    int count = 0;
    if (SplitIdentifierString(copy, ',', &list)) {
        ListCell* cell;
        foreach (cell, list) {
            const char* name = static_cast<const char*>(lfirst(cell));
            if (count < kMaxDatabases && database_exists(name))
                strlcpy(names[count++], name, NAMEDATALEN);
        }
    }
    list_free(list);
    pfree(copy);
    return count;
}

// The oids of every database (a List of Oid).
List* database_oids() {
    List* oids = NIL;
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
        oids = lappend_oid(oids, reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple))->oid);
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    MemoryContext list_context = TopMemoryContext;
    MemoryContext previous = MemoryContextSwitchTo(list_context);
    List* copy = list_copy(oids);
    MemoryContextSwitchTo(previous);
    CommitTransactionCommand();
    return copy;
}

// Things said once per launcher lifetime (folders left alone, files kept for a hold). Not
// on the stack: no longjmp can skip its destructor.
std::set<std::string>* said_once = nullptr;
bool first_time(const std::string& what) {
    if (said_once == nullptr) said_once = new std::set<std::string>();
    return said_once->insert(what).second;
}

const char* base_directory() { return batchguard::pg::backup_directory(); }

// The owner marker of a folder, if it can be read and parsed.
std::optional<batchguard::FolderMarker> folder_marker(const std::string& dir) {
    const std::string path = dir + "/" + std::string(batchguard::kOwnerMarkerFile);
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buffer[4096];
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (got <= 0) return std::nullopt;
    return batchguard::parse_folder_marker(std::string_view(buffer, static_cast<std::size_t>(got)));
}

void sync_directory(const std::string& path) {
    (void)fsync_fname_ext(path.c_str(), true, false, LOG);
}

// Deletes what the quarantine period allows of a dropped database's folder: every backup
// file without a legal hold marker, the folder's own quarantine, then the folder once only
// its marker is left. Files of backups on legal hold are kept (said once).
void purge_dropped_folder(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(d)) names.emplace_back(entry->d_name);
    ::closedir(d);
    std::set<std::string> holds;
    for (const std::string& name : names)
        if (name.size() > batchguard::kHoldSuffix.size() && name.ends_with(batchguard::kHoldSuffix))
            holds.insert(name.substr(0, name.size() - batchguard::kHoldSuffix.size()));
    int kept = 0, removed = 0;
    for (const std::string& name : names) {
        const std::string path = dir + "/" + name;
        if (name == batchguard::kQuarantineFolder) {
            if (DIR* q = ::opendir(path.c_str())) {
                std::vector<std::string> inner;
                while (struct dirent* entry = ::readdir(q)) inner.emplace_back(entry->d_name);
                ::closedir(q);
                for (const std::string& file : inner)
                    if (batchguard::parse_backup_file_name(file) &&
                        ::unlink((path + "/" + file).c_str()) == 0)
                        ++removed;
                (void)::rmdir(path.c_str());
            }
            continue;
        }
        const std::optional<batchguard::BackupFileName> parsed =
            batchguard::parse_backup_file_name(name);
        if (!parsed) continue;
        if (holds.contains(parsed->backup_id + "-" + std::to_string(parsed->xid))) {
            ++kept;
            if (first_time("hold " + path))
                ereport(LOG, (errmsg("pg_batchguard: kept %s: its backup is on legal hold",
                                     path.c_str()),
                              errdetail("Its database was dropped; the quarantine period has "
                                        "passed for the other files of the folder."),
                              errhint("Remove the file by hand once the hold no longer applies.")));
            continue;
        }
        if (::unlink(path.c_str()) == 0)
            ++removed;
        else
            ereport(LOG, (errcode_for_file_access(),
                          errmsg("pg_batchguard: could not remove \"%s\": %m", path.c_str())));
    }
    // Hold markers whose file is gone, then the marker and the folder once nothing is kept.
    for (const std::string& stem : holds) {
        struct stat st;
        if (::stat((dir + "/" + stem + ".jsonl.zst").c_str(), &st) != 0)
            (void)::unlink((dir + "/" + stem + std::string(batchguard::kHoldSuffix)).c_str());
    }
    if (kept == 0) {
        (void)::unlink((dir + "/" + std::string(batchguard::kOwnerMarkerFile)).c_str());
        if (::rmdir(dir.c_str()) == 0) {
            sync_directory(dir.substr(0, dir.rfind('/')));  // the folder is gone: its parent
            ereport(LOG, (errmsg("pg_batchguard: deleted quarantined folder \"%s\" of a dropped "
                                 "database (%d backup files)",
                                 dir.c_str(), removed)));
            return;
        }
        if (errno != ENOENT && first_time("left " + dir))
            ereport(LOG, (errcode_for_file_access(),
                          errmsg("pg_batchguard: quarantined folder \"%s\" still holds files that "
                                 "are not backups; it is left alone",
                                 dir.c_str())));
    }
    sync_directory(dir);
}

// The folders of databases that no longer exist: this server's are moved to quarantine
// (renamed "<folder>.dropped-<time>": a new database that gets the oid starts afresh) and
// deleted after batchguard.quarantine_period, except the files of backups on legal hold.
// Folders of other servers or without a marker are left alone (said once). Folders are
// listed before pg_database is read: a folder exists only once its database has committed,
// so a database created meanwhile is never mistaken for a dropped one. Never raises an
// error (the launcher must keep running).
void quarantine_dropped_database_folders() {
    char me[17];
    if (!batchguard::pg::server_instance_id(me, LOG)) return;
    const std::string base = base_directory();
    DIR* top = ::opendir(base.c_str());
    if (top == nullptr) return;  // no file backups at all yet
    std::vector<std::pair<std::string, Oid>> folders;
    std::vector<std::pair<std::string, std::int64_t>> dropped;
    while (struct dirent* entry = ::readdir(top)) {
        if (auto folder = batchguard::parse_backup_folder_name(entry->d_name))
            folders.emplace_back(entry->d_name, static_cast<Oid>(folder->database));
        else if (auto gone = batchguard::parse_dropped_folder_name(entry->d_name))
            dropped.emplace_back(entry->d_name, gone->dropped_at);
    }
    ::closedir(top);
    const std::int64_t now = static_cast<std::int64_t>(::time(nullptr));
    if (!folders.empty()) {
        List* existing = database_oids();
        for (const auto& [name, oid] : folders) {
            if (list_member_oid(existing, oid)) continue;
            const std::string dir = base + "/" + name;
            const std::optional<batchguard::FolderMarker> marker = folder_marker(dir);
            if (!marker || marker->instance != me) {
                if (first_time("foreign " + dir))
                    ereport(LOG, (errmsg("pg_batchguard: folder \"%s\" of dropped database %u is "
                                         "not this server's; it is left alone",
                                         dir.c_str(), oid),
                                  errdetail("%s", marker ? "Its owner marker names another server."
                                                         : "It has no owner marker (made by "
                                                           "version 1.0, or not by us).")));
                continue;
            }
            const std::string to = base + "/" + batchguard::dropped_folder_name(name, now);
            if (::rename(dir.c_str(), to.c_str()) == 0) {
                sync_directory(base);
                ereport(LOG, (errmsg("pg_batchguard: moved folder \"%s\" of dropped database %u "
                                     "to quarantine as \"%s\"",
                                     dir.c_str(), oid, to.c_str()),
                              errdetail("Its files are deleted after batchguard.quarantine_period, "
                                        "except those of backups on legal hold.")));
            } else if (first_time("rename " + dir)) {
                ereport(LOG,
                        (errcode_for_file_access(),
                         errmsg("pg_batchguard: could not move folder \"%s\" to quarantine: %m",
                                dir.c_str())));
            }
        }
        list_free(existing);
    }
    for (const auto& [name, dropped_at] : dropped) {
        if (dropped_at + static_cast<std::int64_t>(settings::quarantine_period_s) > now) continue;
        const std::string dir = base + "/" + name;
        const std::optional<batchguard::FolderMarker> marker = folder_marker(dir);
        if (!marker || marker->instance != me) continue;
        purge_dropped_folder(dir);
    }
}

// Returns how long to wait before the next check (a restart may be pending).
long reconcile() {
    char wanted[kMaxDatabases][NAMEDATALEN];
    const int wanted_count = wanted_databases(wanted);
    long next_check_ms = 10000;

    // Stop the workers of databases that are no longer wanted.
    for (int i = 0; i < slot_count;) {
        bool keep = false;
        for (int w = 0; w < wanted_count && !keep; ++w)
            keep = strcmp(slots[i].database, wanted[w]) == 0;
        if (keep) {
            ++i;
            continue;
        }
        ereport(LOG, (errmsg("pg_batchguard: stopping the worker for database \"%s\"",
                             slots[i].database)));
        stop_worker(slots[i]);
        slots[i] = slots[--slot_count];
    }
    // Start (or restart) the others.
    for (int w = 0; w < wanted_count; ++w) {
        Slot* slot = nullptr;
        for (int i = 0; i < slot_count && slot == nullptr; ++i)
            if (strcmp(slots[i].database, wanted[w]) == 0) slot = &slots[i];
        if (slot == nullptr) {
            slot = &slots[slot_count++];
            *slot = Slot{};
            strlcpy(slot->database, wanted[w], NAMEDATALEN);
        } else if (worker_alive(*slot)) {
            continue;
        } else if (slot->handle != nullptr) {
            const long since_start_ms = (GetCurrentTimestamp() - slot->started_at) / 1000;
            if (since_start_ms < kRestartDelayMs) {
                next_check_ms = std::min(next_check_ms, kRestartDelayMs - since_start_ms);
                continue;
            }
            pfree(slot->handle);
            slot->handle = nullptr;
        }
        start_worker(*slot);
    }
    return next_check_ms;
}

}  // namespace

void refuse_upgrade_leaving_files_behind() {
    const char* setting = base_directory();
    char data_directory[PATH_MAX], directory[PATH_MAX];  // realpath() needs PATH_MAX
    if (::realpath(".", data_directory) == nullptr) return;
    if (::realpath(setting, directory) == nullptr) return;  // no backup directory: nothing to lose
    const std::size_t n = strlen(data_directory);
    if (strncmp(directory, data_directory, n) != 0 || directory[n] != '/') return;  // outside
    // pg_upgrade starts the new cluster too: its data directory holds pg_upgrade's output.
    struct stat st;
    if (::stat("pg_upgrade_output.d", &st) == 0) return;
    long files = 0;
    if (DIR* top = ::opendir(directory)) {
        while (struct dirent* entry = ::readdir(top)) {
            if (!batchguard::parse_backup_folder_name(entry->d_name) &&
                !batchguard::parse_dropped_folder_name(entry->d_name))
                continue;
            const std::string folder = std::string(directory) + "/" + entry->d_name;
            if (DIR* d = ::opendir(folder.c_str())) {
                while (struct dirent* file = ::readdir(d))
                    if (batchguard::parse_backup_file_name(file->d_name)) ++files;
                ::closedir(d);
            }
        }
        ::closedir(top);
    }
    if (files == 0) return;
    ereport(FATAL,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("pg_batchguard: backup files in \"%s\" inside the data directory would be "
                    "left behind by pg_upgrade",
                    setting),
             errdetail("%ld backup files are there; pg_upgrade does not copy them into the new "
                       "data directory.",
                       files),
             errhint("Move the folder out of the data directory and set "
                     "batchguard.backup_directory to its new place in the postgresql.conf of "
                     "both clusters, then run pg_upgrade again (docs/operations.md, "
                     "\"Upgrading\"). Backups stored in the database need nothing.")));
}

void register_launcher() {
    BackgroundWorker worker = {};
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // On a standby nothing starts until promotion.
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 10;
    strlcpy(worker.bgw_library_name, "pg_batchguard", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "batchguard_launcher_main", BGW_MAXLEN);
    strlcpy(worker.bgw_name, "pg_batchguard launcher", BGW_MAXLEN);
    strlcpy(worker.bgw_type, "pg_batchguard launcher", BGW_MAXLEN);
    RegisterBackgroundWorker(&worker);
}

}  // namespace batchguard::worker

using namespace batchguard::worker;

void batchguard_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    // No database: the launcher reads only shared catalogs (pg_database).
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    ereport(LOG, (errmsg("pg_batchguard launcher started")));
    TimestampTz last_folder_check = 0;

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        long wait_ms = reconcile();
        // Folders of dropped databases: once per cleanup interval.
        const long interval_ms =
            static_cast<long>(batchguard::settings::cleanup_interval_s) * 1000L;
        if (batchguard::settings::enable_worker &&
            (last_folder_check == 0 ||
             TimestampDifferenceExceeds(last_folder_check, GetCurrentTimestamp(), interval_ms))) {
            quarantine_dropped_database_folders();
            last_folder_check = GetCurrentTimestamp();
        }
        wait_ms = std::min(wait_ms, interval_ms);
        // Woken by SIGHUP and by our workers starting or stopping (bgw_notify_pid).
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
