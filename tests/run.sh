#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The shadowtap test suite runner (`make test`, `make check`).
#
#   ST_BUILD=build/san [ST_FUZZ_BUILD=build/fuzzbuild] tests/run.sh [FILTER]
#
# Runs every test of three tiers, several at a time (ST_JOBS, default: twice the CPUs + 2;
# the integration tests mostly wait on namespaces, servers and clients):
#   - every cmocka binary $ST_BUILD/tests/test_* (unit tests and BPF program tests; the
#     latter skip without root), counting cmocka's passed/failed/skipped tests;
#   - every libFuzzer target $ST_FUZZ_BUILD/fuzz/fuzz_* for ST_FUZZ_SMOKE_SECONDS (3), from
#     a copy of its seed corpus tests/fuzz/corpus/<name>/;
#   - every tests/integration/test_*.sh (exit 0 pass, 77 skip, else fail).
# Each under a timeout (ST_TEST_TIMEOUT, 180 s); a test's output is shown only when it fails.
# The integration tests isolate themselves (namespaces, cgroups and temp dirs named after
# their PID). Those in SERIAL below share something a parallel run would disturb; they run
# one at a time, alone, after the others. A test that holds a host-wide lock
# (`st_exclusive NAME` in its script) runs with the others but never beside another holder
# of the same NAME: the runner starts it only when the lock is free (the lock itself still
# guards against other checkouts and runners).
# The slowest go first: each run keeps its times in $ST_BUILD/.test-times for the next; a
# build without them (a fresh clone) starts from tests/test-times, the times of a whole run
# kept in the tree.
# ST_BUILD_REST (optional, `make test` sets it): the make arguments that build what the
# cmocka and fuzz tests run (their binaries), `;` between invocations, while the integration
# tests, which need only the agent, already run: niced in the background; those tests start
# once it has ended (if it failed: it counts as one failure, with its log, and they fail).
# FILTER (optional) is a shell pattern matched against the test names; others are not run.
# At the end: every test's time, slowest first, then always a last line
# "N passed, N failed, N skipped". Exit status is non-zero when anything failed or when no
# test ran.
set -uo pipefail

# Run alone, after the others:
#  - test_build_norebuild: runs make on the tree the others run from (and relinks a fuzz
#    target once the smoke runs are over).
# (The TLS tests hold the lock `uprobes`: uprobes are per library file, so one test's agent
# probes every process that maps libssl, and each checks that no TLS program or probe is left.
# The load tests hold `load`: each runs its generator and target at nice -10 and asserts on
# bands widened by their own lateness, so they run beside the others, but not two together.)
SERIAL=(test_build_norebuild)

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
JOBS=${ST_JOBS:-$((2 * $(nproc) + 2))}
FILTER=${1:-*}
TIMES=$ST_BUILD/.test-times
SEED_TIMES=$ROOT/tests/test-times

passed=0 failed=0 skipped=0
T_START=$(date +%s)
failures=()

WORK=$(mktemp -d /tmp/st-run.XXXXXX) || exit 1
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; kill $(jobs -p) 2>/dev/null; exit 130' INT TERM

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

