#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap flows` against tcpflow on real loopback captures the script makes itself, one of
# each shape that matters:
#   big   ~20 connections: keep-alive API exchanges (wrk, small responses) and two large
#         downloads (curl), so 64 KB GSO frames and hundreds of thousands of small segments
#         (~550 MiB; the shape of issue #10's 580 MB capture);
#   many  hundreds of thousands of connections: wrk with one connection per request, then a
#         second of keep-alive wrk (~1.3 GiB, ~290,000 connections, ~580,000 files).
# For each: both tools' outputs compared file by file (tcpflow's names mapped), then RUNS
# alternating runs of each tool (and of BENCH_BASELINE, another shadowtap build, when given:
# before/after in the same run), median wall, user, sys and peak RSS (/usr/bin/time -v);
# flows on the first half of the capture too, for peak RSS against capture size. Outputs go
# to a tmpfs the script mounts: on this VM's ext4 a file creation costs ~150 us of kernel time
# whoever asks, which buries both tools' own work (BENCH_OUT=DIR measures a disk instead).
#
#   sudo ST_BUILD=build tools/bench-flows.sh [big|many ...]      (default: both)
# Knobs: BENCH_RUNS (5), BENCH_BASELINE=/path/to/old/shadowtap, BENCH_OUT=DIR,
# BENCH_PCAP_BIG=FILE / BENCH_PCAP_MANY=FILE (reuse a capture), BENCH_KEEP=DIR (keep the
# captures there), BENCH_MANY_CONNS (many: about 280000 connections, at most 120 s of wrk),
# BENCH_API_REQS (big: about 200000 keep-alive requests, at most 90 s; both sized by a 2 s
# rate measurement before the capture), BENCH_DOWNLOAD_MB (big: 250 per download).
# Targets (issue #10): flows >= 3x tcpflow on big, >= 5x on many, by median wall time; the
# result block says whether each is met, with CPU time (user + sys) as the steadier figure on
# a shared host. Exit 1 if outputs differ.
. "$(dirname "$0")/../tests/integration/lib.sh"
st_require_root
st_require_cmds ip nginx wrk curl tcpdump tcpflow python3 sha256sum
[ -x /usr/bin/time ] || st_skip "needs /usr/bin/time (apt-get install time)"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" flows --help >/dev/null 2>&1 || st_skip "$ST_BIN has no 'flows' command"
st_init

SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(big many)
RUNS=${BENCH_RUNS:-5}
BASELINE=${BENCH_BASELINE:-}
WORKDIR=$(mktemp -d /var/tmp/st-bench-flows.XXXXXX)
st_on_cleanup "rm -rf '$WORKDIR'"
if [ -n "${BENCH_OUT:-}" ]; then
	OUT=$BENCH_OUT
	mkdir -p "$OUT"
	OUTFS="$(df -T "$OUT" | awk 'NR == 2 { print $2 }') ($OUT)"
	KEEP_RUNS=1
	st_on_cleanup "rm -rf '$OUT'/flows.* '$OUT'/tcpflow.* '$OUT'/baseline.*"
else
	OUT=$ST_TMP/out
	mkdir -p "$OUT"
	mount -t tmpfs -o size=16g,mode=0755 st-bench-flows "$OUT"
	st_on_cleanup "umount -l '$OUT'"
	OUTFS="tmpfs"
	KEEP_RUNS=0
fi

# capture_start NS FILE / capture_stop: tcpdump on the namespace's lo.
capture_start() {
	st_in_bg "$1" tcpdump -i lo -s 0 -B 524288 -n -w "$2" 'tcp port 80' \
		>"$ST_TMP/tcpdump.out" 2>"$ST_TMP/tcpdump.err" </dev/null &
	TD=$!
	ST_PIDS+=("$TD")
	st_wait_log "$ST_TMP/tcpdump.err" 'listening on' 10
}
capture_stop() {
	sleep 1
	st_stop "$TD" INT || true
	st_log "tcpdump: $(st_tcpdump_dropped "$ST_TMP/tcpdump.err") packets dropped by the kernel"
}

# wrk_rate NS WRK-ARGS...: requests/s of 2 s of wrk (before the capture starts).
wrk_rate() {
	local ns=$1
	shift
	st_in "$ns" wrk -t1 -d2s --timeout 5s "$@" | sed -nE 's/^Requests\/sec: *([0-9]+).*/\1/p'
}

# wrk_for NS TARGET RATE MAXSECS WRK-ARGS...: one wrk run long enough for about TARGET
# requests at RATE (at most MAXSECS): the capture has about the same shape whatever the
# host's load, and its connections are the ones that one run opened.
wrk_for() {
	local ns=$1 target=$2 rate=$3 max=$4 secs
	shift 4
	secs=$(((target + ${rate:-1000} - 1) / ${rate:-1000} + 1))
	[ "$secs" -le "$max" ] || secs=$max
	st_log "  ${rate:-?} requests/s measured: $secs s of wrk"
	st_in "$ns" wrk -t1 -d"${secs}s" --timeout 5s "$@" | sed -nE 's/^ *([0-9]+ requests in .*)/  \1/p'
}

