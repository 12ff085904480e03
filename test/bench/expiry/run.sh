#!/usr/bin/env bash
# run.sh: the stale-expiry benchmark (a benchmark, not a test; not part of
# make test). On one throwaway cluster, in one run:
#
#   baseline   a writer (pgbench at a fixed rate, UPDATE of a random row) alone
#   unbounded  the same writer while ONE UPDATE expires all stale rows
#   batched    the same writer while foreman.schedule_expiry's run expires
#              them in batches (each batch its own transaction)
#
# over two identical tables of STALE stale + FRESH fresh rows, and prints for
# each: total time, rows/s, longest single statement, WAL bytes, and the
# writer's p50/p99/max latency (from pgbench's per-transaction log, counted
# from each transaction's scheduled start, so waits are not hidden).
#
# Usage: bash test/bench/expiry/run.sh   (as root or as the test user; needs
# the extension built and installed: make build-install)
# Settings (environment): STALE FRESH RATE CLIENTS BATCH WINDOW BASELINE
# BENCH_DIR BENCH_PORT. Exits non-zero, loudly, when a measurement is missing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh

STALE=${STALE:-300000}
FRESH=${FRESH:-300000}
RATE=${RATE:-200}          # writer transactions per second (pgbench -R)
CLIENTS=${CLIENTS:-4}      # writer connections
BATCH=${BATCH:-5000}       # batch_size of the batched expiry
WINDOW=${WINDOW:-45}       # seconds the writer runs in each maintenance phase
BASELINE=${BASELINE:-20}   # seconds of the baseline writer
LEAD=3                     # seconds the writer runs before maintenance starts
DIR=${BENCH_DIR:-/tmp/pg_foreman-bench-expiry}
PORT=${BENCH_PORT:-54341}
ROWS=$((STALE + FRESH))

