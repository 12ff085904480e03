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

// ---------------------------------------------------------------------------
// Interval or cron (doc/cron.md): an interval only in interval form; cron by
// shape; anything else refused.

namespace {

// schedule_error: the message parse_schedule_text throws for text (22023).
std::string
schedule_error(const char *text)
{
	try {
		parse_schedule_text(text);
	} catch (const Error &e) {
		EXPECT_STREQ(e.sqlstate(), "22023") << text;
		return e.what();
	}
	ADD_FAILURE() << "no error for \"" << text << "\"";
	return "";
}

} // namespace

TEST(ScheduleText, IntervalFormIsLeftToPostgreSQL)
{
	for (const char *text : {"10 seconds",
	                         "1 day 2 hours 3 minutes",
	                         "00:00:10",
	                         "1 day 00:00:10",
	                         "250 milliseconds",
	                         "1 hour 30 minutes",
	                         "-1 second",
	                         "1.5 hours",
	                         ".5 hours",
	                         "10s",
	                         "1h30m",
	                         "PT10S",
	                         "P1DT2H",
	                         "1 2:03:04",
	                         "2 WEEKS",
	                         "3 Microseconds",
	                         "1 hour ago",
	                         "+10 min",
	                         "10",
	                         "  10 seconds\t",
	                         "12:00",
	                         "1 day 2 hours 3 minutes 4 seconds 5 milliseconds 6 microseconds"})
		EXPECT_EQ(parse_schedule_text(text), std::nullopt) << text;
}

TEST(ScheduleText, CronShapedTextIsCronOrRefusedNeverAnInterval)
{
	// PostgreSQL's interval reader skips punctuation: '1% * * * *' was one second.
	EXPECT_EQ(schedule_error("1% * * * *"),
	          "invalid cron expression \"1% * * * *\": unexpected character \"%\" in minute field \"1%\"");
	EXPECT_EQ(
	    schedule_error("0 0 * * 1#2"),
	    "invalid cron expression \"0 0 * * 1#2\": unexpected character \"#\" in day-of-week field \"1#2\"");
	EXPECT_EQ(schedule_error("1 day 2 3 4"),
	          "invalid cron expression \"1 day 2 3 4\": hour \"day\" is not a number");
	// With * ? , or / the text is cron whatever its field count.
	EXPECT_EQ(schedule_error("*/5 * * *"),
	          "invalid cron expression \"*/5 * * *\": expected 5 or 6 fields, found 4");
	EXPECT_EQ(schedule_error("1% * *"),
	          "invalid cron expression \"1% * *\": expected 5 or 6 fields, found 3");
	EXPECT_EQ(schedule_error("1,2"), "invalid cron expression \"1,2\": expected 5 or 6 fields, found 1");
	// Numbers alone are cron fields; so are the month and weekday names that
	// are also interval units (dec: decades, mon: months).
	for (const char *text : {"1 2 3 4 5", "1 2 3 4 5 6", "0 0 1 dec mon", "0 9 * * mon-fri", "@hourly",
	                         "0 0 29 2 */7", "  5 4 * * sun  "})
		EXPECT_EQ(parse_schedule_text(text)->kind, ScheduleKind::Cron) << text;
}

TEST(ScheduleText, NeitherIntervalNorCronIsRefused)
{
	for (const char *text : {"10 secnds", "every now and then", "10 20", "mon-fri", "hourly", "1 2 3 4",
	                         "5 4 3 2 1 0 1", "5 o'clock"})
		EXPECT_EQ(schedule_error(text), std::string("invalid schedule \"") + text + "\"") << text;
}

TEST(ScheduleText, CronThatNeverFiresIsRefusedWhenGiven)
{
	for (const char *text : {"0 0 31 2 *", "0 0 30,31 feb ?", "0 0 31 4,6,9,11 *", "0 0 30 2 */7"}) {
		try {
			require_can_fire(*parse_schedule_text(text));
			ADD_FAILURE() << "no error for \"" << text << "\"";
		} catch (const Error &e) {
			EXPECT_STREQ(e.sqlstate(), "22023") << text;
			EXPECT_EQ(std::string(e.what()), std::string("cron expression \"") + text + "\" never fires");
			EXPECT_NE(e.hint().find("Write L"), std::string::npos) << text;
		}
	}
	// Both day fields restricted: either may match, so Mondays in February fire.
	for (const char *text : {"0 0 31 2 mon", "0 0 29 2 */7", "0 0 L 2 *", "@yearly", "@once", "@reboot"})
		EXPECT_NO_THROW(require_can_fire(*parse_schedule_text(text))) << text;
	EXPECT_NO_THROW(require_can_fire(interval_schedule(kSec)));
}
