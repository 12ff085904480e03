// session.cpp: owner switching and DISCARD ALL for a background worker.
#include "bgw/session.hpp"
#include "bgw/coordinator.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "common/pg_prng.h"
#include "storage/lock.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/portal.h"
}

namespace foreman::bgw {

namespace {

Oid worker_user = InvalidOid;

// pg_foreman's own advisory locks (coordinator.hpp): a job cannot take them,
// and the reset must not release them.
bool
is_foreman_lock(const LOCKTAG &tag)
{
	return tag.locktag_type == LOCKTAG_ADVISORY && tag.locktag_field2 == kLeadershipLockClass &&
	       (tag.locktag_field4 == kLeadershipLockSubid || tag.locktag_field4 == kOwnerLockSubid);
}

// Releases the session-level advisory locks a job left behind, one by one
// (LockReleaseAll would take the leadership lock with them). They are found
// in this backend's entries of the shared lock table, collected under each
// partition's lock and released after it.
void
release_job_advisory_locks()
{
	constexpr int kBatch = 64;
	for (;;) {
		LOCKTAG tags[kBatch];
		LOCKMASK masks[kBatch];
		int n = 0;
		bool more = false;
		for (int i = 0; i < NUM_LOCK_PARTITIONS; i++) {
			LWLock *partition = LockHashPartitionLockByIndex(i);
			LWLockAcquire(partition, LW_SHARED);
			pg::compat::for_each_my_proclock(i, [&](PROCLOCK *proclock) {
				const LOCKTAG &tag = proclock->tag.myLock->tag;
				if (tag.locktag_lockmethodid != USER_LOCKMETHOD || is_foreman_lock(tag) || proclock->holdMask == 0)
					return;
				if (n == kBatch) {
					more = true;
					return;
				}
				tags[n] = tag;
				masks[n++] = proclock->holdMask;
			});
			LWLockRelease(partition);
		}
		for (int i = 0; i < n; i++)
			for (LOCKMODE mode = 1; mode <= MaxLockMode; mode++)
				if (masks[i] & LOCKBIT_ON(mode))
					while (pg::compat::lock_held_by_me(&tags[i], mode) && LockRelease(&tags[i], mode, true)) {
					}
		if (!more)
			return;
	}
}

// random() after a job must not continue a sequence the job chose with
// setseed(): a new seed from the process's own generator (not observable
// from SQL).
void
reseed_random()
{
	double seed = pg_prng_double(&pg_global_prng_state) * 2.0 - 1.0;
	(void)DirectFunctionCall1(setseed, Float8GetDatum(seed));
}

} // namespace

void
session_init()
{
	worker_user = GetAuthenticatedUserId();
}

void
session_enter_owner(Oid owner, bool owner_is_superuser)
{
	SetSessionAuthorization(owner, owner_is_superuser);
	SetUserIdAndSecContext(owner, SECURITY_LOCAL_USERID_CHANGE);
}

void
session_leave_owner()
{
	SetUserIdAndSecContext(worker_user, 0);
	SetSessionAuthorization(worker_user, true);
}

Oid
session_worker_user()
{
	return worker_user;
}

void
session_reset()
{
	Assert(IsTransactionState());
	PortalHashTableDeleteAll();
	ResetAllOptions();
	DropAllPreparedStatements();
	release_job_advisory_locks();
	ResetTempTableNamespace();
	ResetSequenceCaches();
	reseed_random();
}

} // namespace foreman::bgw
