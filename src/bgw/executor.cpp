// executor.cpp: executor slots and the executor worker of parallel tiers.
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "bgw/run_store.hpp"
#include "bgw/session.hpp"
#include "bgw/shmem.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "libpq/pqsignal.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

// Where an executor finds its slot, passed in bgw_extra; the run comes
// through the slot (executor_hand_over).
struct ExecutorArgs {
	Oid dboid;
	int32 slot;
	pid_t coordinator;
	uint32 reservation;
};
static_assert(sizeof(ExecutorArgs) <= BGW_EXTRALEN);

int my_slot_index = -1;
uint32 last_reservation = 0; // this coordinator's reservations, numbered

int
slot_limit()
{
	return Min(kMaxExecutors, max_worker_processes);
}

ExecutorSlot &
slot_at(int index)
{
	return shared()->executors[index];
}

void
release_my_slot(int, Datum)
{
	if (my_slot_index < 0)
		return;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = slot_at(my_slot_index);
	if (slot.pid == MyProcPid)
		memset(&slot, 0, sizeof slot);
	LWLockRelease(sh->lock);
	my_slot_index = -1;
}

// Tells the coordinator (by pid) that a run's summary waits for its job's row.
void
flag_coordinator_summaries(pid_t coordinator)
{
	Shared *sh = shared();
	Latch *latch = nullptr;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots; i++)
		if (sh->slots[i].pid == coordinator && coordinator != 0) {
			sh->slots[i].summaries_pending = true;
			latch = sh->slots[i].latch;
		}
	LWLockRelease(sh->lock);
	if (latch)
		SetLatch(latch);
}

} // namespace

int
executor_cap()
{
	if (guc_max_executors >= 0)
		return guc_max_executors;
	// Automatic: what max_worker_processes leaves after PostgreSQL's parallel
	// workers, the launcher, two scouts and the coordinators now running.
	Shared *sh = shared();
	int coordinators = 0;
	for (int i = 0; i < sh->nslots; i++)
		if (sh->slots[i].pid != 0)
			coordinators++;
	return Max(1, max_worker_processes - max_parallel_workers - 1 - 2 - coordinators);
}

Reservation
executor_reserve(int32 tier_id, int concurrency, bool *cap_reached)
{
	Shared *sh = shared();
	*cap_reached = false;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	int cap = Min(executor_cap(), slot_limit());
	int in_use = 0, in_tier = 0, free_slot = -1;
	for (int i = 0; i < slot_limit(); i++) {
		ExecutorSlot &slot = sh->executors[i];
		if (slot.pid == 0) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		in_use++;
		if (slot.dboid == MyDatabaseId && slot.tier_id == tier_id && (!slot.idle || slot.claimed))
			in_tier++;
	}
	Reservation result{-1, 0};
	if (in_tier >= concurrency)
		result.slot = -1;
	else if (in_use >= cap || free_slot < 0)
		*cap_reached = true;
	else {
		ExecutorSlot &slot = sh->executors[free_slot];
		memset(&slot, 0, sizeof slot);
		slot.pid = -1;
		slot.coordinator = MyProcPid;
		slot.reservation = ++last_reservation;
		slot.dboid = MyDatabaseId;
		slot.tier_id = tier_id;
		slot.idle = true;
		slot.claimed = true;
		slot.started_at = GetCurrentTimestamp();
		slot.coordinator_latch = MyLatch;
		result = Reservation{free_slot, slot.reservation};
	}
	LWLockRelease(sh->lock);
	return result;
}

// The slot of the coordinator with that pid (under the lock).
static CoordinatorSlot *
my_coordinator_slot(Shared *sh, pid_t coordinator)
{
	for (int i = 0; i < sh->nslots; i++)
		if (sh->slots[i].pid == coordinator && coordinator != 0)
			return &sh->slots[i];
	return nullptr;
}

bool
executor_queue_push(const ExecutorRun &run)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid);
	bool pushed = c && c->nqueued < kMaxQueuedRuns;
	if (pushed)
		c->queue[c->nqueued++] = run;
	LWLockRelease(sh->lock);
	return pushed;
}

