/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow engine, captured side (see shadow.h for the contract, shadow_int.h
 * for the parts, docs/SHADOW.md for the rules).
 *
 * One cconn per captured client connection (reasm's user pointer). Its client
 * bytes go through a strict request framer; each request becomes a pending
 * entry whose bytes (the head already rewritten) wait in the connection's stage
 * queue. Production's bytes on the same connection go through a response
 * framer: each final answer is the verdict on the oldest request without one.
 * Entries leave the stage in order: released to the shadow connections when
 * production ran them, dropped (and the connection's replay ended) when it
 * refused one. Nothing is ever re-framed from the middle of a stream unless
 * the operator asked for it (cfg.resync).
 */
#include "shadow.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "flowset.h"
#include "loop.h"
#include "log.h"
#include "opts.h"
#include "output.h"
#include "shadow_int.h"

#define DETECT_MAX 8192u
#define GC_EVERY_NS (1000ull * 1000000)
/* With no server->client segment among this many requests, production's answers are not in
 * the capture at all (asymmetric routing, a client-side-only pcap): strict framing alone. */
#define NO_ARBITER_AFTER 64
struct sconn **st_shadow_cc_slot(struct cconn *cc, unsigned slot)
{
	return &cc->sc[slot];
}

uint64_t st_shadow_cc_id(const struct cconn *cc)
{
	return cc->id;
}

/* Stable across runs and agents: the same connection is always in or out. The BPF program
 * samples with the same function (bpf/connhash.h), so the kernel and this agree. */
static uint64_t conn_hash(const struct st_flow_key *k)
{
	return st_conn_hash(k->src.family, k->src.a, k->dst.a, k->sport, k->dport);
}

static bool slot_on(const struct cconn *cc, unsigned slot)
{
	return cc->sflags[slot] & SL_ON;
}

unsigned cc_slots_on(const struct cconn *cc)
{
	unsigned s, n = 0;

	for (s = 0; s < cc->sh->nslots; s++)
		n += slot_on(cc, s);
	return n;
}

static void port_mark(uint8_t *bits, uint16_t port)
{
	bits[port / 8] |= (uint8_t)(1u << (port % 8));
}

static bool port_has(const uint8_t *bits, uint16_t port)
{
	return bits[port / 8] & (1u << (port % 8));
}

/* ---- the stage: requests waiting for production ---------------------------------------- */

static struct pend *pe_at(struct cconn *cc, uint32_t i)
{
	return &cc->pe[(cc->pe_head + i) % cc->pe_cap];
}

static struct pend *pe_last(struct cconn *cc)
{
	return cc->pe_n ? pe_at(cc, cc->pe_n - 1) : NULL;
}

/* The entry production's next final answer is about, or NULL. */
static struct pend *pe_verdict_slot(struct cconn *cc)
{
	if (cc->verdicts < cc->popped || cc->verdicts - cc->popped >= cc->pe_n)
		return NULL;
	return pe_at(cc, (uint32_t)(cc->verdicts - cc->popped));
}

static struct pend *pe_push(struct cconn *cc)
{
	struct pend *e;

	if (cc->pe_n == cc->pe_cap) {
		uint32_t ncap = cc->pe_cap ? cc->pe_cap * 2 : 4, i;
		struct pend *n;

		/* production answers in order; more outstanding than its method queue is a desync */
		if (ncap > ST_HTTP_METHOD_QUEUE)
			return NULL;
		n = malloc(ncap * sizeof(*n));
		if (!n)
			return NULL;
		for (i = 0; i < cc->pe_n; i++)
			n[i] = *pe_at(cc, i);
		free(cc->pe);
		cc->pe = n;
		cc->pe_cap = ncap;
		cc->pe_head = 0;
	}
	e = &cc->pe[(cc->pe_head + cc->pe_n) % cc->pe_cap];
	memset(e, 0, sizeof(*e));
	e->start = e->end = cc->stage.end;
	cc->pe_n++;
	cc->sh->st.staged++;
	return e;
}

static void pe_pop(struct cconn *cc)
{
	struct pend *e = pe_at(cc, 0);

	if (e->pair) {
		st_compare__pair_release(e->pair, -1, ST_CMP_R_NONE);
		e->pair = NULL;
	}
	st_correlate_ex_put(e->ex);
	e->ex = NULL;
	cc->pe_head = (cc->pe_head + 1) % cc->pe_cap;
	cc->pe_n--;
	cc->popped++;
	cc->sh->st.staged--;
}

static void stage_acct(struct cconn *cc, uint64_t old)
{
	struct st_shadow *sh = cc->sh;

	sh->queued = sh->queued - old + st_bq_mem(&cc->stage);
	if (sh->queued > sh->st.queued_peak)
		sh->st.queued_peak = sh->queued;
}

/* The stage of a captured connection holds its HTTP/1 bytes and its HTTP/2 messages: one
 * cap (--conn-queue-mb) over both. */
bool cc_stage_fits(const struct cconn *cc, uint64_t cost)
{
	const struct st_shadow *sh = cc->sh;

	return st_bq_mem(&cc->stage) + cc->h2mem + cost <= sh->cfg.conn_queue_max &&
	       sh->queued + cost <= sh->cfg.max_queue;
}

void cc_stage_add(struct cconn *cc, int64_t delta)
{
	struct st_shadow *sh = cc->sh;

	cc->h2mem = (uint64_t)((int64_t)cc->h2mem + delta);
	sh->queued = (uint64_t)((int64_t)sh->queued + delta);
	if (sh->queued > sh->st.queued_peak)
		sh->st.queued_peak = sh->queued;
}

/* Appends to the stage within the caps. */
static int stage_append(struct cconn *cc, const void *p, size_t n)
{
	uint64_t old = st_bq_mem(&cc->stage), cost = st_bq_cost(&cc->stage, n);
	int err;

	if (!cc_stage_fits(cc, cost))
		return -ENOBUFS;
	err = st_bq_append(&cc->stage, p, n);
	stage_acct(cc, old);
	return err;
}

/* Bytes before pos are no longer staged. */
static void stage_release(struct cconn *cc, uint64_t pos)
{
	uint64_t old = st_bq_mem(&cc->stage);

	st_bq_release(&cc->stage, pos);
	stage_acct(cc, old);
}

static void stage_truncate(struct cconn *cc, uint64_t pos)
{
	uint64_t old = st_bq_mem(&cc->stage);

	st_bq_truncate(&cc->stage, pos);
	stage_acct(cc, old);
}

/* A request whose bytes did not fit: dropped for every slot it would have gone to. */
static void pe_drop_queue(struct cconn *cc, struct pend *e)
{
	unsigned n = cc_slots_on(cc);

	stage_truncate(cc, e->start);
	e->end = e->start;
	e->pass = false;
	cc->sh->st.dropped += n;
	cc->sh->st.dropped_queue += n;
}

/* The request being framed crossed a gap (or a framing error): it is never sent. */
static void pe_damage(struct cconn *cc, struct pend *e)
{
	if (e->damaged)
		return;
	if (e->pass)
		stage_truncate(cc, e->start);
	e->end = e->start;
	e->pass = false;
	e->damaged = true;
	cc->sh->st.gaps_skipped++;
}

/* The requests still waiting are dropped: production did not (will not) answer them. */
static void cc_drop_pending(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;

	while (cc->pe_n) {
		struct pend *e = pe_at(cc, 0);

		if (e->pass && !e->damaged)
			sh->st.prod_unanswered++;
		pe_pop(cc);
	}
	stage_truncate(cc, cc->stage.acked);
}

/* No more client bytes are framed; counted once, as the connection's replay ending early. */
static void cc_req_dead(struct cconn *cc)
{
	if (cc->req_dead)
		return;
	cc->req_dead = true;
	cc->sh->st.stopped_conns++;
}

/* The connection's replay ends here, early: nothing more is framed or released. */
static void cc_stop(struct cconn *cc)
{
	if (cc->mode == CM_OFF)
		return;
	cc_req_dead(cc);
	cc_drop_pending(cc);
	cc->holding = false;
	cc->mode = CM_OFF;
}

/* ---- handing requests to the shadows ---------------------------------------------------- */

/* The shadow connection for the next request of slot: the current one, or a new one. */
static struct sconn *cc_sconn(struct cconn *cc, unsigned slot)
{
	struct sconn *sc = cc->sc[slot];

	if (sc)
		return sc;
	sc = sc_new(cc->sh, cc, slot, cc->mode == CM_H2 ? SK_H2 : SK_HTTP1);
	cc->sc[slot] = sc;
	return sc;
}

/* ---- --correlate: requests rewritten per target, or waiting for a value ------------------- */

/* A request's bytes (rewritten) into sc's queue. 0 or -ENOBUFS. */
static int cor_commit(struct sconn *sc, const uint8_t *p, size_t n, uint8_t method, bool ka,
		      struct st_cmp_pair *pair, struct st_correlate_ex *ex, bool rewritten)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old = sc_mem(sc), cost = st_bq_cost(&sc->q, n);

	if (!sc_fits(sc, cost) || st_bq_append(&sc->q, p, n) ||
	    sc_req_push(sc, sc->q.end, method, ka, pair, ex)) {
		st_bq_truncate(&sc->q, sc->q.commit);
		sc_acct(sc, old);
		return -ENOBUFS;
	}
	if (sc->q.sent == sc->q.commit)
		sc->progress_ns = sh_now(sh);
	sc->q.commit = sc->q.end;
	sc_acct(sc, old);
	sc_push_methods(sc);
	if (rewritten)
		sh->st.rewritten_requests++;
	return 0;
}

/* The request waits on sc (behind those already waiting), a copy of its bytes (HTTP/2: a
 * reference of o->m; p is NULL) held under the queue caps. 0 or -ENOBUFS. */
static int cor_wait(struct sconn *sc, const uint8_t *p, size_t n, uint64_t until,
		    const struct sh_out *o)
{
	struct st_shadow *sh = sc->sh;
	struct corwait *w;
	uint8_t *b = NULL;
	uint64_t old = sc_mem(sc), cost;

	if (o->m)
		n = (size_t)o->m->mem;
	cost = n + sizeof(struct corwait);

	if (!sc_fits(sc, cost))
		return -ENOBUFS;
	if (sc->cw_n == sc->cw_cap) {
		uint32_t nc = sc->cw_cap ? sc->cw_cap * 2 : 4;
		struct corwait *r = malloc(nc * sizeof(*r));

		if (!r)
			return -ENOBUFS;
		for (uint32_t i = 0; i < sc->cw_n; i++)
			r[i] = sc->cw[(sc->cw_head + i) % sc->cw_cap];
		free(sc->cw);
		sc->cw = r;
		sc->cw_cap = nc;
		sc->cw_head = 0;
	}
	if (o->m) {
		o->m->refs++;
	} else {
		b = malloc(n ? n : 1);
		if (!b)
			return -ENOBUFS;
		memcpy(b, p, n);
	}
	w = &sc->cw[(sc->cw_head + sc->cw_n) % sc->cw_cap];
	*w = (struct corwait){ .buf = b, .m = o->m, .len = n, .until = until, .method = o->method,
			       .keep_alive = !o->final, .pair = o->pair, .ex = o->ex };
	if (o->pair)
		st_compare__pair_get(o->pair);
	if (o->ex)
		st_correlate_ex_get(o->ex);
	sc->cw_n++;
	sc->cw_mem += cost;
	sc_acct(sc, old);
	if (!st_list_linked(&sc->cwl))
		st_list_add_tail(&sc->cwl, &sh->cor_waiting);
	sh->st.correlate_waits++;
	return 0;
}

/* The oldest waiting request leaves the ring: its bytes, its references are the caller's. */
static struct corwait cw_pop(struct sconn *sc)
{
	struct corwait w = sc->cw[sc->cw_head];
	uint64_t old = sc_mem(sc);

	sc->cw_head = (sc->cw_head + 1) % sc->cw_cap;
	sc->cw_n--;
	sc->cw_mem -= w.len + sizeof(struct corwait);
	sc_acct(sc, old);
	return w;
}

static void cw_let_go(struct corwait *w)
{
	if (w->pair)
		st_compare__pair_release(w->pair, -1, ST_CMP_R_NONE);
	st_correlate_ex_put(w->ex);
	h2msg_put(w->m);
	free(w->buf);
}

void sc_cor_drop(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;

	while (sc->cw_n) {
		struct corwait w = cw_pop(sc);

		sh->st.correlate_dropped++;
		sh_dropped(sh, -EIO, w.pair, sc->target);
		cw_let_go(&w);
	}
	st_list_del_init(&sc->cwl);
}

static int cor_flush_h2(struct sconn *sc, uint64_t now);

/* sc's waiting requests, oldest first, as far as their values are learned or their time is
 * up. */
static void cor_flush(struct sconn *sc, uint64_t now)
{
	struct st_shadow *sh = sc->sh;
	struct st_correlate *map = sh->cor[sc->slot];

	while (sc->cw_n && sc->state != SC_DEAD) {
		struct corwait *h = &sc->cw[sc->cw_head], w;
		int r, err;

		if (h->m) {
			if (cor_flush_h2(sc, now))
				break;
			continue;
		}
		r = st_correlate__rewrite(map, h->buf, h->len, now, &sh->corout);

		if (sh->corout.pending && now < h->until)
			break;
		if (sh->corout.pending)
			sh->st.unmapped_requests++;
		w = cw_pop(sc);
		err = r == 1 ? cor_commit(sc, sh->corout.buf, sh->corout.len, w.method, w.keep_alive,
					  w.pair, w.ex, true) :
			       cor_commit(sc, w.buf, w.len, w.method, w.keep_alive, w.pair, w.ex, false);
		if (err)
			sh_dropped(sh, err, w.pair, sc->target);
		cw_let_go(&w);
		sc_mark(sc);
	}
	if (!sc->cw_n) {
		st_list_del_init(&sc->cwl);
		if (!sc->cc && sc->state != SC_DEAD)
			sc_release(sc); /* detached meanwhile: finishes once all is answered */
	}
}

void sc_cor_move(struct sconn *sc, struct sconn *n)
{
	if (!sc->cw_n)
		return;
	n->cw = sc->cw;
	n->cw_cap = sc->cw_cap;
	n->cw_head = sc->cw_head;
	n->cw_n = sc->cw_n;
	n->cw_mem = sc->cw_mem;
	sc->cw = NULL;
	sc->cw_cap = sc->cw_head = sc->cw_n = 0;
	sc->cw_mem = 0;
	st_list_del_init(&sc->cwl);
	st_list_add_tail(&n->cwl, &sc->sh->cor_waiting);
}

void sh_cor_run(struct st_shadow *sh, uint64_t now)
{
	struct sconn *sc, *nx;

	sh->cor_wake = false;
	st_list_for_each_entry_safe(sc, nx, &sh->cor_waiting, cwl)
		cor_flush(sc, now);
}

int sh_cor_flat(struct st_shadow *sh, const struct st_bq *q, uint64_t start, uint64_t end)
{
	size_t len = (size_t)(end - start), at = 0;

	if (len > sh->corbuf_cap) {
		uint8_t *b = realloc(sh->corbuf, len);

		if (!b)
			return -ENOBUFS;
		sh->corbuf = b;
		sh->corbuf_cap = len;
	}
	for (uint64_t off = start; off < end;) {
		struct iovec iov[16];
		int k = st_bq_iov(q, off, end, iov, 16);

		if (k <= 0)
			return -ENOBUFS;
		for (int i = 0; i < k; i++) {
			memcpy(sh->corbuf + at, iov[i].iov_base, iov[i].iov_len);
			at += iov[i].iov_len;
			off += iov[i].iov_len;
		}
	}
	return 0;
}

/* An HTTP/1 request for sc, rewritten for its target; it waits when it carries a value
 * production issued and the target's is not learned yet (or others wait before it). */
static int cor_push(struct cconn *cc, struct sconn *sc, const struct sh_out *o)
{
	struct st_shadow *sh = cc->sh;
	size_t len = (size_t)(o->end - o->start);
	uint64_t now = sh_now(sh), wait = sh->cfg.correlate->wait_ns;
	int r = 0;

	if (sh_cor_flat(sh, &cc->stage, o->start, o->end))
		return -ENOBUFS;
	if (!sc->cw_n) {
		r = st_correlate__rewrite(sh->cor[sc->slot], sh->corbuf, len, now, &sh->corout);
		if (!sh->corout.pending || !wait)
			return r == 1 ? cor_commit(sc, sh->corout.buf, sh->corout.len, o->method,
						   !o->final, o->pair, o->ex, true) :
					cor_commit(sc, sh->corbuf, len, o->method, !o->final, o->pair,
						   o->ex, false);
	}
	return cor_wait(sc, sh->corbuf, len, now + wait, o);
}

/* ---- --correlate: HTTP/2 requests (the same waiting, a message per rewritten request) ---- */

/* m (rewritten: a message of its own) onto sc's session. 0 or <0 (sc_h2_push). */
static int cor_commit_h2(struct sconn *sc, struct h2msg *m, struct st_cmp_pair *pair,
			 struct st_correlate_ex *ex, bool rewritten)
{
	int err = sc_h2_push(sc, m, pair, ex);

	if (!err && rewritten)
		sc->sh->st.rewritten_requests++;
	return err;
}

/* The oldest waiting request of sc is an HTTP/2 message: it goes when its values are
 * learned or its time is up (1: it waits on). */
static int cor_flush_h2(struct sconn *sc, uint64_t now)
{
	struct st_shadow *sh = sc->sh;
	struct corwait *h = &sc->cw[sc->cw_head], w;
	struct h2msg *nm = NULL;
	unsigned pending = 0;
	int err = h2msg_correlate(sh, sc->slot, h->m, now, &nm, &pending);

	if (!err && pending && now < h->until) {
		h2msg_put(nm);
		return 1;
	}
	if (pending)
		sh->st.unmapped_requests++;
	w = cw_pop(sc);
	err = cor_commit_h2(sc, nm ? nm : w.m, w.pair, w.ex, nm != NULL);
	if (err)
		sh_dropped(sh, err, w.pair, sc->target);
	h2msg_put(nm);
	cw_let_go(&w);
	sc_mark(sc);
	return 0;
}

/* An HTTP/2 request for sc, rewritten for its target; it waits as an HTTP/1 one does. */
static int cor_push_h2(struct sconn *sc, const struct sh_out *o)
{
	struct st_shadow *sh = sc->sh;
	uint64_t now = sh_now(sh), wait = sh->cfg.correlate->wait_ns;
	struct h2msg *nm = NULL;
	unsigned pending = 0;
	int err;

	if (!sc->cw_n) {
		err = h2msg_correlate(sh, sc->slot, o->m, now, &nm, &pending);
		if (err || !pending || !wait) {
			err = cor_commit_h2(sc, nm ? nm : o->m, o->pair, o->ex, nm != NULL);
			h2msg_put(nm);
			return err;
		}
		h2msg_put(nm); /* rewritten again once it may go */
	}
	return cor_wait(sc, NULL, 0, now + wait, o);
}

static int h2_push(struct sconn *sc, const struct sh_out *o)
{
	if (sc->sh->cor && !sc->sh->cfg.load)
		return cor_push_h2(sc, o);
	return sc_h2_push(sc, o->m, o->pair, NULL);
}

/* An HTTP/1 request's bytes, copied from the stage (or a load test's cache: o->flat) into
 * sc's queue. A load test's request waits there until due. 0 or -ENOBUFS. */
static int h1_push(struct cconn *cc, struct sconn *sc, const struct sh_out *o)
{
	struct st_shadow *sh = cc->sh;
	uint64_t len = o->end - o->start;
	uint64_t old = sc_mem(sc), cost = st_bq_cost(&sc->q, (size_t)len);

	if (sh->cor && !sh->cfg.load) /* a load test replays as recorded (its own pacing) */
		return cor_push(cc, sc, o);
	/* the staged copy counts until it leaves: memory never exceeds the cap */
	if (!sc_fits(sc, cost) ||
	    (o->flat ? st_bq_append(&sc->q, o->flat, (size_t)len) :
		       st_bq_append_from(&sc->q, &cc->stage, o->start, o->end)) ||
	    sc_req_push(sc, sc->q.end, o->method, !o->final, o->pair, NULL)) {
		st_bq_truncate(&sc->q, sc->q.commit);
		sc_acct(sc, old);
		return -ENOBUFS;
	}
	if (sh->cfg.load)
		sc_req_due(sc, o->due, o->tag, !o->pipelined);
	else if (sc->q.sent == sc->q.commit)
		sc->progress_ns = sh_now(sh); /* the stall clock starts with the first byte */
	sc->q.commit = sc->q.end;
	sc_acct(sc, old);
	sc_push_methods(sc);
	return 0;
}

void sh_dropped(struct st_shadow *sh, int err, struct st_cmp_pair *pair, unsigned target)
{
	if (err == -ENOBUFS) {
		sh->st.dropped++;
		sh->st.dropped_queue++;
	} else {
		sh_dropped_down(sh, target, 1);
	}
	if (pair)
		st_compare__pair_fail(pair, sc_side(target), ST_CMP_R_SHADOW_DROPPED);
}

void sh_deliver(struct cconn *cc, const struct sh_out *o)
{
	struct st_shadow *sh = cc->sh;
	/*
	 * Tap compare: every other request in the opposite slot order. Connections are written
	 * in the order they were marked, and the one written first gets its server running
	 * first (on a loaded host the other waits for the agent's turn to end): the candidate
	 * and the reference take turns.
	 */
	bool flip = sh->cfg.compare && (cc->delivered++ & 1);
	unsigned i, s;

	for (i = 0; i < sh->nslots; i++) {
		struct sconn *sc;
		int err;

		s = flip ? sh->nslots - 1 - i : i;
		if (cc->sc[s])
			cc->sc[s]->last_sent = false;
		if (!slot_on(cc, s))
			continue;
		sc = cc_sconn(cc, s);
		err = !sc ? -EIO : o->m ? h2_push(sc, o) : h1_push(cc, sc, o);
		if (err) {
			sh_dropped(sh, err, o->pair, s / sh->cfg.multiply);
			if (sh->cfg.load && !o->m)
				sh_load_dropped(sh, s, o->tag, o->due);
			continue;
		}
		sc->last_sent = true;
		if (o->final)
			sc_detach(sc);
		sc_mark(sc);
	}
}

static void lc_request(struct cconn *cc, const struct pend *e);

/* A released HTTP/1 request. Not keep-alive: the shadow closes after answering; later
 * requests need a new connection. A load test's is due at due (it waits there until then);
 * its bytes are the stage's [e->start, e->end), or flat (a load test's cache: e->end is its
 * length). */
static void deliver(struct cconn *cc, const struct pend *e, uint64_t due, const uint8_t *flat)
{
	struct sh_out o = {
		.start = e->start, .end = e->end, .method = e->method, .pair = e->pair, .ex = e->ex,
		.final = !(e->flags & (ST_HTTP_HF_KEEP_ALIVE | ST_HTTP_HF_UPGRADE)),
		.flat = flat, .due = due, .tag = e->tag, .pipelined = e->pipelined,
	};

	if (!flat)
		lc_request(cc, e); /* a load test's first pass: kept for the next ones */
	sh_deliver(cc, &o);
}

/* Raw bytes (raw mode, or after a switch) go out as they come. */
static void raw_bytes(struct cconn *cc, const uint8_t *p, size_t n)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];
		uint64_t old;

		if (!sc || !sc->raw)
			continue;
		old = sc_mem(sc);
		if (!sc_fits(sc, st_bq_cost(&sc->q, n)) || st_bq_append(&sc->q, p, n)) {
			/* a byte stream cannot skip bytes: this shadow connection ends here */
			sc_acct(sc, old);
			sh->st.raw_closed++;
			sh->st.dropped++;
			sh->st.dropped_queue++;
			sc_close(sc, false);
			continue;
		}
		if (sc->q.sent == sc->q.commit)
			sc->progress_ns = sh_now(sh);
		sc->q.commit = sc->q.end;
		sc_acct(sc, old);
		sc_mark(sc);
	}
}

