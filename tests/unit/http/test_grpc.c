/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/http/grpc.c: length-prefixed messages split anywhere, compressed ones
 * (gzip, deflate, written here by zlib), what is refused and what comes after it, the status
 * from trailers, and a call carried by h2.c from frames to messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "grpc.h"
#include "h2.h"

struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct wbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void msg(struct wbuf *b, uint8_t flag, const void *p, size_t n)
{
	uint8_t h[5] = { flag, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
			 (uint8_t)n };

	put(b, h, 5);
	put(b, p, n);
}

/* zlib's own encoder: windowBits 31 gzip, 15 zlib, -15 raw deflate. */
static void compress_to(struct wbuf *out, const void *in, size_t n, int wbits)
{
	z_stream z;
	uint8_t tmp[16384];
	int ret;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	do {
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		ret = deflate(&z, Z_FINISH);
		put(out, tmp, sizeof(tmp) - z.avail_out);
	} while (ret != Z_STREAM_END);
	deflateEnd(&z);
}

static void cmsg(struct wbuf *b, const void *p, size_t n, int wbits)
{
	struct wbuf c = { 0 };

	compress_to(&c, p, n, wbits);
	msg(b, 1, c.p, c.len);
	free(c.p);
}

/* What came out: each message (or error) in order. */
struct got {
	struct wbuf all;       /* each MSG: its length (8 bytes) and bytes; each ERROR: 0xff..., err */
	uint32_t msgs, errors;
	enum st_grpc_err last_err;
	uint64_t next_index;
	uint32_t in_place;
};

static void record(struct got *g, const struct st_grpc_event *ev, const uint8_t *p, size_t k)
{
	uint64_t l;

	if (ev->type == ST_GRPC_EV_NEED_MORE)
		return;
	assert_int_equal(ev->index, g->next_index);
	g->next_index++;
	if (ev->type == ST_GRPC_EV_ERROR) {
		l = UINT64_MAX;
		put(&g->all, &l, 8);
		put(&g->all, &ev->err, sizeof(ev->err));
		g->errors++;
		g->last_err = ev->err;
		return;
	}
	assert_int_equal(ev->type, ST_GRPC_EV_MSG);
	if (!ev->compressed)
		assert_int_equal(ev->len, ev->wire_len);
	if (ev->data >= p && ev->data + ev->len <= p + k && ev->len)
		g->in_place++;
	l = ev->len;
	put(&g->all, &l, 8);
	put(&g->all, ev->data, ev->len);
	g->msgs++;
}

static void feed(struct st_grpc_reader *r, struct got *g, const uint8_t *p, size_t n)
{
	for (;;) {
		struct st_grpc_event ev;
		size_t k = st_grpc_feed(r, p, n, &ev);

		assert_true(k <= n);
		record(g, &ev, p, k);
		p += k;
		n -= k;
		if (ev.type == ST_GRPC_EV_NEED_MORE) {
			assert_int_equal(n, 0);
			return;
		}
	}
}

enum mode { M_WHOLE, M_BYTES, M_RANDOM, M_CUT };

static void run(const struct wbuf *in, enum st_grpc_coding coding, uint32_t max_msg,
		uint64_t max_dec, enum mode m, size_t cut, struct got *g)
{
	struct st_grpc_reader r;
	struct st_grpc_event ev;
	uint64_t seed = 0x5eed + cut;
	size_t pos = 0;

	memset(g, 0, sizeof(*g));
	st_grpc_init(&r, max_msg, max_dec);
	st_grpc_set_coding(&r, coding);
	while (pos < in->len) {
		size_t n = in->len - pos;

		if (m == M_BYTES)
			n = 1;
		else if (m == M_RANDOM) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			n = 1 + seed % 3000;
		} else if (m == M_CUT && pos < cut)
			n = cut - pos;
		if (n > in->len - pos)
			n = in->len - pos;
		feed(&r, g, in->p + pos, n);
		pos += n;
	}
	st_grpc_end(&r, &ev);
	record(g, &ev, NULL, 0);
	assert_int_equal(r.bytes, in->len);
	assert_true(st_grpc_mem(&r) <= (size_t)r.max_msg + 2 * r.max_decoded + 8192);
	st_grpc_free(&r);
}

