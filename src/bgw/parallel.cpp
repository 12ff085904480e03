// parallel.cpp: a parallel tier hands its due jobs, in due-time order, to
// executor workers - at most `concurrency` at once, and at most
// foreman.max_executors across the cluster. The coordinator never waits on
// an executor.
//
// Each cycle the coordinator takes as many due jobs as its executors can
// start at once, and beyond that those whose runs ahead of them are known to
// be short (as a sequential batch: sequential.cpp); makes sure the tier has
// executors for them (starting new ones up to its concurrency); records
// their starts in one durable commit, with no process yet; and queues them
// (shmem.hpp). Idle executors take queued runs in order and claim each in its
// row before they start it. Queued runs a stopping coordinator leaves are
// recorded as not started.
#include "bgw/coordinator_state.hpp"
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kLockedRetryMs = 250;    // due jobs whose rows their owners hold are tried again this often
constexpr long kRetiringMs = 100;       // an idle executor is leaving to make room
constexpr int64 kQueueBudgetUs = 20000; // how long a queued run may wait for an executor, by the runs ahead of it
// New executors are started this long before the due time that needs them: a
// fork and a connection each, one after another by the postmaster (a few
// milliseconds each, tens on a busy machine), paid before the due time, not
// after it.
constexpr int64 kExecutorLeadUs = 250000;

bool warned_no_worker = false;

// Starts new executors until the tier has `wanted` (at most its
// concurrency); false when it has none and none could be started.
bool
ensure_executors(const TierState &tier, int wanted)
{
	wanted = Min(wanted, tier.concurrency);
	for (int have = executor_total_count(coord.args.tier_id); have < wanted; have++) {
		bool cap_reached = false;
		Reservation r = executor_reserve(coord.args.tier_id, tier.concurrency, &cap_reached);
		if (r.slot < 0) {
			if (cap_reached) {
				coord.cap_was_reached = true;
				// Idle executors (of any tier) hold places under the cap: free one.
				executor_retire_one_idle();
				coord.retired_idle = true;
			}
			break;
		}
		BackgroundWorkerHandle *handle =
			coord.ninflight < kMaxInFlight ? executor_start(r, my_slot().dbname, my_slot().tier_name) : nullptr;
		if (!handle) {
			executor_release_reservation(r);
			if (!warned_no_worker)
				ereport(WARNING, (errmsg("%s: no background worker slot is free for an executor", coord.name),
				                  errhint("Raise max_worker_processes; due jobs wait meanwhile.")));
			warned_no_worker = true;
			break;
		}
		warned_no_worker = false;
		coord.inflight[coord.ninflight++] = InFlight{handle, r.slot, r.id};
	}
	return executor_total_count(coord.args.tier_id) > 0;
}

// A due job whose previous run still goes (or waits in the queue): skipped
// (overlap 'skip'), waits ('queue'), or runs beside it up to max_instances
// ('allow'). True when it was dealt with here.
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
	bool locked = false;
	if (lock_for_starts(&job.job_id, 1, &locked) == 1)
		(void)record_skipped(job, skip);
	internal_xact_commit();
	return true;
}

// The due jobs this cycle takes (into chosen): as many as the tier's
// executors can start now, then those whose runs ahead are known to be short.
int
choose_jobs(List *due, const TierState &tier, TimestampTz now, const DueJob **chosen, int *waiting)
{
	int queued = executor_queue_length();
	int free_now = Max(0, tier.concurrency - executor_busy_count(coord.args.tier_id) - queued);
	int room = kMaxQueuedRuns - queued;
	int n = 0;
	int64 ahead_us = 0; // the runs chosen beyond free_now took this long last time (-1: unknown)
	ListCell *lc;
	foreach (lc, due) {
		const DueJob &job = *static_cast<DueJob *>(lfirst(lc));
		if (overlapping(job, now, waiting))
			continue;
		if (n >= room || (n >= free_now && (ahead_us < 0 || ahead_us / tier.concurrency > kQueueBudgetUs))) {
			(*waiting)++;
			continue;
		}
		if (n >= free_now) {
			int64 took = previous_run_us(job);
			ahead_us = took < 0 ? -1 : ahead_us + took;
		}
		chosen[n++] = &job;
	}
	return n;
}

