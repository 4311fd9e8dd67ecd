/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A strict, bounded JSON parser into a flat node array (json.h). Iterative:
 * nesting costs one frame of a fixed stack (max_depth), never C recursion. And the bounded
 * readers of a known shape (reports read back).
 */
#include "json.h"
#include "compare_agg.h"
#include "hash.h"
#include "http_chars.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

struct frame {
	uint32_t idx;  /* the container */
	uint32_t last; /* its last child so far, 0 when none */
};

const char *st_json_strerror(enum st_json_err e)
{
	switch (e) {
	case ST_JSON_OK: return "ok";
	case ST_JSON_E_SYNTAX: return "not JSON";
	case ST_JSON_E_DEPTH: return "nested too deep";
	case ST_JSON_E_NODES: return "too many values";
	case ST_JSON_E_NOMEM: return "out of memory";
	case ST_JSON_E_TRAILING: return "bytes after the value";
	case ST_JSON_E_EMPTY: return "empty";
	}
	return "?";
}

void st_json_doc_init(struct st_json_doc *d, uint32_t max_nodes, unsigned max_depth)
{
	memset(d, 0, sizeof(*d));
	d->max_nodes = max_nodes;
	d->max_depth = max_depth && max_depth < ST_JSON_MAX_DEPTH ? max_depth : ST_JSON_MAX_DEPTH;
}

void st_json_doc_free(struct st_json_doc *d)
{
	free(d->nodes);
	free(d->pool);
	d->nodes = NULL;
	d->pool = NULL;
	d->n = d->cap = 0;
	d->pool_len = d->pool_cap = 0;
}

size_t st_json_doc_mem(const struct st_json_doc *d)
{
	return (size_t)d->cap * sizeof(*d->nodes) + d->pool_cap;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && is_ws(s[i]))
		i++;
	return i;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int new_node(struct st_json_doc *d, uint32_t *idx)
{
	if (d->max_nodes && d->n >= d->max_nodes)
		return ST_JSON_E_NODES;
	if (d->n == d->cap) {
		uint32_t ncap = d->cap ? d->cap * 2 : 64;
		struct st_json_node *nn;

		if (d->max_nodes && ncap > d->max_nodes)
			ncap = d->max_nodes;
		if (ncap <= d->n)
			return ST_JSON_E_NODES;
		nn = realloc(d->nodes, (size_t)ncap * sizeof(*nn));
		if (!nn)
			return ST_JSON_E_NOMEM;
		d->nodes = nn;
		d->cap = ncap;
	}
	*idx = d->n++;
	memset(&d->nodes[*idx], 0, sizeof(d->nodes[*idx]));
	return 0;
}

