// run_store.cpp: the SQL of the coordinator's bookkeeping, and its rows.
//
// Each statement names its result columns; rows are read by those names
// (statements.hpp). Where a 1.0 catalog lacks a column, the statement has a
// 1.0 variant: a database not yet updated keeps running its jobs.
#include "bgw/run_store.hpp"
#include "bgw/events.hpp"
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
	"retry_chain_id"};
enum JobColumn {
	kJobId, kRevision, kJobName, kOwner, kCommand, kJobEnabled, kNextRunAt, kRunRequestedAt,
	kTimeoutMs, kTierCapMs, kSchedule, kScheduleKind, kPeriodUs, kTimeZone, kAnchorAt, kPhaseUs,
	kEndAt, kRetryAt, kRetryAttempt, kMisfireGraceUs, kCoalesceRuns, kMaxCatchup, kOverlap,
	kLastStartedAt, kLastFinishedAt, kLogRuns, kNotify, kMaxInstances, kChainId, kChainRequestedAt, kRetryChainId,
	kJobColumnCount
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
	            " cq.chain_id, cq.requested_at AS chain_requested_at, j.retry_chain_id")                    \
	" LEFT JOIN LATERAL (SELECT cr.chain_id, cr.requested_at FROM foreman.chain_request cr"                 \
	"                     WHERE cr.job_id = j.job_id AND j.enabled ORDER BY cr.requested_at, cr.chain_id LIMIT 1) cq" \
	" ON true"
#define JOB_ROW_SQL_V1_0                                                                                    \
	JOB_ROW_SQL("NULL::int8", "'failures'::text",                                                           \
	            " NULL::int8 AS chain_id, NULL::timestamptz AS chain_requested_at, NULL::int8 AS retry_chain_id")

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

Statement load_job_stmt = {JOB_ROW_SQL_V1_1 " WHERE j.job_id = $1", JOB_ROW_SQL_V1_0 " WHERE j.job_id = $1", 1,
                           {INT8OID}, kJobColumns, kJobColumnCount};

// The job's row, taken for a change by the coordinator: SKIP LOCKED, so that
// a row its owner holds in an open transaction makes that one job wait and
// never the tier.
#define JOB_ROW_UNLOCKED "job_id = (SELECT lj.job_id FROM foreman.job lj WHERE lj.job_id = $1 FOR UPDATE SKIP LOCKED)"

// A run starts: the job moves on (next fire time, request and pending retry
// consumed) and the run row is written, in one statement. Only under the
// tier's current leadership epoch ($9, $10): the lease row is share-locked,
// so an epoch taken meanwhile waits for this, or this sees it. A run_now
// request ($4) also runs a paused job. A run as a downstream ($13) consumes
// its chain request and carries its instance ($12) - only if the job moved.
#define BEGIN_RUN_SQL(OWNER_NAME_SET, OWNER_NAME_COL, CHAIN_CTE, CHAIN_COL, CHAIN_VAL, CHAIN_WHERE)             \
	"WITH l AS (SELECT 1 FROM foreman.tier_lease WHERE tier_id = $9 AND epoch = $10 FOR SHARE),"            \
	" j AS ("                                                                                                \
	"  UPDATE foreman.job SET next_run_at = $3,"                                                             \
	"         run_requested_at = CASE WHEN $4 THEN NULL ELSE run_requested_at END,"                          \
	"         retry_at = NULL, retry_attempt = 0, last_started_at = $6" OWNER_NAME_SET                       \
	"   WHERE " JOB_ROW_UNLOCKED " AND revision = $2 AND (enabled OR $4) AND EXISTS (SELECT FROM l)"          \
	"  RETURNING job_id, job_name, owner" OWNER_NAME_COL ", tier_id)" CHAIN_CTE                              \
	"INSERT INTO foreman.job_run (job_id, job_name, owner" OWNER_NAME_COL ", tier_id, pid, status, scheduled_for," \
	"                             started_at, attempt" CHAIN_COL ")"                                          \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $7, 'running', $5, $6, $8" CHAIN_VAL " FROM j"  \
	CHAIN_WHERE " RETURNING run_id"
