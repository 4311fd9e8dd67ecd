/* SPDX-License-Identifier: GPL-2.0-only */
/* The tee's framing: reassembly's events -> tee stream records, redacted (teeframe.h). */
#include "teeframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "loop.h"

ST_STAT_TABLE_DEFINE(st_teeframe_stat, struct st_teeframe_stats, ST_TEEFRAME_STATS);

/* A connection's treatment, decided at its first bytes. */
enum tmode {
	TM_UNDECIDED = 0,
	TM_HTTP,     /* framed and redacted */
	TM_RAW,      /* as is: --no-redact, or --raw for what is not HTTP */
	TM_HELD,     /* not HTTP and no --raw: its bytes are gaps */
	TM_DROPPED,  /* left out whole: its OPEN record could not go */
	TM_FILTERED, /* its first request did not pass --match-* / --exclude-path */
};

struct tconn {
	uint8_t mode;
	bool held[2];         /* framing failed: the rest of the direction is held back */
	bool parsers;
	bool first_req;       /* the first request's head was seen (the filters' decision) */
	bool ended[2];        /* END written (written again in a new stream after a reconnect) */
	bool resp_open;       /* a response's head came, its end not yet */
	bool nomark;          /* exchange boundaries can no longer be told (put_mark()) */
	uint64_t early_out;   /* answer bytes (offset) that came before the filters decided */
	uint8_t end_why[2];
	struct st_http_parser p[2];
	struct st_jredact jr[2]; /* the current message's JSON body (--redact-field) */
	struct st_tredact tr[2]; /* its chunked trailer section */
	uint64_t sent[2];     /* stream offset written up to (data and gaps) */
	uint64_t dropped[2];  /* bytes dropped since, announced as a gap before the next record */
};

struct st_teeframe {
	struct st_teeframe_config c;
	struct st_stream_enc *enc;
	bool filters;         /* --match-* or --exclude-path given */
	unsigned framed;      /* connections with HTTP parsers now (ST_TEEFRAME_MAX_FRAMED) */
	struct st_teeframe_stats st;
	uint8_t scratch[ST_HTTP_HEAD_CAP_DEFAULT];
	uint8_t *body;        /* JSON body bytes being redacted (grown as needed) */
	size_t body_cap;
};

/* Room for n more stream bytes (the caller's bound); when not, *why is the counter of its
 * reason. */
static bool room(struct st_teeframe *f, uint64_t n, uint64_t **why)
{
	switch (f->c.room ? f->c.room(f->c.ctx, n) : ST_TEEFRAME_ROOM) {
	case ST_TEEFRAME_ROOM:
		return true;
	case ST_TEEFRAME_NO_LINK:
		*why = &f->st.dropped_link;
		return false;
	case ST_TEEFRAME_NO_QUEUE:
		*why = &f->st.dropped_queue;
		return false;
	default:
		*why = &f->st.dropped_rate;
		return false;
	}
}

static void put_dropped(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc, int dir,
			uint64_t ts)
{
	if (!tc->dropped[dir])
		return;
	st_stream_enc__gap(f->enc, c->id, dir, tc->sent[dir], tc->dropped[dir], ST_SGAP_DROPPED,
			   ts);
	tc->sent[dir] += tc->dropped[dir];
	tc->dropped[dir] = 0;
}

static void put_data(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc, int dir,
		     const uint8_t *d, uint64_t n, uint64_t ts)
{
	uint64_t *why;

	if (!n)
		return;
	if (!room(f, n, &why)) {
		tc->dropped[dir] += n;
		(*why)++;
		f->st.dropped_records++;
		f->st.dropped_bytes += n;
		return;
	}
	put_dropped(f, c, tc, dir, ts);
	st_stream_enc__data(f->enc, c->id, dir, tc->sent[dir], d, (uint32_t)n, ts);
	tc->sent[dir] += n;
	f->st.bytes += n;
}

static void put_gap(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc, int dir,
		    uint64_t n, unsigned why, uint64_t ts)
{
	if (!n)
		return;
	put_dropped(f, c, tc, dir, ts);
	st_stream_enc__gap(f->enc, c->id, dir, tc->sent[dir], n, why, ts);
	tc->sent[dir] += n;
	if (why == ST_SGAP_HELD)
		f->st.held_bytes += n;
}

/* Everything of the direction up to stream offset upto not yet written becomes a held gap
 * (bytes a parser consumed but could not hand out: a partial head). */
