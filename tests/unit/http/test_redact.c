/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The redaction policy (redact.h): header values, URL userinfo and query values (in targets
 * and in Location/Content-Location/Refresh/Referer), chunked trailers, JSON fields at any
 * depth, JSON recognised by content; the default set, and --no-redact; lengths kept, JSON
 * still valid (agent/compare/json.c parses the result), the same result however the body or
 * the trailer section is split into pieces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"
#include "json.h"
#include "redact.h"

struct jcase {
	const char *in;
	const char *out;
	unsigned count;
	bool valid; /* the output is valid JSON */
};

static const struct jcase jcases[] = {
	{ "{\"user\":\"bob\",\"password\":\"hunter2\",\"n\":1}",
	  "{\"user\":\"bob\",\"password\":\"*******\",\"n\":1}", 1, true },
	{ "{\"a\":{\"token\":\"x\\\"y\",\"b\":[1,{\"token\":12.5e3}]}}",
	  "{\"a\":{\"token\":\"****\",\"b\":[1,{\"token\":0     }]}}", 2, true },
	{ "{\"secret\":{\"k\":\"v\",\"arr\":[true,false,null,-1]},\"z\":\"keep\"}",
	  "{\"secret\":{\"k\":\"*\",\"arr\":[null,null ,null,0 ]},\"z\":\"keep\"}", 1, true },
	{ "{\"x\":\"password\",\"list\":[\"password\"]}",
	  "{\"x\":\"password\",\"list\":[\"password\"]}", 0, true },
	{ " [ {\"password\" : \"a\"} , {\"password\":\"bb\"} , {} , [] ] ",
	  " [ {\"password\" : \"*\"} , {\"password\":\"**\"} , {} , [] ] ", 2, true },
	{ "{\"password\":[[\"a\",1],{\"q\":[]}],\"next\":\"ok\"}",
	  "{\"password\":[[\"*\",0],{\"q\":[]}],\"next\":\"ok\"}", 1, true },
	{ "{\"password\":\"a\"}\n{\"password\":\"bcd\"}\n",
	  "{\"password\":\"*\"}\n{\"password\":\"***\"}\n", 2, false /* JSON lines */ },
	{ "{\"a\" x \"password\":\"s\"}", "{\"a\" * \"********\":\"*\"}", 1, false },
};

static void jcheck(const struct jcase *c, const uint8_t *got, size_t len)
{
	assert_int_equal(len, strlen(c->out));
	if (memcmp(got, c->out, len))
		fail_msg("in  %s\ngot %.*s\nwant %s", c->in, (int)len, got, c->out);
	if (c->valid) {
		struct st_json_doc d;

		st_json_doc_init(&d, 0, 0);
		assert_int_equal(st_json_parse(&d, (const char *)got, len), 0);
		st_json_doc_free(&d);
	}
}

static void t_json_fields(void **state)
{
	struct st_redact_rules r = { .fields = { "password", "token", "secret" }, .n_fields = 3 };
	struct st_jredact j;
	uint8_t buf[512];

	for (size_t k = 0; k < sizeof(jcases) / sizeof(jcases[0]); k++) {
		const struct jcase *c = &jcases[k];
		size_t len = strlen(c->in);
		unsigned n;

		/* whole */
		memcpy(buf, c->in, len);
		st_jredact_reset(&j, true, false);
		n = st_jredact_feed(&j, &r, buf, len);
		jcheck(c, buf, len);
		assert_int_equal(n, c->count);
		/* in two pieces, split everywhere */
		for (size_t s = 0; s <= len; s++) {
			memcpy(buf, c->in, len);
			st_jredact_reset(&j, true, false);
			st_jredact_feed(&j, &r, buf, s);
			st_jredact_feed(&j, &r, buf + s, len - s);
			jcheck(c, buf, len);
		}
		/* a byte at a time */
		memcpy(buf, c->in, len);
		st_jredact_reset(&j, true, false);
		for (size_t s = 0; s < len; s++)
			st_jredact_feed(&j, &r, buf + s, 1);
		jcheck(c, buf, len);
	}
	/* off: nothing changes */
	memcpy(buf, jcases[0].in, strlen(jcases[0].in));
	st_jredact_reset(&j, false, false);
	assert_int_equal(st_jredact_feed(&j, &r, buf, strlen(jcases[0].in)), 0);
	assert_memory_equal(buf, jcases[0].in, strlen(jcases[0].in));
}

