/* SPDX-License-Identifier: GPL-2.0-only */
/* watch's aggregate: series, histograms, Prometheus families, the report (watch_agg.h). */
#include "watch_agg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare_report.h"
#include "grpc.h"
#include "hash.h"
#include "http.h"

/* ---- bounds ---------------------------------------------------------------------------------- */

void st_watch_bounds_latency(struct st_watch_bounds *b)
{
	b->n = st_prom_latency_nbounds;
	memcpy(b->b, st_prom_latency_bounds, b->n * sizeof(b->b[0]));
}

void st_watch_bounds_size(struct st_watch_bounds *b)
{
	b->n = 0;
	for (double v = 64; v <= 16 * 1048576.0; v *= 4)
		b->b[b->n++] = v;
}

int st_watch_bounds_parse(const char *s, struct st_watch_bounds *b, char *err, size_t errlen)
{
	const char *p = s;

	b->n = 0;
	for (;;) {
		char *end;
		double v;

		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || !isfinite(v) || v <= 0 || (*end && *end != ',')) {
			snprintf(err, errlen, "'%s' is not a list of positive numbers (0.005,0.01,...)",
				 s);
			return -1;
		}
		if (b->n && v <= b->b[b->n - 1]) {
			snprintf(err, errlen, "'%s': the bounds must increase", s);
			return -1;
		}
		if (b->n == ST_WATCH_BUCKETS_MAX) {
			snprintf(err, errlen, "'%s': at most %d bounds", s, ST_WATCH_BUCKETS_MAX);
			return -1;
		}
		b->b[b->n++] = v;
		if (!*end)
			return 0;
		p = end + 1;
	}
}

double st_watch_agg_quantile(const struct st_watch_bounds *b, const uint64_t *counts, double q)
{
	double total = 0, cum = 0, rank;

	for (unsigned i = 0; i <= b->n; i++)
		total += (double)counts[i];
	if (!total)
		return NAN;
	rank = q * total;
	for (unsigned i = 0; i <= b->n; i++) {
		double c = (double)counts[i], lo;

		if (c && cum + c >= rank) {
			if (i == b->n)
				return b->b[b->n - 1];
			lo = i ? b->b[i - 1] : 0;
			return lo + (b->b[i] - lo) * (rank - cum) / c;
		}
		cum += c;
	}
	return b->b[b->n - 1];
}

double st_watch_agg_bucket_mid(const struct st_watch_bounds *b, unsigned i)
{
	if (i >= b->n)
		return 2 * b->b[b->n - 1];
	return ((i ? b->b[i - 1] : 0) + b->b[i]) / 2;
}

/* ---- the aggregate ------------------------------------------------------------------------------ */

static uint32_t pow2_above(uint64_t n)
{
	uint32_t s = 16;

	while (s < 2 * n)
		s *= 2;
	return s;
}

int st_watch_agg_init(struct st_watch_agg *a, const struct st_watch_agg_config *cfg)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	if (a->cfg.npatterns > ST_CMP_PATTERNS_MAX)
		a->cfg.npatterns = ST_CMP_PATTERNS_MAX;
	if (a->cfg.npatterns)
		memcpy(a->patterns, cfg->patterns, a->cfg.npatterns * sizeof(a->patterns[0]));
	a->cfg.patterns = a->patterns;
	if (!a->cfg.max_endpoints)
		a->cfg.max_endpoints = ST_WATCH_ENDPOINTS_DEFAULT;
	if (!a->cfg.max_series)
		a->cfg.max_series = ST_WATCH_SERIES_DEFAULT;
	if (a->cfg.max_series < ST_WATCH_SERIES_MIN)
		a->cfg.max_series = ST_WATCH_SERIES_MIN;
	if (!a->cfg.lat.n)
		st_watch_bounds_latency(&a->cfg.lat);
	if (!a->cfg.size.n)
		st_watch_bounds_size(&a->cfg.size);
	a->ep_nslot = pow2_above(a->cfg.max_endpoints + 1);
	a->s_nslot = pow2_above(a->cfg.max_series);
	a->ep_slot = calloc(a->ep_nslot, sizeof(*a->ep_slot));
	a->s_slot = calloc(a->s_nslot, sizeof(*a->s_slot));
	a->ep = malloc(16 * sizeof(*a->ep));
	if (!a->ep_slot || !a->s_slot || !a->ep) {
		st_watch_agg_free(a);
		return -ENOMEM;
	}
	a->epcap = 16;
	snprintf(a->ep[0], sizeof(a->ep[0]), "other");
	a->nep = 1;
	for (unsigned i = 0; i < ST_WATCH_CLASS_SERIES; i++) {
		a->cls[i].method = ST_HTTP_M_OTHER;
		a->cls[i].code = i < 6 ? (uint16_t)(ST_WATCH_CODE_CLASS + 1 + i) : ST_WATCH_CODE_NONE;
	}
	return 0;
}

