// job_runner.cpp: one job's command, as its owner, and its outcome.
#include "bgw/job_runner.hpp"
#include "bgw/command.hpp"
#include "bgw/session.hpp"
#include "pg/schedule_pg.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/ps_status.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

volatile sig_atomic_t got_sigterm = false;
volatile sig_atomic_t in_job = false;
volatile sig_atomic_t job_timed_out = false;
TimeoutId job_timeout_id;
// A run's outcome, kept until the transaction that records it commits.
struct PendingFinish {
	bool pending;
	int64 run_id;
	char status[16];
	uint64 rows;
	int32 batches;
	char *command_tag;
	bool has_sqlstate;
	char sqlstate[6];
	char *message;
	bool keep_row;
	bool has_retry;
	TimestampTz retry_at;
	int32 next_attempt;
	char *disable_reason;
};
PendingFinish pending;
char last_error[128];

// Totals reported by the running job itself (report_run_totals).
bool totals_reported = false;
int64 reported_rows = 0;
int32 reported_batches = 0;

// The job's own timeout: a cancel, as statement_timeout would send.
void
job_timeout_handler()
{
	if (in_job) {
		job_timed_out = true;
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
}

const char *
status_of(const CommandOutcome &outcome)
{
	if (outcome.ok)
		return "succeeded";
	if (outcome.sqlerrcode == ERRCODE_QUERY_CANCELED)
		return job_timed_out ? "timed_out" : "cancelled";
	return "failed";
}

void
log_run(const DueJob &job, int64 run_id, const char *status, const CommandOutcome &outcome, TimestampTz started)
{
	bool failed = !outcome.ok;
	if (guc_log_runs == static_cast<int>(LogRuns::None) ||
	    (guc_log_runs == static_cast<int>(LogRuns::Failures) && !failed))
		return;
	long secs;
	int usecs;
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	double ms = secs * 1000.0 + usecs / 1000.0;
	if (failed)
		ereport(LOG, (errmsg("pg_foreman job \"%s\" (run %lld) %s after %.3f ms: %s", job.job_name,
		                     (long long)run_id, status, ms, outcome.message)));
	else
		ereport(LOG, (errmsg("pg_foreman job \"%s\" (run %lld) succeeded in %.3f ms", job.job_name,
		                     (long long)run_id, ms)));
}

} // namespace

void
runner_init()
{
	job_timeout_id = RegisterTimeout(USER_TIMEOUT, job_timeout_handler);
}

