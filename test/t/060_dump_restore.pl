# 060_dump_restore.pl: pg_dump and pg_restore carry the whole schedule.
#
#  1. A schedule of every kind (interval, cron with a time zone, @once,
#     expiry and purge, retries, paused, jittered, a parallel tier, changed
#     built-in tiers and built-in job, same-named jobs of several owners), run
#     for a while, one run still going, is dumped from one snapshot (plain and
#     custom format, and without history).
#  2. Same cluster, plain format (COPY, and INSERT statements), psql
#     --single-transaction with ON_ERROR_STOP,
#     pg_foreman off meanwhile: no error, no warning; every job, tier, run and
#     maintenance row comes back exactly (owners by name), the built-ins once,
#     each run that was going as 'crashed' (reason 'restored'), the identity
#     sequences past the restored ids. With pg_foreman on again, the launcher
#     finds the database, its coordinators run the restored jobs as their
#     owners, on each job's own grid, the missed fire times coalesced.
#  3. Another cluster, roles restored first from pg_dumpall --roles-only less
#     two of them, custom format, pg_restore --exit-on-error while pg_foreman
#     runs: no error, no warning; jobs of the missing roles are disabled with
#     the reason, owned by no role (owner 0), never run, and neither they nor
#     their history are visible to other roles; the others run as their owners
#     (mapped by name to the other cluster's OIDs). A role made afterwards
#     gets its jobs back with foreman.adopt_restored_jobs() and runs them.
#  4. --exclude-table-data=foreman.job_run leaves the history out.
#  5. A database owner that is not a superuser: plain pg_dump fails on the
#     row-level security of foreman.job (what PostgreSQL does for every
#     table with RLS); --enable-row-security dumps the jobs that role sees,
#     and --exclude-table-data='foreman.*' leaves the schedule out; both
#     restore cleanly. -N foreman makes a dump that does not restore.
#  6. The dump holds no statement that CREATE EXTENSION makes again (the
#     class of pg_cron's CREATE POLICY that broke restores).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use ForemanTest;

# A client program against a node; (success, stdout, stderr), bounded.
sub tool
{
	my ($node, $prog, @args) = @_;
	my @cmd = ($node->installed_command($prog), '-h', $node->host, '-p', $node->port, @args);
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
	return ($ok, $out, $err);
}

# psql of a script file, as restores are run: no psqlrc, ON_ERROR_STOP.
sub psql_file
{
	my ($node, $db, $file, @opts) = @_;
	return tool($node, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $db, @opts, '-f', $file);
}

sub as_role
{
	my ($node, $role, $sql, $db) = @_;
	return query($node, "SET ROLE $role; $sql", $db);
}

my $tmp = PostgreSQL::Test::Utils::tempdir;

# ---------------------------------------------------------------------------
# 1. The source: a schedule of every kind.