# make_big FILE: keep-alive API exchanges (20 connections), then two large downloads.
make_big() {
	local ns mb=${BENCH_DOWNLOAD_MB:-250} p1 p2 rate
	st_netns_single big
	ns=$ST_LAST_NS
	st_nginx_start webbig "$ns" 80
	head -c $((mb << 20)) /dev/urandom >"$ST_TMP/webbig/www/big"
	rate=$(wrk_rate "$ns" -c20 "http://127.0.0.1/f100")
	capture_start "$ns" "$1"
	st_log "big: wrk keep-alive, 20 connections, small responses: ~${BENCH_API_REQS:-200000} requests"
	wrk_for "$ns" "${BENCH_API_REQS:-200000}" "$rate" 90 -c20 "http://127.0.0.1/f100"
	st_log "big: two downloads of $mb MiB"
	# paced, so that tcpdump keeps up on a loaded host (a dropped packet makes a gap)
	st_in "$ns" curl -s -o /dev/null --limit-rate 40M http://127.0.0.1/big &
	p1=$!
	st_in "$ns" curl -s -o /dev/null --limit-rate 40M http://127.0.0.1/big &
	p2=$!
	wait "$p1" "$p2"
	capture_stop
}

# make_many FILE: one connection per request, then bulk keep-alive.
make_many() {
	local ns rate
	st_netns_single many
	ns=$ST_LAST_NS
	st_nginx_start webmany "$ns" 80
	rate=$(wrk_rate "$ns" -c16 -H 'Connection: close' "http://127.0.0.1/f1448")
	capture_start "$ns" "$1"
	st_log "many: wrk, Connection: close: ~${BENCH_MANY_CONNS:-280000} connections"
	wrk_for "$ns" "${BENCH_MANY_CONNS:-280000}" "$rate" 120 -c16 -H 'Connection: close' \
		"http://127.0.0.1/f1448"
	st_log "many: wrk keep-alive, 1s"
	st_in "$ns" wrk -t1 -c4 -d1s --timeout 5s "http://127.0.0.1/f16384" | sed -n '/Requests\/sec/p'
	capture_stop
}

# timed SHAPE TOOL OUTDIR CMD...: runs CMD under /usr/bin/time -v; appends "wall user sys rss_kb"
# to $ST_TMP/SHAPE.TOOL.runs.
timed() {
	local shape=$1 name=$2 dir=$3 f=$ST_TMP/$1.$2
	shift 3
	rm -rf "$dir"
	sync
	/usr/bin/time -v "$@" >"$f.out" 2>"$f.time" || {
		tail -n 30 "$f.time"
		st_fail "$name failed on $shape"
	}
	python3 - "$f.time" >>"$f.runs" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def f(k):
    return re.search(k + r": (.*)", t).group(1).strip()
w = f(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
print(wall, f(r"User time \(seconds\)"), f(r"System time \(seconds\)"), f(r"Maximum resident set size \(kbytes\)"))
PY
}

# outdir NAME RUN: where run RUN of NAME writes (one folder for all runs on a tmpfs).
outdir() { if [ "$KEEP_RUNS" = 1 ]; then echo "$OUT/$1.$2"; else echo "$OUT/$1"; fi; }
run_tool() { # SHAPE TOOL PCAP RUN
	local d
	d=$(outdir "$2" "$4")
	case $2 in
	flows) timed "$1" flows "$d" "$ST_BIN" flows "$3" -o "$d" ;;
	baseline) timed "$1" baseline "$d" "$BASELINE" flows "$3" -o "$d" ;;
	tcpflow) timed "$1" tcpflow "$d" tcpflow -r "$3" -o "$d" ;;
	esac
}

# digest DIR [tcpflow]: "sha256  name" per file, names mapped to shadowtap's.
digest() {
	(cd "$1" && find . -type f ! -name report.xml -printf '%P\0' | sort -z | xargs -0 -r sha256sum) |
		if [ "${2:-}" = tcpflow ]; then python3 -c '
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
'; else cat; fi | sort -k2
}

