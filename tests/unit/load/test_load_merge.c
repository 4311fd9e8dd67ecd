/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Load reports read back and merged (agent/load/load_merge.c): a run's JSON report reads
 * back into the same figures (histograms bucket for bucket); two generators' reports merged
 * are what one histogram of both sample sets says (never an average of percentiles); plans
 * that differ are refused, and so is every out-of-bounds file (one line saying where).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "load_merge.h"
#include "load_report.h"

#define MS 1000000ull
#define S0 (1000ull * 1000000000)

/* A run of n requests at rate 100/s: answered after lat_ms(i), the 7th of each 50 a 503, one
 * in 40 refused; endpoints /a/{id} and /b. */
static struct st_load *run(unsigned n, double (*lat_ms)(unsigned), const double *steps,
			   unsigned nsteps)
{
	struct st_load_config c = { .rate = 100, .duration_s = 1000, .pace = ST_LOAD_PACE_CONSTANT,
				    .command = "replay", .target = "127.0.0.1:8080" };
	struct st_http_head ha = { .method_str = "GET", .method_len = 3, .target = "/a/12",
				   .target_len = 5 },
			    hb = { .method_str = "GET", .method_len = 3, .target = "/b",
				   .target_len = 2 };
	struct st_load *l;
	uint32_t ta, tb;

	if (nsteps) {
		memcpy(c.steps, steps, nsteps * sizeof(*steps));
		c.nsteps = nsteps;
		c.step_s = 10;
		c.rate = 0;
		c.duration_s = 0;
	}
	l = st_load__new(&c);
	assert_non_null(l);
	st_load__start(l, S0, 1700000000ull * 1000000000);
	ta = st_load_ops.tag(l, &ha);
	tb = st_load_ops.tag(l, &hb);
	for (unsigned i = 0; i < n; i++) {
		uint64_t d = st_load_ops.due(l, 0, S0);
		struct st_shadow_done dn = { .tag = i % 3 ? ta : tb, .due = d, .sent = d + MS,
					     .end = d + (uint64_t)(lat_ms(i) * 1e6),
					     .status = i % 50 == 7 ? 503 : 200 };

		assert_int_not_equal(d, ST_SHADOW_NEVER);
		st_load_ops.taken(l, 0, d, d + (i % 100 == 3 ? 2 * MS : 0));
		if (i % 40 == 39) {
			dn.fail = ST_SHADOW_F_REFUSED;
			dn.sent = 0;
		}
		st_load_ops.done(l, &dn);
	}
	st_load__finish(l, S0 + 5000 * 1000 * MS, 1700000000ull * 1000000000 + 1);
	return l;
}

static double lat_a(unsigned i)
{
	return i % 10 == 9 ? 50 + i % 7 : 5 + (i % 13) * 0.01;
}

static double lat_b(unsigned i)
{
	return i % 5 ? 1 + i % 3 : 400 + i;
}

/* not inlined: GCC 12 at -O2 then takes the returned buffer for the local pointer that
 * open_memstream() filled in (-Wdangling-pointer, a false positive) */
static __attribute__((noinline)) char *json_of(const struct st_load_agg *a, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);

	assert_non_null(f);
	st_load_report_json(f, a, 1700000000ull * 1000000000 + 5);
	fclose(f);
	return out;
}

static void assert_hdr_equal(const struct st_hdr *x, const struct st_hdr *y)
{
	uint64_t nx = x->counts ? x->total : 0, ny = y->counts ? y->total : 0;

	assert_int_equal(nx, ny);
	if (!nx)
		return;
	assert_true(st_hdr_same_layout(x, y));
	assert_memory_equal(x->counts, y->counts, x->counts_len * sizeof(*x->counts));
	assert_int_equal(x->min, y->min);
	assert_int_equal(x->max, y->max);
	assert_int_equal(x->over, y->over);
}

