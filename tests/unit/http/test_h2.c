/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/http/h2.c. The traffic is written in the test by libnghttp2 itself: a
 * client and a server session talk through memory, each recording what it received (the
 * reference). The bytes both wrote, in the order they wrote them, are then fed to the framer
 * whole, byte by byte, cut at every offset (small conversations) and at random splits (large
 * ones): per stream and direction the framer must hand out what the receiving session got.
 * Then the bounds, a connection joined midway or crossing a gap, and frames that break the
 * protocol, built by hand.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "http.h"

/* ---- transcripts: what each side of each stream carried --------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void bput(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	bput(b, tmp, (size_t)n);
}

struct strm {
	uint32_t id;
	struct buf text[2];   /* per direction: "H"/"HI"/"T" blocks, "D:" body bytes, "E" */
	uint8_t last[2];      /* last thing written per direction (DATA pieces merge) */
	bool head[2], final;  /* the reference's own bookkeeping */
	struct buf reset;
};

struct col {
	struct strm *s;
	size_t n, cap;
	struct buf global;    /* GOAWAY, STOP */
	uint32_t stops;
	struct st_h2_event stop;
	uint32_t drops[ST_H2_LIMIT__COUNT];
	uint32_t malformed;
	struct st_h2_stats st;
	size_t mem_peak;
};

static struct strm *sget(struct col *c, uint32_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->s[i].id == id)
			return &c->s[i];
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->s = realloc(c->s, c->cap * sizeof(*c->s));
		assert_non_null(c->s);
	}
	memset(&c->s[c->n], 0, sizeof(c->s[c->n]));
	c->s[c->n].id = id;
	return &c->s[c->n++];
}

enum { L_NONE = 0, L_DATA, L_OTHER };

static void sdata(struct col *c, uint32_t id, int dir, const void *p, size_t n)
{
	struct strm *s = sget(c, id);

	if (!n)
		return;
	if (s->last[dir] != L_DATA)
		bput(&s->text[dir], "D:", 2);
	bput(&s->text[dir], p, n);
	s->last[dir] = L_DATA;
}

static void stext(struct col *c, uint32_t id, int dir, const char *t)
{
	struct strm *s = sget(c, id);

	if (s->last[dir] == L_DATA)
		bput(&s->text[dir], "\n", 1);
	bput(&s->text[dir], t, strlen(t));
	s->last[dir] = L_OTHER;
}

static void col_free(struct col *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->s[i].text[0].p);
		free(c->s[i].text[1].p);
		free(c->s[i].reset.p);
	}
	free(c->s);
	free(c->global.p);
	memset(c, 0, sizeof(*c));
}

static const char *bstr(const struct buf *b)
{
	return b->p ? b->p : "";
}

static void same_buf(const char *what, uint32_t id, int dir, const struct buf *a,
		     const struct buf *b)
{
	size_t i = 0;

	if (a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len)))
		return;
	while (i < a->len && i < b->len && a->p[i] == b->p[i])
		i++;
	print_error("%s: stream %u dir %d differs at byte %zu (lengths %zu, %zu)\n"
		    "reference: ...%.200s\nframer:    ...%.200s\n", what, id, dir, i, a->len,
		    b->len, a->p ? a->p + (i > 40 ? i - 40 : 0) : "",
		    b->p ? b->p + (i > 40 ? i - 40 : 0) : "");
	fail();
}

/* Every stream the reference saw (odd ids only) the framer handed out the same way. */
static void same_col(const struct col *ref, const struct col *got)
{
	const struct strm *e;

	for (size_t i = 0; i < ref->n; i++) {
		const struct strm *g = NULL;

		e = &ref->s[i];
		for (size_t k = 0; k < got->n; k++)
			if (got->s[k].id == e->id)
				g = &got->s[k];
		if (!g) {
			if (!e->text[0].len && !e->text[1].len && !e->reset.len)
				continue;
			print_error("stream %u: the framer handed out nothing\nreference: %s | %s\n",
				    e->id, bstr(&e->text[0]), bstr(&e->text[1]));
			fail();
		}
		same_buf("text", e->id, 0, &e->text[0], &g->text[0]);
		same_buf("text", e->id, 1, &e->text[1], &g->text[1]);
		same_buf("reset", e->id, 0, &e->reset, &g->reset);
	}
	for (size_t k = 0; k < got->n; k++) {
		bool found = false;

		for (size_t i = 0; i < ref->n; i++)
			found |= ref->s[i].id == got->s[k].id;
		if (!found && (got->s[k].text[0].len || got->s[k].text[1].len)) {
			print_error("stream %u: only the framer has it: %s | %s\n", got->s[k].id,
				    bstr(&got->s[k].text[0]), bstr(&got->s[k].text[1]));
			fail();
		}
	}
	same_buf("goaway", 0, 0, &ref->global, &got->global);
}

/* ---- the conversation: the bytes each side wrote, in order --------------------------------- */

struct chunk {
	uint8_t dir;
	bool delivered;
	size_t off, len;
};

struct conv {
	struct buf b;
	struct chunk *ch;
	size_t n, cap;
};

static void conv_add(struct conv *cv, int dir, const uint8_t *p, size_t n)
{
	struct chunk *last = cv->n ? &cv->ch[cv->n - 1] : NULL;

	if (!n)
		return;
	if (last && last->dir == dir && !last->delivered) {
		last->len += n;
	} else {
		if (cv->n == cv->cap) {
			cv->cap = cv->cap ? cv->cap * 2 : 64;
			cv->ch = realloc(cv->ch, cv->cap * sizeof(*cv->ch));
			assert_non_null(cv->ch);
		}
		cv->ch[cv->n++] = (struct chunk){ .dir = (uint8_t)dir, .off = cv->b.len, .len = n };
	}
	bput(&cv->b, p, n);
}

static void conv_free(struct conv *cv)
{
	free(cv->b.p);
	free(cv->ch);
	memset(cv, 0, sizeof(*cv));
}

/* ---- the two sessions ------------------------------------------------------------------- */

struct scen {
	uint64_t seed;
	int nreq;                 /* requests sent at the start */
	size_t req_body_max, resp_body_max;
	bool pad;                 /* DATA and HEADERS padded, both ways */
	bool big_headers;         /* header blocks over the frame size: CONTINUATION */
	bool churn;               /* distinct header values, HEADER_TABLE_SIZE changes both ways */
	bool trailers;            /* both sides end with trailers */
	bool interim;             /* the server answers 100 first */
	bool push;                /* the server pushes */
	bool big_frames;          /* the client allows 64 KiB frames and the server uses them */
	bool hold;                /* the server does not answer (the test drives it) */
};

struct body {
	uint8_t *p;
	size_t len, off;
	bool trailers;
	struct body *next;
};

