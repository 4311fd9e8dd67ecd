#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The shadowtap test suite runner (`make test`, `make check`).
#
#   ST_BUILD=build/san [ST_FUZZ_BUILD=build/fuzzbuild] tests/run.sh [FILTER]
#
# Runs, in order:
#   1. every cmocka binary $ST_BUILD/tests/test_* (unit tests and BPF program tests;
#      the latter skip without root), counting cmocka's passed/failed/skipped tests;
#   2. every libFuzzer target $ST_FUZZ_BUILD/fuzz/fuzz_* for ST_FUZZ_SMOKE_SECONDS (3), as
#      many at once as there are CPUs
#      from a copy of its seed corpus tests/fuzz/corpus/<name>/;
#   3. every tests/integration/test_*.sh (exit 0 pass, 77 skip, else fail), each under a
#      timeout (ST_TEST_TIMEOUT, 180 s), its output shown only when it fails.
# FILTER (optional) is a shell pattern matched against the test names; others are not run.
# The last line is always "N passed, N failed, N skipped". Exit status is non-zero when
# anything failed or when no test ran.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
ST_BUILD=${ST_BUILD:-build}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
export ST_BUILD
if [ -n "${ST_FUZZ_BUILD:-}" ]; then
	case $ST_FUZZ_BUILD in /*) ;; *) ST_FUZZ_BUILD=$ROOT/$ST_FUZZ_BUILD ;; esac
fi
SMOKE=${ST_FUZZ_SMOKE_SECONDS:-3}
TIMEOUT=${ST_TEST_TIMEOUT:-180}
FILTER=${1:-*}

passed=0 failed=0 skipped=0
T_START=$(date +%s)
failures=()

WORK=$(mktemp -d /tmp/st-run.XXXXXX) || exit 1
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

if [ -t 1 ]; then G=$'\e[32m' R=$'\e[31m' Y=$'\e[33m' N=$'\e[0m'; else G='' R='' Y='' N=''; fi

# show_log FILE: prints the tail of a failed test's log, indented.
show_log() {
	local lines
	lines=$(wc -l <"$1")
	if [ "$lines" -gt 200 ]; then
		echo "    ... ($((lines - 200)) earlier lines in the log omitted)"
	fi
	tail -n 200 "$1" | sed 's/^/    | /'
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# ---- 1. cmocka binaries -------------------------------------------------------------------
unit_bins=()
if [ -d "$ST_BUILD/tests" ]; then
	for b in "$ST_BUILD"/tests/test_*; do
		[ -f "$b" ] && [ -x "$b" ] || continue
		case ${b##*/} in *.o | *.d) continue ;; esac
		# shellcheck disable=SC2053
		[[ ${b##*/} == $FILTER ]] || continue
		unit_bins+=("$b")
	done
fi
[ ${#unit_bins[@]} -gt 0 ] && echo "== cmocka tests (${ST_BUILD#"$ROOT"/}/tests)"
for b in "${unit_bins[@]}"; do
	name=${b##*/}
	out=$WORK/$name.out err=$WORK/$name.err
	t0=$(date +%s)
	# ASan: leaks are real failures; abort on the first report. A hung test is a failure.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		timeout --kill-after=5 "$TIMEOUT" "$b" >"$out" 2>"$err" </dev/null
	rc=$?
	# cmocka writes one line per test on stdout ("[       OK ] name", "[  FAILED  ] name",
	# "[  SKIPPED ] name") and its summary on stderr; count the per-test lines.
	nrun=$(grep -c '^\[ RUN      \] ' "$out")
	nok=$(grep -c '^\[       OK \] ' "$out")
	nfail=$(grep -c '^\[  FAILED  \] ' "$out")
	nskip=$(grep -c '^\[  SKIPPED \] ' "$out")
	# Tests that started but never finished (a crash inside a test) are failures.
	crashed=$((nrun - nok - nfail - nskip))
	[ "$crashed" -gt 0 ] && nfail=$((nfail + crashed))
	# A non-zero exit with no failed test counted (crash in setup, sanitizer report at exit,
	# timeout) is one failure of the binary itself.
	if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then nfail=1; fi
	if [ "$rc" -eq 0 ] && [ "$nrun" -eq 0 ]; then
		echo "  ${Y}WARN${N} $name ran no test"
	fi
	passed=$((passed + nok)) failed=$((failed + nfail)) skipped=$((skipped + nskip))
	if [ "$nfail" -gt 0 ]; then
		extra=""
		[ "$rc" -eq 124 ] && extra=", timed out after ${TIMEOUT}s"
		echo "  ${R}FAIL${N} $name: $nok passed, $nfail failed, $nskip skipped (exit $rc$extra, $(elapsed "$t0"))"
		cat "$out" "$err" >"$WORK/$name.log"
		show_log "$WORK/$name.log"
		failures+=("$name")
	else
		echo "  ${G}ok${N}   $name: $nok passed, $nskip skipped ($(elapsed "$t0"))"
	fi
done

# ---- 2. fuzz smoke runs -------------------------------------------------------------------
fuzz_bins=()
if [ -n "${ST_FUZZ_BUILD:-}" ] && [ -d "$ST_FUZZ_BUILD/fuzz" ]; then
	for b in "$ST_FUZZ_BUILD"/fuzz/fuzz_*; do
		[ -f "$b" ] && [ -x "$b" ] || continue
		case ${b##*/} in *.o | *.d) continue ;; esac
		# shellcheck disable=SC2053
		[[ ${b##*/} == $FILTER ]] || continue
		fuzz_bins+=("$b")
	done
fi
[ ${#fuzz_bins[@]} -gt 0 ] && echo "== fuzz smoke (${SMOKE}s each, $(nproc) at a time)"
# fuzz_run NAME BIN: one smoke run; its status in $WORK/NAME.rc, its time in $WORK/NAME.secs.
fuzz_run() {
	local name=$1 b=$2 corpus=$WORK/corpus-$1 art=$WORK/artifacts-$1 seed t0 rc
	mkdir -p "$corpus" "$art"
	for seed in "tests/fuzz/corpus/$name" "tests/fuzz/corpus/${name#fuzz_}"; do
		[ -d "$seed" ] && cp -r "$seed/." "$corpus/"
	done
	t0=$(date +%s)
	timeout --kill-after=10 $((SMOKE + 120)) "$b" -max_total_time="$SMOKE" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" "$corpus" \
		>"$WORK/$name.log" 2>&1 </dev/null
	rc=$?
	echo $(($(date +%s) - t0)) >"$WORK/$name.secs"
	echo "$rc" >"$WORK/$name.rc"
}
# Each target is single-threaded: as many at once as there are CPUs, reported in order.
running=0
for b in "${fuzz_bins[@]}"; do
	if [ "$running" -ge "$(nproc)" ]; then
		wait -n
		running=$((running - 1))
	fi
	fuzz_run "${b##*/}" "$b" &
	running=$((running + 1))
done
wait
for b in "${fuzz_bins[@]}"; do
	name=${b##*/}
	log=$WORK/$name.log art=$WORK/artifacts-$name
	rc=$(cat "$WORK/$name.rc" 2>/dev/null || echo 1)
	secs=$(cat "$WORK/$name.secs" 2>/dev/null || echo '?')
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
		echo "  ${G}ok${N}   $name: ${execs:-?} runs (${secs}s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "  ${R}FAIL${N} $name (exit $rc, ${secs}s); crashing input kept in tests/fuzz/crashes/"
		mkdir -p tests/fuzz/crashes && cp -r "$art/." tests/fuzz/crashes/ 2>/dev/null
		show_log "$log"
	fi
done

# ---- 3. integration tests -----------------------------------------------------------------
int_tests=()
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	n=${t##*/}
	# shellcheck disable=SC2053
	[[ ${n%.sh} == $FILTER || $n == $FILTER ]] || continue
	int_tests+=("$t")
done
[ ${#int_tests[@]} -gt 0 ] && echo "== integration tests (timeout ${TIMEOUT}s each)"
for t in "${int_tests[@]}"; do
	name=${t##*/}
	name=${name%.sh}
	log=$WORK/$name.log
	t0=$(date +%s)
	# Each script traps TERM and cleans up; KILL follows only if it hangs in its cleanup.
	timeout --kill-after=20 "$TIMEOUT" bash "$t" >"$log" 2>&1 </dev/null
	rc=$?
	case $rc in
	0)
		passed=$((passed + 1))
		echo "  ${G}ok${N}   $name ($(elapsed "$t0"))"
		;;
	77)
		skipped=$((skipped + 1))
		why=$(grep -m1 -i 'skip' "$log" | cut -c1-150)
		echo "  ${Y}skip${N} $name${why:+: $why}"
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name")
		extra=""
		[ "$rc" -eq 124 ] && extra=", timed out after ${TIMEOUT}s"
		echo "  ${R}FAIL${N} $name (exit $rc$extra, $(elapsed "$t0"))"
		show_log "$log"
		;;
	esac
done

total=$((passed + failed + skipped))
secs=$(($(date +%s) - T_START))
echo "run.sh: $((secs / 60))m$((secs % 60))s in all${ST_BUILD:+ (ST_BUILD=${ST_BUILD#"$ROOT"/})}"
[ "$secs" -lt 540 ] || echo "run.sh: WARNING: the suite takes over 9 minutes; the budget of make test is 10"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
if [ "$total" -eq 0 ] || [ $((passed + failed)) -eq 0 ]; then
	echo "run.sh: no test ran (ST_BUILD=$ST_BUILD)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
