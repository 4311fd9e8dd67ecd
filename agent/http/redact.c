/* SPDX-License-Identifier: GPL-2.0-only */
/* Length-preserving redaction of header fields, query parameters and JSON fields (redact.h). */
#include <string.h>
#include <strings.h>

#include "redact.h"

const char *const st_redact_default_headers[] = {
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
};
const unsigned st_redact_default_n = 4;

static bool listed(const char *const *list, unsigned n, const char *name, size_t len,
		   bool nocase)
{
	for (unsigned i = 0; i < n; i++)
		if (strlen(list[i]) == len &&
		    !(nocase ? strncasecmp(list[i], name, len) : memcmp(list[i], name, len)))
			return true;
	return false;
}

unsigned st_redact_head(const struct st_redact_rules *r, const struct st_http_head *h,
			bool request, uint8_t *out)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];

		if (!f->value_len)
			continue;
		if (listed(st_redact_default_headers, st_redact_default_n, f->name, f->name_len,
			   true) ||
		    listed(r->headers, r->n_headers, f->name, f->name_len, true)) {
			memset(out + (f->value - h->raw), '*', f->value_len);
			n++;
		}
	}
	if (request && r->n_queries && h->target) {
		const char *end = h->target + h->target_len;
		const char *q = memchr(h->target, '?', h->target_len);

		while (q && q < end) {
			const char *name = q + 1, *amp, *eq;

			amp = memchr(name, '&', (size_t)(end - name));
			if (!amp)
				amp = end;
			eq = memchr(name, '=', (size_t)(amp - name));
			if (eq && eq + 1 < amp &&
			    listed(r->queries, r->n_queries, name, (size_t)(eq - name), false)) {
				memset(out + (eq + 1 - h->raw), '*', (size_t)(amp - eq - 1));
				n++;
			}
			q = amp < end ? amp : NULL;
		}
	}
	return n;
}

bool st_redact_is_json(const struct st_http_head *h)
{
	int i = st_http__head_find(h, "Content-Type", 0);

	if (i < 0)
		return false;
	for (uint32_t k = 0; k + 4 <= h->headers[i].value_len; k++)
		if (!strncasecmp(h->headers[i].value + k, "json", 4))
			return true;
	return false;
}

enum { J_VALUE = 0, J_KEY, J_COLON, J_AFTER, J_STR, J_LIT };

void st_jredact_reset(struct st_jredact *j, bool on)
{
	memset(j, 0, offsetof(struct st_jredact, stack));
	j->on = on;
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
		return go_all(j);
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
			if (!is_ws(c) && !strchr("{}[],:\"", c))
				buf[i] = '*';
			i++;
			continue;
		}
		switch (j->st) {
		case J_VALUE:
			if (is_ws(c))
				break;
			if (c == ']') {
				if (!pop(j, c, &n))
					n += go_all(j);
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
				n += go_all(j);
			}
			break;
		case J_COLON:
			if (is_ws(c))
				break;
			if (c != ':') {
				n += go_all(j);
				break;
			}
			j->redact_next = !j->key_long &&
					 listed(r->fields, r->n_fields, j->key, j->key_len, false);
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
					n += go_all(j);
			} else if (!j->depth) {
				j->st = J_VALUE; /* another top-level value (JSON lines) */
				continue;
			} else {
				n += go_all(j);
			}
			break;
		}
		if (j->all && !was_all)
			continue; /* this byte too, in the mode that cannot leak */
		i++;
	}
	return n;
}
