/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One comparison of two responses (compare_diff.h; the rules are in
 * docs/COMPARE.md).
 */
#include "compare_diff.h"
#include "grpc.h"
#include "hash.h"
#include "protobuf.h"
#include "redact.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define DECODE_CHUNK (64u * 1024)

const char *st_cmp_kind_name(enum st_cmp_kind k)
{
	static const char *const names[] = {
		[ST_CMP_VALUE] = "value", [ST_CMP_TYPE] = "type", [ST_CMP_MISSING] = "missing",
		[ST_CMP_EXTRA] = "extra", [ST_CMP_ARRAY_LENGTH] = "array_length",
		[ST_CMP_LINES] = "lines", [ST_CMP_BYTES] = "bytes",
	};

	return (unsigned)k < ST_CMP_KIND__COUNT ? names[k] : "?";
}

/* ---- hashing ---------------------------------------------------------------------------- */

uint64_t st_cmp_hash_init(void)
{
	return (uint64_t)crc32(0, NULL, 0) << 32 | adler32(0, NULL, 0);
}

uint64_t st_cmp_hash(uint64_t h, const void *p, size_t n)
{
	uLong c = (uLong)(h >> 32), a = (uLong)(h & 0xffffffffu);

	if (!n)
		return h;
	c = crc32_z(c, p, n);
	a = adler32_z(a, p, n);
	return (uint64_t)c << 32 | (a & 0xffffffffu);
}

/* ---- what values look like -------------------------------------------------------------- */

static bool all_of(const char *s, size_t n, int (*fn)(int))
{
	for (size_t i = 0; i < n; i++)
		if (!fn((unsigned char)s[i]))
			return false;
	return n > 0;
}

static bool is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool st_cmp_looks_id(const char *s, size_t n)
{
	if (all_of(s, n, isdigit))
		return true;
	if (is_uuid(s, n))
		return true;
	return n >= 16 && all_of(s, n, isxdigit);
}

/* 2026-11-26T10:08:00Z, 2026-11-26 10:08:00.123+01:00 */
static bool is_iso_time(const char *s, size_t n)
{
	static const char pat[] = "dddd-dd-ddTdd:dd";

	if (n < sizeof(pat) - 1)
		return false;
	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		char p = pat[i], c = s[i];

		if (p == 'd' ? !isdigit((unsigned char)c) : p == 'T' ? (c != 'T' && c != ' ') : c != p)
			return false;
	}
	return true;
}

/* Thu, 26 Nov 2026 10:08:00 GMT */
static bool is_http_date(const char *s, size_t n)
{
	return n == 29 && s[3] == ',' && s[4] == ' ' && !memcmp(s + 26, "GMT", 3) && s[19] == ':';
}

/* seconds, milliseconds, microseconds or nanoseconds since 1970, between 2001 and 2286 */
static bool is_epoch(const char *s, size_t n)
{
	size_t int_len = 0, i = 0;

	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	int_len = i;
	if (i < n) {
		if (s[i] != '.' || i + 1 >= n)
			return false;
		for (i++; i < n; i++)
			if (!isdigit((unsigned char)s[i]))
				return false;
	}
	return (int_len == 10 || int_len == 13 || int_len == 16 || int_len == 19) && s[0] >= '1' &&
	       s[0] <= '9';
}

/* a token of 20+ letters and digits with both (base64/base62 random ids) */
static bool is_token(const char *s, size_t n)
{
	bool alpha = false, digit = false;

	if (n < 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isdigit(c))
			digit = true;
		else if (isalpha(c))
			alpha = true;
		else if (c != '-' && c != '_' && c != '+' && c != '/' && c != '=')
			return false;
	}
	return alpha && digit;
}

bool st_cmp_looks_volatile(const char *s, size_t n)
{
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (!n)
		return false;
	return is_uuid(s, n) || (n >= 16 && all_of(s, n, isxdigit)) || is_iso_time(s, n) ||
	       is_http_date(s, n) || is_epoch(s, n) || is_token(s, n);
}

/* ---- paths -------------------------------------------------------------------------------- */

static bool is_ident(const char *k, size_t n)
{
	if (!n || !(isalpha((unsigned char)k[0]) || k[0] == '_' || k[0] == '$'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		if (!isalnum(c) && c != '_' && c != '$' && c != '-')
			return false;
	}
	return true;
}

static bool all_digits(const char *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (k[i] < '0' || k[i] > '9')
			return false;
	return n > 0;
}

/* Appends a member segment for key to out (at most cap bytes, NUL-terminated); returns the
 * new length, or cap + 1 when it does not fit. field: the key is a schema's field (a protobuf
 * field number or name, ST_JSON_F_KEY_FIELD): kept as it is, never taken for an id. */
static size_t seg_key(char *out, size_t len, size_t cap, const char *k, size_t n, bool field)
{
	size_t o = len;

#define PUT(c)                       \
	do {                         \
		if (o >= cap)        \
			return cap + 1; \
		out[o++] = (c);      \
	} while (0)
	if (!field && st_cmp_looks_id(k, n)) {
		for (const char *p = ".{id}"; *p; p++)
			PUT(*p);
	} else if (is_ident(k, n) || (field && all_digits(k, n))) {
		PUT('.');
		for (size_t i = 0; i < n; i++)
			PUT(k[i]);
	} else {
		PUT('[');
		PUT('"');
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)k[i];

			if (c == '"' || c == '\\') {
				PUT('\\');
				PUT((char)c);
			} else if (c < 0x20 || c == 0x7f) {
				char e[8];

				snprintf(e, sizeof(e), "\\u%04x", c);
				for (char *p = e; *p; p++)
					PUT(*p);
			} else {
				PUT((char)c);
			}
		}
		PUT('"');
		PUT(']');
	}
#undef PUT
	if (o >= cap)
		return cap + 1;
	out[o] = 0;
	return o;
}

int st_cmp_path_normalize(const char *s, char *out, size_t outlen)
{
	size_t o = 1, i = 1, n = strlen(s);

	if (outlen < 2 || s[0] != '$')
		return -1;
	out[0] = '$';
	out[1] = 0;
	if (s[1] == '.' && s[2] == '.') {
		/* any member of this name, anywhere */
		if (!s[3] || n + 1 > outlen || strpbrk(s + 3, ".[]"))
			return -1;
		memcpy(out, s, n + 1);
		return 0;
	}
	while (i < n) {
		if (s[i] == '.') {
			size_t st = ++i;

			while (i < n && s[i] != '.' && s[i] != '[')
				i++;
			if (i == st)
				return -1;
			if (all_digits(s + st, i - st))
				/* a field number, or an id: st_cmp_path_match takes it for either */
				o = seg_key(out, o, outlen - 1, s + st, i - st, true);
			else if (st_cmp_looks_id(s + st, i - st) ||
				 (i - st == 4 && !memcmp(s + st, "{id}", 4)))
				o = seg_key(out, o, outlen - 1, "0", 1, false);
			else
				o = seg_key(out, o, outlen - 1, s + st, i - st, false);
		} else if (s[i] == '[') {
			size_t st = ++i;

			if (i < n && (s[i] == '"' || s[i] == '\'')) {
				char q = s[i], key[ST_CMP_PATH_MAX];
				size_t kl = 0;

				for (i++; i < n && s[i] != q; i++) {
					if (s[i] == '\\' && i + 1 < n)
						i++;
					if (kl + 1 >= sizeof(key))
						return -1;
					key[kl++] = s[i];
				}
				if (i + 1 >= n || s[i + 1] != ']')
					return -1;
				i += 2;
				o = seg_key(out, o, outlen - 1, key, kl, false);
			} else {
				while (i < n && s[i] != ']')
					i++;
				if (i >= n || i == st)
					return -1;
				if (!(i - st == 1 && s[st] == '*') && !all_of(s + st, i - st, isdigit))
					return -1;
				i++;
				if (o + 3 >= outlen)
					return -1;
				memcpy(out + o, "[*]", 4);
				o += 3;
			}
		} else {
			return -1;
		}
		if (o > outlen - 1)
			return -1;
	}
	return 0;
}

/* The length of the segment at p ('.' key, '[' index or quoted key), as seg_key writes them. */
static size_t seg_len(const char *p)
{
	size_t i = 1;

	if (p[0] == '.') {
		while (p[i] && p[i] != '.' && p[i] != '[')
			i++;
		return i;
	}
	if (p[0] == '[' && p[1] == '"') {
		for (i = 2; p[i] && p[i] != '"'; i++)
			if (p[i] == '\\' && p[i + 1])
				i++;
		return p[i] ? (p[i + 1] == ']' ? i + 2 : i + 1) : i;
	}
	while (p[i] && p[i - 1] != ']')
		i++;
	return i;
}

