/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow side of HTTP/2 (shadow_int.h): an sconn whose h2 is set drives a
 * libnghttp2 client session from the engine's event loop, with no thread of
 * its own. Released messages (h2msg, shared with the other shadow connections
 * they went to) are submitted as requests in the order they come; what the
 * session serialises is pumped into the sconn's byte queue a little ahead of the
 * socket and written by the code that writes HTTP/1 bytes (shadow_conn.c); what
 * the shadow sends is fed to the session through the same read budget.
 *
 * The session does the protocol: its own HPACK state and stream ids, the
 * shadow's flow control and SETTINGS_MAX_CONCURRENT_STREAMS (requests beyond it
 * wait inside the session, in order). What the engine adds:
 *  - memory: a message counts against its connection's queue caps from its
 *    submission until its stream is over, so a shadow that stops reading, keeps
 *    its windows shut or never frees a stream slot makes new streams drop whole
 *    (dropped_queue) and never grows the agent; serialised frames are kept at
 *    most PUMP_AHEAD ahead of the socket;
 *  - a stream is replayed (written whole) when the socket took the last byte of
 *    its last frame;
 *  - a GOAWAY from the shadow: the streams above its last stream id were not
 *    processed: they go again, in their order, on a new connection (resent);
 *    the others finish on this one, which takes no new stream. A stream the
 *    shadow may have run is never sent twice;
 *  - a shadow that does not speak HTTP/2 (the session ends the connection on
 *    its own error): closed, the target backs off (bad_responses);
 *  - --correlate: a stream's answer (its fields, kept as for tap compare; its DATA; a clean
 *    close) is learned into the stream's exchange, against production's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shadow_int.h"

#define PUMP_AHEAD (64u * 1024)    /* serialised bytes kept ahead of the socket */
#define FRAME_CHUNK (16384u + 9)   /* what one call serialises at most (a DATA frame) */
#define STREAM_WINDOW (1u << 24)   /* the shadows' answers are read as they come, then dropped */
#define CONN_WINDOW (1 << 30)
#define HEADER_BLOCK_MAX (1u << 20) /* a request's fields: the framer keeps at most 256 KiB */
#define RESP_FIELDS_MAX (64u * 1024) /* an answer's fields kept for tap compare */
#define MOVES_MAX 3                /* fruitless GOAWAYs a stream rides out before it is dropped */

/* h2out.f */
#define OS_HEADERS 0x01u   /* its HEADERS went to the session's output */
#define OS_END 0x02u       /* the frame ending it too (its end_off is set once in q) */
#define OS_WRITTEN 0x04u   /* ... and the socket took it: replayed */
#define OS_ANSWERED 0x08u  /* the shadow's final response head */
#define OS_OVER 0x10u      /* closed, counted; only a tombstone left for the session */
#define OS_GRPC 0x20u      /* a grpc-status came */

/* One request on a shadow connection. */
struct h2out {
	struct st_list_head node;      /* h2->streams, in submission order */
	struct st_list_head wnode;     /* h2->ending: its end is serialised, not yet written */
	struct h2msg *m;
	struct st_cmp_pair *pair;      /* a reference held until the stream is over */
	struct st_correlate_ex *ex;    /* --correlate: the answer is learned into it (held) */
	int32_t id;                    /* on this connection */
	uint32_t f;                    /* OS_* */
	uint8_t moves;
	uint8_t grpc_status;
	uint16_t status;
	uint64_t off;                  /* body bytes the session took */
	uint64_t end_off;              /* q offset after its last frame (0: not yet known) */
	uint64_t body_len;             /* the answer's DATA bytes */
	uint64_t sent_ns;              /* when it was written whole */
};

struct sh2 {
	nghttp2_session *s;
	struct sconn *sc;
	struct st_list_head streams;   /* every h2out, tombstones included */
	struct st_list_head ending;    /* in q order */
	struct st_list_head again;     /* refused by the shadow: submitted again after this read */
	uint32_t n_open;               /* not over */
	uint32_t n_sending;            /* HEADERS out, end not serialised */
	uint32_t n_awaiting;           /* written whole, not answered */
	bool goaway;                   /* the shadow sent one: no new stream here */
	bool bad;                      /* the session ended the connection on an error */
	/* the answer's header block being decoded (blocks are never interleaved) */
	bool keep;                     /* its fields are kept (tap compare) */
	uint16_t status;
	int grpc_status;               /* -1: none in this block */
	struct st_http_header *hf;
	uint32_t nhf, hfcap;
	char *hb;                      /* the fields' bytes */
	uint32_t hblen, hbcap;
	bool hb_over;
	uint64_t clen;                 /* content-length, when one came */
	bool has_clen;
};

