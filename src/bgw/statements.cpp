// statements.cpp: prepared bookkeeping statements, by catalog version.
#include "bgw/statements.hpp"
#include "bgw/shmem.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
}

namespace foreman::bgw {

namespace {

CatalogLevel level = CatalogLevel::Unknown;
uint32 seen_generation = 0;

CatalogLevel
read_catalog_level()
{
	int rc = SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_foreman'", true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_foreman: reading pg_extension failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("extension \"pg_foreman\" is not installed in this database")));
	char *version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(version, "1.1") == 0)
		return CatalogLevel::V1_1;
	if (strcmp(version, "1.0") == 0)
		return CatalogLevel::V1_0;
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("pg_foreman's catalog in this database is version %s, which this library does not know",
	                       version),
	                errhint("Install the pg_foreman package of version %s, or update the extension.", version)));
	pg_unreachable();
}

void
forget_plan(Statement &stmt)
{
	if (stmt.plan)
		SPI_freeplan(stmt.plan);
	stmt.plan = nullptr;
	stmt.attnums_known = false;
}

} // namespace

// Every prepared statement of this process, so a catalog change can drop them.
namespace {
constexpr int kMaxStatements = 64;
Statement *prepared[kMaxStatements];
int nprepared = 0;
} // namespace

CatalogLevel
catalog_level()
{
	return level;
}

bool
catalog_level_current()
{
	return level != CatalogLevel::Unknown && catalog_generation() == seen_generation;
}

Oid
catalog_gate()
{
	Oid nsp = get_namespace_oid("foreman", true);
	return OidIsValid(nsp) ? get_relname_relid("tier", nsp) : InvalidOid;
}

void
lock_catalog_gate()
{
	Oid gate = catalog_gate();
	if (!OidIsValid(gate) || ConditionalLockRelationOid(gate, AccessShareLock))
		return;
	// Held in a stronger mode: by an update of the extension, most likely.
	ErrorContextCallback context;
	context.callback = [](void *) {
		errcontext("pg_foreman waiting for foreman.tier (ALTER EXTENSION pg_foreman UPDATE, or another session, "
		           "holds it in a mode that excludes reading)");
	};
	context.arg = nullptr;
	context.previous = error_context_stack;
	error_context_stack = &context;
	LockRelationOid(gate, AccessShareLock);
	error_context_stack = context.previous;
}

void
check_catalog_level()
{
	uint32 generation = catalog_generation();
	if (level != CatalogLevel::Unknown && generation == seen_generation)
		return;
	CatalogLevel now = read_catalog_level();
	seen_generation = generation;
	if (now == level)
		return;
	if (level != CatalogLevel::Unknown || now != CatalogLevel::V1_1)
		ereport(LOG, (errmsg("pg_foreman: catalog version %s in database %u; bookkeeping follows it",
		                     now == CatalogLevel::V1_1 ? "1.1" : "1.0", MyDatabaseId),
		              now == CatalogLevel::V1_0 ? errhint("Run ALTER EXTENSION pg_foreman UPDATE for 1.1's features.")
		                                        : 0));
	for (int i = 0; i < nprepared; i++)
		forget_plan(*prepared[i]);
	level = now;
}

uint64
execute(Statement &stmt, const Datum *values, const char *nulls, bool read_only)
{
	Assert(level != CatalogLevel::Unknown);
	if (stmt.plan && stmt.planned_for != level)
		forget_plan(stmt);
	if (!stmt.plan) {
		const char *sql = level == CatalogLevel::V1_0 && stmt.sql_v1_0 ? stmt.sql_v1_0 : stmt.sql;
		// Generic plans: planned once, and never re-planned on statistics
		// gathered while, say, most jobs were disabled (a custom plan then
		// picks the partial due-index over the primary key).
		SPIPlanPtr plan = SPI_prepare_cursor(sql, stmt.nargs, stmt.argtypes, CURSOR_OPT_GENERIC_PLAN);
		if (!plan)
			elog(ERROR, "pg_foreman: preparing bookkeeping statement failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "pg_foreman: keeping bookkeeping statement failed");
		stmt.plan = plan;
		stmt.planned_for = level;
		bool known = false;
		for (int i = 0; i < nprepared; i++)
			known |= prepared[i] == &stmt;
		if (!known && nprepared < kMaxStatements)
			prepared[nprepared++] = &stmt;
	}
	int rc = SPI_execute_plan(stmt.plan, const_cast<Datum *>(values), nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "pg_foreman: bookkeeping statement failed: %s", SPI_result_code_string(rc));
	if (stmt.ncolumns > 0 && !stmt.attnums_known && SPI_tuptable) {
		for (int i = 0; i < stmt.ncolumns; i++) {
			stmt.attnums[i] = SPI_fnumber(SPI_tuptable->tupdesc, stmt.columns[i]);
			if (stmt.attnums[i] <= 0)
				elog(ERROR, "pg_foreman: bookkeeping statement has no column \"%s\"", stmt.columns[i]);
		}
		stmt.attnums_known = true;
	}
	return SPI_processed;
}

Datum
column(Statement &stmt, uint64 row, int column, bool *isnull)
{
	if (!SPI_tuptable || row >= SPI_processed || !stmt.attnums_known || column < 0 || column >= stmt.ncolumns)
		elog(ERROR, "pg_foreman: bookkeeping statement returned %llu rows; row %llu, column %d was read",
		     (unsigned long long)SPI_processed, (unsigned long long)row, column);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, stmt.attnums[column], isnull);
}

char *
text_column(Statement &stmt, uint64 row, int col)
{
	bool isnull;
	Datum d = column(stmt, row, col, &isnull);
	return isnull ? nullptr : TextDatumGetCString(d);
}

int64
int64_column(Statement &stmt, uint64 row, int col, int64 if_null)
{
	bool isnull;
	Datum d = column(stmt, row, col, &isnull);
	return isnull ? if_null : DatumGetInt64(d);
}

TimestampTz
timestamp_column(Statement &stmt, uint64 row, int col, bool *isnull)
{
	Datum d = column(stmt, row, col, isnull);
	return *isnull ? 0 : DatumGetTimestampTz(d);
}

Datum
text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum)0;
}

} // namespace foreman::bgw
