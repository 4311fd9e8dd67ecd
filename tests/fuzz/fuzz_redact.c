/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for tee's JSON redaction (agent/http/redact.c). Input: one byte giving where
 * the body is split, then a body. Checked: the redacted body has the input's length and is
 * the same whether it came whole, in two pieces or a byte at a time; a changed byte is one
 * of the replacements ('*', '0', ' ', "null"); also as a body not declared JSON (sniffed: valid
 * JSON redacted as when declared, anything else only by the same replacements), as a
 * chunked trailer section (whole and a byte at a time alike, '*' the only change) and as a URL
 * ('*' the only change);
 * when the input is valid JSON and holds no nesting too deep, so is the output; and (names
 * without escapes) no string value of a member named "password" survives in it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "redact.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct st_redact_rules rules = {
	.fields = { "password", "token", "a" }, .n_fields = 3,
};

/* The string values of members named "password" in a parsed document, all overwritten? */
static void check_no_secret(const struct st_json_doc *d)
{
	for (uint32_t i = 0; i < d->n; i++) {
		const struct st_json_node *n = st_json_node(d, i);

		if (n->type != ST_JSON_STRING || n->key_len != 8 ||
		    memcmp(st_json_key(d, n), "password", 8))
			continue;
		for (uint32_t k = 0; k < n->len; k++)
			CHECK(st_json_bytes(d, n)[k] == '*');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_jredact j;
	struct st_json_doc d;
	uint8_t *a, *b, *c;
	size_t split;
	bool a_all, json_valid;

	if (size < 1 || size > 4096)
		return 0;
	split = data[0] % size;
	data++;
	size--;
	a = malloc(size + 1);
	b = malloc(size + 1);
	c = malloc(size + 1);
	CHECK(a && b && c);
	memcpy(a, data, size);
	memcpy(b, data, size);
	memcpy(c, data, size);
	st_jredact_reset(&j, true, false);
	st_jredact_feed(&j, &rules, a, size);
	st_jredact_reset(&j, true, false);
	st_jredact_feed(&j, &rules, b, split);
	st_jredact_feed(&j, &rules, b + split, size - split);
	st_jredact_reset(&j, true, false);
	for (size_t i = 0; i < size; i++)
		st_jredact_feed(&j, &rules, c + i, 1);
	CHECK(!memcmp(a, b, size) && !memcmp(a, c, size));
	a_all = j.all;
	st_json_doc_init(&d, 100000, 0);
	json_valid = !st_json_parse(&d, (const char *)data, size);
	st_json_doc_free(&d);
	for (size_t i = 0; i < size; i++)
		if (a[i] != data[i])
			CHECK(a[i] == '*' || a[i] == ' ' || a[i] == '0' || a[i] == 'n' ||
			      a[i] == 'u' || a[i] == 'l');
	/* sniffed: unchanged unless it starts like an object or array */
	memcpy(b, data, size);
	st_jredact_reset(&j, true, true);
	st_jredact_feed(&j, &rules, b, size);
	{
		size_t k = 0;

		while (k < size && strchr(" \t\r\n", data[k]) && data[k])
			k++;
		if (k == size || (data[k] != '{' && data[k] != '['))
			CHECK(!memcmp(b, data, size));
		for (size_t i = 0; i < size; i++)
			if (b[i] != data[i])
				CHECK(b[i] == '*' || b[i] == ' ' || b[i] == '0' || b[i] == 'n' ||
				      b[i] == 'u' || b[i] == 'l');
		/* JSON (not too deep) is redacted the same whether declared or guessed */
		if (!j.all && !a_all && k < size)
			CHECK(!memcmp(a, b, size) || !json_valid);
	}
	/* a trailer section: the same whole or a byte at a time; only '*' replaces */
	{
		struct st_tredact t;

		memcpy(b, data, size);
		memcpy(c, data, size);
		st_tredact_reset(&t);
		st_tredact_feed(&t, &rules, b, size);
		st_tredact_reset(&t);
		for (size_t i = 0; i < size; i++)
			st_tredact_feed(&t, &rules, c + i, 1);
		CHECK(!memcmp(b, c, size));
		for (size_t i = 0; i < size; i++)
			CHECK(b[i] == data[i] || b[i] == '*');
	}
	/* a URL: only '*' replaces */
	memcpy(b, data, size);
	st_redact_url(&rules, (const char *)data, size, b);
	for (size_t i = 0; i < size; i++)
		CHECK(b[i] == data[i] || b[i] == '*');
	/* names with escapes are compared as written (redact.h): not checked here */
	if (json_valid && !a_all && !memchr(data, '\\', size)) {
		st_json_doc_init(&d, 100000, 0);
		CHECK(!st_json_parse(&d, (const char *)a, size));
		check_no_secret(&d);
		st_json_doc_free(&d);
	}
	free(a);
	free(b);
	free(c);
	return 0;
}
