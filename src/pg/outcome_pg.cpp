// outcome_pg.cpp: the bridge to core::summarize.
#include "pg/outcome_pg.hpp"
#include "pg/guard.hpp"
#include "pg/schedule_pg.hpp"

extern "C" {
#include "common/pg_prng.h"
}

namespace foreman::pg {

JobSummaryPg
summarize_run(const RunEndPg &run, const JobCountersPg &job)
{
	JobSummaryPg out{};
	double unit_random = pg_prng_double(&pg_global_prng_state);
	cpp_guard("run summary", [&]() {
		core::RunEnd r;
		r.status = run.status;
		r.attempt = run.attempt;
		r.finished_at = to_unix_micros(run.finished_at);
		r.stopping = run.stopping;
		r.start_unknown = run.start_unknown;
		if (run.owner_problem)
			r.owner_problem = std::string(run.owner_problem);
		r.message = run.message ? run.message : "";
		core::JobCounters j;
		j.consecutive_failures = job.consecutive_failures;
		if (job.has_max_failures)
			j.max_failures = job.max_failures;
		j.retries = job.retries;
		j.retry_backoff = job.retry_backoff_us;
		j.retry_backoff_max = job.retry_backoff_max_us;
		if (job.has_next_run)
			j.next_run_at = to_unix_micros(job.next_run_at);
		j.min_retry_delay = job.min_retry_delay_us;
		j.last_crashed = job.last_crashed;
		core::JobSummary s = core::summarize(r, j, unit_random);
		out.consecutive_failures = s.consecutive_failures;
		out.has_retry = s.retry_at.has_value();
		out.retry_at = s.retry_at ? from_unix_micros(*s.retry_at) : 0;
		out.retry_attempt = s.retry_attempt;
		out.has_next_run = s.next_run_at.has_value();
		out.next_run_at = s.next_run_at ? from_unix_micros(*s.next_run_at) : 0;
		out.backed_off = s.backed_off_from.has_value();
		out.backed_off_from = s.backed_off_from ? from_unix_micros(*s.backed_off_from) : 0;
		if (s.disabled_reason)
			pg_guard([&]() { out.disabled_reason = pstrdup(s.disabled_reason->c_str()); });
	});
	return out;
}

const char *
run_status_name(core::RunStatus status)
{
	return core::run_status_name(status);
}

core::RunStatus
parse_run_status(const char *name)
{
	return cpp_guard("run status", [&]() { return core::parse_run_status(name); });
}

} // namespace foreman::pg
