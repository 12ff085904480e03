// Unit tests of the batch statements of bounded maintenance: quoting, key
// shapes, parameters, the filter's placement and the index advice.
#include "core/error.hpp"
#include "core/maintenance_sql.hpp"

#include <gtest/gtest.h>

#include <string_view>

using namespace foreman::core;

namespace {

// A stand-in for PostgreSQL's keyword list: enough words to test quoting.
bool
test_keyword(std::string_view word)
{
	return word == "order" || word == "user" || word == "select" || word == "from";
}

BatchTarget
sessions()
{
	return BatchTarget{"public", "sessions", {"id"}, "created_at", std::nullopt};
}

std::string
sqlstate_of(auto &&f)
{
	try {
		f();
	} catch (const Error &e) {
		return e.sqlstate();
	}
	return "no error";
}

} // namespace

TEST(QuoteIdentifier, BareOnlyWhenPostgresWouldLeaveItBare)
{
	EXPECT_EQ(quote_identifier("status", test_keyword), "status");
	EXPECT_EQ(quote_identifier("_x1", test_keyword), "_x1");
	EXPECT_EQ(quote_identifier("Status", test_keyword), "\"Status\"");
	EXPECT_EQ(quote_identifier("1st", test_keyword), "\"1st\"");
	EXPECT_EQ(quote_identifier("created at", test_keyword), "\"created at\"");
	EXPECT_EQ(quote_identifier("a$b", test_keyword), "\"a$b\"");
	EXPECT_EQ(quote_identifier("order", test_keyword), "\"order\"");
	EXPECT_EQ(quote_identifier("orders", test_keyword), "orders");
	EXPECT_EQ(quote_identifier("sm\"ile", test_keyword), "\"sm\"\"ile\"");
	EXPECT_EQ(quote_identifier("x\"; DROP TABLE t; --", test_keyword), "\"x\"\"; DROP TABLE t; --\"");
}

TEST(QuoteIdentifier, WithoutAKeywordListEverythingIsQuoted)
{
	EXPECT_EQ(quote_identifier("status"), "\"status\"");
	EXPECT_EQ(quote_identifier("order"), "\"order\"");
}

TEST(QuoteIdentifier, RejectsEmptyAndNul)
{
	EXPECT_EQ(sqlstate_of([] { quote_identifier("", test_keyword); }), "42602");
	EXPECT_EQ(sqlstate_of([] { quote_identifier(std::string_view("a\0b", 3), test_keyword); }), "42602");
}

TEST(QuoteLiteral, AsPostgresQuotesLiterals)
{
	EXPECT_EQ(quote_literal("completed"), "'completed'");
	EXPECT_EQ(quote_literal("it's"), "'it''s'");
	EXPECT_EQ(quote_literal("a\\b"), "E'a\\\\b'");
	EXPECT_EQ(quote_literal(""), "''");
	EXPECT_EQ(quote_literal("x'); DROP TABLE t; --"), "'x''); DROP TABLE t; --'");
}

TEST(Limits, BatchSizeAndMaxBatchesAreBounded)
{
	EXPECT_NO_THROW(check_batch_size(1));
	EXPECT_NO_THROW(check_batch_size(1000000));
	EXPECT_EQ(sqlstate_of([] { check_batch_size(0); }), "22023");
	EXPECT_EQ(sqlstate_of([] { check_batch_size(-5); }), "22023");
	EXPECT_EQ(sqlstate_of([] { check_batch_size(1000001); }), "22023");
	EXPECT_NO_THROW(check_max_batches(1));
	EXPECT_EQ(sqlstate_of([] { check_max_batches(0); }), "22023");
	EXPECT_EQ(sqlstate_of([] { check_max_batches(2000000); }), "22023");
	try {
		check_batch_size(0);
	} catch (const Error &e) {
		EXPECT_STREQ(e.what(), "batch_size must be between 1 and 1000000");
		EXPECT_EQ(e.detail(), "batch_size is 0.");
		EXPECT_FALSE(e.hint().empty());
	}
}

TEST(TerminalStatuses, SetStatusIsAlwaysTerminal)
{
	using V = std::vector<std::string>;
	EXPECT_EQ(effective_terminal_statuses(V{"completed", "failed"}, "stale_expired"),
	          (V{"completed", "failed", "stale_expired"}));
	// Already there: not twice; duplicates in the input collapse, order kept.
	EXPECT_EQ(effective_terminal_statuses(V{"expired", "done", "expired"}, "expired"), (V{"expired", "done"}));
	EXPECT_EQ(effective_terminal_statuses(V{}, "gone"), (V{"gone"}));
}

