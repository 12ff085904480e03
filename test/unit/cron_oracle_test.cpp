// cron_oracle_test.cpp: a long-span oracle for cron fire times.
//
// The randomized test of cron_test.cpp favours expressions that fire often
// and looks a few years ahead, so it could not see that the search stopped
// after ten years ('0 0 29 2 */7' fired in 2032 and never again). This oracle
// generates expressions whose fire times are rare (29 February on a weekday,
// late days of chosen months, day-of-week steps that AND with the
// day-of-month) or that never fire, and walks day by day through a table of
// calendar facts (std::chrono, not the code under test) across more than a
// whole 400-year Gregorian cycle: in UTC, and in zones with DST whose rules
// are computed by arithmetic so that they hold in any century (checked
// against the tz database where it has data).
//
// `make unit` runs 2000 cases of each kind in a fraction of a second. For a longer
// run: FOREMAN_CRON_ORACLE_CASES=100000 (and FOREMAN_CRON_ORACLE_SEED=n for
// other expressions) build/cmake/unit_tests --gtest_filter='CronOracle.*'
#include "core/cron.hpp"
#include "core/error.hpp"
#include "core/schedule.hpp"
#include "cron_model.hpp"
#include "cron_test_util.hpp"
#include "libc_timezone.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace foreman::core;
using namespace foreman::test;

namespace {

constexpr std::int64_t kDay = 86400;
// Days in a Gregorian cycle: the calendar, weekdays included, repeats after it.
constexpr std::int64_t kCycleDays = 146097;

// env_number: an integer from the environment, or fallback.
long
env_number(const char *name, long fallback)
{
	const char *value = std::getenv(name);
	return value && *value ? std::strtol(value, nullptr, 10) : fallback;
}

// days_of: days since 1970-01-01 of a civil date.
std::int64_t
days_of(int y, unsigned m, unsigned d)
{
	using namespace std::chrono;
	return sys_days(year(y) / month(m) / day(d)).time_since_epoch().count();
}

// ---------------------------------------------------------------------------
// Zones with DST by rule, valid in any year.

// RuleZone: a standard offset and a daylight offset, switched on two
// instants of every year that the rule computes from std::chrono's calendar.
class RuleZone final : public TimeZone {
public:
	enum class Rule {
		Eu,       // last Sunday of March to last Sunday of October, 01:00 UTC (Berlin: +1/+2)
		Us,       // second Sunday of March to first Sunday of November, 02:00 local (New York: -5/-4)
		LordHowe, // first Sunday of October to first Sunday of April, 02:00 local (+10:30/+11:00)
	};

	RuleZone(const char *name, Rule rule) : name_(name), rule_(rule) {}

	const char *name() const { return name_; }

	// utc_offset: daylight time between this year's start and end (the other
	// way round in the southern hemisphere).
	std::int64_t utc_offset(std::int64_t t) const override
	{
		using namespace std::chrono;
		int y = static_cast<int>(year_month_day(sys_days(days(floor_div(t, kDay)))).year());
		if (y != cached_year_) {
			cached_year_ = y;
			switches(y, &start_, &end_);
		}
		bool daylight = rule_ == Rule::LordHowe ? (t < end_ || t >= start_) : (t >= start_ && t < end_);
		return daylight ? daylight_offset() : standard_offset();
	}

private:
	std::int64_t standard_offset() const
	{
		return rule_ == Rule::Eu ? 3600 : rule_ == Rule::Us ? -5 * 3600 : 10 * 3600 + 1800;
	}
	std::int64_t daylight_offset() const
	{
		return rule_ == Rule::LordHowe ? 11 * 3600 : standard_offset() + 3600;
	}

	// switches: the instants (UTC seconds) at which daylight time starts and ends in year y.
	void switches(int y, std::int64_t *start, std::int64_t *end) const
	{
		using namespace std::chrono;
		auto on = [y](unsigned m, weekday_indexed wd) {
			return sys_days(year(y) / month(m) / wd).time_since_epoch().count() * kDay;
		};
		auto last_sunday = [y](unsigned m) {
			return sys_days(year(y) / month(m) / Sunday[last]).time_since_epoch().count() * kDay;
		};
		switch (rule_) {
		case Rule::Eu:
			*start = last_sunday(3) + 3600;
			*end = last_sunday(10) + 3600;
			break;
		case Rule::Us: // 02:00 EST is 07:00 UTC, 02:00 EDT is 06:00 UTC
			*start = on(3, Sunday[2]) + 7 * 3600;
			*end = on(11, Sunday[1]) + 6 * 3600;
			break;
		case Rule::LordHowe: // 02:00 at +10:30 and at +11:00, the day before in UTC
			*start = on(10, Sunday[1]) + 2 * 3600 - standard_offset();
			*end = on(4, Sunday[1]) + 2 * 3600 - daylight_offset();
			break;
		}
	}

