// maintenance_batch.cpp: one batch of expiry or purge - its statement, its
// parameters, and where the next batch of a run goes on - and the functions
// that run one: foreman.expire_stale and foreman.purge (a batch on its own,
// oldest first) and foreman._expiry_batch and foreman._purge_batch (the
// batches of a run of foreman.run_maintenance, each after the last).
//
// Everything runs with the caller's privileges; only a row count and the
// resume point come back, never a row.
#include "api/maintenance.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

#include <string>

namespace foreman::api {

namespace {

// The parameters of expiry's statement before the resume point ($1 set_status,
// $2 terminal statuses, $3 older_than, $4 batch_size) and of purge's ($1
// older_than, $2 batch_size); then the resume point: the keyset's values or
// the sweep's two ctids.
constexpr int kExpiryParams = 4;
constexpr int kPurgeParams = 2;
constexpr int kMaxParams = kExpiryParams + INDEX_MAX_KEYS + 1;

// Where a run's next batch goes on, as foreman.run_maintenance carries it from
// batch to batch (a text[] it does not look into):
//   {keyset, <timestamp>, <key>...}       after the last (timestamp, key) locked
//   {sweep, <block>, <end>, <blocks>}     the range of <blocks> blocks from <block>,
//                                         never past the block the table ended at
//                                         when the run began
// NULL: the run's first batch. A batch returns NULL when the run is done.
struct Resume {
	bool first;
	core::BatchScan scan; // Keyset or Sweep
	char *values[INDEX_MAX_KEYS + 1];
	BlockNumber block;
	BlockNumber end;
	BlockNumber blocks;
};

// A statement ready to run, and what it is.
struct Batch {
	core::BatchShape shape;
	char *sql;
	int nparams;
	Oid types[kMaxParams];
	Datum values[kMaxParams];
	char nulls[kMaxParams + 1];
};

// What a batch did, and for a keyset the last (timestamp, key) it locked, as text.
struct Outcome {
	int64 changed;
	int64 locked;
	bool has_last;
	char *last[INDEX_MAX_KEYS + 1];
};

// Values cross from batch to batch as text: written and read with DateStyle
// ISO and exact floats, so no session setting can change them on the way.
int
exact_text_begin()
{
	int level = NewGUCNestLevel();
	(void)set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void)set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

[[noreturn]] void
bad_resume(const char *why)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid resume point: %s", why),
	                errhint("Pass NULL for the first batch of a run, then what the previous batch returned.")));
}

BlockNumber
block_number(const char *text)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || n > MaxBlockNumber)
		bad_resume("not a block number");
	return (BlockNumber)n;
}

// Reads argument n (text[] or NULL) as a resume point for this target.
Resume
resume_arg(FunctionCallInfo fcinfo, int n, const Target &target)
{
	Resume r{};
	r.first = PG_ARGISNULL(n);
	if (r.first)
		return r;
	Datum *elems;
	bool *nulls;
	int count;
	ArrayType *array = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(array) != 1)
		bad_resume("not a list");
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	for (int i = 0; i < count; i++)
		if (nulls[i])
			bad_resume("a null element");
	const char *kind = count > 0 ? TextDatumGetCString(elems[0]) : "";
	if (strcmp(kind, "keyset") == 0 && count == target.norder + 1) {
		r.scan = core::BatchScan::Keyset;
		for (int i = 0; i < target.norder; i++)
			r.values[i] = TextDatumGetCString(elems[i + 1]);
	} else if (strcmp(kind, "sweep") == 0 && count == 4 && target.by_ctid) {
		r.scan = core::BatchScan::Sweep;
		r.block = block_number(TextDatumGetCString(elems[1]));
		r.end = block_number(TextDatumGetCString(elems[2]));
		r.blocks = block_number(TextDatumGetCString(elems[3]));
		if (r.blocks < 1)
			bad_resume("a range of no blocks");
	} else
		bad_resume("it is not one this table's batches can go on from");
	return r;
}

// The scan of a run's first batch: in timestamp order when an index serves
// it, else a sweep of the heap (when ctids name rows), else the same keyset
// as with an index (each batch then reads the whole table).
core::BatchScan
first_scan(const Spec &spec, const Target &target)
{
	AdviceText text{};
	build_advice_text(spec, target, &text);
	if (find_serving_index(target, text).serves || !target.by_ctid)
		return core::BatchScan::Keyset;
	return core::BatchScan::Sweep;
}

// The block a sweep's range ends before.
BlockNumber
range_end(const Resume &r)
{
	return (BlockNumber)Min((uint64)r.block + r.blocks, (uint64)r.end);
}

// A sweep's first range: from the first block to where the table ends now,
// as many blocks as batch_size rows would fill if they were all stale.
void
first_range(const Spec &spec, const Target &target, Resume *r)
{
	Relation rel = relation_open(target.relid, AccessShareLock);
	r->block = 0;
	r->end = RelationGetNumberOfBlocks(rel);
	double per_block = rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples > 0
	                       ? rel->rd_rel->reltuples / rel->rd_rel->relpages
	                       : 50;
	relation_close(rel, NoLock);
	r->blocks = (BlockNumber)Max(1.0, spec.batch_size / Max(per_block, 1.0));
}

