// Unit tests of cron expressions: the field forms, the day rules, DST, errors,
// and a randomized comparison against brute-force walkers.
//
// Fire times are shown as wall-clock strings with their UTC offset, so that a
// test reads as what a user of the zone would see.
#include "core/cron.hpp"
#include "core/error.hpp"
#include "core/schedule.hpp"
#include "cron_model.hpp"
#include "cron_test_util.hpp"
#include "libc_timezone.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace foreman::core;
using namespace foreman::test;

namespace {

using Strings = std::vector<std::string>;

const UtcZone kUtc;
const LibcTimeZone kBerlin("Europe/Berlin");
const LibcTimeZone kNewYork("America/New_York");

// fires: the first n fire times of expr after `from`, as wall-clock strings.
Strings
fires(const char *expr, const char *from, int n, const TimeZone &tz = kUtc)
{
	CronExpr e = CronExpr::parse(expr);
	Strings out;
	Micros t = instant(from);
	for (int i = 0; i < n; i++) {
		std::optional<Micros> next = e.next_after(t, tz);
		if (!next) {
			out.push_back("none");
			break;
		}
		EXPECT_GT(*next, t) << expr;
		out.push_back(wall(*next, tz));
		t = *next;
	}
	return out;
}

// error_of: the message parse() throws for text, after checking its SQLSTATE.
std::string
error_of(const std::string &text)
{
	try {
		CronExpr::parse(text);
	} catch (const Error &e) {
		EXPECT_STREQ(e.sqlstate(), "22023") << text;
		return e.what();
	}
	ADD_FAILURE() << "no error for \"" << text << "\"";
	return "";
}

} // namespace

TEST(CronZones, TheTzDatabaseIsThere)
{
	// Without tzdata the C library silently falls back to UTC and every DST
	// test below would test nothing.
	EXPECT_EQ(kBerlin.utc_offset(instant("2024-07-01 00:00:00") / kMicrosPerSecond), 7200);
	EXPECT_EQ(kBerlin.abbreviation(instant("2024-01-01 00:00:00") / kMicrosPerSecond), "CET");
	EXPECT_EQ(kNewYork.utc_offset(instant("2024-01-01 00:00:00") / kMicrosPerSecond), -5 * 3600);
	EXPECT_EQ(kNewYork.abbreviation(instant("2024-07-01 00:00:00") / kMicrosPerSecond), "EDT");
}

