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
#include "stats.h"

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
};

void st_cmp_report_json(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run);
void st_cmp_report_html(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run);

/* A JSON string of n bytes: quotes, escapes, control characters and bytes that are not
 * UTF-8 as \u00XX. */
void st_cmp_json_str(FILE *f, const char *s, size_t n);
/* RFC 3339 UTC with milliseconds. */
void st_cmp_time_str(char *out, size_t cap, uint64_t real_ns);

#endif /* ST_COMPARE_REPORT_H */
