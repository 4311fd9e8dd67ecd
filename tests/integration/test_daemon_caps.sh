#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The daemon without root: user nobody with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN
# (setpriv: ambient and bounding sets, no_new_privs), as shadowtap.service runs it minus
# User=root. A capture job and a shadow job on a veth under curl traffic: the capture's
# streams equal tcpdump's, the shadow target gets every request, /metrics answers, SIGTERM
# ends it cleanly (exit 0, nothing attached), and the files it wrote are nobody's.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump tcpflow bpftool python3 setpriv
st_require_agent
st_init
. "$ST_ROOT/tests/integration/shadow_common.sh"
D=$ST_TMP
CAPS=+bpf,+perfmon,+net_admin

# the test host's own bounding set must have them to hand them on
setpriv --inh-caps=-all,$CAPS --ambient-caps=-all,$CAPS --bounding-set=-all,$CAPS true 2>/dev/null ||
	st_skip "cannot hand CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN on here (setpriv refused)"

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
sh_sink_start sink "$ST_SRV_NS" 127.0.0.1 9000
mkdir -p "$D/state"
chown nobody "$D/state"
cat >"$D/caps.conf" <<EOF
[daemon]
metrics = 127.0.0.1:19465
control = $D/state/ctl.sock
log-level = info
state-dir = $D/state

[capture web]
iface = $ST_SRV_IF
port = 80
ring-mb = 64
write = web.pcap

[shadow all]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:9000
EOF
chmod 644 "$D/caps.conf"

st_tcpdump_start tcpdump "$ST_SRV_NS" "$ST_SRV_IF" "$D/tcpdump.pcap" 'tcp port 80'
st_in_bg "$ST_SRV_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
	--inh-caps=-all,$CAPS --ambient-caps=-all,$CAPS --bounding-set=-all,$CAPS --no-new-privs \
	"$ST_BIN" daemon --config "$D/caps.conf" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_log "$D/daemon.err" 'daemon running: 2 job\(s\)' 10
grep -q '^CapEff:[[:space:]]*000000c000001000$' "/proc/$DPID/status" ||
	st_fail "the daemon's capabilities: $(grep Cap "/proc/$DPID/status")"
[ "$(stat -c %U "/proc/$DPID")" = nobody ] || st_fail "the daemon does not run as nobody"

for i in $(seq 1 20); do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f$((i % 2 ? 100 : 65537))"
done
# (the answer taken whole first: grep -q's early exit would fail curl under pipefail)
out=$(st_in "$ST_SRV_NS" curl -s -S --max-time 5 "http://127.0.0.1:19465/metrics")
grep -q '^shadowtap_job_up{job="web",command="capture"} 1$' <<<"$out" ||
	st_fail "/metrics: the capture job is not up"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
rc=0
st_stop "$DPID" TERM || rc=$?
grep -v '^libbpf' "$D/daemon.err" | tail -n 4 | cut -c1-200
[ "$rc" -eq 0 ] || st_fail "the daemon exited with $rc"
leaked=$(st_leaked_shadowtap_links)
[ -z "$leaked" ] || st_fail "links left: $leaked"
[ "$(stat -c %U "$D/state/web.pcap")" = nobody ] || st_fail "web.pcap is not nobody's"
st_compare_captures "$D/state/web.pcap" "$D/tcpdump.pcap" "$D" || st_fail "the capture differs from tcpdump's"
n=$(wc -l <"$D/sink.log")
[ "$n" -eq 20 ] || st_fail "the shadow target got $n of 20 requests"
st_log "PASS"
