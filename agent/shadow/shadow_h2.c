/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The captured side of HTTP/2 (shadow_int.h; docs/HTTP2.md has the rules).
 *
 * The framer (h2.h) follows both directions of a captured connection and hands
 * out stream events. Each stream the client opens is a request: selected (as an
 * HTTP/1 request is, on :method and :path), then staged whole as an h2msg (its
 * fields rewritten for the shadows, its body, its trailers) until both
 *  - its request is complete (END_STREAM from the client), and
 *  - production's own final response head for that stream is in the capture
 * (the arbiter, per stream; --release framed: the first alone). Then it goes to
 * the shadow connections (sh_deliver), whole. Streams are independent: one
 * still waiting (a long upload, a streaming call) holds back no other.
 *
 * Never released, each counted once: a stream production refused (a refusal
 * status, REFUSED_STREAM, above its GOAWAY's last stream id, a malformed
 * request), reset by either side before release, cut by the end of the
 * connection, dropped by the framer (a bound), or caught by a stop (joined
 * midway, a capture gap, a protocol error: the connection is no longer decoded
 * and nothing more of it is released).
 *
 * An HTTP/1.1 request offering h2c is set up as stream 1 of a framer kept aside
 * (cc_h2_offer) until production's answer says whether the connection switched
 * (a 101 accepting h2c: cc_h2_upgraded) or not (the offer is dropped).
 *
 * --correlate: a selected stream gets an exchange (correlate.h) that production's answer
 * (final head, DATA, end) fills and the targets' answers are learned against; a released
 * message is rewritten per target by h2msg_correlate (a message of its own when a value
 * changed), in shadow.c's h2_push, where it may wait for a value as an HTTP/1 request does.
 *
 * Memory: a staged message counts against the connection's stage cap
 * (cc_stage_fits: --conn-queue-mb) and the global one; a stream that does not
 * fit is dropped whole (dropped_queue). The stream table is bounded by the
 * framer's (max_streams).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grpc.h"
#include "log.h"
#include "shadow_int.h"

/* h2cs.f */
#define CS_REQ 0x01u       /* the request head came */
#define CS_REQ_END 0x02u   /* ... and its END_STREAM */
#define CS_ANSWER 0x04u    /* production's final response head */
#define CS_PROD_END 0x08u  /* ... and its end */
#define CS_OUT 0x10u       /* released, or never will be (fated) */
#define CS_HELD 0x20u      /* stream 1 of an h2c offer: waits for the switch */

enum fate { FATE_GAP = 0, FATE_REJECTED, FATE_UNANSWERED, FATE_RESET, FATE_REFUSED };

/* One stream of a captured HTTP/2 connection. */
struct h2cs {
	uint32_t id;
	uint32_t f;                  /* CS_* */
	uint8_t verdict;             /* V_NONE, V_RUN (production ran it), V_REJECT */
	bool pass;                   /* selected, within --rate and the caps */
	bool counted;                /* in requests (its head came) */
	bool staged;                 /* in the staged gauge: counted, not yet out */
	struct st_list_head node;    /* cap->order */
	struct h2msg *m;             /* pass: the request being staged */
	uint64_t mem;                /* what m counts in the stage */
	struct st_cmp_pair *pair;    /* tap compare: the stage's reference */
	struct st_cmp_pair *prod;    /* ... production's answer's reference */
	struct st_correlate_ex *ex;  /* --correlate: production's answer and the targets' (held
				      * until the stream is over) */
};

struct h2cap {
	struct st_h2 *fr;
	struct h2cs **tab;           /* open addressing on the stream id */
	uint32_t tcap, tn;
	struct st_list_head order;   /* streams in the order they opened */
	bool stopped;                /* nothing more is released */
	bool offer;                  /* an h2c offer, not switched yet */
	struct st_http_header *hdr;  /* scratch: fields as HTTP/1 heads carry them */
	uint32_t hdr_cap;
	bool offer_made;             /* ... and its stream 1 set up */
	bool offer_over;             /* its body did not fit the caps */
	struct st_bq offer_body;     /* the offering request's payload, until cc_h2_offer */
	uint64_t offer_mem;
};

/* ---- the stream table ---------------------------------------------------------------------- */

static uint32_t home(const struct h2cap *t, uint32_t id)
{
	return (id * 2654435761u) & (t->tcap - 1);
}

static struct h2cs *cs_find(const struct h2cap *t, uint32_t id)
{
	if (!t->tcap)
		return NULL;
	for (uint32_t i = home(t, id); t->tab[i]; i = (i + 1) & (t->tcap - 1))
		if (t->tab[i]->id == id)
			return t->tab[i];
	return NULL;
}

static void tab_put(struct h2cap *t, struct h2cs *s)
{
	uint32_t i = home(t, s->id);

	while (t->tab[i])
		i = (i + 1) & (t->tcap - 1);
	t->tab[i] = s;
}

static int tab_grow(struct h2cap *t)
{
	uint32_t ocap = t->tcap, ncap = ocap ? ocap * 2 : 16;
	struct h2cs **o = t->tab, **n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	t->tab = n;
	t->tcap = ncap;
	for (uint32_t i = 0; i < ocap; i++)
		if (o[i])
			tab_put(t, o[i]);
	free(o);
	return 0;
}

static struct h2cs *cs_add(struct h2cap *t, uint32_t id)
{
	struct h2cs *s;

	if ((t->tn + 1) * 2 > t->tcap && tab_grow(t))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	tab_put(t, s);
	t->tn++;
	st_list_add_tail(&s->node, &t->order);
	return s;
}

