/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee stream (stream.h): encode, decode, compare event for event; a stream cut at every
 * byte and one with any bit flipped gives one error naming an offset and delivers only a
 * prefix of the events; another major version is refused; inconsistent records are refused.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "stream.h"

#define LOG_MAX (1u << 20)

/* The events, as text: what the encoder was given and what the decoder gave back. */
struct evlog {
	char *s;
	size_t len;
	unsigned n;
};

static void logf_(struct evlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct evlog *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!l->s) {
		l->s = calloc(1, LOG_MAX);
		assert_non_null(l->s);
	}
	va_start(ap, fmt);
	n = vsnprintf(l->s + l->len, LOG_MAX - l->len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && l->len + (size_t)n < LOG_MAX);
	l->len += (size_t)n;
	l->n++;
}

static void log_free(struct evlog *l)
{
	free(l->s);
	memset(l, 0, sizeof(*l));
}

static void d_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	char a[64], b[64];

	inet_ntop(c->key.src.family == 6 ? AF_INET6 : AF_INET, c->key.src.a, a, sizeof(a));
	inet_ntop(c->key.dst.family == 6 ? AF_INET6 : AF_INET, c->key.dst.a, b, sizeof(b));
	logf_(ctx, "open %lu %s.%u-%s.%u f%u ts%lu\n", (unsigned long)c->id, a, c->key.sport, b,
	      c->key.dport, c->flags, (unsigned long)ts);
}

static void d_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		   uint32_t len, uint64_t ts)
{
	logf_(ctx, "data %lu %d %lu %u %08lx ts%lu\n", (unsigned long)c->id, dir,
	      (unsigned long)off, len, crc32(0, data, len), (unsigned long)ts);
}

static void d_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		  enum st_reasm_gap_why why, uint64_t ts)
{
	logf_(ctx, "gap %lu %d %lu %lu w%u ts%lu\n", (unsigned long)c->id, dir, (unsigned long)off,
	      (unsigned long)len, (unsigned)why, (unsigned long)ts);
}

static void d_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	logf_(ctx, "end %lu %d w%u ts%lu\n", (unsigned long)c->id, dir, (unsigned)why,
	      (unsigned long)ts);
}

static void d_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	logf_(ctx, "close %lu w%u ts%lu b%lu/%lu g%lu/%lu\n", (unsigned long)c->id, (unsigned)why,
	      (unsigned long)ts, (unsigned long)c->bytes[0], (unsigned long)c->bytes[1],
	      (unsigned long)c->gap_bytes[0], (unsigned long)c->gap_bytes[1]);
}

static void d_header(void *ctx, const char *text, unsigned major, unsigned minor)
{
	logf_(ctx, "header %u.%u %s", major, minor, text);
}

static void d_finish(void *ctx, const struct st_stream_trailer *t)
{
	logf_(ctx, "finish %lu %lu %lu %lu\n", (unsigned long)t->dropped_records,
	      (unsigned long)t->dropped_bytes, (unsigned long)t->dropped_conns,
	      (unsigned long)t->held_conns);
}

static void d_mark(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	logf_(ctx, "mark %lu ts%lu\n", (unsigned long)c->id, (unsigned long)ts);
}

static const struct st_stream_ops ops = {
	.conn = { d_open, d_data, d_gap, d_end, d_close },
	.header = d_header,
	.finish = d_finish,
	.mark = d_mark,
};

struct buf {
	uint8_t *p;
	size_t len, cap;
	unsigned emits;
};

static int emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct buf *b = ctx;

	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, frame, len);
	b->len += len;
	b->emits++;
	return 0;
}

static const char header[] = "format=1.0\nhost=prod-1\nports=8080\nredact=authorization\n";

static struct st_reasm_conn mkconn(uint64_t id, const char *cli, uint16_t cport, const char *srv,
				   uint16_t sport)
{
	struct st_reasm_conn c = { 0 };
	int af = strchr(cli, ':') ? AF_INET6 : AF_INET;

	c.id = id;
	c.key.src.family = c.key.dst.family = af == AF_INET6 ? 6 : 4;
	assert_int_equal(inet_pton(af, cli, c.key.src.a), 1);
	assert_int_equal(inet_pton(af, srv, c.key.dst.a), 1);
	c.key.sport = cport;
	c.key.dport = sport;
	return c;
}

/* Encodes a stream with most shapes (v4, v6, big data split, gaps, both ends, a connection
 * still open at a mid-stream flush) and logs what a decoder must give back. */
