/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * watch's HTTP/2 source (watch_h2.c) through reassembly and watch.c's detection: real HTTP/2
 * frames (header blocks by libnghttp2's HPACK deflater, one per direction, frames by hand) in
 * hand-built segments, exchanges (series, histograms, gRPC codes) and counters out. Times are
 * the segments'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"
#include "http.h"
#include "prom.h"
#include "reasm.h"
#include "watch.h"
#include "watch_harness.h"
#include "watch_h2.h"

#define MS 1000000ull
#define T0 1700000000000000000ull

/* One connection: its keys, sequence numbers, and each side's HPACK encoder. */
struct conn {
	struct st_flow_key k[2]; /* [ST_DIR_IN] client -> server */
	uint32_t seq[2];
	nghttp2_hd_deflater *def[2];
};

struct fx {
	struct st_reasm *r;
	struct st_watch *w;
	int whole_calls;
	int port_calls;
	uint16_t whole_port;
	struct conn c;
};

/* Bytes of one segment. */
struct wire {
	uint8_t b[1 << 16];
	size_t n;
};

static void copy_whole(void *ctx, const struct st_flow_key *k)
{
	struct fx *f = ctx;

	(void)k;
	f->whole_calls++;
}

static void copy_port_whole(void *ctx, uint16_t port)
{
	struct fx *f = ctx;

	f->port_calls++;
	f->whole_port = port;
}

static void conn_init(struct conn *c, uint16_t cport)
{
	memset(c, 0, sizeof(*c));
	c->k[0].src.family = c->k[0].dst.family = 4;
	c->k[0].src.a[0] = htonl(0x0a000002);
	c->k[0].dst.a[0] = htonl(0x0a000001);
	c->k[0].sport = cport;
	c->k[0].dport = 80;
	c->k[1].src = c->k[0].dst;
	c->k[1].dst = c->k[0].src;
	c->k[1].sport = 80;
	c->k[1].dport = cport;
	c->seq[0] = 1000;
	c->seq[1] = 5000000;
	assert_int_equal(nghttp2_hd_deflate_new(&c->def[0], 4096), 0);
	assert_int_equal(nghttp2_hd_deflate_new(&c->def[1], 4096), 0);
}

static void conn_free(struct conn *c)
{
	nghttp2_hd_deflate_del(c->def[0]);
	nghttp2_hd_deflate_del(c->def[1]);
	c->def[0] = c->def[1] = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct st_watch_config wc = { .copy_whole = copy_whole, .copy_port_whole = copy_port_whole };
	struct st_reasm_config rc = { 0 };
	static const uint16_t ports[] = { 80 };

	assert_non_null(f);
	wc.copy_whole_ctx = f;
	f->w = st_watch__new(&wc);
	assert_non_null(f->w);
	rc.ports = ports;
	rc.n_ports = 1;
	f->r = st_reasm__new(&rc, &st_watch_reasm_ops, f->w);
	assert_non_null(f->r);
	conn_init(&f->c, 40000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	st_reasm__flush(f->r);
	st_reasm__free(f->r);
	st_watch__free(f->w);
	conn_free(&f->c);
	free(f);
	return 0;
}

/* A segment of c's direction dir at ts_ms: len bytes copied, then elided ones. */
static void seg(struct fx *f, struct conn *c, int dir, uint8_t flags, const void *data,
		uint32_t len, uint32_t elided, uint64_t ts_ms)
{
	struct st_segment s = {
		.key = c->k[dir], .ts_ns = T0 + ts_ms * MS, .seq = c->seq[dir],
		.flags = (flags & ST_TCP_SYN) && dir == ST_DIR_IN ? flags : flags | ST_TCP_ACK,
		.kind = ST_SEG_DATA, .dir = (int8_t)dir, .len = len, .elided = elided, .data = data,
	};

	st_reasm__feed(f->r, &s);
	c->seq[dir] += len + elided + ((flags & (ST_TCP_SYN | ST_TCP_FIN)) ? 1 : 0);
}

static void put(struct wire *w, const void *p, size_t n)
{
	assert_true(w->n + n <= sizeof(w->b));
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void frame(struct wire *w, uint8_t type, uint8_t flags, uint32_t id, const void *p,
		  size_t len)
{
	uint8_t h[9] = { (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
			 (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id };

	put(w, h, sizeof(h));
	if (len)
		put(w, p, len);
}

#define F_DATA 0
#define F_HEADERS 1
#define F_RST 3
#define F_SETTINGS 4
#define F_GOAWAY 7
#define END_STREAM 1
#define END_HEADERS 4

/* A HEADERS frame of c's direction dir: name, value, ..., NULL, by that side's encoder. */
static void headers(struct conn *c, struct wire *w, int dir, uint32_t id, bool end, ...)
{
	nghttp2_nv nv[16];
	uint8_t block[4096];
	size_t n = 0;
	ssize_t len;
	va_list ap;

	va_start(ap, end);
	for (const char *name; (name = va_arg(ap, const char *)) && n < 16; n++) {
		const char *value = va_arg(ap, const char *);

		nv[n] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, strlen(name),
				      strlen(value), NGHTTP2_NV_FLAG_NONE };
	}
	va_end(ap);
	len = nghttp2_hd_deflate_hd(c->def[dir], block, sizeof(block), nv, n);
	assert_true(len > 0);
	frame(w, F_HEADERS, END_HEADERS | (end ? END_STREAM : 0), id, block, (size_t)len);
}

static void data(struct wire *w, uint32_t id, size_t len, bool end)
{
	static uint8_t zero[20000];

	assert_true(len <= sizeof(zero));
	frame(w, F_DATA, end ? END_STREAM : 0, id, zero, len);
}

static void rst(struct wire *w, uint32_t id, uint32_t code)
{
	uint8_t p[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
			 (uint8_t)code };

	frame(w, F_RST, 0, id, p, 4);
}

static void xmit(struct fx *f, struct conn *c, int dir, struct wire *w, uint64_t ts_ms)
{
	seg(f, c, dir, ST_TCP_PSH, w->b, (uint32_t)w->n, 0, ts_ms);
	w->n = 0;
}

/* The handshake, the client's preface and SETTINGS, the server's SETTINGS and both ACKs. */
static void open_h2(struct fx *f, struct conn *c, bool server_first)
{
	struct wire w = { .n = 0 };

	seg(f, c, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, c, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
	if (server_first) {
		frame(&w, F_SETTINGS, 0, 0, NULL, 0);
		xmit(f, c, ST_DIR_OUT, &w, 0);
	}
	put(&w, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	frame(&w, F_SETTINGS, 0, 0, NULL, 0);
	if (server_first)
		frame(&w, F_SETTINGS, 1, 0, NULL, 0);
	xmit(f, c, ST_DIR_IN, &w, 0);
	if (!server_first)
		frame(&w, F_SETTINGS, 0, 0, NULL, 0);
	frame(&w, F_SETTINGS, 1, 0, NULL, 0);
	xmit(f, c, ST_DIR_OUT, &w, 0);
	if (!server_first) {
		frame(&w, F_SETTINGS, 1, 0, NULL, 0);
		xmit(f, c, ST_DIR_IN, &w, 0);
	}
}

static uint64_t grpc_count(struct fx *f, const char *ep, unsigned code)
{
	const struct st_watch_agg *a = st_watch__agg(f->w);

	for (uint32_t e = 0; e < a->grpc_rows; e++)
		if (!strcmp(st_watch_agg_endpoint_name(a, e), ep))
			return a->grpc[e][code];
	return 0;
}

/* Two streams interleaved, answered out of order: each its own exchange, times and sizes from
 * its own frames; the connection is listed for whole copies at its preface. */
static void test_streams(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	const struct st_watch_series *s;

	open_h2(f, &f->c, false);
	assert_int_equal(f->whole_calls, 1);
	headers(&f->c, &w, ST_DIR_IN, 1, true, ":method", "GET", ":scheme", "http", ":path",
		"/users/42", ":authority", "x", NULL);
	headers(&f->c, &w, ST_DIR_IN, 3, false, ":method", "POST", ":scheme", "http", ":path",
		"/items?a=1", ":authority", "x", NULL);
	data(&w, 3, 10, false);
	xmit(f, &f->c, ST_DIR_IN, &w, 100);
	data(&w, 3, 7, true);
	xmit(f, &f->c, ST_DIR_IN, &w, 102);
	/* stream 3 first: 201 and 5 bytes; then stream 1's head, its body later */
	headers(&f->c, &w, ST_DIR_OUT, 3, false, ":status", "201", NULL);
	data(&w, 3, 5, true);
	headers(&f->c, &w, ST_DIR_OUT, 1, false, ":status", "404", NULL);
	xmit(f, &f->c, ST_DIR_OUT, &w, 105);
	data(&w, 1, 300, false);
	xmit(f, &f->c, ST_DIR_OUT, &w, 110);
	data(&w, 1, 0, true);
	xmit(f, &f->c, ST_DIR_OUT, &w, 120);

	s = wh_find(f->w, "/items?a", ST_HTTP_M_POST, 201);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.003);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.003);
	NEAR(s->h[ST_WATCH_H_REQ_SIZE].sum, 17);
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, 5);
	s = wh_find(f->w, "/users/{id}", ST_HTTP_M_GET, 404);
	assert_non_null(s);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.005);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.020);
	NEAR(s->h[ST_WATCH_H_REQ_SIZE].sum, 0);
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, 300);
	assert_int_equal(wh_stats(f->w).h2_conns, 1);
	assert_int_equal(wh_stats(f->w).h2_whole, 1);
	assert_int_equal(wh_stats(f->w).http_conns, 0);
	assert_int_equal(wh_stats(f->w).requests, 2);
	assert_int_equal(wh_stats(f->w).h2_streams, 2);
	assert_int_equal(wh_stats(f->w).exchanges, 2);
	assert_int_equal(wh_stats(f->w).fallbacks, 0);
	assert_int_equal(wh_stats(f->w).unanswered + wh_stats(f->w).incomplete + wh_stats(f->w).lost_exchanges, 0);
}

