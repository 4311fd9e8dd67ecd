/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * watch's HTTP/1 source (watch.c) through reassembly: hand-built segments of one
 * connection in, exchanges (series, histograms) and counters out. Times are the segments'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "reasm.h"
#include "watch.h"
#include "watch_harness.h"

#define MS 1000000ull

struct fx {
	struct st_reasm *r;
	struct st_watch *w;
	uint32_t seq[2];
	struct st_flow_key k[2]; /* [ST_DIR_IN] client -> server, [ST_DIR_OUT] the other way */
	int whole_calls;
	struct st_flow_key whole_key;
};

static void copy_whole(void *ctx, const struct st_flow_key *k)
{
	struct fx *f = ctx;

	f->whole_calls++;
	f->whole_key = *k;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct st_watch_config wc = { .copy_whole = copy_whole };
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
	f->k[0].src.family = f->k[0].dst.family = 4;
	f->k[0].src.a[0] = htonl(0x0a000002);
	f->k[0].dst.a[0] = htonl(0x0a000001);
	f->k[0].sport = 40000;
	f->k[0].dport = 80;
	f->k[1].src = f->k[0].dst;
	f->k[1].dst = f->k[0].src;
	f->k[1].sport = 80;
	f->k[1].dport = 40000;
	f->seq[0] = 1000;
	f->seq[1] = 5000000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	st_reasm__flush(f->r); /* the connections' state goes with their close */
	st_reasm__free(f->r);
	st_watch__free(f->w);
	free(f);
	return 0;
}

/* One segment of direction dir at ts_ms: len bytes of data, then elided bytes left out by
 * the copy policy. */
static void seg(struct fx *f, int dir, uint8_t flags, const void *data, uint32_t len,
		uint32_t elided, uint64_t ts_ms)
{
	struct st_segment s = {
		.key = f->k[dir], .ts_ns = 1700000000000000000ull + ts_ms * MS, .seq = f->seq[dir],
		.flags = (flags & ST_TCP_SYN) && dir == ST_DIR_IN ? flags : flags | ST_TCP_ACK, .kind = ST_SEG_DATA, .dir = (int8_t)dir, .len = len,
		.elided = elided, .data = data,
	};

	st_reasm__feed(f->r, &s);
	f->seq[dir] += len + elided + ((flags & (ST_TCP_SYN | ST_TCP_FIN)) ? 1 : 0);
}

static void text(struct fx *f, int dir, const char *s, uint64_t ts_ms)
{
	seg(f, dir, ST_TCP_PSH, s, (uint32_t)strlen(s), 0, ts_ms);
}

static void handshake(struct fx *f)
{
	seg(f, ST_DIR_IN, ST_TCP_SYN, NULL, 0, 0, 0);
	seg(f, ST_DIR_OUT, ST_TCP_SYN, NULL, 0, 0, 0);
}

static const char get_a[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
static const char ok5[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/* Keep-alive: two exchanges on one connection, latencies from the segments' times. */
static void test_keepalive(void **state)
{
	struct fx *f = *state;
	const struct st_watch_series *s;

	handshake(f);
	text(f, ST_DIR_IN, get_a, 1000);
	text(f, ST_DIR_OUT, ok5, 1003);
	text(f, ST_DIR_IN, get_a, 1010);
	text(f, ST_DIR_OUT, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1012);
	text(f, ST_DIR_OUT, "hello", 1020);
	s = wh_find(f->w, "/a", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	assert_int_equal(s->n, 2);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.003 + 0.002);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.003 + 0.010);
	NEAR(s->h[ST_WATCH_H_REQ_SIZE].sum, 2.0 * strlen(get_a));
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, 2.0 * strlen(ok5));
	assert_int_equal(wh_stats(f->w).exchanges, 2);
	assert_int_equal(wh_stats(f->w).requests, 2);
	assert_int_equal(wh_stats(f->w).http_conns, 1);
}

