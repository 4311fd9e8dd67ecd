/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Protocol Buffers into json.h's tree, with or without a schema (protobuf.h has the rules).
 * One wire reader serves the decoder and the descriptor loader: a FileDescriptorSet is
 * itself a protobuf message.
 */
#include "protobuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the wire format ----------------------------------------------------------------------- */

int st_protobuf_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 10; i++) {
		uint8_t b;

		if (*pos >= len)
			return -1;
		b = buf[(*pos)++];
		if (i == 9 && b > 1)
			return -1; /* past 64 bits */
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static int tag(const uint8_t *buf, size_t len, size_t *pos, uint32_t *num, uint8_t *wire)
{
	uint64_t t;

	if (st_protobuf_varint(buf, len, pos, &t))
		return -1;
	*wire = (uint8_t)(t & 7);
	t >>= 3;
	if (!t || t > ST_PROTOBUF_MAX_FIELD || *wire == 6 || *wire == 7)
		return -1;
	*num = (uint32_t)t;
	return 0;
}

/* Skips the value of a field of wire type w (not a group) at buf[*pos]. */
static int skip(const uint8_t *buf, size_t len, size_t *pos, uint8_t w, uint64_t *v)
{
	switch (w) {
	case ST_PROTOBUF_VARINT:
		return st_protobuf_varint(buf, len, pos, v);
	case ST_PROTOBUF_I64:
	case ST_PROTOBUF_I32: {
		size_t k = w == ST_PROTOBUF_I64 ? 8 : 4;

		if (len - *pos < k)
			return -1;
		*v = 0;
		for (size_t i = 0; i < k; i++)
			*v |= (uint64_t)buf[*pos + i] << (8 * i);
		*pos += k;
		return 0;
	}
	case ST_PROTOBUF_LEN:
		if (st_protobuf_varint(buf, len, pos, v) || *v > len - *pos)
			return -1;
		*pos += (size_t)*v;
		return 0;
	default:
		return -1;
	}
}

int st_protobuf_next(const uint8_t *buf, size_t len, size_t *pos, struct st_protobuf_field *f)
{
	uint32_t stack[ST_PROTOBUF_MAX_DEPTH];
	unsigned depth = 0;
	size_t start;

	if (*pos >= len)
		return 0;
	if (tag(buf, len, pos, &f->num, &f->wire))
		return -1;
	start = *pos;
	f->v = 0;
	f->p = NULL;
	f->len = 0;
	if (f->wire == ST_PROTOBUF_EGROUP)
		return -1;
	if (f->wire != ST_PROTOBUF_SGROUP) {
		if (skip(buf, len, pos, f->wire, &f->v))
			return -1;
		if (f->wire == ST_PROTOBUF_LEN) {
			f->p = buf + start + (*pos - start - f->v);
			f->len = (size_t)f->v;
		}
		return 1;
	}
	/* a group: everything up to the end marker of its own number */
	stack[depth++] = f->num;
	for (;;) {
		size_t at = *pos;
		uint32_t num;
		uint8_t w;
		uint64_t v;

		if (tag(buf, len, pos, &num, &w))
			return -1;
		if (w == ST_PROTOBUF_EGROUP) {
			if (stack[--depth] != num)
				return -1;
			if (!depth) {
				f->p = buf + start;
				f->len = at - start;
				return 1;
			}
			continue;
		}
		if (w == ST_PROTOBUF_SGROUP) {
			if (depth == ST_PROTOBUF_MAX_DEPTH)
				return -1;
			stack[depth++] = num;
			continue;
		}
		if (skip(buf, len, pos, w, &v))
			return -1;
	}
}

/* All of p[0, n) is fields (a message that "parses cleanly"); n > 0. */
static bool clean(const uint8_t *p, size_t n)
{
	struct st_protobuf_field f;
	size_t pos = 0;
	int r;

	if (!n)
		return false;
	while ((r = st_protobuf_next(p, n, &pos, &f)) == 1)
		;
	return r == 0;
}

/* p[0, n) splits into varints none of which ends in a needless zero byte. */
static bool packed_varints(const uint8_t *p, size_t n)
{
	size_t pos = 0;

	while (pos < n) {
		size_t at = pos;
		uint64_t v;

		if (st_protobuf_varint(p, n, &pos, &v) || (pos - at > 1 && !p[pos - 1]))
			return false;
	}
	return n > 0;
}

/* ---- schemas --------------------------------------------------------------------------------- */

enum ftype {
	FT_DOUBLE = 1, FT_FLOAT, FT_INT64, FT_UINT64, FT_INT32, FT_FIXED64, FT_FIXED32, FT_BOOL,
	FT_STRING, FT_GROUP, FT_MESSAGE, FT_BYTES, FT_UINT32, FT_ENUM, FT_SFIXED32, FT_SFIXED64,
	FT_SINT32, FT_SINT64, FT__MAX,
};

struct fld {
	uint32_t num;
	uint8_t type;              /* enum ftype */
	bool repeated, map;
	uint32_t name, name_len;   /* in the string arena */
	uint32_t tname;            /* type_name (0: none) */
	int32_t ref;               /* message or enum index */
};

struct st_protobuf_type {
	const struct st_protobuf_schema *s;
	uint32_t name;
	uint32_t fi, nf;           /* s->f[fi, fi + nf), sorted by number */
	bool map_entry;
};

struct penum {
	uint32_t name;
	uint32_t vi, nv;           /* s->ev[vi, vi + nv) */
};

struct evalue {
	int32_t num;
	uint32_t name;
};

struct method {
	uint32_t path, in, out;    /* strings: "/pkg.Svc/Method", the type names */
	int32_t in_i, out_i;
};

struct st_protobuf_schema {
	char *str;
	size_t slen, scap;
	struct st_protobuf_type *m;
	uint32_t nm, cm;
	struct fld *f;
	uint32_t nf, cf;
	struct penum *e;
	uint32_t ne, ce;
	struct evalue *ev;
	uint32_t nev, cev;
	struct method *md;
	uint32_t nmd, cmd;
	uint32_t *msort, *esort, *mdsort; /* indexes sorted by name (methods: by path) */
};

#define GROW(arr, n, cap)                                                                   \
	({                                                                                  \
		int _r = 0;                                                                 \
		if ((n) == (cap)) {                                                         \
			uint32_t _nc = (cap) ? (cap) * 2 : 16;                              \
			void *_p = realloc((arr), (size_t)_nc * sizeof(*(arr)));           \
			if (_p) {                                                           \
				(arr) = _p;                                                 \
				(cap) = _nc;                                                \
			} else {                                                            \
				_r = -1;                                                    \
			}                                                                   \
		}                                                                           \
		_r;                                                                         \
	})

struct ld {
	struct st_protobuf_schema *s;
	char *err;
	size_t errlen;
};

static int lfail(struct ld *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(struct ld *L, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(L->err, L->errlen, "descriptor: ");

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < L->errlen)
		vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Strings: the arena, NUL-terminated; offset 0 is the empty string. The pieces may lie in
 * the arena itself (a prefix): they are found again after it moves. */
static int64_t str_add(struct st_protobuf_schema *s, const char *a, size_t na, const char *b,
		       size_t nb, const char *c, size_t nc)
{
	size_t need = s->slen + na + nb + nc + 1, off = s->slen;
	const char *src[3] = { a, b, c };
	size_t len[3] = { na, nb, nc }, at = s->slen, inside[3];

	if (need > UINT32_MAX)
		return -1;
	for (int i = 0; i < 3; i++) {
		uintptr_t p = (uintptr_t)src[i], lo = (uintptr_t)s->str;

		inside[i] = s->str && p >= lo && p < lo + s->slen ? p - lo + 1 : 0;
	}
	if (need > s->scap) {
		size_t ncap = s->scap ? s->scap * 2 : 4096;
		char *n;

		while (ncap < need)
			ncap *= 2;
		n = realloc(s->str, ncap);
		if (!n)
			return -1;
		s->str = n;
		s->scap = ncap;
		for (int i = 0; i < 3; i++)
			if (inside[i])
				src[i] = n + inside[i] - 1;
	}
	for (int i = 0; i < 3; i++) {
		memmove(s->str + at, src[i], len[i]);
		at += len[i];
	}
	s->slen = need;
	s->str[need - 1] = 0;
	return (int64_t)off;
}

/* A full name: prefix "." name, or name alone. */
static int64_t full_name(struct st_protobuf_schema *s, uint32_t prefix, const uint8_t *name,
			 size_t n)
{
	const char *p = s->str + prefix;
	size_t pl = strlen(p);

	return pl ? str_add(s, p, pl, ".", 1, (const char *)name, n) :
		    str_add(s, (const char *)name, n, "", 0, "", 0);
}

/* The last field number num of a message, as a string (or NULL). */
static const uint8_t *lstring(const uint8_t *p, size_t n, uint32_t num, size_t *out_len)
{
	struct st_protobuf_field f;
	const uint8_t *r = NULL;
	size_t pos = 0;

	while (st_protobuf_next(p, n, &pos, &f) == 1)
		if (f.num == num && f.wire == ST_PROTOBUF_LEN) {
			r = f.p;
			*out_len = f.len;
		}
	return r;
}

static int load_enum(struct ld *L, const uint8_t *p, size_t n, uint32_t prefix)
{
	struct st_protobuf_schema *s = L->s;
	struct st_protobuf_field f;
	size_t pos = 0, nl = 0;
	const uint8_t *name = lstring(p, n, 1, &nl);
	struct penum *e;
	int64_t fn;
	int r;

	if (!name)
		return lfail(L, "an enum without a name");
	fn = full_name(s, prefix, name, nl);
	if (fn < 0 || GROW(s->e, s->ne, s->ce))
		return lfail(L, "out of memory");
	e = &s->e[s->ne++];
	e->name = (uint32_t)fn;
	e->vi = s->nev;
	e->nv = 0;
	while ((r = st_protobuf_next(p, n, &pos, &f)) == 1) {
		struct st_protobuf_field g;
		size_t q = 0, vl = 0;
		const uint8_t *vn;
		int64_t num = 0, so;

		if (f.num != 2 || f.wire != ST_PROTOBUF_LEN)
			continue;
		vn = lstring(f.p, f.len, 1, &vl);
		while (st_protobuf_next(f.p, f.len, &q, &g) == 1)
			if (g.num == 2 && g.wire == ST_PROTOBUF_VARINT)
				num = (int32_t)(uint32_t)g.v;
		if (!vn)
			return lfail(L, "a value of enum %s without a name", s->str + e->name);
		so = str_add(s, (const char *)vn, vl, "", 0, "", 0);
		if (so < 0 || GROW(s->ev, s->nev, s->cev))
			return lfail(L, "out of memory");
		s->ev[s->nev].num = (int32_t)num;
		s->ev[s->nev].name = (uint32_t)so;
		s->nev++;
		s->e[s->ne - 1].nv++;
	}
	return r < 0 ? lfail(L, "enum %s does not parse", s->str + s->e[s->ne - 1].name) : 0;
}

static int fld_cmp(const void *a, const void *b)
{
	const struct fld *x = a, *y = b;

	return (x->num > y->num) - (x->num < y->num);
}

static int load_msg(struct ld *L, const uint8_t *p, size_t n, uint32_t prefix, unsigned depth)
{
	struct st_protobuf_schema *s = L->s;
	struct st_protobuf_field f;
	size_t pos = 0, nl = 0;
	const uint8_t *name = lstring(p, n, 1, &nl);
	uint32_t mi, fname;
	int64_t fn;
	int r;

	if (depth > ST_PROTOBUF_MAX_DEPTH)
		return lfail(L, "messages nested deeper than %u", ST_PROTOBUF_MAX_DEPTH);
	if (!name)
		return lfail(L, "a message without a name");
	fn = full_name(s, prefix, name, nl);
	if (fn < 0 || GROW(s->m, s->nm, s->cm))
		return lfail(L, "out of memory");
	fname = (uint32_t)fn;
	mi = s->nm++;
	memset(&s->m[mi], 0, sizeof(s->m[mi]));
	s->m[mi].name = fname;
	s->m[mi].fi = s->nf;
	/* its fields first, contiguous; then what it nests */
	while ((r = st_protobuf_next(p, n, &pos, &f)) == 1) {
		struct st_protobuf_field g;
		struct fld *x;
		size_t q = 0, l = 0;
		const uint8_t *fnm, *tn;

		if (f.wire != ST_PROTOBUF_LEN)
			continue;
		if (f.num == 7) { /* MessageOptions: map_entry (7) */
			while (st_protobuf_next(f.p, f.len, &q, &g) == 1)
				if (g.num == 7 && g.wire == ST_PROTOBUF_VARINT)
					s->m[mi].map_entry = g.v != 0;
			continue;
		}
		if (f.num != 2)
			continue;
		if (GROW(s->f, s->nf, s->cf))
			return lfail(L, "out of memory");
		x = &s->f[s->nf];
		memset(x, 0, sizeof(*x));
		x->ref = -1;
		while (st_protobuf_next(f.p, f.len, &q, &g) == 1) {
			if (g.wire != ST_PROTOBUF_VARINT)
				continue;
			if (g.num == 3)
				x->num = (uint32_t)g.v;
			else if (g.num == 4)
				x->repeated = g.v == 3;
			else if (g.num == 5)
				x->type = (uint8_t)(g.v < FT__MAX ? g.v : 0);
		}
		fnm = lstring(f.p, f.len, 1, &l);
		if (!fnm || !x->num || x->num > ST_PROTOBUF_MAX_FIELD || !x->type)
			return lfail(L, "a field of %s without a name, a number or a known type",
				     s->str + fname);
		fn = str_add(s, (const char *)fnm, l, "", 0, "", 0);
		if (fn < 0)
			return lfail(L, "out of memory");
		x = &s->f[s->nf];
		x->name = (uint32_t)fn;
		x->name_len = (uint32_t)l;
		tn = lstring(f.p, f.len, 6, &l);
		if (tn) {
			/* ".pkg.Msg": protoc writes them whole, with the leading dot */
			if (l && tn[0] == '.')
				tn++, l--;
			fn = str_add(s, (const char *)tn, l, "", 0, "", 0);
			if (fn < 0)
				return lfail(L, "out of memory");
			s->f[s->nf].tname = (uint32_t)fn;
		}
		s->nf++;
		s->m[mi].nf++;
	}
	if (r < 0)
		return lfail(L, "message %s does not parse", s->str + fname);
	if (s->m[mi].nf)
		qsort(s->f + s->m[mi].fi, s->m[mi].nf, sizeof(*s->f), fld_cmp);
	pos = 0;
	while (st_protobuf_next(p, n, &pos, &f) == 1) {
		if (f.wire != ST_PROTOBUF_LEN)
			continue;
		if (f.num == 3 && load_msg(L, f.p, f.len, fname, depth + 1))
			return -1;
		if (f.num == 4 && load_enum(L, f.p, f.len, fname))
			return -1;
	}
	return 0;
}

static int load_service(struct ld *L, const uint8_t *p, size_t n, uint32_t prefix)
{
	struct st_protobuf_schema *s = L->s;
	struct st_protobuf_field f;
	size_t pos = 0, nl = 0;
	const uint8_t *name = lstring(p, n, 1, &nl);
	int64_t svc;

	if (!name)
		return lfail(L, "a service without a name");
	svc = full_name(s, prefix, name, nl);
	if (svc < 0)
		return lfail(L, "out of memory");
	while (st_protobuf_next(p, n, &pos, &f) == 1) {
		size_t ml = 0, il = 0, ol = 0;
		const uint8_t *mn, *in, *out;
		int64_t path, a, b;
		const char *sv;

		if (f.num != 2 || f.wire != ST_PROTOBUF_LEN)
			continue;
		mn = lstring(f.p, f.len, 1, &ml);
		in = lstring(f.p, f.len, 2, &il);
		out = lstring(f.p, f.len, 3, &ol);
		sv = s->str + svc;
		if (!mn || !in || !out)
			return lfail(L, "a method of %s without a name or its types", sv);
		if (il && in[0] == '.')
			in++, il--;
		if (ol && out[0] == '.')
			out++, ol--;
		/* "/pkg.Svc/Method": the service's name is in the arena, the method's in the input */
		path = str_add(s, "/", 1, sv, strlen(sv), "/", 1);
		if (path >= 0) {
			s->slen--; /* over the NUL: the method's name goes on the same string */
			if (str_add(s, (const char *)mn, ml, "", 0, "", 0) < 0)
				path = -1;
		}
		a = str_add(s, (const char *)in, il, "", 0, "", 0);
		b = str_add(s, (const char *)out, ol, "", 0, "", 0);
		if (path < 0 || a < 0 || b < 0 || GROW(s->md, s->nmd, s->cmd))
			return lfail(L, "out of memory");
		s->md[s->nmd++] = (struct method){ (uint32_t)path, (uint32_t)a, (uint32_t)b, -1, -1 };
	}
	return 0;
}

static int load_file(struct ld *L, const uint8_t *p, size_t n)
{
	struct st_protobuf_field f;
	size_t pos = 0, pl = 0;
	const uint8_t *pkg = lstring(p, n, 2, &pl);
	int64_t prefix = str_add(L->s, pkg ? (const char *)pkg : "", pkg ? pl : 0, "", 0, "", 0);
	int r;

	if (prefix < 0)
		return lfail(L, "out of memory");
	while ((r = st_protobuf_next(p, n, &pos, &f)) == 1) {
		if (f.wire != ST_PROTOBUF_LEN)
			continue;
		if ((f.num == 4 && load_msg(L, f.p, f.len, (uint32_t)prefix, 1)) ||
		    (f.num == 5 && load_enum(L, f.p, f.len, (uint32_t)prefix)) ||
		    (f.num == 6 && load_service(L, f.p, f.len, (uint32_t)prefix)))
			return -1;
	}
	return r < 0 ? lfail(L, "a file descriptor does not parse") : 0;
}

/* qsort_r over indexes by the names they point at. */
struct by {
	const struct st_protobuf_schema *s;
	int what; /* 0 messages, 1 enums, 2 method paths */
};

static const char *name_at(const struct st_protobuf_schema *s, int what, uint32_t i)
{
	return s->str + (what == 0 ? s->m[i].name : what == 1 ? s->e[i].name : s->md[i].path);
}

static int by_name(const void *a, const void *b, void *arg)
{
	const struct by *x = arg;

	return strcmp(name_at(x->s, x->what, *(const uint32_t *)a),
		      name_at(x->s, x->what, *(const uint32_t *)b));
}

static int sort_names(struct st_protobuf_schema *s, int what, uint32_t n, uint32_t **out)
{
	struct by b = { s, what };

	*out = malloc(((size_t)n + 1) * sizeof(**out));
	if (!*out)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		(*out)[i] = i;
	qsort_r(*out, n, sizeof(**out), by_name, &b);
	return 0;
}

static int64_t find(const struct st_protobuf_schema *s, int what, const char *name, size_t len)
{
	const uint32_t *idx = what == 0 ? s->msort : what == 1 ? s->esort : s->mdsort;
	uint32_t lo = 0, hi = what == 0 ? s->nm : what == 1 ? s->ne : s->nmd;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *m = name_at(s, what, idx[mid]);
		int c = strncmp(m, name, len);

		if (!c && m[len])
			c = 1;
		if (!c)
			return idx[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int resolve(struct ld *L)
{
	struct st_protobuf_schema *s = L->s;

	if (sort_names(s, 0, s->nm, &s->msort) || sort_names(s, 1, s->ne, &s->esort) ||
	    sort_names(s, 2, s->nmd, &s->mdsort))
		return lfail(L, "out of memory");
	for (uint32_t i = 0; i < s->nm; i++)
		s->m[i].s = s;
	for (uint32_t i = 0; i < s->nf; i++) {
		struct fld *x = &s->f[i];
		const char *tn = s->str + x->tname;
		bool msg = x->type == FT_MESSAGE || x->type == FT_GROUP;

		if (!msg && x->type != FT_ENUM)
			continue;
		x->ref = (int32_t)find(s, msg ? 0 : 1, tn, strlen(tn));
		if (x->ref < 0)
			return lfail(L, "type %s of field %s not in the set (protoc --include_imports?)",
				     tn, s->str + x->name);
		x->map = x->type == FT_MESSAGE && x->repeated && s->m[x->ref].map_entry;
	}
	for (uint32_t i = 0; i < s->nmd; i++) {
		struct method *m = &s->md[i];

		m->in_i = (int32_t)find(s, 0, s->str + m->in, strlen(s->str + m->in));
		m->out_i = (int32_t)find(s, 0, s->str + m->out, strlen(s->str + m->out));
		if (m->in_i < 0 || m->out_i < 0)
			return lfail(L, "the types of method %s are not in the set", s->str + m->path);
	}
	return 0;
}

struct st_protobuf_schema *st_protobuf_schema__load(const uint8_t *buf, size_t len, char *err,
						    size_t errlen)
{
	struct st_protobuf_schema *s = calloc(1, sizeof(*s));
	struct ld L = { s, err, errlen };
	struct st_protobuf_field f;
	size_t pos = 0;
	int r, files = 0;

	if (errlen)
		err[0] = 0;
	if (!s || str_add(s, "", 0, "", 0, "", 0) < 0) {
		lfail(&L, "out of memory");
		st_protobuf_schema__free(s);
		return NULL;
	}
	while ((r = st_protobuf_next(buf, len, &pos, &f)) == 1) {
		if (f.num != 1 || f.wire != ST_PROTOBUF_LEN) {
			r = -1;
			break;
		}
		files++;
		if (load_file(&L, f.p, f.len))
			goto fail;
	}
	if (r < 0 || !files) {
		lfail(&L, "not a FileDescriptorSet (protoc --include_imports --descriptor_set_out)");
		goto fail;
	}
	if (resolve(&L))
		goto fail;
	return s;
fail:
	st_protobuf_schema__free(s);
	return NULL;
}

struct st_protobuf_schema *st_protobuf_schema__load_file(const char *path, char *err, size_t errlen)
{
	struct st_protobuf_schema *s = NULL;
	uint8_t *buf = NULL;
	struct stat stt;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &stt) || !S_ISREG(stt.st_mode) ||
	    (uint64_t)stt.st_size > ST_PROTOBUF_SCHEMA_MAX) {
		snprintf(err, errlen, "descriptor %s: %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file of at most 64 MiB");
		goto out;
	}
	buf = malloc((size_t)stt.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "descriptor %s: out of memory", path);
		goto out;
	}
	while (got < (size_t)stt.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)stt.st_size - got);

		if (n <= 0) {
			snprintf(err, errlen, "descriptor %s: %s", path,
				 n ? strerror(errno) : "shorter than it was");
			goto out;
		}
		got += (size_t)n;
	}
	s = st_protobuf_schema__load(buf, got, err, errlen);
	if (!s && !strncmp(err, "descriptor: ", 12)) {
		/* name the file: "descriptor FILE: why" */
		char why[256];

		snprintf(why, sizeof(why), "%s", err + 12);
		snprintf(err, errlen, "descriptor %s: %s", path, why);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return s;
}

