// run_store.cpp: the SQL of the coordinator's bookkeeping, and its rows.
//
// Each statement names its result columns; rows are read by those names
// (statements.hpp). Where a 1.0 catalog lacks a column, the statement has a
// 1.0 variant: a database not yet updated keeps running its jobs.
#include "bgw/run_store.hpp"
#include "bgw/run_store_detail.hpp"
#include "bgw/session.hpp"
#include "bgw/shmem.hpp"
#include "bgw/statements.hpp"
#include "pg/outcome_pg.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

// ---------------------------------------------------------------------------
// Tiers

const char *const kTierColumns[] = {"tick_ms", "enabled", "next_due", "concurrency"};
enum TierColumn { kTickMs, kTierEnabled, kNextDue, kConcurrency };

#define TIER_STATE_SQL(CHAIN_DUE)                                                                               \
	"SELECT (extract(epoch FROM t.tick) * 1000)::int8 AS tick_ms, t.enabled, t.concurrency,"                 \
	"       least((SELECT j.next_run_at FROM foreman.job j WHERE j.tier_id = t.tier_id AND j.enabled"        \
	"                 AND j.next_run_at IS NOT NULL ORDER BY j.next_run_at LIMIT 1),"                        \
	"             (SELECT j.retry_at FROM foreman.job j WHERE j.tier_id = t.tier_id AND j.enabled"           \
	"                 AND j.retry_at IS NOT NULL ORDER BY j.retry_at LIMIT 1),"                              \
	"             (SELECT min(j.run_requested_at) FROM foreman.job j WHERE j.tier_id = t.tier_id"            \
	"                 AND j.run_requested_at IS NOT NULL)" CHAIN_DUE ") AS next_due"                         \
	"  FROM foreman.tier t WHERE t.tier_id = $1"
Statement tier_state_stmt = {
	// Pending chain requests are few: read from their side (a join may be
	// planned from the tier's jobs, reading every one).
	TIER_STATE_SQL(", (SELECT min(cr.requested_at) FROM foreman.chain_request cr"
	               "    WHERE (SELECT cj.tier_id = t.tier_id AND cj.enabled FROM foreman.job cj"
	               "            WHERE cj.job_id = cr.job_id))"),
	TIER_STATE_SQL(""), 1, {INT4OID}, kTierColumns, 4};

// ---------------------------------------------------------------------------
// Jobs

const char *const kJobColumns[] = {
	"job_id", "revision", "job_name", "owner", "command", "enabled", "next_run_at", "run_requested_at",
	"timeout_ms", "tier_cap_ms", "schedule", "schedule_kind", "period_us", "time_zone", "anchor_at", "phase_us",
	"end_at", "retry_at", "retry_attempt", "misfire_grace_us", "coalesce_runs", "max_catchup", "overlap",
	"last_started_at", "last_finished_at", "log_runs", "notify", "max_instances", "chain_id", "chain_requested_at",
	"retry_chain_id", "has_downstreams"};
enum JobColumn {
	kJobId, kRevision, kJobName, kOwner, kCommand, kJobEnabled, kNextRunAt, kRunRequestedAt,
	kTimeoutMs, kTierCapMs, kSchedule, kScheduleKind, kPeriodUs, kTimeZone, kAnchorAt, kPhaseUs,
	kEndAt, kRetryAt, kRetryAttempt, kMisfireGraceUs, kCoalesceRuns, kMaxCatchup, kOverlap,
	kLastStartedAt, kLastFinishedAt, kLogRuns, kNotify, kMaxInstances, kChainId, kChainRequestedAt, kRetryChainId,
	kJobHasDownstreams, kJobColumnCount
};
static_assert(kJobColumnCount == sizeof kJobColumns / sizeof *kJobColumns);

