#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `make bench`: what shadowtap capture costs production, measured here (as root).
#
#   ST_BUILD=build tools/bench.sh [throughput] [bpfcost] [loss] [progcost] [stall]
#                                          (default: throughput bpfcost loss)
#
# 1. throughput: nginx (1 worker) and wrk in one network namespace over loopback;
#    `wrk -t1 -c$CONNS -d${SECS}s` against a small file, in rounds that alternate the
#    configurations in $ST_BENCH_CONFIGS (default: none shadowtap shadowtap_cgroup tcpdump):
#    no capture, `shadowtap capture --iface lo --port 80 -w FILE`, the same with --cgroup
#    (nginx's own cgroup), `tcpdump -i lo -w FILE 'tcp port 80'`.
#    Reports each round, the medians and the ratios to the baseline.
# 2. bpfcost: the BPF programs' own cost from the kernel's statistics
#    (sysctl kernel.bpf_stats_enabled=1; bpftool prog: run_time_ns / run_cnt), for small
#    responses and for downloads paced below the loss threshold (ST_BENCH_LARGE_MBPS, 200
#    MB/s; 64 KB GSO super-packets on loopback), so that every super-packet is copied.
# 3. loss: with the default ring size, a ramp of heavier loads; the highest at which the
#    summary line says lost=0.
# 4. progcost: what each path of the program costs in isolation (build/tools/progcost:
#    bpf_prog_test_run_opts on crafted frames), with the default ring and an 8 MiB one.
# 5. stall: the programs' cost per run while the agent is stopped (SIGSTOP) and records pile
#    up in the ring (wrk -c$CONNS for ST_BENCH_STALL_SECS, 2): a slow agent must not make
#    production pay more per packet. ST_BENCH_BASE_BIN=OTHER/shadowtap alternates with
#    another build (before/after).
# Knobs (environment): ST_BENCH_ROUNDS (5), ST_BENCH_SECS (5), ST_BENCH_CONNS (32),
# ST_BENCH_FILE (f100: a 100-byte file), ST_BENCH_CONFIGS, ST_BENCH_OUT (report file,
# default $ST_BUILD/bench-report.md), ST_BENCH_LINK=veth to measure across a veth pair
# instead (capture on the server's veth), ST_BENCH_AGENT_ARGS (extra arguments for every
# shadowtap capture, e.g. "--ring-mb 64").
#
# Adding a peer (tcpflow, nginx mirror, GoReplay ...): define cfg_NAME_start (start it, wait
# until it is ready; set CFG_PID, and CFG_ERR to a file holding its stderr) and optionally
# cfg_NAME_stop (default: SIGINT to CFG_PID and wait), then list NAME in ST_BENCH_CONFIGS.
# A configuration that puts a proxy in the path sets CFG_URL to the URL wrk must load.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"

ROUNDS=${ST_BENCH_ROUNDS:-5}
SECS=${ST_BENCH_SECS:-5}
CONNS=${ST_BENCH_CONNS:-32}
FILE=${ST_BENCH_FILE:-f100}
CONFIGS=${ST_BENCH_CONFIGS:-none shadowtap shadowtap_cgroup tcpdump}
LINK=${ST_BENCH_LINK:-lo}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
OUT=${ST_BENCH_OUT:-$ST_BUILD/bench-report.md}
PARTS=${*:-throughput bpfcost loss}
read -r -a AGENT_ARGS <<<"${ST_BENCH_AGENT_ARGS:-}"

[ "$(id -u)" -eq 0 ] || { echo "shadowtap bench: run as root" >&2; exit 1; }
for c in ip nginx wrk tcpdump bpftool python3 sysctl; do
	command -v "$c" >/dev/null || { echo "shadowtap bench: missing $c (tools/install-deps.sh)" >&2; exit 1; }
done
[ -n "${ST_FAKE_AGENT:-}" ] || [ -x "$ST_BIN" ] || { echo "shadowtap bench: $ST_BIN not found (make)" >&2; exit 1; }

st_init
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
report() { printf '%s\n' "$*" | tee -a "$OUT"; }

