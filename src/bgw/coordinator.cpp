// coordinator.cpp: one tier of one database - its state machine and loop.
//
// States (src/bgw/README.md): starting -> waiting for leadership <-> idle ->
// bookkeeping -> running -> bookkeeping -> idle ... -> stopping, and blocked
// after a bookkeeping error. A coordinator runs nothing until it leads
// (leadership.cpp); then it marks the runs its dead predecessor left
// 'running' as 'crashed', and runs due jobs - one after another
// (sequential.cpp) or in executors (parallel.cpp). It sleeps on its latch
// until the next due time; schedule changes and run_now set that latch.
#include "bgw/coordinator_state.hpp"
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "bgw/session.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "libpq/pqsignal.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

Coordinator coord;

namespace {

constexpr int kDueBatch = 64;              // due jobs loaded per catalog read
constexpr long kHeartbeatMs = 5000;        // an idle coordinator still beats this often
constexpr long kMaxErrorBackoffMs = 5000;  // after a bookkeeping error, wait at most this
constexpr int kJobBeatMs = 1000;           // a running job's process beats this often

TimeoutId beat_timeout_id;

// Signal context: one aligned store, no lock. A process that is alive beats
// even inside a long statement; a frozen one does not.
void
job_beat_handler()
{
	if (coord.slot >= 0)
		my_slot().job_beat_at = GetCurrentTimestamp();
}

// Which state may follow which. Stopping may follow any; nothing follows it.
bool
allowed(CoordState from, CoordState to)
{
	using S = CoordState;
	switch (from) {
	case S::Starting:
	case S::WaitingForLeadership:
		return to == S::WaitingForLeadership || to == S::Idle || to == S::Blocked || to == S::Stopping;
	case S::Idle:
	case S::Blocked:
		return to != S::Starting && to != S::Running;
	case S::Bookkeeping:
		return to != S::Starting;
	case S::Running:
		return to == S::Bookkeeping || to == S::Blocked || to == S::Stopping;
	case S::Stopping:
		return false;
	}
	return false;
}

void
claim_slot(const char *dbname, const char *tier_name)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots && coord.slot < 0; i++)
		if (sh->slots[i].pid == 0) {
			coord.slot = i;
			CoordinatorSlot &slot = sh->slots[i];
			memset(&slot, 0, sizeof slot);
			slot.pid = MyProcPid;
			slot.dboid = coord.args.dboid;
			slot.tier_id = coord.args.tier_id;
			slot.state = CoordState::Starting;
			strlcpy(slot.dbname, dbname, kNameLen);
			strlcpy(slot.tier_name, tier_name, kNameLen);
			slot.started_at = slot.heartbeat_at = GetCurrentTimestamp();
			slot.latch = MyLatch;
		}
	LWLockRelease(sh->lock);
	if (coord.slot < 0)
		ereport(FATAL, (errmsg("pg_foreman: no free coordinator slot")));
}

void
release_slot(int, Datum)
{
	if (coord.slot < 0)
		return;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	memset(&my_slot(), 0, sizeof(CoordinatorSlot));
	LWLockRelease(sh->lock);
	coord.slot = -1;
}

// Runs left 'running' by a process that is gone are settled - once per
// leadership (and when an executor ends). Runs whose process is alive are not
// orphans: another coordinator of this tier finishing its last run, or an
// executor.
void
mark_orphans_once()
{
	mark_orphans_now();
	mark_reboot_jobs_due(coord.args.tier_id);
	coord.orphans_checked = true;
	coord.summaries_pending = true; // any a predecessor left waiting
}

// Summaries of runs whose job's row an owner held: tried again at most once
// a second while some wait.
void
apply_summaries_if_pending(TimestampTz now)
{
	coord.summaries_pending |= runner_take_deferred_summary() || take_executor_deferred_summaries();
	if (!coord.summaries_pending || !TimestampDifferenceExceeds(coord.summaries_tried_at, now, 1000))
		return;
	coord.summaries_pending = apply_pending_summaries(coord.args.tier_id) > 0;
	coord.summaries_tried_at = now;
}

// The tier's next due time when the coordinator went to sleep for it (0:
// none): it wakes a little before, records the starts of the jobs due at it
// and waits for it before the first starts (sequential.cpp, parallel.cpp).
TimestampTz sleeping_until = 0;
constexpr int64 kWakeEarlyUs = 1000; // the latch's millisecond timeout and a wake-up's own delay
// The due time a parallel tier last started executors ahead of (0: none).
TimestampTz prewarmed_for = 0;
// A wake-up for the executors' lead counts as on time this close to it (the
// latch's timeout is in whole milliseconds, and may end a little early).
constexpr int64 kLeadSlackUs = 5000;

