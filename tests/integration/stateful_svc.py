#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A small stateful service for test_shadow_correlate.sh, run twice (production and the
shadow), each with its own random secret, so that every session, token and id one issues
means nothing to the other:

  POST /login {"user": U}   -> 200, Set-Cookie: sid=<32 hex>, {"access_token": <JWT signed
                               with this instance's key>, "user_id": <uuid of U here>}
  GET  /me                  -> needs the sid cookie: 200 {"user": U, "user_id": ...}, else 401
  POST /orders {...}        -> needs Authorization: Bearer <a JWT of ours>: 201 {"id": <uuid>},
                               Location: /orders/<uuid>; else 401
  GET  /orders/<uuid>       -> needs the bearer and an order of that user: 200, 404, or 401
  PUT  /orders/<uuid> {...} -> the same, and stores the body

Every request is logged as "METHOD ROUTE STATUS" (ids as {id}) to LOG, flushed at once.
Usage: stateful_svc.py ADDR PORT LOG
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.urandom(32)
LOCK = threading.Lock()
SESSIONS = {}   # sid -> user
USERS = {}      # user -> user_id
ORDERS = {}     # order id -> (user, body)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_make(user):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps({"sub": user, "iat": int(time.time()), "n": uuid.uuid4().hex},
                             separators=(",", ":")).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def jwt_user(tok):
    try:
        head, body, sig = tok.split(".")
        want = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(b64url(want), sig):
            return None
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sub"]
    except Exception:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, obj=None, headers=(), route=""):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        with LOCK:
            LOG.write(f"{self.command} {route} {status}\n")
            LOG.flush()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def cookie_user(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                return SESSIONS.get(v)
        return None

    def bearer_user(self):
        a = self.headers.get("Authorization") or ""
        return jwt_user(a[7:]) if a.startswith("Bearer ") else None

    def do_POST(self):
        b = self.body()
        if self.path == "/login":
            user = str(b.get("user", ""))
            sid = uuid.uuid4().hex
            with LOCK:
                SESSIONS[sid] = user
                uid = USERS.setdefault(user, str(uuid.uuid4()))
            return self.answer(200, {"access_token": jwt_make(user), "user_id": uid},
                               [("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")], "/login")
        if self.path == "/orders":
            user = self.bearer_user()
            if not user:
                return self.answer(401, {"error": "token"}, route="/orders")
            oid = str(uuid.uuid4())
            with LOCK:
                ORDERS[oid] = (user, b)
            return self.answer(201, {"id": oid, "item": b.get("item")},
                               [("Location", f"/orders/{oid}")], "/orders")
        return self.answer(404, {"error": "path"}, route=self.path)

    def order(self):
        user = self.bearer_user()
        oid = self.path.split("?")[0][len("/orders/"):]
        if not user:
            return None, oid, 401
        with LOCK:
            o = ORDERS.get(oid)
        if not o or o[0] != user:
            return None, oid, 404
        return o, oid, 200

    def do_GET(self):
        if self.path == "/me":
            user = self.cookie_user()
            if not user:
                return self.answer(401, {"error": "session"}, route="/me")
            # a candidate with a regression: STATEFUL_MUTATE=1 changes one field of /me
            shown = user + "!" if os.environ.get("STATEFUL_MUTATE") else user
            return self.answer(200, {"user": shown, "user_id": USERS[user]}, route="/me")
        if self.path.startswith("/orders/"):
            o, oid, st = self.order()
            if st != 200:
                return self.answer(st, {"error": "order"}, route="/orders/{id}")
            return self.answer(200, {"id": oid, "item": o[1].get("item")}, route="/orders/{id}")
        return self.answer(404, {"error": "path"}, route=self.path)

    def do_PUT(self):
        b = self.body()
        if self.path.startswith("/orders/"):
            o, oid, st = self.order()
            if st != 200:
                return self.answer(st, {"error": "order"}, route="/orders/{id}")
            with LOCK:
                ORDERS[oid] = (o[0], b)
            return self.answer(200, {"id": oid, "item": b.get("item")}, route="/orders/{id}")
        return self.answer(404, {"error": "path"}, route=self.path)


if __name__ == "__main__":
    LOG = open(sys.argv[3], "a", buffering=1)
    ThreadingHTTPServer.request_queue_size = 128  # a replay opens many connections at once
    srv = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    srv.daemon_threads = True
    srv.serve_forever()
