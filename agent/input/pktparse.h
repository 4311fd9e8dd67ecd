/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The BPF programs' packet parser (bpf/parse.h), built for user space: the
 * same code reads frames in the kernel and in pcap files, so a parsing rule
 * fixed or fuzzed in one place holds in both.
 */
#ifndef ST_PKTPARSE_H
#define ST_PKTPARSE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* Bytes of a frame held in memory: avail may be less than the wire length. */
struct st_pktbuf {
	const uint8_t *p;
	uint32_t avail;
};

static inline int st_pktbuf_load(const struct st_pktbuf *b, uint32_t off, void *dst, uint32_t len)
{
	if (off > b->avail || len > b->avail - off)
		return -EFAULT;
	memcpy(dst, b->p + off, len);
	return 0;
}

#define ST_INLINE static inline
#define ST_LOAD(ctx, off, dst, len) st_pktbuf_load((ctx), (off), (dst), (len))
#include "bpf/parse.h"

#endif /* ST_PKTPARSE_H */
