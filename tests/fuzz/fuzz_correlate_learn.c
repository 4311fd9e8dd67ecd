/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for --correlate's learners (agent/shadow/correlate.c): two answers,
 * untrusted (production's and a target's, each framed by http.c as the engine frames them:
 * heads, Set-Cookie and Location, JSON and URL-encoded form bodies, gzip and deflate bodies
 * inflated as they come), expected, learned from and explained. The input is production's
 * answer, the bytes "\n--\n", the target's. Checked: every body kept stays within
 * ST_CORRELATE_BODY_MAX (a compressed one inflated), the bytes the answers say they hold
 * are exactly theirs (freed: back to 0), every value explained is the map's and no longer than
 * the target's answer, the map counts what was learned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "correlate.h"
#include "http.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	struct st_correlate *c;
	size_t tgt_len;
	unsigned n;
};

/* An answer framed by http.c from p[0, n), as the engine collects it. */
static void answer(const struct st_correlate_config *cfg, const uint8_t *p, size_t n,
		   struct st_correlate_ans *a)
{
	struct st_http_parser hp;
	struct st_http_event ev;

	if (st_http__init(&hp, ST_HTTP_RESPONSE, NULL) || st_http__push_method(&hp, ST_HTTP_M_GET))
		return;
	while (n) {
		const uint8_t *at = p;
		size_t k = st_http__feed(&hp, p, n, &ev);

		p += k;
		n -= k;
		if (ev.type == ST_HTTP_EV_HEAD)
			st_correlate_ans_head(a, cfg, ev.head);
		else if (ev.type == ST_HTTP_EV_BODY && ev.data_len)
			st_correlate_ans_body(a, at, k);
		else if (ev.type == ST_HTTP_EV_MSG_DONE || ev.type == ST_HTTP_EV_ERROR ||
			 ev.type == ST_HTTP_EV_NEED_MORE || ev.type == ST_HTTP_EV_UPGRADED)
			break;
		CHECK(a->body_len <= ST_CORRELATE_BODY_MAX);
	}
	a->done = true;
	st_http__free(&hp);
}

static void explained(void *ctx, const char *pv, size_t pn, const char *tv, size_t tn)
{
	struct seen *s = ctx;
	const char *o;
	size_t on;

	CHECK(pn > 0 && tn <= s->tgt_len);
	CHECK(st_correlate__lookup(s->c, pv, pn, 2, &o, &on) == ST_COR_MAPPED && on == tn &&
	      !memcmp(o, tv, tn));
	s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct st_correlate_config cfg = { .fields = { "$.code" }, .n_fields = 1,
							.headers = { "x-session" }, .n_headers = 1,
							.wait_ns = 1000 };
	const uint8_t *sep = size > 4 ? memmem(data, size, "\n--\n", 4) : NULL;
	uint64_t held = 0;
	struct st_correlate_ans p = { .held = &held, .held_max = 1u << 20 },
				t = { .held = &held, .held_max = 1u << 20 };
	struct st_correlate_stats st;
	struct seen s = { 0 };
	unsigned learned;

	if (!sep || size > 65536)
		return 0;
	s.c = st_correlate__new(&cfg, 1);
	if (!s.c)
		return 0;
	answer(&cfg, data, (size_t)(sep - data), &p);
	answer(&cfg, sep + 4, size - (size_t)(sep + 4 - data), &t);
	/* and an inflater while one lives (a compressed stream not ended) */
	if (!p.z && !t.z)
		CHECK(held == (uint64_t)p.hdr_len + p.body_len + t.hdr_len + t.body_len);
	CHECK(held >= (uint64_t)p.hdr_len + p.body_len + t.hdr_len + t.body_len);
	st_correlate__expect(s.c, &p, 1);
	learned = st_correlate__learn(s.c, &p, &t, 1);
	s.tgt_len = t.hdr_len + t.body_len;
	st_correlate__explain(s.c, &p, 2, explained, &s);
	st_correlate__stats(s.c, &st);
	CHECK(st.learned == learned && st.entries >= learned);
	st_correlate_ans_free(&p);
	st_correlate_ans_free(&t);
	CHECK(held == 0);
	st_correlate__free(s.c);
	return 0;
}
