// run_end.cpp: how runs end - the record of a run's outcome and its job's
// summary (core::summarize), summaries that waited for a job's row, and the
// runs a process left 'running' when it ended.
#include "bgw/events.hpp"
#include "bgw/run_store.hpp"
#include "bgw/run_store_detail.hpp"
#include "bgw/shmem.hpp"
#include "bgw/statements.hpp"
#include "pg/outcome_pg.hpp"
#include "pg/roles.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {
// ---------------------------------------------------------------------------
// How runs end

// What the summary rule (core::summarize) and the run's event read of a job,
// its row taken: SKIP LOCKED (no row when the owner holds it). A 1.0 catalog
// has no summary_pending to wait in: there the row is waited for
// (lock_timeout), as 1.0 did.
const char *const kSummaryColumns[] = {"consecutive_failures", "max_failures", "retries", "retry_backoff_us",
                                       "retry_backoff_max_us", "next_run_at", "log_runs", "notify",
                                       "owner", "job_name", "tier", "chain_id", "has_downstreams", "last_status"};
enum SummaryColumn {
	kFailures, kMaxFailures, kRetries, kBackoffUs, kBackoffMaxUs, kSummaryNextRunAt, kSummaryLogRuns, kSummaryNotify,
	kSummaryOwner, kSummaryJobName, kSummaryTier, kSummaryChainId, kHasDownstreams, kSummaryLastStatus
};
#define SUMMARY_JOB_SQL(NOTIFY, CHAIN, LOCK)                                                                   \
	"SELECT j.consecutive_failures, j.max_failures, j.retries,"                                               \
	"       (extract(epoch FROM j.retry_backoff) * 1000000)::int8 AS retry_backoff_us,"                      \
	"       (extract(epoch FROM coalesce(j.retry_backoff_max, j.period, interval '1 hour')) * 1000000)::int8" \
	"         AS retry_backoff_max_us,"                                                                       \
	"       j.next_run_at, j.log_runs, " NOTIFY " AS notify, j.owner, j.job_name, t.name AS tier, j.last_status," CHAIN \
	"  FROM foreman.job j JOIN foreman.tier t ON t.tier_id = j.tier_id"                                       \
	" WHERE j.job_id = $1"                                                                                    \
	"   FOR UPDATE OF j" LOCK
Statement summary_job_stmt = {
	SUMMARY_JOB_SQL("j.notify",
	                " (SELECT r.chain_id FROM foreman.job_run r WHERE r.run_id = $2) AS chain_id,"
	                " EXISTS (SELECT FROM foreman.job_dependency d WHERE d.upstream_id = j.job_id) AS has_downstreams",
	                " SKIP LOCKED"),
	SUMMARY_JOB_SQL("'failures'::text", " NULL::int8 AS chain_id, false AS has_downstreams", ""), 2,
	{INT8OID, INT8OID}, kSummaryColumns, 14};

// A run ended for good (no retry pending) in a pipeline: its downstreams
// learn of it (the one rule of chains, foreman._chain_advance).
Statement chain_advance_stmt = {"SELECT foreman._chain_advance($1)", nullptr, 1, {INT8OID}, nullptr, 0};

Statement job_exists_stmt = {"SELECT 1 FROM foreman.job WHERE job_id = $1", nullptr, 1, {INT8OID}, nullptr, 0};

// A run ends: its row ($11: kept, else dropped once the summary is applied)
// and, when $10 (the job's row was taken), the job's summary - with the
// job's counters of finished runs (and of the fire times a crash back-off
// passes over, $19), which never decrease.
#define FINISH_COUNTERS                                                                                         \
	", runs_succeeded = runs_succeeded + ($2 = 'succeeded')::int, runs_failed = runs_failed + ($2 = 'failed')::int," \
	"  runs_timed_out = runs_timed_out + ($2 = 'timed_out')::int,"                                              \
	"  runs_cancelled = runs_cancelled + ($2 = 'cancelled')::int, runs_crashed = runs_crashed + ($2 = 'crashed')::int," \
	"  runs_skipped = runs_skipped + ($19 IS NOT NULL)::int + ($2 = 'skipped')::int,"                            \
	"  last_succeeded_at = CASE WHEN $2 = 'succeeded' THEN $8 ELSE last_succeeded_at END"