// Everything a run needs to know about a job. tier_cap: the tier's
// max_user_runtime (applied in C, to owners that are not foreman_admin).
// chain_*: the job's oldest pending run as a downstream (job dependencies).
#define JOB_ROW_SQL(TIER_CAP, NOTIFY, CHAIN)                                                                \
	"SELECT j.job_id, j.revision, j.job_name, j.owner, j.command, j.enabled, j.next_run_at,"               \
	"       j.run_requested_at,"                                                                            \
	"       (extract(epoch FROM coalesce(j.timeout, t.default_timeout)) * 1000)::int8 AS timeout_ms,"     \
	"       " TIER_CAP " AS tier_cap_ms,"                                                                   \
	"       j.schedule, j.schedule_kind, (extract(epoch FROM j.period) * 1000000)::int8 AS period_us,"     \
	"       j.time_zone, j.anchor_at, (extract(epoch FROM j.phase) * 1000000)::int8 AS phase_us, j.end_at," \
	"       j.retry_at, j.retry_attempt,"                                                                   \
	"       (extract(epoch FROM j.misfire_grace) * 1000000)::int8 AS misfire_grace_us, j.coalesce_runs,"   \
	"       j.max_catchup, j.overlap, j.last_started_at, j.last_finished_at, j.log_runs, " NOTIFY " AS notify," \
	"       j.max_instances," CHAIN                                                                          \
	"  FROM foreman.job j JOIN foreman.tier t ON t.tier_id = j.tier_id"
#define JOB_ROW_SQL_V1_1                                                                                    \
	JOB_ROW_SQL("(extract(epoch FROM t.max_user_runtime) * 1000)::int8", "j.notify",                       \
	            " cq.chain_id, cq.requested_at AS chain_requested_at, j.retry_chain_id,"                    \
	            " EXISTS (SELECT FROM foreman.job_dependency d WHERE d.upstream_id = j.job_id) AS has_downstreams") \
	" LEFT JOIN LATERAL (SELECT cr.chain_id, cr.requested_at FROM foreman.chain_request cr"                 \
	"                     WHERE cr.job_id = j.job_id AND j.enabled ORDER BY cr.requested_at, cr.chain_id LIMIT 1) cq" \
	" ON true"
#define JOB_ROW_SQL_V1_0                                                                                    \
	JOB_ROW_SQL("NULL::int8", "'failures'::text",                                                           \
	            " NULL::int8 AS chain_id, NULL::timestamptz AS chain_requested_at, NULL::int8 AS retry_chain_id,"   \
	            " false AS has_downstreams")

// Due: a fire time, a retry (of an enabled job), a run_now request (also of
// a paused job), or a run as a downstream - each found through its own index.
// Each branch reads at most $3 rows, in its index's order: a job among the
// first $3 by least(...) is among the first $3 of the branch of its earliest
// time, so the tier's other due jobs are not read at all. As an array (an
// InitPlan), whatever the table's statistics say: the rows are then fetched
// by key.
#define DUE_IDS_SQL(CHAIN)                                                                                  \
	" WHERE j.job_id = ANY (ARRAY((SELECT job_id FROM foreman.job WHERE tier_id = $1 AND enabled AND next_run_at <= $2" \
	"                     ORDER BY next_run_at LIMIT $3)"                                                    \
	"                    UNION ALL"                                                                         \
	"                    (SELECT job_id FROM foreman.job WHERE tier_id = $1 AND enabled AND retry_at <= $2" \
	"                     ORDER BY retry_at LIMIT $3)"                                                       \
	"                    UNION ALL"                                                                         \
	"                    (SELECT job_id FROM foreman.job WHERE tier_id = $1 AND run_requested_at <= $2"     \
	"                     ORDER BY run_requested_at LIMIT $3)" CHAIN "))"
#define DUE_ORDER(CHAIN)                                                                                    \
	" ORDER BY least(j.next_run_at, j.run_requested_at, j.retry_at" CHAIN "), j.job_id LIMIT $3"
Statement load_due_stmt = {
	JOB_ROW_SQL_V1_1 DUE_IDS_SQL("                    UNION ALL"
	                             "                    (SELECT cr.job_id FROM foreman.chain_request cr"
	                             "                     WHERE (SELECT cj.tier_id = $1 AND cj.enabled FROM foreman.job cj"
	                             "                             WHERE cj.job_id = cr.job_id)"
	                             "                     ORDER BY cr.requested_at LIMIT $3)")
		DUE_ORDER(", cq.requested_at"),
	JOB_ROW_SQL_V1_0 DUE_IDS_SQL("") DUE_ORDER(""), 3, {INT4OID, TIMESTAMPTZOID, INT4OID}, kJobColumns, kJobColumnCount};

