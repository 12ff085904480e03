// outcome_test.cpp: the one rule of what a finished run does to its job.
#include "core/outcome.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>

using namespace foreman::core;

namespace {

RunEnd
ended(RunStatus status, int attempt = 1)
{
	RunEnd run;
	run.status = status;
	run.attempt = attempt;
	run.finished_at = 1000 * kMicrosPerSecond;
	run.message = "boom";
	return run;
}

} // namespace

TEST(Outcome, StatusNamesRoundTrip)
{
	for (auto s : {RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::TimedOut,
	               RunStatus::Cancelled, RunStatus::Crashed, RunStatus::Skipped})
		EXPECT_EQ(parse_run_status(run_status_name(s)), s);
	EXPECT_THROW(parse_run_status("exploded"), Error);
}

TEST(Outcome, SuccessResetsTheFailureCount)
{
	JobCounters job;
	job.consecutive_failures = 3;
	JobSummary s = summarize(ended(RunStatus::Succeeded), job, 0.5);
	EXPECT_EQ(s.consecutive_failures, 0);
	EXPECT_FALSE(s.retry_at);
	EXPECT_FALSE(s.disabled_reason);
}

TEST(Outcome, FailuresTimeoutsAndCrashesAllCountAndAllDisableAtMaxFailures)
{
	for (auto status : {RunStatus::Failed, RunStatus::TimedOut, RunStatus::Crashed}) {
		JobCounters job;
		job.max_failures = 2;
		job.consecutive_failures = 1;
		job.next_run_at = 2000 * kMicrosPerSecond;
		JobSummary s = summarize(ended(status), job, 0.5);
		EXPECT_EQ(s.consecutive_failures, 2) << run_status_name(status);
		ASSERT_TRUE(s.disabled_reason) << run_status_name(status);
		EXPECT_NE(s.disabled_reason->find("disabled after 2 consecutive failures"), std::string::npos);
		EXPECT_FALSE(s.next_run_at) << "a disabled job has no next run";
	}
}

TEST(Outcome, CancelledChangesNothing)
{
	JobCounters job;
	job.consecutive_failures = 2;
	job.max_failures = 3;
	JobSummary s = summarize(ended(RunStatus::Cancelled), job, 0.5);
	EXPECT_EQ(s.consecutive_failures, 2);
	EXPECT_FALSE(s.disabled_reason);
	EXPECT_FALSE(s.retry_at);
}

TEST(Outcome, ACrashedRunWhoseStartIsUnknownChangesNothing)
{
	JobCounters job;
	job.consecutive_failures = 2;
	job.max_failures = 3;
	job.last_crashed = true;
	job.next_run_at = 2000 * kMicrosPerSecond;
	RunEnd run = ended(RunStatus::Crashed);
	run.start_unknown = true;
	JobSummary s = summarize(run, job, 0.5);
	EXPECT_EQ(s.consecutive_failures, 2);
	EXPECT_FALSE(s.disabled_reason);
	EXPECT_FALSE(s.retry_at);
	EXPECT_FALSE(s.backed_off_from);
	EXPECT_EQ(s.next_run_at, job.next_run_at);
	// The same crash with its start known counts, and disables at max_failures.
	run.start_unknown = false;
	EXPECT_TRUE(summarize(run, job, 0.5).disabled_reason);
}

TEST(Outcome, RetriesBackOffAndStopAfterTheLastAttempt)
{
	JobCounters job;
	job.retries = 2;
	job.retry_backoff = 10 * kMicrosPerSecond;
	JobSummary first = summarize(ended(RunStatus::Failed, 1), job, 0.5);
	ASSERT_TRUE(first.retry_at);
	EXPECT_EQ(*first.retry_at, 1010 * kMicrosPerSecond);
	EXPECT_EQ(first.retry_attempt, 2);
	JobSummary second = summarize(ended(RunStatus::TimedOut, 2), job, 0.5);
	ASSERT_TRUE(second.retry_at);
	EXPECT_EQ(*second.retry_at, 1020 * kMicrosPerSecond);
	EXPECT_FALSE(summarize(ended(RunStatus::Failed, 3), job, 0.5).retry_at);
	EXPECT_FALSE(summarize(ended(RunStatus::Crashed, 1), job, 0.5).retry_at) << "a crash is not retried";
	RunEnd stopping = ended(RunStatus::Failed, 1);
	stopping.stopping = true;
	EXPECT_FALSE(summarize(stopping, job, 0.5).retry_at);
}

TEST(Outcome, RetriesNeverComeSoonerThanTheMinimumDelay)
{
	JobCounters job;
	job.retries = 100;
	job.retry_backoff = 1; // a microsecond
	job.min_retry_delay = kMicrosPerSecond;
	for (int attempt = 1; attempt <= 100; attempt++) {
		JobSummary s = summarize(ended(RunStatus::Failed, attempt), job, 0.0);
		ASSERT_TRUE(s.retry_at);
		EXPECT_GE(*s.retry_at - 1000 * kMicrosPerSecond, kMicrosPerSecond);
	}
}

TEST(Outcome, CrashBackOffFromTheSecondCrashInARow)
{
	JobCounters job;
	job.retry_backoff = 10 * kMicrosPerSecond;
	job.next_run_at = 1001 * kMicrosPerSecond;
	EXPECT_EQ(*summarize(ended(RunStatus::Crashed), job, 0.5).next_run_at, 1001 * kMicrosPerSecond)
	    << "one crash costs no delay";
	job.consecutive_failures = 1;
	EXPECT_EQ(*summarize(ended(RunStatus::Crashed), job, 0.5).next_run_at, 1001 * kMicrosPerSecond)
	    << "a crash after a failure (not a crash) costs no delay either";
	job.last_crashed = true;
	JobSummary second = summarize(ended(RunStatus::Crashed), job, 0.5);
	EXPECT_EQ(*second.next_run_at, 1010 * kMicrosPerSecond);
	ASSERT_TRUE(second.backed_off_from) << "the fire times passed over are reported";
	EXPECT_EQ(*second.backed_off_from, 1001 * kMicrosPerSecond);
	job.consecutive_failures = 3;
	EXPECT_EQ(*summarize(ended(RunStatus::Crashed), job, 0.5).next_run_at, 1040 * kMicrosPerSecond);
	job.consecutive_failures = 40;
	EXPECT_EQ(*summarize(ended(RunStatus::Crashed), job, 0.5).next_run_at, 1000 * kMicrosPerSecond + kMicrosPerHour);
}

TEST(Outcome, AnOwnerThatMayNotRunJobsDisablesTheJob)
{
	JobCounters job;
	job.retries = 5;
	job.next_run_at = 2000 * kMicrosPerSecond;
	RunEnd run = ended(RunStatus::Failed);
	run.owner_problem = "role \"x\" that owns the job may not log in";
	JobSummary s = summarize(run, job, 0.5);
	ASSERT_TRUE(s.disabled_reason);
	EXPECT_EQ(*s.disabled_reason, *run.owner_problem);
	EXPECT_FALSE(s.retry_at);
	EXPECT_FALSE(s.next_run_at);
}
