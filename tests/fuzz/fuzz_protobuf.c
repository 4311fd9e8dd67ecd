/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/compare/protobuf.c. Input: a config byte (bits 0-1: max_depth
 * 64, 1, 3, 8; bit 2: a node cap of 40; bit 3: the input carries a schema), then either the
 * message, or (bit 3) a 2-byte big-endian length, that many bytes of FileDescriptorSet, and
 * the message. The descriptor is loaded (any bytes: errors are fine, crashes are not); the
 * message is decoded without a schema and with each of the set's types (at most 32).
 *
 * Every tree must be well formed: nodes in document order, each container's children linked
 * in order and counted, every object member keyed, every string inside the input or the pool,
 * nesting within max_depth (two tree levels a message: an array or a map object, then the
 * message), nodes within the cap; a message decoded twice gives the same
 * tree; compared with itself by compare_diff, it has no difference.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_diff.h"
#include "fuzz_check.h"
#include "protobuf.h"

static uint64_t walk(const struct st_json_doc *d, uint32_t i, unsigned depth, unsigned max_depth,
		     const uint8_t *in, size_t len)
{
	const struct st_json_node *n = &d->nodes[i];
	const char *b = st_json_bytes(d, n);
	uint64_t h = 0xcbf29ce484222325ull ^ n->type;
	uint32_t count = 0, last = i;

	CHECK(n->type <= ST_JSON_OBJECT);
	if (n->flags & ST_JSON_F_STR_POOL)
		CHECK((size_t)n->off + n->len <= d->pool_len);
	else
		CHECK(n->type == ST_JSON_STRING && b >= (const char *)in &&
		      b + n->len <= (const char *)in + len);
	for (uint32_t k = 0; k < n->len; k++)
		h = (h ^ (uint8_t)b[k]) * 0x100000001b3ull;
	if (n->type != ST_JSON_OBJECT && n->type != ST_JSON_ARRAY) {
		CHECK(!n->n);
		return h;
	}
	/* a message level may add an array or a map object above the next one */
	CHECK(depth <= 2 * (max_depth + 1) + 1);
	for (uint32_t c = n->n ? i + 1 : 0; c; c = d->nodes[c].next) {
		const struct st_json_node *m = &d->nodes[c];

		CHECK(c > last && c < d->n); /* document order */
		if (n->type == ST_JSON_OBJECT) {
			CHECK(m->flags & ST_JSON_F_KEY_POOL);
			CHECK((size_t)m->key_off + m->key_len <= d->pool_len);
			h = (h ^ m->key_len) * 0x100000001b3ull;
		}
		h = h * 31 + walk(d, c, depth + 1, max_depth, in, len);
		last = c;
		count++;
	}
	CHECK(count == n->n);
	return h;
}

static void check_doc(const struct st_json_doc *d, const uint8_t *in, size_t len,
		      const struct st_protobuf_opts *o, uint64_t *hash)
{
	uint64_t *hs;

	CHECK(d->n >= 1 && d->nodes[0].type == ST_JSON_OBJECT);
	CHECK(!o->max_nodes || d->n <= o->max_nodes);
	CHECK(d->n <= 2 * len + 16);
	*hash = walk(d, 0, 0, o->max_depth ? o->max_depth : ST_PROTOBUF_MAX_DEPTH, in, len);
	hs = malloc(d->n * sizeof(*hs));
	CHECK(hs);
	st_json_hashes(d, hs, true);
	free(hs);
}

/* Decoded twice, then compared with itself. */
static void decode(const uint8_t *in, size_t len, const struct st_protobuf_type *t,
		   const struct st_protobuf_opts *o)
{
	struct st_json_doc a;
	uint64_t h1 = 0, h2 = 0;
	int r;

	st_json_doc_init(&a, 0, 0);
	r = st_protobuf_decode(&a, in, len, t, o);
	if (r) {
		CHECK(a.err == ST_JSON_E_SYNTAX || a.err == ST_JSON_E_NODES);
		CHECK(a.err != ST_JSON_E_SYNTAX || len);
		st_json_doc_free(&a);
		return;
	}
	check_doc(&a, in, len, o, &h1);
	CHECK(!st_protobuf_decode(&a, in, len, t, o));
	check_doc(&a, in, len, o, &h2);
	CHECK(h1 == h2);
	{
		struct st_cmp_msg m = { .status = 200, .has_body = true, .hdrs = "", .body = in,
					.body_len = len, .body_total = len };
		struct st_cmp_rules rules = { .unordered_all = (len & 1) != 0 };
		struct st_cmp_scratch sc = { 0 };
		struct st_cmp_diffs *out = malloc(sizeof(*out));
		struct st_cmp_view v[2];

		CHECK(out);
		for (int k = 0; k < 2; k++) {
			st_cmp_view_init(&v[k]);
			v[k].m = &m;
			v[k].media = ST_CMP_M_JSON;
			v[k].json_tried = v[k].json_ok = true;
			v[k].body = in;
			v[k].len = len;
			v[k].total = len;
			CHECK(!st_protobuf_decode(&v[k].doc, in, len, t, o));
			v[k].hashes = malloc(v[k].doc.n * sizeof(uint64_t));
			CHECK(v[k].hashes);
			v[k].hashes_cap = v[k].doc.n;
			st_json_hashes(&v[k].doc, v[k].hashes, rules.unordered_all);
			v[k].hashed = true;
		}
		/* bodies differ only to the comparison's eye: it must walk the trees */
		v[1].len = len ? len - 1 : 0;
		st_cmp_diff(&rules, &sc, &v[0], &v[1], out);
		CHECK(out->n == 0 && out->more == 0);
		for (int k = 0; k < 2; k++)
			st_cmp_view_free(&v[k]);
		st_cmp_scratch_free(&sc);
		free(out);
	}
	st_json_doc_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned depths[4] = { 0, 1, 3, 8 };
	struct st_protobuf_opts o = { 0 };
	struct st_protobuf_schema *s = NULL;
	char err[256];

	if (size < 1 || size > (1 << 20))
		return 0;
	o.max_depth = depths[data[0] & 3];
	o.max_nodes = data[0] & 4 ? 40 : 0;
	if (data[0] & 8) {
		size_t l;

		if (size < 3)
			return 0;
		l = (size_t)data[1] << 8 | data[2];
		if (l > size - 3)
			l = size - 3;
		s = st_protobuf_schema__load(data + 3, l, err, sizeof(err));
		CHECK(s || !strncmp(err, "descriptor: ", 12));
		data += 3 + l;
		size -= 3 + l;
	} else {
		data++;
		size--;
	}
	decode(data, size, NULL, &o);
	if (s) {
		uint32_t nm, ne, nmd;

		st_protobuf_schema__counts(s, &nm, &ne, &nmd);
		/* the message with each type; the schema finds each by its name */
		for (uint32_t i = 0; i < nm && i < 32; i++) {
			const struct st_protobuf_type *t = st_protobuf_schema__type_at(s, i), *u;

			CHECK(t);
			u = st_protobuf_schema__type(s, st_protobuf_type__name(t));
			CHECK(u && !strcmp(st_protobuf_type__name(u), st_protobuf_type__name(t)));
			decode(data, size, t, &o);
		}
		CHECK(!st_protobuf_schema__type_at(s, nm));
		st_protobuf_schema__free(s);
	}
	return 0;
}
