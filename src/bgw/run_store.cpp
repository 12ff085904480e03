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
}

namespace foreman::bgw {

namespace {

// Prepared statements, kept for the life of the process (SPI_keepplan); the
// plan cache replans them if the catalog changes under them.
struct Statement {
	const char *sql;
	int nargs;
	Oid argtypes[14];
	SPIPlanPtr plan;
};

Statement tier_state_stmt = {
	"SELECT (extract(epoch FROM t.tick) * 1000)::int8, t.enabled,"
	"       (SELECT least(min(j.next_run_at), min(j.retry_at)) FROM foreman.job j"
	"         WHERE j.tier_id = t.tier_id AND j.enabled),"
	"       EXISTS (SELECT 1 FROM foreman.job j WHERE j.tier_id = t.tier_id AND j.enabled"
	"                  AND j.run_requested_at IS NOT NULL), t.concurrency"
	"  FROM foreman.tier t WHERE t.tier_id = $1",
	1, {INT4OID}, nullptr};

// Everything a run needs to know about a job (DueJob), for load_due_stmt and
// load_job_stmt; read by read_job_row().
#define JOB_ROW_SQL \
	"SELECT j.job_id, j.revision, j.job_name, j.owner,"\
	"       CASE WHEN a.oid IS NULL THEN 'the role that owns the job no longer exists'"\
	"            WHEN NOT a.rolcanlogin THEN format('role \"%s\" that owns the job may not log in', a.rolname)"\
	"            WHEN NOT a.rolsuper AND NOT pg_has_role(a.oid, 'foreman_user', 'USAGE')"\
	"            THEN format('role \"%s\" that owns the job is not a member of foreman_user', a.rolname)"\
	"            WHEN NOT has_database_privilege(a.oid, current_database(), 'CONNECT')"\
	"            THEN format('role \"%s\" that owns the job may not connect to database \"%s\"',"\
	"                        a.rolname, current_database())"\
	"       END, coalesce(a.rolsuper, false),"\
	"       j.command, j.next_run_at, j.run_requested_at,"\
	"       (extract(epoch FROM coalesce(j.timeout, t.default_timeout)) * 1000)::int8,"\
	"       j.schedule, j.schedule_kind, (extract(epoch FROM j.period) * 1000000)::int8, j.time_zone,"\
	"       j.anchor_at, (extract(epoch FROM j.phase) * 1000000)::int8, j.end_at,"\
	"       j.retry_at, j.retry_attempt, j.retries, (extract(epoch FROM j.retry_backoff) * 1000000)::int8,"\
	"       (extract(epoch FROM coalesce(j.retry_backoff_max, j.period, interval '1 hour')) * 1000000)::int8,"\
	"       (extract(epoch FROM j.misfire_grace) * 1000000)::int8, j.coalesce_runs, j.max_catchup, j.overlap,"\
	"       j.last_started_at, j.last_finished_at, j.log_runs, j.max_instances"\
	"  FROM foreman.job j"\
	"  JOIN foreman.tier t ON t.tier_id = j.tier_id"\
	"  LEFT JOIN pg_catalog.pg_authid a ON a.oid = j.owner"

Statement load_due_stmt = {
	JOB_ROW_SQL
	" WHERE j.tier_id = $1 AND j.enabled"
	"   AND (j.next_run_at <= $2 OR j.run_requested_at IS NOT NULL OR j.retry_at <= $2)"
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
// the run is 'crashed', and counts as a failure.
Statement run_crashed_stmt = {
	"WITH c AS ("
	"  UPDATE foreman.job_run SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended',"
	"         message = $2"
	"   WHERE run_id = $1 AND status = 'running'"
	"  RETURNING job_id, run_id, finished_at)"
	"UPDATE foreman.job j SET last_status = 'crashed', last_run_id = c.run_id, last_finished_at = c.finished_at,"
	"       consecutive_failures = j.consecutive_failures + 1"
	"  FROM c WHERE j.job_id = c.job_id",
	2, {INT8OID, TEXTOID}, nullptr};

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
	"         retry_at = NULL, retry_attempt = 0, last_started_at = $6"
	"   WHERE job_id = $1 AND revision = $2 AND enabled AND EXISTS (SELECT FROM l)"
	"  RETURNING job_id, job_name, owner, tier_id)"
	"INSERT INTO foreman.job_run (job_id, job_name, owner, tier_id, pid, status, scheduled_for, started_at, attempt)"
	"SELECT job_id, job_name, owner, tier_id, $7, 'running', $5, $6, $8 FROM j "
	"RETURNING run_id",
	10, {INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID, INT8OID},
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
	"   WHERE job_id = $1 AND revision = $2 AND enabled AND EXISTS (SELECT FROM l)"
	"  RETURNING job_id, job_name, owner, tier_id)"
	"INSERT INTO foreman.job_run (job_id, job_name, owner, tier_id, pid, status, reason, message, scheduled_for,"
	"                             started_at, finished_at)"
	"SELECT job_id, job_name, owner, tier_id, $3, 'skipped', $4, $5, $6, clock_timestamp(), clock_timestamp() FROM j "
	"RETURNING run_id",
	11, {INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, BOOLOID, INT4OID, INT8OID},
	nullptr};

// A run ends. The job's last outcome, failure count, pending retry, and its
// automatic disabling after max_failures consecutive failures.
#define FINISH_JOB_UPDATE                                                                                    \
	"UPDATE foreman.job j"                                                                                   \
	"   SET last_run_id = $1, last_status = $2, last_finished_at = clock_timestamp(),"                       \
	"       consecutive_failures = CASE WHEN $2 = 'succeeded' THEN 0"                                        \
	"                                   WHEN $2 IN ('failed', 'timed_out') THEN j.consecutive_failures + 1" \
	"                                   ELSE j.consecutive_failures END,"                                    \
	"       retry_at = $8, retry_attempt = $9,"                                                              \
	"       enabled = j.enabled AND $10::text IS NULL AND NOT (" DISABLES "),"                               \
	"       next_run_at = CASE WHEN $10::text IS NOT NULL OR " DISABLES " THEN NULL ELSE j.next_run_at END,"  \
	"       disabled_reason = CASE WHEN $10::text IS NOT NULL THEN $10"                                       \
	"            WHEN " DISABLES                                                                              \
	"            THEN format('disabled after %s consecutive failures; last: %s', j.consecutive_failures + 1, $6)" \
	"            ELSE j.disabled_reason END"                                                                 \
	"  FROM r WHERE j.job_id = r.job_id"
#define DISABLES "($2 IN ('failed', 'timed_out') AND j.max_failures IS NOT NULL AND j.consecutive_failures + 1 >= j.max_failures)"

Statement finish_run_stmt = {
	"WITH r AS ("
	"  UPDATE foreman.job_run"
	"     SET status = $2, finished_at = clock_timestamp(), rows_affected = $3, command_tag = $4,"
	"         sqlstate = $5, message = $6, batches = $7"
	"   WHERE run_id = $1"
	"  RETURNING job_id) " FINISH_JOB_UPDATE,
	10, {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID}, nullptr};

// The same for a job whose log_runs does not keep this run's row.
Statement finish_discard_stmt = {
	"WITH r AS (DELETE FROM foreman.job_run WHERE run_id = $1 RETURNING job_id) " FINISH_JOB_UPDATE,
	10, {INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID}, nullptr};

// @reboot jobs are due when their tier's coordinator starts leading.
Statement reboot_stmt = {
	"UPDATE foreman.job SET next_run_at = clock_timestamp()"
	" WHERE tier_id = $1 AND enabled AND schedule_kind = 'reboot'",
	1, {INT4OID}, nullptr};

// The product's own bounded batch, applied to itself. A crashed run counts
// as a failure (towards max_failures); from the second failure in a row the
// job backs off before its next run (retry_backoff * 2^(failures - 1), at
// most an hour), so a job that kills its process does not do so in a loop,
// while one crash (a server crash, a failover) costs no delay.
Statement mark_orphans_stmt = {
	"WITH c AS ("
	"  UPDATE foreman.job_run"
	"     SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended',"
	"         message = format('the process running it (pid %s) ended before the run finished', pid)"
	"   WHERE run_id IN (SELECT run_id FROM foreman.job_run"
	"                     WHERE tier_id = $1 AND status = 'running' AND pid IS DISTINCT FROM $2"
	"                       AND (pid IS NULL OR pid <> ALL ($3))"
	"                     ORDER BY run_id LIMIT 1000 FOR UPDATE SKIP LOCKED)"
	"  RETURNING job_id, run_id, finished_at),"
	" j AS ("
	"  UPDATE foreman.job j"
	"     SET last_status = 'crashed', last_run_id = c.run_id, last_finished_at = c.finished_at,"
	"         consecutive_failures = j.consecutive_failures + 1,"
	"         next_run_at = CASE WHEN j.next_run_at IS NULL OR j.consecutive_failures = 0 THEN j.next_run_at"
	"                            ELSE greatest(j.next_run_at, c.finished_at + least(interval '1 hour',"
	"                                 j.retry_backoff * power(2, least(j.consecutive_failures - 1, 20))))"
	"                       END,"
	"         enabled = j.enabled AND NOT (j.max_failures IS NOT NULL AND j.consecutive_failures + 1 >= j.max_failures),"
	"         disabled_reason = CASE WHEN j.max_failures IS NOT NULL AND j.consecutive_failures + 1 >= j.max_failures"
	"                                THEN format('disabled after %s consecutive failures; last: the run crashed',"
	"                                            j.consecutive_failures + 1)"
	"                                ELSE j.disabled_reason END"
	"    FROM c WHERE j.job_id = c.job_id"
	"  RETURNING 1)"
	"SELECT count(*) FROM c",
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
	state.requested = DatumGetBool(column(0, 4, &isnull));
	state.concurrency = DatumGetInt32(column(0, 5, &isnull));
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
	job->requested = !isnull;
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
	Datum values[10] = {Int64GetDatum(job.job_id),          Int64GetDatum(job.revision),
	                    TimestampTzGetDatum(next_run_at),    BoolGetDatum(clear_request),
	                    TimestampTzGetDatum(scheduled_for), TimestampTzGetDatum(started_at),
	                    Int32GetDatum(MyProcPid),            Int32GetDatum(attempt),
	                    Int32GetDatum(lease_tier),           Int64GetDatum(lease_epoch)};
	char nulls[11] = "          ";
	if (!has_next)
		nulls[2] = 'n';
	execute(begin_run_stmt, values, nulls, false);
	if (SPI_processed == 0)
		return 0;
	bool isnull;
	return DatumGetInt64(column(0, 1, &isnull));
}

void
finish_run(int64 run_id, const char *status, uint64 rows, int32 batches, const char *command_tag,
           const char *sqlstate, const char *message, bool keep_row, bool has_retry, TimestampTz retry_at,
           int32 retry_attempt, const char *disable_reason)
{
	char nulls[11] = "          ";
	Datum values[10];
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = Int64GetDatum((int64)rows);
	values[3] = text_or_null(command_tag, &nulls[3]);
	values[4] = text_or_null(sqlstate, &nulls[4]);
	values[5] = text_or_null(message, &nulls[5]);
	values[6] = Int32GetDatum(batches);
	if (batches < 0)
		nulls[6] = 'n';
	values[7] = TimestampTzGetDatum(retry_at);
	if (!has_retry)
		nulls[7] = 'n';
	values[8] = Int32GetDatum(has_retry ? retry_attempt : 0);
	values[9] = text_or_null(disable_reason, &nulls[9]);
	execute(keep_row ? finish_run_stmt : finish_discard_stmt, values, nulls, false);
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
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(nlive, 1)));
	for (int i = 0; i < nlive; i++)
		elems[i] = Int32GetDatum(live_pids[i]);
	ArrayType *live = construct_array(elems, nlive, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	for (;;) {
		Datum values[3] = {Int32GetDatum(tier_id), Int32GetDatum(MyProcPid), PointerGetDatum(live)};
		execute(mark_orphans_stmt, values, nullptr, false);
		bool isnull;
		int64 n = DatumGetInt64(column(0, 1, &isnull));
		total += n;
		if (n < 1000)
			break;
		CommandCounterIncrement();
	}
	return total;
}

} // namespace foreman::bgw
