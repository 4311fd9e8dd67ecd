/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The load report's writers (agent/load/load_report.c): the JSON has the fixed keys people
 * and scripts read; the HTML page is self-contained (no script, nothing fetched) and holds
 * the summary, the percentile chart of both latencies, the timeline, the steps, errors by
 * kind and endpoints, every name from the traffic escaped; the JSON holds its sections in the
 * page's order.
 */
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

#include "load.h"
#include "load_report.h"
#include "text_order.h"

#define MS 1000000ull
#define S0 (1000ull * 1000000000)

static struct st_load *run(bool steps)
{
	struct st_load_config c = { .rate = 200, .duration_s = 3, .pace = ST_LOAD_PACE_CONSTANT,
				    .command = "replay", .target = "t<1>:80" };
	struct st_http_head h = { .method_str = "GET", .method_len = 3,
				  .target = "/<script>alert(1)</script>",
				  .target_len = 26 };
	struct st_load *l;
	uint64_t d;
	uint32_t t;

	if (steps) {
		c.steps[0] = 100;
		c.steps[1] = 200;
		c.nsteps = 2;
		c.step_s = 1;
	}
	l = st_load__new(&c);
	assert_non_null(l);
	st_load__start(l, S0, 1700000000ull * 1000000000);
	t = st_load_ops.tag(l, &h);
	for (unsigned i = 0; (d = st_load_ops.due(l, 0, S0)) != ST_SHADOW_NEVER; i++) {
		struct st_shadow_done dn = { .tag = t, .due = d, .sent = d + MS,
					     .end = d + (i % 10 ? 5 : 50) * MS, .status = 200 };

		st_load_ops.taken(l, 0, d, d);
		if (i % 100 == 50)
			dn.fail = ST_SHADOW_F_TIMEOUT;
		st_load_ops.done(l, &dn);
	}
	st_load__finish(l, S0 + 4000 * MS, 1700000000ull * 1000000000 + 4000 * MS);
	return l;
}

static char *report_of(const struct st_load_agg *a, bool json)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	if (json)
		st_load_report_json(f, a, 1700000000ull * 1000000000);
	else
		st_load_report_html(f, a, 1700000000ull * 1000000000, "cmp<x>.html");
	fclose(f);
	return out;
}

static void test_json_keys(void **state)
{
	struct st_load *l = run(true);
	char *j = report_of(st_load__agg(l, 0, 0), true);
	static const char *const keys[] = {
		"\"format\": \"shadowtap-load-report\"", "\"target_rps\": 200", "\"achieved_rps\": ",
		"\"sent\": ", "\"answered\": ", "\"errors\": {\"connect_refused\": 0",
		"\"timeout\": ", "\"latency_ms\": {\"p50\": ", "\"p90\": ", "\"p99\": ",
		"\"p999\": ", "\"max\": ", "\"latency_raw_ms\": {\"p50\": ", "\"steps\": [",
		"{\"rps\": 100, \"achieved_rps\": ", "\"endpoints\": [", "{\"endpoint\": \"GET /",
		"\"late_sends\": 0", "\"timeline\": {\"bucket_s\": 1", "\"hdr\": [[",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strstr(j, keys[i]))
			fail_msg("the JSON report has no %s:\n%.2000s", keys[i], j);
	free(j);
	st_load__free(l);
}

static void test_html(void **state)
{
	for (int steps = 0; steps < 2; steps++) {
		struct st_load *l = run(steps);
		char *h = report_of(st_load__agg(l, 0, 0), false);
		static const char *const parts[] = {
			"<section id=\"summary\"", "id=\"achieved\"", "id=\"p99\"",
			"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"percentile-chart\"",
			"<polyline class=\"corrected\"", "<polyline class=\"raw\"", "id=\"rate-chart\"",
			"id=\"latency-chart\"", "id=\"errors-chart\"", "data-kind=\"timeout\"",
			"<table id=\"endpoints\"", "t&lt;1&gt;:80", "cmp&lt;x&gt;.html", "on schedule",
		};

		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (!strstr(h, parts[i]))
				fail_msg("the HTML report has no %s", parts[i]);
		assert_true(!strstr(h, "<script") && !strstr(h, "alert(1)</"));
		assert_non_null(strstr(h, "&lt;script&gt;"));
		/* nothing fetched */
		assert_null(strstr(h, "src="));
		assert_null(strstr(h, "<link"));
		assert_true(!steps == !strstr(h, "<section id=\"steps\""));
		assert_true(!steps == !strstr(h, "id=\"steps-chart\""));
		free(h);
		st_load__free(l);
	}
}

/* The JSON keeps its sections in the page's reading order (load_report.c, one table for both):
 * summary, latency, timeline, steps, errors, endpoints. */
static void test_section_order(void **state)
{
	static const char *const json[] = {
		"{\n  \"format\": ", "\n  \"target_rps\": ", "\n  \"latency_ms\": {",
		"\n  \"timeline\": {", "\n  \"steps\": [", "\n  \"errors\": {",
		"\n  \"endpoints\": [",
	};
	static const char *const html[] = {
		"<header>", "<section id=\"summary\"", "<section id=\"latency\"",
		"<section id=\"timeline\"", "<section id=\"steps\"", "<section id=\"errors\"",
		"<table id=\"endpoints\"", "<section id=\"notes\"",
	};
	struct st_load *l = run(true);
	const struct st_load_agg *a = st_load__agg(l, 0, 0);
	char *j = report_of(a, true), *h = report_of(a, false);

	assert_in_order(j, json, sizeof(json) / sizeof(json[0]), "JSON");
	assert_in_order(h, html, sizeof(html) / sizeof(html[0]), "HTML");
	free(h);
	free(j);
	st_load__free(l);
	(void)state;
}

/* A report that cannot be written is counted at every try and said once (not at every
 * --report-interval); one that can is written whole, 0600 by default. */
static void test_write_errors(void **state)
{
	struct st_load *l = run(false);
	struct st_load_stats st;
	char dir[] = "/tmp/st-load-report.XXXXXX", path[64], *said = NULL;
	size_t len = 0;
	FILE *cap = open_memstream(&said, &len);
	int saved = dup(STDERR_FILENO), fd[2];
	struct stat sb;

	assert_non_null(cap);
	assert_int_equal(pipe(fd), 0);
	fflush(stderr);
	dup2(fd[1], STDERR_FILENO);
	assert_int_equal(st_load_report_write(l, "/dev/full", NULL, NULL, "replay", 0), -1);
	assert_int_equal(st_load_report_write(l, "/dev/full", NULL, NULL, "replay", 0), -1);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(fd[1]);
	for (;;) {
		char b[256];
		ssize_t n = read(fd[0], b, sizeof(b));

		if (n <= 0)
			break;
		fwrite(b, 1, (size_t)n, cap);
	}
	close(fd[0]);
	fclose(cap);
	assert_non_null(strstr(said, "replay: /dev/full: "));
	assert_int_equal(strchr(said, '\n') - said + 1, (long)strlen(said)); /* one line */
	st_load__stats(l, &st);
	assert_int_equal(st.load_output_errors, 2);
	assert_int_equal(st_load__output_errors(l), 2);
	assert_int_equal(st_load__output_errors(NULL), 0);

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/load.json", dir);
	assert_int_equal(st_load_report_write(l, NULL, path, NULL, "replay", 0), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(sb.st_size > 100);
	assert_int_equal(st_load__output_errors(l), 2);
	unlink(path);
	rmdir(dir);
	free(said);
	st_load__free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_keys),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_section_order),
		cmocka_unit_test(test_write_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