my $src = new_node('dump_src');
query($src, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE ROLE bob LOGIN IN ROLE foreman_user;
	CREATE ROLE carol LOGIN IN ROLE foreman_user;
	CREATE ROLE dave LOGIN IN ROLE foreman_user;
	CREATE DATABASE app;
});
query($src, q{
	CREATE EXTENSION pg_foreman;
	CREATE TABLE public.who (job text, usr name, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT, SELECT ON public.who TO PUBLIC;
	CREATE TABLE public.sessions (id int PRIMARY KEY, status text, created_at timestamptz);
	ALTER TABLE public.sessions OWNER TO alice;
	INSERT INTO public.sessions SELECT g, 'open', now() - interval '2 hours' FROM generate_series(1, 50) g;

	SELECT foreman.create_tier('reports', '1 second', concurrency => 2);
	SELECT foreman.alter_tier('fast', tick => '2 seconds');
	SELECT foreman.alter_tier('slow', max_user_runtime => '20 minutes');
	SELECT foreman.alter_job('foreman.trim_run_history', schedule => '2 minutes');

	SET ROLE alice;
	SELECT foreman.schedule('whoami', '1 second', $$INSERT INTO public.who SELECT 'whoami', current_user$$,
	                        tier => 'fast');
	SELECT foreman.schedule('berlin', '*/2 * * * * *', $$INSERT INTO public.who SELECT 'berlin', current_user$$,
	                        time_zone => 'Europe/Berlin', tier => 'fast');
	SELECT foreman.schedule_expiry('expire', 'public.sessions', '1 hour', schedule => '1 hour', batch_size => 20,
	                               set_status => 'stale');
	SELECT foreman.schedule_purge('purge', 'public.sessions', 'created_at', '30 days', schedule => '1 hour',
	                              tier => 'reports');
	SELECT foreman.schedule('cleanup', '1 hour', 'SELECT 1');
	SELECT foreman.run_now('expire');
	RESET ROLE;

	SET ROLE bob;
	SELECT foreman.schedule('paused', '1 second', 'SELECT 1', enabled => false);
	SELECT foreman.schedule('flaky', '1 hour', 'SELECT 1/0', retries => 2, retry_backoff => '1 second',
	                        max_failures => 5);
	SELECT foreman.schedule('jittered', '3 seconds', $$INSERT INTO public.who SELECT 'jittered', current_user$$,
	                        jitter => '2 seconds', tier => 'fast');
	SELECT foreman.schedule('once', '@once', 'SELECT 1', start_at => now() + interval '1 day');
	SELECT foreman.schedule('cleanup', '1 hour', 'SELECT 2');
	SELECT foreman.schedule('sleeper', '1 hour', 'SELECT pg_sleep(60)', tier => 'reports');
	RESET ROLE;

	SET ROLE carol;
	SELECT foreman.schedule('cleanup', '1 hour', 'SELECT 3');
	SELECT foreman.schedule('carol_tick', '1 second', $$INSERT INTO public.who SELECT 'carol_tick', current_user$$,
	                        tier => 'fast');
	RESET ROLE;

	SET ROLE dave;
	SELECT foreman.schedule('cleanup', '1 hour', 'SELECT 4');
	RESET ROLE;
}, 'app');

ok(wait_until($src, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'whoami' AND status = 'succeeded'},
		30, db => 'app'), 'source: whoami ran');
ok(wait_until($src, q{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'carol_tick' AND status = 'succeeded'},
		30, db => 'app'), 'source: carol_tick ran');
ok(wait_until($src, q{SELECT count(*) >= 3 FROM foreman.job_run WHERE job_name = 'flaky' AND status = 'failed'},
		30, db => 'app'), 'source: flaky failed and was retried');
ok(wait_until($src, q{SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'sleeper' AND status = 'running'},
		30, db => 'app'), 'source: sleeper is running');
ok(wait_until($src, q{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'expire' AND status = 'succeeded'},
		30, db => 'app'), 'source: expire ran');

# Everything is dumped from one snapshot, and what it holds is read in it.
my $snap_session = session($src, db => 'app');
my $snapshot = $snap_session->query(q{
	BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT pg_export_snapshot();});

# The catalog as a restore must give it back: owners by name; the built-in
# job's revision apart (a restore gives it a new one, so that coordinators read
# it again); runs numbered anew in their order (so last_run_id is cleared).
my %catalog_sql = (
	tiers => q{SELECT jsonb_agg(to_jsonb(t) ORDER BY tier_id) FROM foreman.tier t},
	jobs => q{SELECT jsonb_agg(to_jsonb(j) - 'owner' - 'revision' - 'last_run_id' ORDER BY job_id) FROM foreman.job j},
	maintenance => q{SELECT jsonb_agg(to_jsonb(m) - 'owner' ORDER BY job_id) FROM foreman.maintenance m},
	finished_runs => q{SELECT jsonb_agg(to_jsonb(r) - 'owner' - 'run_id' ORDER BY run_id) FROM foreman.job_run r
	                    WHERE status <> 'running' AND reason IS DISTINCT FROM 'restored'},
	running_runs => q{SELECT jsonb_agg(to_jsonb(r) - 'owner' - 'run_id' - 'status' - 'reason' - 'message' - 'finished_at'
	                                   - 'duration' - 'summary_pending' ORDER BY run_id)
	                    FROM foreman.job_run r WHERE status = 'running'},
	owners => q{SELECT bool_and(owner::regrole::text = quote_ident(owner_name))
	              FROM (SELECT owner, owner_name FROM foreman.job UNION ALL SELECT owner, owner_name FROM foreman.job_run
	                    UNION ALL SELECT owner, owner_name FROM foreman.maintenance) o},
);
my %expected;
$expected{$_} = scalar $snap_session->query("$catalog_sql{$_};") for keys %catalog_sql;
my $src_max_job = $snap_session->query(q{SELECT max(job_id) FROM foreman.job;});
my $src_runs = $snap_session->query(q{SELECT count(*) FROM foreman.job_run;});
# The runs going in the snapshot: the sleeper, and perhaps a one-second job
# caught between its start record and its end (a start is recorded up to
# 10 ms ahead of its fire time, so such a window is expected).
my $src_going = $snap_session->query(q{
	SELECT string_agg(format('%s crashed t f', job_name), ',' ORDER BY run_id)
	  FROM foreman.job_run WHERE status = 'running';});