/* Removes s from the table (backward shift: no tombstones) and the order. */
static void tab_del(struct h2cap *t, struct h2cs *s)
{
	uint32_t m = t->tcap - 1, i = home(t, s->id), j, k;

	while (t->tab[i] != s)
		i = (i + 1) & m;
	t->tab[i] = NULL;
	j = i;
	for (k = (i + 1) & m; t->tab[k]; k = (k + 1) & m) {
		/* the entry at k may fill the hole at j when its home is not in (j, k] */
		if (((k - home(t, t->tab[k]->id)) & m) >= ((k - j) & m)) {
			t->tab[j] = t->tab[k];
			t->tab[k] = NULL;
			j = k;
		}
	}
	t->tn--;
	st_list_del_init(&s->node);
}

/* ---- a stream's fate ------------------------------------------------------------------------- */

static void cs_unstage(struct cconn *cc, struct h2cs *s)
{
	if (s->staged) {
		s->staged = false;
		cc->sh->st.staged--;
	}
	if (s->m) {
		cc_stage_add(cc, -(int64_t)s->mem);
		h2msg_put(s->m);
		s->m = NULL;
		s->mem = 0;
	}
	if (s->pair) {
		st_compare__pair_release(s->pair, -1, ST_CMP_R_NONE);
		s->pair = NULL;
	}
}

/* s is never released: counted once (when selected: a stream left out is counted already). */
static void cs_fate(struct cconn *cc, struct h2cs *s, enum fate why)
{
	struct st_shadow_stats *st = &cc->sh->st;

	if (s->f & CS_OUT)
		return;
	s->f |= CS_OUT;
	if (s->pass) {
		switch (why) {
		case FATE_GAP: st->gaps_skipped++; break;
		case FATE_REFUSED: st->h2_refused++; /* fall through */
		case FATE_REJECTED: st->prod_rejected++; break;
		case FATE_UNANSWERED: st->prod_unanswered++; break;
		case FATE_RESET: st->h2_reset++; break;
		}
	} else if (why == FATE_REFUSED) {
		st->h2_refused++;
	}
	cs_unstage(cc, s);
}

/* Production's answer will not come (why): its side of the pair ends. */
static void cs_prod_lost(struct h2cs *s, enum st_cmp_reason why)
{
	if (s->prod) {
		st_compare__pair_release(s->prod, ST_CMP_PROD, why);
		s->prod = NULL;
	}
}

/* The stream is over for the framer: it leaves the table. */
static void cs_free(struct cconn *cc, struct h2cs *s)
{
	st_correlate_ex_put(s->ex); /* production's answer not whole: not learned from */
	s->ex = NULL;
	cs_prod_lost(s, ST_CMP_R_PROD_UNANSWERED);
	cs_unstage(cc, s);
	tab_del(cc->h2, s);
	free(s);
}

static void cs_release(struct cconn *cc, struct h2cs *s)
{
	struct st_shadow *sh = cc->sh;

	s->f |= CS_OUT;
	if (s->pair) {
		/* released: its answers are compared, or counted as not compared */
		st_compare__pair_count(s->pair);
		if (!s->pass)
			for (unsigned k = 0; k < sh->nslots; k++)
				st_compare__pair_fail(s->pair, sc_side(k), ST_CMP_R_SHADOW_DROPPED);
	}
	if (s->pass) {
		struct sh_out o = { .m = s->m, .method = s->m->method, .pair = s->pair,
				    .ex = s->ex };

		sh_deliver(cc, &o);
	}
	cs_unstage(cc, s);
}

/* Whatever decided s: released, or never released, or not yet. */
static void cs_settle(struct cconn *cc, struct h2cs *s)
{
	/* (a verdict may come before the request's head: the capture does not order the two
	 * directions exactly) */
	if (s->f & (CS_OUT | CS_HELD) || !(s->f & CS_REQ) || cc->h2->stopped)
		return;
	if (s->verdict == V_REJECT) {
		cs_fate(cc, s, FATE_REJECTED);
		return;
	}
	if (!(s->f & CS_REQ_END) || (cc->arbiter && s->verdict != V_RUN))
		return;
	cs_release(cc, s);
}

/* ---- requests -------------------------------------------------------------------------------- */

static bool field_is(const struct st_h2_field *f, const char *lit)
{
	return f->name_len == strlen(lit) && !memcmp(f->name, lit, f->name_len);
}

/* Fields HTTP/2 forbids (RFC 9113 8.2.2): --set-header or --mark naming one is left out. */
static bool connection_specific(const char *n)
{
	return !strcasecmp(n, "connection") || !strcasecmp(n, "keep-alive") ||
	       !strcasecmp(n, "proxy-connection") || !strcasecmp(n, "transfer-encoding") ||
	       !strcasecmp(n, "upgrade") || !strcasecmp(n, "te");
}

struct mb {
	struct h2msg *m;
	char *a;          /* the arena's next byte */
};

static void put_nv(struct mb *b, const char *n, size_t nl, const char *v, size_t vl, bool lower,
		   uint32_t flags)
{
	nghttp2_nv *nv = &b->m->nv[b->m->nnv++];

	nv->name = (uint8_t *)b->a;
	for (size_t i = 0; i < nl; i++)
		b->a[i] = lower && n[i] >= 'A' && n[i] <= 'Z' ? (char)(n[i] + 32) : n[i];
	b->a += nl;
	nv->value = (uint8_t *)b->a;
	memcpy(b->a, v, vl);
	b->a += vl;
	nv->namelen = nl;
	nv->valuelen = vl;
	nv->flags = (flags & ST_H2_FF_NEVER_INDEX) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
}

/*
 * The request the shadows get: the captured fields in their order, --set-host as :authority
 * (and as a host field where there is one), --set-header and --mark replacing the first field
 * of their name (dropping the others) or added at the end, as for HTTP/1.
 */
