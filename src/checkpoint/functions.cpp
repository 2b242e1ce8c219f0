// SQL entry points of checkpoint & resume (see docs/api.md). Each one validates all of
// its arguments before it changes anything, then works in one SPI session.
#include "checkpoint/arguments.hpp"
#include "checkpoint/item_store.hpp"
#include "checkpoint/progress_events.hpp"
#include "checkpoint/progress_result.hpp"
#include "core/error.hpp"
#include "core/failed_items.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/memory.hpp"
#include "pg/identity.hpp"
#include "pg/result_row.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::checkpoint;

namespace {

pg::Statement failed_items_type{
    "SELECT jsonb_typeof($1),"
    "       CASE jsonb_typeof($1) WHEN 'array' THEN jsonb_array_length($1) ELSE 0 END::int8",
    {JSONBOID}};
pg::Statement failed_items_shapes{
    "SELECT position, jsonb_typeof(e), jsonb_typeof(e -> 'item_id'), jsonb_typeof(e -> 'error'),"
    "       jsonb_typeof(e -> 'detail'), e ->> 'item_id'"
    "  FROM jsonb_array_elements($1) WITH ORDINALITY AS x(e, position)",
    {JSONBOID}};

// failed_items must be [{"item_id": "...", "error": "...", "detail": {...}}, ...].
void validate_failed_items(pg::SpiSession& spi, Datum failed) {
    pg::Rows type = spi.execute(failed_items_type, {pg::Arg::of(failed)});
    validate_failed_items_container(type.text(0, 1).value());
    validate_array_length(type.int8(0, 2).value(), "failed_items");
    pg::Rows rows = spi.execute(failed_items_shapes, {pg::Arg::of(failed)});
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        if ((row & 0xFFF) == 0) pg::check_for_interrupts();
        const std::string element = rows.text(row, 2).value();
        const std::optional<std::string> item_type = rows.text(row, 3);
        const std::optional<std::string> error_type = rows.text(row, 4);
        const std::optional<std::string> detail_type = rows.text(row, 5);
        FailedItemShape shape{rows.int8(row, 1).value(), element, item_type, error_type,
                              detail_type};
        validate_failed_item(shape);
        validate_id(rows.text(row, 6),
                    "failed_items element " + std::to_string(shape.position) + " item_id");
    }
}

Datum bool_result(bool value) { return BoolGetDatum(value); }

// complete_item and fail_item: one outcome, O(1).
bool record_outcome(std::string_view job_id, std::string_view item_id, const Outcome& outcome,
                    std::optional<std::int64_t> lease_token) {
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    BatchStore batches(spi);
    std::optional<Batch> batch;
    if (lease_token) {
        // A lease exists only in a batch that exists: never create one here.
        batch = batches.find(owner, job_id);
        if (!batch) unknown_job(job_id);
    } else {
        batch = batches.find_or_create(owner, job_id);
    }
    const bool changed = ItemStore(spi, owner).record(*batch, item_id, outcome, lease_token);
    if (changed) note_progress(owner, job_id);
    return changed;
}

}  // namespace

BATCHGUARD_FUNCTION(batchguard_save_checkpoint) {
    const std::string_view job_id = job_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "completed_items");
    pg::require_not_null(fcinfo, 2, "failed_items");
    const Datum completed = PG_GETARG_DATUM(1);
    const Datum failed = PG_GETARG_DATUM(2);
    const bool any_completed = !item_list(completed, "completed_items").empty();
    const std::optional<std::int64_t> total = pg::int8_arg(fcinfo, 3);
    if (total && *total < 0)
        throw Error(sqlstate::kInvalidParameterValue, "total_items must not be negative");

    const std::string owner = pg::current_owner();
    BatchProgress progress;
    {
        pg::SpiSession spi;
        validate_failed_items(spi, failed);
        pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
        BatchStore batches(spi);
        Batch batch = batches.find_or_create(owner, job_id);
        ItemStore items(spi, owner);
        if (any_completed) {
            items.require_registered(batch, completed);
            items.record_completed(batch, completed);
        }
        items.require_registered_failed(batch, failed);
        items.record_failed(batch, failed);
        if (total) {
            batches.set_total(batch, *total);
            batch.total_items = total;
        }
        progress = {batch, batches.totals(batch.batch_id)};
    }
    note_progress(owner, job_id);
    return progress_result(fcinfo, job_id, progress);
}

