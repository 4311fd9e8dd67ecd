/* SPDX-License-Identifier: GPL-2.0-only */
/* A connection's HTTP exchanges (exchange.h). */
#include "exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shadowtap.h"
#include "grpc.h"

static void stop(struct st_exchange_conn *c)
{
	st_exchange__free(c);
}

int st_exchange__init(struct st_exchange_conn *c, st_exchange_fn fn, void *ctx)
{
	const struct st_http_opts ho = { .head_cap = ST_EXCHANGE_HEAD_CAP };

	memset(c, 0, sizeof(*c));
	if (st_http__init(&c->p[0], ST_HTTP_REQUEST, &ho))
		return -ENOMEM;
	if (st_http__init(&c->p[1], ST_HTTP_RESPONSE, &ho)) {
		st_http__free(&c->p[0]);
		return -ENOMEM;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->on = true;
	c->mode = ST_EXCHANGE_DETECT;
	return 0;
}

void st_exchange__free(struct st_exchange_conn *c)
{
	if (!c->on)
		return;
	st_http__free(&c->p[0]);
	st_http__free(&c->p[1]);
	st_h2__free(c->h2);
	free(c->det[0]);
	free(c->det[1]);
	free(c->xs);
	free(c->q);
	memset(c, 0, sizeof(*c));
}

/* ---- HTTP/1: answers in request order ------------------------------------------------------ */

/* Hands over the exchanges at the front that are complete both ways, in order. */
static void h1_ready(struct st_exchange_conn *c)
{
	while (c->qn && c->q[c->qh].req_done && c->q[c->qh].resp_done) {
		c->fn(c->ctx, &c->q[c->qh]);
		c->qh = (c->qh + 1) % ST_EXCHANGE_QUEUE;
		c->qn--;
		c->nresp--;
	}
}

/* The exchange the answer being framed belongs to (answers come in request order). */
static struct st_exchange *h1_answering(struct st_exchange_conn *c)
{
	return c->nresp < c->qn ? &c->q[(c->qh + c->nresp) % ST_EXCHANGE_QUEUE] : NULL;
}

static void h1_answer_done(struct st_exchange_conn *c, uint64_t len)
{
	struct st_exchange *x = h1_answering(c);

	if (!x)
		return;
	x->resp_bytes = len;
	x->resp_done = true;
	c->nresp++;
	h1_ready(c);
}

/* A request's head: queued (false: c stopped). */
static bool h1_request(struct st_exchange_conn *c, const struct st_http_head *h)
{
	struct st_exchange *x;

	if (!c->q)
		c->q = calloc(ST_EXCHANGE_QUEUE, sizeof(*c->q));
	if (!c->q || c->qn >= ST_EXCHANGE_QUEUE || st_http__push_method(&c->p[1], h->method)) {
		stop(c);
		return false;
	}
	x = &c->q[(c->qh + c->qn++) % ST_EXCHANGE_QUEUE];
	memset(x, 0, sizeof(*x));
	x->grpc = -1;
	snprintf(x->method, sizeof(x->method), "%.*s", (int)h->method_len, h->method_str);
	snprintf(x->target, sizeof(x->target), "%.*s",
		 (int)(h->target_len < ST_EXCHANGE_TARGET_MAX - 1 ? h->target_len :
								    ST_EXCHANGE_TARGET_MAX - 1),
		 h->target);
	return true;
}

static bool h1_feed(struct st_exchange_conn *c, int dir, const uint8_t *d, uint32_t len,
		    uint64_t ts)
{
	struct st_http_event ev;
	size_t left = len;

	while (c->on) {
		size_t n = st_http__feed(&c->p[dir], d, left, &ev);
		struct st_exchange *x;

		switch (ev.type) {
		case ST_HTTP_EV_HEAD:
			if (dir == ST_DIR_IN) {
				if (!h1_request(c, ev.head))
					return false;
			} else if (!(ev.head->flags & ST_HTTP_HF_INTERIM) && (x = h1_answering(c))) {
				x->status = ev.head->status;
				x->resp_ts = ts;
			}
			break;
		case ST_HTTP_EV_MSG_DONE:
			if (dir == ST_DIR_IN) {
				if (c->qn) { /* always: its HEAD queued it */
					x = &c->q[(c->qh + c->qn - 1) % ST_EXCHANGE_QUEUE];
					x->req_bytes = ev.msg_len;
					x->req_end_ts = ts;
					x->req_done = true;
				}
				h1_ready(c);
			} else if (!(ev.head->flags & ST_HTTP_HF_INTERIM)) {
				h1_answer_done(c, ev.msg_len);
			}
			if (ev.head->flags & ST_HTTP_HF_UPGRADE) {
				stop(c); /* what follows is another protocol */
				return false;
			}
			break;
		case ST_HTTP_EV_ERROR:
		case ST_HTTP_EV_SKIP:
		case ST_HTTP_EV_RAW:
			stop(c);
			return false;
		default:
			break;
		}
		d += n;
		left -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
	}
	return c->on;
}

/* ---- HTTP/2: one exchange per stream ------------------------------------------------------- */

/* The stream's exchange (made at its request head when make), or NULL. */
static struct st_exchange *h2_stream(struct st_exchange_conn *c, uint32_t id, bool make)
{
	struct st_exchange *x;

	for (uint32_t i = 0; i < c->nxs; i++)
		if (c->xs[i].stream == id)
			return &c->xs[i];
	if (!make || c->nxs == ST_EXCHANGE_STREAMS)
		return NULL;
	if (c->nxs == c->xcap) {
		uint32_t nc = c->xcap ? c->xcap * 2 : 8;

		x = realloc(c->xs, nc * sizeof(*x));
		if (!x)
			return NULL;
		c->xs = x;
		c->xcap = nc;
	}
	x = &c->xs[c->nxs++];
	memset(x, 0, sizeof(*x));
	x->stream = id;
	x->grpc = -1;
	return x;
}

static void h2_forget(struct st_exchange_conn *c, struct st_exchange *x)
{
	*x = c->xs[--c->nxs];
}

static void field_copy(char *dst, size_t cap, const struct st_h2_field *f)
{
	snprintf(dst, cap, "%.*s", f ? (int)(f->value_len < cap - 1 ? f->value_len : cap - 1) : 1,
		 f ? f->value : "-");
}

static void grpc_status(struct st_exchange *x, const struct st_h2_head *h)
{
	struct st_grpc_status g;
	char msg[1];

	if (st_grpc_read_status(h, msg, sizeof(msg), &g) && g.valid && g.code >= 0 &&
	    g.code <= INT16_MAX)
		x->grpc = (int16_t)g.code;
}

/* One framer event: a stream's exchange goes out when both its sides ended. */
static void h2_event(struct st_exchange_conn *c, const struct st_h2_event *ev, uint64_t ts)
{
	struct st_exchange *x;

	switch (ev->type) {
	case ST_H2_EV_HEAD:
		if (ev->dir == ST_H2_CLIENT) {
			if (!(x = h2_stream(c, ev->stream, true)))
				return;
			field_copy(x->method, sizeof(x->method), ev->head->method);
			field_copy(x->target, sizeof(x->target),
				   ev->head->path ? ev->head->path : ev->head->authority);
		} else if (!(ev->head->flags & ST_H2_HF_INTERIM) &&
			   (x = h2_stream(c, ev->stream, false))) {
			x->status = ev->head->status;
			x->resp_ts = ts;
			grpc_status(x, ev->head); /* a trailers-only answer */
		}
		return;
	case ST_H2_EV_TRAILERS:
		if (ev->dir == ST_H2_SERVER && (x = h2_stream(c, ev->stream, false)))
			grpc_status(x, ev->head);
		return;
	case ST_H2_EV_DATA:
		if ((x = h2_stream(c, ev->stream, false))) {
			if (ev->dir == ST_H2_CLIENT)
				x->req_bytes += ev->data_len;
			else
				x->resp_bytes += ev->data_len;
		}
		return;
	case ST_H2_EV_END:
		if (!(x = h2_stream(c, ev->stream, false)))
			return;
		if (ev->dir == ST_H2_CLIENT) {
			x->req_end_ts = ts;
			x->req_done = true;
		} else {
			x->resp_done = true;
		}
		if (x->req_done && x->resp_done && x->status) {
			c->fn(c->ctx, x);
			h2_forget(c, x);
		}
		return;
	case ST_H2_EV_RESET:
	case ST_H2_EV_DROP:
		if ((x = h2_stream(c, ev->stream, false)))
			h2_forget(c, x); /* not an exchange: nobody answered it whole */
		return;
	case ST_H2_EV_STOP:
		stop(c);
		return;
	default:
		return;
	}
}

static bool h2_feed(struct st_exchange_conn *c, int dir, const uint8_t *d, size_t len,
		    uint64_t ts)
{
	struct st_h2_event ev;

	while (c->on) {
		size_t n = st_h2__feed(c->h2, dir == ST_DIR_IN ? ST_H2_CLIENT : ST_H2_SERVER, d, len,
				       &ev);

		d += n;
		len -= n;
		h2_event(c, &ev, ts);
		if (ev.type == ST_H2_EV_NEED_MORE)
			break;
	}
	return c->on;
}

/* ---- which HTTP ---------------------------------------------------------------------------- */

bool st_exchange__feed(struct st_exchange_conn *c, int dir, const uint8_t *d, uint32_t len,
		       uint64_t ts)
{
	enum st_h2_detect k;

	if (!c->on)
		return false;
	if (c->mode == ST_EXCHANGE_H1)
		return h1_feed(c, dir, d, len, ts);
	if (c->mode == ST_EXCHANGE_H2)
		return h2_feed(c, dir, d, len, ts);
	if (len > ST_EXCHANGE_DETECT_MAX - c->det_len[dir] ||
	    (!c->det[dir] && !(c->det[dir] = malloc(ST_EXCHANGE_DETECT_MAX)))) {
		stop(c);
		return false;
	}
	memcpy(c->det[dir] + c->det_len[dir], d, len);
	c->det_len[dir] += len;
	if (!c->det_len[ST_DIR_IN])
		return true;
	k = st_h2_detect(c->det[ST_DIR_IN], c->det_len[ST_DIR_IN]);
	if (k == ST_H2_DETECT_MAYBE)
		return true;
	if (k == ST_H2_DETECT_YES && !(c->h2 = st_h2__new(NULL))) {
		stop(c);
		return false;
	}
	c->mode = k == ST_H2_DETECT_YES ? ST_EXCHANGE_H2 : ST_EXCHANGE_H1;
	/* what was held goes through the framer now, the client's first */
	for (int i = 0; i < 2 && c->on; i++) {
		int dd = i ? ST_DIR_OUT : ST_DIR_IN;
		uint8_t *b = c->det[dd];
		uint32_t n = c->det_len[dd];

		c->det[dd] = NULL;
		c->det_len[dd] = 0;
		if (n)
			st_exchange__feed(c, dd, b, n, ts);
		free(b);
	}
	return c->on;
}

bool st_exchange__gap(struct st_exchange_conn *c, int dir, uint64_t len)
{
	if (!c->on)
		return false;
	/* HTTP/2: the HPACK state goes with the bytes; HTTP/1: only inside a known body */
	if (c->mode != ST_EXCHANGE_H1 || st_http__skip(&c->p[dir], len))
		stop(c);
	return c->on;
}

void st_exchange__end(struct st_exchange_conn *c, int dir, uint64_t ts)
{
	struct st_http_event ev;

	(void)ts;
	if (!c->on || dir != ST_DIR_OUT || c->mode != ST_EXCHANGE_H1)
		return;
	/* an answer read until the close ends here */
	st_http__feed_eof(&c->p[1], &ev);
	if (ev.type == ST_HTTP_EV_MSG_DONE)
		h1_answer_done(c, ev.msg_len);
}

void st_exchange__boundary(struct st_exchange_conn *c)
{
	if (!c->on || c->mode != ST_EXCHANGE_DETECT)
		return;
	for (int d = 0; d < 2; d++) {
		free(c->det[d]);
		c->det[d] = NULL;
		c->det_len[d] = 0;
	}
}
