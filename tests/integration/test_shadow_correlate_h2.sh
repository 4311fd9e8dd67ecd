#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# --correlate on HTTP/2 (docs/SHADOW.md, "Sessions and ids"): the stateful service of
# test_shadow_correlate.sh (stateful_svc.py: a session cookie, JWT bearer tokens signed with
# each instance's own key, UUID orders in JSON and Location) behind an nginx speaking h2c
# (listen ... http2, prior knowledge; nginx passes the requests on to it over HTTP/1.1), as
# production and as the shadow, each instance with its own secret. Clients speak HTTP/2
# (stateful_client_h2.py, python3-h2): log in, read /me, create orders with their streams in
# flight at once, read and change them, and use on a second connection (the cookie split in
# two cookie fields) what they learned on the first.
#  - without --correlate the shadow answers most requests 401/404 (the problem, shown);
#  - with it, at least 99% of the shadow's answers have production's status (by route), the
#    shadow holds every order production does, the counters say values were learned (from
#    HTTP/2 answers) and requests rewritten (HTTP/2 header lists encoded afresh, JSON bodies
#    with their content-length);
#  - the same capture replayed (`replay --correlate`) to a fresh shadow: the same.
# --correlate-wait 5s, as in test_shadow_correlate.sh: four tests at a time under ASan on two
# cores make a Python shadow's answer to a login late.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
. "$(dirname "$0")/stateful_common.sh"
st_require_root
st_require_cmds ip nginx python3 tcpdump bpftool
st_require_py h2
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init

CLIENT=$ST_ROOT/tests/integration/stateful_client_h2.py
USERS=12
ORDERS=3
SVC_PORT=9080
st_netns_pair

# nginx h2c in front of the service on 127.0.0.1:SVC_PORT of its namespace (one per side,
# for the whole test; each run starts fresh services behind them).
export ST_NGINX_LISTEN_OPTS=http2
export ST_NGINX_LOCATIONS="location / { proxy_pass http://127.0.0.1:$SVC_PORT; proxy_redirect off; }"
st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
st_nginx_start shadow "$ST_CLI_NS" "$ST_CLI4:8080"

# run NAME ARGS...: fresh services behind both nginx, the agent with ARGS, the clients; waits
# for the shadow to have answered as many requests as production.
run() {
	local name=$1 nprod
	shift
	svc_start "prod_$name" "$ST_SRV_NS" 127.0.0.1 "$SVC_PORT"
	svc_start "shadow_$name" "$ST_CLI_NS" 127.0.0.1 "$SVC_PORT"
	sh_agent_start "agent_$name" "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" "$@"
	st_log "$name: $USERS users over HTTP/2, $ORDERS orders each, a second connection each"
	st_in "$ST_CLI_NS" timeout 120 "$ST_PY" "$CLIENT" "$ST_SRV4" 80 "$USERS" "$ORDERS" ||
		st_fail "$name: production itself did not answer as expected"
	nprod=$(wc -l <"$ST_TMP/prod_$name.log")
	sh_wait_lines "$ST_TMP/shadow_$name.log" "$nprod" 30 || true
	sh_agent_stop "agent_$name"
	svc_stop "prod_$name"
	svc_stop "shadow_$name"
	stateful_said "$name"
}

run plain
nprod=$(wc -l <"$ST_TMP/prod_plain.log")
sh_expect h2_streams -eq "$nprod"
sh_expect replayed -eq "$nprod"
sh_expect correlated_values -eq 0
stateful_refused plain

st_tcpdump_start rec "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/rec.pcap" 'tcp port 80'
rec_pid=$ST_TCPDUMP_PID
run corr --correlate --correlate-wait 5s
st_tcpdump_stop "$rec_pid" rec || true
nprod=$(wc -l <"$ST_TMP/prod_corr.log")
st_log "counters: $(grep -oE '(h2_streams|correlated_values|rewritten_requests|unmapped_requests|correlate_waits|correlate_evicted)=[0-9]+' <<<"$SH_SUMMARY" | tr '\n' ' ')"
sh_expect h2_streams -eq "$nprod"
sh_expect replayed -eq "$nprod"
sh_expect dropped -eq 0
# each user: the cookie, the token, the user's id and its orders' ids
sh_expect correlated_values -ge $((USERS * (3 + ORDERS)))
# every request after a user's login carries a value of production's
sh_expect rewritten_requests -ge $((nprod - USERS))
stateful_matched "$ST_TMP/prod_corr.log" "$ST_TMP/shadow_corr.log"
st_summary_documented "$SH_SUMMARY" "shadow and replay" "The tap"

# The same traffic from the capture, to a fresh shadow (its own nginx in front).
st_netns_single replay
RNS=$ST_LAST_NS
st_nginx_start replayed "$RNS" 127.0.0.1:8080
svc_start shadow_replay "$RNS" 127.0.0.1 "$SVC_PORT"
st_in "$RNS" timeout 120 "$ST_BIN" replay "$ST_TMP/rec.pcap" --port 80 --to 127.0.0.1:8080 \
	--correlate --correlate-wait 5s 2>"$ST_TMP/replay.err" || { cat "$ST_TMP/replay.err"; st_fail "replay --correlate failed"; }
SH_SUMMARY=$(st_summary "$ST_TMP/replay.err")
st_log "replay counters: $(grep -oE '(replayed|correlated_values|rewritten_requests|unmapped_requests|correlate_waits)=[0-9]+' <<<"$SH_SUMMARY" | tr '\n' ' ')"
sh_expect replayed -eq "$nprod"
sh_expect rewritten_requests -ge $((nprod - USERS))
st_log "replay: the shadow matched $(matched "$ST_TMP/prod_corr.log" "$ST_TMP/shadow_replay.log")‰"
stateful_matched "$ST_TMP/prod_corr.log" "$ST_TMP/shadow_replay.log"
st_log "PASS"
