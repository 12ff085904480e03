// time.hpp: how the pure core speaks of time.
#pragma once

#include <cstdint>

namespace foreman::core {

// Microseconds since 1970-01-01 00:00:00 UTC. src/pg converts to and from
// PostgreSQL's TimestampTz (microseconds since 2000-01-01).
using Micros = std::int64_t;

inline constexpr Micros kMicrosPerMilli = 1000;
inline constexpr Micros kMicrosPerSecond = 1000 * kMicrosPerMilli;
inline constexpr Micros kMicrosPerMinute = 60 * kMicrosPerSecond;
inline constexpr Micros kMicrosPerHour = 60 * kMicrosPerMinute;
inline constexpr Micros kMicrosPerDay = 24 * kMicrosPerHour;

// A time zone as the core needs it: the UTC offset in force at an instant.
// src/pg implements it over PostgreSQL's own tz database (pg_tzset); unit tests
// implement it over the C library's.
class TimeZone {
public:
	virtual ~TimeZone() = default;
	// Seconds east of UTC in force at the instant utc_seconds (seconds since the epoch).
	virtual std::int64_t utc_offset(std::int64_t utc_seconds) const = 0;
};

// UTC itself, for schedules that need no zone.
class UtcZone final : public TimeZone {
public:
	std::int64_t utc_offset(std::int64_t) const override { return 0; }
};

} // namespace foreman::core
