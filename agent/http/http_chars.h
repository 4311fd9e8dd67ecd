/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * HTTP character classes (RFC 9110/9112), shared by the framer (http.c) and
 * the head rewriter (http_rewrite.c); st_hexval serves chunk sizes and JSON's
 * \u escapes (json.c) alike.
 */
#ifndef ST_HTTP_CHARS_H
#define ST_HTTP_CHARS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/*
 * Character classes: CC_TCHAR (RFC 9110 tchar), CC_VALUE (field-vchar, SP, HTAB,
 * obs-text), CC_TARGET (request-target bytes: visible ASCII and obs-text).
 */
#define CC_TCHAR 1
#define CC_VALUE 2
#define CC_TARGET 4

static const uint8_t st_http_cclass[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
};

static inline bool is_tchar(unsigned char c)
{
	return st_http_cclass[c] & CC_TCHAR;
}

static inline bool is_value_char(unsigned char c)
{
	return st_http_cclass[c] & CC_VALUE;
}

static inline bool is_target_char(unsigned char c)
{
	return st_http_cclass[c] & CC_TARGET;
}

/* n bytes at s equal the C string lit, ASCII case-insensitively. */
static inline bool span_ieq(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n == l && strncasecmp(s, lit, l) == 0;
}

/* The value of a hex digit, or -1. */
static inline int st_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif /* ST_HTTP_CHARS_H */
