#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# How `shadowtap capture` ends: on --duration expiry, SIGINT and SIGTERM it exits 0 and prints
# one line `shadowtap: summary packets=N bytes=N flows=N lost=N` on stderr, whose packets
# equal the pcap's and whose flows count the connections made; `-w -` streams a pcap on
# stdout that `tcpdump -r -` reads while it is written.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump bpftool python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
URL=http://$ST_SRV4
RE='^shadowtap: summary packets=[0-9]+ bytes=[0-9]+ flows=[0-9]+ lost=[0-9]+'

# three_connections: exactly 3 TCP connections to port 80 (2 IPv4, 1 IPv6).
three_connections() {
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$URL/f1" -o /dev/null "$URL/f100000"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/web/www/f65537" "$URL/upload"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://[$ST_SRV6]/f4096"
}

# check_summary TAG ERRFILE PCAP: one well-formed summary line, consistent with PCAP.
check_summary() {
	local tag=$1 err=$2 pcap=$3 n line pk by fl lo filepk
	n=$(grep -cE "$RE" "$err" || true)
	[ "$n" -eq 1 ] || { cat "$err"; st_fail "[$tag] $n summary lines on stderr (want 1)"; }
	line=$(grep -E "$RE" "$err")
	pk=$(st_summary_field "$line" packets)
	by=$(st_summary_field "$line" bytes)
	fl=$(st_summary_field "$line" flows)
	lo=$(st_summary_field "$line" lost)
	filepk=$(st_pcap_packets "$pcap")
	st_log "[$tag] $line   (pcap: $filepk packets)"
	[ "$pk" -gt 0 ] && [ "$by" -gt 0 ] || st_fail "[$tag] summary counts nothing"
	[ "$pk" -eq "$filepk" ] || st_fail "[$tag] summary packets=$pk but the pcap holds $filepk"
	[ "$fl" -eq 3 ] || st_fail "[$tag] summary flows=$fl after 3 connections"
	[ "$lo" -eq 0 ] || st_fail "[$tag] summary lost=$lo on a light load"
}

# 1. --duration: ends by itself, on time.
st_capture_start dur "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/dur.pcap" --port 80 --duration 3
t0=$(date +%s%N)
three_connections
for _ in $(seq 1 150); do st_alive "$ST_AGENT_PID" || break; sleep 0.1; done
st_alive "$ST_AGENT_PID" && st_fail "--duration 3 did not end the capture within 15 s"
rc=0
wait "$ST_AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/dur.err"; st_fail "exit $rc at --duration expiry"; }
ms=$((($(date +%s%N) - t0) / 1000000))
st_log "[duration] exited 0 after ~${ms} ms of a 3 s duration"
check_summary duration "$ST_TMP/dur.err" "$ST_TMP/dur.pcap"

# 2. and 3. SIGINT, SIGTERM.
for sig in INT TERM; do
	st_capture_start "sig$sig" "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/sig$sig.pcap" --port 80
	three_connections
	sleep 0.5
	rc=0
	st_stop "$ST_AGENT_PID" "$sig" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$ST_TMP/sig$sig.err"; st_fail "exit $rc after SIG$sig"; }
	check_summary "SIG$sig" "$ST_TMP/sig$sig.err" "$ST_TMP/sig$sig.pcap"
	st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" && st_fail "still attached after SIG$sig"
	[ -z "$(st_leaked_shadowtap_links)" ] || st_fail "a BPF link outlives the agent after SIG$sig"
done

# 4. -w - read by `tcpdump -r -` as it is written (through a fifo, so both pids are known).
mkfifo "$ST_TMP/pipe"
tcpdump -nr - <"$ST_TMP/pipe" >"$ST_TMP/pipe.txt" 2>"$ST_TMP/pipe.tcpdump.err" &
TD=$!
ST_PIDS+=("$TD")
st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" "${ST_RING[@]}" --port 80 -w - --duration 4 \
	>"$ST_TMP/pipe" 2>"$ST_TMP/pipe.err" </dev/null &
AG=$!
ST_PIDS+=("$AG")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$AG" && break; sleep 0.1; done
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$AG" || { cat "$ST_TMP/pipe.err"; st_fail "-w -: agent did not attach"; }
three_connections
rca=0 rct=0
wait "$AG" || rca=$?
wait "$TD" || rct=$?
cat "$ST_TMP/pipe.err"
[ "$rca" -eq 0 ] || st_fail "-w -: shadowtap exited $rca"
[ "$rct" -eq 0 ] || { cat "$ST_TMP/pipe.tcpdump.err"; st_fail "-w -: tcpdump -r - exited $rct"; }
line=$(grep -E "$RE" "$ST_TMP/pipe.err" || true)
[ -n "$line" ] || st_fail "-w -: no summary line"
n=$(wc -l <"$ST_TMP/pipe.txt")
pk=$(st_summary_field "$line" packets)
grep -q "$ST_SRV4.80 > $ST_CLI4" "$ST_TMP/pipe.txt" || st_fail "-w -: tcpdump saw no server->client packet"
grep -q "$ST_SRV6.80 > $ST_CLI6" "$ST_TMP/pipe.txt" || st_fail "-w -: tcpdump saw no IPv6 packet"
[ "$n" -eq "$pk" ] || st_fail "-w -: tcpdump read $n packets, summary says $pk"
st_log "[-w -] tcpdump -r - read $n packets"
st_log "PASS"