struct peer {
	nghttp2_session *s;
	int side;                 /* 0 client, 1 server */
	struct conv *cv;
	struct col *ref;          /* what this side received */
	const struct scen *sc;
	struct buf blk;           /* the header block being received */
	bool blk_skip;
	unsigned blk_status;
	struct body *bodies;
	uint64_t rng;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct body *body_new(struct peer *p, size_t len, bool trailers)
{
	struct body *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->p = malloc(len + 1);
	assert_non_null(b->p);
	for (size_t i = 0; i < len; i++)
		b->p[i] = (uint8_t)rnd(&p->rng);
	b->len = len;
	b->trailers = trailers;
	b->next = p->bodies;
	p->bodies = b;
	return b;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct body *b = src->ptr;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	memcpy(out, b->p + b->off, n);
	b->off += n;
	if (b->off == b->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (b->trailers) {
			nghttp2_nv t[] = {
				{ (uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0 },
				{ (uint8_t *)"x-trailer", (uint8_t *)"end of body", 9, 11, 0 },
			};

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			assert_int_equal(nghttp2_submit_trailer(s, id, t, 2), 0);
		}
	}
	return (ssize_t)n;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0 }

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct peer *p = ud;

	p->blk.len = 0;
	p->blk_status = 0;
	/* pushes are never handed out by the framer: the reference leaves them out too */
	p->blk_skip = f->hd.type == NGHTTP2_PUSH_PROMISE || !(f->hd.stream_id & 1);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct peer *p = ud;

	if (p->blk_skip)
		return 0;
	bput(&p->blk, name, nlen);
	bput(&p->blk, "=", 1);
	bput(&p->blk, value, vlen);
	bput(&p->blk, "\n", 1);
	if (nlen == 7 && !memcmp(name, ":status", 7) && vlen == 3)
		p->blk_status = (unsigned)atoi((const char *)value);
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct peer *p = ud;

	if (id & 1)
		sdata(p->ref, (uint32_t)id, !p->side, data, len);
	return 0;
}

static void respond(struct peer *p, int32_t id)
{
	const struct scen *sc = p->sc;
	char xs[32], churn[40], big[3][12001];
	nghttp2_nv nv[8] = { NV(":status", "200"), NV("content-type", "application/octet-stream") };
	size_t n = 2, blen = sc->resp_body_max ? rnd(&p->rng) % (sc->resp_body_max + 1) : 0;
	nghttp2_data_provider dp;

	snprintf(xs, sizeof(xs), "%d", id);
	nv[n++] = (nghttp2_nv)NV("x-stream", xs);
	if (sc->churn) {
		snprintf(churn, sizeof(churn), "%016llx", (unsigned long long)rnd(&p->rng));
		nv[n++] = (nghttp2_nv)NV("x-churn", churn);
	}
	if (sc->big_headers) {
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 12000; k++)
				big[i][k] = (char)('!' + rnd(&p->rng) % 90);
			big[i][12000] = 0;
			nv[n++] = (nghttp2_nv)NV(i == 0 ? "x-big-a" : i == 1 ? "x-big-b" : "x-big-c",
						 big[i]);
		}
	}
	if (sc->interim) {
		nghttp2_nv c100[] = { NV(":status", "100") };

		assert_true(nghttp2_submit_headers(p->s, NGHTTP2_FLAG_NONE, id, NULL, c100, 1, NULL) >= 0);
	}
	if (sc->push && id % 3 == 1) {
		char path[32];
		nghttp2_nv pp[] = { NV(":method", "GET"), NV(":scheme", "http"),
				    NV(":authority", "example.test"), NV(":path", path) };
		int32_t pid;

		snprintf(path, sizeof(path), "/pushed/%d", id);
		pp[3] = (nghttp2_nv)NV(":path", path);
		pid = nghttp2_submit_push_promise(p->s, 0, id, pp, 4, NULL);
		if (pid > 0) {
			struct body *pb = body_new(p, 300, false);
			nghttp2_nv pr[] = { NV(":status", "200"), NV("x-pushed", "yes") };

			dp.source.ptr = pb;
			dp.read_callback = body_read;
			assert_int_equal(nghttp2_submit_response(p->s, pid, pr, 2, &dp), 0);
		}
	}
	dp.source.ptr = body_new(p, blen, sc->trailers);
	dp.read_callback = body_read;
	assert_int_equal(nghttp2_submit_response(p->s, id, nv, n, blen || sc->trailers ? &dp : NULL),
			 0);
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct peer *p = ud;
	int dir = !p->side; /* the direction of the frames this side receives */
	uint32_t id = (uint32_t)f->hd.stream_id;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS: {
		struct strm *st;
		const char *k;

		if (!(id & 1))
			break;
		st = sget(p->ref, id);
		if (dir == 0) {
			k = st->head[0] ? "T\n" : "H\n";
			st->head[0] = true;
		} else if (!st->final) {
			k = p->blk_status < 200 ? "HI\n" : "H\n";
			st->final = p->blk_status >= 200;
		} else {
			k = "T\n";
		}
		stext(p->ref, id, dir, k);
		bput(&st->text[dir], p->blk.p ? p->blk.p : "", p->blk.len);
		if (end)
			stext(p->ref, id, dir, "E\n");
		if (end && p->side == 1 && !p->sc->hold)
			respond(p, (int32_t)id);
		break;
	}
	case NGHTTP2_DATA:
		if (end && (id & 1)) {
			stext(p->ref, id, dir, "E\n");
			if (p->side == 1 && !p->sc->hold)
				respond(p, (int32_t)id);
		}
		break;
	case NGHTTP2_RST_STREAM:
		if (id & 1)
			bprintf(&sget(p->ref, id)->reset, "R %d %u\n", dir, f->rst_stream.error_code);
		break;
	case NGHTTP2_GOAWAY:
		bprintf(&p->ref->global, "G %d %d %u\n", dir, f->goaway.last_stream_id,
			f->goaway.error_code);
		break;
	default:
		break;
	}
	return 0;
}

static ssize_t pad_cb(nghttp2_session *s, const nghttp2_frame *f, size_t max, void *ud)
{
	struct peer *p = ud;
	size_t want = f->hd.length + 1 + rnd(&p->rng) % 200;

	return (ssize_t)(want < max ? want : max);
}

static ssize_t read_len_cb(nghttp2_session *s, uint8_t type, int32_t id, int32_t swin,
			   int32_t cwin, uint32_t rmax, void *ud)
{
	ssize_t m = swin < cwin ? swin : cwin;

	return m < (ssize_t)rmax ? m : (ssize_t)rmax;
}

static void peer_init(struct peer *p, int side, struct conv *cv, struct col *ref,
		      const struct scen *sc)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[3] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
		{ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 },
	};
	size_t niv = 2;

	memset(p, 0, sizeof(*p));
	p->side = side;
	p->cv = cv;
	p->ref = ref;
	p->sc = sc;
	p->rng = sc->seed * 2 + (uint64_t)side + 1;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	if (sc->pad)
		nghttp2_session_callbacks_set_select_padding_callback(cb, pad_cb);
	if (sc->big_frames)
		nghttp2_session_callbacks_set_data_source_read_length_callback(cb, read_len_cb);
	assert_int_equal(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 65536);
	nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
	if (side == 0)
		assert_int_equal(nghttp2_session_client_new2(&p->s, cb, p, opt), 0);
	else
		assert_int_equal(nghttp2_session_server_new2(&p->s, cb, p, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (sc->big_frames && side == 0)
		iv[niv++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 65536 };
	assert_int_equal(nghttp2_submit_settings(p->s, NGHTTP2_FLAG_NONE, iv, niv), 0);
}

static void peer_free(struct peer *p)
{
	nghttp2_session_del(p->s);
	while (p->bodies) {
		struct body *b = p->bodies;

		p->bodies = b->next;
		free(b->p);
		free(b);
	}
	free(p->blk.p);
}

/* What p wants to write, into the conversation (not delivered yet). Returns bytes. */
static size_t psend(struct peer *p)
{
	size_t total = 0;

	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(p->s, &d);

		assert_true(n >= 0);
		if (!n)
			return total;
		conv_add(p->cv, p->side, d, (size_t)n);
		total += (size_t)n;
	}
}

/* Everything the other side wrote and p has not read yet. */
static void pdeliver(struct peer *p)
{
	struct conv *cv = p->cv;

	for (size_t i = 0; i < cv->n; i++) {
		struct chunk *c = &cv->ch[i];

		if (c->dir == p->side || c->delivered)
			continue;
		c->delivered = true;
		assert_int_equal(nghttp2_session_mem_recv(p->s, (const uint8_t *)cv->b.p + c->off,
							  c->len),
				 (ssize_t)c->len);
	}
}

static void pump(struct peer *cl, struct peer *sv)
{
	for (int guard = 0; guard < 100000; guard++) {
		size_t n = psend(cl);

		pdeliver(sv);
		n += psend(sv);
		pdeliver(cl);
		if (!n)
			return;
	}
	fail_msg("the sessions never went quiet");
}

