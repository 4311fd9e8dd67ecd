/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * For the report writers' unit tests (test_compare_merge.c, test_load_report.c): marks that
 * must stand in a text in a given order (a report's sections). Include after <cmocka.h>;
 * static, one test file each.
 */
#ifndef ST_TEST_TEXT_ORDER_H
#define ST_TEST_TEXT_ORDER_H

#include <stddef.h>
#include <string.h>

/* Each of marks found in text, each after the one before it; what names the text. */
static void assert_in_order(const char *text, const char *const *marks, size_t n, const char *what)
{
	const char *at = text;

	for (size_t i = 0; i < n; i++) {
		const char *p = strstr(text, marks[i]);

		if (!p)
			fail_msg("the %s report has no %s", what, marks[i]);
		if (p < at)
			fail_msg("the %s report has %s before %s", what, marks[i], marks[i - 1]);
		at = p;
	}
}

#endif /* ST_TEST_TEXT_ORDER_H */
