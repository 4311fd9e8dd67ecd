#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap capture --cgroup`: nginx "A" runs in its own cgroup v2 directory, nginx "B" in
# the same network namespace, on the same port 80 (another address), outside it. shadowtap
# captures A's cgroup: every stream of A (compared with tcpdump's capture of A's addresses)
# and nothing of B. The cgroup is removed afterwards, and nothing stays attached to it.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow tshark bpftool python3
st_require_agent
CG2=$(st_cgroup2_root)
[ -n "$CG2" ] || st_skip "cgroup v2 is not mounted (no cgroup2 line in /proc/mounts)"
st_init

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
ST_NGINX_CGROUP=$CG st_nginx_start a "$ST_SRV_NS" "$ST_SRV4:80" "[$ST_SRV6]:80"
st_nginx_start b "$ST_SRV_NS" "$ST_SRV4B:80"
grep -q . "$CG/cgroup.procs" || st_fail "nginx A is not in $CG"
st_log "nginx A in $CG: pids $(tr '\n' ' ' <"$CG/cgroup.procs")"

# shadowtap attaches to the cgroup; it runs outside the server namespace on purpose.
ST_FAKE_NS=$ST_SRV_NS ST_FAKE_IFACE=$ST_SRV_IF ST_FAKE_FILTER="host $ST_SRV4 or host $ST_SRV6" \
	st_capture_start agent "" "$CG" "$ST_TMP/agent.pcap" --port 80
st_tcpdump_start tcpdump "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/tcpdump.pcap" \
	"tcp port 80 and (host $ST_SRV4 or host $ST_SRV6)"

st_log "traffic to A (in the cgroup) and B (outside), interleaved"
st_client_mix "$ST_CLI_NS" "$ST_SRV4B" 80 "$ST_TMP/b/www"
st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$ST_TMP/a/www"
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s "http://$ST_SRV4B/f1500" >/dev/null
st_client_mix "$ST_CLI_NS" "$ST_SRV6" 80 "$ST_TMP/a/www"
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s "http://$ST_SRV4/f1500" >/dev/null
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4B/f1048576"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
dropped=$(st_tcpdump_dropped "$ST_TMP/tcpdump.err")
[ "${dropped:-0}" -eq 0 ] || st_fail "the reference tcpdump itself dropped $dropped packets"
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
cat "$ST_TMP/agent.err"
[ "$rc" -eq 0 ] || st_fail "shadowtap capture exited with $rc after SIGINT"

summary=$(st_summary "$ST_TMP/agent.err")
lost=$(st_summary_field "$summary" lost)
[ "${lost:-0}" -eq 0 ] || st_fail "the agent lost $lost bytes (ring buffer full: it did not keep up with this load); $summary"
if [ -z "${ST_FAKE_AGENT:-}" ]; then
	left=$(bpftool cgroup show "$CG" 2>&1 | grep -v '^ID' || true)
	[ -z "$left" ] || st_fail "programs still attached to $CG after exit: $left"
fi

nb=$(tcpdump -nr "$ST_TMP/agent.pcap" "host $ST_SRV4B" 2>/dev/null | wc -l)
[ "$nb" -eq 0 ] || st_fail "$nb packets of nginx B (outside the cgroup) were captured"
na=$(st_pcap_packets "$ST_TMP/agent.pcap")
[ "$na" -gt 0 ] || st_fail "nothing of nginx A captured"
st_log "packets: shadowtap $na (none of B), tcpdump $(st_pcap_packets "$ST_TMP/tcpdump.pcap")"
tshark -r "$ST_TMP/agent.pcap" -q -z conv,tcp >/dev/null 2>"$ST_TMP/tshark.err" ||
	{ cat "$ST_TMP/tshark.err"; st_fail "tshark cannot read shadowtap's pcap"; }
st_compare_captures "$ST_TMP/agent.pcap" "$ST_TMP/tcpdump.pcap" "$ST_TMP" ||
	st_fail "shadowtap's cgroup capture does not reassemble to tcpdump's capture of A"
st_log "PASS"