/* h2c: an HTTP/1.1 request that offers it (answered 101) is stream 1, timed from its last
 * byte to the server's HTTP/2 answer after the 101 (in the 101's own segment); the 101 is no
 * exchange; the client's preface follows and a second stream goes on; the connection is
 * listed whole. A second connection's offer answered 200 stays HTTP/1 (the 200 counted). */
static void test_h2c_upgrade(void **state)
{
	static const char req[] = "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
				  "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAA\r\n\r\n";
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				 "Upgrade: h2c\r\n\r\n";
	static const char no[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	const struct st_watch_series *s;
	struct conn c2;

	seg(f, &f->c, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &f->c, ST_DIR_IN, ST_TCP_PSH, req, sizeof(req) - 1, 0, 100);
	put(&w, sw, sizeof(sw) - 1);
	frame(&w, F_SETTINGS, 0, 0, NULL, 0);
	headers(&f->c, &w, ST_DIR_OUT, 1, false, ":status", "200", NULL);
	data(&w, 1, 40, true);
	xmit(f, &f->c, ST_DIR_OUT, &w, 107);
	assert_int_equal(f->whole_calls, 1);
	put(&w, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	frame(&w, F_SETTINGS, 0, 0, NULL, 0);
	frame(&w, F_SETTINGS, 1, 0, NULL, 0);
	headers(&f->c, &w, ST_DIR_IN, 3, true, ":method", "GET", ":scheme", "http", ":path",
		"/two", ":authority", "x", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 110);
	frame(&w, F_SETTINGS, 1, 0, NULL, 0);
	headers(&f->c, &w, ST_DIR_OUT, 3, true, ":status", "204", NULL);
	xmit(f, &f->c, ST_DIR_OUT, &w, 112);

	s = wh_find(f->w, "/up", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.007);
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, 40);
	assert_null(wh_find(f->w, "/up", ST_HTTP_M_GET, 101));
	s = wh_find(f->w, "/two", ST_HTTP_M_GET, 204);
	assert_non_null(s);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.002);

	/* refused: the offer's answer is a 200, HTTP/1 goes on */
	conn_init(&c2, 40001);
	seg(f, &c2, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &c2, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &c2, ST_DIR_IN, ST_TCP_PSH, req, sizeof(req) - 1, 0, 200);
	seg(f, &c2, ST_DIR_OUT, ST_TCP_PSH, no, sizeof(no) - 1, 0, 203);
	s = wh_find(f->w, "/up", ST_HTTP_M_GET, 200);
	assert_int_equal(s->n, 2);

	assert_int_equal(wh_stats(f->w).h2_upgraded, 1);
	assert_int_equal(wh_stats(f->w).h2_conns, 1);
	assert_int_equal(wh_stats(f->w).http_conns, 2);
	assert_int_equal(wh_stats(f->w).requests, 3);
	assert_int_equal(wh_stats(f->w).exchanges, 3);
	assert_int_equal(wh_stats(f->w).upgraded_conns, 0);
	assert_int_equal(wh_stats(f->w).h2_errors + wh_stats(f->w).h2_gap + wh_stats(f->w).h2_elided, 0);
	assert_int_equal(wh_stats(f->w).unanswered + wh_stats(f->w).incomplete + wh_stats(f->w).lost_exchanges, 0);
	conn_free(&c2);
}

