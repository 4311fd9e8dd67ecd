/* SPDX-License-Identifier: GPL-2.0-only */
/* watch's HTTP/2 source: one connection's streams framed into exchanges (watch_h2.h). */
#include "watch_h2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "h2.h"
#include "http.h"

/* Stream flags. */
#define WS_REQ_HEAD 0x01u  /* the request's head came: ep, method */
#define WS_REQ_DONE 0x02u  /* its END_STREAM came (req_last) */
#define WS_RESP_HEAD 0x04u /* the final answer's head came (status, resp_first) */
#define WS_RESP_DONE 0x08u /* its END_STREAM came (resp_last), the request's head not yet */
#define WS_GRPC 0x10u      /* the request's content-type is application/grpc */

struct wstream {
	uint32_t id;       /* 0: a free slot */
	uint32_t ep;
	uint8_t f;
	uint8_t method;
	uint8_t grpc;      /* ST_WATCH_GRPC_* (NONE until a grpc-status is read) */
	uint8_t pad;
	uint16_t status;
	uint64_t req_last, resp_first, resp_last;
	uint64_t req_bytes, resp_bytes;
};

struct st_watch_h2 {
	struct st_watch_agg *agg;
	struct st_watch_stats *st;
	struct st_h2 *c;
	struct wstream *t; /* open addressing, linear probing, backward-shift deletion */
	uint32_t tcap, tn;
	bool stopped;      /* the framer stopped: counted, nothing more is looked at */
	bool elided;       /* ... at elided bytes (h2_elided, not h2_gap) */
};

/* ---- the stream table ------------------------------------------------------------------------ */

static uint32_t slot0(const struct st_watch_h2 *h, uint32_t id)
{
	return (uint32_t)((id >> 1) * 2654435761u) & (h->tcap - 1);
}

static struct wstream *sfind(struct st_watch_h2 *h, uint32_t id)
{
	if (!h->tcap || !id)
		return NULL;
	for (uint32_t i = slot0(h, id);; i = (i + 1) & (h->tcap - 1)) {
		if (h->t[i].id == id)
			return &h->t[i];
		if (!h->t[i].id)
			return NULL;
	}
}

static int sgrow(struct st_watch_h2 *h)
{
	uint32_t ncap = h->tcap ? h->tcap * 2 : 8, ocap = h->tcap;
	struct wstream *o = h->t, *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	h->t = n;
	h->tcap = ncap;
	for (uint32_t i = 0; i < ocap; i++) {
		uint32_t j;

		if (!o[i].id)
			continue;
		for (j = slot0(h, o[i].id); n[j].id; j = (j + 1) & (ncap - 1))
			;
		n[j] = o[i];
	}
	free(o);
	return 0;
}

/* A new stream: NULL when ST_WATCH_H2_STREAMS are followed (or no memory). */
static struct wstream *sadd(struct st_watch_h2 *h, uint32_t id)
{
	uint32_t i;

	if (h->tn >= ST_WATCH_H2_STREAMS)
		return NULL;
	/* at most half full */
	if (2 * (h->tn + 1) > h->tcap && sgrow(h))
		return NULL;
	for (i = slot0(h, id); h->t[i].id; i = (i + 1) & (h->tcap - 1))
		;
	memset(&h->t[i], 0, sizeof(h->t[i]));
	h->t[i].id = id;
	h->t[i].grpc = ST_WATCH_GRPC_NONE;
	h->tn++;
	return &h->t[i];
}

static void sdel(struct st_watch_h2 *h, struct wstream *s)
{
	uint32_t mask = h->tcap - 1, i = (uint32_t)(s - h->t), j = i;

	h->t[i].id = 0;
	h->tn--;
	/* backward shift: the entries after the hole that may sit in it move up */
	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (!h->t[j].id)
			return;
		k = slot0(h, h->t[j].id);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			h->t[i] = h->t[j];
			h->t[j].id = 0;
			i = j;
		}
	}
}

/* ---- exchanges -------------------------------------------------------------------------------- */

static int64_t span(uint64_t from, uint64_t to)
{
	return to >= from ? (int64_t)(to - from) : -1;
}

/* Stream s is counted and forgotten: its answer's code (ST_WATCH_CODE_NONE: none came), whether
 * its end came (WS_RESP_DONE). */
static void emit(struct st_watch_h2 *h, struct wstream *s)
{
	bool answered = s->f & WS_RESP_HEAD, complete = answered && (s->f & WS_RESP_DONE);
	bool timed = s->f & WS_REQ_DONE;
	struct st_watch_exchange e = {
		.ep = s->ep, .method = s->method,
		.status = answered ? s->status : ST_WATCH_CODE_NONE,
		.first_ns = -1, .last_ns = -1,
		.req_bytes = timed ? (int64_t)s->req_bytes : -1,
		.resp_bytes = complete ? (int64_t)s->resp_bytes : -1,
	};

	/* an answer that began before the request ended has no latency */
	if (answered && timed) {
		e.first_ns = span(s->req_last, s->resp_first);
		if (complete && e.first_ns >= 0)
			e.last_ns = span(s->req_last, s->resp_last);
	}
	st_watch_agg_add(h->agg, &e);
	if (s->f & WS_GRPC) {
		st_watch_agg_grpc(h->agg, s->ep, s->grpc);
		h->st->grpc_calls++;
	}
	h->st->exchanges++;
	if (!answered)
		h->st->unanswered++;
	else if (!complete)
		h->st->incomplete++;
	sdel(h, s);
}

