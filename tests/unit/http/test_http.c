/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/http/http.c: HTTP/1.x framing, resync and head rewriting.
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

#include "http.h"
#include "http_rewrite.h"

#define S(lit) lit, (sizeof(lit) - 1)

/* ---- helpers ---- */

struct exp {
	enum st_http_ev type;
	size_t n;       /* bytes consumed by the call */
	uint64_t x;     /* HEAD: raw_len, BODY: data_len, MSG_DONE: msg_len, ERROR: err,
			 * SKIP: skip_len */
	uint64_t y;     /* MSG_DONE: body_len, ERROR: lost_len */
};

static void init(struct st_http_parser *p, enum st_http_kind k, uint32_t cap, uint32_t maxh)
{
	assert_int_equal(st_http__init(p, k, &(struct st_http_opts){ .head_cap = cap,
								     .max_headers = maxh }), 0);
}

/*
 * Feed buf whole, calling until NEED_MORE, and compare with e[] exactly.
 * ERROR ends the check (the parser is left in error for the caller).
 */
static void expect_events(struct st_http_parser *p, const char *buf, size_t len,
			  const struct exp *e, size_t ne)
{
	struct st_http_event ev;
	size_t i = 0, off = 0;

	for (;;) {
		size_t n = st_http__feed(p, buf + off, len - off, &ev);

		off += n;
		if (i == ne) {
			/* the last call may buffer the tail (partial head/candidate) */
			assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
			assert_int_equal(off, len);
			return;
		}
		assert_int_equal(ev.type, e[i].type);
		assert_int_equal(n, e[i].n);
		switch (ev.type) {
		case ST_HTTP_EV_HEAD:
			assert_int_equal(ev.head->raw_len, e[i].x);
			break;
		case ST_HTTP_EV_BODY:
			assert_int_equal(ev.data_len, e[i].x);
			break;
		case ST_HTTP_EV_MSG_DONE:
			assert_int_equal(ev.msg_len, e[i].x);
			assert_int_equal(ev.body_len, e[i].y);
			break;
		case ST_HTTP_EV_ERROR:
			assert_int_equal(ev.err, e[i].x);
			assert_int_equal(ev.lost_len, e[i].y);
			break;
		case ST_HTTP_EV_SKIP:
			assert_int_equal(ev.skip_len, e[i].x);
			break;
		default:
			break;
		}
		i++;
		if (ev.type == ST_HTTP_EV_ERROR) {
			assert_int_equal(i, ne);
			return;
		}
	}
}

/* Feed whole and return the first HEAD (copied out), asserting one is there. */
struct headinfo {
	char method[32];
	char target[256];
	uint16_t status;
	uint8_t minor;
	uint32_t flags;
	enum st_http_body body;
	uint64_t cl;
	uint32_t raw_len, line_off, nheaders;
	enum st_http_method m;
};

static void copy_head(struct headinfo *hi, const struct st_http_head *h)
{
	memset(hi, 0, sizeof(*hi));
	if (h->method_str)
		memcpy(hi->method, h->method_str, h->method_len < 31 ? h->method_len : 31);
	if (h->target)
		memcpy(hi->target, h->target, h->target_len < 255 ? h->target_len : 255);
	hi->status = h->status;
	hi->minor = h->version_minor;
	hi->flags = h->flags;
	hi->body = h->body;
	hi->cl = h->content_length;
	hi->raw_len = h->raw_len;
	hi->line_off = h->line_off;
	hi->nheaders = h->nheaders;
	hi->m = h->method;
}

/* Normalised trace (runs of BODY/SKIP/RAW merged) for split comparisons. */
struct tev {
	int type, sub;
	uint64_t a, b;
};

struct trace {
	struct tev ev[256];
	size_t n;
	uint64_t consumed;
};

static void tpush(struct trace *t, int type, int sub, uint64_t a, uint64_t b)
{
	if (t->n && t->ev[t->n - 1].type == type && t->ev[t->n - 1].sub == sub &&
	    (type == ST_HTTP_EV_BODY || type == ST_HTTP_EV_SKIP || type == ST_HTTP_EV_RAW)) {
		t->ev[t->n - 1].a += a;
		return;
	}
	assert_true(t->n < 256);
	t->ev[t->n++] = (struct tev){ type, sub, a, b };
}

/* pieces: lengths of successive feeds (0-terminated), NULL = whole */
static void run_trace(enum st_http_kind k, const enum st_http_method *meth, size_t nmeth,
		      const char *buf, size_t len, const size_t *pieces, struct trace *t)
{
	struct st_http_parser p;
	struct st_http_event ev;
	size_t pos = 0;

	memset(t, 0, sizeof(*t));
	init(&p, k, 0, 0);
	for (size_t i = 0; i < nmeth; i++)
		assert_int_equal(st_http__push_method(&p, meth[i]), 0);
	while (pos < len) {
		size_t clen = pieces && *pieces ? *pieces++ : len - pos, off = 0;

		if (clen > len - pos)
			clen = len - pos;
		for (;;) {
			size_t n = st_http__feed(&p, buf + pos + off, clen - off, &ev);

			off += n;
			t->consumed += n;
			switch (ev.type) {
			case ST_HTTP_EV_NEED_MORE:
				break;
			case ST_HTTP_EV_HEAD:
				tpush(t, ev.type, 0, ev.head->raw_len,
				      ev.head->flags | (uint64_t)ev.head->nheaders << 32);
				break;
			case ST_HTTP_EV_BODY:
				tpush(t, ev.type, ev.data_len != 0, n, 0);
				break;
			case ST_HTTP_EV_MSG_DONE:
				tpush(t, ev.type, 0, ev.msg_len, ev.body_len);
				break;
			case ST_HTTP_EV_RAW:
				tpush(t, ev.type, 0, n, 0);
				break;
			case ST_HTTP_EV_SKIP:
				tpush(t, ev.type, 0, ev.skip_len, 0);
				break;
			case ST_HTTP_EV_ERROR:
				tpush(t, ev.type, ev.err, ev.lost_len, 0);
				st_http__resync(&p, false);
				break;
			default:
				tpush(t, ev.type, 0, 0, 0);
				break;
			}
			if (ev.type == ST_HTTP_EV_NEED_MORE)
				break;
		}
		assert_int_equal(off, clen);
		pos += clen;
	}
	for (int guard = 0; guard < 16; guard++) {
		st_http__feed_eof(&p, &ev);
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
		tpush(t, ev.type, ev.type == ST_HTTP_EV_ERROR ? ev.err : 0, ev.msg_len, 0);
		if (ev.type == ST_HTTP_EV_ERROR)
			break;
	}
	st_http__free(&p);
}

