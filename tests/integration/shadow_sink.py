#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A shadow server for the shadow/replay tests: records every HTTP/1.x request it receives.

    shadow_sink.py PORT LOG [--addr A] [--mode ok|noread|slow|raw] [--delay S]

One line per complete request in LOG (flushed at once), tab-separated:
    conn  seq  method  target  body_len  body_sha256  marker  expect
conn: the connection's number (1, 2, ... in accept order), seq: the request's number on it.
Bodies: Content-Length or chunked (decoded). Answers 200 "ok" (Connection: close when the
request asked for it or is HTTP/1.0 without keep-alive), and 100 Continue never (the shadow
gets the body anyway). --mode noread: accept and never read; slow: answer after --delay;
raw: record every byte received per connection to LOG.<conn> (no HTTP).
"""
import hashlib
import socket
import sys
import threading
import time

args = sys.argv[1:]
port, log = int(args[0]), args[1]
addr, mode, delay = "127.0.0.1", "ok", 0.5
i = 2
while i < len(args):
    if args[i] == "--addr":
        addr = args[i + 1]
    elif args[i] == "--mode":
        mode = args[i + 1]
    elif args[i] == "--delay":
        delay = float(args[i + 1])
    i += 2

lock = threading.Lock()
out = open(log, "a", buffering=1)
counter = [0]


def record(line):
    with lock:
        out.write(line + "\n")
        out.flush()


class Conn:
    def __init__(self, s):
        self.s, self.buf = s, b""

    def fill(self):
        b = self.s.recv(1 << 16)
        if not b:
            raise EOFError
        self.buf += b

    def line(self):
        while b"\n" not in self.buf:
            self.fill()
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r")

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def serve(s, cid):
    c = Conn(s)
    seq = 0
    try:
        while True:
            start = c.line()
            while not start:
                start = c.line()
            method, target, version = start.decode("latin-1").split(" ", 2)
            hdrs = {}
            while True:
                ln = c.line()
                if not ln:
                    break
                k, v = ln.decode("latin-1").split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
            body = b""
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                while True:
                    size = int(c.line().split(b";")[0], 16)
                    if size == 0:
                        while c.line():
                            pass
                        break
                    body += c.take(size)
                    c.take(2)
            elif "content-length" in hdrs:
                body = c.take(int(hdrs["content-length"]))
            seq += 1
            record("\t".join([str(cid), str(seq), method, target, str(len(body)),
                              hashlib.sha256(body).hexdigest(), hdrs.get("x-shadowtap", "-"),
                              hdrs.get("expect", "-")]))
            conn = hdrs.get("connection", "").lower()
            close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)
            if mode == "slow":
                time.sleep(delay)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n%s\r\nok\n"
                      % (b"Connection: close\r\n" if close else b""))
            if close:
                break
    except (EOFError, ConnectionError, ValueError, OSError):
        pass
    finally:
        s.close()


def serve_raw(s, cid):
    with open("%s.%d" % (log, cid), "wb") as f:
        try:
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                f.write(b)
                f.flush()
        except OSError:
            pass
    s.close()


fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
ls = socket.socket(fam, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if mode == "noread":
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind((addr, port))
ls.listen(1024)
held = []
while True:
    s, _ = ls.accept()
    counter[0] += 1
    if mode == "noread":
        held.append(s)  # never read: the sender's window closes
        continue
    fn = serve_raw if mode == "raw" else serve
    threading.Thread(target=fn, args=(s, counter[0]), daemon=True).start()
