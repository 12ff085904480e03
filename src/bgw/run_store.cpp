// run_store.cpp: SQL of the coordinator's bookkeeping, prepared once.
#include "bgw/run_store.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"
#include "common/pg_prng.h"
}

#include "pg/outcome_pg.hpp"
#include "pg/settings.hpp"

namespace foreman::bgw {

namespace {

// Prepared statements, kept for the life of the process (SPI_keepplan); the
// plan cache replans them if the catalog changes under them.
struct Statement {
	const char *sql;
	int nargs;
	Oid argtypes[20];
	SPIPlanPtr plan;
};

Statement tier_state_stmt = {
	"SELECT (extract(epoch FROM t.tick) * 1000)::int8, t.enabled,"
	"       (SELECT least(min(j.next_run_at), min(j.retry_at), min(j.run_requested_at)) FROM foreman.job j"
	"         WHERE j.tier_id = t.tier_id AND j.enabled),"
	"       t.concurrency"
	"  FROM foreman.tier t WHERE t.tier_id = $1",
	1, {INT4OID}, nullptr};

// Whether a role is a superuser or has foreman_admin's privileges; false
// for a role that is gone, and no error when foreman_admin itself was dropped.
#define OWNER_IS_ADMIN(oid, super)                                                                     \
	"(coalesce(" super ", false) OR EXISTS (SELECT FROM pg_catalog.pg_roles ar"                        \
	"  WHERE ar.rolname = 'foreman_admin' AND pg_catalog.pg_has_role(" oid ", ar.oid, 'USAGE')))"

// Everything a run needs to know about a job (DueJob), for load_due_stmt and
// load_job_stmt; read by read_job_row(). The timeout is the job's (or its
// tier's default), capped by the tier's max_user_runtime for owners that are
// not foreman_admin.
#define JOB_ROW_SQL \
	"SELECT j.job_id, j.revision, j.job_name, j.owner,"\
	"       CASE WHEN a.oid IS NULL THEN 'the role that owns the job no longer exists'"\
	"            WHEN NOT a.rolcanlogin THEN format('role \"%s\" that owns the job may not log in', a.rolname)"\
	"            WHEN NOT a.rolsuper AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles ur"\
	"                  WHERE ur.rolname = 'foreman_user' AND pg_catalog.pg_has_role(a.oid, ur.oid, 'USAGE'))"\
	"            THEN format('role \"%s\" that owns the job is not a member of foreman_user', a.rolname)"\
	"            WHEN NOT has_database_privilege(a.oid, current_database(), 'CONNECT')"\
	"            THEN format('role \"%s\" that owns the job may not connect to database \"%s\"',"\
	"                        a.rolname, current_database())"\
	"       END, coalesce(a.rolsuper, false),"\
	"       j.command, j.next_run_at, j.run_requested_at,"\
	"       (extract(epoch FROM least(coalesce(j.timeout, t.default_timeout),"\
	"                                 CASE WHEN NOT x.admin THEN t.max_user_runtime END)) * 1000)::int8,"\
	"       j.schedule, j.schedule_kind, (extract(epoch FROM j.period) * 1000000)::int8, j.time_zone,"\
	"       j.anchor_at, (extract(epoch FROM j.phase) * 1000000)::int8, j.end_at,"\
	"       j.retry_at, j.retry_attempt, j.retries, (extract(epoch FROM j.retry_backoff) * 1000000)::int8,"\
	"       (extract(epoch FROM coalesce(j.retry_backoff_max, j.period, interval '1 hour')) * 1000000)::int8,"\
	"       (extract(epoch FROM j.misfire_grace) * 1000000)::int8, j.coalesce_runs, j.max_catchup, j.overlap,"\
	"       j.last_started_at, j.last_finished_at, j.log_runs, j.max_instances, x.admin,"\
	"       NOT x.admin AND t.max_user_runtime IS NOT NULL"\
	"       AND t.max_user_runtime < coalesce(j.timeout, t.default_timeout, t.max_user_runtime + interval '1 second'),"\
	"       a.rolname"\
	"  FROM foreman.job j"\
	"  JOIN foreman.tier t ON t.tier_id = j.tier_id"\
	"  LEFT JOIN pg_catalog.pg_authid a ON a.oid = j.owner"\
	"  CROSS JOIN LATERAL (SELECT a.oid IS NOT NULL AND " OWNER_IS_ADMIN("a.oid", "a.rolsuper") " AS admin) x"

Statement load_due_stmt = {
	JOB_ROW_SQL
	" WHERE j.tier_id = $1 AND j.enabled"
	"   AND (j.next_run_at <= $2 OR j.run_requested_at <= $2 OR j.retry_at <= $2)"
	" ORDER BY least(j.next_run_at, j.run_requested_at, j.retry_at), j.job_id"
	" LIMIT $3",
	3, {INT4OID, TIMESTAMPTZOID, INT4OID}, nullptr};

Statement load_job_stmt = {JOB_ROW_SQL " WHERE j.job_id = $1", 1, {INT8OID}, nullptr};

// The executor that runs a run of a parallel tier.
Statement run_pid_stmt = {"UPDATE foreman.job_run SET pid = $2 WHERE run_id = $1", 2, {INT8OID, INT4OID}, nullptr};

// A run of a parallel tier that waited for the cluster-wide executor cap.
Statement run_delayed_stmt = {
	"UPDATE foreman.job_run SET reason = 'delayed',"
	"       message = format('waited %s ms for an executor (foreman.max_executors)', $2)"
	" WHERE run_id = $1",
	2, {INT8OID, INT8OID}, nullptr};

// An executor ended without recording its run (it failed before it could):
// the run is 'crashed'; its job's summary follows (apply_pending_summaries).
Statement run_crashed_stmt = {
	"UPDATE foreman.job_run SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended',"
	"       message = $2, summary_pending = true"
	" WHERE run_id = $1 AND status = 'running'",
	2, {INT8OID, TEXTOID}, nullptr};

// The job's row, taken for a change by the coordinator: SKIP LOCKED, so that
// a row its owner holds in an open transaction makes that one job wait and
// never the tier.
#define JOB_ROW_UNLOCKED "job_id = (SELECT lj.job_id FROM foreman.job lj WHERE lj.job_id = $1 FOR UPDATE SKIP LOCKED)"

// A run starts: the job moves on (next fire time, request and pending retry
// consumed) and the run row is written, in one statement.
// Only under the tier's current leadership epoch ($9, $10): the lease row is
// share-locked, so an epoch taken meanwhile waits for this, or this sees it.
#define UNDER_LEASE \
	"  l AS (SELECT 1 FROM foreman.tier_lease WHERE tier_id = $9 AND epoch = $10 FOR SHARE),"
Statement begin_run_stmt = {
	"WITH " UNDER_LEASE
	" j AS ("
	"  UPDATE foreman.job SET next_run_at = $3,"
	"         run_requested_at = CASE WHEN $4 THEN NULL ELSE run_requested_at END,"
	"         retry_at = NULL, retry_attempt = 0, last_started_at = $6, owner_name = coalesce($11, owner_name)"
	"   WHERE " JOB_ROW_UNLOCKED " AND revision = $2 AND enabled AND EXISTS (SELECT FROM l)"
	"  RETURNING job_id, job_name, owner, owner_name, tier_id)"
	"INSERT INTO foreman.job_run (job_id, job_name, owner, owner_name, tier_id, pid, status, scheduled_for, started_at,"
	"                             attempt)"
	"SELECT job_id, job_name, owner, owner_name, tier_id, $7, 'running', $5, $6, $8 FROM j "
	"RETURNING run_id",
	11,
	{INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID, INT8OID,
	 NAMEOID},
	nullptr};

// Starts leading a tier: the next epoch.
Statement take_lease_stmt = {
	"INSERT INTO foreman.tier_lease AS t (tier_id, epoch, leader_pid, since) VALUES ($1, 1, $2, clock_timestamp())"
	" ON CONFLICT (tier_id) DO UPDATE SET epoch = t.epoch + 1, leader_pid = EXCLUDED.leader_pid, since = EXCLUDED.since"
	" RETURNING epoch",
	2, {INT4OID, INT4OID}, nullptr};

// A fire time decided against (misfire, overlap) or folded into another run
// (coalesced, catch-up limit): a 'skipped' row. $7 advances the job when set.
Statement skip_stmt = {
	"WITH l AS (SELECT 1 FROM foreman.tier_lease WHERE tier_id = $10 AND epoch = $11 FOR SHARE),"
	" j AS ("
	"  UPDATE foreman.job SET next_run_at = CASE WHEN $7 THEN $8 ELSE next_run_at END,"
	"         run_requested_at = CASE WHEN $9 THEN NULL ELSE run_requested_at END"
	"   WHERE " JOB_ROW_UNLOCKED " AND revision = $2 AND enabled AND EXISTS (SELECT FROM l)"
	"  RETURNING job_id, job_name, owner, owner_name, tier_id)"
	"INSERT INTO foreman.job_run (job_id, job_name, owner, owner_name, tier_id, pid, status, reason, message,"
	"                             scheduled_for, started_at, finished_at)"
	"SELECT job_id, job_name, owner, owner_name, tier_id, $3, 'skipped', $4, $5, $6, clock_timestamp(),"
	"       clock_timestamp() FROM j "
	"RETURNING run_id",
	11, {INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, BOOLOID, INT4OID, INT8OID},
	nullptr};

// What the summary rule (core::summarize) reads of a job, its row taken
// (SKIP LOCKED: no row when the owner holds it).
Statement summary_job_stmt = {
	"SELECT j.consecutive_failures, j.max_failures, j.retries,"
	"       (extract(epoch FROM j.retry_backoff) * 1000000)::int8,"
	"       (extract(epoch FROM coalesce(j.retry_backoff_max, j.period, interval '1 hour')) * 1000000)::int8,"
	"       j.next_run_at, j.log_runs, " OWNER_IS_ADMIN("j.owner", "a.rolsuper")
	"  FROM foreman.job j LEFT JOIN pg_catalog.pg_authid a ON a.oid = j.owner"
	" WHERE j.job_id = $1"
	"   FOR UPDATE OF j SKIP LOCKED",
	1, {INT8OID}, nullptr};

Statement job_exists_stmt = {"SELECT 1 FROM foreman.job WHERE job_id = $1", 1, {INT8OID}, nullptr};

// A run ends: its row ($11: kept, else dropped once the summary is applied)
// and, when $10 (the job's row was taken), the job's summary.
Statement finish_stmt = {
	"WITH j AS ("
	"  UPDATE foreman.job SET last_run_id = $1, last_status = $2, last_finished_at = $8,"
	"         consecutive_failures = $13, retry_at = $14, retry_attempt = $15,"
	"         enabled = enabled AND $16::text IS NULL,"
	"         disabled_reason = coalesce($16, disabled_reason),"
	"         next_run_at = CASE WHEN $16::text IS NOT NULL THEN NULL ELSE $17 END"
	"   WHERE job_id = $12 AND $10"
	"  RETURNING 1),"
	" r AS ("
	"  UPDATE foreman.job_run SET status = $2, finished_at = $8, rows_affected = $3, command_tag = $4, sqlstate = $5,"
	"         message = $6, batches = $7, reason = coalesce($9, reason), summary_pending = NOT $10"
	"   WHERE run_id = $1 AND ($11 OR NOT $10)"
	"  RETURNING 1),"
	" d AS (DELETE FROM foreman.job_run WHERE run_id = $1 AND NOT $11 AND $10 RETURNING 1)"
	"SELECT (SELECT count(*) FROM j) + (SELECT count(*) FROM r) + (SELECT count(*) FROM d)",
	17,
	{INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, BOOLOID, BOOLOID, INT8OID,
	 INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID, TIMESTAMPTZOID},
	nullptr};

// Runs of the tier whose job summary is still to be applied, oldest first.
Statement pending_stmt = {
	"SELECT run_id, job_id, status, rows_affected, command_tag, sqlstate, message, batches, finished_at, reason,"
	"       attempt"
	"  FROM foreman.job_run WHERE tier_id = $1 AND summary_pending ORDER BY run_id LIMIT $2",
	2, {INT4OID, INT4OID}, nullptr};

// @reboot jobs are due when their tier's coordinator starts leading (those
// whose row an owner holds just now wait for the next start).
Statement reboot_stmt = {
	"UPDATE foreman.job SET next_run_at = clock_timestamp()"
	" WHERE job_id IN (SELECT job_id FROM foreman.job WHERE tier_id = $1 AND enabled AND schedule_kind = 'reboot'"
	"                   FOR UPDATE SKIP LOCKED)",
	1, {INT4OID}, nullptr};

// The product's own bounded batch, applied to itself: runs left 'running' by
// a process that is gone are 'crashed'; their jobs' summaries follow through
// the one rule (apply_pending_summaries).
Statement mark_orphans_stmt = {
	"UPDATE foreman.job_run"
	"   SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended', summary_pending = true,"
	"       message = format('the process running it (pid %s) ended before the run finished', pid)"
	" WHERE run_id IN (SELECT run_id FROM foreman.job_run"
	"                   WHERE tier_id = $1 AND status = 'running' AND pid IS DISTINCT FROM $2"
	"                     AND (pid IS NULL OR pid <> ALL ($3))"
	"                   ORDER BY run_id LIMIT 1000 FOR UPDATE SKIP LOCKED)",
	3, {INT4OID, INT4OID, INT4ARRAYOID}, nullptr};

// This process's leadership: the tier and the epoch it leads under.
int32 lease_tier = 0;
int64 lease_epoch = 0;

SPIPlanPtr
plan_of(Statement &stmt)
{
	if (!stmt.plan) {
		// Generic plans: planned once, and never re-planned on statistics
		// gathered while, say, most jobs were disabled (a custom plan then
		// picks the partial due-index over the primary key).
		SPIPlanPtr plan = SPI_prepare_cursor(stmt.sql, stmt.nargs, stmt.argtypes, CURSOR_OPT_GENERIC_PLAN);
		if (!plan)
			elog(ERROR, "pg_foreman: preparing bookkeeping statement failed: %s",
			     SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "pg_foreman: keeping bookkeeping statement failed");
		stmt.plan = plan;
	}
	return stmt.plan;
}

int
execute(Statement &stmt, Datum *values, const char *nulls, bool read_only, long limit = 0)
{
	int rc = SPI_execute_plan(plan_of(stmt), values, nulls, read_only, limit);
	if (rc < 0)
		elog(ERROR, "pg_foreman: bookkeeping statement failed: %s", SPI_result_code_string(rc));
	return rc;
}

Datum
column(int row, int col, bool *isnull)
{
	if (!SPI_tuptable || (uint64)row >= SPI_processed || col < 1 || col > SPI_tuptable->tupdesc->natts)
		elog(ERROR, "pg_foreman: bookkeeping statement returned %llu rows; row %d, column %d was read",
		     (unsigned long long)SPI_processed, row, col);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

char *
text_column(int row, int col)
{
	bool isnull;
	Datum d = column(row, col, &isnull);
	return isnull ? nullptr : TextDatumGetCString(d);
}

Datum
text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum)0;
}

void
set_local(const char *name, const char *value)
{
	(void)set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

} // namespace

void
internal_xact_begin(bool durable)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	// The bookkeeping's own characteristics, whatever a job's SET SESSION
	// CHARACTERISTICS or the database's defaults say: never read-only, never a
	// SERIALIZABLE DEFERRABLE wait for a safe snapshot. Set before the first
	// snapshot is taken.
	XactIsoLevel = XACT_READ_COMMITTED;
	XactReadOnly = false;
	XactDeferrable = false;
	set_local("search_path", "pg_catalog, pg_temp");
	if (!durable)
		set_local("synchronous_commit", "off");
	set_local("lock_timeout", "1s");
	set_local("statement_timeout", "0");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
internal_xact_commit()
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	Assert(CurrentMemoryContext == TopMemoryContext);
}