void h2msg_put(struct h2msg *m)
{
	if (m && !--m->refs) {
		st_bq_free(&m->body);
		free(m->tr);
		free(m);
	}
}

/* ---- streams ------------------------------------------------------------------------------ */

static struct sh2 *H(nghttp2_session *s, void *ud)
{
	(void)s;
	return ud;
}

static struct h2out *out_of(struct sh2 *h, int32_t id)
{
	struct h2out *o = id > 0 ? nghttp2_session_get_stream_user_data(h->s, id) : NULL;

	return o && !(o->f & OS_OVER) ? o : NULL;
}

/* o leaves the connection's accounting: its message, its pair (ending side s with why when
 * it had no final answer), its place among the open streams. A tombstone stays while the
 * session may still name it. */
static void out_over(struct sh2 *h, struct h2out *o, enum st_cmp_reason why)
{
	struct sconn *sc = h->sc;
	uint64_t old = sc_mem(sc);

	if (o->f & OS_OVER)
		return;
	if ((o->f & OS_HEADERS) && !(o->f & OS_END))
		h->n_sending--;
	if ((o->f & OS_WRITTEN) && !(o->f & OS_ANSWERED))
		h->n_awaiting--;
	if (st_list_linked(&o->wnode))
		st_list_del_init(&o->wnode);
	o->f |= OS_OVER;
	h->n_open--;
	if (o->pair) {
		st_compare__pair_release(o->pair, sc_side(sc->target), why);
		o->pair = NULL;
	}
	st_correlate_ex_put(o->ex);
	o->ex = NULL;
	sc->held -= o->m->mem;
	h2msg_put(o->m);
	o->m = NULL;
	sc_acct(sc, old);
}

static void out_free(struct h2out *o)
{
	st_list_del_init(&o->node);
	free(o);
}

/* Reads the body for the session; at its end, the trailers (RFC 9113 8.1). */
static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2out *o = src->ptr;
	const struct st_bq *b;
	size_t n = 0;

	(void)ud;
	if (!o->m)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* moved away (a GOAWAY) */
	b = &o->m->body;
	while (n < len && o->off < b->end) {
		struct iovec iov[8];
		uint64_t to = o->off + (len - n);
		int k = st_bq_iov(b, o->off, to < b->end ? to : b->end, iov, 8);

		if (k <= 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		for (int i = 0; i < k; i++) {
			memcpy(buf + n, iov[i].iov_base, iov[i].iov_len);
			n += iov[i].iov_len;
			o->off += iov[i].iov_len;
		}
	}
	if (o->off == b->end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (o->m->ntr) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, id, o->m->tr, o->m->ntr))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
	}
	return (ssize_t)n;
}

static int submit(struct sh2 *h, struct h2out *o)
{
	nghttp2_data_provider dp = { .source.ptr = o, .read_callback = body_read };
	bool data = o->m->body.end || o->m->ntr;

	o->id = nghttp2_submit_request(h->s, NULL, o->m->nv, o->m->nnv, data ? &dp : NULL, o);
	return o->id > 0 ? 0 : -EIO;
}

int sc_h2_push(struct sconn *sc, struct h2msg *m, struct st_cmp_pair *pair,
	       struct st_correlate_ex *ex)
{
	struct sh2 *h = sc->h2;
	struct st_shadow *sh = sc->sh;
	uint64_t old = sc_mem(sc);
	struct h2out *o;

