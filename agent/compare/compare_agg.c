/* SPDX-License-Identifier: GPL-2.0-only */
/* Tap compare's aggregate: endpoints, fields, noise, latency, status (compare_agg.h). */
#include "compare_agg.h"
#include "hash.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *st_cmp_side_name(enum st_cmp_side s)
{
	switch (s) {
	case ST_CMP_PROD: return "production";
	case ST_CMP_CAND: return "candidate";
	case ST_CMP_REF: return "reference";
	default: return "?";
	}
}

size_t st_cmp_utf8_seq(const unsigned char *s, size_t n)
{
	size_t k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] < 0xe0)
		k = 2;
	else if (s[0] >= 0xe0 && s[0] < 0xf0)
		k = 3;
	else if (s[0] >= 0xf0 && s[0] < 0xf5)
		k = 4;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

void st_cmp_utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t k = st_cmp_utf8_seq(p + i, n - i);

		if (!k) {
			p[i++] = '?';
			continue;
		}
		i += k;
	}
}

/* ---- endpoints ----------------------------------------------------------------------------- */

int st_cmp_pattern_parse(const char *s, struct st_cmp_pattern *p)
{
	const char *sp = strchr(s, ' ');
	size_t ml;

	memset(p, 0, sizeof(*p));
	if (!sp || strlen(s) >= sizeof(p->text))
		return -1;
	ml = (size_t)(sp - s);
	if (!ml || ml >= sizeof(p->method))
		return -1;
	while (*sp == ' ')
		sp++;
	if (*sp != '/')
		return -1;
	for (size_t i = 0; i < ml; i++)
		if (!(s[i] == '*' && ml == 1) && !isupper((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return -1;
	snprintf(p->text, sizeof(p->text), "%s", s);
	if (!(ml == 1 && s[0] == '*'))
		memcpy(p->method, s, ml);
	snprintf(p->path, sizeof(p->path), "%.*s", (int)strcspn(sp, "? "), sp);
	return 0;
}

int st_cmp_pattern_add(struct st_cmp_pattern *pats, unsigned *n, const char *val, char *err,
		       size_t errlen)
{
	if (*n >= ST_CMP_PATTERNS_MAX || st_cmp_pattern_parse(val, &pats[*n])) {
		snprintf(err, errlen, "'%s' is not 'METHOD /path/{name}/...' (METHOD or *; {name}: one "
			 "segment; a last *: the rest; at most %d)", val, ST_CMP_PATTERNS_MAX);
		return -1;
	}
	(*n)++;
	return 0;
}

/* The path part of a request target (origin-form, or absolute-form without its authority). */
static void target_path(const char *t, size_t n, const char **path, size_t *plen, const char **q,
			size_t *qlen)
{
	const char *end = t + n, *qm;

	if (n > 7 && (!strncasecmp(t, "http://", 7) || (n > 8 && !strncasecmp(t, "https://", 8)))) {
		const char *s = memchr(t + 7, '/', n - 7);

		t = s ? s : end;
	}
	qm = memchr(t, '?', (size_t)(end - t));
	*path = t;
	*plen = (size_t)((qm ? qm : end) - t);
	*q = qm ? qm + 1 : NULL;
	*qlen = qm ? (size_t)(end - qm - 1) : 0;
}

static bool pattern_match(const struct st_cmp_pattern *p, const char *m, size_t ml,
			  const char *path, size_t plen)
{
	const char *pp = p->path, *x = path, *xe = path + plen;

	if (p->method[0] && (strlen(p->method) != ml || memcmp(p->method, m, ml)))
		return false;
	for (;;) {
		const char *pe, *se;

		if (*pp != '/' || x >= xe || *x != '/')
			return !*pp && x == xe;
		pp++;
		x++;
		pe = pp + strcspn(pp, "/");
		se = memchr(x, '/', (size_t)(xe - x));
		if (!se)
			se = xe;
		if (pe - pp == 1 && *pp == '*' && !*pe)
			return true; /* the rest, whatever it is */
		if (!(pe - pp >= 2 && *pp == '{' && pe[-1] == '}') &&
		    ((size_t)(pe - pp) != (size_t)(se - x) || memcmp(pp, x, (size_t)(se - x))))
			return false;
		if (*pp == '{' && se == x)
			return false; /* {name} needs a segment */
		pp = pe;
		x = se;
	}
}

struct sbuf {
	char *p;
	size_t n, cap;
	bool full;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b->n + 1 >= b->cap) {
			b->full = true;
			return;
		}
		/* control characters and spaces would make the name ambiguous: shown as '?' */
		b->p[b->n++] = (unsigned char)s[i] <= 0x20 || s[i] == 0x7f ? '?' : s[i];
	}
}

void st_cmp_endpoint(const struct st_cmp_pattern *pats, unsigned npats, const char *method,
		     size_t mlen, const char *target, size_t tlen, char *out, size_t cap)
{
	struct sbuf b = { out, 0, cap, false };
	const char *path, *q;
	size_t plen, qlen;
	unsigned nseg = 0;

	if (!cap)
		return;
	target_path(target, tlen, &path, &plen, &q, &qlen);
	for (unsigned i = 0; i < npats; i++)
		if (pattern_match(&pats[i], method, mlen, path, plen)) {
			snprintf(out, cap, "%s", pats[i].text);
			return;
		}
	sb_put(&b, method, mlen > 16 ? 16 : mlen);
	if (b.n + 1 < b.cap)
		b.p[b.n++] = ' ';
	if (!plen)
		sb_put(&b, tlen == 1 && target[0] == '*' ? "*" : "/", 1);
	for (const char *s = path, *e = path + plen; s < e && !b.full;) {
		const char *se;

		if (*s == '/') {
			sb_put(&b, "/", 1);
			s++;
			continue;
		}
		se = memchr(s, '/', (size_t)(e - s));
		if (!se)
			se = e;
		if (++nseg > 16) {
			sb_put(&b, "...", 3);
			break;
		}
		if (st_cmp_looks_id(s, (size_t)(se - s)))
			sb_put(&b, "{id}", 4);
		else
			sb_put(&b, s, (size_t)(se - s) > 48 ? 48 : (size_t)(se - s));
		s = se;
	}
	if (q && qlen && !b.full) {
		/* keys in order, each once, values dropped */
		const char *keys[8];
		size_t klen[8], nk = 0;

		for (const char *s = q, *e = q + qlen; s < e && nk < 8;) {
			const char *amp = memchr(s, '&', (size_t)(e - s)), *ke;
			size_t kl;
			bool dup = false;

			if (!amp)
				amp = e;
			ke = memchr(s, '=', (size_t)(amp - s));
			kl = (size_t)((ke ? ke : amp) - s);
			for (size_t i = 0; i < nk && kl; i++)
				dup |= klen[i] == kl && !memcmp(keys[i], s, kl);
			if (kl && !dup) {
				keys[nk] = s;
				klen[nk++] = kl > 32 ? 32 : kl;
			}
			s = amp + 1;
		}
		for (size_t i = 0; i < nk; i++) {
			sb_put(&b, i ? "&" : "?", 1);
			sb_put(&b, keys[i], klen[i]);
		}
	}
	if (b.full && b.n >= 3)
		memcpy(out + b.n - 3, "...", 3);
	out[b.n] = 0;
}

/* ---- latency --------------------------------------------------------------------------------- */

static unsigned lat_bucket(uint64_t us)
{
	unsigned msb, idx;

	if (us < 16)
		return (unsigned)us;
	msb = 63 - (unsigned)__builtin_clzll(us);
	idx = (msb - 3) * 16 + (unsigned)((us >> (msb - 4)) & 15);
	return idx < ST_CMP_LAT_BUCKETS ? idx : ST_CMP_LAT_BUCKETS - 1;
}

void st_cmp_lat_bucket(unsigned i, double *lo_us, double *hi_us)
{
	unsigned msb, sub;

	if (i < 16) {
		*lo_us = i;
		*hi_us = i + 1;
		return;
	}
	msb = i / 16 + 3;
	sub = i % 16;
	*lo_us = (double)((16ull + sub) << (msb - 4));
	*hi_us = *lo_us + (double)(1ull << (msb - 4));
}

void st_cmp_lat_add(struct st_cmp_lat *l, uint64_t ns)
{
	unsigned i = lat_bucket(ns / 1000);

	if (l->b[i] < UINT32_MAX)
		l->b[i]++;
	l->n++;
}

double st_cmp_lat_pct(const struct st_cmp_lat *l, double q)
{
	uint64_t want, cum = 0, total = 0;
	double lo, hi;

	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++)
		total += l->b[i];
	if (!total)
		return 0;
	want = (uint64_t)ceil(q * (double)total);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
		cum += l->b[i];
		if (cum >= want) {
			st_cmp_lat_bucket(i, &lo, &hi);
			return (lo + hi) / 2 / 1000.0;
		}
	}
	return 0;
}

