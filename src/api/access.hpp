// access.hpp: how the SQL API reaches the foreman tables: with the
// extension's rights (Elevation) after deciding who may act, SPI statements
// whose results are never read past their rows, and jobs and tiers found by
// name without telling one role about another's.
#pragma once

#include "api/args.hpp"

extern "C" {
#include "datatype/timestamp.h"
#include "executor/spi.h"
}

namespace foreman::api {

// Runs SPI statements as the bootstrap superuser with search_path pinned to
// pg_catalog, pg_temp, between begin() and end(). The caller's identity was
// captured before; the tables are private, so this is the only way in.
struct Elevation {
	Oid saved_user;
	int saved_context;
	int guc_level;
};
void elevation_begin(Elevation *e);
void elevation_end(Elevation *e);

// SPI_execute_with_args that raises on failure; returns SPI_processed.
uint64 spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, bool read_only);

// Column `col` (1-based) of row `row` of the last SPI result. Raises an
// internal error instead of reading past the rows the statement returned.
Datum spi_get(uint64 row, int col, bool *isnull);
char *spi_get_text(uint64 row, int col); // NULL for SQL NULL

// A job as the API sees it.
struct JobRef {
	int64 job_id;
	Oid owner;
	int32 tier_id;
	bool enabled;
};

// How find_job reads: under the caller's snapshot (read-only functions), or
// with a fresh snapshot and the job's row locked FOR UPDATE until the end of
// the transaction (functions that change the job, so that a job removed or
// changed meanwhile - even earlier in the same statement - is seen as it is).
enum class JobLock { None, ForUpdate };

// Finds the job called `name` that the caller may act on: the caller's own,
// else the only one owned by a role whose privileges the caller has (or any,
// for foreman_admin). Returns false when there is none the caller may act on:
// another role's job of that name answers exactly like a name that does not
// exist (no existence oracle). Raises 42725 when the name is ambiguous. Call
// between elevation_begin() and elevation_end().
bool find_job(const char *name, Oid caller, JobLock lock, JobRef *out);

// find_job, raising 42704 "job ... does not exist" when there is none.
JobRef require_job(const char *name, Oid caller, JobLock lock);

// Raises 55000 when this database's pg_foreman catalog is older than the
// library (1.0 under a 1.1 library): jobs keep running, but changes wait for
// ALTER EXTENSION pg_foreman UPDATE. Call after elevation_begin().
void require_current_catalog();

// Serializes the job-creating calls made for one owner (a transaction-level
// lock no SQL function can take), so per-role limits hold under concurrency.
void lock_owner_jobs(Oid owner);

// The tier of that name; raises 42704 (with the tiers there are as a hint).
int32 find_tier(const char *name, int32 *concurrency);

// Raises 42501 unless role may schedule jobs (foreman_user).
void require_foreman_user(Oid role);

} // namespace foreman::api
