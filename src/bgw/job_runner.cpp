// job_runner.cpp: one job's command, as its owner, and its outcome.
#include "bgw/job_runner.hpp"
#include "bgw/command.hpp"
#include "bgw/session.hpp"
#include "bgw/shmem.hpp"
#include "pg/guard.hpp"
#include "pg/outcome_pg.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "replication/syncrep.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/ps_status.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr int kWatchdogMs = 100; // how often a running job's cancel is checked for escalation

volatile sig_atomic_t got_sigterm = false;
volatile sig_atomic_t in_job = false;
volatile sig_atomic_t job_timed_out = false;
volatile sig_atomic_t job_terminated = false;
// A signal ended this process's wait for a synchronous standby: the last
// commit is local only (see runner_durable_begin).
volatile sig_atomic_t sync_wait_cut = false;
// When the running job was cancelled (its timeout, or SIGTERM); 0: not yet.
// An aligned 64-bit store from a signal handler.
volatile TimestampTz cancelled_at = 0;
TimeoutId job_timeout_id;
TimeoutId watchdog_id;

// The run in progress, for the record made on the way out when the job had
// to be terminated (see runner_exit).
struct CurrentRun {
	int64 run_id;
	int64 job_id;
	int32 attempt;
	int64 timeout_ms;
	bool timeout_is_tier_cap;
};
CurrentRun current;

// A run's outcome, kept until the transaction that records it commits.
struct PendingFinish {
	bool pending;
	int64 run_id;
	int64 job_id;
	RunOutcome outcome; // strings in TopMemoryContext
};
PendingFinish pending;
char last_error[128];
bool deferred_summary = false;
// A job ran and its session was not reset yet (flush resets it; a job never
// starts before it is).
bool reset_needed = false;

// Totals reported by the running job itself (report_run_totals).
bool totals_reported = false;
int64 reported_rows = 0;
int32 reported_batches = 0;

// Signal context: a cancel, as statement_timeout would send.
void
cancel_job()
{
	QueryCancelPending = true;
	InterruptPending = true;
	if (cancelled_at == 0)
		cancelled_at = GetCurrentTimestamp();
	SetLatch(MyLatch);
}

// Signal context: a commit of this process waits for a synchronous standby.
bool
waiting_for_sync_standby()
{
	return MyProc != nullptr && MyProc->syncRepState == SYNC_REP_WAITING;
}

// Signal context: ends the wait for a synchronous standby the way a cancel
// ends it for any backend (SyncRepWaitForLSN returns with a WARNING; the
// commit stays, locally). Outside a job and that wait, nothing is cancelled:
// the process's own statements are not for anyone to cut.
void
cut_sync_wait()
{
	if (!waiting_for_sync_standby())
		return;
	sync_wait_cut = true;
	QueryCancelPending = true;
	InterruptPending = true;
}

void
job_timeout_handler()
{
	if (in_job) {
		job_timed_out = true;
		cancel_job();
	}
}

// Signal context: a job still running cancel_grace after its cancel caught
// it. ProcDiePending makes its next interrupt check exit the process (FATAL
// cannot be caught); runner_exit records the run on the way out.
void
watchdog_handler()
{
	if (!in_job || cancelled_at == 0)
		return;
	if (GetCurrentTimestamp() - cancelled_at >= (TimestampTz)guc_cancel_grace_ms * 1000) {
		job_terminated = true;
		ProcDiePending = true;
		InterruptPending = true;
		SetLatch(MyLatch);
	}
}

core::RunStatus
status_of(const CommandOutcome &outcome)
{
	if (outcome.ok)
		return core::RunStatus::Succeeded;
	if (outcome.sqlerrcode == ERRCODE_QUERY_CANCELED)
		return job_timed_out ? core::RunStatus::TimedOut : core::RunStatus::Cancelled;
	return core::RunStatus::Failed;
}

