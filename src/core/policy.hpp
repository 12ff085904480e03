// policy.hpp: what a coordinator does with a job that is due.
//
// Pure decisions over times, so that every rule of DESIGN.md's schedule
// semantics is unit-tested in isolation:
//   * misfire_grace: a run later than the grace past its fire time is skipped;
//   * coalesce_runs: after downtime, missed fire times run once (true) or each
//     (false, oldest first, at most max_catchup of them);
//   * overlap: a fire time that fell while the job's previous run was going is
//     skipped ('skip') or run right after it ('queue');
//   * retries: exponential backoff with jitter, capped.
#pragma once

#include "core/schedule.hpp"

#include <cstdint>
#include <optional>

namespace foreman::core {

enum class Overlap { Skip, Queue, Allow };

// Parses 'skip' | 'queue' | 'allow'; throws core::Error (22023) otherwise.
Overlap parse_overlap(const char *text);

struct DuePolicy {
	std::optional<Micros> misfire_grace;
	bool coalesce = true;
	int max_catchup = 10;
	Overlap overlap = Overlap::Skip;
	// The job's previous run, if any: a fire time inside [started, finished)
	// fell while it was going.
	std::optional<Micros> last_started;
	std::optional<Micros> last_finished;
};

enum class DueAction { Run, Skip };

struct DueDecision {
	DueAction action = DueAction::Run;
	const char *reason = nullptr; // for Skip: "misfire" | "overlap"
	Micros fire_time = 0;         // the fire time this run (or skip) stands for
	// Fire times folded into this decision without a run of their own
	// (coalesced, or dropped beyond max_catchup), and their range.
	std::int64_t folded = 0;
	Micros folded_from = 0;
	Micros folded_to = 0;
	std::optional<Micros> next; // the job's next_run_at afterwards
};

// The decision for a job whose next_run_at (`due`) is <= now.
// Counting missed fire times stops after kMaxCounted (the count is then a
// lower bound) so a 100 ms job after a week of downtime costs little.
inline constexpr std::int64_t kMaxCounted = 100000;
DueDecision decide_due(const Schedule &schedule, const Anchor &anchor, const TimeZone &tz, Micros due, Micros now,
                       const DuePolicy &policy);

// Delay before retry `attempt` (1 = the first retry): base * 2^(attempt-1),
// capped at cap, then spread by +-12.5% using unit_random in [0, 1).
Micros retry_delay(Micros base, int attempt, Micros cap, double unit_random);

} // namespace foreman::core