static void request(struct peer *cl, int i, size_t body_len, bool trailers)
{
	const struct scen *sc = cl->sc;
	char path[64], churn[2][40], big[3][12001];
	nghttp2_nv nv[12] = { NV(":method", body_len || trailers ? "POST" : "GET"),
			      NV(":scheme", "http"), NV(":authority", "example.test") };
	size_t n = 3;
	nghttp2_data_provider dp;

	snprintf(path, sizeof(path), "/s/%d?q=%llu", i, (unsigned long long)(rnd(&cl->rng) % 1000));
	nv[n++] = (nghttp2_nv)NV(":path", path);
	nv[n++] = (nghttp2_nv)NV("user-agent", "test_h2/1.0");
	if (sc->churn) {
		for (int k = 0; k < 2; k++) {
			snprintf(churn[k], sizeof(churn[k]), "%llu-%d",
				 (unsigned long long)rnd(&cl->rng), k);
			nv[n++] = (nghttp2_nv)NV(k ? "x-churn-b" : "x-churn-a", churn[k]);
		}
		nv[n++] = (nghttp2_nv)NV("authorization", "Bearer secret");
		nv[n - 1].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
	if (sc->big_headers) {
		for (int b = 0; b < 3; b++) {
			for (int k = 0; k < 12000; k++)
				big[b][k] = (char)('!' + rnd(&cl->rng) % 90);
			big[b][12000] = 0;
			nv[n++] = (nghttp2_nv)NV(b == 0 ? "x-big-a" : b == 1 ? "x-big-b" : "x-big-c",
						 big[b]);
		}
	}
	dp.source.ptr = body_new(cl, body_len, trailers);
	dp.read_callback = body_read;
	assert_true(nghttp2_submit_request(cl->s, NULL, nv, n,
					   body_len || trailers ? &dp : NULL, NULL) > 0);
}

/* ---- the framer's side ------------------------------------------------------------------- */

static void record(struct col *c, const struct st_h2_event *ev, const uint8_t *p, size_t k)
{
	struct strm *s;
	char t[64];

	switch (ev->type) {
	case ST_H2_EV_NEED_MORE:
		break;
	case ST_H2_EV_HEAD:
	case ST_H2_EV_TRAILERS:
		s = sget(c, ev->stream);
		if (ev->type == ST_H2_EV_TRAILERS)
			stext(c, ev->stream, ev->dir, "T\n");
		else
			stext(c, ev->stream, ev->dir,
			      ev->head->flags & ST_H2_HF_INTERIM ? "HI\n" : "H\n");
		if (ev->head->flags & ST_H2_HF_MALFORMED)
			c->malformed++;
		for (uint32_t i = 0; i < ev->head->nfields; i++) {
			const struct st_h2_field *f = &ev->head->fields[i];

			assert_int_equal(f->name[f->name_len], 0);
			assert_int_equal(f->value[f->value_len], 0);
			bput(&s->text[ev->dir], f->name, f->name_len);
			bput(&s->text[ev->dir], "=", 1);
			bput(&s->text[ev->dir], f->value, f->value_len);
			bput(&s->text[ev->dir], "\n", 1);
		}
		break;
	case ST_H2_EV_DATA:
		assert_true(ev->data >= p && ev->data + ev->data_len <= p + k);
		assert_true(ev->data_len > 0);
		sdata(c, ev->stream, ev->dir, ev->data, ev->data_len);
		break;
	case ST_H2_EV_END:
		stext(c, ev->stream, ev->dir, "E\n");
		break;
	case ST_H2_EV_RESET:
		bprintf(&sget(c, ev->stream)->reset, "R %d %u\n", ev->dir, ev->error_code);
		break;
	case ST_H2_EV_DROP:
		assert_true(ev->limit > 0 && ev->limit < ST_H2_LIMIT__COUNT);
		c->drops[ev->limit]++;
		snprintf(t, sizeof(t), "X %u\n", ev->limit);
		stext(c, ev->stream, ev->dir, t);
		break;
	case ST_H2_EV_GOAWAY:
		bprintf(&c->global, "G %d %u %u\n", ev->dir, ev->last_stream, ev->error_code);
		break;
	case ST_H2_EV_STOP:
		assert_int_equal(c->stops, 0); /* said once */
		c->stops++;
		c->stop = *ev;
		assert_non_null(ev->detail);
		break;
	default:
		fail_msg("event %d", ev->type);
	}
}

static void feed(struct st_h2 *h, struct col *c, int dir, const uint8_t *p, size_t n)
{
	for (int guard = 0;; guard++) {
		struct st_h2_event ev;
		size_t k = st_h2__feed(h, dir, p, n, &ev);
		size_t m = st_h2__mem(h);

		assert_true(k <= n);
		if (m > c->mem_peak)
			c->mem_peak = m;
		record(c, &ev, p, k);
		p += k;
		n -= k;
		if (ev.type == ST_H2_EV_NEED_MORE) {
			assert_int_equal(n, 0);
			return;
		}
		assert_true(guard < 1000000);
	}
}

enum mode { M_WHOLE = 0, M_BYTES, M_RANDOM, M_CUT };

/* The conversation from chunk `from` on, cut as mode says (M_CUT: once, at byte `cut`). */
static void run_from(const struct conv *cv, size_t from, const struct st_h2_opts *o, enum mode m,
		     uint64_t seed, size_t cut, struct col *c, struct st_h2 *given)
{
	struct st_h2 *h = given ? given : st_h2__new(o);

	assert_non_null(h);
	for (size_t i = from; i < cv->n; i++) {
		const struct chunk *ch = &cv->ch[i];
		const uint8_t *p = (const uint8_t *)cv->b.p + ch->off;
		size_t pos = 0;

		while (pos < ch->len) {
			size_t n = ch->len - pos;

			if (m == M_BYTES)
				n = 1;
			else if (m == M_RANDOM)
				n = 1 + rnd(&seed) % (rnd(&seed) % 4 ? 40 : 3000);
			else if (m == M_CUT && ch->off + pos < cut && cut < ch->off + ch->len)
				n = cut - ch->off - pos;
			if (n > ch->len - pos)
				n = ch->len - pos;
			feed(h, c, ch->dir, p + pos, n);
			pos += n;
		}
	}
	st_h2__eof(h, 0);
	st_h2__eof(h, 1);
	feed(h, c, 0, NULL, 0);
	st_h2__stats(h, &c->st);
	st_h2__free(h);
}

static void run(const struct conv *cv, const struct st_h2_opts *o, enum mode m, uint64_t seed,
		size_t cut, struct col *c)
{
	run_from(cv, 0, o, m, seed, cut, c, NULL);
}

/* ---- a conversation per scenario ---------------------------------------------------------- */

struct talk {
	struct conv cv;
	struct col ref;
	struct peer cl, sv;
	struct scen sc;
};

static void talk_start(struct talk *t, const struct scen *sc)
{
	memset(t, 0, sizeof(*t));
	t->sc = *sc;
	peer_init(&t->cl, 0, &t->cv, &t->ref, &t->sc);
	peer_init(&t->sv, 1, &t->cv, &t->ref, &t->sc);
}

static void talk_free(struct talk *t)
{
	peer_free(&t->cl);
	peer_free(&t->sv);
	conv_free(&t->cv);
	col_free(&t->ref);
}

static void talk_requests(struct talk *t, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		size_t bl = t->sc.req_body_max ? rnd(&t->cl.rng) % (t->sc.req_body_max + 1) : 0;

		request(&t->cl, i, bl, t->sc.trailers);
	}
}

/* A conversation of sc->nreq requests, all answered. */
static void talk(struct talk *t, const struct scen *sc)
{
	talk_start(t, sc);
	talk_requests(t, 0, sc->nreq);
	pump(&t->cl, &t->sv);
}

/* The framer agrees with the reference fed every way; small: cut at every offset too. */
static void check_all_ways(const struct talk *t, const struct st_h2_opts *o, bool small)
{
	for (int m = M_WHOLE; m <= M_RANDOM; m++) {
		for (int r = 0; r < (m == M_RANDOM ? 4 : 1); r++) {
			struct col c = { 0 };

			run(&t->cv, o, (enum mode)m, 0x1234567u + (uint64_t)r, 0, &c);
			if (c.stops)
				fail_msg("stopped (%s, %s: %s)", st_h2_stop_str(c.stop.stop),
					 st_h2_errname(c.stop.error_code), c.stop.detail);
			assert_int_equal(c.malformed, 0);
			assert_int_equal(c.st.stream_errors, 0);
			same_col(&t->ref, &c);
			assert_int_equal(c.st.bytes[0] + c.st.bytes[1], t->cv.b.len);
			col_free(&c);
		}
	}
	if (!small)
		return;
	for (size_t cut = 1; cut < t->cv.b.len; cut++) {
		struct col c = { 0 };

		run(&t->cv, o, M_CUT, 0, cut, &c);
		assert_int_equal(c.stops, 0);
		same_col(&t->ref, &c);
		col_free(&c);
	}
}

static void test_simple(void **state)
{
	struct scen sc = { .seed = 1, .nreq = 2, .req_body_max = 40, .resp_body_max = 60 };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	assert_true(t.cv.b.len < 1000);
	assert_int_equal(t.ref.n, 2);
	check_all_ways(&t, NULL, true);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.streams, 2);
	assert_int_equal(c.st.settings[0], 1);
	assert_int_equal(c.st.settings[1], 1);
	assert_int_equal(c.st.settings_acks[0], 1);
	assert_int_equal(c.st.settings_acks[1], 1);
	assert_int_equal(c.st.streams_peak, 2);
	col_free(&c);
	talk_free(&t);
}

static void test_interleaved(void **state)
{
	struct scen sc = { .seed = 2, .nreq = 40, .req_body_max = 50000, .resp_body_max = 60000 };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.streams, 40);
	assert_true(c.st.streams_peak > 10); /* they were open at once */
	assert_true(c.st.window_updates > 0);
	col_free(&c);
	talk_free(&t);
}

