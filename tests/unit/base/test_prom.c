/* SPDX-License-Identifier: GPL-2.0-only */
/* The labelled exposition (prom.c): families once, escaping, histograms, float forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static char *render(struct st_prom *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(st_prom__write(p, f), 0);
	fclose(f);
	return text;
}

static void test_families_once(void **state)
{
	struct st_prom *p = st_prom__new();
	struct st_prom_labels a = { 0 }, b = { 0 };
	char *t;
	int f1, f2;

	st_prom_labels_add(&a, "job", "web");
	st_prom_labels_add(&b, "job", "a\"b\\c\nd");
	/* two sources add to one family, another family in between */
	f1 = st_prom__family(p, "x_total", ST_PROM_COUNTER, "x things");
	st_prom__sample_u64(p, f1, &a, 3);
	f2 = st_prom__family(p, "y", ST_PROM_GAUGE, "y level");
	st_prom__sample(p, f2, NULL, 0.5);
	assert_int_equal(st_prom__family(p, "x_total", ST_PROM_GAUGE, "other help"), f1);
	st_prom__sample_u64(p, f1, &b, 18446744073709551615ull);
	/* a family without samples is not written */
	st_prom__family(p, "empty", ST_PROM_GAUGE, "nothing");
	t = render(p);
	assert_string_equal(t, "# HELP x_total x things\n"
			       "# TYPE x_total counter\n"
			       "x_total{job=\"web\"} 3\n"
			       "x_total{job=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
			       "# HELP y y level\n"
			       "# TYPE y gauge\n"
			       "y 0.5\n");
	free(t);
	st_prom__free(p);
}

static void test_histogram(void **state)
{
	struct st_prom *p = st_prom__new();
	struct st_prom_labels l = { 0 };
	const double bounds[] = { 0.005, 0.1, 2.5 };
	const uint64_t counts[] = { 1, 0, 2, 3 };
	char *t;
	int f;

	st_prom_labels_add(&l, "endpoint", "/a");
	f = st_prom__family(p, "lat_seconds", ST_PROM_HISTOGRAM, "lat");
	st_prom__histogram(p, f, &l, bounds, 3, counts, 12.25);
	t = render(p);
	assert_string_equal(t, "# HELP lat_seconds lat\n"
			       "# TYPE lat_seconds histogram\n"
			       "lat_seconds_bucket{endpoint=\"/a\",le=\"0.005\"} 1\n"
			       "lat_seconds_bucket{endpoint=\"/a\",le=\"0.1\"} 1\n"
			       "lat_seconds_bucket{endpoint=\"/a\",le=\"2.5\"} 3\n"
			       "lat_seconds_bucket{endpoint=\"/a\",le=\"+Inf\"} 6\n"
			       "lat_seconds_sum{endpoint=\"/a\"} 12.25\n"
			       "lat_seconds_count{endpoint=\"/a\"} 6\n");
	free(t);
	st_prom__free(p);
}

static void test_float_and_names(void **state)
{
	char b[40];

	st_prom_float(b, sizeof(b), 0.005);
	assert_string_equal(b, "0.005");
	st_prom_float(b, sizeof(b), 0.1 + 0.2); /* no shorter form reads back the same */
	assert_string_equal(b, "0.30000000000000004");
	st_prom_float(b, sizeof(b), 16777216);
	assert_string_equal(b, "16777216");
	st_prom_float(b, sizeof(b), 1.0 / 0.0);
	assert_string_equal(b, "+Inf");
	assert_true(st_prom_label_name_ok("group"));
	assert_true(st_prom_label_name_ok("_x9"));
	assert_false(st_prom_label_name_ok("9x"));
	assert_false(st_prom_label_name_ok("__name__"));
	assert_false(st_prom_label_name_ok("a-b"));
	assert_false(st_prom_label_name_ok(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_once),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_float_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