struct dw {
	double d;
	double w;
};

static int dw_cmp(const void *x, const void *y)
{
	double a = ((const struct dw *)x)->d, b = ((const struct dw *)y)->d;

	return (a > b) - (a < b);
}

/* The Hodges-Lehmann shift from two histograms: the weighted median of the differences
 * between bucket middles. */
static double hl_shift(const double *c, const double *r, const double *mid, unsigned n)
{
	unsigned *ic = malloc(n * sizeof(*ic)), *ir = malloc(n * sizeof(*ir)), nc = 0, nr = 0;
	double total = 0, cum = 0, out = 0;
	struct dw *v = NULL;
	size_t k = 0;

	if (!ic || !ir)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		if (c[i] > 0)
			ic[nc++] = i;
		if (r[i] > 0)
			ir[nr++] = i;
	}
	v = malloc((size_t)nc * nr * sizeof(*v) + 1);
	if (!v)
		goto out;
	for (unsigned i = 0; i < nc; i++)
		for (unsigned j = 0; j < nr; j++) {
			v[k].d = mid[ic[i]] - mid[ir[j]];
			v[k].w = c[ic[i]] * r[ir[j]];
			total += v[k++].w;
		}
	qsort(v, k, sizeof(*v), dw_cmp);
	for (size_t i = 0; i < k; i++) {
		cum += v[i].w;
		if (cum >= total / 2) {
			out = v[i].d;
			break;
		}
	}
