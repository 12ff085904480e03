// command.hpp: running a job's command the way the simple-query protocol would.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

// How a command ended. Strings are palloc'd in the context given to run_command.
struct CommandOutcome {
	bool ok;
	int sqlerrcode;      // when !ok
	char *message;       // when !ok: the error message (with detail appended)
	char *command_tag;   // the last statement's tag, e.g. "UPDATE"
	uint64 rows;         // rows processed by the statements whose tags report a count
	bool recorded;       // when ok: before_commit recorded the run in the command's transaction
};

// Called once the statement of a command of one SELECT, INSERT, UPDATE,
// DELETE or MERGE (kept or not, below) has run, just before
// its transaction commits, as the job's owner: true when it recorded the
// run's end in that transaction (which then commits it with the command's
// effects, or rolls both back). An error it throws fails the command.
struct BeforeCommit {
	bool (*record)(void *arg, const CommandOutcome &so_far);
	void *arg;
};

// Runs sql as top-level statements: a single statement in its own transaction
// (so VACUUM, CREATE INDEX CONCURRENTLY and CALL of a procedure that commits
// work), several in one implicit transaction block, BEGIN/COMMIT honoured, as
// psql -c would. Never throws or longjmps: errors end up in *outcome, and the
// process is back outside any transaction when it returns. Parse trees live
// in `context`, which the caller resets. A job's (job_id, not 0) command that
// is one SELECT, INSERT, UPDATE, DELETE or MERGE keeps its plan between runs
// (command.cpp); before_commit (may be null) is called before its commit.
void run_command(const char *sql, int64 job_id, MemoryContext context, CommandOutcome *outcome,
                 const BeforeCommit *before_commit = nullptr);

} // namespace foreman::bgw
