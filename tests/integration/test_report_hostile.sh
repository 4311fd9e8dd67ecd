#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap report --merge` with a hostile part file (a compromised receiver host writes it):
# every string field of the JSON schema (command, candidate, reference, hosts, endpoint
# patterns, endpoint names, field paths and notes, noise fields, correlated fields, sample
# targets and values)
# holds markup and script. The merged HTML is rendered by headless Chromium (no network:
# its own network namespace): no injected element exists, no script ran (the title is the
# report's), and the text is there, escaped. The old code wrote "command" raw: the injected
# script set the page's title.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip python3
st_require_agent
st_init
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || st_skip "chromium is not installed (tools/install-deps.sh installs it)"
cd "$ST_TMP" || st_fail "cd $ST_TMP"

python3 - <<'PY' || st_fail "could not write the parts"
import json
# short enough for every field's bound (a sample target holds 96 bytes)
X = "<script id=inj>document.title='PWNED'</script><b id=inj>x</b>"
Y = "\"'><img id=inj src=x onerror=\"document.title='PWNED2'\">"
def part(host, cmd, hostile):
    h = (lambda s: s + X) if hostile else (lambda s: s)
    v = (lambda s: s + Y) if hostile else (lambda s: s)
    side = lambda n, b: {"p50": 1, "p90": 1, "p99": 1, "n": n, "buckets": [[b, n]]}
    sample = {"target": h("/a?"), "production": h("1"), "production_status": 200,
              "candidate": v("2"), "candidate_status": 200, "reference": h("3"),
              "reference_status": 200, "reference_same": False}
    return {
        "format": "shadowtap-compare-report", "format_version": 2,
        "generated": "2026-11-30T10:00:00.000Z", "final": True,
        "command": h(cmd), "candidate": v("10.0.9.5:8080"), "reference": h("10.0.9.6:8080"),
        "started": "2026-11-30T09:00:00.000Z", "duration_s": 3600.0,
        "ended": "2026-11-30T10:00:00.000Z", "sources": 1, "hosts": [h(host), v(host)],
        "endpoint_patterns": ["GET /p/" + ("<b>{id}" if hostile else "{id}")],
        "thresholds": {"relative_pct": 20, "absolute_pct": 0.03, "latency_alpha": 0.001,
                       "latency_shift": 0.2, "latency_min_ms": 1, "latency_min_samples": 10,
                       "compare_max_body": 1048576, "compare_timeout_s": 30,
                       "max_endpoints": 100},
        "summary": {"compared": 8, "differing": 5},
        "endpoints": [{
            "endpoint": h("GET /a"), "compared": 8, "differing": 5, "noise_only": 0,
            "not_compared": 0, "regressions": 1, "more_paths": 0,
            "fields": [{"path": h("$.v"), "kind": "value", "raw": 5, "noise": 0,
                        "verdict": "regression", "basis": "reference", "volatile": 0,
                        "note": v("n"), "samples": [sample]}],
            "noise_fields": [{"path": v("$.w"), "kind": "value", "noise": 2, "volatile": 0,
                              "note": h("m")}],
            "correlated": 3, "correlated_fields": [{"path": h("$.tok"), "correlated": 3},
                                                   {"path": v("$.id"), "correlated": 2}],
            "latency": {"production": side(8, 100), "reference": side(8, 100),
                        "candidate": side(8, 140), "verdict": "same"},
            "status": {"production": {"200": 8}, "reference": {"200": 8},
                       "candidate": {"200": 8}}}]}
json.dump(part("host-1", "shadow", True), open("hostile.json", "w"))
PY
# the patterns must agree between parts: the hostile one merged with itself, and alone
"$ST_BIN" report --merge hostile.json -o fleet.html 2>err || { cat err; st_fail "the merge failed"; }
grep -q "&lt;script id=inj&gt;" fleet.html || st_fail "the hostile text is not in the report, escaped"

st_netns_single chrome
mkdir -p "$ST_TMP/chrome"
timeout 60 ip netns exec "$ST_LAST_NS" "$chrome" --headless --no-sandbox --disable-gpu \
	--disable-background-networking --disable-component-update --disable-sync --no-first-run \
	--user-data-dir="$ST_TMP/chrome" --dump-dom "file://$ST_TMP/fleet.html" >dom.html 2>chrome.err ||
	{ tail -n 20 chrome.err; st_fail "chromium could not render the report"; }
python3 - dom.html <<'PY' || st_fail "an injected element or script is in the rendered report (above)"
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad, self.title, self.in_title, self.text = [], "", False, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "object", "embed") or a.get("id") == "inj" or \
                any(k.startswith("on") for k in a):
            self.bad.append((tag, attrs))
        self.in_title = tag == "title"
    def handle_endtag(self, tag):
        self.in_title = False
    def handle_data(self, d):
        if self.in_title:
            self.title += d
        self.text.append(d)
p = P()
p.feed(open(sys.argv[1]).read())
text = "".join(p.text)
ok = True
if p.bad:
    print("injected elements:", p.bad); ok = False
if p.title != "shadowtap compare report":
    print("the title changed (a script ran):", repr(p.title)); ok = False
for want in ("<script id=inj>document.title='PWNED'</script>", "onerror="):
    if want not in text:
        print("the hostile text is not shown as text:", want); ok = False
sys.exit(0 if ok else 1)
PY
echo "  rendered: no injected element, no script ran, the hostile strings shown as text"
st_log "PASS"
