/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The HDR histogram (agent/base/hdr.c) against the truth: each distribution's samples are
 * also kept and sorted, and every percentile the histogram gives must be the highest value
 * of the bucket that holds the exact nearest-rank percentile (never below it, at most one
 * bucket width, < 1/10^digits, above). Merging must give exactly the histogram of both
 * sample sets. The layout must be HdrHistogram's (its own tests' values).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "hdr.h"

#define HOUR_US 3600000000ull

/* The percentiles checked, in millionths: the edges, the middle, the tail. */
static const uint64_t ppm[] = {
	1, 10, 1000, 100000, 250000, 500000, 750000, 900000, 990000, 999000, 999900, 999990,
	999999, 1000000,
};

/* A small reproducible generator (xorshift64*): the same samples on every run. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every percentile of h against the sorted samples v[0..n). */
static void check_percentiles(const struct st_hdr *h, uint64_t *v, size_t n)
{
	double tol = pow(10, -h->sig);

	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h->total, n);
	assert_int_equal(h->min, v[0]);
	assert_int_equal(h->max, v[n - 1]);
	for (size_t i = 0; i < sizeof(ppm) / sizeof(ppm[0]); i++) {
		/* nearest rank, in integers: ceil(ppm x n / 10^6) */
		uint64_t rank = (ppm[i] * n + 999999) / 1000000, exact, got;

		if (!rank)
			rank = 1;
		exact = v[rank - 1];
		got = st_hdr_value_at(h, (double)ppm[i] / 10000.0);
		if (got != st_hdr_highest_equiv(h, exact))
			fail_msg("p%g of %zu samples: %llu, want %llu (the bucket of the exact %llu)",
				 (double)ppm[i] / 10000.0, n, (unsigned long long)got,
				 (unsigned long long)st_hdr_highest_equiv(h, exact),
				 (unsigned long long)exact);
		assert_true(got >= exact);
		/* values below 2 x 10^digits units are exact to one unit */
		assert_true((double)(got - exact) <= (double)exact * tol ||
			    got - exact < h->lowest);
	}
	/* p0: the smallest value's bucket */
	assert_int_equal(st_hdr_value_at(h, 0), st_hdr_lowest_equiv(h, v[0]));
}

/* Records v into a fresh histogram of the given layout, checks it, frees it. */
static void check_samples(uint64_t *v, size_t n, uint64_t lowest, uint64_t highest, int sig)
{
	struct st_hdr h;

	assert_int_equal(st_hdr_init(&h, lowest, highest, sig), 0);
	for (size_t i = 0; i < n; i++)
		st_hdr_record(&h, v[i]);
	check_percentiles(&h, v, n);
	st_hdr_free(&h);
}