// Until the tier's next due time, capped by `timeout`; kRecordAheadUs early
// (the starts are recorded, then the first job waits for the due time). A
// parallel tier wakes first executor_lead_us() before it, once per due time,
// to start its executors.
long
until_next_due(const TierState &tier, long timeout)
{
	sleeping_until = 0;
	if (!tier.has_next_run)
		return timeout;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = tier.next_run_at - kRecordAheadUs;
	TimestampTz lead_at = tier.next_run_at - executor_lead_us(tier);
	bool lead = lead_at < wake && lead_at - kLeadSlackUs > now && prewarmed_for != tier.next_run_at;
	if (lead)
		wake = lead_at;
	long until = wake <= now ? 0 : (long)((wake - now) / 1000);
	if (until < timeout && !lead)
		sleeping_until = tier.next_run_at;
	return Min(timeout, until);
}

// Nothing due yet, the next due time within the executors' lead: how many
// executors its jobs will want (counted once per due time).
int
due_soon(const TierState &tier, TimestampTz now)
{
	int64 lead = executor_lead_us(tier);
	if (lead == 0 || !tier.has_next_run || tier.next_run_at - now > lead + kLeadSlackUs ||
	    prewarmed_for == tier.next_run_at)
		return 0;
	prewarmed_for = tier.next_run_at;
	return count_due_by(coord.args.tier_id, tier.next_run_at, tier.concurrency);
}

// Woken for a due time: returns it, for the cycle to record the starts of
// the jobs due at it at once (0: not woken for one - e.g. by the latch,
// long before it).
TimestampTz
wake_on_time()
{
	TimestampTz due = sleeping_until;
	sleeping_until = 0;
	if (due == 0)
		return 0;
	int64 left = due - GetCurrentTimestamp();
	return left > 0 && left <= kRecordAheadUs + kWakeEarlyUs ? due : 0;
}

// One pass as leader: read the tier, run what is due, say how long to sleep.
long
leader_cycle()
{
	MemoryContextReset(coord.cycle_context);
	// What a cycle allocates lives until the next one (or an error).
	MemoryContextSwitchTo(coord.cycle_context);
	TimestampTz woken_for = wake_on_time();
	reap_executors();
	TimestampTz now = GetCurrentTimestamp();

	internal_xact_begin();
	if (!coord.orphans_checked)
		mark_orphans_once();
	apply_summaries_if_pending(now);
	TierState tier = read_tier_state(coord.args.tier_id);
	List *due = NIL;
	int soon = 0;
	// Woken for a due time: the jobs due at it are read (and their starts
	// recorded before it; no job starts before it: at most kRecordAheadUs).
	TimestampTz due_by = woken_for > now ? woken_for : now;
	if (tier.exists && tier.enabled) {
		// The tier's state has its earliest due time (a fire time, a retry,
		// a run_now, a downstream's request): nothing due before due_by, no
		// read of the due jobs. An idle tier's tick is then one statement;
		// what commits after that statement is read at the next cycle (a
		// change through the API sets the latch at its commit).
		if (tier.has_next_run && tier.next_run_at <= due_by)
			due = load_due_jobs(coord.args.tier_id, due_by, kDueBatch, coord.cycle_context);
		soon = due == NIL ? due_soon(tier, now) : 0;
	}
	internal_xact_commit();

	if (!tier.exists || !tier.enabled) {
		ereport(LOG, (errmsg("%s: tier %s, exiting", coord.name, tier.exists ? "disabled" : "dropped")));
		request_rescan(MyDatabaseId);
		proc_exit(0);
	}
	long timeout = tier.tick_ms;
	if (coord.summaries_pending)
		timeout = Min(timeout, 1000L);
	if (soon > 0)
		prewarm_executors(tier, soon);
	long asked = tier.concurrency > 1 ? run_parallel(due, tier, timeout, due_by) : run_sequential(due, timeout, due_by);
	return asked >= 0 ? asked : until_next_due(tier, timeout);
}

