#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What `shadowtap shadow` costs production when production speaks HTTP/2, measured here (as
# root), on a veth pair and on loopback, every configuration against no agent in the same run
# (tools/bench-prod.sh's method, h2load for wrk):
#
#   ST_BUILD=build tools/bench-h2.sh            (ST_BENCH_QUICK=1: 3 rounds of 3 s)
#
# Stage, per link (ST_BENCH_LINKS, default "veth lo"): production nginx (1 worker) speaking
# h2c (listen ... http2) answers GET /api.json (~120 B of JSON); h2load -t1 -c$CONNS -m$STREAMS
# loads it (veth: from a client namespace; lo: in the same one). A no-op HTTP/2 shadow (nginx
# h2c answering 204) listens on 127.0.0.1:8080 in the production namespace.
# Configurations (ST_BENCH_CONFIGS, default "shadow10 shadow100"): `shadowtap shadow --iface IF
# --port 80 --to 127.0.0.1:8080 --sample N`. Each round runs no agent, then every
# configuration with a no-agent run after it, the order rotating from round to round; a
# configuration's ratio in a round is its req/s over the mean of the two no-agent runs around
# it; reported: the median ratio over the rounds, the median req/s, and the agent's CPU
# (utime + stime) per production stream. Then, for the engines' own cost side by side, one
# run of each at 100% (HTTP/2 through h2load, HTTP/1.1 through wrk against a second
# nginx on port 81, shadowed to a no-op HTTP/1 nginx): agent CPU per request.
# Knobs: ST_BENCH_ROUNDS (5), ST_BENCH_SECS (4), ST_BENCH_CONNS (50), ST_BENCH_STREAMS (8),
# ST_BENCH_LINKS, ST_BENCH_CONFIGS, ST_BENCH_QUICK=1, ST_BENCH_OUT (report, default
# $ST_BUILD/bench-h2.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

bench_knobs
CONNS=${ST_BENCH_CONNS:-50}
STREAMS=${ST_BENCH_STREAMS:-8}
LINKS=${ST_BENCH_LINKS:-veth lo}
CONFIGS=${ST_BENCH_CONFIGS:-shadow10 shadow100}

bench_require bench-h2 ip nginx h2load wrk bpftool

st_init
bench_report_open bench-h2

export ST_NGINX_ACCESS_LOG=off
JSON='{"id":4711,"name":"shadowtap","status":"ok","items":[1,2,3,5,8,13],"ts":"2026-11-26T10:00:00Z"}'

# production: nginx speaking h2c on :80, and (the engines side by side) one speaking
# HTTP/1.1 on :81, the same answer
prod_start() { # NAME NS LISTEN80 LISTEN81
	ST_NGINX_LISTEN_OPTS=http2 ST_NGINX_KEEPALIVE_REQUESTS=1000000 st_nginx_start "$1" "$2" "$3"
	printf '%s\n' "$JSON" >"$ST_TMP/$1/www/api.json"
	ST_NGINX_KEEPALIVE_REQUESTS=1000000 st_nginx_start "$1-h1" "$2" "$4"
	printf '%s\n' "$JSON" >"$ST_TMP/$1-h1/www/api.json"
}

declare -A L_SRV L_CLI L_IF L_HOST
for link in $LINKS; do
	case $link in
	veth)
		st_netns_pair
		L_SRV[veth]=$ST_SRV_NS L_CLI[veth]=$ST_CLI_NS L_IF[veth]=$ST_SRV_IF L_HOST[veth]=$ST_SRV4
		prod_start prod-veth "$ST_SRV_NS" "$ST_SRV4:80" "$ST_SRV4:81"
		noop_shadow shadow-veth "$ST_SRV_NS" "127.0.0.1:8080 http2" 127.0.0.1:8081
		;;
	lo)
		st_netns_single lo
		L_SRV[lo]=$ST_LAST_NS L_CLI[lo]=$ST_LAST_NS L_IF[lo]=lo L_HOST[lo]=127.0.0.1
		prod_start prod-lo "$ST_LAST_NS" 127.0.0.1:80 127.0.0.1:81
		noop_shadow shadow-lo "$ST_LAST_NS" "127.0.0.1:8080 http2" 127.0.0.1:8081
		;;
	*) echo "shadowtap bench-h2: unknown link '$link' (veth, lo)" >&2; exit 2 ;;
	esac
