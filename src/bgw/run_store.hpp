// run_store.hpp: the coordinator's bookkeeping in foreman.job and
// foreman.job_run. Every function runs inside an internal transaction opened
// with internal_xact_begin(); statements are prepared once per process.
#pragma once

#include "pg/postgres.hpp"
#include "pg/schedule_pg.hpp"

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
};

// What a tier's coordinator needs to know between jobs.
struct TierState {
	bool exists;
	bool enabled;
	int64 tick_ms;
	bool has_next_run;
	TimestampTz next_run_at; // earliest next_run_at of the tier's enabled jobs
	bool requested;          // some job has a run_now request
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
// run_id, or 0 when the job changed or was disabled since it was loaded.
int64 begin_run(const DueJob &job, bool has_next, TimestampTz next_run_at, bool clear_request,
                TimestampTz scheduled_for, TimestampTz started_at, int32 attempt);

// Records a finished run and the job's last outcome, pending retry and
// failure count (disabling it after max_failures). batches < 0: not a
// batched job. keep_row false: the job's log_runs does not keep this run.
// disable_reason: disable the job with that reason (its owner may not run it).
void finish_run(int64 run_id, const char *status, uint64 rows, int32 batches, const char *command_tag,
                const char *sqlstate, const char *message, bool keep_row, bool has_retry, TimestampTz retry_at,
                int32 retry_attempt, const char *disable_reason);

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
// of 1000; returns how many.
int64 mark_orphaned_runs(int32 tier_id, const int32 *live_pids, int nlive);

// One job by id (as load_due_jobs reads it), or nullptr.
DueJob *load_job(int64 job_id, MemoryContext into);

// A run that waited for the executor cap: reason 'delayed', and how long.
void mark_run_delayed(int64 run_id, int64 waited_ms);

// Records this process as the one running run_id (an executor).
void set_run_pid(int64 run_id);

// An executor ended without recording its run: 'crashed' (if still running).
void mark_run_crashed(int64 run_id, const char *message);

} // namespace foreman::bgw