static struct h2msg *msg_new(struct st_shadow *sh, const struct st_h2_head *h)
{
	const struct st_http_rewrite *rw = &sh->rw;
	bool done[ST_SHADOW_MAX_SET + 2] = { false }, authority = false;
	size_t nmax = h->nfields + rw->nset + 3, bytes = 0;
	struct mb b;
	long k;

	for (uint32_t i = 0; i < h->nfields; i++)
		bytes += h->fields[i].name_len + h->fields[i].value_len;
	for (size_t i = 0; i < rw->nset; i++)
		bytes += strlen(rw->set[i].name) + strlen(rw->set[i].value);
	if (rw->host)
		bytes += 2 * (strlen(rw->host) + 10);
	if (rw->marker_name)
		bytes += strlen(rw->marker_name) + strlen(rw->marker_value);
	b.m = calloc(1, sizeof(*b.m) + nmax * sizeof(nghttp2_nv) + bytes);
	if (!b.m)
		return NULL;
	b.m->refs = 1;
	b.m->nv = (nghttp2_nv *)(b.m + 1);
	b.a = (char *)(b.m->nv + nmax);
	b.m->mem = sizeof(*b.m) + nmax * sizeof(nghttp2_nv) + bytes;
	b.m->method = (uint8_t)(h->method ? st_http__method_from(h->method->value,
								 h->method->value_len) :
					     ST_HTTP_M_OTHER);
	b.m->grpc = st_grpc_is_grpc(h);
	/* pseudo-header fields first (RFC 9113 8.3) */
	for (uint32_t i = 0; i < h->nfields; i++) {
		const struct st_h2_field *f = &h->fields[i];

		if (!f->name_len || f->name[0] != ':')
			continue;
		if (rw->host && field_is(f, ":authority")) {
			if (!authority)
				put_nv(&b, ":authority", 10, rw->host, strlen(rw->host), false, 0);
			authority = true;
			continue;
		}
		put_nv(&b, f->name, f->name_len, f->value, f->value_len, false, f->flags);
	}
	if (rw->host && !authority)
		put_nv(&b, ":authority", 10, rw->host, strlen(rw->host), false, 0);
	for (uint32_t i = 0; i < h->nfields; i++) {
		const struct st_h2_field *f = &h->fields[i];
		const char *n, *v;

		if (f->name_len && f->name[0] == ':')
			continue;
		k = st_http_rewrite_match(rw, f->name, f->name_len);
		if (k < 0) {
			put_nv(&b, f->name, f->name_len, f->value, f->value_len, false, f->flags);
			continue;
		}
		if (done[k])
			continue;
		done[k] = true;
		st_http_rewrite_value(rw, k, &n, &v);
		put_nv(&b, f->name, f->name_len, v, strlen(v), false, 0);
	}
	for (k = 0; k < (long)rw->nset + 2; k++) {
		const char *n, *v;

		/* the Host is :authority */
		if (done[k] || (size_t)k == rw->nset || ((size_t)k > rw->nset && !rw->marker_name))
			continue;
		st_http_rewrite_value(rw, k, &n, &v);
		/* a name given twice: the first wins */
		if (st_http_rewrite_match(rw, n, strlen(n)) != k || connection_specific(n))
			continue;
		put_nv(&b, n, strlen(n), v, strlen(v), true, 0);
	}
	return b.m;
}

/* The trailers, in a block of their own. 0 or -ENOMEM. */
static int msg_trailers(struct h2msg *m, const struct st_h2_head *h)
{
	size_t bytes = 0;
	struct mb b = { .m = m };
	uint32_t n = 0;
	nghttp2_nv *tr;

	if (m->tr)
		return 0; /* a second block cannot end a stream twice: the framer gives one */
	for (uint32_t i = 0; i < h->nfields; i++)
		bytes += h->fields[i].name_len + h->fields[i].value_len;
	tr = malloc(h->nfields * sizeof(nghttp2_nv) + bytes + 1);
	if (!tr)
		return -ENOMEM;
	/* put_nv appends at m->nv[m->nnv]: point it at the trailers for the time being */
	{
		nghttp2_nv *nv = m->nv;
		uint32_t nnv = m->nnv;

		m->nv = tr;
		m->nnv = 0;
		b.a = (char *)(tr + h->nfields);
		for (uint32_t i = 0; i < h->nfields; i++)
			put_nv(&b, h->fields[i].name, h->fields[i].name_len, h->fields[i].value,
			       h->fields[i].value_len, false, h->fields[i].flags);
		n = m->nnv;
		m->nv = nv;
		m->nnv = nnv;
	}
	m->tr = tr;
	m->ntr = n;
	m->mem += h->nfields * sizeof(nghttp2_nv) + bytes + 1;
	return 0;
}

/* ---- --correlate: a message rewritten for one target ------------------------------------- */

/* m's fields as the rewriter takes them (sh->corfields), its body in one piece (sh->corbuf,
 * *blen). 0 or -ENOMEM. */
static int msg_flat(struct st_shadow *sh, const struct h2msg *m, size_t *blen)
{
	if (m->nnv > sh->corfields_cap) {
		struct st_h2_field *f = realloc(sh->corfields, m->nnv * sizeof(*f));

		if (!f)
			return -ENOMEM;
		sh->corfields = f;
		sh->corfields_cap = m->nnv;
	}
	for (uint32_t i = 0; i < m->nnv; i++)
		sh->corfields[i] = (struct st_h2_field){
			.name = (const char *)m->nv[i].name, .name_len = (uint32_t)m->nv[i].namelen,
			.value = (const char *)m->nv[i].value,
			.value_len = (uint32_t)m->nv[i].valuelen,
			.flags = (m->nv[i].flags & NGHTTP2_NV_FLAG_NO_INDEX) ? ST_H2_FF_NEVER_INDEX : 0,
		};
	if (sh_cor_flat(sh, &m->body, 0, m->body.end))
		return -ENOMEM;
	*blen = (size_t)m->body.end;
	return 0;
}

