# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Helpers of the --correlate tests (test_shadow_correlate.sh, test_shadow_correlate_h2.sh,
# test_receive_correlate.sh),
# sourced after lib.sh: instances of stateful_svc.py and what their logs say.

SVC=$ST_ROOT/tests/integration/stateful_svc.py

# svc_start NAME NS ADDR PORT: a fresh instance (new secret, empty store); log $ST_TMP/NAME.log.
svc_start() {
	local name=$1 ns=$2 addr=$3 port=$4 pid
	: >"$ST_TMP/$name.log"
	st_in_bg "$ns" python3 "$SVC" "$addr" "$port" "$ST_TMP/$name.log" >"$ST_TMP/$name.out" 2>&1 </dev/null &
	pid=$!
	ST_PIDS+=("$pid")
	eval "SVC_PID_$name=$pid"
	st_wait_port "$ns" "$port" 10 "pid=$pid,"
}
svc_stop() { local v="SVC_PID_$1"; st_stop "${!v}" TERM || true; }

# matched PROD_LOG SHADOW_LOG: per mille of production's answers the shadow matched, route by
# route and status by status (min of the two counts).
matched() {
	awk 'FNR == NR { p[$0]++; n++; next } { s[$0]++ }
	     END { for (k in p) m += (p[k] < s[k] ? p[k] : s[k]); printf "%d\n", n ? 1000 * m / n : 0 }' "$1" "$2"
}
# refused LOG: per mille of 401/404 answers.
refused() { awk '{ n++ } $3 == 401 || $3 == 404 { r++ } END { printf "%d\n", n ? 1000 * r / n : 0 }' "$1"; }
orders() { grep -c '^POST /orders 201$' "$1" || true; }

# stateful_said NAME: a run's line: production's answers (prod_NAME.log) and the shadow's
# (shadow_NAME.log), how many the shadow matched, how many it refused.
stateful_said() {
	local name=$1
	st_log "$name: production answered $(wc -l <"$ST_TMP/prod_$name.log"), the shadow" \
		"$(wc -l <"$ST_TMP/shadow_$name.log"):" \
		"matched $(matched "$ST_TMP/prod_$name.log" "$ST_TMP/shadow_$name.log")‰," \
		"shadow refused $(refused "$ST_TMP/shadow_$name.log")‰"
}

# stateful_refused NAME: a run without --correlate shows the problem: the shadow refused most
# requests (401, 404), production none.
stateful_refused() {
	local r
	r=$(refused "$ST_TMP/shadow_$1.log")
	[ "$r" -gt 500 ] || st_fail "without --correlate the shadow refused only $r‰ (the test shows nothing)"
	[ "$(refused "$ST_TMP/prod_$1.log")" -eq 0 ] || st_fail "production refused requests"
}

# stateful_matched PROD_LOG SHADOW_LOG: the shadow answered at least 99% of production's
# statuses (route by route) and holds every order production does.
stateful_matched() {
	local p=$1 s=$2 m
	m=$(matched "$p" "$s")
	[ "$m" -ge 990 ] || { sort "$p" | uniq -c; sort "$s" | uniq -c;
		st_fail "with --correlate the shadow matched production's statuses for only $m‰"; }
	[ "$(orders "$s")" -eq "$(orders "$p")" ] ||
		st_fail "the shadow holds $(orders "$s") orders, production $(orders "$p")"
}

# stateful_run NAME ARGS...: fresh production, shadow (MUTATE=1: with the candidate's
# regression) and reference instances in the namespaces of st_netns_pair, at STATEFUL_PROD,
# STATEFUL_SHADOW, STATEFUL_REF (arrays: ADDR PORT); `shadow` with ARGS from port 80 to
# $ST_CLI4:8080; the clients (STATEFUL_CLIENT, an array: the command, given HOST PORT USERS
# ORDERS); waits for the shadow to have answered as many requests as production. The summary
# is in SH_SUMMARY.
stateful_run() {
	local name=$1 nprod
	shift
	svc_start "prod_$name" "$ST_SRV_NS" "${STATEFUL_PROD[@]}"
	STATEFUL_MUTATE=${MUTATE:-} svc_start "shadow_$name" "$ST_CLI_NS" "${STATEFUL_SHADOW[@]}"
	svc_start "ref_$name" "$ST_CLI_NS" "${STATEFUL_REF[@]}"
	sh_agent_start "agent_$name" "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" "$@"
	st_log "$name: $USERS users, $ORDERS orders each, a second connection each"
	st_in "$ST_CLI_NS" timeout 120 "${STATEFUL_CLIENT[@]}" "$ST_SRV4" 80 "$USERS" "$ORDERS" ||
		st_fail "$name: production itself did not answer as expected"
	nprod=$(wc -l <"$ST_TMP/prod_$name.log")
	sh_wait_lines "$ST_TMP/shadow_$name.log" "$nprod" 30 || true
	sh_agent_stop "agent_$name"
	svc_stop "prod_$name"
	svc_stop "shadow_$name"
	svc_stop "ref_$name"
	stateful_said "$name"
}

# stateful_compare NAME DIFFS: tap compare of run NAME (a candidate with MUTATE=1 and a
# reference, --diffs DIFFS) explained the sessions and ids (correlated) and found the
# candidate's one regression (its GET /me changes $.user) on every /me, nothing else.
stateful_compare() {
	local prod=$ST_TMP/prod_$1.log diffs=$2 nme n
	st_log "compare: compared=$(sh_field compared) correlated=$(sh_field correlated) differing=$(sh_field differing)"
	nme=$(grep -c '^GET /me 200$' "$prod")
	sh_expect compared -eq "$(wc -l <"$prod")"
	sh_expect correlated -gt "$(wc -l <"$prod")"
	n=$(grep -c '"\$\.user"' "$diffs" || true)
	[ "$n" -eq "$nme" ] || st_fail "--diffs: $n lines name \$.user, want $nme (the candidate's regression)"
	if grep -v '"\$\.user"' "$diffs" | grep -q .; then
		grep -v '"\$\.user"' "$diffs" | head -c 3000; st_fail "--diffs holds more than the regression"
	fi
	sh_expect differing -eq "$nme"
}
