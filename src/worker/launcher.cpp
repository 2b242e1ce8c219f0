// The launcher keeps exactly one maintenance worker running per configured database that
// exists: it starts missing ones, restarts those that stopped (pg_terminate_backend, a
// crash) and stops those whose database left the list. It only reads shared catalogs.
#include "pg/postgres.hpp"
#include "core/backup_file_name.hpp"
#include "pg/files.hpp"
#include "pg/settings.hpp"
#include "worker/workers.hpp"

#include <algorithm>

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

// Folders of dropped databases already reported as holding foreign files.
List* foreign_reported = NIL;

bool is_backup_file_name(const char* name) {
    return batchguard::parse_backup_file_name(name).has_value();
}

// Removes <backup_directory>/<oid>/ of databases that no longer exist: only folders named
// by an oid, only files named like backup files; a folder holding anything else is left
// alone (and said so). Folders are listed before pg_database is read: a folder exists only
// once its database has committed, so a database created meanwhile is never mistaken for
// a dropped one. Never raises an error (the launcher must keep running).
void remove_dropped_database_folders() {
    const char* base = pg::backup_directory();
    DIR* top = AllocateDir(base);
    if (top == nullptr) return;  // no backups at all yet
    List* folders = NIL;
    struct dirent* entry;
    while ((entry = ReadDirExtended(top, base, LOG)) != nullptr) {
        const std::optional<std::uint32_t> oid =
            batchguard::parse_database_folder_name(entry->d_name);
        if (oid) folders = lappend_oid(folders, static_cast<Oid>(*oid));
    }
    FreeDir(top);
    if (folders == NIL) return;
    List* existing = database_oids();
    ListCell* cell;
    foreach (cell, folders) {
        const Oid oid = lfirst_oid(cell);
        if (list_member_oid(existing, oid)) continue;
        char dir[MAXPGPATH];
        pg::format_database_backup_directory(dir, sizeof dir, oid);
        DIR* d = AllocateDir(dir);
        if (d == nullptr) continue;
        int removed = 0, foreign = 0;
        while ((entry = ReadDirExtended(d, dir, LOG)) != nullptr) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (!is_backup_file_name(entry->d_name)) {
                ++foreign;
                continue;
            }
            char path[MAXPGPATH * 2];
            snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
            if (unlink(path) == 0)
                ++removed;
            else
                ereport(LOG, (errcode_for_file_access(),
                              errmsg("pg_batchguard: could not remove \"%s\": %m", path)));
        }
        FreeDir(d);
        if (foreign > 0) {
            if (list_member_oid(foreign_reported, oid)) continue;  // said once is enough
            MemoryContext previous = MemoryContextSwitchTo(TopMemoryContext);
            foreign_reported = lappend_oid(foreign_reported, oid);
            MemoryContextSwitchTo(previous);
            ereport(LOG, (errmsg("pg_batchguard: folder \"%s\" of dropped database %u holds "
                                 "files that are not backups; it is left alone",
                                 dir, oid)));
            continue;
        }
        if (rmdir(dir) == 0)
            ereport(LOG, (errmsg("pg_batchguard: removed folder \"%s\" of dropped database %u "
                                 "(%d backup files)",
                                 dir, oid, removed)));
        else if (errno != ENOENT)
            ereport(LOG, (errcode_for_file_access(),
                          errmsg("pg_batchguard: could not remove folder \"%s\": %m", dir)));
    }
    list_free(existing);
    list_free(folders);
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
            remove_dropped_database_folders();
            last_folder_check = GetCurrentTimestamp();
        }
        wait_ms = std::min(wait_ms, interval_ms);
        // Woken by SIGHUP and by our workers starting or stopping (bgw_notify_pid).
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