/* A copy of a block of fields (trailers), in one allocation: *mem grows by it. */
static nghttp2_nv *nv_copy(const nghttp2_nv *src, uint32_t n, uint64_t *mem)
{
	size_t bytes = 0;
	nghttp2_nv *nv;
	uint8_t *a;

	for (uint32_t i = 0; i < n; i++)
		bytes += src[i].namelen + src[i].valuelen;
	nv = malloc(n * sizeof(*nv) + bytes + 1);
	if (!nv)
		return NULL;
	a = (uint8_t *)(nv + n);
	for (uint32_t i = 0; i < n; i++) {
		nv[i] = src[i];
		nv[i].name = a;
		memcpy(a, src[i].name, src[i].namelen);
		a += src[i].namelen;
		nv[i].value = a;
		memcpy(a, src[i].value, src[i].valuelen);
		a += src[i].valuelen;
	}
	*mem += n * sizeof(*nv) + bytes + 1;
	return nv;
}

/* A message from the rewriter's output: its fields and body, m's method and trailers. */
static struct h2msg *msg_rewritten(const struct h2msg *m, const struct st_correlate_h2out *o)
{
	size_t bytes = 0;
	struct mb b;
	uint64_t cost;

	for (uint32_t i = 0; i < o->nfields; i++)
		bytes += o->fields[i].name_len + o->fields[i].value_len;
	b.m = calloc(1, sizeof(*b.m) + o->nfields * sizeof(nghttp2_nv) + bytes);
	if (!b.m)
		return NULL;
	b.m->refs = 1;
	b.m->nv = (nghttp2_nv *)(b.m + 1);
	b.a = (char *)(b.m->nv + o->nfields);
	b.m->mem = sizeof(*b.m) + o->nfields * sizeof(nghttp2_nv) + bytes;
	b.m->method = m->method;
	b.m->grpc = m->grpc;
	for (uint32_t i = 0; i < o->nfields; i++)
		put_nv(&b, o->fields[i].name, o->fields[i].name_len, o->fields[i].value,
		       o->fields[i].value_len, false, o->fields[i].flags);
	cost = st_bq_cost(&b.m->body, o->body_len);
	if ((o->body_len && st_bq_append(&b.m->body, o->body, o->body_len)) ||
	    (m->ntr && !(b.m->tr = nv_copy(m->tr, m->ntr, &b.m->mem)))) {
		h2msg_put(b.m);
		return NULL;
	}
	b.m->mem += o->body_len ? cost : 0;
	b.m->ntr = m->ntr;
	return b.m;
}

int h2msg_correlate(struct st_shadow *sh, unsigned slot, const struct h2msg *m, uint64_t now,
		    struct h2msg **out, unsigned *pending)
{
	size_t blen;
	int r;

	*out = NULL;
	*pending = 0;
	if (msg_flat(sh, m, &blen))
		return -ENOMEM;
	r = st_correlate__rewrite_h2(sh->cor[slot], sh->corfields, m->nnv, sh->corbuf, blen, now,
				     &sh->corh2);
	*pending = sh->corh2.pending;
	if (r != 1)
		return r < 0 ? r : 0;
	*out = msg_rewritten(m, &sh->corh2);
	return *out ? 0 : -ENOMEM;
}

/* The request head as HTTP/1 heads carry one (tap compare's pairs). */
static int http_view(struct h2cap *t, const struct st_h2_head *h, struct st_http_head *hh)
{
	uint32_t n = 0;

	if (h->nfields > t->hdr_cap) {
		struct st_http_header *a = realloc(t->hdr, h->nfields * sizeof(*a));

		if (!a)
			return -ENOMEM;
		t->hdr = a;
		t->hdr_cap = h->nfields;
	}
	for (uint32_t i = 0; i < h->nfields; i++) {
		const struct st_h2_field *f = &h->fields[i];

		if (f->name_len && f->name[0] != ':')
			t->hdr[n++] = (struct st_http_header){ .name = f->name, .value = f->value,
							       .name_len = f->name_len,
							       .value_len = f->value_len };
	}
	memset(hh, 0, sizeof(*hh));
	hh->version_major = 2;
	hh->headers = t->hdr;
	hh->nheaders = n;
	if (h->method) {
		hh->method_str = h->method->value;
		hh->method_len = h->method->value_len;
		hh->method = st_http__method_from(hh->method_str, hh->method_len);
	}
	if (h->path) {
		hh->target = h->path->value;
		hh->target_len = h->path->value_len;
	} else if (h->authority) { /* CONNECT */
		hh->target = h->authority->value;
		hh->target_len = h->authority->value_len;
	}
	hh->status = h->status;
	hh->flags = ST_HTTP_HF_KEEP_ALIVE;
	if (h->flags & ST_H2_HF_END_STREAM) {
		hh->body = ST_HTTP_BODY_NONE;
	} else if (h->flags & ST_H2_HF_CONTENT_LENGTH) {
		hh->body = ST_HTTP_BODY_LENGTH;
		hh->content_length = h->content_length;
		hh->flags |= ST_HTTP_HF_CONTENT_LENGTH;
	} else {
		hh->body = ST_HTTP_BODY_UNTIL_CLOSE;
	}
	return 0;
}

static struct h2cs *cs_get(struct cconn *cc, uint32_t id)
{
	struct h2cs *s = cs_find(cc->h2, id);

	if (!s && !(s = cs_add(cc->h2, id)))
		cc->sh->st.errors++;
	return s;
}

