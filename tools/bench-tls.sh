#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What --tls costs production, per mode: nginx terminating TLS 1.3 (1 worker, its own cgroup, a
# server namespace), wrk over HTTPS from a client namespace through a veth pair, alternated
# rounds of no agent and `shadowtap capture --tls --tls-mode MODE --cgroup CG --port 443 -w
# /dev/shm/...`. As root:
#
#   ST_BUILD=build tools/bench-tls.sh        (ST_BENCH_QUICK=1: 3 rounds of 3 s)
#   ST_BUILD=build ST_BENCH_BASE_BIN=/path/to/old/shadowtap tools/bench-tls.sh   (before/after)
#
# First build/tools/uprobecost: what one uprobe hit costs on this host, before any program
# work. Then, per workload (ST_BENCH_LOADS, default "ka short": keep-alive `wrk -t1 -c32`, and
# one request per connection, `wrk -H 'Connection: close'`) and URL (ST_BENCH_URLS, default
# "/api.json /f16384": a ~110-byte JSON answer, a 16 KiB file), each round runs none, then
# each configuration (ST_BENCH_CONFIGS, default "base calls keys auto"; base only with
# ST_BENCH_BASE_BIN: that binary's plain --tls, the code before keys mode) followed by none;
# a run's ratio is its req/s over the mean of the two no-agent runs around it; reported: the
# median over the rounds (ST_BENCH_ROUNDS, 5), the uprobe traps per request (the summary's
# tls_traps; base does not count them: its probes are calls mode's), the agent's CPU
# (utime + stime) per request and per MB of plaintext (keys: decrypted; the pcap's bytes), and
# the loss.
# wrk maps a private copy of libssl (LD_LIBRARY_PATH): base's probes sit in the file, so wrk's
# own calls would trap too; the new modes attach per process and never trap in wrk anyway.
# Then one run per configuration with kernel.bpf_stats_enabled=1 (restored after): run_time_ns
# / run_cnt of each TLS program (ids from the agent's fds), per request.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tools/bench-lib.sh"