	if (!sc_fits(sc, m->mem))
		return -ENOBUFS;
	if (h->goaway)
		return -EIO; /* cannot happen: a connection that said GOAWAY is detached */
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOBUFS;
	o->m = m;
	st_list_init(&o->wnode);
	if (submit(h, o)) {
		free(o);
		return -EIO;
	}
	m->refs++;
	if (pair) {
		o->pair = pair;
		st_compare__pair_get(pair);
	}
	if (ex) {
		o->ex = ex;
		st_correlate_ex_get(ex);
	}
	st_list_add_tail(&o->node, &h->streams);
	if (!h->n_sending && sc->q.sent == sc->q.commit)
		sc->progress_ns = sh_now(sh); /* the stall clock starts with the first byte */
	h->n_open++;
	sc->held += m->mem;
	sc_acct(sc, old);
	return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

int sc_h2_pump(struct sconn *sc)
{
	struct sh2 *h = sc->h2;

	/* within the caps, except the frame the socket needs next (else a connection whose
	 * messages fill its cap could never send them) */
	while (sc->q.end - sc->q.sent < PUMP_AHEAD &&
	       (sc->q.sent == sc->q.end || sc_fits(sc, st_bq_cost(&sc->q, FRAME_CHUNK)))) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(h->s, &p);
		struct h2out *o;

		if (n < 0 || (n > 0 && st_bq_append(&sc->q, p, (size_t)n)))
			return -1;
		if (!n)
			break;
		sc->q.commit = sc->q.end;
		/* the streams whose last frame this chunk holds end here at the latest: those at
		 * the list's tail without an offset yet (the list is in the order they ended) */
		for (struct st_list_head *l = h->ending.prev; l != &h->ending; l = l->prev) {
			o = st_list_entry(l, struct h2out, wnode);
			if (o->end_off)
				break;
			o->end_off = sc->q.end;
		}
	}
	return 0;
}

void sc_h2_written(struct sconn *sc, uint64_t t0)
{
	struct sh2 *h = sc->h2;
	struct st_shadow *sh = sc->sh;

	while (!st_list_empty(&h->ending)) {
		struct h2out *o = st_list_first_entry(&h->ending, struct h2out, wnode);

		if (!o->end_off || o->end_off > sc->q.sent)
			break;
		st_list_del_init(&o->wnode);
		o->f |= OS_WRITTEN;
		o->sent_ns = sc->progress_ns;
		sc->written++;
		sh->st.replayed++;
		if (!(o->f & OS_ANSWERED))
			h->n_awaiting++;
		if (o->pair) /* written whole: the shadow's latency starts here */
			st_compare__pair_sent(o->pair, sc_side(sc->target), t0);
	}
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
	struct sh2 *h = H(s, ud);
	struct h2out *o;

	if (fr->hd.type == NGHTTP2_GOAWAY && fr->goaway.error_code != NGHTTP2_NO_ERROR) {
		h->bad = true; /* the session found the shadow's bytes broken */
		return 0;
	}
	if ((fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA) ||
	    !(o = out_of(h, fr->hd.stream_id)))
		return 0;
	if (fr->hd.type == NGHTTP2_HEADERS && !(o->f & OS_HEADERS)) {
		o->f |= OS_HEADERS;
		h->n_sending++;
	}
	if ((fr->hd.flags & NGHTTP2_FLAG_END_STREAM) && !(o->f & OS_END)) {
		o->f |= OS_END;
		h->n_sending--;
		o->end_off = 0; /* the chunk holding it is appended after this call */
		st_list_add_tail(&o->wnode, &h->ending);
	}
	return 0;
}

/* A request the session could not start (the shadow's GOAWAY came first, or it is beyond
 * what the session allows): it was never sent. */
static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *fr, int err, void *ud)
{
	struct sh2 *h = H(s, ud);
	struct h2out *o;

	(void)err;
	if (fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	st_list_for_each_entry(o, &h->streams, node) {
		if (o->id == fr->hd.stream_id && !(o->f & OS_OVER)) {
			sh_dropped_down(h->sc->sh, h->sc->target, 1);
			out_over(h, o, ST_CMP_R_SHADOW_DROPPED);
			break;
		}
	}
	return 0;
}

/* ---- the shadow's answers ------------------------------------------------------------------ */

static void goaway(struct sconn *sc, int32_t last);

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
	struct sh2 *h = H(s, ud);

	(void)fr;
	h->status = 0;
	h->grpc_status = -1;
	h->nhf = 0;
	h->hblen = 0;
	h->hb_over = false;
	h->has_clen = false;
	/* tap compare's, and --correlate's: the answer's fields are learned from */
	h->keep = h->sc->sh->cfg.compare != NULL || h->sc->sh->cor != NULL;
	return 0;
}

static bool name_is(const uint8_t *n, size_t nl, const char *lit)
{
	return nl == strlen(lit) && !memcmp(n, lit, nl);
}

static bool parse_uint(const uint8_t *v, size_t vl, uint64_t *out)
{
	uint64_t x = 0;

	if (!vl || vl > 19)
		return false;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return true;
}

