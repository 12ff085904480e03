// run_write.cpp: the commonest bookkeeping writes - the start of a run
// outside a pipeline (with the row of fire times folded into it), the end
// of a plain success and an executor's claim of a run - without a planned
// statement.
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
// or INSERT. Only the plan is skipped. The CHECK constraints, WHEN
// conditions and partial-index predicates those routines would read from
// the catalog and plan again for every row are planned once and kept
// (pg/expr_cache.hpp); each write compiles them into its own executor
// state.
//
// Same rows, same locks, same answers as the statements:
//   - a start: the job's row (taken by lock_for_starts in this transaction)
//     moves on only when its revision is the one loaded and it is enabled
//     (or a run_now request is consumed); the run's row gets the next value
//     of its identity; fire times folded into the run (coalesced, beyond the
//     catch-up limit) get their 'skipped' row first, and the job's
//     runs_skipped counts it, as begin_run_stmt writes them;
//   - an end: the job's row is taken SKIP LOCKED (FOR UPDATE's lock mode):
//     when its owner holds it, the summary waits (summary_pending), as
//     before; the run's row is locked as an UPDATE locks it, waiting
//     (bounded by the bookkeeping's lock_timeout); a row that is gone (its
//     history trimmed) is not an error;
//   - a claim: the run's row is locked as an UPDATE locks it and gets the
//     executor's pid only while its newest version is still 'running' with
//     no process (as the statement's WHERE, checked again on the newest
//     version); what the run needs of its job, its tier and its downstreams
//     is read with the same snapshot.
// A catalog this code does not recognise (a column missing, renamed, of
// another type, or one it does not know in job_run) makes it decline: the
// statement then runs instead. Only a 1.1 catalog comes here.
#include "bgw/row_writes.hpp"
#include "bgw/run_store_detail.hpp"
#include "pg/roles.hpp"

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
#include "utils/numeric.h"
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
                 kConsecutiveFailures, kRunsSucceeded, kLastSucceededAt, kRunsSkipped, kJobColumns };
const Column kJobTable[kJobColumns] = {
	{"job_id", INT8OID},        {"revision", INT8OID},          {"enabled", BOOLOID},
	{"next_run_at", TIMESTAMPTZOID}, {"run_requested_at", TIMESTAMPTZOID}, {"retry_at", TIMESTAMPTZOID},
	{"retry_attempt", INT4OID}, {"last_started_at", TIMESTAMPTZOID}, {"owner_name", NAMEOID},
	{"retry_chain_id", INT8OID}, {"job_name", TEXTOID},         {"owner", OIDOID},
	{"tier_id", INT4OID},       {"last_run_id", INT8OID},       {"last_status", TEXTOID},
	{"last_finished_at", TIMESTAMPTZOID}, {"consecutive_failures", INT4OID}, {"runs_succeeded", INT8OID},
	{"last_succeeded_at", TIMESTAMPTZOID}, {"runs_skipped", INT8OID}};

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

// What an executor's claim reads of foreman.job, foreman.tier and
// foreman.job_dependency (the first column of each: the key its index is
// searched on).
enum ClaimJobColumn { kCjJobId, kCjJobName, kCjOwner, kCjCommand, kCjTimeout, kCjLogRuns, kCjNotify, kCjTierId,
                      kClaimJobColumns };
const Column kClaimJobTable[kClaimJobColumns] = {
	{"job_id", INT8OID},   {"job_name", TEXTOID}, {"owner", OIDOID},  {"command", TEXTOID},
	{"timeout", INTERVALOID}, {"log_runs", TEXTOID}, {"notify", TEXTOID}, {"tier_id", INT4OID}};
enum TierColumn { kTrTierId, kTrDefaultTimeout, kTrMaxUserRuntime, kTierColumns };
const Column kTierTable[kTierColumns] = {
	{"tier_id", INT4OID}, {"default_timeout", INTERVALOID}, {"max_user_runtime", INTERVALOID}};
const Column kDependencyTable[1] = {{"upstream_id", INT8OID}};

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
Table claim_job_table = {"job", "job_pkey", kClaimJobTable, kClaimJobColumns, InvalidOid, InvalidOid, {}};
Table tier_table = {"tier", "tier_pkey", kTierTable, kTierColumns, InvalidOid, InvalidOid, {}};
Table dependency_table = {"job_dependency", "job_dependency_upstream_idx", kDependencyTable, 1, InvalidOid,
                          InvalidOid, {}};
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

