// expr_cache.hpp: the planned expression trees of a relation's CHECK
// constraints, row triggers' WHEN conditions and partial indexes'
// predicates, kept between statements and transactions for the writes
// that run_write.cpp makes without a plan.
//
// For each new ResultRelInfo the executor reads those expressions from
// their text in the catalog (stringToNode), plans them (expression_planner)
// and compiles them (ExecInitExpr) - once per statement. A write of one row
// is a statement, so a sequential tier paid that for every row it wrote:
// 17% of its coordinator's CPU in the throughput benchmark
// (test/bench/RESULTS.md). Here the planned tree is kept and only compiled
// again, into the statement's executor state, as a cached plan is: the
// compiled state (which may hold per-query hash tables) never outlives its
// statement.
//
// A kept tree is used only while it is the tree the executor would build:
// it is looked up by its relation (or index), the user planning it and its
// source (the catalog's text, or the index's predicate as the relcache has
// it). Any change to a relation it was taken from, or to a function, type
// or operator (an inlined SQL function, a folded constant) marks every
// kept tree stale; they are dropped at the next statement's start
// (expr_cache_begin_statement), never while a statement may run one.
// Each tree planned is logged at DEBUG1 ("pg_foreman: planned ... for
// reuse"), so a test can tell a kept tree from a new one.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "nodes/execnodes.h"
}

namespace foreman::pg {

// At the start of a statement's writes, with no executor state alive that
// runs a kept tree: drops the kept trees if anything marked them stale.
void expr_cache_begin_statement();

// Fills rri's CHECK constraints, and the WHEN conditions of its row
// triggers for `operation` (CMD_INSERT or CMD_UPDATE), with states
// compiled from kept trees, as ExecRelCheck and TriggerEnabled would have
// built them on first use. Call after InitResultRelInfo.
void expr_cache_prepare(ResultRelInfo *rri, EState *estate, CmdType operation);

// The same for the predicates of rri's partial indexes (as
// ExecInsertIndexTuples builds them). Call after ExecOpenIndices.
void expr_cache_prepare_indexes(ResultRelInfo *rri, EState *estate);

} // namespace foreman::pg
