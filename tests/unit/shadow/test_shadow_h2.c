/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for the shadow engine's HTTP/2 paths (agent/shadow/shadow_h2.c, the captured
 * side, and shadow_h2conn.c, the shadow side). A captured connection is played by two
 * libnghttp2 sessions in memory: a client and a model of production, whose bytes are fed to
 * the engine as the tap would deliver them (shadow_harness.h). The shadow is a libnghttp2
 * server session in a thread of its own (127.0.0.1, ephemeral port), recording every request
 * it ran: method, :path, fields, body, trailers. It can misbehave as real shadows do: a
 * GOAWAY after N streams (nginx's keepalive_requests), one stream at a time, a small window,
 * no reading at all, garbage answers. --correlate: production and the shadow answer a login
 * and a new order with values of their own, and later streams carry the shadow's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "correlate.h"
#include "hdr.h"
#include "shadow.h"
#include "shadow_harness.h"

#define SERVER_PORT 8080
#define MAX_RECS 4096
#define SINK_CONNS 64

/* ---- the shadow: an HTTP/2 server that records what it ran ---------------------------- */

struct rec {
	int conn;
	int32_t id;
	char method[16];
	char path[256];
	char authority[128];
	char fields[2048];     /* "name: value\n" of the regular fields */
	char trailers[512];
	uint8_t *body;
	size_t body_len;
	bool done;             /* the request is complete */
};

struct sconnx {
	int fd;
	int idx;
	nghttp2_session *s;
	bool eof;
	int processed;
	int32_t last;          /* GOAWAY sent: streams above are ignored */
	bool goaway;
};

struct h2sink {
	int lfd;
	uint16_t port;
	int goaway_after;      /* process this many streams per connection, GOAWAY, close */
	uint32_t max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS (0: not sent) */
	uint32_t window;       /* SETTINGS_INITIAL_WINDOW_SIZE (0: not sent) */
	bool noread;
	bool garbage;
	atomic_bool stop;
	pthread_t th;
	pthread_mutex_t mu;
	int nconn;
	struct sconnx c[SINK_CONNS];
	int nrec;
	struct rec r[MAX_RECS];
};

static struct rec *rec_of(struct h2sink *k, struct sconnx *c, int32_t id)
{
	for (int i = k->nrec - 1; i >= 0; i--)
		if (k->r[i].conn == c->idx && k->r[i].id == id)
			return &k->r[i];
	return NULL;
}

static struct h2sink *SINK(void *ud, struct sconnx **c)
{
	*c = ud;
	return (struct h2sink *)((char *)(*c - (*c)->idx) - offsetof(struct h2sink, c));
}

static int k_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sconnx *c;
	struct h2sink *k = SINK(ud, &c);

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	pthread_mutex_lock(&k->mu);
	if (k->nrec < MAX_RECS) {
		struct rec *r = &k->r[k->nrec++];

		memset(r, 0, sizeof(*r));
		r->conn = c->idx;
		r->id = f->hd.stream_id;
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static void cat(char *dst, size_t cap, const uint8_t *s, size_t n)
{
	size_t l = strlen(dst);

	if (l + n + 1 < cap) {
		memcpy(dst + l, s, n);
		dst[l + n] = 0;
	}
}

static int k_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	struct sconnx *c;
	struct h2sink *k = SINK(ud, &c);
	struct rec *r;

	pthread_mutex_lock(&k->mu);
	r = rec_of(k, c, f->hd.stream_id);
	if (r && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
		cat(r->trailers, sizeof(r->trailers), n, nl);
		cat(r->trailers, sizeof(r->trailers), (const uint8_t *)": ", 2);
		cat(r->trailers, sizeof(r->trailers), v, vl);
		cat(r->trailers, sizeof(r->trailers), (const uint8_t *)"\n", 1);
	} else if (r && nl == 7 && !memcmp(n, ":method", 7)) {
		snprintf(r->method, sizeof(r->method), "%.*s", (int)vl, v);
	} else if (r && nl == 5 && !memcmp(n, ":path", 5)) {
		snprintf(r->path, sizeof(r->path), "%.*s", (int)vl, v);
	} else if (r && nl == 10 && !memcmp(n, ":authority", 10)) {
		snprintf(r->authority, sizeof(r->authority), "%.*s", (int)vl, v);
	} else if (r && nl && n[0] != ':') {
		cat(r->fields, sizeof(r->fields), n, nl);
		cat(r->fields, sizeof(r->fields), (const uint8_t *)": ", 2);
		cat(r->fields, sizeof(r->fields), v, vl);
		cat(r->fields, sizeof(r->fields), (const uint8_t *)"\n", 1);
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static int k_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
		  void *ud)
{
	struct sconnx *c;
	struct h2sink *k = SINK(ud, &c);
	struct rec *r;

	pthread_mutex_lock(&k->mu);
	r = rec_of(k, c, id);
	if (r) {
		r->body = realloc(r->body, r->body_len + n + 1);
		memcpy(r->body + r->body_len, d, n);
		r->body_len += n;
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static ssize_t ok_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
		       nghttp2_data_source *src, void *ud)
{
	memcpy(buf, "ok", 2);
	*fl |= NGHTTP2_DATA_FLAG_EOF;
	return 2;
}

/* --correlate's tests: what production and the shadow answer a login and a new order, each
 * with values of its own. */
#define COR_SID_P "prodSESSION12345"
#define COR_SID_S "shadowSESSION987"
#define COR_TOK_P "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.cHJvZHVjdGlvbi1zaWduYXR1cmU"
#define COR_TOK_S "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2hhZG93LXNpZ25hdHVyZQ"
#define COR_ID_P "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define COR_ID_S "9f0c1a3e-7d2b-4c5e-8a6f-123456789abc"

static ssize_t mem_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
			nghttp2_data_source *src, void *ud);

/* A JSON answer with one more field (name n, value v) and body (a string literal). */
static void json_answer(nghttp2_session *s, int32_t id, const char *status, const char *n,
			const char *v, const char *body)
{
	nghttp2_nv hdr[] = {
		{ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, 0 },
		{ (uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), 0 },
	};
	nghttp2_data_provider dp = { .source.ptr = (void *)body, .read_callback = mem_read };

	nghttp2_submit_response(s, id, hdr, 3, &dp);
}

static void k_answer(struct sconnx *c, int32_t id, const char *path)
{
	static const nghttp2_nv hdr[] = {
		{ (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider dp = { .read_callback = ok_read };

	if (!strcmp(path, "/login"))
		json_answer(c->s, id, "200", "set-cookie", "sid=" COR_SID_S "; Path=/",
			    "{\"access_token\":\"" COR_TOK_S "\"}");
	else if (!strcmp(path, "/orders"))
		json_answer(c->s, id, "201", "location", "/orders/" COR_ID_S,
			    "{\"id\":\"" COR_ID_S "\"}");
	else
		nghttp2_submit_response(c->s, id, hdr, 1, &dp);
}

static int k_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct sconnx *c;
	struct h2sink *k = SINK(ud, &c);
	struct rec *r;
	char path[256];

	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	pthread_mutex_lock(&k->mu);
	r = rec_of(k, c, f->hd.stream_id);
	if (r && c->goaway && f->hd.stream_id > c->last) {
		/* not processed: it never happened here */
		*r = k->r[--k->nrec];
		r = NULL;
	}
	if (r) {
		r->done = true;
		snprintf(path, sizeof(path), "%s", r->path);
	}
	pthread_mutex_unlock(&k->mu);
	if (!r)
		return 0;
	c->processed++;
	k_answer(c, f->hd.stream_id, path);
	if (k->goaway_after && c->processed == k->goaway_after && !c->goaway) {
		c->goaway = true;
		c->last = f->hd.stream_id;
		nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, c->last, NGHTTP2_NO_ERROR, NULL, 0);
	}
	return 0;
}

static void k_flush(struct sconnx *c)
{
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->s, &p);

		if (n <= 0)
			break;
		if (send(c->fd, p, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
}

static void k_accept(struct h2sink *k)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv[2];
	struct sconnx *c;
	int fd = accept(k->lfd, NULL, NULL), n = 0;

	if (fd < 0)
		return;
	pthread_mutex_lock(&k->mu);
	if (k->nconn == SINK_CONNS) {
		pthread_mutex_unlock(&k->mu);
		close(fd);
		return;
	}
	c = &k->c[k->nconn];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->idx = k->nconn++;
	pthread_mutex_unlock(&k->mu);
	if (k->noread || k->garbage)
		return;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, k_begin);
	nghttp2_session_callbacks_set_on_header_callback(cb, k_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, k_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, k_frame);
	nghttp2_session_server_new(&c->s, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (k->max_streams)
		iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
						    k->max_streams };
	if (k->window)
		iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, k->window };
	nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, (size_t)n);
	k_flush(c);
}

