# 051_multitenant_tiers.pl: no role stops or delays another role's tier.
#
#  - Leadership: a role with no grant holding pg_advisory_lock(1179798862, 1)
#    stops nothing (the leadership lock has an objsubid no SQL function
#    takes); a job that releases every advisory lock does not lose its
#    leader the tier; a process that holds the real lock (only a C extension
#    can) is detected and reported, and the tier is led around it, fenced.
#  - DROP/RENAME DATABASE and CREATE DATABASE ... TEMPLATE by a role that may
#    not do them touch no coordinator; a permitted DROP cancelled while it
#    waits for them resumes the database.
#  - A job that catches its cancel is terminated cancel_grace after its
#    timeout (timed_out) or a stop (cancelled); a fast shutdown finishes.
#  - foreman.min_user_interval bounds runs: retries with a microsecond
#    back-off and a job that run_nows itself.
#  - tier_status and _coordinators() hide another role's running job; the
#    progress a job reports is cut at a character boundary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ForemanTest;

my $node = new_node('mt_tiers', extra_conf => "foreman.cancel_grace = '500ms'\n");
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
my $fast_id = query($node, q{SELECT tier_id FROM foreman.tier WHERE name = 'fast'});
query($node, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE ROLE bob LOGIN IN ROLE foreman_user;
	CREATE ROLE mallory LOGIN CREATEDB;
	CREATE TABLE ticks (who text, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT, SELECT ON ticks TO alice, bob;
	CREATE FUNCTION take_leadership_lock(tier_id int) RETURNS bool
	    LANGUAGE C AS 'pg_foreman', 'foreman_test_take_leadership_lock';
	CREATE FUNCTION start_coordinator(tier_id int, tier_name text) RETURNS int
	    LANGUAGE C AS 'pg_foreman', 'foreman_test_start_coordinator';
	SET ROLE bob;
	SELECT foreman.schedule('bob_beat', '1 second', $$INSERT INTO ticks VALUES ('bob')$$, tier => 'fast');
});

# Waits (bounded) for bob's 1-second job to tick $n more times.
sub bob_ticks_on
{
	my ($n, $what, $timeout) = @_;
	my $before = query($node, q{SELECT count(*) FROM ticks WHERE who = 'bob'});
	ok(wait_until($node, "SELECT count(*) >= $before + $n FROM ticks WHERE who = 'bob'", $timeout // 20),
		"bob's job runs on: $what");
}

bob_ticks_on(2, 'to begin with');

# ---------------------------------------------------------------------------
# Leadership.

my $leader = leader_pid($node, 'fast');
my $mallory = session($node, user => 'mallory');
$mallory->query("SELECT pg_advisory_lock(1179798862, $fast_id);", 10);
bob_ticks_on(3, 'while a role with no grant holds pg_advisory_lock(1179798862, tier)');
is(leader_pid($node, 'fast'), $leader, 'and the leader is the same process');
$mallory->query('SELECT pg_advisory_unlock_all();', 10);

my $follower = query($node, "SELECT start_coordinator($fast_id, 'fast')");
ok(wait_until($node, qq{SELECT bool_or(pid = $follower AND NOT leader) FROM foreman.tier_status WHERE tier = 'fast'}),
	'a second coordinator waits as a follower');
query($node, q{SELECT foreman.schedule('unlocker', '1 second', 'SELECT pg_advisory_unlock_all()', tier => 'fast')});
ok(wait_until($node, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'unlocker' AND status = 'succeeded'}, 20),
	'a job released every advisory lock of its session three times');
is(leader_pid($node, 'fast'), $leader, 'the leader kept the tier');
like(PostgreSQL::Test::Utils::slurp_file($node->logfile), qr/job "unlocker" released the leadership lock of tier $fast_id; it was taken back/,
	'and the log names the job');
query($node, q{SELECT foreman.unschedule('unlocker')});

# A foreign holder of the real lock: it waits for the lock, then the leader
# stops; neither coordinator can take it.
my $holder = session($node);
my $holder_pid = $holder->query('SELECT pg_backend_pid();', 10);
$holder->send("SELECT take_leadership_lock($fast_id);");
ok(wait_until($node, qq{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $holder_pid}),
	'a session waits for the leadership lock');
