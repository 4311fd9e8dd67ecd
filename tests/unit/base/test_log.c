// SPDX-License-Identifier: GPL-2.0-only
/* The logging module: levels, the one prefix, journald priorities only on the journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Runs the logging calls with stderr on a temporary file; returns what was written. */
static char *capture(const char *journal_stream_of_file, void (*fn)(void))
{
	static char out[4096];
	char path[] = "/tmp/st-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct stat st;
	char js[64];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, 2), 2);
	unsetenv("JOURNAL_STREAM");
	if (journal_stream_of_file) {
		assert_int_equal(fstat(fd, &st), 0);
		snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino + (strcmp(journal_stream_of_file, "other") ? 0 : 1));
		setenv("JOURNAL_STREAM", js, 1);
	}
	fn();
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	unsetenv("JOURNAL_STREAM");
	assert_true(n >= 0);
	out[n] = 0;
	return out;
}

static void lines(void)
{
	st_log_set_level(ST_LOG_INFO);
	pr_err("bad %d", 1);
	pr_warn("careful\n"); /* a trailing newline is not doubled */
	pr_info("fyi");
	pr_debug("hidden");
	st_log_set_level(ST_LOG_WARN);
}

static void t_plain(void **state)
{
	assert_string_equal(capture(NULL, lines),
			    "shadowtap: bad 1\nshadowtap: careful\nshadowtap: fyi\n");
	(void)state;
}

static void t_journal(void **state)
{
	assert_string_equal(capture("this", lines),
			    "<3>shadowtap: bad 1\n<4>shadowtap: careful\n<6>shadowtap: fyi\n");
	(void)state;
}

/* JOURNAL_STREAM inherited, but stderr was redirected elsewhere: no priorities. */
static void t_journal_other_stream(void **state)
{
	assert_string_equal(capture("other", lines),
			    "shadowtap: bad 1\nshadowtap: careful\nshadowtap: fyi\n");
	(void)state;
}

static void long_line(void)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	pr_err("%s", big);
}

/* One line per call, cut at the buffer, still ended by a newline. */
static void t_long(void **state)
{
	const char *out = capture(NULL, long_line);

	assert_int_equal(strlen(out), strlen("shadowtap: ") + 1023 + 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	(void)state;
}

/* st_log_escape: what a stream or traffic says reaches a terminal inert, and fits. */
static void t_escape(void **state)
{
	char out[64];

	assert_string_equal(st_log_escape(out, sizeof(out), "prod-1.example", 14), "prod-1.example");
	/* a terminal's title and clear-screen sequences, a newline that would forge a line */
	assert_string_equal(st_log_escape(out, sizeof(out), "h\x1b]0;x\x07\x1b[2J\nshadowtap: ok", 25),
			    "h\\x1b]0;x\\x07\\x1b[2J\\x0ashadowtap: ok");
	/* a backslash is doubled (the output reads one way), NUL, DEL and 8-bit bytes escaped */
	assert_string_equal(st_log_escape(out, sizeof(out), "a\\b\0c\x7f\x9b\xff", 8),
			    "a\\\\b\\x00c\\x7f\\x9b\\xff");
	assert_string_equal(st_log_escape(out, sizeof(out), "", 0), "");
	/* cut with "..." when it does not fit: never past dst, never half an escape */
	assert_string_equal(st_log_escape(out, 8, "abcdefgh", 8), "abcd...");
	assert_string_equal(st_log_escape(out, 8, "abcdefg", 7), "abcdefg");
	assert_string_equal(st_log_escape(out, 8, "ab\x1b\x1b", 4), "ab...");
	assert_string_equal(st_log_escape(out, 8, "\x1b", 1), "\\x1b");
	(void)state;
}

static void status_lines(void)
{
	st_log_set_level(ST_LOG_WARN);
	st_log_out("running: x");
	st_log_status("cap: 1/s");
	pr_warn("careful");
	st_log_status("cap: 2/s");
	st_log_status(NULL);
	st_log_out("summary a=1");
}

/* Output lines at every level; a status line is erased before each line and drawn again
 * after it, and erased for good at the end. */
static void t_status(void **state)
{
	assert_string_equal(capture(NULL, status_lines),
			    "shadowtap: running: x\n"
			    "\rcap: 1/s\033[K\r"
			    "\r\033[Kshadowtap: careful\ncap: 1/s\033[K\r"
			    "\rcap: 2/s\033[K\r"
			    "\r\033[K"
			    "shadowtap: summary a=1\n");
	(void)state;
}

static char captured[128];

static void capture_errors(void)
{
	st_log_set_level(ST_LOG_WARN);
	st_log_capture_begin(captured, sizeof(captured));
	pr_warn("not an error");
	st_log_set_context("job web");
	pr_err("first %d", 1);
	pr_err("second");
	st_log_set_context(NULL);
	st_log_capture_end();
	pr_err("after");
}

/* The first error line between begin and end is kept (its context too), and printed all the
 * same. */
static void t_capture(void **state)
{
	assert_string_equal(capture(NULL, capture_errors),
			    "shadowtap: not an error\nshadowtap: job web: first 1\n"
			    "shadowtap: job web: second\nshadowtap: after\n");
	assert_string_equal(captured, "job web: first 1");
	(void)state;
}

/* -v's count as a level: none warn, one info, two or more debug. */
static void t_verbose(void **state)
{
	(void)state;
	st_log_set_verbose(0);
	assert_int_equal(st_log_get_level(), ST_LOG_WARN);
	st_log_set_verbose(1);
	assert_int_equal(st_log_get_level(), ST_LOG_INFO);
	st_log_set_verbose(2);
	assert_int_equal(st_log_get_level(), ST_LOG_DEBUG);
	st_log_set_verbose(5);
	assert_int_equal(st_log_get_level(), ST_LOG_DEBUG);
	st_log_set_level(ST_LOG_WARN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_plain),
		cmocka_unit_test(t_journal),
		cmocka_unit_test(t_journal_other_stream),
		cmocka_unit_test(t_long),
		cmocka_unit_test(t_escape),
		cmocka_unit_test(t_status),
		cmocka_unit_test(t_capture),
		cmocka_unit_test(t_verbose),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
