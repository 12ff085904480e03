// coordinator.hpp: the tier coordinator (dynamic bgworker, one per database
// and enabled tier; more than one may run, only the lock holder leads).
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

// pg_foreman's locks are advisory locks of class 'FRMN' (1179798862) whose
// objsubid no SQL function produces: pg_advisory_lock() uses 1 for a bigint
// key and 2 for a pair of integers. So no session can take one, wait for one
// or hold one to stop a tier; they show in pg_locks all the same.
//   leadership: (1179798862, tier_id, objsubid 3), held by a tier's leader for
//               as long as it leads, never released between jobs;
//   owner:      (1179798862, owner oid, objsubid 4), transaction-level, taken
//               by schedule() so per-role limits hold under concurrency.
constexpr uint32 kLeadershipLockClass = 0x46524D4E;
static_assert(kLeadershipLockClass == 1179798862u);
constexpr uint16 kLeadershipLockSubid = 3;
constexpr uint16 kOwnerLockSubid = 4;

// Progress of the running job, shown in foreman.tier_status.progress (or
// foreman.executors for a parallel tier), the process title and
// pg_stat_activity.query. A no-op outside a job.
void report_progress(const char *text);

// Totals a job reports about itself (e.g. batched maintenance: rows changed
// and batches run); recorded on its run row instead of the statements' own
// row counts. A no-op outside a coordinator.
void report_run_totals(int64 rows, int32 batches);


} // namespace foreman::bgw
