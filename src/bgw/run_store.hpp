// run_store.hpp: the coordinator's bookkeeping in foreman.job and
// foreman.job_run. Every function runs inside an internal transaction opened
// with internal_xact_begin(); statements are prepared once per process.
#pragma once

#include "pg/postgres.hpp"
#include "pg/schedule_pg.hpp"
#include "core/outcome.hpp"

extern "C" {
#include "nodes/pg_list.h"
}

namespace foreman::bgw {

// A due job as loaded by load_due_jobs(), palloc'd in the caller's context.
struct DueJob {
	int64 job_id;
	int64 revision;
	char *job_name;
	Oid owner;
	char *owner_problem; // why the owner may not run it now, or NULL
	bool owner_is_superuser;
	char *command;
	bool has_next_run;
	TimestampTz next_run_at;
	bool requested;
	TimestampTz requested_at;
	int64 timeout_ms; // 0: none
	pg::JobSchedule schedule;
	pg::DuePolicyPg policy;
	bool retry_due;       // a retry is pending and due
	TimestampTz retry_at;
	int32 retry_attempt;  // the attempt number of the pending retry
	int32 retries;
	int64 retry_backoff_us;
	int64 retry_backoff_max_us;
	char *log_runs; // all | failures | none
	int32 max_instances; // overlap 'allow': runs of it at once in a parallel tier
	bool owner_is_admin;    // superuser or foreman_admin: no max_user_runtime, no min_user_interval
	bool timeout_is_tier_cap; // timeout_ms is the tier's max_user_runtime, not the job's own timeout
	char *owner_name;         // the owner's role name now (NULL: the role is gone)
};

// What a tier's coordinator needs to know between jobs.
struct TierState {
	bool exists;
	bool enabled;
	int64 tick_ms;
	bool has_next_run;
	TimestampTz next_run_at; // earliest next_run_at, retry or run_now request of the tier's enabled jobs
	int32 concurrency;       // > 1: a parallel tier (executors)
};

// Opens/commits an internal transaction: search_path pinned to pg_catalog,
// a short lock_timeout so a user's lock on a foreman table cannot freeze the
// tier, no statement_timeout. Not durable: synchronous_commit off (after a
// crash such a record may be lost, e.g. a finished run shows as 'crashed').
// Durable: the record of a run that starts, which must survive a crash of
// the run itself, so that no fire time runs twice or silently vanishes.
void internal_xact_begin(bool durable = false);
void internal_xact_commit();

TierState read_tier_state(int32 tier_id);

// Due jobs of the tier, oldest due first, at most `limit`, copied into `into`.
List *load_due_jobs(int32 tier_id, TimestampTz now, int limit, MemoryContext into);

// Records a run as started: advances the job's next_run_at (or clears its
// run_now request) and inserts a 'running' row, in one statement. Returns the
// run_id, or 0 when the job changed or was disabled since it was loaded, or
// its row is locked (its owner changes it in an open transaction: the job
// waits, the tier's other jobs go on).
int64 begin_run(const DueJob &job, bool has_next, TimestampTz next_run_at, bool clear_request,
                TimestampTz scheduled_for, TimestampTz started_at, int32 attempt);

// How a run ended, as its row records it. Strings may be NULL.
struct RunOutcome {
	core::RunStatus status;
	const char *reason;        // e.g. 'owner check', 'max_user_runtime', 'process ended'
	uint64 rows;
	int32 batches;             // < 0: not a batched job
	const char *command_tag;
	const char *sqlstate;
	const char *message;
	TimestampTz finished_at;
	int32 attempt;
	bool stopping;             // its process was being stopped (no retry now)
	const char *owner_problem; // the owner may not run jobs: the job is disabled with this reason
};

// Records how run_id of job_id ended and, in the same statement, the job's
// summary by the one rule (core::summarize: failure count, retry, crash
// back-off, automatic disabling; the row is dropped when the job's log_runs
// does not keep it). The job's row is taken with SKIP LOCKED: when its owner
// holds it in an open transaction, the run is recorded with
// summary_pending and apply_pending_summaries() finishes it later. Returns
// true when the summary was applied (or the job is gone).
bool finish_run(int64 run_id, int64 job_id, const RunOutcome &outcome);

// Applies the summaries still pending in the tier (runs whose job's row was
// locked, runs marked crashed), oldest first, at most a batch; returns how
// many are still pending.
int64 apply_pending_summaries(int32 tier_id);

// Records a fire time that is not run (reason: misfire, overlap, coalesced,
// catch-up limit); when advance, moves the job to next_run_at. Returns the
// row's run_id, or 0 when the job changed since it was loaded.
int64 record_skipped(const DueJob &job, TimestampTz scheduled_for, const char *reason, const char *message,
                     bool advance, bool has_next, TimestampTz next_run_at, bool clear_request);

// Starts leading tier_id under its next leadership epoch; begin_run and
// record_skipped act only while that epoch is the tier's current one.
// Commit it durably.
int64 take_lease(int32 tier_id);

// Makes the tier's @reboot jobs due now.
void mark_reboot_jobs_due(int32 tier_id);

// Marks runs of this tier left 'running' by a process that is gone (not this
// one, nor a live pg_foreman process in live_pids) as 'crashed', in batches
// of 1000, with their summaries pending; returns how many.
int64 mark_orphaned_runs(int32 tier_id, const int32 *live_pids, int nlive);

// One job by id (as load_due_jobs reads it), or nullptr.
DueJob *load_job(int64 job_id, MemoryContext into);

// A run that waited for the executor cap: reason 'delayed', and how long.
void mark_run_delayed(int64 run_id, int64 waited_ms);

// Records this process as the one running run_id (an executor).
void set_run_pid(int64 run_id);

// An executor ended without recording its run: 'crashed' (if still running),
// its summary pending.
void mark_run_crashed(int64 run_id, const char *message);

} // namespace foreman::bgw
