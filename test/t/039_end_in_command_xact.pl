# A plain success of a job whose command is one SELECT, INSERT, UPDATE,
# DELETE or MERGE (its plan kept or not) is recorded in the command's own
# transaction, just before it commits (src/bgw/job_runner.cpp,
# record_in_command_xact): the run's end commits with the command's effects,
# or not at all.
#
# One sequential tier ('inx', ticking every second) runs jobs of alice, a
# foreman_user, every second:
#  1. 'ins' inserts a row into public.effects: from its first run on (planned
#     at that run, kept from the second), each succeeded run's row was
#     committed by the commit of the row its command inserted
#     (track_commit_timestamp); the job's counters match its runs.
#  2. 'defer' inserts a row that a deferred constraint trigger refuses at
#     commit: every run is recorded failed with the trigger's SQLSTATE (the
#     success written before the commit was rolled back with it), and
#     nothing is inserted.
#  3. 'self' changes its own job's row with alter_job in its command: the run
#     is recorded in that transaction, and the change stays.
#  4. 'lock' takes a session-level advisory lock: the session is still reset
#     after each run, so the coordinator does not keep holding it.
#  5. default_transaction_isolation 'repeatable read' (ALTER SYSTEM,
#     reload): the runs are recorded after the commit instead (a transaction
#     of another kind than the bookkeeping's), and still succeed; back to
#     READ COMMITTED, in the command's transaction again.
#  6. A synchronous standby named (synchronous_standby_names, with local
#     commits): recorded after the commit too.
#  7. A parallel tier's executors record their runs the same way.
#  8. An immediate stop right after a run: its end was flushed with its
#     effects, so it is not 'crashed' after the restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

# Commit timestamps tell which transaction committed a row version: the
# run's row is written in a subtransaction (xmin is then its own xid), which
# commits with its parent, at the same instant.
# The WAL writer is slow here (10 s): an asynchronous commit reaches the disk
# with the next durable one (part 7).
my $node = new_node('end_in_xact', extra_conf => "track_commit_timestamp = on\nwal_writer_delay = 10s\n");
ok(wait_for_leaders($node, 'postgres', 2), 'the built-in tiers have leaders');

query($node, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE TABLE public.effects (v int, at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE public.refused (v int);
	CREATE FUNCTION public.refuse_negative() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.v < 0 THEN
			RAISE EXCEPTION 'negative value refused at commit' USING ERRCODE = '23514';
		END IF;
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER refuse_negative AFTER INSERT ON public.refused
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse_negative();
	GRANT INSERT ON public.effects, public.refused TO alice;
	SELECT foreman.create_tier('inx', '1 second');
});
ok(wait_for_leaders($node, 'postgres', 3), 'the new tier has a leader');
my $pid = leader_pid($node, 'inx');
like($pid, qr/^\d+$/, 'the tier has a leader process');

query($node, q{
	SET ROLE alice;
	SELECT foreman.schedule('ins', '1 second', 'INSERT INTO public.effects (v) VALUES (1)', tier => 'inx');
	SELECT foreman.schedule('defer', '1 second', 'INSERT INTO public.refused (v) VALUES (-1)', tier => 'inx');
	SELECT foreman.schedule('self', '1 second', $$SELECT foreman.alter_job('self', timeout => '7 minutes')$$,
	                        tier => 'inx');
	SELECT foreman.schedule('lock', '1 second', 'SELECT pg_advisory_lock(4242)', tier => 'inx');
	RESET ROLE;
});

sub now_literal { return query($node, q{SELECT clock_timestamp()}) }

# Runs of 'ins' (or $job) started after $since, succeeded: how many were
# committed with a row the command inserted (the same commit), and how many
# were not.
sub ins_runs
{
	my ($since, $job) = @_;
	$job //= 'ins';
	my $same = q{EXISTS (SELECT FROM public.effects e
	                     WHERE pg_xact_commit_timestamp(e.xmin) = pg_xact_commit_timestamp(r.xmin))};
	return query($node, qq{
		SELECT count(*) FILTER (WHERE $same) || ':' || count(*) FILTER (WHERE NOT $same)
		  FROM foreman.job_run r
		 WHERE r.job_name = '$job' AND r.status = 'succeeded' AND r.started_at > '$since'});
}

