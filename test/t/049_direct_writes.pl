# 049_direct_writes.pl: the start of a run outside a pipeline (with the row
# of fire times folded into it), the end of a plain success and an
# executor's claim are written without a planned statement (run_write.cpp,
# foreman.direct_writes, on by default). They must write exactly what the
# statements write (foreman.direct_writes = off runs those).
#
# For each setting (the server restarted between them, so every process has
# it), in a sequential tier and in a parallel one (whose starts an executor
# takes: pid NULL until then):
#  1. A writing job runs five times: every run row is what a plain success
#     must be (status, rows, command tag, attempt, owner name, pid, the
#     stored generated duration = finished_at - started_at, no reason,
#     message or pending summary), and the job's summary columns agree with
#     its runs (runs_succeeded, last_run_id, last_status, last_started_at,
#     last_finished_at, last_succeeded_at, consecutive_failures, next_run_at
#     moved on, no retry left). The rows of the two settings are compared
#     column by column (all but ids, pids and times): identical.
#  2. The job's row held by another session (FOR UPDATE) while a run ends:
#     the end is recorded at once, the summary waits (summary_pending), and
#     is applied when the row is free.
#  3. What an executor's claim reads of the job and its tier (direct too):
#     in a parallel tier with a default_timeout and a max_user_runtime, a
#     job's own timeout, the tier's default and, for a role that is not
#     foreman_admin, the tier's cap each cut a run with the message naming
#     it; a job with a downstream (not a plain end) starts the downstream.
#     The outcomes of the two settings are compared: identical.
#  4. A start with late fire times folded into it (the job's row held by
#     another session until the job is three fire times behind): one
#     'skipped' row (reason coalesced, its message counting the fire times
#     up to the run's), then the run, the job's runs_skipped counting it -
#     in both tiers (an executor's run: no pid on either row until it takes
#     the run), alike in both settings.
# At the end, with rows in each of job_run's partial indexes (failed runs, a
# running one, one whose summary waits), amcheck (heapallindexed) verifies
# every index of foreman.job and foreman.job_run, and each partial index,
# read by an index scan, holds exactly the rows its predicate chooses; the
# server log reports no leaked resource.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('direct_writes');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
query($node, q{
	CREATE EXTENSION amcheck;
	CREATE TABLE hits (job text, at timestamptz DEFAULT clock_timestamp());
	SELECT foreman.create_tier('seq1', '1 second');
	SELECT foreman.create_tier('par1', '1 second', concurrency => 3);
	SELECT foreman.create_tier('par2', '1 second', concurrency => 3, default_timeout => '700 ms',
	                           max_user_runtime => '400 ms');
	CREATE ROLE tenant LOGIN IN ROLE foreman_user;
});
ok(wait_for_leaders($node, 'postgres', 5), 'the three new tiers have leaders');

# What every run of a plain writing job must look like; one line per
# distinct shape (all runs alike: one line).
my $shape_sql = q{
	SELECT string_agg(DISTINCT concat_ws('|', r.status, r.rows_affected, r.command_tag, r.attempt,
	                  r.owner_name IS NOT DISTINCT FROM j.owner_name, r.pid IS NOT NULL,
	                  r.duration = r.finished_at - r.started_at, r.started_at >= r.scheduled_for,
	                  coalesce(r.batches::text, '-'), coalesce(r.reason, '-'), coalesce(r.message, '-'),
	                  coalesce(r.sqlstate, '-'), r.summary_pending, coalesce(r.chain_id::text, '-'),
	                  r.tier_id = j.tier_id, r.owner = j.owner, r.job_name = j.job_name), E'\n')
	  FROM foreman.job_run r JOIN foreman.job j USING (job_id) WHERE j.job_name = '%s'};
my $expected_shape = 'succeeded|1|INSERT|1|t|t|t|t|-|-|-|-|f|-|t|t|t';

# The job's summary against its runs, once it is paused and nothing runs.
my $summary_sql = q{
	SELECT j.runs_succeeded = (SELECT count(*) FROM foreman.job_run r WHERE r.job_id = j.job_id AND r.status = 'succeeded')
	       AND j.last_run_id = (SELECT max(run_id) FROM foreman.job_run r WHERE r.job_id = j.job_id)
	       AND j.last_status = 'succeeded' AND j.consecutive_failures = 0
	       AND j.last_finished_at = (SELECT finished_at FROM foreman.job_run WHERE run_id = j.last_run_id)
	       AND j.last_succeeded_at = j.last_finished_at
	       AND j.last_started_at = (SELECT started_at FROM foreman.job_run WHERE run_id = j.last_run_id)
	       AND j.retry_at IS NULL AND j.retry_attempt = 0 AND j.run_requested_at IS NULL
	       AND j.runs_failed + j.runs_timed_out + j.runs_cancelled + j.runs_crashed = 0
	       AND (SELECT count(*) FROM hits h WHERE h.job = j.job_name) = j.runs_succeeded
	  FROM foreman.job j WHERE j.job_name = '%s'};

