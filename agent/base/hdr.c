/* SPDX-License-Identifier: GPL-2.0-only */
/* The HDR histogram (hdr.h): HdrHistogram's layout and its percentile rule. */
#include "hdr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int bucket_index(const struct st_hdr *h, uint64_t v)
{
	/* the power of two at or above v, at least the sub-bucket range's top */
	int pow2ceiling = 64 - __builtin_clzll(v | h->sub_bucket_mask);

	return pow2ceiling - h->unit_magnitude - (h->sub_bucket_half_count_magnitude + 1);
}

static uint32_t sub_bucket_index(const struct st_hdr *h, uint64_t v, int b)
{
	return (uint32_t)(v >> (b + h->unit_magnitude));
}

static uint32_t counts_index(const struct st_hdr *h, int b, uint32_t sb)
{
	/* bucket b's first half overlaps bucket b - 1: only its upper half has counters */
	return ((uint32_t)(b + 1) << h->sub_bucket_half_count_magnitude) +
	       (sb - h->sub_bucket_half_count);
}

static uint64_t value_from(const struct st_hdr *h, int b, uint32_t sb)
{
	return (uint64_t)sb << (b + h->unit_magnitude);
}

int st_hdr_init(struct st_hdr *h, uint64_t lowest, uint64_t highest, int sig)
{
	uint64_t single = 2, untrackable;
	int mag = 0, n = 1;

	memset(h, 0, sizeof(*h));
	if (lowest < 1 || sig < ST_HDR_SIG_MIN || sig > ST_HDR_SIG_MAX || highest < 2 * lowest ||
	    highest > ST_HDR_HIGHEST_MAX)
		return -EINVAL;
	for (int i = 0; i < sig; i++)
		single *= 10;
	while ((1ull << mag) < single)
		mag++;
	h->lowest = lowest;
	h->highest = highest;
	h->sig = sig;
	h->sub_bucket_half_count_magnitude = (mag > 1 ? mag : 1) - 1;
	h->unit_magnitude = 63 - __builtin_clzll(lowest);
	if (h->unit_magnitude + h->sub_bucket_half_count_magnitude > 61)
		return -EINVAL;
	h->sub_bucket_count = 1u << (h->sub_bucket_half_count_magnitude + 1);
	h->sub_bucket_half_count = h->sub_bucket_count / 2;
	h->sub_bucket_mask = (uint64_t)(h->sub_bucket_count - 1) << h->unit_magnitude;
	untrackable = (uint64_t)h->sub_bucket_count << h->unit_magnitude;
	while (untrackable <= highest) {
		if (untrackable > (uint64_t)INT64_MAX / 2) {
			n++;
			break;
		}
		untrackable <<= 1;
		n++;
	}
	h->bucket_count = n;
	h->counts_len = (uint32_t)(n + 1) * h->sub_bucket_half_count;
	h->counts = calloc(h->counts_len, sizeof(*h->counts));
	if (!h->counts)
		return -ENOMEM;
	return 0;
}

void st_hdr_free(struct st_hdr *h)
{
	free(h->counts);
	h->counts = NULL;
	h->counts_len = 0;
}

void st_hdr_reset(struct st_hdr *h)
{
	if (h->counts)
		memset(h->counts, 0, h->counts_len * sizeof(*h->counts));
	h->total = h->min = h->max = h->over = 0;
}

bool st_hdr_same_layout(const struct st_hdr *a, const struct st_hdr *b)
{
	return a->lowest == b->lowest && a->highest == b->highest && a->sig == b->sig;
}

size_t st_hdr_mem(const struct st_hdr *h)
{
	return (size_t)h->counts_len * sizeof(*h->counts);
}

uint32_t st_hdr_index(const struct st_hdr *h, uint64_t v)
{
	int b;

	if (v > h->highest)
		v = h->highest;
	b = bucket_index(h, v);
	return counts_index(h, b, sub_bucket_index(h, v, b));
}

uint64_t st_hdr_value_at_index(const struct st_hdr *h, uint32_t i)
{
	int b = (int)(i >> h->sub_bucket_half_count_magnitude) - 1;
	uint32_t sb = (i & (h->sub_bucket_half_count - 1)) + h->sub_bucket_half_count;

	if (b < 0) {
		sb -= h->sub_bucket_half_count;
		b = 0;
	}
	return value_from(h, b, sb);
}

static uint64_t range_size(const struct st_hdr *h, uint64_t v)
{
	int b = bucket_index(h, v);
	uint32_t sb = sub_bucket_index(h, v, b);

	return 1ull << (h->unit_magnitude + (sb >= h->sub_bucket_count ? b + 1 : b));
}