// Error recovery for bookkeeping (a job's own errors never get here): log,
// clean up, and back off; a dropped extension ends the coordinator.
void
recover_from_error(ErrorData *edata)
{
	HOLD_INTERRUPTS();
	debug_query_string = nullptr;
	char reason[128];
	snprintf(reason, sizeof reason, "blocked: %s", edata->message ? edata->message : "error");
	AbortOutOfAnyTransaction();
	if (GetUserId() != GetAuthenticatedUserId())
		session_leave_owner();
	MemoryContextSwitchTo(TopMemoryContext);
	edata->elevel = LOG;
	ThrowErrorData(edata);
	FreeErrorData(edata);
	MemoryContextReset(coord.cycle_context);
	QueryCancelPending = false;
	RESUME_INTERRUPTS();

	coord.consecutive_errors++;
	transition(CoordState::Blocked);
	publish_progress(reason);

	// Still installed? A dropped extension is the common cause of errors here.
	StartTransactionCommand();
	bool installed = OidIsValid(get_extension_oid("pg_foreman", true));
	CommitTransactionCommand();
	if (!installed) {
		ereport(LOG, (errmsg("%s: extension dropped, exiting", coord.name)));
		request_rescan(MyDatabaseId);
		proc_exit(0);
	}
	sleep_on_latch(Min(kMaxErrorBackoffMs, 100L << Min(coord.consecutive_errors, 6)));
}

// Sleeps until the tier's next due time or tick (timeout_ms), or until its
// latch is set (a job changed, run_now, an executor idle, a signal). Nothing
// else can make a job due meanwhile, so the catalog is not read: every
// kHeartbeatMs the heartbeat alone is beaten (a sleeping tier costs no
// transaction until its next due time or tick).
void
sleep_idle(long timeout_ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	for (;;) {
		long left = (long)((until - GetCurrentTimestamp()) / 1000);
		if (left <= 0)
			return;
		int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Min(left, kHeartbeatMs),
		                       PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (events & WL_LATCH_SET)
			return;
		transition(CoordState::Idle); // the heartbeat
	}
}

// One turn of the loop: lead (or follow), record what is pending, run a cycle.
void
iteration()
{
	stop_if_requested();
	reload_if_requested();
	if (!coord.leader && !become_leader())
		return;
	if (coord.leader && coord.fenced && !still_leader())
		return;
	if (!coord.lease_taken)
		take_leadership_epoch();

	// A run's outcome not yet recorded comes first; until it is, nothing
	// else runs (the tier is blocked, and says so).
	// So do the runs of a batch an error stopped: recorded as not started.
	if (!runner_flush_pending() || !abandon_queue(NotStarted::Abandoned)) {
		transition(CoordState::Blocked);
		publish_progress(psprintf("blocked: recording the last run: %s", runner_last_error()));
		sleep_on_latch(1000);
		return;
	}
	transition(CoordState::Idle);
	long timeout = leader_cycle();
	coord.consecutive_errors = 0;
	lead_anew_if_lease_lost();
	if (!coord.leader || !coord.lease_taken)
		return;
	if (timeout > 0) {
		transition(CoordState::Idle);
		sleep_idle(timeout);
	}
}

void
setup(Datum)
{
	memcpy(&coord.args, MyBgworkerEntry->bgw_extra, sizeof coord.args);
	coord.slot = -1;
	coord.state = CoordState::Starting;
	coord.name = MyBgworkerEntry->bgw_name;

	pqsignal(SIGTERM, runner_sigterm);
	pqsignal(SIGINT, runner_sigint);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(coord.args.dboid, InvalidOid, 0);
	session_init();
	runner_init();
	beat_timeout_id = RegisterTimeout(USER_TIMEOUT, job_beat_handler);

	// bgw_name is "pg_foreman coordinator <db>/<tier>".
	const char *db_and_tier = strrchr(coord.name, ' ') ? strrchr(coord.name, ' ') + 1 : coord.name;
	const char *slash = strrchr(db_and_tier, '/');
	char dbname[kNameLen] = "?";
	StartTransactionCommand();
	if (char *db = get_database_name(MyDatabaseId))
		strlcpy(dbname, db, sizeof dbname);
	CommitTransactionCommand();
	claim_slot(dbname, slash ? slash + 1 : "?");
	before_shmem_exit(release_slot, 0);

	// application_name set as an override survives the RESET ALL after each job.
	SetConfigOption("application_name", coord.name, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(coord.name);

	coord.cycle_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman cycle", ALLOCSET_DEFAULT_SIZES);
	coord.job_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman job", ALLOCSET_DEFAULT_SIZES);
}

} // namespace

CoordinatorSlot &
my_slot()
{
	return shared()->slots[coord.slot];
}

