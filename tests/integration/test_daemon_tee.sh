#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap daemon` with tee jobs: in a server namespace with nginx on a veth, one daemon
# runs a capture job, a tee job to a file, a tee job to Kafka (tools/kafka-mock, its
# client settings from kafka-opt-file) and a tee job whose receiver never answers, all on
# one shared attach, under curl traffic:
#   - --check lists the tee jobs; a tee job writing to the daemon's stdout is refused
#     (FILE:LINE, exit 2);
#   - the shared loop never waits for a tee job: the job whose receiver accepts the
#     connection and never says a word (its writer waits up to 10 s) holds nothing up:
#     /metrics answers at once and the other jobs lose nothing;
#   - /metrics: the tee jobs' counters (kafka_* included) with their job and command labels;
#     `ctl status` lists them running with their main counters;
#   - a reload that changes the file job's options (a new file, one more redacted header)
#     restarts it alone: its first file is complete, the second redacts the new header; the
#     Kafka job takes a new port in place (its stream goes on: the comparison below spans
#     the reload), the capture job is untouched;
#   - SIGTERM ends the daemon within 2 s (the stuck job's end given up on);
#   - the Kafka job's stream, read by `receive --kafka -o DIR` == `shadowtap flows` on the
#     capture job's pcap; every connection of the file job's first stream is identical to
#     flows' file of it.
. "$(dirname "$0")/lib.sh"
st_require_agent
st_require_root
st_require_cmds ip nginx curl tcpdump python3 sha256sum
MOCK=$ST_BUILD/tools/kafka-mock
[ -x "$MOCK" ] || st_fail "$MOCK not found (build first)"
st_init
D=$ST_TMP

st_netns_pair
NS=$ST_SRV_NS
st_nginx_start web "$NS" 80
WWW=$D/web/www
O=$D/out
mkdir -p "$O" "$D/state"

# the mock Kafka cluster, in the server's namespace (test_kafka.sh)
st_kafka_mock "$NS"
BOOT=$ST_KAFKA_BOOT

# a "receiver" that takes the connection and never says a word
st_in_bg "$NS" python3 - "$D/mute-ns.port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
time.sleep(600)
PY
ST_PIDS+=($!)
st_wait_log "$D/mute-ns.port" '^[0-9]+$' 10
MUTE_PORT=$(cat "$D/mute-ns.port")

# the Kafka client's settings, secrets' place (0600)
printf '# the producer of the daemon test\nclient.id=shadowtap-daemon-tee\n' >"$D/kafka.secrets"
chmod 600 "$D/kafka.secrets"

METRICS=127.0.0.1:19465
CONF=$D/shadowtap.conf
write_conf() { # FILE-JOB-OUTPUT [FILE-JOB-EXTRA-KEY [KAFKA-JOB-EXTRA-KEY]]
	cat >"$CONF" <<EOF
[daemon]
metrics = $METRICS
control = $D/ctl.sock
log-level = info
state-dir = $D/state

[capture web]
iface = $ST_SRV_IF
port = 80
ring-mb = 64
write = web.pcap

[tee file]
iface = $ST_SRV_IF
port = 80
max-rate = 0
output = $1
${2:-}

[tee k]
iface = $ST_SRV_IF
port = 80
max-rate = 0
kafka = $BOOT
topic = tee
kafka-opt-file = $D/kafka.secrets
${3:-}

[tee mute]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:$MUTE_PORT
insecure = true
EOF
}

st_log "--check: the tee jobs listed; a tee job on the daemon's stdout refused"
write_conf web1.tee
out=$("$ST_BIN" daemon --config "$CONF" --check) || st_fail "--check of the good file failed"
echo "$out"
for j in file k mute; do
	grep -Eq "^ +tee +$j +iface $ST_SRV_IF, port\(s\) 80" <<<"$out" || st_fail "--check does not list tee job $j"
done
printf '[tee out]\niface = lo\nport = 80\noutput = -\n' >"$D/stdout.conf"
rc=0
err=$("$ST_BIN" daemon --config "$D/stdout.conf" --check 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 2 ] && grep -q "stdout.conf:1: \[tee out\]: tee: a daemon job writes to a file" <<<"$err" ||
	st_fail "output = - in a daemon job: exit $rc, '$err'"

st_log "the daemon: capture + three tee jobs on one attach"
st_in_bg "$NS" "$ST_BIN" daemon --config "$CONF" >"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_log "$D/daemon.err" 'daemon running: 4 job\(s\)' 10
T_START=$(date +%s)
st_agent_attached "$NS" "$ST_SRV_IF" "$DPID" || st_fail "the daemon is not attached"
grep -Eq "job mute: tee running: interface $ST_SRV_IF, .* \(4 job\(s\) share its tap\)" "$D/daemon.err" ||
	{ cat "$D/daemon.err"; st_fail "the tee jobs do not share the capture's tap"; }
