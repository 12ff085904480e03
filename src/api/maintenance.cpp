// maintenance.cpp: bounded maintenance. foreman.expire_stale and foreman.purge
// (one batch each), their scheduled forms, and the two hooks through which
// foreman.run_maintenance reports to its coordinator.
//
// The one-batch functions run with the caller's privileges (nothing here
// elevates): PostgreSQL itself enforces UPDATE/DELETE, column privileges and
// row-level security on the target. Names are resolved against the catalog,
// the statement is assembled by core::ExpiryPlan/PurgePlan, and every value
// travels as an SPI parameter. The scheduled forms validate the same way, then
// create an ordinary job (through foreman.schedule, as the caller) whose
// command is CALL foreman.run_maintenance(job_id), and store the arguments in
// foreman.maintenance.
#include "api/access.hpp"
#include "api/maintenance_filter.hpp"
#include "bgw/coordinator.hpp"
#include "core/error.hpp"
#include "core/maintenance_sql.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include <string>
#include <vector>

namespace foreman::api {

namespace {

enum class Kind { Expiry, Purge };

const char *
function_name(Kind kind)
{
	return kind == Kind::Expiry ? "foreman.expire_stale" : "foreman.purge";
}

// What the caller asked for, read from the arguments.
struct Spec {
	Kind kind;
	Oid relid;
	Interval older_than;
	const char *status_column;    // expiry only
	const char *timestamp_column;
	int nterminal;                // expiry only
	char **terminal;
	const char *set_status;       // expiry only
	int32 batch_size;
	const char *filter;           // NULL: none
};

// What validation derives: the statement, its parameters, and what index
// advice needs. Plain PostgreSQL data (palloc'd).
struct Prepared {
	char *relname;
	char *qualified;          // schema.table, quoted
	char *batch_sql;
	char *filter_check_sql;   // NULL without a filter
	char *advice;             // the CREATE INDEX that would serve the batch
	char *advice_check_sql;   // the batch's predicate with literals, to test indexes against
	AttrNumber timestamp_attnum;
	int nparams;
	Oid types[4];
	Datum values[4];
};

// PostgreSQL's own keyword list decides which names need quotes.
bool
is_keyword(std::string_view word)
{
	char buf[NAMEDATALEN];
	if (word.size() >= sizeof buf)
		return false;
	memcpy(buf, word.data(), word.size());
	buf[word.size()] = '\0';
	int kw = ScanKeywordLookup(buf, &ScanKeywords);
	return kw >= 0 && ScanKeywordCategories[kw] != UNRESERVED_KEYWORD;
}

bool
interval_negative(const Interval *i)
{
	Interval zero{};
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(const_cast<Interval *>(i)),
	                                         IntervalPGetDatum(&zero))) < 0;
}

bool
interval_positive(const Interval *i)
{
	Interval zero{};
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(const_cast<Interval *>(i)),
	                                         IntervalPGetDatum(&zero))) > 0;
}

// Arguments ---------------------------------------------------------------

Oid
required_regclass(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("target must not be null")));
	return PG_GETARG_OID(n);
}

const char *
required_name(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", what)));
	return pstrdup(NameStr(*PG_GETARG_NAME(n)));
}

Interval
required_interval(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", what)));
	return *PG_GETARG_INTERVAL_P(n);
}

int32
required_int(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", what)));
	return PG_GETARG_INT32(n);
}

// terminal_statuses: a text array without NULLs (empty is allowed).
void
terminal_arg(FunctionCallInfo fcinfo, int n, Spec *spec)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("terminal_statuses must not be null"),
		                errhint("Pass '{}' when no status is terminal but set_status.")));
	ArrayType *array = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(array) > 1 || ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) > kMaxArrayElements)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("terminal_statuses has too many elements"),
		                errdetail("It may have at most %d statuses, in one dimension.", kMaxArrayElements)));
	Datum *elems;
	bool *nulls;
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &spec->nterminal);
	spec->terminal = static_cast<char **>(palloc0(sizeof(char *) * (spec->nterminal + 1)));
	for (int i = 0; i < spec->nterminal; i++) {
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			                errmsg("terminal_statuses must not contain null")));
		if (VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) > NAMEDATALEN * 4)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("a terminal status is too long"),
			                errdetail("Statuses are limited to %d bytes.", NAMEDATALEN * 4)));
		spec->terminal[i] = TextDatumGetCString(elems[i]);
	}
}

