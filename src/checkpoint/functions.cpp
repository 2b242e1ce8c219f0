// SQL entry points of checkpoint & resume (see docs/api.md). Each one validates all of
// its arguments before it changes anything, then works in one SPI session.
#include "checkpoint/item_store.hpp"
#include "checkpoint/progress_result.hpp"
#include "core/error.hpp"
#include "core/failed_items.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::checkpoint;

namespace {

std::string_view job_arg(FunctionCallInfo fcinfo, int n = 0) {
    std::optional<std::string_view> job_id = pg::text_arg(fcinfo, n);
    validate_id(job_id, "job_id");
    pg::set_error_context("pg_batchguard job \"" + std::string(*job_id) + "\"");
    return *job_id;
}

std::string_view item_arg(FunctionCallInfo fcinfo, int n) {
    std::optional<std::string_view> item_id = pg::text_arg(fcinfo, n);
    validate_id(item_id, "item_id");
    return *item_id;
}

// Every element of an item list must be a valid id; returns the elements.
std::vector<std::string_view> item_list(Datum array, const char* what) {
    std::vector<std::optional<std::string_view>> elements = pg::text_array_elements(array);
    std::vector<std::string_view> items;
    items.reserve(elements.size());
    for (std::size_t i = 0; i < elements.size(); ++i) {
        if ((i & 0xFFFF) == 0) pg::check_for_interrupts();
        if (!elements[i])
            throw Error(sqlstate::kNullValueNotAllowed,
                        std::string(what) + " must not contain NULL (element " +
                            std::to_string(i + 1) + ")");
        validate_id(elements[i], std::string(what) + " element " + std::to_string(i + 1));
        items.push_back(*elements[i]);
    }
    return items;
}

[[noreturn]] void unknown_job(std::string_view job_id) {
    throw Error(sqlstate::kUndefinedObject, "batch \"" + std::string(job_id) + "\" does not exist",
                {}, "Job ids are per owner: create the batch with start_batch() or save_checkpoint().");
}

pg::Statement failed_items_type{"SELECT jsonb_typeof($1)", {JSONBOID}};
pg::Statement failed_items_shapes{
    "SELECT position, jsonb_typeof(e), jsonb_typeof(e -> 'item_id'), jsonb_typeof(e -> 'error'),"
    "       jsonb_typeof(e -> 'detail'), e ->> 'item_id'"
    "  FROM jsonb_array_elements($1) WITH ORDINALITY AS x(e, position)",
    {JSONBOID}};

// failed_items must be [{"item_id": "...", "error": "...", "detail": {...}}, ...].
void validate_failed_items(pg::SpiSession& spi, Datum failed) {
    validate_failed_items_container(
        spi.execute(failed_items_type, {pg::Arg::of(failed)}).text(0, 1).value());
    pg::Rows rows = spi.execute(failed_items_shapes, {pg::Arg::of(failed)});
    for (std::uint64_t row = 0; row < rows.size(); ++row) {
        if ((row & 0xFFF) == 0) pg::check_for_interrupts();
        const std::string element = rows.text(row, 2).value();
        const std::optional<std::string> item_type = rows.text(row, 3);
        const std::optional<std::string> error_type = rows.text(row, 4);
        const std::optional<std::string> detail_type = rows.text(row, 5);
        FailedItemShape shape{rows.int8(row, 1).value(), element, item_type, error_type, detail_type};
        validate_failed_item(shape);
        validate_id(rows.text(row, 6), "failed_items element " + std::to_string(shape.position) +
                                           " item_id");
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
    return ItemStore(spi, owner).record(*batch, item_id, outcome, lease_token);
}

std::optional<Datum> jsonb_object_arg(FunctionCallInfo fcinfo, int n, const char* name) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    Datum value = PG_GETARG_DATUM(n);
    const bool is_object = pg::pg_call([&] {
        Jsonb* jsonb = DatumGetJsonbP(value);
        return JB_ROOT_IS_OBJECT(jsonb);
    });
    if (!is_object)
        throw Error(sqlstate::kInvalidParameterValue, std::string(name) + " must be a JSON object");
    return value;
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
    TupleDesc desc = composite_result_desc(fcinfo);
    Datum values[7];
    bool nulls[7] = {};
    values[0] = pg::text_datum(job_id);
    values[1] = completed_items;
    values[2] = failed_items;
    if (p.total) values[3] = Int64GetDatum(*p.total); else nulls[3] = true;
    if (p.percent_hundredths)
        values[4] = pg::pg_call(
            [&] { return NumericGetDatum(int64_div_fast_to_numeric(*p.percent_hundredths, 2)); });
    else
        nulls[4] = true;
    values[5] = TimestampTzGetDatum(last_change_of(progress->batch, progress->totals));
    values[6] = pg::text_datum(to_string(p.status));
    return composite_result(fcinfo, pg::pg_call([&] { return heap_form_tuple(desc, values, nulls); }));
}

BATCHGUARD_FUNCTION(batchguard_cleanup_checkpoint) {
    const std::string_view job_id = job_arg(fcinfo);
    const std::string owner = pg::current_owner();
    pg::SpiSession spi;
    // Waits for in-flight item writes of this job, and keeps new ones out until commit.
    pg::lock_job(owner, job_id, pg::JobLockMode::kExclusive);
    return bool_result(BatchStore(spi).remove(owner, job_id));
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
    static pg::Statement owner_batches{
        "SELECT job_id, " BATCH_COLUMNS " FROM batchguard.batches"
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
    for (const auto& [job_id, batch] : owned) {
        const ItemTotals totals = batches.totals(batch.batch_id);
        const BatchStatus status = compute_progress(facts_of(batch, totals)).status;
        if (status == BatchStatus::kCompleted || status == BatchStatus::kCancelled) continue;
        HeapTuple tuple = progress_tuple(rsinfo->setDesc, job_id, batch, totals);
        pg::pg_call([&] { tuplestore_puttuple(rsinfo->setResult, tuple); });
    }
    return static_cast<Datum>(0);
}

BATCHGUARD_FUNCTION(batchguard_filter_pending_items) {
    static pg::Statement pending_positions{
        "SELECT u.position FROM unnest($2::text[]) WITH ORDINALITY AS u(item, position)"
        " WHERE NOT EXISTS (SELECT FROM batchguard.batch_items i"
        "                    WHERE i.batch_id = $1 AND i.item_id = u.item"
        "                      AND i.status IN ('completed', 'failed'))",
        {INT8OID, TEXTARRAYOID}, CURSOR_OPT_CUSTOM_PLAN};
    const std::string_view job_id = job_arg(fcinfo);
    pg::require_not_null(fcinfo, 1, "items");
    const Datum array = PG_GETARG_DATUM(1);
    const std::vector<std::string_view> items = item_list(array, "items");
    const std::string owner = pg::current_owner();

    std::vector<char> pending(items.size(), 1);  // an unknown job has everything pending
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        std::optional<Batch> batch = BatchStore(spi).find(owner, job_id);
        if (batch && !items.empty()) {
            pending.assign(items.size(), 0);
            pg::Rows rows =
                spi.execute(pending_positions, {pg::Arg::int8(batch->batch_id), pg::Arg::of(array)});
            for (std::uint64_t row = 0; row < rows.size(); ++row) {
                if ((row & 0xFFFF) == 0) pg::check_for_interrupts();
                pending[static_cast<std::size_t>(rows.int8(row, 1).value() - 1)] = 1;
            }
        }
    }
    std::vector<std::string_view> kept;
    std::size_t visited = 0;
    for (std::size_t position : batchguard::pending_positions(items, [&](std::size_t position) {
             if ((++visited & 0xFFFF) == 0) pg::check_for_interrupts();
             return !pending[position];
         }))
        kept.push_back(items[position]);
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
    pg::lock_job(owner, job_id, pg::JobLockMode::kShared);
    std::optional<Batch> batch = BatchStore(spi).find(owner, job_id);
    if (!batch) unknown_job(job_id);
    return Int64GetDatum(ItemStore(spi, owner).retry_failed(*batch, item_ids));
}

BATCHGUARD_FUNCTION(batchguard_batch_progress) {
    pg::require_not_null(fcinfo, 0, "batch");
    HeapTupleHeader row = pg::pg_call([&] { return PG_GETARG_HEAPTUPLEHEADER(0); });
    auto attribute = [&](const char* name) {
        bool is_null = false;
        Datum value = pg::pg_call([&] { return GetAttributeByName(row, name, &is_null); });
        return is_null ? std::optional<Datum>() : std::optional<Datum>(value);
    };
    Batch batch;
    batch.batch_id = DatumGetInt64(attribute("batch_id").value());
    batch.items_registered = DatumGetBool(attribute("items_registered").value());
    if (auto total = attribute("total_items")) batch.total_items = DatumGetInt64(*total);
    batch.state = parse_batch_state(
        pg::pg_call([&] { return TextDatumGetCString(attribute("state").value()); }));
    batch.created_at = DatumGetTimestampTz(attribute("created_at").value());
    if (auto changed = attribute("state_changed_at"))
        batch.state_changed_at = DatumGetTimestampTz(*changed);
    const std::string job_id =
        pg::pg_call([&] { return TextDatumGetCString(attribute("job_id").value()); });
    ItemTotals totals;
    {
        // As the caller: row security decides which items are counted.
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly, pg::SpiSession::Identity::kAsCaller);
        totals = BatchStore(spi).totals(batch.batch_id);
    }
    return progress_result(fcinfo, job_id, BatchProgress{batch, totals});
}

BATCHGUARD_FUNCTION(batchguard_progress_bar) {
    std::optional<std::int64_t> hundredths;
    if (!PG_ARGISNULL(0)) {
        const double percent = pg::pg_call(
            [&] { return DatumGetFloat8(DirectFunctionCall1(numeric_float8, PG_GETARG_DATUM(0))); });
        hundredths = static_cast<std::int64_t>(percent * 100);
    }
    const int width = PG_ARGISNULL(1) ? 20 : PG_GETARG_INT32(1);
    if (width < 1 || width > 1000)
        throw Error(sqlstate::kInvalidParameterValue, "width must be between 1 and 1000");
    return pg::text_datum(progress_bar(hundredths, width));
}
