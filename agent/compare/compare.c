/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare: pairs, their lifecycle, the worker (compare.h has the contract,
 * docs/COMPARE.md the rules).
 *
 * The engine's thread fills pairs; a pair whose last holder lets go goes to the
 * worker's queue (or is counted as not compared). The worker owns everything
 * after that: the comparison, the aggregate, the --diffs file and the reports.
 * The two share only the queue and the counters (one mutex) and the memory
 * count (atomic).
 */
#include "compare.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "output.h"
#include "protobuf.h"
#include "redact.h"
#include "compare_report.h"

/* The worker is woken when this many pairs wait, else it looks every WORKER_NAP_NS: a
 * wakeup per pair (a futex call each side, a context switch) cost the engine's thread more
 * than the copying it does. */
#define WORKER_WAKE_AT 256u
#define WORKER_NAP_NS (50ull * 1000000)

enum { SS_WAIT = 0, SS_HEAD, SS_DONE, SS_FAIL };
/* Every pair is on one list until its last holder lets go: live ones in creation order
 * (the oldest time out first), then expired ones (timed out, still held). */
enum { LIST_NONE = 0, LIST_LIVE, LIST_EXPIRED, LIST__COUNT };

struct pside {
	uint8_t state;            /* SS_* */
	uint8_t reason;           /* SS_FAIL: enum st_cmp_reason */
	uint16_t status;
	bool has_body;
	bool sent, first;         /* t_sent, t_first are set */
	char *hdrs;               /* "name\0value\0" each */
	uint32_t hdrs_len, nhdrs;
	char *trls;               /* HTTP/2 trailers, the same way */
	uint32_t trls_len, ntrls;
	char *corr;               /* --correlate: value pairs (compare_diff.h, st_cmp_msg) */
	uint32_t corr_len;
	uint8_t *body;
	uint32_t body_len, body_cap;
	uint64_t body_total;
	uint64_t rest_hash;
	uint64_t t_sent, t_first;
};

struct st_cmp_pair {
	struct st_compare *c;
	struct st_cmp_pair *prev, *next; /* its list: live (creation order) or expired */
	struct st_cmp_pair *qnext;       /* the worker's queue */
	uint64_t created;                /* the engine's clock */
	uint64_t mem;                    /* bytes counted against the cap */
	uint32_t refs;
	bool counted;                    /* released to the shadows */
	uint8_t list;                    /* LIST_* */
	bool dead;                       /* buffers freed (memory, timeout): only counted */
	bool settled;                    /* counted already (finish): just freed at the end */
	uint8_t reason;                  /* the first reason a side gave */
	/* the request: method NUL target NUL, header fields (name NUL value NUL), body bytes */
	char *req;
	uint32_t req_len, req_cap;
	uint32_t mlen, tlen, hoff, hlen, nh, boff, blen;
	uint64_t btotal;
	bool tcut, hcut;
	struct pside side[ST_CMP_NSIDES];
};

struct st_compare {
	struct st_compare_config cfg;
	struct st_protobuf_schema *schema; /* --proto-descriptor's (cfg.rules.schema) */
	uint64_t max_body;
	uint64_t start_real;
	/* engine thread */
	struct st_cmp_pair *head[LIST__COUNT], *tail[LIST__COUNT];
	bool finished;
	/* shared */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct st_cmp_pair *qhead, *qtail;
	uint32_t qlen;
	bool stop, thread;
	pthread_t th;
	struct st_compare_stats st;      /* under mu (gauges filled in by __stats) */
	_Atomic uint64_t mem, mem_peak, npairs;
	/* the worker (or the caller in sync mode); agg is changed under agg_mu, which the
	 * metrics (another thread) take to read it */
	pthread_mutex_t agg_mu;
	struct st_cmp_agg agg;
	struct st_cmp_view view[ST_CMP_NSIDES];
	struct st_cmp_msg msg[ST_CMP_NSIDES];
	struct st_cmp_scratch scratch;
	struct st_cmp_diffs *raw, *noise;
	struct st_output diffs;
	bool diffs_open;
	bool out_said[3];            /* an error of --diffs, --report, --report-json was said */
	uint64_t diffs_bytes;
	uint64_t last_report;            /* the last refresh (verdict, reports) */
	bool dirty;                      /* something changed since the last refresh */
	struct st_cmp_verdict verdict;   /* under mu: the aggregate's, at the last refresh */
};

static uint64_t now_ns(const struct st_compare *c)
{
	return c->cfg.clock ? c->cfg.clock(c->cfg.clock_ctx) : st_loop_mono_ns();
}

/* ---- counters ------------------------------------------------------------------------------- */

ST_STAT_TABLE_DEFINE(st_compare_stat, struct st_compare_stats, ST_COMPARE_STATS);

static void count_not_compared(struct st_compare *c, enum st_cmp_reason r)
{
	pthread_mutex_lock(&c->mu);
	c->st.not_compared++;
	switch (r) {
	case ST_CMP_R_PROD_GAP: c->st.not_compared_prod_gap++; break;
	case ST_CMP_R_PROD_UNANSWERED: c->st.not_compared_prod_unanswered++; break;
	case ST_CMP_R_PROD_UNFRAMED: c->st.not_compared_prod_unframed++; break;
	case ST_CMP_R_SHADOW_UNANSWERED: c->st.not_compared_shadow_unanswered++; break;
	case ST_CMP_R_SHADOW_DROPPED: c->st.not_compared_shadow_dropped++; break;
	case ST_CMP_R_TIMEOUT: c->st.not_compared_timeout++; break;
	case ST_CMP_R_MEMORY: c->st.not_compared_memory++; break;
	case ST_CMP_R_BACKLOG: c->st.not_compared_backlog++; break;
	case ST_CMP_R_UPGRADE: c->st.not_compared_upgrade++; break;
	default: break;
	}
	c->dirty = true;
	pthread_mutex_unlock(&c->mu);
}

