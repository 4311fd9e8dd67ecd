/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One comparison (agent/compare/compare_diff.c): JSON structure (nesting, types, key order,
 * unordered arrays, huge numbers, invalid JSON), header rules, gzip/deflate with a bomb
 * cap, text and binary bodies, bodies beyond the cap, paths and value shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "compare_diff.h"

/* A response: "Name: value" lines separated by \n, then the body (cut to max held bytes
 * as the engine holds them). */
struct tmsg {
	struct st_cmp_msg m;
	char hdrs[2048];
};

static void mk(struct tmsg *t, unsigned status, const char *hdrs, const void *body, size_t len,
	       size_t held)
{
	size_t o = 0;
	const char *p = hdrs;

	memset(t, 0, sizeof(*t));
	while (p && *p) {
		const char *nl = strchr(p, '\n'), *colon = strchr(p, ':');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		const char *v = colon + 1;

		while (*v == ' ')
			v++;
		memcpy(t->hdrs + o, p, (size_t)(colon - p));
		o += (size_t)(colon - p);
		t->hdrs[o++] = 0;
		memcpy(t->hdrs + o, v, ll - (size_t)(v - p));
		o += ll - (size_t)(v - p);
		t->hdrs[o++] = 0;
		t->m.nhdrs++;
		p = nl ? nl + 1 : NULL;
	}
	t->m.hdrs = t->hdrs;
	t->m.hdrs_len = (uint32_t)o;
	t->m.status = (uint16_t)status;
	t->m.has_body = body != NULL;
	t->m.body = body;
	t->m.body_len = held && held < len ? held : len;
	t->m.body_total = len;
	t->m.rest_hash = st_cmp_hash(st_cmp_hash_init(), (const uint8_t *)body + t->m.body_len,
				     len - t->m.body_len);
}

struct ctx {
	struct st_cmp_rules r;
	struct st_cmp_scratch s;
	struct st_cmp_view a, b;
	struct st_cmp_diffs d;
	const char *ig[8];
	char igbuf[8][ST_CMP_PATH_MAX];
	const char *un[8];
	char unbuf[8][ST_CMP_PATH_MAX];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	st_cmp_view_init(&c->a);
	st_cmp_view_init(&c->b);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	st_cmp_view_free(&c->a);
	st_cmp_view_free(&c->b);
	st_cmp_scratch_free(&c->s);
	free(c);
	return 0;
}

static void run(struct ctx *c, const struct tmsg *a, const struct tmsg *b)
{
	st_cmp_view_load(&c->a, &c->r, &a->m);
	st_cmp_view_load(&c->b, &c->r, &b->m);
	st_cmp_diff(&c->r, &c->s, &c->a, &c->b, &c->d);
}

/* JSON bodies a and b (application/json), compared. */
static void json(struct ctx *c, const char *a, const char *b)
{
	static struct tmsg ta, tb;

	mk(&ta, 200, "Content-Type: application/json; charset=utf-8", a, strlen(a), 0);
	mk(&tb, 200, "Content-Type: application/json; charset=utf-8", b, strlen(b), 0);
	run(c, &ta, &tb);
}

static const struct st_cmp_diff *expect(struct ctx *c, const char *path, enum st_cmp_kind k)
{
	const struct st_cmp_diff *d = st_cmp_diffs_find(&c->d, path);

	if (!d) {
		print_error("no difference at %s; there are %u:\n", path, c->d.n);
		for (uint32_t i = 0; i < c->d.n; i++)
			print_error("  %s %s\n", c->d.d[i].path, st_cmp_kind_name(c->d.d[i].kind));
		fail();
	}
	if (d->kind != k) {
		print_error("%s: kind %s, want %s\n", path, st_cmp_kind_name(d->kind),
			    st_cmp_kind_name(k));
		fail();
	}
	return d;
}

static void expect_n(struct ctx *c, uint32_t n)
{
	if (c->d.n != n) {
		print_error("%u differences, want %u:\n", c->d.n, n);
		for (uint32_t i = 0; i < c->d.n; i++)
			print_error("  %s %s [%s] [%s] %s\n", c->d.d[i].path,
				    st_cmp_kind_name(c->d.d[i].kind), c->d.d[i].a, c->d.d[i].b,
				    c->d.d[i].note);
		fail();
	}
}