static void test_layout(void **state)
{
	struct st_hdr h;

	/* HdrHistogram's own figures: 1 us .. 1 h at 3 digits */
	assert_int_equal(st_hdr_init(&h, 1, HOUR_US, 3), 0);
	assert_int_equal(h.sub_bucket_count, 2048);
	assert_int_equal(h.sub_bucket_half_count, 1024);
	assert_int_equal(h.bucket_count, 22);
	assert_int_equal(h.counts_len, 23552);
	assert_int_equal(st_hdr_mem(&h), 23552 * 8);
	/* HdrHistogram_c's test_lowest/highest_equivalent_value */
	assert_int_equal(st_hdr_lowest_equiv(&h, 10007), 10000);
	assert_int_equal(st_hdr_lowest_equiv(&h, 10009), 10008);
	assert_int_equal(st_hdr_highest_equiv(&h, 8180), 8183);
	assert_int_equal(st_hdr_highest_equiv(&h, 8191), 8191);
	assert_int_equal(st_hdr_highest_equiv(&h, 8193), 8199);
	assert_int_equal(st_hdr_highest_equiv(&h, 9995), 9999);
	assert_int_equal(st_hdr_highest_equiv(&h, 10007), 10007);
	assert_int_equal(st_hdr_highest_equiv(&h, 10008), 10015);
	/* exact below 2048 */
	for (uint64_t v = 0; v < 2048; v++)
		assert_int_equal(st_hdr_highest_equiv(&h, v), v);
	/* every index up to the range's top maps back to itself, and indexes grow with values
	 * (the last bucket's counters go past highest: they are never used) */
	assert_true(st_hdr_index(&h, HOUR_US) < h.counts_len);
	assert_true(st_hdr_index(&h, HOUR_US) >= h.counts_len - h.sub_bucket_half_count);
	for (uint32_t i = 0; i <= st_hdr_index(&h, HOUR_US); i++) {
		uint64_t lo = st_hdr_value_at_index(&h, i);

		assert_int_equal(st_hdr_index(&h, lo), i);
		assert_int_equal(st_hdr_index(&h, st_hdr_highest_equiv(&h, lo)), i);
		if (i)
			assert_int_equal(st_hdr_highest_equiv(&h, st_hdr_value_at_index(&h, i - 1)) + 1,
					 lo);
	}
	assert_int_equal(st_hdr_index(&h, UINT64_MAX), st_hdr_index(&h, HOUR_US));
	st_hdr_free(&h);
	/* a unit above 1: values below it share the first bucket */
	assert_int_equal(st_hdr_init(&h, 1000, 3600000000000ull, 3), 0);
	assert_int_equal(h.unit_magnitude, 9);
	assert_int_equal(st_hdr_index(&h, 0), st_hdr_index(&h, 511));
	st_hdr_free(&h);
	/* 2 digits: 256 sub-buckets */
	assert_int_equal(st_hdr_init(&h, 1, HOUR_US, 2), 0);
	assert_int_equal(h.sub_bucket_count, 256);
	st_hdr_free(&h);
	/* ranges and precisions outside the contract */
	assert_int_equal(st_hdr_init(&h, 0, 100, 3), -EINVAL);
	assert_int_equal(st_hdr_init(&h, 10, 19, 3), -EINVAL);
	assert_int_equal(st_hdr_init(&h, 1, 100, 0), -EINVAL);
	assert_int_equal(st_hdr_init(&h, 1, 100, 6), -EINVAL);
	assert_int_equal(st_hdr_init(&h, 1, ST_HDR_HIGHEST_MAX + 1, 3), -EINVAL);
	assert_int_equal(st_hdr_init(&h, 1, ST_HDR_HIGHEST_MAX, 5), 0);
	st_hdr_free(&h);
}

static void test_rank(void **state)
{
	assert_int_equal(st_hdr_rank(99, 100), 99);
	assert_int_equal(st_hdr_rank(99.9, 1000), 999);
	assert_int_equal(st_hdr_rank(99.99, 10000), 9999);
	assert_int_equal(st_hdr_rank(50, 3), 2);
	assert_int_equal(st_hdr_rank(50, 4), 2);
	assert_int_equal(st_hdr_rank(0.0001, 1000000), 1);
	assert_int_equal(st_hdr_rank(0.00001, 1000000), 1);
	assert_int_equal(st_hdr_rank(100, 7), 7);
	assert_int_equal(st_hdr_rank(0, 7), 1);
	assert_int_equal(st_hdr_rank(50, 0), 0);
}

/* Random distributions, each at 1 to 4 digits. */
static void test_random(void **state)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	assert_non_null(v);
	for (int sig = 1; sig <= 4; sig++) {
		rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)sig;
		/* uniform over 0 .. 10^6 */
		for (size_t i = 0; i < n; i++)
			v[i] = rnd() % 1000001;
		check_samples(v, n, 1, HOUR_US, sig);
		/* log-uniform over 1 us .. 1 h: every bucket of the layout */
		for (size_t i = 0; i < n; i++)
			v[i] = (uint64_t)exp(rnd01() * log((double)HOUR_US));
		check_samples(v, n, 1, HOUR_US, sig);
		/* the load test's target: 90% near 5 ms, 10% near 50 ms, with jitter */
		for (size_t i = 0; i < n; i++)
			v[i] = (rnd() % 10 ? 5000 : 50000) + rnd() % 700;
		check_samples(v, n, 1, HOUR_US, sig);
		/* a heavy tail (Pareto, alpha 1.1) */
		for (size_t i = 0; i < n; i++)
			v[i] = (uint64_t)(100.0 / pow(1.0 - rnd01() * 0.999999, 1 / 1.1));
		check_samples(v, n, 1, HOUR_US, sig);
	}
	/* a unit of 1000 (nanoseconds recorded at microsecond resolution) */
	rng_state = 42;
	for (size_t i = 0; i < n; i++)
		v[i] = (uint64_t)exp(rnd01() * log(1e12));
	check_samples(v, n, 1000, 3600000000000ull, 3);
	free(v);
}