query($node, "SELECT pg_terminate_backend($leader)");
$holder->result(30);
ok(wait_until($node, qq{SELECT bool_or(leader AND state LIKE '%leading fenced: the leadership lock is held by pid $holder_pid%')
	FROM foreman.tier_status WHERE tier = 'fast'}, 20),
	'a coordinator leads fenced, and tier_status names the process that holds the lock');
bob_ticks_on(3, 'while a foreign process holds the leadership lock');
like(PostgreSQL::Test::Utils::slurp_file($node->logfile), qr/leads fenced: the leadership lock .* is held by pid $holder_pid/,
	'the log says so too');
$holder->close;
ok(wait_until($node, q{SELECT count(*) = 1 FROM foreman.tier_status WHERE tier = 'fast' AND leader
	AND state NOT LIKE '%fenced%'}, 20), 'once it lets go, the fenced leader takes the lock');
$leader = leader_pid($node, 'fast');
ok(wait_until($node, qq{SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 1179798862
	AND objid = $fast_id AND objsubid = 3 AND granted AND pid = $leader}), 'and holds it');

# ---------------------------------------------------------------------------
# Database DDL by a role that may not do it.

query($node, q{SET ROLE bob; SELECT foreman.schedule('bob_long', '@once', 'SELECT pg_sleep(3)', tier => 'slow')});
ok(wait_until($node, q{SELECT bool_or(current_job = 'bob_long') FROM foreman.tier_status WHERE tier = 'slow'}, 20),
	'bob\'s long job runs in tier slow');
my $coordinators = query($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM foreman.tier_status});
for my $ddl ('DROP DATABASE postgres', 'ALTER DATABASE postgres RENAME TO stolen',
	'CREATE DATABASE copied TEMPLATE postgres')
{
	my ($out, $err) = $mallory->query("$ddl;", 30);
	like($err, qr/must be owner|permission denied/, "mallory: $ddl is refused");
}
is(query($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM foreman.tier_status}), $coordinators,
	'no coordinator was stopped for it');
ok(wait_until($node, q{SELECT status = 'succeeded' FROM foreman.job_run WHERE job_name = 'bob_long'}, 20),
	'bob\'s long job ran to its end');

# A permitted DROP DATABASE cancelled while it waits for the coordinators
# (its statement_timeout) resumes the database.
query($node, q{CREATE DATABASE victim});
query($node, q{CREATE EXTENSION pg_foreman;
	SELECT foreman.schedule('stubborn', '@once', $q$DO $d$ BEGIN LOOP BEGIN PERFORM pg_sleep(1);
	    EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $d$$q$, tier => 'fast');}, 'victim');
ok(wait_until($node, q{SELECT bool_or(current_job = 'stubborn') FROM foreman.tier_status}, 20, db => 'victim'),
	'in database victim, a job that catches cancels runs');
my ($ret, $out, $err) = $node->psql('postgres', q{SET statement_timeout = '200ms'; DROP DATABASE victim;});
like($err, qr/canceling statement due to statement timeout/, 'DROP DATABASE victim was cancelled while it waited');
ok(wait_for_leaders($node, 'victim', 2, 20), 'victim\'s tiers are led again');
query($node, q{DROP DATABASE victim});

# ---------------------------------------------------------------------------
# Jobs that catch their cancel.

query($node, q{SET ROLE alice;
	SELECT foreman.schedule('catcher', '@once', $q$DO $d$ BEGIN LOOP BEGIN PERFORM pg_sleep(1);
	    EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $d$$q$, tier => 'fast', timeout => '1 second');});
my ($done, $took) = wait_until($node, q{SELECT status = 'timed_out' FROM foreman.job_run WHERE job_name = 'catcher'}, 20);
ok($done, "a job that catches its timeout's cancel is recorded timed_out (after ${took}s)");
like(query($node, q{SELECT message FROM foreman.job_run WHERE job_name = 'catcher'}), qr/^terminated: /,
	'its message says it was terminated');
bob_ticks_on(2, 'after the catcher\'s process was terminated');

query($node, q{SET ROLE alice;
	SELECT foreman.schedule('catcher2', '@once', $q$DO $d$ BEGIN LOOP BEGIN PERFORM pg_sleep(1);
	    EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $d$$q$, tier => 'slow');});
