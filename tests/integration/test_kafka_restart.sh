#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A receiver of a consumer group restarting (docs/KAFKA.md, "Receivers and rebalances"):
# tee --kafka -> librdkafka's mock cluster (tools/kafka-mock, 3 partitions) -> receive --kafka
# --to a shadow nginx, production's requests tagged by batch (GET /f1?b=BATCH&i=N, three a
# connection or one):
#   1. a clean stop: receiver 1 replays batch A and stops (SIGTERM: connections closed, stored
#      offsets committed); batch B is produced while no receiver runs; receiver 2 of the same
#      group, started with --from a time past the end, resumes from the committed offsets (the
#      committed offsets win over --from TIME): batches A and B reach the shadow exactly once,
#      the two receivers read together exactly the messages the tee delivered, receiver 2
#      joined no connection, skipped no duplicate, took no partition from --from;
#   2. a kill -9: receiver 3 (auto.commit.interval.ms=500) is killed while batch C runs at
#      25 requests/s, receiver 4 of the same group takes over: nothing at the shadow that
#      production did not have, and what reached it twice (redelivered: handed over after the
#      last commit) or never (committed while queued in the shadow engine, or a connection
#      joined midway, which the shadow engine skips) is bounded by the requests production
#      served in the 2.5 s before the kill (the commit interval, the tee's 250 ms flush, 1.75 s
#      of slack for a loaded host);
#   3. --from on a fresh group: the mock cluster answers ListOffsets by timestamp with "no
#      offset" (librdkafka 2.0's mock, a FIXME in its handler), so a time between two batches
#      cannot be resolved here (tests/unit/stream/test_kafka_from.c checks the rule with fakes); what
#      is checked: a fresh group with --from TIME looks up every partition (kafka_time_ends 3,
#      the mock's answer: their end), reads none of what is already in the topic and every
#      request produced after it joined.
# RX_DEBUG: more receive arguments, e.g. "-v --kafka-opt debug=cgrp" (librdkafka's group log).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx python3
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
MOCK=$ST_BUILD/tools/kafka-mock
[ -x "$MOCK" ] || st_fail "$MOCK not found (build first)"
"$ST_BIN" receive --help 2>/dev/null | grep -q -- 'earliest|latest|TIME' || st_skip "$ST_BIN has no 'receive --from TIME' yet"
st_init
T0=$(date +%s)

st_netns_pair
NS=$ST_SRV_NS
ST_NGINX_LOG_FORMAT='$request' st_nginx_start web "$NS" 80
ST_NGINX_LOG_FORMAT='$request' st_nginx_start shadow "$NS" 127.0.0.1:8081

st_kafka_mock "$NS"
BOOT=$ST_KAFKA_BOOT

rx_start() { # NAME ARGS...: receive --kafka --to the shadow; pid in RX_PID, waits for its partitions
	local name=$1
	shift
	# The mock cluster makes a member joining an empty group wait 3 s (as a broker's
	# group.initial.rebalance.delay.ms) and drops members silent for session.timeout.ms
	# (checked every second): a joining member must outlive that wait, so above 4 s
	st_in_bg "$NS" "$ST_BIN" receive --kafka "$BOOT" --topic tee -v ${RX_DEBUG:-} --to 127.0.0.1:8081 \
		--kafka-opt session.timeout.ms=4500 --kafka-opt heartbeat.interval.ms=200 "$@" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	RX_PID=$!
	ST_PIDS+=("$RX_PID")
	st_wait_log "$ST_TMP/$name.err" 'partitions assigned' 20
}

tee_start() { # NAME: tee --kafka on the server's veth; waits until attached
	st_tee_start "$1" --duration 0 --max-rate 0 --kafka "$BOOT" --topic tee
}

# client BATCH N PER RATE: N requests GET /f1?b=BATCH&i=I, PER of them a connection, RATE a
# second (0: at once); prints "unix-time i" as each is answered
cat >"$ST_TMP/client.py" <<'PY'
import http.client, sys, time
host, tag, n, per, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
t0 = time.time()
c = None
for i in range(n):
    if rate > 0:
        d = t0 + i / rate - time.time()
        if d > 0:
            time.sleep(d)
    if c is None:
        c = http.client.HTTPConnection(host, 80, timeout=10)
    c.request("GET", "/f1?b=%s&i=%d" % (tag, i))
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    if (i + 1) % per == 0 or i == n - 1:
        c.close()
        c = None
    print("%.3f %d" % (time.time(), i), flush=True)
PY
client() { st_in "$ST_CLI_NS" python3 "$ST_TMP/client.py" "$ST_SRV4" "$@"; }

