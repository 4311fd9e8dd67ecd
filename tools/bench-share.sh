#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What a second job on the same interface costs the kernel: the BPF programs' run time per
# packet of the interface (kernel.bpf_stats_enabled=1: run_time_ns of every shadowtap program
# loaded, over the interface's packets) while wrk loads nginx across a veth, for
#   one:      `shadowtap capture` alone (one job, one load)
#   shared:   `shadowtap daemon` with that capture job and a 10% shadow job on the same veth
#             (tapmux: one load, one ring)
#   separate: `shadowtap capture` and `shadowtap shadow --sample 10` as two processes (two
#             loads: every packet runs both program sets)
# in rounds that alternate the three. Needs root, nginx, wrk, bpftool.
#
#   ST_BUILD=build tools/bench-share.sh          (ST_BENCH_ROUNDS=3, ST_BENCH_SECS=4)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/shadow_common.sh"
st_require_root
st_require_cmds ip nginx wrk bpftool python3
st_require_agent
st_init
ROUNDS=${ST_BENCH_ROUNDS:-3}
SECS=${ST_BENCH_SECS:-4}

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
sh_sink_start sink "$ST_SRV_NS" 127.0.0.1 9000
old=$(sysctl -n kernel.bpf_stats_enabled)
st_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$old"
sysctl -qw kernel.bpf_stats_enabled=1

cat >"$ST_TMP/share.conf" <<EOF
[capture web]
iface = $ST_SRV_IF
port = 80
write = $ST_TMP/d.pcap

[shadow canary]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:9000
sample = 10
EOF

# ns of every tc_* program the pids hold, summed
prog_ns() {
	local ids
	ids=$(cat $(printf '/proc/%s/fdinfo/* ' "$@") 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u | tr '\n' ' ')
	# shellcheck disable=SC2086
	bpftool -j prog show | python3 -c '
import json, sys
want = set(int(x) for x in sys.argv[1:])
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin)
          if p["id"] in want and p.get("name", "").startswith("tc_")))' $ids
}
pkts() {
	local s=/sys/class/net/$ST_SRV_IF/statistics
	st_in "$ST_SRV_NS" sh -c "echo \$((\$(cat $s/rx_packets) + \$(cat $s/tx_packets)))"
}
wait_attached() { # PID
	local i
	for i in $(seq 1 100); do
		st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$1" && { sleep 0.3; return 0; }
		sleep 0.1
	done
	st_fail "pid $1 did not attach"
}

run() { # CONFIG: prints "ns-per-packet req/s"
	local pids=() b a pb pa rps
	case $1 in
	one)
		st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port 80 -w "$ST_TMP/a.pcap" \
			2>"$ST_TMP/one.err" &
		pids=($!) ;;
	shared)
		st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$ST_TMP/share.conf" 2>"$ST_TMP/shared.err" &
		pids=($!) ;;
	separate)
		st_in_bg "$ST_SRV_NS" "$ST_BIN" capture --iface "$ST_SRV_IF" --port 80 -w "$ST_TMP/b.pcap" \
			2>"$ST_TMP/sep1.err" &
		pids=($!)
		st_in_bg "$ST_SRV_NS" "$ST_BIN" shadow --iface "$ST_SRV_IF" --port 80 --to 127.0.0.1:9000 \
			--sample 10 2>"$ST_TMP/sep2.err" &
		pids+=($!) ;;
	esac
	ST_PIDS+=("${pids[@]}")
	for p in "${pids[@]}"; do wait_attached "$p"; done
	b=$(prog_ns "${pids[@]}")
	pb=$(pkts)
	rps=$(st_in "$ST_CLI_NS" wrk -t1 -c16 -d"${SECS}s" "http://$ST_SRV4/f100" | awk '/Requests\/sec/ { print int($2) }')
	a=$(prog_ns "${pids[@]}")
	pa=$(pkts)
	for p in "${pids[@]}"; do st_stop "$p" TERM || true; done
	awk -v ns=$((a - b)) -v n=$((pa - pb)) -v r="$rps" 'BEGIN { printf "%.0f %d\n", n ? ns / n : 0, r }'
}

declare -A res
for r in $(seq 1 "$ROUNDS"); do
	for c in one shared separate; do
		out=$(run $c)
		res[$c]+="${out%% *} "
		st_log "round $r $c: $out (ns of BPF per packet, req/s)"
	done
done
echo
echo "| configuration | BPF ns per packet (rounds) | median |"
echo "|---|---|---|"
for c in one shared separate; do
	med=$(tr ' ' '\n' <<<"${res[$c]}" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "| $c | ${res[$c]}| $med |"
done
