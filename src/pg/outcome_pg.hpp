// outcome_pg.hpp: core::summarize (the rule of what a finished run does to
// its job) for PostgreSQL-side callers, in plain values: no C++ object
// outlives a call.
#pragma once

#include "pg/postgres.hpp"
#include "core/outcome.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

namespace foreman::pg {

struct RunEndPg {
	core::RunStatus status;
	int32 attempt;
	TimestampTz finished_at;
	bool stopping;
	bool start_unknown;
	const char *owner_problem; // NULL: none
	const char *message;       // NULL: none
};

struct JobCountersPg {
	int32 consecutive_failures;
	bool has_max_failures;
	int32 max_failures;
	int32 retries;
	int64 retry_backoff_us;
	int64 retry_backoff_max_us;
	bool has_next_run;
	TimestampTz next_run_at;
	bool last_crashed;
	int64 min_retry_delay_us;
};

struct JobSummaryPg {
	int32 consecutive_failures;
	bool has_retry;
	TimestampTz retry_at;
	int32 retry_attempt;
	char *disabled_reason; // palloc'd; NULL: the job stays enabled
	bool has_next_run;
	TimestampTz next_run_at;
	bool backed_off;               // the crash back-off moved next_run_at ...
	TimestampTz backed_off_from;   // ... from here
};

JobSummaryPg summarize_run(const RunEndPg &run, const JobCountersPg &job);

// A status as foreman.job_run spells it, and back (XX000 for anything else).
const char *run_status_name(core::RunStatus status);
core::RunStatus parse_run_status(const char *name);

} // namespace foreman::pg
