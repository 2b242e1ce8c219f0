#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace batchguard {

// One element of save_checkpoint's failed_items, as its JSON types
// (jsonb_typeof names: "object", "string", ..., nullopt when the key is absent).
struct FailedItemShape {
    std::int64_t position = 0;  // 1-based, for the error message
    std::string_view element_type;
    std::optional<std::string_view> item_id_type;
    std::optional<std::string_view> error_type;
    std::optional<std::string_view> detail_type;
};

// Throws Error (22023) describing the first thing wrong with the element.
// Accepted: {"item_id": string, "error": string, "detail": object (optional)}.
void validate_failed_item(const FailedItemShape& shape);

// failed_items itself must be a JSON array.
void validate_failed_items_container(std::string_view json_type);

}  // namespace batchguard