// Before a run starts or a fire time is skipped, in the same transaction:
// the tier's lease row is share-locked under this leadership's epoch (an
// epoch taken meanwhile waits for this transaction, or this one finds no
// row), and the jobs' rows are taken - SKIP LOCKED, so that a row its owner
// holds in an open transaction makes that one job wait and never the tier.
// One statement for a whole batch of starts.
const char *const kJobIdColumns[] = {"job_id"};
Statement lock_starts_stmt = {
	"WITH l AS (SELECT 1 FROM foreman.tier_lease WHERE tier_id = $1 AND epoch = $2 FOR SHARE)"
	"SELECT j.job_id FROM foreman.job j WHERE j.job_id = ANY ($3) AND EXISTS (SELECT FROM l) FOR UPDATE OF j SKIP LOCKED",
	nullptr, 3, {INT4OID, INT8OID, INT8ARRAYOID}, kJobIdColumns, 1};

// The job's part of a start, shared by both start statements: the job moves
// on (next fire time, request and pending retry consumed); EXTRA_SET: more
// columns set.
#define BEGIN_JOB_CTE(EXTRA_SET, OWNER_NAME_COL)                                                        \
	"WITH j AS ("                                                                                        \
	"  UPDATE foreman.job SET next_run_at = $3,"                                                         \
	"         run_requested_at = CASE WHEN $4 THEN NULL ELSE run_requested_at END,"                      \
	"         retry_at = NULL, retry_attempt = 0, last_started_at = $6" EXTRA_SET                        \
	"   WHERE job_id = $1 AND revision = $2 AND (enabled OR $4)"                                          \
	"  RETURNING job_id, job_name, owner" OWNER_NAME_COL ", tier_id)"
// A run starts: the job moves on (next fire time, request and pending retry
// consumed) and the run row is written, in one statement, the job's row
// taken by lock_starts_stmt. A run_now request ($4) also runs a paused job. A run as a downstream ($13) consumes
// its chain request and carries its instance ($12) - only if the job moved.
#define BEGIN_RUN_SQL(OWNER_NAME_SET, OWNER_NAME_COL, COUNT, CHAIN_CTE, CHAIN_COL, CHAIN_NULL, CHAIN_VAL, CHAIN_WHERE) \
	BEGIN_JOB_CTE(OWNER_NAME_SET COUNT, OWNER_NAME_COL) CHAIN_CTE                                          \
	"INSERT INTO foreman.job_run (job_id, job_name, owner" OWNER_NAME_COL ", tier_id, pid, status, reason, message," \
	"                             scheduled_for, started_at, finished_at, attempt" CHAIN_COL ")"              \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $7, 'skipped', $12, $13, $14, clock_timestamp()," \
	"       clock_timestamp(), 1" CHAIN_NULL " FROM j WHERE $12 IS NOT NULL"                                  \
	" UNION ALL "                                                                                            \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $7, 'running', NULL, NULL, $5, $6, NULL, $8"  \
	CHAIN_VAL " FROM j" CHAIN_WHERE " RETURNING run_id, status"
const char *const kRunIdColumns[] = {"run_id"};
const char *const kStartedColumns[] = {"run_id", "status"};
Statement begin_run_stmt = {
	BEGIN_RUN_SQL(", owner_name = coalesce($9, owner_name), retry_chain_id = NULL", ", owner_name",
	              ", runs_skipped = runs_skipped + ($12 IS NOT NULL)::int",
	              ", c AS (DELETE FROM foreman.chain_request WHERE $11 AND job_id = $1 AND chain_id = $10"
	              "         AND EXISTS (SELECT FROM j) RETURNING 1) ",
	              ", chain_id", ", NULL::int8", ", $10", " WHERE NOT $11 OR EXISTS (SELECT FROM c)"),
	BEGIN_RUN_SQL("", "", "", " ", "", "", "", ""),
	14,
	{INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID, NAMEOID, INT8OID,
	 BOOLOID, TEXTOID, TEXTOID, TIMESTAMPTZOID},
	kStartedColumns, 2};

// The common start - no fire times folded into it, no pipeline instance, no
// chain request to consume - in a leaner statement: one table changed
// besides the run's row, no union, no sub-plan (begin_run_stmt's plan
// initialises three tables and five more nodes at every start).
#define BEGIN_PLAIN_SQL(OWNER_NAME_SET, OWNER_NAME_COL)                                                     \
	BEGIN_JOB_CTE(OWNER_NAME_SET, OWNER_NAME_COL)                                                        \
	"INSERT INTO foreman.job_run (job_id, job_name, owner" OWNER_NAME_COL ", tier_id, pid, status,"      \
	"                             scheduled_for, started_at, attempt)"                                   \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $7, 'running', $5, $6, $8 FROM j"         \
	" RETURNING run_id, status"
