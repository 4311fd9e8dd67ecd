/* SPDX-License-Identifier: GPL-2.0-only */
#include "record.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int st_record_decode(const void *rec, size_t size, int64_t real_offset_ns,
		     struct st_segment *seg)
{
	const struct st_rec *r = rec;

	if (size < sizeof(*r) || r->version != ST_ABI_VERSION)
		return -EINVAL;
	if (r->type != ST_REC_DATA && r->type != ST_REC_LOSS)
		return -EINVAL;
	if ((r->family != 4 && r->family != 6) || r->dir >= ST_DIR_MAX)
		return -EINVAL;
	if (r->type == ST_REC_DATA && (r->len > ST_CHUNK_MAX || r->len > size - sizeof(*r)))
		return -EINVAL;
	if ((uint64_t)r->off + r->len > r->seg_len)
		return -EINVAL;
	if (r->rflags & ~(ST_RF_ELIDED | ST_RF_NO_PAYLOAD | ST_RF_TLS))
		return -EINVAL;

	memset(seg, 0, sizeof(*seg));
	seg->key.src.family = seg->key.dst.family = r->family;
	memcpy(seg->key.src.a, r->saddr, sizeof(seg->key.src.a));
	memcpy(seg->key.dst.a, r->daddr, sizeof(seg->key.dst.a));
	if (r->family == 4) {
		seg->key.src.a[1] = seg->key.src.a[2] = seg->key.src.a[3] = 0;
		seg->key.dst.a[1] = seg->key.dst.a[2] = seg->key.dst.a[3] = 0;
	}
	seg->key.sport = r->sport;
	seg->key.dport = r->dport;
	seg->ts_ns = (uint64_t)((int64_t)r->ts_ns + real_offset_ns);
	seg->seq = r->seq;
	seg->ack = r->ack;
	seg->window = r->window;
	seg->flags = r->tcp_flags;
	seg->kind = r->type == ST_REC_DATA ? ST_SEG_DATA : ST_SEG_LOSS;
	seg->dir = (int8_t)r->dir;
	seg->ifindex = r->ifindex;
	seg->vlan = r->vlan;
	seg->len = r->len;
	seg->data = r->type == ST_REC_DATA ? (const uint8_t *)(r + 1) : NULL;
	/* elided by policy: the rest of the segment, and (policy none) what came before */
	if (r->rflags & ST_RF_ELIDED)
		seg->elided = r->seg_len - r->off - r->len;
	seg->elided_before = !!(r->rflags & ST_RF_NO_PAYLOAD);
	return 0;
}

int64_t st_record_realtime_offset_ns(void)
{
	struct timespec m1, rt, m2;

	/* Bracket the realtime read between two monotonic reads. */
	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	int64_t mono = ((int64_t)m1.tv_sec * 1000000000 + m1.tv_nsec +
			(int64_t)m2.tv_sec * 1000000000 + m2.tv_nsec) / 2;
	return (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - mono;
}
