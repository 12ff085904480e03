// launcher.cpp: the launcher's loop, and the scout.
//
// The launcher lists pg_database, sends a short-lived scout into each
// database it does not know yet (or that asked for a rescan) to learn whether
// pg_foreman is installed and which tiers are enabled, and keeps exactly one
// coordinator running per enabled tier. It sleeps on its latch: CREATE/DROP
// EXTENSION, tier changes, database DDL and SIGHUP wake it; it re-lists
// pg_database once a minute to notice databases dropped behind its back.
#include "bgw/launcher.hpp"
#include "bgw/shmem.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kRelistMs = 60 * 1000;      // re-list pg_database at least this often
constexpr long kRestartBackoffMs = 1000;   // before restarting a coordinator that ended
constexpr long kScoutRetryMs = 10 * 1000;  // before re-scouting a database whose scout failed
constexpr int kMaxScouts = 2;              // scouts at once: they share max_worker_processes
constexpr long kMinRescanMs = 500;         // a database is re-scouted at most this often
constexpr int kMaxManaged = kMaxDatabases * kMaxTiersPerDatabase;

// A coordinator the launcher started, or wants to start.
struct Managed {
	bool used;
	Oid dboid;
	int32 tier_id;
	BackgroundWorkerHandle *handle;
	TimestampTz restart_at;
	bool terminating;
	bool warned_no_slot;
};

struct Scout {
	Oid dboid;
	BackgroundWorkerHandle *handle;
};

Managed managed[kMaxManaged];
Scout scouts[kMaxScouts];
// Handles of coordinators deposed for stalling: terminated, awaiting their exit.
constexpr int kMaxRetired = 64;
BackgroundWorkerHandle *retired[kMaxRetired];

void
fill_worker(BackgroundWorker *worker, const char *function, int restart_time)
{
	memset(worker, 0, sizeof *worker);
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "pg_foreman");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
}

// ---------------------------------------------------------------------------
// Databases

struct DbListing {
	Oid dboid;
	NameData name;
};

// Connectable, non-template databases selected by foreman.databases.
List *
list_databases()
{
	List *result = NIL;
	MemoryContext caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void)GetTransactionSnapshot();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple tuple;
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection))) {
		Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
		if (!db->datallowconn || db->datistemplate || !database_selected(NameStr(db->datname)))
			continue;
		MemoryContext old = MemoryContextSwitchTo(caller);
		DbListing *entry = static_cast<DbListing *>(palloc(sizeof(DbListing)));
		entry->dboid = db->oid;
		entry->name = db->datname;
		result = lappend(result, entry);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return result;
}

// Merge a fresh listing into shared memory: new databases become Unknown,
// vanished ones are forgotten (their coordinators are stopped by reconcile).
void
merge_databases(List *listing)
{
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (auto &db : sh->dbs) {
		if (db.state == DbState::Free)
			continue;
		bool present = false;
		ListCell *lc;
		foreach (lc, listing)
			if (static_cast<DbListing *>(lfirst(lc))->dboid == db.dboid)
				present = true;
		if (!present && !db.paused)
			db.state = DbState::Free;
	}
	ListCell *lc;
	foreach (lc, listing) {
		DbListing *entry = static_cast<DbListing *>(lfirst(lc));
		DatabaseEntry *found = nullptr;
		for (auto &db : sh->dbs)
			if (db.state != DbState::Free && db.dboid == entry->dboid)
				found = &db;
		if (found) {
			strlcpy(found->dbname, NameStr(entry->name), kNameLen);
			continue;
		}
		for (auto &db : sh->dbs)
			if (db.state == DbState::Free) {
				memset(&db, 0, sizeof db);
				db.dboid = entry->dboid;
				db.state = DbState::Unknown;
				db.scout_index = -1;
				strlcpy(db.dbname, NameStr(entry->name), kNameLen);
				found = &db;
				break;
			}
		if (!found)
			ereport(WARNING, (errmsg("pg_foreman: more than %d databases; \"%s\" is not served", kMaxDatabases,
			                         NameStr(entry->name)),
			                  errhint("Restrict foreman.databases to the databases that use pg_foreman.")));
	}
	LWLockRelease(sh->lock);
}