BATCHGUARD_FUNCTION(batchguard_load_checkpoint) {
    static pg::Statement outcomes{
        "SELECT coalesce(array_agg(item_id ORDER BY item_id)"
        "                FILTER (WHERE status = 'completed'), '{}'),"
        "       coalesce(jsonb_agg(jsonb_build_object('item_id', item_id, 'error', error,"
        "                                             'detail', error_detail) ORDER BY item_id)"
        "                FILTER (WHERE status = 'failed'), '[]')"
        "  FROM batchguard.batch_items WHERE batch_id = $1",
        {INT8OID}};
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    std::optional<BatchProgress> progress;
    Datum completed_items = 0;
    Datum failed_items = 0;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        progress = find_progress(spi, owner, job_id);
        if (!progress) PG_RETURN_NULL();
        pg::Rows rows = spi.execute(outcomes, {pg::Arg::int8(progress->batch.batch_id)});
        completed_items = rows.datum_for_caller(0, 1).value();
        failed_items = rows.datum_for_caller(0, 2).value();
    }
    const Progress p = compute_progress(facts_of(progress->batch, progress->totals));
    // By name, against the installed batchguard.checkpoint type.
    pg::ResultRow row(composite_result_desc(fcinfo));
    row.set("job_id", pg::text_datum(job_id));
    row.set("completed_items", completed_items);
    row.set("failed_items", failed_items);
    if (p.total) row.set("total_items", Int64GetDatum(*p.total));
    if (p.percent_hundredths) row.set("percentage", percentage_datum(*p.percent_hundredths));
    row.set("updated_at", TimestampTzGetDatum(last_change_of(progress->batch, progress->totals)));
    row.set("status", pg::text_datum(to_string(p.status)));
    return composite_result(row.form());
}

BATCHGUARD_FUNCTION(batchguard_cleanup_checkpoint) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    // Waits for in-flight item writes of this job, and keeps new ones out until commit.
    pg::lock_job(owner, job_id, pg::JobLockMode::kExclusive);
    const bool removed = BatchStore(spi).remove(owner, job_id);
    if (removed) note_progress(owner, job_id);
    return bool_result(removed);
}

BATCHGUARD_FUNCTION(batchguard_calculate_progress) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    std::optional<BatchProgress> progress;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        progress = find_progress(spi, owner, job_id);
    }
    if (!progress) PG_RETURN_NULL();
    return progress_result(fcinfo, job_id, *progress);
}

BATCHGUARD_FUNCTION(batchguard_get_incomplete_checkpoints) {
    static pg::Statement owner_batches{"SELECT job_id, " BATCH_COLUMNS
                                       " FROM batchguard.batches"
                                       " WHERE owner = $1 ORDER BY created_at DESC, batch_id DESC",
                                       {TEXTOID}};
    const std::string owner = pg::current_owner();
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
    BatchStore batches(spi);
    pg::Rows rows = spi.execute(owner_batches, {pg::Arg::text(owner)});
    // Read every batch before the next statement replaces the SPI result.
    std::vector<std::pair<std::string, Batch>> owned;
    for (std::uint64_t row = 0; row < rows.size(); ++row)
        owned.emplace_back(rows.text(row, 1).value(), batch_from_rows(rows, row, 2));
    // Each batch's statements and tuple in a context reset for the next one (the
    // tuplestore keeps its own copy).
    pg::ScratchContext per_batch("get_incomplete_checkpoints batch");
    for (const auto& [job_id, batch] : owned) {
        per_batch.reset();
        pg::ContextSwitch batch_memory(per_batch.get());
        const ItemTotals totals = batches.totals(batch.batch_id);
        const BatchStatus status = compute_progress(facts_of(batch, totals)).status;
        if (status == BatchStatus::kCompleted || status == BatchStatus::kCancelled) continue;
        HeapTuple tuple = progress_tuple(rsinfo->setDesc, job_id, batch, totals);
        pg::pg_call([&] { tuplestore_puttuple(rsinfo->setResult, tuple); });
    }
    return static_cast<Datum>(0);
}