static void t_json_too_deep(void **state)
{
	struct st_redact_rules r = { .fields = { "password" }, .n_fields = 1 };
	struct st_jredact j;
	char in[400];
	size_t o = 0;

	for (int i = 0; i < ST_JREDACT_DEPTH + 5; i++)
		in[o++] = '[';
	o += (size_t)sprintf(in + o, "{\"password\":\"s3\"},7");
	for (int i = 0; i < ST_JREDACT_DEPTH + 5; i++)
		in[o++] = ']';
	st_jredact_reset(&j, true, false);
	assert_int_equal(st_jredact_feed(&j, &r, (uint8_t *)in, o), 1);
	assert_null(memmem(in, o, "s3", 2));
	assert_null(memchr(in, '7', o));
	assert_non_null(memmem(in, o, "{\"********\":\"**\"},*]", 20));
}

/* Frames one message's head with http.c. */
static void head_of(struct st_http_parser *p, enum st_http_kind kind, const char *msg,
		    const struct st_http_head **h)
{
	struct st_http_event ev;

	assert_int_equal(st_http__init(p, kind, NULL), 0);
	st_http__feed(p, msg, strlen(msg), &ev);
	assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
	*h = ev.head;
}

static void t_head(void **state)
{
	static const char req[] =
		"GET /a?token=abc&page=2&x=&token=zz HTTP/1.1\r\nHost: h\r\n"
		"Authorization: Bearer xyz\r\ncookie:  a=b; c=d  \r\nX-Api-Key: k1\r\n"
		"X-Other: keep\r\nContent-Type: application/problem+json\r\n\r\n";
	static const char want[] =
		"GET /a?token=***&page=2&x=&token=** HTTP/1.1\r\nHost: h\r\n"
		"Authorization: **********\r\ncookie:  ********  \r\nX-Api-Key: **\r\n"
		"X-Other: keep\r\nContent-Type: application/problem+json\r\n\r\n";
	static const char resp[] =
		"HTTP/1.1 200 OK\r\nSet-Cookie: sid=1\r\nContent-Type: text/html\r\n\r\n";
	struct st_redact_rules r = { .headers = { "x-api-key" }, .n_headers = 1,
				     .queries = { "token" }, .n_queries = 1 };
	struct st_http_parser p;
	const struct st_http_head *h;
	uint8_t out[512];

	head_of(&p, ST_HTTP_REQUEST, req, &h);
	assert_int_equal(h->raw_len, strlen(req));
	memcpy(out, h->raw, h->raw_len);
	assert_int_equal(st_redact_head(&r, h, true, out), 5);
	assert_memory_equal(out, want, strlen(want));
	assert_true(st_redact_is_json(h));
	st_http__free(&p);

	head_of(&p, ST_HTTP_RESPONSE, resp, &h);
	memcpy(out, h->raw, h->raw_len);
	assert_int_equal(st_redact_head(&r, h, false, out), 1);
	assert_non_null(strstr((char *)out, "Set-Cookie: *****\r\n"));
	assert_false(st_redact_is_json(h));
	st_http__free(&p);
}

/* Request targets and URL fields: one table, each case a whole request or response head. */
struct ucase {
	bool request;
	const char *in;
	const char *out;
	unsigned count;
};

