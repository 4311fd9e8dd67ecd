#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Every byte accounted for, under loss: live `shadowtap flows` with a 1 MiB ring buffer under
# two clients downloading 1 MB files back to back, so the ring overflows, while tcpdump captures the same veth.
# Each file flows writes must match tcpflow's reassembly of tcpdump's pcap byte for byte,
# except inside the gaps flows reported on stderr (which must be zeros), and the summary's
# gap_bytes must be the sum of the reported gaps. Passes without loss too (then the files
# must simply be identical), saying so.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow bpftool python3
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" flows --help >/dev/null 2>&1 || st_skip "$ST_BIN has no working 'flows --help' yet"
st_init

O=$ST_TMP/out
mkdir -p "$O"
mount -t tmpfs -o size=6g,mode=0755 st-flows-loss "$O"
st_on_cleanup "umount -l '$O'"

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80

st_in_bg "$ST_SRV_NS" "$ST_BIN" flows --iface "$ST_SRV_IF" --port 80 --ring-mb 1 -o "$O/live" \
	>"$ST_TMP/live.out" 2>"$ST_TMP/live.err" </dev/null &
FLOWS_PID=$!
ST_PIDS+=("$FLOWS_PID")
for i in $(seq 1 100); do
	st_alive "$FLOWS_PID" || { cat "$ST_TMP/live.err"; st_fail "flows exited during start-up"; }
	st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$FLOWS_PID" && break
	[ "$i" -lt 100 ] || st_fail "flows did not attach within 10 s"
	sleep 0.1
done
sleep 0.2
# The reference must not lose anything itself: a 1 GiB buffer (the lib's default is 256 MiB), written to the tmpfs.
st_in_bg "$ST_SRV_NS" tcpdump -i "$ST_SRV_IF" -s 0 -B 1048576 -n -w "$O/ref.pcap" 'tcp port 80' \
	>"$ST_TMP/td.out" 2>"$ST_TMP/td.err" </dev/null &
ST_TCPDUMP_PID=$!
ST_PIDS+=("$ST_TCPDUMP_PID")
st_wait_log "$ST_TMP/td.err" 'listening on' 10

st_log "traffic: 2 x 300 downloads of 1 MB in parallel (keep-alive), then a few requests"
pids=()
for c in 1 2; do
	st_in "$ST_CLI_NS" curl -s -S --max-time 60 -o /dev/null "http://$ST_SRV4/f1048576?[1-300]" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || st_fail "a download failed"; done
for f in f100000 f5242880 f1; do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/$f"; done
sleep 2
st_stop "$ST_TCPDUMP_PID" INT || true
dropped=$(st_tcpdump_dropped "$ST_TMP/td.err")
[ "${dropped:-0}" -eq 0 ] || st_skip "the reference tcpdump dropped $dropped packets"
rc=0
st_stop "$FLOWS_PID" INT || rc=$?
[ "$rc" -eq 0 ] || { tail -n 20 "$ST_TMP/live.err"; st_fail "flows exited with $rc"; }
summary=$(st_summary "$ST_TMP/live.err")
[ -n "$summary" ] || st_fail "no summary line"
echo "  ${summary#shadowtap: }"
grep -E 'kernel' "$ST_TMP/live.err" || true

st_tcpflow "$O/ref.pcap" "$O/ref"
python3 - "$O/live" "$O/ref" "$ST_TMP/live.err" <<'PY'
import os, re, sys
live, ref, err = sys.argv[1:4]
pat = re.compile(r"^(.+)\.(\d{5})-(.+)\.(\d{5})(?:c(\d+))?$")
def addr(a):
    return ".".join(str(int(o)) for o in a.split(".")) if "." in a else a
refs = {}
for n in os.listdir(ref):
    m = pat.match(n)
    if m:
        k = "%s.%d-%s.%d" % (addr(m.group(1)), int(m.group(2)), addr(m.group(3)), int(m.group(4)))
        refs[k + ("#%d" % (int(m.group(5)) + 1) if m.group(5) else "")] = n
gaps = {}
total_gap = 0
summary = ""
for line in open(err):
    m = re.match(r"shadowtap: gap: (\S+) offset=(\d+) length=(\d+) \((\S+)\)", line)
    if m:
        gaps.setdefault(m.group(1), []).append((int(m.group(2)), int(m.group(3))))
        total_gap += int(m.group(3))
    if line.startswith("shadowtap: summary"):
        summary = line
want = int(re.search(r" gap_bytes=(\d+)", summary).group(1))
if want != total_gap:
    sys.exit("summary gap_bytes=%d but the gap lines add up to %d" % (want, total_gap))
bad = short = 0
unreported = sum(int(x) for x in re.findall(r"(?:lost_unreported|loss_unmarked)=(\d+)", open(err).read()))
files = sorted(os.listdir(live))
for n in files:
    a = open(os.path.join(live, n), "rb").read()
    if n not in refs:
        print("no reference for", n); bad += 1; continue
    b = open(os.path.join(ref, refs[n]), "rb").read()
    g = sorted(gaps.get(n, []))
    for off, ln in g:
        if off + ln > len(a):
            print(n, "gap beyond the end of the file"); bad += 1
    def ok(shift):
        # live bytes a[i] are reference bytes b[i + shift], except inside gaps (zeros)
        if shift < 0:
            return False
        pos = 0
        for off, ln in g + [(len(a), 0)]:
            if a[pos:off] != b[pos + shift:off + shift]:
                return False
            if a[off:off + ln].count(0) != ln:
                return False
            pos = off + ln
        return True
    # a stream whose start was lost is joined mid-way: it is a suffix of the reference
    if not (ok(0) or ok(len(b) - len(a))):
        print("%s: %d bytes, reference %d, %d gaps: bytes outside the gaps differ" % (n, len(a), len(b), len(g)))
        bad += 1
    elif len(a) != len(b):
        # only possible when the kernel could not even report a loss (its LOSS record lost)
        short += 1
        print("%s: %d bytes, reference %d (%s)" % (n, len(a), len(b),
              "the kernel lost loss reports" if unreported else "bytes missing without a gap"))
        bad += 0 if unreported else 1
missing = [k for k in refs if k not in files]
if missing:
    print("%d reference streams missing (whole connections lost?): %s" % (len(missing), missing[:5]))
print("checked %d files, %d with gaps (%d gap bytes), %d shorter, %d bad" % (len(files), len(gaps), total_gap, short, bad))
sys.exit(1 if bad else 0)
PY
[ "$(st_summary_field "$summary" gaps)" -gt 0 ] || st_log "note: no loss was induced this time (1 MiB ring kept up)"
echo "PASS"
