#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# HTTP/2 shadowed end to end with real servers and clients: production is nginx speaking h2c
# (listen ... http2, prior knowledge), the shadow another nginx h2c that closes every
# connection after 10 requests (keepalive_requests: a GOAWAY, the rest goes again on a new
# connection). Traffic: nghttp (24 concurrent streams on one connection, with its priority
# streams; uploads of 2 MB stored by WebDAV), curl with prior knowledge (a 404, a HEAD; curl
# 7.88 fails its own second stream on a connection: one each), h2load (4
# connections x 10 streams in flight). (nginx takes no request trailers: a GOAWAY with
# PROTOCOL_ERROR; nor an h2c upgrade on an http2 listener: test_shadow_h2diff.sh has both.) Both logs "$request_method $request_uri $status" must hold
# the same lines, each exactly once, and the uploads must be stored whole. The same traffic,
# captured by tcpdump, is then replayed (`replay FILE --multiply 2`) to a third nginx, and, teed
# (`tee --raw`: HTTP/2 is not redacted yet), received (`receive FILE --to`) by a fourth: their
# logs must equal production's too. Last, the capture damaged as a live tap can damage it
# (pcap_cut.py: an h2load connection joined midway, a hole in another's client side) and
# replayed to a fifth: both are counted (h2_joined, h2_gap), the first sends nothing, the
# second nothing after its hole, and nothing arrives that production did not run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl h2load nghttp tcpdump bpftool comm
st_require_py struct
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init

export ST_NGINX_LOG_FORMAT='$request_method $request_uri $status'
export ST_NGINX_LISTEN_OPTS=http2
st_netns_pair
st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
ST_NGINX_KEEPALIVE_REQUESTS=10 st_nginx_start shadow "$ST_CLI_NS" "$ST_CLI4:8080"
st_nginx_start replayed "$ST_CLI_NS" "$ST_CLI4:8081"
st_nginx_start received "$ST_CLI_NS" "$ST_CLI4:8082"
st_nginx_start cut "$ST_CLI_NS" "$ST_CLI4:8083"
st_tcpdump_start cap "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/prod.pcap" "tcp port 80"
st_tee_start tee -o "$ST_TMP/prod.tee" --raw --max-rate 0 --duration 0
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" --no-mark \
	--drain 20

base=http://$ST_SRV4
H2=("${ST_CURL[@]}" --http2-prior-knowledge)
st_log "traffic: nghttp, curl (prior knowledge), uploads, h2load"
urls=()
for i in 1 2; do for s in "${ST_FILE_SIZES[@]}"; do urls+=("$base/f$s?n=$i"); done; done
st_in "$ST_CLI_NS" timeout 20 nghttp -n "${urls[@]}" >/dev/null
head -c 2000000 /dev/urandom >"$ST_TMP/up"
# (nghttp, not curl, uploads: Debian's curl 7.88 ended one of these with "(92) Stream error in
# the HTTP/2 framing layer" against the production nginx itself in a loaded run)
for i in 1 2 3; do
	st_in "$ST_CLI_NS" timeout 20 nghttp -n -d "$ST_TMP/up" -H ':method: PUT' "$base/dav/up$i" \
		>/dev/null
done
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null "$base/missing?404"
st_in "$ST_CLI_NS" "${H2[@]}" -o /dev/null -I "$base/f100?head"
st_in "$ST_CLI_NS" timeout 20 nghttp -n -d "$ST_TMP/up" -H ':method: PUT' "$base/dav/nghttp" \
	>/dev/null
st_in "$ST_CLI_NS" timeout 30 h2load -n 400 -c 4 -m 10 "$base/f100?h2load" | grep -E '^requests:'

nprod=$(wc -l <"$ST_TMP/prod/access.log")
sh_wait_lines "$ST_TMP/shadow/access.log" "$nprod" 30 || true
sh_agent_stop agent
st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee.err"; st_fail "tee exited with an error"; }
st_tcpdump_stop "$ST_TCPDUMP_PID" cap
nsh=$(wc -l <"$ST_TMP/shadow/access.log")
st_log "production logged $nprod requests, the shadow $nsh; h2=$(sh_field h2) h2_streams=$(sh_field h2_streams) resent=$(sh_field resent) h2_goaways=$(sh_field h2_goaways)"
sh_expect h2 -ge 10
sh_expect h2_streams -eq "$nprod"
sh_expect replayed -eq "$nprod"
sh_expect dropped -eq 0
sh_expect h2_goaways -gt 0
sh_expect resent -gt 0
sh_expect bad_responses -eq 0
diff <(sort "$ST_TMP/prod/access.log") <(sort "$ST_TMP/shadow/access.log") >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 20 "$ST_TMP/diff"; st_fail "the shadow nginx's log differs from production's"; }
for f in up1 up2 up3 nghttp; do
	cmp -s "$ST_TMP/up" "$ST_TMP/shadow/www/dav/$f" || st_fail "upload $f not stored whole by the shadow"
