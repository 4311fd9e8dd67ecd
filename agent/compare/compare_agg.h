/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare, what the report says: per endpoint (method + path template) and
 * field path, how often the candidate differed from production (raw) and the
 * reference differed from production (noise), with sample pairs; latency
 * distributions and status codes per side; the verdicts (docs/COMPARE.md).
 *
 * Pure and single-threaded (the compare worker owns it). Memory is bounded by
 * construction: at most max_endpoints endpoints (the rest grouped as "other"),
 * ST_CMP_FIELDS_MAX fields each (the rest in one "(other fields)" row), ST_CMP_CORR_FIELDS_MAX
 * fields where --correlate explained a difference (the rest in one "(other fields)" row too),
 * ST_CMP_SAMPLES samples per field, fixed-size latency histograms.
 */
#ifndef ST_COMPARE_AGG_H
#define ST_COMPARE_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compare_diff.h"

#define ST_CMP_ENDPOINTS_DEFAULT 100
#define ST_CMP_ENDPOINT_MAX 160   /* an endpoint's name, bytes */
#define ST_CMP_FIELDS_MAX 48      /* per endpoint */
#define ST_CMP_CORR_FIELDS_MAX 16 /* per endpoint: fields with correlated differences */
#define ST_CMP_SAMPLES 5          /* sample pairs per (endpoint, field), as Diffy keeps */
#define ST_CMP_TARGET_SHOW 96     /* a sample's request target, bytes */
#define ST_CMP_STATUS_MAX 12      /* distinct status codes per side and endpoint */
#define ST_CMP_LAT_BUCKETS 528    /* 1 us .. 19 h, 16 per octave (about 3% wide) */
#define ST_CMP_LAT_MIN_N 10       /* fewer samples on a side: no latency verdict */
#define ST_CMP_LAT_ALPHA 0.001    /* two-sided significance of the Mann-Whitney U test */
#define ST_CMP_LAT_SHIFT 0.2      /* and a shift of at least 20% of the baseline's p50 ... */
#define ST_CMP_LAT_MIN_MS_DEFAULT 1.0 /* ... and of at least this many ms */
#define ST_CMP_REL_DEFAULT 20.0   /* Diffy's relative threshold, % */
#define ST_CMP_ABS_DEFAULT 0.03   /* Diffy's absolute threshold, % of the endpoint's pairs */
#define ST_CMP_NOISE_FREQ 0.9     /* no reference: differs in >= 90% of the endpoint's pairs */
#define ST_CMP_NOISE_SHAPE 0.8    /* ... with >= 80% of those values volatile-looking */
#define ST_CMP_PATTERNS_MAX 64
/* The largest count a report holds (2^63 - 1: what a report file may say, compare_merge.c):
 * a merge whose sums would pass it is refused, never wrapped. */
#define ST_CMP_COUNT_MAX (UINT64_MAX / 2)

/* *dst += v, unless the sum passes ST_CMP_COUNT_MAX: then *dst stays at that bound and false
 * is returned. */
static inline bool st_cmp_count_add(uint64_t *dst, uint64_t v)
{
	if (*dst > ST_CMP_COUNT_MAX || v > ST_CMP_COUNT_MAX - *dst) {
		*dst = ST_CMP_COUNT_MAX;
		return false;
	}
	*dst += v;
	return true;
}

enum st_cmp_side { ST_CMP_PROD = 0, ST_CMP_CAND, ST_CMP_REF, ST_CMP_NSIDES };

/* The length of the UTF-8 sequence at s (n >= 1 bytes left), or 0 when it is not one. */
size_t st_cmp_utf8_seq(const unsigned char *s, size_t n);
/* Each byte of s that does not start or continue a UTF-8 sequence becomes '?'. What the
 * aggregate holds (names, paths, notes, samples) is made so: the JSON report then carries it
 * as it is (no \u00XX for lone bytes, which a reader would take for characters) and it
 * reads back the same (compare_merge.c). */
void st_cmp_utf8_fix(char *s);

const char *st_cmp_side_name(enum st_cmp_side s);

/* --endpoint 'METHOD /users/{id}': METHOD or *, segments literal or {name} (one segment),
 * a last * (the rest). */
struct st_cmp_pattern {
	char text[ST_CMP_ENDPOINT_MAX]; /* as given: the endpoint's name */
	char method[24];                /* "" = any */
	char path[ST_CMP_ENDPOINT_MAX];
};

