#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Installs the Debian packages that the build, the tests, the demo and the
# benchmarks need. Idempotent: does nothing (and needs no network) when all
# are present.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm libbpf-dev libelf-dev zlib1g-dev libpcap-dev bpftool pkg-config
	# the daemon: its config file (INI) and its metrics endpoint (HTTP)
	libinih-dev libmicrohttpd-dev
	# the tee link's TLS (tee --to, receive --listen)
	libssl-dev
	# tee --kafka, receive --kafka (and the mock cluster their tests run on)
	librdkafka-dev
	# HTTP/2: HPACK (and, in the tests, the sessions that write the traffic)
	libnghttp2-dev
	# unit tests, sanitizers and fuzzing; protoc writes test_protobuf's messages
	libcmocka-dev libclang-rt-14-dev protobuf-compiler
	# integration tests, demo, benchmarks
	iproute2 nginx-light curl wrk tcpdump tshark tcpflow python3 procps psmisc time
	redis-server redis-tools
	# HTTP/2 and gRPC: servers and clients (nghttpd; nghttp, h2load), the gRPC services
	# written for the tests, the HTTP/2 client of the differential test
	nghttp2-server nghttp2-client python3-grpcio python3-protobuf protobuf-compiler python3-h2
	# tap compare's HTML report, rendered in a real browser by its integration test
	chromium
	# --tls tests: certificates made at test time
	openssl
	# promtool: the metrics' names checked against Prometheus' rules (test_metrics_names)
	prometheus
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "shadowtap: missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "shadowtap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# tshark asks whether non-root users may capture: answer no, quietly.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
