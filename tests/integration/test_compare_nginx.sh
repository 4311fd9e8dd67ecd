#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Tap compare against real servers. Production is nginx; the reference is the same nginx
# configuration (production's build); the candidate differs in exactly one field of one
# endpoint and answers one endpoint markedly slower (through a small server that waits
# 120 ms). Endpoints:
#   GET /api/price/N   {"sku", "price", "currency"}: the candidate's price differs
#   GET /api/session   {"user", "id": $request_id}: a value that changes on every answer,
#                      on production and reference too
#   GET /api/catalog   gzip-encoded JSON with a per-answer trace id (compared decoded)
#   GET /api/slow      the same answer, 120 ms later from the candidate
# The diffs and the report must name exactly $.price of GET /api/price/{id} as the
# regression, the changing values only as noise, the slow endpoint's latency as slower,
# and nothing else. A capture of the same traffic, replayed with compare (production's
# answers from the pcap), must say the same. The HTML report is then opened in headless
# Chromium: the rendered DOM must hold the endpoint table with the regression; a
# screenshot is kept with the logs ($ST_BUILD/test-logs/test_compare_nginx/).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3 taskset pgrep
st_require_agent
"$ST_BIN" shadow --help 2>/dev/null | grep -q -- '--reference' || st_skip "$ST_BIN has no tap compare"
st_init

