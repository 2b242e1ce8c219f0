// What long item lists go through: pending_positions / first_occurrences on inputs large
// enough to fill and probe the hash table (checked against a straightforward reference),
// and the allocation-free id check.
#include "core/error.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>
#include <vector>

using namespace batchguard;

namespace {

std::vector<std::size_t> reference(const std::vector<std::string_view>& items,
                                   const std::function<bool(std::size_t)>& done) {
    std::unordered_set<std::string_view> seen;
    std::vector<std::size_t> kept;
    for (std::size_t i = 0; i < items.size(); ++i)
        if (seen.insert(items[i]).second && !done(i)) kept.push_back(i);
    return kept;
}

}  // namespace

TEST(ItemSet, ManyItemsWithDuplicatesMatchTheReference) {
    // 100,000 positions over 30,011 distinct ids (in a scrambled order), plus the empty
    // string and ids that differ only in their last byte.
    std::vector<std::string> storage;
    for (std::size_t i = 0; i < 100000; ++i)
        storage.push_back("item-" + std::to_string((i * 7919) % 30011));
    storage.push_back("");
    storage.push_back("item-1x");
    storage.push_back("item-1y");
    storage.push_back("");
    std::vector<std::string_view> items(storage.begin(), storage.end());
    auto done = [&](std::size_t i) { return items[i].size() % 3 == 0; };
    EXPECT_EQ(pending_positions(items, done), reference(items, done));
    auto none = [](std::size_t) { return false; };
    const std::vector<std::size_t> first = first_occurrences(items);
    EXPECT_EQ(first, reference(items, none));
    EXPECT_EQ(first.size(), 30011u + 3u);
}

TEST(ItemSet, AllDistinct) {
    std::vector<std::string> storage;
    for (int i = 0; i < 5000; ++i) storage.push_back(std::to_string(i));
    std::vector<std::string_view> items(storage.begin(), storage.end());
    const std::vector<std::size_t> first = first_occurrences(items);
    ASSERT_EQ(first.size(), items.size());
    for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i], i);
}

TEST(ItemSet, AllEqual) {
    std::vector<std::string_view> items(1000, "same");
    EXPECT_EQ(first_occurrences(items), (std::vector<std::size_t>{0}));
}

TEST(ValidateId, FastCheckAgreesWithValidateId) {
    const std::string longest(kMaxIdBytes, 'x');
    const std::string too_long(kMaxIdBytes + 1, 'x');
    for (std::string_view id : {std::string_view(""), std::string_view("a"),
                                std::string_view(longest), std::string_view(too_long)}) {
        bool accepted = true;
        try {
            validate_id(id, "id");
        } catch (const Error&) {
            accepted = false;
        }
        EXPECT_EQ(is_valid_id(id), accepted) << id.size() << " bytes";
    }
}
