// executor.cpp: executor slots and the executor worker of parallel tiers.
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "bgw/run_store.hpp"
#include "bgw/session.hpp"
#include "bgw/shmem.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "libpq/pqsignal.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

namespace foreman::bgw {

namespace {

// What an executor is asked to run, passed in bgw_extra.
struct ExecutorArgs {
	Oid dboid;
	int32 slot;
	int32 attempt;
	int64 run_id;
	int64 job_id;
	TimestampTz started;
};
static_assert(sizeof(ExecutorArgs) <= BGW_EXTRALEN);

int my_slot_index = -1;

int
slot_limit()
{
	return Min(kMaxExecutors, max_worker_processes);
}

void
release_my_slot(int, Datum)
{
	if (my_slot_index < 0)
		return;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = sh->executors[my_slot_index];
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

int
executor_reserve(int32 tier_id, int concurrency, int64 run_id, int64 job_id, Oid owner, bool *cap_reached)
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
		if (slot.dboid == MyDatabaseId && slot.tier_id == tier_id && !slot.idle)
			in_tier++;
	}
	int result = -1;
	if (in_tier >= concurrency)
		result = -1;
	else if (in_use >= cap || free_slot < 0)
		*cap_reached = true;
	else {
		ExecutorSlot &slot = sh->executors[free_slot];
		slot.pid = -1;
		slot.coordinator = MyProcPid;
		slot.dboid = MyDatabaseId;
		slot.tier_id = tier_id;
		slot.run_id = run_id;
		slot.job_id = job_id;
		slot.owner = owner;
		slot.started_at = GetCurrentTimestamp();
		slot.coordinator_latch = MyLatch;
		result = free_slot;
	}
	LWLockRelease(sh->lock);
	return result;
}

void
executor_release_reservation(int index, int64 run_id)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = sh->executors[index];
	// The slot may have been freed by its executor and reserved again since:
	// only this very reservation is released.
	if (slot.pid == -1 && slot.coordinator == MyProcPid && slot.run_id == run_id)
		memset(&slot, 0, sizeof slot);
	LWLockRelease(sh->lock);
}

int
executor_count(int32 tier_id)
{
	Shared *sh = shared();
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit(); i++)
		if (sh->executors[i].pid != 0 && !sh->executors[i].idle && sh->executors[i].dboid == MyDatabaseId &&
		    sh->executors[i].tier_id == tier_id)
			n++;
	LWLockRelease(sh->lock);
	return n;
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
	LWLockRelease(sh->lock);
	return n;
}

int
executor_run_ids(int32 tier_id, int64 *out, int max)
{
	Shared *sh = shared();
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit() && n < max; i++)
		if (sh->executors[i].pid != 0 && sh->executors[i].run_id != 0 && sh->executors[i].dboid == MyDatabaseId &&
		    sh->executors[i].tier_id == tier_id)
			out[n++] = sh->executors[i].run_id;
	LWLockRelease(sh->lock);
	return n;
}

int
executor_assign_idle(int32 tier_id, int64 run_id, int64 job_id, Oid owner, int32 attempt, TimestampTz started)
{
	Shared *sh = shared();
	int result = -1;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < slot_limit(); i++) {
		ExecutorSlot &slot = sh->executors[i];
		if (slot.pid > 0 && slot.idle && !slot.retire && slot.coordinator == MyProcPid && slot.dboid == MyDatabaseId &&
		    slot.tier_id == tier_id) {
			slot.idle = false;
			slot.run_id = run_id;
			slot.job_id = job_id;
			slot.owner = owner;
			slot.attempt = attempt;
			slot.started_at = started;
			if (slot.latch)
				SetLatch(slot.latch);
			result = i;
			break;
		}
	}
	LWLockRelease(sh->lock);
	return result;
}

bool
executor_has_idle(int32 tier_id)
{
	Shared *sh = shared();
	bool found = false;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < slot_limit() && !found; i++) {
		ExecutorSlot &slot = sh->executors[i];
		found = slot.pid > 0 && slot.idle && !slot.retire && slot.coordinator == MyProcPid &&
		        slot.dboid == MyDatabaseId && slot.tier_id == tier_id;
	}
	LWLockRelease(sh->lock);
	return found;
}

void
executor_retire_one_idle()
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < slot_limit(); i++) {
		ExecutorSlot &slot = sh->executors[i];
		if (slot.pid > 0 && slot.idle && !slot.retire) {
			slot.retire = true;
			if (slot.latch)
				SetLatch(slot.latch);
			break;
		}
	}
	LWLockRelease(sh->lock);
}

