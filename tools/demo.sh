#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `make demo`: shadowtap on a self-contained stage, then cleaned away.
#
#   ST_BUILD=build tools/demo.sh          (as root)
#
# Stage: two network namespaces joined by a veth pair; a real nginx in "prod" is the
# production service (files of 1 B .. 5 MB, an upload endpoint); a client in "client" sends
# a mix of request shapes. The demo runs in acts, each a function act_NAME:
#   capture  shadowtap captures the service's traffic to a pcap; a table of what it saw.
# Later acts live in tools/demo-*.sh, sourced below (act_shadow, act_replay, act_compare,
# act_grpc: run after capture when defined; ST_DEMO_ACTS="capture shadow" picks acts). They find the stage in the variables
# set by stage_up (DEMO_*), and the capture in $DEMO_PCAP.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ST_BUILD=${ST_BUILD:-build}
. "$ROOT/tests/integration/lib.sh"

ACTS=${ST_DEMO_ACTS:-capture}
B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
[ -t 1 ] || B='' D='' N=''

say() { printf '%s\n' "$*"; }
step() { printf '  %-66s' "$*"; }
done_() { printf ' %sok%s %s\n' "$B" "$N" "${1:-}"; }
banner() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "shadowtap demo: run as root (it creates network namespaces and loads BPF programs)" >&2
	exit 1
