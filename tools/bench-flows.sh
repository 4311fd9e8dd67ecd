#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap flows` against tcpflow on the same large real capture.
#
# Generates the capture itself: a real nginx in a network namespace, wrk with one
# connection per request (hundreds of thousands of connections) and keep-alive wrk for bulk
# bytes, tcpdump -i lo writing the pcap. Then:
#   - checks both tools write the same files with the same bytes (tcpflow's names mapped);
#   - times RUNS alternating runs of each (median wall time; user, sys; peak RSS from
#     /usr/bin/time -v), each into a fresh output folder on the same file system;
#   - runs flows on the first half of the capture too: peak RSS must stay flat as it grows.
#
#   sudo ST_BUILD=build tools/bench-flows.sh
# Knobs: BENCH_CLOSE_SECS (wrk Connection: close, default 12), BENCH_BULK_SECS (keep-alive,
# default 1), BENCH_RUNS (default 5), BENCH_PCAP=FILE (reuse a capture, skip generating),
# BENCH_OUT=DIR (write the outputs there instead of a tmpfs the script mounts).
#
# Why a tmpfs by default: both tools create the same files, one per connection direction,
# and on this VM's ext4 a file creation costs ~150 us of kernel time whoever asks (60k empty
# files: 10 s), which buries the tools' own work under the file system's. BENCH_OUT=/var/tmp/x
# measures that case too; there every run writes a new folder and all are deleted at the end,
# because ext4 makes inode allocation scan past inodes deleted in the last minute
# (recently_deleted()), which would charge one tool's creations for the other's deletions.
# Prints a result block (markdown) at the end; exit 1 if outputs differ.
. "$(dirname "$0")/../tests/integration/lib.sh"
st_require_root
st_require_cmds ip nginx wrk tcpdump tcpflow python3 sha256sum
[ -x /usr/bin/time ] || st_skip "needs /usr/bin/time (apt-get install time)"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" flows --help >/dev/null 2>&1 || st_skip "$ST_BIN has no 'flows' command"
st_init

CLOSE_SECS=${BENCH_CLOSE_SECS:-12}
BULK_SECS=${BENCH_BULK_SECS:-1}
RUNS=${BENCH_RUNS:-5}
WORKDIR=$(mktemp -d /var/tmp/st-bench-flows.XXXXXX)
st_on_cleanup "rm -rf '$WORKDIR'"
if [ -n "${BENCH_OUT:-}" ]; then
	OUT=$BENCH_OUT
	mkdir -p "$OUT"
	OUTFS="$(df -T "$OUT" | awk 'NR == 2 { print $2 }') ($OUT)"
	KEEP_RUNS=1
	st_on_cleanup "rm -rf '$OUT'/flows.* '$OUT'/tcpflow.*"
else
	OUT=$ST_TMP/out
	mkdir -p "$OUT"
	mount -t tmpfs -o size=16g,mode=0755 st-bench-flows "$OUT"
	st_on_cleanup "umount -l '$OUT'"
	OUTFS="tmpfs"
	KEEP_RUNS=0
fi

PCAP=${BENCH_PCAP:-}
if [ -z "$PCAP" ]; then
	PCAP=$WORKDIR/big.pcap
	st_netns_single bench
	NS=$ST_LAST_NS
	st_nginx_start web "$NS" 80
	st_in_bg "$NS" tcpdump -i lo -s 0 -B 524288 -n -w "$PCAP" 'tcp port 80' \
		>"$ST_TMP/tcpdump.out" 2>"$ST_TMP/tcpdump.err" </dev/null &
	TD=$!
	ST_PIDS+=("$TD")
	st_wait_log "$ST_TMP/tcpdump.err" 'listening on' 10
	st_log "capture: wrk, Connection: close, ${CLOSE_SECS}s"
	st_in "$NS" wrk -t1 -c16 -d"${CLOSE_SECS}s" --timeout 5s -H 'Connection: close' \
		"http://127.0.0.1/f1448" | sed -n '/Requests\/sec/p'
	st_log "capture: wrk keep-alive, ${BULK_SECS}s"
	st_in "$NS" wrk -t1 -c4 -d"${BULK_SECS}s" --timeout 5s "http://127.0.0.1/f16384" |
		sed -n '/Requests\/sec/p'
	sleep 1
	st_stop "$TD" INT || true
	dropped=$(st_tcpdump_dropped "$ST_TMP/tcpdump.err")
	st_log "tcpdump: ${dropped:-0} packets dropped by the kernel"
fi
PKTS=$(tcpdump -nr "$PCAP" 2>/dev/null | wc -l)
MB=$(( $(stat -c %s "$PCAP") / 1048576 ))
st_log "capture: $MB MiB, $PKTS packets"
# A half-size capture (whole packets) for the memory-growth check.
tcpdump -r "$PCAP" -c $((PKTS / 2)) -w "$WORKDIR/half.pcap" 2>/dev/null

