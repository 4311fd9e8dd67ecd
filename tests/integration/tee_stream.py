#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Writes a tee stream (docs/TEE.md, "The stream format") record by record, for tests that
need one a tee would not write: a crafted GAP, header values with terminal escapes.

    tee_stream.py OUT RECORD...

RECORD is one of (ids, offsets and lengths in decimal; TEXT in Python's escapes, b'...'):
    header TEXT                        HEADER ("key=value\\n" lines)
    open ID CLIENT:PORT SERVER:PORT    OPEN (IPv4)
    data ID DIR OFF TEXT               DATA
    gap ID DIR OFF LEN WHY             GAP
    end ID DIR WHY                     END
    close ID WHY                       CLOSE
    end_stream                         END_STREAM (nothing dropped)
All records go in one frame.
"""
import ast
import socket
import struct
import sys
import zlib

TS = 1700000000 * 10**9


def text(s):
    return ast.literal_eval("b'" + s.replace("'", "\\'") + "'")


def rec(kind, body):
    return struct.pack("<IB", 1 + len(body), kind) + body


def addr(s):
    host, port = s.rsplit(":", 1)
    return socket.inet_aton(host) + bytes(12), int(port)


def main():
    out, args = sys.argv[1], sys.argv[2:]
    recs = b""
    while args:
        k = args.pop(0)
        if k == "header":
            recs += rec(1, text(args.pop(0)))
        elif k == "open":
            cid = int(args.pop(0))
            (src, sport), (dst, dport) = addr(args.pop(0)), addr(args.pop(0))
            recs += rec(2, struct.pack("<QQIBBHHH", cid, TS, 0, 4, 0, sport, dport, 0) + src + dst)
        elif k == "data":
            cid, d, off = int(args.pop(0)), int(args.pop(0)), int(args.pop(0))
            recs += rec(3, struct.pack("<QQQB", cid, TS, off, d) + text(args.pop(0)))
        elif k == "gap":
            cid, d, off, n, why = (int(args.pop(0)) for _ in range(5))
            recs += rec(4, struct.pack("<QQQQBB", cid, TS, off, n, d, why))
        elif k == "end":
            cid, d, why = (int(args.pop(0)) for _ in range(3))
            recs += rec(5, struct.pack("<QQBB", cid, TS, d, why))
        elif k == "close":
            cid, why = int(args.pop(0)), int(args.pop(0))
            recs += rec(6, struct.pack("<QQB", cid, TS, why))
        elif k == "end_stream":
            recs += rec(7, struct.pack("<QQQQQ", TS, 0, 0, 0, 0))
        else:
            sys.exit("unknown record " + k)
    z = zlib.compressobj()
    payload = z.compress(recs) + z.flush(zlib.Z_SYNC_FLUSH)
    with open(out, "wb") as f:
        f.write(b"STTEE\n\x01\x01")
        f.write(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)


main()