fi
missing=()
for c in ip nginx curl wrk tcpflow python3; do command -v "$c" >/dev/null || missing+=("$c"); done
[ ${#missing[@]} -eq 0 ] || { echo "shadowtap demo: missing ${missing[*]} (run tools/install-deps.sh)" >&2; exit 1; }
if [ -z "${ST_FAKE_AGENT:-}" ] && [ ! -x "$ST_BIN" ]; then
	echo "shadowtap demo: $ST_BIN not found (make)" >&2
	exit 1
fi

# On failure the stage is cleaned away but its logs are kept (st_cleanup prints where).
ST_KEEP=${ST_KEEP:-fail}
st_init
trap 'rc=$?; echo "shadowtap demo: a step failed (exit $rc): ${BASH_COMMAND:0:120}" >&2' ERR

stage_up() {
	banner "shadowtap demo"
	say "shadowtap copies a service's TCP traffic out of the kernel (eBPF, TC hooks), without"
	say "sitting in the path: production packets are never dropped, delayed or changed."
	say "Stage: namespace ${B}prod${N} runs a real nginx (1 worker) on $ST_SRV4:80 and [$ST_SRV6]:80;"
	say "namespace ${B}client${N} talks to it over a veth pair. Nothing outside these namespaces is touched."
	say ""
	step "creating namespaces $ST_SRV_NS / $ST_CLI_NS"
	st_netns_pair
	done_
	step "starting nginx (files 1 B .. 5 MB, POST /upload, PUT /dav/)"
	st_nginx_start prod "$ST_SRV_NS" 80 "[::]:80"
	done_
	DEMO_WWW=$ST_TMP/prod/www
	DEMO_ACCESS_LOG=$ST_TMP/prod/access.log
	DEMO_SRV_NS=$ST_SRV_NS DEMO_CLI_NS=$ST_CLI_NS DEMO_IF=$ST_SRV_IF
}

# client_traffic: the production workload, narrated.
client_traffic() {
	local base=http://$ST_SRV4 up=$ST_TMP/upload s args=()
	mkdir -p "$up"
	head -c 1048576 /dev/urandom >"$up/u1m"
	head -c 3145728 /dev/urandom >"$up/u3m"
	head -c 200000 /dev/urandom >"$up/u200k"
	step "GET every file size (1 B .. 5 MB) on one keep-alive connection"
	for s in "${ST_FILE_SIZES[@]}"; do args+=(-o /dev/null "$base/f$s"); done
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" "${args[@]}"
	done_ "${#ST_FILE_SIZES[@]} requests"
	step "POST 1 MB with Expect: 100-continue"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Expect: 100-continue' --data-binary @"$up/u1m" "$base/upload"
	done_
	step "POST 200 KB chunked (Transfer-Encoding: chunked)"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$up/u200k" "$base/upload"
	done_
	step "PUT 3 MB (stored by nginx)"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null -T "$up/u3m" "$base/dav/upload-3m"
	cmp -s "$up/u3m" "$DEMO_WWW/dav/upload-3m"
	done_
	step "HTTP/1.0 GETs (one connection each)"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -0 -o /dev/null "$base/f1500"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -0 -o /dev/null "$base/f65537"
	done_
	step "4 pipelined GETs written in one send"
	st_pipeline "$ST_CLI_NS" "$ST_SRV4" 80 /f1 /f4096 /f100000 /index.html >/dev/null
	done_
	step "IPv6: GET 1 MB from [$ST_SRV6]"
	st_in "$ST_CLI_NS" "${ST_CURL[@]}" -o /dev/null "http://[$ST_SRV6]/f1048576"
	done_
	step "wrk burst: 2 s, 4 connections, 4 KB file"
	local rps
	rps=$(st_in "$ST_CLI_NS" wrk -t1 -c4 -d2s --timeout 5s "$base/f4096" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
	done_ "$rps requests/s"
}

act_capture() {
	banner "act 1: capture"
	DEMO_PCAP=$ST_TMP/prod.pcap
	say "${D}\$ ip netns exec $ST_SRV_NS shadowtap capture --iface $ST_SRV_IF --port 80 -w prod.pcap${N}"
	step "shadowtap attaches to $ST_SRV_IF (TC ingress + egress)"
	st_capture_start agent "$ST_SRV_NS" "$ST_SRV_IF" "$DEMO_PCAP" --port 80
	done_
	client_traffic
	sleep 1.5 # last FINs (and a fake tcpdump agent's ring blocks)
	step "stopping shadowtap (SIGINT: drain, flush, detach)"
	st_stop "$ST_AGENT_PID" INT
	done_
	local summary
	summary=$(st_summary "$ST_TMP/agent.err")
	say "  ${summary:-$(tail -n1 "$ST_TMP/agent.err")}"
	# Connections in the order they started (their SYNs).
	tcpdump -nr "$DEMO_PCAP" 2>/dev/null | awk '/Flags \[S\],/ { print $3 }' >"$ST_TMP/order"
	if [ -z "${ST_FAKE_AGENT:-}" ] && "$ST_BIN" flows --help >/dev/null 2>&1; then
		step "reassembling every connection (shadowtap flows)"
		"$ST_BIN" flows "$DEMO_PCAP" -o "$ST_TMP/flows" --port 80 2>"$ST_TMP/flows.err" >/dev/null
	else
		step "reassembling every connection (tcpflow)"
		st_tcpflow "$DEMO_PCAP" "$ST_TMP/flows"
	fi
	done_ "$(du -h "$DEMO_PCAP" | cut -f1) pcap"

	banner "what shadowtap captured"
	python3 "$ROOT/tools/demo-flows.py" "$ST_TMP/flows" --port 80 --access-log "$DEMO_ACCESS_LOG" \
		--order "$ST_TMP/order" --max-rows 24
	say ""
	say "Every byte each way, per connection, reassembled from the pcap shadowtap wrote; tcpdump,"
	say "tshark and Wireshark read the same file (shadowtap capture -w - | wireshark -k -i -)."
}

# Further acts live in tools/demo-*.sh (sourced here; they use this file's helpers and stage).
for f in "$ROOT"/tools/demo-*.sh; do
	[ -f "$f" ] && . "$f"
done
if [ -z "${ST_DEMO_ACTS:-}" ]; then
	ACTS=capture
	for a in shadow replay compare grpc; do declare -F "act_$a" >/dev/null && ACTS+=" $a"; done
fi

stage_up
for act in $ACTS; do
	declare -F "act_$act" >/dev/null || { echo "shadowtap demo: no act '$act'" >&2; exit 1; }
	"act_$act"
done
banner "cleaning up"
say "  namespaces, nginx and shadowtap are removed; nothing stays attached."