static void hold_rest(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc, int dir,
		      uint64_t upto, uint64_t ts)
{
	uint64_t at = tc->sent[dir] + tc->dropped[dir];

	if (upto > at)
		put_gap(f, c, tc, dir, upto - at, ST_SGAP_HELD, ts);
}

/* A request's head is next in the client's direction: when every earlier request was answered
 * whole, the stream says so (MARK, stream.h) so that a receiver whose replay of the connection
 * stopped (a gap, a connection joined midway through Kafka) starts it again here. Framing has
 * been exact since the connection's first byte (framing errors hold the direction, and gaps
 * it stepped over had known lengths), so the boundary is production's, not a guess. */
static void put_mark(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc,
		     uint64_t ts)
{
	if (tc->nomark || tc->held[ST_DIR_IN] || tc->held[ST_DIR_OUT] || tc->resp_open ||
	    st_http__awaiting(&tc->p[ST_DIR_OUT]) || st_http__pending(&tc->p[ST_DIR_OUT]))
		return;
	put_dropped(f, c, tc, ST_DIR_IN, ts);
	put_dropped(f, c, tc, ST_DIR_OUT, ts);
	st_stream_enc__mark(f->enc, c->id, tc->sent[ST_DIR_IN], tc->sent[ST_DIR_OUT], ts);
	f->st.marks++;
}

/* The head, redacted, in f->scratch. */
static const uint8_t *redact_head(struct st_teeframe *f, const struct st_http_head *h, int dir)
{
	memcpy(f->scratch, h->raw, h->raw_len);
	f->st.redacted += st_redact_head(f->c.rules, h, dir == ST_DIR_IN, f->scratch);
	return f->scratch;
}

/* Body bytes of a JSON message, or framing bytes whose last trailer_len are a chunked body's
 * trailer section, redacted in a copy. NULL when out of memory. */
static const uint8_t *redact_body(struct st_teeframe *f, struct tconn *tc, int dir,
				  const uint8_t *d, size_t n, uint64_t trailer_len)
{
	if (n > f->body_cap) {
		uint8_t *b = realloc(f->body, n);

		if (!b)
			return NULL;
		f->body = b;
		f->body_cap = n;
	}
	memcpy(f->body, d, n);
	if (trailer_len)
		f->st.redacted += st_tredact_feed(&tc->tr[dir], f->c.rules,
						  f->body + n - trailer_len, trailer_len);
	else
		f->st.redacted += st_jredact_feed(&tc->jr[dir], f->c.rules, f->body, n);
	return f->body;
}

/* The connection's first request decides whether it is teed (--match-*, --exclude-path). */
static bool passes(struct st_teeframe *f, const struct st_http_head *h)
{
	char target[4096];
	size_t tl = h->target_len < sizeof(target) - 1 ? h->target_len : sizeof(target) - 1;
	bool ok = !f->c.n_methods;

	for (unsigned i = 0; i < f->c.n_methods; i++)
		if (strlen(f->c.methods[i]) == h->method_len &&
		    !memcmp(f->c.methods[i], h->method_str, h->method_len))
			ok = true;
	if (!ok)
		return false;
	memcpy(target, h->target, tl);
	target[tl] = 0;
	if (f->c.match && regexec(f->c.match, target, 0, NULL, 0))
		return false;
	if (f->c.exclude && !regexec(f->c.exclude, target, 0, NULL, 0))
		return false;
	return true;
}

/* The receiver sees the connection close before its first byte. */
static void filter_out(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc,
		       uint64_t ts)
{
	st_stream_enc__close(f->enc, c->id, ST_END_FLUSH, ts);
	tc->mode = TM_FILTERED;
	f->st.filtered_conns++;
	f->st.teed--;
}

/* With filters, nothing of a connection goes out before its first request's head decides:
 * answer bytes that come earlier (a server speaking first, an early error to a partial head)
 * wait unwritten, and the answer direction is held from there on (framing lost them). */
static bool before_filters(struct st_teeframe *f, struct tconn *tc, int dir, uint64_t upto)
{
	if (tc->mode != TM_HTTP || dir != ST_DIR_OUT || !f->filters || tc->first_req)
		return false;
	tc->held[dir] = true;
	tc->early_out = upto;
	return true;
}

