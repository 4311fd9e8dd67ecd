/* SPDX-License-Identifier: GPL-2.0-only */
/* A load test's schedule and measurement (load.h, docs/LOAD.md). */
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "loop.h"
#include "progress.h"
#include "redact.h"

#define TAG_CACHE 1024   /* request target -> endpoint, direct-mapped */
#define TAG_KEY_MAX 112  /* "METHOD target" cached up to this long */

static const char *const err_names[ST_LOAD_E__COUNT] = {
	[ST_LOAD_E_CONNECT_REFUSED] = "connect_refused",
	[ST_LOAD_E_CONNECT_FAILED] = "connect_failed",
	[ST_LOAD_E_RESET] = "reset",
	[ST_LOAD_E_TIMEOUT] = "timeout",
	[ST_LOAD_E_HTTP_5XX] = "http_5xx",
	[ST_LOAD_E_MALFORMED] = "malformed",
	[ST_LOAD_E_DROPPED] = "dropped",
};

const char *st_load_err_name(enum st_load_err e)
{
	return e < ST_LOAD_E__COUNT ? err_names[e] : "?";
}

/* ---- the aggregate ------------------------------------------------------------------------ */

int st_load_agg_init(struct st_load_agg *a, unsigned max_endpoints)
{
	memset(a, 0, sizeof(*a));
	a->max_endpoints = max_endpoints ? max_endpoints : ST_CMP_ENDPOINTS_DEFAULT;
	a->sources = 1;
	a->bucket_s = 1;
	a->ep = calloc(a->max_endpoints + 1, sizeof(*a->ep));
	a->tl = calloc(ST_LOAD_BUCKETS_MAX, sizeof(*a->tl));
	if (!a->ep || !a->tl || st_hdr_init(&a->lat, 1, ST_LOAD_HIGHEST_US, ST_LOAD_SIG) ||
	    st_hdr_init(&a->lat_raw, 1, ST_LOAD_HIGHEST_US, ST_LOAD_SIG) ||
	    st_hdr_init(&a->lag, 1, ST_LOAD_HIGHEST_US, ST_LOAD_SIG)) {
		st_load_agg_free(a);
		return -ENOMEM;
	}
	snprintf(a->ep[a->max_endpoints].name, sizeof(a->ep[0].name), "other");
	return 0;
}

void st_load_agg_free(struct st_load_agg *a)
{
	st_hdr_free(&a->lat);
	st_hdr_free(&a->lat_raw);
	st_hdr_free(&a->lag);
	for (unsigned i = 0; i < ST_LOAD_STEPS_MAX; i++)
		st_hdr_free(&a->steps[i].lat);
	if (a->ep)
		for (unsigned i = 0; i <= a->max_endpoints; i++)
			st_hdr_free(&a->ep[i].lat);
	if (a->tl)
		for (unsigned i = 0; i < ST_LOAD_BUCKETS_MAX; i++)
			st_hdr_free(&a->tl[i].lat);
	free(a->ep);
	free(a->tl);
	memset(a, 0, sizeof(*a));
}

uint64_t st_load_agg_errors(const struct st_load_agg *a)
{
	uint64_t n = 0;

	for (int i = 0; i < ST_LOAD_E__COUNT; i++)
		n += a->errors[i];
	return n;
}

double st_load_agg_achieved(const struct st_load_agg *a)
{
	return a->elapsed_s > 0 ? (double)a->answered / a->elapsed_s : 0;
}

double st_load_ms(const struct st_hdr *h, double p)
{
	if (!h->counts || !h->total)
		return 0;
	return (double)st_hdr_percentile(h, p) / 1e3;
}

int st_load_hdr_ready(struct st_hdr *h, int sig)
{
	return h->counts ? 0 : st_hdr_init(h, 1, ST_LOAD_HIGHEST_US, sig);
}

int st_load_hdr_record(struct st_hdr *h, int sig, uint64_t v_us, uint64_t n)
{
	int err = st_load_hdr_ready(h, sig);

	if (!err)
		st_hdr_record_n(h, v_us, n);
	return err;
}

struct st_load_endpoint *st_load_agg_endpoint(struct st_load_agg *a, const char *name)
{
	uint64_t h = st_fnv1a(ST_FNV1A_INIT, name, strlen(name));
	struct st_load_endpoint *e;