/* A request head: counted, selected, staged (its message starts). */
static void req_head(struct cconn *cc, struct h2cs *s, const struct st_h2_head *h)
{
	struct st_shadow *sh = cc->sh;
	struct st_http_head hh;
	struct sh_req r;
	unsigned n;

	s->f |= CS_REQ;
	s->counted = true;
	s->staged = true;
	sh->st.staged++;
	sh->st.requests++;
	sh->st.h2_streams++;
	cc->req_index++;
	if (http_view(cc->h2, h, &hh)) {
		sh->st.errors++;
		n = cc_slots_on(cc);
		sh->st.dropped += n;
		sh->st.dropped_down += n;
		return;
	}
	if (h->flags & ST_H2_HF_MALFORMED) {
		/* the server must refuse it (RFC 9113 8.1.1): never replayed */
		sh->st.h2_malformed++;
		s->pass = true;
		cs_fate(cc, s, FATE_REJECTED);
		return;
	}
	r = (struct sh_req){ .method = (uint8_t)hh.method, .method_str = hh.method_str,
			     .method_len = hh.method_len, .target = hh.target,
			     .target_len = hh.target_len, .grpc = st_grpc_is_grpc(h) };
	if (!sh_select(sh, cc, &r)) {
		sh->st.filtered++;
		return;
	}
	if (sh->cfg.compare) {
		s->pair = st_compare__pair_new(sh->cfg.compare, &hh);
		if (s->pair && cc->pairing_lost) {
			st_compare__pair_fail(s->pair, ST_CMP_PROD, (enum st_cmp_reason)cc->pairing_lost);
		} else if (s->pair) {
			st_compare__pair_get(s->pair);
			s->prod = s->pair;
		}
	}
	n = cc_slots_on(cc);
	if (!sh_rate_ok(sh)) {
		sh->st.dropped += n;
		sh->st.dropped_rate += n;
		return;
	}
	s->m = msg_new(sh, h);
	if (!s->m) {
		sh->st.errors++;
		sh->st.dropped += n;
		sh->st.dropped_down += n;
		return;
	}
	s->pass = true;
	s->mem = s->m->mem;
	if (sh->cor)
		s->ex = sh_cor_ex_new(sh);
	if (!cc_stage_fits(cc, s->mem)) {
		h2msg_put(s->m);
		s->m = NULL;
		s->mem = 0;
		s->pass = false;
		sh->st.dropped += n;
		sh->st.dropped_queue += n;
		return;
	}
	cc_stage_add(cc, (int64_t)s->mem);
}

/* A staged message that no longer fits: the stream is dropped whole, for every slot. */
static void cs_drop_queue(struct cconn *cc, struct h2cs *s)
{
	unsigned n = cc_slots_on(cc);

	if (s->m) {
		cc_stage_add(cc, -(int64_t)s->mem);
		h2msg_put(s->m);
		s->m = NULL;
		s->mem = 0;
	}
	s->pass = false;
	cc->sh->st.dropped += n;
	cc->sh->st.dropped_queue += n;
}

static void req_data(struct cconn *cc, struct h2cs *s, const uint8_t *p, size_t n)
{
	uint64_t cost;

	if (s->pair && n)
		st_compare__pair_req_body(s->pair, p, n);
	if (!s->pass || !s->m || !n)
		return;
	cost = st_bq_cost(&s->m->body, n);
	if (!cc_stage_fits(cc, cost) || st_bq_append(&s->m->body, p, n)) {
		cs_drop_queue(cc, s);
		return;
	}
	s->m->mem += cost;
	s->mem += cost;
	cc_stage_add(cc, (int64_t)cost);
}

static void req_trailers(struct cconn *cc, struct h2cs *s, const struct st_h2_head *h)
{
	uint64_t before;

	if ((h->flags & ST_H2_HF_MALFORMED) && !(s->f & CS_OUT)) {
		/* malformed trailers make the request malformed: the server must refuse it */
		cc->sh->st.h2_malformed++;
		cs_fate(cc, s, FATE_REJECTED);
		return;
	}
	if (!s->pass || !s->m)
		return;
	before = s->m->mem;
	if (msg_trailers(s->m, h)) {
		cs_drop_queue(cc, s);
		return;
	}
	if (!cc_stage_fits(cc, s->m->mem - before)) {
		cs_drop_queue(cc, s);
		return;
	}
	s->mem += s->m->mem - before;
	cc_stage_add(cc, (int64_t)(s->m->mem - before));
}

/* ---- events ------------------------------------------------------------------------------------ */

