// jobs.cpp: foreman.schedule, unschedule, alter_job, run_now, wait_for_run.
//
// Every function captures the caller (GetUserId()) first, validates all input
// before writing anything, then writes the private tables with the
// extension's rights. Values travel as SPI parameters.
#include "api/access.hpp"
#include "api/dependencies.hpp"
#include "api/hooks.hpp"
#include "api/job_spec.hpp"
#include "pg/guard.hpp"
#include "pg/roles.hpp"
#include "pg/schedule_pg.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "lib/stringinfo.h"
#include "utils/snapmgr.h"
}

namespace foreman::api {

namespace {

// Per-role bounds for roles that are not foreman_admin: a shortest period
// and a number of jobs, so one application cannot saturate a tier.
void
check_role_limits(Oid caller, Oid owner, const Resolved &r, const char *job_name)
{
	if (pg::is_foreman_admin(caller))
		return;
	int64 min_us = (int64)guc_min_user_interval_ms * 1000;
	if (r.parsed.shortest_period_us > 0 && r.parsed.shortest_period_us < min_us)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("schedule fires more often than foreman.min_user_interval allows"),
		                errdetail("Two of its fire times are %lld ms apart; the shortest allowed is %d ms.",
		                          (long long)(r.parsed.shortest_period_us / 1000), guc_min_user_interval_ms),
		                errhint("A member of foreman_admin may schedule shorter periods.")));
	// Counted under the owner's lock (held to commit) and the latest snapshot,
	// so that concurrent schedule() calls in open transactions cannot each
	// see room for one more job.
	lock_owner_jobs(owner);
	Oid types[2] = {OIDOID, TEXTOID};
	Datum values[2] = {ObjectIdGetDatum(owner), CStringGetTextDatum(job_name)};
	PushActiveSnapshot(GetLatestSnapshot());
	spi_exec("SELECT count(*) FROM foreman.job WHERE owner = $1 AND job_name <> $2", 2, types, values, nullptr, true);
	PopActiveSnapshot();
	bool isnull;
	int64 jobs = DatumGetInt64(spi_get(0, 1, &isnull));
	if (jobs >= guc_max_jobs_per_role)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("role \"%s\" already owns %lld jobs", GetUserNameFromId(owner, false), (long long)jobs),
		                errdetail("foreman.max_jobs_per_role is %d.", guc_max_jobs_per_role),
		                errhint("Unschedule jobs that are no longer needed, or ask a superuser to raise the limit.")));
}

// The role a new job will belong to: the caller, or (owner => ...) a role a
// foreman_admin is a member of. The owner must be able to run jobs.
Oid
job_owner(FunctionCallInfo fcinfo, int owner_arg, Oid caller)
{
	Oid owner = caller;
	if (PG_NARGS() > owner_arg && !PG_ARGISNULL(owner_arg))
		owner = PG_GETARG_OID(owner_arg);
	if (owner != caller && !(pg::is_foreman_admin(caller) && is_member_of_role(caller, owner)))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to schedule jobs as role \"%s\"", GetUserNameFromId(owner, true)),
		                errhint("Only a member of foreman_admin may schedule as another role, and only as one it is a member of.")));
	if (const char *problem = pg::owner_status(owner).problem)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("cannot schedule a job: %s", problem)));
	return owner;
}

// The first fire time after now for a spec anchored at `anchor`.
bool
first_fire(const JobSpec &spec, const Resolved &r, TimestampTz anchor, int64 phase_us, TimestampTz now,
           TimestampTz *next)
{
	pg::JobSchedule js{spec.schedule, r.parsed.kind, r.parsed.period_us, spec.time_zone, anchor, phase_us,
	                   spec.has_end_at, spec.end_at};
	if (strcmp(r.parsed.kind, "after") == 0)
		return false; // never by time
	if (strcmp(r.parsed.kind, "once") == 0 && !spec.has_start_at) {
		*next = now; // @once without start_at: as soon as possible
		return true;
	}
	return pg::next_fire_time(js, now - 1, next);
}