static void *k_main(void *arg)
{
	struct h2sink *k = arg;
	uint8_t buf[65536];

	while (!atomic_load(&k->stop)) {
		struct pollfd pf[SINK_CONNS + 1];
		int idx[SINK_CONNS + 1], n = 0;

		pf[n].fd = k->lfd;
		pf[n].events = POLLIN;
		idx[n++] = -1;
		for (int i = 0; i < k->nconn && !k->noread; i++) {
			if (k->c[i].eof)
				continue;
			pf[n].fd = k->c[i].fd;
			pf[n].events = POLLIN;
			idx[n++] = i;
		}
		if (poll(pf, (nfds_t)n, 10) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct sconnx *c;
			ssize_t r;

			if (!pf[i].revents)
				continue;
			if (idx[i] < 0) {
				k_accept(k);
				continue;
			}
			c = &k->c[idx[i]];
			r = recv(c->fd, buf, sizeof(buf), 0);
			if (r <= 0) {
				/* the agent is done with it: closed in turn, as nginx and nghttpd do (the
				 * engine's drain waits for the shadow's close) */
				shutdown(c->fd, SHUT_RDWR);
				c->eof = true;
				continue;
			}
			if (k->garbage) {
				static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\nnot http/2 at all";

				send(c->fd, junk, sizeof(junk) - 1, MSG_NOSIGNAL);
				continue;
			}
			if (nghttp2_session_mem_recv(c->s, buf, (size_t)r) < 0) {
				c->eof = true;
				continue;
			}
			k_flush(c);
			if (c->goaway && !nghttp2_session_want_write(c->s)) {
				/* as nginx does at keepalive_requests: answered, gone */
				shutdown(c->fd, SHUT_RDWR);
				c->eof = true;
			}
		}
	}
	return NULL;
}

static struct h2sink *k_start(void (*setup)(struct h2sink *))
{
	struct h2sink *k = calloc(1, sizeof(*k));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int small = 4096;

	assert_non_null(k);
	if (setup)
		setup(k);
	pthread_mutex_init(&k->mu, NULL);
	k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->noread)
		setsockopt(k->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(bind(k->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(k->lfd, 128), 0);
	assert_int_equal(getsockname(k->lfd, (struct sockaddr *)&a, &al), 0);
	k->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&k->th, NULL, k_main, k), 0);
	return k;
}

