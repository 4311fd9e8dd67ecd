#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What --tls costs production: nginx terminating TLS (1 worker, its own cgroup, a server
# namespace), wrk over HTTPS from a client namespace through a veth pair, alternated rounds
# of no agent and `shadowtap capture --tls --cgroup CG --port 443 -w /dev/shm/...`. As root:
#
#   ST_BUILD=build tools/bench-tls.sh        (ST_BENCH_QUICK=1: 3 rounds of 3 s)
#
# First build/tools/uprobecost: what one uprobe hit costs on this host, before any program
# work. Then, per URL (ST_BENCH_URLS, default "/api.json /f16384": a ~110-byte JSON answer, a
# 16 KiB file), each round runs none, tls, none, tls_shared, none (`wrk -t1 -c$CONNS
# -d${SECS}s` each, keep-alive); a run's ratio is its req/s over the mean of the two no-agent
# runs around it; reported: the median over the rounds (ST_BENCH_ROUNDS, 5).
#   tls:        wrk runs on a private copy of libssl (LD_LIBRARY_PATH): only nginx's SSL calls
#               hit the probes; the cost production pays.
#   tls_shared: wrk maps the same libssl as nginx: its calls hit the probes too (filtered at
#               once, tls_filtered), as any other process on the host that maps that file.
# Then one run per URL with kernel.bpf_stats_enabled=1 (restored after): run_time_ns /
# run_cnt of each TLS program (ids from the agent's fds), their total per SSL call
# (tls_calls from the agent's summary) and per request.
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
agent_start() {
	st_in_bg "" "$ST_BIN" capture --tls --cgroup "$CG" --port 443 -v -w "$SHM/tls.pcap" \
		>"$ST_TMP/agent.out" 2>"$ST_TMP/agent.err" </dev/null &
	AGENT=$!
	ST_PIDS+=("$AGENT")
	st_wait_log "$ST_TMP/agent.err" 'tls: .* probing ' 10
	sleep 0.3
}
agent_stop() {
	st_stop "$AGENT" INT || { cat "$ST_TMP/agent.err"; st_fail "the agent failed"; }
	SUMMARY=$(st_summary "$ST_TMP/agent.err")
	rm -f "$SHM/tls.pcap"
}
# A private copy of the libssl wrk loads (another inode: no probe in it).
WRKLIB=$ST_TMP/wrklib
mkdir -p "$WRKLIB"
cp "$(ldd "$(command -v wrk)" | awk '/libssl\.so/ { print $3 }')" "$WRKLIB/"
# wrk_rps URL [shared]: requests/s of one wrk run (on the private libssl unless "shared")
wrk_rps() {
	local env=(env LD_LIBRARY_PATH="$WRKLIB")
	[ "${2:-}" = shared ] && env=(env)
	st_in "$ST_CLI_NS" "${env[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "https://$ST_SRV4$1" 2>&1 |
		awk '/^Requests\/sec:/ { printf "%d\n", $2 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

report "## --tls: what a uprobe hit costs here (build/tools/uprobecost)"
report ""
"$ST_BUILD/tools/uprobecost" | tee -a "$OUT"
report ""
report "## --tls: nginx HTTPS throughput with and without the agent"
report ""
report "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS -d${SECS}s, $ROUNDS rounds"
report ""
report "| URL | none req/s (median) | tls req/s (median) | tls ratio (median; per round) | tls_shared req/s (median) | tls_shared ratio (median; per round) | lost |"
report "|---|---:|---:|---|---:|---|---:|"
ratio() { python3 -c "print('%.3f' % ($1 / (($2 + $3) / 2)))"; }
for url in $URLS; do
	wrk_rps "$url" >/dev/null # warm-up: sessions, page cache
	r1=() r2=() nones=() t1s=() t2s=() lost=0
	for r in $(seq 1 "$ROUNDS"); do
		a=$(wrk_rps "$url")
		agent_start
		t1=$(wrk_rps "$url")
		agent_stop
		lost=$((lost + $(st_summary_field "$SUMMARY" lost)))
		b=$(wrk_rps "$url")
		agent_start
		t2=$(wrk_rps "$url" shared)
		agent_stop
		lost=$((lost + $(st_summary_field "$SUMMARY" lost)))
		c=$(wrk_rps "$url")
		nones+=("$a" "$b" "$c")
		t1s+=("$t1")
		t2s+=("$t2")
		r1+=("$(ratio "$t1" "$a" "$b")")
		r2+=("$(ratio "$t2" "$b" "$c")")
		echo "  $url round $r: none $a, tls $t1, none $b, tls_shared $t2, none $c -> ${r1[-1]} ${r2[-1]}" >&2
	done
	report "| $url | $(printf '%s\n' "${nones[@]}" | median) | $(printf '%s\n' "${t1s[@]}" | median) | $(printf '%s\n' "${r1[@]}" | median) (${r1[*]}) | $(printf '%s\n' "${t2s[@]}" | median) | $(printf '%s\n' "${r2[@]}" | median) (${r2[*]}) | $lost |"
done

report ""
report "### The probes' cost (kernel.bpf_stats_enabled=1, one run per URL)"
report ""
report "| URL | requests | SSL calls (tls_calls) | program | runs | ns per run | ns per SSL call | ns per request |"
report "|---|---:|---:|---|---:|---:|---:|---:|"
for url in $URLS; do
	agent_start
	sysctl -qw kernel.bpf_stats_enabled=1
	reqs=$(st_in "$ST_CLI_NS" env LD_LIBRARY_PATH="$WRKLIB" wrk -t1 -c"$CONNS" -d"${SECS}s" "https://$ST_SRV4$url" 2>&1 |
		awk '/requests in/ { print $1 }')
	ids=$(for f in /proc/"$AGENT"/fdinfo/*; do awk '/^prog_id:/ { print $2 }' "$f" 2>/dev/null; done | sort -un)
	stats=$(for id in $ids; do bpftool -j prog show id "$id" 2>/dev/null; echo; done)
	sysctl -qw kernel.bpf_stats_enabled=0
	agent_stop
	calls=$(st_summary_field "$SUMMARY" tls_calls)
	python3 - "$url" "$reqs" "$calls" <<PY | tee -a "$OUT"
import json, sys
url, reqs, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3] or 0)
progs, total = {}, 0
for chunk in """$stats""".split("\n"):
    chunk = chunk.strip()
    if not chunk:
        continue
    p = json.loads(chunk)
    n, ns = p.get("run_cnt", 0), p.get("run_time_ns", 0)
    name = p.get("name", "?")
    a = progs.setdefault(name, [0, 0])
    a[0] += n
    a[1] += ns
for name, (n, ns) in sorted(progs.items()):
    if not n:
        continue
    total += ns
    print("| %s | %d | %d | %s | %d | %.0f | %.0f | %.0f |" % (url, reqs, calls, name, n, ns / n,
          ns / max(calls, 1), ns / max(reqs, 1)))
print("| %s | %d | %d | **all** | | | **%.0f** | **%.0f** |" % (url, reqs, calls, total / max(calls, 1), total / max(reqs, 1)))
PY
done
report ""
report "Agent summary of the last run: $SUMMARY"
