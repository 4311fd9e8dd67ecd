/* SPDX-License-Identifier: GPL-2.0-only */
/* The canary verdict: watch's reports of two groups, tested per endpoint (canary.h). */
#include "canary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare_report.h"
#include "hash.h"
#include "json.h"
#include "log.h"

const char *st_canary_verdict_name(enum st_canary_v v)
{
	return v == ST_CANARY_FAIL ? "fail" : v == ST_CANARY_LOW ? "not enough traffic" : "pass";
}

static const char *const group_name[ST_CANARY_NGROUPS] = { "canary", "baseline" };

/* ---- the table of endpoints ----------------------------------------------------------------- */

int st_canary_init(struct st_canary *c)
{
	memset(c, 0, sizeof(*c));
	c->nslot = 1;
	while (c->nslot < 2 * ST_CANARY_ENDPOINTS_MAX)
		c->nslot *= 2;
	c->slot = calloc(c->nslot, sizeof(*c->slot));
	c->ep = calloc(16, sizeof(*c->ep));
	if (!c->slot || !c->ep) {
		st_canary_free(c);
		return -ENOMEM;
	}
	c->cap = 16;
	c->n = 1;
	snprintf(c->ep[0].name, sizeof(c->ep[0].name), "other");
	snprintf(c->all.name, sizeof(c->all.name), "(all)");
	return 0;
}

void st_canary_free(struct st_canary *c)
{
	free(c->slot);
	free(c->ep);
	memset(c, 0, sizeof(*c));
}

/* The endpoint named name, created while there is room; "other" after. NULL: no memory. */
static struct st_canary_ep *endpoint(struct st_canary *c, const char *name)
{
	uint32_t mask = c->nslot - 1;
	uint32_t i = (uint32_t)st_fnv1a(ST_FNV1A_INIT, name, strlen(name)) & mask;
	struct st_canary_ep *e;

	for (; c->slot[i]; i = (i + 1) & mask)
		if (!strcmp(c->ep[c->slot[i] - 1].name, name))
			return &c->ep[c->slot[i] - 1];
	if (c->n > ST_CANARY_ENDPOINTS_MAX)
		return &c->ep[0];
	if (c->n == c->cap) {
		uint32_t ncap = c->cap * 2;
		struct st_canary_ep *n = realloc(c->ep, ncap * sizeof(*n));

		if (!n)
			return NULL;
		c->ep = n;
		c->cap = ncap;
	}
	e = &c->ep[c->n];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	c->slot[i] = ++c->n;
	return e;
}

/* ---- reading a watch report ------------------------------------------------------------------- */

/* The series of one file, summed per endpoint before they join the table: a file that fails
 * halfway adds nothing. */
struct part {
	char name[ST_CANARY_NAME_MAX];
	uint64_t req, err;
	uint64_t lat[ST_WATCH_BUCKETS_MAX + 1];
};

static int load_bounds(struct st_json_rd *r, uint32_t root, struct st_watch_bounds *b)
{
	uint32_t a = st_json_rd_member(r, root, "latency_bounds_seconds");

	b->n = 0;
	if (!st_json_rd_is(r, a, ST_JSON_ARRAY) || !st_json_rd_node(r, a)->n ||
	    st_json_rd_node(r, a)->n > ST_WATCH_BUCKETS_MAX)
		return st_json_rd_fail(r, "\"latency_bounds_seconds\" is not a list of 1 to %d "
				       "bounds", ST_WATCH_BUCKETS_MAX);
	for (uint32_t i = st_json_rd_child(r, a); i; i = st_json_rd_next(r, i)) {
		double v;

		if (st_json_rd_num_dbl(r, i, "latency bound", &v))
			return -1;
		if (!isfinite(v) || v <= 0 || (b->n && v <= b->b[b->n - 1]))
			return st_json_rd_fail(r, "latency bounds are not positive and increasing");
		b->b[b->n++] = v;
	}
	return 0;
}

/* "500".."599" or the class row "5xx". */
static bool is_error(const char *code)
{
	return code[0] == '5' && strlen(code) == 3 &&
	       ((code[1] >= '0' && code[1] <= '9' && code[2] >= '0' && code[2] <= '9') ||
		!strcmp(code, "5xx"));
}

static bool code_ok(const char *code)
{
	size_t n = strlen(code);

	if (!strcmp(code, "none") || !strcmp(code, "other"))
		return true;
	if (n != 3 || code[0] < '1' || code[0] > '9')
		return false;
	return (code[1] == 'x' && code[2] == 'x' && code[0] <= '5') ||
	       (code[1] >= '0' && code[1] <= '9' && code[2] >= '0' && code[2] <= '9');
}

static bool method_ok(const char *m)
{
	if (!*m)
		return false;
	for (; *m; m++)
		if (!(*m >= 'A' && *m <= 'Z'))
			return false;
	return true;
}

