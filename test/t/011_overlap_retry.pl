# 011_overlap_retry.pl: overlap, retries, max_failures and jitter (issue 3),
# asserted on the run table.
#
#  1. overlap => 'skip': a '1 second' job running pg_sleep(2.5) gets 'skipped'
#     rows with reason 'overlap' for fire times that fell while it ran; its
#     runs never overlap and each starts on time (a skipped fire time is not
#     run late). overlap => 'queue' (the same job, in another tier at the same
#     time): no 'overlap' rows; each run starts right after the previous one
#     finishes, for a fire time that fell during it, one run per previous run.
#  2. retries => 2, retry_backoff => '1 second' on a failing '1 hour' job:
#     attempts 1, 2, 3 in order, starts about 1 s then about 2 s apart (the
#     backoff doubles, +-12.5% jitter; asserted within +-25% plus 0.3 s), then
#     nothing more: no retry pending, next run an hour after the first, no
#     fourth attempt in a window longer than its backoff would be.
#  3. max_failures => 3 on a failing '1 second' job: exactly 3 failed runs,
#     then foreman.jobs shows it disabled with a reason naming 3 consecutive
#     failures, and no run follows in a window of several periods. A success
#     resets the count: a job that fails, fails, succeeds, fails... (driven by
#     a sequence, so the toggle cannot race the schedule) is disabled after
#     its 6th run, not its 4th.
#  4. jitter: 100 jobs of '1 minute' with jitter => '30 seconds' scheduled in
#     one transaction share one anchor; their phases are in [0, 30 s) and
#     spread over the window; next_runs starts at anchor + phase. alter_job of
#     the command (or the same schedule text) keeps anchor and phase; alter_job
#     of the schedule re-anchors the job and draws a new phase.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('overlap_retry');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

# All rows of a job, in order of start, times as epoch seconds.
sub runs_of
{
	my ($job) = @_;
	my $out = query($node, qq{
		SELECT status, coalesce(reason, ''), extract(epoch FROM scheduled_for),
		       extract(epoch FROM started_at), coalesce(extract(epoch FROM finished_at)::text, ''),
		       attempt, coalesce(sqlstate, ''), coalesce(message, '')
		  FROM foreman.runs WHERE job_name = '$job' ORDER BY started_at, run_id});
	my @rows;
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line, 8;
		push @rows, {
			status => $f[0], reason => $f[1], sched => $f[2], start => $f[3], finish => $f[4],
			attempt => $f[5], sqlstate => $f[6], message => $f[7] };
	}
	return @rows;
}

sub describe
{
	my $t0 = $_[0]{sched};
	return join "\n", map {
		sprintf('  %-9s %-9s att %d  sched %+7.3f start %+7.3f finish %s', $_->{status}, $_->{reason},
			$_->{attempt}, $_->{sched} - $t0, $_->{start} - $t0,
			$_->{finish} eq '' ? '-' : sprintf('%+7.3f', $_->{finish} - $t0))
	} @_;
}

# ---------------------------------------------------------------------------
# 1. Overlap skip (tier fast) and queue (tier slow), side by side.

query($node, q{
	SELECT foreman.schedule('ov_skip', '1 second', 'SELECT pg_sleep(2.5)', tier => 'fast');
	SELECT foreman.schedule('ov_queue', '1 second', 'SELECT pg_sleep(2.5)', tier => 'slow', overlap => 'queue');
});
ok( wait_until($node, q{
		SELECT count(*) FILTER (WHERE status = 'succeeded') >= 3
		   AND count(*) FILTER (WHERE reason = 'overlap') >= 2
		  FROM foreman.runs WHERE job_name = 'ov_skip'}, 20),
	'ov_skip: three runs and two overlap skips');
ok( wait_until($node, q{
		SELECT count(*) FILTER (WHERE status = 'succeeded') >= 3 FROM foreman.runs WHERE job_name = 'ov_queue'}, 20),
	'ov_queue: three runs');
