// maintenance_sql.hpp: the SQL text of bounded maintenance, built in pure C++.
//
// One batch of stale expiry or purge is a single statement that locks at most
// batch_size rows, skips rows other sessions hold, and brings no row into the
// caller's memory. For a plain table it finds the locked rows again by ctid:
//
//   WITH batch AS MATERIALIZED (
//        SELECT ctid, ts, key FROM ONLY t
//         WHERE status <> ALL ($2) AND ts < now() - $3 [AND (filter)]
//           [AND (ts, key) > ($5, $6)]               -- keyset: after the last batch
//         ORDER BY ts, key LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED),
//        changed AS (
//        UPDATE ONLY t SET status = $1
//         WHERE ctid = ANY (ARRAY(SELECT ctid FROM batch))
//           AND status <> ALL ($2) AND ts < now() - $3 [AND (filter)]
//        RETURNING 1)
//   SELECT changed rows, locked rows, [the last (ts, key) locked]
//
// A sweep (no index serves the timestamp order) walks the heap instead: each
// batch a range of blocks (a TID range scan), the next batch the next range,
// up to where the table ended when the run began. Partitioned tables and
// tables with inheritance children find the rows by key (ctid is not unique
// there).
//
// The PostgreSQL side resolves and validates names against the catalog and
// checks the filter; this file only quotes and assembles. Values are never
// spliced in: they travel as $n parameters. The one piece of text that is not
// an identifier, the filter, is placed alone on its own lines inside
// parentheses (the caller has proven it is one balanced expression).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace foreman::core {

// True when a lower-case word is a keyword that must be quoted as an
// identifier (PostgreSQL's reserved, type-function and column-name keywords).
// The PostgreSQL side answers from its own keyword list; without one (nullptr)
// every name is quoted, which is always correct.
using KeywordCheck = bool (*)(std::string_view word);

// As PostgreSQL's quote_identifier: bare when the name is lower-case letters,
// digits and underscores, starts with a letter or underscore and is not a
// keyword; otherwise in double quotes, with inner quotes doubled.
// Throws Error (42602) for an empty name or one holding a NUL byte.
std::string quote_identifier(std::string_view name, KeywordCheck is_keyword = nullptr);

// As PostgreSQL's quote_literal: single quotes doubled; a value with a
// backslash is written E'...' with backslashes doubled.
std::string quote_literal(std::string_view value);

// A table and the columns a batch statement names.
struct BatchTarget {
	std::string schema;
	std::string table;
	std::vector<std::string> key_columns; // primary key or unique NOT NULL index, in index order
	std::string timestamp_column;
	std::optional<std::string> filter; // a checked boolean expression over the table, or none
	bool timestamp_has_ties = false;   // a date: many rows share a value, the advised index adds the key
};

// How a batch finds its rows.
enum class BatchScan {
	Oldest, // oldest first from the start: one batch on its own (expire_stale, purge)
	Keyset, // oldest first, after the (timestamp, key) where the previous batch stopped
	Sweep,  // heap order, a range of blocks [$first, $second) (always with a resume point)
};

// How the change finds the locked rows again: by ctid (a TID scan; plain
// tables only, where a ctid names one row) or by key (an index lookup a row).
enum class RowMatch { Ctid, Key };

struct BatchShape {
	BatchScan scan = BatchScan::Oldest;
	RowMatch match = RowMatch::Ctid;
	bool resume = false; // Keyset and Sweep: the statement continues after a resume point
};

// Raises Error (22023) for shapes no statement exists for: a sweep needs
// ctids and a resume point, Oldest has none.
void check_shape(const BatchShape &shape);