static void test_json_nesting_and_kinds(void **state)
{
	struct ctx *c = *state;
	const struct st_cmp_diff *d;

	/* key order does not matter */
	json(c, "{\"a\": 1, \"b\": {\"c\": [1, 2], \"d\": null}}",
	     "{\"b\": {\"d\": null, \"c\": [1, 2.0]}, \"a\": 1.00}");
	expect_n(c, 0);
	json(c, "{\"items\": [{\"id\": 1, \"price\": 12.5}, {\"id\": 2, \"price\": 9}],"
		" \"meta\": {\"total\": 2, \"cur\": \"EUR\", \"gone\": true}}",
	     "{\"items\": [{\"id\": 1, \"price\": 13}, {\"id\": 2, \"price\": 9.5}, {\"id\": 3}],"
	     " \"meta\": {\"total\": \"2\", \"cur\": \"EUR\", \"new\": []}}");
	/* both price changes land on one collapsed path, counted twice */
	d = expect(c, "$.items[*].price", ST_CMP_VALUE);
	assert_int_equal(d->count, 2);
	assert_string_equal(d->a, "12.5");
	assert_string_equal(d->b, "13");
	d = expect(c, "$.items", ST_CMP_ARRAY_LENGTH);
	assert_string_equal(d->a, "2 items");
	assert_string_equal(d->b, "3 items");
	d = expect(c, "$.meta.total", ST_CMP_TYPE);
	assert_string_equal(d->note, "number -> string");
	assert_string_equal(d->b, "\"2\"");
	d = expect(c, "$.meta.gone", ST_CMP_MISSING);
	assert_true(d->a_set);
	assert_false(d->b_set);
	d = expect(c, "$.meta.new", ST_CMP_EXTRA);
	assert_false(d->a_set);
	assert_string_equal(d->b, "[]");
	expect_n(c, 5);
	/* booleans are one type; null vs object is a type change */
	json(c, "[true, null, \"x\"]", "[false, {}, \"y\"]");
	d = expect(c, "$[*]", ST_CMP_VALUE);
	assert_int_equal(d->count, 3);
	/* one entry per path: the first difference there is the one shown */
	assert_string_equal(d->a, "true");
	expect_n(c, 1);
	/* strings: escapes decoded before comparing, shown JSON-escaped */
	json(c, "{\"s\": \"caf\\u00e9\"}", "{\"s\": \"café\"}");
	expect_n(c, 0);
	json(c, "{\"s\": \"a\\\"b\"}", "{\"s\": \"a\\nb\"}");
	d = expect(c, "$.s", ST_CMP_VALUE);
	assert_string_equal(d->a, "\"a\\\"b\"");
	assert_string_equal(d->b, "\"a\\u000ab\"");
}

static void test_json_paths(void **state)
{
	struct ctx *c = *state;

	/* id-like keys collapse to {id}; other odd keys are quoted */
	json(c, "{\"users\": {\"1234\": {\"n\": 1}, \"9f1c2e3d4b5a69788796a5b4c3d2e1f0\": {\"n\": 1},"
		" \"a b\": 1, \"ok-key\": 1}}",
	     "{\"users\": {\"1234\": {\"n\": 2}, \"9f1c2e3d4b5a69788796a5b4c3d2e1f0\": {\"n\": 2},"
	     " \"a b\": 2, \"ok-key\": 2}}");
	assert_int_equal(expect(c, "$.users.{id}.n", ST_CMP_VALUE)->count, 2);
	expect(c, "$.users[\"a b\"]", ST_CMP_VALUE);
	expect(c, "$.users.ok-key", ST_CMP_VALUE);
	expect_n(c, 3);
	/* a very deep path is cut, not overflowed */
	{
		char a[4096], b[4096];
		size_t n = 0;

		for (int i = 0; i < 60; i++)
			n += (size_t)sprintf(a + n, "{\"key%d\":", i);
		strcpy(b, a);
		strcpy(a + n, "1");
		strcpy(b + n, "2");
		for (int i = 0; i < 60; i++)
			strcat(a, "}"), strcat(b, "}");
		json(c, a, b);
		expect_n(c, 1);
		assert_true(strlen(c->d.d[0].path) <= ST_CMP_PATH_MAX);
		assert_non_null(strstr(c->d.d[0].path, "..."));
	}
}

static void test_json_numbers_and_invalid(void **state)
{
	struct ctx *c = *state;
	const struct st_cmp_diff *d;

	/* beyond double and int64 precision */
	json(c, "{\"n\": 12345678901234567890123, \"m\": 9007199254740993, \"e\": 1e400}",
	     "{\"n\": 12345678901234567890124, \"m\": 9007199254740992, \"e\": 10e399}");
	expect(c, "$.n", ST_CMP_VALUE);
	expect(c, "$.m", ST_CMP_VALUE);
	expect_n(c, 2);
	/* JSON on one side only: a type difference at the root */
	json(c, "{\"a\": 1}", "{\"a\": 1,}");
	d = expect(c, "$", ST_CMP_TYPE);
	assert_string_equal(d->note, "JSON -> not JSON");
	expect_n(c, 1);
	/* not JSON on both sides: compared as text */
	json(c, "<html>\nerror 1\n</html>", "<html>\nerror 2\n</html>");
	d = expect(c, "body", ST_CMP_LINES);
	assert_string_equal(d->a, "line 2: error 1");
	assert_string_equal(d->b, "line 2: error 2");
	assert_string_equal(d->note, "-1 +1 lines of 3/3");
}

static void norm(char *out, const char *in)
{
	assert_int_equal(st_cmp_path_normalize(in, out, ST_CMP_PATH_MAX), 0);
}

