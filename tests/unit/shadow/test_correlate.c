/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/shadow/correlate.c (--correlate): value shapes; learning by place from
 * real answers framed by http.c (Set-Cookie by name, JSON by path at any depth, Location and
 * named headers, URL-encoded forms by name, gzip and deflate bodies inflated and bounded,
 * minimum lengths, a value that maps to two values); pending values and their
 * wait; rewriting every place of a request (and the rewritten request framing as one whole
 * request with http.c, Content-Length and chunked framing matching); whole tokens only; the
 * LRU under its memory cap, the TTL. HTTP/2: learning from an answer's decoded fields and DATA
 * (as the engine's HTTP/2 paths hand them over), rewriting a decoded header list and its body
 * (same fields in the same order, content-length following the body, gRPC bodies left alone).
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

#include <zlib.h>

#include "correlate.h"
#include "http.h"

#define MS 1000000ull
#define JWT_P "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXByb2R1Y3Rpb24"
#define JWT_T "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2hhZG93LXNpZ25hdHVyZQ"
#define UUID_P "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define UUID_T "9f0c1a3e-7d2b-4c5e-8a6f-123456789abc"

/* An answer framed by http.c from its wire bytes raw[0, len), as the engine collects it;
 * held (or NULL) counts what it holds, up to 1 MiB. */
static void ans_from_held(const struct st_correlate_config *cfg, const char *raw, size_t len,
			  uint64_t *held, struct st_correlate_ans *a)
{
	struct st_http_parser p;
	struct st_http_event ev;
	const char *s = raw;

	memset(a, 0, sizeof(*a));
	a->held = held;
	a->held_max = 1u << 20;
	assert_int_equal(st_http__init(&p, ST_HTTP_RESPONSE, NULL), 0);
	assert_int_equal(st_http__push_method(&p, ST_HTTP_M_GET), 0);
	for (;;) {
		const char *at = s;
		size_t n = st_http__feed(&p, s, len, &ev);

		s += n;
		len -= n;
		if (ev.type == ST_HTTP_EV_HEAD)
			st_correlate_ans_head(a, cfg, ev.head);
		else if (ev.type == ST_HTTP_EV_BODY && ev.data_len)
			st_correlate_ans_body(a, at, n);
		else if (ev.type == ST_HTTP_EV_MSG_DONE)
			break;
		assert_int_not_equal(ev.type, ST_HTTP_EV_ERROR);
		assert_int_not_equal(ev.type, ST_HTTP_EV_NEED_MORE);
	}
	a->done = true;
	st_http__free(&p);
}

static void ans_from_len(const struct st_correlate_config *cfg, const char *raw, size_t len,
			 struct st_correlate_ans *a)
{
	ans_from_held(cfg, raw, len, NULL, a);
}

static void ans_from(const struct st_correlate_config *cfg, const char *raw,
		     struct st_correlate_ans *a)
{
	ans_from_len(cfg, raw, strlen(raw), a);
}

static struct st_correlate *new_map(const struct st_correlate_config *cfg)
{
	struct st_correlate *c = st_correlate__new(cfg, 12345);

	assert_non_null(c);
	return c;
}

/* The target's value of production's value v now, or NULL. */
static const char *mapped(struct st_correlate *c, const char *v, uint64_t now)
{
	static char buf[512];
	const char *o;
	size_t on;

	if (st_correlate__lookup(c, v, strlen(v), now, &o, &on) != ST_COR_MAPPED)
		return NULL;
	memcpy(buf, o, on);
	buf[on] = 0;
	return buf;
}

static void learn(struct st_correlate *c, const struct st_correlate_config *cfg, const char *prod,
		  const char *tgt, uint64_t now)
{
	struct st_correlate_ans p, t;

	ans_from(cfg, prod, &p);
	ans_from(cfg, tgt, &t);
	st_correlate__learn(c, &p, &t, now);
	st_correlate_ans_free(&p);
	st_correlate_ans_free(&t);
}

static void test_shapes(void **state)
{
	(void)state;
	assert_true(st_correlate_is_jwt(JWT_P, strlen(JWT_P)));
	assert_false(st_correlate_is_jwt("eyJ.abc", 7));
	assert_false(st_correlate_is_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIi", 29)); /* two parts */
	assert_true(st_correlate_is_uuid(UUID_P, 36));
	assert_false(st_correlate_is_uuid("1b4e28ba-2fa1-11d2-883f-0016d3cca42g", 36));
	assert_true(st_correlate_is_token(UUID_P, 36));
	assert_true(st_correlate_is_token("0123456789abcdef", 16));        /* hex >= 16 */
	assert_false(st_correlate_is_token("0123456789abcde", 15));
	assert_true(st_correlate_is_token("dGhpcyBpcyBhIHNlY3JldA==", 24)); /* base64 */
	assert_false(st_correlate_is_token("application/json", 16));       /* a word */
	assert_false(st_correlate_is_token("hello world this is", 19));
	assert_true(st_correlate_is_id_name("access_token", 12));
	assert_true(st_correlate_is_id_name("sid", 3));
	assert_true(st_correlate_is_id_name("user_id", 7));
	assert_true(st_correlate_is_id_name("orderId", 7));
	assert_true(st_correlate_is_id_name("sessionKey", 10));
	assert_false(st_correlate_is_id_name("name", 4));
	assert_false(st_correlate_is_id_name("paid", 4));                  /* not camel Id */
	assert_false(st_correlate_is_id_name("valid", 5));
}

static void test_learn_cookies(void **state)
{
	struct st_correlate_config cfg = { .wait_ns = 300 * MS };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_stats st;

	(void)state;
	learn(c, &cfg,
	      "HTTP/1.1 200 OK\r\nSet-Cookie: sid=prodSESSION12345; Path=/; HttpOnly\r\n"
	      "Set-Cookie: theme=dark\r\nSet-Cookie: csrf=\"samesamesame1\"\r\n"
	      "Set-Cookie: lang=en-GB-x\r\nSet-Cookie: tok=****************\r\n"
	      "Content-Length: 0\r\n\r\n",
	      "HTTP/1.1 200 OK\r\nSet-Cookie: lang=fr-FR-yy\r\nSet-Cookie: csrf=\"samesamesame1\"\r\n"
	      "Set-Cookie: theme=light\r\nSet-Cookie: sid=shadowSESSION987; Path=/\r\n"
	      "Set-Cookie: tok=shadowTOKEN00001\r\n"
	      "Content-Length: 0\r\n\r\n", 1);
	assert_string_equal(mapped(c, "prodSESSION12345", 2), "shadowSESSION987");
	assert_null(mapped(c, "dark", 2));            /* shorter than the minimum */
	assert_null(mapped(c, "en-GB-x", 2));         /* 7 < 8 */
	assert_null(mapped(c, "samesamesame1", 2));   /* the same in both */
	assert_null(mapped(c, "****************", 2)); /* what redaction leaves: no value */
	st_correlate__stats(c, &st);
	assert_int_equal(st.learned, 1);
	st_correlate__free(c);
}

static void test_learn_json(void **state)
{
	struct st_correlate_config cfg = { .fields = { "$.meta.code", "$..ref" }, .n_fields = 2 };
	struct st_correlate *c = new_map(&cfg);
	char prod[1024], tgt[1024];
	const char *pb = "{\"access_token\":\"" JWT_P "\",\"user\":{\"user_id\":\"u-00000001\","
			 "\"name\":\"alice-the-first\",\"count\":12345678,"
			 "\"orders\":[{\"id\":\"" UUID_P "\"},{\"id\":\"same-same-id\"}]},"
			 "\"meta\":{\"code\":\"A1B2\",\"other\":\"C3D4\"},\"x\":{\"ref\":\"r001\"},"
			 "\"note\":\"0123456789abcdef0123\"}";
	const char *tb = "{\"note\":\"fedcba9876543210fedc\",\"x\":{\"ref\":\"r999\"},"
			 "\"meta\":{\"other\":\"C9D9\",\"code\":\"Z9Y8\"},"
			 "\"user\":{\"orders\":[{\"id\":\"" UUID_T "\"},{\"id\":\"same-same-id\"}],"
			 "\"count\":87654321,\"name\":\"alice-the-other\",\"user_id\":\"u-00000777\"},"
			 "\"access_token\":\"" JWT_T "\"}";

	(void)state;
	snprintf(prod, sizeof(prod),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(pb), pb);
	/* the target's answer chunked: the body is decoded before learning */
	snprintf(tgt, sizeof(tgt),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
		 (size_t)10, 10, tb, strlen(tb) - 10, tb + 10);
	learn(c, &cfg, prod, tgt, 1);
	assert_string_equal(mapped(c, JWT_P, 2), JWT_T);           /* by name and shape */
	assert_string_equal(mapped(c, UUID_P, 2), UUID_T);         /* in an array, by index */
	assert_string_equal(mapped(c, "u-00000001", 2), "u-00000777"); /* *_id */
	assert_string_equal(mapped(c, "0123456789abcdef0123", 2), "fedcba9876543210fedc"); /* hex */
	assert_string_equal(mapped(c, "A1B2", 2), "Z9Y8");         /* named: 4 is enough */
	assert_string_equal(mapped(c, "r001", 2), "r999");         /* $..ref */
	assert_null(mapped(c, "C3D4", 2));                         /* not named */
	assert_null(mapped(c, "alice-the-first", 2));              /* not an id */
	assert_null(mapped(c, "12345678", 2));                     /* a count */
	assert_null(mapped(c, "same-same-id", 2));
	st_correlate__free(c);

	/* compressed or not JSON: nothing from the body */
	cfg.n_fields = 0;
	c = new_map(&cfg);
	learn(c, &cfg,
	      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\n"
	      "{\"sid\":\"sid-prod-00001\"}",
	      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\n"
	      "{\"sid\":\"sid-tgt-000099\"}", 1);
	assert_null(mapped(c, "sid-prod-00001", 2));
	/* no media type: JSON by content */
	learn(c, &cfg, "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-prod-00001\"}",
	      "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-tgt-000099\"}", 1);
	assert_string_equal(mapped(c, "sid-prod-00001", 2), "sid-tgt-000099");
	st_correlate__free(c);
}

/* A URL-encoded form answer (OAuth's token endpoint answers so): values by name, decoded. */
static void test_learn_form(void **state)
{
	struct st_correlate_config cfg = { .fields = { "$.code" }, .n_fields = 1 };
	struct st_correlate *c = new_map(&cfg);
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-www-form-urlencoded"
				   "\r\nContent-Length: %zu\r\n\r\n%s";
	const char *pb = "access_token=tokProd0123456789abcdef&token_type=bearer&expires_in=36000000"
			 "&refresh_token=rfP%2Bdef%2Fghijklmnop12345&code=A1B2&note=two+words+here";
	const char *tb = "token_type=bearer&access_token=tokTgt00123456789abcdef&expires_in=36000000"
			 "&refresh_token=rfT%2Bxyz%2Fghijklmnop99999&code=Z9Y8&note=two+other+words";
	char prod[1024], tgt[1024];

	(void)state;
	snprintf(prod, sizeof(prod), head, strlen(pb), pb);
	snprintf(tgt, sizeof(tgt), head, strlen(tb), tb);
	learn(c, &cfg, prod, tgt, 1);
	assert_string_equal(mapped(c, "tokProd0123456789abcdef", 2), "tokTgt00123456789abcdef");
	assert_string_equal(mapped(c, "rfP+def/ghijklmnop12345", 2), "rfT+xyz/ghijklmnop99999");
	assert_null(mapped(c, "rfP%2Bdef%2Fghijklmnop12345", 2)); /* learned decoded */
	assert_string_equal(mapped(c, "A1B2", 2), "Z9Y8");         /* named: $.code */
	assert_null(mapped(c, "two words here", 2));               /* not an id */
	assert_null(mapped(c, "bearer", 2));
	st_correlate__free(c);
	/* the same bytes as text/plain: not a form (nor JSON) */
	c = new_map(&cfg);
	snprintf(prod, sizeof(prod), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %zu\r\n\r\n%s", strlen(pb), pb);
	snprintf(tgt, sizeof(tgt), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %zu\r\n\r\n%s", strlen(tb), tb);
	learn(c, &cfg, prod, tgt, 1);
	assert_null(mapped(c, "tokProd0123456789abcdef", 2));
	st_correlate__free(c);
}

/* An answer with body compressed by zlib (gzip: wbits 16 + 15, deflate: 15), Content-Length
 * framed, or chunked in pieces of 7 bytes; its length. */
static size_t zipped(char *out, size_t cap, const char *coding, const char *body, size_t bn,
		     bool chunked)
{
	static unsigned char z[256 << 10];
	z_stream zs = { 0 };
	size_t zn, o;

	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, strcmp(coding, "deflate") ? 16 + 15 : 15,
				      8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)body;
	zs.avail_in = (uInt)bn;
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	zn = sizeof(z) - zs.avail_out;
	deflateEnd(&zs);
	o = (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "Content-Encoding: %s\r\n", coding);
	if (!chunked) {
		o += (size_t)snprintf(out + o, cap - o, "Content-Length: %zu\r\n\r\n", zn);
		assert_true(o + zn <= cap);
		memcpy(out + o, z, zn);
		return o + zn;
	}
	o += (size_t)snprintf(out + o, cap - o, "Transfer-Encoding: chunked\r\n\r\n");
	for (size_t i = 0; i < zn; i += 7) {
		size_t k = zn - i < 7 ? zn - i : 7;

		o += (size_t)snprintf(out + o, cap - o, "%zx\r\n", k);
		assert_true(o + k + 2 <= cap);
		memcpy(out + o, z + i, k);
		memcpy(out + o + k, "\r\n", 2);
		o += k + 2;
	}
	o += (size_t)snprintf(out + o, cap - o, "0\r\n\r\n");
	return o;
}

static void learn_len(struct st_correlate *c, const struct st_correlate_config *cfg,
		      const char *prod, size_t pn, const char *tgt, size_t tn)
{
	struct st_correlate_ans p, t;

	ans_from_len(cfg, prod, pn, &p);
	ans_from_len(cfg, tgt, tn, &t);
	st_correlate__learn(c, &p, &t, 1);
	st_correlate_ans_free(&p);
	st_correlate_ans_free(&t);
}

/* gzip and deflate bodies are inflated as they come (in pieces) and learned from; one that
 * inflates past ST_CORRELATE_BODY_MAX, one that does not inflate, another coding: not. */
static void test_learn_compressed(void **state)
{
	struct st_correlate_config cfg = { 0 };
	static char prod[300 << 10], tgt[300 << 10], big[ST_CORRELATE_BODY_MAX + 64];
	const char *pb = "{\"session\":\"sid-prod-00001\",\"id\":\"" UUID_P "\"}";
	const char *tb = "{\"session\":\"sid-tgt-000099\",\"id\":\"" UUID_T "\"}";
	static const char *const codings[] = { "gzip", "x-gzip", "deflate" };
	struct st_correlate *c;
	size_t pn, tn;

	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		c = new_map(&cfg);
		pn = zipped(prod, sizeof(prod), codings[k], pb, strlen(pb), false);
		tn = zipped(tgt, sizeof(tgt), codings[k], tb, strlen(tb), true);
		learn_len(c, &cfg, prod, pn, tgt, tn);
		assert_string_equal(mapped(c, "sid-prod-00001", 2), "sid-tgt-000099");
		assert_string_equal(mapped(c, UUID_P, 2), UUID_T);
		st_correlate__free(c);
	}
	/* what an answer holds is counted: the inflater while it lives (ended at the stream's
	 * end), the body inflated */
	{
		struct st_correlate_ans a;
		uint64_t held = 0;

		tn = zipped(tgt, sizeof(tgt), "gzip", tb, strlen(tb), true);
		ans_from_held(&cfg, tgt, tn, &held, &a);
		assert_null(a.z);
		assert_int_equal(a.body_len, strlen(tb));
		assert_int_equal(held, (uint64_t)a.hdr_len + a.body_len);
		st_correlate_ans_free(&a);
		assert_int_equal(held, 0);
	}
	/* a body that inflates past the cap (a few hundred bytes on the wire) */
	c = new_map(&cfg);
	snprintf(big, sizeof(big), "{\"session\":\"sid-prod-00001\",\"pad\":\"");
	memset(big + strlen(big), 'a', sizeof(big) - strlen(big) - 3);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	pn = zipped(prod, sizeof(prod), "gzip", big, strlen(big), false);
	assert_true(pn < 1024);
	big[21] = '9'; /* the target's session */
	tn = zipped(tgt, sizeof(tgt), "gzip", big, strlen(big), false);
	learn_len(c, &cfg, prod, pn, tgt, tn);
	assert_null(mapped(c, "sid-prod-00001", 2));
	/* not what it says: gzip that is not; another coding */
	learn(c, &cfg, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		       "Content-Encoding: gzip\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-prod-00001\"}",
	      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	      "Content-Encoding: gzip\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-tgt-000099\"}", 1);
	assert_null(mapped(c, "sid-prod-00001", 2));
	learn(c, &cfg, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		       "Content-Encoding: br\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-prod-00001\"}",
	      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	      "Content-Encoding: br\r\nContent-Length: 24\r\n\r\n{\"sid\":\"sid-tgt-000099\"}", 1);
	assert_null(mapped(c, "sid-prod-00001", 2));
	st_correlate__free(c);
}

static void test_learn_headers(void **state)
{
	struct st_correlate_config cfg = { .headers = { "X-Session" }, .n_headers = 1 };
	struct st_correlate *c = new_map(&cfg);

	(void)state;
	learn(c, &cfg,
	      "HTTP/1.1 201 Created\r\nLocation: /orders/" UUID_P "?v=1\r\nX-Session: ab+c/d==\r\n"
	      "X-Other: 0123456789abcdef\r\nContent-Length: 0\r\n\r\n",
	      "HTTP/1.1 201 Created\r\nLocation: /orders/" UUID_T "?v=1\r\nX-Session: zz+y/x==\r\n"
	      "X-Other: fedcba9876543210\r\nContent-Length: 0\r\n\r\n", 1);
	assert_string_equal(mapped(c, UUID_P, 2), UUID_T);
	assert_string_equal(mapped(c, "ab+c/d==", 2), "zz+y/x=="); /* named: the whole value */
	assert_null(mapped(c, "orders", 2));
	assert_null(mapped(c, "0123456789abcdef", 2));            /* a header nobody named */
	st_correlate__free(c);
}

static void test_conflict(void **state)
{
	struct st_correlate_config cfg = { 0 };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_stats st;

	(void)state;
	assert_int_equal(st_correlate__put(c, "prodvalue1", 10, "tgtvalue11", 10, 1), 1);
	assert_int_equal(st_correlate__put(c, "prodvalue1", 10, "tgtvalue11", 10, 2), 0); /* again */
	assert_string_equal(mapped(c, "prodvalue1", 3), "tgtvalue11");
	/* the same production value, another target value: never rewritten again */
	assert_int_equal(st_correlate__put(c, "prodvalue1", 10, "tgtvalue22", 10, 4), 0);
	assert_null(mapped(c, "prodvalue1", 5));
	assert_int_equal(st_correlate__put(c, "prodvalue1", 10, "tgtvalue11", 10, 6), 0);
	assert_null(mapped(c, "prodvalue1", 7));
	st_correlate__stats(c, &st);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.learned, 1);
	st_correlate__free(c);
}

static void test_pending(void **state)
{
	struct st_correlate_config cfg = { .wait_ns = 300 * MS };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_ans p, t;
	const char *o;
	size_t on;
	const char *prod = "HTTP/1.1 200 OK\r\nSet-Cookie: sid=prodSESSION12345\r\n"
			   "Set-Cookie: keep=constant-value-1\r\nContent-Length: 0\r\n\r\n";

	(void)state;
	ans_from(&cfg, prod, &p);
	st_correlate__expect(c, &p, 1000 * MS);
	assert_int_equal(st_correlate__lookup(c, "prodSESSION12345", 16, 1100 * MS, &o, &on),
			 ST_COR_PENDING);
	assert_int_equal(st_correlate__lookup(c, "constant-value-1", 16, 1100 * MS, &o, &on),
			 ST_COR_PENDING);
	ans_from(&cfg, "HTTP/1.1 200 OK\r\nSet-Cookie: sid=shadowSESSION987\r\n"
		       "Set-Cookie: keep=constant-value-1\r\nContent-Length: 0\r\n\r\n", &t);
	st_correlate__learn(c, &p, &t, 1200 * MS);
	assert_string_equal(mapped(c, "prodSESSION12345", 1200 * MS), "shadowSESSION987");
	/* the same value in both: settled, nothing to wait for */
	assert_int_equal(st_correlate__lookup(c, "constant-value-1", 16, 1200 * MS, &o, &on),
			 ST_COR_UNKNOWN);
	st_correlate_ans_free(&t);
	/* a target that never answers: the value is pending for twice the wait, then unknown */
	st_correlate__free(c);
	c = new_map(&cfg);
	st_correlate__expect(c, &p, 1000 * MS);
	assert_int_equal(st_correlate__lookup(c, "prodSESSION12345", 16, 1599 * MS, &o, &on),
			 ST_COR_PENDING);
	assert_int_equal(st_correlate__lookup(c, "prodSESSION12345", 16, 1601 * MS, &o, &on),
			 ST_COR_UNKNOWN);
	st_correlate_ans_free(&p);
	st_correlate__free(c);
}

static void explained(void *ctx, const char *pv, size_t pn, const char *tv, size_t tn)
{
	char *out = ctx;

	snprintf(out + strlen(out), 512 - strlen(out), "%.*s>%.*s;", (int)pn, pv, (int)tn, tv);
}

/* What the map knows of an answer: the pairs tap compare gets. */
static void test_explain(void **state)
{
	struct st_correlate_config cfg = { 0 };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_ans p;
	char out[512] = "";

	(void)state;
	st_correlate__put(c, UUID_P, 36, UUID_T, 36, 1);
	st_correlate__put(c, "u-00000001", 10, "u-00000777", 10, 1);
	ans_from(&cfg, "HTTP/1.1 200 OK\r\nLocation: /orders/" UUID_P "\r\nContent-Length: 44\r\n\r\n"
		       "{\"user_id\":\"u-00000001\",\"other\":\"u-0000000\"}", &p);
	st_correlate__explain(c, &p, 2, explained, out);
	assert_string_equal(out, UUID_P ">" UUID_T ";u-00000001>u-00000777;");
	st_correlate_ans_free(&p);
	st_correlate__free(c);
}

/* ---- rewriting -------------------------------------------------------------------------------- */

static const char *const table[][2] = {
	{ "prodSESSION12345", "shadowSESSION987" },
	{ JWT_P, JWT_T },
	{ UUID_P, UUID_T },
	{ "alice", "bob-the-builder" },          /* user of Basic (short names may be named) */
	{ "pw-prod-1234", "pw-shadow-9" },
	{ "ab+c/d==", "zz+y/x==" },
};

static enum st_correlate_hit tab_fn(void *ctx, const char *v, size_t n, const char **out,
				    size_t *outlen)
{
	(void)ctx;
	if (n == 14 && !memcmp(v, "pendingvalue01", 14))
		return ST_COR_PENDING;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i][0]) == n && !memcmp(table[i][0], v, n)) {
			*out = table[i][1];
			*outlen = strlen(table[i][1]);
			return ST_COR_MAPPED;
		}
	return ST_COR_UNKNOWN;
}

