/* SPDX-License-Identifier: GPL-2.0-only */
/* Load test reports read back and merged (load_merge.h). */
#include "load_merge.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_agg.h"
#include "json.h"
#include "load_report.h"

#define SEVERAL "(several)"
/* what a report may hold (compare's bound): a merge whose sums would pass it is refused */
#define COUNT_MAX ST_CMP_COUNT_MAX
#define SOURCES_MAX 1000000000ull /* reports merged, connections: at most this in a report */
#define SECS_MAX 1e9

/* ---- reading ------------------------------------------------------------------------------ */

static int get_secs(struct st_json_rd *l, uint32_t obj, const char *key, double *out)
{
	if (st_json_rd_dbl(l, obj, key, out))
		return -1;
	if (!(*out >= 0 && *out <= SECS_MAX))
		return st_json_rd_fail(l, "\"%s\" is out of range", key);
	return 0;
}

/* A latency object's histogram ("hdr" in the layout the file names, its n, min, max and
 * over_range) added into dst (made at sig digits when first used). */
static int load_lat(struct st_json_rd *l, uint32_t obj, struct st_hdr *dst, int file_sig, int sig)
{
	uint32_t h = st_json_rd_member(l, obj, "hdr");
	struct st_hdr t;
	uint64_t n, over, sum = 0;
	double mn, mx;
	int64_t last = -1, first = -1;
	int rc = -1;

	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT) || !st_json_rd_is(l, h, ST_JSON_ARRAY))
		return st_json_rd_fail(l, "a latency is not an object with an \"hdr\" list");
	if (st_json_rd_u64(l, obj, "n", COUNT_MAX, &n) ||
	    st_json_rd_u64(l, obj, "over_range", n, &over) ||
	    st_json_rd_dbl(l, obj, "min", &mn) || st_json_rd_dbl(l, obj, "max", &mx))
		return -1;
	if (!n) {
		if (st_json_rd_child(l, h))
			return st_json_rd_fail(l, "an empty latency (n 0) with buckets");
		return 0;
	}
	if (!(mn >= 0 && mx >= mn && mx * 1e3 <= (double)ST_LOAD_HIGHEST_US))
		return st_json_rd_fail(l, "a latency's min or max is out of range");
	if (st_hdr_init(&t, 1, ST_LOAD_HIGHEST_US, file_sig))
		return st_json_rd_fail(l, "out of memory");
	for (uint32_t c = st_json_rd_child(l, h); c; c = st_json_rd_next(l, c)) {
		uint64_t idx, k;

		if (!st_json_rd_is(l, c, ST_JSON_ARRAY) || st_json_rd_node(l, c)->n != 2) {
			st_json_rd_fail(l, "a histogram bucket is not [index, count]");
			goto out;
		}
		if (st_json_rd_num_u64(l, c + 1, "bucket index", t.counts_len - 1, &idx) ||
		    st_json_rd_num_u64(l, st_json_rd_next(l, c + 1), "bucket count", COUNT_MAX, &k))
			goto out;
		if ((int64_t)idx <= last || !k || st_hdr_value_at_index(&t, (uint32_t)idx) >
							     ST_LOAD_HIGHEST_US) {
			st_json_rd_fail(l, "histogram buckets are out of order, empty or past the "
					     "range");
			goto out;
		}
		if (first < 0)
			first = (int64_t)idx;
		last = (int64_t)idx;
		t.counts[idx] = k;
		sum += k;
		if (sum > n) {
			st_json_rd_fail(l, "histogram buckets hold more than \"n\"");
			goto out;
		}
	}
	if (sum != n) {
		st_json_rd_fail(l, "histogram buckets hold %llu, \"n\" says %llu", (unsigned long long)sum,
				  (unsigned long long)n);
		goto out;
	}
	t.total = n;
	t.over = over;
	t.min = (uint64_t)llround(mn * 1e3);
	t.max = (uint64_t)llround(mx * 1e3);
	/* the exact extremes lie in the first and last buckets */
	if (st_hdr_index(&t, t.min) != (uint32_t)first || st_hdr_index(&t, t.max) != (uint32_t)last) {
		st_json_rd_fail(l, "a latency's min or max is not in its histogram's first or "
				     "last bucket");
		goto out;
	}
	if (st_load_hdr_ready(dst, sig) || st_hdr_add(dst, &t)) {
		st_json_rd_fail(l, "out of memory, or a count too large");
		goto out;
	}
	rc = 0;
