#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# How many requests per second the load test's generator (`shadowtap replay --rate`) sustains
# on one core, against wrk (and h2load --h1 when installed) on the same target (measured
# here, as root; docs/BENCHMARKS.md).
#
#   ST_BUILD=build tools/bench-load.sh
#
# nginx (1 worker, a 100-byte file, no access log) on 127.0.0.1:80 of a network namespace,
# pinned to CPU 1; each client pinned to CPU 0, $CONNS keep-alive connections, small GETs:
#  - wrk -t1 -c$CONNS -d${SECS}s (a closed loop: no schedule, no correction);
#  - h2load --h1 -t1 -c$CONNS -D$SECS (the same, when installed);
#  - shadowtap replay of a recording of $CONNS keep-alive clients (made once, by a client
#    that waits for each answer), --rate R --pace constant --duration $SECS, R twice what
#    wrk got in the first round: an open model past what the pair can do (this shared host's
#    rate varies by half from run to run), so every connection has a request due and
#    waiting, as wrk's always have (the correction on: each latency counted from when it
#    was due); below saturation the generator sleeps between due requests and each wake
#    costs a context switch wrk does not pay.
# Rounds alternate the clients ($ROUNDS each). Per run: requests answered per second, and
# per second of the client's own CPU (user + system: what one core of it does; the target
# or the client, whichever is slower, sets the first figure; the second is the client's
# cost alone). Then the medians. Knobs: ST_BENCH_ROUNDS (5), ST_BENCH_SECS (5),
# ST_BENCH_CONNS (32), ST_BENCH_RATE (R), ST_BENCH_OUT (default
# $ST_BUILD/bench-load-report.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

ROUNDS=${ST_BENCH_ROUNDS:-5}
SECS=${ST_BENCH_SECS:-5}
CONNS=${ST_BENCH_CONNS:-32}
RATE=${ST_BENCH_RATE:-}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
OUT=${ST_BENCH_OUT:-$ST_BUILD/bench-load-report.md}

bench_require bench-load ip nginx wrk tcpdump python3 taskset
H2LOAD=$(command -v h2load || true)

st_init
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
report() { printf '%s\n' "$*" | tee -a "$OUT"; }

export ST_NGINX_ACCESS_LOG=off
st_netns_single bench
NS=$ST_LAST_NS
st_nginx_start web "$NS" 127.0.0.1:80
# nginx's worker on CPU 1, the clients on CPU 0
for p in $(pgrep -P "$ST_LAST_PID"); do taskset -pc 1 "$p" >/dev/null; done
URL=http://127.0.0.1/f100

# the recording: CONNS keep-alive clients taking turns, each waiting for its answer
PCAP=$ST_TMP/rec.pcap
st_tcpdump_start rec "$NS" lo "$PCAP" 'tcp port 80'
st_in "$NS" python3 - "$CONNS" <<'PY'
import socket, sys
conns = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", 80)) for _ in range(conns)]
for r in range(100):
    for s in socks:
        s.sendall(b"GET /f100 HTTP/1.1\r\nHost: bench\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < 100:
            buf += s.recv(65536)
for s in socks:
    s.close()
PY
st_tcp_settle 80 "$NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" rec

# cpu_of PID: its user + system seconds so far (clock ticks of /proc/PID/stat).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# run NAME CMD...: CMD pinned to CPU 0 in the namespace; "requests cpu_seconds" on stdout,
# its output in $ST_TMP/NAME.out. The CPU is read just before it exits (its last stat).
run() {
	local name=$1 pid cpu=0 c
	shift
	st_in_bg "$NS" taskset -c 0 "$@" >"$ST_TMP/$name.out" 2>&1 </dev/null &
	pid=$!
	while st_alive "$pid"; do
		c=$(cpu_of "$pid" 2>/dev/null) && cpu=$c
		sleep 0.05
	done
	wait "$pid" || true
	echo "$cpu"
}

row() { # NAME REQUESTS SECONDS CPU
	awk -v n="$1" -v r="$2" -v s="$3" -v c="$4" 'BEGIN {
		printf "%s %.0f %.0f\n", n, (s > 0 ? r / s : 0), (c > 0 ? r / c : 0) }'
}

clients="wrk shadowtap"
[ -n "$H2LOAD" ] && clients="wrk h2load shadowtap"
report "## Load generators on one core: nginx (1 worker, CPU 1), each client on CPU 0"
report ""
report "$CONNS keep-alive connections, GET of a 100-byte file, ${SECS} s per run, $ROUNDS rounds alternating $clients."
report "shadowtap: \`replay rec.pcap --port 80 --to 127.0.0.1:80 --rate R --pace constant --duration $SECS --drain 2\` (a recording of $CONNS clients; latency corrected from due; R below)."
report ""
report "| round | client | requests/s | requests per CPU-second | notes |"
report "|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
	for cl in $clients; do
		case $cl in
		wrk)
			cpu=$(run wrk wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 5s "$URL")
			n=$(awk '/requests in/ { print $1 }' "$ST_TMP/wrk.out")
			notes="" ;;
		h2load)
			cpu=$(run h2load "$H2LOAD" --h1 -t1 -c"$CONNS" -D"$SECS" "$URL")
			n=$(awk '/^requests:/ { print $8 }' "$ST_TMP/h2load.out")
			notes="" ;;
		shadowtap)
			[ -n "$RATE" ] || RATE=$(awk '{ printf "%d", $1 * 2 }' "$ST_TMP/rps-wrk")
			cpu=$(run st "$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:80 --rate "$RATE" \
				--pace constant --duration "$SECS" --drain 2)
			n=$(st_summary_field "$(st_summary "$ST_TMP/st.out")" load_answered)
			# its run lasts until the last answer: its own elapsed time
			secs=$(sed -nE 's/^shadowtap: load ([0-9.]+) s:.*/\1/p' "$ST_TMP/st.out")
			notes="R $RATE; $(grep '^shadowtap: load' "$ST_TMP/st.out" | sed -nE 's/.*latency p50 ([0-9.]+) ms, p90 [0-9.]+, p99 ([0-9.]+).*late sends ([0-9]+).*/p50 \1 ms, p99 \2 ms corrected; \3 late sends/p')"
			;;
		esac
		read -r _ rps per < <(row "$cl" "${n:-0}" "${secs:-$SECS}" "$cpu")
		secs=
		echo "$rps" >>"$ST_TMP/rps-$cl"
		echo "$per" >>"$ST_TMP/per-$cl"
		report "| $r | $cl | $rps | $per | $notes |"
		st_log "round $r $cl: $rps req/s, $per per CPU-second (cpu ${cpu}s) $notes" >&2
	done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
report ""
report "| client | median requests/s | median requests per CPU-second |"
report "|---|---|---|"
for cl in $clients; do
	report "| $cl | $(median <"$ST_TMP/rps-$cl") | $(median <"$ST_TMP/per-$cl") |"
done
report ""
report "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
report "(report written to $OUT)"