void st_watch_agg_free(struct st_watch_agg *a)
{
	free(a->ep);
	free(a->ep_slot);
	free(a->s);
	free(a->s_slot);
	free(a->grpc);
	a->grpc = NULL;
	a->grpc_rows = a->grpc_cells = 0;
	a->grpc_overflow = 0;
	a->ep = NULL;
	a->ep_slot = NULL;
	a->s = NULL;
	a->s_slot = NULL;
	a->nep = a->ns = 0;
}

uint32_t st_watch_agg_endpoint(struct st_watch_agg *a, const char *method, size_t mlen,
			       const char *target, size_t tlen)
{
	char full[ST_CMP_ENDPOINT_MAX];
	const char *name;
	uint32_t mask = a->ep_nslot - 1, i;

	/* tap compare's names ("GET /users/{id}", or an --endpoint pattern's text): the path
	 * part is the endpoint label, the method has its own */
	st_cmp_endpoint(a->patterns, a->cfg.npatterns, method, mlen, target, tlen, full,
			sizeof(full));
	st_cmp_utf8_fix(full);
	name = strchr(full, ' ');
	name = name ? name + 1 : full;
	i = (uint32_t)st_fnv1a(ST_FNV1A_INIT, name, strlen(name)) & mask;
	for (; a->ep_slot[i]; i = (i + 1) & mask)
		if (!strcmp(a->ep[a->ep_slot[i] - 1], name))
			return a->ep_slot[i] - 1;
	if (a->nep - 1 >= a->cfg.max_endpoints)
		return 0; /* hostile or very diverse paths cannot grow the table */
	if (a->nep == a->epcap) {
		uint32_t ncap = a->epcap * 2;
		char(*n)[ST_CMP_ENDPOINT_MAX];

		if (ncap > a->cfg.max_endpoints + 1)
			ncap = a->cfg.max_endpoints + 1;
		n = realloc(a->ep, ncap * sizeof(*n));
		if (!n)
			return 0;
		a->ep = n;
		a->epcap = ncap;
	}
	snprintf(a->ep[a->nep], sizeof(a->ep[0]), "%s", name);
	a->ep_slot[i] = ++a->nep;
	return a->nep - 1;
}

const char *st_watch_agg_endpoint_name(const struct st_watch_agg *a, uint32_t ep)
{
	return ep < a->nep ? a->ep[ep] : a->ep[0];
}

static uint32_t skey(uint32_t ep, uint8_t method, uint16_t code)
{
	uint64_t k = (uint64_t)ep << 24 | (uint64_t)method << 16 | code;

	return (uint32_t)st_mix64(k);
}

static struct st_watch_series *class_row(struct st_watch_agg *a, uint16_t code)
{
	if (code == ST_WATCH_CODE_NONE)
		return &a->cls[6];
	if (code >= 100 && code < 600)
		return &a->cls[code / 100 - 1];
	return &a->cls[5];
}

static struct st_watch_series *series(struct st_watch_agg *a, uint32_t ep, uint8_t method,
				      uint16_t code)
{
	uint32_t mask = a->s_nslot - 1, i = skey(ep, method, code) & mask;
	struct st_watch_series *s;

	for (; a->s_slot[i]; i = (i + 1) & mask) {
		s = &a->s[a->s_slot[i] - 1];
		if (s->ep == ep && s->method == method && s->code == code)
			return s;
	}
	if (a->ns >= a->cfg.max_series - ST_WATCH_CLASS_SERIES)
		return NULL;
	if (a->ns == a->scap) {
		uint32_t ncap = a->scap ? a->scap * 2 : 16;
		struct st_watch_series *n;

		if (ncap > a->cfg.max_series - ST_WATCH_CLASS_SERIES)
			ncap = a->cfg.max_series - ST_WATCH_CLASS_SERIES;
		n = realloc(a->s, ncap * sizeof(*n));
		if (!n)
			return NULL;
		a->s = n;
		a->scap = ncap;
	}
	s = &a->s[a->ns];
	memset(s, 0, sizeof(*s));
	s->ep = ep;
	s->method = method;
	s->code = code;
	a->s_slot[i] = ++a->ns;
	return s;
}