static void frame(struct st_teeframe *f, struct st_reasm_conn *c, struct tconn *tc, int dir,
		  uint64_t off, const uint8_t *d, uint32_t len, uint64_t ts)
{
	struct st_http_parser *p = &tc->p[dir];
	struct st_http_event ev;
	size_t left = len;

	for (;;) {
		size_t n = st_http__feed(p, d, left, &ev);

		switch (ev.type) {
		case ST_HTTP_EV_HEAD:
			if (dir == ST_DIR_IN) {
				if (!tc->first_req) {
					tc->first_req = true;
					if (f->filters && !passes(f, ev.head)) {
						filter_out(f, c, tc, ts);
						return;
					}
					/* passed: answer bytes that came first go as held */
					hold_rest(f, c, tc, ST_DIR_OUT, tc->early_out, ts);
				}
				put_mark(f, c, tc, ts);
				if (st_http__push_method(&tc->p[1], ev.head->method))
					tc->nomark = true; /* answers no longer pair */
			} else {
				tc->resp_open = true;
				if (ev.head->flags & ST_HTTP_HF_NO_REQUEST)
					tc->nomark = true;
			}
			/* a body is scanned as JSON when declared, or when it looks like it */
			st_jredact_begin(&tc->jr[dir], f->c.rules, ev.head);
			st_tredact_reset(&tc->tr[dir]);
			put_data(f, c, tc, dir, redact_head(f, ev.head, dir), ev.head->raw_len, ts);
			break;
		case ST_HTTP_EV_BODY:
			if ((tc->jr[dir].on && ev.data_len) || ev.trailer_len) {
				const uint8_t *b = redact_body(f, tc, dir, d, n, ev.trailer_len);

				if (b) {
					put_data(f, c, tc, dir, b, n, ts);
				} else {
					/* never unredacted: the rest of the direction is held */
					tc->held[dir] = true;
					hold_rest(f, c, tc, dir, off + len, ts);
					return;
				}
			} else {
				put_data(f, c, tc, dir, d, n, ts);
			}
			break;
		case ST_HTTP_EV_RAW:
			if (f->c.raw)
				put_data(f, c, tc, dir, d, n, ts);
			else
				put_gap(f, c, tc, dir, n, ST_SGAP_HELD, ts);
			break;
		case ST_HTTP_EV_ERROR:
		case ST_HTTP_EV_SKIP:
			tc->held[dir] = true;
			hold_rest(f, c, tc, dir, off + len, ts);
			return;
		case ST_HTTP_EV_MSG_DONE:
			if (dir == ST_DIR_OUT)
				tc->resp_open = false;
			break;
		case ST_HTTP_EV_UPGRADED:
			tc->nomark = true;
			break;
		default:
			break;
		}
		d += n;
		left -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
	}
}

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = calloc(1, sizeof(*tc));
	uint64_t *why;

	f->st.connections++;
	c->user = tc;
	if (!tc) {
		f->st.dropped_conns++;
		return;
	}
	if (!room(f, 64, &why)) {
		tc->mode = TM_DROPPED;
		f->st.dropped_conns++;
		return;
	}
	tc->mode = f->c.rules->none ? TM_RAW : TM_UNDECIDED;
	if (f->c.rules->none)
		f->st.raw_conns++;
	st_stream_enc__open(f->enc, c, ts);
	f->st.teed++;
}

/* Not framed: as is with raw, else held back. */
static void not_framed(struct st_teeframe *f, struct tconn *tc)
{
	tc->mode = f->c.raw ? TM_RAW : TM_HELD;
	if (f->c.raw)
		f->st.raw_conns++;
	else
		f->st.held_conns++;
}

/* The first bytes of a connection say whether it speaks HTTP/1.x. */
static void decide(struct st_teeframe *f, struct tconn *tc, int dir, const uint8_t *d,
		   uint32_t len)
{
	const struct st_http_opts ho = { .head_cap = ST_TEEFRAME_HEAD_CAP };
	size_t o = 0;
	enum st_http_scan s = dir == ST_DIR_IN ?
		st_http__scan_start(ST_HTTP_REQUEST, d, len, 0, &o) : ST_HTTP_SCAN_NONE;

	if (s != ST_HTTP_SCAN_NONE && o == 0 && f->framed >= ST_TEEFRAME_MAX_FRAMED) {
		/* HTTP, but no room to frame it: held, never teed unredacted */
		tc->mode = TM_HELD;
		f->st.held_conns++;
		f->st.held_busy++;
		return;
	}
	if (s != ST_HTTP_SCAN_NONE && o == 0 &&
	    !st_http__init(&tc->p[0], ST_HTTP_REQUEST, &ho)) {
		if (!st_http__init(&tc->p[1], ST_HTTP_RESPONSE, &ho)) {
			tc->parsers = true;
			tc->mode = TM_HTTP;
			f->framed++;
			return;
		}
		st_http__free(&tc->p[0]);
	}
	not_framed(f, tc);
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = c->user;

	if (!tc || tc->mode == TM_DROPPED || tc->mode == TM_FILTERED)
		return;
	if (tc->mode == TM_UNDECIDED)
		decide(f, tc, dir, d, len);
	if (before_filters(f, tc, dir, off + len))
		return;
	if (tc->mode == TM_RAW)
		put_data(f, c, tc, dir, d, len, ts);
	else if (tc->mode == TM_HELD || tc->held[dir])
		put_gap(f, c, tc, dir, len, ST_SGAP_HELD, ts);
	else
		frame(f, c, tc, dir, off, d, len, ts);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = c->user;

	if (why != ST_GAP_ELIDED)
		f->st.gap_bytes += len;
	if (!tc || tc->mode == TM_DROPPED || tc->mode == TM_FILTERED)
		return;
	/* the first bytes never came: what follows cannot be told HTTP */
	if (tc->mode == TM_UNDECIDED)
		not_framed(f, tc);
	if (before_filters(f, tc, dir, off + len))
		return;
	if (tc->mode == TM_HTTP && !tc->held[dir] && st_http__skip(&tc->p[dir], len)) {
		/* framing cannot step over it: the rest of the direction is held back */
		tc->held[dir] = true;
		hold_rest(f, c, tc, dir, off, ts);
	}
	put_gap(f, c, tc, dir, len, why, ts);
}