out:
	free(v);
	free(ic);
	free(ir);
	return out;
}

void st_cmp_mwu(const double *c, const double *r, const double *mid, unsigned n,
		struct st_cmp_mwu *m)
{
	double below = 0, ties = 0, nn, var, z;

	memset(m, 0, sizeof(*m));
	m->p = 1;
	m->a = 0.5;
	for (unsigned i = 0; i < n; i++) {
		m->n1 += c[i];
		m->n2 += r[i];
	}
	if (!m->n1 || !m->n2)
		return;
	/* U of the first: pairs where it is larger, ties counted half */
	for (unsigned i = 0; i < n; i++) {
		double tb = c[i] + r[i];

		m->u += c[i] * (below + 0.5 * r[i]);
		below += r[i];
		ties += tb * tb * tb - tb;
	}
	nn = m->n1 + m->n2;
	m->mu = m->n1 * m->n2 / 2;
	var = m->n1 * m->n2 / 12 * ((nn + 1) - ties / (nn * (nn - 1)));
	m->a = m->u / (m->n1 * m->n2);
	m->shift = hl_shift(c, r, mid, n);
	if (var <= 0)
		return; /* everything in one bucket: no shift to see */
	z = (fabs(m->u - m->mu) - 0.5) / sqrt(var);
	if (z < 0)
		z = 0;
	m->p = erfc(z / M_SQRT2);
}

void st_cmp_lat_compare(const struct st_cmp_lat *c, const struct st_cmp_lat *r, double min_ms,
			struct st_cmp_lat_test *t)
{
	double cb[ST_CMP_LAT_BUCKETS], rb[ST_CMP_LAT_BUCKETS], mid[ST_CMP_LAT_BUCKETS], floor_ms;
	struct st_cmp_mwu m;

	memset(t, 0, sizeof(*t));
	t->p = 1;
	t->a = 0.5;
	t->p50[0] = st_cmp_lat_pct(c, 0.5);
	t->p50[1] = st_cmp_lat_pct(r, 0.5);
	t->p90[0] = st_cmp_lat_pct(c, 0.9);
	t->p90[1] = st_cmp_lat_pct(r, 0.9);
	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
		double lo, hi;

		cb[i] = c->b[i];
		rb[i] = r->b[i];
		st_cmp_lat_bucket(i, &lo, &hi);
		mid[i] = (lo + hi) / 2 / 1000.0;
	}
	st_cmp_mwu(cb, rb, mid, ST_CMP_LAT_BUCKETS, &m);
	if (m.n1 < ST_CMP_LAT_MIN_N || m.n2 < ST_CMP_LAT_MIN_N)
		return;
	t->enough = true;
	t->a = m.a;
	t->shift = m.shift;
	t->p = m.p;
	if (t->p >= ST_CMP_LAT_ALPHA)
		return;
	floor_ms = fmax(min_ms, ST_CMP_LAT_SHIFT * t->p50[1]);
	if (m.u > m.mu && t->shift >= floor_ms)
		t->verdict = ST_CMP_LAT_SLOWER;
	else if (m.u < m.mu && -t->shift >= floor_ms)
		t->verdict = ST_CMP_LAT_FASTER;
}

/* ---- the aggregate --------------------------------------------------------------------------- */

int st_cmp_agg_init(struct st_cmp_agg *a, const struct st_cmp_agg_config *cfg)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	if (!a->cfg.max_endpoints)
		a->cfg.max_endpoints = ST_CMP_ENDPOINTS_DEFAULT;
	if (a->cfg.rel_pct <= 0)
		a->cfg.rel_pct = ST_CMP_REL_DEFAULT;
	if (a->cfg.abs_pct <= 0)
		a->cfg.abs_pct = ST_CMP_ABS_DEFAULT;
	if (a->cfg.lat_min_ms <= 0)
		a->cfg.lat_min_ms = ST_CMP_LAT_MIN_MS_DEFAULT;
	a->nslot = 16;
	while (a->nslot < 2 * a->cfg.max_endpoints)
		a->nslot *= 2;
	a->slot = calloc(a->nslot, sizeof(*a->slot));
	snprintf(a->other.name, sizeof(a->other.name), "other");
	return a->slot ? 0 : -1;
}

static void ep_free(struct st_cmp_endpoint *e)
{
	free(e->fields);
}

