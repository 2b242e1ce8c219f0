// SQL entry points of registered batches and leases (see docs/api.md, "Concurrent
// workers"): start_batch, add_items, claim_items, complete_items, heartbeat. Each
// validates all of its arguments before it changes anything.
#include "checkpoint/arguments.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/progress_result.hpp"
#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"
#include "core/leases.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::checkpoint;

namespace {

Datum lease_arg(FunctionCallInfo fcinfo, int n) {
    pg::require_not_null(fcinfo, n, "lease");
    return PG_GETARG_DATUM(n);
}

std::vector<std::int64_t> token_list(FunctionCallInfo fcinfo, int n) {
    pg::require_not_null(fcinfo, n, "lease_tokens");
    return distinct_tokens(pg::int8_array_elements(PG_GETARG_DATUM(n)), "lease_tokens");
}

// The caller's batch under the shared job lock; the unknown-job error otherwise.
Batch existing_batch(pg::SpiSession& spi, std::string_view owner, std::string_view job_id) {
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    std::optional<Batch> batch = BatchStore(spi).find(owner, job_id);
    if (!batch) unknown_job(job_id);
    return *batch;
}

TimestampTz clock_now() {
    return pg::pg_call([] { return GetCurrentTimestamp(); });
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
        LeaseStore leases(spi, owner);
        std::optional<Batch> batch =
            leases.create_batch(job_id, explicit_total, metadata, *max_attempts);
        if (!batch)
            throw Error(sqlstate::kDuplicateObject,
                        "batch \"" + std::string(job_id) + "\" already exists", {},
                        "Resume it with resume_batch() and claim_items(), add items with "
                        "add_items(), or discard it with cleanup_checkpoint().");
        if (distinct > 0) leases.register_items(*batch, *items);
        progress = {*batch, BatchStore(spi).totals(batch->batch_id)};
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
    const Batch batch = existing_batch(spi, owner, job_id);
    const std::int64_t added = any ? LeaseStore(spi, owner).register_items(batch, items) : 0;
    if (added > 0) note_progress(owner, job_id);
    return Int64GetDatum(added);
}

BATCHGUARD_FUNCTION(batchguard_claim_items) {
    const std::string_view job_id = job_arg(fcinfo);
    validate_max_items(pg::int4_arg(fcinfo, 1));
    const std::int32_t max_items = PG_GETARG_INT32(1);
    const Datum lease = lease_arg(fcinfo, 2);
    const std::optional<std::string_view> worker = pg::text_arg(fcinfo, 3);
    if (worker) validate_id(worker, "worker");
    const TimestampTz now = clock_now();
    const TimestampTz expires = lease_expiry(now, lease, "lease");
    require_read_committed("claim_items");

    const std::string owner = pg::current_owner();
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    std::vector<ClaimedItem> claimed;
    std::int64_t failed = 0;
    {
        pg::SpiSession spi;
        const Batch batch = existing_batch(spi, owner, job_id);
        // A paused or cancelled batch hands out nothing.
        if (batch.state == BatchState::kActive)
            claimed = LeaseStore(spi, owner).claim(batch, max_items, now, expires, worker, failed);
    }
    if (!claimed.empty() || failed > 0) note_progress(owner, job_id);
    for (const ClaimedItem& item : claimed) {
        Datum values[3] = {pg::text_datum(item.item_id), Int64GetDatum(item.lease_token),
                           Int32GetDatum(item.attempt)};
        bool nulls[3] = {false, false, false};
        pg::pg_call(
            [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
    return static_cast<Datum>(0);
}

BATCHGUARD_FUNCTION(batchguard_complete_items) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::vector<std::int64_t> tokens = token_list(fcinfo, 1);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    const Batch batch = existing_batch(spi, owner, job_id);
    if (tokens.empty()) return Int64GetDatum(0);
    const std::int64_t completed = LeaseStore(spi, owner).complete(batch, tokens);
    if (completed > 0) note_progress(owner, job_id);
    return Int64GetDatum(completed);
}

BATCHGUARD_FUNCTION(batchguard_heartbeat) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::vector<std::int64_t> tokens = token_list(fcinfo, 1);
    const Datum lease = lease_arg(fcinfo, 2);
    const TimestampTz expires = lease_expiry(clock_now(), lease, "lease");
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    const Batch batch = existing_batch(spi, owner, job_id);
    if (tokens.empty()) return Int64GetDatum(0);
    return Int64GetDatum(LeaseStore(spi, owner).extend(batch, tokens, expires));
}
