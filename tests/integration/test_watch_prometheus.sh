#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The daemon's [watch NAME] jobs scraped by a real Prometheus (Debian's), in the test's
# namespace on loopback, with the shipped rules (tools/prometheus/shadowtap-rules.yml):
#  - two groups of production: a canary nginx whose /flaky answers 500 for 3 requests in 10,
#    a baseline nginx 1 in 10; /steady 1 in 10 on both (the control); /slow ~50 ms; /api fast;
#    a watch job on each (label group=canary / group=baseline), one daemon, one tap;
#  - PromQL through Prometheus' HTTP API: the counters equal nginx's access logs, rate() is
#    the client's rate, the error ratios (the recording rule) are 0.3 and 0.1,
#    histogram_quantile() puts /slow's median above 40 ms and /api's below 5 ms;
#  - the canary alert is pending for /flaky and not for /steady;
#  - `promtool test rules` on the shipped rules with the series captured from this run (one
#    scrape a second taken as one a minute, so the 5-minute windows and `for` fit in the run):
#    the alert fires for /flaky, not for /steady, and not before its 5 minutes;
#  - `report --canary --prometheus` reads both groups from this Prometheus: fail on /flaky.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/watch_common.sh"
. "$(dirname "$0")/prom_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3 prometheus promtool
st_require_agent
st_init

st_netns_pair
wt_nginx canary "$ST_SRV_NS" 8081 '[036]$' 8091
wt_nginx baseline "$ST_SRV_NS" 8082 '0$' 8092
D=$ST_TMP
M=127.0.0.1:19467
P=127.0.0.1:19091

mkdir -p "$D/state"
cat >"$D/shadowtap.conf" <<EOF
[daemon]
metrics = $M
control = $D/ctl.sock
state-dir = $D/state

[watch web-canary]
iface = $ST_SRV_IF
port = 8081
label = group=canary
endpoint = * /flaky
endpoint = * /steady

