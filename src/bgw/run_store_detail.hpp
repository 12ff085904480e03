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

} // namespace foreman::bgw