static const struct ucase ucases[] = {
	/* query names: case-insensitive, after percent-decoding, '&' and ';' separators */
	{ true, "GET /a?TOKEN=abc HTTP/1.1\r\n\r\n", "GET /a?TOKEN=*** HTTP/1.1\r\n\r\n", 1 },
	{ true, "GET /a?t%6fken=abc&x=1 HTTP/1.1\r\n\r\n",
	  "GET /a?t%6fken=***&x=1 HTTP/1.1\r\n\r\n", 1 },
	{ true, "GET /a?T%6FKEN=abc HTTP/1.1\r\n\r\n", "GET /a?T%6FKEN=*** HTTP/1.1\r\n\r\n", 1 },
	{ true, "GET /a?x=1;token=abc;y=2 HTTP/1.1\r\n\r\n",
	  "GET /a?x=1;token=***;y=2 HTTP/1.1\r\n\r\n", 1 },
	{ true, "GET /a?access_token=a1&refresh_token=r2&id_token=i3&api_key=k&apikey=k&"
		"password=p&passwd=p&secret=s&client_secret=c&page=2 HTTP/1.1\r\n\r\n",
	  "GET /a?access_token=**&refresh_token=**&id_token=**&api_key=*&apikey=*&"
	  "password=*&passwd=*&secret=*&client_secret=*&page=2 HTTP/1.1\r\n\r\n", 9 },
	{ true, "GET /a?sid=1&tok=2&token&x=token HTTP/1.1\r\n\r\n",
	  "GET /a?sid=*&tok=2&token&x=token HTTP/1.1\r\n\r\n", 1 },
	{ true, "GET /a?to%2=1&t%zzken=2 HTTP/1.1\r\n\r\n", "GET /a?to%2=1&t%zzken=2 HTTP/1.1\r\n\r\n",
	  0 },
	/* userinfo in an absolute-form target */
	{ true, "GET http://user:secret@h/p?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
	  "GET http://***********@h/p?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 1 },
	{ true, "GET http://h/p?token=t HTTP/1.1\r\n\r\n", "GET http://h/p?token=* HTTP/1.1\r\n\r\n",
	  1 },
	{ true, "GET /r HTTP/1.1\r\nReferer: https://u:p@site/x?token=abc\r\n\r\n",
	  "GET /r HTTP/1.1\r\nReferer: https://***@site/x?token=***\r\n\r\n", 2 },
	/* URL fields of responses */
	{ false, "HTTP/1.1 302 Found\r\nLocation: https://app/cb#access_token=xyz&token_type=bearer\r\n"
		 "Content-Length: 0\r\n\r\n",
	  "HTTP/1.1 302 Found\r\nLocation: https://app/cb#access_token=***&token_type=bearer\r\n"
	  "Content-Length: 0\r\n\r\n", 1 },
	{ false, "HTTP/1.1 200 OK\r\nContent-Location: /x?Password=p;sid=9\r\n"
		 "Refresh: 5; url=http://u:p@h/?TOKEN=t\r\nContent-Length: 0\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nContent-Location: /x?Password=*;sid=*\r\n"
	  "Refresh: 5; url=http://***@h/?TOKEN=*\r\nContent-Length: 0\r\n\r\n", 4 },
	/* the default header set */
	{ false, "HTTP/1.1 200 OK\r\nX-Auth-Token: t0k\r\nset-cookie: a=b\r\nX-Keep: v\r\n"
		 "Content-Length: 0\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nX-Auth-Token: ***\r\nset-cookie: ***\r\nX-Keep: v\r\n"
	  "Content-Length: 0\r\n\r\n", 2 },
};

static void t_urls(void **state)
{
	struct st_redact_rules r = { .queries = { "sid" }, .n_queries = 1 };
	struct st_redact_rules none = { .none = true };
	struct st_http_parser p;
	const struct st_http_head *h;
	uint8_t out[512];

	for (size_t k = 0; k < sizeof(ucases) / sizeof(ucases[0]); k++) {
		const struct ucase *c = &ucases[k];
		unsigned n;

		if (!c->request) {
			/* a response needs its request's method */
			assert_int_equal(st_http__init(&p, ST_HTTP_RESPONSE, NULL), 0);
			assert_int_equal(st_http__push_method(&p, ST_HTTP_M_GET), 0);
			{
				struct st_http_event ev;

				st_http__feed(&p, c->in, strlen(c->in), &ev);
				assert_int_equal(ev.type, ST_HTTP_EV_HEAD);
				h = ev.head;
			}
		} else {
			head_of(&p, ST_HTTP_REQUEST, c->in, &h);
		}
		assert_int_equal(h->raw_len, strlen(c->in));
		memcpy(out, h->raw, h->raw_len);
		n = st_redact_head(&r, h, c->request, out);
		if (memcmp(out, c->out, h->raw_len) || n != c->count)
			fail_msg("in  %s\ngot %.*s (%u)\nwant %s (%u)", c->in, (int)h->raw_len, out, n,
				 c->out, c->count);
		/* --no-redact: nothing */
		memcpy(out, h->raw, h->raw_len);
		assert_int_equal(st_redact_head(&none, h, c->request, out), 0);
		assert_memory_equal(out, c->in, h->raw_len);
		st_http__free(&p);
	}
}

/* A chunked body's trailer section: framed by http.c (the events' trailer_len), redacted like a
 * head, split everywhere. */
static void t_trailers(void **state)
{
	static const char req[] =
		"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n3;x=\"a:b\"\r\nAut\r\n0\r\nAuthorization: Bearer xyz\r\n"
		"X-Trace: keep\r\nx-api-key:k9\r\n\r\n";
	static const char want[] =
		"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n3;x=\"a:b\"\r\nAut\r\n0\r\nAuthorization: **********\r\n"
		"X-Trace: keep\r\nx-api-key:**\r\n\r\n";
	struct st_redact_rules r = { 0 };
	size_t len = strlen(req);

	for (size_t s = 0; s <= len; s++) {
		struct st_http_parser p;
		struct st_tredact t;
		uint8_t out[512];
		size_t o = 0, done = 0;
		unsigned n = 0;
		bool msg_done = false;

		assert_int_equal(st_http__init(&p, ST_HTTP_REQUEST, NULL), 0);
		st_tredact_reset(&t);
		for (int piece = 0; piece < 2; piece++) {
			size_t end = piece ? len : s;

			while (done < end) {
				struct st_http_event ev;
				size_t k = st_http__feed(&p, req + done, end - done, &ev);

				if (ev.type == ST_HTTP_EV_MSG_DONE)
					msg_done = true;
				if (!k)
					break;
				memcpy(out + o, req + done, k);
				if (ev.type == ST_HTTP_EV_BODY && ev.trailer_len)
					n += st_tredact_feed(&t, &r, out + o + k - ev.trailer_len,
							     ev.trailer_len);
				o += k;
				done += k;
			}
		}
		assert_int_equal(o, len);
		if (memcmp(out, want, len))
			fail_msg("split at %zu:\n%.*s", s, (int)len, out);
		assert_int_equal(n, 2);
		(void)msg_done;
		st_http__free(&p);
	}
}

/* JSON is recognised by content: whatever the Content-Type, a body starting with '{' or '['
 * is scanned; anything else passes unchanged. */
static void t_json_by_content(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "{\"password\":\"hunter2\"}", "{\"password\":\"*******\"}" },
		{ " \r\n[{\"token\":12},{\"a\":\"b\"}]", " \r\n[{\"token\":0 },{\"a\":\"b\"}]" },
		{ "password=hunter2&a=1", "password=hunter2&a=1" },
		{ "\"password\"", "\"password\"" },
		{ "true", "true" },
		{ "<p>{\"password\":\"x\"}</p>", "<p>{\"password\":\"x\"}</p>" },
		/* it started like JSON and is not: what follows passes (a binary body) */
		{ "{\x01\x02\"password\":\"x\"}", "{\x01\x02\"password\":\"x\"}" },
		{ "[{\"token\":\"ab\"},,{\"token\":\"cd\"}]", "[{\"token\":\"**\"},,{\"token\":\"cd\"}]" },
	};
	struct st_redact_rules r = { 0 };
	struct st_jredact j;
	uint8_t buf[128];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t len = strlen(cases[k].in);

		for (size_t s = 0; s <= len; s++) {
			memcpy(buf, cases[k].in, len);
			st_jredact_reset(&j, true, true);
			st_jredact_feed(&j, &r, buf, s);
			st_jredact_feed(&j, &r, buf + s, len - s);
			if (memcmp(buf, cases[k].out, len))
				fail_msg("in %s split at %zu: got %.*s", cases[k].in, s, (int)len, buf);
		}
	}
	/* --no-redact: not even the default names */
	memcpy(buf, cases[0].in, strlen(cases[0].in));
	r.none = true;
	st_jredact_reset(&j, true, false);
	st_jredact_feed(&j, &r, buf, strlen(cases[0].in));
	assert_memory_equal(buf, cases[0].in, strlen(cases[0].in));
}

