#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace batchguard {

// Job and item ids are opaque text, stored in btree keys: keep them well below the
// btree tuple limit (about 2.7 kB) so any id that is accepted can always be stored.
inline constexpr std::size_t kMaxIdBytes = 1024;

// The most elements an array argument may have (items, lease tokens, ids): bounds the work
// one call accepts, so that a huge list is refused at once instead of running for minutes.
inline constexpr std::int64_t kMaxArrayElements = 1'000'000;

// Throws Error (22023) naming the argument when it has more than kMaxArrayElements.
void validate_array_length(std::int64_t elements, std::string_view what);

// Throws Error (22004 for NULL, 22023 for empty or too long) naming what the id is.
void validate_id(std::optional<std::string_view> id, std::string_view what);

// What validate_id accepts, without building an error name: the check for long lists.
inline bool is_valid_id(std::string_view id) { return !id.empty() && id.size() <= kMaxIdBytes; }

}  // namespace batchguard
