# 021_expiry_concurrency.pl: the batches of an expiry run next to writers
# that change the same rows, in each way a run can go: a sweep of the heap
# (primary key only), in timestamp order through a plain index, and through
# the advised partial index.
#
#  1. While a scheduled expiry works through each table in small batches,
#     a writer (in a session of its own, committing every statement) keeps
#     changing random rows: it moves them (a non-HOT update gives a row a new
#     ctid), completes them (status 'completed' while still 'active'), and
#     freshens them (created_at = now()). A trigger records every expiry of a
#     row that was not stale at that moment (terminal, or fresh) and counts
#     the expiries of each row: there must be none of the first kind, and no
#     row expired twice. Locked rows are changed through their ctid, with the
#     predicate checked again: a row a writer changed in between is either
#     still stale (expired once) or left alone.
#  2. Rows another session holds (FOR UPDATE) while a run goes by are
#     skipped, not waited for, and left as they are; the next run, which
#     starts from the oldest row again, expires them.
#  3. The plans: the change is a TID scan; a sweep reads its blocks with a
#     TID range scan, a keyset batch (resuming) goes through the index.
#  4. The row lock of an expiry is FOR NO KEY UPDATE: a foreign key check on
#     a row being expired (FOR KEY SHARE) does not wait for the batch. When
#     the status column is part of a key, the batch locks FOR UPDATE, and a
#     check of that key waits for its commit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ForemanTest;

my $node = new_node('expiry_concurrency');
ok(wait_for_leaders($node, 'postgres', 2), 'both built-in tiers have a leader');

