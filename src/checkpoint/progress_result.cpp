#include "checkpoint/progress_result.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

#include <array>

namespace batchguard::checkpoint {

HeapTuple progress_tuple(TupleDesc desc, std::string_view job_id, const Batch& batch,
                         const ItemTotals& totals) {
    const Progress p = compute_progress(facts_of(batch, totals));
    constexpr int kColumns = 12;
    std::array<Datum, kColumns> values{};
    std::array<bool, kColumns> nulls{};
    values[0] = pg::text_datum(job_id);
    values[1] = pg::text_datum(to_string(p.status));
    if (p.total)
        values[2] = Int64GetDatum(*p.total);
    else
        nulls[2] = true;
    values[3] = Int64GetDatum(p.completed);
    values[4] = Int64GetDatum(p.failed);
    values[5] = Int64GetDatum(p.pending);
    values[6] = Int64GetDatum(p.running);
    if (p.percent_hundredths)
        values[7] = pg::pg_call(
            [&] { return NumericGetDatum(int64_div_fast_to_numeric(*p.percent_hundredths, 2)); });
    else
        nulls[7] = true;
    if (p.items_per_second)
        values[8] = Float8GetDatum(*p.items_per_second);
    else
        nulls[8] = true;
    if (p.eta_us) {
        values[9] = pg::pg_call([&] {
            auto* eta = static_cast<Interval*>(palloc0(sizeof(Interval)));
            eta->time = *p.eta_us;
            return IntervalPGetDatum(eta);
        });
    } else {
        nulls[9] = true;
    }
    values[10] = TimestampTzGetDatum(batch.created_at);
    values[11] = TimestampTzGetDatum(last_change_of(batch, totals));
    return pg::pg_call([&] { return heap_form_tuple(desc, values.data(), nulls.data()); });
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
