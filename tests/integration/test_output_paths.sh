#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Output paths as root (agent/output/output.c): an atomic rewrite renames only onto a regular file or a
# missing path; anything else is written in place; only what the run created is removed.
#  - --metrics /dev/null leaves /dev/null a character device (in a private mount namespace
#    with its own /dev: if this ever fails, the host's /dev/null is not the one replaced);
#  - --metrics to a FIFO: written in place, and without a reader the run does not hang;
#  - --metrics to a regular file: still replaced atomically (a new inode, complete content,
#    mode kept, no temporary file left); a new file is created 0600 (--output-mode says
#    otherwise);
#  - a symlink planted where any output goes (capture -w, receive -w and -o, flows -o, tee -o,
#    replay --metrics/--report/--report-json/--diffs, report -o/--report-json) is refused
#    with one line naming it, and the file or folder it points to is untouched;
#  - capture whose attach fails with -w /dev/null, -w an existing file, -w a missing path:
#    each left as it was (the old code truncated and then unlinked it);
#  - flows --force into a folder where a symlink or a FIFO has a flow's name: not followed,
#    not waited on.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip unshare mknod mkfifo python3 stat
st_require_agent
st_init

PCAP=$ST_TMP/one.pcap
# One HTTP connection on port 80 (raw IPv4 link type): SYN, SYN-ACK, ACK, a GET, FIN.
PYTHONPATH=$ST_ROOT/tests/integration python3 - "$PCAP" <<'PY'
import sys
from rawpcap import pkt, write
c, s = [10, 9, 0, 1], [10, 9, 0, 2]
req = b"GET /metrics-test HTTP/1.1\r\nHost: x\r\n\r\n"
pkts = [pkt(c, s, 40000, 80, 100, 0, 0x02), pkt(s, c, 80, 40000, 500, 101, 0x12),
        pkt(c, s, 40000, 80, 101, 501, 0x10), pkt(c, s, 40000, 80, 101, 501, 0x18, req),
        pkt(c, s, 40000, 80, 101 + len(req), 501, 0x11)]
write(sys.argv[1], pkts)
PY
REPLAY=("$ST_BIN" replay "$PCAP" --port 80 --to 127.0.0.1:9 --fast --drain 0)

# in_private_dev CMD...: CMD in a mount namespace whose /dev is a fresh tmpfs holding only a
# null device (so a bug cannot replace the host's /dev/null); prints what /dev/null is after.
in_private_dev() {
	unshare --mount --propagation private bash -c '
		mount -t tmpfs st-test-dev /dev && mknod -m 666 /dev/null c 1 3 || exit 99
		"$@" >/dev/null 2>"'"$ST_TMP"'/priv.err" </dev/null
		echo "rc=$? type=$(stat -c %F /dev/null 2>/dev/null || echo missing) entries=$(ls -A /dev | tr "\n" " ")"
	' st-private-dev "$@"
}

st_log "--metrics /dev/null"
got=$(in_private_dev "${REPLAY[@]}" --metrics /dev/null)
echo "  $got"
[ "$got" = "rc=0 type=character special file entries=null " ] ||
	{ cat "$ST_TMP/priv.err"; st_fail "--metrics /dev/null: $got (want a character device, alone in /dev)"; }

st_log "--metrics to a FIFO: no reader (no hang), then a reader"
mkfifo "$ST_TMP/metrics.fifo"
rc=0
timeout 20 "${REPLAY[@]}" --metrics "$ST_TMP/metrics.fifo" >/dev/null 2>"$ST_TMP/fifo.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/fifo.err"; st_fail "--metrics FIFO without a reader: exit $rc (124: hung)"; }
[ -p "$ST_TMP/metrics.fifo" ] || st_fail "the FIFO was replaced"
timeout 20 cat "$ST_TMP/metrics.fifo" >"$ST_TMP/fifo.got" &
reader=$!
sleep 0.3
timeout 20 "${REPLAY[@]}" --metrics "$ST_TMP/metrics.fifo" >/dev/null 2>&1 || st_fail "--metrics FIFO with a reader failed"
wait "$reader" || true
grep -q '^shadowtap_requests_total{command="replay"} 1$' "$ST_TMP/fifo.got" ||
	{ cat "$ST_TMP/fifo.got"; st_fail "the FIFO's reader did not get the metrics"; }
[ -p "$ST_TMP/metrics.fifo" ] || st_fail "the FIFO was replaced"

