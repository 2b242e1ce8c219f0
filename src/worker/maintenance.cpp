// Maintenance rounds (see maintenance.hpp): run_maintenance() and CALL batchguard.maintain()
// for SQL callers (pg_cron where the workers are not preloaded), and the steps the
// workers run each in a transaction of their own.
#include "backup/retention.hpp"
#include "checkpoint/batch_store.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/retention.hpp"
#include "core/error.hpp"
#include "pg/files.hpp"

extern "C" {
#include "access/xlog.h"
}
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"
#include "worker/maintenance.hpp"

#include <string>
#include <utility>
#include <vector>

using namespace batchguard;

namespace {

// Batches with a lease that has expired (every owner's when `owner` is nullopt).
pg::Statement batches_with_expired_leases{
    "SELECT b.owner, b.job_id, " BATCH_COLUMNS
    "  FROM batchguard.batches AS b"
    " WHERE b.items_registered AND ($1::text IS NULL OR b.owner = $1)"
    "   AND EXISTS (SELECT 1 FROM batchguard.batch_items AS i"
    "                WHERE i.batch_id = b.batch_id AND i.status = 'running'"
    "                  AND i.lease_expires_at <= $2)",
    {TEXTOID, TIMESTAMPTZOID}};

struct LeaseCounts {
    std::int64_t pending = 0, failed = 0;
    std::vector<std::pair<std::string, std::string>> changed;  // (owner, job_id)
};

LeaseCounts release_expired_leases(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                   TimestampTz now) {
    pg::Rows rows = spi.execute(
        batches_with_expired_leases,
        {owner ? pg::Arg::text(*owner) : pg::Arg::null(), pg::Arg::of(TimestampTzGetDatum(now))});
    struct Candidate {
        std::string owner, job_id;
        checkpoint::Batch batch;
    };
    std::vector<Candidate> candidates;
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        candidates.push_back({rows.text(row, 1).value(), rows.text(row, 2).value(),
                              checkpoint::batch_from_rows(rows, row, 3)});
    LeaseCounts counts;
    for (const Candidate& c : candidates) {
        pg::check_for_interrupts();
        // Items being completed right now are locked: skipped, never waited for.
        const checkpoint::ReleasedLeases released =
            checkpoint::LeaseStore(spi, c.owner).release_expired(c.batch, now);
        counts.pending += released.pending;
        counts.failed += released.failed;
        if (released.pending + released.failed > 0) counts.changed.emplace_back(c.owner, c.job_id);
    }
    return counts;
}

// Files left by an earlier installation (before DROP EXTENSION) are reported once per backend.
bool earlier_files_reported = false;

}  // namespace