// A table to open, with the lock its statement takes; whole: it must also
// have no live column t does not know (a write of a whole row).
struct Opening {
	Table *table;
	LOCKMODE mode;
	bool whole;
};

// The tables opened, each checked against what the caller will read or
// write; false (all closed again, to be looked up afresh next time) when
// one does not match.
bool
open_checked(const Opening *want, int n, Relation *rels)
{
	Oid ns = get_namespace_oid("foreman", true);
	if (!OidIsValid(ns))
		return false;
	for (int i = 0; i < n; i++)
		if (!resolve(*want[i].table, ns))
			return false;
	bool ok = true;
	for (int i = 0; i < n; i++) {
		const Opening &w = want[i];
		rels[i] = table_open(w.table->relid, w.mode);
		ok = ok && still_matches(rels[i], *w.table) && (!w.whole || knows_every_column(rels[i], *w.table));
	}
	if (ok)
		return true;
	for (int i = n - 1; i >= 0; i--) {
		table_close(rels[i], want[i].mode);
		want[i].table->relid = InvalidOid;
	}
	return false;
}

// foreman.job and foreman.job_run, as a start or an end writes them.
bool
open_tables(bool whole_run_row, Relation *job_rel, Relation *run_rel)
{
	const Opening want[2] = {{&job_table, RowExclusiveLock, false}, {&run_table, RowExclusiveLock, whole_run_row}};
	Relation rels[2];
	if (!open_checked(want, 2, rels))
		return false;
	*job_rel = rels[0];
	*run_rel = rels[1];
	return true;
}

// The row whose first column is key (compared with eq), visible to
// snapshot, through the table's index on that column: its tid, and a copy
// of it in copy when given. False when there is none.
bool
find_row_by(Relation rel, const Table &t, Datum key, RegProcedure eq, Snapshot snapshot, ItemPointer tid,
            TupleTableSlot *copy = nullptr)
{
	ScanKeyData skey;
	ScanKeyInit(&skey, t.attnums[0], BTEqualStrategyNumber, eq, key);
	SysScanDesc scan = systable_beginscan(rel, t.pkey_id, true, snapshot, 1, &skey);
	HeapTuple tuple = systable_getnext(scan);
	bool found = HeapTupleIsValid(tuple);
	if (found) {
		*tid = tuple->t_self;
		if (copy)
			ExecStoreHeapTuple(heap_copytuple(tuple), copy, true);
	}
	systable_endscan(scan);
	return found;
}

// The tid of the row whose first column (an int8 key) is key, visible to
// snapshot, through the primary key; false when there is none.
bool
find_row(Relation rel, const Table &t, int64 key, Snapshot snapshot, ItemPointer tid)
{
	return find_row_by(rel, t, Int64GetDatum(key), F_INT8EQ, snapshot, tid);
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

// A new row of foreman.job_run for a job (its row as the start leaves it in
// job_row): the next run_id, the job's name, owner and tier, no pending
// summary, every other column NULL - the caller sets the run's own.
TupleTableSlot *
new_run_row(Relation run_rel, int64 job_id, TupleTableSlot *job_row)
{
	const Table &r = run_table;
	const Table &j = job_table;
	TupleDesc desc = RelationGetDescr(run_rel);
	TupleTableSlot *row = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ExecClearTuple(row);
	for (int a = 0; a < desc->natts; a++) {
		row->tts_values[a] = (Datum)0;
		row->tts_isnull[a] = true;
	}
	set(row, r, kRunId, Int64GetDatum(nextval_internal(run_id_sequence, false)));
	set(row, r, kRunJobId, Int64GetDatum(job_id));
	copy_column(job_row, j, kJobName, row, r, kRunJobName);
	copy_column(job_row, j, kOwner, row, r, kRunOwner);
	copy_column(job_row, j, kOwnerName, row, r, kRunOwnerName);
	copy_column(job_row, j, kTierId, row, r, kRunTierId);
	set(row, r, kRunSummaryPending, BoolGetDatum(false));
	return row;
}

// An interval in milliseconds, as (extract(epoch FROM i) * 1000)::int8
// computes it.
int64
interval_ms(Datum interval)
{
	Datum epoch = DirectFunctionCall2(extract_interval, CStringGetTextDatum("epoch"), interval);
	Datum ms = DirectFunctionCall2(numeric_mul, epoch, NumericGetDatum(int64_to_numeric(1000)));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, ms));
}

