#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap watch --tls` on HTTP/2 over TLS (ALPN h2): nginx terminating TLS with `listen ...
# ssl http2` in its own cgroup v2 directory, clients negotiating h2 by ALPN (curl --http2,
# nghttp with every file size on one connection, h2load). The plaintext the probes deliver
# starts with the client's preface: the same source as h2c, heads only, the port copied whole
# once HTTP/2 was seen there (the TLS probes honour ST_PORT_WHOLE too: both --tls-mode keys,
# the packets decrypted, and calls, the probes' plaintext calls heads only). After one small
# exchange (each port's first HTTP/2 connection races the agent: docs/WATCH.md, "Limits"),
# watch's requests per endpoint, method and code must equal nginx's access log exactly, with
# no stream lost and no connection stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/watch_common.sh"
st_require_root
st_require_cmds ip nginx curl nghttp h2load bpftool openssl
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
st_init
st_exclusive uprobes
ldd "$(command -v nginx)" | awk '/libssl\.so/ { f = 1 } END { exit !f }' ||
	st_skip "this nginx is not linked with a shared libssl"

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
D=$ST_TMP
export ST_NGINX_LOG_FORMAT='$request_method|$uri|$status|$server_protocol'
ST_NGINX_LISTEN_OPTS=http2 ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"
LOG=$D/prod/access.log

# watch_mode MODE: watch --tls --tls-mode MODE over the traffic, checked against nginx's log
watch_mode() {
	local mode=$1 i
	rm -f "$D/watch.prom" "$D/watch.json"
	st_log "--tls-mode $mode"
	lines0=$(wc -l <"$LOG")
	st_in_bg "" "$ST_BIN" watch --tls --tls-mode "$mode" --cgroup "$CG" --port 443 --metrics "$D/watch.prom" \
		--report-json "$D/watch.json" --interval 0.5 -v >"$D/watch.out" 2>"$D/watch.err" </dev/null &
	WATCH_PID=$!
	ST_PIDS+=("$WATCH_PID")
	for i in $(seq 1 100); do
		st_alive "$WATCH_PID" || { cat "$D/watch.err"; st_fail "watch --tls exited during start-up"; }
		grep -q 'tls: .* probing ' "$D/watch.err" && { sleep 0.3; break; }
		sleep 0.1
	done
	grep -q 'tls: .* probing ' "$D/watch.err" || { cat "$D/watch.err"; st_fail "no probing within 10 s"; }

	base=https://$ST_SRV4
	H2=(curl -s -S -k --http2 --max-time 30)
	st_log "the port's first HTTP/2 connection, then the port copied whole"
	st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null "$base/f100" || st_fail "curl --http2 failed"
	for i in $(seq 1 100); do
		grep -qE '^shadowtap_h2_ports(_total)?\{command="watch"\} 1$' "$D/watch.prom" 2>/dev/null && break
		[ "$i" -eq 100 ] && { grep h2_ "$D/watch.prom"; st_fail "watch did not copy the port whole"; }
		sleep 0.1
	done

	st_log "traffic over TLS, h2 by ALPN: curl --http2, nghttp (every size on one connection), h2load"
	for s in 100 65536 1048576; do
		st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null "$base/f$s" || st_fail "curl --http2 failed"
	done
	urls=()
	for s in "${ST_FILE_SIZES[@]}"; do urls+=("$base/f$s"); done
	st_in "$ST_CLI_NS" timeout 30 nghttp -n "${urls[@]}" >/dev/null || st_fail "nghttp failed"
	st_in "$ST_CLI_NS" timeout 30 h2load -n 300 -c 3 -m 10 "$base/f4096" | grep -E '^requests:'
	grep -q '|HTTP/2.0$' "$LOG" || st_fail "production did not speak HTTP/2 (ALPN)"

	st_stop "$WATCH_PID" INT || { cat "$D/watch.err"; st_fail "watch exited with an error"; }
	st_log "  $(st_summary "$D/watch.err" | cut -c1-300)"
	st_log "  the tap: $(st_summary "$D/watch.err" | grep -oE ' (elided|skipped|h2_whole|h2_ports)=[0-9]+' | tr -d '\n')"
	st_summary_documented "$(st_summary "$D/watch.err")" watch "The tap"
	tail -n +"$((lines0 + 1))" "$LOG" >"$D/run.log"
	python3 - "$D/watch.json" "$D/run.log" <<'PY' || st_fail "watch's counts differ from nginx's access log (above)"
import collections, json, sys
rep = json.load(open(sys.argv[1]))
got, want = collections.Counter(), collections.Counter()
for s in rep["series"]:
    got[(s["endpoint"], s["method"], s["code"])] += s["requests"]
for line in open(sys.argv[2]):
    m, uri, st, proto = line.strip().split("|")
    want[(uri, m, st)] += 1
c = rep["counters"]
bad = [k for k in ("lost_exchanges", "unpaired", "unanswered", "incomplete", "h2_joined",
                   "h2_gap", "h2_elided", "h2_errors", "other_conns") if c.get(k)]
for k in sorted(set(got) | set(want)):
    if got[k] != want[k]:
        print("  %-40s watch %d, nginx %d" % (" ".join(k), got[k], want[k]))
if got != want or bad or c["h2_conns"] < 6:
    print("  counters:", {k: c[k] for k in c if c[k]})
    sys.exit(1)
print("  %d streams in %d series: watch equals nginx's access log; h2_conns %d, h2_ports %d"
      % (sum(want.values()), len(want), c["h2_conns"], c["h2_ports"]))
PY
}

# keys mode: the ciphertext's packets, decrypted (whole: the policy applies to plaintext calls
# only); calls mode: the probes' plaintext calls, heads only, the port copied whole
watch_mode keys
watch_mode calls
st_log "PASS"
