# 061_update.pl: ALTER EXTENSION pg_foreman UPDATE is a real upgrade path, and
# the library serves a catalog older than itself (issue 13, items 2 and 3).
#
# Needs the coordinators' catalog-version compatibility (main, b7bcae6): a
# library that cannot serve a 1.0 catalog fails at 'a job scheduled at 1.0
# runs' and says so.
#
#  1. A database at VERSION '1.0' under the 1.1 library: the API refuses
#     changes and says why; jobs of every kind (interval, cron in a time
#     zone, @once, expiry and purge, retries, paused, jittered, a job running
#     in its own tier), as 1.0's API wrote them, run.
#  2. ALTER EXTENSION pg_foreman UPDATE while they run, a run going during it:
#     no restart (the postmaster's start time is the same), every job runs
#     on, the run that spanned the update is recorded, and no fire time of
#     the interval and cron jobs is lost or run twice (every fire time from the
#     first to the last is one run row, or counted in one coalesced row).
#  3. The catalog of an updated 1.0, idle (checked first, it needs no
#     coordinator) and after the update under load, equals that of a fresh
#     1.1: pg_dump of the extension's objects, normalised.
#  0. (Before part 1.) The update and DROP EXTENSION never deadlock with the
#     scheduler (the catalog's gate, foreman.tier: forty rounds of create,
#     update and drop as coordinators start and run; and, held foreman
#     tables, every process of pg_foreman waiting for one holds
#     foreman.tier). A leader whose epoch is gone from foreman.tier_lease
#     takes the next one and runs on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use ForemanTest;

my $node = new_node('update');
my $postmaster = query($node, 'SELECT pg_postmaster_start_time()');

