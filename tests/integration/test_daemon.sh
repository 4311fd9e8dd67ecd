#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap daemon`: the config file's errors each give FILE:LINE and exit 2 (--check);
# then, in a server namespace with nginx on a veth, a daemon runs a capture job and a 10%
# shadow job on the same interface (one load, one ring) under curl and wrk traffic from a
# client namespace, with tcpdump capturing the same veth. While traffic flows: /metrics is
# scraped and parsed (HELP/TYPE once per family, counters typed counter, job and command
# labels), a reload adds a flows job and changes the shadow's sample (updated in place), an
# invalid reload is rejected with the old set still running, `ctl status` lists the jobs.
# SIGTERM ends the daemon within 2 s, the capture's rotated files (rotate-mb) together give
# the same streams as tcpdump's (not a byte lost across the reloads and rotations), nothing stays attached, sd_notify said READY, RELOADING
# and STOPPING. Last, kill -9 of a daemon leaves nothing attached.
. "$(dirname "$0")/lib.sh"
st_require_agent
st_init
D=$ST_TMP

# ---- config errors: no root needed -------------------------------------------------------
check_err() { # FILE EXPECTED-REGEX: --check exits 2 with that one line
	local rc=0 out
	out=$(timeout 10 "$ST_BIN" daemon --config "$1" --check 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 2 ] || st_fail "--check $1: exit $rc, expected 2 ($out)"
	[ "$(wc -l <<<"$out")" -eq 1 ] || st_fail "--check $1: more than one line: $out"
	grep -Eq "$2" <<<"$out" || st_fail "--check $1: '$out' does not match '$2'"
	st_log "  ok: $out"
}
printf '[daemon]\nlog-level = info\n\n[capture web]\niface = lo\nprot = 80\nwrite = x.pcap\n' >"$D/unknown.conf"
check_err "$D/unknown.conf" "unknown.conf:6: \[capture web\]: unknown key 'prot'"
printf '[capture web]\niface = lo\nport = 80x\nwrite = x.pcap\n' >"$D/badval.conf"
check_err "$D/badval.conf" "badval.conf:3: \[capture web\] port: .*'80x' is not a number"
printf '[shadow web]\niface = lo\nport = 80\nto = 127.0.0.1:1\nsample = 200\n' >"$D/badval2.conf"
check_err "$D/badval2.conf" "badval2.conf:5: \[shadow web\] sample"
printf '[capture web]\niface = lo\nport = 80\nwrite = a.pcap\n[flows web]\niface = lo\nport = 80\noutput = d\n' >"$D/dup.conf"
check_err "$D/dup.conf" "dup.conf:5: job name 'web' used twice \(first on line 1\)"
check_err "$D/missing.conf" "missing.conf: No such file or directory"
printf '[capture web]\niface = lo\nport = 80\n' >"$D/incomplete.conf"
check_err "$D/incomplete.conf" "incomplete.conf:1: \[capture web\]: capture: -w FILE is required"
printf '[tcpdump web]\niface = lo\n' >"$D/cmd.conf"
check_err "$D/cmd.conf" "cmd.conf:1: \[tcpdump web\]: unknown command 'tcpdump'"
# a file that runs nothing, or that is not a file, is refused (no jobs is an error)
printf '[daemon]\nlog-level = info\n' >"$D/nojobs.conf"
check_err "$D/nojobs.conf" "nojobs.conf: no jobs: a job is a section \[capture NAME\]"
check_err "$D" "$D: not a regular file \(a directory\)"
: >"$D/empty.conf"
check_err "$D/empty.conf" "empty.conf: the file is empty: no jobs"
mkfifo "$D/fifo.conf"
check_err "$D/fifo.conf" "fifo.conf: not a regular file \(a FIFO\)"
printf '[capture web]\niface = lo\nport = 80\nwrite = x.pcap\nduration = 1\0\n' >"$D/nul.conf"
check_err "$D/nul.conf" "nul.conf:5: a NUL byte \(column 13\): the file is not text"
# a realistic match-path regex (lines up to 64 KiB; inih's own buffer is 200 bytes)
re="^/(api|v[0-9]+)/($(seq -s '|' -f 'endpoint%g' 1 400))(/[a-z0-9_-]+)*\$"
printf '[shadow web]\niface = lo\nport = 80\nto = 127.0.0.1:1\nmatch-path = %s\n' "$re" >"$D/longre.conf"
out=$("$ST_BIN" daemon --config "$D/longre.conf" --check 2>&1) ||
	st_fail "a ${#re}-byte match-path was refused: $out"
