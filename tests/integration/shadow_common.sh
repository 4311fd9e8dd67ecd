# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Helpers for the shadow/replay integration tests (sourced after lib.sh).

SH_SINK=$ST_ROOT/tests/integration/shadow_sink.py

# sh_sink_start NAME NS ADDR PORT [ARGS...]: the recording shadow server (shadow_sink.py) in NS;
# its log is $ST_TMP/NAME.log (one line per request), pid in SH_SINK_PID.
sh_sink_start() {
	local name=$1 ns=$2 addr=$3 port=$4
	shift 4
	: >"$ST_TMP/$name.log"
	st_in_bg "$ns" python3 "$SH_SINK" "$port" "$ST_TMP/$name.log" --addr "$addr" "$@" \
		>"$ST_TMP/$name.out" 2>&1 </dev/null &
	SH_SINK_PID=$!
	ST_PIDS+=("$SH_SINK_PID")
	st_wait_port "$ns" "$port" 10 "pid=$SH_SINK_PID,"
}

# sh_agent_start NAME NS IFACE ARGS...: `shadowtap shadow --iface IFACE ARGS...` in NS, waits
# until it runs (its start line). Pid in SH_AGENT_PID, stderr in $ST_TMP/NAME.err.
sh_agent_start() {
	local name=$1 ns=$2 ifc=$3
	shift 3
	st_in_bg "$ns" "$ST_BIN" shadow --iface "$ifc" "${ST_RING[@]}" "$@" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	SH_AGENT_PID=$!
	ST_PIDS+=("$SH_AGENT_PID")
	st_wait_started "$SH_AGENT_PID" "$ST_TMP/$name.err" shadow
}

# sh_agent_stop NAME: SIGINT, must exit 0 with a summary line; prints it; in SH_SUMMARY.
sh_agent_stop() {
	local name=$1 rc=0
	st_stop "$SH_AGENT_PID" INT || rc=$?
	grep -v '^libbpf' "$ST_TMP/$name.err" | tail -n 5
	[ "$rc" -eq 0 ] || st_fail "shadowtap exited with $rc after SIGINT"
	SH_SUMMARY=$(st_summary "$ST_TMP/$name.err")
	[ -n "$SH_SUMMARY" ] || st_fail "no summary line on stderr"
}

# sh_field KEY: a number from SH_SUMMARY.
sh_field() { st_summary_field "$SH_SUMMARY" "$1"; }

# sh_expect KEY OP VALUE: e.g. sh_expect dropped -eq 0.
sh_expect() {
	local v
	v=$(sh_field "$1")
	[ -n "$v" ] || st_fail "no $1= in the summary"
	[ "$v" "$2" "$3" ] || st_fail "summary: $1=$v, expected $2 $3"
}

# sh_nginx_requests LOG: "METHOD URI" per request from an nginx access log (combined format).
sh_nginx_requests() { sed -nE 's/^[^"]*"([A-Z]+) ([^ ]+) HTTP\/1\.[01]".*/\1 \2/p' "$1"; }

# sh_sink_requests LOG: "METHOD URI" per request the sink recorded.
sh_sink_requests() { awk -F'\t' '{ print $3 " " $4 }' "$1"; }

# sh_wait_lines FILE N SECONDS: until FILE has at least N lines.
sh_wait_lines() {
	local f=$1 n=$2 secs=$3 i
	for i in $(seq 1 $((secs * 10))); do
		[ "$(wc -l <"$f")" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# sh_rss_kb PID: peak resident set of PID in KiB.
sh_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