/* The connection can no longer be decoded: nothing more of it is released, ever. */
static void h2_stop(struct cconn *cc, const struct st_h2_event *ev)
{
	struct st_shadow *sh = cc->sh;
	struct h2cap *t = cc->h2;
	struct h2cs *s, *tmp;
	enum st_cmp_reason why = ST_CMP_R_PROD_UNFRAMED;

	switch (ev ? ev->stop : ST_H2_STOP_NONE) {
	case ST_H2_STOP_JOINED:
		sh->st.h2_joined++;
		break;
	case ST_H2_STOP_GAP:
		sh->st.h2_gap++;
		why = ST_CMP_R_PROD_GAP;
		break;
	case ST_H2_STOP_PROTOCOL:
		sh->st.h2_errors++;
		if (ev->error_code == ST_H2_PROTOCOL_ERROR)
			sh->st.h2_error_protocol++;
		else if (ev->error_code == ST_H2_FRAME_SIZE_ERROR)
			sh->st.h2_error_frame_size++;
		else if (ev->error_code == ST_H2_COMPRESSION_ERROR)
			sh->st.h2_error_compression++;
		else
			sh->st.h2_error_other++;
		break;
	case ST_H2_STOP_LIMIT:
		sh->st.h2_errors++;
		switch (ev->limit) {
		case ST_H2_LIMIT_BLOCK: sh->st.h2_limit_block++; break;
		case ST_H2_LIMIT_CONTINUATION: sh->st.h2_limit_continuation++; break;
		case ST_H2_LIMIT_STREAMS_TOTAL: sh->st.h2_limit_streams_total++; break;
		case ST_H2_LIMIT_EARLY_RESETS: sh->st.h2_limit_early_resets++; break;
		case ST_H2_LIMIT_TABLE: sh->st.h2_limit_table++; break;
		case ST_H2_LIMIT_SETTINGS: sh->st.h2_limit_settings++; break;
		default: sh->st.h2_error_other++; break;
		}
		break;
	case ST_H2_STOP_TRUNCATED:
		sh->st.h2_errors++;
		sh->st.h2_error_truncated++;
		break;
	case ST_H2_STOP_NOMEM:
		sh->st.errors++;
		break;
	default: /* a GOAWAY with an error code (counted by the caller) */
		break;
	}
	if (t->stopped)
		return;
	if (ev && ev->stop != ST_H2_STOP_JOINED && ev->stop != ST_H2_STOP_GAP)
		pr_debug("shadow: HTTP/2 connection %" PRIu64 " no longer replayed: %s (%s%s%s)",
			 cc->c->id, st_h2_stop_str((enum st_h2_stop)ev->stop),
			 ev->detail ? ev->detail : "", ev->error_code ? ", " : "",
			 ev->error_code ? st_h2_errname(ev->error_code) : "");
	t->stopped = true;
	sh->st.stopped_conns++;
	cc->pairing_lost = (uint8_t)why;
	st_list_for_each_entry_safe(s, tmp, &t->order, node) {
		cs_fate(cc, s, FATE_GAP);
		cs_prod_lost(s, why);
	}
}

static void on_head(struct cconn *cc, const struct st_h2_event *ev)
{
	const struct st_h2_head *h = ev->head;
	struct h2cs *s = cs_get(cc, ev->stream);

	if (!s)
		return;
	if (ev->dir == ST_H2_CLIENT) {
		req_head(cc, s, h);
	} else if (!(h->flags & ST_H2_HF_INTERIM) && !(s->f & CS_ANSWER)) {
		/* production's final answer: the verdict */
		s->f |= CS_ANSWER;
		s->verdict = sh_refusal_status(h->status) ? V_REJECT : V_RUN;
		if (s->ex) {
			struct st_http_head hh;

			if (!http_view(cc->h2, h, &hh))
				st_correlate_ans_head(&s->ex->prod, cc->sh->cfg.correlate, &hh);
		}
		if (s->prod) {
			struct st_http_head hh;
			uint32_t n;

			if (http_view(cc->h2, h, &hh)) {
				cs_prod_lost(s, ST_CMP_R_MEMORY);
			} else {
				n = hh.nheaders;
				if (hh.body == ST_HTTP_BODY_NONE && st_grpc_is_grpc(h))
					hh.nheaders = sh_grpc_trailers_only(cc->h2->hdr, n);
				st_compare__pair_head(s->prod, ST_CMP_PROD, &hh, cc->cur_ts);
				if (hh.nheaders < n)
					st_compare__pair_trailers(s->prod, ST_CMP_PROD,
								  cc->h2->hdr + hh.nheaders,
								  n - hh.nheaders);
			}
		}
	}
	cs_settle(cc, s);
}

static void on_end(struct cconn *cc, const struct st_h2_event *ev)
{
	struct h2cs *s = cs_find(cc->h2, ev->stream);

	if (!s)
		return;
	if (ev->dir == ST_H2_CLIENT) {
		s->f |= CS_REQ_END;
		if (s->pair)
			st_compare__pair_req_done(s->pair, cc->cur_ts);
	} else {
		s->f |= CS_PROD_END;
		if (s->ex && (s->f & CS_ANSWER)) /* while the pair is held */
			sh_cor_prod_done(cc, s->ex, s->prod);
		st_correlate_ex_put(s->ex);
		s->ex = NULL;
		if (s->prod) {
			st_compare__pair_done(s->prod, ST_CMP_PROD);
			cs_prod_lost(s, ST_CMP_R_PROD_UNANSWERED);
		}
	}
	cs_settle(cc, s);
	/* both sides ended: the framer forgets it */
	if ((s->f & (CS_REQ_END | CS_PROD_END)) == (CS_REQ_END | CS_PROD_END)) {
		if (!(s->f & CS_OUT) && !(s->f & CS_HELD))
			cs_fate(cc, s, FATE_UNANSWERED); /* the arbiter still waiting: cannot be */
		if (!(s->f & CS_HELD))
			cs_free(cc, s);
	}
}

/* RST_STREAM from either side: the stream is over; released already, or never. */
static void on_reset(struct cconn *cc, const struct st_h2_event *ev)
{
	struct h2cs *s = cs_find(cc->h2, ev->stream);

	if (!s)
		return;
	if (ev->dir == ST_H2_SERVER && ev->error_code == ST_H2_REFUSED_STREAM)
		cs_fate(cc, s, FATE_REFUSED); /* no application processing (RFC 9113 8.7) */
	else
		cs_fate(cc, s, FATE_RESET);
	cs_free(cc, s);
}

static void on_goaway(struct cconn *cc, const struct st_h2_event *ev)
{
	struct st_shadow *sh = cc->sh;
	struct h2cs *s, *tmp;

	if (ev->error_code != ST_H2_NO_ERROR) {
		/* a connection error, said by either side: the connection ends here, and what was
		 * not released never will be (production did not answer it) */
		sh->st.h2_errors++;
		sh->st.h2_error_goaway++;
		st_list_for_each_entry_safe(s, tmp, &cc->h2->order, node)
			cs_fate(cc, s, FATE_UNANSWERED);
		h2_stop(cc, NULL);
		return;
	}
	if (ev->dir != ST_H2_SERVER)
		return;
	/* production will not process the client's streams above last: the framer forgot them */
	st_list_for_each_entry_safe(s, tmp, &cc->h2->order, node) {
		if (s->id > ev->last_stream && (s->id & 1)) {
			cs_fate(cc, s, FATE_REFUSED);
			cs_free(cc, s);
		}
	}
}

