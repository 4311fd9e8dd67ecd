/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/http/http.c. Input: 2 config bytes, then the stream.
 * Config: byte 0 bits 0-1 head cap (64, 200, 1024, default), bit 2 at most 4
 * headers, bit 3 only 2 methods queued for responses (else 64); byte 1 the
 * pattern of queued methods (2 bits each: GET, HEAD, CONNECT, POST).
 * The stream goes to a request parser and to a response parser, each fed
 * three ways (whole, byte by byte, random splits seeded from the input); the
 * normalised event traces must match and the byte accounting must balance.
 * Every ERROR is followed by a resync, so the resync path gets exercised too.
 * Request heads are rewritten and the result must parse again.
 *
 * Then the stream is framed as the shadow engine frames requests: no resync,
 * the first error ends it. There, every request the framer hands out must
 * start where the previous one ended (never inside a body: no SKIP, no HEAD
 * after an ERROR), and its head must pass an independent strictness check
 * (CRLF only, at most one all-digit Content-Length, Transfer-Encoding only as
 * exactly one "chunked" and never with Content-Length).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_rewrite.h"
#include "fuzz_check.h"

struct tev {
	uint8_t type;
	uint8_t sub;
	uint64_t a, b, c;
};

struct trace {
	struct tev *ev;
	size_t n, cap;
	uint64_t consumed, done, lost, skipped, raw, cur;
	const uint8_t *in;  /* the whole stream */
	uint64_t cursor;    /* stream offset of the first byte not yet handed out or skipped */
};

struct cfg {
	enum st_http_kind kind;
	uint32_t head_cap;
	uint32_t max_headers;
	uint8_t mpat;
	uint8_t nmeth;     /* methods queued on the response parser */
};

static void push(struct trace *t, const struct tev *e)
{
	struct tev *last = t->n ? &t->ev[t->n - 1] : NULL;

	/* runs of BODY (same kind), SKIP and RAW merge: split points must not matter */
	if (last && last->type == e->type && last->sub == e->sub &&
	    (e->type == ST_HTTP_EV_BODY || e->type == ST_HTTP_EV_SKIP ||
	     e->type == ST_HTTP_EV_RAW)) {
		last->a += e->a;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->ev = realloc(t->ev, t->cap * sizeof(*t->ev));
		CHECK(t->ev);
	}
	t->ev[t->n++] = *e;
}

static void check_head(const struct st_http_head *h, enum st_http_kind kind)
{
	char out[1024];
	struct st_http_kv set[2] = { { "X-Set", "1" }, { "Host", "ignored-dup" } };
	struct st_http_rewrite rw = {
		.set = set, .nset = 2, .host = "shadow.example:8080",
		.marker_name = "X-Shadowtap", .marker_value = "1",
	};
	struct st_http_parser q;
	struct st_http_event ev;
	ssize_t n;
	size_t used;

	CHECK(h->raw_len > 0 && h->line_off < h->raw_len);
	CHECK(h->version_major == 1);
	for (uint32_t i = 0; i < h->nheaders; i++) {
		CHECK(h->headers[i].name >= h->raw);
		CHECK(h->headers[i].value + h->headers[i].value_len <= h->raw + h->raw_len);
	}
	if (kind != ST_HTTP_REQUEST)
		return;
	CHECK(h->target >= h->raw && h->target + h->target_len <= h->raw + h->raw_len);
	n = st_http_rewrite_head(h, &rw, out, sizeof(out));
	if (n == -ENOSPC)
		return;
	CHECK(n > 0);
	/* the rewritten head frames again, with the marker and the new Host */
	st_http__init(&q, ST_HTTP_REQUEST, &(struct st_http_opts){ .head_cap = sizeof(out),
								     .max_headers = 1000 });
	used = st_http__feed(&q, out, (size_t)n, &ev);
	CHECK(ev.type == ST_HTTP_EV_HEAD);
	CHECK(used == (size_t)n);
	CHECK(ev.head->method_len == h->method_len &&
	      !memcmp(ev.head->method_str, h->method_str, h->method_len));
	CHECK(ev.head->target_len == h->target_len &&
	      !memcmp(ev.head->target, h->target, h->target_len));
	{
		int i = st_http__head_find(ev.head, "x-shadowtap", 0);
		int hi = st_http__head_find(ev.head, "host", 0);

		CHECK(i >= 0 && st_http__head_find(ev.head, "x-shadowtap", (uint32_t)i + 1) < 0);
		CHECK(hi >= 0 && st_http__head_find(ev.head, "host", (uint32_t)hi + 1) < 0);
		CHECK(ev.head->headers[hi].value_len == 19);
	}
	st_http__free(&q);
}

