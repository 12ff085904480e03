#!/usr/bin/env bash
# run.sh: the stale-expiry benchmark (a benchmark, not a test; not part of
# make test). On one throwaway cluster, for each index layout of the table -
#
#   pk          the primary key only (the batches sweep the heap)
#   created_at  and a plain index on created_at
#   partial     and the advised partial index on created_at, non-terminal rows only
#
# - over a fresh table of STALE stale + FRESH fresh rows (interleaved), each
# phase with a writer running (pgbench at a fixed rate, UPDATE of a random row):
#
#   baseline   the writer alone
#   batched    foreman.schedule_expiry's run expires the stale rows, batch
#              after batch (each its own transaction, each after the last)
#   unbounded  ONE UPDATE expires them (on a fresh copy of the table)
#
# REPEAT times in a row (the baseline next to the maintenance it is compared
# with, so that a machine whose load drifts affects both alike), and prints
# for each layout: rows/s of both (medians of the repetitions), their ratio,
# the writer's p99 in the baselines and during the batched expiries (over
# the transactions of all repetitions: one expiry lasts a second or two, a
# few hundred writes) and their ratio - the targets of issue 15 are ratio >=
# 75%, writer p99 <= 1.5x - with total times, longest batch, WAL, and the
# writer's p50/p99/max (from pgbench's per-transaction log, counted from each
# transaction's scheduled start, so waits are not hidden). The same figures
# go to $BENCH_DIR/expiry/results.json (read by make bench).
#
# Usage: bash test/bench/expiry/run.sh   (as root or as the test user; needs
# the extension built and installed: make build-install, and pgbench)
# Settings (environment): STALE FRESH RATE CLIENTS BATCH PAUSE WINDOW BASELINE
# REPEAT LAYOUTS BENCH_DIR (/tmp/pg_foreman-bench) BENCH_PORT (54341); EXTRA_CONF (lines
# added to postgresql.conf, e.g. 'wal_compression = lz4': not the issue's setup); PERF=1 also
# records a perf profile of the backend running the unbounded UPDATE and of
# the coordinator running the batches (figures of such a run are not the
# benchmark's: perf costs time). Exits non-zero, loudly, when a measurement is
# missing; a missed target is reported, not a failure.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib.sh

STALE=${STALE:-300000}
FRESH=${FRESH:-300000}
RATE=${RATE:-200}          # writer transactions per second (pgbench -R)
CLIENTS=${CLIENTS:-4}      # writer connections
BATCH=${BATCH:-1000}       # batch_size of the batched expiry: schedule_expiry's default
                           # (5000 until 2026-11-30: expiry/RESULTS.md, "Batch size")
PAUSE=${PAUSE:-0}          # batch_pause of the batched expiry, in milliseconds
WINDOW=${WINDOW:-12}       # seconds the writer runs in each maintenance phase
BASELINE=${BASELINE:-10}   # seconds of the baseline writer (each repetition)
REPEAT=${REPEAT:-3}        # repetitions of baseline, batched and unbounded per layout
LAYOUTS=${LAYOUTS:-pk created_at partial}
PERF=${PERF:-0}
LEAD=3                     # seconds the writer runs before maintenance starts
DIR=${BENCH_DIR:-/tmp/pg_foreman-bench}/expiry
PORT=${BENCH_PORT:-54341}
ROWS=$((STALE + FRESH))
TERMINAL="'completed', 'complete', 'failed', 'expired', 'cancelled', 'stale_expired'"