// Reads expire_stale's arguments: target, older_than, and then, from `rest`
// on, status_column, timestamp_column, terminal_statuses, set_status,
// batch_size, filter (schedule_expiry has its schedule in between).
void
expiry_args(FunctionCallInfo fcinfo, int target, int rest, Spec *spec)
{
	spec->kind = Kind::Expiry;
	spec->relid = required_regclass(fcinfo, target);
	spec->older_than = required_interval(fcinfo, target + 1, "older_than");
	spec->status_column = required_name(fcinfo, rest, "status_column");
	spec->timestamp_column = required_name(fcinfo, rest + 1, "timestamp_column");
	terminal_arg(fcinfo, rest + 2, spec);
	spec->set_status = required_text_arg(fcinfo, rest + 3, "set_status", NAMEDATALEN * 4);
	spec->batch_size = required_int(fcinfo, rest + 4, "batch_size");
	spec->filter = optional_text_arg(fcinfo, rest + 5, "filter", kMaxFilterBytes);
}

// The catalog ----------------------------------------------------------------

// Opens the target (AccessShareLock, kept to the end of the transaction) and
// checks it is a table the caller may change this way.
Relation
open_target(const Spec &spec)
{
	Relation rel = try_relation_open(spec.relid, AccessShareLock);
	if (!rel)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", spec.relid),
		                errhint("Was the table dropped? Unschedule the job that names it.")));
	char kind = rel->rd_rel->relkind;
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
		                errdetail("%s works on tables and partitioned tables.", function_name(spec.kind))));
	return rel;
}

// The explicit privilege check: a clear error before anything runs. The
// statement itself runs with the caller's rights too, so PostgreSQL checks
// again (and applies column privileges and row-level security).
void
check_privileges(Relation rel, const Spec &spec, AttrNumber status_attnum)
{
	Oid user = GetUserId();
	Oid relid = RelationGetRelid(rel);
	const char *relname = RelationGetRelationName(rel);
	if (spec.kind == Kind::Expiry) {
		if (pg_class_aclcheck(relid, user, ACL_UPDATE) != ACLCHECK_OK &&
		    pg_attribute_aclcheck(relid, status_attnum, user, ACL_UPDATE) != ACLCHECK_OK)
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for table %s", relname),
			                errdetail("foreman.expire_stale updates column \"%s\" with the privileges of role \"%s\".",
			                          spec.status_column, GetUserNameFromId(user, false)),
			                errhint("The role needs UPDATE on the table or on that column.")));
		return;
	}
	if (pg_class_aclcheck(relid, user, ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for table %s", relname),
		                errdetail("foreman.purge deletes with the privileges of role \"%s\".",
		                          GetUserNameFromId(user, false)),
		                errhint("The role needs DELETE on the table.")));
	if (pg_class_aclcheck(relid, user, ACL_UPDATE) != ACLCHECK_OK &&
	    pg_attribute_aclcheck_all(relid, user, ACL_UPDATE, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for table %s", relname),
		                errdetail("foreman.purge locks the rows it deletes (FOR UPDATE SKIP LOCKED), which needs "
		                          "UPDATE privilege on at least one column."),
		                errhint("GRANT UPDATE on one column of the table to the role.")));
}

// A user column of the target, by name.
AttrNumber
column_of(Relation rel, const char *name, const char *what)
{
	AttrNumber attnum = get_attnum(RelationGetRelid(rel), name);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
		                errmsg("column \"%s\" of relation \"%s\" does not exist", name, RelationGetRelationName(rel)),
		                errdetail("It was given as %s.", what)));
	if (attnum < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
		                errmsg("%s must not be a system column", what), errdetail("\"%s\" is a system column.", name)));
	return attnum;
}

