# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Helpers of the --correlate tests (test_shadow_correlate.sh, test_receive_correlate.sh),
# sourced after lib.sh: the stateful service (stateful_svc.py), its clients
# (stateful_client.py) and what its logs say ("METHOD ROUTE STATUS" per request).

SF_SVC=$ST_ROOT/tests/integration/stateful_svc.py
SF_CLIENT=$ST_ROOT/tests/integration/stateful_client.py

# sf_start NAME NS ADDR PORT: a fresh instance (new secret, empty store); log $ST_TMP/NAME.log.
sf_start() {
	local name=$1 ns=$2 addr=$3 port=$4 pid
	: >"$ST_TMP/$name.log"
	st_in_bg "$ns" python3 "$SF_SVC" "$addr" "$port" "$ST_TMP/$name.log" >"$ST_TMP/$name.out" 2>&1 </dev/null &
	pid=$!
	ST_PIDS+=("$pid")
	eval "SF_PID_$name=$pid"
	st_wait_port "$ns" "$port" 10 "pid=$pid,"
}
# sf_stop NAME: the instance NAME ends.
sf_stop() { local v="SF_PID_$1"; st_stop "${!v}" TERM || true; }

# sf_matched PROD_LOG SHADOW_LOG: per mille of production's answers the shadow matched, route
# by route and status by status (min of the two counts).
sf_matched() {
	awk 'FNR == NR { p[$0]++; n++; next } { s[$0]++ }
	     END { for (k in p) m += (p[k] < s[k] ? p[k] : s[k]); printf "%d\n", n ? 1000 * m / n : 0 }' "$1" "$2"
}
# sf_refused LOG: per mille of 401/404 answers.
sf_refused() { awk '{ n++ } $3 == 401 || $3 == 404 { r++ } END { printf "%d\n", n ? 1000 * r / n : 0 }' "$1"; }
# sf_orders LOG: the orders an instance created.
sf_orders() { grep -c '^POST /orders 201$' "$1" || true; }
