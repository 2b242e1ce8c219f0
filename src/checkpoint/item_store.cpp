#include "checkpoint/item_store.hpp"

#include "core/error.hpp"
#include "pg/guard.hpp"

#include <string>

namespace batchguard::checkpoint {

namespace {

// What every transition to a final state clears: the lease stays recorded (so the lease
// holder that repeats its call gets false, not an error), its expiry does not.
#define CLEAR_LEASE "lease_expires_at = NULL, updated_at = clock_timestamp()"

// A new item of a lazy batch: the same statement as a plain one-row insert. An item that
// exists already is then updated by update_completed (the common case takes one statement:
// ON CONFLICT DO UPDATE costs more to start than a plain insert).
pg::Statement insert_completed{
    "INSERT INTO batchguard.batch_items (batch_id, item_id, owner, status, result)"
    " VALUES ($1, $2, $3, 'completed', $4) ON CONFLICT (batch_id, item_id) DO NOTHING",
    {INT8OID, TEXTOID, TEXTOID, JSONBOID}};

pg::Statement update_completed{
    "UPDATE batchguard.batch_items"
    "   SET status = 'completed', result = $3, error = NULL, error_detail = NULL, " CLEAR_LEASE
    " WHERE batch_id = $1 AND item_id = $2 AND status <> 'completed' RETURNING 1",
    {INT8OID, TEXTOID, JSONBOID}};

pg::Statement update_completed_leased{
    "UPDATE batchguard.batch_items"
    "   SET status = 'completed', result = $3, error = NULL, error_detail = NULL, " CLEAR_LEASE
    " WHERE batch_id = $1 AND item_id = $2 AND status = 'running' AND lease_token = $4"
    " RETURNING 1",
    {INT8OID, TEXTOID, JSONBOID, INT8OID}};

pg::Statement insert_failed{
    "INSERT INTO batchguard.batch_items AS i (batch_id, item_id, owner, status, error, "
    "error_detail)"
    " VALUES ($1, $2, $3, 'failed', $4, $5)"
    " ON CONFLICT (batch_id, item_id) DO UPDATE"
    "   SET status = 'failed', error = excluded.error, error_detail = excluded.error_detail,"
    "       " CLEAR_LEASE " WHERE i.status IN ('pending', 'running') RETURNING 1",
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}};

pg::Statement update_failed{
    "UPDATE batchguard.batch_items SET status = 'failed', error = $3, error_detail = "
    "$4, " CLEAR_LEASE
    " WHERE batch_id = $1 AND item_id = $2 AND status IN ('pending', 'running') RETURNING 1",
    {INT8OID, TEXTOID, TEXTOID, JSONBOID}};

pg::Statement update_failed_leased{
    "UPDATE batchguard.batch_items SET status = 'failed', error = $3, error_detail = "
    "$4, " CLEAR_LEASE
    " WHERE batch_id = $1 AND item_id = $2 AND status = 'running' AND lease_token = $5"
    " RETURNING 1",
    {INT8OID, TEXTOID, TEXTOID, JSONBOID, INT8OID}};

pg::Statement find_item{
    "SELECT status::text, lease_token, attempts FROM batchguard.batch_items"
    " WHERE batch_id = $1 AND item_id = $2",
    {INT8OID, TEXTOID}};

// Sorted, so that two sessions merging overlapping lists lock rows in the same order.
pg::Statement merge_completed{
    "INSERT INTO batchguard.batch_items AS i (batch_id, item_id, owner, status)"
    " SELECT DISTINCT $1, u.item, $3, 'completed'::batchguard.item_status"
    "   FROM unnest($2::text[]) AS u(item) ORDER BY 2"
    " ON CONFLICT (batch_id, item_id) DO UPDATE"
    "   SET status = 'completed', error = NULL, error_detail = NULL, " CLEAR_LEASE
    " WHERE i.status <> 'completed'",
    {INT8OID, TEXTARRAYOID, TEXTOID},
    CURSOR_OPT_CUSTOM_PLAN};

// The last entry of an item wins when failed_items names it twice.
pg::Statement merge_failed{
    "INSERT INTO batchguard.batch_items AS i (batch_id, item_id, owner, status, error, "
    "error_detail)"
    " SELECT DISTINCT ON (f.item_id) $1, f.item_id, $3, 'failed'::batchguard.item_status,"
    "        f.error, nullif(f.detail, 'null'::jsonb)"
    "   FROM ROWS FROM (jsonb_to_recordset($2) AS (item_id text, error text, detail jsonb))"
    "        WITH ORDINALITY AS f(item_id, error, detail, position)"
    "  ORDER BY f.item_id, f.position DESC"
    " ON CONFLICT (batch_id, item_id) DO UPDATE"
    "   SET status = 'failed', error = excluded.error, error_detail = "
    "excluded.error_detail, " CLEAR_LEASE " WHERE i.status IN ('pending', 'running')",
    {INT8OID, JSONBOID, TEXTOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement first_unregistered{
    "SELECT u.item FROM unnest($2::text[]) AS u(item)"
    " WHERE NOT EXISTS (SELECT FROM batchguard.batch_items i"
    "                    WHERE i.batch_id = $1 AND i.item_id = u.item) LIMIT 1",
    {INT8OID, TEXTARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement first_unregistered_failed{
    "SELECT e->>'item_id' FROM jsonb_array_elements($2) AS e"
    " WHERE NOT EXISTS (SELECT FROM batchguard.batch_items i"
    "                    WHERE i.batch_id = $1 AND i.item_id = e->>'item_id') LIMIT 1",
    {INT8OID, JSONBOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Statement item_completed{
    "SELECT FROM batchguard.batch_items"
    " WHERE batch_id = $1 AND item_id = $2 AND status = 'completed'",
    {INT8OID, TEXTOID}};

pg::Statement retry_items{
    "UPDATE batchguard.batch_items"
    "   SET status = 'pending', attempts = 0, error = NULL, error_detail = NULL,"
    "       lease_token = NULL, lease_expires_at = NULL, worker = NULL,"
    "       updated_at = clock_timestamp()"
    " WHERE batch_id = $1 AND status = 'failed' AND ($2::text[] IS NULL OR item_id = ANY ($2))",
    {INT8OID, TEXTARRAYOID},
    CURSOR_OPT_CUSTOM_PLAN};

pg::Arg optional_datum(const std::optional<Datum>& d) {
    return d ? pg::Arg::of(*d) : pg::Arg::null();
}

// Sorted, so that sessions registering overlapping lists take the keys in one order.
pg::Statement insert_items{
    "INSERT INTO batchguard.batch_items (batch_id, item_id, owner)"
    " SELECT DISTINCT $1::bigint, u.item, $3::text FROM unnest($2::text[]) AS u(item) ORDER BY 2"
    " ON CONFLICT (batch_id, item_id) DO NOTHING",
    {INT8OID, TEXTARRAYOID, TEXTOID},
    CURSOR_OPT_CUSTOM_PLAN};

}  // namespace

std::int64_t ItemStore::register_items(const Batch& batch, Datum items) {
    pg::Rows rows = spi_.execute(
        insert_items, {pg::Arg::int8(batch.batch_id), pg::Arg::of(items), pg::Arg::text(owner_)});
    return static_cast<std::int64_t>(rows.size());
}

bool ItemStore::record(const Batch& batch, std::string_view item_id, const Outcome& outcome,
                       std::optional<std::int64_t> lease_token) {
    const pg::Arg batch_arg = pg::Arg::int8(batch.batch_id);
    const pg::Arg item_arg = pg::Arg::text(item_id);
    const bool completing = outcome.kind == Outcome::Kind::kCompleted;
    const pg::Arg error_arg = outcome.error ? pg::Arg::text(*outcome.error) : pg::Arg::null();

    if (lease_token) {
        pg::Rows changed = completing
                               ? spi_.execute(update_completed_leased,
                                              {batch_arg, item_arg, optional_datum(outcome.result),
                                               pg::Arg::int8(*lease_token)})
                               : spi_.execute(update_failed_leased, {batch_arg, item_arg, error_arg,
                                                                     optional_datum(outcome.detail),
                                                                     pg::Arg::int8(*lease_token)});
        if (!changed.empty()) return true;
        check_lease_refusal(batch, item_id, *lease_token);
        return false;
    }

    if (!batch.items_registered) {
        if (!completing)
            return !spi_.execute(insert_failed, {batch_arg, item_arg, pg::Arg::text(owner_),
                                                 error_arg, optional_datum(outcome.detail)})
                        .empty();
        if (!spi_.execute(insert_completed, {batch_arg, item_arg, pg::Arg::text(owner_),
                                             optional_datum(outcome.result)})
                 .empty())
            return true;
        // Known already (pending or failed, or a concurrent insert of it committed first):
        // completed now unless it was.
        return !spi_.execute(update_completed,
                             {batch_arg, item_arg, optional_datum(outcome.result)})
                    .empty();
    }

    pg::Rows changed =
        completing
            ? spi_.execute(update_completed, {batch_arg, item_arg, optional_datum(outcome.result)})
            : spi_.execute(update_failed,
                           {batch_arg, item_arg, error_arg, optional_datum(outcome.detail)});
    if (!changed.empty()) return true;
    if (spi_.execute(find_item, {batch_arg, item_arg}).empty()) not_registered(item_id);
    return false;  // already completed (or, for fail_item, already final)
}

void ItemStore::check_lease_refusal(const Batch& batch, std::string_view item_id,
                                    std::int64_t lease_token) {
    pg::Rows item =
        spi_.execute(find_item, {pg::Arg::int8(batch.batch_id), pg::Arg::text(item_id)});
    if (item.empty()) {
        if (batch.items_registered) not_registered(item_id);
        throw Error(sqlstate::kLeaseLost,
                    "lease " + std::to_string(lease_token) + " of item \"" + std::string(item_id) +
                        "\" is not current",
                    "The item has no lease.", "Claim items with claim_items() first.");
    }
    const std::string status = item.text(0, 1).value();
    const std::optional<std::int64_t> current = item.int8(0, 2);
    const std::int32_t attempt = item.int4(0, 3).value();
    // The holder of the lease repeating its own final call: nothing changed, no error.
    if ((status == "completed" || status == "failed") && current == lease_token) return;
    // Say what became of the lease, from the item's state.
    std::string what;
    if (status == "running" && current)
        what = "The item is running under lease " + std::to_string(*current) +
               ": this lease expired and the item was handed to another worker.";
    else if (status == "pending")
        what =
            "The item is pending: the lease was released (it expired, or resume_batch() or "
            "retry_failed() put the item back), or this token was never its lease.";
    else
        what = "The item is " + status +
               (current ? " under lease " + std::to_string(*current) : std::string()) +
               ": this token is not its lease.";
    throw Error(sqlstate::kLeaseLost,
                "lease " + std::to_string(lease_token) + " of item \"" + std::string(item_id) +
                    "\" is no longer current (attempt " + std::to_string(attempt) + ")",
                what, "Roll back this transaction: its work on the item must not commit.");
}

void ItemStore::not_registered(std::string_view item_id) {
    throw Error(sqlstate::kInvalidParameterValue,
                "item \"" + std::string(item_id) + "\" is not registered in this batch", {},
                "Register items with start_batch() or add_items() before recording them.");
}

void ItemStore::record_completed(const Batch& batch, Datum items) {
    spi_.execute(merge_completed,
                 {pg::Arg::int8(batch.batch_id), pg::Arg::of(items), pg::Arg::text(owner_)});
}

void ItemStore::record_failed(const Batch& batch, Datum failed) {
    spi_.execute(merge_failed,
                 {pg::Arg::int8(batch.batch_id), pg::Arg::of(failed), pg::Arg::text(owner_)});
}

void ItemStore::require_registered(const Batch& batch, Datum items) {
    if (!batch.items_registered) return;
    pg::Rows unknown =
        spi_.execute(first_unregistered, {pg::Arg::int8(batch.batch_id), pg::Arg::of(items)});
    if (!unknown.empty()) not_registered(unknown.text(0, 1).value());
}

void ItemStore::require_registered_failed(const Batch& batch, Datum failed) {
    if (!batch.items_registered) return;
    pg::Rows unknown = spi_.execute(first_unregistered_failed,
                                    {pg::Arg::int8(batch.batch_id), pg::Arg::of(failed)});
    if (!unknown.empty()) not_registered(unknown.text(0, 1).value());
}

bool ItemStore::is_completed(const Batch& batch, std::string_view item_id) {
    return !spi_.execute(item_completed, {pg::Arg::int8(batch.batch_id), pg::Arg::text(item_id)})
                .empty();
}

std::int64_t ItemStore::retry_failed(const Batch& batch, std::optional<Datum> item_ids) {
    pg::Rows rows =
        spi_.execute(retry_items, {pg::Arg::int8(batch.batch_id), optional_datum(item_ids)});
    return static_cast<std::int64_t>(rows.size());
}

}  // namespace batchguard::checkpoint