die() { echo "run.sh: FAILED: $*" >&2; exit 1; }
# A measurement must be a number; anything else ends the run.
need() { [[ "$2" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || die "measurement '$1' is missing or not a number: '$2'"; }

command -v "$PG_BIN/pgbench" >/dev/null || die "pgbench is missing: bash scripts/deps.sh bench"
[ "$PERF" = 0 ] || command -v perf >/dev/null || die "PERF=1 needs perf"
ensure_test_user
stage_dir "$DIR"
stop_cluster() {
	[ -f "$DIR/data/postmaster.pid" ] || return 0
	as_test_user pg_ctl -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
		kill -TERM "$(head -n 1 "$DIR/data/postmaster.pid")" 2>/dev/null || true
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
${EXTRA_CONF:-}
CONF
as_test_user pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null

sql() { as_test_user psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"; }

echo "== setup: a template of $STALE stale + $FRESH fresh rows (interleaved); each phase gets a fresh copy"
sql >/dev/null <<SQL
CREATE EXTENSION pg_foreman;
CREATE EXTENSION pg_stat_statements;
CREATE TABLE template (id bigint PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL,
                       payload int NOT NULL DEFAULT 0, note text NOT NULL);
INSERT INTO template (id, status, created_at, note)
SELECT i, 'active',
       CASE WHEN CASE WHEN i <= 2 * least($STALE, $FRESH) THEN i % 2 = 1 ELSE $STALE > $FRESH END
            THEN now() - interval '2 days' + i * interval '1 ms' ELSE now() END,
       repeat(md5(i::text), 3)
  FROM generate_series(1, $ROWS) i;
CREATE TABLE writer_log (phase text, client int, tx bigint, latency_us bigint, script int, epoch bigint, usec bigint,
                         lag_us bigint, counted boolean NOT NULL DEFAULT false);
CREATE TABLE results (layout text PRIMARY KEY, ord int, figures jsonb NOT NULL DEFAULT '{}');
-- One row per repetition of a maintenance phase: layout, kind, figures.
CREATE TABLE phases (layout text, kind text, rep int, figures jsonb NOT NULL);
SQL

# A fresh table t_<layout>: the template's rows, its primary key, the layout's
# index; vacuumed, analysed, and a checkpoint (so each phase pays the same
# full-page writes).
make_table() { # layout
	local t="t_$1" index=""
	case "$1" in
		pk) ;;
		created_at) index="CREATE INDEX ${t}_created_at ON $t (created_at);" ;;
		partial) index="CREATE INDEX ${t}_stale ON $t (created_at) WHERE status NOT IN ($TERMINAL);" ;;
		*) die "unknown layout '$1' (pk, created_at, partial)" ;;
	esac
	sql >/dev/null <<-SQL
		DROP TABLE IF EXISTS $t;
		CREATE TABLE $t (LIKE template INCLUDING ALL);
		INSERT INTO $t SELECT * FROM template;
		$index
		VACUUM ANALYZE $t;
		CHECKPOINT;
	SQL
	local n
	n=$(sql -c "SELECT count(*) FROM $t WHERE status = 'active' AND created_at < now() - interval '1 hour'")
	[ "$n" = "$STALE" ] || die "$t has $n stale rows, not $STALE"
	printf '\\set id random(1, %d)\nUPDATE %s SET payload = payload + 1 WHERE id = :id;\n' "$ROWS" "$t" >"$DIR/writer_$1.sql"
	is_root && chown "$TEST_USER" "$DIR/writer_$1.sql"
	return 0
}

