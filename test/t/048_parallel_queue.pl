# 048_parallel_queue.pl: a parallel tier records the starts of several due
# jobs in one durable commit and queues them for its executors (issue 15).
# A queued run no executor took while the server lived is a fire time that
# did not run, and says so; a run an executor was running when the server
# crashed is 'crashed', and so is a queued one after a crash-restart (reason
# 'start unknown': an executor's claim is an asynchronous commit, which a
# crash may lose).
#
#  1. Six jobs due at once in a tier of concurrency 2, their previous runs
#     short; the first two turn long: they run in the two executors, the
#     other four wait in the queue, recorded 'running' with no process.
#  2. kill -9 of an executor (a crash-restart): the two long runs are
#     'crashed' (reason 'process ended'), the four queued ones 'crashed'
#     (reason 'start unknown'), and none runs again.
#  3. The same, then the coordinator is stopped (pg_terminate_backend): the
#     queued runs are 'skipped' (reason 'stopping'); the executors go on
#     with theirs.
#  4. A new parallel tier whose three jobs are first due at one instant: its
#     coordinator starts the three executors ahead of that instant (the
#     executors' lead), so the due time does not wait for forks.
#  5. After 3's restart of the coordinator, the tier runs at once: the idle
#     executors of the coordinator that went leave (they wait 60 s for work
#     here, and used to hold the tier's places until then). Queued runs whose
#     jobs change meanwhile: an executor runs a job as it is when it claims
#     the run (q3's new command), and a run whose job was unscheduled (q4)
#     is not run: 'crashed', saying so.
#  6. A job with overlap 'queue' in a parallel tier whose tick is an hour:
#     each fire time that found the previous run still going waits for it,
#     and the executor that ends it wakes the coordinator (due jobs wait) -
#     the next run does not wait for the tick.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('pqueue', extra_conf => "restart_after_crash = on\nforeman.executor_idle_timeout = '60s'\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
query($node, q{
	CREATE TABLE slow_flag (job text PRIMARY KEY);
	CREATE TABLE marker (n int);
	SELECT foreman.create_tier('par', '100 milliseconds', concurrency => 2);
	-- for 4, made now: on a TAP node (wal_level = minimal) the identity
	-- sequences CREATE EXTENSION made and used are not WAL-logged until a
	-- checkpoint, and a crash-restart gives an id again.
	SELECT foreman.create_tier('warm', '10 seconds', concurrency => 3);
	SELECT foreman.create_tier('ovl', '1 hour', concurrency => 2); -- for 6
	SELECT foreman.schedule('q' || g, '3 seconds',
	    format($$SELECT pg_sleep(CASE WHEN EXISTS (SELECT FROM slow_flag WHERE job = %L) THEN 60 ELSE 0 END)$$, 'q' || g),
	    tier => 'par', start_at => date_trunc('second', now()) + interval '2 seconds')
	  FROM generate_series(1, 6) g;
});
my $jobs = q{job_name IN ('q1', 'q2', 'q3', 'q4', 'q5', 'q6')};
my $t_short = query($node, q{SELECT clock_timestamp()});
sub all_ran_short
{
	my ($since) = @_;
	return wait_until($node, qq{SELECT count(DISTINCT job_name) = 6 FROM foreman.runs WHERE $jobs
		AND status = 'succeeded' AND scheduled_for > '$since'}, 30);
}
ok(all_ran_short($t_short), 'every job ran (short runs: their history says so)');

my $no_double_sql = qq{
	SELECT coalesce(string_agg(job_name || ' @ ' || scheduled_for, ', '), '') FROM (
	  SELECT job_name, scheduled_for FROM foreman.runs WHERE $jobs AND status <> 'skipped'
	   GROUP BY job_name, scheduled_for HAVING count(*) > 1) d};