# ---- the stage ---------------------------------------------------------------------------
# Access logging off: it is not what is measured, and it would grow by millions of lines.
export ST_NGINX_ACCESS_LOG=off
# nginx runs in its own cgroup (when cgroup v2 is mounted), for the --cgroup configuration.
BENCH_CG=
if [ -n "$(st_cgroup2_root)" ]; then
	st_cgroup_create bench
	BENCH_CG=$ST_LAST_CGROUP
	export ST_NGINX_CGROUP=$BENCH_CG
fi
if [ "$LINK" = veth ]; then
	st_netns_pair
	SRV_NS=$ST_SRV_NS CLI_NS=$ST_CLI_NS IFACE=$ST_SRV_IF HOST=$ST_SRV4
	st_nginx_start bench "$SRV_NS" 80
else
	st_netns_single bench
	SRV_NS=$ST_LAST_NS CLI_NS=$ST_LAST_NS IFACE=lo HOST=127.0.0.1
	st_nginx_start bench "$SRV_NS" 127.0.0.1:80
fi
URL=http://$HOST/$FILE

# wrk_run CONNS SECS URL: prints "requests/s MB/s" of one wrk run.
wrk_run() {
	st_in "$CLI_NS" wrk -t1 -c"$1" -d"$2"s --timeout 5s "$3" | awk '
		/Requests\/sec/ { r = $2 }
		/Transfer\/sec/ { v = $2; if (v ~ /GB/) m = v * 1024; else if (v ~ /MB/) m = v + 0; else if (v ~ /KB/) m = v / 1024; else m = v / 1048576 }
		END { printf "%.0f %.1f\n", r, m }'
}

# ---- configurations ----------------------------------------------------------------------
CFG_PID='' CFG_ERR='' CFG_URL=
cfg_none_start() { CFG_PID=; CFG_ERR=; }
cfg_none_stop() { :; }
cfg_shadowtap_start() {
	st_capture_start "agent-$RANDOM" "$SRV_NS" "$IFACE" "$ST_TMP/cap.pcap" --port 80 "${AGENT_ARGS[@]}" "$@"
	CFG_PID=$ST_AGENT_PID
	CFG_ERR=$(ls -t "$ST_TMP"/agent-*.err | head -n1)
}
# --cgroup mode: cgroup_skb programs on nginx's cgroup (the agent runs outside the namespace).
cfg_shadowtap_cgroup_start() {
	[ -n "$BENCH_CG" ] || { echo "shadowtap bench: no cgroup v2 for shadowtap_cgroup" >&2; return 1; }
	st_capture_start "agent-$RANDOM" "" "$BENCH_CG" "$ST_TMP/cap.pcap" --port 80 "${AGENT_ARGS[@]}"
	CFG_PID=$ST_AGENT_PID
	CFG_ERR=$(ls -t "$ST_TMP"/agent-*.err | head -n1)
}
cfg_shadowtap_cgroup_stop() { st_stop "$CFG_PID" INT || true; }
cfg_tcpdump_start() {
	st_tcpdump_start "tcpdump-$RANDOM" "$SRV_NS" "$IFACE" "$ST_TMP/cap.pcap" 'tcp port 80'
	CFG_PID=$ST_TCPDUMP_PID
	CFG_ERR=$(ls -t "$ST_TMP"/tcpdump-*.err | head -n1)
}
# tcpflow reassembling live to files: a peer for later comparison (not in the default list).
cfg_tcpflow_start() {
	mkdir -p "$ST_TMP/tcpflow"
	st_bg tcpflow st_in_bg "$SRV_NS" tcpflow -i "$IFACE" -o "$ST_TMP/tcpflow" 'tcp port 80'
	CFG_PID=$ST_LAST_PID CFG_ERR=$ST_TMP/tcpflow.log
	sleep 1
}
cfg_tcpflow_stop() { st_stop "$CFG_PID" INT || true; rm -rf "$ST_TMP/tcpflow"; }

