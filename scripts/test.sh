#!/usr/bin/env bash
# test.sh all|unit|regress|tap: the project's test suites. Called by
# `make test` (after deps, build and install). Each suite creates, starts and
# stops its own clusters, as an unprivileged user; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/lib.sh

run_unit() {
	echo "=== unit tests (GoogleTest, src/core) ==="
	local pg_include=""
	[ -x "$PG_CONFIG" ] && pg_include=$("$PG_CONFIG" --includedir-server)
	cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_INCLUDE_SERVER="$pg_include" >/dev/null
	cmake --build build/cmake -j"$(nproc)" >/dev/null
	local out status=0
	out=$(cd build/cmake && ctest --output-on-failure -j"$(nproc)") || status=$?
	echo "$out" | tail -n 4
	[ $status -ne 0 ] && echo "$out"
	COUNTS+=("unit $(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 (\1 failed)/p')")
	return $status
}

run_regress() {
	echo "=== pg_regress ==="
	local dir=$TEST_ROOT/regress
	stage_dir "$dir"
	cp -r sql expected test/regression.conf "$dir/"
	is_root && chown -R "$TEST_USER" "$dir"
	local tests
	tests=$(make -s --no-print-directory print-regress)
	local status=0
	(cd "$dir" && as_test_user "$PG_REGRESS" --temp-instance="$dir/instance" \
		--temp-config="$dir/regression.conf" --bindir="$PG_BIN" --inputdir=. --outputdir=. \
		--port="$REGRESS_PORT" --load-extension=pg_foreman --dbname=foreman_regression $tests) |
		tee "$dir/pg_regress.out" || status=$?
	# pg_regress ends with "All N tests passed." (16 and later: as a TAP comment).
	COUNTS+=("pg_regress $(sed -n 's/.*All \([0-9]*\) tests passed.*/\1/p' "$dir/pg_regress.out" | head -n 1)")
	if [ $status -ne 0 ]; then
		[ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"
		return 1
	fi
}

run_tap() {
	echo "=== TAP (prove) ==="
	local dir=$TEST_ROOT/tap
	stage_dir "$dir"
	cp -r test/t "$dir/t"
	mkdir -p "$dir/doc" && cp doc/postgres_exporter.yaml "$dir/doc/" # read by t/072_metrics.pl
	is_root && chown -R "$TEST_USER" "$dir"
	local status=0
	(cd "$dir" && as_test_user env TESTDIR="$dir" PG_REGRESS="$PG_REGRESS" \
		prove -I "$PGXS_DIR/src/test/perl" -I "$dir/t" ${PROVE_FLAGS:-} ${PROVE_TESTS:-t/*.pl}) |
		tee "$dir/prove.out" || status=$?
	COUNTS+=("TAP $(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 files, \2 tests/p' "$dir/prove.out")")
	if [ $status -ne 0 ]; then
		# The logs of the files that failed only (PostgreSQL 15 keeps them
		# in tmp_check/log, 17 and later in log); prove's summary names them.
		local name f
		for name in $(tap_failed_files "$dir/prove.out"); do
			for f in "$dir"/tmp_check/log/regress_log_"$name" "$dir"/log/regress_log_"$name"; do
				[ -f "$f" ] || continue
				echo "--- $f (last 80 lines)"
				tail -n 80 "$f"
				TAP_FAILURES+="$name: $(grep -E -m 6 -A 3 'not ok|died|BAIL OUT|error running SQL|Broken pipe|Looks like your test exited' "$f")"$'\n'
			done
		done
		TAP_SUMMARY=$(sed -n '/^Test Summary Report/,/^Files=/p' "$dir/prove.out")
	fi
	return $status
}

# The test files prove's summary reports as failed, by their log's name
# ("t/048_parallel.pl (Wstat: ...)" gives 048_parallel).
tap_failed_files() {
	sed -n 's|^t/\([^ ]*\)\.pl  *(Wstat.*|\1|p' "$1" | sort -u
}

# What each suite ran, for the closing line "suite counts: ..." (make
# test-majors reads it).
COUNTS=()
TAP_SUMMARY=
TAP_FAILURES=
print_counts() { local IFS=';'; echo "suite counts: ${COUNTS[*]}" | sed 's/;/; /g'; }

ensure_test_user
case "${1:-all}" in
	unit) run_unit ;;
	regress) run_regress ;;
	tap) run_tap ;;
	all)
		failed=()
		run_unit || failed+=(unit)
		run_regress || failed+=(regress)
		run_tap || failed+=(tap)
		print_counts
		if [ ${#failed[@]} -gt 0 ]; then
			# Last, so that a CI log's tail names what failed.
			[ -n "$TAP_FAILURES" ] && printf '%s' "$TAP_FAILURES"
			[ -n "$TAP_SUMMARY" ] && echo "$TAP_SUMMARY"
			echo "FAILED suites: ${failed[*]}"
			exit 1
		fi
		echo "all suites passed: unit, pg_regress, TAP"
		;;
	*) echo "usage: $0 all|unit|regress|tap" >&2; exit 2 ;;
esac
