#include "core/item_set.hpp"

#include <unordered_set>

namespace batchguard {

std::vector<std::size_t> first_occurrences(const std::vector<std::string_view>& items) {
    return pending_positions(items, [](std::size_t) { return false; });
}

std::vector<std::size_t> pending_positions(const std::vector<std::string_view>& items,
                                           const std::function<bool(std::size_t)>& done) {
    std::unordered_set<std::string_view> seen;
    std::vector<std::size_t> kept;
    for (std::size_t i = 0; i < items.size(); ++i) {
        // Done items are skipped before hashing: on resume most items usually are done.
        if (done(i) || !seen.insert(items[i]).second) continue;
        kept.push_back(i);
    }
    return kept;
}

}  // namespace batchguard
