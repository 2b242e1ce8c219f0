#include "core/error.hpp"
#include "core/failed_items.hpp"
#include "core/identity.hpp"
#include "core/ids.hpp"
#include "core/item_set.hpp"

#include "sqlstate_of.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace batchguard;

TEST(ValidateId, AcceptsOrdinaryAndMaximalIds) {
    EXPECT_EQ(sqlstate_of([] { validate_id("job-1", "job_id"); }), "ok");
    const std::string longest(kMaxIdBytes, 'x');
    EXPECT_EQ(sqlstate_of([&] { validate_id(longest, "job_id"); }), "ok");
}

TEST(ValidateId, RejectsNullEmptyAndTooLong) {
    EXPECT_EQ(sqlstate_of([] { validate_id(std::nullopt, "job_id"); }), "22004");
    EXPECT_EQ(sqlstate_of([] { validate_id("", "job_id"); }), "22023");
    const std::string too_long(kMaxIdBytes + 1, 'x');
    EXPECT_EQ(sqlstate_of([&] { validate_id(too_long, "job_id"); }), "22023");
}

TEST(ValidateId, MessageNamesTheArgument) {
    try {
        validate_id(std::nullopt, "item_id");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "item_id must not be NULL");
    }
}

TEST(ArrayLength, TheLimitIsAcceptedOneMoreIsNot) {
    EXPECT_EQ(sqlstate_of([] { validate_array_length(0, "items"); }), "ok");
    EXPECT_EQ(sqlstate_of([] { validate_array_length(kMaxArrayElements, "items"); }), "ok");
    EXPECT_EQ(sqlstate_of([] { validate_array_length(kMaxArrayElements + 1, "items"); }), "22023");
    try {
        validate_array_length(10'000'000, "lease_tokens");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "lease_tokens has 10000000 elements, more than a call accepts");
    }
}

TEST(MappedOwner, IdentityUpToTheLimit) {
    const std::string longest(kMaxIdentityBytes, 'u');
    EXPECT_EQ(mapped_owner("web", "request.jwt.claims", longest), "web/" + longest);
    EXPECT_EQ(sqlstate_of([&] { mapped_owner("web", "request.jwt.claims", longest + "u"); }),
              "28000");
    EXPECT_EQ(sqlstate_of([] { mapped_owner("web", "request.jwt.claims", ""); }), "28000");
}

TEST(ItemSet, FirstOccurrencesKeepOrder) {
    std::vector<std::string_view> items{"b", "a", "b", "c", "a"};
    EXPECT_EQ(first_occurrences(items), (std::vector<std::size_t>{0, 1, 3}));
    EXPECT_TRUE(first_occurrences({}).empty());
}

TEST(ItemSet, PendingPositionsSkipDoneAndDuplicates) {
    std::vector<std::string_view> items{"a", "b", "a", "c", "d"};
    auto pending = pending_positions(items, [&](std::size_t i) { return items[i] == "b"; });
    EXPECT_EQ(pending, (std::vector<std::size_t>{0, 3, 4}));
}

TEST(ItemSet, PendingDuplicatesKeepTheirFirstPosition) {
    std::vector<std::string_view> items{"x", "a", "b", "a", "x"};
    auto pending = pending_positions(items, [&](std::size_t i) { return items[i] == "x"; });
    EXPECT_EQ(pending, (std::vector<std::size_t>{1, 2}));
}

TEST(ItemSet, ValidIdFastPath) {
    EXPECT_TRUE(is_valid_id("a"));
    EXPECT_FALSE(is_valid_id(""));
    EXPECT_FALSE(is_valid_id(std::string(kMaxIdBytes + 1, 'x')));
}

TEST(FailedItems, ContainerMustBeArray) {
    EXPECT_EQ(sqlstate_of([] { validate_failed_items_container("array"); }), "ok");
    EXPECT_EQ(sqlstate_of([] { validate_failed_items_container("object"); }), "22023");
}

TEST(FailedItems, ElementShapes) {
    auto check = [](FailedItemShape s) { return sqlstate_of([&] { validate_failed_item(s); }); };
    EXPECT_EQ(check({1, "object", "string", "string", std::nullopt}), "ok");
    EXPECT_EQ(check({1, "object", "string", "string", "object"}), "ok");
    EXPECT_EQ(check({1, "object", "string", "string", "null"}), "ok");
    EXPECT_EQ(check({1, "string", std::nullopt, std::nullopt, std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", std::nullopt, "string", std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", "number", "string", std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", "string", std::nullopt, std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", "string", "null", std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", "string", "array", std::nullopt}), "22023");
    EXPECT_EQ(check({1, "object", "string", "string", "array"}), "22023");
}

TEST(FailedItems, MessageNamesPosition) {
    try {
        validate_failed_item({7, "object", std::nullopt, "string", std::nullopt});
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "failed_items element 7 has no \"item_id\"");
    }
}
