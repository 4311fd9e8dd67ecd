# SPDX-License-Identifier: GPL-2.0-only
"""Random HTTP/2 traffic, and the servers that log what they ran, for test_shadow_h2diff.sh:
the differential test of the shadow engine's HTTP/2 path (the HTTP/1 one: smuggle.py).

  h2diff.py serve ADDR PORT LOG prod|shadow
  h2diff.py client ADDR PORT SEED CONNS

The servers (python3-h2). One line per request they ran, written when it ran:
  METHOD PATH BODY_LENGTH BODY_SHA1 x-fields;trailers
Production (prod) acts as the request's path says (?act=): ok (200), err (503), bad (400: a
status servers give requests they refuse; logged "REFUSED ...", the shadows must never see
it), early (200 before the request is complete; logged once it is), rst (a reset before any
answer), refuse (REFUSED_STREAM), silent (never answers), goaway (answers, then a GOAWAY
with that stream as the last, and no more). It takes an h2c upgrade too (the request is
stream 1). A malformed request (an upper-case field name) is its connection's end (GOAWAY
PROTOCOL_ERROR). A shadow runs everything it gets whole, valid or not, and logs it: what
production did not run must never show up there.

The client writes its frames by hand (hyperframe, hpack): connections with prior knowledge
or upgraded from HTTP/1.1; per connection 1 to 14 streams of random methods, x- fields of
random names and values (the HPACK dynamic table churns; some never indexed; the table size
changed within header blocks; the server's encoder table resized by SETTINGS), bodies of 0 to
40000 bytes in DATA frames of random sizes, padded or not, the frames of open streams
interleaved, header blocks split over CONTINUATION frames, PRIORITY and PING frames, trailers,
a client reset mid-body, and at the end a GOAWAY. Everything follows from the seed.
"""
import base64
import hashlib
import random
import socket
import sys
import threading
import time

