#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `capture --tls --iface`, in calls and in keys mode: the processes are the owners of --port's
# listening sockets. As --help states: an agent started before the service says there is
# nothing to probe yet, and picks the service up within 2 s of its listening (rescan); a
# worker nginx forks later (a reload) is probed as soon as it is forked (the agent says so;
# no rescan wait); the pcap holds the plaintext as TCP (SYN, data, FIN with the real
# 4-tuple), and the ciphertext of the port is not in it. Calls mode attaches no packet
# program; keys mode attaches the interface's TCX programs, whose ciphertext it decrypts.
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

# run_mode MODE PORT: a fresh agent, then a fresh nginx on PORT, its reload, the pcap's shape.
run_mode() {
	local mode=$1 port=$2 name=web-$1 old new sum links
	st_log "== --tls-mode $mode, port $port"
	st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port "$port" --tls \
		--tls-mode "$mode" -v -w "$ST_TMP/$mode.pcap" \
		>"$ST_TMP/$mode.out" 2>"$ST_TMP/$mode.err" </dev/null &
	AGENT=$!
	ST_PIDS+=("$AGENT")
	st_wait_log "$ST_TMP/$mode.err" 'nothing to probe yet' 10
	st_log "agent started before nginx: $(grep -o 'tls: .*nothing to probe yet.*' "$ST_TMP/$mode.err")"

	ST_NGINX_TLS=1 st_nginx_start "$name" "$ST_SRV_NS" "$ST_SRV4:$port"
	t0=$(date +%s%N)
	st_wait_log "$ST_TMP/$mode.err" "tls: pid [0-9]* \(nginx\): $mode mode" 5
	st_log "nginx picked up $(( ($(date +%s%N) - t0) / 1000000 )) ms after it listened"
	st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://$ST_SRV4:$port/f65536?first"
	links=$(st_pid_links "$AGENT" | awk '{ print $2 }' | sort | uniq -c | tr '\n' ' ')
	echo "links: $links"
	if [ "$mode" = calls ]; then
		# no packet program: no second, encrypted copy of the port
		st_pid_links "$AGENT" | grep -qE ' (tcx|netkit|cgroup) ' && st_fail "packet programs attached in calls mode"
	else
		# the ciphertext the keys open
		[ "$(st_pid_links "$AGENT" | grep -c ' tcx ')" -eq 2 ] || st_fail "not the two TCX programs in keys mode"
	fi
	[ -z "$(st_in "$ST_SRV_NS" tc filter show dev "$ST_SRV_IF" ingress 2>/dev/null)" ] || st_fail "a tc filter with --tls"

	# a reload: nginx forks a new worker (and the old one exits)
	old=$(pgrep -P "$(cat "$ST_TMP/$name/nginx.pid")")
	kill -HUP "$(cat "$ST_TMP/$name/nginx.pid")"
	for i in $(seq 1 50); do
		new=$(pgrep -P "$(cat "$ST_TMP/$name/nginx.pid")" | grep -vx "$old" || true)
		[ -n "$new" ] && ! kill -0 "$old" 2>/dev/null && break
		sleep 0.1
	done
	[ -n "$new" ] || st_fail "nginx did not start a new worker on SIGHUP"
	# probed when forked, without waiting for a rescan
	st_wait_log "$ST_TMP/$mode.err" "tls: pid $new \(nginx\) \(forked\): $mode mode" 1
	st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://$ST_SRV4:$port/f100?after-reload"
	sleep 0.3
	st_stop "$AGENT" INT || st_fail "the agent exited with an error"
	sum=$(st_summary "$ST_TMP/$mode.err")
	echo "$sum"
	[ "$(st_summary_field "$sum" lost)" = 0 ] || st_fail "lost bytes"
	tcpdump -nr "$ST_TMP/$mode.pcap" >"$ST_TMP/$mode.txt" 2>/dev/null
	tcpdump -nr "$ST_TMP/$mode.pcap" -A 2>/dev/null >"$ST_TMP/$mode.A"
	grep -q 'GET /f65536?first' "$ST_TMP/$mode.A" || st_fail "the first request's plaintext is not in the pcap"
	grep -q 'GET /f100?after-reload' "$ST_TMP/$mode.A" || st_fail "the new worker's request is not in the pcap"
	[ "$(grep -c "$ST_CLI4\.[0-9]* > $ST_SRV4\.$port: Flags \[S\]" "$ST_TMP/$mode.txt")" -eq 2 ] ||
		st_fail "not one SYN per connection from the client's real address and port"
	[ "$(grep -cE "$ST_SRV4\.$port > $ST_CLI4\.[0-9]*: Flags \[(F|R)\.\]" "$ST_TMP/$mode.txt")" -eq 2 ] ||
		st_fail "not one FIN (or RST) per connection from the server"
	grep -q 'Flags \[P\.\], seq 1:' "$ST_TMP/$mode.txt" || st_fail "the data does not start at relative seq 1"
	[ "$(st_summary_field "$sum" bytes)" -lt 70000 ] || st_fail "more bytes than the plaintext: ciphertext too?"
	st_stop "$(cat "$ST_TMP/$name/nginx.pid")" QUIT || true
}

run_mode calls 443
run_mode keys 4443
st_log "PASS"