#define FINISH_SQL(PENDING, RETRY_CHAIN, COUNT)                                                                   \
	"WITH j AS ("                                                                                                 \
	"  UPDATE foreman.job SET last_run_id = $1, last_status = $2, last_finished_at = $8,"                         \
	"         last_started_at = coalesce($20, last_started_at),"                                                  \
	"         consecutive_failures = $13, retry_at = $14, retry_attempt = $15" RETRY_CHAIN COUNT ","              \
	"         enabled = enabled AND $16::text IS NULL,"                                                           \
	"         disabled_reason = coalesce($16, disabled_reason),"                                                  \
	"         next_run_at = CASE WHEN $16::text IS NOT NULL THEN NULL ELSE $17 END"                               \
	"   WHERE job_id = $12 AND $10"                                                                               \
	"  RETURNING 1),"                                                                                             \
	" r AS ("                                                                                                     \
	"  UPDATE foreman.job_run SET status = $2, finished_at = $8, rows_affected = $3, command_tag = $4, sqlstate = $5," \
	"         message = $6, batches = $7, reason = coalesce($9, reason), started_at = coalesce($20, started_at)"     \
	PENDING                                                                                                       \
	"   WHERE run_id = $1 AND ($11 OR NOT $10)"                                                                   \
	"  RETURNING 1),"                                                                                             \
	" d AS (DELETE FROM foreman.job_run WHERE run_id = $1 AND NOT $11 AND $10 RETURNING 1),"                      \
	" b AS (INSERT INTO foreman.job_run (job_id, job_name, owner, tier_id, pid, status, reason, message,"         \
	"                                    scheduled_for, started_at, finished_at)"                                 \
	"       SELECT job_id, job_name, owner, tier_id, pg_backend_pid(), 'skipped', 'crash back-off',"               \
	"              format('the job crashed %s times in a row: its fire times from %s to %s are skipped', $13, $19,"\
	"                     $17), $19, clock_timestamp(), clock_timestamp()"                                         \
	"         FROM foreman.job WHERE job_id = $12 AND $10 AND $19 IS NOT NULL RETURNING 1)"                        \
	"SELECT (SELECT count(*) FROM j) + (SELECT count(*) FROM r) + (SELECT count(*) FROM d) + (SELECT count(*) FROM b)"
Statement finish_stmt = {
	FINISH_SQL(", summary_pending = NOT $10", ", retry_chain_id = $18", FINISH_COUNTERS), FINISH_SQL("", "", ""), 20,
	{INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, BOOLOID, BOOLOID, INT8OID,
	 INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID},
	nullptr, 0};

const char *const kPendingColumns[] = {"summary_pending"};

// A plain success (RunOutcome::plain): its summary is a success's - no
// failure count, retry, back-off, event, downstream or dropped row - so
// one statement records it, without reading the job first. The job's row is
// taken SKIP LOCKED as finish_stmt does ($8: its summary waits otherwise).
Statement finish_plain_stmt = {
	"WITH j AS ("
	"  UPDATE foreman.job SET last_run_id = $1, last_status = 'succeeded', last_finished_at = $3,"
	"         last_started_at = coalesce($4, last_started_at), consecutive_failures = 0,"
	"         runs_succeeded = runs_succeeded + 1, last_succeeded_at = $3"
	"   WHERE job_id = (SELECT lj.job_id FROM foreman.job lj WHERE lj.job_id = $2 FOR UPDATE SKIP LOCKED)"
	"  RETURNING 1)"
	"UPDATE foreman.job_run SET status = 'succeeded', finished_at = $3, started_at = coalesce($4, started_at),"
	"       rows_affected = $5, command_tag = $6, batches = $7,"
	"       summary_pending = NOT EXISTS (SELECT FROM j) AND EXISTS (SELECT FROM foreman.job WHERE job_id = $2)"
	" WHERE run_id = $1"
	" RETURNING summary_pending",
	nullptr, 7, {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID, INT4OID}, kPendingColumns, 1};

