// schedule_pg.hpp: the core's schedule arithmetic, for PostgreSQL-side callers.
//
// PostgreSQL-side code holds a job's schedule as plain fields; these
// functions build the core's objects under cpp_guard and return plain values,
// so no C++ object outlives the call.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "datatype/timestamp.h"
#include "pgtime.h"
}

namespace foreman::pg {

// A job's schedule as foreman.job stores it.
struct JobSchedule {
	const char *schedule;      // the text the user gave
	const char *schedule_kind; // interval | cron | once | reboot
	int64 period_us;           // interval kind
	const char *time_zone;     // NULL: the server's timezone
	TimestampTz anchor_at;
	int64 phase_us;
	bool has_end_at;
	TimestampTz end_at;
};

// A schedule text as read by parse_schedule().
struct ParsedSchedule {
	const char *kind;        // interval | cron | once | reboot
	int64 period_us;         // interval kind
	const char *default_tier; // 'fast' for periods up to 60 s, else 'slow'
	int64 typical_period_us; // the gap between fire times (0: one-shot)
	int64 shortest_period_us; // the shortest gap between two fire times (0: one-shot)
};

// Reads schedule text: '@once', '@reboot', cron (5 or 6 fields, @hourly ...),
// or a PostgreSQL interval literal in interval form (core/interval_text.hpp).
// Raises 22023 with a hint for anything else, for a cron expression that never
// fires ('0 0 31 2 *'), and for intervals that are not positive or shorter
// than 100 ms.
ParsedSchedule parse_schedule(const char *text, const char *time_zone);

// The first fire time strictly after `after`; false when there is none.
bool next_fire_time(const JobSchedule &schedule, TimestampTz after, TimestampTz *next);

// What decide_due needs to know about a job besides its schedule.
struct DuePolicyPg {
	bool has_misfire_grace;
	int64 misfire_grace_us;
	bool coalesce;
	int max_catchup;
	const char *overlap; // skip | queue | allow
	bool has_last_run;
	TimestampTz last_started;
	TimestampTz last_finished;
};

// core::DueDecision in PostgreSQL terms.
struct DueDecisionPg {
	bool run;
	const char *reason; // for a skip: "misfire" | "overlap" (static strings, recorded as the run's reason)
	bool overlap;       // the skip is for an overlap (else a misfire)
	TimestampTz fire_time;
	int64 folded;
	TimestampTz folded_from;
	TimestampTz folded_to;
	bool has_next;
	TimestampTz next;
};

// What to do with a job whose next_run_at `due` is <= now (core::decide_due).
DueDecisionPg decide_due(const JobSchedule &schedule, TimestampTz due, TimestampTz now, const DuePolicyPg &policy);

// Delay before retry `attempt` (core::retry_delay), with a random spread.
int64 retry_delay_us(int64 base_us, int attempt, int64 cap_us);

// The next n fire times after `after` (for foreman.next_runs); returns how
// many were found (fewer when the schedule ends).
int next_fire_times(const JobSchedule &schedule, TimestampTz after, int n, TimestampTz *out);

// Conversions between PostgreSQL timestamps and the core's Unix microseconds.
inline int64
to_unix_micros(TimestampTz ts)
{
	return ts + (int64)(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}
inline TimestampTz
from_unix_micros(int64 us)
{
	return us - (int64)(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

// An interval as microseconds; months are refused (their length varies)
// with an error naming `what`.
int64 interval_micros(const Interval *interval, const char *what);

// The time zone of that name, or the session's (server's) zone for NULL;
// ERROR 22023 for an unknown name.
pg_tz *lookup_time_zone(const char *name);

} // namespace foreman::pg
