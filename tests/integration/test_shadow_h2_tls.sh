#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# HTTP/2 over TLS (ALPN h2), shadowed from the plaintext --tls delivers: nginx terminating TLS
# with `listen ... ssl http2` in its own cgroup v2 directory; clients (curl --http2, nghttp,
# h2load) negotiate h2 by ALPN. `shadow --tls --cgroup` replays the streams to a plain h2c
# nginx (prior knowledge): its log must equal production's, each stream exactly once, the
# upload stored whole. The plaintext starts with the client's connection preface, production's
# SETTINGS before or after it: the same engine as h2c.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl nghttp h2load bpftool openssl
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init
st_exclusive uprobes
# (awk reads all of ldd's output: with pipefail, grep -q's early exit failed the pipeline)
ldd "$(command -v nginx)" | awk '/libssl\.so/ { f = 1 } END { exit !f }' ||
	st_skip "this nginx is not linked with a shared libssl"

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
export ST_NGINX_LOG_FORMAT='$request_method $request_uri $status $server_protocol'
export ST_NGINX_LISTEN_OPTS=http2
ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"
# the agent runs outside the server namespace (ip netns exec remounts /sys, hiding the cgroup
# tree): the shadow listens here, on loopback, speaking h2c
SPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
st_nginx_start shadow "" "127.0.0.1:$SPORT"

st_in_bg "" "$ST_BIN" shadow --tls --cgroup "$CG" --port 443 --to "127.0.0.1:$SPORT" --no-mark \
	--drain 20 -v >"$ST_TMP/agent.out" 2>"$ST_TMP/agent.err" </dev/null &
SH_AGENT_PID=$!
ST_PIDS+=("$SH_AGENT_PID")
for i in $(seq 1 100); do
	st_alive "$SH_AGENT_PID" || { cat "$ST_TMP/agent.err"; st_fail "shadow --tls exited during start-up"; }
	grep -q 'tls: .* probing ' "$ST_TMP/agent.err" && { sleep 0.3; break; }
	sleep 0.1
done
grep -q 'tls: .* probing ' "$ST_TMP/agent.err" || { cat "$ST_TMP/agent.err"; st_fail "no probing within 10 s"; }

base=https://$ST_SRV4
st_log "traffic over TLS, h2 by ALPN: curl --http2, nghttp (24 concurrent streams), h2load, a 2 MB upload"
for s in 100 65536 1048576; do
	st_in "$ST_CLI_NS" curl -s -S -k --http2 --max-time 30 -o /dev/null "$base/f$s?curl" ||
		st_fail "curl --http2 failed"
done
urls=()
for i in 1 2; do for s in "${ST_FILE_SIZES[@]}"; do urls+=("$base/f$s?n=$i"); done; done
st_in "$ST_CLI_NS" timeout 30 nghttp -n "${urls[@]}" >/dev/null || st_fail "nghttp failed"
head -c 2000000 /dev/urandom >"$ST_TMP/up"
st_in "$ST_CLI_NS" timeout 30 nghttp -n -d "$ST_TMP/up" -H ':method: PUT' "$base/dav/up" >/dev/null ||
	st_fail "nghttp upload failed"
st_in "$ST_CLI_NS" timeout 30 h2load -n 300 -c 3 -m 10 "$base/f100?h2load" | grep -E '^requests:'
grep -q ' HTTP/2.0$' "$ST_TMP/prod/access.log" || st_fail "production did not speak HTTP/2 (ALPN)"

nprod=$(wc -l <"$ST_TMP/prod/access.log")
sh_wait_lines "$ST_TMP/shadow/access.log" "$nprod" 30 || true
sh_agent_stop agent
st_log "production logged $nprod streams, the shadow $(wc -l <"$ST_TMP/shadow/access.log"); h2=$(sh_field h2) replayed=$(sh_field replayed)"
sh_expect lost -eq 0
sh_expect h2 -ge 6
sh_expect h2_errors -eq 0
sh_expect replayed -eq "$nprod"
sh_expect dropped -eq 0
diff <(sort "$ST_TMP/prod/access.log") <(sort "$ST_TMP/shadow/access.log") >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 10 "$ST_TMP/diff"; st_fail "the shadow nginx's log differs from production's"; }
cmp -s "$ST_TMP/up" "$ST_TMP/shadow/www/dav/up" || st_fail "the upload was not stored whole by the shadow"
st_log "PASS"
