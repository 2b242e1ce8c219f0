#include "checkpoint/lease_store.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace batchguard::checkpoint {

namespace {

// A claim takes two statements, neither of which can turn into a scan of the batch,
// whatever the planner's statistics say (a batch started after the table was last
// analyzed is estimated at one row, and a join by (batch_id, item_id) then reads the whole
// batch once per claim).
//
// The first locks the candidates and returns their row addresses: they come from the
// partial index of pending and running items, in item order; running items whose lease
// is still live are passed over without a lock, and rows another transaction holds are
// skipped. CLAIM_FROM is where the scan starts (see ScanHint).
#define LOCK_CLAIMABLE_SQL(CLAIM_FROM)                                        \
    "SELECT array_agg(c.ctid) FROM ("                                         \
    "  SELECT ctid FROM batchguard.batch_items"                               \
    "   WHERE batch_id = $1 AND status IN ('pending', 'running') " CLAIM_FROM \
    "     AND (status = 'pending' OR lease_expires_at <= $3)"                 \
    "   ORDER BY item_id LIMIT $2"                                            \
    "     FOR UPDATE SKIP LOCKED) AS c"

pg::Statement lock_claimable_from_start{LOCK_CLAIMABLE_SQL(""), {INT8OID, INT4OID, TIMESTAMPTZOID}};
pg::Statement lock_claimable_from_hint{LOCK_CLAIMABLE_SQL("AND item_id >= $4"),
                                       {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID}};

// The second updates exactly those rows, found by address (a TID scan): they are locked
// by this transaction, so each address still holds the version that was locked, and this
// statement's snapshot, taken after the first one, sees it. An expired item on its last
// attempt (attempts >= max_attempts) is failed here instead of being handed out again.
#define EXHAUSTED "i.status = 'running' AND i.attempts >= $2"
pg::Statement lease_locked{
    "WITH changed AS ("
    "  UPDATE batchguard.batch_items AS i"
    "     SET status = CASE WHEN " EXHAUSTED
    " THEN 'failed' ELSE 'running'"
    "                  END::batchguard.item_status,"
    "         attempts = i.attempts + CASE WHEN " EXHAUSTED
    " THEN 0 ELSE 1 END,"
    "         lease_token = CASE WHEN " EXHAUSTED
    " THEN NULL"
    "                       ELSE nextval('batchguard.lease_tokens') END,"
    "         lease_expires_at = CASE WHEN " EXHAUSTED
    " THEN NULL ELSE $3 END,"
    "         worker = CASE WHEN " EXHAUSTED
    " THEN i.worker ELSE $4 END,"
    "         error = CASE WHEN " EXHAUSTED
    "                 THEN format('lease expired on the last attempt (%s of %s)',"
    "                             i.attempts, $2)"
    "                 END,"
    "         error_detail = CASE WHEN " EXHAUSTED
    "                        THEN jsonb_build_object('reason', 'lease expired',"
    "                             'attempts', i.attempts, 'max_attempts', $2,"
    "                             'worker', i.worker, 'lease_expired_at', i.lease_expires_at)"
    "                        END,"
    "         updated_at = clock_timestamp()"
    "   WHERE i.ctid = ANY ($1)"
    "  RETURNING i.item_id, i.lease_token, i.attempts, i.status = 'failed' AS exhausted)"
    " SELECT item_id, lease_token, attempts, exhausted FROM changed ORDER BY item_id",
    {TIDARRAYOID, INT4OID, TIMESTAMPTZOID, TEXTOID}};
#undef EXHAUSTED

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

// Items under lease are found by their tokens, through the index of running leases only:
// `batch_id + 0` keeps the planner from scanning the batch by batch_id instead (which it
// would do for a batch it estimates at one row, e.g. one started after the last ANALYZE).
// Tokens are unique, so each names at most one row, checked to be of this batch.
#define LEASES_OF_BATCH "batch_id + 0 = $1 AND status = 'running' AND lease_token = ANY ($2)"

// The lease stays recorded (its holder repeating the call gets no error); its expiry goes.
pg::Statement complete_leased{
    "UPDATE batchguard.batch_items"
    "   SET status = 'completed', error = NULL, error_detail = NULL, lease_expires_at = NULL,"
    "       updated_at = clock_timestamp()"
    " WHERE " LEASES_OF_BATCH,
    {INT8OID, INT8ARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

// After a refusal: the items that hold or held the given leases in this batch.
pg::Statement leases_of_tokens{
    "SELECT lease_token, item_id, status::text, attempts FROM batchguard.batch_items"
    " WHERE batch_id = $1 AND lease_token = ANY ($2)",
    {INT8OID, INT8ARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement extend_leases{
    "UPDATE batchguard.batch_items SET lease_expires_at = $3 WHERE " LEASES_OF_BATCH,
    {INT8OID, INT8ARRAYOID, TIMESTAMPTZOID},
    CURSOR_OPT_CUSTOM_PLAN};

// Expired leases are released like claims are made (see above): the rows are locked
// first (items being completed right now are skipped, not waited for), then updated by
// address, so that no plan joins the batch with itself.
pg::Statement lock_expired{
    "SELECT array_agg(e.ctid) FROM ("
    "  SELECT ctid FROM batchguard.batch_items"
    "   WHERE batch_id = $1 AND status = 'running' AND lease_expires_at <= $2"
    "     FOR UPDATE SKIP LOCKED) AS e",
    {INT8OID, TIMESTAMPTZOID}};

pg::Statement release_locked{
    "UPDATE batchguard.batch_items AS i"
    "   SET status = CASE WHEN i.attempts >= $2 THEN 'failed' ELSE 'pending'"
    "                END::batchguard.item_status,"
    "       lease_token = NULL, lease_expires_at = NULL,"
    "       error = CASE WHEN i.attempts >= $2"
    "               THEN format('lease expired on the last attempt (%s of %s)', i.attempts, $2)"
    "               END,"
    "       error_detail = CASE WHEN i.attempts >= $2"
    "                      THEN jsonb_build_object('reason', 'lease expired',"
    "                           'attempts', i.attempts, 'max_attempts', $2,"
    "                           'worker', i.worker, 'lease_expired_at', i.lease_expires_at)"
    "                      END,"
    "       updated_at = clock_timestamp()"
    " WHERE i.ctid = ANY ($1)"
    " RETURNING i.status = 'failed'",
    {TIDARRAYOID, INT4OID}};

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
        pg::Rows locked =
            from_hint ? spi_.execute(lock_claimable_from_hint, {batch_arg, pg::Arg::int4(wanted),
                                                                now_arg, pg::Arg::text(hint.from)})
                      : spi_.execute(lock_claimable_from_start,
                                     {batch_arg, pg::Arg::int4(wanted), now_arg});
        const std::optional<Datum> addresses = locked.datum_for_caller(0, 1);
        pg::Rows rows =
            addresses ? spi_.execute(lease_locked,
                                     {pg::Arg::of(*addresses), pg::Arg::int4(batch.max_attempts),
                                      pg::Arg::of(TimestampTzGetDatum(expires)), worker_arg})
                      : pg::Rows(nullptr, 0);
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
    pg::Rows locked = spi_.execute(
        lock_expired, {pg::Arg::int8(batch.batch_id), pg::Arg::of(TimestampTzGetDatum(now))});
    const std::optional<Datum> addresses = locked.datum_for_caller(0, 1);
    if (!addresses) return {};
    pg::Rows rows =
        spi_.execute(release_locked, {pg::Arg::of(*addresses), pg::Arg::int4(batch.max_attempts)});
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
    auto lease_text = [&] {
        return std::string(
            pg::pg_call([&] { return DatumGetCString(DirectFunctionCall1(interval_out, lease)); }));
    };
    auto too_long = [&] {
        return Error(sqlstate::kInvalidParameterValue,
                     std::string(what) + " must be at most " + kMaxLeaseText,
                     std::string(what) + " is '" + lease_text() + "'.",
                     "Keep a lease short and extend it with heartbeat() while the work runs.");
    };
    auto not_positive = [&] {
        return Error(sqlstate::kInvalidParameterValue, std::string(what) + " must be positive",
                     std::string(what) + " is '" + lease_text() + "'.");
    };
    // A lease far outside the range is refused before now + lease could leave the range of
    // timestamps (22008); the bounds themselves are counted on the calendar from now.
    const int far = pg::pg_call([&] {
        Interval bound{};
        bound.month = 12 * 1000;
        if (DatumGetBool(DirectFunctionCall2(interval_gt, lease, IntervalPGetDatum(&bound))))
            return 1;
        bound.month = -12 * 1000;
        return DatumGetBool(DirectFunctionCall2(interval_lt, lease, IntervalPGetDatum(&bound))) ? -1
                                                                                                : 0;
    });
    if (far > 0) throw too_long();
    if (far < 0) throw not_positive();
    const TimestampTz expires = pg::pg_call([&] {
        return DatumGetTimestampTz(
            DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now), lease));
    });
    if (expires <= now) throw not_positive();
    const TimestampTz latest = pg::pg_call([&] {
        Interval max_lease{};
        max_lease.month = kMaxLeaseMonths;
        return DatumGetTimestampTz(DirectFunctionCall2(
            timestamptz_pl_interval, TimestampTzGetDatum(now), IntervalPGetDatum(&max_lease)));
    });
    if (expires > latest) throw too_long();
    return expires;
}

}  // namespace batchguard::checkpoint
