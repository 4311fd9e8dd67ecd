/* SPDX-License-Identifier: GPL-2.0-only */
/* The table-driven option layer (optparse.c): parsing, ranges, help, sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optparse.h"
#include "opts.h"

struct demo {
	bool flag;
	int verbose;
	const char *out;
	uint32_t ring;
	uint64_t mem;
	double secs;
	int mode;
	int nports;
	char ports[64];
	int nsort;
	char sorts[64];
};

static const char *const modes[] = { "auto", "tcx", "clsact", NULL };

static int add_port(void *obj, const char *val, char *err, size_t errlen)
{
	struct demo *d = obj;

	if (strlen(val) > 5) {
		snprintf(err, errlen, "'%s' is too long", val);
		return -1;
	}
	strcat(d->ports, val);
	strcat(d->ports, ",");
	d->nports++;
	return 0;
}

/* An optional value: NULL without one ("every"), else the value. */
static int add_sort(void *obj, const char *val, char *err, size_t errlen)
{
	struct demo *d = obj;

	strcat(d->sorts, val ? val : "every");
	strcat(d->sorts, ",");
	d->nsort++;
	return 0;
}

static const struct st_opt demo_opts[] = {
	ST_OPT_FLAG("flag", 'f', struct demo, flag, "a flag"),
	ST_OPT_COUNT("verbose", 'v', struct demo, verbose, "more"),
	ST_OPT_STRING("write", 'w', struct demo, out, "FILE", "output"),
	ST_OPT_UINT("ring-mb", 0, struct demo, ring, "N", 1, 2048, ST_OPTF_POW2 | ST_OPTF_MIB,
		    "ring size"),
	ST_OPT_UINT("mem-mb", 0, struct demo, mem, "N", 1, 1 << 20, ST_OPTF_MIB, "memory"),
	ST_OPT_SECONDS("duration", 'd', struct demo, secs, 0.001, 1e9, "stop after SEC\nseconds"),
	ST_OPT_CHOICE("attach", 0, struct demo, mode, "MODE", modes, "attach mode"),
	ST_OPT_FUNC("port", 'p', "P", ST_OPTF_REPEAT, add_port, "a port"),
	ST_OPT_FUNC("sorted", 0, "PATH", ST_OPTF_REPEAT | ST_OPTF_OPTVAL, add_sort, "sort"),
};

static int parse(struct demo *d, int argc, char **argv, int *first)
{
	struct st_optset sets[] = { ST_OPTSET(demo_opts, d) };

	memset(d, 0, sizeof(*d));
	return st_optset_parse(sets, 1, "demo", "Usage: demo\n", argc, argv, first);
}

#define ARGV(...) ((char *[]){ "demo", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "demo", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(d, first, ...) parse(d, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), first)

static void test_parse(void **state)
{
	struct demo d;
	int first;

	assert_int_equal(PARSE(&d, &first, "-f", "-vv", "--write", "x.pcap", "--ring-mb", "8",
			       "--mem-mb=3", "-d", "2.5", "--attach", "clsact", "-p", "80", "--port",
			       "443", "pos1", "pos2"), 0);
	assert_true(d.flag);
	assert_int_equal(d.verbose, 2);
	assert_string_equal(d.out, "x.pcap");
	assert_int_equal(d.ring, 8u << 20);
	assert_int_equal(d.mem, 3ull << 20);
	assert_true(d.secs == 2.5);
	assert_int_equal(d.mode, 2);
	assert_int_equal(d.nports, 2);
	assert_string_equal(d.ports, "80,443,");
	assert_int_equal(first, ARGC("-f", "-vv", "--write", "x.pcap", "--ring-mb", "8",
				     "--mem-mb=3", "-d", "2.5", "--attach", "clsact", "-p", "80",
				     "--port", "443"));
}

/* --name alone, then --name=VALUE; a separate word after it is a positional argument. */
static void test_optional_value(void **state)
{
	struct demo d;
	int first;

	assert_int_equal(PARSE(&d, &first, "--sorted", "--sorted=$.a", "pos"), 0);
	assert_int_equal(d.nsort, 2);
	assert_string_equal(d.sorts, "every,$.a,");
	assert_int_equal(first, 3);
}

