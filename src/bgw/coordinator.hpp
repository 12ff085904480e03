// coordinator.hpp: the tier coordinator (dynamic bgworker, one per database
// and enabled tier; more than one may run, only the lock holder leads).
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

// Class id of the leadership lock: 'FRMN'. A tier's leader holds
// pg_advisory_lock(1179798862, tier_id) for its whole life.
constexpr uint32 kLeadershipLockClass = 0x46524D4E;
static_assert(kLeadershipLockClass == 1179798862u);

} // namespace foreman::bgw