static void raw_close_all(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];

		if (sc && sc->raw) {
			sh->st.raw_closed++;
			sc_release(sc);
		}
	}
}

static void lc_record(struct cconn *cc, uint8_t kind, const struct pend *e);

/* The connection switched protocols after the request just released: raw from here. */
static void switch_raw(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	if (cc->c)
		lc_record(cc, LC_SWITCH, NULL);
	sh->st.upgrades++;
	cc->raw_live = true;
	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];

		if (!sc)
			continue;
		/* a load test replays requests, not tunnels */
		if (sc->last_sent && !sh->cfg.safe_only && !sh->cfg.load) {
			sc->raw = true;
			sc_noretain(sc);
		} else {
			sc_release(sc);
		}
	}
}

static void http_feed(struct cconn *cc, const uint8_t *buf, size_t len);

/*
 * Production refused the Upgrade (an ordinary answer, e.g. 200 to an h2c offer): the
 * client's bytes after the request are HTTP again. Frame the held ones anew.
 */
static void upgrade_refused(struct cconn *cc, uint64_t from)
{
	uint64_t n = cc->stage.end - from, o = 0;
	uint8_t *tmp = n ? malloc((size_t)n) : NULL;

	cc->holding = false;
	st_http__reset(&cc->req);
	if (!n)
		return;
	if (!tmp) {
		cc_stop(cc);
		return;
	}
	/* take the held bytes out of the stage, then frame them as the requests they are */
	o = st_bq_copy(&cc->stage, from, cc->stage.end, tmp);
	stage_truncate(cc, from);
	if (o == n)
		http_feed(cc, tmp, (size_t)n);
	else
		cc_stop(cc);
	free(tmp);
}

