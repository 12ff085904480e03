#!/usr/bin/env bash
# run.sh: `make bench` - every target of issue 15 in one run, pg_foreman beside
# pg_cron, one table (a benchmark, not a test; not part of `make test`).
#
#   1 CPU per trivial run, all processes: 100 jobs every minute, pg_foreman and
#     pg_cron (libpq and background-worker modes)
#   2 one sequential tier, 1,000 SELECT 1 jobs every 100 ms, full history: runs/s
#   3 1 job due at a boundary: start delay p99 (pg_foreman: a run every second
#     between the other measurements, ~30 a minute; pg_cron: one per mode)
#   4 100 jobs due at one instant, sequential tier: p95 start delay
#   5 the same in a parallel tier of concurrency 8
#   6 50 databases x 2 tiers, nothing due: pg_foreman's CPU
#   7 the coordinator's private memory (RssAnon) over 1,000,000 runs
#   8 expiry: test/bench/expiry/run.sh (its own cluster), read from
#     $BENCH_DIR/expiry/results.json
# How: test/bench/lib/bench.py (minutes.py, sustained.py); the table:
# lib/report.py; the pictures (matplotlib): lib/plots.py. RESULTS.md says more.
#
# Output in $BENCH_DIR: results.json (every figure), report.txt (the table),
# verdict (complete, quick or missing), start_delay.svg, throughput.svg,
# memory.svg; the cluster and its log under cluster/. Exits non-zero, loudly,
# when a measurement is missing (a missed target does not fail it). About 12
# minutes on 2 cores plus the expiry benchmark's own: the minute phase takes
# 6-7 minutes, the memory phase 1,000,000 runs (2.5 minutes at 7,000 runs/s).
#
# Usage: bash test/bench/run.sh                 as root or as the test user;
#                                               `make bench` installs and builds first
#        bash test/bench/run.sh --copy-pictures copies the latest full run's SVGs
#                                               into test/bench/ (`make bench-pictures`)
# Environment: BENCH_DIR (/tmp/pg_foreman-bench), BENCH_PORT (54340; the
# expiry benchmark's cluster gets BENCH_PORT+1), BENCH_EXPIRY=0 leaves out the
# expiry benchmark, BENCH_EXPIRY_RESULTS=FILE reads its results from FILE
# instead of running it, BENCH_PYTHON (Debian's /usr/bin/python3: it has
# matplotlib). Quick tries (the table then says their figures do not answer
# the issue): BENCH_BOUNDARIES (2), BENCH_TPUT_SECONDS (60), BENCH_MEM_RUNS
# (1000000), BENCH_IDLE_DBS (50), BENCH_IDLE_SECONDS (60), e.g.
#   BENCH_BOUNDARIES=1 BENCH_TPUT_SECONDS=10 BENCH_MEM_RUNS=20000 BENCH_IDLE_DBS=5 \
#   BENCH_IDLE_SECONDS=10 BENCH_EXPIRY=0 bash test/bench/run.sh     (about 6 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

DIR=${BENCH_DIR:-/tmp/pg_foreman-bench}
PORT=${BENCH_PORT:-54340}
EXPIRY=${BENCH_EXPIRY:-1}
EXPIRY_JSON=${BENCH_EXPIRY_RESULTS:-$DIR/expiry/results.json}
PICTURES=(start_delay.svg throughput.svg memory.svg)
LIB=test/bench/lib
started=$(date +%s)

die() { echo "run.sh: FAILED: $*" >&2; exit 1; }

# Debian's python3 has python3-matplotlib; a python3 earlier on PATH (pyenv)
# may not.
PY=${BENCH_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3 || true)}
[ -n "$PY" ] || die "python3 is missing"

if [ "${1:-}" = --copy-pictures ]; then
	[ -f "$DIR/verdict" ] || die "no results in $DIR: run make bench first"
	verdict=$(cat "$DIR/verdict")
	[ "$verdict" = complete ] || [ "${BENCH_FORCE:-0}" = 1 ] ||
		die "the run in $DIR is not a complete full run ($verdict); BENCH_FORCE=1 copies its pictures anyway"
	for f in "${PICTURES[@]}"; do
		[ -f "$DIR/$f" ] || die "$DIR/$f is missing"
		cp "$DIR/$f" "test/bench/$f"
		echo "copied $DIR/$f -> test/bench/$f"
	done
	exit 0
fi

