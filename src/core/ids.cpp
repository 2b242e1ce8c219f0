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

}  // namespace batchguard