TierState
read_tier_state(int32 tier_id)
{
	TierState state{};
	Datum values[1] = {Int32GetDatum(tier_id)};
	execute(tier_state_stmt, values, nullptr, true, 1);
	if (SPI_processed == 0)
		return state;
	bool isnull;
	state.exists = true;
	state.tick_ms = DatumGetInt64(column(0, 1, &isnull));
	state.enabled = DatumGetBool(column(0, 2, &isnull));
	Datum next = column(0, 3, &isnull);
	state.has_next_run = !isnull;
	state.next_run_at = isnull ? 0 : DatumGetTimestampTz(next);
	state.concurrency = DatumGetInt32(column(0, 4, &isnull));
	return state;
}

// Reads row `row` of the last load_due/load_job result into a DueJob
// (palloc'd in the current context).
DueJob *
read_job_row(int row, TimestampTz now)
{
	bool isnull;
	DueJob *job = static_cast<DueJob *>(palloc0(sizeof(DueJob)));
	memset(job, 0, sizeof *job);
	job->job_id = DatumGetInt64(column(row, 1, &isnull));
	job->revision = DatumGetInt64(column(row, 2, &isnull));
	job->job_name = text_column(row, 3);
	job->owner = DatumGetObjectId(column(row, 4, &isnull));
	job->owner_problem = text_column(row, 5);
	job->owner_is_superuser = DatumGetBool(column(row, 6, &isnull));
	job->command = text_column(row, 7);
	Datum d = column(row, 8, &isnull);
	job->has_next_run = !isnull;
	job->next_run_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = column(row, 9, &isnull);
	job->requested = !isnull && DatumGetTimestampTz(d) <= now;
	job->requested_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = column(row, 10, &isnull);
	job->timeout_ms = isnull ? 0 : DatumGetInt64(d);
	job->schedule.schedule = text_column(row, 11);
	job->schedule.schedule_kind = text_column(row, 12);
	d = column(row, 13, &isnull);
	job->schedule.period_us = isnull ? 0 : DatumGetInt64(d);
	job->schedule.time_zone = text_column(row, 14);
	job->schedule.anchor_at = DatumGetTimestampTz(column(row, 15, &isnull));
	d = column(row, 16, &isnull);
	job->schedule.phase_us = isnull ? 0 : DatumGetInt64(d);
	d = column(row, 17, &isnull);
	job->schedule.has_end_at = !isnull;
	job->schedule.end_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = column(row, 18, &isnull);
	job->retry_due = !isnull && DatumGetTimestampTz(d) <= now;
	job->retry_at = isnull ? 0 : DatumGetTimestampTz(d);
	job->retry_attempt = DatumGetInt32(column(row, 19, &isnull));
	job->retries = DatumGetInt32(column(row, 20, &isnull));
	job->retry_backoff_us = DatumGetInt64(column(row, 21, &isnull));
	job->retry_backoff_max_us = DatumGetInt64(column(row, 22, &isnull));
	d = column(row, 23, &isnull);
	job->policy.has_misfire_grace = !isnull;
	job->policy.misfire_grace_us = isnull ? 0 : DatumGetInt64(d);
	job->policy.coalesce = DatumGetBool(column(row, 24, &isnull));
	job->policy.max_catchup = DatumGetInt32(column(row, 25, &isnull));
	job->policy.overlap = text_column(row, 26);
	Datum started = column(row, 27, &isnull);
	bool started_null = isnull;
	Datum finished = column(row, 28, &isnull);
	job->policy.has_last_run = !started_null && !isnull;
	job->policy.last_started = started_null ? 0 : DatumGetTimestampTz(started);
	job->policy.last_finished = isnull ? 0 : DatumGetTimestampTz(finished);
	job->log_runs = text_column(row, 29);
	d = column(row, 30, &isnull);
	job->max_instances = isnull ? 1 : DatumGetInt32(d);
	job->owner_is_admin = DatumGetBool(column(row, 31, &isnull));
	d = column(row, 32, &isnull);
	job->timeout_is_tier_cap = !isnull && DatumGetBool(d);
	d = column(row, 33, &isnull);
	job->owner_name = isnull ? nullptr : pstrdup(NameStr(*DatumGetName(d)));
	return job;
}