const char *const kRunIdColumns[] = {"run_id"};
Statement begin_run_stmt = {
	BEGIN_RUN_SQL(", owner_name = coalesce($11, owner_name), retry_chain_id = NULL", ", owner_name",
	              ", c AS (DELETE FROM foreman.chain_request WHERE $13 AND job_id = $1 AND chain_id = $12"
	              "         AND EXISTS (SELECT FROM j) RETURNING 1) ",
	              ", chain_id", ", $12", " WHERE NOT $13 OR EXISTS (SELECT FROM c)"),
	BEGIN_RUN_SQL("", "", " ", "", "", ""),
	13,
	{INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID, INT8OID,
	 NAMEOID, INT8OID, BOOLOID},
	kRunIdColumns, 1};

// A fire time decided against (misfire, overlap) or folded into another run
// (coalesced, catch-up limit): a 'skipped' row. $7 advances the job when set.
#define SKIP_SQL(OWNER_NAME_COL, COUNT)                                                                          \
	"WITH l AS (SELECT 1 FROM foreman.tier_lease WHERE tier_id = $10 AND epoch = $11 FOR SHARE),"              \
	" j AS ("                                                                                                  \
	"  UPDATE foreman.job SET next_run_at = CASE WHEN $7 THEN $8 ELSE next_run_at END,"                        \
	"         run_requested_at = CASE WHEN $9 THEN NULL ELSE run_requested_at END" COUNT                       \
	"   WHERE " JOB_ROW_UNLOCKED " AND revision = $2 AND (enabled OR $9) AND EXISTS (SELECT FROM l)"            \
	"  RETURNING job_id, job_name, owner" OWNER_NAME_COL ", tier_id)"                                          \
	"INSERT INTO foreman.job_run (job_id, job_name, owner" OWNER_NAME_COL ", tier_id, pid, status, reason,"     \
	"                             message, scheduled_for, started_at, finished_at)"                            \
	"SELECT job_id, job_name, owner" OWNER_NAME_COL ", tier_id, $3, 'skipped', $4, $5, $6, clock_timestamp(),"  \
	"       clock_timestamp() FROM j "                                                                         \
	"RETURNING run_id"
Statement skip_stmt = {
	SKIP_SQL(", owner_name", ", runs_skipped = runs_skipped + 1"), SKIP_SQL("", ""), 11,
	{INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, BOOLOID, INT4OID, INT8OID},
	kRunIdColumns, 1};

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
	"WITH c AS (SELECT run_id, pid FROM foreman.job_run"
	"            WHERE tier_id = $1 AND status = 'running' AND pid IS DISTINCT FROM $2"
	"              AND (pid IS NULL OR pid <> ALL ($3))"
	"            ORDER BY run_id LIMIT 1000 FOR UPDATE SKIP LOCKED),"
	// A process runs one job at a time, in the order their starts were
	// recorded: of its runs, the first may have been running; those after
	// it were queued behind it, never started. A run no process had taken
	// was waiting for an executor. (A process's runs beyond these 1000 would
	// be taken for its first; a batch holds far fewer.)
	"     o AS (SELECT run_id, pid IS NOT NULL AND run_id = min(run_id) OVER (PARTITION BY pid) AS ran FROM c)"
	"UPDATE foreman.job_run r"
	"   SET status = CASE WHEN o.ran THEN 'crashed' ELSE 'skipped' END, finished_at = clock_timestamp(),"
	"       reason = CASE WHEN o.ran THEN 'process ended' ELSE 'not started' END,"
	"       message = CASE WHEN o.ran THEN format('the process running it (pid %s) ended before the run finished', r.pid)"
	"                      WHEN r.pid IS NULL THEN 'it was waiting for an executor when the process that recorded it"
	" ended: it did not run'"
	"                      ELSE format('its start was recorded with others in one commit, and the process (pid %s)"
	" ended before it started it: it did not run', r.pid) END"
	"  FROM o WHERE r.run_id = o.run_id"
	" RETURNING r.run_id, r.job_id, r.status, r.rows_affected, r.command_tag, r.sqlstate, r.message, r.batches,"
	"           r.finished_at, r.reason, r.attempt",
	nullptr, 3, {INT4OID, INT4OID, INT4ARRAYOID}, kRunColumns, 11};

