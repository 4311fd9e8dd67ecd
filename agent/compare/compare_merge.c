/* SPDX-License-Identifier: GPL-2.0-only */
/* Tap compare reports read back and merged (compare_merge.h). */
#include "compare_merge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "json.h"

#define SEVERAL "(several)"

void st_cmp_report_init(struct st_cmp_report *r)
{
	memset(r, 0, sizeof(*r));
}

void st_cmp_report_free(struct st_cmp_report *r)
{
	if (r->agg.slot)
		st_cmp_agg_free(&r->agg);
	memset(r, 0, sizeof(*r));
}

static int kind_of(struct st_json_rd *l, uint32_t obj, uint8_t *out)
{
	char k[24];

	if (st_json_rd_str(l, obj, "kind", k, sizeof(k)))
		return -1;
	for (int i = 0; i < ST_CMP_KIND__COUNT; i++)
		if (!strcmp(k, st_cmp_kind_name((enum st_cmp_kind)i))) {
			*out = (uint8_t)i;
			return 0;
		}
	return st_json_rd_fail(l, "\"kind\" '%s' is not a difference kind", k);
}

/* ---- reading: the parts of a report (the accessors: json.h) -------------------------------- */

static int load_lat(struct st_json_rd *l, uint32_t obj, struct st_cmp_lat *lat)
{
	uint32_t b = st_json_rd_member(l, obj, "buckets");
	uint64_t sum = 0;
	int last = -1;

	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "a latency side is not an object");
	if (st_json_rd_u64(l, obj, "n", UINT64_MAX / 2, &lat->n))
		return -1;
	if (!st_json_rd_is(l, b, ST_JSON_ARRAY))
		return st_json_rd_fail(l, "\"buckets\" is missing (a report of format %d has them)",
			    ST_CMP_REPORT_VERSION);
	for (uint32_t c = st_json_rd_child(l, b); c; c = st_json_rd_next(l, c)) {
		uint64_t idx, n;

		if (!st_json_rd_is(l, c, ST_JSON_ARRAY) || st_json_rd_node(l, c)->n != 2)
			return st_json_rd_fail(l, "a latency bucket is not [index, count]");
		if (st_json_rd_num_u64(l, c + 1, "bucket index", ST_CMP_LAT_BUCKETS - 1, &idx) ||
		    st_json_rd_num_u64(l, st_json_rd_next(l, c + 1), "bucket count", UINT32_MAX, &n))
			return -1;
		if ((int)idx <= last || !n)
			return st_json_rd_fail(l, "latency buckets are not in order or hold 0");
		last = (int)idx;
		lat->b[idx] = (uint32_t)n;
		sum += n;
	}
	if (sum > lat->n)
		return st_json_rd_fail(l, "latency buckets hold more than \"n\"");
	return 0;
}

static int load_status(struct st_json_rd *l, uint32_t obj, struct st_cmp_status *s)
{
	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "a status side is not an object");
	for (uint32_t c = st_json_rd_child(l, obj); c; c = st_json_rd_next(l, c)) {
		const char *k = st_json_key(l->d, st_json_rd_node(l, c));
		uint32_t kl = st_json_rd_node(l, c)->key_len;
		uint64_t n, code = 0;

		if (st_json_rd_num_u64(l, c, "status count", UINT64_MAX / 2, &n))
			return -1;
		if (kl == 5 && !memcmp(k, "other", 5)) {
			if (!st_cmp_count_add(&s->other, n))
				return st_json_rd_fail(l, "status counts beyond %llu",
					    (unsigned long long)ST_CMP_COUNT_MAX);
			continue;
		}
		for (uint32_t i = 0; i < kl && code <= 65535; i++) {
			if (k[i] < '0' || k[i] > '9')
				return st_json_rd_fail(l, "a status code is not a number");
			code = code * 10 + (uint64_t)(k[i] - '0');
		}
		if (!kl || code > 65535)
			return st_json_rd_fail(l, "a status code is not a number in 0..65535");
		for (uint32_t i = 0; i < s->ncodes; i++)
			if (s->code[i] == code)
				return st_json_rd_fail(l, "status code %llu is there twice", (unsigned long long)code);
		if (s->ncodes >= ST_CMP_STATUS_MAX)
			return st_json_rd_fail(l, "more than %d status codes", ST_CMP_STATUS_MAX);
		st_cmp_status_add(s, (uint16_t)code, n);
	}
	return 0;
}

