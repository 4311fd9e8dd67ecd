#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""HTTP/2 clients of stateful_svc.py (behind an nginx speaking h2c) for
test_shadow_correlate_h2.sh, with prior knowledge: USERS users, each on a connection of its
own: log in, read /me, create ORDERS orders (their streams in flight at once), read and change
each (at once too; a change that leaves the item as it was); then a second connection per user that uses the cookie (split in two
cookie fields, as HTTP/2 allows) and the token learned on the first. Exits non-zero when
production itself answered anything unexpected.
Usage: stateful_client_h2.py HOST PORT USERS ORDERS
"""
import json
import socket
import sys

import h2.config
import h2.connection
import h2.events

host, port, users, norders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


class Conn:
    """One HTTP/2 connection (h2c, prior knowledge); streams sent, then awaited together."""

    def __init__(self):
        self.sock = socket.create_connection((host, port), timeout=10)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        self.flush()
        self.resp = {}

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def send(self, method, path, body=None, headers=()):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", host),
                (":path", path)] + list(headers)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            hdrs += [("content-type", "application/json"), ("content-length", str(len(data)))]
        self.h2.send_headers(sid, hdrs, end_stream=data is None)
        if data is not None:
            self.h2.send_data(sid, data, end_stream=True)
        self.flush()
        self.resp[sid] = {"status": 0, "headers": [], "body": b"", "done": False,
                          "what": f"{method} {path}"}
        return sid

    def wait(self, sids):
        while not all(self.resp[s]["done"] for s in sids):
            data = self.sock.recv(65536)
            if not data:
                sys.exit("production closed the connection")
            for ev in self.h2.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    r = self.resp[ev.stream_id]
                    r["headers"] = ev.headers
                    r["status"] = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    self.resp[ev.stream_id]["body"] += ev.data
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.resp[ev.stream_id]["done"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    sys.exit(f"stream {ev.stream_id} reset by production")
            self.flush()
        return [self.resp.pop(s) for s in sids]

    def call(self, method, path, body=None, headers=(), want=200):
        return self.calls([(method, path, body, headers)], want)[0]

    def calls(self, reqs, want=200):
        """Every request's stream in flight at once; their answers, in order."""
        out = self.wait([self.send(*r) for r in reqs])
        for r in out:
            if r["status"] != want:
                sys.exit(f"{r['what']}: {r['status']}, want {want}")
        return [(r, json.loads(r["body"]) if r["body"] else None) for r in out]

    def close(self):
        self.h2.close_connection()
        self.flush()
        self.sock.close()


def header(r, name):
    return [v for k, v in r["headers"] if k == name]


for u in range(users):
    c = Conn()
    r, b = c.call("POST", "/login", {"user": f"user{u}"})
    sid = header(r, "set-cookie")[0].split(";")[0]
    bearer = [("authorization", "Bearer " + b["access_token"])]
    c.call("GET", "/me", headers=[("cookie", sid)])
    made = c.calls([("POST", "/orders", {"item": f"thing-{u}-{i}"}, bearer)
                    for i in range(norders)], want=201)
    ids = []
    for r, b in made:
        ids.append(b["id"])
        assert header(r, "location") == ["/orders/" + b["id"]]
    c.calls([("GET", f"/orders/{oid}", None, bearer) for oid in ids])
    # the item stays what it was: the second connection's reads may reach a shadow before
    # these writes when both waited there for a value (docs/SHADOW.md, "Sessions and ids")
    c.calls([("PUT", f"/orders/{oid}", {"item": f"thing-{u}-{i}", "id": oid, "note": "changed"},
              bearer) for i, oid in enumerate(ids)])
    c.close()
    # another connection, with what the first one learned
    c = Conn()
    c.call("GET", "/me", headers=[("cookie", "theme=dark"), ("cookie", sid)])
    c.calls([("GET", f"/orders/{oid}?fields=id,item", None, bearer) for oid in ids])
    c.close()
