// run_write.cpp: the commonest bookkeeping writes - the start of a plain
// run and the end of a plain success - without a planned statement.
//
// Each run writes its job's row twice and its own row twice. As prepared
// statements (begin_plain_stmt in run_store.cpp, finish_plain_stmt in
// run_end.cpp) those writes cost about 40% of a sequential tier's CPU per
// run (test/bench/RESULTS.md), most of it the executor's per-execution
// set-up of plans for UPDATEs and INSERTs with sub-selects. Here the rows
// are found through their primary keys, locked as the statements lock them,
// and written with ExecSimpleRelationUpdate and ExecSimpleRelationInsert -
// the routines logical replication's apply worker writes rows with: the
// tables' constraints, stored generated columns, index entries (partial and
// expression indexes included) and row triggers all apply as for an UPDATE
// or INSERT. Only the plan is skipped.
//
// Same rows, same locks, same answers as the statements:
//   - a start: the job's row (taken by lock_for_starts in this transaction)
//     moves on only when its revision is the one loaded and it is enabled
//     (or a run_now request is consumed); the run's row gets the next value
//     of its identity;
//   - an end: the job's row is taken SKIP LOCKED (FOR UPDATE's lock mode):
//     when its owner holds it, the summary waits (summary_pending), as
//     before; the run's row is locked as an UPDATE locks it, waiting
//     (bounded by the bookkeeping's lock_timeout); a row that is gone (its
//     history trimmed) is not an error.
// A catalog this code does not recognise (a column missing, renamed, of
// another type, or one it does not know in job_run) makes it decline: the
// statement then runs instead. Only a 1.1 catalog comes here.
#include "bgw/run_store_detail.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

struct Column {
	const char *name;
	Oid type;
};

// The columns of foreman.job a start or an end changes or reads.
enum JobColumn { kJobId, kRevision, kEnabled, kNextRunAt, kRunRequestedAt, kRetryAt, kRetryAttempt, kLastStartedAt,
                 kOwnerName, kRetryChainId, kJobName, kOwner, kTierId, kLastRunId, kLastStatus, kLastFinishedAt,
                 kConsecutiveFailures, kRunsSucceeded, kLastSucceededAt, kJobColumns };
const Column kJobTable[kJobColumns] = {
	{"job_id", INT8OID},        {"revision", INT8OID},          {"enabled", BOOLOID},
	{"next_run_at", TIMESTAMPTZOID}, {"run_requested_at", TIMESTAMPTZOID}, {"retry_at", TIMESTAMPTZOID},
	{"retry_attempt", INT4OID}, {"last_started_at", TIMESTAMPTZOID}, {"owner_name", NAMEOID},
	{"retry_chain_id", INT8OID}, {"job_name", TEXTOID},         {"owner", OIDOID},
	{"tier_id", INT4OID},       {"last_run_id", INT8OID},       {"last_status", TEXTOID},
	{"last_finished_at", TIMESTAMPTZOID}, {"consecutive_failures", INT4OID}, {"runs_succeeded", INT8OID},
	{"last_succeeded_at", TIMESTAMPTZOID}};

// Every column of foreman.job_run: a start writes a new row whole (a
// column this code does not know, with a default it would not apply, makes
// it decline).
enum RunColumn { kRunId, kRunJobId, kRunJobName, kRunOwner, kRunTierId, kRunPid, kRunStatus, kRunReason, kRunAttempt,
                 kRunScheduledFor, kRunStartedAt, kRunFinishedAt, kRunDuration, kRunRows, kRunBatches, kRunCommandTag,
                 kRunSqlstate, kRunMessage, kRunSummaryPending, kRunOwnerName, kRunChainId, kRunColumns };
