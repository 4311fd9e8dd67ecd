#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Strangers at a port: `receive --listen`'s (tests/integration/test_receive_listen.sh), the
daemon's /metrics (tests/integration/test_daemon.sh).

    link_stranger.py rst PORT                 connect, then reset (SO_LINGER 0)
    link_stranger.py http PORT                GET / HTTP/1.0, read until closed
    link_stranger.py tls PORT [CERT KEY]      a TLS 1.3 client, with that certificate or none;
                                              exit 1 if the receiver took it as a tee (K)
    link_stranger.py idle PORT N FIRST [ADDRS]
                                              N connections from ADDRS addresses (default N)
                                              127.0.0.FIRST, FIRST+1, ... in turn, that send
                                              nothing; prints "held N", holds them until killed

Every connection goes to 127.0.0.1:PORT.
"""
import socket
import ssl
import struct
import sys
import time


def connect(port, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(15)
    s.connect(("127.0.0.1", port))
    return s


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "rst":
        s = connect(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    elif mode == "http":
        s = connect(port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    elif mode == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if len(sys.argv) > 4:
            ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        try:
            s = ctx.wrap_socket(connect(port))
            # TLS 1.3: the client's handshake ends before the server has checked its
            # certificate; the refusal comes as an alert or a close at the first read
            got = s.recv(1)
        except (ssl.SSLError, OSError):
            got = b""
        if got == b"K":
            sys.exit("the receiver accepted a stranger's TLS client as a tee")
    elif mode == "idle":
        n, first = int(sys.argv[3]), int(sys.argv[4])
        addrs = int(sys.argv[5]) if len(sys.argv) > 5 else n
        held = [connect(port, "127.0.0.%d" % (first + i % addrs)) for i in range(n)]
        print("held %d" % len(held), flush=True)
        while True:
            time.sleep(60)
    else:
        sys.exit("unknown mode " + mode)


main()