// The columns of a job row being written, bound as SPI parameters $2, $3...
// ($1 is the job's id). The INSERT and the UPDATE are generated from the one
// list, so they cannot disagree.
struct JobColumns {
	static constexpr int kMax = 40;
	const char *names[kMax];
	Oid types[kMax];
	Datum values[kMax];
	char nulls[kMax + 1];
	int n;

	explicit JobColumns(int64 job_id) : n(1)
	{
		names[0] = "job_id";
		types[0] = INT8OID;
		values[0] = Int64GetDatum(job_id);
		nulls[0] = ' ';
	}
	void add(const char *name, Oid type, Datum value, bool present = true)
	{
		Assert(n < kMax);
		names[n] = name;
		types[n] = type;
		values[n] = present ? value : (Datum)0;
		nulls[n++] = present ? ' ' : 'n';
		nulls[n] = '\0';
	}
	void text(const char *name, const char *value) { add(name, TEXTOID, value ? CStringGetTextDatum(value) : 0, value); }
	void interval(const char *name, const Interval &value, bool present = true)
	{
		add(name, INTERVALOID, IntervalPGetDatum(const_cast<Interval *>(&value)), present);
	}
	char *insert_sql() const
	{
		StringInfoData cols, args;
		initStringInfo(&cols);
		initStringInfo(&args);
		for (int i = 1; i < n; i++) {
			appendStringInfo(&cols, "%s%s", i > 1 ? ", " : "", names[i]);
			appendStringInfo(&args, "%s$%d", i > 1 ? ", " : "", i + 1);
		}
		return psprintf("INSERT INTO foreman.job (%s, owner_name) SELECT %s,"
		                " (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $3) WHERE $1 = 0 RETURNING job_id",
		                cols.data, args.data);
	}
	char *update_sql(const char *also) const
	{
		StringInfoData sets;
		initStringInfo(&sets);
		for (int i = 1; i < n; i++)
			appendStringInfo(&sets, "%s = $%d, ", names[i], i + 1);
		return psprintf("UPDATE foreman.job SET %s owner_name = (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $3),"
		                " revision = revision + 1, updated_at = now(), run_requested_at = NULL,"
		                " consecutive_failures = 0, disabled_reason = NULL, retry_at = NULL, retry_attempt = 0%s"
		                " WHERE job_id = $1 RETURNING job_id",
		                sets.data, also);
	}
};

// Same schedule as stored? Then its anchor and jitter phase are kept, also
// across a pause (the next run is the first grid point after now anyway), so
// re-running a setup script does not shift a job's fire times.
void
keep_anchor_and_phase(int64 job_id, const JobSpec &spec, TimestampTz *anchor, int64 *phase_us)
{
	Oid types[6] = {INT8OID, TEXTOID, INTERVALOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[6] = {Int64GetDatum(job_id), CStringGetTextDatum(spec.schedule),
	                   IntervalPGetDatum(const_cast<Interval *>(&spec.jitter)),
	                   spec.time_zone ? CStringGetTextDatum(spec.time_zone) : (Datum)0,
	                   TimestampTzGetDatum(spec.start_at), TimestampTzGetDatum(spec.end_at)};
	char nulls[7] = "      ";
	nulls[3] = spec.time_zone ? ' ' : 'n';
	nulls[4] = spec.has_start_at ? ' ' : 'n';
	nulls[5] = spec.has_end_at ? ' ' : 'n';
	uint64 n = spi_exec("SELECT anchor_at, (extract(epoch FROM phase) * 1000000)::int8 FROM foreman.job"
	                    " WHERE job_id = $1 AND schedule = $2 AND jitter = $3"
	                    "   AND time_zone IS NOT DISTINCT FROM $4 AND start_at IS NOT DISTINCT FROM $5"
	                    "   AND end_at IS NOT DISTINCT FROM $6",
	                    6, types, values, nulls, false);
	if (n == 1) {
		bool isnull;
		*anchor = DatumGetTimestampTz(spi_get(0, 1, &isnull));
		*phase_us = DatumGetInt64(spi_get(0, 2, &isnull));
	}
}

// Where the job stands on its schedule: anchor, jitter phase, first fire time.
struct Placement {
	TimestampTz anchor;
	Interval phase;
	Interval period; // interval schedules
	bool has_next;
	TimestampTz next;
};

Placement
place_job(int64 job_id, const JobSpec &spec, const Resolved &r)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Placement p{};
	p.anchor = spec.has_start_at ? spec.start_at : now;
	int64 phase_us = r.jitter_us > 0 ? (int64)(pg_prng_uint64(&pg_global_prng_state) % (uint64)r.jitter_us) : 0;
	if (job_id != 0)
		keep_anchor_and_phase(job_id, spec, &p.anchor, &phase_us);
	p.phase.time = phase_us;
	p.period.time = r.parsed.period_us;
	p.has_next = spec.enabled && first_fire(spec, r, p.anchor, phase_us, now, &p.next);
	return p;
}

