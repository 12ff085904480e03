# A job whose command is one SELECT, INSERT, UPDATE, DELETE or MERGE keeps
# its plan between runs (src/bgw/command.cpp, PostgreSQL's plan cache); each
# run must still do what the command would do if it were planned now.
#
# One sequential tier ('kept', ticking every second) runs jobs of alice, a
# foreman_user, every second:
#  1. 'val' inserts public.val() (an immutable SQL function, folded into the
#     plan) into public.vals: planned once for all its runs (the tier's
#     DEBUG1 "kept the plan of job N" line appears once); a multi-statement
#     job is never kept, nor one that ran once ('once', by run_now: a plan is
#     kept at a job's second run in the process).
#  2. val() replaced: the next runs insert its new value.
#  3. public.vals dropped and made again with its columns in another order:
#     the runs go on, into the new table.
#  4. alice's INSERT privilege revoked: the runs fail with 42501; granted
#     again, they succeed.
#  5. Row-level security enabled on public.counters with a policy that hides
#     one row from alice: 'bump' (an UPDATE of every row) no longer updates it.
#  6. The command changed with alter_job: the new text runs.
#  7. The search_path of the jobs changed (ALTER SYSTEM, reload): 'sp's
#     unqualified INSERT goes to the table of the new path.
#  8. At most 128 plans per process: a second tier runs 130 jobs; its
#     coordinator keeps 128 of them and says so (never "(129 kept)").
# Autovacuum is off, so that nothing but the test changes the catalog.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('kept_plans', extra_conf => <<'EOC');
log_min_messages = debug1
autovacuum = off
EOC
ok(wait_for_leaders($node, 'postgres', 2), 'the built-in tiers have leaders');

query($node, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE FUNCTION public.val() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$;
	CREATE TABLE public.vals (v int, at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE public.counters (name text, n int);
	INSERT INTO public.counters VALUES ('seen', 0), ('hidden', 0);
	CREATE TABLE public.multi (v int);
	CREATE SCHEMA s1;
	CREATE SCHEMA s2;
	CREATE TABLE s1.sp (v int);
	CREATE TABLE s2.sp (v int);
	GRANT USAGE ON SCHEMA s1, s2 TO alice;
	GRANT INSERT ON public.vals, public.multi, s1.sp, s2.sp TO alice;
	GRANT SELECT, UPDATE ON public.counters TO alice;
	ALTER SYSTEM SET search_path = s1, public;
	SELECT pg_reload_conf();
	SELECT foreman.create_tier('kept', '1 second');
});
ok(wait_for_leaders($node, 'postgres', 3), 'the new tier has a leader');
my $pid = leader_pid($node, 'kept');
like($pid, qr/^\d+$/, 'the tier has a leader process');

query($node, q{
	SET ROLE alice;
	SELECT foreman.schedule('val', '1 second', 'INSERT INTO public.vals (v) VALUES (public.val())', tier => 'kept');
	SELECT foreman.schedule('bump', '1 second', 'UPDATE public.counters SET n = n + 1', tier => 'kept');
	SELECT foreman.schedule('multi', '1 second', 'INSERT INTO public.multi VALUES (1); INSERT INTO public.multi VALUES (2)',
	                        tier => 'kept');
	SELECT foreman.schedule('sp', '1 second', 'INSERT INTO sp VALUES (1)', tier => 'kept');
	SELECT foreman.schedule('once', '0 0 1 1 *', 'INSERT INTO public.multi VALUES (3)', tier => 'kept');
	SELECT foreman.run_now('once');
	RESET ROLE;
});
my %id = map { split /\|/ } split /\n/,
  query($node, q{SELECT job_name || '|' || job_id FROM foreman.job WHERE job_name IN ('val', 'bump', 'multi', 'sp', 'once')});

# Whether each job named has at least $n runs with this status started after $since.
sub ran_since
{
	my ($since, $n, $status, @jobs) = @_;
	return 'SELECT ' . join(' AND ', map { qq{(SELECT count(*) FROM foreman.job_run
	           WHERE job_name = '$_' AND status = '$status' AND started_at > '$since') >= $n} } @jobs);
}

sub now_literal { return query($node, q{SELECT clock_timestamp()}) }

