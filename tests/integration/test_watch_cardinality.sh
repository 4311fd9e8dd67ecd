#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Hostile paths cannot grow watch's series: 100k requests for distinct random paths (nginx
# answers 404) leave at most --max-series (1000) series and --max-endpoints (200) endpoints on
# /metrics, the rest counted as endpoint "other", every request counted; and the agent's
# memory does not grow between the first 20k and the last 80k. (--head-bytes 16384: a batch
# of 40 pipelined requests, or of their answers, fits in the heads the kernel copies, so the
# count is exact from the first request: docs/WATCH.md, "When framing is lost".)
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
D=$ST_TMP
M=127.0.0.1:19466
# ASan keeps freed memory in a quarantine (256 MiB by default) that would grow the RSS of any
# process that allocates and frees: a small one, so the RSS says what the agent holds
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4 \
	st_in_bg "$ST_SRV_NS" "$ST_BIN" watch --iface "$ST_SRV_IF" --port 80 "${ST_RING[@]}" \
	--metrics-listen "$M" --head-bytes 16384 >"$D/watch.out" 2>"$D/watch.err" </dev/null &
WATCH_PID=$!
ST_PIDS+=("$WATCH_PID")
st_wait_port "$ST_SRV_NS" "${M##*:}" 10 "pid=$WATCH_PID,"
for _ in $(seq 1 100); do st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "$WATCH_PID" && break; sleep 0.1; done

# paths N SEED: N requests for distinct random paths, 4 connections pipelining 40 at a time
paths() {
	st_in "$ST_CLI_NS" timeout 120 python3 - "$ST_SRV4" "$1" "$2" <<'PY'
import random, socket, string, sys, threading
host, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def conn(k, count):
    rnd = random.Random(seed * 100 + k)
    s = socket.create_connection((host, 80), timeout=30)
    buf, done = b"", 0
    while done < count:
        batch = min(40, count - done)
        s.sendall(b"".join(b"GET /r/%s HTTP/1.1\r\nHost: s\r\n\r\n" %
                           "".join(rnd.choice(string.ascii_lowercase) for _ in range(12)).encode()
                           for _ in range(batch)))
        for _ in range(batch):
            while b"\r\n\r\n" not in buf:
                buf += s.recv(1 << 16)
            head, buf = buf.split(b"\r\n\r\n", 1)
            cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
            while len(buf) < cl:
                buf += s.recv(1 << 16)
            buf = buf[cl:]
        done += batch
    s.close()
ts = [threading.Thread(target=conn, args=(k, n // 4)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
PY
}
scrape() { st_in "$ST_SRV_NS" curl -s -S --max-time 10 "http://$M/metrics" >"$1" || st_fail "no /metrics"; }
metric() { awk -v m="$2" '$1 ~ "^"m"({|$)" { print $2 }' "$1" | head -n1; }
# wait_exchanges N: until the agent has counted N exchanges (it reads the ring on its tick)
wait_exchanges() {
	local i n=0
	for i in $(seq 1 300); do
		scrape "$D/m.prom"
		n=$(metric "$D/m.prom" shadowtap_exchanges_total)
		[ "${n:-0}" -ge "$1" ] && return 0
		sleep 0.2
	done
	st_fail "the agent counted ${n:-0} exchanges of $1"
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$WATCH_PID/status"; }

st_log "20000 random paths"
paths 20000 1 || st_fail "the client failed"
wait_exchanges 20000
rss1=$(rss)
st_log "  agent RSS ${rss1} KiB; 80000 more"
paths 80000 2 || st_fail "the client failed"
wait_exchanges 100000
rss2=$(rss)
scrape "$D/m.prom"
series=$(grep -c '^shadowtap_http_requests_total{' "$D/m.prom")
eps=$(metric "$D/m.prom" shadowtap_endpoints)
other=$(awk '/^shadowtap_http_requests_total\{.*endpoint="other"/ { n += $NF } END { print n + 0 }' "$D/m.prom")
total=$(awk '/^shadowtap_http_requests_total\{/ { n += $NF } END { print n + 0 }' "$D/m.prom")
st_log "  RSS ${rss2} KiB; $series series, $eps endpoints, $total requests ($other under other)"
[ "$series" -le 1000 ] || st_fail "$series series: more than --max-series"
[ "$eps" -eq 200 ] || st_fail "$eps endpoints named, not 200"
[ "$total" -eq 100000 ] || st_fail "$total requests counted of 100000"
[ "$other" -ge 99000 ] || st_fail "only $other requests under endpoint other"
grep -q '^shadowtap_http_requests_total{job="watch",command="watch",endpoint="other",method="GET",code="404"} ' \
	"$D/m.prom" || st_fail "no other/GET/404 series"
# the tables were full after the first 20k: what grows after is noise (allocator, stack)
[ $((rss2 - rss1)) -lt 8192 ] || st_fail "the agent's RSS grew by $((rss2 - rss1)) KiB in the last 80k requests"
st_stop "$WATCH_PID" INT || { cat "$D/watch.err"; st_fail "watch exited with an error"; }
st_log "PASS"
