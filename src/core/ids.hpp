#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <optional>
#include <string_view>

namespace batchguard {

// Job and item ids are opaque text, stored in btree keys: keep them well below the
// btree tuple limit (about 2.7 kB) so any id that is accepted can always be stored.
inline constexpr std::size_t kMaxIdBytes = 1024;

// Throws Error (22004 for NULL, 22023 for empty or too long) naming what the id is.
void validate_id(std::optional<std::string_view> id, std::string_view what);

// What validate_id accepts, without building an error name: the check for long lists.
inline bool is_valid_id(std::string_view id) { return !id.empty() && id.size() <= kMaxIdBytes; }

}  // namespace batchguard