static void test_padding(void **state)
{
	struct scen sc = { .seed = 3, .nreq = 3, .req_body_max = 30, .resp_body_max = 40,
			   .pad = true };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	check_all_ways(&t, NULL, true);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_true(c.st.padding_bytes > 100);
	col_free(&c);
	talk_free(&t);

	sc.nreq = 20;
	sc.req_body_max = 50000;
	sc.resp_body_max = 50000;
	talk(&t, &sc);
	check_all_ways(&t, NULL, false);
	talk_free(&t);
}

static void test_continuation(void **state)
{
	struct scen sc = { .seed = 4, .nreq = 3, .req_body_max = 100, .resp_body_max = 100,
			   .big_headers = true };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	/* 36 KB blocks in 16 KB frames: two CONTINUATIONs each, both ways */
	assert_true(c.st.continuations >= 12);
	col_free(&c);
	talk_free(&t);
}

/* Header values that change all the time and table sizes announced up and down, both ways:
 * each inflater follows its encoder's table exactly or the fields come out wrong. */
static void test_table_churn(void **state)
{
	static const uint32_t sizes[] = { 0, 65536, 256, 4096, 1024, 0, 8192, 65536, 100, 4096 };
	struct scen sc = { .seed = 5, .req_body_max = 200, .resp_body_max = 200, .churn = true };
	struct talk t;
	struct col c = { 0 };

	talk_start(&t, &sc);
	for (size_t r = 0; r < sizeof(sizes) / sizeof(sizes[0]); r++) {
		nghttp2_settings_entry a = { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, sizes[r] };
		nghttp2_settings_entry b = {
			NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
			sizes[(r + 3) % (sizeof(sizes) / sizeof(sizes[0]))] };

		assert_int_equal(nghttp2_submit_settings(t.cl.s, NGHTTP2_FLAG_NONE, &a, 1), 0);
		assert_int_equal(nghttp2_submit_settings(t.sv.s, NGHTTP2_FLAG_NONE, &b, 1), 0);
		talk_requests(&t, (int)r * 8, 8);
		pump(&t.cl, &t.sv);
	}
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_true(c.st.table_changes >= 20);
	assert_int_equal(c.st.settings[0], 11);
	assert_int_equal(c.st.settings_acks[1], 11);
	col_free(&c);
	talk_free(&t);
}

/*
 * A table size applies from the ACK: the server's answer encoded before it read the client's
 * SETTINGS (table 0) comes after those SETTINGS on the wire, and still uses the old table.
 */
static void test_table_from_ack(void **state)
{
	struct scen sc = { .seed = 17, .resp_body_max = 20, .churn = true };
	nghttp2_settings_entry zero = { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0 };
	struct talk t;
	struct col c = { 0 };
	size_t at;

	talk_start(&t, &sc);
	request(&t.cl, 0, 0, false);
	pump(&t.cl, &t.sv);
	request(&t.cl, 1, 0, false);
	psend(&t.cl);
	pdeliver(&t.sv); /* the server answers stream 3 (not sent yet) */
	assert_int_equal(nghttp2_submit_settings(t.cl.s, NGHTTP2_FLAG_NONE, &zero, 1), 0);
	psend(&t.cl);
	at = t.cv.b.len;
	psend(&t.sv); /* its answer, with the old table, after the client's SETTINGS */
	assert_true(t.cv.b.len > at);
	pump(&t.cl, &t.sv);
	request(&t.cl, 2, 0, false);
	pump(&t.cl, &t.sv);
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.settings[0], 2);
	col_free(&c);
	talk_free(&t);
}

static void test_trailers_interim(void **state)
{
	struct scen sc = { .seed = 6, .nreq = 3, .req_body_max = 50, .resp_body_max = 50,
			   .trailers = true, .interim = true };
	struct talk t;

	talk(&t, &sc);
	assert_non_null(strstr(bstr(&t.ref.s[0].text[1]), "HI\n:status=100\n"));
	assert_non_null(strstr(bstr(&t.ref.s[0].text[1]), "T\ngrpc-status=0\n"));
	assert_non_null(strstr(bstr(&t.ref.s[0].text[0]), "T\ngrpc-status=0\n"));
	check_all_ways(&t, NULL, true);
	talk_free(&t);
}

static void test_push(void **state)
{
	struct scen sc = { .seed = 7, .nreq = 7, .req_body_max = 0, .resp_body_max = 500,
			   .push = true };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.push_promises, 3); /* streams 1, 7, 13 */
	assert_true(c.st.pushed_frames >= 6);   /* their HEADERS and DATA, not handed out */
	for (size_t i = 0; i < c.n; i++)
		assert_true(c.s[i].id & 1);
	col_free(&c);
	talk_free(&t);
}

/* Frames over 16 KB are fine once the client allowed them, and only then. */
static void test_frame_size(void **state)
{
	struct scen sc = { .seed = 8, .nreq = 2, .resp_body_max = 200000, .big_frames = true };
	struct talk t;
	struct col c = { 0 };
	size_t i;

	talk(&t, &sc);
	check_all_ways(&t, NULL, false);
	/* the same bytes with the client's SETTINGS said to allow 16 KiB only: refused */
	for (i = 0; i + 9 < t.cv.b.len; i++)
		if (!memcmp(t.cv.b.p + i, "\x00\x05\x00\x01\x00\x00", 6))
			break;
	assert_true(i + 9 < t.cv.b.len);
	t.cv.b.p[i + 3] = 0x00; /* 65536 -> 16384 (0x00004000) */
	t.cv.b.p[i + 4] = 0x40;
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_PROTOCOL);
	assert_int_equal(c.stop.error_code, ST_H2_FRAME_SIZE_ERROR);
	assert_string_equal(st_h2_errname(c.stop.error_code), "FRAME_SIZE_ERROR");
	col_free(&c);
	talk_free(&t);
}

/* The client resets a request in the middle of its body; another stream goes on. */
static void test_rst_mid_body(void **state)
{
	struct scen sc = { .seed = 9, .resp_body_max = 100 };
	struct talk t;
	struct col c = { 0 };
	int32_t id;

	talk_start(&t, &sc);
	request(&t.cl, 0, 200000, false);
	id = 1;
	request(&t.cl, 1, 300, false);
	psend(&t.cl); /* HEADERS and the first window of DATA */
	pdeliver(&t.sv);
	psend(&t.sv);
	pdeliver(&t.cl);
	assert_int_equal(nghttp2_submit_rst_stream(t.cl.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
	pump(&t.cl, &t.sv);
	assert_non_null(strstr(bstr(&sget(&t.ref, 1)->reset), "R 0 8\n"));
	assert_null(strstr(bstr(&sget(&t.ref, 1)->text[0]), "E\n"));
	check_all_ways(&t, NULL, false);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.resets[0], 1);
	assert_int_equal(c.st.early_resets, 1);
	col_free(&c);
	talk_free(&t);
}

/* GOAWAY: streams above its last stream id are never handed out as requests. */
static void test_goaway(void **state)
{
	struct scen sc = { .seed = 10, .resp_body_max = 100 };
	struct talk t;
	struct col c = { 0 };

	talk_start(&t, &sc);
	request(&t.cl, 0, 0, false);
	psend(&t.cl);
	pdeliver(&t.sv);
	assert_int_equal(nghttp2_submit_goaway(t.sv.s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR,
					       NULL, 0), 0);
	psend(&t.sv); /* its answer to stream 1 and the GOAWAY, not read by the client yet */
	request(&t.cl, 1, 0, false);
	request(&t.cl, 2, 0, false);
	psend(&t.cl); /* streams 3 and 5, after the GOAWAY on the wire */
	pump(&t.cl, &t.sv);
	assert_int_equal(t.ref.n, 1); /* the server never saw 3 and 5 */
	check_all_ways(&t, NULL, true);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.st.goaways, 1);
	assert_int_equal(c.st.refused, 2);
	assert_string_equal(bstr(&c.global), "G 1 1 0\n");
	col_free(&c);
	talk_free(&t);
}