// The status column: text-like (category S: text, varchar, char, name,
// citext) or an enum, possibly under a domain. Returns its base type.
Oid
status_type(Relation rel, const char *name, AttrNumber attnum)
{
	Oid type = get_atttype(RelationGetRelid(rel), attnum);
	Oid base = getBaseType(type);
	if (!type_is_enum(base) && TypeCategory(base) != TYPCATEGORY_STRING)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
		                errmsg("status column \"%s\" must be of a text or enum type", name),
		                errdetail("Column \"%s\" of relation \"%s\" is of type %s.", name, RelationGetRelationName(rel),
		                          format_type_be(type))));
	if (!OidIsValid(get_array_type(base)))
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
		                errmsg("status column \"%s\" has a type without an array type", name)));
	return base;
}

void
check_timestamp_type(Relation rel, const char *name, AttrNumber attnum)
{
	Oid type = get_atttype(RelationGetRelid(rel), attnum);
	Oid base = getBaseType(type);
	if (base != TIMESTAMPTZOID && base != TIMESTAMPOID && base != DATEOID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
		                errmsg("timestamp column \"%s\" must be of type timestamptz, timestamp or date", name),
		                errdetail("Column \"%s\" of relation \"%s\" is of type %s.", name, RelationGetRelationName(rel),
		                          format_type_be(type))));
}

// The key the batch finds its rows by: the primary key, else the unique index
// (immediate, no expressions, no predicate) on NOT NULL columns with the
// fewest columns. Fills names; returns how many.
int
find_key(Relation rel, const Spec &spec, char **names)
{
	Oid relid = RelationGetRelid(rel);
	Oid chosen = pg::compat::primary_key_index(rel);
	int chosen_natts = 0;
	if (!OidIsValid(chosen)) {
		List *indexes = RelationGetIndexList(rel);
		ListCell *lc;
		foreach (lc, indexes) {
			Oid indexoid = lfirst_oid(lc);
			HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
			if (!HeapTupleIsValid(tup))
				continue;
			Form_pg_index index = (Form_pg_index)GETSTRUCT(tup);
			bool usable = index->indisunique && index->indimmediate && index->indisvalid && index->indislive &&
			              heap_attisnull(tup, Anum_pg_index_indexprs, nullptr) &&
			              heap_attisnull(tup, Anum_pg_index_indpred, nullptr);
			for (int i = 0; usable && i < index->indnkeyatts; i++) {
				AttrNumber attnum = index->indkey.values[i];
				usable = attnum > 0 && TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attnotnull;
			}
			if (usable && (!OidIsValid(chosen) || index->indnkeyatts < chosen_natts)) {
				chosen = indexoid;
				chosen_natts = index->indnkeyatts;
			}
			ReleaseSysCache(tup);
		}
		list_free(indexes);
	}
	if (!OidIsValid(chosen))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" has no key to find rows by", RelationGetRelationName(rel)),
		                errdetail("%s needs a primary key, or a unique index without expressions or predicate on "
		                          "NOT NULL columns.",
		                          function_name(spec.kind)),
		                errhint("Add a primary key to the table.")));
	HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(chosen));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "pg_foreman: cache lookup failed for index %u", chosen);
	Form_pg_index index = (Form_pg_index)GETSTRUCT(tup);
	int n = index->indnkeyatts;
	for (int i = 0; i < n; i++)
		names[i] = get_attname(relid, index->indkey.values[i], false);
	ReleaseSysCache(tup);
	return n;
}

// Values ---------------------------------------------------------------------

// A status as a value of the column's (base) type.
Datum
status_datum(Oid type, const char *value)
{
	Oid input;
	Oid ioparam;
	getTypeInputInfo(type, &input, &ioparam);
	return OidInputFunctionCall(input, const_cast<char *>(value), ioparam, -1);
}

bool
enum_has_label(Oid type, const char *label)
{
	if (strlen(label) >= NAMEDATALEN)
		return false;
	return SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(type), CStringGetDatum(label));
}

// Building --------------------------------------------------------------------