/* A stream that ends short of its answer's end (reset, connection over): counted with what is
 * known when its request was seen; an answer to no request seen is unpaired. */
static void cut(struct st_watch_h2 *h, struct wstream *s)
{
	if (s->f & WS_REQ_HEAD) {
		s->f &= (uint8_t)~WS_RESP_DONE;
		emit(h, s);
	} else {
		h->st->unpaired++;
		sdel(h, s);
	}
}

/* Read whatever the request: an answer may come before its request's head (a hole in the
 * client's direction delays it), and only the head says whether the call is gRPC. */
static void read_grpc(struct wstream *s, const struct st_h2_head *hd)
{
	struct st_grpc_status g;
	char msg[1];

	if (!st_grpc_read_status(hd, msg, sizeof(msg), &g))
		return;
	s->grpc = g.valid && g.code >= 0 && g.code < 17 ? (uint8_t)g.code : ST_WATCH_GRPC_OTHER;
}

static void on_request_head(struct st_watch_h2 *h, uint32_t id, const struct st_h2_head *hd)
{
	struct wstream *s = sfind(h, id);
	const struct st_h2_field *m = hd->method, *t = hd->path ? hd->path : hd->authority;

	h->st->requests++;
	h->st->h2_streams++;
	if (!s && !(s = sadd(h, id))) {
		h->st->h2_stream_cap++;
		h->st->lost_exchanges++;
		return;
	}
	s->f |= WS_REQ_HEAD;
	s->method = (uint8_t)(m ? st_http__method_from(m->value, m->value_len) : ST_HTTP_M_OTHER);
	s->ep = st_watch_agg_endpoint(h->agg, m ? m->value : "", m ? m->value_len : 0,
				      t ? t->value : "", t ? t->value_len : 0);
	if (st_grpc_is_grpc(hd))
		s->f |= WS_GRPC;
	/* the answer ended before its request's head was handed over (a hole delayed it) */
	if (s->f & WS_RESP_DONE)
		emit(h, s);
}

static void on_response_head(struct st_watch_h2 *h, uint32_t id, const struct st_h2_head *hd,
			     uint64_t ts)
{
	struct wstream *s = sfind(h, id);

	if (hd->flags & ST_H2_HF_INTERIM) {
		h->st->interim++;
		return;
	}
	/* an answer before its request (a hole in the client's direction delays it) */
	if (!s && !(s = sadd(h, id))) {
		h->st->h2_stream_cap++;
		return;
	}
	s->f |= WS_RESP_HEAD;
	s->status = hd->status;
	s->resp_first = ts;
	read_grpc(s, hd); /* a trailers-only answer */
}

static void on_end(struct st_watch_h2 *h, int dir, uint32_t id, uint64_t ts)
{
	struct wstream *s = sfind(h, id);

	if (!s)
		return;
	if (dir == ST_H2_CLIENT) {
		s->f |= WS_REQ_DONE;
		s->req_last = ts;
		return;
	}
	s->f |= WS_RESP_DONE;
	s->resp_last = ts;
	if (s->f & WS_REQ_HEAD)
		emit(h, s);
}

static void on_reset(struct st_watch_h2 *h, const struct st_h2_event *ev)
{
	struct wstream *s = sfind(h, ev->stream);

	if (!s)
		return;
	/* never processed: the client sends it again (RFC 9113 8.7) */
	if (ev->dir == ST_H2_SERVER && ev->error_code == ST_H2_REFUSED_STREAM &&
	    !(s->f & WS_RESP_HEAD)) {
		h->st->h2_refused++;
		sdel(h, s);
		return;
	}
	h->st->h2_resets++;
	cut(h, s);
}

/* The server's GOAWAY: the client's streams above its last stream id were not processed, and
 * the framer forgets them without an event. */
static void on_goaway(struct st_watch_h2 *h, const struct st_h2_event *ev)
{
	if (ev->dir != ST_H2_SERVER)
		return;
	for (uint32_t i = 0; i < h->tcap;) {
		struct wstream *s = &h->t[i];

		if (s->id && (s->id & 1) && s->id > ev->last_stream && !(s->f & WS_RESP_HEAD)) {
			h->st->h2_refused++;
			sdel(h, s); /* slot i may hold another entry now: look again */
			continue;
		}
		i++;
	}
}

/* The connection cannot be decoded any more: the answers under way are counted as far as they
 * came (code, first byte), the rest lost. */
