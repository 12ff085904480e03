// job_runner.hpp: running one job's command as its owner and recording how it
// ended - shared by coordinators (sequential tiers) and executors (parallel
// tiers). The run row is already 'running' when runner_execute is called.
//
// A job's timeout (or a stop: SIGTERM, fast shutdown) cancels it; a job that
// catches the cancel and goes on is terminated foreman.cancel_grace later:
// its process exits (FATAL) after recording the run timed_out or cancelled,
// so no job outlives its timeout or holds up a shutdown for long.
#pragma once

#include "bgw/run_store.hpp"

#include <climits>
#include <csignal>

namespace foreman::bgw {

// Call once after connecting: registers the job's timers and the exit record.
void runner_init();

// SIGTERM handler for processes that run jobs: a running job is cancelled
// (and recorded 'cancelled'); the process leaves at its next safe point.
void runner_sigterm(SIGNAL_ARGS);
bool runner_stop_requested();
// A run recorded ahead of its due time waits for it (shmem.hpp,
// kRecordAheadUs): at most that lead and a wake-up's delay; a stop request
// (a signal ends pg_usleep) cuts it short.
void runner_wait_until(TimestampTz at);

// SIGINT handler for the same processes (pg_cancel_backend): cancels a
// running job; outside a job it only ends a wait for a synchronous standby.
void runner_sigint(SIGNAL_ARGS);

// Around the commit that records a run's start: runner_durable_end() is
// false when that commit's wait for a synchronous standby was cut by a
// signal (the start is not known to the standby, which may become the
// primary and run the fire time again) or the process is stopping. Then
// the job must not start: runner_not_started records why.
void runner_durable_begin();
bool runner_durable_end();

// A recorded run that will not start: its fire time did not run, and its
// row says so ('skipped', with the reason). False when it could not be
// recorded yet (kept pending, as runner_execute's outcomes; nothing else is
// recorded before it).
enum class NotStarted {
	Stopping,     // the process is stopping
	NotConfirmed, // the synchronous standby did not confirm its start
	Abandoned,    // queued in a batch the coordinator stopped running
};
bool runner_not_started(int64 run_id, int64 job_id, int32 attempt, NotStarted why);

// True while a job's command runs in this process.
bool runner_in_job();

// Totals a running job reports about itself (rows, batches).
void runner_report_totals(int64 rows, int32 batches);

// What the caller does around a run.
struct RunHooks {
	void (*on_start)(const DueJob &job, TimestampTz started); // before the command starts
};

// Runs job's command as its owner, resets the session, and records the
// outcome on run_id (with the job's summary, or that summary pending): a
// one-statement command's plain success in the command's own transaction, anything
// else after it. If the outcome cannot be recorded now it stays pending in
// memory (runner_flush_pending). Returns the run's status.
core::RunStatus runner_execute(const DueJob &job, int64 run_id, int32 attempt, TimestampTz started,
                               MemoryContext job_context, const RunHooks &hooks);

// A run whose outcome could not be recorded yet (e.g. a superuser's lock on
// foreman.job_run): runner_flush_pending() tries again; true when nothing is
// left pending. Call it before anything else that writes the catalog.
bool runner_flush_pending();
const char *runner_last_error(); // why the last flush failed

// True (once) when a recorded run's job summary had to wait for its job's
// row: the tier's leader applies pending summaries then.
bool runner_take_deferred_summary();

} // namespace foreman::bgw
