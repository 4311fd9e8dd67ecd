#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Receivers leaving a consumer group promptly (docs/KAFKA.md, "A receiver stopping"): two
# `shadowtap receive --kafka` of one group on a mock cluster (tools/kafka-mock, 3 partitions),
# stopped one right after the other (0 to 0.4 s apart, round by round), so the second is
# stopped while the group rebalances after the first left. librdkafka 2.0's
# rd_kafka_consumer_close() serving the revoke itself hung there forever in about one stop in
# 40 under load (librdkafka issue 4884; CI's test_kafka once): every stop must end within 5 s,
# exit 0 and print its summary.
# ST_KAFKA_LEAVE_ROUNDS rounds (2 here; `make fuzz` runs 40, each pair a group of its own).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" receive --help 2>/dev/null | grep -q -- --kafka || st_skip "$ST_BIN has no 'receive --kafka' yet"
st_init
ROUNDS=${ST_KAFKA_LEAVE_ROUNDS:-2}

st_netns_pair
NS=$ST_SRV_NS
st_kafka_mock "$NS"

rx_start() { # NAME GROUP: a receiver into a folder of its own; pid in RX_PID, waits for its partitions
	# the mock waits session.timeout.ms - 1 s for members to rejoin a rebalance
	st_in_bg "$NS" "$ST_BIN" receive --kafka "$ST_KAFKA_BOOT" --topic tee --group "$2" -v \
		--kafka-opt session.timeout.ms=2500 --kafka-opt heartbeat.interval.ms=200 \
		-o "$ST_TMP/$1.out" >/dev/null 2>"$ST_TMP/$1.err" </dev/null &
	RX_PID=$!
	ST_PIDS+=("$RX_PID")
	st_wait_log "$ST_TMP/$1.err" 'partitions assigned' 20
}

stop_timed() { # NAME PID: SIGINT; fails unless it exits 0 within 5 s with its summary
	local rc=0
	st_stop "$2" INT 5 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$ST_TMP/$1.err"; st_fail "$1 exited $rc (137: did not stop within 5 s, killed)"; }
	[ -n "$(st_summary "$ST_TMP/$1.err")" ] || st_fail "$1 printed no summary"
	STOP_MS+=("$ST_STOP_MS")
}

STOP_MS=()
st_log "$ROUNDS rounds: two members of a group, stopped one right after the other"
for r in $(seq 1 "$ROUNDS"); do
	rx_start "a$r" "g$r"
	A=$RX_PID
	rx_start "b$r" "g$r"
	B=$RX_PID
	stop_timed "a$r" "$A"
	# b is stopped 0 to 0.4 s later, across the group's rebalance after a left (heartbeats
	# every 200 ms): the hang needed the stop to land while b was in it
	sleep "0.$(((r - 1) % 5))"
	stop_timed "b$r" "$B"
	grep -q 'partitions revoked' "$ST_TMP/b$r.err" || st_fail "b$r: no revoke served"
done
sorted=$(printf '%s\n' "${STOP_MS[@]}" | sort -n)
echo "  $((2 * ROUNDS)) stops, ms: median $(sed -n "$((ROUNDS))p" <<<"$sorted"), max $(tail -n1 <<<"$sorted")"
st_log "PASS"
