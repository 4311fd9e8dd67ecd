#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Raw mode with a real server from Debian: production redis-server in the server namespace,
# driven by redis-benchmark (pipelined) and redis-cli; shadowed with --proto raw to two
# targets at once: a second redis-server on the same port in the client namespace, and a sink
# recording the bytes of each connection. The sink must hold exactly the client->server streams
# tcpflow reassembles from tcpdump's capture, and the shadow redis must end with the same data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip redis-server redis-cli redis-benchmark tcpdump tcpflow bpftool python3
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

st_netns_pair
redis() { # NAME NS ADDR
	st_bg "$1" st_in_bg "$2" redis-server --port 6379 --bind "$3" --save '' --appendonly no \
		--protected-mode no --dir "$ST_TMP"
	st_wait_port "$2" 6379 10 "pid=$ST_LAST_PID,"
}
redis prod "$ST_SRV_NS" "$ST_SRV4"
redis shadow "$ST_CLI_NS" "$ST_CLI4"
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 7000 --mode raw
# Production's connections only (the agent's own go from the same host to port 6379 too).
st_tcpdump_start rec "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/rec.pcap" \
	"tcp and ((dst host $ST_SRV4 and dst port 6379) or (src host $ST_SRV4 and src port 6379))"
sh_agent_start agent "$ST_SRV_NS" "$ST_SRV_IF" --port 6379 --proto raw --to "$ST_CLI4:6379" \
	--to "$ST_CLI4:7000" --drain 10

st_log "traffic: redis-cli and redis-benchmark (1 client, pipeline 16)"
st_in "$ST_CLI_NS" redis-cli -h "$ST_SRV4" SET greeting "hello shadow" >/dev/null
# a 270 KB value: one command over many segments (from stdin: argv would be too long)
head -c 200000 /dev/urandom | base64 -w0 >"$ST_TMP/big.txt"
st_in "$ST_CLI_NS" redis-cli -h "$ST_SRV4" -x RPUSH biglist <"$ST_TMP/big.txt" >/dev/null
st_in "$ST_CLI_NS" timeout 60 redis-benchmark -h "$ST_SRV4" -c 1 -n 20000 -r 5000 -P 16 -q -t set,incr,lpush >/dev/null
st_in "$ST_CLI_NS" timeout 60 redis-benchmark -h "$ST_SRV4" -c 4 -n 4000 -q -t get >/dev/null
sleep 1
sh_agent_stop agent
st_stop "$ST_TCPDUMP_PID" INT || true
sh_expect errors -eq 0
sh_expect dropped -eq 0
sh_expect raw_closed -eq 0
sh_expect gap_bytes -eq 0

st_tcpflow "$ST_TMP/rec.pcap" "$ST_TMP/flows"
want=$(for f in "$ST_TMP"/flows/*; do case $f in *-*.06379) [ -s "$f" ] && sha256sum <"$f" | cut -d' ' -f1 ;; esac; done | sort)
got=$(for f in "$ST_TMP"/sink.log.*; do [ -s "$f" ] && sha256sum <"$f" | cut -d' ' -f1; done | sort)
nw=$(grep -c . <<<"$want" || true)
st_log "client streams: $nw recorded by tcpdump, $(grep -c . <<<"$got" || true) received by the sink"
[ "$nw" -gt 2 ] || st_fail "tcpflow found only $nw client streams"
[ "$want" = "$got" ] || st_fail "the sink's byte streams differ from production's client streams"

pdb=$(st_in "$ST_SRV_NS" redis-cli -h "$ST_SRV4" DBSIZE)
sdb=$(st_in "$ST_CLI_NS" redis-cli -h "$ST_CLI4" DBSIZE)
st_log "keys: production $pdb, shadow $sdb"
[ "$pdb" = "$sdb" ] && [ "$pdb" -gt 2 ] || st_fail "DBSIZE differs: production $pdb, shadow $sdb"
for k in greeting counter:__rand_int__; do
	[ "$(st_in "$ST_SRV_NS" redis-cli -h "$ST_SRV4" GET "$k")" = "$(st_in "$ST_CLI_NS" redis-cli -h "$ST_CLI4" GET "$k")" ] ||
		st_fail "key $k differs"
done
[ "$(st_in "$ST_SRV_NS" redis-cli -h "$ST_SRV4" LRANGE biglist 0 -1 | sha256sum)" = \
  "$(st_in "$ST_CLI_NS" redis-cli -h "$ST_CLI4" LRANGE biglist 0 -1 | sha256sum)" ] || st_fail "biglist differs"
[ "$(st_in "$ST_SRV_NS" redis-cli -h "$ST_SRV4" LLEN mylist)" = "$(st_in "$ST_CLI_NS" redis-cli -h "$ST_CLI4" LLEN mylist)" ] ||
	st_fail "mylist length differs"
st_log "PASS"
