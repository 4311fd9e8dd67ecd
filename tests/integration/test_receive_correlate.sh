#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `receive --to --correlate` (docs/SHADOW.md, "Sessions and ids"): the stateful service of
# test_shadow_correlate.sh (stateful_svc.py, its clients stateful_client.py) as production,
# teed live (`tee --no-redact -o -`: the values to learn must stay in the stream) into
# `receive - --to SHADOW --correlate` at the recorded pace; the shadow is a second instance
# with its own secret. At least 99% of the shadow's answers have production's status (by
# route), the shadow holds every order production does, values were learned and requests
# rewritten. The clients' second connection per user uses on a new connection what the
# first learned: its requests must wait for the shadow's answer to the login even when the
# stream brings them before it.
# Then the same stream from a file (`tee -o FILE`), received into fresh shadows at the
# recorded pace (not faster than the traffic was) and as fast as it reads (--fast): the same.
# A file is read far ahead of its pace: pacing once set the pace again for every segment
# more than a second ahead, so later connections' requests went before earlier answers and
# 12% of the statuses differed (the values of a login on the first connection not learned,
# nor even expected, when the second connection used them).
# --correlate-wait is 5s (test_shadow_correlate.sh says why).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
. "$(dirname "$0")/stateful_common.sh"
st_require_root
st_require_cmds ip python3 bpftool
st_require_agent
st_init

USERS=15
ORDERS=3
st_netns_pair
st_netns_single shd
SHD=$ST_LAST_NS

# check NAME SUMMARY: the shadow NAME against production's log.
check() {
	local name=$1
	SH_SUMMARY=$2
	st_summary_documented "$SH_SUMMARY" receive "shadow and replay"
	st_log "$name: $(grep -oE '(replayed|dropped|correlated_values|rewritten_requests|unmapped_requests|correlate_waits)=[0-9]+' <<<"$SH_SUMMARY" | tr '\n' ' ')"
	st_log "$name: the shadow matched $(matched "$ST_TMP/prod.log" "$ST_TMP/$name.log")‰ of production's statuses"
	stateful_matched "$ST_TMP/prod.log" "$ST_TMP/$name.log"
	sh_expect replayed -eq "$nprod"
	sh_expect dropped -eq 0
	sh_expect correlated_values -ge $((USERS * (3 + ORDERS)))
	sh_expect rewritten_requests -ge $((nprod - USERS))
}

svc_start prod "$ST_SRV_NS" "$ST_SRV4" 80
svc_start live "$SHD" 127.0.0.1 8080
mkfifo "$ST_TMP/pipe"
st_in_bg "$SHD" "$ST_BIN" receive - --to 127.0.0.1:8080 --correlate --correlate-wait 5s \
	<"$ST_TMP/pipe" >/dev/null 2>"$ST_TMP/rx.err" &
RX_PID=$!
ST_PIDS+=("$RX_PID")
st_tee_start tee -o - --no-redact --max-rate 0 --duration 0 >"$ST_TMP/pipe"
PIPE_PID=$TEE_PID
st_tee_start file -o "$ST_TMP/s.tee" --no-redact --max-rate 0 --duration 0
FILE_PID=$TEE_PID

st_log "$USERS users, $ORDERS orders each, keep-alive, a second connection each"
t0=$(date +%s%N)
st_in "$ST_CLI_NS" timeout 120 python3 "$ST_ROOT/tests/integration/stateful_client.py" "$ST_SRV4" 80 "$USERS" "$ORDERS" ||
	st_fail "production itself did not answer as expected"
traffic_ms=$((($(date +%s%N) - t0) / 1000000))
nprod=$(wc -l <"$ST_TMP/prod.log")
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sleep 0.5
st_stop "$FILE_PID" INT || { cat "$ST_TMP/file.err"; st_fail "tee -o FILE exited with an error"; }
sh_wait_lines "$ST_TMP/live.log" "$nprod" 30 || true
st_stop "$PIPE_PID" INT || { cat "$ST_TMP/tee.err"; st_fail "tee exited with an error"; }
rc=0
wait "$RX_PID" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/rx.err"; st_fail "receive --correlate exited with $rc"; }
check live "$(st_summary "$ST_TMP/rx.err")"

svc_start paced "$SHD" 127.0.0.1 8081
t0=$(date +%s%N)
st_in "$SHD" timeout 120 "$ST_BIN" receive "$ST_TMP/s.tee" --to 127.0.0.1:8081 \
	--correlate --correlate-wait 5s 2>"$ST_TMP/paced.err" ||
	{ cat "$ST_TMP/paced.err"; st_fail "receive FILE --correlate failed"; }
check paced "$(st_summary "$ST_TMP/paced.err")"
# at the recorded pace: never faster than the traffic was (less the client's start-up)
paced_ms=$((($(date +%s%N) - t0) / 1000000))
st_log "paced: $paced_ms ms for $traffic_ms ms of traffic"
[ "$paced_ms" -ge $((traffic_ms * 8 / 10)) ] ||
	st_fail "receive FILE replayed $traffic_ms ms of traffic in $paced_ms ms: not at its pace"

svc_start fast "$SHD" 127.0.0.1 8082
st_in "$SHD" timeout 120 "$ST_BIN" receive "$ST_TMP/s.tee" --to 127.0.0.1:8082 --fast \
	--correlate --correlate-wait 5s 2>"$ST_TMP/fast.err" ||
	{ cat "$ST_TMP/fast.err"; st_fail "receive FILE --fast --correlate failed"; }
check fast "$(st_summary "$ST_TMP/fast.err")"
svc_stop prod
svc_stop live
svc_stop paced
svc_stop fast
st_log "PASS"
