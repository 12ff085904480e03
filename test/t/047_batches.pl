# 047_batches.pl: a sequential tier records the starts of several due jobs in
# one durable commit and runs them in that order (issue 15). A run recorded
# that way and never started is a fire time that did not run, and says so;
# it is never reported 'crashed'.
#
#  1. Five jobs due at the same instant, their previous runs short: their
#     starts are recorded together (the ones behind show 'running' while the
#     first runs), then they run in order.
#  2. kill -9 of the coordinator while the second of such a batch runs
#     (it turned long): after the crash-restart, that run is 'crashed', the
#     three queued behind it 'crashed' with reason 'start unknown', the
#     first one's success stands, and no fire time runs twice.
#  3. A stop (pg_terminate_backend) while the second runs: it is
#     'cancelled', the ones behind it are 'skipped' (reason 'stopping').
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('batches', extra_conf => "restart_after_crash = on\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

# Each job sleeps long only while a flag row names it; its runs are short
# until then. Same period and anchor: they are due at the same instants.
query($node, q{
	CREATE TABLE slow_flag (job text PRIMARY KEY);
	CREATE TABLE marker (n int);
	SELECT foreman.create_tier('batch', '100 milliseconds');
	SELECT foreman.schedule('b' || g, '3 seconds',
	    format($$SELECT pg_sleep(CASE WHEN EXISTS (SELECT FROM slow_flag WHERE job = %L) THEN 60 ELSE 0 END)$$, 'b' || g),
	    tier => 'batch', start_at => date_trunc('second', now()) + interval '2 seconds')
	  FROM generate_series(1, 5) g;
});
my $jobs = q{job_name IN ('b1', 'b2', 'b3', 'b4', 'b5')};
ok( wait_until($node, qq{SELECT count(*) = 5 FROM (SELECT job_name FROM foreman.runs WHERE $jobs AND status = 'succeeded'
                          GROUP BY job_name HAVING count(*) >= 2) s}, 30),
	'every job ran twice (short runs: their history says so)');

my $no_double_sql = qq{
	SELECT coalesce(string_agg(job_name || ' @ ' || scheduled_for, ', '), '') FROM (
	  SELECT job_name, scheduled_for FROM foreman.runs WHERE $jobs AND status NOT IN ('skipped')
	   GROUP BY job_name, scheduled_for HAVING count(*) > 1) d};

# Makes b2 long, waits until it runs with b3..b5 queued behind it (recorded
# 'running' in the same batch, not started), and returns the fire time.
sub long_second_of_a_batch
{
	my ($what) = @_;
	query($node, q{INSERT INTO slow_flag VALUES ('b2') ON CONFLICT DO NOTHING});
	ok( wait_until($node, q{SELECT bool_or(current_job = 'b2') FROM foreman.tier_status WHERE tier = 'batch'}, 30),
		"$what: b2 runs");
	my $fire = query($node, q{SELECT scheduled_for FROM foreman.runs WHERE job_name = 'b2' AND status = 'running'});
	is( query($node, qq{SELECT string_agg(job_name || ' ' || status, ', ' ORDER BY run_id) FROM foreman.runs
	                     WHERE $jobs AND scheduled_for = '$fire'}),
		'b1 succeeded, b2 running, b3 running, b4 running, b5 running',
		"$what: the five starts were recorded together, b1 ran, b3..b5 wait behind b2");
	return $fire;
}

# ---------------------------------------------------------------------------
# 1 and 2: a crash in the middle of a batch.
my $fire = long_second_of_a_batch('crash');
# b1's outcome was committed asynchronously: any durable commit after it
# flushes the WAL that holds it.
query($node, q{INSERT INTO marker VALUES (1)});
my $victim = leader_pid($node, 'batch');
is(kill('KILL', $victim), 1, "kill -9 of the batch tier's coordinator $victim");
ok( wait_until($node, qq{SELECT count(*) FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire' AND status <> 'running'},
		60, expected => '5'),
	'after the crash-restart the batch is settled');
is( query($node, qq{SELECT string_agg(job_name || ' ' || status || coalesce(' (' || reason || ')', ''), ', ' ORDER BY run_id)
                     FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire'}),
	'b1 succeeded, b2 crashed (process ended), b3 crashed (start unknown), b4 crashed (start unknown), '
	  . 'b5 crashed (start unknown)',
	'b2 crashed; b3..b5, queued behind it before the crash-restart, are not called not run; b1 stands');
like( query($node, qq{SELECT message FROM foreman.runs WHERE job_name = 'b3' AND scheduled_for = '$fire'}),
	qr/recorded with others in one commit.*may have run, and is not run again/, '... and say why');
is( query($node, qq{SELECT string_agg(job_name || ' ' || consecutive_failures, ', ' ORDER BY job_name) FROM foreman.jobs
                     WHERE $jobs}),
	'b1 0, b2 1, b3 0, b4 0, b5 0', 'a run whose start is unknown is not counted as its job\'s failure; b2\'s crash is');
is(query($node, $no_double_sql), '', 'no fire time ran twice');

# ---------------------------------------------------------------------------
# 3. A stop in the middle of a batch. Only jobs whose last runs were short
#    wait behind others: first every job runs short again.
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'batch' AND leader}, 30),
	'the batch tier leads again');
query($node, q{DELETE FROM slow_flag});
my $t_short = query($node, q{SELECT clock_timestamp()});
ok( wait_until($node, qq{SELECT count(DISTINCT job_name) = 5 FROM foreman.runs WHERE $jobs AND status = 'succeeded'
                           AND scheduled_for > '$t_short'}, 30),
	'the five jobs ran short again');
$fire = long_second_of_a_batch('stop');
my $leader = leader_pid($node, 'batch');
is(query($node, "SELECT pg_terminate_backend($leader)"), 't', "pg_terminate_backend of coordinator $leader");
ok( wait_until($node, qq{SELECT count(*) FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire' AND status <> 'running'},
		30, expected => '5'),
	'the stopped batch is settled by the stopping coordinator');
is( query($node, qq{SELECT string_agg(job_name || ' ' || status || coalesce(' (' || reason || ')', ''), ', ' ORDER BY run_id)
                     FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire'}),
	'b1 succeeded, b2 cancelled, b3 skipped (stopping), b4 skipped (stopping), b5 skipped (stopping)',
	'b2 was cancelled by the stop; b3..b5 did not start');

# Back to short: the jobs run again, and nothing ran twice.
query($node, q{DELETE FROM slow_flag});
my $t = query($node, q{SELECT clock_timestamp()});
ok( wait_until($node, qq{SELECT count(DISTINCT job_name) = 5 FROM foreman.runs WHERE $jobs AND status = 'succeeded'
                           AND started_at > '$t'}, 30),
	'the five jobs run again');
is(query($node, $no_double_sql), '', 'no fire time ran twice');
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE $jobs AND status = 'running'
                     AND pid NOT IN (SELECT pid FROM pg_stat_activity)}),
	0, 'no run is left running by a process that is gone');

$node->stop;
done_testing();