// ---------------------------------------------------------------------------
// Scouts

void
reap_scouts(TimestampTz now)
{
	Shared *sh = shared();
	for (int index = 0; index < kMaxScouts; index++) {
		Scout &scout = scouts[index];
		if (!scout.handle)
			continue;
		pid_t pid;
		if (GetBackgroundWorkerPid(scout.handle, &pid) != BGWH_STOPPED)
			continue;
		// The scout sets the outcome itself; a scout that died without doing
		// so failed, and the database is tried again later.
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		for (auto &db : sh->dbs)
			if (db.state == DbState::Scouting && db.dboid == scout.dboid && db.scout_index == index) {
				db.state = DbState::Failed;
				db.scout_index = -1;
				db.scouted_at = now;
				if (!db.failure[0])
					strlcpy(db.failure, "scout ended without a result (see the server log)", sizeof db.failure);
			}
		LWLockRelease(sh->lock);
		pfree(scout.handle);
		scout.handle = nullptr;
	}
}

void
start_scouts(TimestampTz now)
{
	Shared *sh = shared();
	for (int index = 0; index < kMaxScouts; index++) {
		Scout &scout = scouts[index];
		if (scout.handle)
			continue;
		Oid dboid = InvalidOid;
		char dbname[kNameLen] = "";
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		for (auto &db : sh->dbs) {
			if (db.state == DbState::Free || db.state == DbState::Scouting || db.paused)
				continue;
			bool retry_failed = db.state == DbState::Failed &&
			                    TimestampDifferenceExceeds(db.scouted_at, now, kScoutRetryMs);
			// Rescans are rate-limited: however often tier changes ask for
			// one, a database gets at most one scout per kMinRescanMs.
			bool rescan_due = db.rescan && TimestampDifferenceExceeds(db.scouted_at, now, kMinRescanMs);
			if (db.state == DbState::Unknown || rescan_due || retry_failed) {
				db.state = DbState::Scouting;
				db.scout_index = index;
				db.rescan = false;
				db.failure[0] = '\0';
				dboid = db.dboid;
				strlcpy(dbname, db.dbname, sizeof dbname);
				break;
			}
		}
		LWLockRelease(sh->lock);
		if (!OidIsValid(dboid))
			return;

		BackgroundWorker worker;
		fill_worker(&worker, "foreman_scout_main", BGW_NEVER_RESTART);
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_foreman scout %s", dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "pg_foreman scout");
		worker.bgw_main_arg = ObjectIdGetDatum(dboid);
		worker.bgw_notify_pid = MyProcPid;
		BackgroundWorkerHandle *handle = nullptr;
		// Handles outlive the loop's memory context, which is reset each cycle.
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		bool registered = RegisterDynamicBackgroundWorker(&worker, &handle);
		MemoryContextSwitchTo(old);
		if (!registered) {
			// No worker slot now: put the database back and try at the next cycle.
			LWLockAcquire(sh->lock, LW_EXCLUSIVE);
			for (auto &db : sh->dbs)
				if (db.state == DbState::Scouting && db.dboid == dboid) {
					db.state = DbState::Unknown;
					db.scout_index = -1;
				}
			LWLockRelease(sh->lock);
			return;
		}
		scout.dboid = dboid;
		scout.handle = handle;
	}
}

// ---------------------------------------------------------------------------
// Coordinators

Managed *
find_managed(Oid dboid, int32 tier_id)
{
	for (auto &m : managed)
		if (m.used && m.dboid == dboid && m.tier_id == tier_id)
			return &m;
	return nullptr;
}