/* A second Content-Type that says JSON is JSON (and the body is scanned either way). */
static void t_is_json(void **state)
{
	static const char two[] = "POST /j HTTP/1.1\r\nContent-Type: text/plain\r\n"
				  "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n";
	static const char none[] = "POST /j HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
	struct st_http_parser p;
	const struct st_http_head *h;

	head_of(&p, ST_HTTP_REQUEST, two, &h);
	assert_true(st_redact_is_json(h));
	st_http__free(&p);
	head_of(&p, ST_HTTP_REQUEST, none, &h);
	assert_false(st_redact_is_json(h));
	st_http__free(&p);
}

/* Where a body starts: declared JSON is scanned whatever its first byte; an encoded body is
 * sniffed (gzip bytes pass), unless fields were named (then every byte is starred). */
static void t_jredact_begin(void **state)
{
	static const char gz[] = "POST /j HTTP/1.1\r\nContent-Type: application/json\r\n"
				 "Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\n";
	static const char js[] = "POST /j HTTP/1.1\r\nContent-Type: application/json\r\n"
				 "Content-Length: 4\r\n\r\n";
	struct st_redact_rules dflt = { 0 }, named = { .fields = { "x" }, .n_fields = 1 };
	struct st_http_parser p;
	const struct st_http_head *h;
	struct st_jredact j;
	uint8_t body[4];

	head_of(&p, ST_HTTP_REQUEST, gz, &h);
	memcpy(body, "\x1f\x8b\x08\x00", 4);
	st_jredact_begin(&j, &dflt, h);
	st_jredact_feed(&j, &dflt, body, 4);
	assert_memory_equal(body, "\x1f\x8b\x08\x00", 4);
	st_jredact_begin(&j, &named, h);
	st_jredact_feed(&j, &named, body, 4);
	assert_memory_equal(body, "****", 4);
	st_http__free(&p);
	head_of(&p, ST_HTTP_REQUEST, js, &h);
	st_jredact_begin(&j, &dflt, h);
	assert_true(j.on);
	assert_false(j.sniff);
	st_http__free(&p);
}

