/* SPDX-License-Identifier: GPL-2.0-only */
#include "bytequeue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t next_cap(uint32_t cap)
{
	if (!cap)
		return ST_BQ_CHUNK_MIN;
	return cap * 2 > ST_BQ_CHUNK_MAX ? ST_BQ_CHUNK_MAX : cap * 2;
}

uint64_t st_bq_cost(const struct st_bq *q, size_t len)
{
	size_t room = q->tail ? q->tail->cap - q->tail->len : 0;
	uint32_t cap = q->tail ? q->tail->cap : 0;
	uint64_t cost = 0;

	if (len <= room)
		return 0;
	len -= room;
	while (len) {
		cap = next_cap(cap);
		cost += sizeof(struct st_bq_chunk) + cap;
		len -= len < cap ? len : cap;
	}
	return cost;
}

int st_bq_append(struct st_bq *q, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		struct st_bq_chunk *t = q->tail;
		size_t room = t ? t->cap - t->len : 0, n;

		if (!room) {
			uint32_t cap = next_cap(t ? t->cap : 0);

			t = malloc(sizeof(*t) + cap);
			if (!t)
				return -ENOMEM;
			q->alloc += sizeof(*t) + cap;
			t->next = NULL;
			t->off = q->end;
			t->len = 0;
			t->cap = cap;
			if (q->tail)
				q->tail->next = t;
			else
				q->head = t;
			q->tail = t;
			room = cap;
		}
		n = len < room ? len : room;
		memcpy(t->data + t->len, p, n);
		t->len += (uint32_t)n;
		q->end += n;
		p += n;
		len -= n;
	}
	return 0;
}

int st_bq_append_from(struct st_bq *q, const struct st_bq *src, uint64_t from, uint64_t to)
{
	const struct st_bq_chunk *c;

	for (c = src->head; c && from < to; c = c->next) {
		uint64_t s = c->off, e = c->off + c->len;
		int err;

		if (e <= from)
			continue;
		if (s > from)
			return -EINVAL; /* not held */
		e = e < to ? e : to;
		err = st_bq_append(q, c->data + (from - s), (size_t)(e - from));
		if (err)
			return err;
		from = e;
	}
	return from == to ? 0 : -EINVAL;
}

void st_bq_truncate(struct st_bq *q, uint64_t pos)
{
	struct st_bq_chunk *c, *prev = NULL, *nx;

	if (pos >= q->end)
		return;
	for (c = q->head; c && c->off + c->len <= pos; c = c->next)
		prev = c;
	if (c && c->off < pos) {
		c->len = (uint32_t)(pos - c->off);
		prev = c;
		c = c->next;
	}
	for (; c; c = nx) {
		nx = c->next;
		q->alloc -= sizeof(*c) + c->cap;
		free(c);
	}
	if (prev) {
		prev->next = NULL;
		q->tail = prev;
	} else {
		q->head = q->tail = NULL;
	}
	q->end = pos;
	if (q->commit > pos)
		q->commit = pos;
	if (q->sent > pos)
		q->sent = pos;
}

void st_bq_release(struct st_bq *q, uint64_t pos)
{
	if (pos > q->acked)
		q->acked = pos;
	while (q->head && q->head->off + q->head->len <= q->acked) {
		struct st_bq_chunk *c = q->head;

		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		q->alloc -= sizeof(*c) + c->cap;
		free(c);
	}
}

int st_bq_iov(const struct st_bq *q, uint64_t from, uint64_t to, struct iovec *iov, int max)
{
	const struct st_bq_chunk *c;
	int k = 0;

	for (c = q->head; c && k < max && from < to; c = c->next) {
		uint64_t e = c->off + c->len < to ? c->off + c->len : to;

		if (e <= from)
			continue;
		iov[k].iov_base = (void *)(c->data + (from - c->off));
		iov[k].iov_len = (size_t)(e - from);
		from = e;
		k++;
	}
	return k;
}

void st_bq_free(struct st_bq *q)
{
	struct st_bq_chunk *c, *nx;

	for (c = q->head; c; c = nx) {
		nx = c->next;
		free(c);
	}
	memset(q, 0, sizeof(*q));
}

size_t st_bq_copy(const struct st_bq *q, uint64_t from, uint64_t to, void *out)
{
	size_t o = 0;

	while (from + o < to) {
		struct iovec iov[16];
		int k = st_bq_iov(q, from + o, to, iov, 16);

		if (!k)
			break;
		for (int i = 0; i < k; i++) {
			memcpy((uint8_t *)out + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	return o;
}
