# 010_schedules.pl: what happens to fire times that fall while the server is
# down (issue 3: misfire grace, coalescing on and off, @reboot).
#
# One clean stop, about 5 s of downtime, one start; five jobs live through it:
#
#  misfire_each    '2 seconds', misfire_grace 1 s, coalesce_runs => false (tier
#                  slow): every fire time of the downtime that is more than 1 s
#                  old when the coordinator comes back gets its own 'skipped'
#                  row with reason 'misfire', oldest first, 2 s apart; the first
#                  fire time still inside the grace runs; no run anywhere starts
#                  more than the grace after its fire time.
#  misfire_latest  the same with the default coalesce_runs => true: the downtime
#                  is decided once (for its latest fire time: skipped as misfire
#                  or run within the grace, depending on where the restart falls
#                  in the 2-second period); no run ever starts late.
#  coalesce_on     '1 second', coalesce_runs => true (tier fast): exactly one run
#                  for the downtime, for its latest fire time, plus one 'skipped'
#                  row with reason 'coalesced' whose message counts the other
#                  missed fire times; every missed fire time is accounted for.
#  coalesce_off    '1 second', coalesce_runs => false, max_catchup => 3: one
#                  'catch-up limit' row for the oldest missed fire times, then
#                  exactly 3 catch-up runs with distinct, consecutive
#                  scheduled_for, run oldest first, then the regular cadence.
#  boot            '@reboot' (tier fast): no run when scheduled on a running
#                  server, exactly one run after the start, one more after a
#                  second restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('schedules');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
# (Built-in jobs, if any, are left out of every query by naming the jobs.)
my $interval_jobs = q{'misfire_each', 'misfire_latest', 'coalesce_on', 'coalesce_off'};

query($node, q{
	SELECT foreman.schedule('misfire_each', '2 seconds', 'SELECT 1', tier => 'slow',
	                        misfire_grace => '1 second', coalesce_runs => false);
	SELECT foreman.schedule('misfire_latest', '2 seconds', 'SELECT 1', tier => 'slow',
	                        misfire_grace => '1 second');
	SELECT foreman.schedule('coalesce_on', '1 second', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('coalesce_off', '1 second', 'SELECT 1', tier => 'fast',
	                        coalesce_runs => false, max_catchup => 3);
	SELECT foreman.schedule('boot', '@reboot', 'SELECT 1', tier => 'fast');
});

ok( wait_until($node, qq{
		SELECT bool_and(n >= 2) FROM (
			SELECT count(r.run_id) FILTER (WHERE r.status = 'succeeded') AS n
			  FROM foreman.jobs j LEFT JOIN foreman.runs r USING (job_id)
			 WHERE j.job_name IN ($interval_jobs) GROUP BY j.job_id) s}, 15),
	'every interval job ran twice before the downtime');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'boot'}),
	0, '@reboot job scheduled on a running server does not run until the coordinator starts again');
is(query($node, q{SELECT count(*) FROM foreman.next_runs('boot', 3)}),
	0, 'next_runs of an @reboot job is empty');

# ---------------------------------------------------------------------------
# Downtime.

my $t_stop = query($node, q{SELECT extract(epoch FROM clock_timestamp())});
$node->stop;
# Deliberately let wall-clock time pass with the server down: 5 s is more than
# two periods of the 2-second jobs plus their 1-second grace, and five fire
# times of the 1-second jobs.
sleep 5;
$node->start;
my $pm_start = query($node, q{SELECT extract(epoch FROM pg_postmaster_start_time())});
note(sprintf('server down for %.2f s', $pm_start - $t_stop));
cmp_ok($pm_start - $t_stop, '>=', 5, 'the server was down at least 5 s');

ok( wait_until($node, qq{
		SELECT bool_and(n >= 2) FROM (
			SELECT count(r.run_id) FILTER (WHERE r.status = 'succeeded'
			                                 AND r.started_at > to_timestamp($pm_start)) AS n
			  FROM foreman.jobs j LEFT JOIN foreman.runs r USING (job_id)
			 WHERE j.job_name IN ($interval_jobs) GROUP BY j.job_id) s}, 20),
	'every interval job ran twice again after the start');
ok( wait_until($node, qq{
		SELECT count(*) = 1 FROM foreman.runs
		 WHERE job_name = 'boot' AND status = 'succeeded' AND started_at > to_timestamp($pm_start)}, 10),
	'@reboot job ran after the start');

# All rows of a job, oldest fire time first, times as epoch seconds.
sub runs_of
{
	my ($job) = @_;
	my $out = query($node, qq{
		SELECT status, coalesce(reason, ''), extract(epoch FROM scheduled_for),
		       extract(epoch FROM started_at), coalesce(extract(epoch FROM finished_at)::text, ''),
		       attempt, coalesce(message, '')
		  FROM foreman.runs WHERE job_name = '$job' ORDER BY scheduled_for, run_id});
	my @rows;
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line, 7;
		push @rows, {
			status => $f[0], reason => $f[1], sched => $f[2], start => $f[3],
			finish => $f[4], attempt => $f[5], message => $f[6] };
	}
	return @rows;
}

