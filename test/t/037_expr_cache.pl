# The planned CHECK constraints, trigger WHEN conditions and index
# predicates a coordinator keeps between its direct writes
# (src/pg/expr_cache.cpp) are the ones PostgreSQL would plan now.
#
# foreman.job_run gets a CHECK constraint and an AFTER INSERT trigger whose
# WHEN condition audits runs, each calling an inlinable SQL function (the
# planner puts its body into the kept tree). One sequential tier runs jobs
# 'a' and 'b' every second.
#  1. The trigger audits the runs of 'a' only (pick: $1 = 'a'); the kept
#     trees are reused: while more runs are written, the tier's coordinator
#     plans none again (its DEBUG1 "planned ... for reuse" lines).
#  2. pick is replaced ($1 = 'b'): runs of 'b' are audited from then on and
#     those of 'a' no more (a kept tree with the old body inlined would go
#     on auditing 'a').
#  3. The CHECK's function is replaced to refuse 'b': the start of 'b' fails
#     with the constraint's error; put back, 'b' runs again.
#  4. The trigger replaced with another WHEN (the catalog's text changes):
#     the new condition applies.
# Autovacuum is off, so that nothing but the test changes the catalog.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('expr_cache', extra_conf => <<'EOC');
log_min_messages = debug1
autovacuum = off
EOC
ok(wait_for_leaders($node, 'postgres', 2), 'the built-in tiers have leaders');

query($node, q{
	CREATE TABLE public.hits (job text);
	CREATE TABLE public.audit (job_name text, run_id bigint);
	CREATE FUNCTION public.pick(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 = 'a' $$;
	CREATE FUNCTION public.allowed(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 <> 'never' $$;
	CREATE FUNCTION public.audit_run() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.audit VALUES (NEW.job_name, NEW.run_id);
		RETURN NULL;
	END $$;
	CREATE TRIGGER audit_run AFTER INSERT ON foreman.job_run FOR EACH ROW
		WHEN (public.pick(NEW.job_name)) EXECUTE FUNCTION public.audit_run();
	ALTER TABLE foreman.job_run ADD CONSTRAINT job_run_allowed CHECK (public.allowed(job_name));
	SELECT foreman.create_tier('cache', '1 second');
});
ok(wait_for_leaders($node, 'postgres', 3), 'the new tier has a leader');
my $pid = leader_pid($node, 'cache');
like($pid, qr/^\d+$/, 'the tier has a leader process');

for my $job ('a', 'b')
{
	query($node, qq{SELECT foreman.schedule('$job', '1 second', \$\$INSERT INTO public.hits VALUES ('$job')\$\$,
	                                        tier => 'cache')});
}

# Whether each job named has at least $n successful runs started after $since.
sub ran_since
{
	my ($since, $n, @jobs) = @_;
	return 'SELECT ' . join(' AND ', map { qq{(SELECT count(*) FROM foreman.job_run
	           WHERE job_name = '$_' AND status = 'succeeded' AND started_at > '$since') >= $n} } @jobs);
}

sub now_literal { return query($node, q{SELECT clock_timestamp()}) }

# 1. Audited by the first WHEN; the trees kept.
my $t0 = now_literal();
ok(wait_until($node, ran_since($t0, 2, 'a', 'b'), 30),
	'both jobs run');
is(query($node, q{SELECT count(*) FILTER (WHERE job_name = 'b') = 0 AND count(*) FILTER (WHERE job_name = 'a') > 0
                    FROM public.audit}),
	't', "the WHEN condition audits the runs of 'a', not those of 'b'");

my $offset = -s $node->logfile;
my $t1 = now_literal();
ok(wait_until($node, ran_since($t1, 3, 'a', 'b'), 30),
	'three more runs of each');
my @planned = grep { /\[$pid\].*planned .* for reuse/ } split /^/, slurp_file($node->logfile, $offset);
is(scalar(@planned), 0, 'the tier planned no expression again for them (kept trees reused)')
  or diag(join('', @planned));
my $before = slurp_file($node->logfile);
ok($before =~ /\[$pid\].*planned a CHECK constraint of "job_run" for reuse/
	  && $before =~ /\[$pid\].*planned a trigger's WHEN condition of "job_run" for reuse/
	  && $before =~ /\[$pid\].*planned an index predicate of "job_run_running_idx" for reuse/,
	'it had planned the CHECK, the WHEN and the partial index predicate of job_run once');

# 2. The WHEN's function replaced.
query($node, q{CREATE OR REPLACE FUNCTION public.pick(text) RETURNS boolean LANGUAGE sql IMMUTABLE
               AS $$ SELECT $1 = 'b' $$});
ok(wait_until($node, q{SELECT count(*) > 0 FROM public.audit WHERE job_name = 'b'}, 30),
	"after pick is replaced, the runs of 'b' are audited");
my $last_a = query($node, q{SELECT coalesce(max(run_id), 0) FROM public.audit WHERE job_name = 'a'});
my $t2 = now_literal();
ok(wait_until($node, ran_since($t2, 2, 'a'), 30), "'a' goes on running");
is(query($node, qq{SELECT count(*) FROM public.audit WHERE job_name = 'a' AND run_id > $last_a}),
	'0', "and its runs are no longer audited");
like(slurp_file($node->logfile, $offset), qr/\[$pid\].*planned a trigger's WHEN condition of "job_run" for reuse/,
	'the tier planned the WHEN condition again');

# 3. The CHECK's function replaced: 'b' may not start; then it may again.
$offset = -s $node->logfile;
query($node, q{CREATE OR REPLACE FUNCTION public.allowed(text) RETURNS boolean LANGUAGE sql IMMUTABLE
               AS $$ SELECT $1 <> 'b' $$});
ok(wait_for_log_line($node, $offset, qr/\[$pid\].*violates check constraint "job_run_allowed"/, 30),
	"the start of 'b' fails with the replaced CHECK constraint");
query($node, q{CREATE OR REPLACE FUNCTION public.allowed(text) RETURNS boolean LANGUAGE sql IMMUTABLE
               AS $$ SELECT $1 <> 'never' $$});
my $t3 = now_literal();
ok(wait_until($node, ran_since($t3, 1, 'a', 'b'), 30),
	"put back, both jobs run again");

# 4. Another WHEN condition (the trigger's text changes).
query($node, q{TRUNCATE public.audit;
               CREATE OR REPLACE TRIGGER audit_run AFTER INSERT ON foreman.job_run FOR EACH ROW
                   WHEN (NEW.job_name = 'a' AND NEW.status = 'running') EXECUTE FUNCTION public.audit_run()});
my $t4 = now_literal();
ok(wait_until($node, ran_since($t4, 2, 'a', 'b'), 30),
	'both jobs run with the new trigger');
is(query($node, q{SELECT count(*) FILTER (WHERE job_name = 'b') = 0 AND count(*) FILTER (WHERE job_name = 'a') >= 2
                    FROM public.audit}),
	't', "the new WHEN condition audits the runs of 'a' again, not those of 'b'");

my $log = slurp_file($node->logfile);
unlike($log, qr/leaked|TRAP|terminated by signal/, 'no leaked resource, assertion or crash in the log');

$node->stop;
done_testing();
