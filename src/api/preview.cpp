// preview.cpp: foreman.preview, a schedule's fire times before any job has it.
//
// The schedule is read exactly as foreman.schedule() reads it (same errors,
// the same refusal of a cron expression that never fires), and its fire times
// are those a job anchored at start_at would have from start_at on, without
// jitter: what foreman.next_runs() would show for that job. Nothing is read
// from or written to the foreman tables.
#include "api/access.hpp"
#include "pg/guard.hpp"
#include "pg/schedule_pg.hpp"

extern "C" {
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <cstring>

namespace foreman::api {

namespace {

// The most fire times one call returns (as foreman.next_runs).
constexpr int32 kMaxPreview = 1000;

// preview_arg_not_null: raises 22004 naming the argument when it is NULL.
void
preview_arg_not_null(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
}

} // namespace

} // namespace foreman::api

using namespace foreman::api;

// foreman_preview: foreman.preview(schedule, n, time_zone, start_at).
FOREMAN_FUNCTION(foreman_preview)
{
	require_foreman_user(GetUserId());
	char *schedule = required_text_arg(fcinfo, 0, "schedule", kMaxScheduleBytes);
	preview_arg_not_null(fcinfo, 1, "n");
	int32 n = PG_GETARG_INT32(1);
	if (n < 0 || n > kMaxPreview)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("n must be between 0 and %d", kMaxPreview)));
	char *time_zone = optional_text_arg(fcinfo, 2, "time_zone", NAMEDATALEN * 4);
	preview_arg_not_null(fcinfo, 3, "start_at");
	TimestampTz start_at = PG_GETARG_TIMESTAMPTZ(3);
	check_schedule_timestamp(start_at, "start_at");

	foreman::pg::ParsedSchedule parsed = foreman::pg::parse_schedule(schedule, time_zone);
	if (strcmp(parsed.kind, "reboot") == 0)
		ereport(NOTICE, (errmsg("schedule \"%s\" has no fire times", schedule),
		                 errdetail("It runs when its tier's coordinator starts.")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	// As write_job() anchors a new job: at start_at, no phase, no end.
	foreman::pg::JobSchedule js{schedule, parsed.kind, parsed.period_us, time_zone, start_at, 0, false, 0};
	TimestampTz *times = static_cast<TimestampTz *>(palloc(sizeof(TimestampTz) * (n + 1)));
	int found = foreman::pg::next_fire_times(js, start_at - 1, n, times);
	for (int i = 0; i < found; i++) {
		Datum value = TimestampTzGetDatum(times[i]);
		bool null = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &null);
	}
	return (Datum)0;
}
