# SPDX-License-Identifier: GPL-2.0-only
"""Damages a capture the way a live tap can: one connection joined midway, one with a hole.

  pcap_cut.py IN OUT PORT JOIN GAP

Connections are the TCP connections to PORT, numbered from 0 in the order of their SYN
(Ethernet or Linux cooked captures, IPv4). Connection JOIN loses everything before its fifth
client data packet (the agent started while it was open); connection GAP loses one client
data packet in its middle (a ring-full loss: the bytes are gone, the sequence numbers say
so). Prints what it left out; exits 1 when a connection has too few client data packets.
"""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        link = struct.unpack(end + "I", head[20:24])[0]
        out = []
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            incl = struct.unpack(end + "I", rh[8:12])[0]
            out.append((rh, f.read(incl)))
    return head, end, link, out


def tcp(link, data):
    off = {1: 14, 113: 16}.get(link)
    if off is None or len(data) < off + 20:
        return None
    if data[off] >> 4 != 4:
        return None
    ihl = (data[off] & 15) * 4
    if data[off + 9] != 6:
        return None
    t = off + ihl
    src = data[off + 12:off + 16]
    dst = data[off + 16:off + 20]
    sport, dport = struct.unpack(">HH", data[t:t + 4])
    flags = data[t + 13]
    doff = (data[t + 12] >> 4) * 4
    tot = struct.unpack(">H", data[off + 2:off + 4])[0]
    payload = tot - ihl - doff
    return src, sport, dst, dport, flags, payload


def main():
    src, dst, port, join, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    head, end, link, pkts = packets(src)
    conns = []  # client (addr, port) in SYN order
    for _, d in pkts:
        t = tcp(link, d)
        if t and t[3] == port and t[4] & 0x02 and not t[4] & 0x10:
            key = (t[0], t[1])
            if key not in conns:
                conns.append(key)
    if max(join, gap) >= len(conns):
        print("only %d connections" % len(conns))
        sys.exit(1)
    data_idx = {join: [], gap: []}
    for i, (_, d) in enumerate(pkts):
        t = tcp(link, d)
        if not t:
            continue
        for c in (join, gap):
            if (t[0], t[1]) == conns[c] and t[3] == port and t[5] > 0:
                data_idx[c].append(i)
    if len(data_idx[join]) < 6 or len(data_idx[gap]) < 3:
        print("too few client data packets: join %d, gap %d" % (len(data_idx[join]), len(data_idx[gap])))
        sys.exit(1)
    first_kept = data_idx[join][4]
    drop = set()
    for i, (_, d) in enumerate(pkts):
        t = tcp(link, d)
        if t and i < first_kept and conns[join] in ((t[0], t[1]), (t[2], t[3])):
            drop.add(i)
    hole = data_idx[gap][len(data_idx[gap]) // 2]
    drop.add(hole)
    with open(dst, "wb") as f:
        f.write(head)
        for i, (rh, d) in enumerate(pkts):
            if i not in drop:
                f.write(rh + d)
    print("joined connection %d midway (%d packets left out), a hole in connection %d (packet %d)"
          % (join, len(drop) - 1, gap, hole))


main()
