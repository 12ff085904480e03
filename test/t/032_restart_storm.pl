# 032_restart_storm.pl: 20 consecutive fast restarts (issue 5, item 4).
#
# Two databases with the extension, a 1-second job in each of their tiers
# fast and slow. After each fast stop and start, every tier of both databases
# must lead and run its job within 3 s of the server accepting connections
# (the "ready to accept connections" line of the server log): 20 of 20.
# Over the whole storm no fire time runs twice, nothing is left 'running',
# and no run is 'crashed' (a fast shutdown cancels and records).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time usleep);

my $restarts = 20;
my $node = new_node('storm');
query($node, 'CREATE DATABASE db2');
query($node, 'CREATE EXTENSION pg_foreman', 'db2');

my @dbs = ('postgres', 'db2');
for my $db (@dbs)
{
	ok(wait_for_leaders($node, $db, 2, 10), "database $db: both tiers lead");
	query($node, q{
		SELECT foreman.schedule('fast_job', '1 second', 'SELECT 1', tier => 'fast');
		SELECT foreman.schedule('slow_job', '1 second', 'SELECT 2', tier => 'slow');
	}, $db);
	ok( wait_until($node, q{SELECT count(DISTINCT job_name) = 2 FROM foreman.runs
	                         WHERE job_name IN ('fast_job', 'slow_job') AND status = 'succeeded'}, 10, db => $db),
		"database $db: both jobs run");
}

# Timestamp of the last "ready to accept connections" in the log since $offset.
sub ready_time
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my @ready = $log =~ /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+) \[\d+\] LOG:  database system is ready to accept connections$/mg;
	return $ready[-1];
}

my $good = 0;
my @failures;
for my $i (1 .. $restarts)
{
	my $offset = -s $node->logfile;
	$node->stop('fast');
	$node->start;
	my $ready = ready_time($offset);
	unless ($ready)
	{
		push @failures, "restart $i: no 'ready to accept connections' in the log";
		next;
	}

	# Each (database, tier): leads now, and the latency of its first run.
	my $deadline = time() + 6;
	my %lat;
	while (1)
	{
		%lat = ();
		for my $db (@dbs)
		{
			my ($ret, $out) = $node->psql($db, qq{
				SELECT (SELECT count(*) FILTER (WHERE leader) FROM foreman.tier_status) || '|' ||
				       coalesce(string_agg(job_name || '=' || extract(epoch FROM first - '$ready'::timestamptz), ','), '')
				  FROM (SELECT job_name, min(started_at) AS first FROM foreman.runs
				         WHERE job_name IN ('fast_job', 'slow_job') AND status = 'succeeded'
				           AND started_at >= '$ready'::timestamptz
				         GROUP BY job_name) r});
			next unless defined $ret && $ret == 0;
			my ($leaders, $list) = split /\|/, $out, 2;
			$lat{"$db/leaders"} = $leaders;
			for (split /,/, $list // '')
			{
				my ($job, $s) = split /=/;
				$lat{"$db/$job"} = $s;
			}
		}
		my $complete = (grep { defined $lat{"$_/fast_job"} && defined $lat{"$_/slow_job"}
			                     && ($lat{"$_/leaders"} // 0) == 2 } @dbs) == @dbs;
		last if $complete || time() >= $deadline;
		usleep(100_000);
	}
	my @late;
	for my $db (@dbs)
	{
		push @late, "$db: " . ($lat{"$db/leaders"} // 0) . ' leaders' if ($lat{"$db/leaders"} // 0) != 2;
		for my $job ('fast_job', 'slow_job')
		{
			my $s = $lat{"$db/$job"};
			push @late, "$db/$job: " . (defined $s ? sprintf('%.2f s', $s) : 'no run') if !defined $s || $s > 3.0;
		}
	}
	my $worst = 0;
	for (grep { !/leaders/ } keys %lat) { $worst = $lat{$_} if defined $lat{$_} && $lat{$_} > $worst; }
	if (@late)
	{
		push @failures, "restart $i: " . join('; ', @late);
		note("restart $i: FAILED: " . join('; ', @late));
	}
	else
	{
		$good++;
		note(sprintf('restart %d: every tier ran within %.2f s of ready', $i, $worst));
	}
}
is($good, $restarts, "every tier of both databases led and ran a job within 3 s after each of $restarts fast restarts")
  or diag(join("\n", @failures));

for my $db (@dbs)
{
	is( query($node, q{
			SELECT count(*) FROM (SELECT job_name, scheduled_for FROM foreman.runs WHERE status <> 'skipped'
			                       GROUP BY job_name, scheduled_for HAVING count(*) > 1) d}, $db),
		0, "database $db: no fire time ran twice");
	is( query($node, q{SELECT count(*) FROM foreman.runs WHERE status = 'running'
	                     AND pid NOT IN (SELECT pid FROM pg_stat_activity)}, $db),
		0, "database $db: no run is left running by a process that is gone");
	is(query($node, q{SELECT count(*) FROM foreman.runs WHERE status = 'crashed'}, $db),
		0, "database $db: no run crashed (fast shutdowns are not crashes)");
}

$node->stop;
done_testing();