/* A hole in the client's direction delays its request: the answer is fed first. */
static void test_answer_first(void **state)
{
	struct scen sc = { .seed = 18, .req_body_max = 100, .resp_body_max = 3000 };
	struct talk t;
	struct col c = { 0 };
	struct chunk tmp;
	size_t x;

	talk_start(&t, &sc);
	request(&t.cl, 0, 0, false);
	pump(&t.cl, &t.sv);
	request(&t.cl, 1, 50, false);
	psend(&t.cl);
	x = t.cv.n - 1;
	pdeliver(&t.sv);
	psend(&t.sv);
	assert_int_equal(t.cv.n, x + 2);
	pump(&t.cl, &t.sv);
	tmp = t.cv.ch[x];
	t.cv.ch[x] = t.cv.ch[x + 1];
	t.cv.ch[x + 1] = tmp;
	for (int m = M_WHOLE; m <= M_RANDOM; m++) {
		run(&t.cv, NULL, (enum mode)m, 5, 0, &c);
		assert_int_equal(c.stops, 0);
		same_col(&t.ref, &c);
		assert_int_equal(c.st.stream_errors, 0);
		col_free(&c);
	}
	talk_free(&t);
}

/* ---- the HTTP/1.1 upgrade ----------------------------------------------------------------- */

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = a[(acc << (6 - bits)) & 63];
	out[o] = 0;
	return o;
}

static const struct st_http_head *http1_head(struct st_http_parser *p, const char *s)
{
	struct st_http_event ev;
	size_t n = st_http__feed(p, s, strlen(s), &ev);

	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(n, strlen(s));
	return ev.head;
}

