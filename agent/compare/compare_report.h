/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare's outputs: the HTML report (one self-contained file: inline CSS
 * and SVG, no script, nothing fetched), the same content as JSON for machines,
 * and the writers the --diffs lines use. Pure formatting onto a FILE (the
 * caller writes the file atomically, output.h).
 */
#ifndef ST_COMPARE_REPORT_H
#define ST_COMPARE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "compare_agg.h"
#include "prom.h"
#include "stats.h"

/* The JSON report's format (its "format" and "format_version" keys): a reader refuses another
 * major version; keys are only added within one. 1 was the format without the keys a merge
 * needs (no "format" key). */
#define ST_CMP_REPORT_FORMAT "shadowtap-compare-report"
#define ST_CMP_REPORT_VERSION 2
#define ST_CMP_HOSTS_MAX 64          /* capture hosts a report names (the first, sorted) */
#define ST_CMP_HOST_MAX 256          /* a host name, bytes */

/* What the report says about the run itself. */
struct st_cmp_run {
	const char *command;          /* "shadow" or "replay" */
	const char *candidate;        /* target names, as given */
	const char *reference;        /* NULL without one */
	uint64_t start_real_ns, now_real_ns;
	bool final;                   /* written at the end of the run */
	const struct st_statline *counters; /* compare's counters (summary line names) */
	uint64_t max_body;
	double timeout_s;
	unsigned max_endpoints;
	const char *const *hosts;     /* where the pairs were captured: sorted, distinct */
	unsigned nhosts;
	uint64_t sources;             /* partial reports merged into this one; 0: one run */
	uint64_t end_real_ns;         /* the last pair's end; 0: now_real_ns */
};

void st_cmp_report_json(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run);

#define ST_CMP_PROM_FIELDS 10 /* regression fields exported as series: the worst, at most */

/*
 * The aggregate as Prometheus families (prom.h; docs/COMPARE.md, "In Prometheus"), every
 * sample labelled base + endpoint (compare's name: "GET /users/{id}"):
 * shadowtap_compare_pairs_total{result} (identical, differing, noise_only, not_compared),
 * shadowtap_compare_answers_total{side, code}, the gauges shadowtap_compare_regressions (the
 * endpoint's regression fields) and shadowtap_compare_latency_verdict (1 slower, -1 faster,
 * 0 same), shadowtap_compare_field_regression_ratio{field} for the ST_CMP_PROM_FIELDS worst
 * regression fields (the share of pairs that differ there), and the histograms
 * shadowtap_compare_latency_seconds{side} (the report's 3%-wide buckets summed into
 * st_prom_latency_bounds: a bucket straddling a bound counts above it; _sum from the buckets'
 * middles). Bounded by the aggregate's caps.
 */
void st_cmp_agg_prom(const struct st_cmp_agg *a, struct st_prom *p,
		     const struct st_prom_labels *base);
void st_cmp_report_html(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run);

/* The verdict's line on stderr: "shadowtap: verdict: FAIL, 3 regressions in 2 endpoints, 1
 * slower; 120 pairs compared -> report" (report: where the details are; NULL: none). */
void st_cmp_verdict_print(const struct st_cmp_verdict *v, const char *report);

/* A JSON string of n bytes: quotes, escapes, control characters and bytes that are not
 * UTF-8 as \u00XX. */
void st_cmp_json_str(FILE *f, const char *s, size_t n);
/* HTML text: markup characters escaped, control bytes as spaces, bytes that are not UTF-8
 * as U+FFFD. Every string from traffic or from a report read back goes through it. */
void st_cmp_html_str(FILE *f, const char *s);
/* A verdict badge (class v-CLS: regression, noise, slower, faster, same, ok), text escaped. */
void st_cmp_html_badge(FILE *f, const char *cls, const char *text);
/* The reports' style sheet (compare's, and the canary report's: one look). */
extern const char st_cmp_report_css[];
/* A report page's start, up to and with <body>: the reports' one look (inline CSS). */
void st_cmp_html_page(FILE *f, const char *title);
/* RFC 3339 UTC with milliseconds. */
void st_cmp_time_str(char *out, size_t cap, uint64_t real_ns);

#endif /* ST_COMPARE_REPORT_H */
