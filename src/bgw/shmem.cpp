// shmem.cpp: allocation of pg_foreman's shared memory and the small verbs
// other processes use on it.
#include "bgw/shmem.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "postmaster/bgworker.h"
}

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

} // namespace foreman::bgw
