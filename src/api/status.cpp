// status.cpp: foreman._coordinators(), the shared-memory half of
// foreman.tier_status.
#include "api/access.hpp"
#include "bgw/shmem.hpp"
#include "pg/guard.hpp"
#include "pg/roles.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

using namespace foreman::bgw;

FOREMAN_FUNCTION(foreman_coordinators)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;

	// A copy of this database's slots, then tuples built without the lock.
	int max = shared()->nslots;
	CoordinatorSlot *copy = static_cast<CoordinatorSlot *>(palloc(sizeof(CoordinatorSlot) * max));
	int n = snapshot_coordinators(MyDatabaseId, copy, max);

	Oid caller = GetUserId();
	for (int i = 0; i < n; i++) {
		CoordinatorSlot &s = copy[i];
		// Another role's job: neither its name, id, owner nor progress.
		bool visible = !OidIsValid(s.current_job_owner) || foreman::pg::may_manage(caller, s.current_job_owner);
		Datum values[12];
		bool nulls[12] = {};
		values[0] = Int32GetDatum(s.tier_id);
		values[1] = Int32GetDatum(s.pid);
		values[2] = BoolGetDatum(s.leader);
		if (s.deposed)
			values[3] = CStringGetTextDatum("deposed: stalled, terminating");
		else if (s.foreign_lock_holder > 0)
			values[3] = CStringGetTextDatum(psprintf("%s (leading fenced: the leadership lock is held by pid %d, "
			                                         "which is not a coordinator)",
			                                         coordinator_state_name(s.state), (int)s.foreign_lock_holder));
		else if (s.foreign_lock_holder < 0)
			values[3] = CStringGetTextDatum(psprintf("%s (leading fenced: the leadership lock is held by a process "
			                                         "that is not a coordinator)",
			                                         coordinator_state_name(s.state)));
		else
			values[3] = CStringGetTextDatum(coordinator_state_name(s.state));
		values[4] = Int64GetDatum(s.current_job_id);
		nulls[4] = s.current_job_id == 0 || !visible;
		values[5] = CStringGetTextDatum(visible ? s.current_job : "(another role's job)");
		nulls[5] = s.current_job[0] == '\0';
		values[6] = CStringGetTextDatum(s.progress);
		nulls[6] = s.progress[0] == '\0' || !visible;
		values[7] = TimestampTzGetDatum(s.started_at);
		values[8] = TimestampTzGetDatum(s.heartbeat_at);
		values[9] = TimestampTzGetDatum(s.job_started_at);
		nulls[9] = s.job_started_at == 0;
		values[10] = Int64GetDatum(s.runs);
		values[11] = ObjectIdGetDatum(s.current_job_owner);
		nulls[11] = !OidIsValid(s.current_job_owner) || !visible;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}

// Stalls the launcher saw in this database's tiers (stall supervision).
FOREMAN_FUNCTION(foreman_tier_stalls)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	TierStalls copy[kMaxTiersPerDatabase];
	int n = snapshot_stalls(MyDatabaseId, copy, kMaxTiersPerDatabase);
	for (int i = 0; i < n; i++) {
		Datum values[4] = {Int32GetDatum(copy[i].tier_id), Int64GetDatum(copy[i].count),
		                   TimestampTzGetDatum(copy[i].last_at), Int32GetDatum(copy[i].last_pid)};
		bool nulls[4] = {};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}

// Executors of this database's parallel tiers (reserved or running).
FOREMAN_FUNCTION(foreman_executors)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	ExecutorSlot *copy = static_cast<ExecutorSlot *>(palloc(sizeof(ExecutorSlot) * kMaxExecutors));
	int n = snapshot_executors(MyDatabaseId, copy, kMaxExecutors);
	Oid caller = GetUserId();
	for (int i = 0; i < n; i++) {
		bool visible = !OidIsValid(copy[i].owner) || foreman::pg::may_manage(caller, copy[i].owner);
		Datum values[6] = {Int32GetDatum(copy[i].tier_id), Int32GetDatum(copy[i].pid > 0 ? copy[i].pid : 0),
		                   Int64GetDatum(copy[i].run_id), Int64GetDatum(copy[i].job_id),
		                   TimestampTzGetDatum(copy[i].started_at), CStringGetTextDatum(copy[i].progress)};
		bool nulls[6] = {false, copy[i].pid <= 0, copy[i].run_id == 0 || !visible, copy[i].run_id == 0 || !visible,
		                 false, copy[i].progress[0] == '\0' || !visible};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