/* gRPC: status from the trailers or a trailers-only answer, per endpoint and code, exported as
 * shadowtap_grpc_requests_total{endpoint, grpc_code}. A server that speaks first is held. */
static void test_grpc(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	struct st_prom *p;
	struct st_prom_labels base = { 0 };
	char *text = NULL;
	size_t tlen = 0;
	FILE *m;

	open_h2(f, &f->c, true);
	assert_int_equal(wh_stats(f->w).h2_conns, 1);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t id = 1 + 2 * i;

		headers(&f->c, &w, ST_DIR_IN, id, false, ":method", "POST", ":scheme", "http",
			":path", i < 2 ? "/pkg.Svc/Get" : "/pkg.Svc/Put", ":authority", "x",
			"content-type", "application/grpc", "te", "trailers", NULL);
		data(&w, id, 12, true);
		xmit(f, &f->c, ST_DIR_IN, &w, 10 * i);
		if (i == 1) {
			/* trailers-only: NOT_FOUND */
			headers(&f->c, &w, ST_DIR_OUT, id, true, ":status", "200", "content-type",
				"application/grpc", "grpc-status", "5", "grpc-message", "no%20such",
				NULL);
		} else {
			headers(&f->c, &w, ST_DIR_OUT, id, false, ":status", "200", "content-type",
				"application/grpc", NULL);
			data(&w, id, 9, false);
			headers(&f->c, &w, ST_DIR_OUT, id, true, "grpc-status", "0", NULL);
		}
		xmit(f, &f->c, ST_DIR_OUT, &w, 10 * i + 2);
	}
	/* a hole in the client's direction: the trailers-only answer comes before the request */
	headers(&f->c, &w, ST_DIR_OUT, 7, true, ":status", "200", "content-type",
		"application/grpc", "grpc-status", "7", NULL);
	xmit(f, &f->c, ST_DIR_OUT, &w, 40);
	headers(&f->c, &w, ST_DIR_IN, 7, true, ":method", "POST", ":scheme", "http", ":path",
		"/pkg.Svc/Put", ":authority", "x", "content-type", "application/grpc", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 39);
	assert_int_equal(grpc_count(f, "/pkg.Svc/Put", 7), 1); /* PERMISSION_DENIED */
	assert_int_equal(wh_find(f->w, "/pkg.Svc/Put", ST_HTTP_M_POST, 200)->n, 2);
	assert_int_equal(wh_find(f->w, "/pkg.Svc/Get", ST_HTTP_M_POST, 200)->n, 2);
	assert_int_equal(grpc_count(f, "/pkg.Svc/Get", 0), 1);
	assert_int_equal(grpc_count(f, "/pkg.Svc/Get", 5), 1);
	assert_int_equal(grpc_count(f, "/pkg.Svc/Put", 0), 1);
	assert_int_equal(wh_stats(f->w).grpc_calls, 4);
	/* Get 200, Put 200; Get OK, Get NOT_FOUND, Put OK, Put PERMISSION_DENIED */
	assert_int_equal(wh_stats(f->w).series, 2 + 4);
	NEAR(wh_find(f->w, "/pkg.Svc/Get", ST_HTTP_M_POST, 200)->h[ST_WATCH_H_RESP_SIZE].sum, 9);

	p = st_prom__new();
	assert_non_null(p);
	st_prom_labels_add(&base, "job", "watch");
	st_watch_agg_prom(st_watch__agg(f->w), p, &base);
	m = open_memstream(&text, &tlen);
	assert_non_null(m);
	assert_int_equal(st_prom__write(p, m), 0);
	fclose(m);
	assert_non_null(strstr(text, "# TYPE shadowtap_grpc_requests_total counter\n"));
	assert_non_null(strstr(text, "shadowtap_grpc_requests_total{job=\"watch\",endpoint=\""
				     "/pkg.Svc/Get\",grpc_code=\"NOT_FOUND\"} 1\n"));
	assert_non_null(strstr(text, "shadowtap_grpc_requests_total{job=\"watch\",endpoint=\""
				     "/pkg.Svc/Get\",grpc_code=\"OK\"} 1\n"));
	free(text);
	st_prom__free(p);
}