static void make_stream(struct buf *out, struct evlog *want, size_t big)
{
	struct st_stream_enc *e = st_stream_enc__new(header, 6, emit, out);
	struct st_reasm_conn c1 = mkconn(1, "10.0.0.2", 40000, "10.0.0.1", 8080);
	struct st_reasm_conn c2 = mkconn(2, "fd00::2", 40001, "fd00::1", 8080);
	struct st_stream_trailer t = { 99, 3, 4000, 1, 2 };
	uint8_t *blob = malloc(big);
	const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	assert_non_null(e);
	assert_non_null(blob);
	for (size_t i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 7 + (i >> 9));
	c2.flags = ST_REASM_F_JOINED;
	d_header(want, header, ST_STREAM_MAJOR, ST_STREAM_MINOR);

	assert_int_equal(st_stream_enc__open(e, &c1, 10), 0);
	d_open(want, &c1, 10);
	assert_int_equal(st_stream_enc__data(e, 1, 0, 0, (const uint8_t *)req, strlen(req), 11), 0);
	d_data(want, &c1, 0, 0, (const uint8_t *)req, strlen(req), 11);
	c1.bytes[0] += strlen(req);
	assert_int_equal(st_stream_enc__flush(e), 0);
	assert_int_equal(st_stream_enc__open(e, &c2, 12), 0);
	d_open(want, &c2, 12);
	assert_int_equal(st_stream_enc__data(e, 1, 1, 0, blob, (uint32_t)big, 13), 0);
	for (size_t o = 0; o < big; o += ST_STREAM_DATA_MAX) {
		size_t n = big - o > ST_STREAM_DATA_MAX ? ST_STREAM_DATA_MAX : big - o;

		d_data(want, &c1, 1, o, blob + o, (uint32_t)n, 13);
	}
	c1.bytes[1] += big;
	assert_int_equal(st_stream_enc__gap(e, 2, 0, 0, 1000, ST_GAP_LOSS, 14), 0);
	d_gap(want, &c2, 0, 0, 1000, ST_GAP_LOSS, 14);
	c2.gap_bytes[0] += 1000;
	assert_int_equal(st_stream_enc__data(e, 2, 0, 1000, (const uint8_t *)"abc", 3, 15), 0);
	d_data(want, &c2, 0, 1000, (const uint8_t *)"abc", 3, 15);
	c2.bytes[0] += 3;
	assert_int_equal(st_stream_enc__gap(e, 2, 1, 0, 7, ST_SGAP_DROPPED, 16), 0);
	d_gap(want, &c2, 1, 0, 7, (enum st_reasm_gap_why)ST_SGAP_DROPPED, 16);
	c2.gap_bytes[1] += 7;
	/* longer than one GAP record takes: cut in records of ST_STREAM_GAP_MAX at most */
	assert_int_equal(st_stream_enc__gap(e, 2, 1, 7, 2 * ST_STREAM_GAP_MAX + 5, ST_SGAP_DROPPED,
					    16), 0);
	for (uint64_t o = 0; o < 2 * ST_STREAM_GAP_MAX + 5; o += ST_STREAM_GAP_MAX) {
		uint64_t n = 2 * ST_STREAM_GAP_MAX + 5 - o;

		d_gap(want, &c2, 1, 7 + o, n > ST_STREAM_GAP_MAX ? ST_STREAM_GAP_MAX : n,
		      (enum st_reasm_gap_why)ST_SGAP_DROPPED, 16);
		c2.gap_bytes[1] += n > ST_STREAM_GAP_MAX ? ST_STREAM_GAP_MAX : n;
	}
	/* an exchange boundary at both directions' next offsets */
	assert_int_equal(st_stream_enc__mark(e, 2, 1003, 7 + 2 * ST_STREAM_GAP_MAX + 5, 16), 0);
	d_mark(want, &c2, 16);
	assert_int_equal(st_stream_enc__end(e, 1, 0, ST_END_FIN, 17), 0);
	d_end(want, &c1, 0, ST_END_FIN, 17);
	assert_int_equal(st_stream_enc__end(e, 1, 1, ST_END_FIN, 18), 0);
	d_end(want, &c1, 1, ST_END_FIN, 18);
	assert_int_equal(st_stream_enc__close(e, 1, ST_END_FIN, 19), 0);
	d_close(want, &c1, ST_END_FIN, 19);
	assert_int_equal(st_stream_enc__end(e, 2, 1, ST_END_RST, 20), 0);
	d_end(want, &c2, 1, ST_END_RST, 20);
	assert_int_equal(st_stream_enc__close(e, 2, ST_END_RST, 21), 0);
	d_close(want, &c2, ST_END_RST, 21);
	assert_int_equal(st_stream_enc__finish(e, &t), 0);
	d_finish(want, &t);
	assert_int_equal(st_stream_enc__pending(e), 0);
	st_stream_enc__free(e);
	free(blob);
}