// The next range: the same again, half as long, when the batch stopped at
// its limit (the rows it changed are no longer stale, so nothing is done
// twice, and a row whose newer version another session made meanwhile cannot
// move the range past rows not yet seen); else the next one, as long as
// 80% of batch_size stale rows took here, at most twice this one.
Resume
next_range(const Spec &spec, const Resume &r, int64 locked)
{
	Resume next = r;
	if (locked >= spec.batch_size) {
		next.blocks = Max(1, r.blocks / 2);
		return next;
	}
	next.block = range_end(r);
	double want = locked > 0 ? r.blocks * 0.8 * spec.batch_size / locked : 2.0 * r.blocks;
	next.blocks = (BlockNumber)Max(1.0, Min(want, 2.0 * r.blocks));
	next.blocks = (BlockNumber)Min((uint64)next.blocks, (uint64)MaxBlockNumber / 2);
	return next;
}

void
add_param(Batch *b, Oid type, Datum value, bool isnull = false)
{
	b->types[b->nparams] = type;
	b->values[b->nparams] = value;
	b->nulls[b->nparams] = isnull ? 'n' : ' ';
	b->nparams++;
	b->nulls[b->nparams] = '\0';
}

void
add_base_params(const Spec &spec, const Target &target, Batch *b)
{
	if (spec.kind == Kind::Expiry) {
		int16 len;
		bool byval;
		char align;
		get_typlenbyvalalign(target.status_type, &len, &byval, &align);
		Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (target.nterminal + 1)));
		for (int i = 0; i < target.nterminal; i++)
			elems[i] = status_datum(target.status_type, target.terminal[i]);
		add_param(b, target.status_type, status_datum(target.status_type, spec.set_status));
		add_param(b, get_array_type(target.status_type),
		          PointerGetDatum(construct_array(elems, target.nterminal, target.status_type, len, byval, align)));
	}
	add_param(b, INTERVALOID, IntervalPGetDatum(const_cast<Interval *>(&spec.older_than)));
	add_param(b, INT4OID, Int32GetDatum(spec.batch_size));
}

void
add_resume_params(const Target &target, const Resume &r, Batch *b)
{
	if (r.scan == core::BatchScan::Sweep) {
		ItemPointer first = static_cast<ItemPointer>(palloc(sizeof(ItemPointerData)));
		ItemPointer before = static_cast<ItemPointer>(palloc(sizeof(ItemPointerData)));
		ItemPointerSet(first, r.block, 0);
		ItemPointerSet(before, range_end(r), 0);
		add_param(b, TIDOID, PointerGetDatum(first));
		add_param(b, TIDOID, PointerGetDatum(before));
		return;
	}
	int level = exact_text_begin();
	for (int i = 0; i < target.norder; i++) {
		Oid input;
		Oid ioparam;
		getTypeInputInfo(target.order_types[i], &input, &ioparam);
		add_param(b, target.order_types[i], OidInputFunctionCall(input, r.values[i], ioparam, -1));
	}
	AtEOXact_GUC(true, level);
}

// The statement of a batch in `shape`, and its parameters.
void
build_batch(const Spec &spec, const Target &target, core::BatchShape shape, const Resume &r, Batch *out)
{
	out->shape = shape;
	pg::cpp_guard("maintenance", [&]() {
		core::BatchTarget t = batch_target(spec, target);
		std::string sql;
		if (spec.kind == Kind::Expiry)
			sql = core::ExpiryPlan(t, spec.status_column, is_keyword,
			                       target.status_in_key ? core::RowLock::Update : core::RowLock::NoKeyUpdate)
			          .batch_sql(shape);
		else
			sql = core::PurgePlan(t, is_keyword).batch_sql(shape);
		pg::pg_guard([&]() { out->sql = pstrdup(sql.c_str()); });
	});
	add_base_params(spec, target, out);
	if (shape.resume)
		add_resume_params(target, r, out);
}

