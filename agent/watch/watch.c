/* SPDX-License-Identifier: GPL-2.0-only */
/* watch's HTTP/1 source: reassembly -> framing -> exchanges (watch.h). */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"
#include "http.h"
#include "watch_h2.h"

/* Server bytes held until the client's first bytes say which HTTP the connection speaks (an
 * HTTP/2 server may send its SETTINGS first). */
#define WATCH_HOLD_MAX 4096u

ST_STAT_TABLE_DEFINE(st_watch_stat, struct st_watch_stats, ST_WATCH_STATS);

enum wmode {
	WM_UNDECIDED = 0,
	WM_HTTP,
	WM_OTHER,    /* not HTTP/1.x: not measured */
	WM_BUSY,     /* max_conns were framed: not measured */
	WM_RAW,      /* switched protocols: measured up to the switch */
	WM_H2,       /* HTTP/2 (watch_h2.c) */
};

/* One exchange in flight: a request framed, its answer not yet complete. */
struct wx {
	uint32_t ep;
	uint8_t method;
	bool req_done;     /* its last byte came (req_last) */
	bool req_lost;     /* its end was lost: no latency, no size */
	uint64_t req_last;
	int64_t req_bytes;
};

struct wconn {
	const struct st_flow_key *key; /* the connection's (reassembly's, for its life) */
	uint8_t mode;
	bool lost[2];      /* the direction's framing was lost: resyncing until a head */
	bool fell_back;    /* handed to copy_whole */
	bool in_msg[2];    /* a message's first byte came */
	bool req_open;     /* the request req_cur is being read */
	bool req_raw;      /* the request parser went raw (an Upgrade asked for) */
	bool resp_head;    /* the oldest exchange's final answer has its head */
	bool resp_unpaired; /* the answer being read answers no request */
	bool resp_interim; /* the answer being read is a 1xx */
	uint16_t status;
	uint64_t msg_ts[2]; /* when the current message's first byte came */
	uint64_t resp_first;
	uint64_t q_first, q_next, req_cur; /* exchange numbers: [q_first, q_next) in flight */
	uint64_t q_pushed; /* the requests before it have their method in the answer parser */
	uint32_t qcap;     /* slots in q (a power of two, up to ST_WATCH_PIPELINE_MAX) */
	struct wx *q;
	struct st_http_parser p[2];
	struct st_watch_h2 *h2;  /* WM_H2 */
	struct st_watch_h2 *h2c; /* WM_HTTP: a request offered h2c, its answer not yet read */
	bool h2c_ok;             /* ... and a 101 accepted it: HTTP/2 after the answer */
	uint8_t *held;           /* WM_UNDECIDED: the server's bytes before the client's */
	uint32_t held_len;
	uint64_t held_ts;
};

struct st_watch {
	struct st_watch_config cfg;
	struct st_watch_agg agg;
	struct st_watch_stats st;
	unsigned framed;   /* connections with parsers now */
	uint8_t h2_ports[65536 / 8]; /* service ports where HTTP/2 was seen */
};

static bool port_has(const uint8_t *set, uint16_t port)
{
	return set[port >> 3] & (1u << (port & 7));
}

struct st_watch *st_watch__new(const struct st_watch_config *cfg)
{
	struct st_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cfg = *cfg;
	if (!w->cfg.max_conns)
		w->cfg.max_conns = ST_WATCH_MAX_CONNS_DEFAULT;
	if (st_watch_agg_init(&w->agg, &cfg->agg)) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	return w;
}

void st_watch__free(struct st_watch *w)
{
	if (!w)
		return;
	st_watch_agg_free(&w->agg);
	free(w);
}

void st_watch__stats(const struct st_watch *w, struct st_watch_stats *out)
{
	*out = w->st;
	out->series = w->agg.ns + w->agg.grpc_cells + (w->agg.overflow ? ST_WATCH_CLASS_SERIES : 0);
	for (unsigned i = 0; !w->agg.overflow && i < ST_WATCH_CLASS_SERIES; i++)
		out->series += w->agg.cls[i].n > 0;
	out->endpoints = w->agg.nep - 1;
	out->other_endpoint = w->agg.other_ep;
	out->overflow = w->agg.overflow + w->agg.grpc_overflow;
}