void
reconcile(TimestampTz now)
{
	Shared *sh = shared();

	// Desired: every enabled tier of every Active, unpaused database.
	struct Want {
		Oid dboid;
		int32 tier_id;
		char dbname[kNameLen];
		char tier_name[kNameLen];
	};
	static Want wants[kMaxManaged];
	int nwants = 0;
	if (guc_enabled) {
		LWLockAcquire(sh->lock, LW_SHARED);
		for (auto &db : sh->dbs) {
			if (!db.installed || db.paused)
				continue;
			for (int i = 0; i < db.ntiers && nwants < kMaxManaged; i++) {
				Want &w = wants[nwants++];
				w.dboid = db.dboid;
				w.tier_id = db.tiers[i].tier_id;
				strlcpy(w.dbname, db.dbname, kNameLen);
				strlcpy(w.tier_name, db.tiers[i].name, kNameLen);
			}
		}
		LWLockRelease(sh->lock);
	}

	// Stop what is no longer wanted; forget what has ended.
	for (auto &m : managed) {
		if (!m.used)
			continue;
		bool wanted = false;
		for (int i = 0; i < nwants; i++)
			if (wants[i].dboid == m.dboid && wants[i].tier_id == m.tier_id)
				wanted = true;
		if (m.handle) {
			pid_t pid;
			if (GetBackgroundWorkerPid(m.handle, &pid) == BGWH_STOPPED) {
				pfree(m.handle);
				m.handle = nullptr;
				m.terminating = false;
				m.restart_at = TimestampTzPlusMilliseconds(now, kRestartBackoffMs);
			} else if (!wanted && !m.terminating) {
				TerminateBackgroundWorker(m.handle);
				m.terminating = true;
			}
		}
		if (!m.handle && !wanted)
			m.used = false;
	}

	// Start what is wanted and not running.
	for (int i = 0; i < nwants; i++) {
		Want &w = wants[i];
		Managed *m = find_managed(w.dboid, w.tier_id);
		if (!m) {
			for (auto &candidate : managed)
				if (!candidate.used) {
					m = &candidate;
					memset(m, 0, sizeof *m);
					m->used = true;
					m->dboid = w.dboid;
					m->tier_id = w.tier_id;
					break;
				}
			if (!m)
				continue;
		}
		if (m->handle || now < m->restart_at)
			continue;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext); // handles outlive the loop context
		m->handle = start_coordinator(w.dboid, w.dbname, w.tier_id, w.tier_name, MyProcPid);
		MemoryContextSwitchTo(old);
		if (!m->handle) {
			m->restart_at = TimestampTzPlusMilliseconds(now, kRestartBackoffMs);
			if (!m->warned_no_slot)
				ereport(WARNING,
				        (errmsg("pg_foreman: no background worker slot for coordinator %s/%s", w.dbname, w.tier_name),
				         errhint("Raise max_worker_processes: pg_foreman needs one per enabled tier and database, "
				                 "plus one for its launcher.")));
			m->warned_no_slot = true;
		} else
			m->warned_no_slot = false;
	}
}

