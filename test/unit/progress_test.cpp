#include "core/progress.hpp"

#include "core/error.hpp"

#include <gtest/gtest.h>

using namespace batchguard;

namespace {
BatchFacts facts(std::int64_t completed, std::int64_t failed, std::int64_t pending,
                 std::int64_t running) {
    BatchFacts f;
    f.counts = {completed, failed, pending, running};
    return f;
}
}  // namespace

TEST(EffectiveTotal, UnknownForLazyBatchWithoutExplicitTotal) {
    EXPECT_FALSE(effective_total(facts(3, 1, 0, 0)).has_value());
}

TEST(EffectiveTotal, LargerOfExplicitAndKnown) {
    BatchFacts f = facts(3, 1, 0, 0);
    f.explicit_total = 10;
    EXPECT_EQ(effective_total(f), 10);
    f.explicit_total = 2;  // below the known items: the known items win
    EXPECT_EQ(effective_total(f), 4);
}

TEST(EffectiveTotal, RegisteredItemsAreTheTotal) {
    BatchFacts f = facts(1, 0, 4, 0);
    f.items_registered = true;
    EXPECT_EQ(effective_total(f), 5);
}

TEST(ComputeProgress, RunningWhileItemsArePending) {
    BatchFacts f = facts(4, 1, 0, 0);
    f.explicit_total = 10;
    Progress p = compute_progress(f);
    EXPECT_EQ(p.status, BatchStatus::kRunning);
    EXPECT_EQ(p.pending, 5);
    EXPECT_EQ(p.percent_hundredths, 5000);
}

TEST(ComputeProgress, RunningWhileTotalUnknown) {
    Progress p = compute_progress(facts(4, 0, 0, 0));
    EXPECT_EQ(p.status, BatchStatus::kRunning);
    EXPECT_FALSE(p.percent_hundredths.has_value());
    EXPECT_FALSE(p.eta_us.has_value());
}

TEST(ComputeProgress, CompletedWhenEveryItemCompleted) {
    BatchFacts f = facts(5, 0, 0, 0);
    f.explicit_total = 5;
    EXPECT_EQ(compute_progress(f).status, BatchStatus::kCompleted);
    EXPECT_EQ(compute_progress(f).percent_hundredths, 10000);
}

TEST(ComputeProgress, FailedWhenProcessedWithFailures) {
    BatchFacts f = facts(4, 1, 0, 0);
    f.items_registered = true;
    EXPECT_EQ(compute_progress(f).status, BatchStatus::kFailed);
}

TEST(ComputeProgress, ExplicitStateWins) {
    BatchFacts f = facts(5, 0, 0, 0);
    f.explicit_total = 5;
    f.state = BatchState::kPaused;
    EXPECT_EQ(compute_progress(f).status, BatchStatus::kPaused);
    f.state = BatchState::kCancelled;
    EXPECT_EQ(compute_progress(f).status, BatchStatus::kCancelled);
}

TEST(ComputeProgress, RegisteredBatchWithoutItemsYetIsRunning) {
    BatchFacts f;
    f.items_registered = true;
    Progress p = compute_progress(f);
    EXPECT_EQ(p.status, BatchStatus::kRunning);
    EXPECT_FALSE(p.total.has_value());
    f.explicit_total = 0;  // unless the caller said there are none
    EXPECT_EQ(compute_progress(f).status, BatchStatus::kCompleted);
    EXPECT_EQ(compute_progress(f).percent_hundredths, 10000);
}

TEST(ComputeProgress, PercentageNeverAbove100AndRoundsDown) {
    BatchFacts f = facts(2, 0, 1, 0);
    f.explicit_total = 3;
    EXPECT_EQ(compute_progress(f).percent_hundredths, 6666);
}

TEST(ComputeProgress, RateAndEta) {
    BatchFacts f = facts(10, 0, 0, 0);
    f.explicit_total = 30;
    f.started_at_us = 1'000'000;
    f.last_update_us = 6'000'000;  // 10 items in 5 s
    Progress p = compute_progress(f);
    ASSERT_TRUE(p.items_per_second.has_value());
    EXPECT_DOUBLE_EQ(*p.items_per_second, 2.0);
    EXPECT_EQ(p.eta_us, 10'000'000);  // 20 left at 2/s
}

TEST(ComputeProgress, NoRateWithoutElapsedTime) {
    BatchFacts f = facts(1, 0, 0, 0);
    f.started_at_us = 5;
    f.last_update_us = 5;
    EXPECT_FALSE(compute_progress(f).items_per_second.has_value());
}

TEST(ComputeProgress, HugeCountsDoNotOverflow) {
    BatchFacts f = facts(std::int64_t{1} << 61, 0, 0, 0);
    f.explicit_total = std::int64_t{1} << 62;
    EXPECT_EQ(compute_progress(f).percent_hundredths, 5000);
}

TEST(ProgressBar, Shapes) {
    EXPECT_EQ(progress_bar(0, 10), "[----------]");
    EXPECT_EQ(progress_bar(5000, 10), "[#####-----]");
    EXPECT_EQ(progress_bar(10000, 10), "[##########]");
    EXPECT_EQ(progress_bar(std::nullopt, 4), "[----]");
    EXPECT_EQ(progress_bar(20000, 4), "[####]");
    EXPECT_EQ(progress_bar(-5, 4), "[----]");
}

TEST(BatchState, RoundTrip) {
    for (BatchState s : {BatchState::kActive, BatchState::kPaused, BatchState::kCancelled})
        EXPECT_EQ(parse_batch_state(to_string(s)), s);
    EXPECT_THROW(parse_batch_state("bogus"), Error);
}