st_log "  ok: a ${#re}-byte match-path regex passes --check"
head -c 70000 /dev/zero | tr '\0' a | sed 's/^/match-path = /' >"$D/toolong.body"
{ printf '[shadow web]\niface = lo\nport = 80\nto = 127.0.0.1:1\n'; cat "$D/toolong.body"; echo; } >"$D/toolong.conf"
check_err "$D/toolong.conf" "toolong.conf:5: line longer than 65536 bytes"
out=$("$ST_BIN" daemon --config "$ST_ROOT/tools/systemd/shadowtap.conf.example" --check) ||
	st_fail "the example configuration does not pass --check"
grep -q "2 job(s)" <<<"$out" || st_fail "the example configuration: $out"
rc=0
"$ST_BIN" daemon --check >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || st_fail "daemon without --config: exit $rc, expected 2"

st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow mergecap bpftool python3
st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
. "$ST_ROOT/tests/integration/shadow_common.sh"
sh_sink_start sink "$ST_SRV_NS" 127.0.0.1 9000

METRICS=127.0.0.1:19464
CONF=$D/shadowtap.conf
write_conf() { # SAMPLE [EXTRA]
	cat >"$CONF" <<EOF
; the daemon's own settings
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
rotate-mb = 2

[shadow canary]
iface = $ST_SRV_IF
port = 80
to = 127.0.0.1:9000
sample = $1
${2:-}
EOF
}
write_conf 10
out=$("$ST_BIN" daemon --config "$CONF" --check) || st_fail "--check of the good file failed"
echo "$out"
grep -Eq "capture +web +iface $ST_SRV_IF, port\(s\) 80" <<<"$out" || st_fail "--check does not list the capture job"
grep -Eq "shadow +canary" <<<"$out" || st_fail "--check does not list the shadow job"
# each job in words: its input, sample, targets and outputs, as its start will say it
grep -Eq "^      interface $ST_SRV_IF, port 80, every connection -> web\.pcap \(rotated\)$" <<<"$out" ||
	st_fail "--check does not say what the capture job writes"
grep -Eq "^      interface $ST_SRV_IF, port 80, 10% of connections -> 127\.0\.0\.1:9000$" <<<"$out" ||
	st_fail "--check does not say the shadow job's sample and target"

