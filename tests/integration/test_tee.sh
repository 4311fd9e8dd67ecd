#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap tee` -> pipe -> `shadowtap receive`, on a real nginx in a server namespace
# under curl traffic (keep-alive GETs of every size, POSTs of 2 KB to 5 MB with and
# without Expect: 100-continue, chunked, PUTs, HTTP/1.0, pipelined, IPv6), tcpdump on the
# same interface as the referee:
#   - receive -o DIR == `shadowtap flows` on tcpdump's pcap (same files, same bytes);
#   - receive -w PCAP, reassembled by tcpflow == tcpflow on tcpdump's pcap;
#   - receive --to: the shadow nginx logged every request once (same request lines), and a
#     chunked PUT stored there holds the exact body;
#   - receive --print: one line per exchange;
#   - secrets (Authorization, Cookie, --redact-query) never appear in the decompressed stream
#     nor in the outputs, everything else is byte-exact (Content-Length valid: nginx answered);
#     nor do those of the default set and the shapes that used to leak: Authorization as a
#     chunked trailer, userinfo in an absolute-form target, TOKEN=, t%6fken=, ;token=, a
#     Location with access_token, JSON sent as text/plain, without a Content-Type or with a
#     second one, X-Auth-Token;
#   - a stream file cut short: one error line naming the offset, exit 1, the pcap and the
#     flow files keep what came before;
#   - --to/--listen over loopback: plaintext (--insecure), and TLS 1.3 with certificates made
#     here: a receiver, a tee or a client with a certificate from another CA (or none) is
#     refused (the receiver goes on);
#   - a receiver stopped (SIGSTOP): the tee drops records, counted, the ring loses nothing.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl tcpdump tcpflow python3 sha256sum bpftool openssl
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" tee --help >/dev/null 2>&1 || st_skip "$ST_BIN has no working 'tee --help' yet"
st_init

st_netns_pair
st_netns_single shd
SHD=$ST_LAST_NS
ST_NGINX_LOCATIONS='location = /login { return 302 "https://app.example/cb?access_token=s3cr3t-LOCATION&x=1"; }
		location = /plain { default_type text/plain; return 200 "{\"token\": \"s3cr3t-RESPONSE\"}"; }' \
	ST_NGINX_LOG_FORMAT='$request' st_nginx_start web "$ST_SRV_NS" 80 "[::]:80"
ST_NGINX_LOG_FORMAT='$request' st_nginx_start shadow "$SHD" 127.0.0.1:8081
WWW=$ST_TMP/web/www
O=$ST_TMP/out
mkdir -p "$O"

# st_tee_start NAME ARGS...: shadowtap tee on the server's veth, --port 80, its stream on
# stdout into $ST_TMP/NAME.fifo (or wherever ARGS say); waits until attached. Pid TEE_PID.
# ---- 1. the everyday pipe: tee -o - | receive - -o DIR -w PCAP --to SHADOW --print ------------
st_tcpdump_start eth "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/eth.pcap" 'tcp port 80'
ETH_PID=$ST_TCPDUMP_PID
mkfifo "$ST_TMP/pipe"
st_in_bg "$SHD" "$ST_BIN" receive - -o "$O/rx" -w "$ST_TMP/rx.pcap" --to 127.0.0.1:8081 --print \
	<"$ST_TMP/pipe" >"$ST_TMP/print.out" 2>"$ST_TMP/rx.err" &
RX_PID=$!
ST_PIDS+=("$RX_PID")
st_tee_start pipe -o - --max-rate 0 --duration 0 >"$ST_TMP/pipe"

st_log "traffic: IPv4 mix, IPv6 GETs and a POST"
st_client_mix "$ST_CLI_NS" "$ST_SRV4" 80 "$WWW"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -o /dev/null "http://[$ST_SRV6]/f65537" "http://[$ST_SRV6]/f100"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/upload/u300k" "http://[$ST_SRV6]/upload"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sleep 0.5
st_stop "$TEE_PID" INT || { cat "$ST_TMP/pipe.err"; st_fail "tee exited with an error"; }
rc=0
for i in $(seq 1 150); do st_alive "$RX_PID" || break; sleep 0.1; done
wait "$RX_PID" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/rx.err"; st_fail "receive exited with $rc"; }
st_tcpdump_stop "$ETH_PID" eth || true
dropped=$(st_tcpdump_dropped "$ST_TMP/eth.err")
[ "${dropped:-0}" -eq 0 ] || st_fail "tcpdump dropped $dropped packets: no comparison possible"
tee_sum=$(st_summary "$ST_TMP/pipe.err")
rx_sum=$(st_summary "$ST_TMP/rx.err")
st_summary_documented "$tee_sum" tee "The tap"
st_summary_documented "$rx_sum" receive capture flows "shadow and replay"
echo "  tee: ${tee_sum#shadowtap: }"
echo "  receive: ${rx_sum#shadowtap: }"
for f in dropped_records dropped_conns held_conns lost; do
	[ "$(st_summary_field "$tee_sum" "$f")" = 0 ] || st_fail "tee summary: $f is not 0"