// The terminal statuses a batch skips, by the core's rule: the given ones and
// set_status, without duplicates. Returned palloc'd.
char **
effective_terminal(char **given, int ngiven, const char *set_status, int *n)
{
	char **out = static_cast<char **>(palloc0(sizeof(char *) * (ngiven + 2)));
	*n = 0;
	pg::cpp_guard("maintenance", [&]() {
		std::vector<std::string> statuses(given, given + ngiven);
		std::vector<std::string> effective = core::effective_terminal_statuses(statuses, set_status);
		pg::pg_guard([&]() {
			for (const auto &status : effective)
				out[(*n)++] = pstrdup(status.c_str());
		});
	});
	return out;
}

// What the statements are built from, as the catalog says it: the target,
// its key, and the effective terminal statuses (with set_status), already
// valid for the status column's type.
struct TargetShape {
	const char *schema;
	const char *relname;
	bool partitioned;
	char **keys;
	int nkeys;
	char **terminal;
	int nterminal;
};

// The statements, by the core, copied into palloc'd memory.
void
build_statements(const Spec &spec, const TargetShape &shape, Prepared *out)
{
	const char *schema = shape.schema;
	const char *relname = shape.relname;
	bool partitioned = shape.partitioned;
	char **keys = shape.keys;
	int nkeys = shape.nkeys;
	char **terminal = shape.terminal;
	int nterminal = shape.nterminal;
	pg::cpp_guard("maintenance", [&]() {
		core::BatchTarget target;
		target.schema = schema;
		target.table = relname;
		for (int i = 0; i < nkeys; i++)
			target.key_columns.emplace_back(keys[i]);
		target.timestamp_column = spec.timestamp_column;
		if (spec.filter)
			target.filter = std::string(spec.filter);
		std::string batch, advice, predicate;
		if (spec.kind == Kind::Expiry) {
			core::ExpiryPlan plan(target, spec.status_column, is_keyword);
			std::vector<std::string> statuses(terminal, terminal + nterminal);
			batch = plan.batch_sql();
			advice = plan.index_advice(statuses, !partitioned);
			predicate = plan.terminal_predicate(statuses);
		} else {
			core::PurgePlan plan(target, is_keyword);
			batch = plan.batch_sql();
			advice = plan.index_advice(!partitioned);
			predicate = "true";
		}
		std::string check = spec.filter ? core::filter_check_sql(schema, relname, spec.filter, is_keyword) : "";
		std::string advice_check = "SELECT 1 FROM " + core::quote_identifier(schema, is_keyword) + "." +
		                           core::quote_identifier(relname, is_keyword) + " WHERE " + predicate +
		                           (spec.filter ? " AND (\n" + std::string(spec.filter) + "\n)" : "");
		pg::pg_guard([&]() {
			out->batch_sql = pstrdup(batch.c_str());
			out->advice = pstrdup(advice.c_str());
			out->advice_check_sql = pstrdup(advice_check.c_str());
			out->filter_check_sql = spec.filter ? pstrdup(check.c_str()) : nullptr;
		});
	});
}

