#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Nothing rebuilds when nothing changed: each build flavour (plain `make`, `make SAN=1` as
# `make test` builds it, the fuzz build) is built from scratch into a temporary BUILD dir;
# then `make -q` must say "up to date", a second `make` must run no recipe and leave every
# file of the build dir as it was, and the BPF object and the skeleton must still be there
# (make once deleted them as intermediates, so every second `make` rebuilt them and relinked
# everything that includes the skeleton). Finally `make -n -W HEADER` shows that a header edit
# rebuilds its users, for both compilers. Nothing in the tree is touched.
. "$(dirname "$0")/lib.sh"
st_require_cmds make gcc clang bpftool pkg-config
[ -f /usr/include/bpf/libbpf.h ] || st_skip "libbpf headers not found (tools/install-deps.sh installs them)"
[ -f /usr/include/cmocka.h ] || st_skip "cmocka.h not found (tools/install-deps.sh installs it)"
st_init

B=$ST_TMP/build
JOBS=$(nproc 2>/dev/null || echo 2)
# Run from `make test`, make's own environment (MAKEFLAGS: the caller's variables, -j and its
# jobserver, MAKELEVEL) would leak into these builds: each starts clean.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -C "$ST_ROOT" --no-print-directory "$@"; }

# state DIR: every file of DIR with its inode, size and mtime (a rewrite changes one of them).
state() { find "$1" -type f -printf '%p %i %s %T@\n' | sort; }

# Each flavour's build dir (dry runs below look there).
declare -A DIR=([plain]=$B/plain [san]=$B/san [fuzz]=$B/fuzz)

