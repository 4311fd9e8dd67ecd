#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Tap compare of gRPC answers made of real protobuf messages (grpc_shop.py serving
# grpc_shop.proto: GetCart unary, ListCarts server-streaming). Production runs one build; the
# candidate changed one field of one method's answer (GetCart's prices, field 3 of the repeated
# field 2); every answer of every build carries the time it was served (field 5), so that field
# differs in every pair, the reference's too. Two agents compare the same calls at once, each
# against the candidate with production's build as the reference:
#  - without a schema: the one regression is GetCart's $.2[*].3, field 5 ($.5) is noise on both
#    methods, and nothing else differs;
#  - with --proto-descriptor (the FileDescriptorSet protoc writes): the same by name,
#    $.items[*].price and $.served_at_ns, the values shown as prices;
#  - in both, GetCart's pairs are differing and ListCarts' are noise only;
#  - the same traffic captured to a pcap and replayed with --proto-descriptor (production's
#    answers from the pcap, the candidate and the reference live): the same report.
# And --proto-descriptor naming a missing file or one that is not a FileDescriptorSet is a
# usage error (exit 2, one line naming the file).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip bpftool protoc
st_require_py grpc google.protobuf
st_require_agent
"$ST_BIN" shadow --help 2>&1 | grep -q -- '--proto-descriptor' || st_skip "$ST_BIN has no --proto-descriptor"
st_init

SVC=$ST_ROOT/tests/integration/grpc_shop.py
SET=$ST_TMP/shop.pb
ROUNDS=40
protoc -I "$ST_ROOT/tests/integration" --include_imports --descriptor_set_out="$SET" grpc_shop.proto ||
	st_fail "protoc could not write the descriptor set"

# usage errors: exit 2, one line on stderr that names the file
printf 'not a descriptor\n' >"$ST_TMP/bad.pb"
for f in "$ST_TMP/missing.pb" "$ST_TMP/bad.pb"; do
	rc=0
	"$ST_BIN" shadow --iface lo --port 1 --to 127.0.0.1:9 --proto-descriptor "$f" 2>"$ST_TMP/usage.err" || rc=$?
	cat "$ST_TMP/usage.err"
	[ "$rc" -eq 2 ] || st_fail "--proto-descriptor $f: exit $rc, want 2"
	[ "$(wc -l <"$ST_TMP/usage.err")" -eq 1 ] && grep -qF "$f" "$ST_TMP/usage.err" ||
		st_fail "--proto-descriptor $f: not one line naming the file"
done

# shop_start NAME NS ADDR PORT [--candidate]: the service, its log $ST_TMP/NAME.log
shop_start() {
	: >"$ST_TMP/$1.log"
	st_in_bg "$2" "$ST_PY" "$SVC" serve "$3:$4" "$ST_TMP/$1.log" "$SET" "${@:5}" >"$ST_TMP/$1.out" 2>&1 </dev/null &
	ST_PIDS+=("$!")
	st_wait_port "$2" "$4" 20 "pid=$!,"
}

st_netns_pair
shop_start prod "$ST_SRV_NS" "$ST_SRV4" 50061
shop_start cand "$ST_CLI_NS" "$ST_CLI4" 50062 --candidate
shop_start ref "$ST_CLI_NS" "$ST_CLI4" 50063
sh_agent_start num "$ST_SRV_NS" "$ST_SRV_IF" --port 50061 --to "$ST_CLI4:50062" --drain 20 \
	--reference "$ST_CLI4:50063" --report-json "$ST_TMP/num.json"
A_NUM=$SH_AGENT_PID
sh_agent_start named "$ST_SRV_NS" "$ST_SRV_IF" --port 50061 --to "$ST_CLI4:50062" --drain 20 \
	--reference "$ST_CLI4:50063" --proto-descriptor "$SET" --report-json "$ST_TMP/named.json" \
	--report "$ST_TMP/named.html"
A_NAMED=$SH_AGENT_PID
st_capture_start cap "$ST_SRV_NS" "$ST_SRV_IF" "$ST_TMP/prod.pcap" --port 50061
CAP_PID=$ST_AGENT_PID

st_log "traffic: $ROUNDS rounds of GetCart and ListCarts"
st_in "$ST_CLI_NS" timeout 60 "$ST_PY" "$SVC" call "$ST_SRV4:50061" "$SET" 7 "$ROUNDS" ||
	st_fail "the gRPC client failed"