/* Headers-only copies before the whole copy takes effect: bytes elided inside DATA are stepped
 * over exactly; elided bytes that hold a frame header stop the connection (h2_elided). */
static void test_elided(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	const struct st_watch_series *s;
	size_t head;

	open_h2(f, &f->c, false);
	headers(&f->c, &w, ST_DIR_IN, 1, true, ":method", "GET", ":scheme", "http", ":path",
		"/big", ":authority", "x", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 0);
	headers(&f->c, &w, ST_DIR_OUT, 1, false, ":status", "200", NULL);
	head = w.n;
	data(&w, 1, 16000, true);
	/* the first 100 bytes of the DATA's content copied, the rest elided */
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_PSH, w.b, (uint32_t)(head + 9 + 100),
	    (uint32_t)(w.n - head - 9 - 100), 4);
	w.n = 0;
	s = wh_find(f->w, "/big", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, 16000);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.004);
	assert_int_equal(wh_stats(f->w).skipped, 15900);
	assert_int_equal(wh_stats(f->w).h2_elided, 0);

	/* two streams open; the answer of 3 begins, then elided bytes span a frame header */
	headers(&f->c, &w, ST_DIR_IN, 3, true, ":method", "GET", ":scheme", "http", ":path",
		"/big", ":authority", "x", NULL);
	headers(&f->c, &w, ST_DIR_IN, 5, true, ":method", "GET", ":scheme", "http", ":path",
		"/other", ":authority", "x", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 10);
	headers(&f->c, &w, ST_DIR_OUT, 3, false, ":status", "500", NULL);
	head = w.n;
	data(&w, 3, 1000, true);
	headers(&f->c, &w, ST_DIR_OUT, 5, true, ":status", "204", NULL);
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_PSH, w.b, (uint32_t)(head + 20),
	    (uint32_t)(w.n - head - 20), 12);
	w.n = 0;
	assert_int_equal(wh_stats(f->w).h2_elided, 1);
	/* 3 had its head: counted, incomplete; 5 had none: lost */
	s = wh_find(f->w, "/big", ST_HTTP_M_GET, 500);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_FIRST]), 1);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_LAST]), 0);
	assert_int_equal(wh_stats(f->w).incomplete, 1);
	assert_int_equal(wh_stats(f->w).lost_exchanges, 1);
	assert_null(wh_find(f->w, "/other", ST_HTTP_M_GET, 204));
	/* nothing after the stop is looked at */
	headers(&f->c, &w, ST_DIR_IN, 7, true, ":method", "GET", ":scheme", "http", ":path",
		"/after", ":authority", "x", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 20);
	assert_int_equal(wh_stats(f->w).requests, 3);
}