/* Rewrites req; checks that the result frames as exactly one request whose body has
 * body_len bytes; returns it (static). */
static const char *rewrite(const char *req, int want, size_t body_len, unsigned *pending)
{
	static char res[8192];
	struct st_correlate_out out = { 0 };
	struct st_http_parser p;
	struct st_http_event ev;
	int r = st_correlate_rewrite((const uint8_t *)req, strlen(req), tab_fn, NULL, &out);
	const char *s;
	size_t len;

	assert_int_equal(r, want);
	if (pending)
		*pending = out.pending;
	if (r != 1) {
		st_correlate_out_free(&out);
		return req;
	}
	assert_true(out.len < sizeof(res));
	memcpy(res, out.buf, out.len);
	res[out.len] = 0;
	st_correlate_out_free(&out);
	assert_int_equal(st_http__init(&p, ST_HTTP_REQUEST, NULL), 0);
	s = res;
	len = strlen(res);
	for (;;) {
		size_t n = st_http__feed(&p, s, len, &ev);

		s += n;
		len -= n;
		assert_int_not_equal(ev.type, ST_HTTP_EV_ERROR);
		assert_int_not_equal(ev.type, ST_HTTP_EV_NEED_MORE);
		if (ev.type == ST_HTTP_EV_MSG_DONE)
			break;
	}
	assert_int_equal(len, 0);
	assert_int_equal(ev.body_len, body_len);
	st_http__free(&p);
	return res;
}