st_log "--metrics to a regular file: replaced atomically"
mkdir "$ST_TMP/prom"
echo "old content" >"$ST_TMP/prom/shadow.prom"
chmod 640 "$ST_TMP/prom/shadow.prom"
ino0=$(stat -c %i "$ST_TMP/prom/shadow.prom")
ln -s shadow.prom "$ST_TMP/prom/link.prom"
"${REPLAY[@]}" --metrics "$ST_TMP/prom/shadow.prom" >/dev/null 2>&1 || st_fail "replay --metrics FILE failed"
ino1=$(stat -c %i "$ST_TMP/prom/shadow.prom")
[ "$ino1" != "$ino0" ] || st_fail "the metrics file was rewritten in place, not replaced (inode $ino0)"
[ "$(stat -c %a "$ST_TMP/prom/shadow.prom")" = 640 ] || st_fail "the metrics file's mode changed: $(stat -c %a "$ST_TMP/prom/shadow.prom")"
grep -q '^shadowtap_requests_total{command="replay"} 1$' "$ST_TMP/prom/shadow.prom" ||
	{ cat "$ST_TMP/prom/shadow.prom"; st_fail "metrics file content"; }
! grep -q 'old content' "$ST_TMP/prom/shadow.prom" || st_fail "old content left in the metrics file"
left=$(ls -A "$ST_TMP/prom" | grep -vxE 'shadow.prom|link.prom' || true)
[ -z "$left" ] || st_fail "files left next to the metrics file: $left"

st_log "new output files are 0600, or --output-mode's"
"${REPLAY[@]}" --metrics "$ST_TMP/prom/new.prom" --report-json "$ST_TMP/prom/part.json" \
	>/dev/null 2>&1 || st_fail "replay --metrics NEW failed"
for f in new.prom part.json; do
	[ "$(stat -c %a "$ST_TMP/prom/$f")" = 600 ] || st_fail "$f created $(stat -c %a "$ST_TMP/prom/$f"), want 600"
done
"${REPLAY[@]}" --metrics "$ST_TMP/prom/shared.prom" --output-mode 0644 >/dev/null 2>&1 ||
	st_fail "replay --output-mode 0644 failed"
[ "$(stat -c %a "$ST_TMP/prom/shared.prom")" = 644 ] || st_fail "--output-mode 0644 gave $(stat -c %a "$ST_TMP/prom/shared.prom")"
rc=0
"${REPLAY[@]}" --metrics "$ST_TMP/prom/x.prom" --output-mode 0444 >/dev/null 2>"$ST_TMP/mode.err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$ST_TMP/mode.err"; st_fail "--output-mode 0444: exit $rc, want 2"; }

st_log "a symlink planted where an output goes: refused, what it points to untouched"
mkdir "$ST_TMP/ln" "$ST_TMP/victimdir"
echo victim >"$ST_TMP/victim"
: >"$ST_TMP/empty.tee"
# refused NAME LINKTARGET CMD... (LINK in CMD is the planted link's path)
refused() {
	local name=$1 target=$2 rc=0 args=() a
	shift 2
	rm -f "$ST_TMP/ln/link"
	ln -s "$target" "$ST_TMP/ln/link"
	for a in "$@"; do args+=("${a//LINK/$ST_TMP/ln/link}"); done
	timeout 30 "${args[@]}" >/dev/null 2>"$ST_TMP/ln.err" </dev/null || rc=$?
	[ "$rc" -eq 1 ] || { cat "$ST_TMP/ln.err"; st_fail "$name into a planted symlink: exit $rc, want 1"; }
	grep -q "symbolic link" "$ST_TMP/ln.err" || { cat "$ST_TMP/ln.err"; st_fail "$name: the error does not name the symlink"; }
	[ "$(cat "$ST_TMP/victim")" = victim ] || st_fail "$name wrote through a symlink"
	[ -z "$(ls -A "$ST_TMP/victimdir")" ] || st_fail "$name wrote into the folder a symlink names"
	[ -L "$ST_TMP/ln/link" ] || st_fail "$name replaced the symlink"
	[ "$(ls -A "$ST_TMP/ln")" = link ] || st_fail "$name left files next to the link: $(ls -A "$ST_TMP/ln")"
	echo "  $name: $(head -n1 "$ST_TMP/ln.err")"
}
refused "capture -w" "$ST_TMP/victim" "$ST_BIN" capture --iface st-nosuch0 --port 80 -w LINK
refused "tee -o" "$ST_TMP/victim" "$ST_BIN" tee --iface st-nosuch0 --port 80 -o LINK
refused "receive -w" "$ST_TMP/victim" "$ST_BIN" receive "$ST_TMP/empty.tee" -w LINK
refused "receive -o" "$ST_TMP/victimdir" "$ST_BIN" receive "$ST_TMP/empty.tee" -o LINK --force
refused "flows -o" "$ST_TMP/victimdir" "$ST_BIN" flows "$PCAP" -o LINK --force
refused "replay --metrics" "$ST_TMP/victim" "${REPLAY[@]}" --metrics LINK
refused "replay --report" "$ST_TMP/victim" "${REPLAY[@]}" --report LINK
refused "replay --report-json" "$ST_TMP/victim" "${REPLAY[@]}" --report-json LINK
refused "replay --diffs" "$ST_TMP/victim" "${REPLAY[@]}" --diffs LINK
refused "report -o" "$ST_TMP/victim" "$ST_BIN" report --merge "$ST_TMP/prom/part.json" -o LINK
refused "report --report-json" "$ST_TMP/victim" "$ST_BIN" report --merge "$ST_TMP/prom/part.json" --report-json LINK

