# 001_cadence.pl: a slow job never delays a fast tier, a failing job never
# delays the next one.
#
#  1. A 1-second job in tier fast keeps its cadence for the whole time a job in
#     tier slow runs SELECT pg_sleep(20): every run succeeds, at least 15 of them
#     start while the sleep runs, consecutive starts are <= 1.5 s apart, and no
#     run starts more than 0.5 s after it was due.
#  2. A 1-second job SELECT 1/0 in tier fast next to another 1-second job: each
#     of its runs is recorded failed with SQLSTATE 22012 and the other job keeps
#     the same cadence.
#  3. Starts are recorded ahead of their fire times (a few milliseconds, one
#     durable commit), but no command ever starts before its fire time: ten
#     every-second jobs in tier fast and ten in a parallel tier record
#     clock_timestamp() from inside their command; none is earlier than the
#     fire time of its run, in either tier.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('cadence');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

# Cadence of job $job between two SQL timestamps: (runs, max gap in s, max
# lateness in s, runs that did not succeed).
sub cadence
{
	my ($job, $from, $to) = @_;
	my $row = query($node, qq{
		WITH r AS (
			SELECT started_at, scheduled_for, status,
			       started_at - lag(started_at) OVER (ORDER BY started_at) AS gap
			  FROM foreman.runs
			 WHERE job_name = '$job' AND started_at >= $from AND started_at <= $to)
		SELECT count(*),
		       coalesce(extract(epoch FROM max(gap)), 0),
		       coalesce(extract(epoch FROM max(started_at - scheduled_for)), 0),
		       count(*) FILTER (WHERE status <> 'succeeded')
		  FROM r});
	return split /\|/, $row;
}

# ---------------------------------------------------------------------------
# 1. fast keeps its cadence while slow sleeps for 20 s.

query($node, q{
	SELECT foreman.schedule('sleepy', '1 hour', 'SELECT pg_sleep(20)', tier => 'slow');
	SELECT foreman.schedule('tick', '1 second', 'SELECT 1', tier => 'fast');
});
is(query($node, q{SELECT string_agg(job_name || ':' || tier, ',' ORDER BY job_name) FROM foreman.jobs WHERE job_name NOT LIKE 'foreman.%'}),
	'sleepy:slow,tick:fast', 'jobs are in the intended tiers');

ok( wait_until($node,
		q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'sleepy' AND status = 'running'}, 10),
	'the slow job is running');
is( query($node, q{SELECT current_job FROM foreman.tier_status WHERE tier = 'slow' AND leader}),
	'sleepy', 'tier_status shows the slow coordinator inside the slow job');

# The slow run finishes after 20 s; meanwhile tick should run about 20 times.
my $sleepy = query($node, q{
	SELECT to_json(r) FROM foreman.wait_for_run('sleepy', '-infinity', '40 seconds') r});
like($sleepy, qr/"status":"succeeded"/, 'the slow job ran to completion');
my ($slow_start, $slow_end) = split /\|/, query($node, q{
	SELECT quote_literal(started_at), quote_literal(finished_at)
	  FROM foreman.runs WHERE job_name = 'sleepy' AND status = 'succeeded'});
my $slept = query($node, qq{SELECT extract(epoch FROM ${slow_end}::timestamptz - ${slow_start}::timestamptz) >= 19.5});
is($slept, 't', 'the slow job slept its 20 seconds');

my ($n, $gap, $late, $bad) = cadence('tick', "${slow_start}::timestamptz", "${slow_end}::timestamptz");
note("tick during pg_sleep(20): $n runs, max gap ${gap}s, max lateness ${late}s");
cmp_ok($n,    '>=', 18,  'tick ran at least 18 times during the 20 s sleep of the slow job');
cmp_ok($gap,  '<=', 1.5, 'consecutive tick runs started at most 1.5 s apart');
cmp_ok($late, '<=', 0.5, 'no tick run started more than 0.5 s after it was due');
is($bad, 0, 'every tick run succeeded');
is( query($node, qq{
		SELECT count(DISTINCT pid) FROM foreman.runs
		 WHERE job_name = 'tick' AND started_at BETWEEN $slow_start AND $slow_end}),
	1, 'one coordinator ran all of those tick runs');
isnt(
	query($node, q{SELECT pid FROM foreman.runs WHERE job_name = 'sleepy'}),
	query($node, q{SELECT pid FROM foreman.runs WHERE job_name = 'tick' ORDER BY run_id DESC LIMIT 1}),
	'the slow and the fast job ran in different processes');

# ---------------------------------------------------------------------------
# 2. A failing job in the same tier does not delay the next one.