BackgroundWorkerHandle *
executor_start(int slot, int64 run_id, int64 job_id, int32 attempt, TimestampTz started, const char *dbname,
               const char *tier_name)
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
	ExecutorArgs args{MyDatabaseId, slot, attempt, run_id, job_id, started};
	{
		Shared *sh = shared();
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		sh->executors[slot].attempt = attempt;
		LWLockRelease(sh->lock);
	}
	memcpy(worker.bgw_extra, &args, sizeof args);
	worker.bgw_notify_pid = MyProcPid;
	BackgroundWorkerHandle *handle = nullptr;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	bool ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	return ok ? handle : nullptr;
}

} // namespace foreman::bgw

using namespace foreman::bgw;

void
foreman_executor_main(Datum)
{
	ExecutorArgs args;
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof args);

	pqsignal(SIGTERM, runner_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	session_init();
	runner_init();

	// Claim the slot the coordinator reserved; from here on this process
	// frees it when it exits, however it exits (short of a crash-restart,
	// which resets them all).
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	ExecutorSlot &slot = sh->executors[args.slot];
	bool ours = slot.pid == -1 && slot.run_id == args.run_id;
	if (ours) {
		slot.pid = MyProcPid;
		slot.latch = MyLatch;
		my_slot_index = args.slot;
	}
	LWLockRelease(sh->lock);
	if (!ours)
		ereport(FATAL, (errmsg("pg_foreman executor: slot %d is not reserved for run %lld", args.slot,
		                       (long long)args.run_id)));
	before_shmem_exit(release_my_slot, 0);

	SetConfigOption("application_name", MyBgworkerEntry->bgw_name, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	MemoryContext job_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman job", ALLOCSET_DEFAULT_SIZES);

	// Run what the slot holds; then wait (bounded) for the coordinator to
	// hand over the next run, and leave when none comes.
	int64 run_id = args.run_id, job_id = args.job_id;
	int32 attempt = args.attempt;
	TimestampTz started = args.started;
	MemoryContext run_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman run", ALLOCSET_DEFAULT_SIZES);
	for (;;) {
		MemoryContextReset(run_context);
		internal_xact_begin();
		DueJob *job = load_job(job_id, run_context);
		if (!job)
			mark_run_crashed(run_id, "the job was unscheduled before its executor started");
		else
			set_run_pid(run_id);
		internal_xact_commit();
		if (job) {
			static const RunHooks hooks = {nullptr};
			(void)runner_execute(*job, run_id, attempt, started, job_context, hooks);
			// Its outcome must be recorded before this executor takes more
			// work or leaves: retry (bounded, about 10 minutes) through a
			// superuser's lock on foreman.job_run.
			for (int tries = 0; !runner_flush_pending() && tries < 600 && !runner_stop_requested(); tries++) {
				(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
			}
			// Its job's summary waits for the job's row (its owner holds
			// it): the coordinator applies it later.
			if (runner_take_deferred_summary())
				flag_coordinator_summaries(slot.coordinator);
		}

		// Idle: tell the coordinator, which may have due jobs waiting.
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		slot.idle = true;
		slot.run_id = 0;
		slot.job_id = 0;
		slot.owner = InvalidOid;
		Latch *coordinator = slot.coordinator_latch;
		LWLockRelease(sh->lock);
		if (coordinator)
			SetLatch(coordinator);

		TimestampTz idle_since = GetCurrentTimestamp();
		bool assigned = false;
		while (!assigned) {
			if (runner_stop_requested())
				break;
			LWLockAcquire(sh->lock, LW_EXCLUSIVE);
			if (!slot.idle) {
				assigned = true;
				run_id = slot.run_id;
				job_id = slot.job_id;
				attempt = slot.attempt;
				started = slot.started_at;
			} else if (slot.retire ||
			           TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), foreman::guc_executor_idle_ms)) {
				// Leaving: the slot is freed under the same lock, so no run
				// can be handed to a process that is going.
				memset(&slot, 0, sizeof slot);
				my_slot_index = -1;
			}
			bool leaving = my_slot_index < 0;
			LWLockRelease(sh->lock);
			if (leaving)
				proc_exit(0);
			if (!assigned) {
				(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				                Max(10L, Min(500L, (long)foreman::guc_executor_idle_ms / 4)), PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				if (ConfigReloadPending) {
					ConfigReloadPending = false;
					ProcessConfigFile(PGC_SIGHUP);
				}
			}
		}
		if (!assigned)
			break;
	}
	proc_exit(0);
}
