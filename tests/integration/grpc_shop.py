# SPDX-License-Identifier: GPL-2.0-only
"""The gRPC service shop.Carts (grpc_shop.proto) with real protobuf messages, and its client
(python3-grpcio, python3-protobuf; no generated code: the message classes come from the
FileDescriptorSet `protoc --include_imports --descriptor_set_out=SET grpc_shop.proto` writes).

  grpc_shop.py serve ADDR:PORT LOG SET [--candidate]
                                    one line per call in LOG: the method and the request's id
  grpc_shop.py call ADDR:PORT SET SEED N
                                    N rounds of one GetCart and one ListCarts, on one channel

GetCart answers one Cart of 2-4 items built from the request's id (the same on every build);
ListCarts answers two. Every Cart's served_at_ns is the time it was answered: it differs in
every answer, on every build (tap compare: noise). --candidate is a new build that changed
one thing: GetCart's prices are 10% higher (ListCarts' are not).
"""
import random
import sys
import threading
import time
import zlib
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def classes(path):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return message_factory.MessageFactory(pool).GetPrototype(d)

    return cls("shop.CartRequest"), cls("shop.Cart")


def cart(Cart, cid, n, dearer):
    # everything but served_at_ns from the id: production and every shadow agree
    rnd = random.Random(zlib.crc32(cid.encode()) + n)
    c = Cart(id=cid, status=rnd.choice((1, 2)), served_at_ns=time.time_ns())
    for i in range(rnd.randint(2, 4)):
        cents = rnd.randint(100, 9999)
        c.items.add(sku="sku-%04d" % rnd.randint(0, 9999), qty=rnd.randint(1, 9),
                    price=round(cents * (1.1 if dearer else 1) / 100, 2),
                    delta=rnd.randint(-50, 50))
        c.counts["k%d" % i] = rnd.randint(-5, 5)
    return c


def serve(addr, log, path, candidate=False):
    Req, Cart = classes(path)
    lock = threading.Lock()
    out = open(log, "a", buffering=1)

    def record(method, req):
        with lock:
            out.write("%s\t%s\n" % (method, req.id))

    def get(req, ctx):
        record("GetCart", req)
        return cart(Cart, req.id, 0, candidate)

    def lst(req, ctx):
        record("ListCarts", req)
        for n in range(2):
            yield cart(Cart, req.id, n + 1, False)

    def ser(m):
        # map entries in key order: python writes them in hash order otherwise, which differs
        # between processes (without a schema a map is a repeated field, compared in order)
        return m.SerializeToString(deterministic=True)

    handler = grpc.method_handlers_generic_handler("shop.Carts", {
        "GetCart": grpc.unary_unary_rpc_method_handler(
            get, request_deserializer=Req.FromString, response_serializer=ser),
        "ListCarts": grpc.unary_stream_rpc_method_handler(
            lst, request_deserializer=Req.FromString, response_serializer=ser),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


def call(addr, path, seed, rounds):
    Req, Cart = classes(path)
    rnd = random.Random(seed)
    ch = grpc.insecure_channel(addr)
    get = ch.unary_unary("/shop.Carts/GetCart", request_serializer=Req.SerializeToString,
                         response_deserializer=Cart.FromString)
    lst = ch.unary_stream("/shop.Carts/ListCarts", request_serializer=Req.SerializeToString,
                          response_deserializer=Cart.FromString)
    items = 0
    for _ in range(rounds):
        cid = "cart-%d" % rnd.randint(1, 10**6)
        items += len(get(Req(id=cid), timeout=10).items)
        items += sum(len(c.items) for c in lst(Req(id=cid), timeout=10))
    ch.close()
    print("calls=%d items=%d" % (2 * rounds, items))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], "--candidate" in sys.argv[5:])
    else:
        call(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
