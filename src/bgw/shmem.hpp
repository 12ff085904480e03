// shmem.hpp: pg_foreman's shared memory: databases known to the launcher and
// the coordinator slots that tier_status shows.
//
// One LWLock guards it all; every holder does a few loads and stores, never I/O.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "port/atomics.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

constexpr int kMaxDatabases = 128;
constexpr int kMaxTiersPerDatabase = 32;
constexpr int kNameLen = NAMEDATALEN;

// What the launcher knows of a database.
enum class DbState : uint8 {
	Free = 0,     // slot unused
	Unknown,      // listed in pg_database, not yet scouted
	Scouting,     // a scout is connected to it
	Active,       // the extension is installed: coordinators run for its tiers
	NoExtension,  // the extension is not installed
	Failed,       // the scout failed; retried later
};

struct TierInfo {
	int32 tier_id;
	char name[kNameLen];
};

// Stalls the launcher saw in a tier, kept beside the tier list (which a
// rescan rewrites).
struct TierStalls {
	int32 tier_id;
	int64 count;
	TimestampTz last_at;
	pid_t last_pid;
};

struct DatabaseEntry {
	Oid dboid;
	DbState state;
	// What the last successful scout found; kept while a rescan is under way
	// so that a rescan never stops coordinators that should go on.
	bool installed;
	int scout_index; // which launcher scout slot is scouting it, -1: none
	bool rescan;   // re-scout at the next launcher cycle (extension or tiers changed)
	bool paused;   // DROP DATABASE and friends in progress: start nothing here
	char dbname[kNameLen];
	int ntiers;
	TierInfo tiers[kMaxTiersPerDatabase];
	TimestampTz scouted_at;
	char failure[128];
	TierStalls stalls[kMaxTiersPerDatabase];
};

// States a coordinator reports; spelled for tier_status by coordinator_state_name().
enum class CoordState : uint8 {
	Starting = 0,
	WaitingForLeadership,
	Idle,
	Running,
	Bookkeeping,
	Blocked,
	Stopping,
};
const char *coordinator_state_name(CoordState state);

// A tier wakes this long before a due time, records the starts of the jobs
// due at it in one durable commit, and starts the first at the due time
// itself (sequential.cpp; parallel.cpp: its executors wait for it). It
// covers the read and the commit of a batch - ~1 ms for one job, 5-6 ms for
// a full batch of 64 on a 2-core machine - and a wake-up's own delay, with
// room for a busy moment.
constexpr int64 kRecordAheadUs = 10000;

// A recorded run for an executor of a parallel tier (shmem: the tier's queue,
// an executor's slot).
struct ExecutorRun {
	int64 run_id;
	int64 job_id;
	Oid owner;
	int32 attempt;
	TimestampTz started; // the instant its start was decided as (recorded at, or the due time ahead of it)
	TimestampTz not_before; // recorded ahead of its due time: it starts at it, not before
};

// A parallel tier's runs recorded and not yet taken by an executor: the
// coordinator records several starts in one commit and queues them; its
// executors take them in order (executor.cpp).
constexpr int kMaxQueuedRuns = 64;
// An executor that takes a run and leaves this many queued wakes the
// coordinator (besides when the queue is empty), when due jobs wait
// (wake_on_idle): the next batch of starts is recorded while the queued runs
// run (a batch of 36 takes a 2-core machine 2-4 ms, executors that ran dry
// would wait for it).
constexpr int kQueueLowWater = kMaxQueuedRuns / 4;

struct CoordinatorSlot {
	pid_t pid; // 0: free
	Oid dboid;
	int32 tier_id;
	bool leader;
	CoordState state;
	char dbname[kNameLen];
	char tier_name[kNameLen];
	int64 current_job_id;
	Oid current_job_owner;
	char current_job[kNameLen];
	char progress[128];
	TimestampTz started_at;
	TimestampTz heartbeat_at;
	// Beaten by a timer while a job runs (an aligned 64-bit store from a
	// signal handler, read without the lock): a process that is alive beats
	// even inside a long statement; a frozen one does not.
	volatile TimestampTz job_beat_at;
	TimestampTz job_started_at;
	bool job_has_timeout; // the running job has its own timeout: stall supervision waits for it
	int64 runs;           // runs finished since start
	Latch *latch;
	bool deposed;         // the launcher found it stalled and terminated it: it must run nothing more
	pid_t fenced_by;      // deposed: the coordinator that leads in its place (fenced by the lease epoch)
	pid_t foreign_lock_holder; // leading fenced because this process (no coordinator) holds the lock
	bool summaries_pending;    // an executor recorded a run whose job summary waits for the job's row
	// Parallel tiers: due jobs wait for room in the queue, for an executor or
	// for an earlier run of theirs: executors wake the coordinator when they
	// go idle with the queue empty, and when it runs low (kQueueLowWater).
	// Set from the start of each cycle (an executor going idle meanwhile
	// wakes it) to its end when nothing waits.
	bool wake_on_idle;
	int32 nqueued;             // parallel tiers: queue[0, nqueued), oldest first
	ExecutorRun queue[kMaxQueuedRuns];
};

