/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A high dynamic range histogram in HdrHistogram's bucket layout (Gil Tene's, the one wrk2,
 * HdrHistogram_c and every HdrHistogram port share; Debian packages no C version of it).
 *
 * Values are whole numbers in the caller's unit (the load test records microseconds). A
 * histogram is made for a range and a precision:
 *  - lowest: the lowest discernible value (>= 1): values below it share its bucket;
 *  - highest: the highest trackable value (>= 2 * lowest, at most 2^62): a larger value is
 *    recorded as highest and counted in `over` (never dropped, never silently);
 *  - sig: significant decimal digits, 1 to 5 (3 is the usual choice): every value in
 *    [lowest, highest] is recorded into a bucket no wider than 1 / 10^sig of it (values up
 *    to 2 * 10^sig * lowest are exact to one unit of lowest).
 * The layout is HdrHistogram's: 2^ceil(log2(2 * 10^sig)) sub-buckets (2048 for 3 digits),
 * the first bucket whole, every next one halving its resolution; counts_len = (buckets + 1)
 * x half the sub-buckets. Memory is fixed at init and never grows: 1 us to 1 hour at 3
 * digits is 23,552 counters (184 KiB).
 *
 * Percentiles follow HdrHistogram: the value at percentile p is the highest value
 * equivalent to (in the same bucket as) the sample of rank ceil(p/100 x n) (nearest rank),
 * so it is never below the exact percentile and at most one bucket width above it
 * (tests/unit/base/test_hdr.c checks that against sorted samples). Merging two histograms
 * gives exactly the histogram of both sample sets (same layout: counts add; another layout:
 * each bucket is recorded again at its value).
 *
 * Pure, single-threaded, no globals.
 */
#ifndef ST_HDR_H
#define ST_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_HDR_SIG_MIN 1
#define ST_HDR_SIG_MAX 5
#define ST_HDR_HIGHEST_MAX (1ull << 62)

struct st_hdr {
	/* the layout (from init) */
	uint64_t lowest, highest;
	int sig;
	int unit_magnitude;                  /* floor(log2(lowest)) */
	int sub_bucket_half_count_magnitude;
	uint32_t sub_bucket_count, sub_bucket_half_count;
	uint64_t sub_bucket_mask;
	int bucket_count;
	uint32_t counts_len;
	/* the samples */
	uint64_t total;
	uint64_t min, max;                   /* exact, of the values as recorded (clamped) */
	uint64_t over;                       /* values above highest, recorded as highest */
	uint64_t *counts;
};

/* 0, -EINVAL (a range or precision outside the above) or -ENOMEM. */
int st_hdr_init(struct st_hdr *h, uint64_t lowest, uint64_t highest, int sig);
void st_hdr_free(struct st_hdr *h);
/* Forgets every sample (the layout stays). */
void st_hdr_reset(struct st_hdr *h);
/* The same layout (lowest, highest, significant digits). */
bool st_hdr_same_layout(const struct st_hdr *a, const struct st_hdr *b);
/* Memory the counters take. */
size_t st_hdr_mem(const struct st_hdr *h);

void st_hdr_record(struct st_hdr *h, uint64_t v);
void st_hdr_record_n(struct st_hdr *h, uint64_t v, uint64_t n);
/*
 * dst += src, as if src's samples had been recorded into dst (min, max and over too). With
 * another layout each of src's buckets is recorded at its value (lowest equivalent): exact
 * when dst's buckets are no wider. 0, or -EOVERFLOW when a count would wrap (dst unchanged).
 */
int st_hdr_add(struct st_hdr *dst, const struct st_hdr *src);

/* The counters' index of v (clamped into the range), and back to its bucket's values. */
uint32_t st_hdr_index(const struct st_hdr *h, uint64_t v);
uint64_t st_hdr_value_at_index(const struct st_hdr *h, uint32_t i);
uint64_t st_hdr_lowest_equiv(const struct st_hdr *h, uint64_t v);
uint64_t st_hdr_highest_equiv(const struct st_hdr *h, uint64_t v);
/* The sample rank (1..n) of percentile p (0..100) among n samples: ceil(p/100 x n), at least
 * 1; a p that is a whole number of per-millions of n is not rounded up by floating error. */
uint64_t st_hdr_rank(double p, uint64_t n);
/* The value at percentile p (0..100): see above; 0 when empty. p = 0: the lowest value's
 * bucket's lowest equivalent; p = 100: the max's bucket's highest equivalent. */
uint64_t st_hdr_value_at(const struct st_hdr *h, double p);
/* The same, never above the largest value recorded (max): what a report shows next to its
 * max (p99 43.17 ms beside max 43.15 would read as a contradiction). */
uint64_t st_hdr_percentile(const struct st_hdr *h, double p);
/* The mean (each bucket at its middle), 0 when empty. */
double st_hdr_mean(const struct st_hdr *h);

/* Every non-empty bucket in order:
 *	struct st_hdr_iter it = { 0 };
 *	while (st_hdr_next(h, &it)) ... it.lo, it.hi, it.count, it.cum ... */
struct st_hdr_iter {
	uint32_t next;                       /* the next index to look at */
	uint32_t index;
	uint64_t lo, hi;                     /* the bucket's values: lowest, highest equivalent */
	uint64_t count, cum;                 /* its count, and every count up to it */
};
bool st_hdr_next(const struct st_hdr *h, struct st_hdr_iter *it);

#endif /* ST_HDR_H */