out:
	st_hdr_free(&t);
	return rc;
}

static int load_errors(struct st_json_rd *l, uint32_t obj, uint64_t *errors)
{
	unsigned seen = 0;

	if (!st_json_rd_is(l, obj, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "\"errors\" is missing or not an object");
	for (int i = 0; i < ST_LOAD_E__COUNT; i++) {
		if (st_json_rd_u64(l, obj, st_load_err_name((enum st_load_err)i), COUNT_MAX,
					 &errors[i]))
			return -1;
		seen++;
	}
	if (st_json_rd_node(l, obj)->n != seen)
		return st_json_rd_fail(l, "\"errors\" has a kind this shadowtap does not know");
	return 0;
}

static int load_steps(struct st_json_rd *l, struct st_load_agg *a, int sig)
{
	uint32_t arr = st_json_rd_member(l, 0, "steps");
	unsigned i = 0;

	if (get_secs(l, 0, "step_s", &a->step_s))
		return -1;
	if (!st_json_rd_is(l, arr, ST_JSON_ARRAY) ||
	    st_json_rd_node(l, arr)->n > ST_LOAD_STEPS_MAX)
		return st_json_rd_fail(l, "\"steps\" is missing or holds more than %d",
					 ST_LOAD_STEPS_MAX);
	if (st_json_rd_node(l, arr)->n && !(a->step_s > 0))
		return st_json_rd_fail(l, "steps without a \"step_s\"");
	for (uint32_t c = st_json_rd_child(l, arr); c; c = st_json_rd_next(l, c), i++) {
		struct st_load_step *s = &a->steps[i];

		snprintf(l->where, sizeof(l->where), "step %u", i + 1);
		if (!st_json_rd_is(l, c, ST_JSON_OBJECT))
			return st_json_rd_fail(l, "not an object");
		if (st_json_rd_dbl(l, c, "rps", &s->rps) ||
		    st_json_rd_u64(l, c, "due", COUNT_MAX, &s->due) ||
		    st_json_rd_u64(l, c, "sent", COUNT_MAX, &s->sent) ||
		    st_json_rd_u64(l, c, "answered", COUNT_MAX, &s->answered) ||
		    st_json_rd_u64(l, c, "answered_in", COUNT_MAX, &s->answered_in) ||
		    st_json_rd_u64(l, c, "errors", COUNT_MAX, &s->errors) ||
		    load_lat(l, st_json_rd_member(l, c, "latency_ms"), &s->lat, sig, ST_LOAD_SIG))
			return -1;
		if (!(s->rps > 0 && s->rps <= SECS_MAX))
			return st_json_rd_fail(l, "\"rps\" is out of range");
	}
	a->nsteps = i;
	l->where[0] = 0;
	return 0;
}

static int load_endpoints(struct st_json_rd *l, struct st_load_agg *a, int sig)
{
	uint32_t arr = st_json_rd_member(l, 0, "endpoints");

	if (!st_json_rd_is(l, arr, ST_JSON_ARRAY) ||
	    st_json_rd_node(l, arr)->n > a->max_endpoints + 1)
		return st_json_rd_fail(l, "\"endpoints\" is missing or holds more than %u",
					 a->max_endpoints + 1);
	for (uint32_t c = st_json_rd_child(l, arr); c; c = st_json_rd_next(l, c)) {
		char name[ST_CMP_ENDPOINT_MAX];
		struct st_load_endpoint *e;
		unsigned before = a->nep;

		if (!st_json_rd_is(l, c, ST_JSON_OBJECT))
			return st_json_rd_fail(l, "an endpoint is not an object");
		if (st_json_rd_str(l, c, "endpoint", name, sizeof(name)))
			return -1;
		snprintf(l->where, sizeof(l->where), "endpoint %s", name);
		e = st_load_agg_endpoint(a, name);
		if ((a->nep == before && e != &a->ep[a->max_endpoints]) ||
		    (e == &a->ep[a->max_endpoints] && (e->sent || e->answered || e->errors)))
			return st_json_rd_fail(l, "it is there twice");
		if (st_json_rd_u64(l, c, "sent", COUNT_MAX, &e->sent) ||
		    st_json_rd_u64(l, c, "answered", COUNT_MAX, &e->answered) ||
		    st_json_rd_u64(l, c, "errors", COUNT_MAX, &e->errors) ||
		    load_lat(l, st_json_rd_member(l, c, "latency_ms"), &e->lat, sig, ST_LOAD_SIG))
			return -1;
	}
	l->where[0] = 0;
	return 0;
}

static int load_timeline(struct st_json_rd *l, struct st_load_agg *a, int sig)
{
	uint32_t tl = st_json_rd_member(l, 0, "timeline"), arr = st_json_rd_member(l, tl,
										       "buckets");
	unsigned i = 0;

	if (!st_json_rd_is(l, tl, ST_JSON_OBJECT) || get_secs(l, tl, "bucket_s", &a->bucket_s))
		return st_json_rd_is(l, tl, ST_JSON_OBJECT) ? -1 :
			st_json_rd_fail(l, "\"timeline\" is missing or not an object");
	if (!(a->bucket_s > 0))
		return st_json_rd_fail(l, "\"bucket_s\" is 0");
	if (!st_json_rd_is(l, arr, ST_JSON_ARRAY) ||
	    st_json_rd_node(l, arr)->n > ST_LOAD_BUCKETS_MAX)
		return st_json_rd_fail(l, "\"buckets\" is missing or holds more than %d",
					 ST_LOAD_BUCKETS_MAX);
	for (uint32_t c = st_json_rd_child(l, arr); c; c = st_json_rd_next(l, c), i++) {
		struct st_load_bucket *b = &a->tl[i];

		snprintf(l->where, sizeof(l->where), "timeline bucket %u", i);
		if (!st_json_rd_is(l, c, ST_JSON_OBJECT))
			return st_json_rd_fail(l, "not an object");
		if (st_json_rd_u64(l, c, "due", COUNT_MAX, &b->due) ||
		    st_json_rd_u64(l, c, "sent", COUNT_MAX, &b->sent) ||
		    st_json_rd_u64(l, c, "answered", COUNT_MAX, &b->answered) ||
		    st_json_rd_u64(l, c, "errors", COUNT_MAX, &b->errors) ||
		    load_lat(l, st_json_rd_member(l, c, "latency_ms"), &b->lat, sig,
			     ST_LOAD_TIMELINE_SIG))
			return -1;
	}
	a->ntl = i;
	l->where[0] = 0;
	return 0;
}

static int load(struct st_json_rd *l, struct st_load_agg *a)
{
	uint32_t lay = st_json_rd_member(l, 0, "hdr_layout");
	char fmt[64], pace[32], unit[8];
	uint64_t v, lowest, highest, sig, tsig;

	if (st_json_rd_node(l, 0)->type != ST_JSON_OBJECT || !st_json_rd_member(l, 0, "format"))
		return st_json_rd_fail(l, "not a shadowtap load report (no \"format\" key)");
	if (st_json_rd_str(l, 0, "format", fmt, sizeof(fmt)) ||
	    strcmp(fmt, ST_LOAD_REPORT_FORMAT))
		return st_json_rd_fail(l, "not a shadowtap load report (\"format\" is not "
					 "\"%s\")", ST_LOAD_REPORT_FORMAT);
	if (st_json_rd_u64(l, 0, "format_version", 1000000, &v))
		return -1;
	if (v != ST_LOAD_REPORT_VERSION)
		return st_json_rd_fail(l, "a load report of format version %llu; this shadowtap "
					 "reads version %d", (unsigned long long)v,
					 ST_LOAD_REPORT_VERSION);
	/* the histograms' layout: any precision, our range */
	if (!st_json_rd_is(l, lay, ST_JSON_OBJECT))
		return st_json_rd_fail(l, "\"hdr_layout\" is missing");
	if (st_json_rd_str(l, lay, "unit", unit, sizeof(unit)) ||
	    st_json_rd_u64(l, lay, "lowest", UINT64_MAX, &lowest) ||
	    st_json_rd_u64(l, lay, "highest", UINT64_MAX, &highest) ||
	    st_json_rd_u64(l, lay, "significant_digits", ST_HDR_SIG_MAX, &sig) ||
	    st_json_rd_u64(l, lay, "timeline_significant_digits", ST_HDR_SIG_MAX, &tsig))
		return -1;
	if (strcmp(unit, "us") || lowest != 1 || highest != ST_LOAD_HIGHEST_US ||
	    sig < ST_HDR_SIG_MIN || tsig < ST_HDR_SIG_MIN)
		return st_json_rd_fail(l, "histograms of another layout (unit %s, %llu..%llu)",
					 unit, (unsigned long long)lowest, (unsigned long long)highest);
	if (st_json_rd_str(l, 0, "command", a->command, sizeof(a->command)) ||
	    st_json_rd_str(l, 0, "target", a->target, sizeof(a->target)) ||
	    st_json_rd_bool(l, 0, "final", &a->final) ||
	    st_json_rd_time(l, 0, "started", &a->start_real_ns) ||
	    st_json_rd_time(l, 0, "ended", &a->end_real_ns) ||
	    get_secs(l, 0, "elapsed_s", &a->elapsed_s) ||
	    get_secs(l, 0, "scheduled_s", &a->scheduled_s) ||
	    st_json_rd_u64(l, 0, "sources", SOURCES_MAX, &a->sources) ||
	    st_json_rd_str(l, 0, "pace", pace, sizeof(pace)) ||
	    st_json_rd_u64(l, 0, "connections", SOURCES_MAX, &v) ||
	    get_secs(l, 0, "timeout_s", &a->timeout_s) ||
	    get_secs(l, 0, "target_rps", &a->target_rps) ||
	    st_json_rd_u64(l, 0, "due", COUNT_MAX, &a->due) ||
	    st_json_rd_u64(l, 0, "sent", COUNT_MAX, &a->sent) ||
	    st_json_rd_u64(l, 0, "answered", COUNT_MAX, &a->answered) ||
	    st_json_rd_u64(l, 0, "late_sends", COUNT_MAX, &a->late_sends) ||
	    st_json_rd_u64(l, 0, "starved", COUNT_MAX, &a->starved) ||
	    load_errors(l, st_json_rd_member(l, 0, "errors"), a->errors))
		return -1;
	a->connections = (unsigned)v;
	if (!a->sources)
		return st_json_rd_fail(l, "\"sources\" is 0");
	if (a->end_real_ns < a->start_real_ns)
		return st_json_rd_fail(l, "\"ended\" is before \"started\"");
	if ((double)(a->end_real_ns - a->start_real_ns) / 1e9 > SECS_MAX)
		return st_json_rd_fail(l, "\"started\" and \"ended\" are more than %g s apart",
				       SECS_MAX);
	if (!strcmp(pace, "constant"))
		a->pace = ST_LOAD_PACE_CONSTANT;
	else if (!strcmp(pace, "recorded"))
		a->pace = ST_LOAD_PACE_RECORDED;
	else
		return st_json_rd_fail(l, "\"pace\" '%s' is not recorded or constant", pace);
	if (load_lat(l, st_json_rd_member(l, 0, "latency_ms"), &a->lat, (int)sig, ST_LOAD_SIG) ||
	    load_lat(l, st_json_rd_member(l, 0, "latency_raw_ms"), &a->lat_raw, (int)sig,
		     ST_LOAD_SIG) ||
	    load_lat(l, st_json_rd_member(l, 0, "lag_ms"), &a->lag, (int)sig, ST_LOAD_SIG) ||
	    load_steps(l, a, (int)sig) || load_endpoints(l, a, (int)sig) ||
	    load_timeline(l, a, (int)tsig))
		return -1;
	if (a->lat.total != a->answered)
		return st_json_rd_fail(l, "\"latency_ms\" holds %llu answers, \"answered\" "
					 "says %llu", (unsigned long long)a->lat.total,
					 (unsigned long long)a->answered);
	return 0;
}

bool st_load_merge_is_report(const char *buf, size_t len)
{
	struct st_json_doc d;
	struct st_json_rd l = { .d = &d };
	char err[8], fmt[64];
	bool is;

	l.err = err;
	l.errlen = sizeof(err);
	if (st_json_rd_parse(&d, buf, len, ST_LOAD_REPORT_FILE_MAX, 16, err, sizeof(err)))
		return false;
	is = st_json_rd_node(&l, 0)->type == ST_JSON_OBJECT &&
	     !st_json_rd_str(&l, 0, "format", fmt, sizeof(fmt)) &&
	     !strcmp(fmt, ST_LOAD_REPORT_FORMAT);
	st_json_doc_free(&d);
	return is;
}

int st_load_merge_parse(struct st_load_agg *a, const char *buf, size_t len, char *err,
			size_t errlen)
{
	struct st_json_doc d;
	struct st_json_rd l = { .d = &d, .err = err, .errlen = errlen };
	int rc;

	if (st_load_agg_init(a, 0)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* a report nests 6 deep */
	if (st_json_rd_parse(&d, buf, len, ST_LOAD_REPORT_FILE_MAX, 16, err, errlen)) {
		st_load_agg_free(a);
		return -1;
	}
	rc = load(&l, a);
	st_json_doc_free(&d);
	if (rc)
		st_load_agg_free(a);
	return rc;
}

int st_load_merge_read(struct st_load_agg *a, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = NULL;
	int rc;

	if (st_json_read_file(path, ST_LOAD_REPORT_FILE_MAX, &buf, &len, err, errlen))
		return -1;
	rc = st_load_merge_parse(a, buf, len, err, errlen);
	free(buf);
	return rc;
}

/* ---- merging ------------------------------------------------------------------------------ */

/* d += s (d made first if need be). 0, -ENOMEM, or -EOVERFLOW: more samples than a report
 * holds. */
static int hdr_merge(struct st_hdr *d, const struct st_hdr *s, int sig)
{
	if (!s->counts || !s->total)
		return 0;
	if (d->counts && s->total > COUNT_MAX - d->total)
		return -EOVERFLOW;
	if (st_load_hdr_ready(d, sig))
		return -ENOMEM;
	return st_hdr_add(d, s);
}

/* *d += v within max (sources, connections): false when it would pass it. */
static bool add_within(uint64_t *d, uint64_t v, uint64_t max)
{
	if (*d > max || v > max - *d)
		return false;
	*d += v;
	return true;
}

static void same_or_several(char *dst, size_t cap, const char *src)
{
	if (strcmp(dst, src))
		snprintf(dst, cap, "%s", SEVERAL);
}

/* Timeline: d's buckets as wide as s's at least; each of s's into the one of its time. 0,
 * -ENOMEM or -EOVERFLOW. */
static int timeline_merge(struct st_load_agg *d, const struct st_load_agg *s)
{
	int rc;

	while (d->bucket_s < s->bucket_s)
		st_load_agg_widen(d);
	for (unsigned i = 0; i < s->ntl; i++) {
		unsigned j = (unsigned)floor(i * s->bucket_s / d->bucket_s);
		struct st_load_bucket *b;

		if (j >= ST_LOAD_BUCKETS_MAX)
			j = ST_LOAD_BUCKETS_MAX - 1; /* a longer run with narrower buckets: its tail */
		b = &d->tl[j];
		if (!st_cmp_count_add(&b->due, s->tl[i].due) ||
		    !st_cmp_count_add(&b->sent, s->tl[i].sent) ||
		    !st_cmp_count_add(&b->answered, s->tl[i].answered) ||
		    !st_cmp_count_add(&b->errors, s->tl[i].errors))
			return -EOVERFLOW;
		if ((rc = hdr_merge(&b->lat, &s->tl[i].lat, ST_LOAD_TIMELINE_SIG)))
			return rc;
		if (j + 1 > d->ntl)
			d->ntl = j + 1;
	}
	return 0;
}

int st_load_agg_merge(struct st_load_agg *d, const struct st_load_agg *s, char *err,
		      size_t errlen)
{
	bool first = !d->sources, ok = true;
	uint64_t start, end, conns = d->connections;
	int rc;

	if (first) {
		snprintf(d->command, sizeof(d->command), "%s", s->command);
		snprintf(d->target, sizeof(d->target), "%s", s->target);
		d->pace = s->pace;
		d->nsteps = s->nsteps;
		d->step_s = s->step_s;
		d->bucket_s = s->bucket_s;
		d->sources = 0;
		d->final = true;
		d->start_real_ns = s->start_real_ns;
		d->end_real_ns = s->end_real_ns;
	} else {
		if (d->nsteps != s->nsteps || (d->nsteps && d->step_s != s->step_s)) {
			snprintf(err, errlen, "another step plan (%u steps of %g s, against %u of %g s)",
				 s->nsteps, s->step_s, d->nsteps, d->step_s);
			return -1;
		}
		if (d->pace != s->pace) {
			snprintf(err, errlen, "another pacing (%s, against %s)", st_load_report_pace_name(s->pace),
				 st_load_report_pace_name(d->pace));
			return -1;
		}
		same_or_several(d->command, sizeof(d->command), s->command);
		same_or_several(d->target, sizeof(d->target), s->target);
	}
	start = d->start_real_ns < s->start_real_ns ? d->start_real_ns : s->start_real_ns;
	end = d->end_real_ns > s->end_real_ns ? d->end_real_ns : s->end_real_ns;
	d->start_real_ns = start;
	d->end_real_ns = end;
	/* side by side: all the answers over the span of the runs */
	d->elapsed_s = (double)(end - start) / 1e9;
	if (s->elapsed_s > d->elapsed_s)
		d->elapsed_s = s->elapsed_s;
	if (s->scheduled_s > d->scheduled_s)
		d->scheduled_s = s->scheduled_s;
	if (s->timeout_s > d->timeout_s)
		d->timeout_s = s->timeout_s;
	d->final = d->final && s->final;
	/* every sum stays within what a report holds (it can be merged again), or the merge is
	 * refused: never wrapped, nor saturated into a figure that is not true */
	ok &= add_within(&d->sources, s->sources, SOURCES_MAX);
	ok &= add_within(&conns, s->connections, SOURCES_MAX);
	d->connections = (unsigned)conns;
	d->target_rps += s->target_rps;
	ok &= st_cmp_count_add(&d->due, s->due) && st_cmp_count_add(&d->sent, s->sent) &&
	      st_cmp_count_add(&d->answered, s->answered) &&
	      st_cmp_count_add(&d->late_sends, s->late_sends) &&
	      st_cmp_count_add(&d->starved, s->starved);
	for (int i = 0; i < ST_LOAD_E__COUNT; i++)
		ok &= st_cmp_count_add(&d->errors[i], s->errors[i]);
	/* and what is read back as seconds or a rate: the span of the runs (one that ended in
	 * 2501 beside one of today's, found by fuzz_load_report), the summed target rate */
	ok &= d->elapsed_s <= SECS_MAX && d->target_rps <= SECS_MAX;
	if (!ok)
		goto over;
	if ((rc = hdr_merge(&d->lat, &s->lat, ST_LOAD_SIG)) ||
	    (rc = hdr_merge(&d->lat_raw, &s->lat_raw, ST_LOAD_SIG)) ||
	    (rc = hdr_merge(&d->lag, &s->lag, ST_LOAD_SIG)))
		goto fail;
	for (unsigned i = 0; i < s->nsteps; i++) {
		struct st_load_step *x = &d->steps[i];
		const struct st_load_step *y = &s->steps[i];

		x->rps += y->rps;
		ok &= st_cmp_count_add(&x->due, y->due) && st_cmp_count_add(&x->sent, y->sent) &&
		      st_cmp_count_add(&x->answered, y->answered) &&
		      st_cmp_count_add(&x->answered_in, y->answered_in) &&
		      st_cmp_count_add(&x->errors, y->errors);
		if (!ok)
			goto over;
		if ((rc = hdr_merge(&x->lat, &y->lat, ST_LOAD_SIG)))
			goto fail;
	}
	for (unsigned i = 0; i <= s->max_endpoints; i++) {
		const struct st_load_endpoint *y = &s->ep[i];
		struct st_load_endpoint *x;

		if (i >= s->nep && i < s->max_endpoints)
			continue;
		x = st_load_agg_endpoint(d, y->name);
		if (!st_cmp_count_add(&x->sent, y->sent) ||
		    !st_cmp_count_add(&x->answered, y->answered) ||
		    !st_cmp_count_add(&x->errors, y->errors))
			goto over;
		if ((rc = hdr_merge(&x->lat, &y->lat, ST_LOAD_SIG)))
			goto fail;
	}
	if ((rc = timeline_merge(d, s)))
		goto fail;
	return 0;
fail:
	if (rc == -EOVERFLOW)
		goto over;
	snprintf(err, errlen, "out of memory");
	return -1;
over:
	snprintf(err, errlen, "the merged report would pass what a report holds (counts %llu; "
		 "sources and connections %llu; seconds and rates %g)", (unsigned long long)COUNT_MAX,
		 (unsigned long long)SOURCES_MAX, SECS_MAX);
	return -1;
}
