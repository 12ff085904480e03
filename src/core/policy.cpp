// policy.cpp: misfire, coalescing, overlap and retry decisions.
#include "core/pure.hpp"

#include "core/policy.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace foreman::core {

Overlap
parse_overlap(const char *text)
{
	if (std::strcmp(text, "skip") == 0)
		return Overlap::Skip;
	if (std::strcmp(text, "queue") == 0)
		return Overlap::Queue;
	if (std::strcmp(text, "allow") == 0)
		return Overlap::Allow;
	throw Error(sqlstate::kInvalidParameterValue, std::string("invalid overlap \"") + text + "\"", {},
	            "Use 'skip', 'queue' or 'allow'.");
}

namespace {

bool
inside_previous_run(Micros fire, const DuePolicy &p)
{
	return p.last_started && p.last_finished && fire >= *p.last_started && fire < *p.last_finished;
}

bool
past_grace(Micros fire, Micros now, const DuePolicy &p)
{
	return p.misfire_grace && now - fire > *p.misfire_grace;
}

} // namespace

DueDecision
decide_due(const Schedule &schedule, const Anchor &anchor, const TimeZone &tz, Micros due, Micros now,
           const DuePolicy &policy)
{
	// The fire times that are due: `due` and those after it up to now. Keep
	// the last keep + 1 of them: enough to name what is run and what is folded.
	const std::int64_t keep = std::max(1, policy.max_catchup);
	std::int64_t count = 1;
	std::vector<Micros> tail{due};
	for (auto t = next_fire(schedule, anchor, due, tz); t && *t <= now && count < kMaxCounted;
	     t = next_fire(schedule, anchor, *t, tz)) {
		count++;
		tail.push_back(*t);
		if (static_cast<std::int64_t>(tail.size()) > keep + 1)
			tail.erase(tail.begin());
	}
	const Micros latest = tail.back();

	DueDecision d;
	d.folded_from = due;
	if (policy.coalesce) {
		// One run stands for them all: the latest.
		d.fire_time = latest;
		d.folded = count - 1;
		d.folded_to = tail.size() >= 2 ? tail[tail.size() - 2] : due;
		d.next = next_fire(schedule, anchor, std::max(now, latest), tz);
	} else if (count > keep) {
		// Oldest first, at most max_catchup behind: older ones are folded.
		d.fire_time = tail[tail.size() - keep];
		d.folded = count - keep;
		d.folded_to = tail[tail.size() - keep - 1];
		d.next = next_fire(schedule, anchor, d.fire_time, tz);
	} else {
		d.fire_time = due;
		d.next = next_fire(schedule, anchor, due, tz);
	}

	if (policy.overlap == Overlap::Skip && inside_previous_run(d.fire_time, policy)) {
		d.action = DueAction::Skip;
		d.reason = "overlap";
		// Nothing of what passed during the previous run is run late.
		d.next = next_fire(schedule, anchor, std::max(now, latest), tz);
	} else if (past_grace(d.fire_time, now, policy)) {
		d.action = DueAction::Skip;
		d.reason = "misfire";
	}
	return d;
}

Micros
retry_delay(Micros base, int attempt, Micros cap, double unit_random)
{
	if (base <= 0)
		return 0;
	Micros delay = base;
	for (int i = 1; i < attempt && delay < cap; i++)
		delay = delay > cap / 2 ? cap : delay * 2;
	delay = std::min(delay, cap > 0 ? cap : delay);
	double spread = (unit_random * 2.0 - 1.0) * 0.125; // [-12.5%, +12.5%)
	return static_cast<Micros>(static_cast<double>(delay) * (1.0 + spread));
}

} // namespace foreman::core
