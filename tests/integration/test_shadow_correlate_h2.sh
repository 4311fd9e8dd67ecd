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
#    with their content-length); tap compare with a reference (a third instance, its own map)
#    counts the sessions and ids as correlated and finds the one regression the candidate
#    has (it changes $.user of GET /me), nothing else;
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

USERS=12
ORDERS=3
SVC_PORT=9080
REF_PORT=9081
st_netns_pair

# nginx h2c in front of the service on 127.0.0.1:SVC_PORT of its namespace (one per side,
# and the reference's on REF_PORT, for the whole test; each run starts fresh services behind
# them).
export ST_NGINX_LISTEN_OPTS=http2
nginx_to() { ST_NGINX_LOCATIONS="location / { proxy_pass http://127.0.0.1:$1; proxy_redirect off; }"; }
nginx_to "$SVC_PORT"
export ST_NGINX_LOCATIONS
st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
st_nginx_start shadow "$ST_CLI_NS" "$ST_CLI4:8080"
nginx_to "$REF_PORT"
st_nginx_start ref "$ST_CLI_NS" "$ST_CLI4:8081"
nginx_to "$SVC_PORT" # (the replay's, below)

STATEFUL_CLIENT=("$ST_PY" "$ST_ROOT/tests/integration/stateful_client_h2.py")
STATEFUL_PROD=(127.0.0.1 "$SVC_PORT")
STATEFUL_SHADOW=(127.0.0.1 "$SVC_PORT")
STATEFUL_REF=(127.0.0.1 "$REF_PORT")

stateful_run plain
nprod=$(wc -l <"$ST_TMP/prod_plain.log")
sh_expect h2_streams -eq "$nprod"
sh_expect replayed -eq "$nprod"
sh_expect correlated_values -eq 0
stateful_refused plain

st_tcpdump_start rec "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/rec.pcap" 'tcp port 80'
rec_pid=$ST_TCPDUMP_PID
MUTATE=1 stateful_run corr --correlate --correlate-wait 5s --reference "$ST_CLI4:8081" \
	--diffs "$ST_TMP/diffs.jsonl"
st_tcpdump_stop "$rec_pid" rec || true
nprod=$(wc -l <"$ST_TMP/prod_corr.log")
st_log "counters: $(grep -oE '(h2_streams|correlated_values|rewritten_requests|unmapped_requests|correlate_waits|correlate_evicted)=[0-9]+' <<<"$SH_SUMMARY" | tr '\n' ' ')"
sh_expect h2_streams -eq "$nprod"
sh_expect replayed -eq $((2 * nprod)) # the candidate and the reference
sh_expect dropped -eq 0
# each user: the cookie, the token, the user's id and its orders' ids
sh_expect correlated_values -ge $((2 * USERS * (3 + ORDERS)))
# every request after a user's login carries a value of production's
sh_expect rewritten_requests -ge $((2 * (nprod - USERS)))
stateful_matched "$ST_TMP/prod_corr.log" "$ST_TMP/shadow_corr.log"
stateful_matched "$ST_TMP/prod_corr.log" "$ST_TMP/ref_corr.log"
stateful_compare corr "$ST_TMP/diffs.jsonl"
st_summary_documented "$SH_SUMMARY" "shadow and replay" "Tap compare" "The tap"

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
