// maintenance_sql.cpp: quoting and the batch statements of expiry and purge.
#include "core/pure.hpp"
#include "core/maintenance_sql.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace foreman::core {

std::string
quote_identifier(std::string_view name, KeywordCheck is_keyword)
{
	if (name.empty())
		throw Error(sqlstate::kInvalidName, "identifier must not be empty");
	if (name.find('\0') != std::string_view::npos)
		throw Error(sqlstate::kInvalidName, "identifier must not contain a NUL byte");
	bool safe = is_keyword != nullptr && ((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_');
	for (char c : name)
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			safe = false;
	if (safe && is_keyword(name))
		safe = false;
	if (safe)
		return std::string(name);
	std::string out = "\"";
	for (char c : name) {
		if (c == '"')
			out += '"';
		out += c;
	}
	out += '"';
	return out;
}

std::string
quote_literal(std::string_view value)
{
	std::string out;
	if (value.find('\\') != std::string_view::npos)
		out += 'E';
	out += '\'';
	for (char c : value) {
		if (c == '\'' || c == '\\')
			out += c;
		out += c;
	}
	out += '\'';
	return out;
}

void
check_batch_size(std::int64_t batch_size)
{
	if (batch_size < 1 || batch_size > kMaxBatchSize)
		throw Error(sqlstate::kInvalidParameterValue, fmt::format("batch_size must be between 1 and {}", kMaxBatchSize),
		            fmt::format("batch_size is {}.", batch_size),
		            "A batch changes at most batch_size rows; 1000 is a good start.");
}

void
check_max_batches(std::int64_t max_batches)
{
	if (max_batches < 1 || max_batches > kMaxBatches)
		throw Error(sqlstate::kInvalidParameterValue, fmt::format("max_batches must be between 1 and {}", kMaxBatches),
		            fmt::format("max_batches is {}.", max_batches),
		            "A run stops after max_batches batches; the next run goes on where it stopped.");
}

std::vector<std::string>
effective_terminal_statuses(const std::vector<std::string> &terminal, std::string_view set_status)
{
	std::vector<std::string> out;
	auto add = [&out](std::string_view s) {
		if (std::find(out.begin(), out.end(), s) == out.end())
			out.emplace_back(s);
	};
	for (const auto &s : terminal)
		add(s);
	add(set_status);
	return out;
}

void
check_shape(const BatchShape &shape)
{
	if (shape.scan == BatchScan::Sweep && shape.match != RowMatch::Ctid)
		throw Error(sqlstate::kInvalidParameterValue, "a sweep finds its rows by ctid");
	if (shape.scan == BatchScan::Oldest && shape.resume)
		throw Error(sqlstate::kInvalidParameterValue, "a batch from the start has no resume point");
	if (shape.scan == BatchScan::Sweep && !shape.resume)
		throw Error(sqlstate::kInvalidParameterValue, "a sweep always has a range of blocks");
}

BatchParts
BatchParts::of(const BatchTarget &target, KeywordCheck is_keyword)
{
	if (target.key_columns.empty())
		throw Error(sqlstate::kInvalidParameterValue, "a batch needs a key to find its rows by");
	std::vector<std::string> keys;
	for (const auto &k : target.key_columns)
		keys.push_back(quote_identifier(k, is_keyword));
	BatchParts p;
	p.table = quote_identifier(target.schema, is_keyword) + "." + quote_identifier(target.table, is_keyword);
	p.key_list = fmt::format("{}", fmt::join(keys, ", "));
	p.key_row = keys.size() == 1 ? p.key_list : "(" + p.key_list + ")";
	p.timestamp = quote_identifier(target.timestamp_column, is_keyword);
	p.order.push_back(p.timestamp);
	for (size_t i = 0; i < keys.size(); i++)
		if (target.key_columns[i] != target.timestamp_column)
			p.order.push_back(keys[i]);
	// On lines of its own inside parentheses: a trailing "--" comment in the
	// filter cannot swallow the rest of the statement.
	if (target.filter)
		p.filter = " AND (\n" + *target.filter + "\n)";
	return p;
}

namespace {

// What expiry and purge put into the common statement shape.
struct Change {
	const char *lock;      // FOR NO KEY UPDATE | FOR UPDATE
	std::string predicate; // which rows qualify, filter included; true again when the row is changed
	const char *verb;      // UPDATE | DELETE FROM, then the table
	std::string set;       // " SET status = $1" | ""
	int limit_param;       // $n of batch_size
	int resume_param;      // $n of the first resume value
};

std::string
params(int first, size_t n)
{
	std::string out;
	for (size_t i = 0; i < n; i++)
		out += fmt::format("{}${}", i ? ", " : "", first + static_cast<int>(i));
	return out;
}

// SELECT [ctid, ]<columns> FROM t WHERE ... ORDER BY ... LIMIT n <lock> SKIP LOCKED
std::string
batch_query(const BatchParts &p, const Change &c, const BatchShape &shape)
{
	bool by_ctid = shape.match == RowMatch::Ctid;
	std::string from = by_ctid ? "ONLY " + p.table : p.table;
	std::string order = fmt::format("{}", fmt::join(p.order, ", "));
	std::string columns, sort, resume;
	switch (shape.scan) {
	case BatchScan::Oldest:
		columns = by_ctid ? "ctid" : p.key_list;
		sort = p.timestamp;
		break;
	case BatchScan::Keyset:
		columns = by_ctid ? "ctid, " + order : order;
		sort = order;
		if (shape.resume)
			resume = p.order.size() == 1
			             ? fmt::format(" AND {} > ${}", order, c.resume_param)
			             : fmt::format(" AND ({}) > ({})", order, params(c.resume_param, p.order.size()));
		break;
	case BatchScan::Sweep:
		// A range of blocks; no ORDER BY: the run moves on by the range.
		columns = "ctid";
		resume = fmt::format(" AND ctid >= ${} AND ctid < ${}", c.resume_param, c.resume_param + 1);
		break;
	}
	return fmt::format("SELECT {} FROM {} WHERE {}{}{}{} LIMIT ${} {} SKIP LOCKED", columns, from, c.predicate,
	                   resume, sort.empty() ? "" : " ORDER BY ", sort, c.limit_param, c.lock);
}

// The last row locked, in the order of the scan: where the next batch resumes.
std::string
resume_point(const BatchParts &p, const BatchShape &shape)
{
	if (shape.scan != BatchScan::Keyset)
		return "";
	std::vector<std::string> descending;
	for (const auto &column : p.order)
		descending.push_back(column + " DESC");
	return fmt::format(", last.* FROM (SELECT) AS one LEFT JOIN (SELECT {} FROM batch ORDER BY {} LIMIT 1) AS last ON true",
	                   fmt::join(p.order, ", "), fmt::join(descending, ", "));
}

std::string
batch_statement(const BatchParts &p, const Change &c, const BatchShape &shape)
{
	check_shape(shape);
	bool by_ctid = shape.match == RowMatch::Ctid;
	std::string verb = fmt::format("{} {}{}{}", c.verb, by_ctid ? "ONLY " : "", p.table, c.set);
	std::string rows = by_ctid ? "ctid = ANY (ARRAY(SELECT ctid FROM batch))"
	                           : fmt::format("{} IN (SELECT {} FROM batch)", p.key_row, p.key_list);
	return fmt::format("WITH batch AS MATERIALIZED ({}),"
	                   " changed AS ({} WHERE {} AND {} RETURNING 1)"
	                   " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch){}",
	                   batch_query(p, c, shape), verb, rows, c.predicate, resume_point(p, shape));
}

// A CREATE INDEX statement; PostgreSQL picks the index name.
std::string
create_index(const BatchParts &p, bool ties, bool concurrently)
{
	std::string columns = ties ? fmt::format("{}", fmt::join(p.order, ", ")) : p.timestamp;
	return fmt::format("CREATE INDEX {}ON {} ({})", concurrently ? "CONCURRENTLY " : "", p.table, columns);
}

} // namespace

ExpiryPlan::ExpiryPlan(const BatchTarget &target, const std::string &status_column, KeywordCheck is_keyword,
                       RowLock lock)
    : parts_(BatchParts::of(target, is_keyword)), status_(quote_identifier(status_column, is_keyword)), lock_(lock),
      ties_(target.timestamp_has_ties)
{
}

std::string
ExpiryPlan::batch_sql(const BatchShape &shape) const
{
	Change c{lock_ == RowLock::NoKeyUpdate ? "FOR NO KEY UPDATE" : "FOR UPDATE",
	         fmt::format("{} <> ALL ($2) AND {} < pg_catalog.now() - $3{}", status_, parts_.timestamp, parts_.filter),
	         "UPDATE", " SET " + status_ + " = $1", 4, 5};
	return batch_statement(parts_, c, shape);
}

std::string
ExpiryPlan::terminal_predicate(const std::vector<std::string> &terminal) const
{
	if (terminal.empty())
		return status_ + " IS NOT NULL";
	std::vector<std::string> literals;
	for (const auto &s : terminal)
		literals.push_back(quote_literal(s));
	return fmt::format("{} NOT IN ({})", status_, fmt::join(literals, ", "));
}

std::string
ExpiryPlan::index_advice(const std::vector<std::string> &terminal, bool concurrently) const
{
	return create_index(parts_, ties_, concurrently) + " WHERE " + terminal_predicate(terminal);
}

std::string
ExpiryPlan::plain_index(bool concurrently) const
{
	return create_index(parts_, ties_, concurrently);
}

PurgePlan::PurgePlan(const BatchTarget &target, KeywordCheck is_keyword)
    : parts_(BatchParts::of(target, is_keyword)), ties_(target.timestamp_has_ties)
{
}

std::string
PurgePlan::batch_sql(const BatchShape &shape) const
{
	Change c{"FOR UPDATE", fmt::format("{} < pg_catalog.now() - $1{}", parts_.timestamp, parts_.filter),
	         "DELETE FROM", "", 2, 3};
	return batch_statement(parts_, c, shape);
}

std::string
PurgePlan::index_advice(bool concurrently) const
{
	return create_index(parts_, ties_, concurrently);
}

std::string
filter_check_sql(const std::string &schema, const std::string &table, const std::string &filter,
                 KeywordCheck is_keyword)
{
	return fmt::format("SELECT 1 FROM {}.{} WHERE (\n{}\n) LIMIT 0", quote_identifier(schema, is_keyword),
	                   quote_identifier(table, is_keyword), filter);
}

} // namespace foreman::core
