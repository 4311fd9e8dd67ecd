#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Nothing a stranger sends stops `receive --listen` nor keeps the tee out (agent/stream/
# linklisten.h, docs/TEE.md "The link"). A receiver over TLS 1.3 gets, before its first tee
# stream and again after that stream was cut (the tee killed: the receiver waits for it):
#   a TCP open and reset, `GET / HTTP/1.0`, a TLS client with a self-signed certificate, one
#   with a certificate of another CA, one with none, and an idle socket that holds its
#   handshake;
# each time it goes on, and the real tee gets in with the idle socket still open (handshakes
# never block the loop); the idle socket is refused after 10 s; the second tee gets in
# through a flood of 100 idle sockets from 100 addresses (the bounds crowd the oldest out).
# Each refusal reason is said once, every refusal counted (rejected_peers and its reason in
# the summary); with --once the receiver ends at the tee's END_STREAM, exit 0.
# A plaintext receiver (--insecure): an idle socket and an HTTP client do not take the tee's
# place (a peer is a tee once its stream's preamble came).
# Without --once the receiver outlives a tee's whole stream: it says so and takes the next
# tee's stream into the same outputs, until SIGTERM (exit 0, streams=2, no lost link).
. "$(dirname "$0")/lib.sh"
st_require_root
st_require_cmds ip nginx curl python3 bpftool openssl
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
st_init

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
base=http://$ST_SRV4
C=$ST_TMP/certs
st_tee_certs "$C"
mkdir -p "$C/self"
st_tls_cert "$C/self"
S=$ST_ROOT/tests/integration/link_stranger.py
RX=$ST_TMP/rx.err

stranger() { st_in "$ST_SRV_NS" timeout 20 python3 "$S" "$@" || st_fail "stranger $*: $?"; }
alive() { st_alive "$LRX" || { cat "$RX"; st_fail "receive --listen ended after: $1"; }; }
# strangers PORT: each kind in turn; the receiver is still there after each
strangers() {
	stranger rst "$1"
	alive "a TCP reset"
	stranger http "$1"
	alive "GET / HTTP/1.0"
	stranger tls "$1" "$C/self/cert.pem" "$C/self/key.pem"
	alive "a self-signed client certificate"
	stranger tls "$1" "$C/rogue.pem" "$C/rogue.key"
	alive "a client certificate of another CA"
	stranger tls "$1"
	alive "a TLS client without a certificate"
}
traffic() { # PATH: one exchange, and its --print line
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base$1"
	st_wait_log "$ST_TMP/rx.print" " GET ${1//\?/\\?} 200 " 10
}
# the_end TEE_NAME: stops the tee (its END_STREAM ends the receiver), waits for the receiver's
# exit 0; its summary in sum (f KEY reads a field)
the_end() {
	local rc=0
	st_stop "$TEE_PID" INT || { cat "$ST_TMP/$1.err"; st_fail "tee $1 exited with an error"; }
	for _ in $(seq 1 100); do st_alive "$LRX" || break; sleep 0.1; done
	wait "$LRX" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$RX"; st_fail "receive --listen exited with $rc"; }
	sum=$(st_summary "$RX")
	st_summary_documented "$sum" receive
	echo "  $sum"
}
f() { st_summary_field "$sum" "$1"; }
tee_start() { # NAME
	st_tee_start "$1" --to 127.0.0.1:7801 --cert "$C/tx.pem" --key "$C/tx.key" --ca "$C/ca.pem" \
		--duration 0
}

st_log "receive --listen over TLS: strangers before the first stream"
st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen 127.0.0.1:7801 --cert "$C/rx.pem" --key "$C/rx.key" \
	--ca "$C/ca.pem" --once --print >"$ST_TMP/rx.print" 2>"$RX" </dev/null &
LRX=$!
ST_PIDS+=("$LRX")
st_wait_port "$ST_SRV_NS" 7801 10 "pid=$LRX,"
strangers 7801
st_bg idle1 st_in_bg "$ST_SRV_NS" python3 "$S" idle 7801 1 1
st_wait_log "$ST_TMP/idle1.log" '^held 1' 10
T0=$(date +%s)
alive "an idle socket"

st_log "the tee gets in while the idle socket holds its handshake"
tee_start tee1
traffic "/f4096?first"
st_log "the idle socket is refused 10 s after it connected ($(($(date +%s) - T0)) s ago)"
st_wait_log "$RX" 'refused 127\.0\.0\.1:[0-9]+: no TLS handshake within 10 s' 15
alive "the idle socket's timeout"