List *
load_due_jobs(int32 tier_id, TimestampTz now, int limit, MemoryContext into)
{
	Datum values[3] = {Int32GetDatum(tier_id), TimestampTzGetDatum(now), Int32GetDatum(limit)};
	execute(load_due_stmt, values, nullptr, true);
	// SPI's tuple table is gone at SPI_finish and the transaction's memory at
	// commit: copy into the caller's context.
	MemoryContext old = MemoryContextSwitchTo(into);
	List *jobs = NIL;
	for (uint64 i = 0; i < SPI_processed; i++)
		jobs = lappend(jobs, read_job_row((int)i, now));
	MemoryContextSwitchTo(old);
	return jobs;
}

DueJob *
load_job(int64 job_id, MemoryContext into)
{
	Datum values[1] = {Int64GetDatum(job_id)};
	execute(load_job_stmt, values, nullptr, true);
	if (SPI_processed == 0)
		return nullptr;
	MemoryContext old = MemoryContextSwitchTo(into);
	DueJob *job = read_job_row(0, GetCurrentTimestamp());
	MemoryContextSwitchTo(old);
	return job;
}

void
set_run_pid(int64 run_id)
{
	Datum values[2] = {Int64GetDatum(run_id), Int32GetDatum(MyProcPid)};
	execute(run_pid_stmt, values, nullptr, false);
}

