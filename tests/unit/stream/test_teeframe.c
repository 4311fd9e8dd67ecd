/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee's framing (teeframe.c): reassembly's events, given by hand, become records in a
 * real encoder; the stream is decoded (stream.h's decoder, which checks that each direction's
 * records tile it from offset 0) and each direction rebuilt as text, a gap as "<gap LEN
 * WHY>". Redacted header and query values overwritten with '*' at the same length, pipelined
 * and chunked exchanges (a trailer, a JSON body cut anywhere), a connection that is not HTTP
 * held back as exact gaps (or as is with raw), a filtered connection closed before its first
 * byte, a capture gap mid-body stepped over and one in a head holding the rest back, an
 * Upgrade, records dropped whole for lack of room (counted, a gap of their length), and a
 * restart into a new stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shadowtap.h"
#include "reasm.h"
#include "stream.h"
#include "teeframe.h"

#define MAX_CONNS 8
#define VIEW_MAX (64u << 10)

/* What the decoder gave back. */
struct conn_view {
	bool opened, closed, ended[2];
	uint32_t flags;
	char text[2][VIEW_MAX]; /* each direction: data as is, gaps as "<gap LEN WHY>" */
	size_t len[2];
	uint64_t off[2];        /* the next offset */
	char marks[512];        /* "IN/OUT " per MARK */
};

struct h {
	struct st_redact_rules rules;
	struct st_teeframe_config cfg;
	struct st_stream_enc *enc;
	struct st_teeframe *f;
	uint8_t *wire;
	size_t wire_len, wire_cap;
	enum st_teeframe_room answer; /* what room() says */
	unsigned rooms;               /* room() asked */
	struct st_reasm_conn c[MAX_CONNS];
	/* decoded */
	struct conn_view v[MAX_CONNS];
	bool finished;
	struct st_stream_trailer tr;
};

static int emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct h *h = ctx;

	if (h->wire_len + len > h->wire_cap) {
		h->wire_cap = (h->wire_len + len) * 2;
		h->wire = realloc(h->wire, h->wire_cap);
		assert_non_null(h->wire);
	}
	memcpy(h->wire + h->wire_len, frame, len);
	h->wire_len += len;
	return 0;
}

static enum st_teeframe_room room(void *ctx, uint64_t n)
{
	struct h *h = ctx;

	h->rooms++;
	return h->answer;
}

static struct h *setup_h(bool raw)
{
	struct h *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	h->cfg.rules = &h->rules;
	h->cfg.raw = raw;
	h->cfg.room = room;
	h->cfg.ctx = h;
	return h;
}

static void start(struct h *h)
{
	h->enc = st_stream_enc__new("format=1.1\n", 1, emit, h);
	assert_non_null(h->enc);
	h->f = st_teeframe__new(&h->cfg, h->enc);
	assert_non_null(h->f);
}

static void teardown_h(struct h *h)
{
	st_teeframe__free(h->f);
	st_stream_enc__free(h->enc);
	free(h->wire);
	free(h);
}

/* ---- reassembly's side -------------------------------------------------------------- */

static struct st_reasm_conn *open_conn(struct h *h, unsigned id)
{
	struct st_reasm_conn *c = &h->c[id];

	memset(c, 0, sizeof(*c));
	c->id = id;
	c->key.src.family = c->key.dst.family = 4;
	c->key.src.a[0] = 0x0100000a;
	c->key.dst.a[0] = 0x0200000a;
	c->key.sport = (uint16_t)(40000 + id);
	c->key.dport = 80;
	st_teeframe_ops.open(h->f, c, 1000);
	return c;
}

static void data(struct h *h, unsigned id, int dir, const char *s, size_t n)
{
	struct st_reasm_conn *c = &h->c[id];
	uint64_t off = c->bytes[dir] + c->gap_bytes[dir];

	c->bytes[dir] += n;
	st_teeframe_ops.data(h->f, c, dir, off, (const uint8_t *)s, (uint32_t)n, 2000);
}

