#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `capture -w FIFO` whose reader stops (SIGSTOP) under load: the agent's writer thread and its
# bounded queue (--write-queue-mb) turn the stall into packets dropped and counted in the
# summary (dropped_writes=), never kernel loss (lost=0: the event loop keeps draining the
# ring); SIGINT still ends the run at once, exit 0, one summary line; and what reached the
# pipe is a valid pcap holding exactly the packets the summary says were written.
# (Before the writer thread the event loop itself blocked in write(): the ring filled, and
# SIGINT waited for a reader that never came.)
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump bpftool python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
URL=http://$ST_SRV4

FIFO=$ST_TMP/out.fifo
mkfifo "$FIFO"
# The reader, started first: the agent's open of the FIFO waits for it.
cat "$FIFO" >"$ST_TMP/got.pcap" &
RD=$!
ST_PIDS+=("$RD")
st_capture_start stall "$ST_SRV_NS" "$ST_SRV_IF" "$FIFO" --port 80 --write-queue-mb 4
kill -STOP "$RD"
st_on_cleanup "kill -CONT $RD"
st_log "reader stopped; 8 downloads of 5 MB (~40 MB through a 4 MiB queue and a 64 KiB pipe)"
dl=()
for i in $(seq 1 8); do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --limit-rate 20M "$URL/f5242880" &
	dl+=($!)
done
wait_rc=0
for j in "${dl[@]}"; do wait "$j" || wait_rc=$?; done
[ "$wait_rc" -eq 0 ] || st_fail "a download failed ($wait_rc)"
st_alive "$ST_AGENT_PID" || { cat "$ST_TMP/stall.err"; st_fail "the agent died under a stalled reader"; }

st_log "SIGINT with the reader still stopped"
t0=$(date +%s%N)
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
cat "$ST_TMP/stall.err"
[ "$rc" -eq 0 ] || st_fail "exit $rc after SIGINT (137: it had to be killed)"
[ "$ms" -lt 8000 ] || st_fail "SIGINT took ${ms} ms to end the run"
line=$(st_summary "$ST_TMP/stall.err")
[ -n "$line" ] || st_fail "no summary line"
pk=$(st_summary_field "$line" packets)
lost=$(st_summary_field "$line" lost)
dw=$(st_summary_field "$line" dropped_writes)
dwb=$(st_summary_field "$line" dropped_write_bytes)
peak=$(st_summary_field "$line" write_queue_peak)
st_log "exit 0 after ${ms} ms: packets=$pk lost=$lost dropped_writes=$dw dropped_write_bytes=$dwb write_queue_peak=$peak"
[ "${lost:-x}" = 0 ] || st_fail "kernel loss (lost=$lost): the stall reached the ring"
[ "${dw:-0}" -gt 0 ] && [ "${dwb:-0}" -gt 1000000 ] ||
	st_fail "a stalled reader under 40 MB of load dropped nothing (dropped_writes=$dw dropped_write_bytes=$dwb)"
[ "${peak:-0}" -le $((4 << 20)) ] || st_fail "write_queue_peak=$peak is above --write-queue-mb 4"

kill -CONT "$RD"
wait "$RD" || true
# tcpdump counts the whole records (and says the file is cut when the last one is not)
n=$( (tcpdump -nr "$ST_TMP/got.pcap" 2>"$ST_TMP/got.err" || true) | wc -l)
st_log "the reader got $n whole packets"
[ "$n" -eq "$pk" ] || st_fail "the pipe carried $n whole packets, the summary says packets=$pk"
[ "$n" -gt 0 ] || st_fail "nothing reached the reader"
st_log "PASS"