// Messages of jobs reach the server log: no line of theirs may look like
// one of the server's own.
char *
one_line(const char *text)
{
	char *copy = pstrdup(text ? text : "");
	for (char *p = copy; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return copy;
}

void
log_run(const DueJob &job, int64 run_id, core::RunStatus status, const char *message, TimestampTz started)
{
	bool failed = status != core::RunStatus::Succeeded;
	if (guc_log_runs == static_cast<int>(LogRuns::None) ||
	    (guc_log_runs == static_cast<int>(LogRuns::Failures) && !failed))
		return;
	long secs;
	int usecs;
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	double ms = secs * 1000.0 + usecs / 1000.0;
	if (failed)
		ereport(LOG, (errmsg("pg_foreman job \"%s\" (run %lld) %s after %.3f ms: %s", job.job_name,
		                     (long long)run_id, pg::run_status_name(status), ms, one_line(message))));
	else
		ereport(LOG, (errmsg("pg_foreman job \"%s\" (run %lld) succeeded in %.3f ms", job.job_name,
		                     (long long)run_id, ms)));
}

char *
top_strdup(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : nullptr;
}

void
keep_pending(int64 run_id, int64 job_id, const RunOutcome &o)
{
	pending.run_id = run_id;
	pending.job_id = job_id;
	pending.outcome = o;
	pending.outcome.reason = top_strdup(o.reason);
	pending.outcome.command_tag = top_strdup(o.command_tag);
	pending.outcome.sqlstate = top_strdup(o.sqlstate);
	pending.outcome.message = top_strdup(o.message);
	pending.outcome.owner_problem = top_strdup(o.owner_problem);
	pending.pending = true;
}

void
free_pending()
{
	for (const char *s : {pending.outcome.reason, pending.outcome.command_tag, pending.outcome.sqlstate,
	                      pending.outcome.message, pending.outcome.owner_problem})
		if (s)
			pfree(const_cast<char *>(s));
	memset(&pending, 0, sizeof pending);
}

// The message of a run cut by its timeout, and by which one.
void
describe_timeout(RunOutcome *o, int64 timeout_ms, bool tier_cap, bool terminated)
{
	const char *which = tier_cap ? "the tier's max_user_runtime" : "the job's timeout";
	o->reason = tier_cap ? "max_user_runtime" : nullptr;
	o->message = terminated ? psprintf("terminated: the job went on after its cancel for %s (%lld ms); "
	                                   "foreman.cancel_grace is %d ms",
	                                   which, (long long)timeout_ms, guc_cancel_grace_ms)
	                        : psprintf("canceling statement due to %s (%lld ms)", which, (long long)timeout_ms);
}

// On the way out of a process that was terminated in a job (or that ends
// while one runs): record how the run ended, so it is not left for the next
// leader to call 'crashed'. Runs before ShutdownPostgres (before_shmem_exit
// callbacks run last-registered first), with interrupts held.
void
runner_exit(int, Datum)
{
	if (!in_job || current.run_id == 0)
		return;
	in_job = false;
	RunOutcome o{};
	o.status = job_timed_out ? core::RunStatus::TimedOut : core::RunStatus::Cancelled;
	o.attempt = current.attempt;
	o.stopping = true;
	o.batches = -1;
	o.sqlstate = "57014";
	ErrorData *edata = pg::capture_pg_error([&]() {
		AbortOutOfAnyTransaction();
		session_leave_owner();
		if (o.status == core::RunStatus::TimedOut)
			describe_timeout(&o, current.timeout_ms, current.timeout_is_tier_cap, job_terminated);
		else
			o.message = job_terminated ? psprintf("terminated: the job went on after its cancel (a stop) for "
			                                      "foreman.cancel_grace (%d ms)",
			                                      guc_cancel_grace_ms)
			                           : pstrdup("the process running the job was stopped");
		o.finished_at = GetCurrentTimestamp();
		internal_xact_begin();
		(void)finish_run(current.run_id, current.job_id, o);
		internal_xact_commit();
	});
	// On an error the run is left 'running': the next leader settles it.
	if (edata)
		FreeErrorData(edata);
}

// Why the last record failed, for tier_status; the error goes to the log.
void
note_record_error(ErrorData *edata)
{
	strlcpy(last_error, edata->message ? edata->message : "error", sizeof last_error);
	edata->elevel = LOG;
	ThrowErrorData(edata);
	FreeErrorData(edata);
}

// The pending outcome's record, in a subtransaction: when it cannot be
// written (e.g. a lock timeout on foreman.job_run), only it is rolled back
// and it stays pending. False then.
bool
record_pending_in_subxact(bool *applied)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(context);
	ErrorData *edata = pg::capture_pg_error([&]() {
		*applied = finish_run(pending.run_id, pending.job_id, pending.outcome);
		ReleaseCurrentSubTransaction();
	});
	if (edata) {
		note_record_error(edata);
		RollbackAndReleaseCurrentSubTransaction();
	}
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	return edata == nullptr;
}