static void assert_same(const struct trace *a, const struct trace *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->ev[i].type, b->ev[i].type);
		assert_int_equal(a->ev[i].sub, b->ev[i].sub);
		assert_int_equal(a->ev[i].a, b->ev[i].a);
		assert_int_equal(a->ev[i].b, b->ev[i].b);
	}
	assert_int_equal(a->consumed, b->consumed);
}

/* Whole vs byte by byte vs every two-piece split vs every three-piece split near each other. */
static void all_splits(enum st_http_kind k, const enum st_http_method *m, size_t nm,
		       const char *buf, size_t len)
{
	struct trace whole, t;
	size_t *ones = calloc(len + 1, sizeof(size_t));

	assert_non_null(ones);
	run_trace(k, m, nm, buf, len, NULL, &whole);
	assert_int_equal(whole.consumed, len);
	for (size_t i = 0; i < len; i++)
		ones[i] = 1;
	run_trace(k, m, nm, buf, len, ones, &t);
	assert_same(&whole, &t);
	for (size_t i = 1; i < len; i++) {
		size_t pieces[4] = { i, len - i, 0, 0 };

		run_trace(k, m, nm, buf, len, pieces, &t);
		assert_same(&whole, &t);
		for (size_t j = 1; j < 4 && i + j < len; j++) {
			size_t p3[4] = { i, j, len - i - j, 0 };

			run_trace(k, m, nm, buf, len, p3, &t);
			assert_same(&whole, &t);
		}
	}
	free(ones);
}

/* ---- requests ---- */

static void test_request_content_length(void **state)
{
	static const char msg[] = "POST /up?x=1 HTTP/1.1\r\nHost:  example.com  \r\n"
				  "Content-Length: 5\r\n\r\nhello";
	const size_t hl = sizeof(msg) - 1 - 5;
	struct st_http_parser p;
	struct st_http_event ev;
	size_t n;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	n = st_http__feed(&p, msg, sizeof(msg) - 1, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(n, hl);
	assert_int_equal(ev.head->raw_len, hl);
	assert_memory_equal(ev.head->raw, msg, hl);
	assert_int_equal(ev.head->method, ST_HTTP_M_POST);
	assert_int_equal(ev.head->method_len, 4);
	assert_memory_equal(ev.head->target, "/up?x=1", 7);
	assert_int_equal(ev.head->target_len, 7);
	assert_int_equal(ev.head->version_minor, 1);
	assert_int_equal(ev.head->nheaders, 2);
	assert_int_equal(ev.head->headers[0].name_len, 4);
	assert_memory_equal(ev.head->headers[0].value, "example.com", 11);
	assert_int_equal(ev.head->headers[0].value_len, 11);
	assert_int_equal(ev.head->body, ST_HTTP_BODY_LENGTH);
	assert_int_equal(ev.head->content_length, 5);
	assert_true(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE);
	assert_true(ev.head->flags & ST_HTTP_HF_CONTENT_LENGTH);
	assert_false(ev.head->flags & ST_HTTP_HF_BARE_LF);
	assert_int_equal(st_http__head_find(ev.head, "content-LENGTH", 0), 1);
	assert_int_equal(st_http__head_find(ev.head, "host", 1), -1);
	n = st_http__feed(&p, msg + hl, 5, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_BODY);
	assert_int_equal(n, 5);
	assert_int_equal(ev.data_len, 5);
	n = st_http__feed(&p, NULL, 0, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	assert_int_equal(n, 0);
	assert_int_equal(ev.msg_len, sizeof(msg) - 1);
	assert_int_equal(ev.body_len, 5);
	assert_non_null(ev.head); /* still valid at MSG_DONE */
	assert_int_equal(ev.head->method, ST_HTTP_M_POST);
	st_http__feed(&p, NULL, 0, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
	assert_int_equal(st_http__pending(&p), 0);
	st_http__free(&p);
}

static void test_request_no_body(void **state)
{
	static const char msg[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct st_http_parser p;
	const struct exp e[] = {
		{ ST_HTTP_EV_HEAD, 27, 27, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 27, 0 },
	};

	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(msg), e, 2);
	/* Content-Length: 0 is no body too */
	expect_events(&p, S("DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
		      (const struct exp[]){ { ST_HTTP_EV_HEAD, 41, 41, 0 },
					    { ST_HTTP_EV_MSG_DONE, 0, 41, 0 } }, 2);
	st_http__free(&p);
}

static void test_request_chunked(void **state)
{
	static const char head[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char c1[] = "5;name=val;q=\"a b\"\r\n";
	static const char c2[] = "\r\n6\t ;x\r\n";   /* CRLF after data, BWS before an extension */
	static const char c3[] = "\r\n0;last\r\nX-T: 1\r\nY-T:2\r\n\r\n";
	char msg[256];
	size_t hl = sizeof(head) - 1, l1 = sizeof(c1) - 1, l2 = sizeof(c2) - 1;
	size_t l3 = sizeof(c3) - 1, total;
	struct st_http_parser p;

	total = (size_t)snprintf(msg, sizeof(msg), "%s%shello%s world%s", head, c1, c2, c3);
	assert_int_equal(total, hl + l1 + 5 + l2 + 6 + l3);
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, msg, total, (const struct exp[]){
		{ ST_HTTP_EV_HEAD, hl, hl, 0 },
		{ ST_HTTP_EV_BODY, l1, 0, 0 },
		{ ST_HTTP_EV_BODY, 5, 5, 0 },
		{ ST_HTTP_EV_BODY, l2, 0, 0 },
		{ ST_HTTP_EV_BODY, 6, 6, 0 },
		{ ST_HTTP_EV_BODY, l3, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, total, 11 },
	}, 7);
	all_splits(ST_HTTP_REQUEST, NULL, 0, msg, total);
	/* uppercase hex, leading zeros */
	expect_events(&p, S("PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
			    "000A\r\nabcdefghij\r\n0\r\n\r\n"), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 46, 46, 0 },
		{ ST_HTTP_EV_BODY, 6, 0, 0 },
		{ ST_HTTP_EV_BODY, 10, 10, 0 },
		{ ST_HTTP_EV_BODY, 7, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 69, 10 },
	}, 5);
	st_http__free(&p);
	/* requests: a bare LF in chunk framing, BWS without an extension: errors, at the byte */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc"),
		      (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 46, 46, 0 },
		{ ST_HTTP_EV_BODY, 1, 0, 0 },
		{ ST_HTTP_EV_ERROR, 0, ST_HTTP_E_CHUNK, 47 },
	}, 3);
	st_http__free(&p);
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n"),
		      (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 46, 46, 0 },
		{ ST_HTTP_EV_BODY, 3, 0, 0 },
		{ ST_HTTP_EV_BODY, 3, 3, 0 },
		{ ST_HTTP_EV_ERROR, 0, ST_HTTP_E_CHUNK, 52 },
	}, 4);
	st_http__free(&p);
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\n"),
		      (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 46, 46, 0 },
		{ ST_HTTP_EV_BODY, 2, 0, 0 },
		{ ST_HTTP_EV_ERROR, 0, ST_HTTP_E_CHUNK, 48 },
	}, 3);
	st_http__free(&p);
	/* responses keep the leniency clients have: bare LF in chunk framing */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	expect_events(&p, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			    "3\nabc\n0\n\n"), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 47, 47, 0 },
		{ ST_HTTP_EV_BODY, 2, 0, 0 },
		{ ST_HTTP_EV_BODY, 3, 3, 0 },
		{ ST_HTTP_EV_BODY, 4, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 56, 3 },
	}, 5);
	st_http__free(&p);
}

