// maintenance_target.cpp: the arguments of bounded maintenance, and its
// target as the catalog says it - validated before any statement is built.
//
// The one-batch functions run with the caller's privileges (nothing here
// elevates): PostgreSQL itself enforces UPDATE/DELETE, column privileges and
// row-level security on the target. Names are resolved against the catalog;
// values travel as SPI parameters.
#include "api/args.hpp"
#include "api/maintenance.hpp"
#include "api/maintenance_filter.hpp"
#include "core/error.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "nodes/bitmapset.h"
#include "parser/parse_coerce.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include <string>
#include <vector>

namespace foreman::api {

const char *
function_name(Kind kind)
{
	return kind == Kind::Expiry ? "foreman.expire_stale" : "foreman.purge";
}

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

// Arguments -------------------------------------------------------------------

namespace {

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

} // namespace

int32
required_int(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", what)));
	return PG_GETARG_INT32(n);
}

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

void
purge_args(FunctionCallInfo fcinfo, int target, int rest, Spec *spec)
{
	spec->kind = Kind::Purge;
	spec->relid = required_regclass(fcinfo, target);
	spec->timestamp_column = required_name(fcinfo, target + 1, "timestamp_column");
	spec->older_than = required_interval(fcinfo, target + 2, "older_than");
	spec->batch_size = required_int(fcinfo, rest, "batch_size");
	spec->filter = optional_text_arg(fcinfo, rest + 1, "filter", kMaxFilterBytes);
}

// The catalog ----------------------------------------------------------------

namespace {

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

bool
enum_has_label(Oid type, const char *label)
{
	if (strlen(label) >= NAMEDATALEN)
		return false;
	return SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(type), CStringGetDatum(label));
}

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

// The effective terminal statuses of an expiry: the given ones and
// set_status; for an enum only its labels (a status it cannot hold can never
// match).
void
resolve_statuses(const Spec &spec, Target *out)
{
	bool is_enum = type_is_enum(out->status_type);
	if (is_enum && !enum_has_label(out->status_type, spec.set_status))
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
		                errmsg("set_status \"%s\" is not a value of enum type %s", spec.set_status,
		                       format_type_be(out->status_type)),
		                errhint("Pass one of its values, or add it with ALTER TYPE ... ADD VALUE.")));
	char **given = static_cast<char **>(palloc0(sizeof(char *) * (spec.nterminal + 1)));
	int ngiven = 0;
	for (int i = 0; i < spec.nterminal; i++)
		if (!is_enum || enum_has_label(out->status_type, spec.terminal[i]))
			given[ngiven++] = spec.terminal[i];
	out->terminal = effective_terminal(given, ngiven, spec.set_status, &out->nterminal);
}

// The key and the keyset: the timestamp, then the key columns other than it
// (the core orders them the same way), with their base types.
void
resolve_key(Relation rel, const Spec &spec, Target *out)
{
	out->nkeys = find_key(rel, spec, out->keys);
	out->order_types[0] = out->timestamp_type;
	out->norder = 1;
	for (int i = 0; i < out->nkeys; i++) {
		if (strcmp(out->keys[i], spec.timestamp_column) == 0)
			continue;
		AttrNumber attnum = get_attnum(RelationGetRelid(rel), out->keys[i]);
		out->order_types[out->norder++] = getBaseType(get_atttype(RelationGetRelid(rel), attnum));
	}
}

// True when the column is in a unique index a foreign key may use: changing
// it is a key update, which needs the FOR UPDATE row lock.
bool
in_key(Relation rel, AttrNumber attnum)
{
	Bitmapset *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	return bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, key);
}

} // namespace

// A status as a value of the column's (base) type.
Datum
status_datum(Oid type, const char *value)
{
	Oid input;
	Oid ioparam;
	getTypeInputInfo(type, &input, &ioparam);
	return OidInputFunctionCall(input, const_cast<char *>(value), ioparam, -1);
}