static void on_stop(struct st_watch_h2 *h, const struct st_h2_event *ev)
{
	h->stopped = true;
	if (ev->stop == ST_H2_STOP_JOINED)
		h->st->h2_joined++;
	else if (ev->stop == ST_H2_STOP_GAP && h->elided)
		h->st->h2_elided++;
	else if (ev->stop == ST_H2_STOP_GAP)
		h->st->h2_gap++;
	else
		h->st->h2_errors++;
	for (uint32_t i = 0; i < h->tcap;) {
		struct wstream *s = &h->t[i];

		if (!s->id) {
			i++;
			continue;
		}
		if ((s->f & WS_REQ_HEAD) && (s->f & WS_RESP_HEAD)) {
			cut(h, s);
		} else if (s->f & WS_REQ_HEAD) {
			h->st->lost_exchanges++;
			sdel(h, s);
		} else {
			h->st->unpaired++;
			sdel(h, s);
		}
	}
}

static void event(struct st_watch_h2 *h, const struct st_h2_event *ev, uint64_t ts)
{
	struct wstream *s;

	switch (ev->type) {
	case ST_H2_EV_HEAD:
		if (ev->dir == ST_H2_CLIENT)
			on_request_head(h, ev->stream, ev->head);
		else
			on_response_head(h, ev->stream, ev->head, ts);
		break;
	case ST_H2_EV_TRAILERS:
		if (ev->dir == ST_H2_SERVER && (s = sfind(h, ev->stream)))
			read_grpc(s, ev->head);
		break;
	case ST_H2_EV_DATA:
		if ((s = sfind(h, ev->stream))) {
			if (ev->dir == ST_H2_CLIENT)
				s->req_bytes += ev->data_len;
			else
				s->resp_bytes += ev->data_len;
		}
		break;
	case ST_H2_EV_END:
		on_end(h, ev->dir, ev->stream, ts);
		break;
	case ST_H2_EV_RESET:
		on_reset(h, ev);
		break;
	case ST_H2_EV_DROP:
		/* a header list over its bound, or a stream over the framer's max_streams (the
		 * table's cap): its request, if any was handed out, cannot be measured */
		if (ev->limit == ST_H2_LIMIT_STREAMS)
			h->st->h2_stream_cap++;
		else
			h->st->h2_dropped++;
		if ((s = sfind(h, ev->stream)))
			sdel(h, s);
		h->st->lost_exchanges++;
		break;
	case ST_H2_EV_GOAWAY:
		on_goaway(h, ev);
		break;
	case ST_H2_EV_STOP:
		on_stop(h, ev);
		break;
	default:
		break;
	}
}

/* Feeds dir's bytes (len 0: the events queued) and hands each event over. */
static void feed(struct st_watch_h2 *h, int dir, const uint8_t *d, size_t len, uint64_t ts)
{
	while (!h->stopped) {
		struct st_h2_event ev;
		size_t n = st_h2__feed(h->c, dir, d, len, &ev);

		if (d)
			d += n;
		len -= n;
		event(h, &ev, ts);
		if (ev.type == ST_H2_EV_NEED_MORE)
			break;
	}
}

/* ---- the API --------------------------------------------------------------------------------- */

struct st_watch_h2 *st_watch_h2__new(struct st_watch_agg *agg, struct st_watch_stats *st)
{
	const struct st_h2_opts o = { .max_streams = ST_WATCH_H2_STREAMS };
	struct st_watch_h2 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->agg = agg;
	h->st = st;
	h->c = st_h2__new(&o);
	if (!h->c) {
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

int st_watch_h2__offer(struct st_watch_h2 *h, const struct st_http_head *req)
{
	return st_h2__upgrade(h->c, req);
}

void st_watch_h2__upgraded(struct st_watch_h2 *h, uint64_t req_last)
{
	feed(h, ST_H2_CLIENT, NULL, 0, req_last); /* stream 1's HEAD and END */
}

static int h2dir(int dir)
{
	return dir == ST_DIR_IN ? ST_H2_CLIENT : ST_H2_SERVER;
}

void st_watch_h2__data(struct st_watch_h2 *h, int dir, const uint8_t *d, uint32_t len,
		       uint64_t ts)
{
	feed(h, h2dir(dir), d, len, ts);
}

void st_watch_h2__gap(struct st_watch_h2 *h, int dir, uint64_t len, bool elided, uint64_t ts)
{
	if (h->stopped)
		return;
	if (elided && !st_h2__skip(h->c, h2dir(dir), len)) {
		h->st->skipped += len;
	} else {
		h->elided = elided;
		st_h2__stop(h->c, ST_H2_STOP_GAP);
	}
	feed(h, h2dir(dir), NULL, 0, ts);
}

void st_watch_h2__end(struct st_watch_h2 *h, int dir, uint64_t ts)
{
	if (h->stopped)
		return;
	st_h2__eof(h->c, h2dir(dir));
	feed(h, h2dir(dir), NULL, 0, ts);
}

void st_watch_h2__close(struct st_watch_h2 *h)
{
	if (!h)
		return;
	/* the streams nobody finished: an answer cut short, a request never answered */
	for (uint32_t i = 0; i < h->tcap;) {
		if (h->t[i].id)
			cut(h, &h->t[i]);
		else
			i++;
	}
	st_h2__free(h->c);
	free(h->t);
	free(h);
}