static void test_request_cl_and_te(void **state)
{
	static const char msg[] = "POST / HTTP/1.1\r\nContent-Length: 100\r\n"
				  "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n";
	struct st_http_parser p;
	struct st_http_event ev;

	/* requests: refused (request smuggling's classic CL.TE / TE.CL) */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_ERROR, 68, ST_HTTP_E_CL_AND_TE, 0 },
	}, 1);
	st_http__free(&p);
	/* responses: chunked wins, and the connection must close after it (RFC 9112 6.3) */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__feed(&p, S("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(ev.head->body, ST_HTTP_BODY_CHUNKED);
	assert_true(ev.head->flags & ST_HTTP_HF_CL_AND_TE);
	assert_true(ev.head->flags & ST_HTTP_HF_CHUNKED);
	assert_false(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE);
	st_http__free(&p);
}

static void head_of(enum st_http_kind k, const char *msg, size_t len, struct headinfo *hi)
{
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, k, 0, 0);
	st_http__feed(&p, msg, len, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	copy_head(hi, ev.head);
	st_http__free(&p);
}

static void test_keep_alive(void **state)
{
	struct headinfo h;

	head_of(ST_HTTP_REQUEST, S("GET / HTTP/1.0\r\n\r\n"), &h);
	assert_int_equal(h.minor, 0);
	assert_false(h.flags & ST_HTTP_HF_KEEP_ALIVE);
	head_of(ST_HTTP_REQUEST, S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &h);
	assert_true(h.flags & ST_HTTP_HF_KEEP_ALIVE);
	assert_true(h.flags & ST_HTTP_HF_CONN_KEEP_ALIVE);
	head_of(ST_HTTP_REQUEST, S("GET / HTTP/1.1\r\n\r\n"), &h);
	assert_true(h.flags & ST_HTTP_HF_KEEP_ALIVE);
	head_of(ST_HTTP_REQUEST, S("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"), &h);
	assert_false(h.flags & ST_HTTP_HF_KEEP_ALIVE);
	assert_true(h.flags & ST_HTTP_HF_CONN_CLOSE);
	head_of(ST_HTTP_REQUEST, S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
				   "Connection: close\r\n\r\n"), &h);
	assert_false(h.flags & ST_HTTP_HF_KEEP_ALIVE);
	/* 1.0 POST with a body, then the connection would close: still framed */
	head_of(ST_HTTP_REQUEST, S("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"), &h);
	assert_int_equal(h.body, ST_HTTP_BODY_LENGTH);
	assert_int_equal(h.cl, 3);
}

static void test_pipelined(void **state)
{
	static const char msg[] =
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"                               /* 28 */
		"POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"                 /* 39+3 */
		"PUT /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
		"GET /4 HTTP/1.0\r\n\r\n";                                          /* 19 */
	struct st_http_parser p;
	struct st_http_event ev;
	const char *targets[4] = { "/1", "/2", "/3", "/4" };
	uint64_t lens[4] = { 28, 42, 47 + 12, 19 }, sum = 0;
	size_t off = 0, len = sizeof(msg) - 1;
	int heads = 0, dones = 0;

	assert_int_equal(lens[0] + lens[1] + lens[2] + lens[3], len);
	init(&p, ST_HTTP_REQUEST, 0, 0);
	for (;;) {
		size_t n = st_http__feed(&p, msg + off, len - off, &ev);

		off += n;
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
		if (ev.type == ST_HTTP_EV_HEAD) {
			assert_int_equal(ev.head->target_len, 2);
			assert_memory_equal(ev.head->target, targets[heads], 2);
			heads++;
		}
		if (ev.type == ST_HTTP_EV_MSG_DONE) {
			assert_int_equal(ev.msg_len, lens[dones]);
			sum += ev.msg_len;
			dones++;
		}
		assert_int_not_equal(ev.type, ST_HTTP_EV_ERROR);
	}
	assert_int_equal(heads, 4);
	assert_int_equal(dones, 4);
	assert_int_equal(sum, len);
	assert_int_equal(off, len);
	st_http__free(&p);
	all_splits(ST_HTTP_REQUEST, NULL, 0, msg, len);
}

static void test_expect_continue(void **state)
{
	static const char msg[] = "PUT /f HTTP/1.1\r\nExpect: 100-Continue\r\n"
				  "Content-Length: 4\r\n\r\ndata";
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	st_http__feed(&p, S(msg), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_true(ev.head->flags & ST_HTTP_HF_EXPECT_CONTINUE);
	st_http__reset(&p);
	/* the body follows whether or not the 100 came: framed the same */
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 60, 60, 0 },
		{ ST_HTTP_EV_BODY, 4, 4, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 64, 4 },
	}, 3);
	st_http__free(&p);
}

static void test_upgrade_request(void **state)
{
	static const char ws[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
				 "Connection: keep-alive, Upgrade\r\n\r\n\x81\x05hello";
	static const char conn[] = "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nrawbytes";
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(ws), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 73, 73, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 73, 0 },
		{ ST_HTTP_EV_UPGRADED, 0, 0, 0 },
		{ ST_HTTP_EV_RAW, 7, 0, 0 },
	}, 4);
	/* raw from now on, whatever comes */
	assert_int_equal(st_http__feed(&p, S("GET / HTTP/1.1\r\n\r\n"), &ev), 18);
	assert_int_equal(ev.type, ST_HTTP_EV_RAW);
	/* a refused upgrade: the caller resets and frames HTTP again */
	st_http__reset(&p);
	expect_events(&p, S(conn), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 43, 43, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 43, 0 },
		{ ST_HTTP_EV_UPGRADED, 0, 0, 0 },
		{ ST_HTTP_EV_RAW, 8, 0, 0 },
	}, 4);
	st_http__free(&p);
	/* Upgrade without "Connection: upgrade" is not an upgrade */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
		      (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 32, 32, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 32, 0 },
		{ ST_HTTP_EV_HEAD, 18, 18, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 18, 0 },
	}, 4);
	st_http__free(&p);
	all_splits(ST_HTTP_REQUEST, NULL, 0, S(ws));
	all_splits(ST_HTTP_REQUEST, NULL, 0, S(conn));
}