/* Distributions built to sit on the layout's edges. */
static void test_adversarial(void **state)
{
	size_t cap = 100000, n;
	uint64_t *v = malloc(cap * sizeof(*v));

	assert_non_null(v);
	/* one value, many times */
	for (n = 0; n < 1000; n++)
		v[n] = 12345;
	check_samples(v, n, 1, HOUR_US, 3);
	/* one sample, two samples */
	v[0] = 777777;
	check_samples(v, 1, 1, HOUR_US, 3);
	v[0] = 3;
	v[1] = HOUR_US;
	check_samples(v, 2, 1, HOUR_US, 3);
	/* every power of two and its neighbours (bucket and sub-bucket edges) */
	n = 0;
	for (int b = 0; b < 32; b++) {
		uint64_t p = 1ull << b;

		v[n++] = p - 1;
		v[n++] = p;
		v[n++] = p + 1;
	}
	check_samples(v, n, 1, HOUR_US, 3);
	/* the first and last value of every bucket of the layout */
	{
		struct st_hdr h;

		assert_int_equal(st_hdr_init(&h, 1, HOUR_US, 3), 0);
		n = 0;
		for (uint32_t i = 0; i < st_hdr_index(&h, HOUR_US) && n + 2 <= cap; i += 97) {
			uint64_t lo = st_hdr_value_at_index(&h, i);

			v[n++] = lo;
			v[n++] = st_hdr_highest_equiv(&h, lo);
		}
		st_hdr_free(&h);
		check_samples(v, n, 1, HOUR_US, 3);
	}
	/* zeros and the range's top, nothing between */
	for (n = 0; n < 999; n++)
		v[n] = n % 3 ? 0 : HOUR_US;
	check_samples(v, n, 1, HOUR_US, 3);
	/* increasing, decreasing (the order must not matter) */
	for (n = 0; n < cap; n++)
		v[n] = n * 37;
	check_samples(v, n, 1, HOUR_US, 3);
	for (n = 0; n < cap; n++)
		v[n] = (cap - n) * 1013;
	check_samples(v, n, 1, HOUR_US, 2);
	/* 99% tiny, 1% huge: the p99 boundary itself */
	for (n = 0; n < 10000; n++)
		v[n] = n < 9900 ? 10 : 10000000 + n;
	check_samples(v, n, 1, HOUR_US, 3);
	free(v);
}

/* A value above the range is recorded as the highest, and counted. */
static void test_over(void **state)
{
	struct st_hdr h;

	assert_int_equal(st_hdr_init(&h, 1, 1000000, 3), 0);
	st_hdr_record(&h, 10);
	st_hdr_record(&h, 5000000);
	assert_int_equal(h.over, 1);
	assert_int_equal(h.total, 2);
	assert_int_equal(h.max, 1000000);
	assert_int_equal(st_hdr_value_at(&h, 100), st_hdr_highest_equiv(&h, 1000000));
	assert_int_equal(st_hdr_value_at(&h, 50), 10);
	st_hdr_reset(&h);
	assert_int_equal(h.total, 0);
	assert_int_equal(h.over, 0);
	assert_int_equal(st_hdr_value_at(&h, 50), 0);
	st_hdr_free(&h);
}