const struct st_watch_agg *st_watch__agg(const struct st_watch *w)
{
	return &w->agg;
}

/* ---- exchanges ------------------------------------------------------------------------------ */

static struct wx *qat(struct wconn *wc, uint64_t seq)
{
	return &wc->q[seq & (wc->qcap - 1)];
}

/* Room for one more request. */
static bool q_room(struct wconn *wc)
{
	uint64_t used = wc->q_next - wc->q_first;
	struct wx *n;
	uint32_t ncap;

	if (used < wc->qcap)
		return true;
	if (wc->qcap >= ST_WATCH_PIPELINE_MAX)
		return false;
	ncap = wc->qcap ? wc->qcap * 2 : 2;
	n = malloc(ncap * sizeof(*n));
	if (!n)
		return false;
	/* the ring's order is by number: copy each to its new slot */
	for (uint64_t s = wc->q_first; s < wc->q_next; s++)
		n[s & (ncap - 1)] = *qat(wc, s);
	free(wc->q);
	wc->q = n;
	wc->qcap = ncap;
	return true;
}

/* The answer parser frames by its requests' methods (HEAD's answer has no body) and holds
 * ST_HTTP_METHOD_QUEUE of them: the rest wait in q and go in as answers take theirs. */
static void push_methods(struct wconn *wc)
{
	if (wc->q_pushed < wc->q_first)
		wc->q_pushed = wc->q_first;
	while (wc->q_pushed < wc->q_next &&
	       !st_http__push_method(&wc->p[1], (enum st_http_method)qat(wc, wc->q_pushed)->method))
		wc->q_pushed++;
}

static int64_t span(uint64_t from, uint64_t to)
{
	return to >= from ? (int64_t)(to - from) : -1;
}

/* The oldest exchange is over: its answer's code (ST_WATCH_CODE_NONE: none), how much of it
 * came (complete: its end at ts, resp_bytes long). */
static void emit(struct st_watch *w, struct wconn *wc, uint16_t status, bool complete,
		 uint64_t ts, int64_t resp_bytes)
{
	struct wx *x = qat(wc, wc->q_first);
	bool timed = x->req_done && !x->req_lost;
	struct st_watch_exchange e = {
		.ep = x->ep, .method = x->method, .status = status,
		.first_ns = -1, .last_ns = -1,
		.req_bytes = timed ? x->req_bytes : -1,
		.resp_bytes = complete ? resp_bytes : -1,
	};

	/* an answer that began before the request ended (an early 413) has no latency */
	if (status != ST_WATCH_CODE_NONE && timed) {
		e.first_ns = span(x->req_last, wc->resp_first);
		if (complete && e.first_ns >= 0)
			e.last_ns = span(x->req_last, ts);
	}
	st_watch_agg_add(&w->agg, &e);
	w->st.exchanges++;
	if (status == ST_WATCH_CODE_NONE)
		w->st.unanswered++;
	else if (!complete)
		w->st.incomplete++;
	wc->q_first++;
	wc->resp_head = false;
}

/* A direction's framing is lost: what it held is counted as well as it can be, and it looks
 * for the next head (docs/WATCH.md, "When framing is lost"). */
static void desync(struct st_watch *w, struct wconn *wc, int dir, bool drop_buffered)
{
	if (!wc->lost[dir])
		w->st.desyncs++;
	wc->lost[dir] = true;
	wc->in_msg[dir] = false;
	if (dir == ST_DIR_OUT) {
		/* the answer in progress: its code and first byte are known */
		if (wc->resp_head)
			emit(w, wc, wc->status, false, 0, -1);
		/* the rest cannot be paired with what comes after the hole */
		w->st.lost_exchanges += wc->q_next - wc->q_first;
		wc->q_first = wc->q_pushed = wc->q_next;
		wc->resp_unpaired = wc->resp_interim = false;
		/* the methods queued for framing answers go with them */
		st_http__reset(&wc->p[1]);
		st_http__resync(&wc->p[1], true);
	} else {
		if (wc->req_open && wc->req_cur >= wc->q_first) {
			qat(wc, wc->req_cur)->req_done = true;
			qat(wc, wc->req_cur)->req_lost = true;
		}
		wc->req_open = false;
		wc->req_raw = false;
		st_http__resync(&wc->p[0], drop_buffered);
	}
}

