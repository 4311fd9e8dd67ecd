/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header-only packet parser shared by the BPF programs and the host unit
 * tests. It reads through ST_LOAD(ctx, off, dst, len), which the includer
 * defines: bpf_skb_load_bytes() in the kernel (so non-linear GSO skbs parse
 * the same as linear ones), memcpy from a buffer on the host.
 *
 * It finds the TCP header and payload of Ethernet (optionally 802.1Q/802.1ad
 * tagged, up to ST_MAX_VLAN_TAGS tags) or bare IP frames, IPv4 with options and
 * IPv6 with up to ST_MAX_V6_EXT extension headers.
 */
#ifndef ST_PARSE_H
#define ST_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/types.h>
/* Network/host byte order for clang -target bpf and the host compiler alike: it follows
 * __BYTE_ORDER__ (the BPF target takes the host's) and stops the build on anything else. */
#include <bpf/bpf_endian.h>

#include "shadowtap.h"

#ifndef ST_INLINE
#define ST_INLINE static inline __attribute__((always_inline))
#endif

#ifdef __clang__
#define ST_UNROLL _Pragma("unroll")
#else
#define ST_UNROLL
#endif

#define ST_ETH_P_8021Q 0x8100
#define ST_ETH_P_8021AD 0x88A8
#define ST_ETH_P_QINQ1 0x9100
/*
 * The parser's limits, the same in the kernel and on the host (pcap input, unit tests,
 * fuzzers): at most this many VLAN tags and IPv6 extension headers. A frame with more is
 * ST_PARSE_OTHER (ignored, like non-TCP traffic). The verifier walks every unrolled
 * iteration: docs/ARCHITECTURE.md has what these values cost it.
 */
#define ST_MAX_VLAN_TAGS 4
#define ST_MAX_V6_EXT 8

enum st_parse_result {
	ST_PARSE_TCP = 0,   /* a TCP segment: fields below are valid */
	ST_PARSE_OTHER = 1, /* not TCP (or not IP): ignore quietly */
	ST_PARSE_BAD = 2,   /* truncated or malformed */
	ST_PARSE_FRAG = 3,  /* an IP fragment (TCP stacks do not fragment): ignored */
};

struct st_pkt {
	__u8 family;    /* 4 or 6 */
	__u8 tcp_flags;
	__u16 vlan;     /* outermost in-band VLAN id, 0 if none */
	__u16 sport, dport; /* host order */
	__u16 window;
	__u32 saddr[4], daddr[4];
	__u32 seq, ack;     /* host order */
	__u32 payload_off;  /* offset of TCP payload from the start of the frame */
	__u32 payload_len;  /* up to the IP length, or pkt_len when smaller or unknown */
	__u32 ip_end;       /* end of the IP datagram per its header; 0 if it does not say */
};

struct st_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct st_v6_ext {
	__u8 next;
	__u8 len;
	__u8 pad[6];
};

/*
 * Parses from the network layer on. proto (network order) is the ethertype
 * that precedes offset off (Ethernet, Linux cooked capture; VLAN tags may
 * follow it), or 0 for a bare IP packet at off (version nibble decides).
 * pkt_len: the frame's length on the wire (skb->len, paged data included);
 * only headers are read, so a capture that holds fewer bytes parses too.
 */