void
bind_job(const JobSpec &spec, const Resolved &r, Oid owner, const Placement &p, JobColumns *c)
{
	c->text("job_name", spec.job_name);
	c->add("owner", OIDOID, ObjectIdGetDatum(owner));
	c->add("tier_id", INT4OID, Int32GetDatum(r.tier_id));
	c->text("command", spec.command);
	c->text("schedule", spec.schedule);
	c->text("schedule_kind", r.parsed.kind);
	c->interval("period", p.period, strcmp(r.parsed.kind, "interval") == 0);
	c->text("time_zone", spec.time_zone);
	c->add("anchor_at", TIMESTAMPTZOID, TimestampTzGetDatum(p.anchor));
	c->interval("jitter", spec.jitter);
	c->interval("phase", p.phase);
	c->add("start_at", TIMESTAMPTZOID, TimestampTzGetDatum(spec.start_at), spec.has_start_at);
	c->add("end_at", TIMESTAMPTZOID, TimestampTzGetDatum(spec.end_at), spec.has_end_at);
	c->interval("timeout", spec.timeout, spec.has_timeout);
	c->interval("misfire_grace", spec.misfire_grace, spec.has_misfire_grace);
	c->add("coalesce_runs", BOOLOID, BoolGetDatum(spec.coalesce));
	c->text("overlap", spec.overlap);
	c->add("retries", INT4OID, Int32GetDatum(spec.retries));
	c->interval("retry_backoff", spec.retry_backoff);
	c->add("max_failures", INT4OID, Int32GetDatum(spec.max_failures), spec.has_max_failures);
	c->add("enabled", BOOLOID, BoolGetDatum(spec.enabled));
	c->add("next_run_at", TIMESTAMPTZOID, TimestampTzGetDatum(p.next), p.has_next);
	c->add("max_catchup", INT4OID, Int32GetDatum(spec.max_catchup));
	c->interval("retry_backoff_max", spec.retry_backoff_max, spec.has_retry_backoff_max);
	c->text("log_runs", spec.log_runs);
	c->add("max_instances", INT4OID, Int32GetDatum(spec.max_instances));
	c->text("notify", spec.notify);
	c->text("after_condition", spec.after_condition);
}

// Writes spec as job `job_id` (0: a new job); returns its id.
int64
write_job(int64 job_id, Oid owner, JobSpec *spec, const Resolved &r, bool as_sql_job)
{
	Placement p = place_job(job_id, *spec, r);
	JobColumns c(job_id);
	bind_job(*spec, r, owner, p, &c);
	if (job_id == 0)
		spi_exec(c.insert_sql(), c.n, c.types, c.values, c.nulls, false);
	else {
		// schedule() over a maintenance job of the same name makes it a plain
		// SQL job again: its stored arguments go (schedule_expiry() and
		// schedule_purge() set them again after calling schedule()).
		if (as_sql_job) {
			Oid dtypes[1] = {INT8OID};
			Datum dvalues[1] = {Int64GetDatum(job_id)};
			spi_exec("DELETE FROM foreman.maintenance WHERE job_id = $1", 1, dtypes, dvalues, nullptr, false);
		}
		spi_exec(c.update_sql(as_sql_job ? ", kind = 'sql'" : ""), c.n, c.types, c.values, c.nulls, false);
	}
	// The row was locked by the caller (find_job, or schedule()'s FOR UPDATE):
	// it cannot have gone. Checked anyway, never read past the result.
	if (SPI_processed != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("job \"%s\" does not exist", spec->job_name)));
	bool isnull;
	int64 id = DatumGetInt64(spi_get(0, 1, &isnull));
	wake_tier_at_commit(r.tier_id);
	return id;
}