/* Resets: a client's cancel before the answer is code none (h2_resets), a REFUSED_STREAM and
 * the streams above a GOAWAY were never processed (h2_refused, not counted); the connection's
 * end counts the request left unanswered. */
static void test_resets(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	static const uint8_t goaway[8] = { 0, 0, 0, 7, 0, 0, 0, 0 }; /* last stream 7, NO_ERROR */

	open_h2(f, &f->c, false);
	for (uint32_t id = 1; id <= 11; id += 2)
		headers(&f->c, &w, ST_DIR_IN, id, true, ":method", "GET", ":scheme", "http",
			":path", "/r", ":authority", "x", NULL);
	rst(&w, 1, ST_H2_CANCEL);
	xmit(f, &f->c, ST_DIR_IN, &w, 1);
	rst(&w, 3, ST_H2_REFUSED_STREAM);
	headers(&f->c, &w, ST_DIR_OUT, 5, false, ":status", "200", NULL);
	rst(&w, 5, ST_H2_INTERNAL_ERROR); /* cut short after its head */
	frame(&w, F_GOAWAY, 0, 0, goaway, sizeof(goaway));
	xmit(f, &f->c, ST_DIR_OUT, &w, 3);
	assert_int_equal(wh_stats(f->w).h2_refused, 3); /* 3, 9, 11 */
	assert_int_equal(wh_stats(f->w).h2_resets, 2);
	assert_int_equal(wh_find(f->w, "/r", ST_HTTP_M_GET, ST_WATCH_CODE_NONE)->n, 1);
	assert_int_equal(wh_find(f->w, "/r", ST_HTTP_M_GET, 200)->n, 1);
	assert_int_equal(wh_stats(f->w).incomplete, 1);
	/* 7 is never answered: counted when the connection ends */
	seg(f, &f->c, ST_DIR_IN, ST_TCP_FIN, NULL, 0, 0, 5);
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_FIN, NULL, 0, 0, 5);
	st_reasm__flush(f->r);
	assert_int_equal(wh_find(f->w, "/r", ST_HTTP_M_GET, ST_WATCH_CODE_NONE)->n, 2);
	assert_int_equal(wh_stats(f->w).unanswered, 2);
	assert_int_equal(wh_stats(f->w).exchanges, 3);
}