// Stall supervision: a coordinator whose heartbeat is older than
// foreman.stall_timeout, while not inside a job that has its own timeout, is
// deposed (it must run nothing more), terminated, and replaced at once. The
// replacement leads as soon as the old process lets go of its lock, which a
// process that is frozen (SIGSTOP) does only when it runs again.
void
supervise(TimestampTz now)
{
	Shared *sh = shared();
	struct Stalled {
		pid_t pid;
		Oid dboid;
		int32 tier_id;
		char name[kNameLen * 2];
		long age_ms;
	};
	Stalled stalled[8];
	int nstalled = 0;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots && nstalled < 8; i++) {
		CoordinatorSlot &slot = sh->slots[i];
		if (slot.pid == 0 || slot.deposed || !slot.leader)
			continue;
		if (slot.state == CoordState::Running && slot.job_has_timeout)
			continue;
		// Inside a job the timer's beat counts: a long statement is not a stall.
		TimestampTz beat = slot.heartbeat_at;
		if (slot.state == CoordState::Running && slot.job_beat_at > beat)
			beat = slot.job_beat_at;
		if (!TimestampDifferenceExceeds(beat, now, guc_stall_timeout_ms))
			continue;
		slot.deposed = true;
		Stalled &st = stalled[nstalled++];
		st.pid = slot.pid;
		st.dboid = slot.dboid;
		st.tier_id = slot.tier_id;
		snprintf(st.name, sizeof st.name, "%s/%s", slot.dbname, slot.tier_name);
		st.age_ms = (long)((now - beat) / 1000);
		for (auto &db : sh->dbs) {
			if (db.state == DbState::Free || db.dboid != slot.dboid)
				continue;
			TierStalls *entry = nullptr;
			for (auto &t : db.stalls)
				if (t.tier_id == slot.tier_id || (!entry && t.tier_id == 0))
					entry = &t;
			if (entry) {
				entry->tier_id = slot.tier_id;
				entry->count++;
				entry->last_at = now;
				entry->last_pid = slot.pid;
			}
		}
	}
	LWLockRelease(sh->lock);

	for (int i = 0; i < nstalled; i++) {
		Stalled &st = stalled[i];
		ereport(WARNING, (errmsg("pg_foreman coordinator %s (pid %d) made no progress for %ld ms; terminating and "
		                         "replacing it",
		                         st.name, (int)st.pid, st.age_ms),
		                  errhint("foreman.stall_timeout is %d ms.", guc_stall_timeout_ms)));
		kill(st.pid, SIGTERM);
		// Let the managed entry start a replacement now; keep the old handle
		// until the old process is gone.
		Managed *m = find_managed(st.dboid, st.tier_id);
		if (m && m->handle) {
			pid_t pid = 0;
			if (GetBackgroundWorkerPid(m->handle, &pid) == BGWH_STARTED && pid == st.pid) {
				for (auto &r : retired)
					if (!r) {
						r = m->handle;
						m->handle = nullptr;
						m->restart_at = 0;
						break;
					}
			}
		}
	}

	for (auto &r : retired) {
		pid_t pid;
		if (r && GetBackgroundWorkerPid(r, &pid) == BGWH_STOPPED) {
			pfree(r);
			r = nullptr;
		}
	}
}

// The soonest moment the launcher has something to do on its own.
long
next_timeout_ms(TimestampTz now, TimestampTz next_relist)
{
	long timeout = Max(1L, (next_relist - now) / 1000);
	timeout = Min(timeout, Max(250L, (long)guc_stall_timeout_ms / 4)); // stall supervision
	for (auto &m : managed)
		if (m.used && !m.handle && m.restart_at > now)
			timeout = Min(timeout, Max(1L, (m.restart_at - now) / 1000 + 1));
	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_SHARED);
	for (auto &db : sh->dbs)
		if (db.state == DbState::Failed)
			timeout = Min(timeout, kScoutRetryMs);
		else if (db.state == DbState::Unknown || db.rescan)
			timeout = Min(timeout, 100L); // waiting for a scout slot, or for the rescan rate limit
	LWLockRelease(sh->lock);
	return timeout;
}

// On exit, the launcher takes its coordinators with it: a launcher that
// starts again must not find orphans it has no handle for.
void
launcher_exit(int, Datum)
{
	Shared *sh = shared();
	for (auto &m : managed)
		if (m.used && m.handle)
			TerminateBackgroundWorker(m.handle);
	for (auto &r : retired)
		if (r)
			TerminateBackgroundWorker(r);
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (sh->launcher_pid == MyProcPid) {
		sh->launcher_pid = 0;
		sh->launcher_latch = nullptr;
	}
	LWLockRelease(sh->lock);
}

} // namespace

void
register_launcher()
{
	BackgroundWorker worker;
	fill_worker(&worker, "foreman_launcher_main", 1);
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_foreman launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_foreman launcher");
	RegisterBackgroundWorker(&worker);
}

BackgroundWorkerHandle *
start_coordinator(Oid dboid, const char *dbname, int32 tier_id, const char *tier_name, pid_t notify_pid)
{
	BackgroundWorker worker;
	fill_worker(&worker, "foreman_coordinator_main", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_foreman coordinator %s/%s", dbname, tier_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_foreman coordinator");
	CoordinatorArgs args{dboid, tier_id};
	static_assert(sizeof args <= BGW_EXTRALEN);
	memcpy(worker.bgw_extra, &args, sizeof args);
	worker.bgw_notify_pid = notify_pid;
	BackgroundWorkerHandle *handle = nullptr;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return nullptr;
	return handle;
}

} // namespace foreman::bgw

