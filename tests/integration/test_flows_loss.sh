#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Every byte accounted for, under loss: live `shadowtap flows` with a 1 MiB ring buffer while
# two clients download 1 MB files back to back and tcpdump captures the same veth. The agent
# is stopped (SIGSTOP) for a second under that load while a third client makes short
# connections, so the ring overflows for certain (whole connections come and go unseen),
# then continued (SIGCONT). Then:
#   - the kernel must have reported loss, and flows gaps;
#   - each file flows writes must match tcpflow's reassembly of tcpdump's pcap byte for byte,
#     except inside the gaps flows reported on stderr (which must be zeros); the summary's
#     gap_bytes must be the sum of the reported gaps;
#   - every reference stream flows has no file for is counted, and must be explained by the
#     loss: in each direction, at most one missing stream per loss the kernel could not even
#     announce (an announced loss opens the stream), and the bytes of the gaps, of the missing
#     streams and of the lost starts and ends of the others at most the bytes the kernel lost
#     (plus what flows dropped and counted).
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
st_tcpdump_start td "$ST_SRV_NS" "$ST_SRV_IF" "$O/ref.pcap" 'tcp port 80' 1048576

st_log "traffic: 2 x 300 downloads of 1 MB in parallel (keep-alive); the agent stopped for 1 s meanwhile"
pids=()
# At 100 MB/s each the downloads last about 3 s: they go on after the agent does, far ahead
# of where its ring overflowed.
for _ in 1 2; do
	st_in "$ST_CLI_NS" curl -s -S --max-time 60 --limit-rate 100M -o /dev/null \
		"http://$ST_SRV4/f1048576?[1-300]" &
	pids+=($!)
done
sleep 0.3
kill -STOP "$FLOWS_PID"
# 40 connections of 100 kB while nothing reads the ring: 4 MB into a 1 MiB ring.
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -H 'Connection: close' -o /dev/null "http://$ST_SRV4/f100000?[1-40]" ||
	st_fail "the short connections failed"
sleep 1
kill -CONT "$FLOWS_PID"
for p in "${pids[@]}"; do wait "$p" || st_fail "a download failed"; done
st_log "traffic: a few requests after the downloads"
for f in f100000 f5242880 f1; do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/$f"; done
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" td || true
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
# per direction (0: client -> server, 1: server -> client): what the kernel lost, and how
# many of its losses it could not announce
lost = [0, 0]
unreported = [0, 0]
for line in open(err):
    m = re.match(r"shadowtap: gap: (\S+) offset=(\d+) length=(\d+) \((\S+)\)", line)
    if m:
        gaps.setdefault(m.group(1), []).append((int(m.group(2)), int(m.group(3))))
        total_gap += int(m.group(3))
    if line.startswith("shadowtap: summary"):
        summary = line
def field(name):
    m = re.search(r" %s=(\d+)" % name, summary)
    return int(m.group(1)) if m else 0
# the tap's figures on the summary line (the per-direction unannounced losses show when not 0)
lost = [field("lost_in"), field("lost_out")]
unreported = [field("loss_unmarked_in"), field("loss_unmarked_out")]
want = int(re.search(r" gap_bytes=(\d+)", summary).group(1))
if want != total_gap:
    sys.exit("summary gap_bytes=%d but the gap lines add up to %d" % (want, total_gap))
drop_bytes = int(re.search(r" drop_bytes=(\d+)", summary).group(1))
if not sum(lost):
    sys.exit("the kernel reported no loss: the overflow this test is about did not happen")
if not total_gap:
    sys.exit("the kernel lost %d bytes but flows reported no gap" % sum(lost))
def direction(name):
    # NAME is SRC.PORT-DST.PORT[#N]: the service listens on port 80
    return 0 if re.match(r"^.+\.80(#\d+)?$", name) else 1
missing_bytes = [0, 0]   # streams flows has no file for
cut_bytes = [0, 0]       # lost starts of joined streams, lost ends
gap_bytes = [0, 0]
ngaps = [0, 0]
for n, g in gaps.items():
    gap_bytes[direction(n)] += sum(ln for _, ln in g)
    ngaps[direction(n)] += len(g)
bad = short = 0
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
    # a stream whose start was lost is joined mid-way: it is a suffix of the reference; when its
    # end was lost too (its last segments and FIN among the unannounced losses) it is a slice
    # of it: the first bytes seen say where
    def slice_shift():
        pos = 0
        for off, ln in g + [(len(a), 0)]:
            if off - pos >= 32:
                at = b.find(a[pos:off])
                return at - pos if at >= 0 else -1
            pos = off + ln
        return -1
    if not (ok(0) or ok(len(b) - len(a)) or (unreported[direction(n)] and ok(slice_shift()))):
        print("%s: %d bytes, reference %d, %d gaps: bytes outside the gaps differ" % (n, len(a), len(b), len(g)))
        bad += 1
    elif len(a) != len(b):
        # only possible when the kernel could not even report a loss (its LOSS record lost)
        short += 1
        cut_bytes[direction(n)] += max(len(b) - len(a), 0)
        print("%s: %d bytes, reference %d (%s)" % (n, len(a), len(b),
              "the kernel lost loss reports" if unreported[direction(n)] else "bytes missing without a gap"))
        bad += 0 if unreported[direction(n)] else 1
missing = [[], []]
for k in sorted(refs):
    if k not in files:
        missing[direction(k)].append(k)
        missing_bytes[direction(k)] += os.path.getsize(os.path.join(ref, refs[k]))
for d, what in enumerate(("client -> server", "server -> client")):
    # An announced loss opens the stream (a file of zeros at least): a stream with no file
    # lost every segment without a word, each one counted in lost_unreported.
    print("%s: %d streams missing (%d bytes), %d gap bytes in %d gaps, %d bytes cut; "
          "the kernel lost %d bytes, %d losses unannounced" % (what, len(missing[d]),
          missing_bytes[d], gap_bytes[d], ngaps[d], cut_bytes[d], lost[d], unreported[d]))
    for k in missing[d][:10]:
        print("  missing: %s (%d bytes)" % (k, os.path.getsize(os.path.join(ref, refs[k]))))
    if len(missing[d]) > 10:
        print("  ... and %d more" % (len(missing[d]) - 10))
    if len(missing[d]) > unreported[d]:
        print("  %d missing streams, but only %d losses went unannounced" % (len(missing[d]), unreported[d]))
        bad += 1
    # Every byte that is not in the files was lost by the kernel or dropped (and counted) by
    # the reassembly, which skips strays before it takes a run of them for the stream; a lost
    # FIN may add one byte to a gap.
    if gap_bytes[d] + missing_bytes[d] + cut_bytes[d] > lost[d] + drop_bytes + ngaps[d]:
        print("  %d bytes missing from the files, but the kernel lost only %d (and flows dropped %d)" %
              (gap_bytes[d] + missing_bytes[d] + cut_bytes[d], lost[d], drop_bytes))
        bad += 1
print("checked %d files, %d with gaps (%d gap bytes), %d shorter, %d streams missing, %d bad" %
      (len(files), len(gaps), total_gap, short, len(missing[0]) + len(missing[1]), bad))
sys.exit(1 if bad else 0)
PY
echo "PASS"
