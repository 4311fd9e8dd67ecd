/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/http/exchange.c: a connection's two directions, cut into
 * pieces the input describes, fed to the exchange engine (either HTTP, detected as in a real
 * connection), with gaps and ends mixed in. Input: a sequence of records, each one byte of
 * control (bit 0: direction; bits 1-2: 0 data, 1 gap, 2 end, 3 boundary), for data and gaps
 * one byte of length (data: that many bytes follow; a gap: 1 + it bytes missing).
 * What must hold whatever the bytes: no memory error or leak (ASan), every exchange handed
 * over is whole both ways with NUL-terminated texts, a stopped engine hands over nothing
 * more, and the same input fed twice gives the same exchanges (no state outside the struct).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shadowtap.h"
#include "exchange.h"

struct seen {
	uint64_t n, sum;
	bool stopped;
};

static void got(void *ctx, const struct st_exchange *x)
{
	struct seen *s = ctx;

	if (s->stopped || !x->req_done || !x->resp_done)
		abort();
	if (!memchr(x->method, 0, sizeof(x->method)) || !memchr(x->target, 0, sizeof(x->target)))
		abort();
	s->n++;
	s->sum = s->sum * 31 + x->status + x->req_bytes * 7 + x->resp_bytes * 13 + x->stream;
}

static void run(const uint8_t *d, size_t n, struct seen *s)
{
	struct st_exchange_conn c;
	uint64_t ts = 0;

	memset(s, 0, sizeof(*s));
	if (st_exchange__init(&c, got, s))
		return;
	while (n && c.on) {
		uint8_t ctl = *d++;
		int dir = ctl & 1 ? ST_DIR_OUT : ST_DIR_IN;
		size_t len = 0;

		n--;
		if (((ctl >> 1) & 3) < 2 && n) {
			len = *d++;
			n--;
		}
		ts += 1000;
		switch ((ctl >> 1) & 3) {
		case 0:
			if (len > n)
				len = n;
			if (!st_exchange__feed(&c, dir, d, (uint32_t)len, ts))
				s->stopped = true;
			d += len;
			n -= len;
			break;
		case 1:
			if (!st_exchange__gap(&c, dir, len + 1))
				s->stopped = true;
			break;
		case 2:
			st_exchange__end(&c, dir, ts);
			break;
		default:
			st_exchange__boundary(&c);
			break;
		}
	}
	st_exchange__free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct seen a, b;

	run(d, n, &a);
	run(d, n, &b);
	if (a.n != b.n || a.sum != b.sum)
		abort();
	return 0;
}
