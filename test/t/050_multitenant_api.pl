# 050_multitenant_api.pl: roles that share a server, through the API.
#
#  - Every API function at once from several sessions (pgbench, random job
#    names, the statement that removes a job and then changes it): no
#    backend crashes, the postmaster never restarts, the catalog stays whole.
#  - foreman.max_jobs_per_role holds when schedule() calls race in open
#    transactions: they are serialized per owner.
#  - An owner's open transaction on its job's row stops that job only: the
#    tier's other jobs run on, a run that ends meanwhile is recorded at once
#    and its job's summary follows when the owner commits.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ForemanTest;

my $node = new_node('mt_api', extra_conf => "foreman.min_user_interval = '100ms'\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
my $postmaster = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

query($node, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE ROLE bob LOGIN IN ROLE foreman_user;
	CREATE ROLE carol LOGIN IN ROLE foreman_user;
	CREATE ROLE boss LOGIN IN ROLE foreman_admin;
	CREATE TABLE sessions (id bigserial PRIMARY KEY, status text, created_at timestamptz DEFAULT now());
	GRANT SELECT, UPDATE, DELETE ON sessions TO alice, boss;
	CREATE TABLE ticks (who text, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON ticks TO alice, bob;

	-- One random API call, its error (if any) caught: pgbench drives it.
	CREATE FUNCTION api_fuzz(n int, f int) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		name text := 'j' || n;
	BEGIN
		CASE f
		WHEN 0 THEN PERFORM foreman.unschedule(name, if_exists => true), foreman.alter_job(name, retries => 1);
		WHEN 1 THEN PERFORM foreman.schedule(name, (n % 3 + 1) || ' seconds', 'SELECT ' || n, tier => 'fast');
		WHEN 2 THEN PERFORM foreman.alter_job(name, retries => n % 3, timeout => '5 seconds', enabled => n % 2 = 0);
		WHEN 3 THEN PERFORM foreman.unschedule(name);
		WHEN 4 THEN PERFORM foreman.run_now(name);
		WHEN 5 THEN PERFORM * FROM foreman.wait_for_run(name, timeout => '0');
		WHEN 6 THEN PERFORM * FROM foreman.next_runs(name, 3);
		WHEN 7 THEN PERFORM foreman.schedule_purge(name, 'sessions', 'created_at', '1 day', schedule => '10 seconds');
		WHEN 8 THEN PERFORM foreman.expire_stale('sessions', '1 hour', batch_size => 10);
		WHEN 9 THEN PERFORM count(*) FROM foreman.tier_status, foreman.jobs, foreman.runs;
		WHEN 10 THEN PERFORM foreman.run_now(name), foreman.unschedule(name), foreman.schedule(name, '1 hour', 'SELECT 1');
		ELSE PERFORM foreman.alter_tier('fast', tick => (5 + n % 5) || ' seconds');
		END CASE;
	EXCEPTION WHEN OTHERS OR query_canceled THEN
		NULL;
	END
	$$;
	GRANT EXECUTE ON FUNCTION api_fuzz TO alice, boss;
});

# ---------------------------------------------------------------------------
# Every function at once.

my $script = $node->basedir . '/fuzz.sql';
PostgreSQL::Test::Utils::append_to_file($script, "\\set n random(1, 12)\n\\set f random(0, 10)\nSELECT api_fuzz(:n, :f);\n");
my $admin_script = $node->basedir . '/fuzz_admin.sql';
PostgreSQL::Test::Utils::append_to_file($admin_script, "\\set n random(1, 12)\n\\set f random(0, 11)\nSELECT api_fuzz(:n, :f);\n");
my @pgbench = ($node->installed_command('pgbench'), '-n', '-T', '15', '-h', $node->host, '-p', $node->port);
my ($out_a, $err_a, $out_b, $err_b) = ('', '', '', '');
local $ENV{PGOPTIONS} = '-c client_min_messages=warning';
my $h_alice = IPC::Run::start([ @pgbench, '-c', '6', '-j', '1', '-U', 'alice', '-f', $script, 'postgres' ],
	'>', \$out_a, '2>', \$err_a, IPC::Run::timeout(90));
my $h_boss = IPC::Run::start([ @pgbench, '-c', '2', '-j', '1', '-U', 'boss', '-f', $admin_script, 'postgres' ],
	'>', \$out_b, '2>', \$err_b, IPC::Run::timeout(90));
ok($h_alice->finish, 'eight sessions called every API function for 15 s (alice)') or diag($err_a);
ok($h_boss->finish, '... and as foreman_admin, tiers included') or diag($err_b);
like($out_a, qr/number of transactions actually processed: [1-9]/, 'alice\'s sessions got through');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $postmaster,
	'the server never restarted');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated|PANIC/, 'no backend crashed');
