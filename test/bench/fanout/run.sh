#!/usr/bin/env bash
# bench/fanout: 1,000 runs of SELECT 1, all due at once, in
#   (1) a sequential tier (the coordinator runs them in-process),
#   (2) a parallel tier (concurrency 4) with a new executor per run
#       (foreman.executor_idle_timeout = 0: a fork and a connection each),
#   (3) the same parallel tier with executors kept for the next run.
# Prints runs/s and CPU per run (all processes of the cluster, from /proc,
# including exited children). A benchmark, not a test: it asserts nothing,
# but fails loudly when a measurement cannot be taken. Not part of make bench
# (its target 5 measures a parallel tier); settings: RUNS (1000), BENCH_DIR
# (/tmp/pg_foreman-bench; it works in BENCH_DIR/fanout), BENCH_PORT (54342).
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh

# Its own directory under BENCH_DIR, as the expiry benchmark's, and by
# default a port beside make bench's two (54340, 54341).
DIR=${BENCH_DIR:-/tmp/pg_foreman-bench}/fanout
PORT=${BENCH_PORT:-54342}
RUNS=${RUNS:-1000}
ensure_test_user
stage_dir "$DIR"
trap 'as_test_user pg_ctl -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT

as_test_user initdb -D "$DIR/data" -A trust -U postgres >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_foreman'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
max_worker_processes = 16
foreman.max_executors = 4
foreman.log_runs = 'none'
CONF
as_test_user pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
PM=$(head -n 1 "$DIR/data/postmaster.pid")
sql() { as_test_user psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres -c "$1"; }

# CPU ticks of the whole cluster: the postmaster, its exited children (cutime,
# cstime) and its live children.
cpu_ticks() {
	local total=0 f
	read -r -a st <"/proc/$PM/stat"
	total=$((st[13] + st[14] + st[15] + st[16]))
	for f in /proc/[0-9]*/stat; do
		{ read -r -a c <"$f"; } 2>/dev/null || continue
		[ "${c[3]}" = "$PM" ] && total=$((total + c[13] + c[14]))
	done
	echo "$total"
}
HZ=$(getconf CLK_TCK)

sql "CREATE EXTENSION pg_foreman; SELECT foreman.create_tier('par', '10 seconds', concurrency => 4);" >/dev/null
for i in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FILTER (WHERE leader) FROM foreman.tier_status")" = 3 ] && break
	sleep 0.2
done

measure() { # name tier
	local name=$1 tier=$2 t0 t1 c0 c1 done=0
	sql "SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name LIKE 'b%'" >/dev/null
	c0=$(cpu_ticks); t0=$(date +%s.%N)
	sql "SELECT count(foreman.schedule('b' || i, '1 hour', 'SELECT 1', tier => '$tier', log_runs => 'all')) FROM generate_series(1, $RUNS) i" >/dev/null
	for _ in $(seq 1 1200); do # at most 10 minutes
		done=$(sql "SELECT count(*) FROM foreman.job_run r JOIN foreman.job j USING (job_id) WHERE j.job_name LIKE 'b%' AND r.status <> 'running'")
		[ "$done" -ge "$RUNS" ] && break
		sleep 0.5
	done
	t1=$(date +%s.%N); c1=$(cpu_ticks)
	[ "$done" -ge "$RUNS" ] || { echo "FAILED: $name finished $done of $RUNS runs" >&2; exit 1; }
	local ok
	ok=$(sql "SELECT count(*) FROM foreman.job_run r JOIN foreman.job j USING (job_id) WHERE j.job_name LIKE 'b%' AND r.status = 'succeeded'")
	python3 - "$name" "$RUNS" "$ok" "$t0" "$t1" "$c0" "$c1" "$HZ" <<'PY'
import sys
name, runs, ok, t0, t1, c0, c1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
elapsed = t1 - t0
cpu_ms = (c1 - c0) * 1000.0 / hz
print(f"| {name:<38} | {runs:>5} | {ok:>9} | {elapsed:>8.2f} | {runs / elapsed:>8.0f} | {cpu_ms / runs:>11.3f} |")
PY
}

echo "pg_foreman fan-out benchmark: $RUNS runs of SELECT 1 each, all due at once ($(nproc) cores)"
echo
echo "| mode                                   |  runs | succeeded | time (s) |   runs/s | CPU/run (ms) |"
echo "|----------------------------------------|-------|-----------|----------|----------|--------------|"
measure "sequential tier (in the coordinator)" fast
sql "ALTER SYSTEM SET foreman.executor_idle_timeout = 0" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1 # let the reload reach every process (a deliberate pause, not a wait for work)
measure "parallel tier, new executor per run" par
sql "ALTER SYSTEM SET foreman.executor_idle_timeout = '2s'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
measure "parallel tier, executors reused" par