# The writer in the background: pgbench at a fixed rate, one log line per
# transaction. Sets WRITER_PID.
start_writer() { # phase layout seconds
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
# Marks the writer's transactions of a phase that were scheduled within
# [from, to] (epoch seconds) as counted.
count_writes() { # phase from to
	sql -c "UPDATE writer_log SET counted = true
	         WHERE phase = '$1' AND epoch + usec / 1e6 - latency_us / 1e6 BETWEEN $2 AND $3" >/dev/null
}
# p50|p99|max|transactions of the counted writes of all phases like pattern.
writer_stats() { # pattern
	sql -c "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_us) / 1000)::numeric, 2) || '|' ||
	               round((percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_us) / 1000)::numeric, 2) || '|' ||
	               round((max(latency_us) / 1000.0)::numeric, 2) || '|' || count(*)
	          FROM writer_log WHERE counted AND phase LIKE '$1'"
}
now_epoch() { sql -c "SELECT extract(epoch FROM clock_timestamp())"; }
# Adds a repetition's figures: record layout kind rep key value [key value ...]
record() {
	local layout=$1 kind=$2 rep=$3 pairs=""
	shift 3
	while [ $# -gt 0 ]; do
		need "$layout $kind $1" "$2"
		pairs="$pairs, '$1', $2"
		shift 2
	done
	sql -c "INSERT INTO phases VALUES ('$layout', '$kind', $rep, jsonb_build_object(${pairs#, }))" >/dev/null
}
# The maintenance must have ended while the writer still ran.
within_window() { # from to what
	awk -v a="$2" -v b="$1" -v w="$WINDOW" -v l="$LEAD" 'BEGIN { exit !(a - b < w - l - 1) }' ||
		die "$3 outlasted the writer's window; raise WINDOW (now $WINDOW s)"
}
# perf record of one process while a phase runs (PERF=1): sets PERF_PID.
perf_start() { # pid name
	PERF_PID=""
	[ "$PERF" = 1 ] || return 0
	perf record -F 4999 -g -p "$1" -o "$DIR/perf_$2.data" >/dev/null 2>&1 &
	PERF_PID=$!
}
perf_stop() { # name
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	perf report -i "$DIR/perf_$1.data" --no-children --sort dso,sym -g none --stdio 2>/dev/null |
		grep -E '^ +[0-9]' | head -n 40 >"$DIR/perf_$1.txt" || true
	echo "   perf profile: $DIR/perf_$1.txt (data: $DIR/perf_$1.data)"
}

phase_baseline() { # layout rep
	echo "== $1 ($2/$REPEAT): baseline: the writer alone for ${BASELINE}s (pgbench -R $RATE -c $CLIENTS, UPDATE of a random row of $ROWS)"
	start_writer "baseline_$1_$2" "$1" "$BASELINE"
	local from to
	from=$(now_epoch)
	finish_writer "baseline_$1_$2"
	to=$(now_epoch)
	count_writes "baseline_$1_$2" "$from" "$to"
}

phase_batched() { # layout rep
	local t="t_$1" rep=$2
	echo "== $1 ($rep/$REPEAT): batched: foreman.schedule_expiry on $t, batch_size $BATCH, batch_pause $PAUSE ms, writer running"
	sql -c "SELECT pg_stat_statements_reset()" >/dev/null
	local coordinator
	coordinator=$(sql -c "SELECT pid FROM foreman.tier_status WHERE tier = 'slow' AND leader")
	need "slow coordinator pid" "$coordinator"
	start_writer "batched_$1_$rep" "$1" "$WINDOW"
	sleep "$LEAD"
	perf_start "$coordinator" "batched_$1_$rep"
	local from to rows batches status wal
	IFS='|' read -r from to rows batches status wal <<<"$(sql 2>"$DIR/notice_$1.txt" <<-SQL
		SELECT clock_timestamp() AS t0, pg_current_wal_insert_lsn() AS l0 \gset
		SELECT foreman.schedule_expiry('expire_$1', '$t', '1 hour', schedule => '1 hour',
		                               batch_size => $BATCH, batch_pause => '$PAUSE ms', max_batches => 100000) AS job_id \gset
		SELECT extract(epoch FROM started_at) || '|' || extract(epoch FROM finished_at) || '|' || rows_affected || '|'
		       || batches || '|' || status || '|' || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0')
		  FROM foreman.wait_for_run('expire_$1', :'t0', '600 seconds');
	SQL
	)"
	perf_stop "batched_$1_$rep"
	[ "$rep" != 1 ] || sed 's/^/   /' "$DIR/notice_$1.txt"
	for v in from to rows batches wal; do need "batched $1 $v" "${!v}"; done
	[ "$status" = succeeded ] || die "the batched run on $t ended $status"
	local longest calls mean
	IFS='|' read -r longest calls mean <<<"$(sql -c "
		SELECT round(max(max_exec_time)::numeric, 1) || '|' || sum(calls) || '|'
		       || round((sum(total_exec_time) / sum(calls))::numeric, 1)
		  FROM pg_stat_statements WHERE query LIKE 'WITH batch AS MATERIALIZED (SELECT % FROM ONLY public.$t %'
		                             OR query LIKE 'WITH batch AS MATERIALIZED (SELECT % FROM public.$t %'")"
	need "batched $1 longest batch" "$longest"
	[ "$calls" = "$batches" ] || die "pg_stat_statements counted $calls batches on $t, the run $batches"
	finish_writer "batched_$1_$rep"
	within_window "$from" "$to" "the batched expiry of $t"
	count_writes "batched_$1_$rep" "$from" "$to"
	local left scan
	left=$(sql -c "SELECT count(*) FROM $t WHERE status = 'active' AND created_at < now() - interval '1 hour'")
	scan=$(sql -c "SELECT batches FROM foreman.maintenance_advice WHERE job_name = 'expire_$1'")
	sql -c "SELECT foreman.unschedule('expire_$1')" >/dev/null
	record "$1" batched "$rep" rows "$rows" seconds "$(awk -v a="$to" -v b="$from" 'BEGIN { printf "%.3f", a - b }')" \
		batches "$batches" longest_batch_ms "$longest" mean_batch_ms "$mean" \
		wal_mb "$(awk -v b="$wal" 'BEGIN { printf "%.1f", b / 1048576 }')" left_for_next_run "$left"
	sql -c "UPDATE results SET figures = figures || jsonb_build_object('scan', '$scan') WHERE layout = '$1'" >/dev/null
}

