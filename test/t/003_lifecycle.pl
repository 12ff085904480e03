# 003_lifecycle.pl: coordinators come and go with signals, crashes, restarts,
# the extension and the database.
#
#  1. SIGTERM to a coordinator inside SELECT pg_sleep(60): the run is recorded
#     cancelled within a few seconds, the process exits, the launcher starts a
#     new coordinator for the tier and it runs jobs again within a few seconds.
#  2. kill -9 of a coordinator inside a job: after the postmaster's crash
#     restart the new leader marks the run left 'running' as 'crashed'.
#  3. Server restart (fast): coordinators come back and run jobs.
#  4. DROP EXTENSION stops the database's coordinators, CREATE EXTENSION brings
#     them back within about a second, without restart.
#  5. A second database with the extension gets its own coordinators and runs;
#     DROP DATABASE of it succeeds while its coordinators run a job.
#  6. Without shared_preload_libraries, CREATE EXTENSION fails with a clear
#     error naming shared_preload_libraries.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time);

# PostgreSQL::Test::Cluster turns restart_after_crash off; part 2 needs it.
my $node = new_node('lifecycle', extra_conf => "restart_after_crash = on\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

query($node, q{
	SELECT foreman.schedule('beat', '1 second', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'fast');
});

sub ts { return query($node, q{SELECT quote_literal(clock_timestamp())}, $_[0]); }

# ---------------------------------------------------------------------------
# 1. SIGTERM while a job runs.

ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'}, 10),
	'sleeper is running');
my $coord = query($node, q{SELECT pid FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'});
is(leader_pid($node, 'fast'), $coord, 'the run belongs to the leader of tier fast');
is( query($node, q{SELECT current_job FROM foreman.tier_status WHERE tier = 'fast' AND leader}),
	'sleeper', 'tier_status shows the current job');

my $t_term = ts();
query($node, "SELECT pg_terminate_backend($coord)");
my ($ok, $took) = wait_until($node, q{
	SELECT status FROM foreman.runs WHERE job_name = 'sleeper' ORDER BY run_id DESC LIMIT 1}, 5,
	expected => 'cancelled');
ok($ok, 'SIGTERM: the sleeping run is recorded cancelled');
note(sprintf('cancelled seen %.2f s after SIGTERM', $took));
is( query($node, qq{
		SELECT finished_at IS NOT NULL AND finished_at - $t_term < interval '3 seconds'
		       AND duration < interval '30 seconds'
		  FROM foreman.runs WHERE job_name = 'sleeper' ORDER BY run_id DESC LIMIT 1}),
	't', 'the cancelled run finished within 3 s of the signal, long before its 60 s sleep');
ok(wait_until($node, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $coord", 5),
	'the terminated coordinator exited');

ok( wait_until($node, qq{
		SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'fast' AND leader AND pid <> $coord}, 5),
	'the launcher started a new coordinator for fast, and it leads');
my $coord2 = leader_pid($node, 'fast');
ok( wait_until($node, qq{
		SELECT count(*) > 0 FROM foreman.runs
		 WHERE job_name = 'beat' AND pid = $coord2 AND status = 'succeeded' AND started_at > $t_term}, 5),
	'the new coordinator runs beat');
is( query($node, qq{
		SELECT min(started_at) - $t_term < interval '4 seconds' FROM foreman.runs
		 WHERE job_name = 'beat' AND pid = $coord2}),
	't', 'within 4 s of the SIGTERM');
is( query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'sleeper'}),
	1, 'the cancelled sleeper is not run again before its next due time');

# ---------------------------------------------------------------------------
# 2. kill -9 inside a job: the run is marked crashed.

my $t_crash = ts();
query($node, q{SELECT foreman.run_now('sleeper')});
ok( wait_until($node, qq{
		SELECT count(*) = 1 FROM foreman.runs
		 WHERE job_name = 'sleeper' AND status = 'running' AND started_at >= $t_crash}, 10),
	'run_now started sleeper again');
my $crash_run = query($node, q{SELECT run_id FROM foreman.runs WHERE job_name = 'sleeper' AND status = 'running'});
my $victim = query($node, "SELECT pid FROM foreman.runs WHERE run_id = $crash_run");
is(kill('KILL', $victim), 1, "kill -9 coordinator $victim");

# The postmaster reinitializes after a child crash; psql fails meanwhile,
# which wait_until counts as one more attempt.
ok(wait_for_leaders($node, 'postgres', 2, 30), 'after crash recovery both tiers lead again');
($ok, $took) = wait_until($node, "SELECT status FROM foreman.runs WHERE run_id = $crash_run", 10,
	expected => 'crashed');
ok($ok, 'the run left running by the killed coordinator is marked crashed');
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE status = 'running' AND pid = $victim}),
	0, 'nothing of the dead process is left running');
my $t_rec = ts();
ok( wait_until($node, qq{
		SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
		   AND started_at >= $t_rec}, 5),
	'beat runs again after crash recovery');

# ---------------------------------------------------------------------------
# 3. Restart of the server.

$node->restart;
my $up = ts();
($ok, $took) = wait_until($node, q{
	SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
	   AND started_at >= pg_postmaster_start_time()}, 10);