TEST(CronFields, StarAndNumbers)
{
	EXPECT_EQ(fires("* * * * *", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-01-01 00:01:00", "2024-01-01 00:02:00"}));
	EXPECT_EQ(fires("5 * * * *", "2024-01-01 00:05:00", 2),
	          (Strings{"2024-01-01 01:05:00", "2024-01-01 02:05:00"}));
	EXPECT_EQ(fires("30 14 * * *", "2024-01-01 15:00:00", 2),
	          (Strings{"2024-01-02 14:30:00", "2024-01-03 14:30:00"}));
	EXPECT_EQ(fires("0 0 15 * *", "2024-01-15 00:00:00", 2),
	          (Strings{"2024-02-15 00:00:00", "2024-03-15 00:00:00"}));
	EXPECT_EQ(fires("0 0 1 7 *", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-07-01 00:00:00", "2025-07-01 00:00:00"}));
	// Leading zeros are fine.
	EXPECT_EQ(fires("05 007 * * *", "2024-01-01 00:00:00", 1), (Strings{"2024-01-01 07:05:00"}));
}

TEST(CronFields, RangesListsAndSteps)
{
	EXPECT_EQ(fires("10-12 * * * *", "2024-01-01 00:11:00", 3),
	          (Strings{"2024-01-01 00:12:00", "2024-01-01 01:10:00", "2024-01-01 01:11:00"}));
	EXPECT_EQ(fires("1,31,59 * * * *", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-01 00:01:00", "2024-01-01 00:31:00", "2024-01-01 00:59:00",
	                   "2024-01-01 01:01:00"}));
	EXPECT_EQ(fires("*/15 * * * *", "2024-01-01 00:07:00", 3),
	          (Strings{"2024-01-01 00:15:00", "2024-01-01 00:30:00", "2024-01-01 00:45:00"}));
	// a-b/n: from a to b in steps of n.
	EXPECT_EQ(fires("10-40/10 * * * *", "2024-01-01 00:35:00", 3),
	          (Strings{"2024-01-01 00:40:00", "2024-01-01 01:10:00", "2024-01-01 01:20:00"}));
	// a/n: from a to the end of the field.
	EXPECT_EQ(fires("50/3 * * * *", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-01 00:50:00", "2024-01-01 00:53:00", "2024-01-01 00:56:00",
	                   "2024-01-01 00:59:00"}));
	// Lists mix all forms; duplicates do not fire twice.
	EXPECT_EQ(fires("0 1,2-3,*/12,3 * * *", "2024-01-01 00:00:00", 5),
	          (Strings{"2024-01-01 01:00:00", "2024-01-01 02:00:00", "2024-01-01 03:00:00",
	                   "2024-01-01 12:00:00", "2024-01-02 00:00:00"}));
	// Step larger than anything but the start: just the start.
	EXPECT_EQ(fires("*/60 * * * *", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-01-01 01:00:00", "2024-01-01 02:00:00"}));
	// Steps in day-of-month and month.
	EXPECT_EQ(fires("0 0 */10 */5 *", "2024-01-01 00:00:00", 5),
	          (Strings{"2024-01-11 00:00:00", "2024-01-21 00:00:00", "2024-01-31 00:00:00",
	                   "2024-06-01 00:00:00", "2024-06-11 00:00:00"}));
}

TEST(CronFields, MonthAndWeekdayNames)
{
	EXPECT_EQ(fires("0 0 1 jan-mar *", "2024-02-15 00:00:00", 3),
	          (Strings{"2024-03-01 00:00:00", "2025-01-01 00:00:00", "2025-02-01 00:00:00"}));
	EXPECT_EQ(fires("0 0 1 JUN,Dec *", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-06-01 00:00:00", "2024-12-01 00:00:00"}));
	EXPECT_EQ(fires("0 0 1 feb/4 *", "2024-01-01 00:00:00", 3),
	          (Strings{"2024-02-01 00:00:00", "2024-06-01 00:00:00", "2024-10-01 00:00:00"}));
	// 2024-01-01 is a Monday.
	EXPECT_EQ(fires("0 9 * * MON-fri", "2024-01-05 10:00:00", 2),
	          (Strings{"2024-01-08 09:00:00", "2024-01-09 09:00:00"}));
	EXPECT_EQ(fires("0 9 * * sat,Sun", "2024-01-01 00:00:00", 3),
	          (Strings{"2024-01-06 09:00:00", "2024-01-07 09:00:00", "2024-01-13 09:00:00"}));
}

TEST(CronFields, SundayIsBothZeroAndSeven)
{
	Strings sundays{"2024-01-07 00:00:00", "2024-01-14 00:00:00"};
	EXPECT_EQ(fires("0 0 * * 0", "2024-01-01 00:00:00", 2), sundays);
	EXPECT_EQ(fires("0 0 * * 7", "2024-01-01 00:00:00", 2), sundays);
	EXPECT_EQ(fires("0 0 * * sun", "2024-01-01 00:00:00", 2), sundays);
	EXPECT_EQ(fires("0 0 * * 6-7", "2024-01-01 00:00:00", 3),
	          (Strings{"2024-01-06 00:00:00", "2024-01-07 00:00:00", "2024-01-13 00:00:00"}));
	EXPECT_EQ(fires("0 0 * * fri-7", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-05 00:00:00", "2024-01-06 00:00:00", "2024-01-07 00:00:00",
	                   "2024-01-12 00:00:00"}));
	// '*' and 'a/n' stop at 6, so '1/2' is Monday, Wednesday and Friday.
	EXPECT_EQ(fires("0 0 * * 1/2", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-03 00:00:00", "2024-01-05 00:00:00", "2024-01-08 00:00:00",
	                   "2024-01-10 00:00:00"}));
}

TEST(CronFields, QuestionMarkIsStarInTheDayFields)
{
	EXPECT_EQ(fires("0 0 ? * mon", "2024-01-01 00:00:00", 2), fires("0 0 * * mon", "2024-01-01 00:00:00", 2));
	EXPECT_EQ(fires("0 0 13 * ?", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-01-13 00:00:00", "2024-02-13 00:00:00"}));
}

TEST(CronDays, BothDayFieldsRestrictedMeansEither)
{
	// Vixie cron: the 13th of each month and every Friday.
	EXPECT_EQ(fires("0 0 13 * fri", "2024-01-01 00:00:00", 5),
	          (Strings{"2024-01-05 00:00:00", "2024-01-12 00:00:00", "2024-01-13 00:00:00",
	                   "2024-01-19 00:00:00", "2024-01-26 00:00:00"}));
	// Either day field open: both must match, which for '*' is the other alone.
	EXPECT_EQ(fires("0 0 13 * *", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-01-13 00:00:00", "2024-02-13 00:00:00"}));
	EXPECT_EQ(fires("0 0 * * fri", "2024-01-01 00:00:00", 2),
	          (Strings{"2024-01-05 00:00:00", "2024-01-12 00:00:00"}));
	// The month still restricts both: Fridays in February, or 1 February.
	EXPECT_EQ(fires("0 0 1 feb fri", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-02-01 00:00:00", "2024-02-02 00:00:00", "2024-02-09 00:00:00",
	                   "2024-02-16 00:00:00"}));
	// As in Vixie cron, a field that begins with '*' counts as open even with a
	// step: odd days that are Mondays (2024-01-01, 2024-01-15, 2024-01-29).
	EXPECT_EQ(fires("0 0 */2 * mon", "2023-12-31 00:00:00", 3),
	          (Strings{"2024-01-01 00:00:00", "2024-01-15 00:00:00", "2024-01-29 00:00:00"}));
	// '1-31/2' does not begin with '*': odd days or Mondays.
	EXPECT_EQ(fires("0 0 1-31/2 * mon", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-03 00:00:00", "2024-01-05 00:00:00", "2024-01-07 00:00:00",
	                   "2024-01-08 00:00:00"}));
}

TEST(CronDays, LastDayOfTheMonth)
{
	EXPECT_EQ(fires("0 0 L * *", "2024-01-01 00:00:00", 5),
	          (Strings{"2024-01-31 00:00:00", "2024-02-29 00:00:00", "2024-03-31 00:00:00",
	                   "2024-04-30 00:00:00", "2024-05-31 00:00:00"}));
	EXPECT_EQ(fires("0 0 L 2 *", "2022-01-01 00:00:00", 4),
	          (Strings{"2022-02-28 00:00:00", "2023-02-28 00:00:00", "2024-02-29 00:00:00",
	                   "2025-02-28 00:00:00"}));
	EXPECT_EQ(fires("0 0 l 2 *", "2099-03-01 00:00:00", 2),
	          (Strings{"2100-02-28 00:00:00", "2101-02-28 00:00:00"}));
	// In a list with days; 30 and L coincide in April.
	EXPECT_EQ(fires("0 0 15,30,L 2-4 *", "2023-02-01 00:00:00", 6),
	          (Strings{"2023-02-15 00:00:00", "2023-02-28 00:00:00", "2023-03-15 00:00:00",
	                   "2023-03-30 00:00:00", "2023-03-31 00:00:00", "2023-04-15 00:00:00"}));
	// L with a weekday: the OR rule, as for any restricted day-of-month.
	EXPECT_EQ(fires("0 0 L * sun", "2024-01-25 00:00:00", 3),
	          (Strings{"2024-01-28 00:00:00", "2024-01-31 00:00:00", "2024-02-04 00:00:00"}));
}

TEST(CronDays, LeapYears)
{
	EXPECT_EQ(fires("0 0 29 2 *", "2021-06-01 00:00:00", 3),
	          (Strings{"2024-02-29 00:00:00", "2028-02-29 00:00:00", "2032-02-29 00:00:00"}));
	// 2000 is a leap year (divisible by 400), 2100 is not.
	EXPECT_EQ(fires("0 0 29 2 *", "1999-01-01 00:00:00", 1), (Strings{"2000-02-29 00:00:00"}));
	EXPECT_EQ(fires("0 0 29 2 *", "2096-03-01 00:00:00", 1), (Strings{"2104-02-29 00:00:00"}));
	EXPECT_EQ(fires("0 12 29 feb ?", "2024-02-29 11:59:59.999999", 2),
	          (Strings{"2024-02-29 12:00:00", "2028-02-29 12:00:00"}));
}

TEST(CronDays, ImpossibleDatesNeverFire)
{
	for (const char *expr : {"0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "0 0 30,31 feb ?"}) {
		CronExpr e = CronExpr::parse(expr);
		EXPECT_EQ(e.next_after(instant("2024-01-01 00:00:00"), kUtc), std::nullopt) << expr;
		EXPECT_EQ(e.next_after(instant("2024-01-01 00:00:00"), kBerlin), std::nullopt) << expr;
		// Known at parse time, without a search.
		EXPECT_FALSE(e.can_fire()) << expr;
	}
	// 31 fires in the months that have it.
	EXPECT_EQ(fires("0 0 31 * *", "2024-01-31 00:00:00", 2),
	          (Strings{"2024-03-31 00:00:00", "2024-05-31 00:00:00"}));
	// Every date that exists in some year falls on every weekday in some year,
	// and with both day fields restricted either may match.
	for (const char *expr : {"0 0 29 2 *", "0 0 29 2 */7", "0 0 L 2 */7", "0 0 31 2 mon", "0 0 30,31 2,4 *",
	                         "0 0 31 * *", "0 0 */30 2 */7", "* * * * *"})
		EXPECT_TRUE(CronExpr::parse(expr).can_fire()) << expr;
}

TEST(CronDays, LeapDayOnASundayComesBackAfterDecades)
{
	// '*/7' in the day-of-week field is Sunday, and begins with '*': the two
	// day fields must both match, so this is 29 February on a Sunday. 2100 is
	// no leap year, so 2088 is followed by 2128. The search covers a whole
	// 400-year Gregorian cycle (it stopped after ten years, at 2032).
	EXPECT_EQ(
	    fires("0 0 29 2 */7", "2030-01-01 00:00:00", 7),
	    (Strings{"2032-02-29 00:00:00", "2060-02-29 00:00:00", "2088-02-29 00:00:00", "2128-02-29 00:00:00",
	             "2156-02-29 00:00:00", "2184-02-29 00:00:00", "2224-02-29 00:00:00"}));
	EXPECT_EQ(fires("0 12 29 feb */7", "2088-02-29 12:00:00 +0100", 1, kBerlin),
	          (Strings{"2128-02-29 12:00:00 +0100"}));
	// Saturday or Sunday: 2032 (Sun), 2048 (Sat), 2060 (Sun), 2076 (Sat), 2088 (Sun), 2116 (Sat).
	EXPECT_EQ(fires("0 0 29 2 */6", "2080-01-01 00:00:00", 3),
	          (Strings{"2088-02-29 00:00:00", "2116-02-29 00:00:00", "2128-02-29 00:00:00"}));
}

TEST(CronSeconds, SixFieldsStartWithSeconds)
{
	EXPECT_TRUE(CronExpr::parse("*/20 * * * * *").has_seconds());
	EXPECT_FALSE(CronExpr::parse("* * * * *").has_seconds());
	EXPECT_EQ(fires("*/20 * * * * *", "2024-01-01 00:00:00", 4),
	          (Strings{"2024-01-01 00:00:20", "2024-01-01 00:00:40", "2024-01-01 00:01:00",
	                   "2024-01-01 00:01:20"}));
	EXPECT_EQ(fires("30 0 12 * * *", "2024-01-01 12:00:30", 1), (Strings{"2024-01-02 12:00:30"}));
	EXPECT_EQ(fires("59 59 23 31 12 *", "2024-06-01 00:00:00", 1), (Strings{"2024-12-31 23:59:59"}));
	EXPECT_EQ(fires("0,15 * * * * *", "2024-01-01 00:00:59", 2),
	          (Strings{"2024-01-01 00:01:00", "2024-01-01 00:01:15"}));
}

TEST(CronSeconds, FireTimesAreWholeSecondsStrictlyAfter)
{
	// A fire time is never the instant given, and sub-second parts round up.
	EXPECT_EQ(fires("* * * * * *", "2024-01-01 00:00:00", 1), (Strings{"2024-01-01 00:00:01"}));
	EXPECT_EQ(fires("* * * * * *", "2024-01-01 00:00:00.000001", 1), (Strings{"2024-01-01 00:00:01"}));
	EXPECT_EQ(fires("* * * * * *", "2024-01-01 00:00:00.999999", 1), (Strings{"2024-01-01 00:00:01"}));
	EXPECT_EQ(fires("* * * * * *", "2023-12-31 23:59:59.5", 1), (Strings{"2024-01-01 00:00:00"}));
	EXPECT_EQ(fires("* * * * *", "2024-01-01 00:00:59.999999", 1), (Strings{"2024-01-01 00:01:00"}));
	EXPECT_EQ(fires("* * * * *", "2024-01-01 00:00:00.000001", 1), (Strings{"2024-01-01 00:01:00"}));
}

TEST(CronShorthands, ExpandToFiveFields)
{
	const char *from = "2024-05-15 10:20:00";
	EXPECT_EQ(fires("@yearly", from, 1), (Strings{"2025-01-01 00:00:00"}));
	EXPECT_EQ(fires("@annually", from, 1), (Strings{"2025-01-01 00:00:00"}));
	EXPECT_EQ(fires("@monthly", from, 1), (Strings{"2024-06-01 00:00:00"}));
	EXPECT_EQ(fires("@weekly", from, 1), (Strings{"2024-05-19 00:00:00"})); // a Sunday
	EXPECT_EQ(fires("@daily", from, 1), (Strings{"2024-05-16 00:00:00"}));
	EXPECT_EQ(fires("@midnight", from, 1), (Strings{"2024-05-16 00:00:00"}));
	EXPECT_EQ(fires("@hourly", from, 1), (Strings{"2024-05-15 11:00:00"}));
	EXPECT_EQ(fires("  @HOURLY\t", from, 1), (Strings{"2024-05-15 11:00:00"}));
	EXPECT_EQ(fires("@Daily", from, 1), (Strings{"2024-05-16 00:00:00"}));
	EXPECT_FALSE(CronExpr::parse("@hourly").has_seconds());
}

TEST(CronParse, TextIsKeptTrimmed)
{
	EXPECT_EQ(CronExpr::parse("  */5 * * * *\n").text(), "*/5 * * * *");
	EXPECT_EQ(CronExpr::parse("@Daily").text(), "@Daily");
	// Any whitespace separates fields.
	EXPECT_EQ(fires("0\t12\t*  *\t *", "2024-01-01 00:00:00", 1), (Strings{"2024-01-01 12:00:00"}));
}

TEST(CronParse, ScheduleTextReachesTheCronParser)
{
	EXPECT_EQ(parse_schedule_text("*/5 * * * *")->kind, ScheduleKind::Cron);
	EXPECT_EQ(parse_schedule_text("@hourly")->cron->text(), "@hourly");
	EXPECT_THROW(parse_schedule_text("61 * * * *"), Error);
	EXPECT_EQ(typical_period(*parse_schedule_text("*/5 * * * *"), kUtc), 5 * kMicrosPerMinute);
	EXPECT_STREQ(default_tier(*parse_schedule_text("*/10 * * * * *"), kUtc), "fast");
	EXPECT_STREQ(default_tier(*parse_schedule_text("@hourly"), kUtc), "slow");
}

TEST(CronErrors, MessagesNameTheField)
{
	EXPECT_EQ(error_of("61 * * * *"),
	          "invalid cron expression \"61 * * * *\": minute 61 is out of range 0-59");
	EXPECT_EQ(error_of("0 24 * * *"), "invalid cron expression \"0 24 * * *\": hour 24 is out of range 0-23");
	EXPECT_EQ(error_of("0 0 0 * *"),
	          "invalid cron expression \"0 0 0 * *\": day-of-month 0 is out of range 1-31");
	EXPECT_EQ(error_of("0 0 32 * *"),
	          "invalid cron expression \"0 0 32 * *\": day-of-month 32 is out of range 1-31");
	EXPECT_EQ(error_of("0 0 * 13 *"),
	          "invalid cron expression \"0 0 * 13 *\": month 13 is out of range 1-12");
	EXPECT_EQ(error_of("0 0 * * 8"),
	          "invalid cron expression \"0 0 * * 8\": day-of-week 8 is out of range 0-7");
	EXPECT_EQ(error_of("60 * * * * *"),
	          "invalid cron expression \"60 * * * * *\": second 60 is out of range 0-59");
	EXPECT_EQ(error_of("*/0 * * * *"),
	          "invalid cron expression \"*/0 * * * *\": minute step 0 is out of range 1-60");
	EXPECT_EQ(error_of("* * * foo *"), "invalid cron expression \"* * * foo *\": unknown month name \"foo\"");
	EXPECT_EQ(error_of("* * * * foo"),
	          "invalid cron expression \"* * * * foo\": unknown day-of-week name \"foo\"");
	EXPECT_EQ(error_of("foo * * * *"),
	          "invalid cron expression \"foo * * * *\": minute \"foo\" is not a number");
	EXPECT_EQ(error_of("5-2 * * * *"),
	          "invalid cron expression \"5-2 * * * *\": minute range \"5-2\" has its start after its end");
	EXPECT_EQ(error_of("1,,2 * * * *"),
	          "invalid cron expression \"1,,2 * * * *\": empty item in minute list \"1,,2\"");
	EXPECT_EQ(error_of("* * * *"), "invalid cron expression \"* * * *\": expected 5 or 6 fields, found 4");
	EXPECT_EQ(error_of("* * * * * * *"),
	          "invalid cron expression \"* * * * * * *\": expected 5 or 6 fields, found 7");
	EXPECT_EQ(error_of(""), "invalid cron expression \"\": the expression is empty");
	EXPECT_EQ(
	    error_of("99999999999999999999 * * * *"),
	    "invalid cron expression \"99999999999999999999 * * * *\": minute 99999999999999999999 is out of "
	    "range 0-59");
	EXPECT_EQ(error_of("1% * * * *"),
	          "invalid cron expression \"1% * * * *\": unexpected character \"%\" in minute field \"1%\"");
	EXPECT_EQ(error_of("@fortnightly"),
	          "invalid cron expression \"@fortnightly\": unknown shorthand \"@fortnightly\"");
}

TEST(CronErrors, HintsSayWhatIsAllowed)
{
	try {
		CronExpr::parse("* * * *");
		FAIL() << "expected an error";
	} catch (const Error &e) {
		EXPECT_NE(e.hint().find("five fields"), std::string::npos);
	}
	try {
		CronExpr::parse("0 0 * * fri-sun");
		FAIL() << "expected an error";
	} catch (const Error &e) {
		EXPECT_NE(e.hint().find("fri-7"), std::string::npos);
	}
}

TEST(CronErrors, EveryMalformedInputIsRejected)
{
	const char *const bad[] = {
	    // empty and field counts
	    "",
	    "   ",
	    "\t\n",
	    "*",
	    "* * * *",
	    "* * * * * * *",
	    "* * * * * * * *",
	    // out of range
	    "61 * * * *",
	    "-1 * * * *",
	    "* 24 * * *",
	    "* * 0 * *",
	    "* * 32 * *",
	    "* * * 0 *",
	    "* * * 13 *",
	    "* * * * 8",
	    "60 * * * * *",
	    "0-60 * * * *",
	    "* * * * 0-8",
	    // steps
	    "*/0 * * * *",
	    "*/61 * * * *",
	    "* */25 * * *",
	    "* * * */13 *",
	    "*/ * * * *",
	    "/5 * * * *",
	    "1/2/3 * * * *",
	    "*/a * * * *",
	    "*/-1 * * * *",
	    "*/99999999999999999999 * * * *",
	    // names
	    "foo * * * *",
	    "* * * foo *",
	    "* * * * foo",
	    "* * * mon *",
	    "* * * * jan",
	    "* * * january *",
	    "* * * * monday",
	    "* jan * * *",
	    "* * jan * *",
	    // ranges
	    "5-2 * * * *",
	    "* * * dec-jan *",
	    "* * * * fri-sun",
	    "*-5 * * * *",
	    "5- * * * *",
	    "-5 * * * *",
	    "1-2-3 * * * *",
	    "5-* * * * *",
	    "** * * * *",
	    "*5 * * * *",
	    // lists
	    "1,,2 * * * *",
	    ",1 * * * *",
	    "1, * * * *",
	    ", * * * *",
	    "* * 1,,L * *",
	    // overflow
	    "99999999999999999999 * * * *",
	    "* * * * * 18446744073709551617",
	    // junk
	    "1# * * * *",
	    "% * * * *",
	    "1.5 * * * *",
	    "* * * * 1;",
	    "\"* * * * *",
	    "* * * * *\x01",
	    "* * * * lun\xc3\xa9",
	    "0x10 * * * *",
	    "+1 * * * *",
	    "5a * * * *",
	    "a5 * * * *",
	    // '?' and L where they do not belong
	    "? * * * *",
	    "* ? * * *",
	    "* * * ? *",
	    "* * ?,1 * *",
	    "* * ?/2 * *",
	    "* * * * ?-1",
	    "L * * * *",
	    "* * * * L",
	    "* * L/2 * *",
	    "* * L-5 * *",
	    "* * 1-L * *",
	    "* * LL * *",
	    "* * 5L * *",
	    // shorthands
	    "@",
	    "@foo",
	    "@reboot",
	    "@once",
	    "@daily x",
	    "@ daily",
	    "@every 5m",
	};
	for (const char *text : bad)
		error_of(text);
	// An embedded NUL is junk too.
	error_of(std::string("* * * * *\0", 10));
	error_of(std::string("1\0 * * * *", 10));
}

TEST(CronErrors, LongInputIsShortenedInTheMessageOnACharacterBoundary)
{
	std::string text = "* * * * ";
	for (int i = 0; i < 100; i++)
		text += "\xc3\xa9"; // é, two bytes
	std::string message = error_of(text);
	EXPECT_LT(message.size(), 400u);
	// Every byte sequence left is complete UTF-8: no lead byte without its follower.
	for (std::size_t i = 0; i < message.size(); i++) {
		if (static_cast<unsigned char>(message[i]) == 0xc3) {
			EXPECT_EQ(static_cast<unsigned char>(message[i + 1]), 0xa9);
		}
	}
}

// DST in Europe/Berlin: clocks go 02:00 CET -> 03:00 CEST on the last Sunday of
// March and 03:00 CEST -> 02:00 CET on the last Sunday of October.

TEST(CronDst, BerlinSpringForwardDailyJobRunsOnceAtThreeOClock)
{
	EXPECT_EQ(
	    fires("30 2 * * *", "2024-03-30 00:00:00 +0100", 3, kBerlin),
	    (Strings{"2024-03-30 02:30:00 +0100", "2024-03-31 03:00:00 +0200", "2024-04-01 02:30:00 +0200"}));
	// After the gap's fire time, the next day.
	EXPECT_EQ(fires("30 2 * * *", "2024-03-31 03:00:00 +0200", 1, kBerlin),
	          (Strings{"2024-04-01 02:30:00 +0200"}));
}

TEST(CronDst, BerlinSpringForwardCollapsesTheSkippedHour)
{
	// Every time from 02:00 to 02:59 is skipped: they all fire once, at 03:00,
	// together with 03:00 itself.
	EXPECT_EQ(fires("*/20 * * * *", "2024-03-31 01:30:00 +0100", 4, kBerlin),
	          (Strings{"2024-03-31 01:40:00 +0100", "2024-03-31 03:00:00 +0200", "2024-03-31 03:20:00 +0200",
	                   "2024-03-31 03:40:00 +0200"}));
	EXPECT_EQ(fires("10,50 2 * * *", "2024-03-31 01:30:00 +0100", 2, kBerlin),
	          (Strings{"2024-03-31 03:00:00 +0200", "2024-04-01 02:10:00 +0200"}));
	EXPECT_EQ(
	    fires("0 * * * *", "2024-03-31 00:30:00 +0100", 3, kBerlin),
	    (Strings{"2024-03-31 01:00:00 +0100", "2024-03-31 03:00:00 +0200", "2024-03-31 04:00:00 +0200"}));
	// Seconds too.
	EXPECT_EQ(
	    fires("*/30 * * * * *", "2024-03-31 01:59:00 +0100", 3, kBerlin),
	    (Strings{"2024-03-31 01:59:30 +0100", "2024-03-31 03:00:00 +0200", "2024-03-31 03:00:30 +0200"}));
	// A job that does not fire in the gap is not moved: 03:15 stays 03:15.
	EXPECT_EQ(fires("15 3 * * *", "2024-03-31 00:00:00 +0100", 1, kBerlin),
	          (Strings{"2024-03-31 03:15:00 +0200"}));
}

TEST(CronDst, BerlinFallBackDailyJobRunsOnceAtTheFirstTwoThirty)
{
	EXPECT_EQ(
	    fires("30 2 * * *", "2024-10-26 12:00:00 +0200", 3, kBerlin),
	    (Strings{"2024-10-27 02:30:00 +0200", "2024-10-28 02:30:00 +0100", "2024-10-29 02:30:00 +0100"}));
	// Asked during the repeated hour, after the first 02:30: the next day.
	EXPECT_EQ(fires("30 2 * * *", "2024-10-27 02:45:00 +0200", 1, kBerlin),
	          (Strings{"2024-10-28 02:30:00 +0100"}));
	EXPECT_EQ(fires("30 2 * * *", "2024-10-27 02:10:00 +0100", 1, kBerlin),
	          (Strings{"2024-10-28 02:30:00 +0100"}));
	EXPECT_EQ(fires("30 2 * * *", "2024-10-27 02:45:00 +0100", 1, kBerlin),
	          (Strings{"2024-10-28 02:30:00 +0100"}));
}

TEST(CronDst, BerlinFallBackRepeatedHourDoesNotFireAgain)
{
	// The second pass of 02:00-02:59 shows times that already fired.
	EXPECT_EQ(fires("0 * * * *", "2024-10-27 00:30:00 +0200", 4, kBerlin),
	          (Strings{"2024-10-27 01:00:00 +0200", "2024-10-27 02:00:00 +0200", "2024-10-27 03:00:00 +0100",
	                   "2024-10-27 04:00:00 +0100"}));
	EXPECT_EQ(fires("*/30 * * * *", "2024-10-27 01:50:00 +0200", 4, kBerlin),
	          (Strings{"2024-10-27 02:00:00 +0200", "2024-10-27 02:30:00 +0200", "2024-10-27 03:00:00 +0100",
	                   "2024-10-27 03:30:00 +0100"}));
	// Asked during the second pass: the first time after the repeated hour.
	EXPECT_EQ(fires("*/30 * * * *", "2024-10-27 02:00:00 +0100", 1, kBerlin),
	          (Strings{"2024-10-27 03:00:00 +0100"}));
	EXPECT_EQ(fires("* * * * * *", "2024-10-27 02:59:59 +0200", 2, kBerlin),
	          (Strings{"2024-10-27 03:00:00 +0100", "2024-10-27 03:00:01 +0100"}));
}

// DST in America/New_York: 02:00 EST -> 03:00 EDT on the second Sunday of
// March, 02:00 EDT -> 01:00 EST on the first Sunday of November.

TEST(CronDst, NewYorkSpringForward)
{
	EXPECT_EQ(
	    fires("30 2 * * *", "2024-03-09 12:00:00 -0500", 3, kNewYork),
	    (Strings{"2024-03-10 03:00:00 -0400", "2024-03-11 02:30:00 -0400", "2024-03-12 02:30:00 -0400"}));
	EXPECT_EQ(
	    fires("0 * * * *", "2024-03-10 00:30:00 -0500", 3, kNewYork),
	    (Strings{"2024-03-10 01:00:00 -0500", "2024-03-10 03:00:00 -0400", "2024-03-10 04:00:00 -0400"}));
}

TEST(CronDst, NewYorkFallBack)
{
	// 02:30 is not repeated in New York (01:00-01:59 is): once, as every day.
	EXPECT_EQ(
	    fires("30 2 * * *", "2024-11-02 12:00:00 -0400", 3, kNewYork),
	    (Strings{"2024-11-03 02:30:00 -0500", "2024-11-04 02:30:00 -0500", "2024-11-05 02:30:00 -0500"}));
	// 01:30 is: it fires at its first occurrence only.
	EXPECT_EQ(fires("30 1 * * *", "2024-11-02 12:00:00 -0400", 2, kNewYork),
	          (Strings{"2024-11-03 01:30:00 -0400", "2024-11-04 01:30:00 -0500"}));
	EXPECT_EQ(fires("30 1 * * *", "2024-11-03 01:10:00 -0500", 1, kNewYork),
	          (Strings{"2024-11-04 01:30:00 -0500"}));
	EXPECT_EQ(fires("*/20 * * * *", "2024-11-03 01:30:00 -0400", 4, kNewYork),
	          (Strings{"2024-11-03 01:40:00 -0400", "2024-11-03 02:00:00 -0500", "2024-11-03 02:20:00 -0500",
	                   "2024-11-03 02:40:00 -0500"}));
}

TEST(CronDst, ADaySkippedWholeFiresOnceAtItsEnd)
{
	// Samoa moved across the date line: 2011-12-29 24:00 -1000 was followed by
	// 2011-12-31 00:00 +1400. Everything matching on 30 December fires once, at
	// the end of the gap.
	const LibcTimeZone apia("Pacific/Apia");
	EXPECT_EQ(
	    fires("0 12 * * *", "2011-12-29 00:00:00 -1000", 3, apia),
	    (Strings{"2011-12-29 12:00:00 -1000", "2011-12-31 00:00:00 +1400", "2011-12-31 12:00:00 +1400"}));
	EXPECT_EQ(fires("0 0 30 12 *", "2011-12-01 00:00:00 -1000", 2, apia),
	          (Strings{"2011-12-31 00:00:00 +1400", "2012-12-30 00:00:00 +1400"}));
}

TEST(CronRange, ExtremeInstantsDoNotOverflow)
{
	CronExpr every = CronExpr::parse("* * * * * *");
	EXPECT_EQ(every.next_after(std::numeric_limits<Micros>::max(), kUtc), std::nullopt);
	// The last whole second that Micros can hold still fires.
	EXPECT_EQ(every.next_after(std::numeric_limits<Micros>::max() - kMicrosPerSecond, kUtc),
	          std::numeric_limits<Micros>::max() / kMicrosPerSecond * kMicrosPerSecond);
	std::optional<Micros> first = every.next_after(std::numeric_limits<Micros>::min(), kUtc);
	ASSERT_TRUE(first.has_value());
	EXPECT_GT(*first, std::numeric_limits<Micros>::min());
	// Before 1970.
	EXPECT_EQ(fires("0 0 1 1 *", "1969-06-01 00:00:00", 2),
	          (Strings{"1970-01-01 00:00:00", "1971-01-01 00:00:00"}));
	EXPECT_EQ(fires("0 0 29 2 *", "1899-01-01 00:00:00", 2),
	          (Strings{"1904-02-29 00:00:00", "1908-02-29 00:00:00"}));
}

TEST(CronSpeed, TheLongestWaitIsFoundInMicroseconds)
{
	// The worst case of the 400-year search: 40 years from one 29 February on
	// a Sunday to the next (2088 to 2128), one month per year to look at.
	// Measured: under 1 us in UTC (each month is one bit mask).
	CronExpr e = CronExpr::parse("59 59 23 29 2 */7");
	Micros t = instant("2088-03-01 00:00:00");
	const int calls = 20000;
	auto start = std::chrono::steady_clock::now();
	for (int i = 0; i < calls; i++)
		ASSERT_EQ(e.next_after(t + i * 7919 * kMicrosPerSecond, kUtc), instant("2128-02-29 23:59:59"));
	double micros =
	    std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
	EXPECT_LT(micros / calls, 50.0) << "average next_after: " << micros / calls << " us";
	std::printf("40 years ahead: %.2f us per next_after\n", micros / calls);
}

TEST(CronSpeed, NextAfterTakesMicroseconds)
{
	// A loose bound: a field-skipping search takes about a microsecond; a
	// minute-by-minute walk would take far longer for these.
	std::vector<CronExpr> exprs;
	for (const char *text : {"0 0 29 2 *", "0 0 30 2 *", "59 23 31 12 *", "0 0 13 * fri", "*/7 * * * * *"})
		exprs.push_back(CronExpr::parse(text));
	auto start = std::chrono::steady_clock::now();
	int calls = 0;
	Micros t = instant("2024-01-01 00:00:00");
	for (int i = 0; i < 20000; i++, t += 3 * kMicrosPerHour + 17)
		for (const CronExpr &e : exprs) {
			(void)e.next_after(t, kUtc);
			calls++;
		}
	double micros =
	    std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
	EXPECT_LT(micros / calls, 50.0) << "average next_after: " << micros / calls << " us";
}

// Randomized comparison with the brute-force walkers of cron_model.hpp.

TEST(CronRandomized, DstWalkerPreconditionsHold)
{
	// brute_zone assumes offsets change at whole minutes by less than three
	// hours, and that the tz database knows about DST at all.
	for (const LibcTimeZone *tz : {&kBerlin, &kNewYork}) {
		std::vector<std::int64_t> ts = transitions(*tz);
		EXPECT_GT(ts.size(), 90u) << tz->name();
		for (std::int64_t t : ts) {
			EXPECT_EQ(t % 60, 0) << tz->name();
			EXPECT_LT(std::abs(tz->utc_offset(t) - tz->utc_offset(t - 1)), 3 * 3600) << tz->name();
		}
	}
}

TEST(CronRandomized, TenThousandExpressionsAgreeWithBruteForce)
{
	std::mt19937 rng(20240331);
	const std::vector<std::int64_t> berlin = transitions(kBerlin);
	const std::vector<std::int64_t> new_york = transitions(kNewYork);
	const std::size_t want = 3;
	Comparison utc, zoned;
	for (int i = 0; i < 10000; i++) {
		Model m = generate(rng);
		CronExpr e = CronExpr::parse(m.text);
		ASSERT_EQ(e.has_seconds(), m.seconds) << m.text;
		// A valid cron expression is never read as an interval.
		ASSERT_EQ(parse_schedule_text(m.text)->kind, ScheduleKind::Cron) << m.text;

		// UTC, from anywhere between 1900 and 2100, over 9 years: long enough
		// for anything but an expression that never fires to fire (29 February
		// skips 8 years at most), and within the engine's horizon.
		{
			std::int64_t secs = std::uniform_int_distribution<std::int64_t>(-2208988800LL, 4102444800LL)(rng);
			if (chance(rng, 30))
				secs = floor_div(secs, 60) * 60;
			Micros after = secs * kMicrosPerSecond + random_micros(rng);
			std::int64_t from = floor_div(after, kMicrosPerSecond) + 1;
			std::int64_t end = from + 9 * 365 * 86400LL;
			utc.check(m, e, kUtc, "UTC", after, brute_utc(m, from, end, want), end, want);
		}

		// A DST zone, from near a transition half of the time, over 3 days.
		{
			const LibcTimeZone &tz = i % 2 ? kBerlin : kNewYork;
			const std::vector<std::int64_t> &ts = i % 2 ? berlin : new_york;
			std::int64_t secs;
			if (chance(rng, 50))
				secs = ts[pick(rng, 0, static_cast<int>(ts.size()) - 1)] + pick(rng, -2 * 86400, 3 * 3600);
			else
				secs = std::uniform_int_distribution<std::int64_t>(631152000LL, 2114380800LL)(rng);
			if (chance(rng, 30))
				secs = floor_div(secs, 60) * 60;
			Micros after = secs * kMicrosPerSecond + random_micros(rng);
			std::int64_t from = floor_div(after, kMicrosPerSecond) + 1;
			std::int64_t end = from + 3 * 86400;
			zoned.check(m, e, tz, tz.name().c_str(), after, brute_zone(m, tz, from, end, want), end, want);
		}
	}
	EXPECT_EQ(utc.failures, 0);
	EXPECT_EQ(zoned.failures, 0);
	// The comparison means something only if most cases fire.
	EXPECT_GT(utc.fires, 2 * utc.cases);
	EXPECT_GT(zoned.fires, zoned.cases);
	std::printf("UTC: %d cases, %d fire times compared; zones: %d cases, %d fire times compared\n", utc.cases,
	            utc.fires, zoned.cases, zoned.fires);
}
