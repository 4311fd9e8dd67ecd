#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Request-smuggling shapes for the differential shadow test (test_shadow_smuggle.sh).

    smuggle.py list [--random N --seed S]            shape ids and names, one per line
    smuggle.py send HOST PORT [--random N --seed S] [--jobs J]
                                                     each shape on its own connection
    smuggle.py check PROD_LOG SHADOW_LOG SINK_LOG [--random N --seed S]
                                                     the differential verdict

Every shape is one client connection: an "attack" request whose body holds a smuggled
request (GET /SMUG-<id>), then a normal request (GET /tail-<id>); some shapes start with a
normal request (GET /pre-<id>). What production's server does with it is production's
business; what shadowtap must guarantee is that the shadow runs exactly the requests
production ran on that connection, or nothing of it:

    shadow requests of the connection == production's, or shadow requests == []
    (after a normal first request: a prefix of production's that holds it)

with "production's" taken from production nginx's access log (every request it parsed, with
its status) minus the ones production refused and closed on (shadowtap never replays those),
and both shadows (a second nginx and a recording sink) must agree with each other.

Random shapes (--random N) combine framing fields, values, whitespace, line endings and
body layouts; `make fuzz` runs many of them.
"""
import random
import re
import socket
import sys
import threading

CRLF = b"\r\n"


def smug(i):
    return b"GET /SMUG-%d HTTP/1.1\r\nHost: shadowtap.test\r\n\r\n" % i


def tail(i):
    return b"GET /tail-%d HTTP/1.1\r\nHost: shadowtap.test\r\n\r\n" % i


def pre(i):
    return b"GET /pre-%d HTTP/1.1\r\nHost: shadowtap.test\r\n\r\n" % i


def req(i, headers, body, method=b"POST", version=b"HTTP/1.1", eol=CRLF, path=None):
    path = path or b"/a-%d" % i
    head = method + b" " + path + b" " + version + eol + b"Host: shadowtap.test" + eol
    for h in headers:
        head += h + eol
    return head + eol + body


def chunked(data, eol=CRLF, ext=b""):
    return b"%x" % len(data) + ext + eol + data + eol + b"0" + eol + eol


def fixed_shapes():
    """(name, builder(i) -> bytes) for the hostile test's shapes and more."""
    S = []

    def add(name, f):
        S.append((name, f))

    def cl(n):
        return b"Content-Length: " + n

    # production accepts, framing agrees
    add("plain CL body", lambda i: req(i, [cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("plain chunked body", lambda i: req(i, [b"Transfer-Encoding: chunked"], chunked(smug(i))) + tail(i))
    add("pipelined after a normal request", lambda i: pre(i) + req(i, [cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("129 header fields", lambda i: req(i, [b"X-F%d: v" % k for k in range(129)] +
                                           [cl(b"%d" % (len(smug(i)) + len(tail(i))))],
                                           smug(i) + tail(i)))
    add("1000 header fields", lambda i: req(i, [b"X-F%d: v" % k for k in range(1000)] +
                                            [cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("leading zeros in CL", lambda i: req(i, [cl(b"000%d" % len(smug(i)))], smug(i)) + tail(i))
    add("GET with a CL body", lambda i: req(i, [cl(b"%d" % len(smug(i)))], smug(i), method=b"GET") + tail(i))
    add("Expect 100-continue", lambda i: req(i, [b"Expect: 100-continue", cl(b"%d" % len(smug(i)))],
                                             smug(i)) + tail(i))
    add("chunk extension", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                         chunked(smug(i), ext=b";name=val")) + tail(i))
    add("TE uppercase", lambda i: req(i, [b"Transfer-Encoding: CHUNKED"], chunked(smug(i))) + tail(i))
    # the request-smuggling shapes of the hostile test
    add("TE<TAB>chunked", lambda i: req(i, [b"Transfer-Encoding:\tchunked"], b"0\r\n\r\n" + smug(i)) + tail(i))
    add("CL.TE", lambda i: req(i, [cl(b"%d" % (5 + len(smug(i)))), b"Transfer-Encoding: chunked"],
                               b"0\r\n\r\n" + smug(i)) + tail(i))
    add("TE.CL", lambda i: req(i, [b"Transfer-Encoding: chunked", cl(b"4")],
                               chunked(smug(i))) + tail(i))
    add("two CL equal", lambda i: req(i, [cl(b"%d" % len(smug(i)))] * 2, smug(i)) + tail(i))
    add("two CL differing", lambda i: req(i, [cl(b"0"), cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("CL list 5, 5", lambda i: req(i, [cl(b"%d, %d" % (len(smug(i)), len(smug(i))))], smug(i)) + tail(i))
    add("CL +N", lambda i: req(i, [cl(b"+%d" % len(smug(i)))], smug(i)) + tail(i))
    add("space before colon", lambda i: req(i, [b"Content-Length : %d" % len(smug(i))], smug(i)) + tail(i))
    add("20-digit CL", lambda i: req(i, [cl(b"99999999999999999999")], smug(i)) + tail(i))
    add("HTTP/1.0 with TE", lambda i: req(i, [b"Transfer-Encoding: chunked"], b"0\r\n\r\n" + smug(i),
                                          version=b"HTTP/1.0") + tail(i))
    add("NUL in a header", lambda i: req(i, [b"X-N: a\x00b", cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("obs-fold", lambda i: req(i, [b"X-F: a", b" folded", cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("two TE", lambda i: req(i, [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
                                b"0\r\n\r\n" + smug(i)) + tail(i))
    add("TE identity then chunked", lambda i: req(i, [b"Transfer-Encoding: identity",
                                                      b"Transfer-Encoding: chunked"],
                                                  b"0\r\n\r\n" + smug(i)) + tail(i))
    add("xchunked", lambda i: req(i, [b"Transfer-Encoding: xchunked"], b"0\r\n\r\n" + smug(i)) + tail(i))
    add("chunked, identity", lambda i: req(i, [b"Transfer-Encoding: chunked, identity"],
                                           b"0\r\n\r\n" + smug(i)) + tail(i))
    add("gzip, chunked", lambda i: req(i, [b"Transfer-Encoding: gzip, chunked"], chunked(smug(i))) + tail(i))
    add("VT in TE", lambda i: req(i, [b"Transfer-Encoding: \x0bchunked"], b"0\r\n\r\n" + smug(i)) + tail(i))
    add("no CRLF after chunk data", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                                  b"3\r\nabc" + smug(i) + b"0\r\n\r\n") + tail(i))
    add("1 MB header line", lambda i: req(i, [b"X-Big: " + b"b" * (1 << 20), cl(b"%d" % len(smug(i)))],
                                          smug(i)) + tail(i))
    add("chunk ext with bare LF", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                                b"5;x\nhello\r\n0\r\n\r\n" + smug(i)) + tail(i))
    add("LF-only chunk lines", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                             b"5\nhello\n0\n\n" + smug(i)) + tail(i))
    add("LF-only head", lambda i: req(i, [b"Content-Length: %d" % len(smug(i))], smug(i), eol=b"\n") + tail(i))
    add("bare CR in a header", lambda i: req(i, [b"X-R: a\rb", cl(b"%d" % len(smug(i)))], smug(i)) + tail(i))
    add("TE with trailing space", lambda i: req(i, [b"Transfer-Encoding: chunked "], chunked(smug(i))) + tail(i))
    add("CL negative", lambda i: req(i, [cl(b"-1")], smug(i)) + tail(i))
    add("CL hex", lambda i: req(i, [cl(b"0x1f")], smug(i)) + tail(i))
    add("chunk size with spaces", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                                b"5 \r\nhello\r\n0\r\n\r\n" + smug(i)) + tail(i))
    add("chunk size overflow", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                             b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smug(i)) + tail(i))
    add("trailer with a request", lambda i: req(i, [b"Transfer-Encoding: chunked"],
                                                b"0\r\nX-T: 1\r\n\r\n" + smug(i)) + tail(i))
    add("HTTP/2 version", lambda i: req(i, [cl(b"%d" % len(smug(i)))], smug(i), version=b"HTTP/2.0") + tail(i))
    add("lowercase method", lambda i: req(i, [cl(b"%d" % len(smug(i)))], smug(i), method=b"post") + tail(i))
    add("two spaces in the request line", lambda i: req(i, [cl(b"%d" % len(smug(i)))], smug(i),
                                                        path=b"/a-%d " % i) + tail(i))
    add("garbage first", lambda i: b"\x16\x03\x01garbage\r\n\r\n" + smug(i) + tail(i))
    return S


def random_shape(rng):
    """One random combination: returns (name, builder)."""
    cl_vals = [b"%d", b"+%d", b" %d", b"%d ", b"0%d", b"%d, %d", b"0x%x", b"-1", b"99999999999999999999",
               b"%d\x00"]
    te_vals = [b"chunked", b" chunked", b"\tchunked", b"chunked ", b"Chunked", b"xchunked",
               b"chunked, identity", b"identity, chunked", b"gzip, chunked", b"chunked\x0b", b"chunked;q=1"]
    names = [b"Content-Length", b"Content-Length ", b"content-length", b"Content_Length"]
    tnames = [b"Transfer-Encoding", b"Transfer-Encoding ", b"transfer-encoding", b"Transfer_Encoding"]
    eols = [CRLF, CRLF, CRLF, b"\n"]
    versions = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]
    methods = [b"POST", b"PUT", b"GET", b"POST"]
    use_cl = rng.random() < 0.7
    use_te = rng.random() < 0.5
    ncl = rng.choice([1, 1, 1, 2])
    nte = rng.choice([1, 1, 1, 2])
    clv = rng.choice(cl_vals)
    clname = rng.choice(names) if rng.random() < 0.2 else b"Content-Length"
    tev = rng.choice(te_vals)
    tename = rng.choice(tnames) if rng.random() < 0.2 else b"Transfer-Encoding"
    eol = rng.choice(eols)
    ver = rng.choice(versions)
    meth = rng.choice(methods)
    layout = rng.choice(["raw", "chunk0", "chunked", "badchunk"])
    fold = rng.random() < 0.1
    prefix = rng.random() < 0.3
    desc = "random cl=%s te=%s layout=%s" % (use_cl, use_te, layout)

    def build(i):
        s = smug(i)
        if layout == "raw":
            body = s
        elif layout == "chunk0":
            body = b"0\r\n\r\n" + s
        elif layout == "chunked":
            body = chunked(s)
        else:
            body = b"%x\n" % len(s) + s + b"\n0\n\n"
        n = len(body) if rng_len[0] else len(s)
        hs = []
        if use_cl:
            v = clv.replace(b"%d, %d", b"%d, %d" % (n, n)) if b"%d, %d" in clv else \
                (clv % n if b"%" in clv else clv)
            hs += [clname + b": " + v] * ncl
        if use_te:
            hs += [tename + b": " + tev] * nte
        if fold:
            hs += [b"X-F: a", b" b"]
        r = req(i, hs, body, method=meth, version=ver, eol=eol)
        return (pre(i) if prefix else b"") + r + tail(i)

    rng_len = [rng.random() < 0.5]
    return desc, build


def all_shapes(n_random, seed):
    shapes = fixed_shapes()
    rng = random.Random(seed)
    for _ in range(n_random):
        shapes.append(random_shape(rng))
    return [(i, name, f(i)) for i, (name, f) in enumerate(shapes, start=1)]


def opt(args, name, default):
    if name in args:
        return args[args.index(name) + 1]
    return default


def send_one(host, port, data, results, i):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.settimeout(0.8)
        s.sendall(data)
        got = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            got += b
        s.close()
        results[i] = got
    except OSError as e:
        results[i] = ("error %s" % e).encode()


def cmd_send(args):
    host, port = args[0], int(args[1])
    shapes = all_shapes(int(opt(args, "--random", 0)), int(opt(args, "--seed", 1)))
    jobs = int(opt(args, "--jobs", 16))
    results = {}
    pending = list(shapes)
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        ts = [threading.Thread(target=send_one, args=(host, port, d, results, i)) for i, _, d in batch]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    for i, name, _ in shapes:
        first = results.get(i, b"")[:40].split(b"\r\n")[0].decode("latin-1")
        print("%d\t%s\t%s" % (i, name, first))


LINE = re.compile(r'^(\d+) (\d+) (\d+) "(.*)"$')
ID = re.compile(r"/(pre|a|SMUG|tail)-(\d+)(?![0-9])")


def nginx_log(path):
    """{id: [(conn, status, 'METHOD name')]} from '$connection $connection_requests $status "$request"'."""
    out = {}
    for line in open(path, encoding="latin-1"):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        conn, _, status, request = m.groups()
        parts = request.split(" ")
        idm = ID.search(request)
        if not idm:
            continue
        out.setdefault(int(idm.group(2)), []).append((conn, int(status), parts[0] + " " + idm.group(1)))
    return out


def sink_log(path):
    out = {}
    for line in open(path, encoding="latin-1"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 4:
            continue
        idm = ID.search(f[3])
        if idm:
            out.setdefault(int(idm.group(2)), []).append(f[2] + " " + idm.group(1))
    return out


REFUSED = {400, 411, 413, 414, 431, 494, 501, 505}


def ran(entries):
    """What production ran on the connection: its requests up to the first it refused and
    closed on (a refusal status, or any error that was the connection's last request)."""
    out = []
    for k, (conn, status, r) in enumerate(entries):
        last = all(c != conn for c, _, _ in entries[k + 1:])
        if status in REFUSED or (status >= 400 and last):
            break
        out.append(r)
    return out


def cmd_check(args):
    prod, shadow, sink = nginx_log(args[0]), nginx_log(args[1]), sink_log(args[2])
    shapes = all_shapes(int(opt(args, "--random", 0)), int(opt(args, "--seed", 1)))
    bad = equal = empty = 0
    for i, name, _ in shapes:
        p = ran(prod.get(i, []))
        s = sink.get(i, [])
        n = [r for _, _, r in shadow.get(i, [])]
        # Attack first on its connection: all of production's or nothing. After a normal
        # request the shadow may stop where its framing refuses what production accepted
        # (it already had the earlier ones): a prefix, never anything else.
        has_pre = bool(p) and p[0] == "GET pre"
        ok = (s == p or s == [] or (has_pre and s == p[:len(s)])) and n == s
        if not ok:
            bad += 1
            print("MISMATCH shape %d (%s): production %s ran %s; sink %s; shadow nginx %s" %
                  (i, name, prod.get(i, []), p, s, n))
        elif s and s == p:
            equal += 1
        else:
            empty += 1
    print("shapes=%d equal=%d empty=%d mismatched=%d" % (len(shapes), equal, empty, bad))
    return 1 if bad else 0


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    if args[0] == "list":
        for i, name, _ in all_shapes(int(opt(args, "--random", 0)), int(opt(args, "--seed", 1))):
            print("%d\t%s" % (i, name))
        return 0
    if args[0] == "send":
        cmd_send(args[1:])
        return 0
    if args[0] == "check":
        return cmd_check(args[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
