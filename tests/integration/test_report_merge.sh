#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `shadowtap report --merge` (no root needed): three partial compare reports, as three hosts
# write them, merge into one fleet report whose counts add and whose latency verdict comes
# from the merged histograms (no host has enough samples for a verdict; together they show
# the candidate slower);
# merging a merged report with the rest gives the same JSON as merging all at once; bad
# input (no --merge, no input, no output, a missing file, not JSON, another format version,
# other thresholds, an output that cannot be written, sums a report cannot hold: three parts
# of 2^63 - 1 pairs used to wrap) is one stderr line, exit 2 for usage (-o and --report-json
# on one file too) and 1 otherwise, and leaves no output file behind.
. "$(dirname "$0")/lib.sh"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
"$ST_BIN" report --help >/dev/null 2>&1 || st_skip "$ST_BIN has no report command"
st_init
cd "$ST_TMP" || st_fail "cd $ST_TMP"

# report FILE HOST COMPARED RAW CAND_BUCKET [REL_PCT]: one endpoint, GET /a, whose $.v differs
# on the candidate in RAW pairs; every side's latency in one bucket (the reference's in 100,
# about 0.65 ms; bucket 140 is about 3.7 ms); status 200 everywhere.
report() {
	local f=$1 host=$2 n=$3 raw=$4 cb=$5 rel=${6:-20}
	cat >"$f" <<EOF
{
  "format": "shadowtap-compare-report",
  "format_version": 2,
  "generated": "2026-11-30T10:00:00.000Z",
  "final": true,
  "command": "shadow",
  "candidate": "10.0.9.5:8080",
  "reference": "10.0.9.6:8080",
  "started": "2026-11-30T09:00:00.000Z",
  "duration_s": 3600.000,
  "ended": "2026-11-30T10:00:00.000Z",
  "sources": 1,
  "hosts": ["$host"],
  "endpoint_patterns": [],
  "thresholds": {"relative_pct": $rel, "absolute_pct": 0.03, "latency_alpha": 0.001, "latency_shift": 0.2, "latency_min_ms": 1, "latency_min_samples": 10, "compare_max_body": 1048576, "compare_timeout_s": 30, "max_endpoints": 100},
  "summary": {"compared": $n, "differing": $raw, "noise_only": 0, "not_compared": 1, "not_compared_timeout": 1, "compare_mem_peak": 4096},
  "endpoints": [
    {"endpoint": "GET /a", "compared": $n, "differing": $raw, "noise_only": 0, "not_compared": 1, "regressions": 1, "more_paths": 0,
     "fields": [
       {"path": "\$.v", "kind": "value", "raw": $raw, "noise": 0, "verdict": "regression", "basis": "reference", "relative_pct": 100.00, "absolute_pct": 60.0, "volatile": 0, "samples": [{"target": "/a?h=$host", "production": "1", "production_status": 200, "candidate": "2", "candidate_status": 200, "reference": "1", "reference_status": 200, "reference_same": true}]}],
     "noise_fields": [],
     "latency": {"production": {"p50": 0.6, "p90": 0.6, "p99": 0.6, "n": $n, "buckets": [[100, $n]]}, "reference": {"p50": 0.6, "p90": 0.6, "p99": 0.6, "n": $n, "buckets": [[100, $n]]}, "candidate": {"p50": 1, "p90": 1, "p99": 1, "n": $n, "buckets": [[$cb, $n]]}, "verdict": "same"},
     "status": {"production": {"200": $n}, "reference": {"200": $n}, "candidate": {"200": $n}}}
  ]
}
EOF
}

report r1.json host-1 8 5 140
report r2.json host-2 8 6 140
report r3.json host-3 8 2 100

# without the "generated" line (the merge's own time)
body() { grep -v '"generated"' "$1"; }

"$ST_BIN" report --merge r1.json r2.json r3.json -o fleet.html --report-json all.json 2>err ||
	{ cat err; st_fail "merge of three reports failed"; }