/* Many streams open at once: 256 followed, the rest dropped (counted); a rapid-reset storm
 * stops the connection at the framer's bound: memory stays bounded whatever the client does. */
static void test_bounds(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	uint32_t id = 1;

	open_h2(f, &f->c, false);
	for (; id < 2 * 300; id += 2) {
		headers(&f->c, &w, ST_DIR_IN, id, false, ":method", "POST", ":scheme", "http",
			":path", "/slow", ":authority", "x", NULL);
		if (w.n > 60000)
			xmit(f, &f->c, ST_DIR_IN, &w, 1);
	}
	xmit(f, &f->c, ST_DIR_IN, &w, 1);
	assert_int_equal(wh_stats(f->w).h2_stream_cap, 300 - ST_WATCH_H2_STREAMS);
	assert_int_equal(wh_stats(f->w).lost_exchanges, 300 - ST_WATCH_H2_STREAMS);
	assert_int_equal(wh_stats(f->w).requests, ST_WATCH_H2_STREAMS);
	/* the client resets them all and opens more, resetting each at once */
	for (uint32_t i = 1; i < id; i += 2)
		rst(&w, i, ST_H2_CANCEL);
	xmit(f, &f->c, ST_DIR_IN, &w, 2);
	for (uint32_t n = 0; n < 1100 && !wh_stats(f->w).h2_errors; n++, id += 2) {
		headers(&f->c, &w, ST_DIR_IN, id, false, ":method", "POST", ":scheme", "http",
			":path", "/slow", ":authority", "x", NULL);
		rst(&w, id, ST_H2_CANCEL);
		xmit(f, &f->c, ST_DIR_IN, &w, 3);
	}
	assert_int_equal(wh_stats(f->w).h2_errors, 1);
	/* each reset stream was a request: counted with no answer */
	assert_int_equal(wh_stats(f->w).exchanges, wh_stats(f->w).h2_resets);
	assert_int_equal(wh_stats(f->w).exchanges + wh_stats(f->w).lost_exchanges,
			 wh_stats(f->w).requests + 300 - ST_WATCH_H2_STREAMS);
}

