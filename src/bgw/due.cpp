// due.cpp: what a coordinator does with a job that is due - the decisions of
// core::decide_due made concrete: which fire time a run stands for, and
// 'skipped' rows for the fire times it does not run, so every fire time of
// an enabled job ends as a run row.
#include "bgw/coordinator_state.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace foreman::bgw {

namespace {

// Fire times folded into a decision without a run of their own: one row for
// them all, with the decision's own reason when it is a skip.
void
record_folded(const DueJob &job, const pg::DueDecisionPg &d, RunPlan *plan)
{
	bool overlap = !d.run && d.overlap;
	const char *why = !d.run ? (overlap ? "fell while the previous run was going"
	                                    : "would have started later than misfire_grace after their fire times")
	                  : job.policy.coalesce ? "ran once, as the run for the latest one"
	                                        : "were more than max_catchup behind";
	const char *reason = !d.run ? d.reason : job.policy.coalesce ? "coalesced" : "catch-up limit";
	char *message = psprintf("%lld fire times from %s to %s %s", (long long)d.folded, timestamptz_to_str(d.folded_from),
	                         timestamptz_to_str(d.folded_to), why);
	if (d.run) {
		// Written with the run, by the same statement (begin_run).
		plan->start.folded_reason = reason;
		plan->start.folded_message = message;
		plan->start.folded_from = d.folded_from;
		return;
	}
	SkipRecord skip{};
	skip.scheduled_for = d.folded_from;
	skip.reason = reason;
	skip.message = message;
	plan->skip_recorded |= record_skipped(job, skip) != 0;
}

// A scheduled fire time that is due.
void
plan_scheduled(const DueJob &job, TimestampTz now, RunPlan *plan)
{
	pg::DueDecisionPg d = pg::decide_due(job.schedule, job.next_run_at, now, job.policy);
	plan->start.scheduled_for = d.fire_time;
	plan->start.has_next = d.has_next;
	plan->start.next_run_at = d.next;
	if (d.folded > 0)
		record_folded(job, d, plan);
	if (d.run)
		return;
	SkipRecord skip{};
	skip.scheduled_for = d.fire_time;
	skip.reason = d.reason;
	skip.message = d.overlap ? "the fire time fell while the previous run was going"
	                   : "the run would have started later than misfire_grace after its fire time";
	skip.advance = true;
	skip.has_next = d.has_next;
	skip.next_run_at = d.next;
	plan->skip_recorded |= record_skipped(job, skip) != 0;
	plan->run = false;
}

// A run_now request: it respects overlap, as a scheduled fire time would.
void
plan_requested(const DueJob &job, RunPlan *plan)
{
	plan->start.scheduled_for = job.requested_at;
	plan->start.clear_request = true;
	if (job.overlap != core::Overlap::Skip || !job.policy.has_last_run || job.requested_at < job.policy.last_started ||
	    job.requested_at >= job.policy.last_finished)
		return;
	SkipRecord skip{};
	skip.scheduled_for = job.requested_at;
	skip.reason = "overlap";
	skip.message = "run_now was asked while the previous run was going";
	skip.clear_request = true;
	plan->skip_recorded = record_skipped(job, skip) != 0;
	plan->run = false;
}

} // namespace

int64
previous_run_us(const DueJob &job)
{
	const pg::DuePolicyPg &p = job.policy;
	if (!p.has_last_run || p.last_finished < p.last_started)
		return -1;
	return p.last_finished - p.last_started;
}

RunPlan
plan_job(const DueJob &job, TimestampTz now)
{
	RunPlan plan{};
	plan.run = true;
	plan.start.attempt = 1;
	plan.start.started_at = now;
	plan.start.has_next = job.has_next_run;
	plan.start.next_run_at = job.next_run_at;
	if (job.retry_due) {
		plan.start.scheduled_for = job.retry_at;
		plan.start.attempt = job.retry_attempt;
		plan.start.chain_id = job.retry_chain_id; // a retry stays in its instance
	} else if (job.enabled && job.has_next_run && job.next_run_at <= now)
		plan_scheduled(job, now, &plan);
	else if (job.requested)
		plan_requested(job, &plan);
	else {
		// A downstream whose upstreams ended: a run in their instance.
		plan.start.scheduled_for = job.chain_requested_at;
		plan.start.chain_id = job.chain_id;
		plan.start.consume_chain_request = true;
	}
	return plan;
}

} // namespace foreman::bgw
