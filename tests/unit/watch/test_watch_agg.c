/* SPDX-License-Identifier: GPL-2.0-only */
/* watch's aggregate (watch_agg.c): endpoints, series and their caps, histograms, exports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "watch_agg.h"

static uint32_t ep_of(struct st_watch_agg *a, const char *m, const char *t)
{
	return st_watch_agg_endpoint(a, m, strlen(m), t, strlen(t));
}

static void add(struct st_watch_agg *a, uint32_t ep, unsigned method, uint16_t status,
		int64_t first_ns, int64_t last_ns)
{
	struct st_watch_exchange x = {
		.ep = ep, .method = (uint8_t)method, .status = status, .first_ns = first_ns,
		.last_ns = last_ns, .req_bytes = 100, .resp_bytes = 5000,
	};

	st_watch_agg_add(a, &x);
}

static char *prom_text(const struct st_watch_agg *a)
{
	struct st_prom *p = st_prom__new();
	struct st_prom_labels base = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	st_prom_labels_add(&base, "job", "w");
	st_watch_agg_prom(a, p, &base);
	assert_int_equal(st_prom__write(p, f), 0);
	fclose(f);
	st_prom__free(p);
	return text;
}

static void test_endpoints(void **state)
{
	struct st_cmp_pattern pats[ST_CMP_PATTERNS_MAX];
	unsigned np = 0;
	char err[256];
	struct st_watch_agg_config cfg = { .patterns = pats, .max_endpoints = 3 };
	struct st_watch_agg a;
	uint32_t u1, u2;

	assert_int_equal(st_cmp_pattern_add(pats, &np, "* /static/*", err, sizeof(err)), 0);
	assert_int_equal(st_cmp_pattern_add(pats, &np, "GET nope", err, sizeof(err)), -1);
	cfg.npatterns = np;
	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	/* tap compare's templates: ids as {id}, query keys kept; the method is a label */
	u1 = ep_of(&a, "GET", "/users/123?fields=a&page=2");
	u2 = ep_of(&a, "POST", "/users/99?page=1&fields=x");
	assert_string_equal(st_watch_agg_endpoint_name(&a, u1), "/users/{id}?fields&page");
	assert_string_equal(st_watch_agg_endpoint_name(&a, u2), "/users/{id}?page&fields");
	assert_int_not_equal(u1, u2);
	assert_int_equal(ep_of(&a, "GET", "/users/7?fields=b&page=3"), u1);
	assert_string_equal(st_watch_agg_endpoint_name(&a, ep_of(&a, "HEAD", "/static/a/b.css")),
			    "/static/*");
	/* the cap: the rest is "other" (index 0) */
	assert_int_equal(ep_of(&a, "GET", "/fourth"), 0);
	assert_string_equal(st_watch_agg_endpoint_name(&a, 0), "other");
	assert_int_equal(a.nep, 4);
	/* bytes that are not UTF-8 become '?' (label values must be UTF-8) */
	st_watch_agg_free(&a);
	cfg.npatterns = 0;
	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	assert_string_equal(st_watch_agg_endpoint_name(&a, ep_of(&a, "GET", "/a\xff\xfe")), "/a??");
	st_watch_agg_free(&a);
}

