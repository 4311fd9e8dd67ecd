#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Output errors are never swallowed (docs/ARCHITECTURE.md, "Output files"): a write that fails
# is said once on stderr, counted on the summary line, and the command exits 1; two outputs
# of one command on one file are a usage error (exit 2).
#  - replay --compare --diffs /dev/full: three differing pairs, one line on stderr naming
#    /dev/full, output_errors=3, exit 1 (it used to print nothing and exit 0);
#  - --report /dev/full, --report-json /dev/full: said, counted, exit 1;
#  - --metrics naming a folder: refused at start, exit 1 (it wrote nothing and exited 0);
#  - --report X --report-json X (also written ./X), --diffs X --metrics X, report -o X
#    --report-json X, receive -w X --report X: exit 2, nothing written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip python3
st_require_agent
st_init

PCAP=$ST_TMP/three.pcap
# One connection to port 80 (raw IPv4 link type): three GETs, each answered "prod" by production;
# the shadow (shadow_sink.py) answers "ok", so every pair differs.
PYTHONPATH=$ST_ROOT/tests/integration python3 - "$PCAP" <<'PY'
import sys
from rawpcap import pkt, write
c, s = [10, 9, 0, 1], [10, 9, 0, 2]
cs, ss = 101, 501
pkts = [pkt(c, s, 40000, 80, 100, 0, 0x02), pkt(s, c, 80, 40000, 500, 101, 0x12),
        pkt(c, s, 40000, 80, 101, 501, 0x10)]
for i in range(3):
    req = b"GET /item/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nprod"
    pkts.append(pkt(c, s, 40000, 80, cs, ss, 0x18, req)); cs += len(req)
    pkts.append(pkt(s, c, 80, 40000, ss, cs, 0x18, resp)); ss += len(resp)
pkts.append(pkt(c, s, 40000, 80, cs, ss, 0x11))
write(sys.argv[1], pkts)
PY

st_netns_single out
NS=$ST_LAST_NS
sh_sink_start sink "$NS" 127.0.0.1 8080
REPLAY=("$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:8080 --fast --drain 5)

# run NAME WANT_RC ARGS...: the replay with ARGS in the namespace; stderr in $ST_TMP/NAME.err
run() {
	local name=$1 want=$2 rc=0
	shift 2
	st_in "$NS" timeout 60 "${REPLAY[@]}" "$@" >/dev/null 2>"$ST_TMP/$name.err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$ST_TMP/$name.err"; st_fail "$name: exit $rc, want $want"; }
}

st_log "the pairs differ (the base case: exit 0, three diffs lines)"
run base 0 --diffs "$ST_TMP/d.jsonl"
sum=$(st_summary "$ST_TMP/base.err")
[ "$(st_summary_field "$sum" differing)" = 3 ] || { cat "$ST_TMP/base.err"; st_fail "want 3 differing pairs: $sum"; }
[ "$(wc -l <"$ST_TMP/d.jsonl")" = 3 ] || st_fail "want 3 lines in --diffs"

st_log "--diffs /dev/full: said once, counted, exit 1"
run full 1 --diffs /dev/full
sum=$(st_summary "$ST_TMP/full.err")
echo "  $sum"
# (the start line and the verdict name the outputs too: the error is said once)
[ "$(grep -Ev '^shadowtap: (replay running|verdict):' "$ST_TMP/full.err" | grep -c '/dev/full')" = 1 ] || { cat "$ST_TMP/full.err"; st_fail "the error on /dev/full is not said exactly once"; }
[ "$(st_summary_field "$sum" output_errors)" = 3 ] || st_fail "output_errors is not 3: $sum"
[ "$(st_summary_field "$sum" diffs_written)" = 0 ] || st_fail "diffs_written is not 0: $sum"

st_log "--report /dev/full, --report-json /dev/full: said, counted, exit 1"
run rfull 1 --report /dev/full
grep -q 'compare: /dev/full: No space left on device' "$ST_TMP/rfull.err" || { cat "$ST_TMP/rfull.err"; st_fail "--report /dev/full: not said"; }
[ "$(st_summary_field "$(st_summary "$ST_TMP/rfull.err")" output_errors)" -ge 1 ] || st_fail "--report /dev/full: not counted"
run jfull 1 --report-json /dev/full
[ "$(grep -Ev '^shadowtap: (replay running|verdict):' "$ST_TMP/jfull.err" | grep -c '/dev/full')" = 1 ] || { cat "$ST_TMP/jfull.err"; st_fail "--report-json /dev/full: not said once"; }

st_log "--metrics naming a folder: refused at start, exit 1"
mkdir "$ST_TMP/mdir"
run mdir 1 --metrics "$ST_TMP/mdir"
grep -q "metrics $ST_TMP/mdir: Is a directory" "$ST_TMP/mdir.err" || { cat "$ST_TMP/mdir.err"; st_fail "--metrics DIR: not said"; }
[ -z "$(ls -A "$ST_TMP/mdir")" ] || st_fail "--metrics DIR wrote into the folder"

st_log "two outputs on one file: a usage error (exit 2), nothing written"
cd "$ST_TMP"
run same1 2 --report x.out --report-json x.out
grep -q -- '--report and --report-json name one file' "$ST_TMP/same1.err" || { cat "$ST_TMP/same1.err"; st_fail "same path: the message"; }
run same2 2 --report "$ST_TMP/y.out" --report-json ./y.out
run same3 2 --diffs z.out --metrics "$ST_TMP/z.out"
run same4 2 --report-json w.out --diffs ./w.out
[ ! -e x.out ] && [ ! -e y.out ] && [ ! -e z.out ] && [ ! -e w.out ] || st_fail "a refused run wrote a file"
run devnull 0 --report /dev/null --report-json /dev/null
rc=0
"$ST_BIN" report --merge "$ST_TMP/none.json" -o m.out --report-json ./m.out 2>"$ST_TMP/rep.err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$ST_TMP/rep.err"; st_fail "report -o X --report-json X: exit $rc, want 2"; }
rc=0
: >"$ST_TMP/empty.tee"
"$ST_BIN" receive "$ST_TMP/empty.tee" -w r.out --to 127.0.0.1:9 --report r.out 2>"$ST_TMP/rcv.err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$ST_TMP/rcv.err"; st_fail "receive -w X --report X: exit $rc, want 2"; }
st_log "PASS"