	const char *name_;
	Rule rule_;
	mutable int cached_year_ = 0;
	mutable std::int64_t start_ = 0, end_ = 0;
};

const RuleZone kEu("rule Europe/Berlin", RuleZone::Rule::Eu);
const RuleZone kUs("rule America/New_York", RuleZone::Rule::Us);
const RuleZone kLordHowe("rule Australia/Lord_Howe", RuleZone::Rule::LordHowe);

// ---------------------------------------------------------------------------
// Calendar facts, day by day, from 1899-12-01 to 2799-12-31.

class DayTable {
public:
	DayTable() : first_(days_of(1899, 12, 1)), last_(days_of(2799, 12, 31))
	{
		for (std::int64_t d = first_; d <= last_; d++)
			facts_.push_back(facts(d));
	}

	std::int64_t first() const { return first_; }
	std::int64_t last() const { return last_; }

	// matches: the day rules of the model (Vixie cron's OR included) on day d.
	bool matches(const Model &m, std::int64_t d) const
	{
		const DayFacts &f = facts_[static_cast<std::size_t>(d - first_)];
		if (!m.month.values[f.month])
			return false;
		bool dom = m.dom.values[f.day] || (m.dom.last && f.day == f.last_day);
		bool dow = m.dow.values[f.weekday];
		return (m.dom.star || m.dow.star) ? (dom && dow) : (dom || dow);
	}

