# An idle tier's tick reads its state and nothing else (src/bgw/README.md,
# "A cycle reads the tier's state first").
#
# Two tiers ticking every second, a sequential one and a parallel one, each
# with a job whose first fire time is an hour away; the built-in tiers are
# disabled, so that only these two coordinators read the catalog. While they
# tick, pg_stat_statements (track = all: the coordinators' SPI statements are
# nested) counts the tier's state read at every tick and the due jobs' read
# never. run_now then makes a job due: the due jobs are read and the job runs
# (so the count of zero before is not a statement pg_stat_statements missed).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node(
	'idle_tick', extra_conf => <<'EOC');
shared_preload_libraries = 'pg_foreman,pg_stat_statements'
pg_stat_statements.track = all
EOC
ok(wait_for_leaders($node, 'postgres', 2), 'the built-in tiers have leaders');

query($node, q{
	CREATE EXTENSION pg_stat_statements;
	SELECT foreman.alter_tier(t, enabled => false) FROM unnest(ARRAY['fast', 'slow']) t;
	SELECT foreman.create_tier('idle_seq', '1 second');
	SELECT foreman.create_tier('idle_par', '1 second', concurrency => 2);
	SELECT foreman.schedule('later_seq', '1 hour', 'SELECT 1', tier => 'idle_seq',
	                        start_at => now() + interval '1 hour');
	SELECT foreman.schedule('later_par', '1 hour', 'SELECT 1', tier => 'idle_par',
	                        start_at => now() + interval '1 hour');
});
ok(wait_until($node, q{
	SELECT string_agg(tier::text, ',' ORDER BY tier::text) = 'idle_par,idle_seq'
	  FROM foreman.tier_status WHERE leader}, 30),
	'only the two idle tiers lead');

# The statements, by their text (src/bgw/run_store.cpp): the tier's state
# ends in "AS next_due FROM foreman.tier t", the due jobs' read orders by
# least(next_run_at, run_requested_at, retry_at ...).
my $state_calls = q{SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
	WHERE query LIKE '%AS next_due%FROM foreman.tier t%'};
my $due_calls = q{SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
	WHERE query LIKE '%ORDER BY least(j.next_run_at, j.run_requested_at, j.retry_at%'};

# Their first cycles are done (they lead); from here on, ticks only.
query($node, q{SELECT pg_stat_statements_reset()});
ok(wait_until($node, "SELECT ($state_calls) >= 8", 30),
	'the idle tiers read their state at their ticks');
is(query($node, $due_calls), '0', 'and never their due jobs');

# A job made due: its tier reads the due jobs and runs it.
my $t0 = query($node, q{SELECT quote_literal(clock_timestamp())});
query($node, q{SELECT foreman.run_now('later_seq'); SELECT foreman.run_now('later_par')});
for my $job ('later_seq', 'later_par')
{
	is(query($node, qq{SELECT status FROM foreman.wait_for_run('$job', $t0, '30 seconds')}),
		'succeeded', "$job, due through run_now, ran");
}
ok(query($node, $due_calls) >= 2, 'the due jobs were read for them');

$node->stop;
done_testing();