phase_unbounded() { # layout rep
	local t="t_$1" rep=$2
	echo "== $1 ($rep/$REPEAT): unbounded: one UPDATE of all stale rows of a fresh $t, writer running"
	start_writer "unbounded_$1_$rep" "$1" "$WINDOW"
	sleep "$LEAD"
	local pid from to rows wal
	# The UPDATE runs in a session of its own, whose pid perf may follow.
	rm -f "$DIR/unbounded.pid"
	sql >"$DIR/unbounded_$1.out" <<-SQL &
		\o $DIR/unbounded.pid
		SELECT pg_backend_pid();
		\o
		SELECT pg_sleep(0.5);
		SELECT extract(epoch FROM clock_timestamp()) AS t0, pg_current_wal_insert_lsn() AS l0 \gset
		UPDATE $t SET status = 'stale_expired'
		 WHERE status NOT IN ($TERMINAL) AND created_at < now() - interval '1 hour';
		SELECT :t0 || '|' || extract(epoch FROM clock_timestamp()) || '|'
		       || (SELECT count(*) FROM $t WHERE status = 'stale_expired') || '|'
		       || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0');
	SQL
	local session=$!
	for _ in $(seq 1 100); do [ -s "$DIR/unbounded.pid" ] && break; sleep 0.05; done
	pid=$(tr -dc 0-9 <"$DIR/unbounded.pid")
	perf_start "$pid" "unbounded_$1_$rep"
	wait "$session" || die "the unbounded UPDATE of $t failed: $(tail -n 3 "$DIR/unbounded_$1.out")"
	perf_stop "unbounded_$1_$rep"
	IFS='|' read -r from to rows wal <<<"$(tail -n 1 "$DIR/unbounded_$1.out")"
	for v in from to rows wal; do need "unbounded $1 $v" "${!v}"; done
	[ "$rows" = "$STALE" ] || die "the unbounded UPDATE of $t expired $rows rows, not $STALE"
	finish_writer "unbounded_$1_$rep"
	within_window "$from" "$to" "the unbounded UPDATE of $t"
	count_writes "unbounded_$1_$rep" "$from" "$to"
	record "$1" unbounded "$rep" rows "$rows" seconds "$(awk -v a="$to" -v b="$from" 'BEGIN { printf "%.3f", a - b }')" \
		wal_mb "$(awk -v b="$wal" 'BEGIN { printf "%.1f", b / 1048576 }')"
}