void st_cmp_agg_free(struct st_cmp_agg *a)
{
	for (uint32_t i = 0; i < a->n; i++) {
		ep_free(a->ep[i]);
		free(a->ep[i]);
	}
	ep_free(&a->other);
	free(a->ep);
	free(a->slot);
	memset(a, 0, sizeof(*a));
}

struct st_cmp_endpoint *st_cmp_agg_endpoint(struct st_cmp_agg *a, const char *raw_name)
{
	char name[ST_CMP_ENDPOINT_MAX];
	uint32_t mask = a->nslot - 1, i;
	struct st_cmp_endpoint *e;

	snprintf(name, sizeof(name), "%s", raw_name);
	st_cmp_utf8_fix(name);
	i = (uint32_t)st_fnv1a(ST_FNV1A_INIT, name, strlen(name)) & mask;

	for (; a->slot[i]; i = (i + 1) & mask)
		if (!strcmp(a->ep[a->slot[i] - 1]->name, name))
			return a->ep[a->slot[i] - 1];
	if (a->n >= a->cfg.max_endpoints)
		return &a->other; /* hostile or very diverse paths cannot grow memory */
	if (a->n == a->cap) {
		uint32_t ncap = a->cap ? a->cap * 2 : 16;
		struct st_cmp_endpoint **n = realloc(a->ep, ncap * sizeof(*n));

		if (!n)
			return &a->other;
		a->ep = n;
		a->cap = ncap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return &a->other;
	snprintf(e->name, sizeof(e->name), "%s", name);
	a->ep[a->n] = e;
	a->slot[i] = ++a->n;
	return e;
}

struct st_cmp_field *st_cmp_endpoint_field(struct st_cmp_endpoint *e, const char *raw_path,
					   uint8_t kind, const char *note)
{
	char path[ST_CMP_PATH_MAX + 4];
	struct st_cmp_field *f;

	snprintf(path, sizeof(path), "%s", raw_path);
	st_cmp_utf8_fix(path);

	for (uint32_t i = 0; i < e->nfields; i++)
		if (!strcmp(e->fields[i].path, path))
			return &e->fields[i];
	if (e->nfields >= ST_CMP_FIELDS_MAX) {
		/* the last row gathers the rest */
		f = &e->fields[ST_CMP_FIELDS_MAX - 1];
		if (strcmp(f->path, "(other fields)")) {
			memset(f, 0, sizeof(*f));
			snprintf(f->path, sizeof(f->path), "(other fields)");
		}
		return f;
	}
	if (e->nfields == e->fcap) {
		uint32_t ncap = e->fcap ? e->fcap * 2 : 4;
		struct st_cmp_field *n;

		if (ncap > ST_CMP_FIELDS_MAX)
			ncap = ST_CMP_FIELDS_MAX;
		n = realloc(e->fields, ncap * sizeof(*n));
		if (!n)
			return NULL;
		e->fields = n;
		e->fcap = ncap;
	}
	f = &e->fields[e->nfields++];
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->kind = kind;
	snprintf(f->note, sizeof(f->note), "%s", note);
	st_cmp_utf8_fix(f->note);
	return f;
}

static struct st_cmp_corr_field *corr_find(struct st_cmp_endpoint *e, const char *path)
{
	for (uint32_t i = 0; i < e->ncorr; i++)
		if (!strcmp(e->corr[i].path, path))
			return &e->corr[i];
	return NULL;
}

struct st_cmp_corr_field *st_cmp_endpoint_corr(struct st_cmp_endpoint *e, const char *raw_path)
{
	char path[ST_CMP_PATH_MAX + 4];
	struct st_cmp_corr_field *f;

