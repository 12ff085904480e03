// run_store_detail.hpp: what run_store.cpp (starts, loads, leadership) and
// run_end.cpp (how runs end) share; not for other files.
#pragma once

#include "bgw/run_store.hpp"

namespace foreman::bgw {

// A pipeline moved in the open transaction: internal_xact_commit wakes the
// database's coordinators once it commits (a downstream may be due in any
// tier).
extern bool chain_advanced;

// SET LOCAL name = value, in the open transaction.
void set_local(const char *name, const char *value);

// Text settings of foreman.job, as enums.
core::Overlap overlap_of(const char *text);
LogRuns log_runs_of(const char *text);
Notify notify_of(const char *text);

// The end of a plain success on a 1.1 catalog, written without a planned
// statement (run_write.cpp). False when it declines (a catalog it does not
// recognise): then nothing was written. Otherwise *done as finish_plain's.
bool finish_plain_direct(int64 run_id, int64 job_id, const RunOutcome &o, bool *done);

// The start of a run outside a pipeline on a 1.1 catalog, as
// begin_plain_stmt writes it - or, with fire times folded into it
// (start.folded_reason), begin_run_stmt: their 'skipped' row first
// (run_write.cpp). *run_id the new run's, 0 when the job changed or was
// disabled since it was loaded. False when it declines; then nothing was
// written.
bool begin_plain_direct(int64 job_id, int64 revision, const RunStart &start, const char *owner_name, int64 *run_id);

// An executor's claim of a run on a 1.1 catalog, as claim_run_stmt makes
// it (run_write.cpp). False when it declines (a catalog it does not
// recognise): then nothing was written or read.
bool claim_run_direct(int64 run_id, MemoryContext into, Claim *claim);

// The timeout a run gets: the job's own (or its tier's default), cut to the
// tier's max_user_runtime for owners that are not foreman_admin.
void apply_tier_cap(DueJob *job, int64 tier_cap_ms);

} // namespace foreman::bgw