	// first_match: the first day in [from, until) the model matches.
	std::optional<std::int64_t> first_match(const Model &m, std::int64_t from, std::int64_t until) const
	{
		EXPECT_GE(from, first_);
		EXPECT_LE(until, last_ + 1);
		for (std::int64_t d = from; d < until; d++)
			if (matches(m, d))
				return d;
		return std::nullopt;
	}

private:
	std::int64_t first_, last_;
	std::vector<DayFacts> facts_;
};

const DayTable &
day_table()
{
	static const DayTable table;
	return table;
}

// ---------------------------------------------------------------------------
// Expressions with rare fire times.

const FieldShape kSecondShape{0, 59, 59, nullptr, 0, 0, false, false};
const FieldShape kMinuteShape{0, 59, 59, nullptr, 0, 0, false, false};
const FieldShape kHourShape{0, 23, 23, nullptr, 0, 0, false, false};
const FieldShape kDomShape{1, 31, 31, nullptr, 0, 0, true, false};
const FieldShape kMonthShape{1, 12, 12, kMonths, 12, 1, false, false};
const FieldShape kDowShape{0, 7, 6, kDays, 7, 0, false, true};

// put: one value into a field's text and model.
void
put(std::mt19937 &rng, const FieldShape &s, int v, ModelField &f, std::string &out)
{
	if (!out.empty())
		out += ",";
	out += value_text(rng, s, v);
	add(f, s, v, v, 1);
}

// put_star: '*' or '?' (the day fields), or '*/step'.
void
put_star(const FieldShape &s, int step, bool question, ModelField &f, std::string &out)
{
	out += question ? "?" : step == 1 ? "*" : "*/" + std::to_string(step);
	add(f, s, s.min, s.star_max, step);
}

// rare_dom: late days, L, '*/n' (which ANDs with the day-of-week), or open.
ModelField
rare_dom(std::mt19937 &rng, std::string &text)
{
	ModelField f;
	std::string out;
	int kind = pick(rng, 0, 9);
	if (kind <= 1)
		return generate_field(rng, kDomShape, 30, text);
	if (kind <= 5) {
		for (int i = pick(rng, 1, 3); i > 0; i--) {
			if (chance(rng, 20)) {
				out += out.empty() ? "L" : ",L";
				f.last = true;
			} else {
				put(rng, kDomShape, pick(rng, 28, 31), f, out);
			}
		}
	} else if (kind <= 7) {
		static const int kSteps[] = {7, 14, 28, 29, 30, 10};
		put_star(kDomShape, kSteps[pick(rng, 0, 5)], false, f, out);
	} else {
		put_star(kDomShape, 1, chance(rng, 50), f, out);
	}
	f.star = out[0] == '*' || out[0] == '?';
	text += out;
	return f;
}

// rare_month: February often, a few months, or any field.
ModelField
rare_month(std::mt19937 &rng, std::string &text)
{
	ModelField f;
	std::string out;
	int kind = pick(rng, 0, 9);
	if (kind <= 3)
		put(rng, kMonthShape, 2, f, out);
	else if (kind <= 7)
		for (int i = pick(rng, 1, 2); i > 0; i--)
			put(rng, kMonthShape, pick(rng, 1, 12), f, out);
	else
		return generate_field(rng, kMonthShape, 40, text);
	text += out;
	return f;
}

// rare_dow: '*/n' (a restricted set that still ANDs), one day, '?', or any field.
ModelField
rare_dow(std::mt19937 &rng, std::string &text)
{
	ModelField f;
	std::string out;
	int kind = pick(rng, 0, 9);
	if (kind <= 3)
		put_star(kDowShape, pick(rng, 2, 7), false, f, out);
	else if (kind <= 5)
		put(rng, kDowShape, pick(rng, 0, 7), f, out);
	else if (kind == 6)
		put_star(kDowShape, 1, true, f, out);
	else
		return generate_field(rng, kDowShape, 40, text);
	f.star = out[0] == '*' || out[0] == '?';
	text += out;
	return f;
}

// leap_day: 29 February on one or a few weekdays, the rarest dates there are.
void
leap_day(std::mt19937 &rng, Model &m)
{
	std::string dom, month, dow;
	put(rng, kDomShape, 29, m.dom, dom);
	if (chance(rng, 30))
		put(rng, kDomShape, pick(rng, 30, 31), m.dom, dom);
	put(rng, kMonthShape, 2, m.month, month);
	put_star(kDowShape, pick(rng, 4, 7), false, m.dow, dow);
	m.dow.star = true;
	m.text += dom + " " + month + " " + dow;
}

// generate_rare: a random valid expression whose fire times are rare, or
// that never fires; a fifth are 29 February on a few weekdays.
Model
generate_rare(std::mt19937 &rng)
{
	Model m;
	m.seconds = chance(rng, 20);
	if (m.seconds) {
		m.second = generate_field(rng, kSecondShape, 30, m.text);
		m.text += " ";
	} else {
		m.second.values[0] = true;
	}
	m.minute = generate_field(rng, kMinuteShape, 20, m.text);
	m.text += " ";
	m.hour = generate_field(rng, kHourShape, 30, m.text);
	m.text += " ";
	if (chance(rng, 20)) {
		leap_day(rng, m);
		return m;
	}
	m.dom = rare_dom(rng, m.text);
	m.text += " ";
	m.month = rare_month(rng, m.text);
	m.text += " ";
	m.dow = rare_dow(rng, m.text);
	return m;
}

// ---------------------------------------------------------------------------
// The walkers: day by day through the table, then second by second (UTC) or
// minute by minute (brute_zone, cron_model.hpp) within the matching days.

// expected_utc: the first `want` fire times (seconds) at or after `from`,
// looking one whole cycle ahead.
std::vector<std::int64_t>
expected_utc(const Model &m, std::int64_t from, std::size_t want)
{
	std::vector<std::int64_t> out;
	std::int64_t from_day = floor_div(from, kDay);
	for (std::int64_t day = from_day; out.size() < want;) {
		std::optional<std::int64_t> d = day_table().first_match(m, day, from_day + kCycleDays + 1);
		if (!d)
			break;
		for (int h = 0; h < 24 && out.size() < want; h++)
			for (int mi = 0; mi < 60 && m.hour.values[h] && out.size() < want; mi++)
				for (int s = 0; s < 60 && m.minute.values[mi] && out.size() < want; s++) {
					std::int64_t t = *d * kDay + h * 3600 + mi * 60 + s;
					if (m.second.values[s] && t >= from)
						out.push_back(t);
				}
		day = *d + 1;
	}
	return out;
}

struct ZoneExpectation {
	std::vector<std::int64_t> fires;
	std::int64_t end; // walked up to here (exclusive)
};

// expected_in_zone: the first `want` fire times at or after `from` in tz. The
// next matching wall-clock date D is found in the table; whatever fires for
// it fires within a day of its start (offsets are under 14 hours, gaps under
// a day), so brute_zone walks [D - 1 day, D + 2 days) minute by minute, and
// the search goes on from there.
ZoneExpectation
expected_in_zone(const Model &m, const TimeZone &tz, std::int64_t from, std::size_t want)
{
	ZoneExpectation out{{}, from};
	std::int64_t until = floor_div(from, kDay) + kCycleDays + 2;
	std::int64_t day = floor_div(from + tz.utc_offset(from), kDay) - 1;
	while (out.fires.size() < want) {
		std::optional<std::int64_t> d = day_table().first_match(m, day, until);
		if (!d) {
			out.end = std::max(out.end, until * kDay);
			break;
		}
		std::int64_t lo = std::max(out.end, (*d - 1) * kDay);
		std::int64_t hi = std::max(lo, (*d + 2) * kDay);
		for (std::int64_t t : brute_zone(m, tz, lo, hi, want - out.fires.size()))
			out.fires.push_back(t);
		out.end = hi;
		day = *d + 1;
	}
	return out;
}

// Oracle: the cases of one run, and how far apart the fire times it compared were.
struct Oracle {
	std::mt19937 rng{static_cast<std::mt19937::result_type>(env_number("FOREMAN_CRON_ORACLE_SEED", 1582))};
	long cases = env_number("FOREMAN_CRON_ORACLE_CASES", 2000);
	Comparison comparison;
	int never = 0;            // expressions that never fire
	int decades = 0;          // cases with a fire time more than 10 years after the one before
	std::int64_t longest = 0; // the longest wait seen, in days

