/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The canary verdict (canary.c): the statistics against values computed exactly elsewhere
 * (Python's math.comb for Fisher; Newcombe's own worked example), watch reports read back
 * (and refused when they lie), the verdicts, the escaping of what the files say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "http.h"
#include "promread.h"

#define NEAR(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

static void test_fisher(void **state)
{
	/* P(X >= a) by exact sums (Python: math.comb) */
	NEAR(st_canary_fisher(30, 100, 10, 100), 0.0003252053538017105, 1e-12);
	NEAR(st_canary_fisher(10, 100, 10, 100), 0.5928511035198103, 1e-12);
	NEAR(st_canary_fisher(3, 10, 1, 10), 0.29102167182662536, 1e-12);
	NEAR(st_canary_fisher(0, 10, 5, 10), 1.0, 1e-12);
	NEAR(st_canary_fisher(1000, 10000, 1000, 10000), 0.5094019713460357, 1e-9);
	NEAR(st_canary_fisher(1100, 10000, 1000, 10000), 0.011189437400240079, 1e-9);
	/* large counts stay finite and sure */
	assert_true(st_canary_fisher(300000, 1000000, 100000, 1000000) < 1e-300 ||
		    st_canary_fisher(300000, 1000000, 100000, 1000000) == 0);
	NEAR(st_canary_fisher(100000, 1000000, 100000, 1000000), 0.5, 0.01);
	assert_true(st_canary_fisher(5, 0, 1, 10) == 1); /* nothing to test */
}

static void test_newcombe(void **state)
{
	double lo, hi;

	/* Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 against 48/80,
	 * method 10: 0.0524 to 0.3339 */
	st_canary_diff_ci(56, 70, 48, 80, 0.05, &lo, &hi);
	NEAR(lo, 0.0524, 0.0001);
	NEAR(hi, 0.3339, 0.0001);
}

static void test_mwu(void **state)
{
	const double mid[] = { 1, 2, 3, 4 };
	const double a[] = { 0, 0, 50, 50 }, b[] = { 50, 50, 0, 0 }, c[] = { 25, 25, 25, 25 };
	struct st_cmp_mwu m;

	st_cmp_mwu(a, b, mid, 4, &m);
	assert_true(m.p < 1e-10);
	assert_true(m.u > m.mu);
	NEAR(m.a, 1, 1e-12);
	NEAR(m.shift, 2, 1e-12);
	st_cmp_mwu(c, c, mid, 4, &m);
	assert_true(m.p > 0.9);
	NEAR(m.a, 0.5, 1e-12);
	NEAR(m.shift, 0, 1e-12);
}

/* A watch report: per endpoint of eps, n requests of which err answered 500, each latency
 * first_ms; bounds: the defaults unless lat. */
static char *report(const char *host, const char *const *eps, int neps, unsigned n, unsigned err,
		    double first_ms, const struct st_watch_bounds *lat)
{
	struct st_watch_agg_config cfg = { 0 };
	struct st_watch_run run = { .command = "watch", .job = "w", .host = host,
				    .start_ns = 1700000000000000000ull, .now_ns = 1700000060000000000ull };
	struct st_watch_agg a;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (lat)
		cfg.lat = *lat;
	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	for (int e = 0; e < neps; e++) {
		uint32_t ep = st_watch_agg_endpoint(&a, "GET", 3, eps[e], strlen(eps[e]));

		for (unsigned i = 0; i < n; i++) {
			struct st_watch_exchange x = {
				.ep = ep, .method = ST_HTTP_M_GET, .status = i < err ? 500 : 200,
				.first_ns = (int64_t)(first_ms * 1e6 * (0.9 + 0.2 * i / n)),
				.last_ns = -1, .req_bytes = 10, .resp_bytes = 10,
			};

			st_watch_agg_add(&a, &x);
		}
	}
	st_watch_agg_json(f, &a, &run);
	fclose(f);
	st_watch_agg_free(&a);
	return text;
}

static void load(struct st_canary *c, int g, char *text)
{
	char err[256];

	err[0] = 0;
	if (st_canary_load(c, g, text, strlen(text), err, sizeof(err)))
		fail_msg("load: %s", err);
	free(text);
}

static const struct st_canary_ep *ep_named(const struct st_canary *c, const char *name)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (!strcmp(c->ep[i].name, name))
			return &c->ep[i];
	return NULL;
}