/* Every way of cutting the input gives what feeding it whole gives. */
static void all_ways(const struct wbuf *in, enum st_grpc_coding coding, uint32_t max_msg,
		     uint64_t max_dec, bool every_cut, struct got *whole)
{
	run(in, coding, max_msg, max_dec, M_WHOLE, 0, whole);
	for (int m = M_BYTES; m <= M_CUT; m++) {
		size_t ncut = m == M_CUT ? (every_cut ? in->len : 0) : 1;

		for (size_t cut = 0; cut < ncut; cut++) {
			struct got g;

			run(in, coding, max_msg, max_dec, (enum mode)m, cut, &g);
			assert_int_equal(g.all.len, whole->all.len);
			assert_memory_equal(g.all.p, whole->all.p, g.all.len);
			free(g.all.p);
		}
	}
}

static void test_messages(void **state)
{
	struct wbuf in = { 0 }, big = { 0 };
	struct got g;

	msg(&in, 0, NULL, 0);
	msg(&in, 0, "hello", 5);
	msg(&in, 0, "\x08\x96\x01", 3);
	all_ways(&in, ST_GRPC_IDENTITY, 0, 0, true, &g);
	assert_int_equal(g.msgs, 3);
	assert_int_equal(g.errors, 0);
	assert_int_equal(g.in_place, 2); /* whole in the buffer: not copied */
	free(g.all.p);

	for (int i = 0; i < 300000; i++)
		put(&big, &(uint8_t){ (uint8_t)(i * 7) }, 1);
	msg(&in, 0, big.p, big.len);
	msg(&in, 0, "tail", 4);
	all_ways(&in, ST_GRPC_IDENTITY, 0, 0, false, &g);
	assert_int_equal(g.msgs, 5);
	free(g.all.p);
	free(big.p);
	free(in.p);
}

static void test_compressed(void **state)
{
	static const int wb[] = { 31, 15, -15 };
	static const enum st_grpc_coding cd[] = { ST_GRPC_GZIP, ST_GRPC_DEFLATE, ST_GRPC_DEFLATE };
	char text[5000];

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcdefgh ijkl\n"[i % 14];
	for (int k = 0; k < 3; k++) {
		struct wbuf in = { 0 };
		struct got g;
		uint64_t l;

		cmsg(&in, text, sizeof(text), wb[k]);
		msg(&in, 0, "plain", 5); /* a flag of 0 is not compressed whatever the coding */
		cmsg(&in, "", 0, wb[k]);
		all_ways(&in, cd[k], 0, 0, true, &g);
		assert_int_equal(g.msgs, 3);
		assert_int_equal(g.errors, 0);
		memcpy(&l, g.all.p, 8);
		assert_int_equal(l, sizeof(text));
		assert_memory_equal(g.all.p + 8, text, sizeof(text));
		free(g.all.p);
		/* decoded exactly at the cap: fine; one byte more: a bomb */
		run(&in, cd[k], 0, sizeof(text), M_WHOLE, 0, &g);
		assert_int_equal(g.errors, 0);
		free(g.all.p);
		run(&in, cd[k], 0, sizeof(text) - 1, M_BYTES, 0, &g);
		assert_int_equal(g.errors, 1);
		assert_int_equal(g.last_err, ST_GRPC_E_BOMB);
		assert_int_equal(g.msgs, 2);
		free(g.all.p);
		free(in.p);
	}
}

