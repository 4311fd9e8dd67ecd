#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Replay never loops: `shadowtap shadow --iface lo --port 80 --to 127.0.0.1:80` shadows nginx to
# itself, so the agent's own connections go to the captured port on the captured interface.
# Each client request must reach nginx exactly twice (the original and one shadow copy), never
# more, and the agent must report the segments of its own connections as ignored.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

st_netns_single loop
NS=$ST_LAST_NS
st_nginx_start web "$NS" 127.0.0.1:80
sh_agent_start agent "$NS" lo --port 80 --to 127.0.0.1:80
base=http://127.0.0.1
args=()
for i in $(seq 1 10); do args+=(-o /dev/null "$base/f100?n=$i"); done
st_in "$NS" "${ST_CURL[@]}" "${args[@]}"
for i in 11 12 13; do st_in "$NS" "${ST_CURL[@]}" -o /dev/null "$base/f100?n=$i"; done
st_in "$NS" "${ST_CURL[@]}" -o /dev/null --data-binary @/dev/null "$base/upload?n=14"
sleep 2
sh_agent_stop agent
sleep 0.5
n=$(sh_nginx_requests "$ST_TMP/web/access.log" | wc -l)
st_log "nginx served $n requests for 14 client requests"
sh_expect requests -eq 14
sh_expect replayed -eq 14
sh_expect own_segments -gt 0
[ "$n" -eq 28 ] || st_fail "nginx served $n requests, want 28 (each client request once more, no loop)"
for i in $(seq 1 14); do
	c=$(grep -c "n=$i " "$ST_TMP/web/access.log" || true)
	[ "$c" -eq 2 ] || st_fail "request n=$i reached nginx $c times"
done
st_log "PASS"
