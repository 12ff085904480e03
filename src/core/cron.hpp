// cron.hpp: cron expressions and their next fire time.
//
// Five fields (minute hour day-of-month month day-of-week), or six with seconds
// first; ranges, lists, steps, month and day names, L (last day of the month),
// and the @yearly @monthly @weekly @daily @hourly shorthands. Evaluated in a
// time zone: a wall-clock time skipped by a DST gap fires once at the first
// valid instant after the gap; one repeated by a DST overlap fires once, at its
// first occurrence.
#pragma once

#include "core/time.hpp"

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

namespace foreman::core {

class CronExpr {
public:
	// Parses text; throws core::Error (SQLSTATE 22023) naming the bad field.
	static CronExpr parse(std::string_view text);

	// The first fire instant strictly after `after`, or nullopt when there is
	// none within the search horizon (e.g. 30 February).
	std::optional<Micros> next_after(Micros after, const TimeZone &tz) const;

	// True when a seconds field was given.
	bool has_seconds() const { return has_seconds_; }

	// The expression as parsed, for display.
	const std::string &text() const { return text_; }

private:
	CronExpr() = default;

	std::string text_;
	bool has_seconds_ = false;
	std::bitset<60> seconds_;
	std::bitset<60> minutes_;
	std::bitset<24> hours_;
	std::bitset<32> days_;   // 1..31
	std::bitset<13> months_; // 1..12
	std::bitset<8> weekdays_; // 0..6, Sunday = 0 (7 is folded into 0)
	bool last_day_ = false;   // L in the day-of-month field
	bool days_star_ = false;  // day-of-month field was '*' (cron's OR rule with day-of-week)
	bool weekdays_star_ = false;
};

} // namespace foreman::core