ACTS = ["ok"] * 10 + ["err", "bad", "early", "rst", "refuse", "silent", "goaway"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---- the servers ---------------------------------------------------------------------------

def line_of(method, path, body, fields, trailers):
    xs = sorted("%s=%s" % (n, v) for n, v in fields
                if n.startswith("x-") and n != "x-shadowtap")
    ts = sorted("%s=%s" % (n, v) for n, v in trailers)
    return "%s %s %d %s %s;%s" % (method, path, len(body), hashlib.sha1(body).hexdigest()[:16],
                                  ",".join(xs), ",".join(ts))


def act_of(path):
    return path.split("act=", 1)[1].split("&")[0] if "act=" in path else "ok"


def serve(addr, port, log, role):
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings

    out = open(log, "a", buffering=1)
    lock = threading.Lock()
    prod = role == "prod"

    def record(lines):
        with lock:
            for line in lines:
                out.write(line + "\n")

    def handle(sock):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="latin-1",
                                        validate_inbound_headers=prod,
                                        normalize_inbound_headers=False)
        conn = h2.connection.H2Connection(config=cfg)
        streams = {}
        buf = b""
        closed = False
        ran = []  # lines of the requests answered, logged once their answers went out
        last = None  # a GOAWAY went out: streams above are not processed
        highest = 0  # the last stream begun: a GOAWAY covers every stream begun

        def linger():
            # a graceful close: a close with unread bytes would reset the connection and
            # lose the answers still queued (production ran those: they must go out)
            try:
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(2)
                while sock.recv(65536):
                    pass
            except OSError:
                pass

        def flush():
            data = conn.data_to_send()
            if data:
                sock.sendall(data)
            # production ran what it answered: its answer is on the wire now
            record(ran)
            ran.clear()

        def answer(sid, status):
            conn.send_headers(sid, [(":status", str(status)), ("content-type", "text/plain")])
            conn.send_data(sid, b"ok", end_stream=True)

        def complete(sid):
            """The request of sid is whole: production acts, a shadow runs it."""
            nonlocal last, highest
            st = streams.pop(sid)
            hd = dict(st["h"])
            line = line_of(hd.get(":method", "?"), hd.get(":path", "?"), bytes(st["body"]),
                           st["h"], st["t"])
            act = act_of(hd.get(":path", ""))
            if not prod:
                record([line])
                answer(sid, 200)
                return
            if act in ("ok", "err", "bad", "goaway"):
                ran.append(("REFUSED " if act == "bad" else "") + line)
                answer(sid, {"ok": 200, "err": 503, "bad": 400, "goaway": 200}[act])
                if act == "goaway" and last is None:
                    # the streams begun are still processed, none after
                    from hyperframe.frame import GoAwayFrame
                    flush()
                    last = max(sid, highest)
                    sock.sendall(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
            elif act == "early":
                ran.append(line)  # answered already
            elif act == "rst":
                conn.reset_stream(sid, error_code=2)
            # silent: nothing

        # HTTP/1.1 upgrade, or prior knowledge
        while True:
            n = min(len(buf), len(PREFACE))
            if buf[:n] != PREFACE[:n] or len(buf) >= len(PREFACE):
                break
            b = sock.recv(65536)
            if not b:
                return
            buf += b
        if not buf.startswith(PREFACE):
            while b"\r\n\r\n" not in buf:
                b = sock.recv(65536)
                if not b:
                    return
                buf += b
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            hdrs = [(l.split(":", 1)[0].strip().lower(), l.split(":", 1)[1].strip()) for l in lines[1:]]
            hd = dict(hdrs)
            n = int(hd.get("content-length", "0"))
            while len(buf) < n:
                b = sock.recv(65536)
                if not b:
                    return
                buf += b
            body, buf = buf[:n], buf[n:]
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            conn.initiate_upgrade_connection(settings_header=hd["http2-settings"].encode())
            streams[1] = {"h": [(":method", method), (":path", target)] +
                          [(k, v) for k, v in hdrs if k.startswith("x-")], "body": bytearray(body), "t": []}
            complete(1)
        else:
            conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24,
                              h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
        conn.increment_flow_control_window(1 << 30)
        flush()
        while True:
            try:
                events = conn.receive_data(buf) if buf else []
                buf = b""
            except h2.exceptions.ProtocolError:
                try:
                    conn.close_connection(error_code=1)
                    flush()
                except Exception:
                    pass
                linger()
                return
            for ev in events:
                sid = getattr(ev, "stream_id", None)
                if last is not None and sid and sid > last:
                    continue
                if isinstance(ev, h2.events.RequestReceived):
                    highest = max(highest, sid)
                    streams[sid] = {"h": list(ev.headers), "body": bytearray(), "t": []}
                    act = act_of(dict(ev.headers).get(":path", ""))
                    if prod and act == "refuse":
                        conn.reset_stream(sid, error_code=7)
                        streams.pop(sid)
                    elif prod and act == "early":
                        answer(sid, 200)
                    if ev.stream_ended and sid in streams:
                        complete(sid)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    if sid in streams:
                        streams[sid]["body"] += ev.data
                    if ev.stream_ended and sid in streams:
                        complete(sid)
                elif isinstance(ev, h2.events.TrailersReceived):
                    if sid in streams:
                        streams[sid]["t"] = list(ev.headers)
                        complete(sid)
                elif isinstance(ev, h2.events.StreamReset):
                    streams.pop(sid, None)
                if closed:
                    break
            flush()
            if last is not None and not any(i <= last and dict(st["h"]).get(":path", "").find("act=silent") < 0
                                            for i, st in streams.items()):
                closed = True  # what it took before its GOAWAY is done
            if closed:
                break
            try:
                buf = sock.recv(65536)
            except OSError:
                return
            if not buf:
                return
        flush()
        linger()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(256)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=lambda s=c: (handle(s), s.close()), daemon=True).start()


# ---- the client ----------------------------------------------------------------------------

NAMES = ["x-a", "x-b", "x-trace", "x-user", "x-token", "x-long", "x-k1", "x-k2", "x-k3"]


def rand_value(rnd):
    n = rnd.choice((0, 1, 5, 30, 200))
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.") for _ in range(n))