ok($ok, 'after restart beat runs again');
note(sprintf('first run after restart seen %.2f s after pg_ctl returned', $took));
is( query($node, q{
		SELECT min(started_at) - pg_postmaster_start_time() < interval '5 seconds' FROM foreman.runs
		 WHERE job_name = 'beat' AND started_at >= pg_postmaster_start_time()}),
	't', 'within 5 s of the server start');
ok(wait_for_leaders($node, 'postgres', 2, 5), 'both tiers lead after restart');
is( query($node, q{
		SELECT string_agg(DISTINCT r.pid::text, ',') = (SELECT pid::text FROM foreman.tier_status WHERE tier = 'fast' AND leader)
		  FROM foreman.runs r WHERE job_name = 'beat' AND started_at >= pg_postmaster_start_time()}),
	't', 'those runs are by the new fast leader');
is( query($node, q{
		SELECT count(*) FROM foreman.runs
		 WHERE status = 'running' AND pid NOT IN (SELECT pid FROM pg_stat_activity)}),
	0, 'no run is left running by a process that is gone');

# ---------------------------------------------------------------------------
# 4. DROP EXTENSION / CREATE EXTENSION without restart.

is(coordinator_count($node, 'postgres'), 2, 'two coordinators serve database postgres');
query($node, 'DROP EXTENSION pg_foreman');
ok(wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'}, 5),
	'DROP EXTENSION stops the coordinators');
is( query($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman launcher'}),
	1, 'the launcher stays');

query($node, 'CREATE EXTENSION pg_foreman');
($ok, $took) = wait_until($node, q{SELECT count(*) = 2 AND bool_and(leader) FROM foreman.tier_status}, 5);
ok($ok, 'CREATE EXTENSION starts the coordinators again');
note(sprintf('coordinators lead %.2f s after CREATE EXTENSION', $took));
cmp_ok($took, '<=', 2.5, 'within 2.5 s, without restart');
is( query($node, q{
		SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_activity
		 WHERE backend_type = 'pg_foreman coordinator'}),
	'pg_foreman coordinator postgres/fast,pg_foreman coordinator postgres/slow',
	'pg_stat_activity names database and tier');
my $t_new = ts();
query($node, q{SELECT foreman.schedule('beat', '1 second', 'SELECT 1')});
is( query($node, qq{SELECT status FROM foreman.wait_for_run('beat', $t_new, '10 seconds')}),
	'succeeded', 'a job scheduled in the new extension runs');

# ---------------------------------------------------------------------------
# 5. A second database; DROP DATABASE while its coordinators run.

query($node, 'CREATE DATABASE other');
query($node, 'CREATE EXTENSION pg_foreman', 'other');
ok(wait_for_leaders($node, 'other', 2, 5), 'database other gets its own leaders');
is( query($node, q{
		SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_activity
		 WHERE backend_type = 'pg_foreman coordinator' AND datname = 'other'}),
	'pg_foreman coordinator other/fast,pg_foreman coordinator other/slow',
	'its coordinators are connected to it and named after it');
my $t_other = ts('other');
query($node, q{
	SELECT foreman.schedule('other_beat', '1 second', 'SELECT 2');
	SELECT foreman.schedule('other_sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'slow');
}, 'other');
is( query($node, qq{SELECT status FROM foreman.wait_for_run('other_beat', $t_other, '10 seconds')}, 'other'),
	'succeeded', 'a job of database other runs');
is( query($node, q{
		SELECT r.pid = s.pid FROM foreman.runs r, foreman.tier_status s
		 WHERE r.job_name = 'other_beat' AND s.tier = 'fast' AND s.leader LIMIT 1}, 'other'),
	't', 'run by the fast leader of database other');
is( query($node, q{
		SELECT datname FROM pg_stat_activity
		 WHERE pid = (SELECT pid FROM foreman.runs WHERE job_name = 'beat' ORDER BY run_id DESC LIMIT 1)}),
	'postgres', 'while the jobs of postgres are still run in postgres');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name LIKE 'other%'}),
	0, 'runs of database other are not in the run table of postgres');
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'other_sleeper' AND status = 'running'},
		10, db => 'other'),
	'a job of database other is running');

my $t0 = time();
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE other');
note(sprintf('DROP DATABASE took %.2f s', time() - $t0));
is($ret, 0, 'DROP DATABASE of a database with running coordinators succeeds');
is($err, '', 'without an error') or diag($err);
is(query($node, q{SELECT count(*) FROM pg_database WHERE datname = 'other'}), 0, 'the database is gone');
ok(wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'other'}, 5),
	'its coordinators are gone');
$t_new = ts();
is( query($node, qq{SELECT status FROM foreman.wait_for_run('beat', $t_new, '10 seconds')}),
	'succeeded', 'database postgres still runs its jobs');
is(coordinator_count($node), 2, 'only the two coordinators of postgres are left');

$node->stop;

# ---------------------------------------------------------------------------
# 6. Not in shared_preload_libraries.

my $bare = new_node('bare', preload => 0);
($ret, $out, $err) = $bare->psql('postgres', 'CREATE EXTENSION pg_foreman');
isnt($ret, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($err, qr/shared_preload_libraries/, 'the error names shared_preload_libraries');
is($bare->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_foreman'}),
	0, 'nothing was created');
($ret, $out, $err) = $bare->psql('postgres', q{LOAD 'pg_foreman'});
like($err, qr/shared_preload_libraries/, 'LOAD fails with the same message');
$bare->stop;

done_testing();
