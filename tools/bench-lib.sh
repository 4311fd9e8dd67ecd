#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What the benchmark scripts share, sourced after tests/integration/lib.sh: checks, no-op
# shadows, CPU times, medians, and the alternated rounds of bench-prod.sh and bench-h2.sh.

# bench_require NAME CMD...: root, the commands (tools/install-deps.sh installs them) and the
# agent binary, or one line naming what is missing and exit 1.
bench_require() {
	local name=$1 c
	shift
	[ "$(id -u)" -eq 0 ] || { echo "shadowtap $name: run as root" >&2; exit 1; }
	for c in "$@"; do
		command -v "$c" >/dev/null ||
			{ echo "shadowtap $name: missing $c (tools/install-deps.sh)" >&2; exit 1; }
	done
	[ -x "$ST_BIN" ] || { echo "shadowtap $name: $ST_BIN not found (make)" >&2; exit 1; }
}

# noop_shadow NAME NS [LISTEN...]: nginx (1 worker) answering 204 to everything, listening on
# each LISTEN (nginx syntax, "127.0.0.1:8080 http2" for h2c; default 127.0.0.1:8080); waits
# until the first listens.
noop_shadow() {
	local name=$1 d=$ST_TMP/$1 ns=$2 l servers="" first
	shift 2
	[ $# -gt 0 ] || set -- 127.0.0.1:8080
	first=${1%% *}
	for l in "$@"; do servers+="	server { listen $l; location / { return 204; } }"$'\n'; done
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EON
daemon off;
worker_processes 1;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	keepalive_requests 1000000;
$servers}
EON
	st_bg "$name" st_in_bg "$ns" nginx -c "$d/nginx.conf" -p "$d"
	st_wait_port "$ns" "${first##*:}" 10
}

# cpu_s PID: the process's utime + stime so far, in seconds.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# median: the median of the numbers on stdin, one a line (0 without any).
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# bench_json_api NS: nginx in NS on 127.0.0.1:80 as a JSON API: GET /api answers a 1.3 KB
# document (14 items of ids, names, prices, tags), POST /order takes the 0.5 KB JSON body of
# $ST_TMP/post.lua (a wrk script) and answers {"ok":true}. Prints both sizes.
bench_json_api() {
	local ns=$1
	mkdir -p "$ST_TMP/web/www"
	python3 - "$ST_TMP/web/www/api.json" "$ST_TMP/post.lua" <<'PY'
import json, random, sys
random.seed(7)
items = [{"id": 100000 + i, "name": "item-%d" % i, "price": round(random.uniform(1, 500), 2),
          "tags": random.sample(["red", "blue", "sale", "new", "eu", "us"], 2),
          "stock": random.randint(0, 90), "active": i % 3 != 0} for i in range(14)]
doc = json.dumps({"page": 1, "per_page": 14, "total": 1234, "items": items}, separators=(",", ":"))
open(sys.argv[1], "w").write(doc)
body = json.dumps({"user": "u-%d" % 42, "cart": items[:5], "coupon": None}, separators=(",", ":"))
open(sys.argv[2], "w").write('wrk.method = "POST"\nwrk.body = %r\nwrk.headers["Content-Type"] = "application/json"\n' % body)
PY
	ST_NGINX_LOCATIONS='location = /api { default_type application/json; alias '"$ST_TMP"'/web/www/api.json; } location = /order { client_body_buffer_size 64k; return 200 "{\"ok\":true}\n"; }' \
		ST_NGINX_ACCESS_LOG=off st_nginx_start web "$ns" 127.0.0.1:80
	echo "JSON document: $(stat -c %s "$ST_TMP/web/www/api.json") bytes; POST body: $(sed -n 's/^wrk.body = .\(.*\).$/\1/p' "$ST_TMP/post.lua" | wc -c) bytes"
}

# ---- the alternated rounds (bench-prod.sh, bench-h2.sh) ---------------------------------------
# Every configuration against no agent in the same run: each round runs no agent, then every
# configuration with a no-agent run after it (A none B none ...), the order of the
# configurations rotating from round to round; a configuration's ratio in a round is its
# req/s over the mean of the two no-agent runs around it (the host's other load drifts
# within a round). The script defines, before bench_rounds:
#   CONFIGS               the configurations, by name ("capture shadow10 ...")
#   cfg_none, cfg_NAME    start one (set CFG_PID, empty for none, and CFG_ERR, its stderr)
#   cfg_stop              stop what the last cfg_* started
#   bench_load URL        one load run: prints "requests requests/s"
#   bench_note CFG FILE   (optional) a few words from a run's stderr FILE: its losses, what
#                         it did
# and ROUNDS (bench_knobs), report (bench_report_open).

# bench_knobs: ROUNDS and SECS from ST_BENCH_ROUNDS and ST_BENCH_SECS; their defaults 5 rounds
# of 4 s, or with ST_BENCH_QUICK=1 3 of 3 s.
bench_knobs() {
	# shellcheck disable=SC2034 # the caller's
	if [ "${ST_BENCH_QUICK:-0}" = 1 ]; then
		ROUNDS=${ST_BENCH_ROUNDS:-3} SECS=${ST_BENCH_SECS:-3}
	else
		ROUNDS=${ST_BENCH_ROUNDS:-5} SECS=${ST_BENCH_SECS:-4}
	fi
}