// The job's upstreams when `after` was given (replacing what it had), and
// the rule that a job that runs only after others has some.
void
write_upstreams(int64 job_id, Oid owner, const JobSpec &spec, const Resolved &r, bool replace)
{
	// schedule() defines the whole job: no after, no upstreams.
	// alter_job() without after leaves them as they are.
	if (spec.after) {
		int n = 0;
		int64 *ids = resolve_upstreams(spec.after, owner, spec.job_name, &n);
		write_dependencies(job_id, ids, n);
	} else if (replace)
		write_dependencies(job_id, nullptr, 0);
	if (strcmp(r.parsed.kind, "after") == 0 && count_upstreams(job_id) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("job \"%s\" runs only after other jobs, but names none", spec.job_name),
		                errhint("Give them with after => ARRAY['...'], or a time schedule.")));
}

} // namespace
} // namespace foreman::api

using namespace foreman::api;

FOREMAN_FUNCTION(foreman_schedule)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	Oid owner = job_owner(fcinfo, 20, caller);
	JobSpec spec = default_spec();
	spec.job_name = required_text_arg(fcinfo, 0, "job_name");
	spec.schedule = required_text_arg(fcinfo, 1, "schedule", kMaxScheduleBytes);
	spec.command = required_text_arg(fcinfo, 2, "command", kMaxCommandBytes);
	apply_settings(fcinfo, 3, &spec);
	if (PG_NARGS() > 21 && !PG_ARGISNULL(21))
		spec.notify = optional_text_arg(fcinfo, 21, "notify", NAMEDATALEN);
	if (PG_NARGS() > 22 && !PG_ARGISNULL(22))
		spec.after = PG_GETARG_ARRAYTYPE_P(22);
	if (PG_NARGS() > 23 && !PG_ARGISNULL(23))
		spec.after_condition = optional_text_arg(fcinfo, 23, "after_condition", NAMEDATALEN);

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	Resolved r;
	validate(&spec, &r);
	check_role_limits(caller, owner, r, spec.job_name);
	Oid types[2] = {OIDOID, TEXTOID};
	Datum values[2] = {ObjectIdGetDatum(owner), CStringGetTextDatum(spec.job_name)};
	int64 existing = 0;
	if (spi_exec("SELECT job_id FROM foreman.job WHERE owner = $1 AND job_name = $2 FOR UPDATE", 2, types, values,
	             nullptr, false) == 1) {
		bool isnull;
		existing = DatumGetInt64(spi_get(0, 1, &isnull));
	}
	int64 job_id = write_job(existing, owner, &spec, r, true);
	write_upstreams(job_id, owner, spec, r, true);
	elevation_end(&e);
	PG_RETURN_INT64(job_id);
}

FOREMAN_FUNCTION(foreman_alter_job)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	char *name = required_text_arg(fcinfo, 0, "job_name");

	char *schedule = optional_text_arg(fcinfo, 1, "schedule", kMaxScheduleBytes);
	char *command = optional_text_arg(fcinfo, 2, "command", kMaxCommandBytes);

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	JobRef job = require_job(name, caller, JobLock::ForUpdate);
	JobSpec spec{};
	load_spec(job.job_id, &spec);
	if (schedule)
		spec.schedule = schedule;
	if (command) {
		Oid ktypes[1] = {INT8OID};
		Datum kvalues[1] = {Int64GetDatum(job.job_id)};
		spi_exec("SELECT kind FROM foreman.job WHERE job_id = $1", 1, ktypes, kvalues, nullptr, false);
		char *kind = spi_get_text(0, 1);
		if (strcmp(kind, "sql") != 0)
			ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
			                errmsg("job \"%s\" is a scheduled %s; pg_foreman writes its command", name, kind),
			                errhint("Change it with foreman.schedule_%s(), or replace it with foreman.schedule().",
			                        kind)));
		spec.command = command;
	}
	apply_settings(fcinfo, 3, &spec);
	if (PG_NARGS() > 20 && !PG_ARGISNULL(20))
		spec.notify = optional_text_arg(fcinfo, 20, "notify", NAMEDATALEN);
	if (PG_NARGS() > 21 && !PG_ARGISNULL(21))
		spec.after = PG_GETARG_ARRAYTYPE_P(21);
	if (PG_NARGS() > 22 && !PG_ARGISNULL(22))
		spec.after_condition = optional_text_arg(fcinfo, 22, "after_condition", NAMEDATALEN);
	bool cascade = PG_NARGS() > 23 && !PG_ARGISNULL(23) && PG_GETARG_BOOL(23);
	Resolved r;
	validate(&spec, &r);
	check_role_limits(caller, job.owner, r, spec.job_name);
	if (job.enabled && !spec.enabled)
		handle_dependents(job.job_id, name, caller, cascade, DependentAction::Disable);
	write_job(job.job_id, job.owner, &spec, r, false);
	write_upstreams(job.job_id, job.owner, spec, r, false);
	if (job.tier_id != r.tier_id)
		wake_tier_at_commit(job.tier_id);
	elevation_end(&e);
	PG_RETURN_VOID();
}

