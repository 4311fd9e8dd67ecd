/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A load test's options (load_opts.c): durations with units, the refusals across options
 * (each one line, no newline: the command prints it and exits 2), and the reports' moves: in
 * a load test --report is the load test's, tap compare's goes next to it only when compare
 * runs, and --endpoint alone does not turn compare on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_opts.h"
#include "load_opts.h"
#include "optparse.h"

struct cli {
	struct st_load_opts lo;
	struct st_cmp_opts cmp;
};

/* argv parsed with the load and compare rows (as replay and receive bind them: compare's
 * tuning rows hold --report-interval), then
 * checked: 0, or -1 with the reason in err. A parse error fails the test. */
static int check(struct cli *c, bool input_paced, char *err, size_t errlen, int argc, char **argv)
{
	struct st_optset sets[] = {
		{ st_load_opts, st_load_opts_n, &c->lo, NULL },
		{ st_cmp_opts, st_cmp_opts_n, &c->cmp, NULL },
		{ st_cmp_tuning_opts, st_cmp_tuning_opts_n, &c->cmp, ST_OPT_TITLE_COMPARE },
	};
	int first;

	memset(c, 0, sizeof(*c));
	err[0] = 0;
	assert_int_equal(st_optset_parse(sets, 3, "replay", "Usage: replay\n", argc, argv, &first),
			 0);
	return st_load_opts_check(&c->lo, &c->cmp, input_paced, err, errlen);
}

#define ARGV(...) ((char *[]){ "replay", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "replay", __VA_ARGS__ }) / sizeof(char *)))
#define CHECK(c, paced, err, ...) \
	check(c, paced, err, sizeof(err), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

/* Every SEC option takes units, like the rest of the command line. */
static void test_units(void **state)
{
	static struct cli c;
	char err[256];

	assert_int_equal(CHECK(&c, false, err, "--rate", "500", "--duration", "2m", "--ramp",
			       "1500ms", "--timeout", "3s"), 0);
	assert_true(c.lo.on);
	assert_true(c.lo.rate == 500 && c.lo.duration_s == 120);
	assert_true(c.lo.ramp_s == 1.5 && c.lo.timeout_s == 3);
	assert_int_equal(CHECK(&c, false, err, "--steps", "100,200.5,400", "--step-sec", "1m"), 0);
	assert_int_equal(c.lo.nsteps, 3);
	assert_true(c.lo.steps[1] == 200.5 && c.lo.step_s == 60);
	/* the defaults */
	assert_int_equal(CHECK(&c, false, err, "--steps", "10"), 0);
	assert_true(c.lo.step_s == ST_LOAD_STEP_SEC_DEFAULT);
	assert_true(c.lo.timeout_s == ST_LOAD_TIMEOUT_DEFAULT);
	assert_int_equal(c.lo.pace, ST_LOAD_PACE_RECORDED);
	/* receive paces constant */
	assert_int_equal(CHECK(&c, true, err, "--rate", "10"), 0);
	assert_int_equal(c.lo.pace, ST_LOAD_PACE_CONSTANT);
	/* not a load test: nothing to check, nothing moved */
	assert_int_equal(CHECK(&c, false, err, "--report", "r.html"), 0);
	assert_false(c.lo.on);
	assert_string_equal(c.cmp.report, "r.html");
}

static void test_refusals(void **state)
{
	static const struct {
		bool paced;
		const char *a[6];
		const char *says;
	} bad[] = {
		{ false, { "--duration", "10" }, "--duration is a load test's" },
		{ false, { "--connections", "4" }, "--connections is a load test's" },
		{ false, { "--pace", "constant" }, "--pace is a load test's" },
		{ false, { "--rate", "5", "--steps", "1,2" }, "not both" },
		{ false, { "--steps", "1,2", "--ramp", "3" }, "no --ramp" },
		{ false, { "--steps", "1,2", "--duration", "3" }, "no --duration" },
		{ false, { "--rate", "5", "--step-sec", "3" }, "--step-sec is the length" },
		{ false, { "--rate", "5", "--ramp", "10", "--duration", "5" }, "longer than" },
		{ true, { "--rate", "5", "--pace", "recorded" }, "receive paces" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct cli c;
		char *argv[8] = { "replay" }, err[256];
		int argc = 1;

		for (int k = 0; k < 6 && bad[i].a[k]; k++)
			argv[argc++] = (char *)bad[i].a[k];
		argv[argc] = NULL;
		if (!check(&c, bad[i].paced, err, sizeof(err), argc, argv))
			fail_msg("case %zu was accepted", i);
		if (!strstr(err, bad[i].says) || strchr(err, '\n'))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].says);
	}
}

