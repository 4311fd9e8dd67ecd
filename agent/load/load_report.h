/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A load test's report (docs/LOAD.md): JSON for machines and merges, one self-contained HTML
 * page for people (inline CSS and SVG, no script, nothing fetched; tap compare's look and its
 * escaping: every endpoint name comes from the traffic). Pure formatting onto a FILE (the
 * caller writes the file atomically, output.h).
 *
 * The JSON has fixed keys people read (target_rps, achieved_rps, sent, answered, errors by
 * kind, latency_ms and latency_raw_ms percentiles, steps, endpoints) and, inside each latency
 * object, its HDR histogram (hdr: sparse [index, count] pairs in the layout "hdr_layout"
 * names) so that reports of several generators add up (load_merge.h) instead of averaging
 * percentiles.
 */
#ifndef ST_LOAD_REPORT_H
#define ST_LOAD_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "load.h"

/* The JSON report's format: a reader refuses another major version; keys are only added
 * within one. */
#define ST_LOAD_REPORT_FORMAT "shadowtap-load-report"
#define ST_LOAD_REPORT_VERSION 1

const char *st_load_report_pace_name(enum st_load_pace p);

void st_load_report_json(FILE *f, const struct st_load_agg *a, uint64_t now_real_ns);
/* compare_report: the tap compare report written next to it (a link), or NULL. */
void st_load_report_html(FILE *f, const struct st_load_agg *a, uint64_t now_real_ns,
			 const char *compare_report);

/*
 * l's reports now, written whole (atomically, output.h: mode is --output-mode's, or 0) to
 * html and json (either may be NULL); compare_report: tap compare's HTML report next to them
 * (linked by its file name), or NULL. A failed write is counted (load_output_errors) and said
 * once per report, in one line naming cmd. 0, or -1 if one failed.
 */
int st_load_report_write(struct st_load *l, const char *html, const char *json,
			 const char *compare_report, const char *cmd, mode_t mode);

#endif /* ST_LOAD_REPORT_H */
