// catalog.cpp: shared pieces of the SQL API.
#include "api/catalog.hpp"
#include "pg/compat.hpp"

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
}

namespace foreman::api {

namespace {
AclResult
object_aclcheck_database(Oid role)
{
	return pg::compat::database_aclcheck(MyDatabaseId, role, ACL_CONNECT);
}
} // namespace

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

char *
required_text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

char *
optional_text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

namespace {

bool
has_privs_of_named_role(Oid role, const char *name)
{
	if (superuser_arg(role))
		return true;
	Oid target = get_role_oid(name, true);
	return OidIsValid(target) && has_privs_of_role(role, target);
}

} // namespace

bool
is_foreman_user(Oid role)
{
	return has_privs_of_named_role(role, "foreman_user");
}

bool
is_foreman_admin(Oid role)
{
	return has_privs_of_named_role(role, "foreman_admin");
}

void
require_foreman_user(Oid role)
{
	if (!is_foreman_user(role))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to schedule jobs"),
		                errdetail("Role \"%s\" is not a member of foreman_user.", GetUserNameFromId(role, true)),
		                errhint("A superuser or foreman_admin can GRANT foreman_user TO the role.")));
}

bool
may_manage(Oid caller, Oid owner)
{
	return has_privs_of_role(caller, owner) || is_foreman_admin(caller);
}

const char *
owner_problem(Oid owner)
{
	HeapTuple tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(owner));
	if (!HeapTupleIsValid(tuple))
		return "the role that owns the job no longer exists";
	Form_pg_authid role = (Form_pg_authid)GETSTRUCT(tuple);
	char *name = pstrdup(NameStr(role->rolname));
	bool can_login = role->rolcanlogin;
	ReleaseSysCache(tuple);
	if (!can_login)
		return psprintf("role \"%s\" that owns the job may not log in", name);
	if (!is_foreman_user(owner))
		return psprintf("role \"%s\" that owns the job is not a member of foreman_user", name);
	if (object_aclcheck_database(owner) != ACLCHECK_OK)
		return psprintf("role \"%s\" that owns the job may not connect to database \"%s\"", name,
		                get_database_name(MyDatabaseId));
	return nullptr;
}

JobRef
find_job(const char *name, Oid caller)
{
	Oid types[1] = {TEXTOID};
	Datum values[1] = {CStringGetTextDatum(name)};
	uint64 n = spi_exec("SELECT job_id, owner, tier_id, enabled FROM foreman.job WHERE job_name = $1 ORDER BY job_id",
	                    1, types, values, nullptr, true);
	if (n == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("job \"%s\" does not exist", name)));

	JobRef own{}, managed{};
	int nmanaged = 0;
	bool found_own = false;
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		HeapTuple row = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		JobRef ref;
		ref.job_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		ref.owner = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
		ref.tier_id = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
		ref.enabled = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
		if (ref.owner == caller) {
			own = ref;
			found_own = true;
		} else if (may_manage(caller, ref.owner)) {
			managed = ref;
			nmanaged++;
		}
	}
	if (found_own)
		return own;
	if (nmanaged == 1)
		return managed;
	if (nmanaged > 1)
		ereport(ERROR, (errcode(ERRCODE_AMBIGUOUS_PARAMETER),
		                errmsg("job name \"%s\" is ambiguous", name),
		                errdetail("Several roles you may act for own a job of that name."),
		                errhint("SET ROLE to the owner first.")));
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for job \"%s\"", name),
	                errdetail("The job belongs to another role."),
	                errhint("Only the job's owner, a role with the owner's privileges, or a superuser may change it.")));
	pg_unreachable();
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
		char *names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("tier \"%s\" does not exist", name),
		                errhint("Tiers are: %s; foreman.create_tier() makes another.", names ? names : "none")));
	}
	bool isnull;
	if (concurrency)
		*concurrency = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

} // namespace foreman::api