static void test_json_rules(void **state)
{
	struct ctx *c = *state;

	/* --ignore-field: an exact path (indexes normalised), and $..name anywhere */
	norm(c->igbuf[0], "$.items[3].ts");
	norm(c->igbuf[1], "$..trace");
	assert_string_equal(c->igbuf[0], "$.items[*].ts");
	c->ig[0] = c->igbuf[0];
	c->ig[1] = c->igbuf[1];
	c->r.ignore_fields = c->ig;
	c->r.n_ignore_fields = 2;
	json(c, "{\"items\": [{\"ts\": 1, \"v\": 1}], \"a\": {\"trace\": \"x\"}, \"trace\": 1}",
	     "{\"items\": [{\"ts\": 2, \"v\": 1}], \"a\": {\"trace\": \"y\"}}");
	expect_n(c, 0);
	c->r.n_ignore_fields = 0;
	/* arrays are ordered unless told otherwise */
	json(c, "{\"tags\": [\"a\", \"b\", {\"k\": 1, \"l\": 2}], \"o\": [1, 2]}",
	     "{\"tags\": [{\"l\": 2, \"k\": 1}, \"b\", \"a\"], \"o\": [2, 1]}");
	expect(c, "$.tags[*]", ST_CMP_TYPE);
	expect(c, "$.o[*]", ST_CMP_VALUE);
	norm(c->unbuf[0], "$.tags");
	c->un[0] = c->unbuf[0];
	c->r.unordered = c->un;
	c->r.n_unordered = 1;
	json(c, "{\"tags\": [\"a\", \"b\", {\"k\": 1, \"l\": 2}], \"o\": [1, 2]}",
	     "{\"tags\": [{\"l\": 2, \"k\": 1}, \"b\", \"a\"], \"o\": [2, 1]}");
	expect(c, "$.o[*]", ST_CMP_VALUE);
	expect_n(c, 1);
	/* unordered: a multiset, so a changed element is one missing and one extra */
	json(c, "{\"tags\": [\"a\", \"a\", \"b\"]}", "{\"tags\": [\"b\", \"a\", \"c\"]}");
	{
		const struct st_cmp_diff *d = expect(c, "$.tags[*]", ST_CMP_MISSING);

		assert_string_equal(d->a, "\"a\"");
		assert_int_equal(d->count, 2); /* the missing "a" and the extra "c", one path */
	}
	c->r.n_unordered = 0;
	c->r.unordered_all = true;
	json(c, "[[1, 2], [3]]", "[[3], [2, 1]]");
	expect_n(c, 0);
	c->r.unordered_all = false;
	/* path syntax */
	assert_int_equal(st_cmp_path_normalize("items", c->igbuf[2], ST_CMP_PATH_MAX), -1);
	assert_int_equal(st_cmp_path_normalize("$.a[x]", c->igbuf[2], ST_CMP_PATH_MAX), -1);
	assert_int_equal(st_cmp_path_normalize("$..a.b", c->igbuf[2], ST_CMP_PATH_MAX), -1);
	norm(c->igbuf[2], "$['a b'][0].c");
	assert_string_equal(c->igbuf[2], "$[\"a b\"][*].c");
	/* a segment of digits stays (a protobuf field number) and matches an {id} too */
	norm(c->igbuf[2], "$.users.42.name");
	assert_string_equal(c->igbuf[2], "$.users.42.name");
	norm(c->igbuf[3], "$.users.9f86d081884c7d65.name");
	assert_string_equal(c->igbuf[3], "$.users.{id}.name");
	assert_true(st_cmp_path_match(c->igbuf[2], "$.users.{id}.name"));
	assert_true(st_cmp_path_match(c->igbuf[2], "$.users.42.name"));
	assert_false(st_cmp_path_match(c->igbuf[2], "$.users.43.name"));
	assert_false(st_cmp_path_match(c->igbuf[2], "$.users.{id}"));
	assert_false(st_cmp_path_match(c->igbuf[2], "$.users.{id}.name.x"));
	assert_true(st_cmp_path_match(c->igbuf[3], "$.users.{id}.name"));
	assert_false(st_cmp_path_match(c->igbuf[3], "$.users.42.name"));
	assert_true(st_cmp_path_match("$[\"a.b\"][*].c", "$[\"a.b\"][*].c"));
	assert_false(st_cmp_path_match("$[\"a.b\"][*].c", "$[\"a.c\"][*].c"));
	c->ig[0] = c->igbuf[2];
	c->r.n_ignore_fields = 1;
	json(c, "{\"users\": {\"42\": {\"name\": \"a\", \"age\": 1}}}",
	     "{\"users\": {\"42\": {\"name\": \"b\", \"age\": 2}}}");
	expect(c, "$.users.{id}.age", ST_CMP_VALUE);
	expect_n(c, 1);
	c->r.n_ignore_fields = 0;
}

