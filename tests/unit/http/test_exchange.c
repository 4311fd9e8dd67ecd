/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/http/exchange.c: a connection's exchanges from its two directions'
 * bytes. HTTP/1 conversations written by hand (pipelined, chunked, read until close, an
 * interim answer, an upgrade, gaps, bytes that are not HTTP); HTTP/2 ones written by
 * libnghttp2's own client and server sessions through memory (streams interleaved, a gRPC
 * status in trailers, a stream the client resets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "bpf/shadowtap.h"
#include "exchange.h"

#define GOT_MAX 16

struct got {
	struct st_exchange x[GOT_MAX];
	unsigned n;
};

static void collect(void *ctx, const struct st_exchange *x)
{
	struct got *g = ctx;

	assert_true(g->n < GOT_MAX);
	g->x[g->n++] = *x;
}

static bool feeds(struct st_exchange_conn *c, int dir, const char *s, uint64_t ts)
{
	return st_exchange__feed(c, dir, (const uint8_t *)s, (uint32_t)strlen(s), ts);
}

/* Two pipelined requests in one segment, their answers in one (one chunked), in order, with
 * the times of the request's end and the answer's head. */
static void test_h1_pipelined_chunked(void **state)
{
	struct st_exchange_conn c;
	struct got g = { 0 };
	const char *req = "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
			  "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
	const char *resp1 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	const char *resp2 = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
			    "3\r\nabc\r\n0\r\n\r\n";

	(void)state;
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_true(feeds(&c, ST_DIR_IN, req, 100));
	assert_int_equal(g.n, 0);
	assert_true(feeds(&c, ST_DIR_OUT, resp1, 200));
	assert_int_equal(g.n, 1);
	assert_true(feeds(&c, ST_DIR_OUT, resp2, 300));
	assert_int_equal(g.n, 2);
	assert_string_equal(g.x[0].method, "GET");
	assert_string_equal(g.x[0].target, "/a?x=1");
	assert_int_equal(g.x[0].status, 200);
	assert_int_equal(g.x[0].req_end_ts, 100);
	assert_int_equal(g.x[0].resp_ts, 200);
	assert_int_equal(g.x[0].resp_bytes, strlen(resp1));
	assert_int_equal(g.x[0].grpc, -1);
	assert_string_equal(g.x[1].method, "POST");
	assert_int_equal(g.x[1].status, 201);
	assert_int_equal(g.x[1].req_bytes, strlen(req) - strlen("GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(g.x[1].resp_bytes, strlen(resp2));
	assert_int_equal(g.x[1].resp_ts, 300);
	assert_int_equal(g.x[1].stream, 0);
	st_exchange__free(&c);
}

/* A 100 Continue is part of its exchange, not one; an answer without a length ends at the
 * server's FIN. */
static void test_h1_interim_and_close(void **state)
{
	struct st_exchange_conn c;
	struct got g = { 0 };

	(void)state;
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_true(feeds(&c, ST_DIR_IN, "PUT /u HTTP/1.1\r\nContent-Length: 2\r\n"
					 "Expect: 100-continue\r\n\r\n", 1));
	assert_true(feeds(&c, ST_DIR_OUT, "HTTP/1.1 100 Continue\r\n\r\n", 2));
	assert_true(feeds(&c, ST_DIR_IN, "hi", 3));
	assert_true(feeds(&c, ST_DIR_OUT, "HTTP/1.0 200 OK\r\n\r\nuntil close", 4));
	assert_int_equal(g.n, 0);
	st_exchange__end(&c, ST_DIR_OUT, 5);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.x[0].status, 200);
	assert_int_equal(g.x[0].resp_ts, 4);
	assert_int_equal(g.x[0].req_end_ts, 3);
	assert_int_equal(g.x[0].resp_bytes, strlen("HTTP/1.0 200 OK\r\n\r\nuntil close"));
	st_exchange__free(&c);
}

/* Missing bytes inside a body of known length are stepped over; in a head they stop it. */
static void test_h1_gaps(void **state)
{
	struct st_exchange_conn c;
	struct got g = { 0 };

	(void)state;
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_true(feeds(&c, ST_DIR_IN, "GET /big HTTP/1.1\r\n\r\n", 1));
	assert_true(feeds(&c, ST_DIR_OUT, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 2));
	assert_true(st_exchange__gap(&c, ST_DIR_OUT, 6));
	assert_true(feeds(&c, ST_DIR_OUT, "yz", 3));
	assert_int_equal(g.n, 1);
	assert_int_equal(g.x[0].resp_bytes, strlen("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n") + 10);
	assert_true(feeds(&c, ST_DIR_IN, "GET /x HT", 4));
	assert_false(st_exchange__gap(&c, ST_DIR_IN, 3)); /* inside a head: cannot go on */
	assert_false(c.on);
	assert_false(feeds(&c, ST_DIR_IN, "more", 5));
	assert_int_equal(g.n, 1);
	st_exchange__free(&c); /* a stopped connection: nothing left to free, no harm */
}

/* Bytes that are not HTTP stop it at once; so does a request asking for an upgrade. */
static void test_h1_not_http_and_upgrade(void **state)
{
	struct st_exchange_conn c;
	struct got g = { 0 };

	(void)state;
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_false(feeds(&c, ST_DIR_IN, "\x16\x03\x01 not http at all\r\n\r\n", 1));
	assert_int_equal(g.n, 0);

	/* a request that asks to switch protocols: what follows may not be HTTP, followed no
	 * further (its answer, 101 or not, is not waited for) */
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_false(feeds(&c, ST_DIR_IN, "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n"
					  "Upgrade: websocket\r\n\r\n", 1));
	assert_false(c.on);
	assert_false(feeds(&c, ST_DIR_OUT, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 2));
	assert_int_equal(g.n, 0);
}

/* The bytes held before the client spoke are framed once it has; a boundary drops them. */
static void test_detect_hold_and_boundary(void **state)
{
	struct st_exchange_conn c;
	struct got g = { 0 };

	(void)state;
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_true(feeds(&c, ST_DIR_OUT, "junk before anything", 1));
	st_exchange__boundary(&c); /* held server bytes from before the boundary: gone */
	assert_true(feeds(&c, ST_DIR_IN, "GET / HTTP/1.1\r\n\r\n", 2));
	assert_true(feeds(&c, ST_DIR_OUT, "HTTP/1.1 204 No Content\r\n\r\n", 3));
	assert_int_equal(g.n, 1);
	assert_int_equal(g.x[0].status, 204);
	st_exchange__free(&c);
}

/* ---- HTTP/2, written by libnghttp2's sessions ------------------------------------------------ */

struct side {
	nghttp2_session *s;
	uint8_t *out;  /* what it wrote, for the other side and for the engine */
	size_t len, cap;
	int resets;    /* server: streams to answer */
};

static ssize_t on_send(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *ud)
{
	struct side *p = ud;

	(void)s;
	(void)flags;
	if (p->len + n > p->cap) {
		p->cap = (p->len + n) * 2;
		p->out = realloc(p->out, p->cap);
		assert_non_null(p->out);
	}
	memcpy(p->out + p->len, d, n);
	p->len += n;
	return (ssize_t)n;
}

static ssize_t body_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
		       nghttp2_data_source *src, void *ud)
{
	const char *body = src->ptr;
	size_t n = strlen(body);

	(void)s;
	(void)ud;
	(void)len;
	memcpy(buf, body, n);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (id == 3) { /* the gRPC-like stream ends with trailers */
		const nghttp2_nv tr[] = { { (uint8_t *)"grpc-status", (uint8_t *)"5", 11, 1, 0 } };

		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		nghttp2_submit_trailer(s, id, tr, 1);
	}
	return (ssize_t)n;
}