like($src_going, qr/(^|,)sleeper crashed t f(,|$)/, 'source: the snapshot holds the sleeper going');
is($expected{owners}, 't', 'source: every owner_name names its owner');
cmp_ok($src_runs, '>', 5, "source: the dump holds history ($src_runs runs)");

my ($ok, $out, $err);
($ok, $out, $err) = tool($src, 'pg_dump', "--snapshot=$snapshot", '-f', "$tmp/app.sql", 'app');
ok($ok, 'pg_dump, plain format') or diag($err);
is($err, '', 'pg_dump says nothing on stderr');
($ok, $out, $err) = tool($src, 'pg_dump', "--snapshot=$snapshot", '-Fc', '-f', "$tmp/app.dump", 'app');
ok($ok, 'pg_dump, custom format') or diag($err);
($ok, $out, $err) = tool($src, 'pg_dump', "--snapshot=$snapshot", '--column-inserts', '-f', "$tmp/app_inserts.sql", 'app');
ok($ok, 'pg_dump --column-inserts') or diag($err);
($ok, $out, $err) = tool($src, 'pg_dump', "--snapshot=$snapshot", '-Fc', '--exclude-table-data=foreman.job_run',
	'-f', "$tmp/nohist.dump", 'app');
ok($ok, 'pg_dump --exclude-table-data=foreman.job_run') or diag($err);
$snap_session->query('COMMIT;');
$snap_session->close;

# ---------------------------------------------------------------------------
# 6. Nothing in the dump that CREATE EXTENSION makes again.

my $plain = slurp_file("$tmp/app.sql");
unlike($plain, qr/^CREATE (POLICY|TRIGGER|FUNCTION|PROCEDURE|VIEW|INDEX|UNIQUE INDEX|TABLE) foreman\./m,
	'the dump re-creates no object of the extension');
