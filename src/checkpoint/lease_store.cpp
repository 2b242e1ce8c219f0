#include "checkpoint/lease_store.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace batchguard::checkpoint {

namespace {

// The candidates come from the partial index of pending and running items, in item
// order; running items whose lease is still live are passed over without a lock, and
// rows another transaction holds are skipped. An expired item on its last attempt
// (attempts >= max_attempts) is failed here instead of being handed out again.
// CLAIM_FROM is where the scan starts (see ScanHints).
#define CLAIM_ITEMS_SQL(CLAIM_FROM)                                                            \
    "WITH candidates AS ("                                                                     \
    "  SELECT item_id, status = 'running' AND attempts >= $5 AS exhausted"                     \
    "    FROM batchguard.batch_items"                                                          \
    "   WHERE batch_id = $1 AND status IN ('pending', 'running') " CLAIM_FROM                  \
    "     AND (status = 'pending' OR lease_expires_at <= $3)"                                  \
    "   ORDER BY item_id LIMIT $2"                                                             \
    "     FOR UPDATE SKIP LOCKED),"                                                            \
    " changed AS ("                                                                            \
    "  UPDATE batchguard.batch_items AS i"                                                     \
    "     SET status = CASE WHEN c.exhausted THEN 'failed' ELSE 'running'"                     \
    "                  END::batchguard.item_status,"                                           \
    "         attempts = i.attempts + CASE WHEN c.exhausted THEN 0 ELSE 1 END,"                \
    "         lease_token = CASE WHEN c.exhausted THEN NULL"                                   \
    "                       ELSE nextval('batchguard.lease_tokens') END,"                      \
    "         lease_expires_at = CASE WHEN c.exhausted THEN NULL ELSE $4 END,"                 \
    "         worker = CASE WHEN c.exhausted THEN i.worker ELSE $6 END,"                       \
    "         error = CASE WHEN c.exhausted"                                                   \
    "                 THEN format('lease expired on the last attempt (%s of %s)',"             \
    "                             i.attempts, $5)"                                             \
    "                 END,"                                                                    \
    "         error_detail = CASE WHEN c.exhausted"                                            \
    "                        THEN jsonb_build_object('reason', 'lease expired',"               \
    "                             'attempts', i.attempts, 'max_attempts', $5,"                 \
    "                             'worker', i.worker, 'lease_expired_at', i.lease_expires_at)" \
    "                        END,"                                                             \
    "         updated_at = clock_timestamp()"                                                  \
    "    FROM candidates AS c"                                                                 \
    "   WHERE i.batch_id = $1 AND i.item_id = c.item_id"                                       \
    "  RETURNING i.item_id, i.lease_token, i.attempts, c.exhausted)"                           \
    " SELECT item_id, lease_token, attempts, exhausted FROM changed ORDER BY item_id"

pg::Statement claim_from_start{
    CLAIM_ITEMS_SQL(""), {INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, TEXTOID}};
pg::Statement claim_from_hint{
    CLAIM_ITEMS_SQL("AND item_id >= $7"),
    {INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, TEXTOID, TEXTOID}};

// Where this session's claims in a batch start scanning. Items are handed out in item
// order, so the front of a batch fills up with the old versions of claimed and completed
// items; until VACUUM removes them, a scan from the start passes over all of them, which
// makes claiming O(items done since the last vacuum). A claim therefore starts at the
// first item the session's previous claim got (nothing before it was claimable then),
// and scans from the start only when that finds too few items, or when the last scan
// from the start is more than kFullScanInterval old: that is what finds items that
// became claimable behind the hint (expired leases, retried or released items, items
// added with smaller ids), so none of them waits longer than that.
constexpr TimestampTz kFullScanInterval = 1000 * 1000;  // microseconds

struct ScanHint {
    std::string from;
    TimestampTz full_scan_at = 0;
};

std::unordered_map<std::int64_t, ScanHint>& scan_hints() {
    static std::unordered_map<std::int64_t, ScanHint> hints;
    return hints;
}

// The lease stays recorded (its holder repeating the call gets no error); its expiry goes.
pg::Statement complete_leased{
    "UPDATE batchguard.batch_items"
    "   SET status = 'completed', error = NULL, error_detail = NULL, lease_expires_at = NULL,"
    "       updated_at = clock_timestamp()"
    " WHERE batch_id = $1 AND status = 'running' AND lease_token = ANY ($2)",
    {INT8OID, INT8ARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

// After a refusal: the items that hold or held the given leases in this batch.
pg::Statement leases_of_tokens{
    "SELECT lease_token, item_id, status::text, attempts FROM batchguard.batch_items"
    " WHERE batch_id = $1 AND lease_token = ANY ($2)",
    {INT8OID, INT8ARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement extend_leases{
    "UPDATE batchguard.batch_items SET lease_expires_at = $3"
    " WHERE batch_id = $1 AND status = 'running' AND lease_token = ANY ($2)",
    {INT8OID, INT8ARRAYOID, TIMESTAMPTZOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement release_leases{
    "WITH expired AS ("
    "  SELECT item_id FROM batchguard.batch_items"
    "   WHERE batch_id = $1 AND status = 'running' AND lease_expires_at <= $2"
    "     FOR UPDATE SKIP LOCKED)"
    " UPDATE batchguard.batch_items AS i"
    "    SET status = CASE WHEN i.attempts >= $3 THEN 'failed' ELSE 'pending'"
    "                 END::batchguard.item_status,"
    "        lease_token = NULL, lease_expires_at = NULL,"
    "        error = CASE WHEN i.attempts >= $3"
    "                THEN format('lease expired on the last attempt (%s of %s)', i.attempts, $3)"
    "                END,"
    "        error_detail = CASE WHEN i.attempts >= $3"
    "                       THEN jsonb_build_object('reason', 'lease expired',"
    "                            'attempts', i.attempts, 'max_attempts', $3,"
    "                            'worker', i.worker, 'lease_expired_at', i.lease_expires_at)"
    "                       END,"
    "        updated_at = clock_timestamp()"
    "   FROM expired AS e"
    "  WHERE i.batch_id = $1 AND i.item_id = e.item_id"
    " RETURNING i.status = 'failed'",
    {INT8OID, TIMESTAMPTZOID, INT4OID}};

[[noreturn]] void lease_not_current(std::int64_t token, const pg::Rows& holders) {
    for (std::uint64_t row = 0; row < holders.size(); ++row) {
        if (holders.int8(row, 1).value() != token) continue;
        const std::string item = holders.text(row, 2).value();
        throw Error(sqlstate::kLeaseLost,
                    "lease " + std::to_string(token) + " of item \"" + item +
                        "\" is no longer current (attempt " +
                        std::to_string(holders.int4(row, 4).value()) + ")",
                    "The item is " + holders.text(row, 3).value() + ".",
                    "Roll back this transaction: its work on the item must not commit.");
    }
    throw Error(sqlstate::kLeaseLost, "lease " + std::to_string(token) + " is no longer current",
                "No item of this batch holds it: the lease expired and the item was released, "
                "failed or handed to another worker, or the token is not from this batch.",
                "Roll back this transaction: its work on the item must not commit.");
}

}  // namespace

std::vector<ClaimedItem> LeaseStore::claim(const Batch& batch, std::int32_t max_items,
                                           TimestampTz now, TimestampTz expires,
                                           std::optional<std::string_view> worker,
                                           std::int64_t& failed) {
    std::vector<ClaimedItem> claimed;
    failed = 0;
    auto& hints = scan_hints();
    if (hints.size() > 4096) hints.clear();  // a session working that many batches
    ScanHint& hint = hints[batch.batch_id];
    bool from_hint = !hint.from.empty() && now - hint.full_scan_at < kFullScanInterval;
    const pg::Arg worker_arg = worker ? pg::Arg::text(*worker) : pg::Arg::null();
    while (static_cast<std::int32_t>(claimed.size()) < max_items) {
        const auto wanted = max_items - static_cast<std::int32_t>(claimed.size());
        const pg::Arg batch_arg = pg::Arg::int8(batch.batch_id);
        const pg::Arg now_arg = pg::Arg::of(TimestampTzGetDatum(now));
        const pg::Arg expires_arg = pg::Arg::of(TimestampTzGetDatum(expires));
        const pg::Arg attempts_arg = pg::Arg::int4(batch.max_attempts);
        pg::Rows rows =
            from_hint ? spi_.execute(claim_from_hint,
                                     {batch_arg, pg::Arg::int4(wanted), now_arg, expires_arg,
                                      attempts_arg, worker_arg, pg::Arg::text(hint.from)})
                      : spi_.execute(claim_from_start, {batch_arg, pg::Arg::int4(wanted), now_arg,
                                                        expires_arg, attempts_arg, worker_arg});
        if (!from_hint) hint.full_scan_at = now;
        std::int64_t failed_now = 0;
        bool first = true;
        for (std::uint64_t row = 0; row < rows.size(); ++row) {
            if (rows.boolean(row, 4).value()) {
                ++failed_now;
                continue;
            }
            claimed.push_back(
                {rows.text(row, 1).value(), rows.int8(row, 2).value(), rows.int4(row, 3).value()});
            if (first) hint.from = claimed.back().item_id;
            first = false;
        }
        failed += failed_now;
        // Items failed for an expired last lease took places in the LIMIT: ask again.
        // Each such round fails at least one item, so this ends.
        if (failed_now > 0) continue;
        // Too few after the hint: the rest may lie before it.
        if (from_hint && static_cast<std::int32_t>(claimed.size()) < max_items) {
            from_hint = false;
            continue;
        }
        break;
    }
    return claimed;
}

std::int64_t LeaseStore::complete(const Batch& batch, const std::vector<std::int64_t>& tokens) {
    const pg::Arg batch_arg = pg::Arg::int8(batch.batch_id);
    const Datum token_array = pg::make_int8_array(tokens);
    pg::Rows rows = spi_.execute(complete_leased, {batch_arg, pg::Arg::of(token_array)});
    const auto completed = static_cast<std::int64_t>(rows.size());
    if (completed == static_cast<std::int64_t>(tokens.size())) return completed;

    // Some tokens are not a running item's lease. Refused unless the holder already
    // recorded its item's outcome under that very lease (the same call repeated), as
    // complete_item does. Found by a scan of the batch: this is the rare path.
    pg::Rows holders = spi_.execute(leases_of_tokens, {batch_arg, pg::Arg::of(token_array)});
    std::unordered_set<std::int64_t> accounted;
    for (std::uint64_t row = 0; row < holders.size(); ++row) {
        const std::string status = holders.text(row, 3).value();
        if (status == "completed" || status == "failed")
            accounted.insert(holders.int8(row, 1).value());
    }
    for (std::int64_t token : tokens)
        if (!accounted.count(token)) lease_not_current(token, holders);
    return completed;
}

std::int64_t LeaseStore::extend(const Batch& batch, const std::vector<std::int64_t>& tokens,
                                TimestampTz expires) {
    pg::Rows rows = spi_.execute(
        extend_leases, {pg::Arg::int8(batch.batch_id), pg::Arg::of(pg::make_int8_array(tokens)),
                        pg::Arg::of(TimestampTzGetDatum(expires))});
    return static_cast<std::int64_t>(rows.size());
}

ReleasedLeases LeaseStore::release_expired(const Batch& batch, TimestampTz now) {
    pg::Rows rows = spi_.execute(
        release_leases, {pg::Arg::int8(batch.batch_id), pg::Arg::of(TimestampTzGetDatum(now)),
                         pg::Arg::int4(batch.max_attempts)});
    ReleasedLeases released;
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        if (rows.boolean(row, 1).value())
            ++released.failed;
        else
            ++released.pending;
    }
    return released;
}

TimestampTz lease_expiry(TimestampTz now, Datum lease, const char* what) {
    const TimestampTz expires = pg::pg_call([&] {
        return DatumGetTimestampTz(
            DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now), lease));
    });
    if (expires <= now) {
        const char* text =
            pg::pg_call([&] { return DatumGetCString(DirectFunctionCall1(interval_out, lease)); });
        throw Error(sqlstate::kInvalidParameterValue, std::string(what) + " must be positive",
                    std::string(what) + " is '" + text + "'.");
    }
    return expires;
}

}  // namespace batchguard::checkpoint