st_log "capture: a failed attach leaves -w as it was"
echo "precious bytes" >"$ST_TMP/existing.pcap"
ino0=$(stat -c %i "$ST_TMP/existing.pcap")
rc=0
"$ST_BIN" capture --iface st-nosuch0 --port 80 -w "$ST_TMP/existing.pcap" 2>"$ST_TMP/cap.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$ST_TMP/cap.err"; st_fail "capture on a missing interface: exit $rc, want 1"; }
[ "$(cat "$ST_TMP/existing.pcap" 2>/dev/null)" = "precious bytes" ] &&
	[ "$(stat -c %i "$ST_TMP/existing.pcap")" = "$ino0" ] ||
	st_fail "a failed capture changed the existing file it was told to write"
rc=0
"$ST_BIN" capture --iface st-nosuch0 --port 80 -w "$ST_TMP/new.pcap" 2>"$ST_TMP/cap.err" || rc=$?
[ "$rc" -eq 1 ] && [ ! -e "$ST_TMP/new.pcap" ] || st_fail "a failed capture left -w NEW behind (exit $rc)"
left=$(ls -A "$ST_TMP" | grep -E '^\.(existing|new)\.pcap' || true)
[ -z "$left" ] || st_fail "temporary files left: $left"
got=$(in_private_dev "$ST_BIN" capture --iface st-nosuch0 --port 80 -w /dev/null)
echo "  -w /dev/null: $got"
[ "$got" = "rc=1 type=character special file entries=null " ] ||
	{ cat "$ST_TMP/priv.err"; st_fail "capture -w /dev/null with a failed attach: $got"; }
# Not root: loading fails after the output was opened; nothing of it stays either.
mkdir -p "$ST_TMP/nobody" && chown nobody "$ST_TMP/nobody" && echo "theirs" >"$ST_TMP/nobody/x.pcap"
chown nobody "$ST_TMP/nobody/x.pcap"
st_netns_single cap
rc=0
st_in "$ST_LAST_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$ST_BIN" capture --iface lo --port 80 -w "$ST_TMP/nobody/x.pcap" 2>"$ST_TMP/cap.err" || rc=$?
[ "$rc" -eq 1 ] && [ "$(cat "$ST_TMP/nobody/x.pcap")" = theirs ] && [ "$(ls -A "$ST_TMP/nobody")" = x.pcap ] ||
	{ cat "$ST_TMP/cap.err"; st_fail "capture as nobody: exit $rc, the file or its folder changed"; }

st_log "flows --force: a symlink or a FIFO under a flow's name is not followed or waited on"
mkdir "$ST_TMP/fl"
echo "victim" >"$ST_TMP/victim"
ln -s "$ST_TMP/victim" "$ST_TMP/fl/10.9.0.1.40000-10.9.0.2.80"
rc=0
timeout 20 "$ST_BIN" flows "$PCAP" -o "$ST_TMP/fl" --force >/dev/null 2>"$ST_TMP/fl.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$ST_TMP/fl.err"; st_fail "flows into a planted symlink: exit $rc, want 1"; }
[ "$(cat "$ST_TMP/victim")" = victim ] || st_fail "flows wrote through a symlink"
rm "$ST_TMP/fl/10.9.0.1.40000-10.9.0.2.80"
mkfifo "$ST_TMP/fl/10.9.0.1.40000-10.9.0.2.80"
rc=0
timeout 20 "$ST_BIN" flows "$PCAP" -o "$ST_TMP/fl" --force >/dev/null 2>"$ST_TMP/fl.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$ST_TMP/fl.err"; st_fail "flows into a planted FIFO: exit $rc, want 1 (124: hung)"; }
[ -p "$ST_TMP/fl/10.9.0.1.40000-10.9.0.2.80" ] || st_fail "the FIFO was replaced"
st_log "PASS"
