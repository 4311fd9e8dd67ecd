/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tee's redaction (redact.h): header and query values, JSON fields at any depth; lengths
 * kept, JSON still valid (agent/compare/json.c parses the result), the same result however the body
 * is split into pieces.
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
		st_jredact_reset(&j, true);
		n = st_jredact_feed(&j, &r, buf, len);
		jcheck(c, buf, len);
		assert_int_equal(n, c->count);
		/* in two pieces, split everywhere */
		for (size_t s = 0; s <= len; s++) {
			memcpy(buf, c->in, len);
			st_jredact_reset(&j, true);
			st_jredact_feed(&j, &r, buf, s);
			st_jredact_feed(&j, &r, buf + s, len - s);
			jcheck(c, buf, len);
		}
		/* a byte at a time */
		memcpy(buf, c->in, len);
		st_jredact_reset(&j, true);
		for (size_t s = 0; s < len; s++)
			st_jredact_feed(&j, &r, buf + s, 1);
		jcheck(c, buf, len);
	}
	/* off: nothing changes */
	memcpy(buf, jcases[0].in, strlen(jcases[0].in));
	st_jredact_reset(&j, false);
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
	st_jredact_reset(&j, true);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_json_fields),
		cmocka_unit_test(t_json_too_deep),
		cmocka_unit_test(t_head),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