/* A sample's side: a string, or null (no value there). */
static int sample_side(struct st_json_rd *l, uint32_t obj, const char *key, char *out, size_t cap,
		       bool *set)
{
	uint32_t i = st_json_rd_member(l, obj, key);

	*set = false;
	if (st_json_rd_is(l, i, ST_JSON_NULL))
		return 0;
	*set = true;
	return st_json_rd_str_node(l, i, key, out, cap);
}

static int load_sample(struct st_json_rd *l, uint32_t obj, bool ref, struct st_cmp_sample *s)
{
	static const char *const stkey[ST_CMP_NSIDES] = { "production_status", "candidate_status",
							  "reference_status" };
	uint64_t st;

	memset(s, 0, sizeof(*s));
	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "a sample is not an object");
	if (st_json_rd_str(l, obj, "target", s->target, sizeof(s->target)))
		return -1;
	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		if (k == ST_CMP_REF && !ref)
			continue;
		if (sample_side(l, obj, st_cmp_side_name((enum st_cmp_side)k), s->v[k], sizeof(s->v[k]),
				&s->set[k]) ||
		    st_json_rd_u64(l, obj, stkey[k], 65535, &st))
			return -1;
		s->status[k] = (uint16_t)st;
	}
	if (ref) {
		if (st_json_rd_bool(l, obj, "reference_same", &s->ref_same))
			return -1;
		if (s->ref_same) {
			/* written as production's value: held as "the same" */
			s->v[ST_CMP_REF][0] = 0;
			s->set[ST_CMP_REF] = false;
		}
	}
	return 0;
}

static int load_field(struct st_json_rd *l, struct st_cmp_endpoint *e, uint32_t obj, bool noise_only,
		      bool ref)
{
	char path[ST_CMP_PATH_MAX + 4], note[ST_CMP_NOTE_MAX] = "";
	uint32_t nm = st_json_rd_member(l, obj, "note"), sm, before = e->nfields;
	struct st_cmp_field *f;
	uint64_t raw = 0, noise, vol;
	uint8_t kind = 0;

	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "a field is not an object");
	if (st_json_rd_str(l, obj, "path", path, sizeof(path)) || kind_of(l, obj, &kind) ||
	    (!noise_only && st_json_rd_u64(l, obj, "raw", UINT64_MAX / 2, &raw)) ||
	    st_json_rd_u64(l, obj, "noise", UINT64_MAX / 2, &noise) ||
	    st_json_rd_u64(l, obj, "volatile", UINT64_MAX / 2, &vol) ||
	    (nm && st_json_rd_str_node(l, nm, "note", note, sizeof(note))))
		return -1;
	if (!noise_only && !raw)
		return st_json_rd_fail(l, "field %s: \"raw\" is 0 (such fields are under \"noise_fields\")", path);
	if (vol > raw)
		return st_json_rd_fail(l, "field %s: \"volatile\" is larger than \"raw\"", path);
	if (e->nfields >= ST_CMP_FIELDS_MAX)
		return st_json_rd_fail(l, "more than %d fields", ST_CMP_FIELDS_MAX);
	f = st_cmp_endpoint_field(e, path, kind, note);
	if (!f)
		return st_json_rd_fail(l, "out of memory");
	if (e->nfields == before)
		return st_json_rd_fail(l, "field %s is there twice", path);
	f->raw = raw;
	f->noise = noise;
	f->vol = vol;
	if (noise_only)
		return 0;
	sm = st_json_rd_member(l, obj, "samples");
	if (!st_json_rd_is(l, sm, ST_JSON_ARRAY) || st_json_rd_node(l, sm)->n > ST_CMP_SAMPLES)
		return st_json_rd_fail(l, "field %s: \"samples\" is missing or holds more than %d", path,
			    ST_CMP_SAMPLES);
	for (uint32_t c = st_json_rd_child(l, sm); c; c = st_json_rd_next(l, c))
		if (load_sample(l, c, ref, &f->s[f->nsamples++]))
			return -1;
	return 0;
}

