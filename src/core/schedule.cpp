// schedule.cpp: schedule kinds, fire times and defaults.
#include "core/pure.hpp"

#include "core/schedule.hpp"
#include "core/ascii.hpp"
#include "core/error.hpp"
#include "core/interval_text.hpp"

#include <fmt/format.h>

namespace foreman::core {

namespace {

const char *const kScheduleHint = "Give an interval such as '10 seconds', a cron expression such as "
                                  "'*/5 * * * *', '@hourly', '@once' or '@reboot'.";

} // namespace

const char *
schedule_kind_name(ScheduleKind kind)
{
	switch (kind) {
	case ScheduleKind::Interval:
		return "interval";
	case ScheduleKind::Cron:
		return "cron";
	case ScheduleKind::Once:
		return "once";
	case ScheduleKind::Reboot:
		return "reboot";
	}
	return "interval";
}

// parse_schedule_text: keywords first, then the interval form, then cron by
// shape (doc/cron.md, "Interval or cron").
std::optional<Schedule>
parse_schedule_text(std::string_view raw)
{
	std::string_view text = ascii::trim(raw);
	if (text.empty())
		throw Error(sqlstate::kInvalidParameterValue, "schedule must not be empty", {},
		            "Give an interval such as '10 seconds' or a cron expression such as '*/5 * * * *'.");

	if (text.front() == '@') {
		std::string word = ascii::lower(text);
		if (word == "@once")
			return Schedule{ScheduleKind::Once, 0, std::nullopt};
		if (word == "@reboot")
			return Schedule{ScheduleKind::Reboot, 0, std::nullopt};
		return Schedule{ScheduleKind::Cron, 0, CronExpr::parse(text)};
	}

	if (is_interval_form(text))
		return std::nullopt;
	std::size_t fields = ascii::words(text).size();
	if (fields == 5 || fields == 6 || text.find_first_of("*?,/") != std::string_view::npos)
		return Schedule{ScheduleKind::Cron, 0, CronExpr::parse(text)};
	throw Error(sqlstate::kInvalidParameterValue, fmt::format("invalid schedule \"{}\"", ascii::shown(text)),
	            "It is neither an interval nor a cron expression.", kScheduleHint);
}

void
require_can_fire(const Schedule &schedule)
{
	if (schedule.kind != ScheduleKind::Cron || schedule.cron->can_fire())
		return;
	throw Error(sqlstate::kInvalidParameterValue,
	            fmt::format("cron expression \"{}\" never fires", ascii::shown(schedule.cron->text())),
	            "No date in any year matches both its day-of-month and its month field.",
	            "February has 28 or 29 days; April, June, September and November have 30. Write L for the "
	            "last day of a month, as in '0 0 L 2 *'.");
}

Schedule
interval_schedule(Micros period)
{
	if (period <= 0)
		throw Error(sqlstate::kInvalidParameterValue, "schedule interval must be positive", {},
		            "Give an interval such as '10 seconds'.");
	if (period < kMinPeriod)
		throw Error(sqlstate::kInvalidParameterValue,
		            fmt::format("schedule interval must be at least 100 milliseconds"),
		            fmt::format("The interval given is {} microseconds.", period));
	return Schedule{ScheduleKind::Interval, period, std::nullopt};
}

std::optional<Micros>
next_fire(const Schedule &schedule, const Anchor &anchor, Micros after, const TimeZone &tz)
{
	std::optional<Micros> next;
	switch (schedule.kind) {
	case ScheduleKind::Interval: {
		Micros base = anchor.anchor + anchor.phase;
		if (after < base)
			next = base;
		else
			next = base + ((after - base) / schedule.period + 1) * schedule.period;
		break;
	}
	case ScheduleKind::Cron: {
		// Fire times of the expression shifted by the phase, none before anchor.
		Micros from = after - anchor.phase;
		if (from < anchor.anchor - 1)
			from = anchor.anchor - 1;
		auto t = schedule.cron->next_after(from, tz);
		if (t)
			next = *t + anchor.phase;
		break;
	}
	case ScheduleKind::Once: {
		Micros at = anchor.anchor + anchor.phase;
		if (at > after)
			next = at;
		break;
	}
	case ScheduleKind::Reboot:
		break;
	}
	if (next && anchor.end_at && *next > *anchor.end_at)
		return std::nullopt;
	return next;
}

Micros
draw_phase(Micros jitter, std::uint64_t seed)
{
	if (jitter <= 0)
		return 0;
	return static_cast<Micros>(seed % static_cast<std::uint64_t>(jitter));
}

Micros
typical_period(const Schedule &schedule, const TimeZone &tz)
{
	switch (schedule.kind) {
	case ScheduleKind::Interval:
		return schedule.period;
	case ScheduleKind::Cron: {
		// 2001-01-01 00:00:00 UTC, a Monday; two consecutive fire times after it.
		const Micros reference = 978307200LL * kMicrosPerSecond;
		auto a = schedule.cron->next_after(reference, tz);
		if (!a)
			return 0;
		auto b = schedule.cron->next_after(*a, tz);
		return b ? *b - *a : 0;
	}
	case ScheduleKind::Once:
	case ScheduleKind::Reboot:
		return 0;
	}
	return 0;
}

Micros
shortest_period(const Schedule &schedule, const TimeZone &tz, int samples)
{
	if (schedule.kind != ScheduleKind::Cron)
		return typical_period(schedule, tz);
	const Micros reference = 978307200LL * kMicrosPerSecond; // 2001-01-01, as typical_period
	auto previous = schedule.cron->next_after(reference, tz);
	Micros shortest = 0;
	for (int i = 0; previous && i < samples; i++) {
		auto next = schedule.cron->next_after(*previous, tz);
		if (!next)
			break;
		if (shortest == 0 || *next - *previous < shortest)
			shortest = *next - *previous;
		previous = next;
	}
	return shortest;
}

const char *
default_tier(const Schedule &schedule, const TimeZone &tz)
{
	Micros period = typical_period(schedule, tz);
	return (period > 0 && period <= 60 * kMicrosPerSecond) ? "fast" : "slow";
}

} // namespace foreman::core