static int load_series(struct st_json_rd *r, uint32_t s, unsigned nb, struct part *p)
{
	char ep[ST_CMP_ENDPOINT_MAX], method[24], code[8];
	uint32_t h, counts;
	uint64_t sum = 0;
	unsigned k = 0;

	memset(p, 0, sizeof(*p));
	r->where[0] = 0;
	if (!st_json_rd_is(r, s, ST_JSON_OBJECT))
		return st_json_rd_fail(r, "a series is not an object");
	if (st_json_rd_str(r, s, "endpoint", ep, sizeof(ep)) ||
	    st_json_rd_str(r, s, "method", method, sizeof(method)) ||
	    st_json_rd_str(r, s, "code", code, sizeof(code)))
		return -1;
	snprintf(r->where, sizeof(r->where), "series %s %s %s", method, ep, code);
	if (!method_ok(method))
		return st_json_rd_fail(r, "\"method\" is not a method name");
	if (!code_ok(code))
		return st_json_rd_fail(r, "\"code\" is not a status code, a class or none");
	if (st_json_rd_u64(r, s, "requests", ST_CMP_COUNT_MAX, &p->req))
		return -1;
	h = st_json_rd_member(r, s, "first_byte_seconds");
	counts = st_json_rd_member(r, h, "counts");
	if (!st_json_rd_is(r, h, ST_JSON_OBJECT) || !st_json_rd_is(r, counts, ST_JSON_ARRAY) ||
	    st_json_rd_node(r, counts)->n != nb + 1)
		return st_json_rd_fail(r, "\"first_byte_seconds\" has not %u counts", nb + 1);
	for (uint32_t i = st_json_rd_child(r, counts); i; i = st_json_rd_next(r, i), k++) {
		if (st_json_rd_num_u64(r, i, "count", ST_CMP_COUNT_MAX, &p->lat[k]) ||
		    !st_cmp_count_add(&sum, p->lat[k]))
			return st_json_rd_fail(r, "latency counts past %llu or not whole numbers",
					       (unsigned long long)ST_CMP_COUNT_MAX);
	}
	if (sum > p->req)
		return st_json_rd_fail(r, "latency counts hold more than \"requests\"");
	p->err = is_error(code) ? p->req : 0;
	/* the endpoint's name as the reports say it: the method, then the path */
	snprintf(p->name, sizeof(p->name), "%s %s", method, ep);
	return 0;
}

static bool ep_add(struct st_canary_ep *e, int g, const struct part *p, unsigned nb)
{
	bool ok = st_cmp_count_add(&e->req[g], p->req) && st_cmp_count_add(&e->err[g], p->err);

	for (unsigned i = 0; i <= nb; i++)
		ok &= st_cmp_count_add(&e->lat[g][i], p->lat[i]);
	return ok;
}

static int load(struct st_canary *c, int g, struct st_json_rd *r)
{
	struct st_watch_bounds b;
	struct part *parts = NULL;
	char fmt[64], host[ST_CANARY_HOST_MAX];
	uint64_t ver;
	uint32_t series, np = 0;
	int rc = -1;

	if (st_json_rd_node(r, 0)->type != ST_JSON_OBJECT) /* the root: index 0 */
		return st_json_rd_fail(r, "not a JSON object");
	if (st_json_rd_str(r, 0, "format", fmt, sizeof(fmt)) || strcmp(fmt, ST_WATCH_REPORT_FORMAT))
		return st_json_rd_fail(r, "not a watch report (\"format\": \"%s\")",
				       ST_WATCH_REPORT_FORMAT);
	if (st_json_rd_u64(r, 0, "format_version", 1000, &ver))
		return -1;
	if (ver != ST_WATCH_REPORT_VERSION)
		return st_json_rd_fail(r, "format version %llu: this shadowtap reads version %d",
				       (unsigned long long)ver, ST_WATCH_REPORT_VERSION);
	if (st_json_rd_str(r, 0, "host", host, sizeof(host)) || load_bounds(r, 0, &b))
		return -1;
	if (c->have_bounds && (b.n != c->bounds.n || memcmp(b.b, c->bounds.b, b.n * sizeof(b.b[0]))))
		return st_json_rd_fail(r, "its latency buckets differ from the files read before "
				       "(every watch must use the same --buckets)");
	series = st_json_rd_member(r, 0, "series");
	if (!st_json_rd_is(r, series, ST_JSON_ARRAY))
		return st_json_rd_fail(r, "\"series\" is missing");
	parts = calloc(st_json_rd_node(r, series)->n + 1, sizeof(*parts));
	if (!parts)
		return st_json_rd_fail(r, "out of memory");
	for (uint32_t s = st_json_rd_child(r, series); s; s = st_json_rd_next(r, s))
		if (load_series(r, s, b.n, &parts[np++]))
			goto out;
	r->where[0] = 0;
	/* every check passed: now it counts */
	c->bounds = b;
	c->have_bounds = true;
	for (uint32_t i = 0; i < np; i++) {
		struct st_canary_ep *e = endpoint(c, parts[i].name);

		if (!e) {
			st_json_rd_fail(r, "out of memory");
			goto out;
		}
		if (!ep_add(e, g, &parts[i], b.n) || !ep_add(&c->all, g, &parts[i], b.n)) {
			st_json_rd_fail(r, "sums past %llu", (unsigned long long)ST_CMP_COUNT_MAX);
			goto out;
		}
	}
	if (c->nhosts[g] < ST_CANARY_HOSTS_MAX) {
		st_cmp_utf8_fix(host);
		snprintf(c->hosts[g][c->nhosts[g]++], ST_CANARY_HOST_MAX, "%s", host);
	}
	c->files[g]++;
	rc = 0;
out:
	free(parts);
	return rc;
}