const Column kRunTable[kRunColumns] = {
	{"run_id", INT8OID},       {"job_id", INT8OID},          {"job_name", TEXTOID},
	{"owner", OIDOID},         {"tier_id", INT4OID},         {"pid", INT4OID},
	{"status", TEXTOID},       {"reason", TEXTOID},          {"attempt", INT4OID},
	{"scheduled_for", TIMESTAMPTZOID}, {"started_at", TIMESTAMPTZOID}, {"finished_at", TIMESTAMPTZOID},
	{"duration", INTERVALOID}, {"rows_affected", INT8OID},   {"batches", INT4OID},
	{"command_tag", TEXTOID},  {"sqlstate", TEXTOID},        {"message", TEXTOID},
	{"summary_pending", BOOLOID}, {"owner_name", NAMEOID},   {"chain_id", INT8OID}};

constexpr int kMaxColumns = 24;

// One of the two tables, as found in this database's catalog (the column
// numbers are looked up once per table oid, and checked at every use).
struct Table {
	const char *name;
	const char *pkey;
	const Column *columns;
	int ncolumns;
	Oid relid;
	Oid pkey_id;
	AttrNumber attnums[kMaxColumns];
};
Table run_table = {"job_run", "job_run_pkey", kRunTable, kRunColumns, InvalidOid, InvalidOid, {}};
Table job_table = {"job", "job_pkey", kJobTable, kJobColumns, InvalidOid, InvalidOid, {}};
// run_id's identity sequence, for run_table.relid.
Oid run_id_sequence = InvalidOid;
Oid run_id_sequence_of = InvalidOid;

// The table's oid and column numbers; false when it is not as expected.
bool
resolve(Table &t, Oid ns)
{
	Oid relid = get_relname_relid(t.name, ns);
	if (!OidIsValid(relid))
		return false;
	if (relid == t.relid)
		return true;
	t.relid = InvalidOid;
	t.pkey_id = get_relname_relid(t.pkey, ns);
	if (!OidIsValid(t.pkey_id))
		return false;
	for (int i = 0; i < t.ncolumns; i++) {
		t.attnums[i] = get_attnum(relid, t.columns[i].name);
		if (t.attnums[i] <= 0)
			return false;
	}
	t.relid = relid;
	return true;
}

// The opened table is a plain table that still has the columns (and
// types) resolve found. (Its primary key is searched on the first of them:
// an index on another column makes the scan an ERROR, not a wrong row.)
bool
still_matches(Relation rel, const Table &t)
{
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return false;
	TupleDesc desc = RelationGetDescr(rel);
	for (int i = 0; i < t.ncolumns; i++) {
		AttrNumber a = t.attnums[i];
		if (a > desc->natts)
			return false;
		Form_pg_attribute att = TupleDescAttr(desc, a - 1);
		if (att->attisdropped || att->atttypid != t.columns[i].type || strcmp(NameStr(att->attname), t.columns[i].name) != 0)
			return false;
	}
	return true;
}

// Every live column of the opened table is one of t's (then t describes a
// whole row).
bool
knows_every_column(Relation rel, const Table &t)
{
	TupleDesc desc = RelationGetDescr(rel);
	int live = 0;
	for (int a = 0; a < desc->natts; a++)
		live += TupleDescAttr(desc, a)->attisdropped ? 0 : 1;
	return live == t.ncolumns;
}

// Both tables opened, checked against what the caller will write; false
// (both closed again, to be looked up afresh next time) when they do not
// match.
bool
open_tables(Table &job, Table &run, bool whole_run_row, Relation *job_rel, Relation *run_rel)
{
	Oid ns = get_namespace_oid("foreman", true);
	if (!OidIsValid(ns) || !resolve(job, ns) || !resolve(run, ns))
		return false;
	*job_rel = table_open(job.relid, RowExclusiveLock);
	*run_rel = table_open(run.relid, RowExclusiveLock);
	if (still_matches(*job_rel, job) && still_matches(*run_rel, run) &&
	    (!whole_run_row || knows_every_column(*run_rel, run)))
		return true;
	table_close(*run_rel, RowExclusiveLock);
	table_close(*job_rel, RowExclusiveLock);
	job.relid = run.relid = InvalidOid;
	return false;
}

