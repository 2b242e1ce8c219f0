#include "checkpoint/retention.hpp"

#include "checkpoint/batch_store.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/memory.hpp"

#include <utility>
#include <vector>

namespace batchguard::checkpoint {

PurgedBatches purge_finished_batches(pg::SpiSession& spi, const std::optional<std::string>& owner,
                                     std::int64_t retention_s) {
    static pg::Statement batches_of{"SELECT owner, job_id, " BATCH_COLUMNS
                                    " FROM batchguard.batches"
                                    " WHERE $1::text IS NULL OR owner = $1",
                                    {TEXTOID}};
    pg::Rows rows = spi.execute(batches_of, {owner ? pg::Arg::text(*owner) : pg::Arg::null()});
    struct Candidate {
        std::string owner, job_id;
        Batch batch;
    };
    std::vector<Candidate> candidates;
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        candidates.push_back(
            {rows.text(row, 1).value(), rows.text(row, 2).value(), batch_from_rows(rows, row, 3)});

    const TimestampTz cutoff = GetCurrentTimestamp() - retention_s * USECS_PER_SEC;
    BatchStore store(spi);
    auto finished_long_ago = [&](const Batch& batch) {
        const ItemTotals totals = store.totals(batch.batch_id);
        const BatchStatus status = compute_progress(facts_of(batch, totals)).status;
        const bool finished = status == BatchStatus::kCompleted || status == BatchStatus::kFailed ||
                              status == BatchStatus::kCancelled;
        return finished && last_change_of(batch, totals) < cutoff;
    };
    PurgedBatches result;
    // One batch's statements at a time in a context reset for the next.
    pg::ScratchContext per_batch("purge_finished_batches batch");
    for (const Candidate& c : candidates) {
        pg::check_for_interrupts();
        per_batch.reset();
        pg::ContextSwitch batch_memory(per_batch.get());
        if (!finished_long_ago(c.batch)) continue;
        // An open transaction of the owner's holds it (a write, a retry, a discard).
        if (!pg::try_lock_job(c.owner, c.job_id, pg::JobLockMode::kExclusive)) {
            ++result.skipped_locked;
            continue;
        }
        // Decided from the row read before the lock: a batch resumed, retried or given new
        // items since is no longer finished. Look again, at the latest row, locked.
        const std::optional<Batch> now = store.lock(c.owner, c.job_id);
        if (!now || !finished_long_ago(*now)) continue;
        if (store.remove(c.owner, c.job_id)) ++result.purged;
    }
    return result;
}

}  // namespace batchguard::checkpoint