BATCHGUARD_FUNCTION(batchguard_filter_pending_items) {
    // One row: the positions of the items not done, aggregated in the server (a row per
    // item through SPI costs more than the anti-join itself on large inputs); NULL if none.
    // The set-returning functions run in the select list, in lockstep, and stream their
    // rows: unnest() in FROM would first store all of them (on disk past work_mem). $3 is
    // the number of items: each reference to $2 copies the whole array into the plan.
    static pg::Statement pending_positions{
        "SELECT array_agg(u.position)"
        "  FROM (SELECT unnest($2::text[]) AS item, generate_series(1, $3) AS position) AS u"
        " WHERE NOT EXISTS (SELECT FROM batchguard.batch_items i"
        "                    WHERE i.batch_id = $1 AND i.item_id = u.item"
        "                      AND i.status IN ('completed', 'failed'))",
        {INT8OID, TEXTARRAYOID, INT8OID},
        CURSOR_OPT_CUSTOM_PLAN};
    const std::string_view job_id = job_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "items");
    pg::require_array_within_limit(PG_GETARG_DATUM(1), "items");  // before reading it all
    // Detoasted once, for the C++ and for the query alike.
    const Datum array =
        pg::pg_call([&] { return PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(1))); });
    const std::vector<std::string_view> items = item_list(array, "items");
    const std::string owner = pg::current_owner();

    std::vector<char> pending(items.size(), 1);  // an unknown job has everything pending
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        std::optional<Batch> batch = BatchStore(spi).find(owner, job_id);
        if (batch && !items.empty()) {
            pending.assign(items.size(), 0);
            pg::Rows rows = spi.execute(pending_positions,
                                        {pg::Arg::int8(batch->batch_id), pg::Arg::of(array),
                                         pg::Arg::int8(static_cast<std::int64_t>(items.size()))});
            if (std::optional<Datum> positions = rows.datum(0, 1)) {
                for (std::optional<std::int64_t> position : pg::int8_array_elements(*positions)) {
                    if (!position || *position < 1 ||
                        static_cast<std::uint64_t>(*position) > items.size())
                        throw Error(sqlstate::kInternalError, "item position out of range");
                    pending[static_cast<std::size_t>(*position - 1)] = 1;
                }
            }
        }
    }
    // Whether an item is pending depends on its id only, so de-duplicating the pending
    // items alone gives each pending item once, at its first position: fewer to hash.
    std::vector<std::string_view> candidates;
    candidates.reserve(items.size());
    for (std::size_t position = 0; position < items.size(); ++position) {
        if ((position & 0xFFFF) == 0) pg::check_for_interrupts();
        if (pending[position]) candidates.push_back(items[position]);
    }
    std::vector<std::string_view> kept;
    kept.reserve(candidates.size());
    for (std::size_t position : batchguard::first_occurrences(candidates))
        kept.push_back(candidates[position]);
    return pg::make_text_array(kept);
}

BATCHGUARD_FUNCTION(batchguard_is_item_completed) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string_view item_id = item_arg(fcinfo, 1);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
    std::optional<Batch> batch = BatchStore(spi).find(owner, job_id);
    return bool_result(batch && ItemStore(spi, owner).is_completed(*batch, item_id));
}

BATCHGUARD_FUNCTION(batchguard_complete_item) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string_view item_id = item_arg(fcinfo, 1);
    Outcome outcome{Outcome::Kind::kCompleted, std::nullopt, std::nullopt, std::nullopt};
    if (!PG_ARGISNULL(2)) outcome.result = PG_GETARG_DATUM(2);
    return bool_result(record_outcome(job_id, item_id, outcome, pg::int8_arg(fcinfo, 3)));
}

