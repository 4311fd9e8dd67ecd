#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A load test from production's own traffic (docs/LOAD.md), against a target whose latency
# mix is known (load_target.py: 90% of answers after 5 ms, 10% after 50 ms, keep-alive):
#  - `replay --rate 400 --duration 6` of a recording of 40 keep-alive clients (looped: 800
#    requests a pass): every request due is sent and answered once, the achieved rate is
#    within 2% of the target, p50 and p99 (from due, and from the send) land in the mix's
#    bands. The bands are widened only by the lateness the generator itself reports (its lag
#    behind its schedule) and the target's own (how late its event loop answered): a busy
#    host shows in them, a wrong measurement does not;
#  - the JSON report has the fixed keys, the endpoints as tap compare names them, the summary
#    line achieved_rps= and p99_ms=, the run's readable last line;
#  - `receive STREAM --to ... --rate 200 --duration 2 --compare` (a tee stream of the same
#    traffic): constant pace, every due request answered; tap compare runs during the load
#    test (production's answers from the stream) and its report goes next to the load
#    report's (NAME.compare.html), which links it;
#  - `report --merge` of a report with itself: counts double, every percentile the same (the
#    histograms add); with the receive's (another pacing): refused, one line;
#  - the HTML report opened in headless Chromium: the summary and the percentile chart (both
#    latencies) are in the rendered DOM; a screenshot is kept with the logs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/load_common.sh"
ld_init test_load_rate bpftool
# one load test at a time: each runs its generator and target at nice -10 (LD_NICE)
st_exclusive load
PCAP=$ST_TMP/rec.pcap
STREAM=$ST_TMP/rec.tee

st_log "recording: 40 keep-alive clients, 800 requests, ~2 ms apart (tcpdump and tee)"
LD_TEE=$STREAM ld_record "$PCAP" 40 20 2

st_netns_single target
TNS=$ST_LAST_NS
ld_target_start target "$TNS" 8080

R=$ST_TMP/load.html
RJ=$ST_TMP/load.json
rc=0
st_in "$TNS" timeout 60 "${LD_NICE[@]}" "$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:8080 --rate 400 \
	--duration 6 --report "$R" --report-json "$RJ" 2>"$ST_TMP/replay.err" || rc=$?
tail -n 2 "$ST_TMP/replay.err"
[ "$rc" -eq 0 ] || st_fail "replay --rate exited with $rc"
st_stop "$LD_TARGET_PID" INT || true
cp "$RJ" "$R" "$ST_TMP/replay.err" "$ST_TMP/target.log" "$LOGS"/
over=$(grep '^oversleep_ms' "$ST_TMP/target.log" | tail -n1)
[ -n "$over" ] || st_fail "the target did not say how late it answered"
st_log "target: $over"
SUMMARY=$(st_summary "$ST_TMP/replay.err")
for k in achieved_rps p99_ms load_due load_answered late_sends worst_lag_ms; do
	grep -q " $k=" <<<"$SUMMARY" || st_fail "no $k= on the summary line"
done
st_summary_documented "$SUMMARY" "shadow and replay" "Load test"
grep -q '^shadowtap: replay running: .* as a load test at 400 req/s' "$ST_TMP/replay.err" ||
	st_fail "replay's start line does not say it is a load test"
tail -n 1 "$ST_TMP/replay.err" | grep -qE '^shadowtap: load 6\.[0-9]+ s: [0-9]+ answered of [0-9]+ due, [0-9.]+/s \(target 400/s\); latency p50 ' ||
	st_fail "replay does not end with the readable line"

