// row_writes.cpp: the executor plumbing of run_write.cpp's direct writes
// (see row_writes.hpp).
#include "bgw/row_writes.hpp"

#include "pg/expr_cache.hpp"

extern "C" {
#include "access/table.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace foreman::bgw {

namespace {

// The starts recorded in one transaction (a batch of up to 64) share one
// executor state and, for each table, the ResultRelInfo of its write: the
// indexes opened, the CHECK constraints, WHEN conditions and index
// predicates compiled once per batch, as for the rows of one multi-row
// INSERT. Each start stays a statement of its own (its command id, its
// snapshot, its after-trigger query). The transaction's commit closes
// them (XACT_EVENT_PRE_COMMIT, before its resource owner checks for
// leaks); an abort forgets them (its memory and resource owner take them
// back). Only at the top level: in a subtransaction each start writes
// alone.
struct StartWrites {
	EState *estate;
	Relation job_rel; // a reference of their own, held to the end
	Relation run_rel;
	ResultRelInfo *job_update;
	ResultRelInfo *run_insert;
};
StartWrites *start_writes = nullptr; // while a transaction has them
bool start_writes_callback = false;

void
close_start_writes()
{
	StartWrites w = *start_writes;
	start_writes = nullptr;
	ExecCloseIndices(w.run_insert);
	ExecCloseIndices(w.job_update);
	ExecCloseResultRelations(w.estate);
	ExecResetTupleTable(w.estate->es_tupleTable, false);
	FreeExecutorState(w.estate);
	table_close(w.run_rel, NoLock);
	table_close(w.job_rel, NoLock);
}

void
start_writes_at(XactEvent event, void *)
{
	if (!start_writes)
		return;
	switch (event) {
	case XACT_EVENT_PRE_COMMIT:
	case XACT_EVENT_PARALLEL_PRE_COMMIT:
	case XACT_EVENT_PRE_PREPARE:
		close_start_writes();
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
		start_writes = nullptr;
		break;
	default:
		break;
	}
}

// A statement in estate: its command id, the snapshot it would have had
// (this transaction's earlier commands, what committed before now: READ
// COMMITTED) and its after-trigger query.
void
begin_statement(EState *estate)
{
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = GetActiveSnapshot();
	AfterTriggerBeginQuery();
}

} // namespace

// The executor state the writes share, and the snapshot the statement
// would have had: this transaction's earlier commands, and what committed
// before now (READ COMMITTED).
EState *
begin_writes()
{
	// Not while the starts' shared writers run kept trees.
	if (!start_writes)
		pg::expr_cache_begin_statement();
	EState *estate = CreateExecutorState();
	begin_statement(estate);
	return estate;
}

void
end_writes(EState *estate, Relation job_rel, Relation run_rel)
{
	AfterTriggerEndQuery(estate);
	ExecCloseResultRelations(estate);
	// The slots the executor made (a BEFORE UPDATE trigger's old row holds
	// a buffer pin), as ExecEndPlan would drop them.
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	PopActiveSnapshot();
	table_close(run_rel, NoLock);
	table_close(job_rel, NoLock);
	CommandCounterIncrement();
}

// Whether this start can share the transaction's writers.
bool
shares_start_writes(Relation job_rel, Relation run_rel)
{
	if (GetCurrentTransactionNestLevel() != 1)
		return false;
	if (start_writes && (RelationGetRelid(start_writes->job_rel) != RelationGetRelid(job_rel) ||
	                     RelationGetRelid(start_writes->run_rel) != RelationGetRelid(run_rel)))
		close_start_writes();
	return true;
}

// begin_writes for a start that shares the transaction's writers (made by
// the first start of the transaction).
EState *
begin_start_write(Relation job_rel, Relation run_rel, StartWriters *writers)
{
	if (!start_writes) {
		pg::expr_cache_begin_statement();
		if (!start_writes_callback) {
			RegisterXactCallback(start_writes_at, nullptr);
			start_writes_callback = true;
		}
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		EState *estate = CreateExecutorState();
		StartWrites *w = static_cast<StartWrites *>(MemoryContextAllocZero(estate->es_query_cxt, sizeof(StartWrites)));
		w->estate = estate;
		w->job_rel = table_open(RelationGetRelid(job_rel), NoLock);
		w->run_rel = table_open(RelationGetRelid(run_rel), NoLock);
		MemoryContextSwitchTo(old);
		start_writes = w;
		w->job_update = open_writer(estate, w->job_rel, CMD_UPDATE);
		w->run_insert = open_writer(estate, w->run_rel, CMD_INSERT);
	}
	writers->job_update = start_writes->job_update;
	writers->run_insert = start_writes->run_insert;
	EState *estate = start_writes->estate;
	begin_statement(estate);
	return estate;
}

// end_writes for a start that shares the transaction's writers: the slots
// the executor made are emptied (their buffer pins released), not dropped
// - the writers' trigger slots are among them.
void
end_start_write(Relation job_rel, Relation run_rel)
{
	EState *estate = start_writes->estate;
	AfterTriggerEndQuery(estate);
	ListCell *lc;
	foreach (lc, estate->es_tupleTable)
		ExecClearTuple(static_cast<TupleTableSlot *>(lfirst(lc)));
	ResetPerTupleExprContext(estate);
	estate->es_snapshot = InvalidSnapshot;
	PopActiveSnapshot();
	table_close(run_rel, NoLock);
	table_close(job_rel, NoLock);
	CommandCounterIncrement();
}

// What writes rows of rel by operation (CMD_UPDATE, CMD_INSERT), in
// estate's memory: its indexes open, its CHECK constraints, WHEN
// conditions and index predicates compiled from the kept trees.
ResultRelInfo *
open_writer(EState *estate, Relation rel, CmdType operation)
{
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, nullptr, 0);
	pg::expr_cache_prepare(rri, estate, operation);
	ExecOpenIndices(rri, false);
	pg::expr_cache_prepare_indexes(rri, estate);
	MemoryContextSwitchTo(old);
	return rri;
}

// row (locked, in old) updated to the values of new_values by writer (or,
// with none, by one of its own).
void
update_row(EState *estate, Relation rel, TupleTableSlot *old, TupleTableSlot *new_values, ResultRelInfo *writer)
{
	ExecStoreVirtualTuple(new_values);
	ResultRelInfo *rri = writer ? writer : open_writer(estate, rel, CMD_UPDATE);
	ExecSimpleRelationUpdate(rri, estate, nullptr, old, new_values);
	if (!writer)
		ExecCloseIndices(rri);
}

// row (virtual, every column set) inserted, with its index entries, by
// writer (or, with none, by one of its own).
void
insert_row(EState *estate, Relation rel, TupleTableSlot *row, ResultRelInfo *writer)
{
	ExecStoreVirtualTuple(row);
	ResultRelInfo *rri = writer ? writer : open_writer(estate, rel, CMD_INSERT);
	ExecSimpleRelationInsert(rri, estate, row);
	if (!writer)
		ExecCloseIndices(rri);
}

} // namespace foreman::bgw
