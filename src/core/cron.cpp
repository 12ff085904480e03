// cron.cpp: parsing cron expressions and finding their next fire time.
//
// Parsing turns each field into a bit mask. The search runs on the wall clock,
// field by field (month, day, hour, minute, second), and only then maps the
// wall-clock time it found to an instant in the time zone. doc/cron.md states
// the rules; the comments here say how the code keeps them.
#include "core/pure.hpp"

#include "core/cron.hpp"
#include "core/ascii.hpp"
#include "core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>

namespace foreman::core {

using ascii::is_alpha;
using ascii::is_digit;
using ascii::is_space;
using ascii::lower;
using ascii::shown;
using ascii::trim;

namespace {

constexpr std::int64_t kSecondsPerDay = 86400;

// How many calendar years after the start year the search looks: a whole
// Gregorian cycle. The calendar repeats every 400 years (146097 days, a whole
// number of weeks), so an expression that matches any date matches one within
// the horizon. The longest wait is 40 years (29 February on a Sunday: 2088,
// then 2128); expressions that never fire are known at parse time (can_fire())
// and not searched for at all.
constexpr std::int64_t kHorizonYears = 400;

// How far around an instant offset changes are looked for. The zone is assumed
// to change its offset at most once within any two such windows (every real
// zone does: DST transitions are months apart).
constexpr std::int64_t kTransitionWindow = kSecondsPerDay;

// Offsets beyond this are clamped, so that a broken zone cannot overflow.
constexpr std::int64_t kMaxOffset = 2 * kSecondsPerDay;

// The last whole second that still fits in Micros.
constexpr std::int64_t kMaxSeconds = std::numeric_limits<Micros>::max() / kMicrosPerSecond;

// One field of an expression: its name in messages and the numbers it takes.
struct FieldSpec {
	const char *name;
	int min;
	int max;                  // largest number accepted
	int star_max;             // upper end of '*' and of 'a/n' (6 for day-of-week)
	const char *const *names; // three-letter names, or nullptr
	int name_count;
	int first_name_value; // value of names[0]
	bool allows_question; // '?' as the whole field
	bool allows_last;     // L
};

constexpr const char *kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char *kWeekdayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kSecondField{"second", 0, 59, 59, nullptr, 0, 0, false, false};
constexpr FieldSpec kMinuteField{"minute", 0, 59, 59, nullptr, 0, 0, false, false};
constexpr FieldSpec kHourField{"hour", 0, 23, 23, nullptr, 0, 0, false, false};
constexpr FieldSpec kDayField{"day-of-month", 1, 31, 31, nullptr, 0, 0, true, true};
constexpr FieldSpec kMonthField{"month", 1, 12, 12, kMonthNames, 12, 1, false, false};
constexpr FieldSpec kWeekdayField{"day-of-week", 0, 7, 6, kWeekdayNames, 7, 0, true, false};

const char *const kFieldsHint =
    "A cron expression has five fields (minute hour day-of-month month day-of-week), or six with "
    "seconds first, e.g. '*/5 * * * *'.";

// What one field parses to.
struct ParsedField {
	std::uint64_t mask = 0;
	bool star = false; // began with '*' or '?'
	bool last = false; // L
};

// fail: throws the error every malformed expression gets (22023).
[[noreturn]] void
fail(std::string_view text, const std::string &problem, std::string hint = {})
{
	throw Error(sqlstate::kInvalidParameterValue,
	            fmt::format("invalid cron expression \"{}\": {}", shown(text), problem), {}, std::move(hint));
}

// floor_div: division rounding towards minus infinity (instants before 1970).
std::int64_t
floor_div(std::int64_t a, std::int64_t b)
{
	std::int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// bit: the mask with value v set.
std::uint64_t
bit(int v)
{
	return std::uint64_t{1} << v;
}

// next_bit: the smallest value >= from set in mask, or -1.
int
next_bit(std::uint64_t mask, int from)
{
	if (from >= 64)
		return -1;
	std::uint64_t rest = mask & (~std::uint64_t{0} << from);
	return rest ? std::countr_zero(rest) : -1;
}

// parse_number: a run of digits, saturated just past any field's range so that
// 99999999999999999999 reads as "too large" instead of overflowing.
int
parse_number(std::string_view digits)
{
	int v = 0;
	for (char c : digits) {
		v = v * 10 + (c - '0');
		if (v > 1000000)
			return 1000001;
	}
	return v;
}

// parse_value: one number or name of a field.
int
parse_value(std::string_view text, const FieldSpec &f, std::string_view token)
{
	if (f.allows_last && (token == "L" || token == "l"))
		fail(text, "L (the last day of the month) cannot be part of a range or step");
	if (!token.empty() && std::all_of(token.begin(), token.end(), is_digit)) {
		int v = parse_number(token);
		if (v < f.min || v > f.max)
			fail(text, fmt::format("{} {} is out of range {}-{}", f.name, shown(token), f.min, f.max));
		return v;
	}
	if (f.names && !token.empty() && is_alpha(token[0])) {
		std::string name = lower(token);
		for (int i = 0; i < f.name_count; i++)
			if (name == f.names[i])
				return f.first_name_value + i;
		fail(text, fmt::format("unknown {} name \"{}\"", f.name, shown(token)));
	}
	fail(text, fmt::format("{} \"{}\" is not a number", f.name, shown(token)));
}

// add_values: lo..hi by step into the mask; day-of-week 7 is Sunday, 0.
void
add_values(const FieldSpec &f, int lo, int hi, int step, ParsedField &out)
{
	for (int v = lo; v <= hi; v += step)
		out.mask |= bit(&f == &kWeekdayField && v == 7 ? 0 : v);
}

// parse_item: one element of a list: '*', a value, a range, each with an
// optional step, or L.
void
parse_item(std::string_view text, const FieldSpec &f, std::string_view item, ParsedField &out)
{
	if (item == "L" || item == "l") {
		if (!f.allows_last)
			fail(text, fmt::format("L (the last day of the month) is not allowed in the {} field", f.name));
		out.last = true;
		return;
	}
	if (item.find('?') != std::string_view::npos)
		fail(text, fmt::format("\"?\" in {} field must stand alone", f.name),
		     "\"?\" means the same as \"*\" and is allowed only as the whole day-of-month or day-of-week "
		     "field.");

	std::size_t slash = item.find('/');
	std::string_view base = item.substr(0, slash);
	int step = 1;
	bool has_step = slash != std::string_view::npos;
	if (has_step) {
		std::string_view step_text = item.substr(slash + 1);
		if (step_text.find('/') != std::string_view::npos)
			fail(text, fmt::format("{} item \"{}\" has more than one \"/\"", f.name, shown(item)));
		if (step_text.empty())
			fail(text, fmt::format("{} item \"{}\" has no step after \"/\"", f.name, shown(item)));
		if (!std::all_of(step_text.begin(), step_text.end(), is_digit))
			fail(text, fmt::format("{} step \"{}\" is not a number", f.name, shown(step_text)));
		step = parse_number(step_text);
		int span = f.star_max - f.min + 1;
		if (step < 1 || step > span)
			fail(text, fmt::format("{} step {} is out of range 1-{}", f.name, shown(step_text), span));
		if (base.empty())
			fail(text, fmt::format("{} item \"{}\" has no value before \"/\"", f.name, shown(item)));
	}

	if (base == "*") {
		add_values(f, f.min, f.star_max, step, out);
		return;
	}
	if (base.find('*') != std::string_view::npos)
		fail(text, fmt::format("{} item \"{}\" is not valid", f.name, shown(item)),
		     "\"*\" stands alone or before a step, as in \"*/5\".");

	std::size_t dash = base.find('-');
	if (dash == std::string_view::npos) {
		int v = parse_value(text, f, base);
		// 'a/n' runs from a to the end of the field.
		add_values(f, v, has_step ? std::max(v, f.star_max) : v, step, out);
		return;
	}
	std::string_view lo_text = base.substr(0, dash);
	std::string_view hi_text = base.substr(dash + 1);
	if (lo_text.empty() || hi_text.empty() || hi_text.find('-') != std::string_view::npos)
		fail(text, fmt::format("{} range \"{}\" is not valid", f.name, shown(base)));
	int lo = parse_value(text, f, lo_text);
	int hi = parse_value(text, f, hi_text);
	if (lo > hi)
		fail(text, fmt::format("{} range \"{}\" has its start after its end", f.name, shown(base)),
		     &f == &kWeekdayField ? "Sunday is both 0 and 7: write fri-7 for Friday to Sunday." : "");
	add_values(f, lo, hi, step, out);
}

// parse_field: one whitespace-separated field, a comma-separated list of items.
ParsedField
parse_field(std::string_view text, const FieldSpec &f, std::string_view field)
{
	for (char c : field) {
		if (is_digit(c) || is_alpha(c) || c == '*' || c == '?' || c == ',' || c == '-' || c == '/')
			continue;
		unsigned char u = static_cast<unsigned char>(c);
		if (u >= 0x21 && u < 0x7F)
			fail(text,
			     fmt::format("unexpected character \"{}\" in {} field \"{}\"", c, f.name, shown(field)));
		fail(text, fmt::format("unexpected character in {} field \"{}\"", f.name, shown(field)));
	}

	ParsedField out;
	out.star = field.front() == '*' || field.front() == '?';
	if (field == "?") {
		if (!f.allows_question)
			fail(text, fmt::format("\"?\" is not allowed in the {} field", f.name),
			     "\"?\" means the same as \"*\" and is allowed only in the day-of-month and day-of-week "
			     "fields.");
		add_values(f, f.min, f.star_max, 1, out);
		return out;
	}
	std::size_t start = 0;
	for (;;) {
		std::size_t comma = field.find(',', start);
		std::string_view item =
		    field.substr(start, comma == std::string_view::npos ? field.npos : comma - start);
		if (item.empty())
			fail(text, fmt::format("empty item in {} list \"{}\"", f.name, shown(field)));
		parse_item(text, f, item, out);
		if (comma == std::string_view::npos)
			break;
		start = comma + 1;
	}
	return out;
}

// expand_shorthand: the five fields an @word stands for.
std::string_view
expand_shorthand(std::string_view text)
{
	std::string word = lower(text);
	if (word == "@yearly" || word == "@annually")
		return "0 0 1 1 *";
	if (word == "@monthly")
		return "0 0 1 * *";
	if (word == "@weekly")
		return "0 0 * * 0";
	if (word == "@daily" || word == "@midnight")
		return "0 0 * * *";
	if (word == "@hourly")
		return "0 * * * *";
	fail(text, fmt::format("unknown shorthand \"{}\"", shown(text)),
	     "The shorthands are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly.");
}

// is_leap: the Gregorian rule (2000 is a leap year, 2100 is not).
bool
is_leap(std::int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// days_in_month: 28 to 31.
int
days_in_month(std::int64_t year, int month)
{
	static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap(year) ? 29 : kDays[month - 1];
}

// days_from_civil: days since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's algorithm, exact for any int64 year we can reach).
std::int64_t
days_from_civil(std::int64_t y, int m, int d)
{
	y -= m <= 2;
	const std::int64_t era = floor_div(y, 400);
	const std::int64_t yoe = y - era * 400;
	const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct CivilDate {
	std::int64_t year;
	int month;
	int day;
};

// civil_from_days: the inverse of days_from_civil.
CivilDate
civil_from_days(std::int64_t z)
{
	z += 719468;
	const std::int64_t era = floor_div(z, 146097);
	const std::int64_t doe = z - era * 146097;
	const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const std::int64_t mp = (5 * doy + 2) / 153;
	const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
	const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
	return {yoe + era * 400 + (month <= 2), month, day};
}

// offset_at: the zone's offset at an instant, clamped (see kMaxOffset).
std::int64_t
offset_at(const TimeZone &tz, std::int64_t instant)
{
	return std::clamp<std::int64_t>(tz.utc_offset(instant), -kMaxOffset, kMaxOffset);
}

// transition_in: the first instant in (lo, hi] whose offset is not lo_offset,
// given that hi's is not; a binary search, so a couple of dozen zone look-ups.
std::int64_t
transition_in(const TimeZone &tz, std::int64_t lo, std::int64_t hi, std::int64_t lo_offset)
{
	while (hi - lo > 1) {
		std::int64_t mid = lo + (hi - lo) / 2;
		if (offset_at(tz, mid) == lo_offset)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

// wall_reached_by: the latest wall-clock time the zone's clock has shown at or
// before instant. Just after a fall-back that is the time shown before the
// clock was set back, not the time it shows now: those wall-clock times have
// had their turn already.
std::int64_t
wall_reached_by(const TimeZone &tz, std::int64_t instant)
{
	std::int64_t now_offset = offset_at(tz, instant);
	std::int64_t wall = instant + now_offset;
	std::int64_t earlier = instant - kTransitionWindow;
	std::int64_t earlier_offset = offset_at(tz, earlier);
	if (earlier_offset > now_offset) {
		std::int64_t t = transition_in(tz, earlier, instant, earlier_offset);
		wall = std::max(wall, t - 1 + earlier_offset);
	}
	return wall;
}

// instant_reaching: the first instant at which the zone's clock shows wall, or
// has jumped past it. A time in an overlap maps to its first occurrence; one in
// a gap maps to the end of the gap (the transition itself).
std::int64_t
instant_reaching(const TimeZone &tz, std::int64_t wall)
{
	std::int64_t before = wall - kTransitionWindow;
	std::int64_t after = wall + kTransitionWindow;
	std::int64_t before_offset = offset_at(tz, before);
	std::int64_t after_offset = offset_at(tz, after);
	if (before_offset == after_offset)
		return wall - before_offset;
	std::int64_t t = transition_in(tz, before, after, before_offset);
	if (wall - before_offset < t)
		return wall - before_offset;         // shown before the transition (first pass of an overlap too)
	return std::max(t, wall - after_offset); // in the gap: t; after it: the new offset
}

} // namespace

// parse: trims, expands a shorthand, splits the fields and parses each; the
// first problem found is the error.
CronExpr
CronExpr::parse(std::string_view raw)
{
	std::string_view text = trim(raw);
	if (text.empty())
		fail(text, "the expression is empty", kFieldsHint);

	std::string_view body = text.front() == '@' ? expand_shorthand(text) : text;

	std::string_view fields[7];
	int count = 0;
	for (std::size_t i = 0; i < body.size();) {
		if (is_space(body[i])) {
			i++;
			continue;
		}
		std::size_t start = i;
		while (i < body.size() && !is_space(body[i]))
			i++;
		if (count < 7)
			fields[count] = body.substr(start, i - start);
		count++;
	}
	if (count != 5 && count != 6)
		fail(text, fmt::format("expected 5 or 6 fields, found {}", count), kFieldsHint);

	CronExpr expr;
	expr.text_ = std::string(text);
	expr.has_seconds_ = count == 6;
	int at = 0;
	expr.seconds_ = expr.has_seconds_ ? parse_field(text, kSecondField, fields[at++]).mask : bit(0);
	expr.minutes_ = parse_field(text, kMinuteField, fields[at++]).mask;
	expr.hours_ = parse_field(text, kHourField, fields[at++]).mask;
	ParsedField days = parse_field(text, kDayField, fields[at++]);
	expr.months_ = parse_field(text, kMonthField, fields[at++]).mask;
	ParsedField weekdays = parse_field(text, kWeekdayField, fields[at++]);
	expr.days_ = days.mask;
	expr.last_day_ = days.last;
	expr.days_star_ = days.star;
	expr.weekdays_ = weekdays.mask;
	expr.weekdays_star_ = weekdays.star;
	expr.can_fire_ = expr.some_date_matches();
	return expr;
}

// next_day: the month's matching days as one mask, so a month costs the same
// whatever the fields. The weekdays repeat every 7 days: the days of the month
// on a named weekday are a 7-bit pattern copied five times.
int
CronExpr::next_day(std::int64_t year, int month, int day) const
{
	int last = days_in_month(year, month);
	if (day > last)
		return -1;
	std::int64_t first = days_from_civil(year, month, 1) + 4; // 1970-01-01 was a Thursday
	int first_weekday = static_cast<int>(first - floor_div(first, 7) * 7);
	std::uint64_t week = 0; // bit k: day k + 1 of the month is on a named weekday
	for (int k = 0; k < 7; k++)
		week |= ((weekdays_ >> ((first_weekday + k) % 7)) & 1) << k;
	std::uint64_t in_month = (std::uint64_t{2} << last) - 2; // days 1..last
	std::uint64_t dow = (week | week << 7 | week << 14 | week << 21 | week << 28) << 1;
	std::uint64_t dom = days_ | (last_day_ ? bit(last) : 0);
	// Vixie cron: either day field left open means both must match; both
	// restricted means either may.
	std::uint64_t match = (days_star_ || weekdays_star_) ? (dom & dow) : (dom | dow);
	return next_bit(match & in_month, day);
}

// some_date_matches: in a 400-year cycle every day of a month that exists at
// all falls on every weekday (29 February too: 2004 is a Sunday, 2016 a Monday,
// 2000 a Tuesday...), and so does the last day of every month. So when the day
// fields are ORed, a weekday always matches; when ANDed, a named day must exist
// in a named month. The unit tests check this against a walk through a cycle.
bool
CronExpr::some_date_matches() const
{
	if (!days_star_ && !weekdays_star_)
		return true;
	for (int month = 1; month <= 12; month++) {
		if (!((months_ >> month) & 1))
			continue;
		int longest = month == 2 ? 29 : days_in_month(2001, month);
		if (last_day_ || (days_ & ((std::uint64_t{2} << longest) - 1)) != 0)
			return true;
	}
	return false;
}

// next_wall_after: field by field from the largest; a field with no match
// left carries into the next larger one and resets the smaller ones, so each
// pass of the loop skips a whole month, day, hour or minute.
std::optional<std::int64_t>
CronExpr::next_wall_after(std::int64_t wall) const
{
	if (!can_fire_)
		return std::nullopt;
	const std::int64_t start = wall + 1;
	const std::int64_t start_day = floor_div(start, kSecondsPerDay);
	const int start_second = static_cast<int>(start - start_day * kSecondsPerDay);
	CivilDate date = civil_from_days(start_day);
	std::int64_t year = date.year;
	int month = date.month, day = date.day;
	int hour = start_second / 3600, minute = start_second / 60 % 60, second = start_second % 60;
	const std::int64_t last_year = year + kHorizonYears;

	for (;;) {
		if (month > 12) {
			year++;
			month = 1;
			day = 1;
			hour = minute = second = 0;
		}
		if (year > last_year)
			return std::nullopt;
		int m = next_bit(months_, month);
		if (m < 0) {
			month = 13;
			continue;
		}
		if (m != month) {
			month = m;
			day = 1;
			hour = minute = second = 0;
		}
		int d = next_day(year, month, day);
		if (d < 0) {
			month++;
			day = 1;
			hour = minute = second = 0;
			continue;
		}
		if (d != day) {
			day = d;
			hour = minute = second = 0;
		}
		int h = next_bit(hours_, hour);
		if (h < 0) {
			day++;
			hour = minute = second = 0;
			continue;
		}
		if (h != hour) {
			hour = h;
			minute = second = 0;
		}
		int mi = next_bit(minutes_, minute);
		if (mi < 0) {
			hour++;
			minute = second = 0;
			continue;
		}
		if (mi != minute) {
			minute = mi;
			second = 0;
		}
		int s = next_bit(seconds_, second);
		if (s < 0) {
			minute++;
			second = 0;
			continue;
		}
		return days_from_civil(year, month, day) * kSecondsPerDay + hour * 3600 + minute * 60 + s;
	}
}

// next_after: fire instants are whole seconds, so the first candidate is the
// second after `after`. The wall-clock times the clock has already shown by
// then have had their turn; the first matching one after them fires at the
// instant the clock first reaches it. Both mappings only ever move forward, so
// the first match gives the first fire time.
std::optional<Micros>
CronExpr::next_after(Micros after, const TimeZone &tz) const
{
	const std::int64_t first = floor_div(after, kMicrosPerSecond) + 1;
	if (first > kMaxSeconds)
		return std::nullopt;
	std::int64_t wall = wall_reached_by(tz, first - 1);
	// One pass suffices for any zone that keeps kTransitionWindow's promise; the
	// bound keeps a zone that does not from looping.
	for (int attempt = 0; attempt < 4; attempt++) {
		std::optional<std::int64_t> next = next_wall_after(wall);
		if (!next)
			return std::nullopt;
		std::int64_t instant = instant_reaching(tz, *next);
		if (instant >= first)
			return instant > kMaxSeconds ? std::nullopt : std::optional<Micros>(instant * kMicrosPerSecond);
		wall = *next;
	}
	return std::nullopt;
}

} // namespace foreman::core
