/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/reasm/reasm.c. Input: 4 config bytes, then 12-byte
 * records, each one segment (or a timer tick) on one of four 4-tuples; the
 * engine's contract is checked on every event: offsets contiguous per
 * connection direction, nothing after a direction's end or a close, every
 * byte delivered or reported as a gap exactly once, all memory given back.
 *
 * Record: [0] tuple (bits 0-1), sender (bit 2), loss (bit 3), live dir known
 * (bit 4), new ISN (bit 5), tick (bit 6); [1] TCP flags; [2..3] seq delta
 * (signed, from the tuple's base); [4..5] ack delta; [6] length; [7] length
 * shift (bits 0-2), bytes differ from the pattern (bit 3); [8] time step;
 * [9..11] ISN bits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reasm.h"
#include "fuzz_check.h"

#define PATTERN_LEN (1u << 16)
#define REC 12

struct cst {
	uint64_t next[2];
	int ended[2];
};

struct ctx {
	uint64_t bytes, gap_bytes, opens, closes;
	uint8_t pattern[PATTERN_LEN + 255 * 128];
	uint8_t noise[255 * 128];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_open(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(c->user == NULL);
	c->user = calloc(1, sizeof(struct cst));
	CHECK(c->user);
	cx->opens++;
}

static void on_data(void *x, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct ctx *cx = x;
	struct cst *s = c->user;
	volatile uint8_t sink;

	CHECK(s && (dir == 0 || dir == 1));
	CHECK(!s->ended[dir]);
	CHECK(off == s->next[dir]);
	CHECK(len > 0);
	sink = d[0];
	sink = d[len - 1]; /* ASan: the bytes are really there */
	(void)sink;
	s->next[dir] += len;
	cx->bytes += len;
}

static void on_gap(void *x, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct ctx *cx = x;
	struct cst *s = c->user;

	CHECK(s && (dir == 0 || dir == 1));
	CHECK(!s->ended[dir]);
	CHECK(off == s->next[dir]);
	CHECK(len > 0);
	CHECK((unsigned)why < ST_GAP_MAX);
	s->next[dir] += len;
	cx->gap_bytes += len;
}

static void on_end(void *x, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(s && !s->ended[dir]);
	s->ended[dir] = 1;
}

static void on_close(void *x, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct ctx *cx = x;
	struct cst *s = c->user;

	CHECK(s && s->ended[0] && s->ended[1]);
	CHECK(c->bytes[0] + c->gap_bytes[0] == s->next[0]);
	CHECK(c->bytes[1] + c->gap_bytes[1] == s->next[1]);
	free(s);
	c->user = NULL;
	cx->closes++;
}

static const struct st_reasm_ops ops = {
	.open = on_open, .data = on_data, .gap = on_gap, .end = on_end, .close = on_close,
};

static void tuple(struct st_flow_key *k, int t)
{
	memset(k, 0, sizeof(*k));
	k->src.family = k->dst.family = t == 3 ? 6 : 4;
	if (t == 3) {
		k->src.a[0] = k->dst.a[0] = 0x20010db8;
		k->src.a[3] = 1;
		k->dst.a[3] = 2;
	} else {
		k->src.a[0] = 0x0100000a;
		k->dst.a[0] = 0x0200000a;
	}
	k->sport = (uint16_t)(40000 + (t & 1));
	k->dport = t == 2 ? 8080 : 80;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctx cx;
	static int init;
	struct st_reasm_config cfg = { 0 };
	static const uint16_t ports[] = { 80 };
	struct st_reasm_stats st;
	uint32_t base[4][2];
	uint64_t now = 1000000000ull, mem0;
	struct st_reasm *r;
	size_t i;
	int t, d;

	if (!init) {
		for (i = 0; i < sizeof(cx.pattern); i++)
			cx.pattern[i] = (uint8_t)(i * 131 + 7);
		for (i = 0; i < sizeof(cx.noise); i++)
			cx.noise[i] = (uint8_t)(i * 17 + 3);
		init = 1;
	}
	cx.bytes = cx.gap_bytes = cx.opens = cx.closes = 0;
	if (size < 4)
		return 0;
	/* small caps so that the cap paths run */
	cfg.ooo_max = 64u << (data[0] & 15);
	cfg.ooo_segs = 1u + (data[1] & 63);
	cfg.max_mem = 8192u << (data[2] & 15);
	cfg.gap_wait_ns = 1000000ull << (data[3] & 15);
	cfg.idle_ns = cfg.gap_wait_ns * 8;
	if (data[3] & 0x80) {
		cfg.ports = ports;
		cfg.n_ports = 1;
	}
	r = st_reasm__new(&cfg, &ops, &cx);
	CHECK(r);
	st_reasm__stats(r, &st);
	mem0 = st.mem;
	for (t = 0; t < 4; t++)
		for (d = 0; d < 2; d++)
			base[t][d] = 0xfffff000u * (uint32_t)(t & 1) + 1000u * (uint32_t)d;
	data += 4;
	size -= 4;
	for (; size >= REC; data += REC, size -= REC) {
		struct st_segment s;
		uint32_t len = (uint32_t)data[6] << (data[7] & 7);
		int16_t sd = (int16_t)(data[2] << 8 | data[3]), ad = (int16_t)(data[4] << 8 | data[5]);

		t = data[0] & 3;
		d = !!(data[0] & 4);
		now += (uint64_t)data[8] * (data[7] & 0x40 ? 100000000ull : 1000000ull);
		if (data[0] & 0x40) {
			st_reasm__tick(r, now);
			continue;
		}
		if (data[0] & 0x20)
			base[t][d] += (uint32_t)data[9] << 24 | (uint32_t)data[10] << 12 | data[11];
		memset(&s, 0, sizeof(s));
		tuple(&s.key, t);
		if (d) {
			struct st_addr a = s.key.src;
			uint16_t p = s.key.sport;

			s.key.src = s.key.dst;
			s.key.dst = a;
			s.key.sport = s.key.dport;
			s.key.dport = p;
		}
		s.ts_ns = now;
		s.seq = base[t][d] + (uint32_t)(int32_t)sd;
		s.ack = base[t][!d] + (uint32_t)(int32_t)ad;
		s.flags = data[1];
		s.kind = data[0] & 8 ? ST_SEG_LOSS : ST_SEG_DATA;
		s.dir = data[0] & 0x10 ? (int8_t)d : -1;
		s.len = len;
		if (s.kind == ST_SEG_DATA)
			s.data = data[7] & 8 ? cx.noise : cx.pattern + (s.seq & (PATTERN_LEN - 1));
		CHECK(st_reasm__feed(r, &s) == 0);
		st_reasm__stats(r, &st);
		/* the global cap holds after every segment (or nothing is left to evict) */
		CHECK(st.mem <= cfg.max_mem || st.mem == mem0);
	}
	st_reasm__flush(r);
	st_reasm__stats(r, &st);
	CHECK(st.conns_active == 0);
	CHECK(st.mem == mem0);
	CHECK(cx.opens == st.conns && cx.closes == st.conns);
	CHECK(cx.bytes == st.bytes);
	CHECK(cx.gap_bytes == st.gap_bytes);
	CHECK(st.loss_bytes <= st.gap_bytes);
	st_reasm__free(r);
	return 0;
}