static void test_verdicts(void **state)
{
	const char *eps[] = { "/flaky", "/steady" };
	const struct st_canary_opts o = { .min_diff = -1, .lat_min = -1 };
	struct st_canary c;

	/* the canary fails /flaky 3 times in 10, the baseline once in 10; /steady alike */
	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("c1", eps, 1, 500, 150, 2, NULL));
	load(&c, ST_CANARY, report("c2", eps + 1, 1, 1000, 100, 2, NULL));
	load(&c, ST_BASELINE, report("b1", eps, 2, 1000, 100, 2, NULL));
	st_canary_judge(&c, &o);
	assert_int_equal(c.verdict, ST_CANARY_FAIL);
	assert_int_equal(ep_named(&c, "GET /flaky")->verdict, ST_CANARY_FAIL);
	assert_true(ep_named(&c, "GET /flaky")->err_fail);
	NEAR(ep_named(&c, "GET /flaky")->ratio[ST_CANARY], 0.3, 1e-12);
	assert_int_equal(ep_named(&c, "GET /steady")->verdict, ST_CANARY_PASS);
	assert_int_equal(c.files[ST_CANARY], 2);
	assert_int_equal(c.all.req[ST_CANARY], 1500);
	assert_string_equal(c.hosts[ST_CANARY][1], "c2");
	/* 2 endpoints and (all) judged: 3 error tests, 2 latency tests */
	assert_int_equal(c.tests, 5);
	NEAR(c.alpha_each, 0.01 / 5, 1e-15);
	st_canary_free(&c);

	/* equal groups: pass */
	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("c", eps, 2, 1000, 100, 2, NULL));
	load(&c, ST_BASELINE, report("b", eps, 2, 1000, 100, 2, NULL));
	st_canary_judge(&c, &o);
	assert_int_equal(c.verdict, ST_CANARY_PASS);
	st_canary_free(&c);

	/* a canary 10 ms slower on /steady, same errors: fails on latency */
	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("c", eps + 1, 1, 1000, 100, 40, NULL));
	load(&c, ST_BASELINE, report("b", eps + 1, 1, 1000, 100, 2, NULL));
	st_canary_judge(&c, &o);
	assert_int_equal(c.verdict, ST_CANARY_FAIL);
	assert_true(ep_named(&c, "GET /steady")->lat_fail);
	assert_false(ep_named(&c, "GET /steady")->err_fail);
	assert_true(ep_named(&c, "GET /steady")->lat_test.shift > 0.01);
	st_canary_free(&c);

	/* below --min-requests: not enough traffic, whatever the ratios */
	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("c", eps, 1, 150, 150, 2, NULL));
	load(&c, ST_BASELINE, report("b", eps, 1, 150, 0, 2, NULL));
	st_canary_judge(&c, &o);
	assert_int_equal(c.verdict, ST_CANARY_LOW);
	st_canary_free(&c);
}

static void test_refused(void **state)
{
	const char *eps[] = { "/x" };
	struct st_watch_bounds other = { .n = 2, .b = { 0.01, 0.1 } };
	struct st_canary c;
	char err[256], *t, *p;

	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("c", eps, 1, 10, 1, 2, NULL));
	/* other buckets than the files before */
	t = report("b", eps, 1, 10, 1, 2, &other);
	assert_int_equal(st_canary_load(&c, ST_BASELINE, t, strlen(t), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "buckets differ"));
	free(t);
	/* more latency counts than requests */
	t = report("b", eps, 1, 10, 1, 2, NULL);
	p = strstr(t, "\"requests\": 1,"); /* the 500 series: one request, one latency */
	assert_non_null(p);
	memcpy(p, "\"requests\": 0,", 14);
	assert_int_equal(st_canary_load(&c, ST_BASELINE, t, strlen(t), err, sizeof(err)), -1);
	free(t);
	/* not a watch report; not JSON; a code that is none */
	assert_int_equal(st_canary_load(&c, ST_BASELINE, "{\"format\": \"x\"}", 15, err,
					 sizeof(err)), -1);
	assert_non_null(strstr(err, "not a watch report"));
	assert_int_equal(st_canary_load(&c, ST_BASELINE, "{", 1, err, sizeof(err)), -1);
	t = report("b", eps, 1, 10, 1, 2, NULL);
	p = strstr(t, "\"code\": \"200\"");
	memcpy(p, "\"code\": \"2<0\"", 13);
	assert_int_equal(st_canary_load(&c, ST_BASELINE, t, strlen(t), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"code\""));
	free(t);
	/* nothing of the refused files was added */
	assert_int_equal(c.files[ST_BASELINE], 0);
	assert_int_equal(c.all.req[ST_BASELINE], 0);
	st_canary_free(&c);
}

