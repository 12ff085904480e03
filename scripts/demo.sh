#!/usr/bin/env bash
# demo.sh: a tour of pg_foreman on a throwaway cluster, as `make demo` runs
# it: installs what is missing, builds quietly (full log in build/), starts
# a cluster, schedules a few realistic jobs and shows what they do and what
# an operator sees: two tiers at two paces, a bounded expiry with its
# progress, a failure event, statistics and a timeline picture. It stops the
# cluster (by its pid) and removes it however it ends, unless DEMO_KEEP=1.
#
#   DEMO_PORT (54329)   the cluster's port (unix socket only)
#   DEMO_KEEP=1         leave the cluster running and say how to use it
#   PG_CONFIG           the PostgreSQL to build for and run (as scripts/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO_PORT=${DEMO_PORT:-54329}
DEMO_KEEP=${DEMO_KEEP:-0}
OUT=$ROOT/build/demo                     # what the demo leaves: logs and the picture
mkdir -p "$OUT"
started=$SECONDS

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

say "pg_foreman demo: a throwaway PostgreSQL with scheduled jobs, what they do, and what an operator sees"

# ---------------------------------------------------------------------------
step "packages"
bash scripts/deps.sh | sed -u 's/^/   /'
. scripts/lib.sh
say "   PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}') and the build tools are installed"

step "build"
t0=$SECONDS
if ! make --no-print-directory all install >"$OUT/build.log" 2>&1; then
	tail -n 30 "$OUT/build.log"
	say "   the build failed; the full log is $OUT/build.log"
	exit 1
fi
compiled=$(grep -c -- ' -c -o ' "$OUT/build.log" || true)
say "   pg_foreman $([ "$compiled" -gt 0 ] && echo "built ($compiled files compiled)" || echo "was up to date") and installed" \
	"in $((SECONDS - t0)) s; full log: $OUT/build.log"

# ---------------------------------------------------------------------------
# The cluster: a private directory the unprivileged user owns, and every
# PostgreSQL tool runs from inside it (the user may not enter the checkout).
ensure_test_user --no-port-dir
DEMO_DIR=$(mktemp -d /tmp/pg_foreman-demo.XXXXXX)
is_root && chown "$TEST_USER" "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
cd "$DEMO_DIR"

finish() {
	local status=$?
	cd /
	if [ "$DEMO_KEEP" = 1 ] && [ $status -eq 0 ]; then
		step "kept (DEMO_KEEP=1): the cluster runs on"
		say "   connect: psql -h $DEMO_DIR -p $DEMO_PORT -U postgres"
		if is_root; then
			say "   stop:    runuser -u $TEST_USER -- $PG_BIN/pg_ctl -D $DEMO_DIR/data stop && rm -rf $DEMO_DIR"
		else
			say "   stop:    $PG_BIN/pg_ctl -D $DEMO_DIR/data stop && rm -rf $DEMO_DIR"
		fi
		return
	fi
	if [ $status -ne 0 ] && [ -f "$DEMO_DIR/server.log" ]; then
		cp "$DEMO_DIR/server.log" "$OUT/server.log"
		say "   the demo failed; the server's log is $OUT/server.log (last lines):"
		tail -n 15 "$OUT/server.log" | sed 's/^/   | /'
	fi
	if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
		local pid
		pid=$(head -n 1 "$DEMO_DIR/data/postmaster.pid")
		as_test_user pg_ctl -D "$DEMO_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	fi
	# The event listener (if still there) ends with its connection.
	[ -n "${EVENTS_PID:-}" ] && { touch "$EVENTS_STOP"; wait "$EVENTS_PID" 2>/dev/null || true; }
	rm -rf "$DEMO_DIR"
	[ $status -eq 0 ] && step "done in $((SECONDS - started)) s: the cluster is stopped and $DEMO_DIR removed"
}
trap finish EXIT

step "cluster"
as_test_user initdb -D "$DEMO_DIR/data" -A trust -U postgres >"$DEMO_DIR/initdb.log" 2>&1 ||
	{ cat "$DEMO_DIR/initdb.log"; exit 1; }
cat >>"$DEMO_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_foreman'
port = $DEMO_PORT
listen_addresses = ''
unix_socket_directories = '$DEMO_DIR'
max_worker_processes = 16
foreman.max_executors = 3
foreman.log_runs = 'failures'
# One role here: events may carry job names and messages (with roles that do
# not trust each other, keep the default 'ids').
foreman.event_payload = 'full'
CONF
as_test_user pg_ctl -D "$DEMO_DIR/data" -l "$DEMO_DIR/server.log" -w -t 60 start >/dev/null
say "   PostgreSQL in $DEMO_DIR (port $DEMO_PORT, unix socket only), postmaster pid $(head -n 1 "$DEMO_DIR/data/postmaster.pid")"

