// coordinator.cpp: one tier of one database.
//
// States (src/bgw/README.md): starting -> waiting for leadership <-> idle ->
// running -> bookkeeping -> idle ... -> stopping. A coordinator runs nothing
// until it holds the tier's session-level advisory lock; then it marks the
// runs its dead predecessor left 'running' as 'crashed', and runs due jobs one
// after another through a simple-query emulation, as each job's owner. It
// sleeps on its latch until the next due time; schedule changes and run_now
// set that latch at commit.
#include "bgw/coordinator.hpp"
#include "bgw/command.hpp"
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "bgw/launcher.hpp"
#include "bgw/run_store.hpp"
#include "bgw/session.hpp"
#include "bgw/shmem.hpp"
#include "pg/compat.hpp"
#include "pg/schedule_pg.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "commands/extension.h"
#include "libpq/pqsignal.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

#include <csignal>

namespace foreman::bgw {

namespace {

constexpr int kDueBatch = 64;              // due jobs loaded per catalog read
constexpr long kFollowerPollMs = 500;      // a follower retries the lock this often
constexpr long kHeartbeatMs = 5000;        // an idle coordinator still beats this often
constexpr long kMaxErrorBackoffMs = 5000;  // after a bookkeeping error, wait at most this
constexpr long kForeignHolderGraceMs = 2000; // lock held, no leader: lead fenced after this

CoordinatorArgs args;
int slot_index = -1;
bool is_leader = false;
bool fenced = false;      // leading without the lock, fenced by the epoch (its holder is deposed or foreign)
TimestampTz leaderless_since = 0; // a follower that found no live leader but no lock either
pid_t foreign_holder = 0;         // fenced because this process, no coordinator, holds the lock
bool lease_taken = false; // this leadership's epoch is taken
bool orphans_checked = false;
MemoryContext cycle_context;
MemoryContext job_context;

CoordinatorSlot &
my_slot()
{
	return shared()->slots[slot_index];
}

TimeoutId beat_timeout_id;
constexpr int kJobBeatMs = 1000;

// Signal context: one aligned store, no lock.
void
job_beat_handler()
{
	if (slot_index >= 0)
		my_slot().job_beat_at = GetCurrentTimestamp();
}

// Publish state and heartbeat; the launcher and tier_status read them.
void
publish(CoordState state, const DueJob *job = nullptr, TimestampTz job_started = 0)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	CoordinatorSlot &slot = my_slot();
	slot.state = state;
	slot.leader = is_leader;
	slot.foreign_lock_holder = fenced ? foreign_holder : 0;
	slot.heartbeat_at = GetCurrentTimestamp();
	if (job) {
		slot.current_job_id = job->job_id;
		slot.current_job_owner = job->owner;
		strlcpy(slot.current_job, job->job_name, kNameLen);
		slot.job_started_at = job_started;
		slot.job_has_timeout = job->timeout_ms > 0;
	} else if (state != CoordState::Running) {
		slot.current_job_id = 0;
		slot.current_job_owner = InvalidOid;
		slot.current_job[0] = '\0';
		slot.job_started_at = 0;
		slot.job_has_timeout = false;
		slot.progress[0] = '\0';
	}
	LWLockRelease(sh->lock);
}

// Progress text, cut at a character boundary to fit the slot.
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
claim_slot(const char *dbname, const char *tier_name)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots; i++)
		if (sh->slots[i].pid == 0) {
			slot_index = i;
			CoordinatorSlot &slot = sh->slots[i];
			memset(&slot, 0, sizeof slot);
			slot.pid = MyProcPid;
			slot.dboid = args.dboid;
			slot.tier_id = args.tier_id;
			slot.state = CoordState::Starting;
			strlcpy(slot.dbname, dbname, kNameLen);
			strlcpy(slot.tier_name, tier_name, kNameLen);
			slot.started_at = slot.heartbeat_at = GetCurrentTimestamp();
			slot.latch = MyLatch;
			break;
		}
	LWLockRelease(sh->lock);
	if (slot_index < 0)
		ereport(FATAL, (errmsg("pg_foreman: no free coordinator slot")));
}