static void k_stop(struct h2sink *k)
{
	atomic_store(&k->stop, true);
	pthread_join(k->th, NULL);
	for (int i = 0; i < k->nconn; i++) {
		if (k->c[i].s)
			nghttp2_session_del(k->c[i].s);
		close(k->c[i].fd);
	}
	for (int i = 0; i < k->nrec; i++)
		free(k->r[i].body);
	close(k->lfd);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static int k_done(struct h2sink *k)
{
	int n = 0;

	pthread_mutex_lock(&k->mu);
	for (int i = 0; i < k->nrec; i++)
		n += k->r[i].done;
	pthread_mutex_unlock(&k->mu);
	return n;
}

/* The completed request whose :path is path (the first, or NULL). */
static const struct rec *k_find(struct h2sink *k, const char *path)
{
	for (int i = 0; i < k->nrec; i++)
		if (k->r[i].done && !strcmp(k->r[i].path, path))
			return &k->r[i];
	return NULL;
}

static int k_count(struct h2sink *k, const char *path)
{
	int n = 0;

	for (int i = 0; i < k->nrec; i++)
		n += k->r[i].done && !strcmp(k->r[i].path, path);
	return n;
}

/* ---- a captured connection: a client and production, both libnghttp2, in memory ------------- */

/* What production does with a request, by its path. */
enum pact { P_OK = 0, P_RST, P_REFUSE, P_400, P_SILENT, P_LOGIN, P_ORDER };

struct tc {
	struct th_conn c;
	struct st_shadow *sh;
	nghttp2_session *cli, *prod;
	bool cli_bytes_only;   /* the client's bytes are not fed to the engine (a lost direction) */
	bool drop_server;      /* production's bytes are not captured */
	char *paths[1024];     /* production's streams' paths (freed at the end) */
	int npaths;
};

static ssize_t str_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
			nghttp2_data_source *src, void *ud)
{
	struct { const uint8_t *p; size_t n; } *b = src->ptr;
	size_t k = b->n < len ? b->n : len;

	memcpy(buf, b->p, k);
	b->p += k;
	b->n -= k;
	if (!b->n)
		*fl |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)k;
}

/* A body from a NUL-terminated string that outlives the stream, shorter than a frame (read
 * once; also in the shadow's thread: no assertion here). */
static ssize_t mem_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
			nghttp2_data_source *src, void *ud)
{
	size_t n = strlen(src->ptr);

	n = n < len ? n : len;
	memcpy(buf, src->ptr, n);
	*fl |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static enum pact pact_of(const char *path)
{
	if (!strncmp(path, "/rst", 4))
		return P_RST;
	if (!strncmp(path, "/refuse", 7))
		return P_REFUSE;
	if (!strncmp(path, "/400", 4))
		return P_400;
	if (!strncmp(path, "/silent", 7))
		return P_SILENT;
	if (!strcmp(path, "/login"))
		return P_LOGIN;
	if (!strcmp(path, "/orders"))
		return P_ORDER;
	return P_OK;
}

static int p_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	static const nghttp2_nv ok[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } };
	static const nghttp2_nv bad[] = { { (uint8_t *)":status", (uint8_t *)"400", 7, 3, 0 } };
	const char *path = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) || !path)
		return 0;
	switch (pact_of(path)) {
	case P_OK:
		nghttp2_submit_response(s, f->hd.stream_id, ok, 1, NULL);
		break;
	case P_RST:
		nghttp2_submit_rst_stream(s, 0, f->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
		break;
	case P_REFUSE:
		nghttp2_submit_rst_stream(s, 0, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		break;
	case P_400:
		nghttp2_submit_response(s, f->hd.stream_id, bad, 1, NULL);
		break;
	case P_SILENT:
		break;
	case P_LOGIN:
		json_answer(s, f->hd.stream_id, "200", "set-cookie", "sid=" COR_SID_P "; HttpOnly",
			    "{\"access_token\":\"" COR_TOK_P "\"}");
		break;
	case P_ORDER:
		json_answer(s, f->hd.stream_id, "201", "location", "/orders/" COR_ID_P,
			    "{\"id\":\"" COR_ID_P "\"}");
		break;
	}
	return 0;
}

static char *tc_keep(struct tc *t, char *p)
{
	if (t->npaths < 1024)
		t->paths[t->npaths++] = p;
	return p;
}

static int p_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
		    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    nl == 5 && !memcmp(n, ":path", 5) && !nghttp2_session_get_stream_user_data(s, f->hd.stream_id))
		nghttp2_session_set_stream_user_data(s, f->hd.stream_id,
						     tc_keep(ud, strndup((const char *)v, vl)));
	return 0;
}

static void tc_sessions(struct tc *t, bool upgraded)
{
	nghttp2_session_callbacks *cb;

	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_client_new(&t->cli, cb, t);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, p_frame);
	nghttp2_session_callbacks_set_on_header_callback(cb, p_header);
	nghttp2_session_server_new(&t->prod, cb, t);
	nghttp2_session_callbacks_del(cb);
	if (!upgraded) {
		nghttp2_submit_settings(t->cli, 0, NULL, 0);
		nghttp2_submit_settings(t->prod, 0, NULL, 0);
	}
}

static void tc_open(struct st_shadow *sh, struct tc *t, uint16_t cport)
{
	memset(t, 0, sizeof(*t));
	t->sh = sh;
	th_init(&t->c, cport, SERVER_PORT);
	th_handshake(sh, &t->c);
	tc_sessions(t, false);
}

static void tc_free(struct tc *t)
{
	nghttp2_session_del(t->cli);
	nghttp2_session_del(t->prod);
	while (t->npaths)
		free(t->paths[--t->npaths]);
}

/* What one side has to send goes to the other side and into the capture. */
static bool tc_pump(struct tc *t, bool from_client)
{
	nghttp2_session *src = from_client ? t->cli : t->prod, *dst = from_client ? t->prod : t->cli;
	bool any = false;

	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(src, &p);
		uint8_t *copy;

		if (n <= 0)
			break;
		any = true;
		copy = malloc((size_t)n);
		memcpy(copy, p, (size_t)n);
		if (!(from_client ? t->cli_bytes_only : t->drop_server))
			th_data(t->sh, &t->c, from_client, copy, (size_t)n);
		else
			*(from_client ? &t->c.cseq : &t->c.sseq) += (uint32_t)n;
		nghttp2_session_mem_recv(dst, copy, (size_t)n);
		free(copy);
	}
	return any;
}

/* Both sides say everything they have, turn by turn, until neither has more. */
static void tc_run(struct tc *t)
{
	while (tc_pump(t, true) | tc_pump(t, false))
		;
}

/* Only the client speaks (production's answers come later, or never). */
static void tc_client(struct tc *t)
{
	tc_pump(t, true);
}

