// job_spec.hpp: what schedule() and alter_job() decide about a job before
// writing it: its settings (JobSpec), read from a call's arguments or from
// the job's row, and what validation derives from them (Resolved).
#pragma once

#include "pg/schedule_pg.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/array.h"
#include "utils/timestamp.h"
}

namespace foreman::api {

// Everything schedule() and alter_job() decide about a job before writing it.
struct JobSpec {
	char *job_name;
	char *schedule;
	char *command;
	char *tier;           // NULL: by period
	bool has_timeout;
	Interval timeout;
	Interval jitter;
	bool has_misfire_grace;
	Interval misfire_grace;
	bool coalesce;
	char *overlap;
	int32 retries;
	Interval retry_backoff;
	bool enabled;
	bool has_start_at;
	TimestampTz start_at;
	bool has_end_at;
	TimestampTz end_at;
	char *time_zone;
	bool has_max_failures;
	int32 max_failures;
	int32 max_catchup;
	bool has_retry_backoff_max;
	Interval retry_backoff_max;
	char *log_runs;
	int32 max_instances;
	char *notify; // all | failures | none
	ArrayType *after;      // given: the job's upstreams become these names
	char *after_condition; // success | failure | completion
};

// What validation derives.
struct Resolved {
	pg::ParsedSchedule parsed;
	int32 tier_id;
	int64 jitter_us;
};

bool interval_is_zero(const Interval &i);

// Checks every setting (ERROR with a SQLSTATE on the first bad one) and
// derives the parsed schedule, tier and jitter.
void validate(JobSpec *spec, Resolved *out);

// A job's stored settings (alter_job), or schedule()'s defaults.
void load_spec(int64 job_id, JobSpec *spec);
JobSpec default_spec();

// The settings given in a call's arguments, from argument `first` on
// (schedule() and alter_job() share their order); NULL leaves one as it is.
void apply_settings(FunctionCallInfo fcinfo, int first, JobSpec *spec);

} // namespace foreman::api
