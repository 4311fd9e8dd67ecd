/* SPDX-License-Identifier: GPL-2.0-only */
#include "flowset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct st_flowset {
	struct st_flow_key *keys;
	uint8_t *used;
	size_t cap;   /* power of two */
	size_t count;
	size_t max;
	int full;
};

static int endpoint_cmp(const struct st_addr *a, uint16_t ap, const struct st_addr *b, uint16_t bp)
{
	int c = memcmp(a->a, b->a, sizeof(a->a));

	if (c)
		return c;
	return (int)ap - (int)bp;
}

void st_flow_key_canon(const struct st_flow_key *in, struct st_flow_key *out)
{
	memset(out, 0, sizeof(*out));
	if (endpoint_cmp(&in->src, in->sport, &in->dst, in->dport) <= 0) {
		out->src = in->src;
		out->sport = in->sport;
		out->dst = in->dst;
		out->dport = in->dport;
	} else {
		out->src = in->dst;
		out->sport = in->dport;
		out->dst = in->src;
		out->dport = in->sport;
	}
	memset(out->src.pad, 0, sizeof(out->src.pad));
	memset(out->dst.pad, 0, sizeof(out->dst.pad));
}

uint64_t st_flow_key_hash(const struct st_flow_key *k)
{
	/* A multiply-xorshift round per 32-bit word: the key is 44 bytes, and
	 * this runs once per captured segment. */
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ull;
	uint32_t w;

	for (size_t i = 0; i + 4 <= sizeof(*k); i += 4) {
		memcpy(&w, p + i, 4);
		h ^= w;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

struct st_flowset *st_flowset__new(size_t max_entries)
{
	struct st_flowset *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = 1024;
	s->max = max_entries;
	s->keys = calloc(s->cap, sizeof(*s->keys));
	s->used = calloc(s->cap, 1);
	if (!s->keys || !s->used) {
		st_flowset__free(s);
		return NULL;
	}
	return s;
}

static int insert(struct st_flowset *s, const struct st_flow_key *k)
{
	size_t i = (size_t)st_flow_key_hash(k) & (s->cap - 1);

	while (s->used[i]) {
		if (!memcmp(&s->keys[i], k, sizeof(*k)))
			return 0;
		i = (i + 1) & (s->cap - 1);
	}
	s->used[i] = 1;
	s->keys[i] = *k;
	s->count++;
	return 1;
}

static int grow(struct st_flowset *s)
{
	struct st_flowset n = *s;

	n.cap = s->cap * 2;
	n.count = 0;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.used = calloc(n.cap, 1);
	if (!n.keys || !n.used) {
		free(n.keys);
		free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->used[i])
			insert(&n, &s->keys[i]);
	free(s->keys);
	free(s->used);
	*s = n;
	return 0;
}

int st_flowset__add(struct st_flowset *s, const struct st_flow_key *k)
{
	struct st_flow_key c;

	st_flow_key_canon(k, &c);
	if (s->count >= s->max) {
		size_t i = (size_t)st_flow_key_hash(&c) & (s->cap - 1);

		/* Full: still answer "known" correctly, but add nothing. */
		while (s->used[i]) {
			if (!memcmp(&s->keys[i], &c, sizeof(c)))
				return 0;
			i = (i + 1) & (s->cap - 1);
		}
		s->full = 1;
		return 0;
	}
	if ((s->count + 1) * 4 > s->cap * 3 && grow(s))
		return -ENOMEM;
	return insert(s, &c);
}

size_t st_flowset__count(const struct st_flowset *s)
{
	return s->count;
}

int st_flowset__full(const struct st_flowset *s)
{
	return s->full;
}

void st_flowset__free(struct st_flowset *s)
{
	if (!s)
		return;
	free(s->keys);
	free(s->used);
	free(s);
}