static void test_headers(void **state)
{
	struct ctx *c = *state;
	struct tmsg a, b;
	const struct st_cmp_diff *d;

	/* default ignores, names case-insensitive, Content-Length with a body to compare */
	mk(&a, 200, "Date: Mon\nServer: nginx/1.22\nETag: \"1\"\nContent-Type: text/plain\n"
		    "Content-Length: 2\nX-A: 1\nVary: x",
	   "ok", 2, 0);
	mk(&b, 200, "date: Tue\nserver: other\nEtag: \"2\"\ncontent-type: text/plain\n"
		    "Transfer-Encoding: chunked\nx-a: 1\nX-New: y\nLast-Modified: now",
	   "ok", 2, 0);
	run(c, &a, &b);
	expect(c, "headers.vary", ST_CMP_MISSING);
	expect(c, "headers.x-new", ST_CMP_EXTRA);
	expect_n(c, 2);
	/* without a body (HEAD), Content-Length says the size: compared */
	mk(&a, 200, "Content-Length: 10", NULL, 0, 0);
	mk(&b, 200, "Content-Length: 11", NULL, 0, 0);
	run(c, &a, &b);
	d = expect(c, "headers.content-length", ST_CMP_VALUE);
	assert_string_equal(d->a, "10");
	expect_n(c, 1);
	/* --ignore-header; repeated fields compared as lists */
	c->ig[0] = "vary";
	c->r.ignore_headers = c->ig;
	c->r.n_ignore_headers = 1;
	mk(&a, 200, "Vary: a\nCache-Control: no-cache\nCache-Control: private", NULL, 0, 0);
	mk(&b, 200, "Vary: b\nCache-Control: no-cache", NULL, 0, 0);
	run(c, &a, &b);
	d = expect(c, "headers.cache-control", ST_CMP_VALUE);
	assert_string_equal(d->a, "no-cache, private");
	expect_n(c, 1);
	c->r.n_ignore_headers = 0;
	/* Set-Cookie by cookie name only; values never shown; other secrets masked */
	mk(&a, 200, "Set-Cookie: sid=abc; Path=/\nSet-Cookie: theme=dark\nAuthorization: Bearer x",
	   NULL, 0, 0);
	mk(&b, 200, "Set-Cookie: theme=light\nSet-Cookie: sid=zzz\nSet-Cookie: ab=1\n"
		    "Authorization: Bearer y",
	   NULL, 0, 0);
	run(c, &a, &b);
	d = expect(c, "headers.set-cookie[ab]", ST_CMP_EXTRA);
	assert_string_equal(d->b, "ab=(masked)");
	d = expect(c, "headers.authorization", ST_CMP_VALUE);
	assert_null(strstr(d->a, "Bearer"));
	assert_null(strstr(d->b, "Bearer"));
	expect_n(c, 2);
	/* status */
	mk(&a, 200, "", NULL, 0, 0);
	mk(&b, 503, "", NULL, 0, 0);
	run(c, &a, &b);
	d = expect(c, "status", ST_CMP_VALUE);
	assert_string_equal(d->b, "503");
}

