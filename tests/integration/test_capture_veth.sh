#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap capture --iface` on a veth: a real nginx in a server namespace serves files of
# 1 B .. 5 MB and accepts uploads; curl (keep-alive batches, uploads with and without
# Expect: 100-continue, chunked, HTTP/1.0, IPv6), a pipelining client and a short wrk run
# talk to it from a client namespace. shadowtap and tcpdump capture the same veth at the same
# time: the TCP streams tcpflow reassembles from both pcaps must be identical, and tshark must
# read shadowtap's pcap.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow tshark bpftool python3
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
WWW=$ST_TMP/web/www

st_capture_start agent "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/agent.pcap" --port 80
st_tcpdump_start tcpdump "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/tcpdump.pcap" 'tcp port 80'

st_log "traffic: IPv4 mix"
st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$WWW"
st_log "traffic: IPv6 mix"
st_client_mix "$ST_CLI_NS" "$ST_SRV6" 80 "$WWW"
# wrk stresses the request rate (tens of thousands of small responses a second, both address
# families); the bandwidth at which capture starts losing is measured by `make bench`.
st_log "traffic: wrk 2 s"
st_in "$ST_CLI_NS" wrk -t1 -c4 -d2s --timeout 5s "http://$ST_SRV4/f1500" | sed -n '/Requests\/sec/p;/Transfer\/sec/p'
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s --timeout 5s "http://[$ST_SRV6]/f4096" | sed -n '/Requests\/sec/p;/Transfer\/sec/p'
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
dropped=$(st_tcpdump_dropped "$ST_TMP/tcpdump.err")
[ "${dropped:-0}" -eq 0 ] || st_fail "the reference tcpdump itself dropped $dropped packets: no comparison possible"
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
cat "$ST_TMP/agent.err"
[ "$rc" -eq 0 ] || st_fail "shadowtap capture exited with $rc after SIGINT"
summary=$(st_summary "$ST_TMP/agent.err")
[ -n "$summary" ] || [ -n "${ST_FAKE_AGENT:-}" ] || st_fail "no summary line on stderr"
lost=$(st_summary_field "$summary" lost)
[ "${lost:-0}" -eq 0 ] || st_fail "the agent lost $lost bytes (ring buffer full: it did not keep up with this load); $summary"

st_log "packets: shadowtap $(st_pcap_packets "$ST_TMP/agent.pcap"), tcpdump $(st_pcap_packets "$ST_TMP/tcpdump.pcap")"
st_log "tshark conversations:"
tshark -r "$ST_TMP/agent.pcap" -q -z conv,tcp >"$ST_TMP/conv.txt" 2>"$ST_TMP/tshark.err" ||
	{ cat "$ST_TMP/tshark.err"; st_fail "tshark cannot read shadowtap's pcap"; }
grep -c '<->' "$ST_TMP/conv.txt" | sed 's/^/  tcp conversations: /'
if grep -qiE 'appears to have been cut short|malformed|corrupt' "$ST_TMP/tshark.err"; then
	cat "$ST_TMP/tshark.err"
	st_fail "tshark complains about shadowtap's pcap"
fi

st_log "comparing tcpflow reassembly of both captures"
st_compare_captures "$ST_TMP/agent.pcap" "$ST_TMP/tcpdump.pcap" "$ST_TMP" ||
	st_fail "shadowtap's capture does not reassemble to tcpdump's"

# The 5 MB download must be whole in shadowtap's capture: some stream ends with the file.
found=0
for f in "$ST_TMP"/flows-a/*.00080-*; do
	[ "$(stat -c %s "$f")" -ge 5242880 ] || continue
	if tail -c 5242880 "$f" | cmp -s - "$WWW/f5242880"; then found=1; break; fi
done
[ $found -eq 1 ] || st_fail "no reassembled stream ends with the 5 MB file"
st_log "PASS"