/* "correlated" and "correlated_fields" (added within format 2: absent in older reports, 0). */
static int load_corr(struct st_json_rd *l, struct st_cmp_agg *a, struct st_cmp_endpoint *e,
		     uint32_t obj)
{
	uint32_t cf = st_json_rd_member(l, obj, "correlated_fields");

	if (st_json_rd_member(l, obj, "correlated") &&
	    st_json_rd_u64(l, obj, "correlated", e->compared, &e->correlated))
		return -1;
	if (!st_cmp_count_add(&a->correlated, e->correlated))
		return st_json_rd_fail(l, "the endpoints' counts add up to more than %llu",
				       (unsigned long long)ST_CMP_COUNT_MAX);
	if (!cf)
		return 0;
	if (!st_json_rd_is(l, cf, ST_JSON_ARRAY) || st_json_rd_node(l, cf)->n > ST_CMP_CORR_FIELDS_MAX)
		return st_json_rd_fail(l, "\"correlated_fields\" is not a list of at most %d",
				       ST_CMP_CORR_FIELDS_MAX);
	for (uint32_t c = st_json_rd_child(l, cf); c; c = st_json_rd_next(l, c)) {
		char path[ST_CMP_PATH_MAX + 4];
		uint32_t before = e->ncorr;
		struct st_cmp_corr_field *f;
		uint64_t n;

		if (!st_json_rd_is(l, c, ST_JSON_OBJECT))
			return st_json_rd_fail(l, "a correlated field is not an object");
		if (st_json_rd_str(l, c, "path", path, sizeof(path)))
			return -1;
		/* a field's pairs are among the endpoint's; the row of the rest adds several fields */
		if (st_json_rd_u64(l, c, "correlated",
				   strcmp(path, "(other fields)") ? e->correlated : ST_CMP_COUNT_MAX, &n))
			return -1;
		f = st_cmp_endpoint_corr(e, path);
		if (e->ncorr == before)
			return st_json_rd_fail(l, "correlated field %s is there twice", path);
		f->n = n;
	}
	return 0;
}