/* Whether the connection switched to h2c after the offering request e: 1, 0, or -1 (not
 * known yet). */
static int h2c_decision(struct cconn *cc, const struct pend *e)
{
	uint8_t buf[ST_H2_PREFACE_LEN];
	uint64_t n = cc->stage.end - e->end;
	enum st_h2_detect d;

	if (cc->arbiter)
		return e->verdict == V_RUN && e->switched && e->to_h2;
	/* production's answers are not followed: the client's next bytes say (after the 101 it
	 * sends the connection preface, RFC 7540 3.2; refused, its next request) */
	if (n > sizeof(buf))
		n = sizeof(buf);
	for (uint64_t o = 0; o < n;) {
		struct iovec iov[4];
		int k = st_bq_iov(&cc->stage, e->end + o, e->end + n, iov, 4);

		if (k <= 0)
			return -1;
		for (int i = 0; i < k; i++) {
			memcpy(buf + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	d = st_h2_detect(buf, (size_t)n);
	return d == ST_H2_DETECT_YES ? 1 : d == ST_H2_DETECT_NO ? 0 : -1;
}

/*
 * The connection is HTTP/2 from here: the offering request is stream 1 (counted already, as
 * the request it is), the HTTP/1 shadow connections finish what they have, and the client's
 * bytes held since the request go to the framer.
 */
static void h2c_switch(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	uint64_t end = pe_at(cc, 0)->end, held = cc->stage.end;
	unsigned s;

	pe_pop(cc);
	cc->holding = false;
	for (s = 0; s < sh->nslots; s++)
		if (cc->sc[s])
			sc_release(cc->sc[s]);
	cc->mode = CM_H2;
	cc->prod_h2 = true;
	port_mark(sh->h2_ports, cc->c->key.dport);
	cc_h2_upgraded(cc);
	for (uint64_t o = end; o < held;) {
		struct iovec iov[16];
		int k = st_bq_iov(&cc->stage, o, held, iov, 16);

		if (!k)
			break;
		for (int i = 0; i < k; i++) {
			cc_h2_feed(cc, ST_DIR_IN, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	stage_release(cc, held);
}

/* Entries leave the stage in order, as production's verdicts (or framing, without the
 * arbiter) allow. */
static void cc_release(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;

	while (cc->pe_n && cc->mode == CM_HTTP) {
		struct pend *e = pe_at(cc, 0);
		bool upgrade, held;
		uint64_t end, due = 0;

		if (e->verdict == V_REJECT) {
			/* production refused it and hung up: it, and whatever came after, never ran
			 * (a filtered or dropped one is counted already) */
			if (!e->damaged && e->pass)
				sh->st.prod_rejected++;
			pe_pop(cc);
			cc_stop(cc);
			return;
		}
		if (e->damaged && (e->state == PE_DONE || cc->req_dead)) {
			/* never sent (counted when damaged); its verdict, if it comes, can still
			 * end the connection (prod_answer) */
			pe_pop(cc);
			continue;
		}
		if (e->state != PE_DONE || (cc->arbiter && e->verdict == V_NONE))
			return;
		upgrade = e->flags & ST_HTTP_HF_UPGRADE;
		held = upgrade && cc->arbiter;
		if (e->h2c) {
			int d = h2c_decision(cc, e);

			if (d < 0)
				return;
			if (d > 0 && cc_h2_offered(cc)) {
				h2c_switch(cc);
				return;
			}
			if (d > 0) {
				/* production speaks HTTP/2 on it, and the offer could not be followed */
				sh->st.h2_errors++;
				sh->st.h2_error_other++;
				cc_stop(cc);
				return;
			}
			/* production refused the offer: an HTTP/1.1 request like any other, and
			 * what the client sent after it is HTTP/1.1 again */
			e->h2c = false;
			cc_h2_free(cc);
			held = true;
			if (cc->prod_h2) {
				/* production switched, the client did not: we disagree with both */
				cc_stop(cc);
				return;
			}
		}
		if (sh->cfg.load && e->pass && !e->damaged) {
			due = sh->cfg.load->due(sh->cfg.load_ctx, e->ts, sh_now(sh));
			if (due == ST_SHADOW_NEVER) {
				/* past the test's end: neither sent nor compared */
				sh->st.past_end++;
				e->pass = false;
				if (e->pair) {
					st_compare__pair_release(e->pair, -1, ST_CMP_R_NONE);
					e->pair = NULL;
				}
			}
		}
		if (e->pair && !e->damaged) {
			/* released: its answers are compared, or counted as not compared */
			st_compare__pair_count(e->pair);
			if (!e->pass)
				for (unsigned s = 0; s < sh->nslots; s++)
					st_compare__pair_fail(e->pair, sc_side(s), ST_CMP_R_SHADOW_DROPPED);
		}
		if (e->pass && !e->damaged)
			deliver(cc, e, due, NULL);
		end = e->end;
		if (held) {
			bool switched = e->switched;

			pe_pop(cc);
			if (switched) {
				uint64_t upto = cc->stage.end;

				cc->holding = false;
				switch_raw(cc);
				/* the bytes the client sent after the request, in order */
				for (uint64_t o = end; o < upto;) {
					struct iovec iov[16];
					int k = st_bq_iov(&cc->stage, o, upto, iov, 16);

					if (!k)
						break;
					for (int i = 0; i < k; i++) {
						raw_bytes(cc, iov[i].iov_base, iov[i].iov_len);
						o += iov[i].iov_len;
					}
				}
				stage_release(cc, upto);
				return;
			}
			stage_release(cc, end);
			upgrade_refused(cc, end);
			continue;
		}
		pe_pop(cc);
		stage_release(cc, end);
	}
}

/* ---- production's answers: the arbiter -------------------------------------------------- */

/* Production refused the message itself: the status codes servers give malformed requests. */
bool sh_refusal_status(unsigned status)
{
	switch (status) {
	case 400: /* Bad Request (nginx: bad framing, bad header, no Host) */
	case 411: /* Length Required */
	case 413: /* Content Too Large */
	case 414: /* URI Too Long */
	case 431: /* Request Header Fields Too Large */
	case 501: /* Not Implemented (nginx: an unknown Transfer-Encoding) */
	case 505: /* HTTP Version Not Supported */
		return true;
	default:
		return false;
	}
}

/* ---- tap compare: production's answers ---------------------------------------------------- */

/* The pairs waiting for production's answers will not get them (why); nor will later ones. */
static void cor_lost(struct cconn *cc);

void cc_cmp_lost(struct cconn *cc, enum st_cmp_reason why)
{
	cor_lost(cc);
	if (!cc->sh->cfg.compare)
		return;
	if (!cc->pairing_lost)
		cc->pairing_lost = (uint8_t)why;
	if (cc->prod_pair) {
		st_compare__pair_release(cc->prod_pair, ST_CMP_PROD, why);
		cc->prod_pair = NULL;
	}
	while (cc->pq_n) {
		st_compare__pair_release(cc->pq[cc->pq_head].pair, ST_CMP_PROD, why);
		cc->pq_head = (cc->pq_head + 1) % ST_HTTP_METHOD_QUEUE;
		cc->pq_n--;
	}
}

/* A request selected for replay: a pair, waiting for production's answer (the request's
 * number on the connection is the number of that answer). */
static void cmp_request(struct cconn *cc, struct pend *e, const struct st_http_head *h)
{
	struct st_cmp_pair *p = st_compare__pair_new(cc->sh->cfg.compare, h);

	e->pair = p;
	if (!p)
		return;
	if (cc->pairing_lost) {
		st_compare__pair_fail(p, ST_CMP_PROD, (enum st_cmp_reason)cc->pairing_lost);
		return;
	}
	if (!cc->pq && !(cc->pq = malloc(ST_HTTP_METHOD_QUEUE * sizeof(*cc->pq)))) {
		st_compare__pair_fail(p, ST_CMP_PROD, ST_CMP_R_MEMORY);
		return;
	}
	if (cc->pq_n == ST_HTTP_METHOD_QUEUE) {
		/* deeper pipelining than production's answers can be followed for */
		st_compare__pair_fail(p, ST_CMP_PROD, ST_CMP_R_PROD_UNFRAMED);
		return;
	}
	st_compare__pair_get(p);
	cc->pq[(cc->pq_head + cc->pq_n) % ST_HTTP_METHOD_QUEUE] =
		(struct pq_ent){ .no = cc->req_index - 1, .pair = p };
	cc->pq_n++;
}

/* ---- --correlate: production's answers -------------------------------------------------- */

struct st_correlate_ex *sh_cor_ex_new(struct st_shadow *sh)
{
	return st_correlate_ex_new(sh->nslots, &sh->cor_held,
				   sh->cfg.correlate->max_mem ? sh->cfg.correlate->max_mem :
				   (uint64_t)ST_CORRELATE_MAX_MB_DEFAULT << 20);
}

/* A request selected for replay: an exchange, waiting for production's answer as a pair
 * does (cmp_request). */
static void cor_request(struct cconn *cc, struct pend *e)
{
	struct st_shadow *sh = cc->sh;
	struct st_correlate_ex *x = sh_cor_ex_new(sh);

	e->ex = x;
	if (!x || cc->cor_lost || cc->cq_n == ST_HTTP_METHOD_QUEUE)
		return;
	if (!cc->cq && !(cc->cq = malloc(ST_HTTP_METHOD_QUEUE * sizeof(*cc->cq))))
		return;
	st_correlate_ex_get(x);
	cc->cq[(cc->cq_head + cc->cq_n) % ST_HTTP_METHOD_QUEUE] =
		(struct pq_cor){ .no = cc->req_index - 1, .ex = x };
	cc->cq_n++;
}

static void cor_lost(struct cconn *cc)
{
	cc->cor_lost = true;
	st_correlate_ex_put(cc->prod_ex);
	cc->prod_ex = NULL;
	while (cc->cq_n) {
		st_correlate_ex_put(cc->cq[cc->cq_head].ex);
		cc->cq_head = (cc->cq_head + 1) % ST_HTTP_METHOD_QUEUE;
		cc->cq_n--;
	}
}

static void cor_prod_head(struct cconn *cc, const struct st_http_head *h)
{
	uint64_t idx = cc->verdicts;

	st_correlate_ex_put(cc->prod_ex);
	cc->prod_ex = NULL;
	while (cc->cq_n && cc->cq[cc->cq_head].no <= idx) {
		struct pq_cor q = cc->cq[cc->cq_head];

		cc->cq_head = (cc->cq_head + 1) % ST_HTTP_METHOD_QUEUE;
		cc->cq_n--;
		if (q.no == idx) {
			cc->prod_ex = q.ex;
			st_correlate_ans_head(&q.ex->prod, cc->sh->cfg.correlate, h);
			return;
		}
		st_correlate_ex_put(q.ex);
	}
}

struct cor_explain {
	struct st_cmp_pair *pair;
	enum st_cmp_side side;
};

static void cor_explained(void *ctx, const char *pv, size_t pn, const char *tv, size_t tn)
{
	struct cor_explain *e = ctx;

	st_compare__pair_correlated(e->pair, e->side, pv, pn, tv, tn);
}

/* Both answers of slot are in: learned from; with tap compare, what the map knows of
 * production's answer goes to the pair (pair: NULL, or one still held). */
static void cor_learn(struct st_shadow *sh, struct st_correlate_ex *x, unsigned slot,
		      struct st_cmp_pair *pair)
{
	uint64_t now = sh_now(sh);

	if (st_correlate__learn(sh->cor[slot], &x->prod, &x->tgt[slot], now))
		sh->cor_wake = true;
	st_correlate_ans_free(&x->tgt[slot]);
	if (pair) {
		struct cor_explain e = { pair, sc_side(slot / sh->cfg.multiply) };

		st_correlate__explain(sh->cor[slot], &x->prod, now, cor_explained, &e);
	}
}

/* Production's answer is whole: its values are expected from the targets it went to, and
 * learned from the answers already in. */
static void cor_prod_done(struct cconn *cc, struct st_cmp_pair *pair)
{
	struct st_correlate_ex *x = cc->prod_ex;

	if (!x)
		return;
	cc->prod_ex = NULL;
	sh_cor_prod_done(cc, x, pair);
	st_correlate_ex_put(x);
}

void sh_cor_prod_done(struct cconn *cc, struct st_correlate_ex *x, struct st_cmp_pair *pair)
{
	struct st_shadow *sh = cc->sh;
	uint64_t now = sh_now(sh);

	x->prod.done = true;
	for (unsigned s = 0; s < sh->nslots; s++) {
		if (!slot_on(cc, s))
			continue;
		st_correlate__expect(sh->cor[s], &x->prod, now);
		if (x->tgt[s].done) /* the target answered first (production's bytes were in the ring) */
			cor_learn(sh, x, s, pair);
	}
}

void sh_cor_tgt_done(struct st_shadow *sh, struct st_correlate_ex *x, unsigned slot,
		     struct st_cmp_pair *pair)
{
	x->tgt[slot].done = true;
	if (x->prod.done) /* else learned from when production's answer is whole */
		cor_learn(sh, x, slot, pair);
}

/* Production's final answer number cc->verdicts starts: the pair of that request, if any. */
static void cmp_prod_head(struct cconn *cc, const struct st_http_head *h)
{
	uint64_t idx = cc->verdicts;

	if (cc->prod_pair) { /* the previous answer never ended: cannot happen when framed */
		st_compare__pair_release(cc->prod_pair, ST_CMP_PROD, ST_CMP_R_PROD_UNFRAMED);
		cc->prod_pair = NULL;
	}
	while (cc->pq_n && cc->pq[cc->pq_head].no <= idx) {
		struct pq_ent *q = &cc->pq[cc->pq_head];

		cc->pq_head = (cc->pq_head + 1) % ST_HTTP_METHOD_QUEUE;
		cc->pq_n--;
		if (q->no == idx) {
			cc->prod_pair = q->pair; /* the reference moves with it */
			st_compare__pair_head(q->pair, ST_CMP_PROD, h, cc->prod_msg_ts);
			return;
		}
		st_compare__pair_release(q->pair, ST_CMP_PROD, ST_CMP_R_PROD_UNFRAMED);
	}
}

static void cmp_prod_done(struct cconn *cc)
{
	if (!cc->prod_pair)
		return;
	st_compare__pair_done(cc->prod_pair, ST_CMP_PROD);
	st_compare__pair_release(cc->prod_pair, ST_CMP_PROD, ST_CMP_R_PROD_UNANSWERED);
	cc->prod_pair = NULL;
}

/*
 * Production's answers cannot be followed any more. When production's own bytes say
 * something we cannot pair (an answer that is not HTTP, an answer to a request we never
 * framed) we disagree with production about this connection: it ends here. When the
 * capture lost bytes of them (a gap framing cannot step over), production said nothing
 * wrong: the connection goes on, released on strict framing alone, as when no answers are
 * captured at all.
 */
static void arbiter_lost(struct cconn *cc, bool capture_damage)
{
	if (cc->prod_dead)
		return;
	cc->prod_dead = true;
	cc_cmp_lost(cc, capture_damage ? ST_CMP_R_PROD_GAP : ST_CMP_R_PROD_UNFRAMED);
	if (!cc->arbiter)
		return; /* advisory only on this connection */
	cc->sh->st.arbiter_lost++;
	if (capture_damage) {
		cc->arbiter = false;
		cc_release(cc);
		return;
	}
	cc_stop(cc);
}

/*
 * Production's final answer to the oldest request without one. Refused: a
 * status servers give malformed requests, or any error after which production
 * hangs up on a connection the request wanted kept (an error that closes a
 * connection the client itself asked to close says nothing about framing).
 */
static void prod_answer(struct cconn *cc, const struct st_http_head *h)
{
	struct pend *e;
	uint64_t idx;
	bool hung_up;

	if (h->flags & ST_HTTP_HF_INTERIM)
		return; /* 100 Continue and friends: not an answer */
	e = pe_verdict_slot(cc);
	idx = cc->verdicts++;
	hung_up = h->status >= 400 && !(h->flags & ST_HTTP_HF_KEEP_ALIVE);
	if (hung_up && e && !(e->flags & ST_HTTP_HF_KEEP_ALIVE))
		hung_up = false;
	if (!e) {
		/* released already (no arbiter on this connection): a refusal still ends the
		 * replay, since production runs nothing after it */
		if (idx < cc->popped) {
			if (sh_refusal_status(h->status) || hung_up)
				cc_stop(cc);
			return;
		}
		/* past what we framed: production answering the request we could not frame
		 * (its refusal, most likely) is expected; otherwise we disagree with it */
		if (!cc->req_dead)
			arbiter_lost(cc, false);
		return;
	}
	e->verdict = sh_refusal_status(h->status) || hung_up ? V_REJECT : V_RUN;
	if ((h->flags & ST_HTTP_HF_UPGRADE) && e->verdict == V_RUN) {
		e->switched = true;
		e->to_h2 = e->h2c && st_h2_upgrade_accepted(h);
	}
}

static void prod_feed(struct cconn *cc, const uint8_t *buf, size_t len)
{
	struct st_http_event ev;

	while (!cc->prod_raw && !cc->prod_dead) {
		const uint8_t *p = buf;
		size_t n;

		if (len && cc->prod_at_start) {
			cc->prod_msg_ts = cc->cur_ts; /* an answer's first byte */
			cc->prod_at_start = false;
		}
		n = st_http__feed(&cc->prod, buf, len, &ev);
		buf += n;
		len -= n;
		switch (ev.type) {
		case ST_HTTP_EV_NEED_MORE:
			return;
		case ST_HTTP_EV_HEAD:
			if (ev.head->flags & ST_HTTP_HF_NO_REQUEST) {
				/* an answer to nothing we framed: expected after we stopped framing
				 * (production refusing what we could not frame), else a disagreement */
				if (cc->req_dead) {
					cc->prod_dead = true;
					cc_cmp_lost(cc, ST_CMP_R_PROD_UNFRAMED);
				} else {
					arbiter_lost(cc, false);
				}
				return;
			}
			if (cc->sh->cfg.compare && !(ev.head->flags & ST_HTTP_HF_INTERIM))
				cmp_prod_head(cc, ev.head);
			if (cc->sh->cor && !(ev.head->flags & ST_HTTP_HF_INTERIM))
				cor_prod_head(cc, ev.head);
			prod_answer(cc, ev.head);
			cc_release(cc);
			if (cc->mode == CM_H2)
				cc_h2_feed(cc, ST_DIR_OUT, buf, len); /* h2c: its bytes after the 101 */
			if (cc->mode != CM_HTTP)
				return;
			break;
		case ST_HTTP_EV_BODY:
			if (cc->prod_pair && ev.data_len)
				st_compare__pair_body(cc->prod_pair, ST_CMP_PROD, p, n);
			if (cc->prod_ex && ev.data_len)
				st_correlate_ans_body(&cc->prod_ex->prod, p, n);
			break;
		case ST_HTTP_EV_MSG_DONE:
			cc->prod_at_start = true;
			if (!(ev.head->flags & ST_HTTP_HF_INTERIM)) {
				cc->prod_done++;
				cor_prod_done(cc, cc->prod_pair); /* while the pair is held */
				cmp_prod_done(cc);
			}
			break;
		case ST_HTTP_EV_UPGRADED:
			cc->prod_raw = true;
			cc_cmp_lost(cc, ST_CMP_R_UPGRADE);
			if (cc_h2_offered(cc)) {
				/* h2c, the client's side not switched yet (its next bytes decide): the
				 * framer follows production from here */
				cc->prod_h2 = true;
				cc_h2_feed(cc, ST_DIR_OUT, buf, len);
			} else if (cc->pe_n && pe_at(cc, 0)->h2c) {
				/* the 101 came before the request was whole: cannot be followed */
				arbiter_lost(cc, false);
			}
			return;
		case ST_HTTP_EV_ERROR:
			arbiter_lost(cc, false);
			return;
		default:
			break;
		}
	}
}

/* Production's side is over (FIN, RST): what it did not answer, it never will. */
static void prod_end(struct cconn *cc)
{
	struct st_http_event ev;

	if (cc->mode != CM_HTTP || cc->prod_raw || cc->prod_dead)
		return;
	st_http__feed_eof(&cc->prod, &ev);
	if (ev.type == ST_HTTP_EV_MSG_DONE) {
		cor_prod_done(cc, cc->prod_pair);
		cmp_prod_done(cc); /* an answer read until the close */
	}
	cc_cmp_lost(cc, ST_CMP_R_PROD_UNANSWERED);
	if (cc->arbiter && cc->pe_n) {
		struct pend *e = pe_verdict_slot(cc);

		if (e) /* the rest was never answered */
			cc_stop(cc);
	}
}

/* ---- client requests --------------------------------------------------------------------- */

bool sh_rate_ok(struct st_shadow *sh)
{
	uint64_t now;
	double burst;

	if (sh->cfg.rate <= 0)
		return true;
	now = sh_now(sh);
	burst = sh->cfg.rate < 1 ? 1 : sh->cfg.rate;
	if (sh->tokens_ns)
		sh->tokens += (double)(now - sh->tokens_ns) * sh->cfg.rate / 1e9;
	else
		sh->tokens = burst;
	sh->tokens_ns = now;
	if (sh->tokens > burst)
		sh->tokens = burst;
	if (sh->tokens < 1)
		return false;
	sh->tokens -= 1;
	return true;
}

static bool path_match(struct st_shadow *sh, const struct sh_req *r)
{
	if (!sh->cfg.match_path && !sh->cfg.exclude_path)
		return true;
	if (r->target_len + 1 > sh->pbuf_size) {
		char *n = realloc(sh->pbuf, r->target_len + 1);

		if (!n)
			return false;
		sh->pbuf = n;
		sh->pbuf_size = r->target_len + 1;
	}
	memcpy(sh->pbuf, r->target, r->target_len);
	sh->pbuf[r->target_len] = 0;
	if (sh->cfg.match_path && regexec(sh->cfg.match_path, sh->pbuf, 0, NULL, 0))
		return false;
	if (sh->cfg.exclude_path && !regexec(sh->cfg.exclude_path, sh->pbuf, 0, NULL, 0))
		return false;
	return true;
}

bool sh_select(struct st_shadow *sh, struct cconn *cc, const struct sh_req *r)
{
	const struct st_shadow_config *cfg = &sh->cfg;

	/* --safe-only: no gRPC method is known to be safe (every call is a POST); the operator
	 * names those that are with --match-path */
	if (cfg->safe_only && r->method != ST_HTTP_M_GET && r->method != ST_HTTP_M_HEAD &&
	    r->method != ST_HTTP_M_OPTIONS && !(r->grpc && cfg->match_path))
		return false;
	if (cfg->n_methods) {
		unsigned i;

		for (i = 0; i < cfg->n_methods; i++)
			if (strlen(cfg->methods[i]) == r->method_len &&
			    !memcmp(cfg->methods[i], r->method_str, r->method_len))
				break;
		if (i == cfg->n_methods)
			return false;
	}
	if (cfg->sample_by_request && cfg->sample_pct < 100 &&
	    (double)(st_mix64(cc->hash ^ cc->req_index) % 10000) >= cfg->sample_pct * 100)
		return false;
	return path_match(sh, r);
}

static bool selected(struct st_shadow *sh, struct cconn *cc, const struct st_http_head *h)
{
	struct sh_req r = {
		.method = (uint8_t)h->method, .method_str = h->method_str,
		.method_len = h->method_len, .target = h->target, .target_len = h->target_len,
	};

	return sh_select(sh, cc, &r);
}

/* The head to send: rewritten (marker, --host, --set-header) or as received. */
static const char *head_bytes(struct st_shadow *sh, const struct st_http_head *h, size_t *len)
{
	size_t need = (size_t)h->raw_len + 2 * (size_t)h->nheaders + 64;
	unsigned i;

	if (!sh->rewrite) {
		*len = h->raw_len;
		return h->raw;
	}
	for (i = 0; i < sh->rw.nset; i++)
		need += strlen(sh->rw.set[i].name) + strlen(sh->rw.set[i].value) + 4;
	if (sh->rw.host)
		need += strlen(sh->rw.host) + 8;
	if (sh->rw.marker_name)
		need += strlen(sh->rw.marker_name) + strlen(sh->rw.marker_value) + 4;
	for (i = 0; i < 4; i++) {
		ssize_t n;

		if (need > sh->hbuf_size) {
			char *b = realloc(sh->hbuf, need);

			if (!b)
				return NULL;
			sh->hbuf = b;
			sh->hbuf_size = need;
		}
		n = st_http_rewrite_head(h, &sh->rw, sh->hbuf, sh->hbuf_size);
		if (n >= 0) {
			*len = (size_t)n;
			return sh->hbuf;
		}
		if (n != -ENOSPC)
			return NULL;
		need *= 2;
	}
	return NULL;
}

static void msg_head(struct cconn *cc, const struct st_http_head *h)
{
	struct st_shadow *sh = cc->sh;
	struct pend *e;
	const char *hb;
	size_t hl = 0;
	unsigned n;

	sh->st.requests++;
	cc->req_index++;
	e = pe_push(cc);
	if (e && !cc->prod_raw && !cc->prod_dead && st_http__push_method(&cc->prod, h->method)) {
		/* deeper pipelining than production's answers can be followed for */
		arbiter_lost(cc, false);
		if (cc->mode != CM_HTTP)
			return;
	}
	if (!e) {
		sh->st.gaps_skipped++;
		sh->st.arbiter_lost++;
		cc_stop(cc);
		return;
	}
	e->method = (uint8_t)h->method;
	e->flags = h->flags;
	/* an offer to switch to h2c: stream 1 of a framer kept aside until production answers */
	if ((h->flags & ST_HTTP_HF_UPGRADE) && sh->cfg.proto != ST_PROTO_RAW && !sh->cfg.load &&
	    st_h2_upgrade_requested(h) && !cc_h2_offer_start(cc))
		e->h2c = true;
	if (!selected(sh, cc, h)) {
		sh->st.filtered++;
		return;
	}
	if (sh->cfg.compare)
		cmp_request(cc, e, h);
	if (sh->cor)
		cor_request(cc, e);
	n = cc_slots_on(cc);
	if (!sh_rate_ok(sh)) {
		sh->st.dropped += n;
		sh->st.dropped_rate += n;
		return;
	}
	hb = head_bytes(sh, h, &hl);
	if (!hb) {
		sh->st.errors++;
		sh->st.dropped += n;
		sh->st.dropped_down += n;
		return;
	}
	e->pass = true;
	if (sh->cfg.load) {
		e->tag = sh->cfg.load->tag(sh->cfg.load_ctx, h);
		e->ts = cc->cur_ts;
		/* what the recording says of the client: it sent this one before production had
		 * answered the one before (that needs production's answers to be followed) */
		e->pipelined = sh->prod_segments && !cc->prod_raw && !cc->prod_dead &&
			       cc->prod_done + 1 < cc->req_index;
	}
	if (stage_append(cc, hb, hl))
		pe_drop_queue(cc, e);
	e->end = cc->stage.end;
}

static void msg_body(struct cconn *cc, const uint8_t *p, size_t n, uint64_t data_len)
{
	struct pend *e = pe_last(cc);

	if (!e || e->state != PE_FRAMING)
		return;
	if (e->pair && data_len)
		st_compare__pair_req_body(e->pair, p, n);
	if (e->h2c && data_len)
		cc_h2_offer_body(cc, p, n);
	if (!e->pass)
		return;
	if (stage_append(cc, p, n))
		pe_drop_queue(cc, e);
	e->end = cc->stage.end;
}

static void msg_done(struct cconn *cc, const struct st_http_head *h)
{
	struct pend *e = pe_last(cc);

	if (!e || e->state != PE_FRAMING)
		return;
	e->state = PE_DONE;
	if (e->pair)
		st_compare__pair_req_done(e->pair, cc->cur_ts);
	/* (an offer that cannot be set up is found out if production takes it) */
	if (e->h2c)
		cc_h2_offer(cc, h, e->pass && !e->damaged);
	/* until production says whether it switched; an h2c offer without production's answers:
	 * until the client's next bytes say */
	if ((e->flags & ST_HTTP_HF_UPGRADE) && (cc->arbiter || e->h2c))
		cc->holding = true;
	cc_release(cc);
}

/* A framing error: the client stream can no longer be followed as production follows it. */
static void req_error(struct cconn *cc, enum st_http_err err)
{
	struct st_shadow *sh = cc->sh;
	struct pend *e = pe_last(cc);
	uint64_t *reason = NULL;

	sh->st.malformed++;
	switch (err) {
	case ST_HTTP_E_START_LINE: reason = &sh->st.malformed_start_line; break;
	case ST_HTTP_E_VERSION: reason = &sh->st.malformed_version; break;
	case ST_HTTP_E_HEADER: reason = &sh->st.malformed_header; break;
	case ST_HTTP_E_OBS_FOLD: reason = &sh->st.malformed_obs_fold; break;
	case ST_HTTP_E_BARE_CR: reason = &sh->st.malformed_bare_cr; break;
	case ST_HTTP_E_BARE_LF: reason = &sh->st.malformed_bare_lf; break;
	case ST_HTTP_E_HEAD_TOO_LARGE: reason = &sh->st.malformed_head_too_large; break;
	case ST_HTTP_E_TOO_MANY_HEADERS: reason = &sh->st.malformed_too_many_headers; break;
	case ST_HTTP_E_CONTENT_LENGTH: reason = &sh->st.malformed_content_length; break;
	case ST_HTTP_E_TRANSFER_ENCODING: reason = &sh->st.malformed_transfer_encoding; break;
	case ST_HTTP_E_CL_AND_TE: reason = &sh->st.malformed_cl_and_te; break;
	case ST_HTTP_E_CHUNK: reason = &sh->st.malformed_chunk; break;
	case ST_HTTP_E_TRAILER: reason = &sh->st.malformed_trailer; break;
	default: break;
	}
	if (reason)
		(*reason)++;
	if (e && e->state == PE_FRAMING)
		pe_damage(cc, e);
	if (sh->cfg.resync) {
		/* the operator's choice: go on at the next request line, without the arbiter */
		st_http__resync(&cc->req, false);
		cc->arbiter = false;
		sh->st.resyncs++;
		cc_cmp_lost(cc, ST_CMP_R_PROD_UNFRAMED); /* requests and answers no longer line up */
		return;
	}
	cc_req_dead(cc); /* what was framed before still waits for its answers */
	if (!cc->pe_n || (e && e->damaged && cc->pe_n == 1))
		cc_stop(cc);
}

static void http_feed(struct cconn *cc, const uint8_t *buf, size_t len)
{
	struct st_http_event ev;

	while (!cc->req_dead && cc->mode == CM_HTTP) {
		size_t n = st_http__feed(&cc->req, buf, len, &ev);
		const uint8_t *p = buf;

		buf += n;
		len -= n;
		switch (ev.type) {
		case ST_HTTP_EV_NEED_MORE:
			return;
		case ST_HTTP_EV_HEAD:
			msg_head(cc, ev.head);
			break;
		case ST_HTTP_EV_BODY:
			if (n)
				msg_body(cc, p, n, ev.data_len);
			break;
		case ST_HTTP_EV_MSG_DONE:
			msg_done(cc, ev.head);
			break;
		case ST_HTTP_EV_UPGRADED:
			/* production's answer is not awaited: assume it switched (an h2c offer: the
			 * client's next bytes say) */
			if (!cc->arbiter && !cc->holding)
				switch_raw(cc);
			break;
		case ST_HTTP_EV_RAW:
			if (cc->holding) {
				if (stage_append(cc, p, n))
					cc_stop(cc); /* cannot hold more: the tunnel is not replayed */
				else if (!cc->arbiter)
					cc_release(cc); /* an h2c offer: these bytes may decide */
			} else if (cc->raw_live) {
				raw_bytes(cc, p, n);
			}
			break;
		case ST_HTTP_EV_ERROR:
			req_error(cc, ev.err);
			if (!cc->sh->cfg.resync)
				return;
			break;
		default:
			break;
		}
	}
}

/* ---- connections ------------------------------------------------------------------------- */

static void http_start(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;

	cc->mode = CM_HTTP;
	cc->arbiter = sh->cfg.release == ST_RELEASE_ANSWERED && !sh->no_arbiter;
	sh->st.http++;
	port_mark(sh->http_ports, cc->c->key.dport);
}

/* The client's first bytes are the HTTP/2 connection preface. */
static void h2_start(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;

	cc->mode = CM_H2;
	cc->arbiter = sh->cfg.release == ST_RELEASE_ANSWERED && !sh->no_arbiter;
	sh->st.h2++;
	port_mark(sh->http_ports, cc->c->key.dport);
	port_mark(sh->h2_ports, cc->c->key.dport);
	if (sh->cfg.load) {
		/* a load test paces and times HTTP/1 requests: HTTP/2 connections are skipped */
		sh->st.skipped_conns++;
		cc->mode = CM_OFF;
		return;
	}
	if (cc_h2_start(cc)) {
		sh->st.errors++;
		sh->st.skipped_conns++;
		cc->mode = CM_OFF;
	}
}

/* Starts raw replay of the connection on every slot it is shared with. */
static void raw_start(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	cc->mode = CM_RAW;
	sh->st.raw++;
	if (sh->cfg.safe_only || sh->cfg.load || (cc->c->flags & ST_REASM_F_JOINED)) {
		/* a byte stream joined midway cannot be replayed; raw writes are not "safe"; a
		 * load test times requests, which a byte stream does not have */
		cc->mode = CM_OFF;
		sh->st.skipped_conns++;
		return;
	}
	for (s = 0; s < sh->nslots; s++) {
		if (!slot_on(cc, s))
			continue;
		cc->sc[s] = sc_new(sh, cc, s, SK_RAW);
		if (!cc->sc[s])
			sh_dropped_down(sh, s / sh->cfg.multiply, 1);
	}
}

static bool port_speaks_http(const struct st_shadow *sh, uint16_t port)
{
	return port_has(sh->http_ports, port);
}

/* Not a request on an HTTP service: garbage is never turned into a raw replay. */
static void not_http(struct cconn *cc)
{
	cc->sh->st.not_http++;
	cc->sh->st.skipped_conns++;
	cc->mode = CM_OFF;
}

/*
 * What the first client bytes say (cc->det holds them, all of them once the connection ended:
 * final): HTTP/2's preface, an HTTP/1 request line, or neither. 0 when more bytes are needed.
 */
static int detect(struct cconn *cc, bool final)
{
	struct st_shadow *sh = cc->sh;
	enum st_shadow_proto p = sh->cfg.proto;
	enum st_h2_detect d = st_h2_detect(cc->det, cc->det_len);
	enum st_http_scan r = ST_HTTP_SCAN_NONE;
	size_t off = 0;

	if (d == ST_H2_DETECT_MAYBE && !final)
		return 0;
	if (d == ST_H2_DETECT_YES) {
		h2_start(cc);
		if (cc->mode == CM_H2)
			cc_h2_feed(cc, ST_DIR_IN, cc->det, cc->det_len);
		if (cc->mode == CM_H2 && cc->pdet_lost)
			cc_h2_gap(cc);
		else if (cc->mode == CM_H2 && cc->pdet_len)
			cc_h2_feed(cc, ST_DIR_OUT, cc->pdet, cc->pdet_len);
		return 1;
	}
	if (p == ST_PROTO_H2) {
		not_http(cc);
		return 1;
	}
	if (p == ST_PROTO_HTTP) {
		http_start(cc);
		http_feed(cc, cc->det, cc->det_len);
		return 1;
	}
	r = st_http__scan_start(ST_HTTP_REQUEST, cc->det, cc->det_len, DETECT_MAX, &off);
	if (r == ST_HTTP_SCAN_PARTIAL && off == 0 && cc->det_len < DETECT_MAX && !final)
		return 0;
	if (r == ST_HTTP_SCAN_FOUND && off == 0) {
		http_start(cc);
		http_feed(cc, cc->det, cc->det_len);
	} else if (port_speaks_http(sh, cc->c->key.dport)) {
		not_http(cc);
	} else {
		/* too few bytes to tell, or not HTTP: replayed as they were */
		raw_start(cc);
		if (cc->mode == CM_RAW)
			raw_bytes(cc, cc->det, cc->det_len);
	}
	return 1;
}

static void cc_data(struct cconn *cc, const uint8_t *data, uint32_t len)
{
	struct st_shadow *sh = cc->sh;

	if (cc->mode == CM_DETECT) {
		enum st_shadow_proto p = sh->cfg.proto;

		if (cc->c->flags & ST_REASM_F_JOINED) {
			/* an HTTP/2 connection joined midway: its HPACK tables are lost, and what
			 * they would decode is never guessed at */
			bool h2 = p == ST_PROTO_H2 || port_has(sh->h2_ports, cc->c->key.dport);

			if (h2)
				sh->st.h2_joined++;
			if (h2 || p == ST_PROTO_RAW || !sh->cfg.resync) {
				/* no request boundary to start at that production's answers confirm */
				sh->st.joined++;
				sh->st.skipped_conns++;
				cc->mode = CM_OFF;
				return;
			}
			http_start(cc);
			cc->arbiter = false;
			st_http__resync(&cc->req, true);
			sh->st.resyncs++;
			cc_cmp_lost(cc, ST_CMP_R_PROD_UNFRAMED); /* joined midway: nothing lines up */
		} else if (p == ST_PROTO_RAW) {
			raw_start(cc);
		} else {
			uint32_t n = len < DETECT_MAX - cc->det_len ? len : DETECT_MAX - cc->det_len;
			int done;

			if (!cc->det && !(cc->det = malloc(DETECT_MAX))) {
				cc->mode = CM_OFF;
				return;
			}
			memcpy(cc->det + cc->det_len, data, n);
			cc->det_len += n;
			data += n;
			len -= n;
			done = detect(cc, false);
			if (!done)
				return;
			free(cc->det);
			free(cc->pdet);
			cc->det = cc->pdet = NULL;
			cc->det_len = cc->pdet_len = 0;
		}
	}
	if (!len)
		return;
	if (cc->mode == CM_HTTP)
		http_feed(cc, data, len);
	else if (cc->mode == CM_H2)
		cc_h2_feed(cc, ST_DIR_IN, data, len);
	else if (cc->mode == CM_RAW)
		raw_bytes(cc, data, len);
}

static void cc_gap(struct cconn *cc, uint64_t len)
{
	struct st_shadow *sh = cc->sh;
	struct pend *e;

	switch (cc->mode) {
	case CM_DETECT:
		/* the first bytes are missing: the protocol cannot be told, nor a start found */
		free(cc->det);
		cc->det = NULL;
		cc->det_len = 0;
		if (sh->cfg.proto == ST_PROTO_RAW || sh->cfg.proto == ST_PROTO_H2 ||
		    !sh->cfg.resync) {
			cc->mode = CM_OFF;
			sh->st.skipped_conns++;
			return;
		}
		http_start(cc);
		cc->arbiter = false;
		st_http__resync(&cc->req, true);
		sh->st.resyncs++;
		cc_cmp_lost(cc, ST_CMP_R_PROD_UNFRAMED);
		return;
	case CM_HTTP:
		if (cc->req_dead)
			return;
		if (cc->holding || cc->raw_live) {
			/* a tunnel cannot skip bytes: it ends here */
			raw_close_all(cc);
			cc_stop(cc);
			return;
		}
		e = pe_last(cc);
		if (!st_http__skip(&cc->req, len)) {
			/* inside a body of known length: that request is lost, framing goes on */
			if (e && e->state == PE_FRAMING)
				pe_damage(cc, e);
			return;
		}
		if (e && e->state == PE_FRAMING)
			pe_damage(cc, e);
		else if (st_http__pending(&cc->req)) {
			/* a head cut by the gap: a request we will never see whole */
			sh->st.requests++;
			sh->st.gaps_skipped++;
		}
		if (sh->cfg.resync) {
			st_http__resync(&cc->req, true);
			cc->arbiter = false;
			sh->st.resyncs++;
			cc_cmp_lost(cc, ST_CMP_R_PROD_UNFRAMED);
			return;
		}
		/* framing is lost: what is already framed still waits for production's answers */
		cc_req_dead(cc);
		if (!cc->pe_n || (cc->pe_n == 1 && e && e->damaged))
			cc_stop(cc);
		return;
	case CM_RAW:
		raw_close_all(cc);
		cc->mode = CM_OFF;
		return;
	case CM_H2:
		cc_h2_gap(cc);
		return;
	default:
		return;
	}
}

/* ---- a load test's pass cache (shadow.h) ------------------------------------------------------ */

/* Room for one more record and n more bytes within the cap, or the cache is given up. */
static bool lc_room(struct st_shadow *sh, size_t n)
{
	struct lcache *lc = &sh->lc;

	if (!lc->on || lc->full)
		return false;
	if (lc->n == lc->cap || lc->len + n > lc->bcap) {
		size_t cap = lc->n == lc->cap ? (lc->cap ? lc->cap * 2 : 1024) : lc->cap;
		size_t bcap = lc->len + n > lc->bcap ? (lc->bcap ? lc->bcap * 2 : 65536) : lc->bcap;
		struct lc_rec *r;
		uint8_t *b;

		while (bcap < lc->len + n)
			bcap *= 2;
		if (cap * sizeof(*r) + bcap > sh->cfg.load_cache_max ||
		    !(r = realloc(lc->rec, cap * sizeof(*r)))) {
			lc->full = true; /* passes read the recording again */
			return false;
		}
		lc->rec = r;
		lc->cap = cap;
		if (!(b = realloc(lc->buf, bcap))) {
			lc->full = true;
			return false;
		}
		lc->buf = b;
		lc->bcap = bcap;
	}
	return true;
}

static void lc_record(struct cconn *cc, uint8_t kind, const struct pend *e)
{
	struct st_shadow *sh = cc->sh;
	struct lcache *lc = &sh->lc;
	uint64_t len = e ? e->end - e->start : 0;
	struct lc_rec *r;

	if (!cc->c || !lc_room(sh, (size_t)len))
		return;
	r = &lc->rec[lc->n++];
	memset(r, 0, sizeof(*r));
	r->conn = cc->lc_no;
	r->kind = kind;
	if (!e)
		return;
	r->method = e->method;
	r->pipelined = e->pipelined;
	r->flags = e->flags;
	r->tag = e->tag;
	r->ts = e->ts;
	r->off = lc->len;
	lc->nreq++;
	r->len = len;
	for (unsigned s = 0; s < sh->nslots && s < 8; s++)
		if (slot_on(cc, s))
			r->slots |= (uint8_t)(1u << s);
	lc->len += st_bq_copy(&cc->stage, e->start, e->end, lc->buf + lc->len);
}

static void lc_request(struct cconn *cc, const struct pend *e)
{
	lc_record(cc, LC_REQ, e);
}

bool st_shadow__cache_ready(const struct st_shadow *sh)
{
	/* (a pass without a request would go round without end) */
	return !sh->lc.full && sh->lc.nreq && (sh->lc.on || sh->lc.vc);
}

/* A cached pass's connection ends: its shadow connections finish what they have. */
static void lc_end(struct st_shadow *sh, uint32_t no)
{
	struct cconn *cc = sh->lc.vc[no];

	if (!cc)
		return;
	for (unsigned s = 0; s < sh->nslots; s++)
		if (cc->sc[s])
			sc_release(cc->sc[s]);
	sh->lc.vc[no] = NULL;
	free(cc);
}

/* Every connection of the cached pass ends (a flush, the pass's end). */
static void lc_end_all(struct st_shadow *sh)
{
	for (uint32_t i = 0; sh->lc.vc && i < sh->lc.nconn; i++)
		lc_end(sh, i);
}

void st_shadow__cache_rewind(struct st_shadow *sh)
{
	struct lcache *lc = &sh->lc;
	struct st_reasm_stats rs;

	lc_end_all(sh);
	lc->on = false; /* recording is over: the first pass is what it keeps */
	lc->next = 0;
	if (!lc->vc && !(lc->vc = calloc(lc->nconn ? lc->nconn : 1, sizeof(*lc->vc)))) {
		lc->full = true;
		return;
	}
	/* connection ids go on after the recording's (a cached pass has no reassembly) */
	st_reasm__stats(sh->r, &rs);
	if (lc->id_base < rs.conns + 1)
		lc->id_base = rs.conns + 1;
	lc->id_base += lc->nconn;
	sh_kick(sh);
	sh_free_dead(sh);
}

bool st_shadow__cache_ts(const struct st_shadow *sh, uint64_t *ts)
{
	const struct lcache *lc = &sh->lc;

	/* a connection's end has no time of its own: the next request's */
	for (size_t i = lc->next; i < lc->n; i++)
		if (lc->rec[i].kind == LC_REQ) {
			*ts = lc->rec[i].ts;
			return true;
		}
	if (lc->next < lc->n) {
		*ts = 0;
		return true;
	}
	return false;
}

void st_shadow__cache_feed(struct st_shadow *sh)
{
	struct lcache *lc = &sh->lc;
	const struct lc_rec *r;
	struct cconn *cc;
	struct pend e;
	uint64_t due;

	if (lc->next >= lc->n || !lc->vc)
		return;
	r = &lc->rec[lc->next++];
	if (r->kind == LC_CLOSE) {
		lc_end(sh, r->conn);
		return;
	}
	cc = lc->vc[r->conn];
	if (r->kind == LC_SWITCH) {
		if (cc)
			switch_raw(cc);
		return;
	}
	if (!cc) {
		cc = calloc(1, sizeof(*cc) + sh->nslots * (sizeof(struct sconn *) + 1));
		if (!cc) {
			sh->st.errors++;
			return;
		}
		cc->sh = sh;
		cc->id = lc->id_base + r->conn;
		cc->mode = CM_HTTP;
		cc->sflags = (uint8_t *)&cc->sc[sh->nslots];
		for (unsigned s = 0; s < sh->nslots && s < 8; s++)
			if (r->slots & (1u << s))
				cc->sflags[s] = SL_ON;
		lc->vc[r->conn] = cc;
	}
	sh->st.requests++;
	due = sh->cfg.load->due(sh->cfg.load_ctx, r->ts, sh_now(sh));
	if (due == ST_SHADOW_NEVER) {
		sh->st.past_end++;
		return;
	}
	memset(&e, 0, sizeof(e));
	e.method = r->method;
	e.flags = r->flags;
	e.tag = r->tag;
	e.pipelined = r->pipelined;
	e.end = r->len; /* its length; the bytes are the cache's */
	deliver(cc, &e, due, lc->buf + r->off);
}

/* ---- reassembly callbacks ----------------------------------------------------------------- */

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = calloc(1, sizeof(*cc) + sh->nslots * (sizeof(struct sconn *) + 1));
	struct st_http_opts ho = { .head_cap = sh->cfg.head_cap };
	unsigned s, h100;
	bool any = false;

	if (!cc) {
		sh->st.errors++;
		return;
	}
	cc->sh = sh;
	cc->c = c;
	cc->id = c->id;
	cc->lc_no = sh->lc.nconn++;
	cc->sflags = (uint8_t *)&cc->sc[sh->nslots];
	cc->hash = conn_hash(&c->key);
	cc->prod_at_start = true;
	st_http__init(&cc->req, ST_HTTP_REQUEST, &ho);
	st_http__init(&cc->prod, ST_HTTP_RESPONSE, NULL);
	c->user = cc;
	sh->st.connections++;
	h100 = (unsigned)(st_mix64(cc->hash ^ 0x7461726765747321ull) % 100);
	for (s = 0; s < sh->nslots; s++) {
		const struct target_state *t = &sh->ts[s / sh->cfg.multiply];

		if (!sh->cfg.targets[s / sh->cfg.multiply].pct || (h100 >= t->lo && h100 < t->hi)) {
			cc->sflags[s] |= SL_ON;
			any = true;
		}
	}
	if (!any || (!sh->cfg.sample_by_request && sh->cfg.sample_pct < 100 &&
		     (double)(cc->hash % 10000) >= sh->cfg.sample_pct * 100)) {
		cc->mode = CM_OFF;
		sh->st.skipped_conns++;
	}
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		    uint32_t len, uint64_t ts)
{
	struct cconn *cc = c->user;

	if (!cc || cc->mode == CM_OFF)
		return;
	cc->cur_ts = ts;
	if (dir == ST_DIR_OUT && cc->mode == CM_DETECT) {
		/* production spoke first (an HTTP/2 server's SETTINGS): kept for the framer */
		if (!cc->pdet_lost && !cc->pdet && !(cc->pdet = malloc(DETECT_MAX)))
			cc->pdet_lost = true;
		if (!cc->pdet_lost && len <= DETECT_MAX - cc->pdet_len) {
			memcpy(cc->pdet + cc->pdet_len, data, len);
			cc->pdet_len += len;
		} else {
			cc->pdet_lost = true;
		}
		return;
	}
	if (dir == ST_DIR_IN)
		cc_data(cc, data, len);
	else if (cc->mode == CM_H2 || cc->prod_h2)
		cc_h2_feed(cc, ST_DIR_OUT, data, len);
	else if (cc->mode == CM_HTTP)
		prod_feed(cc, data, len);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = c->user;

	if (!cc)
		return;
	if (dir == ST_DIR_IN) {
		sh->st.gap_bytes += len;
		if (cc->mode != CM_OFF)
			cc_gap(cc, len);
		return;
	}
	if (cc->mode == CM_DETECT)
		cc->pdet_lost = true;
	/* HTTP/2: production's HPACK state is lost, and with it every later stream's verdict */
	if (cc->mode == CM_H2 || cc->prod_h2) {
		cc_h2_gap(cc);
		return;
	}
	/* production's answers: a gap inside a body of known length changes nothing (but that
	 * answer cannot be compared) */
	if (cc->mode == CM_HTTP && !cc->prod_raw && !cc->prod_dead) {
		if (st_http__skip(&cc->prod, len)) {
			arbiter_lost(cc, true);
		} else {
			if (cc->prod_pair) {
				st_compare__pair_release(cc->prod_pair, ST_CMP_PROD, ST_CMP_R_PROD_GAP);
				cc->prod_pair = NULL;
			}
			st_correlate_ex_put(cc->prod_ex); /* not learned from */
			cc->prod_ex = NULL;
		}
	}
}

static void on_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	struct cconn *cc = c->user;

	if (!cc)
		return;
	if (cc->mode == CM_H2 || (dir == ST_DIR_OUT && cc->prod_h2))
		cc_h2_end(cc, dir);
	else if (dir == ST_DIR_OUT)
		prod_end(cc);
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = c->user;
	unsigned s;

	if (!cc)
		return;
	if (cc->mode == CM_DETECT && cc->det_len)
		detect(cc, true); /* too few bytes to tell what they are */
	if (cc->mode == CM_H2)
		cc_h2_close(cc);
	if (cc->mode == CM_HTTP) {
		struct pend *e = pe_last(cc);

		/* a request cut by the end of the stream */
		if (e && e->state == PE_FRAMING)
			pe_damage(cc, e);
		if (!cc->arbiter)
			cc_release(cc);
		cc_drop_pending(cc); /* whatever production did not answer */
		cc->mode = CM_OFF;
	}
	cc_cmp_lost(cc, ST_CMP_R_PROD_UNANSWERED);
	lc_record(cc, LC_CLOSE, NULL);
	free(cc->pq);
	free(cc->cq);
	for (s = 0; s < sh->nslots; s++)
		if (cc->sc[s])
			sc_release(cc->sc[s]);
	st_http__free(&cc->req);
	st_http__free(&cc->prod);
	{
		uint64_t old = st_bq_mem(&cc->stage);

		st_bq_free(&cc->stage);
		stage_acct(cc, old);
	}
	for (uint32_t i = 0; i < cc->pe_n; i++) {
		struct pend *e = pe_at(cc, i);

		if (e->pair)
			st_compare__pair_release(e->pair, -1, ST_CMP_R_NONE);
		st_correlate_ex_put(e->ex);
	}
	free(cc->pe);
	free(cc->det);
	free(cc->pdet);
	cc_h2_free(cc);
	c->user = NULL;
	free(cc);
}

static const struct st_reasm_ops shadow_ops = {
	.open = on_open,
	.data = on_data,
	.gap = on_gap,
	.end = on_end,
	.close = on_close,
};

/* ---- the engine ----------------------------------------------------------------------------- */

struct st_shadow *st_shadow__new(const struct st_shadow_config *cfg)
{
	struct st_shadow *sh = calloc(1, sizeof(*sh));
	struct st_reasm_config rc = { 0 };
	unsigned t, acc = 0;
	int err;

	if (!sh)
		return NULL;
	sh->cfg = *cfg;
	sh->epfd = -1;
	st_list_init(&sh->live);
	st_list_init(&sh->dead);
	st_list_init(&sh->dirty);
	st_list_init(&sh->rd_pending);
	st_list_init(&sh->conn_wait);
	st_list_init(&sh->cor_waiting);
	if (!sh->cfg.multiply)
		sh->cfg.multiply = 1;
	if (!sh->cfg.conn_queue_max)
		sh->cfg.conn_queue_max = ST_SHADOW_CONN_QUEUE_DEFAULT;
	if (!sh->cfg.max_queue)
		sh->cfg.max_queue = ST_SHADOW_MAX_QUEUE_DEFAULT;
	if (sh->cfg.sample_pct <= 0 || sh->cfg.sample_pct > 100)
		sh->cfg.sample_pct = 100;
	sh->nslots = sh->cfg.n_targets * sh->cfg.multiply;
	if (!sh->cfg.n_targets || sh->nslots > ST_SHADOW_MAX_SLOTS) {
		free(sh);
		errno = EINVAL;
		return NULL;
	}
	for (t = 0; t < sh->cfg.n_targets; t++) {
		if (!sh->cfg.targets[t].pct)
			continue;
		sh->ts[t].lo = acc;
		acc += sh->cfg.targets[t].pct;
		sh->ts[t].hi = acc > 100 ? 100 : acc;
	}
	sh->rw.set = sh->cfg.set;
	sh->rw.nset = sh->cfg.n_set;
	sh->rw.host = sh->cfg.host;
	sh->rw.marker_name = sh->cfg.mark_name;
	sh->rw.marker_value = sh->cfg.mark_value ? sh->cfg.mark_value : "1";
	if (!sh->cfg.mark_name)
		sh->rw.marker_value = NULL;
	sh->rewrite = sh->rw.nset || sh->rw.host || sh->rw.marker_name;
	sh->lc.on = sh->cfg.load && sh->cfg.load_cache_max && !sh->cfg.compare;
	sh->rbuf = malloc(ST_SH_READ_BUF);
	sh->epfd = epoll_create1(EPOLL_CLOEXEC);
	/* 1 us to 1 h at 3 significant digits: a few tens of KiB */
	if (st_hdr_init(&sh->answer_us, 1, 3600ull * 1000000, 3))
		goto fail;
	rc.ports = sh->cfg.ports;
	rc.n_ports = sh->cfg.n_ports;
	rc.max_mem = sh->cfg.reasm_max_mem;
	rc.hash_seed = sh->cfg.hash_seed;
	sh->r = st_reasm__new(&rc, &shadow_ops, sh);
	if (!sh->rbuf || sh->epfd < 0 || !sh->r)
		goto fail;
	if (sh->cfg.correlate) {
		uint64_t seed = st_mix64(sh->cfg.hash_seed ^ st_loop_mono_ns() ^ (uintptr_t)sh);

		sh->cor = calloc(sh->nslots, sizeof(*sh->cor));
		if (!sh->cor)
			goto fail;
		for (unsigned i = 0; i < sh->nslots; i++)
			if (!(sh->cor[i] = st_correlate__new(sh->cfg.correlate, st_mix64(seed + i))))
				goto fail;
	}
	return sh;
fail:
	err = errno ? errno : ENOMEM;
	st_shadow__free(sh);
	errno = err;
	return NULL;
}

void st_shadow__free(struct st_shadow *sh)
{
	if (!sh)
		return;
	/* no callbacks: captured connections are freed by hand below */
	if (sh->r) {
		st_reasm__flush(sh->r);
		st_reasm__free(sh->r);
	}
	sh_close_all(sh);
	while (!st_list_empty(&sh->dirty))
		st_list_del_init(sh->dirty.next);
	while (!st_list_empty(&sh->rd_pending))
		st_list_del_init(sh->rd_pending.next);
	sh_free_dead(sh);
	if (sh->epfd >= 0)
		close(sh->epfd);
	lc_end_all(sh);
	free(sh->lc.vc);
	free(sh->lc.rec);
	free(sh->lc.buf);
	if (sh->cor)
		for (unsigned i = 0; i < sh->nslots; i++)
			st_correlate__free(sh->cor[i]);
	free(sh->cor);
	st_correlate_out_free(&sh->corout);
	st_correlate_h2out_free(&sh->corh2);
	free(sh->corfields);
	free(sh->corbuf);
	free(sh->own);
	free(sh->due_heap);
	st_hdr_free(&sh->answer_us);
	free(sh->hbuf);
	free(sh->pbuf);
	free(sh->rbuf);
	free(sh);
}

/*
 * With connection sampling, a connection left out costs nothing beyond this:
 * its segments never reach reassembly. The client->server key is known from
 * the capture direction, or (pcap) from the service's ports.
 */
static bool sampled_out(const struct st_shadow *sh, const struct st_segment *seg)
{
	struct st_flow_key k;
	bool swap;

	if (sh->cfg.sample_pct >= 100 || sh->cfg.sample_by_request)
		return false;
	if (seg->dir == ST_DIR_IN || seg->dir == ST_DIR_OUT) {
		swap = seg->dir == ST_DIR_OUT;
	} else {
		bool d = false, s_ = false;
		size_t i;

		for (i = 0; i < sh->cfg.n_ports; i++) {
			d |= seg->key.dport == sh->cfg.ports[i];
			s_ |= seg->key.sport == sh->cfg.ports[i];
		}
		if (d == s_)
			return false; /* cannot tell: reassembly decides */
		swap = s_;
	}
	if (!swap) {
		k = seg->key;
	} else {
		memset(&k, 0, sizeof(k));
		k.src = seg->key.dst;
		k.dst = seg->key.src;
		k.sport = seg->key.dport;
		k.dport = seg->key.sport;
	}
	return (double)(conn_hash(&k) % 10000) >= sh->cfg.sample_pct * 100;
}

void st_shadow__set_filter(struct st_shadow *sh, double sample_pct, const uint16_t *ports,
			   size_t n_ports)
{
	sh->cfg.sample_pct = sample_pct <= 0 || sample_pct > 100 ? 100 : sample_pct;
	sh->cfg.ports = ports;
	sh->cfg.n_ports = n_ports;
}

/* A server->client segment: the capture holds production's answers. */
static bool from_server(const struct st_shadow *sh, const struct st_segment *seg)
{
	if (seg->dir >= 0)
		return seg->dir == ST_DIR_OUT;
	for (size_t i = 0; i < sh->cfg.n_ports; i++)
		if (seg->key.sport == sh->cfg.ports[i])
			return true;
	return false;
}

bool st_shadow__own(const struct st_shadow *sh, const struct st_segment *seg)
{
	return sh_own_has(sh, &seg->key.src, seg->key.sport) ||
	       sh_own_has(sh, &seg->key.dst, seg->key.dport);
}

static void arbiter_off(void *ctx, struct st_reasm_conn *c)
{
	struct cconn *cc = c->user;

	(void)ctx;
	if (!cc || !cc->arbiter)
		return;
	if (cc->mode == CM_H2) {
		cc_h2_arbiter_off(cc);
		return;
	}
	if (cc->mode != CM_HTTP)
		return;
	cc->arbiter = false;
	cc_release(cc);
}

/* Releases, on strict framing alone, everything the arbiter was holding. */
static void drop_arbiter(struct st_shadow *sh)
{
	sh->no_arbiter = true;
	pr_warn("no server->client traffic in the capture after %" PRIu64 " requests: "
		"production's answers are missing (asymmetric routing, or a client-side-only pcap); "
		"requests are released on strict framing alone", sh->st.requests);
	st_reasm__foreach(sh->r, arbiter_off, sh);
}

void st_shadow__feed(struct st_shadow *sh, const struct st_segment *seg)
{
	if (st_shadow__own(sh, seg)) {
		sh->st.own_segments++;
		return;
	}
	if (sampled_out(sh, seg)) {
		sh->st.sampled_out_segments++;
		if ((seg->flags & (ST_TCP_SYN | ST_TCP_ACK)) == ST_TCP_SYN) {
			/* counted by their SYN (those joined midway are not) */
			sh->st.connections++;
			sh->st.skipped_conns++;
		}
		return;
	}
	if (!sh->prod_segments && from_server(sh, seg))
		sh->prod_segments++;
	st_reasm__feed(sh->r, seg);
	if (!sh->prod_segments && !sh->no_arbiter && sh->cfg.release == ST_RELEASE_ANSWERED &&
	    sh->st.requests >= NO_ARBITER_AFTER)
		drop_arbiter(sh);
	sh_free_dead(sh);
}

void st_shadow__flush(struct st_shadow *sh)
{
	if (!sh->prod_segments && !sh->no_arbiter && sh->cfg.release == ST_RELEASE_ANSWERED &&
	    sh->st.requests)
		drop_arbiter(sh);
	st_reasm__flush(sh->r);
	lc_end_all(sh);
	sh_kick(sh);
	sh_free_dead(sh);
}

void st_shadow__kick(struct st_shadow *sh)
{
	sh_kick(sh);
	sh_free_dead(sh);
}

int st_shadow__fd(const struct st_shadow *sh)
{
	return sh->epfd;
}

/* --correlate: values learned in this turn let waiting requests go at once. */
static void cor_wake(struct st_shadow *sh)
{
	if (!sh->cor_wake)
		return;
	sh_cor_run(sh, sh_now(sh));
	sh_kick(sh);
}

int st_shadow__io(struct st_shadow *sh)
{
	int r = sh_poll(sh, 0);

	cor_wake(sh);
	return r < 0 ? r : 0;
}

uint64_t st_shadow__due(struct st_shadow *sh, uint64_t now)
{
	return sh_due(sh, now);
}

int st_shadow__poll(struct st_shadow *sh, int timeout_ms)
{
	int r = sh_poll(sh, timeout_ms);

	cor_wake(sh);
	return r;
}

void st_shadow__tick(struct st_shadow *sh, uint64_t now_real_ns)
{
	uint64_t now = sh_now(sh);

	if (sh->cfg.live && now_real_ns)
		st_reasm__tick(sh->r, now_real_ns);
	if (sh->cor) {
		sh_cor_run(sh, now);
		if (now - sh->cor_expire_ns > 1000000000ull) {
			sh->cor_expire_ns = now;
			for (unsigned i = 0; i < sh->nslots; i++)
				st_correlate__expire(sh->cor[i], now);
		}
	}
	sh_kick(sh);
	sh_conn_timers(sh, now);
	if (sh->cfg.compare)
		st_compare__tick(sh->cfg.compare);
	if (now - sh->last_gc > GC_EVERY_NS) {
		sh->last_gc = now;
		sh_own_gc(sh, now);
	}
	if (!st_list_empty(&sh->rd_pending))
		sh_poll(sh, 0);
	sh_free_dead(sh);
}

bool st_shadow__idle(const struct st_shadow *sh)
{
	return st_list_empty(&sh->live);
}

bool st_shadow__busy(const struct st_shadow *sh)
{
	return sh->n_congested || sh->queued > sh->cfg.max_queue / 2 ||
	       (sh->cfg.compare && st_compare__busy(sh->cfg.compare));
}

void st_shadow__drain(struct st_shadow *sh, int timeout_ms)
{
	uint64_t end = st_loop_mono_ns() + (uint64_t)timeout_ms * 1000000;

	while (!st_list_empty(&sh->live) && st_loop_mono_ns() < end) {
		uint64_t now = st_loop_mono_ns(), next = sh->cfg.load ? sh_due(sh, now) : 0;
		int ms = 50;

		/* a load test's requests still due go at their time */
		if (next && next < now + 50000000ull)
			ms = (int)((next > now ? next - now : 0) / 1000000);
		sh_poll(sh, ms);
		st_shadow__tick(sh, 0);
	}
	sh_close_all(sh);
	sh_free_dead(sh);
}

const struct st_hdr *st_shadow__answer_latency(const struct st_shadow *sh)
{
	return &sh->answer_us;
}

void st_shadow__stats(const struct st_shadow *sh, struct st_shadow_stats *out)
{
	struct st_reasm_stats rs;

	*out = sh->st;
	out->shadow_conns = sh->n_live;
	out->queued = sh->queued;
	st_reasm__stats(sh->r, &rs);
	out->reasm_mem = rs.mem;
	out->reasm_mem_peak = rs.mem_peak;
	for (unsigned i = 0; sh->cor && i < sh->nslots; i++) {
		struct st_correlate_stats cs;

		st_correlate__stats(sh->cor[i], &cs);
		out->correlated_values += cs.learned;
		out->correlate_conflicts += cs.conflicts;
		out->correlate_evicted += cs.evicted;
		out->correlate_expired += cs.expired;
		out->correlate_entries += cs.entries;
		out->correlate_mem += cs.mem;
	}
	out->correlate_mem += sh->cor_held;
}

void st_shadow__brief(const struct st_shadow *sh, struct st_brief *b)
{
	struct st_shadow_stats s, *st = &s;

	st_shadow__stats(sh, &s);
	st_brief_add(b, "requests", st->requests, ST_BRIEF_RATE);
	st_brief_add(b, "replayed", st->replayed, ST_BRIEF_RATE);
	st_brief_add(b, "dropped", st->dropped, 0);
	st_brief_add(b, "down", st->dropped_down, ST_BRIEF_SUB);
	st_brief_add(b, "queue full", st->dropped_queue, ST_BRIEF_SUB);
	st_brief_add(b, "rate", st->dropped_rate, ST_BRIEF_SUB);
	st_brief_add(b, "answers", st->responses, ST_BRIEF_RATE);
	st_brief_add(b, "2xx", st->responses_2xx, ST_BRIEF_SUB);
	st_brief_add(b, "3xx", st->responses_3xx, ST_BRIEF_SUB);
	st_brief_add(b, "4xx", st->responses_4xx, ST_BRIEF_SUB);
	st_brief_add(b, "5xx", st->responses_5xx, ST_BRIEF_SUB);
	st_brief_add(b, "errors", st->errors, 0);
	st_brief_add(b, "queue", st->queued, ST_BRIEF_BYTES);
	st_brief_add(b, "of", sh->cfg.max_queue, ST_BRIEF_SUB | ST_BRIEF_BYTES);
}

void st_shadow__target_stats(const struct st_shadow *sh, unsigned i,
			     struct st_shadow_target_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!sh || i >= sh->cfg.n_targets)
		return;
	out->up = !sh->ts[i].down;
	out->downs = sh->ts[i].downs;
	out->dropped_down = sh->ts[i].dropped_down;
}

int st_shadow__correlate_dump(struct st_shadow *sh, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r = 0;

	if (!sh->cor)
		return 0;
	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	for (unsigned i = 0; i < sh->nslots && !r; i++) {
		char label[160];

		if (sh->cfg.multiply > 1)
			snprintf(label, sizeof(label), "%s#%u", sh->cfg.targets[i / sh->cfg.multiply].name,
				 i % sh->cfg.multiply);
		else
			snprintf(label, sizeof(label), "%s", sh->cfg.targets[i].name);
		r = st_correlate__dump(sh->cor[i], label, f);
	}
	if (fclose(f) || r)
		r = -ENOMEM;
	if (!r)
		r = st_output_replace(path, buf, len, ST_OUT_PRIVATE, 0600);
	free(buf);
	return r;
}

ST_STAT_TABLE_DEFINE(st_shadow_stat, struct st_shadow_stats, ST_SHADOW_STATS);

int st_shadow_parse_target(const char *s, struct st_shadow_target *t, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char buf[300], host[300], port[8], *slash, *end;
	unsigned long pct = 0;
	int r;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", s);
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		errno = 0;
		pct = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || pct < 1 || pct > 100) {
			snprintf(err, errlen, "'%s': the share after / must be 1..100", s);
			return -1;
		}
	}
	if (st_opts_split_hostport(buf, host, sizeof(host), port, sizeof(port)) || !*host)
		goto bad;
	t->pct = (unsigned)pct;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r || !ai) {
		snprintf(err, errlen, "'%s': cannot resolve %s: %s", s, host, gai_strerror(r));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not HOST:PORT[/PCT] (IPv6: [ADDR]:PORT)", s);
	return -1;
}

/* (faults work: a getter only, so the memory bound can be checked from the summary line;
 * the engine itself is untouched) */
