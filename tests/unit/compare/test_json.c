/* SPDX-License-Identifier: GPL-2.0-only */
/* The bounded JSON parser (agent/compare/json.c): structure, strictness, bounds, exact numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int parse(struct st_json_doc *d, const char *s)
{
	return st_json_parse(d, s, strlen(s));
}

/* The child of node i named key, or -1. */
static int member(const struct st_json_doc *d, uint32_t i, const char *key)
{
	const struct st_json_node *n = st_json_node(d, i);

	for (uint32_t c = n->n ? i + 1 : 0; c; c = st_json_node(d, c)->next) {
		const struct st_json_node *m = st_json_node(d, c);

		if (m->key_len == strlen(key) && !memcmp(st_json_key(d, m), key, m->key_len))
			return (int)c;
	}
	return -1;
}

static void test_structure(void **state)
{
	struct st_json_doc d;
	const struct st_json_node *n;
	int i;

	st_json_doc_init(&d, 0, 0);
	assert_int_equal(parse(&d, " {\"a\": [1, 2.5e3, \"x\", true, false, null, {}, []],"
				   " \"b\": {\"c\": \"d\"}, \"\": -0 } \n"), 0);
	n = st_json_node(&d, 0);
	assert_int_equal(n->type, ST_JSON_OBJECT);
	assert_int_equal(n->n, 3);
	i = member(&d, 0, "a");
	assert_true(i > 0);
	n = st_json_node(&d, (uint32_t)i);
	assert_int_equal(n->type, ST_JSON_ARRAY);
	assert_int_equal(n->n, 8);
	/* children in order, linked by next */
	{
		static const int types[] = { ST_JSON_NUMBER, ST_JSON_NUMBER, ST_JSON_STRING, ST_JSON_TRUE,
					     ST_JSON_FALSE, ST_JSON_NULL, ST_JSON_OBJECT, ST_JSON_ARRAY };
		uint32_t c = (uint32_t)i + 1;

		for (int k = 0; k < 8; k++, c = st_json_node(&d, c)->next)
			assert_int_equal(st_json_node(&d, c)->type, types[k]);
		assert_int_equal(c, 0);
	}
	i = member(&d, 0, "b");
	n = st_json_node(&d, (uint32_t)member(&d, (uint32_t)i, "c"));
	assert_int_equal(n->type, ST_JSON_STRING);
	assert_memory_equal(st_json_bytes(&d, n), "d", 1);
	n = st_json_node(&d, (uint32_t)member(&d, 0, ""));
	assert_int_equal(n->type, ST_JSON_NUMBER);
	assert_int_equal(n->len, 2);
	/* a container's span is its source, brackets included */
	n = st_json_node(&d, (uint32_t)member(&d, 0, "b"));
	assert_memory_equal(st_json_bytes(&d, n), "{\"c\": \"d\"}", n->len);
	/* scalars at the top */
	assert_int_equal(parse(&d, "\"top\""), 0);
	assert_int_equal(parse(&d, " 42 "), 0);
	assert_int_equal(st_json_node(&d, 0)->type, ST_JSON_NUMBER);
	assert_int_equal(d.n, 1);
	st_json_doc_free(&d);
}

static void test_strict(void **state)
{
	static const char *const bad[] = {
		"", "   ", "[1,]", "{\"a\":1,}", "[01]", "-", "1.", "1e", ".5", "+1", "[1 2]",
		"{\"a\" 1}", "{a:1}", "['x']", "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"abc",
		"[1] x", "nul", "tru", "[", "{", "{\"a\":}", "[1]]", "// c\n1", "NaN", "Infinity",
		"\"\\", "{\"a\":1 \"b\":2}", "[-]", "1e+", "0x10", "[\"\\u00zz\"]",
	};
	struct st_json_doc d;

	st_json_doc_init(&d, 0, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(&d, bad[i]) != -1) {
			print_error("accepted: %s\n", bad[i]);
			fail();
		}
		assert_int_not_equal(d.err, ST_JSON_OK);
	}
	assert_int_equal(parse(&d, "[1] x"), -1);
	assert_int_equal(d.err, ST_JSON_E_TRAILING);
	assert_int_equal(parse(&d, " "), -1);
	assert_int_equal(d.err, ST_JSON_E_EMPTY);
	/* a NUL inside the input is not whitespace */
	assert_int_equal(st_json_parse(&d, "[1]\0", 4), -1);
	st_json_doc_free(&d);
}

static void test_bounds(void **state)
{
	struct st_json_doc d;
	char *s = malloc(2 * ST_JSON_MAX_DEPTH + 8);
	size_t n = 0;

	/* exactly max_depth levels parse; one more does not */
	for (int i = 0; i < ST_JSON_MAX_DEPTH; i++)
		s[n++] = '[';
	for (int i = 0; i < ST_JSON_MAX_DEPTH; i++)
		s[n++] = ']';
	st_json_doc_init(&d, 0, 0);
	assert_int_equal(st_json_parse(&d, s, n), 0);
	memmove(s + 1, s, n);
	s[0] = '[';
	s[n + 1] = ']';
	assert_int_equal(st_json_parse(&d, s, n + 2), -1);
	assert_int_equal(d.err, ST_JSON_E_DEPTH);
	st_json_doc_free(&d);
	/* a lower depth */
	st_json_doc_init(&d, 0, 3);
	assert_int_equal(parse(&d, "[[[1]]]"), 0);
	assert_int_equal(parse(&d, "[[[[1]]]]"), -1);
	assert_int_equal(d.err, ST_JSON_E_DEPTH);
	st_json_doc_free(&d);
	/* node cap */
	st_json_doc_init(&d, 4, 0);
	assert_int_equal(parse(&d, "[1,2,3]"), 0);
	assert_int_equal(parse(&d, "[1,2,3,4]"), -1);
	assert_int_equal(d.err, ST_JSON_E_NODES);
	assert_true(st_json_doc_mem(&d) <= 4 * sizeof(struct st_json_node) + 256);
	st_json_doc_free(&d);
	free(s);
}

