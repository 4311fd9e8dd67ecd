/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the compare report loader (agent/compare/compare_merge.c): `report --merge`
 * reads JSON files written on other hosts, so they are untrusted input.
 *
 * Input: the file's bytes. Checks, for every report the loader accepts: its aggregate is
 * within one run's bounds (endpoints, fields, samples, status codes, terminated strings);
 * what the writers make of it is readable again (our own JSON always loads), and the JSON of
 * that is a fixed point (written, read, written: the same text); it merges with itself, and
 * the merge's counts are the double of its own. Rejected input leaves one line of error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_merge.h"
#include "fuzz_check.h"

static void check_bounds(const struct st_cmp_agg *a)
{
	CHECK(a->n <= a->cfg.max_endpoints);
	for (uint32_t i = 0; i <= a->n; i++) {
		const struct st_cmp_endpoint *e = i < a->n ? a->ep[i] : &a->other;

		CHECK(memchr(e->name, 0, sizeof(e->name)));
		CHECK(e->nfields <= ST_CMP_FIELDS_MAX);
		CHECK(e->differing + e->noise_only <= e->compared);
		for (uint32_t k = 0; k < e->nfields; k++) {
			const struct st_cmp_field *f = &e->fields[k];

			CHECK(memchr(f->path, 0, sizeof(f->path)));
			CHECK(memchr(f->note, 0, sizeof(f->note)));
			CHECK(f->nsamples <= ST_CMP_SAMPLES);
			CHECK(f->kind < ST_CMP_KIND__COUNT);
			CHECK(f->vol <= f->raw);
			for (uint32_t s = 0; s < f->nsamples; s++) {
				CHECK(memchr(f->s[s].target, 0, sizeof(f->s[s].target)));
				for (int k2 = 0; k2 < ST_CMP_NSIDES; k2++)
					CHECK(memchr(f->s[s].v[k2], 0, sizeof(f->s[s].v[k2])));
			}
		}
		for (int s = 0; s < ST_CMP_NSIDES; s++)
			CHECK(e->status[s].ncodes <= ST_CMP_STATUS_MAX);
	}
}

/* r's report as the writers make it (HTML, or JSON). */
static void write_report(FILE *f, const void *report, bool html)
{
	const struct st_cmp_report *r = report;
	const char *hostv[ST_CMP_HOSTS_MAX];
	struct st_cmp_run run;

	st_cmp_report_run(r, &run, hostv, r->generated_ns);
	if (html)
		st_cmp_report_html(f, &r->agg, &run);
	else
		st_cmp_report_json(f, &r->agg, &run);
}

static int load_report(void *r, const char *text, size_t len, char *err, size_t errlen)
{
	return st_cmp_report_load(r, text, len, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st_cmp_report r, r2, m;
	char err[512];

	err[0] = 0;
	if (st_cmp_report_load(&r, (const char *)data, size, err, sizeof(err))) {
		CHECK(err[0] && !strchr(err, '\n'));
		return 0;
	}
	check_bounds(&r.agg);
	fuzz_report_round_trip(write_report, load_report, &r, &r2);
	/* itself twice: every count doubles */
	st_cmp_report_init(&m);
	CHECK(!st_cmp_report_merge(&m, &r, err, sizeof(err)));
	CHECK(!st_cmp_report_merge(&m, &r2, err, sizeof(err)));
	check_bounds(&m.agg);
	CHECK(m.agg.compared == 2 * r.agg.compared);
	CHECK(m.agg.n == r.agg.n);
	CHECK(m.sources == 2 * r.sources);
	for (uint32_t i = 0; i < r.agg.n; i++) {
		const struct st_cmp_endpoint *e = r.agg.ep[i];
		const struct st_cmp_endpoint *x = st_cmp_agg_endpoint(&m.agg, e->name);

		CHECK(x->compared == 2 * e->compared && x->not_compared == 2 * e->not_compared);
		CHECK(x->nfields == e->nfields);
		for (int s = 0; s < ST_CMP_NSIDES; s++)
			CHECK(x->lat[s].n == 2 * e->lat[s].n);
	}
	st_cmp_report_free(&m);
	st_cmp_report_free(&r2);
	st_cmp_report_free(&r);
	return 0;
}