# the merged verdict, then the summary line every command ends with
grep -q '^shadowtap: verdict: FAIL, 1 regression in 1 endpoint, 1 slower; 24 pairs compared -> fleet.html$' err ||
	{ cat err; st_fail "verdict line"; }
[ "$(tail -n1 err | cut -d' ' -f1-2)" = "shadowtap: summary" ] || { cat err; st_fail "the summary is not the last line"; }
grep -q '^shadowtap: summary merged=3 endpoints=1 compared=24 differing=13 ' err || { cat err; st_fail "summary line"; }
st_summary_documented "$(st_summary err)" "report --merge"
grep -q '"compared": 24, "differing": 13' all.json || st_fail "counts do not add"
grep -q '"raw": 13, "noise": 0, "verdict": "regression"' all.json || st_fail "field counts do not add"
grep -q '"sources": 3,' all.json || st_fail "sources"
grep -q '"hosts": \["host-1", "host-2", "host-3"\]' all.json || st_fail "hosts"
grep -q '"not_compared_timeout": 3' all.json || st_fail "counters do not add"
grep -q '"compare_mem_peak": 4096' all.json || st_fail "a peak is the largest, not a sum"
grep -q '"buckets": \[\[100, 8\], \[140, 16\]\]' all.json || st_fail "candidate buckets do not add"
# 8 samples a host: no verdict on any (fewer than 10); 24 merged: slower (16 of them 3 ms later)
"$ST_BIN" report --merge r1.json --report-json r1m.json 2>/dev/null || st_fail "merge of one report"
grep -q '"verdict": "n/a", .*"enough_samples": false' r1m.json || st_fail "host 1 alone has a verdict"
grep -q '"verdict": "slower", "basis": "reference", .*"enough_samples": true' all.json ||
	st_fail "latency verdict not computed from the merged buckets"
grep -q 'merged from 3 reports' fleet.html || st_fail "the HTML does not say it is merged"
grep -q '<table id="endpoints">' fleet.html || st_fail "the HTML report is not the compare report"
grep -q 'is slower by' fleet.html || st_fail "the HTML verdict does not say slower"
grep -q '"verdict": {"result": "fail", "regressions": 1, "regression_endpoints": 1, "slower_endpoints": 1,' all.json ||
	st_fail "the JSON report does not carry the verdict"

# --fail-on-regression / --fail-on-slower: exit status 3 with a regression (a slower endpoint),
# 0 without; the outputs are written all the same
rc=0
"$ST_BIN" report --merge r1.json r2.json r3.json -o gate.html --fail-on-regression 2>err || rc=$?
[ "$rc" -eq 3 ] && [ -s gate.html ] || { cat err; st_fail "--fail-on-regression with a regression: exit $rc, want 3"; }
python3 - r1.json r2.json <<'PY' || st_fail "could not write the clean parts"
import json, sys
for i, f in enumerate(sys.argv[1:]):
    d = json.load(open(f))
    e = d["endpoints"][0]
    e["fields"], e["differing"], d["summary"]["differing"] = [], 0, 0
    e["latency"]["candidate"]["buckets"] = [[100, e["compared"]]]
    d["hosts"] = [f"clean-{i}"]
    json.dump(d, open(f"clean{i}.json", "w"))
PY
for gate in --fail-on-regression --fail-on-slower; do
	rc=0
	"$ST_BIN" report --merge clean0.json clean1.json -o clean.html "$gate" 2>err || rc=$?
	[ "$rc" -eq 0 ] || { cat err; st_fail "$gate without a regression: exit $rc, want 0"; }
	grep -q '^shadowtap: verdict: PASS, no regression, 0 slower; 16 pairs compared -> clean.html$' err ||
		{ cat err; st_fail "clean merge: verdict line"; }
done
rc=0
"$ST_BIN" report --merge r1.json r2.json -o gate.html --fail-on-slower 2>err || rc=$?
[ "$rc" -eq 3 ] || { cat err; st_fail "--fail-on-slower with a slower endpoint: exit $rc, want 3"; }
rm -f gate.html clean.html clean0.json clean1.json