	snprintf(path, sizeof(path), "%s", raw_path);
	st_cmp_utf8_fix(path);
	if ((f = corr_find(e, path)))
		return f;
	/* the last row is kept for the rest: no field's count is ever moved into it */
	if (e->ncorr >= ST_CMP_CORR_FIELDS_MAX - 1) {
		if ((f = corr_find(e, "(other fields)")))
			return f;
		snprintf(path, sizeof(path), "(other fields)");
	}
	f = &e->corr[e->ncorr++];
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->n = 0;
	return f;
}

/* The candidate's differences its --correlate map explained, per field (once per pair). */
static void corr_add(struct st_cmp_agg *a, struct st_cmp_endpoint *e,
		     const struct st_cmp_diffs *raw)
{
	if (!raw->correlated)
		return;
	e->correlated++;
	a->correlated++;
	for (uint32_t i = 0; i < raw->ncorr; i++)
		st_cmp_endpoint_corr(e, raw->corr_at[i].path)->n++;
}

bool st_cmp_status_add(struct st_cmp_status *s, uint16_t code, uint64_t n)
{
	for (uint32_t i = 0; i < s->ncodes; i++)
		if (s->code[i] == code)
			return st_cmp_count_add(&s->n[i], n);
	if (s->ncodes < ST_CMP_STATUS_MAX) {
		s->code[s->ncodes] = code;
		s->n[s->ncodes++] = n;
		return true;
	}
	return st_cmp_count_add(&s->other, n);
}

enum st_cmp_pair_v st_cmp_classify(const struct st_cmp_diffs *raw, const struct st_cmp_diffs *noise)
{
	if (!raw->n && !raw->more)
		return ST_CMP_IDENTICAL;
	if (raw->more)
		return ST_CMP_DIFFERING;
	for (uint32_t i = 0; i < raw->n; i++) {
		const struct st_cmp_diff *d = &raw->d[i];

		if (noise ? !st_cmp_diffs_find(noise, d->path) : !d->vol)
			return ST_CMP_DIFFERING;
	}
	return ST_CMP_NOISE_ONLY;
}

static void sample(struct st_cmp_field *f, const struct st_cmp_result *r,
		   const struct st_cmp_diff *d, const struct st_cmp_diff *nd)
{
	struct st_cmp_sample *s;
	size_t tl = r->tlen;

	if (f->nsamples >= ST_CMP_SAMPLES)
		return;
	s = &f->s[f->nsamples++];
	memset(s, 0, sizeof(*s));
	if (tl > ST_CMP_TARGET_SHOW)
		tl = ST_CMP_TARGET_SHOW;
	for (size_t i = 0; i < tl; i++)
		s->target[i] = (unsigned char)r->target[i] < 0x20 ? '?' : r->target[i];
	if (tl < r->tlen)
		memcpy(s->target + tl, "...", 4);
	memcpy(s->v[ST_CMP_PROD], d->a, sizeof(d->a));
	memcpy(s->v[ST_CMP_CAND], d->b, sizeof(d->b));
	s->set[ST_CMP_PROD] = d->a_set;
	s->set[ST_CMP_CAND] = d->b_set;
	if (r->have_ref) {
		if (nd) {
			memcpy(s->v[ST_CMP_REF], nd->b, sizeof(nd->b));
			s->set[ST_CMP_REF] = nd->b_set;
		} else {
			s->ref_same = true;
		}
	}
	for (int i = 0; i < ST_CMP_NSIDES; i++) {
		s->status[i] = r->status[i];
		st_cmp_utf8_fix(s->v[i]);
	}
	st_cmp_utf8_fix(s->target);
}

enum st_cmp_pair_v st_cmp_agg_add(struct st_cmp_agg *a, const char *name,
				  const struct st_cmp_result *r)
{
	struct st_cmp_endpoint *e = st_cmp_agg_endpoint(a, name);
	enum st_cmp_pair_v v = st_cmp_classify(r->raw, r->have_ref ? r->noise : NULL);

	e->compared++;
	a->compared++;
	if (v == ST_CMP_DIFFERING) {
		e->differing++;
		a->differing++;
	} else if (v == ST_CMP_NOISE_ONLY) {
		e->noise_only++;
		a->noise_only++;
	}
	for (int s = 0; s < ST_CMP_NSIDES; s++) {
		if (s == ST_CMP_REF && !r->have_ref)
			continue;
		st_cmp_status_add(&e->status[s], r->status[s], 1);
		if (r->lat_ns[s] >= 0)
			st_cmp_lat_add(&e->lat[s], (uint64_t)r->lat_ns[s]);
	}
	for (uint32_t i = 0; i < r->raw->n; i++) {
		const struct st_cmp_diff *d = &r->raw->d[i];
		const struct st_cmp_diff *nd = r->have_ref && r->noise ?
						       st_cmp_diffs_find(r->noise, d->path) : NULL;
		struct st_cmp_field *f = st_cmp_endpoint_field(e, d->path, d->kind, d->note);

		if (!f)
			continue;
		f->raw++;
		if (d->vol)
			f->vol++;
		sample(f, r, d, nd);
	}
	e->more_paths += r->raw->more;
	corr_add(a, e, r->raw);
	if (r->have_ref && r->noise) {
		for (uint32_t i = 0; i < r->noise->n; i++) {
			const struct st_cmp_diff *d = &r->noise->d[i];
			struct st_cmp_field *f = st_cmp_endpoint_field(e, d->path, d->kind, d->note);

			if (f)
				f->noise++;
		}
	}
	return v;
}

void st_cmp_agg_not_compared(struct st_cmp_agg *a, const char *name)
{
	st_cmp_agg_endpoint(a, name)->not_compared++;
}

/* ---- verdicts ---------------------------------------------------------------------------------- */

void st_cmp_field_verdict(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e,
			  const struct st_cmp_field *f, struct st_cmp_fverdict *v)
{
	double raw = (double)f->raw, noise = (double)f->noise, total = (double)e->compared;

	memset(v, 0, sizeof(*v));
	if (!f->raw)
		return;
	if (a->cfg.reference) {
		/* Diffy: raw must exceed noise by both thresholds */
		v->rel = raw + noise > 0 ? fabs(raw - noise) / (raw + noise) * 100 : 0;
		v->abs = total > 0 ? fabs(raw - noise) / total * 100 : 0;
		v->regression = raw > noise && v->rel > a->cfg.rel_pct && v->abs > a->cfg.abs_pct;
		return;
	}
	/* no reference: every difference counts, unless it looks like noise */
	v->likely_noise = total > 0 && raw >= ST_CMP_NOISE_FREQ * total &&
			  (double)f->vol >= ST_CMP_NOISE_SHAPE * raw;
	v->regression = !v->likely_noise;
}

void st_cmp_endpoint_latency(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e,
			     struct st_cmp_lat_test *t)
{
	st_cmp_lat_compare(&e->lat[ST_CMP_CAND], &e->lat[a->cfg.reference ? ST_CMP_REF : ST_CMP_PROD],
			   a->cfg.lat_min_ms, t);
}

uint32_t st_cmp_endpoint_regressions(const struct st_cmp_agg *a, const struct st_cmp_endpoint *e)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < e->nfields; i++) {
		struct st_cmp_fverdict v;

		st_cmp_field_verdict(a, e, &e->fields[i], &v);
		n += v.regression;
	}
	return n;
}

