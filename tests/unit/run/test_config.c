/* SPDX-License-Identifier: GPL-2.0-only */
/* The daemon's config file (config.c): sections, entries, lines, and keys checked through
 * the same optparse rows the command line uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "optparse.h"

struct job {
	const char *iface;
	int nports;
	double duration;
	bool fast;
};

static int add_port(void *obj, const char *val, char *err, size_t errlen)
{
	((struct job *)obj)->nports++;
	return 0;
}

static const struct st_opt job_opts[] = {
	ST_OPT_STRING("iface", 'i', struct job, iface, "IFACE", "interface"),
	ST_OPT_FUNC("port", 'p', "P", ST_OPTF_REPEAT, add_port, "port"),
	ST_OPT_DOUBLE("duration", 0, struct job, duration, "SEC", 0.001, 100, "stop after"),
	ST_OPT_FLAG("fast", 0, struct job, fast, "fast"),
};

static char path[64];

static int load(struct st_config_file *c, const char *text)
{
	int fd;

	strcpy(path, "/tmp/st-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return st_config_load(c, path);
}

static void test_good(void **state)
{
	struct st_config_file c;
	const struct st_config_section *d;
	struct job j = { 0 };
	struct st_optset set = ST_OPTSET(job_opts, &j);

	assert_int_equal(load(&c, "# comment\n[daemon]\nmetrics = 127.0.0.1:9464\n\n"
				  "[capture web]\niface = eth0\nport = 80\nport = 443 ; inline\n"
				  "duration = 2.5\nfast = yes\n"
				  "[shadow canary]\niface = lo\n"), 0);
	assert_int_equal(c.n, 3);
	d = st_config_daemon(&c);
	assert_non_null(d);
	assert_null(d->name);
	assert_string_equal(d->e[0].key, "metrics");
	assert_int_equal(d->e[0].line, 3);
	assert_string_equal(c.s[1].command, "capture");
	assert_string_equal(c.s[1].name, "web");
	assert_int_equal(c.s[1].line, 5);
	assert_int_equal(c.s[1].n, 5);
	assert_string_equal(c.s[1].e[2].value, "443");
	assert_int_equal(c.s[1].e[2].line, 8);
	assert_int_equal(st_config_apply(&c, &c.s[1], &set, 1), 0);
	assert_string_equal(j.iface, "eth0");
	assert_int_equal(j.nports, 2);
	assert_true(j.duration == 2.5);
	assert_true(j.fast);
	assert_true(st_config_section_equal(&c.s[1], &c.s[1]));
	assert_false(st_config_section_equal(&c.s[1], &c.s[2]));
	st_config_free(&c);
	unlink(path);
}

static void test_bad(void **state)
{
	static const char *const files[] = {
		"[capture]\niface = x\n",                     /* a job needs a name */
		"[daemon x]\n",                                /* daemon has none */
		"[capture a]\n[shadow a]\n",                   /* a name used twice */
		"[daemon]\n[daemon]\n",
		"port = 80\n",                                 /* outside any section */
		"[capture a b]\n",                             /* not a word */
		"[capture a]\nthis is not ini\n",
		"[capture a\n",
	};
	struct st_config_file c;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		assert_int_equal(load(&c, files[i]), -1);
		st_config_free(&c);
		unlink(path);
	}
	assert_int_equal(st_config_load(&c, "/nonexistent/shadowtap.conf"), -1);
	st_config_free(&c);
}

static void test_apply_errors(void **state)
{
	static const char *const files[] = {
		"[capture a]\nfrobnicate = 1\n",               /* unknown key */
		"[capture a]\niface = x\niface = y\n",         /* not repeatable */
		"[capture a]\nduration = soon\n",              /* bad value */
		"[capture a]\nfast = maybe\n",                 /* a flag is true or false */
	};
	struct st_config_file c;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct job j = { 0 };
		struct st_optset set = ST_OPTSET(job_opts, &j);

		assert_int_equal(load(&c, files[i]), 0);
		assert_int_equal(st_config_apply(&c, &c.s[0], &set, 1), -1);
		st_config_free(&c);
		unlink(path);
	}
}

