// Unit tests of the batch statements of bounded maintenance: quoting, key
// shapes, batch shapes (oldest first, keyset, sweep; by ctid or by key),
// parameters, the filter's placement and the index advice.
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

// The stale predicate of sessions, as every expiry statement spells it.
constexpr const char *kStale = "status <> ALL ($2) AND created_at < pg_catalog.now() - $3";

TEST(ExpiryPlan, OneBatchLocksOldestFirstAndChangesByCtid)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.batch_sql(),
	          std::string("WITH batch AS MATERIALIZED (SELECT ctid FROM ONLY public.sessions WHERE ") + kStale +
	              " ORDER BY created_at LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED),"
	              " changed AS (UPDATE ONLY public.sessions SET status = $1"
	              " WHERE ctid = ANY (ARRAY(SELECT ctid FROM batch)) AND " +
	              kStale +
	              " RETURNING 1)"
	              " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch)");
}

TEST(ExpiryPlan, ByKeyTheChangeJoinsOnTheKey)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.batch_sql({BatchScan::Oldest, RowMatch::Key, false}),
	          std::string("WITH batch AS MATERIALIZED (SELECT id FROM public.sessions WHERE ") + kStale +
	              " ORDER BY created_at LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED),"
	              " changed AS (UPDATE public.sessions SET status = $1 WHERE id IN (SELECT id FROM batch) AND " +
	              kStale +
	              " RETURNING 1)"
	              " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch)");
}

TEST(ExpiryPlan, KeysetResumesAfterTheLastTimestampAndKey)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.batch_sql({BatchScan::Keyset, RowMatch::Ctid, true}),
	          std::string("WITH batch AS MATERIALIZED (SELECT ctid, created_at, id FROM ONLY public.sessions WHERE ") +
	              kStale +
	              " AND (created_at, id) > ($5, $6)"
	              " ORDER BY created_at, id LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED),"
	              " changed AS (UPDATE ONLY public.sessions SET status = $1"
	              " WHERE ctid = ANY (ARRAY(SELECT ctid FROM batch)) AND " +
	              kStale +
	              " RETURNING 1)"
	              " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch),"
	              " last.* FROM (SELECT) AS one LEFT JOIN"
	              " (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1) AS last ON true");
	// The first batch of a run has no resume point yet.
	std::string first = plan.batch_sql({BatchScan::Keyset, RowMatch::Ctid, false});
	EXPECT_EQ(first.find("$5"), std::string::npos) << first;
	EXPECT_NE(first.find(" ORDER BY created_at, id LIMIT $4"), std::string::npos) << first;
}

TEST(ExpiryPlan, KeysetByKeyOnAPartitionedTable)
{
	// The partition key is part of the primary key: the timestamp is not
	// repeated in the keyset.
	BatchTarget t{"public", "events", {"id", "at"}, "at", std::nullopt};
	ExpiryPlan plan(t, "status", test_keyword);
	std::string sql = plan.batch_sql({BatchScan::Keyset, RowMatch::Key, true});
	EXPECT_NE(sql.find("(SELECT at, id FROM public.events WHERE status <> ALL ($2) AND at < pg_catalog.now() - $3"
	                   " AND (at, id) > ($5, $6) ORDER BY at, id LIMIT $4"),
	          std::string::npos)
	    << sql;
	EXPECT_NE(sql.find("UPDATE public.events SET status = $1 WHERE (id, at) IN (SELECT id, at FROM batch)"),
	          std::string::npos)
	    << sql;
	EXPECT_EQ(sql.find("ONLY"), std::string::npos) << sql;
	EXPECT_EQ(sql.find("ctid"), std::string::npos) << sql;
}

