# 020_expiry.pl: a scheduled stale expiry over 300,000 rows, next to a writer
# and through a crash.
#
#  1. While a scheduled expiry works through 300,000 stale rows in batches of
#     5,000, a writer updates random rows of the same table, one short
#     transaction after another. Its slowest statement is never slower than
#     the longest batch (measured by pg_stat_statements); no row is expired
#     twice (a trigger counts expirations per row); terminal and fresh rows
#     are untouched; the run records its rows and batches.
#  2. kill -9 of the coordinator in the middle of a run: the server restarts,
#     the run is marked crashed, every batch seen before a durable commit
#     stays (a batch commits asynchronously; one lost in the crash is redone),
#     and the next run finishes the rest: all stale rows end expired, each
#     exactly once.
#  3. The built-in job foreman.trim_run_history, run by the slow coordinator
#     as the superuser who created the extension, applies
#     foreman.max_runs_per_job from the server's configuration.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;
use Time::HiRes qw(time);

my $node = new_node(
	'expiry', extra_conf => <<'EOC');
shared_preload_libraries = 'pg_foreman,pg_stat_statements'
pg_stat_statements.track = all
restart_after_crash = on
EOC
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

# The stale rows' table: an expiry never changes payload and the writer always
# does, so the trigger can tell an expiry's write from the writer's.
query($node, q{
	CREATE EXTENSION pg_stat_statements;
	CREATE FUNCTION count_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    IF NEW.status = 'stale_expired' AND NEW.payload = OLD.payload THEN
	        NEW.expirations := OLD.expirations + 1;
	    END IF;
	    RETURN NEW;
	END $$;
	CREATE PROCEDURE make_table(name text, stale int, terminal int, fresh int) LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL,
	                                     payload int NOT NULL DEFAULT 0, expirations int NOT NULL DEFAULT 0)', name);
	    EXECUTE format('CREATE TRIGGER count_expiry BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION count_expiry()', name);
	    EXECUTE format($i$INSERT INTO %I (id, status, created_at)
	        SELECT i, CASE WHEN i <= %s THEN 'active' WHEN i <= %s THEN 'completed' ELSE 'active' END,
	               CASE WHEN i <= %s THEN now() - interval '2 days' + i * interval '1 ms' ELSE now() END
	          FROM generate_series(1, %s) i$i$, name, stale, stale + terminal, stale + terminal, stale + terminal + fresh);
	    EXECUTE format($i$CREATE INDEX ON %I (created_at)
	        WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired')$i$, name);
	    EXECUTE format('ANALYZE %I', name);
	END $$;
	CALL make_table('queue', 300000, 20000, 30000);
	CREATE TABLE seen_expired (n bigint);
	CALL make_table('queue_b', 100000, 10000, 10000);

	-- The writer: random rows of queue, one short transaction each, its
	-- latency (statement and commit) logged; bounded by a deadline.
	CREATE TABLE writer_log (at timestamptz NOT NULL DEFAULT clock_timestamp(), ms float8 NOT NULL);
	CREATE TABLE writer_stop (stop boolean);
	CREATE PROCEDURE writer(deadline timestamptz) LANGUAGE plpgsql AS $$
	DECLARE
	    t timestamptz;
	    r bigint;
	BEGIN
	    WHILE clock_timestamp() < deadline AND NOT EXISTS (SELECT FROM writer_stop) LOOP
	        r := 1 + floor(random() * 350000)::bigint;
	        t := clock_timestamp();
	        UPDATE queue SET payload = payload + 1 WHERE id = r;
	        COMMIT;
	        INSERT INTO writer_log (ms) VALUES (extract(epoch FROM clock_timestamp() - t) * 1000);
	        COMMIT;
	        PERFORM pg_sleep(0.002); -- pacing of the writer (about 400 updates/s), not a wait for work
	    END LOOP;
	END $$;
});
is(query($node, q{SELECT count(*) FILTER (WHERE status = 'active' AND created_at < now() - interval '1 hour') FROM queue}),
	300000, '300,000 stale rows');

# ---------------------------------------------------------------------------
# 1. Expiry next to a writer.

