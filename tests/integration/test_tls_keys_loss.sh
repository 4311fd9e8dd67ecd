#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Keys mode across a ring overflow: `flows --tls --tls-mode keys --ring-mb 1` is stopped
# (SIGSTOP) for 2 s in the middle of a 24 MB HTTPS download (TLS 1.3, curl at 4 MB/s), so the
# kernel drops megabytes of ciphertext; then a second request on the same connection.
#  - the loss is exact in the plaintext: the server -> client flow file has exactly the length
#    curl received, every byte outside the holes is what nginx sent, and the holes are what
#    the summary reports (tls_dec_lost = flows' gap_bytes);
#  - decryption is found again after the gap (tls_resyncs) by trying the next sequence
#    numbers, and the second request and its response come through whole.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl openssl python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
st_init
st_exclusive uprobes

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"
head -c $((24 << 20)) /dev/urandom >"$ST_TMP/prod/www/big"

st_in_bg "" "$ST_BIN" flows --tls --tls-mode keys --ring-mb 1 --cgroup "$CG" --port 443 -v \
	-o "$ST_TMP/flows" >"$ST_TMP/flows.out" 2>"$ST_TMP/flows.err" </dev/null &
AGENT=$!
ST_PIDS+=("$AGENT")
st_wait_log "$ST_TMP/flows.err" 'tls: pid [0-9]* \(nginx\): keys mode' 10
sleep 0.3

st_log "a 24 MB download at 4 MB/s, the agent stopped for 2 s after 1.5 s, then a second request"
st_in "$ST_CLI_NS" curl -s -S -k --tlsv1.3 --max-time 60 --limit-rate 4M \
	-w '%{local_port} %{size_header} %{size_download}\n' \
	-o "$ST_TMP/got.big" "https://$ST_SRV4/big" -o "$ST_TMP/got.small" "https://$ST_SRV4/f100?after" \
	>"$ST_TMP/curl.w" &
CURL=$!
sleep 1.5
kill -STOP "$AGENT"
sleep 2
kill -CONT "$AGENT"
wait "$CURL" || st_fail "curl failed"
cmp -s "$ST_TMP/got.big" "$ST_TMP/prod/www/big" || st_fail "referee: curl's download is not the file"
sleep 0.5
st_stop "$AGENT" INT || st_fail "flows exited with an error"
sum=$(st_summary "$ST_TMP/flows.err")
echo "$sum" | tr ' ' '\n' | grep -E '^(lost|gaps|gap_bytes|connections|tls_[a-z_]+)=' | tr '\n' ' '
echo

[ "$(sort -u -k1,1 "$ST_TMP/curl.w" | wc -l)" -eq 1 ] || st_fail "curl used two connections"
port=$(head -n1 "$ST_TMP/curl.w" | cut -d' ' -f1)
total=$(awk '{ n += $2 + $3 } END { print n }' "$ST_TMP/curl.w")
down=$ST_TMP/flows/$ST_SRV4.443-$ST_CLI4.$port
up=$ST_TMP/flows/$ST_CLI4.$port-$ST_SRV4.443
[ -f "$down" ] || { ls "$ST_TMP/flows"; st_fail "no flow for port $port"; }
[ "$(st_summary_field "$sum" lost)" -gt 0 ] || st_fail "the ring did not overflow: no loss to look at"
lost=$(st_summary_field "$sum" tls_dec_lost)
[ -n "$lost" ] && [ "$lost" -gt 0 ] || st_fail "no plaintext reported lost"
[ "$(st_summary_field "$sum" gap_bytes)" = "$lost" ] || st_fail "flows' gap_bytes $(st_summary_field "$sum" gap_bytes) is not the decryptor's loss $lost"
[ "$(st_summary_field "$sum" tls_resyncs)" -ge 1 ] || st_fail "decryption was not found again after the gap"
[ "$(stat -c %s "$down")" -eq "$total" ] || st_fail "the flow has $(stat -c %s "$down") bytes, curl received $total: the holes are not exact"
st_log "holes: $lost bytes of $total; every other byte as nginx sent it"
python3 - "$down" "$ST_TMP/prod/www/big" "$ST_TMP/prod/www/f100" "$lost" <<'PY' || st_fail "the flow differs from what nginx sent outside its holes"
import sys
flow = open(sys.argv[1], "rb").read()
big = open(sys.argv[2], "rb").read()
small = open(sys.argv[3], "rb").read()
lost = int(sys.argv[4])
h1 = flow.index(b"\r\n\r\n") + 4            # the first response's head (before any loss)
body = flow[h1:h1 + len(big)]
holes = [i for i in range(0, len(big), 4096) if body[i:i + 4096] != big[i:i + 4096]]
zeros = 0
for i in holes:
    a, b = body[i:i + 4096], big[i:i + 4096]
    for j in range(len(a)):
        if a[j] != b[j]:
            assert a[j] == 0, "byte %d: %d, nginx sent %d (not a hole)" % (h1 + i + j, a[j], b[j])
    # a hole is zeros from its start: count them where nginx's bytes differ
    zeros += sum(1 for j in range(len(a)) if a[j] == 0)
assert zeros <= lost + lost // 64 + 4096, "%d zero bytes, %d reported lost" % (zeros, lost)
assert zeros >= lost - lost // 64, "%d zero bytes, %d reported lost" % (zeros, lost)
tail = flow[h1 + len(big):]
assert tail.startswith(b"HTTP/1.1 200 OK\r\n"), "the second response's head"
assert tail.endswith(small), "the second response's body"
print("  %d bytes differ from nginx's in %d runs of 4 KiB, all in holes" % (zeros, len(holes)))
PY
grep -q 'GET /f100?after HTTP/1.1' "$up" || st_fail "the request after the loss is not in the client's flow"
grep -q 'GET /big HTTP/1.1' "$up" || st_fail "the first request is not in the client's flow"
st_log "PASS"