/* The server answers each request when it has ended: 200 with a body; stream 3 with
 * grpc-status 5 in trailers. */
static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	static const nghttp2_nv nv[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } };
	nghttp2_data_provider dp = { .source.ptr = (void *)"answer", .read_callback = body_cb };

	(void)ud;
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && f->hd.stream_id != 5)
		nghttp2_submit_response(s, f->hd.stream_id, nv, 1, &dp);
	return 0;
}

static void side_init(struct side *p, bool server)
{
	nghttp2_session_callbacks *cb;

	memset(p, 0, sizeof(*p));
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	if (server) {
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
		assert_int_equal(nghttp2_session_server_new(&p->s, cb, p), 0);
	} else {
		assert_int_equal(nghttp2_session_client_new(&p->s, cb, p), 0);
	}
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(p->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* What from wrote since *at goes to to, and to the engine as direction dir. */
static void deliver(struct side *from, size_t *at, struct side *to, struct st_exchange_conn *c,
		    int dir, uint64_t ts)
{
	assert_int_equal(nghttp2_session_send(from->s), 0);
	if (from->len > *at) {
		assert_true(nghttp2_session_mem_recv(to->s, from->out + *at, from->len - *at) >= 0);
		assert_true(st_exchange__feed(c, dir, from->out + *at, (uint32_t)(from->len - *at), ts));
		*at = from->len;
	}
}

static void test_h2_streams(void **state)
{
	struct side cl, sv;
	struct st_exchange_conn c;
	struct got g = { 0 };
	size_t cat = 0, sat = 0;
	const nghttp2_nv get[] = {
		{ (uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"h", 10, 1, 0 },
		{ (uint8_t *)":path", (uint8_t *)"/one", 5, 4, 0 },
	};
	const nghttp2_nv post[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"h", 10, 1, 0 },
		{ (uint8_t *)":path", (uint8_t *)"/pkg.Svc/Call", 5, 13, 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
	};
	nghttp2_data_provider dp = { .source.ptr = (void *)"12345", .read_callback = body_cb };

	(void)state;
	side_init(&cl, false);
	side_init(&sv, true);
	assert_int_equal(st_exchange__init(&c, collect, &g), 0);
	assert_int_equal(nghttp2_submit_request(cl.s, NULL, get, 4, NULL, NULL), 1);
	assert_int_equal(nghttp2_submit_request(cl.s, NULL, post, 5, &dp, NULL), 3);
	assert_int_equal(nghttp2_submit_request(cl.s, NULL, get, 4, NULL, NULL), 5);
	deliver(&cl, &cat, &sv, &c, ST_DIR_IN, 10);
	nghttp2_submit_rst_stream(cl.s, NGHTTP2_FLAG_NONE, 5, NGHTTP2_CANCEL); /* never answered */
	deliver(&cl, &cat, &sv, &c, ST_DIR_IN, 11);
	deliver(&sv, &sat, &cl, &c, ST_DIR_OUT, 20);
	deliver(&cl, &cat, &sv, &c, ST_DIR_IN, 30);
	assert_true(c.mode == ST_EXCHANGE_H2);
	assert_int_equal(g.n, 2); /* stream 5 was reset: no exchange */
	for (unsigned i = 0; i < g.n; i++) {
		const struct st_exchange *x = &g.x[i];

		assert_int_equal(x->status, 200);
		assert_int_equal(x->resp_ts, 20);
		assert_int_equal(x->resp_bytes, strlen("answer"));
		if (x->stream == 1) {
			assert_string_equal(x->method, "GET");
			assert_string_equal(x->target, "/one");
			assert_int_equal(x->grpc, -1);
			assert_int_equal(x->req_bytes, 0);
		} else {
			assert_int_equal(x->stream, 3);
			assert_string_equal(x->method, "POST");
			assert_string_equal(x->target, "/pkg.Svc/Call");
			assert_int_equal(x->grpc, 5);
			assert_int_equal(x->req_bytes, 5);
			assert_int_equal(x->req_end_ts, 10);
		}
	}
	/* bytes missing in HTTP/2: the HPACK state is gone with them */
	assert_false(st_exchange__gap(&c, ST_DIR_OUT, 10));
	nghttp2_session_del(cl.s);
	nghttp2_session_del(sv.s);
	free(cl.out);
	free(sv.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_h1_pipelined_chunked),
		cmocka_unit_test(test_h1_interim_and_close),
		cmocka_unit_test(test_h1_gaps),
		cmocka_unit_test(test_h1_not_http_and_upgrade),
		cmocka_unit_test(test_detect_hold_and_boundary),
		cmocka_unit_test(test_h2_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