python3 - "$RJ" "$over" <<'PY' || st_fail "the load test's figures are off (above)"
import json, sys
r = json.load(open(sys.argv[1]))
over = dict(kv.split("=") for kv in sys.argv[2].split()[1:])
tp50, tp99, tmax = (float(over[k]) for k in ("p50", "p99", "max"))
lat, raw, lag = r["latency_ms"], r["latency_raw_ms"], r["lag_ms"]
print("achieved %.1f/s of %g; p50 %.2f p99 %.2f ms (raw %.2f, %.2f); generator lag p50 %.2f "
      "p99 %.2f max %.2f ms; target late p50 %.2f p99 %.2f max %.2f ms" %
      (r["achieved_rps"], r["target_rps"], lat["p50"], lat["p99"], raw["p50"], raw["p99"],
       lag["p50"], lag["p99"], lag["max"], tp50, tp99, tmax))
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL:", what)
        ok = False
for k in ("target_rps", "achieved_rps", "sent", "answered", "errors", "latency_ms",
          "latency_raw_ms", "steps", "endpoints"):
    check(k in r, "no %r key" % k)
for k in ("p50", "p90", "p99", "p999", "max"):
    check(k in lat and k in raw, "no latency %r" % k)
# 6 s at 400/s: exactly 2400 due, each sent and answered once, no error
check(r["due"] == 2400 and r["sent"] == 2400 and r["answered"] == 2400,
      "due %d sent %d answered %d, want 2400 each" % (r["due"], r["sent"], r["answered"]))
check(sum(r["errors"].values()) == 0, "errors %s" % r["errors"])
# the rate: answers over the run, which ends with the last answer; a late end is only what
# the generator's and the target's own lateness explain
slack_s = (lag["max"] + tmax) / 1e3 + 0.06
low = min(0.98 * 400, 2400 / (6 + slack_s))
check(low <= r["achieved_rps"] <= 400.5, "achieved %.1f/s, want %.1f..400" % (r["achieved_rps"], low))
# the mix: p50 in the 5 ms class, p99 in the 50 ms class (both from due and from the send);
# above, what the generator and the target say of their own lateness (a late answer delays
# the next request on its connection too: the worst of each, once more)
for name, l in (("from due", lat), ("from the send", raw)):
    hi50 = 10 + 2 * (lag["p50"] + tp50)
    hi99 = 70 + 2 * (lag["max"] + tmax)
    check(5.0 <= l["p50"] <= hi50, "p50 %s %.2f ms, want 5..%.2f" % (name, l["p50"], hi50))
    check(50.0 <= l["p99"] <= hi99, "p99 %s %.2f ms, want 50..%.2f" % (name, l["p99"], hi99))
eps = {e["endpoint"]: e["sent"] for e in r["endpoints"]}
check(set(eps) == {"GET /f1", "GET /f100", "GET /users/{id}", "GET /api/items?page"},
      "endpoints %s" % eps)
check(sum(eps.values()) == 2400, "endpoints' requests %d" % sum(eps.values()))
sys.exit(0 if ok else 1)
PY
n=$(grep '^oversleep_ms' "$ST_TMP/target.log" | sed -nE 's/.* requests=([0-9]+)$/\1/p')
[ "$n" -eq 2400 ] || st_fail "the target got $n requests, want 2400"

# receive: the same traffic from a tee stream, constant pace
ld_target_start target2 "$TNS" 8081
RXJ=$ST_TMP/rx.json
rc=0
st_in "$TNS" timeout 30 "${LD_NICE[@]}" "$ST_BIN" receive "$STREAM" --to 127.0.0.1:8081 --rate 200 --duration 2 \
	--compare --report "$ST_TMP/rx.html" --report-json "$RXJ" 2>"$ST_TMP/receive.err" || rc=$?
tail -n 1 "$ST_TMP/receive.err"
[ "$rc" -eq 0 ] || st_fail "receive --rate exited with $rc"
[ "$(ld_json "$RXJ" 'r["pace"]')" = constant ] || st_fail "receive's load test is not paced constant"
[ "$(ld_json "$RXJ" 'r["due"]')" -eq 400 ] || st_fail "receive: $(ld_json "$RXJ" 'r["due"]') due, want 400"
[ "$(ld_json "$RXJ" 'r["answered"]')" -eq 400 ] || st_fail "receive: not every due request answered"
compared=$(st_summary_field "$(st_summary "$ST_TMP/receive.err")" compared)
st_summary_documented "$(st_summary "$ST_TMP/receive.err")" receive "shadow and replay" "Tap compare" "Load test"
[ "${compared:-0}" -ge 390 ] || st_fail "tap compare during the load test compared ${compared:-no} pairs"
grep -q 'shadowtap compare' "$ST_TMP/rx.compare.html" || st_fail "no tap compare report next to the load report"
grep -q 'href="rx.compare.html"' "$ST_TMP/rx.html" || st_fail "the load report does not link tap compare's"

