#include "checkpoint/batch_store.hpp"

#include "checkpoint/arguments.hpp"
#include "core/error.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/settings.hpp"
#include "pg/unique_row.hpp"

#include <algorithm>

namespace batchguard::checkpoint {

namespace {

pg::Statement find_batch{"SELECT " BATCH_COLUMNS
                         " FROM batchguard.batches WHERE owner = $1 AND job_id = $2",
                         {TEXTOID, TEXTOID}};
// The same lookup without SPI: every per-item call starts with it.
pg::UniqueRowReader batch_by_job{"batches",
                                 "batches_owner_job_id_key",
                                 {"owner", "job_id"},
                                 {"batch_id", "items_registered", "total_items", "max_attempts",
                                  "state", "created_at", "state_changed_at"}};

pg::Statement create_batch{
    "INSERT INTO batchguard.batches (owner, job_id) VALUES ($1, $2)"
    " ON CONFLICT (owner, job_id) DO NOTHING RETURNING " BATCH_COLUMNS,
    {TEXTOID, TEXTOID}};

pg::Statement delete_batch{
    "DELETE FROM batchguard.batches WHERE owner = $1 AND job_id = $2 RETURNING batch_id",
    {TEXTOID, TEXTOID}};

pg::Statement delete_items{"DELETE FROM batchguard.batch_items WHERE batch_id = $1", {INT8OID}};

constexpr const char* kCountItemsSql =
    "SELECT count(*) FILTER (WHERE status = 'completed'),"
    "       count(*) FILTER (WHERE status = 'failed'),"
    "       count(*) FILTER (WHERE status = 'pending'),"
    "       count(*) FILTER (WHERE status = 'running'),"
    "       max(updated_at) FILTER (WHERE status IN ('completed', 'failed')),"
    "       max(updated_at)"
    "  FROM batchguard.batch_items WHERE batch_id = $1";
// Two plans of one query: row security makes a plan depend on the role it was made for.
pg::Statement count_items{kCountItemsSql, {INT8OID}};
pg::Statement count_visible_items{kCountItemsSql, {INT8OID}};

pg::Statement create_registered_batch{
    "INSERT INTO batchguard.batches (owner, job_id, items_registered, total_items, metadata,"
    "                                max_attempts)"
    " VALUES ($1, $2, true, $3, $4, $5)"
    " ON CONFLICT (owner, job_id) DO NOTHING RETURNING " BATCH_COLUMNS,
    {TEXTOID, TEXTOID, INT8OID, JSONBOID, INT4OID}};

pg::Statement lock_batch_row{"SELECT " BATCH_COLUMNS
                             " FROM batchguard.batches WHERE owner = $1 AND job_id = $2 FOR UPDATE",
                             {TEXTOID, TEXTOID}};

pg::Statement update_state{
    "UPDATE batchguard.batches SET state = $2, state_changed_at = clock_timestamp()"
    " WHERE batch_id = $1 AND state <> $2 RETURNING state_changed_at",
    {INT8OID, TEXTOID}};

pg::Statement update_total{
    "UPDATE batchguard.batches SET total_items = $2, total_changed_at = clock_timestamp()"
    " WHERE batch_id = $1 AND total_items IS DISTINCT FROM $2",
    {INT8OID, INT8OID}};

}  // namespace

Batch batch_from_rows(const pg::Rows& rows, std::uint64_t row, int first_column) {
    const int c = first_column;
    Batch batch;
    batch.batch_id = rows.int8(row, c).value();
    batch.items_registered = rows.boolean(row, c + 1).value();
    batch.total_items = rows.int8(row, c + 2);
    batch.max_attempts = rows.int4(row, c + 3).value();
    batch.state = parse_batch_state(rows.text(row, c + 4).value());
    batch.created_at = DatumGetTimestampTz(rows.datum(row, c + 5).value());
    if (auto changed = rows.datum(row, c + 6))
        batch.state_changed_at = DatumGetTimestampTz(*changed);
    return batch;
}

std::optional<Batch> BatchStore::find(std::string_view owner, std::string_view job_id) {
    // Row security applies to statements only: a session as the caller takes one.
    if (spi_.identity() == pg::SpiSession::Identity::kAsExtensionOwner) {
        const auto* row = batch_by_job.find(spi_, {owner, job_id});
        if (row == nullptr) return std::nullopt;
        const auto& v = *row;
        Batch batch;
        batch.batch_id = DatumGetInt64(v[0].value());
        batch.items_registered = DatumGetBool(v[1].value());
        if (v[2]) batch.total_items = DatumGetInt64(*v[2]);
        batch.max_attempts = DatumGetInt32(v[3].value());
        batch.state =
            parse_batch_state(pg::pg_call([&] { return TextDatumGetCString(v[4].value()); }));
        batch.created_at = DatumGetTimestampTz(v[5].value());
        if (v[6]) batch.state_changed_at = DatumGetTimestampTz(*v[6]);
        return batch;
    }
    pg::Rows rows = spi_.execute(find_batch, {pg::Arg::text(owner), pg::Arg::text(job_id)});
    if (rows.empty()) return std::nullopt;
    return batch_from_rows(rows, 0, 1);
}

Batch BatchStore::find_or_create(std::string_view owner, std::string_view job_id) {
    if (auto batch = find(owner, job_id)) return *batch;
    if (!settings::lazy_batches)
        throw Error(sqlstate::kUndefinedObject,
                    "batch \"" + std::string(job_id) + "\" does not exist",
                    "batchguard.lazy_batches is off: complete_item, fail_item and "
                    "save_checkpoint record items of existing batches only.",
                    "Create the batch with start_batch() first, or check the job id.");
    pg::register_owner_role(spi_.caller());
    pg::Rows rows = spi_.execute(create_batch, {pg::Arg::text(owner), pg::Arg::text(job_id)});
    if (!rows.empty()) return batch_from_rows(rows, 0, 1);
    // Created concurrently by another session of the same owner, committed meanwhile.
    if (auto batch = find(owner, job_id)) return *batch;
    throw Error(sqlstate::kInternalError, "batch vanished while it was being created");
}

std::optional<Batch> BatchStore::create_registered(std::string_view owner, std::string_view job_id,
                                                   std::optional<std::int64_t> total,
                                                   Datum metadata, std::int32_t max_attempts) {
    pg::register_owner_role(spi_.caller());
    pg::Rows rows =
        spi_.execute(create_registered_batch,
                     {pg::Arg::text(owner), pg::Arg::text(job_id), pg::Arg::optional_int8(total),
                      pg::Arg::of(metadata), pg::Arg::int4(max_attempts)});
    if (rows.empty()) return std::nullopt;
    return batch_from_rows(rows, 0, 1);
}

Batch BatchStore::existing(std::string_view owner, std::string_view job_id) {
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    std::optional<Batch> batch = find(owner, job_id);
    if (!batch) unknown_job(job_id);
    return *batch;
}

Batch BatchStore::locked(std::string_view owner, std::string_view job_id) {
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    std::optional<Batch> batch = lock(owner, job_id);
    if (!batch) unknown_job(job_id);
    return *batch;
}

std::optional<Batch> BatchStore::lock(std::string_view owner, std::string_view job_id) {
    pg::Rows rows = spi_.execute(lock_batch_row, {pg::Arg::text(owner), pg::Arg::text(job_id)});
    if (rows.empty()) return std::nullopt;
    return batch_from_rows(rows, 0, 1);
}

bool BatchStore::set_state(Batch& batch, BatchState state) {
    pg::Rows rows = spi_.execute(update_state,
                                 {pg::Arg::int8(batch.batch_id), pg::Arg::text(to_string(state))});
    if (rows.empty()) return false;
    batch.state = state;
    batch.state_changed_at = DatumGetTimestampTz(rows.datum(0, 1).value());
    return true;
}

bool BatchStore::remove(std::string_view owner, std::string_view job_id) {
    pg::Rows rows = spi_.execute(delete_batch, {pg::Arg::text(owner), pg::Arg::text(job_id)});
    if (rows.empty()) return false;
    const std::int64_t batch_id = rows.int8(0, 1).value();
    spi_.execute(delete_items, {pg::Arg::int8(batch_id)});
    return true;
}

ItemTotals BatchStore::totals(std::int64_t batch_id) {
    pg::Statement& count =
        spi_.identity() == pg::SpiSession::Identity::kAsCaller ? count_visible_items : count_items;
    pg::Rows rows = spi_.execute(count, {pg::Arg::int8(batch_id)});
    ItemTotals totals;
    totals.counts.completed = rows.int8(0, 1).value();
    totals.counts.failed = rows.int8(0, 2).value();
    totals.counts.pending = rows.int8(0, 3).value();
    totals.counts.running = rows.int8(0, 4).value();
    if (auto at = rows.datum(0, 5)) totals.last_processed_at = DatumGetTimestampTz(*at);
    if (auto at = rows.datum(0, 6)) totals.last_update_at = DatumGetTimestampTz(*at);
    return totals;
}

void BatchStore::set_total(const Batch& batch, std::int64_t total) {
    const std::int64_t known = totals(batch.batch_id).counts.known();
    if (total < known)
        throw Error(sqlstate::kInvalidParameterValue,
                    "total_items (" + std::to_string(total) +
                        ") is smaller than the number of items already known (" +
                        std::to_string(known) + ")");
    spi_.execute(update_total, {pg::Arg::int8(batch.batch_id), pg::Arg::int8(total)});
}

BatchFacts facts_of(const Batch& batch, const ItemTotals& totals) {
    BatchFacts facts;
    facts.counts = totals.counts;
    facts.explicit_total = batch.total_items;
    facts.items_registered = batch.items_registered;
    facts.state = batch.state;
    facts.started_at_us = batch.created_at;
    if (totals.last_processed_at) facts.last_update_us = *totals.last_processed_at;
    return facts;
}

TimestampTz last_change_of(const Batch& batch, const ItemTotals& totals) {
    TimestampTz last = batch.created_at;
    if (batch.state_changed_at) last = std::max(last, *batch.state_changed_at);
    if (totals.last_update_at) last = std::max(last, *totals.last_update_at);
    return last;
}

}  // namespace batchguard::checkpoint
