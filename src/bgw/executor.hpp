// executor.hpp: executor workers of parallel tiers (concurrency > 1).
//
// A parallel tier's coordinator records a run as 'running', reserves an
// executor slot in shared memory (bounded by the tier's concurrency and by
// foreman.max_executors across the cluster), and starts an executor: a
// dynamic bgworker that runs that one job as its owner, records its outcome
// and exits. The coordinator never waits on an executor: it sleeps on its
// latch, which the postmaster sets when an executor it started exits.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace foreman::bgw {

// The cluster-wide cap in force (foreman.max_executors, or the automatic one).
int executor_cap();

// Reserves a slot for a run of (tier, job); -1 when the tier already has
// `concurrency` executors or the cluster-wide cap is reached (*cap_reached).
int executor_reserve(int32 tier_id, int concurrency, int64 run_id, int64 job_id, Oid owner, bool *cap_reached);

// Frees a reservation whose executor never started (only if it is still this
// coordinator's reservation for run_id).
void executor_release_reservation(int slot, int64 run_id);

// Executors of this database's tier now (started or starting), and instances
// of one job among them.
int executor_count(int32 tier_id);
int executor_instances(int64 job_id);

// Run ids of this database's live executors of a tier, for crash accounting
// (a new leader must not mark them crashed); returns how many, at most max.
int executor_run_ids(int32 tier_id, int64 *out, int max);

// Hands a run to an idle executor of this coordinator's tier; returns its
// slot, or -1 when none is idle.
int executor_assign_idle(int32 tier_id, int64 run_id, int64 job_id, Oid owner, int32 attempt, TimestampTz started);
bool executor_has_idle(int32 tier_id);

// Asks one idle executor (of any tier) to leave, to make room under the cap.
void executor_retire_one_idle();

// Starts the executor for a reserved slot; nullptr when no worker slot is free.
BackgroundWorkerHandle *executor_start(int slot, int64 run_id, int64 job_id, int32 attempt, TimestampTz started,
                                       const char *dbname, const char *tier_name);

} // namespace foreman::bgw

extern "C" {
PGDLLEXPORT void foreman_executor_main(Datum arg);
}