static void test_bare_lf_and_leading_crlf(void **state)
{
	struct st_http_parser p;
	struct st_http_event ev;

	/* requests: a bare LF is an error (servers differ on it); responses: accepted */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	st_http__feed(&p, S("GET /lf HTTP/1.1\nHost: x\n\n"), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_ERROR);
	assert_int_equal(ev.err, ST_HTTP_E_BARE_LF);
	st_http__free(&p);
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_GET);
	st_http__feed(&p, S("HTTP/1.1 204 No Content\nServer: x\n\n"), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_true(ev.head->flags & ST_HTTP_HF_BARE_LF);
	assert_int_equal(ev.head->nheaders, 1);
	assert_int_equal(ev.head->raw_len, 35);
	st_http__free(&p);
	init(&p, ST_HTTP_REQUEST, 0, 0);
	/* an extra CRLF after a body (old clients) belongs to the next head */
	expect_events(&p, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n"
			    "GET / HTTP/1.1\r\n\r\n"), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 38, 38, 0 },
		{ ST_HTTP_EV_BODY, 1, 1, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 39, 1 },
		{ ST_HTTP_EV_HEAD, 20, 20, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 20, 0 },
	}, 5);
	st_http__reset(&p);
	st_http__feed(&p, S("\r\n\nGET / HTTP/1.1\r\n\r\n"), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(ev.head->line_off, 3);
	assert_int_equal(ev.head->raw_len, 21);
	/* leading empty lines alone stay pending, and are no truncation at EOF */
	st_http__reset(&p);
	assert_int_equal(st_http__feed(&p, S("\r\n"), &ev), 2);
	assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
	assert_int_equal(st_http__pending(&p), 2);
	st_http__feed_eof(&p, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
	st_http__free(&p);
	all_splits(ST_HTTP_REQUEST, NULL, 0, S("\r\nGET /a HTTP/1.1\r\nA: b\r\n\r\n"
					       "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
					       "1\r\nz\r\n0\r\nT: 1\r\n\r\n"));
	all_splits(ST_HTTP_RESPONSE, NULL, 0, S("\r\nHTTP/1.1 200 OK\nA: b\nContent-Length: 0\n\n"
						"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
						"1\nz\n0\nT: 1\n\n"));
}

/* ---- responses ---- */

static void test_response_no_body_cases(void **state)
{
	static const char msg[] =
		"HTTP/1.1 100 Continue\r\n\r\n"                                    /* 25 */
		"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"                /* 44 */
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"                   /* 38+3 */
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"                     /* 39: HEAD */
		"HTTP/1.1 204 No Content\r\n\r\n"                                  /* 27 */
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"           /* 49 */
		"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	const enum st_http_method m[] = { ST_HTTP_M_POST, ST_HTTP_M_HEAD, ST_HTTP_M_GET,
					  ST_HTTP_M_GET, ST_HTTP_M_GET };
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, ST_HTTP_RESPONSE, 0, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(st_http__push_method(&p, m[i]), 0);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 25, 25, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 25, 0 },
		{ ST_HTTP_EV_HEAD, 44, 44, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 44, 0 },
		{ ST_HTTP_EV_HEAD, 38, 38, 0 },
		{ ST_HTTP_EV_BODY, 3, 3, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 41, 3 },
		{ ST_HTTP_EV_HEAD, 39, 39, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 39, 0 },
		{ ST_HTTP_EV_HEAD, 27, 27, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 27, 0 },
		{ ST_HTTP_EV_HEAD, 49, 49, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 49, 0 },
		{ ST_HTTP_EV_HEAD, 44, 44, 0 },
		{ ST_HTTP_EV_BODY, 3, 0, 0 },
		{ ST_HTTP_EV_BODY, 3, 3, 0 },
		{ ST_HTTP_EV_BODY, 7, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 57, 3 },
	}, 18);
	st_http__free(&p);
	/* interim flags, method pairing */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_HEAD);
	st_http__feed(&p, S("HTTP/1.1 100 Continue\r\n\r\n"), &ev);
	assert_true(ev.head->flags & ST_HTTP_HF_INTERIM);
	assert_int_equal(ev.head->status, 100);
	st_http__feed(&p, NULL, 0, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	st_http__feed(&p, S("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), &ev);
	assert_int_equal(ev.head->method, ST_HTTP_M_HEAD);
	assert_int_equal(ev.head->body, ST_HTTP_BODY_NONE);
	assert_int_equal(ev.head->reason_len, 2);
	assert_memory_equal(ev.head->reason, "OK", 2);
	st_http__feed(&p, NULL, 0, &ev);
	/* empty queue: framed as if for GET, flagged */
	st_http__feed(&p, S("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), &ev);
	assert_true(ev.head->flags & ST_HTTP_HF_NO_REQUEST);
	assert_int_equal(ev.head->status, 404);
	st_http__free(&p);
	all_splits(ST_HTTP_RESPONSE, m, 5, S(msg));
}

static void test_response_until_close(void **state)
{
	static const char msg[] = "HTTP/1.0 200 OK\r\nServer: t\r\n\r\nall of this";
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_GET);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 30, 30, 0 },
		{ ST_HTTP_EV_BODY, 11, 11, 0 },
	}, 2);
	assert_int_equal(st_http__feed(&p, S("more"), &ev), 4);
	assert_int_equal(ev.type, ST_HTTP_EV_BODY);
	st_http__feed_eof(&p, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	assert_int_equal(ev.msg_len, 45);
	assert_int_equal(ev.body_len, 15);
	st_http__feed_eof(&p, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
	st_http__free(&p);
	/* a 1.0 response can be chunked, but then the connection closes */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	expect_events(&p, S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
			    "Connection: keep-alive\r\n\r\n0\r\n\r\n"), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 71, 71, 0 },
		{ ST_HTTP_EV_BODY, 5, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 76, 0 },
	}, 3);
	st_http__free(&p);
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__feed(&p, S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
			    "Connection: keep-alive\r\n\r\n"), &ev);
	assert_int_equal(ev.head->body, ST_HTTP_BODY_CHUNKED);
	assert_false(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE);
	assert_true(ev.head->flags & ST_HTTP_HF_CONN_KEEP_ALIVE);
	st_http__free(&p);
	/* 1.1 without length; and TE that is not chunked-final: until close too */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__feed(&p, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz"), &ev);
	assert_int_equal(ev.head->body, ST_HTTP_BODY_UNTIL_CLOSE);
	assert_false(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE);
	st_http__free(&p);
	all_splits(ST_HTTP_RESPONSE, NULL, 0, S(msg));
}