namespace batchguard::worker {

const char* step_name(Step step) {
    switch (step) {
        case Step::kSweepOrphans:
            return "orphan sweep";
        case Step::kExpiredBackups:
            return "expired backups";
        case Step::kMissingFiles:
            return "missing files";  // and unreadable, detached, found again
        case Step::kExpiredLeases:
            return "expired leases";
        case Step::kFinishedBatches:
            return "finished batches";
    }
    return "unknown step";
}

void refuse_on_standby(const char* function) {
    if (pg::pg_call([] { return RecoveryInProgress(); }))
        throw Error(sqlstate::kObjectNotInPrerequisiteState,
                    std::string(function) + " cannot run on a standby",
                    "The server is in recovery: maintenance changes rows and files.",
                    "Run it on the primary; its changes reach the standby through replication, "
                    "and the workers of a standby start once it is promoted.");
}

Scope current_scope() {
    Scope scope;
    scope.actor = pg::current_owner();
    scope.all_owners = superuser();
    if (!scope.all_owners) scope.owner = scope.actor;
    return scope;
}

void run_step(Step step, const Scope& scope, RoundCounts& counts) {
    pg::set_error_context(std::string("pg_batchguard maintenance: ") + step_name(step));
    switch (step) {
        case Step::kSweepOrphans: {
            if (!scope.all_owners) return;
            // First: it claims this database's folders made by 1.0 and adopts those carried
            // over by pg_upgrade, so that the file checks after it know they are ours.
            backup::SweepResult swept;
            {
                pg::SpiSession spi;
                swept = backup::sweep_orphan_files(spi);
            }
            counts.orphans_quarantined += swept.quarantined;
            counts.quarantined_deleted += swept.removed;
            counts.orphans_not_removed += swept.failed;
            counts.earlier_install += swept.earlier_install;
            counts.foreign_folders += swept.foreign_folders;
            return;
        }
        case Step::kExpiredBackups: {
            pg::SpiSession spi;
            counts.expired_backups +=
                backup::remove_expired_backups(spi, scope.owner, scope.actor, false);
            return;
        }
        case Step::kMissingFiles: {
            backup::FileStatusCounts files;
            {
                pg::SpiSession spi;
                files = backup::check_backup_files(spi, scope.owner);
            }
            counts.missing_files += files.missing;
            counts.unreadable_files += files.unreadable;
            counts.detached_backups += files.detached;
            counts.files_found_again += files.found_again;
            return;
        }
        case Step::kExpiredLeases: {
            const TimestampTz now = pg::pg_call([] { return GetCurrentTimestamp(); });
            LeaseCounts leases;
            {
                pg::SpiSession spi;
                leases = release_expired_leases(spi, scope.owner, now);
            }
            counts.released_leases += leases.pending;
            counts.failed_leases += leases.failed;
            // Sent when this transaction commits.
            for (const auto& [batch_owner, job_id] : leases.changed)
                checkpoint::note_progress(batch_owner, job_id);
            return;
        }
        case Step::kFinishedBatches: {
            if (settings::finished_batch_retention_s < 0) return;
            pg::SpiSession spi;
            const checkpoint::PurgedBatches purged = checkpoint::purge_finished_batches(
                spi, scope.owner, settings::finished_batch_retention_s);
            counts.purged_batches += purged.purged;
            counts.skipped_locked += purged.skipped_locked;
            return;
        }
    }
}

std::string finish_round(const RoundCounts& counts) {
    std::string summary =
        "{\"expired_backups\": " + std::to_string(counts.expired_backups) +
        ", \"released_leases\": " + std::to_string(counts.released_leases) +
        ", \"failed_leases\": " + std::to_string(counts.failed_leases) +
        // 1.0's meaning: orphans taken out of the folder (now into its quarantine)
        ", \"orphan_files_removed\": " + std::to_string(counts.orphans_quarantined) +
        ", \"quarantined_files_deleted\": " + std::to_string(counts.quarantined_deleted) +
        ", \"orphan_files_not_removed\": " + std::to_string(counts.orphans_not_removed) +
        ", \"files_of_earlier_installation\": " + std::to_string(counts.earlier_install) +
        ", \"missing_files\": " + std::to_string(counts.missing_files) +
        ", \"unreadable_files\": " + std::to_string(counts.unreadable_files) +
        ", \"detached_backups\": " + std::to_string(counts.detached_backups) +
        ", \"files_found_again\": " + std::to_string(counts.files_found_again) +
        ", \"folders_of_other_servers\": " + std::to_string(counts.foreign_folders) +
        ", \"purged_batches\": " + std::to_string(counts.purged_batches) +
        ", \"batches_left_locked\": " + std::to_string(counts.skipped_locked);
    if (!counts.failed_steps.empty()) {
        summary += ", \"failed_steps\": [";
        for (std::size_t i = 0; i < counts.failed_steps.size(); ++i)
            summary += (i > 0 ? ", \"" : "\"") + counts.failed_steps[i] + "\"";
        summary += "]";
    }
    summary += "}";
    if (counts.expired_backups + counts.released_leases + counts.failed_leases +
            counts.orphans_quarantined + counts.quarantined_deleted + counts.orphans_not_removed +
            counts.missing_files + counts.unreadable_files + counts.detached_backups +
            counts.files_found_again + counts.purged_batches +
            static_cast<std::int64_t>(counts.failed_steps.size()) >
        0)
        pg::pg_call(
            [&] { ereport(LOG, (errmsg("pg_batchguard maintenance: %s", summary.c_str()))); });
    if (counts.earlier_install > 0 && !earlier_files_reported) {
        earlier_files_reported = true;
        const std::string dir = pg::database_backup_directory();
        pg::pg_call([&] {
            ereport(LOG,
                    (errmsg("pg_batchguard: %lld backup files in \"%s\" predate this installation "
                            "of the extension and are kept",
                            static_cast<long long>(counts.earlier_install), dir.c_str()),
                     errdetail("They were written before DROP EXTENSION pg_batchguard; no row "
                               "refers to them."),
                     errhint("Remove them by hand once they are no longer needed.")));
        });
    }
    return summary;
}

}  // namespace batchguard::worker

