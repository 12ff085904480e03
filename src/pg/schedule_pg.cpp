// schedule_pg.cpp: the bridge from stored schedule fields to src/core.
#include "pg/schedule_pg.hpp"
#include "pg/guard.hpp"
#include "core/policy.hpp"
#include "core/schedule.hpp"

extern "C" {
#include "common/int.h"
#include "common/pg_prng.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
}

#include <cstring>

namespace foreman::pg {

namespace {

// core::TimeZone over PostgreSQL's own tz database.
class PgTimeZone final : public core::TimeZone {
public:
	explicit PgTimeZone(pg_tz *tz) : tz_(tz) {}
	std::int64_t utc_offset(std::int64_t utc_seconds) const override
	{
		pg_time_t t = utc_seconds;
		struct pg_tm *tm = pg_localtime(&t, tz_);
		return tm ? tm->tm_gmtoff : 0;
	}

private:
	pg_tz *tz_;
};

core::ScheduleKind
kind_from_name(const char *name)
{
	if (strcmp(name, "cron") == 0)
		return core::ScheduleKind::Cron;
	if (strcmp(name, "once") == 0)
		return core::ScheduleKind::Once;
	if (strcmp(name, "reboot") == 0)
		return core::ScheduleKind::Reboot;
	return core::ScheduleKind::Interval;
}

} // namespace

pg_tz *
lookup_time_zone(const char *name)
{
	if (!name)
		return session_timezone;
	pg_tz *tz = pg_tzset(name);
	if (!tz)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("time zone \"%s\" not recognized", name),
		                errhint("Use a name from pg_timezone_names, such as 'Europe/Berlin'.")));
	return tz;
}

ParsedSchedule
parse_schedule(const char *text, const char *time_zone)
{
	pg_tz *tz = lookup_time_zone(time_zone);
	ParsedSchedule result{"interval", 0, "slow", 0, 0};

	// Not an interval: cron or a keyword, read by the core.
	bool read = cpp_guard("schedule", [&]() {
		auto parsed = core::parse_schedule_text(text);
		if (!parsed)
			return false;
		result.kind = core::schedule_kind_name(parsed->kind);
		result.default_tier = core::default_tier(*parsed, PgTimeZone(tz));
		result.typical_period_us = core::typical_period(*parsed, PgTimeZone(tz));
		result.shortest_period_us = core::shortest_period(*parsed, PgTimeZone(tz));
		return true;
	});
	if (read)
		return result;

	// An interval literal, read by PostgreSQL itself. Only its own verdict
	// on the text (a data exception, class 22) becomes "invalid schedule"; a
	// cancel, or running out of memory, stays what it is.
	Interval *interval = nullptr;
	if (ErrorData *edata = capture_pg_error([&]() {
		    interval = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
		                                                     ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	    })) {
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			reraise_pg_error(edata);
		FreeErrorData(edata);
	}
	if (!interval)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid schedule \"%s\"", text),
		                errdetail("It is neither an interval nor a cron expression."),
		                errhint("Give an interval such as '10 seconds', a cron expression such as '*/5 * * * *', "
		                        "'@hourly', '@once' or '@reboot'.")));
	int64 period = interval_micros(interval, "schedule interval");
	cpp_guard("schedule", [&]() {
		core::Schedule schedule = core::interval_schedule(period);
		result.period_us = schedule.period;
		result.typical_period_us = schedule.period;
		result.shortest_period_us = schedule.period;
		result.default_tier = core::default_tier(schedule, core::UtcZone());
	});
	return result;
}

namespace {

// The core's view of a stored schedule. Throws for a cron text that no longer
// parses (it did when it was stored).
core::Schedule
core_schedule(const JobSchedule &js)
{
	core::Schedule schedule;
	schedule.kind = kind_from_name(js.schedule_kind);
	schedule.period = js.period_us;
	if (schedule.kind == core::ScheduleKind::Cron) {
		auto parsed = core::parse_schedule_text(js.schedule);
		if (parsed)
			schedule = *parsed;
	}
	return schedule;
}

core::Anchor
core_anchor(const JobSchedule &js)
{
	core::Anchor anchor;
	anchor.anchor = to_unix_micros(js.anchor_at);
	anchor.phase = js.phase_us;
	if (js.has_end_at)
		anchor.end_at = to_unix_micros(js.end_at);
	return anchor;
}

} // namespace

bool
next_fire_time(const JobSchedule &js, TimestampTz after, TimestampTz *next)
{
	TimestampTz result = 0;
	int found = next_fire_times(js, after, 1, &result);
	if (found == 1)
		*next = result;
	return found == 1;
}

int
next_fire_times(const JobSchedule &js, TimestampTz after, int n, TimestampTz *out)
{
	pg_tz *tz = lookup_time_zone(js.time_zone);
	return cpp_guard("next fire times", [&]() {
		core::Schedule schedule = core_schedule(js);
		core::Anchor anchor = core_anchor(js);
		PgTimeZone zone(tz);
		int found = 0;
		core::Micros from = to_unix_micros(after);
		while (found < n) {
			auto t = core::next_fire(schedule, anchor, from, zone);
			if (!t)
				break;
			out[found++] = from_unix_micros(*t);
			from = *t;
		}
		return found;
	});
}

DueDecisionPg
decide_due(const JobSchedule &js, TimestampTz due, TimestampTz now, const DuePolicyPg &p)
{
	pg_tz *tz = lookup_time_zone(js.time_zone);
	DueDecisionPg out{};
	cpp_guard("due decision", [&]() {
		core::DuePolicy policy;
		if (p.has_misfire_grace)
			policy.misfire_grace = p.misfire_grace_us;
		policy.coalesce = p.coalesce;
		policy.max_catchup = p.max_catchup;
		policy.overlap = core::parse_overlap(p.overlap);
		if (p.has_last_run) {
			policy.last_started = to_unix_micros(p.last_started);
			policy.last_finished = to_unix_micros(p.last_finished);
		}
		PgTimeZone zone(tz);
		core::DueDecision d = core::decide_due(core_schedule(js), core_anchor(js), zone, to_unix_micros(due),
		                                       to_unix_micros(now), policy);
		out.run = d.action == core::DueAction::Run;
		out.reason = d.reason;
		out.fire_time = from_unix_micros(d.fire_time);
		out.folded = d.folded;
		out.folded_from = from_unix_micros(d.folded_from);
		out.folded_to = from_unix_micros(d.folded_to);
		out.has_next = d.next.has_value();
		out.next = d.next ? from_unix_micros(*d.next) : 0;
	});
	return out;
}

int64
retry_delay_us(int64 base_us, int attempt, int64 cap_us)
{
	double r = pg_prng_double(&pg_global_prng_state);
	return cpp_guard("retry delay", [&]() { return core::retry_delay(base_us, attempt, cap_us, r); });
}

int64
interval_micros(const Interval *interval, const char *what)
{
	if (interval->month != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("%s must not be given in months or years", what),
		                errhint("Months vary in length; use days, or a cron expression such as '@monthly'.")));
	// Every duration of a schedule is bounded (a period, a timeout, a
	// back-off...), so that no fire time computed from one can overflow.
	constexpr int64 kMaxDurationUs = INT64CONST(36525) * USECS_PER_DAY;
	int64 result;
	if (pg_mul_s64_overflow((int64)interval->day, USECS_PER_DAY, &result) ||
	    pg_add_s64_overflow(result, interval->time, &result) || result > kMaxDurationUs || result < -kMaxDurationUs)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("%s is out of range", what),
		                errdetail("Durations are limited to 100 years (36525 days).")));
	return result;
}

} // namespace foreman::pg