/* Headers-only: bodies elided by the kernel are stepped over, sizes and ends stay exact. */
static void test_elided_body(void **state)
{
	struct fx *f = *state;
	const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
	char part[160];
	const struct st_watch_series *s;

	memset(part, 'b', sizeof(part));
	memcpy(part, head, strlen(head));
	handshake(f);
	text(f, ST_DIR_IN, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	/* a super-packet: its first 160 bytes, 50000 left out; then another, 100 + the rest */
	seg(f, ST_DIR_OUT, 0, part, sizeof(part), 50000, 5);
	seg(f, ST_DIR_OUT, ST_TCP_PSH, part + 60, 100,
	    (uint32_t)(100000 - (sizeof(part) - strlen(head)) - 50000 - 100), 8);
	s = wh_find(f->w, "/big", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.005);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.008); /* the second super-packet ends it */
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, (double)strlen(head) + 100000);
	assert_int_equal(wh_stats(f->w).skipped, 100000 - (sizeof(part) - strlen(head)) - 100);
	assert_int_equal(wh_stats(f->w).desyncs, 0);
	assert_int_equal(f->whole_calls, 0);
	/* the next exchange frames on */
	text(f, ST_DIR_IN, get_a, 20);
	text(f, ST_DIR_OUT, ok5, 21);
	assert_non_null(wh_find(f->w, "/a", ST_HTTP_M_GET, 200));
}

/* Pipelined: two requests in one segment, two answers in one. */
static void test_pipelined(void **state)
{
	struct fx *f = *state;
	char two[256];
	const struct st_watch_series *s;

	handshake(f);
	snprintf(two, sizeof(two), "%sGET /b HTTP/1.1\r\nHost: x\r\n\r\n", get_a);
	text(f, ST_DIR_IN, two, 100);
	snprintf(two, sizeof(two), "%sHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", ok5);
	text(f, ST_DIR_OUT, two, 104);
	s = wh_find(f->w, "/a", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.004);
	s = wh_find(f->w, "/b", ST_HTTP_M_GET, 404);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	assert_int_equal(wh_stats(f->w).lost_exchanges, 0);
}

/* More requests waiting than the framer's method queue holds (64): every one is paired, HEAD's
 * answers (no body) included. */
static void test_pipelined_deep(void **state)
{
	struct fx *f = *state;
	static char reqs[200 * 40], resps[200 * 64];
	size_t nq = 0, np = 0;

	handshake(f);
	for (int i = 0; i < 200; i++) {
		nq += (size_t)sprintf(reqs + nq, "%s /d HTTP/1.1\r\nHost: x\r\n\r\n",
				      i % 3 ? "GET" : "HEAD");
		np += (size_t)sprintf(resps + np, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n%s",
				      i % 3 ? "abc" : "");
	}
	seg(f, ST_DIR_IN, ST_TCP_PSH, reqs, (uint32_t)nq, 0, 0);
	seg(f, ST_DIR_OUT, ST_TCP_PSH, resps, (uint32_t)np, 0, 1);
	assert_int_equal(wh_find(f->w, "/d", ST_HTTP_M_GET, 200)->n, 133);
	assert_int_equal(wh_find(f->w, "/d", ST_HTTP_M_HEAD, 200)->n, 67);
	assert_int_equal(wh_stats(f->w).lost_exchanges, 0);
	assert_int_equal(wh_stats(f->w).unpaired, 0);
	assert_int_equal(wh_stats(f->w).desyncs, 0);
}

/* A head past the copied bytes of a segment (pipelining): framing is lost there, counted, the
 * connection is handed to copy_whole, and the next exchanges are framed again. */
