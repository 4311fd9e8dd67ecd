#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Bad input to `shadowtap capture`: each case prints exactly one line on stderr (nothing on
# stdout), exits 2 for usage errors and 1 for runtime errors, and leaves nothing attached.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip tc bpftool setpriv python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
IF=$ST_SRV_IF
OUT=$ST_TMP/out.pcap
CG2=$(st_cgroup2_root)
before=$(st_attach_state "$ST_SRV_NS" "$IF")
mkdir -p "$ST_TMP/nobody" && chown nobody "$ST_TMP/nobody"
nfail=0 ncase=0

# expect CODE DESCRIPTION [nobody] [rootns] -- ARGS...: runs `shadowtap ARGS` in the server
# namespace (rootns: in the test's own one; `ip netns exec` remounts /sys, which hides
# /sys/fs/cgroup), as root (nobody: as user nobody, without capabilities).
expect() {
	local want=$1 what=$2 pre=() ns=$ST_SRV_NS rc lines so
	shift 2
	while [ "$1" != -- ]; do
		case $1 in
		nobody) pre=(setpriv --reuid=nobody --regid=nogroup --clear-groups) ;;
		rootns) ns= ;;
		esac
		shift
	done
	shift
	ncase=$((ncase + 1))
	rc=0
	st_in "$ns" timeout 20 "${pre[@]}" "$ST_BIN" "$@" \
		>"$ST_TMP/case.out" 2>"$ST_TMP/case.err" </dev/null || rc=$?
	lines=$(wc -l <"$ST_TMP/case.err")
	so=$(wc -c <"$ST_TMP/case.out")
	local bad=""
	[ "$rc" -eq "$want" ] || bad+=" exit $rc (want $want);"
	[ "$lines" -eq 1 ] || bad+=" $lines lines on stderr (want 1);"
	[ "$so" -eq 0 ] || bad+=" $so bytes on stdout (want none);"
	if [ "$rc" -eq 124 ]; then bad+=" hung (killed after 20 s);"; fi
	local now
	now=$(st_attach_state "$ST_SRV_NS" "$IF")
	[ "$now" = "$before" ] || bad+=" left something attached to $IF;"
	if [ -n "$(st_leaked_shadowtap_links)" ]; then
		bad+=" left a shadowtap BPF link;"
	fi
	if [ -n "$bad" ]; then
		nfail=$((nfail + 1))
		printf 'FAIL  %-34s shadowtap %s\n     ->%s\n' "$what" "$*" "$bad"
		sed 's/^/      stderr: /' "$ST_TMP/case.err" | head -n 8
		head -c 300 "$ST_TMP/case.out" | sed 's/^/      stdout: /'
	else
		printf 'ok    %-34s exit %s: %s\n' "$what" "$rc" "$(cat "$ST_TMP/case.err")"
	fi
}

# Usage errors: 2.
expect 2 "non-numeric port" -- capture --iface "$IF" --port http -w "$OUT"
expect 2 "port out of range" -- capture --iface "$IF" --port 65536 -w "$OUT"
expect 2 "port 0" -- capture --iface "$IF" --port 0 -w "$OUT"
expect 2 "missing --port" -- capture --iface "$IF" -w "$OUT"
expect 2 "missing -w" -- capture --iface "$IF" --port 80
expect 2 "both --iface and --cgroup" -- capture --iface "$IF" --cgroup "${CG2:-/sys/fs/cgroup}" --port 80 -w "$OUT"
expect 2 "neither --iface nor --cgroup" -- capture --port 80 -w "$OUT"
expect 2 "unknown option" -- capture --iface "$IF" --port 80 -w "$OUT" --frobnicate
expect 2 "stray argument" -- capture --iface "$IF" --port 80 -w "$OUT" extra
expect 2 "--host garbage" -- capture --iface "$IF" --port 80 --host not-an-address -w "$OUT"
expect 2 "--host bad prefix" -- capture --iface "$IF" --port 80 --host 10.0.0.0/33 -w "$OUT"
expect 2 "--host bad IPv6 prefix" -- capture --iface "$IF" --port 80 --host fd00::/129 -w "$OUT"
expect 2 "non-numeric --duration" -- capture --iface "$IF" --port 80 --duration soon -w "$OUT"
expect 2 "non-numeric --ring-mb" -- capture --iface "$IF" --port 80 --ring-mb lots -w "$OUT"
# --ring-mb: a power of 2 up to 2048 (a ring buffer's size is a u32): refused at parse time, not
# by the kernel at load time with "Invalid argument" (3000 rounded to 4096 overflowed to 0).
expect 2 "--ring-mb not a power of 2" -- capture --iface "$IF" --port 80 --ring-mb 3 -w "$OUT"
expect 2 "--ring-mb 3000" -- capture --iface "$IF" --port 80 --ring-mb 3000 -w "$OUT"
expect 2 "--ring-mb 4096 (over u32)" -- capture --iface "$IF" --port 80 --ring-mb 4096 -w "$OUT"
expect 2 "--ring-mb 0" -- capture --iface "$IF" --port 80 --ring-mb 0 -w "$OUT"
grep -q 'power of 2' "$ST_TMP/case.err" || st_fail "--ring-mb: the message does not name the valid values"
expect 2 "--port without a value" -- capture --iface "$IF" -w "$OUT" --port
expect 2 "unknown command" -- frobnicate --iface "$IF"
expect 2 "a command's typo" -- captur --iface "$IF" --port 80 -w "$OUT"
grep -q "unknown command 'captur' (did you mean capture?)" "$ST_TMP/case.err" || st_fail "no suggestion for a mistyped command"
expect 2 "an option's typo" -- capture --iface "$IF" --prot 80 -w "$OUT"
grep -q "unknown option '--prot' (did you mean --port?)" "$ST_TMP/case.err" || st_fail "no suggestion for a mistyped option"
expect 2 "a duration that is not one" -- capture --iface "$IF" --port 80 -w "$OUT" --duration 5x

# Runtime errors: 1.
expect 1 "unknown interface" -- capture --iface st-nosuch0 --port 80 -w "$OUT"
if [ -n "$CG2" ]; then
	expect 1 "missing cgroup path" rootns -- capture --cgroup "$CG2/st-$ST_ID-nosuch" --port 80 -w "$OUT"
fi
expect 1 "cgroup path not a cgroup" rootns -- capture --cgroup "$ST_TMP" --port 80 -w "$OUT"
expect 1 "unwritable output (no dir)" -- capture --iface "$IF" --port 80 -w "$ST_TMP/nodir/x.pcap"
expect 1 "unwritable output (a dir)" -- capture --iface "$IF" --port 80 -w "$ST_TMP"
expect 1 "non-root" nobody -- capture --iface "$IF" --port 80 -w "$ST_TMP/nobody/x.pcap"
expect 1 "non-root, cgroup mode" nobody rootns -- capture --cgroup "${CG2:-/sys/fs/cgroup}" --port 80 -w "$ST_TMP/nobody/y.pcap"

# A failed start must not leave a half-written file that looks like a capture.
[ ! -s "$ST_TMP/nodir/x.pcap" ] || st_fail "pcap created despite the error"

echo "$((ncase - nfail)) of $ncase bad-input cases behave"
[ "$nfail" -eq 0 ] || st_fail "$nfail bad-input cases misbehave"
st_log "PASS"
