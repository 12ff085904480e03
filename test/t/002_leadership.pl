# 002_leadership.pl: one leader per (database, tier), and handover.
#
#  - A second coordinator for tier fast (started with the test-only function
#    foreman_test_start_coordinator) is a follower: tier_status shows two rows
#    for fast and exactly one leader; the follower runs nothing (every run of a
#    1-second job is executed by the leader's pid) and does not hold the
#    advisory lock.
#  - When the leader is terminated the follower leads within a few seconds:
#    tier_status shows it as the leader, new runs carry its pid, and the
#    advisory lock in pg_locks is its own. The launcher's replacement
#    coordinator then waits as a follower: still exactly one leader.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('leadership');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

query($node, q{
	CREATE FUNCTION foreman_test_start_coordinator(tier_id int, tier_name text) RETURNS int
	LANGUAGE C AS 'pg_foreman', 'foreman_test_start_coordinator';
	SELECT foreman.schedule('beat', '1 second', 'SELECT 1', tier => 'fast');
});
my $fast_id = query($node, q{SELECT tier_id FROM foreman.tier WHERE name = 'fast'});

# Who holds the leadership lock of tier fast, according to pg_locks.
my $lock_holder_sql = qq{
	SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_locks
	 WHERE locktype = 'advisory' AND classid = 1179798862 AND objid = $fast_id
	   AND objsubid = 3 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())};

my $leader = leader_pid($node, 'fast');
like($leader, qr/^\d+$/, "tier fast is led by pid $leader");
is(query($node, $lock_holder_sql), $leader, 'the leader holds the advisory lock shown in tier_status');
is( query($node, q{SELECT lock_key FROM foreman.tier_status WHERE tier = 'fast'}),
	"pg_locks: locktype = advisory, classid = 1179798862, objid = $fast_id, objsubid = 3",
	'tier_status documents the lock key');

# ---------------------------------------------------------------------------
# A second coordinator for fast is a follower.

my $follower = query($node, "SELECT foreman_test_start_coordinator($fast_id, 'fast')");
like($follower, qr/^\d+$/, "a second coordinator for fast started as pid $follower");
isnt($follower, $leader, 'it is another process');

ok( wait_until($node, qq{
		SELECT count(*) = 2 AND count(*) FILTER (WHERE leader) = 1
		       AND bool_or(pid = $follower AND NOT leader AND state = 'waiting for leadership')
		       AND bool_or(pid = $leader AND leader)
		  FROM foreman.tier_status WHERE tier = 'fast'}, 10),
	'tier_status: two coordinators for fast, one leader, the new one waits for leadership');
is( query($node, qq{SELECT application_name FROM pg_stat_activity WHERE pid = $follower}),
	'pg_foreman coordinator postgres/fast', 'the follower names its database and tier');

# Let beat run several times while both live.
my $t_both = query($node, q{SELECT quote_literal(clock_timestamp())});
ok( wait_until($node, qq{
		SELECT count(*) >= 4 FROM foreman.runs WHERE job_name = 'beat' AND started_at >= $t_both
		   AND status <> 'running'}, 15),
	'beat ran four times while leader and follower both lived');
is( query($node, q{SELECT string_agg(DISTINCT pid::text, ',') FROM foreman.runs WHERE job_name = 'beat'}),
	$leader, 'every run of beat so far was executed by the leader');
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE pid = $follower}),
	0, 'the follower ran nothing');
is(query($node, $lock_holder_sql), $leader, 'only the leader holds the advisory lock');
is( query($node, qq{SELECT count(*) FROM pg_locks WHERE pid = $follower AND locktype = 'advisory'}),
	0, 'the follower holds no advisory lock');
is( query($node, qq{SELECT leader, state FROM foreman.tier_status WHERE pid = $follower}),
	'f|waiting for leadership', 'the follower is still waiting');

# ---------------------------------------------------------------------------
# Terminate the leader: the follower takes over.

my $t_kill = query($node, q{SELECT quote_literal(clock_timestamp())});
is(query($node, "SELECT pg_terminate_backend($leader)"), 't', 'leader terminated');

my ($ok, $took) = wait_until($node, qq{
	SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'fast' AND leader AND pid = $follower}, 5);
ok($ok, 'the follower leads within 5 seconds');
note(sprintf('takeover seen after %.2f s', $took));
is(query($node, $lock_holder_sql), $follower, 'the advisory lock now belongs to the new leader');
ok( wait_until($node, qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $leader}, 5),
	'the old leader is gone');

ok( wait_until($node, qq{
		SELECT count(*) >= 3 FROM foreman.runs
		 WHERE job_name = 'beat' AND pid = $follower AND status = 'succeeded'}, 10),
	'the new leader runs beat');
is( query($node, qq{
		SELECT extract(epoch FROM min(started_at) - $t_kill) < 3 FROM foreman.runs
		 WHERE job_name = 'beat' AND pid = $follower}),
	't', 'the first run by the new leader started less than 3 s after the kill');
is( query($node, qq{
		SELECT count(*) FROM foreman.runs
		 WHERE job_name = 'beat' AND pid = $leader AND started_at > $t_kill}),
	0, 'the old leader ran nothing after it was terminated');
is( query($node, qq{
		SELECT count(*) FROM foreman.runs WHERE pid = $leader AND status = 'running'}),
	0, 'no run of the old leader is left running');

# The launcher replaces the lost coordinator; the replacement must follow.
ok( wait_until($node, qq{
		SELECT count(*) = 2 AND count(*) FILTER (WHERE leader) = 1
		       AND bool_or(pid = $follower AND leader)
		       AND bool_or(pid <> $follower AND NOT leader AND state = 'waiting for leadership')
		  FROM foreman.tier_status WHERE tier = 'fast'}, 10),
	'the launcher started a replacement, which waits as a follower');
my $t_after = query($node, q{SELECT quote_literal(clock_timestamp())});
ok( wait_until($node, qq{
		SELECT count(*) >= 3 FROM foreman.runs WHERE job_name = 'beat' AND started_at >= $t_after
		   AND status <> 'running'}, 10),
	'beat ran three more times');
is( query($node, qq{
		SELECT string_agg(DISTINCT pid::text, ',') FROM foreman.runs
		 WHERE job_name = 'beat' AND started_at >= $t_after}),
	$follower, 'all of them by the new leader, none by the replacement follower');
is(query($node, $lock_holder_sql), $follower, 'the new leader still holds the lock alone');

# The cadence of beat had no double runs: never two runs of one due time.
is( query($node, q{
		SELECT count(*) FROM (SELECT scheduled_for FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
		                       GROUP BY scheduled_for HAVING count(*) > 1) d}),
	0, 'no due time of beat ran twice');

$node->stop;
done_testing();
