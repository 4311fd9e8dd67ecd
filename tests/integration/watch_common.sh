# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# What the watch tests share (source after lib.sh): production (nginx) with endpoints of known
# answers, its workload, and the checks of watch's figures against nginx's own access log.
#
# Production: /api (fast JSON), /flaky?n=K (500 when K matches the regex, else 200), /steady?n=K
# (500 when K ends in 0: 1 in 10, whatever the regex), /slow (~50 ms: proxied to
# watch_upstream.py), /chunked (proxied; the upstream gives no length, nginx answers chunked),
# the static files of st_make_files, /upload, /dav/.

# wt_nginx NAME NS LISTEN [FLAKY_REGEX] [UPSTREAM_PORT]: production in NS, its upstream on NS's
# 127.0.0.1:UPSTREAM_PORT (8091). FLAKY_REGEX (default '0$': n = 10, 20, ...: exactly 1 request
# in 10 answers 500). The access log ($ST_TMP/NAME/access.log) says METHOD|URI|STATUS.
wt_nginx() {
	local name=$1 ns=$2 listen=$3 re=${4:-0\$} up=${5:-8091}
	st_bg "$name-upstream" st_in_bg "$ns" python3 "$ST_ROOT/tests/integration/watch_upstream.py" "$up"
	st_wait_port "$ns" "$up" 10 "pid=$ST_LAST_PID,"
	ST_NGINX_LOG_FORMAT='$request_method|$uri|$status' ST_NGINX_LOCATIONS="
		location = /api { default_type application/json; return 200 '{\"ok\":true}'; }
		location = /flaky { if (\$arg_n ~ \"$re\") { return 500; } return 200 \"ok\"; }
		location = /steady { if (\$arg_n ~ \"0\$\") { return 500; } return 200 \"ok\"; }
		location = /slow { proxy_pass http://127.0.0.1:$up; proxy_http_version 1.1; }
		location = /chunked { proxy_pass http://127.0.0.1:$up; }" \
		st_nginx_start "$name" "$ns" "$listen"
}

# wt_curl NS URL...: every URL on one keep-alive connection (a curl config: no argv limit).
wt_curl() {
	local ns=$1 cfg u
	shift
	cfg=$(mktemp "$ST_TMP/curl.XXXXXX")
	for u in "$@"; do printf 'url = "%s"\noutput = "/dev/null"\n' "$u" >>"$cfg"; done
	st_in "$ns" "${ST_CURL[@]}" -K "$cfg"
}

# wt_workload NS HOST [FIRST_N]: production's workload, every answer known: keep-alive batches
# of each endpoint, /flaky?n=FIRST_N..FIRST_N+39 (4 of 40 answer 500 with the default regex),
# pipelined small exchanges, a chunked answer, chunked and Expect: 100-continue uploads,
# a 1 MB download, HTTP/1.0.
wt_workload() {
	local ns=$1 host=$2 n0=${3:-1} b=http://$2 urls=() i up=$ST_TMP/upload
	mkdir -p "$up"
	[ -f "$up/u1m" ] || { head -c 1048576 /dev/urandom >"$up/u1m"; head -c 3000 /dev/urandom >"$up/u3k"; }
	for i in $(seq 1 20); do urls+=("$b/api"); done
	for i in $(seq "$n0" $((n0 + 39))); do urls+=("$b/flaky?n=$i"); done
	for i in $(seq 1 10); do urls+=("$b/slow" "$b/f4096"); done
	for i in 1 2 3; do urls+=("$b/chunked" "$b/f100000" "$b/f100"); done
	wt_curl "$ns" "${urls[@]}"
	wt_curl "$ns" "$b/f1048576" "$b/api"
	# pipelined: four GETs in one send, their (small) answers in one or two segments (the 500
	# last: nginx closes the connection after one, and never reads what follows)
	st_pipeline "$ns" "$host" 80 /api /f100 /api "/flaky?n=$((n0 + 9))" >/dev/null
	# uploads: chunked, and 1 MB with Expect: 100-continue to a handler that reads it
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$up/u3k" "$b/upload"
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -T "$up/u1m" "$b/dav/u1m-$RANDOM"
	st_in "$ns" "${ST_CURL[@]}" -0 -o /dev/null "$b/api"
}

# wt_check_exact REPORT ACCESS_LOG: watch's requests per endpoint, method and code equal
# nginx's access log line for line (endpoints: the URI's path; /flaky by an --endpoint
# pattern), and no exchange was lost, unpaired or left without an answer. Answers counted
# without their end (a chunked body longer than the heads copied) are said, not refused.
wt_check_exact() {
	python3 - "$1" "$2" <<'PY'
import collections, json, sys
rep = json.load(open(sys.argv[1]))
got, want = collections.Counter(), collections.Counter()
for s in rep["series"]:
    got[(s["endpoint"], s["method"], s["code"])] += s["requests"]
for line in open(sys.argv[2]):
    m, uri, st = line.strip().split("|")
    want[(uri, m, st)] += 1
c = rep["counters"]
bad = [k for k in ("lost_exchanges", "unpaired", "unanswered") if c.get(k)]
if got != want or bad:
    for k in sorted(set(got) | set(want)):
        if got[k] != want[k]:
            print("  %-40s watch %d, nginx %d" % (" ".join(k), got[k], want[k]))
    print("  counters:", {k: c[k] for k in c if c[k]})
    sys.exit(1)
print("  %d requests, %d series: watch equals nginx's access log (incomplete %d, desyncs %d, "
      "fallbacks %d)" % (sum(want.values()), len(want), c["incomplete"], c["desyncs"], c["fallbacks"]))
PY
}

# wt_drive NS SECS HOST:PORT...: steady traffic to each server for SECS seconds on keep-alive
# connections: /flaky?n=K and /steady?n=K for K = 1, 2, ..., /api, and /slow from a thread of
# its own (it takes ~50 ms). Prints the requests sent.
wt_drive() {
	local ns=$1 secs=$2
	shift 2
	st_in "$ns" timeout $((secs + 30)) python3 - "$secs" "$@" <<'PY'
import http.client, sys, threading, time
secs, targets = float(sys.argv[1]), sys.argv[2:]
end = time.time() + secs
sent = [0]
lock = threading.Lock()
def get(c, path):
    c.request("GET", path)
    c.getresponse().read()
    with lock:
        sent[0] += 1
def fast(t):
    c, k = http.client.HTTPConnection(t, timeout=10), 0
    while time.time() < end:
        k += 1
        get(c, "/flaky?n=%d" % k)
        get(c, "/steady?n=%d" % k)
        get(c, "/api")
        time.sleep(0.003)  # a steady rate, not a flood: the agent runs on the same 2 CPUs
def slow(t):
    c = http.client.HTTPConnection(t, timeout=10)
    while time.time() < end:
        get(c, "/slow")
ts = [threading.Thread(target=f, args=(t,)) for t in targets for f in (fast, slow)]
for t in ts: t.start()
for t in ts: t.join()
print(sent[0])
PY
}

# wt_quantile REPORT ENDPOINT Q [HIST]: the Q-quantile (seconds) of ENDPOINT's latency
# histogram (first_byte_seconds unless HIST), every code together, as histogram_quantile()
# computes it (linear within a bucket).
wt_quantile() {
	python3 - "$@" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
ep, q = sys.argv[2], float(sys.argv[3])
hist = sys.argv[4] if len(sys.argv) > 4 else "first_byte_seconds"
b = rep["latency_bounds_seconds"]
counts = [0] * (len(b) + 1)
for s in rep["series"]:
    if s["endpoint"] == ep:
        counts = [x + y for x, y in zip(counts, s[hist]["counts"])]
total, cum = sum(counts), 0
if not total:
    print("nan"); sys.exit(0)
rank = q * total
for i, c in enumerate(counts):
    if cum + c >= rank and c:
        if i == len(b):
            print(b[-1]); break
        lo = b[i - 1] if i else 0.0
        print(lo + (b[i] - lo) * (rank - cum) / c); break
    cum += c
PY
}