# ins_runs of at least three runs of 'ins' that start once the coordinator
# has a setting just reloaded (its next cycles, within a tick or two).
sub ins_runs_from_now
{
	my ($what) = @_;
	sleep_until_cycles($node, 'inx', 2);
	my $since = now_literal();
	ok(wait_until($node, qq{SELECT count(*) >= 3 FROM foreman.job_run
	                        WHERE job_name = 'ins' AND status = 'succeeded' AND started_at > '$since'}, 30),
		$what);
	return split /:/, ins_runs($since);
}

# 1. Recorded with the command's effects.
ok(wait_until($node, q{SELECT count(*) >= 5 FROM foreman.job_run WHERE job_name = 'ins' AND status = 'succeeded'}, 30),
	"'ins' runs");
my ($with, $without) = split /:/, ins_runs('-infinity');
ok($with >= 5, "from its first run on, 'ins' runs are recorded in the command's transaction")
  or diag("$with committed with the effects, $without not");
is($without, '0', 'every one of them');
is(query($node, q{SELECT j.runs_succeeded = (SELECT count(*) FROM foreman.job_run r
                                              WHERE r.job_id = j.job_id AND r.status = 'succeeded')
                    AND j.last_status = 'succeeded'
                    FROM foreman.job j WHERE j.job_name = 'ins'}),
	't', "the job's counters count those runs");
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'ins' AND status = 'succeeded'})
	<= query($node, q{SELECT count(*) FROM public.effects}) ? 'yes' : 'no',
	'yes', 'every succeeded run inserted its row');

# 2. A commit that fails after the record was written.
ok(wait_until($node, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'defer' AND status = 'failed'}, 30),
	"'defer' runs fail");
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'defer' AND status = 'succeeded'}), '0',
	'no run of it is recorded succeeded (the record before the commit was rolled back with it)');
is(query($node, q{SELECT string_agg(DISTINCT sqlstate || ' ' || message, ',') FROM foreman.job_run
                   WHERE job_name = 'defer' AND status = 'failed'}),
	'23514 negative value refused at commit', "with the deferred trigger's error");
is(query($node, q{SELECT runs_succeeded || ':' || (runs_failed >= 3) FROM foreman.job WHERE job_name = 'defer'}),
	'0:true', "the job's counters say so");
is(query($node, q{SELECT count(*) FROM public.refused}), '0', 'nothing was inserted');

# 3. A command that writes its own job's row.
ok(wait_until($node, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'self' AND status = 'succeeded'}, 30),
	"'self' runs succeed");
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'self' AND status NOT IN ('succeeded', 'running')}),
	'0', 'none fails');
is(query($node, q{SELECT timeout FROM foreman.job WHERE job_name = 'self'}), '00:07:00', 'its change stays');
is(query($node, q{SELECT j.runs_succeeded >= 3 FROM foreman.job j WHERE j.job_name = 'self'}), 't',
	"its counters count its runs");

# 4. The session is reset after each run.
ok(wait_until($node, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'lock' AND status = 'succeeded'}, 30),
	"'lock' runs succeed");
ok(wait_until($node, qq{SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = $pid},
		10),
	'the advisory lock its runs take is not kept by the coordinator (the session is reset after each)');

# 5. Another kind of transaction: recorded after the commit.
query($node, q{ALTER SYSTEM SET default_transaction_isolation = 'repeatable read'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('default_transaction_isolation') = 'repeatable read'}, 10),
	'the setting is reloaded');
($with, $without) = ins_runs_from_now("under REPEATABLE READ, 'ins' runs on");
is($with, '0', 'its runs are recorded after the commit, not in it')
  or diag("$with committed with the effects, $without not");
query($node, q{ALTER SYSTEM RESET default_transaction_isolation; SELECT pg_reload_conf()});
($with, $without) = ins_runs_from_now('back to READ COMMITTED, it runs on');
ok($with >= 3 && $without == 0, "and is recorded in the command's transaction again")
  or diag("$with committed with the effects, $without not");

