/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for --correlate's request rewriter (agent/shadow/correlate.c,
 * st_correlate_rewrite): a captured request, untrusted, rewritten with a fixed table of
 * values (longer, shorter, base64 characters, one pending). Checked: a rewritten request is
 * one the rewriter itself takes again (its framing consistent: Content-Length equal to the
 * body, chunked framing whole) and, rewritten again with the table, changes no more when
 * every replacement maps to itself; when http.c frames the input as exactly one whole
 * request, it frames the output as one whole request too.
 *
 * The same bytes as an HTTP/2 request for st_correlate_rewrite_h2: lines "name:value" (a
 * pseudo-header field's name keeps its leading ':') up to an empty line, the rest its body.
 * Checked: the same fields in the same order (names, flags), every content-length equal to
 * the new body's length, a gRPC body unchanged, and nothing replaced when no value holds a
 * known one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

#define H2_FIELDS_MAX 64

/* data as a header list and a body; how many fields. */
static uint32_t h2_split(const uint8_t *data, size_t size, struct st_h2_field *f,
			 const uint8_t **body, size_t *blen)
{
	size_t i = 0;
	uint32_t n = 0;

	while (i < size && n < H2_FIELDS_MAX) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - data) : size, c;

		if (end == i) { /* the empty line */
			i++;
			break;
		}
		for (c = i + 1; c < end && data[c] != ':'; c++)
			;
		f[n] = (struct st_h2_field){ .name = (const char *)data + i,
					     .name_len = (uint32_t)(c - i),
					     .value = (const char *)data + (c < end ? c + 1 : end),
					     .value_len = (uint32_t)(c < end ? end - c - 1 : 0),
					     .flags = data[i] & 1 ? ST_H2_FF_NEVER_INDEX : 0 };
		n++;
		i = end + 1;
	}
	*body = data + (i < size ? i : size);
	*blen = i < size ? size - i : 0;
	return n;
}

static bool holds(const char *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	for (size_t i = 0; i + l <= n; i++)
		if (!memcmp(p + i, s, l))
			return true;
	return false;
}

/* Whether any table value occurs in p[0, n) (base64 decoding aside: Basic is checked apart). */
static bool holds_known(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (holds(p, n, table[i][0]))
			return true;
	return false;
}

static void fuzz_h2(const uint8_t *data, size_t size)
{
	struct st_h2_field f[H2_FIELDS_MAX];
	struct st_correlate_h2out out = { 0 };
	const uint8_t *body;
	size_t blen;
	uint32_t n = h2_split(data, size, f, &body, &blen);
	bool grpc = false, known = holds_known((const char *)body, blen), basic = false;
	int r;

	for (uint32_t i = 0; i < n; i++) {
		if (f[i].name_len == 12 && !memcmp(f[i].name, "content-type", 12) &&
		    f[i].value_len >= 16 && !strncasecmp(f[i].value, "application/grpc", 16))
			grpc = true;
		known |= holds_known(f[i].value, f[i].value_len);
		basic |= f[i].value_len >= 6 && !strncasecmp(f[i].value, "basic ", 6);
	}
	r = st_correlate_rewrite_h2(f, n, body, blen, fn, NULL, &out);
	CHECK(r == 1 || r == 0);
	if (r == 1) {
		CHECK(known || basic);
		CHECK(out.replaced > 0 && out.nfields == n);
		for (uint32_t i = 0; i < n; i++) {
			CHECK(out.fields[i].name_len == f[i].name_len &&
			      !memcmp(out.fields[i].name, f[i].name, f[i].name_len));
			CHECK(out.fields[i].flags == f[i].flags);
			if (f[i].name_len == 14 && !memcmp(f[i].name, "content-length", 14)) {
				char num[32];
				int k = snprintf(num, sizeof(num), "%zu", out.body_len);

				CHECK(out.fields[i].value_len == (uint32_t)k &&
				      !memcmp(out.fields[i].value, num, (size_t)k));
			}
		}
		if (grpc)
			CHECK(out.body_len == blen && (!blen || !memcmp(out.body, body, blen)));
	}
	st_correlate_h2out_free(&out);
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
	fuzz_h2(data, size);
	return 0;
}