static void test_head_elided_fallback(void **state)
{
	struct fx *f = *state;
	const char head1[] = "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n";
	const char head2[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	char two[256], part[100];
	const struct st_watch_series *s;
	struct st_watch_stats st;

	handshake(f);
	snprintf(two, sizeof(two), "%sGET /two HTTP/1.1\r\nHost: x\r\n\r\n", get_a);
	text(f, ST_DIR_IN, two, 0);
	memset(part, 'x', sizeof(part));
	memcpy(part, head1, strlen(head1));
	/* copied: head1 and 60 body bytes; left out: the rest of body 1, head 2, body 2 */
	seg(f, ST_DIR_OUT, ST_TCP_PSH, part, sizeof(part),
	    (uint32_t)(3000 - (sizeof(part) - strlen(head1)) + strlen(head2) + 10), 1);
	st = wh_stats(f->w);
	assert_int_equal(f->whole_calls, 1);
	assert_memory_equal(&f->whole_key, &f->k[ST_DIR_IN], sizeof(f->whole_key));
	assert_int_equal(st.fallbacks, 1);
	assert_int_equal(st.desyncs, 1);
	/* the first answer: its code and first byte are known, its end is not */
	s = wh_find(f->w, "/a", ST_HTTP_M_GET, 200);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_FIRST]), 1);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_LAST]), 0);
	assert_int_equal(st.incomplete, 1);
	/* the second request's answer was in the hole */
	assert_int_equal(st.lost_exchanges, 1);
	assert_null(wh_find(f->w, "/two", ST_HTTP_M_GET, 200));
	/* copied whole from now on: framed again at the next head */
	text(f, ST_DIR_IN, "GET /three HTTP/1.1\r\nHost: x\r\n\r\n", 10);
	text(f, ST_DIR_OUT, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 12);
	s = wh_find(f->w, "/three", ST_HTTP_M_GET, 201);
	assert_non_null(s);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_LAST]), 1);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.002);
	assert_int_equal(wh_stats(f->w).fallbacks, 1);
	assert_int_equal(f->whole_calls, 1);
}

/* Expect: 100-continue and a chunked answer: the interim answer is not an exchange, the
 * latency runs from the body's end. */