static void on_drop(struct cconn *cc, const struct st_h2_event *ev)
{
	struct st_shadow *sh = cc->sh;
	struct h2cs *s = cs_find(cc->h2, ev->stream);

	if (ev->limit == ST_H2_LIMIT_HEADER_LIST)
		sh->st.h2_limit_header_list++;
	else if (ev->limit == ST_H2_LIMIT_STREAMS)
		sh->st.h2_limit_streams++;
	if (!s) {
		/* its head never came out: a request all the same, lost to a bound */
		if (ev->dir == ST_H2_CLIENT) {
			sh->st.requests++;
			sh->st.h2_streams++;
			sh->st.gaps_skipped++;
		}
		return;
	}
	if (!s->counted) {
		s->counted = true;
		s->pass = true; /* counted here, as a request lost to a bound */
		sh->st.requests++;
		sh->st.h2_streams++;
	}
	cs_fate(cc, s, FATE_GAP);
	cs_free(cc, s);
}

static void h2_event(struct cconn *cc, const struct st_h2_event *ev)
{
	struct h2cs *s;

	if (cc->h2->stopped)
		return; /* the rest of the buffer being fed, after a stop */

	switch (ev->type) {
	case ST_H2_EV_HEAD:
		on_head(cc, ev);
		break;
	case ST_H2_EV_TRAILERS:
		s = cs_find(cc->h2, ev->stream);
		if (s && ev->dir == ST_H2_CLIENT) {
			req_trailers(cc, s, ev->head);
		} else if (s && s->prod) {
			struct st_http_head hh;

			if (!http_view(cc->h2, ev->head, &hh))
				st_compare__pair_trailers(s->prod, ST_CMP_PROD, hh.headers, hh.nheaders);
		}
		break;
	case ST_H2_EV_DATA:
		s = cs_find(cc->h2, ev->stream);
		if (!s)
			break;
		if (ev->dir == ST_H2_CLIENT) {
			req_data(cc, s, ev->data, ev->data_len);
			break;
		}
		if (s->prod && ev->data_len)
			st_compare__pair_body(s->prod, ST_CMP_PROD, ev->data, ev->data_len);
		if (s->ex && (s->f & CS_ANSWER) && ev->data && ev->data_len)
			st_correlate_ans_body(&s->ex->prod, ev->data, ev->data_len);
		break;
	case ST_H2_EV_END:
		on_end(cc, ev);
		break;
	case ST_H2_EV_RESET:
		on_reset(cc, ev);
		break;
	case ST_H2_EV_DROP:
		on_drop(cc, ev);
		break;
	case ST_H2_EV_GOAWAY:
		on_goaway(cc, ev);
		break;
	case ST_H2_EV_STOP:
		h2_stop(cc, ev);
		break;
	default:
		break;
	}
}

static void h2_drain(struct cconn *cc)
{
	struct st_h2_event ev;

	do {
		st_h2__feed(cc->h2->fr, ST_H2_CLIENT, NULL, 0, &ev);
		h2_event(cc, &ev);
	} while (ev.type != ST_H2_EV_NEED_MORE);
}

void cc_h2_feed(struct cconn *cc, int dir, const uint8_t *p, size_t n)
{
	struct h2cap *t = cc->h2;
	int d = dir == ST_DIR_IN ? ST_H2_CLIENT : ST_H2_SERVER;
	struct st_h2_event ev;

	if (!t || t->stopped)
		return;
	for (;;) {
		size_t k = st_h2__feed(t->fr, d, p, n, &ev);

		p += k;
		n -= k;
		h2_event(cc, &ev);
		if (ev.type == ST_H2_EV_NEED_MORE)
			break;
	}
}

/* ---- the connection --------------------------------------------------------------------------- */

static struct h2cap *cap_new(void)
{
	struct h2cap *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->fr = st_h2__new(NULL);
	if (!t->fr) {
		free(t);
		return NULL;
	}
	st_list_init(&t->order);
	return t;
}

int cc_h2_start(struct cconn *cc)
{
	cc->h2 = cap_new();
	return cc->h2 ? 0 : -ENOMEM;
}

void cc_h2_gap(struct cconn *cc)
{
	if (!cc->h2 || cc->h2->stopped)
		return;
	st_h2__stop(cc->h2->fr, ST_H2_STOP_GAP);
	h2_drain(cc);
}

void cc_h2_end(struct cconn *cc, int dir)
{
	struct h2cs *s, *tmp;

	if (!cc->h2 || cc->h2->stopped)
		return;
	st_h2__eof(cc->h2->fr, dir == ST_DIR_IN ? ST_H2_CLIENT : ST_H2_SERVER);
	h2_drain(cc);
	if (dir != ST_DIR_OUT || cc->h2->stopped)
		return;
	/* production's side is over: what it did not answer, it never will */
	st_list_for_each_entry_safe(s, tmp, &cc->h2->order, node) {
		if (!(s->f & CS_ANSWER) && cc->arbiter)
			cs_fate(cc, s, FATE_UNANSWERED);
		cs_prod_lost(s, ST_CMP_R_PROD_UNANSWERED);
	}
}

void cc_h2_arbiter_off(struct cconn *cc)
{
	struct h2cs *s, *tmp;

	cc->arbiter = false;
	if (!cc->h2)
		return;
	st_list_for_each_entry_safe(s, tmp, &cc->h2->order, node)
		cs_settle(cc, s);
}