void
runner_sigterm(SIGNAL_ARGS)
{
	int save_errno = errno;
	got_sigterm = true;
	if (in_job) {
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

bool
runner_stop_requested()
{
	return got_sigterm;
}

bool
runner_in_job()
{
	return in_job;
}

void
runner_report_totals(int64 rows, int32 batches)
{
	if (!in_job)
		return;
	totals_reported = true;
	reported_rows = rows;
	reported_batches = batches;
}

const char *
runner_execute(const DueJob &job, int64 run_id, int32 attempt, TimestampTz started, MemoryContext job_context,
               const RunHooks &hooks)
{
	CommandOutcome outcome;
	MemoryContextReset(job_context);
	// Checked at every run: the owner may have been dropped, lost LOGIN,
	// foreman_user or CONNECT since the job was scheduled. Then the run fails
	// and the job is disabled; it never runs with more rights than its owner.
	if (job.owner_problem) {
		memset(&outcome, 0, sizeof outcome);
		outcome.sqlerrcode = ERRCODE_INSUFFICIENT_PRIVILEGE;
		outcome.message = pstrdup(job.owner_problem);
	} else {
		if (hooks.on_start)
			hooks.on_start(job, started);
		pgstat_report_activity(STATE_RUNNING, job.command);
		set_ps_display(job.job_name);
		session_enter_owner(job.owner, job.owner_is_superuser);
		job_timed_out = false;
		totals_reported = false;
		in_job = true;
		if (got_sigterm) {
			QueryCancelPending = true;
			InterruptPending = true;
		}
		if (job.timeout_ms > 0)
			enable_timeout_after(job_timeout_id, (int)Min(job.timeout_ms, (int64)INT_MAX));
		run_command(job.command, job_context, &outcome);
		in_job = false;
		disable_timeout(job_timeout_id, false);
		QueryCancelPending = false;
		session_leave_owner();
		set_ps_display("idle");
		pgstat_report_activity(STATE_IDLE, nullptr);
	}

	const char *status = status_of(outcome);
	if (strcmp(status, "timed_out") == 0)
		outcome.message = psprintf("canceling statement due to the job's timeout (%lld ms)", (long long)job.timeout_ms);
	char sqlstate[6] = "";
	if (!outcome.ok)
		strlcpy(sqlstate, unpack_sql_state(outcome.sqlerrcode), sizeof sqlstate);
	bool failed = strcmp(status, "failed") == 0 || strcmp(status, "timed_out") == 0;

	// Retries: attempt n failed, and retries allow another: back off.
	bool has_retry = failed && attempt <= job.retries && !got_sigterm && !job.owner_problem;
	TimestampTz retry_at = 0;
	if (has_retry)
		retry_at = TimestampTzPlusMilliseconds(
			GetCurrentTimestamp(), pg::retry_delay_us(job.retry_backoff_us, attempt, job.retry_backoff_max_us) / 1000);
	bool keep_row = strcmp(job.log_runs, "all") == 0 || (strcmp(job.log_runs, "failures") == 0 && !outcome.ok);

	// The session first (it touches no foreman table, so no user's lock on
	// one can stop it): the next job must not see this one's state.
	internal_xact_begin();
	session_reset();
	if (hooks.after_reset)
		hooks.after_reset();
	internal_xact_commit();

	// Then the outcome. Kept until it commits: a lock a user holds on a
	// foreman table delays it (lock_timeout), it does not lose it.
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	pending.run_id = run_id;
	strlcpy(pending.status, status, sizeof pending.status);
	pending.rows = totals_reported ? (uint64)reported_rows : outcome.rows;
	pending.batches = totals_reported ? reported_batches : -1;
	pending.command_tag = outcome.command_tag ? pstrdup(outcome.command_tag) : nullptr;
	strlcpy(pending.sqlstate, sqlstate, sizeof pending.sqlstate);
	pending.has_sqlstate = !outcome.ok;
	pending.message = !outcome.ok && outcome.message ? pstrdup(outcome.message) : nullptr;
	pending.keep_row = keep_row;
	pending.has_retry = has_retry;
	pending.retry_at = retry_at;
	pending.next_attempt = attempt + 1;
	pending.disable_reason = job.owner_problem ? pstrdup(job.owner_problem) : nullptr;
	pending.pending = true;
	MemoryContextSwitchTo(old);
	(void)runner_flush_pending();
	log_run(job, run_id, status, outcome, started);
	return status;
}

const char *
runner_last_error()
{
	return last_error;
}

bool
runner_has_pending()
{
	return pending.pending;
}

bool
runner_flush_pending()
{
	if (!pending.pending)
		return true;
	MemoryContext context = CurrentMemoryContext;
	volatile bool done = false;
	PG_TRY();
	{
		internal_xact_begin();
		finish_run(pending.run_id, pending.status, pending.rows, pending.batches, pending.command_tag,
		           pending.has_sqlstate ? pending.sqlstate : nullptr, pending.message, pending.keep_row,
		           pending.has_retry, pending.retry_at, pending.next_attempt, pending.disable_reason);
		internal_xact_commit();
		done = true;
	}
	PG_CATCH();
	{
		// E.g. a lock timeout on foreman.job_run: log it, abort, try later.
		MemoryContextSwitchTo(context);
		ErrorData *edata = CopyErrorData();
		strlcpy(last_error, edata->message ? edata->message : "error", sizeof last_error);
		FreeErrorData(edata);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	if (done) {
		if (pending.command_tag)
			pfree(pending.command_tag);
		if (pending.message)
			pfree(pending.message);
		if (pending.disable_reason)
			pfree(pending.disable_reason);
		memset(&pending, 0, sizeof pending);
	}
	return done;
}

} // namespace foreman::bgw
