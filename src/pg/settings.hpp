// settings.hpp: pg_foreman's GUCs (foreman.*), defined in settings.cpp.
#pragma once

namespace foreman {

enum class LogRuns { None = 0, Failures = 1, All = 2 };
enum class EventPayload { Ids = 0, Full = 1 };

extern bool guc_enabled;          // foreman.enabled
extern char *guc_databases;       // foreman.databases: '*' or a comma-separated list
extern int guc_stall_timeout_ms;  // foreman.stall_timeout
extern int guc_log_runs;          // foreman.log_runs (LogRuns): which runs go to the server log
extern int guc_run_retention_s;   // foreman.run_retention: run history kept (0: forever)
extern int guc_max_runs_per_job;  // foreman.max_runs_per_job: runs kept per job (0: no cap)
extern int guc_max_jobs_per_role; // foreman.max_jobs_per_role: jobs a non-admin role may own
extern int guc_min_user_interval_ms; // foreman.min_user_interval: shortest period for non-admin roles
extern int guc_executor_idle_ms;  // foreman.executor_idle_timeout: an idle executor waits this long for work (0: none)
extern int guc_max_executors;     // foreman.max_executors: executors across the cluster (-1: automatic)
extern int guc_event_payload;     // foreman.event_payload (EventPayload): what NOTIFY foreman_events carries
extern bool guc_direct_writes;    // foreman.direct_writes: starts (outside pipelines), plain ends and claims written without a planned statement
extern int guc_cancel_grace_ms;   // foreman.cancel_grace: a job that outlives its cancel this long is terminated

void define_settings();

// True when foreman.databases selects the database of that name.
bool database_selected(const char *dbname);

} // namespace foreman