bool st_cmp_path_match(const char *pattern, const char *p)
{
	if (*pattern++ != '$' || *p++ != '$')
		return false;
	while (*pattern && *p) {
		size_t a = seg_len(pattern), b = seg_len(p);

		if (!(a == b && !memcmp(pattern, p, a)) &&
		    !(pattern[0] == '.' && all_digits(pattern + 1, a - 1) && b == 5 &&
		      !memcmp(p, ".{id}", 5)))
			return false;
		pattern += a;
		p += b;
	}
	return !*pattern && !*p;
}

/* ---- display text ------------------------------------------------------------------------ */

/* Copies at most ST_CMP_VAL_MAX bytes of s as display text: control characters become
 * spaces (quote: JSON-escaped, in quotes), a cut is marked "..." and never splits a UTF-8
 * sequence. */
static void show_max(char *out, const char *s, size_t n, bool quote, size_t max)
{
	size_t o = 0, i;
	bool cut = false;

	if (quote)
		out[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = quote && (c == '"' || c == '\\' || c < 0x20) ? (c < 0x20 ? 6 : 2) : 1;

		if (o + need > max - (quote ? 1 : 0)) {
			cut = true;
			break;
		}
		if (quote && (c == '"' || c == '\\')) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (quote && c < 0x20) {
				o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
			} else {
				out[o++] = ' ';
			}
		} else {
			out[o++] = (char)c;
		}
	}
	if (cut) {
		/* never end inside a UTF-8 sequence */
		while (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
			o--;
	}
	if (quote && !cut)
		out[o++] = '"';
	if (cut) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
}

static void show(char *out, const char *s, size_t n, bool quote)
{
	show_max(out, s, n, quote, ST_CMP_VAL_MAX);
}

static void show_node(char *out, const struct st_cmp_view *v, uint32_t i)
{
	const struct st_json_node *nd = st_json_node(&v->doc, i);

	show(out, st_json_bytes(&v->doc, nd), nd->len, nd->type == ST_JSON_STRING);
}

/* ---- the difference list ------------------------------------------------------------------ */

static uint32_t slot_of(const struct st_cmp_diffs *o, const char *path, bool *found)
{
	uint32_t mask = 2 * ST_CMP_DIFFS_MAX - 1;
	uint32_t i = (uint32_t)st_fnv1a(ST_FNV1A_INIT, path, strlen(path)) & mask;

	for (;; i = (i + 1) & mask) {
		if (!o->slot[i]) {
			*found = false;
			return i;
		}
		if (!strcmp(o->d[o->slot[i] - 1].path, path)) {
			*found = true;
			return i;
		}
	}
}

const struct st_cmp_diff *st_cmp_diffs_find(const struct st_cmp_diffs *d, const char *path)
{
	bool found;
	uint32_t i = slot_of(d, path, &found);

	return found ? &d->d[d->slot[i] - 1] : NULL;
}

/* A difference at path: the new entry to fill in, or NULL when the path has one already
 * (counted) or the list is full (counted in more). */
static struct st_cmp_diff *add(struct st_cmp_diffs *o, const char *path, enum st_cmp_kind k)
{
	bool found;
	uint32_t i = slot_of(o, path, &found);
	struct st_cmp_diff *d;

	if (found) {
		o->d[o->slot[i] - 1].count++;
		return NULL;
	}
	if (o->n >= ST_CMP_DIFFS_MAX) {
		o->more++;
		return NULL;
	}
	d = &o->d[o->n];
	memset(d, 0, offsetof(struct st_cmp_diff, a));
	d->a[0] = d->b[0] = d->note[0] = 0;
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->kind = (uint8_t)k;
	d->count = 1;
	o->slot[i] = (uint16_t)(++o->n);
	return d;
}

static void set_vol(struct st_cmp_diff *d)
{
	d->vol = d->kind == ST_CMP_VALUE && d->a_set && d->b_set &&
		 st_cmp_looks_volatile(d->a, strlen(d->a)) && st_cmp_looks_volatile(d->b, strlen(d->b));
}

/* ---- scratch -------------------------------------------------------------------------------- */

static int idx_reserve(struct st_cmp_scratch *s, size_t more)
{
	if (s->idx_top + more > s->idx_cap) {
		size_t ncap = s->idx_cap ? s->idx_cap : 256;
		uint32_t *n;

		while (ncap < s->idx_top + more)
			ncap *= 2;
		n = realloc(s->idx, ncap * sizeof(*n));
		if (!n)
			return -1;
		s->idx = n;
		s->idx_cap = ncap;
	}
	return 0;
}

static int h_reserve(struct st_cmp_scratch *s, size_t n)
{
	if (n > s->h_cap) {
		uint64_t *h = realloc(s->h, n * sizeof(*h));

		if (!h)
			return -1;
		s->h = h;
		s->h_cap = n;
	}
	return 0;
}

void st_cmp_scratch_free(struct st_cmp_scratch *s)
{
	free(s->idx);
	free(s->h);
	memset(s, 0, sizeof(*s));
}

/* ---- views: decoding and media type ------------------------------------------------------- */

void st_cmp_view_init(struct st_cmp_view *v)
{
	memset(v, 0, sizeof(*v));
	st_json_doc_init(&v->doc, 0, 0);
}

void st_cmp_view_free(struct st_cmp_view *v)
{
	st_json_doc_free(&v->doc);
	free(v->hashes);
	free(v->dec);
	free(v->msgs);
	free(v->spans);
	memset(v, 0, sizeof(*v));
}

size_t st_cmp_view_mem(const struct st_cmp_view *v)
{
	return st_json_doc_mem(&v->doc) + v->hashes_cap * sizeof(uint64_t) + v->dec_cap +
	       v->msgs_cap + v->spans_cap * sizeof(*v->spans);
}

/* The first field named name (lower case), or NULL. */
static const char *hdr_get(const struct st_cmp_msg *m, const char *name, size_t *vlen)
{
	const char *p = m->hdrs, *end = m->hdrs + m->hdrs_len;

	for (uint32_t i = 0; i < m->nhdrs && p < end; i++) {
		const char *nm = p, *val = nm + strlen(nm) + 1;

		p = val + strlen(val) + 1;
		if (!strcasecmp(nm, name)) {
			*vlen = strlen(val);
			return val;
		}
	}
	return NULL;
}

static size_t max_body(const struct st_cmp_rules *r)
{
	return r->max_body ? r->max_body : ST_CMP_MAX_BODY_DEFAULT;
}

static int dec_reserve(struct st_cmp_view *v, size_t n)
{
	if (n > v->dec_cap) {
		size_t ncap = v->dec_cap ? v->dec_cap : 16384;
		uint8_t *d;

		while (ncap < n)
			ncap *= 2;
		d = realloc(v->dec, ncap);
		if (!d)
			return -1;
		v->dec = d;
		v->dec_cap = ncap;
	}
	return 0;
}

/*
 * Inflates the body (windowBits: 31 gzip, 15 zlib, -15 raw deflate). The first max_body
 * decoded bytes are kept, the rest hashed, up to max_decoded (a bomb stops there).
 * 0, or -1 when the data is not what the coding says.
 */
static int inflate_body(struct st_cmp_view *v, const struct st_cmp_rules *r, int wbits)
{
	const struct st_cmp_msg *m = v->m;
	uint64_t cap = max_body(r), bomb = r->max_decoded ? r->max_decoded : 32 * cap;
	uint8_t tmp[8192];
	z_stream z;
	int ret = Z_OK;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, wbits) != Z_OK)
		return -1;
	z.next_in = (Bytef *)m->body;
	z.avail_in = (uInt)m->body_len;
	v->len = 0;
	v->total = 0;
	v->rest_hash = st_cmp_hash_init();
	while (ret != Z_STREAM_END) {
		bool keep = v->len < cap;
		uint8_t *out;
		size_t room;

		if (keep) {
			room = cap - v->len < DECODE_CHUNK ? cap - v->len : DECODE_CHUNK;
			if (dec_reserve(v, v->len + room)) {
				inflateEnd(&z);
				return -1;
			}
			out = v->dec + v->len;
		} else {
			out = tmp;
			room = sizeof(tmp);
		}
		z.next_out = out;
		z.avail_out = (uInt)room;
		ret = inflate(&z, Z_NO_FLUSH);
		if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
			inflateEnd(&z);
			return -1;
		}
		{
			size_t got = room - z.avail_out;

			if (keep)
				v->len += got;
			else
				v->rest_hash = st_cmp_hash(v->rest_hash, tmp, got);
			v->total += got;
			if (v->total > bomb) {
				v->coding_note = "decoded body over the decompression cap";
				v->cut = true;
				break;
			}
			if (!got && (ret == Z_BUF_ERROR || !z.avail_in))
				break; /* all input used: a body cut by the cap, or a truncated stream */
		}
	}
	inflateEnd(&z);
	if (v->total > v->len)
		v->cut = true;
	if (ret != Z_STREAM_END && m->body_total > m->body_len) {
		/* the held compressed bytes ended first: the rest is known by the encoded bytes */
		v->cut = true;
		v->coding_note = "compressed body longer than --compare-max-body: decoded prefix compared";
	} else if (ret != Z_STREAM_END && !v->coding_note) {
		return -1; /* a truncated stream */
	}
	v->body = v->dec;
	return 0;
}

