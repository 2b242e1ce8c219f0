// The batch dialog's actions (pause_batch, cancel_batch, resume_batch) and the progress
// events' channel (progress_channel). State changes lock the batch row; they never wait
// for item writers, and item writers never wait for them.
#include "checkpoint/arguments.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/item_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/progress_result.hpp"
#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

#include <string>

using namespace batchguard;
using namespace batchguard::checkpoint;

namespace {

// The caller's batch, its row locked for a state change.
Batch locked_batch(LeaseStore& leases, std::string_view owner, std::string_view job_id) {
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    std::optional<Batch> batch = leases.lock_batch(job_id);
    if (!batch) unknown_job(job_id);
    return *batch;
}

Datum change_state(FunctionCallInfo fcinfo, BatchState state) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    BatchProgress progress;
    bool changed = false;
    {
        pg::SpiSession spi;
        LeaseStore leases(spi, owner);
        Batch batch = locked_batch(leases, owner, job_id);
        if (state == BatchState::kPaused && batch.state == BatchState::kCancelled)
            throw Error(sqlstate::kObjectNotInPrerequisiteState,
                        "batch \"" + std::string(job_id) + "\" is cancelled", {},
                        "resume_batch() reopens a cancelled batch.");
        changed = leases.set_state(batch, state);
        progress = {batch, BatchStore(spi).totals(batch.batch_id)};
    }
    if (changed) note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_pause_batch) { return change_state(fcinfo, BatchState::kPaused); }

BATCHGUARD_FUNCTION(batchguard_cancel_batch) {
    return change_state(fcinfo, BatchState::kCancelled);
}

BATCHGUARD_FUNCTION(batchguard_resume_batch) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::optional<bool> retry = pg::bool_arg(fcinfo, 1);
    if (!retry) throw Error(sqlstate::kNullValueNotAllowed, "retry_failed must not be NULL");
    const std::string owner = pg::current_owner();
    const TimestampTz now = pg::pg_call([] { return GetCurrentTimestamp(); });
    BatchProgress progress;
    bool changed = false;
    {
        pg::SpiSession spi;
        LeaseStore leases(spi, owner);
        Batch batch = locked_batch(leases, owner, job_id);
        const ReleasedLeases released = leases.release_expired(batch, now);
        std::int64_t retried = 0;
        if (*retry) retried = ItemStore(spi, owner).retry_failed(batch, std::nullopt);
        changed = leases.set_state(batch, BatchState::kActive) || released.pending > 0 ||
                  released.failed > 0 || retried > 0;
        progress = {batch, BatchStore(spi).totals(batch.batch_id)};
    }
    if (changed) note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

BATCHGUARD_FUNCTION(batchguard_progress_channel) {
    (void)fcinfo;
    return pg::text_datum(progress_channel(pg::current_owner()));
}