# merging: histograms add, percentiles are computed again
rc=0
"$ST_BIN" report --merge "$RJ" "$RJ" -o "$ST_TMP/merged.html" --report-json "$ST_TMP/merged.json" \
	2>"$ST_TMP/merge.err" || rc=$?
cat "$ST_TMP/merge.err"
[ "$rc" -eq 0 ] || st_fail "report --merge exited with $rc"
st_summary_documented "$(st_summary "$ST_TMP/merge.err")" "report --merge"
grep -qE '^shadowtap: summary merged=2 due=4800 answered=4800 achieved_rps=[0-9.]+ p99_ms=[0-9.]+ errors=0$' \
	"$ST_TMP/merge.err" || st_fail "report --merge of load reports: no summary line"
python3 - "$RJ" "$ST_TMP/merged.json" <<'PY' || st_fail "the merge did not add the histograms"
import json, sys
a, m = (json.load(open(p)) for p in sys.argv[1:])
assert m["sources"] == 2 and m["due"] == 2 * a["due"] and m["answered"] == 2 * a["answered"], m["due"]
assert m["target_rps"] == 2 * a["target_rps"]
for k in ("latency_ms", "latency_raw_ms"):
    for p in ("p50", "p90", "p99", "p999", "max"):
        assert m[k][p] == a[k][p], (k, p, m[k][p], a[k][p])
    assert m[k]["n"] == 2 * a[k]["n"]
PY
rc=0
"$ST_BIN" report --merge "$RJ" "$RXJ" -o "$ST_TMP/bad.html" 2>"$ST_TMP/merge2.err" || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$ST_TMP/merge2.err")" -eq 1 ] && grep -q 'another pacing' "$ST_TMP/merge2.err" ||
	st_fail "merging a recorded-pace and a constant-pace run: exit $rc, $(cat "$ST_TMP/merge2.err")"

# the HTML report in a real browser
# in the target's namespace, which reaches no network but its own loopback
st_render_html "$TNS" "$R" 1400,2400 "$LOGS/report.png" ||
	{ st_log "PASS (without the browser check)"; exit 0; }
python3 - "$ST_TMP/dom.html" "$RJ" <<'PY' || st_fail "the rendered report lacks the summary or the percentile chart (above)"
import html.parser, json, sys
r = json.load(open(sys.argv[2]))
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.lines, self.text, self.in_summary, self.ids = [], {}, {}, 0, set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        self.stack.append(a.get("id"))
        if tag == "polyline" and "percentile-chart" in self.stack:
            self.lines[a.get("class")] = len(a.get("points", "").split())
    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
    def handle_data(self, data):
        for k in ("summary", "p99", "achieved"):
            if k in self.stack:
                self.text[k] = self.text.get(k, "") + data
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print("rendered: ids", sorted(p.ids & {"summary", "percentile-chart", "rate-chart", "latency-chart", "endpoints"}),
      "percentile lines", p.lines, "p99", p.text.get("p99"), "achieved", p.text.get("achieved"))
ok = {"summary", "percentile-chart", "rate-chart", "latency-chart", "endpoints"} <= p.ids and \
    p.lines.get("corrected", 0) >= 10 and p.lines.get("raw", 0) >= 10 and \
    p.text.get("p99", "").strip() == "%.2f ms" % r["latency_ms"]["p99"] and \
    p.text.get("achieved", "").strip() == "%.1f requests/s" % r["achieved_rps"]
sys.exit(0 if ok else 1)
PY
st_log "PASS"