static void decode(struct st_cmp_view *v, const struct st_cmp_rules *r)
{
	const struct st_cmp_msg *m = v->m;
	size_t cl = 0, i;
	const char *ce = hdr_get(m, "content-encoding", &cl);
	char coding[32];

	v->body = m->body;
	v->len = m->body_len;
	v->total = m->body_total;
	v->rest_hash = m->rest_hash;
	v->cut = m->body_total > m->body_len;
	if (!ce || !m->has_body || !m->body_len)
		return;
	while (cl && (ce[0] == ' ' || ce[0] == '\t'))
		ce++, cl--;
	while (cl && (ce[cl - 1] == ' ' || ce[cl - 1] == '\t'))
		cl--;
	if (!cl || cl >= sizeof(coding) || memchr(ce, ',', cl)) {
		if (cl)
			v->coding_note = "several or unknown content codings: compared as sent";
		return;
	}
	for (i = 0; i < cl; i++)
		coding[i] = (char)tolower((unsigned char)ce[i]);
	coding[cl] = 0;
	if (!strcmp(coding, "identity"))
		return;
	if (!strcmp(coding, "gzip") || !strcmp(coding, "x-gzip")) {
		if (!inflate_body(v, r, 31)) {
			v->coding = "gzip";
			return;
		}
	} else if (!strcmp(coding, "deflate")) {
		/* servers send zlib-wrapped data (the RFC) or raw deflate (old IIS): take either */
		if (!inflate_body(v, r, 15) || !inflate_body(v, r, -15)) {
			v->coding = "deflate";
			return;
		}
	} else {
		v->coding_note = "content coding not decoded (only gzip and deflate): compared as sent";
		return;
	}
	/* not what it says it is: compared as sent */
	v->body = m->body;
	v->len = m->body_len;
	v->total = m->body_total;
	v->rest_hash = m->rest_hash;
	v->cut = m->body_total > m->body_len;
	v->coding_note = "body does not decode as its Content-Encoding says: compared as sent";
}

static bool ct_has(const char *ct, size_t n, const char *what)
{
	size_t w = strlen(what);

	for (size_t i = 0; i + w <= n; i++)
		if (!strncasecmp(ct + i, what, w))
			return true;
	return false;
}

static enum st_cmp_media media_of(const struct st_cmp_view *v)
{
	size_t n = 0, i;
	const char *ct = hdr_get(v->m, "content-type", &n);

	if (ct) {
		const char *semi = memchr(ct, ';', n);

		if (semi)
			n = (size_t)(semi - ct);
		if (n >= 16 && !strncasecmp(ct, "application/grpc", 16) &&
		    (n == 16 || ct[16] == '+'))
			return ST_CMP_M_GRPC;
		if (ct_has(ct, n, "json"))
			return ST_CMP_M_JSON;
		if ((n >= 5 && !strncasecmp(ct, "text/", 5)) || ct_has(ct, n, "xml") ||
		    ct_has(ct, n, "javascript") || ct_has(ct, n, "x-www-form-urlencoded") ||
		    ct_has(ct, n, "yaml") || ct_has(ct, n, "csv"))
			return ST_CMP_M_TEXT;
		return ST_CMP_M_BINARY;
	}
	/* no type: what it looks like */
	for (i = 0; i < v->len && (v->body[i] == ' ' || v->body[i] == '\n' || v->body[i] == '\r' ||
				   v->body[i] == '\t');
	     i++)
		;
	if (i < v->len && (v->body[i] == '{' || v->body[i] == '['))
		return ST_CMP_M_JSON;
	return st_json_utf8_text(v->body, v->len < 4096 ? v->len : 4096, v->len > 4096) ? ST_CMP_M_TEXT :
										ST_CMP_M_BINARY;
}

static bool wants_hashes(const struct st_cmp_rules *r)
{
	return r->unordered_all || r->n_unordered;
}

/* The structural hashes of v's tree, when arrays are compared as multisets. */
static void hash_doc(struct st_cmp_view *v, const struct st_cmp_rules *r)
{
	if (v->json_ok && wants_hashes(r)) {
		if (v->doc.n > v->hashes_cap) {
			uint64_t *h = realloc(v->hashes, v->doc.n * sizeof(*h));

			if (!h) {
				v->json_ok = false;
				return;
			}
			v->hashes = h;
			v->hashes_cap = v->doc.n;
		}
		st_json_hashes(&v->doc, v->hashes, r->unordered_all);
		v->hashed = true;
	}
}

static void parse_json(struct st_cmp_view *v, const struct st_cmp_rules *r)
{
	v->json_tried = true;
	if (v->cut)
		return; /* a prefix is not a document */
	v->doc.max_nodes = (uint32_t)(v->len / 2 + 2);
	v->json_ok = !st_json_parse(&v->doc, (const char *)v->body, v->len);
	hash_doc(v, r);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*p, ncap * size);
	if (!n)
		return -1;
	*p = n;
	*cap = ncap;
	return 0;
}

/* Why a side's gRPC messages are compared as bytes, by the reader's error. */
static const char *grpc_why(enum st_grpc_err e)
{
	switch (e) {
	case ST_GRPC_E_CODING:
		return "a message's coding is not decoded here: messages compared as bytes";
	case ST_GRPC_E_TRUNCATED:
	case ST_GRPC_E_TOO_LARGE:
		return "the body ends inside a message: messages compared as bytes";
	case ST_GRPC_E_BOMB:
		return "a message decodes past the decompression cap: messages compared as bytes";
	case ST_GRPC_E_FLAG:
		return "a message's flag byte is neither 0 nor 1: messages compared as bytes";
	default:
		return "a message does not decode: messages compared as bytes";
	}
}

/*
 * gRPC: the messages framed (grpc.h: the prefix, the compressed flag with this side's
 * grpc-encoding), gathered decoded into v->msgs, then decoded as protobuf into one tree whose
 * root holds them in order (protobuf.h; with a schema, of the type the method answers: the
 * message's :path names it). At most max_body bytes of decoded messages are held, as for any
 * body; a message inflates at most up to max_decoded (a bomb). Otherwise (a prefix held, more
 * than max_body of messages, a message that cannot be decoded) the messages are compared as
 * bytes: v->grpc_note says why.
 */
static void parse_grpc(struct st_cmp_view *v, const struct st_cmp_rules *r)
{
	uint64_t bomb = r->max_decoded ? r->max_decoded : 32 * (uint64_t)max_body(r);
	const struct st_protobuf_type *type = NULL;
	struct st_grpc_reader g;
	struct st_grpc_event ev;
	size_t off = 0, used = 0, el = 0;
	const char *enc;
	uint32_t n = 0;

	v->json_tried = true;
	if (v->cut) {
		v->grpc_note = "body longer than --compare-max-body: messages compared as bytes";
		return;
	}
	st_grpc_init(&g, (uint32_t)(v->len < UINT32_MAX ? v->len + 1 : UINT32_MAX),
		     bomb < UINT32_MAX ? bomb : UINT32_MAX);
	enc = hdr_get(v->m, "grpc-encoding", &el);
	if (enc)
		st_grpc_set_coding(&g, st_grpc_coding_of(enc, el));
	for (;;) {
		off += st_grpc_feed(&g, v->body + off, v->len - off, &ev);
		if (ev.type == ST_GRPC_EV_NEED_MORE)
			st_grpc_end(&g, &ev);
		if (ev.type == ST_GRPC_EV_NEED_MORE)
			break;
		if (ev.type == ST_GRPC_EV_ERROR) {
			v->grpc_note = grpc_why(ev.err);
			goto out;
		}
		if (used + ev.len > max_body(r)) {
			v->grpc_note = "messages longer than --compare-max-body once decoded: compared "
				       "as bytes";
			goto out;
		}
		if (grow((void **)&v->msgs, &v->msgs_cap, used + ev.len + 1, 1) ||
		    grow((void **)&v->spans, &v->spans_cap, n + 1, sizeof(*v->spans)))
			goto out;
		memcpy(v->msgs + used, ev.data, ev.len);
		v->spans[n++] = (struct st_protobuf_span){ (uint32_t)used, (uint32_t)ev.len };
		used += ev.len;
	}
	if (r->schema && v->m->path)
		st_protobuf_schema__method(r->schema, v->m->path, v->m->path_len, NULL, &type);
	v->doc.max_nodes = 0; /* the decoder's own cap: 2 nodes a byte (a JSON parse set another) */
	v->json_ok = !st_protobuf_decode_list(&v->doc, v->msgs ? v->msgs : (const uint8_t *)"",
					      used, v->spans, n, type, NULL);
	if (!v->json_ok)
		v->grpc_note = "the messages' tree is over its cap: messages compared as bytes";
	v->grpc_msgs = n;
	hash_doc(v, r);
out:
	st_grpc_free(&g);
}