st_log "the stream is cut (the tee killed): the receiver waits for it; strangers again"
kill -KILL "$TEE_PID"
wait "$TEE_PID" 2>/dev/null || true
st_wait_log "$RX" 'waiting for the tee to reconnect' 10
strangers 7801
st_bg idle2 st_in_bg "$ST_SRV_NS" python3 "$S" idle 7801 1 1
st_wait_log "$ST_TMP/idle2.log" '^held 1' 10
st_log "a flood: 100 idle sockets from 127.0.0.10 .. 127.0.0.109"
st_bg flood st_in_bg "$ST_SRV_NS" python3 "$S" idle 7801 100 10
st_wait_log "$ST_TMP/flood.log" '^held 100' 20
st_wait_log "$RX" 'crowded out by newer connections' 10
alive "a flood of idle sockets"

st_log "the tee gets in again through the flood"
tee_start tee2
traffic "/f1?second"
the_end tee2
[ "$(f streams)" = 2 ] && [ "$(f link_losses)" = 1 ] || st_fail "expected 2 streams and one lost link"
[ "$(f exchanges)" = 2 ] || { cat "$ST_TMP/rx.print"; st_fail "expected 2 exchanges printed"; }
# each stranger twice; the GET is refused by the TLS handshake (not TLS)
[ "$(f rejected_closed)" -ge 2 ] && [ "$(f rejected_handshake)" -ge 2 ] && [ "$(f rejected_cert)" -ge 6 ] &&
	[ "$(f rejected_timeout)" -ge 1 ] && [ "$(f rejected_crowded)" -ge 36 ] ||
	st_fail "refusals not counted by reason"
[ "$(f rejected_peers)" -ge 47 ] || st_fail "rejected_peers=$(f rejected_peers), want at least 47"
[ "$(f handshakes_peak)" -le 64 ] || st_fail "more than 64 handshakes at once"
# one line per reason, not per peer
n=$(grep -c ': refused ' "$RX")
[ "$n" -le 7 ] || { cat "$RX"; st_fail "$n refusal lines: each reason is said once"; }
grep -E ': refused ' "$RX" | sed 's/^/  /'

st_log "receive --listen --insecure: an idle socket and an HTTP client do not take the tee's place"
st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen 127.0.0.1:7802 --insecure --once --print \
	>"$ST_TMP/plain.print" 2>"$ST_TMP/plain.err" </dev/null &
LRX=$!
ST_PIDS+=("$LRX")
RX=$ST_TMP/plain.err
st_wait_port "$ST_SRV_NS" 7802 10 "pid=$LRX,"
st_bg idle3 st_in_bg "$ST_SRV_NS" python3 "$S" idle 7802 1 2
st_wait_log "$ST_TMP/idle3.log" '^held 1' 10
stranger http 7802
alive "GET / HTTP/1.0 in plaintext"
st_tee_start plaintee --to 127.0.0.1:7802 --insecure --duration 0
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f100?plain"
st_wait_log "$ST_TMP/plain.print" ' GET /f100\?plain 200 ' 10
the_end plaintee
[ "$(f streams)" = 1 ] && [ "$(f link_losses)" = 0 ] && [ "$(f rejected_not_tee)" = 1 ] ||
	{ cat "$RX"; st_fail "plaintext: the HTTP client was not refused as not a tee"; }

st_log "receive --listen without --once: one tee's whole stream, then the next tee's"
RX=$ST_TMP/keep.err
st_in_bg "$ST_SRV_NS" "$ST_BIN" receive --listen 127.0.0.1:7803 --insecure --print \
	>"$ST_TMP/rx.print" 2>"$RX" </dev/null &
LRX=$!
ST_PIDS+=("$LRX")
# its start line comes once it listens: what a script waits for
st_wait_log "$RX" '^shadowtap: receive running: tees on 127\.0\.0\.1:7803 \(plaintext\) -> --print on stdout; Ctrl-C or SIGTERM stops it$' 10
st_wait_port "$ST_SRV_NS" 7803 1 "pid=$LRX,"
for n in 1 2; do
	st_tee_start keep$n --to 127.0.0.1:7803 --insecure --duration 0
	traffic "/f100?session-$n"
	st_stop "$TEE_PID" INT || { cat "$ST_TMP/keep$n.err"; st_fail "tee keep$n exited with an error"; }
	st_wait_log "$RX" "the tee's stream ended whole \(END_STREAM\); listening for the next tee" 10
	[ "$(grep -c "stream ended whole" "$RX")" -eq "$n" ] || { cat "$RX"; st_fail "stream $n: not said once"; }
	alive "the end of tee stream $n"
done
st_stop "$LRX" TERM || { cat "$RX"; st_fail "receive --listen did not exit 0 on SIGTERM"; }
sum=$(st_summary "$RX")
echo "  $sum"
[ "$(f streams)" = 2 ] && [ "$(f link_losses)" = 0 ] && [ "$(f exchanges)" = 2 ] ||
	{ cat "$RX"; st_fail "expected 2 whole streams, no lost link, 2 exchanges"; }
grep -q 'the tee is back' "$RX" && st_fail "a whole stream's successor was taken for a reconnect"
st_log "PASS"
