// SQL entry points of a registered batch's life (see docs/api.md, "Concurrent workers"):
// start_batch and add_items, the batch dialog's actions (pause_batch, cancel_batch,
// resume_batch) and the progress events' channel (progress_channel). State changes lock
// the batch row; they never wait for item writers, and item writers never wait for them.
#include "checkpoint/arguments.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/item_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/progress_result.hpp"
#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

#include <string>

using namespace batchguard;
using namespace batchguard::checkpoint;

namespace {

Datum change_state(FunctionCallInfo fcinfo, BatchState state) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    BatchProgress progress;
    bool changed = false;
    {
        pg::SpiSession spi;
        BatchStore batches(spi);
        Batch batch = batches.locked(owner, job_id);
        if (state == BatchState::kPaused && batch.state == BatchState::kCancelled)
            throw Error(sqlstate::kObjectNotInPrerequisiteState,
                        "batch \"" + std::string(job_id) + "\" is cancelled", {},
                        "resume_batch() reopens a cancelled batch.");
        changed = batches.set_state(batch, state);
        progress = {batch, batches.totals(batch.batch_id)};
    }
    if (changed) note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_start_batch) {
    const std::string_view job_id = job_arg(fcinfo);
    std::optional<Datum> items;
    std::size_t distinct = 0;
    if (!PG_ARGISNULL(1)) {
        items = PG_GETARG_DATUM(1);
        distinct = first_occurrences(item_list(*items, "items")).size();
    }
    const std::optional<std::int64_t> total = pg::int8_arg(fcinfo, 2);
    if (total && *total < 0)
        throw Error(sqlstate::kInvalidParameterValue, "total_items must not be negative");
    if (total && *total < static_cast<std::int64_t>(distinct))
        throw Error(sqlstate::kInvalidParameterValue,
                    "total_items (" + std::to_string(*total) +
                        ") is smaller than the number of items (" + std::to_string(distinct) + ")");
    pg::require_not_null(fcinfo, 3, "metadata");
    const Datum metadata = jsonb_object_arg(fcinfo, 3, "metadata").value();
    const std::optional<std::int32_t> max_attempts = pg::int4_arg(fcinfo, 4);
    if (!max_attempts) throw Error(sqlstate::kNullValueNotAllowed, "max_attempts must not be NULL");
    if (*max_attempts < 1)
        throw Error(sqlstate::kInvalidParameterValue, "max_attempts must be at least 1");

    // An explicitly empty item list says the batch has no items (it is complete); no list
    // at all leaves the total unknown until items are added.
    const std::optional<std::int64_t> explicit_total =
        total ? total : (items && distinct == 0 ? std::optional<std::int64_t>(0) : std::nullopt);

    const std::string owner = pg::current_owner();
    BatchProgress progress;
    {
        pg::SpiSession spi;
        pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
        BatchStore batches(spi);
        std::optional<Batch> batch =
            batches.create_registered(owner, job_id, explicit_total, metadata, *max_attempts);
        if (!batch)
            throw Error(sqlstate::kDuplicateObject,
                        "batch \"" + std::string(job_id) + "\" already exists", {},
                        "Resume it with resume_batch() and claim_items(), add items with "
                        "add_items(), or discard it with cleanup_checkpoint().");
        if (distinct > 0) ItemStore(spi, owner).register_items(*batch, *items);
        progress = {*batch, batches.totals(batch->batch_id)};
    }
    note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

BATCHGUARD_FUNCTION(batchguard_add_items) {
    const std::string_view job_id = job_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "items");
    const Datum items = PG_GETARG_DATUM(1);
    const bool any = !item_list(items, "items").empty();
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    const Batch batch = BatchStore(spi).existing(owner, job_id);
    const std::int64_t added = any ? ItemStore(spi, owner).register_items(batch, items) : 0;
    if (added > 0) note_progress(owner, job_id);
    return Int64GetDatum(added);
}

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
        BatchStore batches(spi);
        Batch batch = batches.locked(owner, job_id);
        const ReleasedLeases released = LeaseStore(spi, owner).release_expired(batch, now);
        std::int64_t retried = 0;
        if (*retry) retried = ItemStore(spi, owner).retry_failed(batch, std::nullopt);
        changed = batches.set_state(batch, BatchState::kActive) || released.pending > 0 ||
                  released.failed > 0 || retried > 0;
        progress = {batch, batches.totals(batch.batch_id)};
    }
    if (changed) note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

BATCHGUARD_FUNCTION(batchguard_progress_channel) {
    (void)fcinfo;
    return pg::text_datum(progress_channel(pg::current_owner()));
}