done
[ "$(st_summary_field "$rx_sum" gap_bytes)" = 0 ] || st_fail "receive saw gaps on a lossless run"

st_log "receive -o DIR == shadowtap flows on tcpdump's pcap"
"$ST_BIN" flows "$ST_TMP/eth.pcap" -o "$O/flows" 2>"$ST_TMP/flows.err" || { cat "$ST_TMP/flows.err"; st_fail "flows failed"; }
st_flow_digest "$O/flows" >"$ST_TMP/d-flows"
st_flow_digest "$O/rx" >"$ST_TMP/d-rx"
n=$(wc -l <"$ST_TMP/d-flows")
[ "$n" -ge 20 ] || st_fail "too few flow files from the reference: $n"
cmp -s "$ST_TMP/d-flows" "$ST_TMP/d-rx" || { diff "$ST_TMP/d-flows" "$ST_TMP/d-rx" | head -n 20; st_fail "receive -o and flows differ"; }
echo "  identical: $n files, $(cat "$O/rx"/* | wc -c) bytes"
big=$(find "$O/rx" -type f -size +5120k | wc -l)
[ "$big" -ge 2 ] || st_fail "the 5 MB transfers are missing from receive -o ($big files over 5 MiB)"

st_log "receive -w: tcpflow reads it and reassembles the same streams as from tcpdump's pcap"
st_compare_captures "$ST_TMP/eth.pcap" "$ST_TMP/rx.pcap" "$O" || st_fail "receive -w streams differ from tcpdump's"

st_log "receive --to: the shadow nginx got every request once"
sort "$ST_TMP/web/access.log" >"$ST_TMP/req-web"
sort "$ST_TMP/shadow/access.log" >"$ST_TMP/req-shadow"
nreq=$(wc -l <"$ST_TMP/req-web")
[ "$nreq" -ge 40 ] || st_fail "too few requests in production's log: $nreq"
cmp -s "$ST_TMP/req-web" "$ST_TMP/req-shadow" || { diff "$ST_TMP/req-web" "$ST_TMP/req-shadow" | head -n 20; st_fail "the shadow's requests differ from production's"; }
cmp -s "$ST_TMP/shadow/www/dav/u300k-chunked" "$ST_TMP/upload/u300k" || st_fail "the chunked PUT replayed to the shadow stored wrong bytes"
for f in "$ST_TMP"/shadow/www/dav/u5m-*; do
	cmp -s "$f" "$ST_TMP/upload/u5m" || st_fail "the 5 MB PUT replayed to the shadow stored wrong bytes (${f##*/})"
done
[ -e "$f" ] || st_fail "the 5 MB PUT did not reach the shadow"
echo "  identical: $nreq request lines; the bodies of the chunked and the 5 MB PUT exact"

st_log "receive --print: one line per exchange"
# a column header once, above the first line
[ "$(head -n1 "$ST_TMP/print.out")" = "# time(UTC) client method target status req_bytes resp_bytes latency" ] &&
	[ "$(grep -c '^#' "$ST_TMP/print.out")" -eq 1 ] || { head -n 3 "$ST_TMP/print.out"; st_fail "--print: no column header, or more than one"; }
np=$(grep -vc '^#' "$ST_TMP/print.out")
[ "$np" -eq "$nreq" ] || { head -n 5 "$ST_TMP/print.out"; st_fail "--print printed $np lines for $nreq exchanges"; }
grep -Eq "^[0-9:.]+ $ST_CLI4:[0-9]+ GET /f5242880 200 [0-9]+ 52431[0-9]{2} [0-9.]+ms$" "$ST_TMP/print.out" ||
	{ head -n 5 "$ST_TMP/print.out"; st_fail "--print has no line for the 5 MB GET"; }
