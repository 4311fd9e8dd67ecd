/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Load test reports read back and merged (`shadowtap report --merge` of several generators'
 * --report-json, docs/LOAD.md "Several generators"): a JSON report (format
 * ST_LOAD_REPORT_VERSION) is loaded into the aggregate it was written from, aggregates add,
 * and the result goes through the writers one run uses (load_report.h). Nothing is
 * averaged: counts add, HDR histograms add, and every percentile is computed again from them.
 *
 * The files are untrusted input (they come from other hosts): read with the strict bounded
 * parser and json.h's bounded readers, every count, index and list checked against the bounds
 * of one run (ST_LOAD_STEPS_MAX steps, ST_CMP_ENDPOINTS_DEFAULT + 1 endpoints,
 * ST_LOAD_BUCKETS_MAX buckets, a histogram's indexes within its layout, its extremes in its
 * first and last buckets). The loader is fuzzed (tests/fuzz/fuzz_load_report.c).
 */
#ifndef ST_LOAD_MERGE_H
#define ST_LOAD_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "load.h"

#define ST_LOAD_REPORT_FILE_MAX (128u << 20)

/* buf holds a JSON object whose "format" is the load report's (any version). */
bool st_load_merge_is_report(const char *buf, size_t len);
/*
 * Reads the JSON report buf into a (initialised here; freed again on failure). 0, or -1 with
 * one line in err: not JSON, not a load report, another format version, or a value out of
 * its bounds (naming where).
 */
int st_load_merge_parse(struct st_load_agg *a, const char *buf, size_t len, char *err,
			size_t errlen);
/* Reads file path (at most ST_LOAD_REPORT_FILE_MAX bytes) and loads it. */
int st_load_merge_read(struct st_load_agg *a, const char *path, char *err, size_t errlen);

/*
 * dst += src, as for generators that ran side by side against the same target: counts,
 * histograms, target rates and connections add (per step too: the steps must be the same
 * plan), endpoints by name, timeline buckets by their time from each run's start; the run
 * spans from the earliest start to the latest end (achieved_rps: all answers over it), final
 * when both are, command and target stay when the same, else "(several)". An empty dst (its
 * sources 0) takes src's plan. 0, or -1 with err (the plans differ).
 */
int st_load_agg_merge(struct st_load_agg *dst, const struct st_load_agg *src, char *err,
		      size_t errlen);

#endif /* ST_LOAD_MERGE_H */