query($node, q{SELECT foreman.unschedule('sleepy')});
my $t_boom = query($node, q{SELECT quote_literal(clock_timestamp())});
query($node, q{SELECT foreman.schedule('boom', '1 second', 'SELECT 1/0', tier => 'fast')});

ok( wait_until($node, qq{
		SELECT count(*) >= 6 FROM foreman.runs
		 WHERE job_name = 'boom' AND started_at >= $t_boom AND status <> 'running'}, 20),
	'the failing job ran six times');
my $t_end = query($node, q{SELECT quote_literal(clock_timestamp())});

is( query($node, qq{
		SELECT string_agg(DISTINCT status || '/' || coalesce(sqlstate, '-'), ',')
		  FROM foreman.runs WHERE job_name = 'boom' AND status <> 'running'}),
	'failed/22012', 'every run of the failing job is recorded failed with SQLSTATE 22012');
like(
	query($node, q{SELECT message FROM foreman.runs WHERE job_name = 'boom' AND status = 'failed' LIMIT 1}),
	qr/division by zero/, 'the failure message is recorded');
is( query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'boom' AND finished_at IS NULL AND status <> 'running'}),
	0, 'failed runs have a finish time');
is( query($node, q{SELECT consecutive_failures >= 6 AND last_status = 'failed' FROM foreman.jobs WHERE job_name = 'boom'}),
	't', 'foreman.jobs counts the consecutive failures');

($n, $gap, $late, $bad) = cadence('tick', $t_boom, $t_end);
note("tick next to the failing job: $n runs, max gap ${gap}s, max lateness ${late}s");
cmp_ok($n,    '>=', 4,   'tick kept running next to the failing job');
cmp_ok($gap,  '<=', 1.5, 'tick runs still start at most 1.5 s apart');
cmp_ok($late, '<=', 0.5, 'no tick run started more than 0.5 s after it was due');
is($bad, 0, 'every tick run next to the failing job succeeded');

# Both jobs ran in the same coordinator: the failure is isolated per job, not
# by process.
is( query($node, qq{
		SELECT count(DISTINCT pid) FROM foreman.runs
		 WHERE job_name IN ('boom', 'tick') AND started_at >= $t_boom}),
	1, 'the failing and the healthy job ran in the same coordinator');

# ---------------------------------------------------------------------------
# 3. No command starts before its fire time.
query($node, q{SELECT foreman.unschedule('boom')});
query($node, q{SELECT foreman.unschedule('tick')});
query($node, q{CREATE TABLE started_in_job (job text, at timestamptz)});
query($node, q{GRANT INSERT ON started_in_job TO PUBLIC});
query($node, q{SELECT foreman.create_tier('wide', '1 second', concurrency => 4)});
query($node, q{
	SELECT foreman.schedule(t || '_' || k, '* * * * * *',
	                        format('INSERT INTO started_in_job VALUES (%L, clock_timestamp())', t || '_' || k),
	                        tier => t)
	  FROM unnest(ARRAY['fast', 'wide']) t, generate_series(1, 10) k});
ok( wait_until($node, q{
		SELECT count(*) = 20 FROM (
			SELECT job_name FROM foreman.runs WHERE (job_name LIKE 'fast\_%' OR job_name LIKE 'wide\_%')
			   AND status = 'succeeded' GROUP BY job_name HAVING count(*) >= 3) j}, 30),
	'twenty every-second jobs, in a sequential and a parallel tier, ran three times each');
query($node, q{SELECT foreman.alter_tier(t, enabled => false) FROM unnest(ARRAY['wide']) t});
query($node, q{SELECT foreman.alter_job(job_name, enabled => false) FROM foreman.jobs WHERE job_name LIKE 'fast\_%'});
my ($runs, $early, $first) = split /\|/, query($node, q{
	SELECT count(*), count(*) FILTER (WHERE s.at < r.scheduled_for),
	       round(extract(epoch FROM min(s.at - r.scheduled_for)) * 1000, 3)
	  FROM foreman.runs r
	  JOIN started_in_job s ON s.job = r.job_name AND s.at BETWEEN r.started_at AND r.finished_at
	 WHERE r.status = 'succeeded'});
note("$runs runs; the earliest command started $first ms after its fire time");
cmp_ok($runs, '>=', 60, 'every succeeded run is matched with its command\'s own clock');
is($early, 0, 'no command started before the fire time of its run');
is( query($node, q{
		SELECT count(*) FROM foreman.runs
		 WHERE (job_name LIKE 'fast\_%' OR job_name LIKE 'wide\_%') AND started_at < scheduled_for}),
	0, 'no run is recorded as started before its fire time');

$node->stop;
done_testing();