/*
 * abs: stream offset of the bytes this call consumed. Handed-out bytes (HEAD
 * raw, BODY and RAW spans) and skipped ones must tile the stream in order:
 * what a caller forwards is exactly what was on the wire.
 */
static void record(struct trace *t, const struct st_http_parser *p, const struct st_http_event *ev,
		   size_t n, enum st_http_kind kind, uint64_t abs)
{
	struct tev e = { .type = (uint8_t)ev->type };

	t->consumed += n;
	switch (ev->type) {
	case ST_HTTP_EV_NEED_MORE:
		break;
	case ST_HTTP_EV_HEAD:
		CHECK(ev->head);
		check_head(ev->head, kind);
		CHECK(!memcmp(t->in + t->cursor, ev->head->raw, ev->head->raw_len));
		t->cursor += ev->head->raw_len;
		CHECK(t->cursor == abs + n);
		t->cur += ev->head->raw_len;
		e.a = ev->head->raw_len;
		e.b = ev->head->nheaders | (uint64_t)ev->head->body << 32 |
		      (uint64_t)ev->head->status << 40;
		e.c = ev->head->flags | (uint64_t)ev->head->method << 32 |
		      ev->head->content_length << 40;
		push(t, &e);
		break;
	case ST_HTTP_EV_BODY:
		CHECK(n > 0);
		CHECK(ev->data_len == 0 || ev->data_len == n);
		CHECK(t->cursor == abs);
		t->cursor += n;
		t->cur += n;
		e.sub = ev->data_len != 0;
		e.a = n;
		push(t, &e);
		break;
	case ST_HTTP_EV_MSG_DONE:
		CHECK(n == 0);
		CHECK(ev->msg_len == t->cur);
		t->done += ev->msg_len;
		t->cur = 0;
		e.a = ev->msg_len;
		e.b = ev->body_len;
		push(t, &e);
		break;
	case ST_HTTP_EV_UPGRADED:
		CHECK(n == 0);
		push(t, &e);
		break;
	case ST_HTTP_EV_RAW:
		CHECK(n > 0);
		CHECK(t->cursor == abs);
		t->cursor += n;
		t->raw += n;
		e.a = n;
		push(t, &e);
		break;
	case ST_HTTP_EV_SKIP:
		CHECK(ev->skip_len > 0);
		t->cursor += ev->skip_len;
		CHECK(t->cursor <= abs + n);
		t->skipped += ev->skip_len;
		e.a = ev->skip_len;
		push(t, &e);
		break;
	case ST_HTTP_EV_ERROR:
		CHECK(ev->err != ST_HTTP_E_NONE && ev->err != ST_HTTP_E_INTERNAL &&
		      ev->err != ST_HTTP_E_NOMEM);
		CHECK(ev->lost_len == t->cur);
		t->lost += ev->lost_len;
		t->cur = 0;
		e.sub = (uint8_t)ev->err;
		e.a = ev->lost_len;
		push(t, &e);
		break;
	default:
		CHECK(0);
	}
	CHECK(t->consumed == t->done + t->lost + t->skipped + t->raw + t->cur +
			     st_http__pending(p));
	CHECK(t->cursor + st_http__pending(p) == t->consumed);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* mode 0: whole; 1: byte by byte; 2: random splits */
static void run(const struct cfg *c, const uint8_t *d, size_t len, int mode, uint64_t seed,
		struct trace *t)
{
	struct st_http_parser p;
	struct st_http_event ev;
	size_t pos = 0, guard = 0, limit = 8 * len + 64;

	t->in = d;

	CHECK(st_http__init(&p, c->kind, &(struct st_http_opts){ .head_cap = c->head_cap,
								  .max_headers = c->max_headers })
	      == 0);
	if (c->kind == ST_HTTP_RESPONSE) {
		static const enum st_http_method ms[4] = {
			ST_HTTP_M_GET, ST_HTTP_M_HEAD, ST_HTTP_M_CONNECT, ST_HTTP_M_POST,
		};
		for (unsigned i = 0; i < c->nmeth; i++)
			CHECK(st_http__push_method(&p, ms[(c->mpat >> (i % 4 * 2)) & 3]) == 0);
		if (c->nmeth == ST_HTTP_METHOD_QUEUE)
			CHECK(st_http__push_method(&p, ST_HTTP_M_GET) == -ENOSPC);
	}
	while (pos < len) {
		size_t clen = len - pos, off = 0;

		if (mode == 1)
			clen = 1;
		else if (mode == 2)
			clen = 1 + rng_next(&seed) % (rng_next(&seed) % 4 ? 16 : 600);
		if (clen > len - pos)
			clen = len - pos;
		for (;;) {
			size_t n = st_http__feed(&p, d + pos + off, clen - off, &ev);

			CHECK(n <= clen - off);
			record(t, &p, &ev, n, c->kind, pos + off);
			off += n;
			if (ev.type == ST_HTTP_EV_NEED_MORE) {
				CHECK(off == clen);
				break;
			}
			if (ev.type == ST_HTTP_EV_ERROR)
				st_http__resync(&p, false);
			CHECK(++guard < limit);
		}
		pos += clen;
	}
	for (;;) {
		st_http__feed_eof(&p, &ev);
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			break;
		record(t, &p, &ev, 0, c->kind, len);
		if (ev.type == ST_HTTP_EV_ERROR)
			break;
		CHECK(++guard < limit);
	}
	CHECK(t->consumed == len);
	st_http__free(&p);
}

static void dump(const char *what, const struct trace *t)
{
	fprintf(stderr, "%s: %zu events\n", what, t->n);
	for (size_t i = 0; i < t->n; i++)
		fprintf(stderr, "  %zu: type %u sub %u a %llu b %#llx c %#llx\n", i, t->ev[i].type,
			t->ev[i].sub, (unsigned long long)t->ev[i].a,
			(unsigned long long)t->ev[i].b, (unsigned long long)t->ev[i].c);
}

static void same(const struct trace *a, const struct trace *b)
{
	bool eq = a->n == b->n;

	for (size_t i = 0; eq && i < a->n; i++)
		eq = a->ev[i].type == b->ev[i].type && a->ev[i].sub == b->ev[i].sub &&
		     a->ev[i].a == b->ev[i].a && a->ev[i].b == b->ev[i].b &&
		     a->ev[i].c == b->ev[i].c;
	if (!eq) {
		dump("whole", a);
		dump("split", b);
	}
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		CHECK(a->ev[i].type == b->ev[i].type);
		CHECK(a->ev[i].sub == b->ev[i].sub);
		CHECK(a->ev[i].a == b->ev[i].a);
		CHECK(a->ev[i].b == b->ev[i].b);
		CHECK(a->ev[i].c == b->ev[i].c);
	}
	CHECK(a->done == b->done && a->lost == b->lost && a->skipped == b->skipped &&
	      a->raw == b->raw);
}

