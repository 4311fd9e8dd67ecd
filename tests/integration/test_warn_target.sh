#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A shadow target that refuses connections is said on stderr, once, naming it and why, and
# again once when it answers: `shadow --to` a port where nothing listens yet (production
# is never touched); requests meanwhile are dropped (dropped_down). Then the target
# starts: "answers again after N s; K requests were dropped meanwhile". A second fall is
# counted (target_downs=2), not said again (only at -v). The --metrics file has the
# target's state as a label of its own: shadowtap_shadow_target_up{target="..."} 0, then 1;
# the --stats lines say the drops' reason (down).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl python3 bpftool
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4
T=$ST_CLI4:8080
M=$ST_TMP/shadow.prom
ERR=$ST_TMP/agent.err

sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$T" --stats 1 --metrics "$M"
# the metrics' target label: up until a connect failed
st_wait_log "$M" "^shadowtap_shadow_target_up\\{command=\"shadow\",target=\"$T\"\\} 1$" 10

st_log "the target refuses: said once"
for i in 1 2 3; do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1?down-$i"; done
st_wait_log "$ERR" "^shadowtap: shadow target $T: Connection refused: its requests are dropped \\(dropped_down\\) until it answers again \\(said once: target_downs counts each time\\)$" 10
st_wait_log "$M" "^shadowtap_shadow_target_up\\{command=\"shadow\",target=\"$T\"\\} 0$" 10
st_wait_log "$ERR" '^shadowtap: stats .*; dropped [0-9]+ \(down [0-9]+\);' 10
[ "$(grep -c 'shadow target .*: Connection refused' "$ERR")" -eq 1 ] ||
	{ cat "$ERR"; st_fail "the refusal was said more than once"; }

st_log "the target starts: said once, with what was dropped meanwhile"
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 8080
# the engine backs off between tries (100 ms doubling, 5 s at most): requests until one connects
for i in $(seq 1 80); do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1?up-$i"
	grep -q "shadow target $T: answers again" "$ERR" && break
	sleep 0.1
done
st_wait_log "$ERR" "^shadowtap: shadow target $T: answers again after [0-9]+\\.[0-9] s; [1-9][0-9]* requests were dropped meanwhile$" 5
sh_wait_lines "$ST_TMP/sink.log" 1 10 || st_fail "the target got nothing once it was up"
st_wait_log "$M" "^shadowtap_shadow_target_up\\{command=\"shadow\",target=\"$T\"\\} 1$" 10

st_log "a second fall: counted, not said again"
kill "$SH_SINK_PID"
wait "$SH_SINK_PID" 2>/dev/null || true
for i in $(seq 1 80); do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1?again-$i"
	grep -q "^shadowtap_shadow_target_downs_total{command=\"shadow\",target=\"$T\"} 2$" "$M" && break
	sleep 0.1
done
sh_agent_stop agent
[ "$(grep -c 'shadow target .*: Connection refused' "$ERR")" -eq 1 ] ||
	{ cat "$ERR"; st_fail "the second fall was said again"; }
sh_expect target_downs -eq 2
sh_expect dropped_down -ge 3
grep -q "^shadowtap_shadow_target_dropped_total{command=\"shadow\",target=\"$T\"} [1-9]" "$M" ||
	{ cat "$M"; st_fail "--metrics: no dropped count for the target"; }
st_log "PASS"