	for (unsigned i = 0; i < a->nep; i++)
		if (a->ep[i].hash == h && !strcmp(a->ep[i].name, name))
			return &a->ep[i];
	if (!strcmp(name, "other") || a->nep >= a->max_endpoints)
		return &a->ep[a->max_endpoints];
	e = &a->ep[a->nep++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->hash = h;
	return e;
}

/* ---- the run ---------------------------------------------------------------------------- */

struct tag_ent {
	uint64_t h;
	uint32_t tag;
	uint16_t len;
	char key[TAG_KEY_MAX];
};

struct st_load {
	struct st_load_config cfg;
	struct st_load_agg agg;
	bool started, finished;
	bool complete;                /* nothing more can be due before the schedule's end */
	uint64_t start_mono;
	double end_s;                 /* D: the schedule's length, INFINITY for none */
	double scale;                 /* recorded pacing: positions per ns of capture time */
	unsigned pass;
	uint64_t shift;               /* the pass's capture times are this much later */
	uint64_t k;                   /* requests released (constant pacing's position) */
	uint64_t last_end;            /* the last answer or failure */
	uint64_t last_wake;           /* the last timer wake asked for */
	uint64_t output_errors;       /* report writes that failed */
	unsigned output_said;         /* bit k: report k's failure was said */
	struct tag_ent *cache;
};

/* C(t): requests due in [0, t) (seconds) at the profile's rate. */
static double sched_count(const struct st_load *l, double t)
{
	double r = l->cfg.ramp_s, rate = l->cfg.rate, c = 0;

	if (t <= 0)
		return 0;
	if (l->cfg.nsteps) {
		for (unsigned k = 0; k < l->cfg.nsteps; k++) {
			double a = k * l->cfg.step_s, b = a + l->cfg.step_s;

			if (t <= a)
				break;
			c += l->cfg.steps[k] * ((t < b ? t : b) - a);
		}
		return c;
	}
	if (r > 0 && t < r)
		return rate * t * t / (2 * r);
	return rate * (t - r / 2);
}

/* C^-1(p): when the profile has counted p requests (seconds); INFINITY: never. */
static double sched_time(const struct st_load *l, double p)
{
	double r = l->cfg.ramp_s, rate = l->cfg.rate, c = 0;

	if (p <= 0)
		return 0;
	if (l->cfg.nsteps) {
		for (unsigned k = 0; k < l->cfg.nsteps; k++) {
			double in = l->cfg.steps[k] * l->cfg.step_s;

			if (c + in >= p)
				return k * l->cfg.step_s + (p - c) / l->cfg.steps[k];
			c += in;
		}
		return INFINITY;
	}
	if (r > 0 && p < rate * r / 2)
		return sqrt(2 * r * p / rate);
	return p / rate + r / 2;
}

struct st_load *st_load__new(const struct st_load_config *cfg)
{
	struct st_load *l;