/* Production's places are made once (expect) and kept with its answer for every target's
 * learning and tap compare's explaining, counted in the answers' bytes; past their cap they
 * are made again each time, with the same result. */
static void test_places_kept(void **state)
{
	struct st_correlate_config cfg = { .wait_ns = 300 * MS };
	const char *prod = "HTTP/1.1 200 OK\r\nSet-Cookie: sid=prodSESSION12345\r\n"
			   "Content-Type: application/json\r\nContent-Length: 45\r\n\r\n"
			   "{\"id\":\"" UUID_P "\"}";
	const char *tgt[2] = { "HTTP/1.1 200 OK\r\nSet-Cookie: sid=shadowSESSION987\r\n"
			       "Content-Length: 45\r\n\r\n{\"id\":\"" UUID_T "\"}",
			       "HTTP/1.1 200 OK\r\nSet-Cookie: sid=otherSESSION5555\r\n"
			       "Content-Length: 0\r\n\r\n" };
	static const char *const want[2] = { "shadowSESSION987", "otherSESSION5555" };

	(void)state;
	for (int cap = 0; cap < 2; cap++) {
		struct st_correlate *c[2] = { new_map(&cfg), new_map(&cfg) };
		struct st_correlate_ans p, t;
		uint64_t held, bytes;
		char out[512] = "";

		ans_from(&cfg, prod, &p);
		bytes = held = (uint64_t)p.hdr_len + p.body_len;
		p.held = &held;
		p.held_max = cap ? held : 1u << 20; /* the second time: no room for the places */
		for (int k = 0; k < 2; k++) {
			st_correlate__expect(c[k], &p, 1000 * MS);
			assert_int_equal(p.pl != NULL, !cap);
			assert_true(cap ? held == bytes : held > bytes);
			ans_from(&cfg, tgt[k], &t);
			assert_int_equal(st_correlate__learn(c[k], &p, &t, 1100 * MS), k ? 1 : 2);
			st_correlate_ans_free(&t);
			assert_string_equal(mapped(c[k], "prodSESSION12345", 1200 * MS), want[k]);
		}
		assert_string_equal(mapped(c[0], UUID_P, 1200 * MS), UUID_T);
		st_correlate__explain(c[0], &p, 1200 * MS, explained, out);
		assert_string_equal(out, "prodSESSION12345>shadowSESSION987;" UUID_P ">" UUID_T ";");
		st_correlate_ans_free(&p);
		assert_int_equal(held, 0);
		st_correlate__free(c[0]);
		st_correlate__free(c[1]);
	}
}

