# 030_timeouts.pl: per-job timeouts, the tier's default timeout, and a user's
# ACCESS EXCLUSIVE lock on a foreman table (issue 5, items 1 and 2).
#
#  1. A job running SELECT pg_sleep(600) with timeout => '2 seconds' ends as
#     'timed_out' (SQLSTATE 57014) after about 2 s; the next job of the tier,
#     due while it ran, starts within 1 s of its end, in the same coordinator.
#  2. A tier's default_timeout applies to a job without a timeout of its own;
#     a job's own timeout wins over the tier's default.
#  3. A session holds LOCK TABLE foreman.job IN ACCESS EXCLUSIVE MODE for 30 s.
#     Every tier of that database shares foreman.job, so every one of them is
#     held up; what is asserted: within a few seconds each tier says 'blocked'
#     with the lock timeout in tier_status.progress, no coordinator dies, a
#     second database's jobs run on time throughout, and within a few seconds
#     of the release every tier runs again. A run that was in flight when the
#     lock was taken is finished (not left 'running') once the lock is gone,
#     and the fire times missed while blocked are recorded (coalesced).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time usleep);

my $node = new_node('timeouts');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

sub ts { return query($node, q{SELECT quote_literal(clock_timestamp())}, $_[0]); }

# ---------------------------------------------------------------------------
# 1. A per-job timeout.

query($node, q{SELECT foreman.create_tier('tmo', '1 second')});
ok(wait_for_leaders($node, 'postgres', 3, 10), 'tier tmo has a leader');
my $tmo_leader = leader_pid($node, 'tmo');

query($node, q{SELECT foreman.schedule('sleeper', '1 hour', 'SELECT pg_sleep(600)', tier => 'tmo',
                                       timeout => '2 seconds')});
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'}, 10),
	'sleeper is running');
# Due now, while sleeper holds the tier: it must start as soon as sleeper ends.
query($node, q{SELECT foreman.schedule('after_sleeper', '1 hour', 'SELECT 1', tier => 'tmo')});

my ($ok, $took) = wait_until($node, q{
	SELECT status FROM foreman.runs WHERE job_name = 'sleeper' ORDER BY run_id DESC LIMIT 1}, 10,
	expected => 'timed_out');
ok($ok, 'sleeper ends as timed_out');
is( query($node, q{SELECT sqlstate FROM foreman.runs WHERE job_name = 'sleeper'}),
	'57014', 'with SQLSTATE 57014 (query_canceled)');
my $dur = query($node, q{SELECT extract(epoch FROM duration) FROM foreman.runs WHERE job_name = 'sleeper'});
note("sleeper ran $dur s; message: "
	  . query($node, q{SELECT message FROM foreman.runs WHERE job_name = 'sleeper'}));
cmp_ok($dur, '>=', 1.9, 'it ran for its 2 s timeout');
cmp_ok($dur, '<',  3.0, 'and was cancelled within 1 s after it, not after its 600 s sleep');

ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'after_sleeper' AND status = 'succeeded'}, 5),
	'the next job of the tier ran');
my $gap = query($node, q{
	SELECT extract(epoch FROM a.started_at - s.finished_at)
	  FROM foreman.runs a, foreman.runs s WHERE a.job_name = 'after_sleeper' AND s.job_name = 'sleeper'});
note("after_sleeper started $gap s after sleeper finished");
cmp_ok($gap, '>=', 0, 'it started after the timed-out run finished (one job at a time)');
cmp_ok($gap, '<',  1.0, 'and within 1 s of it');
is( query($node, q{SELECT string_agg(DISTINCT pid::text, ',') FROM foreman.runs WHERE job_name IN ('sleeper', 'after_sleeper')}),
	$tmo_leader, 'both were run by the same leader of tier tmo: the tier went on');
is(leader_pid($node, 'tmo'), $tmo_leader, 'which still leads');
is( query($node, q{SELECT last_status, consecutive_failures FROM foreman.jobs WHERE job_name = 'sleeper'}),
	'timed_out|1', 'foreman.jobs shows the timeout as the last outcome, counted as a failure');

# ---------------------------------------------------------------------------
# 2. The tier's default timeout.