	// random_after: an instant between 1900 and 2300.
	Micros random_after()
	{
		std::int64_t lo = days_of(1900, 1, 1) * kDay, hi = days_of(2300, 1, 1) * kDay;
		std::int64_t secs = std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
		if (chance(rng, 30))
			secs = floor_div(secs, kDay) * kDay - (chance(rng, 50) ? 1 : 0);
		return secs * kMicrosPerSecond + random_micros(rng);
	}

	// note_gaps: counts the fire times that follow their predecessor by decades.
	void note_gaps(std::int64_t from, const std::vector<std::int64_t> &fires)
	{
		std::int64_t previous = from;
		bool far = false;
		for (std::int64_t t : fires) {
			longest = std::max(longest, (t - previous) / kDay);
			far = far || t - previous > 10 * 366 * kDay;
			previous = t;
		}
		decades += far;
	}
};

} // namespace

TEST(CronOracle, RuleZonesAreTheTzDatabasesRules)
{
	// The oracle's zones, against the C library's tz database where it has
	// data: the same offset every 3 hours, and the same transitions.
	struct Pair {
		const RuleZone &rule;
		LibcTimeZone libc;
		int from_year;
	};
	const Pair pairs[] = {{kEu, LibcTimeZone("Europe/Berlin"), 1997},
	                      {kUs, LibcTimeZone("America/New_York"), 2008},
	                      {kLordHowe, LibcTimeZone("Australia/Lord_Howe"), 2009}};
	for (const Pair &p : pairs) {
		int mismatches = 0;
		for (std::int64_t t = days_of(p.from_year, 1, 1) * kDay; t < days_of(2037, 1, 1) * kDay;
		     t += 3 * 3600)
			mismatches += p.rule.utc_offset(t) != p.libc.utc_offset(t);
		EXPECT_EQ(mismatches, 0) << p.rule.name();
		for (std::int64_t t : transitions(p.libc)) {
			if (t < days_of(p.from_year, 1, 1) * kDay)
				continue;
			EXPECT_EQ(p.rule.utc_offset(t), p.libc.utc_offset(t)) << p.rule.name() << " at " << t;
			EXPECT_EQ(p.rule.utc_offset(t - 1), p.libc.utc_offset(t - 1)) << p.rule.name() << " at " << t;
		}
	}
	// The walkers' preconditions: whole minutes, less than three hours.
	EXPECT_EQ(kLordHowe.utc_offset(days_of(2030, 1, 1) * kDay) -
	              kLordHowe.utc_offset(days_of(2030, 7, 1) * kDay),
	          1800);
}

TEST(CronOracle, CanFireIsAWalkThroughAWholeCycle)
{
	// can_fire() decides without searching; the walk looks at every day of a
	// 400-year cycle.
	Oracle o;
	const UtcZone utc;
	const std::int64_t from = days_of(2000, 3, 1);
	int firing = 0, never = 0;
	for (long i = 0; i < o.cases * 5; i++) {
		Model m = generate_rare(o.rng);
		CronExpr e = CronExpr::parse(m.text);
		bool walked = day_table().first_match(m, from, from + kCycleDays).has_value();
		EXPECT_EQ(e.can_fire(), walked) << m.text;
		(walked ? firing : never)++;
		if (!walked) {
			EXPECT_EQ(e.next_after(0, utc), std::nullopt) << m.text;
			EXPECT_THROW(require_can_fire(*parse_schedule_text(m.text)), Error) << m.text;
		}
	}
	EXPECT_GT(never, o.cases / 20) << "the generator should make expressions that never fire";
	EXPECT_GT(firing, o.cases) << "and ones that do";
}