query($node, q{SELECT foreman.unschedule('ov_skip'); SELECT foreman.unschedule('ov_queue');});
ok( wait_until($node, q{
		SELECT count(*) = 0 FROM foreman.runs WHERE job_name IN ('ov_skip', 'ov_queue') AND status = 'running'}, 10),
	'the overlap jobs are unscheduled and their last runs finished');

{
	my @rows = runs_of('ov_skip');
	note("ov_skip:\n" . describe(@rows));
	my @runs  = grep { $_->{status} ne 'skipped' } @rows;
	my @skips = grep { $_->{status} eq 'skipped' } @rows;
	is(scalar(grep { $_->{status} ne 'succeeded' } @runs), 0, 'ov_skip: every run succeeded');
	cmp_ok(scalar(grep { $_->{reason} eq 'overlap' } @skips), '>=', 2, "ov_skip: 'skipped' rows with reason 'overlap'");
	is(scalar(grep { $_->{reason} ne 'overlap' } @skips), 0, "ov_skip: no other kind of skipped row");
	my @overlapping = grep { $runs[$_]{start} < $runs[ $_ - 1 ]{finish} } 1 .. $#runs;
	is(scalar @overlapping, 0, 'ov_skip: runs never overlap (each starts at or after the previous finished)');
	my @outside = grep {
		my $s = $_;
		!grep { $s->{sched} >= $_->{start} && $s->{sched} < $_->{finish} } @runs
	} @skips;
	is(scalar @outside, 0, 'ov_skip: each overlap row stands for a fire time that fell while a run was going');
	is(scalar(grep { $_->{message} !~ /previous run/ } @skips), 0, 'ov_skip: its message says so');
	is(scalar(grep { $_->{start} - $_->{sched} > 0.5 } @runs),
		0, 'ov_skip: every run started within 0.5 s of its fire time (skipped fire times are not run late)');
	my @gaps = map { sprintf('%.3f', $runs[$_]{sched} - $runs[ $_ - 1 ]{sched}) } 1 .. $#runs;
	is(scalar(grep { $_ != 3 && $_ != 4 } @gaps), 0,
		'ov_skip: consecutive runs are for fire times 3 (or 4) s apart: the first fire time after the run ended')
	  or diag("gaps: @gaps");
	is(scalar(grep { $_->{attempt} != 1 } @rows), 0, 'ov_skip: all attempt 1');
}