is(query($node, q{SELECT count(*) FROM foreman.job j LEFT JOIN foreman.tier t USING (tier_id) WHERE t.tier_id IS NULL}),
	0, 'every job has its tier');
is(query($node, q{SELECT count(*) FROM foreman.job WHERE kind <> 'sql'
	AND job_id NOT IN (SELECT job_id FROM foreman.maintenance) AND job_id > 0}),
	0, 'every maintenance job has its arguments');
ok(wait_for_leaders($node, 'postgres', 2), 'and the tiers are led');

# Clean slate for what follows.
query($node, q{SELECT foreman.alter_tier('fast', tick => '10 seconds'); DELETE FROM foreman.job WHERE job_id > 0});

# ---------------------------------------------------------------------------
# max_jobs_per_role under concurrent schedule() calls in open transactions.

query($node, q{ALTER SYSTEM SET foreman.max_jobs_per_role = 2; SELECT pg_reload_conf();});
my @sessions = map { session($node, user => 'carol') } 1 .. 6;
$sessions[$_]->send("BEGIN; SELECT foreman.schedule('c$_', '1 hour', 'SELECT 1');") for 0 .. 5;
# Whichever gets the owner's lock first decides; the others wait for its
# commit, then see its job. Commit each as it finishes (bounded).
my (@results, %done);
my $deadline = time() + 60;
while (keys %done < 6 && time() < $deadline)
{
	for my $i (grep { !$done{$_} } 0 .. 5)
	{
		next if $sessions[$i]->busy;
		my ($out, $err) = $sessions[$i]->result(10);
		push @results, $err =~ /already owns/ ? 'refused' : 'scheduled';
		$sessions[$i]->query('COMMIT;', 10);
		$done{$i} = 1;
	}
	usleep(50_000);
}
$_->close for @sessions;
is(join(',', sort @results), 'refused,refused,refused,refused,scheduled,scheduled',
	'six racing schedule() calls of one role: two scheduled, four refused');
is(query($node, q{SELECT count(*) FROM foreman.job WHERE owner = 'carol'::regrole}), 2,
	'carol owns exactly foreman.max_jobs_per_role jobs');
query($node, q{ALTER SYSTEM RESET foreman.max_jobs_per_role; SELECT pg_reload_conf();});

# ---------------------------------------------------------------------------
# An owner's open transaction holds its own job, never the tier.

query($node, q{
	SET ROLE bob;
	SELECT foreman.schedule('bob_beat', '1 second', $$INSERT INTO ticks VALUES ('bob')$$, tier => 'fast');
	SET ROLE alice;
	SELECT foreman.schedule('alice_slow', '1 second', $$SELECT pg_sleep(1.5); INSERT INTO ticks VALUES ('alice')$$,
	                        tier => 'fast', overlap => 'skip');
});
ok(wait_until($node, q{SELECT count(*) >= 2 FROM ticks WHERE who = 'alice'}, 20), 'alice\'s job runs');

# Alice changes her job in a transaction she keeps open while it runs.
ok(wait_until($node, q{SELECT current_job = 'alice_slow' FROM foreman.tier_status WHERE tier = 'fast' AND leader}, 20),
	'alice\'s job is running');
my $alice = session($node, user => 'alice');
$alice->query(q{BEGIN; SELECT foreman.alter_job('alice_slow', retries => 0);}, 30);
my $bob_before = query($node, q{SELECT count(*) FROM ticks WHERE who = 'bob'});
ok(wait_until($node, qq{SELECT count(*) >= $bob_before + 4 FROM ticks WHERE who = 'bob'}, 20),
	'bob\'s job runs on while alice holds her job\'s row');
is(query($node, q{SELECT count(*) FROM foreman.tier_status WHERE state = 'blocked'}), 0, 'no tier is blocked');
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.job_run
	WHERE job_name = 'alice_slow' AND summary_pending AND status = 'succeeded'}, 10),
	'the run that ended meanwhile is recorded, its job summary pending');
my $pending_run = query($node, q{SELECT run_id FROM foreman.job_run WHERE job_name = 'alice_slow' AND summary_pending});
$alice->query('COMMIT;', 30);
$alice->close;
ok(wait_until($node, qq{SELECT NOT summary_pending FROM foreman.job_run WHERE run_id = $pending_run}, 10),
	'once alice commits, the summary is applied');
ok(wait_until($node, qq{SELECT last_run_id >= $pending_run FROM foreman.job WHERE job_name = 'alice_slow'}, 10),
	'and her job\'s last run is that one (or a later one)');
my $alice_before = query($node, q{SELECT count(*) FROM ticks WHERE who = 'alice'});
ok(wait_until($node, qq{SELECT count(*) > $alice_before FROM ticks WHERE who = 'alice'}, 20),
	'and her job runs again');

$node->stop;
done_testing();
