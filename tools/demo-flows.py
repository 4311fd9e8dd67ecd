#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Summarise the HTTP/1.x connections of a capture, one row per connection.

    demo-flows.py FLOWDIR [--port 80] [--access-log FILE]

FLOWDIR holds one file per connection direction, as `shadowtap flows X.pcap -o FLOWDIR` or
`tcpflow -r X.pcap -o FLOWDIR` write them. --order FILE lists client endpoints ("IP.PORT",
one a line) in the order the connections started; rows follow it. Requests are counted by parsing the client-to-server stream (request line, headers,
Content-Length or chunked body), so bodies that contain "GET " do not count.
"""
import argparse
import os
import re
import sys

# "SRC.SPORT-DST.DPORT" with an optional suffix for a reused 4-tuple: tcpflow zero-pads
# (010.231.000.002.50078-010.231.000.001.00080, "c1" suffix), shadowtap flows does not
# (10.231.0.2.50078-10.231.0.1.80, "#2" suffix).
NAME = re.compile(r"^(?P<src>[0-9a-f.:]+?)\.(?P<sport>\d{1,5})-(?P<dst>[0-9a-f.:]+?)\.(?P<dport>\d{1,5})(?P<rest>(#\d+|c\d+)?)$")


def norm_ip(s):
    if s.count(".") == 3 and ":" not in s:
        return ".".join(str(int(x)) for x in s.split("."))
    # tcpflow writes IPv6 as zero-padded groups joined by '.' in some versions
    return s


def parse_requests(data):
    """Returns (number of complete requests, first request line, methods seen)."""
    i, n, first, methods = 0, 0, None, {}
    L = len(data)
    while i < L:
        end = data.find(b"\r\n\r\n", i)
        if end < 0:
            break
        head = data[i:end].split(b"\r\n")
        line = head[0].decode("latin-1", "replace")
        parts = line.split(" ")
        if len(parts) < 2 or not parts[0].isalpha():
            break  # not at a message boundary: stop counting this stream
        n += 1
        first = first or line
        methods[parts[0]] = methods.get(parts[0], 0) + 1
        hdrs = {}
        for h in head[1:]:
            k, _, v = h.partition(b":")
            hdrs[k.strip().lower()] = v.strip().lower()
        i = end + 4
        if b"chunked" in hdrs.get(b"transfer-encoding", b""):
            while True:
                e = data.find(b"\r\n", i)
                if e < 0:
                    return n, first, methods
                size = int(data[i:e].split(b";")[0] or b"0", 16)
                i = e + 2
                if size == 0:
                    e = data.find(b"\r\n\r\n", i - 2)  # trailers end with an empty line
                    i = (e + 4) if e >= 0 else L
                    break
                i += size + 2
        else:
            i += int(hdrs.get(b"content-length", b"0") or 0)
    return n, first, methods


def human(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--access-log")
    ap.add_argument("--max-rows", type=int, default=40)
    ap.add_argument("--order")
    a = ap.parse_args()

    conns = {}
    for f in os.listdir(a.dir):
        m = NAME.match(f)
        if not m:
            continue
        sport, dport = int(m["sport"]), int(m["dport"])
        size = os.path.getsize(os.path.join(a.dir, f))
        if dport == a.port:  # client -> server
            key = (norm_ip(m["src"]), sport, norm_ip(m["dst"]), dport, m["rest"])
            c = conns.setdefault(key, {"up": 0, "down": 0, "file": None})
            c["up"], c["file"] = size, f
        elif sport == a.port:
            key = (norm_ip(m["dst"]), dport, norm_ip(m["src"]), sport, m["rest"])
            conns.setdefault(key, {"up": 0, "down": 0, "file": None})["down"] = size

    rows, tot_req, tot_up, tot_down = [], 0, 0, 0
    methods_all = {}
    order = {}
    if a.order and os.path.exists(a.order):
        with open(a.order) as fh:
            for i, line in enumerate(fh):
                order.setdefault(line.strip(), i)

    def rank(k):
        return (order.get(f"{k[0]}.{k[1]}", len(order)), k[0], k[1], k[4])

    for key in sorted(conns, key=rank):
        c = conns[key]
        n, first = 0, None
        if c["file"]:
            with open(os.path.join(a.dir, c["file"]), "rb") as fh:
                n, first, methods = parse_requests(fh.read())
            for k, v in methods.items():
                methods_all[k] = methods_all.get(k, 0) + v
        tot_req += n
        tot_up += c["up"]
        tot_down += c["down"]
        cli = f"[{key[0]}]:{key[1]}" if ":" in key[0] else f"{key[0]}:{key[1]}"
        srv = f"[{key[2]}]:{key[3]}" if ":" in key[2] else f"{key[2]}:{key[3]}"
        if first and len(first) > 38:
            first = first[:35] + "..."
        rows.append((f"{cli} -> {srv}", n, first or "-", c["up"], c["down"]))

    w = max([len(r[0]) for r in rows] + [20])
    print(f"  {'connection (client -> server)':<{w}}  {'reqs':>6}  {'first request':<38}  {'client->server':>14}  {'server->client':>14}")
    print("  " + "-" * (w + 6 + 38 + 14 + 14 + 8))
    shown = rows if len(rows) <= a.max_rows else rows[: a.max_rows - 1]
    for r in shown:
        print(f"  {r[0]:<{w}}  {r[1]:>6}  {r[2]:<38}  {human(r[3]):>14}  {human(r[4]):>14}")
    if len(shown) < len(rows):
        rest = rows[len(shown):]
        print(f"  {'... ' + str(len(rest)) + ' more connections':<{w}}  {sum(r[1] for r in rest):>6}  {'':<38}  "
              f"{human(sum(r[3] for r in rest)):>14}  {human(sum(r[4] for r in rest)):>14}")
    print("  " + "-" * (w + 6 + 38 + 14 + 14 + 8))
    print(f"  {'total: ' + str(len(rows)) + ' connections':<{w}}  {tot_req:>6}  {'':<38}  {human(tot_up):>14}  {human(tot_down):>14}")
    if methods_all:
        print("  requests by method: " + ", ".join(f"{k} {v}" for k, v in sorted(methods_all.items(), key=lambda x: -x[1])))
    if a.access_log and os.path.exists(a.access_log):
        with open(a.access_log, "rb") as fh:
            served = sum(1 for _ in fh)
        verdict = "all of them" if served == tot_req else f"{tot_req - served:+d}"
        print(f"  nginx's access log lists {served} requests served; the capture shows {tot_req} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
