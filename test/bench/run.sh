#!/usr/bin/env bash
# run.sh: pg_foreman vs pg_cron, side by side on one throwaway cluster (a
# benchmark, not a test; `make bench`, not part of `make test`).
#
#   1 CPU per run     100 jobs INSERT INTO t(job, at) VALUES (k, clock_timestamp())
#                     every minute, over 3 minute boundaries each: pg_foreman,
#                     pg_cron with cron.use_background_workers off and on; CPU of
#                     every process of the cluster (/proc, reaped ones included)
#                     divided by the runs
#   2 start delay     of those runs (insert time - the boundary), and of 1 job
#   3 throughput      pg_foreman: 1,000 SELECT 1 jobs every 100 ms, one tier, 30 s
#   4 idle cost       pg_foreman's processes with 10,000 hourly jobs, 60 s, nothing due
#   5 memory          the coordinator's RSS before and after 100,000 runs
#   6 expiry          test/bench/expiry/run.sh (its own cluster, after this one stops)
#
# Only one of pg_cron and pg_foreman has anything due during a measurement
# (checked from both run histories). Prints one table; the full results are in
# $BENCH_DIR/results.json and the table in $BENCH_DIR/report.txt. Takes about
# 12 minutes on 2 cores. Exits non-zero, loudly, when a measurement could not
# be taken; nothing in the table is hard-coded.
#
# Usage: bash test/bench/run.sh   (as root or as the test user; needs the
# extension built and installed, pg_cron and pgbench: `make bench` does all that)
# Environment: BENCH_DIR (/tmp/pg_foreman-bench), BENCH_PORT (54340),
# BENCH_EXPIRY=0 to leave out the expiry benchmark. For trying the driver
# only (the figures then do not answer the issue): BENCH_BOUNDARIES (3),
# BENCH_MEM_RUNS (100000), BENCH_IDLE_SECONDS (60), BENCH_TPUT_SECONDS (30).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

DIR=${BENCH_DIR:-/tmp/pg_foreman-bench}
PORT=${BENCH_PORT:-54340}
EXPIRY=${BENCH_EXPIRY:-1}
started=$(date +%s)

die() { echo "run.sh: FAILED: $*" >&2; exit 1; }

for f in "$PG_BIN/postgres" "$PG_BIN/pgbench" "$("$PG_BIN/pg_config" --pkglibdir)/pg_cron.so" \
	"$("$PG_BIN/pg_config" --pkglibdir)/pg_foreman.so" "$("$PG_BIN/pg_config" --sharedir)/extension/pg_foreman.control"; do
	[ -e "$f" ] || die "$f is missing: run 'make bench' (installs postgresql-$PG_MAJOR-cron and contrib, builds and installs pg_foreman)"
done
command -v python3 >/dev/null || die "python3 is missing"

ensure_test_user
stage_dir "$DIR"

# The cluster is stopped by its postmaster's pid (read at exit: a restart
# changes it), whatever happens.
stop_cluster() {
	local pid
	[ -f "$DIR/data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$DIR/data/postmaster.pid")
	kill -INT "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "run.sh: postmaster $pid did not stop in 60 s; sending SIGQUIT" >&2
	kill -QUIT "$pid" 2>/dev/null || true
}
trap stop_cluster EXIT

echo "== a throwaway cluster in $DIR (unix socket only, port $PORT) with pg_cron and pg_foreman preloaded"
as_test_user initdb -D "$DIR/data" -A trust -U postgres >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_cron,pg_foreman'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
# pg_cron: its jobs live in the postgres database; in libpq mode it connects
# through the socket directory.
cron.database_name = 'postgres'
cron.host = '$DIR'
cron.use_background_workers = off
# Room for pg_cron's background workers (cron.max_running_jobs = 32) and the
# coordinators of both databases.
max_worker_processes = 64
CONF
as_test_user pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
echo "   postmaster pid $(head -n 1 "$DIR/data/postmaster.pid")"

# What was measured: the installed pg_foreman.so, built from this tree (make bench builds and installs it first).
BENCH_SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain -- src control Makefile 2>/dev/null)" ] || BENCH_SOURCE="$BENCH_SOURCE + uncommitted changes"
export BENCH_SOURCE

status=0
python3 test/bench/lib/bench.py --data-dir "$DIR/data" --socket-dir "$DIR" --port "$PORT" \
	--log-file "$DIR/server.log" --user "$TEST_USER" --pg-bin "$PG_BIN" --json "$DIR/results.json" ||
	status=$?
stop_cluster
[ "$status" -eq 0 ] || die "a measurement could not be taken (see above; server log: $DIR/server.log)"

expiry_out=()
if [ "$EXPIRY" = 1 ]; then
	[ -f test/bench/expiry/run.sh ] || die "test/bench/expiry/run.sh is missing (BENCH_EXPIRY=0 leaves it out)"
	echo "== expiry: test/bench/expiry/run.sh"
	bash test/bench/expiry/run.sh 2>&1 | tee "$DIR/expiry.out" || die "the expiry benchmark failed"
	expiry_out=("$DIR/expiry.out")
fi

echo
echo "== results ($(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s; command: make bench)"
python3 test/bench/lib/report.py "$DIR/results.json" "${expiry_out[@]}" >"$DIR/report.txt" ||
	die "the report is incomplete"
cat "$DIR/report.txt"