my @layouts = (
	[ 'sweep', 'q_pk', '' ],
	[ 'keyset', 'q_plain', 'CREATE INDEX ON q_plain (created_at)' ],
	[ 'keyset', 'q_partial',
		q{CREATE INDEX ON q_partial (created_at) WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired')} ]);

query($node, q{
	CREATE TABLE violations (tab text, id bigint, what text);
	-- Every expiry of a row is checked against the row as it is when it is
	-- changed: it must be stale (active and old) at that moment.
	CREATE FUNCTION check_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    IF NEW.status = 'stale_expired' AND OLD.status IS DISTINCT FROM 'stale_expired' THEN
	        IF OLD.status <> 'active' THEN
	            INSERT INTO violations VALUES (TG_TABLE_NAME, OLD.id, 'expired a row in status ' || OLD.status);
	        END IF;
	        IF OLD.created_at >= now() - interval '1 hour' THEN
	            INSERT INTO violations VALUES (TG_TABLE_NAME, OLD.id, 'expired a fresh row');
	        END IF;
	        NEW.expirations := OLD.expirations + 1;
	    END IF;
	    RETURN NEW;
	END $$;
	CREATE PROCEDURE make_table(name text, index_sql text) LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL,
	                                     payload int NOT NULL DEFAULT 0, expirations int NOT NULL DEFAULT 0)', name);
	    EXECUTE format('CREATE TRIGGER check_expiry BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION check_expiry()', name);
	    -- 20,000 stale rows (ids 1-20000; created_at in id order, with ties of
	    -- ten), 5,000 fresh ones after them.
	    EXECUTE format($i$INSERT INTO %I (id, status, created_at)
	        SELECT i, 'active', CASE WHEN i <= 20000 THEN now() - interval '2 days' + (i / 10) * interval '1 s' ELSE now() END
	          FROM generate_series(1, 25000) i$i$, name);
	    IF index_sql <> '' THEN
	        EXECUTE index_sql;
	    END IF;
	    EXECUTE format('ANALYZE %I', name);
	END $$;

	-- The writer: random rows 101-25000 of a table, one statement and commit
	-- at a time, until it is told to stop or its deadline passes.
	CREATE TABLE writer_stop (stop boolean);
	CREATE TABLE writer_count (tab text, n bigint);
	CREATE PROCEDURE writer(tab text, deadline timestamptz) LANGUAGE plpgsql AS $$
	DECLARE
	    r bigint;
	    n bigint := 0;
	    dice float8;
	BEGIN
	    WHILE clock_timestamp() < deadline AND NOT EXISTS (SELECT FROM writer_stop) LOOP
	        r := 101 + floor(random() * 24900)::bigint;
	        dice := random();
	        IF dice < 0.6 THEN
	            EXECUTE format('UPDATE %I SET payload = payload + 1 WHERE id = $1', tab) USING r;
	        ELSIF dice < 0.8 THEN
	            EXECUTE format($u$UPDATE %I SET status = 'completed' WHERE id = $1 AND status = 'active'$u$, tab) USING r;
	        ELSE
	            EXECUTE format($u$UPDATE %I SET created_at = now() WHERE id = $1 AND status = 'active'$u$, tab) USING r;
	        END IF;
	        COMMIT;
	        n := n + 1;
	        IF n % 100 = 0 THEN
	            INSERT INTO writer_count VALUES (tab, n);
	            COMMIT;
	        END IF;
	    END LOOP;
	    INSERT INTO writer_count VALUES (tab, n);
	END $$;
});
query($node, "CALL make_table('$_->[1]', '" . ($_->[2] =~ s/'/''/gr) . "')") for @layouts;

# ---------------------------------------------------------------------------
# 1 and 2. Each table: a holder keeps ids 1-5 (the oldest stale rows) locked,
# a writer changes rows, and a run expires in batches of 200.

for my $layout (@layouts)
{
	my ($scan, $t) = @$layout;
	my $holder = session($node);
	is($holder->query("BEGIN; SELECT count(*) FROM (SELECT id FROM $t WHERE id <= 5 FOR UPDATE) AS held;"), '5', "$t: ids 1-5 are held");

	my $writer = session($node);
	$writer->send("CALL writer('$t', clock_timestamp() + interval '120 seconds');");
	ok(wait_until($node, "SELECT count(*) > 0 FROM writer_count WHERE tab = '$t'", 30), "$t: the writer is writing");

	my $t0 = query($node, 'SELECT quote_literal(clock_timestamp())');
	query($node, qq{
		SELECT foreman.schedule_expiry('expire_$t', '$t', '1 hour', schedule => '1 hour', batch_size => 200,
		                               batch_pause => '2 ms', max_batches => 10000)});
	is(query($node, "SELECT batches FROM foreman.maintenance_advice WHERE job_name = 'expire_$t'"),
		$scan, "$t: the batches go by $scan");
	my ($status, $rows, $batches) = split /\|/, query($node, qq{
		SELECT status, rows_affected, batches FROM foreman.wait_for_run('expire_$t', $t0, '120 seconds')});
	is($status, 'succeeded', "$t: the run succeeded ($rows rows in $batches batches)");
	my $writes = query($node, "SELECT max(n) FROM writer_count WHERE tab = '$t'");
	ok($batches >= 50, "$t: in many batches ($batches), while the writer wrote ($writes statements so far)");

	is(query($node, "SELECT string_agg(status, ',' ORDER BY id) FROM $t WHERE id <= 5"),
		'active,active,active,active,active', "$t: the held rows were skipped, not waited for");
	$holder->query('COMMIT;');

	# Stop the writer, then the runs that follow finish what is left: the
	# held rows, and rows a sweep saw only after they moved behind it.
	query($node, 'INSERT INTO writer_stop VALUES (true)');
	$writer->result(120);
	$writer->close;
	$holder->close;
	my $stale = "SELECT count(*) FROM $t WHERE status = 'active' AND created_at < now() - interval '1 hour'";
	for my $i (1 .. 3)
	{
		last if query($node, $stale) == 0;
		my $t1 = query($node, 'SELECT quote_literal(clock_timestamp())');
		query($node, "SELECT foreman.run_now('expire_$t')");
		query($node, "SELECT foreman.wait_for_run('expire_$t', $t1, '60 seconds')");
	}
	is(query($node, $stale), 0, "$t: the next runs expired what was left, the held rows too");
	is(query($node, "SELECT count(*) FROM violations WHERE tab = '$t'"), 0,
		"$t: no row was expired that was not stale when it was changed");
	is(query($node, "SELECT coalesce(max(expirations), 0) FROM $t"), 1, "$t: no row was expired twice");
	my ($completed, $freshened, $expired) = split /\|/, query($node, qq{
		SELECT count(*) FILTER (WHERE status = 'completed') || '|'
		       || count(*) FILTER (WHERE status = 'active' AND created_at >= now() - interval '1 hour' AND id <= 20000)
		       || '|' || count(*) FILTER (WHERE status = 'stale_expired') FROM $t});
	ok($completed > 0 && $freshened > 0, "$t: the writer completed $completed and freshened $freshened stale rows");
	is($expired + $completed + $freshened, 20000 + query($node, qq{
		SELECT count(*) FROM $t WHERE id > 20000 AND status = 'completed'}),
		"$t: every stale row was expired ($expired), completed or freshened, and nothing else was expired");
	query($node, "SELECT foreman.unschedule('expire_$t'); DELETE FROM writer_stop;");
}
is(query($node, 'SELECT count(*) FROM violations'), 0, 'no violation in any table');

# ---------------------------------------------------------------------------
# 3. The plans (auto_explain, at NOTICE level, of the statement a batch runs):
# the change reaches the locked rows by a TID scan; a sweep reads its range
# of blocks by a TID range scan; a keyset batch goes through the index, also
# when it resumes after the last (timestamp, key).

for my $layout (@layouts)
{
	my ($scan, $t) = @$layout;
	my $fresh = "${t}_plan";
	my $index_sql = $layout->[2] =~ s/\b$t\b/$fresh/gr;
	query($node, "CALL make_table('$fresh', '" . ($index_sql =~ s/'/''/gr) . "')");
	my $batch = qq{foreman._expiry_batch('$fresh', '1 hour', 'status', 'created_at',
	                                      '{completed,complete,failed,expired,cancelled}', 'stale_expired', 200, NULL, %s)};
	my $resume = query($node, sprintf("SELECT next_resume FROM $batch", 'NULL'));
	my ($ret, $out, $err) = $node->psql(
		'postgres', qq{
		LOAD 'auto_explain';
		SET auto_explain.log_min_duration = 0;
		SET auto_explain.log_nested_statements = on;
		SET auto_explain.log_level = notice;
		SELECT changed FROM } . sprintf($batch, "'$resume'"));
	ok($out > 0 && $out <= 200, "$fresh: a batch that resumes at $resume changed $out rows");
	like($err, qr/Tid Scan on $fresh.*\n\s+TID Cond: \(ctid = ANY/, "$fresh: the change is a TID scan");
	if ($scan eq 'sweep')
	{
		like($err, qr/Tid Range Scan on $fresh/, "$fresh: the sweep reads a TID range");
	}
	else
	{
		like($err, qr/Index Scan using ${fresh}_created_at_idx on $fresh/, "$fresh: the keyset batch goes through the index");
	}
}

# ---------------------------------------------------------------------------
# 4. The row lock: FOR NO KEY UPDATE, unless the status is part of a key.

query($node, q{
	CREATE TABLE parents (id int PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL);
	CREATE TABLE children (parent int REFERENCES parents);
	INSERT INTO parents VALUES (1, 'active', now() - interval '1 day'), (2, 'active', now() - interval '1 day');
	CREATE TABLE keyed (id int PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL, UNIQUE (id, status));
	CREATE TABLE keyed_children (parent int, status text, FOREIGN KEY (parent, status) REFERENCES keyed (id, status));
	INSERT INTO keyed VALUES (1, 'active', now() - interval '1 day');
});
my $batch = session($node);
is($batch->query(q{BEGIN; SELECT foreman.expire_stale('parents', '1 hour');}), '2', 'a batch expired both parents');
is(query($node, 'INSERT INTO children VALUES (1) RETURNING parent'), '1',
	'a child of a row the open batch changed is inserted at once (its lock is FOR NO KEY UPDATE)');
$batch->query('COMMIT;');

is($batch->query(q{BEGIN; SELECT foreman.expire_stale('keyed', '1 hour', set_status => 'closed');}), '1',
	'a batch changed a status that is part of a key');
my $child = session($node);
$child->send(q{INSERT INTO keyed_children VALUES (1, 'active');});
ok( wait_until($node, q{SELECT count(*) > 0 FROM pg_stat_activity
                         WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO keyed_children%'}, 30),
	'a foreign key check of the key it changes waits for the batch (the lock is FOR UPDATE there)');
$batch->query('COMMIT;');
my ($out, $err) = $child->result(30);
like($err, qr/violates foreign key constraint/, 'and then finds the key it referenced gone');
$child->close;
$batch->close;

$node->stop;
done_testing();