links=$(st_pid_links "$DPID" | wc -l)
[ "$links" -eq 2 ] || st_fail "the daemon holds $links BPF links, expected 2 (one load)"

scrape() { # FILE: /metrics within 1 s (the loop never waits for a job)
	local t0=$(date +%s%N)
	st_in "$NS" curl -s -S --max-time 5 "http://$METRICS/metrics" >"$1" || st_fail "no /metrics"
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ] ||
		st_fail "/metrics took $(( ($(date +%s%N) - t0) / 1000000 )) ms: the loop waited"
}
metric() { # NAME JOB: the sample's value
	sed -nE "s/^shadowtap_$1\{job=\"$2\",command=\"[a-z]+\"\} ([0-9]+)$/\1/p" "$M"
}

traffic() { # a mix below the mock's 5 MB per partition
	local args=() s i
	for s in "${ST_FILE_SIZES[@]}"; do [ "$s" -le 100000 ] && args+=(-o /dev/null "http://$ST_SRV4/f$s"); done
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args[@]}"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o "$D/got1m" "http://$ST_SRV4/f1048576"
	cmp -s "$D/got1m" "$WWW/f1048576" || st_fail "1 MB download corrupted"
	head -c 300000 /dev/urandom >"$D/u300k"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' \
		--data-binary @"$D/u300k" "http://$ST_SRV4/upload"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -0 -o /dev/null "http://$ST_SRV4/f65537"
	st_pipeline "$ST_CLI_NS" "$ST_SRV4" 80 /f1 /f4096 /f100000 >/dev/null
	for i in $(seq 1 10); do
		st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H "X-Secret: hunter$i" \
			"http://$ST_SRV4/f$((i * 997))?c=$i"
	done
}

st_log "traffic, while the mute receiver holds the mute job's first connect"
traffic
st_tcp_settle 80 "$NS" "$ST_CLI_NS"
sleep 0.5
M=$D/metrics1.txt
scrape "$M"
dups=$(grep '^# TYPE ' "$M" | awk '{ print $3 }' | sort | uniq -d)
[ -z "$dups" ] || st_fail "/metrics: TYPE twice for $dups"
# the mute job's writer gives up on its receiver after 10 s (then it is retried)
mute=mute
[ $(($(date +%s) - T_START)) -lt 9 ] || { mute=; echo "  (slow host: the mute job's counters not checked)"; }
for j in file k $mute; do
	[ "$(metric job_up "$j")" = 1 ] || st_fail "tee job $j is not up: $(grep "job=\"$j\"" "$M" | head -3)"
	grep -q "^shadowtap_connections_total{job=\"$j\",command=\"tee\"} " "$M" ||
		st_fail "no tee counters for job $j on /metrics"
done
[ "$(metric teed_total file)" -ge 14 ] || st_fail "the file job teed $(metric teed_total file) connections"
[ "$(metric dropped_conns_total file)" = 0 ] || st_fail "the file job dropped connections"
[ "$(metric kafka_delivered_msgs_total k)" -gt 0 ] ||
	st_fail "no kafka_delivered_msgs for job k: $(grep 'kafka_delivered_msgs' "$M")"
grep -q '^# TYPE shadowtap_kafka_delivered_msgs_total counter' "$M" || st_fail "kafka counters untyped"
if [ -n "$mute" ]; then
	[ "$(metric dropped_conns_total mute)" -ge 14 ] ||
		st_fail "the mute job (not connected) dropped $(metric dropped_conns_total mute) connections, expected every one"
	[ "$(metric bytes_total mute)" = 0 ] || st_fail "the mute job teed bytes without a link"
fi
st_in "$NS" "$ST_BIN" ctl --socket "$D/ctl.sock" status >"$D/status.txt" || st_fail "ctl status failed"
for j in file k; do
	grep -Eq "^$j +tee +iface $ST_SRV_IF +running +[0-9]+[smhd][0-9]*[smh]? +connections=[1-9][0-9]* teed=" "$D/status.txt" ||
		{ cat "$D/status.txt"; st_fail "ctl status: no running tee job $j with its counters"; }
done
echo "  file: teed=$(metric teed_total file) bytes=$(metric bytes_total file);" \
	"k: kafka_delivered_msgs=$(metric kafka_delivered_msgs_total k);" \
	"mute: dropped_conns=$(metric dropped_conns_total mute)"

st_log "reload: the file job writes web2.tee and redacts X-Secret too; the Kafka job takes port 8080 in place"
write_conf web2.tee 'redact-header = X-Secret' 'port = 8080'
st_in "$NS" "$ST_BIN" ctl --socket "$D/ctl.sock" reload >"$D/reload.out" || st_fail "ctl reload failed"
cat "$D/reload.out"
grep -q '^ok: 4 job(s): 0 added, 0 removed, 1 restarted, 1 updated in place, 2 unchanged' "$D/reload.out" ||
	st_fail "reload: $(cat "$D/reload.out")"