done

st_log "replay of the capture to a third nginx"
st_in "$ST_CLI_NS" "$ST_BIN" replay "$ST_TMP/prod.pcap" --port 80 --to "$ST_CLI4:8081" --fast \
	--multiply 2 --no-mark 2>"$ST_TMP/replay.err" || { cat "$ST_TMP/replay.err"; st_fail "replay failed"; }
SH_SUMMARY=$(st_summary "$ST_TMP/replay.err")
st_log "replay --multiply 2: replayed=$(sh_field replayed) h2=$(sh_field h2)"
sh_expect replayed -eq $((2 * nprod))
sh_expect dropped -eq 0
# (each PUT twice: the second overwrites, 204: method and target only)
diff <(cut -d' ' -f1,2 "$ST_TMP/prod/access.log" "$ST_TMP/prod/access.log" | sort) \
	<(cut -d' ' -f1,2 "$ST_TMP/replayed/access.log" | sort) >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 20 "$ST_TMP/diff"; st_fail "the replayed nginx's log differs from production's"; }
cmp -s "$ST_TMP/up" "$ST_TMP/replayed/www/dav/up2" || st_fail "upload not stored whole by the replay"

st_log "receive of the tee stream to a fourth nginx, at the captured pace"
st_in "$ST_CLI_NS" "$ST_BIN" receive "$ST_TMP/prod.tee" --to "$ST_CLI4:8082" \
	2>"$ST_TMP/receive.err" || { cat "$ST_TMP/receive.err"; st_fail "receive failed"; }
SH_SUMMARY=$(st_summary "$ST_TMP/receive.err")
st_log "receive: replayed=$(sh_field replayed) h2=$(sh_field h2)"
sh_expect replayed -eq "$nprod"
sh_expect dropped -eq 0
# receive marks its requests (X-Shadowtap: 1): nginx's log does not show fields
diff <(sort "$ST_TMP/prod/access.log") <(sort "$ST_TMP/received/access.log") >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 20 "$ST_TMP/diff"; st_fail "the received nginx's log differs from production's"; }
cmp -s "$ST_TMP/up" "$ST_TMP/received/www/dav/up3" || st_fail "upload not stored whole by receive --to"

st_log "receive --print: one line per stream"
"$ST_BIN" receive "$ST_TMP/prod.tee" --print >"$ST_TMP/print.out" 2>"$ST_TMP/print.err" ||
	{ cat "$ST_TMP/print.err"; st_fail "receive --print failed"; }
# time client method target status request-bytes response-bytes latency
diff <(awk '!/^#/ { print $3, $4, $5 }' "$ST_TMP/print.out" | sort) <(sort "$ST_TMP/prod/access.log") \
	>"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 10 "$ST_TMP/diff"; st_fail "receive --print's streams differ from production's log"; }
[ "$(awk '$3 == "PUT" && $6 == 2000000' "$ST_TMP/print.out" | wc -l)" -eq 4 ] ||
	st_fail "receive --print: the four 2 MB uploads are not 2000000 request bytes"
grep -q ' /f5242880?n=1 200 0 5242880 [0-9.]*ms$' "$ST_TMP/print.out" ||
	st_fail "receive --print: no line for the 5 MB download with its size and latency"
st_log "a capture damaged: a connection joined midway, a hole in another"
"$ST_PY" "$ST_ROOT/tests/integration/pcap_cut.py" "$ST_TMP/prod.pcap" "$ST_TMP/cut.pcap" 80 7 8 ||
	st_fail "pcap_cut.py could not damage the capture"
st_in "$ST_CLI_NS" "$ST_BIN" replay "$ST_TMP/cut.pcap" --port 80 --to "$ST_CLI4:8083" --fast \
	--no-mark 2>"$ST_TMP/cut.err" || { cat "$ST_TMP/cut.err"; st_fail "replay of the damaged capture failed"; }
SH_SUMMARY=$(st_summary "$ST_TMP/cut.err")
st_log "damaged: replayed=$(sh_field replayed) h2_joined=$(sh_field h2_joined) h2_gap=$(sh_field h2_gap)"
sh_expect h2_joined -eq 1
sh_expect h2_gap -eq 1
sh_expect h2_errors -eq 0
sh_expect dropped -eq 0
sh_expect replayed -lt $((nprod - 100))
[ "$(wc -l <"$ST_TMP/cut/access.log")" -eq "$(sh_field replayed)" ] ||
	st_fail "the fifth nginx logged $(wc -l <"$ST_TMP/cut/access.log") requests, replayed=$(sh_field replayed)"
extra=$(comm -13 <(sort "$ST_TMP/prod/access.log") <(sort "$ST_TMP/cut/access.log"))
[ -z "$extra" ] || { echo "$extra" | head; st_fail "the damaged capture's replay ran requests production did not"; }
st_log "PASS"
