#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A failing job does not take the others down: a daemon with a capture job on a veth and one
# on an interface that does not exist yet. The second is reported (ctl status: retrying, why;
# /healthz 503; shadowtap_job_failures_total), retried with backoff while the first captures;
# once the interface appears it starts on it by itself. Removing a job by reload stops it
# alone (its summary, its file complete at its name).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump bpftool python3
st_require_agent
st_init
D=$ST_TMP

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
METRICS=127.0.0.1:19466
cat >"$D/f.conf" <<EOF
[daemon]
metrics = $METRICS
control = $D/ctl.sock
log-level = info
state-dir = $D/state

[capture web]
iface = $ST_SRV_IF
port = 80
write = web.pcap

[capture late]
iface = st-late
port = 80
write = late.pcap
EOF
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$D/f.conf" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_log "$D/daemon.err" 'daemon running: 2 job\(s\)' 10
ctl() { st_in "$ST_SRV_NS" "$ST_BIN" ctl --socket "$D/ctl.sock" "$@"; }
metric() { st_in "$ST_SRV_NS" curl -s --max-time 5 "http://$METRICS/metrics" | sed -n "s/^$1 //p"; }

out=$(ctl status)
echo "$out"
grep -Eq '^web .* running ' <<<"$out" || st_fail "the good job is not running"
grep -Eq '^late .* retrying .*could not attach to interface st-late.*next try in' <<<"$out" ||
	st_fail "the failing job is not reported as retrying with its reason"
code=$(st_in "$ST_SRV_NS" curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")
[ "$code" = 503 ] || st_fail "/healthz answered $code with a job down"
grep -q 'job late: could not attach to interface st-late' "$D/daemon.err" || st_fail "no log line for the failure"

for i in $(seq 1 5); do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f1448"; done
sleep 3 # backoff 1 s, 2 s: a few tries
f=$(metric 'shadowtap_job_failures_total{job="late",command="capture"}')
[ "${f:-0}" -ge 2 ] || st_fail "job_failures for the late job: '${f}', expected >= 2 after 3 s"
p=$(metric 'shadowtap_packets_total{job="web",command="capture"}')
[ "${p:-0}" -gt 0 ] || st_fail "the good job captured nothing meanwhile"

st_log "the interface appears: the job starts on it"
ip -n "$ST_SRV_NS" link add st-late type veth peer name st-late9
ip -n "$ST_SRV_NS" link set st-late up
ip -n "$ST_SRV_NS" link set st-late9 up
ok=0
for i in $(seq 1 100); do
	out=$(ctl status)
	grep -Eq '^late .* running ' <<<"$out" && { ok=1; break; }
	sleep 0.1
done
[ $ok -eq 1 ] || { ctl status; st_fail "the late job did not start within 10 s of its interface"; }
# its last error stays in ctl status, with when and the line it logged
echo "$out"
grep -Eq '^    last error [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z: could not attach to interface st-late \(.*\): job late: .*st-late' <<<"$out" ||
	st_fail "ctl status: the late job's last error"
grep -q 'last error' <<<"$(grep -A3 '^web ' <<<"$out")" && st_fail "ctl status: a last error for the good job"
code=$(st_in "$ST_SRV_NS" curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")
[ "$code" = 200 ] || st_fail "/healthz answered $code with every job up"

st_log "reload without the late job: it stops alone"
sed -i '/^\[capture late\]/,$d' "$D/f.conf"
out=$(ctl reload)
echo "$out"
grep -q '^ok: 1 job(s): 0 added, 1 removed, 0 restarted, 0 updated in place, 1 unchanged' <<<"$out" ||
	st_fail "reload: unexpected answer"
grep -q '^shadowtap: summary job=late ' "$D/daemon.err" || st_fail "no summary for the removed job"
[ -f "$D/state/late.pcap" ] || st_fail "the removed job's file is not complete at its name"
out=$(ctl status)
grep -Eq '^web .* running ' <<<"$out" || st_fail "the web job stopped with the other"

rc=0
st_stop "$DPID" TERM || rc=$?
[ "$rc" -eq 0 ] || st_fail "the daemon exited with $rc"
leaked=$(st_leaked_shadowtap_links)
[ -z "$leaked" ] || st_fail "links left: $leaked"
st_log "SIGTERM with two shadow jobs whose target never reads (drain = 10 each): < 2 s"
. "$ST_ROOT/tests/integration/shadow_common.sh"
sh_sink_start stuck "$ST_SRV_NS" 127.0.0.1 9001 --mode noread
cat >"$D/s.conf" <<EOF
[daemon]
control = $D/ctl2.sock
[shadow s1]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:9001
drain = 10
[shadow s2]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:9001
drain = 10
EOF
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$D/s.conf" >"$D/d2.out" 2>"$D/d2.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
for i in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" && break; sleep 0.1; done
for i in $(seq 1 5); do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/web/www/f1048576" "http://$ST_SRV4/upload"
done
sleep 0.5
t0=$(date +%s%N)
rc=0
st_stop "$DPID" TERM || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
grep '^shadowtap: summary' "$D/d2.err" | cut -c1-160
[ "$rc" -eq 0 ] || st_fail "exit $rc"
[ "$ms" -lt 2000 ] || st_fail "stopping took $ms ms with stuck shadow targets"
st_log "stopped in $ms ms"
st_log "PASS"