Statement begin_plain_stmt = {
	BEGIN_PLAIN_SQL(", owner_name = coalesce($9, owner_name), retry_chain_id = NULL", ", owner_name"),
	BEGIN_PLAIN_SQL("", ""), 9,
	{INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID, NAMEOID},
	kStartedColumns, 2};

// A fire time decided against (misfire, overlap) or folded into another run
// (coalesced, catch-up limit): a 'skipped' row. $7 advances the job when set.
#define SKIP_SQL(OWNER_NAME_COL, COUNT)                                                                          \
	"WITH j AS ("                                                                                              \
	"  UPDATE foreman.job SET next_run_at = CASE WHEN $7 THEN $8 ELSE next_run_at END,"                        \
	"         run_requested_at = CASE WHEN $9 THEN NULL ELSE run_requested_at END" COUNT                       \
	"   WHERE job_id = $1 AND revision = $2 AND (enabled OR $9)"                                                \
	"  RETURNING job_id, job_name, owner" OWNER_NAME_COL ", tier_id)"                                          \
	"INSERT INTO foreman.job_run (job_id, job_name, owner" OWNER_NAME_COL ", tier_id, pid, status, reason,"     \
	"                             message, scheduled_for, started_at, finished_at)"                            \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $3, 'skipped', $4, $5, $6, clock_timestamp(),"  \
	"       clock_timestamp() FROM j "                                                                         \
	"RETURNING run_id"
Statement skip_stmt = {
	SKIP_SQL(", owner_name", ", runs_skipped = runs_skipped + 1"), SKIP_SQL("", ""), 9,
	{INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, BOOLOID},
	kRunIdColumns, 1};

// ---------------------------------------------------------------------------
// Leadership and small things

const char *const kEpochColumns[] = {"epoch"};
Statement lease_epoch_stmt = {"SELECT epoch FROM foreman.tier_lease WHERE tier_id = $1", nullptr, 1, {INT4OID},
                              kEpochColumns, 1};

Statement take_lease_stmt = {
	"INSERT INTO foreman.tier_lease AS t (tier_id, epoch, leader_pid, since) VALUES ($1, 1, $2, clock_timestamp())"
	" ON CONFLICT (tier_id) DO UPDATE SET epoch = t.epoch + 1, leader_pid = EXCLUDED.leader_pid, since = EXCLUDED.since"
	" RETURNING epoch",
	nullptr, 2, {INT4OID, INT4OID}, kEpochColumns, 1};

// @reboot jobs are due when their tier's coordinator starts leading (those
// whose row an owner holds just now wait for the next start).
Statement reboot_stmt = {
	"UPDATE foreman.job SET next_run_at = clock_timestamp()"
	" WHERE job_id IN (SELECT job_id FROM foreman.job WHERE tier_id = $1 AND enabled AND schedule_kind = 'reboot'"
	"                   FOR UPDATE SKIP LOCKED)",
	nullptr, 1, {INT4OID}, nullptr, 0};

// An executor takes a run: its row gets the executor's pid (only while it is
// still 'running' with no process), and what the run needs of its job - not
// the schedule, the due policy or the pending chain requests the coordinator
// reads - in the same statement. No row: not claimed; a row without a job:
// the job was unscheduled meanwhile.
const char *const kClaimColumns[] = {"job_id", "job_name", "owner", "command", "timeout_ms",
                                     "tier_cap_ms", "log_runs", "notify", "has_downstreams"};
enum ClaimColumn {
	kClaimJobId, kClaimJobName, kClaimOwner, kClaimCommand, kClaimTimeoutMs, kClaimTierCapMs,
	kClaimLogRuns, kClaimNotify, kClaimHasDownstreams, kClaimColumnCount
};
static_assert(kClaimColumnCount == sizeof kClaimColumns / sizeof *kClaimColumns);
#define CLAIM_RUN_SQL(TIER_CAP, NOTIFY, DOWNSTREAMS)                                                      \
	"WITH c AS (UPDATE foreman.job_run SET pid = $2 WHERE run_id = $1 AND status = 'running' AND pid IS NULL" \
	"           RETURNING job_id)"                                                                       \
	"SELECT j.job_id, j.job_name, j.owner, j.command,"                       \
	"       (extract(epoch FROM coalesce(j.timeout, t.default_timeout)) * 1000)::int8 AS timeout_ms,"   \
	"       " TIER_CAP " AS tier_cap_ms, j.log_runs, " NOTIFY " AS notify, " DOWNSTREAMS " AS has_downstreams" \
	"  FROM c LEFT JOIN (foreman.job j JOIN foreman.tier t ON t.tier_id = j.tier_id) ON j.job_id = c.job_id"