[watch web-base]
iface = $ST_SRV_IF
port = 8082
label = group=baseline
endpoint = * /flaky
endpoint = * /steady
EOF
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$D/shadowtap.conf" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_port "$ST_SRV_NS" "${M##*:}" 10 "pid=$DPID,"
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" && break; sleep 0.1; done

pm_start "$ST_SRV_NS" "$M" "$P"
t0=$(date +%s)

st_log "25 s of traffic to both groups"
sent=$(wt_drive "$ST_CLI_NS" 25 "$ST_SRV4:8081" "$ST_SRV4:8082") || st_fail "the client failed"
t1=$(date +%s)
st_log "  $sent requests"

st_log "PromQL: rates, error ratios, quantiles, while the last samples are fresh"
rate=$(pv 'sum(rate(shadowtap_http_requests_total{group="canary"}[20s]))')
want=$(python3 -c "print($(grep -c . "$D/canary/access.log") / 25.0)")
st_log "  canary rate() $rate/s, the client's $want/s"
between "$rate" "$want * 0.6" "$want * 1.4" || st_fail "rate() says $rate/s, the client sent $want/s"
for q in 'canary /flaky 0.25 0.35' 'baseline /flaky 0.07 0.13' 'canary /steady 0.07 0.13' \
	'baseline /steady 0.07 0.13'; do
	set -- $q
	r=$(pv "endpoint:shadowtap_http_errors:ratio_rate5m{group=\"$1\",endpoint=\"$2\"}")
	st_log "  error ratio $1 $2: $r"
	between "$r" "$3" "$4" || st_fail "error ratio of $1 $2 is '$r', not in [$3, $4]"
done
q_slow=$(pv 'histogram_quantile(0.5, sum by (le) (rate(shadowtap_http_response_first_byte_seconds_bucket{endpoint="/slow"}[20s])))')
q_api=$(pv 'histogram_quantile(0.5, sum by (le) (rate(shadowtap_http_response_first_byte_seconds_bucket{endpoint="/api"}[20s])))')
p99=$(pv 'endpoint:shadowtap_http_response_first_byte_seconds:p99_rate5m{group="canary",endpoint="/slow"}')
st_log "  medians: /slow $q_slow s, /api $q_api s; /slow p99 (recorded) $p99 s"
between "$q_slow" 0.040 1 || st_fail "/slow's median $q_slow s is not above 40 ms"
between "$q_api" 0 0.005 || st_fail "/api's median $q_api s is not below 5 ms"
between "$p99" 0.040 1 || st_fail "/slow's recorded p99 is '$p99'"

st_log "the canary alert: pending for /flaky, not for /steady"
alerts=$(pq 'ALERTS{alertname="ShadowtapCanaryErrorRatioAboveBaseline"}')
echo "$alerts" | sed 's/^/  /'
grep -q 'endpoint=/flaky' <<<"$alerts" || st_fail "no canary alert for /flaky"
! grep -q 'endpoint=/steady' <<<"$alerts" || st_fail "a canary alert for /steady (the control)"

st_log "the counters equal nginx's access logs"
st_tcp_settle 8081 "$ST_SRV_NS" "$ST_CLI_NS"
for g in canary baseline; do
	want=$(grep -c . "$D/$g/access.log")
	got=
	for _ in $(seq 1 50); do
		got=$(pv "sum(shadowtap_http_requests_total{group=\"$g\"})")
		[ "$got" = "$want" ] && break
		sleep 0.2
	done
	st_log "  $g: Prometheus $got, nginx $want"
	[ "$got" = "$want" ] || st_fail "$g: Prometheus has $got requests, nginx logged $want"
done

st_log "promtool test rules, with the series of this run"
{
	printf "rule_files: ['%s']\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n" "$PM_RULES"
	pm_input_series 'shadowtap_http_requests_total{endpoint=~"/flaky|/steady"}' "$t0" "$t1"
	cat <<EOF
    alert_rule_test:
      - eval_time: 4m
        alertname: ShadowtapCanaryErrorRatioAboveBaseline
        exp_alerts: []
      - eval_time: $((t1 - t0))m
        alertname: ShadowtapCanaryErrorRatioAboveBaseline
        exp_alerts:
          - exp_labels: {severity: page, endpoint: /flaky}
            exp_annotations:
              summary: "canary error ratio above baseline on /flaky"
              description: "The canary answers /flaky with 5xx more often than 1.5 x the baseline's ratio + 1 point, for 5 minutes."
EOF
} >"$D/rules_test.yml" || st_fail "could not capture the series"
st_log "  $(grep -c 'series:' "$D/rules_test.yml") series, $((t1 - t0 + 1)) samples each"
out=$(promtool test rules "$D/rules_test.yml" 2>&1) || { echo "$out"; head -c 2000 "$D/rules_test.yml"; st_fail "promtool test rules failed"; }
st_log "  $(tail -n1 <<<"$out")"

st_log "report --canary from this Prometheus: fail on /flaky, not on /steady"
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" report --prometheus "http://$P" --canary-selector 'group="canary"' \
	--baseline-selector 'group="baseline"' --window 2m --report-json "$D/verdict.json" \
	>"$D/verdict.out" 2>&1 || rc=$?
sed 's/^/  /' "$D/verdict.out"
[ "$rc" -eq 3 ] || st_fail "report --canary --prometheus exited $rc, not 3 (fail)"
python3 - "$D/verdict.json" <<'PY' || st_fail "the verdict from Prometheus is wrong (above)"
import json, sys
r = json.load(open(sys.argv[1]))
eps = {e["endpoint"]: e for e in r["endpoints"]}
assert eps["GET /flaky"]["verdict"] == "fail", eps["GET /flaky"]
assert eps["GET /steady"]["verdict"] == "pass", eps["GET /steady"]
assert 0.25 < eps["GET /flaky"]["error_ratio"][0] < 0.35, eps["GET /flaky"]
assert r["groups"]["canary"]["files"][0].startswith("http://"), r["groups"]
PY

st_stop "$DPID" TERM || { cat "$D/daemon.err"; st_fail "the daemon did not stop cleanly"; }
st_log "PASS"
