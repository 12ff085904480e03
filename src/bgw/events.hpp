// events.hpp: what an operator hears on LISTEN foreman_events. Each event
// is a NOTIFY sent by the transaction that records what it describes, so it
// arrives at that commit and never for a record that rolled back.
//
// PostgreSQL has no privilege on LISTEN: every session of the database may
// listen. So the payload names jobs and errors only when the server says so
// (foreman.event_payload = 'full'); by default ('ids') it carries ids, status
// and tier, and a listener reads the rest from foreman.runs, which shows it
// only what its role may see.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::bgw {

constexpr const char *kEventChannel = "foreman_events";

// A run that ended (failed, timed out, crashed; every one for notify 'all').
struct RunEvent {
	int64 run_id;
	int64 job_id;
	const char *job_name;
	const char *status;
	const char *sqlstate; // NULL: none
	const char *message;  // NULL: none
	const char *tier;
	const char *disabled_reason; // set: the run disabled its job (a 'disabled' event follows)
};
void notify_run_event(const RunEvent &event);

// The tier got a new leader (epoch), or a leader was deposed for stalling.
void notify_leadership(const char *tier, int64 epoch, const char *how);

} // namespace foreman::bgw
