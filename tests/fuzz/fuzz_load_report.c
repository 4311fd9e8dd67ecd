/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the load report loader (agent/load/load_merge.c): `report --merge`
 * reads the JSON of load generators on other hosts, so it is untrusted input.
 *
 * Input: the file's bytes. Checks, for every report the loader accepts: its aggregate is
 * within one run's bounds (steps, endpoints, timeline buckets, terminated names, every
 * histogram's count its samples'); what the writers make of it is readable again (our own
 * JSON always loads), and the JSON of that is a fixed point (written, read, written: the
 * same text); it merges with itself, and the merge's counts are the double of its own.
 * Rejected input leaves one line of error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "load_merge.h"
#include "load_report.h"

static uint64_t total(const struct st_hdr *h)
{
	uint64_t n = 0;

	for (uint32_t i = 0; h->counts && i < h->counts_len; i++)
		n += h->counts[i];
	CHECK(n == (h->counts ? h->total : 0));
	return n;
}

static void check_bounds(const struct st_load_agg *a)
{
	CHECK(a->nsteps <= ST_LOAD_STEPS_MAX);
	CHECK(a->nep <= a->max_endpoints);
	CHECK(a->ntl <= ST_LOAD_BUCKETS_MAX);
	CHECK(total(&a->lat) == a->answered);
	total(&a->lat_raw);
	total(&a->lag);
	for (unsigned i = 0; i < a->nsteps; i++)
		total(&a->steps[i].lat);
	for (unsigned i = 0; i <= a->max_endpoints; i++) {
		CHECK(memchr(a->ep[i].name, 0, sizeof(a->ep[i].name)));
		total(&a->ep[i].lat);
	}
	for (unsigned i = 0; i < ST_LOAD_BUCKETS_MAX; i++)
		total(&a->tl[i].lat);
	CHECK(memchr(a->command, 0, sizeof(a->command)) && memchr(a->target, 0, sizeof(a->target)));
}

static void write_report(FILE *f, const void *agg, bool html)
{
	const struct st_load_agg *a = agg;

	if (html)
		st_load_report_html(f, a, a->end_real_ns, "x.compare.html");
	else
		st_load_report_json(f, a, a->end_real_ns);
}

static int load_report(void *a, const char *text, size_t len, char *err, size_t errlen)
{
	return st_load_merge_parse(a, text, len, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st_load_agg r, r2, m, mm;
	char err[512];
	char *j;
	size_t l;

	err[0] = 0;
	if (st_load_merge_parse(&r, (const char *)data, size, err, sizeof(err))) {
		CHECK(err[0] && !strchr(err, '\n'));
		return 0;
	}
	check_bounds(&r);
	fuzz_report_round_trip(write_report, load_report, &r, &r2);
	/* itself twice: every count doubles, and the merge is a report that loads again; or,
	 * when the sums would pass what a report holds, it is refused in one line */
	CHECK(!st_load_agg_init(&m, 0));
	m.sources = 0;
	CHECK(!st_load_agg_merge(&m, &r, err, sizeof(err)));
	if (st_load_agg_merge(&m, &r2, err, sizeof(err))) {
		CHECK(strstr(err, "would pass") && !strchr(err, '\n'));
		goto out;
	}
	check_bounds(&m);
	j = fuzz_report_text(write_report, &m, false, &l);
	fuzz_report_loads(load_report, &mm, j, l, "a merge's JSON");
	st_load_agg_free(&mm);
	free(j);
	CHECK(m.due == 2 * r.due && m.answered == 2 * r.answered && m.sent == 2 * r.sent);
	CHECK(m.sources == 2 * r.sources);
	CHECK(m.nep == r.nep && m.nsteps == r.nsteps);
	CHECK(total(&m.lat) == 2 * total(&r.lat));
	for (unsigned i = 0; i < r.nsteps; i++)
		CHECK(total(&m.steps[i].lat) == 2 * total(&r.steps[i].lat));
out:
	st_load_agg_free(&m);
	st_load_agg_free(&r2);
	st_load_agg_free(&r);
	return 0;
}
