#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Referees for the --tls tests: what a TLS client really sent and received, in plaintext.

    tls_client.py trace CURL_TRACE OUT        curl --trace output -> OUT.sent, OUT.recv
    tls_client.py pipeline HOST PORT OUT PATH...
        one TLS connection, every GET written in one send (pipelining), the last with
        Connection: close; reads to the end; OUT.sent, OUT.recv; prints the local port
    tls_client.py int3 PID LIB SYMBOL...
        per SYMBOL, "probed" when its first byte in PID's mapping of LIB is a breakpoint
        (0xcc) the file does not have (a uprobe is installed there), else "clean"

From a curl trace only the application's bytes count ("Send header", "Send data",
"Recv header", "Recv data"), never the TLS records ("Send SSL data").
"""
import re
import socket
import ssl
import sys

HEAD = re.compile(r"^(=>|<=) (Send|Recv) (header|data), (\d+) bytes")
HEX = re.compile(r"^[0-9a-f]{4,}: ")


def trace(path, out):
    sent, recv = bytearray(), bytearray()
    cur, want = None, 0
    with open(path, "r", encoding="latin-1") as f:
        for line in f:
            m = HEAD.match(line)
            if m:
                cur = sent if m.group(2) == "Send" else recv
                want = int(m.group(4))
                continue
            if cur is not None and HEX.match(line):
                hexpart = line.split(": ", 1)[1][:48]
                data = bytes.fromhex("".join(hexpart.split()))
                cur += data
                want -= len(data)
                if want <= 0:
                    cur = None
                continue
            cur = None
    # curl 7.88 does not trace the empty line that ends an interim (1xx) response's head
    recv = re.sub(rb"(HTTP/1\.[01] 1\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*)(?=HTTP/1\.[01] )",
                  rb"\1\r\n", bytes(recv))
    open(out + ".sent", "wb").write(sent)
    open(out + ".recv", "wb").write(recv)


def pipeline(host, port, out, paths):
    reqs = b"".join(
        b"GET %s HTTP/1.1\r\nHost: st\r\n%s\r\n"
        % (p.encode(), b"Connection: close\r\n" if i == len(paths) - 1 else b"")
        for i, p in enumerate(paths))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((host, int(port)), timeout=20)
    local = raw.getsockname()[1]
    s = ctx.wrap_socket(raw)
    s.sendall(reqs)
    got = bytearray()
    while True:
        try:
            b = s.recv(1 << 16)
        except ssl.SSLZeroReturnError:
            break
        if not b:
            break
        got += b
    s.close()
    open(out + ".sent", "wb").write(reqs)
    open(out + ".recv", "wb").write(got)
    print(local)


def int3(pid, lib, symbols):
    import subprocess
    syms = {}
    for line in subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                               text=True).stdout.splitlines():
        f = line.split()
        if len(f) == 3:
            syms[f[2].split("@")[0]] = int(f[0], 16)
    loads = []
    for line in subprocess.run(["readelf", "-lW", lib], capture_output=True,
                               text=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    out = []
    for symbol in symbols:
        if symbol not in syms:
            sys.exit("no symbol %s in %s" % (symbol, lib))
        addr = syms[symbol]
        # file offset of the symbol, from the PT_LOAD segment holding it
        off = [addr - v + o for o, v, fsz in loads if v <= addr < v + fsz][0]
        out.append(int3_at(pid, lib, off))
    print(" ".join(out))


def int3_at(pid, lib, off):
    with open("/proc/%s/root%s" % (pid, lib), "rb") as f:
        real = f.read()[off]
    with open("/proc/%s/maps" % pid) as m:
        for line in m:
            f = line.split()
            if len(f) < 6 or not f[5].endswith(lib.rsplit("/", 1)[1]):
                continue
            start, end = (int(x, 16) for x in f[0].split("-"))
            moff = int(f[2], 16)
            if moff <= off < moff + (end - start):
                with open("/proc/%s/mem" % pid, "rb") as mem:
                    mem.seek(start + off - moff)
                    b = mem.read(1)[0]
                return "probed" if b == 0xCC and real != 0xCC else "clean"
    sys.exit("%s is not mapped by %s" % (lib, pid))


if sys.argv[1] == "trace":
    trace(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "pipeline":
    pipeline(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
elif sys.argv[1] == "int3":
    int3(sys.argv[2], sys.argv[3], sys.argv[4:])
else:
    sys.exit("usage: tls_client.py trace|pipeline ...")