if [ "${ST_BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=${ST_BENCH_ROUNDS:-3} SECS=${ST_BENCH_SECS:-3}
else
	ROUNDS=${ST_BENCH_ROUNDS:-5} SECS=${ST_BENCH_SECS:-4}
fi
CONNS=${ST_BENCH_CONNS:-32}
URLS=${ST_BENCH_URLS:-/api.json /f16384}
LOADS=${ST_BENCH_LOADS:-ka short}
BASE=${ST_BENCH_BASE_BIN:-}
CONFIGS=${ST_BENCH_CONFIGS:-${BASE:+base }calls keys auto}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
OUT=${ST_BENCH_OUT:-$ST_BUILD/bench-tls.md}

bench_require bench-tls ip nginx wrk bpftool python3 sysctl openssl

st_init
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
report() { printf '%s\n' "$*" | tee -a "$OUT"; }
SHM=$(mktemp -d /dev/shm/st-bench-tls.XXXXXX)
st_on_cleanup "rm -rf '$SHM'"
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
st_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$OLD_STATS"
sysctl -qw kernel.bpf_stats_enabled=0

export ST_NGINX_ACCESS_LOG=off
st_netns_pair
st_cgroup_create bench
CG=$ST_LAST_CGROUP
ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"
printf '%s' '{"id":4711,"name":"shadowtap","status":"ok","items":[1,2,3,5,8,13],"ts":"2026-11-26T10:00:00Z"}' \
	>"$ST_TMP/prod/www/api.json"

AGENT=
# agent_start CONFIG: the agent of that configuration, probing
agent_start() {
	local bin=$ST_BIN args=(--tls --tls-mode "$1")
	[ "$1" = base ] && { bin=$BASE; args=(--tls); }
	st_in_bg "" "$bin" capture "${args[@]}" --cgroup "$CG" --port 443 -v -w "$SHM/tls.pcap" \
		>"$ST_TMP/agent.out" 2>"$ST_TMP/agent.err" </dev/null &
	AGENT=$!
	ST_PIDS+=("$AGENT")
	st_wait_log "$ST_TMP/agent.err" 'tls: .* probing ' 10
	sleep 0.3
	CPU0=$(agent_cpu)
}
# the agent's utime + stime, in clock ticks
agent_cpu() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
agent_stop() {
	CPU=$(( $(agent_cpu) - CPU0 ))
	st_stop "$AGENT" INT || { cat "$ST_TMP/agent.err"; st_fail "the agent failed"; }
	SUMMARY=$(st_summary "$ST_TMP/agent.err")
	rm -f "$SHM/tls.pcap"
}
field() { local v; v=$(st_summary_field "$SUMMARY" "$1"); echo "${v:-0}"; }
# A private copy of the libssl wrk loads (another inode: base's probes are not in it).
WRKLIB=$ST_TMP/wrklib
mkdir -p "$WRKLIB"
cp "$(ldd "$(command -v wrk)" | awk '/libssl\.so/ { print $3 }')" "$WRKLIB/"
# wrk_run LOAD URL: "req/s requests" of one wrk run
wrk_run() {
	local hdr=()
	[ "$1" = short ] && hdr=(-H 'Connection: close')
	st_in "$ST_CLI_NS" env LD_LIBRARY_PATH="$WRKLIB" wrk -t1 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" \
		"https://$ST_SRV4$2" 2>&1 |
		awk '/requests in/ { n = $1 } /^Requests\/sec:/ { r = $2 } END { printf "%d %d\n", r, n }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
TICK=$(getconf CLK_TCK)

report "## --tls: what a uprobe hit costs here (build/tools/uprobecost)"
report ""
"$ST_BUILD/tools/uprobecost" | tee -a "$OUT"
report ""
report "## --tls: nginx HTTPS throughput with and without the agent, per mode"
report ""
report "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds; TLS 1.3 (TLS_AES_256_GCM_SHA384)"
report ""
report "| load | URL | config | none req/s (median) | req/s (median) | ratio (median; per round) | traps per request | agent CPU us per request | agent CPU ms per MB of plaintext | lost |"
report "|---|---|---|---:|---:|---|---:|---:|---:|---:|"
for load in $LOADS; do
	for url in $URLS; do
		wrk_run "$load" "$url" >/dev/null # warm-up: sessions, page cache
		declare -A ratios=() rps=() traps=() cpureq=() cpumb=() lostc=()
		nones=()
		for r in $(seq 1 "$ROUNDS"); do
			read -r a _ < <(wrk_run "$load" "$url")
			nones+=("$a")
			line="  $load $url round $r: none $a"
			for cfg in $CONFIGS; do
				agent_start "$cfg"
				read -r t n < <(wrk_run "$load" "$url")
				agent_stop
				read -r b _ < <(wrk_run "$load" "$url")
				nones+=("$b")
				ratio=$(python3 -c "print('%.3f' % ($t / max(1, ($a + $b) / 2)))")
				tr=$(field tls_traps) # base has no such count: its probes are calls mode's
				plain=$(field bytes) # the plaintext the pcap got, decrypted or copied
				ratios[$cfg]+="$ratio "
				rps[$cfg]+="$t "
				if [ "$cfg" = base ]; then traps[$cfg]+="- "; else
					traps[$cfg]+="$(python3 -c "print('%.1f' % ($tr / max(1, $n)))") "; fi
				cpureq[$cfg]+="$(python3 -c "print('%.1f' % ($CPU * 1e6 / $TICK / max(1, $n)))") "
				cpumb[$cfg]+="$(python3 -c "print('%.1f' % ($CPU * 1e3 / $TICK / max(1e-9, $plain / 1048576)))") "
				lostc[$cfg]=$(( ${lostc[$cfg]:-0} + $(field lost) ))
				line+=", $cfg $t ($ratio; $(echo "${traps[$cfg]}" | awk '{ print $NF }') traps/req), none $b"
				a=$b
			done
			echo "$line" >&2
		done
		none_med=$(printf '%s\n' "${nones[@]}" | median)
		for cfg in $CONFIGS; do
			# shellcheck disable=SC2086
			report "| $load | $url | $cfg | $none_med | $(printf '%s\n' ${rps[$cfg]} | median) | **$(printf '%s\n' ${ratios[$cfg]} | median)** (${ratios[$cfg]% }) | $([ "$cfg" = base ] && echo - || printf '%s\n' ${traps[$cfg]} | median) | $(printf '%s\n' ${cpureq[$cfg]} | median) | $(printf '%s\n' ${cpumb[$cfg]} | median) | ${lostc[$cfg]} |"
		done
		unset ratios rps traps cpureq cpumb lostc
	done
done

report ""
report "### The probes' cost (kernel.bpf_stats_enabled=1, one keep-alive run per configuration, ${URLS%% *})"
report ""
report "| config | requests | program | runs | ns per run | runs per request | ns per request |"
report "|---|---:|---|---:|---:|---:|---:|"
url=${URLS%% *}
for cfg in $CONFIGS; do
	agent_start "$cfg"
	sysctl -qw kernel.bpf_stats_enabled=1
	read -r _ reqs < <(wrk_run ka "$url")
	ids=$(for f in /proc/"$AGENT"/fdinfo/*; do awk '/^prog_id:/ { print $2 }' "$f" 2>/dev/null; done | sort -un)
	stats=$(for id in $ids; do bpftool -j prog show id "$id" 2>/dev/null; echo; done)
	sysctl -qw kernel.bpf_stats_enabled=0
	agent_stop
	python3 - "$cfg" "$reqs" <<PY | tee -a "$OUT"
import json, sys
cfg, reqs = sys.argv[1], int(sys.argv[2])
progs, total = {}, 0
for chunk in """$stats""".split("\n"):
    chunk = chunk.strip()
    if not chunk:
        continue
    p = json.loads(chunk)
    n, ns = p.get("run_cnt", 0), p.get("run_time_ns", 0)
    a = progs.setdefault(p.get("name", "?"), [0, 0])
    a[0] += n
    a[1] += ns
for name, (n, ns) in sorted(progs.items()):
    if not n:
        continue
    total += ns
    print("| %s | %d | %s | %d | %.0f | %.2f | %.0f |" % (cfg, reqs, name, n, ns / n, n / max(reqs, 1), ns / max(reqs, 1)))
print("| %s | %d | **all** | | | | **%.0f** |" % (cfg, reqs, total / max(reqs, 1)))
PY
done
report ""
report "Agent summary of the last run: $SUMMARY"