# check FLAVOUR MAKE-ARGS...: build from scratch (unless BUILT=1: `make test` has just built
# the flavour in DIR[FLAVOUR], with its own rules), then prove the second run does nothing.
check() {
	local name=$1 dir=${DIR[$1]} rc=0 t0 adir
	shift
	case $dir in /*) adir=$dir ;; *) adir=$ST_ROOT/$dir ;; esac
	t0=$(date +%s)
	if [ "${BUILT:-0}" = 1 ]; then
		st_log "$name: built by make test in ${dir#"$ST_ROOT"/}"
	else
		mk -j"$JOBS" BUILD="$dir" "$@" >"$ST_TMP/$name.1.log" 2>&1 ||
			{ tail -n 30 "$ST_TMP/$name.1.log"; st_fail "$name: the first build failed"; }
		st_log "$name: built from scratch in $(($(date +%s) - t0)) s"
	fi
	for f in "$adir/bpf/tap.bpf.o" "$adir/tap.skel.h"; do
		[ -f "$f" ] || { grep '^rm ' "$ST_TMP/$name.1.log" 2>/dev/null; st_fail "$name: the first build deleted ${f#"$adir"/}"; }
	done
	state "$adir" >"$ST_TMP/$name.before"
	mk -q BUILD="$dir" "$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		{ mk -n BUILD="$dir" "$@" V=1 2>&1 || true; } | head -n 20 || true # (pipefail: head closes early)
		st_fail "$name: make -q says the build is out of date right after building (exit $rc)"
	fi
	mk BUILD="$dir" "$@" >"$ST_TMP/$name.2.log" 2>&1 || st_fail "$name: the second make failed"
	if grep -Ev "^make(\[[0-9]+\])?: (Nothing to be done for|'.*' is up to date)" "$ST_TMP/$name.2.log"; then
		st_fail "$name: the second make ran the recipes above"
	fi
	state "$adir" >"$ST_TMP/$name.after"
	diff "$ST_TMP/$name.before" "$ST_TMP/$name.after" || st_fail "$name: the second make changed files"
	st_log "$name: second make did nothing"
}

# One unit test and the BPF test cover both test rules; the fuzz flavour's libFuzzer rule
# links every fuzzobj/ object, so one target builds them all. -O0: the rules are what is
# tested, not the code, and it keeps the test fast.
PLAIN=(CFLAGS="-O0 -g")
SAN=(CFLAGS="-O0 -g" SAN=1)
check plain "${PLAIN[@]}" all "$B/plain/tests/test_opts" "$B/plain/tests/test_bpf_tap"
if [ -n "${ST_FUZZ_BUILD:-}" ] && [ -x "$ST_FUZZ_BUILD/fuzz/fuzz_pcap" ] &&
	[ "$ST_BUILD" = "$ST_ROOT/build/san" ]; then
	# Run by `make test`: the sanitizer and fuzz flavours were built just before, whole, by
	# `make test`'s own commands; they must be up to date as they are (the fuzz flavour from
	# scratch alone took 33 s of this test). Relative paths, as make test gives them.
	DIR[san]=build/san DIR[fuzz]=${ST_FUZZ_BUILD#"$ST_ROOT"/}
	BUILT=1 check san SAN=1 all unit bpf-tests
	BUILT=1 check fuzz fuzz-build
else
	# The sanitizer flavour differs from the plain one in flags only: two objects (one needing
	# the skeleton, one the parser) prove its rules; a full second build would double the
	# test's time.
	check san "${SAN[@]}" "$B/san/agent/input/tap.o" "$B/san/agent/input/pcapin.o"
	check fuzz "$B/fuzz/fuzz/fuzz_pcap"
fi

# expect_rebuild FLAVOUR HEADER "MAKE-ARGS" PATTERN...: with HEADER pretended new (-W, dry
# run), make must want to rebuild each PATTERN (a path under the flavour's dir).
expect_rebuild() {
	local name=$1 hdr=$2 args p out
	read -r -a args <<<"$3"
	shift 3
	out=$(mk -n -W "$hdr" BUILD="${DIR[$name]}" V=1 "${args[@]}" 2>&1) || st_fail "$name: make -n -W $hdr failed"
	for p in "$@"; do
		grep -q -- "${DIR[$name]}/$p" <<<"$out" || { echo "$out" | head -n 20; st_fail "$name: editing $hdr does not rebuild $p"; }
	done
}
expect_rebuild plain bpf/parse.h all bpf/tap.bpf.o tap.skel.h agent/input/tap.o agent/input/pcapin.o shadowtap
expect_rebuild plain agent/base/opts.h "$B/plain/tests/test_opts" agent/base/opts.o tests/unit/base/test_opts.o tests/test_opts
expect_rebuild san agent/input/pktparse.h "SAN=1 all" agent/input/pcapin.o shadowtap
expect_rebuild fuzz agent/input/pktparse.h "${DIR[fuzz]}/fuzz/fuzz_pcap" fuzzobj/input/pcapin.o fuzz/fuzz_pcap
# For real once: the fuzz link line must still work when a header is among its prerequisites
# (fuzz_pcap.c, compiled in its link, includes fuzz_check.h). In make test's own fuzz build,
# when it is that one, fuzz_pcap alone is linked again (the smoke runs are over by then) and
# no object is compiled: the other targets stay up to date for the next tests/run.sh (a
# library header here once left all of them out of date, and the next run's own check failed).
mk BUILD="${DIR[fuzz]}" -W tests/fuzz/fuzz_check.h "${DIR[fuzz]}/fuzz/fuzz_pcap" >"$ST_TMP/fuzz.3.log" 2>&1 ||
	{ cat "$ST_TMP/fuzz.3.log"; st_fail "fuzz: rebuilding after a header edit failed"; }
grep -q 'fuzz/fuzz_pcap' "$ST_TMP/fuzz.3.log" || { cat "$ST_TMP/fuzz.3.log"; st_fail "fuzz: fuzz_pcap not linked again after its header changed"; }
! grep -q 'fuzzobj/' "$ST_TMP/fuzz.3.log" || { cat "$ST_TMP/fuzz.3.log"; st_fail "fuzz: an object was compiled again for fuzz_pcap's own header"; }
echo "PASS"