static void test_histograms_and_prom(void **state)
{
	struct st_watch_agg_config cfg = { 0 };
	struct st_watch_agg a;
	char err[128], *t;
	uint32_t ep;

	assert_int_equal(st_watch_bounds_parse("0.001,0.01,0.1", &cfg.lat, err, sizeof(err)), 0);
	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	ep = ep_of(&a, "GET", "/slow");
	add(&a, ep, ST_HTTP_M_GET, 200, 1000000, 10000000);  /* 1 ms: le 0.001; 10 ms */
	add(&a, ep, ST_HTTP_M_GET, 200, 50000000, 60000000); /* 50 ms */
	add(&a, ep, ST_HTTP_M_GET, 200, 200000000, -1);      /* 200 ms; its end not seen */
	add(&a, ep, ST_HTTP_M_GET, 500, -1, -1);
	add(&a, ep, ST_HTTP_M_OTHER, ST_WATCH_CODE_NONE, -1, -1);
	assert_int_equal(a.ns, 3);
	t = prom_text(&a);
	assert_non_null(strstr(t, "# TYPE shadowtap_http_requests_total counter\n"
				  "shadowtap_http_requests_total{job=\"w\",endpoint=\"/slow\",method=\"GET\","
				  "code=\"200\"} 3\n"));
	assert_non_null(strstr(t, "shadowtap_http_requests_total{job=\"w\",endpoint=\"/slow\","
				  "method=\"OTHER\",code=\"none\"} 1\n"));
	assert_non_null(strstr(t, "# TYPE shadowtap_http_response_first_byte_seconds histogram\n"));
	assert_non_null(strstr(t, "shadowtap_http_response_first_byte_seconds_bucket{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(t, "shadowtap_http_response_first_byte_seconds_bucket{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\",le=\"0.1\"} 2\n"));
	assert_non_null(strstr(t, "shadowtap_http_response_first_byte_seconds_count{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\"} 3\n"));
	assert_non_null(strstr(t, "shadowtap_http_response_first_byte_seconds_sum{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\"} 0.251\n"));
	/* the last byte: the exchange whose end was not seen is not observed */
	assert_non_null(strstr(t, "shadowtap_http_response_last_byte_seconds_count{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\"} 2\n"));
	/* sizes: 5000 bytes, in (4096, 16384] */
	assert_non_null(strstr(t, "shadowtap_http_response_size_bytes_bucket{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\",le=\"4096\"} 0\n"));
	assert_non_null(strstr(t, "shadowtap_http_response_size_bytes_bucket{job=\"w\","
				  "endpoint=\"/slow\",method=\"GET\",code=\"200\",le=\"16384\"} 3\n"));
	free(t);
	st_watch_agg_free(&a);
	/* bounds that do not increase, or are not numbers */
	assert_int_equal(st_watch_bounds_parse("0.1,0.01", &cfg.lat, err, sizeof(err)), -1);
	assert_int_equal(st_watch_bounds_parse("0.1,x", &cfg.lat, err, sizeof(err)), -1);
	assert_int_equal(st_watch_bounds_parse("-1", &cfg.lat, err, sizeof(err)), -1);
	assert_int_equal(st_watch_bounds_parse("", &cfg.lat, err, sizeof(err)), -1);
}

static void test_series_cap(void **state)
{
	struct st_watch_agg_config cfg = { .max_series = ST_WATCH_SERIES_MIN };
	struct st_watch_agg a;
	uint64_t total = 0;
	char *t;

	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	/* 9 series fit (16 - 7 class rows); then each code goes to its class row */
	for (int i = 0; i < 30; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/p%d", i);
		add(&a, ep_of(&a, "GET", path), ST_HTTP_M_GET, i % 2 ? 503 : 200, 1000, 2000);
	}
	add(&a, ep_of(&a, "GET", "/p99"), ST_HTTP_M_GET, ST_WATCH_CODE_NONE, -1, -1);
	assert_int_equal(a.ns, ST_WATCH_SERIES_MIN - ST_WATCH_CLASS_SERIES);
	assert_int_equal(a.overflow, 31 - (ST_WATCH_SERIES_MIN - ST_WATCH_CLASS_SERIES));
	assert_int_equal(a.cls[4].n, 11); /* 5xx: the odd ones past the first 9 */
	assert_int_equal(a.cls[1].n, 10); /* 2xx */
	assert_int_equal(a.cls[6].n, 1);  /* none */
	for (uint32_t i = 0; i < a.ns; i++)
		total += a.s[i].n;
	for (int i = 0; i < ST_WATCH_CLASS_SERIES; i++)
		total += a.cls[i].n;
	assert_int_equal(total, 31);
	t = prom_text(&a);
	assert_non_null(strstr(t, "{job=\"w\",endpoint=\"other\",method=\"OTHER\",code=\"5xx\"} 11\n"));
	assert_non_null(strstr(t, "{job=\"w\",endpoint=\"other\",method=\"OTHER\",code=\"none\"} 1\n"));
	assert_null(strstr(t, "code=\"1xx\"")); /* class rows never used are not written */
	free(t);
	st_watch_agg_free(&a);
}

/* 100k distinct random paths: the series count and the memory stay where the caps put them. */
static void test_hostile_paths(void **state)
{
	struct st_watch_agg_config cfg = { 0 };
	struct st_watch_agg a;
	uint64_t x = 88172645463325252ull, total = 0;
	uint32_t epcap, scap;

	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	for (int i = 0; i < 100000; i++) {
		char path[64];

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* letters: not id-like, so every path is an endpoint of its own */
		snprintf(path, sizeof(path), "/r/%c%c%c%c%c%c%c/q", 'a' + (int)(x % 26),
			 'a' + (int)(x / 26 % 26), 'a' + (int)(x / 676 % 26), 'a' + (int)(x / 17576 % 26),
			 'a' + (int)(x / 456976 % 26), 'a' + (int)(x >> 40) % 26, 'a' + (int)(x >> 50) % 26);
		add(&a, ep_of(&a, i % 3 ? "GET" : "POST", path), i % 3 ? ST_HTTP_M_GET : ST_HTTP_M_POST,
		    (uint16_t)(200 + (i % 5) * 100), 1000, 2000);
		if (i == 50000) {
			epcap = a.epcap;
			scap = a.scap;
		}
	}
	assert_int_equal(a.nep - 1, ST_WATCH_ENDPOINTS_DEFAULT);
	assert_true(a.ns <= ST_WATCH_SERIES_DEFAULT - ST_WATCH_CLASS_SERIES);
	/* nothing grew in the second half */
	assert_int_equal(a.epcap, epcap);
	assert_int_equal(a.scap, scap);
	assert_true(a.epcap <= ST_WATCH_ENDPOINTS_DEFAULT + 1);
	for (uint32_t i = 0; i < a.ns; i++)
		total += a.s[i].n;
	for (int i = 0; i < ST_WATCH_CLASS_SERIES; i++)
		total += a.cls[i].n;
	assert_int_equal(total, 100000);
	assert_true(a.other_ep > 90000);
	st_watch_agg_free(&a);
}

static void test_json(void **state)
{
	struct st_watch_agg_config cfg = { 0 };
	struct st_watch_agg a;
	struct st_prom_label labels[] = { { "group", "can\"ary" } };
	struct st_watch_run run = {
		.command = "watch", .job = "j", .labels = labels, .nlabels = 1, .host = "h\n",
		.start_ns = 1700000000000000000ull, .now_ns = 1700000001000000000ull, .final = true,
	};
	struct st_json_doc d;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_int_equal(st_watch_agg_init(&a, &cfg), 0);
	add(&a, ep_of(&a, "GET", "/x\"<y>"), ST_HTTP_M_GET, 200, 1000, 2000);
	st_watch_agg_json(f, &a, &run);
	fclose(f);
	st_json_doc_init(&d, 0, 0);
	assert_int_equal(st_json_parse(&d, text, len), 0);
	assert_non_null(strstr(text, "\"endpoint\": \"/x\\\"<y>\""));
	assert_non_null(strstr(text, "\"labels\": {\"group\": \"can\\\"ary\"}"));
	assert_non_null(strstr(text, "\"format\": \"shadowtap-watch-report\""));
	st_json_doc_free(&d);
	free(text);
	st_watch_agg_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_histograms_and_prom),
		cmocka_unit_test(test_series_cap),
		cmocka_unit_test(test_hostile_paths),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
