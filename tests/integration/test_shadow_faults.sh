#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Faults of the shadow, with production under load: a shadow that refuses connections, one
# that accepts and never reads, one that answers slowly, one that dies mid-run. Production
# must answer everything (curl and wrk without errors, throughput near its baseline, latency
# not tied to the shadow's), the agent's memory must stay bounded, drops must be counted,
# and every run must end cleanly (SIGINT, exit 0, summary line).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl wrk bpftool python3 bc
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4

# wrk_run SECONDS CONNS: prints requests/s; fails on socket errors or non-2xx answers.
wrk_run() {
	local out
	out=$(st_in "$ST_CLI_NS" wrk -t1 -c"$2" -d"$1"s --timeout 5s "$base/f4096")
	if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
		echo "$out" >&2
		st_fail "production answered with errors while the shadow was failing"
	fi
	sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p' <<<"$out"
}

curl_batch() {
	local i args=()
	for i in $(seq 1 20); do args+=(-o /dev/null "$base/f$((i % 2 ? 100 : 16384))?n=$i"); done
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" --fail "${args[@]}" || st_fail "production failed a curl request"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" --fail -o /dev/null -T "$ST_TMP/up5m" "$base/dav/up5m" ||
		st_fail "production failed a 5 MB upload"
}
head -c 5242880 /dev/urandom >"$ST_TMP/up5m"

# baseline: production's throughput with no agent, measured right before each fault
baseline() {
	base_rps=$(wrk_run 2 8)
	st_log "baseline (no agent): $base_rps requests/s"
}

# check_rps RPS: a loose bound (a 2-core VM shared with other work: single wrk runs vary 2x);
# it catches production being held up, not a few percent (tools/bench-shadow.sh measures).
# The baseline is the lower of the one before the fault and one right after its agent
# stopped: a host that got busier meanwhile (other tests, other builds) lowers both.
check_rps() {
	local after
	after=$(wrk_run 2 8)
	st_log "  baseline after: $after requests/s"
	(( $(echo "$after < $base_rps" | bc) )) && base_rps=$after
	st_log "  ratio to baseline: $(echo "scale=2; $1 / $base_rps" | bc)"
	(( $(echo "$1 >= $base_rps * 0.25" | bc) )) || st_fail "production throughput $1 req/s, baseline $base_rps"
}

st_log "fault 1: the shadow refuses connections"
baseline
sh_agent_start a1 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:81"
curl_batch
rps=$(wrk_run 2 8)
st_log "with the shadow refusing: $rps requests/s"
sh_agent_stop a1
check_rps "$rps"
sh_expect replayed -eq 0
sh_expect dropped -gt 0
sh_expect errors -gt 0
[ "$(sh_field dropped)" -eq "$(sh_field requests)" ] || st_fail "refused: every request must be counted as dropped"
# backoff: far fewer attempts than connections
[ "$(sh_field connects)" -lt 100 ] || st_fail "refused: $(sh_field connects) connection attempts (no backoff?)"

st_log "fault 2: the shadow accepts and never reads"
sh_sink_start noread "$ST_CLI_NS" "$ST_CLI4" 82 --mode noread
baseline
sh_agent_start a2 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:82" --max-queue-mb 8 --conn-queue-mb 2
curl_batch
rps=$(wrk_run 3 8)
st_log "with the shadow not reading: $rps requests/s"
curl_batch
rss=$(sh_rss_kb "$SH_AGENT_PID")
st_log "agent peak RSS ${rss} KiB"
t0=$(date +%s)
sh_agent_stop a2
[ $(( $(date +%s) - t0 )) -le 8 ] || st_fail "the agent took more than 8 s to stop with a stuck shadow"
check_rps "$rps"
sh_expect dropped_queue -gt 0
sh_expect queued_peak -le $((8 << 20))
# 64 MiB ring buffer + 8 MiB of queues + ASan's overhead: bounded, whatever the shadow does.
[ "$rss" -lt 400000 ] || st_fail "agent peak RSS ${rss} KiB"

st_log "fault 3: the shadow answers slowly (0.3 s per request)"
sh_sink_start slow "$ST_CLI_NS" "$ST_CLI4" 83 --mode slow --delay 0.3
sh_agent_start a3 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:83" --drain 20
# production waiting for the shadow would take >= 0.3 s every time: the median of five is
# below that however busy the host is for a moment
times=()
for i in 1 2 3 4 5; do
	times+=("$(st_in "$ST_CLI_NS" "${ST_CURL[@]}" --fail -o /dev/null -w '%{time_total}' "$base/f100?slow=$i")")
done
t=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
st_log "  production's times: ${times[*]} (median $t s)"
(( $(echo "$t < 0.25" | bc) )) || st_fail "production took a median ${t}s for requests the slow shadow also got"
sh_wait_lines "$ST_TMP/slow.log" 5 10 || st_fail "the slow shadow did not get the 5 requests"
sh_agent_stop a3
sh_expect replayed -eq 5
sh_expect responses -eq 5

st_log "fault 4: the shadow dies mid-run"
sh_sink_start dies "$ST_CLI_NS" "$ST_CLI4" 84
dies_pid=$SH_SINK_PID
baseline
sh_agent_start a4 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:84"
(sleep 1; kill -KILL "$dies_pid") &
rps=$(wrk_run 3 8)
st_log "with the shadow dying after 1 s: $rps requests/s"
curl_batch
sh_agent_stop a4
check_rps "$rps"
sh_expect replayed -gt 0
sh_expect dropped -gt 0
sh_expect errors -gt 0
st_log "PASS"