void
planner_setting(const char *name, const char *value)
{
	(void)set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

// Runs a batch, as the caller. Settings for this statement only: by key, no
// hash or merge join (the change finds each row by a key lookup, never by
// scanning the table); a sweep reads the heap forward (a TID range scan,
// never an index, never a synchronized scan starting mid-table).
Outcome
run_batch(const Target &target, const Batch &b)
{
	MemoryContext caller = CurrentMemoryContext;
	int guc_level = NewGUCNestLevel();
	if (b.shape.match == core::RowMatch::Key) {
		planner_setting("enable_hashjoin", "off");
		planner_setting("enable_mergejoin", "off");
	}
	if (b.shape.scan == core::BatchScan::Sweep) {
		planner_setting("enable_indexscan", "off");
		planner_setting("enable_indexonlyscan", "off");
		planner_setting("enable_bitmapscan", "off");
		planner_setting("synchronize_seqscans", "off");
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	int rc = SPI_execute_with_args(b.sql, b.nparams, const_cast<Oid *>(b.types), const_cast<Datum *>(b.values),
	                               b.nulls, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_foreman: batch statement failed: %s", SPI_result_code_string(rc));
	Outcome out{};
	HeapTuple row = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	bool isnull;
	out.changed = DatumGetInt64(SPI_getbinval(row, desc, core::kResultChanged, &isnull));
	out.locked = DatumGetInt64(SPI_getbinval(row, desc, core::kResultLocked, &isnull));
	if (b.shape.scan == core::BatchScan::Keyset) {
		int level = exact_text_begin();
		for (int i = 0; i < target.norder; i++) {
			Datum value = SPI_getbinval(row, desc, core::kResultResume + i, &isnull);
			out.has_last = !isnull;
			if (isnull)
				break;
			Oid output;
			bool varlena;
			getTypeOutputInfo(target.order_types[i], &output, &varlena);
			out.last[i] = MemoryContextStrdup(caller, OidOutputFunctionCall(output, value));
		}
		AtEOXact_GUC(true, level);
	}
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	return out;
}

// The resume point after this batch, as text[]; NULL when the run is done:
// a keyset batch locked fewer rows than it could (it reached the end of the
// stale rows), a sweep's range reached the end.
Datum
next_resume(const Spec &spec, const Target &target, const Batch &b, const Resume &r, const Outcome &o, bool *isnull)
{
	Datum elems[INDEX_MAX_KEYS + 2];
	int n = 0;
	if (b.shape.scan == core::BatchScan::Sweep) {
		Resume next = next_range(spec, r, o.locked);
		*isnull = next.block >= next.end;
		if (*isnull)
			return (Datum)0;
		elems[n++] = CStringGetTextDatum("sweep");
		elems[n++] = CStringGetTextDatum(psprintf("%u", next.block));
		elems[n++] = CStringGetTextDatum(psprintf("%u", next.end));
		elems[n++] = CStringGetTextDatum(psprintf("%u", next.blocks));
	} else {
		*isnull = o.locked < spec.batch_size || !o.has_last;
		if (*isnull)
			return (Datum)0;
		elems[n++] = CStringGetTextDatum("keyset");
		for (int i = 0; i < target.norder; i++)
			elems[n++] = CStringGetTextDatum(o.last[i]);
	}
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

// A batch of a run: (changed bigint, resume text[]).
Datum
run_batch_of_run(FunctionCallInfo fcinfo, const Spec &spec, int resume_arg_no)
{
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_foreman: a batch of a run must return a row");
	Target target{};
	resolve_target(spec, TargetUse::Batch, &target);
	Resume r = resume_arg(fcinfo, resume_arg_no, target);
	if (r.first) {
		r.scan = first_scan(spec, target);
		if (r.scan == core::BatchScan::Sweep)
			first_range(spec, target, &r);
	}
	core::BatchShape shape{r.scan, target.by_ctid ? core::RowMatch::Ctid : core::RowMatch::Key,
	                       r.scan == core::BatchScan::Sweep || !r.first};
	Batch b{};
	build_batch(spec, target, shape, r, &b);
	Outcome o = run_batch(target, b);
	Datum values[2];
	bool nulls[2] = {false, false};
	values[0] = Int64GetDatum(o.changed);
	values[1] = next_resume(spec, target, b, r, o, &nulls[1]);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

// A batch on its own, oldest first: the rows changed.
int64
run_one_batch(const Spec &spec)
{
	Target target{};
	resolve_target(spec, TargetUse::Batch, &target);
	Batch b{};
	Resume none{};
	none.first = true;
	build_batch(spec, target,
	            {core::BatchScan::Oldest, target.by_ctid ? core::RowMatch::Ctid : core::RowMatch::Key, false}, none,
	            &b);
	return run_batch(target, b).changed;
}

} // namespace
} // namespace foreman::api

using namespace foreman::api;

FOREMAN_FUNCTION(foreman_expire_stale)
{
	Spec spec{};
	expiry_args(fcinfo, 0, 2, &spec);
	PG_RETURN_INT64(run_one_batch(spec));
}

FOREMAN_FUNCTION(foreman_purge)
{
	Spec spec{};
	purge_args(fcinfo, 0, 3, &spec);
	PG_RETURN_INT64(run_one_batch(spec));
}

// foreman._expiry_batch(<expire_stale's arguments>, resume text[], OUT
// changed bigint, OUT resume text[]): one batch of a run.
FOREMAN_FUNCTION(foreman_expiry_batch)
{
	Spec spec{};
	expiry_args(fcinfo, 0, 2, &spec);
	return run_batch_of_run(fcinfo, spec, 8);
}

// foreman._purge_batch(<purge's arguments>, resume text[], OUT changed
// bigint, OUT resume text[]): one batch of a run.
FOREMAN_FUNCTION(foreman_purge_batch)
{
	Spec spec{};
	purge_args(fcinfo, 0, 3, &spec);
	return run_batch_of_run(fcinfo, spec, 5);
}
