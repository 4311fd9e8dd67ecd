/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the tee stream's decoder (agent/stream/stream.c). Input: one byte giving
 * the size of the pieces the rest is fed in (0: all at once), then the stream. Checked on
 * every event: offsets contiguous per connection direction, nothing after a direction's
 * end, the counts the decoder keeps in the connection match what it delivered; at the end,
 * either a clean finish or exactly one error line; all memory given back (ASan).
 * Seeds (tests/fuzz/corpus/fuzz_stream) are streams the encoder wrote.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "fuzz_check.h"

struct cst {
	uint64_t next[2];
	int ended[2];
};

struct ctx {
	uint64_t opens, closes;
	int headers, finished;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_open(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(c->user == NULL);
	CHECK(cx->headers == 1 && !cx->finished);
	c->user = calloc(1, sizeof(struct cst));
	CHECK(c->user);
	cx->opens++;
}

static void on_data(void *x, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct cst *s = c->user;
	volatile uint8_t sink = 0;

	CHECK(dir == 0 || dir == 1);
	CHECK(!s->ended[dir]);
	CHECK(off == s->next[dir] && len > 0 && len <= ST_STREAM_DATA_MAX);
	for (uint32_t i = 0; i < len; i++)
		sink ^= d[i];
	(void)sink;
	s->next[dir] += len;
	CHECK(c->bytes[dir] + c->gap_bytes[dir] == s->next[dir]);
}

static void on_gap(void *x, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(dir == 0 || dir == 1);
	CHECK(!s->ended[dir]);
	CHECK(off == s->next[dir] && len > 0);
	CHECK(st_stream_gap_str(why) != NULL);
	s->next[dir] += len;
	CHECK(c->bytes[dir] + c->gap_bytes[dir] == s->next[dir]);
}

static void on_end(void *x, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(dir == 0 || dir == 1);
	CHECK(!s->ended[dir]);
	CHECK(why < ST_END_MAX);
	s->ended[dir] = 1;
}

static void on_close(void *x, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(why < ST_END_MAX);
	free(c->user);
	c->user = NULL;
	cx->closes++;
}

static void on_header(void *x, const char *text, unsigned major, unsigned minor)
{
	struct ctx *cx = x;
	char v[64];

	CHECK(major == ST_STREAM_MAJOR);
	CHECK(strlen(text) <= ST_STREAM_HEADER_MAX);
	st_stream_header_get(text, "host", v, sizeof(v));
	cx->headers++;
}

static void on_finish(void *x, const struct st_stream_trailer *t)
{
	struct ctx *cx = x;

	CHECK(!cx->finished);
	cx->finished = 1;
}

static const struct st_stream_ops ops = {
	.conn = { on_open, on_data, on_gap, on_end, on_close },
	.header = on_header,
	.finish = on_finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx cx = { 0 };
	struct st_stream_dec *d;
	size_t step;
	int rc = 0;

	if (!size)
		return 0;
	step = data[0] ? data[0] : size;
	data++;
	size--;
	d = st_stream_dec__new(&ops, &cx, 64);
	CHECK(d);
	for (size_t o = 0; o < size && !rc; o += step)
		rc = st_stream_dec__feed(d, data + o, size - o < step ? size - o : step);
	if (!rc)
		rc = st_stream_dec__eof(d);
	if (rc) {
		const char *e = st_stream_dec__error(d);

		CHECK(e && *e && !strchr(e, '\n'));
		CHECK(st_stream_dec__feed(d, "x", 1) == -1);
	} else {
		CHECK(cx.finished && st_stream_dec__done(d));
	}
	CHECK(st_stream_dec__offset(d) <= size);
	st_stream_dec__close_all(d, 0);
	CHECK(cx.opens == cx.closes);
	st_stream_dec__free(d);
	return 0;
}