static int pool_reserve(struct st_json_doc *d, size_t more)
{
	size_t need = d->pool_len + more;
	char *np;

	if (need <= d->pool_cap)
		return 0;
	if (need < d->pool_cap * 2)
		need = d->pool_cap * 2;
	if (need < 256)
		need = 256;
	np = realloc(d->pool, need);
	if (!np)
		return ST_JSON_E_NOMEM;
	d->pool = np;
	d->pool_cap = need;
	return 0;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int h = st_hexval((unsigned char)s[i]);

		if (h < 0)
			return -1;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		/* a lone surrogate too (WTF-8): kept distinct from every other string */
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * A string at s[*pos] == '"'. On success *pos is past the closing quote and off/len/pool say
 * where its decoded bytes are.
 */
static int parse_string(struct st_json_doc *d, size_t *pos, uint32_t *off, uint32_t *len,
			bool *pooled)
{
	const char *s = d->src;
	size_t n = d->src_len, i = *pos + 1, start = i, end;
	bool esc = false;
	char *o;

	/* the span, and whether it needs decoding */
	for (;;) {
		unsigned char c;

		if (i >= n)
			return ST_JSON_E_SYNTAX;
		c = (unsigned char)s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return ST_JSON_E_SYNTAX;
		if (c == '\\') {
			esc = true;
			if (i + 1 >= n)
				return ST_JSON_E_SYNTAX;
			i += 2;
			continue;
		}
		i++;
	}
	end = i;
	*pos = end + 1;
	if (!esc) {
		*off = (uint32_t)start;
		*len = (uint32_t)(end - start);
		*pooled = false;
		return 0;
	}
	/* decoded bytes are never more than the escaped ones (\uXXXX: 6 bytes -> at most 3,
	 * a surrogate pair: 12 -> 4) */
	if (pool_reserve(d, end - start))
		return ST_JSON_E_NOMEM;
	o = d->pool + d->pool_len;
	*off = (uint32_t)d->pool_len;
	for (i = start; i < end;) {
		char c = s[i];
		unsigned cp, lo;

		if (c != '\\') {
			*o++ = c;
			i++;
			continue;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (i + 4 > end || hex4(s + i, &cp))
				return ST_JSON_E_SYNTAX;
			i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= end && s[i] == '\\' &&
			    s[i + 1] == 'u' && !hex4(s + i + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
			o += put_utf8(o, cp);
			break;
		default:
			return ST_JSON_E_SYNTAX;
		}
	}
	*len = (uint32_t)(o - (d->pool + d->pool_len));
	d->pool_len += *len;
	*pooled = true;
	return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(const char *s, size_t n, size_t *pos)
{
	size_t i = *pos;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || !is_digit(s[i]))
		return ST_JSON_E_SYNTAX;
	if (s[i] == '0')
		i++;
	else
		while (i < n && is_digit(s[i]))
			i++;
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !is_digit(s[i]))
			return ST_JSON_E_SYNTAX;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return ST_JSON_E_SYNTAX;
		while (i < n && is_digit(s[i]))
			i++;
	}
	*pos = i;
	return 0;
}

static int fail(struct st_json_doc *d, int err, size_t pos)
{
	d->err = (enum st_json_err)err;
	d->err_off = pos;
	return -1;
}

/* An object member's key at s[*pos], then the colon; *pos ends at the value. */
static int parse_key(struct st_json_doc *d, size_t *pos, uint32_t *koff, uint32_t *klen,
		     bool *kpool)
{
	int r;

	if (*pos >= d->src_len || d->src[*pos] != '"')
		return ST_JSON_E_SYNTAX;
	r = parse_string(d, pos, koff, klen, kpool);
	if (r)
		return r;
	*pos = skip_ws(d->src, d->src_len, *pos);
	if (*pos >= d->src_len || d->src[*pos] != ':')
		return ST_JSON_E_SYNTAX;
	*pos = skip_ws(d->src, d->src_len, *pos + 1);
	return 0;
}

