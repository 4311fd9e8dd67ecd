#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# What the benchmark scripts share, sourced after tests/integration/lib.sh.

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