{
	my @rows = runs_of('ov_queue');
	note("ov_queue:\n" . describe(@rows));
	my @runs  = grep { $_->{status} ne 'skipped' } @rows;
	my @skips = grep { $_->{status} eq 'skipped' } @rows;
	is(scalar(grep { $_->{status} ne 'succeeded' } @runs), 0, 'ov_queue: every run succeeded');
	is(scalar(grep { $_->{reason} eq 'overlap' } @skips), 0, "ov_queue: no 'overlap' rows");
	is(scalar(grep { $_->{reason} ne 'coalesced' } @skips),
		0, "ov_queue: the fire times a queued run stands for besides its own are 'coalesced' rows");
	my @bad_start = grep {
		$runs[$_]{start} < $runs[ $_ - 1 ]{finish} || $runs[$_]{start} - $runs[ $_ - 1 ]{finish} > 0.3
	} 1 .. $#runs;
	is(scalar @bad_start, 0, 'ov_queue: each run starts within 0.3 s after the previous one finished, never before')
	  or diag('starts after previous finish: '
		  . join(' ', map { sprintf('%.3f', $runs[$_]{start} - $runs[ $_ - 1 ]{finish}) } 1 .. $#runs));
	my @not_queued = grep {
		$runs[$_]{sched} < $runs[ $_ - 1 ]{start} || $runs[$_]{sched} >= $runs[ $_ - 1 ]{finish}
	} 1 .. $#runs;
	is(scalar @not_queued, 0, 'ov_queue: each run after the first is for a fire time that fell during the previous run');
	my @late = grep { $_->{start} - $_->{sched} >= 1 } @runs;
	is(scalar @late, 0, 'ov_queue: each run is for the latest fire time before it started (one queued run)');
}

# ---------------------------------------------------------------------------
# 2. Retries with exponential backoff.

query($node, q{
	SELECT foreman.schedule('retry', '1 hour', 'SELECT 1/0', tier => 'fast', retries => 2,
	                        retry_backoff => '1 second');
});
ok( wait_until($node, q{
		SELECT count(*) = 3 FROM foreman.runs WHERE job_name = 'retry' AND status <> 'running'}, 15),
	'retry: three finished attempts');
my @retry = runs_of('retry');
note("retry:\n" . describe(@retry));
is(join(',', map { $_->{attempt} } @retry), '1,2,3', 'retry: attempts 1, 2, 3 in order');
is(join(',', map { "$_->{status}/$_->{sqlstate}" } @retry),
	'failed/22012,failed/22012,failed/22012', 'retry: each attempt is its own failed run row');
my $gap1 = $retry[1]{start} - $retry[0]{start};
my $gap2 = $retry[2]{start} - $retry[1]{start};
note(sprintf('retry: attempt starts %.3f s then %.3f s apart', $gap1, $gap2));
ok($gap1 >= 0.75 && $gap1 <= 1.25 + 0.3, 'retry: attempt 2 started about 1 s after attempt 1 (backoff 1 s)');
ok($gap2 >= 1.5 && $gap2 <= 2.5 + 0.3, 'retry: attempt 3 started about 2 s after attempt 2 (backoff doubled)');
ok( near($retry[1]{sched}, $retry[1]{start}, 0.2) && near($retry[2]{sched}, $retry[2]{start}, 0.2),
	'retry: a retry run is scheduled for its retry time');
is( query($node, q{
		SELECT retry_at IS NULL AND retry_attempt = 0 AND consecutive_failures = 3 AND last_status = 'failed'
		       AND next_run_at = (SELECT scheduled_for FROM foreman.runs
		                           WHERE job_name = 'retry' AND attempt = 1) + interval '1 hour'
		  FROM foreman.jobs WHERE job_name = 'retry'}),
	't', 'retry: after the last attempt no retry is pending and the next run is the next fire time, an hour on');

sub near { my ($a, $b, $tol) = @_; return abs($a - $b) <= ($tol // 0.002); }

# ---------------------------------------------------------------------------
# 3. max_failures.

query($node, q{
	SELECT foreman.schedule('mf', '1 second', 'SELECT 1/0', tier => 'slow', max_failures => 3);
});
ok(wait_until($node, q{SELECT NOT enabled FROM foreman.jobs WHERE job_name = 'mf'}, 15), 'mf: disabled');
is(query($node, q{SELECT string_agg(status, ',' ORDER BY started_at) FROM foreman.runs WHERE job_name = 'mf'}),
	'failed,failed,failed', 'mf: exactly 3 failed runs, nothing else');
my $mf = query($node, q{
	SELECT consecutive_failures, next_run_at IS NULL, coalesce(disabled_reason, '')
	  FROM foreman.jobs WHERE job_name = 'mf'});
my ($mf_count, $mf_no_next, $mf_reason) = split /\|/, $mf, 3;
is($mf_count, 3, 'mf: foreman.jobs counts 3 consecutive failures');
is($mf_no_next, 't', 'mf: no next run');
like($mf_reason, qr/\b3 consecutive failures\b/, 'mf: disabled_reason names 3 consecutive failures');
like($mf_reason, qr/division by zero/, 'mf: and the last error');

# A success resets the count: nextval() is outside the job's transaction, so
# the job itself fails, fails, succeeds, then fails on every later run.
query($node, q{
	CREATE SEQUENCE mf_seq;
	SELECT foreman.schedule('mf_reset', '1 second',
	                        $$SELECT 1 / (CASE WHEN nextval('mf_seq') = 3 THEN 1 ELSE 0 END)$$,
	                        tier => 'slow', max_failures => 3);
});
ok(wait_until($node, q{SELECT NOT enabled FROM foreman.jobs WHERE job_name = 'mf_reset'}, 20), 'mf_reset: disabled');
is( query($node, q{SELECT string_agg(status, ',' ORDER BY started_at) FROM foreman.runs WHERE job_name = 'mf_reset'}),
	'failed,failed,succeeded,failed,failed,failed',
	'mf_reset: the success after two failures reset the count; disabled after the next three');
is( query($node, q{SELECT consecutive_failures FROM foreman.jobs WHERE job_name = 'mf_reset'}),
	3, 'mf_reset: consecutive_failures is 3');
like(query($node, q{SELECT disabled_reason FROM foreman.jobs WHERE job_name = 'mf_reset'}),
	qr/\b3 consecutive failures\b/, 'mf_reset: disabled_reason names 3 consecutive failures');

# Bounded observation windows: no fourth retry attempt for 5 s after the third
# (a fourth would have come 4 s +-12.5% later), no run of a disabled job for
# 3 s (three of its periods). The tests above usually used that time up; if
# not, let the rest of the wall-clock time pass deliberately.
for my $w (['retry', 5], ['mf', 3])
{
	my ($job, $secs) = @$w;
	my $left = query($node, qq{
		SELECT greatest(0, $secs - extract(epoch FROM clock_timestamp() - max(finished_at)))
		  FROM foreman.runs WHERE job_name = '$job'});
	sleep($left + 0.1) if $left > 0;
}
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'retry'}),
	3, 'retry: no fourth attempt within 5 s of the third');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'mf'}),
	3, 'mf: no run after it was disabled, within 3 s (three periods)');

