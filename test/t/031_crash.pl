# 031_crash.pl: crashes, the enable switch and fast shutdown (issue 5, items
# 2 and 4).
#
#  1. kill -9 of a coordinator while its job runs: the postmaster
#     crash-restarts; then that run is 'crashed' (with its reason), the job is
#     backed off and counted as a failure, the tier runs jobs again, the
#     crashed fire time is not run again, and no fire time of any job ran
#     twice. A tier made after it takes a new id (wal_level = minimal: the
#     id sequences are logged).
#  2. kill -9 of the launcher: the server crash-restarts, a new launcher and
#     new coordinators come back and run jobs.
#  3. foreman.enabled = off + reload stops every coordinator (the launcher
#     stays, nothing runs); on + reload starts them again, without restart.
#  4. Fast shutdown with jobs running ends every pg_foreman process within
#     2 s; the interrupted runs are recorded 'cancelled', not left 'running'.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time usleep);

my $node = new_node('crash', extra_conf => "restart_after_crash = on\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

sub ts { return query($node, q{SELECT quote_literal(clock_timestamp())}); }

my $no_double_sql = q{
	SELECT coalesce(string_agg(job_name || ' @ ' || scheduled_for, ', '), '') FROM (
	  SELECT job_name, scheduled_for FROM foreman.runs WHERE status <> 'skipped'
	   GROUP BY job_name, scheduled_for HAVING count(*) > 1) d};

query($node, q{
	SELECT foreman.schedule('beat', '1 second', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('slow_beat', '1 second', 'SELECT 2', tier => 'slow');
});
ok( wait_until($node, q{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'slow_beat' AND status = 'succeeded'}, 10),
	'slow_beat runs in tier slow');

# ---------------------------------------------------------------------------
# 1. kill -9 of a coordinator inside a job.

query($node, q{SELECT foreman.schedule('sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'slow')});
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'}, 10),
	'sleeper is running');
my ($crash_run, $victim, $fire) = split /\|/,
  query($node, q{SELECT run_id, pid, scheduled_for FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'});
is(leader_pid($node, 'slow'), $victim, 'it runs in the leader of tier slow');
my $old_coords = query($node, q{SELECT string_agg(pid::text, ',') FROM pg_stat_activity
                                  WHERE backend_type = 'pg_foreman coordinator'});
# A tier made before the crash, in a transaction after CREATE EXTENSION's (which
# gave the default tiers their ids): see below.
my $pre_tier = query($node, q{SELECT foreman.create_tier('pre_crash', '1 hour')});
my $t_kill = ts();
is(kill('KILL', $victim), 1, "kill -9 coordinator $victim");

# Until the postmaster has noticed, the old leaders may still be shown: wait
# for two leaders that are all new processes.
my ($ok, $took) = wait_until($node, qq{
	SELECT count(*) FILTER (WHERE leader) = 2 AND NOT bool_or(leader AND pid IN ($old_coords))
	  FROM foreman.tier_status WHERE tier IN ('fast', 'slow')}, 30);
ok($ok, 'after the crash-restart both tiers lead again, in new processes');
note(sprintf('leaders back %.2f s after the kill', $took));
ok( wait_until($node, qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $victim}, 5),
	'the killed coordinator is gone');
# This node runs with wal_level = minimal (no checkpoint since CREATE
# EXTENSION): the tier id sequence, used in the transaction that created it,
# was logged at commit saying its next values were logged ahead, so the
# tier made before the crash wrote no WAL for its id and its id came again
# after the restart. The install clears that (end of pg_foreman--1.0--1.1.sql).
my ($tier_ret, $post_tier, $tier_err) = $node->psql('postgres', q{SELECT foreman.create_tier('post_crash', '1 hour')});
is($tier_err, '', 'a tier made after the crash-restart takes a new id (no "duplicate key")');
cmp_ok($post_tier || 0, '>', $pre_tier, 'greater than that of the tier made before the crash');
query($node, q{SELECT foreman.drop_tier(name) FROM foreman.tier WHERE name IN ('pre_crash', 'post_crash')});
($ok, $took) = wait_until($node, "SELECT status FROM foreman.runs WHERE run_id = $crash_run", 10, expected => 'crashed');
ok($ok, 'the run of the killed coordinator is marked crashed');
is( query($node, qq{SELECT reason IS NOT NULL AND message LIKE '%$victim%' AND finished_at IS NOT NULL
                      FROM foreman.runs WHERE run_id = $crash_run}),
	't', 'with its reason, a message naming the dead pid, and a finish time');
note('crashed run: ' . query($node, "SELECT reason || ' / ' || message FROM foreman.runs WHERE run_id = $crash_run"));
is( query($node, q{SELECT last_status, consecutive_failures >= 1 FROM foreman.jobs WHERE job_name = 'sleeper'}),
	'crashed|t', 'the job shows the crash as its last outcome and counts it as a failure');
is( query($node, qq{SELECT j.next_run_at = r.scheduled_for + interval '1 hour'
                      FROM foreman.jobs j, foreman.runs r WHERE j.job_name = 'sleeper' AND r.run_id = $crash_run}),
	't', 'one crash costs no delay: its next run is the next fire time');

my $t_rec = ts();
ok( wait_until($node, qq{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'slow_beat' AND status = 'succeeded'
                           AND started_at > $t_rec}, 5),
	'tier slow runs jobs again');
ok( wait_until($node, qq{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND started_at > $t_rec}, 15),
	'tier fast runs jobs again');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'sleeper' AND status <> 'skipped'}),
	1, 'the crashed fire time of sleeper was not run again');
is( query($node, q{SELECT count(*) FROM foreman.runs WHERE status = 'running'
                     AND pid NOT IN (SELECT pid FROM pg_stat_activity)}),
	0, 'no run is left running by a process that is gone');
is(query($node, $no_double_sql), '', 'no fire time of any job ran twice');

# A second crash in a row backs the job off; the fire times it passes over
# are recorded as one 'skipped' run (reason 'crash back-off').
query($node, q{SELECT foreman.schedule('crasher', '2 seconds', 'SELECT pg_sleep(60)', tier => 'slow',
                                       retry_backoff => '1 minute')});
sub kill_running_crasher {
	my ($n) = @_;
	ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'crasher' AND status = 'running'}, 15),
		"crasher runs ($n)");
	my ($run, $pid) = split /\|/,
	  query($node, q{SELECT run_id, pid FROM foreman.runs WHERE job_name = 'crasher' AND status = 'running'});
	is(kill('KILL', $pid), 1, "kill -9 coordinator $pid inside crasher ($n)");
	ok(wait_until($node, "SELECT status FROM foreman.runs WHERE run_id = $run", 30, expected => 'crashed'),
		"that run of crasher is marked crashed ($n)");
	return $run;
}
kill_running_crasher('first crash');
is( query($node, q{SELECT next_run_at < last_finished_at + interval '1 minute' FROM foreman.jobs WHERE job_name = 'crasher'}),
	't', 'crasher: after one crash, no back-off');
