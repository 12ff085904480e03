// session.cpp: owner switching and DISCARD ALL for a background worker.
#include "bgw/session.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/portal.h"
}

namespace foreman::bgw {

namespace {
Oid worker_user = InvalidOid;
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

void
session_reset()
{
	Assert(IsTransactionState());
	PortalHashTableDeleteAll();
	ResetAllOptions();
	DropAllPreparedStatements();
	LockReleaseAll(USER_LOCKMETHOD, true);
	ResetTempTableNamespace();
	ResetSequenceCaches();
}

} // namespace foreman::bgw