int st_canary_load(struct st_canary *c, int g, const char *buf, size_t len, char *err,
		   size_t errlen)
{
	struct st_json_doc d;
	struct st_json_rd r = { .d = &d, .err = err, .errlen = errlen };
	int rc;

	if (g < 0 || g >= ST_CANARY_NGROUPS)
		return -1;
	if (len > ST_CANARY_FILE_MAX) {
		snprintf(err, errlen, "larger than %u MiB", ST_CANARY_FILE_MAX >> 20);
		return -1;
	}
	/* a report nests 5 deep; a value needs at least 1 byte */
	st_json_doc_init(&d, (uint32_t)len + 1, 8);
	if (st_json_parse(&d, buf, len)) {
		snprintf(err, errlen, "not JSON (%s at byte %zu)", st_json_strerror(d.err), d.err_off);
		st_json_doc_free(&d);
		return -1;
	}
	rc = load(c, g, &r);
	st_json_doc_free(&d);
	return rc;
}

int st_canary_read(struct st_canary *c, int g, const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	if (st_json_read_file(path, ST_CANARY_FILE_MAX, &buf, &len, err, errlen))
		return -1;
	rc = st_canary_load(c, g, buf, len, err, errlen);
	free(buf);
	return rc;
}

/* ---- the statistics ------------------------------------------------------------------------------ */

static double lchoose(double n, double k)
{
	return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
}

double st_canary_fisher(uint64_t a, uint64_t n1, uint64_t b, uint64_t n2)
{
	/* X: the first group's errors among K = a + b errors, n1 of N = n1 + n2 drawn */
	double N = (double)n1 + (double)n2, K = (double)a + (double)b, n = (double)n1;
	double kmin = fmax(0, n + K - N), kmax = fmin(K, n), mode, base, sum = 0;

	if (!n1 || !n2 || a > n1 || b > n2)
		return 1;
	mode = floor((n + 1) * (K + 1) / (N + 2));
	base = lchoose(N, n);
	/* the terms fall away from the mode on both sides: sum the side away from it, from
	 * the observed count, until they no longer count */
	if ((double)a > mode) {
		for (double k = (double)a; k <= kmax; k++) {
			double t = exp(lchoose(K, k) + lchoose(N - K, n - k) - base);

			sum += t;
			if (t < sum * 1e-17)
				break;
		}
		return fmin(1, sum);
	}
	for (double k = (double)a - 1; k >= kmin; k--) {
		double t = exp(lchoose(K, k) + lchoose(N - K, n - k) - base);

		sum += t;
		if (t < sum * 1e-17)
			break;
	}
	return fmax(0, fmin(1, 1 - sum));
}

/* z such that a standard normal is beyond +-z with probability alpha. */
static double z_two_sided(double alpha)
{
	double lo = 0, hi = 40;

	for (int i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (erfc(mid / M_SQRT2) > alpha)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

static void wilson(double x, double n, double z, double *lo, double *hi)
{
	double p = x / n, z2 = z * z, d = 1 + z2 / n;
	double c = (p + z2 / (2 * n)) / d, h = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / d;

	*lo = fmax(0, c - h);
	*hi = fmin(1, c + h);
}

void st_canary_diff_ci(uint64_t a, uint64_t n1, uint64_t b, uint64_t n2, double alpha, double *lo,
		       double *hi)
{
	double z = z_two_sided(alpha), l1, u1, l2, u2, p1, p2;

	if (!n1 || !n2) {
		*lo = -1;
		*hi = 1;
		return;
	}
	p1 = (double)a / (double)n1;
	p2 = (double)b / (double)n2;
	wilson((double)a, (double)n1, z, &l1, &u1);
	wilson((double)b, (double)n2, z, &l2, &u2);
	*lo = p1 - p2 - sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2));
	*hi = p1 - p2 + sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2));
}

static bool enough(const struct st_canary *c, const struct st_canary_ep *e)
{
	return e->req[ST_CANARY] >= c->opts.min_requests && e->req[ST_BASELINE] >= c->opts.min_requests;
}

static void latency(const struct st_canary *c, struct st_canary_ep *e)
{
	double a[ST_WATCH_BUCKETS_MAX + 1], b[ST_WATCH_BUCKETS_MAX + 1], mid[ST_WATCH_BUCKETS_MAX + 1];
	unsigned n = c->bounds.n + 1;

	for (unsigned i = 0; i < n; i++) {
		a[i] = (double)e->lat[ST_CANARY][i];
		b[i] = (double)e->lat[ST_BASELINE][i];
		mid[i] = st_watch_agg_bucket_mid(&c->bounds, i);
	}
	st_cmp_mwu(a, b, mid, n, &e->lat_test);
	for (int g = 0; g < ST_CANARY_NGROUPS; g++) {
		e->p50[g] = st_watch_agg_quantile(&c->bounds, e->lat[g], 0.5);
		e->p99[g] = st_watch_agg_quantile(&c->bounds, e->lat[g], 0.99);
	}
}