Statement claim_run_stmt = {
	CLAIM_RUN_SQL("(extract(epoch FROM t.max_user_runtime) * 1000)::int8", "j.notify",
	              "EXISTS (SELECT FROM foreman.job_dependency d WHERE d.upstream_id = j.job_id)"),
	CLAIM_RUN_SQL("NULL::int8", "'failures'::text", "false"), 2, {INT8OID, INT4OID}, kClaimColumns,
	kClaimColumnCount};

// How many of the tier's jobs are due by $2 (at most $3): the executors a
// parallel tier starts ahead of that time.
const char *const kDueCountColumns[] = {"n"};
Statement due_count_stmt = {
	"SELECT count(*) AS n FROM (SELECT 1 FROM foreman.job j WHERE j.tier_id = $1 AND j.enabled"
	"                             AND j.next_run_at <= $2 LIMIT $3) d",
	nullptr, 3, {INT4OID, TIMESTAMPTZOID, INT4OID}, kDueCountColumns, 1};

// A run of a parallel tier that waited for the cluster-wide executor cap.
Statement run_delayed_stmt = {
	"UPDATE foreman.job_run SET reason = 'delayed',"
	"       message = format('waited %s ms for an executor (foreman.max_executors)', $2)"
	" WHERE run_id = $1",
	nullptr, 2, {INT8OID, INT8OID}, nullptr, 0};

// This process's leadership: the tier and the epoch it leads under.
int32 lease_tier = 0;
int64 lease_epoch = 0;
bool lease_lost = false;

bool
lease_is_current()
{
	Datum values[1] = {Int32GetDatum(lease_tier)};
	return execute(lease_epoch_stmt, values, nullptr, true) == 1 &&
	       int64_column(lease_epoch_stmt, 0, 0, 0) == lease_epoch;
}

void
read_schedule(Statement &s, uint64 row, DueJob *job)
{
	bool isnull;
	job->schedule.schedule = text_column(s, row, kSchedule);
	job->schedule.schedule_kind = text_column(s, row, kScheduleKind);
	job->schedule.period_us = int64_column(s, row, kPeriodUs, 0);
	job->schedule.time_zone = text_column(s, row, kTimeZone);
	job->schedule.anchor_at = timestamp_column(s, row, kAnchorAt, &isnull);
	job->schedule.phase_us = int64_column(s, row, kPhaseUs, 0);
	job->schedule.end_at = timestamp_column(s, row, kEndAt, &isnull);
	job->schedule.has_end_at = !isnull;
}

void
read_policy(Statement &s, uint64 row, DueJob *job)
{
	bool isnull;
	Datum d = column(s, row, kMisfireGraceUs, &isnull);
	job->policy.has_misfire_grace = !isnull;
	job->policy.misfire_grace_us = isnull ? 0 : DatumGetInt64(d);
	job->policy.coalesce = DatumGetBool(column(s, row, kCoalesceRuns, &isnull));
	job->policy.max_catchup = DatumGetInt32(column(s, row, kMaxCatchup, &isnull));
	job->policy.overlap = text_column(s, row, kOverlap);
	job->overlap = overlap_of(job->policy.overlap);
	bool started_null, finished_null;
	job->policy.last_started = timestamp_column(s, row, kLastStartedAt, &started_null);
	job->policy.last_finished = timestamp_column(s, row, kLastFinishedAt, &finished_null);
	job->policy.has_last_run = !started_null && !finished_null;
}