void
mark_run_delayed(int64 run_id, int64 waited_ms)
{
	Datum values[2] = {Int64GetDatum(run_id), Int64GetDatum(waited_ms)};
	execute(run_delayed_stmt, values, nullptr, false);
}

void
mark_run_crashed(int64 run_id, const char *message)
{
	Datum values[2] = {Int64GetDatum(run_id), CStringGetTextDatum(message)};
	execute(run_crashed_stmt, values, nullptr, false);
}

int64
begin_run(const DueJob &job, bool has_next, TimestampTz next_run_at, bool clear_request, TimestampTz scheduled_for,
          TimestampTz started_at, int32 attempt)
{
	NameData owner_name;
	if (job.owner_name)
		namestrcpy(&owner_name, job.owner_name);
	Datum values[11] = {Int64GetDatum(job.job_id),          Int64GetDatum(job.revision),
	                    TimestampTzGetDatum(next_run_at),    BoolGetDatum(clear_request),
	                    TimestampTzGetDatum(scheduled_for), TimestampTzGetDatum(started_at),
	                    Int32GetDatum(MyProcPid),            Int32GetDatum(attempt),
	                    Int32GetDatum(lease_tier),           Int64GetDatum(lease_epoch),
	                    NameGetDatum(&owner_name)};
	char nulls[12] = "           ";
	if (!has_next)
		nulls[2] = 'n';
	if (!job.owner_name)
		nulls[10] = 'n';
	execute(begin_run_stmt, values, nulls, false);
	if (SPI_processed == 0)
		return 0;
	bool isnull;
	return DatumGetInt64(column(0, 1, &isnull));
}

