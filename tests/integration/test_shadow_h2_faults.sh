#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# HTTP/2 shadows that fail, with production (nginx h2c) under h2load: one that accepts and
# never reads, one that answers garbage (not HTTP/2), one that refuses connections. As for
# HTTP/1 (test_shadow_faults.sh): production answers every request (h2load: 0 failed), none
# waits for the shadow (h2load's slowest request under 8 s: a stuck shadow is given 10 s
# before it is closed, so a production tied to it would show), its throughput is logged
# beside its baseline (a loose bound only: this VM is shared, and performance is measured
# by tools/bench-h2.sh), the agent's queues stay under their caps, drops and bad answers are
# counted, every run ends cleanly and fast.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx h2load bpftool bc
st_require_py socket
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init

export ST_NGINX_LISTEN_OPTS=http2
st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4

# load SECONDS: h2load's requests/s against production; fails unless every request succeeded
# and the slowest took under 8 s (a stuck shadow is closed after 10 s).
load() {
	local out max
	out=$(st_in "$ST_CLI_NS" timeout $(($1 + 20)) h2load -D "$1" -c 4 -m 10 "$base/f4096")
	if ! grep -qE '^requests: .* 0 failed, 0 errored, 0 timeout' <<<"$out"; then
		echo "$out" >&2
		st_fail "production failed requests while the shadow was failing"
	fi
	# "time for request:  min  max  mean ...", each with its unit
	max=$(awk '/^time for request:/ { v = $5; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
		print v * (u == "us" ? 1e-6 : u == "ms" ? 1e-3 : 1) }' <<<"$out")
	(( $(echo "${max:-99} < 8" | bc) )) || { echo "$out" >&2; st_fail "a production request took ${max}s"; }
	sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p' <<<"$out"
}

check_rps() {
	st_log "  ratio to baseline: $(echo "scale=2; $1 / $base_rps" | bc)"
	(( $(echo "$1 >= $base_rps * 0.1" | bc) )) || st_fail "production throughput $1 req/s, baseline $base_rps"
}

base_rps=$(load 2)
st_log "baseline (no agent): $base_rps requests/s"

st_log "fault 1: the shadow accepts and never reads"
sh_sink_start noread "$ST_CLI_NS" "$ST_CLI4" 82 --mode noread
sh_agent_start a1 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:82" --max-queue-mb 2 --conn-queue-mb 1
rps=$(load 3)
st_log "with the shadow not reading: $rps requests/s"
check_rps "$rps"
t0=$(date +%s)
sh_agent_stop a1
[ $(( $(date +%s) - t0 )) -le 8 ] || st_fail "the agent took more than 8 s to stop with a stuck shadow"
sh_expect h2 -ge 4
# whole streams dropped: at the caps while it ran (dropped_queue), or left when the agent
# stopped (dropped_down), as a slower host gets to the caps or not
sh_expect dropped -gt 0
# the caps, and the frames each connection's socket needs next (64 KiB each)
sh_expect queued_peak -le $(((2 << 20) + (1 << 20)))

st_log "fault 2: the shadow answers garbage"
cat >"$ST_TMP/garbage.py" <<'PY'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
def serve(c):
    try:
        while c.recv(65536):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" * 50)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
st_in_bg "$ST_CLI_NS" "$ST_PY" "$ST_TMP/garbage.py" "$ST_CLI4" 83 >"$ST_TMP/garbage.out" 2>&1 </dev/null &
ST_PIDS+=("$!")
st_wait_port "$ST_CLI_NS" 83 10 "pid=$!,"
sh_agent_start a2 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:83"
rps=$(load 3)
st_log "with the shadow answering garbage: $rps requests/s"
check_rps "$rps"
sh_agent_stop a2
sh_expect bad_responses -gt 0
sh_expect responses -eq 0

st_log "fault 3: the shadow refuses connections"
sh_agent_start a3 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:84"
rps=$(load 2)
st_log "with the shadow refusing: $rps requests/s"
check_rps "$rps"
sh_agent_stop a3
sh_expect replayed -eq 0
sh_expect dropped -gt 0
# every stream accounted for (those h2load had in flight when it stopped were never answered
# by production, or reset by it): requests = replayed + dropped + ... + h2_reset
sum=0
for f in replayed dropped filtered gaps_skipped prod_rejected prod_unanswered h2_reset; do
	sum=$((sum + $(sh_field $f)))
done
[ "$sum" -eq "$(sh_field requests)" ] || st_fail "refused: requests=$(sh_field requests), accounted $sum"
st_log "PASS"
