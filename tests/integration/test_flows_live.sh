#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap flows` from live capture: --iface on the server's veth, then --cgroup on nginx's
# cgroup, while tcpdump captures the same veth. The files flows writes live must be the
# files tcpflow reassembles from tcpdump's pcap (names mapped), byte for byte; SIGINT and
# --duration both end the run with exit 0 and a summary line.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow bpftool python3 sha256sum
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" flows --help >/dev/null 2>&1 || st_skip "$ST_BIN has no working 'flows --help' yet"
st_init

O=$ST_TMP/out
mkdir -p "$O"
mount -t tmpfs -o size=4g,mode=0755 st-flows-live "$O"
st_on_cleanup "umount -l '$O'"

tcpflow_digest() {
	st_flow_digest "$1" | python3 -c '
import re, sys
pat = re.compile(r"^(.+)\.(\d{5})-(.+)\.(\d{5})(?:c(\d+))?(?:--\d+)?$")
def addr(a):
    return ".".join(str(int(o)) for o in a.split(".")) if "." in a else a
for line in sys.stdin:
    d, n = line.rstrip("\n").split("  ", 1)
    m = pat.match(n)
    if not m:
        print(d + "  UNPARSED:" + n); continue
    o = "%s.%d-%s.%d" % (addr(m.group(1)), int(m.group(2)), addr(m.group(3)), int(m.group(4)))
    print(d + "  " + o + ("#%d" % (int(m.group(5)) + 1) if m.group(5) else ""))
' | sort -k2
}

# flows_start NAME TARGET: live flows in the server namespace; waits until it runs.
flows_start() {
	local name=$1 target=$2 mode=--iface ns=$ST_SRV_NS
	# a cgroup is attached from outside the namespace (ip netns exec hides the cgroup mount)
	[ -d "$target" ] && { mode=--cgroup; ns=; }
	st_in_bg "$ns" "$ST_BIN" flows "$mode" "$target" "${ST_RING[@]}" --port 80 -o "$O/$name" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	FLOWS_PID=$!
	ST_PIDS+=("$FLOWS_PID")
	st_wait_started "$FLOWS_PID" "$ST_TMP/$name.err" flows
}

# round NAME TARGET: capture one round of traffic with flows and tcpdump, compare.
round() {
	local name=$1 target=$2 rc=0 summary dropped
	flows_start "$name" "$target"
	st_tcpdump_start "td-$name" "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/$name.pcap" 'tcp port 80'
	st_log "$name: traffic"
	st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$WWW"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$(st_url "$ST_SRV6" /f100000)"
	st_in "$ST_CLI_NS" wrk -t1 -c4 -d1s --timeout 5s -H 'Connection: close' "http://$ST_SRV4/f1448" |
		sed -n '/Requests\/sec/p'
	st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
	st_tcpdump_stop "$ST_TCPDUMP_PID" "td-$name" || true
	dropped=$(st_tcpdump_dropped "$ST_TMP/td-$name.err")
	[ "${dropped:-0}" -eq 0 ] || st_fail "tcpdump dropped $dropped packets: no comparison possible"
	st_stop "$FLOWS_PID" INT || rc=$?
	[ "$rc" -eq 0 ] || { cat "$ST_TMP/$name.err"; st_fail "flows $name exited with $rc after SIGINT"; }
	summary=$(st_summary "$ST_TMP/$name.err")
	[ -n "$summary" ] || { cat "$ST_TMP/$name.err"; st_fail "flows $name printed no summary"; }
	echo "  ${summary#shadowtap: }"
	grep -E 'lost|gap:' "$ST_TMP/$name.err" | head -n 5 || true
	st_tcpflow "$ST_TMP/$name.pcap" "$O/tcpflow-$name"
	tcpflow_digest "$O/tcpflow-$name" >"$ST_TMP/d-tcpflow-$name"
	st_flow_digest "$O/$name" | sort -k2 >"$ST_TMP/d-$name"
	if ! cmp -s "$ST_TMP/d-$name" "$ST_TMP/d-tcpflow-$name"; then
		echo "live flows: $(wc -l <"$ST_TMP/d-$name") files; tcpflow: $(wc -l <"$ST_TMP/d-tcpflow-$name")"
		diff "$ST_TMP/d-$name" "$ST_TMP/d-tcpflow-$name" | head -n 20
		st_fail "$name: live flows differ from tcpflow on tcpdump's capture"
	fi
	[ "$(wc -l <"$ST_TMP/d-$name")" -gt 100 ] || st_fail "$name: too few files"
	st_log "$name: identical to tcpflow ($(wc -l <"$ST_TMP/d-$name") files)"
}

st_netns_pair
CG=
if [ -n "$(st_cgroup2_root)" ]; then
	st_cgroup_create web
	CG=$ST_LAST_CGROUP
	ST_NGINX_CGROUP=$CG
fi
st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
WWW=$ST_TMP/web/www

round iface "$ST_SRV_IF"
if [ -n "$CG" ]; then
	round cgroup "$CG"
else
	st_log "cgroup v2 not mounted: --cgroup round skipped"
fi

st_log "--duration ends the run by itself"
t0=$(date +%s)
rc=0
st_in "$ST_SRV_NS" timeout 20 "$ST_BIN" flows --iface "$ST_SRV_IF" "${ST_RING[@]}" --port 80 -o "$O/dur" \
	--duration 1.5 2>"$ST_TMP/dur.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/dur.err"; st_fail "--duration run exited with $rc"; }
[ $(( $(date +%s) - t0 )) -le 10 ] || st_fail "--duration 1.5 took more than 10 s"
[ -n "$(st_summary "$ST_TMP/dur.err")" ] || st_fail "--duration run printed no summary"
echo "PASS"
