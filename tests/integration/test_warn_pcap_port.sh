#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A pcap with no connection on --port is said, naming the ports its connections were made to
# (no root needed): `replay` used to end with requests=0 and exit 0, `flows` with no file
# and no word. The file is what it is (exit 0, the summary as always); the same file with
# its real port says nothing of the kind. A capture with no connection start at all says
# so too.
. "$(dirname "$0")/lib.sh"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
st_require_cmds python3
st_init
cd "$ST_TMP" || st_fail "cd $ST_TMP"

PYTHONPATH=$ST_ROOT/tests/integration python3 - <<'PY' || st_fail "could not write the pcaps"
from rawpcap import pkt, write
C, S = [10, 0, 0, 2], [10, 0, 0, 1]
p = []
def conn(cp, sp, path):
    req = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
    ans = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    p.extend([pkt(C, S, cp, sp, 1000, 0, 0x02), pkt(S, C, sp, cp, 5000, 1001, 0x12),
              pkt(C, S, cp, sp, 1001, 5001, 0x10), pkt(C, S, cp, sp, 1001, 5001, 0x18, req),
              pkt(S, C, sp, cp, 5001, 1001 + len(req), 0x18, ans)])
conn(40001, 8080, b"/a")
conn(40002, 8080, b"/b")
conn(40003, 443, b"/c")
write("other.pcap", p)
write("empty.pcap", [])
PY

rc=0
"$ST_BIN" replay other.pcap --port 80 --to 127.0.0.1:1 --drain 0 2>replay.err || rc=$?
cat replay.err
[ "$rc" -eq 0 ] || st_fail "replay of a file without port 80: exit $rc"
grep -qx 'shadowtap: replay: other.pcap has no connection on --port (its connections: 8080 (2 connections), 443 (1 connection)): nothing was replayed' replay.err ||
	st_fail "replay: the file's ports are not said"
[ "$(st_summary_field "$(st_summary replay.err)" requests)" = 0 ] || st_fail "replay: requests"

rc=0
"$ST_BIN" flows other.pcap --port 80 -o flows80 2>flows.err || rc=$?
cat flows.err
[ "$rc" -eq 0 ] || st_fail "flows of a file without port 80: exit $rc"
grep -qx 'shadowtap: flows: other.pcap has no connection on --port (its connections: 8080 (2 connections), 443 (1 connection)): no file written' flows.err ||
	st_fail "flows: the file's ports are not said"

rc=0
"$ST_BIN" replay empty.pcap --port 80 --to 127.0.0.1:1 --drain 0 2>empty.err || rc=$?
[ "$rc" -eq 0 ] && grep -qx 'shadowtap: replay: empty.pcap has no connection on --port (its connections: no connection start (SYN) in its 0 TCP segments): nothing was replayed' empty.err ||
	{ cat empty.err; st_fail "replay of an empty capture: exit $rc, or not said"; }

# the port the file has: nothing of the kind (the target's own refusal is another line)
"$ST_BIN" replay other.pcap --port 8080 --to 127.0.0.1:1 --drain 0 2>ok.err || { cat ok.err; st_fail "replay --port 8080"; }
grep -q 'has no connection on --port' ok.err && { cat ok.err; st_fail "a file with connections on --port was warned about"; }
[ "$(st_summary_field "$(st_summary ok.err)" requests)" = 2 ] || { cat ok.err; st_fail "replay --port 8080: requests"; }
"$ST_BIN" flows other.pcap --port 443 -o flows443 2>ok.err || { cat ok.err; st_fail "flows --port 443"; }
grep -q 'has no connection on --port' ok.err && st_fail "flows: a file with connections on --port was warned about"
[ -n "$(ls flows443)" ] || st_fail "flows --port 443 wrote nothing"
st_log "PASS"