nprod=$(wc -l <"$ST_TMP/prod.log")
[ "$nprod" -eq $((2 * ROUNDS)) ] || st_fail "production logged $nprod calls, want $((2 * ROUNDS))"
# each agent sends every call to the candidate and to the reference
sh_wait_lines "$ST_TMP/cand.log" $((2 * nprod)) 30 || true
sh_wait_lines "$ST_TMP/ref.log" $((2 * nprod)) 30 || true

st_stop "$CAP_PID" INT || st_fail "the capture exited with an error"
for a in num named; do
	[ "$a" = num ] && SH_AGENT_PID=$A_NUM || SH_AGENT_PID=$A_NAMED
	sh_agent_stop "$a"
	st_summary_documented "$SH_SUMMARY" "shadow and replay" "Tap compare" "The tap"
	st_log "$a: compared=$(sh_field compared) differing=$(sh_field differing) noise_only=$(sh_field noise_only)"
	sh_expect compared -eq "$nprod"
	sh_expect differing -eq "$ROUNDS"
	sh_expect noise_only -eq "$ROUNDS"
done

# the pcap replayed: production's answers from it, the candidate's and the reference's live
st_log "replay of the capture with --proto-descriptor"
: >"$ST_TMP/cand.log"
rc=0
st_in "$ST_SRV_NS" "$ST_BIN" replay "$ST_TMP/prod.pcap" --port 50061 --to "$ST_CLI4:50062" \
	--reference "$ST_CLI4:50063" --proto-descriptor "$SET" --report-json "$ST_TMP/replay.json" \
	--drain 10 2>"$ST_TMP/replay.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$ST_TMP/replay.err"; st_fail "replay exited with $rc"; }
SH_SUMMARY=$(st_summary "$ST_TMP/replay.err")
st_summary_documented "$SH_SUMMARY" "shadow and replay" "Tap compare"
st_log "replay: compared=$(sh_field compared) differing=$(sh_field differing) noise_only=$(sh_field noise_only)"
sh_expect compared -eq "$nprod"
sh_expect differing -eq "$ROUNDS"
sh_expect noise_only -eq "$ROUNDS"
[ "$(wc -l <"$ST_TMP/cand.log")" -eq "$nprod" ] || st_fail "the candidate did not get every call once from the replay"

"$ST_PY" - "$ST_TMP/num.json" "$ST_TMP/named.json" "$ST_TMP/replay.json" <<'PY' || st_fail "a report does not name what the candidate changed (above)"
import json, sys

def fields(path):
    rep = json.load(open(path))
    out = {}
    for e in rep["endpoints"]:
        for f in e["fields"]:
            out[(e["endpoint"], f["path"])] = f
    return out

ok = True
for path, price, ts in ((sys.argv[1], "$.2[*].3", "$.5"),
                        (sys.argv[2], "$.items[*].price", "$.served_at_ns"),
                        (sys.argv[3], "$.items[*].price", "$.served_at_ns")):
    f = fields(path)
    print(path.rsplit("/", 1)[-1], sorted((k[0], k[1], v["verdict"], v["raw"], v["noise"])
                                          for k, v in f.items()))
    want = {("POST /shop.Carts/GetCart", price): "regression",
            ("POST /shop.Carts/GetCart", ts): "noise",
            ("POST /shop.Carts/ListCarts", ts): "noise"}
    got = {k: v["verdict"] for k, v in f.items()}
    if got != want:
        print("  want", want)
        ok = False
        continue
    s = f[("POST /shop.Carts/GetCart", price)]["samples"][0]
    print("  sample:", s)
    if price.endswith("price"):
        # named and typed: prices as numbers, the candidate's 10% higher
        p, c = float(s["production"]), float(s["candidate"])
        ok &= abs(c - round(p * 1.1, 2)) < 0.011
    else:
        # by number, no type: a double's bits as an unsigned number
        ok &= int(s["production"]) > 2**62 and s["production"] != s["candidate"]
sys.exit(0 if ok else 1)
PY
grep -qF '$.items[*].price' "$ST_TMP/named.html" || st_fail "the HTML report does not name \$.items[*].price"
st_log "PASS"