// Records the chosen jobs' starts in one durable commit and queues them.
// Returns how many were queued; *stuck: some were not (skipped, changed,
// their rows held by their owners).
int
record_and_queue(const DueJob **chosen, int n, TimestampTz due_by, bool *stuck)
{
	// Decided as at the due time when recorded ahead of it.
	TimestampTz now = Max(GetCurrentTimestamp(), due_by);
	int64 *job_ids = static_cast<int64 *>(palloc(sizeof(int64) * n));
	bool *locked = static_cast<bool *>(palloc(sizeof(bool) * n));
	ExecutorRun *runs = static_cast<ExecutorRun *>(palloc0(sizeof(ExecutorRun) * n));
	for (int i = 0; i < n; i++)
		job_ids[i] = chosen[i]->job_id;
	runner_durable_begin();
	internal_xact_begin(true);
	(void)lock_for_starts(job_ids, n, locked);
	for (int i = 0; i < n; i++) {
		const DueJob &job = *chosen[i];
		RunPlan plan = locked[i] ? plan_job(job, now) : RunPlan{};
		plan.start.for_executor = true;
		int64 run_id = plan.run ? begin_run(job, plan.start) : 0;
		if (run_id != 0 && coord.cap_was_reached && now - plan.start.scheduled_for > USECS_PER_SEC)
			mark_run_delayed(run_id, (now - plan.start.scheduled_for) / 1000);
		runs[i] = ExecutorRun{run_id, job.job_id, job.owner, plan.start.attempt, now, due_by};
		*stuck |= run_id == 0;
	}
	internal_xact_commit();
	// Starts the synchronous standby did not confirm (or a coordinator that
	// stops) are not queued: those runs are recorded as not started.
	bool durable = runner_durable_end();
	int queued = 0;
	for (int i = 0; i < n; i++) {
		const ExecutorRun &run = runs[i];
		if (run.run_id == 0)
			continue;
		if (durable && executor_queue_push(run)) {
			queued++;
			continue;
		}
		(void)runner_not_started(run.run_id, run.job_id, run.attempt,
		                         runner_stop_requested() ? NotStarted::Stopping
		                         : durable               ? NotStarted::Abandoned
		                                                 : NotStarted::NotConfirmed);
	}
	executor_wake_idle(coord.args.tier_id);
	return queued;
}

} // namespace

int64
executor_lead_us(const TierState &tier)
{
	// Half the idle wait at most: the executors must still be there.
	return tier.concurrency > 1 ? Min(kExecutorLeadUs, (int64)guc_executor_idle_ms * 1000 / 2) : 0;
}

void
prewarm_executors(const TierState &tier, int soon)
{
	if (soon > 0)
		(void)ensure_executors(tier, executor_busy_count(coord.args.tier_id) + executor_queue_length() + soon);
}

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

bool
abandon_executor_queue(NotStarted why)
{
	ExecutorRun runs[kMaxQueuedRuns];
	int n = executor_queue_drain(runs, kMaxQueuedRuns);
	for (int i = 0; i < n; i++)
		if (!runner_not_started(runs[i].run_id, runs[i].job_id, runs[i].attempt, why)) {
			// Kept pending; the rest go back to the queue (it was emptied), in order.
			for (int k = i + 1; k < n; k++)
				(void)executor_queue_push(runs[k]);
			return false;
		}
	return true;
}

void
reap_executors()
{
	bool gone = false;
	for (int i = 0; i < coord.ninflight;) {
		pid_t pid;
		InFlight &f = coord.inflight[i];
		if (GetBackgroundWorkerPid(f.handle, &pid) != BGWH_STOPPED) {
			i++;
			continue;
		}
		// Gone: a reservation it never took is freed.
		executor_release_reservation(Reservation{f.slot, f.reservation});
		pfree(f.handle);
		coord.inflight[i] = coord.inflight[--coord.ninflight];
		gone = true;
	}
	if (!gone)
		return;
	// A run an executor took and did not record is crashed (or not started,
	// when it had not claimed it yet); queued runs are no orphans.
	internal_xact_begin();
	mark_orphans_now();
	internal_xact_commit();
}

long
run_parallel(List *due, const TierState &tier, long timeout, TimestampTz due_by)
{
	coord.cap_was_reached = false;
	coord.retired_idle = false;
	// An executor that goes idle while this cycle decides wakes it again.
	executor_wake_on_idle(true);
	TimestampTz now = Max(GetCurrentTimestamp(), due_by);
	int waiting = 0;
	bool stuck = false;
	const DueJob **chosen = static_cast<const DueJob **>(palloc(sizeof(DueJob *) * Max(list_length(due), 1)));
	int n = choose_jobs(due, tier, now, chosen, &waiting);
	int queued = executor_queue_length();
	// Executors for what waits and what is chosen; with none at all, nothing
	// more is recorded. What is queued waits for one (the cap frees places as
	// other tiers' executors go idle and are retired).
	if (!ensure_executors(tier, executor_busy_count(coord.args.tier_id) + queued + n)) {
		waiting += n;
		n = 0;
	}
	int started = n > 0 ? record_and_queue(chosen, n, due_by, &stuck) : 0;
	// Nothing waits: no executor needs to wake this coordinator (its next
	// due time, its tick, an exit or a changed job does).
	if (waiting == 0)
		executor_wake_on_idle(false);
	if (coord.cap_was_reached)
		publish_progress(psprintf("%d due jobs wait for an executor (foreman.max_executors = %d reached)", waiting,
		                          executor_cap()));
	if (list_length(due) == 0)
		return -1;
	if (started > 0)
		return 0;
	if (coord.retired_idle)
		return kRetiringMs;
	// Due jobs wait for executors (whose exits and idleness set this latch),
	// or for their owners' locks.
	return stuck ? Min(timeout, kLockedRetryMs) : timeout;
}

} // namespace foreman::bgw