/* 0, or -1 when s is not METHOD SP /PATH. */
int st_cmp_pattern_parse(const char *s, struct st_cmp_pattern *p);
/* An --endpoint value appended to pats[*n] (pats holds ST_CMP_PATTERNS_MAX): 0, or -1 with the
 * reason in err. The option's row of every command that names endpoints (compare, watch). */
int st_cmp_pattern_add(struct st_cmp_pattern *pats, unsigned *n, const char *val, char *err,
		       size_t errlen);
#define ST_CMP_ENDPOINT_ARG "'METHOD /p/{id}'"
#define ST_CMP_ENDPOINT_HELP                                                                 \
	"group requests under this endpoint (repeatable, first match;\n"                     \
	"default: the path with ids as {id}, query keys kept)"

/*
 * The endpoint of a request: the first pattern that matches, else METHOD and the path
 * with id-like segments (digits, UUIDs, 16+ hex digits) as {id}, query keys kept in
 * order, values dropped ("GET /users/{id}?fields&page"). Writes a NUL-terminated name
 * of at most cap - 1 bytes (ST_CMP_ENDPOINT_MAX is enough).
 */
void st_cmp_endpoint(const struct st_cmp_pattern *pats, unsigned npats, const char *method,
		     size_t mlen, const char *target, size_t tlen, char *out, size_t cap);

struct st_cmp_lat {
	uint64_t n;
	uint32_t b[ST_CMP_LAT_BUCKETS];
};

void st_cmp_lat_add(struct st_cmp_lat *l, uint64_t ns);
/* The q-quantile (0 < q <= 1) in milliseconds (a bucket's middle); 0 when empty. */
double st_cmp_lat_pct(const struct st_cmp_lat *l, double q);
/* Bucket i's bounds in microseconds. */
void st_cmp_lat_bucket(unsigned i, double *lo_us, double *hi_us);

enum st_cmp_lat_v { ST_CMP_LAT_SAME = 0, ST_CMP_LAT_SLOWER, ST_CMP_LAT_FASTER };

/* The Mann-Whitney U test of two samples given as counts over the same n ordered buckets
 * (samples in one bucket are ties), mid[i] the middle of bucket i: two-sided, the normal
 * approximation with ties and continuity corrected; and the Hodges-Lehmann shift, the
 * weighted median of the differences of bucket middles (robust to a few outliers), in mid's
 * unit. Tap compare's latency verdict and watch's canary verdict both use it. */
struct st_cmp_mwu {
	double n1, n2;         /* the samples (first, second) */
	double u, mu;          /* U of the first (pairs where it is larger, ties half); its mean */
	double p;              /* two-sided p-value; 1 when a side is empty or everything ties */
	double a;              /* u / (n1 n2): 0.5 = no shift */
	double shift;          /* the median of first - second */
};
void st_cmp_mwu(const double *first, const double *second, const double *mid, unsigned n,
		struct st_cmp_mwu *m);

struct st_cmp_lat_test {
	enum st_cmp_lat_v verdict;
	bool enough;           /* both sides have ST_CMP_LAT_MIN_N samples */
	double p;              /* two-sided p-value (normal approximation, ties corrected) */
	double a;              /* P(candidate slower) + P(tie)/2: 0.5 = no shift */
	double shift;          /* Hodges-Lehmann: the median of candidate - baseline (ms) */
	double p50[2], p90[2]; /* candidate, baseline (ms) */
};

/*
 * Mann-Whitney U on the two histograms (samples in one bucket are ties), with the
 * Hodges-Lehmann estimate of the shift (the median of all pairwise differences, robust to
 * a few outliers): slower when p < ST_CMP_LAT_ALPHA and the shift is at least min_ms and
 * at least ST_CMP_LAT_SHIFT of the baseline's p50; faster the other way round; else same.
 */
void st_cmp_lat_compare(const struct st_cmp_lat *cand, const struct st_cmp_lat *base,
			double min_ms, struct st_cmp_lat_test *t);

struct st_cmp_sample {
	char target[ST_CMP_TARGET_SHOW + 4];
	char v[ST_CMP_NSIDES][ST_CMP_VAL_MAX + 4];
	bool set[ST_CMP_NSIDES];     /* the value exists on that side */
	bool ref_same;               /* the reference answered as production did here */
	uint16_t status[ST_CMP_NSIDES];
};

