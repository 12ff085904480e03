// cron.hpp: cron expressions and their next fire time.
//
// Five fields (minute hour day-of-month month day-of-week), or six with seconds
// first; ranges, lists, steps, month and day names, L (last day of the month),
// and the @yearly @monthly @weekly @daily @hourly shorthands. Evaluated in a
// time zone: a wall-clock time skipped by a DST gap fires once at the first
// valid instant after the gap; one repeated by a DST overlap fires once, at its
// first occurrence. doc/cron.md spells out every rule.
#pragma once

#include "core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace foreman::core {

class CronExpr {
public:
	// Parses text; throws core::Error (SQLSTATE 22023) naming the bad field.
	static CronExpr parse(std::string_view text);

	// The first fire instant strictly after `after`, or nullopt when there is
	// none: the expression never fires (30 February), or the next fire time
	// would not fit in Micros. The search covers a whole 400-year Gregorian
	// cycle, so an expression that fires at all is always found.
	std::optional<Micros> next_after(Micros after, const TimeZone &tz) const;

	// False when no date matches the day and month fields in any year
	// (30 February, 31 April): such an expression never fires, in any zone.
	bool can_fire() const { return can_fire_; }

	// True when a seconds field was given.
	bool has_seconds() const { return has_seconds_; }

	// The expression as parsed, for display.
	const std::string &text() const { return text_; }

private:
	CronExpr() = default;

	// The first wall-clock time matched by the fields strictly after `wall`, or
	// nullopt past the horizon. Wall-clock times are local seconds since
	// 1970-01-01 00:00:00, counted as if the zone had no offset.
	std::optional<std::int64_t> next_wall_after(std::int64_t wall) const;

	// The first day >= day of year/month that the day fields match, or -1.
	int next_day(std::int64_t year, int month, int day) const;

	// Whether some date of the 400-year cycle matches (see can_fire()).
	bool some_date_matches() const;

	std::string text_;
	bool has_seconds_ = false;
	// Bit n set: value n matches. Day-of-week 7 is folded into 0 (Sunday).
	std::uint64_t seconds_ = 0;  // 0..59 (just 0 without a seconds field)
	std::uint64_t minutes_ = 0;  // 0..59
	std::uint64_t hours_ = 0;    // 0..23
	std::uint64_t days_ = 0;     // 1..31
	std::uint64_t months_ = 0;   // 1..12
	std::uint64_t weekdays_ = 0; // 0..6, Sunday = 0
	bool last_day_ = false;      // L in the day-of-month field
	// The day field began with '*' or '?': Vixie cron's rule then ANDs the two
	// day fields; when both are restricted a day matches if either does.
	bool days_star_ = false;
	bool weekdays_star_ = false;
	bool can_fire_ = true;
};

} // namespace foreman::core
