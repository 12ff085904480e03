// parallel.cpp: a parallel tier hands its due jobs, in due-time order, to
// executor workers - at most `concurrency` at once, and at most
// foreman.max_executors across the cluster. The coordinator never waits on
// an executor.
#include "bgw/coordinator_state.hpp"
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kLockedRetryMs = 250; // due jobs whose rows their owners hold are tried again this often
constexpr long kRetiringMs = 100;    // an idle executor is leaving to make room

enum class Dispatch {
	Started,    // an executor runs it
	NotStarted, // no run was recorded (skipped, changed, or its row held by its owner)
	NoRoom,     // no executor may take it now (the tier's concurrency or the cluster-wide cap)
};

bool warned_no_worker = false;

// Records a due job's run as started (durably) and returns its run_id, or 0
// when nothing was started.
int64
start_run_record(const DueJob &job, TimestampTz now, int32 *attempt)
{
	runner_durable_begin();
	internal_xact_begin(true);
	RunPlan plan = plan_job(job, now);
	plan.start.for_executor = true;
	int64 run_id = plan.run ? begin_run(job, plan.start) : 0;
	if (run_id != 0 && coord.cap_was_reached && now - plan.start.scheduled_for > USECS_PER_SEC)
		mark_run_delayed(run_id, (now - plan.start.scheduled_for) / 1000);
	internal_xact_commit();
	*attempt = plan.start.attempt;
	// A start the synchronous standby did not confirm (or a coordinator
	// that stops) hands nothing over: the run is recorded as not started.
	if (run_id != 0 && !runner_durable_end()) {
		(void)runner_not_started(run_id, job.job_id, plan.start.attempt,
		                   runner_stop_requested() ? NotStarted::Stopping : NotStarted::NotConfirmed);
		return 0;
	}
	return run_id;
}

// A claimed executor of the tier: an idle one (no fork, no new connection),
// else a new one, started now. -1 when there is no room.
int
claim_executor(const TierState &tier)
{
	int slot = executor_claim_idle(coord.args.tier_id);
	if (slot >= 0)
		return slot;
	bool cap_reached = false;
	Reservation r = executor_reserve(coord.args.tier_id, tier.concurrency, &cap_reached);
	if (r.slot < 0) {
		if (cap_reached) {
			coord.cap_was_reached = true;
			// Idle executors (of any tier) hold places under the cap: free one.
			executor_retire_one_idle();
			coord.retired_idle = true;
		}
		return -1;
	}
	BackgroundWorkerHandle *handle =
		coord.ninflight < kMaxInFlight ? executor_start(r, my_slot().dbname, my_slot().tier_name) : nullptr;
	if (!handle) {
		executor_release_reservation(r);
		if (!warned_no_worker)
			ereport(WARNING, (errmsg("%s: no background worker slot is free for an executor", coord.name),
			                  errhint("Raise max_worker_processes; due jobs wait meanwhile.")));
		warned_no_worker = true;
		return -1;
	}
	warned_no_worker = false;
	coord.inflight[coord.ninflight++] = InFlight{handle, r.slot, r.id, 0};
	return r.slot;
}

// Starts one due job in an executor. The executor is claimed before the run
// is recorded, so a recorded run always has one.
Dispatch
dispatch_job(const DueJob &job, const TierState &tier)
{
	if (executor_count(coord.args.tier_id) >= tier.concurrency)
		return Dispatch::NoRoom;
	int slot = claim_executor(tier);
	if (slot < 0)
		return Dispatch::NoRoom;
	TimestampTz now = GetCurrentTimestamp();
	int32 attempt = 1;
	int64 run_id = start_run_record(job, now, &attempt);
	if (run_id == 0) {
		executor_release_claim(slot);
		return Dispatch::NotStarted;
	}
	executor_hand_over(slot, ExecutorRun{run_id, job.job_id, job.owner, attempt, now});
	for (int i = 0; i < coord.ninflight; i++)
		if (coord.inflight[i].slot == slot && executor_slot_is(slot, coord.inflight[i].reservation))
			coord.inflight[i].run_id = run_id;
	return Dispatch::Started;
}

// A due job whose previous run still goes: skipped (overlap 'skip'), waits
// ('queue'), or runs beside it up to max_instances ('allow'). True when it
// was dealt with here.
bool
overlapping(const DueJob &job, TimestampTz now, int *waiting)
{
	int instances = executor_instances(job.job_id);
	if (instances == 0 || (job.overlap == core::Overlap::Allow && instances < job.max_instances))
		return false;
	bool scheduled = job.enabled && job.has_next_run && job.next_run_at <= now;
	// 'queue' waits for the instance to end; so do a retry and a run as a
	// downstream (a pipeline's step is never dropped for an overlap).
	if (job.overlap != core::Overlap::Skip || job.retry_due || (!scheduled && !job.requested)) {
		(*waiting)++;
		return true;
	}
	SkipRecord skip{};
	skip.scheduled_for = scheduled ? job.next_run_at : job.requested_at;
	skip.reason = "overlap";
	skip.message = "the previous run was still going";
	skip.advance = scheduled;
	skip.has_next = scheduled ? pg::next_fire_time(job.schedule, now, &skip.next_run_at) : job.has_next_run;
	if (!scheduled)
		skip.next_run_at = job.next_run_at;
	skip.clear_request = !scheduled;
	internal_xact_begin();
	(void)record_skipped(job, skip);
	internal_xact_commit();
	return true;
}

} // namespace

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
	int64 crashed[kMaxInFlight];
	int ncrashed = 0;
	for (int i = 0; i < coord.ninflight;) {
		pid_t pid;
		InFlight &f = coord.inflight[i];
		if (GetBackgroundWorkerPid(f.handle, &pid) != BGWH_STOPPED) {
			i++;
			continue;
		}
		// Gone: a reservation it never took is freed; a run it did not
		// record is crashed (a recorded one is left as it is).
		executor_release_reservation(Reservation{f.slot, f.reservation});
		if (f.run_id != 0)
			crashed[ncrashed++] = f.run_id;
		pfree(f.handle);
		coord.inflight[i] = coord.inflight[--coord.ninflight];
	}
	if (ncrashed == 0)
		return;
	internal_xact_begin();
	for (int i = 0; i < ncrashed; i++)
		mark_run_crashed(crashed[i], "its executor ended before it recorded the run");
	internal_xact_commit();
}

long
run_parallel(List *due, const TierState &tier, long timeout)
{
	if (list_length(due) == 0)
		return -1;
	coord.cap_was_reached = false;
	coord.retired_idle = false;
	TimestampTz now = GetCurrentTimestamp();
	int waiting = 0;
	bool started = false, stuck = false;
	ListCell *lc;
	foreach (lc, due) {
		stop_if_requested();
		const DueJob &job = *static_cast<DueJob *>(lfirst(lc));
		if (overlapping(job, now, &waiting))
			continue;
		Dispatch d = dispatch_job(job, tier);
		if (d == Dispatch::NoRoom) {
			waiting++;
			if (coord.cap_was_reached)
				break;
		}
		started |= d == Dispatch::Started;
		stuck |= d == Dispatch::NotStarted;
	}
	if (coord.cap_was_reached)
		publish_progress(psprintf("%d due jobs wait for an executor (foreman.max_executors = %d reached)", waiting,
		                          executor_cap()));
	if (started)
		return 0;
	if (coord.retired_idle)
		return kRetiringMs;
	// Due jobs wait for executors (whose exits and idleness set this latch),
	// or for their owners' locks.
	return stuck ? Min(timeout, kLockedRetryMs) : timeout;
}

} // namespace foreman::bgw
