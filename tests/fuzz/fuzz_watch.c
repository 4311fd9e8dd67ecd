/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/watch/watch.c: two connections of a service port as the capture
 * hands them to reassembly (segments of either direction, elided bytes of the headers-only
 * policy, capture losses, FINs, a connection opened again), through reassembly into watch's
 * detection, its HTTP/1 framing and pairing (pipelining, interim answers, Upgrade, h2c
 * upgrades handed to the HTTP/2 source, fallbacks to whole copies) and the aggregate, with
 * small caps (4 endpoints, 16 series) so that they are hit. The HTTP parser and the HTTP/2
 * source are fuzzed on their own (fuzz_http, fuzz_watch_h2); this target checks watch.c's
 * bookkeeping: every exchange the aggregate took is one the counters say, never more than
 * the requests, the series under their caps, and all memory given back (ASan).
 *
 * Input: operations, each a byte (bits 0-2: what, bit 3: which connection, bits 4-7: a length
 * or count, len) and what it takes:
 *   0, 1: the client's, the server's bytes (the next (len + 1) * 8 input bytes, fewer at
 *         the end), one segment;
 *   2, 3: a segment of the client, the server, whose last (len + 1) * 61 bytes the policy
 *         elided (its first 8 are the next input bytes);
 *   4: len + 1 bytes of the server's direction lost; 5, 6: the client's, the server's FIN;
 *   7: the connection opened (again): a new client port, SYN and SYN-ACK.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "bpf/shadowtap.h"
#include "fuzz_check.h"
#include "reasm.h"
#include "watch.h"
#include "watch_agg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct conn {
	struct st_flow_key k[2]; /* [ST_DIR_IN]: client -> server */
	uint32_t seq[2];
};

static unsigned whole_calls;

static void copy_whole(void *ctx, const struct st_flow_key *k)
{
	(void)ctx;
	(void)k;
	whole_calls++;
}

static void copy_port_whole(void *ctx, uint16_t port)
{
	(void)ctx;
	(void)port;
}

static void conn_open(struct conn *c, uint16_t cport)
{
	memset(c, 0, sizeof(*c));
	c->k[0].src.family = c->k[0].dst.family = 4;
	c->k[0].src.a[0] = htonl(0x0a000002);
	c->k[0].dst.a[0] = htonl(0x0a000001);
	c->k[0].sport = cport;
	c->k[0].dport = 80;
	c->k[1].src = c->k[0].dst;
	c->k[1].dst = c->k[0].src;
	c->k[1].sport = 80;
	c->k[1].dport = cport;
	c->seq[0] = 1000 + cport;
	c->seq[1] = 5000000 + cport;
}

static void seg(struct st_reasm *r, struct conn *c, int dir, uint8_t flags, uint8_t kind,
		const uint8_t *d, uint32_t len, uint32_t elided, uint64_t ts)
{
	struct st_segment s = {
		.key = c->k[dir], .ts_ns = ts, .seq = c->seq[dir],
		.flags = (flags & ST_TCP_SYN) && dir == ST_DIR_IN ? flags : flags | ST_TCP_ACK,
		.kind = kind, .dir = (int8_t)dir, .len = len, .elided = elided, .data = d,
	};

	st_reasm__feed(r, &s);
	c->seq[dir] += len + elided + ((flags & (ST_TCP_SYN | ST_TCP_FIN)) ? 1 : 0);
}

static void handshake(struct st_reasm *r, struct conn *c, uint64_t ts)
{
	seg(r, c, ST_DIR_IN, ST_TCP_SYN, ST_SEG_DATA, NULL, 0, 0, ts);
	seg(r, c, ST_DIR_OUT, ST_TCP_SYN, ST_SEG_DATA, NULL, 0, 0, ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t ports[] = { 80 };
	struct st_watch_config wc = { .agg = { .max_endpoints = 4, .max_series = 16 },
				      .copy_whole = copy_whole,
				      .copy_port_whole = copy_port_whole };
	struct st_reasm_config rc = { .ports = ports, .n_ports = 1 };
	const struct st_watch_agg *agg;
	struct st_watch_stats st;
	struct st_reasm *r;
	struct st_watch *w;
	struct conn c[2];
	uint16_t next_port = 40000;
	uint64_t ts = 1700000000000000000ull;
	size_t pos = 0;

	if (size > (1 << 16))
		return 0;
	w = st_watch__new(&wc);
	CHECK(w);
	r = st_reasm__new(&rc, &st_watch_reasm_ops, w);
	CHECK(r);
	agg = st_watch__agg(w);
	for (int i = 0; i < 2; i++) {
		conn_open(&c[i], next_port++);
		handshake(r, &c[i], ts);
	}
	while (pos < size) {
		uint8_t op = data[pos] & 7, len = data[pos] >> 4;
		struct conn *cc = &c[(data[pos] >> 3) & 1];

		pos++;
		ts += 1000000ull * (len + 1);
		switch (op) {
		case 0:
		case 1: {
			size_t n = ((size_t)len + 1) * 8;

			if (n > size - pos)
				n = size - pos;
			seg(r, cc, op, ST_TCP_PSH, ST_SEG_DATA, data + pos, (uint32_t)n, 0, ts);
			pos += n;
			break;
		}
		case 2:
		case 3: {
			size_t n = size - pos < 8 ? size - pos : 8;

			seg(r, cc, op - 2, ST_TCP_PSH, ST_SEG_DATA, data + pos, (uint32_t)n,
			    ((uint32_t)len + 1) * 61, ts);
			pos += n;
			break;
		}
		case 4:
			seg(r, cc, ST_DIR_OUT, 0, ST_SEG_LOSS, NULL, (uint32_t)len + 1, 0, ts);
			break;
		case 5:
		case 6:
			seg(r, cc, op - 5, ST_TCP_FIN, ST_SEG_DATA, NULL, 0, 0, ts);
			break;
		case 7:
			seg(r, cc, ST_DIR_IN, ST_TCP_RST, ST_SEG_DATA, NULL, 0, 0, ts);
			conn_open(cc, next_port++);
			handshake(r, cc, ts);
			break;
		}
		st_watch__stats(w, &st);
		CHECK(st.exchanges == agg->exchanges);
		CHECK(st.exchanges <= st.requests);
		CHECK(st.unanswered + st.incomplete <= st.exchanges);
		CHECK(agg->ns <= wc.agg.max_series && agg->nep <= wc.agg.max_endpoints + 1);
	}
	st_reasm__flush(r);
	st_reasm__free(r);
	st_watch__stats(w, &st);
	CHECK(st.exchanges == agg->exchanges);
	CHECK(st.exchanges <= st.requests);
	CHECK(st.h2_upgraded <= st.h2_conns && st.h2_conns <= st.connections);
	st_watch__free(w);
	return 0;
}