class Reader:
    """The server's frames: SETTINGS acknowledged, streams' ends noted, GOAWAY seen."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.ended = set()
        self.goaway = None
        self.settings = False
        self.window = False
        self.closed = False

    def pump(self, timeout):
        from hyperframe.frame import SettingsFrame
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            b = b""
        if not b:
            self.closed = True
            return False
        self.buf += b
        while len(self.buf) >= 9:
            ln = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + ln:
                break
            t, fl, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
            pl = self.buf[9:9 + ln]
            self.buf = self.buf[9 + ln:]
            if t == 4 and not fl & 1:
                self.settings = True
                self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            elif t == 8 and sid == 0:
                self.window = True
            elif t in (0, 1) and fl & 1:
                self.ended.add(sid)
            elif t == 3:
                self.ended.add(sid)
            elif t == 7:
                self.goaway = int.from_bytes(pl[:4], "big") & 0x7fffffff
        return True


def header_frames(rnd, sid, block, end_stream):
    """A header block as HEADERS and CONTINUATIONs of random sizes, maybe padded."""
    from hyperframe.frame import ContinuationFrame, HeadersFrame
    cuts = sorted(rnd.sample(range(1, len(block)), min(rnd.choice((0, 0, 1, 3)), len(block) - 1))) \
        if len(block) > 1 else []
    parts = [block[a:b] for a, b in zip([0] + cuts, cuts + [len(block)])]
    frames = []
    for i, p in enumerate(parts):
        fl = ["END_HEADERS"] if i == len(parts) - 1 else []
        if i == 0:
            if end_stream:
                fl.append("END_STREAM")
            f = HeadersFrame(sid, data=p, flags=fl)
            if rnd.random() < 0.3:
                f.flags.add("PADDED")
                f.pad_length = rnd.randint(0, 40)
            if rnd.random() < 0.2:
                f.flags.add("PRIORITY")
                f.depends_on = 0
                f.stream_weight = rnd.randint(0, 255)
        else:
            f = ContinuationFrame(sid, data=p, flags=fl)
        frames.append(f.serialize())
    return frames


def one_conn(addr, port, rnd, idx):
    from hpack import Encoder, HeaderTuple, NeverIndexedHeaderTuple
    from hyperframe.frame import (DataFrame, GoAwayFrame, PingFrame, PriorityFrame,
                                  RstStreamFrame, SettingsFrame)

    sock = socket.create_connection((addr, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    enc = Encoder()
    rd = Reader(sock)
    settings = {0x4: 1 << 24, 0x2: 0}
    if rnd.random() < 0.3:
        settings[0x1] = rnd.choice((0, 256, 1024, 8192))  # the server's encoder table
    sid = 1
    expect = set()
    if rnd.random() < 0.15:
        # h2c: an HTTP/1.1 request upgraded (stream 1)
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 10, 3000))))
        payload = SettingsFrame(0, settings=settings).serialize_body()
        act = rnd.choice(("ok", "ok", "err", "bad"))
        req = ("POST /u/%d/1?act=%s HTTP/1.1\r\nHost: prod.example\r\n"
               "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n"
               "X-Up: %s\r\nContent-Length: %d\r\n\r\n" %
               (idx, act, base64.urlsafe_b64encode(payload).decode().rstrip("="),
                rand_value(rnd), len(body))).encode() + body
        sock.sendall(req)
        head = b""
        while b"\r\n\r\n" not in head:
            b = sock.recv(1)
            if not b:
                return
            head += b
        expect.add(1)
        sid = 3
    sock.sendall(PREFACE + SettingsFrame(0, settings=settings).serialize())
    t_end = time.time() + 5
    while not (rd.settings and rd.window) and time.time() < t_end and not rd.closed:
        rd.pump(0.5)
    # the streams of this connection
    streams = []
    for j in range(rnd.randint(1, 14)):
        act = rnd.choice(ACTS)
        method = "GET" if act in ("refuse",) else rnd.choice(("GET", "POST", "PUT"))
        body = b"" if method == "GET" else bytes(rnd.getrandbits(8) for _ in range(
            rnd.choice((0, 1, 100, 5000, 40000))))
        fields = [(":method", method), (":scheme", "http"), (":authority", "prod.example"),
                  (":path", "/s/%d/%d?act=%s" % (idx, j, act))]
        for _ in range(rnd.randint(0, 6)):
            n = rnd.choice(NAMES)
            fields.append((n, rand_value(rnd)))
        trailers = [("x-sum", rand_value(rnd))] if body and rnd.random() < 0.2 else []
        if trailers:
            fields.append(("te", "trailers"))
        creset = body and rnd.random() < 0.08
        streams.append({"id": sid, "f": fields, "body": body, "t": trailers, "act": act,
                        "creset": creset, "off": 0, "state": 0})
        sid += 2
    if rnd.random() < 0.05:
        # malformed: production ends the connection on it (it comes last)
        streams.append({"id": sid, "f": [(":method", "GET"), (":scheme", "http"),
                                          (":authority", "a"), (":path", "/m/%d" % idx),
                                          ("X-Upper", "1")], "body": b"", "t": [],
                        "act": "bad", "creset": False, "off": 0, "state": 0})
    # sends: open streams in order, their frames interleaved
    nopen = 0
    pending = list(streams)
    live = []
    out = []
    while pending or live:
        if pending and (not live or rnd.random() < 0.4):
            s = pending.pop(0)
            if rnd.random() < 0.2:
                enc.header_table_size = rnd.choice((0, 512, 2048, 4096))
            hs = [NeverIndexedHeaderTuple(n, v) if n == "x-token" else HeaderTuple(n, v)
                  for n, v in s["f"]]
            blk = enc.encode(hs)
            end = not s["body"] and not s["t"]
            out += header_frames(rnd, s["id"], blk, end)
            if s["act"] != "silent":
                expect.add(s["id"])
            if not end:
                live.append(s)
            if rnd.random() < 0.1:
                out.append(PriorityFrame(s["id"], depends_on=0, stream_weight=rnd.randint(0, 255)).serialize())
            if rnd.random() < 0.05:
                out.append(PingFrame(0, opaque_data=b"12345678").serialize())
            continue
        s = rnd.choice(live)
        left = len(s["body"]) - s["off"]
        if s["creset"] and s["off"] and rnd.random() < 0.5:
            out.append(RstStreamFrame(s["id"], error_code=8).serialize())
            expect.discard(s["id"])
            live.remove(s)
            continue
        pad = rnd.randint(0, 60) if rnd.random() < 0.3 else -1
        # a frame's payload (padding included) within SETTINGS_MAX_FRAME_SIZE (16384)
        n = min(left, rnd.choice((1, 100, 1000, 16384)), 16384 - (pad + 1 if pad >= 0 else 0))
        last = n == left
        chunk = s["body"][s["off"]:s["off"] + n]
        s["off"] += n
        fl = ["END_STREAM"] if last and not s["t"] else []
        f = DataFrame(s["id"], data=chunk, flags=fl)
        if pad >= 0:
            f.flags.add("PADDED")
            f.pad_length = pad
        out.append(f.serialize())
        if last:
            if s["t"]:
                out += header_frames(rnd, s["id"], enc.encode(s["t"]), True)
            live.remove(s)
        # flush now and then: the frames go out in several segments
        if rnd.random() < 0.2:
            sock.sendall(b"".join(out))
            out = []
    try:
        sock.sendall(b"".join(out))
        t_end = time.time() + 5
        while not rd.closed and time.time() < t_end:
            done = expect <= rd.ended or (rd.goaway is not None and
                                          all(i <= rd.goaway or i in rd.ended for i in expect) and
                                          {i for i in expect if i <= rd.goaway} <= rd.ended)
            if done:
                break
            rd.pump(0.5)
        sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
    except OSError:
        pass
    sock.close()


def client(addr, port, seed, conns):
    rnd = random.Random(seed)
    seeds = [rnd.getrandbits(64) for _ in range(conns)]
    sem = threading.Semaphore(8)
    threads = []
    errors = []

    def run(i):
        with sem:
            try:
                one_conn(addr, port, random.Random(seeds[i]), i)
            except Exception as e:  # a connection the server ended early is fine
                errors.append("%d: %r" % (i, e))

    for i in range(conns):
        t = threading.Thread(target=run, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print("connections %d, client-side ends %d" % (conns, len(errors)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