/* ---- framing -------------------------------------------------------------------------------- */

/* The kernel copies connection c whole from now on (once per connection). */
static void fall_back(struct st_watch *w, struct wconn *wc, const struct st_flow_key *k)
{
	if (wc->fell_back || !w->cfg.copy_whole)
		return;
	wc->fell_back = true;
	w->st.fallbacks++;
	w->cfg.copy_whole(w->cfg.copy_whole_ctx, k);
}

/* An HTTP/2 connection is copied whole at once: HPACK needs every header byte (an elided one
 * stops the connection, st_watch_h2__gap). */
static void list_h2(struct st_watch *w, struct wconn *wc)
{
	if (wc->fell_back || !w->cfg.copy_whole)
		return;
	wc->fell_back = true;
	w->st.h2_whole++;
	w->cfg.copy_whole(w->cfg.copy_whole_ctx, wc->key);
}

/* The connection speaks HTTP/2 from now on (the preface, or an h2c upgrade): counted, its port
 * marked so that the port's next connections come whole from their first segment (their
 * first answers are not elided before their preface is read), and itself listed. */
static void became_h2(struct st_watch *w, struct wconn *wc)
{
	wc->mode = WM_H2;
	w->st.h2_conns++;
	if (!port_has(w->h2_ports, wc->key->dport)) {
		w->h2_ports[wc->key->dport >> 3] |= (uint8_t)(1u << (wc->key->dport & 7));
		w->st.h2_ports++;
		if (w->cfg.copy_port_whole)
			w->cfg.copy_port_whole(w->cfg.copy_whole_ctx, wc->key->dport);
	}
	list_h2(w, wc);
}

/* A request offers h2c (Upgrade: h2c, HTTP2-Settings): an HTTP/2 source takes it as stream 1
 * now, while its head is at hand, in case the answer is a 101. */
static void offer_h2c(struct st_watch *w, struct wconn *wc, const struct st_http_head *h)
{
	if (wc->h2c || !st_h2_upgrade_requested(h))
		return;
	wc->h2c = st_watch_h2__new(&w->agg, &w->st);
	if (wc->h2c && st_watch_h2__offer(wc->h2c, h)) {
		st_watch_h2__close(wc->h2c); /* nothing in it yet: counts nothing */
		wc->h2c = NULL;
	}
}

/* The offer's answer is not a 101 for h2c: the connection stays HTTP/1. */
static void refuse_h2c(struct wconn *wc)
{
	st_watch_h2__close(wc->h2c);
	wc->h2c = NULL;
	wc->h2c_ok = false;
}

static void on_request_head(struct st_watch *w, struct wconn *wc, const struct st_http_head *h)
{
	struct wx *x;

	w->st.requests++;
	wc->lost[ST_DIR_IN] = false;
	if (!q_room(wc)) {
		/* ST_WATCH_PIPELINE_MAX requests waiting for answers (or no memory): the pairing
		 * cannot go on */
		desync(w, wc, ST_DIR_OUT, true);
		w->st.lost_exchanges++;
		return;
	}
	x = qat(wc, wc->q_next);
	memset(x, 0, sizeof(*x));
	x->ep = st_watch_agg_endpoint(&w->agg, h->method_str, h->method_len, h->target,
				      h->target_len);
	x->method = (uint8_t)h->method;
	wc->req_cur = wc->q_next++;
	wc->req_open = true;
	push_methods(wc);
	offer_h2c(w, wc, h);
	/* chunk lines are all through a chunked body: heads-only copies would lose them */
	if (h->flags & ST_HTTP_HF_CHUNKED)
		fall_back(w, wc, wc->key);
}

static void on_request_done(struct wconn *wc, uint64_t msg_len, uint64_t ts)
{
	struct wx *x;

	if (!wc->req_open)
		return;
	wc->req_open = false;
	if (wc->req_cur < wc->q_first)
		return; /* answered (and counted) before it ended */
	x = qat(wc, wc->req_cur);
	x->req_done = true;
	x->req_last = ts;
	x->req_bytes = (int64_t)msg_len;
}