ST_INLINE int st_parse_at(void *ctx, __u32 pkt_len, __u16 proto, __u32 off, struct st_pkt *p)
{
	__u8 l4 = 0;
	__u32 l3_end = 0; /* end of the IP datagram per its header, 0 if unknown */
	struct tcphdr th;

	p->vlan = 0;
ST_UNROLL
	for (int i = 0; i < ST_MAX_VLAN_TAGS; i++) {
		struct st_vlan_hdr vh;

		if (proto != bpf_htons(ST_ETH_P_8021Q) && proto != bpf_htons(ST_ETH_P_8021AD) &&
		    proto != bpf_htons(ST_ETH_P_QINQ1))
			break;
		if (ST_LOAD(ctx, off, &vh, sizeof(vh)))
			return ST_PARSE_BAD;
		if (i == 0)
			p->vlan = bpf_ntohs(vh.tci) & 0x0fff;
		proto = vh.proto;
		off += sizeof(vh);
	}
	if (!proto) {
		__u8 v;

		if (ST_LOAD(ctx, off, &v, 1))
			return ST_PARSE_BAD;
		if ((v >> 4) == 4)
			proto = bpf_htons(ETH_P_IP);
		else if ((v >> 4) == 6)
			proto = bpf_htons(ETH_P_IPV6);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		__u32 hl, tot;

		if (ST_LOAD(ctx, off, &ip, sizeof(ip)))
			return ST_PARSE_BAD;
		if (ip.version != 4 || ip.ihl < 5)
			return ST_PARSE_BAD;
		if (ip.protocol != IPPROTO_TCP)
			return ST_PARSE_OTHER;
		/* A non-first fragment has no TCP header; a first fragment's
		 * payload is incomplete. TCP does not fragment in practice. */
		if (ip.frag_off & bpf_htons(0x3fff))
			return ST_PARSE_FRAG;
		hl = (__u32)ip.ihl * 4;
		tot = bpf_ntohs(ip.tot_len);
		/* tot_len 0 is BIG TCP's way to say "see skb->len". */
		if (tot) {
			if (tot < hl)
				return ST_PARSE_BAD;
			l3_end = off + tot;
		}
		p->family = 4;
		p->saddr[0] = ip.saddr;
		p->daddr[0] = ip.daddr;
		p->saddr[1] = p->saddr[2] = p->saddr[3] = 0;
		p->daddr[1] = p->daddr[2] = p->daddr[3] = 0;
		off += hl;
		l4 = IPPROTO_TCP;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u8 next;
		__u32 plen;

		if (ST_LOAD(ctx, off, &ip6, sizeof(ip6)))
			return ST_PARSE_BAD;
		if (ip6.version != 6)
			return ST_PARSE_BAD;
		plen = bpf_ntohs(ip6.payload_len);
		if (plen)
			l3_end = off + sizeof(ip6) + plen;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		next = ip6.nexthdr;
		off += sizeof(ip6);
ST_UNROLL
		for (int i = 0; i < ST_MAX_V6_EXT; i++) {
			struct st_v6_ext ext;

			if (next == IPPROTO_TCP)
				break;
			if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
			    next != IPPROTO_DSTOPTS && next != IPPROTO_FRAGMENT && next != IPPROTO_AH)
				return ST_PARSE_OTHER;
			if (ST_LOAD(ctx, off, &ext, sizeof(ext)))
				return ST_PARSE_BAD;
			if (next == IPPROTO_FRAGMENT) {
				/* Fragment header: offset/M bits in bytes 2..3. */
				__u16 fo = ((__u16)ext.pad[0] << 8) | ext.pad[1];

				if (fo & 0xfff9)
					return ST_PARSE_FRAG;
				off += 8;
			} else if (next == IPPROTO_AH) {
				off += ((__u32)ext.len + 2) * 4;
			} else {
				off += ((__u32)ext.len + 1) * 8;
			}
			next = ext.next;
		}
		if (next != IPPROTO_TCP)
			return ST_PARSE_OTHER;
		l4 = IPPROTO_TCP;
	} else {
		return ST_PARSE_OTHER;
	}
	if (l4 != IPPROTO_TCP)
		return ST_PARSE_OTHER;

	if (ST_LOAD(ctx, off, &th, sizeof(th)))
		return ST_PARSE_BAD;
	if (th.doff < 5)
		return ST_PARSE_BAD;
	p->sport = bpf_ntohs(th.source);
	p->dport = bpf_ntohs(th.dest);
	p->seq = bpf_ntohl(th.seq);
	p->ack = bpf_ntohl(th.ack_seq);
	p->window = bpf_ntohs(th.window);
	p->tcp_flags = ((__u8 *)&th)[13];
	off += (__u32)th.doff * 4;
	if (off > pkt_len)
		return ST_PARSE_BAD;
	/* The IP length excludes Ethernet padding; skb->len covers GSO data
	 * beyond 64 KiB (BIG TCP) where the IP length field is zero. */
	if (l3_end && l3_end < off)
		return ST_PARSE_BAD;
	if (l3_end && l3_end < pkt_len)
		p->payload_len = l3_end - off;
	else
		p->payload_len = pkt_len - off;
	p->payload_off = off;
	p->ip_end = l3_end;
	return ST_PARSE_TCP;
}

/*
 * l2: 1 when the frame starts with an Ethernet header (TC), 0 when it starts
 * at the IP header (cgroup_skb).
 */
ST_INLINE int st_parse(void *ctx, __u32 pkt_len, int l2, struct st_pkt *p)
{
	struct ethhdr eth;

	if (!l2)
		return st_parse_at(ctx, pkt_len, 0, 0, p);
	if (ST_LOAD(ctx, 0, &eth, sizeof(eth)))
		return ST_PARSE_BAD;
	return st_parse_at(ctx, pkt_len, eth.h_proto, sizeof(eth), p);
}

#endif /* ST_PARSE_H */