/* Bad values are refused by the rows themselves (the parser's one line, exit 2). */
static void test_bad_values(void **state)
{
	static const char *const bad[][2] = {
		{ "--rate", "0" },       { "--rate", "fast" },     { "--steps", "" },
		{ "--steps", "1,,2" },   { "--steps", "1,-2" },    { "--pace", "bursty" },
		{ "--duration", "1x" },  { "--step-sec", "0.01" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct cli c;
		struct st_optset sets[] = { { st_load_opts, st_load_opts_n, &c.lo, NULL } };
		char *argv[] = { "replay", (char *)bad[i][0], (char *)bad[i][1], NULL };
		int first;

		memset(&c, 0, sizeof(c));
		if (st_optset_parse(sets, 1, "replay", "Usage: replay\n", 3, argv, &first) != 2)
			fail_msg("case %zu (%s %s) was accepted", i, bad[i][0], bad[i][1]);
	}
}

/* In a load test the reports are its own; compare's go next to them when compare runs. */
static void test_reports(void **state)
{
	static struct cli c;
	char err[256];

	assert_int_equal(CHECK(&c, false, err, "--rate", "5", "--report", "out/load.html",
			       "--report-json", "load.json", "--endpoint", "GET /u/{id}"), 0);
	assert_string_equal(c.lo.report, "out/load.html");
	assert_string_equal(c.lo.report_json, "load.json");
	assert_null(c.cmp.report);
	assert_null(c.cmp.report_json);
	assert_false(st_cmp_opts_given(&c.cmp)); /* --endpoint names the load test's endpoints */
	assert_int_equal(c.cmp.n_patterns, 1);

	assert_int_equal(CHECK(&c, false, err, "--rate", "5", "--report", "out/load.html",
			       "--report-json", "load.json", "--compare", "--report-interval", "5"),
			 0);
	assert_true(st_cmp_opts_given(&c.cmp));
	assert_string_equal(c.cmp.report, "out/load.compare.html");
	assert_string_equal(c.cmp.report_json, "load.compare.json");
	assert_true(c.lo.report_every_s == 5 && c.cmp.report_every_s == 5);
}

/* What a start line says of the options. */
static void test_describe(void **state)
{
	static struct cli c;
	char err[256], buf[256];

	assert_int_equal(CHECK(&c, false, err, "--rate", "500", "--duration", "1m", "--ramp", "10",
			       "--pace", "constant", "--connections", "32", "--report", "l.html"), 0);
	assert_string_equal(st_load_opts_describe(&c.lo, buf, sizeof(buf)),
			    "at 500 req/s for 60 s (ramp 10 s), pace constant, at most 32 "
			    "connections, report l.html");
	assert_int_equal(CHECK(&c, true, err, "--steps", "100,200,400.5"), 0);
	assert_string_equal(st_load_opts_describe(&c.lo, buf, sizeof(buf)),
			    "in steps of 100,200,400.5 req/s, 10 s each, pace constant");
	/* cut, never past the buffer */
	assert_int_equal(strlen(st_load_opts_describe(&c.lo, buf, 12)), 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
