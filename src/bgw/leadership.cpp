// leadership.cpp: who of a tier's coordinators leads.
//
// Leadership is the session-level advisory lock (1179798862, tier_id,
// objsubid 3) - a tag no SQL function can take - plus an epoch in
// foreman.tier_lease: every leadership takes the tier's next epoch and a run
// starts only under the current one. So a leader can also lead *fenced*,
// without the lock, when its holder is a leader the launcher deposed for
// stalling (frozen with the lock in hand) or a process that is no coordinator
// (only a C extension could take it): the tier keeps serving, and the old
// holder can start nothing.
#include "bgw/coordinator_state.hpp"
#include "bgw/events.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

constexpr long kFollowerPollMs = 500;        // a follower retries the lock this often
constexpr long kForeignHolderGraceMs = 2000; // lock held, no leader: lead fenced after this

void
set_leadership_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, kLeadershipLockClass, (uint32)coord.args.tier_id, kLeadershipLockSubid);
}

bool
holds_leadership_lock()
{
	LOCKTAG tag;
	set_leadership_tag(&tag);
	return pg::compat::lock_held_by_me(&tag, ExclusiveLock);
}

bool
try_leadership()
{
	if (holds_leadership_lock())
		return true;
	LOCKTAG tag;
	set_leadership_tag(&tag);
	return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

// Another live coordinator of this tier leads (and was not deposed).
// Followers leave the lock alone while one does: should a job of the leader
// release every advisory lock (pg_advisory_unlock_all(), DISCARD ALL), the
// leader takes it back after the job and leadership never moves.
bool
other_leader_alive()
{
	Shared *sh = shared();
	bool found = false;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots && !found; i++) {
		const CoordinatorSlot &s = sh->slots[i];
		found = s.pid != 0 && s.pid != MyProcPid && s.dboid == MyDatabaseId && s.tier_id == coord.args.tier_id &&
		        s.leader && !s.deposed;
	}
	LWLockRelease(sh->lock);
	return found;
}

// The lowest pid among this tier's live coordinators that were not deposed:
// the one follower that may lead fenced when no coordinator holds the lock.
bool
first_follower()
{
	Shared *sh = shared();
	bool first = true;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (int i = 0; i < sh->nslots; i++) {
		const CoordinatorSlot &s = sh->slots[i];
		if (s.pid != 0 && s.pid < MyProcPid && s.dboid == MyDatabaseId && s.tier_id == coord.args.tier_id &&
		    !s.deposed)
			first = false;
	}
	LWLockRelease(sh->lock);
	return first;
}

// A leader of this tier that the launcher deposed for stalling may be frozen
// with the lock in hand. One follower may lead in its place, fenced by the
// lease epoch (the deposed one can start no run once it thaws). Returns true
// when this process is (or, with claim, becomes) that follower.
bool
fence_deposed_leader(bool claim)
{
	Shared *sh = shared();
	bool found = false;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots; i++) {
		CoordinatorSlot &s = sh->slots[i];
		if (s.pid == 0 || s.pid == MyProcPid || s.dboid != MyDatabaseId || s.tier_id != coord.args.tier_id ||
		    !s.deposed || !s.leader)
			continue;
		if (s.fenced_by == MyProcPid || (claim && s.fenced_by == 0)) {
			s.fenced_by = MyProcPid;
			found = true;
		}
	}
	LWLockRelease(sh->lock);
	return found;
}

// The process holding the tier's lock (0: none found). Reads the whole lock
// table: called only when a follower finds the lock taken but no leader.
pid_t
leadership_lock_holder()
{
	LOCKTAG tag;
	set_leadership_tag(&tag);
	MemoryContext old = MemoryContextSwitchTo(coord.cycle_context);
	LockData *data = GetLockStatusData();
	pid_t holder = 0;
	for (int i = 0; i < data->nelements && holder == 0; i++) {
		const LockInstanceData &lock = data->locks[i];
		if (lock.holdMask != 0 && memcmp(&lock.locktag, &tag, sizeof tag) == 0)
			holder = lock.pid;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(coord.cycle_context);
	return holder;
}

// Nobody leads, yet the lock is taken: give its holder a moment (a leader
// that is exiting lets go of it), then lead fenced, naming the holder.
bool
lead_around_foreign_holder()
{
	TimestampTz now = GetCurrentTimestamp();
	if (coord.leaderless_since == 0)
		coord.leaderless_since = now;
	if (!TimestampDifferenceExceeds(coord.leaderless_since, now, kForeignHolderGraceMs))
		return false;
	coord.foreign_holder = leadership_lock_holder();
	coord.fenced = coord.fenced_foreign = true;
	coord.leaderless_since = 0;
	ereport(WARNING, (errmsg("%s leads fenced: the leadership lock %u/%d/%d is held by pid %d, which is not a "
	                         "coordinator of this tier",
	                         coord.name, kLeadershipLockClass, coord.args.tier_id, kLeadershipLockSubid,
	                         (int)coord.foreign_holder),
	                  errhint("Only a C extension can take this lock; the tier's epoch in foreman.tier_lease keeps "
	                          "the holder from running jobs.")));
	return true;
}

} // namespace