unlike($plain, qr/^ALTER TABLE (ONLY )?foreman\./m, 'and alters none of its tables (no RLS, no constraint)');
like($plain, qr/^CREATE EXTENSION IF NOT EXISTS pg_foreman WITH SCHEMA foreman;$/m, 'it creates the extension');
like($plain, qr/^COPY foreman\.job \(/m, 'and carries foreman.job');
unlike($plain, qr/^COPY foreman\.tier_lease/m, 'but not the leadership epochs (runtime state)');

# ---------------------------------------------------------------------------
# 2. Same cluster, plain format, one transaction, pg_foreman off meanwhile so
#    that the restored catalog can be compared with the dumped one exactly.

$src->append_conf('postgresql.conf', "foreman.enabled = off\n");
$src->reload;
ok(wait_until($src, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_foreman coordinator'}, 30),
	'foreman.enabled = off: the coordinators stop');

query($src, 'CREATE DATABASE restored');
my $t_restored = query($src, q{SELECT quote_literal(clock_timestamp())});
($ok, $out, $err) = psql_file($src, 'restored', "$tmp/app.sql", '--single-transaction');
ok($ok, 'plain restore with psql --single-transaction -v ON_ERROR_STOP=1');
is($err, '', 'no error and no warning on restore');

for my $what (sort keys %catalog_sql)
{
	is(query($src, $catalog_sql{$what}, 'restored'), $expected{$what}, "restored $what equal the dumped ones")
	  unless $what eq 'running_runs';
}
# The same with INSERT statements instead of COPY.
query($src, 'CREATE DATABASE restored_ins');
($ok, $out, $err) = psql_file($src, 'restored_ins', "$tmp/app_inserts.sql", '--single-transaction');
ok($ok, 'restore of a --column-inserts dump');
is($err, '', 'no error and no warning on restore');
for my $what (sort keys %catalog_sql)
{
	is(query($src, $catalog_sql{$what}, 'restored_ins'), $expected{$what}, "INSERT statements: restored $what equal")
	  unless $what eq 'running_runs';
}
query($src, 'DROP DATABASE restored_ins');

is( query($src, q{
		SELECT jsonb_agg(to_jsonb(r) - 'owner' - 'run_id' - 'status' - 'reason' - 'message' - 'finished_at'
		                 - 'duration' - 'summary_pending' ORDER BY run_id)
		  FROM foreman.job_run r WHERE reason = 'restored'}, 'restored'),
	$expected{running_runs}, 'the run that was going comes back as the restored one');
is( query($src, q{
		SELECT string_agg(format('%s %s %s %s', job_name, status, finished_at = started_at, summary_pending), ','
		                  ORDER BY run_id)
		  FROM foreman.job_run WHERE reason = 'restored'}, 'restored'),
	$src_going, "each run going in the dump is 'crashed' (it never ran here), and counts for nothing");
is( query($src, q{SELECT string_agg(format('%s/%s', job_id, tier_id), ',' ORDER BY job_id) FROM foreman.job WHERE job_id < 0},
		'restored'),
	'-1/2', 'the built-in job once');
is(query($src, q{SELECT schedule FROM foreman.job WHERE job_id = -1}, 'restored'), '2 minutes', 'with its changed schedule');
is( query($src, q{SELECT string_agg(format('%s %s %s', name, tick, max_user_runtime), ',' ORDER BY tier_id) FROM foreman.tier},
		'restored'),
	'fast 00:00:02 00:00:30,slow 00:01:00 00:20:00,reports 00:00:01 00:05:00',
	'the built-in tiers once, with their changed settings, and the new tier');

# Identity sequences continue past the restored ids.
is( query($src, q{
		SELECT foreman.schedule('after_restore', '1 hour', 'SELECT 1', enabled => false) > max(job_id)
		  FROM foreman.job WHERE job_name <> 'after_restore'}, 'restored'),
	't', 'a job scheduled after the restore gets a new id');
is(query($src, q{SELECT foreman.create_tier('later', '1 minute')}, 'restored'), 4, 'so does a new tier');
query($src, q{SELECT foreman.drop_tier('later')}, 'restored');
is( query($src, q{SELECT pg_sequence_last_value('foreman.job_run_run_id_seq') >= max(run_id) FROM foreman.job_run},
		'restored'),
	't', 'the run_id sequence is past the restored runs');
is(query($src, q{SELECT count(*) FROM foreman.job WHERE last_run_id IS NOT NULL}, 'restored'), 0,
	'last_run_id is cleared (the restored runs have new ids)');

my $whoami_next = query($src, q{SELECT quote_literal(next_run_at) FROM foreman.job WHERE job_name = 'whoami'}, 'restored');

# Some fire times pass while pg_foreman is off (bounded: a poll of the clock).
ok(wait_until($src, "SELECT clock_timestamp() > ${whoami_next}::timestamptz + interval '2.5 seconds'", 10, db => 'restored'),
	'two more fire times of whoami pass before pg_foreman is on again');

# pg_foreman on: the launcher finds the restored database.
$src->adjust_conf('postgresql.conf', 'foreman.enabled', 'on');
$src->reload;
ok(wait_for_leaders($src, 'restored', 3, 30), 'the launcher finds the restored database: its three tiers lead');
my $t_on = query($src, q{SELECT quote_literal(clock_timestamp())}, 'restored');
# (Not wait_for_run: the first row may be the skipped one of the coalesced fire times.)
ok( wait_until($src, qq{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'whoami' AND status = 'succeeded'
	                     AND started_at >= $t_on}, 30, db => 'restored'),
	'a restored job runs');
ok( wait_until($src, qq{SELECT count(*) > 0 FROM public.who WHERE job = 'jittered' AND at >= $t_on}, 30, db => 'restored'),
	'so does the jittered one of the other owner');
is( query($src, qq{
		SELECT string_agg(DISTINCT format('%s:%s', job, usr), ',' ORDER BY format('%s:%s', job, usr))
		  FROM public.who WHERE at >= $t_on AND job IN ('whoami', 'jittered')}, 'restored'),
	'jittered:bob,whoami:alice', 'each as its owner');

# Fire times continue on each job's grid: anchor + phase + n * period.
sub grid_ok
{
	my ($node, $db, $job, $since) = @_;
	return query($node, qq{
		SELECT count(*) > 0 AND bool_and(extract(epoch FROM r.scheduled_for - j.anchor_at - j.phase)::numeric
		                                 % extract(epoch FROM j.period)::numeric = 0)
		  FROM foreman.job_run r JOIN foreman.job j USING (job_id)
		 WHERE j.job_name = '$job' AND r.started_at >= $since}, $db);
}
is(grid_ok($src, 'restored', 'whoami', $t_restored), 't', 'whoami runs on its own grid after the restore');
is(grid_ok($src, 'restored', 'jittered', $t_restored), 't', 'jittered too, its phase kept');
is( query($src, qq{
		SELECT string_agg(format('%s %s %s', status, reason, scheduled_for = $whoami_next), ',' ORDER BY run_id)
		  FROM (SELECT * FROM foreman.job_run WHERE job_name = 'whoami' AND started_at >= $t_restored
		         ORDER BY run_id LIMIT 2) r}, 'restored'),
	'skipped coalesced t,succeeded  f',
	'the fire times missed since the dump: one skipped row (coalesced) from the dumped next fire time, then one run');
is( query($src, q{SELECT count(*) FROM foreman.job_run r JOIN foreman.job j USING (job_id)
	                WHERE j.job_name = 'paused' AND r.status <> 'skipped'}, 'restored'),
	0, 'the paused job stays paused');
is( query($src, q{SELECT count(*) FROM (SELECT scheduled_for FROM foreman.job_run
	                WHERE job_name = 'whoami' AND status <> 'skipped' AND attempt = 1
	                GROUP BY scheduled_for HAVING count(*) > 1) d}, 'restored'),
	0, 'no fire time runs twice');
query($src, 'DROP DATABASE restored');

# ---------------------------------------------------------------------------
# 3. Another cluster: roles first (less carol and dave), then pg_restore while
#    pg_foreman runs.

my $dst = new_node('dump_dst');
# Other roles first, so that the restored ones get other OIDs than on the source.
query($dst, q{
	CREATE ROLE eve LOGIN IN ROLE foreman_user;
	CREATE ROLE filler1; CREATE ROLE filler2; CREATE ROLE filler3;
});
($ok, $out, $err) = tool($src, 'pg_dumpall', '--roles-only');
ok($ok, 'pg_dumpall --roles-only') or diag($err);
my $superuser = query($src, 'SELECT current_user');
my $roles = join("\n",
	grep { !/\b(carol|dave)\b/ && !/^CREATE ROLE (\Q$superuser\E|foreman_user|foreman_admin|foreman_monitor);$/ } split /\n/, $out);
PostgreSQL::Test::Utils::append_to_file("$tmp/roles.sql", $roles . "\n");
($ok, $out, $err) = psql_file($dst, 'postgres', "$tmp/roles.sql");
ok($ok, 'roles restored (carol and dave left out)') or diag($err);
isnt( query($dst, q{SELECT oid FROM pg_roles WHERE rolname = 'alice'}),
	query($src, q{SELECT oid FROM pg_roles WHERE rolname = 'alice'}),
	'alice has another OID on this cluster');

query($dst, 'CREATE DATABASE app');
my $t_restore = query($dst, q{SELECT quote_literal(clock_timestamp())});
($ok, $out, $err) = tool($dst, 'pg_restore', '--exit-on-error', '-d', 'app', "$tmp/app.dump");
ok($ok, 'pg_restore --exit-on-error of the custom format into another cluster');
is($err, '', 'no error and no warning on restore');
ok(wait_for_leaders($dst, 'app', 3, 30), 'its three tiers lead');

is( query($dst, q{
		SELECT string_agg(format('%s %s %s %s', job_name, owner, enabled, disabled_reason), E'\n' ORDER BY job_id)
		  FROM foreman.jobs WHERE owner::oid = 0}, 'app'),
	join("\n",
		'cleanup - f restored without its owner: role "carol" does not exist on this server',
		'carol_tick - f restored without its owner: role "carol" does not exist on this server',
		'cleanup - f restored without its owner: role "dave" does not exist on this server'),
	'jobs of missing roles: disabled with the reason, owned by no role');
is( query($dst, q{SELECT count(*) FROM foreman.job_run WHERE owner_name IN ('carol', 'dave') AND owner <> 0}, 'app'),
	0, 'their history is owned by no role either');
is( query($dst, q{
		SELECT string_agg(DISTINCT format('%s=%s', o.owner_name, o.owner::regrole), ','
		                  ORDER BY format('%s=%s', o.owner_name, o.owner::regrole))
		  FROM (SELECT owner, owner_name FROM foreman.job UNION ALL SELECT owner, owner_name FROM foreman.job_run
		        UNION ALL SELECT owner, owner_name FROM foreman.maintenance) o
		 WHERE o.owner <> 0}, 'app'),
	"alice=alice,bob=bob,$superuser=$superuser", 'every other owner is mapped by name to its role here');
for my $role ('alice', 'eve')
{
	is( as_role($dst, $role, q{
			SELECT (SELECT count(*) FROM foreman.jobs WHERE owner::oid = 0 OR job_name = 'carol_tick')
			     + (SELECT count(*) FROM foreman.runs WHERE owner::oid = 0)}, 'app'),
		0, "$role sees neither the jobs nor the runs of the missing roles");
}
is( query($dst, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'carol_tick'}, 'app') > 0,
	1, 'a superuser does');
is(query($dst, q{SELECT count(*) FROM foreman.job WHERE job_name = 'cleanup'}, 'app'), 4,
	'four owners, one job name: all four restored');

my $t_dst = query($dst, q{SELECT quote_literal(clock_timestamp())}, 'app');
ok( wait_until($dst, qq{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'whoami' AND status = 'succeeded'
	                     AND started_at >= $t_dst}, 30, db => 'app'),
	'the restored jobs run');
ok( wait_until($dst, qq{SELECT count(*) > 0 FROM public.who WHERE job = 'berlin' AND at >= $t_dst}, 30, db => 'app'),
	'the cron job too');
is( query($dst, qq{
		SELECT string_agg(DISTINCT format('%s:%s', job, usr), ',' ORDER BY format('%s:%s', job, usr))
		  FROM public.who WHERE at >= $t_dst AND job IN ('berlin', 'whoami', 'carol_tick')}, 'app'),
	'berlin:alice,whoami:alice', 'as their owners');
is(query($dst, "SELECT count(*) FROM foreman.job_run WHERE owner_name = 'carol' AND started_at >= $t_restore", 'app'),
	0, 'a job of a missing role never runs');
is(grid_ok($dst, 'app', 'whoami', $t_restore), 't', 'on their own grid');
is( query($dst, qq{SELECT bool_and(extract(second FROM scheduled_for)::int % 2 = 0) FROM foreman.job_run
	                 WHERE job_name = 'berlin' AND started_at >= $t_restore}, 'app'),
	't', 'the cron job on its cron times');
is( query($dst, q{SELECT string_agg(format('%s %s %s', m.kind, m.target, m.owner::regrole), ',' ORDER BY job_id)
	                FROM foreman.maintenance m}, 'app'),
	'expiry sessions alice,purge sessions alice', 'maintenance jobs with their arguments and owner');
is( query($dst, q{SELECT format('%s %s %s %s', retries, retry_backoff, max_failures, start_at IS NOT NULL)
	                FROM foreman.job WHERE job_name = 'flaky'}, 'app'),
	'2 00:00:01 5 f', 'retries and max_failures kept');
is(query($dst, q{SELECT start_at > now() FROM foreman.job WHERE job_name = 'once'}, 'app'), 't',
	'the @once job keeps its start');
is(query($dst, "SELECT count(*) FROM foreman.job_run WHERE started_at < $t_restore", 'app'), $src_runs,
	'the whole history is there, while the restored jobs ran during the restore');

# The missing role is made afterwards: a superuser gives it its jobs back.
query($dst, 'CREATE ROLE carol LOGIN IN ROLE foreman_user');
is(query($dst, q{SELECT foreman.adopt_restored_jobs('carol')}, 'app'), 2, "adopt_restored_jobs('carol'): her two jobs");
is( as_role($dst, 'carol', q{
		SELECT string_agg(format('%s %s', job_name, enabled), ',' ORDER BY job_id) FROM foreman.jobs;
		SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'carol_tick'}, 'app'),
	"cleanup f,carol_tick f
t", 'carol sees them, still disabled, and their history');
is(query($dst, q{SELECT count(*) FROM foreman.job WHERE owner = 0}, 'app'), 1, "dave's job stays without an owner");
my $t_adopt = query($dst, q{SELECT quote_literal(clock_timestamp())}, 'app');
as_role($dst, 'carol', q{SELECT foreman.alter_job('carol_tick', enabled => true)}, 'app');
ok( wait_until($dst, qq{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'carol_tick' AND status = 'succeeded'
	                     AND started_at >= $t_adopt}, 30, db => 'app'),
	'enabled, it runs');
is( query($dst, "SELECT string_agg(DISTINCT usr::text, ',') FROM public.who WHERE job = 'carol_tick' AND at >= $t_adopt",
		'app'),
	'carol', 'as carol');

# ---------------------------------------------------------------------------
# 4. Without history.

query($dst, 'CREATE DATABASE nohist');
my $t_nohist = query($dst, q{SELECT quote_literal(clock_timestamp())});
($ok, $out, $err) = tool($dst, 'pg_restore', '--exit-on-error', '--single-transaction', '-d', 'nohist',
	"$tmp/nohist.dump");
ok($ok, 'restore of a dump made with --exclude-table-data=foreman.job_run');
is($err, '', 'no error and no warning');
is(query($dst, "SELECT count(*) FROM foreman.job_run WHERE started_at < $t_nohist", 'nohist'), 0,
	'no run of the source is there');
is(query($dst, 'SELECT max(job_id) FROM foreman.job', 'nohist'), $src_max_job, 'every job is');
query($dst, 'DROP DATABASE nohist');
query($dst, 'DROP DATABASE app');

# ---------------------------------------------------------------------------
# 5. A database owner that is not a superuser.

query($src, q{CREATE DATABASE owned OWNER alice});
query($src, q{
	CREATE EXTENSION pg_foreman;
	SET ROLE alice; SELECT foreman.schedule('mine', '1 hour', 'SELECT 1'); RESET ROLE;
	SET ROLE bob; SELECT foreman.schedule('his', '1 hour', 'SELECT 1'); RESET ROLE;
}, 'owned');
($ok, $out, $err) = tool($src, 'pg_dump', '-U', 'alice', '-f', "$tmp/owned.sql", 'owned');
ok(!$ok, 'pg_dump by the database owner fails');
like($err, qr/query would be affected by row-level security policy for table "job"/,
	'on the row-level security of foreman.job');
($ok, $out, $err) = tool($src, 'pg_dump', '-U', 'alice', '--enable-row-security', '-f', "$tmp/owned_rls.sql", 'owned');
ok($ok, 'with --enable-row-security it succeeds') or diag($err);
($ok, $out, $err) = tool($src, 'pg_dump', '-U', 'alice', "--exclude-table-data=foreman.*", '-f', "$tmp/owned_none.sql",
	'owned');
ok($ok, "with --exclude-table-data='foreman.*' too") or diag($err);
($ok, $out, $err) = tool($src, 'pg_dump', '-U', 'alice', '-N', 'foreman', '-f', "$tmp/owned_n.sql", 'owned');
ok($ok, 'with -N foreman the dump is made') or diag($err);
query($src, 'CREATE DATABASE owned_n');
($ok, $out, $err) = psql_file($src, 'owned_n', "$tmp/owned_n.sql", '--single-transaction');
like($err, qr/schema "foreman" does not exist/, 'but it does not restore: the extension comes without its schema');
query($src, 'DROP DATABASE owned_n');
for my $case (['owned_rls', 'mine'], ['owned_none', ''])
{
	my ($name, $jobs) = @$case;
	query($src, "CREATE DATABASE $name");
	($ok, $out, $err) = psql_file($src, $name, "$tmp/$name.sql", '--single-transaction');
	ok($ok, "$name: restored by a superuser");
	is($err, '', "$name: no error and no warning");
	is( query($src, q{SELECT coalesce(string_agg(job_name, ',' ORDER BY job_id), '') FROM foreman.job WHERE job_id > 0},
			$name),
		$jobs, $jobs ? "$name: the owner's jobs and no one else's" : "$name: no job");
	query($src, "DROP DATABASE $name");
}

$src->stop;
$dst->stop;
done_testing();
