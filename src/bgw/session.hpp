// session.hpp: running a job as its owner, and leaving nothing behind.
//
// A coordinator is one session that runs the jobs of many owners. Before a
// job it becomes the owner (session and current user) with
// SECURITY_LOCAL_USERID_CHANGE set, so the job cannot SET ROLE or SET SESSION
// AUTHORIZATION its way back to the bootstrap superuser the worker connected
// as. After the job, everything a session can keep is reset: GUCs (session
// characteristics included), prepared statements, cursors, temporary
// objects, advisory locks, sequence caches - what DISCARD ALL would reset
// (LISTEN is refused in background workers) - and the seed of random(), so
// no job can predict another's random values.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

// Remembers the identity the worker connected as. Call once after connecting.
void session_init();

// Becomes the job's owner. Call outside a transaction.
void session_enter_owner(Oid owner, bool owner_is_superuser);

// Goes back to the worker's own identity. Call outside a transaction.
void session_leave_owner();

// The role the process connected as (the bookkeeping's).
Oid session_worker_user();

// Resets the session state a job may have left. Call inside a transaction,
// as the worker's own identity. Releases every advisory lock the job left,
// but never pg_foreman's own (the leadership lock stays with its leader).
void session_reset();

} // namespace foreman::bgw
