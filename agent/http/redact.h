/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Redaction: the one policy for everything that leaves the process (docs/TEE.md, "Secrets
 * stay on the host"; docs/COMPARE.md): the tee stream, tap compare's --diffs, --report and
 * --report-json, receive --print. Secrets are overwritten in place, keeping every length, so
 * HTTP framing, Content-Length and stream offsets stay valid.
 *  - The default set (always, unless --no-redact): header fields Authorization,
 *    Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Auth-Token; query parameters and
 *    JSON members access_token, refresh_token, id_token, token, api_key, apikey, password,
 *    passwd, secret, client_secret. --redact-header/--redact-query/--redact-field add names
 *    (st_redact_opts: one option table for tee, shadow, replay and receive).
 *  - Header fields: the value of each listed field (case-insensitive names) becomes '*'s, in
 *    a head and in a chunked body's trailer section (st_tredact, streaming).
 *  - URLs (request targets; Location, Content-Location, Refresh and Referer values): the
 *    userinfo of an authority ("http://user:secret@h/") becomes '*'s, and so does the value
 *    of every listed parameter after '?' or '#', separated by '&' or ';', its name compared
 *    case-insensitively after percent-decoding ("TOKEN=", "t%6fken=").
 *  - JSON body fields (st_jredact, streaming: a body may come in any number of pieces): the
 *    value of every member named NAME, at any depth, is overwritten and stays valid JSON:
 *    a string's content becomes '*'s, a number "0" and spaces, true/false "null" (and a
 *    space), an object or array every scalar inside it likewise. A body is scanned as JSON
 *    when a Content-Type says json, and whatever its Content-Type (none, text/plain, two)
 *    when its first byte that is not whitespace is '{' or '[' (a top-level scalar holds no
 *    member); such a body that turns out not to be JSON (a binary body starting with '{')
 *    passes unchanged from there. Member names are compared as written (escapes not
 *    decoded). Nesting deeper than ST_JREDACT_DEPTH, or a declared JSON body that stops
 *    being JSON, turns on redaction of every byte but JSON's punctuation for the rest of
 *    the body (too much, never too little).
 */
#ifndef ST_REDACT_H
#define ST_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "optparse.h"

#define ST_REDACT_MAX 32 /* names added by options, of each kind */
#define ST_JREDACT_DEPTH 64
#define ST_JREDACT_KEY_MAX 128

/* The names redacted beyond the default set (a zeroed struct: the default set alone). */
struct st_redact_rules {
	const char *headers[ST_REDACT_MAX];
	unsigned n_headers;
	const char *queries[ST_REDACT_MAX];
	unsigned n_queries;
	const char *fields[ST_REDACT_MAX];
	unsigned n_fields;
	bool none;              /* --no-redact: nothing is redacted, the defaults neither */
};

/* The default set (NULL-terminated): header fields, and query and JSON names. */
extern const char *const st_redact_default_headers[];
extern const char *const st_redact_default_names[];

/* --redact-header, --redact-query, --redact-field, --no-redact: rows writing into a struct
 * st_redact_rules (values kept as given: argv or the config's strings). */
extern const struct st_opt st_redact_opts[];
extern const size_t st_redact_opts_n;

/* Names given by options (beyond the default set). */
static inline unsigned st_redact_added(const struct st_redact_rules *r)
{
	return r->n_headers + r->n_queries + r->n_fields;
}

/* The rules in words, for a stream header or a message: "none", or
 * "header:Authorization,...,query:access_token,...,json:password,...". Returns buf. */
const char *st_redact_describe(const struct st_redact_rules *r, char *buf, size_t cap);

/* Header field name (len bytes) listed (the default set or r's)? */
bool st_redact_header_listed(const struct st_redact_rules *r, const char *name, size_t len);
/* JSON member name (len bytes, as written) listed? */
bool st_redact_field_listed(const struct st_redact_rules *r, const char *name, size_t len);

/* Overwrites the secrets of a URL s (len bytes) in out (the same offsets): userinfo and the
 * values of listed parameters (above). Returns the number of values redacted. */
unsigned st_redact_url(const struct st_redact_rules *r, const char *s, size_t len, uint8_t *out);

/* The same for parameters alone: s is "a=1&b=2" (a form body, a query without its '?'). */
unsigned st_redact_params(const struct st_redact_rules *r, const char *s, size_t len,
			  uint8_t *out);
/* Text from a body shown to people (tap compare's values and request bodies; a prefix is
 * fine), in place: as JSON when it starts with '{' or '[', else as form parameters. Returns
 * the number of values redacted. */
unsigned st_redact_text(const struct st_redact_rules *r, char *buf, size_t len);

/* Overwrites the listed header values, the URL secrets of the request target (a request) or
 * of Location, Content-Location, Refresh and Referer, in out, a copy of h->raw (h->raw_len
 * bytes). Returns the number of values redacted. */
unsigned st_redact_head(const struct st_redact_rules *r, const struct st_http_head *h,
			bool request, uint8_t *out);

/* True when a head's Content-Type (any of them) says JSON (application/json, ...+json). */
bool st_redact_is_json(const struct st_http_head *h);

/* A chunked body's trailer section, streamed (http.h: a BODY event's trailer_len last bytes):
 * the values of listed header fields overwritten. */
struct st_tredact {
	uint8_t st;             /* where in a line */
	bool redact;            /* the value being read is redacted */
	bool name_long;
	uint32_t name_len;
	char name[ST_JREDACT_KEY_MAX];
};

void st_tredact_reset(struct st_tredact *t);
/* Redacts the next len trailer bytes in place. Returns the number of values redacted. */
unsigned st_tredact_feed(struct st_tredact *t, const struct st_redact_rules *r, uint8_t *buf,
			 size_t len);

struct st_jredact {
	bool on;                /* this body is (or may be) JSON, and redaction is on */
	bool sniff;             /* not declared JSON: its first byte decides */
	bool guessed;           /* ... and it started like JSON: a syntax error ends the scan */
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

/* A new body: on, unless redaction is off (--no-redact); sniff when no Content-Type says
 * JSON (scanned only if it starts with '{' or '['). */
void st_jredact_reset(struct st_jredact *j, bool on, bool sniff);
/* A new message's body as its head says: scanned as JSON when declared, sniffed otherwise;
 * an encoded body (Content-Encoding: gzip ...) is sniffed (it passes as sent: the tee does
 * not decompress) unless r names fields itself (then declared JSON is scanned, and every
 * byte of it starred). */
void st_jredact_begin(struct st_jredact *j, const struct st_redact_rules *r,
		      const struct st_http_head *h);
/* Redacts the next len body bytes in place. Returns the number of values redacted. */
unsigned st_jredact_feed(struct st_jredact *j, const struct st_redact_rules *r, uint8_t *buf,
			 size_t len);

#endif /* ST_REDACT_H */