void st_cmp_agg_verdict(const struct st_cmp_agg *a, struct st_cmp_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->compared = a->compared;
	for (uint32_t i = 0; i <= a->n; i++) {
		const struct st_cmp_endpoint *e = i < a->n ? a->ep[i] : &a->other;
		struct st_cmp_lat_test t;
		uint32_t r;

		if (i == a->n && !e->compared && !e->not_compared)
			continue;
		v->endpoints++;
		r = st_cmp_endpoint_regressions(a, e);
		v->regressions += r;
		v->regression_endpoints += r > 0;
		st_cmp_endpoint_latency(a, e, &t);
		v->judged += t.enough;
		v->slower += t.verdict == ST_CMP_LAT_SLOWER;
	}
	if (v->regressions || v->slower)
		v->result = ST_CMP_FAIL;
	else if (v->compared < ST_CMP_VERDICT_MIN_PAIRS)
		v->result = ST_CMP_NOT_ENOUGH;
	else
		v->result = ST_CMP_PASS;
}

const char *st_cmp_outcome_name(enum st_cmp_outcome r)
{
	return r == ST_CMP_FAIL ? "fail" : r == ST_CMP_NOT_ENOUGH ? "not_enough_data" : "pass";
}

const char *st_cmp_outcome_title(enum st_cmp_outcome r)
{
	return r == ST_CMP_FAIL ? "FAIL" : r == ST_CMP_NOT_ENOUGH ? "NOT ENOUGH DATA" : "PASS";
}

const char *st_cmp_verdict_str(const struct st_cmp_verdict *v, char *buf, size_t len)
{
	size_t o = 0;

#define ADD(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (v->regressions)
		ADD("%u regression%s in %u endpoint%s", v->regressions, v->regressions == 1 ? "" : "s",
		    v->regression_endpoints, v->regression_endpoints == 1 ? "" : "s");
	else
		ADD("no regression");
	if (!v->judged)
		ADD(", latency n/a (n < %d)", ST_CMP_LAT_MIN_N);
	else if (v->judged < v->endpoints)
		ADD(", %u slower (latency judged in %u of %u endpoints; the others n < %d)", v->slower,
		    v->judged, v->endpoints, ST_CMP_LAT_MIN_N);
	else
		ADD(", %u slower", v->slower);
	ADD("; %llu pair%s compared", (unsigned long long)v->compared, v->compared == 1 ? "" : "s");
#undef ADD
	if (o >= len && len)
		buf[len - 1] = 0;
	return buf;
}

int st_cmp_verdict_status(const struct st_cmp_verdict *v, bool fail_on_regression,
			  bool fail_on_slower)
{
	return (fail_on_regression && v->regressions) || (fail_on_slower && v->slower) ? 3 : 0;
}

struct rank {
	struct st_cmp_endpoint *e;
	uint32_t nreg;
	double worst;  /* the largest raw share among its regression fields */
	int slower;
	double diff;   /* differing share */
};

static int rank_cmp(const void *x, const void *y)
{
	const struct rank *a = x, *b = y;

	if ((a->nreg > 0) != (b->nreg > 0))
		return a->nreg ? -1 : 1;
	if (a->worst != b->worst)
		return a->worst > b->worst ? -1 : 1;
	if (a->slower != b->slower)
		return a->slower ? -1 : 1;
	if (a->diff != b->diff)
		return a->diff > b->diff ? -1 : 1;
	if (a->e->compared != b->e->compared)
		return a->e->compared > b->e->compared ? -1 : 1;
	return strcmp(a->e->name, b->e->name);
}