my %shapes;
for my $setting ('on', 'off')
{
	if ($setting eq 'off')
	{
		$node->append_conf('postgresql.conf', "foreman.direct_writes = off\n");
		$node->restart;
		ok(wait_for_leaders($node, 'postgres', 5), 'direct_writes = off: every tier has a leader again');
	}
	is(query($node, 'SHOW foreman.direct_writes'), $setting, "foreman.direct_writes is $setting");

	# 1. Five runs in each tier.
	for my $tier ('seq1', 'par1')
	{
		my $job = "${tier}_$setting";
		query($node, qq{SELECT foreman.schedule('$job', '1 second', 'INSERT INTO hits(job) VALUES (''$job'')',
		                                        tier => '$tier')});
		ok( wait_until($node, qq{
				SELECT count(*) >= 5 FROM foreman.runs WHERE job_name = '$job' AND status = 'succeeded'}, 30),
			"$job: five runs succeeded");
		query($node, qq{SELECT foreman.alter_job('$job', enabled => false)});
		ok( wait_until($node, qq{
				SELECT count(*) = 0 FROM foreman.job_run WHERE job_name = '$job' AND status = 'running'}, 10),
			"$job: paused, nothing running");
		my $shape = query($node, sprintf($shape_sql, $job));
		is($shape, $expected_shape, "$job: every run row is a plain success's");
		is(query($node, sprintf($summary_sql, $job)), 't', "$job: the job's summary agrees with its runs");
		is( query($node, qq{SELECT count(*) FROM foreman.job_run WHERE job_name = '$job' AND status <> 'succeeded'}),
			'0', "$job: no other run rows");
		$shapes{$tier}{$setting} = $shape;
	}

	# 2. The job's row held while a run ends: the summary waits.
	my $held = "held_$setting";
	query($node, qq{SELECT foreman.schedule('$held', '1 hour', 'SELECT pg_sleep(1.5)', tier => 'seq1')});
	ok( wait_until($node, qq{
			SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = '$held' AND status = 'succeeded'}, 15),
		"$held: its first run (at scheduling) ended");
	query($node, qq{SELECT foreman.run_now('$held')});
	ok( wait_until($node, qq{
			SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = '$held' AND status = 'running'}, 10),
		"$held: a second run is running");
	my $s = session($node);
	$s->query(qq{BEGIN; SELECT 1 FROM foreman.job WHERE job_name = '$held' FOR UPDATE;});
	ok( wait_until($node, qq{
			SELECT count(*) = 1 FROM foreman.job_run
			 WHERE job_name = '$held' AND status = 'succeeded' AND summary_pending}, 10),
		"$held: the run ended while its job's row was held: recorded, its summary pending");
	is( query($node, qq{SELECT runs_succeeded FROM foreman.job WHERE job_name = '$held'}),
		'1', "$held: the summary was not applied over the held row");
	$s->query('COMMIT;');
	$s->close;
	ok( wait_until($node, qq{
			SELECT runs_succeeded = 2 AND last_run_id = (SELECT max(run_id) FROM foreman.job_run r
			                                            WHERE r.job_name = '$held')
			       AND NOT EXISTS (SELECT FROM foreman.job_run r WHERE r.job_name = '$held' AND r.summary_pending)
			  FROM foreman.job WHERE job_name = '$held'}, 10),
		"$held: the pending summary was applied once the row was free");

	# 3. What a claim reads: timeouts from the job, its tier's default and
	# the tier's cap; a downstream.
	query($node, qq{
		SELECT foreman.schedule('own_$setting', '\@once', 'SELECT pg_sleep(5)', tier => 'par2', timeout => '300 ms');
		SELECT foreman.schedule('dflt_$setting', '\@once', 'SELECT pg_sleep(5)', tier => 'par2');
		SET ROLE tenant;
		SELECT foreman.schedule('cap_$setting', '\@once', 'SELECT pg_sleep(5)', tier => 'par2');
		RESET ROLE;
		BEGIN;
		SELECT foreman.schedule('up_$setting', '\@once', 'INSERT INTO hits(job) VALUES (''up_$setting'')',
		                        tier => 'par1', enabled => false);
		SELECT foreman.schedule('down_$setting', '\@after', 'INSERT INTO hits(job) VALUES (''down_$setting'')',
		                        tier => 'par1', after => ARRAY['up_$setting']);
		SELECT foreman.alter_job('up_$setting', enabled => true);
		COMMIT;});
	ok( wait_until($node, qq{
			SELECT count(*) = 3 FROM foreman.job_run
			 WHERE job_name IN ('own_$setting', 'dflt_$setting', 'cap_$setting') AND status <> 'running'}, 20),
		"$setting: the three sleeping jobs of par2 ended");
	my $cut = query($node, qq{
		SELECT string_agg(format('%s %s %s %s %s', regexp_replace(job_name, '_$setting\$', ''), status,
		                         coalesce(reason, '-'), sqlstate, message), E'\n' ORDER BY job_name)
		  FROM foreman.job_run WHERE job_name IN ('own_$setting', 'dflt_$setting', 'cap_$setting')});
	is( $cut,
		join("\n",
			"cap timed_out max_user_runtime 57014 canceling statement due to the tier's max_user_runtime (400 ms)",
			"dflt timed_out - 57014 canceling statement due to the job's timeout (700 ms)",
			"own timed_out - 57014 canceling statement due to the job's timeout (300 ms)"),
		"$setting: each run was cut by the timeout its claim read (the job's, the tier's default, the tier's cap)");
	ok( wait_until($node, qq{
			SELECT count(*) = 2 FROM hits WHERE job IN ('up_$setting', 'down_$setting')}, 20),
		"$setting: the job with a downstream ran in par1, and its downstream after it");
	is( query($node, qq{
			SELECT string_agg(format('%s %s', job_name, status), ',' ORDER BY run_id)
			  FROM foreman.job_run WHERE job_name IN ('up_$setting', 'down_$setting')}),
		"up_$setting succeeded,down_$setting succeeded", "$setting: one run each, the upstream first");
	$shapes{cut}{$setting} = $cut =~ s/_$setting//gr;

	# 4. A start with fire times folded into it (coalesced): the job's row
	# held until its next start is at least three fire times late.
	for my $tier ('seq1', 'par1')
	{
		my $late = "late_${tier}_$setting";
		query($node, qq{SELECT foreman.schedule('$late', '1 second', 'INSERT INTO hits(job) VALUES (''$late'')',
		                                        tier => '$tier')});
		ok( wait_until($node, qq{
				SELECT count(*) >= 1 FROM foreman.job_run WHERE job_name = '$late' AND status = 'succeeded'}, 15),
			"$late: a first run succeeded");
		my $h = session($node);
		$h->query(qq{BEGIN; SELECT 1 FROM foreman.job WHERE job_name = '$late' FOR UPDATE;});
		ok( wait_until($node, qq{
				SELECT next_run_at < now() - interval '2.5 seconds' FROM foreman.job WHERE job_name = '$late'}, 15),
			"$late: its row held, the job fell three fire times behind");
		$h->query('COMMIT;');
		$h->close;
		ok( wait_until($node, qq{
				SELECT count(*) >= 1 FROM foreman.job_run s JOIN foreman.job_run r USING (job_id)
				 WHERE s.job_name = '$late' AND s.reason = 'coalesced' AND r.run_id > s.run_id
				   AND r.status = 'succeeded'}, 15),
			"$late: the late fire times were folded into one run, which succeeded");
		query($node, qq{SELECT foreman.alter_job('$late', enabled => false)});
		ok( wait_until($node, qq{
				SELECT count(*) = 0 FROM foreman.job_run WHERE job_name = '$late' AND status = 'running'}, 10),
			"$late: paused, nothing running");
		# The folded row and the run written with it (the job's next row):
		# the count in the message spans the fire times up to the run's.
		my $folded = query($node, qq{
			SELECT string_agg(concat_ws('|', s.status, s.reason,
			                  s.message ~ '^[0-9]+ fire times from .* ran once, as the run for the latest one\$',
			                  s.scheduled_for + substring(s.message FROM '^([0-9]+) ')::int * interval '1 second'
			                    = r.scheduled_for,
			                  substring(s.message FROM '^([0-9]+) ')::int >= 2,
			                  s.attempt, s.pid IS NOT NULL, s.pid IS NOT DISTINCT FROM r.pid OR s.pid IS NULL,
			                  s.finished_at - s.started_at < interval '1 second',
			                  s.duration = s.finished_at - s.started_at,
			                  coalesce(s.rows_affected::text, '-'), coalesce(s.command_tag, '-'),
			                  coalesce(s.sqlstate, '-'), coalesce(s.batches::text, '-'), s.summary_pending,
			                  coalesce(s.chain_id::text, '-'), s.tier_id = j.tier_id, s.owner = j.owner,
			                  s.owner_name IS NOT DISTINCT FROM j.owner_name, s.job_name = j.job_name,
			                  r.status, coalesce(r.reason, '-'), r.attempt), E'\n')
			  FROM foreman.job_run s JOIN foreman.job j USING (job_id)
			  JOIN LATERAL (SELECT * FROM foreman.job_run r WHERE r.job_id = s.job_id AND r.run_id > s.run_id
			                 ORDER BY r.run_id LIMIT 1) r ON true
			 WHERE s.job_name = '$late' AND s.status = 'skipped'});
		my $pid = $tier eq 'seq1' ? 't' : 'f';
		is($folded, "skipped|coalesced|t|t|t|1|$pid|t|t|t|-|-|-|-|f|-|t|t|t|t|succeeded|-|1",
			"$late: one 'skipped' row (coalesced) for the late fire times, then the run for the latest");
		is( query($node, qq{
				SELECT j.runs_skipped = (SELECT count(*) FROM foreman.job_run r WHERE r.job_id = j.job_id
				                          AND r.status = 'skipped')
				       AND j.runs_succeeded = (SELECT count(*) FROM foreman.job_run r WHERE r.job_id = j.job_id
				                                AND r.status = 'succeeded')
				       AND j.runs_skipped = 1
				  FROM foreman.job j WHERE j.job_name = '$late'}),
			't', "$late: the job counts the skipped row and its runs");
		$shapes{"late_$tier"}{$setting} = $folded;
	}
}

