#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Signals go through the event loop (agent/base/loop.h), never the default action:
#  - SIGHUP during `capture -w FILE` (logrotate: mv FILE FILE.1; kill -HUP): two valid pcaps
#    whose packets add up to the summary's, the run goes on, exit 0 with its summary; a SIGHUP
#    while FILE was not moved changes nothing; `-w -` ignores it (one valid stream);
#  - SIGHUP to shadow and flows: nothing to reopen, they go on;
#  - a capture started with & by this (non-interactive) script, whose shell starts it with
#    SIGINT ignored, stops at kill -INT as tcpdump does: exit 0, summary, a whole pcap;
#  - SIGQUIT (and SIGUSR2 for flows): the run stops as on SIGINT: every packet captured is
#    in the pcap (the old code died with a 24-byte file), the summary is printed, exit 0,
#    nothing left attached; SIGXFSZ (a resource limit): the same, but exit 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4

traffic() { st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f4096" -o /dev/null "$base/f100000" -o /dev/null "$base/f1"; }

# pcap_packets FILE: packets in a pcap, read strictly (fails on a bad header or a cut record).
pcap_packets() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
if len(b) < 24 or b[:4] not in (b"\x4d\x3c\xb2\xa1", b"\xd4\xc3\xb2\xa1"):
    sys.exit("%s: not a pcap (%d bytes)" % (sys.argv[1], len(b)))
off, n = 24, 0
while off < len(b):
    if off + 16 > len(b):
        sys.exit("%s: cut record header at %d" % (sys.argv[1], off))
    caplen = struct.unpack_from("<I", b, off + 8)[0]
    if off + 16 + caplen > len(b):
        sys.exit("%s: cut record at %d" % (sys.argv[1], off))
    off += 16 + caplen
    n += 1
print(n)
PY
}

# not_attached PID: the agent is gone and left nothing attached.
# (a link whose last fd was closed leaves the kernel's list a moment later: wait up to 2 s)
not_attached() {
	local left
	! st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "" || st_fail "$1: still attached after exit"
	for _ in $(seq 1 20); do
		left=$(st_leaked_shadowtap_links)
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	st_fail "$1: shadowtap BPF links left: $left"
}

st_log "capture -w FILE: SIGHUP before a move (nothing to reopen), then mv + SIGHUP"
mkdir "$ST_TMP/rot"
F=$ST_TMP/rot/x.pcap
st_capture_start rot "$ST_SRV_NS" "$ST_SRV_IF" "$F" --port 80
pid=$ST_AGENT_PID
traffic
kill -HUP "$pid"
sleep 0.5
st_alive "$pid" || st_fail "SIGHUP killed the agent (not moved)"
[ ! -e "$ST_TMP/rot/x.1.pcap" ] || st_fail "?"
traffic
mv "$F" "$ST_TMP/rot/x.1.pcap"
kill -HUP "$pid"
for _ in $(seq 1 50); do [ -e "$F" ] && break; sleep 0.1; done
[ -e "$F" ] || { cat "$ST_TMP/rot.err"; st_fail "no new $F after mv + SIGHUP"; }
st_alive "$pid" || st_fail "SIGHUP killed the agent"
traffic
rc=0
st_stop "$pid" INT || rc=$?
cat "$ST_TMP/rot.err"
[ "$rc" -eq 0 ] || st_fail "capture after SIGHUP: exit $rc"
summary=$(st_summary "$ST_TMP/rot.err")
[ -n "$summary" ] || st_fail "no summary after SIGHUP and SIGINT"
total=$(st_summary_field "$summary" packets)
n1=$(pcap_packets "$ST_TMP/rot/x.1.pcap") || st_fail "the rotated file is not a valid pcap"
n2=$(pcap_packets "$F") || st_fail "the new file is not a valid pcap"
st_log "  x.1.pcap: $n1 packets, x.pcap: $n2 packets, summary: $total"
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || st_fail "a rotated capture is empty ($n1, $n2)"
[ $((n1 + n2)) -eq "$total" ] || st_fail "the two files hold $((n1 + n2)) packets, the summary says $total"
[ "$(ls -A "$ST_TMP/rot" | tr '\n' ' ')" = "x.1.pcap x.pcap " ] || st_fail "files left: $(ls -A "$ST_TMP/rot")"
not_attached "SIGHUP"

st_log "capture -w -: SIGHUP ignored, one valid stream"
st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port 80 -w - \
	>"$ST_TMP/stdout.pcap" 2>"$ST_TMP/stdout.err" </dev/null &
pid=$!
ST_PIDS+=("$pid")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$pid" && break; sleep 0.1; done
traffic
kill -HUP "$pid"
sleep 0.3
st_alive "$pid" || st_fail "SIGHUP killed capture -w -"
traffic
rc=0
st_stop "$pid" TERM || rc=$?
[ "$rc" -eq 0 ] || st_fail "capture -w -: exit $rc"
n=$(pcap_packets "$ST_TMP/stdout.pcap") || st_fail "-w - after SIGHUP: not a valid pcap stream"
[ "$n" -eq "$(st_summary_field "$(st_summary "$ST_TMP/stdout.err")" packets)" ] && [ "$n" -gt 0 ] ||
	st_fail "-w -: $n packets in the stream, summary: $(st_summary "$ST_TMP/stdout.err")"