at_shadow() { grep -c "^GET /f1?b=$1&" "$ST_TMP/shadow/access.log" || true; }
# wait_shadow BATCH N: until the shadow has N requests of BATCH, or nothing new for 2 s
wait_shadow() {
	local last=-1 still=0 cur i
	for i in $(seq 1 150); do
		cur=$(at_shadow "$1")
		[ "$cur" -ge "$2" ] && return 0
		if [ "$cur" -eq "$last" ]; then still=$((still + 1)); else still=0; fi
		[ "$still" -ge 10 ] && return 0
		last=$cur
		sleep 0.2
	done
}
field() { local v; v=$(st_summary_field "$1" "$2"); echo "${v:-missing}"; }
# same_requests BATCH...: the shadow's requests of those batches == production's, each once
same_requests() {
	local re
	re=$(printf '%s|' "$@")
	grep -E "^GET /f1\?b=(${re%|})&" "$ST_TMP/web/access.log" | sort >"$ST_TMP/req-web"
	grep -E "^GET /f1\?b=(${re%|})&" "$ST_TMP/shadow/access.log" | sort >"$ST_TMP/req-shadow" || true
	cmp -s "$ST_TMP/req-web" "$ST_TMP/req-shadow" || {
		diff "$ST_TMP/req-web" "$ST_TMP/req-shadow" | head -n 10
		st_fail "batches $*: the shadow's requests are not production's, each once ($(wc -l <"$ST_TMP/req-shadow") for $(wc -l <"$ST_TMP/req-web"))"
	}
}

# ---- 1. a clean stop, a restart from the committed offsets -----------------------------------
st_log "receiver 1 replays batch A, stops; batch B while none runs; receiver 2 resumes"
rx_start r1 --group g
R1=$RX_PID
tee_start tee1
client A 60 3 0 >/dev/null
wait_shadow A 60
sleep 0.5
st_stop "$R1" TERM || { cat "$ST_TMP/r1.err"; st_fail "receiver 1 exited with an error"; }
s1=$(st_summary "$ST_TMP/r1.err")
echo "  receive 1: ${s1#shadowtap: }"
[ "$(at_shadow A)" -eq 60 ] || st_fail "receiver 1 replayed $(at_shadow A) of batch A's 60 requests"
client B 60 3 0 >/dev/null
st_tcp_settle 80 "$NS" "$ST_CLI_NS"
sleep 0.5
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee1.err"; st_fail "tee exited with an error"; }
ts=$(st_summary "$ST_TMP/tee1.err")
delivered=$(field "$ts" kafka_delivered_msgs)
[ "$delivered" = "$(field "$ts" kafka_messages)" ] && [ "$(field "$ts" dropped_records)" = 0 ] ||
	st_fail "the tee did not deliver every message: ${ts#shadowtap: }"
[ "$(at_shadow B)" -eq 0 ] || st_fail "batch B reached the shadow with no receiver running"
# a time past the end: the partitions the group committed must not take it
rx_start r2 --group g --from "@$(($(date +%s) + 3600))"
R2=$RX_PID
wait_shadow B 60
sleep 1
st_stop "$R2" TERM || { cat "$ST_TMP/r2.err"; st_fail "receiver 2 exited with an error"; }
s2=$(st_summary "$ST_TMP/r2.err")
echo "  receive 2: ${s2#shadowtap: }"
same_requests A B
m1=$(field "$s1" kafka_messages) m2=$(field "$s2" kafka_messages)
[ $((m1 + m2)) -eq "$delivered" ] || st_fail "the receivers read $m1 + $m2 messages, the tee delivered $delivered"
for f in kafka_joined_conns kafka_dup_records kafka_lost_bytes kafka_bad_messages kafka_time_offsets kafka_time_ends kafka_lost_assignments resumed_conns gaps_skipped; do
	[ "$(field "$s2" "$f")" = 0 ] || st_fail "receiver 2: $f is $(field "$s2" "$f"), not 0"
done
grep -q '3 partitions resume from committed offsets' "$ST_TMP/r2.err" ||
	st_fail "receiver 2 did not resume its 3 partitions from committed offsets"
echo "  ok: 120 requests, each once at the shadow; $m1 + $m2 messages of $delivered delivered"