// Everything before the batch runs: input, catalog, privileges, filter, the
// statement and its parameters. Raises on the first problem; changes nothing.
void
prepare(const Spec &spec, Prepared *out)
{
	pg::cpp_guard("maintenance", [&]() { core::check_batch_size(spec.batch_size); });
	if (interval_negative(&spec.older_than))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("older_than must not be negative")));

	Relation rel = open_target(spec);
	out->relname = pstrdup(RelationGetRelationName(rel));
	char *schema = get_namespace_name(RelationGetNamespace(rel));
	out->qualified = quote_qualified_identifier(schema, out->relname);

	AttrNumber status_attnum = InvalidAttrNumber;
	Oid status_base = InvalidOid;
	if (spec.kind == Kind::Expiry) {
		status_attnum = column_of(rel, spec.status_column, "status_column");
		status_base = status_type(rel, spec.status_column, status_attnum);
	}
	out->timestamp_attnum = column_of(rel, spec.timestamp_column, "timestamp_column");
	check_timestamp_type(rel, spec.timestamp_column, out->timestamp_attnum);
	check_privileges(rel, spec, status_attnum);
	char *keys[INDEX_MAX_KEYS];
	int nkeys = find_key(rel, spec, keys);

	// The effective terminal statuses: the given ones and set_status; for an
	// enum only its labels (a status it cannot hold can never match).
	char **terminal = nullptr;
	int nterminal = 0;
	if (spec.kind == Kind::Expiry) {
		bool is_enum = type_is_enum(status_base);
		if (is_enum && !enum_has_label(status_base, spec.set_status))
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			                errmsg("set_status \"%s\" is not a value of enum type %s", spec.set_status,
			                       format_type_be(status_base)),
			                errhint("Pass one of its values, or add it with ALTER TYPE ... ADD VALUE.")));
		char **given = static_cast<char **>(palloc0(sizeof(char *) * (spec.nterminal + 1)));
		int ngiven = 0;
		for (int i = 0; i < spec.nterminal; i++)
			if (!is_enum || enum_has_label(status_base, spec.terminal[i]))
				given[ngiven++] = spec.terminal[i];
		terminal = effective_terminal(given, ngiven, spec.set_status, &nterminal);
	}

	TargetShape shape{schema, out->relname, rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE, keys, nkeys,
	                  terminal, nterminal};
	build_statements(spec, shape, out);
	if (spec.filter)
		check_filter(spec.filter, out->filter_check_sql);

	if (spec.kind == Kind::Expiry) {
		int16 len;
		bool byval;
		char align;
		get_typlenbyvalalign(status_base, &len, &byval, &align);
		Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * nterminal));
		for (int i = 0; i < nterminal; i++)
			elems[i] = status_datum(status_base, terminal[i]);
		out->nparams = 4;
		out->types[0] = status_base;
		out->values[0] = status_datum(status_base, spec.set_status);
		out->types[1] = get_array_type(status_base);
		out->values[1] = PointerGetDatum(construct_array(elems, nterminal, status_base, len, byval, align));
		out->types[2] = INTERVALOID;
		out->values[2] = IntervalPGetDatum(const_cast<Interval *>(&spec.older_than));
		out->types[3] = INT4OID;
		out->values[3] = Int32GetDatum(spec.batch_size);
	} else {
		out->nparams = 2;
		out->types[0] = INTERVALOID;
		out->values[0] = IntervalPGetDatum(const_cast<Interval *>(&spec.older_than));
		out->types[1] = INT4OID;
		out->values[1] = Int32GetDatum(spec.batch_size);
	}
	relation_close(rel, NoLock);
}

// One batch, as the caller. Only the count comes back: no row is fetched.
// The outer UPDATE/DELETE finds the batch's rows by key: with hash and merge
// joins off (for this statement only) that is an index lookup per row, never
// a scan of the whole table, however big the planner thinks the batch is.
int64
run_batch(const Prepared &p)
{
	int guc_level = NewGUCNestLevel();
	(void)set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void)set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	int rc = SPI_execute_with_args(p.batch_sql, p.nparams, const_cast<Oid *>(p.types),
	                               const_cast<Datum *>(p.values), nullptr, false, 0);
	if (rc != SPI_OK_UPDATE && rc != SPI_OK_DELETE)
		elog(ERROR, "pg_foreman: batch statement failed: %s", SPI_result_code_string(rc));
	int64 rows = (int64)SPI_processed;
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	return rows;
}

// Index advice ------------------------------------------------------------------