# q1 and q2 turn long; returns the fire time once they run in the executors
# and q3..q6 wait in the queue.
sub two_long_four_queued
{
	my ($what) = @_;
	query($node, q{INSERT INTO slow_flag VALUES ('q1'), ('q2') ON CONFLICT DO NOTHING});
	ok( wait_until($node, qq{SELECT count(*) = 2 FROM foreman.runs WHERE job_name IN ('q1', 'q2')
		AND status = 'running' AND pid IS NOT NULL}, 30),
		"$what: q1 and q2 run in executors");
	my $fire = query($node, q{SELECT scheduled_for FROM foreman.runs WHERE job_name = 'q1' AND status = 'running'});
	is( query($node, qq{SELECT string_agg(job_name || ' ' || status || ' ' || (pid IS NOT NULL), ', ' ORDER BY job_name)
	                     FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire'}),
		'q1 running true, q2 running true, q3 running false, q4 running false, q5 running false, q6 running false',
		"$what: the six starts were recorded together; q3..q6 wait for an executor, with no process");
	return $fire;
}

# ---------------------------------------------------------------------------
# 1 and 2: a crash with runs queued.
my $fire = two_long_four_queued('crash');
# The executors' claims were committed asynchronously: a durable commit
# after them flushes them.
query($node, q{INSERT INTO marker VALUES (1)});
my $executor = query($node, q{SELECT min(pid) FROM foreman.runs WHERE job_name IN ('q1', 'q2') AND status = 'running'});
is(kill('KILL', $executor), 1, "kill -9 of executor $executor");
ok( wait_until($node, qq{SELECT count(*) FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire' AND status <> 'running'},
		60, expected => '6'),
	'after the crash-restart the six runs are settled');
is( query($node, qq{SELECT string_agg(job_name || ' ' || status || coalesce(' (' || reason || ')', ''), ', ' ORDER BY job_name)
                     FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire'}),
	'q1 crashed (process ended), q2 crashed (process ended), q3 crashed (start unknown), q4 crashed (start unknown), '
	  . 'q5 crashed (start unknown), q6 crashed (start unknown)',
	'the two that ran crashed; the four queued, recorded before the crash-restart, are not called not run');
like( query($node, qq{SELECT message FROM foreman.runs WHERE job_name = 'q3' AND scheduled_for = '$fire'}),
	qr/recorded with others in one commit.*may have run, and is not run again/, '... and say why');
is( query($node, qq{SELECT string_agg(job_name || ' ' || consecutive_failures, ', ' ORDER BY job_name) FROM foreman.jobs
                     WHERE $jobs}),
	'q1 1, q2 1, q3 0, q4 0, q5 0, q6 0', 'a run whose start is unknown is not counted as its job\'s failure');
is(query($node, $no_double_sql), '', 'no fire time ran twice');

# ---------------------------------------------------------------------------
# 3. The coordinator stops with runs queued.
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'par' AND leader}, 30),
	'the parallel tier leads again');
query($node, q{DELETE FROM slow_flag});
$t_short = query($node, q{SELECT clock_timestamp()});
ok(all_ran_short($t_short), 'every job ran short again');
$fire = two_long_four_queued('stop');
my $leader = leader_pid($node, 'par');
is(query($node, "SELECT pg_terminate_backend($leader)"), 't', "pg_terminate_backend of the tier's coordinator $leader");
ok( wait_until($node, qq{SELECT count(*) FROM foreman.runs WHERE job_name IN ('q3', 'q4', 'q5', 'q6')
		AND scheduled_for = '$fire' AND status = 'skipped' AND reason = 'stopping'}, 30, expected => '4'),
	'the queued runs are recorded as not started (stopping)');
is( query($node, qq{SELECT string_agg(job_name || ' ' || status, ', ' ORDER BY job_name) FROM foreman.runs
                     WHERE job_name IN ('q1', 'q2') AND scheduled_for = '$fire'}),
	'q1 running, q2 running', 'the executors go on with the runs they took');
query($node, q{DELETE FROM slow_flag});
query($node, q{SELECT pg_cancel_backend(pid) FROM foreman.runs WHERE job_name IN ('q1', 'q2') AND status = 'running'});
ok( wait_until($node, qq{SELECT count(*) = 2 FROM foreman.runs WHERE job_name IN ('q1', 'q2')
		AND scheduled_for = '$fire' AND status = 'cancelled'}, 30),
	'cancelled, they are recorded so');
is(query($node, $no_double_sql), '', 'no fire time ran twice');

# ---------------------------------------------------------------------------
# 4. Executors started ahead of a due time.
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'warm' AND leader}, 30),
	'tier warm leads');