my $writer = $node->background_psql('postgres', timeout => 180);
$writer->query_until(qr/writer started/, q{
	\echo writer started
	CALL writer(clock_timestamp() + interval '90 seconds');
});
ok(wait_until($node, q{SELECT count(*) >= 50 FROM writer_log}, 10), 'the writer is writing');
my $writer_before = query($node, q{SELECT round(max(ms)::numeric, 1) FROM writer_log});
query($node, q{SELECT pg_stat_statements_reset()});

my $t0 = query($node, q{SELECT quote_literal(clock_timestamp())});
my $start = time();
query($node, q{
	SELECT foreman.schedule_expiry('expire_queue', 'queue', '1 hour', schedule => '1 hour',
	                               batch_size => 5000, max_batches => 1000, timeout => '90 seconds')});
my ($status, $rows, $run_batches) = split /\|/, query($node, qq{
	SELECT status, rows_affected, batches FROM foreman.wait_for_run('expire_queue', $t0, '100 seconds')});
is($status, 'succeeded', "the run succeeded: $rows rows in $run_batches batches");
# 60 full batches and a last, short one; fewer when the writer held rows of
# the last batches (SKIP LOCKED leaves them for the next run).
ok($rows >= 299000 && $run_batches >= 60 && $run_batches <= 61, 'in batches of 5,000');
my $run_seconds = time() - $start;

# SKIP LOCKED: a row the writer held at the moment was left for the next run.
for my $i (1 .. 5)
{
	last if query($node, q{SELECT count(*) FROM queue WHERE status = 'active' AND created_at < now() - interval '1 hour'}) == 0;
	my $t = query($node, q{SELECT quote_literal(clock_timestamp())});
	query($node, q{SELECT foreman.run_now('expire_queue')});
	query($node, qq{SELECT foreman.wait_for_run('expire_queue', $t, '60 seconds')});
}
query($node, q{INSERT INTO writer_stop VALUES (true)});
$writer->quit;

is( query($node, q{
		SELECT count(*) FILTER (WHERE status = 'stale_expired') || ' ' || max(expirations) || ' '
		       || count(*) FILTER (WHERE status = 'stale_expired' AND expirations <> 1)
		  FROM queue}),
	'300000 1 0', 'all 300,000 stale rows expired, each exactly once');
is( query($node, q{
		SELECT count(*) FILTER (WHERE status = 'completed') || ' ' || count(*) FILTER (WHERE status = 'active')
		  FROM queue WHERE expirations = 0}),
	'20000 30000', 'terminal and fresh rows untouched');
is( query($node, q{SELECT sum(rows_affected) FROM foreman.runs WHERE job_name = 'expire_queue' AND status = 'succeeded'}),
	300000, 'the runs recorded 300,000 rows affected');

my ($batches, $longest_batch, $mean_batch) = split /\|/, query($node, q{
	SELECT sum(calls), round(max(max_exec_time)::numeric, 1), round((sum(total_exec_time) / sum(calls))::numeric, 1)
	  FROM pg_stat_statements WHERE query LIKE 'WITH batch AS MATERIALIZED (SELECT % FROM ONLY public.queue %'});
my ($writes, $p50, $p99, $writer_max) = split /\|/, query($node, qq{
	SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
	       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2), round(max(ms)::numeric, 1)
	  FROM writer_log WHERE at >= $t0});
ok($batches >= 60, "pg_stat_statements saw the batches ($batches)");
ok($writes >= 500, "the writer wrote while the expiry ran ($writes writes)");
note(sprintf('expiry: %.1f s for 300,000 rows; %d batches, longest %s ms, mean %s ms', $run_seconds, $batches,
		$longest_batch, $mean_batch));
note("writer during expiry: $writes writes, p50 $p50 ms, p99 $p99 ms, max $writer_max ms (before: max $writer_before ms)");
# A writer that meets a locked row waits for that batch's commit, never more;
# 50 ms covers the commit and scheduling on a busy machine.
ok($writer_max <= $longest_batch + 50,
	"the writer's slowest statement ($writer_max ms) took no longer than the longest batch ($longest_batch ms)");

# ---------------------------------------------------------------------------
# 2. kill -9 in the middle of a run.