int st_json_parse(struct st_json_doc *d, const char *src, size_t len)
{
	struct frame st[ST_JSON_MAX_DEPTH];
	unsigned depth = 0;
	uint32_t koff = 0, klen = 0;
	bool kpool = false, member = false;
	size_t pos;
	int r;

	st_json_doc_start(d, src, len);
	if (len >= UINT32_MAX)
		return fail(d, ST_JSON_E_NODES, 0);
	pos = skip_ws(src, len, 0);
	if (pos == len)
		return fail(d, ST_JSON_E_EMPTY, pos);
	for (;;) {
		struct st_json_node *nd;
		uint32_t idx;
		char c;

		/* a value at pos */
		if (pos >= len)
			return fail(d, ST_JSON_E_SYNTAX, pos);
		r = new_node(d, &idx);
		if (r)
			return fail(d, r, pos);
		nd = &d->nodes[idx];
		if (member) {
			nd->key_off = koff;
			nd->key_len = klen;
			if (kpool)
				nd->flags |= ST_JSON_F_KEY_POOL;
			member = false;
		}
		if (depth) {
			struct frame *f = &st[depth - 1];

			d->nodes[f->idx].n++;
			if (f->last)
				d->nodes[f->last].next = idx;
			f->last = idx;
		}
		c = src[pos];
		nd->off = (uint32_t)pos;
		switch (c) {
		case '{':
		case '[':
			nd->type = c == '{' ? ST_JSON_OBJECT : ST_JSON_ARRAY;
			if (depth >= d->max_depth)
				return fail(d, ST_JSON_E_DEPTH, pos);
			pos = skip_ws(src, len, pos + 1);
			if (pos < len && src[pos] == (c == '{' ? '}' : ']')) {
				nd->len = (uint32_t)(pos + 1 - nd->off);
				pos++;
				break; /* empty: a complete value */
			}
			st[depth].idx = idx;
			st[depth].last = 0;
			depth++;
			if (c == '{') {
				r = parse_key(d, &pos, &koff, &klen, &kpool);
				if (r)
					return fail(d, r, pos);
				member = true;
			}
			continue; /* the first child */
		case '"': {
			uint32_t off, l;
			bool pooled;

			r = parse_string(d, &pos, &off, &l, &pooled);
			if (r)
				return fail(d, r, pos);
			nd = &d->nodes[idx];
			nd->type = ST_JSON_STRING;
			nd->off = off;
			nd->len = l;
			if (pooled)
				nd->flags |= ST_JSON_F_STR_POOL;
			break;
		}
		case 't':
		case 'f':
		case 'n': {
			const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
			size_t ll = strlen(lit);

			if (len - pos < ll || memcmp(src + pos, lit, ll))
				return fail(d, ST_JSON_E_SYNTAX, pos);
			nd->type = c == 't' ? ST_JSON_TRUE : c == 'f' ? ST_JSON_FALSE : ST_JSON_NULL;
			nd->len = (uint32_t)ll;
			pos += ll;
			break;
		}
		default:
			r = parse_number(src, len, &pos);
			if (r)
				return fail(d, r, pos);
			nd->type = ST_JSON_NUMBER;
			nd->len = (uint32_t)(pos - nd->off);
			break;
		}
		/* after a complete value: a comma, the end of containers, or the end */
		for (;;) {
			struct frame *f;
			char close;

			pos = skip_ws(src, len, pos);
			if (!depth) {
				if (pos != len)
					return fail(d, ST_JSON_E_TRAILING, pos);
				return 0;
			}
			if (pos >= len)
				return fail(d, ST_JSON_E_SYNTAX, pos);
			f = &st[depth - 1];
			close = d->nodes[f->idx].type == ST_JSON_OBJECT ? '}' : ']';
			if (src[pos] == ',') {
				pos = skip_ws(src, len, pos + 1);
				if (close == '}') {
					r = parse_key(d, &pos, &koff, &klen, &kpool);
					if (r)
						return fail(d, r, pos);
					member = true;
				}
				break; /* the next child */
			}
			if (src[pos] != close)
				return fail(d, ST_JSON_E_SYNTAX, pos);
			d->nodes[f->idx].len = (uint32_t)(pos + 1 - d->nodes[f->idx].off);
			pos++;
			depth--;
		}
	}
}

/* ---- documents built by other decoders -------------------------------------------------- */

void st_json_doc_start(struct st_json_doc *d, const char *src, size_t len)
{
	d->src = src;
	d->src_len = len;
	d->n = 0;
	d->pool_len = 0;
	d->err = ST_JSON_OK;
	d->err_off = 0;
}

int64_t st_json_node_add(struct st_json_doc *d)
{
	uint32_t idx;
	int r = new_node(d, &idx);

	if (r) {
		d->err = (enum st_json_err)r;
		return -1;
	}
	return idx;
}

int64_t st_json_pool_add(struct st_json_doc *d, const void *p, size_t n)
{
	size_t off = d->pool_len;

	if (d->pool_len + n >= UINT32_MAX || pool_reserve(d, n)) {
		d->err = ST_JSON_E_NOMEM;
		return -1;
	}
	if (n)
		memcpy(d->pool + off, p, n);
	d->pool_len += n;
	return (int64_t)off;
}