void st_cmp_view_load(struct st_cmp_view *v, const struct st_cmp_rules *r,
		      const struct st_cmp_msg *m)
{
	v->m = m;
	v->media = ST_CMP_M_NONE;
	v->coding = v->coding_note = NULL;
	v->json_tried = v->json_ok = v->hashed = false;
	v->grpc_msgs = 0;
	v->grpc_note = NULL;
	v->cut = false;
	if (!m->has_body) {
		v->body = NULL;
		v->len = 0;
		v->total = 0;
		return;
	}
	decode(v, r);
	v->media = (uint8_t)media_of(v);
	if (v->media == ST_CMP_M_JSON)
		parse_json(v, r);
	else if (v->media == ST_CMP_M_GRPC)
		parse_grpc(v, r);
}

/* ---- header fields ------------------------------------------------------------------------ */

struct hent {
	const char *name, *value;
	uint32_t pos;
};

static const char *const default_ignored[] = { ST_CMP_IGNORED_HEADERS };

static bool hdr_ignored(const struct st_cmp_rules *r, const char *name, bool bodies)
{
	if (!r->no_default_ignores)
		for (size_t i = 0; i < sizeof(default_ignored) / sizeof(default_ignored[0]); i++)
			if (!strcasecmp(name, default_ignored[i]))
				return true;
	/* the body itself is compared (decoded): its length on the wire says nothing more */
	if (bodies && !strcasecmp(name, "content-length"))
		return true;
	for (unsigned i = 0; i < r->n_ignore_headers; i++)
		if (!strcasecmp(name, r->ignore_headers[i]))
			return true;
	return false;
}

/* Header fields whose values are not shown (redact.h's policy: the default set and
 * --redact-header; none with --no-redact). */
static bool hdr_secret(const struct st_cmp_rules *r, const char *name)
{
	static const struct st_redact_rules dflt;

	return st_redact_header_listed(r->redact ? r->redact : &dflt, name, strlen(name));
}