for my $tier ('seq1', 'par1', 'cut', 'late_seq1', 'late_par1')
{
	is($shapes{$tier}{on}, $shapes{$tier}{off}, "$tier: the run rows of both settings are alike");
}

# The indexes the writes maintained, with rows in every partial index: runs
# that failed, one running, one whose summary waits (its job's row held).
query($node, q{
	SELECT foreman.schedule('failing', '1 second', 'SELECT 1/0', tier => 'seq1');
	SELECT foreman.schedule('sleeping', '1 hour', 'SELECT pg_sleep(60)', tier => 'par1');
	SELECT foreman.schedule('pending', '1 hour', 'SELECT pg_sleep(1.5)', tier => 'par1', start_at => now() + interval '1 hour');
	SELECT foreman.run_now('pending');
});
ok( wait_until($node, q{
		SELECT (SELECT count(*) >= 2 FROM foreman.job_run WHERE job_name = 'failing' AND status = 'failed')
		   AND (SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'sleeping' AND status = 'running')
		   AND (SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'pending' AND status = 'running')}, 20),
	'runs failed, one sleeps, one is about to end');
my $holder = session($node);
$holder->query(q{BEGIN; SELECT 1 FROM foreman.job WHERE job_name = 'pending' FOR UPDATE;});
ok( wait_until($node, q{
		SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'pending' AND status = 'succeeded' AND summary_pending}, 10),
	'a run ended with its summary pending');
