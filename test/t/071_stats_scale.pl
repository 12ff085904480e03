# 071_stats_scale.pl: the observability views over a million history rows.
#
# 1,000,000 run rows of 200 jobs in the last 24 hours (every one of them in
# the day window: the worst case for the day view; about 42,000 in the last
# hour). Asserted: the reads of the last hour use indexes (job_stats by
# started_at, the last error by the partial failure index, tier_stats and
# metrics by finished_at), also under
# row-level security (as a foreman_monitor member), so their cost follows the
# rows of the window and not the history. Printed, not asserted: how long
# each takes, as a superuser (no row-level security) and as a
# foreman_monitor member (the policies evaluated per row), and the plan of
# job_stats over the last hour.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ForemanTest;

my $node = new_node('stats_scale', extra_conf => "shared_buffers = 256MB\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

# 200 disabled jobs (nothing runs them), their history written directly; the
# trim job would cut it to foreman.max_runs_per_job, so it is off. Triggers
# are off for the load (session_replication_role): the skipped-run counter
# is not what is measured.
my $t0 = time();
query($node, q{
	CREATE ROLE watcher LOGIN IN ROLE foreman_monitor;
	SELECT foreman.alter_job('foreman.trim_run_history', enabled => false);
	SELECT count(foreman.schedule('bulk_' || i, '1 minute', 'SELECT 1', enabled => false,
	                              tier => CASE WHEN i % 4 = 0 THEN 'slow' ELSE 'fast' END))
	  FROM generate_series(1, 200) i;
	SET session_replication_role = replica;
	INSERT INTO foreman.job_run (job_id, job_name, owner, owner_name, tier_id, pid, status, scheduled_for,
	                             started_at, finished_at, rows_affected, sqlstate, message)
	SELECT j.job_id, j.job_name, j.owner, j.owner_name, j.tier_id, 1000,
	       CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 97 = 0 THEN 'skipped'
	            WHEN g % 211 = 0 THEN 'timed_out' ELSE 'succeeded' END,
	       now() - g * interval '86 ms' - (g % 7) * interval '1 ms',
	       now() - g * interval '86 ms',
	       now() - g * interval '86 ms' + (g % 83) * interval '1 ms',
	       g % 100,
	       CASE WHEN g % 50 = 0 THEN '22012' END, CASE WHEN g % 50 = 0 THEN 'division by zero' END
	  FROM generate_series(1, 1000000) g
	  JOIN (SELECT job_id, job_name, owner, owner_name, tier_id, row_number() OVER (ORDER BY job_id) - 1 AS k
	          FROM foreman.job WHERE job_name LIKE 'bulk_%') j ON j.k = g % 200;
	RESET session_replication_role;
});
query($node, 'VACUUM ANALYZE foreman.job_run');
query($node, 'VACUUM ANALYZE foreman.job');
my $load = time() - $t0;
is(query($node, q{SELECT count(*) >= 1000000 FROM foreman.job_run}), 't', 'a million history rows');

# The plans: every windowed read goes through an index.
my %plan_of = (
	'job_stats, last hour' => q{SELECT * FROM foreman.job_stats(now() - interval '1 hour')},
	'tier_stats, last hour' => q{SELECT * FROM foreman.tier_stats(now() - interval '1 hour')},
	'metrics' => q{SELECT * FROM foreman.metrics},
	'timeline_svg, last 10 minutes' => q{SELECT foreman.timeline_svg()});
my %uses = (
	'job_stats, last hour' => [ 'job_run_started_idx', 'job_run_job_failed_idx' ],
	'tier_stats, last hour' => ['job_run_finished_idx'],
	'metrics' => ['job_run_finished_idx']);
for my $user ('', 'watcher')
{
	my $as = $user ? ' (as a foreman_monitor member)' : '';
	for my $what (sort keys %uses)
	{
		my $plan = $node->safe_psql('postgres', "EXPLAIN (COSTS OFF) $plan_of{$what}",
			$user ? (extra_params => [ '-U', $user ]) : ());
		for my $index (@{ $uses{$what} })
		{
			like($plan, qr/\b\Q$index\E\b/, "$what reads job_run by $index$as");
		}
		unlike($plan, qr/Seq Scan on job_run/, "$what never reads all of job_run$as");
	}
}

# Timings: each query twice in one session, the second one counts.
sub timed
{
	my ($sql, $user) = @_;
	my $out = $node->safe_psql('postgres', "\\timing on\n$sql \\g /dev/null\n$sql \\g /dev/null\n",
		$user ? (extra_params => [ '-U', $user ]) : ());
	my @ms = ($out =~ /Time: ([\d.]+) ms/g);
	return $ms[-1];
}
my @rows = (
	[ 'job_stats(now() - 1 hour)', q{SELECT * FROM foreman.job_stats(now() - interval '1 hour')} ],
	[ 'job_stats(now() - 1 day)',  q{SELECT * FROM foreman.job_stats(now() - interval '1 day')} ],
	[ 'foreman.job_stats (both)',  q{SELECT * FROM foreman.job_stats} ],
	[ 'foreman.tier_stats (both)', q{SELECT * FROM foreman.tier_stats} ],
	[ 'foreman.metrics',           q{SELECT * FROM foreman.metrics} ],
	[ 'timeline_svg() (10 min)',   q{SELECT foreman.timeline_svg()} ],
	[ 'foreman.jobs (for scale)',  q{SELECT * FROM foreman.jobs} ]);
my $in_hour = query($node, q{SELECT count(*) FROM foreman.job_run WHERE started_at >= now() - interval '1 hour'});
my $in_day = query($node, q{SELECT count(*) FROM foreman.job_run WHERE started_at >= now() - interval '1 day'});
my $report = sprintf("\n%d history rows (loaded in %.0f s); %d in the last hour, %d in the last day\n",
	1000000, $load, $in_hour, $in_day);
$report .= sprintf("%-28s %14s %22s\n", 'query', 'superuser ms', 'foreman_monitor ms');
for my $r (@rows)
{
	$report .= sprintf("%-28s %14.1f %22.1f\n", $r->[0], timed($r->[1]), timed($r->[1], 'watcher'));
}
diag($report);
diag("plan of job_stats over the last hour:\n"
	  . query($node, q{EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
	                   SELECT * FROM foreman.job_stats(now() - interval '1 hour')}));

$node->stop;
done_testing();