# median COLUMN FILE; cpu FILE: median of user + sys.
median() { awk -v c="$1" '{ print $c }' "$2" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
cpu() { awk '{ print $2 + $3 }' "$1" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

RESULT=$ST_TMP/result.md
TCPFLOW_VERSION=$( (tcpflow -V 2>/dev/null || true) | awk '{ print $2 }')
same_all=1
for shape in "${SHAPES[@]}"; do
	case $shape in big | many) ;; *) st_fail "unknown shape '$shape' (big, many)" ;; esac
	var=BENCH_PCAP_${shape^^}
	PCAP=${!var:-}
	if [ -z "$PCAP" ]; then
		PCAP=$WORKDIR/$shape.pcap
		"make_$shape" "$PCAP"
		if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP" && cp "$PCAP" "$BENCH_KEEP/"; fi
	fi
	PKTS=$(tcpdump -nr "$PCAP" 2>/dev/null | wc -l)
	MB=$(($(stat -c %s "$PCAP") / 1048576))
	st_log "$shape: $MB MiB, $PKTS packets; $RUNS alternating runs of each tool"
	tcpdump -r "$PCAP" -c $((PKTS / 2)) -w "$WORKDIR/$shape-half.pcap" 2>/dev/null
	tools=(flows tcpflow)
	[ -n "$BASELINE" ] && tools+=(baseline)
	for i in $(seq 1 "$RUNS"); do
		# rotate the order so that no tool always runs first
		for k in $(seq 0 $((${#tools[@]} - 1))); do
			run_tool "$shape" "${tools[$(((i + k) % ${#tools[@]}))]}" "$PCAP" "$i"
		done
	done
	grep -E '^shadowtap: summary' "$ST_TMP/$shape.flows.time" | sed 's/^/  /'
	digest "$(outdir flows "$RUNS")" >"$ST_TMP/d-flows"
	digest "$(outdir tcpflow "$RUNS")" tcpflow >"$ST_TMP/d-tcpflow"
	FILES=$(wc -l <"$ST_TMP/d-flows")
	if cmp -s "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow"; then
		SAME="identical ($FILES files)"
	else
		same_all=0
		SAME="DIFFERENT: $(diff "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow" | grep -c '^[<>]') lines of digest differ"
		diff "$ST_TMP/d-flows" "$ST_TMP/d-tcpflow" | head -n 10
	fi
	st_log "$shape: $SAME"
	timed "$shape" half "$(outdir flows half)" "$ST_BIN" flows "$WORKDIR/$shape-half.pcap" \
		-o "$(outdir flows half)"
	rm -rf "${OUT:?}"/*
	rm -f "$WORKDIR/$shape-half.pcap"
	[ -z "${!var:-}" ] && rm -f "$PCAP"

	fw=$(median 1 "$ST_TMP/$shape.flows.runs")
	tw=$(median 1 "$ST_TMP/$shape.tcpflow.runs")
	fc=$(cpu "$ST_TMP/$shape.flows.runs")
	tc=$(cpu "$ST_TMP/$shape.tcpflow.runs")
	target=3
	[ "$shape" = many ] && target=5
	met=$(awk -v r="$(ratio "$tw" "$fw")" -v t="$target" 'BEGIN { print ((r >= t) ? "met" : "NOT met") }')
	{
		echo
		echo "### $shape: shadowtap flows vs tcpflow ($(date -u '+%F %H:%M UTC'), $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
		echo "Capture: $MB MiB, $PKTS packets, about $((FILES / 2)) connections (files / 2), loopback, nginx + wrk/curl."
		echo "Output: $SAME, written to $OUTFS."
		echo
		echo "| tool | median wall (s) | median CPU (s) | user (s) | sys (s) | peak RSS (MiB) | wall of each run (s) |"
		echo "|------|-----------------|----------------|----------|---------|----------------|----------------------|"
		for t in "${tools[@]}"; do
			r=$ST_TMP/$shape.$t.runs
			label=$t
			[ "$t" = flows ] && label="shadowtap flows"
			[ "$t" = baseline ] && label="baseline ($BASELINE)"
			[ "$t" = tcpflow ] && label="tcpflow $TCPFLOW_VERSION"
			echo "| $label | $(median 1 "$r") | $(cpu "$r") | $(median 2 "$r") | $(median 3 "$r") | $(($(median 4 "$r") / 1024)) | $(awk '{ printf "%s ", $1 }' "$r")|"
		done
		echo
		echo "Speed-up over tcpflow: $(ratio "$tw" "$fw")x by median wall (target ${target}x: $met), $(ratio "$tc" "$fc")x by median CPU."
		[ -n "$BASELINE" ] && echo "Over the baseline: $(ratio "$(median 1 "$ST_TMP/$shape.baseline.runs")" "$fw")x by median wall, $(ratio "$(cpu "$ST_TMP/$shape.baseline.runs")" "$fc")x by median CPU."
		echo "Peak RSS of flows on the first half of the capture: $(($(awk '{ print $4 }' "$ST_TMP/$shape.half.runs") / 1024)) MiB; on all of it: $(($(median 4 "$ST_TMP/$shape.flows.runs") / 1024)) MiB."
		echo "Summary of the last run: \`$(grep -E '^shadowtap: summary' "$ST_TMP/$shape.flows.time" | sed 's/^shadowtap: summary //')\`"
	} >>"$RESULT"
done
cat "$RESULT"
[ "$same_all" = 1 ]