static void test_upgrade(void **state)
{
	struct scen sc = { .seed = 11, .resp_body_max = 5000 };
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 8192 },
					{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 } };
	uint8_t pl[64];
	char b64[128], req[512];
	struct st_http_parser rq, rs;
	const struct st_http_head *h;
	struct talk t;
	struct col c = { 0 };
	struct st_h2 *x;
	ssize_t pn;

	talk_start(&t, &sc);
	pn = nghttp2_pack_settings_payload(pl, sizeof(pl), iv, 2);
	assert_int_equal(pn, 12);
	b64url(pl, (size_t)pn, b64);
	assert_int_equal(nghttp2_session_upgrade2(t.cl.s, pl, (size_t)pn, 0, NULL), 0);
	assert_int_equal(nghttp2_session_upgrade2(t.sv.s, pl, (size_t)pn, 0, NULL), 0);
	respond(&t.sv, 1);
	request(&t.cl, 1, 0, false); /* stream 3 on the upgraded connection */
	pump(&t.cl, &t.sv);

	snprintf(req, sizeof(req),
		 "GET /up?x=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t/1\r\n"
		 "Connection: Upgrade, HTTP2-Settings, X-Hop\r\nX-Hop: 1\r\nUpgrade: h2c\r\n"
		 "HTTP2-Settings: %s\r\nAccept: */*\r\n\r\n", b64);
	assert_int_equal(st_http__init(&rq, ST_HTTP_REQUEST, NULL), 0);
	assert_int_equal(st_http__init(&rs, ST_HTTP_RESPONSE, NULL), 0);
	h = http1_head(&rq, req);
	assert_true(st_h2_upgrade_requested(h));
	assert_true(st_h2_upgrade_accepted(http1_head(
		&rs, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")));
	st_http__reset(&rs);
	assert_false(st_h2_upgrade_accepted(http1_head(
		&rs, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")));

	x = st_h2__new(NULL);
	assert_int_equal(st_h2__upgrade(x, h), 0);
	assert_int_equal(st_h2__upgrade(x, h), -EINVAL); /* once */
	/* stream 1's request comes first, as the reference would have it */
	{
		struct strm *s = sget(&t.ref, 1);

		s->text[0].len = 0;
		bprintf(&s->text[0], "H\n:method=GET\n:scheme=http\n:authority=example.test\n"
				     ":path=/up?x=1\nuser-agent=t/1\naccept=*/*\nE\n");
	}
	run_from(&t.cv, 0, NULL, M_BYTES, 0, 0, &c, x);
	assert_int_equal(c.stops, 0);
	same_col(&t.ref, &c);
	assert_non_null(strstr(bstr(&sget(&c, 1)->text[1]), ":status=200"));
	assert_non_null(strstr(bstr(&sget(&c, 3)->text[0]), ":path=/s/1"));
	col_free(&c);

	/* HTTP2-Settings that are not base64url SETTINGS */
	st_http__reset(&rq);
	x = st_h2__new(NULL);
	h = http1_head(&rq, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
			    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk!\r\n\r\n");
	assert_int_equal(st_h2__upgrade(x, h), -EINVAL);
	st_http__reset(&rq);
	h = http1_head(&rq, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
			    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAAB\r\n\r\n");
	assert_int_equal(st_h2__upgrade(x, h), -EINVAL); /* 5 bytes: not whole settings */
	st_http__reset(&rq);
	h = http1_head(&rq, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
	assert_false(st_h2_upgrade_requested(h));
	assert_int_equal(st_h2__upgrade(x, h), -EINVAL);
	st_h2__free(x);
	st_http__free(&rq);
	st_http__free(&rs);
	talk_free(&t);
}

/* ---- detection, joined midway, gaps ------------------------------------------------------- */

static void test_detect(void **state)
{
	assert_int_equal(st_h2_detect(ST_H2_PREFACE, ST_H2_PREFACE_LEN), ST_H2_DETECT_YES);
	assert_int_equal(st_h2_detect(ST_H2_PREFACE "\x00\x00", ST_H2_PREFACE_LEN + 2),
			 ST_H2_DETECT_YES);
	assert_int_equal(st_h2_detect("PRI * HT", 8), ST_H2_DETECT_MAYBE);
	assert_int_equal(st_h2_detect("", 0), ST_H2_DETECT_MAYBE);
	assert_int_equal(st_h2_detect("GET / HTTP/1.1\r\n", 16), ST_H2_DETECT_NO);
	assert_int_equal(st_h2_detect("PRI * HTTP/2.0\r\n\r\nXX", 20), ST_H2_DETECT_NO);
}

static void test_joined_gap(void **state)
{
	struct scen sc = { .seed = 12, .nreq = 10, .req_body_max = 2000, .resp_body_max = 2000 };
	struct talk t;
	struct col c = { 0 };
	struct st_h2 *x;
	size_t mid;

	talk_start(&t, &sc);
	talk_requests(&t, 0, 5);
	pump(&t.cl, &t.sv);
	mid = t.cv.n;
	talk_requests(&t, 5, 5);
	pump(&t.cl, &t.sv);
	assert_true(mid > 1 && mid < t.cv.n);

	/* the capture starts in the middle: the client's bytes lack the preface */
	while (t.cv.ch[mid].dir != 0)
		mid++;
	run_from(&t.cv, mid, NULL, M_WHOLE, 0, 0, &c, NULL);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_JOINED);
	assert_int_equal(c.n, 0); /* nothing guessed */
	assert_true(c.st.ignored_bytes > 0);
	col_free(&c);

	/* ... or the server spoke first there */
	mid = 1;
	while (t.cv.ch[mid].dir != 1)
		mid++;
	mid += 2;
	while (t.cv.ch[mid].dir != 1)
		mid++;
	run_from(&t.cv, mid, NULL, M_WHOLE, 0, 0, &c, NULL);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_JOINED);
	col_free(&c);

	/* reassembly said so */
	x = st_h2__new(NULL);
	st_h2__stop(x, ST_H2_STOP_JOINED);
	st_h2__stop(x, ST_H2_STOP_GAP); /* once */
	assert_true(st_h2__stopped(x));
	run_from(&t.cv, 0, NULL, M_WHOLE, 0, 0, &c, x);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_JOINED);
	assert_int_equal(c.n, 0);
	assert_int_equal(c.st.ignored_bytes, t.cv.b.len);
	col_free(&c);

	/* a gap in the middle: what came before is handed out, nothing after */
	x = st_h2__new(NULL);
	for (size_t i = 0; i < mid; i++)
		feed(x, &c, t.cv.ch[i].dir, (const uint8_t *)t.cv.b.p + t.cv.ch[i].off,
		     t.cv.ch[i].len);
	assert_int_equal(c.stops, 0);
	assert_true(c.n > 0);
	st_h2__stop(x, ST_H2_STOP_GAP);
	feed(x, &c, 1, NULL, 0);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_GAP);
	{
		size_t n = c.n;

		run_from(&t.cv, mid, NULL, M_WHOLE, 0, 0, &c, x);
		assert_int_equal(c.n, n);
		assert_int_equal(c.stops, 1);
	}
	col_free(&c);

	/* a direction that ends inside a frame */
	x = st_h2__new(NULL);
	feed(x, &c, 0, (const uint8_t *)t.cv.b.p, ST_H2_PREFACE_LEN + 4);
	st_h2__eof(x, 0);
	feed(x, &c, 0, NULL, 0);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_TRUNCATED);
	st_h2__free(x);
	col_free(&c);
	talk_free(&t);
}

/* ---- hand-built frames ---------------------------------------------------------------------- */

struct raw {
	uint8_t b[1 << 17];
	size_t n;
};

static void fr(struct raw *r, uint8_t type, uint8_t flags, uint32_t id, const void *pl,
	       size_t len)
{
	uint8_t *p = r->b + r->n;

	assert_true(r->n + 9 + len <= sizeof(r->b));
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(id >> 24);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8);
	p[8] = (uint8_t)id;
	if (len && pl)
		memcpy(p + 9, pl, len);
	else if (len)
		memset(p + 9, 0, len);
	r->n += 9 + len;
}

/* The client's preface and empty SETTINGS, the server's empty SETTINGS, both ACKs. */
static void opening(struct raw *c, struct raw *s)
{
	memcpy(c->b, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	c->n = ST_H2_PREFACE_LEN;
	fr(c, 0x4, 0, 0, NULL, 0);
	s->n = 0;
	fr(s, 0x4, 0, 0, NULL, 0);
	fr(s, 0x4, 0x1, 0, NULL, 0);
	fr(c, 0x4, 0x1, 0, NULL, 0);
}

/* A request header block (HPACK, static table only): GET http://a/ */
static const uint8_t get_block[] = { 0x82, 0x86, 0x84, 0x41, 0x01, 'a' };

static void run_raw(const struct raw *c, const struct raw *s, const struct st_h2_opts *o,
		    struct col *col)
{
	struct st_h2 *x = st_h2__new(o);

	feed(x, col, 1, s->b, s->n);
	feed(x, col, 0, c->b, c->n);
	st_h2__eof(x, 0);
	st_h2__eof(x, 1);
	feed(x, col, 0, NULL, 0);
	st_h2__stats(x, &col->st);
	st_h2__free(x);
}

/* An answer fed before its request when no stream fits: lost, but never a DROP, which would
 * end a stream whose request then comes (and finds room). */
static void test_answer_first_full(void **state)
{
	struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	struct st_h2_opts o = { .max_streams = 1 };
	struct st_h2 *x = st_h2__new(&o);
	struct col col = { 0 };

	assert_true(c && s && x);
	opening(c, s);
	fr(c, 0x1, 0x5, 1, get_block, sizeof(get_block));
	feed(x, &col, 0, c->b, c->n);
	feed(x, &col, 1, s->b, s->n);
	s->n = 0;
	fr(s, 0x1, 0x5, 3, "\x88", 1); /* stream 3's answer, its request not fed yet */
	fr(s, 0x1, 0x5, 1, "\x88", 1);
	feed(x, &col, 1, s->b, s->n);
	c->n = 0;
	fr(c, 0x1, 0x5, 3, get_block, sizeof(get_block));
	feed(x, &col, 0, c->b, c->n);
	st_h2__stats(x, &col.st);
	assert_int_equal(col.stops, 0);
	assert_int_equal(col.drops[ST_H2_LIMIT_STREAMS], 0);
	assert_int_equal(col.st.limits[ST_H2_LIMIT_STREAMS], 1);
	assert_string_equal(bstr(&sget(&col, 3)->text[0]),
			    "H\n:method=GET\n:scheme=http\n:path=/\n:authority=a\nE\n");
	assert_string_equal(bstr(&sget(&col, 1)->text[1]), "H\n:status=200\nE\n");
	st_h2__free(x);
	col_free(&col);
	free(c);
	free(s);
}

struct bad_case {
	const char *what;
	uint8_t type, flags;
	uint32_t id;
	const char *pl;
	size_t len;
	enum st_h2_stop stop;
	uint32_t code;
};

static void test_garbage(void **state)
{
	static const struct bad_case cases[] = {
		{ "DATA on stream 0", 0x0, 0x1, 0, "abc", 3, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "DATA on an idle stream", 0x0, 0x1, 9, "abc", 3, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "HEADERS on stream 0", 0x1, 0x5, 0, (const char *)get_block, 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "client HEADERS on an even stream", 0x1, 0x5, 2, (const char *)get_block, 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "HPACK index past the tables", 0x1, 0x5, 1, "\xc8", 1, ST_H2_STOP_PROTOCOL,
		  ST_H2_COMPRESSION_ERROR },
		{ "HPACK truncated literal", 0x1, 0x5, 1, "\x40\x05" "ab", 4, ST_H2_STOP_PROTOCOL,
		  ST_H2_COMPRESSION_ERROR },
		{ "padding longer than the payload", 0x0, 0x8, 1, "\x05xyz", 4,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "SETTINGS of 5 bytes", 0x4, 0, 0, "\x00\x01\x00\x00\x00", 5, ST_H2_STOP_PROTOCOL,
		  ST_H2_FRAME_SIZE_ERROR },
		{ "SETTINGS ACK with a payload", 0x4, 1, 0, "\x00\x01\x00\x00\x00\x00", 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_FRAME_SIZE_ERROR },
		{ "SETTINGS on a stream", 0x4, 0, 1, NULL, 0, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "SETTINGS_MAX_FRAME_SIZE 100", 0x4, 0, 0, "\x00\x05\x00\x00\x00\x64", 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "SETTINGS_INITIAL_WINDOW_SIZE 2^31", 0x4, 0, 0, "\x00\x04\x80\x00\x00\x00", 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_FLOW_CONTROL_ERROR },
		{ "SETTINGS_ENABLE_PUSH 2", 0x4, 0, 0, "\x00\x02\x00\x00\x00\x02", 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "PING of 7 bytes", 0x6, 0, 0, "1234567", 7, ST_H2_STOP_PROTOCOL,
		  ST_H2_FRAME_SIZE_ERROR },
		{ "PING on a stream", 0x6, 0, 3, "12345678", 8, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "CONTINUATION without HEADERS", 0x9, 0x4, 1, (const char *)get_block, 6,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "PUSH_PROMISE from the client", 0x5, 0x4, 1, "\x00\x00\x00\x02\x82", 5,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "RST_STREAM of 3 bytes", 0x3, 0, 1, "\x00\x00\x08", 3, ST_H2_STOP_PROTOCOL,
		  ST_H2_FRAME_SIZE_ERROR },
		{ "RST_STREAM on an idle stream", 0x3, 0, 7, "\x00\x00\x00\x08", 4,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "RST_STREAM on stream 0", 0x3, 0, 0, "\x00\x00\x00\x08", 4, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "GOAWAY of 4 bytes", 0x7, 0, 0, "\x00\x00\x00\x01", 4, ST_H2_STOP_PROTOCOL,
		  ST_H2_FRAME_SIZE_ERROR },
		{ "GOAWAY on a stream", 0x7, 0, 1, "\x00\x00\x00\x01\x00\x00\x00\x00", 8,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "WINDOW_UPDATE of 0 on the connection", 0x8, 0, 0, "\x00\x00\x00\x00", 4,
		  ST_H2_STOP_PROTOCOL, ST_H2_PROTOCOL_ERROR },
		{ "WINDOW_UPDATE of 5 bytes", 0x8, 0, 0, "\x00\x00\x00\x00\x01", 5,
		  ST_H2_STOP_PROTOCOL, ST_H2_FRAME_SIZE_ERROR },
		{ "PRIORITY on stream 0", 0x2, 0, 0, "\x00\x00\x00\x01\x10", 5, ST_H2_STOP_PROTOCOL,
		  ST_H2_PROTOCOL_ERROR },
		{ "a frame over 16 KiB", 0x0, 0, 1, NULL, 16385, ST_H2_STOP_PROTOCOL,
		  ST_H2_FRAME_SIZE_ERROR },
		{ "a HEADERS frame cut short", 0x1, 0x5, 1, (const char *)get_block, 6,
		  ST_H2_STOP_TRUNCATED, 0 },
	};
	static uint8_t zeros[16385];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *k = &cases[i];
		struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
		struct col col = { 0 };

		assert_true(c && s);
		opening(c, s);
		/* a stream open, so that stream 1 is not idle (HEADERS cases use stream 1 too) */
		if (strncmp(k->what, "HPACK", 5) && k->type != 0x1)
			fr(c, 0x1, 0x4, 1, get_block, sizeof(get_block));
		fr(c, k->type, k->flags, k->id, k->pl ? (const void *)k->pl : zeros, k->len);
		if (k->stop == ST_H2_STOP_TRUNCATED)
			c->n -= 2;
		run_raw(c, s, NULL, &col);
		if (col.stops != 1 || col.stop.stop != k->stop || col.stop.error_code != k->code) {
			print_error("%s: got %u stops, %s, %s (%s)\n", k->what, col.stops,
				    st_h2_stop_str(col.stop.stop), st_h2_errname(col.stop.error_code),
				    col.stop.detail ? col.stop.detail : "");
			fail();
		}
		col_free(&col);
		free(c);
		free(s);
	}
}

/* More rules that need several frames. */
static void test_garbage_sequences(void **state)
{
	struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	struct col col = { 0 };

	assert_true(c && s);
	/* the first frame is not SETTINGS */
	memcpy(c->b, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	c->n = ST_H2_PREFACE_LEN;
	fr(c, 0x6, 0, 0, "12345678", 8);
	s->n = 0;
	fr(s, 0x4, 0, 0, NULL, 0);
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stop.stop, ST_H2_STOP_PROTOCOL);
	assert_int_equal(col.stop.error_code, ST_H2_PROTOCOL_ERROR);
	col_free(&col);

	/* a frame between HEADERS and its CONTINUATION */
	opening(c, s);
	fr(c, 0x1, 0x0, 1, get_block, 3);
	fr(c, 0x6, 0, 0, "12345678", 8);
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stop.error_code, ST_H2_PROTOCOL_ERROR);
	assert_non_null(strstr(col.stop.detail, "inside a header block"));
	col_free(&col);

	/* a CONTINUATION of another stream */
	opening(c, s);
	fr(c, 0x1, 0x0, 1, get_block, 3);
	fr(c, 0x9, 0x4, 3, get_block + 3, 3);
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stop.error_code, ST_H2_PROTOCOL_ERROR);
	col_free(&col);

	/* a client stream id that goes down */
	opening(c, s);
	fr(c, 0x1, 0x5, 5, get_block, sizeof(get_block));
	fr(c, 0x1, 0x5, 3, get_block, sizeof(get_block));
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stops, 0); /* stream 3 is closed now (RFC 9113 5.1.1): skipped */
	assert_int_equal(col.st.closed_frames, 1);
	assert_int_equal(col.n, 1);
	col_free(&col);

	/* a server that pushes what the client disabled */
	opening(c, s);
	c->n = ST_H2_PREFACE_LEN;
	fr(c, 0x4, 0, 0, "\x00\x02\x00\x00\x00\x00", 6);
	fr(c, 0x4, 0x1, 0, NULL, 0);
	fr(c, 0x1, 0x5, 1, get_block, sizeof(get_block));
	{
		struct st_h2 *x = st_h2__new(NULL);

		feed(x, &col, 0, c->b, c->n);
		s->n = 0;
		fr(s, 0x4, 0, 0, NULL, 0);
		fr(s, 0x4, 0x1, 0, NULL, 0);
		fr(s, 0x5, 0x4, 1, "\x00\x00\x00\x02\x82\x86\x84\x41\x01\x61", 10);
		feed(x, &col, 1, s->b, s->n);
		st_h2__free(x);
	}
	assert_int_equal(col.stop.error_code, ST_H2_PROTOCOL_ERROR);
	assert_non_null(strstr(col.stop.detail, "PUSH_PROMISE"));
	col_free(&col);

	/* a server SETTINGS with ENABLE_PUSH 1 */
	opening(c, s);
	s->n = 0;
	fr(s, 0x4, 0, 0, "\x00\x02\x00\x00\x00\x01", 6);
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stop.error_code, ST_H2_PROTOCOL_ERROR);
	col_free(&col);

	/* stream errors: the frame is skipped, the connection goes on */
	opening(c, s);
	fr(c, 0x1, 0x5, 1, get_block, sizeof(get_block));
	fr(c, 0x0, 0x1, 1, "late", 4);        /* DATA after END_STREAM */
	fr(c, 0x2, 0, 3, "\x00\x00\x00", 3);  /* PRIORITY of 3 bytes */
	fr(c, 0x8, 0, 1, "\x00\x00\x00\x00", 4); /* WINDOW_UPDATE of 0 on a stream */
	fr(c, 0xbb, 0x7, 0, "extension", 9);  /* an unknown frame type: ignored */
	fr(c, 0x1, 0x5, 3, get_block, sizeof(get_block));
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stops, 0);
	assert_int_equal(col.st.stream_errors, 3);
	assert_int_equal(col.st.unknown_frames, 1);
	assert_int_equal(col.n, 2);
	assert_string_equal(bstr(&sget(&col, 3)->text[0]),
			    "H\n:method=GET\n:scheme=http\n:path=/\n:authority=a\nE\n");
	col_free(&col);

	/* malformed requests are flagged, not refused: production's answer (or RST) decides */
	opening(c, s);
	fr(c, 0x1, 0x5, 1, "\x82\x86\x41\x01\x61", 5);            /* no :path */
	fr(c, 0x1, 0x5, 3, "\x82\x86\x84\x00\x01\x41\x01\x62\x84", 9); /* "A": upper case */
	fr(c, 0x1, 0x5, 5, "\x82\x86\x84\x40\x02te\x04gzip", 12); /* te: gzip */
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stops, 0);
	assert_int_equal(col.malformed, 3);
	col_free(&col);
	free(c);
	free(s);
}

