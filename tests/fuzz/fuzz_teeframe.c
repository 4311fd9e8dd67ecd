/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the tee's framing (agent/stream/teeframe.c): captured traffic is
 * untrusted, and every byte of it goes through the framing with redaction. Input: a flags
 * byte (bit 0 raw, bit 1 --no-redact, bit 2 a --match-path filter, bit 3 a --redact-field),
 * then commands, each one byte: its low 3 bits the op, bit 3 the direction, the rest a length
 * (in 64 s for gaps): data (the next bytes of the input, cut at the length), a gap, room
 * refused for what follows or given back, the direction's end, the connection's close and a
 * new one. Checked: the stream the encoder wrote decodes without an error; per connection and
 * direction it covers exactly what reassembly delivered and reported missing; the gaps the
 * framing says it dropped and held add up to its counters (but one edge, below); the
 * trailer's totals are them.
 * Seeds (tests/fuzz/corpus/fuzz_teeframe) are HTTP exchanges in such commands.
 */
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "stream.h"
#include "teeframe.h"

#define CONNS 4

struct ctx {
	uint8_t *wire;
	size_t len, cap;
	enum st_teeframe_room answer;
	/* decoded */
	uint64_t next[CONNS + 1][2];
	int ended[CONNS + 1][2];
	uint64_t dropped, held;
	int finished;
	struct st_stream_trailer tr;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int emit(void *x, const uint8_t *frame, size_t len)
{
	struct ctx *cx = x;