// An executor ended without recording its run (it failed before it could).
Statement run_crashed_stmt = {
	"UPDATE foreman.job_run SET status = 'crashed', finished_at = clock_timestamp(), reason = 'process ended',"
	"       message = $2"
	" WHERE run_id = $1 AND status = 'running'"
	" RETURNING" RUN_COLUMNS_SQL,
	nullptr, 2, {INT8OID, TEXTOID}, kRunColumns, 11};

// ---------------------------------------------------------------------------
// Leadership and small things

const char *const kEpochColumns[] = {"epoch"};
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

Statement run_pid_stmt = {"UPDATE foreman.job_run SET pid = $2 WHERE run_id = $1", nullptr, 2, {INT8OID, INT4OID},
                          nullptr, 0};

// A run of a parallel tier that waited for the cluster-wide executor cap.
Statement run_delayed_stmt = {
	"UPDATE foreman.job_run SET reason = 'delayed',"
	"       message = format('waited %s ms for an executor (foreman.max_executors)', $2)"
	" WHERE run_id = $1",
	nullptr, 2, {INT8OID, INT8OID}, nullptr, 0};

// This process's leadership: the tier and the epoch it leads under.
int32 lease_tier = 0;
int64 lease_epoch = 0;

// A pipeline moved in the open transaction: the coordinators of the
// database are woken once it commits (a downstream may be due in any tier).
bool chain_advanced = false;

void
set_local(const char *name, const char *value)
{
	(void)set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

// Text settings of foreman.job, as enums (the CHECK constraints allow no other).
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
	return job;
}

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
	pg::RunEndPg run{o.status, o.attempt, o.finished_at, o.stopping, o.owner_problem, o.message};
	return pg::summarize_run(run, job);
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
	check_catalog_level();
}

void
internal_xact_commit()
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	// Outside a job only a cut wait for a synchronous standby sets a cancel
	// (job_runner); one that came as the wait ended anyway is spent here.
	QueryCancelPending = false;
	Assert(CurrentMemoryContext == TopMemoryContext);
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

DueJob *
load_job(int64 job_id, MemoryContext into)
{
	Datum values[1] = {Int64GetDatum(job_id)};
	if (execute(load_job_stmt, values, nullptr, true) == 0)
		return nullptr;
	MemoryContext old = MemoryContextSwitchTo(into);
	DueJob *job = read_job_row(load_job_stmt, 0, GetCurrentTimestamp());
	MemoryContextSwitchTo(old);
	return job;
}

int64
begin_run(const DueJob &job, const RunStart &start)
{
	NameData owner_name;
	if (job.owner_status.name)
		namestrcpy(&owner_name, job.owner_status.name);
	Datum values[13] = {Int64GetDatum(job.job_id),           Int64GetDatum(job.revision),
	                    TimestampTzGetDatum(start.next_run_at), BoolGetDatum(start.clear_request),
	                    TimestampTzGetDatum(start.scheduled_for), TimestampTzGetDatum(start.started_at),
	                    Int32GetDatum(MyProcPid),             Int32GetDatum(start.attempt),
	                    Int32GetDatum(lease_tier),            Int64GetDatum(lease_epoch),
	                    NameGetDatum(&owner_name),            Int64GetDatum(start.chain_id),
	                    BoolGetDatum(start.consume_chain_request)};
	char nulls[14] = "             ";
	if (!start.has_next)
		nulls[2] = 'n';
	if (!job.owner_status.name)
		nulls[10] = 'n';
	if (start.chain_id == 0)
		nulls[11] = 'n';
	if (start.for_executor)
		nulls[6] = 'n';
	if (execute(begin_run_stmt, values, nulls, false) == 0)
		return 0;
	return int64_column(begin_run_stmt, 0, 0, 0);
}

int64
record_skipped(const DueJob &job, const SkipRecord &skip)
{
	char nulls[12] = "           ";
	Datum values[11];
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
	values[9] = Int32GetDatum(lease_tier);
	values[10] = Int64GetDatum(lease_epoch);
	if (execute(skip_stmt, values, nulls, false) == 0)
		return 0;
	return int64_column(skip_stmt, 0, 0, 0);
}

bool
finish_run(int64 run_id, int64 job_id, const RunOutcome &o)
{
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
	uint64 n = execute(run_crashed_stmt, values, nullptr, false);
	(void)finish_runs_of_result(run_crashed_stmt, n);
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
