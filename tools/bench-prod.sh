#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What shadowtap costs production, every configuration against no agent in the same run
# (issue #10's matrix), on a veth pair and on loopback. As root:
#
#   ST_BUILD=build tools/bench-prod.sh            (ST_BENCH_QUICK=1: 3 rounds of 3 s)
#
# Stage, per link (ST_BENCH_LINKS, default "veth lo"):
#   veth: wrk in a client namespace -> production namespace (nginx, 1 worker) over a veth pair;
#         the agent and tcpdump attach to the production side of the pair.
#   lo:   wrk, nginx and the agent in one namespace, over loopback (every packet passes the
#         agent's egress and ingress programs, GSO super-packets).
#   Production answers GET /api.json with a small JSON body (~120 B). A no-op shadow (nginx
#   answering 204) listens on 127.0.0.1:8080 in the production namespace.
# Configurations (ST_BENCH_CONFIGS, default "capture tcpdump shadow1 shadow10 shadow100 watch"):
#   `shadowtap capture --iface IF --port 80 -w /dev/shm/...`; `tcpdump -i IF -s 0 -B 262144
#   -w /dev/shm/... tcp port 80`; `shadowtap shadow --iface IF --port 80 --to 127.0.0.1:8080
#   --sample N` (N = 1, 10, 100); `shadowtap watch --iface IF --port 80 --metrics /dev/shm/...`
#   (every exchange measured, heads copied: docs/WATCH.md); also capture_ring8 (capture
#   --ring-mb 8) and kafka10
#   (`tee --sample 10 --max-rate 0 --kafka MOCK --topic bench`: the Kafka output at 10%, into
#   build/tools/kafka-mock, librdkafka's mock cluster, 3 partitions, in the production
#   namespace: the broker's own CPU is the mock's, not production's).
#   --correlate (docs/SHADOW.md, "Sessions and ids"): shadow10_corr and shadow100_corr
#   (`shadow --to 127.0.0.1:8081 --sample N --correlate`) against shadow10_nocorr and
#   shadow100_nocorr (the same without --correlate). When one of them is asked for, every run
#   of the stage asks for GET /session.json with `Cookie: sid=<production's session>`:
#   production answers its session in Set-Cookie and in the JSON body (~150 B), the shadow on
#   127.0.0.1:8081 (nginx, 1 worker) its own; so the agent learns from every pair of answers
#   and rewrites every request's cookie (the same mapping, learned once, used in each).
# Each round runs no agent, then every configuration with a no-agent run after it (A none B
# none ...; `wrk -t1 -c$CONNS -d${SECS}s` each), the order of the configurations rotating from
# round to round. A configuration's ratio in a round is its req/s over the mean of the two
# no-agent runs around it (the host's other load drifts within a round); reported: the median
# of those ratios over the rounds, and the median req/s. The agent's CPU (utime + stime of its
# process, /proc/PID/stat) per production request is taken in those runs. Then one run per
# shadowtap configuration with kernel.bpf_stats_enabled=1 (restored after): the programs'
# run_time_ns per production request (their ids from the agent's fds), plus capture_ring8 and
# `floor`: `shadowtap capture --port 81` (nothing of the traffic is captured: every packet
# costs the programs a parse and a port lookup), the least a packet costs the programs live.
# Knobs: ST_BENCH_ROUNDS (5), ST_BENCH_SECS (4), ST_BENCH_CONNS (32), ST_BENCH_LINKS,
# ST_BENCH_CONFIGS, ST_BENCH_QUICK=1 (3 rounds of 3 s), ST_BENCH_OUT (report, default $ST_BUILD/bench-prod.md),
# ST_BENCH_AGENT_ARGS (extra arguments for every shadowtap run, e.g. --ring-mb 8),
# ST_BENCH_BASE_BIN (another shadowtap binary: adds configurations capture_base, shadow10_base).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

bench_knobs
CONNS=${ST_BENCH_CONNS:-32}
LINKS=${ST_BENCH_LINKS:-veth lo}
CONFIGS=${ST_BENCH_CONFIGS:-capture tcpdump shadow1 shadow10 shadow100 watch}
CONFIGS=$(echo " $CONFIGS " | sed 's/ none / /g; s/^ *//; s/ *$//')
BASE_BIN=${ST_BENCH_BASE_BIN:-}
[ -z "$BASE_BIN" ] || CONFIGS="$CONFIGS capture_base shadow10_base"
read -r -a AGENT_ARGS <<<"${ST_BENCH_AGENT_ARGS:-}"

bench_require bench-prod ip nginx wrk tcpdump bpftool python3 sysctl

st_init
bench_report_open bench-prod
SHM=$(mktemp -d /dev/shm/st-bench.XXXXXX)
st_on_cleanup "rm -rf '$SHM'"
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
st_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$OLD_STATS"
sysctl -qw kernel.bpf_stats_enabled=0

