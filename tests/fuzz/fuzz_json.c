/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/compare/json.c. Input: 1 config byte (bits 0-2: max depth 1..8 or the
 * default; bits 3-5: node cap 1..7 x 8 or none), then the document.
 * Checks, for every accepted document: the node count is within the cap; every node's
 * bytes lie inside the input or the pool; a container's children, followed by next, are
 * exactly n, in increasing order, inside the container's span, and nest no deeper than the
 * depth limit; the input is accepted unchanged when wrapped in whitespace and rejected
 * when a byte is appended after it (unless that byte is whitespace); number equality is
 * reflexive, symmetric and agrees with the number hash; structural hashes are
 * deterministic. Every rejected document gives an error and an offset inside the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "fuzz_check.h"

static bool in(const struct st_json_doc *d, const struct st_json_node *n, uint32_t off,
	       uint32_t len, bool pool)
{
	if (pool)
		return (size_t)off + len <= d->pool_len;
	return (size_t)off + len <= d->src_len;
}

/* Checks node i and its subtree; returns the index after the subtree. */
static uint32_t walk(const struct st_json_doc *d, uint32_t i, unsigned depth)
{
	const struct st_json_node *n = st_json_node(d, i);
	uint32_t c, cnt = 0, after = i + 1;

	CHECK(i < d->n);
	CHECK(n->type <= ST_JSON_OBJECT);
	CHECK(in(d, n, n->off, n->len, n->flags & ST_JSON_F_STR_POOL));
	CHECK(in(d, n, n->key_off, n->key_len, n->flags & ST_JSON_F_KEY_POOL));
	if (n->type != ST_JSON_ARRAY && n->type != ST_JSON_OBJECT) {
		CHECK(n->n == 0);
		return after;
	}
	CHECK(depth < d->max_depth);
	CHECK(d->src[n->off] == (n->type == ST_JSON_ARRAY ? '[' : '{'));
	CHECK(d->src[n->off + n->len - 1] == (n->type == ST_JSON_ARRAY ? ']' : '}'));
	for (c = n->n ? i + 1 : 0; c; c = st_json_node(d, c)->next) {
		const struct st_json_node *k = st_json_node(d, c);

		CHECK(c == after); /* document order: the next child follows the last subtree */
		if (!(k->flags & ST_JSON_F_STR_POOL) && k->type != ST_JSON_STRING)
			CHECK(k->off > n->off && k->off + k->len < n->off + n->len);
		after = walk(d, c, depth + 1);
		cnt++;
	}
	CHECK(cnt == n->n);
	return after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st_json_doc d, w;
	static int init;
	unsigned depth;
	uint32_t cap;
	char *buf;
	int r;

	if (size < 1)
		return 0;
	depth = data[0] & 7 ? data[0] & 7 : 0;
	cap = (data[0] >> 3) & 7 ? ((data[0] >> 3) & 7) * 8u : 0;
	data++;
	size--;
	if (!init) {
		init = 1;
		st_json_doc_init(&d, 0, 0);
		st_json_doc_init(&w, 0, 0);
	}
	d.max_depth = depth ? depth : ST_JSON_MAX_DEPTH;
	d.max_nodes = cap;
	w.max_depth = d.max_depth;
	w.max_nodes = cap;
	r = st_json_parse(&d, (const char *)data, size);
	if (r) {
		CHECK(d.err != ST_JSON_OK);
		CHECK(d.err_off <= size);
		return 0;
	}
	CHECK(d.n >= 1);
	CHECK(!cap || d.n <= cap);
	CHECK(walk(&d, 0, 0) == d.n);
	{
		uint64_t *h1 = malloc(d.n * sizeof(*h1)), *h2 = malloc(d.n * sizeof(*h2));

		CHECK(h1 && h2);
		st_json_hashes(&d, h1, false);
		st_json_hashes(&d, h2, false);
		CHECK(!memcmp(h1, h2, d.n * sizeof(*h1)));
		free(h1);
		free(h2);
	}
	/* numbers: equality is an equivalence the hash respects (pairs of the first 32) */
	{
		uint32_t nums[32], nn = 0;

		for (uint32_t i = 0; i < d.n && nn < 32; i++)
			if (st_json_node(&d, i)->type == ST_JSON_NUMBER)
				nums[nn++] = i;
		for (uint32_t a = 0; a < nn; a++) {
			const struct st_json_node *x = st_json_node(&d, nums[a]);
			const char *xs = st_json_bytes(&d, x);

			CHECK(st_json_num_eq(xs, x->len, xs, x->len));
			for (uint32_t b = 0; b < nn; b++) {
				const struct st_json_node *y = st_json_node(&d, nums[b]);
				const char *ys = st_json_bytes(&d, y);
				bool e = st_json_num_eq(xs, x->len, ys, y->len);

				CHECK(e == st_json_num_eq(ys, y->len, xs, x->len));
				if (e)
					CHECK(st_json_num_hash(xs, x->len) == st_json_num_hash(ys, y->len));
			}
		}
	}
	/* whitespace around it changes nothing; a byte after it is refused unless blank */
	buf = malloc(size + 3);
	CHECK(buf);
	buf[0] = '\n';
	memcpy(buf + 1, data, size);
	buf[size + 1] = ' ';
	CHECK(st_json_parse(&w, buf, size + 2) == 0);
	CHECK(w.n == d.n);
	buf[size + 1] = 'x';
	CHECK(st_json_parse(&w, buf, size + 2) == -1);
	free(buf);
	return 0;
}