my $stale_b = q{SELECT count(*) FROM queue_b WHERE status = 'active' AND created_at < now() - interval '1 hour'};
is(query($node, $stale_b), 100000, '100,000 stale rows in queue_b');
query($node, q{
	SELECT foreman.schedule_expiry('expire_b', 'queue_b', '1 hour', schedule => '1 hour',
	                               batch_size => 2000, batch_pause => '50 ms', max_batches => 1000)});
ok( wait_until($node, q{SELECT count(*) >= 10000 FROM queue_b WHERE status = 'stale_expired'}, 30),
	'the run is under way');
my $victim = query($node, q{SELECT pid FROM foreman.runs WHERE job_name = 'expire_b' AND status = 'running'});
ok($victim =~ /^\d+$/, "the run is going in coordinator $victim");
my $progress = query($node, q{SELECT progress FROM foreman.tier_status WHERE tier = 'slow' AND leader});
like($progress, qr/^expiry of queue_b: batch \d+ changed 2000 rows, \d+ in total$/, "tier_status shows progress: $progress");
# A batch's commit does not wait for its WAL to reach the disk
# (synchronous_commit off): a crash may take back the last batches, and the
# next run redoes them. A synchronous commit made after a batch was seen - as
# an application acting on an expired row makes one - flushes the WAL in
# order, so the batches seen before it stay.
my $before_kill = query($node, q{SELECT count(*) FROM queue_b WHERE status = 'stale_expired'});
query($node, "INSERT INTO seen_expired VALUES ($before_kill)");
kill 'KILL', $victim;

# The postmaster restarts everything; wait for it and for the tiers.
ok(wait_until($node, q{SELECT count(*) FILTER (WHERE leader) = 2 FROM foreman.tier_status}, 60),
	'the server restarted and both tiers lead again');
ok( wait_until($node, q{SELECT status FROM foreman.runs WHERE job_name = 'expire_b' ORDER BY run_id LIMIT 1}, 30,
		expected => 'crashed'),
	'the killed run is recorded as crashed');
my $after_restart = query($node, q{SELECT count(*) FROM queue_b WHERE status = 'stale_expired'});
ok($after_restart >= $before_kill && $after_restart < 100000,
	"the batches seen before a durable commit stayed ($before_kill seen before, $after_restart after), the rest waits");
is(query($node, q{SELECT count(*) FROM queue_b WHERE expirations > 1}), 0, 'nothing expired twice so far');

my $t1 = query($node, q{SELECT quote_literal(clock_timestamp())});
query($node, q{SELECT foreman.run_now('expire_b')});
is( query($node, qq{
		SELECT status || ' ' || rows_affected FROM foreman.wait_for_run('expire_b', $t1, '60 seconds')}),
	'succeeded ' . (100000 - $after_restart), 'the next run expired exactly the rows left');
is(query($node, $stale_b), 0, 'no stale row is left');
is( query($node, q{
		SELECT count(*) FILTER (WHERE status = 'stale_expired' AND expirations = 1) || ' '
		       || count(*) FILTER (WHERE expirations <> CASE WHEN status = 'stale_expired' THEN 1 ELSE 0 END)
		  FROM queue_b}),
	'100000 0', 'all 100,000 expired, each exactly once; nothing else touched');

# ---------------------------------------------------------------------------
# 3. Bounded history by the built-in job.

is( query($node, q{SELECT job_id || ' ' || kind || ' ' || tier || ' ' || owner FROM foreman.jobs
                    WHERE job_name = 'foreman.trim_run_history'}),
	'-1 purge slow ' . query($node, 'SELECT current_user'), 'the built-in job is there, in tier slow');
is(query($node, q{SELECT count(*) FROM foreman.runs WHERE job_name = 'expire_b'}), 2, 'expire_b has two runs');
query($node, q{ALTER SYSTEM SET foreman.max_runs_per_job = 1; SELECT pg_reload_conf();});
query($node, q{SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 second')});
ok( wait_until($node, q{SELECT string_agg(status, ',') FROM foreman.runs WHERE job_name = 'expire_b'}, 20,
		expected => 'succeeded'),
	'the built-in job trimmed expire_b to its newest run');
query($node, q{SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 minute')});

$node->stop;
done_testing();