TEST(ExpiryPlan, SweepTakesARangeOfBlocks)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(plan.batch_sql({BatchScan::Sweep, RowMatch::Ctid, true}),
	          std::string("WITH batch AS MATERIALIZED (SELECT ctid FROM ONLY public.sessions WHERE ") + kStale +
	              " AND ctid >= $5 AND ctid < $6 LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED),"
	              " changed AS (UPDATE ONLY public.sessions SET status = $1"
	              " WHERE ctid = ANY (ARRAY(SELECT ctid FROM batch)) AND " +
	              kStale +
	              " RETURNING 1)"
	              " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch)");
}

TEST(ExpiryPlan, ShapesWithoutAStatementAreRefused)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	EXPECT_EQ(sqlstate_of([&] { plan.batch_sql({BatchScan::Sweep, RowMatch::Key, true}); }), "22023");
	EXPECT_EQ(sqlstate_of([&] { plan.batch_sql({BatchScan::Oldest, RowMatch::Ctid, true}); }), "22023");
	EXPECT_EQ(sqlstate_of([&] { plan.batch_sql({BatchScan::Sweep, RowMatch::Ctid, false}); }), "22023");
}

TEST(ExpiryPlan, AStatusInAKeyIsLockedForUpdate)
{
	ExpiryPlan plan(sessions(), "status", test_keyword, RowLock::Update);
	std::string sql = plan.batch_sql();
	EXPECT_NE(sql.find("LIMIT $4 FOR UPDATE SKIP LOCKED"), std::string::npos) << sql;
}

TEST(ExpiryPlan, MultiColumnKeysCompareRows)
{
	BatchTarget t{"app", "Order Lines", {"order", "line_no"}, "placed_at", std::nullopt};
	ExpiryPlan plan(t, "state", test_keyword);
	std::string sql = plan.batch_sql({BatchScan::Keyset, RowMatch::Key, true});
	EXPECT_NE(sql.find("(SELECT placed_at, \"order\", line_no FROM app.\"Order Lines\""
	                   " WHERE state <> ALL ($2) AND placed_at < pg_catalog.now() - $3"
	                   " AND (placed_at, \"order\", line_no) > ($5, $6, $7)"
	                   " ORDER BY placed_at, \"order\", line_no LIMIT $4"),
	          std::string::npos)
	    << sql;
	EXPECT_NE(sql.find("UPDATE app.\"Order Lines\" SET state = $1 WHERE (\"order\", line_no) IN"
	                   " (SELECT \"order\", line_no FROM batch)"),
	          std::string::npos)
	    << sql;
}

TEST(ExpiryPlan, FilterSitsOnItsOwnLinesInsideParentheses)
{
	BatchTarget t = sessions();
	t.filter = "tenant_id = 7 -- only tenant 7";
	ExpiryPlan plan(t, "status", test_keyword);
	std::string sql = plan.batch_sql({BatchScan::Keyset, RowMatch::Ctid, true});
	// In the lock and again where the row is changed (checked once more there).
	std::string filtered = " AND (\ntenant_id = 7 -- only tenant 7\n)";
	EXPECT_NE(sql.find(filtered + " AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $4"),
	          std::string::npos)
	    << sql;
	EXPECT_NE(sql.find(filtered + " RETURNING 1)"), std::string::npos) << sql;
}

TEST(ExpiryPlan, AStatusOrKeyWithBracesIsNoFormatString)
{
	BatchTarget t{"public", "t{0}", {"k{}"}, "at", std::nullopt};
	ExpiryPlan plan(t, "s{1}", test_keyword);
	std::string sql = plan.batch_sql({BatchScan::Keyset, RowMatch::Key, true});
	EXPECT_NE(sql.find("UPDATE public.\"t{0}\" SET \"s{1}\" = $1 WHERE \"k{}\" IN (SELECT \"k{}\" FROM batch)"),
	          std::string::npos)
	    << sql;
}