TEST(ExpiryPlan, OneBatchIsTheBoundedLimitSubqueryUpdate)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.batch_sql(),
	          "UPDATE public.sessions SET status = $1 WHERE id IN (SELECT id FROM public.sessions"
	          " WHERE status <> ALL ($2) AND created_at < pg_catalog.now() - $3"
	          " ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED)");
}

TEST(ExpiryPlan, MultiColumnKeysCompareRows)
{
	BatchTarget t{"app", "Order Lines", {"order", "line_no"}, "placed_at", std::nullopt};
	ExpiryPlan plan(t, "state", test_keyword);
	EXPECT_EQ(plan.batch_sql(),
	          "UPDATE app.\"Order Lines\" SET state = $1 WHERE (\"order\", line_no) IN"
	          " (SELECT \"order\", line_no FROM app.\"Order Lines\""
	          " WHERE state <> ALL ($2) AND placed_at < pg_catalog.now() - $3"
	          " ORDER BY placed_at LIMIT $4 FOR UPDATE SKIP LOCKED)");
}

TEST(ExpiryPlan, FilterSitsOnItsOwnLinesInsideParentheses)
{
	BatchTarget t = sessions();
	t.filter = "tenant_id = 7 -- only tenant 7";
	ExpiryPlan plan(t, "status", test_keyword);
	std::string sql = plan.batch_sql();
	EXPECT_NE(sql.find(" AND (\ntenant_id = 7 -- only tenant 7\n) ORDER BY created_at LIMIT $4"), std::string::npos)
	    << sql;
}

TEST(ExpiryPlan, ValuesAreParametersNeverText)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	std::string sql = plan.batch_sql();
	for (const char *p : {"$1", "$2", "$3", "$4"})
		EXPECT_NE(sql.find(p), std::string::npos) << p;
	EXPECT_EQ(sql.find("$5"), std::string::npos);
	EXPECT_EQ(sql.find('\''), std::string::npos);
}

TEST(ExpiryPlan, NeedsAKey)
{
	BatchTarget t = sessions();
	t.key_columns.clear();
	EXPECT_EQ(sqlstate_of([&] { ExpiryPlan(t, "status", test_keyword); }), "22023");
}

TEST(ExpiryPlan, IndexAdviceIsPartialOnTheNonTerminalStatuses)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.index_advice({"completed", "it's done", "stale_expired"}),
	          "CREATE INDEX CONCURRENTLY ON public.sessions (created_at)"
	          " WHERE status NOT IN ('completed', 'it''s done', 'stale_expired')");
	EXPECT_EQ(plan.terminal_predicate({}), "status IS NOT NULL");
	// A partitioned table cannot be indexed concurrently.
	EXPECT_EQ(plan.index_advice({"done"}, false),
	          "CREATE INDEX ON public.sessions (created_at) WHERE status NOT IN ('done')");
}

TEST(PurgePlan, OneBatchIsTheBoundedLimitSubqueryDelete)
{
	PurgePlan plan(sessions(), test_keyword);
	EXPECT_EQ(plan.batch_sql(), "DELETE FROM public.sessions WHERE id IN (SELECT id FROM public.sessions"
	                            " WHERE created_at < pg_catalog.now() - $1"
	                            " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)");
	EXPECT_EQ(plan.index_advice(), "CREATE INDEX CONCURRENTLY ON public.sessions (created_at)");
	EXPECT_EQ(plan.index_advice(false), "CREATE INDEX ON public.sessions (created_at)");
}

TEST(PurgePlan, MultiColumnKeyAndFilter)
{
	BatchTarget t{"public", "events", {"tenant", "id"}, "at", std::string("kind = 'debug'")};
	PurgePlan plan(t, test_keyword);
	EXPECT_EQ(plan.batch_sql(), "DELETE FROM public.events WHERE (tenant, id) IN (SELECT tenant, id FROM public.events"
	                            " WHERE at < pg_catalog.now() - $1 AND (\nkind = 'debug'\n)"
	                            " ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)");
}

TEST(FilterCheck, PlansTheFilterAloneOverTheTable)
{
	EXPECT_EQ(filter_check_sql("public", "user", "a > 1", test_keyword),
	          "SELECT 1 FROM public.\"user\" WHERE (\na > 1\n) LIMIT 0");
}