# ---- 2. kill -9 ---------------------------------------------------------------------------------
st_log "receiver 3 killed (-9) during batch C (25 requests/s), receiver 4 takes over"
tee_start tee2
rx_start r3 --group g --kafka-opt auto.commit.interval.ms=500
R3=$RX_PID
client C 150 1 25 >"$ST_TMP/c.times" &
CL=$!
for i in $(seq 1 100); do [ "$(wc -l <"$ST_TMP/c.times")" -ge 90 ] && break; sleep 0.1; done
disown "$R3" # no "Killed" line from bash
kill -KILL "$R3"
kill_t=$(date +%s.%N)
for i in $(seq 1 50); do st_alive "$R3" || break; sleep 0.1; done
! st_alive "$R3" || st_fail "receiver 3 outlived kill -9"
before=$(wc -l <"$ST_TMP/c.times")
[ "$before" -ge 60 ] || st_fail "batch C: only $before requests before the kill"
# the mock drops receiver 3 from the group after session.timeout.ms (4.5 s, checked every
# second); a member joining before would be waited for in the rebalance
sleep 6
rx_start r4 --group g
R4=$RX_PID
wait "$CL" || st_fail "batch C's client failed"
st_tcp_settle 80 "$NS" "$ST_CLI_NS"
wait_shadow C 150
sleep 1
st_stop "$R4" TERM || { cat "$ST_TMP/r4.err"; st_fail "receiver 4 exited with an error"; }
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee2.err"; st_fail "tee exited with an error"; }
s4=$(st_summary "$ST_TMP/r4.err")
echo "  receive 4: ${s4#shadowtap: }"
grep '^GET /f1?b=C&' "$ST_TMP/web/access.log" | sort >"$ST_TMP/req-web"
grep '^GET /f1?b=C&' "$ST_TMP/shadow/access.log" | sort >"$ST_TMP/req-shadow" || true
[ "$(wc -l <"$ST_TMP/req-web")" -eq 150 ] || st_fail "production logged $(wc -l <"$ST_TMP/req-web") of batch C's 150"
extra=$(sort -u "$ST_TMP/req-shadow" | comm -13 "$ST_TMP/req-web" - | wc -l)
[ "$extra" -eq 0 ] || st_fail "$extra requests at the shadow production never had"
twice=$(uniq -d "$ST_TMP/req-shadow" | wc -l)
more=$(($(wc -l <"$ST_TMP/req-shadow") - $(sort -u "$ST_TMP/req-shadow" | wc -l)))
never=$(sort -u "$ST_TMP/req-shadow" | comm -23 "$ST_TMP/req-web" - | wc -l)
window=$(awk -v k="$kill_t" '$1 >= k - 2.5 && $1 <= k' "$ST_TMP/c.times" | wc -l)
echo "  at the shadow: $(sort -u "$ST_TMP/req-shadow" | wc -l) of 150 ($twice twice, $more replays more than once, $never never); production served $window in the 2.5 s before the kill; receiver 4 joined $(field "$s4" kafka_joined_conns) connections"
[ "$more" -le "$window" ] || st_fail "$more requests replayed again after the kill: more than the $window of the last 2.5 s"
[ "$never" -le "$window" ] || st_fail "$never requests never replayed: more than the $window of the last 2.5 s"
[ "$(field "$s4" kafka_joined_conns)" -le "$window" ] || st_fail "receiver 4 joined more connections than the last 2.5 s had"
[ "$(field "$s4" kafka_messages)" -gt 0 ] || st_fail "receiver 4 read nothing"
[ "$(field "$s4" kafka_bad_messages)" = 0 ] && [ "$(field "$s4" kafka_lost_bytes)" = 0 ] ||
	st_fail "receiver 4: bad messages or lost bytes"
# everything after the window reached the shadow
late=$(awk -v k="$kill_t" '$1 > k + 1 { print "GET /f1?b=C&i=" $2 " HTTP/1.1" }' "$ST_TMP/c.times" | sort)
missing=$(comm -23 <(echo "$late") <(sort -u "$ST_TMP/req-shadow") | grep -c . || true)
[ "$missing" -eq 0 ] || st_fail "$missing requests production served after the kill never reached the shadow"

# ---- 3. --from TIME on a fresh group ------------------------------------------------------------
st_log "a fresh group with --from TIME: every partition looked up; the mock answers 'their end'"
tee_start tee3
for b in A B C; do eval "n_$b=\$(at_shadow $b)"; done
rx_start r5 --group fresh --from -1s
R5=$RX_PID
grep -q '0 partitions resume from committed offsets, 0 start at the time.s offset, 3 at their end' "$ST_TMP/r5.err" ||
	{ cat "$ST_TMP/r5.err"; st_fail "receiver 5 did not look up its 3 partitions"; }
# the end is resolved when the fetch starts: a request every 0.5 s until one reaches the
# shadow (those before are not replayed, as they should not be)
for i in $(seq 1 40); do
	client P 1 1 0 >/dev/null
	sleep 0.5
	[ "$(at_shadow P)" -gt 0 ] && break
done
[ "$(at_shadow P)" -gt 0 ] || st_fail "receiver 5 replayed nothing produced after it joined"
client D 30 3 0 >/dev/null
wait_shadow D 30
st_tcp_settle 80 "$NS" "$ST_CLI_NS"
sleep 0.5
st_stop "$R5" TERM || { cat "$ST_TMP/r5.err"; st_fail "receiver 5 exited with an error"; }
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee3.err"; st_fail "tee exited with an error"; }
s5=$(st_summary "$ST_TMP/r5.err")
echo "  receive 5: ${s5#shadowtap: }"
[ "$(field "$s5" kafka_time_ends)" = 3 ] || st_fail "receiver 5: kafka_time_ends $(field "$s5" kafka_time_ends), not 3"
same_requests D
for b in A B C; do
	[ "$(at_shadow $b)" -eq "$(eval echo "\$n_$b")" ] || st_fail "receiver 5 replayed batch $b, which was in the topic before it joined"
done
[ "$(field "$s5" kafka_joined_conns)" = 0 ] || st_fail "receiver 5 joined connections midway"
echo "  ok: $i probes until one reached the shadow, then batch D each once, nothing older"
st_log "done in $(($(date +%s) - T0)) s"