// True when a btree index leads with the timestamp column and its predicate
// (if any) follows from the batch's own predicate; *plain names a usable
// index without predicate, which an expiry outgrows (it keeps the terminal
// rows, and every batch steps over them).
bool
has_serving_index(const Prepared &p, Relation rel, Kind kind, char **plain)
{
	List *raw = raw_parser(p.advice_check_sql, RAW_PARSE_DEFAULT);
	Query *query = parse_analyze_fixedparams(linitial_node(RawStmt, raw), p.advice_check_sql, nullptr, 0, nullptr);
	Node *quals = eval_const_expressions(nullptr, query->jointree->quals);
	List *clauses = make_ands_implicit(canonicalize_qual((Expr *)quals, false));

	bool serving = false;
	*plain = nullptr;
	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	foreach (lc, indexes) {
		Relation index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = index->rd_index;
		if (form->indisvalid && form->indnkeyatts >= 1 && form->indkey.values[0] == p.timestamp_attnum &&
		    index->rd_rel->relam == BTREE_AM_OID) {
			List *predicate = RelationGetIndexPredicate(index);
			if (predicate == NIL) {
				*plain = pstrdup(RelationGetRelationName(index));
				if (kind == Kind::Purge)
					serving = true;
			} else if (predicate_implied_by(predicate, clauses, false))
				serving = true;
		}
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
	return serving;
}

void
advise_index(const Spec &spec, const Prepared &p)
{
	Relation rel = relation_open(spec.relid, AccessShareLock);
	char *plain;
	bool serving = has_serving_index(p, rel, spec.kind, &plain);
	relation_close(rel, NoLock);
	if (serving)
		return;
	if (spec.kind == Kind::Purge)
		ereport(NOTICE, (errmsg("no index on \"%s\" serves the purge of %s", spec.timestamp_column, p.qualified),
		                 errdetail("Each batch would scan the table for its oldest rows."),
		                 errhint("Create one: %s;", p.advice)));
	else
		ereport(NOTICE,
		        (errmsg("no index serves the stale rows of %s", p.qualified),
		         plain ? errdetail("Index \"%s\" on \"%s\" also holds the rows already expired: batches step over "
		                           "ever more of them.",
		                           plain, spec.timestamp_column)
		               : errdetail("Each batch would scan the table for the oldest rows that are not in a terminal "
		                           "status."),
		         errhint("Create one: %s;", p.advice)));
}

// Scheduling --------------------------------------------------------------------

// What the scheduled forms add to a batch's arguments.
struct RunLimits {
	const char *job_name;
	const char *schedule;
	int32 max_batches;
	bool has_max_runtime;
	Interval max_runtime;
	Interval batch_pause;
	const char *tier; // NULL: 'slow'
	bool has_timeout;
	Interval timeout;
	bool enabled;
	const char *log_runs;
};

void
check_limits(const RunLimits &limits)
{
	pg::cpp_guard("maintenance", [&]() { core::check_max_batches(limits.max_batches); });
	if (limits.has_max_runtime && !interval_positive(&limits.max_runtime))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_runtime must be positive"),
		                errhint("Leave it NULL to use the job's timeout.")));
	if (interval_negative(&limits.batch_pause))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("batch_pause must not be negative")));
}