void st_canary_judge(struct st_canary *c, const struct st_canary_opts *o)
{
	c->opts = *o;
	if (!c->opts.min_requests)
		c->opts.min_requests = ST_CANARY_MIN_REQUESTS_DEFAULT;
	if (!(c->opts.alpha > 0 && c->opts.alpha < 1))
		c->opts.alpha = ST_CANARY_ALPHA_DEFAULT;
	if (c->opts.min_diff < 0)
		c->opts.min_diff = ST_CANARY_MIN_DIFF_DEFAULT;
	if (c->opts.lat_min < 0)
		c->opts.lat_min = ST_CANARY_LAT_MIN_DEFAULT;
	if (!c->have_bounds)
		st_watch_bounds_latency(&c->bounds);
	/* m: an error test per endpoint judged (and for all of them), a latency test per
	 * endpoint judged with latencies on both sides */
	c->tests = c->judged = c->failed = 0;
	for (uint32_t i = 0; i <= c->n; i++) {
		struct st_canary_ep *e = i < c->n ? &c->ep[i] : &c->all;

		for (int g = 0; g < ST_CANARY_NGROUPS; g++)
			e->ratio[g] = e->req[g] ? (double)e->err[g] / (double)e->req[g] : 0;
		e->diff = e->ratio[ST_CANARY] - e->ratio[ST_BASELINE];
		latency(c, e);
		e->verdict = ST_CANARY_LOW;
		e->err_fail = e->lat_fail = false;
		e->lat_judged = e != &c->all && e->lat_test.n1 >= ST_CMP_LAT_MIN_N &&
				e->lat_test.n2 >= ST_CMP_LAT_MIN_N;
		if (!enough(c, e))
			continue;
		c->judged++;
		c->tests += 1 + e->lat_judged;
	}
	c->alpha_each = c->tests ? c->opts.alpha / c->tests : c->opts.alpha;
	for (uint32_t i = 0; i <= c->n; i++) {
		struct st_canary_ep *e = i < c->n ? &c->ep[i] : &c->all;
		const struct st_cmp_mwu *m = &e->lat_test;

		e->err_p = st_canary_fisher(e->err[ST_CANARY], e->req[ST_CANARY], e->err[ST_BASELINE],
					    e->req[ST_BASELINE]);
		st_canary_diff_ci(e->err[ST_CANARY], e->req[ST_CANARY], e->err[ST_BASELINE],
				  e->req[ST_BASELINE], c->alpha_each, &e->diff_lo, &e->diff_hi);
		if (!enough(c, e))
			continue;
		e->err_fail = e->err_p < c->alpha_each && e->diff >= c->opts.min_diff;
		/* slower: tap compare's rule, at the corrected level */
		e->lat_fail = e->lat_judged && m->p < c->alpha_each && m->u > m->mu &&
			      m->shift >= fmax(c->opts.lat_min, ST_CMP_LAT_SHIFT * e->p50[ST_BASELINE]);
		e->verdict = e->err_fail || e->lat_fail ? ST_CANARY_FAIL : ST_CANARY_PASS;
		c->failed += e->verdict == ST_CANARY_FAIL;
	}
	c->verdict = c->failed ? ST_CANARY_FAIL : c->judged ? ST_CANARY_PASS : ST_CANARY_LOW;
}

static int ep_rank(const void *x, const void *y)
{
	const struct st_canary_ep *a = *(const struct st_canary_ep *const *)x;
	const struct st_canary_ep *b = *(const struct st_canary_ep *const *)y;
	static const int order[] = { [ST_CANARY_FAIL] = 0, [ST_CANARY_PASS] = 1, [ST_CANARY_LOW] = 2 };

	if (order[a->verdict] != order[b->verdict])
		return order[a->verdict] - order[b->verdict];
	if (a->err_p != b->err_p)
		return a->err_p < b->err_p ? -1 : 1;
	if (a->req[ST_CANARY] + a->req[ST_BASELINE] != b->req[ST_CANARY] + b->req[ST_BASELINE])
		return a->req[ST_CANARY] + a->req[ST_BASELINE] >
			       b->req[ST_CANARY] + b->req[ST_BASELINE] ? -1 : 1;
	return strcmp(a->name, b->name);
}

struct st_canary_ep **st_canary_sorted(const struct st_canary *c, uint32_t *n)
{
	struct st_canary_ep **v = calloc(c->n + 1, sizeof(*v));
	uint32_t k = 0;

	*n = 0;
	if (!v)
		return NULL;
	v[k++] = (struct st_canary_ep *)&c->all;
	for (uint32_t i = 0; i < c->n; i++)
		if (c->ep[i].req[ST_CANARY] || c->ep[i].req[ST_BASELINE])
			v[k++] = (struct st_canary_ep *)&c->ep[i];
	qsort(v + 1, k - 1, sizeof(*v), ep_rank);
	*n = k;
	return v;
}

/* ---- the reports ---------------------------------------------------------------------------------- */

static void jstr(FILE *f, const char *s)
{
	st_cmp_json_str(f, s, strlen(s));
}

static void jnum(FILE *f, double v)
{
	char b[40];

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	st_prom_float(b, sizeof(b), v);
	fputs(b, f);
}

static void jpair(FILE *f, const char *key, double c, double b)
{
	fprintf(f, ", \"%s\": [", key);
	jnum(f, c);
	fputs(", ", f);
	jnum(f, b);
	fputc(']', f);
}

static const char *lat_word(const struct st_canary_ep *e)
{
	const struct st_cmp_mwu *m = &e->lat_test;

	if (!e->lat_judged)
		return "not judged";
	if (e->lat_fail)
		return "slower";
	return m->u > m->mu ? "same or slower" : "same or faster";
}

