#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Coordinated omission (docs/LOAD.md): the target stops answering for 1 s in a 10 s load
# test at a constant 300 requests/s. The recording's 20 keep-alive clients each wait for an
# answer before their next request, so during the stall only 20 requests are on the wire;
# the other ~300 that fall due wait for them. Latency from due (corrected) must show the
# stall: p99 >= 500 ms; latency from the send (raw, what wrk or ab would report) does not:
# its p99 stays low. The timeline shows the rate as it was: next to nothing answered during
# the stall, a burst after it. The report shows both latencies.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/load_common.sh"
ld_init test_load_stall
# one load test at a time: each runs its generator and target at nice -10 (LD_NICE)
st_exclusive load
PCAP=$ST_TMP/rec.pcap
st_log "recording: 20 keep-alive clients, 3200 requests (one pass outlasts the test)"
ld_record "$PCAP" 20 160 0

st_netns_single target
TNS=$ST_LAST_NS
# every answer after 2 ms, none from 4 s to 5 s after the first request
ld_target_start target "$TNS" 8080 --fast-ms 2 --slow-every 0 --stall-at 4 --stall-for 1

R=$ST_TMP/stall.html
RJ=$ST_TMP/stall.json
rc=0
st_in "$TNS" timeout 60 "${LD_NICE[@]}" "$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:8080 --rate 300 \
	--pace constant --duration 10 --report "$R" --report-json "$RJ" 2>"$ST_TMP/replay.err" || rc=$?
tail -n 1 "$ST_TMP/replay.err"
[ "$rc" -eq 0 ] || st_fail "replay --rate exited with $rc"
st_stop "$LD_TARGET_PID" INT || true
cp "$RJ" "$R" "$ST_TMP/replay.err" "$ST_TMP/target.log" "$LOGS"/
over=$(grep '^oversleep_ms' "$ST_TMP/target.log" | tail -n1)
st_log "target: $over"

python3 - "$RJ" "$over" <<'PY' || st_fail "the stall is not what the figures say (above)"
import json, sys
r = json.load(open(sys.argv[1]))
over = dict(kv.split("=") for kv in sys.argv[2].split()[1:])
tmax = float(over["max"])
lat, raw, lag = r["latency_ms"], r["latency_raw_ms"], r["lag_ms"]
tl = r["timeline"]["buckets"]
print("corrected p50 %.2f p99 %.2f max %.2f ms; raw p50 %.2f p99 %.2f max %.2f ms; generator "
      "lag p99 %.2f max %.2f ms; answered per second %s" %
      (lat["p50"], lat["p99"], lat["max"], raw["p50"], raw["p99"], raw["max"], lag["p99"],
       lag["max"], [b["answered"] for b in tl]))
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL:", what)
        ok = False
check(r["due"] == 3000 and r["answered"] == 3000, "due %d answered %d, want 3000" % (r["due"], r["answered"]))
check(sum(r["errors"].values()) == 0, "errors %s" % r["errors"])
# corrected: ~10% of the requests fell due in the stall and waited up to 1 s
check(lat["p99"] >= 500, "corrected p99 %.2f ms, want >= 500" % lat["p99"])
check(lat["max"] >= 900, "corrected max %.2f ms, want about 1000" % lat["max"])
# raw: only the 20 on the wire waited, under 1% of 3000 (above 20 ms: only what the
# generator and the target say of their own lateness)
hi = 20 + lag["max"] + tmax
check(raw["p99"] < hi, "raw p99 %.2f ms, want < %.2f" % (raw["p99"], hi))
# as it was: the stall's second (the target's t=4 s is the schedule's 4 s and a connect) next
# to empty, then the burst of what waited
stall = min(b["answered"] for b in tl[3:6])
burst = max(b["answered"] for b in tl[4:7])
check(stall < 0.5 * 300, "the stall's second answered %d, want next to nothing" % stall)
check(burst > 1.3 * 300, "the second after the stall answered %d, want a burst" % burst)
sys.exit(0 if ok else 1)
PY
grep -q '<polyline class="corrected"' "$R" && grep -q '<polyline class="raw"' "$R" ||
	st_fail "the HTML report does not show both latencies"
st_log "PASS"
