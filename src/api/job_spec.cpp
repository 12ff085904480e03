// job_spec.cpp: a job's settings - read from a call's arguments or the job's
// row, and validated - before schedule() or alter_job() write them.
#include "api/job_spec.hpp"
#include "api/access.hpp"
#include "api/args.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "parser/parser.h"
#include "utils/builtins.h"
}

namespace foreman::api {

namespace {

// The command must parse and hold at least one statement; it is run later by
// the coordinator exactly as written.
void
validate_command(const char *command)
{
	// A syntax error's cursor position would point into the caller's query,
	// not the command: the error is raised as it is, its position named in
	// its context instead.
	List *statements = NIL;
	if (ErrorData *edata = pg::capture_pg_error([&]() { statements = raw_parser(command, RAW_PARSE_DEFAULT); })) {
		const char *where = edata->cursorpos > 0 ? psprintf("in the job's command, at character %d", edata->cursorpos)
		                                         : "in the job's command";
		edata->cursorpos = 0;
		pg::reraise_pg_error(edata, where);
	}
	if (list_length(statements) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command must not be empty"),
		                errhint("Give the SQL to run, such as 'CALL refresh_config()'.")));
}

} // namespace

bool
interval_is_zero(const Interval &i)
{
	return i.month == 0 && i.day == 0 && i.time == 0;
}

void
validate(JobSpec *spec, Resolved *out)
{
	if (strlen(spec->job_name) == 0 || strlen(spec->job_name) > 63)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("job name must be 1 to 63 characters long")));
	validate_command(spec->command);
	// '@after': no time schedule; the job runs after its upstreams only.
	if (strcmp(spec->schedule, "@after") == 0)
		out->parsed = pg::ParsedSchedule{"after", 0, "slow", 0, 0};
	else
		out->parsed = pg::parse_schedule(spec->schedule, spec->time_zone);

	if (spec->has_timeout && interval_is_zero(spec->timeout))
		spec->has_timeout = false;
	if (spec->has_timeout && pg::interval_micros(&spec->timeout, "timeout") <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("timeout must be positive"),
		                errhint("Leave it NULL (or zero) for no timeout.")));
	out->jitter_us = pg::interval_micros(&spec->jitter, "jitter");
	if (out->jitter_us < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("jitter must not be negative")));
	if (spec->has_misfire_grace && interval_is_zero(spec->misfire_grace))
		spec->has_misfire_grace = false;
	if (spec->has_misfire_grace && pg::interval_micros(&spec->misfire_grace, "misfire_grace") <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("misfire_grace must be positive")));
	if (strcmp(spec->overlap, "skip") != 0 && strcmp(spec->overlap, "queue") != 0 &&
	    strcmp(spec->overlap, "allow") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid overlap \"%s\"", spec->overlap),
		                errhint("Use 'skip', 'queue' or 'allow'.")));
	if (spec->retries < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("retries must not be negative")));
	if (pg::interval_micros(&spec->retry_backoff, "retry_backoff") <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("retry_backoff must be positive")));
	if (spec->max_instances < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_instances must be at least 1")));
	if (spec->max_catchup < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_catchup must be at least 1")));
	if (spec->has_retry_backoff_max && interval_is_zero(spec->retry_backoff_max))
		spec->has_retry_backoff_max = false;
	if (spec->has_retry_backoff_max && pg::interval_micros(&spec->retry_backoff_max, "retry_backoff_max") <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("retry_backoff_max must be positive")));
	if (strcmp(spec->log_runs, "all") != 0 && strcmp(spec->log_runs, "failures") != 0 &&
	    strcmp(spec->log_runs, "none") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid log_runs \"%s\"", spec->log_runs),
		                errhint("Use 'all', 'failures' or 'none'.")));
	if (strcmp(spec->notify, "all") != 0 && strcmp(spec->notify, "failures") != 0 && strcmp(spec->notify, "none") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid notify \"%s\"", spec->notify),
		                errhint("Use 'all', 'failures' or 'none'.")));
	if (strcmp(spec->after_condition, "success") != 0 && strcmp(spec->after_condition, "failure") != 0 &&
	    strcmp(spec->after_condition, "completion") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("invalid after_condition \"%s\"", spec->after_condition),
		                errhint("Use 'success', 'failure' or 'completion'.")));
	if (spec->has_max_failures && spec->max_failures < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_failures must be at least 1")));
	if (spec->has_start_at && spec->has_end_at && spec->end_at <= spec->start_at)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("end_at must be later than start_at")));

	int32 concurrency = 1;
	out->tier_id = find_tier(spec->tier ? spec->tier : out->parsed.default_tier, &concurrency);
	if (strcmp(spec->overlap, "allow") == 0 && concurrency <= 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("overlap 'allow' needs a tier with concurrency above 1"),
		                errdetail("Tier \"%s\" runs one job at a time.", spec->tier ? spec->tier : out->parsed.default_tier),
		                errhint("Use 'skip' or 'queue', or a parallel tier.")));
}

