# SPDX-License-Identifier: GPL-2.0-only
"""Hand-made pcap files for the integration tests (raw IPv4 link type, no checksums): what a
capture of a given conversation holds, without a network.

    import rawpcap
    rawpcap.write(path, [rawpcap.pkt(CLI, SRV, 40000, 80, seq, ack, 0x18, b"GET / ...")])
"""
import struct


def pkt(src, dst, sp, dp, seq, ack, flags, data=b""):
    """One IPv4/TCP packet: src and dst as 4-byte lists, flags as the TCP flag byte."""
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                     bytes(src), bytes(dst))
    return ip + tcp


def write(path, pkts):
    """A pcap file (link type 101, raw IP) with the packets 1 ms apart."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))
        for i, p in enumerate(pkts):
            f.write(struct.pack("<IIII", 1700000000, i * 1000, len(p), len(p)) + p)