TEST(ExpiryPlan, ValuesAreParametersNeverText)
{
	ExpiryPlan plan(sessions(), "status", test_keyword);
	for (BatchShape shape : {BatchShape{}, BatchShape{BatchScan::Keyset, RowMatch::Ctid, true},
	                         BatchShape{BatchScan::Sweep, RowMatch::Ctid, true}}) {
		std::string sql = plan.batch_sql(shape);
		for (const char *p : {"$1", "$2", "$3", "$4"})
			EXPECT_NE(sql.find(p), std::string::npos) << p;
		EXPECT_EQ(sql.find("$7"), std::string::npos);
		EXPECT_EQ(sql.find('\''), std::string::npos);
	}
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
	EXPECT_EQ(plan.plain_index(), "CREATE INDEX CONCURRENTLY ON public.sessions (created_at)");
}

TEST(ExpiryPlan, IndexAdviceForADateAddsTheKey)
{
	// Thousands of rows share a day: with the key in the index, the keyset
	// of the batches starts exactly where the last batch stopped.
	BatchTarget t{"app", "Order Lines", {"order", "line_no"}, "placed_on", std::nullopt, true};
	ExpiryPlan plan(t, "state", test_keyword);
	EXPECT_EQ(plan.index_advice({"done"}),
	          "CREATE INDEX CONCURRENTLY ON app.\"Order Lines\" (placed_on, \"order\", line_no)"
	          " WHERE state NOT IN ('done')");
}

TEST(PurgePlan, OneBatchLocksOldestFirstAndDeletesByCtid)
{
	PurgePlan plan(sessions(), test_keyword);
	EXPECT_EQ(plan.batch_sql(),
	          "WITH batch AS MATERIALIZED (SELECT ctid FROM ONLY public.sessions"
	          " WHERE created_at < pg_catalog.now() - $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
	          " changed AS (DELETE FROM ONLY public.sessions WHERE ctid = ANY (ARRAY(SELECT ctid FROM batch))"
	          " AND created_at < pg_catalog.now() - $1 RETURNING 1)"
	          " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch)");
	EXPECT_EQ(plan.index_advice(), "CREATE INDEX CONCURRENTLY ON public.sessions (created_at)");
	EXPECT_EQ(plan.index_advice(false), "CREATE INDEX ON public.sessions (created_at)");
}

TEST(PurgePlan, KeysetAndSweepResumeFromTheThirdParameter)
{
	PurgePlan plan(sessions(), test_keyword);
	std::string keyset = plan.batch_sql({BatchScan::Keyset, RowMatch::Ctid, true});
	EXPECT_NE(keyset.find("AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"),
	          std::string::npos)
	    << keyset;
	std::string sweep = plan.batch_sql({BatchScan::Sweep, RowMatch::Ctid, true});
	EXPECT_NE(sweep.find("AND ctid >= $3 AND ctid < $4 LIMIT $2 FOR UPDATE SKIP LOCKED"),
	          std::string::npos)
	    << sweep;
}

TEST(PurgePlan, MultiColumnKeyAndFilter)
{
	BatchTarget t{"public", "events", {"tenant", "id"}, "at", std::string("kind = 'debug'")};
	PurgePlan plan(t, test_keyword);
	EXPECT_EQ(plan.batch_sql({BatchScan::Oldest, RowMatch::Key, false}),
	          "WITH batch AS MATERIALIZED (SELECT tenant, id FROM public.events"
	          " WHERE at < pg_catalog.now() - $1 AND (\nkind = 'debug'\n)"
	          " ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED),"
	          " changed AS (DELETE FROM public.events WHERE (tenant, id) IN (SELECT tenant, id FROM batch)"
	          " AND at < pg_catalog.now() - $1 AND (\nkind = 'debug'\n) RETURNING 1)"
	          " SELECT (SELECT pg_catalog.count(*) FROM changed), (SELECT pg_catalog.count(*) FROM batch)");
}

TEST(FilterCheck, PlansTheFilterAloneOverTheTable)
{
	EXPECT_EQ(filter_check_sql("public", "user", "a > 1", test_keyword),
	          "SELECT 1 FROM public.\"user\" WHERE (\na > 1\n) LIMIT 0");
}
