// hooks.hpp: what pg_foreman watches in ordinary backends.
//
//  * commit-time wakes: changes to tiers, jobs and the extension wake the
//    launcher or a tier's coordinator when (and only if) they commit;
//  * DROP DATABASE, ALTER DATABASE RENAME / SET TABLESPACE and CREATE DATABASE
//    from a template need the database to themselves: pg_foreman stops its
//    coordinators there first, and lets them start again afterwards.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::api {

void install_hooks();

// Queue a wake for commit: the launcher re-scouts this database.
void wake_launcher_at_commit();

// Queue a wake for commit: the coordinators of the tier (of this database).
void wake_tier_at_commit(int32 tier_id);

// Queue a wake for commit: every coordinator of this database.
void wake_all_tiers_at_commit();

} // namespace foreman::api