/* The port is copied whole once HTTP/2 was seen on it; a connection joined midway there is
 * counted, not decoded; a capture loss stops a connection. */
static void test_joined_gap(void **state)
{
	struct fx *f = *state;
	struct wire w = { .n = 0 };
	struct conn c2, c3;
	struct st_segment loss;

	open_h2(f, &f->c, false);
	assert_int_equal(f->whole_calls, 1);
	assert_int_equal(f->port_calls, 1);
	assert_int_equal(f->whole_port, 80);
	/* joined: no SYN, frames of a stream */
	conn_init(&c2, 40001);
	headers(&c2, &w, ST_DIR_IN, 9, true, ":method", "GET", ":scheme", "http", ":path", "/j",
		":authority", "x", NULL);
	xmit(f, &c2, ST_DIR_IN, &w, 1);
	assert_int_equal(wh_stats(f->w).h2_joined, 1);
	assert_int_equal(wh_stats(f->w).requests, 0);
	/* a new connection on the port: its preface lists it, the port is not asked twice */
	conn_init(&c3, 40002);
	open_h2(f, &c3, false);
	assert_int_equal(f->whole_calls, 2);
	assert_int_equal(f->port_calls, 1);
	assert_int_equal(wh_stats(f->w).h2_ports, 1);
	assert_int_equal(wh_stats(f->w).h2_conns, 2);
	conn_free(&c2);
	conn_free(&c3);
	/* a loss in the first connection's server direction, a request in flight */
	headers(&f->c, &w, ST_DIR_IN, 1, true, ":method", "GET", ":scheme", "http", ":path",
		"/g", ":authority", "x", NULL);
	xmit(f, &f->c, ST_DIR_IN, &w, 3);
	loss = (struct st_segment){ .key = f->c.k[1], .ts_ns = T0 + 4 * MS, .seq = f->c.seq[1],
				    .kind = ST_SEG_LOSS, .dir = ST_DIR_OUT, .len = 30 };
	st_reasm__feed(f->r, &loss);
	f->c.seq[1] += 30;
	headers(&f->c, &w, ST_DIR_OUT, 1, true, ":status", "200", NULL);
	xmit(f, &f->c, ST_DIR_OUT, &w, 5);
	assert_int_equal(wh_stats(f->w).h2_gap, 1);
	assert_int_equal(wh_stats(f->w).lost_exchanges, 1);
	assert_int_equal(wh_stats(f->w).exchanges, 0);
	assert_int_equal(wh_stats(f->w).gap_bytes, 30);
}

/* Which HTTP a connection speaks is the client's first bytes: a server that speaks first is
 * held (an HTTP/2 server's SETTINGS); before an HTTP/1 request it is not HTTP, as before, and
 * a server that says more than can be held first is not measured either. */
static void test_server_first(void **state)
{
	struct fx *f = *state;
	struct conn c2;
	static uint8_t banner[5000];
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	seg(f, &f->c, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &f->c, ST_DIR_OUT, ST_TCP_PSH, "220 ready\r\n", 11, 0, 1);
	assert_int_equal(wh_stats(f->w).other_conns, 0); /* held */
	seg(f, &f->c, ST_DIR_IN, ST_TCP_PSH, get, sizeof(get) - 1, 0, 2);
	assert_int_equal(wh_stats(f->w).other_conns, 1);
	assert_int_equal(wh_stats(f->w).http_conns + wh_stats(f->w).h2_conns, 0);
	conn_init(&c2, 40001);
	seg(f, &c2, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &c2, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, &c2, ST_DIR_OUT, ST_TCP_PSH, banner, sizeof(banner), 0, 1);
	assert_int_equal(wh_stats(f->w).other_conns, 2);
	conn_free(&c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_h2c_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elided, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_joined_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_first, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