/* Written, read back: the same figures. */
static void test_round_trip(void **state)
{
	static const double steps[] = { 50, 100, 150 };
	struct st_load *l = run(2000, lat_a, NULL, 0), *ls = run(3000, lat_b, steps, 3);
	struct st_load_agg b;
	char err[256], *js;
	size_t len;

	for (int k = 0; k < 2; k++) {
		const struct st_load_agg *a = st_load__agg(k ? ls : l, 0, 0);

		js = json_of(a, &len);
		assert_true(st_load_merge_is_report(js, len));
		if (st_load_merge_parse(&b, js, len, err, sizeof(err)))
			fail_msg("read back: %s", err);
		assert_int_equal(b.due, a->due);
		assert_int_equal(b.sent, a->sent);
		assert_int_equal(b.answered, a->answered);
		assert_memory_equal(b.errors, a->errors, sizeof(a->errors));
		assert_int_equal(b.late_sends, a->late_sends);
		assert_hdr_equal(&b.lat, &a->lat);
		assert_hdr_equal(&b.lat_raw, &a->lat_raw);
		assert_hdr_equal(&b.lag, &a->lag);
		assert_int_equal(b.nsteps, a->nsteps);
		for (unsigned i = 0; i < a->nsteps; i++) {
			assert_int_equal(b.steps[i].answered_in, a->steps[i].answered_in);
			assert_hdr_equal(&b.steps[i].lat, &a->steps[i].lat);
		}
		assert_int_equal(b.nep, a->nep);
		for (unsigned i = 0; i < a->nep; i++) {
			assert_string_equal(b.ep[i].name, a->ep[i].name);
			assert_hdr_equal(&b.ep[i].lat, &a->ep[i].lat);
		}
		assert_int_equal(b.ntl, a->ntl);
		for (unsigned i = 0; i < a->ntl; i++)
			assert_hdr_equal(&b.tl[i].lat, &a->tl[i].lat);
		assert_true(fabs(b.elapsed_s - a->elapsed_s) < 1e-3);
		assert_true(fabs(st_load_agg_achieved(&b) - st_load_agg_achieved(a)) < 0.1);
		assert_string_equal(b.target, "127.0.0.1:8080");
		/* and written again, the same bytes */
		{
			size_t len2;
			char *js2 = json_of(&b, &len2);

			assert_int_equal(len2, len);
			assert_memory_equal(js2, js, len);
			free(js2);
		}
		st_load_agg_free(&b);
		free(js);
	}
	st_load__free(l);
	st_load__free(ls);
}

/* Two generators side by side: counts and histograms add; the merged p99 is the p99 of both
 * sample sets, not the mean of the two p99s. */
static void test_merge(void **state)
{
	struct st_load *x = run(2000, lat_a, NULL, 0), *y = run(1000, lat_b, NULL, 0);
	const struct st_load_agg *a = st_load__agg(x, 0, 0), *b = st_load__agg(y, 0, 0);
	struct st_load_agg m, ra, rb;
	struct st_hdr both;
	char err[256], *ja, *jb;
	size_t la, lb;

	ja = json_of(a, &la);
	jb = json_of(b, &lb);
	assert_int_equal(st_load_merge_parse(&ra, ja, la, err, sizeof(err)), 0);
	assert_int_equal(st_load_merge_parse(&rb, jb, lb, err, sizeof(err)), 0);
	assert_int_equal(st_load_agg_init(&m, 0), 0);
	m.sources = 0;
	assert_int_equal(st_load_agg_merge(&m, &ra, err, sizeof(err)), 0);
	assert_int_equal(st_load_agg_merge(&m, &rb, err, sizeof(err)), 0);
	assert_int_equal(m.sources, 2);
	assert_int_equal(m.due, a->due + b->due);
	assert_int_equal(m.answered, a->answered + b->answered);
	assert_int_equal(m.errors[ST_LOAD_E_HTTP_5XX], a->errors[ST_LOAD_E_HTTP_5XX] +
						       b->errors[ST_LOAD_E_HTTP_5XX]);
	assert_true(fabs(m.target_rps - 200) < 1e-9);
	/* what one histogram of both sets says */
	assert_int_equal(st_hdr_init(&both, 1, ST_LOAD_HIGHEST_US, ST_LOAD_SIG), 0);
	assert_int_equal(st_hdr_add(&both, &a->lat), 0);
	assert_int_equal(st_hdr_add(&both, &b->lat), 0);
	assert_hdr_equal(&m.lat, &both);
	assert_int_equal(st_hdr_value_at(&m.lat, 99), st_hdr_value_at(&both, 99));
	assert_true(fabs(st_load_ms(&m.lat, 99) -
			 (st_load_ms(&a->lat, 99) + st_load_ms(&b->lat, 99)) / 2) > 1);
	/* endpoints by name */
	assert_int_equal(m.nep, 2);
	assert_int_equal(m.ep[0].sent + m.ep[1].sent, a->sent + b->sent);
	/* the timeline by time from each start */
	assert_int_equal(m.tl[0].due, a->tl[0].due + b->tl[0].due);
	/* a stepped report with a plain one: refused */
	{
		static const double steps[] = { 50, 100 };
		struct st_load *z = run(500, lat_a, steps, 2);
		size_t lz;
		char *jz = json_of(st_load__agg(z, 0, 0), &lz);
		struct st_load_agg rz;

		assert_int_equal(st_load_merge_parse(&rz, jz, lz, err, sizeof(err)), 0);
		assert_int_equal(st_load_agg_merge(&m, &rz, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "another step plan"));
		st_load_agg_free(&rz);
		free(jz);
		st_load__free(z);
	}
	st_hdr_free(&both);
	st_load_agg_free(&m);
	st_load_agg_free(&ra);
	st_load_agg_free(&rb);
	free(ja);
	free(jb);
	st_load__free(x);
	st_load__free(y);
}

