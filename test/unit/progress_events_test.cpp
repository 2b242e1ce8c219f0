#include "core/progress_events.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace batchguard;

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
