#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `kill -9` of `shadowtap capture`, then a fresh start: production traffic keeps flowing
# meanwhile, the fresh agent captures, and once it has exited the interface is exactly as it
# was before the first start (tc qdiscs and filters, bpftool net, no shadowtap BPF link left).
# Done twice: on a bare interface, and on one where someone else's clsact qdisc and BPF
# filters (ingress and egress) are installed, which must survive untouched.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tc bpftool clang tcpdump python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
URL=http://$ST_SRV4

round() {
	local tag=$1 before after rc summary pk
	before=$(st_attach_state "$ST_SRV_NS" "$ST_SRV_IF")
	echo "$before" >"$ST_TMP/state-before-$tag"

	st_log "[$tag] start, traffic, kill -9"
	st_capture_start "agent1-$tag" "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/a1-$tag.pcap" --port 80
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$URL/f100000" -o /dev/null "$URL/f1"
	st_attach_state "$ST_SRV_NS" "$ST_SRV_IF" >"$ST_TMP/state-running-$tag"
	kill -KILL "$ST_AGENT_PID"
	wait "$ST_AGENT_PID" 2>/dev/null || true
	st_attach_state "$ST_SRV_NS" "$ST_SRV_IF" >"$ST_TMP/state-killed-$tag"
	if ! diff -q "$ST_TMP/state-before-$tag" "$ST_TMP/state-killed-$tag" >/dev/null; then
		st_log "[$tag] left attached by the killed agent (cleaned up by the next start):"
		diff "$ST_TMP/state-before-$tag" "$ST_TMP/state-killed-$tag" | sed 's/^/    /' || true
	fi

	# Production is unharmed by whatever the killed agent left.
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o "$ST_TMP/got" "$URL/f1048576" ||
		st_fail "[$tag] nginx unreachable after kill -9 of the agent"
	cmp -s "$ST_TMP/got" "$ST_TMP/web/www/f1048576" || st_fail "[$tag] download corrupted after kill -9"

	st_log "[$tag] fresh start with --duration 3"
	st_capture_start "agent2-$tag" "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/a2-$tag.pcap" --port 80 --duration 3
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$URL/f65536" -o /dev/null "$URL/f100"
	rc=0
	for _ in $(seq 1 100); do st_alive "$ST_AGENT_PID" || break; sleep 0.1; done
	st_alive "$ST_AGENT_PID" && st_fail "[$tag] --duration 3 did not end the fresh agent within 10 s"
	wait "$ST_AGENT_PID" || rc=$?
	cat "$ST_TMP/agent2-$tag.err"
	[ "$rc" -eq 0 ] || st_fail "[$tag] fresh agent exited with $rc"
	summary=$(st_summary "$ST_TMP/agent2-$tag.err")
	[ -n "$summary" ] || st_fail "[$tag] fresh agent printed no summary"
	pk=$(st_pcap_packets "$ST_TMP/a2-$tag.pcap")
	[ "$pk" -gt 0 ] || st_fail "[$tag] fresh agent captured nothing"

	after=$(st_attach_state "$ST_SRV_NS" "$ST_SRV_IF")
	echo "$after" >"$ST_TMP/state-after-$tag"
	if [ "$before" != "$after" ]; then
		diff "$ST_TMP/state-before-$tag" "$ST_TMP/state-after-$tag" || true
		st_fail "[$tag] interface not as before after kill -9 and a fresh start"
	fi
	left=$(st_leaked_shadowtap_links)
	[ -z "$left" ] || st_fail "[$tag] shadowtap BPF links left: $left"
	st_log "[$tag] interface as before; fresh agent captured $pk packets"
}

round bare

# Someone else's clsact qdisc and filters on both hooks.
cat >"$ST_TMP/foreign.bpf.c" <<'C'
#include <linux/bpf.h>
__attribute__((section("tc"), used)) int foreign_tc(struct __sk_buff *skb) { return -1; }
char _license[] __attribute__((section("license"), used)) = "GPL";
C
incs=$(clang -v -E - </dev/null 2>&1 | sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
# shellcheck disable=SC2086
clang -O2 -target bpf $incs -c "$ST_TMP/foreign.bpf.c" -o "$ST_TMP/foreign.bpf.o"
st_in "$ST_SRV_NS" tc qdisc add dev "$ST_SRV_IF" clsact
st_in "$ST_SRV_NS" tc filter add dev "$ST_SRV_IF" ingress prio 7 bpf da obj "$ST_TMP/foreign.bpf.o" sec tc
st_in "$ST_SRV_NS" tc filter add dev "$ST_SRV_IF" egress prio 7 bpf da obj "$ST_TMP/foreign.bpf.o" sec tc
round foreign
grep -q foreign_tc "$ST_TMP/state-after-foreign" || st_fail "the foreign filters are gone"
st_log "PASS"
