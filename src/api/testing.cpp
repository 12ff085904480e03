// testing.cpp: SQL-callable functions for the test suites only.
//
// Their symbols are in the library, but no CREATE EXTENSION script declares
// them: the test suites create them (schema foreman_test in pg_regress, or functions of their own in TAP), and
// only a superuser can create C functions. They prove the error boundary in
// both directions and start a second coordinator for leadership tests.
#include "bgw/coordinator.hpp"
#include "bgw/launcher.hpp"
#include "core/error.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "postmaster/bgworker.h"
#include "storage/lock.h"
#include "utils/builtins.h"
}

#include <stdexcept>
#include <string>

namespace {

int destructors_run = 0;

// Observable unwinding: counts its destructor runs.
struct UnwindProbe {
	std::string label = "probe";
	~UnwindProbe() { destructors_run++; }
};

} // namespace

// A C++ exception with a SQLSTATE becomes an ordinary ERROR with it.
FOREMAN_FUNCTION(foreman_test_throw_core_error)
{
	// Both read before any C++ object exists (text_to_cstring may ereport).
	const char *state_arg = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *message_arg = text_to_cstring(PG_GETARG_TEXT_PP(1));
	std::string state = state_arg;
	std::string message = message_arg;
	if (state.size() != 5)
		throw std::invalid_argument("sqlstate must have five characters");
	throw foreman::core::Error(state.c_str(), message, "thrown by foreman_test.throw_core_error", "this is a test");
}

// Any other C++ exception becomes an internal error (XX000).
FOREMAN_FUNCTION(foreman_test_throw_std_exception)
{
	throw std::runtime_error(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}

// Runs sql through pg_guard while a C++ object with a destructor is alive: a
// PostgreSQL ERROR becomes pg::PgError, the destructor runs, and the error
// reaches the client with its original SQLSTATE.
FOREMAN_FUNCTION(foreman_test_pg_error_unwinds)
{
	const char *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	UnwindProbe probe;
	foreman::pg::pg_guard([sql]() {
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		SPI_execute(sql, false, 0);
		SPI_finish();
	});
	PG_RETURN_INT32(static_cast<int32>(probe.label.size()));
}

FOREMAN_FUNCTION(foreman_test_destructor_count)
{
	PG_RETURN_INT32(destructors_run);
}

// Starts another coordinator for a tier of this database (a follower while
// the launcher's lives); returns its pid.
FOREMAN_FUNCTION(foreman_test_start_coordinator)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser")));
	int32 tier_id = PG_GETARG_INT32(0);
	const char *tier_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	BackgroundWorkerHandle *handle = foreman::bgw::start_coordinator(MyDatabaseId, get_database_name(MyDatabaseId),
	                                                                 tier_id, tier_name, MyProcPid);
	if (!handle)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED), errmsg("no background worker slot free")));
	pid_t pid;
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("coordinator did not start")));
	PG_RETURN_INT32(pid);
}

// Takes a tier's leadership lock in this session (waiting for it), as only
// a C extension could: the foreign holder the coordinators must detect,
// report and lead around (fenced by the epoch).
FOREMAN_FUNCTION(foreman_test_take_leadership_lock)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser")));
	LOCKTAG tag;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, foreman::bgw::kLeadershipLockClass, (uint32)PG_GETARG_INT32(0),
	                     foreman::bgw::kLeadershipLockSubid);
	(void)LockAcquire(&tag, ExclusiveLock, true, false);
	PG_RETURN_BOOL(true);
}