struct st_cmp_field {
	char path[ST_CMP_PATH_MAX + 4];
	uint8_t kind;                /* of its first difference */
	char note[ST_CMP_NOTE_MAX];
	uint64_t raw;                /* pairs where the candidate differs from production here */
	uint64_t noise;              /* pairs where the reference differs from production here */
	uint64_t vol;                /* raw pairs where both values look volatile */
	uint32_t nsamples;
	struct st_cmp_sample s[ST_CMP_SAMPLES];
};

/* A field where the candidate's --correlate map explained differences (docs/COMPARE.md,
 * "Correlated"): neither a regression nor noise, so not a st_cmp_field row. */
struct st_cmp_corr_field {
	char path[ST_CMP_PATH_MAX + 4];
	uint64_t n;                  /* pairs where the map explained the difference here */
};

struct st_cmp_status {
	uint16_t code[ST_CMP_STATUS_MAX];
	uint64_t n[ST_CMP_STATUS_MAX];
	uint64_t other;
	uint32_t ncodes;
};

struct st_cmp_endpoint {
	char name[ST_CMP_ENDPOINT_MAX];
	uint64_t compared, differing, noise_only;
	uint64_t not_compared;
	struct st_cmp_field *fields;
	uint32_t nfields, fcap;
	uint64_t more_paths;         /* differences at paths beyond the kept ones */
	uint64_t correlated;         /* pairs with a difference the candidate's map explained */
	struct st_cmp_corr_field corr[ST_CMP_CORR_FIELDS_MAX];
	uint32_t ncorr;
	struct st_cmp_lat lat[ST_CMP_NSIDES];
	struct st_cmp_status status[ST_CMP_NSIDES];
};

struct st_cmp_agg_config {
	const struct st_cmp_pattern *patterns;
	unsigned npatterns;
	unsigned max_endpoints;      /* 0: ST_CMP_ENDPOINTS_DEFAULT */
	bool reference;
	double rel_pct, abs_pct;     /* 0: the defaults */
	double lat_min_ms;           /* 0: ST_CMP_LAT_MIN_MS_DEFAULT */
};

struct st_cmp_agg {
	struct st_cmp_agg_config cfg;
	struct st_cmp_endpoint **ep;
	uint32_t n, cap;
	uint32_t *slot;              /* name hash -> index + 1 */
	uint32_t nslot;
	struct st_cmp_endpoint other;
	uint64_t compared, differing, noise_only, correlated;
};

enum st_cmp_pair_v { ST_CMP_IDENTICAL = 0, ST_CMP_DIFFERING, ST_CMP_NOISE_ONLY };

/* One compared pair, as the aggregate takes it. */
struct st_cmp_result {
	const char *method, *target; /* the request (target cut for samples) */
	size_t mlen, tlen;
	uint16_t status[ST_CMP_NSIDES];
	bool have_ref;
	int64_t lat_ns[ST_CMP_NSIDES]; /* -1: not measured */
	const struct st_cmp_diffs *raw;   /* candidate against production */
	const struct st_cmp_diffs *noise; /* reference against production, or NULL */
};

/*
 * A pair's verdict: identical; noise only (every path where the candidate differs from
 * production, the reference differs too in this pair; without a reference: every
 * difference's values look like timestamps or random ids); else differing.
 */
enum st_cmp_pair_v st_cmp_classify(const struct st_cmp_diffs *raw, const struct st_cmp_diffs *noise);

int st_cmp_agg_init(struct st_cmp_agg *a, const struct st_cmp_agg_config *cfg);
void st_cmp_agg_free(struct st_cmp_agg *a);
/* The endpoint named name (created unless the cap is reached: then "other"). */
struct st_cmp_endpoint *st_cmp_agg_endpoint(struct st_cmp_agg *a, const char *name);
/* Adds one compared pair of endpoint name; returns its verdict. */
enum st_cmp_pair_v st_cmp_agg_add(struct st_cmp_agg *a, const char *name,
				  const struct st_cmp_result *r);
/* A pair of endpoint name that was not compared (counted per endpoint). */
void st_cmp_agg_not_compared(struct st_cmp_agg *a, const char *name);

/* A field's verdict: true = regression. rel/abs get the percentages (reference only). */
struct st_cmp_fverdict {
	bool regression;
	bool likely_noise;           /* no reference: the shape heuristic */
	double rel, abs;
};
void st_cmp_field_verdict(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e,
			  const struct st_cmp_field *f, struct st_cmp_fverdict *v);
/* The latency verdict of an endpoint: candidate against reference (or production). */
void st_cmp_endpoint_latency(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e,
			     struct st_cmp_lat_test *t);