bool st_json_utf8_text(const uint8_t *p, size_t n, bool cut)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;

		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
				return false;
			i++;
			continue;
		}
		k = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? (c < 0xf0 ? 2 : 9) : c >= 0xc2 ? 1 : 9;
		if (k == 9)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n)
				return cut;
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		}
		i += k + 1;
	}
	return true;
}

/* ---- numbers ------------------------------------------------------------------------- */

/* A number as 0.DIGITS x 10^exp: the significant digits (span may hold a '.'), no leading
 * or trailing zeros. */
struct numc {
	bool neg, zero;
	const char *p, *end; /* first and one past the last significant digit */
	int64_t exp;
};

#define EXP_SAT (INT64_C(1) << 52)

static void num_canon(const char *s, size_t len, struct numc *c)
{
	size_t i = 0, int_s, int_e, fr_s, fr_e;
	int64_t e = 0, lead;
	bool eneg = false;
	const char *q;

	memset(c, 0, sizeof(*c));
	if (i < len && s[i] == '-') {
		c->neg = true;
		i++;
	}
	int_s = i;
	while (i < len && is_digit(s[i]))
		i++;
	int_e = i;
	fr_s = fr_e = i;
	if (i < len && s[i] == '.') {
		fr_s = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		fr_e = i;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		/* saturating: exponents past 2^52 are all "huge" (compared by their digits) */
		for (; i < len && is_digit(s[i]); i++)
			if (e < EXP_SAT)
				e = e * 10 + (s[i] - '0');
		if (eneg)
			e = -e;
	}
	/* the first non-zero digit */
	lead = 0;
	for (q = s + int_s; q < s + int_e && *q == '0'; q++)
		lead++;
	if (q == s + int_e) {
		for (q = s + fr_s; q < s + fr_e && *q == '0'; q++)
			lead++;
		if (q == s + fr_e) {
			c->zero = true;
			c->neg = false; /* -0 == 0 */
			return;
		}
	}
	c->p = q;
	/* the last non-zero digit */
	q = fr_e > fr_s ? s + fr_e : s + int_e;
	while (q > c->p && (q[-1] == '0' || q[-1] == '.'))
		q--;
	c->end = q;
	c->exp = (int64_t)(int_e - int_s) - lead + e;
}

bool st_json_num_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	struct numc x, y;
	const char *p, *q;

	num_canon(a, alen, &x);
	num_canon(b, blen, &y);
	if (x.zero || y.zero)
		return x.zero && y.zero;
	if (x.neg != y.neg || x.exp != y.exp)
		return false;
	for (p = x.p, q = y.p;;) {
		if (p < x.end && *p == '.')
			p++;
		if (q < y.end && *q == '.')
			q++;
		if (p == x.end || q == y.end)
			return p == x.end && q == y.end;
		if (*p++ != *q++)
			return false;
	}
}

uint64_t st_json_num_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ ST_JSON_NUMBER;
	struct numc c;

	num_canon(s, len, &c);
	if (c.zero)
		return st_mix64(h);
	h = st_fnv1a(h, &c.neg, 1);
	h = st_fnv1a(h, &c.exp, sizeof(c.exp));
	for (const char *p = c.p; p < c.end; p++)
		if (*p != '.')
			h = st_fnv1a(h, p, 1);
	return st_mix64(h);
}

void st_json_hashes(const struct st_json_doc *d, uint64_t *out, bool unordered_arrays)
{
	for (uint32_t i = d->n; i-- > 0;) {
		const struct st_json_node *nd = &d->nodes[i];
		uint64_t h = 0xcbf29ce484222325ull ^ nd->type;
		uint32_t c;

		switch (nd->type) {
		case ST_JSON_NUMBER:
			h = st_json_num_hash(st_json_bytes(d, nd), nd->len);
			break;
		case ST_JSON_STRING:
			h = st_mix64(st_fnv1a(h, st_json_bytes(d, nd), nd->len));
			break;
		case ST_JSON_ARRAY:
			if (unordered_arrays) {
				uint64_t sum = 0;

				for (c = nd->n ? i + 1 : 0; c; c = d->nodes[c].next)
					sum += st_mix64(out[c]);
				h = st_mix64(h ^ sum);
				break;
			}
			for (c = nd->n ? i + 1 : 0; c; c = d->nodes[c].next)
				h = st_mix64(h * 31 + out[c]);
			break;
		case ST_JSON_OBJECT: {
			uint64_t sum = 0;

			/* a sum: member order does not matter */
			for (c = nd->n ? i + 1 : 0; c; c = d->nodes[c].next) {
				const struct st_json_node *m = &d->nodes[c];

				sum += st_mix64(st_fnv1a(0x9e3779b97f4a7c15ull, st_json_key(d, m), m->key_len) ^
					   out[c]);
			}
			h = st_mix64(h ^ sum);
			break;
		}
		default:
			h = st_mix64(h);
			break;
		}
		out[i] = h;
	}
}

