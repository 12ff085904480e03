// command.cpp: exec_simple_query for a background worker.
//
// Modelled on PostgreSQL's exec_simple_query (tcop/postgres.c): parse the
// whole string, then analyze, plan and run each statement through the unnamed
// portal with isTopLevel = true. Parse and plan trees live in a context that
// outlives transactions, because a statement (COMMIT, CALL of a procedure that
// commits) may end the transaction it started in.
#include "bgw/command.hpp"
#include "pg/guard.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/cmdtag.h"
#include "tcop/dest.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
}

namespace foreman::bgw {

namespace {

bool xact_started = false;

// Statements a job may not run: a job has no client to COPY to or from (the
// protocol messages would reach the server log), and a library a job LOADs
// would stay loaded for every later job of every owner.
void
refuse_statement(Node *stmt)
{
	if (IsA(stmt, CopyStmt) && castNode(CopyStmt, stmt)->filename == nullptr)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("COPY TO STDOUT and COPY FROM STDIN are not supported in a job"),
		                errdetail("A job has no client to send rows to or read them from."),
		                errhint("Use INSERT ... SELECT, or COPY to or from a file on the server.")));
	if (IsA(stmt, LoadStmt) && !superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("LOAD is not allowed in a job"),
		                errdetail("A loaded library would stay loaded for the jobs of every other role."),
		                errhint("Add the library to shared_preload_libraries or session_preload_libraries.")));
}

void
start_xact()
{
	if (!xact_started) {
		StartTransactionCommand();
		xact_started = true;
	}
}

void
finish_xact()
{
	if (xact_started) {
		CommitTransactionCommand();
		xact_started = false;
	}
}

void
run_statements(const char *sql, MemoryContext context, CommandOutcome *outcome)
{
	start_xact();
	MemoryContext old = MemoryContextSwitchTo(context);
	List *parsetrees = pg_parse_query(sql);
	MemoryContextSwitchTo(old);

	// Several statements run in one implicit transaction block, as in
	// exec_simple_query; statements that refuse blocks then refuse here too.
	bool use_implicit_block = list_length(parsetrees) > 1;

	ListCell *lc;
	foreach (lc, parsetrees) {
		RawStmt *parsetree = lfirst_node(RawStmt, lc);
		bool last = lnext(parsetrees, lc) == nullptr;
		CommandTag tag = CreateCommandTag(parsetree->stmt);

		start_xact();
		if (use_implicit_block)
			BeginImplicitTransactionBlock();

		refuse_statement(parsetree->stmt);

		if (IsAbortedTransactionBlockState())
			ereport(ERROR, (errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
			                errmsg("current transaction is aborted, commands ignored until end of transaction block")));

		if (StatementTimeout > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);

		bool snapshot_set = false;
		if (analyze_requires_snapshot(parsetree)) {
			PushActiveSnapshot(GetTransactionSnapshot());
			snapshot_set = true;
		}

		old = MemoryContextSwitchTo(context);
		List *querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, sql, nullptr, 0, nullptr);
		List *plantrees = pg_plan_queries(querytrees, sql, CURSOR_OPT_PARALLEL_OK, nullptr);
		if (snapshot_set)
			PopActiveSnapshot();
		CHECK_FOR_INTERRUPTS();

		Portal portal = CreatePortal("", true, true);
		portal->visible = false;
		PortalDefineQuery(portal, nullptr, sql, tag, plantrees, nullptr);
		PortalStart(portal, nullptr, 0, InvalidSnapshot);
		int16 format = 0;
		PortalSetResultFormat(portal, 1, &format);
		DestReceiver *receiver = CreateDestReceiver(DestNone);
		MemoryContextSwitchTo(old);

		QueryCompletion qc;
		InitializeQueryCompletion(&qc);
		(void)pg::compat::portal_run(portal, FETCH_ALL, true, receiver, receiver, &qc);
		receiver->rDestroy(receiver);
		PortalDrop(portal, false);

		if (StatementTimeout > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);

		outcome->command_tag = MemoryContextStrdup(context, GetCommandTagName(qc.commandTag));
		if (command_tag_display_rowcount(qc.commandTag))
			outcome->rows += qc.nprocessed;

		if (IsA(parsetree->stmt, TransactionStmt)) {
			// BEGIN, COMMIT, ROLLBACK: commit the xact command; the next
			// statement starts a new one (as in exec_simple_query).
			finish_xact();
		} else if (last) {
			if (use_implicit_block)
				EndImplicitTransactionBlock();
			finish_xact();
		} else {
			CommandCounterIncrement();
		}
	}
	// An explicit BEGIN without COMMIT: psql -c would end the session and
	// roll it back; we roll it back and say so.
	if (IsTransactionBlock()) {
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
		                errmsg("command left a transaction block open; it was rolled back"),
		                errhint("End the command with COMMIT.")));
	}
	finish_xact();
}

} // namespace

void
run_command(const char *sql, MemoryContext context, CommandOutcome *outcome)
{
	memset(outcome, 0, sizeof *outcome);
	xact_started = false;
	debug_query_string = sql;

	MemoryContextSwitchTo(context);
	ErrorData *edata = pg::capture_pg_error([&]() {
		run_statements(sql, context, outcome);
		outcome->ok = true;
	});
	if (edata) {
		HOLD_INTERRUPTS();
		disable_timeout(STATEMENT_TIMEOUT, false);
		AbortOutOfAnyTransaction();
		xact_started = false;
		outcome->ok = false;
		outcome->sqlerrcode = edata->sqlerrcode;
		if (edata->detail)
			outcome->message = psprintf("%s (%s)", edata->message, edata->detail);
		else
			outcome->message = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
	}

	debug_query_string = nullptr;
	MemoryContextSwitchTo(context);
}

} // namespace foreman::bgw
