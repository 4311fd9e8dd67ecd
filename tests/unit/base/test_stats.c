/* SPDX-License-Identifier: GPL-2.0-only */
/* The counter tables (stats.c): struct, line and metrics come from one list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow.h"
#include "stats.h"
#include "tap.h"

#define DEMO_STATS(X, T)                               \
	X(T, alpha, COUNTER, "alpha things")           \
	X(T, beta, GAUGE, "beta level")                \
	X(T, gamma, COUNTER, NULL)

struct demo_stats {
	DEMO_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(demo_stat, struct demo_stats, DEMO_STATS);

static void test_table(void **state)
{
	struct demo_stats a = { .alpha = 1, .beta = 2, .gamma = 3 }, b = { 10, 20, 30 };

	assert_int_equal(demo_stat_n, 3);
	assert_string_equal(demo_stat_desc[1].name, "beta");
	assert_int_equal(demo_stat_desc[1].kind, ST_STAT_GAUGE);
	assert_int_equal(st_stats_get(&demo_stat_desc[2], &a), 3);
	st_stats_add(demo_stat_desc, demo_stat_n, &b, &a);
	assert_int_equal(b.alpha, 11);
	assert_int_equal(b.beta, 22);
	assert_int_equal(b.gamma, 33);
}

static void test_line(void **state)
{
	struct demo_stats a = { .alpha = 1, .beta = 22, .gamma = 333 };
	struct st_statline l;
	char buf[256], small[8];

	st_statline_init(&l);
	st_statline_add_table(&l, demo_stat_desc, demo_stat_n, &a);
	st_statline_add(&l, "extra", 4, ST_STAT_COUNTER, "x");
	assert_int_equal(st_statline_format(&l, buf, sizeof(buf)),
			 strlen("alpha=1 beta=22 gamma=333 extra=4"));
	assert_string_equal(buf, "alpha=1 beta=22 gamma=333 extra=4");
	assert_int_equal(st_statline_value(&l, "gamma"), 333);
	assert_int_equal(st_statline_value(&l, "nope"), 0);
	/* a short buffer is cut, still terminated, and the needed length returned */
	assert_int_equal(st_statline_format(&l, small, sizeof(small)), strlen(buf));
	assert_string_equal(small, "alpha=1");
}

static void test_prometheus(void **state)
{
	struct demo_stats a = { .alpha = 5, .beta = 6, .gamma = 7 };
	struct st_statline l;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	st_statline_init(&l);
	st_statline_add_table(&l, demo_stat_desc, demo_stat_n, &a);
	assert_int_equal(st_statline_prometheus(&l, f, "shadow"), 0);
	fclose(f);
	assert_non_null(strstr(out, "# HELP shadowtap_alpha_total alpha things\n"
				    "# TYPE shadowtap_alpha_total counter\n"
				    "shadowtap_alpha_total{command=\"shadow\"} 5\n"));
	assert_non_null(strstr(out, "# TYPE shadowtap_beta gauge\n"
				    "shadowtap_beta{command=\"shadow\"} 6\n"));
	/* no HELP line without help text */
	assert_null(strstr(out, "HELP shadowtap_gamma"));
	free(out);
}

/* receive's longest line (every output, Kafka, tap compare, a load test) fits whole. */
static void test_long_line(void **state)
{
	static struct st_statline l;
	static char names[160][16];

	st_statline_init(&l);
	for (int i = 0; i < 160; i++) {
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		st_statline_add(&l, names[i], (uint64_t)i, ST_STAT_COUNTER, NULL);
	}
	assert_int_equal(l.n, 160);
	assert_int_equal(st_statline_value(&l, "c159"), 159);
}