/* Endpoints (other included when used) sorted worst first; the caller frees the array. */
struct st_cmp_endpoint **st_cmp_agg_sorted(const struct st_cmp_agg *a, uint32_t *n);
/* Regression fields of e. */
uint32_t st_cmp_endpoint_regressions(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e);

/*
 * The run's verdict, one for every output (the HTML banner, the JSON report, the line on
 * stderr, the exit status of --fail-on-*, the daemon's metrics): FAIL when a field regressed
 * or an endpoint is slower; else NOT ENOUGH DATA below ST_CMP_VERDICT_MIN_PAIRS compared
 * pairs; else PASS. Latency is judged only where both sides have ST_CMP_LAT_MIN_N samples:
 * "0 slower" is never claimed from endpoints without enough (judged says how many had).
 */
#define ST_CMP_VERDICT_MIN_PAIRS 10

enum st_cmp_outcome { ST_CMP_PASS = 0, ST_CMP_FAIL, ST_CMP_NOT_ENOUGH };

struct st_cmp_verdict {
	enum st_cmp_outcome result;
	uint64_t compared;            /* pairs */
	uint32_t endpoints;           /* with a pair (other included) */
	uint32_t regressions;         /* regression fields, over every endpoint */
	uint32_t regression_endpoints;
	uint32_t slower;              /* endpoints whose latency verdict is slower */
	uint32_t judged;              /* endpoints with enough samples for a latency verdict */
};

void st_cmp_agg_verdict(const struct st_cmp_agg *a, struct st_cmp_verdict *v);
/* "pass", "fail", "not_enough_data" (JSON, metrics' label) */
const char *st_cmp_outcome_name(enum st_cmp_outcome r);
/* "PASS", "FAIL", "NOT ENOUGH DATA" (the banner, the line) */
const char *st_cmp_outcome_title(enum st_cmp_outcome r);
/* The verdict in words: "3 regressions in 2 endpoints, 1 slower (latency judged in 4 of 5
 * endpoints); 1200 pairs compared". Returns buf. */
const char *st_cmp_verdict_str(const struct st_cmp_verdict *v, char *buf, size_t len);

/* The exit status a verdict gives: 3 (ST_EXIT_VERDICT) when fail_on_regression and a field
 * regressed, or fail_on_slower and an endpoint is slower; else 0. */
int st_cmp_verdict_status(const struct st_cmp_verdict *v, bool fail_on_regression,
			  bool fail_on_slower);

/* Adds n pairs answered with code to a side's status mix (past ST_CMP_STATUS_MAX codes: other).
 * False when a count would pass ST_CMP_COUNT_MAX (st_cmp_count_add). */
bool st_cmp_status_add(struct st_cmp_status *s, uint16_t code, uint64_t n);
/* The field of e at path (created, or the "(other fields)" row past ST_CMP_FIELDS_MAX), as one
 * run makes it; NULL when out of memory. */
struct st_cmp_field *st_cmp_endpoint_field(struct st_cmp_endpoint *e, const char *path,
					   uint8_t kind, const char *note);
/* The correlated field of e at path (created, or past ST_CMP_CORR_FIELDS_MAX - 1 fields the
 * "(other fields)" row, the last). */
struct st_cmp_corr_field *st_cmp_endpoint_corr(struct st_cmp_endpoint *e, const char *path);
/* A sample's key for the merge's choice (a hash of all it shows). */
uint64_t st_cmp_sample_key(const struct st_cmp_sample *s);

/*
 * a += b, as if b's pairs had been added to a (docs/COMPARE.md, "Merging reports"): counts
 * and latency buckets add, endpoints are matched by name (new ones past max_endpoints go to
 * "other", b's "other" too), fields by path (the same cap as one run), status codes by code.
 * Correlated fields are matched by path too (their own cap) and ordered by count, path.
 * Of a field's samples, the ST_CMP_SAMPLES with the smallest st_cmp_sample_key are kept
 * (identical ones once), so whatever the order or grouping of merges the same are kept;
 * fields are then ordered by raw, noise, path and status codes by code, so that the result
 * does not depend on the order either. Verdicts are not stored: they are computed from the
 * merged counts and buckets when read. The configurations must agree (the caller checks).
 * 0, -ENOMEM when memory ran out (some fields were not merged), or -EOVERFLOW when a sum
 * would pass ST_CMP_COUNT_MAX (three parts of 2^63 - 1 pairs): the result is not a report then.
 */
int st_cmp_agg_merge(struct st_cmp_agg *a, const struct st_cmp_agg *b);

#endif /* ST_COMPARE_AGG_H */
