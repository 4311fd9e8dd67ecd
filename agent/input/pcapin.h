/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pcap / pcapng input: reads a capture file with libpcap and turns each TCP
 * packet into a struct st_segment (dir = -1: a file does not say which side
 * is the service). Link types: Ethernet (802.1Q / 802.1ad tags), Linux cooked
 * v1 and v2, raw IP (DLT_RAW, LINKTYPE_IPV4/IPV6), BSD null and loop.
 *
 * A packet cut by the snap length gives its captured bytes as a DATA segment
 * followed by an ST_SEG_LOSS segment for the bytes the file does not hold, so
 * the reassembly reports them as a gap instead of splicing across them.
 */
#ifndef ST_PCAPIN_H
#define ST_PCAPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <pcap/pcap.h>

#include "segment.h"

/* Link types as pcap_datalink() reports them; a few headers lack the newer ones. */
#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#ifndef DLT_LOOP
#define DLT_LOOP 108
#endif

struct st_pcapin_stats {
	uint64_t packets;     /* records read */
	uint64_t segments;    /* TCP segments produced (not counting snap-length losses) */
	uint64_t not_tcp;     /* other protocols and link types: skipped */
	uint64_t malformed;   /* TCP/IP headers that do not parse or are cut: skipped */
	uint64_t fragments;   /* IP fragments: skipped (TCP stacks do not fragment) */
	uint64_t snap_cut;    /* packets whose payload the snap length cut */
	uint64_t snap_bytes;  /* payload bytes missing because of it */
};

enum st_pcapin_decode {
	ST_DEC_TCP = 1,
	ST_DEC_OTHER = 0,      /* not TCP over IP */
	ST_DEC_MALFORMED = -1,
	ST_DEC_FRAGMENT = -2,
};

struct st_pcapin;

/*
 * Opens path (pcap or pcapng; "-" is stdin; see st_pcapin__buffered()). On failure returns NULL with
 * errno set and a one-line reason (libpcap's) in err. A file whose link type
 * the decoder does not know fails too (errno EPROTONOSUPPORT; err names the
 * type by number, and by name when libpcap knows it): read on, it would give
 * no segment at all, which looks like an empty capture.
 */
struct st_pcapin *st_pcapin__open(const char *path, char *err, size_t errlen);
/* The same from an open stream, which the reader then owns (fmemopen in the fuzzer). */
struct st_pcapin *st_pcapin__fopen(FILE *f, char *err, size_t errlen);
/*
 * Next TCP segment: 1 (seg valid until the next call), 0 at the end, or
 * -EIO when the file is damaged (st_pcapin__error() says how; everything
 * before it was delivered; st_pcapin__truncated() tells a plain cut).
 */
int st_pcapin__next(struct st_pcapin *p, struct st_segment *seg);
const char *st_pcapin__error(const struct st_pcapin *p);
bool st_pcapin__truncated(const struct st_pcapin *p);
int st_pcapin__linktype(const struct st_pcapin *p);
/* True when a classic pcap in a regular file is read here, in 1 MiB reads, its records
 * parsed in place and checked as libpcap checks them (its messages), rather than by
 * libpcap (pcapng, pipes). */
bool st_pcapin__buffered(const struct st_pcapin *p);
/* The link types st_pcapin_decode() knows (ST_PCAPIN_LINKTYPES says which, for messages). */
bool st_pcapin_linktype_known(int dlt);
#define ST_PCAPIN_LINKTYPES "Ethernet, Linux cooked v1/v2, raw IPv4/IPv6, BSD null/loop"
void st_pcapin__stats(const struct st_pcapin *p, struct st_pcapin_stats *out);
/* How far the reading is: bytes of the file consumed and its size. 0, or -1 when unknown
 * (a pipe, stdin). */
int st_pcapin__position(const struct st_pcapin *p, uint64_t *pos, uint64_t *size);
void st_pcapin__close(struct st_pcapin *p);

/*
 * Decodes one frame of link type dlt (a DLT_* value as pcap_datalink()
 * returns it). Fills seg (key, seq, ack, window, flags, data, len; ts_ns,
 * dir are left to the caller) and *cut, the payload bytes the frame claims
 * beyond caplen. Returns enum st_pcapin_decode.
 */
int st_pcapin_decode(int dlt, const uint8_t *pkt, uint32_t caplen, struct st_segment *seg,
		     uint32_t *cut);

#endif /* ST_PCAPIN_H */
