#include "checkpoint/arguments.hpp"

#include "core/error.hpp"
#include "core/ids.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

#include <string>

namespace batchguard::checkpoint {

std::string_view job_arg(FunctionCallInfo fcinfo, int n) {
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

std::vector<std::string_view> item_list(Datum array, const char* what) {
    pg::require_array_within_limit(array, what);
    std::vector<std::optional<std::string_view>> elements = pg::text_array_elements(array);
    std::vector<std::string_view> items;
    items.reserve(elements.size());
    for (std::size_t i = 0; i < elements.size(); ++i) {
        if ((i & 0xFFFF) == 0) pg::check_for_interrupts();
        if (!elements[i])
            throw Error(sqlstate::kNullValueNotAllowed, std::string(what) +
                                                            " must not contain NULL (element " +
                                                            std::to_string(i + 1) + ")");
        // The message is built only for a bad element.
        if (!is_valid_id(*elements[i]))
            validate_id(elements[i], std::string(what) + " element " + std::to_string(i + 1));
        items.push_back(*elements[i]);
    }
    return items;
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

void unknown_job(std::string_view job_id) {
    throw Error(sqlstate::kUndefinedObject, "batch \"" + std::string(job_id) + "\" does not exist",
                {},
                "Job ids are per owner: create the batch with start_batch() or save_checkpoint().");
}

}  // namespace batchguard::checkpoint