/* Decodes in pieces of step bytes (0: all at once). Returns feed/eof's result. */
static int decode(const uint8_t *p, size_t len, size_t step, struct evlog *got, char *err,
		  size_t errlen)
{
	struct st_stream_dec *d = st_stream_dec__new(&ops, got, 0);
	int rc = 0;

	assert_non_null(d);
	if (!step)
		step = len ? len : 1;
	for (size_t o = 0; o < len && !rc; o += step)
		rc = st_stream_dec__feed(d, p + o, len - o < step ? len - o : step);
	if (!rc)
		rc = st_stream_dec__eof(d);
	if (rc) {
		assert_non_null(st_stream_dec__error(d));
		snprintf(err, errlen, "%s", st_stream_dec__error(d));
		st_stream_dec__close_all(d, 777777);
	} else {
		assert_null(st_stream_dec__error(d));
		assert_true(st_stream_dec__done(d));
	}
	st_stream_dec__free(d);
	return rc;
}

static void t_round_trip(void **state)
{
	struct buf b = { 0 };
	struct evlog want = { 0 }, got = { 0 };
	char err[256];
	uint64_t raw, wire;

	make_stream(&b, &want, 300000);
	assert_true(b.emits >= 3); /* preamble, the explicit flush, the finish */
	for (size_t step = 0; step < 4000; step = step ? step * 7 : 1) {
		assert_int_equal(decode(b.p, b.len, step, &got, err, sizeof(err)), 0);
		assert_string_equal(got.s, want.s);
		log_free(&got);
	}
	/* a compressible stream compresses */
	{
		struct st_stream_enc *e = st_stream_enc__new(header, 1, emit, &b);
		struct st_reasm_conn c = mkconn(7, "10.0.0.2", 1, "10.0.0.1", 2);
		static uint8_t zeros[1 << 20];

		assert_int_equal(st_stream_enc__open(e, &c, 1), 0);
		assert_int_equal(st_stream_enc__data(e, 7, 0, 0, zeros, sizeof(zeros), 1), 0);
		st_stream_enc__totals(e, &raw, &wire);
		assert_true(raw > sizeof(zeros));
		st_stream_enc__free(e);
	}
	log_free(&want);
	free(b.p);
}

static void t_truncated_everywhere(void **state)
{
	struct buf b = { 0 };
	struct evlog want = { 0 };
	char err[256];

	make_stream(&b, &want, 70000);
	for (size_t cut = 0; cut < b.len; cut++) {
		struct evlog got = { 0 };

		assert_int_equal(decode(b.p, cut, cut % 5 ? 0 : 13, &got, err, sizeof(err)), -1);
		/* one message, naming an offset (or the empty input) */
		assert_non_null(strstr(err, "byte"));
		assert_null(strchr(err, '\n'));
		/* what was delivered is a prefix of the whole stream's events, closes aside */
		if (got.s) {
			char *close = strstr(got.s, " w5 ts777777");
			size_t pre = got.len;

			/* close_all's closes (ST_END_FLUSH at ts 777777) come last */
			if (close) {
				while (close > got.s && close[-1] != '\n')
					close--;
				pre = (size_t)(close - got.s);
			}
			assert_true(pre <= want.len);
			assert_memory_equal(got.s, want.s, pre);
		}
		log_free(&got);
	}
	log_free(&want);
	free(b.p);
}

