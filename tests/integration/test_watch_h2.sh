#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap watch` on HTTP/2 and gRPC, heads only (the default policy): production is nginx
# speaking h2c (listen ... http2, prior knowledge) with watch_common.sh's endpoints (/flaky
# answers 500 for exactly 1 request in 10, /slow waits ~50 ms, static files up to 1 MB, a 404),
# driven by nghttp (many concurrent streams on one connection), curl with prior knowledge
# (an upload, a HEAD) and h2load (4 connections x 10 streams in flight); beside it the python
# gRPC service (grpc_svc.py: unary, server-, client- and bidi-streaming methods, Fail answers
# NOT_FOUND) with 150 calls on two channels. One watch measures both ports. Its requests per
# endpoint, method and code must equal nginx's access log plus the gRPC service's log exactly
# (every gRPC call a POST answered 200), its shadowtap_grpc_requests_total per endpoint and
# grpc_code the service's own codes exactly, with nothing lost, unpaired or unanswered and no
# HTTP/2 connection stopped; /slow's median above 40 ms, /api's below 5 ms; the HTTP/2
# connections listed for whole copies at their preface; `promtool check metrics` clean; the
# summary's keys in docs/SUMMARY.md.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/watch_common.sh"
st_require_root
st_require_cmds ip nginx curl h2load nghttp bpftool promtool
st_require_py grpc
st_require_agent
st_init

st_netns_pair
D=$ST_TMP
ST_NGINX_LISTEN_OPTS=http2 wt_nginx web "$ST_SRV_NS" 80
LOG=$D/web/access.log
SVC=$ST_ROOT/tests/integration/grpc_svc.py
: >"$D/grpc.log"
st_in_bg "$ST_SRV_NS" "$ST_PY" "$SVC" serve "$ST_SRV4:50051" "$D/grpc.log" >"$D/grpc.out" 2>&1 </dev/null &
ST_PIDS+=("$!")
st_wait_port "$ST_SRV_NS" 50051 20 "pid=$!,"

st_in_bg "$ST_SRV_NS" "$ST_BIN" watch --iface "$ST_SRV_IF" --port 80 --port 50051 "${ST_RING[@]}" \
	--endpoint '* /flaky' --endpoint '* /slow' --endpoint '* /api' --metrics "$D/watch.prom" --report-json "$D/watch.json" --interval 1 \
	>"$D/watch.out" 2>"$D/watch.err" </dev/null &
WATCH_PID=$!
ST_PIDS+=("$WATCH_PID")
for i in $(seq 1 100); do
	st_alive "$WATCH_PID" || { cat "$D/watch.err"; st_fail "watch exited during start-up"; }
	st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$WATCH_PID" && break
	[ "$i" -eq 100 ] && st_fail "watch did not attach within 10 s"
	sleep 0.1
done

base=http://$ST_SRV4
H2=("${ST_CURL[@]}" --http2-prior-knowledge)
# The first HTTP/2 connection on a port races the agent: until it reads that connection's
# preface (a tick, 20 ms) the kernel copies heads only, and elided bytes that hold a frame
# header stop it (h2_elided). One small exchange on each port first (a gRPC call to a method
# the service does not have: UNIMPLEMENTED, trailers-only); once watch says it copies both
# ports whole (h2_ports 2) every later connection there is copied whole from its first byte.
st_log "each port's first HTTP/2 connection, then the ports copied whole"
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null "$base/api?prime" || st_fail "curl failed"
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null -H 'content-type: application/grpc' -H 'te: trailers' \
	--data-binary '' "http://$ST_SRV4:50051/shop.Cart/Prime" || st_fail "curl (gRPC) failed"
for i in $(seq 1 100); do
	grep -qE '^shadowtap_h2_ports(_total)?\{command="watch"\} 2$' "$D/watch.prom" 2>/dev/null && break
	[ "$i" -eq 100 ] && { grep h2_ "$D/watch.prom"; st_fail "watch did not copy both ports whole"; }
	sleep 0.1
done

st_log "traffic: nghttp, curl (prior knowledge), h2load; 150 gRPC calls"
urls=()
for i in $(seq 1 40); do urls+=("$base/flaky?n=$i"); done
for i in $(seq 1 10); do urls+=("$base/slow?n=$i" "$base/api?n=$i"); done
for s in 100 4096 16384 65537 100000 1048576; do urls+=("$base/f$s"); done
st_in "$ST_CLI_NS" timeout 30 nghttp -n "${urls[@]}" >/dev/null || st_fail "nghttp failed"
# the same endpoints one at a time (h2load -m 1: one stream in flight): their latencies alone
st_in "$ST_CLI_NS" timeout 30 h2load -n 20 -c 1 -m 1 "$base/api?one" | grep -E '^requests:'
for i in $(seq 1 10); do st_in "$ST_CLI_NS" timeout 30 nghttp -n "$base/slow?one=$i" >/dev/null; done
head -c 300000 /dev/urandom >"$D/up"
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null -T "$D/up" "$base/dav/up1"
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null "$base/missing" || true
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null -I "$base/f100"
st_in "$ST_CLI_NS" timeout 30 h2load -n 400 -c 4 -m 10 "$base/f4096" | grep -E '^requests:'
st_in "$ST_CLI_NS" timeout 60 "$ST_PY" "$SVC" call "$ST_SRV4:50051" 7 30 || st_fail "the gRPC client failed"
ncalls=$(wc -l <"$D/grpc.log")
[ "$ncalls" -eq 150 ] || st_fail "the gRPC service logged $ncalls calls, want 150"

