# 034_many_databases.pl: several databases (issue 5, item 6).
#
# Three databases with the extension (postgres, db_b, db_c) and one without
# (plain):
#  - each of the three gets its own two coordinators, connected to it and
#    named after it, leading its own tiers; plain gets none;
#  - their jobs run independently: each job runs in its own database, and a
#    long job blocking db_b's tier fast does not delay the fast tiers of the
#    others;
#  - DROP EXTENSION in db_b (while a job runs there) stops only db_b's
#    coordinators, promptly; the others keep their processes and run on;
#  - DROP DATABASE db_c while its coordinators run a job succeeds at once and
#    stops only db_c's coordinators.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time);

my $node = new_node('manydb');
query($node, $_) for ('CREATE DATABASE db_b', 'CREATE DATABASE db_c', 'CREATE DATABASE plain');
query($node, 'CREATE EXTENSION pg_foreman', $_) for ('db_b', 'db_c');
my @with = ('postgres', 'db_b', 'db_c');

for my $db (@with)
{
	ok(wait_for_leaders($node, $db, 2, 10), "$db: both tiers lead");
}
sub coord_pids
{
	my ($db) = @_;
	return query($node, qq{SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity
	                        WHERE backend_type = 'pg_foreman coordinator' AND datname = '$db'});
}
for my $db (@with)
{
	is( query($node, qq{SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_activity
	                     WHERE backend_type = 'pg_foreman coordinator' AND datname = '$db'}),
		"pg_foreman coordinator $db/fast,pg_foreman coordinator $db/slow",
		"$db: two coordinators of its own, connected to it");
	is( query($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM foreman.tier_status WHERE leader}, $db),
		coord_pids($db), "$db: they are the leaders its tier_status shows");
}
is(coordinator_count($node), 6, 'six coordinators in all');
is(coordinator_count($node, 'plain'), 0, 'plain, without the extension, has no coordinator');
ok( wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_foreman scout'}, 10),
	'no scout lingers');

# ---------------------------------------------------------------------------
# Independent jobs.

for my $db (@with)
{
	query($node, q{
		CREATE TABLE hits (db name, at timestamptz DEFAULT clock_timestamp());
		SELECT foreman.schedule('beat', '1 second', 'INSERT INTO hits (db) VALUES (current_database())', tier => 'fast');
	}, $db);
}
for my $db (@with)
{
	ok( wait_until($node, q{SELECT count(*) >= 3 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'}, 10, db => $db),
		"$db: its job runs");
	is(query($node, q{SELECT string_agg(DISTINCT db, ',') FROM hits}, $db), $db, "$db: in its own database");
	is( query($node, q{SELECT string_agg(DISTINCT pid::text, ',') = (SELECT pid::text FROM foreman.tier_status WHERE tier = 'fast' AND leader)
	                   FROM foreman.runs WHERE job_name = 'beat'}, $db),
		't', "$db: by its own fast coordinator");
}

# A long job holds db_b's fast tier; the others' fast tiers go on.
query($node, q{SELECT foreman.schedule('hog', '1 hour', 'SELECT pg_sleep(120)', tier => 'fast')}, 'db_b');
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'hog' AND status = 'running'}, 10, db => 'db_b'),
	'db_b: hog occupies tier fast');
my %t_hog = map { $_ => query($node, q{SELECT quote_literal(clock_timestamp())}, $_) } @with;
for my $db ('postgres', 'db_c')
{
	ok( wait_until($node, qq{SELECT count(*) >= 3 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
	                           AND started_at > $t_hog{$db}}, 6, db => $db),
		"$db: its fast tier runs on while db_b's is occupied");
}
is( query($node, qq{SELECT count(*) FROM foreman.runs WHERE job_name = 'beat' AND started_at > $t_hog{db_b}}, 'db_b'),
	0, 'db_b: its own fast tier is busy with hog (one job at a time)');

# ---------------------------------------------------------------------------
# DROP EXTENSION in db_b, while hog runs.

my %pids = map { $_ => coord_pids($_) } @with;
my $t0 = time();
query($node, 'DROP EXTENSION pg_foreman', 'db_b');
note(sprintf('DROP EXTENSION took %.2f s', time() - $t0));
my ($ok, $took) = wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity
                                       WHERE backend_type = 'pg_foreman coordinator' AND datname = 'db_b'}, 5);
ok($ok, 'DROP EXTENSION stops the coordinators of db_b (one of them inside a job)');
note(sprintf('db_b coordinators gone %.2f s after DROP EXTENSION', $took));
for my $db ('postgres', 'db_c')
{
	is(coord_pids($db), $pids{$db}, "$db: its coordinators are untouched");
	my $t = query($node, q{SELECT quote_literal(clock_timestamp())}, $db);
	ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
	                           AND started_at > $t}, 5, db => $db),
		"$db: its jobs run on");
}
is(coordinator_count($node), 4, 'four coordinators left');
is(coordinator_count($node, 'plain'), 0, 'still none for plain');

# ---------------------------------------------------------------------------
# DROP DATABASE db_c while its coordinators run a job.

query($node, q{SELECT foreman.schedule('c_sleeper', '1 hour', 'SELECT pg_sleep(120)', tier => 'slow')}, 'db_c');
ok( wait_until($node, q{SELECT count(*) = 1 FROM foreman.runs WHERE job_name = 'c_sleeper' AND status = 'running'}, 10, db => 'db_c'),
	'db_c: a job runs');
$t0 = time();
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db_c');
my $drop_took = time() - $t0;
note(sprintf('DROP DATABASE took %.2f s', $drop_took));
is($ret, 0, 'DROP DATABASE db_c succeeds') or diag($err);
cmp_ok($drop_took, '<', 5, 'within 5 s');
is(query($node, q{SELECT count(*) FROM pg_database WHERE datname = 'db_c'}), 0, 'db_c is gone');
ok(wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'db_c'}, 5), 'nothing is connected to it');
is(coord_pids('postgres'), $pids{postgres}, 'postgres: its coordinators are untouched');
my $t = query($node, q{SELECT quote_literal(clock_timestamp())});
ok( wait_until($node, qq{SELECT count(*) >= 2 FROM foreman.runs WHERE job_name = 'beat' AND status = 'succeeded'
                           AND started_at > $t}, 5),
	'postgres: its jobs run on');
is(coordinator_count($node), 2, 'only the two coordinators of postgres are left');
is(coordinator_count($node, 'plain'), 0, 'and none for plain');
is(query($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_foreman launcher'}), 1, 'the launcher stays');

$node->stop;
done_testing();
