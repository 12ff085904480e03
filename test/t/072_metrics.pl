# 072_metrics.pl: doc/postgres_exporter.yaml against foreman.metrics.
#
#  - Every query of the file runs as a foreman_monitor member (the role the
#    README tells the exporter to use), returns exactly the columns the file
#    declares, and returns rows: each metric is there.
#  - Counters keep counting when the history is trimmed.
#  - When Debian's prometheus-postgres-exporter is installed, it is started
#    with the file and scraped: the samples carry the jobs' names and the
#    values foreman.metrics has. (It is not a dependency: without it that
#    part is skipped.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run;
use Time::HiRes qw(usleep);
use ForemanTest;

# scripts/test.sh stages doc/postgres_exporter.yaml beside t/.
my $yaml_file = "$ENV{TESTDIR}/doc/postgres_exporter.yaml";
ok(-f $yaml_file, 'doc/postgres_exporter.yaml is staged') or BAIL_OUT("no $yaml_file");

# The file's queries: a top-level key, a "query: |" block, "- column:" with a usage.
my (%queries, @order, $current, $in_query);
for my $line (split /\n/, slurp_file($yaml_file))
{
	next if $line =~ /^\s*#/;
	if ($line =~ /^(\w+):\s*$/) { $current = $1; push @order, $1; $in_query = 0; next; }
	next unless $current;
	if ($line =~ /^  query: \|\s*$/) { $in_query = 1; next; }
	if ($in_query && $line =~ /^    (.+)$/) { $queries{$current}{sql} .= "$1\n"; next; }
	$in_query = 0;
	push @{ $queries{$current}{columns} }, $1 if $line =~ /^    - (\w+):\s*$/;
	$queries{$current}{usage}[ $#{ $queries{$current}{columns} } ] = $1 if $line =~ /^\s+usage: "(\w+)"/;
}
cmp_ok(scalar(@order), '>=', 5, 'the file has its queries');

my $node = new_node('metrics');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');
query($node, q{
	CREATE ROLE exporter LOGIN IN ROLE foreman_monitor;
	CREATE ROLE app LOGIN IN ROLE foreman_user;
	SET ROLE app;
	SELECT foreman.schedule('app_ok', '1 second', 'SELECT 1');
	SELECT foreman.schedule('app "fails"', '1 second', 'SELECT 1/0');
});
ok(wait_until($node, q{SELECT runs_succeeded >= 3 FROM foreman.job WHERE job_name = 'app_ok'}, 30),
	'app_ok ran three times');
ok(wait_until($node, q{SELECT runs_failed >= 3 FROM foreman.job WHERE job_name = 'app "fails"'}, 30),
	'the failing job failed three times');

for my $name (@order)
{
	my $q = $queries{$name};
	my $out = $node->safe_psql('postgres', $q->{sql}, extra_params => [ '-U', 'exporter', '-A', '-F', '|', '-P', 'tuples_only=off', '-P', 'footer=off' ]);
	my ($header, @rows) = split /\n/, $out;
	is($header, join('|', @{ $q->{columns} }), "$name: the columns the file declares");
	cmp_ok(scalar(@rows), '>', 0, "$name: rows for a foreman_monitor member");
	my @values = grep { $q->{usage}[$_] ne 'LABEL' } 0 .. $#{ $q->{columns} };
	ok(@values > 0 && !grep({ my $r = $_; grep { (split /\|/, $r, -1)[$_] eq '' } @values } @rows),
		"$name: every sample has a value");
}

# Counters: trimming the history takes nothing from them.
my $before = query($node, q{SELECT value FROM foreman.metrics WHERE metric = 'foreman_job_runs_total'
                             AND labels ->> 'job' = 'app_ok' AND labels ->> 'status' = 'succeeded'});
query($node, q{DELETE FROM foreman.job_run WHERE job_name = 'app_ok'});
my $after = query($node, q{SELECT value FROM foreman.metrics WHERE metric = 'foreman_job_runs_total'
                            AND labels ->> 'job' = 'app_ok' AND labels ->> 'status' = 'succeeded'});
cmp_ok($after, '>=', $before, "app_ok's succeeded counter does not drop with its history ($before, then $after)");

SKIP:
{
	my $exporter = `command -v prometheus-postgres-exporter 2>/dev/null`;
	chomp $exporter;
	skip 'prometheus-postgres-exporter is not installed (Debian: prometheus-postgres-exporter)', 4 unless $exporter;

	query($node, q{SELECT foreman.alter_tier('fast', enabled => false)});    # the values stand still
	ok(wait_until($node, q{SELECT NOT EXISTS (SELECT FROM foreman.job_run WHERE status = 'running')}, 30),
		'nothing runs');
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my ($out, $err) = ('', '');
	local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=exporter dbname=postgres sslmode=disable',
		$node->host, $node->port);
	my $h = IPC::Run::start(
		[ $exporter, "--extend.query-path=$yaml_file", "--web.listen-address=127.0.0.1:$port",
		  '--disable-default-metrics', '--disable-settings-metrics' ],
		'>', \$out, '2>', \$err);
	my $http = HTTP::Tiny->new(timeout => 5);
	my $page = '';
	for (1 .. 100)    # bounded: 10 s for the exporter to listen
	{
		my $r = $http->get("http://127.0.0.1:$port/metrics");
		if ($r->{success} && $r->{content} =~ /^foreman_tier_leader/m) { $page = $r->{content}; last; }
		usleep(100_000);
	}
	$h->signal('TERM');
	$h->finish;
	like($page, qr/^foreman_job_runs_total\{[^}]*job="app \\"fails\\""[^}]*status="failed"[^}]*\} (\d+)$/m,
		'the exporter serves the failing job\'s counter, its name escaped') or diag("exporter stderr: $err");
	my ($scraped) = $page =~ /^foreman_job_runs_total\{[^}]*job="app_ok"[^}]*status="succeeded"[^}]*\} (\S+)$/m;
	my $expected = query($node, q{SELECT value FROM foreman.metrics WHERE metric = 'foreman_job_runs_total'
	                               AND labels ->> 'job' = 'app_ok' AND labels ->> 'status' = 'succeeded'});
	is($scraped, $expected, 'the scraped counter is the value foreman.metrics has');
	like($page, qr/^foreman_tier_lag_seconds\{[^}]*tier="slow"[^}]*\} \S+$/m, 'tier samples are served');
}

$node->stop;
done_testing();