static void on_response_head(struct st_watch *w, struct wconn *wc, const struct st_http_head *h)
{
	wc->lost[ST_DIR_OUT] = false;
	wc->resp_interim = (h->flags & ST_HTTP_HF_INTERIM) != 0;
	if (wc->resp_interim) {
		w->st.interim++;
		return;
	}
	if ((h->flags & ST_HTTP_HF_NO_REQUEST) || wc->q_first == wc->q_next) {
		w->st.unpaired++;
		wc->resp_unpaired = true;
		return;
	}
	push_methods(wc); /* the answer took its request's method: room for the next */
	/* the offer is the last request (the client's bytes after it are not HTTP/1 until its
	 * answer): an answer to an earlier one leaves it open */
	if (wc->h2c && wc->q_first + 1 == wc->q_next) {
		if (st_h2_upgrade_accepted(h))
			wc->h2c_ok = true; /* the exchange is stream 1's, measured as HTTP/2 */
		else
			refuse_h2c(wc);
	}
	wc->resp_head = true;
	wc->status = h->status;
	wc->resp_first = wc->msg_ts[ST_DIR_OUT];
	if (h->flags & ST_HTTP_HF_CHUNKED)
		fall_back(w, wc, wc->key);
	if (wc->req_raw && h->status != 101) {
		/* an Upgrade refused: the client's next bytes are HTTP again */
		st_http__reset(&wc->p[0]);
		wc->req_raw = false;
	}
}

static void on_response_done(struct st_watch *w, struct wconn *wc, uint64_t msg_len, uint64_t ts)
{
	if (wc->resp_interim || wc->resp_unpaired) {
		wc->resp_interim = wc->resp_unpaired = false;
		return;
	}
	if (wc->h2c_ok)
		return; /* the 101 of an h2c upgrade: stream 1 is measured as HTTP/2 */
	if (wc->resp_head)
		emit(w, wc, wc->status, true, ts, (int64_t)msg_len);
}

/* After the 101 that accepted h2c: the HTTP/1 exchange (stream 1's request) leaves without being
 * counted, the HTTP/2 source takes over with the request's last byte's time, and gets the
 * answer bytes that followed the 101 in this segment (rest, n of them). */
static void switch_h2c(struct st_watch *w, struct wconn *wc, const uint8_t *rest, size_t n,
		       uint64_t ts)
{
	struct wx *x = qat(wc, wc->q_first);
	uint64_t req_last = x->req_done && !x->req_lost ? x->req_last : ts;

	w->st.requests--; /* counted again as stream 1 */
	wc->q_first = wc->q_pushed = wc->q_next;
	wc->resp_head = false;
	st_http__free(&wc->p[0]);
	st_http__free(&wc->p[1]);
	wc->h2 = wc->h2c;
	wc->h2c = NULL;
	wc->h2c_ok = false;
	w->st.h2_upgraded++;
	became_h2(w, wc);
	st_watch_h2__upgraded(wc->h2, req_last);
	if (n)
		st_watch_h2__data(wc->h2, ST_DIR_OUT, rest, (uint32_t)n, ts);
}

/* Frames len bytes (d may be NULL with len 0: events already due, a MSG_DONE after a skip). */
static void frame(struct st_watch *w, struct wconn *wc, int dir, const uint8_t *d, uint32_t len,
		  uint64_t ts)
{
	struct st_http_parser *p = &wc->p[dir];
	size_t left = len;

	while (wc->mode == WM_HTTP) {
		struct st_http_event ev;
		size_t n = st_http__feed(p, d, left, &ev);

		/* the first byte of a message: its time (a head may span segments) */
		if (n && !wc->in_msg[dir] && ev.type != ST_HTTP_EV_SKIP) {
			wc->in_msg[dir] = true;
			wc->msg_ts[dir] = ts;
		}
		switch (ev.type) {
		case ST_HTTP_EV_HEAD:
			if (dir == ST_DIR_IN)
				on_request_head(w, wc, ev.head);
			else
				on_response_head(w, wc, ev.head);
			break;
		case ST_HTTP_EV_MSG_DONE:
			wc->in_msg[dir] = false;
			if (dir == ST_DIR_IN)
				on_request_done(wc, ev.msg_len, ts);
			else
				on_response_done(w, wc, ev.msg_len, ts);
			break;
		case ST_HTTP_EV_UPGRADED:
			if (dir == ST_DIR_IN) {
				wc->req_raw = true; /* until the answer says 101 or not */
			} else if (wc->h2c_ok) {
				switch_h2c(w, wc, d ? d + n : NULL, left - n, ts);
				return;
			} else {
				wc->mode = WM_RAW;
				w->st.upgraded_conns++;
			}
			break;
		case ST_HTTP_EV_SKIP:
			wc->in_msg[dir] = false;
			break;
		case ST_HTTP_EV_ERROR:
			/* requests: what follows garbage in one head is kept (rescanned) */
			w->st.framing_errors++;
			desync(w, wc, dir, dir == ST_DIR_OUT);
			break;
		default:
			break;
		}
		if (d)
			d += n;
		left -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
	}
}

