#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap capture --iface lo` inside a namespace: client and nginx talk over loopback,
# where TCP segments travel as 64 KB GSO super-packets. A 5 MB download (and upload) must
# arrive whole, and the streams tcpflow reassembles from shadowtap's pcap must equal those
# from tcpdump's capture of the same loopback traffic, IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump tcpflow tshark bpftool python3
st_require_agent
st_init

st_netns_single lo
NS=$ST_LAST_NS
st_nginx_start web "$NS" 127.0.0.1:80 "[::1]:80"
WWW=$ST_TMP/web/www

st_capture_start agent "$NS" lo "$ST_TMP/agent.pcap" --port 80
st_tcpdump_start tcpdump "$NS" lo "$ST_TMP/tcpdump.pcap" 'tcp port 80'

st_log "traffic over loopback"
st_client_mix "$NS" 127.0.0.1 80 "$WWW"
st_in "$NS" "${ST_CURL[@]}" -o /dev/null "http://[::1]/f5242880" -o /dev/null "http://[::1]/f65537" -o /dev/null "http://[::1]/f1"
st_in "$NS" "${ST_CURL[@]}" -o /dev/null -T "$ST_TMP/upload/u5m" "http://[::1]/dav/u5m-v6"
st_tcp_settle 80 "$NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
dropped=$(st_tcpdump_dropped "$ST_TMP/tcpdump.err")
[ "${dropped:-0}" -eq 0 ] || st_fail "the reference tcpdump itself dropped $dropped packets: no comparison possible"
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
cat "$ST_TMP/agent.err"
[ "$rc" -eq 0 ] || st_fail "shadowtap capture exited with $rc after SIGINT"
summary=$(st_summary "$ST_TMP/agent.err")
st_summary_documented "$summary" capture "The tap"
lost=$(st_summary_field "$summary" lost)
[ "${lost:-0}" -eq 0 ] || st_fail "the agent lost $lost bytes (ring buffer full: it did not keep up with this load); $summary"

st_log "packets: shadowtap $(st_pcap_packets "$ST_TMP/agent.pcap"), tcpdump $(st_pcap_packets "$ST_TMP/tcpdump.pcap")"
# Largest packet in each capture: shows whether super-packets were kept whole or split.
for p in agent tcpdump; do
	echo "  largest frame in $p.pcap: $(tcpdump -nr "$ST_TMP/$p.pcap" -e 2>/dev/null | sed -nE 's/.*, length ([0-9]+):.*/\1/p' | sort -n | tail -n1)"
done
tshark -r "$ST_TMP/agent.pcap" -q -z conv,tcp >/dev/null 2>"$ST_TMP/tshark.err" ||
	{ cat "$ST_TMP/tshark.err"; st_fail "tshark cannot read shadowtap's pcap"; }

st_compare_captures "$ST_TMP/agent.pcap" "$ST_TMP/tcpdump.pcap" "$ST_TMP" ||
	st_fail "shadowtap's loopback capture does not reassemble to tcpdump's"

# The 5 MB download and the 5 MB upload must be whole in shadowtap's capture.
dl=0 ul=0
for f in "$ST_TMP"/flows-a/*; do
	[ "$(stat -c %s "$f")" -ge 5242880 ] || continue
	tail -c 5242880 "$f" | cmp -s - "$WWW/f5242880" && dl=1
	tail -c 5242880 "$f" | cmp -s - "$ST_TMP/upload/u5m" && ul=1
done
[ $dl -eq 1 ] || st_fail "no reassembled stream ends with the 5 MB download"
[ $ul -eq 1 ] || st_fail "no reassembled stream ends with the 5 MB upload"
st_log "PASS"
