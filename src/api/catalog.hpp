// catalog.hpp: what the SQL API shares: reading arguments, acting on the
// foreman tables with the extension's rights, finding jobs and tiers by name,
// and deciding who may touch them.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace foreman::api {

// Runs SPI statements as the bootstrap superuser with search_path pinned to
// pg_catalog, pg_temp, between begin() and end(). The caller's identity was
// captured before; the tables are private, so this is the only way in.
struct Elevation {
	Oid saved_user;
	int saved_context;
	int guc_level;
};
void elevation_begin(Elevation *e);
void elevation_end(Elevation *e);

// SPI_execute_with_args that raises on failure; returns SPI_processed.
uint64 spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, bool read_only);

// Argument helpers: NULL-aware getters that raise 22004 (null value not
// allowed) with the parameter's name.
char *required_text_arg(FunctionCallInfo fcinfo, int n, const char *name);
char *optional_text_arg(FunctionCallInfo fcinfo, int n);

// A job as the API sees it.
struct JobRef {
	int64 job_id;
	Oid owner;
	int32 tier_id;
	bool enabled;
};

// Finds the job called `name` that the caller may act on: the caller's own,
// else the only one owned by a role whose privileges the caller has. Raises
// 42704 when there is none, 42501 when it belongs to someone else, 42725 when
// the name is ambiguous. Call between elevation_begin() and elevation_end().
JobRef find_job(const char *name, Oid caller);

// The tier of that name; raises 42704 (with the tiers there are as a hint).
int32 find_tier(const char *name, int32 *concurrency);

// True when `caller` may manage jobs owned by `owner`: it has the owner's
// privileges, or is foreman_admin (superusers are both).
bool may_manage(Oid caller, Oid owner);

// Membership in pg_foreman's roles (by privileges, as pg_has_role USAGE);
// superusers count as both.
bool is_foreman_user(Oid role);
bool is_foreman_admin(Oid role);

// Raises 42501 unless role may schedule jobs (foreman_user).
void require_foreman_user(Oid role);

// Why `owner` cannot own and run jobs now, or nullptr: dropped, no LOGIN, not
// foreman_user, or no CONNECT on this database. Checked when a job is
// scheduled and (by the coordinator, in SQL) before every run.
const char *owner_problem(Oid owner);

} // namespace foreman::api
