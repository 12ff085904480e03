// outcome.cpp: the rules of summarize().
#include "core/pure.hpp"

#include "core/outcome.hpp"
#include "core/error.hpp"
#include "core/policy.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace foreman::core {

namespace {

struct StatusName {
	RunStatus status;
	const char *name;
};
constexpr StatusName kStatusNames[] = {
	{RunStatus::Running, "running"},     {RunStatus::Succeeded, "succeeded"}, {RunStatus::Failed, "failed"},
	{RunStatus::TimedOut, "timed_out"},  {RunStatus::Cancelled, "cancelled"}, {RunStatus::Crashed, "crashed"},
	{RunStatus::Skipped, "skipped"},
};

bool
counts_as_failure(RunStatus status)
{
	return status == RunStatus::Failed || status == RunStatus::TimedOut || status == RunStatus::Crashed;
}

} // namespace

const char *
run_status_name(RunStatus status)
{
	for (const auto &s : kStatusNames)
		if (s.status == status)
			return s.name;
	return "unknown";
}

RunStatus
parse_run_status(std::string_view name)
{
	for (const auto &s : kStatusNames)
		if (name == s.name)
			return s.status;
	throw Error(sqlstate::kInternalError, fmt::format("unknown run status \"{}\"", name));
}

JobSummary
summarize(const RunEnd &run, const JobCounters &job, double unit_random)
{
	JobSummary out;
	out.consecutive_failures = job.consecutive_failures;
	out.next_run_at = job.next_run_at;

	if (run.owner_problem) {
		out.consecutive_failures = job.consecutive_failures + 1;
		out.disabled_reason = *run.owner_problem;
		out.next_run_at.reset();
		return out;
	}
	if (run.status == RunStatus::Succeeded) {
		out.consecutive_failures = 0;
		return out;
	}
	if (!counts_as_failure(run.status) || run.start_unknown)
		return out; // cancelled: a stop; start unknown: a server's crash; not the job's failure

	out.consecutive_failures = job.consecutive_failures + 1;
	if (job.max_failures && out.consecutive_failures >= *job.max_failures) {
		out.disabled_reason = fmt::format("disabled after {} consecutive failures; last: {}", out.consecutive_failures,
		                                  run.status == RunStatus::Crashed ? "the run crashed" : run.message);
		out.next_run_at.reset();
		return out;
	}
	if (run.status == RunStatus::Crashed) {
		if (job.last_crashed && job.consecutive_failures >= 1 && job.next_run_at) {
			Micros backoff = job.retry_backoff;
			for (int i = 1; i < job.consecutive_failures && backoff < kMicrosPerHour; i++)
				backoff *= 2;
			Micros later = run.finished_at + std::min(backoff, kMicrosPerHour);
			if (later > *job.next_run_at) {
				out.backed_off_from = job.next_run_at;
				out.next_run_at = later;
			}
		}
		return out;
	}
	if (run.attempt <= job.retries && !run.stopping) {
		Micros delay = retry_delay(job.retry_backoff, run.attempt, job.retry_backoff_max, unit_random);
		out.retry_at = run.finished_at + std::max(delay, job.min_retry_delay);
		out.retry_attempt = run.attempt + 1;
	}
	return out;
}

} // namespace foreman::core