# 6. A synchronous standby named: recorded after the commit (a commit that
# waits for the standby would hold the job's and the run's rows). Commits
# are local here (synchronous_commit = local), so nothing waits for the
# standby that is not there.
query($node, q{ALTER SYSTEM SET synchronous_commit = 'local'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('synchronous_commit') = 'local'}, 10), 'commits are local');
query($node, q{ALTER SYSTEM SET synchronous_standby_names = 'nosuch'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('synchronous_standby_names') = 'nosuch'}, 10),
	'a synchronous standby is named');
($with, $without) = ins_runs_from_now("with it, 'ins' runs on");
is($with, '0', 'its runs are recorded after the commit')
  or diag("$with committed with the effects, $without not");
query($node, q{ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT current_setting('synchronous_standby_names') = ''}, 10), 'no standby named');
query($node, q{ALTER SYSTEM RESET synchronous_commit; SELECT pg_reload_conf()});

# 7. A parallel tier: its executors record their runs the same way.
query($node, q{SELECT foreman.create_tier('pinx', '1 second', concurrency => 2)});
query($node, q{SET ROLE alice;
               SELECT foreman.schedule('pins', '1 second', 'INSERT INTO public.effects (v) VALUES (2)', tier => 'pinx')});
ok(wait_until($node, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'pins' AND status = 'succeeded'}, 30),
	"'pins' runs in a parallel tier");
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'pins' AND status = 'succeeded'
                                                          AND pid IN (SELECT pid FROM foreman.tier_status)}), '0',
	'run by executors, not by its coordinator');
($with, $without) = split /:/, ins_runs('-infinity', 'pins');
ok($with >= 3 && $without == 0, "each of its runs is recorded in the command's transaction")
  or diag("$with committed with the effects, $without not");
query($node, q{SET ROLE alice; SELECT foreman.unschedule('pins')});

# 8. An immediate stop (no shutdown checkpoint; what is not flushed is lost)
# right after a run of 'ins', now alone in its tier: the run's end was
# flushed with its effects. (Recorded after its commit, asynchronously, the
# end would wait in memory for the next durable commit, the next tick's,
# and the run would come back 'crashed' with its row inserted.)
query($node, q{SET ROLE alice; SELECT foreman.unschedule(j) FROM unnest(ARRAY['defer', 'self', 'lock']) j});
sleep_until_cycles($node, 'inx', 1);
my $seen = query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'ins' AND status = 'succeeded'});
ok(wait_until($node, qq{SELECT count(*) > $seen FROM foreman.job_run WHERE job_name = 'ins' AND status = 'succeeded'},
		10),
	"a new run of 'ins' succeeded");
my $t7 = now_literal();
$node->stop('immediate');
$node->start;
ok(wait_for_leaders($node, 'postgres', 4, 30), 'after the restart every tier leads');
is(query($node, qq{SELECT (SELECT count(*) FROM public.effects WHERE v = 1 AND at < '$t7') || ':' ||
                          (SELECT count(*) FROM foreman.job_run
                            WHERE job_name = 'ins' AND status = 'succeeded' AND started_at < '$t7')}) =~ /^(\d+):\1$/
	? 'equal' : 'not equal',
	'equal', "every row 'ins' inserted before the stop has its run recorded succeeded");
is(query($node, qq{SELECT count(*) FROM foreman.job_run WHERE job_name = 'ins' AND status = 'crashed'
                                                          AND started_at < '$t7'}),
	'0', 'and none of its runs is crashed');

is(query($node, q{SELECT count(*) FROM foreman.job_run r JOIN foreman.job j USING (job_id)
                   WHERE r.status = 'running' AND r.started_at < now() - interval '30 seconds'}),
	'0', 'no run is left running');
unlike(slurp_file($node->logfile), qr/leaked|TRAP|terminated by signal/,
	'no leaked resource, assertion or crash in the log');

$node->stop;
done_testing();

# Waits (bounded) until the tier's leader has run $n more cycles: its count
# of runs moved by $n times its four jobs.
sub sleep_until_cycles
{
	my ($node, $tier, $n) = @_;
	my $runs = query($node, qq{SELECT runs FROM foreman.tier_status WHERE tier = '$tier' AND leader});
	my $more = 4 * $n;
	ok(wait_until($node, qq{SELECT runs >= $runs + $more FROM foreman.tier_status WHERE tier = '$tier' AND leader},
			30),
		"the tier's leader ran $n more cycles");
}
