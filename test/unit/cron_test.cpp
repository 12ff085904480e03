// Unit tests of cron expressions: the field forms, the day rules, DST, errors,
// and a randomized comparison against brute-force walkers.
//
// Fire times are shown as wall-clock strings with their UTC offset, so that a
// test reads as what a user of the zone would see.
#include "core/cron.hpp"
#include "core/error.hpp"
#include "core/schedule.hpp"
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
using foreman::test::LibcTimeZone;

namespace {

using Strings = std::vector<std::string>;

const UtcZone kUtc;
const LibcTimeZone kBerlin("Europe/Berlin");
const LibcTimeZone kNewYork("America/New_York");

// floor_div: division rounding towards minus infinity.
std::int64_t
floor_div(std::int64_t a, std::int64_t b)
{
	std::int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// instant: "YYYY-MM-DD HH:MM:SS[.ffffff] [+HHMM]" (offset default +0000) as Micros.
Micros
instant(const char *text)
{
	int y, mo, d, h, mi, s, off = 0;
	char sign = '+';
	long frac = 0;
	int n = std::sscanf(text, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s);
	EXPECT_EQ(n, 6) << text;
	const char *rest = std::strchr(text, ' ');
	rest = rest ? std::strchr(rest, '.') : nullptr;
	if (rest)
		std::sscanf(rest, ".%ld", &frac);
	const char *zone = std::strrchr(text, ' ');
	if (zone && (zone[1] == '+' || zone[1] == '-'))
		std::sscanf(zone + 1, "%c%d", &sign, &off);
	using namespace std::chrono;
	std::int64_t days = sys_days(year_month_day(year(y), month(mo), day(d))).time_since_epoch().count();
	std::int64_t offset = (off / 100 * 3600 + off % 100 * 60) * (sign == '-' ? -1 : 1);
	return (days * 86400 + h * 3600 + mi * 60 + s - offset) * kMicrosPerSecond + frac;
}

// wall: an instant as the zone's wall clock shows it, with the offset unless
// the zone is kUtc.
std::string
wall(Micros t, const TimeZone &tz)
{
	std::int64_t secs = floor_div(t, kMicrosPerSecond);
	std::int64_t micros = t - secs * kMicrosPerSecond;
	std::int64_t offset = tz.utc_offset(secs);
	std::int64_t local = secs + offset;
	std::int64_t days = floor_div(local, 86400);
	std::int64_t sod = local - days * 86400;
	using namespace std::chrono;
	year_month_day ymd{sys_days(std::chrono::days(days))};
	char buf[80];
	std::int64_t off = offset < 0 ? -offset : offset;
	std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d", static_cast<int>(ymd.year()),
	              static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
	              static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
	std::string out = buf;
	if (micros != 0) {
		std::snprintf(buf, sizeof buf, ".%06d", static_cast<int>(micros));
		out += buf;
	}
	if (&tz == &kUtc)
		return out;
	std::snprintf(buf, sizeof buf, " %c%02d%02d", offset < 0 ? '-' : '+', static_cast<int>(off / 3600),
	              static_cast<int>(off / 60 % 60));
	return out + buf;
}

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
	}
	// 31 fires in the months that have it.
	EXPECT_EQ(fires("0 0 31 * *", "2024-01-31 00:00:00", 2),
	          (Strings{"2024-03-31 00:00:00", "2024-05-31 00:00:00"}));
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

// ---------------------------------------------------------------------------
// Randomized comparison with brute-force walkers.
//
// Random valid expressions are generated together with the sets of values they
// stand for, computed here independently of the parser. Two walkers then find
// the first fire times by stepping through time:
//  - in UTC: day by day, and within matching days hour by hour, minute by
//    minute and second by second (every day has the same seconds in UTC);
//  - in a DST zone: instant by instant (in steps of a minute, refined to
//    seconds only inside minutes that can match), keeping the latest wall-clock
//    time shown so far: a matching wall-clock time fires the first time the
//    clock shows it or jumps past it. That is the rule of doc/cron.md, stated
//    without any search.
// ---------------------------------------------------------------------------

namespace {

// What a field of a generated expression stands for.
struct ModelField {
	std::array<bool, 64> values{};
	bool star = false;
	bool last = false;
};

struct Model {
	std::string text;
	bool seconds = false;
	ModelField second, minute, hour, dom, month, dow;
};

struct FieldShape {
	int min;
	int max;
	int star_max;
	const char *const *names;
	int name_count;
	int first_name;
	bool is_dom;
	bool is_dow;
};

const char *const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                               "jul", "aug", "sep", "oct", "nov", "dec"};
const char *const kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// pick: uniform in [lo, hi].
int
pick(std::mt19937 &rng, int lo, int hi)
{
	return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// chance: true with probability percent/100.
bool
chance(std::mt19937 &rng, int percent)
{
	return pick(rng, 0, 99) < percent;
}

// value_text: a value written as a number or, sometimes, as a name in any case.
std::string
value_text(std::mt19937 &rng, const FieldShape &s, int v)
{
	if (s.names && v - s.first_name < s.name_count && chance(rng, 40)) {
		std::string name = s.names[v - s.first_name];
		for (char &c : name)
			if (chance(rng, 30))
				c = static_cast<char>(c - 'a' + 'A');
		return name;
	}
	return std::to_string(v);
}

// add: lo..hi by step into the model field, Sunday 7 folded into 0.
void
add(ModelField &f, const FieldShape &s, int lo, int hi, int step)
{
	for (int v = lo; v <= hi; v += step)
		f.values[s.is_dow && v == 7 ? 0 : v] = true;
}

// small_step: steps, mostly small so that expressions fire often.
int
small_step(std::mt19937 &rng, const FieldShape &s)
{
	int span = s.star_max - s.min + 1;
	return chance(rng, 80) ? pick(rng, 1, std::min(span, 6)) : pick(rng, 1, span);
}

// generate_field: random text for one field and the values it stands for;
// star_percent is how often the field is left open.
ModelField
generate_field(std::mt19937 &rng, const FieldShape &s, int star_percent, std::string &text)
{
	ModelField f;
	std::string out;
	if (chance(rng, star_percent)) {
		if ((s.is_dom || s.is_dow) && chance(rng, 15))
			out = "?";
		else
			out = "*";
		add(f, s, s.min, s.star_max, 1);
		f.star = true;
		text += out;
		return f;
	}
	int items = chance(rng, 65) ? 1 : pick(rng, 2, 4);
	for (int i = 0; i < items; i++) {
		if (i > 0)
			out += ",";
		int kind = pick(rng, 0, 9);
		if (s.is_dom && kind == 9) {
			out += chance(rng, 50) ? "L" : "l";
			f.last = true;
		} else if (kind <= 1) { // '*/n'
			int step = small_step(rng, s);
			out += "*/" + std::to_string(step);
			add(f, s, s.min, s.star_max, step);
		} else if (kind <= 4) { // 'a'
			int v = pick(rng, s.min, s.max);
			out += value_text(rng, s, v);
			add(f, s, v, v, 1);
		} else if (kind <= 6) { // 'a-b', maybe with a step
			int a = pick(rng, s.min, s.max), b = pick(rng, s.min, s.max);
			if (a > b)
				std::swap(a, b);
			out += value_text(rng, s, a) + "-" + value_text(rng, s, b);
			int step = 1;
			if (chance(rng, 50)) {
				step = small_step(rng, s);
				out += "/" + std::to_string(step);
			}
			add(f, s, a, b, step);
		} else { // 'a/n'
			int a = pick(rng, s.min, s.max);
			int step = small_step(rng, s);
			out += value_text(rng, s, a) + "/" + std::to_string(step);
			add(f, s, a, std::max(a, s.star_max), step);
		}
	}
	// Vixie cron's rule looks at the first character only.
	f.star = out[0] == '*';
	text += out;
	return f;
}

// generate: a random valid expression that fires often enough for the walkers.
Model
generate(std::mt19937 &rng)
{
	static const FieldShape kSecond{0, 59, 59, nullptr, 0, 0, false, false};
	static const FieldShape kMinute{0, 59, 59, nullptr, 0, 0, false, false};
	static const FieldShape kHour{0, 23, 23, nullptr, 0, 0, false, false};
	static const FieldShape kDom{1, 31, 31, nullptr, 0, 0, true, false};
	static const FieldShape kMonth{1, 12, 12, kMonths, 12, 1, false, false};
	static const FieldShape kDow{0, 7, 6, kDays, 7, 0, false, true};
	Model m;
	m.seconds = chance(rng, 30);
	if (m.seconds) {
		m.second = generate_field(rng, kSecond, 30, m.text);
		m.text += " ";
	} else {
		m.second.values[0] = true;
	}
	m.minute = generate_field(rng, kMinute, 25, m.text);
	m.text += " ";
	m.hour = generate_field(rng, kHour, 40, m.text);
	m.text += chance(rng, 10) ? "\t" : " ";
	m.dom = generate_field(rng, kDom, 55, m.text);
	m.text += " ";
	m.month = generate_field(rng, kMonth, 70, m.text);
	m.text += " ";
	m.dow = generate_field(rng, kDow, 55, m.text);
	return m;
}

// Date facts from std::chrono's calendar, independent of the code under test.
struct DayFacts {
	int month;
	int day;
	int last_day;
	int weekday;
};

// facts: the calendar facts of a day number (days since 1970-01-01).
DayFacts
facts(std::int64_t day_number)
{
	using namespace std::chrono;
	sys_days sd{std::chrono::days(day_number)};
	year_month_day ymd{sd};
	year_month_day_last last{ymd.year(), month_day_last{ymd.month()}};
	return {static_cast<int>(static_cast<unsigned>(ymd.month())),
	        static_cast<int>(static_cast<unsigned>(ymd.day())),
	        static_cast<int>(static_cast<unsigned>(last.day())), static_cast<int>(weekday{sd}.c_encoding())};
}

// date_matches: the day rules of the model, Vixie cron's OR included.
bool
date_matches(const Model &m, std::int64_t day_number)
{
	DayFacts f = facts(day_number);
	if (!m.month.values[f.month])
		return false;
	bool dom = m.dom.values[f.day] || (m.dom.last && f.day == f.last_day);
	bool dow = m.dow.values[f.weekday];
	return (m.dom.star || m.dow.star) ? (dom && dow) : (dom || dow);
}

// brute_utc: the first `want` fire instants (seconds) in [from, end) in UTC.
std::vector<std::int64_t>
brute_utc(const Model &m, std::int64_t from, std::int64_t end, std::size_t want)
{
	std::vector<std::int64_t> out;
	for (std::int64_t day = floor_div(from, 86400); day * 86400 < end; day++) {
		if (!date_matches(m, day))
			continue;
		for (int h = 0; h < 24; h++) {
			if (!m.hour.values[h])
				continue;
			for (int mi = 0; mi < 60; mi++) {
				if (!m.minute.values[mi])
					continue;
				for (int s = 0; s < 60; s++) {
					if (!m.second.values[s])
						continue;
					std::int64_t t = day * 86400 + h * 3600 + mi * 60 + s;
					if (t < from)
						continue;
					if (t >= end)
						return out;
					out.push_back(t);
					if (out.size() == want)
						return out;
				}
			}
		}
	}
	return out;
}

// WallMatcher: which wall-clock times (local seconds) the model matches,
// remembering the last day's date check.
struct WallMatcher {
	const Model &m;
	std::int64_t cached_day = std::numeric_limits<std::int64_t>::min();
	bool cached = false;

	// minute_matches: date, hour and minute of the wall-clock minute starting at w.
	bool minute_matches(std::int64_t w)
	{
		std::int64_t day = floor_div(w, 86400);
		std::int64_t sod = w - day * 86400;
		if (!m.hour.values[sod / 3600] || !m.minute.values[sod / 60 % 60])
			return false;
		if (day != cached_day) {
			cached_day = day;
			cached = date_matches(m, day);
		}
		return cached;
	}

	// each: calls fn(w) for every matched wall-clock time in [lo, hi], in order,
	// until fn returns false.
	template <typename Fn> void each(std::int64_t lo, std::int64_t hi, Fn fn)
	{
		for (std::int64_t minute = floor_div(lo, 60) * 60; minute <= hi; minute += 60) {
			if (!minute_matches(minute))
				continue;
			for (int s = 0; s < 60; s++) {
				std::int64_t w = minute + s;
				if (m.second.values[s] && w >= lo && w <= hi && !fn(w))
					return;
			}
		}
	}
};

// brute_zone: the first `want` fire instants (seconds) in [from, end) in a zone
// whose offsets change only at whole minutes and by less than three hours.
std::vector<std::int64_t>
brute_zone(const Model &m, const TimeZone &tz, std::int64_t from, std::int64_t end, std::size_t want)
{
	std::vector<std::int64_t> out;
	WallMatcher match{m};
	auto wall_at = [&](std::int64_t u) { return u + tz.utc_offset(u); };

	// The latest wall-clock time shown before `from`: now, or just before a
	// fall-back in the last three hours (offsets change at whole minutes).
	std::int64_t first_minute = floor_div(from, 60) * 60;
	std::int64_t shown = wall_at(from - 1);
	for (int k = 0; k <= 180; k++)
		shown = std::max(shown, wall_at(first_minute - 60 * k - 1));

	for (std::int64_t minute = first_minute; minute < end && out.size() < want; minute += 60) {
		std::int64_t offset = tz.utc_offset(minute); // constant within the minute
		std::int64_t u = std::max(minute, from);
		std::int64_t last = std::min(minute + 59, end - 1);
		if (u > last)
			break;
		if (u + offset > shown + 1) {
			// The clock jumped: whatever matched in between fires now.
			bool any = false;
			match.each(shown + 1, u + offset, [&](std::int64_t) { return !(any = true); });
			if (any)
				out.push_back(u);
			if (out.size() == want)
				break;
			shown = u + offset;
			u++;
		}
		// The rest of the minute shows consecutive times; new ones fire.
		std::int64_t lo = std::max(shown + 1, u + offset);
		std::int64_t hi = last + offset;
		if (lo <= hi)
			match.each(lo, hi, [&](std::int64_t w) {
				out.push_back(w - offset);
				return out.size() < want;
			});
		shown = std::max(shown, hi);
	}
	return out;
}

// transitions: the instants between 1990 and 2037 at which tz changes its
// offset, found by sampling every day and bisecting. (Past the tables of the
// tz files, glibc reparses the zone's rule on every call: too slow here.)
std::vector<std::int64_t>
transitions(const TimeZone &tz)
{
	std::vector<std::int64_t> out;
	std::int64_t from = instant("1990-01-01 00:00:00") / kMicrosPerSecond;
	std::int64_t to = instant("2037-01-01 00:00:00") / kMicrosPerSecond;
	for (std::int64_t day = from; day < to; day += 86400) {
		std::int64_t before = tz.utc_offset(day);
		if (tz.utc_offset(day + 86400) == before)
			continue;
		std::int64_t lo = day, hi = day + 86400;
		while (hi - lo > 1) {
			std::int64_t mid = lo + (hi - lo) / 2;
			(tz.utc_offset(mid) == before ? lo : hi) = mid;
		}
		out.push_back(hi);
	}
	return out;
}

// Shared by the randomized tests: expressions whose fire times differ are
// reported, the first few in full.
struct Comparison {
	int cases = 0;
	int fires = 0;
	int failures = 0;

	// check: the engine's first fire times after `after` against the walker's,
	// which found `expected` (seconds) in [first second after `after`, end).
	void check(const Model &m, const CronExpr &e, const TimeZone &tz, const char *zone, Micros after,
	           const std::vector<std::int64_t> &expected, std::int64_t end, std::size_t want)
	{
		cases++;
		Micros t = after;
		std::vector<std::string> got;
		bool ok = true;
		for (std::size_t i = 0; i <= expected.size() && i < want; i++) {
			std::optional<Micros> next = e.next_after(t, tz);
			if (i < expected.size()) {
				ok = ok && next && *next == expected[i] * kMicrosPerSecond;
				fires++;
			} else {
				// The walker found no more before `end`: neither may the engine.
				ok = ok && (!next || *next >= end * kMicrosPerSecond);
			}
			got.push_back(next ? wall(*next, tz) : "none");
			if (!ok || !next)
				break;
			t = *next;
		}
		if (ok)
			return;
		if (++failures > 10)
			return;
		std::string want_text;
		for (std::int64_t x : expected)
			want_text += wall(x * kMicrosPerSecond, tz) + "; ";
		std::string got_text;
		for (const std::string &x : got)
			got_text += x + "; ";
		ADD_FAILURE() << "\"" << m.text << "\" in " << zone << " after " << wall(after, tz)
		              << "\n  walker: " << want_text << "(window ends " << wall(end * kMicrosPerSecond, tz)
		              << ")\n  engine: " << got_text;
	}
};

// random_micros: a random fraction of a second, or none (whole seconds and
// whole minutes are where off-by-ones live).
Micros
random_micros(std::mt19937 &rng)
{
	int kind = pick(rng, 0, 3);
	return kind == 0 ? 0 : kind == 1 ? kMicrosPerSecond - 1 : pick(rng, 0, 999999);
}

} // namespace

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