static int32_t tc_req(struct tc *t, const char *method, const char *path, const char *body,
		      size_t blen, const nghttp2_nv *extra, size_t nextra)
{
	static struct { const uint8_t *p; size_t n; } src[256];
	static int si;
	nghttp2_nv nv[16] = {
		{ (uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"prod.example", 10, 12, 0 },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
	};
	nghttp2_data_provider dp = { .read_callback = str_read };

	if (nextra)
		memcpy(nv + 4, extra, nextra * sizeof(*extra));
	if (body) {
		src[si % 256].p = (const uint8_t *)body;
		src[si % 256].n = blen;
		dp.source.ptr = &src[si++ % 256];
	}
	return nghttp2_submit_request(t->cli, NULL, nv, 4 + nextra, body ? &dp : NULL, NULL);
}

/* ---- the engine ------------------------------------------------------------------------------ */

static const uint16_t ports[] = { SERVER_PORT };

static struct st_shadow *engine(uint16_t port, void (*setup)(struct st_shadow_config *))
{
	struct st_shadow_config cfg;
	char err[256], to[64];
	struct st_shadow *sh;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(to, sizeof(to), "127.0.0.1:%u", port);
	assert_int_equal(st_shadow_parse_target(to, &cfg.targets[0], err, sizeof(err)), 0);
	cfg.n_targets = 1;
	cfg.ports = ports;
	cfg.n_ports = 1;
	cfg.mark_name = "X-Shadowtap";
	cfg.mark_value = "1";
	if (setup)
		setup(&cfg);
	sh = st_shadow__new(&cfg);
	assert_non_null(sh);
	return sh;
}

/* Runs the engine until the shadow completed want requests (5 s at most). */
static void wait_done(struct st_shadow *sh, struct h2sink *k, int want)
{
	uint64_t end = th_mono_ms() + 5000;

	st_shadow__kick(sh);
	while (k_done(k) < want && th_mono_ms() < end) {
		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
	}
	if (k_done(k) != want) {
		print_error("the shadow completed %d requests, want %d\n", k_done(k), want);
		fail();
	}
}

static void run_ms(struct st_shadow *sh, int ms)
{
	uint64_t end = th_mono_ms() + (uint64_t)ms;

	st_shadow__kick(sh);
	while (th_mono_ms() < end) {
		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
	}
}

static struct st_shadow_stats stats(struct st_shadow *sh)
{
	struct st_shadow_stats st;

	st_shadow__stats(sh, &st);
	return st;
}

/* The accounting every run must balance (one target, no --multiply). */
static void balanced(struct st_shadow *sh)
{
	struct st_shadow_stats st = stats(sh);
	uint64_t out = st.replayed + st.dropped + st.filtered + st.gaps_skipped + st.prod_rejected +
		       st.prod_unanswered + st.h2_reset;

	if (st.requests != out) {
		print_error("requests=%lu, but replayed=%lu dropped=%lu filtered=%lu gaps_skipped=%lu "
			    "prod_rejected=%lu prod_unanswered=%lu h2_reset=%lu\n",
			    st.requests, st.replayed, st.dropped, st.filtered, st.gaps_skipped,
			    st.prod_rejected, st.prod_unanswered, st.h2_reset);
		fail();
	}
}

static void finish(struct st_shadow *sh, struct tc *t)
{
	th_fin(sh, &t->c);
	st_shadow__flush(sh);
	st_shadow__drain(sh, 2000);
	balanced(sh);
	assert_int_equal(stats(sh).queued, 0); /* every byte held was let go */
	assert_int_equal(stats(sh).staged, 0);
	tc_free(t);
	st_shadow__free(sh);
}

/* ---- tests ------------------------------------------------------------------------------------- */

/* GETs, a POST with a body over several DATA frames, trailers: each exactly once, whole, the
 * marker added. */
static void test_h2_basic(void **state)
{
	static const nghttp2_nv te[] = { { (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0 },
					 { (uint8_t *)"x-a", (uint8_t *)"1", 3, 1, 0 } };
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;
	char *big = malloc(200000);
	const struct rec *r;

	for (int i = 0; i < 200000; i++)
		big[i] = (char)('a' + i % 26);
	tc_open(sh, &t, 41000);
	tc_req(&t, "GET", "/a", NULL, 0, te + 1, 1);
	tc_req(&t, "GET", "/b?x=1", NULL, 0, NULL, 0);
	tc_req(&t, "POST", "/up", big, 200000, te, 2);
	tc_run(&t);
	wait_done(sh, k, 3);
	r = k_find(k, "/a");
	assert_non_null(r);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->authority, "prod.example");
	assert_string_equal(r->fields, "x-a: 1\nx-shadowtap: 1\n");
	r = k_find(k, "/up");
	assert_non_null(r);
	assert_int_equal(r->body_len, 200000);
	assert_memory_equal(r->body, big, 200000);
	assert_non_null(k_find(k, "/b?x=1"));
	run_ms(sh, 50);
	st = stats(sh);
	assert_int_equal(st.h2, 1);
	assert_int_equal(st.h2_streams, 3);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.responses, 3);
	assert_int_equal(st_shadow__answer_latency(sh)->total, 3); /* each stream's, once */
	assert_int_equal(st.h2_shadow_conns, 1);
	finish(sh, &t);
	free(big);
	k_stop(k);
}

/* Production's verdict per stream: reset, refused, 400 and silent streams never reach the
 * shadow; the answered ones around them do, each once. */
static void test_h2_arbiter(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;

	tc_open(sh, &t, 41001);
	tc_req(&t, "GET", "/ok1", NULL, 0, NULL, 0);
	tc_req(&t, "GET", "/rst", NULL, 0, NULL, 0);
	tc_req(&t, "GET", "/refuse", NULL, 0, NULL, 0);
	tc_req(&t, "POST", "/400", "x", 1, NULL, 0);
	tc_req(&t, "GET", "/silent", NULL, 0, NULL, 0);
	tc_req(&t, "GET", "/ok2", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 2);
	run_ms(sh, 100);
	assert_int_equal(k_done(k), 2);
	assert_int_equal(k_count(k, "/ok1"), 1);
	assert_int_equal(k_count(k, "/ok2"), 1);
	st = stats(sh);
	assert_int_equal(st.requests, 6);
	assert_int_equal(st.replayed, 2);
	assert_int_equal(st.h2_reset, 1);
	assert_int_equal(st.h2_refused, 1);
	assert_int_equal(st.prod_rejected, 2); /* refused, 400 */
	th_fin(sh, &t.c);
	run_ms(sh, 50);
	st = stats(sh);
	assert_int_equal(st.prod_unanswered, 1); /* /silent, when the connection ended */
	finish(sh, &t);
	k_stop(k);
}