/* ---- reading a known shape ------------------------------------------------------------------ */

int st_json_rd_fail(struct st_json_rd *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->where[0])
		snprintf(r->err, r->errlen, "%s: %s", r->where, msg);
	else
		snprintf(r->err, r->errlen, "%s", msg);
	/* names and values quoted from the file: one line whatever they hold */
	for (char *p = r->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

uint32_t st_json_rd_child(const struct st_json_rd *r, uint32_t i)
{
	return st_json_rd_node(r, i)->n ? i + 1 : 0;
}

uint32_t st_json_rd_next(const struct st_json_rd *r, uint32_t i)
{
	return st_json_rd_node(r, i)->next;
}

uint32_t st_json_rd_member(const struct st_json_rd *r, uint32_t obj, const char *key)
{
	size_t kl = strlen(key);

	if (st_json_rd_node(r, obj)->type != ST_JSON_OBJECT)
		return 0;
	for (uint32_t c = st_json_rd_child(r, obj); c; c = st_json_rd_next(r, c))
		if (st_json_rd_node(r, c)->key_len == kl &&
		    !memcmp(st_json_key(r->d, st_json_rd_node(r, c)), key, kl))
			return c;
	return 0;
}

bool st_json_rd_is(const struct st_json_rd *r, uint32_t i, enum st_json_type t)
{
	return i && st_json_rd_node(r, i)->type == t;
}

int st_json_rd_num_u64(struct st_json_rd *r, uint32_t i, const char *key, uint64_t max,
		       uint64_t *out)
{
	const struct st_json_node *n = st_json_rd_node(r, i);
	const char *s = st_json_bytes(r->d, n);
	char buf[24];
	unsigned long long v;
	char *end;

	if (!i || n->type != ST_JSON_NUMBER || !n->len || n->len >= sizeof(buf))
		return st_json_rd_fail(r, "\"%s\" is missing or not a whole number", key);
	for (uint32_t k = 0; k < n->len; k++)
		if (s[k] < '0' || s[k] > '9')
			return st_json_rd_fail(r, "\"%s\" is not a whole number", key);
	memcpy(buf, s, n->len);
	buf[n->len] = 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || *end || v > max)
		return st_json_rd_fail(r, "\"%s\" is out of range (%s)", key, buf);
	*out = v;
	return 0;
}

int st_json_rd_u64(struct st_json_rd *r, uint32_t obj, const char *key, uint64_t max,
		   uint64_t *out)
{
	return st_json_rd_num_u64(r, st_json_rd_member(r, obj, key), key, max, out);
}

int st_json_rd_num_dbl(struct st_json_rd *r, uint32_t i, const char *key, double *out)
{
	char buf[64], *end;

	if (!st_json_rd_is(r, i, ST_JSON_NUMBER) || st_json_rd_node(r, i)->len >= sizeof(buf))
		return st_json_rd_fail(r, "\"%s\" is missing or not a number", key);
	memcpy(buf, st_json_bytes(r->d, st_json_rd_node(r, i)), st_json_rd_node(r, i)->len);
	buf[st_json_rd_node(r, i)->len] = 0;
	*out = strtod(buf, &end);
	if (*end)
		return st_json_rd_fail(r, "\"%s\" is not a number", key);
	return 0;
}