# 1. Kept once, used for every later run.
my $t0 = now_literal();
ok(wait_until($node, ran_since($t0, 3, 'succeeded', 'val', 'bump', 'multi', 'sp'), 30), 'the jobs run');
my $log = slurp_file($node->logfile);
my @kept_val = ($log =~ /\[$pid\].*kept the plan of job $id{val}'s command/g);
is(scalar(@kept_val), 1, "'val' was planned once for its runs")
  or diag(scalar(@kept_val) . ' lines');
unlike($log, qr/\[$pid\].*kept the plan of job $id{multi}'s/, 'a command of two statements is not kept');
ok(wait_until($node, ran_since('-infinity', 1, 'succeeded', 'once'), 30), "'once' ran (run_now)");
unlike(slurp_file($node->logfile), qr/\[$pid\].*kept the plan of job $id{once}'s/,
	'a job run once in the process is not kept (kept at its second run)');
is(query($node, q{SELECT count(DISTINCT v) || ':' || min(v) FROM public.vals}), '1:1', "'val' inserts val()");
is(query($node, q{SELECT count(*) FROM public.multi WHERE v = 2}) > 0 ? 'yes' : 'no', 'yes',
	'the two-statement job runs both');
is(query($node, q{SELECT string_agg(DISTINCT rows_affected::text, ',') FROM foreman.job_run
                   WHERE job_name = 'bump' AND status = 'succeeded'}),
	'2', "'bump' updates both rows of public.counters");

# 2. The function folded into the plan replaced.
query($node, q{CREATE OR REPLACE FUNCTION public.val() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 2 $$});
my $t2 = now_literal();
ok(wait_until($node, qq{SELECT count(*) >= 2 FROM public.vals WHERE at > '$t2'}, 30), "'val' runs on");
is(query($node, qq{SELECT string_agg(DISTINCT v::text, ',') FROM public.vals WHERE at > '$t2'}), '2',
	'after val() is replaced, every run inserts its new value');

# 3. The table dropped and made again, its columns in another order.
query($node, q{
	DROP TABLE public.vals;
	CREATE TABLE public.vals (at timestamptz DEFAULT clock_timestamp(), note text DEFAULT 'new', v int);
	GRANT INSERT ON public.vals TO alice;
});
ok(wait_until($node, q{SELECT count(*) >= 2 FROM public.vals}, 30), 'the runs go on into the new table');
is(query($node, q{SELECT string_agg(DISTINCT note || v, ',') FROM public.vals}), 'new2',
	'with the value in its column');

# 4. The privilege revoked, then granted again.
query($node, q{REVOKE INSERT ON public.vals FROM alice});
my $t4 = now_literal();
ok(wait_until($node, ran_since($t4, 2, 'failed', 'val'), 30), 'without INSERT on the table, the runs fail');
is(query($node, qq{SELECT string_agg(DISTINCT sqlstate, ',') FROM foreman.job_run
                   WHERE job_name = 'val' AND started_at > '$t4' AND status <> 'running'}),
	'42501', 'with a privilege error');
query($node, q{GRANT INSERT ON public.vals TO alice});
my $t4b = now_literal();
ok(wait_until($node, ran_since($t4b, 2, 'succeeded', 'val'), 30), 'granted again, they succeed');

# 5. Row-level security: the policy applies to the kept UPDATE.
query($node, q{
	ALTER TABLE public.counters ENABLE ROW LEVEL SECURITY;
	CREATE POLICY not_hidden ON public.counters TO alice USING (name <> 'hidden');
});
my $hidden = query($node, q{SELECT n FROM public.counters WHERE name = 'hidden'});
my $t5 = now_literal();
ok(wait_until($node, ran_since($t5, 3, 'succeeded', 'bump'), 30), "'bump' runs on");
my $hidden_later = query($node, q{SELECT n FROM public.counters WHERE name = 'hidden'});
ok($hidden_later <= $hidden + 1, 'under the policy, the hidden row is no longer updated')
  or diag("hidden: $hidden, then $hidden_later");
is(query($node, qq{SELECT string_agg(DISTINCT rows_affected::text, ',') FROM foreman.job_run
                   WHERE job_name = 'bump' AND status = 'succeeded' AND started_at > '$t5'}),
	'1', 'each run started after the policy updates the one row alice sees');

# 6. The command changed.
query($node, q{
	SET ROLE alice;
	SELECT foreman.alter_job('val', command => 'INSERT INTO public.vals (v, note) VALUES (7, ''altered'')');
	RESET ROLE;
});
ok(wait_until($node, q{SELECT count(*) >= 2 FROM public.vals WHERE note = 'altered' AND v = 7}, 30),
	'after alter_job, the new command runs');

# 7. Another search_path for the jobs.
ok(wait_until($node, q{SELECT count(*) >= 1 FROM s1.sp}, 30), "'sp' inserts into s1.sp");
query($node, q{ALTER SYSTEM SET search_path = s2, public; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT count(*) >= 2 FROM s2.sp}, 30), 'after the search_path changed, into s2.sp');
my $s1 = query($node, q{SELECT count(*) FROM s1.sp});
my $t7 = now_literal();
ok(wait_until($node, ran_since($t7, 2, 'succeeded', 'sp'), 30), "'sp' runs on");
is(query($node, q{SELECT count(*) FROM s1.sp}), $s1, 'and no longer into s1.sp');

# 8. At most 128 kept plans per process.
query($node, q{
	SELECT foreman.create_tier('many', '1 second');
	SELECT foreman.schedule('many_' || k, '1 second', 'SELECT ' || k, tier => 'many') FROM generate_series(1, 130) k;
});
ok(wait_for_leaders($node, 'postgres', 4), 'the second tier has a leader');
my $many = leader_pid($node, 'many');
my $t8 = now_literal();
ok(wait_until($node, qq{SELECT count(DISTINCT job_name) = 130 FROM foreman.job_run
                        WHERE job_name LIKE 'many\\_%' AND status = 'succeeded' AND started_at > '$t8'}, 60),
	'its 130 jobs run');
$log = slurp_file($node->logfile);
my @counts = ($log =~ /\[$many\].*kept the plan of job \d+'s command for its next runs \((\d+) kept\)/g);
is(scalar(@counts), 128, 'its coordinator kept the plans of 128 of them');
is((sort { $b <=> $a } @counts)[0], 128, 'and never more than 128');

unlike($log, qr/leaked|TRAP|terminated by signal/, 'no leaked resource, assertion or crash in the log');

query($node, q{ALTER SYSTEM RESET search_path; SELECT pg_reload_conf()});
$node->stop;
done_testing();