FOREMAN_FUNCTION(foreman_unschedule)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	char *name = required_text_arg(fcinfo, 0, "job_name");
	bool if_exists = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	bool cascade = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	JobRef job{};
	if (if_exists && !find_job(name, caller, JobLock::ForUpdate, &job)) {
		elevation_end(&e);
		ereport(NOTICE, (errmsg("job \"%s\" does not exist, skipping", name)));
		PG_RETURN_BOOL(false);
	}
	if (!if_exists)
		job = require_job(name, caller, JobLock::ForUpdate);
	handle_dependents(job.job_id, name, caller, cascade, DependentAction::Remove);
	Oid dtypes[1] = {INT8OID};
	Datum dvalues[1] = {Int64GetDatum(job.job_id)};
	spi_exec("DELETE FROM foreman.job WHERE job_id = $1", 1, dtypes, dvalues, nullptr, false);
	wake_tier_at_commit(job.tier_id);
	elevation_end(&e);
	PG_RETURN_BOOL(true);
}

FOREMAN_FUNCTION(foreman_run_now)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	char *name = required_text_arg(fcinfo, 0, "job_name");

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	// A paused job runs too (once, by hand), and stays paused.
	JobRef job = require_job(name, caller, JobLock::ForUpdate);
	// For owners that are not foreman_admin, no sooner than
	// foreman.min_user_interval after the job's last start: a job that asks
	// for itself (or a loop of run_now) cannot outrun the bound.
	bool bounded = !foreman::pg::is_foreman_admin(job.owner);
	Oid rtypes[3] = {INT8OID, BOOLOID, INTERVALOID};
	Interval min_interval{};
	min_interval.time = (int64)foreman::guc_min_user_interval_ms * 1000;
	Datum rvalues[3] = {Int64GetDatum(job.job_id), BoolGetDatum(bounded), IntervalPGetDatum(&min_interval)};
	spi_exec("UPDATE foreman.job SET run_requested_at = coalesce(run_requested_at, greatest(clock_timestamp(),"
	         "        CASE WHEN $2 THEN last_started_at + $3 END))"
	         " WHERE job_id = $1",
	         3, rtypes, rvalues, nullptr, false);
	wake_tier_at_commit(job.tier_id);
	elevation_end(&e);
	PG_RETURN_VOID();
}

