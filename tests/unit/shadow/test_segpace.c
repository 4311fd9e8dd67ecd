/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The pacing of `receive --to` (segpace.c), on times given by hand: segments released at
 * their capture time shifted by the offset the first one sets, in due order whatever order
 * they were held in (equal dues in the order held), never before an earlier segment of their
 * connection; the offset set again by a source far ahead, never before a segment held
 * earlier; the read-ahead (st_segpace_ahead); the byte bound (FULL, a loss
 * segment's length not counted); held data copied; release of all, and free of what is held.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "segpace.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define OUT_MAX 4096

struct out {
	uint64_t ts[OUT_MAX];   /* the released segments' ts_ns, in order */
	uint32_t seq[OUT_MAX];
	uint8_t first[OUT_MAX]; /* the first data byte, or 0 */
	size_t n;
};

static void take(void *ctx, const struct st_segment *s)
{
	struct out *o = ctx;

	assert_true(o->n < OUT_MAX);
	o->ts[o->n] = s->ts_ns;
	o->seq[o->n] = s->seq;
	o->first[o->n] = s->kind == ST_SEG_DATA && s->len ? s->data[0] : 0;
	o->n++;
}

static struct st_segment seg(uint64_t ts, uint32_t seq, const uint8_t *d, uint32_t len)
{
	struct st_segment s;

	memset(&s, 0, sizeof(s));
	s.ts_ns = ts;
	s.seq = seq;
	s.data = d;
	s.len = len;
	return s;
}

/* Capture times 0, 10, 30 ms from a realtime clock far from the monotonic one: each is due at
 * the monotonic time of the first plus its distance from it, no earlier. */
static void test_due_at_capture_distance(void **state)
{
	struct st_segpace p;
	struct out o = { 0 };
	uint64_t t0 = 1700000000 * SEC, m0 = 5 * SEC;
	struct st_segment s;
	uint64_t last = 0;

	(void)state;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC);
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t at[] = { 0, 10 * MS, 30 * MS };

		s = seg(t0 + at[i], i, NULL, 0);
		assert_int_equal(st_segpace_hold(&p, &s, &last, m0), ST_SEGPACE_HELD);
	}
	assert_int_equal(p.n, 3);
	assert_int_equal(st_segpace_release(&p, m0, take, &o), 1);
	assert_int_equal(st_segpace_release(&p, m0 + 10 * MS - 1, take, &o), 0);
	assert_int_equal(st_segpace_release(&p, m0 + 10 * MS, take, &o), 1);
	assert_int_equal(st_segpace_release(&p, m0 + 29 * MS, take, &o), 0);
	assert_int_equal(st_segpace_release(&p, m0 + 31 * MS, take, &o), 1);
	assert_int_equal(o.n, 3);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(o.seq[i], i);
	assert_int_equal(p.n, 0);
	st_segpace_free(&p);
}

/* Held out of order across connections: released in due order, equal dues as held. */
static void test_order(void **state)
{
	struct st_segpace p;
	struct out o = { 0 };
	uint64_t last[3] = { 0 };
	/* (connection, capture ms): due order is by ms, ties by holding order */
	const struct { int c; uint64_t ms; } in[] = {
		{ 0, 0 }, { 1, 50 }, { 2, 20 }, { 1, 60 }, { 2, 20 }, { 0, 5 }, { 2, 70 }, { 0, 50 },
	};
	const uint32_t want[] = { 0, 5, 2, 4, 1, 7, 3, 6 };
	struct st_segment s;

	(void)state;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC);
	for (uint32_t i = 0; i < 8; i++) {
		s = seg(in[i].ms * MS, i, NULL, 0);
		assert_int_equal(st_segpace_hold(&p, &s, &last[in[i].c], 1000 * MS),
				 ST_SEGPACE_HELD);
	}
	assert_int_equal(st_segpace_release(&p, UINT64_MAX, take, &o), 8);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(o.seq[i], want[i]);
	st_segpace_free(&p);
}

/* Many segments in random order: the heap gives them back sorted by (due, held order). */
static void test_order_many(void **state)
{
	struct st_segpace p;
	static struct out o;
	struct st_segment s;
	unsigned x = 12345;

	(void)state;
	o.n = 0;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC * 1000);
	for (uint32_t i = 0; i < 3000; i++) {
		x = x * 1103515245u + 12345u;
		s = seg((x >> 16) % 200 * MS, i, NULL, 0);
		assert_int_equal(st_segpace_hold(&p, &s, NULL, SEC), ST_SEGPACE_HELD);
	}
	assert_int_equal(st_segpace_release(&p, UINT64_MAX, take, &o), 3000);
	for (size_t i = 1; i < o.n; i++) {
		assert_true(o.ts[i - 1] <= o.ts[i]);
		if (o.ts[i - 1] == o.ts[i])
			assert_true(o.seq[i - 1] < o.seq[i]);
	}
	st_segpace_free(&p);
}

/* A connection's segment captured earlier than its previous one (another CPU's clock) is not
 * due before it; another connection's is. */