struct st_cmp_endpoint **st_cmp_agg_sorted(const struct st_cmp_agg *a, uint32_t *n)
{
	uint32_t k = 0, total = a->n + 1;
	struct rank *r = calloc(total, sizeof(*r));
	struct st_cmp_endpoint **out = calloc(total, sizeof(*out));

	*n = 0;
	if (!r || !out) {
		free(r);
		free(out);
		return NULL;
	}
	for (uint32_t i = 0; i <= a->n; i++) {
		struct st_cmp_endpoint *e = i < a->n ? a->ep[i] : (struct st_cmp_endpoint *)&a->other;
		struct st_cmp_lat_test t;

		if (i == a->n && !e->compared && !e->not_compared)
			continue;
		r[k].e = e;
		for (uint32_t f = 0; f < e->nfields; f++) {
			struct st_cmp_fverdict v;

			st_cmp_field_verdict(a, e, &e->fields[f], &v);
			if (v.regression) {
				double share = e->compared ? (double)e->fields[f].raw / e->compared : 0;

				r[k].nreg++;
				if (share > r[k].worst)
					r[k].worst = share;
			}
		}
		st_cmp_endpoint_latency(a, e, &t);
		r[k].slower = t.verdict == ST_CMP_LAT_SLOWER;
		r[k].diff = e->compared ? (double)e->differing / e->compared : 0;
		k++;
	}
	qsort(r, k, sizeof(*r), rank_cmp);
	for (uint32_t i = 0; i < k; i++)
		out[i] = r[i].e;
	free(r);
	*n = k;
	return out;
}

/* ---- merging ----------------------------------------------------------------------------------- */

uint64_t st_cmp_sample_key(const struct st_cmp_sample *s)
{
	uint64_t h = st_fnv1a(ST_FNV1A_INIT, s->target, strlen(s->target) + 1);

	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		h = st_fnv1a(h, s->v[k], strlen(s->v[k]) + 1);
		h = st_fnv1a(h, &s->set[k], sizeof(s->set[k]));
		h = st_fnv1a(h, &s->status[k], sizeof(s->status[k]));
	}
	return st_fnv1a(h, &s->ref_same, sizeof(s->ref_same));
}

static bool sample_same(const struct st_cmp_sample *x, const struct st_cmp_sample *y)
{
	if (strcmp(x->target, y->target) || x->ref_same != y->ref_same)
		return false;
	for (int k = 0; k < ST_CMP_NSIDES; k++)
		if (strcmp(x->v[k], y->v[k]) || x->set[k] != y->set[k] || x->status[k] != y->status[k])
			return false;
	return true;
}

struct keyed {
	uint64_t key;
	const struct st_cmp_sample *s;
};

static int keyed_cmp(const void *x, const void *y)
{
	const struct keyed *a = x, *b = y;
	int c;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	/* a collision: by content (identical samples were dropped) */
	if ((c = strcmp(a->s->target, b->s->target)))
		return c;
	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		if ((c = strcmp(a->s->v[k], b->s->v[k])))
			return c;
		if (a->s->set[k] != b->s->set[k])
			return a->s->set[k] ? 1 : -1;
		if (a->s->status[k] != b->s->status[k])
			return a->s->status[k] > b->s->status[k] ? 1 : -1;
	}
	return (int)a->s->ref_same - (int)b->s->ref_same;
}

/* The ST_CMP_SAMPLES samples of both with the smallest keys: a fair choice (a hash does not
 * favour a host or an order), and merge(merge(A, B), C) keeps what merge(A, merge(B, C)) does. */
