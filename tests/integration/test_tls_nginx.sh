#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# --tls: nginx terminating TLS (a self-signed certificate made here) in its own cgroup v2
# directory, curl --insecure clients in another namespace. In each mode (--tls-mode calls:
# per-call probes; keys: secrets once per handshake, the ciphertext decrypted), two agents run
# at once on the cgroup: `flows --tls` and `shadow --tls --to` a plain-HTTP nginx.
#  - flows: every connection's two plaintext streams are byte-equal to what the client sent
#    and received (curl's --trace and the pipelining client's own record as referees): GETs
#    of 1 B to 5 MB on one keep-alive connection, POSTs of 1 B to 5 MB on another, a 5 MB
#    PUT, pipelined GETs;
#  - shadow: the shadow nginx logs every request production logged, each exactly once, and
#    stores the PUT's body whole;
#  - the probes are in nginx's memory (calls: SSL_read; keys: EVP_KDF_derive, and SSL_read no
#    longer) and in no other process: a second nginx with the same libssl and libcrypto outside
#    the cgroup has clean copies, nothing outside hit them (tls_filtered=0), and it is not
#    captured;
#  - kill -9 of an agent, then a fresh one: no uprobe left in nginx's memory, no BPF link or
#    program left; an nginx started in the cgroup later (IPv6) is probed as soon as it forks
#    its worker (the agent says so) and captured.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3 openssl nm readelf
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
"$ST_BIN" flows --tls --help >/dev/null 2>&1 || st_skip "$ST_BIN has no --tls"
st_init
st_exclusive uprobes
TC=$ST_ROOT/tests/integration/tls_client.py
LIBSSL=$(ldd "$(command -v nginx)" | awk '/libssl\.so/ { print $3 }')
LIBCRYPTO=$(ldd "$(command -v nginx)" | awk '/libcrypto\.so/ { print $3 }')
[ -n "$LIBSSL" ] && [ -n "$LIBCRYPTO" ] || st_skip "this nginx is not linked with a shared libssl"

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
export ST_NGINX_LOG_FORMAT='$request_method $request_uri $request_length'
ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"
ST_NGINX_TLS=1 st_nginx_start other "$ST_SRV_NS" "$ST_SRV4B:443"
# The agents run outside the server namespace (ip netns exec remounts /sys, hiding the
# cgroup tree): the shadow listens here, on loopback.
SPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
st_nginx_start shadow "" "127.0.0.1:$SPORT"
WORKER=$(pgrep -P "$(cat "$ST_TMP/prod/nginx.pid")" | head -n1)
OTHER=$(pgrep -P "$(cat "$ST_TMP/other/nginx.pid")" | head -n1)

# tls_agent NAME CMD ARGS...: a --tls agent on the cgroup in $MODE, -v; waits until it probes.
tls_agent() {
	local name=$1 i
	shift
	st_in_bg "" "$ST_BIN" "$@" --tls --tls-mode "$MODE" --cgroup "$CG" --port 443 -v \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	AGENT_PID=$!
	ST_PIDS+=("$AGENT_PID")
	for i in $(seq 1 100); do
		st_alive "$AGENT_PID" || { cat "$ST_TMP/$name.err"; st_fail "$name exited during start-up"; }
		grep -q 'tls: .* probing ' "$ST_TMP/$name.err" && { sleep 0.3; return 0; }
		sleep 0.1
	done
	cat "$ST_TMP/$name.err"
	st_fail "$name did not start probing within 10 s"
}

# probed PID LIB SYMBOL...: "probed" or "clean" per symbol (a breakpoint in PID's copy of it)
probed() { python3 "$TC" int3 "$@"; }
ALL_SSL=(SSL_read SSL_write SSL_read_ex SSL_write_ex SSL_do_handshake SSL_set_fd SSL_free)
CLEAN_SSL=$(echo clean clean clean clean clean clean clean)
# nothing probed in PID (every per-call symbol, EVP_KDF_derive)
all_clean() {
	[ "$(probed "$1" "$LIBSSL" "${ALL_SSL[@]}")" = "$CLEAN_SSL" ] &&
		[ "$(probed "$1" "$LIBCRYPTO" EVP_KDF_derive)" = clean ]
}
all_clean "$WORKER" || st_fail "nginx is probed before any agent started"

base=https://$ST_SRV4
K=(curl -s -S -k --max-time 60 --connect-timeout 5)
# client NAME CURL-ARGS...: one curl (one connection), traced; its local port in $ST_TMP/NAME.port
client() {
	local name=$1
	shift
	st_in "$ST_CLI_NS" "${K[@]}" --trace "$ST_TMP/$name.trace" -w '%{local_port}\n' "$@" \
		>"$ST_TMP/$name.ports"
	sort -u "$ST_TMP/$name.ports" >"$ST_TMP/$name.port"
	[ "$(wc -l <"$ST_TMP/$name.port")" -eq 1 ] || st_fail "$name used more than one connection"
}
head -c 5242880 /dev/urandom >"$ST_TMP/put5m"
for s in 1 1448 16384 65537 1048576 5242880; do head -c "$s" /dev/urandom >"$ST_TMP/post$s"; done

