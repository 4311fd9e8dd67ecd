#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# --tls keys mode and --keylog, against nginx (TLS 1.2 and 1.3) in its own cgroup:
#  - `flows --tls --tls-mode keys --keylog K1` and `capture --keylog K2` (no --tls: the
#    capture stays ciphertext) run at once; the clients: curl over TLS 1.3 and over TLS 1.2,
#    each making a second connection that resumes the first's session (nginx logs it
#    reused), openssl s_client with a KeyUpdate (requested: both sides update) between two
#    requests, and s_client resuming a session with its request as 0-RTT early data;
#  - flows: each connection's plaintext both ways equals what the client sent and received
#    (curl's traces; s_client's requests), the KeyUpdates followed (tls_key_updates);
#  - K1 and K2 are mode 0600 and hold exactly curl's own SSLKEYLOGFILE lines for its
#    connections (and s_client's for its own, but the updated secrets, which a key log
#    does not carry: Wireshark derives them);
#  - tshark decrypts the agent's ciphertext pcap with K2 to the very requests nginx logged.
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl openssl tshark python3
st_require_agent
[ -z "${ST_FAKE_AGENT:-}" ] || st_skip "needs the real agent"
[ -n "$(st_cgroup2_root)" ] || st_skip "cgroup v2 is not mounted"
st_init
st_exclusive uprobes
TC=$ST_ROOT/tests/integration/tls_client.py

st_netns_pair
st_cgroup_create svc
CG=$ST_LAST_CGROUP
export ST_NGINX_LOG_FORMAT='$request_method $request_uri $ssl_protocol $ssl_session_reused'
# a session cache: curl resumes TLS 1.2 by session id; 0-RTT taken
ST_NGINX_LOCATIONS='ssl_session_cache shared:st:1m; ssl_early_data on;' ST_NGINX_TLS=1 ST_NGINX_CGROUP=$CG \
	st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:443"

st_in_bg "" "$ST_BIN" flows --tls --tls-mode keys --keylog "$ST_TMP/k1.log" --cgroup "$CG" \
	--port 443 -v -o "$ST_TMP/flows" >"$ST_TMP/flows.out" 2>"$ST_TMP/flows.err" </dev/null &
FLOWS=$!
ST_PIDS+=("$FLOWS")
st_in_bg "" "$ST_BIN" capture --keylog "$ST_TMP/k2.log" --cgroup "$CG" --port 443 -v \
	-w "$ST_TMP/cipher.pcap" >"$ST_TMP/cap.out" 2>"$ST_TMP/cap.err" </dev/null &
CAP=$!
ST_PIDS+=("$CAP")
st_wait_log "$ST_TMP/flows.err" 'tls: pid [0-9]* \(nginx\): keys mode' 10
st_wait_log "$ST_TMP/cap.err" 'tls: pid [0-9]* \(nginx\): keys mode: .*for --keylog' 10
st_wait_log "$ST_TMP/cap.err" 'capture running: cgroup' 10
sleep 0.3

base=https://$ST_SRV4
K=(curl -s -S -k --max-time 30 --connect-timeout 5)
# resumed VERSION-OPTS...: two connections from one curl, the second resuming the first's
# session; traced; their local ports in $ST_TMP/NAME.ports
resumed() {
	local name=$1
	shift
	st_in "$ST_CLI_NS" env SSLKEYLOGFILE="$ST_TMP/curl.keys" "${K[@]}" "$@" \
		--trace "$ST_TMP/$name.trace" -w '%{local_port}\n' \
		-H 'Connection: close' -o /dev/null "$base/f65536?$name=1" \
		--next -k "$@" -w '%{local_port}\n' -o /dev/null -H 'Expect:' \
		--data-binary @"$ST_TMP/prod/www/f100000" "$base/upload?$name=2" >"$ST_TMP/$name.ports"
	[ "$(sort -u "$ST_TMP/$name.ports" | wc -l)" -eq 2 ] || st_fail "$name: not two connections"
}
st_log "curl: TLS 1.3, TLS 1.2, each with a resumed session"
resumed v13 --tlsv1.3
resumed v12 --tlsv1.2 --tls-max 1.2
st_log "openssl s_client: TLS 1.3, a KeyUpdate requested between two requests"
REQ1=$'GET /f100?ku=1 HTTP/1.1\r\nHost: st\r\n\r\n'
REQ2=$'GET /f65536?ku=2 HTTP/1.1\r\nHost: st\r\nConnection: close\r\n\r\n'
{
	printf 'GET /f100?ku=1 HTTP/1.1\nHost: st\n\n'
	sleep 1
	printf 'K\n' # s_client's command: a KeyUpdate, the peer asked to update too
	sleep 1
	printf 'GET /f65536?ku=2 HTTP/1.1\nHost: st\nConnection: close\n\n'
	sleep 2
} | st_in "$ST_CLI_NS" openssl s_client -connect "$ST_SRV4:443" -tls1_3 -crlf \
	-keylogfile "$ST_TMP/sclient.keys" >"$ST_TMP/sclient.out" 2>"$ST_TMP/sclient.err" || true
