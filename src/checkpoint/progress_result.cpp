#include "checkpoint/progress_result.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/result_row.hpp"

namespace batchguard::checkpoint {

Datum percentage_datum(std::int64_t hundredths) {
    return pg::pg_call([&] { return NumericGetDatum(int64_div_fast_to_numeric(hundredths, 2)); });
}

HeapTuple progress_tuple(TupleDesc desc, std::string_view job_id, const Batch& batch,
                         const ItemTotals& totals) {
    const Progress p = compute_progress(facts_of(batch, totals));
    // By name, against the installed batchguard.progress (a database at an older version
    // may have fewer columns); what is not set is NULL.
    pg::ResultRow row(desc);
    row.set("job_id", pg::text_datum(job_id));
    row.set("status", pg::text_datum(to_string(p.status)));
    if (p.total) row.set("total_items", Int64GetDatum(*p.total));
    row.set("completed", Int64GetDatum(p.completed));
    row.set("failed", Int64GetDatum(p.failed));
    row.set("pending", Int64GetDatum(p.pending));
    row.set("running", Int64GetDatum(p.running));
    if (p.percent_hundredths) row.set("percentage", percentage_datum(*p.percent_hundredths));
    if (p.items_per_second) row.set("items_per_second", Float8GetDatum(*p.items_per_second));
    if (p.eta_us) {
        row.set("eta", pg::pg_call([&] {
                    auto* eta = static_cast<Interval*>(palloc0(sizeof(Interval)));
                    eta->time = *p.eta_us;
                    return IntervalPGetDatum(eta);
                }));
    }
    row.set("started_at", TimestampTzGetDatum(batch.created_at));
    row.set("updated_at", TimestampTzGetDatum(last_change_of(batch, totals)));
    return row.form();
}

TupleDesc composite_result_desc(FunctionCallInfo fcinfo) {
    return pg::pg_call([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "function returning a composite called in the wrong context");
        return BlessTupleDesc(desc);
    });
}

Datum composite_result(HeapTuple tuple) {
    return pg::pg_call([&] { return HeapTupleGetDatum(tuple); });
}

std::optional<BatchProgress> find_progress(pg::SpiSession& spi, std::string_view owner,
                                           std::string_view job_id) {
    BatchStore batches(spi);
    std::optional<Batch> batch = batches.find(owner, job_id);
    if (!batch) return std::nullopt;
    return BatchProgress{*batch, batches.totals(batch->batch_id)};
}

Datum progress_result(FunctionCallInfo fcinfo, std::string_view job_id, const BatchProgress& p) {
    return composite_result(
        progress_tuple(composite_result_desc(fcinfo), job_id, p.batch, p.totals));
}

}  // namespace batchguard::checkpoint