static void test_rewrite_head(void **state)
{
	unsigned pend;
	const char *r;

	(void)state;
	r = rewrite("GET /orders/" UUID_P "/items?sid=prodSESSION12345&x=1 HTTP/1.1\r\n"
		    "Host: a\r\nCookie: theme=dark; sid=prodSESSION12345;other=pendingvalue01\r\n"
		    "Authorization: Bearer " JWT_P "\r\nX-Session: ab+c/d==\r\n\r\n", 1, 0, &pend);
	assert_string_equal(r, "GET /orders/" UUID_T "/items?sid=shadowSESSION987&x=1 HTTP/1.1\r\n"
			       "Host: a\r\nCookie: theme=dark; sid=shadowSESSION987;other=pendingvalue01\r\n"
			       "Authorization: Bearer " JWT_T "\r\nX-Session: zz+y/x==\r\n\r\n");
	assert_int_equal(pend, 1);
	/* Basic: alice:pw-prod-1234 -> bob-the-builder:pw-shadow-9 */
	r = rewrite("GET / HTTP/1.1\r\nAuthorization: Basic YWxpY2U6cHctcHJvZC0xMjM0\r\n\r\n", 1, 0,
		    NULL);
	assert_string_equal(r, "GET / HTTP/1.1\r\nAuthorization: Basic "
			       "Ym9iLXRoZS1idWlsZGVyOnB3LXNoYWRvdy05\r\n\r\n");
	/* whole tokens only: inside a longer token, nothing */
	rewrite("GET /x" UUID_P " HTTP/1.1\r\nX-A: prodSESSION12345x\r\nX-B: aprodSESSION12345\r\n"
		"\r\n", 0, 0, &pend);
	assert_int_equal(pend, 0);
	/* pending only: nothing rewritten, counted */
	rewrite("GET /pendingvalue01 HTTP/1.1\r\n\r\n", 0, 0, &pend);
	assert_int_equal(pend, 1);
}