// Creates (or replaces) the job through foreman.schedule, as the caller, so
// ownership, tiers and schedules follow the one path every job takes; then
// makes it a maintenance job, with the extension's rights.
int64
create_job(const Spec &spec, const RunLimits &limits)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	Oid types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, BOOLOID, TEXTOID};
	Datum values[7] = {CStringGetTextDatum(limits.job_name),
	                   CStringGetTextDatum(limits.schedule),
	                   CStringGetTextDatum("CALL foreman.run_maintenance(0)"),
	                   CStringGetTextDatum(limits.tier ? limits.tier : "slow"),
	                   IntervalPGetDatum(const_cast<Interval *>(&limits.timeout)),
	                   BoolGetDatum(limits.enabled),
	                   CStringGetTextDatum(limits.log_runs)};
	char nulls[8] = "       ";
	if (!limits.has_timeout)
		nulls[4] = 'n';
	int rc = SPI_execute_with_args("SELECT foreman.schedule(job_name => $1, schedule => $2, command => $3,"
	                               " tier => $4, timeout => $5, enabled => $6, log_runs => $7)",
	                               7, types, values, nulls, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_foreman: foreman.schedule failed: %s", SPI_result_code_string(rc));
	bool isnull;
	int64 job_id = DatumGetInt64(spi_get(0, 1, &isnull));
	SPI_finish();

	Oid owner = GetUserId();
	Elevation e;
	elevation_begin(&e);
	Oid jtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum jvalues[3] = {Int64GetDatum(job_id), CStringGetTextDatum(spec.kind == Kind::Expiry ? "expiry" : "purge"),
	                    CStringGetTextDatum(psprintf("CALL foreman.run_maintenance(%lld)", (long long)job_id))};
	spi_exec("UPDATE foreman.job SET kind = $2, command = $3 WHERE job_id = $1", 3, jtypes, jvalues, nullptr, false);

	constexpr int kArgs = 14;
	Datum terminal = (Datum)0;
	if (spec.kind == Kind::Expiry) {
		Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (spec.nterminal + 1)));
		for (int i = 0; i < spec.nterminal; i++)
			elems[i] = CStringGetTextDatum(spec.terminal[i]);
		terminal = PointerGetDatum(construct_array(elems, spec.nterminal, TEXTOID, -1, false, TYPALIGN_INT));
	}
	Oid mtypes[kArgs] = {INT8OID, OIDOID,  TEXTOID, OIDOID,  INTERVALOID, NAMEOID,     NAMEOID,
	                     TEXTARRAYOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INTERVALOID, INTERVALOID};
	Datum mvalues[kArgs] = {Int64GetDatum(job_id),
	                        ObjectIdGetDatum(owner),
	                        CStringGetTextDatum(spec.kind == Kind::Expiry ? "expiry" : "purge"),
	                        ObjectIdGetDatum(spec.relid),
	                        IntervalPGetDatum(const_cast<Interval *>(&spec.older_than)),
	                        spec.status_column ? DirectFunctionCall1(namein, CStringGetDatum(spec.status_column))
	                                           : (Datum)0,
	                        DirectFunctionCall1(namein, CStringGetDatum(spec.timestamp_column)),
	                        terminal,
	                        spec.set_status ? CStringGetTextDatum(spec.set_status) : (Datum)0,
	                        Int32GetDatum(spec.batch_size),
	                        spec.filter ? CStringGetTextDatum(spec.filter) : (Datum)0,
	                        Int32GetDatum(limits.max_batches),
	                        IntervalPGetDatum(const_cast<Interval *>(&limits.max_runtime)),
	                        IntervalPGetDatum(const_cast<Interval *>(&limits.batch_pause))};
	char mnulls[kArgs + 1];
	memset(mnulls, ' ', kArgs);
	mnulls[kArgs] = '\0';
	if (spec.kind == Kind::Purge)
		mnulls[5] = mnulls[7] = mnulls[8] = 'n';
	if (!spec.filter)
		mnulls[10] = 'n';
	if (!limits.has_max_runtime)
		mnulls[12] = 'n';
	spi_exec("INSERT INTO foreman.maintenance (job_id, owner, owner_name, kind, target, older_than, status_column,"
	         " timestamp_column, terminal_statuses, set_status, batch_size, filter, max_batches, max_runtime,"
	         " batch_pause)"
	         " VALUES ($1, $2, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $2), $3, $4::regclass, $5, $6,"
	         "         $7, $8, $9, $10, $11, $12, $13, $14)"
	         " ON CONFLICT (job_id) DO UPDATE SET owner = EXCLUDED.owner, owner_name = EXCLUDED.owner_name,"
	         " kind = EXCLUDED.kind,"
	         " target = EXCLUDED.target, older_than = EXCLUDED.older_than, status_column = EXCLUDED.status_column,"
	         " timestamp_column = EXCLUDED.timestamp_column, terminal_statuses = EXCLUDED.terminal_statuses,"
	         " set_status = EXCLUDED.set_status, batch_size = EXCLUDED.batch_size, filter = EXCLUDED.filter,"
	         " max_batches = EXCLUDED.max_batches, max_runtime = EXCLUDED.max_runtime,"
	         " batch_pause = EXCLUDED.batch_pause",
	         kArgs, mtypes, mvalues, mnulls, false);
	elevation_end(&e);
	return job_id;
}

