# 046_pipelines.pl: job dependencies survive crashes - never lost, never doubled.
#
#  - kill -9 (a crash-restart of the server) between an upstream's end and
#    its downstream's start: the downstream runs once, in the upstream's
#    instance, after the restart (its request was committed with the
#    upstream's outcome).
#  - kill -9 during a downstream: the run is crashed (once), it is not run
#    again, and the job after it is skipped, naming the crash.
#  - a failure in the middle of a chain: the rest is skipped; a retry of an
#    upstream happens before its downstream decides, in the same instance.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('pipelines', extra_conf => "restart_after_crash = on\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
query($node, q{
	CREATE TABLE steps (step text, at timestamptz DEFAULT clock_timestamp());
	SELECT foreman.create_tier('later', '1 second');
	SELECT foreman.alter_tier('later', enabled => false);
	BEGIN;
	SELECT foreman.schedule('extract', '@once', $$INSERT INTO steps VALUES ('extract')$$, tier => 'fast',
	                        enabled => false);
	SELECT foreman.schedule('publish', '@after', $$INSERT INTO steps VALUES ('publish')$$, tier => 'later',
	                        after => ARRAY['extract']);
	COMMIT;
});

# kill -9 of a coordinator: the postmaster restarts every process of the
# server, as after any crash.
sub crash_restart
{
	my ($victim) = @_;
	$victim //= leader_pid($node, 'fast');
	my $before = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
	is(kill('KILL', $victim), 1, "kill -9 of coordinator $victim");
	ok(wait_until($node, qq{SELECT count(*) FILTER (WHERE leader) = 2 AND bool_and(pid <> $victim)
		FROM foreman.tier_status WHERE tier IN ('fast', 'slow')}, 60), 'after the crash-restart the tiers lead again');
	return;
}

# The upstream ends; its downstream's tier has no coordinator: the request waits.
query($node, q{SELECT foreman.run_now('extract')});
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.chain_request cr JOIN foreman.job j USING (job_id)
	WHERE j.job_name = 'publish'}, 20), 'extract ended; the run of publish is requested, not yet started');
my $chain = query($node, q{SELECT chain_id FROM foreman.chain_request});
crash_restart();
query($node, q{SELECT foreman.alter_tier('later', enabled => true)});
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'publish' AND status = 'succeeded'}, 30),
	'publish ran after the restart');
is(query($node, qq{SELECT count(*) || ' run, instance ' || min(chain_id) FROM foreman.job_run WHERE job_name = 'publish'}),
	"1 run, instance $chain", 'exactly once, in the instance extract started');
is(query($node, q{SELECT count(*) FROM foreman.chain_request}), 0, 'no request is left');

# A crash during a downstream.
query($node, q{
	BEGIN;
	SELECT foreman.schedule('fetch', '@once', $$INSERT INTO steps VALUES ('fetch')$$, tier => 'fast', enabled => false);
	SELECT foreman.schedule('crunch', '@after', $$INSERT INTO steps VALUES ('crunch'); SELECT pg_sleep(60)$$,
	                        tier => 'slow', after => ARRAY['fetch']);
	SELECT foreman.schedule('report', '@after', $$INSERT INTO steps VALUES ('report')$$, tier => 'fast',
	                        after => ARRAY['crunch']);
	COMMIT;
	SELECT foreman.run_now('fetch');
});
ok(wait_until($node, q{SELECT bool_or(current_job = 'crunch') FROM foreman.tier_status WHERE tier = 'slow'}, 30),
	'crunch runs');
crash_restart(leader_pid($node, 'slow'));
ok(wait_until($node, q{SELECT status FROM foreman.job_run WHERE job_name = 'crunch'}, 30, expected => 'crashed'),
	'after the restart crunch is recorded crashed');
ok(wait_until($node, q{SELECT status || ': ' || message FROM foreman.job_run WHERE job_name = 'report'}, 30,
	expected => 'skipped: upstream job "crunch" crashed; the job runs after the success of its upstreams'),
	'report is skipped, naming the crash');
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'crunch'}), 1, 'crunch did not run again');
is(query($node, q{SELECT count(DISTINCT chain_id) FROM foreman.job_run WHERE job_name IN ('fetch', 'crunch', 'report')}),
	1, 'one instance');

# A retry of an upstream comes before its downstream decides.
query($node, q{
	CREATE SEQUENCE attempts;
	BEGIN;
	SELECT foreman.schedule('flaky', '@once',
	    $$SELECT 1 / (nextval('attempts') - 1)$$,
	    tier => 'fast', retries => 2, retry_backoff => '1 second');
	SELECT foreman.schedule('after_flaky', '@after', $$INSERT INTO steps VALUES ('after_flaky')$$, tier => 'fast',
	                        after => ARRAY['flaky']);
	COMMIT;
});
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'after_flaky' AND status = 'succeeded'},
	30), 'the downstream ran after the retry succeeded');
is(query($node, q{SELECT string_agg(status || '/' || attempt, ', ' ORDER BY run_id) FROM foreman.job_run
	WHERE job_name = 'flaky'}), 'failed/1, succeeded/2', 'the first attempt failed, the retry succeeded');
is(query($node, q{SELECT count(DISTINCT chain_id) FROM foreman.job_run WHERE job_name IN ('flaky', 'after_flaky')}),
	1, 'the retry and the downstream are in the first attempt\'s instance');

$node->stop;
done_testing();