namespace {

TimestampTz
timestamp_or(Datum d, bool isnull, TimestampTz otherwise)
{
	return isnull ? otherwise : DatumGetTimestampTz(d);
}

} // namespace

bool
finish_run(int64 run_id, int64 job_id, const RunOutcome &o)
{
	// The job's row, unless its owner holds it.
	Datum jvalues[1] = {Int64GetDatum(job_id)};
	execute(summary_job_stmt, jvalues, nullptr, false);
	bool applied = SPI_processed == 1;
	bool keep_row = true;
	pg::JobSummaryPg summary{};
	if (applied) {
		bool isnull;
		pg::JobCountersPg job{};
		job.consecutive_failures = DatumGetInt32(column(0, 1, &isnull));
		Datum d = column(0, 2, &isnull);
		job.has_max_failures = !isnull;
		job.max_failures = isnull ? 0 : DatumGetInt32(d);
		job.retries = DatumGetInt32(column(0, 3, &isnull));
		job.retry_backoff_us = DatumGetInt64(column(0, 4, &isnull));
		job.retry_backoff_max_us = DatumGetInt64(column(0, 5, &isnull));
		d = column(0, 6, &isnull);
		job.has_next_run = !isnull;
		job.next_run_at = isnull ? 0 : DatumGetTimestampTz(d);
		const char *log_runs = text_column(0, 7);
		bool owner_is_admin = DatumGetBool(column(0, 8, &isnull));
		job.min_retry_delay_us = owner_is_admin ? 0 : (int64)guc_min_user_interval_ms * 1000;
		keep_row = strcmp(log_runs, "all") == 0 ||
		           (strcmp(log_runs, "failures") == 0 && o.status != core::RunStatus::Succeeded);
		pg::RunEndPg run{o.status, o.attempt, o.finished_at, o.stopping, o.owner_problem, o.message};
		summary = pg::summarize_run(run, job);
	} else {
		// Locked by its owner - or gone, and then there is nothing to summarize.
		execute(job_exists_stmt, jvalues, nullptr, false);
		applied = SPI_processed == 0;
	}

	Datum values[17];
	char nulls[18];
	memset(nulls, ' ', 17);
	nulls[17] = '\0';
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(pg::run_status_name(o.status));
	values[2] = Int64GetDatum((int64)o.rows);
	values[3] = text_or_null(o.command_tag, &nulls[3]);
	values[4] = text_or_null(o.sqlstate, &nulls[4]);
	values[5] = text_or_null(o.message, &nulls[5]);
	values[6] = Int32GetDatum(o.batches);
	if (o.batches < 0)
		nulls[6] = 'n';
	values[7] = TimestampTzGetDatum(o.finished_at);
	values[8] = text_or_null(o.reason, &nulls[8]);
	values[9] = BoolGetDatum(applied);
	values[10] = BoolGetDatum(keep_row);
	values[11] = Int64GetDatum(job_id);
	values[12] = Int32GetDatum(summary.consecutive_failures);
	values[13] = TimestampTzGetDatum(summary.retry_at);
	if (!summary.has_retry)
		nulls[13] = 'n';
	values[14] = Int32GetDatum(summary.retry_attempt);
	values[15] = text_or_null(summary.disabled_reason, &nulls[15]);
	values[16] = TimestampTzGetDatum(summary.next_run_at);
	if (!summary.has_next_run)
		nulls[16] = 'n';
	execute(finish_stmt, values, nulls, false);
	return applied;
}