	if (cx->len + len > cx->cap) {
		cx->cap = (cx->len + len) * 2;
		cx->wire = realloc(cx->wire, cx->cap);
		CHECK(cx->wire);
	}
	memcpy(cx->wire + cx->len, frame, len);
	cx->len += len;
	return 0;
}

static enum st_teeframe_room room(void *x, uint64_t n)
{
	return ((struct ctx *)x)->answer;
}

static void d_open(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(c->id >= 1 && c->id <= CONNS);
	cx->next[c->id][0] = cx->next[c->id][1] = 0;
	cx->ended[c->id][0] = cx->ended[c->id][1] = 0;
}

static void d_data(void *x, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		   uint32_t len, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(off == cx->next[c->id][dir]);
	cx->next[c->id][dir] += len;
}

static void d_gap(void *x, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		  enum st_reasm_gap_why why, uint64_t ts)
{
	struct ctx *cx = x;

	CHECK(off == cx->next[c->id][dir]);
	cx->next[c->id][dir] += len;
	if ((unsigned)why == ST_SGAP_DROPPED)
		cx->dropped += len;
	if ((unsigned)why == ST_SGAP_HELD)
		cx->held += len;
}

static void d_end(void *x, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	((struct ctx *)x)->ended[c->id][dir] = 1;
}

static void d_close(void *x, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
}

static void d_finish(void *x, const struct st_stream_trailer *t)
{
	struct ctx *cx = x;

	cx->finished = 1;
	cx->tr = *t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx cx = { 0 };
	struct st_redact_rules rules = { 0 };
	struct st_teeframe_config fc = { .rules = &rules, .room = room, .ctx = &cx };
	const struct st_stream_ops ops = {
		.conn = { .open = d_open, .data = d_data, .gap = d_gap, .end = d_end,
			  .close = d_close },
		.finish = d_finish,
	};
	struct st_reasm_conn conns[CONNS + 1];
	bool open[CONNS + 1] = { 0 }, ended[CONNS + 1][2] = { { 0 } };
	const struct st_teeframe_stats *fs;
	struct st_stream_trailer tr = { 0 };
	struct st_stream_enc *enc;
	struct st_teeframe *f;
	struct st_stream_dec *d;
	unsigned cur = 0, next_id = 1;
	regex_t re;
	size_t i = 1;

	if (!size)
		return 0;
	fc.raw = data[0] & 1;
	rules.none = data[0] & 2;
	if ((data[0] & 4) && !rules.none) {
		CHECK(!regcomp(&re, "^/a", REG_EXTENDED | REG_NOSUB));
		fc.match = &re;
	}
	if ((data[0] & 8) && !rules.none) {
		rules.fields[0] = "k";
		rules.n_fields = 1;
	}
	enc = st_stream_enc__new("format=1.1\n", 1, emit, &cx);
	CHECK(enc);
	f = st_teeframe__new(&fc, enc);
	CHECK(f);
	memset(conns, 0, sizeof(conns));
	while (i < size) {
		uint8_t cmd = data[i++];
		int dir = (cmd >> 3) & 1;
		size_t len = cmd >> 4;
		struct st_reasm_conn *c;

		if (!cur && next_id <= CONNS) {
			cur = next_id++;
			c = &conns[cur];
			c->id = cur;
			c->key.src.family = c->key.dst.family = 4;
			c->key.sport = (uint16_t)(40000 + cur);
			c->key.dport = 80;
			st_teeframe_ops.open(f, c, 1);
			open[cur] = true;
		}
		if (!cur)
			break;
		c = &conns[cur];
		switch (cmd & 7) {
		case 0: /* data: the next 1 + len * 4 bytes (or what is left) */
		case 1:
			len = len * 4 + 1;
			if (len > size - i)
				len = size - i;
			if (!len || ended[cur][dir])
				break;
			st_teeframe_ops.data(f, c, dir, c->bytes[dir] + c->gap_bytes[dir],
					     data + i, (uint32_t)len, 2);
			c->bytes[dir] += len;
			i += len;
			break;
		case 2: /* a capture gap */
			if (ended[cur][dir])
				break;
			st_teeframe_ops.gap(f, c, dir, c->bytes[dir] + c->gap_bytes[dir],
					    len * 64 + 1, ST_GAP_LOSS, 3);
			c->gap_bytes[dir] += len * 64 + 1;
			break;
		case 3: /* room refused for what follows (the reason from len), or given back */
			cx.answer = (enum st_teeframe_room)(len & 3);
			break;
		case 4: /* the direction's end */
			if (!ended[cur][dir]) {
				st_teeframe_ops.end(f, c, dir, ST_END_FIN, 4);
				ended[cur][dir] = true;
			}
			break;
		case 5: /* the connection closes; the next command opens another */
			for (int k = 0; k < 2; k++)
				if (!ended[cur][k]) {
					st_teeframe_ops.end(f, c, k, ST_END_RST, 4);
					ended[cur][k] = true;
				}
			st_teeframe_ops.close(f, c, ST_END_RST, 4);
			open[cur] = false;
			cur = 0;
			break;
		default: /* more data in the same direction, bigger pieces */
			len = len * 64 + 1;
			if (len > size - i)
				len = size - i;
			if (!len || ended[cur][dir])
				break;
			st_teeframe_ops.data(f, c, dir, c->bytes[dir] + c->gap_bytes[dir],
					     data + i, (uint32_t)len, 2);
			c->bytes[dir] += len;
			i += len;
			break;
		}
	}
	cx.answer = ST_TEEFRAME_ROOM;
	for (unsigned k = 1; k <= CONNS; k++) {
		if (!open[k])
			continue;
		for (int j = 0; j < 2; j++)
			if (!ended[k][j])
				st_teeframe_ops.end(f, &conns[k], j, ST_END_FLUSH, 5);
		st_teeframe_ops.close(f, &conns[k], ST_END_FLUSH, 5);
	}
	CHECK(st_teeframe__framed(f) == 0);
	fs = st_teeframe__stats(f);
	tr.dropped_records = fs->dropped_records;
	tr.dropped_bytes = fs->dropped_bytes;
	tr.dropped_conns = fs->dropped_conns;
	tr.held_conns = fs->held_conns;
	CHECK(!st_stream_enc__finish(enc, &tr));

	d = st_stream_dec__new(&ops, &cx, 0);
	CHECK(d);
	if (st_stream_dec__feed(d, cx.wire, cx.len) || st_stream_dec__eof(d)) {
		fprintf(stderr, "decoder: %s\n", st_stream_dec__error(d));
		CHECK(0);
	}
	CHECK(cx.finished);
	CHECK(cx.tr.dropped_bytes == fs->dropped_bytes);
	/* every direction the stream ended covers what reassembly gave it (a filtered connection
	 * is closed without its ends) */
	for (unsigned k = 1; k < next_id; k++)
		for (int j = 0; j < 2; j++)
			CHECK(!cx.ended[k][j] ||
			      cx.next[k][j] == conns[k].bytes[j] + conns[k].gap_bytes[j]);
	/* A known edge (kept by the refactor, issue 20): a response head dropped for lack of
	 * room before the first request's head is complete, then the connection filtered out:
	 * counted in dropped_bytes, but the CLOSE comes without its gap. */
	CHECK(cx.dropped == fs->dropped_bytes ||
	      (fs->filtered_conns && cx.dropped < fs->dropped_bytes));
	CHECK(cx.held == fs->held_bytes);
	st_stream_dec__free(d);
	st_teeframe__free(f);
	st_stream_enc__free(enc);
	free(cx.wire);
	if ((data[0] & 4) && !rules.none)
		regfree(&re);
	return 0;
}
