# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The demo's gRPC act, sourced by tools/demo.sh (which owns the stage):
#   grpc  a gRPC service (shop.Carts: tests/integration/grpc_shop.py serving grpc_shop.proto)
#         in production keeps serving; shadowtap replays each call, stream by stream on its own
#         HTTP/2 connections, to a candidate build that changed one field of one method's
#         answer and to a reference (production's build), and compares the protobuf messages
#         field by field, named from the .proto's descriptor set. The verdict is printed.
# Uses demo.sh's helpers (say, step, done_, banner) and stage, and demo-shadow.sh's
# shadow_stage (the shadow namespace).

DEMO_GRPC_PORT=50051

# grpc_py: a python3 that imports grpc and google.protobuf (python3-grpcio), or nothing.
grpc_py() {
	local p
	for p in python3 /usr/bin/python3; do
		command -v "$p" >/dev/null 2>&1 && "$p" -c 'import grpc, google.protobuf' 2>/dev/null &&
			{ command -v "$p"; return 0; }
	done
	return 1
}

act_grpc() {
	local py svc=$ROOT/tests/integration/grpc_shop.py set=$ST_TMP/shop.pb
	local rep=$ST_TMP/grpc-compare.html js=$ST_TMP/grpc-compare.json pid i summary
	banner "act 5: gRPC"
	if ! py=$(grpc_py) || ! command -v protoc >/dev/null; then
		say "  skipped: needs python3-grpcio and protoc (tools/install-deps.sh installs them)"
		return 0
	fi
	say "The same with gRPC: shadowtap frames each HTTP/2 connection (HPACK, streams), replays each"
	say "call on its own HTTP/2 connection to the shadows once production answered it, and compares"
	say "the protobuf messages field by field. With the service's descriptor set fields have names;"
	say "without it, numbers (\$.2[*].3)."
	say ""
	shadow_stage
	step "protoc --include_imports --descriptor_set_out=shop.pb grpc_shop.proto"
	protoc -I "$ROOT/tests/integration" --include_imports --descriptor_set_out="$set" grpc_shop.proto
	done_
	grpc_demo_start() { # NAME NS ADDR:PORT [--candidate]
		st_in_bg "$2" "$py" "$svc" serve "$3" "$ST_TMP/$1.log" "$set" "${@:4}" >"$ST_TMP/$1.out" 2>&1 </dev/null &
		ST_PIDS+=("$!")
		st_wait_port "$2" "${3##*:}" 20 "pid=$!,"
	}
	step "production gRPC service shop.Carts on $ST_SRV4:$DEMO_GRPC_PORT"
	grpc_demo_start grpc-prod "$DEMO_SRV_NS" "$ST_SRV4:$DEMO_GRPC_PORT"
	done_
	step "reference (production's build) on $DEMO_SHADOW_ADDR:50052"
	grpc_demo_start grpc-ref "$DEMO_SHADOW_NS" "$DEMO_SHADOW_ADDR:50052"
	done_
	step "candidate on $DEMO_SHADOW_ADDR:50053 (GetCart's prices changed)"
	grpc_demo_start grpc-cand "$DEMO_SHADOW_NS" "$DEMO_SHADOW_ADDR:50053" --candidate
	done_
	say "${D}\$ shadowtap shadow --iface $DEMO_IF --port $DEMO_GRPC_PORT --to $DEMO_SHADOW_ADDR:50053 --reference $DEMO_SHADOW_ADDR:50052 \\"
	say "      --proto-descriptor shop.pb --report grpc-compare.html${N}"
	step "shadowtap attaches and compares"
	st_in_bg "$DEMO_SRV_NS" "$ST_BIN" shadow --iface "$DEMO_IF" --port "$DEMO_GRPC_PORT" \
		--to "$DEMO_SHADOW_ADDR:50053" --reference "$DEMO_SHADOW_ADDR:50052" \
		--proto-descriptor "$set" --report "$rep" --report-json "$js" --drain 10 \
		--report-interval 1 >"$ST_TMP/grpc-agent.out" 2>"$ST_TMP/grpc-agent.err" </dev/null &
	pid=$!
	ST_PIDS+=("$pid")
	for i in $(seq 1 100); do
		st_agent_attached "$DEMO_SRV_NS" "$DEMO_IF" "$pid" && break
		st_alive "$pid" || { cat "$ST_TMP/grpc-agent.err"; return 1; }
		sleep 0.1
	done
	sleep 0.3
	done_
	step "client: 30 GetCart and 30 ListCarts calls on one channel"
	st_in "$DEMO_CLI_NS" timeout 60 "$py" "$svc" call "$ST_SRV4:$DEMO_GRPC_PORT" "$set" 1 30 >/dev/null
	done_ "60 calls"
	step "stopping shadowtap (the shadows' answers drain first)"
	for i in $(seq 1 50); do
		[ "$(wc -l <"$ST_TMP/grpc-cand.log")" -ge 60 ] && [ "$(wc -l <"$ST_TMP/grpc-ref.log")" -ge 60 ] && break
		sleep 0.1
	done
	sleep 0.5
	st_stop "$pid" INT
	done_
	summary=$(st_summary "$ST_TMP/grpc-agent.err")
	say "  $(grep -oE 'h2_streams=[0-9]+' <<<"$summary") $(grep -oE 'grpc_ok=[0-9]+' <<<"$summary")" \
		"$(grep -oE 'compared=[0-9]+ differing=[0-9]+ noise_only=[0-9]+ not_compared=[0-9]+' <<<"$summary")"
	banner "the gRPC verdict"
	say "  $(grep -m1 '^shadowtap: verdict: ' "$ST_TMP/grpc-agent.err" | sed 's/^shadowtap: //')"
	python3 - "$js" <<'PY'
import json, sys
B, R, G, D, N = ("\033[1m", "\033[31m", "\033[32m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
rep = json.load(open(sys.argv[1]))
for e in rep["endpoints"]:
    regs = [f for f in e["fields"] if f["verdict"] == "regression"]
    noise = [f for f in e["fields"] if f["verdict"] == "noise"]
    mark = f"{R}REGRESSION{N}" if regs else f"{G}ok{N}"
    print(f"  {mark:<20} {B}{e['endpoint']:<30}{N} {e['compared']:>3} compared, {e['differing']:>3} differing,"
          f" {e['noise_only']:>3} noise only")
    for f in regs:
        s = f["samples"][0]
        print(f"      {R}{f['path']}{N} ({f['kind']}): production {s['production']}, reference {s['reference']},"
              f" candidate {s['candidate']}  {D}[candidate differs in {f['raw']}, reference in {f['noise']}]{N}")
    for f in noise:
        print(f"      {D}{f['path']}: noise (the reference differs as often: {f['noise']} of {f['raw']}){N}")
PY
	mkdir -p "$ST_BUILD"
	cp "$rep" "$ST_BUILD/demo-grpc-report.html"
	cp "$js" "$ST_BUILD/demo-grpc-report.json"
	say ""
	say "  the report: ${B}$ST_BUILD/demo-grpc-report.html${N} (and $ST_BUILD/demo-grpc-report.json)"
}