int64
apply_pending_summaries(int32 tier_id)
{
	constexpr int kBatch = 64;
	Datum values[2] = {Int32GetDatum(tier_id), Int32GetDatum(kBatch)};
	execute(pending_stmt, values, nullptr, false);
	uint64 n = SPI_processed;
	if (n == 0)
		return 0;
	// The result is overwritten by each finish: copy what it says first.
	SPITupleTable *pending = SPI_tuptable;
	SPI_tuptable = nullptr;
	int64 still_pending = 0;
	for (uint64 i = 0; i < n; i++) {
		HeapTuple row = pending->vals[i];
		TupleDesc desc = pending->tupdesc;
		auto text_at = [&](int col) -> char * {
			bool isnull;
			Datum d = SPI_getbinval(row, desc, col, &isnull);
			return isnull ? nullptr : TextDatumGetCString(d);
		};
		bool isnull;
		int64 run_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		int64 job_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
		RunOutcome o{};
		o.status = pg::parse_run_status(text_at(3));
		Datum d = SPI_getbinval(row, desc, 4, &isnull);
		o.rows = isnull ? 0 : (uint64)DatumGetInt64(d);
		o.command_tag = text_at(5);
		o.sqlstate = text_at(6);
		o.message = text_at(7);
		d = SPI_getbinval(row, desc, 8, &isnull);
		o.batches = isnull ? -1 : DatumGetInt32(d);
		o.finished_at = timestamp_or(SPI_getbinval(row, desc, 9, &isnull), isnull, GetCurrentTimestamp());
		o.reason = text_at(10);
		o.attempt = DatumGetInt32(SPI_getbinval(row, desc, 11, &isnull));
		if (o.reason && strcmp(o.reason, "owner check") == 0)
			o.owner_problem = o.message;
		if (!finish_run(run_id, job_id, o))
			still_pending++;
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freetuptable(pending);
	return still_pending + (n == kBatch ? 1 : 0);
}

int64
record_skipped(const DueJob &job, TimestampTz scheduled_for, const char *reason, const char *message, bool advance,
               bool has_next, TimestampTz next_run_at, bool clear_request)
{
	char nulls[12] = "           ";
	Datum values[11];
	values[0] = Int64GetDatum(job.job_id);
	values[1] = Int64GetDatum(job.revision);
	values[2] = Int32GetDatum(MyProcPid);
	values[3] = CStringGetTextDatum(reason);
	values[4] = text_or_null(message, &nulls[4]);
	values[5] = TimestampTzGetDatum(scheduled_for);
	values[6] = BoolGetDatum(advance);
	values[7] = TimestampTzGetDatum(next_run_at);
	if (!has_next)
		nulls[7] = 'n';
	values[8] = BoolGetDatum(clear_request);
	values[9] = Int32GetDatum(lease_tier);
	values[10] = Int64GetDatum(lease_epoch);
	execute(skip_stmt, values, nulls, false);
	if (SPI_processed == 0)
		return 0;
	bool isnull;
	return DatumGetInt64(column(0, 1, &isnull));
}

int64
take_lease(int32 tier_id)
{
	Datum values[2] = {Int32GetDatum(tier_id), Int32GetDatum(MyProcPid)};
	execute(take_lease_stmt, values, nullptr, false);
	bool isnull;
	lease_tier = tier_id;
	lease_epoch = DatumGetInt64(column(0, 1, &isnull));
	return lease_epoch;
}

void
mark_reboot_jobs_due(int32 tier_id)
{
	Datum values[1] = {Int32GetDatum(tier_id)};
	execute(reboot_stmt, values, nullptr, false);
}

int64
mark_orphaned_runs(int32 tier_id, const int32 *live_pids, int nlive)
{
	int64 total = 0;
	// (Each batch's summaries are applied by apply_pending_summaries.)
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(nlive, 1)));
	for (int i = 0; i < nlive; i++)
		elems[i] = Int32GetDatum(live_pids[i]);
	ArrayType *live = construct_array(elems, nlive, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	for (;;) {
		Datum values[3] = {Int32GetDatum(tier_id), Int32GetDatum(MyProcPid), PointerGetDatum(live)};
		execute(mark_orphans_stmt, values, nullptr, false);
		int64 n = (int64)SPI_processed;
		total += n;
		if (n < 1000)
			break;
		CommandCounterIncrement();
	}
	return total;
}

} // namespace foreman::bgw