static void test_errors(void **state)
{
	struct demo d;
	int first;

	assert_int_equal(PARSE(&d, &first, "--ring-mb", "3"), ST_EXIT_USAGE);     /* not 2^n */
	assert_int_equal(PARSE(&d, &first, "--ring-mb", "4096"), ST_EXIT_USAGE);  /* range */
	assert_int_equal(PARSE(&d, &first, "--ring-mb", "-1"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--ring-mb", "8x"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--ring-mb", "99999999999999999999999"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--duration", "soon"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--duration", "0"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--attach", "both"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--port", "123456"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--frobnicate"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "-x"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--write"), ST_EXIT_USAGE);            /* no value */
	assert_int_equal(PARSE(&d, &first, "--write", ""), ST_EXIT_USAGE);
}

static void test_help(void **state)
{
	struct demo d;
	struct st_optset sets[] = { ST_OPTSET(demo_opts, &d) };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int first;

	st_optset_help(f, sets, 1);
	fclose(f);
	assert_non_null(strstr(buf, "  -w, --write FILE      output\n"));
	assert_non_null(strstr(buf, "      --ring-mb N       ring size\n"));
	/* continuation lines are indented under the help column */
	assert_non_null(strstr(buf, "stop after SEC\n                        seconds\n"));
	assert_non_null(strstr(buf, "  -h, --help"));
	assert_non_null(strstr(buf, "      --sorted[=PATH]   sort\n"));
	free(buf);
	assert_int_equal(PARSE(&d, &first, "--help"), -1);
}

static const struct st_opt tune_opts[] = {
	ST_OPT_UINT("ring", 0, struct demo, ring, "N", 1, 64, 0, "tuning a"),
};
static const struct st_opt tune2_opts[] = {
	ST_OPT_UINT("ring2", 0, struct demo, ring, "N", 1, 64, 0, "tuning b"),
};
static const struct st_opt other_opts[] = {
	ST_OPT_FLAG("other", 0, struct demo, flag, "other"),
};

/* Sets with a title come after the untitled ones, under their heading, sets of one title
 * together; the manual's part likewise. */
static void test_help_titles(void **state)
{
	struct demo d;
	struct st_optset sets[] = {
		ST_OPTSET_T(tune_opts, &d, "Tuning"),
		ST_OPTSET(demo_opts, &d),
		ST_OPTSET_T(other_opts, &d, "Other"),
		ST_OPTSET_T(tune2_opts, &d, "Tuning"),
	};
	char *buf = NULL, *t, *o;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int first;

	st_optset_help(f, sets, 4);
	fclose(f);
	t = strstr(buf, "\nTuning:\n      --ring N          tuning a\n      --ring2 N         tuning b\n");
	o = strstr(buf, "\nOther:\n      --other");
	assert_non_null(t);
	assert_non_null(o);
	assert_true(strstr(buf, "--write FILE") < t && t < o);
	assert_null(strstr(t + 2, "Tuning:"));
	free(buf);
	/* the rows parse wherever they are listed */
	{
		char *argv[] = { "demo", "--ring2", "7", "--other", NULL };

		memset(&d, 0, sizeof(d));
		assert_int_equal(st_optset_parse(sets, 4, "demo", "", 4, argv, &first), 0);
		assert_int_equal(d.ring, 7);
		assert_true(d.flag);
	}
}

static void test_find_and_set(void **state)
{
	struct demo d = { 0 };
	struct st_optset sets[] = { ST_OPTSET(demo_opts, &d) };
	const struct st_optset *set;
	const struct st_opt *o = st_optset_find(sets, 1, "duration", &set);

	assert_non_null(o);
	assert_ptr_equal(set, &sets[0]);
	assert_int_equal(st_opt_set(o, set->obj, "7", "file.conf:3: duration"), 0);
	assert_true(d.secs == 7);
	assert_null(st_optset_find(sets, 1, "nope", NULL));
}

