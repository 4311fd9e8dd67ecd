#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap flows` on real captures, tcpflow as the referee: a real nginx in a server
# namespace, curl (keep-alive batches, uploads, chunked, HTTP/1.0, IPv6), a pipelining
# client and wrk with Connection: close (thousands of connections, 4-tuples reused) talk to
# it from a client namespace while tcpdump captures the veth (Ethernet) and "any" (Linux
# cooked v2). Then:
#   - flows on the Ethernet pcap == tcpflow -r on it: same set of files (names mapped from
#     tcpflow's zero-padded form, its cN suffix to #N+1), same bytes, no gap;
#   - flows on the cooked-v2 pcap (tcpflow cannot read it) and on a pcapng copy == the same;
#   - --port 80 changes nothing; a truncated copy exits 0 with a warning.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow python3 sha256sum
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" flows --help >/dev/null 2>&1 || st_skip "$ST_BIN has no working 'flows --help' yet"
st_init

# Outputs (tens of thousands of files per run) on a tmpfs: file creation on this ext4 costs
# ~150 us each, which would make the test slow without testing anything more.
O=$ST_TMP/out
mkdir -p "$O"
mount -t tmpfs -o size=8g,mode=0755 st-flows-test "$O"
st_on_cleanup "umount -l '$O'"

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
WWW=$ST_TMP/web/www

st_tcpdump_start eth "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/eth.pcap" 'tcp port 80'
ETH_PID=$ST_TCPDUMP_PID
st_tcpdump_start any "$ST_SRV_NS" any "$ST_TMP/any.pcap" 'tcp port 80'
ANY_PID=$ST_TCPDUMP_PID

st_log "traffic: IPv4 mix"
st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$WWW"
st_log "traffic: IPv6 mix"
st_client_mix "$ST_CLI_NS" "$ST_SRV6" 80 "$WWW"
st_log "traffic: wrk, one connection per request, 1024 client ports (4-tuples reused)"
# the server closes first (Connection: close), so the client's ports are free again at once:
# a narrow range makes wrk reuse 4-tuples once it has made more connections than ports. wrk
# runs by the second: 1 s runs until it has (a whole-suite run on a loaded host once made
# only 296 in its 1 s and reused none), at most 8
st_in "$ST_CLI_NS" sysctl -qw net.ipv4.ip_local_port_range="40000 41023"
conns=0
for _ in $(seq 1 8); do
	n=$(st_in "$ST_CLI_NS" wrk -t1 -c4 -d1s --timeout 5s -H 'Connection: close' "http://$ST_SRV4/f1448" |
		sed -nE 's/^ *([0-9]+) requests in .*/\1/p')
	conns=$((conns + ${n:-0}))
	[ "$conns" -le 1100 ] || break
done
echo "  $conns connections over 1024 client ports"
[ "$conns" -gt 1024 ] || st_fail "wrk made $conns connections in 8 s: no 4-tuple reused"
st_log "traffic: wrk keep-alive 1 s"
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s --timeout 5s "http://[$ST_SRV6]/f4096" | sed -n '/Requests\/sec/p'
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ETH_PID" eth || true
st_tcpdump_stop "$ANY_PID" any || true
for c in eth any; do
	dropped=$(st_tcpdump_dropped "$ST_TMP/$c.err")
	[ "${dropped:-0}" -eq 0 ] || st_fail "tcpdump ($c) dropped $dropped packets: no comparison possible"
done
st_log "packets: $(st_pcap_packets "$ST_TMP/eth.pcap") (veth), $(st_pcap_packets "$ST_TMP/any.pcap") (any)"

# run_flows NAME PCAP ARGS...: shadowtap flows PCAP -o $ST_TMP/NAME ARGS; must exit 0 with a
# summary line and no gap.
run_flows() {
	local name=$1 pcap=$2 rc=0 summary
	shift 2
	"$ST_BIN" flows "$pcap" -o "$O/$name" "$@" 2>"$ST_TMP/$name.err" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$ST_TMP/$name.err"; st_fail "flows $name exited with $rc"; }
	summary=$(st_summary "$ST_TMP/$name.err")
	st_summary_documented "$summary" flows
	[ -n "$summary" ] || st_fail "flows $name printed no summary line"
	echo "  $name: ${summary#shadowtap: }"
	[ "$(st_summary_field "$summary" gaps)" = 0 ] || { head -n 20 "$ST_TMP/$name.err"; st_fail "flows $name reports gaps on a lossless capture"; }
}