grep -q KEYUPDATE "$ST_TMP/sclient.err" "$ST_TMP/sclient.out" || st_fail "s_client did not send its KeyUpdate"
st_log "openssl s_client: 0-RTT, a resumed session's request sent as early data"
# the first connection leaves a session ticket that allows early data
{
	printf 'GET /f100?early=0 HTTP/1.1\nHost: st\n\n'
	sleep 1
} | st_in "$ST_CLI_NS" openssl s_client -connect "$ST_SRV4:443" -tls1_3 -crlf \
	-sess_out "$ST_TMP/sess.pem" -keylogfile "$ST_TMP/sclient.keys" >/dev/null 2>&1 || true
# then a request after the handshake (nginx answers an early request at once: closing then,
# it would never read the client's Finished, nor derive the client's secrets)
EARLY=$'GET /f100?early=1 HTTP/1.1\r\nHost: st\r\n\r\n'
LATER=$'GET /f100?early=2 HTTP/1.1\r\nHost: st\r\nConnection: close\r\n\r\n'
printf '%s' "$EARLY" >"$ST_TMP/early.req"
{
	sleep 1
	printf 'GET /f100?early=2 HTTP/1.1\nHost: st\nConnection: close\n\n'
	sleep 1
} | st_in "$ST_CLI_NS" openssl s_client -connect "$ST_SRV4:443" -tls1_3 -crlf \
	-sess_in "$ST_TMP/sess.pem" -early_data "$ST_TMP/early.req" \
	-keylogfile "$ST_TMP/sclient.keys" >"$ST_TMP/early.out" 2>&1 || true
grep -q 'Early data was accepted' "$ST_TMP/early.out" || { cat "$ST_TMP/early.out"; st_fail "nginx did not take the early data"; }
sleep 0.5
st_stop "$FLOWS" INT || st_fail "flows exited with an error"
st_stop "$CAP" INT || st_fail "capture exited with an error"
cat "$ST_TMP/prod/access.log"
fsum=$(st_summary "$ST_TMP/flows.err")
csum=$(st_summary "$ST_TMP/cap.err")
st_summary_documented "$fsum" flows "The tap"
st_summary_documented "$csum" capture "The tap"
echo "flows: $fsum" | tr ' ' '\n' | grep -E '^(lost|tls_[a-z_]+|gaps|connections)=' | tr '\n' ' '
echo

st_log "nginx: the sessions resumed, both versions"
grep -q 'f65536?v13=1 TLSv1.3 \.' "$ST_TMP/prod/access.log" && grep -q 'upload?v13=2 TLSv1.3 r' "$ST_TMP/prod/access.log" ||
	st_fail "no resumed TLS 1.3 session"
grep -q 'f65536?v12=1 TLSv1.2 \.' "$ST_TMP/prod/access.log" && grep -q 'upload?v12=2 TLSv1.2 r' "$ST_TMP/prod/access.log" ||
	st_fail "no resumed TLS 1.2 session"

st_log "flows: every connection's plaintext, both ways"
[ "$(st_summary_field "$fsum" lost)" = 0 ] || st_fail "flows lost bytes"
[ "$(st_summary_field "$fsum" gaps)" = 0 ] || st_fail "flows reported gaps"
[ "$(st_summary_field "$fsum" connections)" = 7 ] || st_fail "flows saw $(st_summary_field "$fsum" connections) connections, not 7"
[ "$(st_summary_field "$fsum" tls_keyed)" = 7 ] || st_fail "$(st_summary_field "$fsum" tls_keyed) connections decrypted, not 7"
[ "$(st_summary_field "$fsum" tls_key_updates)" -ge 2 ] || st_fail "the KeyUpdates (client's, server's answer) were not followed"
for c in v13 v12; do
	python3 "$TC" trace "$ST_TMP/$c.trace" "$ST_TMP/$c"
	: >"$ST_TMP/$c.up"
	: >"$ST_TMP/$c.down"
	while read -r port; do
		cat "$ST_TMP/flows/$ST_CLI4.$port-$ST_SRV4.443" >>"$ST_TMP/$c.up" || st_fail "$c: no flow of port $port"
		cat "$ST_TMP/flows/$ST_SRV4.443-$ST_CLI4.$port" >>"$ST_TMP/$c.down"
	done <"$ST_TMP/$c.ports"
	cmp "$ST_TMP/$c.up" "$ST_TMP/$c.sent" || st_fail "$c: client -> server plaintext differs from what curl sent"
	cmp "$ST_TMP/$c.down" "$ST_TMP/$c.recv" || st_fail "$c: server -> client plaintext differs from what curl received"
	echo "  $c: $(stat -c %s "$ST_TMP/$c.up") B sent, $(stat -c %s "$ST_TMP/$c.down") B received over 2 connections: equal"
