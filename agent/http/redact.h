/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Redaction for `shadowtap tee` (docs/TEE.md): secrets are overwritten in place, keeping
 * every length, so HTTP framing, Content-Length and stream offsets stay valid.
 *  - Header fields: the value of each listed field (case-insensitive names) becomes '*'s.
 *  - Query parameters (request targets): the value after "NAME=" up to '&' or the end.
 *  - JSON body fields (st_jredact, streaming: a body may come in any number of pieces): the
 *    value of every member named NAME, at any depth, is overwritten and stays valid JSON:
 *    a string's content becomes '*'s, a number "0" and spaces, true/false "null" (and a
 *    space), an object or array every scalar inside it likewise. Member names are compared
 *    as written (escapes not decoded). Nesting deeper than ST_JREDACT_DEPTH turns on
 *    redaction of every scalar for the rest of the body (too much, never too little).
 */
#ifndef ST_REDACT_H
#define ST_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define ST_REDACT_MAX 32
#define ST_JREDACT_DEPTH 64
#define ST_JREDACT_KEY_MAX 128

struct st_redact_rules {
	const char *headers[ST_REDACT_MAX];
	unsigned n_headers;
	const char *queries[ST_REDACT_MAX];
	unsigned n_queries;
	const char *fields[ST_REDACT_MAX];
	unsigned n_fields;
};

/* The fields redacted by default. */
extern const char *const st_redact_default_headers[];
extern const unsigned st_redact_default_n;

/* Overwrites the listed header values (and, for a request, query values) of h in out, a copy
 * of h->raw (h->raw_len bytes). Returns the number of values redacted. */
unsigned st_redact_head(const struct st_redact_rules *r, const struct st_http_head *h,
			bool request, uint8_t *out);

/* True when a head's Content-Type says JSON (application/json, ...+json). */
bool st_redact_is_json(const struct st_http_head *h);

struct st_jredact {
	bool on;                /* this body is JSON and fields are listed */
	bool all;               /* too deep: every scalar from here on */
	uint8_t st;             /* scanner state */
	bool esc;               /* in a string, after a backslash */
	bool in_key;            /* the string being read is a member name */
	bool key_long;          /* ... longer than the key buffer */
	bool redact_next;       /* the next value belongs to a listed name */
	bool redact_str;        /* the string being read is redacted */
	bool redact_lit;        /* the literal or number being read is redacted */
	uint8_t lit_first;      /* its first byte ('t', 'f', 'n', or a number's) */
	uint32_t lit_len;
	int redact_depth;       /* depth at which a redacted container started, or -1 */
	int depth;
	uint8_t stack[ST_JREDACT_DEPTH]; /* 1: object, 0: array */
	uint32_t key_len;
	char key[ST_JREDACT_KEY_MAX];
};

/* A new body: on when it is JSON and r lists fields. */
void st_jredact_reset(struct st_jredact *j, bool on);
/* Redacts the next len body bytes in place. Returns the number of values redacted. */
unsigned st_jredact_feed(struct st_jredact *j, const struct st_redact_rules *r, uint8_t *buf,
			 size_t len);

#endif /* ST_REDACT_H */