void cc_h2_close(struct cconn *cc)
{
	struct h2cs *s, *tmp;

	if (cc->h2) {
		/* without the arbiter, what is complete goes now */
		if (!cc->arbiter)
			cc_h2_arbiter_off(cc);
		st_list_for_each_entry_safe(s, tmp, &cc->h2->order, node) {
			/* a request cut by the end of the connection, or one production never
			 * answered */
			cs_fate(cc, s, (s->f & CS_REQ_END) ? FATE_UNANSWERED : FATE_GAP);
			cs_free(cc, s);
		}
	}
	cc->mode = CM_OFF;
}

void cc_h2_free(struct cconn *cc)
{
	struct h2cap *t = cc->h2;
	struct h2cs *s, *tmp;

	if (!t)
		return;
	if (!t->offer) {
		struct st_h2_stats hs;

		st_h2__stats(t->fr, &hs);
		cc->sh->st.h2_pushes += hs.push_promises;
	}
	st_list_for_each_entry_safe(s, tmp, &t->order, node) {
		st_correlate_ex_put(s->ex);
		cs_prod_lost(s, ST_CMP_R_PROD_UNANSWERED);
		cs_unstage(cc, s);
		tab_del(t, s);
		free(s);
	}
	if (t->offer_mem)
		cc_stage_add(cc, -(int64_t)t->offer_mem);
	st_bq_free(&t->offer_body);
	st_h2__free(t->fr);
	free(t->tab);
	free(t->hdr);
	free(t);
	cc->h2 = NULL;
}

/* ---- h2c: an HTTP/1.1 connection upgraded ------------------------------------------------------- */

int cc_h2_offer_start(struct cconn *cc)
{
	if (cc->h2)
		cc_h2_free(cc);
	cc->h2 = cap_new();
	if (!cc->h2)
		return -ENOMEM;
	cc->h2->offer = true;
	return 0;
}

void cc_h2_offer_body(struct cconn *cc, const uint8_t *p, size_t n)
{
	struct h2cap *t = cc->h2;
	uint64_t cost;

	if (!t || !t->offer || t->offer_over || !n)
		return;
	cost = st_bq_cost(&t->offer_body, n);
	if (!cc_stage_fits(cc, cost) || st_bq_append(&t->offer_body, p, n)) {
		t->offer_over = true; /* stream 1 cannot be staged whole: dropped if it switches */
		return;
	}
	t->offer_mem += cost;
	cc_stage_add(cc, (int64_t)cost);
}

/*
 * The offering request is complete: the framer takes it as stream 1 (st_h2__upgrade), staged
 * here like any stream but held (CS_HELD) until the switch. It was counted as a request
 * already (HTTP/1): stream 1 is the same request, not another.
 */
int cc_h2_offer(struct cconn *cc, const struct st_http_head *req, bool pass)
{
	struct h2cap *t = cc->h2;
	struct st_h2_event ev;
	struct h2cs *s;
	int r;

	if (!t || !t->offer)
		return -EINVAL;
	r = st_h2__upgrade(t->fr, req);
	if (r)
		return r;
	st_h2__feed(t->fr, ST_H2_CLIENT, NULL, 0, &ev);
	if (ev.type != ST_H2_EV_HEAD || ev.stream != 1 || !(s = cs_add(t, 1)))
		return -ENOMEM;
	s->f = CS_REQ | CS_HELD;
	s->counted = true;
	s->pass = pass;
	if (pass && cc->sh->cor) /* its answer comes on stream 1: learned from as any stream's */
		s->ex = sh_cor_ex_new(cc->sh);
	if (pass && !t->offer_over && (s->m = msg_new(cc->sh, ev.head))) {
		uint64_t fields = s->m->mem;

		/* the body collected from the HTTP/1 message moves into the message */
		st_bq_free(&s->m->body);
		s->m->body = t->offer_body;
		memset(&t->offer_body, 0, sizeof(t->offer_body));
		s->m->mem += t->offer_mem;
		s->mem = s->m->mem;
		t->offer_mem = 0;
		cc_stage_add(cc, (int64_t)fields); /* the body is counted already */
		if (!cc_stage_fits(cc, 0)) {
			cc_stage_add(cc, -(int64_t)s->mem);
			h2msg_put(s->m);
			s->m = NULL;
			s->mem = 0;
		}
	}
	do {
		st_h2__feed(t->fr, ST_H2_CLIENT, NULL, 0, &ev);
		if (ev.type == ST_H2_EV_END && ev.stream == 1)
			s->f |= CS_REQ_END;
	} while (ev.type != ST_H2_EV_NEED_MORE);
	if (t->offer_mem) {
		cc_stage_add(cc, -(int64_t)t->offer_mem);
		t->offer_mem = 0;
	}
	st_bq_free(&t->offer_body);
	t->offer_made = true;
	return 0;
}

bool cc_h2_offered(const struct cconn *cc)
{
	return cc->h2 && cc->h2->offer && cc->h2->offer_made;
}

void cc_h2_upgraded(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	struct h2cap *t = cc->h2;
	struct h2cs *s = cs_find(t, 1);

	t->offer = false;
	sh->st.h2++;
	sh->st.h2_upgrades++;
	if (s) {
		sh->st.h2_streams++;
		s->f &= ~CS_HELD;
		if (!(s->f & CS_OUT)) {
			s->staged = true; /* the HTTP/1 entry it was left the stage */
			sh->st.staged++;
		}
		if (s->pass && !s->m) {
			/* it did not fit the caps whole */
			unsigned n = cc_slots_on(cc);

			s->pass = false;
			sh->st.dropped += n;
			sh->st.dropped_queue += n;
		}
		cs_settle(cc, s);
		if ((s->f & (CS_REQ_END | CS_PROD_END)) == (CS_REQ_END | CS_PROD_END))
			cs_free(cc, s);
	}
}
