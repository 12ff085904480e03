// access.cpp: the SQL API's way into the foreman tables.
#include "api/access.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "storage/lock.h"
}

#include "bgw/coordinator.hpp"
#include "pg/roles.hpp"

namespace foreman::api {

void
elevation_begin(Elevation *e)
{
	GetUserIdAndSecContext(&e->saved_user, &e->saved_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, e->saved_context | SECURITY_LOCAL_USERID_CHANGE);
	e->guc_level = NewGUCNestLevel();
	(void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
	                        true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
}

void
elevation_end(Elevation *e)
{
	SPI_finish();
	AtEOXact_GUC(true, e->guc_level);
	SetUserIdAndSecContext(e->saved_user, e->saved_context);
}

uint64
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, bool read_only)
{
	int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "pg_foreman: catalog statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

Datum
spi_get(uint64 row, int col, bool *isnull)
{
	if (!SPI_tuptable || row >= SPI_processed || col < 1 || col > SPI_tuptable->tupdesc->natts)
		elog(ERROR, "pg_foreman: catalog statement returned %llu rows; row %llu, column %d was read",
		     (unsigned long long)SPI_processed, (unsigned long long)row, col);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

char *
spi_get_text(uint64 row, int col)
{
	bool isnull;
	Datum d = spi_get(row, col, &isnull);
	return isnull ? nullptr : TextDatumGetCString(d);
}

void
require_foreman_user(Oid role)
{
	if (!pg::is_foreman_user(role))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to schedule jobs"),
		                errdetail("Role \"%s\" is not a member of foreman_user.", GetUserNameFromId(role, true)),
		                errhint("A superuser or foreman_admin can GRANT foreman_user TO the role.")));
}

bool
find_job(const char *name, Oid caller, JobLock lock, JobRef *out)
{
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(name)};
	// Not read-only when the job is to be changed: a fresh snapshot that also
	// sees what this statement did before (a job unscheduled a moment ago).
	uint64 n = spi_exec("SELECT job_id, owner, tier_id, enabled FROM foreman.job WHERE job_name = $1 ORDER BY job_id",
	                    1, types, values, nullptr, lock == JobLock::None);
	JobRef own{}, managed{};
	int nmanaged = 0;
	bool found_own = false;
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		JobRef ref;
		ref.job_id = DatumGetInt64(spi_get(i, 1, &isnull));
		ref.owner = DatumGetObjectId(spi_get(i, 2, &isnull));
		ref.tier_id = DatumGetInt32(spi_get(i, 3, &isnull));
		ref.enabled = DatumGetBool(spi_get(i, 4, &isnull));
		if (ref.owner == caller) {
			own = ref;
			found_own = true;
		} else if (pg::may_manage(caller, ref.owner)) {
			managed = ref;
			nmanaged++;
		}
	}
	if (!found_own && nmanaged > 1)
		ereport(ERROR, (errcode(ERRCODE_AMBIGUOUS_PARAMETER),
		                errmsg("job name \"%s\" is ambiguous", name),
		                errdetail("Several roles you may act for own a job of that name."),
		                errhint("SET ROLE to the owner first.")));
	if (!found_own && nmanaged == 0)
		return false;
	*out = found_own ? own : managed;
	if (lock == JobLock::None)
		return true;

	// Lock just that row (never other roles' jobs of the same name), and
	// read it again: it may have changed or gone while we waited.
	Oid ltypes[1] = {INT8OID};
	Datum lvalues[1] = {Int64GetDatum(out->job_id)};
	if (spi_exec("SELECT tier_id, enabled FROM foreman.job WHERE job_id = $1 FOR UPDATE", 1, ltypes, lvalues, nullptr,
	             false) != 1)
		return false;
	bool isnull;
	out->tier_id = DatumGetInt32(spi_get(0, 1, &isnull));
	out->enabled = DatumGetBool(spi_get(0, 2, &isnull));
	return true;
}

JobRef
require_job(const char *name, Oid caller, JobLock lock)
{
	JobRef job{};
	if (!find_job(name, caller, lock, &job))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("job \"%s\" does not exist", name),
		                errhint("Jobs of other roles are neither shown nor named: check foreman.jobs.")));
	return job;
}

void
require_current_catalog()
{
	spi_exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_foreman'", 0, nullptr, nullptr,
	         nullptr, true);
	char *version = spi_get_text(0, 1);
	if (strcmp(version, "1.1") != 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("pg_foreman's catalog in this database is version %s; its library is 1.1", version),
		                errdetail("Jobs keep running; changes to them wait for the update."),
		                errhint("Run ALTER EXTENSION pg_foreman UPDATE.")));
}

void
lock_owner_jobs(Oid owner)
{
	LOCKTAG tag;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, bgw::kLeadershipLockClass, (uint32)owner, bgw::kOwnerLockSubid);
	(void)LockAcquire(&tag, ExclusiveLock, false, false);
}

int32
find_tier(const char *name, int32 *concurrency)
{
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(name)};
	uint64 n = spi_exec("SELECT tier_id, concurrency FROM foreman.tier WHERE name = $1", 1, types, values, nullptr,
	                    true);
	if (n == 0) {
		spi_exec("SELECT string_agg(quote_literal(name), ', ' ORDER BY tier_id) FROM foreman.tier", 0, nullptr,
		         nullptr, nullptr, true);
		char *names = spi_get_text(0, 1);
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("tier \"%s\" does not exist", name),
		                errhint("Tiers are: %s; foreman.create_tier() makes another.", names ? names : "none")));
	}
	bool isnull;
	if (concurrency)
		*concurrency = DatumGetInt32(spi_get(0, 2, &isnull));
	return DatumGetInt32(spi_get(0, 1, &isnull));
}

} // namespace foreman::api
