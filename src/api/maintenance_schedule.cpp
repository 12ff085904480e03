// maintenance_schedule.cpp: the scheduled forms of bounded maintenance,
// foreman.schedule_expiry and foreman.schedule_purge, and the two hooks
// through which foreman.run_maintenance reports to its coordinator.
//
// The scheduled forms validate exactly as a batch does (and plan the filter
// as the caller), advise an index when none serves the batches, then create
// an ordinary job (through foreman.schedule, as the caller) whose command is
// CALL foreman.run_maintenance(job_id), and store the arguments in
// foreman.maintenance.
#include "api/access.hpp"
#include "api/maintenance.hpp"
#include "bgw/coordinator.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace foreman::api {

namespace {

// What the scheduled forms add to a batch's arguments.
struct RunLimits {
	const char *job_name;
	const char *schedule;
	int32 max_batches;
	bool has_max_runtime;
	Interval max_runtime;
	Interval batch_pause;
	const char *tier; // NULL: 'slow'
	bool has_timeout;
	Interval timeout;
	bool enabled;
	const char *log_runs;
};

void
check_limits(const RunLimits &limits)
{
	pg::cpp_guard("maintenance", [&]() { core::check_max_batches(limits.max_batches); });
	if (limits.has_max_runtime && !interval_positive(&limits.max_runtime))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_runtime must be positive"),
		                errhint("Leave it NULL to use the job's timeout.")));
	if (interval_negative(&limits.batch_pause))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("batch_pause must not be negative")));
}

// Creates (or replaces) the job through foreman.schedule, as the caller, so
// ownership, tiers and schedules follow the one path every job takes; then
// makes it a maintenance job, with the extension's rights.
int64
create_job(const Spec &spec, const RunLimits &limits)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	Oid types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, BOOLOID, TEXTOID};
	Datum values[7] = {CStringGetTextDatum(limits.job_name),
	                   CStringGetTextDatum(limits.schedule),
	                   CStringGetTextDatum("CALL foreman.run_maintenance(0)"),
	                   CStringGetTextDatum(limits.tier ? limits.tier : "slow"),
	                   IntervalPGetDatum(const_cast<Interval *>(&limits.timeout)),
	                   BoolGetDatum(limits.enabled),
	                   CStringGetTextDatum(limits.log_runs)};
	char nulls[8] = "       ";
	if (!limits.has_timeout)
		nulls[4] = 'n';
	int rc = SPI_execute_with_args("SELECT foreman.schedule(job_name => $1, schedule => $2, command => $3,"
	                               " tier => $4, timeout => $5, enabled => $6, log_runs => $7)",
	                               7, types, values, nulls, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_foreman: foreman.schedule failed: %s", SPI_result_code_string(rc));
	bool isnull;
	int64 job_id = DatumGetInt64(spi_get(0, 1, &isnull));
	SPI_finish();

	Oid owner = GetUserId();
	Elevation e;
	elevation_begin(&e);
	Oid jtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum jvalues[3] = {Int64GetDatum(job_id), CStringGetTextDatum(spec.kind == Kind::Expiry ? "expiry" : "purge"),
	                    CStringGetTextDatum(psprintf("CALL foreman.run_maintenance(%lld)", (long long)job_id))};
	spi_exec("UPDATE foreman.job SET kind = $2, command = $3 WHERE job_id = $1", 3, jtypes, jvalues, nullptr, false);

	constexpr int kArgs = 14;
	Datum terminal = (Datum)0;
	if (spec.kind == Kind::Expiry) {
		Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (spec.nterminal + 1)));
		for (int i = 0; i < spec.nterminal; i++)
			elems[i] = CStringGetTextDatum(spec.terminal[i]);
		terminal = PointerGetDatum(construct_array(elems, spec.nterminal, TEXTOID, -1, false, TYPALIGN_INT));
	}
	Oid mtypes[kArgs] = {INT8OID, OIDOID,  TEXTOID, OIDOID,  INTERVALOID, NAMEOID,     NAMEOID,
	                     TEXTARRAYOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INTERVALOID, INTERVALOID};
	Datum mvalues[kArgs] = {Int64GetDatum(job_id),
	                        ObjectIdGetDatum(owner),
	                        CStringGetTextDatum(spec.kind == Kind::Expiry ? "expiry" : "purge"),
	                        ObjectIdGetDatum(spec.relid),
	                        IntervalPGetDatum(const_cast<Interval *>(&spec.older_than)),
	                        spec.status_column ? DirectFunctionCall1(namein, CStringGetDatum(spec.status_column))
	                                           : (Datum)0,
	                        DirectFunctionCall1(namein, CStringGetDatum(spec.timestamp_column)),
	                        terminal,
	                        spec.set_status ? CStringGetTextDatum(spec.set_status) : (Datum)0,
	                        Int32GetDatum(spec.batch_size),
	                        spec.filter ? CStringGetTextDatum(spec.filter) : (Datum)0,
	                        Int32GetDatum(limits.max_batches),
	                        IntervalPGetDatum(const_cast<Interval *>(&limits.max_runtime)),
	                        IntervalPGetDatum(const_cast<Interval *>(&limits.batch_pause))};
	char mnulls[kArgs + 1];
	memset(mnulls, ' ', kArgs);
	mnulls[kArgs] = '\0';
	if (spec.kind == Kind::Purge)
		mnulls[5] = mnulls[7] = mnulls[8] = 'n';
	if (!spec.filter)
		mnulls[10] = 'n';
	if (!limits.has_max_runtime)
		mnulls[12] = 'n';
	spi_exec("INSERT INTO foreman.maintenance (job_id, owner, owner_name, kind, target, older_than, status_column,"
	         " timestamp_column, terminal_statuses, set_status, batch_size, filter, max_batches, max_runtime,"
	         " batch_pause)"
	         " VALUES ($1, $2, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $2), $3, $4::regclass, $5, $6,"
	         "         $7, $8, $9, $10, $11, $12, $13, $14)"
	         " ON CONFLICT (job_id) DO UPDATE SET owner = EXCLUDED.owner, owner_name = EXCLUDED.owner_name,"
	         " kind = EXCLUDED.kind,"
	         " target = EXCLUDED.target, older_than = EXCLUDED.older_than, status_column = EXCLUDED.status_column,"
	         " timestamp_column = EXCLUDED.timestamp_column, terminal_statuses = EXCLUDED.terminal_statuses,"
	         " set_status = EXCLUDED.set_status, batch_size = EXCLUDED.batch_size, filter = EXCLUDED.filter,"
	         " max_batches = EXCLUDED.max_batches, max_runtime = EXCLUDED.max_runtime,"
	         " batch_pause = EXCLUDED.batch_pause",
	         kArgs, mtypes, mvalues, mnulls, false);
	elevation_end(&e);
	return job_id;
}