cfg_start() {
	CFG_URL=
	"cfg_$1_start"
}
cfg_stop() {
	if declare -F "cfg_$1_stop" >/dev/null; then "cfg_$1_stop"; elif [ -n "$CFG_PID" ]; then st_stop "$CFG_PID" INT || true; fi
	rm -f "$ST_TMP/cap.pcap"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

host_line() {
	echo "$(uname -r), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), nginx $(nginx -v 2>&1 | sed 's|.*/||'), wrk, $(tcpdump --version 2>&1 | head -n1)"
}

report "# shadowtap bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
report ""
report "Host: $(host_line)"
report "shadowtap: $ST_BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))${ST_FAKE_AGENT:+ (FAKE: $ST_FAKE_AGENT stands in for the agent)}"
report "Link: $LINK (nginx 1 worker; wrk in the same namespace${LINK:+ over $IFACE})"
report "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host makes figures noisy)"

# ---- 1. throughput -------------------------------------------------------------------------
part_throughput() {
	local r cfg res rps mbs lost pk summary
	report ""
	report "## Production throughput: wrk -t1 -c$CONNS -d${SECS}s $URL, $ROUNDS rounds"
	report ""
	report "| round | $(echo "$CONFIGS" | sed 's/ / | /g') |"
	report "|---$(for _ in $CONFIGS; do printf '|---'; done)|"
	st_log "warm-up" >&2
	wrk_run "$CONNS" 2 "$URL" >/dev/null
	for r in $(seq 1 "$ROUNDS"); do
		local row="| $r |"
		for cfg in $CONFIGS; do
			cfg_start "$cfg"
			res=$(wrk_run "$CONNS" "$SECS" "${CFG_URL:-$URL}")
			rps=${res% *}
			sleep 0.3
			cfg_stop "$cfg"
			echo "$rps" >>"$ST_TMP/rps-$cfg"
			extra=""
			if [ "${cfg#shadowtap}" != "$cfg" ] && [ -n "$CFG_ERR" ]; then
				summary=$(st_summary "$CFG_ERR")
				lost=$(st_summary_field "$summary" lost)
				pk=$(st_summary_field "$summary" packets)
				extra=" (${pk:-?} pkts, lost ${lost:-?})"
			fi
			row+=" $rps$extra |"
			st_log "round $r $cfg: $rps req/s$extra" >&2
		done
		report "$row"
	done
	local base
	base=$(median <"$ST_TMP/rps-none" 2>/dev/null || echo 0)
	report ""
	report "| configuration | median req/s | ratio to no capture |"
	report "|---|---|---|"
	for cfg in $CONFIGS; do
		local m
		m=$(median <"$ST_TMP/rps-$cfg")
		report "| $cfg | $m | $(awk -v m="$m" -v b="$base" 'BEGIN { if (b > 0) printf "%.3f", m / b; else print "-" }') |"
	done
}

# ---- 2. BPF per-packet cost ------------------------------------------------------------------
# prog_stats: "id name run_cnt run_time_ns" of the running agent's programs (tc_*,
# cgroup_skb_*): their ids from the fds it holds (bpftool 7.1 does not list TCX in `net show`).
prog_stats() {
	local ids
	ids=$(cat /proc/"$CFG_PID"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u | tr '\n' ' ')
	[ -n "$ids" ] || return 0
	# shellcheck disable=SC2086
	bpftool -j prog show | python3 -c '
import json, sys
want = set(int(x) for x in sys.argv[1:])
for p in json.load(sys.stdin):
    if p["id"] in want and (p.get("name", "").startswith("tc_") or p.get("name", "").startswith("cgroup_skb")):
        print(p["id"], p.get("name"), p.get("run_cnt", 0), p.get("run_time_ns", 0))' $ids
}

bpf_cost_case() {
	local label=$1 conns=$2 file=$3 cfg=${4:-shadowtap} res before after
	"cfg_${cfg}_start"
	before=$(prog_stats)
	if [ "$conns" = rate ]; then
		# Paced downloads ($file MB/s in total), below the loss threshold: every super-packet
		# is copied, none skipped as lost.
		local t0 t1
		t0=$(date +%s%N)
		rate_run "$file"
		t1=$(date +%s%N)
		res="- $(awk -v r="$file" 'BEGIN { print r }')"
	else
		res=$(wrk_run "$conns" "$SECS" "http://$HOST/$file")
	fi
	after=$(prog_stats)
	cfg_stop "$cfg"
	local summary
	summary=$(st_summary "$CFG_ERR")
	python3 - "$label" "$res" "$before" "$after" "$summary" <<'PY' | tee -a "$OUT"
import re, sys
label, res, before, after, summary = sys.argv[1:6]
b = {l.split()[0]: l.split() for l in before.splitlines() if l.strip()}
a = {l.split()[0]: l.split() for l in after.splitlines() if l.strip()}
rps, mbs = res.split()
load = f"{rps} req/s, {mbs} MB/s" if rps != "-" else f"paced downloads, {mbs} MB/s"
m = re.search(r"bytes=(\d+)", summary)
sbytes = int(m.group(1)) if m else 0
for pid, row in sorted(a.items()):
    cnt = int(row[2]) - (int(b[pid][2]) if pid in b else 0)
    ns = int(row[3]) - (int(b[pid][3]) if pid in b else 0)
    per = ns / cnt if cnt else 0
    extra = ""
    if "egress" in row[1] and cnt and sbytes:
        extra = f" (~{sbytes / cnt / 1024:.1f} KB payload per run)"
    print(f"| {label} | {row[1]} | {cnt} | {per:.0f}{extra} | {load} |")
if not a:
    print(f"| {label} | (no shadowtap program found on the interface) | - | - | {rps} req/s |")
PY
	[ -z "$summary" ] || report "|  | summary: \`${summary#shadowtap: summary }\` | | | |"
}

part_bpfcost() {
	local old
	[ -z "${ST_FAKE_AGENT:-}" ] || { report ""; report "(bpfcost skipped: fake agent)"; return 0; }
	old=$(sysctl -n kernel.bpf_stats_enabled)
	st_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$old"
	sysctl -qw kernel.bpf_stats_enabled=1
	report ""
	report "## BPF programs' own cost (kernel.bpf_stats_enabled=1, run_time_ns / run_cnt)"
	report ""
	report "| workload | program | runs | ns per run | load |"
	report "|---|---|---|---|---|"
	bpf_cost_case "small: wrk -c$CONNS, $FILE" "$CONNS" "$FILE"
	bpf_cost_case "large: 4 paced downloads, 64 KB super-packets" rate "${ST_BENCH_LARGE_MBPS:-200}"
	if [ -n "$BENCH_CG" ]; then
		bpf_cost_case "--cgroup, small: wrk -c$CONNS, $FILE" "$CONNS" "$FILE" shadowtap_cgroup
		bpf_cost_case "--cgroup, large: 4 paced downloads" rate "${ST_BENCH_LARGE_MBPS:-200}" shadowtap_cgroup
	fi
	sysctl -qw kernel.bpf_stats_enabled="$old"
}

# ---- 3. loss probe ---------------------------------------------------------------------------
# rate_run MBPS: 4 parallel downloads of a (sparse) 8 GB file, each limited to MBPS/4, for 4 s.
# One long transfer each: curl paces its reads, and after the receive buffer has filled once
# (a few MB) TCP paces the sender. (Short files would arrive at full speed into the buffer.)
rate_run() {
	local per=$(( $1 * 1024 / 4 )) i pids=()
	[ -f "$ST_TMP/bench/www/big" ] || truncate -s 8G "$ST_TMP/bench/www/big"
	for i in 1 2 3 4; do
		st_in "$CLI_NS" timeout 4 curl -s --limit-rate "${per}K" -o /dev/null "http://$HOST/big" &
		pids+=($!)
	done
	# Only these: a bare `wait` would also wait for nginx.
	wait "${pids[@]}" 2>/dev/null || true
}

part_loss() {
	local step conns file res summary lost pk best="" rate t0 t1 by
	report ""
	report "## Loss probe: default ring size (--ring-mb default), until the summary says lost > 0"
	report ""
	report "Request rate (wrk -t1 -d3s, maximum rate):"
	report ""
	report "| load | req/s | MB/s | packets | lost bytes |"
	report "|---|---|---|---|---|"
	for step in 32:f100 128:f100 32:f4096 32:f16384 32:f65536 4:f1048576; do
		conns=${step%%:*} file=${step#*:}
		cfg_shadowtap_start
		res=$(wrk_run "$conns" 3 "http://$HOST/$file")
		sleep 0.3
		cfg_stop shadowtap
		summary=$(st_summary "$CFG_ERR")
		lost=$(st_summary_field "$summary" lost)
		pk=$(st_summary_field "$summary" packets)
		report "| wrk -c$conns $file | ${res% *} | ${res#* } | ${pk:-?} | ${lost:-?} |"
	done
	report ""
	report "Throughput (4 curl downloads, each --limit-rate of a quarter of the total, 4 s):"
	report ""
	report "| curl limit, MB/s total | captured MB/s (both directions) | packets | lost bytes |"
	report "|---|---|---|---|"
	for rate in ${ST_BENCH_RATES:-50 100 150 200 300 400 600 800 1000 1500}; do
		cfg_shadowtap_start
		t0=$(date +%s%N)
		rate_run "$rate"
		t1=$(date +%s%N)
		cfg_stop shadowtap
		summary=$(st_summary "$CFG_ERR")
		lost=$(st_summary_field "$summary" lost)
		pk=$(st_summary_field "$summary" packets)
		by=$(st_summary_field "$summary" bytes)
		local got
		got=$(awk -v b="${by:-0}" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }')
		report "| $rate | $got | ${pk:-?} | ${lost:-?} |"
		if [ "${lost:-1}" = 0 ]; then best="$got MB/s (curl limit $rate MB/s)"; else break; fi
	done
	report ""
	report "Highest throughput captured with lost=0: ${best:-none}"
}

# ---- 5. the programs while the agent is stalled ---------------------------------------------
part_stall() {
	local old r bin bins=("$ST_BIN") s0 s1 res summary lost secs=${ST_BENCH_STALL_SECS:-2} saved=$ST_BIN
	[ -z "${ST_BENCH_BASE_BIN:-}" ] || bins+=("$ST_BENCH_BASE_BIN")
	old=$(sysctl -n kernel.bpf_stats_enabled)
	st_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$old"
	sysctl -qw kernel.bpf_stats_enabled=1
	report ""
	report "## The programs while the agent is stopped (SIGSTOP; wrk -c$CONNS -d${secs}s $FILE; records pile up in the ring)"
	report ""
	report "| round | build | runs | ns per run | req/s | lost |"
	report "|---|---|---|---|---|---|"
	for r in 1 2 3; do
		for bin in "${bins[@]}"; do
			ST_BIN=$bin
			cfg_shadowtap_start
			ST_BIN=$saved
			kill -STOP "$CFG_PID"
			s0=$(prog_stats | awk '{ n += $3; t += $4 } END { print n + 0, t + 0 }')
			res=$(wrk_run "$CONNS" "$secs" "$URL")
			s1=$(prog_stats | awk '{ n += $3; t += $4 } END { print n + 0, t + 0 }')
			kill -CONT "$CFG_PID"
			cfg_stop shadowtap
			summary=$(st_summary "$CFG_ERR")
			lost=$(st_summary_field "$summary" lost)
			report "$(awk -v r="$r" -v b="$bin" -v a="$s0" -v z="$s1" -v q="${res% *}" -v l="${lost:-?}" 'BEGIN {
				split(a, x, " "); split(z, y, " "); n = y[1] - x[1]
				printf "| %d | %s | %d | %.0f | %s | %s |", r, b, n, n ? (y[2] - x[2]) / n : 0, q, l }')"
		done
	done
	sysctl -qw kernel.bpf_stats_enabled="$old"
}

# ---- 4. each path of the program in isolation ---------------------------------------------
part_progcost() {
	local m
	[ -x "$ST_BUILD/tools/progcost" ] || { report ""; report "(progcost skipped: $ST_BUILD/tools/progcost not built)"; return 0; }
	for m in 64 8; do
		report ""
		report "## Each path of the program alone: \`progcost --ring-mb $m\` (bpf_prog_test_run, 101 batches of 500 runs)"
		report ""
		"$ST_BUILD/tools/progcost" --ring-mb "$m" | tee -a "$OUT"
	done
}

for part in $PARTS; do "part_$part"; done
report ""
report "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
report "(report written to $OUT)"