void
release_slot(int, Datum)
{
	if (slot_index < 0)
		return;
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	memset(&my_slot(), 0, sizeof(CoordinatorSlot));
	LWLockRelease(sh->lock);
	slot_index = -1;
}

// The tier's lock: advisory (1179798862, tier_id, objsubid 3) in this
// database, a tag no SQL function can take (coordinator.hpp).
void
set_leadership_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, kLeadershipLockClass, (uint32)args.tier_id, kLeadershipLockSubid);
}

bool
holds_leadership_lock()
{
	LOCKTAG tag;
	set_leadership_tag(&tag);
	return pg::compat::lock_held_by_me(&tag, ExclusiveLock);
}

bool
try_leadership()
{
	if (holds_leadership_lock())
		return true;
	LOCKTAG tag;
	set_leadership_tag(&tag);
	return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

// Another live coordinator of this tier leads (and was not deposed).
// Followers leave the lock alone while one does: should a job of the leader
// release every advisory lock (pg_advisory_unlock_all(), DISCARD ALL), the
// leader takes it back after the job and leadership never moves.
bool
other_leader_alive()
{
	Shared *sh = shared();
	bool found = false;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots && !found; i++) {
		const CoordinatorSlot &s = sh->slots[i];
		found = s.pid != 0 && s.pid != MyProcPid && s.dboid == MyDatabaseId && s.tier_id == args.tier_id &&
		        s.leader && !s.deposed;
	}
	LWLockRelease(sh->lock);
	return found;
}

// The lowest pid among this tier's live coordinators that were not deposed:
// the one follower that may lead fenced when no coordinator holds the lock.
bool
first_follower()
{
	Shared *sh = shared();
	bool first = true;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots; i++) {
		const CoordinatorSlot &s = sh->slots[i];
		if (s.pid != 0 && s.pid < MyProcPid && s.dboid == MyDatabaseId && s.tier_id == args.tier_id && !s.deposed)
			first = false;
	}
	LWLockRelease(sh->lock);
	return first;
}

// The process holding the tier's lock (0: none found). Reads the whole lock
// table: called only when a follower finds the lock taken but no leader.
pid_t
leadership_lock_holder()
{
	LOCKTAG tag;
	set_leadership_tag(&tag);
	MemoryContext old = MemoryContextSwitchTo(cycle_context);
	LockData *data = GetLockStatusData();
	pid_t holder = 0;
	for (int i = 0; i < data->nelements && holder == 0; i++) {
		const LockInstanceData &lock = data->locks[i];
		if (lock.holdMask != 0 && memcmp(&lock.locktag, &tag, sizeof tag) == 0)
			holder = lock.pid;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cycle_context);
	return holder;
}

// A leader of this tier that the launcher deposed for stalling may be frozen
// with the lock in hand. One follower may lead in its place, fenced by the
// lease epoch (the deposed one can start no run once it thaws). Returns true
// when this process is (or becomes) that follower.
bool
fence_deposed_leader(bool claim)
{
	Shared *sh = shared();
	bool found = false;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots; i++) {
		CoordinatorSlot &s = sh->slots[i];
		if (s.pid == 0 || s.pid == MyProcPid || s.dboid != MyDatabaseId || s.tier_id != args.tier_id || !s.deposed ||
		    !s.leader)
			continue;
		if (s.fenced_by == MyProcPid || (claim && s.fenced_by == 0)) {
			s.fenced_by = MyProcPid;
			found = true;
		}
	}
	LWLockRelease(sh->lock);
	return found;
}