/* Production speaks first (a gRPC server sends its SETTINGS before the client's preface):
 * those bytes are kept until the connection is known to be HTTP/2. And a target that refuses
 * connections: the streams are dropped, counted, their memory let go. */
static void test_h2_server_first(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow *down = engine(th_closed_port(), NULL);
	struct st_shadow_stats st;
	struct tc t, d;

	tc_open(sh, &t, 41016);
	tc_pump(&t, false);
	tc_req(&t, "GET", "/first", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 1);
	st = stats(sh);
	assert_int_equal(st.h2_errors, 0);
	assert_int_equal(st.replayed, 1);
	finish(sh, &t);
	tc_open(down, &d, 41017);
	tc_req(&d, "POST", "/down", "body", 4, NULL, 0);
	tc_run(&d);
	run_ms(down, 200);
	st = stats(down);
	assert_int_equal(st.dropped_down, 1);
	finish(down, &d);
	k_stop(k);
}

/* A request is released only when complete and answered: a client reset mid-body and a
 * stream answered before it is complete (then reset) are never replayed. */
static void test_h2_incomplete(void **state)
{
	static const nghttp2_nv ok[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } };
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;
	int32_t b;

	tc_open(sh, &t, 41002);
	tc_req(&t, "POST", "/upload", "u", 1, NULL, 0);
	tc_run(&t);
	/* a request whose END_STREAM never comes: answered early, then the client resets it */
	b = nghttp2_submit_headers(t.cli, NGHTTP2_FLAG_NONE, -1, NULL,
				   (nghttp2_nv[]){ { (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
						   { (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
						   { (uint8_t *)":authority", (uint8_t *)"a", 10, 1, 0 },
						   { (uint8_t *)":path", (uint8_t *)"/cut", 5, 4, 0 } },
				   4, NULL);
	tc_run(&t);
	/* production answers it early */
	nghttp2_submit_response(t.prod, b, ok, 1, NULL);
	tc_run(&t);
	nghttp2_submit_rst_stream(t.cli, 0, b, NGHTTP2_CANCEL);
	tc_req(&t, "GET", "/after", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 2);
	run_ms(sh, 100);
	assert_int_equal(k_count(k, "/cut"), 0);
	assert_int_equal(k_count(k, "/upload"), 1);
	assert_int_equal(k_count(k, "/after"), 1);
	st = stats(sh);
	assert_int_equal(st.h2_reset, 1);
	finish(sh, &t);
	k_stop(k);
}

/* Production's GOAWAY: the streams above its last stream id were never processed. */
static void test_h2_prod_goaway(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;

	tc_open(sh, &t, 41003);
	tc_req(&t, "GET", "/silent-1", NULL, 0, NULL, 0);
	tc_req(&t, "GET", "/silent-3", NULL, 0, NULL, 0);
	tc_req(&t, "GET", "/silent-5", NULL, 0, NULL, 0);
	tc_client(&t);
	tc_pump(&t, false);
	/* production processes stream 1 only */
	nghttp2_submit_goaway(t.prod, 0, 1, NGHTTP2_NO_ERROR, NULL, 0);
	nghttp2_submit_response(t.prod, 1,
				(nghttp2_nv[]){ { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } },
				1, NULL);
	tc_run(&t);
	wait_done(sh, k, 1);
	run_ms(sh, 50);
	assert_int_equal(k_count(k, "/silent-1"), 1);
	st = stats(sh);
	assert_int_equal(st.h2_refused, 2);
	assert_int_equal(st.prod_rejected, 2);
	finish(sh, &t);
	k_stop(k);
}

/* A capture gap: what was released before goes; the connection is no longer decoded. */
static void test_h2_gap(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;

	tc_open(sh, &t, 41004);
	tc_req(&t, "GET", "/before", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 1);
	/* the capture loses the client's next bytes (production got them) */
	t.cli_bytes_only = true;
	tc_req(&t, "GET", "/lost", NULL, 0, NULL, 0);
	{
		uint32_t from = t.c.cseq;

		tc_client(&t);
		th_seg(sh, &t.c, true, ST_TCP_ACK, from, NULL, t.c.cseq - from, true);
	}
	t.cli_bytes_only = false;
	tc_req(&t, "GET", "/after", NULL, 0, NULL, 0);
	tc_run(&t);
	run_ms(sh, 100);
	assert_int_equal(k_done(k), 1);
	st = stats(sh);
	assert_int_equal(st.h2_gap, 1);
	assert_int_equal(st.stopped_conns, 1);
	finish(sh, &t);
	k_stop(k);
}

/* A connection joined midway on a port that speaks HTTP/2: counted, never decoded. */
static void test_h2_joined(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t, j;

	tc_open(sh, &t, 41005);
	tc_req(&t, "GET", "/whole", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 1);
	/* the agent sees this one from its middle: no SYN, no preface */
	memset(&j, 0, sizeof(j));
	j.sh = sh;
	th_init(&j.c, 41006, SERVER_PORT);
	tc_sessions(&j, false);
	tc_req(&j, "GET", "/early", NULL, 0, NULL, 0);
	j.cli_bytes_only = j.drop_server = true;
	tc_run(&j);
	j.cli_bytes_only = j.drop_server = false;
	tc_req(&j, "GET", "/joined", NULL, 0, NULL, 0);
	tc_run(&j);
	run_ms(sh, 100);
	assert_int_equal(k_done(k), 1);
	st = stats(sh);
	assert_int_equal(st.h2_joined, 1);
	assert_int_equal(st.joined, 1);
	th_fin(sh, &j.c);
	tc_free(&j);
	finish(sh, &t);
	k_stop(k);
}

static void cfg_filters(struct st_shadow_config *cfg)
{
	static regex_t re;
	static struct st_http_kv set[] = { { "X-Env", "shadow" }, { "User-Agent", "st" } };

	regcomp(&re, "^/shop\\.Cart/(Get|List)", REG_EXTENDED | REG_NOSUB);
	cfg->match_path = &re;
	cfg->safe_only = true;
	cfg->set[0] = set[0];
	cfg->set[1] = set[1];
	cfg->n_set = 2;
	cfg->host = "shadow.example";
	cfg->mark_name = "X-Mark";
	cfg->mark_value = "m";
}

/* --safe-only refuses gRPC unless --match-path names the method; --set-header, --set-host
 * (as :authority) and --mark apply per stream. */
static void test_h2_filters(void **state)
{
	static const nghttp2_nv grpc[] = {
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
		{ (uint8_t *)"user-agent", (uint8_t *)"grpc-c", 10, 6, 0 },
		{ (uint8_t *)"user-agent", (uint8_t *)"dup", 10, 3, 0 },
	};
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, cfg_filters);
	struct st_shadow_stats st;
	const struct rec *r;
	struct tc t;

	tc_open(sh, &t, 41007);
	tc_req(&t, "POST", "/shop.Cart/Get", "\0\0\0\0\0", 5, grpc, 3);
	tc_req(&t, "POST", "/shop.Cart/Add", "\0\0\0\0\0", 5, grpc, 3);
	tc_req(&t, "POST", "/shop.Cart/List", "\0\0\0\0\0", 5, NULL, 0); /* not gRPC, POST */
	tc_req(&t, "GET", "/shop.Cart/Get", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 2);
	run_ms(sh, 100);
	assert_int_equal(k_done(k), 2);
	r = k_find(k, "/shop.Cart/Get");
	assert_non_null(r);
	st = stats(sh);
	assert_int_equal(st.filtered, 2);
	for (int i = 0; i < k->nrec; i++) {
		if (!strcmp(k->r[i].method, "POST")) {
			assert_string_equal(k->r[i].authority, "shadow.example");
			assert_string_equal(k->r[i].fields, "content-type: application/grpc\n"
							    "user-agent: st\nx-env: shadow\n"
							    "x-mark: m\n");
			assert_int_equal(k->r[i].body_len, 5);
		}
	}
	finish(sh, &t);
	k_stop(k);
}

static void cfg_sample_req(struct st_shadow_config *cfg)
{
	cfg->sample_pct = 30;
	cfg->sample_by_request = true;
}

/* --sample-by request samples streams: about the share asked for, each one whole. */
static void test_h2_sample_streams(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, cfg_sample_req);
	struct st_shadow_stats st;
	struct tc t;
	char p[32];

	tc_open(sh, &t, 41008);
	for (int i = 0; i < 200; i++) {
		snprintf(p, sizeof(p), "/s%d", i);
		tc_req(&t, "GET", p, NULL, 0, NULL, 0);
		if (i % 50 == 49)
			tc_run(&t);
	}
	tc_run(&t);
	run_ms(sh, 300);
	st = stats(sh);
	assert_int_equal(st.requests, 200);
	assert_int_equal(st.filtered + st.replayed, 200);
	assert_true(st.replayed > 30 && st.replayed < 90);
	assert_int_equal(k_done(k), (int)st.replayed);
	finish(sh, &t);
	k_stop(k);
}

static void sink_goaway3(struct h2sink *k)
{
	k->goaway_after = 3;
}

/* A shadow that says GOAWAY after 3 streams (nginx's keepalive_requests): what it did not
 * process goes again on a new connection; it runs each request exactly once. */
static void test_h2_shadow_goaway(void **state)
{
	struct h2sink *k = k_start(sink_goaway3);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;
	char p[32];

	tc_open(sh, &t, 41009);
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/g%d", i);
		tc_req(&t, "GET", p, NULL, 0, NULL, 0);
	}
	tc_run(&t);
	wait_done(sh, k, 20);
	run_ms(sh, 100);
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/g%d", i);
		assert_int_equal(k_count(k, p), 1);
	}
	st = stats(sh);
	assert_true(st.h2_goaways >= 6);
	assert_true(st.h2_shadow_conns >= 7);
	assert_int_equal(st.replayed, 20);
	assert_int_equal(st.responses, 20);
	finish(sh, &t);
	k_stop(k);
}

