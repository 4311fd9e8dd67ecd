/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The canary verdict (`shadowtap report --canary`, docs/WATCH.md, "The canary verdict"):
 * watch's reports (--report-json) of two groups of hosts, the canary (the new build) and the
 * baseline, read back and summed per endpoint (method and path: every code, every host), and
 * per endpoint:
 *  - the error ratio, 5xx answers over requests: Fisher's exact test, one-sided (is the
 *    canary's higher than the baseline's?), and Newcombe's interval of the difference;
 *  - the time to the first answer byte: Mann-Whitney U on the two bucketed samples and the
 *    Hodges-Lehmann shift (tap compare's test: st_cmp_mwu);
 * at the level alpha / m, m the tests made (Bonferroni: many endpoints, one verdict). An
 * endpoint fails when its canary's error ratio is higher at that level and by at least
 * min_diff, or when it is slower at that level by at least max(lat_min, 20% of the
 * baseline's median). Every endpoint's errors together are tested too ("(all)"). The verdict:
 * fail when any test fails, not enough traffic when no endpoint (not even all of them
 * together) has min_requests in each group, else pass.
 *
 * The files are untrusted (other hosts wrote them): read with the strict bounded parser
 * (json.h), every count, length and list checked, sums refused rather than wrapped; at most
 * ST_CANARY_ENDPOINTS_MAX endpoints (the rest summed as "other"). The loader is fuzzed
 * (tests/fuzz/fuzz_canary.c). Pure: no I/O but st_canary_read().
 */
#ifndef ST_CANARY_H
#define ST_CANARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compare_agg.h"
#include "watch_agg.h"

#define ST_CANARY_FILE_MAX (64u << 20)     /* a report, bytes */
#define ST_CANARY_ENDPOINTS_MAX 16384      /* distinct endpoints of both groups */
#define ST_CANARY_HOSTS_MAX 64             /* hosts a group names (the first, in order) */
#define ST_CANARY_HOST_MAX 256
#define ST_CANARY_NAME_MAX (ST_CMP_ENDPOINT_MAX + 32) /* "METHOD /path" */
#define ST_CANARY_MIN_REQUESTS_DEFAULT 200 /* per group and endpoint, to be judged */
#define ST_CANARY_ALPHA_DEFAULT 0.01
#define ST_CANARY_MIN_DIFF_DEFAULT 0.005   /* error ratios half a point apart at least */
#define ST_CANARY_LAT_MIN_DEFAULT 0.001    /* seconds: a latency shift of 1 ms at least */

enum { ST_CANARY = 0, ST_BASELINE = 1, ST_CANARY_NGROUPS };

enum st_canary_v {
	ST_CANARY_PASS = 0,
	ST_CANARY_FAIL,
	ST_CANARY_LOW,        /* not enough traffic */
};

const char *st_canary_verdict_name(enum st_canary_v v);

struct st_canary_ep {
	char name[ST_CANARY_NAME_MAX];   /* "GET /users/{id}", "(all)" */
	uint64_t req[ST_CANARY_NGROUPS], err[ST_CANARY_NGROUPS];
	uint64_t lat[ST_CANARY_NGROUPS][ST_WATCH_BUCKETS_MAX + 1]; /* first byte, per bucket */
	/* the judgement (st_canary_judge) */
	uint8_t verdict;                 /* enum st_canary_v */
	bool err_fail, lat_fail, lat_judged;
	double ratio[ST_CANARY_NGROUPS]; /* err / req */
	double diff, diff_lo, diff_hi;   /* canary - baseline, and its interval */
	double err_p;                    /* Fisher, one-sided */
	struct st_cmp_mwu lat_test;      /* canary against baseline, seconds */
	double p50[ST_CANARY_NGROUPS], p99[ST_CANARY_NGROUPS]; /* seconds */
};

struct st_canary_opts {
	uint64_t min_requests;           /* 0: ST_CANARY_MIN_REQUESTS_DEFAULT */
	double alpha;                    /* 0: ST_CANARY_ALPHA_DEFAULT */
	double min_diff;                 /* < 0: ST_CANARY_MIN_DIFF_DEFAULT */
	double lat_min;                  /* seconds; < 0: ST_CANARY_LAT_MIN_DEFAULT */
};

struct st_canary {
	struct st_watch_bounds bounds;   /* latency buckets: every file's must be the same */
	bool have_bounds;
	struct st_canary_ep *ep;         /* [0] is "other" (endpoints past the cap) */
	uint32_t n, cap;
	uint32_t *slot, nslot;           /* name hash -> index + 1 */
	struct st_canary_ep all;
	uint32_t files[ST_CANARY_NGROUPS];
	char hosts[ST_CANARY_NGROUPS][ST_CANARY_HOSTS_MAX][ST_CANARY_HOST_MAX];
	unsigned nhosts[ST_CANARY_NGROUPS];
	/* the judgement */
	struct st_canary_opts opts;
	uint32_t tests;                  /* m: the tests made */
	double alpha_each;               /* alpha / m */
	uint32_t judged, failed;
	uint8_t verdict;                 /* enum st_canary_v */
};

/* 0, or -ENOMEM. */
int st_canary_init(struct st_canary *c);
void st_canary_free(struct st_canary *c);
/* One watch report (len bytes of buf) added to group g. 0, or -1 with one line in err: not
 * JSON, not a watch report, another format version, other latency buckets than the files
 * before, a value out of its bounds (naming where), sums past 2^63 - 1. A file that fails
 * adds nothing. */
int st_canary_load(struct st_canary *c, int g, const char *buf, size_t len, char *err,
		   size_t errlen);
/* Reads path (at most ST_CANARY_FILE_MAX bytes) and loads it. */
int st_canary_read(struct st_canary *c, int g, const char *path, char *err, size_t errlen);
/*
 * A group's figures from a Prometheus server (report --canary --prometheus): its answers
 * (the JSON of /api/v1/query, a vector) to the queries st_canary_prom_queries() gives for the
 * group's selector and window. Increases are rounded to whole requests; the latency buckets
 * come from the le values (the same for every endpoint, and as any figures loaded before).
 * Untrusted like a file: 0, or -1 with one line in err, nothing added.
 */
int st_canary_load_prom(struct st_canary *c, int g, const char *requests, size_t rlen,
			const char *buckets, size_t blen, char *err, size_t errlen);
/* The two queries (requests by endpoint, method and code; first-byte buckets by endpoint,
 * method and le) of the series selected by sel ('group="canary"') over window ("1h"), into
 * req and lat (malloc'd; the caller frees). 0, or -1: out of memory, or a selector that
 * holds a '}' (it is pasted between braces). */
int st_canary_prom_queries(const char *sel, const char *window, char **req, char **lat);

/* The tests and the verdict (c->verdict, each endpoint's). */
void st_canary_judge(struct st_canary *c, const struct st_canary_opts *o);
/* Endpoints worst first (failed, then by the error test's p), "(all)" first; NULL when out
 * of memory. The caller frees. */
struct st_canary_ep **st_canary_sorted(const struct st_canary *c, uint32_t *n);

/* Fisher's exact test, one-sided: P(X >= a), X hypergeometric, for a errors of n1 requests
 * against b of n2: how likely the first group's errors are this many or more if both groups
 * failed alike. */
double st_canary_fisher(uint64_t a, uint64_t n1, uint64_t b, uint64_t n2);
/* Newcombe's hybrid score interval (his method 10) of a/n1 - b/n2 at two-sided level alpha. */
void st_canary_diff_ci(uint64_t a, uint64_t n1, uint64_t b, uint64_t n2, double alpha, double *lo,
		       double *hi);

struct st_canary_run {
	uint64_t now_ns;
	const char *const *files[ST_CANARY_NGROUPS]; /* the paths read, for the report */
	unsigned nfiles[ST_CANARY_NGROUPS];
};

#define ST_CANARY_REPORT_FORMAT "shadowtap-canary-report"
#define ST_CANARY_REPORT_VERSION 1

void st_canary_json(FILE *f, const struct st_canary *c, const struct st_canary_run *run);
void st_canary_html(FILE *f, const struct st_canary *c, const struct st_canary_run *run);
/* The verdict and the failing endpoints, a few lines for a terminal. */
void st_canary_text(FILE *f, const struct st_canary *c);

#endif /* ST_CANARY_H */