done

CFG_PID= CFG_ERR=
agent_start() { bench_agent_start "$ST_BIN" shadow "$@"; } # shadow on the link's interface
cfg_none() { CFG_PID= CFG_ERR=; }
cfg_shadow10() { agent_start --port 80 --to 127.0.0.1:8080 --sample 10; }
cfg_shadow100() { agent_start --port 80 --to 127.0.0.1:8080; }
cfg_stop() { [ -z "$CFG_PID" ] || st_stop "$CFG_PID" INT || true; }

# bench_load URL: "requests requests/s" of one h2load run (fails unless every request
# succeeded).
bench_load() {
	local out
	out=$(st_in "$CLI_NS" timeout $((SECS + 30)) h2load -t1 -c"$CONNS" -m"$STREAMS" -D "$SECS" "$1")
	grep -qE '^requests: .* 0 failed, 0 errored, 0 timeout' <<<"$out" ||
		{ echo "$out" >&2; st_fail "h2load: production failed requests"; }
	awk '/^requests:/ { n = $2 } /^finished in/ { r = $4 } END { printf "%d %.0f\n", n, r }' <<<"$out"
}

bench_note() { # bench_note CFG ERRFILE: what the shadow did, from its summary line
	local s
	s=$(st_summary "$2")
	echo "replayed $(st_summary_field "$s" replayed), dropped $(st_summary_field "$s" dropped), h2_errors $(st_summary_field "$s" h2_errors)"
}

bench_report_head bench-h2 "$(h2load --version | head -n1)" "" \
	"h2load -t1 -c$CONNS -m$STREAMS -D $SECS"

for link in $LINKS; do
	bench_link "$link"
	report ""
	report "## $link: $URL (h2c)"
	report ""
	bench_load "$URL" >/dev/null
	bench_rounds "$link"
	report ""
	report "| configuration | median req/s | median ratio to no agent (neighbouring runs) | agent CPU µs per production stream (median) |"
	report "|---|---|---|---|"
	report "| none | $(median <"$D/rps-none") | 1 | - |"
	for cfg in $CONFIGS; do
		report "| $cfg | $(median <"$D/rps-$cfg") | $(median <"$D/ratios-$cfg" | awk '{ printf "%.3f", $1 }') | $(median <"$D/cpu-$cfg" 2>/dev/null || echo -) |"
	done
done

# The engines side by side: the agent's CPU per request at 100%, HTTP/2 and HTTP/1.1.
link=${LINKS%% *}
bench_link "$link"
report ""
report "## The engines' own cost at 100% ($link): agent CPU per request"
report ""
report "| engine | load | requests | replayed | agent CPU s | µs per request |"
report "|---|---|---|---|---|---|"
for eng in h2 h1; do
	if [ "$eng" = h2 ]; then
		agent_start --port 80 --to 127.0.0.1:8080
		c0=$(cpu_s "$CFG_PID")
		read -r reqs _ <<<"$(bench_load "http://${L_HOST[$link]}/api.json")"
		what="h2load -c$CONNS -m$STREAMS"
	else
		agent_start --port 81 --to 127.0.0.1:8081
		c0=$(cpu_s "$CFG_PID")
		reqs=$(st_in "$CLI_NS" wrk -t1 -c32 -d"$SECS"s --timeout 5s "http://${L_HOST[$link]}:81/api.json" |
			awk '/requests in/ { print $1 }')
		what="wrk -c32"
	fi
	cpu=$(awk -v a="$(cpu_s "$CFG_PID")" -v b="$c0" 'BEGIN { printf "%.3f", a - b }')
	cfg_stop
	s=$(st_summary "$CFG_ERR")
	report "| $eng | $what | $reqs | $(st_summary_field "$s" replayed) | $cpu | $(awk -v c="$cpu" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "-" }') |"
done
report ""
report "(report: $OUT)"