query($node, q{SELECT foreman.alter_job('failing', enabled => false)});
my ($ret, $out, $err) = $node->psql('postgres', q{
	SELECT count(*) FROM (SELECT bt_index_check(i.indexrelid, true)
	                        FROM pg_index i WHERE i.indrelid IN ('foreman.job'::regclass, 'foreman.job_run'::regclass)) s});
is($ret, 0, 'amcheck (heapallindexed): every index of foreman.job and foreman.job_run is sound')
  or diag($err);
for my $pred (
	["status = 'running'",                           'job_run_running_idx'],
	['summary_pending',                              'job_run_summary_pending_idx'],
	["status IN ('failed', 'timed_out', 'crashed')", 'job_run_job_failed_idx'])
{
	my ($where, $index) = @$pred;
	my $plan = query($node, qq{SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT count(*) FROM foreman.job_run WHERE $where});
	like($plan, qr/\b$index\b/, "$where is read through $index");
	# Both counts in one snapshot.
	my ($by_heap, $by_index) = split /\n/, query($node, qq{
		BEGIN ISOLATION LEVEL REPEATABLE READ;
		SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off;
		SELECT count(*) FROM foreman.job_run WHERE $where;
		SET LOCAL enable_indexscan = on; SET LOCAL enable_bitmapscan = on; SET LOCAL enable_indexonlyscan = on;
		SET LOCAL enable_seqscan = off;
		SELECT count(*) FROM foreman.job_run WHERE $where;
		COMMIT;});
	is($by_index, $by_heap, "$index holds exactly the rows of its predicate ($by_heap)");
	ok($by_heap > 0, "$where: rows to check");
}
$holder->query('COMMIT;');
$holder->close;

# The writes release what they take: no leaked buffer pin, tuple descriptor
# or relation reference was reported at any commit.
my $log = slurp_file($node->logfile);
unlike($log, qr/(?:buffer refcount|TupleDesc reference|relcache reference|snapshot reference) leak/,
	'the server log reports no leaked resource');

done_testing();