BATCHGUARD_FUNCTION(batchguard_fail_item) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string_view item_id = item_arg(fcinfo, 1);
    std::optional<std::string_view> error = pg::text_arg(fcinfo, 2);
    if (!error) throw Error(sqlstate::kNullValueNotAllowed, "error must not be NULL");
    Outcome outcome{Outcome::Kind::kFailed, std::nullopt, error,
                    jsonb_object_arg(fcinfo, 3, "detail")};
    return bool_result(record_outcome(job_id, item_id, outcome, pg::int8_arg(fcinfo, 4)));
}

BATCHGUARD_FUNCTION(batchguard_retry_failed) {
    const std::string_view job_id = job_arg(fcinfo);
    std::optional<Datum> item_ids;
    if (!PG_ARGISNULL(1)) {
        item_ids = PG_GETARG_DATUM(1);
        (void)item_list(*item_ids, "item_ids");
    }
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    const Batch batch = BatchStore(spi).existing(owner, job_id);
    const std::int64_t retried = ItemStore(spi, owner).retry_failed(batch, item_ids);
    if (retried > 0) note_progress(owner, job_id);
    return Int64GetDatum(retried);
}

// _batch_progress(batches row): anyone can call it (the view batch_summary does, as the
// caller), with any row: a NULL or incomplete row gives NULL; the items counted are those
// row security shows the caller, so a forged row reveals nothing.
BATCHGUARD_FUNCTION(batchguard_batch_progress) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    HeapTupleHeader row = pg::pg_call([&] { return PG_GETARG_HEAPTUPLEHEADER(0); });
    auto attribute = [&](const char* name) {
        bool is_null = false;
        Datum value = pg::pg_call([&] { return GetAttributeByName(row, name, &is_null); });
        return is_null ? std::optional<Datum>() : std::optional<Datum>(value);
    };
    auto text_attribute = [&](const char* name) -> std::optional<std::string> {
        const std::optional<Datum> value = attribute(name);
        if (!value) return std::nullopt;
        return std::string(pg::pg_call([&] { return TextDatumGetCString(*value); }));
    };
    const std::optional<Datum> batch_id = attribute("batch_id");
    const std::optional<Datum> items_registered = attribute("items_registered");
    const std::optional<Datum> created_at = attribute("created_at");
    const std::optional<std::string> state = text_attribute("state");
    const std::optional<std::string> job_id = text_attribute("job_id");
    if (!batch_id || !items_registered || !created_at || !state || !job_id) PG_RETURN_NULL();
    if (*state != "active" && *state != "paused" && *state != "cancelled")
        throw Error(sqlstate::kInvalidParameterValue,
                    "batch state must be active, paused or cancelled", "It is \"" + *state + "\".");
    Batch batch;
    batch.batch_id = DatumGetInt64(*batch_id);
    batch.items_registered = DatumGetBool(*items_registered);
    if (auto total = attribute("total_items")) batch.total_items = DatumGetInt64(*total);
    batch.state = parse_batch_state(*state);
    batch.created_at = DatumGetTimestampTz(*created_at);
    if (auto changed = attribute("state_changed_at"))
        batch.state_changed_at = DatumGetTimestampTz(*changed);
    ItemTotals totals;
    {
        // As the caller: row security decides which items are counted.
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        totals = BatchStore(spi).totals(batch.batch_id);
    }
    return progress_result(fcinfo, *job_id, BatchProgress{batch, totals});
}

// _progress_bar(percentage, width): any numeric, NaN and infinities included.
BATCHGUARD_FUNCTION(batchguard_progress_bar) {
    std::optional<std::int64_t> hundredths;
    if (!PG_ARGISNULL(0)) {
        const double percent = pg::pg_call([&] {
            return DatumGetFloat8(
                DirectFunctionCall1(numeric_float8_no_overflow, PG_GETARG_DATUM(0)));
        });
        // Clamped before the conversion: a double beyond int64's range has no integer value.
        if (!std::isnan(percent))
            hundredths = static_cast<std::int64_t>(std::clamp(percent, 0.0, 100.0) * 100);
    }
    const int width = PG_ARGISNULL(1) ? 20 : PG_GETARG_INT32(1);
    if (width < 1 || width > 1000)
        throw Error(sqlstate::kInvalidParameterValue, "width must be between 1 and 1000");
    return pg::text_datum(progress_bar(hundredths, width));
}