# The layout's figures from its repetitions: rows/s as medians, the writer's
# latencies over the counted writes of all repetitions.
summarize() { # layout
	local kind p50 p99 max n
	for kind in baseline batched unbounded; do
		IFS='|' read -r p50 p99 max n <<<"$(writer_stats "${kind}_$1_%")"
		for v in p50 p99 max n; do need "writer $1 $kind $v" "${!v}"; done
		sql -c "UPDATE results SET figures = figures || jsonb_build_object(
		            'writer_p50_ms_$kind', $p50, 'writer_p99_ms_$kind', $p99, 'writer_max_ms_$kind', $max,
		            'writes_$kind', $n) WHERE layout = '$1'" >/dev/null
	done
	sql >/dev/null <<-SQL
		UPDATE results r SET figures = r.figures || jsonb_build_object(
		    'repetitions', $REPEAT, 'batch_size', $BATCH, 'batch_pause_ms', $PAUSE,
		    'batched_rows_per_s', (SELECT round(percentile_cont(0.5) WITHIN GROUP (
		                                ORDER BY (figures->>'rows')::numeric / (figures->>'seconds')::numeric)::numeric)
		                             FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'unbounded_rows_per_s', (SELECT round(percentile_cont(0.5) WITHIN GROUP (
		                                ORDER BY (figures->>'rows')::numeric / (figures->>'seconds')::numeric)::numeric)
		                             FROM phases WHERE layout = r.layout AND kind = 'unbounded'),
		    'batched_rows_per_s_each', (SELECT jsonb_agg(round((figures->>'rows')::numeric / (figures->>'seconds')::numeric)
		                                                 ORDER BY rep) FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'unbounded_rows_per_s_each', (SELECT jsonb_agg(round((figures->>'rows')::numeric / (figures->>'seconds')::numeric)
		                                                   ORDER BY rep) FROM phases WHERE layout = r.layout AND kind = 'unbounded'),
		    'batched_s', (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (figures->>'seconds')::numeric)::numeric, 3)
		                    FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'unbounded_s', (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (figures->>'seconds')::numeric)::numeric, 3)
		                      FROM phases WHERE layout = r.layout AND kind = 'unbounded'),
		    'batches', (SELECT max((figures->>'batches')::int) FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'longest_batch_ms', (SELECT max((figures->>'longest_batch_ms')::numeric)
		                           FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'mean_batch_ms', (SELECT round(avg((figures->>'mean_batch_ms')::numeric), 1)
		                        FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'wal_mb_batched', (SELECT round(avg((figures->>'wal_mb')::numeric), 1)
		                         FROM phases WHERE layout = r.layout AND kind = 'batched'),
		    'wal_mb_unbounded', (SELECT round(avg((figures->>'wal_mb')::numeric), 1)
		                           FROM phases WHERE layout = r.layout AND kind = 'unbounded'),
		    'left_for_next_run', (SELECT max((figures->>'left_for_next_run')::int)
		                            FROM phases WHERE layout = r.layout AND kind = 'batched'))
		 WHERE layout = '$1';
	SQL
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
ord=0
for layout in $LAYOUTS; do
	ord=$((ord + 1))
	sql -c "INSERT INTO results (layout, ord) VALUES ('$layout', $ord)" >/dev/null
	for rep in $(seq 1 "$REPEAT"); do
		make_table "$layout"
		phase_baseline "$layout" "$rep"
		phase_batched "$layout" "$rep"
		make_table "$layout"
		phase_unbounded "$layout" "$rep"
	done
	sql -c "DROP TABLE t_$layout" >/dev/null
	summarize "$layout"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)

machine="$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(sql -c 'SELECT version()' | cut -d, -f1), load average $load_before before / $load_after after"
echo
echo "== results"
echo "machine: $machine"
echo "data: $STALE stale + $FRESH fresh rows per table; writer: pgbench -R $RATE -c $CLIENTS (UPDATE of a random row); batch_size $BATCH, batch_pause $PAUSE ms; $REPEAT repetitions (rows/s: medians; writer: all repetitions' writes)"
echo
# The derived figures, in SQL from the recorded ones: rows/s, ratios, targets.
sql >/dev/null <<'SQL'
UPDATE results SET figures = figures || jsonb_build_object('layout', layout);
UPDATE results SET figures = figures || jsonb_build_object(
    'ratio', round((figures->>'batched_rows_per_s')::numeric / (figures->>'unbounded_rows_per_s')::numeric, 3),
    'writer_p99_ratio', round((figures->>'writer_p99_ms_batched')::numeric
                              / nullif((figures->>'writer_p99_ms_baseline')::numeric, 0), 3));
UPDATE results SET figures = figures || jsonb_build_object(
    'ratio_met', (figures->>'ratio')::numeric >= 0.75,
    'writer_p99_met', (figures->>'writer_p99_ratio')::numeric <= 1.5);
SQL
sql -P footer=off -A -F ' ' <<'SQL' | column -t
SELECT 'layout', 'scan', 'batched_rows/s', 'unbounded_rows/s', 'ratio(>=0.75)', 'p99_base_ms', 'p99_batched_ms',
       'p99_ratio(<=1.5)', 'batches', 'mean/longest_batch_ms', 'unbounded_s', 'batched_s', 'WAL_MB(unb/bat)',
       'p99_unbounded_ms', 'writes(base/bat)'
UNION ALL
SELECT * FROM (
SELECT layout, figures->>'scan', figures->>'batched_rows_per_s', figures->>'unbounded_rows_per_s',
       (figures->>'ratio') || CASE WHEN (figures->>'ratio_met')::boolean THEN '' ELSE '(missed)' END,
       figures->>'writer_p99_ms_baseline', figures->>'writer_p99_ms_batched',
       (figures->>'writer_p99_ratio') || CASE WHEN (figures->>'writer_p99_met')::boolean THEN '' ELSE '(missed)' END,
       (figures->>'batches') || 'x' || (figures->>'batch_size'),
       (figures->>'mean_batch_ms') || '/' || (figures->>'longest_batch_ms'),
       figures->>'unbounded_s', figures->>'batched_s',
       (figures->>'wal_mb_unbounded') || '/' || (figures->>'wal_mb_batched'), figures->>'writer_p99_ms_unbounded',
       (figures->>'writes_baseline') || '/' || (figures->>'writes_batched')
  FROM results ORDER BY ord) AS r;
SQL
echo
sql -c "SELECT string_agg(layout || ': rows/s batched ' || (figures->>'batched_rows_per_s_each') || ', unbounded '
                          || (figures->>'unbounded_rows_per_s_each') || '; at most ' || (figures->>'left_for_next_run')
                          || ' stale rows left for the next run', E'\n' ORDER BY ord)
          FROM results"
