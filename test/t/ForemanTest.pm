# ForemanTest.pm: helpers shared by the pg_foreman TAP tests.
#
#   new_node($name, %opts)             a started PostgreSQL::Test::Cluster node with the
#                                      settings of test/regression.conf and the extension
#                                      created in database postgres (preload => 0: neither)
#   wait_until($node, $sql, $timeout, db => 'postgres', expected => 't')
#                                      poll $sql every 0.1 s until it prints $expected or
#                                      $timeout seconds have passed; true on success, and
#                                      ($ok, $elapsed_seconds) in list context
#   wait_for_leaders($node, $db, $n, $timeout)
#                                      until foreman.tier_status of $db shows $n leaders
#   leader_pid($node, $tier, $db)      pid of the tier's leading coordinator, or ''
#   coordinator_count($node, $db)      pg_foreman coordinators of $db in pg_stat_activity
#   query($node, $sql, $db)            safe_psql shorthand
#
# Every wait is bounded: a test never sleeps and hopes.
package ForemanTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(new_node wait_until wait_for_leaders leader_pid coordinator_count query);

# The same settings as test/regression.conf (the TAP staging directory does not
# carry that file, so they are repeated here).
our $SETTINGS = <<'EOC';
shared_preload_libraries = 'pg_foreman'
max_worker_processes = 32
foreman.log_runs = 'all'
log_min_messages = info
EOC

sub new_node
{
	my ($name, %opts) = @_;
	my $preload = exists $opts{preload} ? $opts{preload} : 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', $preload ? $SETTINGS : "max_worker_processes = 32\n");
	$node->append_conf('postgresql.conf', $opts{extra_conf}) if $opts{extra_conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_foreman') if $preload;
	return $node;
}

sub query
{
	my ($node, $sql, $db) = @_;
	return $node->safe_psql($db // 'postgres', $sql);
}

sub wait_until
{
	my ($node, $sql, $timeout, %opts) = @_;
	my $db       = $opts{db}       // 'postgres';
	my $expected = $opts{expected} // 't';
	$timeout //= 10;

	my $start    = time();
	my $deadline = $start + $timeout;
	my ($out, $err) = ('', '');
	while (1)
	{
		# psql, not safe_psql: an error (e.g. a relation that is not there yet)
		# is one more failed attempt, not the end of the test.
		my $ret;
		($ret, $out, $err) = $node->psql($db, $sql);
		if (defined $ret && $ret == 0 && $out eq $expected)
		{
			my $elapsed = time() - $start;
			return wantarray ? (1, $elapsed) : 1;
		}
		last if time() >= $deadline;
		usleep(100_000);
	}
	diag("wait_until: no '$expected' after ${timeout}s from:\n$sql\n"
		  . "last output: '$out'\nlast stderr: '$err'");
	return wantarray ? (0, time() - $start) : 0;
}

sub wait_for_leaders
{
	my ($node, $db, $n, $timeout) = @_;
	return wait_until(
		$node,
		"SELECT count(*) FILTER (WHERE leader) = $n FROM foreman.tier_status",
		$timeout // 10,
		db => $db);
}

sub leader_pid
{
	my ($node, $tier, $db) = @_;
	return query($node,
		"SELECT pid FROM foreman.tier_status WHERE tier = '$tier' AND leader",
		$db);
}

sub coordinator_count
{
	my ($node, $db) = @_;
	my $filter = defined $db ? " AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'$filter");
}

1;