static void check_scan(enum st_http_kind kind, const uint8_t *d, size_t len)
{
	size_t off = 12345;
	enum st_http_scan r = st_http__scan_start(kind, d, len, 0, &off);

	CHECK(off <= len);
	if (r == ST_HTTP_SCAN_NONE)
		CHECK(off == len);
	if (r == ST_HTTP_SCAN_FOUND && kind == ST_HTTP_REQUEST)
		CHECK(d[off] >= 'A' && d[off] <= 'Z' && memmem(d + off, len - off, " HTTP/1.", 8));
	if (r == ST_HTTP_SCAN_FOUND && kind == ST_HTTP_RESPONSE)
		CHECK(len - off >= 13 && !memcmp(d + off, "HTTP/1.", 7));
}

static bool hdr_is(const struct st_http_header *h, const char *name)
{
	return h->name_len == strlen(name) && !strncasecmp(h->name, name, h->name_len);
}

/* The strictness the shadow relies on, checked without the framer's own code. */
static void check_strict_head(const struct st_http_head *h)
{
	int ncl = 0, nte = 0;

	for (uint32_t i = h->line_off; i < h->raw_len; i++)
		if (h->raw[i] == '\n')
			CHECK(i > h->line_off && h->raw[i - 1] == '\r');
	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];

		if (hdr_is(f, "content-length")) {
			ncl++;
			CHECK(f->value_len > 0);
			for (uint32_t k = 0; k < f->value_len; k++)
				CHECK(isdigit((unsigned char)f->value[k]));
		} else if (hdr_is(f, "transfer-encoding")) {
			nte++;
			CHECK(f->value_len == 7 && !strncasecmp(f->value, "chunked", 7));
		}
	}
	CHECK(ncl <= 1 && nte <= 1 && !(ncl && nte));
	CHECK(nte == 0 || h->version_minor >= 1);
}

