// batchguard.progress values: the SQL face of core::compute_progress.
#pragma once
#include "checkpoint/batch_store.hpp"

#include <string_view>

namespace batchguard::checkpoint {

// A percentage in hundredths as numeric with two decimals.
Datum percentage_datum(std::int64_t hundredths);

// A batchguard.progress tuple of the installed type `desc`.
HeapTuple progress_tuple(TupleDesc desc, std::string_view job_id, const Batch& batch,
                         const ItemTotals& totals);

struct BatchProgress {
    Batch batch;
    ItemTotals totals;
};

// The caller's batch `job_id` with its item totals, or nullopt when it has none.
std::optional<BatchProgress> find_progress(pg::SpiSession& spi, std::string_view owner,
                                           std::string_view job_id);

// The function's batchguard.progress result. Call it after the SPI session has ended:
// memory allocated during SPI is released with it.
Datum progress_result(FunctionCallInfo fcinfo, std::string_view job_id, const BatchProgress& p);

// The function's composite result type, blessed (to build its tuple with).
TupleDesc composite_result_desc(FunctionCallInfo fcinfo);
// The composite datum of a tuple built with that descriptor.
Datum composite_result(HeapTuple tuple);

}  // namespace batchguard::checkpoint
