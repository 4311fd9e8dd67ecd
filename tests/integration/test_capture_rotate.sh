#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap capture --rotate-mb/--rotate-sec/--keep` on a veth under curl and wrk traffic
# (about 6.5 MB by size, 4 s of wrk by time):
#  - by size, every file kept: several timestamped files whose names sort in time order, no
#    temporary file left, each a valid pcap, and together (mergecap) the same TCP streams as
#    tcpdump's capture of the same period: rotation loses no byte;
#  - by time with --keep 2: polled while it runs, never more than 2 files in the folder
#    (the one being written included), and exactly 2 at the end; an older run's files of the
#    same name count against --keep; files it did not write (not a pcap, a symlink, another
#    user's, an impossible date in the name) neither count nor are removed;
#  - bad combinations are usage errors.
. "$(dirname "$0")/lib.sh"
st_require_agent
st_init
D=$ST_TMP

usage() { # EXPECTED-REGEX ARGS...: exit 2, one line
	local re=$1 rc=0 out
	shift
	out=$("$ST_BIN" capture --iface lo --port 80 "$@" 2>&1) || rc=$?
	[ "$rc" -eq 2 ] || st_fail "capture $*: exit $rc, expected 2 ($out)"
	grep -Eq -e "$re" <<<"$out" || st_fail "capture $*: '$out' does not match '$re'"
}
usage "--keep needs --rotate-mb or --rotate-sec" -w "$D/x.pcap" --keep 3
usage "-w '-' is stdout" -w - --rotate-sec 5
usage "--rotate-mb" -w "$D/x.pcap" --rotate-mb 0

st_require_root
st_require_cmds ip nginx curl wrk tcpdump tcpflow mergecap bpftool python3
st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80

st_log "by size: --rotate-mb 1"
mkdir -p "$D/size"
st_tcpdump_start tcpdump "$ST_SRV_NS" "$ST_SRV_IF" "$D/tcpdump.pcap" 'tcp port 80'
st_capture_start agent "$ST_SRV_NS" "$ST_SRV_IF" "$D/size/web.pcap" --port 80 --rotate-mb 1
for f in f1048576 f100000 f65537 f5242880 f1448; do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/$f"
done
for i in $(seq 1 20); do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f4096"; done
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_tcpdump_stop "$ST_TCPDUMP_PID" tcpdump || true
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
tail -n 1 "$D/agent.err" | cut -c1-300
[ "$rc" -eq 0 ] || st_fail "capture exited with $rc"
ls -la "$D/size"
[ -z "$(find "$D/size" -name '.*' -type f)" ] || st_fail "a temporary file is left"
mapfile -t files < <(find "$D/size" -name 'web-*.pcap' | sort)
[ "${#files[@]}" -ge 4 ] || st_fail "only ${#files[@]} files for ~6.5 MB with --rotate-mb 1"
for f in "${files[@]}"; do
	[[ ${f##*/} =~ ^web-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.pcap$ ]] || st_fail "unexpected name ${f##*/}"
done
# the names' order is the packets' order: each file's first packet after the previous one's
prev=0
for f in "${files[@]}"; do
	first=$(tcpdump -tt -nr "$f" -c 1 2>/dev/null | awk '{ print $1 }')
	[ -n "$first" ] || continue
	python3 -c "import sys; sys.exit(0 if float('$first') >= float('$prev') else 1)" ||
		st_fail "${f##*/} starts before the file named before it"
	prev=$first
done
rotations=$(st_summary_field "$(st_summary "$D/agent.err")" rotations)
[ "$rotations" -eq $((${#files[@]} - 1)) ] || st_fail "rotations=$rotations for ${#files[@]} files"
mergecap -F pcap -w "$D/merged.pcap" "${files[@]}"
st_compare_captures "$D/merged.pcap" "$D/tcpdump.pcap" "$D" || st_fail "the rotated files lose bytes"

st_log "by time: --rotate-sec 1 --keep 2 (an older run's file counts; files it did not write stay)"
mkdir -p "$D/time"
# an older run's file (a pcap header, ours); and what --keep must leave alone although the
# pattern matches: not a capture, a symlink to one elsewhere, another user's, an impossible date
pcaphdr() { printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00'; }
pcaphdr >"$D/time/web-20000101T000000.000Z.pcap"
echo "notes, not a capture" >"$D/time/web-20000101T000001.000Z.pcap"
pcaphdr >"$D/victim.pcap"
ln -s "$D/victim.pcap" "$D/time/web-20000101T000002.000Z.pcap"
pcaphdr >"$D/time/web-20000101T000003.000Z.pcap"
chown nobody "$D/time/web-20000101T000003.000Z.pcap"
pcaphdr >"$D/time/web-20001399T000000.000Z.pcap"
PLANTED=3 # regular files among them
st_capture_start agent2 "$ST_SRV_NS" "$ST_SRV_IF" "$D/time/web.pcap" --port 80 --rotate-sec 1 --keep 2
st_in "$ST_CLI_NS" wrk -t1 -c1 -d4s --timeout 5s "http://$ST_SRV4/f1448" >/dev/null &
WRK=$!
most=0
for i in $(seq 1 45); do
	n=$(($(find "$D/time" -type f | wc -l) - PLANTED))
	[ "$n" -gt "$most" ] && most=$n
	sleep 0.1
done
wait "$WRK" || true
rc=0
st_stop "$ST_AGENT_PID" INT || rc=$?
[ "$rc" -eq 0 ] || st_fail "capture exited with $rc"
ls -la "$D/time"
[ "$most" -le 2 ] || st_fail "$most files at once with --keep 2"
[ ! -e "$D/time/web-20000101T000000.000Z.pcap" ] || st_fail "the older run's file was kept"
for f in web-20000101T000001.000Z.pcap web-20000101T000002.000Z.pcap web-20000101T000003.000Z.pcap \
	web-20001399T000000.000Z.pcap; do
	[ -e "$D/time/$f" ] || [ -L "$D/time/$f" ] || st_fail "--keep removed $f, which this job did not write"
done
[ -L "$D/time/web-20000101T000002.000Z.pcap" ] && [ "$(stat -c %s "$D/victim.pcap")" = 24 ] ||
	st_fail "the symlink or what it names was touched"
n=$(($(find "$D/time" -type f | wc -l) - PLANTED))
[ "$n" -eq 2 ] || st_fail "$n files at the end, --keep 2"
summary=$(st_summary "$D/agent2.err")
echo "$summary" | cut -c1-200
[ "$(st_summary_field "$summary" rotations)" -ge 3 ] || st_fail "fewer than 3 rotations in 4 s: $summary"
st_log "PASS"