static void test_errors(void **state)
{
	struct wbuf in = { 0 }, bomb = { 0 };
	struct got g;
	uint8_t *zeros = calloc(1, 8u << 20);
	const uint8_t *q;
	uint64_t l;

	assert_non_null(zeros);
	/* compressed with no coding, or one not decoded here */
	cmsg(&in, "secret", 6, 31);
	msg(&in, 0, "next", 4);
	all_ways(&in, ST_GRPC_IDENTITY, 0, 0, true, &g);
	assert_int_equal(g.errors, 1);
	assert_int_equal(g.msgs, 1);
	memcpy(&l, g.all.p, 8);
	assert_true(l == UINT64_MAX);
	free(g.all.p);
	run(&in, ST_GRPC_OTHER, 0, 0, M_WHOLE, 0, &g);
	assert_int_equal(g.last_err, ST_GRPC_E_CODING);
	assert_int_equal(g.msgs, 1);
	free(g.all.p);
	/* not what the coding says: garbage, and a gzip stream with bytes after it */
	in.len = 0;
	msg(&in, 1, "not gzip at all", 15);
	compress_to(&bomb, "abc", 3, 31);
	put(&bomb, "XYZ", 3);
	msg(&in, 1, bomb.p, bomb.len);
	msg(&in, 0, "next", 4);
	all_ways(&in, ST_GRPC_GZIP, 0, 0, true, &g);
	assert_int_equal(g.errors, 2);
	assert_int_equal(g.last_err, ST_GRPC_E_INFLATE);
	assert_int_equal(g.msgs, 1);
	free(g.all.p);
	/* a bomb: 8 MiB of zeros in some KB, capped at 1 MiB decoded */
	in.len = 0;
	bomb.len = 0;
	compress_to(&bomb, zeros, 8u << 20, 31);
	assert_true(bomb.len < 20000);
	msg(&in, 1, bomb.p, bomb.len);
	msg(&in, 0, "next", 4);
	run(&in, ST_GRPC_GZIP, 0, 1u << 20, M_RANDOM, 0, &g);
	assert_int_equal(g.last_err, ST_GRPC_E_BOMB);
	assert_int_equal(g.msgs, 1);
	free(g.all.p);
	/* too large for max_msg: skipped by its length */
	in.len = 0;
	msg(&in, 0, zeros, 200);
	msg(&in, 0, "next", 4);
	all_ways(&in, ST_GRPC_IDENTITY, 100, 0, true, &g);
	assert_int_equal(g.last_err, ST_GRPC_E_TOO_LARGE);
	assert_int_equal(g.msgs, 1);
	q = g.all.p + 8 + sizeof(enum st_grpc_err);
	memcpy(&l, q, 8);
	assert_int_equal(l, 4);
	assert_memory_equal(q + 8, "next", 4);
	free(g.all.p);
	/* a flag byte of 2: nothing after it is framed */
	in.len = 0;
	msg(&in, 0, "one", 3);
	msg(&in, 2, "two", 3);
	msg(&in, 0, "three", 5);
	all_ways(&in, ST_GRPC_IDENTITY, 0, 0, true, &g);
	assert_int_equal(g.msgs, 1);
	assert_int_equal(g.errors, 1);
	assert_int_equal(g.last_err, ST_GRPC_E_FLAG);
	free(g.all.p);
	/* the stream ends inside a prefix, inside a body; or between messages */
	for (size_t cut = 0; cut <= 11; cut++) {
		in.len = 0;
		msg(&in, 0, "abcdef", 6);
		in.len -= cut;
		run(&in, ST_GRPC_IDENTITY, 0, 0, M_BYTES, 0, &g);
		assert_int_equal(g.msgs, cut == 0);
		assert_int_equal(g.errors, cut > 0 && cut < 11);
		if (g.errors)
			assert_int_equal(g.last_err, ST_GRPC_E_TRUNCATED);
		free(g.all.p);
	}
	in.len = 0;
	msg(&in, 0, zeros, 200);
	in.len -= 50;
	run(&in, ST_GRPC_IDENTITY, 100, 0, M_BYTES, 0, &g);
	assert_int_equal(g.errors, 1); /* TOO_LARGE, not TRUNCATED again */
	assert_int_equal(g.last_err, ST_GRPC_E_TOO_LARGE);
	free(g.all.p);
	/* ... but a prefix cut short after a skipped message is (fuzz_grpc found it said nothing) */
	in.len = 0;
	msg(&in, 0, zeros, 200);
	msg(&in, 0, "abc", 3);
	in.len -= 6;
	all_ways(&in, ST_GRPC_IDENTITY, 100, 0, true, &g);
	assert_int_equal(g.errors, 2);
	assert_int_equal(g.last_err, ST_GRPC_E_TRUNCATED);
	free(g.all.p);
	free(in.p);
	free(bomb.p);
	free(zeros);
}

/* ---- heads ------------------------------------------------------------------------------ */

struct fhead {
	struct st_h2_field f[8];
	struct st_h2_head h;
};

static const struct st_h2_head *mkhead(struct fhead *x, uint16_t status, uint32_t flags, ...)
{
	va_list ap;
	const char *n;
	uint32_t i = 0;

	memset(x, 0, sizeof(*x));
	va_start(ap, flags);
	while ((n = va_arg(ap, const char *)) && i < 8) {
		const char *v = va_arg(ap, const char *);

		x->f[i++] = (struct st_h2_field){ .name = n, .name_len = (uint32_t)strlen(n),
						  .value = v, .value_len = (uint32_t)strlen(v) };
	}
	va_end(ap);
	x->h.fields = x->f;
	x->h.nfields = i;
	x->h.status = status;
	x->h.flags = flags;
	return &x->h;
}