FOREMAN_FUNCTION(foreman_wait_for_run)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	char *name = required_text_arg(fcinfo, 0, "job_name");
	TimestampTz after = PG_ARGISNULL(1) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(1);
	int64 timeout_us = 30 * USECS_PER_SEC;
	if (!PG_ARGISNULL(2))
		timeout_us = foreman::pg::interval_micros(PG_GETARG_INTERVAL_P(2), "timeout");
	if (timeout_us < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("timeout must not be negative")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
		                errmsg("foreman.wait_for_run() cannot wait inside a REPEATABLE READ or SERIALIZABLE transaction"),
		                errdetail("Its snapshot would never show the run."),
		                errhint("Call it in a READ COMMITTED transaction.")));

	TupleDesc result_desc;
	if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "foreman.wait_for_run must return a composite type");
	result_desc = BlessTupleDesc(result_desc);

	Elevation e;
	elevation_begin(&e);
	JobRef job = require_job(name, caller, JobLock::None);
	TimestampTz deadline = GetCurrentTimestamp() + timeout_us;
	Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum values[2] = {Int64GetDatum(job.job_id), TimestampTzGetDatum(after)};
	// Each SPI statement takes a fresh snapshot (READ COMMITTED) only when not
	// read_only (read_only reuses the caller's snapshot): poll every 20 ms,
	// bounded by the deadline.
	for (;;) {
		if (spi_exec("SELECT * FROM foreman.job_run WHERE job_id = $1 AND started_at >= $2 AND status <> 'running'"
		             " ORDER BY run_id LIMIT 1",
		             2, types, values, nullptr, false) == 1) {
			// SPI_copytuple allocates in the caller's context: it outlives SPI_finish.
			HeapTuple tuple = SPI_copytuple(SPI_tuptable->vals[0]);
			elevation_end(&e);
			PG_RETURN_DATUM(heap_copy_tuple_as_datum(tuple, result_desc));
		}
		if (GetCurrentTimestamp() >= deadline)
			break;
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	elevation_end(&e);
	ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
	                errmsg("no run of job \"%s\" finished within the timeout", name),
	                errdetail("No run that started at or after the \"after\" time has finished yet."),
	                errhint("Check foreman.tier_status: is the job's tier running and led?")));
	PG_RETURN_NULL();
}

FOREMAN_FUNCTION(foreman_next_runs)
{
	Oid caller = GetUserId();
	require_foreman_user(caller);
	char *name = required_text_arg(fcinfo, 0, "job_name");
	int32 n = PG_GETARG_INT32(1);
	if (n < 0 || n > 1000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("n must be between 0 and 1000")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;

	Elevation e;
	elevation_begin(&e);
	JobRef job = require_job(name, caller, JobLock::None);
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(job.job_id)};
	spi_exec("SELECT schedule, schedule_kind, (extract(epoch FROM period) * 1000000)::int8, time_zone, anchor_at,"
	         " (extract(epoch FROM phase) * 1000000)::int8, end_at, next_run_at FROM foreman.job WHERE job_id = $1",
	         1, types, values, nullptr, true);
	if (SPI_processed != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("job \"%s\" does not exist", name)));
	HeapTuple row = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	bool isnull;
	foreman::pg::JobSchedule js{};
	js.schedule = SPI_getvalue(row, desc, 1);
	js.schedule_kind = SPI_getvalue(row, desc, 2);
	Datum d = SPI_getbinval(row, desc, 3, &isnull);
	js.period_us = isnull ? 0 : DatumGetInt64(d);
	js.time_zone = SPI_getvalue(row, desc, 4);
	js.anchor_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 5, &isnull));
	js.phase_us = DatumGetInt64(SPI_getbinval(row, desc, 6, &isnull));
	d = SPI_getbinval(row, desc, 7, &isnull);
	js.has_end_at = !isnull;
	js.end_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(row, desc, 8, &isnull);
	bool has_next = !isnull;
	TimestampTz next_run_at = isnull ? 0 : DatumGetTimestampTz(d);

	// The stored next run first (it may be a jittered or late one), then the
	// schedule's fire times after it. A disabled job has none stored: the
	// fire times it would have if enabled now.
	TimestampTz *times = static_cast<TimestampTz *>(palloc(sizeof(TimestampTz) * (n + 1)));
	int found = 0;
	if (n > 0 && has_next) {
		times[found++] = next_run_at;
		found += foreman::pg::next_fire_times(js, next_run_at, n - 1, times + 1);
	} else if (n > 0 && !job.enabled && strcmp(js.schedule_kind, "after") != 0) {
		ereport(NOTICE, (errmsg("job \"%s\" is disabled; these are the fire times it would have if enabled now",
		                        name)));
		found = foreman::pg::next_fire_times(js, GetCurrentTimestamp(), n, times);
	}
	notice_upstreams(job.job_id, name);
	for (int i = 0; i < found; i++) {
		Datum value = TimestampTzGetDatum(times[i]);
		bool null = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &null);
	}
	elevation_end(&e);
	return (Datum)0;
}
