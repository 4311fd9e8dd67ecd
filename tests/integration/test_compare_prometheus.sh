#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Tap compare's verdicts in Prometheus while it runs: a daemon [shadow] job with --compare
# and a reference (production's build), scraped by a real Prometheus (Debian's) on loopback
# with the shipped rules. The candidate differs from production in $.price of
# GET /api/price/{id}; GET /api/session answers a new id every time on every side (noise).
#  - PromQL: the regression gauge is 1 for the price endpoint and 0 for the session one, the
#    worst field's series names $.price, the pair counts by result add up to what the
#    summary line says, the latency histograms exist per side;
#  - the rollout gate's "no regression for the window" holds for the session endpoint only;
#  - the alert ShadowtapCandidateRegression is pending for the price endpoint only;
#  - `promtool test rules` on the shipped rules with this run's series: it fires for the
#    price endpoint, not for the session one, and not before its 5 minutes;
#  - shadow's --metrics file (the command) carries the same families and passes
#    `promtool check metrics`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prom_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3 prometheus promtool
st_require_agent
st_init

session='location = /api/session { default_type application/json;
			return 200 "{\"user\": \"ada\", \"id\": \"$request_id\"}"; }'
price() { printf 'location /api/price/ { default_type application/json; return 200 "{\\"sku\\": \\"$uri\\", \\"price\\": %s}"; }' "$1"; }
st_netns_pair
for n in prod ref cand; do mkdir -p "$ST_TMP/$n/www" && : >"$ST_TMP/$n/www/f1"; done
ST_NGINX_LOCATIONS="$session $(price 12.5)" st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
ST_NGINX_LOCATIONS="$session $(price 12.5)" st_nginx_start ref "$ST_SRV_NS" 127.0.0.1:8081
ST_NGINX_LOCATIONS="$session $(price 13)" st_nginx_start cand "$ST_SRV_NS" 127.0.0.1:8082
D=$ST_TMP
M=127.0.0.1:19468
P=127.0.0.1:19092

mkdir -p "$D/state"
cat >"$D/shadowtap.conf" <<EOF
[daemon]
metrics = $M
control = $D/ctl.sock
state-dir = $D/state

[shadow release]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:8082
reference = 127.0.0.1:8081
metrics = release.prom
EOF
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$D/shadowtap.conf" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_port "$ST_SRV_NS" "${M##*:}" 10 "pid=$DPID,"
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" && break; sleep 0.1; done
pm_start "$ST_SRV_NS" "$M" "$P"
t0=$(date +%s)

st_log "20 s of traffic: two endpoints, paced"
st_in "$ST_CLI_NS" timeout 60 python3 - "$ST_SRV4" 20 <<'PY' || st_fail "the client failed"
import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
end, k = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    k += 1
    for p in ("/api/price/%d" % k, "/api/session"):
        c.request("GET", p)
        c.getresponse().read()
    time.sleep(0.02)
PY
t1=$(date +%s)

PRICE='endpoint="GET /api/price/{id}"'
SESSION='endpoint="GET /api/session"'
st_log "PromQL: the verdicts"
r_price=$(pv "shadowtap_compare_regressions{$PRICE}")
r_session=$(pv "shadowtap_compare_regressions{$SESSION}")
st_log "  regressions: price $r_price, session $r_session"
[ "$r_price" = 1 ] && [ "$r_session" = 0 ] || st_fail "the regression gauges are wrong"
field=$(pq 'shadowtap_compare_field_regression_ratio')
echo "$field" | sed 's/^/  /'
grep -q 'field=\$\.price' <<<"$field" && [ "$(wc -l <<<"$field")" -eq 1 ] || st_fail "the worst field is not \$.price alone"
between "$(pv "shadowtap_compare_field_regression_ratio{$PRICE}")" 0.99 1 || st_fail "\$.price does not differ in every pair"
for side in production candidate reference; do
	n=$(pv "sum(shadowtap_compare_latency_seconds_count{side=\"$side\"})")
	[ "${n:-0}" -gt 0 ] 2>/dev/null || st_fail "no latency histogram of the $side"
done
gate=$(pq 'max_over_time(shadowtap_compare_regressions[1m]) == 0')
st_log "  the rollout gate, no regression in the window:"
echo "$gate" | sed 's/^/  /'
grep -q 'endpoint=GET /api/session' <<<"$gate" && ! grep -q 'price' <<<"$gate" || st_fail "the gate passes the wrong endpoints"
alerts=$(pq 'ALERTS{alertname="ShadowtapCandidateRegression"}')
echo "$alerts" | sed 's/^/  /'
grep -q 'price' <<<"$alerts" && ! grep -q 'session' <<<"$alerts" || st_fail "the alert is not pending for the price endpoint alone"

st_log "promtool test rules, with the series of this run"
{
	printf "rule_files: ['%s']\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n" "$PM_RULES"
	pm_input_series 'shadowtap_compare_regressions' "$t0" "$t1"
	cat <<EOF
    alert_rule_test:
      - eval_time: 4m
        alertname: ShadowtapCandidateRegression
        exp_alerts: []
      - eval_time: $((t1 - t0))m
        alertname: ShadowtapCandidateRegression
        exp_alerts:
          - exp_labels: {severity: ticket, job: release, command: shadow, endpoint: "GET /api/price/{id}"}
            exp_annotations:
              summary: "candidate regression on GET /api/price/{id}"
              description: "Tap compare finds fields of GET /api/price/{id} where the candidate differs from production more often than the reference does, for 5 minutes (the compare report names them)."
EOF
} >"$D/rules_test.yml" || st_fail "could not capture the series"
out=$(promtool test rules "$D/rules_test.yml" 2>&1) || { echo "$out"; head -c 2000 "$D/rules_test.yml"; st_fail "promtool test rules failed"; }
st_log "  $(tail -n1 <<<"$out")"

st_log "the pair counts add up; the job's --metrics file"
st_stop "$DPID" TERM || { cat "$D/daemon.err"; st_fail "the daemon did not stop cleanly"; }
summary=$(grep -E 'summary job=release' "$D/daemon.err" | tail -n1)
compared=$(st_summary_field "$summary" compared)
F=$D/state/release.prom
out=$(promtool check metrics <"$F" 2>&1) && [ -z "$out" ] || { echo "$out"; st_fail "promtool check metrics on the job's --metrics file"; }
sum=$(awk '/^shadowtap_compare_pairs_total\{/ && !/not_compared/ { n += $NF } END { print n + 0 }' "$F")
st_log "  summary compared=$compared; the file's pairs (but not_compared) $sum"
[ "$sum" -eq "$compared" ] && [ "$compared" -gt 100 ] || st_fail "the pair counts do not add up"
grep -q '^shadowtap_compare_regressions{command="shadow",endpoint="GET /api/price/{id}"} 1$' "$F" ||
	st_fail "the --metrics file has no regression for the price endpoint"
st_log "PASS"
