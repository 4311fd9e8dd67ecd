# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The demo's tap-compare act, sourced by tools/demo.sh (which owns the stage):
#   compare  production's JSON API (nginx) keeps serving; shadowtap replays its requests to a
#            candidate build that changed one field of one endpoint and got slower on
#            another, and to a reference (production's build); production's own answers,
#            from the tap, are the yardstick. The verdict is printed; the report is kept.
# Uses demo.sh's helpers (say, step, done_, banner) and stage, and demo-shadow.sh's
# shadow_stage (the shadow namespace).

DEMO_API_PORT=8000

# The API: production's (and the reference's) build, or the candidate's.
demo_api_locations() {
	local price=$1 slow=$2
	cat <<EOF
		location = /api/session { default_type application/json;
			return 200 "{\"user\": \"ada\", \"session\": \"\$request_id\", \"plan\": \"pro\"}"; }
		location = /api/catalog { default_type application/json; gzip on;
			gzip_types application/json; gzip_min_length 0;
			return 200 "{\"items\": [{\"sku\": \"A1\", \"name\": \"apple\"}, {\"sku\": \"B2\", \"name\": \"pear\"}], \"trace\": \"\$request_id\"}"; }
		location /api/price/ { default_type application/json;
			return 200 "{\"sku\": \"\$uri\", \"price\": $price, \"currency\": \"EUR\", \"stock\": 7}"; }
		$slow
EOF
}

act_compare() {
	banner "act 4: compare"
	say "Production's answers are in the tap already (the server-to-client side of each connection)."
	say "shadowtap pairs every replayed request with production's own answer and with the answers"
	say "of a ${B}candidate${N} build and of a ${B}reference${N} (production's build as a second shadow):"
	say "what the reference also changes (ids, timestamps) is noise; what only the candidate"
	say "changes is a regression. Latency: candidate against reference, on the same requests."
	say ""
	shadow_stage
	local fast='location = /api/slow { default_type application/json; return 200 "{\"report\": \"weekly\", \"rows\": 3}"; }'
	local slow='location = /api/slow { proxy_pass http://127.0.0.1:8090; }'
	step "production API (nginx) on $ST_SRV4:$DEMO_API_PORT"
	ST_NGINX_LOCATIONS=$(demo_api_locations 12.5 "$fast") st_nginx_start api "$DEMO_SRV_NS" "$ST_SRV4:$DEMO_API_PORT"
	done_
	step "reference (production's build) on $DEMO_SHADOW_ADDR:8081"
	ST_NGINX_LOCATIONS=$(demo_api_locations 12.5 "$fast") st_nginx_start api-ref "$DEMO_SHADOW_NS" "$DEMO_SHADOW_ADDR:8081"
	done_
	step "candidate on $DEMO_SHADOW_ADDR:8082 (a price changed, /api/slow slower)"
	cat >"$ST_TMP/slow.py" <<'PY'
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.08)
        b = b'{"report": "weekly", "rows": 3}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8090), H).serve_forever()
