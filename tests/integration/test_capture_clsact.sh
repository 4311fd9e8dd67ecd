#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The clsact fallback (kernels without TCX), forced with --attach clsact: the agent's filter
# is there while it runs; after kill -9 the stale filter stays but production is unharmed;
# the next start removes it and captures; after a clean exit no filter of shadowtap's is
# left, while someone else's filter on the same hooks is never touched.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tc tcpdump python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
URL=http://$ST_SRV4

ours() { st_in "$ST_SRV_NS" tc filter show dev "$ST_SRV_IF" "$1" | grep -c 'handle 0x5354' || true; }

# Someone else's clsact and filter (a u32 that matches nothing, so packets go on to the next
# filter) must survive everything.
st_in "$ST_SRV_NS" tc qdisc add dev "$ST_SRV_IF" clsact
st_in "$ST_SRV_NS" tc filter add dev "$ST_SRV_IF" ingress pref 7 protocol all u32 match u32 0xdeadbeef 0xffffffff at 0
theirs() { st_in "$ST_SRV_NS" tc filter show dev "$ST_SRV_IF" ingress | grep -c "pref 7 u32 chain 0 fh 800::800" || true; }

st_log "start with --attach clsact, then kill -9"
st_capture_start a1 "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/a1.pcap" --port 80 --attach clsact
[ "$(ours ingress)" -ge 1 ] && [ "$(ours egress)" -ge 1 ] || st_fail "no clsact filter while running"
kill -KILL "$ST_AGENT_PID"
wait "$ST_AGENT_PID" 2>/dev/null || true
# The stale filters are what the next start must clean up: without them that path goes untested.
if [ "$(ours ingress)" -ne 1 ] || [ "$(ours egress)" -ne 1 ]; then
	st_fail "expected one stale shadowtap filter per hook after kill -9, got $(ours ingress) ingress, $(ours egress) egress"
fi
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o "$ST_TMP/got" "$URL/f1048576" || st_fail "nginx unreachable with a stale filter"
cmp -s "$ST_TMP/got" "$ST_TMP/web/www/f1048576" || st_fail "download corrupted with a stale filter"

st_log "fresh start: removes the stale filter, captures, exits cleanly"
st_capture_start a2 "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/a2.pcap" --port 80 --attach clsact
if [ "$(ours ingress)" -ne 1 ] || [ "$(ours egress)" -ne 1 ]; then
	st_fail "expected exactly one shadowtap filter per hook (the stale ones removed), got $(ours ingress) ingress, $(ours egress) egress"
fi
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$URL/f100000"
st_stop "$ST_AGENT_PID" INT || st_fail "agent exited non-zero"
grep -q '^shadowtap: summary ' "$ST_TMP/a2.err" || st_fail "no summary line"
n=$(tcpdump -nr "$ST_TMP/a2.pcap" 2>/dev/null | wc -l)
[ "$n" -gt 10 ] || st_fail "second run captured only $n packets"
[ "$(ours ingress)" -eq 0 ] && [ "$(ours egress)" -eq 0 ] || st_fail "shadowtap filter left after a clean exit"
[ "$(theirs)" -eq 1 ] || st_fail "someone else's filter was removed"
st_log "ok: $n packets captured; only the other filter remains"