# merges compose: (r1 + r2) + r3 == r1 + r2 + r3
"$ST_BIN" report --merge r1.json r2.json --report-json r12.json 2>/dev/null || st_fail "r1 + r2"
"$ST_BIN" report --merge r12.json r3.json --report-json nested.json 2>/dev/null || st_fail "r12 + r3"
diff <(body all.json) <(body nested.json) >/dev/null || st_fail "merging a merged report differs"
"$ST_BIN" report --merge r3.json r1.json r2.json --report-json rev.json 2>/dev/null || st_fail "r3 r1 r2"
diff <(body all.json) <(body rev.json) >/dev/null || st_fail "the order of the reports matters"

# errors: CODE DESCRIPTION PATTERN ARGS...: exit CODE, one stderr line matching PATTERN, no out.*
expect() {
	local want=$1 what=$2 pat=$3 rc=0
	shift 3
	rm -f out.html out.json
	"$ST_BIN" report "$@" >stdout 2>err || rc=$?
	[ "$rc" -eq "$want" ] || { cat err; st_fail "$what: exit $rc, want $want"; }
	[ "$(wc -l <err)" -eq 1 ] || { cat err; st_fail "$what: want one stderr line"; }
	grep -q -- "$pat" err || { cat err; st_fail "$what: message does not say '$pat'"; }
	[ ! -s stdout ] || st_fail "$what: wrote to stdout"
	if [ -e out.html ] || [ -e out.json ]; then st_fail "$what: wrote an output"; fi
}
expect 2 "no --merge" "--merge is required" r1.json -o out.html
expect 2 "no input" "at least one JSON report" --merge -o out.html
expect 2 "no output" "an output is required" --merge r1.json
expect 2 "unknown option" "" --merge --frobnicate r1.json -o out.html
expect 1 "missing file" "nope.json: No such file" --merge r1.json nope.json -o out.html
printf 'not json' >garbage.json
expect 1 "garbage" "garbage.json: not JSON" --merge r1.json garbage.json -o out.html
sed 's/"format_version": 2/"format_version": 3/' r1.json >v3.json
expect 1 "another version" "v3.json: a compare report of format version 3" --merge v3.json -o out.html
grep -v '"format' r1.json >v1.json
expect 1 "format 1" "v1.json: a compare report of format 1" --merge v1.json -o out.html
report rel.json host-4 10 1 100 30
expect 1 "other thresholds" "rel.json: cannot be merged with r1.json: another --noise-relative" \
	--merge r1.json rel.json -o out.html
expect 1 "unwritable output" "nodir/x.html" --merge r1.json -o nodir/x.html
expect 1 "a directory" "not a regular file" --merge . -o out.html
expect 2 "-o X --report-json X" "name one file" --merge r1.json -o out.html --report-json ./out.html
# counts at the bound of a report (2^63 - 1): two add up beyond it, and are refused, not wrapped
big=9223372036854775807
sed -e "s/\"compared\": 8,/\"compared\": $big,/g" -e "s/\"not_compared\": 1, \"not_compared_timeout\"/\"not_compared\": $big, \"not_compared_timeout\"/" r1.json >big.json
"$ST_BIN" report --merge big.json --report-json out.json 2>err || { cat err; st_fail "a part of 2^63 - 1 pairs is refused"; }
grep -q "\"compared\": $big," out.json || st_fail "a part of 2^63 - 1 pairs does not read back"
rm -f out.json
expect 1 "sums beyond 2^63 - 1" "the merged counts would pass $big" --merge big.json big.json big.json -o out.html

# written through a temporary file renamed over the target: nothing else is left
shopt -s dotglob nullglob
for f in *; do
	case $f in
	r1.json | r2.json | r3.json | r12.json | r1m.json | all.json | nested.json | rev.json | \
		garbage.json | v3.json | v1.json | rel.json | big.json | fleet.html | err | stdout) ;;
	*) st_fail "left behind: $f" ;;
	esac
done
st_log "report --merge: ok"