/* Merging = recording both sample sets: the same counters, extremes and percentiles. */
static void test_merge(void **state)
{
	size_t n = 100000;
	uint64_t *v = malloc(n * sizeof(*v));
	struct st_hdr a, b, all, empty;

	assert_non_null(v);
	for (int dist = 0; dist < 3; dist++) {
		rng_state = 1234 + (uint64_t)dist;
		assert_int_equal(st_hdr_init(&a, 1, HOUR_US, 3), 0);
		assert_int_equal(st_hdr_init(&b, 1, HOUR_US, 3), 0);
		assert_int_equal(st_hdr_init(&all, 1, HOUR_US, 3), 0);
		assert_int_equal(st_hdr_init(&empty, 1, HOUR_US, 3), 0);
		for (size_t i = 0; i < n; i++) {
			v[i] = dist == 0 ? rnd() % 100000 :
			       dist == 1 ? (uint64_t)exp(rnd01() * log((double)HOUR_US)) :
			       /* two different halves: b alone holds the tail */
				       (i % 2 ? 1000 + rnd() % 10 : 1000000 + rnd() % 1000000);
			st_hdr_record(i % 2 ? &a : &b, v[i]);
			st_hdr_record(&all, v[i]);
		}
		assert_int_equal(st_hdr_add(&a, &empty), 0);
		assert_int_equal(st_hdr_add(&a, &b), 0);
		assert_memory_equal(a.counts, all.counts, all.counts_len * sizeof(*all.counts));
		assert_int_equal(a.total, all.total);
		assert_int_equal(a.min, all.min);
		assert_int_equal(a.max, all.max);
		check_percentiles(&a, v, n);
		/* into an empty one: a copy */
		assert_int_equal(st_hdr_add(&empty, &all), 0);
		assert_memory_equal(empty.counts, all.counts, all.counts_len * sizeof(*all.counts));
		assert_int_equal(empty.min, all.min);
		assert_int_equal(empty.max, all.max);
		st_hdr_free(&a);
		st_hdr_free(&b);
		st_hdr_free(&all);
		st_hdr_free(&empty);
	}
	/* another layout: each bucket again at its value (2 digits into 3: within 2 digits) */
	{
		struct st_hdr c2, c3;

		rng_state = 99;
		assert_int_equal(st_hdr_init(&c2, 1, HOUR_US, 2), 0);
		assert_int_equal(st_hdr_init(&c3, 1, HOUR_US, 3), 0);
		for (size_t i = 0; i < n; i++) {
			v[i] = (uint64_t)exp(rnd01() * log(1e8));
			st_hdr_record(&c2, v[i]);
		}
		assert_int_equal(st_hdr_add(&c3, &c2), 0);
		assert_int_equal(c3.total, n);
		assert_int_equal(c3.min, c2.min);
		assert_int_equal(c3.max, c2.max);
		for (size_t i = 0; i < sizeof(ppm) / sizeof(ppm[0]) - 1; i++) {
			double p = (double)ppm[i] / 10000.0;

			/* c3 holds c2's buckets' lowest values: c2's answer's bucket */
			assert_int_equal(st_hdr_highest_equiv(&c2, st_hdr_value_at(&c3, p)),
					 st_hdr_value_at(&c2, p));
		}
		/* over the range of a smaller one: counted over */
		{
			struct st_hdr small;

			assert_int_equal(st_hdr_init(&small, 1, 1000000, 3), 0);
			assert_int_equal(st_hdr_add(&small, &c2), 0);
			assert_int_equal(small.total, n);
			assert_true(small.over > 0);
			assert_int_equal(small.max, 1000000);
			st_hdr_free(&small);
		}
		st_hdr_free(&c2);
		st_hdr_free(&c3);
	}
	free(v);
}

static void test_iter_mean(void **state)
{
	struct st_hdr h;
	struct st_hdr_iter it = { 0 };
	uint64_t prev = 0, seen = 0, buckets = 0;
	double sum = 0;

	assert_int_equal(st_hdr_init(&h, 1, HOUR_US, 3), 0);
	rng_state = 7;
	for (int i = 0; i < 50000; i++) {
		uint64_t x = 1000 + rnd() % 1000000;

		st_hdr_record(&h, x);
		sum += (double)x;
	}
	while (st_hdr_next(&h, &it)) {
		assert_true(it.count > 0);
		assert_true(it.lo <= it.hi);
		assert_true(!buckets || it.lo > prev);
		prev = it.hi;
		seen += it.count;
		assert_int_equal(it.cum, seen);
		buckets++;
	}
	assert_int_equal(seen, h.total);
	assert_false(st_hdr_next(&h, &it));
	/* the mean of bucket middles: within a bucket's relative width of the exact one */
	assert_true(fabs(st_hdr_mean(&h) - sum / 50000) <= sum / 50000 * 1e-3);
	st_hdr_free(&h);
}

/* A report's percentile never reads above its max, while the bucket's upper end may. */
static void test_percentile_at_most_max(void **state)
{
	struct st_hdr h;

	(void)state;
	assert_int_equal(st_hdr_init(&h, 1, 3600ull * 1000000, 3), 0);
	st_hdr_record(&h, 1000);
	st_hdr_record(&h, 43150);
	assert_true(st_hdr_value_at(&h, 99) > 43150); /* 43150's bucket ends above it */
	assert_int_equal(st_hdr_percentile(&h, 99), 43150);
	assert_int_equal(st_hdr_percentile(&h, 100), 43150);
	assert_int_equal(st_hdr_percentile(&h, 50), st_hdr_value_at(&h, 50)); /* below max: as is */
	st_hdr_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_rank),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_adversarial),
		cmocka_unit_test(test_over),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_iter_mean),
		cmocka_unit_test(test_percentile_at_most_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
