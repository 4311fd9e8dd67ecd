#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The differential test of HTTP/2 (test_shadow_smuggle.sh's, for HTTP/2): random traffic from
# a client that writes its frames by hand (h2diff.py: prior knowledge and h2c upgrades, HPACK
# dynamic table churn and table size changes, CONTINUATION splits, padding, PRIORITY, PING,
# interleaved DATA of many streams, trailers, client resets mid-body, GOAWAY; malformed
# requests now and then) to a production server that acts as each request says (answers,
# errors, refuses with 400, resets, REFUSED_STREAM, never answers, GOAWAY) and logs what it
# ran. Two shadows (both targets of one agent) log everything they run, valid or not. Each
# shadow's log must equal production's, call for call, bodies and fields exact, minus what
# production refused: nothing production refused, reset or never answered reaches a shadow.
#   ST_H2DIFF_CONNS=N ST_H2DIFF_SEED=S   more connections, another seed (make fuzz runs many)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip bpftool
st_require_py h2 hpack hyperframe
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init

CONNS=${ST_H2DIFF_CONNS:-60}
SEED=${ST_H2DIFF_SEED:-1}
GEN=$ST_ROOT/tests/integration/h2diff.py
# h2_start NAME NS ADDR PORT ROLE: a server, its log $ST_TMP/NAME.log
h2_start() {
	: >"$ST_TMP/$1.log"
	st_in_bg "$2" "$ST_PY" "$GEN" serve "$3" "$4" "$ST_TMP/$1.log" "$5" >"$ST_TMP/$1.out" 2>&1 </dev/null &
	ST_PIDS+=("$!")
	st_wait_port "$2" "$4" 20 "pid=$!,"
}

st_netns_pair
h2_start prod "$ST_SRV_NS" "$ST_SRV4" 80 prod
h2_start a "$ST_CLI_NS" "$ST_CLI4" 8080 shadow
h2_start b "$ST_CLI_NS" "$ST_CLI4" 8081 shadow
# the traffic, for a failure's post-mortem (ST_KEEP=fail keeps it)
st_tcpdump_start cap "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/h2diff.pcap" "tcp port 80"
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" --to "$ST_CLI4:8081" \
	--no-mark --drain 20

st_log "random HTTP/2 traffic: $CONNS connections, seed $SEED"
st_in "$ST_CLI_NS" timeout $((60 + CONNS / 10)) "$ST_PY" "$GEN" client "$ST_SRV4" 80 "$SEED" "$CONNS" ||
	st_fail "the client failed (seed $SEED)"
grep -v '^REFUSED ' "$ST_TMP/prod.log" | sort >"$ST_TMP/want"
n=$(wc -l <"$ST_TMP/want")
sh_wait_lines "$ST_TMP/a.log" "$n" 30 || true
sh_wait_lines "$ST_TMP/b.log" "$n" 10 || true
sh_agent_stop agent
st_tcpdump_stop "$ST_TCPDUMP_PID" cap || true
st_log "production ran $(wc -l <"$ST_TMP/prod.log") requests ($(grep -c '^REFUSED ' "$ST_TMP/prod.log" || true) refused); shadows: $(wc -l <"$ST_TMP/a.log"), $(wc -l <"$ST_TMP/b.log")"
st_log "h2=$(sh_field h2) h2_upgrades=$(sh_field h2_upgrades) h2_streams=$(sh_field h2_streams) h2_reset=$(sh_field h2_reset) h2_refused=$(sh_field h2_refused) prod_rejected=$(sh_field prod_rejected) prod_unanswered=$(sh_field prod_unanswered) h2_errors=$(sh_field h2_errors)"
sh_expect dropped -eq 0
sh_expect h2_gap -eq 0
[ "$n" -gt $((CONNS * 2)) ] || st_fail "production ran only $n requests (seed $SEED)"
for s in a b; do
	if ! diff "$ST_TMP/want" <(sort "$ST_TMP/$s.log") >"$ST_TMP/diff-$s"; then
		head -n 20 "$ST_TMP/diff-$s"
		st_fail "shadow $s's log differs from what production ran (seed $SEED; < production, > the shadow)"
	fi
done
st_log "PASS"