static void test_continue_chunked(void **state)
{
	struct fx *f = *state;
	const char req[] = "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
			   "Content-Length: 4\r\n\r\n";
	const char resp1[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
	const char resp2[] = "0\r\n\r\n";
	const struct st_watch_series *s;

	handshake(f);
	text(f, ST_DIR_IN, req, 0);
	text(f, ST_DIR_OUT, "HTTP/1.1 100 Continue\r\n\r\n", 1);
	text(f, ST_DIR_IN, "abcd", 2);
	text(f, ST_DIR_OUT, resp1, 5);
	text(f, ST_DIR_OUT, resp2, 9);
	s = wh_find(f->w, "/up", ST_HTTP_M_POST, 200);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	NEAR(s->h[ST_WATCH_H_FIRST].sum, 0.003);
	NEAR(s->h[ST_WATCH_H_LAST].sum, 0.007);
	NEAR(s->h[ST_WATCH_H_REQ_SIZE].sum, strlen(req) + 4.0);
	NEAR(s->h[ST_WATCH_H_RESP_SIZE].sum, (double)(strlen(resp1) + strlen(resp2)));
	assert_int_equal(wh_stats(f->w).interim, 1);
	assert_null(wh_find(f->w, "/up", ST_HTTP_M_POST, 100));
	assert_int_equal(f->whole_calls, 1); /* the chunked answer */
}

/* HEAD's answer has no body whatever its Content-Length says; an early answer has no
 * latency; a request nobody answered is counted with code none at the end. */
static void test_head_early_unanswered(void **state)
{
	struct fx *f = *state;
	const struct st_watch_series *s;

	handshake(f);
	text(f, ST_DIR_IN, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	text(f, ST_DIR_OUT, "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n", 1);
	assert_non_null(wh_find(f->w, "/h", ST_HTTP_M_HEAD, 200));
	/* the server answers before the body is all in */
	text(f, ST_DIR_IN, "PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc", 2);
	text(f, ST_DIR_OUT, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", 3);
	text(f, ST_DIR_IN, "def", 4);
	s = wh_find(f->w, "/p", ST_HTTP_M_PUT, 413);
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	assert_int_equal(wh_hcount(&s->h[ST_WATCH_H_FIRST]), 0);
	text(f, ST_DIR_IN, "GET /u HTTP/1.1\r\nHost: x\r\n\r\n", 5);
	st_reasm__flush(f->r);
	s = wh_find(f->w, "/u", ST_HTTP_M_GET, ST_WATCH_CODE_NONE);
	assert_non_null(s);
	assert_int_equal(wh_stats(f->w).unanswered, 1);
	assert_int_equal(wh_stats(f->w).exchanges, 3);
}

/* A capture loss inside a chunked answer: framing is lost and found again. (The chunked head
 * alone hands the connection to copy_whole: heads-only copies would lose its chunk lines; the
 * loss itself asks for nothing, copying whole would not bring the bytes back.) */
static void test_loss(void **state)
{
	struct fx *f = *state;
	struct st_segment loss;

	handshake(f);
	text(f, ST_DIR_IN, get_a, 0);
	text(f, ST_DIR_OUT, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1);
	loss = (struct st_segment){ .key = f->k[1], .ts_ns = 1700000000000000000ull + 2 * MS,
				    .seq = f->seq[1], .kind = ST_SEG_LOSS, .dir = ST_DIR_OUT,
				    .len = 7 };
	st_reasm__feed(f->r, &loss);
	f->seq[1] += 7;
	text(f, ST_DIR_OUT, "0\r\n\r\n", 3);
	assert_int_equal(wh_stats(f->w).desyncs, 1);
	assert_int_equal(f->whole_calls, 1);
	assert_int_equal(wh_stats(f->w).fallbacks, 1);
	assert_int_equal(wh_stats(f->w).incomplete, 1);
	text(f, ST_DIR_IN, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n", 10);
	text(f, ST_DIR_OUT, ok5, 11);
	assert_non_null(wh_find(f->w, "/after", ST_HTTP_M_GET, 200));
	assert_int_equal(wh_stats(f->w).gap_bytes, 7);
	/* a loss inside a Content-Length body: its end is still known, nothing is lost */
	text(f, ST_DIR_IN, get_a, 20);
	text(f, ST_DIR_OUT, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nh", 21);
	loss.ts_ns += 20 * MS;
	loss.seq = f->seq[1];
	loss.len = 3;
	st_reasm__feed(f->r, &loss);
	f->seq[1] += 3;
	text(f, ST_DIR_OUT, "o", 25);
	/* (the first /a, cut by the loss above, was counted without its end) */
	assert_int_equal(wh_find(f->w, "/a", ST_HTTP_M_GET, 200)->n, 2);
	assert_int_equal(wh_hcount(&wh_find(f->w, "/a", ST_HTTP_M_GET, 200)->h[ST_WATCH_H_LAST]), 1);
	NEAR(wh_find(f->w, "/a", ST_HTTP_M_GET, 200)->h[ST_WATCH_H_LAST].sum, 0.005);
	NEAR(wh_find(f->w, "/a", ST_HTTP_M_GET, 200)->h[ST_WATCH_H_RESP_SIZE].sum,
	     (double)strlen(ok5));
	assert_int_equal(wh_stats(f->w).desyncs, 1);
}

/* A connection joined midway is framed from the first head; one that is not HTTP is not. */
static void test_joined_and_other(void **state)
{
	struct fx *f = *state;

	/* no SYN: the first bytes are the end of an answer, then one nobody asked for here */
	text(f, ST_DIR_OUT, "tail of a body", 0);
	text(f, ST_DIR_OUT, ok5, 1);
	text(f, ST_DIR_IN, get_a, 2);
	text(f, ST_DIR_OUT, ok5, 3);
	assert_int_equal(wh_stats(f->w).joined_conns, 1);
	assert_int_equal(wh_stats(f->w).unpaired, 1);
	assert_int_equal(wh_find(f->w, "/a", ST_HTTP_M_GET, 200)->n, 1);
	st_reasm__flush(f->r);
	/* a TLS handshake on the port */
	f->k[0].sport = f->k[1].dport = 40001;
	handshake(f);
	seg(f, ST_DIR_IN, ST_TCP_PSH, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, 0, 5);
	assert_int_equal(wh_stats(f->w).other_conns, 1);
	assert_int_equal(wh_stats(f->w).http_conns, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elided_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_deep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_elided_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continue_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_early_unanswered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_joined_and_other, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