query($node, q{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE DATABASE old;
	CREATE DATABASE fresh;
});
query($node, q{CREATE EXTENSION pg_foreman}, 'fresh');
query($node, q{CREATE EXTENSION pg_foreman VERSION '1.0'}, 'old');
is(query($node, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_foreman'}, 'old'), '1.0',
	'database old is at 1.0');

# ---------------------------------------------------------------------------
# The catalog of an extension, to compare. pg_dump writes out an extension's
# objects only in --binary-upgrade mode (otherwise CREATE EXTENSION stands for
# them, and -n foreman alone prints none); OIDs and binary-upgrade calls go.
sub extension_schema
{
	my ($db) = @_;
	my @cmd = (
		$node->installed_command('pg_dump'), '-h', $node->host, '-p', $node->port,
		'--schema-only', '--binary-upgrade', '-e', 'pg_foreman', '-n', 'foreman', $db);
	my ($dump, $dump_err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$dump, '2>', \$dump_err, IPC::Run::timeout(120))
	  or die "pg_dump of $db failed: $dump_err";
	my @lines;
	for (split /\n/, $dump)
	{
		next if /^--/ || /^\s*$/ || /^\\(un)?restrict / || /binary_upgrade_set_/;
		# state, not schema: binary upgrade's relfrozenxid stanzas, sequence values
		next if /^UPDATE pg_catalog\.pg_class$/ || /^SET relfrozenxid = / || /^WHERE oid = /;
		next if /^SELECT pg_catalog\.setval\(/;
		s/(binary_upgrade_create_empty_extension\('pg_foreman', 'foreman', false, '[^']*', )'\{[0-9,]*\}'/$1'{oids}'/;
		push @lines, $_;
	}
	return join("\n", @lines) . "\n";
}

sub schema_is
{
	my ($got, $want, $name) = @_;
	return 1 if is($got eq $want ? 'same' : 'different', 'same', $name);
	my $dir = PostgreSQL::Test::Utils::tempdir;
	PostgreSQL::Test::Utils::append_to_file("$dir/want.sql", $want);
	PostgreSQL::Test::Utils::append_to_file("$dir/got.sql", $got);
	my ($diff, $derr) = ('', '');
	IPC::Run::run(['diff', '-u', "$dir/want.sql", "$dir/got.sql"], '>', \$diff, '2>', \$derr);
	diag($diff);
	return 0;
}

# An idle 1.0, updated, is a fresh 1.1.
query($node, q{CREATE DATABASE idle});
query($node, q{CREATE EXTENSION pg_foreman VERSION '1.0'; ALTER EXTENSION pg_foreman UPDATE}, 'idle');
my $fresh = extension_schema('fresh');
cmp_ok(length($fresh), '>', 10000, 'the dump holds the extension\'s objects');
like($fresh, qr/CREATE TABLE foreman\.job /, 'foreman.job among them');
schema_is(extension_schema('idle'), $fresh, 'an idle 1.0, updated, equals a fresh 1.1');
query($node, q{DROP DATABASE idle});

# The update and DROP EXTENSION never deadlock with the scheduler. A
# database's coordinators start as CREATE EXTENSION commits, and their first
# transaction reads foreman.job_run (runs a crash left), then foreman.tier;
# the update alters foreman.tier, then foreman.job_run: "deadlock detected"
# (in about one run of this file in three, and about one round below in
# thirty, before the catalog's gate, src/bgw/statements.hpp). Forty rounds:
# CREATE EXTENSION at 1.0, at once the update as the coordinators start,
# then DROP EXTENSION as they run.
query($node, q{CREATE DATABASE race});
my ($race_failures, $race_led) = ('', 0);
for my $round (1 .. 40)
{
	for my $sql (q{CREATE EXTENSION pg_foreman VERSION '1.0'}, q{ALTER EXTENSION pg_foreman UPDATE},
		q{DROP EXTENSION pg_foreman})
	{
		# DROP EXTENSION once the coordinators lead (and run: they have
		# their first cycle to record), so that it meets them too.
		$race_led += wait_for_leaders($node, 'race', 2, 30) if $sql =~ /^DROP/;
		my ($ret, $out, $err) = $node->psql('race', "SET lock_timeout = '60s'; $sql");
		$race_failures .= "round $round, $sql: $err\n" if $ret != 0;
	}
}
is($race_failures, '', 'forty updates as coordinators start, and forty drops as they run: no deadlock, no error');
is($race_led, 40, 'the coordinators led in each round before the drop');

# The gate itself, which the rounds above meet only by chance: while a
# session holds a foreman table, every process of pg_foreman that waits for
# it holds foreman.tier already (ACCESS SHARE, taken first), so an update,
# which takes foreman.tier first, cannot be waiting for it. Jobs every second
# in a sequential and a parallel tier (a coordinator's and the executors'
# transactions); foreman.job_run and foreman.job held in turn, 4 s each.
#
# pg_locks is not one atomic picture: it reads each process's fast-path locks
# (foreman.tier's ACCESS SHARE is one) before the shared lock table (where a
# wait is), and a waiter's transaction ends at its 1 s lock_timeout, its
# locks with it. A transaction seen waiting in one sample might have taken
# foreman.tier after its fast-path slots were read, or ended between two
# reads. So each sample reads pg_locks once, and a transaction is judged in
# a sample only when it was seen waiting in the sample before as well: it
# was then alive, and waiting, from before this sample began reading to
# after it ended, and so held foreman.tier throughout when it took it first.
# A build without the gate waits up to 1 s for the table without holding
# foreman.tier: dozens of consecutive samples.
query($node, q{CREATE EXTENSION pg_foreman}, 'race');
query($node, q{
	SELECT foreman.create_tier('par', '1 second', concurrency => 4);
	SELECT count(foreman.schedule('seq' || g, '1 second', 'SELECT 1', tier => 'fast')) FROM generate_series(1, 5) g;
	SELECT count(foreman.schedule('par' || g, '1 second', 'SELECT 1', tier => 'par')) FROM generate_series(1, 8) g;
}, 'race');
ok(wait_until($node, q{SELECT count(DISTINCT job_name) = 13 FROM foreman.runs WHERE status = 'succeeded'}, 30, db => 'race'),
	'the jobs of both tiers run');
for my $table (qw(job_run job))
{
	my $holder = session($node, db => 'race');
	$holder->query(qq{BEGIN; LOCK TABLE foreman.$table IN ACCESS EXCLUSIVE MODE; SELECT 1;});
	my (%waiters, %judged, @without_gate, %before);
	my $until = time() + 4;
	while (time() < $until)
	{
		my %now;
		for my $row (split /
/, query($node, qq{
			WITH l AS MATERIALIZED (SELECT * FROM pg_locks)
			SELECT w.virtualtransaction || ' ' || w.pid || ' ' || a.backend_type || ' ' ||
			       EXISTS (SELECT 1 FROM l h WHERE h.virtualtransaction = w.virtualtransaction AND h.granted
			                  AND h.database = w.database AND h.relation = 'foreman.tier'::regclass)
			  FROM l w JOIN pg_stat_activity a ON a.pid = w.pid
			 WHERE w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			   AND w.relation = 'foreman.$table'::regclass AND NOT w.granted
			   AND a.backend_type LIKE 'pg_foreman %'}, 'race'))
		{
			my ($vxid, $pid, $type, $holds) = $row =~ m{^(\S+) (\d+) (.*) (true|false)$} or die "unexpected row: $row";
			$now{$vxid} = 1;
			$waiters{$type}++;
			next unless $before{$vxid};
			$judged{$type}++;
			push @without_gate, "$pid ($type, transaction $vxid)" if $holds ne 'true';
		}
		%before = %now;
		usleep(20_000);
	}
	$holder->query('ROLLBACK');
	$holder->close;
	ok(keys %judged > 0, "processes of pg_foreman waited for foreman.$table: "
		  . join(', ', map { "$_ x$waiters{$_} (judged " . ($judged{$_} // 0) . ')' } sort keys %waiters));
	is(join(', ', @without_gate), '', "each of them held foreman.tier as it waited for foreman.$table");
}

# A leader whose epoch is gone from foreman.tier_lease (as when the extension
# was dropped and created again while it led, which the rounds above did to a
# coordinator now and then: it went on with the old table's epoch) takes the
# next epoch, holding the leadership lock, and runs on. Before, it took each
# due job for one whose owner held its row, and ran nothing again. The next
# epoch is a new term, as when a coordinator starts leading: its @reboot jobs
# run once (after a DROP and CREATE EXTENSION, those of the new catalog,
# which a surviving coordinator did not run before).
my $log_offset = -s $node->logfile;
query($node, q{SELECT foreman.schedule('boot', '@reboot', 'SELECT 1', tier => 'fast')}, 'race');
my $t0 = query($node, q{SELECT now()}, 'race');
query($node, q{DELETE FROM foreman.tier_lease WHERE tier_id = (SELECT tier_id FROM foreman.tier WHERE name = 'fast')},
	'race');
ok( wait_until($node, qq{SELECT count(*) >= 10 FROM foreman.runs WHERE job_name LIKE 'seq%' AND started_at > '$t0'}, 30,
		db => 'race'),
	'after its epoch was deleted, the leader of tier fast runs its jobs on');
ok(wait_until($node, q{SELECT count(*) > 0 FROM foreman.runs WHERE job_name = 'boot'}, 30, db => 'race'),
	'its new term ran the @reboot job');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'boot'}, 'race'), 1,
	'once, while the jobs every second ran ten times and more');
like(slurp_file($node->logfile, $log_offset), qr/coordinator race\/fast: its epoch \d+ is no longer the tier's in foreman\.tier_lease; it holds the leadership lock and takes the next epoch/,
	'and says why it took the next epoch');

# Only the extension's owner (or a superuser) takes the gate first: another
# role's DROP EXTENSION or update fails its permission check at once, even
# while a session reads foreman.tier (taking the gate, it would wait for that
# reader, and the scheduler's transactions would wait behind it).
my $reader = session($node, db => 'race');
$reader->query('BEGIN; SELECT count(*) FROM foreman.tier;');
for my $sql ('DROP EXTENSION pg_foreman', 'ALTER EXTENSION pg_foreman UPDATE')
{
	my ($ret, $out, $err) =
	  $node->psql('race', "SET statement_timeout = '5s'; $sql", extra_params => [ '-U', 'alice' ]);
	like($err, qr/must be owner of extension pg_foreman/, "alice's $sql fails its permission check at once");
}
$reader->query('ROLLBACK');
$reader->close;
query($node, q{DROP DATABASE race});

# ---------------------------------------------------------------------------
# 1. Jobs of every kind at 1.0. The 1.1 library refuses changes to a 1.0
#    catalog (jobs keep running; changes wait for the update), so the jobs
#    are made by the API in a 1.1 database, in a transaction that is rolled
#    back, and their rows (1.0's columns: what 1.0's API wrote) are copied.

# Ends the test with a clear message while the 1.1 library cannot serve 1.0.
sub needs_compat
{
	diag('the 1.1 library does not serve a 1.0 catalog: see the head of this file');
	$node->stop;
	done_testing();
	exit;
}

my $tables = q{
	CREATE TABLE public.ticks (job text, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON public.ticks TO alice;
	CREATE TABLE public.sessions (id int PRIMARY KEY, status text, created_at timestamptz);
	INSERT INTO public.sessions SELECT g, 'open', now() - interval '2 hours' FROM generate_series(1, 10000) g;
	ALTER TABLE public.sessions OWNER TO alice;
};
query($node, q{CREATE DATABASE maker});
query($node, q{CREATE EXTENSION pg_foreman}, 'maker');
query($node, $tables, $_) for ('maker', 'old');

my ($ret, $out, $err) = $node->psql('old', q{SET ROLE alice; SELECT foreman.schedule('x', '1 hour', 'SELECT 1')});
like($err, qr/catalog in this database is version 1\.0; its library is 1\.1/,
	'at 1.0 the API refuses changes, and says why');

sub columns_of
{
	my ($table) = @_;
	return query($node, qq{SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
	                        WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
	                          AND attgenerated = ''}, 'old');
}
my $job_cols = columns_of('foreman.job');
my $maint_cols = columns_of('foreman.maintenance');
my $rows = query($node, qq{
	BEGIN;
	SET client_min_messages = warning;
	CREATE TEMP TABLE made AS SELECT foreman.create_tier('long', '1 second') AS id;
	SET ROLE alice;
	DO \$do\$ BEGIN
	PERFORM foreman.schedule('tick', '1 second', \$\$INSERT INTO public.ticks VALUES ('tick')\$\$, tier => 'fast');
	PERFORM foreman.schedule('cron2', '*/2 * * * * *', \$\$INSERT INTO public.ticks VALUES ('cron2')\$\$,
	                         time_zone => 'America/New_York', tier => 'fast');
	PERFORM foreman.schedule('jittered', '2 seconds', 'SELECT 1', jitter => '1 second', tier => 'fast');
	PERFORM foreman.schedule('flaky', '3 seconds', 'SELECT 1/0', retries => 1, retry_backoff => '1 second',
	                         tier => 'fast');
	PERFORM foreman.schedule('paused', '1 second', 'SELECT 1', enabled => false, tier => 'fast');
	PERFORM foreman.schedule('once_soon', '\@once', 'SELECT 1', start_at => now() + interval '3 seconds');
	PERFORM foreman.schedule('once_later', '\@once', 'SELECT 1', start_at => now() + interval '1 day');
	PERFORM foreman.schedule_expiry('expire', 'public.sessions', '1 hour', schedule => '2 seconds',
	                                batch_size => 100, max_batches => 2, tier => 'fast');
	PERFORM foreman.schedule_purge('purge', 'public.sessions', 'created_at', '1 hour', schedule => '2 seconds',
	                               batch_size => 10, max_batches => 1, tier => 'fast');
	PERFORM foreman.schedule('sleeper', '4 seconds', 'SELECT pg_sleep(2)', tier => 'long');
	END \$do\$;
	RESET ROLE;
	SELECT 'tier ' || id FROM made;
	COPY (SELECT $job_cols FROM foreman.job WHERE job_id > 0 ORDER BY job_id) TO STDOUT;
	SELECT '--maintenance--';
	COPY (SELECT $maint_cols FROM foreman.maintenance ORDER BY job_id) TO STDOUT;
	ROLLBACK;}, 'maker');
query($node, 'DROP DATABASE maker');
my ($tier_line, $copied) = split /\n/, $rows, 2;
my ($job_rows, $maint_rows) = split /^--maintenance--\n/m, $copied;
s/\n+\z// for ($job_rows, $maint_rows);
my ($tier_id) = $tier_line =~ /^tier (\d+)$/ or die "no tier id in: $tier_line";
query($node, qq{
	INSERT INTO foreman.tier (tier_id, name, tick) VALUES ($tier_id, 'long', '1 second');
	SELECT setval(pg_get_serial_sequence('foreman.tier', 'tier_id'), $tier_id);
	COPY foreman.job ($job_cols) FROM STDIN;
$job_rows
\\.
	COPY foreman.maintenance ($maint_cols) FROM STDIN;
$maint_rows
\\.
	SELECT setval(pg_get_serial_sequence('foreman.job', 'job_id'), max(job_id)) FROM foreman.job;
}, 'old');
is( query($node, q{SELECT string_agg(job_name, ',' ORDER BY job_id) FROM foreman.job WHERE job_id > 0}, 'old'),
	'tick,cron2,jittered,flaky,paused,once_soon,once_later,expire,purge,sleeper', 'at 1.0: jobs of every kind');

my %runs_before = (tick => 3, cron2 => 2, jittered => 2, flaky => 2, expire => 2, purge => 2, sleeper => 1);
ok( wait_until($node, q{SELECT count(*) > 0 FROM foreman.job_run WHERE job_name = 'tick' AND status = 'succeeded'},
		20, db => 'old'),
	'a job scheduled at 1.0 runs')
  or needs_compat();
like(slurp_file($node->logfile), qr/pg_foreman: catalog version 1\.0 in database \d+; bookkeeping follows it/,
	'the server log says which catalog the bookkeeping follows');
for my $job (sort keys %runs_before)
{
	ok( wait_until($node, qq{SELECT count(*) >= $runs_before{$job} FROM foreman.job_run WHERE job_name = '$job'
		                       AND status IN ('succeeded', 'failed')}, 30, db => 'old'),
		"at 1.0: $job ran $runs_before{$job} times");
}

# ---------------------------------------------------------------------------
# 2. The update, while a run is going.

ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.job_run WHERE job_name = 'sleeper' AND status = 'running'},
		30, db => 'old'),
	'sleeper is running');
my $spanning = query($node, q{SELECT run_id FROM foreman.job_run WHERE job_name = 'sleeper' AND status = 'running'},
	'old');
my $t_update = query($node, q{SELECT quote_literal(clock_timestamp())}, 'old');
($ret, $out, $err) = $node->psql('old', q{SET statement_timeout = '60s'; ALTER EXTENSION pg_foreman UPDATE},
	on_error_stop => 1);
is($ret, 0, 'ALTER EXTENSION pg_foreman UPDATE while jobs run') or diag($err);
is($err, '', 'without an error or a warning');
is(query($node, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_foreman'}, 'old'), '1.1',
	'database old is at 1.1');
my $t_updated = query($node, q{SELECT quote_literal(clock_timestamp())}, 'old');
is(query($node, 'SELECT pg_postmaster_start_time()'), $postmaster, 'no restart');

for my $job (sort keys %runs_before)
{
	ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.job_run WHERE job_name = '$job'
		                       AND status IN ('succeeded', 'failed') AND started_at > $t_updated}, 30, db => 'old'),
		"after the update: $job runs on");
}
ok( wait_until($node, "SELECT status FROM foreman.job_run WHERE run_id = $spanning", 30, db => 'old',
		expected => 'succeeded'),
	'the run that was going during the update is recorded succeeded');
