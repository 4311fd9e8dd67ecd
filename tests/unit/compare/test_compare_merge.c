/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap report --merge` without the command: partial aggregates built from generated
 * pairs (real diffs of JSON bodies, a reference or not, latencies, status codes, pairs not
 * compared) are written as JSON reports, read back and merged, and compared with the
 * aggregate of all the pairs fed to one: counts, histograms, verdicts. Merging is
 * associative and commutative (the JSON of merge(merge(A, B), C), merge(A, merge(B, C)),
 * merge(A, B, C) and merge(C, B, A) is the same text), a report read back writes the same text again, the endpoint cap still
 * holds, and bad input (not JSON, not a report, another version, values out of bounds,
 * disagreeing configurations, a missing file) is refused with one message. The
 * JSON holds its sections in the order of the HTML page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compare.h"
#include "compare_agg.h"
#include "compare_diff.h"
#include "compare_merge.h"
#include "compare_report.h"
#include "text_order.h"

#define PAIRS 600
#define T0 1796000000000000000ull /* 2026-11-30, ns */

static const struct st_cmp_pattern *pats;
static struct st_cmp_pattern pat[1];

/* ---- generated pairs -------------------------------------------------------------------- */

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void load_msg(struct st_cmp_msg *m, const char *body)
{
	memset(m, 0, sizeof(*m));
	m->status = 200;
	m->has_body = true;
	m->hdrs = "";
	m->body = (const uint8_t *)body;
	m->body_len = m->body_total = strlen(body);
	m->rest_hash = st_cmp_hash_init();
}

/* out = the differences of b against a, by the real comparison; corr: b's --correlate pairs
 * (compare_diff.h, st_cmp_msg.corr) or NULL. */
static void diff_bodies(const char *a, const char *b, const char *corr, uint32_t corr_len,
			struct st_cmp_diffs *out)
{
	static struct st_cmp_scratch sc;
	struct st_cmp_rules rules = { 0 };
	struct st_cmp_msg ma, mb;
	struct st_cmp_view va, vb;

	load_msg(&ma, a);
	load_msg(&mb, b);
	mb.corr = corr;
	mb.corr_len = corr_len;
	st_cmp_view_init(&va);
	st_cmp_view_init(&vb);
	st_cmp_view_load(&va, &rules, &ma);
	st_cmp_view_load(&vb, &rules, &mb);
	st_cmp_diff(&rules, &sc, &va, &vb, out);
	st_cmp_view_free(&va);
	st_cmp_view_free(&vb);
}

/* One --correlate pair appended to a list (st_cmp_msg.corr's layout: u16 lengths, values). */
static void corr_pair(char *buf, uint32_t *len, const char *pv, const char *tv)
{
	size_t pn = strlen(pv), tn = strlen(tv);
	unsigned char *p = (unsigned char *)buf + *len;

	p[0] = (unsigned char)pn;
	p[1] = 0;
	p[2] = (unsigned char)tn;
	p[3] = 0;
	memcpy(p + 4, pv, pn);
	memcpy(p + 4 + pn, tv, tn);
	*len += (uint32_t)(4 + pn + tn);
}

/*
 * Pair i into a: five endpoints; GET /e1/{id} regresses on $.price (the reference does not
 * differ there), $.ts differs everywhere (noise: with a reference by measurement, without
 * by its shape), GET /e3/{id} has $.tag differing in the reference only, GET /e0/{id} is
 * slower on the candidate, GET /e4/{id} answers 500 sometimes (503 from pair 400 on); one pair in ten is not
 * compared. GET /e2/{id} answers a session ($.sid) the candidate's --correlate map explains,
 * and from pair 300 on an order id ($.order) too, in two pairs of three.
 */
static void feed(struct st_cmp_agg *a, unsigned i, bool ref)
{
	static struct st_cmp_diffs raw, noise;
	uint32_t s = i * 2654435761u + 7;
	char target[64], name[ST_CMP_ENDPOINT_MAX], pb[256], cb[256], rb[256], corr[128], pv[32], tv[32];
	uint32_t corr_len = 0;
	unsigned ep = rnd(&s) % 5;
	bool regress = ep == 1 && rnd(&s) % 2, tagged = ep == 3 && rnd(&s) % 3;
	struct st_cmp_result r = { 0 };

	snprintf(target, sizeof(target), "/e%u/%u?q=%u", ep, 1000 + i, i);
	st_cmp_endpoint(pats, pats ? 1 : 0, "GET", 3, target, strlen(target), name, sizeof(name));
	if (rnd(&s) % 10 == 0) {
		st_cmp_agg_not_compared(a, name);
		return;
	}
	snprintf(pb, sizeof(pb), "{\"id\": %u, \"ts\": \"2026-11-26T10:00:%02u.%03uZ\", "
		 "\"price\": 10, \"tag\": \"a\"}", i, i % 60, rnd(&s) % 1000);
	/* from pair 200 on GET /e3 has a new field on the candidate, and from 400 on the
	 * candidate differs at $.tag too: fields that come in different orders to the parts */
	snprintf(cb, sizeof(cb), "{\"id\": %u, \"ts\": \"2026-11-26T10:01:%02u.%03uZ\", "
		 "\"price\": %d, \"tag\": \"%s\"%s}", i, i % 60, rnd(&s) % 1000, regress ? 11 : 10,
		 tagged && i >= 400 ? "c" : "a", ep == 3 && i >= 200 && i % 5 == 0 ? ", \"extra\": 1" : "");
	snprintf(rb, sizeof(rb), "{\"id\": %u, \"ts\": \"2026-11-26T10:02:%02u.%03uZ\", "
		 "\"price\": 10, \"tag\": \"%s\"}", i, i % 60, rnd(&s) % 1000, tagged ? "b" : "a");
	if (ep == 2) {
		bool order = i >= 300 && i % 3;

		snprintf(pb + strlen(pb) - 1, sizeof(pb) - strlen(pb) + 1,
			 ", \"sid\": \"sess-prod-%u\"%s}", i, order ? ", \"order\": \"ord-prod-0001\"" : "");
		snprintf(cb + strlen(cb) - 1, sizeof(cb) - strlen(cb) + 1,
			 ", \"sid\": \"sess-cand-%u\"%s}", i, order ? ", \"order\": \"ord-cand-0001\"" : "");
		snprintf(pv, sizeof(pv), "sess-prod-%u", i);
		snprintf(tv, sizeof(tv), "sess-cand-%u", i);
		corr_pair(corr, &corr_len, pv, tv);
		if (order)
			corr_pair(corr, &corr_len, "ord-prod-0001", "ord-cand-0001");
	}
	diff_bodies(pb, cb, corr_len ? corr : NULL, corr_len, &raw);
	if (ref)
		diff_bodies(pb, rb, NULL, 0, &noise);
	r.method = "GET";
	r.mlen = 3;
	r.target = target;
	r.tlen = strlen(target);
	r.have_ref = ref;
	r.raw = &raw;
	r.noise = ref ? &noise : NULL;
	r.status[ST_CMP_PROD] = 200;
	r.status[ST_CMP_CAND] = ep != 4 ? 200 : i < 400 ? (rnd(&s) % 4 ? 200 : 500) :
						     (rnd(&s) % 2 ? 200 : 503);
	r.status[ST_CMP_REF] = ref ? 200 : 0;
	r.lat_ns[ST_CMP_PROD] = 1000000 + rnd(&s) % 2000000;
	r.lat_ns[ST_CMP_CAND] = ep == 0 ? 8000000 + rnd(&s) % 4000000 : 2000000 + rnd(&s) % 2000000;
	r.lat_ns[ST_CMP_REF] = ref ? (int64_t)(2000000 + rnd(&s) % 2000000) : -1;
	st_cmp_agg_add(a, name, &r);
}

static void agg_of(struct st_cmp_agg *a, bool ref, unsigned max_ep, unsigned from, unsigned to)
{
	struct st_cmp_agg_config cfg = { .reference = ref, .max_endpoints = max_ep,
					 .patterns = pats, .npatterns = pats ? 1 : 0 };

	assert_int_equal(st_cmp_agg_init(a, &cfg), 0);
	for (unsigned i = from; i < to; i++)
		feed(a, i, ref);
}

/* The JSON report of a (one run, on host, over [t0, t1] s after T0). */
static char *json_of(const struct st_cmp_agg *a, const char *host, unsigned t0, unsigned t1)
{
	struct st_compare_stats st = { 0 };
	struct st_statline l;
	const char *hosts[1] = { host };
	struct st_cmp_run run = {
		.command = "shadow", .candidate = "10.0.9.5:8080",
		.reference = a->cfg.reference ? "10.0.9.6:8080" : NULL,
		.start_real_ns = T0 + t0 * 1000000000ull, .now_real_ns = T0 + t1 * 1000000000ull,
		.final = true, .counters = &l, .max_body = 1 << 20, .timeout_s = 30,
		.hosts = hosts, .nhosts = 1,
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	st.compared = a->compared;
	st.differing = a->differing;
	st.noise_only = a->noise_only;
	st.not_compared = 7;
	st.not_compared_timeout = 7;
	st.compare_mem_peak = 1000 + t0;
	st.compare_endpoints = a->n;
	st_statline_init(&l);
	st_statline_add_table(&l, st_compare_stat_desc, st_compare_stat_n, &st);
	assert_non_null(f);
	st_cmp_report_json(f, a, &run);
	fclose(f);
	return buf;
}

static char *json_of_report(const struct st_cmp_report *r)
{
	const char *hostv[ST_CMP_HOSTS_MAX];
	struct st_cmp_run run;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	st_cmp_report_run(r, &run, hostv, T0 + 3600 * 1000000000ull);
	st_cmp_report_json(f, &r->agg, &run);
	fclose(f);
	return buf;
}

static struct st_cmp_report *load_text(const char *text)
{
	struct st_cmp_report *r = malloc(sizeof(*r));
	char err[512] = "";

	assert_non_null(r);
	if (st_cmp_report_load(r, text, strlen(text), err, sizeof(err)))
		fail_msg("load: %s", err);
	return r;
}

/* A report of pairs [from, to) as another host wrote it. */
static struct st_cmp_report *part(bool ref, unsigned max_ep, unsigned from, unsigned to,
				  const char *host)
{
	struct st_cmp_agg a;
	struct st_cmp_report *r;
	char *j;

	agg_of(&a, ref, max_ep, from, to);
	j = json_of(&a, host, from, to);
	r = load_text(j);
	free(j);
	st_cmp_agg_free(&a);
	return r;
}

static void drop(struct st_cmp_report *r)
{
	st_cmp_report_free(r);
	free(r);
}

/* An empty report with each of parts merged into it. */
static struct st_cmp_report *merged(struct st_cmp_report *const *parts, unsigned n)
{
	struct st_cmp_report *m = malloc(sizeof(*m));
	char err[512] = "";

	assert_non_null(m);
	st_cmp_report_init(m);
	for (unsigned i = 0; i < n; i++)
		if (st_cmp_report_merge(m, parts[i], err, sizeof(err)))
			fail_msg("merge: %s", err);
	return m;
}

/* ---- merged == all at once ------------------------------------------------------------------ */

static const struct st_cmp_field *find_field(const struct st_cmp_endpoint *e, const char *path)
{
	for (uint32_t i = 0; i < e->nfields; i++)
		if (!strcmp(e->fields[i].path, path))
			return &e->fields[i];
	return NULL;
}

/* The pairs of e's correlated field path (-1: no such row). */
static int64_t corr_n(const struct st_cmp_endpoint *e, const char *path)
{
	for (uint32_t i = 0; i < e->ncorr; i++)
		if (!strcmp(e->corr[i].path, path))
			return (int64_t)e->corr[i].n;
	return -1;
}

static uint64_t status_n(const struct st_cmp_status *s, uint16_t code)
{
	for (uint32_t i = 0; i < s->ncodes; i++)
		if (s->code[i] == code)
			return s->n[i];
	return 0;
}

static void assert_same_agg(const struct st_cmp_agg *all, const struct st_cmp_agg *m)
{
	uint32_t nreg = 0;

	assert_int_equal(m->compared, all->compared);
	assert_int_equal(m->differing, all->differing);
	assert_int_equal(m->noise_only, all->noise_only);
	assert_int_equal(m->correlated, all->correlated);
	assert_int_equal(m->n, all->n);
	for (uint32_t i = 0; i <= all->n; i++) {
		const struct st_cmp_endpoint *e = i < all->n ? all->ep[i] : &all->other;
		const struct st_cmp_endpoint *x = i < all->n ? st_cmp_agg_endpoint((struct st_cmp_agg *)m,
										  e->name) : &m->other;
		struct st_cmp_lat_test t1, t2;

		assert_string_equal(x->name, e->name);
		assert_int_equal(x->compared, e->compared);
		assert_int_equal(x->differing, e->differing);
		assert_int_equal(x->noise_only, e->noise_only);
		assert_int_equal(x->not_compared, e->not_compared);
		assert_int_equal(x->more_paths, e->more_paths);
		assert_int_equal(x->correlated, e->correlated);
		assert_int_equal(x->ncorr, e->ncorr);
		for (uint32_t k = 0; k < e->ncorr; k++)
			assert_int_equal(corr_n(x, e->corr[k].path), e->corr[k].n);
		assert_int_equal(x->nfields, e->nfields);
		for (uint32_t k = 0; k < e->nfields; k++) {
			const struct st_cmp_field *f = &e->fields[k], *g = find_field(x, f->path);
			struct st_cmp_fverdict v1, v2;

			assert_non_null(g);
			assert_int_equal(g->raw, f->raw);
			assert_int_equal(g->noise, f->noise);
			assert_int_equal(g->vol, f->vol);
			assert_int_equal(g->kind, f->kind);
			assert_string_equal(g->note, f->note);
			/* as many samples as one run keeps, in the merge's order */
			assert_int_equal(g->nsamples, f->raw < ST_CMP_SAMPLES ? f->raw : ST_CMP_SAMPLES);
			for (uint32_t s = 1; s < g->nsamples; s++)
				assert_true(st_cmp_sample_key(&g->s[s - 1]) <= st_cmp_sample_key(&g->s[s]));
			st_cmp_field_verdict(all, e, f, &v1);
			st_cmp_field_verdict(m, x, g, &v2);
			assert_int_equal(v1.regression, v2.regression);
			assert_int_equal(v1.likely_noise, v2.likely_noise);
			assert_true(v1.rel == v2.rel && v1.abs == v2.abs);
			nreg += v1.regression;
		}
		for (int s = 0; s < ST_CMP_NSIDES; s++) {
			assert_int_equal(x->lat[s].n, e->lat[s].n);
			assert_memory_equal(x->lat[s].b, e->lat[s].b, sizeof(e->lat[s].b));
			assert_int_equal(x->status[s].ncodes, e->status[s].ncodes);
			for (uint32_t c = 0; c < e->status[s].ncodes; c++)
				assert_int_equal(status_n(&x->status[s], e->status[s].code[c]),
						 e->status[s].n[c]);
		}
		st_cmp_endpoint_latency(all, e, &t1);
		st_cmp_endpoint_latency(m, x, &t2);
		assert_int_equal(t2.verdict, t1.verdict);
		assert_true(t1.p == t2.p && t1.shift == t2.shift && t1.a == t2.a);
		assert_int_equal(st_cmp_endpoint_regressions(m, x), st_cmp_endpoint_regressions(all, e));
	}
	(void)nreg;
}

static void merge_equals_all(bool ref)
{
	struct st_cmp_agg all;
	struct st_cmp_report *p[3], *m;
	struct st_cmp_lat_test t;

	agg_of(&all, ref, 0, 0, PAIRS);
	p[0] = part(ref, 0, 0, 250, "host-b");
	p[1] = part(ref, 0, 250, 420, "host-a");
	p[2] = part(ref, 0, 420, PAIRS, "host-c");
	m = merged(p, 3);
	assert_same_agg(&all, &m->agg);
	/* what the generator means to show is there: a regression on e1, e0 slower, noise */
	{
		struct st_cmp_endpoint *e1 = st_cmp_agg_endpoint(&m->agg, "GET /e1/{id}?q");
		struct st_cmp_endpoint *e0 = st_cmp_agg_endpoint(&m->agg, "GET /e0/{id}?q");
		const struct st_cmp_field *price = find_field(e1, "$.price"), *ts = find_field(e1, "$.ts");
		struct st_cmp_fverdict v;

		assert_non_null(price);
		assert_non_null(ts);
		st_cmp_field_verdict(&m->agg, e1, price, &v);
		assert_true(v.regression);
		st_cmp_field_verdict(&m->agg, e1, ts, &v);
		assert_false(v.regression);
		st_cmp_endpoint_latency(&m->agg, e0, &t);
		assert_int_equal(t.verdict, ST_CMP_LAT_SLOWER);
		if (ref) {
			const struct st_cmp_field *tag =
				find_field(st_cmp_agg_endpoint(&m->agg, "GET /e3/{id}?q"), "$.tag");

			assert_non_null(tag); /* where the reference differs more: noise */
			assert_true(tag->noise > tag->raw);
		}
	}
	/* the run: spans, sources, hosts, counters */
	assert_int_equal(m->sources, 3);
	assert_int_equal(m->nhosts, 3);
	assert_string_equal(m->hosts[0], "host-a");
	assert_string_equal(m->hosts[2], "host-c");
	assert_int_equal(m->start_ns, T0);
	assert_int_equal(m->end_ns, T0 + PAIRS * 1000000000ull);
	assert_int_equal(st_statline_value(&m->counters, "compared"), all.compared);
	assert_int_equal(st_statline_value(&m->counters, "not_compared_timeout"), 21);
	assert_int_equal(st_statline_value(&m->counters, "compare_mem_peak"), 1000 + 420); /* max */
	assert_int_equal(st_statline_value(&m->counters, "compare_endpoints"), m->agg.n);
	assert_string_equal(m->candidate, "10.0.9.5:8080");
	assert_true(m->final);
	for (int i = 0; i < 3; i++)
		drop(p[i]);
	drop(m);
	st_cmp_agg_free(&all);
}

static void test_merge_equals_all(void **state)
{
	merge_equals_all(true);
}

static void test_merge_equals_all_no_reference(void **state)
{
	merge_equals_all(false);
}

/* ---- associativity, round trips ------------------------------------------------------------ */

static void associative(bool ref, unsigned max_ep)
{
	struct st_cmp_report *p[3], *ab, *bc, *abc, *ab_c, *a_bc, *x[2];
	char *j_abc, *j_ab_c, *j_a_bc, *t;

	p[0] = part(ref, max_ep, 0, 200, "h1");
	p[1] = part(ref, max_ep, 200, 400, "h2");
	p[2] = part(ref, max_ep, 400, PAIRS, "h3");
	abc = merged(p, 3);
	ab = merged(p, 2);
	bc = merged(p + 1, 2);
	/* through their JSON, as report --merge would read merged reports */
	t = json_of_report(ab);
	drop(ab);
	ab = load_text(t);
	free(t);
	t = json_of_report(bc);
	drop(bc);
	bc = load_text(t);
	free(t);
	x[0] = ab;
	x[1] = p[2];
	ab_c = merged(x, 2);
	x[0] = p[0];
	x[1] = bc;
	a_bc = merged(x, 2);
	j_abc = json_of_report(abc);
	j_ab_c = json_of_report(ab_c);
	j_a_bc = json_of_report(a_bc);
	assert_string_equal(j_ab_c, j_abc);
	/* past the cap, a part's pairs in "other" cannot be told apart again: B's other may hold
	 * endpoints A named, so only the order the command merges in gives the same result */
	if (!max_ep) {
		struct st_cmp_report *rev[3] = { p[2], p[1], p[0] }, *cba = merged(rev, 3);
		char *j_cba = json_of_report(cba);

		assert_string_equal(j_a_bc, j_abc);
		/* and the order of the parts does not matter either */
		assert_string_equal(j_cba, j_abc);
		free(j_cba);
		drop(cba);
	}
	assert_non_null(strstr(j_abc, "\"sources\": 3,"));
	assert_non_null(strstr(j_abc, "\"hosts\": [\"h1\", \"h2\", \"h3\"]"));
	if (max_ep) {
		/* the cap holds: max_ep named endpoints, the rest in other */
		assert_int_equal(abc->agg.n, max_ep);
		assert_true(abc->agg.other.compared > 0);
		assert_non_null(strstr(j_abc, "{\"endpoint\": \"other\""));
	}
	free(j_abc);
	free(j_ab_c);
	free(j_a_bc);
	for (int i = 0; i < 3; i++)
		drop(p[i]);
	drop(ab);
	drop(bc);
	drop(abc);
	drop(ab_c);
	drop(a_bc);
}

static void test_associative(void **state)
{
	associative(true, 0);
	associative(false, 0);
	pats = pat;
	associative(true, 3); /* past the endpoint cap, and with a pattern */
	pats = NULL;
}

/* A report read back writes the same text; so does a merged one. */
static void test_round_trip(void **state)
{
	for (int ref = 0; ref < 2; ref++) {
		struct st_cmp_agg a;
		struct st_cmp_report *r, *m;
		const char *hostv[ST_CMP_HOSTS_MAX];
		struct st_cmp_run run;
		char *j1, *j2, *j3, *h1, *h2, *hb = NULL;
		size_t hl = 0;
		FILE *f;

		pats = pat;
		agg_of(&a, ref, 0, 0, PAIRS);
		pats = NULL;
		{
			/* bytes that are not UTF-8 (held as '?'), so that they read back the same */
			static struct st_cmp_diffs d;
			static const char t[] = "/bin\xff\x80" "ary/\xc3\xa9";
			char name[ST_CMP_ENDPOINT_MAX];
			struct st_cmp_result pr = { .method = "GET", .mlen = 3, .target = t,
						    .tlen = sizeof(t) - 1, .have_ref = ref, .raw = &d,
						    .lat_ns = { -1, -1, -1 } };

			memset(&d, 0, sizeof(d));
			d.n = 1;
			snprintf(d.d[0].path, sizeof(d.d[0].path), "$.v\xfe");
			snprintf(d.d[0].a, sizeof(d.d[0].a), "\"x\xe9\"");
			snprintf(d.d[0].b, sizeof(d.d[0].b), "\"\xc3\xa9\"");
			d.d[0].a_set = d.d[0].b_set = true;
			st_cmp_endpoint(NULL, 0, "GET", 3, t, sizeof(t) - 1, name, sizeof(name));
			st_cmp_agg_add(&a, name, &pr);
		}
		j1 = json_of(&a, "host-1", 10, 70);
		assert_non_null(strstr(j1, "\"endpoint\": \"GET /bin??ary/\xc3\xa9\""));
		assert_non_null(strstr(j1, "{\"path\": \"$.v?\""));
		assert_non_null(strstr(j1, "\"production\": \"\\\"x?\\\"\""));
		assert_null(strstr(j1, "\\u00"));
		assert_non_null(strstr(j1, "\"format\": \"shadowtap-compare-report\""));
		assert_non_null(strstr(j1, "\"buckets\": [["));
		assert_non_null(strstr(j1, "\"endpoint_patterns\": [\"GET /e2/*\"]"));
		r = load_text(j1);
		/* the run's own "generated" time: the same text */
		f = open_memstream(&hb, &hl);
		st_cmp_report_run(r, &run, hostv, r->generated_ns);
		st_cmp_report_json(f, &r->agg, &run);
		fclose(f);
		assert_string_equal(hb, j1);
		/* merged alone, then merged again: the same text */
		m = merged(&r, 1);
		j2 = json_of_report(m);
		drop(m);
		m = load_text(j2);
		j3 = json_of_report(m);
		assert_string_equal(j3, j2);
		/* the HTML of the read-back report is the run's (but for its header) */
		{
			char *ha = NULL;
			size_t hal = 0;
			struct st_cmp_run r0;

			f = open_memstream(&ha, &hal);
			st_cmp_report_run(r, &r0, hostv, r->generated_ns);
			st_cmp_report_html(f, &r->agg, &r0);
			fclose(f);
			h1 = strstr(ha, "<section id=\"verdict\"");
			f = open_memstream(&h2, &hal);
			memset(&r0, 0, sizeof(r0));
			r0.command = "shadow";
			r0.candidate = "10.0.9.5:8080";
			r0.reference = ref ? "10.0.9.6:8080" : NULL;
			r0.counters = &r->counters;
			r0.max_body = 1 << 20;
			r0.timeout_s = 30;
			st_cmp_report_html(f, &a, &r0);
			fclose(f);
			assert_non_null(h1);
			assert_string_equal(h1, strstr(h2, "<section id=\"verdict\""));
			free(ha);
			free(h2);
		}
		free(hb);
		free(j1);
		free(j2);
		free(j3);
		drop(r);
		drop(m);
		st_cmp_agg_free(&a);
	}
}

/* ---- refusals ---------------------------------------------------------------------------- */

/* text with the first occurrence of from replaced by to. */
static char *edit(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(p - text));
	strcpy(out + (p - text), to);
	strcat(out, p + strlen(from));
	return out;
}

static void refused(const char *text, const char *want)
{
	struct st_cmp_report r;
	char err[512] = "";

	if (!st_cmp_report_load(&r, text, strlen(text), err, sizeof(err))) {
		st_cmp_report_free(&r);
		fail_msg("accepted, want '%s'", want);
	}
	if (!strstr(err, want))
		fail_msg("error '%s', want '%s'", err, want);
	assert_null(strchr(err, '\n'));
}

static void test_refusals(void **state)
{
	struct st_cmp_agg a;
	struct st_cmp_report *x, *y, r;
	char *j, *e, err[512];

	agg_of(&a, true, 0, 0, 100);
	j = json_of(&a, "h", 0, 1);
	refused("", "not JSON");
	refused("{\"format\": ", "not JSON");
	refused("[1, 2]", "not a shadowtap compare report");
	refused("{}", "no \"format\" key");
	/* a report of before (no format key): format 1 */
	e = edit(j, "\"format\": \"shadowtap-compare-report\",\n  \"format_version\": 2,", "");
	refused(e, "format 1");
	free(e);
	e = edit(j, "\"format_version\": 2", "\"format_version\": 3");
	refused(e, "format version 3; this shadowtap reads version 2");
	free(e);
	e = edit(j, "\"format\": \"shadowtap-compare-report\"", "\"format\": \"other\"");
	refused(e, "not a shadowtap compare report");
	free(e);
	e = edit(j, "\"buckets\": [[", "\"buckets\": [[528, 1], [");
	refused(e, "bucket index\" is out of range");
	free(e);
	e = edit(j, "\"buckets\": [[", "\"buckets\": [[-1, 1], [");
	refused(e, "not a whole number");
	free(e);
	e = edit(j, "\"compared\": ", "\"compared\": 1.5, \"x\": ");
	refused(e, "\"compared\" is not a whole number");
	free(e);
	e = edit(j, "\"latency_alpha\": 0.001", "\"latency_alpha\": 0.05");
	refused(e, "another latency test");
	free(e);
	e = edit(j, "\"n\": ", "\"n\": 0, \"m\": ");
	refused(e, "latency buckets hold more than \"n\"");
	free(e);
	e = edit(j, "\"endpoint_patterns\": []", "\"endpoint_patterns\": [\"nope\"]");
	refused(e, "is not METHOD /path");
	free(e);
	e = edit(j, "\"command\": \"shadow\"", "\"command\": \"sh\xff" "dow\"");
	refused(e, "\"command\" is not UTF-8");
	free(e);
	/* the same endpoint twice */
	e = edit(j, "\"endpoint\": \"GET /e0/{id}?q\"", "\"endpoint\": \"GET /e1/{id}?q\"");
	refused(e, "endpoint GET /e1/{id}?q: it is there twice");
	free(e);
	/* a truncated file */
	e = strdup(j);
	e[strlen(e) / 2] = 0;
	refused(e, "not JSON");
	free(e);
	/* configurations that disagree are not merged */
	x = load_text(j);
	e = edit(j, "\"relative_pct\": 20", "\"relative_pct\": 30");
	y = load_text(e);
	free(e);
	assert_int_equal(st_cmp_report_merge(x, y, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--noise-relative"));
	drop(y);
	free(j);
	st_cmp_agg_free(&a);
	agg_of(&a, false, 0, 0, 100);
	j = json_of(&a, "h", 0, 1);
	y = load_text(j);
	assert_int_equal(st_cmp_report_merge(x, y, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "reference"));
	drop(y);
	e = edit(j, "\"reference\": null", "\"reference\": \"x\"");
	refused(e, "\"reference\" is missing"); /* a reference, but no reference values */
	free(e);
	drop(x);
	free(j);
	st_cmp_agg_free(&a);
	/* files */
	assert_int_equal(st_cmp_report_read(&r, "/nonexistent/r.json", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(st_cmp_report_read(&r, "/", err, sizeof(err)), -1);
}

/* text without the keys of --correlate (a report of before them): each endpoint's
 * "correlated": N, "correlated_fields": [...], cut out. */
static char *without_correlated(const char *text)
{
	char *out = strdup(text), *p, *end;

	assert_non_null(out);
	while ((end = strstr(out, ", \"correlated_fields\": ["))) {
		for (p = end; p > out && strncmp(p, "\"correlated\": ", 14); p--)
			;
		end = strchr(end, ']');
		assert_non_null(end);
		assert_int_equal(strncmp(end, "],\n     ", 8), 0);
		memmove(p, end + 8, strlen(end + 8) + 1);
	}
	return out;
}

/* b: two pairs of GET /c, each with ST_CMP_CORR_PATHS correlated paths ($.v00 ..., $.w00 ...). */
static void corr_many(struct st_cmp_agg *b)
{
	static struct st_cmp_diffs d;
	struct st_cmp_agg_config cfg = { .reference = false };
	struct st_cmp_result pr = { .method = "GET", .mlen = 3, .target = "/c", .tlen = 2,
				    .raw = &d, .lat_ns = { -1, -1, -1 } };

	assert_int_equal(st_cmp_agg_init(b, &cfg), 0);
	memset(&d, 0, sizeof(d));
	d.ncorr = ST_CMP_CORR_PATHS;
	d.correlated = ST_CMP_CORR_PATHS;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < ST_CMP_CORR_PATHS; k++) {
			snprintf(d.corr_at[k].path, sizeof(d.corr_at[k].path), "$.%c%02u",
				 pass ? 'w' : 'v', k);
			d.corr_at[k].count = 1;
		}
		st_cmp_agg_add(b, "GET /c", &pr);
	}
}

/* --correlate: differences the candidate's map explains are counted per endpoint and field
 * (not as fields that differ), written, read back, merged; a report without them loads. */
static void test_correlated(void **state)
{
	struct st_cmp_agg a, b, c;
	const struct st_cmp_endpoint *e, *x;
	const struct st_cmp_field *f;
	struct st_cmp_report *r;
	char *j, *e2;

	agg_of(&a, true, 0, 0, PAIRS);
	e = st_cmp_agg_endpoint(&a, "GET /e2/{id}?q");
	assert_true(e->compared > 10);
	assert_int_equal(e->correlated, e->compared); /* every pair: its session */
	assert_int_equal(a.correlated, e->correlated);  /* and no other endpoint */
	assert_int_equal(e->ncorr, 2);
	assert_int_equal(corr_n(e, "$.sid"), (int64_t)e->compared);
	assert_true(corr_n(e, "$.order") > 0 && corr_n(e, "$.order") < (int64_t)e->compared);
	assert_string_equal(e->corr[0].path, "$.sid"); /* as one run adds them */
	f = find_field(e, "$.sid");
	assert_true(!f || !f->raw); /* never a difference of the candidate */
	assert_int_equal(st_cmp_agg_endpoint(&a, "GET /e1/{id}?q")->ncorr, 0);
	/* written and read back */
	j = json_of(&a, "h", 0, 1);
	assert_non_null(strstr(j, "\"correlated_fields\": [{\"path\": \"$.sid\", \"correlated\": "));
	r = load_text(j);
	x = st_cmp_agg_endpoint(&r->agg, "GET /e2/{id}?q");
	assert_int_equal(r->agg.correlated, a.correlated);
	assert_int_equal(x->correlated, e->correlated);
	assert_int_equal(x->ncorr, 2);
	assert_int_equal(corr_n(x, "$.sid"), corr_n(e, "$.sid"));
	assert_int_equal(corr_n(x, "$.order"), corr_n(e, "$.order"));
	drop(r);
	/* a report of before: no correlated keys, none counted */
	e2 = without_correlated(j);
	assert_null(strstr(e2, "correlated_fields"));
	r = load_text(e2);
	assert_int_equal(r->agg.correlated, 0);
	assert_int_equal(st_cmp_agg_endpoint(&r->agg, "GET /e2/{id}?q")->ncorr, 0);
	drop(r);
	free(e2);
	/* out of bounds */
	e2 = edit(j, "\"correlated_fields\": []", "\"correlated_fields\": [{\"path\": \"$.x\", "
		  "\"correlated\": 0}, {\"path\": \"$.x\", \"correlated\": 0}]");
	refused(e2, "correlated field $.x is there twice");
	free(e2);
	/* a field's pairs are among the endpoint's */
	e2 = edit(j, "\"correlated\": 0, \"correlated_fields\": []", "\"correlated\": 0, "
		  "\"correlated_fields\": [{\"path\": \"$.x\", \"correlated\": 1}]");
	refused(e2, "\"correlated\" is out of range");
	free(e2);
	e2 = edit(j, "\"correlated\": 0, \"correlated_fields\"", "\"correlated\": 99999999, "
		  "\"correlated_fields\"");
	refused(e2, "\"correlated\" is out of range");
	free(e2);
	free(j);
	/* bounded: past ST_CMP_CORR_FIELDS_MAX - 1 paths, the last row gathers the rest */
	corr_many(&b);
	x = st_cmp_agg_endpoint(&b, "GET /c");
	assert_int_equal(x->correlated, 2);
	assert_int_equal(x->ncorr, ST_CMP_CORR_FIELDS_MAX);
	assert_int_equal(corr_n(x, "$.v00"), 1);
	assert_int_equal(corr_n(x, "$.v15"), -1);
	assert_string_equal(x->corr[ST_CMP_CORR_FIELDS_MAX - 1].path, "(other fields)");
	assert_int_equal(x->corr[ST_CMP_CORR_FIELDS_MAX - 1].n,
			 2 * ST_CMP_CORR_PATHS - (ST_CMP_CORR_FIELDS_MAX - 1));
	/* merged: counts add, the row of the rest stays last */
	corr_many(&c);
	assert_int_equal(st_cmp_agg_merge(&b, &c), 0);
	assert_int_equal(x->correlated, 4);
	assert_int_equal(x->ncorr, ST_CMP_CORR_FIELDS_MAX);
	assert_int_equal(corr_n(x, "$.v00"), 2);
	assert_string_equal(x->corr[ST_CMP_CORR_FIELDS_MAX - 1].path, "(other fields)");
	assert_int_equal(x->corr[ST_CMP_CORR_FIELDS_MAX - 1].n,
			 2 * (2 * ST_CMP_CORR_PATHS - (ST_CMP_CORR_FIELDS_MAX - 1)));
	st_cmp_agg_free(&c);
	st_cmp_agg_free(&b);
	st_cmp_agg_free(&a);
	(void)state;
}

/* Samples: a fair choice whatever the order, identical ones once. */
static void test_samples(void **state)
{
	struct st_cmp_agg a, b, m1, m2;
	struct st_cmp_agg_config cfg = { .reference = true };
	struct st_cmp_endpoint *ea, *eb;
	struct st_cmp_field *fa, *fb;

	assert_int_equal(st_cmp_agg_init(&a, &cfg), 0);
	assert_int_equal(st_cmp_agg_init(&b, &cfg), 0);
	ea = st_cmp_agg_endpoint(&a, "GET /x");
	eb = st_cmp_agg_endpoint(&b, "GET /x");
	fa = st_cmp_endpoint_field(ea, "$.v", ST_CMP_VALUE, "");
	fb = st_cmp_endpoint_field(eb, "$.v", ST_CMP_VALUE, "");
	for (int i = 0; i < ST_CMP_SAMPLES; i++) {
		snprintf(fa->s[i].target, sizeof(fa->s[i].target), "/a/%d", i);
		snprintf(fb->s[i].target, sizeof(fb->s[i].target), "/b/%d", i);
	}
	fb->s[4] = fa->s[0]; /* the same sample on both sides */
	fa->nsamples = fb->nsamples = ST_CMP_SAMPLES;
	fa->raw = fb->raw = 10;
	ea->compared = eb->compared = 10;
	assert_int_equal(st_cmp_agg_init(&m1, &cfg), 0);
	assert_int_equal(st_cmp_agg_init(&m2, &cfg), 0);
	assert_int_equal(st_cmp_agg_merge(&m1, &a), 0);
	assert_int_equal(st_cmp_agg_merge(&m1, &b), 0);
	assert_int_equal(st_cmp_agg_merge(&m2, &b), 0);
	assert_int_equal(st_cmp_agg_merge(&m2, &a), 0);
	fa = &m1.ep[0]->fields[0];
	fb = &m2.ep[0]->fields[0];
	assert_int_equal(fa->raw, 20);
	assert_int_equal(fa->nsamples, ST_CMP_SAMPLES);
	for (int i = 0; i < ST_CMP_SAMPLES; i++) {
		assert_string_equal(fa->s[i].target, fb->s[i].target);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(fa->s[i].target, fa->s[k].target);
	}
	/* both sides are represented (9 distinct: a hash picks from both) */
	{
		int na = 0;

		for (int i = 0; i < ST_CMP_SAMPLES; i++)
			na += fa->s[i].target[1] == 'a';
		assert_true(na > 0 && na < ST_CMP_SAMPLES);
	}
	st_cmp_agg_free(&a);
	st_cmp_agg_free(&b);
	st_cmp_agg_free(&m1);
	st_cmp_agg_free(&m2);
}

/* ---- one order for both formats ---------------------------------------------------------- */

/* The JSON keeps its sections in the page's reading order (compare_report.c, one table for
 * both): the verdict, the endpoints, then the counters ("summary"), with or without a
 * reference. */
static void test_section_order(void **state)
{
	static const char *const json[] = { "{\n  \"format\": ", "\n  \"thresholds\": {",
					    "\n  \"verdict\": {", "\n  \"endpoints\": [",
					    "\n  \"summary\": {" };
	static const char *const html[] = { "<header>", "<section id=\"verdict\"",
					    "<table id=\"endpoints\"", "<section id=\"summary\"",
					    "<section id=\"notes\"" };

	for (int ref = 0; ref < 2; ref++) {
		struct st_cmp_report *r = part(ref, 0, 0, 100, "host-1");
		const char *hostv[ST_CMP_HOSTS_MAX];
		struct st_cmp_run run;
		char *j = json_of_report(r), *h = NULL;
		size_t hl = 0;
		FILE *f = open_memstream(&h, &hl);

		assert_non_null(f);
		st_cmp_report_run(r, &run, hostv, T0);
		st_cmp_report_html(f, &r->agg, &run);
		fclose(f);
		assert_in_order(j, json, sizeof(json) / sizeof(json[0]), "JSON");
		assert_in_order(h, html, sizeof(html) / sizeof(html[0]), "HTML");
		free(h);
		free(j);
		drop(r);
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_equals_all),
		cmocka_unit_test(test_merge_equals_all_no_reference),
		cmocka_unit_test(test_associative),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_correlated),
		cmocka_unit_test(test_section_order),
	};

	assert_int_equal(st_cmp_pattern_parse("GET /e2/*", &pat[0]), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
