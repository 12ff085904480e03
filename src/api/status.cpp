// status.cpp: foreman._coordinators(), the shared-memory half of
// foreman.tier_status.
#include "api/catalog.hpp"
#include "bgw/shmem.hpp"
#include "pg/guard.hpp"

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

	// Copy this database's slots under the lock, then build tuples without it.
	Shared *sh = shared();
	int n = 0;
	CoordinatorSlot *copy = static_cast<CoordinatorSlot *>(palloc(sizeof(CoordinatorSlot) * sh->nslots));
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots; i++)
		if (sh->slots[i].pid != 0 && sh->slots[i].dboid == MyDatabaseId)
			copy[n++] = sh->slots[i];
	LWLockRelease(sh->lock);

	Oid caller = GetUserId();
	for (int i = 0; i < n; i++) {
		CoordinatorSlot &s = copy[i];
		// Another role's job: neither its name, id, owner nor progress.
		bool visible = !OidIsValid(s.current_job_owner) || foreman::api::may_manage(caller, s.current_job_owner);
		Datum values[12];
		bool nulls[12] = {};
		values[0] = Int32GetDatum(s.tier_id);
		values[1] = Int32GetDatum(s.pid);
		values[2] = BoolGetDatum(s.leader);
		if (s.deposed)
			values[3] = CStringGetTextDatum("deposed: stalled, terminating");
		else if (s.foreign_lock_holder != 0)
			values[3] = CStringGetTextDatum(psprintf("%s (leading fenced: the leadership lock is held by pid %d, "
			                                         "which is not a coordinator)",
			                                         coordinator_state_name(s.state), (int)s.foreign_lock_holder));
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
	Shared *sh = shared();
	TierStalls copy[kMaxTiersPerDatabase];
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (auto &db : sh->dbs)
		if (db.state != DbState::Free && db.dboid == MyDatabaseId)
			for (auto &t : db.stalls)
				if (t.tier_id != 0 && n < kMaxTiersPerDatabase)
					copy[n++] = t;
	LWLockRelease(sh->lock);
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
	Shared *sh = shared();
	ExecutorSlot copy[kMaxExecutors];
	int n = 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (auto &e : sh->executors)
		if (e.pid != 0 && e.dboid == MyDatabaseId)
			copy[n++] = e;
	LWLockRelease(sh->lock);
	Oid caller = GetUserId();
	for (int i = 0; i < n; i++) {
		bool visible = !OidIsValid(copy[i].owner) || foreman::api::may_manage(caller, copy[i].owner);
		Datum values[5] = {Int32GetDatum(copy[i].tier_id), Int32GetDatum(copy[i].pid > 0 ? copy[i].pid : 0),
		                   Int64GetDatum(copy[i].run_id), Int64GetDatum(copy[i].job_id),
		                   TimestampTzGetDatum(copy[i].started_at)};
		bool nulls[5] = {false, copy[i].pid <= 0, copy[i].run_id == 0 || !visible, !visible, false};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
