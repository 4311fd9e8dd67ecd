/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the canary loader (agent/watch/canary.c): `report --canary` reads
 * watch reports written on other hosts, so they are untrusted input.
 *
 * Input: a file's bytes, loaded into both groups; and the same bytes split at their first NUL
 * as a Prometheus server's two answers (st_canary_load_prom). Checks: a rejected file adds nothing and
 * leaves one line of error; an accepted one keeps every bound (endpoints, names terminated,
 * latency counts no more than requests, errors no more than requests, the buckets), loads
 * the same twice (its counts double), and its judgement and reports are written without
 * fault (an escaped HTML page, JSON the strict parser reads).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "fuzz_check.h"
#include "json.h"

/* files: latency counts never pass the requests (a Prometheus server's extrapolated
 * increases may, by a rounding) */
static void check_bounds(const struct st_canary *c, bool files)
{
	CHECK(c->n <= ST_CANARY_ENDPOINTS_MAX + 1);
	CHECK(!c->have_bounds || (c->bounds.n >= 1 && c->bounds.n <= ST_WATCH_BUCKETS_MAX));
	for (uint32_t i = 0; i <= c->n; i++) {
		const struct st_canary_ep *e = i < c->n ? &c->ep[i] : &c->all;

		CHECK(memchr(e->name, 0, sizeof(e->name)));
		for (int g = 0; g < ST_CANARY_NGROUPS; g++) {
			uint64_t sum = 0;

			CHECK(e->err[g] <= e->req[g]);
			for (unsigned k = 0; k <= c->bounds.n; k++)
				sum += e->lat[g][k];
			CHECK(!files || sum <= e->req[g]);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_canary c;
	const char *files[] = { "f" };
	struct st_canary_run run = { .now_ns = 1700000000000000000ull, .files = { files, files },
				     .nfiles = { 1, 1 } };
	const struct st_canary_opts o = { .min_requests = 1, .min_diff = -1, .lat_min = -1 };
	char err[512], *text = NULL;
	size_t len = 0;
	FILE *f;

	if (size > 1 << 20)
		return 0;
	{
		/* a Prometheus server's answers: refused with a line, or within bounds */
		const char *nul = memchr(data, 0, size);
		size_t a = nul ? (size_t)(nul - (const char *)data) : size;

		CHECK(!st_canary_init(&c));
		err[0] = 0;
		if (st_canary_load_prom(&c, ST_BASELINE, (const char *)data, a,
					nul ? nul + 1 : "", nul ? size - a - 1 : 0, err, sizeof(err)))
			CHECK(err[0] && !strchr(err, '\n') && !c.all.req[ST_BASELINE] && c.n == 1);
		else
			check_bounds(&c, false);
		st_canary_free(&c);
	}
	CHECK(!st_canary_init(&c));
	err[0] = 0;
	if (st_canary_load(&c, ST_CANARY, (const char *)data, size, err, sizeof(err))) {
		CHECK(err[0] && !strchr(err, '\n'));
		CHECK(!c.files[ST_CANARY] && !c.all.req[ST_CANARY] && c.n == 1);
		st_canary_free(&c);
		return 0;
	}
	CHECK(!st_canary_load(&c, ST_BASELINE, (const char *)data, size, err, sizeof(err)));
	check_bounds(&c, true);
	CHECK(c.all.req[ST_CANARY] == c.all.req[ST_BASELINE]);
	CHECK(c.all.err[ST_CANARY] == c.all.err[ST_BASELINE]);
	st_canary_judge(&c, &o);
	/* the same files in both groups: nothing can be worse */
	CHECK(c.verdict != ST_CANARY_FAIL);
	f = open_memstream(&text, &len);
	CHECK(f);
	st_canary_html(f, &c, &run);
	CHECK(!fclose(f));
	CHECK(!strstr(text, "<script"));
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	CHECK(f);
	st_canary_json(f, &c, &run);
	CHECK(!fclose(f));
	{
		struct st_json_doc d;

		st_json_doc_init(&d, 0, 0);
		CHECK(!st_json_parse(&d, text, len));
		st_json_doc_free(&d);
	}
	free(text);
	st_canary_free(&c);
	return 0;
}