ok(wait_until($node, q{SELECT bool_or(current_job = 'catcher2') FROM foreman.tier_status WHERE tier = 'slow'}, 20),
	'another one runs in tier slow, without a timeout');
my $slow = leader_pid($node, 'slow');
query($node, "SELECT pg_terminate_backend($slow)");
ok(wait_until($node, qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $slow}, 10),
	'pg_terminate_backend of its coordinator ends it within cancel_grace');
is(query($node, q{SELECT status FROM foreman.job_run WHERE job_name = 'catcher2'}), 'cancelled',
	'and the run is recorded cancelled');

# ---------------------------------------------------------------------------
# foreman.min_user_interval bounds runs, not only schedules.

query($node, q{SET ROLE alice;
	SELECT foreman.schedule('retrier', '1 hour', 'SELECT 1/0', tier => 'fast', retries => 1000,
	                        retry_backoff => '1 microsecond', retry_backoff_max => '1 microsecond');
	SELECT foreman.schedule('selfish', '1 hour', $$SELECT foreman.run_now('selfish')$$, tier => 'fast',
	                        overlap => 'queue');});
for my $job ('retrier', 'selfish')
{
	ok(wait_until($node, qq{SELECT count(*) >= 4 FROM foreman.job_run WHERE job_name = '$job'}, 30),
		"$job ran four times");
	my $gap = query($node, qq{SELECT extract(epoch FROM min(gap)) FROM (
		SELECT started_at - lag(started_at) OVER (ORDER BY run_id) AS gap
		  FROM foreman.job_run WHERE job_name = '$job') g});
	cmp_ok($gap, '>=', 0.99, "no two runs of $job started less than foreman.min_user_interval (1 s) apart: ${gap}s");
}
query($node, q{SELECT foreman.unschedule('retrier'); SELECT foreman.unschedule('selfish');});

# ---------------------------------------------------------------------------
# What tier_status shows of another role's job, and progress text.

query($node, q{SET ROLE alice;
	SELECT foreman.schedule('reporter', '@once', $$SELECT foreman._report_progress(repeat('é', 200)); SELECT pg_sleep(3)$$,
	                        tier => 'fast');});
ok(wait_until($node, q{SET ROLE alice; SELECT bool_or(current_job = 'reporter' AND progress IS NOT NULL)
	FROM foreman.tier_status}, 20), 'alice sees her running job and its progress');
is(query($node, q{SET ROLE alice; SELECT convert_from(textsend(progress), 'UTF8') = repeat('é', 63)
	FROM foreman.tier_status WHERE current_job = 'reporter'}), 't',
	'the progress was cut at a character boundary (valid UTF-8)');
is(query($node, q{SET ROLE bob; SELECT current_job || '|' || coalesce(progress, '-')
	FROM foreman.tier_status WHERE tier = 'fast' AND leader}), q{(another role's job)|-},
	'bob sees neither its name nor its progress');
is(query($node, q{SET ROLE bob; SELECT count(*) FROM foreman._coordinators()
	WHERE current_job_id IS NOT NULL OR progress IS NOT NULL OR current_job_owner IS NOT NULL OR current_job = 'reporter'}),
	0, 'nor does _coordinators() tell him');

# ---------------------------------------------------------------------------
# A fast shutdown finishes while a job catches every cancel.

query($node, q{SET ROLE alice;
	SELECT foreman.schedule('catcher3', '@once', $q$DO $d$ BEGIN LOOP BEGIN PERFORM pg_sleep(1);
	    EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $d$$q$, tier => 'slow');});
ok(wait_until($node, q{SELECT bool_or(current_job = 'catcher3') FROM foreman.tier_status WHERE tier = 'slow'}, 20),
	'a job that catches every cancel runs');
my $stop_started = time();
local $ENV{PGCTLTIMEOUT} = 30;
$node->stop('fast');
cmp_ok(time() - $stop_started, '<', 30, 'pg_ctl stop -m fast finishes');
$node->start;
is(query($node, q{SELECT status FROM foreman.job_run WHERE job_name = 'catcher3'}), 'cancelled',
	'and the run was recorded cancelled');

$mallory->close;
$node->stop;
done_testing();