// The executor state the writes share, and the snapshot the statement
// would have had: this transaction's earlier commands, and what committed
// before now (READ COMMITTED).
EState *
begin_writes()
{
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	EState *estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = GetActiveSnapshot();
	AfterTriggerBeginQuery();
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

// The tid of the row whose first column (an int8 key) is key, visible to
// snapshot, through the primary key; false when there is none.
bool
find_row(Relation rel, const Table &t, int64 key, Snapshot snapshot, ItemPointer tid)
{
	ScanKeyData skey;
	ScanKeyInit(&skey, t.attnums[0], BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(key));
	SysScanDesc scan = systable_beginscan(rel, t.pkey_id, true, snapshot, 1, &skey);
	HeapTuple tuple = systable_getnext(scan);
	bool found = HeapTupleIsValid(tuple);
	if (found)
		*tid = tuple->t_self;
	systable_endscan(scan);
	return found;
}

// Locks the newest version of the row at tid into slot. Ok: locked; a
// row its holder keeps with SKIP LOCKED: WouldBlock; gone: Deleted.
TM_Result
lock_row(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
         LockWaitPolicy wait)
{
	TM_FailureData tmfd;
	TM_Result result =
	    table_tuple_lock(rel, tid, snapshot, slot, cid, mode, wait, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	switch (result) {
	case TM_Ok:
	case TM_WouldBlock:
	case TM_Deleted:
		return result;
	default:
		elog(ERROR, "pg_foreman: unexpected result %d locking a row of foreman.%s", (int)result,
		     RelationGetRelationName(rel));
	}
	pg_unreachable();
}

// A virtual copy of the locked row in old, for its new values.
TupleTableSlot *
copy_of(Relation rel, TupleTableSlot *old)
{
	TupleDesc desc = RelationGetDescr(rel);
	slot_getallattrs(old);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, old->tts_values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, old->tts_isnull, sizeof(bool) * desc->natts);
	return slot;
}

void
set(TupleTableSlot *slot, const Table &t, int column, Datum value, bool isnull = false)
{
	AttrNumber a = t.attnums[column];
	slot->tts_values[a - 1] = value;
	slot->tts_isnull[a - 1] = isnull;
}

Datum
get(TupleTableSlot *slot, const Table &t, int column, bool *isnull)
{
	AttrNumber a = t.attnums[column];
	*isnull = slot->tts_isnull[a - 1];
	return slot->tts_values[a - 1];
}

// A column of one row (from) into another's (to).
void
copy_column(TupleTableSlot *from, const Table &ft, int fcol, TupleTableSlot *to, const Table &tt, int tcol)
{
	bool isnull;
	Datum value = get(from, ft, fcol, &isnull);
	set(to, tt, tcol, value, isnull);
}

// row (locked, in old) updated to the values of new_values.
void
update_row(EState *estate, Relation rel, TupleTableSlot *old, TupleTableSlot *new_values)
{
	ExecStoreVirtualTuple(new_values);
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, nullptr, 0);
	ExecOpenIndices(rri, false);
	ExecSimpleRelationUpdate(rri, estate, nullptr, old, new_values);
	ExecCloseIndices(rri);
}

} // namespace

