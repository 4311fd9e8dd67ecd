# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The demo's shadowing acts, sourced by tools/demo.sh (which owns the stage):
#   shadow  production keeps serving while shadowtap replays every request to a shadow
#           server in its own namespace; a table shows the shadow got what production did.
#   replay  the pcap of act 1 replayed to the same shadow, twice over (--fast --multiply 2).
# Uses demo.sh's helpers (say, step, done_, banner, client_traffic) and stage (DEMO_*, ST_*).

DEMO_SINK=$ROOT/tests/integration/shadow_sink.py
DEMO_SHADOW_ADDR=10.231.1.2
DEMO_SHADOW_PORT=8080

# shadow_stage: namespace "shadow" joined to prod by its own veth; the recording shadow server.
shadow_stage() {
	[ -n "${DEMO_SHADOW_NS:-}" ] && return 0
	st_netns_single shadow
	DEMO_SHADOW_NS=$ST_LAST_NS
	step "namespace $DEMO_SHADOW_NS, veth to prod ($DEMO_SHADOW_ADDR)"
	ip link add st-shd netns "$DEMO_SRV_NS" type veth peer name st-shd-p netns "$DEMO_SHADOW_NS"
	ip -n "$DEMO_SRV_NS" addr add 10.231.1.1/24 dev st-shd
	ip -n "$DEMO_SHADOW_NS" addr add "$DEMO_SHADOW_ADDR/24" dev st-shd-p
	ip -n "$DEMO_SRV_NS" link set st-shd up
	ip -n "$DEMO_SHADOW_NS" link set st-shd-p up
	done_
	step "shadow server on $DEMO_SHADOW_ADDR:$DEMO_SHADOW_PORT (records each request)"
	DEMO_SHADOW_LOG=$ST_TMP/shadow-requests.log
	: >"$DEMO_SHADOW_LOG"
	st_in_bg "$DEMO_SHADOW_NS" python3 "$DEMO_SINK" "$DEMO_SHADOW_PORT" "$DEMO_SHADOW_LOG" \
		--addr "$DEMO_SHADOW_ADDR" >"$ST_TMP/shadow-server.out" 2>&1 </dev/null &
	ST_PIDS+=("$!")
	st_wait_port "$DEMO_SHADOW_NS" "$DEMO_SHADOW_PORT" 10
	done_
}

# shadow_table PROD_LOG FROM_LINE SHADOW_LOG UPLOAD_DIR: production vs shadow, at a glance.
shadow_table() {
	python3 - "$@" <<'PY'
import collections, hashlib, os, re, sys
prod_log, start, shadow_log, up = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
B, D, G, R, N = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
prod = []
for i, line in enumerate(open(prod_log)):
    m = re.search(r'"([A-Z]+) (\S+) HTTP/1\.[01]" (\d+)', line)
    if i >= start and m:
        prod.append((m.group(1), m.group(2), m.group(3)))
shadow = [l.rstrip("\n").split("\t") for l in open(shadow_log) if l.strip()]
sums = {}
for f in os.listdir(up):
    sums[hashlib.sha256(open(os.path.join(up, f), "rb").read()).hexdigest()] = f
pc = collections.Counter((m, u) for m, u, _ in prod)
sc = collections.Counter((r[2], r[3]) for r in shadow)
print(f"  {B}{'request':<34} {'production':>10}  {'shadow':>8}  {'shadow body':<26}{N}")
rows, seen = [], set()
for m, u, st in prod:
    if (m, u) in seen:
        continue
    seen.add((m, u))
    bodies = [r for r in shadow if r[2] == m and r[3] == u]
    body = ", ".join(f"{int(b[4]):,} B" + (f" = {sums[b[5]]} {G}✓{N}" if b[5] in sums else f" {R}?{N}")
                     for b in bodies[:3] if int(b[4])) or "-"
    ok = G if sc[(m, u)] == pc[(m, u)] else R
    rows.append(f"  {m + ' ' + u:<34} {pc[(m, u)]:>10}  {ok}{sc[(m, u)]:>8}{N}  {body}")
for r in rows[:22]:
    print(r)
if len(rows) > 22:
    print(f"  {D}... {len(rows) - 22} more distinct requests{N}")
tot_p, tot_s = sum(pc.values()), sum(sc.values())
same = pc == sc
print()
print(f"  production served {B}{tot_p}{N} requests, the shadow received {B}{tot_s}{N}: "
      + (f"{G}the same requests, each exactly once{N}" if same else f"{R}they differ{N}"))
marked = sum(1 for r in shadow if r[6] == "1")
print(f"  {marked} of {len(shadow)} shadow requests carry the marker header X-Shadowtap: 1")
PY
}