void
executor_wake_on_idle(bool wake)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid))
		c->wake_on_idle = wake;
	LWLockRelease(sh->lock);
}

int
executor_queue_length()
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_SHARED);
	CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid);
	int n = c ? c->nqueued : 0;
	LWLockRelease(sh->lock);
	return n;
}

int
executor_queue_drain(ExecutorRun *out, int max)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid);
	int n = c ? Min(c->nqueued, max) : 0;
	if (n > 0) {
		memcpy(out, c->queue, sizeof(ExecutorRun) * n);
		memmove(c->queue, c->queue + n, sizeof(ExecutorRun) * (c->nqueued - n));
		c->nqueued -= n;
	}
	LWLockRelease(sh->lock);
	return n;
}

int
executor_known_runs(int32 tier_id, int64 *out, int max)
{
	Shared *sh = shared();
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	if (CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid))
		for (int i = 0; i < c->nqueued && n < max; i++)
			out[n++] = c->queue[i].run_id;
	for (int i = 0; i < slot_limit() && n < max; i++) {
		const ExecutorSlot &e = sh->executors[i];
		if (e.pid != 0 && !e.idle && e.run_id != 0 && e.dboid == MyDatabaseId && e.tier_id == tier_id)
			out[n++] = e.run_id;
	}
	LWLockRelease(sh->lock);
	return n;
}

void
executor_wake_idle(int32 tier_id)
{
	Shared *sh = shared();
	Latch *latches[kMaxExecutors];
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit(); i++) {
		const ExecutorSlot &e = sh->executors[i];
		if (e.pid > 0 && e.idle && e.coordinator == MyProcPid && e.tier_id == tier_id && e.latch)
			latches[n++] = e.latch;
	}
	LWLockRelease(sh->lock);
	for (int i = 0; i < n; i++)
		SetLatch(latches[i]);
}

void
executor_release_reservation(const Reservation &r)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = slot_at(r.slot);
	// The slot may have been freed by its executor and reserved again since:
	// only this very reservation of a never-started executor goes.
	if (slot.pid == -1 && slot.coordinator == MyProcPid && slot.reservation == r.id)
		memset(&slot, 0, sizeof slot);
	LWLockRelease(sh->lock);
}

namespace {

// This database's executors of the tier: running a run (busy_only), or all
// of them that are not leaving (idle and starting ones too).
int
count_executors(int32 tier_id, bool busy_only)
{
	Shared *sh = shared();
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit(); i++) {
		const ExecutorSlot &e = sh->executors[i];
		// An idle executor of an earlier leader of the tier is leaving (its
		// coordinator is gone): not this one's to count. A busy one still
		// runs one of the tier's runs, and counts against its concurrency.
		bool leaving = e.idle && e.coordinator != MyProcPid;
		if (e.pid != 0 && e.dboid == MyDatabaseId && e.tier_id == tier_id &&
		    (busy_only ? e.pid > 0 && !e.idle : !e.retire && !leaving))
			n++;
	}
	LWLockRelease(sh->lock);
	return n;
}

} // namespace

int
executor_busy_count(int32 tier_id)
{
	return count_executors(tier_id, true);
}

int
executor_total_count(int32 tier_id)
{
	return count_executors(tier_id, false);
}

int
executor_instances(int64 job_id)
{
	Shared *sh = shared();
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit(); i++)
		if (sh->executors[i].pid != 0 && !sh->executors[i].idle && sh->executors[i].dboid == MyDatabaseId &&
		    sh->executors[i].job_id == job_id)
			n++;
	if (CoordinatorSlot *c = my_coordinator_slot(sh, MyProcPid))
		for (int i = 0; i < c->nqueued; i++)
			n += c->queue[i].job_id == job_id;
	LWLockRelease(sh->lock);
	return n;
}

bool
executor_slot_is(int index, uint32 reservation)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_SHARED);
	const ExecutorSlot &slot = slot_at(index);
	bool same = slot.pid != 0 && slot.coordinator == MyProcPid && slot.reservation == reservation;
	LWLockRelease(sh->lock);
	return same;
}