void
stop_if_requested()
{
	// Deposed by the launcher for stalling: another coordinator took over.
	if (slot_index >= 0 && my_slot().deposed) {
		ereport(LOG, (errmsg("%s was deposed for stalling; exiting without running anything more",
		                     MyBgworkerEntry->bgw_name)));
		proc_exit(0);
	}
	if (runner_stop_requested()) {
		publish(CoordState::Stopping);
		ereport(LOG, (errmsg("%s stopping", MyBgworkerEntry->bgw_name)));
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

// Sleep on the latch for at most timeout_ms (bounded), beating the heartbeat.
void
sleep_on_latch(long timeout_ms)
{
	int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(timeout_ms, 1L),
	                   PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	(void)rc;
	CHECK_FOR_INTERRUPTS();
}

// The session reset never releases the leadership lock, but the job itself
// may have (pg_advisory_unlock_all(), DISCARD ALL). Followers leave it alone
// while this leader lives, so it is taken back at once; the job is named in
// the log. A fenced leader never held it.
void
keep_leadership_after_job(const DueJob &job)
{
	if (fenced || holds_leadership_lock())
		return;
	if (try_leadership()) {
		ereport(WARNING, (errmsg("job \"%s\" released the leadership lock of tier %d; it was taken back",
		                         job.job_name, args.tier_id),
		                  errdetail("The job called pg_advisory_unlock_all() or DISCARD ALL.")));
		return;
	}
	ereport(WARNING, (errmsg("job \"%s\" released the leadership lock of tier %d and another process took it",
	                         job.job_name, args.tier_id)));
	is_leader = false;
}

// What a due job gets: which fire time the run stands for, the attempt, and
// what the job's next_run_at becomes.
struct RunPlan {
	bool run;
	TimestampTz scheduled_for;
	int32 attempt;
	bool has_next;
	TimestampTz next_run_at;
	bool clear_request;
	bool skip_recorded; // a fire time was recorded 'skipped' (the job moved on)
};

// Decides what to do with a loaded due job. A fire time that is not run is
// recorded here as 'skipped' (with its reason) and the job moves on; fire
// times folded into the run are recorded as one 'skipped' row too, so every
// fire time of an enabled job ends as a run row.
RunPlan
plan_job(const DueJob &job, TimestampTz now)
{
	RunPlan plan{true, 0, 1, job.has_next_run, job.next_run_at, false, false};
	if (job.retry_due) {
		plan.scheduled_for = job.retry_at;
		plan.attempt = job.retry_attempt;
		return plan;
	}
	if (job.has_next_run && job.next_run_at <= now) {
		pg::DueDecisionPg d = pg::decide_due(job.schedule, job.next_run_at, now, job.policy);
		plan.scheduled_for = d.fire_time;
		plan.has_next = d.has_next;
		plan.next_run_at = d.next;
		// Fire times folded into this decision: one row for them all, with
		// the decision's own reason when it is a skip.
		if (d.folded > 0) {
			const char *why = !d.run ? (strcmp(d.reason, "overlap") == 0
			                                ? "fell while the previous run was going"
			                                : "would have started later than misfire_grace after their fire times")
			                  : job.policy.coalesce ? "ran once, as the run for the latest one"
			                                        : "were more than max_catchup behind";
			plan.skip_recorded |= 0 != record_skipped(job, d.folded_from,
			               !d.run ? d.reason : job.policy.coalesce ? "coalesced" : "catch-up limit",
			               psprintf("%lld fire times from %s to %s %s", (long long)d.folded,
			                        timestamptz_to_str(d.folded_from), timestamptz_to_str(d.folded_to), why),
			               false, false, 0, false);
		}
		if (!d.run) {
			char *message = psprintf(strcmp(d.reason, "overlap") == 0
			                             ? "the fire time fell while the previous run was going"
			                             : "the run would have started later than misfire_grace after its fire time");
			plan.skip_recorded |= 0 != record_skipped(job, d.fire_time, d.reason, message, true, d.has_next, d.next, false);
			plan.run = false;
			return plan;
		}
		return plan;
	}
	// run_now: respects overlap, as a scheduled fire time would.
	plan.scheduled_for = job.requested_at;
	plan.clear_request = true;
	if (strcmp(job.policy.overlap, "skip") == 0 && job.policy.has_last_run &&
	    job.requested_at >= job.policy.last_started && job.requested_at < job.policy.last_finished) {
		plan.skip_recorded = 0 != record_skipped(job, job.requested_at, "overlap",
		                                         "run_now was asked while the previous run was going", false, false, 0,
		                                         true);
		plan.run = false;
	}
	return plan;
}

// Runs one due job: record it as running (and advance its schedule) in one
// committed transaction, run the command as the owner, record the outcome.
// What became of a due job in this cycle.
enum class JobStep {
	Ran,      // its run started (and ended)
	Moved,    // a fire time was recorded as skipped: the job moved on
	Stuck,    // nothing was written: it changed since it was loaded, or its owner holds its row
};

JobStep
run_job(const DueJob &job)
{
	TimestampTz now = GetCurrentTimestamp();
	publish(CoordState::Bookkeeping, &job, now);
	internal_xact_begin(true);
	RunPlan plan = plan_job(job, now);
	int64 run_id = 0;
	if (plan.run)
		run_id = begin_run(job, plan.has_next, plan.next_run_at, plan.clear_request, plan.scheduled_for, now,
		                   plan.attempt);
	internal_xact_commit();
	if (run_id == 0)
		return plan.skip_recorded ? JobStep::Moved : JobStep::Stuck;

	static const RunHooks hooks = {
		[](const DueJob &j, TimestampTz started) {
			publish(CoordState::Running, &j, started);
			my_slot().job_beat_at = started;
			enable_timeout_every(beat_timeout_id, TimestampTzPlusMilliseconds(started, kJobBeatMs), kJobBeatMs);
		},
	};
	(void)runner_execute(job, run_id, plan.attempt, now, job_context, hooks);
	keep_leadership_after_job(job);
	disable_timeout(beat_timeout_id, false);
	publish(CoordState::Bookkeeping, &job, now);

	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	my_slot().runs++;
	LWLockRelease(sh->lock);
	return JobStep::Ran;
}

// A run recorded as started that no executor could take: it failed.
void
fail_started_run(int64 run_id, const DueJob &job, int32 attempt, const char *message)
{
	RunOutcome o{};
	o.status = core::RunStatus::Failed;
	o.batches = -1;
	o.sqlstate = "53400";
	o.message = message;
	o.attempt = attempt;
	o.finished_at = GetCurrentTimestamp();
	internal_xact_begin();
	(void)finish_run(run_id, job.job_id, o);
	internal_xact_commit();
}

// Executors this coordinator started (parallel tiers), until it sees them end.
struct InFlight {
	BackgroundWorkerHandle *handle;
	int slot;
	int64 run_id;
};
constexpr int kMaxInFlight = 1024;
InFlight inflight[kMaxInFlight];
int ninflight = 0;
bool cap_was_reached = false; // due jobs waited for foreman.max_executors
// Runs whose job summary is still to be applied (crashed runs; runs whose
// job's row its owner held when they ended), and when that was last tried.
bool summaries_pending = false;
TimestampTz summaries_tried_at = 0;
constexpr long kLockedRetryMs = 250; // a due job whose row its owner holds is tried again this often

// Forgets executors that ended. One that ended without recording its run
// (it failed before it could) leaves the run 'crashed'; a reservation whose
// executor never started is freed here.
// Executors of this coordinator whose run's summary had to wait for its
// job's row (they flag it in this coordinator's slot).
bool
take_executor_deferred_summaries()
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	bool was = my_slot().summaries_pending;
	my_slot().summaries_pending = false;
	LWLockRelease(sh->lock);
	return was;
}

void
reap_executors()
{
	int64 ended[kMaxInFlight];
	int nended = 0;
	for (int i = 0; i < ninflight;) {
		pid_t pid;
		if (GetBackgroundWorkerPid(inflight[i].handle, &pid) != BGWH_STOPPED) {
			i++;
			continue;
		}
		executor_release_reservation(inflight[i].slot, inflight[i].run_id);
		ended[nended++] = inflight[i].run_id;
		i++;
	}
	if (nended == 0)
		return;
	internal_xact_begin();
	for (int i = 0; i < nended; i++)
		mark_run_crashed(ended[i], "its executor ended before it recorded the run");
	internal_xact_commit();
	summaries_pending = true;
	// Forgotten only once that is committed (a lock timeout retries it).
	for (int i = 0; i < ninflight;) {
		pid_t pid;
		if (GetBackgroundWorkerPid(inflight[i].handle, &pid) == BGWH_STOPPED) {
			bool ended_now = false;
			for (int j = 0; j < nended; j++)
				ended_now |= ended[j] == inflight[i].run_id;
			if (ended_now) {
				pfree(inflight[i].handle);
				inflight[i] = inflight[--ninflight];
				continue;
			}
		}
		i++;
	}
}

// Starts a new executor in a reserved slot for a recorded run; on failure the
// run is recorded as failed and the slot freed.
bool
launch_executor(int slot, const DueJob &job, int64 run_id, int32 attempt, TimestampTz now)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->executors[slot].run_id = run_id;
	LWLockRelease(sh->lock);

	BackgroundWorkerHandle *handle =
		executor_start(slot, run_id, job.job_id, attempt, now, my_slot().dbname, my_slot().tier_name);
	if (!handle || ninflight >= kMaxInFlight) {
		if (handle)
			TerminateBackgroundWorker(handle);
		executor_release_reservation(slot, run_id);
		fail_started_run(run_id, job, attempt,
		                 "no background worker slot was free for an executor (raise max_worker_processes)");
		return false;
	}
	inflight[ninflight++] = InFlight{handle, slot, run_id};
	return true;
}

