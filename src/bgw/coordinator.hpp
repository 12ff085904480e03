// coordinator.hpp: the tier coordinator (dynamic bgworker, one per database
// and enabled tier; more than one may run, only the lock holder leads).
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

// Class id of the leadership lock: 'FRMN'. A tier's leader holds
// pg_advisory_lock(1179798862, tier_id) for its whole life.
constexpr uint32 kLeadershipLockClass = 0x46524D4E;
static_assert(kLeadershipLockClass == 1179798862u);

// Progress of the running job, shown in foreman.tier_status.progress, the
// process title and pg_stat_activity.query. A no-op outside a coordinator.
void report_progress(const char *text);

// Totals a job reports about itself (e.g. batched maintenance: rows changed
// and batches run); recorded on its run row instead of the statements' own
// row counts. A no-op outside a coordinator.
void report_run_totals(int64 rows, int32 batches);

// True in a coordinator process while it runs a job.
bool in_coordinator_job();

} // namespace foreman::bgw
