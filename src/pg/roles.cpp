// roles.cpp: the rules of roles, over PostgreSQL's catalogs.
#include "pg/roles.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

namespace foreman::pg {

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

bool
may_manage(Oid caller, Oid owner)
{
	return has_privs_of_role(caller, owner) || is_foreman_admin(caller);
}

OwnerStatus
owner_status(Oid owner)
{
	OwnerStatus status{};
	HeapTuple tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(owner));
	if (!HeapTupleIsValid(tuple)) {
		status.problem = "the role that owns the job no longer exists";
		return status;
	}
	Form_pg_authid role = (Form_pg_authid)GETSTRUCT(tuple);
	status.name = pstrdup(NameStr(role->rolname));
	bool can_login = role->rolcanlogin;
	status.superuser = role->rolsuper;
	ReleaseSysCache(tuple);
	status.admin = status.superuser || is_foreman_admin(owner);
	if (!can_login)
		status.problem = psprintf("role \"%s\" that owns the job may not log in", status.name);
	else if (!is_foreman_user(owner))
		status.problem = psprintf("role \"%s\" that owns the job is not a member of foreman_user", status.name);
	else if (compat::database_aclcheck(MyDatabaseId, owner, ACL_CONNECT) != ACLCHECK_OK)
		status.problem = psprintf("role \"%s\" that owns the job may not connect to database \"%s\"", status.name,
		                          get_database_name(MyDatabaseId));
	return status;
}

} // namespace foreman::pg
