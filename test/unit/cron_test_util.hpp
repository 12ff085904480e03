// cron_test_util.hpp: instants written as text, and shown as a zone's wall
// clock, for the cron tests.
#pragma once

#include "core/time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace foreman::test {

// floor_div: division rounding towards minus infinity.
inline std::int64_t
floor_div(std::int64_t a, std::int64_t b)
{
	std::int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// instant: "YYYY-MM-DD HH:MM:SS[.ffffff] [+HHMM]" (offset default +0000) as Micros.
inline core::Micros
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
	return (days * 86400 + h * 3600 + mi * 60 + s - offset) * core::kMicrosPerSecond + frac;
}

// wall: an instant as the zone's wall clock shows it, with the offset unless
// the zone is UTC.
inline std::string
wall(core::Micros t, const core::TimeZone &tz)
{
	std::int64_t secs = floor_div(t, core::kMicrosPerSecond);
	std::int64_t micros = t - secs * core::kMicrosPerSecond;
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
	if (dynamic_cast<const core::UtcZone *>(&tz))
		return out;
	std::snprintf(buf, sizeof buf, " %c%02d%02d", offset < 0 ? '-' : '+', static_cast<int>(off / 3600),
	              static_cast<int>(off / 60 % 60));
	return out + buf;
}

} // namespace foreman::test