static int hent_cmp(const void *x, const void *y)
{
	const struct hent *a = x, *b = y;
	int c = strcasecmp(a->name, b->name);

	return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* The fields hdrs holds (nf of them, hlen bytes), sorted by name, the ignored left out. */
static struct hent *hents(const struct st_cmp_rules *r, const char *hdrs, uint32_t hlen,
			  uint32_t nf, bool bodies, size_t *n)
{
	struct hent *e = malloc((nf + 1) * sizeof(*e));
	const char *p = hdrs, *end = hdrs + hlen;

	*n = 0;
	if (!e)
		return NULL;
	for (uint32_t i = 0; i < nf && p < end; i++) {
		const char *nm = p, *val = nm + strlen(nm) + 1;

		p = val + strlen(val) + 1;
		if (hdr_ignored(r, nm, bodies))
			continue;
		e[*n] = (struct hent){ nm, val, i };
		(*n)++;
	}
	qsort(e, *n, sizeof(*e), hent_cmp);
	return e;
}

static void lower_path(char *out, size_t cap, const char *prefix, const char *name)
{
	size_t o = (size_t)snprintf(out, cap, "%s", prefix);

	for (; *name && o + 1 < cap; name++)
		out[o++] = (char)tolower((unsigned char)*name);
	out[o] = 0;
}

/* The values of one field name, as one display string ("a, b"). */
static void join_values(char *out, const struct hent *e, size_t n, bool secret)
{
	char buf[ST_CMP_VAL_MAX * 2];
	size_t o = 0;

	if (secret) {
		snprintf(out, ST_CMP_VAL_MAX, "(%zu value%s, masked)", n, n == 1 ? "" : "s");
		return;
	}
	buf[0] = 0;
	for (size_t i = 0; i < n && o < sizeof(buf) - 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ", " : "", e[i].value);
	if (o >= sizeof(buf))
		o = sizeof(buf) - 1;
	show(out, buf, o, false);
}

static size_t cookie_name(const char *v, const char **name)
{
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	*name = v;
	n = strcspn(v, "=;");
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n;
}

static int cookie_cmp(const void *x, const void *y)
{
	const struct hent *a = x, *b = y;
	const char *na, *nb;
	size_t la = cookie_name(a->value, &na), lb = cookie_name(b->value, &nb);
	int c = memcmp(na, nb, la < lb ? la : lb);

	return c ? c : (la > lb) - (la < lb);
}

/* Set-Cookie by cookie name: a cookie set on one side only is a difference, its value
 * never is (and is never shown). */
static void diff_cookies(struct st_cmp_diffs *o, struct hent *a, size_t na, struct hent *b,
			 size_t nb)
{
	size_t i = 0, k = 0;

	qsort(a, na, sizeof(*a), cookie_cmp);
	qsort(b, nb, sizeof(*b), cookie_cmp);
	while (i < na || k < nb) {
		int c = i == na ? 1 : k == nb ? -1 : cookie_cmp(&a[i], &b[k]);
		const struct hent *e = c <= 0 ? &a[i] : &b[k];
		const char *nm;
		size_t nl = cookie_name(e->value, &nm);
		char path[ST_CMP_PATH_MAX + 4], cn[64];
		struct st_cmp_diff *d;

		if (!c) {
			i++, k++;
			continue;
		}
		snprintf(cn, sizeof(cn), "%.*s", (int)(nl < 48 ? nl : 48), nm);
		for (char *q = cn; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == ']')
				*q = '?';
		snprintf(path, sizeof(path), "headers.set-cookie[%s]", cn);
		d = add(o, path, c < 0 ? ST_CMP_MISSING : ST_CMP_EXTRA);
		if (d) {
			d->a_set = c < 0;
			d->b_set = c > 0;
			snprintf(c < 0 ? d->a : d->b, ST_CMP_VAL_MAX, "%s=(masked)", cn);
		}
		if (c < 0)
			i++;
		else
			k++;
	}
}

/* ---- --correlate: differences the shadow's own sessions and ids explain -------------------- */

static bool corr_has(const struct st_cmp_diffs *o, const char *a, size_t an, const char *b,
		     size_t bn)
{
	for (uint32_t i = 0; i + 4 <= o->corr_len;) {
		const unsigned char *e = (const unsigned char *)o->corr + i;
		size_t pn = e[0] | (size_t)e[1] << 8, tn = e[2] | (size_t)e[3] << 8;

		if (i + 4 + pn + tn > o->corr_len)
			break;
		if (pn == an && tn == bn && !memcmp(e + 4, a, an) && !memcmp(e + 4 + pn, b, bn))
			return true;
		i += (uint32_t)(4 + pn + tn);
	}
	return false;
}

static bool corr_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* A difference at path the correlation list explains: counted, and its path kept (the first
 * ST_CMP_CORR_PATHS distinct paths; later ones are in the count only). */
static void corr_count(struct st_cmp_diffs *o, const char *path)
{
	uint32_t i;

	o->correlated++;
	for (i = 0; i < o->ncorr; i++)
		if (!strcmp(o->corr_at[i].path, path))
			break;
	if (i == ST_CMP_CORR_PATHS)
		return;
	if (i == o->ncorr) {
		snprintf(o->corr_at[i].path, sizeof(o->corr_at[i].path), "%s", path);
		o->corr_at[i].count = 0;
		o->ncorr++;
	}
	o->corr_at[i].count++;
}

/* a (production's) and b (the shadow's) differ only where a known pair maps one to the other:
 * the whole value, or token by token with everything between the same. */
static bool corr_explains(const struct st_cmp_diffs *o, const char *a, size_t an, const char *b,
			  size_t bn)
{
	size_t i = 0, k = 0;
	bool any = false;

	if (!o->corr_len)
		return false;
	if (corr_has(o, a, an, b, bn))
		return true;
	while (i < an && k < bn) {
		size_t ja = i, jb = k;

		if (!corr_char((unsigned char)a[i]) || !corr_char((unsigned char)b[k])) {
			if (a[i] != b[k])
				return false;
			i++, k++;
			continue;
		}
		while (ja < an && corr_char((unsigned char)a[ja]))
			ja++;
		while (jb < bn && corr_char((unsigned char)b[jb]))
			jb++;
		if (ja - i != jb - k || memcmp(a + i, b + k, ja - i)) {
			if (!corr_has(o, a + i, ja - i, b + k, jb - k))
				return false;
			any = true;
		}
		i = ja;
		k = jb;
	}
	return any && i == an && k == bn;
}

/* Header fields (prefix "headers.") or trailers ("trailers."): the same rules. */
static void diff_fields(const struct st_cmp_rules *r, const char *prefix, bool bodies,
			const char *ha, uint32_t la, uint32_t na_, const char *hb, uint32_t lb,
			uint32_t nb_, struct st_cmp_diffs *o)
{
	size_t na, nb, i = 0, k = 0;
	struct hent *ea = hents(r, ha ? ha : "", la, na_, bodies, &na),
		    *eb = hents(r, hb ? hb : "", lb, nb_, bodies, &nb);

	if (!ea || !eb)
		goto out;
	while (i < na || k < nb) {
		const char *name = i < na && (k == nb || strcasecmp(ea[i].name, eb[k].name) <= 0) ?
					   ea[i].name : eb[k].name;
		size_t ia = i, ib = k, ca, cb, j;
		char path[ST_CMP_PATH_MAX + 4];
		struct st_cmp_diff *d;
		bool same;

		while (i < na && !strcasecmp(ea[i].name, name))
			i++;
		while (k < nb && !strcasecmp(eb[k].name, name))
			k++;
		ca = i - ia;
		cb = k - ib;
		if (!strcasecmp(name, "set-cookie")) {
			diff_cookies(o, ea + ia, ca, eb + ib, cb);
			continue;
		}
		same = ca == cb;
		for (j = 0; same && j < ca; j++)
			same = !strcmp(ea[ia + j].value, eb[ib + j].value);
		if (same)
			continue;
		lower_path(path, sizeof(path), prefix, name);
		if (ca == cb && o->corr_len) {
			bool expl = true;

			for (j = 0; expl && j < ca; j++)
				expl = !strcmp(ea[ia + j].value, eb[ib + j].value) ||
				       corr_explains(o, ea[ia + j].value, strlen(ea[ia + j].value),
						     eb[ib + j].value, strlen(eb[ib + j].value));
			if (expl) {
				corr_count(o, path);
				continue;
			}
		}
		d = add(o, path, !ca ? ST_CMP_EXTRA : !cb ? ST_CMP_MISSING : ST_CMP_VALUE);
		if (!d)
			continue;
		d->a_set = ca > 0;
		d->b_set = cb > 0;
		if (ca)
			join_values(d->a, ea + ia, ca, hdr_secret(r, name));
		if (cb)
			join_values(d->b, eb + ib, cb, hdr_secret(r, name));
		set_vol(d);
	}
out:
	free(ea);
	free(eb);
}

static void diff_headers(const struct st_cmp_rules *r, const struct st_cmp_msg *a,
			 const struct st_cmp_msg *b, struct st_cmp_diffs *o)
{
	bool bodies = a->has_body || b->has_body;

	diff_fields(r, "headers.", bodies, a->hdrs, a->hdrs_len, a->nhdrs, b->hdrs, b->hdrs_len,
		    b->nhdrs, o);
	/* gRPC's grpc-status and grpc-message are trailers: fields of their own */
	if (a->ntrls || b->ntrls)
		diff_fields(r, "trailers.", bodies, a->trls, a->trls_len, a->ntrls, b->trls,
			    b->trls_len, b->ntrls, o);
}

/* ---- JSON bodies ------------------------------------------------------------------------- */

struct jd {
	const struct st_cmp_rules *r;
	struct st_cmp_scratch *s;
	const struct st_cmp_view *a, *b;
	struct st_cmp_diffs *o;
	char path[ST_CMP_PATH_MAX + 4];
	size_t plen;
	bool oom;
};

/* Pushes a segment; returns the length to pop back to. A path that would be too long ends
 * in "..." and stays so until popped. */
static size_t push_key(struct jd *j, const char *k, size_t n, bool field)
{
	size_t old = j->plen, l;

	if (old >= ST_CMP_PATH_MAX)
		return old;
	l = seg_key(j->path, old, ST_CMP_PATH_MAX, k, n, field);
	if (l > ST_CMP_PATH_MAX) {
		memcpy(j->path + old, "...", 4);
		j->plen = ST_CMP_PATH_MAX;
	} else {
		j->plen = l;
	}
	return old;
}

static size_t push_idx(struct jd *j)
{
	size_t old = j->plen;

	if (old >= ST_CMP_PATH_MAX)
		return old;
	if (old + 3 > ST_CMP_PATH_MAX) {
		memcpy(j->path + old, "...", 4);
		j->plen = ST_CMP_PATH_MAX;
		return old;
	}
	memcpy(j->path + old, "[*]", 4);
	j->plen = old + 3;
	return old;
}

static void pop(struct jd *j, size_t old)
{
	j->plen = old;
	j->path[old] = 0;
}

/* The current path is ignored (key: its last member's name, when it ends with one). */
static bool path_ignored(const struct jd *j, const char *key, size_t klen)
{
	for (unsigned i = 0; i < j->r->n_ignore_fields; i++) {
		const char *p = j->r->ignore_fields[i];

		if (p[1] == '.' && p[2] == '.') {
			if (key && strlen(p + 3) == klen && !memcmp(p + 3, key, klen))
				return true;
		} else if (st_cmp_path_match(p, j->path)) {
			return true;
		}
	}
	return false;
}

static bool path_unordered(const struct jd *j)
{
	if (j->r->unordered_all)
		return true;
	for (unsigned i = 0; i < j->r->n_unordered; i++)
		if (st_cmp_path_match(j->r->unordered[i], j->path))
			return true;
	return false;
}

static int tclass(uint8_t t)
{
	return t == ST_JSON_TRUE ? ST_JSON_FALSE : t;
}

static const char *tname(uint8_t t)
{
	switch (t) {
	case ST_JSON_NULL: return "null";
	case ST_JSON_TRUE:
	case ST_JSON_FALSE: return "boolean";
	case ST_JSON_NUMBER: return "number";
	case ST_JSON_STRING: return "string";
	case ST_JSON_ARRAY: return "array";
	default: return "object";
	}
}

/* A difference at the current path; ia/ib: the nodes (-1: absent on that side). */
static void jadd(struct jd *j, enum st_cmp_kind k, int64_t ia, int64_t ib)
{
	struct st_cmp_diff *d = add(j->o, j->path, k);

	if (!d)
		return;
	if (ia >= 0) {
		d->a_set = true;
		show_node(d->a, j->a, (uint32_t)ia);
	}
	if (ib >= 0) {
		d->b_set = true;
		show_node(d->b, j->b, (uint32_t)ib);
	}
	if (k == ST_CMP_TYPE)
		snprintf(d->note, sizeof(d->note), "%s -> %s",
			 tname(st_json_node(&j->a->doc, (uint32_t)ia)->type),
			 tname(st_json_node(&j->b->doc, (uint32_t)ib)->type));
	set_vol(d);
}

static void jd_node(struct jd *j, uint32_t ia, uint32_t ib);

struct keyctx {
	const struct st_json_doc *d;
};

static int key_cmp(const void *x, const void *y, void *arg)
{
	const struct st_json_doc *d = arg;
	uint32_t i = *(const uint32_t *)x, k = *(const uint32_t *)y;
	const struct st_json_node *a = st_json_node(d, i), *b = st_json_node(d, k);
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(st_json_key(d, a), st_json_key(d, b), n);

	if (c)
		return c;
	if (a->key_len != b->key_len)
		return a->key_len < b->key_len ? -1 : 1;
	return (i > k) - (i < k); /* stable: duplicates pair up in order */
}

static int key_cross(const struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(st_json_key(&j->a->doc, a), st_json_key(&j->b->doc, b), n);

	if (c)
		return c;
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Both objects list the same keys in the same order (the same code wrote them, as a rule):
 * members pair up as they come, no sorting. */
static bool same_key_order(const struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);
	uint32_t ca, cb;

	if (a->n != b->n)
		return false;
	for (ca = a->n ? ia + 1 : 0, cb = b->n ? ib + 1 : 0; ca && cb;
	     ca = st_json_node(&j->a->doc, ca)->next, cb = st_json_node(&j->b->doc, cb)->next)
		if (key_cross(j, ca, cb))
			return false;
	return true;
}

static void jd_object(struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);
	size_t base = j->s->idx_top, na = a->n, nb = b->n, i = 0, k = 0, n = 0;
	uint32_t c;

	if (same_key_order(j, ia, ib)) {
		uint32_t ca, cb;

		for (ca = na ? ia + 1 : 0, cb = nb ? ib + 1 : 0; ca && cb && !j->oom;
		     ca = st_json_node(&j->a->doc, ca)->next, cb = st_json_node(&j->b->doc, cb)->next) {
			const struct st_json_node *m = st_json_node(&j->a->doc, ca);
			const char *key = st_json_key(&j->a->doc, m);
			size_t old = push_key(j, key, m->key_len, m->flags & ST_JSON_F_KEY_FIELD);

			if (!path_ignored(j, key, m->key_len))
				jd_node(j, ca, cb);
			pop(j, old);
		}
		return;
	}

	if (idx_reserve(j->s, na + nb)) {
		j->oom = true;
		return;
	}
	for (c = na ? ia + 1 : 0; c; c = st_json_node(&j->a->doc, c)->next)
		j->s->idx[base + n++] = c;
	for (c = nb ? ib + 1 : 0; c; c = st_json_node(&j->b->doc, c)->next)
		j->s->idx[base + n++] = c;
	j->s->idx_top = base + na + nb;
	qsort_r(j->s->idx + base, na, sizeof(uint32_t), key_cmp, (void *)&j->a->doc);
	qsort_r(j->s->idx + base + na, nb, sizeof(uint32_t), key_cmp, (void *)&j->b->doc);
	while (i < na || k < nb) {
		uint32_t xa = i < na ? j->s->idx[base + i] : 0, xb = k < nb ? j->s->idx[base + na + k] : 0;
		int cmp = i == na ? 1 : k == nb ? -1 : key_cross(j, xa, xb);
		const struct st_json_node *m = cmp <= 0 ? st_json_node(&j->a->doc, xa) :
							   st_json_node(&j->b->doc, xb);
		const char *key = cmp <= 0 ? st_json_key(&j->a->doc, m) : st_json_key(&j->b->doc, m);
		size_t old = push_key(j, key, m->key_len, m->flags & ST_JSON_F_KEY_FIELD);

		if (!path_ignored(j, key, m->key_len)) {
			if (cmp < 0)
				jadd(j, ST_CMP_MISSING, xa, -1);
			else if (cmp > 0)
				jadd(j, ST_CMP_EXTRA, -1, xb);
			else
				jd_node(j, xa, xb);
		}
		pop(j, old);
		if (cmp <= 0)
			i++;
		if (cmp >= 0)
			k++;
		if (j->oom)
			break;
	}
	j->s->idx_top = base;
}