// A text column of a row, as a C string in the current memory context.
char *
text_of(TupleTableSlot *slot, const Table &t, int column)
{
	bool isnull;
	Datum value = get(slot, t, column, &isnull);
	return isnull ? nullptr : TextDatumGetCString(value);
}

} // namespace

bool
finish_plain_direct(int64 run_id, int64 job_id, const RunOutcome &o, bool *done)
{
	Relation job_rel, run_rel;
	if (!open_tables(false, &job_rel, &run_rel))
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
	if (!open_tables(true, &job_rel, &run_rel))
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
	StartWriters writers{};
	bool shared = shares_start_writes(job_rel, run_rel);
	EState *estate = shared ? begin_start_write(job_rel, run_rel, &writers) : begin_writes();
	ResultRelInfo *job_writer = writers.job_update;
	ResultRelInfo *run_writer = writers.run_insert;
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
		if (start.folded_reason) {
			bool isnull;
			Datum skipped = get(job_old, j, kRunsSkipped, &isnull);
			set(job_new, j, kRunsSkipped, Int64GetDatum(isnull ? 1 : DatumGetInt64(skipped) + 1));
		}
		update_row(estate, job_rel, job_old, job_new, job_writer);

		// The fire times folded into the run: one 'skipped' row, before the
		// run's (the statement's UNION ALL writes it first).
		if (start.folded_reason) {
			TupleTableSlot *skipped = new_run_row(run_rel, job_id, job_new);
			Datum now = TimestampTzGetDatum(GetCurrentTimestamp());
			set(skipped, r, kRunPid, Int32GetDatum(MyProcPid), start.for_executor);
			set(skipped, r, kRunStatus, CStringGetTextDatum("skipped"));
			set(skipped, r, kRunReason, CStringGetTextDatum(start.folded_reason));
			set(skipped, r, kRunMessage, start.folded_message ? CStringGetTextDatum(start.folded_message) : (Datum)0,
			    start.folded_message == nullptr);
			set(skipped, r, kRunAttempt, Int32GetDatum(1));
			set(skipped, r, kRunScheduledFor, TimestampTzGetDatum(start.folded_from));
			set(skipped, r, kRunStartedAt, now);
			set(skipped, r, kRunFinishedAt, now);
			insert_row(estate, run_rel, skipped, run_writer);
			ExecDropSingleTupleTableSlot(skipped);
		}
		// The run's row, whole: what the statement's INSERT would write.
		TupleTableSlot *row = new_run_row(run_rel, job_id, job_new);
		bool isnull;
		int64 id = DatumGetInt64(get(row, r, kRunId, &isnull));
		set(row, r, kRunPid, Int32GetDatum(MyProcPid), start.for_executor);
		set(row, r, kRunStatus, CStringGetTextDatum("running"));
		set(row, r, kRunAttempt, Int32GetDatum(start.attempt));
		set(row, r, kRunScheduledFor, TimestampTzGetDatum(start.scheduled_for));
		set(row, r, kRunStartedAt, TimestampTzGetDatum(start.started_at));
		insert_row(estate, run_rel, row, run_writer);
		ExecDropSingleTupleTableSlot(row);
		ExecDropSingleTupleTableSlot(job_new);
		*run_id = id;
	}
	ExecDropSingleTupleTableSlot(job_old);
	if (shared)
		end_start_write(job_rel, run_rel);
	else
		end_writes(estate, job_rel, run_rel);
	return true;
}

