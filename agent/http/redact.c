/* SPDX-License-Identifier: GPL-2.0-only */
/* Length-preserving redaction of header fields, URLs, trailers and JSON fields (redact.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "redact.h"

const char *const st_redact_default_headers[] = {
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token",
	NULL,
};
const char *const st_redact_default_names[] = {
	"access_token", "refresh_token", "id_token", "token", "api_key", "apikey", "password",
	"passwd", "secret", "client_secret", NULL,
};

static bool in_list(const char *const *list, unsigned n, const char *name, size_t len,
		    bool nocase)
{
	for (unsigned i = 0; i < n && list[i]; i++)
		if (strlen(list[i]) == len &&
		    !(nocase ? strncasecmp(list[i], name, len) : memcmp(list[i], name, len)))
			return true;
	return false;
}

bool st_redact_header_listed(const struct st_redact_rules *r, const char *name, size_t len)
{
	return !r->none && (in_list(st_redact_default_headers, UINT32_MAX, name, len, true) ||
			    in_list(r->headers, r->n_headers, name, len, true));
}

bool st_redact_field_listed(const struct st_redact_rules *r, const char *name, size_t len)
{
	return !r->none && (in_list(st_redact_default_names, UINT32_MAX, name, len, false) ||
			    in_list(r->fields, r->n_fields, name, len, false));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A query parameter's name (len bytes as sent): listed once percent-decoded ('+' a space),
 * case-insensitively? A name too long to decode is not one of ours. */
static bool query_listed(const struct st_redact_rules *r, const char *s, size_t len)
{
	char name[ST_JREDACT_KEY_MAX];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (n == sizeof(name))
			return false;
		if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		name[n++] = c;
	}
	return in_list(st_redact_default_names, UINT32_MAX, name, n, true) ||
	       in_list(r->queries, r->n_queries, name, n, true);
}

unsigned st_redact_url(const struct st_redact_rules *r, const char *s, size_t len, uint8_t *out)
{
	const char *end = s + len, *p, *auth;
	unsigned n = 0;

	if (r->none)
		return 0;
	/* userinfo: "scheme://user:pass@host" (an absolute-form target, a Location) */
	auth = memmem(s, len, "://", 3);
	if (auth) {
		const char *at = NULL;

		auth += 3;
		for (p = auth; p < end && !strchr("/?#\"' \t<>", *p); p++)
			if (*p == '@')
				at = p;
		if (at && at > auth) {
			memset(out + (auth - s), '*', (size_t)(at - auth));
			n++;
		}
	}
	/* parameters: after the first '?' or '#' */
	for (p = s; p < end && *p != '?' && *p != '#'; p++)
		;
	if (p < end)
		n += st_redact_params(r, p + 1, (size_t)(end - p - 1), out + (p + 1 - s));
	return n;
}

unsigned st_redact_params(const struct st_redact_rules *r, const char *s, size_t len,
			  uint8_t *out)
{
	const char *end = s + len, *p = s;
	unsigned n = 0;

	if (r->none)
		return 0;
	while (p < end) {
		const char *sep, *eq;

		for (sep = p; sep < end && *sep != '&' && *sep != ';' && *sep != '#'; sep++)
			;
		eq = memchr(p, '=', (size_t)(sep - p));
		if (eq && eq + 1 < sep && query_listed(r, p, (size_t)(eq - p))) {
			memset(out + (eq + 1 - s), '*', (size_t)(sep - eq - 1));
			n++;
		}
		p = sep + 1;
	}
	return n;
}

unsigned st_redact_text(const struct st_redact_rules *r, char *buf, size_t len)
{
	struct st_jredact j;
	size_t k = 0;

	while (k < len && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r' || buf[k] == '\n'))
		k++;
	if (k < len && (buf[k] == '{' || buf[k] == '[')) {
		st_jredact_reset(&j, !r->none, false);
		return st_jredact_feed(&j, r, (uint8_t *)buf, len);
	}
	return st_redact_params(r, buf, len, (uint8_t *)buf);
}

/* Response and request fields that carry a URL (their secrets as a target's). */
static bool url_field(const struct st_http_header *f)
{
	static const char *const names[] = { "Location", "Content-Location", "Refresh", "Referer",
					     NULL };

	return in_list(names, UINT32_MAX, f->name, f->name_len, true);
}

unsigned st_redact_head(const struct st_redact_rules *r, const struct st_http_head *h,
			bool request, uint8_t *out)
{
	unsigned n = 0;

	if (r->none)
		return 0;
	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];

		if (!f->value_len)
			continue;
		if (st_redact_header_listed(r, f->name, f->name_len)) {
			memset(out + (f->value - h->raw), '*', f->value_len);
			n++;
		} else if (url_field(f)) {
			n += st_redact_url(r, f->value, f->value_len, out + (f->value - h->raw));
		}
	}
	if (request && h->target)
		n += st_redact_url(r, h->target, h->target_len, out + (h->target - h->raw));
	return n;
}

