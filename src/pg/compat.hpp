// compat.hpp: differences between PostgreSQL majors, in one place.
#pragma once

#include "pg/postgres.hpp"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 160000
#error "pg_foreman is built and tested against PostgreSQL 15"
#endif

// PostgreSQL 15 added shmem_request_hook; shared memory and LWLock tranches
// must be requested there, not in _PG_init.
#define FOREMAN_HAVE_SHMEM_REQUEST_HOOK 1