# sd_notify's receiver: every datagram, one per line
NOTIFY=$D/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        f.flush()
' "$NOTIFY" "$D/notify.log" &
ST_PIDS+=($!)
for i in $(seq 1 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done

st_tcpdump_start tcpdump "$ST_SRV_NS" "$ST_SRV_IF" "$D/tcpdump.pcap" 'tcp port 80'
NOTIFY_SOCKET=$NOTIFY st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$CONF" \
	>"$D/daemon.out" 2>"$D/daemon.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
st_wait_log "$D/notify.log" '^READY=1' 10
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" || st_fail "the daemon is not attached"
grep -Eq "job canary: shadow running: interface $ST_SRV_IF, port 80, 10% of connections -> 127\.0\.0\.1:9000 \(2 job\(s\) share its tap\)" "$D/daemon.err" ||
	{ cat "$D/daemon.err"; st_fail "the shadow job does not share the capture's tap"; }
grep -q 'loading the shared programs again' "$D/daemon.err" && st_fail "the second job loaded the programs again"
links=$(st_pid_links "$DPID" | wc -l)
[ "$links" -eq 2 ] || st_fail "the daemon holds $links BPF links, expected 2 (one load: ingress, egress)"

ctl() { st_in "$ST_SRV_NS" "$ST_BIN" ctl --socket "$D/ctl.sock" "$@"; }

st_log "traffic (curl and wrk) while metrics are scraped and the file reloaded"
(
	for i in $(seq 1 60); do
		st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f$((i % 2 ? 1448 : 65537))" || exit 1
	done
) &
CURL_PID=$!
st_in "$ST_CLI_NS" wrk -t1 -c4 -d2s --timeout 5s "http://$ST_SRV4/f100" >"$D/wrk1.txt" &
WRK_PID=$!
sleep 0.5

st_in "$ST_SRV_NS" curl -s -S --max-time 5 "http://$METRICS/metrics" >"$D/metrics.txt" ||
	st_fail "no /metrics"
python3 - "$D/metrics.txt" <<'EOF' || st_fail "/metrics does not parse"
import re, sys
types, helps, samples = {}, set(), []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        name = line.split()[2]
        assert name not in helps, "HELP twice: " + name
        helps.add(name)
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        assert name not in types, "TYPE twice: " + name
        assert kind in ("counter", "gauge"), line
        assert name.endswith("_total") == (kind == "counter"), line
        types[name] = kind
    elif line:
        m = re.fullmatch(r'([a-z_][a-z0-9_]*)(\{[^}]*\})? ([0-9]+(?:\.[0-9]+)?)', line)
        assert m, "bad sample: " + line
        assert m.group(1) in types, "sample before its TYPE: " + line
        samples.append((m.group(1), m.group(2) or "", float(m.group(3))))
get = lambda n, l: [v for s, lab, v in samples if s == n and lab == l]
# the build, and the shadow's target as a label of its own
assert len([1 for s, lab, v in samples if s == "shadowtap_build_info" and re.fullmatch(r'\{version="[^"]+"\}', lab) and v == 1]) == 1
assert get("shadowtap_shadow_target_up", '{job="canary",command="shadow",target="127.0.0.1:9000"}') == [1]
assert get("shadowtap_shadow_target_downs_total", '{job="canary",command="shadow",target="127.0.0.1:9000"}') == [0]
assert get("shadowtap_job_up", '{job="web",command="capture"}') == [1]
assert get("shadowtap_job_up", '{job="canary",command="shadow"}') == [1]
assert get("shadowtap_tap_jobs", '{job="web",command="capture"}') == [2]
assert get("shadowtap_packets_total", '{job="web",command="capture"}')[0] > 0
assert len(get("shadowtap_requests_total", '{job="canary",command="shadow"}')) == 1
assert get("shadowtap_daemon_jobs", "") == [2]
print("metrics: %d families, %d samples" % (len(types), len(samples)))
EOF
# 100 idle connections from one client do not starve the scrape (at most 8 per address)
st_bg idle st_in_bg "$ST_SRV_NS" python3 "$ST_ROOT/tests/integration/link_stranger.py" idle \
	"${METRICS##*:}" 100 2 1
st_wait_log "$D/idle.log" '^held 100' 10
st_in "$ST_SRV_NS" curl -s -S --max-time 3 "http://$METRICS/metrics" >"$D/metrics2.txt" ||
	st_fail "/metrics did not answer with 100 idle connections open"
grep -q '^shadowtap_daemon_jobs 2$' "$D/metrics2.txt" || st_fail "/metrics with 100 idle connections: no jobs gauge"
kill "$ST_LAST_PID"
out=$(st_in "$ST_SRV_NS" curl -s -S --max-time 5 "http://$METRICS/healthz")
[ "$out" = ok ] || st_fail "/healthz is not ok: $out"

# a reload that adds a job and changes the shadow's sample, while traffic flows
write_conf 50 "
[flows streams]
iface = $ST_SRV_IF
port = 80
output = flows"
out=$(ctl reload) || st_fail "ctl reload failed: $out"
echo "$out"
grep -q '^ok: 3 job(s): 1 added, 0 removed, 0 restarted, 1 updated in place, 1 unchanged' <<<"$out" ||
	st_fail "reload: unexpected answer"
sleep 0.3
# an invalid file: rejected, the three jobs stay
cp "$CONF" "$D/good.conf"
printf '\n[capture broken]\niface = %s\nport = 80\nwrite = b.pcap\nrotate = yes\n' "$ST_SRV_IF" >>"$CONF"
rc=0
out=$(ctl reload) || rc=$?
[ "$rc" -eq 1 ] || st_fail "ctl reload of an invalid file: exit $rc, expected 1 ($out)"
grep -q "shadowtap.conf:[0-9]*: \[capture broken\]: unknown key 'rotate'" "$D/daemon.err" ||
	st_fail "the rejected reload's reason is not in the log"
# ... and in the answer (it used to say only "the daemon's log says why")
grep -q "^error: $CONF rejected: $CONF:[0-9]*: \[capture broken\]: unknown key 'rotate'; the 3 running job(s) stay as they were$" <<<"$out" ||
	st_fail "ctl reload does not say why the file was rejected: $out"
kill -HUP "$DPID" # the same file by signal: rejected too
sleep 0.3
cp "$D/good.conf" "$CONF"
# the file replaced by a FIFO: a SIGHUP is rejected at once, the daemon never waits for a
# writer (it used to block in open(): ctl status timed out)
mv "$CONF" "$D/moved.conf"
mkfifo "$CONF"
kill -HUP "$DPID"
st_wait_log "$D/daemon.err" 'shadowtap.conf: not a regular file \(a FIFO\)' 5
out=$(timeout 5 "$ST_BIN" ctl --socket "$D/ctl.sock" status 2>&1) ||
	st_fail "ctl status after a SIGHUP with a FIFO for the file: $out"
rm "$CONF"
mv "$D/moved.conf" "$CONF"
out=$(ctl status)
echo "$out"
[ "$(grep -c ' running ' <<<"$out")" -eq 3 ] || st_fail "ctl status: 3 jobs running expected"
grep -q "^web .* capture .* iface $ST_SRV_IF .* running .*packets=" <<<"$out" || st_fail "ctl status: no capture line"
# the daemon's uptime and reloads; each job's uptime, target, outputs: the file being
# written now and its size; the shadow's target
grep -Eq "^daemon: up [0-9]+[smhd][0-9]*[smh]?, 3 job\(s\) from $CONF; metrics http://$METRICS/metrics; reloads 1 \(3 rejected\); shadowtap " <<<"$out" ||
	st_fail "ctl status: no daemon line"
grep -Eq "^web +capture +iface $ST_SRV_IF +running +[0-9]+[smh]" <<<"$out" || st_fail "ctl status: no uptime"
grep -Eq "^    interface $ST_SRV_IF, port 80, every connection -> web-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.pcap \([0-9.]+ (B|KB|MB) so far; rotated\)$" <<<"$out" ||
	st_fail "ctl status: the capture job's current file and its size"
grep -Eq "^    interface $ST_SRV_IF, port 80, 50% of connections -> 127\.0\.0\.1:9000$" <<<"$out" ||
	st_fail "ctl status: the shadow job's target"
grep -Eq "^    interface $ST_SRV_IF, port 80, every connection -> one file per direction in flows/$" <<<"$out" ||
	st_fail "ctl status: the flows job's output"

wait "$CURL_PID" || st_fail "curl failed"
wait "$WRK_PID" || true
grep 'Requests/sec' "$D/wrk1.txt" || true
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
dropped=$(st_tcpdump_dropped "$D/tcpdump.err")
[ "${dropped:-0}" -eq 0 ] || st_fail "the reference tcpdump dropped $dropped packets"

st_log "SIGTERM"
t0=$(date +%s%N)
rc=0
st_stop "$DPID" TERM || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
grep -v '^libbpf' "$D/daemon.err" | tail -n 12 | cut -c1-240
[ "$rc" -eq 0 ] || st_fail "the daemon exited with $rc after SIGTERM"
[ "$ms" -lt 2000 ] || st_fail "the daemon took $ms ms to stop (2000 allowed)"
st_log "stopped in $ms ms"
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" || true
leaked=$(st_leaked_shadowtap_links)
[ -z "$leaked" ] || st_fail "links left after SIGTERM: $leaked"
for j in web canary streams; do
	grep -q "^shadowtap: summary job=$j " "$D/daemon.err" || st_fail "no summary line for job $j"
done
web=$(grep '^shadowtap: summary job=web ' "$D/daemon.err")
[ "$(st_summary_field "$web" lost)" -eq 0 ] || st_fail "the capture job lost bytes: $web"
grep -q '^RELOADING=1 MONOTONIC_USEC=[0-9]' "$D/notify.log" || st_fail "no RELOADING=1 notification"
grep -q '^STOPPING=1' "$D/notify.log" || st_fail "no STOPPING=1 notification"
[ "$(grep -c '^READY=1' "$D/notify.log")" -ge 3 ] || st_fail "READY=1 not sent after each reload"

st_log "the capture job's streams against tcpdump's"
mapfile -t files < <(find "$D/state" -maxdepth 1 -name 'web-*.pcap' | sort)
[ "${#files[@]}" -ge 2 ] || st_fail "the capture job (--rotate-mb 2) wrote ${#files[@]} file(s)"
[ -z "$(find "$D/state" -maxdepth 1 -name '.web*')" ] || st_fail "a temporary file is left"
mergecap -F pcap -w "$D/web.pcap" "${files[@]}"
st_compare_captures "$D/web.pcap" "$D/tcpdump.pcap" "$D" ||
	st_fail "the capture job's rotated files do not reassemble to tcpdump's"
[ -n "$(ls "$D/state/flows")" ] || st_fail "the flows job added by the reload wrote nothing"
shadowed=$(wc -l <"$ST_TMP/sink.log")
canary=$(grep '^shadowtap: summary job=canary ' "$D/daemon.err")
st_log "the shadow got $shadowed requests; $(grep -o 'requests=[0-9]* replayed=[0-9]*' <<<"$canary")"
[ "$shadowed" -gt 0 ] || st_fail "the shadow target got nothing"

st_log "kill -9 leaves nothing attached"
write_conf 10
st_in_bg "$ST_SRV_NS" "$ST_BIN" daemon --config "$CONF" >"$D/daemon2.out" 2>"$D/daemon2.err" </dev/null &
DPID=$!
ST_PIDS+=("$DPID")
for i in $(seq 1 100); do
	st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" && break
	sleep 0.1
done
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$DPID" || { cat "$D/daemon2.err"; st_fail "second daemon not attached"; }
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true
for i in $(seq 1 30); do
	leaked=$(st_leaked_shadowtap_links)
	[ -z "$leaked" ] && break
	sleep 0.1
done
[ -z "$leaked" ] || st_fail "links left after kill -9: $leaked"
out=$(st_in "$ST_SRV_NS" bpftool net show dev "$ST_SRV_IF" 2>&1 || true)
if grep -Eq 'tc_|tcx' <<<"$out"; then
	st_fail "programs still attached to $ST_SRV_IF after kill -9"
fi
st_log "PASS"
