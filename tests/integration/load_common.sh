# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Helpers for the load test's integration tests (sourced after lib.sh).

LD_TARGET=$ST_ROOT/tests/integration/load_target.py

# ld_init NAME CMD...: what every load test needs (root, CMD..., an agent with load tests:
# skipped, not failed, on a build before them), then st_init; LOGS=test-logs/NAME, emptied
# (the reports and logs a failure leaves to read).
ld_init() {
	local name=$1
	shift
	st_require_root
	st_require_cmds ip nginx tcpdump python3 "$@"
	st_require_agent
	"$ST_BIN" replay --help 2>/dev/null | grep -q -- '--steps' || st_skip "$ST_BIN has no load test"
	st_init
	LOGS=$ST_BUILD/test-logs/$name
	mkdir -p "$LOGS"
	rm -f "$LOGS"/*
}

# ld_record PCAP CONNS PER_CONN GAP_MS: a recording of production's own traffic: nginx in
# $ST_SRV_NS answering every path, CONNS keep-alive clients in $ST_CLI_NS taking turns, one
# request each at a time (not pipelined), GAP_MS between requests, PER_CONN each; paths
# /f1, /f100, /users/N, /api/items?page=N (two endpoints with ids). tcpdump on the veth;
# with LD_TEE=FILE a tee stream of the same traffic too. LD_SHORT=1: each request on a
# connection of its own (Connection: close), CONNS x PER_CONN of them.
ld_record() {
	local pcap=$1 conns=$2 per=$3 gap=$4
	st_netns_pair
	ST_NGINX_EVERYTHING_OK=1 ST_NGINX_ACCESS_LOG=off st_nginx_start rec "$ST_SRV_NS" 80
	st_tcpdump_start rec "$ST_SRV_NS" "$ST_SRV_IF" "$pcap" 'tcp port 80'
	[ -z "${LD_TEE:-}" ] || st_tee_start rec-tee --duration 0 --max-rate 0 -o "$LD_TEE"
	st_in "$ST_CLI_NS" timeout 120 python3 - "$ST_SRV4" "$conns" "$per" "$gap" "${LD_SHORT:-0}" <<'PY' ||
import socket, sys, time
host, conns, per, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) / 1e3
paths = ["/f1", "/f100", "/users/%d", "/api/items?page=%d"]
if sys.argv[5] == "1":
    for k in range(conns * per):
        s = socket.create_connection((host, 80), timeout=10)
        s.sendall(b"GET /items/%d HTTP/1.1\r\nHost: production\r\nConnection: close\r\n\r\n" % k)
        while s.recv(65536):
            pass
        s.close()
        if gap:
            time.sleep(gap)
    sys.exit(0)
socks = [socket.create_connection((host, 80), timeout=10) for _ in range(conns)]


def get(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: production\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    while len(body) < n[0]:
        body += s.recv(65536)


k = 0
for r in range(per):
    for s in socks:
        p = paths[k % len(paths)]
        get(s, p % k if "%d" in p else p)
        k += 1
        if gap:
            time.sleep(gap)
for s in socks:
    s.close()
PY
		st_fail "the recording's client failed"
	st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
	st_tcpdump_stop "$ST_TCPDUMP_PID" rec
	[ -z "${LD_TEE:-}" ] || st_stop "$TEE_PID" INT ||
		{ cat "$ST_TMP/rec-tee.err"; st_fail "tee exited with an error"; }
}

# The host is shared: the generator and the target run at a higher priority, so that other
# work's noise stays out of what is measured; what remains, both say (the generator's lag,
# the target's oversleep) and the tests' bands take it into account.
LD_NICE=(nice -n -10)

# ld_target_start NAME NS PORT ARGS...: load_target.py on 127.0.0.1:PORT in NS; its log is
# $ST_TMP/NAME.log, its pid LD_TARGET_PID.
ld_target_start() {
	local name=$1 ns=$2 port=$3
	shift 3
	st_in_bg "$ns" "${LD_NICE[@]}" python3 "$LD_TARGET" "$port" "$@" >"$ST_TMP/$name.log" 2>&1 </dev/null &
	LD_TARGET_PID=$!
	ST_PIDS+=("$LD_TARGET_PID")
	st_wait_port "$ns" "$port" 10 "pid=$LD_TARGET_PID,"
}

# ld_json FILE EXPR: a value of the JSON report FILE (a Python expression over `r`).
ld_json() {
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
