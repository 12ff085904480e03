// schedule.hpp: what a job's schedule is, and when it fires next.
//
// The SQL layer parses arguments and stores results; every piece of schedule
// arithmetic lives here, in pure C++, unit-tested and fuzzed in isolation.
#pragma once

#include "core/cron.hpp"
#include "core/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace foreman::core {

enum class ScheduleKind { Interval, Cron, Once, Reboot };

// Spelled as foreman.job.schedule_kind stores it.
const char *schedule_kind_name(ScheduleKind kind);

// The shortest interval a schedule may have: 100 ms. Below it a tier would
// spend its time on bookkeeping rather than work.
inline constexpr Micros kMinPeriod = 100 * kMicrosPerMilli;

struct Schedule {
	ScheduleKind kind = ScheduleKind::Interval;
	Micros period = 0;            // Interval: the period, >= kMinPeriod
	std::optional<CronExpr> cron; // Cron: the expression
};

// Reads schedule text (doc/cron.md, "Interval or cron"): '@once', '@reboot',
// the cron shorthands ('@hourly', ...) and, for text not in interval form
// (core/interval_text.hpp) with 5 or 6 fields, cron expressions. Returns
// nullopt for text in interval form: the caller reads it with PostgreSQL's
// interval_in. Throws core::Error (22023) for malformed cron, naming the field,
// and for text that is neither.
std::optional<Schedule> parse_schedule_text(std::string_view text);

// Throws core::Error (22023, with a hint) for a schedule that can never fire
// ('0 0 31 2 *'). Called where a schedule is given, not where a stored one is
// read again, so a job stored before this check still loads (and never fires).
void require_can_fire(const Schedule &schedule);

// An interval schedule; throws core::Error (22023) when period < kMinPeriod.
Schedule interval_schedule(Micros period);

// Where a job's fire times are anchored.
//  Interval: the fire times are anchor + phase + n * period, n >= 0. Anchored,
//            so a job does not drift by its own run time.
//  Cron:     fire times are the expression's, not before anchor; phase delays each.
//  Once:     fires at anchor + phase, once.
struct Anchor {
	Micros anchor = 0;
	Micros phase = 0; // jitter drawn once, in [0, jitter)
	std::optional<Micros> end_at;
};

// The first fire time strictly after `after`, or nullopt when the schedule
// will not fire again (@once already fired, end_at passed, @reboot).
std::optional<Micros> next_fire(const Schedule &schedule, const Anchor &anchor, Micros after,
                                const TimeZone &tz);

// A phase uniformly in [0, jitter), from a random seed; 0 when jitter <= 0.
Micros draw_phase(Micros jitter, std::uint64_t seed);

// The tier a job lands in when none is given: 'fast' for periods up to 60 s,
// 'slow' for longer ones.
const char *default_tier(const Schedule &schedule, const TimeZone &tz);

// The typical period of a schedule (for cron: the gap between two fire times
// from a fixed reference), used for defaults; 0 for one-shot schedules.
Micros typical_period(const Schedule &schedule, const TimeZone &tz);

// The shortest gap between two consecutive fire times, over the first
// `samples` fire times from a fixed reference (for cron: lists such as
// '0,1 * * * * *' fire twice a second apart however long their typical
// period); 0 for one-shot schedules. What per-role limits are checked on.
Micros shortest_period(const Schedule &schedule, const TimeZone &tz, int samples = 2048);

} // namespace foreman::core
