// maintenance.hpp: what the files of bounded maintenance share.
//
//   maintenance_target.cpp    the arguments, and the target as the catalog says it
//   maintenance_batch.cpp     one batch: its statement, its parameters, where the next goes on;
//                             foreman.expire_stale, foreman.purge and the run's batches
//   maintenance_advice.cpp    which index serves the batches, and the CREATE INDEX when none does
//   maintenance_schedule.cpp  schedule_expiry, schedule_purge, and how a run reports
//   maintenance_filter.cpp    the filter's checks
//
// PostgreSQL-side: plain data, palloc'd; the statements come from
// core::ExpiryPlan and core::PurgePlan.
#pragma once

#include "core/maintenance_sql.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "utils/relcache.h"
}

#include <string_view>

namespace foreman::api {

enum class Kind { Expiry, Purge };

const char *function_name(Kind kind);

// What the caller asked for, read from the arguments.
struct Spec {
	Kind kind;
	Oid relid;
	Interval older_than;
	const char *status_column; // expiry only
	const char *timestamp_column;
	int nterminal; // expiry only
	char **terminal;
	const char *set_status; // expiry only
	int32 batch_size;
	const char *filter; // NULL: none
};

// Reads expire_stale's arguments: target, older_than, and then, from `rest`
// on, status_column, timestamp_column, terminal_statuses, set_status,
// batch_size, filter (schedule_expiry has its schedule in between).
void expiry_args(FunctionCallInfo fcinfo, int target, int rest, Spec *spec);

// Reads purge's arguments: target, timestamp_column, older_than from
// `target` on, batch_size and filter from `rest` on.
void purge_args(FunctionCallInfo fcinfo, int target, int rest, Spec *spec);

int32 required_int(FunctionCallInfo fcinfo, int n, const char *what);
bool interval_negative(const Interval *i);
bool interval_positive(const Interval *i);

// PostgreSQL's own keyword list decides which names need quotes.
bool is_keyword(std::string_view word);

// The target as the catalog says it, validated for the batches.
struct Target {
	Oid relid;                   // locked AccessShareLock to the end of the transaction
	char *schema;
	char *relname;
	char *qualified;             // schema.table, quoted
	bool partitioned;
	bool by_ctid;                // a plain table without inheritance children: rows found again by ctid
	bool status_in_key;          // the status column is in a unique index: the lock is FOR UPDATE
	AttrNumber timestamp_attnum;
	Oid timestamp_type;          // base type
	int nkeys;
	char *keys[INDEX_MAX_KEYS];  // the key columns, in index order
	int norder;                  // the keyset: the timestamp, then the key columns other than it
	Oid order_types[INDEX_MAX_KEYS + 1];
	Oid status_type;             // expiry: the status column's base type
	char **terminal;             // expiry: the effective terminal statuses (with set_status)
	int nterminal;
};

// Who needs the target: a batch checks the caller's privileges first; index
// advice does not change anything and does not.
enum class TargetUse { Batch, Advice };

// Everything before a statement is built: input, catalog, privileges (for
// TargetUse::Batch), filter. Raises on the first problem; changes nothing.
void resolve_target(const Spec &spec, TargetUse use, Target *out);

// Checks the filter (nothing without one): one boolean expression over the
// target, no subqueries, no volatile functions; as_caller: also planned once
// with the caller's rights.
void check_filter_of(const Spec &spec, const Target &target, bool as_caller);

// A status as a value of the status column's (base) type.
Datum status_datum(Oid type, const char *value);

// The core's view of the target.
core::BatchTarget batch_target(const Spec &spec, const Target &target);

// The index advice of a target: the CREATE INDEX that would serve its
// batches, the same without predicate, and the batch's predicate with the
// statuses as literals, to test the indexes there are against.
struct AdviceText {
	char *advice;
	char *plain;
	char *check_sql;
};
void build_advice_text(const Spec &spec, const Target &target, AdviceText *out);

// Which index serves the batches: a btree leading with the timestamp column
// whose predicate (if any) follows from the batch's own.
struct ServingIndex {
	bool serves;       // such an index exists: batches go in timestamp order
	bool partial;      // it has a predicate (expiry: it holds only the rows expiry looks for)
	char *name;        // its name, or NULL
};
ServingIndex find_serving_index(const Target &target, const AdviceText &text);

// A NOTICE with the CREATE INDEX to run when no index serves the batches
// well (schedule_expiry, schedule_purge).
void advise_index(const Spec &spec, const Target &target);

} // namespace foreman::api
