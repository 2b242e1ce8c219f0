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

TEST(ProgressChannel, PrefixAnd32HexDigits) {
    unsigned char digest[32];
    for (int i = 0; i < 32; ++i) digest[i] = static_cast<unsigned char>(i * 17);
    const std::string name = progress_channel_name(digest, sizeof(digest));
    EXPECT_EQ(name, "batchguard_progress_00112233445566778899aabbccddeeff");
    EXPECT_LE(name.size(), 63u);
}

TEST(EventLimiter, OnePerIntervalPerKey) {
    EventLimiter limiter;
    limiter.touch("o\0a", "ch", "a");
    limiter.touch("o\0a", "ch", "a");  // twice in one transaction: one event
    auto events = limiter.due(1000, 250);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].payload, "a");
    limiter.committed();
    EXPECT_TRUE(limiter.idle());

    limiter.touch("o\0a", "ch", "a");
    EXPECT_TRUE(limiter.due(1100, 250).empty());  // within the interval
    limiter.committed();
    limiter.touch("o\0a", "ch", "a");
    EXPECT_EQ(limiter.due(1250, 250).size(), 1u);  // interval over
    limiter.committed();
}

TEST(EventLimiter, KeysAreIndependent) {
    EventLimiter limiter;
    limiter.touch("a", "ch", "a");
    limiter.touch("b", "ch", "b");
    EXPECT_EQ(limiter.due(0, 1000).size(), 2u);
    limiter.committed();
    limiter.touch("b", "ch", "b");
    limiter.touch("c", "ch", "c");
    auto events = limiter.due(10, 1000);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].payload, "c");
}

TEST(EventLimiter, RolledBackEventsDoNotCount) {
    EventLimiter limiter;
    limiter.touch("a", "ch", "a");
    EXPECT_EQ(limiter.due(0, 1000).size(), 1u);
    limiter.discarded();  // the transaction aborted: nothing was sent
    limiter.touch("a", "ch", "a");
    EXPECT_EQ(limiter.due(10, 1000).size(), 1u);
    limiter.committed();
    limiter.touch("a", "ch", "a");
    EXPECT_TRUE(limiter.due(20, 1000).empty());
}

TEST(EventLimiter, ZeroIntervalSendsEveryCommit) {
    EventLimiter limiter;
    for (int i = 0; i < 3; ++i) {
        limiter.touch("a", "ch", "a");
        EXPECT_EQ(limiter.due(5, 0).size(), 1u);
        limiter.committed();
    }
}

TEST(EventLimiter, ClockGoingBackwardsSends) {
    EventLimiter limiter;
    limiter.touch("a", "ch", "a");
    limiter.due(1000, 500);
    limiter.committed();
    limiter.touch("a", "ch", "a");
    EXPECT_EQ(limiter.due(10, 500).size(), 1u);
}

TEST(EventLimiter, ForgetsOldKeys) {
    EventLimiter limiter;
    for (int i = 0; i < 2000; ++i) limiter.touch("k" + std::to_string(i), "ch", "p");
    limiter.due(0, 100);
    limiter.committed();
    EXPECT_EQ(limiter.remembered(), 2000u);
    limiter.touch("late", "ch", "p");
    limiter.due(1000, 100);
    limiter.committed();
    EXPECT_EQ(limiter.remembered(), 1u);
}