/* The shadow engine's way: requests, whole stream, no resync; the first error ends it. */
static void run_engine(const struct cfg *c, const uint8_t *d, size_t len)
{
	struct st_http_parser p;
	struct st_http_event ev;
	uint64_t pos = 0, msg_end = 0, head_at = 0;
	bool in_msg = false, raw = false;

	CHECK(st_http__init(&p, ST_HTTP_REQUEST, &(struct st_http_opts){
		.head_cap = c->head_cap, .max_headers = c->max_headers }) == 0);
	for (;;) {
		size_t n = st_http__feed(&p, d + pos, len - pos, &ev);

		switch (ev.type) {
		case ST_HTTP_EV_HEAD:
			CHECK(!in_msg && !raw);
			/* it starts where the last message ended (after empty lines at most) */
			head_at = pos + n - ev.head->raw_len;
			CHECK(head_at == msg_end);
			for (uint32_t i = 0; i < ev.head->line_off; i++)
				CHECK(ev.head->raw[i] == '\r' || ev.head->raw[i] == '\n');
			check_strict_head(ev.head);
			in_msg = true;
			break;
		case ST_HTTP_EV_BODY:
			CHECK(in_msg);
			break;
		case ST_HTTP_EV_MSG_DONE:
			CHECK(in_msg);
			CHECK(head_at + ev.msg_len == pos);
			msg_end = pos;
			in_msg = false;
			break;
		case ST_HTTP_EV_UPGRADED:
			raw = true;
			break;
		case ST_HTTP_EV_RAW:
			CHECK(raw);
			break;
		case ST_HTTP_EV_SKIP:
			CHECK(0); /* only a resync skips, and the engine never resyncs */
			break;
		case ST_HTTP_EV_ERROR:
		case ST_HTTP_EV_NEED_MORE:
			st_http__free(&p);
			return;
		}
		pos += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t caps[4] = { 64, 200, 1024, ST_HTTP_HEAD_CAP_DEFAULT };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct cfg c;

	if (size < 2)
		return 0;
	c.head_cap = caps[data[0] & 3];
	c.max_headers = data[0] & 4 ? 4 : 0;
	c.mpat = data[1];
	c.nmeth = data[0] & 8 ? 2 : ST_HTTP_METHOD_QUEUE;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ull;
	if (!seed)
		seed = 1;
	data += 2;
	size -= 2;
	check_scan(ST_HTTP_REQUEST, data, size);
	check_scan(ST_HTTP_RESPONSE, data, size);
	run_engine(&c, data, size);
	for (int k = 0; k < 2; k++) {
		struct trace t[3];

		memset(t, 0, sizeof(t));
		c.kind = k ? ST_HTTP_RESPONSE : ST_HTTP_REQUEST;
		for (int m = 0; m < 3; m++)
			run(&c, data, size, m, seed, &t[m]);
		same(&t[0], &t[1]);
		same(&t[0], &t[2]);
		for (int m = 0; m < 3; m++)
			free(t[m].ev);
	}
	return 0;
}