static void on_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why,
		   uint64_t ts)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = c->user;

	if (!tc || tc->mode == TM_DROPPED || tc->mode == TM_FILTERED)
		return;
	/* a partial head at the end: consumed, never handed out */
	hold_rest(f, c, tc, dir, c->bytes[dir] + c->gap_bytes[dir], ts);
	put_dropped(f, c, tc, dir, ts);
	st_stream_enc__end(f->enc, c->id, dir, why, ts);
	tc->ended[dir] = true;
	tc->end_why[dir] = (uint8_t)why;
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = c->user;

	if (tc && tc->mode != TM_DROPPED && tc->mode != TM_FILTERED) {
		for (int d = 0; d < 2; d++) {
			hold_rest(f, c, tc, d, c->bytes[d] + c->gap_bytes[d], ts);
			put_dropped(f, c, tc, d, ts);
		}
		st_stream_enc__close(f->enc, c->id, why, ts);
	}
	if (tc && tc->parsers) {
		st_http__free(&tc->p[0]);
		st_http__free(&tc->p[1]);
		f->framed--;
	}
	free(tc);
	c->user = NULL;
}

const struct st_reasm_ops st_teeframe_ops = {
	.open = on_open, .data = on_data, .gap = on_gap, .end = on_end, .close = on_close,
};

/* A connection still open when the link came back: opened again in the new stream, joined
 * midway, with what it carried before as a gap the sender dropped. */
static void restart_conn(void *ctx, struct st_reasm_conn *c)
{
	struct st_teeframe *f = ctx;
	struct tconn *tc = c->user;
	struct st_reasm_conn o;
	uint64_t ts = st_loop_realtime_ns();

	if (!tc || tc->mode == TM_DROPPED || tc->mode == TM_FILTERED)
		return;
	o = *c;
	o.flags |= ST_REASM_F_JOINED;
	st_stream_enc__open(f->enc, &o, ts);
	for (int d = 0; d < 2; d++) {
		uint64_t total = tc->sent[d] + tc->dropped[d];

		if (total)
			st_stream_enc__gap(f->enc, c->id, d, 0, total, ST_SGAP_DROPPED, ts);
		tc->sent[d] = total;
		tc->dropped[d] = 0;
		if (tc->ended[d])
			st_stream_enc__end(f->enc, c->id, d, tc->end_why[d], ts);
	}
}

void st_teeframe__restart(struct st_teeframe *f, struct st_stream_enc *e, struct st_reasm *r)
{
	f->enc = e;
	st_reasm__foreach(r, restart_conn, f);
}

struct st_teeframe *st_teeframe__new(const struct st_teeframe_config *c,
				     struct st_stream_enc *enc)
{
	struct st_teeframe *f;

	if (!c->rules || !enc) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->c = *c;
	f->enc = enc;
	f->filters = c->n_methods || c->match || c->exclude;
	return f;
}

const struct st_teeframe_stats *st_teeframe__stats(const struct st_teeframe *f)
{
	return &f->st;
}

unsigned st_teeframe__framed(const struct st_teeframe *f)
{
	return f->framed;
}

void st_teeframe__free(struct st_teeframe *f)
{
	if (!f)
		return;
	free(f->body);
	free(f);
}