// A run's row as recorded, to apply its job's summary later.
const char *const kRunColumns[] = {"run_id", "job_id", "status", "rows_affected", "command_tag", "sqlstate",
                                   "message", "batches", "finished_at", "reason", "attempt"};
enum RunColumn { kRunId, kRunJobId, kStatus, kRows, kCommandTag, kSqlstate, kMessage, kBatches, kFinishedAt, kReason,
                 kAttempt };
#define RUN_COLUMNS_SQL                                                                                     \
	" run_id, job_id, status, rows_affected, command_tag, sqlstate, message, batches, finished_at, reason," \
	" attempt"

// Runs of the tier whose job summary is still to be applied, oldest first
// (a 1.1 catalog; a 1.0 one never leaves any).
Statement pending_stmt = {
	"SELECT" RUN_COLUMNS_SQL " FROM foreman.job_run WHERE tier_id = $1 AND summary_pending ORDER BY run_id LIMIT $2",
	nullptr, 2, {INT4OID, INT4OID}, kRunColumns, 11};

// The product's own bounded batch, applied to itself: runs left 'running' by
// a process that is gone are 'crashed'; their jobs' summaries follow.
Statement mark_orphans_stmt = {
	"WITH c AS (SELECT run_id, pid, started_at FROM foreman.job_run"
	"            WHERE tier_id = $1 AND status = 'running' AND pid IS DISTINCT FROM $2"
	"              AND (pid IS NULL OR pid <> ALL ($3)) AND run_id <> ALL ($4)"
	"            ORDER BY run_id LIMIT 1000 FOR UPDATE SKIP LOCKED),"
	// A process runs one job at a time, in the order their starts were
	// recorded: of its runs, the first may have been running; those after
	// it were queued behind it, never started. A run no process had taken
	// was waiting for an executor. (A process's runs beyond these 1000 would
	// be taken for its first; a batch holds far fewer.) That is known only
	// while every commit of that process is: a run recorded before the
	// server became writable ($5: a crash-restart, a promotion) may have
	// started, its start's evidence (the claim, the end of the run before it:
	// asynchronous commits) lost with the server or never replicated. Those
	// are 'crashed' too, reason 'start unknown': never called not run.
	"     o AS (SELECT run_id, pid IS NOT NULL AND run_id = min(run_id) OVER (PARTITION BY pid) AS ran,"
	"                  started_at < $5 AS earlier_life FROM c)"
	"UPDATE foreman.job_run r"
	"   SET status = CASE WHEN o.ran OR o.earlier_life THEN 'crashed' ELSE 'skipped' END,"
	"       finished_at = clock_timestamp(),"
	"       reason = CASE WHEN o.ran THEN 'process ended' WHEN o.earlier_life THEN 'start unknown' ELSE 'not started' END,"
	"       message = CASE WHEN o.ran THEN format('the process running it (pid %s) ended before the run finished', r.pid)"
	"                      WHEN o.earlier_life THEN 'its start was recorded with others in one commit; the server stopped"
	" (or another server took over) before whether it began was on disk: it may have run, and is not run again'"
	"                      WHEN r.pid IS NULL THEN 'it was waiting for an executor when the process that recorded it"
	" ended: it did not run'"
	"                      ELSE format('its start was recorded with others in one commit, and the process (pid %s)"
	" ended before it started it: it did not run', r.pid) END"
	"  FROM o WHERE r.run_id = o.run_id"
	" RETURNING r.run_id, r.job_id, r.status, r.rows_affected, r.command_tag, r.sqlstate, r.message, r.batches,"
	"           r.finished_at, r.reason, r.attempt",
	nullptr, 5, {INT4OID, INT4OID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID}, kRunColumns, 11};

