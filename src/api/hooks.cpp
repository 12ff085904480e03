// hooks.cpp: commit-time wakes and the database-level DDL hook.
#include "api/hooks.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "bgw/shmem.hpp"
#include "bgw/statements.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "catalog/namespace.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
}

#include <csignal>

namespace foreman::api {

namespace {

// Wakes queued by this transaction. A small array suffices: a transaction that
// touches more tiers than this wakes every coordinator of the database.
constexpr int kMaxPendingTiers = 16;
struct PendingWakes {
	bool launcher;
	bool catalog_changed; // ALTER EXTENSION pg_foreman UPDATE
	bool all_tiers;
	int ntiers;
	int32 tiers[kMaxPendingTiers];
};
PendingWakes pending;

object_access_hook_type prev_object_access_hook = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;

void
send_pending_wakes()
{
	if (pending.catalog_changed)
		bgw::bump_catalog_generation();
	if (pending.launcher)
		bgw::request_rescan(MyDatabaseId);
	if (pending.all_tiers)
		bgw::wake_coordinators(MyDatabaseId, -1);
	else
		for (int i = 0; i < pending.ntiers; i++)
			bgw::wake_coordinators(MyDatabaseId, pending.tiers[i]);
	pending = PendingWakes{};
}

void
xact_event(XactEvent event)
{
	switch (event) {
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PARALLEL_COMMIT:
		if (pending.launcher || pending.catalog_changed || pending.all_tiers || pending.ntiers > 0)
			send_pending_wakes();
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
		pending = PendingWakes{};
		break;
	default:
		break;
	}
}

// DROP EXTENSION pg_foreman: the launcher must stop this database's coordinators.
void
object_access(ObjectAccessType access, Oid class_id, Oid object_id)
{
	if (access == OAT_DROP && class_id == ExtensionRelationId && object_id == get_extension_oid("pg_foreman", true))
		pending.launcher = true;
}

// The database a database-level utility statement needs to itself, if any.
const char *
database_needing_exclusive_use(Node *stmt, bool *created)
{
	*created = false;
	switch (nodeTag(stmt)) {
	case T_DropdbStmt:
		return castNode(DropdbStmt, stmt)->dbname;
	case T_RenameStmt: {
		RenameStmt *rename = castNode(RenameStmt, stmt);
		return rename->renameType == OBJECT_DATABASE ? rename->subname : nullptr;
	}
	case T_AlterDatabaseStmt: {
		AlterDatabaseStmt *alter = castNode(AlterDatabaseStmt, stmt);
		ListCell *lc;
		foreach (lc, alter->options)
			if (strcmp(lfirst_node(DefElem, lc)->defname, "tablespace") == 0)
				return alter->dbname;
		return nullptr;
	}
	case T_CreatedbStmt: {
		*created = true;
		ListCell *lc;
		foreach (lc, castNode(CreatedbStmt, stmt)->options) {
			DefElem *option = lfirst_node(DefElem, lc);
			if (strcmp(option->defname, "template") == 0 && option->arg)
				return defGetString(option);
		}
		return nullptr;
	}
	default:
		return nullptr;
	}
}

// ALTER EXTENSION pg_foreman (UPDATE, or a change of its objects).
bool
alters_pg_foreman(Node *stmt)
{
	return IsA(stmt, AlterExtensionStmt) && strcmp(castNode(AlterExtensionStmt, stmt)->extname, "pg_foreman") == 0;
}

// ALTER EXTENSION pg_foreman UPDATE and DROP EXTENSION pg_foreman, by a role
// that may run them (the extension's owner or a superuser: anyone else's
// statement fails its permission check, and must not hold the scheduler
// first): they lock foreman.tier, the catalog's gate (bgw/statements.hpp),
// before any other foreman table, so that they never deadlock with the
// scheduler's transactions. (An update script locks it first as well, for a
// server that did not preload the library.)
bool
changes_foreman_catalog(Node *stmt)
{
	bool ours = alters_pg_foreman(stmt);
	if (IsA(stmt, DropStmt) && castNode(DropStmt, stmt)->removeType == OBJECT_EXTENSION) {
		ListCell *lc;
		foreach (lc, castNode(DropStmt, stmt)->objects)
			ours |= strcmp(strVal(lfirst(lc)), "pg_foreman") == 0;
	}
	if (!ours)
		return false;
	Oid extoid = get_extension_oid("pg_foreman", true);
	return OidIsValid(extoid) && pg::compat::owned_by(ExtensionRelationId, extoid, GetUserId());
}

// Only a role that could carry the statement out may stop a database's
// coordinators for it: dropping, renaming, moving or copying a database that
// is not a template needs its ownership (or superuser). For anyone else the
// statement fails its own permission check, and nothing of pg_foreman moves.
bool
may_pause(Oid dboid)
{
	return superuser() || pg::compat::owned_by(DatabaseRelationId, dboid, GetUserId());
}

void
utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
        ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	bool is_create = false;
	const char *dbname = bgw::shared() ? database_needing_exclusive_use(pstmt->utilityStmt, &is_create) : nullptr;
	Oid target = dbname ? get_database_oid(dbname, true) : InvalidOid;
	Oid dboid = OidIsValid(target) && may_pause(target) ? target : InvalidOid;
	// An update of pg_foreman's catalog: its processes prepare their
	// statements anew (statements.hpp) once it commits.
	if (alters_pg_foreman(pstmt->utilityStmt))
		pending.catalog_changed = true;
	Oid gate = changes_foreman_catalog(pstmt->utilityStmt) ? bgw::catalog_gate() : InvalidOid;
	if (OidIsValid(gate))
		LockRelationOid(gate, AccessExclusiveLock);
	auto run = [&]() {
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		else
			standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	};
	if (!OidIsValid(dboid) && !is_create) {
		run();
		return;
	}
	// Paused inside the capture: a cancel while waiting for the coordinators
	// to stop (statement_timeout, say) still resumes the database.
	ErrorData *edata = pg::capture_pg_error([&]() {
		if (OidIsValid(dboid))
			bgw::pause_database(dboid);
		run();
	});
	if (OidIsValid(dboid))
		bgw::resume_database(dboid);
	else
		bgw::request_rescan_all();
	if (edata)
		pg::reraise_pg_error(edata);
}

// The hooks PostgreSQL calls: thin shims into the bodies above, through the
// boundary's guard.
void
on_xact_event(XactEvent event, void *)
{
	pg::cpp_guard("transaction callback", [event]() { xact_event(event); });
}

void
on_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, class_id, object_id, sub_id, arg);
	pg::cpp_guard("object access hook", [=]() { object_access(access, class_id, object_id); });
}

