#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A cgroup whose service opened its port before it joined the cgroup is not seen: a socket
# is its cgroup's from its creation on (accepted connections take their listener's), and
# cgroup_skb programs see it by that. `capture --cgroup` says so at its start, naming the
# port, and indeed captures nothing of it; a service started inside the cgroup is said
# nothing about and is captured. Both nginx listen on loopback of this namespace (the
# agent's: its check reads this namespace's listening sockets).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds nginx curl bpftool tcpdump pgrep
st_require_agent
CG2=$(st_cgroup2_root)
[ -n "$CG2" ] || st_skip "cgroup v2 is not mounted (no cgroup2 line in /proc/mounts)"
st_init

# ports of this test alone (loopback of the host's namespace is shared with other tests)
LATE=$((20000 + ST_ID % 20000))
BORN=$((LATE + 1))
st_cgroup_create late
CG=$ST_LAST_CGROUP
# "late": started outside, then moved in (as `echo PID > cgroup.procs` or a unit adopting a
# running process would); "born": started inside
st_nginx_start late "" "127.0.0.1:$LATE"
for p in $(cat "$ST_TMP/late/nginx.pid") $(pgrep -P "$(cat "$ST_TMP/late/nginx.pid")"); do
	echo "$p" >"$CG/cgroup.procs"
done
ST_NGINX_CGROUP=$CG st_nginx_start born "" "127.0.0.1:$BORN"
st_log "nginx in $CG: pids $(tr '\n' ' ' <"$CG/cgroup.procs")"

ERR=$ST_TMP/agent.err
st_capture_start agent "" "$CG" "$ST_TMP/agent.pcap" --port "$LATE" --port "$BORN" --warn-idle 0
st_wait_log "$ERR" "^shadowtap: capture: port $LATE: its listening socket was created before its process joined cgroup $CG: its connections are not seen \\(a socket is its cgroup's from its creation on: start the service inside the cgroup\\)$" 10
grep -q "port $BORN:" "$ERR" && { cat "$ERR"; st_fail "the service started in the cgroup was warned about"; }
grep -q 'nothing listens' "$ERR" && { cat "$ERR"; st_fail "both ports have a listener"; }

st_log "what the line says is so: the late service's traffic is not captured"
"${ST_CURL[@]}" -o /dev/null "http://127.0.0.1:$LATE/f1" || st_fail "curl late"
"${ST_CURL[@]}" -o /dev/null "http://127.0.0.1:$BORN/f1" || st_fail "curl born"
st_tcp_settle "$BORN" ""
st_tcp_settle "$LATE" ""
st_stop "$ST_AGENT_PID" INT || { cat "$ERR"; st_fail "capture exited with an error"; }
n_late=$(tcpdump -nr "$ST_TMP/agent.pcap" "tcp port $LATE" 2>/dev/null | wc -l)
n_born=$(tcpdump -nr "$ST_TMP/agent.pcap" "tcp port $BORN" 2>/dev/null | wc -l)
st_log "packets: $n_born of the service started inside, $n_late of the one that joined late"
[ "$n_late" -eq 0 ] || st_fail "the late service's packets were captured: the warning is wrong"
[ "$n_born" -gt 0 ] || st_fail "nothing of the service started inside the cgroup"
st_log "PASS"