static void observe(struct st_watch_hist *h, const struct st_watch_bounds *b, double v)
{
	unsigned i = 0;

	while (i < b->n && v > b->b[i])
		i++;
	h->c[i]++;
	h->sum += v;
}

void st_watch_agg_add(struct st_watch_agg *a, const struct st_watch_exchange *x)
{
	uint32_t ep = x->ep < a->nep ? x->ep : 0;
	uint8_t method = x->method < ST_HTTP_M__COUNT ? x->method : ST_HTTP_M_OTHER;
	uint16_t code = x->status >= 100 && x->status <= 999 ? x->status : ST_WATCH_CODE_NONE;
	struct st_watch_series *s = series(a, ep, method, code);

	if (!s) {
		s = class_row(a, code);
		a->overflow++;
	}
	a->exchanges++;
	a->other_ep += !ep;
	s->n++;
	if (x->first_ns >= 0)
		observe(&s->h[ST_WATCH_H_FIRST], &a->cfg.lat, (double)x->first_ns / 1e9);
	if (x->last_ns >= 0)
		observe(&s->h[ST_WATCH_H_LAST], &a->cfg.lat, (double)x->last_ns / 1e9);
	if (x->req_bytes >= 0)
		observe(&s->h[ST_WATCH_H_REQ_SIZE], &a->cfg.size, (double)x->req_bytes);
	if (x->resp_bytes >= 0)
		observe(&s->h[ST_WATCH_H_RESP_SIZE], &a->cfg.size, (double)x->resp_bytes);
}

void st_watch_agg_grpc(struct st_watch_agg *a, uint32_t ep, unsigned code)
{
	if (code >= ST_WATCH_GRPC_CODES)
		code = ST_WATCH_GRPC_OTHER;
	if (ep >= a->nep)
		ep = 0;
	if (ep >= a->grpc_rows) {
		uint32_t nrows = a->epcap > ep ? a->epcap : ep + 1;
		uint64_t(*n)[ST_WATCH_GRPC_CODES] = realloc(a->grpc, nrows * sizeof(*n));

		if (!n) {
			ep = 0; /* row 0 ("other") is there whenever any row is */
			if (!a->grpc_rows)
				return;
		} else {
			memset(n + a->grpc_rows, 0, (nrows - a->grpc_rows) * sizeof(*n));
			a->grpc = n;
			a->grpc_rows = nrows;
		}
	}
	/* a new cell past the series cap goes to endpoint "other" (at most 19 more) */
	if (!a->grpc[ep][code] && ep && a->grpc_cells >= a->cfg.max_series) {
		ep = 0;
		a->grpc_overflow++;
	}
	if (!a->grpc[ep][code]++)
		a->grpc_cells++;
	a->grpc_calls++;
}

const char *st_watch_agg_grpc_label(unsigned code)
{
	if (code == ST_WATCH_GRPC_NONE)
		return "none";
	if (code < 17)
		return st_grpc_code_name((int32_t)code);
	return "other";
}

const char *st_watch_agg_method_label(unsigned method)
{
	const char *m = st_http__method_name((enum st_http_method)method);

	return m && *m ? m : "OTHER";
}

const char *st_watch_agg_code_label(uint16_t code, char *buf, size_t cap)
{
	if (code == ST_WATCH_CODE_NONE)
		return "none";
	if (code > ST_WATCH_CODE_CLASS && code <= ST_WATCH_CODE_CLASS + 5)
		snprintf(buf, cap, "%uxx", code - ST_WATCH_CODE_CLASS);
	else if (code >= ST_WATCH_CODE_CLASS)
		return "other";
	else
		snprintf(buf, cap, "%u", code);
	return buf;
}

/* ---- Prometheus --------------------------------------------------------------------------------- */

