// cron_model.hpp: random valid cron expressions with the values they stand
// for, and brute-force walkers that find their fire times by stepping through
// time, for the randomized cron tests (cron_test.cpp, cron_oracle_test.cpp).
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
#pragma once

#include "core/cron.hpp"
#include "cron_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace foreman::test {

using core::CronExpr;
using core::kMicrosPerSecond;
using core::Micros;
using core::TimeZone;

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

inline const char *const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
inline const char *const kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// pick: uniform in [lo, hi].
inline int
pick(std::mt19937 &rng, int lo, int hi)
{
	return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// chance: true with probability percent/100.
inline bool
chance(std::mt19937 &rng, int percent)
{
	return pick(rng, 0, 99) < percent;
}

// value_text: a value written as a number or, sometimes, as a name in any case.
inline std::string
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
inline void
add(ModelField &f, const FieldShape &s, int lo, int hi, int step)
{
	for (int v = lo; v <= hi; v += step)
		f.values[s.is_dow && v == 7 ? 0 : v] = true;
}

// small_step: steps, mostly small so that expressions fire often.
inline int
small_step(std::mt19937 &rng, const FieldShape &s)
{
	int span = s.star_max - s.min + 1;
	return chance(rng, 80) ? pick(rng, 1, std::min(span, 6)) : pick(rng, 1, span);
}

// generate_field: random text for one field and the values it stands for;
// star_percent is how often the field is left open.
inline ModelField
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
inline Model
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
inline DayFacts
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
inline bool
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
inline std::vector<std::int64_t>
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
inline std::vector<std::int64_t>
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
inline std::vector<std::int64_t>
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
inline Micros
random_micros(std::mt19937 &rng)
{
	int kind = pick(rng, 0, 3);
	return kind == 0 ? 0 : kind == 1 ? kMicrosPerSecond - 1 : pick(rng, 0, 999999);
}

} // namespace foreman::test
