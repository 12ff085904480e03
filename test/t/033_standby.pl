# 033_standby.pl: hot standby and failover (issue 5, item 5).
#
#  1. A primary with a streaming hot standby (both preload pg_foreman): jobs
#     run on the primary; the standby runs no pg_foreman process at all (no
#     launcher, no coordinator), and its foreman.tier_status says why
#     ('not running: server is in recovery') with no leader.
#  2. Failover: the primary is stopped in immediate mode while a long job
#     runs there (its 'running' row already replayed on the standby), and the
#     standby is promoted. Then the coordinators start on the new primary,
#     the orphaned run is marked 'crashed', the jobs run on, and no fire
#     time ran twice (in the new primary's run table).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time usleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $ForemanTest::SETTINGS . "max_connections = 30\n");
$primary->start;
query($primary, 'CREATE EXTENSION pg_foreman');
ok(wait_for_leaders($primary, 'postgres', 2), 'primary: both tiers lead');
query($primary, q{
	SELECT foreman.schedule('beat', '1 second', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('slow_beat', '1 second', 'SELECT 2', tier => 'slow');
});
ok( wait_until($primary, q{SELECT count(DISTINCT job_name) = 2 FROM foreman.runs WHERE status = 'succeeded'}, 10),
	'primary: jobs run');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
is($standby->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'pg_foreman', 'the standby preloads pg_foreman');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
$primary->wait_for_catchup($standby);

# ---------------------------------------------------------------------------
# 1. Nothing runs on the standby.

my $fprocs_sql = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_foreman%'};
my $t0 = time();
my $seen = 0;
while (time() - $t0 < 3)
{
	$seen += $standby->safe_psql('postgres', $fprocs_sql);
	usleep(250_000);
}
is($seen, 0, 'standby: no pg_foreman launcher or coordinator in pg_stat_activity (watched for 3 s)');
is( $standby->safe_psql('postgres', q{
		SELECT string_agg(tier || ':' || leader || ':' || state, ',' ORDER BY tier) FROM foreman.tier_status}),
	'fast:false:not running: server is in recovery,slow:false:not running: server is in recovery',
	'standby: tier_status says no tier runs because the server is in recovery');
my $runs_primary = query($primary, q{SELECT count(*) FROM foreman.runs WHERE status = 'succeeded'});
ok( wait_until($primary, qq{SELECT count(*) >= $runs_primary + 4 FROM foreman.runs WHERE status = 'succeeded'}, 10),
	'the primary goes on running jobs meanwhile');
is( query($primary, q{SELECT count(*) FROM foreman.runs r WHERE status = 'succeeded' AND started_at > now() - interval '3 seconds'
                       AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator')}),
	0, 'run by the primary\'s own coordinators');
ok(slurp_file($standby->logfile) !~ /pg_foreman (job|coordinator|launcher started)/,
	'the standby\'s log shows no pg_foreman launcher, coordinator or job');

# ---------------------------------------------------------------------------
# 2. Failover while a job runs on the primary.

query($primary, q{SELECT foreman.schedule('long', '1 hour', 'SELECT pg_sleep(600)', tier => 'slow')});
ok( wait_until($primary, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'long' AND status = 'running'}, 10),
	'primary: long is running');
my ($long_run, $long_pid) = split /\|/,
  query($primary, q{SELECT run_id, pid FROM foreman.runs WHERE job_name = 'long' AND status = 'running'});
# Let a few more runs of beat happen after long started, then make sure the
# standby has replayed the running row.
ok( wait_until($primary, q{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                             AND started_at > (SELECT started_at FROM foreman.runs WHERE job_name = 'long')}, 10),
	'beat still runs in tier fast while long runs in tier slow');
ok( wait_until($standby, qq{SELECT status FROM foreman.runs WHERE run_id = $long_run}, 10, expected => 'running'),
	'the standby has replayed the running row of long');

$primary->stop('immediate');
my $t_fail = time();
$standby->promote;
ok(wait_until($standby, 'SELECT NOT pg_is_in_recovery()', 30), 'the standby is promoted');
my ($ok, $took) = wait_for_leaders($standby, 'postgres', 2, 15);
ok($ok, 'new primary: both tiers lead');
note(sprintf('leaders on the new primary %.2f s after promote was asked', time() - $t_fail));
is( $standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman launcher'}),
	1, 'new primary: the launcher runs');

($ok, $took) = wait_until($standby, qq{SELECT status FROM foreman.runs WHERE run_id = $long_run}, 10, expected => 'crashed');
ok($ok, 'the run the old primary left running is marked crashed');
is( $standby->safe_psql('postgres', qq{SELECT message LIKE '%$long_pid%' FROM foreman.runs WHERE run_id = $long_run}),
	't', 'naming the process of the old primary');
is( $standby->safe_psql('postgres', q{SELECT count(*) FROM foreman.runs WHERE job_name = 'long' AND status <> 'skipped'}),
	1, 'the fire time of long is not run again');

my $t_prom = $standby->safe_psql('postgres', q{SELECT quote_literal(clock_timestamp())});
for my $job ('beat', 'slow_beat')
{
	ok( wait_until($standby, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = '$job' AND status = 'succeeded'
	                              AND started_at > $t_prom}, 10),
		"new primary: $job runs");
}
is( $standby->safe_psql('postgres', qq{
		SELECT count(*) FROM foreman.runs r WHERE started_at > $t_prom AND status <> 'skipped'
		   AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator')}),
	0, 'run by the new primary\'s coordinators');
is( $standby->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT job_name, scheduled_for FROM foreman.runs WHERE status <> 'skipped'
		                       GROUP BY job_name, scheduled_for HAVING count(*) > 1) d}),
	0, 'no fire time ran twice');
is( $standby->safe_psql('postgres', qq{
		SELECT count(*) FROM foreman.runs r WHERE job_name = 'beat' AND status <> 'skipped' AND started_at > $t_prom
		   AND scheduled_for <= (SELECT max(scheduled_for) FROM foreman.runs WHERE job_name = 'beat' AND started_at < $t_prom)}),
	0, 'the new primary continues the schedule after the last fire time the old one ran');
is( $standby->safe_psql('postgres', q{SELECT count(*) FROM foreman.runs WHERE status = 'running'
                                        AND pid NOT IN (SELECT pid FROM pg_stat_activity)}),
	0, 'no run is left running by a process that is gone');

$standby->stop;
done_testing();