// Records the pending outcome; with reset_session, after resetting the
// session a job left, in the same transaction. The reset commits even when
// the record cannot be written (it touches no foreman table: no user's lock
// on one can stop it). Returns true when nothing is left pending.
bool
flush(bool reset_session)
{
	if (!pending.pending && !reset_session && !reset_needed)
		return true;
	reset_session |= reset_needed;
	MemoryContext context = CurrentMemoryContext;
	bool recorded = !pending.pending;
	bool applied = true;
	ErrorData *edata = pg::capture_pg_error([&]() {
		internal_xact_begin(false, reset_session);
		if (pending.pending)
			recorded = record_pending_in_subxact(&applied);
		internal_xact_commit();
		reset_needed = false;
	});
	if (edata) {
		// The reset itself, or the commit, failed: all of it is tried again.
		note_record_error(edata);
		AbortCurrentTransaction();
		recorded = false;
	}
	MemoryContextSwitchTo(context);
	if (recorded && pending.pending) {
		free_pending();
		if (!applied)
			deferred_summary = true;
	}
	return !pending.pending;
}

// Resets the session and records the outcome, in one transaction (the
// outcome kept pending until it commits).
void
record_outcome(const DueJob &job, int64 run_id, RunOutcome &o, TimestampTz started)
{
	o.finished_at = GetCurrentTimestamp();
	keep_pending(run_id, job.job_id, o);
	(void)flush(true);
	log_run(job, run_id, o.status, o.message, started);
}

// What a command's outcome says of its run.
void
take_outcome(RunOutcome *o, const CommandOutcome &outcome)
{
	o->status = status_of(outcome);
	o->rows = totals_reported ? (uint64)reported_rows : outcome.rows;
	o->batches = totals_reported ? reported_batches : -1;
	o->command_tag = outcome.command_tag;
	if (!outcome.ok) {
		o->sqlstate = unpack_sql_state(outcome.sqlerrcode);
		o->message = outcome.message;
	}
}

// A plain success recorded in its command's own transaction (BeforeCommit):
// the end of the run commits with the command's effects, or is rolled back
// with them when the commit fails (a deferred constraint, a serialization
// failure) - then the failure is recorded after, as any other. It saves the
// run a bookkeeping transaction of its own.
struct InXactRecord {
	int64 run_id;
	int64 job_id;
	RunOutcome *o; // the run's outcome so far (attempt, started_at)
	bool applied;  // finish_run's answer, when recorded
};