bool
finish_plain_direct(int64 run_id, int64 job_id, const RunOutcome &o, bool *done)
{
	Relation job_rel, run_rel;
	if (!open_tables(job_table, run_table, false, &job_rel, &run_rel))
		return false;
	EState *estate = begin_writes();
	Snapshot snapshot = estate->es_snapshot;

	// The job's row, unless its owner holds it.
	ItemPointerData tid;
	TupleTableSlot *job_old = table_slot_create(job_rel, nullptr);
	bool job_exists = false;
	bool job_locked = false;
	if (find_row(job_rel, job_table, job_id, snapshot, &tid)) {
		TM_Result r = lock_row(job_rel, &tid, snapshot, job_old, estate->es_output_cid, LockTupleExclusive,
		                       LockWaitSkip);
		job_exists = r != TM_Deleted;
		job_locked = r == TM_Ok;
	}
	// The run's row, waiting for whoever holds it (lock_timeout).
	TupleTableSlot *run_old = table_slot_create(run_rel, nullptr);
	bool run_found = false;
	if (find_row(run_rel, run_table, run_id, snapshot, &tid))
		run_found = lock_row(run_rel, &tid, snapshot, run_old, estate->es_output_cid, LockTupleNoKeyExclusive,
		                     LockWaitBlock) == TM_Ok;

	Datum finished = TimestampTzGetDatum(o.finished_at);
	if (job_locked) {
		TupleTableSlot *job_new = copy_of(job_rel, job_old);
		bool isnull;
		Datum succeeded = get(job_old, job_table, kRunsSucceeded, &isnull);
		set(job_new, job_table, kLastRunId, Int64GetDatum(run_id));
		set(job_new, job_table, kLastStatus, CStringGetTextDatum("succeeded"));
		set(job_new, job_table, kLastFinishedAt, finished);
		if (o.started_at != 0)
			set(job_new, job_table, kLastStartedAt, TimestampTzGetDatum(o.started_at));
		set(job_new, job_table, kConsecutiveFailures, Int32GetDatum(0));
		set(job_new, job_table, kRunsSucceeded, Int64GetDatum(isnull ? 1 : DatumGetInt64(succeeded) + 1));
		set(job_new, job_table, kLastSucceededAt, finished);
		update_row(estate, job_rel, job_old, job_new);
		ExecDropSingleTupleTableSlot(job_new);
	}
	bool summary_pending = !job_locked && job_exists;
	if (run_found) {
		TupleTableSlot *run_new = copy_of(run_rel, run_old);
		bool isnull = false;
		Datum started = o.started_at != 0 ? TimestampTzGetDatum(o.started_at) : get(run_old, run_table, kRunStartedAt, &isnull);
		set(run_new, run_table, kRunStatus, CStringGetTextDatum("succeeded"));
		set(run_new, run_table, kRunFinishedAt, finished);
		set(run_new, run_table, kRunStartedAt, started);
		set(run_new, run_table, kRunRows, Int64GetDatum((int64)o.rows));
		set(run_new, run_table, kRunCommandTag, o.command_tag ? CStringGetTextDatum(o.command_tag) : (Datum)0,
		    o.command_tag == nullptr);
		set(run_new, run_table, kRunBatches, Int32GetDatum(o.batches), o.batches < 0);
		set(run_new, run_table, kRunSummaryPending, BoolGetDatum(summary_pending));
		// The stored generated column, as its expression (finished_at -
		// started_at) computes it (PostgreSQL recomputes it too where it can
		// tell the update touches its inputs).
		set(run_new, run_table, kRunDuration, DirectFunctionCall2(timestamp_mi, finished, started));
		update_row(estate, run_rel, run_old, run_new);
		ExecDropSingleTupleTableSlot(run_new);
	}

	ExecDropSingleTupleTableSlot(run_old);
	ExecDropSingleTupleTableSlot(job_old);
	end_writes(estate, job_rel, run_rel);
	// As finish_plain_stmt answers: done unless the summary waits for the
	// job's row (a run whose row is gone has nothing left to record).
	*done = !run_found || !summary_pending;
	return true;
}