// For a recorded run whose idle executor went away: a new executor, if the
// cap allows; else the run is recorded as failed (it was already started).
bool
start_executor_for(const DueJob &job, int64 run_id, int32 attempt, TimestampTz now, const TierState &tier)
{
	bool cap_reached = false;
	int slot = executor_reserve(args.tier_id, tier.concurrency, run_id, job.job_id, job.owner, &cap_reached);
	if (slot < 0) {
		fail_started_run(run_id, job, attempt, "no executor was free for the run (foreman.max_executors)");
		return false;
	}
	return launch_executor(slot, job, run_id, attempt, now);
}

bool retired_idle = false; // asked an idle executor to leave, to make room

// Records a due job's run as started (durably) and returns its run_id, or 0
// when it was skipped or changed.
int64
start_run_record(const DueJob &job, TimestampTz now, int32 *attempt)
{
	internal_xact_begin(true);
	RunPlan plan = plan_job(job, now);
	int64 run_id = 0;
	if (plan.run) {
		run_id = begin_run(job, plan.has_next, plan.next_run_at, plan.clear_request, plan.scheduled_for, now,
		                   plan.attempt);
		if (run_id != 0 && cap_was_reached && now - plan.scheduled_for > USECS_PER_SEC)
			mark_run_delayed(run_id, (now - plan.scheduled_for) / 1000);
	}
	internal_xact_commit();
	*attempt = plan.attempt;
	return run_id;
}

