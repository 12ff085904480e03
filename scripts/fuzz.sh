#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets with clang (ASan + UBSan) and fuzz the
# cron expression parser and fire-time search.
#
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh     # default: 300 seconds
#
# Needs clang and libclang-rt-dev (scripts/deps.sh fuzz installs them). The
# corpus grows in build/fuzz/cron_corpus; a crashing input is written to
# build/fuzz/crash-* and can be replayed with: build/fuzz/cron_fuzz <file>
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/fuzz -DFOREMAN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
cmake --build build/fuzz -j"$(nproc)" --target cron_fuzz

# Seeds: one of each form, so the fuzzer starts from valid expressions.
corpus=build/fuzz/cron_corpus
mkdir -p "$corpus"
i=0
while IFS= read -r seed; do
	printf '%s' "$seed" >"$corpus/seed-$i"
	i=$((i + 1))
done <<'EOF'
* * * * *
*/5 * * * *
0 0 * * *
30 2 * * *
*/20 * * * * *
0 9 * * mon-fri
0 0 1 jan,jul *
0 0 L 2 *
0 0 13 * fri
0 0 29 2 *
0 0 30 2 *
10-40/10 1,2,3 1-31/2 */3 0-7
50/3 * ? * sun/2
@hourly
@yearly
EOF

# Dictionary: the words of the grammar.
dict=build/fuzz/cron.dict
cat >"$dict" <<'EOF'
"*"
"?"
"L"
"/"
"-"
","
" "
"@yearly"
"@annually"
"@monthly"
"@weekly"
"@daily"
"@midnight"
"@hourly"
"jan"
"feb"
"dec"
"sun"
"mon"
"sat"
"59"
"31"
"12"
"7"
EOF

exec build/fuzz/cron_fuzz -max_total_time="${FUZZ_SECONDS:-300}" -dict="$dict" -artifact_prefix=build/fuzz/ \
	-print_final_stats=1 "$corpus"
