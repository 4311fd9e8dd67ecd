/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap report --merge A.json B.json ... -o fleet.html [--report-json merged.json]`:
 * partial tap-compare reports (each host's or Kafka receiver's --report-json) merged into
 * one fleet report, written by the writers one run uses (docs/COMPARE.md, "Merging reports
 * across a fleet").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "compare_merge.h"
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
		    "and latency histograms add, verdicts are computed again"),
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
	"patterns must agree. Ends with the merged verdict and a summary line on stderr.\n\n";

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes the merged report to path as HTML or JSON (through a temporary file). */
static int write_one(const char *path, bool json, const struct st_cmp_report *m, uint64_t now,
		     mode_t mode)
{
	const char *hostv[ST_CMP_HOSTS_MAX];
	struct st_cmp_run run;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	st_cmp_report_run(m, &run, hostv, now);
	f = open_memstream(&buf, &len);
	if (!f) {
		pr_err("report: out of memory");
		return -1;
	}
	if (json)
		st_cmp_report_json(f, &m->agg, &run);
	else
		st_cmp_report_html(f, &m->agg, &run);
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

int cmd_report(int argc, char **argv)
{
	struct report_cli cli = { 0 };
	const struct st_optset sets[] = {
		ST_OPTSET(report_rows, &cli),
		{ st_output_opts, st_output_opts_n, &cli.out_mode, NULL },
	};
	struct st_cmp_report *m = NULL, *part = NULL;
	char err[512];
	uint64_t now;
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
	m = malloc(sizeof(*m));
	part = malloc(sizeof(*part));
	if (!m || !part) {
		free(m);
		free(part);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	st_cmp_report_init(m);
	rc = ST_EXIT_OK;
	for (int i = first; i < argc && rc == ST_EXIT_OK; i++) {
		if (st_cmp_report_read(part, argv[i], err, sizeof(err))) {
			pr_err("report: %s: %s", argv[i], err);
			rc = ST_EXIT_RUNTIME;
			break;
		}
		if (st_cmp_report_merge(m, part, err, sizeof(err))) {
			pr_err("report: %s: cannot be merged with %s: %s", argv[i],
			       i == first + 1 ? argv[first] : "the reports before it", err);
			rc = ST_EXIT_RUNTIME;
		}
		st_cmp_report_free(part);
	}
	now = realtime_ns();
	if (rc == ST_EXIT_OK && cli.report && write_one(cli.report, false, m, now, cli.out_mode))
		rc = ST_EXIT_RUNTIME;
	if (rc == ST_EXIT_OK && cli.report_json && write_one(cli.report_json, true, m, now, cli.out_mode))
		rc = ST_EXIT_RUNTIME;
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
