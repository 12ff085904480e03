// maintenance_filter.cpp: checking the `filter` of bounded maintenance.
#include "api/maintenance_filter.hpp"

extern "C" {
#include "executor/spi.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "common/keywords.h"
#include "utils/builtins.h"
}

namespace foreman::api {

void
reraise_filter_error(ErrorData *edata)
{
	if (!edata)
		return;
	edata->cursorpos = 0;
	pg::reraise_pg_error(edata, "in the filter");
}

namespace {


// Token by token, with PostgreSQL's own scanner: the filter must hold no ";"
// and its parentheses must balance without ever closing one it did not open,
// so that placed inside "(" and ")" it cannot end the condition early.
void
check_filter_tokens(const char *filter)
{
	volatile int tokens = 0;
	volatile bool semicolon = false;
	volatile bool unbalanced = false;
	FILTER_TRY({
		core_yy_extra_type extra;
		core_yyscan_t scanner = scanner_init(filter, &extra, &ScanKeywords, ScanKeywordTokens);
		int depth = 0;
		for (;;) {
			core_YYSTYPE value;
			YYLTYPE location;
			int token = core_yylex(&value, &location, scanner);
			if (token == 0)
				break;
			tokens = tokens + 1;
			if (token == ';') {
				semicolon = true;
				break;
			}
			if (token == '(')
				depth++;
			else if (token == ')' && --depth < 0)
				break;
		}
		unbalanced = depth != 0;
		scanner_finish(scanner);
	});
	if (tokens == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("filter must not be empty"),
		                errhint("Pass NULL for no filter.")));
	if (semicolon)
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("filter must be a single expression"),
		                errdetail("It contains \";\"."),
		                errhint("A filter is a condition on the target's columns, such as tenant_id = 7.")));
	if (unbalanced)
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("filter must be a single expression"),
		                errdetail("Its parentheses do not balance.")));
}

// The tree walkers take their callback as an old-style bool (*)().
using Walker = bool (*)(Node *, void *);
auto
walker_cast(Walker walker)
{
	return reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker));
}

bool
modifies_data_walker(Node *node, void *)
{
	if (!node)
		return false;
	if (IsA(node, InsertStmt) || IsA(node, UpdateStmt) || IsA(node, DeleteStmt) || IsA(node, MergeStmt))
		return true;
	return raw_expression_tree_walker(node, walker_cast(modifies_data_walker), nullptr);
}

bool
sublink_walker(Node *node, void *found)
{
	if (!node)
		return false;
	if (IsA(node, SubLink)) {
		*static_cast<SubLink **>(found) = reinterpret_cast<SubLink *>(node);
		return true;
	}
	return raw_expression_tree_walker(node, walker_cast(sublink_walker), found);
}

} // namespace

// The filter is a condition on the target's own columns: no subqueries (they
// could read other tables or, through WITH, change them) and no volatile
// functions (they could change data, and would not give the same answer when
// a locked row is re-checked). Parsed and analysed as the caller, so names
// resolve as they will when the batch runs.
void
check_filter(const char *filter, const char *check_sql)
{
	check_filter_tokens(filter);

	List *volatile raw = NIL;
	FILTER_TRY(raw = raw_parser(check_sql, RAW_PARSE_DEFAULT));
	RawStmt *volatile rawstmt = list_length(raw) == 1 ? linitial_node(RawStmt, raw) : nullptr;
	SelectStmt *select = rawstmt && IsA(rawstmt->stmt, SelectStmt) ? (SelectStmt *)rawstmt->stmt : nullptr;
	if (!select || select->op != SETOP_NONE || select->withClause || list_length(select->fromClause) != 1 ||
	    list_length(select->targetList) != 1 || select->groupClause || select->havingClause || select->windowClause ||
	    select->sortClause || select->lockingClause || select->distinctClause || select->intoClause ||
	    !select->whereClause || !select->limitCount || select->limitOffset)
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("filter must be a single expression")));

	SubLink *sublink = nullptr;
	if (sublink_walker(select->whereClause, &sublink)) {
		if (modifies_data_walker(sublink->subselect, nullptr))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("filter must not contain a subquery that modifies data"),
			                errhint("A filter is a condition on the target's own columns.")));
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("filter must not contain a subquery"),
		                errdetail("A filter may only read the target's own row."),
		                errhint("Express the condition on the target's columns, or put a stable function around "
		                        "the lookup.")));
	}

	Query *volatile query = nullptr;
	FILTER_TRY(query = parse_analyze_fixedparams(rawstmt, check_sql, nullptr, 0, nullptr));
	if (list_length(query->rtable) != 1 || query->hasSubLinks || query->hasAggs || query->hasWindowFuncs ||
	    query->hasTargetSRFs)
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("filter must be a condition on the target's columns")));
	if (contain_volatile_functions(query->jointree->quals))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("filter must not call volatile functions"),
		                errdetail("A volatile function could change data, and could answer differently when a "
		                          "locked row is checked again."),
		                errhint("Use immutable and stable functions only, such as now() rather than "
		                        "clock_timestamp().")));
}

// The filter is also planned once as the caller: column privileges, and any
// error the parse alone could not see, show up now rather than at 3 a.m.
void
check_filter_as_caller(const char *check_sql)
{
	if (!check_sql)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_foreman: SPI_connect failed");
	FILTER_TRY(SPI_execute(check_sql, true, 0));
	SPI_finish();
}

} // namespace foreman::api