TEST(CronOracle, RareExpressionsAgreeWithADayByDayWalkInUtc)
{
	Oracle o;
	const UtcZone utc;
	for (long i = 0; i < o.cases; i++) {
		Model m = generate_rare(o.rng);
		CronExpr e = CronExpr::parse(m.text);
		Micros after = o.random_after();
		std::int64_t from = floor_div(after, kMicrosPerSecond) + 1;
		std::vector<std::int64_t> fires = expected_utc(m, from, 3);
		o.note_gaps(from, fires);
		o.never += fires.empty();
		o.comparison.check(m, e, utc, "UTC", after, fires,
		                   floor_div(from, kDay) * kDay + (kCycleDays + 1) * kDay, 3);
	}
	EXPECT_EQ(o.comparison.failures, 0);
	// The oracle means something only if it waited decades, and not only for nothing.
	EXPECT_GT(o.decades, o.cases / 20) << "cases with fire times more than 10 years apart";
	EXPECT_GE(o.longest, 20 * 365) << "the longest wait between fire times, in days";
	EXPECT_GT(o.comparison.fires, o.cases) << "fire times compared";
	std::printf(
	    "UTC oracle: %ld cases, %d fire times, %d with decades between fire times (longest %lld days), "
	    "%d never fire\n",
	    o.cases, o.comparison.fires, o.decades, static_cast<long long>(o.longest), o.never);
}

TEST(CronOracle, RareExpressionsAgreeWithAMinuteByMinuteWalkInZonesWithDst)
{
	Oracle o;
	const RuleZone *zones[] = {&kEu, &kUs, &kLordHowe};
	for (long i = 0; i < o.cases; i++) {
		Model m = generate_rare(o.rng);
		CronExpr e = CronExpr::parse(m.text);
		const RuleZone &tz = *zones[i % 3];
		Micros after = o.random_after();
		std::int64_t from = floor_div(after, kMicrosPerSecond) + 1;
		ZoneExpectation expected = expected_in_zone(m, tz, from, 2);
		o.note_gaps(from, expected.fires);
		o.comparison.check(m, e, tz, tz.name(), after, expected.fires, expected.end, 2);
	}
	EXPECT_EQ(o.comparison.failures, 0);
	EXPECT_GT(o.decades, o.cases / 20) << "cases with fire times more than 10 years apart";
	EXPECT_GT(o.comparison.fires, o.cases / 2) << "fire times compared";
	std::printf("zone oracle: %ld cases, %d fire times, %d with decades between fire times\n", o.cases,
	            o.comparison.fires, o.decades);
}

TEST(CronOracle, NearDstTransitionsInAnyCenturyTheyAgreeToo)
{
	// Starts within a day of a transition, in the years of the tz database and
	// centuries later; half of the expressions fire often (cron_model.hpp's
	// generator), so that the transition itself is where they fire.
	Oracle o;
	const RuleZone *zones[] = {&kEu, &kUs, &kLordHowe};
	std::uniform_int_distribution<int> years(1990, 2300);
	for (long i = 0; i < o.cases; i++) {
		const RuleZone &tz = *zones[i % 3];
		Model m = i % 2 ? generate(o.rng) : generate_rare(o.rng);
		CronExpr e = CronExpr::parse(m.text);
		// A transition of a random year, found by bisection on tz itself.
		std::int64_t lo = days_of(years(o.rng), 1, 1) * kDay, hi = lo + 200 * kDay;
		std::int64_t base = tz.utc_offset(lo);
		while (hi - lo > 1) {
			std::int64_t mid = lo + (hi - lo) / 2;
			(tz.utc_offset(mid) == base ? lo : hi) = mid;
		}
		Micros after =
		    (hi + pick(o.rng, -static_cast<int>(kDay), 3 * 3600)) * kMicrosPerSecond + random_micros(o.rng);
		std::int64_t from = floor_div(after, kMicrosPerSecond) + 1;
		ZoneExpectation expected = expected_in_zone(m, tz, from, 3);
		o.comparison.check(m, e, tz, tz.name(), after, expected.fires, expected.end, 3);
	}
	EXPECT_EQ(o.comparison.failures, 0);
	EXPECT_GT(o.comparison.fires, o.cases) << "fire times compared";
}