/* Figures that are not whole numbers: decimals on the line and in the exposition. */
static void test_fixed(void **state)
{
	struct st_statline l;
	char buf[256], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	st_statline_init(&l);
	st_statline_add(&l, "n", 3, ST_STAT_COUNTER, "n");
	st_statline_add_fixed(&l, "achieved_rps", 499.84, 1, ST_STAT_GAUGE, ST_STAT_UNIT_NONE, "rate");
	st_statline_add_fixed(&l, "p99_ms", 51.0004, 3, ST_STAT_GAUGE, ST_STAT_UNIT_MS, "p99");
	st_statline_add_fixed(&l, "lag_ms", 0.05, 3, ST_STAT_DETAIL, ST_STAT_UNIT_MS, "lag");
	st_statline_add_fixed(&l, "neg", -2, 2, ST_STAT_DETAIL, ST_STAT_UNIT_NONE, "never below 0");
	st_statline_format(&l, buf, sizeof(buf));
	assert_string_equal(buf, "n=3 achieved_rps=499.8 p99_ms=51.000 lag_ms=0.050");
	assert_int_equal(st_statline_value(&l, "p99_ms"), 51000);
	assert_int_equal(st_statline_prometheus(&l, f, "replay"), 0);
	fclose(f);
	assert_non_null(strstr(out, "shadowtap_achieved_rps{command=\"replay\"} 499.8\n"));
	/* milliseconds exported as seconds, their decimals kept */
	assert_non_null(strstr(out, "shadowtap_p99_seconds{command=\"replay\"} 0.051000\n"));
	assert_non_null(strstr(out, "shadowtap_lag_seconds_total{command=\"replay\"} 0.000050\n"));
	free(out);
}

/* Several jobs in one exposition: a family once (HELP and TYPE), a sample per job that has
 * it, in the jobs' order, labels escaped. */
static void test_prometheus_jobs(void **state)
{
	struct demo_stats a = { .alpha = 5, .beta = 6, .gamma = 7 };
	struct st_statline la, lb;
	const struct st_statline *ls[2] = { &la, &lb };
	const char *jobs[2] = { "web", "can\"ary" }, *cmds[2] = { "capture", "shadow" };
	char *out = NULL, *p;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	st_statline_init(&la);
	st_statline_add(&la, "up", 1, ST_STAT_GAUGE, "up");
	st_statline_add_table(&la, demo_stat_desc, 1, &a); /* alpha only */
	st_statline_init(&lb);
	st_statline_add(&lb, "up", 0, ST_STAT_GAUGE, "up");
	st_statline_add_table(&lb, demo_stat_desc, demo_stat_n, &a);
	assert_int_equal(st_statline_prometheus_jobs(ls, jobs, cmds, 2, f), 0);
	fclose(f);
	assert_non_null(strstr(out, "# HELP shadowtap_up up\n# TYPE shadowtap_up gauge\n"
				    "shadowtap_up{job=\"web\",command=\"capture\"} 1\n"
				    "shadowtap_up{job=\"can\\\"ary\",command=\"shadow\"} 0\n"));
	assert_non_null(strstr(out, "# TYPE shadowtap_alpha_total counter\n"
				    "shadowtap_alpha_total{job=\"web\",command=\"capture\"} 5\n"
				    "shadowtap_alpha_total{job=\"can\\\"ary\",command=\"shadow\"} 5\n"));
	/* beta: only the second job has it; its family comes once */
	p = strstr(out, "# TYPE shadowtap_beta gauge\n");
	assert_non_null(p);
	assert_null(strstr(p + 1, "# TYPE shadowtap_beta gauge"));
	assert_null(strstr(out, "shadowtap_beta{job=\"web\""));
	free(out);
}

/* A value with a label of its own (a shadow target): one family, one sample per label value
 * and job, never on the summary line. */
static void test_labeled(void **state)
{
	struct st_statline la, lb;
	const struct st_statline *ls[2] = { &la, &lb };
	const char *jobs[2] = { "a", "b" }, *cmds[2] = { "shadow", "shadow" };
	char line[256], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	st_statline_init(&la);
	st_statline_add(&la, "requests", 3, ST_STAT_COUNTER, "requests");
	st_statline_add_labeled(&la, "target_up", "target", "10.0.0.1:80", 1, ST_STAT_GAUGE, "up");
	st_statline_add_labeled(&la, "target_up", "target", "10.0.0.2:\"80", 0, ST_STAT_GAUGE, "up");
	st_statline_init(&lb);
	st_statline_add_labeled(&lb, "target_up", "target", "10.0.0.3:80", 1, ST_STAT_GAUGE, "up");
	st_statline_format(&la, line, sizeof(line));
	assert_string_equal(line, "requests=3");
	assert_int_equal(st_statline_prometheus_jobs(ls, jobs, cmds, 2, f), 0);
	fclose(f);
	assert_non_null(strstr(out, "# HELP shadowtap_target_up up\n# TYPE shadowtap_target_up gauge\n"
				    "shadowtap_target_up{job=\"a\",command=\"shadow\",target=\"10.0.0.1:80\"} 1\n"
				    "shadowtap_target_up{job=\"a\",command=\"shadow\",target=\"10.0.0.2:\\\"80\"} 0\n"
				    "shadowtap_target_up{job=\"b\",command=\"shadow\",target=\"10.0.0.3:80\"} 1\n"));
	free(out);
	out = NULL;
	f = open_memstream(&out, &len);
	assert_int_equal(st_statline_prometheus(&la, f, "shadow"), 0);
	fclose(f);
	assert_non_null(strstr(out, "# TYPE shadowtap_target_up gauge\n"
				    "shadowtap_target_up{command=\"shadow\",target=\"10.0.0.1:80\"} 1\n"
				    "shadowtap_target_up{command=\"shadow\",target=\"10.0.0.2:\\\"80\"} 0\n"));
	assert_null(strstr(strstr(out, "# TYPE shadowtap_target_up") + 1, "# TYPE shadowtap_target_up"));
	free(out);
}