// Row `row` of the last load into a DueJob (palloc'd in the current context).
DueJob *
read_job_row(Statement &s, uint64 row, TimestampTz now)
{
	bool isnull;
	DueJob *job = static_cast<DueJob *>(palloc0(sizeof(DueJob)));
	job->job_id = int64_column(s, row, kJobId, 0);
	job->revision = int64_column(s, row, kRevision, 0);
	job->job_name = text_column(s, row, kJobName);
	job->owner = DatumGetObjectId(column(s, row, kOwner, &isnull));
	job->owner_status = pg::owner_status(job->owner);
	job->command = text_column(s, row, kCommand);
	job->enabled = DatumGetBool(column(s, row, kJobEnabled, &isnull));
	job->next_run_at = timestamp_column(s, row, kNextRunAt, &isnull);
	job->has_next_run = !isnull;
	job->requested_at = timestamp_column(s, row, kRunRequestedAt, &isnull);
	job->requested = !isnull && job->requested_at <= now;
	job->timeout_ms = int64_column(s, row, kTimeoutMs, 0);
	apply_tier_cap(job, int64_column(s, row, kTierCapMs, 0));
	read_schedule(s, row, job);
	read_policy(s, row, job);
	job->retry_at = timestamp_column(s, row, kRetryAt, &isnull);
	job->retry_due = !isnull && job->enabled && job->retry_at <= now;
	job->retry_attempt = DatumGetInt32(column(s, row, kRetryAttempt, &isnull));
	job->log_runs = log_runs_of(text_column(s, row, kLogRuns));
	job->notify = notify_of(text_column(s, row, kNotify));
	job->max_instances = (int32)int64_column(s, row, kMaxInstances, 1);
	job->chain_id = int64_column(s, row, kChainId, 0);
	job->chain_requested_at = timestamp_column(s, row, kChainRequestedAt, &isnull);
	job->chain_due = job->chain_id != 0;
	job->retry_chain_id = int64_column(s, row, kRetryChainId, 0);
	job->has_downstreams = DatumGetBool(column(s, row, kJobHasDownstreams, &isnull)) && !isnull;
	return job;
}

} // namespace

// The timeout a run gets: the job's own (or its tier's default), cut to the
// tier's max_user_runtime for owners that are not foreman_admin.
void
apply_tier_cap(DueJob *job, int64 tier_cap_ms)
{
	if (job->owner_status.admin || tier_cap_ms <= 0)
		return;
	if (job->timeout_ms == 0 || tier_cap_ms < job->timeout_ms) {
		job->timeout_ms = tier_cap_ms;
		job->timeout_is_tier_cap = true;
	}
}

// A pipeline moved in the open transaction: the coordinators of the
// database are woken once it commits (a downstream may be due in any tier).
bool chain_advanced = false;

// The memory context current when the internal transaction began.
MemoryContext xact_caller_context = nullptr;

void
set_local(const char *name, const char *value)
{
	(void)set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

// Text settings of foreman.job, as enums (the settings trigger allows no other).
core::Overlap
overlap_of(const char *text)
{
	return strcmp(text, "queue") == 0 ? core::Overlap::Queue
	       : strcmp(text, "allow") == 0 ? core::Overlap::Allow
	                                    : core::Overlap::Skip;
}

LogRuns
log_runs_of(const char *text)
{
	return strcmp(text, "none") == 0 ? LogRuns::None : strcmp(text, "failures") == 0 ? LogRuns::Failures : LogRuns::All;
}

Notify
notify_of(const char *text)
{
	return strcmp(text, "none") == 0 ? Notify::None : strcmp(text, "all") == 0 ? Notify::All : Notify::Failures;
}

void
internal_xact_begin(bool durable, bool reset_session)
{
	xact_caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	// The bookkeeping's own characteristics, whatever a job's SET SESSION
	// CHARACTERISTICS or the database's defaults say: never read-only, never a
	// SERIALIZABLE DEFERRABLE wait for a safe snapshot. Set before the first
	// snapshot is taken.
	XactIsoLevel = XACT_READ_COMMITTED;
	XactReadOnly = false;
	XactDeferrable = false;
	// RESET ALL would undo the settings below: first.
	if (reset_session)
		session_reset();
	set_local("search_path", "pg_catalog, pg_temp");
	if (!durable)
		set_local("synchronous_commit", "off");
	set_local("lock_timeout", "1s");
	set_local("statement_timeout", "0");
	// Before the snapshot: one taken before a wait for an update would not
	// see the catalog the update committed.
	lock_catalog_gate();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	check_catalog_level();
}

void
internal_xact_commit()
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	// The caller's memory context again, on every major (from 17 on,
	// PostgreSQL restores the one current at the transaction's start itself;
	// before, it left TopMemoryContext current, where nothing should leak).
	MemoryContextSwitchTo(xact_caller_context);
	// Outside a job only a cut wait for a synchronous standby sets a cancel
	// (job_runner); one that came as the wait ended anyway is spent here.
	QueryCancelPending = false;
	if (chain_advanced) {
		chain_advanced = false;
		wake_coordinators(MyDatabaseId, -1);
	}
}