void st_canary_json(FILE *f, const struct st_canary *c, const struct st_canary_run *run)
{
	struct st_canary_ep **v;
	char t[40];
	uint32_t n;

	st_cmp_time_str(t, sizeof(t), run->now_ns);
	fprintf(f, "{\"format\": \"%s\", \"format_version\": %d, \"generated\": \"%s\", "
		   "\"verdict\": \"%s\", \"min_requests\": %llu, \"alpha\": ",
		ST_CANARY_REPORT_FORMAT, ST_CANARY_REPORT_VERSION, t,
		st_canary_verdict_name((enum st_canary_v)c->verdict),
		(unsigned long long)c->opts.min_requests);
	jnum(f, c->opts.alpha);
	fprintf(f, ", \"tests\": %u, \"alpha_each\": ", c->tests);
	jnum(f, c->alpha_each);
	fputs(", \"min_error_diff\": ", f);
	jnum(f, c->opts.min_diff);
	fputs(", \"latency_min_seconds\": ", f);
	jnum(f, c->opts.lat_min);
	fprintf(f, ", \"endpoints_judged\": %u, \"endpoints_failed\": %u, \"groups\": {", c->judged,
		c->failed);
	for (int g = 0; g < ST_CANARY_NGROUPS; g++) {
		fprintf(f, "%s\"%s\": {\"requests\": %llu, \"errors\": %llu, \"files\": [", g ? ", " : "",
			group_name[g], (unsigned long long)c->all.req[g],
			(unsigned long long)c->all.err[g]);
		for (unsigned i = 0; i < run->nfiles[g]; i++) {
			fputs(i ? ", " : "", f);
			jstr(f, run->files[g][i]);
		}
		fputs("], \"hosts\": [", f);
		for (unsigned i = 0; i < c->nhosts[g]; i++) {
			fputs(i ? ", " : "", f);
			jstr(f, c->hosts[g][i]);
		}
		fputs("]}", f);
	}
	fputs("}, \"endpoints\": [", f);
	v = st_canary_sorted(c, &n);
	for (uint32_t i = 0; v && i < n; i++) {
		const struct st_canary_ep *e = v[i];

		fputs(i ? ",\n  {\"endpoint\": " : "\n  {\"endpoint\": ", f);
		jstr(f, e->name);
		fprintf(f, ", \"verdict\": \"%s\", \"requests\": [%llu, %llu], \"errors\": [%llu, %llu]",
			st_canary_verdict_name((enum st_canary_v)e->verdict),
			(unsigned long long)e->req[0], (unsigned long long)e->req[1],
			(unsigned long long)e->err[0], (unsigned long long)e->err[1]);
		jpair(f, "error_ratio", e->ratio[0], e->ratio[1]);
		fputs(", \"error_diff\": ", f);
		jnum(f, e->diff);
		jpair(f, "error_diff_interval", e->diff_lo, e->diff_hi);
		fputs(", \"error_p\": ", f);
		jnum(f, e->err_p);
		fprintf(f, ", \"error_fail\": %s, \"latency\": {\"verdict\": \"%s\"",
			e->err_fail ? "true" : "false", lat_word(e));
		jpair(f, "p50_seconds", e->p50[0], e->p50[1]);
		jpair(f, "p99_seconds", e->p99[0], e->p99[1]);
		fputs(", \"shift_seconds\": ", f);
		jnum(f, e->lat_test.shift);
		fputs(", \"p\": ", f);
		jnum(f, e->lat_test.p);
		fprintf(f, ", \"fail\": %s}}", e->lat_fail ? "true" : "false");
	}
	fputs("\n]}\n", f);
	free(v);
}

static void h_ms(FILE *f, double s)
{
	if (isfinite(s))
		fprintf(f, "%.2f", s * 1000);
	else
		fputs("-", f);
}

