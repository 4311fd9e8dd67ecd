#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Fails early, with one clear line, when a build dependency is missing or too old.
set -u
CLANG=${CLANG:-clang}
BPFTOOL=${BPFTOOL:-bpftool}
CC=${CC:-gcc}
die() { echo "shadowtap build: $*" >&2; exit 1; }

command -v "$CC" >/dev/null || die "C compiler '$CC' not found (apt-get install gcc, or: make deps)"
command -v "$CLANG" >/dev/null || die "clang not found (apt-get install clang, or: make deps)"
v=$("$CLANG" -dumpversion 2>/dev/null | cut -d. -f1)
[ "${v:-0}" -ge 11 ] || die "clang ${v:-?} is too old: BPF programs need clang >= 11"
command -v "$BPFTOOL" >/dev/null || die "bpftool not found (apt-get install bpftool, or: make deps)"
"$BPFTOOL" gen help 2>&1 | grep -q skeleton || die "bpftool cannot generate skeletons (need bpftool >= 5.8)"
hdr=/usr/include/bpf/libbpf_version.h
[ -f "$hdr" ] || die "libbpf headers not found (apt-get install libbpf-dev, or: make deps)"
maj=$(awk '/LIBBPF_MAJOR_VERSION/{print $3}' "$hdr"); min=$(awk '/LIBBPF_MINOR_VERSION/{print $3}' "$hdr")
if [ "$maj" -lt 1 ] || { [ "$maj" -eq 1 ] && [ "$min" -lt 1 ]; }; then
	die "libbpf $maj.$min is too old: need >= 1.1 (apt-get install libbpf-dev)"
fi
for h in pcap/pcap.h gelf.h zlib.h ini.h microhttpd.h openssl/ssl.h librdkafka/rdkafka.h librdkafka/rdkafka_mock.h nghttp2/nghttp2.h; do
	[ -f "/usr/include/$h" ] || die "/usr/include/$h not found (make deps installs libpcap-dev libelf-dev zlib1g-dev libinih-dev libmicrohttpd-dev libssl-dev librdkafka-dev libnghttp2-dev)"
done
exit 0
