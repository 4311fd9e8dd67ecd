#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Clients of stateful_svc.py for test_shadow_correlate.sh: USERS users, each on a keep-alive
connection: log in, read /me, create ORDERS orders, read and change each; then a second
connection per user that uses the cookie and token learned on the first (a value learned on
another connection). Exits non-zero when production itself answered anything unexpected.
Usage: stateful_client.py HOST PORT USERS ORDERS
"""
import http.client
import json
import sys

host, port, users, norders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def call(c, method, path, body=None, headers=None, want=200):
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.read()
    if r.status != want:
        sys.exit(f"{method} {path}: {r.status}, want {want}")
    return r, json.loads(out) if out else None


for u in range(users):
    c = http.client.HTTPConnection(host, port, timeout=10)
    r, b = call(c, "POST", "/login", {"user": f"user{u}"})
    sid = r.getheader("Set-Cookie").split(";")[0]
    bearer = {"Authorization": "Bearer " + b["access_token"]}
    call(c, "GET", "/me", headers={"Cookie": sid})
    ids = []
    for i in range(norders):
        r, b = call(c, "POST", "/orders", {"item": f"thing-{u}-{i}"}, bearer, want=201)
        ids.append(b["id"])
        assert r.getheader("Location") == "/orders/" + b["id"]
    for oid in ids:
        call(c, "GET", f"/orders/{oid}", headers=bearer)
        call(c, "PUT", f"/orders/{oid}", {"item": "changed", "id": oid}, bearer)
    c.close()
    # another connection, with what the first one learned
    c = http.client.HTTPConnection(host, port, timeout=10)
    call(c, "GET", "/me", headers={"Cookie": "theme=dark; " + sid})
    for oid in ids:
        call(c, "GET", f"/orders/{oid}?fields=id,item", headers=bearer)
    c.close()
