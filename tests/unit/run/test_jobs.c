/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The job kinds (agent/run/job.h) the commands and the daemon share: each is found by its
 * command's name with the hooks a runner needs; no two rows of a kind's tables share a long
 * name (a config key must name one option); and a config section sets a job exactly as the
 * same options on the command line do (one table, no drift); the head they all start with
 * serves their target, run options and duration. Then `daemon --check` on files:
 * the exit status of each kind of error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "job.h"
#include "opts.h"

static const char *const kinds[] = { "capture", "flows", "shadow", "tee", "watch" };
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void test_kinds_found(void **state)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		const struct st_job_kind *k = st_job_kind_find(kinds[i]);

		assert_non_null(k);
		assert_string_equal(k->name, kinds[i]);
		assert_true(k->size > 0);
		assert_non_null(k->optsets);
		assert_non_null(k->check);
		assert_non_null(k->target);
		assert_non_null(k->run_opts);
		assert_non_null(k->duration);
		assert_non_null(k->describe);
		assert_non_null(k->brief);
		assert_non_null(k->start);
		assert_non_null(k->segment);
		assert_non_null(k->finish);
		assert_non_null(k->stats);
		assert_non_null(k->destroy);
		assert_true(k->tick_ms > 0);
	}
	assert_null(st_job_kind_find("replay")); /* no live input: not a job */
	assert_null(st_job_kind_find("daemon"));
}

static void test_unique_keys(void **state)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		const struct st_job_kind *k = st_job_kind_find(kinds[i]);
		struct st_optset sets[ST_JOB_MAX_OPTSETS];
		void *obj = calloc(1, k->size);
		size_t n;

		assert_non_null(obj);
		if (k->init)
			k->init(obj);
		n = k->optsets(obj, sets);
		assert_true(n <= ST_JOB_MAX_OPTSETS);
		for (size_t a = 0; a < n; a++)
			for (size_t r = 0; r < sets[a].n; r++)
				for (size_t b = 0; b < n; b++)
					for (size_t q = 0; q < sets[b].n; q++)
						if (a != b || r != q)
							assert_string_not_equal(sets[a].opts[r].name,
										sets[b].opts[q].name);
		k->destroy(obj);
		free(obj);
	}
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/st-test-jobs.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* The same options from argv and from a section give the same target and the same checks. */
static void test_section_equals_argv(void **state)
{
	const struct st_job_kind *k = st_job_kind_find("shadow");
	char *argv[] = { "shadow", "--iface", "lo", "--port", "80", "--port", "8080", "--host",
			 "10.0.0.0/8", "--to", "127.0.0.1:9000", "--sample", "12.5", "--ring-mb",
			 "8", NULL };
	char *path = write_tmp("[shadow x]\niface = lo\nport = 80\nport = 8080\n"
			       "host = 10.0.0.0/8\nto = 127.0.0.1:9000\nsample = 12.5\n"
			       "ring-mb = 8\n");
	struct st_optset sa[ST_JOB_MAX_OPTSETS], sb[ST_JOB_MAX_OPTSETS];
	struct st_config_file cf = { 0 };
	void *a = calloc(1, k->size), *b = calloc(1, k->size);
	struct st_tap_opts oa = { 0 }, ob = { 0 };
	const struct st_target *ta, *tb;
	size_t na, nb;
	int first;

	k->init(a);
	k->init(b);
	na = k->optsets(a, sa);
	nb = k->optsets(b, sb);
	assert_int_equal(st_optset_parse(sa, na, "shadow", "", 15, argv, &first), 0);
	assert_int_equal(k->check(a, 15, argv, first), 0);
	assert_int_equal(st_config_load(&cf, path), 0);
	assert_int_equal(st_config_apply(&cf, &cf.s[0], sb, nb), 0);
	assert_int_equal(k->check(b, 0, NULL, 0), 0);
	ta = k->target(a);
	tb = k->target(b);
	assert_string_equal(ta->iface, tb->iface);
	assert_int_equal(ta->n_ports, 2);
	assert_int_equal(tb->n_ports, 2);
	assert_memory_equal(ta->ports, tb->ports, 2 * sizeof(ta->ports[0]));
	assert_int_equal(tb->n_hosts, 1);
	assert_memory_equal(&ta->hosts[0], &tb->hosts[0], sizeof(ta->hosts[0]));
	assert_int_equal(ta->ring_mb, tb->ring_mb);
	k->tap_opts(a, &oa);
	k->tap_opts(b, &ob);
	assert_int_equal(oa.sample_permyriad, 1250);
	assert_int_equal(ob.sample_permyriad, 1250);
	k->destroy(a);
	k->destroy(b);
	free(a);
	free(b);
	st_config_free(&cf);
	unlink(path);
	free(path);
}

/* The head every kind starts with (job.h): the shared options land in it, the kinds' hooks
 * read them from it, and a reload's retarget copies its ports and hosts. */
