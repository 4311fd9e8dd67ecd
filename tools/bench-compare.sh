#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What tap compare costs (measured here, as root for part 2).
#
#   ST_BUILD=build tools/bench-compare.sh [pairs] [throughput]     (default: both)
#
# 1. pairs: $ST_BUILD/tools/bench_compare pinned to one CPU (taskset -c $CPU): the worker's
#    work per pair (3 JSON answers decoded and parsed, candidate and reference diffed against
#    production, aggregated) on bodies of 1 KB and 100 KB, plain and gzip; the same carts as
#    gRPC answers (protobuf, without a schema, and with grpc_shop.proto's descriptor set when
#    protoc is there); pairs/s.
# 2. throughput: production's throughput with `shadow --sample 10 --compare` (report and
#    diffs written) against no agent and plain --sample 10, alternated rounds
#    (tools/bench-shadow.sh's stage and method, ST_BENCH_CONFIGS="none shadow10 compare10").
# Knobs: ST_BENCH_ROUNDS (5), ST_BENCH_SECS (5), ST_BENCH_CPU (1), ST_BENCH_PAIR_SECS (3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
PARTS=${*:-pairs throughput}
CPU=${ST_BENCH_CPU:-1}
PSECS=${ST_BENCH_PAIR_SECS:-3}
BIN=$ST_BUILD/tools/bench_compare

for part in $PARTS; do
	case $part in
	pairs)
		[ -x "$BIN" ] || make -C "$ROOT" --no-print-directory BUILD="$ST_BUILD" all >/dev/null
		echo "## Tap compare: pairs per second on one core (taskset -c $CPU), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
		set_pb=$(mktemp /tmp/st-bench-shop.XXXXXX)
		protoc -I "$ROOT/tests/integration" --include_imports --descriptor_set_out="$set_pb" \
			grpc_shop.proto 2>/dev/null || { rm -f "$set_pb"; set_pb=; }
		for size in 1024 102400; do
			for mode in plain gzip grpc; do
				taskset -c "$CPU" "$BIN" "$size" "$PSECS" "$mode"
			done
			[ -z "$set_pb" ] || taskset -c "$CPU" "$BIN" "$size" "$PSECS" grpc "$set_pb"
		done
		[ -z "$set_pb" ] || rm -f "$set_pb"
		;;
	throughput)
		ST_BENCH_CONFIGS=${ST_BENCH_CONFIGS:-none shadow10 compare10} \
			ST_BENCH_OUT=${ST_BENCH_OUT:-$ST_BUILD/bench-compare-report.md} \
			"$ROOT/tools/bench-shadow.sh" throughput
		;;
	*)
		echo "bench-compare: unknown part '$part' (pairs, throughput)" >&2
		exit 2
		;;
	esac
done
