// events.cpp: JSON payloads for NOTIFY foreman_events.
#include "bgw/events.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

// NOTIFY's payload limit is 8000 bytes; a message is cut (at a character
// boundary) to leave room for the rest.
constexpr int kMaxMessageBytes = 4000;

bool
full_payload()
{
	return guc_event_payload == static_cast<int>(EventPayload::Full);
}

void
add_field(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ", \"%s\": ", key);
	if (!value) {
		appendStringInfoString(buf, "null");
		return;
	}
	int len = (int)strlen(value);
	if (len > kMaxMessageBytes)
		len = pg_mbcliplen(value, len, kMaxMessageBytes);
	char *cut = pnstrdup(value, len);
	escape_json(buf, cut);
	pfree(cut);
}

void
begin_event(StringInfo buf, const char *event)
{
	initStringInfo(buf);
	appendStringInfo(buf, "{\"event\": \"%s\"", event);
	add_field(buf, "database", get_database_name(MyDatabaseId));
	add_field(buf, "at", timestamptz_to_str(GetCurrentTimestamp()));
}

void
send(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
	Async_Notify(kEventChannel, buf->data);
	pfree(buf->data);
}

} // namespace

void
notify_run_event(const RunEvent &e)
{
	StringInfoData buf;
	begin_event(&buf, "run");
	appendStringInfo(&buf, ", \"run_id\": %lld, \"job_id\": %lld", (long long)e.run_id, (long long)e.job_id);
	add_field(&buf, "status", e.status);
	add_field(&buf, "tier", e.tier);
	add_field(&buf, "sqlstate", e.sqlstate);
	if (full_payload()) {
		add_field(&buf, "job", e.job_name);
		add_field(&buf, "message", e.message);
	}
	send(&buf);
	if (!e.disabled_reason)
		return;
	begin_event(&buf, "disabled");
	appendStringInfo(&buf, ", \"run_id\": %lld, \"job_id\": %lld", (long long)e.run_id, (long long)e.job_id);
	add_field(&buf, "tier", e.tier);
	if (full_payload()) {
		add_field(&buf, "job", e.job_name);
		add_field(&buf, "reason", e.disabled_reason);
	}
	send(&buf);
}

void
notify_leadership(const char *tier, int64 epoch, const char *how)
{
	StringInfoData buf;
	begin_event(&buf, "leadership");
	add_field(&buf, "tier", tier);
	appendStringInfo(&buf, ", \"epoch\": %lld, \"pid\": %d", (long long)epoch, MyProcPid);
	add_field(&buf, "how", how);
	send(&buf);
}

} // namespace foreman::bgw