static void test_head(void **state)
{
	/* each kind's own required options after the shared ones */
	static const char *const own[N_KINDS][3] = {
		{ "-w", "a.pcap" }, { "--output", "d" }, { "--to", "127.0.0.1:9000" },
		{ "--output", "a.tee" }, { NULL },
	};

	for (size_t i = 0; i < N_KINDS; i++) {
		const struct st_job_kind *k = st_job_kind_find(kinds[i]);
		char *argv[20] = { (char *)kinds[i], "--iface", "lo", "--port", "80", "--port",
				   "8080", "--host", "10.0.0.0/8", "-v", "-v", "--stats", "3",
				   "--duration", "7" };
		int argc = 15, first;
		struct st_optset sets[ST_JOB_MAX_OPTSETS];
		void *obj = calloc(1, k->size);
		struct st_job_head *h = obj;
		size_t n;

		for (size_t j = 0; own[i][j]; j++)
			argv[argc++] = (char *)own[i][j];
		assert_non_null(obj);
		if (k->init)
			k->init(obj);
		n = k->optsets(obj, sets);
		assert_int_equal(st_optset_parse(sets, n, kinds[i], "", argc, argv, &first), 0);
		assert_int_equal(k->check(obj, argc, argv, first), 0);
		assert_ptr_equal(k->target(obj), &h->target);
		assert_ptr_equal(k->run_opts(obj), &h->run);
		assert_string_equal(h->target.iface, "lo");
		assert_int_equal(h->target.n_ports, 2);
		assert_int_equal(h->target.n_hosts, 1);
		assert_int_equal(h->run.verbose, 2);
		assert_true(h->run.stats_s == 3);
		assert_true(k->duration(obj) == 7);
		k->destroy(obj);
		free(obj);
	}
}

/* A reload's filters: ports and hosts from the new head, the rest of the target kept. */
static void test_head_retarget(void **state)
{
	struct st_job_head a = { 0 }, b = { 0 };

	a.target.iface = "lo";
	a.target.n_ports = 1;
	a.target.ports[0] = 80;
	a.target.ring_mb = 8;
	b.target.n_ports = 2;
	b.target.ports[0] = 443;
	b.target.ports[1] = 8443;
	b.target.n_hosts = 1;
	b.target.hosts[0].prefix = 8;
	b.target.ring_mb = 64;
	st_job_head_retarget(&a, &b);
	assert_int_equal(a.target.n_ports, 2);
	assert_int_equal(a.target.ports[0], 443);
	assert_int_equal(a.target.ports[1], 8443);
	assert_int_equal(a.target.n_hosts, 1);
	assert_int_equal(a.target.hosts[0].prefix, 8);
	assert_string_equal(a.target.iface, "lo");
	assert_int_equal(a.target.ring_mb, 8);
}

static int check_file(const char *text)
{
	char *path = write_tmp(text);
	char *argv[] = { "daemon", "--config", path, "--check", NULL };
	FILE *saved = stdout;
	int rc;

	stdout = fopen("/dev/null", "w");
	rc = cmd_daemon(4, argv);
	fclose(stdout);
	stdout = saved;
	unlink(path);
	free(path);
	return rc;
}

static void test_check(void **state)
{
	assert_int_equal(check_file("[daemon]\nlog-level = debug\n[capture a]\niface = lo\nport = 80\n"
				    "write = a.pcap\nrotate-mb = 10\nkeep = 3\n[flows b]\n"
				    "iface = lo\nport = 80\noutput = d\n"), 0);
	assert_int_equal(check_file("[capture a]\niface = lo\nport = 80\nwrite = a.pcap\nkeep = 3\n"), 2);
	assert_int_equal(check_file("[capture a]\niface = lo\nport = 80\n"), 2);
	assert_int_equal(check_file("[capture a]\niface = lo\nport = 80\nwrite = x\nbogus = 1\n"), 2);
	assert_int_equal(check_file("[flows a]\nport = 80\noutput = d\n"), 2); /* no live input */
	assert_int_equal(check_file("[daemon]\nlog-level = loud\n"), 2);
	assert_int_equal(check_file("[shadow a]\niface = lo\nport = 80\nto = 127.0.0.1:1\ncompare = maybe\n"),
			 2);
	/* tee jobs: a file, a receiver, Kafka; the command's checks, and no stdout */
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\noutput = a.tee\n"
				    "redact-header = X-Token\nmax-rate = 2\n[tee b]\niface = lo\n"
				    "port = 80\nto = 127.0.0.1:7000\ninsecure = true\n[tee c]\n"
				    "iface = lo\nport = 80\nkafka = 127.0.0.1:9092\ntopic = t\n"
				    "kafka-opt = acks=all\n"), 0);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\noutput = -\n"), 2);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\n"), 2);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\noutput = a\nto = h:1\n"), 2);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\nto = 127.0.0.1:7000\n"), 2);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\nkafka = 127.0.0.1:9092\n"), 2);
	assert_int_equal(check_file("[tee a]\niface = lo\nport = 80\noutput = a\nno-redact = true\n"
				    "redact-header = X\n"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_found),
		cmocka_unit_test(test_unique_keys),
		cmocka_unit_test(test_section_equals_argv),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_head_retarget),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