void
process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
                ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	pg::cpp_guard("utility hook",
	              [=]() { utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc); });
}

} // namespace

void
wake_launcher_at_commit()
{
	pending.launcher = true;
}

void
wake_tier_at_commit(int32 tier_id)
{
	if (pending.all_tiers)
		return;
	for (int i = 0; i < pending.ntiers; i++)
		if (pending.tiers[i] == tier_id)
			return;
	if (pending.ntiers == kMaxPendingTiers)
		pending.all_tiers = true;
	else
		pending.tiers[pending.ntiers++] = tier_id;
}

void
wake_all_tiers_at_commit()
{
	pending.all_tiers = true;
}

void
install_hooks()
{
	RegisterXactCallback(on_xact_event, nullptr);
	prev_object_access_hook = object_access_hook;
	object_access_hook = on_object_access;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = process_utility;
}

} // namespace foreman::api

// Trigger on foreman.tier: tiers changed, so the launcher re-scouts this
// database at commit and starts or stops coordinators; running coordinators
// re-read their tier.
FOREMAN_FUNCTION(foreman_tiers_changed)
{
	// Only as the trigger on foreman.tier: on any other table it would let a
	// role make the launcher scout this database again and again.
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("foreman._tiers_changed() may only be called as a trigger")));
	Relation rel = reinterpret_cast<TriggerData *>(fcinfo->context)->tg_relation;
	if (strcmp(RelationGetRelationName(rel), "tier") != 0 ||
	    RelationGetNamespace(rel) != get_namespace_oid("foreman", true))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("foreman._tiers_changed() may only be the trigger of foreman.tier")));
	foreman::api::wake_launcher_at_commit();
	foreman::api::wake_all_tiers_at_commit();
	return PointerGetDatum(nullptr);
}