uint64_t st_hdr_lowest_equiv(const struct st_hdr *h, uint64_t v)
{
	int b = bucket_index(h, v);

	return value_from(h, b, sub_bucket_index(h, v, b));
}

uint64_t st_hdr_highest_equiv(const struct st_hdr *h, uint64_t v)
{
	return st_hdr_lowest_equiv(h, v) + range_size(h, v) - 1;
}

void st_hdr_record_n(struct st_hdr *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	if (v > h->highest) {
		v = h->highest;
		h->over += n;
	}
	h->counts[st_hdr_index(h, v)] += n;
	if (!h->total || v < h->min)
		h->min = v;
	if (!h->total || v > h->max)
		h->max = v;
	h->total += n;
}

void st_hdr_record(struct st_hdr *h, uint64_t v)
{
	st_hdr_record_n(h, v, 1);
}

int st_hdr_add(struct st_hdr *dst, const struct st_hdr *src)
{
	uint64_t min = dst->min, max = dst->max, had = dst->total;

	if (!src->total)
		return 0;
	if (dst->total + src->total < dst->total)
		return -EOVERFLOW;
	if (!st_hdr_same_layout(dst, src)) {
		for (uint32_t i = 0; i < src->counts_len; i++)
			if (src->counts[i])
				st_hdr_record_n(dst, st_hdr_value_at_index(src, i), src->counts[i]);
		/* src's own clamped values are above a range no larger than ours: unknown, over */
		if (src->highest <= dst->highest)
			dst->over += src->over;
		/* the exact extremes, as far as our range holds them */
		dst->min = had && min < src->min ? min : src->min;
		dst->max = had && max > src->max ? max : src->max;
		if (dst->max > dst->highest)
			dst->max = dst->highest;
		if (dst->min > dst->highest)
			dst->min = dst->highest;
		return 0;
	}
	for (uint32_t i = 0; i < src->counts_len; i++)
		dst->counts[i] += src->counts[i];
	dst->min = had && min < src->min ? min : src->min;
	dst->max = had && max > src->max ? max : src->max;
	dst->total += src->total;
	dst->over += src->over;
	return 0;
}

uint64_t st_hdr_rank(double p, uint64_t n)
{
	double x;
	uint64_t k;

	if (!n)
		return 0;
	if (!(p < 100))
		return n;
	if (!(p > 0))
		return 1;
	x = p * (double)n / 100.0;
	k = (uint64_t)x;
	/* ceil(x), but 99 x 100 / 100 computed as 99.00000000000001 is 99 */
	if ((double)k < x && x - (double)k > x * 1e-12)
		k++;
	return k < 1 ? 1 : k > n ? n : k;
}

uint64_t st_hdr_percentile(const struct st_hdr *h, double p)
{
	uint64_t v = st_hdr_value_at(h, p);

	return v > h->max ? h->max : v;
}

uint64_t st_hdr_value_at(const struct st_hdr *h, double p)
{
	uint64_t rank, cum = 0;

	if (!h->total)
		return 0;
	if (!(p > 0))
		return st_hdr_lowest_equiv(h, h->min);
	rank = st_hdr_rank(p, h->total);
	for (uint32_t i = 0; i < h->counts_len; i++) {
		cum += h->counts[i];
		if (cum >= rank)
			return st_hdr_highest_equiv(h, st_hdr_value_at_index(h, i));
	}
	return st_hdr_highest_equiv(h, h->max);
}

double st_hdr_mean(const struct st_hdr *h)
{
	double sum = 0;

	if (!h->total)
		return 0;
	for (uint32_t i = 0; i < h->counts_len; i++) {
		uint64_t v;

		if (!h->counts[i])
			continue;
		v = st_hdr_value_at_index(h, i);
		sum += (double)h->counts[i] * (double)(v + (range_size(h, v) >> 1));
	}
	return sum / (double)h->total;
}

bool st_hdr_next(const struct st_hdr *h, struct st_hdr_iter *it)
{
	for (uint32_t i = it->next; i < h->counts_len; i++) {
		if (!h->counts[i])
			continue;
		it->index = i;
		it->lo = st_hdr_value_at_index(h, i);
		it->hi = st_hdr_highest_equiv(h, it->lo);
		it->count = h->counts[i];
		it->cum += it->count;
		it->next = i + 1;
		return true;
	}
	it->next = h->counts_len;
	return false;
}
