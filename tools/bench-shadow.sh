#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What `shadowtap shadow` costs production, and how fast `shadowtap replay --fast` goes
# (measured here, as root).
#
#   ST_BUILD=build tools/bench-shadow.sh [throughput] [replay]     (default: both)
#
# 1. throughput: production nginx (1 worker) on 127.0.0.1:80 and a shadow nginx on :8080 in one
#    network namespace; `wrk -t1 -c$CONNS -d${SECS}s` against a small file in rounds that
#    alternate the configurations in $ST_BENCH_CONFIGS (default: none shadow10 shadow100
#    tcpdump mirror): no agent; `shadowtap shadow --iface lo --port 80 --to 127.0.0.1:8080`
#    with --sample 10 and with everything; tcpdump writing a pcap; nginx's own `mirror`
#    directive (a proxy on :8000 mirroring to the same shadow; wrk loads the proxy);
#    compare10: --sample 10 with tap compare (--compare, a report and diffs written; the
#    shadow serves the same files as production, as a candidate that changed nothing would).
#    Reports each round, the medians and the ratios to the baseline.
# 2. replay: records $REPLAY_SECS s of wrk traffic with tcpdump, then `shadowtap replay --fast`
#    to the shadow nginx: requests/s and CPU time per request.
# Knobs: ST_BENCH_ROUNDS (5), ST_BENCH_SECS (5), ST_BENCH_CONNS (32), ST_BENCH_FILE (f100),
# ST_BENCH_CONFIGS, ST_BENCH_OUT (default $ST_BUILD/bench-shadow-report.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

ROUNDS=${ST_BENCH_ROUNDS:-5}
SECS=${ST_BENCH_SECS:-5}
CONNS=${ST_BENCH_CONNS:-32}
FILE=${ST_BENCH_FILE:-f100}
CONFIGS=${ST_BENCH_CONFIGS:-none shadow10 shadow100 tcpdump mirror}
REPLAY_SECS=${ST_BENCH_REPLAY_SECS:-3}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
OUT=${ST_BENCH_OUT:-$ST_BUILD/bench-shadow-report.md}
PARTS=${*:-throughput replay}

bench_require bench-shadow ip nginx wrk tcpdump bpftool python3

st_init
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
report() { printf '%s\n' "$*" | tee -a "$OUT"; }

export ST_NGINX_ACCESS_LOG=off
st_netns_single bench
NS=$ST_LAST_NS
st_nginx_start prod "$NS" 127.0.0.1:80
# the shadow serves production's files (the same answers, as an unchanged build would)
mkdir -p "$ST_TMP/shadow"
cp -a "$ST_TMP/prod/www" "$ST_TMP/shadow/www"
st_nginx_start shadow "$NS" 127.0.0.1:8080
URL=http://127.0.0.1/$FILE

# The mirroring proxy: nginx's `mirror` in front of production, mirroring to the shadow.
MD=$ST_TMP/mirror
mkdir -p "$MD/tmp"
cat >"$MD/nginx.conf" <<EON
daemon off;
worker_processes 1;
user root;
pid $MD/nginx.pid;
error_log $MD/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $MD/tmp/body;
	proxy_temp_path $MD/tmp/proxy;
	upstream prod { server 127.0.0.1:80; keepalive 64; }
	upstream shadow { server 127.0.0.1:8080; keepalive 64; }
	server {
		listen 127.0.0.1:8000;
		location / {
			mirror /mirror;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://prod;
		}
		location = /mirror {
			internal;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://shadow\$request_uri;
		}
	}
}
EON

wrk_run() {
	st_in "$NS" wrk -t1 -c"$1" -d"$2"s --timeout 5s "$3" | awk '/Requests\/sec/ { printf "%.0f\n", $2 }'
}