act_shadow() {
	banner "act 2: shadow"
	say "A new build of the service runs as a ${B}shadow${N} in its own namespace. shadowtap replays every"
	say "production request to it: same requests, same order per connection, bodies whole;"
	say "the shadow's answers are read and discarded. Production does not wait for the shadow."
	say ""
	shadow_stage
	say "${D}\$ ip netns exec $DEMO_SRV_NS shadowtap shadow --iface $DEMO_IF --port 80 --to $DEMO_SHADOW_ADDR:$DEMO_SHADOW_PORT${N}"
	step "shadowtap attaches to $DEMO_IF and connects to the shadow on demand"
	local from i
	from=$(wc -l <"$DEMO_ACCESS_LOG")
	st_in_bg "$DEMO_SRV_NS" "$ST_BIN" shadow --iface "$DEMO_IF" --port 80 \
		--to "$DEMO_SHADOW_ADDR:$DEMO_SHADOW_PORT" --drain 10 \
		>"$ST_TMP/shadow-agent.out" 2>"$ST_TMP/shadow-agent.err" </dev/null &
	DEMO_SHADOW_PID=$!
	ST_PIDS+=("$DEMO_SHADOW_PID")
	for i in $(seq 1 100); do
		st_agent_attached "$DEMO_SRV_NS" "$DEMO_IF" "$DEMO_SHADOW_PID" && break
		st_alive "$DEMO_SHADOW_PID" || { cat "$ST_TMP/shadow-agent.err"; return 1; }
		sleep 0.1
	done
	sleep 0.3
	done_
	client_traffic
	sleep 1
	step "stopping shadowtap (SIGINT: queued requests get --drain to go out)"
	st_stop "$DEMO_SHADOW_PID" INT
	done_
	local summary
	summary=$(st_summary "$ST_TMP/shadow-agent.err")
	say "  ${summary:-$(tail -n1 "$ST_TMP/shadow-agent.err")}" | cut -c1-200
	banner "production vs shadow"
	shadow_table "$DEMO_ACCESS_LOG" "$from" "$DEMO_SHADOW_LOG" "$ST_TMP/upload"
}

act_replay() {
	[ -n "${DEMO_PCAP:-}" ] && [ -f "$DEMO_PCAP" ] || { say "(replay: no capture from act 1; skipped)"; return 0; }
	banner "act 3: replay"
	say "The pcap of act 1 replayed to the shadow: original timing by default, --speed X, or"
	say "--fast; --multiply N replays every connection N times (load tests)."
	shadow_stage
	: >"$DEMO_SHADOW_LOG"
	say "${D}\$ shadowtap replay prod.pcap --port 80 --to $DEMO_SHADOW_ADDR:$DEMO_SHADOW_PORT --fast --multiply 2${N}"
	step "replaying"
	local t0 t1
	t0=$(date +%s%N)
	st_in "$DEMO_SRV_NS" "$ST_BIN" replay "$DEMO_PCAP" --port 80 --to "$DEMO_SHADOW_ADDR:$DEMO_SHADOW_PORT" \
		--fast --multiply 2 2>"$ST_TMP/replay.err"
	t1=$(date +%s%N)
	done_ "$(( (t1 - t0) / 1000000 )) ms"
	local summary
	summary=$(st_summary "$ST_TMP/replay.err")
	say "  ${summary}" | cut -c1-200
	say "  the shadow received $(wc -l <"$DEMO_SHADOW_LOG") requests ($(st_summary_field "$summary" requests) recorded, x2)"
}