// What dispatch_job did with a due job.
enum class Dispatch {
	Started,    // an executor runs it
	NotStarted, // no run was recorded (skipped, changed, or its row held by its owner)
	NoRoom,     // no executor may take it now (the tier's concurrency or the cluster-wide cap)
};

// Starts one due job in an executor: an idle one of this tier if there is
// one (no fork, no new connection), else a new one.
Dispatch
dispatch_job(const DueJob &job, const TierState &tier)
{
	if (executor_count(args.tier_id) >= tier.concurrency)
		return Dispatch::NoRoom;
	TimestampTz now = GetCurrentTimestamp();
	int32 attempt = 1;

	if (executor_has_idle(args.tier_id)) {
		int64 run_id = start_run_record(job, now, &attempt);
		if (run_id == 0)
			return Dispatch::NotStarted;
		int slot = executor_assign_idle(args.tier_id, run_id, job.job_id, job.owner, attempt, now);
		if (slot >= 0) {
			for (int i = 0; i < ninflight; i++)
				if (inflight[i].slot == slot)
					inflight[i].run_id = run_id;
			return Dispatch::Started;
		}
		// The idle executor left in the meantime: start a new one below.
		return start_executor_for(job, run_id, attempt, now, tier) ? Dispatch::Started : Dispatch::NotStarted;
	}

	bool cap_reached = false;
	int slot = executor_reserve(args.tier_id, tier.concurrency, 0, job.job_id, job.owner, &cap_reached);
	if (slot < 0) {
		if (cap_reached) {
			cap_was_reached = true;
			// Idle executors (of any tier) hold places under the cap: free one.
			executor_retire_one_idle();
			retired_idle = true;
		}
		return Dispatch::NoRoom;
	}
	int64 run_id = start_run_record(job, now, &attempt);
	if (run_id == 0) {
		executor_release_reservation(slot, 0);
		return Dispatch::NotStarted;
	}
	return launch_executor(slot, job, run_id, attempt, now) ? Dispatch::Started : Dispatch::NotStarted;
}