void
executor_retire_one_idle()
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < slot_limit(); i++) {
		ExecutorSlot &slot = sh->executors[i];
		if (slot.pid > 0 && slot.idle && !slot.claimed && !slot.retire) {
			slot.retire = true;
			if (slot.latch)
				SetLatch(slot.latch);
			break;
		}
	}
	LWLockRelease(sh->lock);
}

bool
executor_report_progress(const char *text)
{
	if (my_slot_index < 0)
		return false;
	int len = pg_mbcliplen(text, (int)strlen(text), (int)sizeof(ExecutorSlot::progress) - 1);
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = slot_at(my_slot_index);
	memcpy(slot.progress, text, len);
	slot.progress[len] = '\0';
	LWLockRelease(sh->lock);
	return true;
}

BackgroundWorkerHandle *
executor_start(const Reservation &r, const char *dbname, const char *tier_name)
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof worker);
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_foreman");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "foreman_executor_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_foreman executor %s/%s", dbname, tier_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_foreman executor");
	ExecutorArgs args{MyDatabaseId, r.slot, MyProcPid, r.id};
	memcpy(worker.bgw_extra, &args, sizeof args);
	worker.bgw_notify_pid = MyProcPid;
	BackgroundWorkerHandle *handle = nullptr;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	bool ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	return ok ? handle : nullptr;
}

namespace {

// Takes the slot the coordinator reserved; from here on this process frees
// it when it exits, however it exits (short of a crash-restart, which resets
// them all).
void
take_reserved_slot(const ExecutorArgs &args)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = slot_at(args.slot);
	bool ours = slot.pid == -1 && slot.coordinator == args.coordinator && slot.reservation == args.reservation;
	if (ours) {
		slot.pid = MyProcPid;
		slot.latch = MyLatch;
		slot.claimed = false; // started: it takes runs from the queue now
		my_slot_index = args.slot;
	}
	LWLockRelease(sh->lock);
	if (!ours)
		ereport(FATAL, (errmsg("pg_foreman executor: slot %d is not reserved for it", args.slot)));
	before_shmem_exit(release_my_slot, 0);
}

// Waits (bounded by foreman.executor_idle_timeout, unless claimed) for the
// coordinator to hand over a run; false when this executor leaves instead.
bool
wait_for_run(ExecutorRun *run)
{
	Shared *sh = shared();
	TimestampTz idle_since = GetCurrentTimestamp();
	for (;;) {
		if (runner_stop_requested())
			return false;
		bool leaving = false, assigned = false;
		Latch *coordinator = nullptr;
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		ExecutorSlot &slot = slot_at(my_slot_index);
		CoordinatorSlot *c = my_coordinator_slot(sh, slot.coordinator);
		if (!slot.retire && c && c->nqueued > 0) {
			// The oldest queued run: this executor holds it from now on.
			*run = c->queue[0];
			memmove(c->queue, c->queue + 1, sizeof(ExecutorRun) * (c->nqueued - 1));
			c->nqueued--;
			slot.run_id = run->run_id;
			slot.job_id = run->job_id;
			slot.owner = run->owner;
			slot.attempt = run->attempt;
			slot.started_at = run->started;
			slot.progress[0] = '\0';
			slot.idle = false;
			assigned = true;
			// The queue runs low: the coordinator records the next due runs
			// while these run, rather than after the executors ran dry.
			if (c->nqueued == kQueueLowWater && c->wake_on_idle)
				coordinator = slot.coordinator_latch;
		} else if (!slot.claimed && (slot.retire || !c ||
		                             TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), guc_executor_idle_ms))) {
			// Leaving: the slot is freed under the same lock, so no run
			// can be handed to a process that is going. An executor whose
			// coordinator is gone leaves at once: no other coordinator
			// hands it work, and its tier's next leader starts its own.
			memset(&slot, 0, sizeof slot);
			my_slot_index = -1;
			leaving = true;
		}
		LWLockRelease(sh->lock);
		if (coordinator)
			SetLatch(coordinator);
		if (assigned)
			return true;
		if (leaving)
			return false;
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
		                Max(10L, Min(500L, (long)guc_executor_idle_ms / 4)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

// A new executor is started ahead of the due time that needs it (parallel.cpp):
// it prepares the statements of a run and fills its caches now, so that its
// first run does not pay for them after the due time. Run ids no row has
// (0): nothing is claimed, read or written.
void
warm_up(MemoryContext run_context)
{
	internal_xact_begin();
	(void)claim_run(0, run_context);
	RunOutcome o{};
	o.status = core::RunStatus::Succeeded;
	o.plain = true;
	o.batches = -1;
	o.finished_at = GetCurrentTimestamp();
	(void)finish_run(0, 0, o);
	internal_xact_commit();
	MemoryContextReset(run_context);
}

// Idle: tell the coordinator, which may have due jobs waiting.
void
become_idle()
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = slot_at(my_slot_index);
	slot.idle = true;
	slot.run_id = 0;
	slot.job_id = 0;
	slot.owner = InvalidOid;
	slot.progress[0] = '\0';
	// The coordinator is woken when its queue is empty and due jobs wait (it
	// may have more to queue); while runs wait in it, this executor takes the
	// next one. With nothing waiting, the coordinator sleeps until its next
	// due time (before, every executor that went idle after a burst woke it
	// for a cycle that found nothing to do).
	CoordinatorSlot *c = my_coordinator_slot(sh, slot.coordinator);
	Latch *coordinator = c && c->nqueued == 0 && c->wake_on_idle ? slot.coordinator_latch : nullptr;
	LWLockRelease(sh->lock);
	if (coordinator)
		SetLatch(coordinator);
}

