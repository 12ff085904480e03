// compat.hpp: differences between PostgreSQL majors, in one place.
//
// pg_foreman supports PostgreSQL 15, 16, 17 and 18. Every test of
// PG_VERSION_NUM lives in this file; the rest of the code calls the small
// named wrappers below, which behave the same on every supported major.
// 15, 17 and 18 are built and tested (make test, make test-majors); 16 is built
// by reasoning from PostgreSQL's sources: no Debian suite we reach ships it.
#pragma once

#include "pg/postgres.hpp"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "pg_foreman supports PostgreSQL 15, 16, 17 and 18"
#endif

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_database.h"
#include "catalog/pg_index.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
}

// PostgreSQL 15 added shmem_request_hook; shared memory and LWLock tranches
// must be requested there, not in _PG_init. Every supported major has it.
#define FOREMAN_HAVE_SHMEM_REQUEST_HOOK 1

namespace foreman::pg {

// database_aclcheck: the privileges of role on a database.
// PostgreSQL 16 replaced pg_database_aclcheck with the generic
// object_aclcheck(DatabaseRelationId, ...); same answer, same errors.
inline AclResult
database_aclcheck(Oid database, Oid role, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(DatabaseRelationId, database, role, mode);
#else
	return pg_database_aclcheck(database, role, mode);
#endif
}

// portal_run: PortalRun of a portal that runs once, to completion.
// PostgreSQL 18 removed PortalRun's run_once argument (a portal run through
// PortalRun is always run once since then); before 18 we pass true, as
// exec_simple_query does.
inline bool
portal_run(Portal portal, long count, bool is_top_level, DestReceiver *dest, DestReceiver *altdest,
           QueryCompletion *qc)
{
#if PG_VERSION_NUM >= 180000
	return PortalRun(portal, count, is_top_level, dest, altdest, qc);
#else
	return PortalRun(portal, count, is_top_level, true, dest, altdest, qc);
#endif
}

// primary_key_index: the relation's primary key index when it is valid and
// immediate (not DEFERRABLE), else InvalidOid: what RelationGetPrimaryKeyIndex
// returned in PostgreSQL 15. Later majors remember a deferrable primary key in
// the relcache (18 returns it when asked with deferrable_ok; we pass false, the
// old behaviour) and, for a partitioned table, an invalid one. Neither finds
// rows by a unique key at the time of the statement, so we check both
// properties ourselves and every major answers alike.
inline Oid
primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	Oid index = RelationGetPrimaryKeyIndex(rel, false);
#else
	Oid index = RelationGetPrimaryKeyIndex(rel);
#endif
	if (!OidIsValid(index))
		return InvalidOid;
	HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	Form_pg_index form = (Form_pg_index)GETSTRUCT(tup);
	bool usable = form->indisvalid && form->indimmediate;
	ReleaseSysCache(tup);
	return usable ? index : InvalidOid;
}

} // namespace foreman::pg
