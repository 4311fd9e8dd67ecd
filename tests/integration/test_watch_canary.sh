#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap report --canary` on two groups of simulated hosts: each host a network namespace
# with its own nginx (production) and its own `shadowtap watch --report-json` on its loopback.
# The bad canary's /flaky answers 500 for 3 requests in 10, the good canary's and the two
# baseline hosts' for 1 in 10; /steady 1 in 10 everywhere.
#  - bad canary against the baseline: fail (exit 3), on /flaky, not on /steady; the report's
#    counts are the nginx logs';
#  - good canary against the baseline: pass (exit 0);
#  - fewer requests per endpoint than the documented minimum (200): not enough traffic (exit 4).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/watch_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
st_init
D=$ST_TMP

HOSTS=(cbad cgood b1 b2)
declare -A NS WPID
# watch_on HOST REPORT: watch on HOST's loopback, its report in REPORT
watch_on() {
	local h=$1 i
	st_in_bg "${NS[$h]}" "$ST_BIN" watch --iface lo --port 80 "${ST_RING[@]}" --report-json "$2" \
		--endpoint '* /flaky' --endpoint '* /steady' >"$D/$h.out" 2>"$D/$h.err" </dev/null &
	WPID[$h]=$!
	ST_PIDS+=("${WPID[$h]}")
	for i in $(seq 1 100); do st_agent_attached "${NS[$h]}" lo "${WPID[$h]}" && return 0; sleep 0.1; done
	cat "$D/$h.err"
	st_fail "watch on $h did not attach"
}
for h in "${HOSTS[@]}"; do
	st_netns_single "$h"
	NS[$h]=$ST_LAST_NS
	re='0$'
	[ "$h" = cbad ] && re='[036]$'
	wt_nginx "$h" "${NS[$h]}" 80 "$re"
	watch_on "$h" "$D/$h.json"
done

st_log "8 s of traffic on every host"
pids=()
for h in "${HOSTS[@]}"; do
	wt_drive "${NS[$h]}" 8 127.0.0.1:80 >"$D/$h.sent" &
	pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p" || st_fail "a client failed"; done
for h in "${HOSTS[@]}"; do
	st_tcp_settle 80 "${NS[$h]}"
	st_stop "${WPID[$h]}" INT || { cat "$D/$h.err"; st_fail "watch on $h failed"; }
	st_log "  $h: $(cat "$D/$h.sent") requests"
done

# canary EXPECTED_EXIT ARGS...: report --canary ARGS, its exit status checked
canary() {
	local want=$1 rc=0
	shift
	"$ST_BIN" report "$@" >"$D/verdict.out" 2>"$D/verdict.err" || rc=$?
	sed 's/^/  /' "$D/verdict.out"
	[ "$rc" -eq "$want" ] || { cat "$D/verdict.err"; st_fail "report $* exited $rc, not $want"; }
}

st_log "the bad canary against the baseline: fail"
canary 3 --canary "$D/cbad.json" --baseline "$D/b1.json" "$D/b2.json" -o "$D/bad.html" \
	--report-json "$D/bad.json"
python3 - "$D/bad.json" "$D/cbad/access.log" "$D/b1/access.log" "$D/b2/access.log" <<'PY' ||
import json, sys
r = json.load(open(sys.argv[1]))
eps = {e["endpoint"]: e for e in r["endpoints"]}
def logged(paths, uri, code=None):
    n = 0
    for p in paths:
        for line in open(p):
            m, u, s = line.strip().split("|")
            n += m == "GET" and u == uri and (code is None or s.startswith(code))
    return n
assert r["verdict"] == "fail", r["verdict"]
assert eps["GET /flaky"]["verdict"] == "fail" and eps["GET /flaky"]["error_fail"], eps["GET /flaky"]
assert eps["GET /steady"]["verdict"] == "pass", eps["GET /steady"]
assert eps["GET /flaky"]["requests"] == [logged([sys.argv[2]], "/flaky"), logged(sys.argv[3:], "/flaky")]
assert eps["GET /flaky"]["errors"] == [logged([sys.argv[2]], "/flaky", "5"), logged(sys.argv[3:], "/flaky", "5")]
assert 0.25 < eps["GET /flaky"]["error_ratio"][0] < 0.35 and 0.07 < eps["GET /flaky"]["error_ratio"][1] < 0.13
assert eps["GET /flaky"]["error_p"] < r["alpha_each"]
assert r["groups"]["baseline"]["files"][1].endswith("b2.json")
print("  /flaky: errors %.1f%% against %.1f%%, p %.2g; /steady passes" % (
    100 * eps["GET /flaky"]["error_ratio"][0], 100 * eps["GET /flaky"]["error_ratio"][1], eps["GET /flaky"]["error_p"]))
PY
	st_fail "the canary report is wrong (above)"
grep -q 'class="box verdict bad"' "$D/bad.html" || st_fail "the HTML report does not say fail"

st_log "the good canary against the baseline: pass"
canary 0 --canary "$D/cgood.json" --baseline "$D/b1.json" "$D/b2.json" --report-json "$D/good.json"
grep -q '"verdict": "pass"' "$D/good.json" || st_fail "the good canary does not pass"

st_log "below 200 requests per endpoint: not enough traffic"
for h in cgood b1; do watch_on "$h" "$D/$h-short.json"; done
for h in cgood b1; do
	st_in "${NS[$h]}" python3 - <<'PY' || st_fail "the short client failed"
import http.client
c = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
for k in range(1, 61):  # 180 requests: fewer than 200 even all together
    for p in ("/flaky?n=%d" % k, "/steady?n=%d" % k, "/api"):
        c.request("GET", p)
        c.getresponse().read()
PY
	st_tcp_settle 80 "${NS[$h]}"
	st_stop "${WPID[$h]}" INT || { cat "$D/$h.err"; st_fail "watch on $h failed"; }
done
canary 4 --canary "$D/cgood-short.json" --baseline "$D/b1-short.json" --report-json "$D/low.json"
grep -q '"verdict": "not enough traffic"' "$D/low.json" || st_fail "the short run is not 'not enough traffic'"
# ... and the same files judged from 50 requests each: enough
canary 0 --canary "$D/cgood-short.json" --baseline "$D/b1-short.json" --min-requests 50
st_log "PASS"