static void put(struct h *h, unsigned id, int dir, const char *s)
{
	data(h, id, dir, s, strlen(s));
}

static void gap(struct h *h, unsigned id, int dir, uint64_t n)
{
	struct st_reasm_conn *c = &h->c[id];
	uint64_t off = c->bytes[dir] + c->gap_bytes[dir];

	c->gap_bytes[dir] += n;
	st_teeframe_ops.gap(h->f, c, dir, off, n, ST_GAP_LOSS, 3000);
}

static void close_conn(struct h *h, unsigned id)
{
	struct st_reasm_conn *c = &h->c[id];

	st_teeframe_ops.end(h->f, c, 0, ST_END_FIN, 4000);
	st_teeframe_ops.end(h->f, c, 1, ST_END_FIN, 4000);
	st_teeframe_ops.close(h->f, c, ST_END_FIN, 4000);
}

/* ---- the decoder's side ------------------------------------------------------------- */

static struct conn_view *view(void *ctx, struct st_reasm_conn *c)
{
	struct h *h = ctx;

	assert_true(c->id < MAX_CONNS);
	return &h->v[c->id];
}

static void add(struct conn_view *v, int dir, const char *s, size_t n)
{
	assert_true(v->len[dir] + n < VIEW_MAX);
	memcpy(v->text[dir] + v->len[dir], s, n);
	v->len[dir] += n;
	v->text[dir][v->len[dir]] = 0;
}

static void d_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct conn_view *v = view(ctx, c);

	assert_false(v->opened && !v->closed);
	memset(v, 0, sizeof(*v));
	v->opened = true;
	v->flags = c->flags;
}

static void d_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		   uint32_t len, uint64_t ts)
{
	struct conn_view *v = view(ctx, c);

	assert_int_equal(off, v->off[dir]);
	add(v, dir, (const char *)d, len);
	v->off[dir] += len;
}

static void d_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		  enum st_reasm_gap_why why, uint64_t ts)
{
	struct conn_view *v = view(ctx, c);
	char s[64];

	assert_int_equal(off, v->off[dir]);
	snprintf(s, sizeof(s), "<gap %llu %s>", (unsigned long long)len,
		 (unsigned)why == ST_SGAP_HELD ? "held" :
		 (unsigned)why == ST_SGAP_DROPPED ? "dropped" : "loss");
	add(v, dir, s, strlen(s));
	v->off[dir] += len;
}

static void d_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	view(ctx, c)->ended[dir] = true;
}

static void d_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	view(ctx, c)->closed = true;
}

static void d_mark(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct conn_view *v = view(ctx, c);
	size_t o = strlen(v->marks);

	snprintf(v->marks + o, sizeof(v->marks) - o, "%llu/%llu ",
		 (unsigned long long)v->off[0], (unsigned long long)v->off[1]);
}

static void d_finish(void *ctx, const struct st_stream_trailer *t)
{
	struct h *h = ctx;

	h->finished = true;
	h->tr = *t;
}

/* Ends the stream (the trailer from the framing's counters) and decodes all of it. */
static void decode(struct h *h)
{
	const struct st_teeframe_stats *fs = st_teeframe__stats(h->f);
	const struct st_stream_trailer tr = {
		.ts = 5000, .dropped_records = fs->dropped_records,
		.dropped_bytes = fs->dropped_bytes, .dropped_conns = fs->dropped_conns,
		.held_conns = fs->held_conns,
	};
	const struct st_stream_ops ops = {
		.conn = { .open = d_open, .data = d_data, .gap = d_gap, .end = d_end,
			  .close = d_close },
		.finish = d_finish, .mark = d_mark,
	};
	struct st_stream_dec *d;

	assert_int_equal(st_stream_enc__finish(h->enc, &tr), 0);
	d = st_stream_dec__new(&ops, h, 0);
	assert_non_null(d);
	if (st_stream_dec__feed(d, h->wire, h->wire_len) || st_stream_dec__eof(d))
		fail_msg("decoder: %s", st_stream_dec__error(d));
	st_stream_dec__free(d);
	assert_true(h->finished);
}