static void test_sizes(void **state)
{
	static const struct st_opt o = ST_OPT_SIZE("max-mem", 0, struct demo, mem, "BYTES", 1 << 20,
						   1ull << 40, "memory");
	struct demo d = { 0 };

	assert_int_equal(st_opt_set(&o, &d, "512M", "--max-mem"), 0);
	assert_int_equal(d.mem, 512ull << 20);
	assert_int_equal(st_opt_set(&o, &d, "2GiB", "--max-mem"), 0);
	assert_int_equal(d.mem, 2ull << 30);
	assert_int_equal(st_opt_set(&o, &d, "17179869184G", "--max-mem"), -1); /* overflow */
	assert_int_equal(st_opt_set(&o, &d, "-1M", "--max-mem"), -1);
	assert_int_equal(st_opt_set(&o, &d, "1K", "--max-mem"), -1);           /* below min */
	assert_int_equal(st_opt_set(&o, &d, "", "--max-mem"), -1);
}

/* Durations take a unit wherever they are asked for; a bare number is seconds. */
static void test_seconds(void **state)
{
	static const struct {
		const char *in;
		double want;
	} ok[] = { { "90", 90 }, { "90s", 90 }, { "1.5m", 90 }, { "15m", 900 }, { "1h", 3600 },
		   { "500ms", 0.5 }, { "2d", 172800 }, { ".5", 0.5 }, { "0", 0 } };
	static const char *const bad[] = { "", "m", "-5", "+5", "5 m", "5x", "5mm", "1e999",
					   "inf", "nan", "h1", "5m30s" };
	struct demo d;
	double v;
	int first;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(st_optparse_seconds(ok[i].in, &v), 0);
		assert_true(v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(st_optparse_seconds(bad[i], &v), -1);
	assert_int_equal(PARSE(&d, &first, "--duration", "15m"), 0);
	assert_true(d.secs == 900);
	assert_int_equal(PARSE(&d, &first, "-d", "250ms"), 0);
	assert_true(d.secs == 0.25);
	assert_int_equal(PARSE(&d, &first, "--duration", "2000000000s"), ST_EXIT_USAGE); /* range */
}

/* Typos get the nearest name: a letter missing, one too many, two swapped, one wrong. */
static void test_nearest(void **state)
{
	static const char *const cmds[] = { "capture", "flows", "shadow", "replay", "tee",
					    "receive", "daemon", "ctl", "report" };
	const size_t n = sizeof(cmds) / sizeof(cmds[0]);
	struct demo d;
	char buf[512] = "";
	FILE *f = tmpfile();
	int first, saved = dup(2);

	assert_string_equal(st_optparse_nearest("captur", cmds, n), "capture");
	assert_string_equal(st_optparse_nearest("capturee", cmds, n), "capture");
	assert_string_equal(st_optparse_nearest("shadwo", cmds, n), "shadow");
	assert_string_equal(st_optparse_nearest("replya", cmds, n), "replay");
	assert_string_equal(st_optparse_nearest("recieve", cmds, n), "receive");
	assert_string_equal(st_optparse_nearest("te", cmds, n), "tee");
	assert_null(st_optparse_nearest("xyz", cmds, n));
	assert_null(st_optparse_nearest("catalogue", cmds, n));
	assert_null(st_optparse_nearest("", cmds, n));

	/* the message names it */
	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	assert_int_equal(PARSE(&d, &first, "--durration", "5"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--rign-mb=8"), ST_EXIT_USAGE);
	assert_int_equal(PARSE(&d, &first, "--zzzzzz"), ST_EXIT_USAGE);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(buf, "unknown option '--durration' (did you mean --duration?)"));
	assert_non_null(strstr(buf, "unknown option '--rign-mb=8' (did you mean --ring-mb?)"));
	assert_non_null(strstr(buf, "unknown option '--zzzzzz' (see shadowtap demo --help)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_optional_value),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_help_titles),
		cmocka_unit_test(test_find_and_set),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_nearest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
