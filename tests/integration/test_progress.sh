#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Progress on a terminal: a live command whose stderr is a TTY (here a pty from script(1))
# draws a status line of its main counters (carriage return, erase line), redraws it every
# second, and erases it before its summary; every other line goes above it. -q turns it
# off, and so does a stderr that is not a terminal (a file: not one carriage return).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl bpftool script
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80

# pty NAME ARGS...: `capture ARGS` for 4 s with its stderr on a pty; the pty's bytes in
# NAME.tty; script's pid in p
pty() {
	local name=$1 cmd
	shift
	printf -v cmd '%q ' ip netns exec "$ST_SRV_NS" "$ST_BIN" capture -i "$ST_SRV_IF" -p 80 \
		-w "$ST_TMP/$name.pcap" --duration 4 "$@"
	script -qfec "$cmd" /dev/null >"$ST_TMP/$name.tty" </dev/null &
	p=$!
	ST_PIDS+=("$p")
}
pty tty
st_wait_log "$ST_TMP/tty.tty" 'capture running:' 10
for i in 1 2 3 4 5; do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://$ST_SRV4/f1448"; sleep 0.2; done
wait "$p" || st_fail "capture on a pty failed"
python3 - "$ST_TMP/tty.tty" <<'PY' || st_fail "no status line on the terminal (above)"
import re, sys
b = open(sys.argv[1], "rb").read().decode()
status = re.findall(r"\rcapture: (packets [^\r\n]*?)\x1b\[K\r", b)
print("status lines drawn:", len(status), "last:", status[-1] if status else None)
if len(status) < 2:
    sys.exit("fewer than 2 status lines in 4 s")
if not re.search(r"packets [0-9.]+/s \([0-9]+\); written [0-9.]+ [KMG]?B/s \([0-9.]+ [KMG]?B\)", status[-1]):
    sys.exit("the status line does not show rates and sizes")
# erased before the summary, which starts a clean line
if not re.search(r"\r\x1b\[Kshadowtap: summary packets=[1-9]", b):
    sys.exit("the status line was not erased before the summary")
PY

pty quiet -q
wait "$p" || st_fail "capture -q on a pty failed"
grep -q $'\r'"capture: packets" "$ST_TMP/quiet.tty" && st_fail "-q drew a status line"
grep -q 'summary packets=' "$ST_TMP/quiet.tty" || st_fail "-q: no summary"

st_in "$ST_SRV_NS" "$ST_BIN" capture -i "$ST_SRV_IF" -p 80 -w "$ST_TMP/file.pcap" --duration 2 \
	2>"$ST_TMP/file.err" || st_fail "capture to a file failed"
grep -q $'\r' "$ST_TMP/file.err" && st_fail "a status line was drawn on a file"
st_log "PASS"
