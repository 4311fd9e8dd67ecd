#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What `shadowtap tee` costs production and its own CPU, on JSON-over-HTTP (measured here, as
# root).
#
#   ST_BUILD=build tools/bench-tee.sh
#
# Production: nginx (1 worker) in one network namespace serving a ~2 KB JSON document (an API
# response: keys repeated, numbers, strings) and taking ~1 KB JSON POSTs, loaded with
# `wrk -t1 -c$CONNS -d${SECS}s` (GET and POST rounds) on loopback. Rounds alternate: no agent;
# `shadowtap tee --iface lo --port 80 -o /dev/null` with the default rate cap (16 MiB/s, a
# no-op receiver); the same with --max-rate 0 (everything teed). For each tee round: requests/s
# against the rounds without, the tee's CPU time (utime + stime from /proc) per MB of stream
# bytes, the compression ratio (stream bytes before / after zlib level 1) and the drops.
# Knobs: ST_BENCH_ROUNDS (3), ST_BENCH_SECS (5), ST_BENCH_CONNS (32).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

ROUNDS=${ST_BENCH_ROUNDS:-3}
SECS=${ST_BENCH_SECS:-5}
CONNS=${ST_BENCH_CONNS:-32}

bench_require bench-tee ip nginx wrk python3
st_init

st_netns_single prod
NS=$ST_LAST_NS
bench_json_api "$NS"

rps() { sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' "$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run_round() { # CONFIG KIND -> prints "rps [cpu_s raw wire dropped]"
	local cfg=$1 kind=$2 args=() pid t0 t1 sum
	case $kind in get) args=(http://127.0.0.1/api) ;; post) args=(-s "$ST_TMP/post.lua" http://127.0.0.1/order) ;; esac
	if [ "$cfg" = none ]; then
		st_in "$NS" wrk -t1 -c"$CONNS" -d"${SECS}s" "${args[@]}" >"$ST_TMP/wrk.out"
		echo "$(rps "$ST_TMP/wrk.out")"
		return
	fi
	local extra=()
	[ "$cfg" = tee-all ] && extra=(--max-rate 0)
	st_in_bg "$NS" "$ST_BIN" tee --iface lo --port 80 -o /dev/null --duration 0 "${extra[@]}" \
		2>"$ST_TMP/tee.err" </dev/null &
	pid=$!
	ST_PIDS+=("$pid")
	for _ in $(seq 1 100); do st_agent_attached "$NS" lo "$pid" && break; sleep 0.1; done
	sleep 0.3
	t0=$(cpu_ticks "$pid")
	st_in "$NS" wrk -t1 -c"$CONNS" -d"${SECS}s" "${args[@]}" >"$ST_TMP/wrk.out"
	sleep 0.5
	t1=$(cpu_ticks "$pid")
	st_stop "$pid" INT || true
	sum=$(st_summary "$ST_TMP/tee.err")
	echo "$(rps "$ST_TMP/wrk.out") $(((t1 - t0) * 1000 / $(getconf CLK_TCK))) $(st_summary_field "$sum" raw_stream_bytes) $(st_summary_field "$sum" wire_bytes) $(st_summary_field "$sum" dropped_bytes) $(st_summary_field "$sum" bytes) $(st_summary_field "$sum" lost)"
}

for kind in get post; do
	declare -A R=()
	for r in $(seq 1 "$ROUNDS"); do
		for cfg in none tee-default tee-all; do
			R[$cfg]+="$(run_round "$cfg" "$kind");"
		done
	done
	python3 - "$kind" "${R[none]}" "${R[tee-default]}" "${R[tee-all]}" <<'PY'
import statistics as st, sys
kind, none, dflt, alll = sys.argv[1], *[[l.split() for l in a.split(";") if l] for a in sys.argv[2:]]
base = st.median(float(x[0]) for x in none)
print("%s: no agent %.0f req/s (median of %d rounds)" % (kind.upper(), base, len(none)))
for name, rows in (("tee, default --max-rate 16 MiB/s", dflt), ("tee --max-rate 0", alll)):
    rps = st.median(float(x[0]) for x in rows)
    cpu_ms = sum(int(x[1]) for x in rows); raw = sum(int(x[2]) for x in rows)
    wire = sum(int(x[3]) for x in rows); drop = sum(int(x[4]) for x in rows)
    teed = sum(int(x[5]) for x in rows); lost = sum(int(x[6]) for x in rows)
    print("  %-34s %.0f req/s = %.3f of no agent; tee CPU %.1f ms per MB of stream (%.1f MB teed, "
          "%.1f MB dropped by the cap, ring lost %d); compression %.2fx (%.1f MB -> %.1f MB)"
          % (name, rps, rps / base, cpu_ms / max(raw / 1e6, 1e-9), teed / 1e6, drop / 1e6, lost,
             raw / max(wire, 1), raw / 1e6, wire / 1e6))
PY
done
