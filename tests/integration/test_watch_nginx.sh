#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap watch` on a real nginx (production) with answers known in advance: /flaky
# answers 500 for exactly 1 request in 10, /slow waits ~50 ms (proxied to a small upstream),
# the rest are fast; over keep-alive, pipelined and chunked exchanges, uploads with
# Expect: 100-continue and a chunked body, HTTP/1.0. watch copies heads only (the default
# policy). Its requests per endpoint, method and code must equal nginx's access log exactly;
# the slow endpoint's histogram median must be above 40 ms, the fast ones' below 5 ms; its
# --metrics file must pass `promtool check metrics` and carry the --label.
# Then the fallback: with --head-bytes 64 a head falls in bytes the kernel left out; the
# connection is copied whole from then on (fallbacks=1) and its next exchanges are counted
# exactly; nothing is ever counted that nginx did not answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/watch_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3 promtool
st_require_agent
st_init

st_netns_pair
wt_nginx web "$ST_SRV_NS" 80
D=$ST_TMP
LOG=$D/web/access.log

# watch_start NAME ARGS...: watch on the production side of the pair; WATCH_PID once attached
watch_start() {
	local name=$1 i
	shift
	st_in_bg "$ST_SRV_NS" "$ST_BIN" watch --iface "$ST_SRV_IF" --port 80 "${ST_RING[@]}" "$@" \
		>"$D/$name.out" 2>"$D/$name.err" </dev/null &
	WATCH_PID=$!
	ST_PIDS+=("$WATCH_PID")
	for i in $(seq 1 100); do
		st_alive "$WATCH_PID" || { cat "$D/$name.err"; st_fail "watch $name exited during start-up"; }
		st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$WATCH_PID" && return 0
		sleep 0.1
	done
	st_fail "watch $name did not attach within 10 s"
}

st_log "the workload, watched (heads only)"
watch_start exact --endpoint '* /flaky' --label group=test --label version=1.4.2 \
	--metrics "$D/watch.prom" --report-json "$D/watch.json" --interval 1
wt_workload "$ST_CLI_NS" "$ST_SRV4"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$WATCH_PID" INT || { cat "$D/exact.err"; st_fail "watch exited with an error"; }
st_log "  $(st_summary "$D/exact.err" | cut -c1-240)"
st_summary_documented "$(st_summary "$D/exact.err")" watch "The tap"
wt_check_exact "$D/watch.json" "$LOG" || st_fail "watch's counts differ from nginx's access log (above)"
grep -q '"final": true' "$D/watch.json" || st_fail "the last report is not marked final"
# 1 in 10 of /flaky answered 500: 4 of 40 on the keep-alive connection, 1 pipelined
[ "$(grep -c '^GET|/flaky|500$' "$LOG")" -eq 5 ] || st_fail "nginx did not answer /flaky as planned"

st_log "latency: /slow's median above 40 ms, the fast endpoints' below 5 ms"
for ep in /slow /api /f4096 /flaky; do
	q=$(wt_quantile "$D/watch.json" "$ep" 0.5)
	st_log "  $ep: median $(python3 -c "print('%.2f ms' % ($q * 1000))")"
	if [ "$ep" = /slow ]; then
		python3 -c "import sys; sys.exit(0 if $q > 0.040 else 1)" || st_fail "$ep: median $q s, not above 40 ms"
	else
		python3 -c "import sys; sys.exit(0 if $q < 0.005 else 1)" || st_fail "$ep: median $q s, not below 5 ms"
	fi
done

st_log "--metrics: promtool check metrics, the labels"
out=$(promtool check metrics <"$D/watch.prom" 2>&1) || { echo "$out"; st_fail "promtool check metrics failed"; }
[ -z "$out" ] || { echo "$out"; st_fail "promtool check metrics complains"; }
grep -q '^shadowtap_http_requests_total{job="watch",command="watch",group="test",version="1.4.2",endpoint="/flaky",method="GET",code="500"} 5$' \
	"$D/watch.prom" || { grep flaky "$D/watch.prom" | head -5; st_fail "no /flaky 500 series with the labels"; }
grep -q '^shadowtap_http_response_first_byte_seconds_bucket{.*endpoint="/slow".*le="+Inf"} 10$' "$D/watch.prom" ||
	st_fail "no /slow histogram"

st_log "the fallback: --head-bytes 64 loses heads; the connection is copied whole from then on"
lines0=$(wc -l <"$LOG")
watch_start fallback --head-bytes 64 --report-json "$D/fb.json" --metrics "$D/fb.prom" --interval 0.2
st_in "$ST_CLI_NS" timeout 20 python3 - "$ST_SRV4" "$D/go" >"$D/client.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
buf = b""
def batch(paths):
    global buf
    s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: s\r\n\r\n" % p for p in paths))
    for _ in paths:
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
        while len(buf) < cl:
            buf += s.recv(65536)
        buf = buf[cl:]
batch([b"/f4096", b"/f100", b"/f4096"])
while not os.path.exists(sys.argv[2]):  # the test says when the agent has listed the connection
    time.sleep(0.05)
batch([b"/api", b"/api", b"/f100"])
print("done")
PY
CLIENT=$!
ST_PIDS+=("$CLIENT")
for _ in $(seq 1 100); do
	grep -qE '^shadowtap_fallbacks_total\{command="watch"\} [1-9]' "$D/fb.prom" 2>/dev/null && break
	sleep 0.1
done
grep -qE '^shadowtap_fallbacks_total\{command="watch"\} 1$' "$D/fb.prom" ||
	{ cat "$D/fb.prom" 2>/dev/null | grep -E 'fallback|desync'; st_fail "no fallback after heads were cut"; }
touch "$D/go"
wait "$CLIENT" || { cat "$D/client.out"; st_fail "the pipelining client failed"; }
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$WATCH_PID" INT || { cat "$D/fallback.err"; st_fail "watch exited with an error"; }
st_log "  $(st_summary "$D/fallback.err" | cut -c1-240)"
tail -n +"$((lines0 + 1))" "$LOG" >"$D/fb.log"
python3 - "$D/fb.json" "$D/fb.log" <<'PY' || st_fail "the fallback's figures are wrong (above)"
import collections, json, sys
rep = json.load(open(sys.argv[1]))
got, want = collections.Counter(), collections.Counter()
for s in rep["series"]:
    got[(s["endpoint"], s["code"])] += s["requests"]
for line in open(sys.argv[2]):
    m, uri, st = line.strip().split("|")
    want[(uri, st)] += 1
c = rep["counters"]
print("  nginx:", dict(want), "watch:", dict(got), "fallbacks", c["fallbacks"], "desyncs", c["desyncs"],
      "lost", c["lost_exchanges"], "unpaired", c["unpaired"])
ok = c["fallbacks"] == 1 and c["desyncs"] >= 1
ok &= got[("/api", "200")] == 2 and want[("/api", "200")] == 2  # after the fallback: exact
ok &= all(got[k] <= want[k] for k in got)                      # never more than nginx answered
sys.exit(0 if ok else 1)
PY
st_log "PASS"
