#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap shadow` end to end: production nginx in a server namespace, a recording shadow
# server (shadow_sink.py) in the client namespace on the same port 80 (another host, same port:
# the agent's own connections leave through the captured veth and must not loop: counts are
# exact, so a looped request would show). curl
# keep-alive batches, HTTP/1.0, uploads with and without Expect: 100-continue, chunked uploads,
# 5 MB PUTs, a pipelining client (st_client_mix), then wrk briefly. Every request production
# logged must reach the shadow exactly once, in order per connection, with method, URI and body
# intact, marked with X-Shadowtap: 1. IPv4 and IPv6 clients.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl wrk bpftool python3
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
WWW=$ST_TMP/web/www
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 80
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:80" --drain 20 --stats 2

st_log "traffic: request mix"
st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$WWW"
st_log "traffic: IPv6 keep-alive batch and upload"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://[$ST_SRV6]/f100?v6=1" -o /dev/null "http://[$ST_SRV6]/f65537?v6=2"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/upload/u300k" "http://[$ST_SRV6]/upload?v6=3"
st_log "traffic: wrk 1 s"
st_in "$ST_CLI_NS" wrk -t1 -c2 -d1s --timeout 5s "http://$ST_SRV4/f100" | sed -n '/Requests\/sec/p'

nprod=$(sh_nginx_requests "$ST_TMP/web/access.log" | wc -l)
st_log "production served $nprod requests"
sh_wait_lines "$ST_TMP/sink.log" "$nprod" 30 || true
sleep 1
sh_agent_stop agent
nsink=$(wc -l <"$ST_TMP/sink.log")
st_log "shadow received $nsink requests"

sh_expect requests -eq "$nprod"
sh_expect replayed -eq "$nprod"
sh_expect dropped -eq 0
sh_expect gaps_skipped -eq 0
sh_expect errors -eq 0
sh_expect responses -eq "$nprod"
[ "$nsink" -eq "$nprod" ] || st_fail "shadow got $nsink requests, production $nprod"

# Same requests (method, URI), each exactly once.
diff <(sh_nginx_requests "$ST_TMP/web/access.log" | sort) <(sh_sink_requests "$ST_TMP/sink.log" | sort) |
	head -n 20 >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { cat "$ST_TMP/diff"; st_fail "the shadow's requests differ from production's"; }

# Every request marked.
[ "$(awk -F'\t' '$7 != "1"' "$ST_TMP/sink.log" | wc -l)" -eq 0 ] || st_fail "unmarked shadow requests"

# Bodies intact: uploads to /upload and the PUTs.
sha() { sha256sum "$1" | cut -d' ' -f1; }
UP=$ST_TMP/upload
want=$(printf '%s\n' "$(sha "$UP/u2k")" "$(sha "$UP/u1m")" "$(sha "$UP/u1m")" "$(sha "$UP/u300k")" | sort)
got=$(awk -F'\t' '$3 == "POST" && $4 == "/upload" { print $6 }' "$ST_TMP/sink.log" | sort)
[ "$want" = "$got" ] || st_fail "POST /upload bodies differ: want $want, got $got"
awk -F'\t' '$3 == "PUT" && $4 ~ /^\/dav\/u5m-/ { print $6 }' "$ST_TMP/sink.log" | grep -qx "$(sha "$UP/u5m")" ||
	st_fail "the 5 MB PUT (Expect: 100-continue) did not reach the shadow whole"
awk -F'\t' '$3 == "PUT" && $4 == "/dav/u300k-chunked" { print $6 }' "$ST_TMP/sink.log" | grep -qx "$(sha "$UP/u300k")" ||
	st_fail "the chunked PUT did not reach the shadow whole"
awk -F'\t' '$8 == "100-continue"' "$ST_TMP/sink.log" | grep -q . || st_fail "no Expect: 100-continue request seen by the shadow"
awk -F'\t' '$4 == "/upload?v6=3" { print $6 }' "$ST_TMP/sink.log" | grep -qx "$(sha "$UP/u300k")" ||
	st_fail "the IPv6 upload did not reach the shadow whole"

# Order per connection: the keep-alive batch and the pipelined batch.
want_ka=$(for i in 1 2; do for s in "${ST_FILE_SIZES[@]}"; do echo "/f$s"; done; done)
python3 - "$ST_TMP/sink.log" "$want_ka" <<'PY' || st_fail "per-connection order not kept"
import sys
conns = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    conns.setdefault(f[0], []).append((int(f[1]), f[3]))
seqs = {c: [u for _, u in sorted(v)] for c, v in conns.items()}
ka = sys.argv[2].split("\n")
if ka not in seqs.values():
    print("keep-alive batch not found in order; connections:", [v[:4] for v in seqs.values()][:10])
    sys.exit(1)
pipe = ["/f1", "/f4096", "/f100000", "/f16384"]
if pipe not in seqs.values():
    print("pipelined batch not found in order")
    sys.exit(1)
PY
st_log "PASS"
