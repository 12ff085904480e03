// coordinator_state.hpp: the state of this process's coordinator, shared by
// the files that make it up (coordinator.cpp: the state machine and main
// loop; leadership.cpp; due.cpp: what to do with a due job; sequential.cpp
// and parallel.cpp: how due jobs are run). Not for other processes: they see
// the coordinator only through its slot in shared memory.
#pragma once

#include "bgw/coordinator.hpp"
#include "bgw/executor.hpp"
#include "bgw/job_runner.hpp"
#include "bgw/launcher.hpp"
#include "bgw/run_store.hpp"
#include "bgw/shmem.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace foreman::bgw {

constexpr int kMaxInFlight = 1024;

// An executor this coordinator started (parallel tiers), until it sees it end.
struct InFlight {
	BackgroundWorkerHandle *handle;
	int slot;
	uint32 reservation; // which reservation of that slot (slots are reused)
};

struct Coordinator {
	CoordinatorArgs args;
	const char *name; // "pg_foreman coordinator <db>/<tier>"
	int slot;         // index of this process's slot in shared()->slots
	CoordState state;

	// Leadership (leadership.cpp).
	bool leader;
	bool fenced;                  // leading without the lock, fenced by the epoch alone
	bool fenced_foreign;          // fenced because a process that is no coordinator holds the lock
	pid_t foreign_holder;         // that process (0: not found)
	TimestampTz leaderless_since; // a follower that found no live leader, yet no lock
	bool lease_taken;             // this leadership's epoch is taken
	int64 epoch;

	// Bookkeeping.
	bool orphans_checked;          // runs a predecessor left 'running' were marked
	bool summaries_pending;        // run summaries wait for their jobs' rows
	TimestampTz summaries_tried_at;
	int consecutive_errors;
	MemoryContext cycle_context; // reset each cycle
	MemoryContext job_context;   // reset each run

	// Parallel tiers (parallel.cpp).
	InFlight inflight[kMaxInFlight];
	int ninflight;
	bool cap_was_reached; // due jobs waited for foreman.max_executors
	bool retired_idle;    // an idle executor was asked to leave, to make room
};

extern Coordinator coord;

CoordinatorSlot &my_slot();

// The one transition function: checks that `to` may follow the state it
// leaves (ERROR otherwise: a bug, handled as a bookkeeping error), publishes
// the state and the heartbeat, and the running job (Running, Bookkeeping
// around a run) or its absence.
void transition(CoordState to, const DueJob *job = nullptr, TimestampTz job_started = 0);

// Runs left 'running' by a process that is gone are crashed; those no
// process had taken (or that queued behind another in a process that is
// gone) did not start. Queued runs and runs executors hold are no orphans.
// In an internal transaction.
void mark_orphans_now();

// Progress text of the slot, cut at a character boundary.
void publish_progress(const char *text);

void stop_if_requested();
void reload_if_requested();
void sleep_on_latch(long timeout_ms);

// leadership.cpp
bool become_leader();                        // a follower's attempt; true when leading
bool still_leader();                         // a fenced leader re-checks; false: back to following
void take_leadership_epoch();                // the next epoch, committed durably
void lead_anew_if_lease_lost();              // after a cycle that found its epoch gone (take_lease_lost)
void keep_leadership_after_job(const DueJob &job);

// due.cpp: what a loaded due job gets - which fire time a run stands for,
// its attempt and the job's next_run_at - after recording as 'skipped' the
// fire times it does not run.
struct RunPlan {
	bool run;
	RunStart start;
	bool skip_recorded; // a fire time was recorded 'skipped' (the job moved on)
};
RunPlan plan_job(const DueJob &job, TimestampTz now);
// How long the job's previous run took, or -1 when unknown: only jobs known
// to be short wait behind others in a batch of starts.
int64 previous_run_us(const DueJob &job);

// sequential.cpp: runs due jobs one after another; returns the latch timeout
// the cycle asks for (0: read again at once), given the tier's default.
// due_by: the instant the due jobs were read for; when it is still ahead, the
// starts are recorded now and the first job starts at it (coordinator.cpp).
long run_sequential(List *due, long timeout, TimestampTz due_by);
// Records the runs of the batch that were recorded and will not start
// ('skipped', why); false while one waits to be recorded (kept pending).
bool abandon_queue(NotStarted why);

// parallel.cpp
void reap_executors();
// Records the runs queued for executors as not started ('skipped', why);
// false while one waits to be recorded.
bool abandon_executor_queue(NotStarted why);
long run_parallel(List *due, const TierState &tier, long timeout, TimestampTz due_by);
// How long before a due time a parallel tier starts the executors its jobs
// will need (0: a sequential tier, or executors do not wait when idle).
int64 executor_lead_us(const TierState &tier);
// Starts executors for `soon` jobs due shortly (with those busy and queued),
// so that the due time does not wait for forks and connections.
void prewarm_executors(const TierState &tier, int soon);
bool take_executor_deferred_summaries();

} // namespace foreman::bgw
