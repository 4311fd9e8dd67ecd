#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap shadow` command line: usage errors (one stderr line, exit 2, nothing attached),
# --help on stdout, --duration / SIGTERM / SIGINT ending cleanly with a summary line, --stats
# lines, --metrics (Prometheus text), and a run with filters (--safe-only, --match-path, --set-host, --no-mark).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shadow_common.sh"
st_require_root
st_require_cmds ip nginx curl bpftool python3
st_require_agent
"$ST_BIN" shadow --help >/dev/null 2>&1 || st_skip "$ST_BIN has no shadow command"
st_init

# usage CASE-NAME ARGS...: must exit 2 with exactly one stderr line.
usage() {
	local name=$1 rc=0
	shift
	# bounded: a case accepted by mistake would shadow lo until stopped
	timeout 10 "$ST_BIN" shadow "$@" >"$ST_TMP/u.out" 2>"$ST_TMP/u.err" </dev/null || rc=$?
	[ "$rc" -eq 2 ] || { cat "$ST_TMP/u.err"; st_fail "$name: exit $rc, want 2"; }
	[ "$(wc -l <"$ST_TMP/u.err")" -eq 1 ] || { cat "$ST_TMP/u.err"; st_fail "$name: want one stderr line"; }
	grep -q '^shadowtap' "$ST_TMP/u.err" || st_fail "$name: message does not name shadowtap"
}
usage "no --to" --iface lo --port 80
usage "no --port" --iface lo --to 127.0.0.1:1
usage "no target" --port 80 --to 127.0.0.1:1
usage "bad --to" --iface lo --port 80 --to nowhere
usage "bad share" --iface lo --port 80 --to 127.0.0.1:1/0
usage "shares over 100" --iface lo --port 80 --to 127.0.0.1:1/60 --to 127.0.0.1:2/60
usage "bad --proto" --iface lo --port 80 --to 127.0.0.1:1 --proto ftp
usage "bad --sample" --iface lo --port 80 --to 127.0.0.1:1 --sample 0
usage "bad --sample-by" --iface lo --port 80 --to 127.0.0.1:1 --sample-by user
usage "bad regex" --iface lo --port 80 --to 127.0.0.1:1 --match-path '('
usage "bad header" --iface lo --port 80 --to 127.0.0.1:1 --set-header 'nocolon'
usage "framing header" --iface lo --port 80 --to 127.0.0.1:1 --set-header 'Content-Length: 5'
usage "bad method" --iface lo --port 80 --to 127.0.0.1:1 --match-method 'get'
usage "raw safe" --iface lo --port 80 --to 127.0.0.1:1 --proto raw --safe-only
usage "replay option" --iface lo --port 80 --to 127.0.0.1:1 --fast
usage "unknown option" --iface lo --port 80 --to 127.0.0.1:1 --bogus
usage "missing value" --iface lo --port 80 --to
usage "extra argument" --iface lo --port 80 --to 127.0.0.1:1 extra
usage "ring not a power of 2" --iface lo --port 80 --to 127.0.0.1:1 --ring-mb 3
usage "ring over 2 GiB" --iface lo --port 80 --to 127.0.0.1:1 --ring-mb 4096
usage "conn queue over all queues" --iface lo --port 80 --to 127.0.0.1:1 --conn-queue-mb 999 --max-queue-mb 1
grep -q -- '--max-queue-mb' "$ST_TMP/u.err" || st_fail "conn queue: the message does not name --max-queue-mb"
usage "bad --max-mem" --iface lo --port 80 --to 127.0.0.1:1 --max-mem lots
usage "--max-mem too small" --iface lo --port 80 --to 127.0.0.1:1 --max-mem 1K
# tap compare (docs/COMPARE.md): one candidate, paths and patterns checked up front
usage "compare: two candidates" --iface lo --port 80 --to 127.0.0.1:1 --to 127.0.0.1:2 --compare
usage "compare: a share" --iface lo --port 80 --to 127.0.0.1:1/50 --report-json /dev/null
usage "compare: reference share" --iface lo --port 80 --to 127.0.0.1:1 --reference 127.0.0.1:2/50
usage "compare: raw" --iface lo --port 80 --to 127.0.0.1:1 --compare --proto raw
# the redaction policy's options (redact.h), shared with tee and receive
usage "--no-redact with --redact-query" --iface lo --port 80 --to 127.0.0.1:1 --compare --no-redact --redact-query sid
usage "a bad --redact-query" --iface lo --port 80 --to 127.0.0.1:1 --compare --redact-query 'a&b'
usage "a bad --output-mode" --iface lo --port 80 --to 127.0.0.1:1 --output-mode 0400
usage "bad --ignore-field" --iface lo --port 80 --to 127.0.0.1:1 --ignore-field items.id
usage "bad --ignore-header" --iface lo --port 80 --to 127.0.0.1:1 --ignore-header 'X Y'
usage "bad --endpoint" --iface lo --port 80 --to 127.0.0.1:1 --endpoint 'get /x'
usage "bad --compare-max-body" --iface lo --port 80 --to 127.0.0.1:1 --compare-max-body 100G
usage "bad --noise-relative" --iface lo --port 80 --to 127.0.0.1:1 --noise-relative 150
usage "unordered path as a word" --iface lo --port 80 --to 127.0.0.1:1 --unordered-arrays '$.tags'
grep -q -- '--unordered-arrays=PATH' "$ST_TMP/u.err" || st_fail "unordered: the message does not say --unordered-arrays=PATH"
# an output that cannot be written: exit 1 at once, nothing attached
rc=0
timeout 10 "$ST_BIN" shadow --iface lo --port 80 --to 127.0.0.1:1 --report /nonexistent-dir/r.html \
	>"$ST_TMP/u.out" 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'nonexistent-dir' "$ST_TMP/u.err" && ! grep -q summary "$ST_TMP/u.err" ||
	{ cat "$ST_TMP/u.err"; st_fail "--report in a missing folder: exit $rc, want 1 before the start"; }