void
limits_args(FunctionCallInfo fcinfo, int job_name, int schedule, int max_batches, RunLimits *limits)
{
	limits->job_name = required_text_arg(fcinfo, job_name, "job_name");
	limits->schedule = required_text_arg(fcinfo, schedule, "schedule", kMaxScheduleBytes);
	limits->max_batches = required_int(fcinfo, max_batches, "max_batches");
	limits->has_max_runtime = !PG_ARGISNULL(max_batches + 1);
	if (limits->has_max_runtime)
		limits->max_runtime = *PG_GETARG_INTERVAL_P(max_batches + 1);
	limits->batch_pause = PG_ARGISNULL(max_batches + 2) ? Interval{} : *PG_GETARG_INTERVAL_P(max_batches + 2);
	limits->tier = optional_text_arg(fcinfo, max_batches + 3, "tier", NAMEDATALEN);
	limits->has_timeout = !PG_ARGISNULL(max_batches + 4);
	if (limits->has_timeout)
		limits->timeout = *PG_GETARG_INTERVAL_P(max_batches + 4);
	limits->enabled = PG_ARGISNULL(max_batches + 5) || PG_GETARG_BOOL(max_batches + 5);
	limits->log_runs = required_text_arg(fcinfo, max_batches + 6, "log_runs", NAMEDATALEN);
}

int64
schedule_maintenance(const Spec &spec, const RunLimits &limits)
{
	check_limits(limits);
	Prepared p{};
	prepare(spec, &p);
	check_filter_as_caller(p.filter_check_sql);
	advise_index(spec, p);
	return create_job(spec, limits);
}

} // namespace
} // namespace foreman::api

using namespace foreman::api;

FOREMAN_FUNCTION(foreman_expire_stale)
{
	Spec spec{};
	expiry_args(fcinfo, 0, 2, &spec);
	Prepared p{};
	prepare(spec, &p);
	PG_RETURN_INT64(run_batch(p));
}

FOREMAN_FUNCTION(foreman_purge)
{
	Spec spec{};
	spec.kind = Kind::Purge;
	spec.relid = required_regclass(fcinfo, 0);
	spec.timestamp_column = required_name(fcinfo, 1, "timestamp_column");
	spec.older_than = required_interval(fcinfo, 2, "older_than");
	spec.batch_size = required_int(fcinfo, 3, "batch_size");
	spec.filter = optional_text_arg(fcinfo, 4, "filter", kMaxFilterBytes);
	Prepared p{};
	prepare(spec, &p);
	PG_RETURN_INT64(run_batch(p));
}

// schedule_expiry(job_name, target, older_than, schedule, status_column,
//   timestamp_column, terminal_statuses, set_status, batch_size, filter,
//   max_batches, max_runtime, batch_pause, tier, timeout, enabled, log_runs)
FOREMAN_FUNCTION(foreman_schedule_expiry)
{
	Spec spec{};
	expiry_args(fcinfo, 1, 4, &spec);
	RunLimits limits{};
	limits_args(fcinfo, 0, 3, 10, &limits);
	PG_RETURN_INT64(schedule_maintenance(spec, limits));
}

// schedule_purge(job_name, target, timestamp_column, older_than, schedule,
//   batch_size, filter, max_batches, max_runtime, batch_pause, tier, timeout,
//   enabled, log_runs)
FOREMAN_FUNCTION(foreman_schedule_purge)
{
	Spec spec{};
	spec.kind = Kind::Purge;
	spec.relid = required_regclass(fcinfo, 1);
	spec.timestamp_column = required_name(fcinfo, 2, "timestamp_column");
	spec.older_than = required_interval(fcinfo, 3, "older_than");
	spec.batch_size = required_int(fcinfo, 5, "batch_size");
	spec.filter = optional_text_arg(fcinfo, 6, "filter", kMaxFilterBytes);
	RunLimits limits{};
	limits_args(fcinfo, 0, 4, 7, &limits);
	PG_RETURN_INT64(schedule_maintenance(spec, limits));
}

// foreman._report_progress(text): shown in foreman.tier_status.progress, the
// process title and pg_stat_activity while a coordinator runs the job; a
// no-op anywhere else.
FOREMAN_FUNCTION(foreman_report_progress)
{
	if (!PG_ARGISNULL(0))
		foreman::bgw::report_progress(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

// foreman._report_run_totals(rows, batches): recorded on the running job's
// run row instead of its statements' row counts; a no-op outside a job.
FOREMAN_FUNCTION(foreman_report_run_totals)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("rows and batches must not be null")));
	foreman::bgw::report_run_totals(PG_GETARG_INT64(0), PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}