// A parallel tier: due jobs go to executors, at most `concurrency` at once,
// in due-time order. A job whose previous run is still going is skipped
// (overlap 'skip'), waits ('queue'), or runs beside it up to max_instances
// ('allow').
void
parallel_cycle(List *due, const TierState &tier, TimestampTz now, bool *dispatched_any)
{
	cap_was_reached = false;
	retired_idle = false;
	int waiting = 0;
	ListCell *lc;
	foreach (lc, due) {
		stop_if_requested();
		const DueJob &job = *static_cast<DueJob *>(lfirst(lc));
		int instances = executor_instances(job.job_id);
		if (instances > 0) {
			bool allow = strcmp(job.policy.overlap, "allow") == 0 && instances < job.max_instances;
			if (!allow && strcmp(job.policy.overlap, "skip") == 0 && !job.retry_due) {
				bool scheduled = job.has_next_run && job.next_run_at <= now;
				TimestampTz next = 0;
				bool has_next = scheduled ? pg::next_fire_time(job.schedule, now, &next) : job.has_next_run;
				internal_xact_begin();
				record_skipped(job, scheduled ? job.next_run_at : job.requested_at, "overlap",
				               "the previous run was still going", scheduled, has_next,
				               scheduled ? next : job.next_run_at, !scheduled);
				internal_xact_commit();
				continue;
			}
			if (!allow) {
				waiting++; // 'queue': runs when the instance ends
				continue;
			}
		}
		Dispatch d = dispatch_job(job, tier);
		if (d == Dispatch::NoRoom) {
			waiting++;
			if (cap_was_reached)
				break;
			continue;
		}
		if (d == Dispatch::Started)
			*dispatched_any = true;
	}
	if (cap_was_reached)
		publish_progress(psprintf("%d due jobs wait for an executor (foreman.max_executors = %d reached)", waiting,
		                          executor_cap()));
}

// One pass as leader: read the tier, run what is due, say how long to sleep.
long
leader_cycle()
{
	MemoryContextReset(cycle_context);
	reap_executors();
	TimestampTz now = GetCurrentTimestamp();

	internal_xact_begin();
	if (!orphans_checked) {
		// Runs whose process is alive are not orphans: another coordinator
		// of this tier finishing its last run, or an executor.
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
		int64 n = mark_orphaned_runs(args.tier_id, live, nlive);
		if (n > 0)
			ereport(LOG, (errmsg("%s marked %lld orphaned runs as crashed",
			                     MyBgworkerEntry->bgw_name, (long long)n)));
		mark_reboot_jobs_due(args.tier_id);
		orphans_checked = true;
		summaries_pending = true; // the crashed ones, and any a predecessor left
	}
	summaries_pending |= runner_take_deferred_summary() || take_executor_deferred_summaries();
	if (summaries_pending && TimestampDifferenceExceeds(summaries_tried_at, now, 1000)) {
		summaries_pending = apply_pending_summaries(args.tier_id) > 0;
		summaries_tried_at = now;
	}
	TierState tier = read_tier_state(args.tier_id);
	List *due = NIL;
	if (tier.exists && tier.enabled)
		due = load_due_jobs(args.tier_id, now, kDueBatch, cycle_context);
	internal_xact_commit();

	if (!tier.exists || !tier.enabled) {
		ereport(LOG, (errmsg("pg_foreman coordinator %s: tier %s, exiting", MyBgworkerEntry->bgw_name,
		                     tier.exists ? "disabled" : "dropped")));
		request_rescan(MyDatabaseId);
		proc_exit(0);
	}

	long timeout = Min(tier.tick_ms, kHeartbeatMs);
	if (tier.concurrency > 1) {
		// Executors end on their own; their exit sets this latch.
		bool dispatched = false;
		parallel_cycle(due, tier, now, &dispatched);
		if (dispatched)
			return 0;
		if (retired_idle)
			return 100; // an idle executor is leaving to make room
		if (list_length(due) > 0)
			return Min(timeout, kLockedRetryMs); // due jobs wait for executors (their exits and idles set this latch), or for their owners' locks
	} else {
		bool progress = false;
		ListCell *lc;
		foreach (lc, due) {
			stop_if_requested();
			reload_if_requested();
			progress |= run_job(*static_cast<DueJob *>(lfirst(lc))) != JobStep::Stuck;
			if (!is_leader)
				return 0;
		}
		if (progress)
			return 0; // more may be due now; read again at once
		if (list_length(due) > 0)
			return Min(timeout, kLockedRetryMs); // held by their owners: the others went on; try again soon
	}

	// Idle until the next due time, capped by the tick and the heartbeat.
	if (summaries_pending)
		timeout = Min(timeout, 1000L);
	if (tier.has_next_run) {
		TimestampTz now2 = GetCurrentTimestamp();
		long until = tier.next_run_at <= now2 ? 0 : (long)((tier.next_run_at - now2 + 999) / 1000);
		timeout = Min(timeout, until);
	}
	return timeout;
}

