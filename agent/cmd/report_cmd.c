/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap report --merge A.json B.json ... -o fleet.html [--report-json merged.json]`:
 * partial tap-compare reports (each host's or Kafka receiver's --report-json) merged into
 * one fleet report, written by the writers one run uses (docs/COMPARE.md, "Merging reports
 * across a fleet"); or load test reports of several generators (docs/LOAD.md): the first
 * file's "format" says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "compare_merge.h"
#include "json_read.h"
#include "load_merge.h"
#include "load_report.h"
#include "log.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"

struct report_cli {
	bool merge;
	const char *report;
	const char *report_json;
	mode_t out_mode; /* --output-mode */
	bool fail_on_regression, fail_on_slower;
};

static const struct st_opt report_rows[] = {
	ST_OPT_FLAG("merge", 0, struct report_cli, merge,
		    "merge the JSON reports given as arguments into one: counts\n"
		    "and latency histograms add, verdicts and percentiles are\n"
		    "computed again (tap compare's reports, or load tests')"),
	ST_OPT_STRING("report", 'o', struct report_cli, report, "FILE.html",
		      "the merged report: one self-contained HTML file"),
	ST_OPT_STRING("report-json", 0, struct report_cli, report_json, "FILE.json",
		      "the merged report as JSON (it can be merged again)"),
	ST_OPT_FLAG("fail-on-regression", 0, struct report_cli, fail_on_regression,
		    "exit status 3 when the merged verdict has a regression"),
	ST_OPT_FLAG("fail-on-slower", 0, struct report_cli, fail_on_slower,
		    "exit status 3 when the merged verdict has a slower endpoint"),
};

static const char usage_head[] =
	"Usage: shadowtap report --merge A.json B.json ... -o FILE.html [--report-json FILE.json]\n\n"
	"Merges tap compare reports (shadow/replay --report-json, format 2) written on\n"
	"several hosts into one fleet report. Their thresholds, reference and --endpoint\n"
	"patterns must agree. Ends with the merged verdict and a summary line on stderr.\n"
	"Or load test reports (replay/receive --rate ... --report-json) of generators that\n"
	"ran side by side: their histograms add, their steps must agree (a summary line).\n\n";

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef void (*writer_fn)(FILE *f, const void *report, bool json, uint64_t now);

/* Writes a merged report to path as HTML or JSON (through a temporary file). */
static int write_one(const char *path, bool json, writer_fn fn, const void *report, uint64_t now,
		     mode_t mode)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	f = open_memstream(&buf, &len);
	if (!f) {
		pr_err("report: out of memory");
		return -1;
	}
	fn(f, report, json, now);
	if (fclose(f)) {
		free(buf);
		pr_err("report: out of memory");
		return -1;
	}
	err = st_output_replace(path, buf, len, ST_OUT_NONBLOCK, mode);
	free(buf);
	if (err) {
		pr_err("report: %s: %s", path, st_output_strerror(err));
		return -1;
	}
	return 0;
}

static void write_compare(FILE *f, const void *report, bool json, uint64_t now)
{
	const struct st_cmp_report *m = report;
	const char *hostv[ST_CMP_HOSTS_MAX];
	struct st_cmp_run run;

	st_cmp_report_run(m, &run, hostv, now);
	if (json)
		st_cmp_report_json(f, &m->agg, &run);
	else
		st_cmp_report_html(f, &m->agg, &run);
}

static void write_load(FILE *f, const void *report, bool json, uint64_t now)
{
	if (json)
		st_load_report_json(f, report, now);
	else
		st_load_report_html(f, report, now, NULL);
}

static int write_outputs(const struct report_cli *cli, writer_fn fn, const void *report)
{
	uint64_t now = realtime_ns();

	if (cli->report && write_one(cli->report, false, fn, report, now, cli->out_mode))
		return ST_EXIT_RUNTIME;
	if (cli->report_json && write_one(cli->report_json, true, fn, report, now, cli->out_mode))
		return ST_EXIT_RUNTIME;
	return ST_EXIT_OK;
}

/* A kind of report: how one is read, added to the merge, let go, and the merge written. */
struct kind {
	int (*read)(void *part, const char *path, char *err, size_t errlen);
	int (*merge)(void *m, const void *part, char *err, size_t errlen);
	void (*free_part)(void *part);
	writer_fn write;
};

static int cmp_read(void *part, const char *path, char *err, size_t errlen)
{
	return st_cmp_report_read(part, path, err, errlen);
}

static int cmp_merge(void *m, const void *part, char *err, size_t errlen)
{
	return st_cmp_report_merge(m, part, err, errlen);
}

static void cmp_free(void *part)
{
	st_cmp_report_free(part);
}

static int load_read(void *part, const char *path, char *err, size_t errlen)
{
	return st_load_report_read(part, path, err, errlen);
}

static int load_merge(void *m, const void *part, char *err, size_t errlen)
{
	return st_load_agg_merge(m, part, err, errlen);
}

static void load_free(void *part)
{
	st_load_agg_free(part);
}

static const struct kind compare_kind = { cmp_read, cmp_merge, cmp_free, write_compare };
static const struct kind load_kind = { load_read, load_merge, load_free, write_load };

/* Each file read and added to m in turn (part: room for one), then the merge written. */
static int merge_files(const struct report_cli *cli, const struct kind *k, void *m, void *part,
		       int argc, char **argv, int first)
{
	char err[512];

	for (int i = first; i < argc; i++) {
		int rc;

		if (k->read(part, argv[i], err, sizeof(err))) {
			pr_err("report: %s: %s", argv[i], err);
			return ST_EXIT_RUNTIME;
		}
		rc = k->merge(m, part, err, sizeof(err));
		k->free_part(part);
		if (rc) {
			pr_err("report: %s: cannot be merged with %s: %s", argv[i],
			       i == first + 1 ? argv[first] : "the reports before it", err);
			return ST_EXIT_RUNTIME;
		}
	}
	return write_outputs(cli, k->write, m);
}

/* Load test reports: their aggregates add (load_merge.h). */
static int merge_load(const struct report_cli *cli, int argc, char **argv, int first)
{
	struct st_load_agg *m = malloc(sizeof(*m)), *part = malloc(sizeof(*part));
	int rc;

	if (!m || !part || st_load_agg_init(m, 0)) {
		free(m);
		free(part);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	m->sources = 0; /* empty: the first report's plan */
	rc = merge_files(cli, &load_kind, m, part, argc, argv, first);
	if (rc == ST_EXIT_OK) {
		struct st_statline l;

		/* the summary line every command ends with (a load test has no verdict) */
		st_statline_init(&l);
		st_statline_add(&l, "merged", (uint64_t)(argc - first), ST_STAT_COUNTER,
				"reports merged");
		st_statline_add(&l, "due", m->due, ST_STAT_COUNTER,
				"requests the merged schedules made due");
		st_statline_add(&l, "answered", m->answered, ST_STAT_COUNTER,
				"requests answered, over every report");
		st_statline_add_fixed(&l, "achieved_rps", st_load_agg_achieved(m), 1, ST_STAT_GAUGE,
				      ST_STAT_UNIT_NONE, "answers per second, over the merged run");
		st_statline_add_fixed(&l, "p99_ms", st_load_ms(&m->lat, 99), 3, ST_STAT_GAUGE,
				      ST_STAT_UNIT_MS, "99th percentile latency of the merged histogram");
		st_statline_add(&l, "errors", st_load_agg_errors(m), ST_STAT_COUNTER,
				"requests that failed (no answer, refused, reset, timed out)");
		st_statline_print(&l, "summary");
	}
	st_load_agg_free(m);
	free(m);
	free(part);
	return rc;
}

/* The first report's kind: a load test's, or (anything else) tap compare's. */
static bool first_is_load(const char *path)
{
	char err[256];
	size_t len = 0;
	char *buf = st_json_read_file(path, ST_LOAD_REPORT_FILE_MAX, &len, err, sizeof(err));
	bool is = buf && st_load_report_is(buf, len);

	free(buf);
	return is;
}

int cmd_report(int argc, char **argv)
{
	struct report_cli cli = { 0 };
	const struct st_optset sets[] = {
		ST_OPTSET(report_rows, &cli),
		{ st_output_opts, st_output_opts_n, &cli.out_mode, NULL },
	};
	struct st_cmp_report *m = NULL, *part = NULL;
	char err[512];
	int rc, first;

	rc = st_opts_parse(sets, 2, "report", usage_head, argc, argv, &first);
	if (rc)
		return rc < 0 ? ST_EXIT_OK : rc;
	if (!cli.merge) {
		pr_err("report: --merge is required (shadowtap report --merge A.json B.json ... -o "
		       "FILE.html)");
		return ST_EXIT_USAGE;
	}
	if (first >= argc) {
		pr_err("report: --merge needs at least one JSON report to read");
		return ST_EXIT_USAGE;
	}
	if (!cli.report && !cli.report_json) {
		pr_err("report: an output is required: -o FILE.html and/or --report-json FILE.json");
		return ST_EXIT_USAGE;
	}
	{
		const char *paths[] = { cli.report, cli.report_json };
		const char *opts[] = { "-o", "--report-json" };

		if (st_output_distinct(paths, opts, 2, err, sizeof(err))) {
			pr_err("report: %s", err);
			return ST_EXIT_USAGE;
		}
	}
	if (first_is_load(argv[first]))
		return merge_load(&cli, argc, argv, first);
	m = malloc(sizeof(*m));
	part = malloc(sizeof(*part));
	if (!m || !part) {
		free(m);
		free(part);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	st_cmp_report_init(m);
	rc = merge_files(&cli, &compare_kind, m, part, argc, argv, first);
	if (rc == ST_EXIT_OK) {
		struct st_cmp_verdict v;
		struct st_statline l;

		/* the verdict, then the summary line every command ends with */
		st_cmp_agg_verdict(&m->agg, &v);
		st_cmp_verdict_print(&v, cli.report ? cli.report : cli.report_json);
		st_statline_init(&l);
		st_statline_add(&l, "merged", (uint64_t)(argc - first), ST_STAT_COUNTER,
				"reports merged");
		st_statline_add(&l, "endpoints", v.endpoints, ST_STAT_GAUGE,
				"endpoints in the merged report (other included)");
		st_statline_add(&l, "compared", m->agg.compared, ST_STAT_COUNTER, "pairs compared");
		st_statline_add(&l, "differing", m->agg.differing, ST_STAT_COUNTER,
				"pairs with a difference that is not noise");
		st_statline_add(&l, "noise_only", m->agg.noise_only, ST_STAT_COUNTER,
				"pairs whose every difference is noise");
		st_statline_add(&l, "regressions", v.regressions, ST_STAT_GAUGE,
				"fields that regressed");
		st_statline_add(&l, "slower", v.slower, ST_STAT_GAUGE, "endpoints slower");
		st_statline_print(&l, "summary");
		rc = st_cmp_verdict_status(&v, cli.fail_on_regression, cli.fail_on_slower);
	}
	st_cmp_report_free(m);
	free(m);
	free(part);
	return rc;
}
