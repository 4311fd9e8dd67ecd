/* SPDX-License-Identifier: GPL-2.0-only */
/* Segments paced to their capture times (segpace.h). */
#include <stdlib.h>
#include <string.h>

#include "segpace.h"

#define SEGPACE_CAP_MIN 1024

struct st_segpace_seg {
	uint64_t due, seq;
	struct st_segment s;
	uint8_t data[];
};

/* The bytes a held segment takes (a loss segment's length is not held). */
static uint32_t held_bytes(const struct st_segment *s)
{
	return s->kind == ST_SEG_DATA ? s->len : 0;
}

static bool before(const struct st_segpace_seg *a, const struct st_segpace_seg *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void swap(struct st_segpace *p, size_t i, size_t j)
{
	struct st_segpace_seg *t = p->heap[i];

	p->heap[i] = p->heap[j];
	p->heap[j] = t;
}

static struct st_segpace_seg *pop(struct st_segpace *p)
{
	struct st_segpace_seg *top = p->heap[0];
	size_t i = 0;

	p->heap[0] = p->heap[--p->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < p->n && before(p->heap[l], p->heap[m]))
			m = l;
		if (r < p->n && before(p->heap[r], p->heap[m]))
			m = r;
		if (m == i)
			break;
		swap(p, i, m);
		i = m;
	}
	p->bytes -= held_bytes(&top->s);
	return top;
}

void st_segpace_init(struct st_segpace *p, uint64_t max_bytes, int64_t ahead_ns)
{
	memset(p, 0, sizeof(*p));
	p->max_bytes = max_bytes;
	p->ahead_ns = ahead_ns;
}

enum st_segpace_hold st_segpace_hold(struct st_segpace *p, const struct st_segment *s,
				     uint64_t *last_due, uint64_t now)
{
	struct st_segpace_seg *g;
	uint64_t due;

	if (p->bytes + held_bytes(s) > p->max_bytes)
		return ST_SEGPACE_FULL;
	if (p->last > now)
		now = p->last; /* ahead of now and of every due time given */
	if (!p->off_set || (int64_t)(s->ts_ns + (uint64_t)p->off - now) > p->ahead_ns) {
		p->off = (int64_t)(now - s->ts_ns);
		p->off_set = true;
	}
	due = s->ts_ns + (uint64_t)p->off;
	if (due > p->last)
		p->last = due;
	if (last_due) {
		if (due < *last_due)
			due = *last_due;
		*last_due = due;
	}
	if (p->n >= p->cap) {
		size_t cap = p->cap ? 2 * p->cap : SEGPACE_CAP_MIN;
		struct st_segpace_seg **n = realloc(p->heap, cap * sizeof(*n));

		if (!n)
			return ST_SEGPACE_NOMEM;
		p->heap = n;
		p->cap = cap;
	}
	g = malloc(sizeof(*g) + held_bytes(s));
	if (!g)
		return ST_SEGPACE_NOMEM;
	g->due = due;
	g->seq = p->seq++;
	g->s = *s;
	if (s->kind == ST_SEG_DATA && s->len) {
		memcpy(g->data, s->data, s->len);
		g->s.data = g->data;
	}
	p->bytes += held_bytes(s);
	for (size_t i = p->n++; ; ) {
		size_t up = (i - 1) / 2;

		p->heap[i] = g;
		if (!i || !before(g, p->heap[up]))
			break;
		p->heap[i] = p->heap[up];
		i = up;
	}
	return ST_SEGPACE_HELD;
}

size_t st_segpace_release(struct st_segpace *p, uint64_t now, st_segpace_release_fn *fn,
			  void *ctx)
{
	size_t k = 0;

	while (p->n && p->heap[0]->due <= now) {
		struct st_segpace_seg *g = pop(p);

		fn(ctx, &g->s);
		free(g);
		k++;
	}
	return k;
}

bool st_segpace_full(const struct st_segpace *p)
{
	return p->bytes >= p->max_bytes;
}

bool st_segpace_ahead(const struct st_segpace *p, uint64_t now, uint64_t read_ahead_ns)
{
	return p->n && p->last > now + read_ahead_ns;
}

void st_segpace_free(struct st_segpace *p)
{
	while (p->n)
		free(pop(p));
	free(p->heap);
	p->heap = NULL;
	p->cap = 0;
}