# run_mode MODE: both agents in MODE, the traffic, every check.
run_mode() {
	MODE=$1
	local sum fsum nprod nsh c port up down a args paths
	st_log "== --tls-mode $MODE"
	: >"$ST_TMP/prod/access.log"
	: >"$ST_TMP/shadow/access.log"
	rm -rf "$ST_TMP/flows" "$ST_TMP/shadow/www/dav/put5m"
	tls_agent flows flows -o "$ST_TMP/flows"
	FLOWS_PID=$AGENT_PID
	tls_agent shadow shadow --to "127.0.0.1:$SPORT" --no-mark --drain 20
	SHADOW_PID=$AGENT_PID
	if [ "$MODE" = calls ]; then
		[ "$(probed "$WORKER" "$LIBSSL" SSL_read)" = probed ] || st_fail "no uprobe in nginx's SSL_read while the agents run"
		[ "$(probed "$WORKER" "$LIBCRYPTO" EVP_KDF_derive)" = clean ] || st_fail "EVP_KDF_derive probed in calls mode"
	else
		[ "$(probed "$WORKER" "$LIBCRYPTO" EVP_KDF_derive)" = probed ] || st_fail "no uprobe in nginx's EVP_KDF_derive in keys mode"
		[ "$(probed "$WORKER" "$LIBSSL" "${ALL_SSL[@]}")" = "$CLEAN_SSL" ] || st_fail "per-call probes in keys mode"
	fi
	# per process: the other nginx maps the same files, and has no breakpoint
	all_clean "$OTHER" || st_fail "the nginx outside the cgroup is probed"
	grep -E 'tls: ' "$ST_TMP/flows.err" | head -n 4

	st_log "traffic: GETs 1 B - 5 MB keep-alive, POSTs 1 B - 5 MB, a 5 MB PUT, pipelined GETs"
	args=()
	for s in "${ST_FILE_SIZES[@]}"; do args+=(-o /dev/null "$base/f$s?get"); done
	client gets "${args[@]}"
	args=()
	for s in 1 1448 16384 65537 1048576 5242880; do
		# --next starts a new transfer's options (on the same connection): -k, -w again
		[ ${#args[@]} -eq 0 ] || args+=(--next -k -w '%{local_port}\n')
		args+=(-o /dev/null -H 'Expect:' --data-binary @"$ST_TMP/post$s" "$base/upload?post=$s")
	done
	client posts "${args[@]}"
	client put -o /dev/null -T "$ST_TMP/put5m" "$base/dav/put5m"
	paths=()
	for i in $(seq 1 20); do paths+=("/f4096?pipe=$i"); done
	paths+=(/f100000?pipe=last)
	st_in "$ST_CLI_NS" python3 "$TC" pipeline "$ST_SRV4" 443 "$ST_TMP/pipe" "${paths[@]}" >"$ST_TMP/pipe.port"
	# the other nginx, same libraries, outside the cgroup
	for i in 1 2 3; do st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://$ST_SRV4B/f65536?other=$i"; done
	st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null --data-binary @"$ST_TMP/post65537" "https://$ST_SRV4B/upload?other"

	nprod=$(wc -l <"$ST_TMP/prod/access.log")
	sh_wait_lines "$ST_TMP/shadow/access.log" "$nprod" 30 || true
	sleep 0.5
	for a in flows:$FLOWS_PID shadow:$SHADOW_PID; do
		st_stop "${a#*:}" INT || st_fail "${a%%:*} exited with an error after SIGINT"
	done
	for a in flows shadow; do
		sum=$(st_summary "$ST_TMP/$a.err")
		echo "$a: $sum" | tr ' ' '\n' | grep -E '^(lost|tls_[a-z_]+|gaps|connections|replayed|dropped)=' | tr '\n' ' '
		echo
		[ "$(st_summary_field "$sum" lost)" = 0 ] || st_fail "$a lost bytes"
		[ -z "$(st_summary_field "$sum" tls_filtered)" ] || st_fail "$a: processes outside the target hit the probes"
		if [ "$MODE" = keys ]; then
			[ "$(st_summary_field "$sum" tls_keyed)" = 4 ] || st_fail "$a decrypted $(st_summary_field "$sum" tls_keyed) connections, not 4"
			[ -z "$(st_summary_field "$sum" tls_calls)" ] || st_fail "$a: per-call probes in keys mode"
			[ -z "$(st_summary_field "$sum" tls_dec_lost)" ] || st_fail "$a: plaintext lost in decryption"
		else
			[ -z "$(st_summary_field "$sum" tls_keyed)" ] || st_fail "$a decrypted in calls mode"
		fi
	done
	fsum=$(st_summary "$ST_TMP/flows.err")
	[ "$(st_summary_field "$fsum" gaps)" = 0 ] || st_fail "flows reported gaps"
	[ "$(st_summary_field "$fsum" connections)" = 4 ] || st_fail "flows saw $(st_summary_field "$fsum" connections) connections, not 4"

	st_log "flows: each stream against its client's record"
	for c in gets posts put pipe; do
		[ "$c" = pipe ] || python3 "$TC" trace "$ST_TMP/$c.trace" "$ST_TMP/$c"
		port=$(cat "$ST_TMP/$c.port")
		up=$ST_TMP/flows/$ST_CLI4.$port-$ST_SRV4.443
		down=$ST_TMP/flows/$ST_SRV4.443-$ST_CLI4.$port
		[ -f "$up" ] && [ -f "$down" ] || { ls "$ST_TMP/flows"; st_fail "$c: no flows files for client port $port"; }
		cmp "$up" "$ST_TMP/$c.sent" || st_fail "$c: client -> server plaintext differs from what the client sent"
		cmp "$down" "$ST_TMP/$c.recv" || st_fail "$c: server -> client plaintext differs from what the client received"
		echo "  $c: $(stat -c %s "$up") B sent, $(stat -c %s "$down") B received: equal"
	done
	ls "$ST_TMP/flows" | grep -q "$ST_SRV4B" && st_fail "the nginx outside the cgroup was captured"
	grep -q "f5242880?get" "$ST_TMP/gets.sent" || st_fail "referee: the 5 MB GET is not in curl's trace"
	tail -c 5242880 "$ST_TMP/flows/$ST_SRV4.443-$ST_CLI4.$(cat "$ST_TMP/gets.port")" | cmp -s - "$ST_TMP/prod/www/f5242880" ||
		st_fail "the 5 MB file is not the end of the GETs' plaintext"

	st_log "shadow: every request once, the PUT body whole"
	nsh=$(wc -l <"$ST_TMP/shadow/access.log")
	st_log "production logged $nprod requests, the shadow $nsh"
	diff <(sort "$ST_TMP/prod/access.log") <(sort "$ST_TMP/shadow/access.log") | head -n 10 >"$ST_TMP/diff" || true
	[ -s "$ST_TMP/diff" ] && { cat "$ST_TMP/diff"; st_fail "the shadow nginx's log differs from production's"; }
	grep -q other "$ST_TMP/shadow/access.log" && st_fail "requests to the nginx outside the cgroup were shadowed"
	cmp -s "$ST_TMP/put5m" "$ST_TMP/shadow/www/dav/put5m" || st_fail "the PUT body was not stored whole by the shadow"
	# the agents are gone: nothing left in nginx's memory
	for i in $(seq 1 30); do all_clean "$WORKER" && break; sleep 0.1; done
	all_clean "$WORKER" || st_fail "still probed after the agents' exit ($MODE)"
}

run_mode calls
run_mode keys

st_log "kill -9 of a --tls agent, then a fresh one"
MODE=auto
tls_agent killed capture -w "$ST_TMP/killed.pcap"
[ "$(probed "$WORKER" "$LIBCRYPTO" EVP_KDF_derive)" = probed ] || st_fail "no uprobe in EVP_KDF_derive while the agent runs (auto)"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
for i in $(seq 1 30); do all_clean "$WORKER" && break; sleep 0.1; done
all_clean "$WORKER" || st_fail "still probed after kill -9 of the agent"
st_in "$ST_CLI_NS" "${K[@]}" -o "$ST_TMP/after" "$base/f1048576" || st_fail "nginx unreachable after kill -9"
cmp -s "$ST_TMP/after" "$ST_TMP/prod/www/f1048576" || st_fail "download corrupted after kill -9"
tls_agent fresh capture -w "$ST_TMP/fresh.pcap"
st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "$base/f100?fresh"
# a program started in the cgroup after the agent (IPv6): its worker is probed when forked,
# and the agent says so
ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start late "$ST_SRV_NS" "[$ST_SRV6]:443"
LATE=$(pgrep -P "$(cat "$ST_TMP/late/nginx.pid")" | head -n1)
st_wait_log "$ST_TMP/fresh.err" "tls: pid $LATE \(nginx\) \(forked\): (keys|calls) mode" 10
st_in "$ST_CLI_NS" "${K[@]}" -o /dev/null "https://[$ST_SRV6]/f100?late-v6"
sleep 0.3
st_stop "$AGENT_PID" INT || st_fail "the fresh agent exited with an error"
tcpdump -nr "$ST_TMP/fresh.pcap" -A 2>/dev/null >"$ST_TMP/fresh.txt"
grep -q 'GET /f100?fresh' "$ST_TMP/fresh.txt" || st_fail "the fresh agent did not capture the plaintext"
grep -q "IP6 $ST_CLI6\.[0-9]* > $ST_SRV6\.443: Flags \[P\.\]" "$ST_TMP/fresh.txt" &&
	grep -q 'GET /f100?late-v6' "$ST_TMP/fresh.txt" ||
	st_fail "the nginx started in the cgroup later (IPv6) was not captured"
for w in "$WORKER" "$LATE"; do all_clean "$w" || st_fail "pid $w still probed after the fresh agent's exit"; done
left=$(bpftool prog show 2>/dev/null | grep -cE ' name tls_(read|write|call|set_fd|free|sys|kdf|fork|exec)' || true)
[ "$left" -eq 0 ] || st_fail "$left TLS programs still loaded"
st_log "PASS"