// An executor ended without recording its run (it failed before it could).
Statement run_crashed_stmt = {
	"UPDATE foreman.job_run SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended',"
	"       message = $2"
	" WHERE run_id = $1 AND status = 'running'"
	" RETURNING" RUN_COLUMNS_SQL,
	nullptr, 2, {INT8OID, TEXTOID}, kRunColumns, 11};


// The run row of run_crashed/mark_orphans/pending (row `row`) as an outcome.
RunOutcome
outcome_of_row(Statement &s, uint64 row, int64 *run_id, int64 *job_id)
{
	bool isnull;
	RunOutcome o{};
	*run_id = int64_column(s, row, kRunId, 0);
	*job_id = int64_column(s, row, kRunJobId, 0);
	o.status = pg::parse_run_status(text_column(s, row, kStatus));
	o.rows = (uint64)int64_column(s, row, kRows, 0);
	o.command_tag = text_column(s, row, kCommandTag);
	o.sqlstate = text_column(s, row, kSqlstate);
	o.message = text_column(s, row, kMessage);
	Datum d = column(s, row, kBatches, &isnull);
	o.batches = isnull ? -1 : DatumGetInt32(d);
	o.finished_at = timestamp_column(s, row, kFinishedAt, &isnull);
	if (isnull)
		o.finished_at = GetCurrentTimestamp();
	o.reason = text_column(s, row, kReason);
	o.attempt = DatumGetInt32(column(s, row, kAttempt, &isnull));
	if (o.reason && strcmp(o.reason, "owner check") == 0)
		o.owner_problem = o.message;
	o.start_unknown = o.reason && strcmp(o.reason, "start unknown") == 0;
	return o;
}

// Finishes every run of the last result (crashed ones, pending ones); the
// result is copied first, as each finish runs statements of its own.
// Returns how many summaries are still pending.
int64
finish_runs_of_result(Statement &s, uint64 n)
{
	int64 *run_ids = static_cast<int64 *>(palloc(sizeof(int64) * Max(n, 1)));
	int64 *job_ids = static_cast<int64 *>(palloc(sizeof(int64) * Max(n, 1)));
	RunOutcome *outcomes = static_cast<RunOutcome *>(palloc(sizeof(RunOutcome) * Max(n, 1)));
	for (uint64 i = 0; i < n; i++)
		outcomes[i] = outcome_of_row(s, i, &run_ids[i], &job_ids[i]);
	int64 pending = 0;
	for (uint64 i = 0; i < n; i++) {
		CHECK_FOR_INTERRUPTS();
		if (!finish_run(run_ids[i], job_ids[i], outcomes[i]))
			pending++;
	}
	return pending;
}

// Whether a run's end raises an event for a job with that notify setting.
bool
raises_event(Notify notify, core::RunStatus status, bool disables)
{
	bool failure = status == core::RunStatus::Failed || status == core::RunStatus::TimedOut ||
	               status == core::RunStatus::Crashed;
	return disables || (notify == Notify::All) || (notify == Notify::Failures && failure);
}

// The job's summary (core::summarize) from the row summary_job_stmt took.
pg::JobSummaryPg
summarize_locked_job(const RunOutcome &o, const char **log_runs)
{
	bool isnull;
	Statement &s = summary_job_stmt;
	pg::JobCountersPg job{};
	job.consecutive_failures = DatumGetInt32(column(s, 0, kFailures, &isnull));
	Datum d = column(s, 0, kMaxFailures, &isnull);
	job.has_max_failures = !isnull;
	job.max_failures = isnull ? 0 : DatumGetInt32(d);
	job.retries = DatumGetInt32(column(s, 0, kRetries, &isnull));
	job.retry_backoff_us = int64_column(s, 0, kBackoffUs, 0);
	job.retry_backoff_max_us = int64_column(s, 0, kBackoffMaxUs, 0);
	job.next_run_at = timestamp_column(s, 0, kSummaryNextRunAt, &isnull);
	job.has_next_run = !isnull;
	*log_runs = text_column(s, 0, kSummaryLogRuns);
	char *last_status = text_column(s, 0, kSummaryLastStatus);
	job.last_crashed = last_status && strcmp(last_status, "crashed") == 0;
	Oid owner = DatumGetObjectId(column(s, 0, kSummaryOwner, &isnull));
	job.min_retry_delay_us = pg::is_foreman_admin(owner) ? 0 : (int64)guc_min_user_interval_ms * 1000;
	pg::RunEndPg run{o.status, o.attempt, o.finished_at, o.stopping, o.start_unknown, o.owner_problem, o.message};
	return pg::summarize_run(run, job);
}

} // namespace