echo "writer latencies count every transaction scheduled while the maintenance ran, from its scheduled start."

# The machine-readable results; every figure must be there.
sql -c "SELECT jsonb_pretty(jsonb_build_object(
            'machine', '$machine',
            'data', '$STALE stale + $FRESH fresh rows, interleaved',
            'writer', 'pgbench -R $RATE -c $CLIENTS, UPDATE of a random row',
            'batch_size', $BATCH,
            'batch_pause_ms', $PAUSE,
            'repetitions', $REPEAT,
            'perf', $([ "$PERF" = 1 ] && echo true || echo false),
            'layouts', (SELECT jsonb_agg(figures ORDER BY ord) FROM results)))" >"$DIR/results.json.tmp"
python3 - "$DIR/results.json.tmp" $LAYOUTS <<'PY' || die "results.json is incomplete"
import json, sys
r = json.load(open(sys.argv[1]))
want = ("batched_rows_per_s", "unbounded_rows_per_s", "ratio", "writer_p99_ms_baseline", "writer_p99_ms_batched",
        "writer_p99_ratio")
got = {x.get("layout"): x for x in r["layouts"]}
for layout in sys.argv[2:]:
    for key in want:
        if not isinstance(got.get(layout, {}).get(key), (int, float)):
            sys.exit(f"layout {layout}: {key} is missing")
PY
mv "$DIR/results.json.tmp" "$DIR/results.json"
is_root && chown "$TEST_USER" "$DIR/results.json"
echo "results: $DIR/results.json"