bool
claim_run_direct(int64 run_id, MemoryContext into, Claim *claim)
{
	*claim = Claim{};
	// job_run's row is updated; the others are read.
	const Opening want[4] = {{&run_table, RowExclusiveLock, false},
	                         {&claim_job_table, AccessShareLock, false},
	                         {&tier_table, AccessShareLock, false},
	                         {&dependency_table, AccessShareLock, false}};
	Relation rels[4];
	if (!open_checked(want, 4, rels))
		return false;
	Relation run_rel = rels[0], job_rel = rels[1], tier_rel = rels[2], dep_rel = rels[3];
	EState *estate = begin_writes();
	Snapshot snapshot = estate->es_snapshot;

	// The run's row, as the statement's UPDATE finds and locks it; claimed
	// only while its newest version is still 'running' with no process.
	ItemPointerData tid;
	TupleTableSlot *run_old = table_slot_create(run_rel, nullptr);
	int64 job_id = 0;
	if (find_row(run_rel, run_table, run_id, snapshot, &tid) &&
	    lock_row(run_rel, &tid, snapshot, run_old, estate->es_output_cid, LockTupleNoKeyExclusive, LockWaitBlock) ==
	        TM_Ok) {
		slot_getallattrs(run_old);
		bool status_null, pid_null, job_null;
		Datum status = get(run_old, run_table, kRunStatus, &status_null);
		(void)get(run_old, run_table, kRunPid, &pid_null);
		Datum job = get(run_old, run_table, kRunJobId, &job_null);
		if (!status_null && pid_null && !job_null && strcmp(TextDatumGetCString(status), "running") == 0) {
			TupleTableSlot *run_new = copy_of(run_rel, run_old);
			set(run_new, run_table, kRunPid, Int32GetDatum(MyProcPid));
			update_row(estate, run_rel, run_old, run_new);
			ExecDropSingleTupleTableSlot(run_new);
			claim->claimed = true;
			job_id = DatumGetInt64(job);
		}
	}
	ExecDropSingleTupleTableSlot(run_old);
	// An executor's warm-up (run id 0, no row): the index scans of a claim,
	// so that its first run does not build their caches after its due time.
	if (run_id == 0) {
		(void)find_row_by(job_rel, claim_job_table, Int64GetDatum(0), F_INT8EQ, snapshot, &tid);
		(void)find_row_by(tier_rel, tier_table, Int32GetDatum(0), F_INT4EQ, snapshot, &tid);
		(void)find_row_by(dep_rel, dependency_table, Int64GetDatum(0), F_INT8EQ, snapshot, &tid);
	}

	// What the run needs of its job and its tier (none: the job was
	// unscheduled meanwhile), and whether other jobs run after it.
	if (claim->claimed) {
		TupleTableSlot *job_row = MakeSingleTupleTableSlot(RelationGetDescr(job_rel), &TTSOpsHeapTuple);
		TupleTableSlot *tier_row = MakeSingleTupleTableSlot(RelationGetDescr(tier_rel), &TTSOpsHeapTuple);
		bool isnull;
		if (find_row_by(job_rel, claim_job_table, Int64GetDatum(job_id), F_INT8EQ, snapshot, &tid, job_row)) {
			slot_getallattrs(job_row);
			Datum tier_id = get(job_row, claim_job_table, kCjTierId, &isnull);
			if (!isnull &&
			    find_row_by(tier_rel, tier_table, tier_id, F_INT4EQ, snapshot, &tid, tier_row)) {
				slot_getallattrs(tier_row);
				MemoryContext old = MemoryContextSwitchTo(into);
				DueJob *job = static_cast<DueJob *>(palloc0(sizeof(DueJob)));
				job->job_id = job_id;
				job->job_name = text_of(job_row, claim_job_table, kCjJobName);
				job->owner = DatumGetObjectId(get(job_row, claim_job_table, kCjOwner, &isnull));
				job->owner_status = pg::owner_status(job->owner);
				job->command = text_of(job_row, claim_job_table, kCjCommand);
				Datum timeout = get(job_row, claim_job_table, kCjTimeout, &isnull);
				if (isnull)
					timeout = get(tier_row, tier_table, kTrDefaultTimeout, &isnull);
				job->timeout_ms = isnull ? 0 : interval_ms(timeout);
				Datum cap = get(tier_row, tier_table, kTrMaxUserRuntime, &isnull);
				apply_tier_cap(job, isnull ? 0 : interval_ms(cap));
				job->log_runs = log_runs_of(text_of(job_row, claim_job_table, kCjLogRuns));
				job->notify = notify_of(text_of(job_row, claim_job_table, kCjNotify));
				job->has_downstreams =
				    find_row_by(dep_rel, dependency_table, Int64GetDatum(job_id), F_INT8EQ, snapshot, &tid);
				MemoryContextSwitchTo(old);
				claim->job = job;
			}
		}
		ExecDropSingleTupleTableSlot(tier_row);
		ExecDropSingleTupleTableSlot(job_row);
	}

	table_close(dep_rel, NoLock);
	table_close(tier_rel, NoLock);
	end_writes(estate, job_rel, run_rel);
	return true;
}

} // namespace foreman::bgw
