// command.cpp: exec_simple_query for a background worker.
//
// Modelled on PostgreSQL's exec_simple_query (tcop/postgres.c): parse the
// whole string, then analyze, plan and run each statement through the unnamed
// portal with isTopLevel = true. Parse and plan trees live in a context that
// outlives transactions, because a statement (COMMIT, CALL of a procedure that
// commits) may end the transaction it started in.
//
// A job whose command is one plannable statement (SELECT, INSERT, UPDATE,
// DELETE, MERGE) keeps it prepared between its runs, as a client's prepared
// statement or a PL/pgSQL statement is kept: PostgreSQL's plan cache holds
// the analysed statement and its plan, checks them at each run and makes
// them again when a table, function, type, the search_path or the role they
// depend on changed (plancache.c). A run then costs no parse, analysis or
// planning (about a fifth of a trivial run's command, profiled). A plan is
// kept at the job's second run in the process (ran_before). At most
// kMaxKeptPlans are kept per process; a job whose plan was not used for
// kKeptPlanIdleUs gives its place to another. Before the commit of a
// command of one such statement, kept or not, the caller may record the
// run in its transaction (BeforeCommit).
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
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
}

namespace foreman::bgw {

namespace {

bool xact_started = false;
const BeforeCommit *before_commit = nullptr; // of the command running

constexpr int kMaxKeptPlans = 128;
constexpr int64 kKeptPlanIdleUs = 15 * 60 * USECS_PER_SEC;

// A job's kept statement: for its job and owner, while its text is the
// job's command (psrc->query_string, compared at each run).
struct KeptPlan {
	int64 job_id; // 0: a free place
	Oid user_id;
	CachedPlanSource *psrc; // saved: CacheMemoryContext
	TimestampTz last_used;
};
KeptPlan kept[kMaxKeptPlans];
// Jobs this process ran once without keeping their plan (the latest
// kRanOnce): a plan is kept at a job's second run here, so a process that
// runs a job once (an executor started for one burst) does not pay for
// copying its trees into the plan cache. Four times the kept plans, so that
// a tier cycling through a few more jobs than can be kept still keeps
// kMaxKeptPlans of them.
constexpr int kRanOnce = 4 * kMaxKeptPlans;
int64 ran_once[kRanOnce];
int ran_once_next = 0;

// Whether job_id ran here once before; if not, it is remembered.
bool
ran_before(int64 job_id)
{
	for (int64 id : ran_once)
		if (id == job_id)
			return true;
	ran_once[ran_once_next] = job_id;
	ran_once_next = (ran_once_next + 1) % kRanOnce;
	return false;
}

// The kept statement of this job, as this user, for this text. One kept
// for another owner or an older text of the command is dropped.
CachedPlanSource *
find_kept(int64 job_id, Oid user_id, const char *sql)
{
	if (job_id == 0)
		return nullptr;
	for (KeptPlan &k : kept) {
		if (k.job_id != job_id)
			continue;
		if (k.user_id == user_id && strcmp(k.psrc->query_string, sql) == 0) {
			k.last_used = GetCurrentTransactionStartTimestamp();
			return k.psrc;
		}
		CachedPlanSource *old = k.psrc;
		k = KeptPlan{};
		DropCachedPlan(old);
		return nullptr;
	}
	return nullptr;
}

// A place for a new kept statement: a free one, or the least recently used
// if it was not used for kKeptPlanIdleUs (dropped). Null: none.
KeptPlan *
place_to_keep()
{
	KeptPlan *oldest = nullptr;
	for (KeptPlan &k : kept) {
		if (k.job_id == 0)
			return &k;
		if (oldest == nullptr || k.last_used < oldest->last_used)
			oldest = &k;
	}
	if (GetCurrentTransactionStartTimestamp() - oldest->last_used < kKeptPlanIdleUs)
		return nullptr;
	CachedPlanSource *old = oldest->psrc;
	*oldest = KeptPlan{};
	DropCachedPlan(old);
	return oldest;
}

// Statements whose analysis and plan may be kept: plannable ones, not
// SELECT INTO (a utility statement once analysed).
bool
keepable(Node *stmt)
{
	switch (nodeTag(stmt)) {
	case T_SelectStmt:
		return castNode(SelectStmt, stmt)->intoClause == nullptr;
	case T_InsertStmt:
	case T_UpdateStmt:
	case T_DeleteStmt:
	case T_MergeStmt:
		return true;
	default:
		return false;
	}
}

// Analyses a keepable statement into a saved plan source, kept in place.
// Its memory is the job context's until it is saved, so an error in the
// analysis leaves nothing behind.
CachedPlanSource *
keep(KeptPlan *place, int64 job_id, RawStmt *parsetree, const char *sql, CommandTag tag)
{
	CachedPlanSource *psrc = CreateCachedPlan(parsetree, sql, tag);
	PushActiveSnapshot(GetTransactionSnapshot());
	List *querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, sql, nullptr, 0, nullptr);
	PopActiveSnapshot();
	CompleteCachedPlan(psrc, querytrees, nullptr, nullptr, 0, nullptr, nullptr, CURSOR_OPT_PARALLEL_OK, true);
	SaveCachedPlan(psrc);
	*place = KeptPlan{job_id, GetUserId(), psrc, GetCurrentTransactionStartTimestamp()};
	int n = 0;
	for (const KeptPlan &k : kept)
		n += k.job_id != 0;
	elog(DEBUG1, "pg_foreman: kept the plan of job %lld's command for its next runs (%d kept)", (long long)job_id, n);
	return psrc;
}

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

// The caller's record of the run, before the commit of a command of one
// plannable statement (BeforeCommit).
void
record_before_commit(CommandOutcome *outcome)
{
	if (before_commit != nullptr)
		outcome->recorded = before_commit->record(before_commit->arg, *outcome);
}

// Runs a defined portal to its end, as the statement's last step; the
// statement's timeout (enabled by the caller) ends with it.
void
run_portal(Portal portal, MemoryContext context, CommandOutcome *outcome)
{
	PortalStart(portal, nullptr, 0, InvalidSnapshot);
	int16 format = 0;
	PortalSetResultFormat(portal, 1, &format);
	DestReceiver *receiver = CreateDestReceiver(DestNone);

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
}

// Runs a job's one keepable statement from its kept plan source (psrc), or
// keeps it first (parsetree, in place), as exec_bind_message runs a
// prepared statement: the plan cache makes the analysis and the plan again
// when what they depend on changed.
void
run_kept(CachedPlanSource *psrc, KeptPlan *place, int64 job_id, RawStmt *parsetree, const char *sql,
         MemoryContext context, CommandOutcome *outcome)
{
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	if (psrc == nullptr)
		psrc = keep(place, job_id, parsetree, sql, CreateCommandTag(parsetree->stmt));
	MemoryContext old = MemoryContextSwitchTo(context);
	Portal portal = CreatePortal("", true, true);
	portal->visible = false;
	// Analysis and planning again, if needed, take a snapshot.
	PushActiveSnapshot(GetTransactionSnapshot());
	// No resource owner: the portal holds the plan's reference (released
	// when it is dropped, also on an error).
	CachedPlan *cplan = GetCachedPlan(psrc, nullptr, nullptr, nullptr);
	PortalDefineQuery(portal, nullptr, psrc->query_string, psrc->commandTag, cplan->stmt_list, cplan);
	PopActiveSnapshot();
	MemoryContextSwitchTo(old);
	CHECK_FOR_INTERRUPTS();
	run_portal(portal, context, outcome);
	record_before_commit(outcome);
	finish_xact();
}

void
run_statements(const char *sql, int64 job_id, MemoryContext context, CommandOutcome *outcome)
{
	start_xact();
	CachedPlanSource *psrc = find_kept(job_id, GetUserId(), sql);
	if (psrc != nullptr) {
		run_kept(psrc, nullptr, job_id, nullptr, sql, context, outcome);
		return;
	}
	MemoryContext old = MemoryContextSwitchTo(context);
	List *parsetrees = pg_parse_query(sql);
	MemoryContextSwitchTo(old);
	if (job_id != 0 && list_length(parsetrees) == 1 && keepable(linitial_node(RawStmt, parsetrees)->stmt) &&
	    ran_before(job_id)) {
		KeptPlan *place = place_to_keep();
		if (place != nullptr) {
			run_kept(nullptr, place, job_id, linitial_node(RawStmt, parsetrees), sql, context, outcome);
			return;
		}
	}

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
		MemoryContextSwitchTo(old);
		run_portal(portal, context, outcome);

		if (IsA(parsetree->stmt, TransactionStmt)) {
			// BEGIN, COMMIT, ROLLBACK: commit the xact command; the next
			// statement starts a new one (as in exec_simple_query).
			finish_xact();
		} else if (last) {
			if (use_implicit_block)
				EndImplicitTransactionBlock();
			// A command of one plannable statement, as a kept one.
			else if (keepable(parsetree->stmt))
				record_before_commit(outcome);
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
run_command(const char *sql, int64 job_id, MemoryContext context, CommandOutcome *outcome,
            const BeforeCommit *before)
{
	memset(outcome, 0, sizeof *outcome);
	xact_started = false;
	before_commit = job_id != 0 ? before : nullptr;
	debug_query_string = sql;

	MemoryContextSwitchTo(context);
	ErrorData *edata = pg::capture_pg_error([&]() {
		run_statements(sql, job_id, context, outcome);
		outcome->ok = true;
	});
	if (edata) {
		HOLD_INTERRUPTS();
		disable_timeout(STATEMENT_TIMEOUT, false);
		AbortOutOfAnyTransaction();
		xact_started = false;
		outcome->ok = false;
		outcome->recorded = false; // rolled back with the command
		outcome->sqlerrcode = edata->sqlerrcode;
		if (edata->detail)
			outcome->message = psprintf("%s (%s)", edata->message, edata->detail);
		else
			outcome->message = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
	}

	debug_query_string = nullptr;
	before_commit = nullptr;
	MemoryContextSwitchTo(context);
}

} // namespace foreman::bgw