/* Keeps a field for tap compare (bounded: beyond RESP_FIELDS_MAX the rest is left out). */
static void keep_field(struct sh2 *h, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	size_t need = nl + vl + 2;

	if (h->hb_over || h->hblen + need > RESP_FIELDS_MAX) {
		h->hb_over = true;
		return;
	}
	if (h->hblen + need > h->hbcap) {
		/* the fields point into hb: it never moves while a block is kept */
		if (!h->hb && !(h->hb = malloc(RESP_FIELDS_MAX))) {
			h->hb_over = true;
			return;
		}
		h->hbcap = RESP_FIELDS_MAX;
	}
	if (h->nhf == h->hfcap) {
		uint32_t nc = h->hfcap ? h->hfcap * 2 : 16;
		struct st_http_header *f = realloc(h->hf, nc * sizeof(*f));

		if (!f) {
			h->hb_over = true;
			return;
		}
		h->hf = f;
		h->hfcap = nc;
	}
	memcpy(h->hb + h->hblen, n, nl);
	h->hb[h->hblen + nl] = 0;
	memcpy(h->hb + h->hblen + nl + 1, v, vl);
	h->hb[h->hblen + nl + 1 + vl] = 0;
	h->hf[h->nhf++] = (struct st_http_header){
		.name = h->hb + h->hblen, .name_len = (uint32_t)nl,
		.value = h->hb + h->hblen + nl + 1, .value_len = (uint32_t)vl,
	};
	h->hblen += (uint32_t)need;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *n, size_t nl,
		     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct sh2 *h = H(s, ud);
	uint64_t x;

	(void)flags;
	if (fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (name_is(n, nl, ":status")) {
		if (parse_uint(v, vl, &x) && x < 1000)
			h->status = (uint16_t)x;
		return 0;
	}
	if (name_is(n, nl, "grpc-status") && parse_uint(v, vl, &x))
		h->grpc_status = x > 255 ? 255 : (int)x;
	else if (name_is(n, nl, "content-length") && parse_uint(v, vl, &x)) {
		h->clen = x;
		h->has_clen = true;
	}
	if (h->keep && nl && n[0] != ':')
		keep_field(h, n, nl, v, vl);
	return 0;
}

static bool grpc_trailer(const struct st_http_header *f)
{
	return (f->name_len == 11 && !memcmp(f->name, "grpc-status", 11)) ||
	       (f->name_len == 12 && !memcmp(f->name, "grpc-message", 12)) ||
	       (f->name_len == 23 && !memcmp(f->name, "grpc-status-details-bin", 23));
}

uint32_t sh_grpc_trailers_only(struct st_http_header *f, uint32_t n)
{
	uint32_t k = 0;

	/* stable: the others keep their order, the trailers theirs */
	for (uint32_t i = 0; i < n; i++) {
		if (grpc_trailer(&f[i]))
			continue;
		if (i != k) {
			struct st_http_header t = f[i];

			memmove(&f[k + 1], &f[k], (i - k) * sizeof(*f));
			f[k] = t;
		}
		k++;
	}
	return k;
}

/* The answer's head as HTTP/1's framer would give it, for tap compare. */
static void resp_head(struct sh2 *h, struct h2out *o, bool end, struct st_http_head *hh)
{
	memset(hh, 0, sizeof(*hh));
	hh->version_major = 2;
	hh->status = h->status;
	hh->method = (enum st_http_method)o->m->method;
	hh->headers = h->hf;
	hh->nheaders = h->nhf;
	hh->flags = ST_HTTP_HF_KEEP_ALIVE;
	if (end) {
		hh->body = ST_HTTP_BODY_NONE;
	} else if (h->has_clen) {
		hh->body = ST_HTTP_BODY_LENGTH;
		hh->content_length = h->clen;
		hh->flags |= ST_HTTP_HF_CONTENT_LENGTH;
	} else {
		hh->body = ST_HTTP_BODY_UNTIL_CLOSE;
	}
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
	struct sh2 *h = H(s, ud);
	struct sconn *sc = h->sc;
	bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;
	struct h2out *o;

	if (fr->hd.type == NGHTTP2_GOAWAY) {
		goaway(sc, fr->goaway.last_stream_id);
		return 0;
	}
	if (fr->hd.type != NGHTTP2_HEADERS || !(o = out_of(h, fr->hd.stream_id)))
		return 0;
	if (h->grpc_status >= 0) {
		o->grpc_status = (uint8_t)h->grpc_status;
		o->f |= OS_GRPC;
	}
	if (fr->headers.cat == NGHTTP2_HCAT_HEADERS && (o->f & OS_ANSWERED) && o->pair)
		st_compare__pair_trailers(o->pair, sc_side(sc->target), h->hf, h->nhf);
	if (fr->headers.cat != NGHTTP2_HCAT_RESPONSE || h->status < 200 || (o->f & OS_ANSWERED))
		return 0; /* trailers, or an interim (1xx) answer */
	o->f |= OS_ANSWERED;
	o->status = h->status;
	if (o->f & OS_WRITTEN) {
		h->n_awaiting--;
		sh_answer_latency(sc->sh, o->sent_ns, sc->read_ns);
	}
	if (o->ex) {
		struct st_http_head hh;

		resp_head(h, o, end, &hh);
		st_correlate_ans_free(&o->ex->tgt[sc->slot]);
		st_correlate_ans_head(&o->ex->tgt[sc->slot], sc->sh->cfg.correlate, &hh);
	}
	if (o->pair) {
		struct st_http_head hh;
		uint32_t n;

		resp_head(h, o, end, &hh);
		n = end && o->m->grpc ? sh_grpc_trailers_only(h->hf, h->nhf) : h->nhf;
		hh.nheaders = n;
		st_compare__pair_head(o->pair, sc_side(sc->target), &hh, sc->rx_ns);
		if (n < h->nhf)
			st_compare__pair_trailers(o->pair, sc_side(sc->target), h->hf + n, h->nhf - n);
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
		   void *ud)
{
	struct sh2 *h = H(s, ud);
	struct h2out *o = out_of(h, id);

	(void)flags;
	if (!o)
		return 0;
	o->body_len += n;
	if (o->pair && n)
		st_compare__pair_body(o->pair, sc_side(h->sc->target), d, n);
	if (o->ex && (o->f & OS_ANSWERED) && n)
		st_correlate_ans_body(&o->ex->tgt[h->sc->slot], d, n);
	return 0;
}

/* The answers counted by gRPC status (st_shadow_stats: grpc_ok + code, grpc_other). */
static void count_grpc(struct st_shadow *sh, const struct h2out *o)
{
	uint64_t *c = &sh->st.grpc_other;

	if ((o->f & OS_GRPC) && o->grpc_status <= 16)
		c = &sh->st.grpc_ok + o->grpc_status;
	(*c)++;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct sh2 *h = H(s, ud);
	struct sconn *sc = h->sc;
	struct st_shadow *sh = sc->sh;
	struct h2out *o = nghttp2_session_get_stream_user_data(s, id);

	if (!o)
		return 0;
	if (o->f & OS_OVER) {
		out_free(o); /* a tombstone: the session is done with it */
		return 0;
	}
	if ((o->f & OS_ANSWERED) && code == NGHTTP2_NO_ERROR) {
		/* answered whole (before its body was, too: a server may answer an upload early
		 * and reset the rest with NO_ERROR, RFC 9113 8.1): the shadow ran it */
		if (!(o->f & OS_WRITTEN))
			sh->st.replayed++;
		sh->st.responses++;
		sc->answered++;
		sc->answer_ns = sh_now(sh);
		if (o->ex) /* learned from, and what it explains told to compare */
			sh_cor_tgt_done(sh, o->ex, sc->slot, o->pair);
		if (o->pair)
			st_compare__pair_done(o->pair, sc_side(sc->target));
		if (o->m->grpc || (o->f & OS_GRPC))
			count_grpc(sh, o);
		if (sh->cfg.on_response) {
			/* the head's fields are gone by the stream's end: its status only */
			struct st_http_head hh = { .version_major = 2, .status = o->status,
						   .method = (enum st_http_method)o->m->method };
			struct st_shadow_resp r = { .conn_id = sc->conn_id, .slot = sc->slot,
						    .req_seq = sc->resp_seq, .head = &hh,
						    .body_len = o->body_len };

			sh->cfg.on_response(sh->cfg.ctx, &r);
		}
		sc->resp_seq++;
	} else if (code == NGHTTP2_REFUSED_STREAM && !(o->f & OS_ANSWERED) &&
		   o->moves < MOVES_MAX && !h->goaway) {
		/* not processed (RFC 9113 8.7): a shadow over its concurrency limit before our
		 * session learnt it. Submitted again once this read is done. */
		if ((o->f & OS_HEADERS) && !(o->f & OS_END))
			h->n_sending--;
		if (o->f & OS_WRITTEN) {
			if (!(o->f & OS_ANSWERED))
				h->n_awaiting--;
			sh->st.replayed--; /* counted again when written again */
			sh->st.resent++;
		}
		if (st_list_linked(&o->wnode))
			st_list_del_init(&o->wnode);
		o->f = 0;
		o->off = 0;
		o->end_off = 0;
		o->moves++;
		st_list_del_init(&o->node);
		st_list_add_tail(&o->node, &h->again);
		nghttp2_session_set_stream_user_data(s, id, NULL);
		return 0;
	} else {
		if (code != NGHTTP2_NO_ERROR)
			sh->st.h2_shadow_resets++;
		if (o->f & OS_WRITTEN) {
			sh->st.unanswered++;
		} else {
			sh_dropped_down(sh, h->sc->target, 1);
		}
	}
	out_over(h, o, (o->f & OS_WRITTEN) ? ST_CMP_R_SHADOW_UNANSWERED : ST_CMP_R_SHADOW_DROPPED);
	out_free(o);
	return 0;
}

/* ---- a GOAWAY from the shadow -------------------------------------------------------------- */

/*
 * The shadow processes no stream above last on this connection: those go again, in their
 * order, on a new connection; the others finish here. This connection takes no new stream.
 */
static void goaway(struct sconn *sc, int32_t last)
{
	struct sh2 *h = sc->h2;
	struct st_shadow *sh = sc->sh;
	struct st_list_head moved = ST_LIST_HEAD_INIT(moved);
	struct h2out *o, *tmp;
	struct sconn *n = NULL;
	struct cconn *cc = sc->cc;
	bool progress = sc->answered > 0;

	if (!h->goaway)
		sh->st.h2_goaways++;
	h->goaway = true;
	/* a shadow that processes some of every connection's streams gets them all done; one
	 * that processes none (GOAWAY at once, every time) must not keep us reconnecting */
	st_list_for_each_entry(o, &h->streams, node)
		progress |= o->id > 0 && o->id <= last;
	sc_detach(sc); /* new requests of the captured connection open a new one */
	st_list_for_each_entry_safe(o, tmp, &h->streams, node) {
		struct h2out *c;

		if ((o->f & OS_OVER) || o->id <= last)
			continue;
		/* a copy moves; the original stays a tombstone for this session */
		c = calloc(1, sizeof(*c));
		if (c) {
			c->m = o->m;
			c->m->refs++;
			c->pair = o->pair;
			if (c->pair)
				st_compare__pair_get(c->pair);
			c->ex = o->ex;
			if (c->ex) {
				st_correlate_ex_get(c->ex);
				/* what came of an answer on the old connection is gone */
				st_correlate_ans_free(&c->ex->tgt[sc->slot]);
			}
			c->moves = progress ? 0 : (uint8_t)(o->moves + 1);
			st_list_init(&c->wnode);
			st_list_add_tail(&c->node, &moved);
		}
		if (o->f & OS_WRITTEN) {
			sh->st.replayed--; /* counted again when written again */
			if (c)
				sh->st.resent++;
		}
		if (!c) {
			sh_dropped_down(sh, h->sc->target, 1);
		}
		out_over(h, o, ST_CMP_R_SHADOW_DROPPED);
	}
	if (st_list_empty(&moved) && !sc->cw_n)
		return;
	n = sc_new(sh, cc, sc->slot, SK_H2);
	if (n && cc && !*st_shadow_cc_slot(cc, sc->slot))
		*st_shadow_cc_slot(cc, sc->slot) = n;
	else if (n)
		n->cc = NULL; /* the captured connection has another one by now */
	if (n && sc->cw_n) {
		/* --correlate: the requests waiting for a value wait there, behind those moved */
		uint64_t old_sc = sc_mem(sc), old_n = sc_mem(n);

		sc_cor_move(sc, n);
		sc_acct(sc, old_sc);
		sc_acct(n, old_n);
	}
	st_list_for_each_entry_safe(o, tmp, &moved, node) {
		int err = o->moves > MOVES_MAX || !n ? -EIO : 0;

		st_list_del_init(&o->node);
		if (!err) {
			err = sc_h2_push(n, o->m, o->pair, o->ex);
			if (!err) {
				struct h2out *pushed = st_list_last_entry(&n->h2->streams,
									  struct h2out, node);

				pushed->moves = o->moves;
			}
		}
		if (err) {
			sh_dropped(sh, err, o->pair, sc->target);
		} else if (o->pair) {
			/* what came of an answer on the old connection is gone */
			st_compare__pair_reset(o->pair, sc_side(sc->target));
		}
		if (o->pair)
			st_compare__pair_release(o->pair, -1, ST_CMP_R_NONE);
		st_correlate_ex_put(o->ex);
		h2msg_put(o->m);
		free(o);
	}
	if (n)
		sc_mark(n);
}

/* ---- input, life ----------------------------------------------------------------------------- */

bool sc_h2_recv(struct sconn *sc, const uint8_t *p, size_t n)
{
	struct sh2 *h = sc->h2;
	ssize_t r = nghttp2_session_mem_recv(h->s, p, n);

	if (sc->state == SC_DEAD)
		return false;
	/* the session ends the connection only on an error of the shadow's (we never ask it
	 * to): not HTTP/2, or broken; reading on could never pair an answer again */
	if (r < 0 || h->bad || (!nghttp2_session_want_read(h->s) && !h->goaway)) {
		sc_bad_response(sc);
		return false;
	}
	while (!st_list_empty(&h->again)) {
		struct h2out *o = st_list_first_entry(&h->again, struct h2out, node);

		st_list_del_init(&o->node);
		st_list_add_tail(&o->node, &h->streams);
		if (submit(h, o)) {
			sh_dropped_down(sc->sh, sc->target, 1);
			out_over(h, o, ST_CMP_R_SHADOW_DROPPED);
		}
	}
	return true;
}

uint32_t sc_h2_open(const struct sconn *sc)
{
	return sc->h2->n_open;
}

bool sc_h2_sending(const struct sconn *sc)
{
	return sc->h2->n_sending > 0;
}

uint32_t sc_h2_awaiting(const struct sconn *sc)
{
	return sc->h2->n_awaiting;
}

void sc_h2_close(struct sconn *sc)
{
	struct sh2 *h = sc->h2;
	struct st_shadow *sh = sc->sh;
	struct h2out *o;

	/* written whole: the shadow may have run it (never sent again); else dropped */
	st_list_splice_tail_init(&h->again, &h->streams);
	st_list_for_each_entry(o, &h->streams, node) {
		if (o->f & OS_OVER)
			continue;
		if (o->f & OS_WRITTEN) {
			sh->st.unanswered++;
		} else {
			sh_dropped_down(sh, h->sc->target, 1);
		}
		out_over(h, o, (o->f & OS_WRITTEN) ? ST_CMP_R_SHADOW_UNANSWERED :
						     ST_CMP_R_SHADOW_DROPPED);
	}
}

int sc_h2_init(struct sconn *sc)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		/* no priority tree to keep (RFC 9218): streams go as the session sends them */
		{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
	};
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	struct sh2 *h = calloc(1, sizeof(*h));
	int r = -ENOMEM;

	if (!h || nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
		goto out;
	h->sc = sc;
	st_list_init(&h->streams);
	st_list_init(&h->ending);
	st_list_init(&h->again);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	/* a request's header block may be as large as the framer lets one be */
	nghttp2_option_set_max_send_header_block_length(opt, HEADER_BLOCK_MAX);
	/* closed streams are kept only for RFC 7540's priority tree, which we do not use */
	nghttp2_option_set_no_closed_streams(opt, 1);
	if (nghttp2_session_client_new2(&h->s, cb, h, opt))
		goto out;
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW))
		goto out;
	sc->h2 = h;
	h = NULL;
	r = 0;
out:
	if (h) {
		if (h->s)
			nghttp2_session_del(h->s);
		free(h);
	}
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return r;
}

void sc_h2_free(struct sconn *sc)
{
	struct sh2 *h = sc->h2;
	struct h2out *o, *tmp;

	if (!h)
		return;
	if (h->n_open)
		sc_h2_close(sc);
	nghttp2_session_del(h->s);
	st_list_splice_tail_init(&h->again, &h->streams);
	st_list_for_each_entry_safe(o, tmp, &h->streams, node)
		out_free(o);
	free(h->hf);
	free(h->hb);
	free(h);
	sc->h2 = NULL;
}