/* gRPC (HTTP/2): messages compared one by one, trailers as fields of their own. */
static void test_grpc(void **state)
{
	static const uint8_t a1[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'x', 'y' };
	static const uint8_t b1[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'x', 'z' };
	static const uint8_t b2[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c' };
	static const char ta[] = "grpc-status\0" "0\0" "grpc-message\0" "\0";
	static const char tb[] = "grpc-status\0" "5\0" "grpc-message\0" "no such cart\0";
	struct ctx *c = *state;
	struct tmsg a, b;
	const struct st_cmp_diff *d;

	mk(&a, 200, "content-type: application/grpc", a1, sizeof(a1), 0);
	mk(&b, 200, "content-type: application/grpc", b1, sizeof(b1), 0);
	/* "xy" and "xz" are protobuf messages {15: 121} and {15: 122}; "abc" is not (base64) */
	run(c, &a, &b);
	assert_true(c->a.json_ok && c->b.json_ok);
	assert_int_equal(c->a.grpc_msgs, 2);
	d = expect(c, "$.15", ST_CMP_VALUE);
	assert_string_equal(d->a, "121");
	assert_string_equal(d->b, "122");
	assert_string_equal(d->note, "first in gRPC message 1");
	expect_n(c, 1);
	mk(&b, 200, "content-type: application/grpc", b2, sizeof(b2), 0);
	run(c, &a, &b);
	d = expect(c, "$.length", ST_CMP_VALUE);
	assert_string_equal(d->a, "2");
	assert_string_equal(d->b, "1");
	expect_n(c, 1);
	mk(&b, 200, "content-type: application/grpc", a1, sizeof(a1), 0);
	a.m.trls = ta;
	a.m.trls_len = sizeof(ta) - 1;
	a.m.ntrls = 2;
	b.m.trls = tb;
	b.m.trls_len = sizeof(tb) - 1;
	b.m.ntrls = 2;
	run(c, &a, &b);
	d = expect(c, "trailers.grpc-status", ST_CMP_VALUE);
	assert_string_equal(d->b, "5");
	expect(c, "trailers.grpc-message", ST_CMP_VALUE);
	expect_n(c, 2);
	/* not framed as messages: compared as bytes */
	mk(&a, 200, "content-type: application/grpc", "\0\0\0\0\x09" "ab", 7, 0);
	mk(&b, 200, "content-type: application/grpc", "\0\0\0\0\x09" "ac", 7, 0);
	run(c, &a, &b);
	assert_string_equal(c->a.grpc_note, "the body ends inside a message: messages compared as bytes");
	expect(c, "body", ST_CMP_BYTES);
	expect_n(c, 1);
	/* a length that wraps 32 bits once the prefix is added (5 + 0xfffffffb): counted, once */
	mk(&a, 200, "content-type: application/grpc", a1, sizeof(a1), 0);
	mk(&b, 200, "content-type: application/grpc",
	   "\0\0\0\0\3" "abc" "\0\0\0\0\2" "xy" "\0\xff\xff\xff\xfb", 20, 0);
	run(c, &a, &b);
	d = expect(c, "$.length", ST_CMP_VALUE);
	assert_string_equal(d->a, "2");
	assert_string_equal(d->b, "3");
	expect_n(c, 1);
	/* a message compressed with no grpc-encoding: its bytes, said why */
	mk(&a, 200, "content-type: application/grpc", "\1\0\0\0\2" "ab", 7, 0);
	mk(&b, 200, "content-type: application/grpc", "\1\0\0\0\2" "ac", 7, 0);
	run(c, &a, &b);
	d = expect(c, "$[0]", ST_CMP_VALUE);
	assert_string_equal(d->note, "a message's coding is not decoded here: messages compared as bytes");
	expect_n(c, 1);
}

static size_t gz(const char *in, size_t n, uint8_t *out, size_t cap, int level, int wbits)
{
	z_stream z = { 0 };

	assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return cap - z.avail_out;
}

static void test_gzip(void **state)
{
	struct ctx *c = *state;
	static const char ja[] = "{\"items\": [1, 2, 3], \"name\": \"aaaaaaaaaaaaaaaaaaaaaaaa\"}";
	static const char jb[] = "{\"items\": [1, 2, 4], \"name\": \"aaaaaaaaaaaaaaaaaaaaaaaa\"}";
	static uint8_t za[4096], zb[4096], big[1 << 20];
	struct tmsg a, b;
	size_t la, lb;

	/* equal once decoded, though compressed differently: no difference */
	la = gz(ja, strlen(ja), za, sizeof(za), 1, 31);
	lb = gz(ja, strlen(ja), zb, sizeof(zb), 9, 31);
	mk(&a, 200, "Content-Type: application/json\nContent-Encoding: gzip", za, la, 0);
	mk(&b, 200, "Content-Type: application/json\nContent-Encoding: deflate", zb, lb, 0);
	zb[0] ^= 0; /* (same stream, but labelled deflate: must fail to decode as zlib) */
	lb = gz(ja, strlen(ja), zb, sizeof(zb), 9, 15);
	run(c, &a, &b);
	assert_string_equal(c->a.coding, "gzip");
	assert_string_equal(c->b.coding, "deflate");
	expect(c, "headers.content-encoding", ST_CMP_VALUE);
	expect_n(c, 1);
	/* raw deflate (no zlib header) is taken too; the difference is inside the JSON */
	lb = gz(jb, strlen(jb), zb, sizeof(zb), 6, -15);
	mk(&b, 200, "Content-Type: application/json\nContent-Encoding: gzip", zb, 0, 0);
	mk(&b, 200, "Content-Type: application/json\nContent-Encoding: Deflate", zb, lb, 0);
	run(c, &a, &b);
	expect(c, "$.items[*]", ST_CMP_VALUE);
	/* a bomb: 1 MiB of zeros compressed to ~1 KB, decoded only up to the cap */
	memset(big, '0', sizeof(big));
	la = gz((const char *)big, sizeof(big), za, sizeof(za), 9, 31);
	assert_true(la < 4096);
	c->r.max_body = 1024;
	c->r.max_decoded = 64 * 1024;
	mk(&a, 200, "Content-Encoding: gzip", za, la, 0);
	mk(&b, 200, "Content-Encoding: gzip", za, la, 0);
	run(c, &a, &b);
	assert_true(c->a.len <= 1024);
	assert_true(c->a.total <= 64 * 1024 + 8192 + 1024);
	assert_non_null(c->a.coding_note);
	expect_n(c, 0); /* the same bytes */
	c->r.max_body = 0;
	c->r.max_decoded = 0;
	/* corrupt: compared as sent */
	memcpy(zb, za, la);
	zb[la / 2] ^= 0xff;
	mk(&b, 200, "Content-Encoding: gzip", zb, la, 0);
	run(c, &a, &b);
	assert_null(c->b.coding);
	assert_non_null(c->b.coding_note);
	expect(c, "body", ST_CMP_BYTES);
}

/* A gRPC body of one message, prefixed (flag 0). */
static size_t grpc_msg(uint8_t *out, const void *m, size_t n)
{
	out[0] = 0;
	out[1] = out[2] = 0;
	out[3] = (uint8_t)(n >> 8);
	out[4] = (uint8_t)n;
	memcpy(out + 5, m, n);
	return n + 5;
}

/*
 * gRPC messages decoded as protobuf without a schema: a field of a repeated nested message
 * named $.2[*].3, another $.3; --ignore-field by field number; gzip-compressed messages
 * (grpc-encoding) equal to the same sent plain; a message that does not parse compared whole
 * at "$"; a trailers-only answer (no messages) against one with messages.
 */
static void test_grpc_protobuf(void **state)
{
	/* {1: "cart-1", 2: [{1: "abc", 3: 0.5 as fixed64}, {1: "xyz", 3: 0.5}], 3: 1} */
	static const uint8_t ma[] = { 0x0a, 6, 'c', 'a', 'r', 't', '-', '1',
				      0x12, 14, 0x0a, 3, 'a', 'b', 'c', 0x19, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f,
				      0x12, 14, 0x0a, 3, 'x', 'y', 'z', 0x19, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f,
				      0x18, 1 };
	/* the second price 0.7, field 3 2 */
	static const uint8_t mb[] = { 0x0a, 6, 'c', 'a', 'r', 't', '-', '1',
				      0x12, 14, 0x0a, 3, 'a', 'b', 'c', 0x19, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f,
				      0x12, 14, 0x0a, 3, 'x', 'y', 'z', 0x19, 0x66, 0x66, 0x66, 0x66, 0x66,
				      0x66, 0xe6, 0x3f,
				      0x18, 2 };
	struct ctx *c = *state;
	uint8_t ba[128], bb[128], z[256];
	size_t na = grpc_msg(ba, ma, sizeof(ma)), nb = grpc_msg(bb, mb, sizeof(mb)), nz;
	struct tmsg a, b;
	const struct st_cmp_diff *d;

	mk(&a, 200, "content-type: application/grpc", ba, na, 0);
	mk(&b, 200, "content-type: application/grpc", bb, nb, 0);
	run(c, &a, &b);
	d = expect(c, "$.2[*].3", ST_CMP_VALUE);
	assert_string_equal(d->a, "4602678819172646912"); /* 0.5's bits: no schema says double */
	assert_string_equal(d->note, "");
	expect(c, "$.3", ST_CMP_VALUE);
	expect_n(c, 2);
	/* --ignore-field $.3 (a field number: kept as such) */
	norm(c->igbuf[0], "$.3");
	c->ig[0] = c->igbuf[0];
	c->r.ignore_fields = c->ig;
	c->r.n_ignore_fields = 1;
	run(c, &a, &b);
	expect(c, "$.2[*].3", ST_CMP_VALUE);
	expect_n(c, 1);
	c->r.n_ignore_fields = 0;
	/* the same message gzip-compressed (flag 1, grpc-encoding gzip) and plain: equal
	 * messages (the field saying how they travel differs, as Content-Encoding would) */
	nz = gz((const char *)ma, sizeof(ma), z + 5, sizeof(z) - 5, 9, 31);
	z[0] = 1;
	z[1] = z[2] = z[3] = 0;
	z[4] = (uint8_t)nz;
	assert_true(nz < 256);
	mk(&b, 200, "content-type: application/grpc\ngrpc-encoding: gzip", z, nz + 5, 0);
	run(c, &a, &b);
	expect(c, "headers.grpc-encoding", ST_CMP_EXTRA);
	expect_n(c, 1);
	/* ... and against the changed one: the same paths */
	mk(&a, 200, "content-type: application/grpc\ngrpc-encoding: gzip", bb, nb, 0);
	run(c, &a, &b);
	expect(c, "$.2[*].3", ST_CMP_VALUE);
	expect_n(c, 2);
	/* a message that is not protobuf: compared whole */
	mk(&a, 200, "content-type: application/grpc", "\0\0\0\0\3" "abc", 8, 0);
	mk(&b, 200, "content-type: application/grpc", "\0\0\0\0\3" "abd", 8, 0);
	run(c, &a, &b);
	d = expect(c, "$", ST_CMP_VALUE);
	assert_string_equal(d->a, "\"YWJj\"");
	expect_n(c, 1);
	/* JSON against a gRPC answer whose messages decoded: one difference at "$", as any
	 * answer that is not JSON against one that is */
	mk(&a, 200, "content-type: application/json", "{\"a\": 1}", 8, 0);
	mk(&b, 200, "content-type: application/grpc", bb, nb, 0);
	run(c, &a, &b);
	assert_true(c->b.json_ok);
	d = expect(c, "$", ST_CMP_TYPE);
	assert_string_equal(d->note, "JSON -> not JSON");
	expect(c, "headers.content-type", ST_CMP_VALUE);
	expect_n(c, 2);
	/* no messages (trailers-only) against one */
	mk(&a, 200, "content-type: application/grpc", "", 0, 0);
	mk(&b, 200, "content-type: application/grpc", bb, nb, 0);
	run(c, &a, &b);
	d = expect(c, "$.length", ST_CMP_VALUE);
	assert_string_equal(d->a, "0");
	assert_string_equal(d->b, "1");
}

static void test_text_binary_and_cap(void **state)
{
	struct ctx *c = *state;
	static const char ta[] = "a\nb\nc\nd\n", tb[] = "a\nc\nb\nd\n";
	static uint8_t ba[5000], bb[5000];
	struct tmsg a, b;
	const struct st_cmp_diff *d;

	mk(&a, 200, "Content-Type: text/plain", ta, strlen(ta), 0);
	mk(&b, 200, "Content-Type: text/plain", tb, strlen(tb), 0);
	run(c, &a, &b);
	d = expect(c, "body", ST_CMP_LINES);
	assert_string_equal(d->note, "same lines, another order (4 lines)");
	/* CRLF and LF lines are the same lines */
	mk(&b, 200, "Content-Type: text/plain", "a\r\nb\r\nc\r\nd\r\n", 12, 0);
	run(c, &a, &b);
	d = expect(c, "body", ST_CMP_LINES);
	assert_string_equal(d->note, "same lines, another order (4 lines)");
	/* binary: length and hash */
	memset(ba, 1, sizeof(ba));
	memcpy(bb, ba, sizeof(bb));
	bb[4000] = 2;
	mk(&a, 200, "Content-Type: image/png", ba, sizeof(ba), 0);
	mk(&b, 200, "Content-Type: image/png", bb, sizeof(bb), 0);
	run(c, &a, &b);
	d = expect(c, "body", ST_CMP_BYTES);
	assert_string_equal(d->note, "first difference at byte 4000");
	/* beyond the cap: only the held prefix is there; the rest by length and hash */
	c->r.max_body = 1000;
	mk(&a, 200, "Content-Type: image/png", ba, sizeof(ba), 1000);
	mk(&b, 200, "Content-Type: image/png", bb, sizeof(bb), 1000);
	run(c, &a, &b);
	d = expect(c, "body", ST_CMP_BYTES);
	assert_non_null(strstr(d->note, "prefixes are equal"));
	mk(&b, 200, "Content-Type: image/png", ba, sizeof(ba), 1000);
	run(c, &a, &b);
	expect_n(c, 0);
	/* a JSON body beyond the cap is not parsed (a prefix is not a document) */
	{
		static char ja[3000], jb[3000];
		size_t n = 0;

		n += (size_t)sprintf(ja, "[");
		while (n < 2900)
			n += (size_t)sprintf(ja + n, "%zu,", n);
		ja[n - 1] = ']';
		memcpy(jb, ja, n);
		jb[n - 3] = jb[n - 3] == '9' ? '8' : '9';
		mk(&a, 200, "Content-Type: application/json", ja, n, 1000);
		mk(&b, 200, "Content-Type: application/json", jb, n, 1000);
		run(c, &a, &b);
		assert_false(c->a.json_ok);
		d = expect(c, "body", ST_CMP_BYTES);
	}
	c->r.max_body = 0;
	/* a body on one side only */
	mk(&a, 200, "", "x", 1, 0);
	mk(&b, 200, "", NULL, 0, 0);
	run(c, &a, &b);
	expect(c, "body", ST_CMP_BYTES);
}

/* --correlate: a value pair list in the shadow's message explains its own sessions and ids
 * (whole values and tokens inside one), and nothing else. */
static void test_correlated(void **state)
{
	struct ctx *c = *state;
	static struct tmsg ta, tb;
	/* tok-prod-1 -> tok-shadow-22, uuid-aaaa -> uuid-bbbbbb */
	static const char corr[] = "\x0a\x00\x0d\x00tok-prod-1tok-shadow-22"
				   "\x09\x00\x0b\x00uuid-aaaauuid-bbbbbb";
	const char *a = "{\"token\":\"tok-prod-1\",\"loc\":\"/orders/uuid-aaaa?x=1\","
			"\"other\":\"uuid-aaaa\",\"name\":\"alice\"}";
	const char *b = "{\"token\":\"tok-shadow-22\",\"loc\":\"/orders/uuid-bbbbbb?x=1\","
			"\"other\":\"uuid-cccc\",\"name\":\"bob\"}";

	mk(&ta, 201, "Content-Type: application/json\nLocation: /orders/uuid-aaaa", a, strlen(a), 0);
	mk(&tb, 201, "Content-Type: application/json\nLocation: /orders/uuid-bbbbbb", b, strlen(b), 0);
	run(c, &ta, &tb);
	expect_n(c, 5); /* without the list: every value differs */
	assert_int_equal(c->d.correlated, 0);
	tb.m.corr = corr;
	tb.m.corr_len = sizeof(corr) - 1;
	run(c, &ta, &tb);
	expect(c, "$.other", ST_CMP_VALUE); /* another value than the mapped one */
	expect(c, "$.name", ST_CMP_VALUE);
	expect_n(c, 2);
	assert_int_equal(c->d.correlated, 3); /* $.token, $.loc, the Location field */
	/* where, for the report's correlated fields */
	assert_int_equal(c->d.ncorr, 3);
	assert_string_equal(c->d.corr_at[0].path, "headers.location");
	assert_string_equal(c->d.corr_at[1].path, "$.token");
	assert_string_equal(c->d.corr_at[2].path, "$.loc");
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->d.corr_at[i].count, 1);
	/* a comparison starts afresh */
	tb.m.corr = NULL;
	tb.m.corr_len = 0;
	run(c, &ta, &tb);
	assert_int_equal(c->d.ncorr, 0);
	/* more correlated paths than kept: all counted, the first ST_CMP_CORR_PATHS named */
	{
		static char ja[1024], jb[1024];
		size_t la = 0, lb = 0;

		for (int i = 0; i < ST_CMP_CORR_PATHS + 4; i++) {
			la += (size_t)snprintf(ja + la, sizeof(ja) - la, "%s\"k%02d\":\"tok-prod-1\"",
					       i ? "," : "{", i);
			lb += (size_t)snprintf(jb + lb, sizeof(jb) - lb, "%s\"k%02d\":\"tok-shadow-22\"",
					       i ? "," : "{", i);
		}
		strcat(ja, "}");
		strcat(jb, "}");
		mk(&ta, 200, "Content-Type: application/json", ja, strlen(ja), 0);
		mk(&tb, 200, "Content-Type: application/json", jb, strlen(jb), 0);
		tb.m.corr = corr;
		tb.m.corr_len = sizeof(corr) - 1;
		run(c, &ta, &tb);
		expect_n(c, 0);
		assert_int_equal(c->d.correlated, ST_CMP_CORR_PATHS + 4);
		assert_int_equal(c->d.ncorr, ST_CMP_CORR_PATHS);
		assert_string_equal(c->d.corr_at[ST_CMP_CORR_PATHS - 1].path, "$.k15");
	}
}

