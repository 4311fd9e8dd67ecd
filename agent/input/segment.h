/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A TCP segment as every consumer in the agent sees it, whether it came from
 * the kernel's ring buffer (record.c) or from a pcap file (pcapin.c).
 */
#ifndef ST_SEGMENT_H
#define ST_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "bpf/shadowtap.h"

struct st_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t pad[3];
	uint32_t a[4];  /* network order; IPv4 in a[0], rest zero */
};

struct st_flow_key {
	struct st_addr src;
	struct st_addr dst;
	uint16_t sport; /* host order */
	uint16_t dport;
};

enum st_seg_kind {
	ST_SEG_DATA = 0, /* bytes present (len may be 0: a bare SYN/FIN/RST/ACK) */
	ST_SEG_LOSS = 1, /* the capture lost len bytes starting at seq */
};

struct st_segment {
	struct st_flow_key key; /* as on the wire: src = sender */
	uint64_t ts_ns;         /* CLOCK_REALTIME nanoseconds */
	uint32_t seq;           /* sequence number of data[0] */
	uint32_t ack;
	uint16_t window;
	uint8_t flags;          /* ST_TCP_* */
	uint8_t kind;           /* enum st_seg_kind */
	int8_t dir;             /* enum st_dir, or -1 when unknown (pcap input) */
	uint8_t elided_before;  /* 1: the capture copies no payload of this direction (copy
				 * policy "none"): bytes before seq that never came were elided
				 * on purpose, not lost */
	uint8_t pad[2];
	uint32_t ifindex;
	uint16_t vlan;
	uint16_t pad2;
	uint32_t len;           /* payload bytes (DATA) or lost bytes (LOSS) */
	uint32_t elided;        /* bytes right after those, [seq + len, seq + len + elided),
				 * left out by the capture's copy policy (headers-only): a hole of
				 * known length that is not a loss; 0 otherwise */
	const uint8_t *data;    /* DATA: len bytes, valid only during the callback */
};

#endif /* ST_SEGMENT_H */
