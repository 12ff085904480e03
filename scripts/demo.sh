#!/usr/bin/env bash
# demo.sh: a throwaway cluster with pg_foreman, a realistic set of jobs, and
# what they do. Called by `make demo` after deps, build and install. Stops its
# cluster (by its pid) however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DEMO_DIR=${DEMO_DIR:-/tmp/pg_foreman-demo}
DEMO_PORT=${DEMO_PORT:-54329}
ensure_test_user
stage_dir "$DEMO_DIR"

pid=""
stop_cluster() {
	if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
		pid=$(head -n 1 "$DEMO_DIR/data/postmaster.pid")
		echo
		echo "== stopping the demo cluster (postmaster pid $pid)"
		as_test_user pg_ctl -D "$DEMO_DIR/data" -m fast -w -t 30 stop >/dev/null || kill -TERM "$pid" 2>/dev/null || true
	fi
}
trap stop_cluster EXIT

echo "== a throwaway cluster in $DEMO_DIR, port $DEMO_PORT, unix socket only"
as_test_user initdb -D "$DEMO_DIR/data" -A trust -U postgres >/dev/null
cat >>"$DEMO_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_foreman'
port = $DEMO_PORT
listen_addresses = ''
unix_socket_directories = '$DEMO_DIR'
max_worker_processes = 16
foreman.log_runs = 'failures'
CONF
as_test_user pg_ctl -D "$DEMO_DIR/data" -l "$DEMO_DIR/server.log" -w -t 60 start >/dev/null
echo "   started: postmaster pid $(head -n 1 "$DEMO_DIR/data/postmaster.pid")"

psql_demo() { as_test_user psql -X -q -v ON_ERROR_STOP=1 -h "$DEMO_DIR" -p "$DEMO_PORT" -U postgres -d postgres "$@"; }

psql_demo <<'SQL'
\echo
\echo == CREATE EXTENSION: the launcher starts one coordinator per tier within a second
CREATE EXTENSION pg_foreman;

-- An application's tables.
CREATE TABLE app_config (key text PRIMARY KEY, value text, updated_at timestamptz DEFAULT now());
CREATE TABLE config_cache (key text PRIMARY KEY, value text, loaded_at timestamptz);
INSERT INTO app_config SELECT 'feature_' || i, md5(i::text) FROM generate_series(1, 50) i;

CREATE TABLE spend_events (id bigserial PRIMARY KEY, account int, amount numeric, at timestamptz DEFAULT now());
CREATE TABLE spend_rollup (account int PRIMARY KEY, total numeric, events bigint, rolled_up_at timestamptz);
INSERT INTO spend_events (account, amount, at)
SELECT i % 100, (i % 97) / 10.0, now() - (i % 3600) * interval '1 second' FROM generate_series(1, 100000) i;

-- A large table of sessions: 200,000 of them went stale an hour ago.
CREATE TABLE sessions (id bigserial PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO sessions (status, created_at)
SELECT CASE WHEN i % 10 = 0 THEN 'completed' ELSE 'active' END, now() - interval '2 hours' + i * interval '1 millisecond'
  FROM generate_series(1, 200000) i;
INSERT INTO sessions (status, created_at) SELECT 'active', now() FROM generate_series(1, 20000);
CREATE INDEX sessions_stale ON sessions (created_at) WHERE status NOT IN ('completed', 'expired', 'stale_expired');
ANALYZE;

\echo
\echo == the jobs: a fast config refresh, a slow roll-up, and a bounded stale expiry
SELECT foreman.schedule('refresh_config', '2 seconds', $$
    INSERT INTO config_cache SELECT key, value, now() FROM app_config
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, loaded_at = EXCLUDED.loaded_at$$) AS job_id;
SELECT foreman.schedule('spend_rollup', '5 minutes', $$
    INSERT INTO spend_rollup SELECT account, sum(amount), count(*), now() FROM spend_events GROUP BY account
    ON CONFLICT (account) DO UPDATE SET total = EXCLUDED.total, events = EXCLUDED.events,
                                        rolled_up_at = EXCLUDED.rolled_up_at$$) AS job_id;
-- Bounded: at most 20,000 rows a run, locked rows skipped, never one giant UPDATE.
SELECT foreman.schedule('expire_sessions', '1 second', $$
    UPDATE sessions SET status = 'stale_expired'
     WHERE id IN (SELECT id FROM sessions
                   WHERE status NOT IN ('completed', 'expired', 'stale_expired')
                     AND created_at < now() - interval '1 hour'
                   ORDER BY created_at LIMIT 20000 FOR UPDATE SKIP LOCKED)$$, tier => 'fast') AS job_id;
SELECT foreman.schedule('broken_report', '3 seconds', 'SELECT * FROM report_that_does_not_exist') AS job_id;

SELECT job_name, tier, schedule, enabled FROM foreman.jobs ORDER BY job_id;
SQL

for round in 1 2 3 4; do
	psql_demo <<SQL
\echo
\echo == after round $round: waited for the next runs with foreman.wait_for_run (bounded)
SELECT (foreman.wait_for_run('refresh_config', clock_timestamp(), '10 seconds')).status AS refresh_config,
       (foreman.wait_for_run('expire_sessions', clock_timestamp(), '10 seconds')).status AS expire_sessions \gx
SELECT tier, pid, leader, state, current_job, round(extract(epoch FROM heartbeat_age)::numeric, 2) AS heartbeat_age_s
  FROM foreman.tier_status;
SELECT count(*) FILTER (WHERE status = 'stale_expired') AS expired_so_far,
       count(*) FILTER (WHERE status = 'active' AND created_at < now() - interval '1 hour') AS still_stale
  FROM sessions;
SQL
done

psql_demo <<'SQL'
\echo
\echo == run history (latest 12)
SELECT run_id, job_name, tier, status, rows_affected AS rows, round(extract(epoch FROM duration)::numeric * 1000, 1) AS ms,
       coalesce(sqlstate || ': ' || message, '') AS error
  FROM foreman.runs ORDER BY run_id DESC LIMIT 12;
\echo
\echo == per job
SELECT job_name, tier, runs, failures, last_status, next_run_at > now() AS next_run_pending FROM foreman.jobs ORDER BY job_id;
\echo
\echo == the roll-up ran once at scheduling, in the slow tier, without delaying the fast one
SELECT count(*) AS accounts, sum(events) AS events FROM spend_rollup;
SQL
echo
echo "== server log: $DEMO_DIR/server.log"