bool st_redact_is_json(const struct st_http_head *h)
{
	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];

		if (f->name_len != 12 || strncasecmp(f->name, "Content-Type", 12))
			continue;
		for (uint32_t k = 0; k + 4 <= f->value_len; k++)
			if (!strncasecmp(f->value + k, "json", 4))
				return true;
	}
	return false;
}

void st_jredact_begin(struct st_jredact *j, const struct st_redact_rules *r,
		      const struct st_http_head *h)
{
	bool json = st_redact_is_json(h), encoded = false;
	int i = st_http__head_find(h, "Content-Encoding", 0);

	if (i >= 0)
		encoded = !(h->headers[i].value_len == 8 &&
			    !strncasecmp(h->headers[i].value, "identity", 8));
	/* compressed bytes never start with '{': sniffed, they pass; declared JSON with fields
	 * the user named is scanned anyway (every byte starred: too much, never too little) */
	st_jredact_reset(j, !r->none, !json || (encoded && !r->n_fields));
}

/* ---- trailers --------------------------------------------------------------------------- */

enum { T_START = 0, T_NAME, T_OWS, T_VALUE, T_LF };

void st_tredact_reset(struct st_tredact *t)
{
	memset(t, 0, sizeof(*t));
}

unsigned st_tredact_feed(struct st_tredact *t, const struct st_redact_rules *r, uint8_t *buf,
			 size_t len)
{
	unsigned n = 0;

	if (r->none)
		return 0;
	/* http.c checked the syntax (it fails on a bad trailer): lines are NAME ":" value CRLF
	 * (or LF), the section ends with an empty line */
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		switch (t->st) {
		case T_START:
			if (c == '\r' || c == '\n')
				break;
			t->name_len = 0;
			t->name_long = false;
			t->st = T_NAME;
			/* fall through */
		case T_NAME:
			if (c == ':') {
				t->redact = !t->name_long &&
					    st_redact_header_listed(r, t->name, t->name_len);
				n += t->redact;
				t->st = T_OWS;
			} else if (t->name_len < sizeof(t->name)) {
				t->name[t->name_len++] = (char)c;
			} else {
				t->name_long = true;
			}
			break;
		case T_OWS:
			if (c == ' ' || c == '\t')
				break;
			t->st = T_VALUE;
			/* fall through */
		case T_VALUE:
			if (c == '\r' || c == '\n') {
				t->st = c == '\r' ? T_LF : T_START;
				break;
			}
			if (t->redact)
				buf[i] = '*';
			break;
		case T_LF:
			t->st = T_START;
			break;
		}
	}
	return n;
}

/* ---- JSON ------------------------------------------------------------------------------- */

enum { J_VALUE = 0, J_KEY, J_COLON, J_AFTER, J_STR, J_LIT };

void st_jredact_reset(struct st_jredact *j, bool on, bool sniff)
{
	memset(j, 0, offsetof(struct st_jredact, stack));
	j->on = on;
	j->sniff = sniff;
	j->redact_depth = -1;
}

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_lit(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '+' || c == '-' || c == '.';
}

/* Every byte but JSON's punctuation and whitespace: for what cannot be followed. */
static unsigned go_all(struct st_jredact *j)
{
	if (j->all)
		return 0;
	j->all = true;
	return 1;
}

/* The body stopped being JSON. Declared JSON: everything from here (too much, never too
 * little). Only guessed to be JSON (it started with '{' or '['): it is not, and what follows
 * passes (a binary body that starts with '{' is not overwritten). */
static unsigned broken(struct st_jredact *j)
{
	if (j->guessed) {
		j->on = false;
		return 0;
	}
	return go_all(j);
}

static bool in_redacted(const struct st_jredact *j)
{
	return j->redact_depth >= 0;
}