#define UNIT_STATS(X, T)                                          \
	X(T, queued, GAUGE_BYTES, "bytes queued now")             \
	X(T, lost, COUNTER_BYTES, "bytes lost")                   \
	X(T, gap_bytes, COUNTER_BYTES, "a key that says its unit") \
	X(T, blind_ms, COUNTER_MS, "milliseconds without input")  \
	X(T, skipped, DETAIL_BYTES, "bytes skipped")

struct unit_stats {
	UNIT_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(unit_stat, struct unit_stats, UNIT_STATS);

/* Metrics in base units, named: bytes get _bytes (once), milliseconds become seconds; the
 * summary keeps the keys and the numbers as they are. */
static void test_units(void **state)
{
	struct unit_stats a = { .queued = 4096, .lost = 3, .gap_bytes = 9, .blind_ms = 2005,
				.skipped = 0 };
	const struct st_statline *ls[1];
	const char *jobs[1] = { "web" }, *cmds[1] = { "capture" };
	struct st_statline l;
	char *out = NULL, buf[256];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	st_statline_init(&l);
	st_statline_add_table(&l, unit_stat_desc, unit_stat_n, &a);
	ls[0] = &l;
	st_statline_format(&l, buf, sizeof(buf));
	assert_string_equal(buf, "queued=4096 lost=3 gap_bytes=9 blind_ms=2005");
	assert_int_equal(st_statline_prometheus(&l, f, "shadow"), 0);
	assert_int_equal(st_statline_prometheus_jobs(ls, jobs, cmds, 1, f), 0);
	fclose(f);
	assert_non_null(strstr(out, "# TYPE shadowtap_queued_bytes gauge\n"
				    "shadowtap_queued_bytes{command=\"shadow\"} 4096\n"));
	assert_non_null(strstr(out, "# TYPE shadowtap_lost_bytes_total counter\n"
				    "shadowtap_lost_bytes_total{command=\"shadow\"} 3\n"));
	assert_non_null(strstr(out, "shadowtap_gap_bytes_total{command=\"shadow\"} 9\n"));
	assert_non_null(strstr(out, "# HELP shadowtap_blind_seconds_total milliseconds without input\n"
				    "# TYPE shadowtap_blind_seconds_total counter\n"
				    "shadowtap_blind_seconds_total{command=\"shadow\"} 2.005\n"));
	assert_non_null(strstr(out, "shadowtap_skipped_bytes_total{command=\"shadow\"} 0\n"));
	assert_non_null(strstr(out, "shadowtap_blind_seconds_total{job=\"web\",command=\"capture\"} 2.005\n"));
	assert_non_null(strstr(out, "shadowtap_queued_bytes{job=\"web\",command=\"capture\"} 4096\n"));
	assert_null(strstr(out, "_ms"));
	assert_null(strstr(out, "bytes_bytes"));
	free(out);
}

/* Every field of the engines' stats structs is in their tables, once, in order. */
static void test_tables_cover_structs(void **state)
{
	assert_int_equal(st_shadow_stat_n * sizeof(uint64_t), sizeof(struct st_shadow_stats));
	assert_int_equal(st_tap_stat_n * sizeof(uint64_t), sizeof(struct st_tap_summary));
	for (size_t i = 0; i < st_shadow_stat_n; i++) {
		assert_int_equal(st_shadow_stat_desc[i].off, i * sizeof(uint64_t));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(st_shadow_stat_desc[i].name,
						st_shadow_stat_desc[j].name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_prometheus),
		cmocka_unit_test(test_prometheus_jobs),
		cmocka_unit_test(test_labeled),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_tables_cover_structs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