static void sink_narrow(struct h2sink *k)
{
	k->max_streams = 1;
	k->window = 4096;
}

/* One stream at a time and a 4 KiB window: the session waits, nothing is lost. */
static void test_h2_flow_control(void **state)
{
	struct h2sink *k = k_start(sink_narrow);
	struct st_shadow *sh = engine(k->port, NULL);
	struct tc t;
	char *body = malloc(40000);
	char p[32];

	memset(body, 'z', 40000);
	tc_open(sh, &t, 41010);
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "/f%d", i);
		tc_req(&t, "PUT", p, body, 40000, NULL, 0);
	}
	tc_run(&t);
	wait_done(sh, k, 10);
	for (int i = 0; i < k->nrec; i++)
		assert_int_equal(k->r[i].body_len, 40000);
	finish(sh, &t);
	free(body);
	k_stop(k);
}

static void sink_noread(struct h2sink *k)
{
	k->noread = true;
}

static void cfg_small_queue(struct st_shadow_config *cfg)
{
	cfg->conn_queue_max = 256 * 1024;
	cfg->max_queue = 256 * 1024;
}

/* A shadow that never reads: whole streams are dropped at the caps, memory stays under them,
 * nothing waits. */
static void test_h2_stuck_shadow(void **state)
{
	struct h2sink *k = k_start(sink_noread);
	struct st_shadow *sh = engine(k->port, cfg_small_queue);
	struct st_shadow_stats st;
	struct tc t;
	char *body = malloc(50000);
	char p[32];
	uint64_t t0 = th_mono_ms();

	memset(body, 'q', 50000);
	tc_open(sh, &t, 41011);
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "/q%d", i);
		tc_req(&t, "POST", p, body, 50000, NULL, 0);
		tc_run(&t);
		run_ms(sh, 5);
	}
	st = stats(sh);
	assert_true(st.dropped_queue > 0);
	/* the caps, and at most the frame its socket needs next */
	assert_true(st.queued_peak <= 256 * 1024 + 64 * 1024);
	assert_true(th_mono_ms() - t0 < 5000);
	finish(sh, &t);
	free(body);
	k_stop(k);
}