# Rows of the job's fire times after the last one the old server ran, and the
# fire time of that last pre-downtime run.
sub after_downtime
{
	my ($job) = @_;
	my @all = runs_of($job);
	my ($last_pre) = sort { $b <=> $a }
	  map { $_->{sched} } grep { $_->{start} < $pm_start && $_->{status} ne 'skipped' } @all;
	return ($last_pre, grep { $_->{sched} > $last_pre + 0.001 } @all);
}

sub near { my ($a, $b) = @_; return abs($a - $b) < 0.002; }

sub describe
{
	return join "\n", map {
		sprintf('  %-9s %-14s sched %.3f start %+.3f', $_->{status}, $_->{reason}, $_->{sched},
			$_->{start} - $_->{sched})
	} @_;
}

# ---------------------------------------------------------------------------
# misfire_each: each missed fire time past the grace is a 'misfire' row.
{
	my ($last_pre, @post) = after_downtime('misfire_each');
	note("misfire_each after its last run before the downtime (fire time $last_pre):\n" . describe(@post));
	my @misfires;
	push @misfires, shift @post while @post && $post[0]{status} eq 'skipped';
	my $first_run = $post[0];

	cmp_ok(scalar @misfires, '>=', 2, 'misfire_each: at least two fire times of the downtime were skipped');
	is(scalar(grep { $_->{reason} ne 'misfire' } @misfires), 0, "misfire_each: every one with reason 'misfire'");
	is( scalar(grep { $_->{sched} >= $t_stop && $_->{sched} < $pm_start } @misfires) >= 1,
		1, 'misfire_each: a misfire row stands for a fire time during the downtime');
	is(scalar(grep { $_->{start} - $_->{sched} <= 1 } @misfires),
		0, 'misfire_each: each was decided more than the grace (1 s) after its fire time');
	is(scalar(grep { $_->{message} !~ /misfire_grace/ } @misfires), 0, 'misfire_each: the message names misfire_grace');
	ok($first_run && $first_run->{status} eq 'succeeded', 'misfire_each: then a fire time inside the grace ran');
	# Oldest first, each its own row: consecutive fire times 2 s apart from the
	# first after the last pre-downtime run up to the run.
	my @chain = ($last_pre, map { $_->{sched} } @misfires, $first_run);
	my @gaps = map { $chain[$_] - $chain[ $_ - 1 ] } 1 .. $#chain;
	is(scalar(grep { !near($_, 2) } @gaps), 0, 'misfire_each: one row per fire time, oldest first, none left out')
	  or diag("gaps: @gaps");
	cmp_ok($first_run->{start} - $first_run->{sched}, '<=', 1, 'misfire_each: that run started within the grace');
}
is( query($node, q{
		SELECT count(*) FROM foreman.runs
		 WHERE job_name IN ('misfire_each', 'misfire_latest') AND status <> 'skipped'
		   AND started_at - scheduled_for > interval '1 second'}),
	0, 'no run of a job with misfire_grace 1 s ever started more than 1 s after its fire time');

# misfire_latest: coalescing decides once, for the latest missed fire time.
{
	my ($last_pre, @post) = after_downtime('misfire_latest');
	note("misfire_latest after its last run before the downtime (fire time $last_pre):\n" . describe(@post));
	my @before_run;
	push @before_run, shift @post while @post && $post[0]{status} eq 'skipped';
	my $first_run = $post[0];
	# The decision is one row; the fire times folded into it get one more row
	# of their own ("N fire times from ... to ..."), with the same reason.
	my @misfires = grep { $_->{reason} eq 'misfire' && $_->{message} !~ /fire times from/ } @before_run;
	my @folded   = grep { $_->{reason} eq 'misfire' && $_->{message} =~ /fire times from/ } @before_run;
	cmp_ok(scalar @misfires, '<=', 1, 'misfire_latest: the whole downtime is decided at most once as a misfire');
	cmp_ok(scalar @folded, '<=', 1, 'misfire_latest: the fire times folded into that decision are one row');
	is(scalar(grep { $_->{reason} ne 'misfire' && $_->{reason} ne 'coalesced' } @before_run),
		0, "misfire_latest: nothing else than 'misfire' or 'coalesced' before its next run");
	ok($first_run && $first_run->{status} eq 'succeeded', 'misfire_latest: then it runs again');
	cmp_ok($first_run->{start} - $first_run->{sched}, '<=', 1, 'misfire_latest: within the grace');
	note(@misfires
		? 'misfire_latest: the latest missed fire time was past the grace: skipped as a misfire'
		: 'misfire_latest: the latest missed fire time was inside the grace: it ran');
}

