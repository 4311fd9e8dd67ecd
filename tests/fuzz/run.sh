#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Long fuzzing runs (`make fuzz`): every libFuzzer target $ST_FUZZ_BUILD/fuzz/fuzz_* for
# ST_FUZZ_SECONDS (300) each, starting from tests/fuzz/corpus/<name>/. New inputs that add
# coverage are merged (minimised) back into that corpus directory; crashes are kept in
# tests/fuzz/crashes/. Exit status is non-zero when any target found a crash.
#   ST_FUZZ_BUILD=build/fuzzbuild ST_FUZZ_SECONDS=60 tests/fuzz/run.sh [TARGET-PATTERN]
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
FB=${ST_FUZZ_BUILD:-build/fuzzbuild}
SECS=${ST_FUZZ_SECONDS:-300}
JOBS=${ST_FUZZ_JOBS:-1}
PAT=${1:-*}

WORK=$(mktemp -d /tmp/st-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
trap 'echo "fuzz/run.sh: interrupted" >&2; exit 130' INT TERM

n=0 bad=0
for b in "$FB"/fuzz/fuzz_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	name=${b##*/}
	# shellcheck disable=SC2053
	[[ $name == $PAT ]] || continue
	n=$((n + 1))
	corpus=tests/fuzz/corpus/$name
	[ -d "$corpus" ] || { [ -d "tests/fuzz/corpus/${name#fuzz_}" ] && corpus=tests/fuzz/corpus/${name#fuzz_}; }
	mkdir -p "$corpus" tests/fuzz/crashes
	new=$WORK/new-$name
	mkdir -p "$new"
	echo "== $name: ${SECS}s from $corpus ($(find "$corpus" -type f | wc -l) seeds)"
	# New finds go to a scratch dir first (the first corpus dir is the one written to).
	par=()
	[ "$JOBS" -gt 1 ] && par=(-jobs="$JOBS" -workers="$JOBS")
	"$b" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 "${par[@]}" \
		-print_final_stats=1 -artifact_prefix="tests/fuzz/crashes/$name-" \
		"$new" "$corpus" >"$WORK/$name.log" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -ne 0 ]; then
		bad=$((bad + 1))
		echo "  FAIL $name (exit $rc); inputs in tests/fuzz/crashes/"
		tail -n 60 "$WORK/$name.log" | sed 's/^/    | /'
	else
		grep -E '^stat::(number_of_executed_units|new_units_added)' "$WORK/$name.log" | sed 's/^/  /'
	fi
	# Keep only inputs that add coverage to the committed corpus.
	if [ -n "$(ls -A "$new")" ]; then
		before=$(find "$corpus" -type f | wc -l)
		"$b" -merge=1 "$corpus" "$new" >"$WORK/$name.merge.log" 2>&1 </dev/null
		echo "  corpus $corpus: $before -> $(find "$corpus" -type f | wc -l) files"
	fi
done
[ "$n" -gt 0 ] || { echo "fuzz/run.sh: no fuzz target in $FB/fuzz (make fuzz-build BUILD=$FB)" >&2; exit 1; }
echo "$((n - bad)) targets clean, $bad with crashes"
[ "$bad" -eq 0 ]