st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$WATCH_PID" INT || { cat "$D/watch.err"; st_fail "watch exited with an error"; }
st_log "  $(st_summary "$D/watch.err" | cut -c1-300)"
st_summary_documented "$(st_summary "$D/watch.err")" watch "The tap"

st_log "exact: watch's counts against nginx's access log and the gRPC service's log"
python3 - "$D/watch.json" "$LOG" "$D/grpc.log" <<'PY' || st_fail "watch's counts differ from the servers' logs (above)"
import collections, json, sys
rep = json.load(open(sys.argv[1]))
got, want = collections.Counter(), collections.Counter()
for s in rep["series"]:
    got[(s["endpoint"], s["method"], s["code"])] += s["requests"]
for line in open(sys.argv[2]):
    m, uri, st = line.strip().split("|")
    want[(uri, m, st)] += 1
ggot, gwant = collections.Counter(), collections.Counter()
for s in rep["grpc"]:
    ggot[(s["endpoint"], s["grpc_code"])] += s["requests"]
# the priming call: no such method
want[("/shop.Cart/Prime", "POST", "200")] += 1
gwant[("/shop.Cart/Prime", "UNIMPLEMENTED")] += 1
for line in open(sys.argv[3]):
    method, _, code = line.rstrip("\n").split("\t")
    want[("/shop.Cart/" + method, "POST", "200")] += 1
    gwant[("/shop.Cart/" + method, code)] += 1
c = rep["counters"]
bad = [k for k in ("lost_exchanges", "unpaired", "unanswered", "incomplete", "h2_joined",
                   "h2_gap", "h2_elided", "h2_errors", "h2_stream_cap", "h2_dropped",
                   "other_conns") if c.get(k)]
ok = got == want and ggot == gwant and not bad and c["grpc_calls"] == sum(gwant.values())
for k in sorted(set(got) | set(want)):
    if got[k] != want[k]:
        print("  %-40s watch %d, servers %d" % (" ".join(k), got[k], want[k]))
for k in sorted(set(ggot) | set(gwant)):
    if ggot[k] != gwant[k]:
        print("  grpc %-35s watch %d, service %d" % (" ".join(k), ggot[k], gwant[k]))
if not ok:
    print("  counters:", {k: c[k] for k in c if c[k]})
    sys.exit(1)
print("  %d requests in %d series, %d gRPC calls in %d (endpoint, grpc_code): watch equals the "
      "servers' logs; h2_conns %d, h2_whole %d, skipped %d bytes" % (sum(want.values()), len(want),
      sum(gwant.values()), len(gwant), c["h2_conns"], c["h2_whole"], c["skipped"]))
sys.exit(0 if c["h2_conns"] >= 8 and c["h2_whole"] >= c["h2_conns"] else 1)
PY
[ "$(grep -c '^GET|/flaky|500$' "$LOG")" -eq 4 ] || st_fail "nginx did not answer /flaky as planned"
[ "$(grep -c '^Fail	.*	NOT_FOUND$' "$D/grpc.log")" -eq 30 ] || st_fail "the service did not fail 30 calls"

st_log "latency: /slow's median above 40 ms, /api's below 5 ms"
for ep in /slow /api; do
	q=$(wt_quantile "$D/watch.json" "$ep" 0.5)
	st_log "  $ep: median $(python3 -c "print('%.2f ms' % ($q * 1000))")"
	if [ "$ep" = /slow ]; then
		python3 -c "import sys; sys.exit(0 if $q > 0.040 else 1)" || st_fail "$ep: median $q s, not above 40 ms"
	else
		python3 -c "import sys; sys.exit(0 if $q < 0.005 else 1)" || st_fail "$ep: median $q s, not below 5 ms"
	fi
done

st_log "--metrics: promtool check metrics, the gRPC family"
out=$(promtool check metrics <"$D/watch.prom" 2>&1) || { echo "$out"; st_fail "promtool check metrics failed"; }
[ -z "$out" ] || { echo "$out"; st_fail "promtool check metrics complains"; }
grep -q '^shadowtap_grpc_requests_total{job="watch",command="watch",endpoint="/shop.Cart/Fail",grpc_code="NOT_FOUND"} 30$' \
	"$D/watch.prom" || { grep grpc_requests "$D/watch.prom" | head; st_fail "no Fail NOT_FOUND series of 30"; }
grep -q '^shadowtap_http_requests_total{job="watch",command="watch",endpoint="/flaky",method="GET",code="500"} 4$' \
	"$D/watch.prom" || { grep flaky "$D/watch.prom" | head -5; st_fail "no /flaky 500 series of 4"; }
st_log "PASS"