is( query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'flaky' AND attempt = 2
	                  AND started_at > } . $t_updated, 'old') > 0,
	1, 'retries go on');
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name IN ('paused', 'once_later')}, 'old'), 0,
	'the paused job and the later @once job never ran');
is(query($node, q{SELECT count(*) FROM foreman.job_run WHERE job_name = 'once_soon'}, 'old'), 1,
	'the @once job ran once');
is( query($node, q{SELECT count(*) FROM foreman.job j JOIN pg_roles r ON r.oid = j.owner
	                WHERE j.owner_name IS DISTINCT FROM r.rolname}, 'old'),
	0, 'every job has its owner_name');

# Every fire time from the first to the last is one run row or counted in one
# folded row ('N fire times from ... to ...'); no fire time runs twice.
for my $job ('tick', 'cron2', 'jittered', 'expire', 'purge')
{
	is( query($node, qq{
			WITH r AS (
			    SELECT r.scheduled_for, r.status,
			           coalesce(substring(r.message from '^(\\d+) fire times from')::int, 1) AS n
			      FROM foreman.job_run r WHERE r.job_name = '$job' AND r.attempt = 1),
			p AS (SELECT coalesce(period, interval '2 seconds') AS period FROM foreman.job WHERE job_name = '$job')
			SELECT format('%s %s %s',
			              sum(n) = round(extract(epoch FROM max(scheduled_for) - min(scheduled_for))
			                             / extract(epoch FROM (SELECT period FROM p)))::int + 1,
			              count(*) = count(DISTINCT scheduled_for),
			              min(scheduled_for) < $t_update AND max(scheduled_for) > $t_updated)
			  FROM r}, 'old'),
		't t t', "$job: no fire time lost or run twice across the update");
}

# ---------------------------------------------------------------------------
# 3. The 1.0 updated under load is a fresh 1.1 as well.
schema_is(extension_schema('old'), $fresh, 'the updated 1.0 equals a fresh 1.1');

$node->stop;
done_testing();
