#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Every metric shadowtap exports follows Prometheus' naming rules (base units, named: _bytes,
# _seconds; _total only on counters; no abbreviated units), as `promtool check metrics`
# (Debian's prometheus package) judges them: the daemon's /metrics with a job of every kind
# (capture, flows, shadow with tap compare, tee to a file and to Kafka, watch) after traffic,
# and the --metrics files of `shadow --compare`, `replay`, a load test (`replay --rate`) and
# `watch`. promtool must say nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl promtool bpftool python3
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
st_nginx_start shadow "$ST_SRV_NS" 127.0.0.1:8081
st_kafka_mock "$ST_SRV_NS"
D=$ST_TMP
METRICS=127.0.0.1:19465
base=http://$ST_SRV4

# lint NAME FILE: promtool's verdict on FILE, which must be silent and exit 0
lint() {
	local out rc=0
	[ -s "$2" ] || st_fail "$1: no metrics in $2"
	out=$(promtool check metrics <"$2" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] && [ -z "$out" ] || { echo "$out"; st_fail "$1: promtool check metrics: exit $rc"; }
	st_log "  $1: $(grep -c '^# TYPE ' "$2") families, promtool says nothing"
}
traffic() {
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -o /dev/null -o /dev/null \
		"$base/f4096" "$base/f1" "$base/f65537"
}

st_log "the daemon: a job of every kind"
mkdir -p "$D/state"
cat >"$D/shadowtap.conf" <<EOF
[daemon]
metrics = $METRICS
control = $D/ctl.sock
state-dir = $D/state

[capture web]
iface = $ST_SRV_IF
port = 80
write = web.pcap

[flows streams]
iface = $ST_SRV_IF
port = 80
output = flows

[shadow canary]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:8081
compare = true

[tee file]
iface = $ST_SRV_IF
port = 80
output = web.tee

[tee k]
iface = $ST_SRV_IF
port = 80
kafka = $ST_KAFKA_BOOT
topic = tee

[watch w]
iface = $ST_SRV_IF
port = 80
label = group=canary
EOF
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$D/shadowtap.conf" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_port "$ST_SRV_NS" "${METRICS##*:}" 10 "pid=$DPID,"
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" && break; sleep 0.1; done
traffic
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_in "$ST_SRV_NS" curl -s -S --max-time 5 "http://$METRICS/metrics" >"$D/daemon.prom" || st_fail "no /metrics"
lint "daemon /metrics" "$D/daemon.prom"
# units named: milliseconds as seconds, bytes as _bytes (every job kind's families are there)
for want in shadowtap_blind_seconds_total shadowtap_queue_peak_bytes shadowtap_compare_mem_bytes \
	shadowtap_kafka_inflight_peak_bytes shadowtap_lost_bytes_total shadowtap_buffered_peak_bytes \
	shadowtap_daemon_jobs shadowtap_http_requests_total shadowtap_http_response_first_byte_seconds; do
	grep -q "^# TYPE $want " "$D/daemon.prom" || st_fail "/metrics has no $want"
done
st_stop "$DPID" TERM || { cat "$D/daemon.err"; st_fail "the daemon did not stop cleanly"; }

st_log "shadow --compare --metrics FILE"
sh_agent_start shadow "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to 127.0.0.1:8081 --compare \
	--metrics "$D/shadow.prom"
traffic
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sh_agent_stop shadow
lint "shadow --metrics" "$D/shadow.prom"

st_log "watch --metrics FILE"
st_in_bg "$ST_SRV_NS" "$ST_BIN" watch --iface "$ST_SRV_IF" --port 80 --metrics "$D/watch.prom" \
	--label version=1.4.2 >"$D/watch.out" 2>"$D/watch.err" </dev/null &
WPID=$!
ST_PIDS+=("$WPID")
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$WPID" && break; sleep 0.1; done
traffic
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$WPID" INT || { cat "$D/watch.err"; st_fail "watch exited with an error"; }
lint "watch --metrics" "$D/watch.prom"

st_log "replay --metrics FILE (the capture job's pcap)"
st_in "$ST_SRV_NS" "$ST_BIN" replay "$D/state/web.pcap" --port 80 --to 127.0.0.1:8081 --fast \
	--metrics "$D/replay.prom" >"$D/replay.out" 2>"$D/replay.err" </dev/null ||
	{ cat "$D/replay.err"; st_fail "replay exited with an error"; }
lint "replay --metrics" "$D/replay.prom"

if "$ST_BIN" replay --help 2>/dev/null | grep -q -- '--steps'; then
	st_log "replay --rate --metrics FILE (a load test: achieved_rps, p99 and lag in seconds)"
	st_in "$ST_SRV_NS" "$ST_BIN" replay "$D/state/web.pcap" --port 80 --to 127.0.0.1:8081 \
		--rate 50 --duration 1 --metrics "$D/load.prom" >"$D/load.out" 2>"$D/load.err" \
		</dev/null || { cat "$D/load.err"; st_fail "replay --rate exited with an error"; }
	grep -q '^shadowtap_p99_seconds{' "$D/load.prom" || st_fail "no shadowtap_p99_seconds"
	lint "replay --rate --metrics" "$D/load.prom"
fi
st_log "PASS"
