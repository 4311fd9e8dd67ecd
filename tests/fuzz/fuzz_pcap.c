/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/input/pcapin.c and the engine behind it: the input is
 * a pcap or pcapng file, read from memory (fmemopen + pcap_fopen_offline);
 * every segment goes to the reassembly engine with small caps. Checks: the
 * decoder never reads past a frame (ASan), segments are sane, the engine's
 * events stay contiguous and every byte of state is given back.
 *
 * Differential: a classic pcap is also read the way st_pcapin__open() reads a
 * regular file (large reads, its records parsed by pcapin.c, not libpcap),
 * from a memfd: both readers must give the same segments, bytes and errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pcapin.h"
#include "reasm.h"
#include "fuzz_check.h"

struct cst {
	uint64_t next[2];
};

struct ctx {
	uint64_t bytes, gap_bytes;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_open(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	c->user = calloc(1, sizeof(struct cst));
	CHECK(c->user);
}

static void on_data(void *x, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct cst *s = c->user;
	struct ctx *cx = x;
	volatile uint8_t sink;

	CHECK(off == s->next[dir] && len > 0);
	sink = d[0];
	sink = d[len - 1];
	(void)sink;
	s->next[dir] += len;
	cx->bytes += len;
}

static void on_gap(void *x, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct cst *s = c->user;
	struct ctx *cx = x;

	CHECK(off == s->next[dir] && len > 0);
	s->next[dir] += len;
	cx->gap_bytes += len;
}

static void on_close(void *x, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	free(c->user);
	c->user = NULL;
}

static const struct st_reasm_ops ops = {
	.open = on_open, .data = on_data, .gap = on_gap, .close = on_close,
};

/* The same bytes through libpcap (fmemopen) and through pcapin's own reader (a memfd). */
static void differential(const uint8_t *data, size_t size)
{
	struct st_pcapin *a, *b;
	struct st_segment sa, sb;
	char path[64], err[512];
	void *copy;
	FILE *f;
	int fd, ra, rb;

	fd = memfd_create("fuzz_pcap", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	copy = malloc(size);
	CHECK(copy);
	memcpy(copy, data, size);
	f = fmemopen(copy, size, "rb");
	CHECK(f);
	a = st_pcapin__fopen(f, err, sizeof(err));
	b = st_pcapin__open(path, err, sizeof(err));
	CHECK(!a == !b);
	while (a) {
		ra = st_pcapin__next(a, &sa);
		rb = st_pcapin__next(b, &sb);
		CHECK(ra == rb);
		if (ra <= 0) {
			CHECK(st_pcapin__truncated(a) == st_pcapin__truncated(b));
			break;
		}
		CHECK(!memcmp(&sa.key, &sb.key, sizeof(sa.key)));
		CHECK(sa.ts_ns == sb.ts_ns && sa.seq == sb.seq && sa.ack == sb.ack);
		CHECK(sa.flags == sb.flags && sa.kind == sb.kind && sa.len == sb.len);
		CHECK(sa.kind == ST_SEG_LOSS || !sa.len || !memcmp(sa.data, sb.data, sa.len));
	}
	st_pcapin__close(a);
	st_pcapin__close(b);
	free(copy);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_reasm_config cfg = { .ooo_max = 4096, .ooo_segs = 16, .max_mem = 1u << 20 };
	struct ctx cx = { 0 };
	struct st_reasm_stats st;
	struct st_segment s;
	struct st_pcapin *p;
	struct st_reasm *r;
	char err[512];
	uint64_t mem0;
	void *copy;
	FILE *f;
	int rc;

	if (!size)
		return 0;
	copy = malloc(size);
	CHECK(copy);
	memcpy(copy, data, size);
	f = fmemopen(copy, size, "rb");
	CHECK(f);
	p = st_pcapin__fopen(f, err, sizeof(err));
	if (!p) {
		CHECK(err[0]); /* a reason is always given */
		free(copy);
		return 0;
	}
	r = st_reasm__new(&cfg, &ops, &cx);
	CHECK(r);
	st_reasm__stats(r, &st);
	mem0 = st.mem;
	while ((rc = st_pcapin__next(p, &s)) > 0) {
		CHECK(s.key.src.family == 4 || s.key.src.family == 6);
		CHECK(s.kind == ST_SEG_DATA || s.kind == ST_SEG_LOSS);
		CHECK(s.kind == ST_SEG_LOSS || !s.len || s.data);
		CHECK(st_reasm__feed(r, &s) == 0);
	}
	CHECK(rc == 0 || st_pcapin__error(p)[0]);
	st_reasm__flush(r);
	st_reasm__stats(r, &st);
	/* all given back (the flow table may have grown with many connections) */
	CHECK(st.conns_active == 0 && (st.mem == mem0 || st.conns > 1024));
	CHECK(cx.bytes == st.bytes && cx.gap_bytes == st.gap_bytes);
	st_reasm__free(r);
	st_pcapin__close(p);
	free(copy);
	if (size >= 24)
		differential(data, size);
	return 0;
}
