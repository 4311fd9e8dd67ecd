#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap replay` from a pcap the test captures itself (tcpdump on a veth while curl, a
# pipelining client and uploads talk to nginx, with a pause in the middle):
#  - --fast --multiply 3: the shadow gets every request exactly 3 times, bodies intact, and
#    each shadow connection carries its recorded connection's requests in order;
#  - timing: at --speed 1 the replay takes at least the recorded pause; at --speed 4 and
#    --fast well under it (checked loosely, not as a benchmark).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump python3
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found"
"$ST_BIN" replay --help >/dev/null 2>&1 || st_skip "$ST_BIN has no replay command"
st_init

PAUSE=2
st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
PCAP=$ST_TMP/rec.pcap
st_tcpdump_start rec "$ST_SRV_NS" "$ST_SRV_IF" "$PCAP" 'tcp port 80'
rec_pid=$ST_TCPDUMP_PID
# The same traffic with a 300-byte snap length: every large segment loses bytes (a gap).
CUT=$ST_TMP/cut.pcap
st_in_bg "$ST_SRV_NS" tcpdump -i "$ST_SRV_IF" -s 300 -B 262144 -n -w "$CUT" 'tcp port 80' \
	>"$ST_TMP/cut.out" 2>"$ST_TMP/cut.err" </dev/null &
cut_pid=$!
ST_PIDS+=("$cut_pid")
st_wait_log "$ST_TMP/cut.err" 'listening on' 10
base=http://$ST_SRV4
head -c 300000 /dev/urandom >"$ST_TMP/u300k"
st_log "recording: keep-alive batch, upload, pipelined batch, pause ${PAUSE}s, more"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1" -o /dev/null "$base/f100" -o /dev/null "$base/f4096" \
	-o /dev/null "$base/index.html" -o /dev/null "$base/f1?x=2"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/u300k" "$base/upload"
st_pipeline "$ST_CLI_NS" "$ST_SRV4" 80 /f1 /f4096 /f100000 /f16384 >/dev/null
sleep "$PAUSE"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$ST_TMP/u300k" "$base/upload"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -0 -o /dev/null "$base/f100"
sleep 1
st_stop "$rec_pid" INT || true
st_stop "$cut_pid" INT || true
nprod=$(sh_nginx_requests "$ST_TMP/web/access.log" | wc -l)
st_log "recorded $nprod requests ($(st_pcap_packets "$PCAP") packets)"
[ "$nprod" -eq 12 ] || st_fail "expected 12 recorded requests"

# The shadow: in its own namespace, reached over loopback there.
st_netns_single shadow
SNS=$ST_LAST_NS
sh_sink_start sink "$SNS" 127.0.0.1 8080

# replay_run NAME ARGS...: runs replay in the shadow namespace; elapsed seconds in ELAPSED.
replay_run() {
	local name=$1 t0 t1 rc=0
	shift
	: >"$ST_TMP/sink.log"
	t0=$(date +%s.%N)
	st_in "$SNS" timeout 60 "$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:8080 "$@" \
		2>"$ST_TMP/$name.err" || rc=$?
	t1=$(date +%s.%N)
	ELAPSED=$(echo "$t1 - $t0" | bc)
	grep -v '^libbpf' "$ST_TMP/$name.err" | tail -n 3
	[ "$rc" -eq 0 ] || st_fail "replay $* exited with $rc"
	SH_SUMMARY=$(st_summary "$ST_TMP/$name.err")
	[ -n "$SH_SUMMARY" ] || st_fail "no summary line"
	st_log "replay $*: ${ELAPSED}s"
}