# stop_by SIG WANT_RC: a capture with traffic, ended by SIG: every packet in the file, summary
# printed, exit WANT_RC, nothing attached.
stop_by() {
	local sig=$1 want=$2 out=$ST_TMP/sig-$1.pcap rc=0 n s
	st_capture_start "sig-$sig" "$ST_SRV_NS" "$ST_SRV_IF" "$out" --port 80
	traffic
	st_stop "$ST_AGENT_PID" "$sig" || rc=$?
	s=$(st_summary "$ST_TMP/sig-$sig.err")
	[ "$rc" -eq "$want" ] || { cat "$ST_TMP/sig-$sig.err"; st_fail "SIG$sig: exit $rc, want $want"; }
	[ -n "$s" ] || { cat "$ST_TMP/sig-$sig.err"; st_fail "SIG$sig: no summary"; }
	n=$(pcap_packets "$out") || st_fail "SIG$sig: the pcap is not valid"
	[ "$n" -gt 0 ] && [ "$n" -eq "$(st_summary_field "$s" packets)" ] ||
		st_fail "SIG$sig: $n packets in the file ($(stat -c %s "$out") bytes), summary: $s"
	grep -q "SIG$sig" "$ST_TMP/sig-$sig.err" || st_fail "SIG$sig: no line says why the run ended"
	not_attached "SIG$sig"
	st_log "  SIG$sig: exit $rc, $n packets, summary printed, nothing attached"
}
st_log "capture started with & by this script (SIGINT ignored, as a non-interactive shell starts it), stopped by kill -INT"
# the shell's rule, seen on a process of its own: its background jobs ignore SIGINT
sleep 60 &
for _ in $(seq 1 50); do [ "$(cat "/proc/$!/comm" 2>/dev/null)" = sleep ] && break; sleep 0.1; done
mask=$(awk '/^SigIgn:/ { print $2 }' "/proc/$!/status") # (once it runs sleep: set before exec)
kill $!
(( 0x$mask & 2 )) || st_skip "this shell does not start background jobs with SIGINT ignored"
# (not st_in_bg, which restores the default: the agent must do it itself)
ip netns exec "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port 80 -w "$ST_TMP/bg.pcap" \
	>"$ST_TMP/bg.out" 2>"$ST_TMP/bg.err" </dev/null &
pid=$!
ST_PIDS+=("$pid")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$pid" && break; sleep 0.1; done
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$pid" || { cat "$ST_TMP/bg.err"; st_fail "the background capture did not attach"; }
traffic
rc=0
st_stop "$pid" INT || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/bg.err"; st_fail "kill -INT of a background capture: exit $rc"; }
s=$(st_summary "$ST_TMP/bg.err")
n=$(pcap_packets "$ST_TMP/bg.pcap") || st_fail "kill -INT of a background capture: the pcap is not valid"
[ "$n" -gt 0 ] && [ "$n" -eq "$(st_summary_field "$s" packets)" ] ||
	st_fail "kill -INT of a background capture: $n packets in the file, summary: $s"
not_attached "background SIGINT"
st_log "  kill -INT: exit 0, $n packets, summary printed, nothing attached"

st_log "capture ended by other signals"
# (tests/unit/base/test_loop.c goes through every signal; these are the whole path, end to end)
stop_by QUIT 0
stop_by XFSZ 1

st_log "shadow and flows: SIGHUP goes on, SIGQUIT stops with a summary"
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 8080
sh_agent_start sh "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080"
kill -HUP "$SH_AGENT_PID"
sleep 0.3
st_alive "$SH_AGENT_PID" || st_fail "SIGHUP killed shadow"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1"
sh_wait_lines "$ST_TMP/sink.log" 1 10 || st_fail "shadow replays nothing after SIGHUP"
rc=0
st_stop "$SH_AGENT_PID" QUIT || rc=$?
[ "$rc" -eq 0 ] || st_fail "shadow SIGQUIT: exit $rc"
st_summary "$ST_TMP/sh.err" | grep -q 'replayed=1 ' || st_fail "shadow SIGQUIT: $(st_summary "$ST_TMP/sh.err")"
not_attached "shadow SIGQUIT"

st_in_bg "$ST_SRV_NS" "$ST_BIN" flows --iface "$ST_SRV_IF" --port 80 -o "$ST_TMP/flows" \
	>"$ST_TMP/flows.out" 2>"$ST_TMP/flows.err" </dev/null &
pid=$!
ST_PIDS+=("$pid")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$pid" && break; sleep 0.1; done
kill -HUP "$pid"
sleep 0.3
st_alive "$pid" || st_fail "SIGHUP killed flows"
traffic
rc=0
st_stop "$pid" USR2 || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/flows.err"; st_fail "flows SIGUSR2: exit $rc"; }
st_summary "$ST_TMP/flows.err" | grep -q 'connections=1 files=2 ' || st_fail "flows SIGUSR2: $(st_summary "$ST_TMP/flows.err")"
not_attached "flows SIGUSR2"
st_log "PASS"