static void sink_garbage(struct h2sink *k)
{
	k->garbage = true;
}

/* A shadow answering something that is not HTTP/2: closed, counted, nothing waits. */
static void test_h2_garbage_shadow(void **state)
{
	struct h2sink *k = k_start(sink_garbage);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;

	tc_open(sh, &t, 41012);
	tc_req(&t, "GET", "/x", NULL, 0, NULL, 0);
	tc_run(&t);
	run_ms(sh, 300);
	st = stats(sh);
	assert_int_equal(st.bad_responses, 1);
	assert_int_equal(st.responses, 0);
	finish(sh, &t);
	k_stop(k);
}

static void cfg_framed(struct st_shadow_config *cfg)
{
	cfg->release = ST_RELEASE_FRAMED;
}

/* --release framed: a complete stream goes before production answers it. */
static void test_h2_release_framed(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, cfg_framed);
	struct tc t;

	tc_open(sh, &t, 41013);
	tc_req(&t, "GET", "/silent-early", NULL, 0, NULL, 0);
	tc_client(&t);
	wait_done(sh, k, 1);
	tc_run(&t);
	finish(sh, &t);
	k_stop(k);
}

/* h2c: an HTTP/1.1 request upgraded by production's 101 is stream 1; the connection's later
 * streams follow; the shadow gets them all over HTTP/2. */
/* A captured HTTP/1.1 connection upgraded to h2c by "POST path" (body "hello"), production
 * answering stream 1 as p_frame would (200, or a login). */
static void tc_upgraded(struct st_shadow *sh, struct tc *t, uint16_t cport, const char *path)
{
	uint8_t pl[64];
	char b64[128], req[512];
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 } };
	ssize_t pn = nghttp2_pack_settings_payload(pl, sizeof(pl), iv, 1);
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	static const char R101[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				   "Upgrade: h2c\r\n\r\n";
	int o = 0;

	/* base64url of the SETTINGS payload, no padding */
	for (ssize_t i = 0; i < pn; i += 3) {
		uint32_t v = (uint32_t)pl[i] << 16 | (i + 1 < pn ? (uint32_t)pl[i + 1] << 8 : 0) |
			     (i + 2 < pn ? pl[i + 2] : 0);

		b64[o++] = tbl[v >> 18 & 63];
		b64[o++] = tbl[v >> 12 & 63];
		if (i + 1 < pn)
			b64[o++] = tbl[v >> 6 & 63];
		if (i + 2 < pn)
			b64[o++] = tbl[v & 63];
	}
	b64[o] = 0;
	snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: prod.example\r\n"
		 "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n"
		 "Content-Length: 5\r\n\r\nhello", path, b64);
	memset(t, 0, sizeof(*t));
	t->sh = sh;
	th_init(&t->c, cport, SERVER_PORT);
	th_handshake(sh, &t->c);
	th_data(sh, &t->c, true, req, strlen(req));
	th_data(sh, &t->c, false, R101, strlen(R101));
	tc_sessions(t, true);
	assert_int_equal(nghttp2_session_upgrade2(t->cli, pl, (size_t)pn, 0, NULL), 0);
	assert_int_equal(nghttp2_session_upgrade2(t->prod, pl, (size_t)pn, 0, NULL), 0);
	nghttp2_submit_settings(t->cli, 0, NULL, 0);
	nghttp2_submit_settings(t->prod, 0, NULL, 0);
	nghttp2_session_set_stream_user_data(t->prod, 1, tc_keep(t, strdup(path)));
	if (pact_of(path) == P_LOGIN)
		json_answer(t->prod, 1, "200", "set-cookie", "sid=" COR_SID_P "; HttpOnly",
			    "{\"access_token\":\"" COR_TOK_P "\"}");
	else
		nghttp2_submit_response(t->prod, 1,
					(nghttp2_nv[]){ { (uint8_t *)":status", (uint8_t *)"200", 7, 3,
							  0 } },
					1, NULL);
}

static void test_h2_upgrade(void **state)
{
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct tc t;

	tc_upgraded(sh, &t, 41014, "/up1");
	tc_req(&t, "GET", "/after-upgrade", NULL, 0, NULL, 0);
	tc_run(&t);
	wait_done(sh, k, 2);
	{
		const struct rec *r = k_find(k, "/up1");

		assert_non_null(r);
		assert_string_equal(r->method, "POST");
		assert_int_equal(r->body_len, 5);
		assert_memory_equal(r->body, "hello", 5);
	}
	assert_int_equal(k_count(k, "/after-upgrade"), 1);
	st = stats(sh);
	assert_int_equal(st.h2_upgrades, 1);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.replayed, 2);
	finish(sh, &t);
	k_stop(k);
}

static const struct st_correlate_config cor_cfg = { .wait_ns = 5000000000ull };

static void cfg_correlate(struct st_shadow_config *cfg)
{
	cfg->correlate = &cor_cfg;
}

/*
 * --correlate on HTTP/2: production's answers to a login and a new order (a set-cookie, a
 * token in JSON, an id in JSON and location) paired with the shadow's own; later streams
 * reach the shadow with the shadow's values: the cookie (a field of its own, as HTTP/2 splits
 * them), the bearer token, a JSON body (content-length following it), the id in :path. The
 * stream right after the login waits for the shadow's answer to it (production's answer
 * said the cookie was coming).
 */
