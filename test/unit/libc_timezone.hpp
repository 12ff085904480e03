// libc_timezone.hpp: a core::TimeZone over the C library's tz database, for tests.
//
// libstdc++ 12 has no std::chrono tzdb, so the zone is selected with
// setenv("TZ") + tzset() and read with localtime_r. That is process-global
// state: fine for the single-threaded unit tests, not for anything else.
#pragma once

#include "core/time.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace foreman::test {

class LibcTimeZone final : public core::TimeZone {
public:
	// LibcTimeZone: name is an IANA zone such as "Europe/Berlin".
	explicit LibcTimeZone(std::string name) : name_(std::move(name)) {}

	// utc_offset: tm_gmtoff of localtime_r, after making this zone current.
	std::int64_t utc_offset(std::int64_t utc_seconds) const override
	{
		activate();
		std::time_t t = static_cast<std::time_t>(utc_seconds);
		std::tm tm{};
		if (!localtime_r(&t, &tm))
			return 0;
		return tm.tm_gmtoff;
	}

	// abbreviation: the zone's abbreviation at an instant ("CET", "EDT"), which
	// shows whether the tz database was found at all.
	std::string abbreviation(std::int64_t utc_seconds) const
	{
		activate();
		std::time_t t = static_cast<std::time_t>(utc_seconds);
		std::tm tm{};
		if (!localtime_r(&t, &tm) || !tm.tm_zone)
			return "";
		return tm.tm_zone;
	}

	const std::string &name() const { return name_; }

private:
	// activate: point TZ at this zone unless it already is; tzset() is needed
	// because localtime_r need not reread TZ.
	void activate() const
	{
		static std::string current;
		if (current == name_)
			return;
		setenv("TZ", name_.c_str(), 1);
		tzset();
		current = name_;
	}

	std::string name_;
};

} // namespace foreman::test