# ---- the tests ----------------------------------------------------------------------------
# Each test is "KIND:NAME:PATH"; its runner writes $WORK/NAME.res: "PASSED FAILED SKIPPED
# SECONDS" and a one-line verdict in $WORK/NAME.line, its output in $WORK/NAME.log.
# The cmocka and fuzz binaries: those built, or, with a build still to come (ST_BUILD_REST),
# those their sources will give.
tests=()
binaries() { # DIR PREFIX SOURCES...: the paths of the binaries, built or to be built
	local dir=$1 pre=$2 b
	shift 2
	if [ -n "${ST_BUILD_REST:-}" ]; then
		for b in "$@"; do
			[ -f "$b" ] || continue
			b=${b##*/}
			echo "$dir/${b%.c}"
		done
	elif [ -d "$dir" ]; then
		for b in "$dir/$pre"*; do
			[ -f "$b" ] && [ -x "$b" ] || continue
			case ${b##*/} in *.o | *.d) continue ;; esac
			echo "$b"
		done
	fi
}
while read -r b; do
	# shellcheck disable=SC2053
	[ -n "$b" ] && [[ ${b##*/} == $FILTER ]] && tests+=("unit:${b##*/}:$b")
done < <(binaries "$ST_BUILD/tests" test_ tests/unit/*/test_*.c tests/bpf/test_*.c)
if [ -n "${ST_FUZZ_BUILD:-}" ]; then
	while read -r b; do
		# shellcheck disable=SC2053
		[ -n "$b" ] && [[ ${b##*/} == $FILTER ]] && tests+=("fuzz:${b##*/}:$b")
	done < <(binaries "$ST_FUZZ_BUILD/fuzz" fuzz_ tests/fuzz/fuzz_*.c)
fi
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	n=${t##*/}
	n=${n%.sh}
	# shellcheck disable=SC2053
	[[ $n == $FILTER || $n.sh == $FILTER ]] && tests+=("int:$n:$t")
done

run_unit() { # NAME BIN
	local name=$1 b=$2 out=$WORK/$1.out rc nrun nok nfail nskip crashed t0=$SECONDS extra=""
	# ASan: leaks are real failures; abort on the first report. A hung test is a failure.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		timeout --kill-after=5 "$TIMEOUT" "$b" >"$out" 2>"$WORK/$name.err" </dev/null
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
	cat "$out" "$WORK/$name.err" >"$WORK/$name.log"
	[ "$rc" -eq 124 ] && extra=", timed out after ${TIMEOUT}s"
	if [ "$nfail" -gt 0 ]; then
		echo "${R}FAIL${N} $name: $nok passed, $nfail failed, $nskip skipped (exit $rc$extra, $((SECONDS - t0))s)" >"$WORK/$name.line"
	elif [ "$nrun" -eq 0 ]; then
		echo "${Y}WARN${N} $name ran no test ($((SECONDS - t0))s)" >"$WORK/$name.line"
	else
		echo "${G}ok${N}   $name: $nok passed, $nskip skipped ($((SECONDS - t0))s)" >"$WORK/$name.line"
	fi
	echo "$nok $nfail $nskip $((SECONDS - t0))" >"$WORK/$name.res"
}

run_fuzz() { # NAME BIN
	local name=$1 b=$2 corpus=$WORK/corpus-$1 art=$WORK/artifacts-$1 seed rc t0=$SECONDS execs
	mkdir -p "$corpus" "$art"
	for seed in "tests/fuzz/corpus/$name" "tests/fuzz/corpus/${name#fuzz_}"; do
		[ -d "$seed" ] && cp -r "$seed/." "$corpus/"
	done
	timeout --kill-after=10 $((SMOKE + 120)) "$b" -max_total_time="$SMOKE" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" "$corpus" \
		>"$WORK/$name.log" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ]; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$name.log" | tail -n1)
		echo "${G}ok${N}   $name: ${execs:-?} runs ($((SECONDS - t0))s)" >"$WORK/$name.line"
		echo "1 0 0 $((SECONDS - t0))" >"$WORK/$name.res"
	else
		mkdir -p tests/fuzz/crashes && cp -r "$art/." tests/fuzz/crashes/ 2>/dev/null
		echo "${R}FAIL${N} $name (exit $rc, $((SECONDS - t0))s); crashing input kept in tests/fuzz/crashes/" >"$WORK/$name.line"
		echo "0 1 0 $((SECONDS - t0))" >"$WORK/$name.res"
	fi
}

run_int() { # NAME SCRIPT
	local name=$1 t=$2 log=$WORK/$1.log rc t0=$SECONDS why extra=""
	# Each script traps TERM and cleans up; KILL follows only if it hangs in its cleanup.
	timeout --kill-after=20 "$TIMEOUT" bash "$t" >"$log" 2>&1 </dev/null
	rc=$?
	case $rc in
	0)
		echo "${G}ok${N}   $name ($((SECONDS - t0))s)" >"$WORK/$name.line"
		echo "1 0 0 $((SECONDS - t0))" >"$WORK/$name.res"
		;;
	77)
		why=$(grep -m1 -i 'skip' "$log" | cut -c1-150)
		echo "${Y}skip${N} $name${why:+: $why}" >"$WORK/$name.line"
		echo "0 0 1 $((SECONDS - t0))" >"$WORK/$name.res"
		;;
	*)
		[ "$rc" -eq 124 ] && extra=", timed out after ${TIMEOUT}s"
		echo "${R}FAIL${N} $name (exit $rc$extra, $((SECONDS - t0))s)" >"$WORK/$name.line"
		echo "0 1 0 $((SECONDS - t0))" >"$WORK/$name.res"
		;;
	esac
}

