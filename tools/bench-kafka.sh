#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What `shadowtap tee --kafka` costs on the host, against `tee -o /dev/null`, on the JSON
# traffic of tools/bench-tee.sh (measured here, as root), with librdkafka's mock cluster
# (build/tools/kafka-mock, 3 partitions, in the same namespace) in place of a broker.
#
#   ST_BUILD=build tools/bench-kafka.sh
#
# Rounds alternate: no agent; `tee --iface lo --port 80 --max-rate 0 -o /dev/null`; the same
# with `--kafka MOCK --topic bench` (messages zlib'd by shadowtap); the same with
# `--kafka-opt compression.codec=lz4` (the producer compresses). For each: requests/s against
# no agent, the tee's CPU time (utime + stime from /proc) per MB of stream bytes and per
# request, the drops, and the mock cluster's own CPU (the broker's, not the host's).
# Knobs: ST_BENCH_ROUNDS (2), ST_BENCH_SECS (5), ST_BENCH_CONNS (32).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

ROUNDS=${ST_BENCH_ROUNDS:-2}
SECS=${ST_BENCH_SECS:-5}
CONNS=${ST_BENCH_CONNS:-32}

bench_require bench-kafka ip nginx wrk python3
st_init

st_netns_single prod
NS=$ST_LAST_NS
bench_json_api "$NS"

rps() { sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$1"; }
reqs() { sed -nE 's/^ *([0-9]+) requests in .*/\1/p' "$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

MOCK=$ST_BUILD/tools/kafka-mock
[ -x "$MOCK" ] || { echo "shadowtap bench-kafka: $MOCK not found (make)" >&2; exit 1; }
mkfifo "$ST_TMP/mock.ctl"
st_in_bg "$NS" "$MOCK" --partitions 3 --topic bench <"$ST_TMP/mock.ctl" >"$ST_TMP/mock.out" 2>&1 &
MOCK_PID=$!
ST_PIDS+=("$MOCK_PID")
exec 3>"$ST_TMP/mock.ctl"
st_wait_log "$ST_TMP/mock.out" '^127\.0\.0\.1:[0-9]+' 10
BOOT=$(head -n1 "$ST_TMP/mock.out")

run_round() { # CONFIG KIND -> "rps [cpu_ms raw requests dropped mock_ms delivered msgs]"
	local cfg=$1 kind=$2 args=() out=() pid t0 t1 m0 m1 sum
	case $kind in get) args=(http://127.0.0.1/api) ;; post) args=(-s "$ST_TMP/post.lua" http://127.0.0.1/order) ;; esac
	if [ "$cfg" = none ]; then
		st_in "$NS" wrk -t1 -c"$CONNS" -d"${SECS}s" "${args[@]}" >"$ST_TMP/wrk.out"
		echo "$(rps "$ST_TMP/wrk.out")"
		return
	fi
	case $cfg in
	file) out=(-o /dev/null) ;;
	kafka) out=(--kafka "$BOOT" --topic bench) ;;
	kafka-lz4) out=(--kafka "$BOOT" --topic bench --kafka-opt compression.codec=lz4) ;;
	esac
	st_in_bg "$NS" "$ST_BIN" tee --iface lo --port 80 --duration 0 --max-rate 0 "${out[@]}" \
		2>"$ST_TMP/tee.err" </dev/null &
	pid=$!
	ST_PIDS+=("$pid")
	for _ in $(seq 1 100); do st_agent_attached "$NS" lo "$pid" && break; sleep 0.1; done
	sleep 0.3
	t0=$(cpu_ticks "$pid")
	m0=$(cpu_ticks "$MOCK_PID")
	st_in "$NS" wrk -t1 -c"$CONNS" -d"${SECS}s" "${args[@]}" >"$ST_TMP/wrk.out"
	sleep 0.5
	t1=$(cpu_ticks "$pid")
	m1=$(cpu_ticks "$MOCK_PID")
	st_stop "$pid" INT || true
	sum=$(st_summary "$ST_TMP/tee.err")
	f() { local v; v=$(st_summary_field "$sum" "$1"); echo "${v:-0}"; }
	echo "$(rps "$ST_TMP/wrk.out") $(((t1 - t0) * 1000 / $(getconf CLK_TCK))) $(f raw_stream_bytes) $(reqs "$ST_TMP/wrk.out") $(f dropped_bytes) $(((m1 - m0) * 1000 / $(getconf CLK_TCK))) $(f kafka_delivered_msgs) $(f kafka_messages) $(f lost) $(f gap_bytes)"
}

for kind in get post; do
	declare -A R=()
	for r in $(seq 1 "$ROUNDS"); do
		for cfg in none file kafka kafka-lz4; do
			R[$cfg]+="$(run_round "$cfg" "$kind");"
		done
	done
	python3 - "$kind" "${R[none]}" "${R[file]}" "${R[kafka]}" "${R[kafka-lz4]}" <<'PY'
import statistics as st, sys
kind, none, *cfgs = sys.argv[1], *[[l.split() for l in a.split(";") if l] for a in sys.argv[2:]]
base = st.median(float(x[0]) for x in none)
print("%s: no agent %.0f req/s (median of %d rounds)" % (kind.upper(), base, len(none)))
for name, rows in zip(("tee -o /dev/null", "tee --kafka (zlib)", "tee --kafka, lz4 by librdkafka"), cfgs):
    rps = st.median(float(x[0]) for x in rows)
    cpu_ms = sum(int(x[1]) for x in rows); raw = sum(int(x[2] or 0) for x in rows)
    nreq = sum(int(x[3] or 0) for x in rows); drop = sum(int(x[4] or 0) for x in rows)
    mock_ms = sum(int(x[5]) for x in rows)
    lost = sum(int(x[8] or 0) for x in rows); gap = sum(int(x[9] or 0) for x in rows)
    line = ("  %-32s %.0f req/s = %.3f of no agent; tee CPU %.1f ms per MB of stream, %.1f us per "
            "request (%.1f MB teed, %.1f MB dropped; the ring lost %d payload bytes, %.1f MB of gaps)"
            % (name, rps, rps / base, cpu_ms / max(raw / 1e6, 1e-9), cpu_ms * 1000 / max(nreq, 1),
               raw / 1e6, drop / 1e6, lost, gap / 1e6))
    if "kafka" in name:
        line += "; messages delivered %d of %d; the mock broker's CPU %d ms" % (
            sum(int(x[6] or 0) for x in rows), sum(int(x[7] or 0) for x in rows), mock_ms)
    print(line)
PY
done
exec 3>&-