/* ---- the bounds, each hit once and counted ------------------------------------------------ */

static void test_bound_header_list(void **state)
{
	struct scen sc = { .seed = 13, .resp_body_max = 10 };
	struct st_h2_opts o = { .max_header_list = 4000 };
	struct talk t;
	struct col c = { 0 };

	talk_start(&t, &sc);
	request(&t.cl, 0, 0, false);
	pump(&t.cl, &t.sv);
	/* stream 3: a request of 36 KB of fields */
	t.sc.big_headers = true;
	request(&t.cl, 1, 0, false);
	psend(&t.cl);
	t.sc.big_headers = false;
	pump(&t.cl, &t.sv);
	/* stream 5: an answer of 36 KB of fields */
	request(&t.cl, 2, 0, false);
	psend(&t.cl);
	t.sc.big_headers = true;
	pdeliver(&t.sv);
	t.sc.big_headers = false;
	pump(&t.cl, &t.sv);
	request(&t.cl, 3, 0, false);
	pump(&t.cl, &t.sv);
	run(&t.cv, &o, M_RANDOM, 77, 0, &c);
	assert_int_equal(c.stops, 0);
	assert_int_equal(c.drops[ST_H2_LIMIT_HEADER_LIST], 2);
	assert_int_equal(c.st.limits[ST_H2_LIMIT_HEADER_LIST], 2);
	assert_string_equal(bstr(&sget(&c, 3)->text[0]), "X 1\n");
	assert_int_equal(sget(&c, 3)->text[1].len, 0);
	same_buf("request", 5, 0, &sget(&t.ref, 5)->text[0], &sget(&c, 5)->text[0]);
	assert_string_equal(bstr(&sget(&c, 5)->text[1]), "X 1\n");
	/* the tables still followed: the next stream decodes as the peers read it */
	same_buf("after", 7, 0, &sget(&t.ref, 7)->text[0], &sget(&c, 7)->text[0]);
	same_buf("after", 7, 1, &sget(&t.ref, 7)->text[1], &sget(&c, 7)->text[1]);
	col_free(&c);
	talk_free(&t);
}

/* An HPACK bomb: one 4 KB entry referenced 20000 times (80 MB decoded) in a 20 KB block. */
static void test_bound_hpack_bomb(void **state)
{
	struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	struct col col = { 0 };
	uint8_t *blk = malloc(30000);
	size_t n = 0;

	assert_true(c && s && blk);
	opening(c, s);
	memcpy(blk, "\x82\x86\x84\x41\x01\x61", 6);
	n = 6;
	/* literal with incremental indexing, new name "x", a 4000-byte value */
	blk[n++] = 0x40;
	blk[n++] = 1;
	blk[n++] = 'x';
	blk[n++] = 0x7f;                 /* length 4000 = 127 + 3873 */
	blk[n++] = (uint8_t)(0x80 | ((4000 - 127) & 0x7f));
	blk[n++] = (uint8_t)((4000 - 127) >> 7);
	memset(blk + n, 'v', 4000);
	n += 4000;
	for (int i = 0; i < 16000; i++)
		blk[n++] = 0xbe;         /* indexed: 62, the entry above */
	fr(c, 0x1, 0x1, 1, blk, 16384);
	fr(c, 0x9, 0x4, 1, blk + 16384, n - 16384);
	fr(c, 0x1, 0x5, 3, get_block, sizeof(get_block));
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stops, 0);
	assert_int_equal(col.drops[ST_H2_LIMIT_HEADER_LIST], 1);
	assert_true(col.mem_peak < 2u * ST_H2_MAX_HEADER_LIST_DEFAULT + 65536);
	assert_string_equal(bstr(&sget(&col, 3)->text[0]),
			    "H\n:method=GET\n:scheme=http\n:path=/\n:authority=a\nE\n");
	col_free(&col);
	free(blk);
	free(c);
	free(s);
}