void
limits_args(FunctionCallInfo fcinfo, int job_name, int schedule, int max_batches, RunLimits *limits)
{
	limits->job_name = required_text_arg(fcinfo, job_name, "job_name");
	limits->schedule = required_text_arg(fcinfo, schedule, "schedule", kMaxScheduleBytes);
	limits->max_batches = required_int(fcinfo, max_batches, "max_batches");
	limits->has_max_runtime = !PG_ARGISNULL(max_batches + 1);
	if (limits->has_max_runtime)
		limits->max_runtime = *PG_GETARG_INTERVAL_P(max_batches + 1);
	limits->batch_pause = PG_ARGISNULL(max_batches + 2) ? Interval{} : *PG_GETARG_INTERVAL_P(max_batches + 2);
	limits->tier = optional_text_arg(fcinfo, max_batches + 3, "tier", NAMEDATALEN);
	limits->has_timeout = !PG_ARGISNULL(max_batches + 4);
	if (limits->has_timeout)
		limits->timeout = *PG_GETARG_INTERVAL_P(max_batches + 4);
	limits->enabled = PG_ARGISNULL(max_batches + 5) || PG_GETARG_BOOL(max_batches + 5);
	limits->log_runs = required_text_arg(fcinfo, max_batches + 6, "log_runs", NAMEDATALEN);
}

int64
schedule_maintenance(const Spec &spec, const RunLimits &limits)
{
	check_limits(limits);
	Target target{};
	resolve_target(spec, TargetUse::Batch, &target);
	check_filter_of(spec, target, true);
	advise_index(spec, target);
	return create_job(spec, limits);
}

} // namespace
} // namespace foreman::api

using namespace foreman::api;

// schedule_expiry(job_name, target, older_than, schedule, status_column,
//   timestamp_column, terminal_statuses, set_status, batch_size, filter,
//   max_batches, max_runtime, batch_pause, tier, timeout, enabled, log_runs)
FOREMAN_FUNCTION(foreman_schedule_expiry)
{
	Spec spec{};
	expiry_args(fcinfo, 1, 4, &spec);
	RunLimits limits{};
	limits_args(fcinfo, 0, 3, 10, &limits);
	PG_RETURN_INT64(schedule_maintenance(spec, limits));
}

// schedule_purge(job_name, target, timestamp_column, older_than, schedule,
//   batch_size, filter, max_batches, max_runtime, batch_pause, tier, timeout,
//   enabled, log_runs)
FOREMAN_FUNCTION(foreman_schedule_purge)
{
	Spec spec{};
	purge_args(fcinfo, 1, 5, &spec);
	RunLimits limits{};
	limits_args(fcinfo, 0, 4, 7, &limits);
	PG_RETURN_INT64(schedule_maintenance(spec, limits));
}

// foreman._report_progress(text): shown in foreman.tier_status.progress, the
// process title and pg_stat_activity while a coordinator runs the job; a
// no-op anywhere else.
FOREMAN_FUNCTION(foreman_report_progress)
{
	if (!PG_ARGISNULL(0))
		foreman::bgw::report_progress(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

// foreman._report_run_totals(rows, batches): recorded on the running job's
// run row instead of its statements' row counts; a no-op outside a job.
FOREMAN_FUNCTION(foreman_report_run_totals)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("rows and batches must not be null")));
	foreman::bgw::report_run_totals(PG_GETARG_INT64(0), PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}