int st_json_rd_dbl(struct st_json_rd *r, uint32_t obj, const char *key, double *out)
{
	return st_json_rd_num_dbl(r, st_json_rd_member(r, obj, key), key, out);
}

int st_json_rd_bool(struct st_json_rd *r, uint32_t obj, const char *key, bool *out)
{
	uint32_t i = st_json_rd_member(r, obj, key);

	if (!st_json_rd_is(r, i, ST_JSON_TRUE) && !st_json_rd_is(r, i, ST_JSON_FALSE))
		return st_json_rd_fail(r, "\"%s\" is missing or not true or false", key);
	*out = st_json_rd_node(r, i)->type == ST_JSON_TRUE;
	return 0;
}

int st_json_rd_str_node(struct st_json_rd *r, uint32_t i, const char *key, char *out, size_t cap)
{
	const struct st_json_node *n = st_json_rd_node(r, i);
	const unsigned char *p = (const unsigned char *)st_json_bytes(r->d, n);

	if (!st_json_rd_is(r, i, ST_JSON_STRING))
		return st_json_rd_fail(r, "\"%s\" is missing or not a string", key);
	if (n->len >= cap || memchr(p, 0, n->len))
		return st_json_rd_fail(r, "\"%s\" is longer than %zu bytes or holds a NUL", key,
				       cap - 1);
	/* what a report holds is UTF-8 (st_cmp_utf8_fix): so it is written back the same */
	for (uint32_t k = 0, q; k < n->len; k += q)
		if (!(q = (uint32_t)st_cmp_utf8_seq(p + k, n->len - k)))
			return st_json_rd_fail(r, "\"%s\" is not UTF-8", key);
	memcpy(out, p, n->len);
	out[n->len] = 0;
	return 0;
}

int st_json_rd_str(struct st_json_rd *r, uint32_t obj, const char *key, char *out, size_t cap)
{
	return st_json_rd_str_node(r, st_json_rd_member(r, obj, key), key, out, cap);
}

/* "2026-11-30T15:03:10.710Z" (st_cmp_time_str) to ns. */
int st_json_rd_time(struct st_json_rd *l, uint32_t obj, const char *key, uint64_t *out)
{
	char s[32], z = 0;
	struct tm tm = { 0 };
	int ms = 0, n = 0;
	time_t t;

	if (st_json_rd_str(l, obj, key, s, sizeof(s)))
		return -1;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z, &n) != 8 || z != 'Z' ||
	    (size_t)n != strlen(s) || strlen(s) != 24 || tm.tm_year < 1970 || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || ms < 0)
		return st_json_rd_fail(l, "\"%s\" is not a time like 2026-11-30T15:03:10.710Z", key);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t < 0)
		return st_json_rd_fail(l, "\"%s\" is out of range", key);
	*out = (uint64_t)t * 1000000000ull + (uint64_t)ms * 1000000ull;
	return 0;
}

int st_json_rd_parse(struct st_json_doc *d, const char *buf, size_t len, size_t max,
		     unsigned depth, char *err, size_t errlen)
{
	if (len > max) {
		snprintf(err, errlen, "larger than %zu MiB", max >> 20);
		return -1;
	}
	/* a value needs at least 1 byte: no more nodes than bytes */
	st_json_doc_init(d, (uint32_t)len + 1, depth);
	if (st_json_parse(d, buf, len)) {
		snprintf(err, errlen, "not JSON (%s at byte %zu)", st_json_strerror(d->err), d->err_off);
		st_json_doc_free(d);
		return -1;
	}
	return 0;
}

int st_json_read_file(const char *path, size_t max, char **bufp, size_t *lenp, char *err,
		      size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto fail;
	}
	if ((uint64_t)sb.st_size > max) {
		snprintf(err, errlen, "larger than %zu MiB", max >> 20);
		goto fail;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (len < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)sb.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s", n ? strerror(errno) : "shorter than its size");
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len] = 0;
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}
