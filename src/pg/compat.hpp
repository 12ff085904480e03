// compat.hpp: differences between PostgreSQL majors, in one place.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/acl.h"
}

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 160000
#error "pg_foreman is built and tested against PostgreSQL 15"
#endif

// PostgreSQL 15 added shmem_request_hook; shared memory and LWLock tranches
// must be requested there, not in _PG_init.
#define FOREMAN_HAVE_SHMEM_REQUEST_HOOK 1

namespace foreman::pg::compat {

// database_aclcheck: the privileges of role on a database. 16 replaced
// pg_database_aclcheck with the generic object_aclcheck(DatabaseRelationId,
// ...); same answer, same errors.
inline AclResult
database_aclcheck(Oid database, Oid role, AclMode mode)
{
	return pg_database_aclcheck(database, role, mode);
}

// Calls fn(PROCLOCK *) for each lock this backend holds in lock partition
// `partition`; the caller holds that partition's LWLock. (16 made the list a
// dlist.)
template <typename Fn>
inline void
for_each_my_proclock(int partition, Fn &&fn)
{
	SHM_QUEUE *head = &MyProc->myProcLocks[partition];
	PROCLOCK *proclock = (PROCLOCK *)SHMQueueNext(head, head, offsetof(PROCLOCK, procLink));
	while (proclock) {
		PROCLOCK *next = (PROCLOCK *)SHMQueueNext(head, &proclock->procLink, offsetof(PROCLOCK, procLink));
		fn(proclock);
		proclock = next;
	}
}

// Whether this backend holds locktag in exactly lockmode. (17 added the
// orstronger argument.)
inline bool
lock_held_by_me(const LOCKTAG *locktag, LOCKMODE lockmode)
{
	return LockHeldByMe(locktag, lockmode);
}

// Whether role owns the database. (16 replaced the per-class ownercheck
// functions with object_ownercheck.)
inline bool
database_owned_by(Oid dboid, Oid role)
{
	return pg_database_ownercheck(dboid, role);
}

} // namespace foreman::pg::compat