# bench_report_open NAME: ST_BUILD made absolute, OUT (ST_BENCH_OUT, default
# $ST_BUILD/NAME.md) created empty; report TEXT... then prints a line and appends it to OUT.
bench_report_open() {
	case $ST_BUILD in /*) ;; *) ST_BUILD=$ROOT/$ST_BUILD ;; esac
	OUT=${ST_BENCH_OUT:-$ST_BUILD/$1.md}
	mkdir -p "$(dirname "$OUT")"
	: >"$OUT"
}
report() { printf '%s\n' "$*" | tee -a "$OUT"; }

# bench_report_head NAME TOOLS EXTRA LOAD: the report's head: its title, the host (and TOOLS,
# the versions of the tools it runs besides nginx), the binary (EXTRA after it), and LOAD (the
# load generator's command line) with the rounds and the load average.
bench_report_head() {
	report "# shadowtap $1, $(date -u '+%Y-%m-%d %H:%M UTC')"
	report ""
	report "Host: $(uname -r), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), nginx $(nginx -v 2>&1 | sed 's|.*/||'), $2"
	report "shadowtap: $ST_BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))$3"
	report "$4, $ROUNDS rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_link LINK: the link's stage (the script's L_SRV, L_CLI, L_IF, L_HOST by link) as
# SRV_NS, CLI_NS, IFACE and URL (production's GET /api.json), and D, its results' folder.
bench_link() {
	SRV_NS=${L_SRV[$1]} CLI_NS=${L_CLI[$1]} IFACE=${L_IF[$1]}
	URL=http://${L_HOST[$1]}/api.json
	D=$ST_TMP/res-$1
	mkdir -p "$D"
}

# bench_run CFG: one run of none or of a configuration on $URL. Its req/s goes to $D/last and
# is appended to $D/rps-CFG, the process's CPU per request (µs) to $D/cpu-CFG; its cell of the
# rounds' table ("req/s (note)") to $D/cell-CFG.
bench_run() {
	local cfg=$1 c0=0 reqs rps cpu= note=
	"cfg_$cfg"
	[ -z "$CFG_PID" ] || c0=$(cpu_s "$CFG_PID")
	read -r reqs rps <<<"$(bench_load "$URL")"
	[ -z "$CFG_PID" ] || cpu=$(awk -v a="$(cpu_s "$CFG_PID")" -v b="$c0" 'BEGIN { printf "%.3f", a - b }')
	cfg_stop
	echo "$rps" >>"$D/rps-$cfg"
	echo "$rps" >"$D/last"
	if [ -n "$CFG_ERR" ] && declare -F bench_note >/dev/null; then
		note=$(bench_note "$cfg" "$CFG_ERR")
	fi
	if [ -n "$cpu" ] && [ "${reqs:-0}" -gt 0 ]; then
		awk -v c="$cpu" -v n="$reqs" 'BEGIN { printf "%.3f\n", c * 1e6 / n }' >>"$D/cpu-$cfg"
	fi
	echo "$rps${note:+ ($note)}" >"$D/cell-$cfg"
	st_log "$link round $r $cfg: $rps req/s${cpu:+, process CPU $cpu s}${note:+, $note}" >&2
}

# bench_rounds LINK: ROUNDS rounds of CONFIGS on $URL, the results in $D (as bench_run says,
# and each round's ratio appended to $D/ratios-CFG), the rounds' table reported: a row per
# round, every no-agent run's req/s and each configuration's cell.
bench_rounds() {
	local link=$1 r k n cfg cfgs got before after nones row
	report "| round | none (each run) | $(echo "$CONFIGS" | sed 's/ / | /g') |"
	report "|---|---$(for _ in $CONFIGS; do printf '|---'; done)|"
	read -r -a cfgs <<<"$CONFIGS"
	n=${#cfgs[@]}
	for r in $(seq 1 "$ROUNDS"); do
		bench_run none
		before=$(cat "$D/last") nones="$before"
		for k in $(seq 0 $((n - 1))); do
			cfg=${cfgs[$(((k + r - 1) % n))]}
			bench_run "$cfg"
			got=$(cat "$D/last")
			bench_run none
			after=$(cat "$D/last") nones="$nones $after"
			awk -v g="$got" -v a="$before" -v b="$after" \
				'BEGIN { if (a + b > 0) printf "%.4f\n", 2 * g / (a + b) }' >>"$D/ratios-$cfg"
			before=$after
		done
		row="| $r | $nones |"
		for cfg in $CONFIGS; do row+=" $(cat "$D/cell-$cfg") |"; done
		report "$row"
	done
}

# bench_agent_start BIN COMMAND ARGS...: `BIN COMMAND --iface $IFACE ARGS...` in $SRV_NS, its
# stderr in CFG_ERR, CFG_PID once its programs are attached (or the run fails, its stderr
# shown).
bench_agent_start() {
	local bin=$1 cmd=$2 name=agent-$RANDOM
	shift 2
	st_in_bg "$SRV_NS" "$bin" "$cmd" --iface "$IFACE" "$@" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	CFG_PID=$!
	ST_PIDS+=("$CFG_PID")
	CFG_ERR=$ST_TMP/$name.err
	for _ in $(seq 1 100); do
		st_alive "$CFG_PID" || { cat "$CFG_ERR" >&2; st_fail "$cmd exited during start-up"; }
		st_agent_attached "$SRV_NS" "$IFACE" "$CFG_PID" && { sleep 0.3; return 0; }
		sleep 0.1
	done
	cat "$CFG_ERR" >&2
	st_fail "$cmd did not attach to $IFACE"
}