"$ST_BIN" replay --help | grep -q -- '--reference' || st_fail "replay --help has no compare options"
rc=0
"$ST_BIN" replay /nonexistent.pcap --port 80 --to 127.0.0.1:1 --multiply 2 --compare \
	>"$ST_TMP/u.out" 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--multiply' "$ST_TMP/u.err" ||
	{ cat "$ST_TMP/u.err"; st_fail "replay --multiply --compare: exit $rc, want 2"; }

# A smaller total alone is fine: the default per-connection queue shrinks to fit it.
rc=0
"$ST_BIN" shadow --iface st-nosuch0 --port 80 --to 127.0.0.1:1 --max-queue-mb 8 --max-mem 16M \
	>"$ST_TMP/u.out" 2>"$ST_TMP/u.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'st-nosuch0' "$ST_TMP/u.err" ||
	{ cat "$ST_TMP/u.err"; st_fail "--max-queue-mb 8 alone: exit $rc, want the runtime error (1)"; }
"$ST_BIN" shadow --help | grep -q -- '--safe-only' || st_fail "--help does not describe the options"

st_netns_pair
st_nginx_start web "$ST_SRV_NS" 80
sh_sink_start sink "$ST_CLI_NS" "$ST_CLI4" 8080
base=http://$ST_SRV4

st_log "--duration 6 with --stats 1 and filters"
sh_agent_start a1 "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080" --duration 6 --stats 1 \
	--safe-only --match-path '^/f' --set-host shadow.example --no-mark --metrics "$ST_TMP/shadow.prom"
t0=$(date +%s)
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1" -o /dev/null "$base/index.html" -o /dev/null "$base/f100"
st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null --data-binary hello "$base/upload"
rc=0
wait "$SH_AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || st_fail "--duration: exit $rc"
[ $(( $(date +%s) - t0 )) -le 12 ] || st_fail "--duration 6 took too long"
SH_SUMMARY=$(st_summary "$ST_TMP/a1.err")
[ -n "$SH_SUMMARY" ] || st_fail "--duration: no summary"
# --stats: a timestamped line of the main counters, "NAME VALUE[/s] [(TOTAL)] [(SUB N, ...)]"
# entries separated by "; ", human sizes; the last one's totals are the summary's
python3 - "$ST_TMP/a1.err" "$SH_SUMMARY" <<'PY' || st_fail "--stats 1: the stats lines do not parse (above)"
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.startswith("shadowtap: stats ")]
summary = dict(kv.split("=") for kv in sys.argv[2].split()[2:])
if len(lines) < 2:
    sys.exit(f"{len(lines)} stats lines in 6 s, want at least 2")
num = r"[0-9]+(?:\.[0-9])?(?: (?:B|KB|MB|GB))?"
ent = re.compile(rf"^([a-z0-9 -]+?) ({num})(/s)?(?: \(({num})\))?(?: \(((?:[a-z0-9 -]+ {num}, )*[a-z0-9 -]+ {num})\))?$")
for l in lines:
    m = re.match(r"^shadowtap: stats (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (.+)$", l)
    if not m:
        sys.exit(f"not a stats line: {l}")
    got = {}
    for e in m.group(2).split("; "):
        p = ent.match(e)
        if not p:
            sys.exit(f"entry {e!r} of {l!r} does not parse")
        # a rate: the total follows in brackets
        got[p.group(1)] = p.group(4) if p.group(3) else p.group(2)
    for k in ("requests", "replayed", "dropped", "answers", "queue"):
        if k not in got:
            sys.exit(f"no {k} in {l}")
print("  " + lines[-1])
if int(got["requests"]) > int(summary["requests"]) or int(got["replayed"]) > int(summary["replayed"]):
    sys.exit(f"the last stats line counts more than the summary: {got} {summary}")
PY
sh_expect requests -eq 4
sh_expect filtered -eq 2
sh_expect replayed -eq 2
[ "$(sh_sink_requests "$ST_TMP/sink.log" | tr '\n' ' ')" = "GET /f1 GET /f100 " ] || st_fail "filters: shadow got $(cat "$ST_TMP/sink.log")"
[ "$(awk -F'\t' '$7 != "-"' "$ST_TMP/sink.log" | wc -l)" -eq 0 ] || st_fail "--no-mark: marked requests"
grep -qx 'shadowtap_replayed_total{command="shadow"} 2' "$ST_TMP/shadow.prom" ||
	{ cat "$ST_TMP/shadow.prom"; st_fail "--metrics: no final replayed counter"; }
grep -q '^# TYPE shadowtap_queued_bytes gauge' "$ST_TMP/shadow.prom" || st_fail "--metrics: queued is not a gauge in bytes"

for sig in TERM INT; do
	st_log "SIG$sig"
	sh_agent_start a-$sig "$ST_SRV_NS" "$ST_SRV_IF" --port 80 --to "$ST_CLI4:8080"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "$base/f1"
	rc=0
	st_stop "$SH_AGENT_PID" "$sig" || rc=$?
	[ "$rc" -eq 0 ] || st_fail "SIG$sig: exit $rc"
	st_summary "$ST_TMP/a-$sig.err" | grep -q 'replayed=1 ' || st_fail "SIG$sig: $(st_summary "$ST_TMP/a-$sig.err")"
	! st_agent_attached "$ST_SRV_NS" "$ST_SRV_IF" "" || st_fail "SIG$sig: still attached after exit"
done
st_log "PASS"