	if (!(cfg->rate > 0) && !cfg->nsteps) {
		errno = EINVAL;
		return NULL;
	}
	for (unsigned i = 0; i < cfg->nsteps; i++)
		if (!(cfg->steps[i] > 0) || !(cfg->step_s > 0) || cfg->nsteps > ST_LOAD_STEPS_MAX) {
			errno = EINVAL;
			return NULL;
		}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->cfg = *cfg;
	if (st_load_agg_init(&l->agg, cfg->max_endpoints)) {
		free(l);
		errno = ENOMEM;
		return NULL;
	}
	l->cache = calloc(TAG_CACHE, sizeof(*l->cache));
	if (!l->cache) {
		st_load__free(l);
		errno = ENOMEM;
		return NULL;
	}
	if (cfg->nsteps)
		l->end_s = cfg->nsteps * cfg->step_s;
	else if (cfg->duration_s > 0)
		l->end_s = cfg->duration_s;
	else if (!cfg->input_paced && cfg->rec_n)
		l->end_s = sched_time(l, (double)cfg->rec_n); /* one pass */
	else
		l->end_s = INFINITY;
	if (cfg->pace == ST_LOAD_PACE_RECORDED && cfg->rec_n > 1 && cfg->rec_t1 > cfg->rec_t0)
		l->scale = (double)(cfg->rec_n - 1) / (double)(cfg->rec_t1 - cfg->rec_t0);
	snprintf(l->agg.command, sizeof(l->agg.command), "%s", cfg->command ? cfg->command : "");
	snprintf(l->agg.target, sizeof(l->agg.target), "%s", cfg->target ? cfg->target : "");
	l->agg.pace = cfg->pace;
	l->agg.connections = cfg->connections;
	l->agg.timeout_s = cfg->timeout_s;
	l->agg.step_s = cfg->step_s;
	l->agg.nsteps = cfg->nsteps;
	l->agg.target_rps = cfg->rate;
	for (unsigned i = 0; i < cfg->nsteps; i++) {
		l->agg.steps[i].rps = cfg->steps[i];
		if (cfg->steps[i] > l->agg.target_rps)
			l->agg.target_rps = cfg->steps[i];
	}
	if (isfinite(l->end_s))
		l->agg.scheduled_s = l->end_s;
	return l;
}

void st_load__free(struct st_load *l)
{
	if (!l)
		return;
	st_load_agg_free(&l->agg);
	free(l->cache);
	free(l);
}

void st_load__start(struct st_load *l, uint64_t now_mono, uint64_t now_real)
{
	l->started = true;
	l->start_mono = now_mono;
	l->agg.start_real_ns = now_real;
}

void st_load__pass(struct st_load *l, unsigned k, uint64_t shift_ns)
{
	l->pass = k;
	l->shift = shift_ns;
}

uint64_t st_load__end(const struct st_load *l)
{
	if (!isfinite(l->end_s))
		return UINT64_MAX;
	return l->start_mono + (uint64_t)llround(l->end_s * 1e9);
}

uint64_t st_load__wake_at(struct st_load *l, uint64_t next, uint64_t now)
{
	if (!next)
		return 0;
	if (next > now && next < l->last_wake + ST_LOAD_WAKE_NS)
		next = l->last_wake + ST_LOAD_WAKE_NS;
	if (next > now)
		l->last_wake = next; /* the wake it asks for */
	return next;
}

/* The recorded position of a request captured at ts in this pass. */
static double recorded_pos(const struct st_load *l, uint64_t ts)
{
	double p = (double)(int64_t)(ts - l->shift - l->cfg.rec_t0) * l->scale;

	return (p > 0 ? p : 0) + (double)l->pass * (double)l->cfg.rec_n;
}

enum st_load_feed st_load__feed(struct st_load *l, uint64_t ts, uint64_t now, uint64_t *wake)
{
	double p, t, horizon = (double)(now - l->start_mono) / 1e9 +
			       (double)ST_LOAD_LOOKAHEAD_NS / 1e9;

	if (l->scale > 0)
		p = recorded_pos(l, ts) - (double)ST_LOAD_ARBITER_SLACK_NS * l->scale;
	else
		p = (double)l->k;
	t = sched_time(l, p);
	if (t >= l->end_s) {
		l->complete = true;
		return ST_LOAD_END;
	}
	if (t <= horizon)
		return ST_LOAD_FEED;
	*wake = l->start_mono + (uint64_t)llround((t - (double)ST_LOAD_LOOKAHEAD_NS / 1e9) * 1e9);
	return ST_LOAD_WAIT;
}

void st_load_agg_widen(struct st_load_agg *a)
{
	for (unsigned j = 0; j < ST_LOAD_BUCKETS_MAX / 2; j++) {
		struct st_load_bucket *x = &a->tl[2 * j], *y = &a->tl[2 * j + 1], m = *x;

		m.due += y->due;
		m.sent += y->sent;
		m.answered += y->answered;
		m.errors += y->errors;
		if (y->lat.counts && !m.lat.counts)
			m.lat = y->lat; /* taken over */
		else if (y->lat.counts && st_hdr_add(&m.lat, &y->lat) == 0)
			st_hdr_free(&y->lat);
		else if (y->lat.counts)
			st_hdr_free(&y->lat); /* cannot happen: a bucket holds < 2^64 samples */
		memset(x, 0, sizeof(*x));
		memset(y, 0, sizeof(*y));
		a->tl[j] = m;
	}
	a->bucket_s *= 2;
	a->ntl = (a->ntl + 1) / 2;
}

/* The bucket of mono time t; buckets get twice as wide when the run outgrows them. */
static struct st_load_bucket *bucket(struct st_load *l, uint64_t t)
{
	struct st_load_agg *a = &l->agg;
	double s = t > l->start_mono ? (double)(t - l->start_mono) / 1e9 : 0;