my $second = kill_running_crasher('second crash in a row');
is( query($node, q{SELECT next_run_at >= last_finished_at + interval '1 minute' FROM foreman.jobs WHERE job_name = 'crasher'}),
	't', 'crasher: after a second crash in a row, backed off by its retry_backoff');
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE job_name = 'crasher' AND status = 'skipped'
                      AND reason = 'crash back-off' AND run_id > $second AND message LIKE '%crashed 2 times in a row%'}),
	1, 'the fire times passed over are recorded as a skipped run');
query($node, q{SELECT foreman.unschedule('crasher')});
is(query($node, $no_double_sql), '', 'no fire time of any job ran twice');

# ---------------------------------------------------------------------------
# 2. kill -9 of the launcher.

my $launcher_sql = q{SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE backend_type = 'pg_foreman launcher'};
my $launcher = query($node, $launcher_sql);
like($launcher, qr/^\d+$/, "one launcher, pid $launcher");
my $coords_before = query($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                                    WHERE backend_type = 'pg_foreman coordinator'});
is(kill('KILL', $launcher), 1, "kill -9 launcher $launcher");

# The crash-restart takes the coordinators with it and reinitializes.
($ok, $took) = wait_until($node, qq{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_foreman launcher' AND pid <> $launcher}, 30);
ok($ok, 'a new launcher runs');
note(sprintf('new launcher seen %.2f s after the kill', $took));
ok(wait_for_leaders($node, 'postgres', 2, 15), 'both tiers lead again');
is( query($node, qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'
                      AND pid IN ($coords_before)}),
	0, 'the coordinators are new processes (the server crash-restarted)');
$t_rec = ts();
ok( wait_until($node, qq{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'slow_beat' AND status = 'succeeded'
                           AND started_at > $t_rec}, 10),
	'tier slow runs jobs after the launcher crash');
ok( wait_until($node, qq{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND started_at > $t_rec}, 15),
	'tier fast runs jobs after the launcher crash');
is(query($node, $no_double_sql), '', 'no fire time of any job ran twice');

# ---------------------------------------------------------------------------
# 3. foreman.enabled off and on, with reloads.

$launcher = query($node, $launcher_sql);
$node->append_conf('postgresql.conf', "foreman.enabled = off\n");
$node->reload;
($ok, $took) = wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'}, 5);
ok($ok, 'foreman.enabled = off: no coordinator left');
note(sprintf('coordinators gone %.2f s after the reload', $took));
is(query($node, $launcher_sql), $launcher, 'the launcher stays');
is(query($node, q{SELECT count(*) FILTER (WHERE leader) FROM foreman.tier_status}), 0, 'tier_status shows no leader');
note('tier_status state while disabled: ' . query($node, q{SELECT string_agg(DISTINCT state, ', ') FROM foreman.tier_status}));
my $t_off = ts();
usleep(2_500_000);
is(query($node, qq{SELECT count(*) FROM foreman.runs WHERE started_at > $t_off}), 0, 'nothing runs while disabled');
is( query($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'}),
	0, 'and no coordinator came back by itself');

$node->append_conf('postgresql.conf', "foreman.enabled = on\n");
$node->reload;
my $t_on = ts();
($ok, $took) = wait_for_leaders($node, 'postgres', 2, 10);
ok($ok, 'foreman.enabled = on: both tiers lead again');
note(sprintf('leaders back %.2f s after the reload', $took));
ok( wait_until($node, qq{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND started_at > $t_on}, 5),
	'and run jobs, without a restart');
is(query($node, $launcher_sql), $launcher, 'by the same launcher');

# ---------------------------------------------------------------------------
# 4. Fast shutdown with jobs running.

query($node, q{
	SELECT foreman.schedule('fast_sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'fast');
	SELECT foreman.schedule('slow_sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'slow');
});
ok( wait_until($node, q{SELECT count(*) = 2 FROM foreman.runs WHERE job_name IN ('fast_sleeper', 'slow_sleeper')
                          AND status = 'running'}, 10),
	'a job runs in each tier');
my @pids = split /,/, query($node, q{SELECT string_agg(pid::text, ',') FROM pg_stat_activity
                                      WHERE backend_type LIKE 'pg_foreman%'});
is(scalar(@pids), 3, 'three pg_foreman processes: launcher and two coordinators');

my $t0 = time();
$node->stop('fast');
my $stop_took = time() - $t0;
note(sprintf('fast shutdown took %.2f s', $stop_took));
cmp_ok($stop_took, '<', 2.0, 'fast shutdown with running jobs completes within 2 s');
is(join(',', grep { kill(0, $_) } @pids), '', 'no pg_foreman process is left');

$node->start;
ok(wait_for_leaders($node, 'postgres', 2, 10), 'after a start both tiers lead');
is( query($node, q{SELECT string_agg(status, ',' ORDER BY job_name) FROM foreman.runs
                    WHERE job_name IN ('fast_sleeper', 'slow_sleeper')}),
	'cancelled,cancelled', 'the runs interrupted by the shutdown are recorded cancelled');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name LIKE '%sleeper' AND status = 'running'}),
	0, 'none is left running');
is(query($node, $no_double_sql), '', 'no fire time of any job ran twice');

$node->stop;
done_testing();