# ---- the stages ------------------------------------------------------------------------------
export ST_NGINX_ACCESS_LOG=off
JSON='{"id":4711,"name":"shadowtap","status":"ok","items":[1,2,3,5,8,13],"ts":"2026-11-26T10:00:00Z"}'
# --correlate's configurations: a session production issues, and the shadow's own
PROD_SID=5f0c2a9e7b3d41e8a6c4f2b0d9e8c7a1
SHADOW_SID=c81e728d9d4c2f636f067f89cc14862c
session_json() { printf '{"id":4711,"name":"shadowtap","status":"ok","session":"%s","ts":"2026-11-26T10:00:00Z"}' "$1"; }
# session_location SID: an nginx location answering /session.json with session SID
session_location() {
	printf 'location = /session.json { default_type application/json; add_header Set-Cookie "sid=%s; Path=/"; return 200 %s; }' \
		"$1" "'$(session_json "$1")'"
}
CORR=0
WRK_ARGS=()
case " $CONFIGS " in *_corr\ * | *_nocorr\ *) CORR=1 WRK_ARGS=(-H "Cookie: sid=$PROD_SID") ;; esac
# session_shadow NAME NS: nginx (1 worker) on 127.0.0.1:8081 answering /session.json as
# production does, with its own session
session_shadow() {
	ST_NGINX_LOCATIONS=$(session_location "$SHADOW_SID") st_nginx_start "$1" "$2" 127.0.0.1:8081
}
export ST_NGINX_LOCATIONS
ST_NGINX_LOCATIONS=$(session_location "$PROD_SID")

declare -A L_SRV L_CLI L_IF L_HOST L_BOOT
# kafka10: a mock cluster in the production namespace of each link
mock_start() { # LINK NS: the mock reads commands on stdin and ends at its end: a FIFO held open
	local out=$ST_TMP/mock-$1.out fifo=$ST_TMP/mock-$1.ctl fd
	[ -x "$ST_BUILD/tools/kafka-mock" ] || st_fail "$ST_BUILD/tools/kafka-mock not found (make)"
	mkfifo "$fifo"
	st_in_bg "$2" "$ST_BUILD/tools/kafka-mock" --partitions 3 --topic bench <"$fifo" >"$out" 2>&1 &
	ST_PIDS+=("$!")
	exec {fd}>"$fifo"
	st_wait_log "$out" '^127\.0\.0\.1:[0-9]+' 10
	L_BOOT[$1]=$(head -n1 "$out")
}
for link in $LINKS; do
	case $link in
	veth)
		st_netns_pair
		L_SRV[veth]=$ST_SRV_NS L_CLI[veth]=$ST_CLI_NS L_IF[veth]=$ST_SRV_IF L_HOST[veth]=$ST_SRV4
		st_nginx_start prod-veth "$ST_SRV_NS" 80
		printf '%s\n' "$JSON" >"$ST_TMP/prod-veth/www/api.json"
		noop_shadow shadow-veth "$ST_SRV_NS"
		[ "$CORR" = 0 ] || session_shadow session-veth "$ST_SRV_NS"
		case " $CONFIGS " in *" kafka10 "*) mock_start veth "$ST_SRV_NS" ;; esac
		;;
	lo)
		st_netns_single lo
		L_SRV[lo]=$ST_LAST_NS L_CLI[lo]=$ST_LAST_NS L_IF[lo]=lo L_HOST[lo]=127.0.0.1
		st_nginx_start prod-lo "$ST_LAST_NS" 127.0.0.1:80
		printf '%s\n' "$JSON" >"$ST_TMP/prod-lo/www/api.json"
		noop_shadow shadow-lo "$ST_LAST_NS"
		[ "$CORR" = 0 ] || session_shadow session-lo "$ST_LAST_NS"
		case " $CONFIGS " in *" kafka10 "*) mock_start lo "$ST_LAST_NS" ;; esac
		;;
	*) echo "shadowtap bench-prod: unknown link '$link' (veth, lo)" >&2; exit 2 ;;
	esac
done