#define IN(h, id) ((h)->v[id].text[0])
#define OUT(h, id) ((h)->v[id].text[1])

/* ---- the tests ---------------------------------------------------------------------- */

/* Header and query values listed (the default set) are overwritten with '*', the length
 * kept; everything else passes as is, and the offsets are the capture's. */
static void test_redacted_same_length(void **state)
{
	struct h *h = setup_h(false);
	const char *req = "GET /a?token=abc123&x=1 HTTP/1.1\r\nHost: h\r\n"
			  "Authorization: Bearer s3cret\r\n\r\n";
	const char *resp = "HTTP/1.1 200 OK\r\nSet-Cookie: sid=42\r\nContent-Length: 2\r\n\r\nok";

	start(h);
	open_conn(h, 1);
	put(h, 1, 0, req);
	put(h, 1, 1, resp);
	close_conn(h, 1);
	assert_int_equal(st_teeframe__stats(h->f)->redacted, 3);
	decode(h);
	assert_string_equal(IN(h, 1), "GET /a?token=******&x=1 HTTP/1.1\r\nHost: h\r\n"
			    "Authorization: *************\r\n\r\n");
	assert_string_equal(OUT(h, 1), "HTTP/1.1 200 OK\r\nSet-Cookie: ******\r\n"
			    "Content-Length: 2\r\n\r\nok");
	assert_int_equal(h->v[1].off[0], strlen(req));
	assert_int_equal(h->v[1].off[1], strlen(resp));
	assert_true(h->v[1].closed && h->v[1].ended[0] && h->v[1].ended[1]);
	assert_string_equal(h->v[1].marks, "0/0 ");
	assert_int_equal(st_teeframe__stats(h->f)->teed, 1);
	assert_int_equal(st_teeframe__stats(h->f)->held_conns, 0);
	assert_int_equal(st_teeframe__framed(h->f), 0);
	teardown_h(h);
}

/* The same request given a byte at a time: the same stream text. */
static void test_redacted_byte_by_byte(void **state)
{
	struct h *h = setup_h(false);
	const char *req = "GET /b?password=hunter2 HTTP/1.1\r\nCookie: a=b\r\n\r\n";

	start(h);
	open_conn(h, 1);
	for (size_t i = 0; req[i]; i++)
		data(h, 1, 0, req + i, 1);
	close_conn(h, 1);
	decode(h);
	assert_string_equal(IN(h, 1), "GET /b?password=******* HTTP/1.1\r\nCookie: ***\r\n\r\n");
	teardown_h(h);
}

/* Pipelined requests: both redacted; a MARK before the first only (the second's answer
 * pending), then one before a request once every answer is in, at both offsets. */
static void test_pipelined(void **state)
{
	struct h *h = setup_h(false);
	const char *r1 = "GET /1?token=a HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *r2 = "GET /2?token=bb HTTP/1.1\r\nHost: h\r\n\r\n";
	const char *a1 = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1";
	const char *a2 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n22";
	char both[256], marks[64];

	start(h);
	open_conn(h, 1);
	snprintf(both, sizeof(both), "%s%s", r1, r2);
	put(h, 1, 0, both);
	put(h, 1, 1, a1);
	put(h, 1, 1, a2);
	put(h, 1, 0, "GET /3 HTTP/1.1\r\n\r\n");
	close_conn(h, 1);
	decode(h);
	assert_string_equal(IN(h, 1), "GET /1?token=* HTTP/1.1\r\nHost: h\r\n\r\n"
			    "GET /2?token=** HTTP/1.1\r\nHost: h\r\n\r\n"
			    "GET /3 HTTP/1.1\r\n\r\n");
	snprintf(both, sizeof(both), "%s%s", a1, a2);
	assert_string_equal(OUT(h, 1), both);
	snprintf(marks, sizeof(marks), "0/0 %zu/%zu ", strlen(r1) + strlen(r2), strlen(both));
	assert_string_equal(h->v[1].marks, marks);
	assert_int_equal(st_teeframe__stats(h->f)->marks, 2);
	teardown_h(h);
}

