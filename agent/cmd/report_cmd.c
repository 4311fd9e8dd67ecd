/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap report`:
 *  - `--merge A.json B.json ... -o fleet.html [--report-json merged.json]`: partial
 *    tap-compare reports (each host's or Kafka receiver's --report-json) merged into one
 *    fleet report, written by the writers one run uses (docs/COMPARE.md, "Merging reports
 *    across a fleet"); or load test reports of several generators (docs/LOAD.md): the
 *    first file's "format" says which;
 *  - `--canary C.json ... --baseline B.json ... [-o canary.html] [--report-json v.json]`:
 *    watch's reports of two groups of hosts, the canary verdict (canary.h, docs/WATCH.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary.h"
#include "commands.h"
#include "compare_merge.h"
#include "json.h"
#include "load_merge.h"
#include "load_report.h"
#include "log.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "promread.h"

#define REPORT_FILES_MAX 4096 /* per group */
#define EXIT_CANARY_FAIL 3
#define EXIT_CANARY_LOW 4

struct report_cli {
	bool merge;
	const char *report;
	const char *report_json;
	mode_t out_mode; /* --output-mode */
	const char *files[ST_CANARY_NGROUPS][REPORT_FILES_MAX]; /* --canary, --baseline */
	unsigned nfiles[ST_CANARY_NGROUPS];
	uint64_t min_requests;
	double alpha, min_diff_pct, lat_min_ms;
	const char *prometheus;           /* --prometheus URL: figures from there, not files */
	const char *selector[ST_CANARY_NGROUPS];
	double window;
	char source[ST_CANARY_NGROUPS][1024];   /* --prometheus: what the report names */
	const char *source_v[ST_CANARY_NGROUPS];
	bool fail_on_regression, fail_on_slower;
};

static int add_file(struct report_cli *c, int g, const char *val, char *err, size_t errlen)
{
	if (c->nfiles[g] >= REPORT_FILES_MAX) {
		snprintf(err, errlen, "at most %d files", REPORT_FILES_MAX);
		return -1;
	}
	c->files[g][c->nfiles[g]++] = val;
	return 0;
}

static int opt_canary(void *o, const char *val, char *err, size_t errlen)
{
	return add_file(o, ST_CANARY, val, err, errlen);
}

static int opt_baseline(void *o, const char *val, char *err, size_t errlen)
{
	return add_file(o, ST_BASELINE, val, err, errlen);
}

static const struct st_opt report_rows[] = {
	ST_OPT_FLAG("merge", 0, struct report_cli, merge,
		    "merge the JSON reports given as arguments into one: counts\n"
		    "and latency histograms add, verdicts and percentiles are\n"
		    "computed again (tap compare's reports, or load tests')"),
	ST_OPT_FUNC("canary", 0, "FILE...", ST_OPTF_REPEAT, opt_canary,
		    "the canary group's watch reports (watch --report-json):\n"
		    "the files that follow, up to the next option"),
	ST_OPT_FUNC("baseline", 0, "FILE...", ST_OPTF_REPEAT, opt_baseline,
		    "the baseline group's watch reports, the same way"),
	ST_OPT_UINT("min-requests", 0, struct report_cli, min_requests, "N", 1, 1e12, 0,
		    "--canary: an endpoint is judged with N requests in each\n"
		    "group (default 200); fewer: not enough traffic"),
	ST_OPT_DOUBLE("alpha", 0, struct report_cli, alpha, "P", 1e-12, 0.5,
		      "--canary: the verdict's significance level, split over the\n"
		      "tests made (Bonferroni; default 0.01)"),
	ST_OPT_DOUBLE("min-error-diff", 0, struct report_cli, min_diff_pct, "POINTS", 0, 100,
		      "--canary: a worse error ratio fails from this many\n"
		      "percentage points more (default 0.5)"),
	ST_OPT_DOUBLE("latency-min-ms", 0, struct report_cli, lat_min_ms, "MS", 0, 1e6,
		      "--canary: a latency shift fails from MS (default 1) and\n"
		      "20% of the baseline's median"),
	ST_OPT_STRING("prometheus", 0, struct report_cli, prometheus, "URL",
		      "--canary's figures from this Prometheus server\n"
		      "(http://HOST:PORT) instead of files: the groups' series\n"
		      "by --canary-selector and --baseline-selector"),
	ST_OPT_STRING("canary-selector", 0, struct report_cli, selector[ST_CANARY], "SEL",
		      "the canary group's series: label matchers\n"
		      "('group=\"canary\"', pasted between braces)"),
	ST_OPT_STRING("baseline-selector", 0, struct report_cli, selector[ST_BASELINE], "SEL",
		      "the baseline group's series, the same way"),
	ST_OPT_SECONDS("window", 0, struct report_cli, window, 60, 86400 * 90,
		       "--prometheus: the increase over the last SEC (default 1h)"),
	ST_OPT_STRING("report", 'o', struct report_cli, report, "FILE.html",
		      "the report: one self-contained HTML file"),
	ST_OPT_STRING("report-json", 0, struct report_cli, report_json, "FILE.json",
		      "the report as JSON (a merged one can be merged again)"),
	ST_OPT_FLAG("fail-on-regression", 0, struct report_cli, fail_on_regression,
		    "--merge: exit status 3 when the merged verdict has a regression"),
	ST_OPT_FLAG("fail-on-slower", 0, struct report_cli, fail_on_slower,
		    "--merge: exit status 3 when the merged verdict has a slower endpoint"),
};

static const char usage_head[] =
	"Usage: shadowtap report --merge A.json B.json ... -o FILE.html [--report-json FILE.json]\n"
	"       shadowtap report --canary C.json ... --baseline B.json ... [-o FILE.html]\n"
	"                        [--report-json FILE.json]\n"
	"       shadowtap report --prometheus URL --canary-selector SEL --baseline-selector SEL\n"
	"                        [--window SEC] [-o FILE.html] [--report-json FILE.json]\n\n"
	"--merge merges tap compare reports (shadow/replay --report-json, format 2) written\n"
	"on several hosts into one fleet report. Their thresholds, reference and --endpoint\n"
	"patterns must agree. It ends with the merged verdict and a summary line on stderr.\n"
	"Or load test reports (replay/receive --rate ... --report-json) of generators that\n"
	"ran side by side: their histograms add, their steps must agree (a summary line).\n\n"
	"--canary compares watch's reports of a canary group of hosts (or its series in\n"
	"Prometheus) with a baseline group's, per endpoint: error ratios (Fisher's exact\n"
	"test) and latency (Mann-Whitney U), one verdict on stdout. Exit status 0: pass,\n"
	"3: fail, 4: not enough traffic (docs/WATCH.md, \"The canary verdict\").\n\n";

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes the merged report to path as HTML or JSON (through a temporary file). */
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
	return st_load_merge_read(part, path, err, errlen);
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
	char *buf = NULL;
	bool is = !st_json_read_file(path, ST_LOAD_REPORT_FILE_MAX, &buf, &len, err, sizeof(err)) &&
		  st_load_merge_is_report(buf, len);

	free(buf);
	return is;
}

static int merge(struct report_cli *c, int argc, char **argv, int first)
{
	const struct report_cli *cli = c;
	struct st_cmp_report *m = NULL, *part = NULL;
	char err[512];
	int rc;

	if (first >= argc) {
		pr_err("report: --merge needs at least one JSON report to read");
		return ST_EXIT_USAGE;
	}
	if (!cli->report && !cli->report_json) {
		pr_err("report: an output is required: -o FILE.html and/or --report-json FILE.json");
		return ST_EXIT_USAGE;
	}
	{
		const char *paths[] = { cli->report, cli->report_json };
		const char *opts[] = { "-o", "--report-json" };

		if (st_output_distinct(paths, opts, 2, err, sizeof(err))) {
			pr_err("report: %s", err);
			return ST_EXIT_USAGE;
		}
	}
	if (first_is_load(argv[first]))
		return merge_load(cli, argc, argv, first);
	m = malloc(sizeof(*m));
	part = malloc(sizeof(*part));
	if (!m || !part) {
		free(m);
		free(part);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	st_cmp_report_init(m);
	rc = merge_files(cli, &compare_kind, m, part, argc, argv, first);
	if (rc == ST_EXIT_OK) {
		struct st_cmp_verdict v;
		struct st_statline l;

		/* the verdict, then the summary line every command ends with */
		st_cmp_agg_verdict(&m->agg, &v);
		st_cmp_verdict_print(&v, cli->report ? cli->report : cli->report_json);
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
		rc = st_cmp_verdict_status(&v, cli->fail_on_regression, cli->fail_on_slower);
	}
	st_cmp_report_free(m);
	free(m);
	free(part);
	return rc;
}

static int write_canary_fill(void *ctx, FILE *f)
{
	void **a = ctx;

	if (a[2])
		st_canary_json(f, a[0], a[1]);
	else
		st_canary_html(f, a[0], a[1]);
	return ferror(f) ? -EIO : 0;
}

static int write_canary(const char *path, bool json, const struct st_canary *c,
			const struct st_canary_run *run, mode_t mode)
{
	void *a[3] = { (void *)c, (void *)run, json ? (void *)1 : NULL };
	int err = st_output_write(path, write_canary_fill, a, ST_OUT_NONBLOCK, mode);

	if (err)
		pr_err("report: %s: %s", path, st_output_strerror(err));
	return err ? -1 : 0;
}

/* Group g's figures from --prometheus (its selector over --window); its source is named in
 * the report as a file would be. 0, or -1 after one line. */
static int from_prometheus(struct report_cli *c, struct st_canary *cn, int g)
{
	char *q[2] = { NULL, NULL }, *body[2] = { NULL, NULL }, window[32], err[512];
	size_t len[2] = { 0, 0 };
	int rc = -1;

	snprintf(window, sizeof(window), "%.0fs", c->window > 0 ? c->window : 3600);
	if (st_canary_prom_queries(c->selector[g], window, &q[0], &q[1])) {
		pr_err("report: --%s-selector: '%s' holds a '}', or out of memory",
		       g == ST_CANARY ? "canary" : "baseline", c->selector[g]);
		return -1;
	}
	for (int k = 0; k < 2; k++)
		if (st_promread_query(c->prometheus, q[k], &body[k], &len[k], err, sizeof(err))) {
			pr_err("report: --prometheus %s", err);
			goto out;
		}
	if (st_canary_load_prom(cn, g, body[0], len[0], body[1], len[1], err, sizeof(err))) {
		pr_err("report: --prometheus %s, %s: %s", c->prometheus, c->selector[g], err);
		goto out;
	}
	snprintf(c->source[g], sizeof(c->source[g]), "%s {%s}[%s]", c->prometheus, c->selector[g],
		 window);
	c->source_v[g] = c->source[g];
	rc = 0;
out:
	for (int k = 0; k < 2; k++) {
		free(q[k]);
		free(body[k]);
	}
	return rc;
}

/* The canary verdict of --canary's files against --baseline's. */
static int canary(struct report_cli *c, int argc, char **argv, int first)
{
	struct st_canary_opts o = {
		.min_requests = c->min_requests, .alpha = c->alpha,
		.min_diff = c->min_diff_pct >= 0 ? c->min_diff_pct / 100 : -1,
		.lat_min = c->lat_min_ms >= 0 ? c->lat_min_ms / 1000 : -1,
	};
	struct st_canary_run run = { .now_ns = realtime_ns() };
	struct st_canary *cn = malloc(sizeof(*cn));
	char err[512];
	int rc = ST_EXIT_OK;

	if (first < argc) {
		pr_err("report: unexpected argument '%s' (files follow --canary or --baseline)",
		       argv[first]);
		free(cn);
		return ST_EXIT_USAGE;
	}
	if (!cn || st_canary_init(cn)) {
		free(cn);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	for (int g = 0; g < ST_CANARY_NGROUPS && rc == ST_EXIT_OK; g++) {
		run.files[g] = c->files[g];
		run.nfiles[g] = c->nfiles[g];
		if (c->prometheus) {
			if (from_prometheus(c, cn, g))
				rc = ST_EXIT_RUNTIME;
			run.files[g] = &c->source_v[g];
			run.nfiles[g] = 1;
		}
		for (unsigned i = 0; i < c->nfiles[g]; i++)
			if (st_canary_read(cn, g, c->files[g][i], err, sizeof(err))) {
				pr_err("report: %s: %s", c->files[g][i], err);
				rc = ST_EXIT_RUNTIME;
				break;
			}
	}
	if (rc == ST_EXIT_OK) {
		st_canary_judge(cn, &o);
		if (c->report && write_canary(c->report, false, cn, &run, c->out_mode))
			rc = ST_EXIT_RUNTIME;
		if (rc == ST_EXIT_OK && c->report_json &&
		    write_canary(c->report_json, true, cn, &run, c->out_mode))
			rc = ST_EXIT_RUNTIME;
	}
	if (rc == ST_EXIT_OK) {
		st_canary_text(stdout, cn);
		rc = cn->verdict == ST_CANARY_FAIL ? EXIT_CANARY_FAIL :
		     cn->verdict == ST_CANARY_LOW ? EXIT_CANARY_LOW : ST_EXIT_OK;
	}
	st_canary_free(cn);
	free(cn);
	return rc;
}

/* "--canary a b c --baseline d" as getopt wants it: "--canary a --canary b --canary c
 * --baseline d" (the files after each, up to the next option or "--"). */
static char **expand(int argc, char **argv, int *nargc)
{
	char **v = calloc(2 * (size_t)argc + 1, sizeof(*v));
	const char *flag = NULL;
	int n = 0;
	bool done = false;

	if (!v)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!done && flag && a[0] != '-' && strcmp(argv[i - 1], flag)) {
			v[n++] = (char *)flag;
		} else if (!done && (!strcmp(a, "--canary") || !strcmp(a, "--baseline"))) {
			flag = a;
		} else if (a[0] == '-') {
			flag = NULL;
			done |= !strcmp(a, "--");
		}
		v[n++] = argv[i];
	}
	*nargc = n;
	return v;
}

int cmd_report(int argc, char **argv)
{
	struct report_cli *cli = calloc(1, sizeof(*cli));
	const struct st_optset sets[] = {
		ST_OPTSET(report_rows, cli),
		{ st_output_opts, st_output_opts_n, cli ? &cli->out_mode : NULL, NULL },
	};
	char **av = NULL;
	int rc, first, ac;

	if (cli) {
		cli->min_diff_pct = -1;
		cli->lat_min_ms = -1;
		av = expand(argc, argv, &ac);
	}
	if (!cli || !av) {
		free(cli);
		pr_err("report: out of memory");
		return ST_EXIT_RUNTIME;
	}
	rc = st_optset_parse(sets, 2, "report", usage_head, ac, av, &first);
	if (rc) {
		rc = rc < 0 ? ST_EXIT_OK : rc;
	} else if (cli->merge && (cli->nfiles[0] || cli->nfiles[1] || cli->prometheus)) {
		pr_err("report: --merge and --canary/--baseline are two different reports");
		rc = ST_EXIT_USAGE;
	} else if (cli->prometheus && (cli->nfiles[0] || cli->nfiles[1])) {
		pr_err("report: --prometheus reads the groups from there: no --canary/--baseline files");
		rc = ST_EXIT_USAGE;
	} else if (cli->prometheus && (!cli->selector[0] || !cli->selector[1])) {
		pr_err("report: --prometheus needs --canary-selector and --baseline-selector");
		rc = ST_EXIT_USAGE;
	} else if (!cli->prometheus && (cli->selector[0] || cli->selector[1])) {
		pr_err("report: --canary-selector/--baseline-selector need --prometheus URL");
		rc = ST_EXIT_USAGE;
	} else if (cli->merge) {
		rc = merge(cli, ac, av, first);
	} else if (!cli->prometheus && (!cli->nfiles[ST_CANARY] || !cli->nfiles[ST_BASELINE])) {
		pr_err("report: --merge is required (shadowtap report --merge A.json B.json ... -o "
		       "FILE.html), or --canary C.json ... --baseline B.json ...");
		rc = ST_EXIT_USAGE;
	} else {
		const char *paths[] = { cli->report, cli->report_json };
		const char *opts[] = { "-o", "--report-json" };
		char err[512];

		if (st_output_distinct(paths, opts, 2, err, sizeof(err))) {
			pr_err("report: %s", err);
			rc = ST_EXIT_USAGE;
		} else {
			rc = canary(cli, ac, av, first);
		}
	}
	free(av);
	free(cli);
	return rc;
}