for f in "$PG_BIN/postgres" "$PG_BIN/pgbench" "$("$PG_BIN/pg_config" --pkglibdir)/pg_cron.so" \
	"$("$PG_BIN/pg_config" --pkglibdir)/pg_foreman.so" "$("$PG_BIN/pg_config" --sharedir)/extension/pg_foreman.control"; do
	[ -e "$f" ] || die "$f is missing: run 'make bench' (installs postgresql-$PG_MAJOR-cron and contrib, builds and installs pg_foreman)"
done
"$PY" -c 'import matplotlib' 2>/dev/null || die "$PY has no matplotlib: bash scripts/deps.sh bench (python3-matplotlib)"

ensure_test_user
stage_dir "$DIR"
echo "== make bench: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), results in $DIR"
"$PY" "$LIB/settings.py" describe

# 8: the expiry benchmark first, on its own cluster: it may stage BENCH_DIR
# itself, and what follows must not be in its way. It writes
# $BENCH_DIR/expiry/results.json.
expiry_arg=(--expiry "$EXPIRY_JSON")
if [ -n "${BENCH_EXPIRY_RESULTS:-}" ]; then
	echo "== expiry: read from $EXPIRY_JSON (BENCH_EXPIRY_RESULTS; not run)"
elif [ "$EXPIRY" = 1 ]; then
	[ -f test/bench/expiry/run.sh ] || die "test/bench/expiry/run.sh is missing (BENCH_EXPIRY=0 leaves it out)"
	echo "== expiry: test/bench/expiry/run.sh (port $((PORT + 1)))"
	out=$(mktemp)
	BENCH_DIR="$DIR" BENCH_PORT=$((PORT + 1)) bash test/bench/expiry/run.sh 2>&1 | tee "$out" ||
		echo "run.sh: the expiry benchmark FAILED (its figures are missing from the table)" >&2
	mkdir -p "$DIR" && mv "$out" "$DIR/expiry.out"
	sync   # its writes are not flushed inside the measurements that follow
else
	expiry_arg=(--expiry-skipped)
fi

# 1-7: one throwaway cluster (unix socket only). It is stopped by its
# postmaster's pid (read at exit: a restart changes it), whatever happens.
CLUSTER=$DIR/cluster
stop_cluster() {
	local pid
	[ -f "$CLUSTER/data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$CLUSTER/data/postmaster.pid")
	kill -INT "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "run.sh: postmaster $pid did not stop in 60 s; sending SIGQUIT" >&2
	kill -QUIT "$pid" 2>/dev/null || true
}
trap stop_cluster EXIT

echo "== a throwaway cluster in $CLUSTER (port $PORT) with pg_cron and pg_foreman preloaded"
stage_dir "$CLUSTER"
as_test_user initdb -D "$CLUSTER/data" -A trust -U postgres >/dev/null
"$PY" "$LIB/settings.py" conf "$CLUSTER" "$PORT" >>"$CLUSTER/data/postgresql.conf"
as_test_user pg_ctl -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 start >/dev/null
echo "   postmaster pid $(head -n 1 "$CLUSTER/data/postmaster.pid")"

# What was measured: the installed pg_foreman.so, built from this tree (make bench builds and installs it first).
BENCH_SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain -- src control Makefile 2>/dev/null)" ] || BENCH_SOURCE="$BENCH_SOURCE + uncommitted changes"
export BENCH_SOURCE

status=0
"$PY" "$LIB/bench.py" --data-dir "$CLUSTER/data" --socket-dir "$CLUSTER" --port "$PORT" \
	--log-file "$CLUSTER/server.log" --user "$TEST_USER" --pg-bin "$PG_BIN" --json "$DIR/results.json" ||
	status=1
stop_cluster
[ -f "$DIR/results.json" ] || die "bench.py wrote no results (server log: $CLUSTER/server.log)"

minutes=$((($(date +%s) - started) / 60)) seconds=$((($(date +%s) - started) % 60))
"$PY" "$LIB/plots.py" "$DIR/results.json" "$DIR" || status=1
"$PY" "$LIB/report.py" "$DIR/results.json" "${expiry_arg[@]}" --wall "$minutes min $seconds s" \
	--verdict "$DIR/verdict" >"$DIR/report.txt" || status=1
echo
echo "== results (command: make bench; table also in $DIR/report.txt)"
cat "$DIR/report.txt"
[ "$status" -eq 0 ] || die "a measurement is missing (see the table and the log above; server log: $CLUSTER/server.log)"