/* Damaged or hostile files: one line each, nothing loaded. */
static void test_refused(void **state)
{
	struct st_load *l = run(300, lat_a, NULL, 0);
	size_t len;
	char *js = json_of(st_load__agg(l, 0, 0), &len), err[256];
	static const struct {
		const char *from, *to, *says;
	} bad[] = {
		{ "\"format_version\": 1", "\"format_version\": 2", "format version 2" },
		{ "shadowtap-load-report", "shadowtap-compare-report", "not a shadowtap load" },
		{ "\"answered\": 293", "\"answered\": 294", "\"answered\" says 294" },
		{ "\"hdr\": [[", "\"hdr\": [[99999999, 1], [", "bucket index" },
		{ "\"significant_digits\": 3", "\"significant_digits\": 9", "significant_digits" },
		{ "\"connect_refused\"", "\"refused_politely\"", "connect_refused" },
		{ "\"bucket_s\": 1", "\"bucket_s\": 0", "bucket_s" },
		{ "\"min\": ", "\"min\": 9", "min or max" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct st_load_agg a;
		char *p = strstr(js, bad[i].from), *doc;
		size_t n;

		if (!p)
			fail_msg("case %zu: '%s' is not in the report", i, bad[i].from);
		n = len - strlen(bad[i].from) + strlen(bad[i].to);
		doc = malloc(n + 1);
		memcpy(doc, js, (size_t)(p - js));
		strcpy(doc + (p - js), bad[i].to);
		strcat(doc, p + strlen(bad[i].from));
		err[0] = 0;
		if (!st_load_merge_parse(&a, doc, n, err, sizeof(err)))
			fail_msg("case %zu (%s) was loaded", i, bad[i].to);
		if (!strstr(err, bad[i].says) || strchr(err, '\n'))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].says);
		free(doc);
	}
	assert_int_equal(st_load_merge_parse(&(struct st_load_agg){ 0 }, "{", 1, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not JSON"));
	free(js);
	st_load__free(l);
}

/*
 * Sums a report cannot hold are refused, never wrapped: a report says at most 2^63 - 1 of
 * anything (and 1e9 sources), so that a merge can always be read back and merged again. Three
 * parts of 2^62 requests due used to add up to 2^62 * 3, past what the next merge reads.
 */
static void test_overflow(void **state)
{
	struct st_load *l = run(300, lat_a, NULL, 0);
	const struct st_load_agg *a = st_load__agg(l, 0, 0);
	static struct st_load_agg part, m;
	char err[256];
	size_t len;
	char *js = json_of(a, &len);

	assert_int_equal(st_load_merge_parse(&part, js, len, err, sizeof(err)), 0);
	part.due = part.late_sends = UINT64_MAX / 4; /* 2^62 - 1: one report may say that */
	assert_int_equal(st_load_agg_init(&m, 0), 0);
	m.sources = 0;
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), 0);
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), 0); /* 2^63 - 2 */
	err[0] = 0;
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "would pass what a report holds"));
	assert_null(strchr(err, '\n'));
	st_load_agg_free(&m);

	/* sources too: 1e9 merged reports at most */
	part.due = part.late_sends = 1;
	part.sources = 600000000;
	assert_int_equal(st_load_agg_init(&m, 0), 0);
	m.sources = 0;
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), 0);
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), -1);
	st_load_agg_free(&m);

	/* what is read back as seconds (at most 1e9): two runs 475 years apart span more (found
	 * by fuzz_load_report: the merge was written, then refused when read) ... */
	part.sources = 1;
	assert_int_equal(st_load_agg_init(&m, 0), 0);
	m.sources = 0;
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), 0);
	{
		uint64_t s0 = part.start_real_ns, e0 = part.end_real_ns;

		part.start_real_ns = part.end_real_ns = 16725225600ull * 1000000000ull; /* 2500 */
		assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), -1);
		part.start_real_ns = s0;
		part.end_real_ns = e0;
	}
	st_load_agg_free(&m);
	/* ... and two target rates whose sum passes it */
	part.target_rps = 6e8;
	assert_int_equal(st_load_agg_init(&m, 0), 0);
	m.sources = 0;
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), 0);
	assert_int_equal(st_load_agg_merge(&m, &part, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "seconds and rates"));
	st_load_agg_free(&m);
	st_load_agg_free(&part);
	free(js);
	st_load__free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