// A follower's attempt to lead: the lock, when no other live coordinator of
// the tier leads; else, when the leader was deposed (frozen with the lock in
// hand) or the lock is held by a process that is no coordinator of this tier,
// fenced leadership by the epoch alone (foreman.tier_lease): the tier keeps
// serving, and tier_status and the log say why. Returns true when leading.
bool
become_leader(const char *name)
{
	bool alive = other_leader_alive();
	if (!alive && try_leadership()) {
		leaderless_since = 0;
		ereport(LOG, (errmsg("%s leads (advisory lock %u/%d/%d)", name, kLeadershipLockClass, args.tier_id,
		                     kLeadershipLockSubid)));
	} else if (fence_deposed_leader(true)) {
		fenced = true;
		foreign_holder = 0;
		ereport(LOG, (errmsg("%s leads in place of a deposed leader that still holds advisory lock %u/%d/%d", name,
		                     kLeadershipLockClass, args.tier_id, kLeadershipLockSubid)));
	} else if (!alive && first_follower()) {
		// Nobody leads, yet the lock is taken: give its holder a moment (a
		// leader that is exiting lets go of it), then lead fenced.
		TimestampTz now = GetCurrentTimestamp();
		if (leaderless_since == 0)
			leaderless_since = now;
		if (!TimestampDifferenceExceeds(leaderless_since, now, kForeignHolderGraceMs)) {
			publish(CoordState::WaitingForLeadership);
			sleep_on_latch(kFollowerPollMs);
			return false;
		}
		pid_t holder = leadership_lock_holder();
		fenced = true;
		foreign_holder = holder;
		leaderless_since = 0;
		ereport(WARNING, (errmsg("%s leads fenced: the leadership lock %u/%d/%d is held by pid %d, which is not a "
		                         "coordinator of this tier",
		                         name, kLeadershipLockClass, args.tier_id, kLeadershipLockSubid, (int)holder),
		                  errhint("Only a C extension can take this lock; its epoch in foreman.tier_lease keeps "
		                          "the holder from running jobs.")));
	} else {
		if (alive)
			leaderless_since = 0;
		publish(CoordState::WaitingForLeadership);
		sleep_on_latch(kFollowerPollMs);
		return false;
	}
	is_leader = true;
	orphans_checked = false;
	lease_taken = false;
	return true;
}

// A fenced leader goes on while the holder of the lock is a deposed leader it
// claimed, or a foreign process, and no other coordinator leads.
bool
still_fenced_leader()
{
	return fence_deposed_leader(false) || !other_leader_alive();
}