/* A value starts with c (not whitespace): string, container or literal. */
static unsigned value_start(struct st_jredact *j, uint8_t c)
{
	bool red = j->redact_next || in_redacted(j);

	j->redact_next = false;
	if (c == '"') {
		j->st = J_STR;
		j->in_key = false;
		j->redact_str = red;
		return 0;
	}
	if (c == '{' || c == '[') {
		if (j->depth >= ST_JREDACT_DEPTH)
			return go_all(j);
		if (red && !in_redacted(j))
			j->redact_depth = j->depth;
		j->stack[j->depth++] = c == '{';
		j->st = c == '{' ? J_KEY : J_VALUE;
		return 0;
	}
	if (!is_lit(c))
		return broken(j);
	j->st = J_LIT;
	j->redact_lit = red;
	j->lit_first = c;
	j->lit_len = 0;
	return 0;
}

/* A container closes with c; false when it does not match. */
static bool pop(struct st_jredact *j, uint8_t c, unsigned *n)
{
	if (!j->depth || j->stack[j->depth - 1] != (c == '}'))
		return false;
	j->depth--;
	if (j->redact_depth == j->depth) {
		j->redact_depth = -1;
		(*n)++;
	}
	j->st = J_AFTER;
	return true;
}

unsigned st_jredact_feed(struct st_jredact *j, const struct st_redact_rules *r, uint8_t *buf,
			 size_t len)
{
	unsigned n = 0;
	size_t i = 0;

	if (!j->on)
		return 0;
	while (i < len) {
		uint8_t c = buf[i];
		bool was_all = j->all;

		if (j->all) {
			if (!is_ws(c) && !(c && strchr("{}[],:\"", c))) /* strchr finds the NUL too */
				buf[i] = '*';
			i++;
			continue;
		}
		switch (j->st) {
		case J_VALUE:
			if (is_ws(c))
				break;
			if (j->sniff) {
				/* not declared JSON: an object or array is scanned, anything else
				 * (text, a form, a top-level scalar with no member) passes */
				j->sniff = false;
				if (c != '{' && c != '[') {
					j->on = false;
					return n;
				}
				j->guessed = true;
			}
			if (c == ']') {
				if (!pop(j, c, &n))
					n += broken(j);
				break;
			}
			n += value_start(j, c);
			if (j->st == J_LIT)
				continue; /* the literal's first byte is handled there */
			break;
		case J_KEY:
			if (is_ws(c))
				break;
			if (c == '"') {
				j->st = J_STR;
				j->in_key = true;
				j->redact_str = false;
				j->key_len = 0;
				j->key_long = false;
			} else if (c != '}' || !pop(j, c, &n)) {
				n += broken(j);
			}
			break;
		case J_COLON:
			if (is_ws(c))
				break;
			if (c != ':') {
				n += broken(j);
				break;
			}
			j->redact_next = !j->key_long &&
					 st_redact_field_listed(r, j->key, j->key_len);
			j->st = J_VALUE;
			break;
		case J_STR:
			if (j->esc) {
				j->esc = false;
			} else if (c == '\\') {
				j->esc = true;
			} else if (c == '"') {
				if (j->in_key) {
					j->st = J_COLON;
				} else {
					if (j->redact_str && !in_redacted(j))
						n++;
					j->st = J_AFTER;
				}
				break;
			}
			if (j->in_key) {
				if (j->key_len < ST_JREDACT_KEY_MAX)
					j->key[j->key_len++] = (char)c;
				else
					j->key_long = true;
			}
			if (j->redact_str)
				buf[i] = '*';
			break;
		case J_LIT:
			if (!is_lit(c)) {
				if (j->redact_lit && !in_redacted(j))
					n++;
				j->st = J_AFTER;
				continue; /* c is handled after the value */
			}
			if (j->redact_lit) {
				if (j->lit_first == 't' || j->lit_first == 'f' || j->lit_first == 'n')
					buf[i] = j->lit_len < 4 ? (uint8_t)"null"[j->lit_len] : ' ';
				else
					buf[i] = j->lit_len ? ' ' : '0';
			}
			j->lit_len++;
			break;
		case J_AFTER:
			if (is_ws(c))
				break;
			if (c == ',' && j->depth) {
				j->st = j->stack[j->depth - 1] ? J_KEY : J_VALUE;
			} else if (c == '}' || c == ']') {
				if (!pop(j, c, &n))
					n += broken(j);
			} else if (!j->depth) {
				j->st = J_VALUE; /* another top-level value (JSON lines) */
				continue;
			} else {
				n += broken(j);
			}
			break;
		}
		if (!j->on)
			return n; /* guessed, and not JSON after all */
		if (j->all && !was_all)
			continue; /* this byte too, in the mode that cannot leak */
		i++;
	}
	return n;
}