TierState
read_tier_state(int32 tier_id)
{
	TierState state{};
	Datum values[1] = {Int32GetDatum(tier_id)};
	Statement &s = tier_state_stmt;
	if (execute(s, values, nullptr, false) == 0)
		return state;
	bool isnull;
	state.exists = true;
	state.tick_ms = int64_column(s, 0, kTickMs, 10000);
	state.enabled = DatumGetBool(column(s, 0, kTierEnabled, &isnull));
	state.next_run_at = timestamp_column(s, 0, kNextDue, &isnull);
	state.has_next_run = !isnull;
	state.concurrency = DatumGetInt32(column(s, 0, kConcurrency, &isnull));
	return state;
}

List *
load_due_jobs(int32 tier_id, TimestampTz now, int limit, MemoryContext into)
{
	Datum values[3] = {Int32GetDatum(tier_id), TimestampTzGetDatum(now), Int32GetDatum(limit)};
	// Not read-only: a fresh snapshot that sees what this transaction just
	// wrote (crashed runs' summaries move their jobs' next runs).
	uint64 n = execute(load_due_stmt, values, nullptr, false);
	// SPI's tuple table is gone at SPI_finish and the transaction's memory at
	// commit: copy into the caller's context.
	MemoryContext old = MemoryContextSwitchTo(into);
	List *jobs = NIL;
	for (uint64 i = 0; i < n; i++)
		jobs = lappend(jobs, read_job_row(load_due_stmt, i, now));
	MemoryContextSwitchTo(old);
	return jobs;
}

int64
begin_run(const DueJob &job, const RunStart &start)
{
	bool in_chain = start.chain_id != 0 || start.consume_chain_request;
	bool plain = !start.folded_reason && !in_chain;
	int64 run_id;
	// Written directly with or without folded fire times: an overloaded
	// tier folds them into nearly every start, and a planned statement
	// there (begin_run_stmt: a union, three tables) made each start dearer
	// just when the tier fell behind.
	if (!in_chain && guc_direct_writes && catalog_level() == CatalogLevel::V1_1 &&
	    begin_plain_direct(job.job_id, job.revision, start, job.owner_status.name, &run_id))
		return run_id;
	NameData owner_name;
	if (job.owner_status.name)
		namestrcpy(&owner_name, job.owner_status.name);
	Datum values[14] = {Int64GetDatum(job.job_id),           Int64GetDatum(job.revision),
	                    TimestampTzGetDatum(start.next_run_at), BoolGetDatum(start.clear_request),
	                    TimestampTzGetDatum(start.scheduled_for), TimestampTzGetDatum(start.started_at),
	                    Int32GetDatum(MyProcPid),             Int32GetDatum(start.attempt),
	                    NameGetDatum(&owner_name),            Int64GetDatum(start.chain_id),
	                    BoolGetDatum(start.consume_chain_request), (Datum)0,
	                    (Datum)0,                             TimestampTzGetDatum(start.folded_from)};
	char nulls[15] = "              ";
	values[11] = text_or_null(start.folded_reason, &nulls[11]);
	values[12] = text_or_null(start.folded_message, &nulls[12]);
	if (!start.has_next)
		nulls[2] = 'n';
	if (!job.owner_status.name)
		nulls[8] = 'n';
	if (start.chain_id == 0)
		nulls[9] = 'n';
	if (start.for_executor)
		nulls[6] = 'n';
	Statement &stmt = plain ? begin_plain_stmt : begin_run_stmt;
	uint64 n = execute(stmt, values, nulls, false);
	for (uint64 r = 0; r < n; r++)
		if (strcmp(text_column(stmt, r, 1), "running") == 0)
			return int64_column(stmt, r, 0, 0);
	return 0;
}