# psql as the server's user, quiet, no row-count footers; stops at an error.
psql_demo() {
	as_test_user psql -X -q -v ON_ERROR_STOP=1 -P footer=off -h "$DEMO_DIR" -p "$DEMO_PORT" -U postgres -d postgres "$@"
}
indent() { sed 's/^/   /'; }

# ---------------------------------------------------------------------------
step "an application's tables, and its jobs"
psql_demo <<'SQL'
CREATE EXTENSION pg_foreman;
SET client_min_messages = warning;
CREATE TABLE app_config (key text PRIMARY KEY, value text);
CREATE TABLE config_cache (key text PRIMARY KEY, value text, loaded_at timestamptz);
INSERT INTO app_config SELECT 'feature_' || i, md5(i::text) FROM generate_series(1, 50) i;
CREATE TABLE spend_events (account int, amount numeric, at timestamptz DEFAULT now());
CREATE TABLE spend_rollup (account int PRIMARY KEY, total numeric, events bigint, rolled_up_at timestamptz);
INSERT INTO spend_events SELECT i % 100, (i % 97) / 10.0 FROM generate_series(1, 100000) i;
-- 200,000 sessions went stale an hour ago; 20,000 completed ones and 2,000
-- fresh ones must stay as they are.
CREATE TABLE sessions (id bigserial PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO sessions (status, created_at)
SELECT CASE WHEN i % 11 = 0 THEN 'completed' ELSE 'active' END, now() - interval '2 hours' + i * interval '10 ms'
  FROM generate_series(1, 220000) i;
INSERT INTO sessions (status, created_at) SELECT 'active', now() FROM generate_series(1, 2000);
CREATE INDEX sessions_stale ON sessions (created_at)
 WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired');
ANALYZE;
-- A parallel tier: up to three jobs at once, each in its own executor.
SELECT foreman.create_tier('media', '1 second', concurrency => 3) \gset
SELECT foreman.schedule('refresh_config', '2 seconds', $$
    INSERT INTO config_cache SELECT key, value, now() FROM app_config
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, loaded_at = EXCLUDED.loaded_at$$) \gset
SELECT foreman.schedule('broken_report', '3 seconds', 'SELECT * FROM report_that_does_not_exist') \gset
SELECT count(foreman.schedule('thumbnail_' || i, '2 seconds', format('SELECT pg_sleep(%s)', 0.3 * i),
                              tier => 'media')) FROM generate_series(1, 3) i \gset
SELECT foreman.schedule('transcode', '3 seconds', 'SELECT pg_sleep(2)', tier => 'media',
                        timeout => '1 second') \gset
SQL
psql_demo <<'SQL' | indent
SELECT job_name AS job, tier, schedule, coalesce('timeout ' || trim_scale(extract(epoch FROM timeout)) || ' s', '') AS "limit",
       left(regexp_replace(btrim(command, E' \n'), '\s+', ' ', 'g'), 52) AS command
  FROM foreman.jobs WHERE job_id > 0 ORDER BY tier, job_id;
SQL
say "   (tier fast: 10 s tick; media: a parallel tier of 3 executors; each tier is its own process)"

# ---------------------------------------------------------------------------
step "two tiers, two paces: a 6-second roll-up in tier slow; refresh_config keeps its 2 s beat in tier fast"
psql_demo <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT foreman.schedule('spend_rollup', '1 hour', $$
    INSERT INTO spend_rollup SELECT account, sum(amount), count(*), now() FROM spend_events GROUP BY account
    ON CONFLICT (account) DO UPDATE SET total = EXCLUDED.total, events = EXCLUDED.events,
                                        rolled_up_at = EXCLUDED.rolled_up_at;
    SELECT pg_sleep(6)  -- the rest of a heavy report$$) \gset
SQL
# While it runs, tier_status: slow is busy with it, fast is not held back.
for _ in $(seq 1 50); do
	[ "$(psql_demo -Atc "SELECT state FROM foreman.tier_status WHERE tier = 'slow' AND leader")" = running ] && break
	sleep 0.1 # polling for display, bounded: 5 s
done
# A moment into the roll-up, so both tiers have something to show (bounded: 5 s).
for _ in $(seq 1 50); do
	[ "$(psql_demo -Atc "SELECT coalesce(bool_or(clock_timestamp() - job_started_at >= interval '1.5 s'), false)
	                     FROM foreman.tier_status WHERE tier = 'slow' AND leader")" = t ] && break
	sleep 0.1
done
psql_demo <<'SQL' | indent
SELECT tier, state, coalesce(current_job, '') AS current_job,
       coalesce(round(extract(epoch FROM clock_timestamp() - job_started_at)::numeric, 1) || ' s', '') AS running_for,
       runs AS runs_so_far
  FROM foreman.tier_status WHERE tier IN ('fast', 'slow') ORDER BY tier;
SQL
psql_demo <<'SQL' | indent
SELECT r.started_at AS s0, r.finished_at AS s1, to_char(r.started_at, 'HH24:MI:SS.MS') AS t0,
       round(extract(epoch FROM r.duration)::numeric, 2) AS took
  FROM foreman.wait_for_run('spend_rollup', now() - interval '1 minute', timeout => '30 seconds') r \gset
\echo spend_rollup ran from :t0 for :took s; meanwhile refresh_config, in tier fast:
SELECT round(extract(epoch FROM started_at - :'s0')::numeric, 2) AS "started (s into the roll-up)",
       round(extract(epoch FROM start_delay)::numeric * 1000, 1) AS "start delay (ms)", status
  FROM foreman.runs WHERE job_name = 'refresh_config' AND started_at BETWEEN :'s0' AND :'s1' ORDER BY run_id;
SQL

# ---------------------------------------------------------------------------
# Failure events: a session LISTENs to foreman_events in the background while
# the expiry runs; what it heard is shown after it.
EVENTS_OUT=$DEMO_DIR/events.out
EVENTS_STOP=$DEMO_DIR/events.stop
events_listen() { # events_listen SECONDS: until events_show, or SECONDS
	local seconds=$1
	: >"$EVENTS_OUT"
	{
		echo "LISTEN foreman_events;"
		for _ in $(seq 1 $((seconds * 5))); do
			[ -e "$EVENTS_STOP" ] && break
			echo "SELECT;" # psql prints the notifications that arrived after each command
			sleep 0.2
		done
	} | as_test_user psql -X -q -h "$DEMO_DIR" -p "$DEMO_PORT" -U postgres -d postgres >>"$EVENTS_OUT" 2>&1 &
	EVENTS_PID=$!
}
events_show() { # events_show N: the first N events events_listen heard, one line each
	touch "$EVENTS_STOP"
	wait "$EVENTS_PID" 2>/dev/null || true
	EVENTS_PID=
	local payloads
	payloads=$(sed -n 's/^Asynchronous notification "foreman_events" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' "$EVENTS_OUT")
	if [ -z "$payloads" ]; then
		say "   (nothing arrived)"
		return
	fi
	head -n "$1" <<<"$payloads" | sed 's/^/   /'
	say "   ($(wc -l <<<"$payloads") events heard while the expiry ran; with foreman.event_payload = 'ids', the default," \
		"job names and messages stay out and a listener reads them from foreman.runs)"
}
events_listen 20

# ---------------------------------------------------------------------------
step "bounded expiry: foreman.schedule_expiry, batch by batch, progress in tier_status"
psql_demo <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT foreman.schedule_expiry('expire_sessions', 'sessions', older_than => '1 hour', schedule => '1 hour',
                               batch_size => 20000, batch_pause => '400 ms', tier => 'slow') \gset
SQL
last=""
for _ in $(seq 1 150); do # polling for display, bounded: 30 s
	line=$(psql_demo -At -F '|' -c "SELECT round(extract(epoch FROM clock_timestamp() - job_started_at)::numeric, 1) || ' s', progress
	                                  FROM foreman.tier_status WHERE tier = 'slow' AND leader AND current_job = 'expire_sessions'")
	progress=${line#*|}
	if [ -n "$progress" ] && [ "$progress" != "$last" ]; then
		say "   ${line%%|*}  $progress"
		last=$progress
	fi
	[ "$(psql_demo -Atc "SELECT count(*) FROM foreman.runs WHERE job_name = 'expire_sessions' AND status <> 'running'")" -gt 0 ] && break
	sleep 0.2
done
psql_demo -At <<'SQL' | indent
SELECT format('%s: %s rows in %s batches of at most 20,000, %s s, each batch its own transaction',
              status, to_char(rows_affected, 'FM999,999,999'), batches, round(extract(epoch FROM duration)::numeric, 1))
  FROM foreman.wait_for_run('expire_sessions', now() - interval '1 minute');
SELECT format('sessions now: %s', string_agg(format('%s %s', to_char(n, 'FM999,999,999'), status), ', ' ORDER BY n DESC))
  FROM (SELECT status, count(*) AS n FROM sessions GROUP BY status) s;
SQL

# ---------------------------------------------------------------------------
step "a pipeline: load -> transform -> two refreshes (in two tiers) -> vacuum, each after the ones before it"
psql_demo <<'SQL'
CREATE TABLE staged_orders (id bigint, amount numeric, loaded_at timestamptz);
CREATE TABLE orders_clean (id bigint PRIMARY KEY, amount numeric);
CREATE MATERIALIZED VIEW daily_totals AS SELECT count(*) AS orders, coalesce(sum(amount), 0) AS total FROM orders_clean;
CREATE MATERIALIZED VIEW top_orders AS SELECT id, amount FROM orders_clean ORDER BY amount DESC LIMIT 10;
BEGIN;
SELECT foreman.schedule('load_orders', '0 2 * * *', $$
    INSERT INTO staged_orders SELECT i, (i % 500) / 7.0, now() FROM generate_series(1, 50000) i$$) \gset
SELECT foreman.schedule('transform_orders', '@after', $$
    INSERT INTO orders_clean SELECT id, amount FROM staged_orders ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;
    TRUNCATE staged_orders$$, tier => 'slow', after => '{load_orders}') \gset
SELECT foreman.schedule('refresh_totals', '@after', 'REFRESH MATERIALIZED VIEW daily_totals',
                        tier => 'fast', after => '{transform_orders}') \gset
SELECT foreman.schedule('refresh_top', '@after', 'REFRESH MATERIALIZED VIEW top_orders',
                        tier => 'media', after => '{transform_orders}') \gset
SELECT foreman.schedule('vacuum_orders', '@after', 'VACUUM (ANALYZE) orders_clean',
                        after => '{refresh_totals,refresh_top}') \gset
COMMIT;
SELECT clock_timestamp() AS p0 \gset
SELECT foreman.run_now('load_orders') \gset
SELECT status FROM foreman.wait_for_run('vacuum_orders', :'p0', timeout => '60 seconds') \gset
SQL
psql_demo <<'SQL' | indent
\echo load_orders runs at 02:00 every night; run_now started it here, and the rest followed (foreman.chain_runs):
SELECT root_job, job_name, tier, status, to_char(started_at, 'HH24:MI:SS.MS') AS started,
       round(extract(epoch FROM finished_at - started_at)::numeric * 1000, 1) AS ms
  FROM foreman.chain_runs WHERE chain_id = (SELECT max(chain_id) FROM foreman.chain_runs) ORDER BY started_at, job_name;
SQL

# ---------------------------------------------------------------------------
step "failures, as an operator hears of them: LISTEN foreman_events"
say "   broken_report fails every 3 s (42P01), transcode times out every 3 s; a session that listens hears each, as JSON:"
events_show 2

# ---------------------------------------------------------------------------
step "foreman.job_stats since the jobs began (also: the last hour and day, or any window)"
psql_demo <<'SQL' | indent
SELECT job_name AS job, runs, succeeded AS ok, failed + timed_out + crashed AS failed, skipped,
       round(extract(epoch FROM duration_p50) * 1000, 1) AS p50_ms,
       round(extract(epoch FROM duration_p95) * 1000, 1) AS p95_ms,
       round(extract(epoch FROM start_delay_p95) * 1000, 1) AS delay_p95_ms,
       coalesce(last_error_sqlstate, '') AS last_error
  FROM foreman.job_stats((SELECT min(created_at) FROM foreman.jobs WHERE job_id > 0))
 WHERE job_id > 0 ORDER BY tier, job_id;
SQL
psql_demo <<'SQL' | indent
SELECT tier, concurrency AS slots, runs, failures, round(busy_fraction * 100) || ' %' AS busy,
       round(extract(epoch FROM start_delay_p95) * 1000, 1) AS delay_p95_ms,
       round(extract(epoch FROM lag) * 1000) AS lag_ms
  FROM foreman.tier_stats((SELECT min(created_at) FROM foreman.jobs WHERE job_id > 0)) ORDER BY tier;
SQL
say "   foreman.metrics: $(psql_demo -Atc 'SELECT count(*) FROM foreman.metrics') samples for Prometheus" \
	"(doc/postgres_exporter.yaml)"

# ---------------------------------------------------------------------------
step "the timeline: SELECT foreman.timeline_svg(since, until)"
psql_demo -At -c "SELECT foreman.timeline_svg((SELECT min(created_at) FROM foreman.jobs WHERE job_id > 0) - interval '1 second', now() + interval '1 second')" \
	>"$OUT/timeline.svg"
say "   $OUT/timeline.svg: $(grep -c 'class="run"' "$OUT/timeline.svg") runs, a lane per tier and per media executor;" \
	"open it in a browser (each bar's tooltip names the job and its outcome)"
if command -v rsvg-convert >/dev/null; then
	rsvg-convert -o "$OUT/timeline.png" "$OUT/timeline.svg" && say "   $OUT/timeline.png: the same, as a PNG"
fi
