# SPDX-License-Identifier: GPL-2.0-only
"""A gRPC service and its client, written for the tests (python3-grpcio, no generated code:
raw-bytes methods through grpc.method_handlers_generic_handler).

  grpc_svc.py serve ADDR:PORT LOG [--candidate]
                                       the service shop.Cart; one line per call in LOG
  grpc_svc.py call ADDR:PORT SEED N    N rounds of calls of every kind, on two channels

Methods (messages are opaque bytes to both sides):
  Get   unary            answers b"got:" + the request
  List  server streaming answers three messages
  Add   client streaming answers how many messages it took
  Chat  bidi streaming   echoes each message
  Fail  unary            aborts with NOT_FOUND, "no such cart"
--candidate is a new build that changed two things (tap compare must name them): Get answers
b"GOT:" + the request, Fail aborts with INTERNAL, "boom".
Every answer is gzip-compressed (the server's default); the client compresses every other
call's requests with gzip too. A call's line: the method, its request messages in hex
(comma-separated), the status code name. Both sides decompress: production's line and a
shadow's for the same call are equal byte for byte.
"""
import random
import sys
import threading
from concurrent import futures

import grpc

METHODS = ("Get", "List", "Add", "Chat", "Fail")


def serve(addr, log, candidate=False):
    lock = threading.Lock()
    out = open(log, "a", buffering=1)

    def record(method, msgs, code):
        with lock:
            out.write("%s\t%s\t%s\n" % (method, ",".join(m.hex() for m in msgs), code))

    def get(req, ctx):
        record("Get", [req], "OK")
        return (b"GOT:" if candidate else b"got:") + req

    def lst(req, ctx):
        record("List", [req], "OK")
        for i in range(3):
            yield b"item%d:" % i + req

    def add(it, ctx):
        msgs = list(it)
        record("Add", msgs, "OK")
        return b"%d" % len(msgs)

    def chat(it, ctx):
        msgs = []
        for m in it:
            msgs.append(m)
            yield b"echo:" + m
        record("Chat", msgs, "OK")

    def fail(req, ctx):
        if candidate:
            record("Fail", [req], "INTERNAL")
            ctx.abort(grpc.StatusCode.INTERNAL, "boom")
        record("Fail", [req], "NOT_FOUND")
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such cart")

    handler = grpc.method_handlers_generic_handler("shop.Cart", {
        "Get": grpc.unary_unary_rpc_method_handler(get),
        "List": grpc.unary_stream_rpc_method_handler(lst),
        "Add": grpc.stream_unary_rpc_method_handler(add),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         compression=grpc.Compression.Gzip)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


def call(addr, seed, rounds):
    rnd = random.Random(seed)
    # a subchannel pool of its own: two channels, two HTTP/2 connections
    chans = [grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(2)]
    n = {"ok": 0, "failed": 0}

    def msg():
        # compressible or not, empty to a few KiB
        k = rnd.choice((0, 1, 20, 300, 5000))
        if rnd.random() < 0.5:
            return bytes(rnd.getrandbits(8) for _ in range(k))
        return bytes([rnd.getrandbits(8)]) * k

    for r in range(rounds):
        for i, method in enumerate(METHODS):
            ch = chans[(r + i) % 2]
            comp = grpc.Compression.Gzip if (r + i) % 2 else grpc.Compression.NoCompression
            path = "/shop.Cart/" + method
            try:
                if method in ("Get", "Fail"):
                    ch.unary_unary(path)(msg(), compression=comp, timeout=10)
                elif method == "List":
                    list(ch.unary_stream(path)(msg(), compression=comp, timeout=10))
                elif method == "Add":
                    ch.stream_unary(path)(iter([msg() for _ in range(rnd.randint(0, 4))]),
                                          compression=comp, timeout=10)
                else:
                    list(ch.stream_stream(path)(iter([msg() for _ in range(rnd.randint(1, 4))]),
                                                compression=comp, timeout=10))
                n["ok"] += 1
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND or method != "Fail":
                    raise
                n["failed"] += 1
    for ch in chans:
        ch.close()
    print("calls ok=%d failed=%d" % (n["ok"], n["failed"]))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], "--candidate" in sys.argv[4:])
    else:
        call(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