int
lock_for_starts(const int64 *job_ids, int n, bool *locked)
{
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
	for (int i = 0; i < n; i++) {
		elems[i] = Int64GetDatum(job_ids[i]);
		locked[i] = false;
	}
	ArrayType *ids = construct_array(elems, n, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
	Datum values[3] = {Int32GetDatum(lease_tier), Int64GetDatum(lease_epoch), PointerGetDatum(ids)};
	uint64 rows = execute(lock_starts_stmt, values, nullptr, false);
	for (uint64 r = 0; r < rows; r++) {
		int64 id = int64_column(lock_starts_stmt, r, 0, 0);
		for (int i = 0; i < n; i++)
			if (job_ids[i] == id)
				locked[i] = true;
	}
	// Rows not taken: their owners hold them, or the epoch is not ours.
	if (rows < (uint64)n && !lease_is_current())
		lease_lost = true;
	return (int)rows;
}

bool
take_lease_lost()
{
	bool lost = lease_lost;
	lease_lost = false;
	return lost;
}

int64
record_skipped(const DueJob &job, const SkipRecord &skip)
{
	char nulls[10] = "         ";
	Datum values[9];
	values[0] = Int64GetDatum(job.job_id);
	values[1] = Int64GetDatum(job.revision);
	values[2] = Int32GetDatum(MyProcPid);
	values[3] = CStringGetTextDatum(skip.reason);
	values[4] = text_or_null(skip.message, &nulls[4]);
	values[5] = TimestampTzGetDatum(skip.scheduled_for);
	values[6] = BoolGetDatum(skip.advance);
	values[7] = TimestampTzGetDatum(skip.next_run_at);
	if (!skip.has_next)
		nulls[7] = 'n';
	values[8] = BoolGetDatum(skip.clear_request);
	if (execute(skip_stmt, values, nulls, false) == 0)
		return 0;
	return int64_column(skip_stmt, 0, 0, 0);
}

Claim
claim_run(int64 run_id, MemoryContext into)
{
	Claim claim{};
	if (guc_direct_writes && catalog_level() == CatalogLevel::V1_1 && claim_run_direct(run_id, into, &claim))
		return claim;
	Datum values[2] = {Int64GetDatum(run_id), Int32GetDatum(MyProcPid)};
	if (execute(claim_run_stmt, values, nullptr, false) == 0)
		return claim;
	claim.claimed = true;
	bool isnull;
	Statement &s = claim_run_stmt;
	Datum job_id = column(s, 0, kClaimJobId, &isnull);
	if (isnull)
		return claim;
	MemoryContext old = MemoryContextSwitchTo(into);
	DueJob *job = static_cast<DueJob *>(palloc0(sizeof(DueJob)));
	job->job_id = DatumGetInt64(job_id);
	job->job_name = text_column(s, 0, kClaimJobName);
	job->owner = DatumGetObjectId(column(s, 0, kClaimOwner, &isnull));
	job->owner_status = pg::owner_status(job->owner);
	job->command = text_column(s, 0, kClaimCommand);
	job->timeout_ms = int64_column(s, 0, kClaimTimeoutMs, 0);
	apply_tier_cap(job, int64_column(s, 0, kClaimTierCapMs, 0));
	job->log_runs = log_runs_of(text_column(s, 0, kClaimLogRuns));
	job->notify = notify_of(text_column(s, 0, kClaimNotify));
	job->has_downstreams = DatumGetBool(column(s, 0, kClaimHasDownstreams, &isnull)) && !isnull;
	MemoryContextSwitchTo(old);
	claim.job = job;
	return claim;
}

int
count_due_by(int32 tier_id, TimestampTz at, int limit)
{
	Datum values[3] = {Int32GetDatum(tier_id), TimestampTzGetDatum(at), Int32GetDatum(limit)};
	if (execute(due_count_stmt, values, nullptr, false) == 0)
		return 0;
	return (int)int64_column(due_count_stmt, 0, 0, 0);
}

void
mark_run_delayed(int64 run_id, int64 waited_ms)
{
	Datum values[2] = {Int64GetDatum(run_id), Int64GetDatum(waited_ms)};
	execute(run_delayed_stmt, values, nullptr, false);
}

int64
take_lease(int32 tier_id)
{
	Datum values[2] = {Int32GetDatum(tier_id), Int32GetDatum(MyProcPid)};
	execute(take_lease_stmt, values, nullptr, false);
	lease_tier = tier_id;
	lease_epoch = int64_column(take_lease_stmt, 0, 0, 0);
	return lease_epoch;
}

void
mark_reboot_jobs_due(int32 tier_id)
{
	Datum values[1] = {Int32GetDatum(tier_id)};
	execute(reboot_stmt, values, nullptr, false);
}

} // namespace foreman::bgw
