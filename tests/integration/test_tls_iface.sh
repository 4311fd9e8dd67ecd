#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `capture --tls --iface`: the processes are the owners of --port's listening sockets. As
# --help states: an agent started before the service says there is nothing to probe yet, and
# picks the service up within 2 s of its listening (rescan); a worker nginx forks later (a
# reload) is captured at once (its parent was selected); the pcap holds the plaintext as TCP
# (SYN, data, FIN with the real 4-tuple), and the ciphertext of the port is not in it.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl bpftool openssl tcpdump
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
"$ST_BIN" capture --tls --help >/dev/null 2>&1 || st_skip "$ST_BIN has no --tls"
st_init
st_exclusive uprobes

st_netns_pair
K=(curl -s -S -k --max-time 20 --connect-timeout 5)
st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port 443 --tls -v -w "$ST_TMP/tls.pcap" \
	>"$ST_TMP/agent.out" 2>"$ST_TMP/agent.err" </dev/null &
AGENT=$!
ST_PIDS+=("$AGENT")
st_wait_log "$ST_TMP/agent.err" 'nothing to probe yet' 10
st_log "agent started before nginx: $(grep -o 'tls: .*nothing to probe yet.*' "$ST_TMP/agent.err")"

ST_NGINX_TLS=1 st_nginx_start web "$ST_SRV_NS" "$ST_SRV4:443"
t0=$(date +%s%N)
st_wait_log "$ST_TMP/agent.err" 'tls: probing ' 5
st_log "nginx picked up $(( ($(date +%s%N) - t0) / 1000000 )) ms after it listened"
st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://$ST_SRV4/f65536?first"
# the packet programs are not attached with --tls (no second, encrypted copy of the port)
st_pid_links "$AGENT" | awk '{ print $2 }' | sort | uniq -c | tr '\n' ' '
echo
st_pid_links "$AGENT" | grep -qE ' (tcx|netkit|cgroup) ' && st_fail "packet programs attached with --tls"
[ -z "$(st_in "$ST_SRV_NS" tc filter show dev "$ST_SRV_IF" ingress 2>/dev/null)" ] || st_fail "a tc filter with --tls"

# a reload: nginx forks a new worker (and the old one exits)
old=$(pgrep -P "$(cat "$ST_TMP/web/nginx.pid")")
kill -HUP "$(cat "$ST_TMP/web/nginx.pid")"
for i in $(seq 1 50); do
	new=$(pgrep -P "$(cat "$ST_TMP/web/nginx.pid")" | grep -vx "$old" || true)
	[ -n "$new" ] && ! kill -0 "$old" 2>/dev/null && break
	sleep 0.1
done
[ -n "$new" ] || st_fail "nginx did not start a new worker on SIGHUP"
st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://$ST_SRV4/f100?after-reload" # at once: no rescan wait
sleep 0.3
st_stop "$AGENT" INT || st_fail "the agent exited with an error"
sum=$(st_summary "$ST_TMP/agent.err")
echo "$sum"
[ "$(st_summary_field "$sum" lost)" = 0 ] || st_fail "lost bytes"
tcpdump -nr "$ST_TMP/tls.pcap" >"$ST_TMP/pcap.txt" 2>/dev/null
tcpdump -nr "$ST_TMP/tls.pcap" -A 2>/dev/null >"$ST_TMP/pcap.A"
grep -q 'GET /f65536?first' "$ST_TMP/pcap.A" || st_fail "the first request's plaintext is not in the pcap"
grep -q 'GET /f100?after-reload' "$ST_TMP/pcap.A" || st_fail "the new worker's request is not in the pcap"
[ "$(grep -c "$ST_CLI4\.[0-9]* > $ST_SRV4\.443: Flags \[S\]" "$ST_TMP/pcap.txt")" -eq 2 ] ||
	st_fail "not one SYN per connection from the client's real address and port"
[ "$(grep -c "$ST_SRV4\.443 > $ST_CLI4\.[0-9]*: Flags \[F\.\]" "$ST_TMP/pcap.txt")" -eq 2 ] ||
	st_fail "not one FIN per connection from the server"
grep -q 'Flags \[P\.\], seq 1:' "$ST_TMP/pcap.txt" || st_fail "the data does not start at relative seq 1"
[ "$(st_summary_field "$sum" bytes)" -lt 70000 ] || st_fail "more bytes than the plaintext: ciphertext too?"
st_log "PASS"