die() { echo "run.sh: FAILED: $*" >&2; exit 1; }
# A measurement must be a number; anything else ends the run.
need() { [[ "$2" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || die "measurement '$1' is missing or not a number: '$2'"; }

ensure_test_user
stage_dir "$DIR"
stop_cluster() {
	if [ -f "$DIR/data/postmaster.pid" ]; then
		local pid
		pid=$(head -n 1 "$DIR/data/postmaster.pid")
		as_test_user pg_ctl -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	fi
}
trap stop_cluster EXIT

as_test_user initdb -D "$DIR/data" -A trust -U postgres >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_foreman,pg_stat_statements'
pg_stat_statements.track = all
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
max_worker_processes = 16
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
foreman.log_runs = 'failures'
CONF
as_test_user pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null

sql() { as_test_user psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"; }

echo "== setup: two identical tables of $STALE stale + $FRESH fresh rows (interleaved), primary key, the advised partial index"
sql >/dev/null <<SQL
CREATE EXTENSION pg_foreman;
CREATE EXTENSION pg_stat_statements;
CREATE TABLE bench_a (id bigint PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL,
                      payload int NOT NULL DEFAULT 0, note text NOT NULL);
INSERT INTO bench_a (id, status, created_at, note)
SELECT i, 'active',
       CASE WHEN CASE WHEN i <= 2 * least($STALE, $FRESH) THEN i % 2 = 1 ELSE $STALE > $FRESH END
            THEN now() - interval '2 days' + i * interval '1 ms' ELSE now() END,
       repeat(md5(i::text), 3)
  FROM generate_series(1, $ROWS) i;
CREATE TABLE bench_b (LIKE bench_a INCLUDING ALL);
INSERT INTO bench_b SELECT * FROM bench_a;
CREATE INDEX bench_a_stale ON bench_a (created_at)
 WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired');
CREATE INDEX bench_b_stale ON bench_b (created_at)
 WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired');
VACUUM ANALYZE bench_a;
VACUUM ANALYZE bench_b;
CREATE TABLE writer_log (phase text, client int, tx bigint, latency_us bigint, script int, epoch bigint, usec bigint,
                         lag_us bigint);
SQL
for t in bench_a bench_b; do
	n=$(sql -c "SELECT count(*) FROM $t WHERE status = 'active' AND created_at < now() - interval '1 hour'")
	[ "$n" = "$STALE" ] || die "$t has $n stale rows, not $STALE"
	printf '\\set id random(1, %d)\nUPDATE %s SET payload = payload + 1 WHERE id = :id;\n' "$ROWS" "$t" >"$DIR/writer_$t.sql"
done
chown "$TEST_USER" "$DIR"/writer_*.sql 2>/dev/null || true

# The writer in the background: pgbench at a fixed rate, one log line per
# transaction. Sets WRITER_PID.
start_writer() { # phase table seconds
	mkdir -p "$DIR/log_$1"
	is_root && chown "$TEST_USER" "$DIR/log_$1"
	as_test_user pgbench -n -h "$DIR" -p "$PORT" -U postgres -c "$CLIENTS" -j 1 -R "$RATE" -T "$3" \
		-l --log-prefix="$DIR/log_$1/tx" -f "$DIR/writer_$2.sql" postgres >"$DIR/pgbench_$1.out" 2>&1 &
	WRITER_PID=$!
}
finish_writer() { # phase
	wait "$WRITER_PID" || die "pgbench of phase $1 failed: $(tail -n 5 "$DIR/pgbench_$1.out")"
	local f
	for f in "$DIR/log_$1"/tx*; do
		[ -s "$f" ] || die "pgbench of phase $1 wrote no transaction log"
		sql -c "\\copy writer_log (client, tx, latency_us, script, epoch, usec, lag_us) FROM '$f' WITH (DELIMITER ' ')"
	done
	sql -c "UPDATE writer_log SET phase = '$1' WHERE phase IS NULL" >/dev/null
}
# p50|p99|max|transactions of the writer's transactions scheduled within [from, to] (epoch seconds).
writer_stats() { # phase from to
	sql -c "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_us) / 1000)::numeric, 2) || '|' ||
	               round((percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_us) / 1000)::numeric, 2) || '|' ||
	               round((max(latency_us) / 1000.0)::numeric, 2) || '|' || count(*)
	          FROM writer_log
	         WHERE phase = '$1' AND epoch + usec / 1e6 - latency_us / 1e6 BETWEEN $2 AND $3"
}
now_epoch() { sql -c "SELECT extract(epoch FROM clock_timestamp())"; }

echo "== baseline: the writer alone for ${BASELINE}s (pgbench -R $RATE -c $CLIENTS, UPDATE of a random row of $ROWS)"
start_writer baseline bench_a "$BASELINE"
b_from=$(now_epoch)
finish_writer baseline
b_to=$(now_epoch)
IFS='|' read -r b_p50 b_p99 b_max b_n <<<"$(writer_stats baseline "$b_from" "$b_to")"
for v in b_p50 b_p99 b_max b_n; do need "$v" "${!v}"; done

echo "== unbounded: one UPDATE of all stale rows of bench_a, writer running"
sql -c "CHECKPOINT" >/dev/null
start_writer unbounded bench_a "$WINDOW"
sleep "$LEAD"
IFS='|' read -r u_from u_to u_rows u_wal <<<"$(sql <<'SQL'
SELECT extract(epoch FROM clock_timestamp()) AS t0, pg_current_wal_insert_lsn() AS l0 \gset
UPDATE bench_a SET status = 'stale_expired'
 WHERE status NOT IN ('completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired')
   AND created_at < now() - interval '1 hour';
SELECT :t0 || '|' || extract(epoch FROM clock_timestamp()) || '|'
       || (SELECT count(*) FROM bench_a WHERE status = 'stale_expired') || '|'
       || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0');
SQL
)"
for v in u_from u_to u_rows u_wal; do need "$v" "${!v}"; done
finish_writer unbounded
[ "$u_rows" = "$STALE" ] || die "the unbounded UPDATE expired $u_rows rows, not $STALE"
IFS='|' read -r u_p50 u_p99 u_max u_n <<<"$(writer_stats unbounded "$u_from" "$u_to")"
for v in u_p50 u_p99 u_max u_n; do need "$v" "${!v}"; done

echo "== batched: foreman.schedule_expiry on bench_b, batch_size $BATCH, writer running"
sql -c "CHECKPOINT" >/dev/null
sql -c "SELECT pg_stat_statements_reset()" >/dev/null
start_writer batched bench_b "$WINDOW"
sleep "$LEAD"
IFS='|' read -r x_from x_to x_rows x_batches x_status x_wal <<<"$(sql <<SQL
SELECT clock_timestamp() AS t0, pg_current_wal_insert_lsn() AS l0 \gset
SELECT foreman.schedule_expiry('bench_expiry', 'bench_b', '1 hour', schedule => '1 hour',
                               batch_size => $BATCH, max_batches => 100000) AS job_id \gset
SELECT extract(epoch FROM started_at) || '|' || extract(epoch FROM finished_at) || '|' || rows_affected || '|'
       || batches || '|' || status || '|' || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0')
  FROM foreman.wait_for_run('bench_expiry', :'t0', '600 seconds');
SQL
)"
for v in x_from x_to x_rows x_batches x_wal; do need "$v" "${!v}"; done
[ "$x_status" = succeeded ] || die "the batched run ended $x_status"
x_longest=$(sql -c "SELECT round(max(max_exec_time)::numeric, 1) FROM pg_stat_statements
                     WHERE query LIKE 'UPDATE public.bench_b SET status = \$1 WHERE id IN (SELECT%'")
IFS='|' read -r x_calls x_mean <<<"$(sql -c "SELECT sum(calls) || '|' || round((sum(total_exec_time) / sum(calls))::numeric, 1)
                                            FROM pg_stat_statements
                                           WHERE query LIKE 'UPDATE public.bench_b SET status = \$1 WHERE id IN (SELECT%'")"
need x_longest "$x_longest"
need x_calls "$x_calls"
need x_mean "$x_mean"
[ "$x_calls" = "$x_batches" ] || die "pg_stat_statements counted $x_calls batches, the run $x_batches"
finish_writer batched
IFS='|' read -r x_p50 x_p99 x_max x_n <<<"$(writer_stats batched "$x_from" "$x_to")"
for v in x_p50 x_p99 x_max x_n; do need "$v" "${!v}"; done
left=$(sql -c "SELECT count(*) FROM bench_b WHERE status = 'active' AND created_at < now() - interval '1 hour'")

# The maintenance must have ended while the writer still ran.
for p in u x; do
	to_var=${p}_to
	from_var=${p}_from
	awk -v a="${!to_var}" -v b="${!from_var}" -v w="$WINDOW" -v l="$LEAD" 'BEGIN { exit !(a - b < w - l - 1) }' ||
		die "maintenance outlasted the writer's window; raise WINDOW (now $WINDOW s)"
done

u_secs=$(awk -v a="$u_to" -v b="$u_from" 'BEGIN { printf "%.2f", a - b }')
x_secs=$(awk -v a="$x_to" -v b="$x_from" 'BEGIN { printf "%.2f", a - b }')
u_rate=$(awk -v r="$u_rows" -v s="$u_secs" 'BEGIN { printf "%.0f", r / s }')
x_rate=$(awk -v r="$x_rows" -v s="$x_secs" 'BEGIN { printf "%.0f", r / s }')
u_longest=$(awk -v s="$u_secs" 'BEGIN { printf "%.1f", s * 1000 }')
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo
echo "== results"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory;" \
	"$(sql -c 'SELECT version()' | cut -d, -f1)"
echo "data: $STALE stale + $FRESH fresh rows per table; writer: pgbench -R $RATE -c $CLIENTS (UPDATE of a random row)"
echo
printf '%-24s %9s %10s %14s %10s %12s %12s %12s %7s\n' phase total_s rows/s longest_stmt WAL_MB writer_p50 writer_p99 writer_max writes
printf '%-24s %9s %10s %14s %10s %10s ms %9s ms %9s ms %7s\n' "baseline (no maintenance)" - - - - "$b_p50" "$b_p99" "$b_max" "$b_n"
printf '%-24s %9s %10s %11s ms %10s %10s ms %9s ms %9s ms %7s\n' "unbounded UPDATE" "$u_secs" "$u_rate" "$u_longest" \
	"$(mb "$u_wal")" "$u_p50" "$u_p99" "$u_max" "$u_n"
printf '%-24s %9s %10s %11s ms %10s %10s ms %9s ms %9s ms %7s\n' "batched ($x_batches x $BATCH)" "$x_secs" "$x_rate" \
	"$x_longest" "$(mb "$x_wal")" "$x_p50" "$x_p99" "$x_max" "$x_n"
echo
echo "batched run: $x_rows rows in $x_batches batches (mean batch statement $x_mean ms, longest $x_longest ms);" \
	"stale rows left for the next run (skipped while locked): $left"
echo "writer latencies count every transaction scheduled while the maintenance ran, from its scheduled start."
p99_ok=$(awk -v x="$x_p99" -v b="$b_p99" 'BEGIN { print (x <= 2 * b) ? "yes" : "NO" }')
rate_ok=$(awk -v x="$x_rate" -v u="$u_rate" 'BEGIN { print (x >= 0.5 * u) ? "yes" : "NO" }')
echo "target: writer p99 under batched expiry within 2x baseline p99 ($x_p99 vs 2 x $b_p99 ms): $p99_ok"
echo "target: batched rows/s at least 50% of the unbounded UPDATE's ($x_rate vs $u_rate): $rate_ok"
