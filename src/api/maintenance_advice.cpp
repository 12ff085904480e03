// maintenance_advice.cpp: which index serves the batches of an expiry or a
// purge, and the exact CREATE INDEX to run when none does.
//
// An index serves when it is a valid btree leading with the timestamp column
// whose predicate (if any) follows from the batch's own (PostgreSQL's own
// predicate prover decides). Then a run's batches go in timestamp order, each
// after the (timestamp, key) where the last one stopped. Without one, a run
// sweeps the heap (a plain table) or every batch reads the whole table for
// its oldest rows (partitioned, or with inheritance children). For an expiry,
// a partial index on the non-terminal statuses is best: it holds only the
// rows expiry looks for, where a plain one holds the terminal rows too, which
// the first batch of every run steps over.
#include "api/maintenance.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/rel.h"
}

namespace foreman::api {

namespace {

// The clauses of the batch's predicate (statuses as literals, the filter),
// as the predicate prover reads them.
List *
batch_clauses(const AdviceText &text)
{
	List *raw = raw_parser(text.check_sql, RAW_PARSE_DEFAULT);
	Query *query = parse_analyze_fixedparams(linitial_node(RawStmt, raw), text.check_sql, nullptr, 0, nullptr);
	Node *quals = eval_const_expressions(nullptr, query->jointree->quals);
	return make_ands_implicit(canonicalize_qual((Expr *)quals, false));
}

// How the batches of a target go, for the advice and the NOTICE.
const char *
batches_word(const Target &target, const ServingIndex &index)
{
	if (index.serves)
		return "keyset";
	return target.by_ctid ? "sweep" : "scan";
}

} // namespace

ServingIndex
find_serving_index(const Target &target, const AdviceText &text)
{
	List *clauses = batch_clauses(text);
	ServingIndex found{false, false, nullptr};
	Relation rel = relation_open(target.relid, AccessShareLock);
	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	foreach (lc, indexes) {
		Relation index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = index->rd_index;
		if (form->indisvalid && form->indnkeyatts >= 1 && form->indkey.values[0] == target.timestamp_attnum &&
		    index->rd_rel->relam == BTREE_AM_OID) {
			List *predicate = RelationGetIndexPredicate(index);
			bool partial = predicate != NIL;
			// The first usable one; a partial one before a plain one.
			if ((!partial || predicate_implied_by(predicate, clauses, false)) && (!found.serves || (partial && !found.partial))) {
				found.serves = true;
				found.partial = partial;
				found.name = pstrdup(RelationGetRelationName(index));
			}
		}
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
	relation_close(rel, AccessShareLock);
	return found;
}

void
advise_index(const Spec &spec, const Target &target)
{
	AdviceText text{};
	build_advice_text(spec, target, &text);
	ServingIndex index = find_serving_index(target, text);
	if (index.serves && (spec.kind == Kind::Purge || index.partial))
		return;
	const char *without = target.by_ctid ? "Each run sweeps the whole table in heap order, and a batch on its own "
	                                       "reads all of it for the oldest rows."
	                                     : "Each batch reads the whole table for the oldest rows.";
	if (spec.kind == Kind::Purge)
		ereport(NOTICE, (errmsg("no index on \"%s\" serves the purge of %s", spec.timestamp_column, target.qualified),
		                 errdetail_internal("%s", without), errhint("Create one: %s;", text.advice)));
	else if (index.serves)
		ereport(NOTICE, (errmsg("only a plain index serves the stale rows of %s", target.qualified),
		                 errdetail("Index \"%s\" on \"%s\" also holds the rows in terminal statuses: the first batch "
		                           "of every run steps over all of them that are older than the stale rows.",
		                           index.name, spec.timestamp_column),
		                 errhint("A partial index holds only the rows expiry looks for: %s;", text.advice)));
	else
		ereport(NOTICE, (errmsg("no index serves the stale rows of %s", target.qualified),
		                 errdetail_internal("%s", without), errhint("Create one: %s;", text.advice)));
}

} // namespace foreman::api

using namespace foreman::api;

namespace {

// (batches text, index_name name, advice text) of one target.
Datum
advice_row(FunctionCallInfo fcinfo, const Spec &spec)
{
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_foreman: advice must return a row");
	Target target{};
	resolve_target(spec, TargetUse::Advice, &target);
	AdviceText text{};
	build_advice_text(spec, target, &text);
	ServingIndex index = find_serving_index(target, text);
	bool good = index.serves && (spec.kind == Kind::Purge || index.partial);
	Datum values[3] = {CStringGetTextDatum(batches_word(target, index)),
	                   index.name ? DirectFunctionCall1(namein, CStringGetDatum(index.name)) : (Datum)0,
	                   good ? (Datum)0 : CStringGetTextDatum(psprintf("%s;", text.advice))};
	bool nulls[3] = {false, index.name == nullptr, good};
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

} // namespace

// foreman._expiry_advice(<expire_stale's arguments>, OUT batches, OUT
// index_name, OUT advice): how a run's batches go and which index serves
// them; advice is the CREATE INDEX to run, NULL when a partial index serves.
FOREMAN_FUNCTION(foreman_expiry_advice)
{
	Spec spec{};
	expiry_args(fcinfo, 0, 2, &spec);
	return advice_row(fcinfo, spec);
}

// foreman._purge_advice(<purge's arguments>, OUT batches, OUT index_name,
// OUT advice): the same for a purge; advice is NULL when any index serves.
FOREMAN_FUNCTION(foreman_purge_advice)
{
	Spec spec{};
	purge_args(fcinfo, 0, 3, &spec);
	return advice_row(fcinfo, spec);
}
