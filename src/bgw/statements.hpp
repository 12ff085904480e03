// statements.hpp: how the bookkeeping speaks SQL. Statements are prepared
// once per process (generic plans, kept), in the variant the database's
// catalog needs, and their results are read by column name.
//
// A library serves the catalog of the release before it: after the package
// is upgraded and the server restarted, a database still at 1.0 keeps running
// its jobs (with 1.0's features) until ALTER EXTENSION pg_foreman UPDATE; the
// processes then prepare the new variants (the update bumps a counter in
// shared memory that they watch).
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace foreman::bgw {

enum class CatalogLevel : uint8 { Unknown = 0, V1_0, V1_1 };

// The level the statements are prepared for. check_catalog_level() reads
// pg_extension when the update counter moved (or at the first call); call it
// inside a transaction, before the first statement of a cycle. A catalog this
// library does not know is an error.
CatalogLevel catalog_level();
void check_catalog_level();
// True when no update moved the catalog since check_catalog_level() last
// read it (catalog_level() is then still the catalog's).
bool catalog_level_current();

// The catalog's gate: foreman.tier in ACCESS SHARE mode, the first lock on a
// foreman table that each transaction of pg_foreman's processes takes
// (internal_xact_begin, before its snapshot). An update script locks
// foreman.tier first too, in ACCESS EXCLUSIVE mode: it waits for the
// transactions that passed the gate, and the ones that come after wait at
// the gate holding no other foreman lock, so neither side can hold what the
// other waits for (without it, a coordinator holding foreman.job_run and
// waiting for foreman.tier deadlocked with ALTER EXTENSION ... UPDATE holding
// foreman.tier and waiting for foreman.job_run). The wait is bounded by the
// transaction's lock_timeout. Nothing to lock when the extension is not
// installed (check_catalog_level then says so).
void lock_catalog_gate();
Oid catalog_gate(); // foreman.tier's oid; InvalidOid when not installed

constexpr int kMaxStatementArgs = 20;
constexpr int kMaxStatementColumns = 40;

struct Statement {
	const char *sql;       // for the current catalog (1.1)
	const char *sql_v1_0;  // for a 1.0 catalog; nullptr: the same text
	int nargs;
	Oid argtypes[kMaxStatementArgs];
	// What the result's columns are called, in the order code reads them;
	// their positions are looked up by name once per prepared plan.
	const char *const *columns;
	int ncolumns;
	// Filled at first use.
	SPIPlanPtr plan;
	CatalogLevel planned_for;
	int attnums[kMaxStatementColumns];
	bool attnums_known;
};

// Executes stmt with values/nulls ('n' marks a NULL); raises on failure;
// returns SPI_processed.
uint64 execute(Statement &stmt, const Datum *values, const char *nulls, bool read_only);

// Column number `column` (an index into stmt.columns) of row `row` of stmt's
// last result. Raises rather than read past the rows returned.
Datum column(Statement &stmt, uint64 row, int column, bool *isnull);
char *text_column(Statement &stmt, uint64 row, int column); // NULL for SQL NULL
int64 int64_column(Statement &stmt, uint64 row, int column, int64 if_null);
TimestampTz timestamp_column(Statement &stmt, uint64 row, int column, bool *isnull);

// Helpers for parameters.
Datum text_or_null(const char *s, char *null_flag);

} // namespace foreman::bgw