static const struct {
	const char *name, *help;
} hist_family[ST_WATCH_H__COUNT] = {
	[ST_WATCH_H_FIRST] = { "shadowtap_http_response_first_byte_seconds",
			       "time from the request's last byte in to the response's first byte out, "
			       "at the tap" },
	[ST_WATCH_H_LAST] = { "shadowtap_http_response_last_byte_seconds",
			      "time from the request's last byte in to the response's last byte out, "
			      "at the tap" },
	[ST_WATCH_H_REQ_SIZE] = { "shadowtap_http_request_size_bytes",
				  "requests on the wire: head and body as sent" },
	[ST_WATCH_H_RESP_SIZE] = { "shadowtap_http_response_size_bytes",
				   "final responses on the wire: head and body as sent" },
};

/* Iterates every series in use: the capped ones, then the class rows that were used. */
static const struct st_watch_series *series_at(const struct st_watch_agg *a, uint32_t i)
{
	if (i < a->ns)
		return &a->s[i];
	i -= a->ns;
	return i < ST_WATCH_CLASS_SERIES ? &a->cls[i] : NULL;
}

static void series_labels(const struct st_watch_agg *a, const struct st_watch_series *s,
			  const struct st_prom_labels *base, struct st_prom_labels *l, char *code,
			  size_t codecap)
{
	*l = *base;
	st_prom_labels_add(l, "endpoint", st_watch_agg_endpoint_name(a, s->ep));
	st_prom_labels_add(l, "method", st_watch_agg_method_label(s->method));
	st_prom_labels_add(l, "code", st_watch_agg_code_label(s->code, code, codecap));
}

void st_watch_agg_prom(const struct st_watch_agg *a, struct st_prom *p,
		       const struct st_prom_labels *base)
{
	int req = st_prom__family(p, "shadowtap_http_requests_total", ST_PROM_COUNTER,
				  "HTTP exchanges of the service seen at the tap, by endpoint, method and "
				  "the final answer's status code (none: no answer came)");
	int fam[ST_WATCH_H__COUNT];

	for (int k = 0; k < ST_WATCH_H__COUNT; k++)
		fam[k] = st_prom__family(p, hist_family[k].name, ST_PROM_HISTOGRAM,
					 hist_family[k].help);
	int grpc = a->grpc_calls ? st_prom__family(p, "shadowtap_grpc_requests_total", ST_PROM_COUNTER,
						     "gRPC calls of the service seen at the tap, by "
						     "endpoint (/package.Service/Method) and "
						     "grpc-status (none: no status came)") : -1;

	for (uint32_t e = 0; grpc >= 0 && e < a->grpc_rows; e++)
		for (unsigned k = 0; k < ST_WATCH_GRPC_CODES; k++) {
			struct st_prom_labels l = *base;

			if (!a->grpc[e][k])
				continue;
			st_prom_labels_add(&l, "endpoint", st_watch_agg_endpoint_name(a, e));
			st_prom_labels_add(&l, "grpc_code", st_watch_agg_grpc_label(k));
			st_prom__sample_u64(p, grpc, &l, a->grpc[e][k]);
		}
	for (uint32_t i = 0;; i++) {
		const struct st_watch_series *s = series_at(a, i);
		struct st_prom_labels l;
		char code[16];

		if (!s)
			break;
		if (!s->n)
			continue; /* a class row never used */
		series_labels(a, s, base, &l, code, sizeof(code));
		st_prom__sample_u64(p, req, &l, s->n);
		for (int k = 0; k < ST_WATCH_H__COUNT; k++) {
			const struct st_watch_bounds *b = k <= ST_WATCH_H_LAST ? &a->cfg.lat :
										   &a->cfg.size;

			st_prom__histogram(p, fam[k], &l, b->b, b->n, s->h[k].c, s->h[k].sum);
		}
	}
}

/* ---- the report ----------------------------------------------------------------------------------- */

static void json_bounds(FILE *f, const struct st_watch_bounds *b)
{
	char num[40];

	fputc('[', f);
	for (unsigned i = 0; i < b->n; i++) {
		st_prom_float(num, sizeof(num), b->b[i]);
		fprintf(f, "%s%s", i ? ", " : "", num);
	}
	fputc(']', f);
}

static void json_hist(FILE *f, const struct st_watch_hist *h, unsigned nb)
{
	char num[40];

	fputs("{\"counts\": [", f);
	for (unsigned i = 0; i <= nb; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)h->c[i]);
	st_prom_float(num, sizeof(num), h->sum);
	fprintf(f, "], \"sum\": %s}", num);
}

static const char *const hist_key[ST_WATCH_H__COUNT] = {
	"first_byte_seconds", "last_byte_seconds", "request_size_bytes", "response_size_bytes",
};

