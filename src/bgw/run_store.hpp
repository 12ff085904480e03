// run_store.hpp: the coordinator's bookkeeping in foreman.job and
// foreman.job_run, in typed rows. Every function runs inside an internal
// transaction opened with internal_xact_begin(); the SQL is in
// run_store.cpp, prepared once per process (statements.hpp).
#pragma once

#include "pg/postgres.hpp"
#include "pg/roles.hpp"
#include "pg/schedule_pg.hpp"
#include "pg/settings.hpp"
#include "core/outcome.hpp"
#include "core/policy.hpp"

extern "C" {
#include "nodes/pg_list.h"
}

namespace foreman::bgw {

// Which of a job's runs raise an event (LISTEN foreman_events).
enum class Notify : uint8 { None, Failures, All };

// A job as the coordinator reads it, palloc'd in the caller's context. Every
// column is read by name, once, here; text settings are enums.
struct DueJob {
	int64 job_id;
	int64 revision;
	char *job_name;
	char *command;
	Oid owner;
	pg::OwnerStatus owner_status; // checked at every load: may it run jobs, is it bound by per-role limits
	bool enabled;                 // false: paused (a run_now still runs it)
	bool has_next_run;
	TimestampTz next_run_at;
	bool requested; // a run_now request is due
	TimestampTz requested_at;
	int64 timeout_ms;         // 0: none
	bool timeout_is_tier_cap; // timeout_ms is the tier's max_user_runtime, shorter than the job's own
	pg::JobSchedule schedule;
	pg::DuePolicyPg policy;
	core::Overlap overlap;
	bool retry_due; // a retry is pending and due
	TimestampTz retry_at;
	int32 retry_attempt; // the attempt number of the pending retry
	LogRuns log_runs;
	Notify notify;
	int32 max_instances; // overlap 'allow': runs of it at once in a parallel tier
	bool chain_due;      // a run as a downstream is due (its upstreams ended)
	int64 chain_id;      // ... in this instance (the root run's id)
	TimestampTz chain_requested_at;
	int64 retry_chain_id; // the instance a pending retry belongs to (0: none)
	bool has_downstreams; // other jobs run after it (when it was loaded)
};

// What a tier's coordinator needs to know between jobs.
struct TierState {
	bool exists;
	bool enabled;
	int64 tick_ms;
	bool has_next_run;
	TimestampTz next_run_at; // earliest fire time, retry or run_now request of the tier's jobs
	int32 concurrency;       // > 1: a parallel tier (executors)
};

// Opens/commits an internal transaction: search_path pinned to pg_catalog,
// its own isolation (read committed, read-write, never deferrable), a short
// lock_timeout so a lock on a foreman table cannot freeze the tier, no
// statement_timeout. Not durable: synchronous_commit off (after a crash such
// a record may be lost, e.g. a finished run shows as 'crashed'). Durable: the
// record of a run that starts, which must survive a crash of the run itself,
// so that no fire time runs twice or silently vanishes. reset_session: the
// session a job left is reset first (session_reset), before those settings.
void internal_xact_begin(bool durable = false, bool reset_session = false);
void internal_xact_commit();

TierState read_tier_state(int32 tier_id);

// Due jobs of the tier, oldest due first, at most `limit`, copied into `into`
// (a List of DueJob *). A paused job is due only for a run_now request.
List *load_due_jobs(int32 tier_id, TimestampTz now, int limit, MemoryContext into);

// A run that starts: the fire time it stands for, its attempt, and what the
// job's next_run_at becomes.
struct RunStart {
	TimestampTz scheduled_for;
	TimestampTz started_at;
	int32 attempt;
	bool has_next;
	TimestampTz next_run_at;
	bool clear_request;         // it consumes the job's run_now request
	int64 chain_id;             // the pipeline instance it belongs to (0: it starts its own, if any)
	bool consume_chain_request; // it is the downstream run its upstreams requested
	bool for_executor;          // an executor will run it: no process has it yet (pid NULL until it takes it)
	// Earlier fire times this run stands for (coalesced, or beyond the
	// catch-up limit): one 'skipped' row for them, written before the run's.
	const char *folded_reason; // NULL: none
	const char *folded_message;
	TimestampTz folded_from;
};

// Records a run as started: advances the job's next_run_at (or clears its
// run_now request) and inserts a 'running' row, in one statement. The job's
// row must have been taken by lock_for_starts in this transaction. Returns
// the run_id, or 0 when the job changed or was disabled since it was loaded.
int64 begin_run(const DueJob &job, const RunStart &start);

// Takes the rows of the jobs about to start or skip a fire time, in this
// transaction, under this leadership's epoch: locked[i] says whether
// job_ids[i] was taken (not when its owner holds it, nor when the tier's
// epoch moved on). begin_run and record_skipped only change rows taken so.
int lock_for_starts(const int64 *job_ids, int n, bool *locked);

// Whether lock_for_starts found this leadership's epoch gone from
// foreman.tier_lease (checked when it could not take every row): another
// process took the tier's next epoch, or the extension was dropped and
// created again while this process led (the new table's epochs start anew).
// Cleared by the call.
bool take_lease_lost();

// A fire time that is not run (misfire, overlap, coalesced, catch-up limit).
struct SkipRecord {
	TimestampTz scheduled_for;
	const char *reason;
	const char *message;
	bool advance; // move the job to next_run_at
	bool has_next;
	TimestampTz next_run_at;
	bool clear_request;
};

// Records a 'skipped' row (the job's row taken by lock_for_starts); returns
// its run_id, or 0 when the job changed since it was loaded.
int64 record_skipped(const DueJob &job, const SkipRecord &skip);

// How a run ended, as its row records it. Strings may be NULL.
struct RunOutcome {
	core::RunStatus status;
	const char *reason;        // e.g. 'owner check', 'max_user_runtime', 'process ended'
	uint64 rows;
	int32 batches;             // < 0: not a batched job
	const char *command_tag;
	const char *sqlstate;
	const char *message;
	TimestampTz started_at;    // when the command started (0: as recorded when the run was)
	TimestampTz finished_at;
	int32 attempt;
	bool stopping;             // its process was being stopped (no retry now)
	bool start_unknown;        // crashed, reason 'start unknown' (not the job's failure)
	bool plain;                // nothing but the job's own row follows from it: no event, no downstreams, row kept
	const char *owner_problem; // the owner may not run jobs: the job is disabled with this reason
};

// Records how run_id of job_id ended and, in the same statement, the job's
// summary by the one rule (core::summarize: failure count, retry, crash
// back-off, automatic disabling; the row is dropped when the job's log_runs
// does not keep it), and raises its event (sent at commit). The job's row is
// taken with SKIP LOCKED: when its owner holds it in an open transaction, the
// run is recorded with summary_pending and apply_pending_summaries() finishes
// it later. Returns true when the summary was applied (or the job is gone).
bool finish_run(int64 run_id, int64 job_id, const RunOutcome &outcome);

// finish_run for a plain success (outcome.plain), written in the job's own
// transaction before it commits (job_runner.cpp): false, with nothing
// written, when it cannot be written there now - an older catalog or one
// being updated, direct writes off, a table not as expected; *applied as
// finish_run's answer otherwise. Waits for a row lock at most a second.
bool finish_plain_in_job(int64 run_id, int64 job_id, const RunOutcome &outcome, bool *applied);

// Applies the summaries still pending in the tier, oldest first, at most a
// batch; returns how many are still pending.
int64 apply_pending_summaries(int32 tier_id);

// Starts leading tier_id under its next leadership epoch; begin_run and
// record_skipped act only while that epoch is the tier's current one.
// Commit it durably.
int64 take_lease(int32 tier_id);

// Makes the tier's @reboot jobs due now.
void mark_reboot_jobs_due(int32 tier_id);

// Marks runs of this tier left 'running' by a process that is gone (not this
// one, nor a live pg_foreman process in live_pids) as 'crashed', in batches
// of 1000, each with its job's summary; returns how many.
// known_runs: runs that are no orphans though no live process has them yet
// (queued for executors, or taken and not yet claimed).
int64 mark_orphaned_runs(int32 tier_id, const int32 *live_pids, int nlive, const int64 *known_runs = nullptr,
                         int nknown = 0);

// How many of the tier's enabled jobs are due by `at`, at most `limit`.
int count_due_by(int32 tier_id, TimestampTz at, int limit);

// A run that waited for the executor cap: reason 'delayed', and how long.
void mark_run_delayed(int64 run_id, int64 waited_ms);

// An executor takes run_id: records itself as its process, if the run is
// still 'running' with none (claimed false: it was settled meanwhile - not
// run), and reads what running it needs of its job into `into` (job
// nullptr: the job was unscheduled meanwhile). The DueJob has the fields
// runner_execute reads (name, owner, command, timeout, log_runs, notify,
// has_downstreams), not the schedule nor the due policy.
struct Claim {
	bool claimed;
	DueJob *job;
};
Claim claim_run(int64 run_id, MemoryContext into);

// An executor ended without recording its run: 'crashed' (if still
// running), with its job's summary.
void mark_run_crashed(int64 run_id, const char *message);

} // namespace foreman::bgw