static void test_strings(void **state)
{
	struct st_json_doc d;
	const struct st_json_node *n;

	st_json_doc_init(&d, 0, 0);
	assert_int_equal(parse(&d, "[\"caf\\u00e9\", \"café\", \"\\ud83d\\ude00\", \"\\ud83d\","
				   " \"a\\\"b\\\\c\\/d\\n\"]"), 0);
	n = st_json_node(&d, 1);
	assert_true(n->flags & ST_JSON_F_STR_POOL);
	assert_int_equal(n->len, 5);
	assert_memory_equal(st_json_bytes(&d, n), "caf\xc3\xa9", 5);
	n = st_json_node(&d, 2);
	assert_false(n->flags & ST_JSON_F_STR_POOL);
	assert_memory_equal(st_json_bytes(&d, n), "caf\xc3\xa9", 5);
	n = st_json_node(&d, 3); /* a surrogate pair: one code point, 4 bytes */
	assert_int_equal(n->len, 4);
	assert_memory_equal(st_json_bytes(&d, n), "\xf0\x9f\x98\x80", 4);
	n = st_json_node(&d, 4); /* a lone surrogate stays as it was (3 bytes) */
	assert_int_equal(n->len, 3);
	n = st_json_node(&d, 5);
	assert_memory_equal(st_json_bytes(&d, n), "a\"b\\c/d\n", 8);
	/* escaped keys are decoded too */
	assert_int_equal(parse(&d, "{\"\\u0061\": 1}"), 0);
	n = st_json_node(&d, 1);
	assert_int_equal(n->key_len, 1);
	assert_memory_equal(st_json_key(&d, n), "a", 1);
	st_json_doc_free(&d);
}

static bool neq(const char *a, const char *b)
{
	return st_json_num_eq(a, strlen(a), b, strlen(b)) &&
	       st_json_num_hash(a, strlen(a)) == st_json_num_hash(b, strlen(b));
}

static void test_numbers(void **state)
{
	/* equal values */
	assert_true(neq("1", "1.0"));
	assert_true(neq("1", "10e-1"));
	assert_true(neq("100", "1e2"));
	assert_true(neq("100", "1E+2"));
	assert_true(neq("0.05", "5e-2"));
	assert_true(neq("-0", "0"));
	assert_true(neq("0.000", "0e10"));
	assert_true(neq("12.50", "12.5"));
	assert_true(neq("1e400", "10e399"));
	assert_true(neq("123456789012345678901234567890", "1.23456789012345678901234567890e29"));
	/* different values, including beyond double and int64 precision */
	assert_false(st_json_num_eq("12345678901234567890123", 23, "12345678901234567890124", 23));
	assert_false(st_json_num_eq("9007199254740993", 16, "9007199254740992", 16));
	assert_false(st_json_num_eq("1e400", 5, "1e401", 5));
	assert_false(st_json_num_eq("1", 1, "-1", 2));
	assert_false(st_json_num_eq("0.1", 3, "0.01", 4));
	assert_false(st_json_num_eq("10", 2, "1", 1));
	assert_false(st_json_num_eq("1.5", 3, "15", 2));
	assert_false(st_json_num_eq("0", 1, "1e-999999999999999999999", 24));
	/* saturated exponents still tell digits apart */
	assert_false(st_json_num_eq("1e99999999999999999999", 22, "2e99999999999999999999", 22));
}

static void test_hashes(void **state)
{
	struct st_json_doc a, b;
	uint64_t ha[16], hb[16];

	st_json_doc_init(&a, 0, 0);
	st_json_doc_init(&b, 0, 0);
	/* member order does not matter; values do */
	assert_int_equal(parse(&a, "{\"x\": 1, \"y\": [1, \"s\"]}"), 0);
	assert_int_equal(parse(&b, "{\"y\": [1.0, \"s\"], \"x\": 1}"), 0);
	st_json_hashes(&a, ha, false);
	st_json_hashes(&b, hb, false);
	assert_true(ha[0] == hb[0]);
	assert_int_equal(parse(&b, "{\"y\": [\"s\", 1], \"x\": 1}"), 0);
	st_json_hashes(&b, hb, false);
	assert_true(ha[0] != hb[0]); /* array order does */
	assert_int_equal(parse(&b, "{\"x\": \"1\", \"y\": [1, \"s\"]}"), 0);
	st_json_hashes(&b, hb, false);
	assert_true(ha[0] != hb[0]); /* so do types */
	assert_int_equal(parse(&b, "{\"z\": 1, \"y\": [1, \"s\"]}"), 0);
	st_json_hashes(&b, hb, false);
	assert_true(ha[0] != hb[0]); /* and keys */
	st_json_doc_free(&a);
	st_json_doc_free(&b);
}

/* A doc is reused: its arrays stay, the previous tree is gone. */
static void test_reuse(void **state)
{
	struct st_json_doc d;
	char big[8192];
	size_t n = 0;

	st_json_doc_init(&d, 0, 0);
	big[n++] = '[';
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"\\n%d\"", i ? "," : "", i);
	big[n++] = ']';
	assert_int_equal(st_json_parse(&d, big, n), 0);
	assert_int_equal(d.n, 1001);
	assert_int_equal(parse(&d, "{}"), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.pool_len, 0);
	st_json_doc_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