query($node, q{SELECT foreman.create_tier('dflt', '1 second', default_timeout => '1 second')});
ok(wait_for_leaders($node, 'postgres', 4, 10), 'tier dflt has a leader');
is(query($node, q{SELECT default_timeout FROM foreman.tier_status WHERE tier = 'dflt'}),
	'00:00:01', 'tier_status shows the default timeout');
query($node, q{
	SELECT foreman.schedule('d_sleeper', '1 hour', 'SELECT pg_sleep(600)', tier => 'dflt');
	SELECT foreman.schedule('d_own', '1 hour', 'SELECT pg_sleep(2)', tier => 'dflt', timeout => '5 seconds');
});
ok( wait_until($node, q{
		SELECT count(*) = 2 FROM foreman.runs WHERE job_name IN ('d_sleeper', 'd_own') AND status <> 'running'}, 15),
	'both jobs of tier dflt finished');
is( query($node, q{SELECT status, sqlstate FROM foreman.runs WHERE job_name = 'd_sleeper'}),
	'timed_out|57014', 'a job without a timeout gets the tier default: timed_out');
$dur = query($node, q{SELECT extract(epoch FROM duration) FROM foreman.runs WHERE job_name = 'd_sleeper'});
note("d_sleeper ran $dur s");
ok($dur >= 0.9 && $dur < 2.0, 'after about the 1 s default');
is(query($node, q{SELECT status FROM foreman.runs WHERE job_name = 'd_own'}),
	'succeeded', 'a job with its own longer timeout is not cut at the tier default');

# ---------------------------------------------------------------------------
# 3. A user holds ACCESS EXCLUSIVE on foreman.job for 30 s.

query($node, 'CREATE DATABASE other');
query($node, 'CREATE EXTENSION pg_foreman', 'other');
ok(wait_for_leaders($node, 'other', 2, 10), 'database other has its leaders');
query($node, q{SELECT foreman.schedule('o_beat', '1 second', 'SELECT 1', tier => 'fast')}, 'other');

my %beat = (fast => 'b_fast', slow => 'b_slow', tmo => 'b_tmo', dflt => 'b_dflt');
query($node, join('', map { "SELECT foreman.schedule('$beat{$_}', '1 second', 'SELECT 1', tier => '$_');" } sort keys %beat));
for my $tier (sort keys %beat)
{
	ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = '$beat{$tier}' AND status = 'succeeded'}, 10),
		"$beat{$tier} runs in tier $tier");
}
ok( wait_until($node, q{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'o_beat' AND status = 'succeeded'}, 10, db => 'other'),
	'o_beat runs in database other');

# A run in flight when the lock is taken, finishing while it is held.
query($node, q{SELECT foreman.schedule('inflight', '1 hour', 'SELECT pg_sleep(3)', tier => 'tmo')});
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'inflight' AND status = 'running'}, 10),
	'inflight is running');

my $pids_sql = q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                  WHERE backend_type IN ('pg_foreman coordinator', 'pg_foreman launcher')};
my $pids_before = query($node, $pids_sql);

my $bg = $node->background_psql('postgres');
$bg->query_safe(q{BEGIN; LOCK TABLE foreman.job IN ACCESS EXCLUSIVE MODE;});
my $t_locked = time();
my $lock_ts  = ts();
note('foreman.job locked in ACCESS EXCLUSIVE mode');

# While the lock is held every query of this test is bounded: a DBA's look at
# tier_status must not wait behind the lock it is meant to explain.
my $bounded = q{SET lock_timeout = '2s'; SET statement_timeout = '5s';};
for my $tier (sort keys %beat)
{
	($ok, $took) = wait_until($node, qq{$bounded
		SELECT count(*) > 0 FROM foreman.tier_status
		 WHERE tier = '$tier' AND leader AND state = 'blocked' AND progress ILIKE '%lock timeout%'}, 8);
	ok($ok, "tier $tier reports 'blocked' with the lock timeout in tier_status.progress");
}
my ($ret, $out, $err) = $node->psql('postgres', qq{$bounded
	SELECT string_agg(DISTINCT progress, ' / ') FROM foreman.tier_status WHERE state = 'blocked'});