// finish_run for a plain success on a 1.1 catalog; true when its summary
// was applied (or the job is gone).
bool
finish_plain(int64 run_id, int64 job_id, const RunOutcome &o)
{
	bool done;
	if (guc_direct_writes && finish_plain_direct(run_id, job_id, o, &done))
		return done;
	char nulls[8] = "       ";
	Datum values[7] = {Int64GetDatum(run_id),      Int64GetDatum(job_id),       TimestampTzGetDatum(o.finished_at),
	                   TimestampTzGetDatum(o.started_at), Int64GetDatum((int64)o.rows), (Datum)0,
	                   Int32GetDatum(o.batches)};
	if (o.started_at == 0)
		nulls[3] = 'n';
	values[5] = text_or_null(o.command_tag, &nulls[5]);
	if (o.batches < 0)
		nulls[6] = 'n';
	if (execute(finish_plain_stmt, values, nulls, false) == 0)
		return true; // the run's row is gone (its history was trimmed)
	bool isnull;
	return !DatumGetBool(column(finish_plain_stmt, 0, 0, &isnull));
}

bool
finish_plain_in_job(int64 run_id, int64 job_id, const RunOutcome &o, bool *applied)
{
	Assert(o.plain && o.status == core::RunStatus::Succeeded);
	if (!guc_direct_writes || catalog_level() != CatalogLevel::V1_1 || !catalog_level_current())
		return false;
	// The gate as every bookkeeping transaction passes it, without waiting:
	// an update of the extension under way, and the run is recorded after
	// the commit, as other runs are.
	Oid gate = catalog_gate();
	if (!OidIsValid(gate) || !ConditionalLockRelationOid(gate, AccessShareLock))
		return false;
	// The job's lock_timeout is not the bookkeeping's: a row lock is waited
	// for as long as internal_xact_begin lets it be.
	int nest = NewGUCNestLevel();
	(void)set_config_option("lock_timeout", "1s", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	bool done = false;
	bool wrote = finish_plain_direct(run_id, job_id, o, &done);
	AtEOXact_GUC(true, nest);
	if (wrote)
		*applied = done;
	return wrote;
}

bool
finish_run(int64 run_id, int64 job_id, const RunOutcome &o)
{
	if (o.plain && o.status == core::RunStatus::Succeeded && !o.owner_problem &&
	    catalog_level() != CatalogLevel::V1_0)
		return finish_plain(run_id, job_id, o);
	// The job's row, unless its owner holds it.
	Datum jvalues[2] = {Int64GetDatum(job_id), Int64GetDatum(run_id)};
	bool applied = execute(summary_job_stmt, jvalues, nullptr, false) == 1;
	bool keep_row = true;
	bool chained = false; // the run is part of a pipeline: its downstreams learn of it
	int64 chain_id = 0;
	pg::JobSummaryPg summary{};
	if (applied) {
		bool isnull;
		chain_id = int64_column(summary_job_stmt, 0, kSummaryChainId, 0);
		chained = chain_id != 0 || DatumGetBool(column(summary_job_stmt, 0, kHasDownstreams, &isnull));
		const char *log_runs;
		summary = summarize_locked_job(o, &log_runs);
		LogRuns kept = log_runs_of(log_runs);
		keep_row = kept == LogRuns::All || (kept == LogRuns::Failures && o.status != core::RunStatus::Succeeded);
		Notify notify = notify_of(text_column(summary_job_stmt, 0, kSummaryNotify));
		if (raises_event(notify, o.status, summary.disabled_reason != nullptr)) {
			RunEvent e{run_id, job_id, text_column(summary_job_stmt, 0, kSummaryJobName), pg::run_status_name(o.status),
			           o.sqlstate, o.message, text_column(summary_job_stmt, 0, kSummaryTier), summary.disabled_reason};
			notify_run_event(e);
		}
	} else {
		// Locked by its owner - or gone, and then there is nothing to summarize.
		applied = execute(job_exists_stmt, jvalues, nullptr, false) == 0;
	}

	Datum values[20];
	char nulls[21];
	memset(nulls, ' ', 20);
	nulls[20] = '\0';
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
	values[17] = Int64GetDatum(chain_id); // a retry stays in the run's instance
	if (chain_id == 0 || !summary.has_retry)
		nulls[17] = 'n';
	values[18] = TimestampTzGetDatum(summary.backed_off_from);
	if (!summary.backed_off)
		nulls[18] = 'n';
	values[19] = TimestampTzGetDatum(o.started_at);
	if (o.started_at == 0)
		nulls[19] = 'n';
	execute(finish_stmt, values, nulls, false);
	// Retries of an upstream happen before its downstreams decide.
	if (chained && !summary.has_retry && catalog_level() != CatalogLevel::V1_0) {
		Datum cvalues[1] = {Int64GetDatum(run_id)};
		execute(chain_advance_stmt, cvalues, nullptr, false);
		chain_advanced = true;
		// Other runs depend on this outcome: it is committed durably, so that
		// a crash cannot turn an upstream that succeeded (its effects are
		// durable, its commit came first) into a 'crashed' one that skips
		// its downstreams. Outcomes of other runs are committed
		// asynchronously (at worst a crash reports one 'crashed').
		set_local("synchronous_commit", "on");
	}
	return applied;
}

int64
apply_pending_summaries(int32 tier_id)
{
	constexpr int kBatch = 64;
	if (catalog_level() == CatalogLevel::V1_0)
		return 0;
	Datum values[2] = {Int32GetDatum(tier_id), Int32GetDatum(kBatch)};
	uint64 n = execute(pending_stmt, values, nullptr, false);
	if (n == 0)
		return 0;
	return finish_runs_of_result(pending_stmt, n) + (n == kBatch ? 1 : 0);
}

void
mark_run_crashed(int64 run_id, const char *message)
{
	Datum values[2] = {Int64GetDatum(run_id), CStringGetTextDatum(message)};
	uint64 n = execute(run_crashed_stmt, values, nullptr, false);
	(void)finish_runs_of_result(run_crashed_stmt, n);
}

int64
mark_orphaned_runs(int32 tier_id, const int32 *live_pids, int nlive, const int64 *known_runs, int nknown)
{
	int64 total = 0;
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(nlive, 1)));
	for (int i = 0; i < nlive; i++)
		elems[i] = Int32GetDatum(live_pids[i]);
	ArrayType *live = construct_array(elems, nlive, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	Datum *kelems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(nknown, 1)));
	for (int i = 0; i < nknown; i++)
		kelems[i] = Int64GetDatum(known_runs[i]);
	ArrayType *known = construct_array(kelems, nknown, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
	for (;;) {
		Datum values[5] = {Int32GetDatum(tier_id), Int32GetDatum(MyProcPid), PointerGetDatum(live),
		                   PointerGetDatum(known), TimestampTzGetDatum(shared()->writable_since)};
		uint64 n = execute(mark_orphans_stmt, values, nullptr, false);
		(void)finish_runs_of_result(mark_orphans_stmt, n);
		total += (int64)n;
		if (n < 1000)
			break;
		CommandCounterIncrement();
	}
	return total;
}

} // namespace foreman::bgw
