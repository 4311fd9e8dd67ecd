# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# A real Prometheus (Debian's) for the tests, in the test's namespace on loopback, scraping
# one target every second with the shipped rules (tools/prometheus/shadowtap-rules.yml), and
# what the tests ask it (source after lib.sh).

PM_RULES=$ST_ROOT/tools/prometheus/shadowtap-rules.yml

# pm_start NS TARGET LISTEN: Prometheus in NS scraping TARGET (ADDR:PORT, honor_labels: its
# series keep their job label) every second, evaluating the rules every second, on LISTEN.
# Returns once it scrapes the target. PM_NS, PM_ADDR: where it is.
pm_start() {
	PM_NS=$1 PM_ADDR=$3
	cat >"$ST_TMP/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['$PM_RULES']
scrape_configs:
  - job_name: shadowtap
    honor_labels: true
    static_configs:
      - targets: ['$2']
EOC
	st_bg prometheus st_in_bg "$PM_NS" prometheus --config.file="$ST_TMP/prometheus.yml" \
		--storage.tsdb.path="$ST_TMP/tsdb" --web.listen-address="$PM_ADDR" --log.level=warn
	st_wait_port "$PM_NS" "${PM_ADDR##*:}" 20 "pid=$ST_LAST_PID,"
	for _ in $(seq 1 100); do [ "$(pv 'up{job="shadowtap"}')" = 1 ] && return 0; sleep 0.2; done
	cat "$ST_TMP/prometheus.log"
	st_fail "Prometheus does not scrape $2"
}

# pq EXPR: the instant query's result, one "label=value ... value" line per series
pq() {
	st_in "$PM_NS" python3 - "$PM_ADDR" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
u = "http://%s/api/v1/query?%s" % (sys.argv[1], urllib.parse.urlencode({"query": sys.argv[2]}))
r = json.load(urllib.request.urlopen(u, timeout=10))
for x in r["data"]["result"]:
    print(" ".join("%s=%s" % kv for kv in sorted(x["metric"].items())), x["value"][1])
PY
}

# pv EXPR: the single value of the query (empty when none)
pv() { pq "$1" | awk 'NR == 1 { print $NF }'; }

# between V LO HI: LO <= V <= HI (numbers; false when V is empty)
between() { python3 -c "import sys; v = float('$1'); sys.exit(0 if $2 <= v <= $3 else 1)" 2>/dev/null; }

# pm_input_series QUERY T0 T1: the series QUERY selects, sampled every second from T0 to T1
# (Unix seconds), as `promtool test rules` input series: one scrape a second of the run
# becomes one a minute of the test (the rules' 5-minute windows and `for` then fit in a run
# of seconds), "_" where a series had no sample yet.
pm_input_series() {
	st_in "$PM_NS" python3 - "$PM_ADDR" "$@" <<'PY'
import json, sys, urllib.parse, urllib.request
p, q, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = "http://%s/api/v1/query_range?%s" % (p, urllib.parse.urlencode(
    {"query": q, "start": t0, "end": t1, "step": "1s"}))
for s in json.load(urllib.request.urlopen(u, timeout=10))["data"]["result"]:
    vals = {int(float(t)): v for t, v in s["values"]}
    name = s["metric"].get("__name__", "")
    labels = ",".join('%s="%s"' % kv for kv in sorted(s["metric"].items()) if kv[0] != "__name__")
    print("      - series: '%s{%s}'" % (name, labels))
    print("        values: '%s'" % " ".join(vals.get(t, "_") for t in range(t0, t1 + 1)))
PY
}
