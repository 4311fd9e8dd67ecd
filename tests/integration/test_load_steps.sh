#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A stepped load test looking for the knee (docs/LOAD.md): `replay --steps 100,200,400,800
# --step-sec 2` of a recording of short connections (one request each) against nginx with
# a limited worker (1 worker, 24 connections, limit_req at 300 requests/s with a burst of
# 100, 503 beyond). Below the limit (100, 200/s) requests are answered at once and the
# achieved rate is the target's; at 400/s the knee: requests queue in nginx (latency jumps)
# and the excess is refused (503s, and connections reset past its 24); during the last
# step nginx is stopped, and the connections it no longer takes are counted as refused.
# Errors by kind say which is which.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/load_common.sh"
ld_init test_load_steps
# one load test at a time: each runs its generator and target at nice -10 (LD_NICE)
st_exclusive load
PCAP=$ST_TMP/rec.pcap
st_log "recording: 400 short connections, one request each"
LD_SHORT=1 ld_record "$PCAP" 400 1 0

st_netns_single target
TNS=$ST_LAST_NS
D=$ST_TMP/limited
mkdir -p "$D/tmp" "$D/www"
echo ok >"$D/www/ok.txt"
cat >"$D/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user root;
pid $D/nginx.pid;
error_log $D/error.log crit;
events { worker_connections 24; }
http {
	access_log off;
	client_body_temp_path $D/tmp/body;
	limit_req_zone \$binary_remote_addr zone=one:1m rate=300r/s;
	server {
		listen 127.0.0.1:8080 backlog=64;
		location / { limit_req zone=one burst=100; limit_req_status 503; root $D/www;
			     try_files /ok.txt =404; }
	}
}
EOF
st_bg limited-nginx st_in_bg "$TNS" "${LD_NICE[@]}" nginx -c "$D/nginx.conf" -p "$D"
NGINX_PID=$ST_LAST_PID
st_wait_port "$TNS" 8080 10 "pid=$NGINX_PID,"

RJ=$ST_TMP/steps.json
st_in_bg "$TNS" "${LD_NICE[@]}" "$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:8080 --steps 100,200,400,800 \
	--step-sec 2 --pace constant --stats 0.1 --report "$ST_TMP/steps.html" --report-json "$RJ" \
	2>"$ST_TMP/replay.err" </dev/null &
GEN_PID=$!
ST_PIDS+=("$GEN_PID")
# the last step has begun once 100x2 + 200x2 + 400x2 requests fell due: nginx goes away
for i in $(seq 1 300); do
	# the --stats line: "shadowtap: stats TIME due 400/s (1234); answered ..."
	due=$(grep -E '^shadowtap: stats ' "$ST_TMP/replay.err" | tail -n1 |
		sed -nE 's/.* due [0-9.]+\/s \(([0-9]+)\).*/\1/p' || true)
	[ "${due:-0}" -ge 1400 ] && break
	st_alive "$GEN_PID" || break
	sleep 0.05
done
[ "${due:-0}" -ge 1400 ] || { tail -n 3 "$ST_TMP/replay.err"; st_fail "the last step never began"; }
st_stop "$NGINX_PID" TERM || true
rc=0
for i in $(seq 1 300); do st_alive "$GEN_PID" || break; sleep 0.1; done
wait "$GEN_PID" || rc=$?
tail -n 1 "$ST_TMP/replay.err"
[ "$rc" -eq 0 ] || st_fail "replay --steps exited with $rc"
st_summary_documented "$(st_summary "$ST_TMP/replay.err")" "shadow and replay" "Load test"
cp "$RJ" "$ST_TMP/steps.html" "$ST_TMP/replay.err" "$LOGS"/

python3 - "$RJ" <<'PY' || st_fail "the steps do not show the knee and the refusals (above)"
import json, sys
r = json.load(open(sys.argv[1]))
st, err, lag = r["steps"], r["errors"], r["lag_ms"]
for s in st:
    print("step %4g/s: achieved %6.1f/s, due %4d, answered %4d, errors %4d, p50 %7.2f p99 %7.2f ms" %
          (s["rps"], s["achieved_rps"], s["due"], s["answered"], s["errors"], s["latency_ms"]["p50"],
           s["latency_ms"]["p99"]))
print("errors", err, "generator lag p99 %.2f ms" % lag["p99"])
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL:", what)
        ok = False
check([s["rps"] for s in st] == [100, 200, 400, 800], "the steps")
check([s["due"] for s in st] == [200, 400, 800, 1600], "due per step %s" % [s["due"] for s in st])
# below the limit: requests answered at the step's rate, at once (the burst of 100 covers
# what a late generator sends bunched; a stall of the host can still take nginx's 24
# connections for a moment: a few resets)
for s in st[:2]:
    check(s["errors"] <= 0.03 * s["due"], "step %g/s had %d errors" % (s["rps"], s["errors"]))
    check(abs(s["achieved_rps"] - s["rps"]) <= 0.05 * s["rps"],
          "step %g/s achieved %.1f/s" % (s["rps"], s["achieved_rps"]))
# the knee: at 400/s nginx queues (the median request waits) and refuses the excess
base = max(st[0]["latency_ms"]["p50"], st[1]["latency_ms"]["p50"])
check(st[2]["latency_ms"]["p50"] > max(10, 10 * base),
      "no knee in latency at 400/s: p50 %.2f against %.2f ms" % (st[2]["latency_ms"]["p50"], base))
check(st[2]["errors"] > 0.05 * st[2]["due"], "no refusals at 400/s")
# errors by kind: at the knee nginx's (503s past the burst, resets past its 24 connections),
# then refused connections once it was gone
check(err["http_5xx"] + err["reset"] >= st[2]["errors"], "the knee's errors are not 5xx or resets")
check(err["connect_refused"] > 0.5 * st[3]["due"], "no connect_refused after nginx stopped")
check(sum(err.values()) == sum(s["errors"] for s in st), "errors by kind and by step differ")
sys.exit(0 if ok else 1)
PY
grep -q 'id="steps-chart"' "$ST_TMP/steps.html" || st_fail "the HTML report has no steps chart"
st_log "PASS"