static void test_response_upgrade(void **state)
{
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n\x81\x02hi";
	static const char tun[] = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01";
	const enum st_http_method mc = ST_HTTP_M_CONNECT;
	struct st_http_parser p;

	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_GET);
	expect_events(&p, S(sw), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 77, 77, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 77, 0 },
		{ ST_HTTP_EV_UPGRADED, 0, 0, 0 },
		{ ST_HTTP_EV_RAW, 4, 0, 0 },
	}, 4);
	st_http__free(&p);
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_CONNECT);
	expect_events(&p, S(tun), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 39, 39, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 39, 0 },
		{ ST_HTTP_EV_UPGRADED, 0, 0, 0 },
		{ ST_HTTP_EV_RAW, 3, 0, 0 },
	}, 4);
	st_http__free(&p);
	/* CONNECT refused: an ordinary response */
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__push_method(&p, ST_HTTP_M_CONNECT);
	expect_events(&p, S("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"),
		      (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 45, 45, 0 },
		{ ST_HTTP_EV_BODY, 2, 2, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 47, 2 },
	}, 3);
	st_http__free(&p);
	all_splits(ST_HTTP_RESPONSE, &mc, 1, S(tun));
	all_splits(ST_HTTP_RESPONSE, NULL, 0, S(sw));
}

static void test_method_queue(void **state)
{
	struct st_http_parser p;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	assert_int_equal(st_http__push_method(&p, ST_HTTP_M_GET), -EINVAL);
	st_http__free(&p);
	init(&p, ST_HTTP_RESPONSE, 0, 0);
	for (unsigned i = 0; i < ST_HTTP_METHOD_QUEUE; i++)
		assert_int_equal(st_http__push_method(&p, ST_HTTP_M_GET), 0);
	assert_int_equal(st_http__push_method(&p, ST_HTTP_M_GET), -ENOSPC);
	st_http__free(&p);
	assert_int_equal(st_http__method_from("PATCH", 5), ST_HTTP_M_PATCH);
	assert_int_equal(st_http__method_from("get", 3), ST_HTTP_M_OTHER);
	assert_string_equal(st_http__method_name(ST_HTTP_M_OPTIONS), "OPTIONS");
	assert_string_equal(st_http__strerror(ST_HTTP_E_CHUNK), "malformed chunk");
}

/* ---- malformed input ---- */

static void expect_error(enum st_http_kind k, const char *msg, size_t len, enum st_http_err err,
			 uint32_t cap, uint32_t maxh)
{
	struct st_http_parser p;
	struct st_http_event ev;
	size_t off = 0;

	init(&p, k, cap, maxh);
	for (int guard = 0; guard < 64; guard++) {
		off += st_http__feed(&p, msg + off, len - off, &ev);
		if (ev.type == ST_HTTP_EV_ERROR || ev.type == ST_HTTP_EV_NEED_MORE)
			break;
	}
	if (ev.type == ST_HTTP_EV_NEED_MORE)
		st_http__feed_eof(&p, &ev);
	if (ev.type != ST_HTTP_EV_ERROR || ev.err != err)
		fail_msg("%.*s: got event %d err %d (%s), want err %d", (int)len, msg, ev.type,
			 ev.err, st_http__strerror(ev.err), err);
	/* the error sticks until resync/reset, reported lost once */
	assert_int_equal(st_http__feed(&p, msg, len, &ev), 0);
	assert_int_equal(ev.type, ST_HTTP_EV_ERROR);
	assert_int_equal(ev.err, err);
	assert_int_equal(ev.lost_len, 0);
	st_http__free(&p);
}

#define ERR(k, lit, e) expect_error(ST_HTTP_##k, S(lit), ST_HTTP_E_##e, 0, 0)

