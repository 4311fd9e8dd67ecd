#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The upstream behind the watch tests' nginx (production):

    watch_upstream.py PORT [--delay S]

GET /slow answers 200 after --delay seconds (0.05: nginx's /slow is ~50 ms slower than its
other endpoints); GET /chunked answers HTTP/1.0 without a Content-Length, in a few writes,
so nginx passes it on chunked to HTTP/1.1 clients. Anything else: 404.
"""
import socketserver
import sys
import time

port = int(sys.argv[1])
delay = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--delay" else 0.05


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            path = line.split(b" ")[1] if len(line.split(b" ")) > 1 else b"/"
            length = 0
            while True:
                h = self.rfile.readline(65536)
                if h in (b"\r\n", b"\n", b""):
                    break
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":", 1)[1])
            if length:
                self.rfile.read(length)
            if path.startswith(b"/slow"):
                time.sleep(delay)
                body = b"slow answer\n"
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            elif path.startswith(b"/chunked"):
                self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                for i in range(5):
                    self.wfile.write(b"part %d of an answer without a length\n" % i * 40)
                    self.wfile.flush()
                return  # the end of the answer is the end of the connection
            else:
                self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", port), Handler).serve_forever()
