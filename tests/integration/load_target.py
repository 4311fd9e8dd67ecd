#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A load test's target with a known latency mix (tests/integration/test_load_*.sh).

HTTP/1.1 over keep-alive, asyncio: each request is answered after a delay that depends only
on its number (every --slow-every-th after --slow-ms, the others after --fast-ms: 90% / 10%
by default), so the latency the load test must measure is known. With --stall-at S
--stall-for D, from S seconds after the first request it answers nothing for D seconds (the
requests that came meanwhile are answered at the end of the stall, as a paused server
would). A connection is closed when its client closes it. One line per second of
"t=S requests=N" on stdout, and the listening socket is the readiness signal. At SIGINT or
SIGTERM, a last line says how late its own answers were (the event loop's lateness on a busy
host: "oversleep_ms p50=X p99=Y max=Z requests=N"), for the tests' bands.

  load_target.py PORT [--addr A] [--fast-ms 5] [--slow-ms 50] [--slow-every 10]
                 [--stall-at S --stall-for D]
"""
import argparse
import asyncio
import signal
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--addr", default="127.0.0.1")
ap.add_argument("--fast-ms", type=float, default=5)
ap.add_argument("--slow-ms", type=float, default=50)
ap.add_argument("--slow-every", type=int, default=10)
ap.add_argument("--stall-at", type=float, default=-1)
ap.add_argument("--stall-for", type=float, default=0)
args = ap.parse_args()

state = {"n": 0, "t0": None, "late": []}
BODY = b"ok\n"


def stall_left(now):
    """Seconds of the stall still to come (0 when not in it)."""
    if args.stall_at < 0 or state["t0"] is None:
        return 0
    a = state["t0"] + args.stall_at
    b = a + args.stall_for
    return b - now if a <= now < b else 0


async def answer(writer, delay, lock_prev):
    t = time.monotonic()
    await asyncio.sleep(delay)
    state["late"].append(time.monotonic() - t - delay)
    # HTTP/1 answers go in order: wait for the answer before this one
    if lock_prev is not None:
        await lock_prev
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                 % (len(BODY), BODY))


async def handle(reader, writer):
    prev = None
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if length:
                await reader.readexactly(length)
            now = time.monotonic()
            if state["t0"] is None:
                state["t0"] = now
            state["n"] += 1
            slow = args.slow_every > 0 and state["n"] % args.slow_every == 0
            delay = (args.slow_ms if slow else args.fast_ms) / 1000 + stall_left(now)
            prev = asyncio.ensure_future(answer(writer, delay, prev))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    try:
        if prev is not None:
            await prev
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def ticker():
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(1)
        print("t=%.0f requests=%d" % (time.monotonic() - t0, state["n"]), flush=True)


def lateness():
    late = sorted(state["late"]) or [0]
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))] * 1e3
    print("oversleep_ms p50=%.3f p99=%.3f max=%.3f requests=%d" % (q(0.5), q(0.99), late[-1] * 1e3,
                                                                     state["n"]), flush=True)


async def main():
    server = await asyncio.start_server(handle, args.addr, args.port, backlog=1024)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    asyncio.ensure_future(ticker())
    await stop
    server.close()
    lateness()


asyncio.run(main())
sys.exit(0)