# timed NAME OUTDIR CMD...: runs CMD under /usr/bin/time -v; appends "wall user sys rss_kb".
timed() {
	local name=$1 dir=$2
	shift 2
	rm -rf "$dir"
	sync
	/usr/bin/time -v "$@" >"$ST_TMP/$name.out" 2>"$ST_TMP/$name.time" || {
		tail -n 30 "$ST_TMP/$name.time"
		st_fail "$name failed"
	}
	python3 - "$ST_TMP/$name.time" >>"$ST_TMP/$name.runs" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def f(k):
    return re.search(k + r": (.*)", t).group(1).strip()
w = f(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
print(wall, f("User time \(seconds\)"), f("System time \(seconds\)"), f("Maximum resident set size \(kbytes\)"))
PY
}

# outdir NAME RUN: where run RUN of NAME writes (one folder for all runs on a tmpfs).
outdir() { if [ "$KEEP_RUNS" = 1 ]; then echo "$OUT/$1.$2"; else echo "$OUT/$1"; fi; }
run_flows() { timed "flows" "$(outdir flows "$2")" "$ST_BIN" flows "$1" -o "$(outdir flows "$2")"; }
run_tcpflow() { timed "tcpflow" "$(outdir tcpflow "$2")" tcpflow -r "$1" -o "$(outdir tcpflow "$2")"; }

st_log "runs: $RUNS of each, alternating"
for i in $(seq 1 "$RUNS"); do
	if [ $((i % 2)) -eq 1 ]; then
		run_flows "$PCAP" "$i"
		run_tcpflow "$PCAP" "$i"
	else
		run_tcpflow "$PCAP" "$i"
		run_flows "$PCAP" "$i"
	fi
done
grep -E '^shadowtap: summary' "$ST_TMP/flows.time" | sed 's/^/  /'

st_log "same files, same bytes?"
rm -f "$(outdir tcpflow "$RUNS")/report.xml"
(cd "$(outdir flows "$RUNS")" && find . -type f -printf '%P\0' | sort -z | xargs -0 -r sha256sum) | sort -k2 >"$ST_TMP/d-flows"
(cd "$(outdir tcpflow "$RUNS")" && find . -type f -printf '%P\0' | sort -z | xargs -0 -r sha256sum) | python3 -c '
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
' | sort -k2 >"$ST_TMP/d-tcpflow"
FILES=$(wc -l <"$ST_TMP/d-flows")
if cmp -s "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow"; then
	SAME="identical ($FILES files)"
else
	SAME="DIFFERENT: $(diff "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow" | grep -c '^[<>]') lines of digest differ"
	diff "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow" | head -n 10
fi
st_log "$SAME"

timed "flows-half" "$(outdir flows half)" "$ST_BIN" flows "$WORKDIR/half.pcap" -o "$(outdir flows half)"

# median COLUMN FILE
median() { awk -v c="$1" '{ print $c }' "$2" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
fw=$(median 1 "$ST_TMP/flows.runs")
tw=$(median 1 "$ST_TMP/tcpflow.runs")
speedup=$(awk -v a="$tw" -v b="$fw" 'BEGIN { printf "%.2f", a / b }')
cat <<EOF

### shadowtap flows vs tcpflow ($(date -u +%F), $(nproc) CPUs, $(uname -r))
Capture: $MB MiB, $PKTS packets, $((FILES / 2)) connections (about; files / 2), loopback, nginx + wrk.
Output: $SAME, written to $OUTFS.

| tool | median wall (s) | user (s) | sys (s) | peak RSS (MiB) | wall of each run (s) |
|------|-----------------|----------|---------|----------------|----------------------|
| shadowtap flows | $fw | $(median 2 "$ST_TMP/flows.runs") | $(median 3 "$ST_TMP/flows.runs") | $(( $(median 4 "$ST_TMP/flows.runs") / 1024 )) | $(awk '{ printf "%s ", $1 }' "$ST_TMP/flows.runs") |
| tcpflow 1.6.1 | $tw | $(median 2 "$ST_TMP/tcpflow.runs") | $(median 3 "$ST_TMP/tcpflow.runs") | $(( $(median 4 "$ST_TMP/tcpflow.runs") / 1024 )) | $(awk '{ printf "%s ", $1 }' "$ST_TMP/tcpflow.runs") |

Speed-up (tcpflow median / flows median): ${speedup}x.
Peak RSS of flows on the first half of the capture: $(( $(awk '{ print $4 }' "$ST_TMP/flows-half.runs") / 1024 )) MiB; on all of it: $(( $(median 4 "$ST_TMP/flows.runs") / 1024 )) MiB.
EOF
case $SAME in identical*) exit 0 ;; *) exit 1 ;; esac