// Reads a job's stored settings into a spec, for alter_job.
void
load_spec(int64 job_id, JobSpec *spec)
{
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(job_id)};
	spi_exec("SELECT j.job_name, j.schedule, j.command, t.name, j.timeout, j.jitter, j.misfire_grace, j.coalesce_runs,"
	         " j.overlap, j.retries, j.retry_backoff, j.enabled, j.start_at, j.end_at, j.time_zone, j.max_failures,"
	         " j.max_catchup, j.retry_backoff_max, j.log_runs, j.max_instances, j.notify, j.after_condition"
	         " FROM foreman.job j JOIN foreman.tier t USING (tier_id) WHERE j.job_id = $1",
	         1, types, values, nullptr, false);
	if (SPI_processed != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("job %lld does not exist", (long long)job_id)));
	HeapTuple row = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	MemoryContext spi = MemoryContextSwitchTo(CurTransactionContext);
	auto text_col = [&](int col) -> char * {
		bool isnull;
		Datum d = SPI_getbinval(row, desc, col, &isnull);
		return isnull ? nullptr : TextDatumGetCString(d);
	};
	auto interval = [&](int col, Interval *out) -> bool {
		bool isnull;
		Datum d = SPI_getbinval(row, desc, col, &isnull);
		if (!isnull)
			*out = *DatumGetIntervalP(d);
		return !isnull;
	};
	bool isnull;
	spec->job_name = text_col(1);
	spec->schedule = text_col(2);
	spec->command = text_col(3);
	spec->tier = text_col(4);
	spec->has_timeout = interval(5, &spec->timeout);
	interval(6, &spec->jitter);
	spec->has_misfire_grace = interval(7, &spec->misfire_grace);
	spec->coalesce = DatumGetBool(SPI_getbinval(row, desc, 8, &isnull));
	spec->overlap = text_col(9);
	spec->retries = DatumGetInt32(SPI_getbinval(row, desc, 10, &isnull));
	interval(11, &spec->retry_backoff);
	spec->enabled = DatumGetBool(SPI_getbinval(row, desc, 12, &isnull));
	Datum d = SPI_getbinval(row, desc, 13, &isnull);
	spec->has_start_at = !isnull;
	spec->start_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(row, desc, 14, &isnull);
	spec->has_end_at = !isnull;
	spec->end_at = isnull ? 0 : DatumGetTimestampTz(d);
	spec->time_zone = text_col(15);
	d = SPI_getbinval(row, desc, 16, &isnull);
	spec->has_max_failures = !isnull;
	spec->max_failures = isnull ? 0 : DatumGetInt32(d);
	spec->max_catchup = DatumGetInt32(SPI_getbinval(row, desc, 17, &isnull));
	spec->has_retry_backoff_max = interval(18, &spec->retry_backoff_max);
	spec->log_runs = text_col(19);
	spec->max_instances = DatumGetInt32(SPI_getbinval(row, desc, 20, &isnull));
	spec->notify = text_col(21);
	spec->after_condition = text_col(22);
	MemoryContextSwitchTo(spi);
}

// A spec with schedule()'s defaults, before its arguments are applied.
JobSpec
default_spec()
{
	JobSpec spec{};
	spec.coalesce = true;
	spec.overlap = pstrdup("skip");
	spec.retry_backoff.time = 10 * USECS_PER_SEC;
	spec.enabled = true;
	spec.max_catchup = 10;
	spec.log_runs = pstrdup("all");
	spec.max_instances = 1;
	spec.notify = pstrdup("failures");
	spec.after_condition = pstrdup("success");
	return spec;
}

// Arguments 3.. of schedule() and alter_job() share their order: tier,
// timeout, jitter, misfire_grace, coalesce_runs, overlap, retries,
// retry_backoff, enabled, start_at, end_at, time_zone, max_failures,
// max_catchup, retry_backoff_max, log_runs, max_instances. A NULL argument leaves the
// setting as it is (for schedule(): its default).
void
apply_settings(FunctionCallInfo fcinfo, int first, JobSpec *spec)
{
	static const char *const names[] = {"tier", "timeout", "jitter", "misfire_grace", "coalesce_runs", "overlap",
	                                    "retries", "retry_backoff", "enabled", "start_at", "end_at", "time_zone",
	                                    "max_failures", "max_catchup", "retry_backoff_max", "log_runs",
	                                    "max_instances"};
	auto given = [&](int i) { return !PG_ARGISNULL(first + i); };
	auto text_arg = [&](int i) { return optional_text_arg(fcinfo, first + i, names[i], NAMEDATALEN * 4); };
	auto interval_arg = [&](int i) { return *PG_GETARG_INTERVAL_P(first + i); };
	auto timestamp_arg = [&](int i) {
		TimestampTz ts = PG_GETARG_TIMESTAMPTZ(first + i);
		check_schedule_timestamp(ts, names[i]);
		return ts;
	};
	if (given(0))
		spec->tier = text_arg(0);
	if (given(1)) {
		spec->has_timeout = true;
		spec->timeout = interval_arg(1);
	}
	if (given(2))
		spec->jitter = interval_arg(2);
	if (given(3)) {
		spec->has_misfire_grace = true;
		spec->misfire_grace = interval_arg(3);
	}
	if (given(4))
		spec->coalesce = PG_GETARG_BOOL(first + 4);
	if (given(5))
		spec->overlap = text_arg(5);
	if (given(6))
		spec->retries = PG_GETARG_INT32(first + 6);
	if (given(7))
		spec->retry_backoff = interval_arg(7);
	if (given(8))
		spec->enabled = PG_GETARG_BOOL(first + 8);
	if (given(9)) {
		spec->has_start_at = true;
		spec->start_at = timestamp_arg(9);
	}
	if (given(10)) {
		spec->has_end_at = true;
		spec->end_at = timestamp_arg(10);
	}
	if (given(11))
		spec->time_zone = text_arg(11);
	if (given(12)) {
		spec->has_max_failures = true;
		spec->max_failures = PG_GETARG_INT32(first + 12);
	}
	if (given(13))
		spec->max_catchup = PG_GETARG_INT32(first + 13);
	if (given(14)) {
		spec->has_retry_backoff_max = true;
		spec->retry_backoff_max = interval_arg(14);
	}
	if (given(15))
		spec->log_runs = text_arg(15);
	if (given(16))
		spec->max_instances = PG_GETARG_INT32(first + 16);
}

} // namespace foreman::api
