# 041_handoff.pl: the hand-off of a run to an executor never fails.
#
# Two parallel tiers of concurrency 4 under foreman.max_executors = 6, 60
# short jobs asked to run at once, five times over: idle executors leave
# while the other tier waits for their place. A run is recorded only after
# its executor is claimed, so none may fail with "no executor was free"
# (53400); they wait for the cap instead, and every one succeeds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('handoff', extra_conf => "foreman.max_executors = 6\nforeman.executor_idle_timeout = '200ms'\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
query($node, q{
	SELECT foreman.create_tier('p1', '1 second', concurrency => 4);
	SELECT foreman.create_tier('p2', '1 second', concurrency => 4);
});
ok(wait_for_leaders($node, 'postgres', 4), 'the parallel tiers have leaders');

for my $round (1 .. 5)
{
	query($node, qq{
		SELECT foreman.schedule(format('r${round}_%s_%s', t, i), '\@once', 'SELECT pg_sleep(0.3)', tier => t)
		  FROM unnest(ARRAY['p1', 'p2']) t, generate_series(1, 30) i;
	});
	ok( wait_until($node, qq{SELECT count(*) = 60 FROM foreman.job_run
		WHERE job_name LIKE 'r${round}_%' AND status <> 'running'}, 90),
		"round $round: 60 runs in two parallel tiers ended");
	is( query($node, qq{SELECT count(*) || ' failed, ' || count(*) FILTER (WHERE sqlstate = '53400') || ' for want of an executor'
		  FROM foreman.job_run WHERE job_name LIKE 'r${round}_%' AND status <> 'succeeded'}),
		'0 failed, 0 for want of an executor', "round $round: every run succeeded");
	query($node, qq{DELETE FROM foreman.job WHERE job_name LIKE 'r${round}_%'});
}
# The cap held, and was reached: at most 6 runs at once, more than one tier's 4.
my $most = query($node, q{SELECT max((SELECT count(*) FROM foreman.job_run r2
	WHERE r2.job_name LIKE 'r%' AND r2.started_at <= r1.started_at AND r2.finished_at > r1.started_at))
	FROM foreman.job_run r1 WHERE r1.job_name LIKE 'r%'});
cmp_ok($most, '<=', 6, "at most foreman.max_executors runs at once ($most)");
cmp_ok($most, '>', 4, 'both tiers ran at once, competing for the cap');

$node->stop;
done_testing();
