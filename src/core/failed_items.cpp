#include "core/failed_items.hpp"

#include "core/error.hpp"

#include <string>

namespace batchguard {

namespace {
[[noreturn]] void malformed(std::int64_t position, const std::string& what) {
    throw Error(
        sqlstate::kInvalidParameterValue,
        "failed_items element " + std::to_string(position) + " " + what, {},
        R"(Each element must look like {"item_id": "...", "error": "...", "detail": {...}}.)");
}
}  // namespace

void validate_failed_items_container(std::string_view json_type) {
    if (json_type != "array")
        throw Error(sqlstate::kInvalidParameterValue,
                    "failed_items must be a JSON array, not " + std::string(json_type), {},
                    R"(Pass '[{"item_id": "...", "error": "..."}]'.)");
}

void validate_failed_item(const FailedItemShape& shape) {
    if (shape.element_type != "object")
        malformed(shape.position, "must be an object, not " + std::string(shape.element_type));
    if (!shape.item_id_type || *shape.item_id_type == "null")
        malformed(shape.position, "has no \"item_id\"");
    if (*shape.item_id_type != "string")
        malformed(shape.position, "has an \"item_id\" that is not a string");
    if (!shape.error_type || *shape.error_type == "null")
        malformed(shape.position, "has no \"error\"");
    if (*shape.error_type != "string")
        malformed(shape.position, "has an \"error\" that is not a string");
    if (shape.detail_type && *shape.detail_type != "object" && *shape.detail_type != "null")
        malformed(shape.position, "has a \"detail\" that is not an object");
}

}  // namespace batchguard