bool
become_leader()
{
	bool alive = other_leader_alive();
	coord.fenced = coord.fenced_foreign = false;
	if (!alive && try_leadership()) {
		coord.leaderless_since = 0;
		ereport(LOG, (errmsg("%s leads (advisory lock %u/%d/%d)", coord.name, kLeadershipLockClass,
		                     coord.args.tier_id, kLeadershipLockSubid)));
	} else if (fence_deposed_leader(true)) {
		coord.fenced = true;
		coord.fenced_foreign = false;
		coord.foreign_holder = 0;
		ereport(LOG, (errmsg("%s leads in place of a deposed leader that still holds advisory lock %u/%d/%d",
		                     coord.name, kLeadershipLockClass, coord.args.tier_id, kLeadershipLockSubid)));
	} else if (alive || !first_follower() || !lead_around_foreign_holder()) {
		if (alive)
			coord.leaderless_since = 0;
		transition(CoordState::WaitingForLeadership);
		sleep_on_latch(kFollowerPollMs);
		return false;
	}
	coord.leader = true;
	coord.orphans_checked = false;
	coord.lease_taken = false;
	return true;
}

bool
still_leader()
{
	// The lock, once its holder lets go of it.
	if (try_leadership()) {
		coord.fenced = coord.fenced_foreign = false;
		coord.foreign_holder = 0;
		return true;
	}
	if (fence_deposed_leader(false) || (coord.fenced_foreign && !other_leader_alive()))
		return true;
	coord.leader = coord.fenced = coord.fenced_foreign = coord.lease_taken = false; // someone else leads now
	coord.foreign_holder = 0;
	return false;
}

void
take_leadership_epoch()
{
	internal_xact_begin(true);
	coord.epoch = take_lease(coord.args.tier_id);
	notify_leadership(my_slot().tier_name, coord.epoch,
	                  !coord.fenced           ? "lock"
	                  : coord.fenced_foreign ? "fenced: the lock is held by another process"
	                                         : "fenced: in place of a deposed leader");
	internal_xact_commit();
	coord.lease_taken = true;
	elog(DEBUG1, "%s leads under epoch %lld", coord.name, (long long)coord.epoch);
}

void
lead_anew_if_lease_lost()
{
	if (!take_lease_lost())
		return;
	// Holding the lock, this process is the tier's leader (a deposed one
	// exits first): the epoch is taken again. Leading fenced, it follows and
	// decides again.
	bool keep = !coord.fenced && holds_leadership_lock();
	ereport(LOG, (errmsg("%s: its epoch %lld is no longer the tier's in foreman.tier_lease; %s", coord.name,
	                     (long long)coord.epoch,
	                     keep ? "it holds the leadership lock and takes the next epoch" : "it follows again"),
	              errdetail("Another process took the tier's next epoch, or the extension was dropped and created "
	                        "again.")));
	coord.lease_taken = false;
	// A new epoch is a new term, as when a coordinator starts leading: runs
	// a crash left are settled, and @reboot jobs run (after DROP EXTENSION
	// and CREATE EXTENSION, those of the new catalog).
	coord.orphans_checked = false;
	if (!keep)
		coord.leader = coord.fenced = coord.fenced_foreign = false;
}

void
keep_leadership_after_job(const DueJob &job)
{
	if (coord.fenced || holds_leadership_lock())
		return;
	if (try_leadership()) {
		ereport(WARNING, (errmsg("job \"%s\" released the leadership lock of tier %d; it was taken back",
		                         job.job_name, coord.args.tier_id),
		                  errdetail("The job called pg_advisory_unlock_all() or DISCARD ALL.")));
		return;
	}
	ereport(WARNING, (errmsg("job \"%s\" released the leadership lock of tier %d and another process took it",
	                         job.job_name, coord.args.tier_id)));
	coord.leader = false;
	coord.lease_taken = false;
}

} // namespace foreman::bgw