static void test_shapes(void **state)
{
	static const char *const vol[] = {
		"\"0b1c6f4e-2d3a-4b5c-8d9e-0f1a2b3c4d5e\"", "\"5f3a9c2e7b1d4f6a\"",
		"\"2026-11-26T10:08:00Z\"", "1764151680", "1764151680.123", "1764151680123",
		"\"Thu, 26 Nov 2026 10:08:00 GMT\"", "\"aZ3kQ9xP2mW7rT5yU8vB1nC\"",
	};
	static const char *const stable[] = {
		"12.5", "\"EUR\"", "true", "\"hello world\"", "42", "\"2026\"", "\"abcdefabcdefabcdefzz\"",
	};

	for (size_t i = 0; i < sizeof(vol) / sizeof(vol[0]); i++)
		if (!st_cmp_looks_volatile(vol[i], strlen(vol[i]))) {
			print_error("not volatile: %s\n", vol[i]);
			fail();
		}
	for (size_t i = 0; i < sizeof(stable) / sizeof(stable[0]); i++)
		if (st_cmp_looks_volatile(stable[i], strlen(stable[i]))) {
			print_error("volatile: %s\n", stable[i]);
			fail();
		}
	assert_true(st_cmp_looks_id("123", 3));
	assert_true(st_cmp_looks_id("0b1c6f4e-2d3a-4b5c-8d9e-0f1a2b3c4d5e", 36));
	assert_false(st_cmp_looks_id("users", 5));
	assert_false(st_cmp_looks_id("v2", 2));
}