static void test_malformed(void **state)
{
	ERR(REQUEST, "GET  / HTTP/1.1\r\n\r\n", START_LINE);
	ERR(REQUEST, "GET /\r\n\r\n", START_LINE);
	ERR(REQUEST, "GET / HTTP/1.1 \r\n\r\n", START_LINE);
	ERR(REQUEST, "GET / http/1.1\r\n\r\n", START_LINE);
	ERR(REQUEST, "G(T / HTTP/1.1\r\n\r\n", START_LINE);
	ERR(REQUEST, "GET /\x01 HTTP/1.1\r\n\r\n", START_LINE);
	ERR(REQUEST, "GET / HTTP/2.0\r\n\r\n", VERSION);
	ERR(REQUEST, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", VERSION);
	ERR(RESPONSE, "HTTP/2.0 200 OK\r\n\r\n", VERSION);
	ERR(RESPONSE, "HTTP/1.1 20 OK\r\n\r\n", START_LINE);
	ERR(RESPONSE, "HTTP/1.1 099 x\r\n\r\n", START_LINE);
	ERR(RESPONSE, "HTTP/1.1 200OK\r\n\r\n", START_LINE);
	ERR(RESPONSE, "ICY 200 OK\r\n\r\n", START_LINE);
	ERR(REQUEST, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", HEADER);
	ERR(REQUEST, "GET / HTTP/1.1\r\nName : x\r\n\r\n", HEADER);
	ERR(REQUEST, "GET / HTTP/1.1\r\nNoColon\r\n\r\n", HEADER);
	ERR(REQUEST, "GET / HTTP/1.1\r\n: empty\r\n\r\n", HEADER);
	ERR(REQUEST, "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", HEADER);
	ERR(REQUEST, "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", OBS_FOLD);
	ERR(REQUEST, "GET / HTTP/1.1\r\n\tA: b\r\n\r\n", OBS_FOLD);
	ERR(REQUEST, "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", BARE_CR);
	ERR(REQUEST, "GET / HTTP/1.1\r\r\n\r\n", BARE_CR);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
	    TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\rx", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rx", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "11111111111111111\r\n", CHUNK);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n x: y\r\n\r\n",
	    TRAILER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx y\r\n\r\n",
	    TRAILER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\rx", TRAILER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx: \x01\r\n\r\n",
	    TRAILER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx: 1\rx", TRAILER);
	/* the request-smuggling shapes of the hostile test (issue #11): all refused */
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	    CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", CONTENT_LENGTH);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    CL_AND_TE);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    CL_AND_TE);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	    TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	    TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n", TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n", TRANSFER_ENCODING);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: \x0b""chunked\r\n\r\n", HEADER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nX: a\x00b\r\n\r\n", HEADER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", HEADER);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3;ext\nabc\r\n0\r\n\r\n", CHUNK);
	ERR(REQUEST, "GET / HTTP/1.1\nHost: a\n\n", BARE_LF);
	ERR(REQUEST, "GET / HTTP/1.1\r\nHost: a\n\r\n", BARE_LF);
	ERR(RESPONSE, "HTTP/1.1 200 O\rK\r\n\r\n", BARE_CR);
	ERR(REQUEST, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", TRUNCATED);
	ERR(REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", TRUNCATED);
	ERR(REQUEST, "GET / HTTP/1.1\r\nHost: x\r\n", TRUNCATED);
	ERR(RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", TRUNCATED);
	/* caps */
	expect_error(ST_HTTP_REQUEST, S("GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123"
					"456789abcdef\r\n\r\n"), ST_HTTP_E_HEAD_TOO_LARGE, 64, 0);
	expect_error(ST_HTTP_REQUEST, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
		     ST_HTTP_E_TOO_MANY_HEADERS, 0, 2);
	expect_error(ST_HTTP_REQUEST, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
					"0\r\nX-Long-Trailer: 01234567890123456789"
					"01234567890123456789"
					"0123456789\r\n\r\n"), ST_HTTP_E_TRAILER, 64, 0);
	{
		/* a chunk line with endless extensions */
		char buf[6000];
		int n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nTransfer-Encoding: "
						   "chunked\r\n\r\n1;");

		memset(buf + n, 'e', sizeof(buf) - (size_t)n);
		expect_error(ST_HTTP_REQUEST, buf, sizeof(buf), ST_HTTP_E_CHUNK, 0, 0);
	}
}

/* What production accepts must frame: as many fields as nginx takes in its buffers. */
static void test_many_headers(void **state)
{
	char buf[16384];
	struct st_http_parser p;
	struct st_http_event ev;
	int n = snprintf(buf, sizeof(buf), "POST /m HTTP/1.1\r\nContent-Length: 3\r\n");

	for (int i = 0; i < 1000; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "X%d: v\r\n", i);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\nabc");
	init(&p, ST_HTTP_REQUEST, 0, 0);
	st_http__feed(&p, buf, (size_t)n, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(ev.head->nheaders, 1001);
	assert_int_equal(ev.head->content_length, 3);
	st_http__free(&p);
}

/* A capture gap of known length inside a body keeps framing; anywhere else it does not. */
static void test_skip(void **state)
{
	static const char cl[] = "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
	static const char ch[] = "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n";
	static const char next[] = "GET /n HTTP/1.1\r\n\r\n";
	struct st_http_parser p;
	struct st_http_event ev;
	size_t n;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	/* in a head: no */
	st_http__feed(&p, "GET /x HTT", 10, &ev);
	assert_int_equal(st_http__skip(&p, 3), -1);
	st_http__reset(&p);
	/* Content-Length: 2 bytes, a gap of 6, 2 bytes, then the next request frames */
	n = st_http__feed(&p, S(cl), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	assert_int_equal(n, sizeof(cl) - 1);
	st_http__feed(&p, "ab", 2, &ev);
	assert_int_equal(st_http__skip(&p, 9), -1); /* beyond the body: no */
	assert_int_equal(st_http__skip(&p, 6), 0);
	st_http__feed(&p, "cd", 2, &ev);
	st_http__feed(&p, NULL, 0, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	assert_int_equal(ev.msg_len, sizeof(cl) - 1 + 10);
	assert_int_equal(ev.body_len, 10);
	n = st_http__feed(&p, S(next), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	st_http__feed(&p, NULL, 0, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	/* chunk data: inside yes, across the chunk's end no */
	st_http__feed(&p, S(ch), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	st_http__feed(&p, ch + ev.head->raw_len, sizeof(ch) - 1 - ev.head->raw_len, &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_BODY);
	assert_int_equal(st_http__skip(&p, 7), -1);
	assert_int_equal(st_http__skip(&p, 6), 0);
	assert_int_equal(st_http__skip(&p, 1), -1); /* now at the CRLF after the data */
	expect_events(&p, S("\r\n0\r\n\r\n"), (const struct exp[]){
		{ ST_HTTP_EV_BODY, 7, 0, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, sizeof(ch) - 1 + 6 + 7, 6 },
	}, 2);
	st_http__free(&p);
}

static void test_error_offsets(void **state)
{
	static const char msg[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "1\r\na\r\nzz";
	struct st_http_parser p;
	struct st_http_event ev;

	/* good framing bytes are reported, then the error at the bad byte, nothing consumed */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 47, 47, 0 },
		{ ST_HTTP_EV_BODY, 3, 0, 0 },
		{ ST_HTTP_EV_BODY, 1, 1, 0 },
		{ ST_HTTP_EV_BODY, 2, 0, 0 },
		{ ST_HTTP_EV_ERROR, 0, ST_HTTP_E_CHUNK, 47 + 6 },
	}, 5);
	st_http__free(&p);
	/* a head error consumes up to the head's end; the bytes stay buffered */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	assert_int_equal(st_http__feed(&p, S("BAD\r\n\r\nGET"), &ev), 7);
	assert_int_equal(ev.type, ST_HTTP_EV_ERROR);
	assert_int_equal(ev.err, ST_HTTP_E_START_LINE);
	assert_int_equal(ev.lost_len, 0);
	assert_int_equal(st_http__pending(&p), 7);
	st_http__free(&p);
	/* too large: consumed exactly up to the cap */
	init(&p, ST_HTTP_REQUEST, 64, 0);
	{
		char big[100];

		memset(big, 'A', sizeof(big));
		assert_int_equal(st_http__feed(&p, big, 30, &ev), 30);
		assert_int_equal(ev.type, ST_HTTP_EV_NEED_MORE);
		assert_int_equal(st_http__feed(&p, big, 70, &ev), 34);
		assert_int_equal(ev.type, ST_HTTP_EV_ERROR);
		assert_int_equal(ev.err, ST_HTTP_E_HEAD_TOO_LARGE);
		assert_int_equal(st_http__pending(&p), 64);
	}
	st_http__free(&p);
}

static void test_trailer_limit_exact(void **state)
{
	/* trailer section (after "0\r\n") limited to head_cap bytes: 64 fits, 65 does not */
	static const char head[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
	char msg[256];

	for (int extra = 0; extra < 2; extra++) {
		struct st_http_parser p;
		struct st_http_event ev;
		size_t len = 0, off = 0;
		int got = -1;

		len += (size_t)snprintf(msg, sizeof(msg), "%sX: ", head);
		memset(msg + len, 'a', 57 + (size_t)extra);
		len += 57 + (size_t)extra;
		memcpy(msg + len, "\r\n\r\n", 4);
		len += 4;
		init(&p, ST_HTTP_REQUEST, 64, 0);
		for (;;) {
			off += st_http__feed(&p, msg + off, len - off, &ev);
			if (ev.type == ST_HTTP_EV_MSG_DONE || ev.type == ST_HTTP_EV_ERROR) {
				got = ev.type;
				break;
			}
			assert_int_not_equal(ev.type, ST_HTTP_EV_NEED_MORE);
		}
		if (extra) {
			/* the last LF is the 65th byte: the error, not a completed message */
			assert_int_equal(got, ST_HTTP_EV_ERROR);
			assert_int_equal(ev.err, ST_HTTP_E_TRAILER);
			assert_int_equal(off, len - 1);
		} else {
			assert_int_equal(got, ST_HTTP_EV_MSG_DONE);
			assert_int_equal(ev.msg_len, len);
		}
		st_http__free(&p);
	}
}

/* ---- resync ---- */

static void test_resync_head_garbage(void **state)
{
	static const char msg[] = "\x01\x02GET / HTTP/1.1\r\n\r\n";
	struct st_http_parser p;
	struct st_http_event ev;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_ERROR, 20, ST_HTTP_E_START_LINE, 0 },
	}, 1);
	st_http__resync(&p, false);
	/* the request inside the failed head is found among the buffered bytes */
	expect_events(&p, NULL, 0, (const struct exp[]){
		{ ST_HTTP_EV_SKIP, 0, 2, 0 },
		{ ST_HTTP_EV_HEAD, 0, 18, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 18, 0 },
	}, 3);
	st_http__feed(&p, S("GET /n HTTP/1.1\r\n\r\n"), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	st_http__free(&p);
}

static void test_resync_body_error(void **state)
{
	static const char msg[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "zz!GET /n HTTP/1.1\r\n\r\n";
	struct st_http_parser p;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	expect_events(&p, S(msg), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 47, 47, 0 },
		{ ST_HTTP_EV_ERROR, 0, ST_HTTP_E_CHUNK, 47 },
	}, 2);
	st_http__resync(&p, false);
	expect_events(&p, msg + 47, sizeof(msg) - 1 - 47, (const struct exp[]){
		{ ST_HTTP_EV_SKIP, 3, 3, 0 },
		{ ST_HTTP_EV_HEAD, 19, 19, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 19, 0 },
	}, 3);
	st_http__free(&p);
}

static void test_resync_gap(void **state)
{
	struct st_http_parser p;
	struct st_http_event ev;

	/* a head cut by a capture gap: drop what was buffered, find the next request */
	init(&p, ST_HTTP_REQUEST, 0, 0);
	assert_int_equal(st_http__feed(&p, S("GET /a HT"), &ev), 9);
	assert_int_equal(st_http__pending(&p), 9);
	st_http__resync(&p, true);
	expect_events(&p, S("P/1.1\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"),
		      (const struct exp[]){
		{ ST_HTTP_EV_SKIP, 0, 9, 0 },
		{ ST_HTTP_EV_SKIP, 7, 7, 0 },
		{ ST_HTTP_EV_HEAD, 39, 39, 0 },
		{ ST_HTTP_EV_BODY, 2, 2, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 41, 2 },
	}, 5);
	/* mid-body gap: the caller abandons the message and resyncs */
	assert_int_equal(st_http__feed(&p, S("PUT / HTTP/1.1\r\nContent-Length: 100\r\n\r\n12"),
				       &ev), 39);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	st_http__resync(&p, true);
	/* a candidate split across feeds is held, then confirmed */
	expect_events(&p, S("xyzDELE"), (const struct exp[]){
		{ ST_HTTP_EV_SKIP, 3, 3, 0 },
	}, 1);
	assert_int_equal(st_http__pending(&p), 4);
	expect_events(&p, S("TE /x HTTP/1.1\r\n\r\n"), (const struct exp[]){
		{ ST_HTTP_EV_HEAD, 18, 22, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 22, 0 },
	}, 2);
	/* a held candidate that fails is discarded, and scanning goes on after it */
	st_http__resync(&p, true);
	expect_events(&p, S("GET /a"), NULL, 0);
	{
		/* "ET /a" and "T /a" are candidates too: several SKIPs, 7 bytes in all */
		static const char rest[] = "\x01GET /b HTTP/1.1\r\n\r\n";
		uint64_t skipped = 0;
		size_t off = 0, n;

		for (;;) {
			n = st_http__feed(&p, rest + off, sizeof(rest) - 1 - off, &ev);
			off += n;
			if (ev.type != ST_HTTP_EV_SKIP)
				break;
			skipped += ev.skip_len;
		}
		assert_int_equal(skipped, 7);
		assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
		assert_int_equal(ev.head->raw_len, 19);
		assert_int_equal(n, 19);
		assert_int_equal(off, sizeof(rest) - 1);
		assert_int_equal(st_http__pending(&p), 0);
	}
	st_http__free(&p);
}

static void test_resync_response(void **state)
{
	struct st_http_parser p;

	init(&p, ST_HTTP_RESPONSE, 0, 0);
	st_http__resync(&p, true);
	expect_events(&p, S("tail of a body\r\nHTTP/1.1 204 No Content\r\n\r\n"),
		      (const struct exp[]){
		{ ST_HTTP_EV_SKIP, 16, 16, 0 },
		{ ST_HTTP_EV_HEAD, 27, 27, 0 },
		{ ST_HTTP_EV_MSG_DONE, 0, 27, 0 },
	}, 3);
	st_http__free(&p);
	all_splits(ST_HTTP_REQUEST, NULL, 0,
		   S("\x01\x02GET / HTTP/1.1\r\n\r\n"
		     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "1\r\nx\r\nQQ GET / HTTP/1.1\r\nHost: a\r\n\r\n"
		     "GET /ok HTTP/1.1\r\n\r\n"));
	all_splits(ST_HTTP_RESPONSE, NULL, 0,
		   S("xHTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n"
		     "HTTP/1.1 HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"
		     "a"));
}

static void test_scan_start(void **state)
{
	size_t off;

	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("xx GET /a HTTP/1.1\r\n"), 0,
					     &off), ST_HTTP_SCAN_FOUND);
	assert_int_equal(off, 3);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("abc def"), 0, &off),
			 ST_HTTP_SCAN_NONE);
	assert_int_equal(off, 7);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("..POST /x HTT"), 0, &off),
			 ST_HTTP_SCAN_PARTIAL);
	assert_int_equal(off, 2);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("zzG"), 0, &off),
			 ST_HTTP_SCAN_PARTIAL);
	assert_int_equal(off, 2);
	/* "A B C HTTP/1." is "B C HTTP/1.": the first word is not a method here */
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("A B C HTTP/1.1"), 0, &off),
			 ST_HTTP_SCAN_FOUND);
	assert_int_equal(off, 2);
	/* lowercase, too-long methods, double spaces are not request starts */
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("get / HTTP/1.1"), 0, &off),
			 ST_HTTP_SCAN_NONE);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST,
					     S("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1"), 0, &off),
			 ST_HTTP_SCAN_FOUND); /* found at a later letter */
	assert_int_equal(off, 2);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("GET  / HTTP/1.1"), 0, &off),
			 ST_HTTP_SCAN_NONE);
	/* max_len bounds a candidate */
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("GET /0123456789 HTT"), 10,
					     &off), ST_HTTP_SCAN_PARTIAL); /* "HTT" at the end */
	assert_int_equal(off, 16);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("GET /0123456789 HTTP/1.1"), 10,
					     &off), ST_HTTP_SCAN_NONE);
	assert_int_equal(st_http__scan_start(ST_HTTP_REQUEST, S("GET /01 HTTP/1.1"), 16,
					     &off), ST_HTTP_SCAN_FOUND);
	/* responses */
	assert_int_equal(st_http__scan_start(ST_HTTP_RESPONSE, S("HTTP/1.0\r\nHTTP/1.1 200 OK"),
					     0, &off), ST_HTTP_SCAN_FOUND);
	assert_int_equal(off, 10);
	assert_int_equal(st_http__scan_start(ST_HTTP_RESPONSE, S("xxHTTP/1.1 2"), 0, &off),
			 ST_HTTP_SCAN_PARTIAL);
	assert_int_equal(off, 2);
	assert_int_equal(st_http__scan_start(ST_HTTP_RESPONSE, S("HTTP/1.1 2000"), 0, &off),
			 ST_HTTP_SCAN_NONE);
	assert_int_equal(off, 13);
	assert_int_equal(st_http__scan_start(ST_HTTP_RESPONSE, "", 0, 0, &off),
			 ST_HTTP_SCAN_NONE);
	assert_int_equal(off, 0);
}

