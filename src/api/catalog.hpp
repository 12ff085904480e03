// catalog.hpp: what the SQL API shares: reading arguments, acting on the
// foreman tables with the extension's rights, finding jobs and tiers by name,
// and deciding who may touch them.
#pragma once

#include "pg/postgres.hpp"

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

// Bounds on what a caller may hand the API: every text and array argument
// is bounded, and the error names the limit.
constexpr int kMaxTextArgBytes = 8192;        // any text argument without a bound of its own
constexpr int kMaxJobNameBytes = 63;
constexpr int kMaxScheduleBytes = 1024;
constexpr int kMaxCommandBytes = 1024 * 1024;
constexpr int kMaxFilterBytes = 65536;
constexpr int kMaxArrayElements = 256;

// Argument helpers: NULL-aware getters that raise 22004 (null value not
// allowed) with the parameter's name, and 54000 (program limit exceeded)
// for text longer than max_bytes.
char *required_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes = kMaxTextArgBytes);
char *optional_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes = kMaxTextArgBytes);

// Raises 22008 for a timestamp a schedule cannot use: infinite, or outside
// the years 1900 to 9999 (fire times are computed from it).
void check_schedule_timestamp(TimestampTz ts, const char *name);

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

// Serializes the job-creating calls made for one owner (a transaction-level
// lock no SQL function can take), so per-role limits hold under concurrency.
void lock_owner_jobs(Oid owner);

// The tier of that name; raises 42704 (with the tiers there are as a hint).
int32 find_tier(const char *name, int32 *concurrency);

// True when `caller` may manage jobs owned by `owner`: it has the owner's
// privileges, or is foreman_admin (superusers are both).
bool may_manage(Oid caller, Oid owner);

// Membership in pg_foreman's roles (by privileges, as pg_has_role USAGE);
// superusers count as both.
bool is_foreman_user(Oid role);
bool is_foreman_admin(Oid role);

// Raises 42501 unless role may schedule jobs (foreman_user).
void require_foreman_user(Oid role);

// Why `owner` cannot own and run jobs now, or nullptr: dropped, no LOGIN, not
// foreman_user, or no CONNECT on this database. Checked when a job is
// scheduled and (by the coordinator, in SQL) before every run.
const char *owner_problem(Oid owner);

} // namespace foreman::api
