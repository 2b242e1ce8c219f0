// A maintenance worker: connected to one database, it runs a maintenance round (see
// maintenance.hpp) every batchguard.cleanup_interval, each step in its own transaction. A
// failing step is logged once and the next one runs as usual.
#include "pg/postgres.hpp"
#include "pg/files.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "pgstat.h"
#include "storage/fd.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "commands/extension.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void batchguard_worker_main(Datum);
// maintenance.cpp: the steps of a round (0 .. count - 1), then the summary (count).
Datum batchguard_worker_round_step(PG_FUNCTION_ARGS);
extern const int batchguard_maintenance_step_count;
}

namespace {

bool kept_files_reported = false;

// A database without the extension whose backup folder still has files (written before
// DROP EXTENSION): they are kept, never swept, and reported once per worker lifetime.
void report_files_without_extension(const char* database) {
    if (kept_files_reported) return;
    char dir[MAXPGPATH];
    batchguard::pg::format_database_backup_directory(dir, sizeof dir, MyDatabaseId);
    DIR* d = AllocateDir(dir);
    if (d == nullptr) return;  // no folder: nothing to report
    long files = 0;
    struct dirent* entry;
    while ((entry = ReadDirExtended(d, dir, LOG)) != nullptr)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) ++files;
    FreeDir(d);
    if (files == 0) return;
    kept_files_reported = true;
    ereport(LOG, (errmsg("pg_batchguard: database \"%s\" has %ld files in \"%s\" but no "
                         "pg_batchguard extension; they are kept",
                         database, files, dir),
                  errdetail("Files left by DROP EXTENSION pg_batchguard are never swept "
                            "automatically."),
                  errhint("Remove the folder by hand once its backups are no longer needed.")));
}

// Rounds are numbered from 1 in each worker: pg_stat_activity shows the round a worker runs
// or ran last ("pg_batchguard maintenance round 17"), and a round's error names it, so an
// operator (and a test) can tell rounds apart without timing them.
struct Round {
    const char* database;
    long number;
};

void round_error_context(void* arg) {
    const auto* round = static_cast<const Round*>(arg);
    errcontext("pg_batchguard maintenance round %ld in database \"%s\"", round->number,
               round->database);
}

// One transaction of round `number`: step -1 checks that the database has the extension
// (false: skip the round), the others run batchguard_worker_round_step(step). Plain C on
// purpose: PG_TRY here catches the step's error, and no C++ object may live in a frame that
// a longjmp crosses. A failing step is logged once; the round goes on with the next step.
bool run_in_transaction(const char* database, long number, int step) {
    MemoryContext round_context = CurrentMemoryContext;
    Round round{database, number};
    ErrorContextCallback context{error_context_stack, round_error_context, &round};
    error_context_stack = &context;
    volatile bool installed = true;
    PG_TRY();
    {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        if (step < 0) {
            // A database without the extension is skipped quietly until it is installed.
            installed = OidIsValid(get_extension_oid("pg_batchguard", true));
            if (!installed) report_files_without_extension(database);
        } else {
            (void)DirectFunctionCall1(batchguard_worker_round_step, Int32GetDatum(step));
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(round_context);
        EmitErrorReport();  // once, with the round's context
        FlushErrorState();
        AbortCurrentTransaction();
        installed = step >= 0;
    }
    PG_END_TRY();
    error_context_stack = context.previous;
    MemoryContextSwitchTo(round_context);
    return installed;
}

// A round runs no SQL text of its own (nothing on the worker's search_path can capture a
// name), each step in a transaction of its own: a step's changes commit even if a later
// step fails, and no step holds another's locks. pg_stat_activity shows the round as
// running from its first step to its last, then idle (the text stays): a round seen idle
// has finished all its steps.
void run_round(const char* database, long number) {
    char activity[64];
    snprintf(activity, sizeof activity, "pg_batchguard maintenance round %ld", number);
    pgstat_report_activity(STATE_RUNNING, activity);
    if (run_in_transaction(database, number, -1))
        for (int step = 0; step <= batchguard_maintenance_step_count; ++step)
            (void)run_in_transaction(database, number, step);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

void batchguard_worker_main(Datum) {
    char database[NAMEDATALEN];
    strlcpy(database, MyBgworkerEntry->bgw_extra, NAMEDATALEN);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    if (IsBinaryUpgrade) proc_exit(0);  // never during pg_upgrade (the launcher is not started)
    BackgroundWorkerInitializeConnection(database, nullptr, 0);
    pgstat_report_appname("pg_batchguard worker");

    MemoryContext round_memory =
        AllocSetContextCreate(TopMemoryContext, "pg_batchguard round", ALLOCSET_DEFAULT_SIZES);
    TimestampTz last_round_at = 0;
    long rounds = 0;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        // Computed from the current setting each time: a reloaded interval applies at once.
        const long interval_ms =
            static_cast<long>(batchguard::settings::cleanup_interval_s) * 1000L;
        const TimestampTz now = GetCurrentTimestamp();
        if (last_round_at == 0 || TimestampDifferenceExceeds(last_round_at, now, interval_ms)) {
            MemoryContext previous = MemoryContextSwitchTo(round_memory);
            run_round(database, ++rounds);
            MemoryContextSwitchTo(previous);
            MemoryContextReset(round_memory);
            last_round_at = GetCurrentTimestamp();
            continue;
        }
        const long waited_ms = TimestampDifferenceMilliseconds(last_round_at, now);
        // SIGHUP and SIGTERM set the latch; the postmaster's death ends us.
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                        interval_ms - waited_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