/* st_config_load(p) with stderr caught: its return, and what it said in said. */
static int load_said(struct st_config_file *c, const char *p, char *said, size_t len)
{
	FILE *t = tmpfile();
	int saved = dup(2), rc;
	size_t n;

	assert_non_null(t);
	fflush(stderr);
	dup2(fileno(t), 2);
	rc = st_config_load(c, p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(t);
	n = fread(said, 1, len - 1, t);
	said[n] = 0;
	fclose(t);
	return rc;
}

/* A file of head, a value of n 'x', then tail. */
static void write_long(const char *p, const char *head, size_t n, const char *tail)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(head, f);
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	fputs(tail, f);
	fclose(f);
}

/* Lines up to ST_CONFIG_LINE_MAX bytes (a real match-path regex is longer than inih's 200),
 * the next byte refused by its line; a NUL byte named as such. */
static void test_long_lines(void **state)
{
	char p[] = "/tmp/st-config-long-XXXXXX", said[1024];
	const char *head = "[daemon]\n[capture web]\nmatch = ";
	struct st_config_file c;
	int fd = mkstemp(p);

	assert_true(fd >= 0);
	close(fd);
	/* "match = " and the value: the whole line ST_CONFIG_LINE_MAX bytes, then '\n' */
	write_long(p, head, ST_CONFIG_LINE_MAX - 8, "\niface = lo\n");
	assert_int_equal(load_said(&c, p, said, sizeof(said)), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.s[1].n, 2);
	assert_int_equal(strlen(c.s[1].e[0].value), ST_CONFIG_LINE_MAX - 8);
	assert_string_equal(c.s[1].e[1].key, "iface");
	assert_int_equal(c.s[1].e[1].line, 4);
	st_config_free(&c);
	/* the last line without its '\n' */
	write_long(p, head, ST_CONFIG_LINE_MAX - 8, "");
	assert_int_equal(load_said(&c, p, said, sizeof(said)), 0);
	assert_int_equal(strlen(c.s[1].e[0].value), ST_CONFIG_LINE_MAX - 8);
	st_config_free(&c);
	write_long(p, head, ST_CONFIG_LINE_MAX - 7, "\niface = lo\n");
	assert_int_equal(load_said(&c, p, said, sizeof(said)), -1);
	assert_non_null(strstr(said, ":3: line longer than 65536 bytes"));
	st_config_free(&c);
	{
		FILE *f = fopen(p, "w");

		assert_non_null(f);
		fwrite("[capture web]\niface = l\0o\n", 1, 27, f);
		fclose(f);
	}
	assert_int_equal(load_said(&c, p, said, sizeof(said)), -1);
	assert_non_null(strstr(said, ":2: a NUL byte (column 10): the file is not text"));
	st_config_free(&c);
	unlink(p);
	(void)state;
}

/* Only regular files: a FIFO (which would block the reader until a writer came), a
 * directory and an empty file are refused at once, each with what it is. */
static void test_not_a_file(void **state)
{
	char d[] = "/tmp/st-config-dir-XXXXXX", p[64], said[512];
	struct st_config_file c;

	assert_non_null(mkdtemp(d));
	assert_int_equal(load_said(&c, d, said, sizeof(said)), -1);
	assert_non_null(strstr(said, "not a regular file (a directory)"));
	snprintf(p, sizeof(p), "%s/fifo", d);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(load_said(&c, p, said, sizeof(said)), -1);
	assert_non_null(strstr(said, "not a regular file (a FIFO)"));
	unlink(p);
	snprintf(p, sizeof(p), "%s/empty", d);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(load_said(&c, p, said, sizeof(said)), -1);
	assert_non_null(strstr(said, "the file is empty"));
	unlink(p);
	rmdir(d);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_apply_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_not_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
