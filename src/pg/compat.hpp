// compat.hpp: differences between PostgreSQL majors, in one place.
//
// pg_foreman supports PostgreSQL 15, 16, 17 and 18. Every test of
// PG_VERSION_NUM lives in this file; the rest of the code calls the small
// named wrappers below, which behave the same on every supported major.
// 15, 17 and 18 are built and tested (make test, make test-majors); 16 is built
// by reasoning from PostgreSQL's sources: no Debian suite we reach ships it.
// pg/postgres.hpp includes this file, so every PostgreSQL-side file has the
// wrappers and the headers that moved between majors.
#pragma once

#include "pg/postgres.hpp"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "pg_foreman supports PostgreSQL 15, 16, 17 and 18"
#endif

extern "C" {
#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "nodes/execnodes.h"
#include "nodes/nodes.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
}

// What expr_cache.cpp prepares as the executor would (execMain.c's
// ExecRelCheck, trigger.c's TriggerEnabled).
#if PG_VERSION_NUM >= 180000
extern "C" {
#include "rewrite/rewriteHandler.h"
}
#endif

// 16 moved the varlena macros (VARSIZE_ANY_EXHDR, VARDATA_ANY, ...) out of
// postgres.h into varatt.h.
#if PG_VERSION_NUM >= 160000
extern "C" {
#include "varatt.h"
}
#endif

#include <cstddef>

// PostgreSQL 15 added shmem_request_hook; shared memory and LWLock tranches
// must be requested there, not in _PG_init. Every supported major has it.
#define FOREMAN_HAVE_SHMEM_REQUEST_HOOK 1

namespace foreman::pg::compat {

// database_aclcheck: the privileges of role on a database. 16 replaced
// pg_database_aclcheck with the generic object_aclcheck(DatabaseRelationId,
// ...); same answer, same errors.
inline AclResult
database_aclcheck(Oid database, Oid role, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(DatabaseRelationId, database, role, mode);
#else
	return pg_database_aclcheck(database, role, mode);
#endif
}

// owned_by: whether role owns the database or the extension (class_id:
// DatabaseRelationId or ExtensionRelationId). 16 replaced the per-class
// ownercheck functions with object_ownercheck.
inline bool
owned_by(Oid class_id, Oid object_id, Oid role)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(class_id, object_id, role);
#else
	Assert(class_id == DatabaseRelationId || class_id == ExtensionRelationId);
	return class_id == ExtensionRelationId ? pg_extension_ownercheck(object_id, role)
	                                       : pg_database_ownercheck(object_id, role);
#endif
}

// for_each_my_proclock: calls fn(PROCLOCK *) for each lock this backend holds
// in lock partition `partition`; the caller holds that partition's LWLock. fn
// may release the lock it is given. 16 made the list a dlist (it was a
// SHM_QUEUE); its iteration macros assert types with a C-only builtin, so the
// dlist is walked by hand, as dlist_foreach_modify does.
template <typename Fn>
inline void
for_each_my_proclock(int partition, Fn &&fn)
{
#if PG_VERSION_NUM >= 160000
	dlist_node *end = &MyProc->myProcLocks[partition].head;
	dlist_node *next = nullptr;
	for (dlist_node *cur = end->next ? end->next : end; cur != end; cur = next) {
		next = cur->next;
		fn(reinterpret_cast<PROCLOCK *>(reinterpret_cast<char *>(cur) - offsetof(PROCLOCK, procLink)));
	}
#else
	SHM_QUEUE *head = &MyProc->myProcLocks[partition];
	PROCLOCK *proclock = (PROCLOCK *)SHMQueueNext(head, head, offsetof(PROCLOCK, procLink));
	while (proclock) {
		PROCLOCK *next = (PROCLOCK *)SHMQueueNext(head, &proclock->procLink, offsetof(PROCLOCK, procLink));
		fn(proclock);
		proclock = next;
	}
#endif
}

// lock_held_by_me: whether this backend holds locktag in exactly lockmode.
// 17 added the orstronger argument; false keeps the old meaning.
inline bool
lock_held_by_me(const LOCKTAG *locktag, LOCKMODE lockmode)
{
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(locktag, lockmode, false);
#else
	return LockHeldByMe(locktag, lockmode);
#endif
}

// portal_run: PortalRun of a portal that runs once, to completion. 18
// removed PortalRun's run_once argument (a portal run through PortalRun is
// always run once since then); before 18 we pass true, as exec_simple_query
// does.
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
// returned in 15. Later majors remember a deferrable primary key in the
// relcache (18 returns it when asked with deferrable_ok; we pass false, the
// old behaviour) and, for a partitioned table, one that is not valid yet.
// Neither finds rows by a unique key at the time of the statement, so both
// properties are checked here and every major answers alike.
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

// identity_sequence: the sequence of rel's identity column attnum
// (InvalidOid when it has none). 17 made getIdentitySequence take the
// relation (for partitions) where it took its oid.
inline Oid
identity_sequence(Relation rel, AttrNumber attnum)
{
#if PG_VERSION_NUM >= 170000
	return getIdentitySequence(rel, attnum, true);
#else
	return getIdentitySequence(RelationGetRelid(rel), attnum, true);
#endif
}

// check_constraint_states: where a ResultRelInfo keeps the prepared CHECK
// constraints of its relation (ExecRelCheck builds them when NULL, one per
// rd_att->constr->check[]). 18 renamed ri_ConstraintExprs.
inline ExprState **&
check_constraint_states(ResultRelInfo *rri)
{
#if PG_VERSION_NUM >= 180000
	return rri->ri_CheckConstraintExprs;
#else
	return rri->ri_ConstraintExprs;
#endif
}

// check_constraint_tree: a CHECK constraint's expression as ExecRelCheck
// hands it to ExecPrepareExpr, or nullptr when it is not checked (18's NOT
// ENFORCED constraints: their slot stays NULL). 18 also expands virtual
// generated columns in it.
inline Expr *
check_constraint_tree(Relation rel, const ConstrCheck &check)
{
#if PG_VERSION_NUM >= 180000
	if (!check.ccenforced)
		return nullptr;
	Node *tree = static_cast<Node *>(stringToNode(check.ccbin));
	return reinterpret_cast<Expr *>(expand_generated_columns_in_expr(tree, rel, 1));
#else
	(void)rel;
	return static_cast<Expr *>(stringToNode(check.ccbin));
#endif
}

// expand_generated_in_when: a trigger's WHEN condition with 18's virtual
// generated columns expanded for OLD and NEW, as TriggerEnabled does (the
// condition unchanged before 18).
inline Node *
expand_generated_in_when(Node *tree, Relation rel, int old_varno, int new_varno)
{
#if PG_VERSION_NUM >= 180000
	tree = expand_generated_columns_in_expr(tree, rel, old_varno);
	return expand_generated_columns_in_expr(tree, rel, new_varno);
#else
	(void)rel;
	(void)old_varno;
	(void)new_varno;
	return tree;
#endif
}

} // namespace foreman::pg::compat