static void test_h2_correlate(void **state)
{
	static const char body_p[] = "{\"note\":\"x\",\"token\":\"" COR_TOK_P "\"}";
	static const char body_s[] = "{\"note\":\"x\",\"token\":\"" COR_TOK_S "\"}";
	char cl[16], want[512];
	const nghttp2_nv me[] = {
		{ (uint8_t *)"cookie", (uint8_t *)"theme=dark", 6, 10, 0 },
		{ (uint8_t *)"cookie", (uint8_t *)"sid=" COR_SID_P, 6, 4 + 16, 0 },
	};
	nghttp2_nv order[] = {
		{ (uint8_t *)"authorization", (uint8_t *)"Bearer " COR_TOK_P, 13,
		  7 + strlen(COR_TOK_P), NGHTTP2_NV_FLAG_NO_INDEX },
		{ (uint8_t *)"content-length", (uint8_t *)cl, 14, 0, 0 },
	};
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, cfg_correlate);
	struct st_shadow_stats st;
	const struct rec *r;
	struct tc t;

	order[1].valuelen = (size_t)snprintf(cl, sizeof(cl), "%zu", strlen(body_p));
	tc_open(sh, &t, 41900);
	tc_req(&t, "POST", "/login", "{}", 2, NULL, 0);
	tc_run(&t);
	tc_req(&t, "GET", "/me", NULL, 0, me, 2);
	tc_req(&t, "POST", "/orders", body_p, strlen(body_p), order, 2);
	tc_run(&t);
	wait_done(sh, k, 3);
	st = stats(sh);
	assert_int_equal(st.correlate_waits, 2); /* /me and /orders: both carry pending values */
	r = k_find(k, "/me");
	assert_non_null(r);
	assert_string_equal(r->fields, "cookie: theme=dark\ncookie: sid=" COR_SID_S "\nx-shadowtap: 1\n");
	r = k_find(k, "/orders");
	assert_non_null(r);
	snprintf(want, sizeof(want), "authorization: Bearer " COR_TOK_S "\ncontent-length: %zu\n"
		 "x-shadowtap: 1\n", strlen(body_s));
	assert_string_equal(r->fields, want);
	assert_int_equal(r->body_len, strlen(body_s));
	assert_memory_equal(r->body, body_s, strlen(body_s));
	/* the id production gave the order, in a path: once both answers are in */
	tc_req(&t, "GET", "/orders/" COR_ID_P "?full=1", NULL, 0, order, 1);
	tc_run(&t);
	wait_done(sh, k, 4);
	assert_non_null(k_find(k, "/orders/" COR_ID_S "?full=1"));
	run_ms(sh, 50);
	st = stats(sh);
	assert_int_equal(st.correlated_values, 3); /* the cookie, the token, the id */
	assert_int_equal(st.rewritten_requests, 3);
	assert_int_equal(st.unmapped_requests, 0);
	assert_int_equal(st.replayed, 4);
	finish(sh, &t);
	k_stop(k);
}

/* An h2c offer production refused (it answered in HTTP/1.1): HTTP/1.1 it stays. */
/* --correlate: the login is the request that upgraded the connection (stream 1): its answers
 * are learned from as any stream's. */
static void test_h2_correlate_upgrade(void **state)
{
	static const nghttp2_nv me[] = { { (uint8_t *)"cookie", (uint8_t *)"sid=" COR_SID_P, 6, 20,
					   0 } };
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, cfg_correlate);
	const struct rec *r;
	struct tc t;

	tc_upgraded(sh, &t, 41901, "/login");
	tc_run(&t);
	tc_req(&t, "GET", "/me", NULL, 0, me, 1);
	tc_run(&t);
	wait_done(sh, k, 2);
	r = k_find(k, "/me");
	assert_non_null(r);
	assert_string_equal(r->fields, "cookie: sid=" COR_SID_S "\nx-shadowtap: 1\n");
	run_ms(sh, 50);
	assert_int_equal(stats(sh).correlated_values, 2); /* the cookie, the token */
	assert_int_equal(stats(sh).rewritten_requests, 1);
	finish(sh, &t);
	k_stop(k);
}

static void test_h2_upgrade_refused(void **state)
{
	static const char REQ[] = "GET /no HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
				  "Upgrade: h2c\r\nHTTP2-Settings: \r\n\r\n";
	static const char REQ2[] = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct h2sink *k = k_start(NULL);
	struct st_shadow *sh = engine(k->port, NULL);
	struct st_shadow_stats st;
	struct th_conn c;

	th_init(&c, 41015, SERVER_PORT);
	th_handshake(sh, &c);
	th_data(sh, &c, true, REQ, strlen(REQ));
	th_data(sh, &c, false, OK, strlen(OK));
	th_data(sh, &c, true, REQ2, strlen(REQ2));
	th_data(sh, &c, false, OK, strlen(OK));
	run_ms(sh, 200);
	st = stats(sh);
	assert_int_equal(st.h2_upgrades, 0);
	assert_int_equal(st.h2, 0);
	assert_int_equal(st.http, 1);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.h2_shadow_conns, 0); /* as HTTP/1.1 */
	th_fin(sh, &c);
	st_shadow__flush(sh);
	st_shadow__drain(sh, 500);
	balanced(sh);
	st_shadow__free(sh);
	k_stop(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_h2_basic),
		cmocka_unit_test(test_h2_arbiter),
		cmocka_unit_test(test_h2_incomplete),
		cmocka_unit_test(test_h2_server_first),
		cmocka_unit_test(test_h2_prod_goaway),
		cmocka_unit_test(test_h2_gap),
		cmocka_unit_test(test_h2_joined),
		cmocka_unit_test(test_h2_filters),
		cmocka_unit_test(test_h2_sample_streams),
		cmocka_unit_test(test_h2_shadow_goaway),
		cmocka_unit_test(test_h2_flow_control),
		cmocka_unit_test(test_h2_stuck_shadow),
		cmocka_unit_test(test_h2_garbage_shadow),
		cmocka_unit_test(test_h2_release_framed),
		cmocka_unit_test(test_h2_upgrade),
		cmocka_unit_test(test_h2_upgrade_refused),
		cmocka_unit_test(test_h2_correlate),
		cmocka_unit_test(test_h2_correlate_upgrade),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
