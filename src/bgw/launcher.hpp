// launcher.hpp: the launcher (static bgworker, no database) and the scouts it
// sends into databases. See src/bgw/README.md for the state machines.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace foreman::bgw {

// Registers the launcher; called from _PG_init in the postmaster.
void register_launcher();

// What a coordinator is asked to be, passed in bgw_extra.
struct CoordinatorArgs {
	Oid dboid;
	int32 tier_id;
};

// Registers a coordinator for (dboid, tier_id) with notify_pid. Returns the
// handle, or nullptr when no worker slot is free.
BackgroundWorkerHandle *start_coordinator(Oid dboid, const char *dbname, int32 tier_id,
                                                 const char *tier_name, pid_t notify_pid);

} // namespace foreman::bgw

extern "C" {
PGDLLEXPORT void foreman_launcher_main(Datum arg);
PGDLLEXPORT void foreman_scout_main(Datum arg);
PGDLLEXPORT void foreman_coordinator_main(Datum arg);
}