query($node, q{
	SELECT foreman.schedule('w' || g, '1 hour', 'SELECT 1', tier => 'warm',
	    start_at => date_trunc('second', now()) + interval '2 seconds')
	  FROM generate_series(1, 3) g;
});
ok( wait_until($node, q{SELECT count(*) = 3 FROM foreman.runs WHERE job_name IN ('w1', 'w2', 'w3')
		AND status = 'succeeded'}, 30),
	'the three jobs of tier warm ran');
is( query($node, q{SELECT string_agg(r.job_name || ' ' || (a.backend_start < r.scheduled_for), ', ' ORDER BY r.job_name)
                     FROM foreman.runs r JOIN pg_stat_activity a ON a.pid = r.pid
                    WHERE r.job_name IN ('w1', 'w2', 'w3')}),
	'w1 true, w2 true, w3 true',
	'each ran in an executor started before its due time (the executors are idle for 60 s here)');

# ---------------------------------------------------------------------------
# 5. Jobs changed while their runs wait in the queue.
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'par' AND leader}, 30),
	'the parallel tier leads');
$t_short = query($node, q{SELECT clock_timestamp()});
ok(all_ran_short($t_short), 'every job ran short again (not held by the idle executors of the coordinator that went)');
$fire = two_long_four_queued('change');
query($node, q{
	SELECT foreman.alter_job('q3', command => 'INSERT INTO marker VALUES (3)');
	SELECT foreman.unschedule('q4');
	DELETE FROM slow_flag;
});
query($node, q{SELECT pg_cancel_backend(pid) FROM foreman.runs WHERE job_name IN ('q1', 'q2') AND status = 'running'});
ok( wait_until($node, qq{SELECT count(*) FROM foreman.runs WHERE $jobs AND scheduled_for = '$fire' AND status <> 'running'},
		30, expected => '6'),
	'the executors took the queued runs');
is( query($node, qq{SELECT string_agg(job_name || ' ' || status || coalesce(' (' || message || ')', ''), ', ' ORDER BY job_name)
                     FROM foreman.runs WHERE job_name IN ('q3', 'q4', 'q5', 'q6') AND scheduled_for = '$fire'}),
	'q3 succeeded, q4 crashed (the job was unscheduled before its executor started), q5 succeeded, q6 succeeded',
	'a queued run of an unscheduled job is not run, and says why');
is(query($node, q{SELECT count(*) FROM marker WHERE n = 3}), '1', "q3 ran its new command (the job as it was when claimed)");
is(query($node, $no_double_sql), '', 'no fire time ran twice');

# ---------------------------------------------------------------------------
# 6. A queued fire time (overlap 'queue') waits for the run before it, not
#    for the tier's tick.
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'ovl' AND leader}, 30),
	'tier ovl leads');
query($node, q{
	SELECT foreman.schedule('ov', '1 second', 'SELECT pg_sleep(1.5)', tier => 'ovl', overlap => 'queue',
	    start_at => date_trunc('second', now()) + interval '2 seconds');
});
ok( wait_until($node, q{SELECT count(*) >= 3 FROM foreman.runs WHERE job_name = 'ov' AND status = 'succeeded'}, 30),
	"three runs of a job whose runs overlap its next fire times, in a tier that ticks hourly");
is( query($node, q{SELECT count(*) FROM (SELECT started_at - lag(finished_at) OVER (ORDER BY started_at) AS gap
                     FROM foreman.runs WHERE job_name = 'ov' AND status = 'succeeded') g
                    WHERE gap > interval '10 seconds'}),
	'0', 'each waited for the run before it, not for the tick');

$node->stop;
done_testing();