CFG_PID= CFG_ERR= CFG_URL=
agent_start() {
	local name=agent-$RANDOM i
	st_in_bg "$NS" "$ST_BIN" shadow --iface lo --port 80 --to 127.0.0.1:8080 "$@" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	CFG_PID=$!
	ST_PIDS+=("$CFG_PID")
	CFG_ERR=$ST_TMP/$name.err
	for i in $(seq 1 100); do
		st_agent_attached "$NS" lo "$CFG_PID" && { sleep 0.3; return 0; }
		sleep 0.1
	done
	cat "$CFG_ERR"
	st_fail "the agent did not attach"
}
cfg_none_start() { CFG_PID=; CFG_ERR=; }
cfg_shadow10_start() { agent_start --sample 10; }
cfg_shadow100_start() { agent_start; }
cfg_compare10_start() {
	agent_start --sample 10 --compare --report "$ST_TMP/cmp.html" --report-json "$ST_TMP/cmp.json" \
		--diffs "$ST_TMP/cmp.jsonl"
}
cfg_tcpdump_start() {
	# tcpdump as an operator runs it (buffered, block delivery), not the tests' reference
	# capture (st_tcpdump_start: immediate mode, a write per packet), which costs more.
	st_in_bg "$NS" tcpdump -i lo -s 0 -B 262144 -n -w "$ST_TMP/cap.pcap" 'tcp port 80' \
		>"$ST_TMP/tcpdump.out" 2>"$ST_TMP/tcpdump.err" </dev/null &
	CFG_PID=$! CFG_ERR=
	ST_PIDS+=("$CFG_PID")
	st_wait_log "$ST_TMP/tcpdump.err" 'listening on' 10
}
cfg_mirror_start() {
	st_bg mirror st_in_bg "$NS" nginx -c "$MD/nginx.conf" -p "$MD"
	CFG_PID=$ST_LAST_PID CFG_ERR= CFG_URL=http://127.0.0.1:8000/$FILE
	st_wait_port "$NS" 8000 10
}
cfg_stop() {
	[ -n "$CFG_PID" ] && { st_stop "$CFG_PID" INT || true; }
	rm -f "$ST_TMP/cap.pcap"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

report "# shadowtap bench-shadow, $(date -u '+%Y-%m-%d %H:%M UTC')"
report ""
report "Host: $(uname -r), $(nproc) CPUs, nginx $(nginx -v 2>&1 | sed 's|.*/||'); shadowtap $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($ST_BIN)"
report "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

part_throughput() {
	local r cfg rps summary extra cpu rep cmp
	report ""
	report "## Production throughput: wrk -t1 -c$CONNS -d${SECS}s $URL, $ROUNDS rounds"
	report ""
	report "| round | $(echo "$CONFIGS" | sed 's/ / | /g') |"
	report "|---$(for _ in $CONFIGS; do printf '|---'; done)|"
	wrk_run "$CONNS" 2 "$URL" >/dev/null
	for r in $(seq 1 "$ROUNDS"); do
		local row="| $r |"
		for cfg in $CONFIGS; do
			CFG_URL=
			"cfg_${cfg}_start"
			rps=$(wrk_run "$CONNS" "$SECS" "${CFG_URL:-$URL}")
			sleep 0.3
			cpu=
			# the agent's own CPU time (user + system, clock ticks) during the round
			[ -n "$CFG_ERR" ] && cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$CFG_PID/stat" 2>/dev/null || true)
			cfg_stop
			echo "$rps" >>"$ST_TMP/rps-$cfg"
			extra=""
			if [ -n "$CFG_ERR" ]; then
				summary=$(st_summary "$CFG_ERR")
				rep=$(st_summary_field "$summary" replayed)
				cmp=$(st_summary_field "$summary" compared)
				[ -n "$cmp" ] && cmp=", compared $cmp, not_compared $(st_summary_field "$summary" not_compared), differing $(st_summary_field "$summary" differing)"
				extra=" (replayed $rep$cmp, dropped $(st_summary_field "$summary" dropped), gaps_skipped $(st_summary_field "$summary" gaps_skipped), agent CPU ${cpu:-?} s = $(awk -v c="${cpu:-0}" -v r="$rps" -v s="$SECS" 'BEGIN { if (r > 0) printf "%.1f", c * 1e6 / (r * s); else print "?" }') µs per production request)"
			fi
			row+=" $rps$extra |"
			st_log "round $r $cfg: $rps req/s$extra" >&2
		done
		report "$row"
	done
	local base m
	base=$(median <"$ST_TMP/rps-none")
	report ""
	report "| configuration | median req/s | ratio to no agent |"
	report "|---|---|---|"
	for cfg in $CONFIGS; do
		m=$(median <"$ST_TMP/rps-$cfg")
		report "| $cfg | $m | $(awk -v m="$m" -v b="$base" 'BEGIN { if (b > 0) printf "%.3f", m / b; else print "-" }') |"
	done
}

part_replay() {
	local pcap=$ST_TMP/replay.pcap t summary req
	report ""
	report "## replay --fast: ${REPLAY_SECS} s of wrk -c$CONNS traffic recorded by tcpdump, replayed to the shadow nginx"
	st_tcpdump_start rec "$NS" lo "$pcap" 'tcp port 80'
	wrk_run "$CONNS" "$REPLAY_SECS" "$URL" >/dev/null
	sleep 0.5
	st_stop "$ST_TCPDUMP_PID" INT || true
	report ""
	report "pcap: $(stat -c %s "$pcap") bytes, $(st_pcap_packets "$pcap") packets"
	report ""
	report "| run | wall s | user s | sys s | requests | replayed | req/s | CPU µs/request |"
	report "|---|---|---|---|---|---|---|---|"
	for run in 1 2 3; do
		t=$( { /usr/bin/time -f '%e %U %S' ip netns exec "$NS" "$ST_BIN" replay "$pcap" --port 80 \
			--to 127.0.0.1:8080 --fast 2>"$ST_TMP/replay.err" >/dev/null; } 2>&1 | tail -n1)
		# /usr/bin/time writes after the program: its line is the last of replay.err
		t=$(tail -n1 "$ST_TMP/replay.err")
		summary=$(st_summary "$ST_TMP/replay.err")
		req=$(st_summary_field "$summary" requests)
		python3 - "$run" "$t" "$req" "$(st_summary_field "$summary" replayed)" <<'PY' | tee -a "$OUT"
import sys
run, t, req, rep = sys.argv[1], sys.argv[2].split(), int(sys.argv[3] or 0), int(sys.argv[4] or 0)
wall, user, sys_ = (float(x) for x in t)
print(f"| {run} | {wall:.2f} | {user:.2f} | {sys_:.2f} | {req} | {rep} | {rep / wall:.0f} | {(user + sys_) * 1e6 / max(rep, 1):.1f} |")
PY
	done
}

for part in $PARTS; do "part_$part"; done
report ""
report "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
report "(report written to $OUT)"
