# 035_stall.pl: stall supervision (issue 5, item 3), foreman.stall_timeout = 3s.
#
#  1. A job with its own timeout that runs longer than stall_timeout is not a
#     stall: it succeeds in the same leader, nothing is replaced.
#  2. SIGSTOP of the leader of tier fast, past stall_timeout: while the old
#     process is still frozen a replacement leads tier fast and runs its
#     jobs; the stall is in the server log (naming the pid) and recorded
#     where a DBA can query it (a *stall* column of foreman.tier_status, or a
#     run whose reason names the stall). Tier slow is not disturbed.
#  3. SIGCONT of the old process: it runs no job afterwards (it no longer
#     leads), it ends or stays a follower, the tier keeps exactly one leader,
#     which holds the advisory lock, and no fire time ran twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time usleep);

my $stopped;    # a pid we froze: never leave it frozen, or shutdown hangs
END { kill('CONT', $stopped) if $stopped; }

my $node = new_node('stall', extra_conf => "foreman.stall_timeout = '3s'\nrestart_after_crash = on\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
is(query($node, 'SHOW foreman.stall_timeout'), '3s', 'stall_timeout is 3 s');

sub ts { return query($node, q{SELECT quote_literal(clock_timestamp())}); }

# The server's own log lines since $offset: not the statements this test
# sends (log_statement = all), whose application_name contains "stall".
sub server_log
{
	my ($offset) = @_;
	return join '', grep { !/\bstatement: / && !/035_stall\.pl/ && !/^\s/ }
	  split /^/, slurp_file($node->logfile, $offset);
}

sub proc_state
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 'gone';
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /^\d+ \(.*\) (\S)/ ? $1 : '?';
}

query($node, q{
	SELECT foreman.schedule('beat', '1 second', 'SELECT 1', tier => 'fast');
	SELECT foreman.schedule('slow_beat', '1 second', 'SELECT 2', tier => 'slow');
});
ok( wait_until($node, q{SELECT count(DISTINCT job_name) = 2 FROM foreman.runs WHERE status = 'succeeded'}, 10),
	'beat and slow_beat run');

my $fast_id = query($node, q{SELECT tier_id FROM foreman.tier WHERE name = 'fast'});
my $lock_holder_sql = qq{
	SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_locks
	 WHERE locktype = 'advisory' AND classid = 1179798862 AND objid = $fast_id AND objsubid = 3 AND granted
	   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())};

# ---------------------------------------------------------------------------
# 1. A long job with its own timeout is not a stall.

my $leader = leader_pid($node, 'fast');
my $offset = -s $node->logfile;
query($node, q{SELECT foreman.schedule('long_ok', '1 hour', 'SELECT pg_sleep(6)', tier => 'fast', timeout => '20 seconds')});
ok( wait_until($node, q{SELECT status FROM foreman.runs WHERE job_name = 'long_ok'}, 15, expected => 'succeeded'),
	'a 6 s job with its own 20 s timeout succeeds although stall_timeout is 3 s');
is(query($node, q{SELECT pid FROM foreman.runs WHERE job_name = 'long_ok'}), $leader, 'in the leader');
is(leader_pid($node, 'fast'), $leader, 'which still leads: it was not replaced');
unlike(server_log($offset), qr/stall|no progress/i, 'no stall was logged');

# ---------------------------------------------------------------------------
# 2. SIGSTOP of the leader of tier fast.

$leader = leader_pid($node, 'fast');
my $slow_leader = leader_pid($node, 'slow');
like($leader, qr/^\d+$/, "tier fast is led by $leader");
$offset = -s $node->logfile;
my $t_stop = ts();
is(kill('STOP', $leader), 1, "SIGSTOP $leader");
$stopped = $leader;
my $t0 = time();

my ($ok, $took) = wait_until($node, qq{
	SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'fast' AND leader AND pid <> $leader}, 12);
ok($ok, 'a replacement leads tier fast');
note(sprintf('replacement leads %.2f s after SIGSTOP', time() - $t0));
is(proc_state($leader), 'T', 'while the old leader is still frozen');
my $new = query($node, q{SELECT coalesce(string_agg(pid::text, ','), '') FROM foreman.tier_status WHERE tier = 'fast' AND leader});
ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND pid <> $leader AND started_at > $t_stop}, 8),
	'the replacement runs the jobs of tier fast');
is(proc_state($leader), 'T', 'the old leader is still frozen meanwhile');

my $log = server_log($offset);
ok($log =~ /^.*\b$leader\b.*(stall|no progress).*$/mi || $log =~ /^.*(stall|no progress).*\b$leader\b.*$/mi,
	'the server log says the frozen coordinator stalled, naming its pid');
ok( query($node, qq{
		SELECT (SELECT count(*) FROM foreman.tier_status s, jsonb_each_text(to_jsonb(s)) kv
		         WHERE s.tier = 'fast' AND kv.key ILIKE '%stall%'
		           AND coalesce(kv.value, '') NOT IN ('', '0', 'false')) > 0
		    OR (SELECT count(*) FROM foreman.runs WHERE reason ILIKE '%stall%') > 0}) eq 't',
	'the stall is recorded where a DBA can query it (foreman.tier_status or foreman.runs)');
note('tier_status of fast: ' . query($node, q{SELECT to_jsonb(s)::text FROM foreman.tier_status s WHERE tier = 'fast'}));

is(leader_pid($node, 'slow'), $slow_leader, 'tier slow keeps its leader');
is( query($node, qq{SELECT count(*) >= 3 FROM foreman.runs WHERE job_name = 'slow_beat' AND status = 'succeeded'
                      AND started_at > $t_stop}),
	't', 'and ran its jobs throughout');

# ---------------------------------------------------------------------------
# 3. SIGCONT: the old process runs nothing more.

my $t_cont = ts();
is(kill('CONT', $leader), 1, "SIGCONT $leader");
undef $stopped;
ok( wait_until($node, qq{SELECT count(*) = 0 FROM foreman.tier_status WHERE pid = $leader AND leader}, 5),
	'the old process does not lead');
# Give it time to do whatever it would do.
usleep(3_000_000);
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE pid = $leader AND started_at > $t_stop}),
	0, 'the old process started no run after it was frozen');
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE pid = $leader AND status = 'running'}),
	0, 'and left none running');
ok( wait_until($node, qq{
		SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $leader
		    OR (SELECT count(*) FROM foreman.tier_status WHERE pid = $leader AND NOT leader) = 1}, 5),
	'it has ended (or waits as a follower)');
note('old process: ' . (proc_state($leader) eq 'gone' ? 'ended' : 'still there'));
is( query($node, q{SELECT count(*) FILTER (WHERE leader) FROM foreman.tier_status WHERE tier = 'fast'}),
	1, 'tier fast has exactly one leader');
my $now_leader = leader_pid($node, 'fast');
isnt($now_leader, $leader, 'and it is not the old process');
is(query($node, $lock_holder_sql), $now_leader, 'the leader holds the advisory lock alone');
my $t_after = ts();
ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND started_at > $t_after}, 6),
	'beat runs on');
is( query($node, qq{SELECT string_agg(DISTINCT pid::text, ',') FROM foreman.runs WHERE job_name = 'beat'
                      AND started_at > $t_after}),
	$now_leader, 'run by the leader only');
is( query($node, q{
		SELECT count(*) FROM (SELECT job_name, scheduled_for FROM foreman.runs WHERE status <> 'skipped'
		                       GROUP BY job_name, scheduled_for HAVING count(*) > 1) d}),
	0, 'no fire time ran twice');

$node->stop;
done_testing();
