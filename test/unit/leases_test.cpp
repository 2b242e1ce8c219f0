#include "core/error.hpp"
#include "core/leases.hpp"

#include "sqlstate_of.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace batchguard;

TEST(ValidateMaxItems, Bounds) {
    EXPECT_EQ(sqlstate_of([] { validate_max_items(1); }), "ok");
    EXPECT_EQ(sqlstate_of([] { validate_max_items(kMaxClaimItems); }), "ok");
    EXPECT_EQ(sqlstate_of([] { validate_max_items(0); }), "22023");
    EXPECT_EQ(sqlstate_of([] { validate_max_items(-5); }), "22023");
    EXPECT_EQ(sqlstate_of([] { validate_max_items(kMaxClaimItems + 1); }), "22023");
    EXPECT_EQ(sqlstate_of([] { validate_max_items(std::nullopt); }), "22004");
}

TEST(DistinctTokens, KeepsFirstOrderAndRejectsNull) {
    EXPECT_EQ(distinct_tokens({3, 1, 3, 2, 1}, "lease_tokens"),
              (std::vector<std::int64_t>{3, 1, 2}));
    EXPECT_TRUE(distinct_tokens({}, "lease_tokens").empty());
    try {
        distinct_tokens({1, std::nullopt}, "lease_tokens");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.sqlstate(), "22004");
        EXPECT_STREQ(e.what(), "lease_tokens must not contain NULL (element 2)");
    }
}