replay_run fast3 --fast --multiply 3
sh_expect requests -eq 12
sh_expect replayed -eq 36
sh_expect dropped -eq 0
sh_expect gaps_skipped -eq 0
# the last line: how long, how fast, every answer's latency once
end=$(grep -E '^shadowtap: replay [0-9.]+ s: ' "$ST_TMP/fast3.err" | tail -n1)
echo "$end"
[[ $end =~ ^shadowtap:\ replay\ [0-9.]+\ s:\ 36\ requests\ replayed\ \([0-9.]+/s\)\;\ the\ shadows\'\ answers:\ 36,\ latency\ p50\ ([0-9.]+)\ ms,\ p90\ ([0-9.]+),\ p99\ ([0-9.]+),\ max\ ([0-9.]+) ]] ||
	st_fail "replay's last line does not say 36 requests and 36 answers with their latency"
(( $(echo "${BASH_REMATCH[1]} <= ${BASH_REMATCH[3]} && ${BASH_REMATCH[3]} <= ${BASH_REMATCH[4]} && ${BASH_REMATCH[4]} > 0" | bc) )) ||
	st_fail "replay's latency percentiles are not in order: $end"
n=$(wc -l <"$ST_TMP/sink.log")
[ "$n" -eq 36 ] || st_fail "the shadow got $n requests, want 36"
diff <(sh_nginx_requests "$ST_TMP/web/access.log" | sort | sed 'p;p') <(sh_sink_requests "$ST_TMP/sink.log" | sort) ||
	st_fail "the shadow did not get each recorded request exactly 3 times"
want=$(sha256sum "$ST_TMP/u300k" | cut -d' ' -f1)
[ "$(awk -F'\t' -v w="$want" '$4 == "/upload" && $6 == w' "$ST_TMP/sink.log" | wc -l)" -eq 6 ] ||
	st_fail "upload bodies not intact in the replay"
# Per connection order: every shadow connection's sequence is one of the recorded ones.
python3 - "$ST_TMP/sink.log" <<'PY' || st_fail "per-connection order not kept"
import sys
conns = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    conns.setdefault(f[0], []).append((int(f[1]), f[3]))
seqs = sorted(tuple(u for _, u in sorted(v)) for v in conns.values())
ka = ("/f1", "/f100", "/f4096", "/index.html", "/f1?x=2")
pipe = ("/f1", "/f4096", "/f100000", "/f16384")
if seqs.count(ka) != 3 or seqs.count(pipe) != 3:
    print("sequences:", seqs)
    sys.exit(1)
PY
(( $(echo "$ELAPSED < $PAUSE" | bc) )) || st_fail "--fast took ${ELAPSED}s, more than the recorded pause"

replay_run speed1
sh_expect replayed -eq 12
(( $(echo "$ELAPSED >= $PAUSE - 0.2" | bc) )) || st_fail "--speed 1 took ${ELAPSED}s: the ${PAUSE}s pause was not honoured"
(( $(echo "$ELAPSED < $PAUSE + 6" | bc) )) || st_fail "--speed 1 took ${ELAPSED}s: far more than recorded"

replay_run speed4 --speed 4
sh_expect replayed -eq 12
(( $(echo "$ELAPSED < $PAUSE" | bc) )) || st_fail "--speed 4 took ${ELAPSED}s"
[ "$(wc -l <"$ST_TMP/sink.log")" -eq 12 ] || st_fail "--speed 4: shadow request count"

# Gaps: from the snap-length-cut capture, the two 300 KB uploads lost bytes: they must never
# reach the shadow (not partly, not spliced); every other request must, once.
: >"$ST_TMP/sink.log"
rc=0
st_in "$SNS" timeout 60 "$ST_BIN" replay "$CUT" --port 80 --to 127.0.0.1:8080 --fast 2>"$ST_TMP/cut-replay.err" || rc=$?
grep -v '^libbpf' "$ST_TMP/cut-replay.err" | tail -n 2
[ "$rc" -eq 0 ] || st_fail "replay of the cut pcap exited with $rc"
SH_SUMMARY=$(st_summary "$ST_TMP/cut-replay.err")
sh_expect gaps_skipped -eq 2
sh_expect replayed -eq 10
sh_expect dropped -eq 0
[ "$(awk -F'\t' '$4 == "/upload"' "$ST_TMP/sink.log" | wc -l)" -eq 0 ] || st_fail "an upload that crossed a gap reached the shadow"
[ "$(wc -l <"$ST_TMP/sink.log")" -eq 10 ] || st_fail "cut pcap: the shadow got $(wc -l <"$ST_TMP/sink.log") requests, want 10"

# Usage errors: one line, exit 2.
rc=0
"$ST_BIN" replay "$PCAP" --to 127.0.0.1:1 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$ST_TMP/u.err")" -eq 1 ] || st_fail "missing --port: exit $rc, $(cat "$ST_TMP/u.err")"
rc=0
"$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:1 --fast --speed 2 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 2 ] || st_fail "--fast with --speed: exit $rc"
rc=0
"$ST_BIN" replay "$ST_TMP/nope.pcap" --port 80 --to 127.0.0.1:1 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$ST_TMP/u.err")" -eq 1 ] || st_fail "missing file: exit $rc, $(cat "$ST_TMP/u.err")"
# A link type the decoder does not know (the recorded pcap with 802.11 radiotap in its header):
# one line naming it, exit 1, not a silent run of 0 connections. flows says the same.
python3 - "$PCAP" "$ST_TMP/radiotap.pcap" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
end = '<' if b[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
struct.pack_into(end + 'I', b, 20, 127)  # LINKTYPE_IEEE802_11_RADIOTAP
open(sys.argv[2], 'wb').write(b)
PY
for cmd in "replay $ST_TMP/radiotap.pcap --port 80 --to 127.0.0.1:1" "flows $ST_TMP/radiotap.pcap -o $ST_TMP/radiotap-flows"; do
	rc=0
	# shellcheck disable=SC2086
	timeout 20 "$ST_BIN" $cmd >/dev/null 2>"$ST_TMP/u.err" </dev/null || rc=$?
	[ "$rc" -eq 1 ] && [ "$(wc -l <"$ST_TMP/u.err")" -eq 1 ] &&
		grep -q 'link type 127 (IEEE802_11_RADIO' "$ST_TMP/u.err" ||
		st_fail "${cmd%% *} of an unknown link type: exit $rc, $(cat "$ST_TMP/u.err")"
done
st_log "PASS"