static int load_endpoint(struct st_json_rd *l, struct st_cmp_agg *a, uint32_t obj)
{
	char name[ST_CMP_ENDPOINT_MAX];
	bool ref = a->cfg.reference;
	struct st_cmp_endpoint *e;
	uint32_t lat, st, fl;
	uint64_t compared, differing, noise_only, not_compared, more;

	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "an endpoint is not an object");
	if (st_json_rd_str(l, obj, "endpoint", name, sizeof(name)))
		return -1;
	snprintf(l->where, sizeof(l->where), "endpoint %s", name);
	if (st_json_rd_u64(l, obj, "compared", UINT64_MAX / 2, &compared) ||
	    st_json_rd_u64(l, obj, "differing", compared, &differing) ||
	    st_json_rd_u64(l, obj, "noise_only", compared - differing, &noise_only) ||
	    st_json_rd_u64(l, obj, "not_compared", UINT64_MAX / 2, &not_compared) ||
	    st_json_rd_u64(l, obj, "more_paths", UINT64_MAX / 2, &more))
		return -1;
	if (!strcmp(name, "other")) {
		e = &a->other;
		if (e->compared || e->not_compared || e->nfields || e->ncorr)
			return st_json_rd_fail(l, "it is there twice");
	} else {
		uint32_t before = a->n;

		if (a->n >= a->cfg.max_endpoints)
			return st_json_rd_fail(l, "more endpoints than max_endpoints (%u)", a->cfg.max_endpoints);
		e = st_cmp_agg_endpoint(a, name);
		if (e == &a->other)
			return st_json_rd_fail(l, "out of memory");
		if (a->n == before)
			return st_json_rd_fail(l, "it is there twice");
	}
	e->compared = compared;
	e->differing = differing;
	e->noise_only = noise_only;
	e->not_compared = not_compared;
	e->more_paths = more;
	/* the endpoints' sums, like a merge's, stay within a report's bounds or are refused */
	if (!st_cmp_count_add(&a->compared, compared) || !st_cmp_count_add(&a->differing, differing) ||
	    !st_cmp_count_add(&a->noise_only, noise_only))
		return st_json_rd_fail(l, "the endpoints' counts add up to more than %llu",
			    (unsigned long long)ST_CMP_COUNT_MAX);
	if (load_corr(l, a, e, obj))
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		const char *key = pass ? "noise_fields" : "fields";

		fl = st_json_rd_member(l, obj, key);
		if (!st_json_rd_is(l, fl, ST_JSON_ARRAY))
			return st_json_rd_fail(l, "\"%s\" is missing or not a list", key);
		for (uint32_t c = st_json_rd_child(l, fl); c; c = st_json_rd_next(l, c))
			if (load_field(l, e, c, pass, ref))
				return -1;
	}
	lat = st_json_rd_member(l, obj, "latency");
	st = st_json_rd_member(l, obj, "status");
	if (!st_json_rd_is(l, lat, ST_JSON_OBJECT) || !st_json_rd_is(l, st, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "\"latency\" or \"status\" is missing");
	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		const char *side = st_cmp_side_name((enum st_cmp_side)k);
		uint32_t li = st_json_rd_member(l, lat, side), si = st_json_rd_member(l, st, side);

		if (k == ST_CMP_REF && !ref) {
			if (!st_json_rd_is(l, li, ST_JSON_NULL) || !st_json_rd_is(l, si, ST_JSON_NULL))
				return st_json_rd_fail(l, "a reference side in a report without a reference");
			continue;
		}
		if (load_lat(l, li, &e->lat[k]) || load_status(l, si, &e->status[k]))
			return -1;
	}
	l->where[0] = 0;
	return 0;
}

