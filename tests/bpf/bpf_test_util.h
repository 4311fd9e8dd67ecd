/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for BPF program tests (cmocka + bpf_prog_test_run_opts): a frame
 * builder for crafted TCP packets, a ring buffer collector, program runs and
 * summed per-CPU counters. Header-only; include it after cmocka.h.
 * (tests/bpf/test_bpf_tap.c has its own copies of the first versions.)
 */
#ifndef ST_BPF_TEST_UTIL_H
#define ST_BPF_TEST_UTIL_H

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/shadowtap.h"
#include "tap.skel.h"

#define BT_MAX_RECS 512

struct bt_got {
	size_t n;
	struct st_rec recs[BT_MAX_RECS];
	uint8_t *data[BT_MAX_RECS];
	size_t size[BT_MAX_RECS]; /* as the ring delivered it */
};

static inline int bt_collect(void *ctx, void *data, size_t size)
{
	struct bt_got *g = ctx;
	const struct st_rec *r = data;

	assert_true(size >= sizeof(*r));
	assert_true(g->n < BT_MAX_RECS);
	g->recs[g->n] = *r;
	g->size[g->n] = size;
	g->data[g->n] = NULL;
	if (r->type == ST_REC_DATA && r->len) {
		assert_true(size >= sizeof(*r) + r->len);
		g->data[g->n] = malloc(r->len);
		memcpy(g->data[g->n], r + 1, r->len);
	}
	g->n++;
	return 0;
}

static inline void bt_got_reset(struct bt_got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

/* ---- packet builder ------------------------------------------------------------------ */

struct bt_spec {
	int v6;
	uint32_t src, dst; /* IPv4 addresses (host order); IPv6 uses fd00::src / fd00::dst */
	uint32_t src_hi;   /* IPv6: also fd00:<src_hi>::<src> (varies the upper words) */
	uint32_t dst_hi;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint32_t len;      /* payload bytes */
	const char *prefix; /* the payload starts with these bytes (NULL: the pattern only) */
};

static inline void bt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void bt_put32(uint8_t *p, uint32_t v)
{
	bt_put16(p, (uint16_t)(v >> 16));
	bt_put16(p + 2, (uint16_t)v);
}

static inline uint8_t bt_payload_byte(uint32_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* fd00:HI::LOW as 16 bytes (network order). */
static inline void bt_v6addr(uint8_t *p, uint32_t hi, uint32_t low)
{
	memset(p, 0, 16);
	p[0] = 0xfd;
	bt_put32(p + 4, hi);
	bt_put32(p + 12, low);
}

/* Ethernet + IPv4/IPv6 + TCP (no options) + payload; returns the frame length. */
static inline size_t bt_build(const struct bt_spec *s, uint8_t *buf)
{
	size_t off = 14, tcp_len = 20 + s->len;
	uint8_t *ip = buf + off, *th;

	memset(buf, 0, 14);
	buf[0] = 0x02;
	buf[6] = 0x02;
	bt_put16(buf + 12, s->v6 ? 0x86dd : 0x0800);
	if (!s->v6) {
		memset(ip, 0, 20);
		ip[0] = 0x45;
		bt_put16(ip + 2, (uint16_t)(20 + tcp_len));
		bt_put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = 6;
		bt_put32(ip + 12, s->src);
		bt_put32(ip + 16, s->dst);
		off += 20;
	} else {
		memset(ip, 0, 40);
		ip[0] = 0x60;
		bt_put16(ip + 4, (uint16_t)tcp_len);
		ip[6] = 6;
		ip[7] = 64;
		bt_v6addr(ip + 8, s->src_hi, s->src);
		bt_v6addr(ip + 24, s->dst_hi, s->dst);
		off += 40;
	}
	th = buf + off;
	memset(th, 0, 20);
	bt_put16(th, s->sport);
	bt_put16(th + 2, s->dport);
	bt_put32(th + 4, s->seq);
	bt_put32(th + 8, s->ack);
	th[12] = 5 << 4;
	th[13] = s->flags;
	bt_put16(th + 14, 512);
	off += 20;
	for (uint32_t i = 0; i < s->len; i++)
		buf[off + i] = bt_payload_byte(i);
	if (s->prefix)
		memcpy(buf + off, s->prefix, strlen(s->prefix) < s->len ? strlen(s->prefix) : s->len);
	return off + s->len;
}

/* The frame's addresses as the ABI carries them (network order words). */
static inline void bt_addrs(const struct bt_spec *s, uint32_t src[4], uint32_t dst[4])
{
	memset(src, 0, 16);
	memset(dst, 0, 16);
	if (s->v6) {
		bt_v6addr((uint8_t *)src, s->src_hi, s->src);
		bt_v6addr((uint8_t *)dst, s->dst_hi, s->dst);
	} else {
		src[0] = htonl(s->src);
		dst[0] = htonl(s->dst);
	}
}

/* ---- programs --------------------------------------------------------------------------- */

enum bt_prog { BT_TC_IN, BT_TC_OUT, BT_CG_IN, BT_CG_OUT };

static inline int bt_egress(enum bt_prog p)
{
	return p == BT_TC_OUT || p == BT_CG_OUT;
}

/* Runs one frame through a program and returns the verdict; the ring is consumed into the
 * collector afterwards. (The test run strips the Ethernet header for cgroup programs.) */
static inline __u32 bt_run(struct tap_bpf *skel, struct ring_buffer *rb, struct bt_got *g,
			   enum bt_prog which, const struct bt_spec *s)
{
	static uint8_t buf[4096];
	size_t len = bt_build(s, buf);
	struct bpf_program *progs[] = { skel->progs.tc_ingress, skel->progs.tc_egress,
					skel->progs.cgroup_skb_ingress,
					skel->progs.cgroup_skb_egress };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = (__u32)len);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(progs[which]), &o), 0);
	bt_got_reset(g);
	ring_buffer__consume(rb);
	return o.retval;
}

static inline __u32 bt_pass_verdict(enum bt_prog which)
{
	/* TC_ACT_UNSPEC (TCX_NEXT), cgroup "allow" */
	return which == BT_CG_IN || which == BT_CG_OUT ? 1u : (__u32)TC_ACT_UNSPEC;
}

static inline void bt_counters(struct tap_bpf *skel, __u32 dir, struct st_counters *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct st_counters *v = calloc((size_t)ncpu, sizeof(*v));

	assert_non_null(v);
	memset(out, 0, sizeof(*out));
	assert_int_equal(bpf_map__lookup_elem(skel->maps.counters, &dir, sizeof(dir), v,
					      sizeof(*v) * (size_t)ncpu, 0), 0);
	for (int i = 0; i < ncpu; i++) {
		out->segs += v[i].segs;
		out->bytes += v[i].bytes;
		out->records += v[i].records;
		out->lost_segs += v[i].lost_segs;
		out->lost_bytes += v[i].lost_bytes;
		out->lost_unreported += v[i].lost_unreported;
		out->parse_skipped += v[i].parse_skipped;
		out->sampled_out += v[i].sampled_out;
		out->elided_bytes += v[i].elided_bytes;
	}
	free(v);
}

#endif /* ST_BPF_TEST_UTIL_H */