// One executor (parallel tiers). pid 0: free; -1: reserved by a coordinator,
// the executor not yet started. The executor clears its own slot when it
// exits; a coordinator frees a reservation whose executor never started; a
// crash-restart resets them all. So a slot is never leaked nor freed twice.
//
// The hand-off of runs: the coordinator makes sure its tier has executors
// (idle ones, or new ones it reserves and starts: a reserved slot is
// "claimed" until its executor starts, so it is never given away), records
// a batch of starts in one commit, and queues them in its slot; idle
// executors take them in order, claiming each in the run's row (pid, only
// while the row is still 'running' with no process) before they start it.
// An executor that finished a run waits a little (idle) for the next one,
// instead of a new fork and connection per run.
constexpr int kMaxExecutors = 256;
struct ExecutorSlot {
	pid_t pid;
	pid_t coordinator;
	uint32 reservation; // which reservation of its coordinator made the slot (a slot is reused)
	Oid dboid;
	int32 tier_id;
	int64 run_id; // the run it is running; 0 while idle
	int64 job_id;
	Oid owner;    // the job's owner (tier_status hides other roles' runs)
	int32 attempt;
	TimestampTz started_at;
	bool idle;
	bool claimed;           // a coordinator is recording a run for it: it stays
	bool retire;            // asked to exit (another tier needs the slot)
	Latch *latch;           // the executor's
	Latch *coordinator_latch;
	char progress[128];     // what its job reports (foreman._report_progress)
};

struct Shared {
	LWLock *lock;
	pid_t launcher_pid;
	Latch *launcher_latch;
	pg_atomic_uint32 rescan_all; // set: re-list pg_database
	pg_atomic_uint32 catalog_generation; // bumped by ALTER EXTENSION pg_foreman UPDATE (anywhere)
	// When the first launcher of this shared memory started: the server had
	// just become writable (a start, a crash-restart, a promotion). Runs
	// recorded before it were recorded by an earlier life of the server (or
	// by another primary), whose asynchronous commits may be lost.
	TimestampTz writable_since;
	DatabaseEntry dbs[kMaxDatabases];
	ExecutorSlot executors[kMaxExecutors];
	int nslots;
	CoordinatorSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

// The shared state; valid in every process after shmem startup.
Shared *shared();

// Hooks installed by _PG_init.
void request_shared_memory();
void init_shared_memory();

// Wake the launcher (set its latch) if it runs.
void wake_launcher();

// Ask the launcher to re-scout one database (extension or tiers changed), or
// to re-list every database.
void request_rescan(Oid dboid);
void request_rescan_all();

// Set the latch of every coordinator of (dboid, tier_id); tier_id < 0: all of
// the database.
void wake_coordinators(Oid dboid, int32 tier_id);

// A counter ALTER EXTENSION pg_foreman UPDATE bumps at commit: processes that
// see it move read the catalog version again (statements.hpp).
uint32 catalog_generation();
void bump_catalog_generation();

// Copies of the slots of one database, taken under the lock, for readers in
// other processes (tier_status): at most max; returns how many.
int snapshot_coordinators(Oid dboid, CoordinatorSlot *out, int max);
int snapshot_executors(Oid dboid, ExecutorSlot *out, int max);
int snapshot_stalls(Oid dboid, TierStalls *out, int max);

// DROP DATABASE and friends: start nothing more in the database and stop its
// coordinators (bounded wait, 10 s); resume_database undoes it.
void pause_database(Oid dboid);
void resume_database(Oid dboid);

} // namespace foreman::bgw
