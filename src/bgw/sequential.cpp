// sequential.cpp: a sequential tier runs its due jobs one after another, in
// the coordinator's own process.
#include "bgw/coordinator_state.hpp"
#include "bgw/job_runner.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kLockedRetryMs = 250; // due jobs whose rows their owners hold are tried again this often

// What became of a due job in this cycle.
enum class JobStep {
	Ran,   // its run started (and ended)
	Moved, // a fire time was recorded as skipped: the job moved on
	Stuck, // nothing was written: it changed since it was loaded, or its owner holds its row
};

// Runs one due job: record it as running (and advance its schedule) in one
// committed, durable transaction; run the command as the owner; record the
// outcome.
JobStep
run_job(const DueJob &job)
{
	TimestampTz now = GetCurrentTimestamp();
	transition(CoordState::Bookkeeping, &job, now);
	internal_xact_begin(true);
	RunPlan plan = plan_job(job, now);
	int64 run_id = plan.run ? begin_run(job, plan.start) : 0;
	internal_xact_commit();
	if (run_id == 0)
		return plan.skip_recorded ? JobStep::Moved : JobStep::Stuck;

	static const RunHooks hooks = {
		[](const DueJob &j, TimestampTz started) { transition(CoordState::Running, &j, started); },
	};
	(void)runner_execute(job, run_id, plan.start.attempt, now, coord.job_context, hooks);
	transition(CoordState::Bookkeeping, &job, now);
	keep_leadership_after_job(job);

	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	my_slot().runs++;
	LWLockRelease(sh->lock);
	return JobStep::Ran;
}

} // namespace

long
run_sequential(List *due, long timeout)
{
	if (list_length(due) == 0)
		return -1;
	bool progress = false;
	ListCell *lc;
	foreach (lc, due) {
		stop_if_requested();
		reload_if_requested();
		progress |= run_job(*static_cast<DueJob *>(lfirst(lc))) != JobStep::Stuck;
		if (!coord.leader)
			return 0;
	}
	// More may be due now: read again at once. Only jobs whose rows their
	// owners hold (the others went on): try again soon.
	return progress ? 0 : Min(timeout, kLockedRetryMs);
}

} // namespace foreman::bgw