bool
record_in_command_xact(void *arg, const CommandOutcome &so_far)
{
	auto *r = static_cast<InXactRecord *>(arg);
	// Only in a transaction of the bookkeeping's own kind (READ COMMITTED,
	// read-write, at its top level), when nothing is pending before it and
	// the process is not stopping; otherwise after the commit. Nor when a
	// synchronous standby is named: the commit may then wait for it, and the
	// job's and the run's rows would stay locked through that wait.
	if (got_sigterm || pending.pending || XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly ||
	    GetCurrentTransactionNestLevel() != 1 || (SyncRepStandbyNames != nullptr && SyncRepStandbyNames[0] != '\0'))
		return false;
	RunOutcome &o = *r->o;
	CommandOutcome succeeded = so_far;
	succeeded.ok = true;
	take_outcome(&o, succeeded);
	o.plain = true;
	o.finished_at = GetCurrentTimestamp(); // the statement's end; its commit follows

	// As the bookkeeping's role, in a subtransaction: a record that cannot
	// be written here rolls back alone and is written after the commit.
	Oid user;
	int sec_context;
	GetUserIdAndSecContext(&user, &sec_context);
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	SetUserIdAndSecContext(session_worker_user(), sec_context | SECURITY_LOCAL_USERID_CHANGE);
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(context);
	bool recorded = false;
	ErrorData *edata = pg::capture_pg_error([&]() {
		recorded = finish_plain_in_job(r->run_id, r->job_id, o, &r->applied);
		ReleaseCurrentSubTransaction();
	});
	if (edata) {
		RollbackAndReleaseCurrentSubTransaction();
		recorded = false;
	}
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	SetUserIdAndSecContext(user, sec_context);
	if (edata) {
		// A cancel (the job's timeout, a stop) that came before the commit
		// cancels the command, as it would have a moment earlier.
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ereport(DEBUG1, (errmsg("pg_foreman: run %lld is recorded after its commit: %s", (long long)r->run_id,
		                        edata->message ? edata->message : "error")));
		FreeErrorData(edata);
	}
	return recorded;
}

// After a run recorded in its command's transaction: the session is reset
// as after any run (flush, with nothing pending: a transaction that writes
// nothing), and the run logged.
void
settle_recorded(const DueJob &job, int64 run_id, const RunOutcome &o, TimestampTz started, bool applied)
{
	if (!applied)
		deferred_summary = true;
	(void)flush(true);
	log_run(job, run_id, o.status, o.message, started);
}

} // namespace

void
runner_init()
{
	job_timeout_id = RegisterTimeout(USER_TIMEOUT, job_timeout_handler);
	watchdog_id = RegisterTimeout(USER_TIMEOUT, watchdog_handler);
	before_shmem_exit(runner_exit, 0);
}

void
runner_sigterm(SIGNAL_ARGS)
{
	int save_errno = errno;
	got_sigterm = true;
	if (in_job)
		cancel_job();
	else
		cut_sync_wait();
	SetLatch(MyLatch);
	errno = save_errno;
}