/* The rules in words (the tee stream's header), and the shared options. */
static void t_describe_and_options(void **state)
{
	struct st_redact_rules r = { 0 };
	char buf[2048];

	assert_int_equal(st_opt_set(&st_redact_opts[0], &r, "X-Secret", "--redact-header"), 0);
	assert_int_equal(st_opt_set(&st_redact_opts[1], &r, "sid", "--redact-query"), 0);
	assert_int_equal(st_opt_set(&st_redact_opts[2], &r, "card", "--redact-field"), 0);
	assert_int_equal(st_opt_set(&st_redact_opts[1], &r, "a;b", "--redact-query"), -1);
	assert_int_equal(st_redact_added(&r), 3);
	st_redact_describe(&r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "header:Authorization,"));
	assert_non_null(strstr(buf, ",header:X-Auth-Token,header:X-Secret,"));
	assert_non_null(strstr(buf, ",query:client_secret,query:sid,"));
	assert_non_null(strstr(buf, ",json:password,"));
	assert_non_null(strstr(buf, ",json:card"));
	assert_true(st_redact_header_listed(&r, "x-secret", 8));
	assert_true(st_redact_field_listed(&r, "card", 4));
	assert_false(st_redact_field_listed(&r, "Card", 4));
	assert_int_equal(st_opt_set(&st_redact_opts[3], &r, NULL, "--no-redact"), 0);
	assert_string_equal(st_redact_describe(&r, buf, sizeof(buf)), "none");
	assert_false(st_redact_header_listed(&r, "Authorization", 13));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_json_fields),
		cmocka_unit_test(t_json_too_deep),
		cmocka_unit_test(t_head),
		cmocka_unit_test(t_urls),
		cmocka_unit_test(t_trailers),
		cmocka_unit_test(t_json_by_content),
		cmocka_unit_test(t_is_json),
		cmocka_unit_test(t_jredact_begin),
		cmocka_unit_test(t_describe_and_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