# ---------------------------------------------------------------------------
# 4. Jitter: 100 jobs, one transaction.

query($node, q{
	SELECT count(foreman.schedule('jit_' || i, '1 minute', 'SELECT 1', jitter => '30 seconds'))
	  FROM generate_series(1, 100) AS i;
});
my ($n, $anchors, $jitters, $min, $max, $secs1, $secs3, $nexts) = split /\|/, query($node, q{
	SELECT count(*), count(DISTINCT j.anchor_at), string_agg(DISTINCT v.jitter::text, ','),
	       min(extract(epoch FROM v.phase)), max(extract(epoch FROM v.phase)),
	       count(DISTINCT floor(extract(epoch FROM v.phase))),
	       count(DISTINCT floor(extract(epoch FROM v.phase) / 3)),
	       count(DISTINCT v.next_run_at)
	  FROM foreman.job j JOIN foreman.jobs v USING (job_id)
	 WHERE j.job_name LIKE 'jit\_%'});
note("jitter: phases from $min s to $max s, $secs1 of 30 one-second and $secs3 of 10 three-second buckets used");
is($n,       100,         'jitter: 100 jobs');
is($anchors, 1,           'jitter: scheduled in one transaction, they share one anchor');
is($jitters, '00:00:30', 'jitter: each stores its jitter window');
cmp_ok($min, '>=', 0,  'jitter: every phase >= 0');
cmp_ok($max, '<',  30, 'jitter: every phase < 30 s');
cmp_ok($secs1, '>=', 20, 'jitter: phases spread over at least 20 of the 30 one-second buckets');
cmp_ok($secs3, '>=', 9,  'jitter: and over at least 9 of the 10 three-second buckets');
is($nexts, 100, 'jitter: 100 distinct next run times');