static void test_bound_continuation_flood(void **state)
{
	struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	struct col col = { 0 };
	struct st_h2_opts o = { .max_block = 100 };

	assert_true(c && s);
	opening(c, s);
	fr(c, 0x1, 0x0, 1, get_block, 2);
	for (int i = 0; i < 1000; i++)
		fr(c, 0x9, 0x0, 1, NULL, 0); /* CONTINUATIONs that never end the block */
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stops, 1);
	assert_int_equal(col.stop.stop, ST_H2_STOP_LIMIT);
	assert_int_equal(col.stop.limit, ST_H2_LIMIT_CONTINUATION);
	assert_int_equal(col.st.limits[ST_H2_LIMIT_CONTINUATION], 1);
	assert_int_equal(col.st.continuations, ST_H2_MAX_CONTINUATION_DEFAULT + 1);
	col_free(&col);

	/* the same block in bytes: max_block */
	opening(c, s);
	fr(c, 0x1, 0x0, 1, get_block, 2);
	for (int i = 0; i < 20; i++)
		fr(c, 0x9, 0x0, 1, "\x82\x82\x82\x82\x82\x82\x82\x82\x82\x82", 10);
	run_raw(c, s, &o, &col);
	assert_int_equal(col.stop.stop, ST_H2_STOP_LIMIT);
	assert_int_equal(col.stop.limit, ST_H2_LIMIT_BLOCK);
	assert_int_equal(col.st.limits[ST_H2_LIMIT_BLOCK], 1);
	col_free(&col);
	free(c);
	free(s);
}

static void test_bound_streams(void **state)
{
	struct scen sc = { .seed = 14, .nreq = 10, .resp_body_max = 10, .hold = true };
	struct st_h2_opts o = { .max_streams = 4 };
	struct talk t;
	struct col c = { 0 };

	talk(&t, &sc);
	for (int i = 1; i <= 19; i += 2)
		respond(&t.sv, i);
	pump(&t.cl, &t.sv);
	run(&t.cv, &o, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 0);
	assert_int_equal(c.drops[ST_H2_LIMIT_STREAMS], 6);
	assert_int_equal(c.st.limits[ST_H2_LIMIT_STREAMS], 6);
	assert_int_equal(c.st.streams, 10);
	assert_int_equal(c.st.streams_peak, 4);
	for (uint32_t id = 1; id <= 7; id += 2)
		same_buf("kept", id, 1, &sget(&t.ref, id)->text[1], &sget(&c, id)->text[1]);
	for (uint32_t id = 9; id <= 19; id += 2) {
		assert_string_equal(bstr(&sget(&c, id)->text[0]), "X 2\n");
		assert_int_equal(sget(&c, id)->text[1].len, 0); /* its answer is not handed out */
	}
	col_free(&c);

	o = (struct st_h2_opts){ .max_streams_total = 3 };
	run(&t.cv, &o, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.limit, ST_H2_LIMIT_STREAMS_TOTAL);
	assert_int_equal(c.st.limits[ST_H2_LIMIT_STREAMS_TOTAL], 1);
	col_free(&c);
	talk_free(&t);
}

/* A rapid-reset storm (CVE-2023-44487): requests reset at once, never answered. */
static void test_bound_rapid_reset(void **state)
{
	struct scen sc = { .seed = 15, .hold = true };
	struct st_h2_opts o = { .max_early_resets = 100 };
	struct talk t;
	struct col c = { 0 };

	talk_start(&t, &sc);
	for (int i = 0; i < 300; i++) {
		request(&t.cl, i, 0, false);
		psend(&t.cl);
		assert_int_equal(nghttp2_submit_rst_stream(t.cl.s, NGHTTP2_FLAG_NONE, 2 * i + 1,
							   NGHTTP2_CANCEL), 0);
		psend(&t.cl);
	}
	pump(&t.cl, &t.sv);
	run(&t.cv, &o, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.stop, ST_H2_STOP_LIMIT);
	assert_int_equal(c.stop.limit, ST_H2_LIMIT_EARLY_RESETS);
	assert_int_equal(c.st.early_resets, 101);
	assert_int_equal(c.st.limits[ST_H2_LIMIT_EARLY_RESETS], 1);
	assert_true(c.st.streams_peak <= 1);
	col_free(&c);
	/* the defaults let a connection cancel 300 requests */
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 0);
	assert_int_equal(c.st.early_resets, 300);
	col_free(&c);
	talk_free(&t);
}

/* A peer announces a table larger than the framer follows, and its encoder uses it. */
static void test_bound_table(void **state)
{
	struct scen sc = { .seed = 16, .resp_body_max = 10, .churn = true };
	struct st_h2_opts o = { .max_table = 8192 };
	nghttp2_settings_entry big = { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 65536 };
	struct talk t;
	struct col c = { 0 };

	talk_start(&t, &sc);
	assert_int_equal(nghttp2_submit_settings(t.sv.s, NGHTTP2_FLAG_NONE, &big, 1), 0);
	pump(&t.cl, &t.sv);
	talk_requests(&t, 0, 5);
	pump(&t.cl, &t.sv);
	run(&t.cv, NULL, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 0);
	col_free(&c);
	run(&t.cv, &o, M_WHOLE, 0, 0, &c);
	assert_int_equal(c.stops, 1);
	assert_int_equal(c.stop.limit, ST_H2_LIMIT_TABLE);
	assert_int_equal(c.st.limits[ST_H2_LIMIT_TABLE], 1);
	col_free(&c);
	talk_free(&t);
}

static void test_bound_settings(void **state)
{
	struct raw *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	struct col col = { 0 };

	assert_true(c && s);
	memcpy(c->b, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	c->n = ST_H2_PREFACE_LEN;
	for (unsigned i = 0; i <= ST_H2_SETTINGS_PENDING_MAX; i++)
		fr(c, 0x4, 0, 0, "\x00\x01\x00\x00\x10\x00", 6);
	s->n = 0;
	run_raw(c, s, NULL, &col);
	assert_int_equal(col.stop.stop, ST_H2_STOP_LIMIT);
	assert_int_equal(col.stop.limit, ST_H2_LIMIT_SETTINGS);
	assert_int_equal(col.st.limits[ST_H2_LIMIT_SETTINGS], 1);
	col_free(&col);

	/* an ACK fed before the SETTINGS it acknowledges (a hole delayed the client's bytes) */
	{
		struct st_h2 *x = st_h2__new(NULL);

		s->n = 0;
		fr(s, 0x4, 0, 0, NULL, 0);
		fr(s, 0x4, 0x1, 0, NULL, 0);
		feed(x, &col, 1, s->b, s->n);
		c->n = ST_H2_PREFACE_LEN;
		fr(c, 0x4, 0, 0, "\x00\x05\x00\x01\x00\x00", 6); /* MAX_FRAME_SIZE 65536 */
		fr(c, 0x1, 0x5, 1, get_block, sizeof(get_block));
		feed(x, &col, 0, c->b, c->n);
		s->n = 0;
		fr(s, 0x1, 0x4, 1, "\x88", 1);
		fr(s, 0x0, 0x1, 1, NULL, 20000); /* allowed: acknowledged already */
		feed(x, &col, 1, s->b, s->n);
		assert_int_equal(col.stops, 0);
		/* "H\n:status=200\n", "D:" and the body, "\nE\n" */
		assert_int_equal(sget(&col, 1)->text[1].len, 14 + 2 + 20000 + 3);
		st_h2__free(x);
	}
	col_free(&col);
	free(c);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_interleaved),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_table_churn),
		cmocka_unit_test(test_table_from_ack),
		cmocka_unit_test(test_trailers_interim),
		cmocka_unit_test(test_push),
		cmocka_unit_test(test_frame_size),
		cmocka_unit_test(test_rst_mid_body),
		cmocka_unit_test(test_goaway),
		cmocka_unit_test(test_answer_first),
		cmocka_unit_test(test_answer_first_full),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_joined_gap),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_garbage_sequences),
		cmocka_unit_test(test_bound_header_list),
		cmocka_unit_test(test_bound_hpack_bomb),
		cmocka_unit_test(test_bound_continuation_flood),
		cmocka_unit_test(test_bound_streams),
		cmocka_unit_test(test_bound_rapid_reset),
		cmocka_unit_test(test_bound_table),
		cmocka_unit_test(test_bound_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