void st_watch_agg_json(FILE *f, const struct st_watch_agg *a, const struct st_watch_run *run)
{
	char t0[40], t1[40];
	bool first = true;

	st_cmp_time_str(t0, sizeof(t0), run->start_ns);
	st_cmp_time_str(t1, sizeof(t1), run->now_ns);
	fprintf(f, "{\"format\": \"%s\", \"format_version\": %d, \"command\": ",
		ST_WATCH_REPORT_FORMAT, ST_WATCH_REPORT_VERSION);
	st_cmp_json_str(f, run->command ? run->command : "", strlen(run->command ? run->command : ""));
	fputs(", \"job\": ", f);
	st_cmp_json_str(f, run->job ? run->job : "", strlen(run->job ? run->job : ""));
	fputs(", \"host\": ", f);
	st_cmp_json_str(f, run->host ? run->host : "", strlen(run->host ? run->host : ""));
	fputs(", \"labels\": {", f);
	for (size_t i = 0; i < run->nlabels; i++) {
		fputs(i ? ", " : "", f);
		st_cmp_json_str(f, run->labels[i].name, strlen(run->labels[i].name));
		fputs(": ", f);
		st_cmp_json_str(f, run->labels[i].value, strlen(run->labels[i].value));
	}
	fprintf(f, "}, \"started\": \"%s\", \"generated\": \"%s\", \"started_ns\": %llu, "
		   "\"generated_ns\": %llu, \"final\": %s, \"max_endpoints\": %u, \"max_series\": %u, "
		   "\"endpoints\": %u, \"series_count\": %u, \"exchanges\": %llu, "
		   "\"other_endpoint_exchanges\": %llu, \"overflow_exchanges\": %llu, "
		   "\"latency_bounds_seconds\": ",
		t0, t1, (unsigned long long)run->start_ns, (unsigned long long)run->now_ns,
		run->final ? "true" : "false", a->cfg.max_endpoints, a->cfg.max_series, a->nep - 1,
		a->ns, (unsigned long long)a->exchanges, (unsigned long long)a->other_ep,
		(unsigned long long)a->overflow);
	json_bounds(f, &a->cfg.lat);
	fputs(", \"size_bounds_bytes\": ", f);
	json_bounds(f, &a->cfg.size);
	fputs(", \"counters\": {", f);
	if (run->counters)
		for (size_t i = 0; i < run->counters->n; i++)
			fprintf(f, "%s\"%s\": %llu", i ? ", " : "", run->counters->e[i].name,
				(unsigned long long)run->counters->e[i].v);
	fputs("}, \"series\": [", f);
	for (uint32_t i = 0;; i++) {
		const struct st_watch_series *s = series_at(a, i);
		const char *ep;
		char code[16];

		if (!s)
			break;
		if (!s->n)
			continue;
		ep = st_watch_agg_endpoint_name(a, s->ep);
		fputs(first ? "\n  {\"endpoint\": " : ",\n  {\"endpoint\": ", f);
		first = false;
		st_cmp_json_str(f, ep, strlen(ep));
		fprintf(f, ", \"method\": \"%s\", \"code\": \"%s\", \"requests\": %llu",
			st_watch_agg_method_label(s->method), st_watch_agg_code_label(s->code, code, sizeof(code)),
			(unsigned long long)s->n);
		for (int k = 0; k < ST_WATCH_H__COUNT; k++) {
			fprintf(f, ", \"%s\": ", hist_key[k]);
			json_hist(f, &s->h[k], k <= ST_WATCH_H_LAST ? a->cfg.lat.n : a->cfg.size.n);
		}
		fputc('}', f);
	}
	fputs("\n], \"grpc\": [", f);
	first = true;
	for (uint32_t e = 0; e < a->grpc_rows; e++)
		for (unsigned k = 0; k < ST_WATCH_GRPC_CODES; k++) {
			const char *ep = st_watch_agg_endpoint_name(a, e);

			if (!a->grpc[e][k])
				continue;
			fputs(first ? "\n  {\"endpoint\": " : ",\n  {\"endpoint\": ", f);
			first = false;
			st_cmp_json_str(f, ep, strlen(ep));
			fprintf(f, ", \"grpc_code\": \"%s\", \"requests\": %llu}",
				st_watch_agg_grpc_label(k), (unsigned long long)a->grpc[e][k]);
		}
	fputs(first ? "]}\n" : "\n]}\n", f);
}