// The quoted pieces every statement is made of. Throws Error (22023) for a
// target without key columns, (42602) for an empty name.
struct BatchParts {
	std::string table;     // schema.table
	std::string key_row;   // k, or (k1, k2) on the left of IN
	std::string key_list;  // k, or k1, k2 in the SELECT list
	std::string timestamp; // the timestamp column
	std::string filter;    // " AND (\n<filter>\n)" or empty
	std::vector<std::string> order; // the keyset: the timestamp, then the key columns other than it
	static BatchParts of(const BatchTarget &target, KeywordCheck is_keyword);
};

// Every batch statement returns one row: rows changed (bigint), rows locked
// (bigint), and for Keyset the last (timestamp, key...) locked, where the
// next batch resumes (NULLs when nothing was locked).
inline constexpr int kResultChanged = 1;
inline constexpr int kResultLocked = 2;
inline constexpr int kResultResume = 3;

// Limits on the scalar parameters, shared by the one-batch functions and the
// scheduled forms. Each throws Error (22023) naming the parameter. A batch is
// bounded by design: one of a million rows is already a long statement.
inline constexpr std::int64_t kMaxBatchSize = 1000000;
inline constexpr std::int64_t kMaxBatches = 1000000;
void check_batch_size(std::int64_t batch_size);
void check_max_batches(std::int64_t max_batches);

// The terminal statuses a batch skips: the given ones plus set_status (an
// expired row must never be picked again), without duplicates, in order.
std::vector<std::string> effective_terminal_statuses(const std::vector<std::string> &terminal,
                                                     std::string_view set_status);

// The row lock a batch takes: what its change needs, no more. An expiry that
// does not change a key column takes FOR NO KEY UPDATE, so it never holds up
// the FOR KEY SHARE locks of foreign-key checks; a purge FOR UPDATE.
enum class RowLock { NoKeyUpdate, Update };

// One batch of stale expiry. Parameters of batch_sql():
//   $1 set_status (the status column's type), $2 terminal statuses (an array
//   of it), $3 older_than (interval), $4 batch_size (int4), then the resume
//   point: Keyset $5.. the timestamp and key columns (their types), Sweep $5
//   the range's first ctid (tid) and $6 the ctid it ends before (tid).
class ExpiryPlan {
public:
	ExpiryPlan(const BatchTarget &target, const std::string &status_column, KeywordCheck is_keyword = nullptr,
	           RowLock lock = RowLock::NoKeyUpdate);

	std::string batch_sql(const BatchShape &shape = {}) const;

	// The stale predicate's status part with the statuses as literals, as a
	// partial index spells it: "status NOT IN ('a', 'b')".
	std::string terminal_predicate(const std::vector<std::string> &terminal) const;

	// The CREATE INDEX that serves the batches: the timestamp column (and the
	// key, when the timestamp has ties), partial on the non-terminal statuses.
	// CONCURRENTLY unless the table is partitioned (PostgreSQL cannot build
	// those concurrently).
	std::string index_advice(const std::vector<std::string> &terminal, bool concurrently = true) const;

	// The index advice without the predicate: what a plain index would be.
	std::string plain_index(bool concurrently = true) const;

private:
	BatchParts parts_;
	std::string status_;
	RowLock lock_;
	bool ties_;
};

// One batch of purge. Parameters of batch_sql(): $1 older_than (interval),
// $2 batch_size (int4), then the resume point as for expiry from $3 on.
class PurgePlan {
public:
	explicit PurgePlan(const BatchTarget &target, KeywordCheck is_keyword = nullptr);

	std::string batch_sql(const BatchShape &shape = {}) const;

	// The CREATE INDEX that serves the purge: the timestamp column (and the
	// key, when the timestamp has ties).
	std::string index_advice(bool concurrently = true) const;

private:
	BatchParts parts_;
	bool ties_;
};

// The statement that proves a filter is one expression over the table, under
// the caller's privileges, without reading a row:
//   SELECT 1 FROM t WHERE (\n<filter>\n) LIMIT 0
std::string filter_check_sql(const std::string &schema, const std::string &table, const std::string &filter,
                             KeywordCheck is_keyword = nullptr);

} // namespace foreman::core
