// executor.hpp: executor workers of parallel tiers (concurrency > 1).
//
// A parallel tier's coordinator makes sure the tier has executors (idle ones,
// or new ones in slots it reserves, bounded by the tier's concurrency and by
// foreman.max_executors across the cluster), records a batch of runs as
// 'running' (no process yet) in one commit, and queues them (shmem.hpp). An
// executor takes the next one, claims it in its row, runs the job as its
// owner, records the outcome, and waits a little for the next run. The
// coordinator never waits on an executor: it sleeps on its latch, which an
// executor's exit or idleness sets.
#pragma once

#include "bgw/shmem.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "datatype/timestamp.h"
}

namespace foreman::bgw {

// The cluster-wide cap in force (foreman.max_executors, or the automatic one).
int executor_cap();


// A reservation of a slot for a new executor: the slot, and which
// reservation it is (slots are reused; only this very one may be freed).
struct Reservation {
	int slot; // -1: none
	uint32 id;
};

// A slot for a new executor of the tier, reserved and claimed; slot -1 when
// the tier already has `concurrency` executors or the cluster-wide cap is
// reached (*cap_reached).
Reservation executor_reserve(int32 tier_id, int concurrency, bool *cap_reached);

// Starts the executor of a reservation; nullptr when no worker slot is free
// (the caller then frees the reservation).
BackgroundWorkerHandle *executor_start(const Reservation &r, const char *dbname, const char *tier_name);

// This coordinator's queue of recorded runs (parallel tiers): runs are
// appended (false when it is full) and its idle executors woken; drained
// (into out, at most max) when the coordinator stops or has no executor
// left to run them. The ids of queued runs and of runs executors hold but
// have not recorded yet: those are no orphans.
bool executor_queue_push(const ExecutorRun &run);
int executor_queue_length();
// This coordinator's due jobs wait (or may, while it decides): its executors
// wake it when they go idle with the queue empty or it runs low.
void executor_wake_on_idle(bool wake);
int executor_queue_drain(ExecutorRun *out, int max);
int executor_known_runs(int32 tier_id, int64 *out, int max);
void executor_wake_idle(int32 tier_id);

// Executors of this coordinator's tier: busy (running a run), and all of
// them (idle and starting ones too).
int executor_busy_count(int32 tier_id);
int executor_total_count(int32 tier_id);

// Frees a reservation whose executor never started (if the slot still holds
// that very reservation).
void executor_release_reservation(const Reservation &r);

// Executors of this database's tier now (running, starting or claimed), and
// running instances of one job among them.
int executor_count(int32 tier_id);
int executor_instances(int64 job_id);

// Whether `slot` is still held by the executor of that reservation.
bool executor_slot_is(int slot, uint32 reservation);

// Asks one idle, unclaimed executor (of any tier) to leave, to make room.
void executor_retire_one_idle();

// In an executor running a job: shows text as its progress (foreman.executors).
// False in any other process.
bool executor_report_progress(const char *text);

} // namespace foreman::bgw

extern "C" {
PGDLLEXPORT void foreman_executor_main(Datum arg);
}