void
check_filter_of(const Spec &spec, const Target &target, bool as_caller)
{
	if (!spec.filter)
		return;
	char *sql = nullptr;
	pg::cpp_guard("maintenance", [&]() {
		std::string check = core::filter_check_sql(target.schema, target.relname, spec.filter, is_keyword);
		pg::pg_guard([&]() { sql = pstrdup(check.c_str()); });
	});
	check_filter(spec.filter, sql);
	if (as_caller)
		check_filter_as_caller(sql);
}

void
resolve_target(const Spec &spec, TargetUse use, Target *out)
{
	pg::cpp_guard("maintenance", [&]() { core::check_batch_size(spec.batch_size); });
	if (interval_negative(&spec.older_than))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("older_than must not be negative")));

	Relation rel = open_target(spec);
	out->relid = RelationGetRelid(rel);
	out->relname = pstrdup(RelationGetRelationName(rel));
	out->schema = get_namespace_name(RelationGetNamespace(rel));
	out->qualified = quote_qualified_identifier(out->schema, out->relname);
	out->partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
	// A ctid names one row only in a table without partitions or children.
	out->by_ctid = rel->rd_rel->relkind == RELKIND_RELATION && !rel->rd_rel->relhassubclass;

	AttrNumber status_attnum = InvalidAttrNumber;
	if (spec.kind == Kind::Expiry) {
		status_attnum = column_of(rel, spec.status_column, "status_column");
		out->status_type = status_type(rel, spec.status_column, status_attnum);
		out->status_in_key = in_key(rel, status_attnum);
	}
	out->timestamp_attnum = column_of(rel, spec.timestamp_column, "timestamp_column");
	check_timestamp_type(rel, spec.timestamp_column, out->timestamp_attnum);
	out->timestamp_type = getBaseType(get_atttype(out->relid, out->timestamp_attnum));
	if (use == TargetUse::Batch)
		check_privileges(rel, spec, status_attnum);
	resolve_key(rel, spec, out);
	if (spec.kind == Kind::Expiry)
		resolve_statuses(spec, out);
	relation_close(rel, NoLock);
	check_filter_of(spec, *out, false);
}

core::BatchTarget
batch_target(const Spec &spec, const Target &target)
{
	core::BatchTarget t;
	t.schema = target.schema;
	t.table = target.relname;
	for (int i = 0; i < target.nkeys; i++)
		t.key_columns.emplace_back(target.keys[i]);
	t.timestamp_column = spec.timestamp_column;
	if (spec.filter)
		t.filter = std::string(spec.filter);
	t.timestamp_has_ties = target.timestamp_type == DATEOID;
	return t;
}

void
build_advice_text(const Spec &spec, const Target &target, AdviceText *out)
{
	pg::cpp_guard("maintenance", [&]() {
		core::BatchTarget t = batch_target(spec, target);
		std::string advice, plain, predicate;
		if (spec.kind == Kind::Expiry) {
			core::ExpiryPlan plan(t, spec.status_column, is_keyword);
			std::vector<std::string> statuses(target.terminal, target.terminal + target.nterminal);
			advice = plan.index_advice(statuses, !target.partitioned);
			plain = plan.plain_index(!target.partitioned);
			predicate = plan.terminal_predicate(statuses);
		} else {
			core::PurgePlan plan(t, is_keyword);
			advice = plain = plan.index_advice(!target.partitioned);
			predicate = "true";
		}
		std::string check = "SELECT 1 FROM " + core::quote_identifier(target.schema, is_keyword) + "." +
		                    core::quote_identifier(target.relname, is_keyword) + " WHERE " + predicate +
		                    (spec.filter ? " AND (\n" + std::string(spec.filter) + "\n)" : "");
		pg::pg_guard([&]() {
			out->advice = pstrdup(advice.c_str());
			out->plain = pstrdup(plain.c_str());
			out->check_sql = pstrdup(check.c_str());
		});
	});
}


} // namespace foreman::api