using namespace foreman::bgw;

namespace foreman::bgw {
namespace {

void
launcher_main(Datum)
{
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
	pgstat_report_appname("pg_foreman launcher");

	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->launcher_pid = MyProcPid;
	sh->launcher_latch = MyLatch;
	if (sh->writable_since == 0)
		sh->writable_since = GetCurrentTimestamp();
	// A new launcher knows nothing: every database is scouted again.
	for (auto &db : sh->dbs)
		if (db.state != DbState::Free && !db.paused)
			db.state = DbState::Unknown;
	LWLockRelease(sh->lock);
	pg_atomic_write_u32(&sh->rescan_all, 1);
	before_shmem_exit(launcher_exit, 0);

	MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "pg_foreman launcher", ALLOCSET_DEFAULT_SIZES);
	TimestampTz next_relist = 0;
	bool was_enabled = foreman::guc_enabled;

	ereport(LOG, (errmsg("pg_foreman launcher started")));
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			pg_atomic_write_u32(&sh->rescan_all, 1);
			if (was_enabled != foreman::guc_enabled)
				ereport(LOG, (errmsg("pg_foreman %s by foreman.enabled", foreman::guc_enabled ? "enabled" : "disabled")));
			was_enabled = foreman::guc_enabled;
		}

		MemoryContext old = MemoryContextSwitchTo(loop_context);
		TimestampTz now = GetCurrentTimestamp();
		if (pg_atomic_exchange_u32(&sh->rescan_all, 0) != 0 || now >= next_relist) {
			merge_databases(list_databases());
			next_relist = TimestampTzPlusMilliseconds(now, kRelistMs);
		}
		reap_scouts(now);
		if (foreman::guc_enabled)
			start_scouts(now);
		reconcile(now);
		if (foreman::guc_enabled)
			supervise(now);
		long timeout = next_timeout_ms(now, next_relist);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);

		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
scout_main(Datum arg)
{
	Oid dboid = DatumGetObjectId(arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pg_foreman scout");

	TierInfo tiers[kMaxTiersPerDatabase];
	int ntiers = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	bool installed = OidIsValid(get_extension_oid("pg_foreman", true));
	if (installed) {
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		int rc = SPI_execute("SELECT tier_id, name FROM foreman.tier WHERE enabled ORDER BY tier_id", true,
		                     kMaxTiersPerDatabase);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "pg_foreman scout: reading foreman.tier failed: %s", SPI_result_code_string(rc));
		for (uint64 i = 0; i < SPI_processed; i++) {
			bool isnull;
			HeapTuple row = SPI_tuptable->vals[i];
			tiers[ntiers].tier_id = DatumGetInt32(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
			char *name = SPI_getvalue(row, SPI_tuptable->tupdesc, 2);
			strlcpy(tiers[ntiers].name, name, kNameLen);
			ntiers++;
		}
		PopActiveSnapshot();
		SPI_finish();
	}
	CommitTransactionCommand();

	Shared *sh = shared();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (auto &db : sh->dbs)
		if (db.state == DbState::Scouting && db.dboid == dboid) {
			db.state = installed ? DbState::Active : DbState::NoExtension;
			db.installed = installed;
			db.scout_index = -1;
			db.ntiers = ntiers;
			memcpy(db.tiers, tiers, sizeof(TierInfo) * ntiers);
			db.scouted_at = GetCurrentTimestamp();
		}
	Latch *launcher = sh->launcher_latch;
	LWLockRelease(sh->lock);
	if (launcher)
		SetLatch(launcher);
	proc_exit(0);
}

} // namespace
} // namespace foreman::bgw

void
foreman_launcher_main(Datum arg)
{
	foreman::pg::cpp_guard("launcher", [arg]() { foreman::bgw::launcher_main(arg); });
}

void
foreman_scout_main(Datum arg)
{
	foreman::pg::cpp_guard("scout", [arg]() { foreman::bgw::scout_main(arg); });
}