// Error recovery for bookkeeping (a job's own errors never get here): log,
// clean up, and back off; a dropped extension ends the coordinator.
void
recover_from_error(int *consecutive_errors)
{
	// The frames that pushed error context callbacks are gone.
	error_context_stack = nullptr;
	debug_query_string = nullptr;
	HOLD_INTERRUPTS();
	EmitErrorReport();
	// Say why in tier_status: e.g. a lock a user holds on a foreman table.
	char reason[128];
	{
		MemoryContextSwitchTo(TopMemoryContext);
		ErrorData *edata = CopyErrorData();
		snprintf(reason, sizeof reason, "blocked: %s", edata->message ? edata->message : "error");
		FreeErrorData(edata);
	}
	AbortOutOfAnyTransaction();
	if (GetUserId() != GetAuthenticatedUserId())
		session_leave_owner();
	FlushErrorState();
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(cycle_context);
	QueryCancelPending = false;
	RESUME_INTERRUPTS();

	(*consecutive_errors)++;
	publish(CoordState::Blocked);
	publish_progress(reason);

	// Still installed? A dropped extension is the common cause of errors here.
	StartTransactionCommand();
	bool installed = OidIsValid(get_extension_oid("pg_foreman", true));
	CommitTransactionCommand();
	if (!installed) {
		ereport(LOG, (errmsg("pg_foreman coordinator %s: extension dropped, exiting", MyBgworkerEntry->bgw_name)));
		request_rescan(MyDatabaseId);
		proc_exit(0);
	}
	long backoff = Min(kMaxErrorBackoffMs, 100L << Min(*consecutive_errors, 6));
	sleep_on_latch(backoff);
}

} // namespace

void
report_progress(const char *text)
{
	if (slot_index < 0 || !runner_in_job())
		return;
	publish_progress(text);
	set_ps_display(text);
	pgstat_report_activity(STATE_RUNNING, text);
}

void
report_run_totals(int64 rows, int32 batches)
{
	runner_report_totals(rows, batches);
}

bool
in_coordinator_job()
{
	return slot_index >= 0 && runner_in_job();
}

} // namespace foreman::bgw

using namespace foreman::bgw;

void
foreman_coordinator_main(Datum)
{
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof args);

	pqsignal(SIGTERM, runner_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	session_init();
	runner_init();
	beat_timeout_id = RegisterTimeout(USER_TIMEOUT, job_beat_handler);

	// bgw_name is "pg_foreman coordinator <db>/<tier>".
	const char *name = MyBgworkerEntry->bgw_name;
	const char *db_and_tier = strrchr(name, ' ') ? strrchr(name, ' ') + 1 : name;
	const char *slash = strrchr(db_and_tier, '/');
	char dbname[kNameLen] = "?";
	StartTransactionCommand();
	if (char *db = get_database_name(MyDatabaseId))
		strlcpy(dbname, db, sizeof dbname);
	CommitTransactionCommand();
	claim_slot(dbname, slash ? slash + 1 : "?");
	before_shmem_exit(release_slot, 0);

	// application_name set as an override survives the RESET ALL after each job.
	SetConfigOption("application_name", name, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(name);

	cycle_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman cycle", ALLOCSET_DEFAULT_SIZES);
	job_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman job", ALLOCSET_DEFAULT_SIZES);

	// Static: it must survive the longjmp back to sigsetjmp unclobbered.
	static int consecutive_errors = 0;
	sigjmp_buf local_sigjmp_buf;
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		recover_from_error(&consecutive_errors);
	PG_exception_stack = &local_sigjmp_buf;

	for (;;) {
		stop_if_requested();
		reload_if_requested();

		if (!is_leader && !become_leader(name))
			continue;
		if (fenced) {
			// The lock, once its holder lets go of it.
			if (try_leadership())
				fenced = false;
			else if (!still_fenced_leader()) {
				is_leader = fenced = lease_taken = false; // someone else leads now
				continue;
			}
		}
		if (!lease_taken) {
			internal_xact_begin(true);
			int64 epoch = take_lease(args.tier_id);
			internal_xact_commit();
			lease_taken = true;
			elog(DEBUG1, "%s leads under epoch %lld", name, (long long)epoch);
		}

		// A run's outcome not yet recorded comes first; until it is, nothing
		// else runs (the tier is blocked, and says so).
		if (!runner_flush_pending()) {
			publish(CoordState::Blocked);
			publish_progress(psprintf("blocked: recording the last run: %s", runner_last_error()));
			sleep_on_latch(1000);
			continue;
		}
		publish(CoordState::Idle);
		long timeout = leader_cycle();
		consecutive_errors = 0;
		if (!is_leader)
			continue;
		if (timeout > 0) {
			publish(CoordState::Idle);
			sleep_on_latch(timeout);
		}
	}
}
