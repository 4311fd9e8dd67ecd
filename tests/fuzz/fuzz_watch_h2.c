/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/watch/watch_h2.c: one HTTP/2 connection's events as reassembly
 * hands them over (bytes of either direction, elided bytes, a capture loss, a direction's end),
 * into the stream table and the aggregate, with small caps (4 endpoints, 16 series) so that
 * they are hit. The framer under it is fuzzed by fuzz_h2; this target checks the source's own
 * bookkeeping: every exchange the aggregate took is one the counters say, none from a stream
 * without a request head, every request head ends once (an exchange, lost, or refused), the
 * series stay under their caps, and all memory is given back (ASan).
 *
 * Input: a config byte (bit 0: the connection opens with the client's preface and both
 * SETTINGS and ACKs, made here), then operations: a byte (bits 0-2: what, bits 3-7: a length
 * or count) and what it takes:
 *   0, 1: the client's, the server's bytes (the next (len + 1) * 4 input bytes, fewer at the end);
 *   2, 3: the client's, the server's elided bytes ((len + 1) * 61 of them);
 *   4: bytes of the server's direction lost (len + 1); 5, 6: the client's, the server's end;
 *   7: a HEADERS frame of the client opening the next stream (literal fields: a GET of a
 *      path that names len, with END_STREAM), so that streams are easy to reach.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "h2.h"
#include "reasm.h"
#include "watch.h"
#include "watch_h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A literal header field without indexing, names and values short and not Huffman-coded. */
static size_t lit(uint8_t *p, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), n = 0;

	p[n++] = 0x00;
	p[n++] = (uint8_t)nl;
	memcpy(p + n, name, nl);
	n += nl;
	p[n++] = (uint8_t)vl;
	memcpy(p + n, value, vl);
	return n + vl;
}

static void frame_hdr(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(id >> 24);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8);
	p[8] = (uint8_t)id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_watch_agg_config ac = { .max_endpoints = 4, .max_series = 16 };
	struct st_watch_agg agg;
	struct st_watch_stats st;
	struct st_watch_h2 *h;
	size_t pos = 1;
	uint32_t next_id = 1;
	uint64_t ts = 1000000;

	if (size < 1 || size > (1 << 16))
		return 0;
	CHECK(!st_watch_agg_init(&agg, &ac));
	memset(&st, 0, sizeof(st));
	h = st_watch_h2__new(&agg, &st);
	CHECK(h);
	if (data[0] & 1) {
		uint8_t b[ST_H2_PREFACE_LEN + 18];

		memcpy(b, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
		frame_hdr(b + ST_H2_PREFACE_LEN, 0, 4, 0, 0);
		frame_hdr(b + ST_H2_PREFACE_LEN + 9, 0, 4, 1, 0);
		st_watch_h2__data(h, ST_DIR_IN, b, sizeof(b), ts);
		st_watch_h2__data(h, ST_DIR_OUT, b + ST_H2_PREFACE_LEN, 18, ts);
	}
	while (pos < size) {
		uint8_t op = data[pos] & 7, arg = data[pos] >> 3;

		pos++;
		ts += 1000 * (uint64_t)(arg + 1);
		switch (op) {
		case 0:
		case 1: {
			size_t n = ((size_t)arg + 1) * 4;

			if (n > size - pos)
				n = size - pos;
			st_watch_h2__data(h, op ? ST_DIR_OUT : ST_DIR_IN, data + pos, (uint32_t)n, ts);
			pos += n;
			break;
		}
		case 2:
		case 3:
			st_watch_h2__gap(h, op == 3 ? ST_DIR_OUT : ST_DIR_IN, ((uint64_t)arg + 1) * 61,
					 true, ts);
			break;
		case 4:
			st_watch_h2__gap(h, ST_DIR_OUT, (uint64_t)arg + 1, false, ts);
			break;
		case 5:
		case 6:
			st_watch_h2__end(h, op == 6 ? ST_DIR_OUT : ST_DIR_IN, ts);
			break;
		case 7: {
			uint8_t b[9 + 128];
			char path[16];
			size_t n = 0;

			snprintf(path, sizeof(path), "/p%u", arg);
			n += lit(b + 9 + n, ":method", "GET");
			n += lit(b + 9 + n, ":scheme", "http");
			n += lit(b + 9 + n, ":path", path);
			n += lit(b + 9 + n, ":authority", "x");
			frame_hdr(b, n, 1, 0x5, next_id);
			next_id += 2;
			st_watch_h2__data(h, ST_DIR_IN, b, (uint32_t)(9 + n), ts);
			break;
		}
		}
		CHECK(st.exchanges == agg.exchanges);
		CHECK(st.exchanges <= st.requests);
		CHECK(agg.ns <= ac.max_series && agg.nep <= ac.max_endpoints + 1);
		CHECK(agg.grpc_cells <= ac.max_series + ST_WATCH_GRPC_CODES);
	}
	st_watch_h2__close(h);
	/* every request head ended once: an exchange, lost, or refused (lost also counts streams
	 * the framer dropped before their head came out) */
	CHECK(st.exchanges == agg.exchanges);
	CHECK(st.exchanges + st.h2_refused <= st.requests);
	CHECK(st.requests <= st.exchanges + st.lost_exchanges + st.h2_refused);
	CHECK(st.unanswered + st.incomplete <= st.exchanges);
	CHECK(st.grpc_calls == agg.grpc_calls && st.grpc_calls <= st.exchanges);
	st_watch_agg_free(&agg);
	return 0;
}
