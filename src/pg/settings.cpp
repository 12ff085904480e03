// settings.cpp: pg_foreman's GUCs (foreman.*).
#include "pg/settings.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/varlena.h"
#include "nodes/pg_list.h"
}

#include <climits>

namespace foreman {

bool guc_enabled = true;
char *guc_databases = nullptr;
int guc_stall_timeout_ms = 60000;
int guc_log_runs = static_cast<int>(LogRuns::Failures);
int guc_max_jobs_per_role = 1000;
int guc_min_user_interval_ms = 1000;
int guc_max_executors = -1;
int guc_executor_idle_ms = 2000;
int guc_run_retention_s = 7 * 24 * 3600;
int guc_max_runs_per_job = 1000;
int guc_cancel_grace_ms = 2000;
bool guc_direct_writes = true;
int guc_event_payload = static_cast<int>(EventPayload::Ids);

namespace {

const struct config_enum_entry log_runs_options[] = {
	{"none", static_cast<int>(LogRuns::None), false},
	{"failures", static_cast<int>(LogRuns::Failures), false},
	{"all", static_cast<int>(LogRuns::All), false},
	{nullptr, 0, false},
};

const struct config_enum_entry event_payload_options[] = {
	{"ids", static_cast<int>(EventPayload::Ids), false},
	{"full", static_cast<int>(EventPayload::Full), false},
	{nullptr, 0, false},
};

bool
check_databases(char **newval, void **, GucSource)
{
	char *copy = pstrdup(*newval);
	List *names = NIL;
	bool ok = SplitIdentifierString(copy, ',', &names);
	if (!ok)
		GUC_check_errdetail("foreman.databases must be '*' or a comma-separated list of database names.");
	list_free(names);
	pfree(copy);
	return ok;
}

} // namespace

void
define_settings()
{
	DefineCustomBoolVariable("foreman.enabled", "Runs pg_foreman's coordinators.",
	                         "Off stops every coordinator at the next reload; on starts them again.",
	                         &guc_enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("foreman.direct_writes",
	                         "Writes the start of a run outside a pipeline, the end of a plain success and an executor's claim of "
	                         "a run without a planned statement.",
	                         "The same rows, locks and checks as the statements, without planning them; off runs the "
	                         "statements (for comparison, or to rule this path out).",
	                         &guc_direct_writes, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("foreman.databases", "Databases pg_foreman runs coordinators in.",
	                           "'*' (the default) means every database where the extension is installed.",
	                           &guc_databases, "*", PGC_SIGHUP, GUC_LIST_INPUT, check_databases, nullptr,
	                           nullptr);
	DefineCustomIntVariable("foreman.stall_timeout",
	                        "A coordinator whose heartbeat is older than this is replaced.",
	                        "Not applied while the coordinator runs a job that has its own timeout.",
	                        &guc_stall_timeout_ms, 60000, 1000, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
	                        nullptr, nullptr);
	DefineCustomEnumVariable("foreman.log_runs", "Which finished runs are written to the server log.", nullptr,
	                         &guc_log_runs, static_cast<int>(LogRuns::Failures), log_runs_options, PGC_SUSET, 0,
	                         nullptr, nullptr, nullptr);
	// Read by foreman.trim_run_history (the built-in job in tier slow).
	DefineCustomIntVariable("foreman.run_retention", "How long run history is kept.",
	                        "Older runs are deleted in bounded batches by the job foreman.trim_run_history; 0 keeps them.",
	                        &guc_run_retention_s, 7 * 24 * 3600, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("foreman.max_runs_per_job", "How many runs of each job the history keeps.",
	                        "Older runs are deleted in bounded batches by the job foreman.trim_run_history; 0: no cap.",
	                        &guc_max_runs_per_job, 1000, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("foreman.max_jobs_per_role", "How many jobs a role that is not foreman_admin may own.",
	                        "Bounds what one application can put on a tier.", &guc_max_jobs_per_role, 1000, 1,
	                        INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("foreman.min_user_interval",
	                        "The shortest period a role that is not foreman_admin may schedule.",
	                        "Applies to intervals and to cron expressions with a seconds field.",
	                        &guc_min_user_interval_ms, 1000, 100, INT_MAX, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("foreman.max_executors", "How many executor workers may run at once, across every tier and database.",
	                        "-1: max_worker_processes minus max_parallel_workers, the launcher, the running "
	                        "coordinators and two scouts.",
	                        &guc_max_executors, -1, -1, 4096, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("foreman.executor_idle_timeout",
	                        "How long an executor that finished a run waits for the next one.",
	                        "0: every run gets a new executor (a fork and a connection each).",
	                        &guc_executor_idle_ms, 2000, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("foreman.cancel_grace",
	                        "How long a job may go on after it was cancelled (its timeout, or a stop) before its "
	                        "process is terminated.",
	                        "A job that catches the cancel (EXCEPTION WHEN query_canceled) is ended this way; its run "
	                        "is recorded timed_out or cancelled, and the tier goes on with a new process.",
	                        &guc_cancel_grace_ms, 2000, 100, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomEnumVariable("foreman.event_payload", "What the events on LISTEN foreman_events carry.",
	                         "'ids': run and job ids, status, SQLSTATE, tier, database - a listener reads the rest "
	                         "from foreman.runs, which shows only what its role may see. 'full': also the job's "
	                         "name and error message; every session of the database can LISTEN, so use it only "
	                         "where the roles trust each other.",
	                         &guc_event_payload, static_cast<int>(EventPayload::Ids), event_payload_options,
	                         PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	MarkGUCPrefixReserved("foreman");
}

bool
database_selected(const char *dbname)
{
	if (!guc_databases || strcmp(guc_databases, "*") == 0)
		return true;
	char *copy = pstrdup(guc_databases);
	List *names = NIL;
	bool found = false;
	if (SplitIdentifierString(copy, ',', &names)) {
		ListCell *lc;
		foreach (lc, names) {
			const char *name = static_cast<const char *>(lfirst(lc));
			if (strcmp(name, "*") == 0 || strcmp(name, dbname) == 0)
				found = true;
		}
	}
	list_free(names);
	pfree(copy);
	return found;
}

} // namespace foreman