bool
begin_plain_direct(int64 job_id, int64 revision, const RunStart &start, const char *owner_name, int64 *run_id)
{
	*run_id = 0;
	Relation job_rel, run_rel;
	if (!open_tables(job_table, run_table, true, &job_rel, &run_rel))
		return false;
	if (run_id_sequence_of != run_table.relid) {
		run_id_sequence = pg::compat::identity_sequence(run_rel, run_table.attnums[kRunId]);
		run_id_sequence_of = OidIsValid(run_id_sequence) ? run_table.relid : InvalidOid;
	}
	if (!OidIsValid(run_id_sequence)) {
		table_close(run_rel, RowExclusiveLock);
		table_close(job_rel, RowExclusiveLock);
		return false;
	}
	EState *estate = begin_writes();
	Snapshot snapshot = estate->es_snapshot;
	const Table &j = job_table;
	const Table &r = run_table;

	// The job's row: lock_for_starts took it in this transaction; the lock
	// an UPDATE takes is then ours at once. Its newest version must still be
	// the one loaded (revision), and enabled unless a run_now request runs it.
	ItemPointerData tid;
	TupleTableSlot *job_old = table_slot_create(job_rel, nullptr);
	bool moves = false;
	if (find_row(job_rel, j, job_id, snapshot, &tid) &&
	    lock_row(job_rel, &tid, snapshot, job_old, estate->es_output_cid, LockTupleNoKeyExclusive, LockWaitBlock) ==
	        TM_Ok) {
		slot_getallattrs(job_old);
		bool isnull;
		Datum rev = get(job_old, j, kRevision, &isnull);
		Datum enabled = get(job_old, j, kEnabled, &isnull);
		moves = DatumGetInt64(rev) == revision && (start.clear_request || (!isnull && DatumGetBool(enabled)));
	}
	if (moves) {
		TupleTableSlot *job_new = copy_of(job_rel, job_old);
		set(job_new, j, kNextRunAt, TimestampTzGetDatum(start.next_run_at), !start.has_next);
		if (start.clear_request)
			set(job_new, j, kRunRequestedAt, (Datum)0, true);
		set(job_new, j, kRetryAt, (Datum)0, true);
		set(job_new, j, kRetryAttempt, Int32GetDatum(0));
		set(job_new, j, kLastStartedAt, TimestampTzGetDatum(start.started_at));
		NameData name;
		if (owner_name) {
			namestrcpy(&name, owner_name);
			set(job_new, j, kOwnerName, NameGetDatum(&name));
		}
		set(job_new, j, kRetryChainId, (Datum)0, true);
		update_row(estate, job_rel, job_old, job_new);

		// The run's row, whole: what the statement's INSERT would write.
		TupleDesc desc = RelationGetDescr(run_rel);
		TupleTableSlot *row = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
		ExecClearTuple(row);
		for (int a = 0; a < desc->natts; a++) {
			row->tts_values[a] = (Datum)0;
			row->tts_isnull[a] = true;
		}
		int64 id = nextval_internal(run_id_sequence, false);
		set(row, r, kRunId, Int64GetDatum(id));
		set(row, r, kRunJobId, Int64GetDatum(job_id));
		copy_column(job_new, j, kJobName, row, r, kRunJobName);
		copy_column(job_new, j, kOwner, row, r, kRunOwner);
		copy_column(job_new, j, kOwnerName, row, r, kRunOwnerName);
		copy_column(job_new, j, kTierId, row, r, kRunTierId);
		set(row, r, kRunPid, Int32GetDatum(MyProcPid), start.for_executor);
		set(row, r, kRunStatus, CStringGetTextDatum("running"));
		set(row, r, kRunAttempt, Int32GetDatum(start.attempt));
		set(row, r, kRunScheduledFor, TimestampTzGetDatum(start.scheduled_for));
		set(row, r, kRunStartedAt, TimestampTzGetDatum(start.started_at));
		set(row, r, kRunSummaryPending, BoolGetDatum(false));
		ExecStoreVirtualTuple(row);
		ResultRelInfo *rri = makeNode(ResultRelInfo);
		InitResultRelInfo(rri, run_rel, 0, nullptr, 0);
		ExecOpenIndices(rri, false);
		ExecSimpleRelationInsert(rri, estate, row);
		ExecCloseIndices(rri);
		ExecDropSingleTupleTableSlot(row);
		ExecDropSingleTupleTableSlot(job_new);
		*run_id = id;
	}
	ExecDropSingleTupleTableSlot(job_old);
	end_writes(estate, job_rel, run_rel);
	return true;
}

} // namespace foreman::bgw
