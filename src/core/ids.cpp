#include "core/ids.hpp"

#include "core/error.hpp"

#include <string>

namespace batchguard {

void validate_id(std::optional<std::string_view> id, std::string_view what) {
    const std::string name(what);
    if (!id) throw Error(sqlstate::kNullValueNotAllowed, name + " must not be NULL");
    if (id->empty()) throw Error(sqlstate::kInvalidParameterValue, name + " must not be empty");
    if (id->size() > kMaxIdBytes)
        throw Error(sqlstate::kInvalidParameterValue,
                    name + " is too long (" + std::to_string(id->size()) + " bytes)",
                    "The maximum is " + std::to_string(kMaxIdBytes) + " bytes.");
}

void validate_array_length(std::int64_t elements, std::string_view what) {
    if (elements > kMaxArrayElements)
        throw Error(sqlstate::kInvalidParameterValue,
                    std::string(what) + " has " + std::to_string(elements) +
                        " elements, more than a call accepts",
                    "The maximum is " + std::to_string(kMaxArrayElements) + " elements.",
                    "Split the list over several calls.");
}

}  // namespace batchguard
