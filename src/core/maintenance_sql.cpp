// maintenance_sql.cpp: quoting and the batch statements of expiry and purge.
#include "core/pure.hpp"
#include "core/maintenance_sql.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace foreman::core {

namespace {

// A CREATE INDEX statement; PostgreSQL picks the index name.
std::string
create_index(const std::string &table, const std::string &column, bool concurrently)
{
	return fmt::format("CREATE INDEX {}ON {} ({})", concurrently ? "CONCURRENTLY " : "", table, column);
}

} // namespace

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
	// On lines of its own inside parentheses: a trailing "--" comment in the
	// filter cannot swallow the rest of the statement.
	if (target.filter)
		p.filter = " AND (\n" + *target.filter + "\n)";
	return p;
}

ExpiryPlan::ExpiryPlan(const BatchTarget &target, const std::string &status_column, KeywordCheck is_keyword)
    : parts_(BatchParts::of(target, is_keyword)), status_(quote_identifier(status_column, is_keyword))
{
}

std::string
ExpiryPlan::batch_sql() const
{
	return fmt::format("UPDATE {0} SET {1} = $1 WHERE {2} IN (SELECT {3} FROM {0}"
	                   " WHERE {1} <> ALL ($2) AND {4} < pg_catalog.now() - $3{5}"
	                   " ORDER BY {4} LIMIT $4 FOR UPDATE SKIP LOCKED)",
	                   parts_.table, status_, parts_.key_row, parts_.key_list, parts_.timestamp, parts_.filter);
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
	return create_index(parts_.table, parts_.timestamp, concurrently) + " WHERE " + terminal_predicate(terminal);
}

PurgePlan::PurgePlan(const BatchTarget &target, KeywordCheck is_keyword) : parts_(BatchParts::of(target, is_keyword))
{
}

std::string
PurgePlan::batch_sql() const
{
	return fmt::format("DELETE FROM {0} WHERE {1} IN (SELECT {2} FROM {0}"
	                   " WHERE {3} < pg_catalog.now() - $1{4}"
	                   " ORDER BY {3} LIMIT $2 FOR UPDATE SKIP LOCKED)",
	                   parts_.table, parts_.key_row, parts_.key_list, parts_.timestamp, parts_.filter);
}

std::string
PurgePlan::index_advice(bool concurrently) const
{
	return create_index(parts_.table, parts_.timestamp, concurrently);
}

std::string
filter_check_sql(const std::string &schema, const std::string &table, const std::string &filter,
                 KeywordCheck is_keyword)
{
	return fmt::format("SELECT 1 FROM {}.{} WHERE (\n{}\n) LIMIT 0", quote_identifier(schema, is_keyword),
	                   quote_identifier(table, is_keyword), filter);
}

} // namespace foreman::core
