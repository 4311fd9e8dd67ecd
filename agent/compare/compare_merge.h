/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare reports read back and merged (`shadowtap report --merge`, docs/COMPARE.md,
 * "Merging reports across a fleet"): a JSON report (--report-json, format
 * ST_CMP_REPORT_VERSION) is loaded into the aggregate it was written from, aggregates are
 * added (st_cmp_agg_merge), and the result goes through the writers one run uses
 * (compare_report.h). Nothing is averaged: counts and latency buckets add, and every
 * verdict is computed again from them.
 *
 * The files are untrusted input (they come from other hosts): read with the strict bounded
 * parser (json.h), every count, index, length and list checked against the bounds of one
 * run (an endpoint's name, a field's path, 48 fields, 16 correlated fields, 5 samples, 12
 * status codes, 528 buckets, max_endpoints). Keys added within a format version are optional
 * (a report written before them reads as none: correlated, correlated_fields). The loader
 * is fuzzed (tests/fuzz/fuzz_report.c).
 */
#ifndef ST_COMPARE_MERGE_H
#define ST_COMPARE_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare_agg.h"
#include "compare_report.h"
#include "stats.h"

#define ST_CMP_REPORT_FILE_MAX (128u << 20) /* a report file, bytes */
#define ST_CMP_NAME_MAX 256                  /* command, candidate, reference, bytes */
#define ST_CMP_COUNTER_NAME_MAX 64

/* A report as read back, or a merge of reports. Not movable (agg points into it). */
struct st_cmp_report {
	bool loaded;                 /* false: empty, the merge's start */
	struct st_cmp_agg agg;
	struct st_cmp_pattern patterns[ST_CMP_PATTERNS_MAX];
	char command[ST_CMP_NAME_MAX], candidate[ST_CMP_NAME_MAX], reference[ST_CMP_NAME_MAX];
	bool final;
	uint64_t generated_ns, start_ns, end_ns;
	uint64_t sources;
	char hosts[ST_CMP_HOSTS_MAX][ST_CMP_HOST_MAX]; /* sorted, distinct */
	unsigned nhosts;
	uint64_t max_body;
	double timeout_s;
	struct st_statline counters;
	char counter_names[ST_STATLINE_MAX][ST_CMP_COUNTER_NAME_MAX];
};

/* An empty report (merging into it takes the first report's configuration). */
void st_cmp_report_init(struct st_cmp_report *r);
void st_cmp_report_free(struct st_cmp_report *r);

/*
 * Reads the JSON report buf (len bytes) into r (not initialised before; freed again on
 * failure). 0, or -1 with one line in err: not JSON, not a compare report, another format
 * version, or a value out of its bounds (naming where).
 */
int st_cmp_report_load(struct st_cmp_report *r, const char *buf, size_t len, char *err,
		       size_t errlen);

/*
 * dst += src. The configurations must agree (reference or not, thresholds, latency test,
 * max_endpoints, compare_max_body, compare_timeout_s, endpoint patterns): else -1 and err
 * says which. The run: counters add (gauges too, but the _peak ones take the larger and
 * compare_endpoints counts the merged endpoints), started is the earliest, ended the
 * latest, final when both are, sources add, hosts are the union (the first
 * ST_CMP_HOSTS_MAX sorted), command, candidate and reference stay when the same, else
 * "(several)". Grouping and order do not change the result (docs/COMPARE.md).
 */
int st_cmp_report_merge(struct st_cmp_report *dst, const struct st_cmp_report *src, char *err,
			size_t errlen);

/* What the writers need to write r (hostv holds ST_CMP_HOSTS_MAX pointers; both must
 * outlive run's use), generated at now_ns. */
void st_cmp_report_run(const struct st_cmp_report *r, struct st_cmp_run *run, const char **hostv,
		       uint64_t now_ns);

/* Reads file path (at most ST_CMP_REPORT_FILE_MAX bytes) and loads it. 0, or -1 with err. */
int st_cmp_report_read(struct st_cmp_report *r, const char *path, char *err, size_t errlen);

#endif /* ST_COMPARE_MERGE_H */
