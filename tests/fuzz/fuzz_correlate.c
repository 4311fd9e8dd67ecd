/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for --correlate's request rewriter (agent/shadow/correlate.c,
 * st_correlate_rewrite): a captured request, untrusted, rewritten with a fixed table of
 * values (longer, shorter, base64 characters, one pending). Checked: a rewritten request is
 * one the rewriter itself takes again (its framing consistent: Content-Length equal to the
 * body, chunked framing whole) and, rewritten again with the table, changes no more when
 * every replacement maps to itself; when http.c frames the input as exactly one whole
 * request, it frames the output as one whole request too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "correlate.h"
#include "http.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const table[][2] = {
	{ "AAAAAAAA", "bbbbbbbbbbbbbbbb" },
	{ "CCCCCCCCCCCC", "dddd" },
	{ "ab+c/d==", "zz+y/x==" },
	{ "user", "someone-else" },
};

static enum st_correlate_hit fn(void *ctx, const char *v, size_t n, const char **out,
				size_t *outlen)
{
	(void)ctx;
	if (n == 8 && !memcmp(v, "PPPPPPPP", 8))
		return ST_COR_PENDING;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i][0]) == n && !memcmp(table[i][0], v, n)) {
			*out = table[i][1];
			*outlen = strlen(table[i][1]);
			return ST_COR_MAPPED;
		}
	return ST_COR_UNKNOWN;
}

static enum st_correlate_hit none(void *ctx, const char *v, size_t n, const char **out,
				  size_t *outlen)
{
	(void)ctx, (void)v, (void)n, (void)out, (void)outlen;
	return ST_COR_UNKNOWN;
}

/* http.c frames p[0, n) as exactly one whole request. */
static bool one_request(const uint8_t *p, size_t n)
{
	struct st_http_parser hp;
	struct st_http_event ev;
	bool ok = false;

	if (st_http__init(&hp, ST_HTTP_REQUEST, NULL))
		return false;
	for (;;) {
		size_t k = st_http__feed(&hp, p, n, &ev);

		p += k;
		n -= k;
		if (ev.type == ST_HTTP_EV_MSG_DONE) {
			ok = !n && !(ev.head->flags & ST_HTTP_HF_UPGRADE);
			break;
		}
		if (ev.type == ST_HTTP_EV_ERROR || ev.type == ST_HTTP_EV_NEED_MORE ||
		    ev.type == ST_HTTP_EV_UPGRADED)
			break;
	}
	st_http__free(&hp);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_correlate_out a = { 0 }, b = { 0 };
	int r;

	if (size > 16384)
		return 0;
	r = st_correlate_rewrite(data, size, fn, NULL, &a);
	CHECK(r == 1 || r == 0 || r == -EINVAL);
	if (r == 1) {
		CHECK(a.replaced > 0 && a.len > 0);
		CHECK(st_correlate_rewrite(a.buf, a.len, none, NULL, &b) == 0);
		if (one_request(data, size))
			CHECK(one_request(a.buf, a.len));
	} else {
		CHECK(a.replaced == 0);
	}
	st_correlate_out_free(&a);
	st_correlate_out_free(&b);
	return 0;
}