void
execute_run(const ExecutorRun &run, pid_t coordinator, MemoryContext run_context, MemoryContext job_context)
{
	MemoryContextReset(run_context);
	internal_xact_begin();
	// Claimed in its row: only a run still 'running' with no process (one a
	// new leader settled meanwhile is not run).
	Claim claim = claim_run(run.run_id, run_context);
	DueJob *job = claim.job;
	if (claim.claimed && !job)
		mark_run_crashed(run.run_id, "the job was unscheduled before its executor started");
	internal_xact_commit();
	if (!job)
		return;
	// Recorded ahead of its due time: claimed before it, started at it (a
	// stop that cuts the wait short: runner_execute records it not started).
	runner_wait_until(run.not_before);
	static const RunHooks hooks = {nullptr};
	(void)runner_execute(*job, run.run_id, run.attempt, run.started, job_context, hooks);
	// Its outcome must be recorded before this executor takes more work or
	// leaves: retry (bounded, about 10 minutes) through a superuser's lock on
	// foreman.job_run.
	for (int tries = 0; !runner_flush_pending() && tries < 600 && !runner_stop_requested(); tries++) {
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	// Its job's summary waits for the job's row (its owner holds it): the
	// coordinator applies it later.
	if (runner_take_deferred_summary())
		flag_coordinator_summaries(coordinator);
}

void
executor_main(Datum)
{
	ExecutorArgs args;
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof args);

	pqsignal(SIGTERM, runner_sigterm);
	pqsignal(SIGINT, runner_sigint);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	session_init();
	runner_init();
	take_reserved_slot(args);

	SetConfigOption("application_name", MyBgworkerEntry->bgw_name, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	MemoryContext job_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman job", ALLOCSET_DEFAULT_SIZES);
	MemoryContext run_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman run", ALLOCSET_DEFAULT_SIZES);

	warm_up(run_context);
	// Run what is handed over; between runs wait (bounded), and leave when
	// nothing comes.
	ExecutorRun run;
	while (wait_for_run(&run)) {
		execute_run(run, args.coordinator, run_context, job_context);
		become_idle();
	}
	proc_exit(0);
}

} // namespace

} // namespace foreman::bgw

void
foreman_executor_main(Datum arg)
{
	foreman::pg::cpp_guard("executor", [arg]() { foreman::bgw::executor_main(arg); });
}