static void test_connection_order_kept(void **state)
{
	struct st_segpace p;
	struct out o = { 0 };
	uint64_t a = 0, b = 0;
	struct st_segment s;

	(void)state;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC);
	s = seg(100 * MS, 1, NULL, 0);
	st_segpace_hold(&p, &s, &a, 0);       /* offset: -100 ms; due 0 */
	s = seg(300 * MS, 2, NULL, 0);
	st_segpace_hold(&p, &s, &a, 0);       /* due 200 ms */
	s = seg(250 * MS, 3, NULL, 0);
	st_segpace_hold(&p, &s, &a, 0);       /* a's: not before 200 ms */
	assert_int_equal(a, 200 * MS);
	s = seg(250 * MS, 4, NULL, 0);
	st_segpace_hold(&p, &s, &b, 0);       /* b's: 150 ms */
	assert_int_equal(st_segpace_release(&p, 199 * MS, take, &o), 2);
	assert_int_equal(o.seq[0], 1);
	assert_int_equal(o.seq[1], 4);
	assert_int_equal(st_segpace_release(&p, 200 * MS, take, &o), 2);
	assert_int_equal(o.seq[2], 2);
	assert_int_equal(o.seq[3], 3);
	st_segpace_free(&p);
}

/* A source more than ahead_ns ahead of the pace sets it again, one within does not; set again
 * it starts from the latest due time given, never before a segment held earlier (seq 3 after
 * seq 2, which is on another connection: a file decoded ahead of its pace); a late segment is
 * due at once. st_segpace_ahead() says when what is held is due beyond a read-ahead. */
static void test_ahead_resets(void **state)
{
	struct st_segpace p;
	struct out o = { 0 };
	struct st_segment s;

	(void)state;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC);
	s = seg(10 * SEC, 1, NULL, 0);
	st_segpace_hold(&p, &s, NULL, 100 * SEC);      /* offset 90 s */
	s = seg(10 * SEC + 900 * MS, 2, NULL, 0);
	st_segpace_hold(&p, &s, NULL, 100 * SEC);      /* 0.9 s ahead: held for it */
	assert_int_equal(p.off, (int64_t)(90 * SEC));
	assert_true(st_segpace_ahead(&p, 100 * SEC, 250 * MS));
	assert_false(st_segpace_ahead(&p, 100 * SEC + 700 * MS, 250 * MS));
	s = seg(60 * SEC, 3, NULL, 0);
	st_segpace_hold(&p, &s, NULL, 100 * SEC);      /* 50 s ahead: set again from 100.9 s */
	assert_int_equal(p.off, (int64_t)(40 * SEC + 900 * MS));
	s = seg(1 * SEC, 4, NULL, 0);
	st_segpace_hold(&p, &s, NULL, 100 * SEC);      /* late: due already (41.9 s) */
	assert_int_equal(st_segpace_release(&p, 100 * SEC, take, &o), 2);
	assert_int_equal(o.seq[0], 4);
	assert_int_equal(o.seq[1], 1);
	assert_int_equal(st_segpace_release(&p, 100 * SEC + 900 * MS, take, &o), 2);
	assert_int_equal(o.seq[2], 2);
	assert_int_equal(o.seq[3], 3);
	assert_false(st_segpace_ahead(&p, 100 * SEC, 0));
	st_segpace_free(&p);
}

/* The bound: payload up to max_bytes is held, the segment that would pass it is refused;
 * loss segments' lengths do not count; held data is a copy. */
static void test_bound_and_copy(void **state)
{
	struct st_segpace p;
	struct out o = { 0 };
	struct st_segment s;
	uint8_t d[600];

	(void)state;
	st_segpace_init(&p, 1000, (int64_t)SEC);
	memset(d, 'x', sizeof(d));
	s = seg(0, 1, d, 600);
	assert_int_equal(st_segpace_hold(&p, &s, NULL, 0), ST_SEGPACE_HELD);
	memset(d, 'y', sizeof(d));
	s = seg(0, 2, d, 401);
	assert_int_equal(st_segpace_hold(&p, &s, NULL, 0), ST_SEGPACE_FULL);
	s = seg(0, 3, d, 400);
	assert_int_equal(st_segpace_hold(&p, &s, NULL, 0), ST_SEGPACE_HELD);
	assert_int_equal(p.bytes, 1000);
	assert_true(st_segpace_full(&p));
	s = seg(0, 4, NULL, 1u << 30);
	s.kind = ST_SEG_LOSS;
	assert_int_equal(st_segpace_hold(&p, &s, NULL, 0), ST_SEGPACE_HELD);
	assert_int_equal(p.bytes, 1000);
	memset(d, 'z', sizeof(d));
	assert_int_equal(st_segpace_release(&p, 0, take, &o), 3);
	assert_int_equal(o.first[0], 'x');
	assert_int_equal(o.first[1], 'y');
	assert_int_equal(o.first[2], 0);
	assert_int_equal(p.bytes, 0);
	assert_false(st_segpace_full(&p));
	st_segpace_free(&p);
}

/* Freed while holding: nothing is handed over (ASan: nothing leaks); init again works. */
static void test_free_held(void **state)
{
	struct st_segpace p;
	struct st_segment s;
	uint8_t d[10] = { 1 };

	(void)state;
	st_segpace_init(&p, 1 << 20, (int64_t)SEC);
	for (uint32_t i = 0; i < 2000; i++) {
		s = seg(i * MS, i, d, sizeof(d));
		assert_int_equal(st_segpace_hold(&p, &s, NULL, 0), ST_SEGPACE_HELD);
	}
	assert_int_equal(p.bytes, 20000);
	st_segpace_free(&p);
	assert_int_equal(p.n, 0);
	st_segpace_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_at_capture_distance),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_order_many),
		cmocka_unit_test(test_connection_order_kept),
		cmocka_unit_test(test_ahead_resets),
		cmocka_unit_test(test_bound_and_copy),
		cmocka_unit_test(test_free_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
