// roles.hpp: who a role is to pg_foreman - the one place of the rules on
// foreman_user, foreman_admin and who may own and run jobs. The API checks
// them when a job is scheduled; the coordinator before every run.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::pg {

// Membership in pg_foreman's roles, by privileges (as pg_has_role USAGE);
// superusers count as both; false when the role itself was dropped.
bool is_foreman_user(Oid role);
bool is_foreman_admin(Oid role);

// True when `caller` may manage jobs owned by `owner`: it has the owner's
// privileges, or is foreman_admin.
bool may_manage(Oid caller, Oid owner);

// What the rules say of a job's owner now.
struct OwnerStatus {
	const char *problem; // why it may not own and run jobs (dropped, no LOGIN, not foreman_user, no CONNECT), or NULL
	bool superuser;
	bool admin;          // superuser or foreman_admin: not bound by per-role limits
	char *name;          // NULL when the role is gone
};
OwnerStatus owner_status(Oid owner);

} // namespace foreman::pg
