// SQL entry points of leases (see docs/api.md, "Concurrent workers"): claim_items,
// complete_items, heartbeat. Each validates all of its arguments before it changes
// anything.
#include "checkpoint/arguments.hpp"
#include "checkpoint/lease_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/leases.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/result_row.hpp"
#include "pg/transaction.hpp"

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
    pg::require_array_within_limit(PG_GETARG_DATUM(n), "lease_tokens");
    return distinct_tokens(pg::int8_array_elements(PG_GETARG_DATUM(n)), "lease_tokens");
}

TimestampTz clock_now() {
    return pg::pg_call([] { return GetCurrentTimestamp(); });
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_claim_items) {
    const std::string_view job_id = job_arg(fcinfo);
    validate_max_items(pg::int4_arg(fcinfo, 1));
    const std::int32_t max_items = PG_GETARG_INT32(1);
    const Datum lease = lease_arg(fcinfo, 2);
    const std::optional<std::string_view> worker = pg::text_arg(fcinfo, 3);
    if (worker) validate_id(worker, "worker");
    const TimestampTz now = clock_now();
    const TimestampTz expires = lease_expiry(now, lease, "lease");
    pg::require_read_committed(
        "claim_items",
        "Claim items in a READ COMMITTED transaction: under a transaction snapshot, "
        "skipping locked items would raise serialization failures.");

    const std::string owner = pg::current_owner();
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    std::vector<ClaimedItem> claimed;
    std::int64_t failed = 0;
    {
        pg::SpiSession spi;
        const Batch batch = BatchStore(spi).existing(owner, job_id);
        // A paused or cancelled batch hands out nothing.
        if (batch.state == BatchState::kActive)
            claimed = LeaseStore(spi, owner).claim(batch, max_items, now, expires, worker, failed);
    }
    if (!claimed.empty() || failed > 0) note_progress(owner, job_id);
    pg::ResultRow row(rsinfo->setDesc);  // the installed OUT columns, by name
    const int item_id = row.position("item_id"), lease_token = row.position("lease_token"),
              attempt = row.position("attempt");
    for (const ClaimedItem& item : claimed) {
        row.set(item_id, pg::text_datum(item.item_id));
        row.set(lease_token, Int64GetDatum(item.lease_token));
        row.set(attempt, Int32GetDatum(item.attempt));
        pg::pg_call([&] {
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row.values(), row.nulls());
        });
    }
    return static_cast<Datum>(0);
}

BATCHGUARD_FUNCTION(batchguard_complete_items) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::vector<std::int64_t> tokens = token_list(fcinfo, 1);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    const Batch batch = BatchStore(spi).existing(owner, job_id);
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
    const Batch batch = BatchStore(spi).existing(owner, job_id);
    if (tokens.empty()) return Int64GetDatum(0);
    return Int64GetDatum(LeaseStore(spi, owner).extend(batch, tokens, expires));
}