/* ---- reassembly's events -------------------------------------------------------------------------- */

static const struct st_http_opts head_opts = { .head_cap = ST_WATCH_HEAD_CAP };

/* The client's first bytes: HTTP/2's connection preface (or its start). */
static bool start_h2(struct st_watch *w, struct wconn *wc)
{
	if (w->framed >= w->cfg.max_conns) {
		wc->mode = WM_BUSY;
		w->st.busy_conns++;
		return true;
	}
	wc->h2 = st_watch_h2__new(&w->agg, &w->st);
	if (!wc->h2)
		return false;
	w->framed++;
	became_h2(w, wc);
	return true;
}

/* The connection's first bytes say whether it is HTTP/2 (the client's preface) or HTTP/1.x (a
 * request from the client). A connection joined midway may start anywhere: framed as HTTP/1
 * from the first head found, except on a port where HTTP/2 was seen (its HPACK state is lost:
 * h2_joined). server_first: the server spoke before the client (held bytes). */
static void decide(struct st_watch *w, struct wconn *wc, bool joined, int dir, const uint8_t *d,
		   uint32_t len, bool server_first)
{
	size_t off = 0;

	if (joined && port_has(w->h2_ports, wc->key->dport)) {
		wc->mode = WM_OTHER;
		w->st.h2_joined++;
		return;
	}
	if (!joined && dir == ST_DIR_IN && len && st_h2_detect(d, len) != ST_H2_DETECT_NO &&
	    start_h2(w, wc))
		return;
	if (!joined && (dir != ST_DIR_IN || server_first ||
			st_http__scan_start(ST_HTTP_REQUEST, d, len, 0, &off) == ST_HTTP_SCAN_NONE ||
			off)) {
		wc->mode = WM_OTHER;
		w->st.other_conns++;
		return;
	}
	if (w->framed >= w->cfg.max_conns) {
		wc->mode = WM_BUSY;
		w->st.busy_conns++;
		return;
	}
	st_http__init(&wc->p[0], ST_HTTP_REQUEST, &head_opts);
	st_http__init(&wc->p[1], ST_HTTP_RESPONSE, &head_opts);
	w->framed++;
	w->st.http_conns++;
	wc->mode = WM_HTTP;
	if (joined) {
		/* bytes before the first head belong to messages not seen whole */
		w->st.joined_conns++;
		st_http__resync(&wc->p[0], true);
		st_http__resync(&wc->p[1], true);
	}
}

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct st_watch *w = ctx;
	struct wconn *wc = calloc(1, sizeof(*wc));

	w->st.connections++;
	c->user = wc;
	if (!wc) {
		w->st.busy_conns++;
		return;
	}
	wc->key = &c->key;
}

/* The server's bytes before the client's: held (false: too many, not HTTP). */
static bool hold(struct wconn *wc, const uint8_t *d, uint32_t len, uint64_t ts)
{
	uint8_t *n;

	if (len > WATCH_HOLD_MAX - wc->held_len)
		return false;
	n = realloc(wc->held, wc->held_len + len ? wc->held_len + len : 1);
	if (!n)
		return false;
	memcpy(n + wc->held_len, d, len);
	wc->held = n;
	wc->held_len += len;
	wc->held_ts = ts;
	return true;
}