note("a blocked tier says: $out$err");

# Hold the lock for 30 s in all; meanwhile the coordinators must stay.
my $died = '';
do
{
	my $now_pids = query($node, $pids_sql);
	$died = "$pids_before -> $now_pids" if $now_pids ne $pids_before && !$died;
	usleep(500_000);
} while (time() - $t_locked < 30);
is($died, '', 'no coordinator and not the launcher ended while the lock was held');
my $held_for = time() - $t_locked;
my $release_ts = ts();
$bg->query_safe('COMMIT');
$bg->quit;
note(sprintf('lock released after %.1f s', $held_for));

# What the other tiers of this database did meanwhile (they share foreman.job).
for my $tier (sort keys %beat)
{
	note("runs of $beat{$tier} (tier $tier) started while foreman.job was locked: "
		  . query($node, qq{SELECT count(*) FROM foreman.runs WHERE job_name = '$beat{$tier}'
		                     AND status <> 'skipped' AND started_at > $lock_ts AND started_at < $release_ts}));
}

# Another database is not held up by this one's lock.
my ($o_runs, $o_gap) = split /\|/, query($node, qq{
	SELECT count(*), coalesce(max(extract(epoch FROM gap)), 99) FROM (
	  SELECT started_at - lag(started_at) OVER (ORDER BY started_at) AS gap
	    FROM foreman.runs WHERE job_name = 'o_beat' AND status = 'succeeded'
	     AND started_at > $lock_ts AND started_at < $release_ts) s}, 'other');
note("o_beat ran $o_runs times during the lock, longest gap $o_gap s");
cmp_ok($o_runs, '>=', 25, 'the jobs of database other ran on time while the lock was held');
cmp_ok($o_gap, '<', 2.5, 'without a gap');

# Recovery.
for my $tier (sort keys %beat)
{
	($ok, $took) = wait_until($node, qq{
		SELECT count(*) > 0 FROM foreman.runs WHERE job_name = '$beat{$tier}' AND status = 'succeeded'
		   AND started_at > $release_ts}, 8);
	ok($ok, "tier $tier runs $beat{$tier} again after the release");
	note(sprintf("tier %s: first run seen %.2f s after the release", $tier, $took));
}
ok( wait_until($node, q{
		SELECT bool_and(state <> 'blocked' AND coalesce(progress, '') NOT LIKE 'blocked%')
		  FROM foreman.tier_status WHERE leader}, 8),
	'no tier says blocked any more');
is(query($node, $pids_sql), $pids_before, 'the same coordinators and launcher as before the lock');
is( query($node, q{SELECT count(*) FILTER (WHERE leader) FROM foreman.tier_status}),
	4, 'each of the four tiers has a leader');

# The run in flight when the lock was taken must have an outcome.
($ok, $took) = wait_until($node, q{
	SELECT status FROM foreman.runs WHERE job_name = 'inflight'}, 10, expected => 'succeeded');
ok($ok, 'the run in flight during the lock is recorded succeeded, not left running');
# (The beats go on meanwhile: a run recorded just now, up to 10 ms ahead of its
# fire time, is 'running' for a moment; none stays so.)
ok( wait_until($node, qq{SELECT count(*) = 0 FROM foreman.runs WHERE status = 'running' AND job_name <> 'inflight'
                           AND started_at < $release_ts}, 10),
	'no other run that started before the release is left running');

# Fire times missed while blocked are accounted for: folded into one skipped row.
for my $tier (sort keys %beat)
{
	is( query($node, qq{
			SELECT count(*) > 0 FROM foreman.runs WHERE job_name = '$beat{$tier}' AND status = 'skipped'
			   AND reason = 'coalesced' AND scheduled_for > $lock_ts}),
		't', "the fire times $beat{$tier} missed while blocked are recorded as coalesced");
	is( query($node, qq{
			SELECT count(*) FROM (SELECT scheduled_for FROM foreman.runs
			                       WHERE job_name = '$beat{$tier}' AND status <> 'skipped'
			                       GROUP BY scheduled_for HAVING count(*) > 1) d}),
		0, "no fire time of $beat{$tier} ran twice");
}

$node->stop;
done_testing();