static void test_status(void **state)
{
	struct fhead x;
	struct st_grpc_status s;
	char buf[64], tiny[6];

	assert_true(st_grpc_read_status(mkhead(&x, 0, ST_H2_HF_END_STREAM, "grpc-status", "5",
					       "grpc-message", "Not%20found%3A%20%E2%9C%93", NULL),
				    buf, sizeof(buf), &s));
	assert_true(s.present && s.valid && !s.trailers_only && !s.message_cut);
	assert_int_equal(s.code, 5);
	assert_string_equal(st_grpc_code_name(s.code), "NOT_FOUND");
	assert_string_equal(s.message, "Not found: \xe2\x9c\x93");
	assert_int_equal(s.message_len, 14);
	/* percent-encoding that is not %XX is kept as sent */
	assert_true(st_grpc_read_status(mkhead(&x, 0, 0, "grpc-message", "100% %zz %4", "grpc-status",
					       "13", NULL), buf, sizeof(buf), &s));
	assert_string_equal(s.message, "100% %zz %4");
	assert_string_equal(st_grpc_code_name(s.code), "INTERNAL");
	/* a trailers-only answer */
	assert_true(st_grpc_read_status(mkhead(&x, 200, ST_H2_HF_END_STREAM, ":status", "200",
					       "content-type", "application/grpc", "grpc-status",
					       "12", NULL),
				    buf, sizeof(buf), &s));
	assert_true(s.trailers_only);
	assert_int_equal(s.message_len, 0);
	assert_string_equal(s.message, "");
	/* no status; a status that is not a number */
	assert_false(st_grpc_read_status(mkhead(&x, 200, 0, ":status", "200", NULL), buf, sizeof(buf),
					 &s));
	assert_false(s.present);
	assert_true(st_grpc_read_status(mkhead(&x, 0, 0, "grpc-status", "ok", NULL), buf, sizeof(buf),
					&s));
	assert_false(s.valid);
	assert_int_equal(s.code, -1);
	assert_string_equal(st_grpc_code_name(s.code), "UNKNOWN_CODE");
	assert_string_equal(st_grpc_code_name(17), "UNKNOWN_CODE");
	assert_string_equal(st_grpc_code_name(0), "OK");
	assert_string_equal(st_grpc_code_name(16), "UNAUTHENTICATED");
	/* a message longer than the buffer */
	assert_true(st_grpc_read_status(mkhead(&x, 0, 0, "grpc-status", "2", "grpc-message",
					       "abcdefghij", NULL), tiny, sizeof(tiny), &s));
	assert_true(s.message_cut);
	assert_string_equal(s.message, "abcde");
}

static void test_is_grpc(void **state)
{
	static const struct {
		const char *ct;
		bool yes;
	} cases[] = {
		{ "application/grpc", true },        { "application/grpc+proto", true },
		{ "application/GRPC;charset=x", true }, { "application/grpc-web", false },
		{ "application/grpcx", false },      { "application/json", false },
		{ "text/plain", false },
	};
	struct fhead x;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(st_grpc_is_grpc(mkhead(&x, 0, 0, "content-type", cases[i].ct, NULL)),
				 cases[i].yes);
	assert_false(st_grpc_is_grpc(mkhead(&x, 0, 0, "x", "y", NULL)));
	assert_int_equal(st_grpc_coding_of(" gzip ", 6), ST_GRPC_GZIP);
	assert_int_equal(st_grpc_coding_of("Deflate", 7), ST_GRPC_DEFLATE);
	assert_int_equal(st_grpc_coding_of("identity", 8), ST_GRPC_IDENTITY);
	assert_int_equal(st_grpc_coding_of("", 0), ST_GRPC_IDENTITY);
	assert_int_equal(st_grpc_coding_of("snappy", 6), ST_GRPC_OTHER);
}

/* ---- a call, from frames to messages --------------------------------------------------- */

