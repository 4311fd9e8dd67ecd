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
