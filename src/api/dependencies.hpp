// dependencies.hpp: job dependencies as the SQL API sees them - naming a
// job's upstreams, refusing cycles, and what becomes of the jobs that run
// after one that is removed or disabled. How a pipeline runs is the
// coordinator's (foreman._chain_advance, src/bgw).
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "utils/array.h"
}

namespace foreman::api {

// The job ids of `names` (a text[] of job names), each a job `owner` may see
// (42704 otherwise, as for a name that does not exist), none of them
// `job_name` itself (22023), each once. At most kMaxArrayElements.
int64 *resolve_upstreams(ArrayType *names, Oid owner, const char *job_name, int *n);

// Makes upstreams[0..n) the job's upstreams (replacing what it had), and
// refuses (22023, naming it) a cycle the new edges close.
void write_dependencies(int64 job_id, const int64 *upstreams, int n);

// How many upstreams the job has.
int64 count_upstreams(int64 job_id);

// What removing or disabling a job does to the jobs that run after it:
// refused (2BP01, naming the ones the caller may see) unless cascade; with
// cascade, they are removed or disabled too, transitively - each must be a
// job the caller may manage.
enum class DependentAction { Remove, Disable };
void handle_dependents(int64 job_id, const char *job_name, Oid caller, bool cascade, DependentAction action);

// For next_runs: a NOTICE naming the job's upstreams, if it has any.
void notice_upstreams(int64 job_id, const char *job_name);

} // namespace foreman::api