/* ---- rewrite ---- */

static void test_rewrite(void **state)
{
	static const char msg[] = "\r\nPOST /api HTTP/1.1\r\nHost: prod.example\r\n"
				  "X-Env: prod\r\nAccept: */*\r\nx-env: again\r\n"
				  "Content-Length: 2\r\n\r\nhi";
	static const char want[] = "POST /api HTTP/1.1\r\nHost: shadow:8080\r\nX-Env: shadow\r\n"
				   "Accept: */*\r\nContent-Length: 2\r\nX-New: 1\r\n"
				   "X-Shadowtap: 1\r\n\r\n";
	const struct st_http_kv set[] = { { "x-env", "shadow" }, { "X-New", "1" },
					  { "X-NEW", "dup ignored" } };
	struct st_http_rewrite rw = { .set = set, .nset = 3, .host = "shadow:8080",
				      .marker_name = "X-Shadowtap", .marker_value = "1" };
	struct st_http_parser p;
	struct st_http_event ev;
	char out[512];
	ssize_t n;

	init(&p, ST_HTTP_REQUEST, 0, 0);
	st_http__feed(&p, S(msg), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	n = st_http_rewrite_head(ev.head, &rw, out, sizeof(out));
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, (size_t)n);
	/* exact fit works, one byte less is ENOSPC */
	assert_int_equal(st_http_rewrite_head(ev.head, &rw, out, sizeof(want) - 1), n);
	assert_int_equal(st_http_rewrite_head(ev.head, &rw, out, sizeof(want) - 2), -ENOSPC);
	assert_int_equal(st_http_rewrite_head(ev.head, &rw, out, 0), -ENOSPC);
	/* no changes: normalised copy */
	rw = (struct st_http_rewrite){ 0 };
	n = st_http_rewrite_head(ev.head, &rw, out, sizeof(out));
	assert_true(n > 0);
	assert_memory_equal(out, "POST /api HTTP/1.1\r\nHost: prod.example\r\n", 40);
	/* Host added when absent, marker replaces an existing one */
	st_http__reset(&p);
	st_http__feed(&p, S("GET / HTTP/1.0\r\nX-Shadowtap: 0\r\n\r\n"), &ev);
	rw = (struct st_http_rewrite){ .host = "h", .marker_name = "x-shadowtap",
				       .marker_value = "1" };
	n = st_http_rewrite_head(ev.head, &rw, out, sizeof(out));
	assert_int_equal(n, 43);
	assert_memory_equal(out, "GET / HTTP/1.0\r\nX-Shadowtap: 1\r\nHost: h\r\n\r\n", 43);
	/* injections and framing fields are refused */
	{
		const struct st_http_kv bad1[] = { { "X", "a\r\nEvil: 1" } };
		const struct st_http_kv bad2[] = { { "Content-Length", "0" } };
		const struct st_http_kv bad3[] = { { "Bad Name", "v" } };
		const struct st_http_kv bad4[] = { { "transfer-encoding", "chunked" } };

		rw = (struct st_http_rewrite){ .set = bad1, .nset = 1 };
		assert_int_equal(st_http_rewrite_head(ev.head, &rw, out, sizeof(out)), -EINVAL);
		rw.set = bad2;
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw.set = bad3;
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw.set = bad4;
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw = (struct st_http_rewrite){ .host = "a\nb" };
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw = (struct st_http_rewrite){ .marker_name = "M", .marker_value = NULL };
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw = (struct st_http_rewrite){ .marker_name = "HOST", .marker_value = "x" };
		assert_int_equal(st_http_rewrite_check(&rw), -EINVAL);
		rw = (struct st_http_rewrite){ .marker_name = "X-Shadow", .marker_value = "" };
		assert_int_equal(st_http_rewrite_check(&rw), 0);
	}
	st_http__free(&p);
}