static bool counter_name_ok(const char *s, size_t n)
{
	if (!n || n >= ST_CMP_COUNTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Adds name (held in r) = v to r's counters: its kind and help from compare's table. 0, -1
 * when there are too many, -2 when the sum would pass ST_CMP_COUNT_MAX (never wrapped). */
static int counter_add(struct st_cmp_report *r, const char *name, uint64_t v)
{
	struct st_statline *c = &r->counters;
	uint8_t kind = ST_STAT_COUNTER;
	const char *help = "";

	for (size_t i = 0; i < c->n; i++) {
		struct st_statline_ent *e = &c->e[i];

		if (strcmp(e->name, name))
			continue;
		if (e->kind == ST_STAT_GAUGE && strlen(name) > 5 &&
		    !strcmp(name + strlen(name) - 5, "_peak"))
			e->v = e->v > v ? e->v : v;
		else if (!st_cmp_count_add(&e->v, v))
			return -2;
		return 0;
	}
	if (c->n >= ST_STATLINE_MAX)
		return -1;
	for (size_t i = 0; i < st_compare_stat_n; i++)
		if (!strcmp(st_compare_stat_desc[i].name, name)) {
			kind = st_compare_stat_desc[i].kind;
			help = st_compare_stat_desc[i].help;
		}
	snprintf(r->counter_names[c->n], sizeof(r->counter_names[0]), "%s", name);
	c->e[c->n].name = r->counter_names[c->n];
	c->e[c->n].help = help;
	c->e[c->n].kind = kind;
	c->e[c->n].v = v;
	c->n++;
	return 0;
}

static void counter_set(struct st_cmp_report *r, const char *name, uint64_t v)
{
	for (size_t i = 0; i < r->counters.n; i++)
		if (!strcmp(r->counters.e[i].name, name))
			r->counters.e[i].v = v;
}

static int host_cmp(const void *x, const void *y)
{
	return strcmp(x, y);
}

/* Adds host to r's sorted distinct list; past ST_CMP_HOSTS_MAX the largest goes. */
static void host_add(struct st_cmp_report *r, const char *host)
{
	for (unsigned i = 0; i < r->nhosts; i++)
		if (!strcmp(r->hosts[i], host))
			return;
	if (r->nhosts < ST_CMP_HOSTS_MAX)
		snprintf(r->hosts[r->nhosts++], ST_CMP_HOST_MAX, "%s", host);
	else if (strcmp(host, r->hosts[ST_CMP_HOSTS_MAX - 1]) < 0)
		snprintf(r->hosts[ST_CMP_HOSTS_MAX - 1], ST_CMP_HOST_MAX, "%s", host);
	else
		return;
	qsort(r->hosts, r->nhosts, sizeof(r->hosts[0]), host_cmp);
}

static int load(struct st_json_rd *l, struct st_cmp_report *r)
{
	struct st_cmp_agg_config cfg = { 0 };
	char fmt[64];
	uint32_t th, refn, pats, hosts, sum, eps, fv;
	uint64_t v;
	double alpha, shift;

	if (st_json_rd_node(l, 0)->type != ST_JSON_OBJECT) /* the root (is_type() is for members) */
		return st_json_rd_fail(l, "not a shadowtap compare report (not a JSON object)");
	fv = st_json_rd_member(l, 0, "format");
	if (!fv) {
		if (st_json_rd_member(l, 0, "endpoints") && st_json_rd_member(l, 0, "thresholds"))
			return st_json_rd_fail(l, "a compare report of format 1 (no \"format\" key): it lacks the "
				       "histograms a merge needs; this shadowtap reads format %d",
				    ST_CMP_REPORT_VERSION);
		return st_json_rd_fail(l, "not a shadowtap compare report (no \"format\" key)");
	}
	if (st_json_rd_str_node(l, fv, "format", fmt, sizeof(fmt)) || strcmp(fmt, ST_CMP_REPORT_FORMAT))
		return st_json_rd_fail(l, "not a shadowtap compare report (\"format\" is not \"%s\")",
			    ST_CMP_REPORT_FORMAT);
	if (st_json_rd_u64(l, 0, "format_version", 1000000, &v))
		return -1;
	if (v != ST_CMP_REPORT_VERSION)
		return st_json_rd_fail(l, "a compare report of format version %llu; this shadowtap reads version %d",
			    (unsigned long long)v, ST_CMP_REPORT_VERSION);
	/* the configuration */
	th = st_json_rd_member(l, 0, "thresholds");
	if (!st_json_rd_is(l, th, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "\"thresholds\" is missing");
	if (st_json_rd_dbl(l, th, "relative_pct", &cfg.rel_pct) ||
	    st_json_rd_dbl(l, th, "absolute_pct", &cfg.abs_pct) ||
	    st_json_rd_dbl(l, th, "latency_min_ms", &cfg.lat_min_ms) ||
	    st_json_rd_dbl(l, th, "latency_alpha", &alpha) || st_json_rd_dbl(l, th, "latency_shift", &shift) ||
	    st_json_rd_u64(l, th, "latency_min_samples", 1000000, &v))
		return -1;
	if (!(cfg.rel_pct > 0 && cfg.rel_pct <= 100) || !(cfg.abs_pct > 0 && cfg.abs_pct <= 100) ||
	    !(cfg.lat_min_ms > 0 && cfg.lat_min_ms < 1e9))
		return st_json_rd_fail(l, "a threshold is out of range");
	if (alpha != ST_CMP_LAT_ALPHA || shift != ST_CMP_LAT_SHIFT || v != ST_CMP_LAT_MIN_N)
		return st_json_rd_fail(l, "written with another latency test (alpha %g, shift %g, %llu samples; "
			       "this shadowtap: %g, %g, %d)", alpha, shift, (unsigned long long)v,
			    ST_CMP_LAT_ALPHA, ST_CMP_LAT_SHIFT, ST_CMP_LAT_MIN_N);
	if (st_json_rd_u64(l, th, "max_endpoints", 100000, &v))
		return -1;
	if (!v)
		return st_json_rd_fail(l, "\"max_endpoints\" is 0");
	cfg.max_endpoints = (unsigned)v;
	if (st_json_rd_u64(l, th, "compare_max_body", UINT64_MAX / 2, &r->max_body) ||
	    st_json_rd_dbl(l, th, "compare_timeout_s", &r->timeout_s))
		return -1;
	if (!(r->timeout_s >= 0 && r->timeout_s <= 1e9))
		return st_json_rd_fail(l, "\"compare_timeout_s\" is out of range");
	refn = st_json_rd_member(l, 0, "reference");
	cfg.reference = !st_json_rd_is(l, refn, ST_JSON_NULL);
	if (cfg.reference && st_json_rd_str_node(l, refn, "reference", r->reference, sizeof(r->reference)))
		return -1;
	pats = st_json_rd_member(l, 0, "endpoint_patterns");
	if (!st_json_rd_is(l, pats, ST_JSON_ARRAY) || st_json_rd_node(l, pats)->n > ST_CMP_PATTERNS_MAX)
		return st_json_rd_fail(l, "\"endpoint_patterns\" is missing or holds more than %d",
			    ST_CMP_PATTERNS_MAX);
	for (uint32_t c = st_json_rd_child(l, pats); c; c = st_json_rd_next(l, c)) {
		char p[ST_CMP_ENDPOINT_MAX];

		if (st_json_rd_str_node(l, c, "endpoint_patterns", p, sizeof(p)))
			return -1;
		if (st_cmp_pattern_parse(p, &r->patterns[cfg.npatterns++]))
			return st_json_rd_fail(l, "endpoint pattern '%s' is not METHOD /path", p);
	}
	cfg.patterns = r->patterns;
	if (st_cmp_agg_init(&r->agg, &cfg))
		return st_json_rd_fail(l, "out of memory");
	/* the run */
	if (st_json_rd_str(l, 0, "command", r->command, sizeof(r->command)) ||
	    st_json_rd_str(l, 0, "candidate", r->candidate, sizeof(r->candidate)) ||
	    st_json_rd_bool(l, 0, "final", &r->final) ||
	    st_json_rd_time(l, 0, "generated", &r->generated_ns) ||
	    st_json_rd_time(l, 0, "started", &r->start_ns) || st_json_rd_time(l, 0, "ended", &r->end_ns) ||
	    st_json_rd_u64(l, 0, "sources", UINT64_MAX / 2, &r->sources))
		return -1;
	if (r->end_ns < r->start_ns || !r->sources)
		return st_json_rd_fail(l, "\"ended\" is before \"started\", or \"sources\" is 0");
	hosts = st_json_rd_member(l, 0, "hosts");
	if (!st_json_rd_is(l, hosts, ST_JSON_ARRAY) || st_json_rd_node(l, hosts)->n > ST_CMP_HOSTS_MAX)
		return st_json_rd_fail(l, "\"hosts\" is missing or holds more than %d", ST_CMP_HOSTS_MAX);
	for (uint32_t c = st_json_rd_child(l, hosts); c; c = st_json_rd_next(l, c)) {
		char h[ST_CMP_HOST_MAX];

		if (st_json_rd_str_node(l, c, "hosts", h, sizeof(h)))
			return -1;
		host_add(r, h);
	}
	sum = st_json_rd_member(l, 0, "summary");
	if (!st_json_rd_is(l, sum, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "\"summary\" is missing");
	for (uint32_t c = st_json_rd_child(l, sum); c; c = st_json_rd_next(l, c)) {
		char name[ST_CMP_COUNTER_NAME_MAX];
		uint32_t kl = st_json_rd_node(l, c)->key_len;

		if (!counter_name_ok(st_json_key(l->d, st_json_rd_node(l, c)), kl))
			return st_json_rd_fail(l, "a \"summary\" counter's name is not a counter name");
		memcpy(name, st_json_key(l->d, st_json_rd_node(l, c)), kl);
		name[kl] = 0;
		if (st_json_rd_num_u64(l, c, name, UINT64_MAX / 2, &v))
			return -1;
		for (size_t i = 0; i < r->counters.n; i++)
			if (!strcmp(r->counters.e[i].name, name))
				return st_json_rd_fail(l, "counter %s is there twice", name);
		if (counter_add(r, name, v))
			return st_json_rd_fail(l, "more than %d counters", ST_STATLINE_MAX);
	}
	/* the aggregate */
	eps = st_json_rd_member(l, 0, "endpoints");
	if (!st_json_rd_is(l, eps, ST_JSON_ARRAY))
		return st_json_rd_fail(l, "\"endpoints\" is missing");
	for (uint32_t c = st_json_rd_child(l, eps); c; c = st_json_rd_next(l, c))
		if (load_endpoint(l, &r->agg, c))
			return -1;
	r->loaded = true;
	return 0;
}

int st_cmp_report_load(struct st_cmp_report *r, const char *buf, size_t len, char *err,
		       size_t errlen)
{
	struct st_json_doc d;
	struct st_json_rd l = { .d = &d, .err = err, .errlen = errlen };
	int rc;

	st_cmp_report_init(r);
	/* a report nests 7 deep */
	if (st_json_rd_parse(&d, buf, len, ST_CMP_REPORT_FILE_MAX, 16, err, errlen))
		return -1;
	rc = load(&l, r);
	st_json_doc_free(&d);
	if (rc)
		st_cmp_report_free(r);
	return rc;
}

int st_cmp_report_read(struct st_cmp_report *r, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	st_cmp_report_init(r);
	if (st_json_read_file(path, ST_CMP_REPORT_FILE_MAX, &buf, &len, err, errlen))
		return -1;
	rc = st_cmp_report_load(r, buf, len, err, errlen);
	free(buf);
	return rc;
}

/* ---- merging ------------------------------------------------------------------------------- */

static void same_or_several(char *dst, const char *src)
{
	if (strcmp(dst, src))
		snprintf(dst, ST_CMP_NAME_MAX, "%s", SEVERAL);
}

static int config_differs(const struct st_cmp_report *d, const struct st_cmp_report *s, char *err,
			  size_t errlen)
{
	const struct st_cmp_agg_config *a = &d->agg.cfg, *b = &s->agg.cfg;

	if (a->reference != b->reference)
		snprintf(err, errlen, "one report has a reference and another has none: their "
			 "verdicts are not made the same way");
	else if (a->rel_pct != b->rel_pct || a->abs_pct != b->abs_pct)
		snprintf(err, errlen, "another --noise-relative/--noise-absolute (%g%%/%g%% against "
			 "%g%%/%g%%)", b->rel_pct, b->abs_pct, a->rel_pct, a->abs_pct);
	else if (a->lat_min_ms != b->lat_min_ms)
		snprintf(err, errlen, "another --latency-min-ms (%g against %g)", b->lat_min_ms,
			 a->lat_min_ms);
	else if (a->max_endpoints != b->max_endpoints)
		snprintf(err, errlen, "another --compare-max-endpoints (%u against %u)",
			 b->max_endpoints, a->max_endpoints);
	else if (d->max_body != s->max_body || d->timeout_s != s->timeout_s)
		snprintf(err, errlen, "another --compare-max-body or --compare-timeout");
	else if (a->npatterns != b->npatterns)
		snprintf(err, errlen, "other --endpoint patterns: the endpoints are not named alike");
	else
		for (unsigned i = 0; i < a->npatterns; i++)
			if (strcmp(a->patterns[i].text, b->patterns[i].text)) {
				snprintf(err, errlen, "other --endpoint patterns: the endpoints are not "
					 "named alike");
				return 1;
			}
	return !!err[0];
}

int st_cmp_report_merge(struct st_cmp_report *d, const struct st_cmp_report *s, char *err,
			size_t errlen)
{
	err[0] = 0;
	if (!s->loaded) {
		snprintf(err, errlen, "nothing to merge");
		return -1;
	}
	if (!d->loaded) {
		struct st_cmp_agg_config cfg = s->agg.cfg;

		memcpy(d->patterns, s->patterns, sizeof(d->patterns));
		cfg.patterns = d->patterns;
		if (st_cmp_agg_init(&d->agg, &cfg)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		snprintf(d->command, sizeof(d->command), "%s", s->command);
		snprintf(d->candidate, sizeof(d->candidate), "%s", s->candidate);
		snprintf(d->reference, sizeof(d->reference), "%s", s->reference);
		d->final = true;
		d->start_ns = s->start_ns;
		d->end_ns = s->end_ns;
		d->generated_ns = s->generated_ns;
		d->max_body = s->max_body;
		d->timeout_s = s->timeout_s;
		d->loaded = true;
	} else if (config_differs(d, s, err, errlen)) {
		return -1;
	}
	same_or_several(d->command, s->command);
	same_or_several(d->candidate, s->candidate);
	same_or_several(d->reference, s->reference);
	d->final = d->final && s->final;
	d->start_ns = s->start_ns < d->start_ns ? s->start_ns : d->start_ns;
	d->end_ns = s->end_ns > d->end_ns ? s->end_ns : d->end_ns;
	d->generated_ns = s->generated_ns > d->generated_ns ? s->generated_ns : d->generated_ns;
	if (!st_cmp_count_add(&d->sources, s->sources))
		goto over;
	for (unsigned i = 0; i < s->nhosts; i++)
		host_add(d, s->hosts[i]);
	for (size_t i = 0; i < s->counters.n; i++) {
		int rc = counter_add(d, s->counters.e[i].name, s->counters.e[i].v);

		if (rc == -2)
			goto over;
		if (rc) {
			snprintf(err, errlen, "more than %d counters", ST_STATLINE_MAX);
			return -1;
		}
	}
	switch (st_cmp_agg_merge(&d->agg, &s->agg)) {
	case 0:
		break;
	case -EOVERFLOW:
		goto over;
	default:
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	counter_set(d, "compare_endpoints", d->agg.n);
	return 0;
over:
	/* a sum a report cannot hold: refused, never wrapped (nor saturated into a lie) */
	snprintf(err, errlen, "the merged counts would pass %llu (2^63 - 1, what a report holds)",
		 (unsigned long long)ST_CMP_COUNT_MAX);
	return -1;
}

void st_cmp_report_run(const struct st_cmp_report *r, struct st_cmp_run *run, const char **hostv,
		       uint64_t now_ns)
{
	memset(run, 0, sizeof(*run));
	run->command = r->command;
	run->candidate = r->candidate;
	run->reference = r->agg.cfg.reference ? r->reference : NULL;
	run->start_real_ns = r->start_ns;
	run->now_real_ns = now_ns;
	run->end_real_ns = r->end_ns;
	run->final = r->final;
	run->counters = &r->counters;
	run->max_body = r->max_body;
	run->timeout_s = r->timeout_s;
	run->max_endpoints = r->agg.cfg.max_endpoints;
	for (unsigned i = 0; i < r->nhosts; i++)
		hostv[i] = r->hosts[i];
	run->hosts = hostv;
	run->nhosts = r->nhosts;
	run->sources = r->sources;
}