N=${ST_COMPARE_N:-20}
LOGS=$ST_BUILD/test-logs/test_compare_nginx
mkdir -p "$LOGS"
rm -f "$LOGS"/*

common='
		location = /api/session { default_type application/json;
			return 200 "{\"user\": \"ada\", \"id\": \"$request_id\"}"; }
		location = /api/catalog { default_type application/json; gzip on;
			gzip_types application/json; gzip_min_length 0;
			return 200 "{\"items\": [{\"id\": 1, \"name\": \"apple\"}, {\"id\": 2, \"name\": \"pear\"}], \"trace\": \"$request_id\"}"; }'
prod_locs="$common
		location /api/price/ { default_type application/json;
			return 200 \"{\\\"sku\\\": \\\"\$uri\\\", \\\"price\\\": 12.5, \\\"currency\\\": \\\"EUR\\\"}\"; }
		location = /api/slow { default_type application/json;
			return 200 \"{\\\"report\\\": \\\"weekly\\\", \\\"rows\\\": 3}\"; }"
cand_locs="$common
		location /api/price/ { default_type application/json;
			return 200 \"{\\\"sku\\\": \\\"\$uri\\\", \\\"price\\\": 13, \\\"currency\\\": \\\"EUR\\\"}\"; }
		location = /api/slow { proxy_pass http://127.0.0.1:8090; }"

st_netns_pair
# the API needs none of the 1 B .. 5 MB files st_nginx_start makes unless a www/f1 is there
for n in prod ref cand; do mkdir -p "$ST_TMP/$n/www" && : >"$ST_TMP/$n/www/f1"; done
ST_NGINX_LOCATIONS=$prod_locs st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
ST_NGINX_LOCATIONS=$prod_locs st_nginx_start ref "$ST_SRV_NS" 127.0.0.1:8081
ST_NGINX_LOCATIONS=$cand_locs st_nginx_start cand "$ST_SRV_NS" 127.0.0.1:8082
# the candidate's slow dependency: the same answer as production's, 120 ms later: a shift the
# latency verdict finds on a loaded host too (at 60 ms it read "0 slower" in one of two
# whole-suite runs beside stress-ng --cpu 2, the reference slowed as well); threaded, as the
# slow endpoint's requests come on four connections
cat >"$ST_TMP/slow.py" <<'PY'
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.12)
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
st_bg slow st_in_bg "$ST_SRV_NS" python3 "$ST_TMP/slow.py"
st_wait_port "$ST_SRV_NS" 8090 10 "pid=$ST_LAST_PID,"
# the candidate and the reference share one CPU: the same contention for both (on a loaded
# host two cores are not loaded alike, and the latency verdict compares the two)
cpu=$(( $(nproc) - 1 ))
for n in ref cand; do
	for p in $(pgrep -P "$(cat "$ST_TMP/$n/nginx.pid")"); do taskset -cp "$cpu" "$p" >/dev/null; done
done
# the stage answers as described
got=$(st_in "$ST_SRV_NS" curl -s http://127.0.0.1:8082/api/price/1)
[ "$got" = '{"sku": "/api/price/1", "price": 13, "currency": "EUR"}' ] || st_fail "candidate answers $got"
st_in "$ST_SRV_NS" curl -s --compressed -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/api/catalog | grep -q 200

R=$ST_TMP/report.html J=$ST_TMP/report.json D=$ST_TMP/diffs.jsonl
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to 127.0.0.1:8082 \
	--reference 127.0.0.1:8081 --report "$R" --report-json "$J" --diffs "$D" --drain 10 \
	--report-interval 1
[ -f "$R" ] && [ -f "$J" ] && [ -f "$D" ] || st_fail "the outputs do not exist from the start"
SH_PID=$SH_AGENT_PID
# the same traffic to a pcap, for replay below, and to a tee stream, for receive below
st_capture_start cap "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/prod.pcap" --port 80
CAP_PID=$ST_AGENT_PID
st_tee_start tee --duration 0 --max-rate 0 -o "$ST_TMP/prod.tee"
SH_AGENT_PID=$SH_PID

# one client connection per endpoint (keep-alive), N requests each, paced like real clients
# (not one burst the agent would release to the shadows as one pipelined batch)
base=http://$ST_SRV4
ST_CURL+=(--rate 25/s)
st_log "traffic: $N requests to each of 4 endpoints"
args=()
for i in $(seq 1 "$N"); do args+=(-o /dev/null "$base/api/price/$i"); done
st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args[@]}" &
p1=$!
args=()
for i in $(seq 1 "$N"); do args+=(-o /dev/null "$base/api/session"); done
st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args[@]}" &
p2=$!
args=()
for i in $(seq 1 "$N"); do args+=(-o /dev/null "$base/api/catalog"); done
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -H 'Accept-Encoding: gzip' "${args[@]}" &
p3=$!
# the slow endpoint over four connections: each shadow connection waits for its answers in
# turn, and N of them one after another would outlast receive's drain on a loaded host
slow=()
for c in 0 1 2 3; do
	args=()
	for i in $(seq 1 "$N"); do [ $((i % 4)) -eq "$c" ] && args+=(-o /dev/null "$base/api/slow"); done
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args[@]}" &
	slow+=($!)
done
wait $p1 $p2 $p3 "${slow[@]}"
# the slow endpoint's answers come last: up to N/4 x 120 ms after the traffic
for i in $(seq 1 100); do
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["summary"].get("compared",0)+d["summary"].get("not_compared",0) >= int(sys.argv[2]) else 1)' \
		"$J" $((4 * N)) 2>/dev/null && break
	sleep 0.2
done
sh_agent_stop agent
st_summary_documented "$SH_SUMMARY" "shadow and replay" "Tap compare" "The tap"
# the verdict, said at the end (before the summary)
grep -q '^shadowtap: verdict: FAIL, 1 regression in 1 endpoint, 1 slower; [0-9]* pairs compared -> '"$R"'$' "$ST_TMP/agent.err" ||
	{ grep verdict "$ST_TMP/agent.err"; st_fail "the live run's verdict line"; }
st_stop "$CAP_PID" INT || st_fail "capture failed"
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee.err"; st_fail "tee failed"; }
st_log "$SH_SUMMARY"
sh_expect compared -eq $((4 * N))
sh_expect not_compared -eq 0
sh_expect differing -ge "$N"
cp "$R" "$J" "$D" "$LOGS/"

# the report and the diffs say exactly what changed
cat >"$ST_TMP/check.py" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
ok = True
def bad(msg):
    global ok
    ok = False
    print("FAIL:", msg)
eps = {e["endpoint"]: e for e in rep["endpoints"]}
want = {"GET /api/price/{id}", "GET /api/session", "GET /api/catalog", "GET /api/slow"}
if set(eps) != want:
    bad(f"endpoints {sorted(eps)}, want {sorted(want)}")
regs = [(e["endpoint"], f["path"]) for e in rep["endpoints"] for f in e["fields"] if f["verdict"] == "regression"]
if regs != [("GET /api/price/{id}", "$.price")]:
    bad(f"regressions {regs}, want only $.price of GET /api/price/{{id}}")
if rep["endpoints"][0]["endpoint"] != "GET /api/price/{id}":
    bad("the regression is not at the top")
for name, path in (("GET /api/session", "$.id"), ("GET /api/catalog", "$.trace")):
    f = [f for f in eps.get(name, {}).get("fields", []) if f["path"] == path]
    if not f or f[0]["verdict"] != "noise" or f[0]["noise"] < n // 2:
        bad(f"{name} {path}: {f}, want a noise field")
for name, e in eps.items():
    other = [f["path"] for f in e["fields"] if f["path"] not in ("$.price", "$.id", "$.trace")]
    if other:
        bad(f"{name}: other differing fields {other}")
    lat = e["latency"]["verdict"]
    if lat != ("slower" if name == "GET /api/slow" else "same"):
        bad(f"{name}: latency {lat} (p={e['latency']['p_value']}, cand {e['latency']['candidate']}, ref {e['latency']['reference']})")
    if e["compared"] != n:
        bad(f"{name}: {e['compared']} compared, want {n}")
price = eps["GET /api/price/{id}"]
s = price["fields"][0]["samples"][0]
if (s["production"], s["candidate"], s["reference"]) != ("12.5", "13", "12.5"):
    bad(f"price sample {s}")
lines = [json.loads(l) for l in open(sys.argv[2])]
if len(lines) != n:
    bad(f"{len(lines)} diff lines, want {n} (the price pairs)")
for l in lines:
    if l["endpoint"] != "GET /api/price/{id}" or [d["path"] for d in l["differences"]] != ["$.price"]:
        bad(f"diff line {l['endpoint']} {[d['path'] for d in l['differences']]}")
        break
    if l["request"]["method"] != "GET" or not l["request"]["target"].startswith("/api/price/"):
        bad(f"diff line request {l['request']}")
        break
print("report:", [(e["endpoint"], e["compared"], e["differing"], e["latency"]["verdict"]) for e in rep["endpoints"]])
sys.exit(0 if ok else 1)
PY
python3 "$ST_TMP/check.py" "$J" "$D" "$N" || st_fail "the report or the diffs do not say what changed (above)"

# replay: production's answers from the pcap, the shadows live, at the recorded pace
st_log "replay of the capture ($(st_pcap_packets "$ST_TMP/prod.pcap") packets) with compare"
# a pipeline's gate: exit status 3, the outputs written all the same
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" replay "$ST_TMP/prod.pcap" --port 80 --to 127.0.0.1:8082 \
	--reference 127.0.0.1:8081 --report-json "$ST_TMP/replay.json" --diffs "$ST_TMP/replay.jsonl" \
	--drain 10 --fail-on-regression 2>"$ST_TMP/replay.err" || rc=$?
[ "$rc" -eq 3 ] || { cat "$ST_TMP/replay.err"; st_fail "replay --fail-on-regression with a regression: exit $rc, want 3"; }
SH_SUMMARY=$(st_summary "$ST_TMP/replay.err")
st_summary_documented "$SH_SUMMARY" "shadow and replay" "Tap compare"
st_log "$SH_SUMMARY"
sh_expect compared -eq $((4 * N))
sh_expect not_compared -eq 0
cp "$ST_TMP/replay.json" "$ST_TMP/replay.jsonl" "$LOGS/"
python3 "$ST_TMP/check.py" "$ST_TMP/replay.json" "$ST_TMP/replay.jsonl" "$N" ||
	st_fail "replay: the report or the diffs do not say what changed (above)"

# receive: the same traffic as a tee stream (what a Kafka receiver reads), production's
# answers from the stream, the shadows live; the verdicts of the live run again
st_log "receive of the tee stream ($(stat -c %s "$ST_TMP/prod.tee") bytes) with compare"
st_in "$ST_SRV_NS" "$ST_BIN" receive "$ST_TMP/prod.tee" --to 127.0.0.1:8082 \
	--reference 127.0.0.1:8081 --report-json "$ST_TMP/receive.json" --diffs "$ST_TMP/receive.jsonl" \
	2>"$ST_TMP/receive.err" || { cat "$ST_TMP/receive.err"; st_fail "receive failed"; }
SH_SUMMARY=$(st_summary "$ST_TMP/receive.err")
st_summary_documented "$SH_SUMMARY" receive "shadow and replay" "Tap compare"
st_log "$SH_SUMMARY"
sh_expect compared -eq $((4 * N))
sh_expect not_compared -eq 0
cp "$ST_TMP/receive.json" "$ST_TMP/receive.jsonl" "$LOGS/"
python3 "$ST_TMP/check.py" "$ST_TMP/receive.json" "$ST_TMP/receive.jsonl" "$N" ||
	st_fail "receive: the report or the diffs do not say what changed (above)"

# the same stream with the changed field ignored: no regression, exit 0 (the slow endpoint
# is not a regression: --fail-on-slower is its own gate)
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" receive "$ST_TMP/prod.tee" --to 127.0.0.1:8082 --reference 127.0.0.1:8081 \
	--ignore-field '$.price' --fail-on-regression --report-json "$ST_TMP/clean.json" \
	2>"$ST_TMP/clean.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/clean.err"; st_fail "receive --fail-on-regression without a regression: exit $rc, want 0"; }
grep -q '^shadowtap: verdict: FAIL, no regression, 1 slower; ' "$ST_TMP/clean.err" ||
	{ grep verdict "$ST_TMP/clean.err"; st_fail "the verdict without the price field"; }
grep -q '"verdict": {"result": "fail", "regressions": 0, ' "$ST_TMP/clean.json" ||
	st_fail "the JSON report's verdict without the price field"

# the HTML report in a real browser
# in the client namespace, which reaches no network; one run dumps the DOM and takes the screenshot
st_render_html "$ST_CLI_NS" "$R" 1400,1800 "$LOGS/report.png" ||
	{ st_log "PASS (without the browser check)"; exit 0; }
python3 - "$ST_TMP/dom.html" <<'PY' || st_fail "the rendered report does not show the regression (above)"
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.fields, self.in_table = [], [], [], False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "endpoints":
            self.in_table = True
        if tag == "tr" and self.in_table and "endpoint" in a.get("class", "").split():
            self.rows.append((a.get("data-endpoint"), a.get("class", "").split()))
        if tag == "tr" and "field" in a.get("class", "").split():
            self.fields.append((a.get("data-path"), a.get("class", "").split()))
    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = False
p = P()
dom = open(sys.argv[1], encoding="utf-8").read()
p.feed(dom)
rows = dict(p.rows)
# the banner and the verdict's bullets, with the values that changed
import re
banner = re.search(r'<div id="banner" class="banner ([a-z_]+)">([^<]*)</div>', dom)
print("banner:", banner and banner.groups())
if not banner or banner.groups() != ("fail", "FAIL"):
    sys.exit("no FAIL banner")
bullets = [re.sub(r"<[^>]+>", "", b) for b in re.findall(r'<li class="(?:regression|slower)">(.*?)</li>', dom)]
print("bullets:", bullets)
if not any(b.startswith("GET /api/price/{id} $.price 12.5 \u2192 13: ") for b in bullets):
    sys.exit("no bullet with the price's values")
if not any(b.startswith("GET /api/slow is slower by ") and "p50 " in b and " \u2192 " in b for b in bullets):
    sys.exit("no bullet for the slow endpoint with its values")
ok = len(rows) == 4 and "regression" in rows.get("GET /api/price/{id}", []) and \
    [r for r, c in p.rows if "regression" in c] == ["GET /api/price/{id}"] and \
    p.rows[0][0] == "GET /api/price/{id}" and "slower" in rows.get("GET /api/slow", []) and \
    [f for f, c in p.fields if "regression" in c] == ["$.price"]
print("rendered endpoint rows:", p.rows)
print("rendered field rows:", p.fields)
sys.exit(0 if ok else 1)
PY
[ -s "$LOGS/report.png" ] && st_log "screenshot: $LOGS/report.png"
st_log "PASS"