void st_protobuf_schema__free(struct st_protobuf_schema *s)
{
	if (!s)
		return;
	free(s->str);
	free(s->m);
	free(s->f);
	free(s->e);
	free(s->ev);
	free(s->md);
	free(s->msort);
	free(s->esort);
	free(s->mdsort);
	free(s);
}

const struct st_protobuf_type *st_protobuf_schema__type(const struct st_protobuf_schema *s,
							const char *name)
{
	int64_t i;

	if (name[0] == '.')
		name++;
	i = find(s, 0, name, strlen(name));
	return i < 0 ? NULL : &s->m[i];
}

int st_protobuf_schema__method(const struct st_protobuf_schema *s, const char *path, size_t len,
			       const struct st_protobuf_type **in,
			       const struct st_protobuf_type **out)
{
	/* a query string is not part of a gRPC path, but a proxy may leave one */
	const char *q = memchr(path, '?', len);
	int64_t i = find(s, 2, path, q ? (size_t)(q - path) : len);

	if (i < 0)
		return -1;
	if (in)
		*in = &s->m[s->md[i].in_i];
	if (out)
		*out = &s->m[s->md[i].out_i];
	return 0;
}

const struct st_protobuf_type *st_protobuf_schema__type_at(const struct st_protobuf_schema *s,
							   uint32_t i)
{
	return i < s->nm ? &s->m[i] : NULL;
}

