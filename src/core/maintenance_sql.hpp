// maintenance_sql.hpp: the SQL text of bounded maintenance, built in pure C++.
//
// One batch of stale expiry or purge is a single statement that locks at most
// batch_size rows, skips rows other sessions hold, and brings no row into the
// caller's memory:
//
//   UPDATE t SET status = $1
//    WHERE key IN (SELECT key FROM t
//                   WHERE status <> ALL ($2) AND ts < now() - $3 [AND (filter)]
//                   ORDER BY ts LIMIT $4 FOR UPDATE SKIP LOCKED)
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
};

// The quoted pieces both statements are made of. Throws Error (22023) for a
// target without key columns, (42602) for an empty name.
struct BatchParts {
	std::string table;     // schema.table
	std::string key_row;   // k, or (k1, k2) on the left of IN
	std::string key_list;  // k, or k1, k2 in the SELECT list
	std::string timestamp; // the timestamp column
	std::string filter;    // " AND (\n<filter>\n)" or empty
	static BatchParts of(const BatchTarget &target, KeywordCheck is_keyword);
};

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

// One batch of stale expiry. Parameters of batch_sql():
//   $1 set_status (the status column's type), $2 terminal statuses (an array
//   of it), $3 older_than (interval), $4 batch_size (int4).
class ExpiryPlan {
public:
	ExpiryPlan(const BatchTarget &target, const std::string &status_column, KeywordCheck is_keyword = nullptr);

	std::string batch_sql() const;

	// The stale predicate's status part with the statuses as literals, as a
	// partial index spells it: "status NOT IN ('a', 'b')".
	std::string terminal_predicate(const std::vector<std::string> &terminal) const;

	// The CREATE INDEX that serves the stale predicate: the timestamp column,
	// partial on the non-terminal statuses. CONCURRENTLY unless the table is
	// partitioned (PostgreSQL cannot build those concurrently).
	std::string index_advice(const std::vector<std::string> &terminal, bool concurrently = true) const;

private:
	BatchParts parts_;
	std::string status_;
};

// One batch of purge. Parameters of batch_sql(): $1 older_than (interval),
// $2 batch_size (int4).
class PurgePlan {
public:
	explicit PurgePlan(const BatchTarget &target, KeywordCheck is_keyword = nullptr);

	std::string batch_sql() const;

	// The CREATE INDEX that serves the purge: the timestamp column.
	std::string index_advice(bool concurrently = true) const;

private:
	BatchParts parts_;
};

// The statement that proves a filter is one expression over the table, under
// the caller's privileges, without reading a row:
//   SELECT 1 FROM t WHERE (\n<filter>\n) LIMIT 0
std::string filter_check_sql(const std::string &schema, const std::string &table, const std::string &filter,
                             KeywordCheck is_keyword = nullptr);

} // namespace foreman::core
