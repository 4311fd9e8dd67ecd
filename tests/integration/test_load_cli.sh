#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A load test's usage errors (docs/LOAD.md, "Options"; no root needed: each is refused before
# anything is read, opened or connected): one line on stderr naming the command and exit 2,
# for replay (a load option without --rate or --steps, --rate with --steps, --steps with
# --ramp or --duration, --speed, --fast or --multiply with a load test, two --to, --proto
# raw or h2, stdin, a bad rate, step list, pace or duration, the load report and its JSON on one
# file) and for receive (--rate without --to, --pace recorded, --fast). A load report that
# cannot be written stops the run before it starts (exit 1). And what is accepted as a
# duration: units, like every SEC option.
. "$(dirname "$0")/lib.sh"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" replay --help 2>/dev/null | grep -q -- '--steps' || st_skip "$ST_BIN has no load test"
st_init
cd "$ST_TMP" || st_fail "cd $ST_TMP"

# refused WORDS -- ARGS...: the command exits 2 with one stderr line that holds WORDS.
refused() {
	local words=$1 rc=0
	shift 2
	"$ST_BIN" "$@" >out.txt 2>err.txt </dev/null || rc=$?
	[ "$rc" -eq 2 ] || { cat err.txt; st_fail "'$*' exited $rc, not 2"; }
	[ "$(wc -l <err.txt)" -eq 1 ] || { cat err.txt; st_fail "'$*' did not say it in one line"; }
	grep -qF -- "$words" err.txt || st_fail "'$*' says '$(cat err.txt)', not '$words'"
	[ ! -s out.txt ] || st_fail "'$*' wrote to stdout"
}

R=(replay rec.pcap --port 80 --to 127.0.0.1:9)
refused "--duration is a load test's" -- "${R[@]}" --duration 10
refused "--connections is a load test's" -- "${R[@]}" --connections 4
refused "not both" -- "${R[@]}" --rate 5 --steps 1,2
refused "no --ramp" -- "${R[@]}" --steps 1,2 --ramp 3
refused "no --duration" -- "${R[@]}" --steps 1,2 --duration 3
refused "longer than --duration" -- "${R[@]}" --rate 5 --ramp 1m --duration 30s
refused "no --speed or --fast" -- "${R[@]}" --rate 5 --speed 2
refused "no --speed or --fast" -- "${R[@]}" --rate 5 --fast
refused "--multiply" -- "${R[@]}" --rate 5 --multiply 3
refused "one target" -- "${R[@]}" --to 127.0.0.1:10 --rate 5
refused "no --proto raw" -- "${R[@]}" --rate 5 --proto raw
refused "no --proto h2" -- "${R[@]}" --rate 5 --proto h2
refused "not stdin" -- replay - --port 80 --to 127.0.0.1:9 --rate 5
refused "--rate" -- "${R[@]}" --rate 0
refused "--steps" -- "${R[@]}" --steps 10,x
refused "--pace" -- "${R[@]}" --rate 5 --pace bursty
refused "--duration" -- "${R[@]}" --rate 5 --duration 5x
refused "one file" -- "${R[@]}" --rate 5 --report l.html --report-json ./l.html
refused "needs --to" -- receive rec.tee -w x.pcap --rate 5
refused "receive paces a load test constant" -- receive rec.tee --to 127.0.0.1:9 --rate 5 --pace recorded
refused "no --fast" -- receive rec.tee --to 127.0.0.1:9 --rate 5 --fast
[ ! -e l.html ] && [ ! -e x.pcap ] || st_fail "a refused command left a file behind"

# a load report that cannot be written stops the run before it starts (exit 1, one line;
# the recording, hand-made, is surveyed first: one GET answered by production)
PYTHONPATH=$ST_ROOT/tests/integration python3 - one.pcap <<'PY'
import sys
from rawpcap import pkt, write
c, s = [10, 9, 0, 1], [10, 9, 0, 2]
req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
write(sys.argv[1], [pkt(c, s, 40000, 80, 100, 0, 0x02), pkt(s, c, 80, 40000, 500, 101, 0x12),
                    pkt(c, s, 40000, 80, 101, 501, 0x10),
                    pkt(c, s, 40000, 80, 101, 501, 0x18, req),
                    pkt(s, c, 80, 40000, 501, 101 + len(req), 0x18, resp),
                    pkt(c, s, 40000, 80, 101 + len(req), 501 + len(resp), 0x11)])
PY
rc=0
timeout 30 "$ST_BIN" replay one.pcap --port 80 --to 127.0.0.1:9 --rate 5 --report-json /dev/full \
	>/dev/null 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q "/dev/full" err.txt && ! grep -q "^shadowtap: load " err.txt ||
	{ cat err.txt; st_fail "--report-json /dev/full: exit $rc (want 1, before the test starts)"; }

# accepted: durations with units get as far as the missing file (exit 1, one line)
rc=0
"$ST_BIN" "${R[@]}" --rate 5 --duration 1m --ramp 1500ms --timeout 2s 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q "rec.pcap" err.txt ||
	{ cat err.txt; st_fail "durations with units: exit $rc (want 1: the missing recording)"; }
st_log "PASS"
