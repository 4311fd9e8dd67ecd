#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# gRPC shadowed: production and the shadows are the same gRPC service written for the tests
# (grpc_svc.py, python3-grpcio: unary, server-, client- and bidi-streaming methods, one that
# answers NOT_FOUND, gzip-compressed messages both ways), each logging every call with its
# request messages. The client makes 150 calls over two channels (two HTTP/2 connections).
#  - `shadow --to A`: A's log equals production's, call for call, messages exact; the calls are
#    counted by the shadow's gRPC status (grpc_ok, grpc_not_found);
#  - `shadow --safe-only --match-path '^/shop\.Cart/(Get|List)$' --to B` at the same time: B
#    gets exactly production's Get and List calls (--safe-only takes a gRPC call only where
#    --match-path names its method), the others are filtered;
#  - tap compare, at the same time, against a candidate that answers Get differently and Fail
#    with INTERNAL (and a reference running production's build): the report names the
#    message of Get ("$": its bytes are not protobuf, so the message is compared whole) and
#    Fail's trailers.grpc-status and trailers.grpc-message as regressions, and nothing else;
#  - `tee --raw` meanwhile, then `receive --print`: one line per call, with its grpc-status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip bpftool
st_require_py grpc
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q 'auto|http|raw|h2' || st_skip "$ST_BIN has no HTTP/2 shadowing"
st_init

SVC=$ST_ROOT/tests/integration/grpc_svc.py
# grpc_start NAME NS ADDR PORT [--candidate]: the service, its log $ST_TMP/NAME.log
grpc_start() {
	: >"$ST_TMP/$1.log"
	st_in_bg "$2" "$ST_PY" "$SVC" serve "$3:$4" "$ST_TMP/$1.log" "${@:5}" >"$ST_TMP/$1.out" 2>&1 </dev/null &
	ST_PIDS+=("$!")
	st_wait_port "$2" "$4" 20 "pid=$!,"
}

st_netns_pair
grpc_start prod "$ST_SRV_NS" "$ST_SRV4" 50051
grpc_start shadow "$ST_CLI_NS" "$ST_CLI4" 50052
grpc_start safe "$ST_CLI_NS" "$ST_CLI4" 50053
grpc_start cand "$ST_CLI_NS" "$ST_CLI4" 50054 --candidate
grpc_start ref "$ST_CLI_NS" "$ST_CLI4" 50055
sh_agent_start all "$ST_SRV_NS" "$ST_SRV_IF" --port 50051 --to "$ST_CLI4:50052" --drain 20
A_ALL=$SH_AGENT_PID
sh_agent_start safe "$ST_SRV_NS" "$ST_SRV_IF" --port 50051 --to "$ST_CLI4:50053" --drain 20 \
	--safe-only --match-path '^/shop\.Cart/(Get|List)$'
A_SAFE=$SH_AGENT_PID
sh_agent_start cmp "$ST_SRV_NS" "$ST_SRV_IF" --port 50051 --to "$ST_CLI4:50054" --drain 20 \
	--reference "$ST_CLI4:50055" --report-json "$ST_TMP/report.json" --diffs "$ST_TMP/diffs.jsonl"
A_CMP=$SH_AGENT_PID
st_tee_start tee -o "$ST_TMP/grpc.tee" --raw --max-rate 0 --duration 0 --port 50051

st_log "traffic: 150 gRPC calls of five kinds"
st_in "$ST_CLI_NS" timeout 60 "$ST_PY" "$SVC" call "$ST_SRV4:50051" 7 30 || st_fail "the gRPC client failed"
nprod=$(wc -l <"$ST_TMP/prod.log")
[ "$nprod" -eq 150 ] || st_fail "production logged $nprod calls, want 150"
grep -E '^(Get|List)	' "$ST_TMP/prod.log" | sort >"$ST_TMP/prod-safe"
sh_wait_lines "$ST_TMP/shadow.log" "$nprod" 30 || true
sh_wait_lines "$ST_TMP/safe.log" "$(wc -l <"$ST_TMP/prod-safe")" 30 || true
sh_wait_lines "$ST_TMP/cand.log" "$nprod" 30 || true
sh_wait_lines "$ST_TMP/ref.log" "$nprod" 30 || true