# ---- configurations ----------------------------------------------------------------------------
# Each start sets CFG_PID (empty for none) and CFG_ERR (the process's stderr).
CFG_PID= CFG_ERR=
agent_start() { # agent_start BIN COMMAND ARGS... (--port 80 unless ARGS name a port)
	local bin=$1 cmd=$2 port=(--port 80)
	shift 2
	case " $* " in *" --port "*) port=() ;; esac
	bench_agent_start "$bin" "$cmd" "${port[@]}" "${AGENT_ARGS[@]}" "$@"
}
cfg_none() { CFG_PID= CFG_ERR=; }
cfg_capture() { agent_start "$ST_BIN" capture -w "$SHM/cap.pcap"; }
cfg_capture_ring8() { agent_start "$ST_BIN" capture -w "$SHM/cap.pcap" --ring-mb 8; }
cfg_floor() { agent_start "$ST_BIN" capture -w "$SHM/cap.pcap" --port 81; }
cfg_capture_base() { agent_start "$BASE_BIN" capture -w "$SHM/cap.pcap"; }
# tcpdump as people run it (buffered writes: not lib.sh's -U, which the tests need).
cfg_tcpdump() {
	local name=tcpdump-$RANDOM
	st_in_bg "$SRV_NS" tcpdump -i "$IFACE" -s 0 -B 262144 -n -w "$SHM/cap.pcap" 'tcp port 80' \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	CFG_PID=$!
	ST_PIDS+=("$CFG_PID")
	CFG_ERR=$ST_TMP/$name.err
	st_wait_log "$CFG_ERR" 'listening on' 10
}
cfg_shadow1() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8080 --sample 1; }
cfg_shadow10() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8080 --sample 10; }
cfg_shadow100() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8080; }
cfg_shadow10_nocorr() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8081 --sample 10; }
cfg_shadow10_corr() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8081 --sample 10 --correlate; }
cfg_shadow100_nocorr() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8081; }
cfg_shadow100_corr() { agent_start "$ST_BIN" shadow --to 127.0.0.1:8081 --correlate; }
cfg_shadow10_base() { agent_start "$BASE_BIN" shadow --to 127.0.0.1:8080 --sample 10; }
cfg_watch() { agent_start "$ST_BIN" watch --metrics "$SHM/watch.prom"; }
cfg_kafka10() {
	agent_start "$ST_BIN" tee --sample 10 --max-rate 0 --duration 0 --kafka "${L_BOOT[$link]}" \
		--topic bench
}
cfg_stop() {
	[ -z "$CFG_PID" ] || st_stop "$CFG_PID" INT || true
	rm -f "$SHM/cap.pcap" "$SHM/watch.prom"
}

# bench_load URL: "requests requests/s" of one wrk run.
bench_load() {
	st_in "$CLI_NS" wrk -t1 -c"$CONNS" -d"$SECS"s --timeout 5s "${WRK_ARGS[@]}" "$1" | awk '
		/requests in/ { n = $1 }
		/Requests\/sec/ { r = $2 }
		END { printf "%d %.0f\n", n, r }'
}


# prog_ns PID: the summed run_time_ns and run_cnt of the shadowtap programs PID holds.
prog_ns() {
	local ids
	ids=$(cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u | tr '\n' ' ')
	[ -n "$ids" ] || { echo "0 0"; return 0; }
	# shellcheck disable=SC2086
	bpftool -j prog show | python3 -c '
import json, sys
want = set(int(x) for x in sys.argv[1:])
ns = cnt = 0
for p in json.load(sys.stdin):
    if p["id"] in want and (p.get("name", "").startswith("tc_") or p.get("name", "").startswith("cgroup_skb")):
        ns += p.get("run_time_ns", 0); cnt += p.get("run_cnt", 0)
print(ns, cnt)' $ids
}


bench_note() { # bench_note CFG ERRFILE: loss and what was done, from the summary line
	local s
	[ -n "$2" ] && [ -f "$2" ] || return 0
	case $1 in
	tcpdump) echo "dropped $(st_tcpdump_dropped "$2")" ;;
	capture*) s=$(st_summary "$2"); echo "lost $(st_summary_field "$s" lost)" ;;
	shadow*_corr) s=$(st_summary "$2"); echo "replayed $(st_summary_field "$s" replayed) rewritten $(st_summary_field "$s" rewritten_requests) unmapped $(st_summary_field "$s" unmapped_requests) lost $(st_summary_field "$s" lost)" ;;
	shadow*) s=$(st_summary "$2"); echo "replayed $(st_summary_field "$s" replayed) lost $(st_summary_field "$s" lost)" ;;
	watch*) s=$(st_summary "$2"); echo "exchanges $(st_summary_field "$s" exchanges) lost $(st_summary_field "$s" lost) lost_exchanges $(st_summary_field "$s" lost_exchanges)" ;;
	esac
}

bench_report_head bench-prod "$(tcpdump --version 2>&1 | head -n1)" \
	"${AGENT_ARGS[*]:+, agent arguments: ${AGENT_ARGS[*]}}${BASE_BIN:+, base: $BASE_BIN}" \
	"wrk -t1 -c$CONNS -d${SECS}s${WRK_ARGS[*]:+ ${WRK_ARGS[*]}}"

