// sequential.cpp: a sequential tier runs its due jobs one after another, in
// the coordinator's own process.
//
// The starts of several due jobs are recorded in one durable commit (a
// batch), then the jobs run in that order: one WAL flush for the batch, not
// one per run. Only jobs known to be short wait in a batch behind others
// (their previous runs took kBatchBudgetUs in all), so a recorded start is
// followed by the real one within milliseconds. A run recorded in a batch
// that will not start (the coordinator stops, loses the lead, meets an
// error) is recorded 'skipped' (reason 'not started'); after a crash, the
// next leader tells the one run that may have been running from those
// queued behind it (mark_orphaned_runs).
//
// A tier woken for a due time records the first batch a few milliseconds
// before it (coordinator.cpp, kRecordAheadUs) and starts the first job at
// the due time itself: the durable commit of the starts is no longer part of
// the start delay. The jobs are decided as at the due time (plan_job), and a
// run never starts before it (runner_wait_until).
#include "bgw/coordinator_state.hpp"
#include "bgw/job_runner.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kLockedRetryMs = 250;   // due jobs whose rows their owners hold are tried again this often
constexpr int kMaxBatch = 64;          // starts recorded in one commit
constexpr int64 kBatchBudgetUs = 20000; // how long the runs ahead of a queued one may have taken, in all

// The runs of the batch being run: recorded, not yet started. Kept across
// a bookkeeping error (which resets the cycle's memory), so that what was
// recorded and will not run is recorded as such.
struct Queue {
	int64 run_ids[kMaxBatch];
	int64 job_ids[kMaxBatch];
	int32 attempts[kMaxBatch];
	const DueJob *jobs[kMaxBatch]; // valid within the cycle that recorded them
	int n;
	int next;
};
Queue queue;
// No run of this cycle starts before this instant (the due time the batch
// was recorded ahead of; 0: none). A stop that cuts the wait short makes
// run_queue abandon the batch.
TimestampTz not_before = 0;

// The next due jobs for a batch, from due[*next] on: the first one, and
// after it those whose runs ahead of them are known to be short.
int
choose_batch(DueJob **due, int ndue, int next, int64 *job_ids)
{
	int n = 0;
	int64 ahead_us = 0; // the runs chosen so far took this long last time (-1: unknown)
	while (next + n < ndue && n < kMaxBatch) {
		if (n > 0 && (ahead_us < 0 || ahead_us > kBatchBudgetUs))
			break;
		const DueJob &job = *due[next + n];
		int64 took = previous_run_us(job);
		ahead_us = took < 0 || ahead_us < 0 ? -1 : ahead_us + took;
		job_ids[n++] = job.job_id;
	}
	return n;
}

// Records the starts of the next due jobs (choose_batch) in one durable
// commit. Sets *progress when a job moved on (a run or a skipped fire time
// recorded).
void
record_batch(DueJob **due, int ndue, int *next, bool *progress)
{
	// Decided as at the due time when recorded ahead of it.
	TimestampTz now = Max(GetCurrentTimestamp(), not_before);
	transition(CoordState::Bookkeeping, due[*next], now);
	queue.n = queue.next = 0;
	int64 job_ids[kMaxBatch];
	bool locked[kMaxBatch];
	int chosen = choose_batch(due, ndue, *next, job_ids);
	int n = 0;
	runner_durable_begin();
	internal_xact_begin(true);
	(void)lock_for_starts(job_ids, chosen, locked);
	for (int c = 0; c < chosen; c++) {
		const DueJob &job = *due[*next + c];
		if (!locked[c])
			continue; // its owner holds its row: tried again later
		RunPlan plan = plan_job(job, now);
		int64 run_id = plan.run ? begin_run(job, plan.start) : 0;
		*progress |= plan.skip_recorded || run_id != 0;
		if (run_id == 0)
			continue;
		queue.run_ids[n] = run_id;
		queue.job_ids[n] = job.job_id;
		queue.attempts[n] = plan.start.attempt;
		queue.jobs[n++] = &job;
	}
	internal_xact_commit();
	*next += chosen;
	queue.n = n; // only what committed
	if (n > 0 && !runner_durable_end())
		(void)abandon_queue(runner_stop_requested() ? NotStarted::Stopping : NotStarted::NotConfirmed);
}

// Runs the recorded batch, in order, while this process leads and is not
// stopping.
void
run_queue()
{
	static const RunHooks hooks = {
		[](const DueJob &j, TimestampTz started) { transition(CoordState::Running, &j, started); },
	};
	while (queue.next < queue.n) {
		runner_wait_until(not_before);
		if (runner_stop_requested() || !coord.leader || (coord.slot >= 0 && my_slot().deposed))
			break;
		// The last outcome first: until it is recorded nothing else runs (the
		// tier is blocked; iteration() records it, then the rest).
		if (!runner_flush_pending())
			return;
		const DueJob &job = *queue.jobs[queue.next];
		int i = queue.next++;
		TimestampTz started = GetCurrentTimestamp();
		(void)runner_execute(job, queue.run_ids[i], queue.attempts[i], started, coord.job_context, hooks);
		transition(CoordState::Bookkeeping, &job, started);
		keep_leadership_after_job(job);

		Shared *sh = shared();
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		my_slot().runs++;
		LWLockRelease(sh->lock);
	}
	(void)abandon_queue(runner_stop_requested() ? NotStarted::Stopping : NotStarted::Abandoned);
}

} // namespace

bool
abandon_queue(NotStarted why)
{
	while (queue.next < queue.n) {
		int i = queue.next;
		if (!runner_not_started(queue.run_ids[i], queue.job_ids[i], queue.attempts[i], why))
			return false; // kept pending: the rest when it is recorded
		queue.next++;
	}
	queue.n = queue.next = 0;
	return true;
}

long
run_sequential(List *due, long timeout, TimestampTz due_by)
{
	int ndue = list_length(due);
	if (ndue == 0)
		return -1;
	not_before = due_by;
	DueJob **jobs = static_cast<DueJob **>(palloc(sizeof(DueJob *) * ndue));
	for (int i = 0; i < ndue; i++)
		jobs[i] = static_cast<DueJob *>(list_nth(due, i));
	bool progress = false;
	int next = 0;
	while (next < ndue) {
		stop_if_requested();
		reload_if_requested();
		record_batch(jobs, ndue, &next, &progress);
		run_queue();
		if (!coord.leader)
			return 0;
	}
	// More may be due now: read again at once. Only jobs whose rows their
	// owners hold (the others went on): try again soon.
	return progress ? 0 : Min(timeout, kLockedRetryMs);
}

} // namespace foreman::bgw
