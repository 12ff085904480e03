// outcome.hpp: what a finished run does to its job - the one place of the
// failure count, retries, crash back-off and automatic disabling.
//
// Every way a run can end (its own process records it; a new leader marks it
// crashed; an executor that died; a summary applied later because the job's
// row was locked) goes through summarize(), so the rules cannot disagree.
#pragma once

#include "core/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace foreman::core {

// A run's status, as foreman.job_run.status spells it.
enum class RunStatus { Running, Succeeded, Failed, TimedOut, Cancelled, Crashed, Skipped };

const char *run_status_name(RunStatus status);
// Throws core::Error (XX000) for a name that is none of them.
RunStatus parse_run_status(std::string_view name);

// How a run ended.
struct RunEnd {
	RunStatus status = RunStatus::Succeeded;
	int attempt = 1;
	Micros finished_at = 0;
	bool stopping = false;                    // its process is being stopped: no retry now
	// A run of a batch a crash or a failover left with no evidence that it
	// began ('crashed', reason 'start unknown'): not the job's failure.
	bool start_unknown = false;
	std::optional<std::string> owner_problem; // the owner may not run jobs: disable with this reason
	std::string message;                      // the error, for the disabled reason
};

// The job's state and settings the rules read.
struct JobCounters {
	int consecutive_failures = 0;
	std::optional<int> max_failures;
	int retries = 0;
	Micros retry_backoff = 10 * kMicrosPerSecond;
	Micros retry_backoff_max = kMicrosPerHour;
	std::optional<Micros> next_run_at;
	bool last_crashed = false; // the job's previous run crashed
	// Owners that are not foreman_admin: no retry sooner than this after the
	// run ended (foreman.min_user_interval), so retries cannot outrun it.
	Micros min_retry_delay = 0;
};

// What the job becomes.
struct JobSummary {
	int consecutive_failures = 0;
	std::optional<Micros> retry_at;
	int retry_attempt = 0;                       // the attempt number of the pending retry
	std::optional<std::string> disabled_reason;  // set: the job is disabled (and has no next run)
	std::optional<Micros> next_run_at;           // the job's next run afterwards (crash back-off)
	std::optional<Micros> backed_off_from;       // the crash back-off moved next_run_at from here
};

// The rules:
//  - a success resets the failure count;
//  - a failure, a timeout and a crash count as failures; at max_failures in
//    a row the job is disabled, with the last error in the reason;
//  - a failed or timed-out attempt n is retried while n <= retries (not
//    while its process stops, not when the owner may not run it), after
//    retry_delay(), never sooner than min_retry_delay;
//  - from the second crash in a row, the next run backs off by
//    retry_backoff * 2^(failures - 2), at most an hour (one crash - a server
//    crash, a failover - costs no delay); the fire times it passes over are
//    reported (backed_off_from), so every one is accounted for;
//  - a cancelled run (shutdown) changes nothing, nor does a crashed run
//    whose start is unknown (it may never have begun);
//  - an owner that may not run jobs disables the job with that reason.
// unit_random in [0, 1) spreads the retry delay.
JobSummary summarize(const RunEnd &run, const JobCounters &job, double unit_random);

} // namespace foreman::core