for link in $LINKS; do
	bench_link "$link"
	[ "$CORR" = 0 ] || URL=http://${L_HOST[$link]}/session.json
	report ""
	report "## $link: $URL"
	report ""
	st_in "$CLI_NS" wrk -t1 -c"$CONNS" -d2s "$URL" >/dev/null
	bench_rounds "$link"
	# the programs' cost, bpf_stats on (one more round per shadowtap configuration)
	sysctl -qw kernel.bpf_stats_enabled=1
	for cfg in floor $CONFIGS $(case " $CONFIGS " in *" capture_ring8 "*) ;; *) echo capture_ring8 ;; esac); do
		case $cfg in floor | capture* | shadow* | kafka* | watch*) ;; *) continue ;; esac
		"cfg_$cfg"
		read -r ns0 cnt0 <<<"$(prog_ns "$CFG_PID")"
		read -r reqs rps <<<"$(bench_load "$URL")"
		read -r ns1 cnt1 <<<"$(prog_ns "$CFG_PID")"
		cfg_stop
		awk -v a="$ns0" -v b="$ns1" -v c0="$cnt0" -v c1="$cnt1" -v n="$reqs" 'BEGIN {
			per = c1 > c0 ? (b - a) / (c1 - c0) : 0
			printf "%.3f %.0f %.1f\n", (b - a) / 1000 / n, per, (c1 - c0) / n }' >"$D/bpf-$cfg"
		st_log "$link $cfg with bpf_stats: $(cat "$D/bpf-$cfg") (µs/request, ns/run, runs/request)" >&2
	done
	sysctl -qw kernel.bpf_stats_enabled=0
	base=$(median <"$D/rps-none" | awk '{ printf "%.0f", $1 }')
	report ""
	report "| $link: configuration | median req/s | ratio to no agent (median of per-run ratios) | BPF programs µs/request (ns/run, runs/request) | process CPU µs/request |"
	report "|---|---|---|---|---|"
	report "| none | $base | 1 | - | - |"
	for cfg in $CONFIGS; do
		m=$(median <"$D/rps-$cfg")
		ratio=$(median <"$D/ratios-$cfg" | awk '{ printf "%.3f", $1 }')
		echo "$ratio" >"$D/ratio-$cfg"
		bpf=-
		[ ! -f "$D/bpf-$cfg" ] || bpf=$(awk '{ printf "%.2f (%d ns, %.1f)", $1, $2, $3 }' "$D/bpf-$cfg")
		cpu=-
		[ ! -f "$D/cpu-$cfg" ] || cpu=$(median <"$D/cpu-$cfg")
		report "| $cfg | $m | $ratio | $bpf | $cpu |"
	done
	[ -f "$D/rps-capture_ring8" ] || [ ! -f "$D/bpf-capture_ring8" ] || report "| capture_ring8 (bpf_stats run only) | - | - | $(awk '{ printf "%.2f (%d ns, %.1f)", $1, $2, $3 }' "$D/bpf-capture_ring8") | - |"
	[ ! -f "$D/bpf-floor" ] || report "| floor: --port 81, nothing captured | - | - | $(awk '{ printf "%.2f (%d ns, %.1f)", $1, $2, $3 }' "$D/bpf-floor") | - |"
	# the targets of issue #10
	r() { cat "$D/ratio-$1" 2>/dev/null || echo 0; }
	chk() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = op == ">=" ? v >= t : v <= t; print ok ? "met" : "NOT met" }'; }
	report ""
	[ -f "$D/ratio-capture" ] && report "- $link: capture -w $(r capture) (target >= 0.97: $(chk "$(r capture)" '>=' 0.97); tcpdump $(r tcpdump): $(chk "$(r capture)" '>=' "$(r tcpdump)") at or above it)"
	[ -f "$D/ratio-shadow10" ] && report "- $link: shadow --sample 10 $(r shadow10) (target >= 0.95: $(chk "$(r shadow10)" '>=' 0.95))"
	[ -f "$D/ratio-kafka10" ] && report "- $link: tee --sample 10 --kafka $(r kafka10) (target >= 0.95: $(chk "$(r kafka10)" '>=' 0.95))"
	[ -f "$D/ratio-shadow100" ] && report "- $link: shadow --sample 100 $(r shadow100) (target >= 0.85: $(chk "$(r shadow100)" '>=' 0.85))"
	[ -f "$D/ratio-shadow1" ] && report "- $link: shadow --sample 1 $(r shadow1) (target within 0.02 of 1: $(chk "$(r shadow1)" '>=' 0.98))"
	[ -f "$D/ratio-watch" ] && report "- $link: watch $(r watch) (target >= 0.97: $(chk "$(r watch)" '>=' 0.97); tcpdump $(r tcpdump), capture $(r capture))"
done
report ""
report "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
report "(report written to $OUT)"