namespace {

Datum summary_jsonb(const std::string& summary) {
    return pg::pg_call(
        [&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(summary.c_str())); });
}

// The round of a maintenance worker, one step per transaction (see maintenance_worker.cpp).
worker::Scope worker_scope;
worker::RoundCounts worker_counts;

}  // namespace

// run_maintenance(): the whole round in the caller's transaction (a function cannot
// commit); a failing step fails the call.
BATCHGUARD_FUNCTION(batchguard_run_maintenance) {
    (void)fcinfo;
    worker::refuse_on_standby("run_maintenance()");
    const worker::Scope scope = worker::current_scope();
    worker::RoundCounts counts;
    for (int step = 0; step < worker::kStepCount; ++step)
        worker::run_step(static_cast<worker::Step>(step), scope, counts);
    return summary_jsonb(worker::finish_round(counts));
}

// CALL batchguard.maintain(): the same round, each step committed on its own, so that a
// step's changes (released leases, say) are not held back by the steps after it; a
// failing step is rolled back, reported as a WARNING and named in the summary.
BATCHGUARD_FUNCTION(batchguard_maintain) {
    auto* call = reinterpret_cast<CallContext*>(fcinfo->context);
    if (call == nullptr || !IsA(call, CallContext) || call->atomic)
        throw Error(sqlstate::kActiveSqlTransaction,
                    "maintain must be called outside a transaction block",
                    "Each step of the round commits on its own, which a transaction block or a "
                    "function call cannot allow.",
                    "CALL batchguard.maintain() as a statement of its own, or use "
                    "batchguard.run_maintenance() in a transaction.");
    worker::refuse_on_standby("maintain()");
    const worker::Scope scope = worker::current_scope();
    worker::RoundCounts counts;
    const MemoryContext context = CurrentMemoryContext;
    {
        pg::NonAtomicSpi spi;
        for (int n = 0; n < worker::kStepCount; ++n) {
            const auto step = static_cast<worker::Step>(n);
            const ResourceOwner owner = CurrentResourceOwner;
            pg::pg_call([] { BeginInternalSubTransaction(nullptr); });
            MemoryContextSwitchTo(context);
            std::string failure;
            try {
                worker::run_step(step, scope, counts);
                pg::pg_call([] { ReleaseCurrentSubTransaction(); });
            } catch (const pg::PgError& e) {
                failure = e.data()->message != nullptr ? e.data()->message : "error";
            } catch (const std::exception& e) {
                failure = e.what();
            }
            MemoryContextSwitchTo(context);
            CurrentResourceOwner = owner;
            if (!failure.empty()) {
                pg::pg_call([&] {
                    RollbackAndReleaseCurrentSubTransaction();
                    MemoryContextSwitchTo(context);
                    CurrentResourceOwner = owner;
                    ereport(WARNING, (errmsg("pg_batchguard maintenance: step \"%s\" failed: %s",
                                             worker::step_name(step), failure.c_str()),
                                      errdetail("The other steps of the round ran.")));
                });
                counts.failed_steps.emplace_back(worker::step_name(step));
            }
            spi.commit();
        }
    }
    pg::set_error_context("pg_batchguard maintenance");
    const Datum summary = summary_jsonb(worker::finish_round(counts));
    return pg::pg_call([&] {
        TupleDesc desc = nullptr;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "maintain must return a record");
        desc = BlessTupleDesc(desc);
        bool is_null = false;
        return HeapTupleGetDatum(heap_form_tuple(desc, const_cast<Datum*>(&summary), &is_null));
    });
}

extern "C" const int batchguard_maintenance_step_count = worker::kStepCount;

// The maintenance worker's round, step by step: step 0 starts a round, kStepCount ends it
// (the summary). The worker calls it with DirectFunctionCall1, each step in a transaction
// of its own; a step that fails is logged by the worker and the next one runs.
BATCHGUARD_FUNCTION(batchguard_worker_round_step) {
    const int step = PG_GETARG_INT32(0);
    if (step == 0) {
        worker_scope = worker::current_scope();
        worker_counts = worker::RoundCounts{};
    }
    if (step >= 0 && step < worker::kStepCount) {
        try {
            worker::run_step(static_cast<worker::Step>(step), worker_scope, worker_counts);
        } catch (...) {
            worker_counts.failed_steps.emplace_back(
                worker::step_name(static_cast<worker::Step>(step)));
            throw;
        }
    } else {
        (void)worker::finish_round(worker_counts);
    }
    PG_RETURN_VOID();
}
