/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/shadow/bytequeue.c: the byte queue every shadow connection and every
 * captured connection's stage holds its bytes in. Checked against a flat model buffer:
 * what st_bq_iov hands out at any offset, what st_bq_cost predicts and st_bq_mem then
 * says, which chunks release and truncate free.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bytequeue.h"

#define CHUNK_HDR sizeof(struct st_bq_chunk)

/* The bytes [from, to) through st_bq_iov, gathered into out (enough iovecs for any test). */
static size_t gather(const struct st_bq *q, uint64_t from, uint64_t to, uint8_t *out)
{
	struct iovec iov[256];
	int n = st_bq_iov(q, from, to, iov, 256);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* Chunks grow 512, 1 KiB ... 64 KiB and stay there; the cost of an append is what it adds. */
static void test_growth_and_cost(void **state)
{
	struct st_bq q = { 0 };
	static uint8_t buf[300000];
	uint64_t want = 0, cap = 0, left = sizeof(buf);

	(void)state;
	fill(buf, sizeof(buf), 1);
	assert_int_equal(st_bq_cost(&q, 0), 0);
	assert_int_equal(st_bq_cost(&q, 1), CHUNK_HDR + ST_BQ_CHUNK_MIN);
	while (left) {
		cap = cap ? (cap * 2 > ST_BQ_CHUNK_MAX ? ST_BQ_CHUNK_MAX : cap * 2) : ST_BQ_CHUNK_MIN;
		want += CHUNK_HDR + cap;
		left -= left < cap ? left : cap;
	}
	assert_int_equal(st_bq_cost(&q, sizeof(buf)), want);
	assert_int_equal(st_bq_append(&q, buf, sizeof(buf)), 0);
	assert_int_equal(st_bq_mem(&q), want);
	assert_int_equal(q.end, sizeof(buf));
	/* room left in the tail costs nothing */
	{
		uint64_t room = q.tail->cap - q.tail->len;

		assert_true(room > 0);
		assert_int_equal(st_bq_cost(&q, room), 0);
		assert_int_equal(st_bq_cost(&q, room + 1), CHUNK_HDR + ST_BQ_CHUNK_MAX);
	}
	st_bq_free(&q);
	assert_int_equal(st_bq_mem(&q), 0);
}

/* Bytes come back as they went in, from any offset to any offset. */
static void test_iov_roundtrip(void **state)
{
	struct st_bq q = { 0 };
	static uint8_t in[200000], out[200000];
	size_t pos = 0;
	unsigned seed = 7;

	(void)state;
	fill(in, sizeof(in), 3);
	/* appends of uneven sizes, across chunk edges */
	while (pos < sizeof(in)) {
		size_t n = (seed = seed * 1103515245 + 12345) % 5000 + 1;

		if (n > sizeof(in) - pos)
			n = sizeof(in) - pos;
		assert_int_equal(st_bq_append(&q, in + pos, n), 0);
		pos += n;
	}
	for (int k = 0; k < 200; k++) {
		uint64_t a = (seed = seed * 1103515245 + 12345) % sizeof(in);
		uint64_t b = a + (seed = seed * 1103515245 + 12345) % (sizeof(in) - a + 1);

		assert_int_equal(gather(&q, a, b, out), b - a);
		assert_memory_equal(out, in + a, b - a);
	}
	/* a full iovec array stops short; the caller goes on from there */
	{
		struct iovec iov[2];
		int n = st_bq_iov(&q, 0, sizeof(in), iov, 2);

		assert_int_equal(n, 2);
		assert_int_equal(iov[0].iov_len + iov[1].iov_len, ST_BQ_CHUNK_MIN + 2 * ST_BQ_CHUNK_MIN);
	}
	st_bq_free(&q);
}

/* Release frees whole chunks before the mark and nothing else; offsets stay absolute. */
static void test_release(void **state)
{
	struct st_bq q = { 0 };
	static uint8_t in[10000], out[10000];

	(void)state;
	fill(in, sizeof(in), 5);
	assert_int_equal(st_bq_append(&q, in, sizeof(in)), 0);
	/* chunks: [0,512) [512,1536) [1536,3584) [3584,7680) [7680,15872) */
	q.sent = q.commit = q.end;
	st_bq_release(&q, 511);
	assert_int_equal(q.acked, 511);
	assert_int_equal(q.head->off, 0); /* one byte of the first chunk is still held */
	st_bq_release(&q, 512);
	assert_int_equal(q.head->off, 512);
	assert_int_equal(st_bq_mem(&q), 4 * CHUNK_HDR + 1024 + 2048 + 4096 + 8192);
	st_bq_release(&q, 100); /* backwards: nothing */
	assert_int_equal(q.acked, 512);
	st_bq_release(&q, 4000);
	assert_int_equal(q.head->off, 3584);
	assert_int_equal(gather(&q, 4000, sizeof(in), out), sizeof(in) - 4000);
	assert_memory_equal(out, in + 4000, sizeof(in) - 4000);
	st_bq_release(&q, sizeof(in)); /* everything: no chunk left */
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(st_bq_mem(&q), 0);
	assert_int_equal(st_bq_append(&q, in, 10), 0);
	assert_int_equal(q.head->off, sizeof(in));
	assert_int_equal(st_bq_mem(&q), CHUNK_HDR + ST_BQ_CHUNK_MIN);
	assert_int_equal(q.end, sizeof(in) + 10);
	assert_int_equal(gather(&q, sizeof(in), sizeof(in) + 10, out), 10);
	assert_memory_equal(out, in, 10);
	st_bq_free(&q);
}

/* Truncate cuts back to a position (mid-chunk or at an edge), pulls commit and sent back with
 * it, frees the chunks after it; appends go on from there. */
static void test_truncate(void **state)
{
	struct st_bq q = { 0 };
	static uint8_t in[8000], out[8000];

	(void)state;
	fill(in, sizeof(in), 9);
	assert_int_equal(st_bq_append(&q, in, sizeof(in)), 0);
	q.commit = 6000;
	q.sent = 5000;
	st_bq_truncate(&q, 9000); /* past the end: nothing */
	assert_int_equal(q.end, sizeof(in));
	st_bq_truncate(&q, 3000);
	assert_int_equal(q.end, 3000);
	assert_int_equal(q.commit, 3000);
	assert_int_equal(q.sent, 3000);
	assert_int_equal(st_bq_mem(&q), 3 * CHUNK_HDR + 512 + 1024 + 2048);
	assert_int_equal(st_bq_append(&q, "XYZ", 3), 0);
	assert_int_equal(gather(&q, 2990, 3003, out), 13);
	assert_memory_equal(out, in + 2990, 10);
	assert_memory_equal(out + 10, "XYZ", 3);
	st_bq_truncate(&q, 512); /* at a chunk edge */
	assert_int_equal(q.end, 512);
	assert_int_equal(st_bq_mem(&q), CHUNK_HDR + 512);
	st_bq_truncate(&q, 0);
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(st_bq_mem(&q), 0);
	assert_int_equal(st_bq_append(&q, in, 100), 0);
	assert_int_equal(q.head->off, 0);
	st_bq_free(&q);
}

/* append_from copies a held range; a range the source no longer (or never) held is refused. */
static void test_append_from(void **state)
{
	struct st_bq a = { 0 }, b = { 0 };
	static uint8_t in[6000], out[6000];

	(void)state;
	fill(in, sizeof(in), 11);
	assert_int_equal(st_bq_append(&a, in, sizeof(in)), 0);
	assert_int_equal(st_bq_append_from(&b, &a, 1000, 5000), 0);
	assert_int_equal(b.end, 4000);
	assert_int_equal(gather(&b, 0, 4000, out), 4000);
	assert_memory_equal(out, in + 1000, 4000);
	assert_int_equal(st_bq_append_from(&b, &a, 5000, 7000), -EINVAL); /* past the end */
	a.sent = a.commit = a.end;
	st_bq_release(&a, 2000);  /* frees [0,1536) */
	assert_int_equal(st_bq_append_from(&b, &a, 100, 200), -EINVAL);
	assert_int_equal(st_bq_append_from(&b, &a, 1600, 1600), 0); /* empty: nothing to hold */
	st_bq_free(&a);
	st_bq_free(&b);
}

/* st_bq_copy: any span across chunks, whole; past what is held, what is held. */
static void test_copy(void **state)
{
	struct st_bq a = { 0 };
	static uint8_t in[300000], out[300000];

	(void)state;
	fill(in, sizeof(in), 5);
	for (size_t o = 0; o < sizeof(in); o += 7000)
		assert_int_equal(st_bq_append(&a, in + o, sizeof(in) - o < 7000 ? sizeof(in) - o :
									     7000), 0);
	/* more than 16 chunks' worth in one copy: the copy goes on past one batch of iovecs */
	assert_int_equal(st_bq_copy(&a, 17, 299000, out), 299000 - 17);
	assert_memory_equal(out, in + 17, 299000 - 17);
	assert_int_equal(st_bq_copy(&a, 511, 513, out), 2);
	assert_memory_equal(out, in + 511, 2);
	assert_int_equal(st_bq_copy(&a, 100, 100, out), 0);
	st_bq_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_growth_and_cost),
		cmocka_unit_test(test_iov_roundtrip),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_append_from),
		cmocka_unit_test(test_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