static void samples_merge(struct st_cmp_field *d, const struct st_cmp_field *s)
{
	struct st_cmp_sample all[2 * ST_CMP_SAMPLES];
	struct keyed k[2 * ST_CMP_SAMPLES];
	uint32_t n = 0;

	for (uint32_t side = 0; side < 2; side++) {
		const struct st_cmp_field *f = side ? s : d;

		for (uint32_t i = 0; i < f->nsamples && i < ST_CMP_SAMPLES; i++) {
			bool dup = false;

			for (uint32_t j = 0; j < n && !dup; j++)
				dup = sample_same(&all[j], &f->s[i]);
			if (!dup)
				all[n++] = f->s[i];
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		k[i].key = st_cmp_sample_key(&all[i]);
		k[i].s = &all[i];
	}
	qsort(k, n, sizeof(k[0]), keyed_cmp);
	d->nsamples = n < ST_CMP_SAMPLES ? n : ST_CMP_SAMPLES;
	for (uint32_t i = 0; i < d->nsamples; i++)
		d->s[i] = *k[i].s;
}

static int field_cmp(const void *x, const void *y)
{
	const struct st_cmp_field *a = x, *b = y;
	bool ao = !strcmp(a->path, "(other fields)"), bo = !strcmp(b->path, "(other fields)");

	if (ao != bo)
		return ao ? 1 : -1; /* the last row, where field() looks for it */
	if (a->raw != b->raw)
		return a->raw > b->raw ? -1 : 1;
	if (a->noise != b->noise)
		return a->noise > b->noise ? -1 : 1;
	return strcmp(a->path, b->path);
}

static int corr_cmp(const void *x, const void *y)
{
	const struct st_cmp_corr_field *a = x, *b = y;
	bool ao = !strcmp(a->path, "(other fields)"), bo = !strcmp(b->path, "(other fields)");

	if (ao != bo)
		return ao ? 1 : -1; /* the last row, where st_cmp_endpoint_corr() looks for it */
	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return strcmp(a->path, b->path);
}

static void corr_merge(struct st_cmp_endpoint *d, const struct st_cmp_endpoint *s, bool *over)
{
	*over |= !st_cmp_count_add(&d->correlated, s->correlated);
	for (uint32_t i = 0; i < s->ncorr; i++)
		*over |= !st_cmp_count_add(&st_cmp_endpoint_corr(d, s->corr[i].path)->n, s->corr[i].n);
	if (d->ncorr)
		qsort(d->corr, d->ncorr, sizeof(d->corr[0]), corr_cmp);
}

static int code_cmp(const void *x, const void *y)
{
	const uint64_t *a = x, *b = y; /* (code << 48) | index */

	return (*a > *b) - (*a < *b);
}

static void status_sort(struct st_cmp_status *s)
{
	uint64_t k[ST_CMP_STATUS_MAX], n[ST_CMP_STATUS_MAX];

	for (uint32_t i = 0; i < s->ncodes; i++) {
		k[i] = (uint64_t)s->code[i] << 48 | i;
		n[i] = s->n[i];
	}
	qsort(k, s->ncodes, sizeof(k[0]), code_cmp);
	for (uint32_t i = 0; i < s->ncodes; i++) {
		s->code[i] = (uint16_t)(k[i] >> 48);
		s->n[i] = n[k[i] & 0xffff];
	}
}

/* Sums that fit set nothing in *over; one that would pass ST_CMP_COUNT_MAX sets it. */
static void lat_merge(struct st_cmp_lat *d, const struct st_cmp_lat *s, bool *over)
{
	*over |= !st_cmp_count_add(&d->n, s->n);
	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++)
		d->b[i] = (uint64_t)d->b[i] + s->b[i] > UINT32_MAX ? UINT32_MAX : d->b[i] + s->b[i];
}

static int ep_merge(struct st_cmp_endpoint *d, const struct st_cmp_endpoint *s, bool *over)
{
	int rc = 0;

	*over |= !st_cmp_count_add(&d->compared, s->compared);
	*over |= !st_cmp_count_add(&d->differing, s->differing);
	*over |= !st_cmp_count_add(&d->noise_only, s->noise_only);
	*over |= !st_cmp_count_add(&d->not_compared, s->not_compared);
	*over |= !st_cmp_count_add(&d->more_paths, s->more_paths);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const struct st_cmp_field *sf = &s->fields[i];
		struct st_cmp_field *df = st_cmp_endpoint_field(d, sf->path, sf->kind, sf->note);

		if (!df) {
			rc = -1;
			continue;
		}
		*over |= !st_cmp_count_add(&df->raw, sf->raw);
		*over |= !st_cmp_count_add(&df->noise, sf->noise);
		*over |= !st_cmp_count_add(&df->vol, sf->vol);
		samples_merge(df, sf);
	}
	if (d->nfields)
		qsort(d->fields, d->nfields, sizeof(d->fields[0]), field_cmp);
	corr_merge(d, s, over);
	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		lat_merge(&d->lat[k], &s->lat[k], over);
		for (uint32_t i = 0; i < s->status[k].ncodes; i++)
			*over |= !st_cmp_status_add(&d->status[k], s->status[k].code[i],
						    s->status[k].n[i]);
		*over |= !st_cmp_count_add(&d->status[k].other, s->status[k].other);
		status_sort(&d->status[k]);
	}
	return rc;
}

int st_cmp_agg_merge(struct st_cmp_agg *a, const struct st_cmp_agg *b)
{
	bool over = false;
	int rc = 0;

	for (uint32_t i = 0; i <= b->n; i++) {
		const struct st_cmp_endpoint *e = i < b->n ? b->ep[i] : &b->other;
		struct st_cmp_endpoint *d;

		if (i == b->n && !e->compared && !e->not_compared && !e->nfields && !e->ncorr)
			continue;
		d = i < b->n ? st_cmp_agg_endpoint(a, e->name) : &a->other;
		if (ep_merge(d, e, &over))
			rc = -ENOMEM;
	}
	over |= !st_cmp_count_add(&a->compared, b->compared);
	over |= !st_cmp_count_add(&a->differing, b->differing);
	over |= !st_cmp_count_add(&a->noise_only, b->noise_only);
	over |= !st_cmp_count_add(&a->correlated, b->correlated);
	return over ? -EOVERFLOW : rc;
}
