// Rules of claims and leases that do not need PostgreSQL: argument limits and token lists.
#pragma once
#include "core/pure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batchguard {

// claim_items hands out at most this many items per call (documented in docs/api.md).
inline constexpr std::int32_t kMaxClaimItems = 10000;

// Throws Error (22004 for NULL, 22023 outside 1..kMaxClaimItems).
void validate_max_items(std::optional<std::int32_t> max_items);

// Throws Error (22004) naming the element of a lease token list that is NULL; returns the
// tokens, each once, in their first order.
std::vector<std::int64_t> distinct_tokens(const std::vector<std::optional<std::int64_t>>& tokens,
                                          std::string_view what);

}  // namespace batchguard