done
eup=$(grep -l 'early=1' "$ST_TMP"/flows/"$ST_CLI4".*) || st_fail "no flow with the early data's request"
printf '%s%s' "$EARLY" "$LATER" | cmp - "$eup" || st_fail "the 0-RTT connection's plaintext is not its early request, then the next"
grep -q 'f100?early=1 TLSv1.3 r' "$ST_TMP/prod/access.log" || st_fail "nginx did not log the early request on a resumed session"
sup=$(grep -l 'ku=1' "$ST_TMP"/flows/"$ST_CLI4".*) || st_fail "no flow with s_client's requests"
printf '%s%s' "$REQ1" "$REQ2" | cmp - "$sup" || st_fail "s_client's requests differ across its KeyUpdate"
sdown=$ST_TMP/flows/$(basename "$sup" | sed -E "s/^$ST_CLI4\.([0-9]+)-$ST_SRV4\.443$/$ST_SRV4.443-$ST_CLI4.\1/")
tail -c 65536 "$sdown" | cmp -s - "$ST_TMP/prod/www/f65536" || st_fail "the response after the KeyUpdate is not whole"
[ "$(grep -a -o 'HTTP/1.1 200 OK' "$sdown" | wc -l)" -eq 2 ] || st_fail "not both responses to s_client"

st_log "--keylog: mode 0600, curl's own lines"
for k in k1 k2; do
	[ "$(stat -c %a "$ST_TMP/$k.log")" = 600 ] || st_fail "$k.log is mode $(stat -c %a "$ST_TMP/$k.log")"
done
grep -q '^CLIENT_EARLY_TRAFFIC_SECRET ' "$ST_TMP/k1.log" || st_fail "no early traffic secret logged"
# the lines of curl's connections (by client random), then s_client's
awk '{ print $2 }' "$ST_TMP/curl.keys" | sort -u >"$ST_TMP/curl.randoms"
[ "$(wc -l <"$ST_TMP/curl.randoms")" -eq 4 ] || st_fail "curl logged $(wc -l <"$ST_TMP/curl.randoms") connections, not 4"
for k in k1 k2; do
	grep -F -f "$ST_TMP/curl.randoms" "$ST_TMP/$k.log" | sort >"$ST_TMP/$k.curl"
	sort "$ST_TMP/curl.keys" | diff - "$ST_TMP/$k.curl" || st_fail "$k.log differs from curl's SSLKEYLOGFILE"
	grep -v -e '^#' -e '_N ' "$ST_TMP/sclient.keys" | sort >"$ST_TMP/sclient.lines"
	grep -v -F -f "$ST_TMP/curl.randoms" "$ST_TMP/$k.log" | sort | diff - "$ST_TMP/sclient.lines" ||
		st_fail "$k.log differs from s_client's key log"
	echo "  $k.log: $(wc -l <"$ST_TMP/$k.log") lines, curl's and s_client's"
done

st_log "tshark decrypts the agent's ciphertext pcap with its key log"
[ "$(st_summary_field "$csum" lost)" = 0 ] || st_fail "capture lost bytes"
tshark -r "$ST_TMP/cipher.pcap" -o "tls.keylog_file:$ST_TMP/k2.log" -Y http.request \
	-T fields -e http.request.method -e http.request.uri 2>"$ST_TMP/tshark.err" | sort >"$ST_TMP/tshark.reqs"
awk '{ print $1 "\t" $2 }' "$ST_TMP/prod/access.log" | sort >"$ST_TMP/nginx.reqs"
if ! diff "$ST_TMP/nginx.reqs" "$ST_TMP/tshark.reqs"; then
	# seen once in a whole-suite run (a TLS 1.2 resumed session's POST not decrypted, the
	# key log whole, lost=0): what tshark saw, frame by frame, for the next time
	cat "$ST_TMP/tshark.err"
	tshark -r "$ST_TMP/cipher.pcap" -o "tls.keylog_file:$ST_TMP/k2.log" -T fields \
		-e frame.number -e frame.time_relative -e tcp.stream -e tcp.srcport -e tcp.seq \
		-e tcp.len -e tls.record.content_type -e tls.handshake.type -e http.request.uri \
		2>/dev/null | head -n 300
	st_fail "tshark's requests differ from nginx's log"
fi
[ "$(wc -l <"$ST_TMP/tshark.reqs")" -eq 9 ] || st_fail "tshark decrypted $(wc -l <"$ST_TMP/tshark.reqs") requests, not 9"
# and without the keys it sees none
[ -z "$(tshark -r "$ST_TMP/cipher.pcap" -Y http.request 2>/dev/null)" ] || st_fail "plaintext HTTP in the ciphertext capture"
st_log "PASS"