static int hpair_cmp(const void *x, const void *y)
{
	const uint64_t *a = x, *b = y;

	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return (a[1] > b[1]) - (a[1] < b[1]);
}

/* Arrays as multisets: elements matched by structural hash, whatever their order. */
static void jd_unordered(struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);
	size_t na = a->n, nb = b->n, i = 0, k = 0, n = 0, old;
	uint64_t *h;
	uint32_t c;

	if (!j->a->hashed || !j->b->hashed || h_reserve(j->s, 2 * (na + nb))) {
		j->oom = true;
		return;
	}
	h = j->s->h;
	for (c = na ? ia + 1 : 0; c; c = st_json_node(&j->a->doc, c)->next, n += 2) {
		h[n] = j->a->hashes[c];
		h[n + 1] = c;
	}
	for (c = nb ? ib + 1 : 0; c; c = st_json_node(&j->b->doc, c)->next, n += 2) {
		h[n] = j->b->hashes[c];
		h[n + 1] = c;
	}
	qsort(h, na, 2 * sizeof(uint64_t), hpair_cmp);
	qsort(h + 2 * na, nb, 2 * sizeof(uint64_t), hpair_cmp);
	old = push_idx(j);
	/* two passes, missing elements first: what is reported does not depend on hash order */
	for (int pass = 0; pass < 2 && !path_ignored(j, NULL, 0); pass++) {
		for (i = 0, k = 0; i < na || k < nb;) {
			uint64_t x = i < na ? h[2 * i] : 0, y = k < nb ? h[2 * (na + k)] : 0;

			if (i < na && k < nb && x == y) {
				i++, k++;
			} else if (k == nb || (i < na && x < y)) {
				if (!pass)
					jadd(j, ST_CMP_MISSING, (int64_t)h[2 * i + 1], -1);
				i++;
			} else {
				if (pass)
					jadd(j, ST_CMP_EXTRA, -1, (int64_t)h[2 * (na + k) + 1]);
				k++;
			}
		}
	}
	pop(j, old);
}

static void jd_array(struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);
	uint32_t na = a->n, nb = b->n, ca, cb;
	size_t old;

	if (path_unordered(j)) {
		jd_unordered(j, ia, ib);
		return;
	}
	old = push_idx(j);
	if (!path_ignored(j, NULL, 0)) {
		for (ca = na ? ia + 1 : 0, cb = nb ? ib + 1 : 0; ca && cb && !j->oom;
		     ca = st_json_node(&j->a->doc, ca)->next, cb = st_json_node(&j->b->doc, cb)->next)
			jd_node(j, ca, cb);
	}
	pop(j, old);
	if (na != nb) {
		struct st_cmp_diff *d = add(j->o, j->path, ST_CMP_ARRAY_LENGTH);

		if (d) {
			d->a_set = d->b_set = true;
			snprintf(d->a, sizeof(d->a), "%u item%s", na, na == 1 ? "" : "s");
			snprintf(d->b, sizeof(d->b), "%u item%s", nb, nb == 1 ? "" : "s");
		}
	}
}

static void jd_node(struct jd *j, uint32_t ia, uint32_t ib)
{
	const struct st_json_node *a = st_json_node(&j->a->doc, ia), *b = st_json_node(&j->b->doc, ib);

	if (tclass(a->type) != tclass(b->type)) {
		jadd(j, ST_CMP_TYPE, ia, ib);
		return;
	}
	switch (a->type) {
	case ST_JSON_NULL:
		return;
	case ST_JSON_TRUE:
	case ST_JSON_FALSE:
		if (a->type != b->type)
			jadd(j, ST_CMP_VALUE, ia, ib);
		return;
	case ST_JSON_NUMBER:
		/* the same text is the same value; another text may be too (1.0, 1e0) */
		if ((a->len != b->len ||
		     memcmp(st_json_bytes(&j->a->doc, a), st_json_bytes(&j->b->doc, b), a->len)) &&
		    !st_json_num_eq(st_json_bytes(&j->a->doc, a), a->len, st_json_bytes(&j->b->doc, b),
				    b->len))
			jadd(j, ST_CMP_VALUE, ia, ib);
		return;
	case ST_JSON_STRING:
		if (a->len == b->len &&
		    !memcmp(st_json_bytes(&j->a->doc, a), st_json_bytes(&j->b->doc, b), a->len))
			return;
		if (corr_explains(j->o, st_json_bytes(&j->a->doc, a), a->len,
				  st_json_bytes(&j->b->doc, b), b->len)) {
			corr_count(j->o, j->path);
			return;
		}
		jadd(j, ST_CMP_VALUE, ia, ib);
		return;
	case ST_JSON_ARRAY:
		jd_array(j, ia, ib);
		return;
	default:
		jd_object(j, ia, ib);
		return;
	}
}

/* Returns false when memory ran out (the caller compares another way). */
static bool diff_json(const struct st_cmp_rules *r, struct st_cmp_scratch *s,
		      const struct st_cmp_view *a, const struct st_cmp_view *b,
		      struct st_cmp_diffs *o)
{
	struct jd j = { .r = r, .s = s, .a = a, .b = b, .o = o, .path = "$", .plen = 1 };