static void drop_held(struct wconn *wc)
{
	free(wc->held);
	wc->held = NULL;
	wc->held_len = 0;
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct st_watch *w = ctx;
	struct wconn *wc = c->user;

	if (!wc)
		return;
	if (wc->mode == WM_UNDECIDED) {
		bool joined = c->flags & ST_REASM_F_JOINED;

		if (!joined && dir == ST_DIR_OUT) {
			if (hold(wc, d, len, ts))
				return;
			drop_held(wc);
			wc->mode = WM_OTHER; /* a server that says that much first is not HTTP */
			w->st.other_conns++;
			return;
		}
		decide(w, wc, joined, dir, d, len, wc->held_len > 0);
		if (wc->mode == WM_H2 && wc->held_len)
			st_watch_h2__data(wc->h2, ST_DIR_OUT, wc->held, wc->held_len, wc->held_ts);
		drop_held(wc);
	}
	if (wc->mode == WM_HTTP)
		frame(w, wc, dir, d, len, ts);
	else if (wc->mode == WM_H2)
		st_watch_h2__data(wc->h2, dir, d, len, ts);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_watch *w = ctx;
	struct wconn *wc = c->user;
	bool elided = why == ST_GAP_ELIDED;

	if (!elided)
		w->st.gap_bytes += len;
	if (!wc)
		return;
	if (wc->mode == WM_UNDECIDED) {
		/* the first bytes never came: framed from the first head found */
		drop_held(wc);
		decide(w, wc, true, dir, NULL, 0, false);
	}
	if (wc->mode == WM_H2)
		st_watch_h2__gap(wc->h2, dir, len, elided, ts);
	if (wc->mode != WM_HTTP)
		return;
	if (!wc->lost[dir] && !st_http__skip(&wc->p[dir], len)) {
		if (elided)
			w->st.skipped += len;
		frame(w, wc, dir, NULL, 0, ts); /* a message that ends with the hole ends now */
		return;
	}
	/* not all body: a head (or a chunk line) is in the hole */
	if (elided)
		fall_back(w, wc, wc->key);
	if (wc->lost[dir])
		st_http__resync(&wc->p[dir], true); /* a candidate head must not span the hole */
	else
		desync(w, wc, dir, true);
}

static void on_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why,
		   uint64_t ts)
{
	struct st_watch *w = ctx;
	struct wconn *wc = c->user;

	if (wc && wc->mode == WM_H2)
		st_watch_h2__end(wc->h2, dir, ts);
	if (!wc || wc->mode != WM_HTTP)
		return;
	for (;;) {
		struct st_http_event ev;

		st_http__feed_eof(&wc->p[dir], &ev);
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
		if (ev.type == ST_HTTP_EV_MSG_DONE) {
			/* an answer read until close ends with the connection */
			if (dir == ST_DIR_OUT)
				on_response_done(w, wc, ev.msg_len, ts);
			else
				on_request_done(wc, ev.msg_len, ts);
		} else if (ev.type == ST_HTTP_EV_ERROR) {
			/* cut short: counted with what is known when the connection closes */
			if (dir == ST_DIR_IN && wc->req_open && wc->req_cur >= wc->q_first) {
				qat(wc, wc->req_cur)->req_done = true;
				qat(wc, wc->req_cur)->req_lost = true;
				wc->req_open = false;
			}
			break;
		}
	}
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct st_watch *w = ctx;
	struct wconn *wc = c->user;

	if (!wc)
		return;
	if (wc->mode == WM_HTTP || wc->mode == WM_RAW) {
		/* an answer cut short, then the requests nobody answered */
		if (wc->resp_head)
			emit(w, wc, wc->status, false, 0, -1);
		while (wc->q_first < wc->q_next && wc->mode == WM_HTTP)
			emit(w, wc, ST_WATCH_CODE_NONE, false, 0, -1);
		w->st.lost_exchanges += wc->q_next - wc->q_first; /* after a switch: not HTTP */
		st_http__free(&wc->p[0]);
		st_http__free(&wc->p[1]);
		w->framed--;
	}
	if (wc->mode == WM_H2) {
		st_watch_h2__close(wc->h2);
		w->framed--;
	}
	st_watch_h2__close(wc->h2c);
	free(wc->held);
	free(wc->q);
	free(wc);
	c->user = NULL;
}

const struct st_reasm_ops st_watch_reasm_ops = {
	.open = on_open,
	.data = on_data,
	.gap = on_gap,
	.end = on_end,
	.close = on_close,
};