void st_canary_html(FILE *f, const struct st_canary *c, const struct st_canary_run *run)
{
	const char *cls = c->verdict == ST_CANARY_FAIL ? "bad" : c->verdict == ST_CANARY_PASS ? "good" :
											      "warn";
	struct st_canary_ep **v;
	char t[40];
	uint32_t n;

	st_cmp_time_str(t, sizeof(t), run->now_ns);
	v = st_canary_sorted(c, &n);
	st_cmp_html_page(f, "shadowtap canary report");
	fputs("<header><h1>shadowtap canary</h1><p>", f);
	for (int g = 0; g < ST_CANARY_NGROUPS; g++) {
		fprintf(f, "%s%s: %u report%s", g ? " &middot; " : "", group_name[g], c->files[g],
			c->files[g] == 1 ? "" : "s");
		for (unsigned i = 0; i < c->nhosts[g]; i++) {
			fputs(i ? ", " : " from <code>", f);
			st_cmp_html_str(f, c->hosts[g][i]);
			if (i + 1 == c->nhosts[g])
				fputs("</code>", f);
		}
	}
	fprintf(f, " &middot; %s</p></header><main>", t);

	fprintf(f, "<section id=\"verdict\" class=\"box verdict %s\"><h2>Verdict</h2><p><strong>%s"
		   "</strong>: ", cls, st_canary_verdict_name((enum st_canary_v)c->verdict));
	if (c->verdict == ST_CANARY_LOW)
		fprintf(f, "no endpoint has %llu requests in each group yet.",
			(unsigned long long)c->opts.min_requests);
	else
		fprintf(f, "%u of %u endpoint%s judged failed (each test at p &lt; %.2g: %g over %u "
			   "tests).", c->failed, c->judged, c->judged == 1 ? "" : "s", c->alpha_each,
			c->opts.alpha, c->tests);
	fputs("</p><ul>", f);
	for (uint32_t i = 0; v && i < n; i++) {
		const struct st_canary_ep *e = v[i];

		if (e->verdict != ST_CANARY_FAIL)
			continue;
		fputs("<li class=\"regression\"><code>", f);
		st_cmp_html_str(f, e->name);
		fputs("</code>:", f);
		if (e->err_fail)
			fprintf(f, " errors %.2f%% against %.2f%% (p = %.2g)", e->ratio[0] * 100,
				e->ratio[1] * 100, e->err_p);
		if (e->lat_fail)
			fprintf(f, "%s slower by %.2f ms (median shift, p = %.2g)",
				e->err_fail ? ";" : "", e->lat_test.shift * 1000, e->lat_test.p);
		fputs("</li>", f);
	}
	fputs("</ul></section>", f);

	fputs("<section><h2>Endpoints</h2><table id=\"endpoints\"><thead><tr><th>endpoint</th>"
	      "<th>verdict</th><th>requests (canary / baseline)</th><th>errors (canary / baseline)"
	      "</th><th>difference (interval)</th><th>p</th><th>p50 ms</th><th>p99 ms</th>"
	      "<th>latency</th></tr></thead><tbody>", f);
	for (uint32_t i = 0; v && i < n; i++) {
		const struct st_canary_ep *e = v[i];
		const char *vb = e->verdict == ST_CANARY_FAIL ? "regression" :
				 e->verdict == ST_CANARY_PASS ? "ok" : "same";

		fprintf(f, "<tr class=\"endpoint%s\" data-endpoint=\"", e->verdict == ST_CANARY_FAIL ?
									     " regression" : "");
		st_cmp_html_str(f, e->name);
		fputs("\"><td><code>", f);
		st_cmp_html_str(f, e->name);
		fputs("</code></td><td>", f);
		st_cmp_html_badge(f, vb, st_canary_verdict_name((enum st_canary_v)e->verdict));
		fprintf(f, "</td><td class=\"n\">%llu / %llu</td><td class=\"n\">%.2f%% / %.2f%%</td>"
			   "<td class=\"n\">%+.2f (%+.2f, %+.2f) points</td><td class=\"n\">%.2g</td>"
			   "<td class=\"n\">",
			(unsigned long long)e->req[0], (unsigned long long)e->req[1], e->ratio[0] * 100,
			e->ratio[1] * 100, e->diff * 100, e->diff_lo * 100, e->diff_hi * 100, e->err_p);
		h_ms(f, e->p50[0]);
		fputs(" / ", f);
		h_ms(f, e->p50[1]);
		fputs("</td><td class=\"n\">", f);
		h_ms(f, e->p99[0]);
		fputs(" / ", f);
		h_ms(f, e->p99[1]);
		fputs("</td><td>", f);
		st_cmp_html_badge(f, e->lat_fail ? "slower" : "same", lat_word(e));
		if (e->lat_judged)
			fprintf(f, " <span class=\"muted\">shift %+.2f ms, p = %.2g</span>",
				e->lat_test.shift * 1000, e->lat_test.p);
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table></section>", f);

	fprintf(f, "<section id=\"notes\" class=\"box\"><h2>How to read this report</h2><ul>"
		   "<li>Each group is the sum of its watch reports (<code>shadowtap watch "
		   "--report-json</code>), per endpoint: the method and the path template, every "
		   "status code and host together. An endpoint is judged when each group has at "
		   "least %llu requests of it; fewer: <em>not enough traffic</em>. The first row "
		   "is every endpoint together (its errors only).</li>"
		   "<li><strong>Errors</strong> are 5xx answers over all requests. The test is "
		   "Fisher's exact test, one-sided: p is how likely the canary would fail this "
		   "often or more if both groups failed alike. The interval is Newcombe's (hybrid "
		   "score) for the difference of the ratios, at the same level as the tests.</li>"
		   "<li><strong>Latency</strong> is the time from the request's last byte in to the "
		   "answer's first byte out, measured at the tap. The test is Mann&ndash;Whitney U on "
		   "the two bucketed samples (requests in one bucket are ties; two-sided), the shift "
		   "the Hodges&ndash;Lehmann estimate from the buckets' middles: as coarse as the "
		   "buckets. <em>Slower</em> needs p below the level, a shift of at least %g ms and "
		   "at least %.0f%% of the baseline's median.</li>"
		   "<li>An endpoint <strong>fails</strong> when its canary has more errors (p below "
		   "the level and %.2f points more at least) or is slower. The level is %g divided by "
		   "the number of tests (%u): with many endpoints, one verdict stays as sure as "
		   "one test (Bonferroni). The verdict fails when any endpoint fails.</li>"
		   "<li>The statistics assume the requests are independent and both groups get the "
		   "same mix of traffic: a canary taking other clients (a region, a header-based "
		   "route) can differ for that reason alone.</li></ul></section>",
		(unsigned long long)c->opts.min_requests, c->opts.lat_min * 1000,
		ST_CMP_LAT_SHIFT * 100, c->opts.min_diff * 100, c->opts.alpha, c->tests);
	fputs("</main></body></html>\n", f);
	free(v);
}

void st_canary_text(FILE *f, const struct st_canary *c)
{
	struct st_canary_ep **v;
	uint32_t n;

	fprintf(f, "canary verdict: %s (%u of %u endpoints judged failed; requests canary %llu, "
		   "baseline %llu)\n", st_canary_verdict_name((enum st_canary_v)c->verdict), c->failed,
		c->judged, (unsigned long long)c->all.req[ST_CANARY],
		(unsigned long long)c->all.req[ST_BASELINE]);
	v = st_canary_sorted(c, &n);
	for (uint32_t i = 0; v && i < n; i++) {
		const struct st_canary_ep *e = v[i];
		char name[64];

		if (e->verdict != ST_CANARY_FAIL)
			continue;
		/* a name from the files: printed escaped */
		st_log_escape(name, sizeof(name), e->name, strlen(e->name));
		fprintf(f, "  fail %s: errors %.2f%% against %.2f%% (p %.2g)", name, e->ratio[0] * 100,
			e->ratio[1] * 100, e->err_p);
		if (e->lat_fail)
			fprintf(f, "; slower: median shift %.2f ms (p %.2g)", e->lat_test.shift * 1000,
				e->lat_test.p);
		fputc('\n', f);
	}
	free(v);
}

/* ---- figures from a Prometheus server ------------------------------------------------------- */

int st_canary_prom_queries(const char *sel, const char *window, char **req, char **lat)
{
	*req = *lat = NULL;
	if (strchr(sel, '}') || strchr(window, ']'))
		return -1;
	if (asprintf(req, "sum by (endpoint, method, code) (increase("
		     "shadowtap_http_requests_total{%s}[%s]))", sel, window) < 0) {
		*req = NULL;
		return -1;
	}
	if (asprintf(lat, "sum by (endpoint, method, le) (increase("
		     "shadowtap_http_response_first_byte_seconds_bucket{%s}[%s]))", sel, window) < 0) {
		free(*req);
		*req = *lat = NULL;
		return -1;
	}
	return 0;
}

/* The result array of an instant query's vector answer, or 0 after st_json_rd_fail. */
static uint32_t prom_result(struct st_json_rd *r)
{
	char s[32];
	uint32_t data, res;

	if (st_json_rd_node(r, 0)->type != ST_JSON_OBJECT) {
		st_json_rd_fail(r, "not a JSON object");
		return 0;
	}
	if (st_json_rd_str(r, 0, "status", s, sizeof(s)) || strcmp(s, "success")) {
		st_json_rd_fail(r, "\"status\" is not \"success\"");
		return 0;
	}
	data = st_json_rd_member(r, 0, "data");
	if (st_json_rd_str(r, data, "resultType", s, sizeof(s)) || strcmp(s, "vector")) {
		st_json_rd_fail(r, "not a vector (\"resultType\")");
		return 0;
	}
	res = st_json_rd_member(r, data, "result");
	if (!st_json_rd_is(r, res, ST_JSON_ARRAY)) {
		st_json_rd_fail(r, "\"result\" is missing");
		return 0;
	}
	return res;
}

/* A series of the vector: its labels (label = "" when absent) and its value, whole. */
static int prom_sample(struct st_json_rd *r, uint32_t s, const char *const *keys,
		       char (*vals)[ST_CMP_ENDPOINT_MAX], int nkeys, double *v)
{
	uint32_t m = st_json_rd_member(r, s, "metric"), val = st_json_rd_member(r, s, "value");
	char num[64], *end;

	if (!st_json_rd_is(r, m, ST_JSON_OBJECT) || !st_json_rd_is(r, val, ST_JSON_ARRAY) ||
	    st_json_rd_node(r, val)->n != 2)
		return st_json_rd_fail(r, "a series is not {\"metric\": {...}, \"value\": [t, v]}");
	for (int k = 0; k < nkeys; k++) {
		uint32_t i = st_json_rd_member(r, m, keys[k]);

		vals[k][0] = 0;
		if (i && st_json_rd_str_node(r, i, keys[k], vals[k], ST_CMP_ENDPOINT_MAX))
			return -1;
	}
	if (st_json_rd_str_node(r, st_json_rd_next(r, val + 1), "value", num, sizeof(num)))
		return -1;
	*v = strtod(num, &end);
	if (*end || !isfinite(*v) || *v < 0 || *v > (double)ST_CMP_COUNT_MAX)
		return st_json_rd_fail(r, "a value is not a count (%s)", num);
	return 0;
}

struct lat_ent {
	char name[ST_CANARY_NAME_MAX];
	double le, v;
};

static int lat_ent_cmp(const void *x, const void *y)
{
	const struct lat_ent *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : (a->le > b->le) - (a->le < b->le);
}

/* Parses one answer into d (a JSON document kept by the caller). */
static int prom_parse(struct st_json_doc *d, struct st_json_rd *r, const char *buf, size_t len,
		      const char *what)
{
	snprintf(r->where, sizeof(r->where), "%s", what);
	if (len > ST_CANARY_FILE_MAX)
		return st_json_rd_fail(r, "larger than %u MiB", ST_CANARY_FILE_MAX >> 20);
	st_json_doc_init(d, (uint32_t)len + 1, 8);
	if (st_json_parse(d, buf, len)) {
		st_json_rd_fail(r, "not JSON (%s at byte %zu)", st_json_strerror(d->err), d->err_off);
		st_json_doc_free(d);
		return -1;
	}
	return 0;
}

static int prom_requests(struct st_json_rd *r, struct st_canary *tmp, int g)
{
	static const char *const keys[] = { "endpoint", "method", "code" };
	char vals[3][ST_CMP_ENDPOINT_MAX];
	uint32_t res = prom_result(r);

	if (!res)
		return -1;
	for (uint32_t s = st_json_rd_child(r, res); s; s = st_json_rd_next(r, s)) {
		struct part p = { 0 };
		struct st_canary_ep *e;
		double v;

		if (prom_sample(r, s, keys, vals, 3, &v))
			return -1;
		if (!method_ok(vals[1]) || !code_ok(vals[2]))
			return st_json_rd_fail(r, "a series without a method or a code");
		p.req = (uint64_t)llround(v);
		p.err = is_error(vals[2]) ? p.req : 0;
		snprintf(p.name, sizeof(p.name), "%.24s %.159s", vals[1], vals[0]);
		e = endpoint(tmp, p.name);
		if (!e || !ep_add(e, g, &p, 0))
			return st_json_rd_fail(r, "out of memory, or sums past 2^63");
	}
	return 0;
}

static int prom_buckets(struct st_json_rd *r, struct st_canary *tmp, int g,
			struct st_watch_bounds *b)
{
	static const char *const keys[] = { "endpoint", "method", "le" };
	char vals[3][ST_CMP_ENDPOINT_MAX];
	uint32_t res = prom_result(r), n = 0, i = 0;
	struct lat_ent *v;
	bool first = true;
	int rc = -1;

	if (!res)
		return -1;
	v = calloc(st_json_rd_node(r, res)->n + 1, sizeof(*v));
	if (!v)
		return st_json_rd_fail(r, "out of memory");
	for (uint32_t s = st_json_rd_child(r, res); s; s = st_json_rd_next(r, s), n++) {
		char *end;

		if (prom_sample(r, s, keys, vals, 3, &v[n].v))
			goto out;
		v[n].le = strtod(vals[2], &end);
		if (!method_ok(vals[1]) || !vals[2][0] || *end || !(v[n].le > 0)) {
			st_json_rd_fail(r, "a bucket without a method or a bound (\"le\")");
			goto out;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%.24s %.159s", vals[1], vals[0]);
	}
	qsort(v, n, sizeof(*v), lat_ent_cmp);
	/* per endpoint: cumulative counts by le, +Inf last; every endpoint the same bounds */
	while (i < n) {
		uint32_t j = i;
		struct st_watch_bounds eb = { 0 };
		struct part p = { 0 };
		struct st_canary_ep *e;
		double prev = 0;

		while (j < n && !strcmp(v[j].name, v[i].name))
			j++;
		if (!isinf(v[j - 1].le) || j - i - 1 > ST_WATCH_BUCKETS_MAX || j - i < 2) {
			st_json_rd_fail(r, "%s: its buckets do not end in le=\"+Inf\" or are more than "
					"%d", v[i].name, ST_WATCH_BUCKETS_MAX);
			goto out;
		}
		for (uint32_t k = i; k + 1 < j; k++)
			eb.b[eb.n++] = v[k].le;
		if (!first && (eb.n != b->n || memcmp(eb.b, b->b, eb.n * sizeof(eb.b[0])))) {
			st_json_rd_fail(r, "%s: other latency buckets than the other endpoints'",
					v[i].name);
			goto out;
		}
		*b = eb;
		first = false;
		for (uint32_t k = i; k < j; k++) {
			/* increase() extrapolates each bucket alone: a cumulative count may fall
			 * a little short of the one below it */
			double c = (double)llround(v[k].v) - prev;

			p.lat[k - i] = c > 0 ? (uint64_t)c : 0;
			prev = fmax(prev, (double)llround(v[k].v));
		}
		snprintf(p.name, sizeof(p.name), "%s", v[i].name);
		e = endpoint(tmp, p.name);
		if (!e || !ep_add(e, g, &p, b->n)) {
			st_json_rd_fail(r, "out of memory, or sums past 2^63");
			goto out;
		}
		i = j;
	}
	if (first)
		st_watch_bounds_latency(b); /* no latency at all: the defaults, nothing counted */
	rc = 0;
out:
	free(v);
	return rc;
}

int st_canary_load_prom(struct st_canary *c, int g, const char *requests, size_t rlen,
			const char *buckets, size_t blen, char *err, size_t errlen)
{
	struct st_json_doc d;
	struct st_json_rd r = { .d = &d, .err = err, .errlen = errlen };
	struct st_watch_bounds b;
	struct st_canary tmp;
	int rc = -1;

	if (g < 0 || g >= ST_CANARY_NGROUPS || st_canary_init(&tmp)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!prom_parse(&d, &r, requests, rlen, "the requests' answer")) {
		rc = prom_requests(&r, &tmp, g);
		st_json_doc_free(&d);
		if (!rc && !(rc = prom_parse(&d, &r, buckets, blen, "the buckets' answer"))) {
			rc = prom_buckets(&r, &tmp, g, &b);
			st_json_doc_free(&d);
		}
	}
	if (!rc && c->have_bounds && tmp.n > 1 &&
	    (b.n != c->bounds.n || memcmp(b.b, c->bounds.b, b.n * sizeof(b.b[0])))) {
		snprintf(err, errlen, "other latency buckets than the figures read before");
		rc = -1;
	}
	/* every check passed: now it counts */
	for (uint32_t i = 0; !rc && i < tmp.n; i++) {
		struct st_canary_ep *e = i ? endpoint(c, tmp.ep[i].name) : &c->ep[0];
		struct part p = { .req = tmp.ep[i].req[g], .err = tmp.ep[i].err[g] };

		memcpy(p.lat, tmp.ep[i].lat[g], sizeof(p.lat));
		if (!e || !ep_add(e, g, &p, b.n) || !ep_add(&c->all, g, &p, b.n)) {
			snprintf(err, errlen, "out of memory, or sums past 2^63");
			rc = -1;
		}
	}
	if (!rc) {
		if (tmp.n > 1) {
			c->bounds = b;
			c->have_bounds = true;
		}
		c->files[g]++;
	}
	st_canary_free(&tmp);
	return rc;
}
