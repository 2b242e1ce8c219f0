#pragma once
#include "core/pure.hpp"

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

namespace batchguard {

// Positions of the first occurrence of each distinct item, in input order.
std::vector<std::size_t> first_occurrences(const std::vector<std::string_view>& items);

// Positions of the items for which `done(position)` is false, each item once (its first
// occurrence), in input order: the resume filter. `done` answers alike for equal items.
std::vector<std::size_t> pending_positions(const std::vector<std::string_view>& items,
                                           const std::function<bool(std::size_t)>& done);

}  // namespace batchguard