uint64_t st_compare__output_errors(struct st_compare *c)
{
	uint64_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = c->st.output_errors;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void st_compare__stats(struct st_compare *c, struct st_compare_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	pthread_mutex_unlock(&c->mu);
	out->compare_pairs = atomic_load(&c->npairs);
	out->compare_mem = atomic_load(&c->mem);
	out->compare_mem_peak = atomic_load(&c->mem_peak);
}

/* ---- memory ---------------------------------------------------------------------------------- */

static void mem_give(struct st_compare *c, uint64_t n)
{
	atomic_fetch_sub(&c->mem, n);
}

static void pair_shed(struct st_cmp_pair *p, enum st_cmp_reason why);

/* Counts n more bytes for p; false (and p is shed) when the global cap would pass. */
static bool mem_take(struct st_cmp_pair *p, uint64_t n)
{
	struct st_compare *c = p->c;
	uint64_t now = atomic_fetch_add(&c->mem, n) + n, peak = atomic_load(&c->mem_peak);

	if (now > c->cfg.max_mem) {
		atomic_fetch_sub(&c->mem, n);
		pair_shed(p, ST_CMP_R_MEMORY);
		return false;
	}
	p->mem += n;
	while (now > peak && !atomic_compare_exchange_weak(&c->mem_peak, &peak, now))
		;
	return true;
}

static void side_free(struct st_compare *c, struct st_cmp_pair *p, struct pside *s)
{
	free(s->hdrs);
	free(s->trls);
	free(s->body);
	free(s->corr);
	s->corr = NULL;
	s->corr_len = 0;
	s->hdrs = s->trls = NULL;
	s->body = NULL;
	s->hdrs_len = s->nhdrs = s->trls_len = s->ntrls = s->body_len = s->body_cap = 0;
}

static bool terminal(const struct pside *s)
{
	return s->state == SS_DONE || s->state == SS_FAIL;
}

static int nsides(const struct st_compare *c)
{
	return c->cfg.reference ? ST_CMP_NSIDES : ST_CMP_REF;
}

static void fail_side(struct st_cmp_pair *p, int s, enum st_cmp_reason r)
{
	struct pside *ps = &p->side[s];

	if (terminal(ps))
		return;
	ps->state = SS_FAIL;
	ps->reason = (uint8_t)r;
	if (!p->reason)
		p->reason = (uint8_t)r;
}

/* The pair can no longer be compared (memory, timeout): everything but its skeleton and
 * request goes now; it is counted when its holders let go. */
static void pair_shed(struct st_cmp_pair *p, enum st_cmp_reason why)
{
	uint64_t keep = sizeof(*p) + p->req_cap;

	for (int s = 0; s < nsides(p->c); s++) {
		fail_side(p, s, why);
		side_free(p->c, p, &p->side[s]);
	}
	if (!p->reason)
		p->reason = (uint8_t)why;
	p->dead = true;
	if (p->mem > keep) {
		mem_give(p->c, p->mem - keep);
		p->mem = keep;
	}
}

/* ---- the live list ---------------------------------------------------------------------------- */

static void list_del(struct st_cmp_pair *p)
{
	struct st_compare *c = p->c;
	uint8_t l = p->list;

	if (l == LIST_NONE)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head[l] = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail[l] = p->prev;
	p->prev = p->next = NULL;
	p->list = LIST_NONE;
}

static void list_add(struct st_cmp_pair *p, uint8_t l)
{
	struct st_compare *c = p->c;

	list_del(p);
	p->prev = c->tail[l];
	p->next = NULL;
	if (c->tail[l])
		c->tail[l]->next = p;
	else
		c->head[l] = p;
	c->tail[l] = p;
	p->list = l;
}

static void pair_free(struct st_cmp_pair *p)
{
	struct st_compare *c = p->c;

	for (int s = 0; s < ST_CMP_NSIDES; s++)
		side_free(c, p, &p->side[s]);
	free(p->req);
	mem_give(c, p->mem);
	atomic_fetch_sub(&c->npairs, 1);
	free(p);
}

/* ---- the worker -------------------------------------------------------------------------------- */

static void endpoint_of(const struct st_compare *c, const struct st_cmp_pair *p, char *out)
{
	if (!p->req) {
		snprintf(out, ST_CMP_ENDPOINT_MAX, "other"); /* shed before its request was kept */
		return;
	}
	st_cmp_endpoint(c->cfg.patterns, c->cfg.npatterns, p->req, p->mlen, p->req + p->mlen + 1,
			p->tlen, out, ST_CMP_ENDPOINT_MAX);
}

static void msg_of(struct st_cmp_msg *m, const struct pside *s)
{
	memset(m, 0, sizeof(*m));
	m->status = s->status;
	m->has_body = s->has_body;
	m->hdrs = s->hdrs ? s->hdrs : "";
	m->hdrs_len = s->hdrs_len;
	m->nhdrs = s->nhdrs;
	m->trls = s->trls;
	m->trls_len = s->trls_len;
	m->ntrls = s->ntrls;
	m->corr = s->corr;
	m->corr_len = s->corr_len;
	m->body = s->body;
	m->body_len = s->body_len;
	m->body_total = s->body_total;
	m->rest_hash = s->rest_hash;
}

static int64_t latency(const struct pside *s)
{
	if (!s->sent || !s->first)
		return -1;
	return s->t_first >= s->t_sent ? (int64_t)(s->t_first - s->t_sent) : 0;
}

static void diff_json(FILE *f, const struct st_cmp_diff *d, const struct st_cmp_diffs *noise,
		      bool ref)
{
	const struct st_cmp_diff *nd = ref && noise ? st_cmp_diffs_find(noise, d->path) : NULL;

	fputs("{\"path\": ", f);
	st_cmp_json_str(f, d->path, strlen(d->path));
	fprintf(f, ", \"kind\": \"%s\", \"production\": ", st_cmp_kind_name((enum st_cmp_kind)d->kind));
	if (d->a_set)
		st_cmp_json_str(f, d->a, strlen(d->a));
	else
		fputs("null", f);
	fputs(", \"candidate\": ", f);
	if (d->b_set)
		st_cmp_json_str(f, d->b, strlen(d->b));
	else
		fputs("null", f);
	if (ref) {
		fputs(", \"reference\": ", f);
		if (nd && nd->b_set)
			st_cmp_json_str(f, nd->b, strlen(nd->b));
		else if (nd)
			fputs("null", f);
		else if (d->a_set)
			st_cmp_json_str(f, d->a, strlen(d->a)); /* as production */
		else
			fputs("null", f);
	}
	fprintf(f, ", \"count\": %u, \"noise\": %s", d->count, (ref ? nd != NULL : d->vol) ? "true" :
											     "false");
	if (d->note[0]) {
		fputs(", \"note\": ", f);
		st_cmp_json_str(f, d->note, strlen(d->note));
	}
	fputc('}', f);
}

/* The redaction policy of this run's outputs (redact.h; NULL in the config: the default set). */
static const struct st_redact_rules *policy(const struct st_compare *c)
{
	static const struct st_redact_rules dflt;

	return c->cfg.rules.redact ? c->cfg.rules.redact : &dflt;
}

/* An output's write failed (which: 0 --diffs, 1 --report, 2 --report-json): said the first
 * time for that output, counted every time (the run then exits 1). */
static void out_failed(struct st_compare *c, int which, const char *path, int err)
{
	pthread_mutex_lock(&c->mu);
	c->st.output_errors++;
	pthread_mutex_unlock(&c->mu);
	if (c->out_said[which])
		return;
	c->out_said[which] = true;
	pr_err("compare: %s: %s (counted in output_errors; the run will exit 1)", path,
	       st_output_strerror(err));
}

/* One --diffs line for a differing pair. Secrets were masked when the request was kept. */
static void write_diff_line(struct st_compare *c, const struct st_cmp_pair *p, const char *ep)
{
	bool ref = c->cfg.reference;
	char *buf = NULL, ts[40];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *h;

	if (!f)
		return;
	st_cmp_time_str(ts, sizeof(ts), p->side[ST_CMP_PROD].sent ? p->side[ST_CMP_PROD].t_sent :
								    st_loop_realtime_ns());
	fprintf(f, "{\"time\": \"%s\", \"endpoint\": ", ts);
	st_cmp_json_str(f, ep, strlen(ep));
	fputs(", \"method\": ", f);
	st_cmp_json_str(f, p->req, p->mlen);
	fputs(", \"target\": ", f);
	st_cmp_json_str(f, p->req + p->mlen + 1, p->tlen);
	fputs(", \"status\": {", f);
	for (int s = 0; s < nsides(c); s++)
		fprintf(f, "%s\"%s\": %u", s ? ", " : "", st_cmp_side_name((enum st_cmp_side)s),
			p->side[s].status);
	fputs("}, \"latency_ms\": {", f);
	for (int s = 0; s < nsides(c); s++) {
		int64_t l = latency(&p->side[s]);

		fprintf(f, "%s\"%s\": ", s ? ", " : "", st_cmp_side_name((enum st_cmp_side)s));
		if (l >= 0)
			fprintf(f, "%.3f", (double)l / 1e6);
		else
			fputs("null", f);
	}
	fputs("}, \"differences\": [", f);
	for (uint32_t i = 0; i < c->raw->n; i++) {
		fputs(i ? ", " : "", f);
		diff_json(f, &c->raw->d[i], c->noise, ref);
	}
	fprintf(f, "], \"more_differences\": %llu, \"request\": {\"method\": ",
		(unsigned long long)c->raw->more);
	st_cmp_json_str(f, p->req, p->mlen);
	fputs(", \"target\": ", f);
	st_cmp_json_str(f, p->req + p->mlen + 1, p->tlen);
	fprintf(f, ", \"target_truncated\": %s, \"headers\": [", p->tcut ? "true" : "false");
	h = p->req + p->hoff;
	for (uint32_t i = 0; i < p->nh; i++) {
		const char *v = h + strlen(h) + 1;

		fputs(i ? ", [" : "[", f);
		st_cmp_json_str(f, h, strlen(h));
		fputs(", ", f);
		st_cmp_json_str(f, v, strlen(v));
		fputc(']', f);
		h = v + strlen(v) + 1;
	}
	fprintf(f, "], \"headers_truncated\": %s, \"body\": ", p->hcut ? "true" : "false");
	/* the body's first bytes, as the policy shows bodies (JSON members, form parameters) */
	st_redact_text(policy(c), p->req + p->boff, p->blen);
	st_cmp_json_str(f, p->req + p->boff, p->blen);
	fprintf(f, ", \"body_bytes\": %llu}}\n", (unsigned long long)p->btotal);
	if (!fclose(f) && c->diffs.fd >= 0) {
		size_t off = 0;

		if (c->diffs_bytes + len > c->cfg.diffs_max) {
			/* a run that differs everywhere must not fill the disk: the report has it all */
			pthread_mutex_lock(&c->mu);
			c->st.diffs_dropped++;
			pthread_mutex_unlock(&c->mu);
			free(buf);
			return;
		}
		c->diffs_bytes += len;
		while (off < len) {
			ssize_t w = write(c->diffs.fd, buf + off, len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				/* a reader that went away, a full disk: the line is lost, and said */
				out_failed(c, 0, c->cfg.diffs, w < 0 ? -errno : -EIO);
				break;
			}
			off += (size_t)w;
		}
		if (off == len) {
			pthread_mutex_lock(&c->mu);
			c->st.diffs_written++;
			pthread_mutex_unlock(&c->mu);
		}
	}
	free(buf);
}

/* Compares one pair whose answers are all in (or counts one that was not compared). */
static void process(struct st_compare *c, struct st_cmp_pair *p)
{
	char ep[ST_CMP_ENDPOINT_MAX];
	struct st_cmp_result r = { 0 };
	enum st_cmp_pair_v v;
	bool ref = c->cfg.reference;

	endpoint_of(c, p, ep);
	if (p->reason) {
		pthread_mutex_lock(&c->agg_mu);
		st_cmp_agg_not_compared(&c->agg, ep);
		pthread_mutex_unlock(&c->agg_mu);
		pair_free(p);
		return;
	}
	for (int s = 0; s < nsides(c); s++) {
		msg_of(&c->msg[s], &p->side[s]);
		c->msg[s].path = p->req + p->mlen + 1;
		c->msg[s].path_len = p->tlen;
		st_cmp_view_load(&c->view[s], &c->cfg.rules, &c->msg[s]);
	}
	st_cmp_diff(&c->cfg.rules, &c->scratch, &c->view[ST_CMP_PROD], &c->view[ST_CMP_CAND], c->raw);
	if (ref)
		st_cmp_diff(&c->cfg.rules, &c->scratch, &c->view[ST_CMP_PROD], &c->view[ST_CMP_REF],
			    c->noise);
	r.method = p->req;
	r.mlen = p->mlen;
	r.target = p->req + p->mlen + 1;
	r.tlen = p->tlen;
	r.have_ref = ref;
	r.raw = c->raw;
	r.noise = ref ? c->noise : NULL;
	for (int s = 0; s < ST_CMP_NSIDES; s++) {
		r.status[s] = s < nsides(c) ? p->side[s].status : 0;
		r.lat_ns[s] = s < nsides(c) ? latency(&p->side[s]) : -1;
	}
	pthread_mutex_lock(&c->agg_mu);
	v = st_cmp_agg_add(&c->agg, ep, &r);
	pthread_mutex_unlock(&c->agg_mu);
	pthread_mutex_lock(&c->mu);
	c->st.compared++;
	c->st.differing += v == ST_CMP_DIFFERING;
	c->st.noise_only += v == ST_CMP_NOISE_ONLY;
	c->st.correlated += c->raw->correlated;
	c->st.compare_endpoints = c->agg.n;
	c->dirty = true;
	pthread_mutex_unlock(&c->mu);
	if (v == ST_CMP_DIFFERING && c->diffs_open)
		write_diff_line(c, p, ep);
	pair_free(p);
}

static void write_reports(struct st_compare *c, bool final)
{
	struct st_compare_stats st;
	struct st_statline l;
	struct st_cmp_run run = {
		.command = c->cfg.command, .candidate = c->cfg.candidate_name,
		.reference = c->cfg.reference ? c->cfg.reference_name : NULL,
		.start_real_ns = c->start_real, .now_real_ns = st_loop_realtime_ns(), .final = final,
		.counters = &l, .max_body = c->max_body, .timeout_s = c->cfg.timeout_s,
	};

	char host[ST_CMP_HOST_MAX] = "";
	const char *hosts[1] = { host };

	if (!c->cfg.report && !c->cfg.report_json)
		return;
	/* the capture host: a fleet's merged report names where its parts came from */
	if (!gethostname(host, sizeof(host) - 1) && host[0]) {
		st_cmp_utf8_fix(host);
		run.hosts = hosts;
		run.nhosts = 1;
	}
	st_compare__stats(c, &st);
	st.reports_written++;
	st_statline_init(&l);
	st_statline_add_table(&l, st_compare_stat_desc, st_compare_stat_n, &st);
	for (int k = 0; k < 2; k++) {
		const char *path = k ? c->cfg.report_json : c->cfg.report;
		char *buf = NULL;
		size_t len = 0;
		FILE *f;
		int err;

		if (!path)
			continue;
		f = open_memstream(&buf, &len);
		if (!f)
			continue;
		if (k)
			st_cmp_report_json(f, &c->agg, &run);
		else
			st_cmp_report_html(f, &c->agg, &run);
		err = fclose(f) ? -ENOMEM :
				  st_output_replace(path, buf, len, ST_OUT_NONBLOCK, c->cfg.out_mode);
		if (err)
			out_failed(c, 1 + k, path, err);
		free(buf);
	}
	pthread_mutex_lock(&c->mu);
	c->st.reports_written++;
	pthread_mutex_unlock(&c->mu);
}

/* The aggregate read again (the worker's, or the caller's in sync mode): the verdict the
 * metrics and the end line give, then the reports. Whether or not reports are written, this
 * is the periodic work done: nothing is due again before the next interval (without a
 * report the worker used to find it due at every turn, and spun). */
static void refresh(struct st_compare *c, bool final)
{
	struct st_cmp_verdict v;

	st_cmp_agg_verdict(&c->agg, &v);
	pthread_mutex_lock(&c->mu);
	c->verdict = v;
	c->st.compare_regressed_fields = v.regressions;
	c->st.compare_slower = v.slower;
	c->dirty = false;
	pthread_mutex_unlock(&c->mu);
	write_reports(c, final);
	c->last_report = now_ns(c);
}

void st_compare__verdict(struct st_compare *c, struct st_cmp_verdict *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->verdict;
	pthread_mutex_unlock(&c->mu);
}

static uint64_t report_every(const struct st_compare *c)
{
	return (uint64_t)((c->cfg.report_every_s > 0 ? c->cfg.report_every_s :
						      ST_CMP_REPORT_EVERY_DEFAULT) * 1e9);
}

static void *worker(void *arg)
{
	struct st_compare *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct st_cmp_pair *batch;
		bool due, stop;

		while (!c->qhead && !c->stop) {
			struct timespec ts;
			uint64_t at = c->last_report + report_every(c), now = now_ns(c);

			if (now >= at && c->dirty)
				break;
			/* the condition variable waits on CLOCK_REALTIME: a relative wait from it */
			clock_gettime(CLOCK_REALTIME, &ts);
			{
				uint64_t w = at > now ? at - now : 0;

				if (w > WORKER_NAP_NS)
					w = WORKER_NAP_NS; /* pairs are queued without a wakeup */
				if (w < 10000000ull)
					w = 10000000ull;
				w += (uint64_t)ts.tv_nsec;
				ts.tv_sec += (time_t)(w / 1000000000ull);
				ts.tv_nsec = (long)(w % 1000000000ull);
			}
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		}
		batch = c->qhead;
		c->qhead = c->qtail = NULL;
		c->qlen = 0;
		stop = c->stop;
		pthread_mutex_unlock(&c->mu);
		while (batch) {
			struct st_cmp_pair *p = batch;

			batch = p->qnext;
			process(c, p);
		}
		due = now_ns(c) - c->last_report >= report_every(c);
		pthread_mutex_lock(&c->mu);
		if (stop && !c->qhead)
			break;
		if (due && c->dirty) {
			pthread_mutex_unlock(&c->mu);
			refresh(c, false);
			pthread_mutex_lock(&c->mu);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void enqueue(struct st_compare *c, struct st_cmp_pair *p)
{
	if (!c->thread) {
		process(c, p);
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (c->qlen >= ST_CMP_QUEUE_MAX) {
		pthread_mutex_unlock(&c->mu);
		if (!p->reason)
			count_not_compared(c, ST_CMP_R_BACKLOG);
		pair_free(p);
		return;
	}
	p->qnext = NULL;
	if (c->qtail)
		c->qtail->qnext = p;
	else
		c->qhead = p;
	c->qtail = p;
	if (++c->qlen == WORKER_WAKE_AT)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* The last holder let go: compare it, count it, or forget it. */
static void pair_final(struct st_cmp_pair *p)
{
	struct st_compare *c = p->c;

	list_del(p);
	if (!p->counted || p->settled) {
		pair_free(p);
		return;
	}
	for (int s = 0; s < nsides(c) && !p->reason; s++)
		if (p->side[s].state != SS_DONE)
			fail_side(p, s, s == ST_CMP_PROD ? ST_CMP_R_PROD_UNANSWERED :
							 ST_CMP_R_SHADOW_UNANSWERED);
	if (p->reason) {
		count_not_compared(c, (enum st_cmp_reason)p->reason);
		pair_shed(p, (enum st_cmp_reason)p->reason);
		if (c->finished) {
			pair_free(p);
			return;
		}
	}
	enqueue(c, p); /* not compared ones too: their endpoint's count */
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

struct st_compare *st_compare__new(const struct st_compare_config *cfg)
{
	struct st_compare *c = calloc(1, sizeof(*c));
	struct st_cmp_agg_config ac = { 0 };
	int err = 0;

	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->diffs.fd = -1;
	if (!c->cfg.max_mem)
		c->cfg.max_mem = ST_CMP_MAX_MEM_DEFAULT;
	if (c->cfg.timeout_s <= 0)
		c->cfg.timeout_s = ST_CMP_TIMEOUT_DEFAULT;
	if (!c->cfg.diffs_max)
		c->cfg.diffs_max = ST_CMP_DIFFS_MAX_DEFAULT;
	c->max_body = c->cfg.rules.max_body ? c->cfg.rules.max_body : ST_CMP_MAX_BODY_DEFAULT;
	c->cfg.rules.max_body = (size_t)c->max_body;
	c->start_real = st_loop_realtime_ns();
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->agg_mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	ac.patterns = cfg->patterns;
	ac.npatterns = cfg->npatterns;
	ac.max_endpoints = cfg->max_endpoints;
	ac.reference = cfg->reference;
	ac.rel_pct = cfg->rel_pct;
	ac.abs_pct = cfg->abs_pct;
	ac.lat_min_ms = cfg->lat_min_ms;
	for (int s = 0; s < ST_CMP_NSIDES; s++)
		st_cmp_view_init(&c->view[s]);
	c->raw = calloc(1, sizeof(*c->raw));
	c->noise = calloc(1, sizeof(*c->noise));
	if (!c->raw || !c->noise || st_cmp_agg_init(&c->agg, &ac)) {
		err = ENOMEM;
		goto fail;
	}
	if (c->cfg.proto_descriptor) {
		char e[256];

		c->schema = st_protobuf_schema__load_file(c->cfg.proto_descriptor, e, sizeof(e));
		if (!c->schema) {
			pr_err("compare: --proto-%s", e);
			err = EINVAL;
			goto fail;
		}
		c->cfg.rules.schema = c->schema;
	}
	if (c->cfg.diffs) {
		int r = st_output_open(&c->diffs, c->cfg.diffs, ST_OUT_NONBLOCK, c->cfg.out_mode);

		if (r < 0 || (r = st_output_commit(&c->diffs)) < 0) {
			pr_err("compare: %s: %s", c->cfg.diffs, st_output_strerror(r));
			st_output_abort(&c->diffs);
			err = -r;
			goto fail;
		}
		c->diffs_open = true;
	}
	/* the reports exist from the start (and an unwritable path says so now) */
	for (int k = 0; k < 2; k++) {
		const char *path = k ? c->cfg.report_json : c->cfg.report;
		int r;

		if (!path)
			continue;
		r = st_output_replace(path, "", 0, ST_OUT_NONBLOCK, c->cfg.out_mode);
		if (r) {
			pr_err("compare: %s: %s", path, st_output_strerror(r));
			err = -r;
			goto fail;
		}
	}
	refresh(c, false);
	if (!c->cfg.sync) {
		sigset_t all, old;
		int r;

		/* signals go to the event loop's signalfd, never to the worker (a thread that
		 * took SIGINT with its default action would end the process, not the run) */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = pthread_create(&c->th, NULL, worker, c);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r) {
			err = r;
			goto fail;
		}
		c->thread = true;
	}
	return c;
fail:
	st_compare__free(c);
	errno = err ? err : ENOMEM;
	return NULL;
}

void st_compare__finish(struct st_compare *c)
{
	if (!c || c->finished)
		return;
	/* whatever is still held will not be answered now: counted, freed when let go */
	for (int l = LIST_LIVE; l < LIST__COUNT; l++) {
		while (c->head[l]) {
			struct st_cmp_pair *p = c->head[l];

			list_del(p);
			pair_shed(p, ST_CMP_R_TIMEOUT);
			if (p->counted)
				count_not_compared(c, (enum st_cmp_reason)p->reason);
			p->settled = true;
		}
	}
	c->finished = true;
	if (c->thread) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->th, NULL);
		c->thread = false;
	}
	refresh(c, true);
	if (c->diffs_open) {
		int r = st_output_close(&c->diffs);

		if (r)
			out_failed(c, 0, c->cfg.diffs, r);
		c->diffs_open = false;
	}
}

void st_compare__free(struct st_compare *c)
{
	if (!c)
		return;
	st_compare__finish(c);
	for (int s = 0; s < ST_CMP_NSIDES; s++)
		st_cmp_view_free(&c->view[s]);
	st_cmp_scratch_free(&c->scratch);
	st_cmp_agg_free(&c->agg);
	st_protobuf_schema__free(c->schema);
	free(c->raw);
	free(c->noise);
	if (c->diffs.fd >= 0)
		st_output_abort(&c->diffs);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->agg_mu);
	free(c);
}

bool st_compare__busy(struct st_compare *c)
{
	uint32_t q;

	pthread_mutex_lock(&c->mu);
	q = c->qlen;
	pthread_mutex_unlock(&c->mu);
	return q > ST_CMP_QUEUE_MAX / 2 || atomic_load(&c->mem) > c->cfg.max_mem / 2;
}

void st_compare__tick(struct st_compare *c)
{
	uint64_t now = now_ns(c), limit = (uint64_t)(c->cfg.timeout_s * 1e9);

	/* the oldest first: pairs are listed in creation order */
	while (c->head[LIST_LIVE] && now - c->head[LIST_LIVE]->created > limit) {
		struct st_cmp_pair *p = c->head[LIST_LIVE];

		pair_shed(p, ST_CMP_R_TIMEOUT);
		list_add(p, LIST_EXPIRED);
	}
	if (!c->thread && !c->finished && now - c->last_report >= report_every(c) && c->dirty)
		refresh(c, false);
}

void st_compare__report(struct st_compare *c)
{
	if (!c->thread)
		refresh(c, false);
}

const struct st_cmp_agg *st_compare__agg(const struct st_compare *c)
{
	return &c->agg;
}

void st_compare__series(struct st_compare *c, struct st_prom *p, const struct st_prom_labels *base)
{
	if (!c)
		return;
	/* the worker adds pairs meanwhile: it waits at most this long (bounded by the caps) */
	pthread_mutex_lock(&c->agg_mu);
	st_cmp_agg_prom(&c->agg, p, base);
	pthread_mutex_unlock(&c->agg_mu);
}

/* ---- pairs (the engine's thread) ---------------------------------------------------------------- */

static size_t put(char *dst, size_t o, const char *s, size_t n)
{
	memcpy(dst + o, s, n);
	dst[o + n] = 0;
	return o + n + 1;
}

struct st_cmp_pair *st_compare__pair_new(struct st_compare *c, const struct st_http_head *req)
{
	struct st_cmp_pair *p = calloc(1, sizeof(*p));
	size_t tl = req->target_len, need, o = 0, hb = 0;

	if (!p)
		return NULL;
	p->c = c;
	p->refs = 1;
	p->created = now_ns(c);
	atomic_fetch_add(&c->npairs, 1);
	for (int s = 0; s < ST_CMP_NSIDES; s++)
		p->side[s].rest_hash = st_cmp_hash_init();
	list_add(p, LIST_LIVE); /* for timeouts */
	if (!mem_take(p, sizeof(*p)))
		return p;
	/* the request, for --diffs: method, target, fields (secrets masked), first body bytes */
	if (tl > ST_CMP_REQ_TARGET_MAX) {
		tl = ST_CMP_REQ_TARGET_MAX;
		p->tcut = true;
	}
	for (uint32_t i = 0; i < req->nheaders; i++) {
		const struct st_http_header *h = &req->headers[i];
		size_t add = h->name_len + 2 +
			     (st_redact_header_listed(policy(c), h->name, h->name_len) ? 8 :
											  h->value_len);

		if (hb + add > ST_CMP_REQ_HEADERS_MAX) {
			p->hcut = true;
			break;
		}
		hb += add;
		p->nh++;
	}
	need = req->method_len + 1 + tl + 1 + hb + ST_CMP_REQ_BODY_MAX;
	if (!mem_take(p, need))
		return p;
	p->req = malloc(need);
	if (!p->req) {
		pair_shed(p, ST_CMP_R_MEMORY);
		return p;
	}
	p->req_cap = (uint32_t)need;
	p->mlen = req->method_len;
	o = put(p->req, o, req->method_str, req->method_len);
	p->tlen = (uint32_t)tl;
	o = put(p->req, o, req->target, tl);
	/* secrets never held: the target's (userinfo, listed parameters), listed fields' values */
	st_redact_url(policy(c), req->target, tl, (uint8_t *)p->req + o - tl - 1);
	p->hoff = (uint32_t)o;
	for (uint32_t i = 0; i < p->nh; i++) {
		const struct st_http_header *h = &req->headers[i];
		bool sec = st_redact_header_listed(policy(c), h->name, h->name_len);
		size_t v;

		o = put(p->req, o, h->name, h->name_len);
		v = o;
		o = sec ? put(p->req, o, "(masked)", 8) : put(p->req, o, h->value, h->value_len);
		if (!sec && h->name_len == 7 && !strncasecmp(h->name, "Referer", 7))
			st_redact_url(policy(c), h->value, h->value_len, (uint8_t *)p->req + v);
	}
	p->hlen = (uint32_t)o - p->hoff;
	p->boff = (uint32_t)o;
	p->req_len = (uint32_t)o;
	return p;
}

void st_compare__pair_req_body(struct st_cmp_pair *p, const void *data, size_t n)
{
	size_t keep;

	p->btotal += n;
	if (!p->req || p->blen >= ST_CMP_REQ_BODY_MAX)
		return;
	keep = ST_CMP_REQ_BODY_MAX - p->blen < n ? ST_CMP_REQ_BODY_MAX - p->blen : n;
	memcpy(p->req + p->boff + p->blen, data, keep);
	p->blen += (uint32_t)keep;
}

void st_compare__pair_req_done(struct st_cmp_pair *p, uint64_t ts)
{
	p->side[ST_CMP_PROD].t_sent = ts;
	p->side[ST_CMP_PROD].sent = true;
}

void st_compare__pair_count(struct st_cmp_pair *p)
{
	p->counted = true;
}

void st_compare__pair_get(struct st_cmp_pair *p)
{
	p->refs++;
}

void st_compare__pair_release(struct st_cmp_pair *p, int side, enum st_cmp_reason reason)
{
	if (side >= 0 && side < ST_CMP_NSIDES)
		fail_side(p, side, reason);
	if (--p->refs == 0)
		pair_final(p);
}

void st_compare__pair_sent(struct st_cmp_pair *p, enum st_cmp_side s, uint64_t ts)
{
	p->side[s].t_sent = ts;
	p->side[s].sent = true;
}

void st_compare__pair_head(struct st_cmp_pair *p, enum st_cmp_side s, const struct st_http_head *h,
			   uint64_t ts)
{
	struct pside *ps = &p->side[s];
	size_t need = 0, o = 0;

	if (p->dead || terminal(ps))
		return;
	ps->status = h->status;
	ps->has_body = h->body != ST_HTTP_BODY_NONE;
	ps->t_first = ts;
	ps->first = true;
	ps->state = SS_HEAD;
	if (h->flags & ST_HTTP_HF_UPGRADE) {
		fail_side(p, s, ST_CMP_R_UPGRADE);
		return;
	}
	for (uint32_t i = 0; i < h->nheaders; i++)
		need += h->headers[i].name_len + h->headers[i].value_len + 2;
	if (need) {
		if (!mem_take(p, need))
			return;
		ps->hdrs = malloc(need);
		if (!ps->hdrs) {
			pair_shed(p, ST_CMP_R_MEMORY);
			return;
		}
		for (uint32_t i = 0; i < h->nheaders; i++) {
			o = put(ps->hdrs, o, h->headers[i].name, h->headers[i].name_len);
			o = put(ps->hdrs, o, h->headers[i].value, h->headers[i].value_len);
		}
		ps->hdrs_len = (uint32_t)o;
		ps->nhdrs = h->nheaders;
	}
	/* a body of known length gets its buffer once */
	if (h->body == ST_HTTP_BODY_LENGTH && h->content_length) {
		uint64_t cap = h->content_length < p->c->max_body ? h->content_length : p->c->max_body;

		if (!mem_take(p, cap))
			return;
		ps->body = malloc((size_t)cap);
		if (!ps->body) {
			pair_shed(p, ST_CMP_R_MEMORY);
			return;
		}
		ps->body_cap = (uint32_t)cap;
	}
}

void st_compare__pair_trailers(struct st_cmp_pair *p, enum st_cmp_side s,
			       const struct st_http_header *f, uint32_t n)
{
	struct pside *ps = &p->side[s];
	size_t need = 0, o = 0;

	if (p->dead || ps->state != SS_HEAD || ps->trls || !n)
		return;
	for (uint32_t i = 0; i < n; i++)
		need += f[i].name_len + f[i].value_len + 2;
	if (!mem_take(p, need))
		return;
	ps->trls = malloc(need);
	if (!ps->trls) {
		pair_shed(p, ST_CMP_R_MEMORY);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		o = put(ps->trls, o, f[i].name, f[i].name_len);
		o = put(ps->trls, o, f[i].value, f[i].value_len);
	}
	ps->trls_len = (uint32_t)o;
	ps->ntrls = n;
}

#define CORR_MAX (16u * 1024) /* value pairs kept per side */

void st_compare__pair_correlated(struct st_cmp_pair *p, enum st_cmp_side s, const char *pv,
				 size_t pn, const char *tv, size_t tn)
{
	struct pside *ps = &p->side[s];
	size_t need = 4 + pn + tn;
	char *n;

	if (p->dead || (ps->state != SS_HEAD && ps->state != SS_DONE) || pn > UINT16_MAX ||
	    tn > UINT16_MAX ||
	    ps->corr_len + need > CORR_MAX || !mem_take(p, need))
		return;
	n = realloc(ps->corr, ps->corr_len + need);
	if (!n) {
		pair_shed(p, ST_CMP_R_MEMORY);
		return;
	}
	ps->corr = n;
	n += ps->corr_len;
	n[0] = (char)(pn & 0xff);
	n[1] = (char)(pn >> 8);
	n[2] = (char)(tn & 0xff);
	n[3] = (char)(tn >> 8);
	memcpy(n + 4, pv, pn);
	memcpy(n + 4 + pn, tv, tn);
	ps->corr_len += (uint32_t)need;
}

void st_compare__pair_body(struct st_cmp_pair *p, enum st_cmp_side s, const void *data, size_t n)
{
	struct pside *ps = &p->side[s];
	uint64_t room, keep;

	if (p->dead || ps->state != SS_HEAD || !n)
		return;
	ps->body_total += n;
	room = p->c->max_body - ps->body_len;
	keep = n < room ? n : room;
	if (keep) {
		if (ps->body_len + keep > ps->body_cap) {
			uint64_t ncap = ps->body_cap ? ps->body_cap : 4096;
			uint8_t *nb;

			while (ncap < ps->body_len + keep)
				ncap *= 2;
			if (ncap > p->c->max_body)
				ncap = p->c->max_body;
			if (!mem_take(p, ncap - ps->body_cap))
				return;
			nb = realloc(ps->body, (size_t)ncap);
			if (!nb) {
				pair_shed(p, ST_CMP_R_MEMORY);
				return;
			}
			ps->body = nb;
			ps->body_cap = (uint32_t)ncap;
		}
		memcpy(ps->body + ps->body_len, data, (size_t)keep);
		ps->body_len += (uint32_t)keep;
	}
	if (n > keep)
		ps->rest_hash = st_cmp_hash(ps->rest_hash, (const uint8_t *)data + keep, (size_t)(n - keep));
}

void st_compare__pair_done(struct st_cmp_pair *p, enum st_cmp_side s)
{
	struct pside *ps = &p->side[s];

	if (ps->state == SS_HEAD && !p->dead)
		ps->state = SS_DONE;
}

void st_compare__pair_fail(struct st_cmp_pair *p, enum st_cmp_side s, enum st_cmp_reason reason)
{
	fail_side(p, s, reason);
}

void st_compare__pair_reset(struct st_cmp_pair *p, enum st_cmp_side s)
{
	struct pside *ps = &p->side[s];

	if (p->dead || ps->state != SS_HEAD)
		return;
	if (ps->hdrs || ps->trls || ps->body || ps->corr) {
		uint64_t freed = ps->hdrs_len + ps->trls_len + ps->body_cap + ps->corr_len;

		side_free(p->c, p, ps);
		p->mem -= freed <= p->mem ? freed : p->mem;
		mem_give(p->c, freed);
	}
	ps->state = SS_WAIT;
	ps->first = false;
	ps->body_total = 0;
	ps->rest_hash = st_cmp_hash_init();
}

bool st_compare__pair_wants(const struct st_cmp_pair *p, enum st_cmp_side s)
{
	return !p->dead && p->side[s].state == SS_HEAD;
}
