# Bounded fan-out: a parallel tier never has more than `concurrency`
# executors, the cluster never more than foreman.max_executors; every run
# succeeds and the tier's total time is close to the ideal; kill -9 of an
# executor leaves its run 'crashed' and the tier at full concurrency.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use ForemanTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = new_node('fanout', extra_conf => "foreman.max_executors = 6\nrestart_after_crash = on\n");

query($node, q{
	SELECT foreman.create_tier('wide', '10 seconds', concurrency => 4);
	SELECT foreman.create_tier('busy', '10 seconds', concurrency => 2);
});
ok(wait_until($node, q{SELECT count(*) FILTER (WHERE leader) = 4 FROM foreman.tier_status}, 10),
	'the two parallel tiers have their coordinators');

# The other parallel tier keeps two executors busy the whole time.
query($node, q{
	SELECT foreman.schedule('busy_' || i, '1 second', 'SELECT pg_sleep(0.9)', tier => 'busy')
	  FROM generate_series(1, 2) i;
});
ok(wait_until($node, q{SELECT count(*) = 2 FROM foreman.runs WHERE tier = 'busy' AND status = 'succeeded'}, 15),
	'the busy tier runs');

# 200 due jobs at once (the first run of an interval job is at scheduling).
my $t0 = time();
query($node, q{
	SELECT foreman.schedule('w' || i, '1 hour', 'SELECT pg_sleep(0.2)', tier => 'wide')
	  FROM generate_series(1, 200) i;
});

# Sample pg_stat_activity every 50 ms until all 200 have finished (bounded).
my ($max_wide, $max_all, $done) = (0, 0, 0);
my $deadline = time() + 60;
while (time() < $deadline)
{
	my ($wide, $all, $finished) = split /\|/, query($node, q{
		SELECT count(*) FILTER (WHERE application_name LIKE '%/wide'),
		       count(*),
		       (SELECT count(*) FROM foreman.job_run r JOIN foreman.job j USING (job_id)
		         WHERE j.job_name LIKE 'w%' AND r.status <> 'running')
		  FROM pg_stat_activity WHERE backend_type = 'pg_foreman executor'});
	$max_wide = $wide if $wide > $max_wide;
	$max_all  = $all  if $all > $max_all;
	$done     = $finished;
	last if $done >= 200;
	usleep(50_000);
}
my $elapsed = time() - $t0;
note(sprintf('200 runs in %.2f s; at most %d executors in the tier, %d in all', $elapsed, $max_wide, $max_all));

is($done, 200, 'all 200 runs finished');
cmp_ok($max_wide, '<=', 4, 'never more than 4 executors for the tier (its concurrency)');
cmp_ok($max_all, '<=', 6, 'never more than 6 executors in all (foreman.max_executors)');
cmp_ok($max_wide, '>=', 3, 'the tier did run several at once');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name LIKE 'w%' AND status = 'succeeded'}),
	'200', 'all 200 runs succeeded');
# Ideal: 200 x 0.2 s over 4 executors = 10 s; within 25 %.
cmp_ok($elapsed, '<=', 12.5, 'total time within 25% of the ideal 10 s');
is(query($node, q{SELECT count(DISTINCT pid) > 1 FROM foreman.runs WHERE job_name LIKE 'w%'}), 't',
	'each run records the executor that ran it');

# A job that runs foreman.run_now of another job of the same tier returns at once.
query($node, q{
	SELECT foreman.schedule('target', '1 hour', 'SELECT 1', tier => 'wide');
	SELECT foreman.schedule('caller', '1 hour', $$SELECT foreman.run_now('target')$$, tier => 'wide', enabled => false);
});
my $t1 = query($node, 'SELECT clock_timestamp()');
query($node, q{SELECT foreman.alter_job('caller', enabled => true); SELECT foreman.run_now('caller')});
is(query($node, qq{SELECT status FROM foreman.wait_for_run('caller', '$t1', '20 seconds')}), 'succeeded',
	'a job calling run_now of a job in its own tier finishes');
is(query($node, qq{SELECT status FROM foreman.wait_for_run('target', '$t1', '20 seconds')}), 'succeeded',
	'and the other job then runs');

# kill -9 of an executor mid-run: the server restarts, the run is 'crashed',
# and the tier runs at full concurrency again.
query($node, q{SELECT foreman.schedule('victim', '1 hour', 'SELECT pg_sleep(60)', tier => 'wide')});
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'pg_foreman executor' AND query LIKE '%pg_sleep(60)%'}, 15), 'the victim runs in an executor');
my $victim = query($node, q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'pg_foreman executor' AND query LIKE '%pg_sleep(60)%'});
# The executor records that it took the run asynchronously (as a finish
# is): a durable commit after it, by anyone, flushes that record. Without
# one, a kill within wal_writer_delay of the start reports the run 'not
# started' (README: failure modes).
ok(wait_until($node, qq{SELECT pid = $victim FROM foreman.runs WHERE job_name = 'victim'}, 15),
	'the executor took the run');
query($node, q{CREATE TABLE flush_marker ()});
kill 'KILL', $victim;
ok(wait_until($node, q{SELECT status = 'crashed' FROM foreman.runs WHERE job_name = 'victim' ORDER BY run_id DESC LIMIT 1}, 30),
	"after the crash-restart the victim's run is 'crashed'");

query($node, q{
	SELECT foreman.schedule('again' || i, '1 hour', 'SELECT pg_sleep(1)', tier => 'wide') FROM generate_series(1, 8) i;
});
my $max_after = 0;
$deadline = time() + 30;
while (time() < $deadline)
{
	my ($wide, $finished) = split /\|/, query($node, q{
		SELECT count(*) FILTER (WHERE application_name LIKE '%/wide'),
		       (SELECT count(*) FROM foreman.runs WHERE job_name LIKE 'again%' AND status <> 'running')
		  FROM pg_stat_activity WHERE backend_type = 'pg_foreman executor'});
	$max_after = $wide if $wide > $max_after;
	last if $finished >= 8;
	usleep(50_000);
}
is($max_after, 4, 'after the crash the tier runs 4 at once again (no slot leaked)');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name LIKE 'again%' AND status = 'succeeded'}), '8',
	'and all of those runs succeed');

$node->stop;
done_testing();
