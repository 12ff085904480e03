# 070_timeline.pl: foreman.timeline_svg() of real runs, checked by real tools.
#
# Two roles run jobs in a sequential tier and a parallel one, in a UTF8
# database; one job's name has markup, quotes and non-ASCII letters. Then:
#  - each role's picture is well-formed XML by xmllint (libxml2-utils), has
#    exactly one bar per run that role may see (the run ids match
#    foreman.runs read as that role), and neither the ids nor the names of
#    the other role's runs;
#  - the document is ASCII (non-ASCII letters are character references) and
#    the odd name reads back intact through the XML parser;
#  - a parallel tier has a lane per executor process;
#  - a real renderer (rsvg-convert, librsvg2-bin) draws it to a non-empty PNG.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

for my $tool ('xmllint', 'rsvg-convert')
{
	system("command -v $tool >/dev/null 2>&1") == 0
	  or BAIL_OUT("$tool is missing: make deps (scripts/deps.sh test) installs libxml2-utils and librsvg2-bin");
}

my $node = new_node('timeline');
my $db = 'obs';
query($node, qq{CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'});
query($node, 'CREATE EXTENSION pg_foreman', $db);
ok(wait_for_leaders($node, $db, 2), 'the UTF8 database has its coordinators');

my $odd = qq{bob's <b>"caf\x{e9} \x{65e5}\x{672c}"</b> & co};
my $odd_sql = $odd =~ s/'/''/gr;
utf8::encode($odd_sql);
query($node, qq{
	CREATE ROLE alice LOGIN IN ROLE foreman_user;
	CREATE ROLE bob LOGIN IN ROLE foreman_user;
	SELECT foreman.create_tier('par', '1 second', concurrency => 2);
	SET ROLE alice;
	SELECT foreman.schedule('alice_quick', '1 second', 'SELECT 1');
	SELECT foreman.schedule('alice_fails', '1 second', 'SELECT 1/0');
	SELECT foreman.schedule('alice_a', '1 second', 'SELECT pg_sleep(0.4)', tier => 'par');
	SELECT foreman.schedule('alice_b', '1 second', 'SELECT pg_sleep(0.4)', tier => 'par');
	SET ROLE bob;
	SELECT foreman.schedule('$odd_sql', '1 second', 'SELECT 2');
	SELECT foreman.schedule('bob_par', '1 second', 'SELECT pg_sleep(0.2)', tier => 'par');
}, $db);
ok( wait_until(
		$node,
		q{SELECT count(DISTINCT job_id) = 6 AND bool_and(n >= 3) FROM
		    (SELECT job_id, count(*) AS n FROM foreman.job_run WHERE status <> 'running' GROUP BY job_id) r},
		60,
		db => $db),
	'every job ran at least three times');

# Stop the runs, then freeze the window once nothing runs any more.
query($node, q{
	SELECT foreman.alter_tier('fast', enabled => false), foreman.alter_tier('par', enabled => false);
}, $db);
ok(wait_until($node, q{SELECT NOT EXISTS (SELECT FROM foreman.job_run WHERE status = 'running')}, 30, db => $db),
	'no run is running');
my ($since, $until) = split /\|/, query($node,
	q{SELECT min(started_at) - interval '1 second', now() FROM foreman.job_run}, $db);

my $dir = PostgreSQL::Test::Utils::tempdir;

# The picture as a role sees it, through psql as a person would make it.
sub picture
{
	my ($role) = @_;
	my $file = "$dir/$role.svg";
	my ($ret, $out, $err) = $node->psql($db,
		"SELECT foreman.timeline_svg('$since', '$until')",
		extra_params => [ '-U', $role, '-At', '-o', $file ]);
	is($ret, 0, "$role: timeline_svg runs") or diag($err);
	return $file;
}

sub xpath
{
	my ($file, $expr) = @_;
	my $out = `xmllint --xpath "$expr" $file 2>&1`;
	return $out;
}

sub bar_ids
{
	my ($file) = @_;
	my $out = xpath($file, q{//*[local-name()='rect'][@class='run']/@data-run-id});
	return join(',', sort { $a <=> $b } ($out =~ /data-run-id="(\d+)"/g));
}

my $superuser = query($node, 'SELECT current_user', $db);
my %svg;
for my $role ('alice', 'bob', $superuser)
{
	$svg{$role} = picture($role);
	my $lint = `xmllint --noout $svg{$role} 2>&1`;
	is($?, 0, "$role: well-formed XML (xmllint)") or diag($lint);
	my $visible = $node->safe_psql($db,
		qq{SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM foreman.runs
		    WHERE coalesce(finished_at, 'infinity') >= '$since' AND started_at < '$until'},
		extra_params => [ '-U', $role ]);
	isnt($visible, '', "$role sees runs");
	is(bar_ids($svg{$role}), $visible, "$role: one bar per run the role may see");
}

my $bob_runs = query($node, q{SELECT string_agg(run_id::text, ',') FROM foreman.job_run WHERE owner = 'bob'::regrole}, $db);
my %in_alice = map { $_ => 1 } split /,/, bar_ids($svg{alice});
is(scalar(grep { $in_alice{$_} } split /,/, $bob_runs), 0, "none of bob's runs in alice's picture");
my $alice_text = slurp_file($svg{alice});
unlike($alice_text, qr/bob/, "alice's picture never names bob or his jobs");
like($alice_text, qr/alice_fails \(alice\): failed: 22012 division by zero/, 'a failed run says why in its tooltip');

# Non-ASCII letters are character references; the name reads back intact.
my $bob_text = slurp_file($svg{bob});
unlike($bob_text, qr/[^\x00-\x7f]/, 'the document is ASCII');
like($bob_text, qr/caf&#233; &#26085;&#26412;/, 'non-ASCII letters are character references');
# The first lane is tier fast, where bob's only job is the odd one.
my $title = xpath($svg{bob}, q{string((//*[local-name()='rect'][@class='run'][@y='68']/*[local-name()='title'])[1])});
utf8::decode($title);
like($title, qr/^\Q$odd\E \(bob\): succeeded/, 'the odd job name reads back intact from the XML');

# A lane per executor of the parallel tier (and the tiers around it).
my $lanes = xpath($svg{$superuser}, q{//*[local-name()='text'][@class='lane']/text()});
like($lanes, qr{^fast\s*slow\s*(par / pid \d+\s*){2,}$}, 'a lane per tier, one per executor in tier par')
  or diag($lanes);

# A real renderer draws it.
my $png = "$dir/timeline.png";
my $render = `rsvg-convert -o $png $svg{$superuser} 2>&1`;
is($?, 0, 'rsvg-convert renders the picture') or diag($render);
ok(-s $png > 1000, 'the PNG is not empty (' . (-s $png) . ' bytes)');
open(my $fh, '<:raw', $png) or die;
read($fh, my $magic, 8);
close($fh);
is($magic, "\x89PNG\r\n\x1a\n", 'it is a PNG');

$node->stop;
done_testing();
