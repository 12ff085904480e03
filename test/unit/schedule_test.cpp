// Unit tests of interval schedules, anchoring, phases and default tiers.
#include "core/error.hpp"
#include "core/schedule.hpp"

#include <gtest/gtest.h>

using namespace foreman::core;

namespace {
const UtcZone kUtc;
constexpr Micros kSec = kMicrosPerSecond;
} // namespace

TEST(IntervalSchedule, RejectsNonPositiveAndTooShortPeriods)
{
	EXPECT_THROW(interval_schedule(0), Error);
	EXPECT_THROW(interval_schedule(-kSec), Error);
	EXPECT_THROW(interval_schedule(99 * kMicrosPerMilli), Error);
	EXPECT_EQ(interval_schedule(100 * kMicrosPerMilli).period, 100 * kMicrosPerMilli);
	try {
		interval_schedule(-1);
		FAIL() << "expected an error";
	} catch (const Error &e) {
		EXPECT_STREQ(e.sqlstate(), "22023");
	}
}

TEST(IntervalSchedule, FireTimesAreAnchoredAndDoNotDrift)
{
	Schedule s = interval_schedule(10 * kSec);
	Anchor a{1000 * kSec, 0, std::nullopt};
	// Before the anchor: the anchor itself.
	EXPECT_EQ(next_fire(s, a, 0, kUtc), 1000 * kSec);
	// Exactly at a fire time: the next one, strictly after.
	EXPECT_EQ(next_fire(s, a, 1000 * kSec, kUtc), 1010 * kSec);
	// A run that ended late (1013.7 s) does not shift the grid.
	EXPECT_EQ(next_fire(s, a, 1013 * kSec + 700000, kUtc), 1020 * kSec);
	// Far in the future: still on the grid.
	EXPECT_EQ(next_fire(s, a, 1'000'000 * kSec + 1, kUtc), 1'000'010 * kSec);
}

TEST(IntervalSchedule, PhaseShiftsTheGrid)
{
	Schedule s = interval_schedule(60 * kSec);
	Anchor a{0, 7 * kSec, std::nullopt};
	EXPECT_EQ(next_fire(s, a, 0, kUtc), 7 * kSec);
	EXPECT_EQ(next_fire(s, a, 7 * kSec, kUtc), 67 * kSec);
}

TEST(IntervalSchedule, EndAtStopsTheSchedule)
{
	Schedule s = interval_schedule(10 * kSec);
	Anchor a{0, 0, 25 * kSec};
	EXPECT_EQ(next_fire(s, a, 15 * kSec, kUtc), 20 * kSec);
	EXPECT_EQ(next_fire(s, a, 20 * kSec, kUtc), std::nullopt);
}

TEST(Schedule, KeywordsAndIntervalsAreClassified)
{
	EXPECT_EQ(parse_schedule_text("10 seconds"), std::nullopt);
	EXPECT_EQ(parse_schedule_text("1 day 2 hours 3 minutes"), std::nullopt);
	EXPECT_EQ(parse_schedule_text("@once")->kind, ScheduleKind::Once);
	EXPECT_EQ(parse_schedule_text("  @REBOOT ")->kind, ScheduleKind::Reboot);
	EXPECT_THROW(parse_schedule_text(""), Error);
	EXPECT_THROW(parse_schedule_text("   "), Error);
}

TEST(Schedule, OnceFiresOnlyOnce)
{
	Schedule s{ScheduleKind::Once, 0, std::nullopt};
	Anchor a{500 * kSec, 0, std::nullopt};
	EXPECT_EQ(next_fire(s, a, 0, kUtc), 500 * kSec);
	EXPECT_EQ(next_fire(s, a, 500 * kSec, kUtc), std::nullopt);
}

TEST(Schedule, PhaseIsInsideTheJitterWindow)
{
	EXPECT_EQ(draw_phase(0, 12345), 0);
	EXPECT_EQ(draw_phase(-5, 12345), 0);
	for (std::uint64_t seed = 0; seed < 1000; seed++) {
		Micros p = draw_phase(30 * kSec, seed * 2654435761ULL);
		EXPECT_GE(p, 0);
		EXPECT_LT(p, 30 * kSec);
	}
}

TEST(Schedule, DefaultTierFollowsThePeriod)
{
	EXPECT_STREQ(default_tier(interval_schedule(kSec), kUtc), "fast");
	EXPECT_STREQ(default_tier(interval_schedule(60 * kSec), kUtc), "fast");
	EXPECT_STREQ(default_tier(interval_schedule(61 * kSec), kUtc), "slow");
	EXPECT_STREQ(default_tier(Schedule{ScheduleKind::Once, 0, std::nullopt}, kUtc), "slow");
}

TEST(ShortestPeriod, SeesTheShortGapOfACronListBesideItsLongTypicalPeriod)
{
	auto list = parse_schedule_text("0,1 * * * * *");
	ASSERT_TRUE(list);
	EXPECT_EQ(shortest_period(*list, kUtc), kSec);
	EXPECT_EQ(typical_period(*list, kUtc), 59 * kSec) << "the gap the per-role limit was checked on before";
	auto spread = parse_schedule_text("0,30 * * * *");
	ASSERT_TRUE(spread);
	EXPECT_EQ(shortest_period(*spread, kUtc), 30 * 60 * kSec);
	auto late = parse_schedule_text("0 0,59 * * * *");
	ASSERT_TRUE(late);
	EXPECT_EQ(shortest_period(*late, kUtc), 60 * kSec) << "minute 59 of one hour, then minute 0 of the next";
	EXPECT_EQ(shortest_period(interval_schedule(10 * kSec), kUtc), 10 * kSec);
}