PY
	st_in_bg "$DEMO_SHADOW_NS" python3 "$ST_TMP/slow.py" >"$ST_TMP/slow.out" 2>&1 </dev/null &
	ST_PIDS+=("$!")
	st_wait_port "$DEMO_SHADOW_NS" 8090 10
	ST_NGINX_LOCATIONS=$(demo_api_locations 13.9 "$slow") st_nginx_start api-cand "$DEMO_SHADOW_NS" "$DEMO_SHADOW_ADDR:8082"
	done_
	local rep=$ST_TMP/compare.html js=$ST_TMP/compare.json dl=$ST_TMP/diffs.jsonl i
	say "${D}\$ shadowtap shadow --iface $DEMO_IF --port $DEMO_API_PORT --to $DEMO_SHADOW_ADDR:8082 --reference $DEMO_SHADOW_ADDR:8081 \\"
	say "      --report compare.html --report-json compare.json --diffs diffs.jsonl${N}"
	step "shadowtap attaches and compares"
	st_in_bg "$DEMO_SRV_NS" "$ST_BIN" shadow --iface "$DEMO_IF" --port "$DEMO_API_PORT" \
		--to "$DEMO_SHADOW_ADDR:8082" --reference "$DEMO_SHADOW_ADDR:8081" \
		--report "$rep" --report-json "$js" --diffs "$dl" --drain 10 --report-interval 1 \
		>"$ST_TMP/compare-agent.out" 2>"$ST_TMP/compare-agent.err" </dev/null &
	local pid=$!
	ST_PIDS+=("$pid")
	for i in $(seq 1 100); do
		st_agent_attached "$DEMO_SRV_NS" "$DEMO_IF" "$pid" && break
		st_alive "$pid" || { cat "$ST_TMP/compare-agent.err"; return 1; }
		sleep 0.1
	done
	sleep 0.3
	done_
	step "clients: 25 requests each to 4 endpoints, paced like real traffic"
	local base=http://$ST_SRV4:$DEMO_API_PORT ep args pids=()
	for ep in "price/ID" session catalog slow; do
		args=()
		for i in $(seq 1 25); do args+=(-o /dev/null "$base/api/${ep/ID/$i}"); done
		st_in "$DEMO_CLI_NS" "${ST_CURL[@]}" --rate 25/s -H 'Accept-Encoding: gzip' "${args[@]}" &
		pids+=("$!")
	done
	wait "${pids[@]}"
	done_ "100 requests"
	step "stopping shadowtap (the slow candidate's answers drain first)"
	sleep 2
	st_stop "$pid" INT
	done_
	local summary
	summary=$(st_summary "$ST_TMP/compare-agent.err")
	say "  $(grep -oE 'compared=[0-9]+ differing=[0-9]+ noise_only=[0-9]+ not_compared=[0-9]+' <<<"$summary")"
	banner "the verdict"
	say "  $(grep -m1 '^shadowtap: verdict: ' "$ST_TMP/compare-agent.err" | sed 's/^shadowtap: //')"
	python3 - "$js" <<'PY'
import json, sys
B, R, O, G, D, N = ("\033[1m", "\033[31m", "\033[33m", "\033[32m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 6
rep = json.load(open(sys.argv[1]))
for e in rep["endpoints"]:
    regs = [f for f in e["fields"] if f["verdict"] == "regression"]
    noise = [f for f in e["fields"] if f["verdict"] == "noise"]
    lat = e["latency"]
    mark = f"{R}REGRESSION{N}" if regs else f"{O}SLOWER{N}" if lat["verdict"] == "slower" else f"{G}ok{N}"
    print(f"  {mark:<20} {B}{e['endpoint']:<24}{N} {e['compared']:>3} compared, {e['differing']:>3} differing")
    for f in regs:
        s = f["samples"][0]
        print(f"      {R}{f['path']}{N} ({f['kind']}): production {s['production']}, reference {s['reference']}, candidate {s['candidate']}"
              f"  {D}[candidate differs in {f['raw']}, reference in {f['noise']}]{N}")
    for f in noise:
        print(f"      {D}{f['path']}: noise (the reference differs as often: {f['noise']} of {f['raw']}){N}")
    if lat["verdict"] not in ("same", "n/a"):
        print(f"      {O}latency {lat['verdict']}{N}: p50 candidate {lat['candidate']['p50']:.1f} ms, reference {lat['reference']['p50']:.1f} ms,"
              f" shift {lat['shift_ms']:+.1f} ms (Mann-Whitney p = {lat['p_value']:.1g})")
PY
	mkdir -p "$ST_BUILD"
	cp "$rep" "$ST_BUILD/demo-compare-report.html"
	cp "$js" "$ST_BUILD/demo-compare-report.json"
	cp "$dl" "$ST_BUILD/demo-compare-diffs.jsonl"
	say ""
	say "  the report (one self-contained file, opens anywhere): ${B}$ST_BUILD/demo-compare-report.html${N}"
	say "  for machines: $ST_BUILD/demo-compare-report.json; each differing pair: $ST_BUILD/demo-compare-diffs.jsonl"
}