# next_runs of every job starts at anchor + phase (or one period later for a
# job whose first run already came), and of the job with the largest phase
# (not run yet) exactly at anchor + phase.
is( query($node, q{
		SELECT count(*) FROM foreman.job j
		 WHERE j.job_name LIKE 'jit\_%'
		   AND (SELECT min(t) FROM foreman.next_runs(j.job_name, 1) AS t)
		       IN (j.anchor_at + j.phase, j.anchor_at + j.phase + interval '1 minute')}),
	100, 'jitter: next_runs of each job is on its grid anchor + phase + n minutes');
my $last = query($node, q{
	SELECT job_name FROM foreman.jobs WHERE job_name LIKE 'jit\_%' ORDER BY phase DESC LIMIT 1});
is( query($node, qq{
		SELECT array_agg(t ORDER BY t) = ARRAY[j.anchor_at + j.phase, j.anchor_at + j.phase + interval '1 minute',
		                                     j.anchor_at + j.phase + interval '2 minutes']
		  FROM foreman.job j, foreman.next_runs('$last', 3) AS t
		 WHERE j.job_name = '$last' GROUP BY j.anchor_at, j.phase}),
	't', "jitter: next_runs('$last', 3) = anchor + phase, then a minute apart");

# What alter_job does to the phase.
sub anchor_phase
{
	return query($node, qq{SELECT anchor_at || '|' || phase FROM foreman.job WHERE job_name = '$_[0]'});
}
my $before = anchor_phase($last);
query($node, qq{SELECT foreman.alter_job('$last', command => 'SELECT 2')});
is(anchor_phase($last), $before, 'jitter: alter_job of the command keeps anchor and phase');
query($node, qq{SELECT foreman.alter_job('$last', schedule => '1 minute', retries => 1)});
is(anchor_phase($last), $before, 'jitter: alter_job with the same schedule text keeps anchor and phase');

# The code (write_job in src/api/jobs.cpp) keeps anchor and phase only while
# schedule, jitter, time_zone, start_at and end_at are unchanged; a new
# schedule re-anchors the job at the alter_job transaction and draws a new
# phase in [0, jitter).
query($node, qq{SELECT foreman.alter_job('$last', schedule => '2 minutes')});
my ($new_anchor_later, $phase_changed, $phase_ok, $next_ok) = split /\|/, query($node, qq{
	WITH old AS (SELECT split_part('$before', '|', 1) AS a, split_part('$before', '|', 2) AS p)
	SELECT j.anchor_at > (SELECT a FROM old)::timestamptz,
	       j.phase <> (SELECT p FROM old)::interval,
	       j.phase >= interval '0' AND j.phase < interval '30 seconds',
	       (SELECT min(t) FROM foreman.next_runs(j.job_name, 1) AS t) = j.anchor_at + j.phase
	  FROM foreman.job j WHERE j.job_name = '$last'});
is($new_anchor_later, 't', 'jitter: alter_job of the schedule re-anchors the job at the change');
is($phase_changed,    't', 'jitter: and redraws its phase');
is($phase_ok,         't', 'jitter: the new phase is in [0, 30 s)');
is($next_ok,          't', 'jitter: next_runs starts at the new anchor + new phase');

# Pausing and resuming does not change the schedule, so by issue 3 the phase
# must stay ("it never changes until the job's schedule changes").
my $first = query($node, q{
	SELECT job_name FROM foreman.jobs WHERE job_name LIKE 'jit\_%' ORDER BY phase LIMIT 1});
my $phase_before = query($node, qq{SELECT phase FROM foreman.jobs WHERE job_name = '$first'});
query($node, qq{SELECT foreman.alter_job('$first', enabled => false)});
is(query($node, qq{SELECT phase FROM foreman.jobs WHERE job_name = '$first'}),
	$phase_before, 'jitter: pausing a job keeps its phase');
query($node, qq{SELECT foreman.alter_job('$first', enabled => true)});
is(query($node, qq{SELECT phase FROM foreman.jobs WHERE job_name = '$first'}),
	$phase_before, 'jitter: resuming a paused job keeps its phase');

$node->stop;
done_testing();