static void test_rewrite_body(void **state)
{
	char req[2048];
	const char *r, *jb = "{\"token\":\"" JWT_P "\",\"order\":{\"id\":\"" UUID_P "\"},\"n\":1}";
	const char *jt = "{\"token\":\"" JWT_T "\",\"order\":{\"id\":\"" UUID_T "\"},\"n\":1}";

	(void)state;
	/* JSON: Content-Length follows the new length */
	snprintf(req, sizeof(req), "PUT /o HTTP/1.1\r\nContent-Type: application/json\r\n"
		 "Content-Length:  %zu \r\n\r\n%s", strlen(jb), jb);
	r = rewrite(req, 1, strlen(jt), NULL);
	assert_non_null(strstr(r, jt));
	assert_non_null(strstr(r, "Content-Length:  " ));
	/* a form */
	r = rewrite("POST /f HTTP/1.1\r\nContent-Length: 30\r\n\r\nsid=prodSESSION12345&a=b&c=dd",
		    -EINVAL, 0, NULL); /* 29 bytes: the length does not hold */
	r = rewrite("POST /f HTTP/1.1\r\nContent-Length: 30\r\n\r\nsid=prodSESSION12345&a=b&c=ddd",
		    1, 30, NULL);
	assert_non_null(strstr(r, "\r\n\r\nsid=shadowSESSION987&a=b&c=ddd"));
	/* chunked: one chunk, the trailers kept */
	r = rewrite("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5;ext=1\r\n{\"a\":\r\n1a\r\n\"prodSESSION12345\", \"b\":1}\r\n0\r\nX-T: 1\r\n\r\n",
		    1, strlen("{\"a\":\"shadowSESSION987\", \"b\":1}"), NULL);
	assert_non_null(strstr(r, "\r\n\r\n1f\r\n{\"a\":\"shadowSESSION987\", \"b\":1}\r\n0\r\n"
				  "X-T: 1\r\n\r\n"));
	/* nothing known: unchanged */
	rewrite("POST /c HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 0, 0, NULL);
	/* not a request this rewrites */
	rewrite("GET / HTTP/1.1\r\nX: y\r\n", -EINVAL, 0, NULL);          /* no end of head */
	rewrite("GET / HTTP/1.1\r\n bad: y\r\n\r\n", -EINVAL, 0, NULL);     /* folding */
	rewrite("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		-EINVAL, 0, NULL);
	rewrite("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n", -EINVAL,
		0, NULL);
}

/* ---- HTTP/2 ------------------------------------------------------------------------------------ */

/* An HTTP/2 answer as both of the engine's HTTP/2 paths hand it over: its decoded fields (lower
 * case, no reason phrase, several set-cookie fields, no content-length) as an st_http_head,
 * its DATA in frames. */
static void ans_h2(const struct st_correlate_config *cfg, unsigned status,
		   const struct st_http_header *f, uint32_t n, const char *body,
		   struct st_correlate_ans *a)
{
	struct st_http_head h = { .version_major = 2, .status = (uint16_t)status,
				  .headers = (struct st_http_header *)f, .nheaders = n,
				  .body = ST_HTTP_BODY_UNTIL_CLOSE };
	size_t len = strlen(body);

	memset(a, 0, sizeof(*a));
	st_correlate_ans_head(a, cfg, &h);
	st_correlate_ans_body(a, body, len / 2);            /* two DATA frames */
	st_correlate_ans_body(a, body + len / 2, len - len / 2);
	a->done = true;
}

#define HF(n, v) { .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1 }

static void test_learn_h2(void **state)
{
	struct st_correlate_config cfg = { 0 };
	struct st_correlate *c = new_map(&cfg);
	static const struct st_http_header pf[] = {
		HF("content-type", "application/json"),
		HF("set-cookie", "theme=dark-mode-on"),
		HF("set-cookie", "sid=prodSESSION12345; Path=/; HttpOnly"),
		HF("location", "/orders/" UUID_P),
	};
	static const struct st_http_header tf[] = {
		HF("set-cookie", "sid=shadowSESSION987; Path=/"),
		HF("location", "/orders/" UUID_T),
		HF("content-type", "application/json"),
		HF("set-cookie", "theme=dark-mode-on"),
	};
	struct st_correlate_ans p, t;

	(void)state;
	ans_h2(&cfg, 201, pf, 4, "{\"access_token\":\"" JWT_P "\",\"id\":\"" UUID_P "\"}", &p);
	ans_h2(&cfg, 201, tf, 4, "{\"id\":\"" UUID_T "\",\"access_token\":\"" JWT_T "\"}", &t);
	assert_int_equal(st_correlate__learn(c, &p, &t, 1), 3);
	assert_string_equal(mapped(c, "prodSESSION12345", 2), "shadowSESSION987");
	assert_string_equal(mapped(c, JWT_P, 2), JWT_T);
	assert_string_equal(mapped(c, UUID_P, 2), UUID_T);
	assert_null(mapped(c, "dark-mode-on", 2));
	st_correlate_ans_free(&p);
	st_correlate_ans_free(&t);
	st_correlate__free(c);
}

#define F2(n, v) { .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1 }

/* The field named n of out (NULL: none). */
static const char *h2_field(const struct st_correlate_h2out *out, const char *n, char *buf,
			    size_t cap)
{
	for (uint32_t i = 0; i < out->nfields; i++)
		if (strlen(n) == out->fields[i].name_len &&
		    !memcmp(n, out->fields[i].name, out->fields[i].name_len)) {
			assert_true(out->fields[i].value_len < cap);
			memcpy(buf, out->fields[i].value, out->fields[i].value_len);
			buf[out->fields[i].value_len] = 0;
			return buf;
		}
	return NULL;
}

static void test_rewrite_h2(void **state)
{
	const char *jb = "{\"token\":\"" JWT_P "\",\"order\":{\"id\":\"" UUID_P "\"},\"n\":1}";
	const char *jt = "{\"token\":\"" JWT_T "\",\"order\":{\"id\":\"" UUID_T "\"},\"n\":1}";
	char cl[16], v[512];
	struct st_h2_field f[] = {
		F2(":method", "PUT"),
		F2(":scheme", "prodSESSION12345"), /* never rewritten, whatever it holds */
		F2(":authority", "api.example"),
		F2(":path", "/orders/" UUID_P "?sid=prodSESSION12345&x=1"),
		F2("cookie", "theme=dark"),
		F2("cookie", "sid=prodSESSION12345"),   /* HTTP/2 splits cookies (RFC 9113 8.2.3) */
		F2("authorization", "Basic YWxpY2U6cHctcHJvZC0xMjM0"),
		F2("content-type", "application/json"),
		{ .name = "content-length", .name_len = 14, .value = cl },
		F2("x-other", "pendingvalue01"),
		F2("x-secret", "ab+c/d=="),
	};
	uint32_t n = sizeof(f) / sizeof(f[0]);
	struct st_correlate_h2out out = { 0 };

	(void)state;
	f[8].value_len = (uint32_t)snprintf(cl, sizeof(cl), "%zu", strlen(jb));
	f[10].flags = ST_H2_FF_NEVER_INDEX;
	assert_int_equal(st_correlate_rewrite_h2(f, n, (const uint8_t *)jb, strlen(jb), tab_fn, NULL,
						 &out), 1);
	assert_int_equal(out.nfields, n);
	for (uint32_t i = 0; i < n; i++) { /* the same names, in the same order, flags kept */
		assert_int_equal(out.fields[i].name_len, f[i].name_len);
		assert_memory_equal(out.fields[i].name, f[i].name, f[i].name_len);
		assert_int_equal(out.fields[i].flags, f[i].flags);
	}
	assert_string_equal(h2_field(&out, ":method", v, sizeof(v)), "PUT");
	assert_string_equal(h2_field(&out, ":scheme", v, sizeof(v)), "prodSESSION12345");
	assert_string_equal(h2_field(&out, ":authority", v, sizeof(v)), "api.example");
	assert_string_equal(h2_field(&out, ":path", v, sizeof(v)),
			    "/orders/" UUID_T "?sid=shadowSESSION987&x=1");
	assert_memory_equal(out.fields[4].value, "theme=dark", out.fields[4].value_len);
	assert_int_equal(out.fields[4].value_len, 10);
	assert_memory_equal(out.fields[5].value, "sid=shadowSESSION987", 20);
	assert_string_equal(h2_field(&out, "authorization", v, sizeof(v)),
			    "Basic Ym9iLXRoZS1idWlsZGVyOnB3LXNoYWRvdy05");
	assert_string_equal(h2_field(&out, "x-other", v, sizeof(v)), "pendingvalue01");
	assert_string_equal(h2_field(&out, "x-secret", v, sizeof(v)), "zz+y/x==");
	assert_int_equal(out.body_len, strlen(jt));
	assert_memory_equal(out.body, jt, strlen(jt));
	snprintf(cl, sizeof(cl), "%zu", strlen(jt));
	assert_string_equal(h2_field(&out, "content-length", v, sizeof(v)), cl);
	assert_int_equal(out.replaced, 8);
	assert_int_equal(out.pending, 1);

	/* gRPC: its metadata rewritten, its length-prefixed messages never */
	{
		struct st_h2_field g[] = {
			F2(":method", "POST"), F2(":path", "/shop.Cart/Get"),
			F2("content-type", "application/grpc+proto"),
			F2("authorization", "Bearer " JWT_P),
		};
		static const uint8_t msg[] = { 0, 0, 0, 0, 16, 'p', 'r', 'o', 'd', 'S', 'E', 'S', 'S',
					       'I', 'O', 'N', '1', '2', '3', '4', '5' };

		assert_int_equal(st_correlate_rewrite_h2(g, 4, msg, sizeof(msg), tab_fn, NULL, &out),
				 1);
		assert_string_equal(h2_field(&out, "authorization", v, sizeof(v)), "Bearer " JWT_T);
		assert_int_equal(out.body_len, sizeof(msg));
		assert_memory_equal(out.body, msg, sizeof(msg));
	}
	/* nothing known: 0, the pending value counted; an empty list */
	{
		struct st_h2_field g[] = { F2(":path", "/pendingvalue01/x"), F2("x-a", "hello") };

		assert_int_equal(st_correlate_rewrite_h2(g, 2, (const uint8_t *)"hi", 2, tab_fn, NULL,
							 &out), 0);
		assert_int_equal(out.pending, 1);
		assert_int_equal(out.nfields, 0);
		assert_int_equal(st_correlate_rewrite_h2(NULL, 0, NULL, 0, tab_fn, NULL, &out), 0);
	}
	st_correlate_h2out_free(&out);
}

/* ---- bounds ----------------------------------------------------------------------------------- */

static void test_lru_cap(void **state)
{
	struct st_correlate_config cfg = { .max_mem = 64 * 1024 };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_stats st;
	char pv[32], tv[32];

	(void)state;
	for (int i = 0; i < 4000; i++) {
		snprintf(pv, sizeof(pv), "prod-value-%06d", i);
		snprintf(tv, sizeof(tv), "tgt-value-%06d", i);
		st_correlate__put(c, pv, strlen(pv), tv, strlen(tv), 1);
		if (i >= 10)
			assert_non_null(mapped(c, "prod-value-000007", 1)); /* kept in use */
		st_correlate__stats(c, &st);
		assert_true(st.mem <= cfg.max_mem);
	}
	st_correlate__stats(c, &st);
	assert_int_equal(st.learned, 4000);
	assert_true(st.evicted > 2000);
	assert_int_equal(st.entries + st.evicted, 4000);
	assert_null(mapped(c, "prod-value-000008", 1));             /* evicted */
	assert_string_equal(mapped(c, "prod-value-003999", 1), "tgt-value-003999");
	st_correlate__free(c);
}

static void test_ttl(void **state)
{
	struct st_correlate_config cfg = { .ttl_ns = 1000 * MS };
	struct st_correlate *c = new_map(&cfg);
	struct st_correlate_stats st;

	(void)state;
	st_correlate__put(c, "prodvalue1", 10, "tgtvalue11", 10, 0);
	st_correlate__put(c, "prodvalue2", 10, "tgtvalue22", 10, 0);
	assert_non_null(mapped(c, "prodvalue1", 900 * MS));    /* used: its time starts again */
	st_correlate__expire(c, 1500 * MS);
	st_correlate__stats(c, &st);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 1);
	assert_non_null(mapped(c, "prodvalue1", 1800 * MS));
	assert_null(mapped(c, "prodvalue1", 2900 * MS));
	st_correlate__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_learn_cookies),
		cmocka_unit_test(test_learn_json),
		cmocka_unit_test(test_learn_form),
		cmocka_unit_test(test_learn_compressed),
		cmocka_unit_test(test_learn_headers),
		cmocka_unit_test(test_conflict),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_places_kept),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_rewrite_head),
		cmocka_unit_test(test_rewrite_body),
		cmocka_unit_test(test_learn_h2),
		cmocka_unit_test(test_rewrite_h2),
		cmocka_unit_test(test_lru_cap),
		cmocka_unit_test(test_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