/* A chunked request whose JSON body and trailer come cut at odd places: the member's value
 * and the trailer's field are redacted, the chunk framing passes as is. */
static void test_chunked(void **state)
{
	struct h *h = setup_h(false);
	const char *pieces[] = {
		"POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		"c\r\n{\"password\":", "\r\na\r\n\"hunt", "er2\"}\r\n0\r\nAuthoriza",
		"tion: xyz\r\n\r\n",
	};

	start(h);
	open_conn(h, 1);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		put(h, 1, 0, pieces[i]);
	put(h, 1, 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
	close_conn(h, 1);
	decode(h);
	assert_string_equal(IN(h, 1),
			    "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n"
			    "c\r\n{\"password\":\r\na\r\n\"*******\"}\r\n"
			    "0\r\nAuthorization: ***\r\n\r\n");
	assert_string_equal(OUT(h, 1), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			    "2\r\nok\r\n0\r\n\r\n");
	assert_int_equal(st_teeframe__stats(h->f)->redacted, 2);
	teardown_h(h);
}

/* Not HTTP (the client's first bytes are no request's start): both directions become gaps
 * of their exact length, held back; with raw they go as they are. */
static void test_not_http(void **state)
{
	for (int raw = 0; raw < 2; raw++) {
		struct h *h = setup_h(raw);
		const struct st_teeframe_stats *fs;

		start(h);
		fs = st_teeframe__stats(h->f);
		open_conn(h, 1);
		put(h, 1, 0, "\x16\x03\x01 hello");
		put(h, 1, 1, "server hello");
		put(h, 1, 0, "more");
		close_conn(h, 1);
		/* a connection whose server speaks first is not framed either */
		open_conn(h, 2);
		put(h, 2, 1, "220 smtp ready\r\n");
		put(h, 2, 0, "GET / HTTP/1.1\r\n\r\n");
		close_conn(h, 2);
		decode(h);
		if (!raw) {
			assert_string_equal(IN(h, 1), "<gap 9 held><gap 4 held>");
			assert_string_equal(OUT(h, 1), "<gap 12 held>");
			assert_string_equal(OUT(h, 2), "<gap 16 held>");
			assert_string_equal(IN(h, 2), "<gap 18 held>");
			assert_int_equal(fs->held_conns, 2);
			assert_int_equal(fs->held_bytes, 9 + 4 + 12 + 16 + 18);
			assert_int_equal(h->tr.held_conns, 2);
			assert_int_equal(fs->bytes, 0);
		} else {
			assert_string_equal(IN(h, 1), "\x16\x03\x01 hellomore");
			assert_string_equal(OUT(h, 1), "server hello");
			assert_string_equal(IN(h, 2), "GET / HTTP/1.1\r\n\r\n");
			assert_int_equal(fs->raw_conns, 2);
			assert_int_equal(fs->held_conns, 0);
		}
		assert_int_equal(fs->teed, 2);
		teardown_h(h);
	}
}

/* --no-redact: every byte as it is, secrets included, and nothing framed. */
static void test_no_redact(void **state)
{
	struct h *h = setup_h(false);
	const char *req = "GET /?token=abc HTTP/1.1\r\nAuthorization: x\r\n\r\n";

	h->rules.none = true;
	start(h);
	open_conn(h, 1);
	put(h, 1, 0, req);
	close_conn(h, 1);
	decode(h);
	assert_string_equal(IN(h, 1), req);
	assert_int_equal(st_teeframe__stats(h->f)->raw_conns, 1);
	assert_string_equal(h->v[1].marks, "");
	teardown_h(h);
}

/* --match-method GET --exclude-path ^/health: a connection whose first request is left out
 * is closed in the stream before its first byte (counted, not teed); its later requests
 * change nothing; others go. */
static void test_filtered(void **state)
{
	struct h *h = setup_h(false);
	const char *methods[] = { "GET" };
	const struct st_teeframe_stats *fs;
	regex_t ex;

	assert_int_equal(regcomp(&ex, "^/health", REG_EXTENDED | REG_NOSUB), 0);
	h->cfg.methods = methods;
	h->cfg.n_methods = 1;
	h->cfg.exclude = &ex;
	start(h);
	fs = st_teeframe__stats(h->f);
	open_conn(h, 1);
	put(h, 1, 0, "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	put(h, 1, 1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	put(h, 1, 0, "GET /x HTTP/1.1\r\n\r\n");
	close_conn(h, 1);
	open_conn(h, 2);
	put(h, 2, 0, "GET /healthz HTTP/1.1\r\n\r\n");
	close_conn(h, 2);
	open_conn(h, 3);
	put(h, 3, 0, "GET /x HTTP/1.1\r\n\r\n");
	close_conn(h, 3);
	decode(h);
	for (unsigned id = 1; id <= 2; id++) {
		assert_true(h->v[id].opened && h->v[id].closed);
		assert_int_equal(h->v[id].off[0] + h->v[id].off[1], 0);
		assert_false(h->v[id].ended[0] || h->v[id].ended[1]);
	}
	assert_string_equal(IN(h, 3), "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(fs->filtered_conns, 2);
	assert_int_equal(fs->teed, 1);
	assert_int_equal(fs->connections, 3);
	assert_int_equal(st_teeframe__framed(h->f), 0);
	regfree(&ex);
	teardown_h(h);
}

/* With a filter, answer bytes before the first request's head is whole (an early error to a
 * partial head) never reach the stream ahead of the decision: a filtered connection is still
 * closed before its first byte, even when those bytes found no room; one that passes gets
 * them as an exact held gap and its answer direction held from there on. */
static void test_filtered_early_answer(void **state)
{
	struct h *h = setup_h(false);
	regex_t ex;

	assert_int_equal(regcomp(&ex, "^/health", REG_EXTENDED | REG_NOSUB), 0);
	h->cfg.exclude = &ex;
	h->answer = ST_TEEFRAME_ROOM;
	start(h);
	for (unsigned id = 1; id <= 2; id++) {
		open_conn(h, id);
		put(h, id, 0, id == 1 ? "GET /healthz HT" : "GET /x HT");
		h->answer = ST_TEEFRAME_NO_QUEUE; /* the early answer finds no room */
		put(h, id, 1, "HTTP/1.1 400 Bad\r\n\r\n");
		gap(h, id, 1, 5);
		h->answer = ST_TEEFRAME_ROOM;
		put(h, id, 0, "TP/1.1\r\n\r\n");
		put(h, id, 1, "more");
		close_conn(h, id);
	}
	decode(h);
	assert_true(h->v[1].opened && h->v[1].closed);
	assert_int_equal(h->v[1].off[0] + h->v[1].off[1], 0);
	assert_string_equal(IN(h, 2), "GET /x HTTP/1.1\r\n\r\n");
	assert_string_equal(OUT(h, 2), "<gap 25 held><gap 4 held>");
	assert_int_equal(st_teeframe__stats(h->f)->filtered_conns, 1);
	assert_int_equal(st_teeframe__stats(h->f)->dropped_bytes, 0);
	regfree(&ex);
	teardown_h(h);
}

/* A capture gap inside a body of known length is stepped over: the gap goes as reassembly
 * said (loss), the framing goes on, and the next request still gets its MARK. A gap inside a
 * head cannot be: the rest of that direction is held back, at exact offsets, and no MARK
 * comes any more. */
static void test_gap_mid_body(void **state)
{
	struct h *h = setup_h(false);
	const char *head = "POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
	const char *r2 = "GET /n?token=zz HTTP/1.1\r\n\r\n";
	const char *r3a = "GET /p HTTP/1.1\r\nHo", *r3b = "st: h\r\n\r\nGET /q HTTP/1.1\r\n\r\n";
	char want[512];
	size_t in1;

	start(h);
	open_conn(h, 1);
	put(h, 1, 0, head);
	put(h, 1, 0, "abc");
	gap(h, 1, 0, 4);
	put(h, 1, 0, "hij");
	put(h, 1, 1, ok);
	put(h, 1, 0, r2);
	put(h, 1, 1, ok);
	put(h, 1, 0, r3a);
	gap(h, 1, 0, 5);
	put(h, 1, 0, r3b);
	close_conn(h, 1);
	decode(h);
	in1 = strlen(head) + 10;
	/* the partial head was never handed out: held, like everything after the gap in it */
	snprintf(want, sizeof(want), "%sabc<gap 4 loss>hijGET /n?token=** HTTP/1.1\r\n\r\n"
		 "<gap %zu held><gap 5 loss><gap %zu held>", head, strlen(r3a), strlen(r3b));
	assert_string_equal(IN(h, 1), want);
	snprintf(want, sizeof(want), "0/0 %zu/%zu ", in1, strlen(ok));
	assert_string_equal(h->v[1].marks, want);
	assert_int_equal(st_teeframe__stats(h->f)->gap_bytes, 9);
	assert_int_equal(st_teeframe__stats(h->f)->held_bytes, strlen(r3a) + strlen(r3b));
	teardown_h(h);
}

/* An Upgrade: the 101 and what came before go framed; every byte after it is held back in
 * both directions (or raw), and no MARK follows. */
static void test_upgrade(void **state)
{
	for (int raw = 0; raw < 2; raw++) {
		struct h *h = setup_h(raw);
		const char *req = "GET /ws?token=t HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
				  "Upgrade: websocket\r\n\r\n";
		const char *resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				   "Upgrade: websocket\r\n\r\n";
		char want[512];

		start(h);
		open_conn(h, 1);
		put(h, 1, 0, req);
		put(h, 1, 1, resp);
		put(h, 1, 1, "\x81\x05hello");
		put(h, 1, 0, "\x81\x85mask+");
		put(h, 1, 0, "GET / HTTP/1.1\r\n\r\n"); /* not a request any more */
		close_conn(h, 1);
		decode(h);
		if (!raw) {
			snprintf(want, sizeof(want), "GET /ws?token=* HTTP/1.1\r\nHost: h\r\n"
				 "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n<gap 7 held>"
				 "<gap 18 held>");
			assert_string_equal(IN(h, 1), want);
			snprintf(want, sizeof(want), "%s<gap 7 held>", resp);
			assert_string_equal(OUT(h, 1), want);
			assert_int_equal(st_teeframe__stats(h->f)->held_bytes, 7 + 18 + 7);
		} else {
			snprintf(want, sizeof(want), "%s\x81\x05hello", resp);
			assert_string_equal(OUT(h, 1), want);
		}
		assert_string_equal(h->v[1].marks, "0/0 ");
		teardown_h(h);
	}
}

/* No room: a DATA record is dropped whole and counted by its reason; the direction's next
 * record is preceded by a gap of its exact length (dropped). An OPEN without room leaves
 * the connection out whole. */
static void test_no_room(void **state)
{
	struct h *h = setup_h(true);
	const struct st_teeframe_stats *fs;

	start(h);
	fs = st_teeframe__stats(h->f);
	open_conn(h, 1);
	put(h, 1, 0, "\x01raw one");
	h->answer = ST_TEEFRAME_NO_QUEUE;
	put(h, 1, 0, "lost");
	h->answer = ST_TEEFRAME_NO_RATE;
	put(h, 1, 0, "lost too");
	h->answer = ST_TEEFRAME_ROOM;
	put(h, 1, 0, "back");
	h->answer = ST_TEEFRAME_NO_LINK;
	put(h, 1, 1, "answer");
	open_conn(h, 2);
	put(h, 2, 0, "never");
	h->answer = ST_TEEFRAME_ROOM;
	close_conn(h, 2);
	close_conn(h, 1);
	decode(h);
	assert_string_equal(IN(h, 1), "\x01raw one<gap 12 dropped>back");
	assert_string_equal(OUT(h, 1), "<gap 6 dropped>");
	assert_false(h->v[2].opened);
	assert_int_equal(fs->dropped_records, 3);
	assert_int_equal(fs->dropped_bytes, 4 + 8 + 6);
	assert_int_equal(fs->dropped_queue, 1);
	assert_int_equal(fs->dropped_rate, 1);
	assert_int_equal(fs->dropped_link, 1);
	assert_int_equal(fs->dropped_conns, 1);
	assert_int_equal(fs->teed, 1);
	assert_int_equal(h->tr.dropped_records, 3);
	teardown_h(h);
}

/* One segment into a real reassembly: dir 0 from 10.0.0.1:40001 to 10.0.0.2:80. */
static void seg(struct st_reasm *r, int dir, uint32_t seq, const char *d, uint64_t ts)
{
	struct st_segment g;
	struct st_flow_key k = { .sport = 40001, .dport = 80 };

	k.src.family = k.dst.family = 4;
	k.src.a[0] = 0x0100000a;
	k.dst.a[0] = 0x0200000a;
	memset(&g, 0, sizeof(g));
	g.key = k;
	if (dir) {
		g.key.src = k.dst;
		g.key.dst = k.src;
		g.key.sport = k.dport;
		g.key.dport = k.sport;
	}
	g.ts_ns = ts;
	g.seq = seq;
	g.flags = ST_TCP_ACK;
	g.kind = ST_SEG_DATA;
	g.dir = (int8_t)dir;
	g.len = (uint32_t)strlen(d);
	g.data = (const uint8_t *)d;
	assert_int_equal(st_reasm__feed(r, &g), 0);
}

/* A new stream (the link came back): the connection reassembly still has open is opened
 * again, joined, with its past as a dropped gap; it goes on at its offsets, framed as before
 * (its next request gets its MARK). */
static void test_restart(void **state)
{
	struct h *h = setup_h(false);
	const char *r1 = "GET /1?token=x HTTP/1.1\r\n\r\n";
	const char *a1 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	const char *r2 = "GET /2?token=yy HTTP/1.1\r\n\r\n";
	struct st_reasm *r;
	char want[128];

	start(h);
	r = st_reasm__new(NULL, &st_teeframe_ops, h->f);
	assert_non_null(r);
	seg(r, 0, 1000, r1, 1000000);
	/* the first stream is cut; a new encoder takes its place */
	st_stream_enc__free(h->enc);
	h->wire_len = 0;
	h->enc = st_stream_enc__new("format=1.1\n", 1, emit, h);
	assert_non_null(h->enc);
	st_teeframe__restart(h->f, h->enc, r);
	seg(r, 1, 5000, a1, 2000000);
	seg(r, 0, 1000 + (uint32_t)strlen(r1), r2, 3000000);
	st_reasm__flush(r);
	st_reasm__free(r);
	decode(h);
	assert_true(h->v[1].opened && h->v[1].closed);
	assert_true(h->v[1].flags & ST_REASM_F_JOINED);
	snprintf(want, sizeof(want), "<gap %zu dropped>GET /2?token=** HTTP/1.1\r\n\r\n",
		 strlen(r1));
	assert_string_equal(IN(h, 1), want);
	assert_string_equal(OUT(h, 1), a1);
	snprintf(want, sizeof(want), "%zu/%zu ", strlen(r1), strlen(a1));
	assert_string_equal(h->v[1].marks, want);
	teardown_h(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redacted_same_length),
		cmocka_unit_test(test_redacted_byte_by_byte),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_not_http),
		cmocka_unit_test(test_no_redact),
		cmocka_unit_test(test_filtered),
		cmocka_unit_test(test_filtered_early_answer),
		cmocka_unit_test(test_gap_mid_body),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_no_room),
		cmocka_unit_test(test_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
