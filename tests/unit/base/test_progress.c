/* SPDX-License-Identifier: GPL-2.0-only */
/* Progress (progress.c): human sizes, the brief's format with rates and sub-entries, when a
 * --stats line and the status line are due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "progress.h"

static void test_human(void **state)
{
	char b[32];

	assert_string_equal(st_progress_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(st_progress_bytes(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(st_progress_bytes(1024, b, sizeof(b)), "1.0 KB");
	assert_string_equal(st_progress_bytes(312 * 1024, b, sizeof(b)), "312 KB");
	assert_string_equal(st_progress_bytes(1258291, b, sizeof(b)), "1.2 MB");
	assert_string_equal(st_progress_bytes(45ull << 20, b, sizeof(b)), "45 MB");
	assert_string_equal(st_progress_bytes(3ull << 40, b, sizeof(b)), "3.0 TB");
	(void)state;
}

static void fill(struct st_brief *b, uint64_t req, uint64_t bytes, uint64_t down, uint64_t queue)
{
	st_brief_init(b);
	st_brief_add(b, "requests", req, ST_BRIEF_RATE);
	st_brief_add(b, "written", bytes, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "dropped", down, 0);
	st_brief_add(b, "down", down, ST_BRIEF_SUB);
	st_brief_add(b, "queue full", 0, ST_BRIEF_SUB);
	st_brief_add(b, "queue", queue, ST_BRIEF_BYTES);
	st_brief_add(b, "read", 45, ST_BRIEF_PCT);
	st_brief_add(b, "eta", 80, ST_BRIEF_SECS);
}

static void test_format(void **state)
{
	struct st_brief a, b;
	char out[256];

	fill(&a, 100, 1000, 0, 0);
	/* no earlier reading: rates from zero over the interval */
	assert_string_equal(st_brief_format(&a, NULL, 2000000000ull, out, sizeof(out)),
			    "requests 50/s (100); written 500 B/s (1000 B); dropped 0; queue 0 B; "
			    "read 45%; eta 1m20s");
	fill(&b, 105, 1000 + (3ull << 20), 3, 12 * 1024);
	/* 5 requests and 3 MiB in half a second; the zero sub-entry is left out */
	assert_string_equal(st_brief_format(&b, &a, 500000000ull, out, sizeof(out)),
			    "requests 10/s (105); written 6.0 MB/s (3.0 MB); dropped 3 (down 3); "
			    "queue 12 KB; read 45%; eta 1m20s");
	assert_int_equal(st_brief_value(&b, "dropped"), 3);
	/* below 10/s: one decimal */
	fill(&b, 101, 1000, 0, 0);
	assert_string_equal(st_brief_format(&b, &a, 1000000000ull, out, sizeof(out)),
			    "requests 1.0/s (101); written 0 B/s (1000 B); dropped 0; queue 0 B; "
			    "read 45%; eta 1m20s");
	(void)state;
}

/* A line every --stats SEC; the status line every second when on; neither when off. */
static void test_due(void **state)
{
	struct st_progress p;
	const uint64_t s = 1000000000ull;

	st_progress_init(&p, 0, false, "x", 10 * s);
	assert_false(st_progress_due(&p, 100 * s));
	st_progress_init(&p, 2, false, "x", 10 * s);
	assert_false(st_progress_due(&p, 11 * s));
	assert_true(st_progress_due(&p, 12 * s));
	st_progress_init(&p, 0, true, "x", 10 * s);
	assert_false(st_progress_due(&p, 10 * s + s / 2));
	assert_true(st_progress_due(&p, 11 * s));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