void
runner_sigint(SIGNAL_ARGS)
{
	int save_errno = errno;
	// In a job, a cancel as any backend takes it (pg_cancel_backend, or the
	// job's own statement_timeout or lock_timeout, which PostgreSQL delivers
	// as a SIGINT to itself). Outside a job, only the bookkeeping's own
	// lock_timeout cancels a statement; anyone else's cancel only ends a
	// wait for a synchronous standby.
	if (!proc_exit_inprogress) {
		if (in_job || get_timeout_indicator(LOCK_TIMEOUT, false) || get_timeout_indicator(STATEMENT_TIMEOUT, false)) {
			QueryCancelPending = true;
			InterruptPending = true;
		} else {
			cut_sync_wait();
		}
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

void
runner_durable_begin()
{
	sync_wait_cut = false;
}

bool
runner_durable_end()
{
	return !sync_wait_cut && !got_sigterm;
}

bool
runner_stop_requested()
{
	return got_sigterm;
}

void
runner_wait_until(TimestampTz at)
{
	int64 left = at - GetCurrentTimestamp();
	if (left > 0 && !got_sigterm)
		pg_usleep(Min(left, kRecordAheadUs + 1000));
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

bool
runner_take_deferred_summary()
{
	bool was = deferred_summary;
	deferred_summary = false;
	return was;
}

core::RunStatus
runner_execute(const DueJob &job, int64 run_id, int32 attempt, TimestampTz started, MemoryContext job_context,
               const RunHooks &hooks)
{
	MemoryContext caller = CurrentMemoryContext; // given back: job_context is reset by the next run
	if (got_sigterm) {
		(void)runner_not_started(run_id, job.job_id, attempt, NotStarted::Stopping);
		return core::RunStatus::Skipped;
	}
	// The previous job's session is reset before this one starts.
	if (reset_needed)
		(void)flush(true);
	if (reset_needed)
		ereport(ERROR, (errmsg("pg_foreman: the session of the last job could not be reset: %s", last_error)));
	CommandOutcome outcome{};
	MemoryContextReset(job_context);
	RunOutcome o{};
	o.attempt = attempt;
	o.batches = -1;
	// A success would be plain (finish_run): its record can be written in
	// the command's own transaction.
	bool plain_if_succeeded = job.log_runs == LogRuns::All && job.notify != Notify::All && !job.has_downstreams;
	InXactRecord in_xact{run_id, job.job_id, &o, false};
	const BeforeCommit before_commit{record_in_command_xact, &in_xact};
	// Checked at every run: the owner may have been dropped, lost LOGIN,
	// foreman_user or CONNECT since the job was scheduled. Then the run fails
	// and the job is disabled; it never runs with more rights than its owner.
	if (job.owner_status.problem) {
		o.status = core::RunStatus::Failed;
		o.reason = "owner check";
		o.sqlstate = "42501";
		o.message = job.owner_status.problem;
		o.owner_problem = job.owner_status.problem;
	} else {
		if (hooks.on_start)
			hooks.on_start(job, started);
		pgstat_report_activity(STATE_RUNNING, job.command);
		set_ps_display(job.job_name);
		current = CurrentRun{run_id, job.job_id, attempt, job.timeout_ms, job.timeout_is_tier_cap};
		session_enter_owner(job.owner, job.owner_status.superuser);
		job_timed_out = false;
		job_terminated = false;
		cancelled_at = 0;
		totals_reported = false;
		o.started_at = GetCurrentTimestamp();
		in_job = true;
		if (got_sigterm)
			cancel_job();
		CHECK_FOR_INTERRUPTS(); // a stop that came while the owner was entered: cancelled before it starts
		if (job.timeout_ms > 0)
			enable_timeout_after(job_timeout_id, (int)Min(job.timeout_ms, (int64)INT_MAX));
		enable_timeout_every(watchdog_id, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kWatchdogMs),
		                     kWatchdogMs);
		run_command(job.command, job.job_id, job_context, &outcome, plain_if_succeeded ? &before_commit : nullptr);
		reset_needed = true;
		in_job = false;
		current.run_id = 0;
		disable_timeout(job_timeout_id, false);
		disable_timeout(watchdog_id, false);
		QueryCancelPending = false;
		session_leave_owner();
		set_ps_display("idle");
		pgstat_report_activity(STATE_IDLE, nullptr);

		take_outcome(&o, outcome);
		if (o.status == core::RunStatus::TimedOut)
			describe_timeout(&o, job.timeout_ms, job.timeout_is_tier_cap, false);
	}
	o.stopping = got_sigterm;
	o.plain = o.status == core::RunStatus::Succeeded && plain_if_succeeded;
	if (outcome.ok && outcome.recorded)
		settle_recorded(job, run_id, o, started, in_xact.applied);
	else
		record_outcome(job, run_id, o, started);
	MemoryContextSwitchTo(caller);
	return o.status;
}

bool
runner_not_started(int64 run_id, int64 job_id, int32 attempt, NotStarted why)
{
	RunOutcome o{};
	o.status = core::RunStatus::Skipped;
	o.attempt = attempt;
	o.batches = -1;
	o.stopping = true;
	switch (why) {
	case NotStarted::Stopping:
		o.reason = "stopping";
		o.message = "the process was stopping before the job started; it did not run";
		break;
	case NotStarted::NotConfirmed:
		o.reason = "start not confirmed";
		o.message = "the wait for the synchronous standby to confirm the run's start was cancelled; "
		            "the job did not run";
		break;
	case NotStarted::Abandoned:
		o.reason = "not started";
		o.message = "its start was recorded with others in one commit, and the coordinator stopped running "
		            "that batch (it lost the lead or met an error) before this one; it did not run";
		break;
	}
	o.finished_at = GetCurrentTimestamp();
	if (pending.pending && !runner_flush_pending())
		return false;
	keep_pending(run_id, job_id, o);
	return runner_flush_pending();
}


const char *
runner_last_error()
{
	return last_error;
}

bool
runner_flush_pending()
{
	return flush(false);
}

} // namespace foreman::bgw
