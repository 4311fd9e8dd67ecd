/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the watch unit tests (test_watch.c, test_watch_h2.c) read back from a watch: a series
 * of its aggregate, a histogram's count, its counters. Included by one test file each: static.
 */
#ifndef ST_TEST_WATCH_HARNESS_H
#define ST_TEST_WATCH_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "watch.h"

/* The series (endpoint, method, code) of w's aggregate, or NULL. */
static const struct st_watch_series *wh_find(struct st_watch *w, const char *ep, unsigned method,
					     uint16_t code)
{
	const struct st_watch_agg *a = st_watch__agg(w);

	for (uint32_t i = 0; i < a->ns; i++)
		if (!strcmp(st_watch_agg_endpoint_name(a, a->s[i].ep), ep) &&
		    a->s[i].method == method && a->s[i].code == code)
			return &a->s[i];
	return NULL;
}

/* The samples a histogram holds, every bucket. */
static uint64_t wh_hcount(const struct st_watch_hist *h)
{
	uint64_t n = 0;

	for (unsigned i = 0; i <= ST_WATCH_BUCKETS_MAX; i++)
		n += h->c[i];
	return n;
}

static struct st_watch_stats wh_stats(struct st_watch *w)
{
	struct st_watch_stats s;

	st_watch__stats(w, &s);
	return s;
}

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

#endif /* ST_TEST_WATCH_HARNESS_H */