/* What the files say is escaped in every format. */
static void test_escaping(void **state)
{
	const char *eps[] = { "/<script>alert(1)</script>" };
	const char *files[] = { "c.json" };
	struct st_canary_run run = { .now_ns = 1700000000000000000ull,
				     .files = { files, files }, .nfiles = { 1, 1 } };
	const struct st_canary_opts o = { .min_requests = 1, .min_diff = -1, .lat_min = -1 };
	struct st_canary c;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(st_canary_init(&c), 0);
	load(&c, ST_CANARY, report("h<b>\"", eps, 1, 100, 50, 2, NULL));
	load(&c, ST_BASELINE, report("h2", eps, 1, 100, 0, 2, NULL));
	st_canary_judge(&c, &o);
	f = open_memstream(&text, &len);
	st_canary_html(f, &c, &run);
	fclose(f);
	assert_null(strstr(text, "<script>"));
	assert_null(strstr(text, "h<b>"));
	assert_non_null(strstr(text, "&lt;script&gt;"));
	assert_non_null(strstr(text, "<strong>fail</strong>"));
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	st_canary_json(f, &c, &run);
	fclose(f);
	assert_non_null(strstr(text, "\"verdict\": \"fail\""));
	assert_non_null(strstr(text, "\"h<b>\\\"\""));
	free(text);
	st_canary_free(&c);
}

/* Figures from a Prometheus server's answers: requests by code, buckets by le. */
static void test_prometheus(void **state)
{
	const char *req =
		"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		"{\"metric\":{\"endpoint\":\"/a\",\"method\":\"GET\",\"code\":\"200\"},"
		"\"value\":[1700000000.5,\"699.6\"]},"
		"{\"metric\":{\"endpoint\":\"/a\",\"method\":\"GET\",\"code\":\"500\"},"
		"\"value\":[1700000000.5,\"300.2\"]}]}}";
	const char *lat =
		"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		"{\"metric\":{\"endpoint\":\"/a\",\"method\":\"GET\",\"le\":\"+Inf\"},"
		"\"value\":[1,\"1000\"]},"
		"{\"metric\":{\"endpoint\":\"/a\",\"method\":\"GET\",\"le\":\"0.01\"},"
		"\"value\":[1,\"900.4\"]},"
		"{\"metric\":{\"endpoint\":\"/a\",\"method\":\"GET\",\"le\":\"0.001\"},"
		"\"value\":[1,\"100\"]}]}}";
	const char *bad = "{\"status\":\"error\",\"error\":\"parse error\"}";
	char err[256], host[64], port[8], prefix[64], *q1, *q2;
	const struct st_canary_ep *e;
	struct st_canary c;

	assert_int_equal(st_canary_init(&c), 0);
	assert_int_equal(st_canary_load_prom(&c, ST_CANARY, req, strlen(req), lat, strlen(lat), err,
					     sizeof(err)), 0);
	e = ep_named(&c, "GET /a");
	assert_non_null(e);
	assert_int_equal(e->req[ST_CANARY], 1000);
	assert_int_equal(e->err[ST_CANARY], 300);
	assert_int_equal(c.bounds.n, 2);
	NEAR(c.bounds.b[1], 0.01, 0);
	assert_int_equal(e->lat[ST_CANARY][0], 100);
	assert_int_equal(e->lat[ST_CANARY][1], 800);
	assert_int_equal(e->lat[ST_CANARY][2], 100);
	/* an error answer, or one that is not JSON: refused, nothing added */
	assert_int_equal(st_canary_load_prom(&c, ST_BASELINE, bad, strlen(bad), lat, strlen(lat), err,
					     sizeof(err)), -1);
	assert_non_null(strstr(err, "status"));
	assert_int_equal(st_canary_load_prom(&c, ST_BASELINE, req, strlen(req), "[", 1, err,
					     sizeof(err)), -1);
	assert_int_equal(c.all.req[ST_BASELINE], 0);
	st_canary_free(&c);
	/* the queries: the selector between braces, never a '}' of its own */
	assert_int_equal(st_canary_prom_queries("group=\"canary\"", "3600s", &q1, &q2), 0);
	assert_string_equal(q1, "sum by (endpoint, method, code) (increase("
				"shadowtap_http_requests_total{group=\"canary\"}[3600s]))");
	assert_non_null(strstr(q2, "shadowtap_http_response_first_byte_seconds_bucket{group=\"canary\"}"));
	free(q1);
	free(q2);
	assert_int_equal(st_canary_prom_queries("a=\"b\"} or vector(1", "1h", &q1, &q2), -1);
	/* URLs */
	assert_int_equal(st_promread_url("http://[::1]:9090/prom/", host, sizeof(host), port,
					 sizeof(port), prefix, sizeof(prefix), err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "9090");
	assert_string_equal(prefix, "/prom");
	assert_int_equal(st_promread_url("http://prom", host, sizeof(host), port, sizeof(port),
					 prefix, sizeof(prefix), err, sizeof(err)), 0);
	assert_string_equal(port, "80");
	assert_string_equal(prefix, "");
	assert_int_equal(st_promread_url("https://prom", host, sizeof(host), port, sizeof(port),
					 prefix, sizeof(prefix), err, sizeof(err)), -1);
	assert_int_equal(st_promread_url("http://h:9x", host, sizeof(host), port, sizeof(port),
					 prefix, sizeof(prefix), err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fisher),
		cmocka_unit_test(test_newcombe),
		cmocka_unit_test(test_mwu),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_prometheus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
