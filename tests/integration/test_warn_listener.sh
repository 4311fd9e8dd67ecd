#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What a live command can tell at once about its target is said at its start, after its start
# line: nothing listens on a --port in its network namespace (ss -ltn's own table, read
# through sock_diag: listening sockets only), one line per such port; and, --warn-idle SEC
# after the start, no packet of its ports has come. A port a service listens on and gets
# traffic on says neither.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl bpftool
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
ERR=$ST_TMP/quiet.err

st_log "ports 80 (nginx) and 81 (nothing): one line for 81; no packet of either in 1 s"
st_capture_start quiet "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/quiet.pcap" --port 80 --port 81 \
	--warn-idle 1
st_wait_log "$ERR" "^shadowtap: capture: nothing listens on port 81 in this network namespace \\(ss -ltn sport = :81\\): a service's connections show once it listens there$" 10
st_wait_log "$ERR" "^shadowtap: capture: no packet of ports 80,81 on interface $ST_SRV_IF in 1 s \\(is the service receiving traffic there\\?" 10
grep -q 'nothing listens on port 80 ' "$ERR" && st_fail "port 80 has nginx: nothing to say"
# the start line comes first: the warnings are about a command that runs
[ "$(grep -n '' "$ERR" | grep -m1 'capture running:' | cut -d: -f1)" -lt \
	"$(grep -n '' "$ERR" | grep -m1 'nothing listens' | cut -d: -f1)" ] ||
	{ cat "$ERR"; st_fail "a warning came before the start line"; }
st_stop "$ST_AGENT_PID" INT || st_fail "capture exited with an error"
[ "$(grep -c 'nothing listens' "$ERR")" -eq 1 ] && [ "$(grep -c 'no packet of' "$ERR")" -eq 1 ] ||
	{ cat "$ERR"; st_fail "a warning was said more than once"; }

st_log "port 80 with traffic: neither warning"
ERR=$ST_TMP/busy.err
st_capture_start busy "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/busy.pcap" --port 80 --warn-idle 1 \
	--duration 3
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f1"
rc=0
wait "$ST_AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ERR"; st_fail "capture --duration 3 exited $rc"; }
grep -Eq 'nothing listens|no packet of' "$ERR" && { cat "$ERR"; st_fail "a busy port was warned about"; }
[ "$(st_summary_field "$(st_summary "$ERR")" packets)" -gt 0 ] || st_fail "nothing captured"

st_log "-q: no start line; the warnings stay"
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" capture -i "$ST_SRV_IF" -p 82 -w "$ST_TMP/q.pcap" --duration 1 -q \
	2>"$ST_TMP/q.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/q.err"; st_fail "capture -q exited $rc"; }
grep -q 'running:' "$ST_TMP/q.err" && st_fail "-q printed the start line"
grep -q 'nothing listens on port 82 ' "$ST_TMP/q.err" || { cat "$ST_TMP/q.err"; st_fail "-q hid a warning"; }
st_log "PASS"
