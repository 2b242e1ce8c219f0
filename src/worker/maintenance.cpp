// run_maintenance(): everything the background workers do in one round, callable from
// SQL so that pg_cron can schedule it where the workers are not preloaded.
#include "backup/retention.hpp"
#include "checkpoint/batch_store.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/retention.hpp"
#include "core/error.hpp"
#include "pg/files.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"

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

BATCHGUARD_FUNCTION(batchguard_run_maintenance) {
    (void)fcinfo;
    // A superuser (the workers) maintains every owner's rows; anyone else their own.
    const std::string actor = pg::current_owner();
    const bool all_owners = superuser();
    std::optional<std::string> owner;
    if (!all_owners) owner = actor;
    pg::set_error_context("pg_batchguard maintenance");
    const TimestampTz now = pg::pg_call([] { return GetCurrentTimestamp(); });

    std::int64_t expired_backups = 0, missing_files = 0, purged_batches = 0;
    backup::SweepResult swept;
    LeaseCounts leases;
    {
        pg::SpiSession spi;
        // The sweep first: it reads the directory, so an unreadable one fails the round
        // before any row could be taken for missing.
        if (all_owners) swept = backup::sweep_orphan_files(spi);
        expired_backups = backup::remove_expired_backups(spi, owner, actor, false);
        missing_files = backup::mark_missing_files(spi, owner);
        leases = release_expired_leases(spi, owner, now);
        if (settings::finished_batch_retention_s >= 0)
            purged_batches = checkpoint::purge_finished_batches(
                spi, owner, settings::finished_batch_retention_s);
    }
    for (const auto& [batch_owner, job_id] : leases.changed)
        checkpoint::note_progress(batch_owner, job_id);

    const std::string summary =
        "{\"expired_backups\": " + std::to_string(expired_backups) +
        ", \"released_leases\": " + std::to_string(leases.pending) +
        ", \"failed_leases\": " + std::to_string(leases.failed) +
        ", \"orphan_files_removed\": " + std::to_string(swept.removed) +
        ", \"orphan_files_not_removed\": " + std::to_string(swept.failed) +
        ", \"files_of_earlier_installation\": " + std::to_string(swept.earlier_install) +
        ", \"missing_files\": " + std::to_string(missing_files) +
        ", \"purged_batches\": " + std::to_string(purged_batches) + "}";
    if (expired_backups + leases.pending + leases.failed + swept.removed + swept.failed +
            missing_files + purged_batches >
        0)
        pg::pg_call(
            [&] { ereport(LOG, (errmsg("pg_batchguard maintenance: %s", summary.c_str()))); });
    if (swept.earlier_install > 0 && !earlier_files_reported) {
        earlier_files_reported = true;
        const std::string dir = pg::database_backup_directory();
        pg::pg_call([&] {
            ereport(LOG,
                    (errmsg("pg_batchguard: %lld backup files in \"%s\" predate this installation "
                            "of the extension and are kept",
                            static_cast<long long>(swept.earlier_install), dir.c_str()),
                     errdetail("They were written before DROP EXTENSION pg_batchguard; no row "
                               "refers to them."),
                     errhint("Remove them by hand once they are no longer needed.")));
        });
    }
    return pg::pg_call(
        [&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(summary.c_str())); });
}