/* The volatile flag of a difference: both values look like ids or timestamps. */
static void test_volatile_flag(void **state)
{
	struct ctx *c = *state;

	json(c, "{\"id\": \"5f3a9c2e7b1d4f6a9988\", \"t\": 1764151680.123, \"p\": 1}",
	     "{\"id\": \"aa3a9c2e7b1d4f6a9988\", \"t\": 1764151681.456, \"p\": 2}");
	assert_true(expect(c, "$.id", ST_CMP_VALUE)->vol);
	assert_true(expect(c, "$.t", ST_CMP_VALUE)->vol);
	assert_false(expect(c, "$.p", ST_CMP_VALUE)->vol);
}

/* More distinct paths than kept: counted, never overflowed. */
static void test_many_paths(void **state)
{
	struct ctx *c = *state;
	static char a[65536], b[65536];
	size_t na = 1, nb = 1;

	a[0] = b[0] = '{';
	for (int i = 0; i < 400; i++) {
		na += (size_t)sprintf(a + na, "%s\"k%d\":1", i ? "," : "", i);
		nb += (size_t)sprintf(b + nb, "%s\"k%d\":2", i ? "," : "", i);
	}
	strcpy(a + na, "}");
	strcpy(b + nb, "}");
	json(c, a, b);
	assert_int_equal(c->d.n, ST_CMP_DIFFS_MAX);
	assert_int_equal(c->d.more, 400 - ST_CMP_DIFFS_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_nesting_and_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_numbers_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grpc_protobuf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_binary_and_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_correlated, setup, teardown),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test_setup_teardown(test_volatile_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_paths, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