static void frame(struct wbuf *b, uint8_t type, uint8_t flags, uint32_t id, const void *p,
		  size_t n)
{
	uint8_t h[9] = { (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, type, flags,
			 (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id };

	put(b, h, 9);
	put(b, p, n);
}

/* An HPACK literal without indexing, new name (sizes under 127). */
static void lit(struct wbuf *b, const char *n, const char *v)
{
	uint8_t z = 0, nl = (uint8_t)strlen(n), vl = (uint8_t)strlen(v);

	put(b, &z, 1);
	put(b, &nl, 1);
	put(b, n, nl);
	put(b, &vl, 1);
	put(b, v, vl);
}

static void test_call_over_h2(void **state)
{
	static const uint8_t settings[] = { 0 };
	struct wbuf cl = { 0 }, sv = { 0 }, req = { 0 }, resp = { 0 }, tr = { 0 }, msgs = { 0 };
	struct wbuf rmsgs = { 0 };
	char text[3000];
	struct st_h2 *h = st_h2__new(NULL);
	struct st_grpc_reader rd[2];
	struct st_grpc_status st = { 0 };
	char sbuf[128];
	uint32_t got[2] = { 0, 0 };
	bool grpc_req = false;

	(void)settings;
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	/* the request: POST /pkg.Svc/Get, gzip; two messages over three DATA frames */
	put(&req, "\x83\x86", 2);
	lit(&req, ":path", "/pkg.Svc/Get");
	lit(&req, ":authority", "svc");
	lit(&req, "content-type", "application/grpc");
	lit(&req, "grpc-encoding", "gzip");
	lit(&req, "te", "trailers");
	cmsg(&msgs, text, sizeof(text), 31);
	msg(&msgs, 0, "\x08\x01", 2);
	put(&cl, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
	frame(&cl, 0x4, 0, 0, NULL, 0);
	frame(&cl, 0x1, 0x4, 1, req.p, req.len);
	frame(&cl, 0x0, 0, 1, msgs.p, 3);
	frame(&cl, 0x0, 0, 1, msgs.p + 3, msgs.len - 5);
	frame(&cl, 0x0, 0x1, 1, msgs.p + msgs.len - 2, 2);
	frame(&cl, 0x4, 0x1, 0, NULL, 0);
	/* the answer: one message, then trailers with a status */
	put(&resp, "\x88", 1);
	lit(&resp, "content-type", "application/grpc+proto");
	msg(&rmsgs, 0, "\x0a\x03" "abc", 5);
	lit(&tr, "grpc-status", "0");
	lit(&tr, "grpc-message", "all%20good");
	frame(&sv, 0x4, 0, 0, NULL, 0);
	frame(&sv, 0x4, 0x1, 0, NULL, 0);
	frame(&sv, 0x1, 0x4, 1, resp.p, resp.len);
	frame(&sv, 0x0, 0, 1, rmsgs.p, rmsgs.len);
	frame(&sv, 0x1, 0x5, 1, tr.p, tr.len);

	assert_non_null(h);
	for (int d = 0; d < 2; d++)
		st_grpc_init(&rd[d], 0, 0);
	for (int d = 0; d < 2; d++) {
		const struct wbuf *w = d ? &sv : &cl;

		for (size_t i = 0; i < w->len; i++) { /* byte by byte */
			const uint8_t *p = w->p + i;
			size_t n = 1;

			for (;;) {
				struct st_h2_event ev;
				size_t k = st_h2__feed(h, d, p, n, &ev);
				struct st_grpc_event g;

				if (ev.type == ST_H2_EV_HEAD && ev.dir == ST_H2_CLIENT) {
					int e = st_h2_head_find(ev.head, "grpc-encoding", 0);

					grpc_req = st_grpc_is_grpc(ev.head);
					assert_true(e >= 0);
					st_grpc_set_coding(&rd[0], st_grpc_coding_of(
						ev.head->fields[e].value, ev.head->fields[e].value_len));
				} else if (ev.type == ST_H2_EV_DATA) {
					const uint8_t *q = ev.data;
					size_t m = ev.data_len;

					for (;;) {
						size_t t = st_grpc_feed(&rd[ev.dir], q, m, &g);

						if (g.type == ST_GRPC_EV_MSG) {
							if (ev.dir == 0 && got[0] == 0)
								assert_memory_equal(g.data, text,
										    sizeof(text));
							got[ev.dir]++;
						}
						assert_int_not_equal(g.type, ST_GRPC_EV_ERROR);
						q += t;
						m -= t;
						if (g.type == ST_GRPC_EV_NEED_MORE)
							break;
					}
				} else if (ev.type == ST_H2_EV_TRAILERS) {
					assert_true(st_grpc_read_status(ev.head, sbuf, sizeof(sbuf), &st));
				} else if (ev.type == ST_H2_EV_END) {
					st_grpc_end(&rd[ev.dir], &g);
					assert_int_equal(g.type, ST_GRPC_EV_NEED_MORE);
				}
				assert_int_not_equal(ev.type, ST_H2_EV_STOP);
				p += k;
				n -= k;
				if (ev.type == ST_H2_EV_NEED_MORE)
					break;
			}
		}
	}
	assert_true(grpc_req);
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], 1);
	assert_true(st.present && st.valid && !st.trailers_only);
	assert_int_equal(st.code, 0);
	assert_string_equal(st.message, "all good");
	for (int d = 0; d < 2; d++)
		st_grpc_free(&rd[d]);
	st_h2__free(h);
	free(cl.p);
	free(sv.p);
	free(req.p);
	free(resp.p);
	free(tr.p);
	free(msgs.p);
	free(rmsgs.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_compressed),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_is_grpc),
		cmocka_unit_test(test_call_over_h2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
