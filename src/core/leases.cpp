#include "core/leases.hpp"

#include "core/error.hpp"

#include <unordered_set>

namespace batchguard {

void validate_max_items(std::optional<std::int32_t> max_items) {
    if (!max_items) throw Error(sqlstate::kNullValueNotAllowed, "max_items must not be NULL");
    if (*max_items < 1 || *max_items > kMaxClaimItems)
        throw Error(sqlstate::kInvalidParameterValue,
                    "max_items must be between 1 and " + std::to_string(kMaxClaimItems),
                    "max_items is " + std::to_string(*max_items) + ".");
}

std::vector<std::int64_t> distinct_tokens(const std::vector<std::optional<std::int64_t>>& tokens,
                                          std::string_view what) {
    std::vector<std::int64_t> result;
    result.reserve(tokens.size());
    std::unordered_set<std::int64_t> seen;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (!tokens[i])
            throw Error(sqlstate::kNullValueNotAllowed, std::string(what) +
                                                            " must not contain NULL (element " +
                                                            std::to_string(i + 1) + ")");
        if (seen.insert(*tokens[i]).second) result.push_back(*tokens[i]);
    }
    return result;
}

}  // namespace batchguard