# Digest of tcpflow's output with its names mapped to shadowtap's.
tcpflow_digest() {
	st_flow_digest "$1" | python3 -c '
import re, sys
pat = re.compile(r"^(.+)\.(\d{5})-(.+)\.(\d{5})(?:c(\d+))?(?:--\d+)?$")
def addr(a):
    return ".".join(str(int(o)) for o in a.split(".")) if "." in a else a
for line in sys.stdin:
    digest, name = line.rstrip("\n").split("  ", 1)
    m = pat.match(name)
    if not m:
        print(digest + "  UNPARSED:" + name)
        continue
    out = "%s.%d-%s.%d" % (addr(m.group(1)), int(m.group(2)), addr(m.group(3)), int(m.group(4)))
    if m.group(5):
        out += "#%d" % (int(m.group(5)) + 1)
    print(digest + "  " + out)
' | sort -k2
}
flows_digest() { st_flow_digest "$1" | sort -k2; }

compare() {
	local what=$1 a=$2 b=$3
	if ! cmp -s "$a" "$b"; then
		echo "$what: $(wc -l <"$a") vs $(wc -l <"$b") files"
		diff "$a" "$b" | head -n 20
		st_fail "$what differ"
	fi
	echo "  identical: $what ($(wc -l <"$a") files)"
}

st_log "shadowtap flows vs tcpflow on the veth capture"
run_flows flows-eth "$ST_TMP/eth.pcap"
st_tcpflow "$ST_TMP/eth.pcap" "$O/tcpflow"
tcpflow_digest "$O/tcpflow" >"$ST_TMP/d-tcpflow"
flows_digest "$O/flows-eth" >"$ST_TMP/d-eth"
[ "$(wc -l <"$ST_TMP/d-eth")" -gt 1000 ] || st_fail "too few streams: $(wc -l <"$ST_TMP/d-eth")"
compare "shadowtap flows and tcpflow streams" "$ST_TMP/d-tcpflow" "$ST_TMP/d-eth"
grep -q '#2$' "$ST_TMP/d-eth" || st_fail "no 4-tuple was reused: the reuse path (#N files) went untested"
st_log "  (4-tuples reused: $(grep -c '#[0-9]*$' "$ST_TMP/d-eth") files with #N)"

# The 5 MB download and the 5 MB upload are whole.
big=$(find "$O/flows-eth" -type f -size +5120k | wc -l)
[ "$big" -ge 4 ] || st_fail "expected the 5 MB transfers (4+ streams over 5 MiB), found $big"

st_log "cooked v2 (tcpdump -i any) and pcapng give the same files"
[ "$(python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(20); print(int.from_bytes(f.read(4),"little"))' "$ST_TMP/any.pcap")" = 276 ] ||
	st_log "  note: the 'any' capture is not LINKTYPE_LINUX_SLL2 here"
run_flows flows-any "$ST_TMP/any.pcap"
flows_digest "$O/flows-any" >"$ST_TMP/d-any"
compare "veth and any captures" "$ST_TMP/d-eth" "$ST_TMP/d-any"
if command -v tshark >/dev/null 2>&1; then
	tshark -r "$ST_TMP/eth.pcap" -F pcapng -w "$ST_TMP/eth.pcapng" 2>/dev/null
	run_flows flows-ng "$ST_TMP/eth.pcapng"
	flows_digest "$O/flows-ng" >"$ST_TMP/d-ng"
	compare "pcap and pcapng" "$ST_TMP/d-eth" "$ST_TMP/d-ng"
fi

st_log "--port 80 keeps everything; --port 81 nothing"
run_flows flows-p80 "$ST_TMP/eth.pcap" --port 80
flows_digest "$O/flows-p80" >"$ST_TMP/d-p80"
compare "--port 80 and no filter" "$ST_TMP/d-eth" "$ST_TMP/d-p80"
run_flows flows-p81 "$ST_TMP/eth.pcap" --port 81
[ -z "$(ls -A "$O/flows-p81")" ] || st_fail "--port 81 wrote files"

st_log "a truncated copy: exit 0, a warning, the files before the cut"
size=$(stat -c %s "$ST_TMP/eth.pcap")
head -c $((size / 2 + 13)) "$ST_TMP/eth.pcap" >"$ST_TMP/cut.pcap"
run_flows flows-cut "$ST_TMP/cut.pcap"
grep -q truncated "$ST_TMP/flows-cut.err" || st_fail "no truncation warning"
[ -n "$(ls -A "$O/flows-cut")" ] || st_fail "nothing kept from the truncated capture"
echo "PASS"