const char *st_protobuf_type__name(const struct st_protobuf_type *t)
{
	return t->s->str + t->name;
}

void st_protobuf_schema__counts(const struct st_protobuf_schema *s, uint32_t *msgs, uint32_t *enums,
				uint32_t *methods)
{
	*msgs = s->nm;
	*enums = s->ne;
	*methods = s->nmd;
}

static const struct fld *field_of(const struct st_protobuf_type *t, uint32_t num)
{
	const struct fld *f = t->s->f + t->fi;
	uint32_t lo = 0, hi = t->nf;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f[mid].num == num)
			return &f[mid];
		if (f[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *enum_name(const struct st_protobuf_schema *s, int32_t e, int32_t v)
{
	const struct penum *x = &s->e[e];

	for (uint32_t i = 0; i < x->nv; i++)
		if (s->ev[x->vi + i].num == v)
			return s->str + s->ev[x->vi + i].name;
	return NULL;
}

/* ---- decoding -------------------------------------------------------------------------------- */

struct ent {
	uint32_t num, idx;
	uint8_t wire;
	uint64_t v;
	const uint8_t *p;
	size_t len;
};

struct dec {
	struct st_json_doc *d;
	const uint8_t *base;
	unsigned max_depth;
	struct ent *st;            /* every open message's fields, the innermost on top */
	size_t top, cap;
	bool fail;
};

/* A container being filled. */
struct ctr {
	uint32_t idx, last, n;
};

static struct st_json_node *nd(struct dec *x, uint32_t i)
{
	return &x->d->nodes[i];
}

/* A new child of c (its key: k, n bytes, when c is an object). -1 when out of room. */
static int64_t child(struct dec *x, struct ctr *c, const char *k, size_t kn, bool field)
{
	int64_t i = st_json_node_add(x->d), ko = 0;

	if (i < 0 || (k && (ko = st_json_pool_add(x->d, k, kn)) < 0)) {
		x->fail = true;
		return -1;
	}
	if (k) {
		nd(x, (uint32_t)i)->key_off = (uint32_t)ko;
		nd(x, (uint32_t)i)->key_len = (uint32_t)kn;
		nd(x, (uint32_t)i)->flags |= ST_JSON_F_KEY_POOL | (field ? ST_JSON_F_KEY_FIELD : 0);
	}
	if (c) {
		if (c->last)
			nd(x, c->last)->next = (uint32_t)i;
		c->last = (uint32_t)i;
		c->n++;
		nd(x, c->idx)->n = c->n;
	}
	return i;
}

/* Node i holds text t (n bytes, into the pool) as type ty. */
static void text(struct dec *x, int64_t i, uint8_t ty, const char *t, size_t n)
{
	int64_t o;

	if (i < 0)
		return;
	o = st_json_pool_add(x->d, t, n);
	if (o < 0) {
		x->fail = true;
		return;
	}
	nd(x, (uint32_t)i)->type = ty;
	nd(x, (uint32_t)i)->flags |= ST_JSON_F_STR_POOL;
	nd(x, (uint32_t)i)->off = (uint32_t)o;
	nd(x, (uint32_t)i)->len = (uint32_t)n;
}

/* v in decimal into b (24 bytes): its length. snprintf costs most of a decode. */
static size_t u64_dec(char *b, uint64_t v)
{
	char t[24];
	size_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		b[i] = t[n - 1 - i];
	return n;
}

static void num_u(struct dec *x, int64_t i, uint64_t v)
{
	char b[24];

	text(x, i, ST_JSON_NUMBER, b, u64_dec(b, v));
}

/* Node i is the string p[0, n) as it is in the input (strings point into it). */
static void str_src(struct dec *x, int64_t i, const uint8_t *p, size_t n)
{
	if (i < 0)
		return;
	nd(x, (uint32_t)i)->type = ST_JSON_STRING;
	nd(x, (uint32_t)i)->off = (uint32_t)(p - x->base);
	nd(x, (uint32_t)i)->len = (uint32_t)n;
}

static void base64(struct dec *x, int64_t i, const uint8_t *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, need = (n + 2) / 3 * 4;
	char *t = malloc(need + 1);

	if (!t) {
		x->fail = true;
		return;
	}
	for (size_t k = 0; k < n; k += 3) {
		uint32_t v = (uint32_t)p[k] << 16 | (k + 1 < n ? (uint32_t)p[k + 1] << 8 : 0) |
			     (k + 2 < n ? p[k + 2] : 0);

		t[o++] = a[v >> 18];
		t[o++] = a[(v >> 12) & 63];
		t[o++] = k + 1 < n ? a[(v >> 6) & 63] : '=';
		t[o++] = k + 2 < n ? a[v & 63] : '=';
	}
	text(x, i, ST_JSON_STRING, t, o);
	free(t);
}

/* A container's shown text: "{3 fields}", "[4 items]" (its bytes would be binary). */
static void summary(struct dec *x, int64_t i, uint8_t ty)
{
	bool obj = ty == ST_JSON_OBJECT;
	char b[40];
	size_t o = 1;
	uint32_t n;

	if (i < 0 || x->fail)
		return;
	n = nd(x, (uint32_t)i)->n;
	b[0] = obj ? '{' : '[';
	o += u64_dec(b + o, n);
	memcpy(b + o, obj ? " field" : " item", obj ? 6 : 5);
	o += obj ? 6 : 5;
	if (n != 1)
		b[o++] = 's';
	b[o++] = obj ? '}' : ']';
	text(x, i, ty, b, o);
}

static void message(struct dec *x, int64_t node, const uint8_t *p, size_t n,
		    const struct st_protobuf_type *t, unsigned depth);

/* A length-delimited value without a schema (protobuf.h's order). */
static void len_value(struct dec *x, int64_t i, const uint8_t *p, size_t n, unsigned depth)
{
	if (i < 0)
		return;
	if (!n) {
		str_src(x, i, p, 0);
	} else if (depth < x->max_depth && clean(p, n)) {
		message(x, i, p, n, NULL, depth + 1);
	} else if (st_json_utf8_text(p, n, false)) {
		str_src(x, i, p, n);
	} else if (packed_varints(p, n)) {
		struct ctr c = { (uint32_t)i, 0, 0 };
		size_t pos = 0;
		uint64_t v;

		nd(x, (uint32_t)i)->type = ST_JSON_ARRAY;
		while (pos < n && !x->fail && !st_protobuf_varint(p, n, &pos, &v))
			num_u(x, child(x, &c, NULL, 0, false), v);
		summary(x, i, ST_JSON_ARRAY);
	} else {
		base64(x, i, p, n);
	}
}

/* A value without a schema. */
static void raw_value(struct dec *x, int64_t i, const struct ent *e, unsigned depth)
{
	switch (e->wire) {
	case ST_PROTOBUF_LEN:
		len_value(x, i, e->p, e->len, depth);
		break;
	case ST_PROTOBUF_SGROUP:
		if (depth < x->max_depth)
			message(x, i, e->p, e->len, NULL, depth + 1);
		else
			base64(x, i, e->p, e->len);
		break;
	default:
		num_u(x, i, e->v);
		break;
	}
}

static uint8_t wire_of(uint8_t ty)
{
	switch (ty) {
	case FT_DOUBLE:
	case FT_FIXED64:
	case FT_SFIXED64:
		return ST_PROTOBUF_I64;
	case FT_FLOAT:
	case FT_FIXED32:
	case FT_SFIXED32:
		return ST_PROTOBUF_I32;
	case FT_STRING:
	case FT_BYTES:
	case FT_MESSAGE:
		return ST_PROTOBUF_LEN;
	case FT_GROUP:
		return ST_PROTOBUF_SGROUP;
	default:
		return ST_PROTOBUF_VARINT;
	}
}

/* The text of a scalar of field f whose wire value is v, and its node type. */
static size_t scalar_text(const struct fld *f, uint64_t v, char *b, size_t cap, uint8_t *ty)
{
	double d;
	float fl;
	uint32_t u;
	int n = 0;

	*ty = ST_JSON_NUMBER;
	switch (f->type) {
	case FT_DOUBLE:
	case FT_FLOAT:
		if (f->type == FT_DOUBLE) {
			memcpy(&d, &v, sizeof(d));
		} else {
			u = (uint32_t)v;
			memcpy(&fl, &u, sizeof(fl));
			d = fl;
		}
		if (isnan(d) || isinf(d)) {
			*ty = ST_JSON_STRING;
			return (size_t)snprintf(b, cap, "%s",
						isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
		}
		/* the fewest digits that read back as the same value */
		for (int p = f->type == FT_FLOAT ? 6 : 15; p <= (f->type == FT_FLOAT ? 9 : 17); p++) {
			n = snprintf(b, cap, "%.*g", p, d);
			if (f->type == FT_FLOAT ? strtof(b, NULL) == fl : strtod(b, NULL) == d)
				break;
		}
		return (size_t)n;
	case FT_INT64:
	case FT_SFIXED64:
		return (size_t)snprintf(b, cap, "%" PRId64, (int64_t)v);
	case FT_INT32:
	case FT_SFIXED32:
	case FT_ENUM:
		return (size_t)snprintf(b, cap, "%" PRId32, (int32_t)(uint32_t)v);
	case FT_UINT32:
	case FT_FIXED32:
		return (size_t)snprintf(b, cap, "%" PRIu32, (uint32_t)v);
	case FT_SINT32:
		return (size_t)snprintf(b, cap, "%" PRId32,
					(int32_t)((uint32_t)v >> 1) ^ -(int32_t)(v & 1));
	case FT_SINT64:
		return (size_t)snprintf(b, cap, "%" PRId64, (int64_t)(v >> 1) ^ -(int64_t)(v & 1));
	case FT_BOOL:
		*ty = v ? ST_JSON_TRUE : ST_JSON_FALSE;
		return (size_t)snprintf(b, cap, "%s", v ? "true" : "false");
	default: /* UINT64, FIXED64 */
		return (size_t)snprintf(b, cap, "%" PRIu64, v);
	}
}

static void scalar(struct dec *x, int64_t i, const struct fld *f, uint64_t v)
{
	char b[40];
	uint8_t ty;
	size_t n = scalar_text(f, v, b, sizeof(b), &ty);

	text(x, i, ty, b, n);
}

/* A value of field f (its wire type checked). */
static void typed_value(struct dec *x, int64_t i, const struct st_protobuf_type *t,
			const struct fld *f, const struct ent *e, unsigned depth)
{
	const struct st_protobuf_schema *s = t->s;

	if (i < 0)
		return;
	switch (f->type) {
	case FT_STRING:
		str_src(x, i, e->p, e->len);
		return;
	case FT_BYTES:
		base64(x, i, e->p, e->len);
		return;
	case FT_MESSAGE:
	case FT_GROUP:
		if (depth < x->max_depth && (!e->len || clean(e->p, e->len)))
			message(x, i, e->p, e->len, &s->m[f->ref], depth + 1);
		else
			raw_value(x, i, e, depth);
		return;
	case FT_ENUM: {
		const char *en = enum_name(s, f->ref, (int32_t)(uint32_t)e->v);

		if (en)
			text(x, i, ST_JSON_STRING, en, strlen(en));
		else
			scalar(x, i, f, e->v);
		return;
	}
	default:
		scalar(x, i, f, e->v);
		return;
	}
}

/* The packed values of a repeated scalar f, appended to array c. -1 when they do not split. */
static int packed(struct dec *x, struct ctr *c, const struct st_protobuf_type *t,
		  const struct fld *f, const struct ent *e, unsigned depth, bool check)
{
	uint8_t w = wire_of(f->type);
	size_t pos = 0;

	while (pos < e->len) {
		struct ent v = { .num = e->num, .wire = w };

		if (w == ST_PROTOBUF_VARINT ? st_protobuf_varint(e->p, e->len, &pos, &v.v) :
					skip(e->p, e->len, &pos, w, &v.v))
			return -1;
		if (!check)
			typed_value(x, child(x, c, NULL, 0, false), t, f, &v, depth);
	}
	return 0;
}

/* The entries [a, b) are f's (the schema's) as they came. */
static bool fits(const struct fld *f, const struct ent *a, const struct ent *b)
{
	uint8_t w = wire_of(f->type);
	bool packable = w != ST_PROTOBUF_LEN && w != ST_PROTOBUF_SGROUP;

	for (const struct ent *e = a; e < b; e++)
		if (e->wire != w && !(f->repeated && packable && e->wire == ST_PROTOBUF_LEN))
			return false;
	return true;
}

/* A map entry's key and value: field 1 and field 2, the last of each. */
static int map_entry(const struct ent *e, struct st_protobuf_field *k, struct st_protobuf_field *v,
		     bool *hk, bool *hv)
{
	struct st_protobuf_field g;
	size_t pos = 0;
	int r;

	*hk = *hv = false;
	while ((r = st_protobuf_next(e->p, e->len, &pos, &g)) == 1) {
		if (g.num == 1) {
			*k = g;
			*hk = true;
		} else if (g.num == 2) {
			*v = g;
			*hv = true;
		}
	}
	return r;
}

static bool map_fits(const struct st_protobuf_type *et, const struct ent *a, const struct ent *b)
{
	const struct fld *kf = field_of(et, 1), *vf = field_of(et, 2);

	if (!kf || !vf || kf->type == FT_MESSAGE || kf->type == FT_GROUP ||
	    vf->type == FT_GROUP)
		return false;
	for (const struct ent *e = a; e < b; e++) {
		struct st_protobuf_field k, v;
		bool hk, hv;

		if (e->wire != ST_PROTOBUF_LEN || map_entry(e, &k, &v, &hk, &hv) < 0)
			return false;
		if ((hk && k.wire != wire_of(kf->type)) || (hv && v.wire != wire_of(vf->type)))
			return false;
	}
	return true;
}

/* A map field, entries x->st[a, b): an object keyed by each entry's key. Indexes, not
 * pointers: a value that is a message pushes onto x->st, which may move. */
static void map_value(struct dec *x, int64_t i, const struct st_protobuf_type *et, size_t a,
		      size_t b, unsigned depth)
{
	const struct fld *kf = field_of(et, 1), *vf = field_of(et, 2);
	struct ctr c = { (uint32_t)i, 0, 0 };

	nd(x, (uint32_t)i)->type = ST_JSON_OBJECT;
	for (size_t k = a; k < b && !x->fail; k++) {
		struct ent e = x->st[k], ve;
		struct st_protobuf_field kv = { 0 }, vv = { 0 };
		bool hk, hv;
		char kb[40];
		const char *key = kb;
		size_t kl;
		uint8_t ty;
		int64_t vi;

		map_entry(&e, &kv, &vv, &hk, &hv);
		if (kf->type == FT_STRING) {
			key = hk ? (const char *)kv.p : "";
			kl = hk ? kv.len : 0;
		} else {
			kl = scalar_text(kf, hk ? kv.v : 0, kb, sizeof(kb), &ty);
		}
		vi = child(x, &c, key, kl, false);
		if (vi < 0)
			return;
		ve = (struct ent){ .num = 2, .wire = wire_of(vf->type), .v = vv.v, .p = vv.p,
				   .len = vv.len };
		if (!hv)
			ve.p = e.p; /* absent: its type's default, "" for the lengths */
		typed_value(x, vi, et, vf, &ve, depth);
	}
	summary(x, i, ST_JSON_OBJECT);
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Node `node` becomes the message p[0, n) (which parses cleanly), of type t or none. */
static void message(struct dec *x, int64_t node, const uint8_t *p, size_t n,
		    const struct st_protobuf_type *t, unsigned depth)
{
	size_t base = x->top, pos = 0, i, j;
	struct ctr c = { (uint32_t)node, 0, 0 };
	struct st_protobuf_field f;

	if (node < 0)
		return;
	nd(x, (uint32_t)node)->type = ST_JSON_OBJECT;
	while (st_protobuf_next(p, n, &pos, &f) == 1) {
		if (x->top == x->cap) {
			size_t ncap = x->cap ? x->cap * 2 : 64;
			struct ent *ne = realloc(x->st, ncap * sizeof(*ne));

			if (!ne) {
				x->fail = true;
				return;
			}
			x->st = ne;
			x->cap = ncap;
		}
		x->st[x->top] = (struct ent){ .num = f.num, .idx = (uint32_t)(x->top - base),
					      .wire = f.wire, .v = f.v, .p = f.p, .len = f.len };
		x->top++;
	}
	/* encoders write fields in number order: sort only when they did not */
	for (i = base + 1; i < x->top && x->st[i - 1].num <= x->st[i].num; i++)
		;
	if (i < x->top)
		qsort(x->st + base, x->top - base, sizeof(*x->st), ent_cmp);
	for (i = base; i < x->top && !x->fail; i = j) {
		const struct fld *fd = NULL;
		const char *key;
		char kb[24];
		size_t kl;
		int64_t k;

		for (j = i + 1; j < x->top && x->st[j].num == x->st[i].num; j++)
			;
		if (t && (fd = field_of(t, x->st[i].num)) && !fits(fd, x->st + i, x->st + j))
			fd = NULL;
		if (fd && fd->map && !map_fits(&t->s->m[fd->ref], x->st + i, x->st + j))
			fd = NULL;
		if (fd && fd->repeated && !fd->map) {
			struct ctr a = { 0 };

			for (const struct ent *e = x->st + i; e < x->st + j && fd; e++)
				if (e->wire == ST_PROTOBUF_LEN && wire_of(fd->type) != ST_PROTOBUF_LEN &&
				    packed(x, &a, t, fd, e, depth, true))
					fd = NULL;
		}
		if (fd) {
			key = t->s->str + fd->name;
			kl = fd->name_len;
		} else {
			kl = u64_dec(kb, x->st[i].num);
			key = kb;
		}
		k = child(x, &c, key, kl, true);
		if (k < 0)
			break;
		if (fd && fd->map) {
			map_value(x, k, &t->s->m[fd->ref], i, j, depth);
		} else if (fd ? fd->repeated : j - i > 1) {
			struct ctr a = { (uint32_t)k, 0, 0 };

			nd(x, (uint32_t)k)->type = ST_JSON_ARRAY;
			for (size_t e = i; e < j && !x->fail; e++) {
				struct ent v = x->st[e]; /* x->st may move under a nested message */

				if (!fd)
					raw_value(x, child(x, &a, NULL, 0, false), &v, depth);
				else if (v.wire == ST_PROTOBUF_LEN && wire_of(fd->type) != ST_PROTOBUF_LEN)
					packed(x, &a, t, fd, &v, depth, false);
				else
					typed_value(x, child(x, &a, NULL, 0, false), t, fd, &v, depth);
			}
			summary(x, k, ST_JSON_ARRAY);
		} else {
			/* a singular field sent more than once: its last value */
			struct ent v = x->st[j - 1];

			if (fd)
				typed_value(x, k, t, fd, &v, depth);
			else
				raw_value(x, k, &v, depth);
		}
	}
	x->top = base;
	summary(x, node, ST_JSON_OBJECT);
}

/*
 * The decoders' common part: the tree over buf[0, len), its node cap (2 a byte, extra more),
 * then fill(x, arg) builds it. 0, or -1 with d->err.
 */
static int decode_with(struct st_json_doc *d, const uint8_t *buf, size_t len, uint32_t extra,
		       const struct st_protobuf_opts *o, void (*fill)(struct dec *, const void *),
		       const void *arg)
{
	struct dec x = { .d = d, .base = buf };
	uint32_t saved = d->max_nodes;

	x.max_depth = o && o->max_depth && o->max_depth < ST_PROTOBUF_MAX_DEPTH ? o->max_depth :
									    ST_PROTOBUF_MAX_DEPTH;
	st_json_doc_start(d, (const char *)buf, len);
	if (len >= UINT32_MAX / 4 || extra >= UINT32_MAX / 4) {
		d->err = ST_JSON_E_NODES;
		return -1;
	}
	d->max_nodes = o && o->max_nodes ? o->max_nodes : (uint32_t)(2 * len + 16 + extra);
	if (saved && saved < d->max_nodes)
		d->max_nodes = saved;
	fill(&x, arg);
	free(x.st);
	d->max_nodes = saved;
	if (x.fail) {
		if (d->err == ST_JSON_OK)
			d->err = ST_JSON_E_NOMEM;
		return -1;
	}
	return 0;
}

struct one {
	size_t len;
	const struct st_protobuf_type *type;
};

static void fill_one(struct dec *x, const void *arg)
{
	const struct one *a = arg;
	int64_t root = st_json_node_add(x->d);

	if (root >= 0)
		message(x, root, x->base, a->len, a->type, 0);
	else
		x->fail = true;
}

int st_protobuf_decode(struct st_json_doc *d, const uint8_t *buf, size_t len,
		       const struct st_protobuf_type *type, const struct st_protobuf_opts *o)
{
	struct one a = { len, type };

	/* an empty body is an empty message; else it must parse */
	if (len && !clean(buf, len)) {
		st_json_doc_start(d, (const char *)buf, len);
		d->err = ST_JSON_E_SYNTAX;
		return -1;
	}
	return decode_with(d, buf, len, 0, o, fill_one, &a);
}

struct list {
	const struct st_protobuf_span *m;
	uint32_t n;
	const struct st_protobuf_type *type;
};

static void fill_list(struct dec *x, const void *arg)
{
	const struct list *a = arg;
	int64_t root = st_json_node_add(x->d);
	struct ctr c = { 0, 0, 0 };

	if (root < 0) {
		x->fail = true;
		return;
	}
	c.idx = (uint32_t)root;
	nd(x, (uint32_t)root)->type = ST_JSON_ARRAY;
	for (uint32_t i = 0; i < a->n && !x->fail; i++) {
		const uint8_t *p = x->base + a->m[i].off;
		size_t n = a->m[i].len;
		int64_t k = child(x, &c, NULL, 0, false);

		if (k < 0)
			break;
		if (!n || clean(p, n))
			message(x, k, p, n, a->type, 0);
		else
			base64(x, k, p, n);
	}
	summary(x, root, ST_JSON_ARRAY);
}

int st_protobuf_decode_list(struct st_json_doc *d, const uint8_t *buf, size_t len,
			    const struct st_protobuf_span *m, uint32_t n,
			    const struct st_protobuf_type *type, const struct st_protobuf_opts *o)
{
	struct list a = { m, n, type };

	for (uint32_t i = 0; i < n; i++)
		if (m[i].off > len || m[i].len > len - m[i].off) {
			st_json_doc_start(d, (const char *)buf, len);
			d->err = ST_JSON_E_SYNTAX;
			return -1;
		}
	return decode_with(d, buf, len, n, o, fill_list, &a);
}