grep -q '^shadowtap: summary job=file ' "$D/daemon.err" || st_fail "no summary line of the file job's first instance"
[ -s "$D/state/web1.tee" ] || st_fail "the file job's first stream is not complete after its restart"
traffic
st_tcp_settle 80 "$NS" "$ST_CLI_NS"
sleep 0.5
M=$D/metrics2.txt
scrape "$M"
[ "$(metric job_restarts_total file)" = 1 ] || st_fail "the file job was not restarted once"
[ "$(metric job_restarts_total k)" = 0 ] || st_fail "the Kafka job was restarted"

st_log "SIGTERM"
t0=$(date +%s%N)
st_stop "$DPID" TERM || { tail -n 20 "$D/daemon.err"; st_fail "the daemon exited with an error"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "  stopped in $ms ms"
[ "$ms" -lt 2000 ] || st_fail "SIGTERM took $ms ms"
grep '^shadowtap: summary job=' "$D/daemon.err" | cut -c1-200
sum_k=$(grep '^shadowtap: summary job=k ' "$D/daemon.err")
for f in dropped_records dropped_conns kafka_refused_msgs kafka_failed_msgs lost; do
	[ "$(st_summary_field "$sum_k" "$f")" = 0 ] || st_fail "tee job k: $f is not 0"
done
msgs=$(st_summary_field "$sum_k" kafka_messages)
[ "$(st_summary_field "$sum_k" kafka_delivered_msgs)" = "$msgs" ] || st_fail "job k: not every message delivered"

st_log "receive --kafka -o DIR == shadowtap flows on the capture job's pcap"
"$ST_BIN" flows "$D/state/web.pcap" -o "$O/flows" 2>"$D/flows.err" || { cat "$D/flows.err"; st_fail "flows failed"; }
st_flow_digest "$O/flows" >"$D/d-flows"
n=$(wc -l <"$D/d-flows")
[ "$n" -ge 50 ] || st_fail "too few flow files from the capture job's pcap: $n"
st_in_bg "$NS" "$ST_BIN" receive --kafka "$BOOT" --topic tee --group check -o "$O/rx" \
	>"$D/rx.out" 2>"$D/rx.err" </dev/null &
RX_PID=$!
ST_PIDS+=("$RX_PID")
for i in $(seq 1 100); do
	st_flow_digest "$O/rx" >"$D/d-rx" 2>/dev/null || true
	cmp -s "$D/d-flows" "$D/d-rx" && break
	sleep 0.1
done
st_stop "$RX_PID" INT || { cat "$D/rx.err"; st_fail "receive --kafka failed"; }
st_flow_digest "$O/rx" >"$D/d-rx"
cmp -s "$D/d-flows" "$D/d-rx" || { diff "$D/d-flows" "$D/d-rx" | head -n 20; st_fail "receive --kafka -o and flows differ"; }
rx_sum=$(st_summary "$D/rx.err")
[ "$(st_summary_field "$rx_sum" kafka_messages)" = "$msgs" ] || st_fail "receive read $(st_summary_field "$rx_sum" kafka_messages) of $msgs messages"
echo "  identical: $n files, $msgs messages"

st_log "the file job's streams: the first as flows says, the second with X-Secret redacted"
"$ST_BIN" receive "$D/state/web1.tee" -o "$O/rx1" 2>"$D/rx1.err" || { cat "$D/rx1.err"; st_fail "receive web1.tee failed"; }
st_flow_digest "$O/rx1" >"$D/d-rx1"
n1=$(wc -l <"$D/d-rx1")
[ "$n1" -ge 20 ] || st_fail "web1.tee: $n1 flow files"
missing=$(comm -23 <(sort "$D/d-rx1") <(sort "$D/d-flows") | head -n 5)
[ -z "$missing" ] || st_fail "web1.tee's connections differ from flows': $missing"
grep -rq 'hunter' "$O/rx1" || st_fail "web1.tee: X-Secret redacted before the reload asked for it"
"$ST_BIN" receive "$D/state/web2.tee" -o "$O/rx2" 2>"$D/rx2.err" || { cat "$D/rx2.err"; st_fail "receive web2.tee failed"; }
[ "$(grep -rl 'X-Secret: \*\*\*\*\*\*' "$O/rx2" | wc -l)" -ge 10 ] || st_fail "web2.tee: X-Secret not redacted"
grep -rq 'hunter' "$O/rx2" && st_fail "web2.tee: a secret X-Secret value went out"
echo "  web1.tee: $n1 connections as flows has them; web2.tee: X-Secret redacted"
st_log "PASS"