static void test_large_body_streaming(void **state)
{
	/* a 3 MB body in 64 KB pieces: never buffered, counted exactly */
	const size_t body = 3u << 20;
	static char piece[65536];
	struct st_http_parser p;
	struct st_http_event ev;
	uint64_t seen = 0;
	char head[128];
	int hl = snprintf(head, sizeof(head), "PUT /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
			  body);

	init(&p, ST_HTTP_REQUEST, 0, 0);
	assert_int_equal(st_http__feed(&p, head, (size_t)hl, &ev), (size_t)hl);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	memset(piece, 'b', sizeof(piece));
	while (seen < body) {
		size_t n = st_http__feed(&p, piece, sizeof(piece), &ev);

		assert_int_equal(ev.type, ST_HTTP_EV_BODY);
		assert_int_equal(n, sizeof(piece));
		seen += n;
	}
	st_http__feed(&p, piece, sizeof(piece), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_MSG_DONE);
	assert_int_equal(ev.msg_len, body + (size_t)hl);
	assert_true(p.hsize <= 1024);
	st_http__free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_content_length),
		cmocka_unit_test(test_request_no_body),
		cmocka_unit_test(test_request_chunked),
		cmocka_unit_test(test_request_cl_and_te),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_upgrade_request),
		cmocka_unit_test(test_bare_lf_and_leading_crlf),
		cmocka_unit_test(test_response_no_body_cases),
		cmocka_unit_test(test_response_until_close),
		cmocka_unit_test(test_response_upgrade),
		cmocka_unit_test(test_method_queue),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_many_headers),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_error_offsets),
		cmocka_unit_test(test_trailer_limit_exact),
		cmocka_unit_test(test_resync_head_garbage),
		cmocka_unit_test(test_resync_body_error),
		cmocka_unit_test(test_resync_gap),
		cmocka_unit_test(test_resync_response),
		cmocka_unit_test(test_scan_start),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_large_body_streaming),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