# ---------------------------------------------------------------------------
# coalesce_on: one run for the downtime.
{
	my ($last_pre, @post) = after_downtime('coalesce_on');
	note("coalesce_on after its last run before the downtime (fire time $last_pre):\n" . describe(@post[0 .. 3]));
	my ($coalesced, $run, $next) = @post;
	ok( $coalesced->{status} eq 'skipped' && $coalesced->{reason} eq 'coalesced',
		"coalesce_on: the first missed fire time is a 'skipped' row with reason 'coalesced'");
	ok(near($coalesced->{sched}, $last_pre + 1), 'coalesce_on: standing for the first fire time after the last run');
	my ($count) = $coalesced->{message} =~ /^(\d+) fire times/;
	ok(defined $count, 'coalesce_on: its message counts the missed fire times')
	  or diag("message: $coalesced->{message}");
	$count //= -1;
	cmp_ok($count, '>=', 3, 'coalesce_on: at least 3 missed fire times were folded');
	is($run->{status}, 'succeeded', 'coalesce_on: then one run');
	ok(near($run->{sched}, $last_pre + 1 + $count),
		'coalesce_on: for the latest missed fire time, right after the folded ones (none unaccounted)')
	  or diag("run fire time $run->{sched}, coalesced from $coalesced->{sched}, count $count");
	cmp_ok($run->{start} - $run->{sched}, '<', 1, 'coalesce_on: that run started less than a period after its fire time');
	cmp_ok($run->{start}, '>=', $pm_start, 'coalesce_on: it ran after the start');
	ok(near($next->{sched}, $run->{sched} + 1) && $next->{status} eq 'succeeded',
		'coalesce_on: the next run is the next fire time');
	cmp_ok($next->{start}, '>=', $next->{sched}, 'coalesce_on: and ran on schedule, not as a second catch-up run');
	is( query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'coalesce_on' AND reason = 'coalesced'}),
		1, 'coalesce_on: one coalesced row in all');
}

# ---------------------------------------------------------------------------
# coalesce_off, max_catchup 3: catch-up runs oldest first, at most 3 behind.
{
	my ($last_pre, @post) = after_downtime('coalesce_off');
	note("coalesce_off after its last run before the downtime (fire time $last_pre):\n" . describe(@post[0 .. 5]));
	my ($limit, @runs) = @post;
	ok( $limit->{status} eq 'skipped' && $limit->{reason} eq 'catch-up limit',
		"coalesce_off: the oldest missed fire times are one 'skipped' row with reason 'catch-up limit'");
	ok(near($limit->{sched}, $last_pre + 1), 'coalesce_off: starting at the first fire time after the last run');
	my ($count) = $limit->{message} =~ /^(\d+) fire times/;
	ok(defined $count, 'coalesce_off: its message counts them') or diag("message: $limit->{message}");
	$count //= -1;
	cmp_ok($count, '>=', 2, 'coalesce_off: at least 2 fire times were beyond max_catchup');

	my $first_start = $runs[0]{start};
	my @behind = grep { $_->{sched} <= $first_start } @runs;
	is(scalar @behind, 3, 'coalesce_off: exactly max_catchup = 3 catch-up runs for fire times already past');
	is(scalar(grep { $_->{status} ne 'succeeded' } @runs), 0, 'coalesce_off: no other skipped rows, all runs succeeded');
	my @chain = ($limit->{sched} + $count - 1, map { $_->{sched} } @runs[ 0 .. 3 ]);
	my @gaps = map { $chain[$_] - $chain[ $_ - 1 ] } 1 .. $#chain;
	is(scalar(grep { !near($_, 1) } @gaps), 0,
		'coalesce_off: the catch-up runs and the next run have distinct consecutive fire times after the folded ones')
	  or diag("gaps: @gaps");
	my @starts = map { $_->{start} } @runs[ 0 .. 3 ];
	is(scalar(grep { $starts[$_] < $starts[ $_ - 1 ] } 1 .. $#starts), 0, 'coalesce_off: oldest fire time ran first');
	cmp_ok($runs[3]{start}, '>=', $runs[3]{sched}, 'coalesce_off: the run after the catch-up ran on schedule');
}

# ---------------------------------------------------------------------------
# @reboot: once per start of its coordinator.
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'boot'}),
	1, '@reboot job ran exactly once after the start (still once, seconds later)');

$node->restart;
my $pm_start2 = query($node, q{SELECT extract(epoch FROM pg_postmaster_start_time())});
ok( wait_until($node, qq{
		SELECT count(*) = 1 FROM foreman.runs
		 WHERE job_name = 'boot' AND status = 'succeeded' AND started_at > to_timestamp($pm_start2)}, 10),
	'@reboot job ran again after a second restart');
# A bounded window for a duplicate: until beat-like jobs ran twice more.
ok( wait_until($node, qq{
		SELECT count(*) >= 3 FROM foreman.runs
		 WHERE job_name = 'coalesce_on' AND status = 'succeeded' AND started_at > to_timestamp($pm_start2)}, 10),
	'the tier keeps running after the @reboot run');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'boot'}),
	2, '@reboot job ran once per start: two runs in all');

$node->stop;
done_testing();