st_stop "$TEE_PID" INT || { cat "$ST_TMP/tee.err"; st_fail "tee exited with an error"; }
"$ST_BIN" receive "$ST_TMP/grpc.tee" --print >"$ST_TMP/print.out" 2>"$ST_TMP/print.err" ||
	{ cat "$ST_TMP/print.err"; st_fail "receive --print failed"; }
# time client method target status[/grpc-status] request-bytes response-bytes latency
[ "$(awk '$3 == "POST" && $5 == "200/0"' "$ST_TMP/print.out" | wc -l)" -eq 120 ] ||
	{ head -n 5 "$ST_TMP/print.out"; st_fail "receive --print: not 120 calls with grpc-status 0"; }
[ "$(awk '$4 == "/shop.Cart/Fail" && $5 == "200/5"' "$ST_TMP/print.out" | wc -l)" -eq 30 ] ||
	st_fail "receive --print: not 30 Fail calls with grpc-status 5 (NOT_FOUND)"

SH_AGENT_PID=$A_CMP
sh_agent_stop cmp
st_log "compare: compared=$(sh_field compared) differing=$(sh_field differing)"
sh_expect compared -eq 150
sh_expect differing -eq 60
"$ST_PY" - "$ST_TMP/report.json" "$ST_TMP/diffs.jsonl" <<'PY' || st_fail "the report does not name what the candidate changed (above)"
import json, sys
rep = json.load(open(sys.argv[1]))
regs = sorted((e["endpoint"], f["path"]) for e in rep["endpoints"] for f in e["fields"]
              if f["verdict"] == "regression")
want = [("POST /shop.Cart/Fail", "trailers.grpc-message"), ("POST /shop.Cart/Fail", "trailers.grpc-status"),
        ("POST /shop.Cart/Get", "$")]
print("regressions:", regs)
other = [(e["endpoint"], f["path"], f["verdict"]) for e in rep["endpoints"] for f in e["fields"]
         if f["verdict"] != "regression"]
if other:
    print("other fields:", other)
s = [f for e in rep["endpoints"] for f in e["fields"] if f["path"] == "trailers.grpc-status"][0]["samples"][0]
print("sample:", s)
sys.exit(0 if regs == want and not other and (s["production"], s["candidate"]) == ("5", "13") else 1)
PY

SH_AGENT_PID=$A_SAFE
sh_agent_stop safe
sh_expect h2 -eq 2
sh_expect replayed -eq 60
sh_expect filtered -eq 90
sh_expect dropped -eq 0
sh_expect grpc_ok -eq 60
diff "$ST_TMP/prod-safe" <(sort "$ST_TMP/safe.log") >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 10 "$ST_TMP/diff"; st_fail "the --safe-only shadow's calls differ from production's Get and List"; }

SH_AGENT_PID=$A_ALL
sh_agent_stop all
st_log "production: $nprod calls, the shadow $(wc -l <"$ST_TMP/shadow.log"); $(sh_field grpc_ok) OK, $(sh_field grpc_not_found) NOT_FOUND"
sh_expect h2 -eq 2
sh_expect h2_streams -eq 150
sh_expect replayed -eq 150
sh_expect responses -eq 150
sh_expect dropped -eq 0
sh_expect grpc_ok -eq 120
sh_expect grpc_not_found -eq 30
diff <(sort "$ST_TMP/prod.log") <(sort "$ST_TMP/shadow.log") >"$ST_TMP/diff" || true
[ -s "$ST_TMP/diff" ] && { head -n 10 "$ST_TMP/diff"; st_fail "the shadow's calls differ from production's"; }
st_log "PASS"