grep -Eq " POST /upload 200 10[0-9]{5} " "$ST_TMP/print.out" || st_fail "--print has no line for the 1 MB POST"
head -n 2 "$ST_TMP/print.out" | sed 's/^/  /'

# ---- 2. secrets, a stream file, a cut stream -------------------------------------------------
st_log "secrets: redacted before the stream leaves the host"
st_tee_start file -o "$ST_TMP/s.tee" --redact-query token --redact-header X-Api-Key --redact-field password
base=http://$ST_SRV4
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Authorization: Bearer s3cr3t-AUTH' \
	-H 'Cookie: session=s3cr3t-COOKIE' -H 'X-Api-Key: s3cr3t-KEY' "$base/f1448?token=s3cr3t-QUERY&page=2"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Content-Type: application/json' \
	--data-binary '{"user":"bob","password":"s3cr3t-JSON","deep":{"list":[{"password":{"k":"s3cr3t-DEEP","n":42}}]}}' "$base/upload"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -o /dev/null "$base/f100000" "$base/f16384"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary @"$ST_TMP/upload/u1m" "$base/upload"
# the shapes that leaked (issue #19): raw requests, one connection each, answered by nginx
st_in "$ST_CLI_NS" python3 - "$ST_SRV4" <<'PY' || st_fail "the raw requests were not all answered"
import socket, sys
host = sys.argv[1].encode()
reqs = [  # (head lines, body)
    (b"GET http://user:s3cr3t-USERINFO@" + host + b"/f1448 HTTP/1.1\r\nHost: " + host + b"\r\n", b""),
    (b"GET /f1448?TOKEN=s3cr3t-UPPER&t%6fken=s3cr3t-PCTENC&a=1;token=s3cr3t-SEMICOLON HTTP/1.1\r\n"
     b"Host: h\r\nX-Auth-Token: s3cr3t-XAUTH\r\n", b""),
    (b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n",
     b"5\r\nhello\r\n0\r\nAuthorization: Bearer s3cr3t-TRAILER\r\n\r\n"),
    (b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 32\r\n",
     b'{"password":"s3cr3t-TEXTPLAIN"}\n'),
    (b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 25\r\n", b'{"passwd":"s3cr3t-NOCT"}\n'),
    (b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
     b"Content-Type: application/json\r\nContent-Length: 26\r\n", b'{"secret":"s3cr3t-TWOCT"}\n'),
    (b"GET /login HTTP/1.1\r\nHost: h\r\n", b""),
    (b"GET /plain HTTP/1.1\r\nHost: h\r\n", b""),
]
for head, body in reqs:
    s = socket.create_connection((sys.argv[1], 80), timeout=10)
    s.sendall(head + b"Connection: close\r\n\r\n" + body)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    # nginx refuses userinfo in an absolute-form target (400): what the tee sent counts
    if got.split(b" ", 2)[1:2] not in ([b"200"], [b"302"], [b"400"]):
        sys.exit("%r: %r" % (head[:40], got[:80]))
PY
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sleep 0.3
st_stop "$TEE_PID" INT || { cat "$ST_TMP/file.err"; st_fail "tee -o FILE exited with an error"; }
python3 - "$ST_TMP/s.tee" "$ST_TMP/s.raw" <<'PY' || st_fail "the stream file does not decompress"
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"STTEE\n", "no preamble"
d, o, out = zlib.decompressobj(), 8, []
while o < len(b):
    n, crc = struct.unpack_from("<II", b, o)
    p = b[o + 8:o + 8 + n]
    assert zlib.crc32(p) == crc, "frame checksum"
    out.append(d.decompress(p))
    o += 8 + n
open(sys.argv[2], "wb").write(b"".join(out))
PY
if grep -a -o 's3cr3t-[A-Z]*' "$ST_TMP/s.raw"; then st_fail "a secret is in the decompressed stream"; fi
# "Bearer s3cr3t-AUTH" is 18 bytes, "session=s3cr3t-COOKIE" 21
grep -aEq "^Authorization: \*{18}"$'\r'"\$" "$ST_TMP/s.raw" || st_fail "Authorization not redacted length-preserving"
grep -aEq "^Cookie: \*{21}"$'\r'"\$" "$ST_TMP/s.raw" || st_fail "Cookie not redacted length-preserving"
grep -aq 'token=\*\*\*\*\*\*\*\*\*\*\*\*&page=2' "$ST_TMP/s.raw" || st_fail "the query parameter was not redacted"
grep -aqF '{"user":"bob","password":"***********","deep":{"list":[{"password":{"k":"***********","n":0 }}]}}' "$ST_TMP/s.raw" ||
	st_fail "the JSON fields were not redacted (valid JSON, same length)"
"$ST_BIN" receive "$ST_TMP/s.tee" -o "$O/s" -w "$ST_TMP/s.pcap" --print >"$ST_TMP/s.print" 2>"$ST_TMP/s.err" ||
	{ cat "$ST_TMP/s.err"; st_fail "receive of the stream file failed"; }
if grep -r -a -l 's3cr3t' "$O/s" "$ST_TMP/s.pcap" "$ST_TMP/s.print"; then st_fail "a secret is in receive's outputs"; fi
[ "$(grep -vc '^#' "$ST_TMP/s.print")" -eq 13 ] || { cat "$ST_TMP/s.print"; st_fail "expected 13 exchanges from the stream file"; }
grep -aq 'TOKEN=\*\{12\}&t%6fken=\*\{13\}&a=1;token=\*\{16\} ' "$ST_TMP/s.raw" || st_fail "TOKEN=, t%6fken=, ;token= not redacted"
grep -aq 'GET http://\*\{20\}@' "$ST_TMP/s.raw" || st_fail "the userinfo of an absolute-form target not redacted"
grep -aEq "^Authorization: \*{21}"$'\r'"\$" "$ST_TMP/s.raw" || st_fail "the trailer Authorization not redacted length-preserving"
grep -aq '^Location: https://app.example/cb?access_token=\*\{15\}&x=1' "$ST_TMP/s.raw" || st_fail "Location's access_token not redacted"
grep -aqF '{"password":"****************"}' "$ST_TMP/s.raw" || st_fail "JSON as text/plain not redacted"
grep -q ' GET /f1448?token=\*\*\*\*\*\*\*\*\*\*\*\*&page=2 200 ' "$ST_TMP/s.print" || st_fail "--print shows no redacted target"
# everything but the secrets is byte-exact: the 1 MB body arrived whole
f=$(find "$O/s" -type f -size +1000k -exec grep -l -a '^POST /upload' {} + | head -n1)
[ -n "$f" ] && tail -c 1048576 "$f" | cmp -s - "$ST_TMP/upload/u1m" || st_fail "the 1 MB POST body is not byte-exact"
echo "  no secret in the stream or the outputs; lengths kept"

st_log "a stream cut short: one error line with the offset, outputs keep what came before"
size=$(stat -c %s "$ST_TMP/s.tee")
head -c $((size * 2 / 3)) "$ST_TMP/s.tee" >"$ST_TMP/cut.tee"
rc=0
"$ST_BIN" receive "$ST_TMP/cut.tee" -o "$O/cut" -w "$ST_TMP/cut.pcap" 2>"$ST_TMP/cut.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$ST_TMP/cut.err"; st_fail "receive of a cut stream exited $rc, not 1"; }
grep -Ev '^shadowtap: (summary|receive running:) ' "$ST_TMP/cut.err" >"$ST_TMP/cut.msg" || true
[ "$(wc -l <"$ST_TMP/cut.msg")" -eq 1 ] || { cat "$ST_TMP/cut.err"; st_fail "expected one error line"; }
grep -Eq 'cut short at byte [0-9]+' "$ST_TMP/cut.msg" || { cat "$ST_TMP/cut.msg"; st_fail "the error does not name the offset"; }
sed 's/^/  /' "$ST_TMP/cut.msg"
tcpdump -nr "$ST_TMP/cut.pcap" >/dev/null 2>&1 || st_fail "the cut run's pcap is not readable"
[ "$(st_pcap_packets "$ST_TMP/cut.pcap")" -gt 10 ] || st_fail "the cut run's pcap is empty"
[ "$(find "$O/cut" -type f -size +1k | wc -l)" -ge 2 ] || st_fail "the cut run's flow files are missing"
grep -q 'Authorization' "$O/cut"/* || st_fail "the cut run lost the first exchange"

st_log "a flipped byte: a clean error naming the frame"
cp "$ST_TMP/s.tee" "$ST_TMP/flip.tee"
printf '\x55' | dd of="$ST_TMP/flip.tee" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
rc=0
"$ST_BIN" receive "$ST_TMP/flip.tee" -w "$ST_TMP/flip.pcap" 2>"$ST_TMP/flip.err" || rc=$?
[ "$rc" -eq 1 ] || st_fail "receive of a damaged stream exited $rc, not 1"
grep -Eq 'corrupt stream: .*byte [0-9]+' "$ST_TMP/flip.err" || { cat "$ST_TMP/flip.err"; st_fail "no clear corruption message"; }
tcpdump -nr "$ST_TMP/flip.pcap" >/dev/null 2>&1 || st_fail "the damaged run's pcap is not readable"

# ---- 3. a stopped receiver: the capture never waits, drops are whole and counted ------------
st_log "receiver stopped (SIGSTOP) under 40 MB of downloads: tee drops records, the ring loses nothing"
mkfifo "$ST_TMP/pipe2"
"$ST_BIN" receive - -o "$O/stop" --print <"$ST_TMP/pipe2" >"$ST_TMP/stop.print" 2>"$ST_TMP/stoprx.err" &
SRX=$!
ST_PIDS+=("$SRX")
st_tee_start stop -o - --max-queue-mb 1 --max-rate 0 --duration 0 >"$ST_TMP/pipe2"
kill -STOP "$SRX"
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8; do
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f5242880"
done
t1=$(date +%s%N)
sleep 1
kill -CONT "$SRX"
sleep 0.5
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1448?after-the-stop"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sleep 0.3
st_stop "$TEE_PID" INT || { cat "$ST_TMP/stop.err"; st_fail "tee exited with an error"; }
rc=0
for i in $(seq 1 100); do st_alive "$SRX" || break; sleep 0.1; done
wait "$SRX" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/stoprx.err"; st_fail "receive after SIGSTOP exited with $rc"; }
tee_sum=$(st_summary "$ST_TMP/stop.err")
rx_sum=$(st_summary "$ST_TMP/stoprx.err")
echo "  40 MB downloaded in $(((t1 - t0) / 1000000)) ms while the receiver was stopped"
dr=$(st_summary_field "$tee_sum" dropped_records)
db=$(st_summary_field "$tee_sum" dropped_bytes)
echo "  tee: dropped_records=$dr dropped_bytes=$db lost=$(st_summary_field "$tee_sum" lost) queue_peak=$(st_summary_field "$tee_sum" queue_peak)"
[ "${dr:-0}" -gt 0 ] || st_fail "tee dropped nothing with its reader stopped"
[ "$(st_summary_field "$tee_sum" lost)" = 0 ] || st_fail "the ring lost bytes: tee waited for its output"
[ "$(st_summary_field "$tee_sum" queue_peak)" -lt $((1 << 21)) ] || st_fail "tee's queue went past its cap"
[ "$(st_summary_field "$rx_sum" sender_dropped_records)" = "$dr" ] || st_fail "receive does not report the sender's drops"
[ "$(st_summary_field "$rx_sum" sender_dropped_bytes)" = "$db" ] || st_fail "receive's gaps do not add up to what tee dropped"
grep -q ' GET /f1448?after-the-stop 200 ' "$ST_TMP/stop.print" || st_fail "the stream did not resume after SIGCONT"
# -o's warning names the gaps' real reason, the sender's (not "capture-loss")
grep -q '^shadowtap: gap: .* (dropped by the sender: its output was too slow)$' "$ST_TMP/stoprx.err" &&
	! grep -q '(capture-loss)' "$ST_TMP/stoprx.err" ||
	{ grep 'gap:' "$ST_TMP/stoprx.err" | head -n 3; st_fail "receive -o does not name the sender's drops"; }
echo "  receive: the drops arrived as gaps of their exact length; the stream resumed"

# ---- 3. over the network, loopback -----------------------------------------------------------
st_log "tee --to / receive --listen (plaintext, --insecure) over loopback"
st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen 127.0.0.1:7700 --insecure --print \
	>"$ST_TMP/net.print" 2>"$ST_TMP/net.err" </dev/null &
NRX=$!
ST_PIDS+=("$NRX")
st_wait_port "$ST_SRV_NS" 7700 10 "pid=$NRX,"
st_tee_start net --to 127.0.0.1:7700 --insecure
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -o /dev/null "$base/f4096" "$base/f1"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$TEE_PID" INT || { cat "$ST_TMP/net.err"; st_fail "tee --to exited with an error"; }
st_stop "$NRX" TERM || true
[ "$(grep -vc '^#' "$ST_TMP/net.print")" -eq 2 ] || { cat "$ST_TMP/net.print" "$ST_TMP/net.err"; st_fail "--listen: expected 2 exchanges"; }
rc=0
"$ST_BIN" tee --iface lo --port 80 --to 127.0.0.1:7700 2>"$ST_TMP/plain.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--insecure' "$ST_TMP/plain.err" || st_fail "--to without TLS files or --insecure was not refused"
st_log "a lost link: the tee reconnects with backoff and starts a new stream; receive --listen goes on"
cat >"$ST_TMP/relay.py" <<'PY'
import socket, sys, threading
lport, dport = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(4)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = ls.accept()
    u = socket.create_connection(("127.0.0.1", dport))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen 127.0.0.1:7705 --insecure --once --print -o "$O/relay" \
	>"$ST_TMP/relay.print" 2>"$ST_TMP/relayrx.err" </dev/null &
RRX=$!
ST_PIDS+=("$RRX")
st_wait_port "$ST_SRV_NS" 7705 10 "pid=$RRX,"
st_bg relay1 st_in_bg "$ST_SRV_NS" python3 "$ST_TMP/relay.py" 7706 7705
RELAY=$ST_LAST_PID
st_wait_port "$ST_SRV_NS" 7706 10 "pid=$RELAY,"
st_tee_start relaytee --to 127.0.0.1:7706 --insecure --duration 0
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f4096?before"
# a keep-alive connection that spans the loss: one exchange before, one after the reconnect
# (it waits for the file $ST_TMP/ka.go)
st_in "$ST_CLI_NS" timeout 30 python3 - "$ST_SRV4" "$ST_TMP/ka.go" <<'PY' &
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80))
s.sendall(b"GET /f100?before-keepalive HTTP/1.1\r\nHost: st\r\n\r\n")
s.recv(65536)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
s.sendall(b"GET /f1?after-on-the-same-connection HTTP/1.1\r\nHost: st\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
PY
KA=$!
# the connection spans the loss only once its first exchange is in the old stream (a client
# slow to start under load would open it while the link is down: left out whole)
st_wait_log "$ST_TMP/relay.print" ' GET /f100[?]before-keepalive 200 ' 20
kill -KILL "$RELAY"
wait "$RELAY" 2>/dev/null || true
# traffic while the link is down: dropped, counted (its frames 0.3 s apart: the first write
# after the relay died may still succeed, the next ones fail and the tee reconnects)
for i in 1 2 3; do st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1448?during-$i"; sleep 0.3; done
sleep 0.5
st_bg relay2 st_in_bg "$ST_SRV_NS" python3 "$ST_TMP/relay.py" 7706 7705
st_wait_port "$ST_SRV_NS" 7706 10 "pid=$ST_LAST_PID,"
st_wait_log "$ST_TMP/relaytee.err" 'the link is back' 15
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f4096?after"
touch "$ST_TMP/ka.go"
wait "$KA" || st_fail "the keep-alive client failed"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
sleep 0.3
st_stop "$TEE_PID" INT || { cat "$ST_TMP/relaytee.err"; st_fail "tee exited with an error after the reconnect"; }
for i in $(seq 1 50); do st_alive "$RRX" || break; sleep 0.1; done
rc=0
wait "$RRX" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/relayrx.err"; st_fail "receive --listen exited with $rc after a reconnect"; }
grep -E 'the link is (down|back)' "$ST_TMP/relaytee.err" | sed 's/^/  /'
grep -q 'the link is down' "$ST_TMP/relaytee.err" || st_fail "the tee did not say the link was down"
grep -q ' GET /f4096?before 200 ' "$ST_TMP/relay.print" || st_fail "the exchange before the loss is missing"
grep -q ' GET /f4096?after 200 ' "$ST_TMP/relay.print" || { cat "$ST_TMP/relay.print"; st_fail "the exchange after the reconnect is missing"; }
grep -q 'during' "$ST_TMP/relay.print" && st_fail "exchanges made while the link was down were printed"
# the keep-alive connection's request after the loss: --print follows it again from the
# exchange boundary the tee marked (MARK) in the new stream
grep -q ' GET /f1?after-on-the-same-connection 200 ' "$ST_TMP/relay.print" ||
	{ cat "$ST_TMP/relay.print"; st_fail "the keep-alive connection's exchange after the reconnect is missing"; }
rx_sum=$(st_summary "$ST_TMP/relayrx.err")
[ "$(st_summary_field "$rx_sum" streams)" = 2 ] && [ "$(st_summary_field "$rx_sum" link_losses)" = 1 ] ||
	{ echo "$rx_sum"; st_fail "receive did not count one lost link and two streams"; }
[ "$(st_summary_field "$(st_summary "$ST_TMP/relaytee.err")" link_losses)" = 1 ] || st_fail "tee did not count the lost link"
echo "  the stream resumed: the exchanges before and after are there, none from the loss"

st_log "tee --to / receive --listen over TLS 1.3, both ends authenticated"
C=$ST_TMP/certs
st_tee_certs "$C"
listen_tls() { # NAME PORT CERT
	st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen "127.0.0.1:$2" --cert "$C/$3.pem" --key "$C/$3.key" \
		--ca "$C/ca.pem" --once --print >"$ST_TMP/$1.print" 2>"$ST_TMP/$1.err" </dev/null &
	LRX=$!
	ST_PIDS+=("$LRX")
	st_wait_port "$ST_SRV_NS" "$2" 10 "pid=$LRX,"
}
listen_tls tls 7701 rx
st_tee_start tlstee --to 127.0.0.1:7701 --cert "$C/tx.pem" --key "$C/tx.key" --ca "$C/ca.pem"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -o /dev/null -o /dev/null "$base/f4096" "$base/f1" "$base/f100000"
st_tcp_settle 80 "$ST_SRV_NS" "$ST_CLI_NS"
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tlstee.err"; st_fail "tee --to over TLS exited with an error"; }
for i in $(seq 1 50); do st_alive "$LRX" || break; sleep 0.1; done
rc=0
wait "$LRX" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/tls.err"; st_fail "receive --listen over TLS exited with $rc"; }
[ "$(grep -vc '^#' "$ST_TMP/tls.print")" -eq 3 ] || { cat "$ST_TMP/tls.print" "$ST_TMP/tls.err"; st_fail "TLS: expected 3 exchanges"; }
# a receiver whose certificate another CA signed: the tee refuses it (exit 1, one line, nothing attached)
listen_tls badrx 7702 rogue
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" tee --iface "$ST_SRV_IF" --port 80 --to 127.0.0.1:7702 --cert "$C/tx.pem" \
	--key "$C/tx.key" --ca "$C/ca.pem" 2>"$ST_TMP/badrx-tee.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'certificate was refused' "$ST_TMP/badrx-tee.err" ||
	{ cat "$ST_TMP/badrx-tee.err"; st_fail "the tee did not refuse a receiver with a rogue certificate"; }
[ "$(wc -l <"$ST_TMP/badrx-tee.err")" -eq 1 ] || { cat "$ST_TMP/badrx-tee.err"; st_fail "more than one line"; }
st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" && st_fail "a refused tee left programs attached"
st_stop "$LRX" TERM || true
# a tee with a rogue certificate, and a client with none: the receiver refuses them
listen_tls badtx 7703 rx
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" tee --iface "$ST_SRV_IF" --port 80 --to 127.0.0.1:7703 --cert "$C/rogue.pem" \
	--key "$C/rogue.key" --ca "$C/ca.pem" 2>"$ST_TMP/badtx-tee.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'did not accept this tee' "$ST_TMP/badtx-tee.err" ||
	{ cat "$ST_TMP/badtx-tee.err"; st_fail "a tee with a rogue certificate was not refused"; }
# the receiver refuses them and goes on (tests/integration/test_receive_listen.sh has every
# kind of stranger): one line, a count, exit 0 at SIGTERM
refused() { # NAME: the receiver is still there, said it refused one peer, counts it
	local rc=0 sum
	st_wait_log "$ST_TMP/$1.err" 'refused 127\.0\.0\.1' 10
	st_alive "$LRX" || { cat "$ST_TMP/$1.err"; st_fail "$1: a refused peer stopped the receiver"; }
	st_stop "$LRX" TERM || rc=$?
	sum=$(st_summary "$ST_TMP/$1.err")
	[ "$rc" -eq 0 ] && grep -q 'refused 127.0.0.1:[0-9]*: TLS handshake' "$ST_TMP/$1.err" &&
		[ "$(st_summary_field "$sum" rejected_peers)" = 1 ] && [ "$(st_summary_field "$sum" rejected_cert)" = 1 ] ||
		{ cat "$ST_TMP/$1.err"; st_fail "$1: the receiver did not refuse the peer (exit $rc)"; }
}
refused badtx
listen_tls nocert 7704 rx
st_in "$ST_SRV_NS" timeout 10 openssl s_client -connect 127.0.0.1:7704 -CAfile "$C/ca.pem" </dev/null >/dev/null 2>&1 || true
refused nocert
echo "  3 exchanges over TLS; a rogue receiver, a rogue tee and a client without a certificate refused"
st_log "bad input: one line, exit 2 (usage) or 1, nothing attached"
usage() {
	local want=$1 rc=0
	shift
	"$ST_BIN" "$@" >/dev/null 2>"$ST_TMP/bad.err" </dev/null || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$ST_TMP/bad.err"; st_fail "'$*' exited $rc, not $want"; }
	[ "$(wc -l <"$ST_TMP/bad.err")" -eq 1 ] || { cat "$ST_TMP/bad.err"; st_fail "'$*' did not say one line"; }
}
usage 2 tee --iface lo --port 80
usage 2 tee --iface lo --port 80 -o - --no-redact --redact-field password
usage 2 tee --iface lo --port 80 -o - --redact-field 'a"b'
usage 2 tee --iface lo -o -
usage 2 receive -
usage 2 receive - --listen 127.0.0.1:1 --print
usage 1 receive "$ST_TMP/does-not-exist" --print
usage 1 tee --iface st-nosuch0 --port 80 -o "$ST_TMP/never.tee"
[ ! -e "$ST_TMP/never.tee" ] || st_fail "a failed tee left its output file"
printf 'STTEE\n\x02\x00' >"$ST_TMP/v2.tee"
"$ST_BIN" receive "$ST_TMP/v2.tee" --print 2>"$ST_TMP/v2.err" && st_fail "a version 2 stream was accepted"
grep -q 'version 2.0: this build reads version 1.x' "$ST_TMP/v2.err" || { cat "$ST_TMP/v2.err"; st_fail "version refusal unclear"; }
st_log "crafted streams: a GAP no tee writes (1 TiB), terminal escapes in the header"
python3 "$ST_ROOT/tests/integration/tee_stream.py" "$ST_TMP/hostile.tee" \
	header 'format=shadowtap-tee\nhost=evil\x1b]0;pwned\x07\x1b[2J\nredact=\x1b[31mnone\n' \
	open 1 10.0.0.2:40000 10.0.0.1:80 data 1 0 0 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' \
	gap 1 1 0 1099511627776 0 data 1 1 1099511627776 'HTTP/1.1 200 OK\r\n' close 1 1 \
	open 2 10.0.0.2:40002 10.0.0.1:80 data 2 0 0 'GET /next HTTP/1.1\r\n\r\n' close 2 1 end_stream
rc=0
"$ST_BIN" receive "$ST_TMP/hostile.tee" -o "$O/hostile" -v 2>"$ST_TMP/hostile.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/hostile.err"; st_fail "receive of a crafted GAP exited $rc"; }
grep -q 'receive: connection 10.0.0.2:40000 -> 10.0.0.1:80: a gap of 1099511627776 bytes, longer than a tee writes (1073741824): its outputs end here' \
	"$ST_TMP/hostile.err" || { cat "$ST_TMP/hostile.err"; st_fail "no line for the crafted GAP"; }
big=$(find "$O/hostile" -type f -size +1M | head -n1)
[ -z "$big" ] || st_fail "receive -o made $big: $(stat -c %s "$big") bytes of holes"
[ -s "$O/hostile/10.0.0.2.40002-10.0.0.1.80" ] || st_fail "the next connection's output is missing"
[ "$(st_summary_field "$(st_summary "$ST_TMP/hostile.err")" bad_gaps)" = 1 ] || st_fail "bad_gaps is not 1"
# -v: the header's values reach the terminal escaped
grep -qF 'stream 1.1 from evil\x1b]0;pwned\x07\x1b[2J, redaction: \x1b[31mnone' "$ST_TMP/hostile.err" ||
	{ cat -v "$ST_TMP/hostile.err"; st_fail "receive -v did not escape the header's values"; }
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$ST_TMP/hostile.err" &&
	{ cat -v "$ST_TMP/hostile.err"; st_fail "a control byte reached stderr"; }
st_log "PASS"
