// row_writes.hpp: the executor plumbing of the direct writes
// (run_write.cpp): a statement's executor state and snapshot, the writer
// (ResultRelInfo) of a table's rows, and the writers the starts of one
// transaction share. Not for other files.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "nodes/execnodes.h"
#include "utils/relcache.h"
}

namespace foreman::bgw {

// A statement's executor state, its command id and the snapshot the
// statement would have had (READ COMMITTED); end_writes ends it and closes
// the two tables the caller opened.
EState *begin_writes();
void end_writes(EState *estate, Relation job_rel, Relation run_rel);

// The writer of rel's rows for operation (CMD_UPDATE, CMD_INSERT) in
// estate's memory: indexes open, CHECK constraints, WHEN conditions and
// index predicates compiled from the kept trees (pg/expr_cache.hpp).
ResultRelInfo *open_writer(EState *estate, Relation rel, CmdType operation);

// A row (locked, in old) updated to new_values; a row (virtual, every
// column set) inserted - by writer, or with none by a writer of their own.
void update_row(EState *estate, Relation rel, TupleTableSlot *old, TupleTableSlot *new_values,
                ResultRelInfo *writer = nullptr);
void insert_row(EState *estate, Relation rel, TupleTableSlot *row, ResultRelInfo *writer = nullptr);

// The writers the starts of one transaction share: foreman.job's update
// and foreman.job_run's insert.
struct StartWriters {
	ResultRelInfo *job_update;
	ResultRelInfo *run_insert;
};

// Whether a start in this transaction shares them (top level only).
bool shares_start_writes(Relation job_rel, Relation run_rel);

// begin_writes and end_writes for a start that shares them; the first
// start of a transaction makes them, its commit closes them.
EState *begin_start_write(Relation job_rel, Relation run_rel, StartWriters *writers);
void end_start_write(Relation job_rel, Relation run_rel);

} // namespace foreman::bgw
