// Unit tests of due-job decisions: coalescing, catch-up, misfire, overlap,
// and retry backoff.
#include "core/error.hpp"
#include "core/policy.hpp"

#include <gtest/gtest.h>

using namespace foreman::core;

namespace {
const UtcZone kUtc;
constexpr Micros kSec = kMicrosPerSecond;
const Schedule kEvery10s = interval_schedule(10 * kSec);
const Anchor kAnchor{0, 0, std::nullopt};
} // namespace

TEST(DecideDue, OnTimeRunIsPlainAndNextIsOnTheGrid)
{
	DuePolicy p;
	DueDecision d = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 100 * kSec + 3000, p);
	EXPECT_EQ(d.action, DueAction::Run);
	EXPECT_EQ(d.fire_time, 100 * kSec);
	EXPECT_EQ(d.folded, 0);
	EXPECT_EQ(d.next, 110 * kSec);
}

TEST(DecideDue, CoalescingRunsOnceForEveryMissedFireTime)
{
	DuePolicy p; // coalesce by default
	// Down from 100 s to 145 s: 100, 110, 120, 130, 140 were missed.
	DueDecision d = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 145 * kSec, p);
	EXPECT_EQ(d.action, DueAction::Run);
	EXPECT_EQ(d.fire_time, 140 * kSec);
	EXPECT_EQ(d.folded, 4);
	EXPECT_EQ(d.folded_from, 100 * kSec);
	EXPECT_EQ(d.folded_to, 130 * kSec);
	EXPECT_EQ(d.next, 150 * kSec);
}

TEST(DecideDue, WithoutCoalescingEachMissedFireTimeRunsOldestFirst)
{
	DuePolicy p;
	p.coalesce = false;
	DueDecision d = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 145 * kSec, p);
	EXPECT_EQ(d.fire_time, 100 * kSec);
	EXPECT_EQ(d.folded, 0);
	EXPECT_EQ(d.next, 110 * kSec); // due again at once: the coordinator catches up
	d = decide_due(kEvery10s, kAnchor, kUtc, *d.next, 145 * kSec, p);
	EXPECT_EQ(d.fire_time, 110 * kSec);
}

TEST(DecideDue, CatchUpIsBoundedByMaxCatchup)
{
	DuePolicy p;
	p.coalesce = false;
	p.max_catchup = 3;
	// 100..190 missed (10 fire times): the oldest 7 are folded, 170 runs first.
	DueDecision d = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 195 * kSec, p);
	EXPECT_EQ(d.fire_time, 170 * kSec);
	EXPECT_EQ(d.folded, 7);
	EXPECT_EQ(d.folded_from, 100 * kSec);
	EXPECT_EQ(d.folded_to, 160 * kSec);
	EXPECT_EQ(d.next, 180 * kSec);
}

TEST(DecideDue, MisfireGraceSkipsLateRuns)
{
	DuePolicy p;
	p.misfire_grace = 5 * kSec;
	DueDecision on_time = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 104 * kSec, p);
	EXPECT_EQ(on_time.action, DueAction::Run);
	DueDecision late = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 106 * kSec, p);
	EXPECT_EQ(late.action, DueAction::Skip);
	EXPECT_STREQ(late.reason, "misfire");
	EXPECT_EQ(late.next, 110 * kSec);
	// Coalesced after downtime: the latest missed fire time is what counts.
	DueDecision coalesced = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 142 * kSec, p);
	EXPECT_EQ(coalesced.action, DueAction::Run);
	EXPECT_EQ(coalesced.fire_time, 140 * kSec);
}

TEST(DecideDue, MisfireWithoutCoalescingSkipsOldOnesOneByOne)
{
	DuePolicy p;
	p.coalesce = false;
	p.misfire_grace = 15 * kSec;
	DueDecision d = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 125 * kSec, p);
	EXPECT_EQ(d.action, DueAction::Skip); // 100 is 25 s late
	d = decide_due(kEvery10s, kAnchor, kUtc, *d.next, 125 * kSec, p);
	EXPECT_EQ(d.action, DueAction::Run); // 110 is 15 s late: inside the grace
	EXPECT_EQ(d.fire_time, 110 * kSec);
}

TEST(DecideDue, OverlapSkipAndQueue)
{
	DuePolicy p;
	p.last_started = 98 * kSec;
	p.last_finished = 113 * kSec; // the previous run covered 100 and 110
	DueDecision skip = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 113 * kSec, p);
	EXPECT_EQ(skip.action, DueAction::Skip);
	EXPECT_STREQ(skip.reason, "overlap");
	EXPECT_EQ(skip.next, 120 * kSec);

	p.overlap = Overlap::Queue;
	DueDecision queue = decide_due(kEvery10s, kAnchor, kUtc, 100 * kSec, 113 * kSec, p);
	EXPECT_EQ(queue.action, DueAction::Run);
	EXPECT_EQ(queue.fire_time, 110 * kSec);
	EXPECT_EQ(queue.folded, 1);
}

TEST(DecideDue, LongDowntimeCountingIsBounded)
{
	Schedule fast = interval_schedule(100 * kMicrosPerMilli);
	DuePolicy p;
	DueDecision d = decide_due(fast, kAnchor, kUtc, 0, 7 * kMicrosPerDay, p);
	EXPECT_EQ(d.folded, kMaxCounted - 1);
	ASSERT_TRUE(d.next.has_value());
	EXPECT_GT(*d.next, 7 * kMicrosPerDay - kSec);
}

TEST(Overlap, Parses)
{
	EXPECT_EQ(parse_overlap("skip"), Overlap::Skip);
	EXPECT_EQ(parse_overlap("queue"), Overlap::Queue);
	EXPECT_EQ(parse_overlap("allow"), Overlap::Allow);
	EXPECT_THROW(parse_overlap("sometimes"), Error);
}

TEST(RetryDelay, DoublesWithJitterAndIsCapped)
{
	const Micros base = 10 * kSec, cap = 60 * kSec;
	EXPECT_EQ(retry_delay(base, 1, cap, 0.5), 10 * kSec);
	EXPECT_EQ(retry_delay(base, 2, cap, 0.5), 20 * kSec);
	EXPECT_EQ(retry_delay(base, 3, cap, 0.5), 40 * kSec);
	EXPECT_EQ(retry_delay(base, 4, cap, 0.5), 60 * kSec);
	EXPECT_EQ(retry_delay(base, 40, cap, 0.5), 60 * kSec);
	for (double r : {0.0, 0.25, 0.75, 0.999}) {
		Micros d = retry_delay(base, 2, cap, r);
		EXPECT_GE(d, 20 * kSec * 875 / 1000);
		EXPECT_LE(d, 20 * kSec * 1125 / 1000);
	}
}
