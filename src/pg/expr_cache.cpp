// expr_cache.cpp: planned CHECK, WHEN and index-predicate trees kept
// between statements (see expr_cache.hpp).
#include "pg/expr_cache.hpp"

extern "C" {
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteManip.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace foreman::pg {

namespace {

enum class Kind { Check, When, IndexPredicate };

const char *
kind_name(Kind kind)
{
	switch (kind) {
	case Kind::Check:
		return "a CHECK constraint";
	case Kind::When:
		return "a trigger's WHEN condition";
	case Kind::IndexPredicate:
		return "an index predicate";
	}
	return "an expression";
}

// A kept tree and what it was planned from.
struct Entry {
	Kind kind;
	Oid oid;          // the table (Check, When) or the index (IndexPredicate)
	Oid user;         // who planned it (inlining a SQL function checks EXECUTE)
	const char *text; // Check, When: the catalog's text of the expression
	List *predicate;  // IndexPredicate: the predicate as the relcache gave it
	Node *planned;    // nullptr: a CHECK constraint that is not checked
};

// Beyond this many trees (a catalog that keeps changing) all are dropped
// at the next statement's start, and planned again as needed.
constexpr int kMaxEntries = 256;

MemoryContext cache_context = nullptr;
Entry *entries = nullptr;
int nentries = 0;
int capacity = 0;
bool stale = false;

// A function, type or operator changed: a kept tree may have inlined or
// folded it.
void
catalog_changed(Datum, int, uint32)
{
	stale = true;
}

// A relation changed (InvalidOid: any): stale when it is one a tree was
// taken from.
void
relation_changed(Datum, Oid relid)
{
	if (!OidIsValid(relid)) {
		stale = true;
		return;
	}
	for (int i = 0; i < nentries; i++)
		if (entries[i].oid == relid) {
			stale = true;
			return;
		}
}

void
set_up()
{
	if (cache_context)
		return;
	// The callbacks first: registered once per process (they cannot be
	// removed), before any tree is kept.
	CacheRegisterRelcacheCallback(relation_changed, (Datum)0);
	CacheRegisterSyscacheCallback(PROCOID, catalog_changed, (Datum)0);
	CacheRegisterSyscacheCallback(TYPEOID, catalog_changed, (Datum)0);
	CacheRegisterSyscacheCallback(OPEROID, catalog_changed, (Datum)0);
	cache_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman kept expression trees", ALLOCSET_SMALL_SIZES);
}

// The planned tree kept for (kind, oid, this user, text or predicate);
// planned by build (in the cache's memory) when none is kept.
template <typename Build>
Node *
planned_tree(Kind kind, Oid oid, const char *text, List *predicate, Build &&build)
{
	Oid user = GetUserId();
	for (int i = 0; i < nentries; i++) {
		const Entry &e = entries[i];
		if (e.kind == kind && e.oid == oid && e.user == user &&
		    (text ? strcmp(e.text, text) == 0 : equal(e.predicate, predicate)))
			return e.planned;
	}
	MemoryContext old = MemoryContextSwitchTo(cache_context);
	Entry e{kind, oid, user, text ? pstrdup(text) : nullptr, text ? NIL : static_cast<List *>(copyObjectImpl(predicate)),
	        build()};
	if (nentries == capacity) {
		int grown = capacity == 0 ? 16 : capacity * 2;
		entries = static_cast<Entry *>(entries ? repalloc(entries, sizeof(Entry) * grown)
		                                       : palloc(sizeof(Entry) * grown));
		capacity = grown;
	}
	entries[nentries++] = e;
	MemoryContextSwitchTo(old);
	if (message_level_is_interesting(DEBUG1)) {
		char *name = get_rel_name(oid);
		ereport(DEBUG1, (errmsg_internal("pg_foreman: planned %s of \"%s\" for reuse (%d kept)", kind_name(kind),
		                                 name ? name : "?", nentries)));
	}
	return e.planned;
}

} // namespace

void
expr_cache_begin_statement()
{
	if (!cache_context || (!stale && nentries < kMaxEntries))
		return;
	MemoryContextReset(cache_context);
	entries = nullptr;
	nentries = 0;
	capacity = 0;
	stale = false;
}

void
expr_cache_prepare(ResultRelInfo *rri, EState *estate, CmdType operation)
{
	set_up();
	Relation rel = rri->ri_RelationDesc;
	Oid relid = RelationGetRelid(rel);
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);

	// The CHECK constraints, in ExecRelCheck's order (when the relcache
	// lacks some, ExecRelCheck reports it: nothing is prepared here).
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	if (constr && constr->num_check > 0 && constr->num_check == rel->rd_rel->relchecks &&
	    compat::check_constraint_states(rri) == nullptr) {
		int n = constr->num_check;
		ExprState **states = static_cast<ExprState **>(palloc0(sizeof(ExprState *) * n));
		for (int i = 0; i < n; i++) {
			const ConstrCheck &check = constr->check[i];
			Node *planned = planned_tree(Kind::Check, relid, check.ccbin, NIL, [&]() -> Node * {
				Expr *tree = compat::check_constraint_tree(rel, check);
				return tree ? reinterpret_cast<Node *>(expression_planner(tree)) : nullptr;
			});
			states[i] = planned ? ExecInitExpr(reinterpret_cast<Expr *>(planned), nullptr) : nullptr;
		}
		compat::check_constraint_states(rri) = states;
	}

	// The WHEN conditions of the row triggers this write may fire, in the
	// form TriggerEnabled gives them (OLD and NEW as INNER_VAR and
	// OUTER_VAR, implicit AND).
	TriggerDesc *triggers = rri->ri_TrigDesc;
	if (triggers && rri->ri_TrigWhenExprs) {
		for (int i = 0; i < triggers->numtriggers; i++) {
			const Trigger *t = &triggers->triggers[i];
			bool fires = operation == CMD_INSERT ? TRIGGER_FOR_INSERT(t->tgtype) : TRIGGER_FOR_UPDATE(t->tgtype);
			if (!t->tgqual || !TRIGGER_FOR_ROW(t->tgtype) || !fires || rri->ri_TrigWhenExprs[i])
				continue;
			Node *planned = planned_tree(Kind::When, relid, t->tgqual, NIL, [&]() -> Node * {
				Node *qual = static_cast<Node *>(stringToNode(t->tgqual));
				qual = compat::expand_generated_in_when(qual, rel, PRS2_OLD_VARNO, PRS2_NEW_VARNO);
				ChangeVarNodes(qual, PRS2_OLD_VARNO, INNER_VAR, 0);
				ChangeVarNodes(qual, PRS2_NEW_VARNO, OUTER_VAR, 0);
				List *implicit_and = make_ands_implicit(reinterpret_cast<Expr *>(qual));
				return reinterpret_cast<Node *>(expression_planner(reinterpret_cast<Expr *>(implicit_and)));
			});
			rri->ri_TrigWhenExprs[i] = ExecInitQual(reinterpret_cast<List *>(planned), nullptr);
		}
	}
	MemoryContextSwitchTo(old);
}

void
expr_cache_prepare_indexes(ResultRelInfo *rri, EState *estate)
{
	set_up();
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	for (int i = 0; i < rri->ri_NumIndices; i++) {
		IndexInfo *info = rri->ri_IndexRelationInfo[i];
		if (info->ii_Predicate == NIL || info->ii_PredicateState)
			continue;
		List *predicate = info->ii_Predicate;
		Node *planned = planned_tree(Kind::IndexPredicate, RelationGetRelid(rri->ri_IndexRelationDescs[i]), nullptr,
		                             predicate, [&]() -> Node * {
			                             // From a copy in the cache's memory: planning
			                             // copies Const nodes but not their values.
			                             return reinterpret_cast<Node *>(
			                                 expression_planner(static_cast<Expr *>(copyObjectImpl(predicate))));
		                             });
		info->ii_PredicateState = ExecInitQual(reinterpret_cast<List *>(planned), nullptr);
	}
	MemoryContextSwitchTo(old);
}

} // namespace foreman::pg