void
mark_orphans_now()
{
	int32 live[kMaxExecutors + 256];
	int nlive = 0;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots && nlive < 256; i++)
		if (sh->slots[i].pid != 0 && sh->slots[i].dboid == MyDatabaseId)
			live[nlive++] = sh->slots[i].pid;
	for (auto &e : sh->executors)
		if (e.pid > 0 && e.dboid == MyDatabaseId)
			live[nlive++] = e.pid;
	LWLockRelease(sh->lock);
	int64 known[kMaxQueuedRuns + kMaxExecutors];
	int nknown = executor_known_runs(coord.args.tier_id, known, kMaxQueuedRuns + kMaxExecutors);
	int64 n = mark_orphaned_runs(coord.args.tier_id, live, nlive, known, nknown);
	if (n > 0)
		ereport(LOG, (errmsg("%s marked %lld orphaned runs (crashed, or not started)", coord.name, (long long)n)));
}

void
transition(CoordState to, const DueJob *job, TimestampTz job_started)
{
	if (!allowed(coord.state, to))
		elog(ERROR, "pg_foreman coordinator: no transition from \"%s\" to \"%s\"", coordinator_state_name(coord.state),
		     coordinator_state_name(to));
	coord.state = to;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	CoordinatorSlot &slot = my_slot();
	slot.state = to;
	slot.leader = coord.leader;
	slot.foreign_lock_holder = !coord.fenced_foreign ? 0 : coord.foreign_holder ? coord.foreign_holder : -1;
	slot.heartbeat_at = GetCurrentTimestamp();
	if (job) {
		slot.current_job_id = job->job_id;
		slot.current_job_owner = job->owner;
		strlcpy(slot.current_job, job->job_name, kNameLen);
		slot.job_started_at = job_started;
		slot.job_has_timeout = job->timeout_ms > 0;
		if (to == CoordState::Running) {
			slot.job_beat_at = job_started;
			enable_timeout_every(beat_timeout_id, TimestampTzPlusMilliseconds(job_started, kJobBeatMs), kJobBeatMs);
		}
	} else if (to != CoordState::Running) {
		slot.current_job_id = 0;
		slot.current_job_owner = InvalidOid;
		slot.current_job[0] = '\0';
		slot.job_started_at = 0;
		slot.job_has_timeout = false;
		slot.progress[0] = '\0';
	}
	LWLockRelease(sh->lock);
	if (to != CoordState::Running)
		disable_timeout(beat_timeout_id, false);
}

void
publish_progress(const char *text)
{
	int len = pg_mbcliplen(text, (int)strlen(text), (int)sizeof(CoordinatorSlot::progress) - 1);
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	memcpy(my_slot().progress, text, len);
	my_slot().progress[len] = '\0';
	LWLockRelease(sh->lock);
}

void
stop_if_requested()
{
	// Deposed by the launcher for stalling: another coordinator took over.
	if (coord.slot >= 0 && my_slot().deposed) {
		ereport(LOG, (errmsg("%s was deposed for stalling; exiting without running anything more", coord.name)));
		(void)abandon_queue(NotStarted::Abandoned);
		(void)abandon_executor_queue(NotStarted::Abandoned);
		proc_exit(0);
	}
	if (runner_stop_requested()) {
		(void)abandon_queue(NotStarted::Stopping);
		(void)abandon_executor_queue(NotStarted::Stopping);
		transition(CoordState::Stopping);
		ereport(LOG, (errmsg("%s stopping", coord.name)));
		proc_exit(0);
	}
}

void
reload_if_requested()
{
	if (ConfigReloadPending) {
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
sleep_on_latch(long timeout_ms)
{
	(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(timeout_ms, 1L), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

void
report_progress(const char *text)
{
	if (!runner_in_job())
		return;
	if (coord.slot >= 0)
		publish_progress(text);
	else
		executor_report_progress(text);
	set_ps_display(text);
	pgstat_report_activity(STATE_RUNNING, text);
}

void
report_run_totals(int64 rows, int32 batches)
{
	runner_report_totals(rows, batches);
}

// The coordinator's main loop. A bookkeeping error is captured, logged and
// backed off from (recover_from_error); a job's own errors never get here.
void
coordinator_main(Datum arg)
{
	setup(arg);
	for (;;)
		if (ErrorData *edata = pg::capture_pg_error([]() { iteration(); }))
			recover_from_error(edata);
}

} // namespace foreman::bgw

void
foreman_coordinator_main(Datum arg)
{
	foreman::pg::cpp_guard("coordinator", [arg]() { foreman::bgw::coordinator_main(arg); });
}
