#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The captured interface is deleted under a running agent (agent/input/linkwatch.c, st_tap__watch):
#  - it says so at once (one line), keeps running, and when a veth of that name is created
#    again it attaches to it and captures its traffic; the summary counts the detach and the
#    time it was blind (TCX links, then the clsact fallback);
#  - with --exit-on-detach it exits 1 promptly with a clear line and its summary, and nothing
#    stays attached (capture, shadow); flows follows the interface back like capture.
# Before: the agent kept running, captured nothing, said nothing, and exited 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool tc python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4

# The veth pair again, same names and addresses (nginx listens on every address: it answers).
veth_again() {
	ip link add "$ST_SRV_IF" netns "$ST_SRV_NS" type veth peer name "$ST_CLI_IF" netns "$ST_CLI_NS"
	ip -n "$ST_SRV_NS" addr add "$ST_SRV4/24" dev "$ST_SRV_IF"
	ip -n "$ST_CLI_NS" addr add "$ST_CLI4/24" dev "$ST_CLI_IF"
	ip -n "$ST_SRV_NS" link set "$ST_SRV_IF" up
	ip -n "$ST_CLI_NS" link set "$ST_CLI_IF" up
}
get() { st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f4096?$1"; }
# in_pcap FILE STRING: the capture holds STRING (a request's query).
in_pcap() { python3 -c 'import sys; sys.exit(sys.argv[2].encode() not in open(sys.argv[1], "rb").read())' "$1" "$2"; }
# gone_and_said LOG: deletes the interface; the agent must say so within 2 s.
gone_and_said() {
	local t0
	t0=$(date +%s%N)
	ip -n "$ST_SRV_NS" link del "$ST_SRV_IF"
	st_wait_log "$1" 'interface st-srv \(ifindex [0-9]+\) is gone' 2
	st_log "  said within $(( ($(date +%s%N) - t0) / 1000000 )) ms of the delete"
}
nothing_left() {
	local left
	for _ in $(seq 1 20); do
		left=$(st_leaked_shadowtap_links)
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || st_fail "$1: shadowtap BPF links left: $left"
	if ip -n "$ST_SRV_NS" link show "$ST_SRV_IF" >/dev/null 2>&1; then
		! st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "" || st_fail "$1: still attached"
		left=$(tc -n "$ST_SRV_NS" filter show dev "$ST_SRV_IF" ingress 2>&1 || true)
		! grep -q 'tc_' <<<"$left" || st_fail "$1: a clsact filter stayed: $left"
	fi
}

# follow MODE: capture with --attach MODE through a delete and a re-create.
follow() {
	local mode=$1 out=$ST_TMP/follow-$1.pcap rc=0 s
	st_log "capture --attach $mode: deleted, then created again"
	st_capture_start "follow-$mode" "$ST_SRV_NS" "$ST_SRV_IF" "$out" --port 80 --attach "$mode"
	get "before-$mode"
	gone_and_said "$ST_TMP/follow-$mode.err"
	sleep 0.5
	st_alive "$ST_AGENT_PID" || st_fail "$mode: the agent died with its interface"
	veth_again
	st_wait_log "$ST_TMP/follow-$mode.err" 'interface st-srv is back \(ifindex [0-9]+\): capturing again' 3
	st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$ST_AGENT_PID" || { cat "$ST_TMP/follow-$mode.err"; st_attach_state "$ST_SRV_NS" "$ST_SRV_IF"; st_fail "$mode: not attached to the new interface"; }
	get "after-$mode"
	st_stop "$ST_AGENT_PID" INT || rc=$?
	grep -v '^libbpf' "$ST_TMP/follow-$mode.err"
	[ "$rc" -eq 0 ] || st_fail "$mode: exit $rc"
	s=$(st_summary "$ST_TMP/follow-$mode.err")
	[ "$(st_summary_field "$s" detaches)" = 1 ] || st_fail "$mode: summary: $s (want detaches=1)"
	[ "$(st_summary_field "$s" blind_ms)" -ge 400 ] || st_fail "$mode: summary: $s (blind at least 0.5 s)"
	in_pcap "$out" "before-$mode" || st_fail "$mode: the request before the delete is not in the capture"
	in_pcap "$out" "after-$mode" || st_fail "$mode: the request on the new interface is not in the capture"
	nothing_left "$mode"
}
follow tcx
follow clsact

st_log "capture --exit-on-detach"
st_capture_start exit "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/exit.pcap" --port 80 --exit-on-detach
get before
t0=$(date +%s%N)
ip -n "$ST_SRV_NS" link del "$ST_SRV_IF"
for _ in $(seq 1 30); do st_alive "$ST_AGENT_PID" || break; sleep 0.1; done
st_alive "$ST_AGENT_PID" && st_fail "--exit-on-detach: still running 3 s after the delete"
rc=0
wait "$ST_AGENT_PID" || rc=$?
st_log "  exited $rc after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
grep -v '^libbpf' "$ST_TMP/exit.err"
[ "$rc" -eq 1 ] || st_fail "--exit-on-detach: exit $rc, want 1"
grep -q 'interface st-srv (ifindex [0-9]*) is gone: stopping (--exit-on-detach)' "$ST_TMP/exit.err" ||
	st_fail "--exit-on-detach: no line saying why"
st_summary "$ST_TMP/exit.err" | grep -q 'detaches=1 ' || st_fail "--exit-on-detach: $(st_summary "$ST_TMP/exit.err")"
in_pcap "$ST_TMP/exit.pcap" before || st_fail "--exit-on-detach: what came before is not in the capture"
nothing_left "--exit-on-detach"
veth_again

st_log "shadow --exit-on-detach"
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 8080
sh_agent_start sh "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" --exit-on-detach
ip -n "$ST_SRV_NS" link del "$ST_SRV_IF"
for _ in $(seq 1 30); do st_alive "$SH_AGENT_PID" || break; sleep 0.1; done
st_alive "$SH_AGENT_PID" && st_fail "shadow --exit-on-detach: still running 3 s after the delete"
rc=0
wait "$SH_AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || { cat "$ST_TMP/sh.err"; st_fail "shadow --exit-on-detach: exit $rc, want 1"; }
st_summary "$ST_TMP/sh.err" | grep -q 'detaches=1 ' || st_fail "shadow: $(st_summary "$ST_TMP/sh.err")"
nothing_left "shadow --exit-on-detach"
veth_again

st_log "flows: follows the interface back"
st_in_bg "$ST_SRV_NS" "$ST_BIN" flows --iface "$ST_SRV_IF" --port 80 -o "$ST_TMP/flows" \
	>"$ST_TMP/flows.out" 2>"$ST_TMP/flows.err" </dev/null &
pid=$!
ST_PIDS+=("$pid")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$pid" && break; sleep 0.1; done
gone_and_said "$ST_TMP/flows.err"
veth_again
st_wait_log "$ST_TMP/flows.err" 'is back' 3
get after-flows
rc=0
st_stop "$pid" INT || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/flows.err"; st_fail "flows: exit $rc"; }
grep -rqs 'after-flows' "$ST_TMP/flows" || st_fail "flows: the request on the new interface is not in its files"
st_summary "$ST_TMP/flows.err" | grep -q 'detaches=1 blind_ms=' || st_fail "flows: $(st_summary "$ST_TMP/flows.err")"
nothing_left flows
st_log "PASS"
