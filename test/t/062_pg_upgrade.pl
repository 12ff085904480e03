# 062_pg_upgrade.pl: pg_upgrade of a cluster that runs pg_foreman.
#
# pg_upgrade starts the old cluster (to dump its schema) and the new one (to
# restore it) in binary-upgrade mode, each with its own postgresql.conf, so
# with pg_foreman in shared_preload_libraries. Nothing of pg_foreman may start
# or write there: a job run in the old cluster during the dump would be copied
# into the new one, a launcher in the new one would act on a half-restored
# database. Same major to same major: the binary-upgrade path is the same.
#
#  1. The old cluster runs a job every second (and logs its launcher start).
#  2. pg_upgrade succeeds with pg_foreman preloaded on both sides; the log of
#     the servers it started has no pg_foreman launcher, and the new cluster
#     has no run that started after the old cluster stopped.
#  3. The new cluster runs the old cluster's job.
use strict;
use warnings;

use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time);

# ---------------------------------------------------------------------------
# 1. The old cluster.

my $old = new_node('old');
ok(wait_for_leaders($old, 'postgres', 2), 'old cluster: both built-in tiers have a leader');
query($old, q{SELECT foreman.schedule('tick', '1 second', 'SELECT 1', tier => 'fast')});
is( query($old, q{SELECT (foreman.wait_for_run('tick', now() - interval '1 hour', '30 seconds')).status}),
	'succeeded', 'old cluster: the job runs');
like(slurp_file($old->logfile), qr/pg_foreman launcher started/, 'old cluster: its log shows the launcher');
$old->stop('fast');
# Every run of the old cluster started before this (same clock as the server).
my $old_stopped = time();

# ---------------------------------------------------------------------------
# 2. pg_upgrade, pg_foreman preloaded on both sides (as pg_upgradecluster,
#    which copies the old configuration, does).

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', $ForemanTest::SETTINGS);

my $bindir = $old->config_data('--bindir');
# pg_upgrade writes its logs into the new data directory (pg_upgrade_output.d).
command_ok(
	[
		'pg_upgrade', '--no-sync', '--retain',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port
	],
	'pg_upgrade succeeds with pg_foreman preloaded in both clusters');

my @server_logs;
find(sub { push @server_logs, $File::Find::name if $_ eq 'pg_upgrade_server.log' }, $new->data_dir);
ok(@server_logs > 0, 'pg_upgrade kept the log of the servers it started');
my $upgrade_log = join('', map { slurp_file($_) } @server_logs);
like($upgrade_log, qr/ready to accept connections/, 'that log shows the servers pg_upgrade started');
# What pg_foreman's processes log, and what the postmaster says of them (the
# log also has every statement of the dump and restore, which name pg_foreman).
unlike(
	$upgrade_log,
	qr/(?:LOG|WARNING|ERROR|FATAL):\s+(?:pg_foreman|background worker "pg_foreman)/,
	'no pg_foreman process started in binary-upgrade mode, in either cluster');

# ---------------------------------------------------------------------------
# 3. The new cluster: first with foreman.enabled off, to read what the upgrade
#    carried over before anything runs; then on.

$new->append_conf('postgresql.conf', "foreman.enabled = off\n");
$new->start;
is( query($new, q{SELECT count(*) FROM foreman.jobs WHERE job_name = 'tick'}),
	'1', 'the job was carried over');
is( query($new, qq{SELECT count(*) FROM foreman.runs
	                  WHERE started_at > to_timestamp($old_stopped)}),
	'0', 'no run started after the old cluster stopped (none during the upgrade)');
cmp_ok(query($new, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'tick'}),
	'>=', 1, 'the old run history was carried over');

query($new, q{ALTER SYSTEM SET foreman.enabled = on});
query($new, q{SELECT pg_reload_conf()});
ok(wait_for_leaders($new, 'postgres', 2), 'new cluster: both built-in tiers have a leader');
is( query($new, q{SELECT (foreman.wait_for_run('tick', clock_timestamp(), '30 seconds')).status}),
	'succeeded', 'new cluster: the job runs again');

$new->stop('fast');
done_testing();
