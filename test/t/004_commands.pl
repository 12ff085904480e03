# Commands that refuse to run inside a function or a transaction block run as
# top-level statements: CREATE INDEX CONCURRENTLY (which also waits for every
# older snapshot - so this test polls with short statements, not with a
# session waiting in foreman.wait_for_run) and VACUUM.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use ForemanTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_node('commands');
query($node, q{
	CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
	INSERT INTO events (at) SELECT now() - i * interval '1 minute' FROM generate_series(1, 1000) i;
});

query($node, q{SELECT foreman.schedule('index_events', '1 hour',
	'CREATE INDEX CONCURRENTLY IF NOT EXISTS events_at ON events (at)')});
ok(wait_until($node, q{SELECT status = 'succeeded' FROM foreman.runs WHERE job_name = 'index_events'}, 30),
	'CREATE INDEX CONCURRENTLY ran as a job');
is(query($node, q{SELECT command_tag FROM foreman.runs WHERE job_name = 'index_events'}), 'CREATE INDEX',
	'its command tag is recorded');
is(query($node, q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_at'::regclass}), 't',
	'and the index is valid');

query($node, q{SELECT foreman.schedule('vacuum_events', '1 hour', 'VACUUM (ANALYZE) events')});
ok(wait_until($node, q{SELECT status = 'succeeded' FROM foreman.runs WHERE job_name = 'vacuum_events'}, 30),
	'VACUUM ran as a job');
ok(wait_until($node, q{SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'events'}, 10),
	'and the table was vacuumed');

$node->stop;
done_testing();