static void t_bit_flips(void **state)
{
	struct buf b = { 0 };
	struct evlog want = { 0 };
	char err[256];

	make_stream(&b, &want, 5000);
	for (size_t i = 0; i < b.len; i++) {
		if (i == 7) /* the minor version: any minor of major 1 is read */
			continue;
		for (int bit = 0; bit < 8; bit += 3) {
			struct evlog got = { 0 };

			b.p[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(decode(b.p, b.len, 0, &got, err, sizeof(err)), -1);
			/* the major version names the versions read instead of an offset */
			assert_non_null(strstr(err, i == 6 ? "this build reads" : "byte"));
			b.p[i] ^= (uint8_t)(1u << bit);
			log_free(&got);
		}
	}
	log_free(&want);
	free(b.p);
}

static void t_versions(void **state)
{
	struct buf b = { 0 };
	struct evlog want = { 0 }, got = { 0 };
	char err[256];

	make_stream(&b, &want, 10);
	b.p[6] = 2;
	b.p[7] = 0;
	assert_int_equal(decode(b.p, b.len, 0, &got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "version 2.0"));
	assert_non_null(strstr(err, "this build reads version 1.x"));
	assert_null(got.s);
	/* a later minor of the same major is read */
	b.p[6] = ST_STREAM_MAJOR;
	b.p[7] = ST_STREAM_MINOR + 3;
	assert_int_equal(decode(b.p, b.len, 0, &got, err, sizeof(err)), 0);
	{
		char h[32];

		snprintf(h, sizeof(h), "header %u.%u ", ST_STREAM_MAJOR, ST_STREAM_MINOR + 3);
		assert_non_null(strstr(got.s, h));
	}
	log_free(&got);
	/* not a stream at all */
	assert_int_equal(decode((const uint8_t *)"GET / HTTP/1.1\r\n", 16, 0, &got, err,
				sizeof(err)), -1);
	assert_non_null(strstr(err, "not a shadowtap tee stream"));
	assert_int_equal(decode(b.p, 0, 0, &got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty input"));
	/* bytes after the end */
	b.p[7] = ST_STREAM_MINOR;
	b.p = realloc(b.p, b.len + 1);
	b.p[b.len] = 0;
	assert_int_equal(decode(b.p, b.len + 1, 0, &got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "after the end of the stream"));
	log_free(&got);
	log_free(&want);
	free(b.p);
}

/* Records the encoder writes without checking them, which a decoder must refuse. */
static void t_inconsistent_records(void **state)
{
	static const char *const expect[] = {
		"connection id not open", "not at the direction's next offset",
		"direction already ended", "connection id already open",
		"more than 2 connections", "MARK not at the directions' next offsets",
		"MARK not at the directions' next offsets", "direction already ended",
	};

	for (int k = 0; k < 8; k++) {
		struct buf b = { 0 };
		struct evlog got = { 0 };
		struct st_stream_enc *e = st_stream_enc__new(header, 1, emit, &b);
		struct st_reasm_conn c = mkconn(1, "10.0.0.2", 1, "10.0.0.1", 2);
		struct st_stream_dec *d = st_stream_dec__new(&ops, &got, 2);

		assert_non_null(e);
		assert_int_equal(st_stream_enc__open(e, &c, 1), 0);
		switch (k) {
		case 0:
			st_stream_enc__data(e, 5, 0, 0, (const uint8_t *)"x", 1, 1);
			break;
		case 1:
			st_stream_enc__data(e, 1, 0, 1, (const uint8_t *)"x", 1, 1);
			break;
		case 2:
			st_stream_enc__end(e, 1, 0, ST_END_FIN, 1);
			st_stream_enc__data(e, 1, 0, 0, (const uint8_t *)"x", 1, 1);
			break;
		case 3:
			st_stream_enc__open(e, &c, 1);
			break;
		case 4:
			c.id = 2;
			st_stream_enc__open(e, &c, 1);
			c.id = 3;
			st_stream_enc__open(e, &c, 1);
			break;
		case 5: /* behind the client's next byte */
			st_stream_enc__data(e, 1, 0, 0, (const uint8_t *)"GET", 3, 1);
			st_stream_enc__mark(e, 1, 2, 0, 1);
			break;
		case 6: /* ahead of the server's next byte */
			st_stream_enc__mark(e, 1, 0, 1, 1);
			break;
		case 7: /* after the client's end */
			st_stream_enc__end(e, 1, 0, ST_END_FIN, 1);
			st_stream_enc__mark(e, 1, 0, 0, 1);
			break;
		}
		assert_int_equal(st_stream_enc__flush(e), 0);
		assert_int_equal(st_stream_dec__feed(d, b.p, b.len), -1);
		assert_non_null(strstr(st_stream_dec__error(d), expect[k]));
		assert_non_null(strstr(st_stream_dec__error(d), "stream byte"));
		st_stream_dec__close_all(d, 0);
		st_stream_dec__free(d);
		st_stream_enc__free(e);
		log_free(&got);
		free(b.p);
	}
}

static void t_header_get(void **state)
{
	char v[16];

	assert_true(st_stream_header_get(header, "host", v, sizeof(v)));
	assert_string_equal(v, "prod-1");
	assert_true(st_stream_header_get(header, "redact", v, 5));
	assert_string_equal(v, "auth");
	assert_false(st_stream_header_get(header, "hos", v, sizeof(v)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_round_trip),
		cmocka_unit_test(t_truncated_everywhere),
		cmocka_unit_test(t_bit_flips),
		cmocka_unit_test(t_versions),
		cmocka_unit_test(t_inconsistent_records),
		cmocka_unit_test(t_header_get),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