	while (s / a->bucket_s >= ST_LOAD_BUCKETS_MAX)
		st_load_agg_widen(a);
	if ((unsigned)(s / a->bucket_s) + 1 > a->ntl)
		a->ntl = (unsigned)(s / a->bucket_s) + 1;
	return &a->tl[(unsigned)(s / a->bucket_s)];
}

/* The step a request due at t belongs to (the last one's after the end). */
static struct st_load_step *step_of(struct st_load *l, uint64_t t)
{
	double s = t > l->start_mono ? (double)(t - l->start_mono) / 1e9 : 0;
	unsigned i;

	if (!l->cfg.nsteps)
		return NULL;
	i = (unsigned)fmin(s / l->cfg.step_s, l->cfg.nsteps - 1);
	return &l->agg.steps[i];
}

/* ---- the engine's ops ------------------------------------------------------------------- */

/* The endpoint's name as tap compare makes it: from the target with its secrets (userinfo,
 * listed parameters' values) overwritten by the redaction policy (compare.c does the same
 * before naming). */
static void endpoint_name(const struct st_load *l, const struct st_http_head *h, char *name,
			  size_t cap)
{
	static const struct st_redact_rules dflt;
	char buf[2048], *t = h->target_len <= sizeof(buf) ? buf : malloc(h->target_len);
	size_t n = h->target_len;

	if (!t) {
		/* out of memory for a target over 2 KiB: its first 2 KiB, secrets overwritten too */
		t = buf;
		n = sizeof(buf);
	}
	memcpy(t, h->target, n);
	st_redact_url(l->cfg.redact ? l->cfg.redact : &dflt, h->target, n, (uint8_t *)t);
	st_cmp_endpoint(l->cfg.patterns, l->cfg.npatterns, h->method_str, h->method_len, t, n,
			name, cap);
	st_cmp_utf8_fix(name);
	if (t != buf)
		free(t);
}

static uint32_t op_tag(void *ctx, const struct st_http_head *h)
{
	struct st_load *l = ctx;
	char key[TAG_KEY_MAX], name[ST_CMP_ENDPOINT_MAX];
	size_t n = (size_t)h->method_len + 1 + h->target_len;
	struct tag_ent *c = NULL;
	uint64_t hash = 0;
	uint32_t tag;

	/* an endpoint's template costs a scan of the path: once per distinct target */
	if (n <= sizeof(key)) {
		memcpy(key, h->method_str, h->method_len);
		key[h->method_len] = ' ';
		memcpy(key + h->method_len + 1, h->target, h->target_len);
		hash = st_fnv1a(ST_FNV1A_INIT, key, n);
		c = &l->cache[st_mix64(hash) % TAG_CACHE];
		if (c->len == n && c->h == hash && !memcmp(c->key, key, n))
			return c->tag;
	}
	endpoint_name(l, h, name, sizeof(name));
	tag = (uint32_t)(st_load_agg_endpoint(&l->agg, name) - l->agg.ep);
	if (c) {
		c->h = hash;
		c->len = (uint16_t)n;
		c->tag = tag;
		memcpy(c->key, key, n);
	}
	return tag;
}

static uint64_t op_due(void *ctx, uint64_t ts, uint64_t now)
{
	struct st_load *l = ctx;
	double p, t;

	if (!l->started)
		st_load__start(l, now, st_loop_realtime_ns()); /* receive: from its first request */
	if (l->scale > 0) {
		p = recorded_pos(l, ts);
	} else {
		if (l->cfg.input_paced) {
			/* the stream had no request for the slots gone by: take the next one from now */
			double gone = ceil(sched_count(l, (double)(now - l->start_mono) / 1e9));

			if ((double)l->k < gone) {
				l->agg.starved += (uint64_t)gone - l->k;
				l->k = (uint64_t)gone;
			}
		}
		p = (double)l->k++;
	}
	t = sched_time(l, p);
	if (t >= l->end_s) {
		l->complete = true;
		return ST_SHADOW_NEVER;
	}
	return l->start_mono + (uint64_t)llround(t * 1e9);
}

static void count_due(struct st_load *l, uint64_t due)
{
	struct st_load_step *st = step_of(l, due);

	l->agg.due++;
	if (st)
		st->due++;
	bucket(l, due)->due++;
}

static void op_taken(void *ctx, unsigned slot, uint64_t due, uint64_t now)
{
	struct st_load *l = ctx;
	uint64_t lag = now > due ? now - due : 0;

	if (slot)
		return; /* the reference (tap compare) is not measured */
	count_due(l, due);
	st_hdr_record(&l->agg.lag, (lag + 500) / 1000);
	if (lag > ST_LOAD_LATE_NS)
		l->agg.late_sends++;
}

static enum st_load_err err_of(enum st_shadow_fail f)
{
	switch (f) {
	case ST_SHADOW_F_REFUSED: return ST_LOAD_E_CONNECT_REFUSED;
	case ST_SHADOW_F_CONNECT: return ST_LOAD_E_CONNECT_FAILED;
	case ST_SHADOW_F_TIMEOUT: return ST_LOAD_E_TIMEOUT;
	case ST_SHADOW_F_MALFORMED: return ST_LOAD_E_MALFORMED;
	case ST_SHADOW_F_DROPPED: return ST_LOAD_E_DROPPED;
	default: return ST_LOAD_E_RESET;
	}
}

static void op_done(void *ctx, const struct st_shadow_done *d)
{
	struct st_load *l = ctx;
	struct st_load_agg *a = &l->agg;
	struct st_load_step *st = step_of(l, d->due);
	struct st_load_endpoint *ep = &a->ep[d->tag < a->nep ? d->tag : a->max_endpoints];
	struct st_load_bucket *b;
	bool failed = d->fail != ST_SHADOW_ANSWERED;

	if (d->slot)
		return;
	if (d->fail == ST_SHADOW_F_DROPPED)
		count_due(l, d->due); /* never taken up */
	if (d->end > l->last_end)
		l->last_end = d->end;
	if (d->sent) {
		a->sent++;
		ep->sent++;
		if (st)
			st->sent++;
		bucket(l, d->sent)->sent++;
	}
	b = bucket(l, d->end);
	if (!failed) {
		uint64_t us = d->end > d->due ? (d->end - d->due + 500) / 1000 : 0;
		uint64_t raw = d->sent && d->end > d->sent ? (d->end - d->sent + 500) / 1000 : 0;
		struct st_load_step *in = step_of(l, d->end);

		a->answered++;
		b->answered++;
		st_hdr_record(&a->lat, us);
		st_hdr_record(&a->lat_raw, raw);
		/* out of memory for a lazily made histogram: that breakdown misses a sample */
		st_load_hdr_record(&ep->lat, ST_LOAD_SIG, us, 1);
		st_load_hdr_record(&b->lat, ST_LOAD_TIMELINE_SIG, us, 1);
		ep->answered++;
		if (st) {
			st->answered++;
			st_load_hdr_record(&st->lat, ST_LOAD_SIG, us, 1);
		}
		if (in && d->end < st_load__end(l))
			in->answered_in++;
		if (d->status < 500)
			return;
	}
	a->errors[failed ? err_of(d->fail) : ST_LOAD_E_HTTP_5XX]++;
	ep->errors++;
	b->errors++;
	if (st)
		st->errors++;
}

const struct st_shadow_load_ops st_load_ops = {
	.tag = op_tag,
	.due = op_due,
	.taken = op_taken,
	.done = op_done,
};

/* ---- results -------------------------------------------------------------------------- */

/* The run's time so far: from its start to the schedule's end or the last answer, whichever
 * came later, but no later than now unless the schedule is complete (a run that ends when
 * nothing more can be due, between the last due request and the schedule's end, ran at its
 * rate over the whole schedule: 10 requests at 5/s are 2 s, not 1.8). */
static void update_times(struct st_load *l, uint64_t now_mono, uint64_t now_real)
{
	uint64_t end = st_load__end(l), upto;

	if (!l->started)
		return;
	upto = end != UINT64_MAX && end > l->last_end ? end : l->last_end;
	if (!upto || (upto > now_mono && !(l->complete && end != UINT64_MAX)))
		upto = now_mono;
	l->agg.elapsed_s = upto > l->start_mono ? (double)(upto - l->start_mono) / 1e9 : 0;
	l->agg.end_real_ns = l->agg.start_real_ns + (upto - l->start_mono);
	if (!isfinite(l->end_s))
		l->agg.scheduled_s = l->agg.elapsed_s;
	(void)now_real;
}

void st_load__finish(struct st_load *l, uint64_t now_mono, uint64_t now_real)
{
	if (l->finished)
		return;
	update_times(l, now_mono, now_real);
	l->agg.final = true;
	l->finished = true;
}

const struct st_load_agg *st_load__agg(struct st_load *l, uint64_t now_mono, uint64_t now_real)
{
	if (!l->finished)
		update_times(l, now_mono, now_real);
	return &l->agg;
}

void st_load__stats(const struct st_load *l, struct st_load_stats *out)
{
	const struct st_load_agg *a = &l->agg;

	memset(out, 0, sizeof(*out));
	out->load_due = a->due;
	out->load_sent = a->sent;
	out->load_answered = a->answered;
	out->load_errors = st_load_agg_errors(a);
	out->load_connect_refused = a->errors[ST_LOAD_E_CONNECT_REFUSED];
	out->load_connect_failed = a->errors[ST_LOAD_E_CONNECT_FAILED];
	out->load_reset = a->errors[ST_LOAD_E_RESET];
	out->load_timeout = a->errors[ST_LOAD_E_TIMEOUT];
	out->load_http_5xx = a->errors[ST_LOAD_E_HTTP_5XX];
	out->load_malformed = a->errors[ST_LOAD_E_MALFORMED];
	out->load_dropped = a->errors[ST_LOAD_E_DROPPED];
	out->late_sends = a->late_sends;
	out->load_starved = a->starved;
	out->load_over_range = a->lat.over;
	out->load_output_errors = l->output_errors;
}

bool st_load__output_failed(struct st_load *l, unsigned which)
{
	bool first = !(l->output_said & (1u << which));

	l->output_errors++;
	l->output_said |= 1u << which;
	return first;
}

uint64_t st_load__output_errors(const struct st_load *l)
{
	return l ? l->output_errors : 0;
}

ST_STAT_TABLE_DEFINE(st_load_stat, struct st_load_stats, ST_LOAD_STATS);

void st_load__statline(struct st_load *l, struct st_statline *line)
{
	const struct st_load_agg *a = st_load__agg(l, st_loop_mono_ns(), st_loop_realtime_ns());
	struct st_load_stats st;

	st_load__stats(l, &st);
	st_statline_add_fixed(line, "achieved_rps", st_load_agg_achieved(a), 1, ST_STAT_GAUGE,
			      ST_STAT_UNIT_NONE, "load test: answers per second of the run");
	st_statline_add_fixed(line, "p99_ms", st_load_ms(&a->lat, 99), 3, ST_STAT_GAUGE,
			      ST_STAT_UNIT_MS,
			      "load test: 99th percentile latency from when requests were due");
	st_statline_add_table(line, st_load_stat_desc, st_load_stat_n, &st);
	st_statline_add_fixed(line, "worst_lag_ms", (double)a->lag.max / 1e3, 3, ST_STAT_GAUGE,
			      ST_STAT_UNIT_MS, "load test: the generator's worst lag behind its schedule");
}

void st_load__brief(const struct st_load *l, struct st_brief *b)
{
	struct st_load_stats st;

	st_load__stats(l, &st);
	st_brief_add(b, "due", st.load_due, ST_BRIEF_RATE);
	st_brief_add(b, "answered", st.load_answered, ST_BRIEF_RATE);
	st_brief_add(b, "failed", st.load_errors, 0);
	st_brief_add(b, "late", st.late_sends, 0);
}

void st_load__print_end(struct st_load *l, FILE *f)
{
	const struct st_load_agg *a = st_load__agg(l, st_loop_mono_ns(), st_loop_realtime_ns());
	uint64_t errs = st_load_agg_errors(a);
	bool first = true;

	fprintf(f, "shadowtap: load %.2f s: %" PRIu64 " answered of %" PRIu64 " due, %.1f/s "
		   "(target %g/s%s); latency p50 %.2f ms, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f "
		   "(from the send: p50 %.2f, p99 %.2f); errors %" PRIu64,
		a->elapsed_s, a->answered, a->due, st_load_agg_achieved(a), a->target_rps,
		a->nsteps ? " at the last step" : "", st_load_ms(&a->lat, 50), st_load_ms(&a->lat, 90),
		st_load_ms(&a->lat, 99), st_load_ms(&a->lat, 99.9), st_load_ms(&a->lat, 100),
		st_load_ms(&a->lat_raw, 50), st_load_ms(&a->lat_raw, 99), errs);
	for (int i = 0; i < ST_LOAD_E__COUNT; i++) {
		if (!a->errors[i])
			continue;
		fprintf(f, "%s%s %" PRIu64, first ? " (" : ", ", st_load_err_name((enum st_load_err)i),
			a->errors[i]);
		first = false;
	}
	fprintf(f, "%s; late sends %" PRIu64 " (worst lag %.2f ms)%s\n", first ? "" : ")",
		a->late_sends, (double)a->lag.max / 1e3,
		a->late_sends ? ": the generator fell behind its schedule" : "");
}