# The order: the slowest first (the last run's times; else integration tests, then fuzz
# targets, then cmocka binaries, the usual order of their lengths).
declare -A last=()
for f in "$SEED_TIMES" "$TIMES"; do # this build's own times, where it has them
	[ -f "$f" ] || continue
	while read -r s n; do [ -n "${n:-}" ] && last[$n]=$s; done <"$f"
done
# The host-wide lock an integration test holds (st_exclusive NAME), by test name.
declare -A lockof=()
for t in "${tests[@]}"; do
	[ "${t%%:*}" = int ] || continue
	n=${t#*:} p=${t#*:*:}
	n=${n%%:*}
	l=$(sed -n 's/^[[:space:]]*st_exclusive[[:space:]]\+\([A-Za-z0-9_-]\+\).*/\1/p' "$p" | head -n1)
	[ -n "$l" ] && lockof[$n]=$l
done
rank() { # KIND NAME -> a number, larger first
	local s=${last[$2]:-}
	if [ -n "$s" ]; then echo "$s"; return; fi
	case $1 in int) echo 1000 ;; fuzz) echo 500 ;; *) echo 100 ;; esac
}
ordered=()
serial=()
while read -r _ t; do
	n=${t#*:}
	n=${n%%:*}
	if [[ " ${SERIAL[*]} " == *" $n "* ]]; then serial+=("$t"); else ordered+=("$t"); fi
done < <(for t in "${tests[@]}"; do
	k=${t%%:*} n=${t#*:}
	n=${n%%:*}
	echo "$(rank "$k" "$n") $t"
done | sort -k1,1nr -k2,2)

# The build beside (ST_BUILD_REST): make, niced, one invocation after another; `built` is
# 1 once it has ended well, -1 when it failed, 0 while it runs.
built=1 BUILD_PID=
start_build() {
	local needed=0 t one
	for t in "${ordered[@]}"; do
		case $t in unit:* | fuzz:*) needed=1 ;; esac
	done
	[ -n "${ST_BUILD_REST:-}" ] && [ "$needed" = 1 ] || return 0
	built=0
	(
		IFS=';'
		for one in $ST_BUILD_REST; do
			IFS=' '
			# its own -j: the make that runs `make test` does not hand its jobserver down here
			# shellcheck disable=SC2086
			env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL nice -n 10 \
				make -C "$ROOT" --no-print-directory -j"$(nproc)" $one || exit 1
		done
	) >"$WORK/build.log" 2>&1 </dev/null &
	BUILD_PID=$!
}
# build_ended RC: notes the build's end; when it failed, says so with its log.
build_ended() {
	if [ "$1" -eq 0 ]; then
		built=1
		return
	fi
	built=-1
	echo "  ${R}FAIL${N} the build beside the tests (exit $1): its cmocka and fuzz tests fail unrun"
	show_log "$WORK/build.log"
	failed=$((failed + 1))
	failures+=("build")
}

declare -A started=() held=()
# report NAME: the test's verdict line, its log when it failed, the counts.
report() {
	local name=$1 p f s secs
	read -r p f s secs <"$WORK/$name.res" || { p=0 f=1 s=0 secs=0; }
	echo "  $(cat "$WORK/$name.line" 2>/dev/null || echo "${R}FAIL${N} $name (no result)")"
	if [ "$f" -gt 0 ]; then
		[ -f "$WORK/$name.log" ] && show_log "$WORK/$name.log"
		failures+=("$name")
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	echo "$secs $name" >>"$WORK/times"
}
# run_unbuilt NAME: a cmocka or fuzz test whose build failed.
run_unbuilt() {
	echo "${R}FAIL${N} $1: not built (the build beside the tests failed, above)" >"$WORK/$1.line"
	echo "0 1 0 0" >"$WORK/$1.res"
}
launch() { # KIND:NAME:PATH
	local k=${1%%:*} rest=${1#*:} n p
	n=${rest%%:*} p=${rest#*:}
	[ "$k" != int ] && [ "$built" = -1 ] && k=unbuilt
	case $k in
	unbuilt) run_unbuilt "$n" ;;
	unit) run_unit "$n" "$p" ;;
	fuzz) run_fuzz "$n" "$p" ;;
	int) run_int "$n" "$p" ;;
	esac &
	started[$!]=$n
}
# reap: waits for one test to end and reports it.
reap() {
	local pid rc
	wait -n -p pid
	rc=$?
	[ -n "${pid:-}" ] || return 1
	if [ "$pid" = "$BUILD_PID" ]; then
		build_ended "$rc"
		return 0
	fi
	report "${started[$pid]}"
	[ -n "${lockof[${started[$pid]}]:-}" ] && unset "held[${lockof[${started[$pid]}]}]"
	unset "started[$pid]"
}
# next_free: the index in `ordered` of the first test whose lock is free and whose binary
# is not still being built (-1: none).
next_free() {
	local i n
	for i in "${!ordered[@]}"; do
		[ "$built" = 0 ] && [ "${ordered[$i]%%:*}" != int ] && continue
		n=${ordered[$i]#*:}
		n=${n%%:*}
		if [ -z "${lockof[$n]:-}" ] || [ -z "${held[${lockof[$n]}]:-}" ]; then
			echo "$i"
			return
		fi
	done
	echo -1
}

start_build
[ ${#tests[@]} -gt 0 ] && echo "== ${#tests[@]} tests, $JOBS at a time (${#serial[@]} alone at the end); fuzz smoke ${SMOKE}s each${BUILD_PID:+; the cmocka and fuzz binaries build beside the first}"
while [ ${#ordered[@]} -gt 0 ]; do
	while [ ${#started[@]} -ge "$JOBS" ]; do reap || break; done
	i=$(next_free)
	if [ "$i" -lt 0 ]; then # every test left waits for a lock a running test holds
		reap || break
		continue
	fi
	t=${ordered[$i]}
	unset "ordered[$i]"
	n=${t#*:}
	n=${n%%:*}
	[ -n "${lockof[$n]:-}" ] && held[${lockof[$n]}]=$n
	launch "$t"
done
while [ ${#started[@]} -gt 0 ]; do reap || break; done
if [ "$built" = 0 ]; then # (the tests that waited for it were filtered out)
	wait "$BUILD_PID"
	build_ended $?
fi
for t in "${serial[@]}"; do
	launch "$t"
	reap
done

total=$((passed + failed + skipped))
secs=$(($(date +%s) - T_START))
if [ -s "$WORK/times" ]; then
	sort -k1,1nr "$WORK/times" >"$WORK/times.sorted"
	echo "== times, slowest first"
	awk '{ printf "  %4ds %-28s", $1, $2; if (NR % 3 == 0) printf "\n" } END { if (NR % 3) printf "\n" }' "$WORK/times.sorted"
	# the next run starts with the slowest (only a whole run's times are kept)
	[ "$FILTER" = '*' ] && cp "$WORK/times.sorted" "$TIMES" 2>/dev/null
fi
echo "run.sh: $((secs / 60))m$((secs % 60))s in all, $JOBS at a time${ST_BUILD:+ (ST_BUILD=${ST_BUILD#"$ROOT"/})}"
[ "$secs" -lt 300 ] || echo "run.sh: WARNING: the suite took over 5 minutes, its budget"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
if [ "$total" -eq 0 ] || [ $((passed + failed)) -eq 0 ]; then
	echo "run.sh: no test ran (ST_BUILD=$ST_BUILD)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
