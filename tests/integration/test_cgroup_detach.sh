#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The cgroup of `capture --cgroup` removed under a running agent: it says so, counts the
# detach and the blind time, keeps running and captures again once a cgroup of that path
# exists again (the traffic of a new nginx in it is in the pcap, the traffic while it was
# gone is not); with --exit-on-detach it stops with a clear line and exit 1; nothing stays
# attached either way.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl bpftool tcpdump
st_require_agent
st_init

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP

st_capture_start agent "" "$CG" "$ST_TMP/agent.pcap" --port 80

st_log "the cgroup removed (nothing in it) while the agent runs"
rmdir "$CG" || st_fail "could not remove $CG"
st_wait_log "$ST_TMP/agent.err" "cgroup $CG was removed" 10 ||
	{ cat "$ST_TMP/agent.err"; st_fail "the removal was not reported"; }
st_alive "$ST_AGENT_PID" || st_fail "the agent stopped when its cgroup was removed"

st_log "created again, a new nginx in it, traffic"
mkdir "$CG"
st_wait_log "$ST_TMP/agent.err" "cgroup $CG exists again" 10 ||
	{ cat "$ST_TMP/agent.err"; st_fail "the new cgroup was not attached"; }
progs=$(bpftool cgroup show "$CG" 2>&1 || true)
grep -q cgroup_skb_ingress <<<"$progs" || st_fail "no program attached to the new $CG: $progs"
ST_NGINX_CGROUP=$CG st_nginx_start a "$ST_SRV_NS" "$ST_SRV4:80"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f1448" -o /dev/null "http://$ST_SRV4/f100"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
cat "$ST_TMP/agent.err"
[ "$rc" -eq 0 ] || st_fail "capture exited with $rc"
summary=$(st_summary "$ST_TMP/agent.err")
[ "$(st_summary_field "$summary" detaches)" = 1 ] || st_fail "detaches is not 1: $summary"
[ "$(st_summary_field "$summary" blind_ms)" -gt 0 ] || st_fail "no blind time counted: $summary"
n=$(tcpdump -nr "$ST_TMP/agent.pcap" "tcp port 80" 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || st_fail "nothing captured from the cgroup created again"
st_log "captured $n packets after the cgroup came back"
left=$(bpftool cgroup show "$CG" 2>&1 | grep -v '^ID' || true)
[ -z "$left" ] || st_fail "programs still attached to $CG after exit: $left"

st_log "--exit-on-detach: the removal stops the agent"
st_cgroup_create svc2
CG2=$ST_LAST_CGROUP
st_capture_start agent2 "" "$CG2" "$ST_TMP/agent2.pcap" --port 80 --exit-on-detach
rmdir "$CG2" || st_fail "could not remove $CG2"
rc=0
for i in $(seq 1 50); do st_alive "$ST_AGENT_PID" || break; sleep 0.1; done
wait "$ST_AGENT_PID" || rc=$?
cat "$ST_TMP/agent2.err"
[ "$rc" -eq 1 ] || st_fail "--exit-on-detach: exit $rc, expected 1"
grep -q "cgroup $CG2 was removed: stopping (--exit-on-detach)" "$ST_TMP/agent2.err" ||
	st_fail "--exit-on-detach: no line saying why it stopped"
echo "PASS"
