// pg_foreman.cpp: _PG_init: settings, shared memory, hooks, and the launcher.
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"
#include "bgw/shmem.hpp"
#include "bgw/launcher.hpp"
#include "api/hooks.hpp"

extern "C" {
#include "storage/ipc.h"
}

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace foreman {
namespace {

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void
foreman_shmem_request()
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	pg::cpp_guard("shmem request hook", []() { bgw::request_shared_memory(); });
}

void
foreman_shmem_startup()
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pg::cpp_guard("shmem startup hook", []() { bgw::init_shared_memory(); });
}

} // namespace
} // namespace foreman

void
_PG_init(void)
{
	// pg_upgrade starts both clusters in binary-upgrade mode (postgres -b) with
	// their shared_preload_libraries: nothing of pg_foreman may start there or
	// write (no launcher, no hooks, no shared memory), or the old cluster would
	// change while it is dumped and the new one while it is restored. As pg_cron
	// does, load as nothing. A backend of such a server that loads the library
	// later returns here too (IsBinaryUpgrade is inherited from the postmaster).
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		         errmsg("pg_foreman must be loaded via shared_preload_libraries"),
		         errhint("Add pg_foreman to shared_preload_libraries in postgresql.conf and restart the server.")));

	foreman::define_settings();

	foreman::prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = foreman::foreman_shmem_request;
	foreman::prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = foreman::foreman_shmem_startup;

	foreman::api::install_hooks();
	foreman::bgw::register_launcher();
}
