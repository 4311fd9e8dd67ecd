#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The differential request-smuggling test (issue #11): production nginx on a veth, shadowtap
# shadowing it to a second nginx and to a recording sink. Each shape of smuggle.py goes on
# its own client connection: a request with another one ("GET /SMUG-N") inside its body, then
# a normal one. Per shape, the shadows must have received exactly the requests production
# ran on that connection, or nothing of it, and the two shadows must agree.
#
#   ST_SMUGGLE_RANDOM=N ST_SMUGGLE_SEED=S   add N random shapes (make fuzz runs many)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx python3 bpftool
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

RANDOM_N=${ST_SMUGGLE_RANDOM:-40}
SEED=${ST_SMUGGLE_SEED:-1}
GEN=$ST_ROOT/tests/integration/smuggle.py
st_log "shapes: $(python3 "$GEN" list --random "$RANDOM_N" --seed "$SEED" | wc -l) (random: $RANDOM_N, seed $SEED)"

# nginx answering 200 to everything (bodies read and discarded), one log line per request:
# "$connection $connection_requests $status "$request"".
export ST_NGINX_EVERYTHING_OK=1 ST_NGINX_KEEPALIVE_REQUESTS=1000
export ST_NGINX_LOG_FORMAT='$connection $connection_requests $status "$request"'

st_netns_pair
st_nginx_start prod "$ST_SRV_NS" "$ST_SRV4:80"
st_nginx_start shadow "$ST_CLI_NS" "$ST_CLI4:8080"
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 8081
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" \
	--to "$ST_CLI4:8081" --no-mark --drain 5

st_log "sending every shape on its own connection"
st_in "$ST_CLI_NS" python3 "$GEN" send "$ST_SRV4" 80 --random "$RANDOM_N" --seed "$SEED" \
	--jobs 24 >"$ST_TMP/answers.txt"
sleep 1
sh_agent_stop agent
st_log "production logged $(wc -l <"$ST_TMP/prod/access.log") requests, the shadow nginx" \
	"$(wc -l <"$ST_TMP/shadow/access.log"), the sink $(wc -l <"$ST_TMP/sink.log")"
st_log "summary: malformed=$(sh_field malformed) prod_rejected=$(sh_field prod_rejected)" \
	"stopped_conns=$(sh_field stopped_conns) replayed=$(sh_field replayed)"
if ! python3 "$GEN" check "$ST_TMP/prod/access.log" "$ST_TMP/shadow/access.log" \
	"$ST_TMP/sink.log" --random "$RANDOM_N" --seed "$SEED" >"$ST_TMP/verdict.txt"; then
	cat "$ST_TMP/verdict.txt"
	st_fail "the shadow ran requests production did not (seed $SEED)"
fi
tail -n1 "$ST_TMP/verdict.txt"
# The differential must have teeth: some shapes are replayed, some refused by both sides.
equal=$(sed -nE 's/.* equal=([0-9]+).*/\1/p' "$ST_TMP/verdict.txt")
[ "${equal:-0}" -ge 8 ] || st_fail "only ${equal:-0} shapes reached the shadow: the test proves nothing"
sh_expect malformed -gt 10
sh_expect resyncs -eq 0
st_log "PASS"