	s->idx_top = 0;
	if (!path_ignored(&j, NULL, 0))
		jd_node(&j, 0, 0);
	return !j.oom;
}

/* ---- text and other bodies --------------------------------------------------------------- */

static size_t line_hashes(const uint8_t *p, size_t len, uint64_t *out)
{
	size_t n = 0, st = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '\n') {
			size_t e = i;

			if (i == len && st == len)
				break; /* no empty last line after a final newline */
			if (e > st && p[e - 1] == '\r')
				e--;
			if (out)
				out[n] = st_fnv1a(ST_FNV1A_INIT, p + st, e - st);
			n++;
			st = i + 1;
		}
	}
	return n;
}

/* Line number n (0-based) of p: where it starts and its length (without CR LF). */
static const uint8_t *line_at(const uint8_t *p, size_t len, size_t n, size_t *ll)
{
	size_t st = 0;

	for (size_t i = 0; i < len && n; i++)
		if (p[i] == '\n') {
			n--;
			st = i + 1;
		}
	if (n || st > len) {
		*ll = 0;
		return NULL;
	}
	*ll = 0;
	while (st + *ll < len && p[st + *ll] != '\n')
		(*ll)++;
	if (*ll && p[st + *ll - 1] == '\r')
		(*ll)--;
	return p + st;
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

/* A line-diff summary: lines only in one side (as multisets, after the common prefix and
 * suffix), and the first differing line of each. */
static bool diff_text(struct st_cmp_scratch *s, const struct st_cmp_view *a,
		      const struct st_cmp_view *b, struct st_cmp_diffs *o, const char *extra)
{
	size_t na = line_hashes(a->body, a->len, NULL), nb = line_hashes(b->body, b->len, NULL);
	size_t p = 0, q = 0, ma, mb, i = 0, k = 0, matched = 0, ll, n;
	uint64_t *ha, *hb;
	struct st_cmp_diff *d;
	const uint8_t *l;

	if (h_reserve(s, 2 * (na + nb) + 2))
		return false;
	ha = s->h;
	hb = s->h + na;
	line_hashes(a->body, a->len, ha);
	line_hashes(b->body, b->len, hb);
	while (p < na && p < nb && ha[p] == hb[p])
		p++;
	while (q < na - p && q < nb - p && ha[na - 1 - q] == hb[nb - 1 - q])
		q++;
	ma = na - p - q;
	mb = nb - p - q;
	memcpy(s->h + na + nb, ha + p, ma * sizeof(uint64_t));
	memcpy(s->h + na + nb + ma, hb + p, mb * sizeof(uint64_t));
	ha = s->h + na + nb;
	hb = ha + ma;
	qsort(ha, ma, sizeof(uint64_t), u64_cmp);
	qsort(hb, mb, sizeof(uint64_t), u64_cmp);
	while (i < ma && k < mb) {
		if (ha[i] == hb[k])
			matched++, i++, k++;
		else if (ha[i] < hb[k])
			i++;
		else
			k++;
	}
	d = add(o, "body", ST_CMP_LINES);
	if (!d)
		return true;
	d->a_set = d->b_set = true;
	l = line_at(a->body, a->len, p, &ll);
	n = (size_t)snprintf(d->a, 32, "line %zu: ", p + 1);
	show_max(d->a + n, l ? (const char *)l : "", l ? ll : 0, false, ST_CMP_VAL_MAX - n);
	l = line_at(b->body, b->len, p, &ll);
	n = (size_t)snprintf(d->b, 32, "line %zu: ", p + 1);
	show_max(d->b + n, l ? (const char *)l : "", l ? ll : 0, false, ST_CMP_VAL_MAX - n);
	if (ma - matched || mb - matched)
		snprintf(d->note, sizeof(d->note), "-%zu +%zu lines of %zu/%zu%s", ma - matched,
			 mb - matched, na, nb, extra ? extra : "");
	else
		snprintf(d->note, sizeof(d->note), "same lines, another order (%zu lines)%s", na,
			 extra ? extra : "");
	return true;
}

static void diff_bytes(const struct st_cmp_view *a, const struct st_cmp_view *b,
		       struct st_cmp_diffs *o, const char *why)
{
	struct st_cmp_diff *d = add(o, "body", ST_CMP_BYTES);
	size_t n = a->len < b->len ? a->len : b->len, i = 0;

	if (!d)
		return;
	while (i < n && a->body[i] == b->body[i])
		i++;
	d->a_set = a->m->has_body;
	d->b_set = b->m->has_body;
	if (d->a_set)
		snprintf(d->a, sizeof(d->a), "%llu bytes, hash %016llx", (unsigned long long)a->total,
			 (unsigned long long)st_cmp_hash(a->rest_hash, a->body, a->len));
	if (d->b_set)
		snprintf(d->b, sizeof(d->b), "%llu bytes, hash %016llx", (unsigned long long)b->total,
			 (unsigned long long)st_cmp_hash(b->rest_hash, b->body, b->len));
	if (why)
		snprintf(d->note, sizeof(d->note), "%s", why);
	else if (i < n || a->len != b->len)
		snprintf(d->note, sizeof(d->note), "first difference at byte %zu", i);
	else
		snprintf(d->note, sizeof(d->note), "first %zu bytes equal, the rest differs", n);
}

static bool same_raw(const struct st_cmp_msg *a, const struct st_cmp_msg *b)
{
	return a->body_total == b->body_total && a->body_len == b->body_len &&
	       a->rest_hash == b->rest_hash && (!a->body_len || !memcmp(a->body, b->body, a->body_len));
}

/* "$.length": how many messages each side's gRPC body holds, when they differ. */
static void grpc_count(struct st_cmp_diffs *o, uint32_t ca, uint32_t cb)
{
	struct st_cmp_diff *d = add(o, "$.length", ST_CMP_VALUE);

	if (!d)
		return;
	d->a_set = d->b_set = true;
	snprintf(d->a, sizeof(d->a), "%u", ca);
	snprintf(d->b, sizeof(d->b), "%u", cb);
	snprintf(d->note, sizeof(d->note), "gRPC messages");
}

/* The messages (whole or not) from v->body[p] on, by their prefixes. A length is 32 bits: it
 * is added in 64 (5 + 0xfffffffb is 0 in 32 bits, and the count never ended). */
static uint32_t grpc_left(const struct st_cmp_view *v, size_t p)
{
	uint32_t n = 0;

	while (p + 5 <= v->len) {
		p += 5 + (size_t)((uint32_t)v->body[p + 1] << 24 | (uint32_t)v->body[p + 2] << 16 |
				  (uint32_t)v->body[p + 3] << 8 | v->body[p + 4]);
		n++;
	}
	return n;
}

/*
 * gRPC messages that could not be decoded (parse_grpc says why: a prefix held, a coding not
 * decoded here): the body is a sequence of messages, each a 5-byte prefix (compressed flag,
 * length) and its bytes, compared one by one as bytes: each that differs is named by its
 * index ($[i]), and the count when one side has more. 0, or -1 when the bodies are not whole
 * or not framed as messages (then they are compared as bytes).
 */
static int diff_grpc(const struct st_cmp_view *a, const struct st_cmp_view *b,
		     struct st_cmp_diffs *o)
{
	size_t pa = 0, pb = 0;
	uint32_t i;

	if (a->cut || b->cut)
		return -1;
	for (i = 0;; i++) {
		uint32_t la, lb;
		struct st_cmp_diff *d;
		char path[32];

		if (pa == a->len || pb == b->len) {
			if (pa != a->len || pb != b->len) {
				/* count what is left of each */
				grpc_count(o, i + grpc_left(a, pa), i + grpc_left(b, pb));
			}
			return 0;
		}
		if (pa + 5 > a->len || pb + 5 > b->len)
			return -1;
		la = (uint32_t)a->body[pa + 1] << 24 | (uint32_t)a->body[pa + 2] << 16 |
		     (uint32_t)a->body[pa + 3] << 8 | a->body[pa + 4];
		lb = (uint32_t)b->body[pb + 1] << 24 | (uint32_t)b->body[pb + 2] << 16 |
		     (uint32_t)b->body[pb + 3] << 8 | b->body[pb + 4];
		if (la > a->len - pa - 5 || lb > b->len - pb - 5)
			return -1;
		if (la != lb || memcmp(a->body + pa, b->body + pb, 5 + (size_t)la)) {
			size_t n = la < lb ? la : lb, k = 0;

			while (k < n && a->body[pa + 5 + k] == b->body[pb + 5 + k])
				k++;
			snprintf(path, sizeof(path), "$[%u]", i);
			d = add(o, path, ST_CMP_VALUE);
			if (d) {
				d->a_set = d->b_set = true;
				snprintf(d->a, sizeof(d->a), "%u bytes%s", la,
					 a->body[pa] ? ", compressed" : "");
				snprintf(d->b, sizeof(d->b), "%u bytes%s", lb,
					 b->body[pb] ? ", compressed" : "");
				if (a->grpc_note || b->grpc_note)
					snprintf(d->note, sizeof(d->note), "%s",
						 a->grpc_note ? a->grpc_note : b->grpc_note);
				else
					snprintf(d->note, sizeof(d->note),
						 "gRPC message %u: first difference at byte %zu", i, k);
			}
		}
		pa += 5 + (size_t)la;
		pb += 5 + (size_t)lb;
	}
}

/*
 * gRPC messages decoded (parse_grpc): message i of one side against message i of the other,
 * each from the root "$" as a JSON document is (a message's index collapses as an array's
 * does: "$.2[*].5", the first difference noted with its message when there are several), then
 * the count. false when memory ran out.
 */
static bool diff_grpc_msgs(const struct st_cmp_rules *r, struct st_cmp_scratch *s,
			   const struct st_cmp_view *a, const struct st_cmp_view *b,
			   struct st_cmp_diffs *o)
{
	struct jd j = { .r = r, .s = s, .a = a, .b = b, .o = o, .path = "$", .plen = 1 };
	uint32_t na = a->grpc_msgs, nb = b->grpc_msgs, ca, cb, i = 0;

	s->idx_top = 0;
	if (path_ignored(&j, NULL, 0))
		return true;
	for (ca = na ? 1 : 0, cb = nb ? 1 : 0; ca && cb && !j.oom;
	     ca = st_json_node(&a->doc, ca)->next, cb = st_json_node(&b->doc, cb)->next, i++) {
		uint32_t first = o->n;

		jd_node(&j, ca, cb);
		for (uint32_t k = first; k < o->n && (na > 1 || nb > 1); k++)
			if (!o->d[k].note[0])
				snprintf(o->d[k].note, sizeof(o->d[k].note), "first in gRPC message %u", i);
	}
	if (na != nb)
		grpc_count(o, na, nb);
	return !j.oom;
}

static void diff_body(const struct st_cmp_rules *r, struct st_cmp_scratch *s,
		      const struct st_cmp_view *a, const struct st_cmp_view *b,
		      struct st_cmp_diffs *o)
{
	bool json = a->media == ST_CMP_M_JSON || b->media == ST_CMP_M_JSON;
	/* lines only when both are text (JSON that does not parse is text too) */
	bool text = a->media != ST_CMP_M_BINARY && b->media != ST_CMP_M_BINARY &&
		    a->media != ST_CMP_M_GRPC && b->media != ST_CMP_M_GRPC;
	bool cut = a->cut || b->cut;
	/* a JSON document on each side (a gRPC body's tree of messages is no JSON document) */
	bool aj = a->media == ST_CMP_M_JSON && a->json_ok, bj = b->media == ST_CMP_M_JSON && b->json_ok;

	if (!a->m->has_body && !b->m->has_body)
		return;
	if (a->m->has_body != b->m->has_body) {
		diff_bytes(a, b, o, a->m->has_body ? "the shadow's answer has no body" :
						     "production's answer has no body");
		return;
	}
	if (same_raw(a->m, b->m))
		return; /* byte for byte the same, whatever the coding */
	if (!cut && a->len == b->len && (!a->len || !memcmp(a->body, b->body, a->len)))
		return; /* the same once decoded */
	if (json && !cut) {
		if (aj && bj) {
			if (diff_json(r, s, a, b, o))
				return;
		} else if (aj != bj) {
			struct st_cmp_diff *d = add(o, "$", ST_CMP_TYPE);

			if (d) {
				d->a_set = d->b_set = true;
				show(d->a, (const char *)a->body, a->len, false);
				show(d->b, (const char *)b->body, b->len, false);
				snprintf(d->note, sizeof(d->note), "%s -> %s", aj ? "JSON" : "not JSON",
					 bj ? "JSON" : "not JSON");
			}
			return;
		}
	}
	if (cut && a->len == b->len && (!a->len || !memcmp(a->body, b->body, a->len))) {
		diff_bytes(a, b, o, "the held prefixes are equal; the rest differs (length or hash)");
		return;
	}
	if (a->media == ST_CMP_M_GRPC && b->media == ST_CMP_M_GRPC) {
		if (a->json_ok && b->json_ok && diff_grpc_msgs(r, s, a, b, o))
			return;
		if (!diff_grpc(a, b, o))
			return;
	}
	if (text && diff_text(s, a, b, o, cut ? " (held prefix)" : NULL))
		return;
	diff_bytes(a, b, o, NULL);
}

/* A JSON path with a member the redaction policy lists ($.user.password, $.a["api_key"][*]):
 * everything at and under it is a secret. */
static bool path_secret(const struct st_redact_rules *red, const char *p)
{
	while (*p) {
		const char *k = NULL;
		size_t n = 0;

		if (*p == '.') {
			k = ++p;
			while (*p && *p != '.' && *p != '[')
				p++;
			n = (size_t)(p - k);
		} else if (p[0] == '[' && p[1] == '"') {
			k = p += 2;
			while (*p && !(*p == '"' && p[-1] != '\\'))
				p++;
			n = (size_t)(p - k);
			p += *p ? 1 : 0;
		} else {
			p++;
		}
		if (k && st_redact_field_listed(red, k, n))
			return true;
	}
	return false;
}

/* A value shown to people (redact.h's policy; the comparison itself saw the real values). */
static void mask_value(const struct st_redact_rules *red, char *v, bool secret, bool url, bool text)
{
	if (secret) {
		snprintf(v, ST_CMP_VAL_MAX, "(masked)");
		return;
	}
	if (url)
		st_redact_url(red, v, strlen(v), (uint8_t *)v);
	if (text) {
		/* "line N: ..." (text bodies) shows the line after its number */
		char *t = strncmp(v, "line ", 5) ? v : strstr(v, ": ");

		t = t == v ? v : t ? t + 2 : v;
		st_redact_text(red, t, strlen(t));
	}
}

/* The differences' values, as the redaction policy wants them shown: listed header fields
 * and JSON members (and what is under them) masked, URLs and bodies redacted. */
static void mask(const struct st_redact_rules *red, struct st_cmp_diffs *o)
{
	static const struct st_redact_rules dflt;

	if (!red)
		red = &dflt;
	if (red->none)
		return;
	for (uint32_t i = 0; i < o->n; i++) {
		struct st_cmp_diff *d = &o->d[i];
		bool secret = false, url = false, text = false;

		if (!strncmp(d->path, "headers.", 8)) {
			const char *name = d->path + 8;

			if (!strncmp(name, "set-cookie[", 11) ||
			    st_redact_header_listed(red, name, strlen(name)))
				continue; /* masked when shown (hdr_secret), or names only */
			url = !strcmp(name, "location") || !strcmp(name, "content-location") ||
			      !strcmp(name, "refresh") || !strcmp(name, "referer");
		} else if (d->path[0] == '$') {
			secret = path_secret(red, d->path);
			text = true;
		} else if (!strcmp(d->path, "body")) {
			text = d->kind == ST_CMP_LINES;
		}
		if (d->a_set)
			mask_value(red, d->a, secret, url, text);
		if (d->b_set)
			mask_value(red, d->b, secret, url, text);
	}
}

void st_cmp_diff(const struct st_cmp_rules *r, struct st_cmp_scratch *s,
		 const struct st_cmp_view *a, const struct st_cmp_view *b,
		 struct st_cmp_diffs *out)
{
	out->n = 0;
	out->more = 0;
	out->correlated = 0;
	out->ncorr = 0;
	out->corr = b->m->corr;
	out->corr_len = b->m->corr ? b->m->corr_len : 0;
	memset(out->slot, 0, sizeof(out->slot));
	if (a->m->status != b->m->status) {
		struct st_cmp_diff *d = add(out, "status", ST_CMP_VALUE);

		if (d) {
			d->a_set = d->b_set = true;
			snprintf(d->a, sizeof(d->a), "%u", a->m->status);
			snprintf(d->b, sizeof(d->b), "%u", b->m->status);
		}
	}
	diff_headers(r, a->m, b->m, out);
	diff_body(r, s, a, b, out);
	mask(r->redact, out);
}
