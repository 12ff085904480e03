// shmem.cpp: allocation of pg_foreman's shared memory and the small verbs
// other processes use on it.
#include "bgw/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "postmaster/bgworker.h"
}

#include <csignal>

namespace foreman::bgw {

namespace {
Shared *g_shared = nullptr;

// Coordinator slots: no more coordinators can run than worker processes exist.
int
slot_count()
{
	return max_worker_processes;
}

Size
shared_size()
{
	return add_size(offsetof(Shared, slots), mul_size(slot_count(), sizeof(CoordinatorSlot)));
}
} // namespace

const char *
coordinator_state_name(CoordState state)
{
	switch (state) {
	case CoordState::Starting:
		return "starting";
	case CoordState::WaitingForLeadership:
		return "waiting for leadership";
	case CoordState::Idle:
		return "idle";
	case CoordState::Running:
		return "running";
	case CoordState::Bookkeeping:
		return "bookkeeping";
	case CoordState::Blocked:
		return "blocked";
	case CoordState::Stopping:
		return "stopping";
	}
	return "unknown";
}

Shared *
shared()
{
	return g_shared;
}

void
request_shared_memory()
{
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("pg_foreman", 1);
}

void
init_shared_memory()
{
	bool found = false;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	g_shared = static_cast<Shared *>(ShmemInitStruct("pg_foreman", shared_size(), &found));
	if (!found) {
		memset(g_shared, 0, shared_size());
		g_shared->lock = &(GetNamedLWLockTranche("pg_foreman"))->lock;
		g_shared->nslots = slot_count();
		pg_atomic_init_u32(&g_shared->rescan_all, 1);
		pg_atomic_init_u32(&g_shared->catalog_generation, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
wake_launcher()
{
	if (!g_shared)
		return;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	Latch *latch = g_shared->launcher_latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(g_shared->lock);
}

void
request_rescan(Oid dboid)
{
	if (!g_shared)
		return;
	bool known = false;
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	for (auto &db : g_shared->dbs) {
		if (db.state != DbState::Free && db.dboid == dboid) {
			db.rescan = true;
			known = true;
		}
	}
	LWLockRelease(g_shared->lock);
	if (!known)
		pg_atomic_write_u32(&g_shared->rescan_all, 1);
	wake_launcher();
}

void
request_rescan_all()
{
	if (!g_shared)
		return;
	pg_atomic_write_u32(&g_shared->rescan_all, 1);
	wake_launcher();
}

void
wake_coordinators(Oid dboid, int32 tier_id)
{
	if (!g_shared)
		return;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < g_shared->nslots; i++) {
		CoordinatorSlot &slot = g_shared->slots[i];
		if (slot.pid != 0 && slot.dboid == dboid && (tier_id < 0 || slot.tier_id == tier_id) && slot.latch)
			SetLatch(slot.latch);
	}
	LWLockRelease(g_shared->lock);
}

uint32
catalog_generation()
{
	return g_shared ? pg_atomic_read_u32(&g_shared->catalog_generation) : 0;
}

void
bump_catalog_generation()
{
	if (!g_shared)
		return;
	pg_atomic_fetch_add_u32(&g_shared->catalog_generation, 1);
	wake_launcher();
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < g_shared->nslots; i++)
		if (g_shared->slots[i].pid != 0 && g_shared->slots[i].latch)
			SetLatch(g_shared->slots[i].latch);
	LWLockRelease(g_shared->lock);
}

int
snapshot_coordinators(Oid dboid, CoordinatorSlot *out, int max)
{
	int n = 0;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < g_shared->nslots && n < max; i++)
		if (g_shared->slots[i].pid != 0 && g_shared->slots[i].dboid == dboid)
			out[n++] = g_shared->slots[i];
	LWLockRelease(g_shared->lock);
	return n;
}

int
snapshot_executors(Oid dboid, ExecutorSlot *out, int max)
{
	int n = 0;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (auto &e : g_shared->executors)
		if (e.pid != 0 && e.dboid == dboid && n < max)
			out[n++] = e;
	LWLockRelease(g_shared->lock);
	return n;
}

int
snapshot_stalls(Oid dboid, TierStalls *out, int max)
{
	int n = 0;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (auto &db : g_shared->dbs)
		if (db.state != DbState::Free && db.dboid == dboid)
			for (auto &t : db.stalls)
				if (t.tier_id != 0 && n < max)
					out[n++] = t;
	LWLockRelease(g_shared->lock);
	return n;
}

void
pause_database(Oid dboid)
{
	bool have_entry = false;
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	for (auto &db : g_shared->dbs)
		if (db.state != DbState::Free && db.dboid == dboid) {
			db.paused = true;
			have_entry = true;
		}
	if (!have_entry)
		for (auto &db : g_shared->dbs)
			if (db.state == DbState::Free) {
				memset(&db, 0, sizeof db);
				db.dboid = dboid;
				db.state = DbState::NoExtension;
				db.scout_index = -1;
				db.paused = true;
				break;
			}
	LWLockRelease(g_shared->lock);

	// Up to 10 s, 20 ms at a time: coordinators end their current statement
	// at once (and a job that catches the cancel within foreman.cancel_grace).
	for (int attempt = 0; attempt < 500; attempt++) {
		int remaining = 0;
		LWLockAcquire(g_shared->lock, LW_SHARED);
		for (int i = 0; i < g_shared->nslots; i++) {
			CoordinatorSlot &slot = g_shared->slots[i];
			if (slot.pid != 0 && slot.dboid == dboid) {
				remaining++;
				if (attempt % 50 == 0)
					kill(slot.pid, SIGTERM);
			}
		}
		LWLockRelease(g_shared->lock);
		if (remaining == 0)
			break;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(20 * 1000L);
	}
}

void
resume_database(Oid dboid)
{
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	for (auto &db : g_shared->dbs)
		if (db.state != DbState::Free && db.dboid == dboid)
			db.paused = false;
	LWLockRelease(g_shared->lock);
	request_rescan_all();
}

} // namespace foreman::bgw
