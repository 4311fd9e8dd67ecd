/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for one comparison (agent/compare/compare_diff.c): the bodies production and
 * shadows answer are untrusted, and so is what they claim about them (Content-Type,
 * Content-Encoding).
 *
 * Input: 2 config bytes, then body A, a 0xff 0x00 separator, body B.
 *  byte 0: bits 0-1 Content-Type (JSON, text, binary, none); bits 2-3 Content-Encoding
 *          (none, gzip of the real body, deflate of it, "gzip" over the raw bytes);
 *          bit 4 unordered arrays (all); bit 5 an ignore-field rule; bit 6 a 64-byte cap
 *          on held bodies; bit 7 B gets a different Content-Type.
 *  byte 1: the decompression cap in KiB (0: the default).
 * Checks: a response compared with itself has no difference; "no difference" is
 * symmetric; the list stays within its bounds; every string is terminated and within
 * its field; a view's prefix is within the body cap.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "compare_diff.h"
#include "fuzz_check.h"

struct side {
	struct st_cmp_msg m;
	char hdrs[256];
	uint8_t *enc;
};

static const char *const ctypes[] = { "application/json", "text/plain", "image/png", NULL };

static void build(struct side *s, const uint8_t *body, size_t len, int ct, int ce, size_t held)
{
	size_t o = 0;
	const char *coding = NULL;

	memset(&s->m, 0, sizeof(s->m));
	s->enc = NULL;
	if (ctypes[ct]) {
		o += (size_t)sprintf(s->hdrs + o, "Content-Type") + 1;
		o += (size_t)sprintf(s->hdrs + o, "%s", ctypes[ct]) + 1;
		s->m.nhdrs++;
	}
	if (ce == 1 || ce == 2) {
		z_stream z = { 0 };
		size_t cap = compressBound((uLong)len) + 64;

		s->enc = malloc(cap);
		CHECK(s->enc);
		CHECK(deflateInit2(&z, 6, Z_DEFLATED, ce == 1 ? 31 : 15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
		z.next_in = (Bytef *)body;
		z.avail_in = (uInt)len;
		z.next_out = s->enc;
		z.avail_out = (uInt)cap;
		CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
		len = cap - z.avail_out;
		deflateEnd(&z);
		body = s->enc;
		coding = ce == 1 ? "gzip" : "deflate";
	} else if (ce == 3) {
		coding = "gzip";
	}
	if (coding) {
		o += (size_t)sprintf(s->hdrs + o, "Content-Encoding") + 1;
		o += (size_t)sprintf(s->hdrs + o, "%s", coding) + 1;
		s->m.nhdrs++;
	}
	s->m.hdrs = s->hdrs;
	s->m.hdrs_len = (uint32_t)o;
	s->m.status = 200;
	s->m.has_body = true;
	s->m.body = body;
	s->m.body_len = held && len > held ? held : len;
	s->m.body_total = len;
	s->m.rest_hash = st_cmp_hash(st_cmp_hash_init(), body + s->m.body_len, len - s->m.body_len);
}

static void check_list(const struct st_cmp_diffs *d)
{
	CHECK(d->n <= ST_CMP_DIFFS_MAX);
	for (uint32_t i = 0; i < d->n; i++) {
		const struct st_cmp_diff *x = &d->d[i];

		CHECK(memchr(x->path, 0, sizeof(x->path)));
		CHECK(memchr(x->a, 0, sizeof(x->a)));
		CHECK(memchr(x->b, 0, sizeof(x->b)));
		CHECK(memchr(x->note, 0, sizeof(x->note)));
		CHECK(x->kind < ST_CMP_KIND__COUNT);
		CHECK(x->count >= 1);
		CHECK(st_cmp_diffs_find(d, x->path) == x);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st_cmp_view va, vb;
	static struct st_cmp_scratch sc;
	static struct st_cmp_diffs d1, d2;
	static int init;
	static const char *const ig[] = { "$..id", "$.items[*].ts" };
	struct st_cmp_rules r = { 0 };
	struct side a, b;
	const uint8_t *sep = NULL;
	size_t la, lb;
	int ct, ce;

	if (!init) {
		init = 1;
		st_cmp_view_init(&va);
		st_cmp_view_init(&vb);
	}
	if (size < 2)
		return 0;
	ct = data[0] & 3;
	ce = (data[0] >> 2) & 3;
	r.unordered_all = data[0] & 0x10;
	if (data[0] & 0x20) {
		r.ignore_fields = ig;
		r.n_ignore_fields = 2;
	}
	r.max_body = data[0] & 0x40 ? 64 : 0;
	r.max_decoded = data[1] ? (uint64_t)data[1] << 10 : 0;
	data += 2;
	size -= 2;
	for (size_t i = 0; i + 1 < size; i++)
		if (data[i] == 0xff && data[i + 1] == 0) {
			sep = data + i;
			break;
		}
	la = sep ? (size_t)(sep - data) : size;
	lb = sep ? size - la - 2 : 0;
	build(&a, data, la, ct, ce, r.max_body);
	build(&b, sep ? sep + 2 : data + size, lb, (data[-2] & 0x80) ? (ct + 1) & 3 : ct, ce,
	      r.max_body);

	/* itself: nothing */
	st_cmp_view_load(&va, &r, &a.m);
	st_cmp_view_load(&vb, &r, &a.m);
	CHECK(va.len <= (r.max_body ? r.max_body : ST_CMP_MAX_BODY_DEFAULT));
	st_cmp_diff(&r, &sc, &va, &vb, &d1);
	check_list(&d1);
	CHECK(d1.n == 0 && d1.more == 0);

	/* a against b, and b against a */
	st_cmp_view_load(&vb, &r, &b.m);
	st_cmp_diff(&r, &sc, &va, &vb, &d1);
	check_list(&d1);
	st_cmp_diff(&r, &sc, &vb, &va, &d2);
	check_list(&d2);
	CHECK((d1.n == 0) == (d2.n == 0));
	free(a.enc);
	free(b.enc);
	return 0;
}