/* ---- options ------------------------------------------------------------------------------ */

/* Appends val to a list of names (at most ST_REDACT_MAX, no byte of bad, not longer than a
 * name redaction compares); 0, or -1 with err naming what it is not. */
static int add_name(const char **list, unsigned *n, const char *val, const char *bad,
		    const char *what, char *err, size_t errlen)
{
	if (*n >= ST_REDACT_MAX || !*val || strlen(val) > ST_JREDACT_KEY_MAX || strpbrk(val, bad)) {
		snprintf(err, errlen, "'%s' is not a %s (or more than %d given)", val, what,
			 ST_REDACT_MAX);
		return -1;
	}
	list[(*n)++] = val;
	return 0;
}

static int opt_header(void *o, const char *val, char *err, size_t errlen)
{
	struct st_redact_rules *r = o;

	return add_name(r->headers, &r->n_headers, val, " \t:\r\n", "header field name", err,
			errlen);
}

static int opt_query(void *o, const char *val, char *err, size_t errlen)
{
	struct st_redact_rules *r = o;

	return add_name(r->queries, &r->n_queries, val, "&;=?# ", "query parameter name", err,
			errlen);
}

static int opt_field(void *o, const char *val, char *err, size_t errlen)
{
	struct st_redact_rules *r = o;

	return add_name(r->fields, &r->n_fields, val, "\"\\", "JSON member name", err, errlen);
}

const struct st_opt st_redact_opts[] = {
	ST_OPT_FUNC("redact-header", 0, "NAME", ST_OPTF_REPEAT, opt_header,
		    "also redact this header field's values (repeatable; always:\n"
		    "Authorization, Proxy-Authorization, Cookie, Set-Cookie,\n"
		    "X-Api-Key, X-Auth-Token)"),
	ST_OPT_FUNC("redact-query", 0, "PARAM", ST_OPTF_REPEAT, opt_query,
		    "also redact this query parameter's values, in targets and\n"
		    "Location/Content-Location/Refresh/Referer (repeatable;\n"
		    "always: access_token refresh_token id_token token api_key\n"
		    "apikey password passwd secret client_secret)"),
	ST_OPT_FUNC("redact-field", 0, "NAME", ST_OPTF_REPEAT, opt_field,
		    "also redact the value of JSON body members NAME, at any\n"
		    "depth (repeatable; always: the names --redact-query lists)"),
	ST_OPT_FLAG("no-redact", 0, struct st_redact_rules, none,
		    "redact nothing, the default set neither: secrets leave as\n"
		    "they are (tee: every byte as it is)"),
};
const size_t st_redact_opts_n = sizeof(st_redact_opts) / sizeof(st_redact_opts[0]);

const char *st_redact_describe(const struct st_redact_rules *r, char *buf, size_t cap)
{
	size_t o = 0;

#define ADD(...)                                                                  \
	do {                                                                      \
		int k_ = snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__);  \
		o += k_ > 0 ? (size_t)k_ : 0;                                     \
	} while (0)
	if (!cap)
		return buf;
	buf[0] = 0;
	if (r->none) {
		ADD("none");
		return buf;
	}
	for (unsigned i = 0; st_redact_default_headers[i]; i++)
		ADD("%sheader:%s", i ? "," : "", st_redact_default_headers[i]);
	for (unsigned i = 0; i < r->n_headers; i++)
		ADD(",header:%s", r->headers[i]);
	for (unsigned i = 0; st_redact_default_names[i]; i++)
		ADD(",query:%s", st_redact_default_names[i]);
	for (unsigned i = 0; i < r->n_queries; i++)
		ADD(",query:%s", r->queries[i]);
	for (unsigned i = 0; st_redact_default_names[i]; i++)
		ADD(",json:%s", st_redact_default_names[i]);
	for (unsigned i = 0; i < r->n_fields; i++)
		ADD(",json:%s", r->fields[i]);
#undef ADD
	return buf;
}
