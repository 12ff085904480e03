// tiers.cpp: foreman.create_tier, alter_tier, drop_tier.
//
// Tier changes are administrative: they need a superuser (or, once the
// security issue lands, foreman_admin). The trigger on foreman.tier wakes the
// launcher at commit, which starts or stops coordinators within a second.
#include "api/access.hpp"
#include "api/hooks.hpp"
#include "pg/guard.hpp"
#include "pg/roles.hpp"
#include "pg/schedule_pg.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace foreman::api {
namespace {

void
require_tier_admin(const char *action)
{
	if (!pg::is_foreman_admin(GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied to %s", action),
		                errhint("Tiers are changed by members of foreman_admin and superusers.")));
}

void
validate_tier_name(const char *name)
{
	bool ok = strlen(name) >= 1 && strlen(name) <= 48 && name[0] >= 'a' && name[0] <= 'z';
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_NAME), errmsg("invalid tier name \"%s\"", name),
		                errhint("A tier name is 1 to 48 lower-case letters, digits and underscores, starting with a letter.")));
}

void
validate_tick(const Interval *tick)
{
	int64 us = pg::interval_micros(tick, "tick");
	if (us < 100 * 1000 || us > USECS_PER_DAY)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("tick must be between 100 milliseconds and 1 day")));
}

// A zero interval clears a tier's default_timeout or max_user_runtime
// (NULL: none). Returns true for a positive one.
bool
validate_tier_duration(const Interval *value, const char *what)
{
	int64 us = pg::interval_micros(value, what);
	if (us < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must not be negative", what)));
	return us > 0;
}

void
validate_concurrency(int32 concurrency)
{
	if (concurrency < 1 || concurrency > 1024)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("concurrency must be between 1 and 1024")));
}

} // namespace
} // namespace foreman::api

using namespace foreman::api;

FOREMAN_FUNCTION(foreman_create_tier)
{
	require_tier_admin("create a tier");
	char *name = required_text_arg(fcinfo, 0, "name");
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tick must not be null")));
	Interval *tick = PG_GETARG_INTERVAL_P(1);
	int32 concurrency = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT32(2);
	validate_tier_name(name);
	validate_tick(tick);
	validate_concurrency(concurrency);
	bool has_timeout = !PG_ARGISNULL(3) && validate_tier_duration(PG_GETARG_INTERVAL_P(3), "default_timeout");
	bool has_cap = PG_NARGS() > 4 && !PG_ARGISNULL(4) &&
	               validate_tier_duration(PG_GETARG_INTERVAL_P(4), "max_user_runtime");

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	Oid types[5] = {TEXTOID, INTERVALOID, INT4OID, INTERVALOID, INTERVALOID};
	Datum values[5] = {CStringGetTextDatum(name), IntervalPGetDatum(tick), Int32GetDatum(concurrency),
	                   has_timeout ? PG_GETARG_DATUM(3) : (Datum)0, has_cap ? PG_GETARG_DATUM(4) : (Datum)0};
	char nulls[6] = {' ', ' ', ' ', has_timeout ? ' ' : 'n', has_cap ? ' ' : 'n', '\0'};
	if (spi_exec("SELECT 1 FROM foreman.tier WHERE name = $1", 1, types, values, nullptr, true) > 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("tier \"%s\" already exists", name)));
	spi_exec("INSERT INTO foreman.tier (name, tick, concurrency, default_timeout, max_user_runtime)"
	         " VALUES ($1, $2, $3, $4, $5) RETURNING tier_id",
	         5, types, values, nulls, false);
	bool isnull;
	int32 tier_id = DatumGetInt32(spi_get(0, 1, &isnull));
	elevation_end(&e);
	PG_RETURN_INT32(tier_id);
}

FOREMAN_FUNCTION(foreman_alter_tier)
{
	require_tier_admin("alter a tier");
	char *name = required_text_arg(fcinfo, 0, "name");
	if (!PG_ARGISNULL(1))
		validate_tick(PG_GETARG_INTERVAL_P(1));
	if (!PG_ARGISNULL(2))
		validate_concurrency(PG_GETARG_INT32(2));
	// default_timeout, max_user_runtime: NULL leaves it, zero clears it.
	bool change_timeout = !PG_ARGISNULL(4);
	bool has_timeout = change_timeout && validate_tier_duration(PG_GETARG_INTERVAL_P(4), "default_timeout");
	bool change_cap = PG_NARGS() > 5 && !PG_ARGISNULL(5);
	bool has_cap = change_cap && validate_tier_duration(PG_GETARG_INTERVAL_P(5), "max_user_runtime");

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	int32 tier_id = find_tier(name, nullptr);
	Oid types[8] = {INT4OID, INTERVALOID, INT4OID, BOOLOID, BOOLOID, INTERVALOID, BOOLOID, INTERVALOID};
	Datum values[8] = {Int32GetDatum(tier_id),
	                   PG_ARGISNULL(1) ? (Datum)0 : PG_GETARG_DATUM(1),
	                   PG_ARGISNULL(2) ? (Datum)0 : PG_GETARG_DATUM(2),
	                   PG_ARGISNULL(3) ? (Datum)0 : PG_GETARG_DATUM(3),
	                   BoolGetDatum(change_timeout),
	                   has_timeout ? PG_GETARG_DATUM(4) : (Datum)0,
	                   BoolGetDatum(change_cap),
	                   has_cap ? PG_GETARG_DATUM(5) : (Datum)0};
	char nulls[9] = {' ', PG_ARGISNULL(1) ? 'n' : ' ', PG_ARGISNULL(2) ? 'n' : ' ', PG_ARGISNULL(3) ? 'n' : ' ',
	                 ' ', has_timeout ? ' ' : 'n', ' ', has_cap ? ' ' : 'n', '\0'};
	spi_exec("UPDATE foreman.tier SET tick = coalesce($2, tick), concurrency = coalesce($3, concurrency),"
	         " enabled = coalesce($4, enabled),"
	         " default_timeout = CASE WHEN $5 THEN $6 ELSE default_timeout END,"
	         " max_user_runtime = CASE WHEN $7 THEN $8 ELSE max_user_runtime END WHERE tier_id = $1",
	         8, types, values, nulls, false);
	wake_tier_at_commit(tier_id);
	elevation_end(&e);
	PG_RETURN_VOID();
}

FOREMAN_FUNCTION(foreman_drop_tier)
{
	require_tier_admin("drop a tier");
	char *name = required_text_arg(fcinfo, 0, "name");
	if (strcmp(name, "fast") == 0 || strcmp(name, "slow") == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE), errmsg("tier \"%s\" is built in and cannot be dropped", name),
		                errhint("Disable it instead: SELECT foreman.alter_tier('%s', enabled => false);", name)));

	Elevation e;
	elevation_begin(&e);
	require_current_catalog();
	int32 tier_id = find_tier(name, nullptr);
	Oid types[1] = {INT4OID};
	Datum values[1] = {Int32GetDatum(tier_id)};
	spi_exec("SELECT count(*) FROM foreman.job WHERE tier_id = $1", 1, types, values, nullptr, true);
	bool isnull;
	int64 jobs = DatumGetInt64(spi_get(0, 1, &isnull));
	if (jobs > 0)
		ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		                errmsg("cannot drop tier \"%s\" because it has %lld jobs", name, (long long)jobs),
		                errhint("Unschedule them or move them to another tier with foreman.alter_job(..., tier => ...).")));
	spi_exec("DELETE FROM foreman.tier WHERE tier_id = $1", 1, types, values, nullptr, false);
	elevation_end(&e);
	PG_RETURN_VOID();
}
