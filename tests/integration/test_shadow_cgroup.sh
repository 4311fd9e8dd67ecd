#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap shadow --cgroup`: nginx A runs in its own cgroup v2 directory, nginx B on the same
# port (another address) outside it. Shadowing A's cgroup replays exactly A's requests (each
# once, in order per connection) and none of B's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
st_init

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
ST_NGINX_CGROUP=$CG st_nginx_start a "$ST_SRV_NS" "$ST_SRV4:80"
st_nginx_start b "$ST_SRV_NS" "$ST_SRV4B:80"
# The agent runs outside the server namespace (ip netns exec remounts /sys, hiding the cgroup
# tree), so the shadow listens in this namespace, on loopback, on a port picked free.
SPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sh_sink_start sink "" 127.0.0.1 "$SPORT"

st_in_bg "" "$ST_BIN" shadow --cgroup "$CG" "${ST_RING[@]}" --port 80 --to "127.0.0.1:$SPORT" --drain 10 \
	>"$ST_TMP/agent.out" 2>"$ST_TMP/agent.err" </dev/null &
SH_AGENT_PID=$!
ST_PIDS+=("$SH_AGENT_PID")
attached=0
for i in $(seq 1 100); do
	st_alive "$SH_AGENT_PID" || { cat "$ST_TMP/agent.err"; st_fail "shadowtap exited during start-up"; }
	# bpftool can fail now and then while other programs come and go: retry, never re-check
	st_agent_attached "" "$CG" && { attached=1; break; }
	sleep 0.1
done
[ $attached -eq 1 ] || st_fail "not attached to $CG within 10 s"
sleep 0.3

args_a=() args_b=()
for i in $(seq 1 20); do
	args_a+=(-o /dev/null "http://$ST_SRV4/f100?svc=a&n=$i")
	args_b+=(-o /dev/null "http://$ST_SRV4B/f100?svc=b&n=$i")
done
st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args_a[@]}"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args_b[@]}"
head -c 500000 /dev/urandom >"$ST_TMP/up"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/up" "http://$ST_SRV4/upload?svc=a"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/up" "http://$ST_SRV4B/upload?svc=b"
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s "http://$ST_SRV4/f100?svc=a" >/dev/null
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s "http://$ST_SRV4B/f100?svc=b" >/dev/null
na=$(sh_nginx_requests "$ST_TMP/a/access.log" | wc -l)
sh_wait_lines "$ST_TMP/sink.log" "$na" 20 || true
sleep 1
sh_agent_stop agent
nsink=$(wc -l <"$ST_TMP/sink.log")
st_log "nginx A served $na requests, the shadow got $nsink"
[ "$(grep -c 'svc=b' "$ST_TMP/sink.log" || true)" -eq 0 ] || st_fail "requests of nginx B (outside the cgroup) were shadowed"
diff <(sh_nginx_requests "$ST_TMP/a/access.log" | sort) <(sh_sink_requests "$ST_TMP/sink.log" | sort) | head -n 10 >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { cat "$ST_TMP/diff"; st_fail "the shadow's requests differ from nginx A's"; }
awk -F'\t' '$4 == "/upload?svc=a" { print $6 }' "$ST_TMP/sink.log" | grep -qx "$(sha256sum <"$ST_TMP/up" | cut -d' ' -f1)" ||
	st_fail "the upload did not reach the shadow whole"
left=$(bpftool cgroup show "$CG" 2>/dev/null | grep -v "^ID" || true)
[ -z "$left" ] || st_fail "programs still attached to $CG after exit: $left"
st_log "PASS"
