// SPDX-License-Identifier: GPL-2.0-only
/* Sessions and ids: the map, the learners and the request rewriter (correlate.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "correlate.h"
#include "hash.h"
#include "json.h"
#include "list.h"

/* ---- value shapes -------------------------------------------------------------------------- */

static bool b64url_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

bool st_correlate_is_jwt(const char *s, size_t n)
{
	size_t i, dots = 0, part = 0;

	if (n < 20 || memcmp(s, "eyJ", 3))
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!part)
				return false;
			dots++;
			part = 0;
		} else if (b64url_char(s[i]) || s[i] == '=') {
			part++;
		} else {
			return false;
		}
	}
	return dots == 2 && part;
}

bool st_correlate_is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

bool st_correlate_is_token(const char *s, size_t n)
{
	size_t i, alpha = 0, digit = 0;
	bool hex = true, b64 = true;

	if (st_correlate_is_jwt(s, n) || st_correlate_is_uuid(s, n))
		return true;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isxdigit(c))
			hex = false;
		if (isalpha(c))
			alpha++;
		else if (isdigit(c))
			digit++;
		else if (!strchr("+/=-_", c) || !c)
			b64 = false;
	}
	if (hex && n >= 16)
		return true;
	/* base64 (or any random-looking word): letters and digits mixed */
	return b64 && n >= 20 && alpha && digit;
}

bool st_correlate_is_id_name(const char *s, size_t n)
{
	/* by length first: every member of every answer learned from asks */
	static const struct { const char *s; size_t n; } exact[] = {
		{ "id", 2 }, { "sid", 3 }, { "uuid", 4 }, { "guid", 4 }, { "key", 3 }, { "jti", 3 },
		{ "csrf", 4 }, { "xsrf", 4 }, { "nonce", 5 }, { "code", 4 },
	};
	char l[64];

	if (!n || n >= sizeof(l))
		return false;
	for (size_t i = 0; i < n; i++)
		l[i] = (char)tolower((unsigned char)s[i]);
	l[n] = 0;
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (n == exact[i].n && !memcmp(l, exact[i].s, n))
			return true;
	if (strstr(l, "token") || strstr(l, "session"))
		return true;
	if (n > 3 && (!strcmp(l + n - 3, "_id") || !strcmp(l + n - 3, "-id")))
		return true;
	if (n > 4 && !strcmp(l + n - 4, "uuid"))
		return true;
	return n > 2 && s[n - 2] == 'I' && s[n - 1] == 'd' && islower((unsigned char)s[n - 3]);
}

/* ---- the map ------------------------------------------------------------------------------ */

enum { E_MAPPED = 0, E_PENDING, E_AMBIG };

struct cent {
	struct cent *hnext;
	struct st_list_head lru;     /* most recently used first */
	uint64_t hash;
	uint64_t expire;
	uint32_t pn, tn;
	uint8_t state;
	char data[];                 /* production's value, then the target's */
};

struct st_correlate {
	struct st_correlate_config cfg;
	uint64_t seed;
	struct cent **tab;
	size_t nbuck;
	struct st_list_head lru;
	struct st_correlate_stats st;
};

#define ENT_OVERHEAD 16u /* malloc's header and rounding, counted */

static uint64_t ent_mem(const struct cent *e)
{
	return sizeof(*e) + e->pn + e->tn + ENT_OVERHEAD;
}

struct st_correlate *st_correlate__new(const struct st_correlate_config *cfg, uint64_t seed)
{
	struct st_correlate *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (!c->cfg.max_mem)
		c->cfg.max_mem = (uint64_t)ST_CORRELATE_MAX_MB_DEFAULT << 20;
	if (!c->cfg.ttl_ns)
		c->cfg.ttl_ns = ST_CORRELATE_TTL_NS_DEFAULT;
	c->seed = seed;
	c->nbuck = 256;
	c->tab = calloc(c->nbuck, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return NULL;
	}
	st_list_init(&c->lru);
	c->st.mem = c->nbuck * sizeof(*c->tab);
	return c;
}

void st_correlate__free(struct st_correlate *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nbuck; i++)
		for (struct cent *e = c->tab[i], *n; e; e = n) {
			n = e->hnext;
			free(e);
		}
	free(c->tab);
	free(c);
}

void st_correlate__stats(const struct st_correlate *c, struct st_correlate_stats *out)
{
	*out = c->st;
}

static uint64_t vhash(const struct st_correlate *c, const char *v, size_t n)
{
	return st_mix64(st_fnv1a(ST_FNV1A_INIT ^ c->seed, v, n));
}

static struct cent **find(struct st_correlate *c, const char *v, size_t n, uint64_t h)
{
	struct cent **pp = &c->tab[h & (c->nbuck - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && (*pp)->pn == n && !memcmp((*pp)->data, v, n))
			return pp;
	return pp;
}

static void unlink_ent(struct st_correlate *c, struct cent **pp)
{
	struct cent *e = *pp;

	*pp = e->hnext;
	st_list_del_init(&e->lru);
	c->st.mem -= ent_mem(e);
	c->st.entries--;
	free(e);
}

static void drop(struct st_correlate *c, struct cent *e)
{
	unlink_ent(c, find(c, e->data, e->pn, e->hash));
}

static void grow(struct st_correlate *c)
{
	size_t nb = c->nbuck * 2;
	struct cent **t = calloc(nb, sizeof(*t));

	if (!t)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < c->nbuck; i++)
		for (struct cent *e = c->tab[i], *n; e; e = n) {
			n = e->hnext;
			e->hnext = t[e->hash & (nb - 1)];
			t[e->hash & (nb - 1)] = e;
		}
	free(c->tab);
	c->st.mem += (nb - c->nbuck) * sizeof(*t);
	c->tab = t;
	c->nbuck = nb;
}

/* The least recently used entries go until the new one fits the cap. */
static void make_room(struct st_correlate *c, uint64_t need)
{
	while (c->st.mem + need > c->cfg.max_mem && !st_list_empty(&c->lru)) {
		drop(c, st_list_last_entry(&c->lru, struct cent, lru));
		c->st.evicted++;
	}
}

static struct cent *insert(struct st_correlate *c, const char *pv, size_t pn, const char *tv,
			   size_t tn, uint8_t state, uint64_t expire)
{
	uint64_t h = vhash(c, pv, pn);
	struct cent *e;
	struct cent **pp;

	if (pn > UINT16_MAX || tn > UINT16_MAX)
		return NULL;
	make_room(c, sizeof(*e) + pn + tn + ENT_OVERHEAD);
	if (c->st.mem + sizeof(*e) + pn + tn + ENT_OVERHEAD > c->cfg.max_mem)
		return NULL; /* a cap smaller than one entry */
	e = malloc(sizeof(*e) + pn + tn);
	if (!e)
		return NULL;
	e->hash = h;
	e->pn = (uint32_t)pn;
	e->tn = (uint32_t)tn;
	e->state = state;
	e->expire = expire;
	memcpy(e->data, pv, pn);
	if (tn)
		memcpy(e->data + pn, tv, tn);
	pp = &c->tab[h & (c->nbuck - 1)];
	e->hnext = *pp;
	*pp = e;
	st_list_add(&e->lru, &c->lru);
	c->st.mem += ent_mem(e);
	c->st.entries++;
	if (c->st.entries > c->nbuck)
		grow(c);
	return e;
}

int st_correlate__put(struct st_correlate *c, const char *pv, size_t pn, const char *tv, size_t tn,
		      uint64_t now)
{
	struct cent **pp, *e;

	if (!pn || !tn)
		return 0;
	pp = find(c, pv, pn, vhash(c, pv, pn));
	e = *pp;
	if (pn == tn && !memcmp(pv, tv, pn)) {
		/* the same in both: nothing to map (a pending one is settled) */
		if (e && e->state == E_PENDING)
			unlink_ent(c, pp);
		return 0;
	}
	if (e && e->state == E_MAPPED) {
		if (e->tn == tn && !memcmp(e->data + e->pn, tv, tn)) {
			e->expire = now + c->cfg.ttl_ns;
			st_list_del_init(&e->lru);
			st_list_add(&e->lru, &c->lru);
			return 0;
		}
		/* one production value, two of the target's: which is meant cannot be told */
		c->st.conflicts++;
		e->state = E_AMBIG;
		e->expire = now + c->cfg.ttl_ns;
		return 0;
	}
	if (e && e->state == E_AMBIG)
		return 0;
	if (e)
		unlink_ent(c, pp); /* pending: the entry grows its value */
	if (!insert(c, pv, pn, tv, tn, E_MAPPED, now + c->cfg.ttl_ns))
		return 0;
	c->st.learned++;
	return 1;
}

static void pend(struct st_correlate *c, const char *pv, size_t pn, uint64_t now)
{
	if (!c->cfg.wait_ns || !pn || *find(c, pv, pn, vhash(c, pv, pn)))
		return;
	/* twice the wait: a request that waited its time out still finds it pending (unmapped) */
	insert(c, pv, pn, NULL, 0, E_PENDING, now + 2 * c->cfg.wait_ns);
}

enum st_correlate_hit st_correlate__lookup(struct st_correlate *c, const char *v, size_t n,
					   uint64_t now, const char **out, size_t *outlen)
{
	struct cent **pp = find(c, v, n, vhash(c, v, n)), *e = *pp;

	if (!e)
		return ST_COR_UNKNOWN;
	if (now > e->expire) {
		unlink_ent(c, pp);
		c->st.expired++;
		return ST_COR_UNKNOWN;
	}
	if (e->state == E_AMBIG)
		return ST_COR_UNKNOWN;
	if (e->state == E_PENDING)
		return ST_COR_PENDING;
	e->expire = now + c->cfg.ttl_ns;
	st_list_del_init(&e->lru);
	st_list_add(&e->lru, &c->lru);
	*out = e->data + e->pn;
	*outlen = e->tn;
	return ST_COR_MAPPED;
}

static void dump_val(FILE *f, const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x21 || ch > 0x7e || ch == '\\')
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

int st_correlate__dump(struct st_correlate *c, const char *label, FILE *f)
{
	struct cent *e;

	st_list_for_each_entry(e, &c->lru, lru) {
		if (e->state != E_MAPPED)
			continue;
		fprintf(f, "%s\t", label);
		dump_val(f, e->data, e->pn);
		fputc('\t', f);
		dump_val(f, e->data + e->pn, e->tn);
		fputc('\n', f);
	}
	return ferror(f) ? -1 : 0;
}

void st_correlate__expire(struct st_correlate *c, uint64_t now)
{
	/* entries are refreshed when used, so the tail holds the oldest; pending ones have a
	 * shorter time: looked at from the tail until 64 live ones in a row */
	struct st_list_head *p = c->lru.prev;
	unsigned live = 0;

	while (p != &c->lru && live < 64) {
		struct cent *e = st_list_entry(p, struct cent, lru);

		p = p->prev;
		if (now > e->expire) {
			drop(c, e);
			c->st.expired++;
		} else {
			live++;
		}
	}
}

/* ---- answers -------------------------------------------------------------------------------- */

static bool name_is(const char *name, size_t n, const char *s)
{
	return strlen(s) == n && !strncasecmp(name, s, n);
}

static bool named_header(const struct st_correlate_config *cfg, const char *name, size_t n)
{
	for (unsigned i = 0; i < cfg->n_headers; i++)
		if (name_is(name, n, cfg->headers[i]))
			return true;
	return false;
}

static bool has_word(const char *v, size_t n, const char *w)
{
	size_t wl = strlen(w);

	for (size_t i = 0; i + wl <= n; i++)
		if (!strncasecmp(v + i, w, wl))
			return true;
	return false;
}

/* Content-Encoding: none, or gzip or deflate (inflated as it comes); anything else (br, two
 * codings) is not learned from. */
static void ans_coding(struct st_correlate_ans *a, const char *v, size_t n)
{
	if (name_is(v, n, "identity"))
		return;
	if (!a->zip && (name_is(v, n, "gzip") || name_is(v, n, "x-gzip") || name_is(v, n, "deflate")))
		a->zip = true;
	else
		a->json = false;
}

void st_correlate_ans_head(struct st_correlate_ans *a, const struct st_correlate_config *cfg,
			   const struct st_http_head *h)
{
	a->status = h->status;
	a->json = true;
	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];
		size_t need;
		char *nb;

		if (name_is(f->name, f->name_len, "content-encoding"))
			ans_coding(a, f->value, f->value_len);
		if (name_is(f->name, f->name_len, "content-type")) {
			a->form = has_word(f->value, f->value_len, "x-www-form-urlencoded");
			if (!a->form && !has_word(f->value, f->value_len, "json"))
				a->json = false;
		}
		if (!name_is(f->name, f->name_len, "set-cookie") &&
		    !name_is(f->name, f->name_len, "location") &&
		    !named_header(cfg, f->name, f->name_len))
			continue;
		need = (size_t)a->hdr_len + f->name_len + f->value_len + 2;
		if (need > ST_CORRELATE_HDR_MAX)
			continue;
		if (a->held && *a->held + f->name_len + f->value_len + 2 > a->held_max)
			continue;
		nb = realloc(a->hdr, need);
		if (!nb)
			continue;
		if (a->held)
			*a->held += need - a->hdr_len;
		a->hdr = nb;
		for (uint32_t k = 0; k < f->name_len; k++)
			nb[a->hdr_len + k] = (char)tolower((unsigned char)f->name[k]);
		nb[a->hdr_len + f->name_len] = 0;
		memcpy(nb + a->hdr_len + f->name_len + 1, f->value, f->value_len);
		nb[need - 1] = 0;
		a->hdr_len = (uint32_t)need;
	}
}

/* What an inflater holds (zlib's state and its 32 KiB window), counted with the bytes kept
 * while it lives. */
#define Z_MEM (48u << 10)

/* The inflater ends (the stream's end, a cut, the answer freed). */
static void ans_z_end(struct st_correlate_ans *a)
{
	if (!a->z)
		return;
	inflateEnd(a->z);
	free(a->z);
	a->z = NULL;
	if (a->held)
		*a->held -= Z_MEM;
}

/* Past the caps, or a body that cannot be kept: nothing of it is learned from. */
static void ans_cut(struct st_correlate_ans *a)
{
	a->cut = true;
	if (a->held)
		*a->held -= a->body_len;
	free(a->body);
	a->body = NULL;
	a->body_len = 0;
	ans_z_end(a);
}

static void ans_keep(struct st_correlate_ans *a, const void *p, size_t n);

/* A compressed body's bytes, inflated into the body kept (bounded as a plain one is: a body
 * that inflates past ST_CORRELATE_BODY_MAX is cut). */
static void ans_inflate(struct st_correlate_ans *a, const void *p, size_t n)
{
	uint8_t out[4096];
	int r;

	if (a->zdone)
		return; /* bytes after the compressed stream's end */
	if (!a->z) {
		if (a->held && *a->held + Z_MEM > a->held_max) {
			ans_cut(a);
			return;
		}
		a->z = calloc(1, sizeof(*a->z));
		/* 32 + 15: a gzip or zlib header, told apart by the library */
		if (!a->z || inflateInit2(a->z, 32 + 15) != Z_OK) {
			free(a->z);
			a->z = NULL;
			ans_cut(a);
			return;
		}
		if (a->held)
			*a->held += Z_MEM;
	}
	a->z->next_in = (Bytef *)p;
	a->z->avail_in = (uInt)n;
	do {
		a->z->next_out = out;
		a->z->avail_out = sizeof(out);
		r = inflate(a->z, Z_NO_FLUSH);
		if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
			ans_cut(a); /* not what it says it is */
			return;
		}
		ans_keep(a, out, sizeof(out) - a->z->avail_out);
	} while (!a->cut && r == Z_OK && (a->z->avail_in || !a->z->avail_out));
	if (!a->cut && r == Z_STREAM_END) {
		a->zdone = true;
		ans_z_end(a);
	}
}

void st_correlate_ans_body(struct st_correlate_ans *a, const void *p, size_t n)
{
	if (!a->json || a->cut || !n)
		return;
	if (a->zip)
		ans_inflate(a, p, n);
	else
		ans_keep(a, p, n);
}

static void ans_keep(struct st_correlate_ans *a, const void *p, size_t n)
{
	char *nb;

	if (a->cut || !n)
		return;
	if ((size_t)a->body_len + n > ST_CORRELATE_BODY_MAX ||
	    (a->held && *a->held + n > a->held_max)) {
		ans_cut(a);
		return;
	}
	nb = realloc(a->body, a->body_len + n);
	if (!nb) {
		ans_cut(a);
		return;
	}
	memcpy(nb + a->body_len, p, n);
	a->body = nb;
	a->body_len += (uint32_t)n;
	if (a->held)
		*a->held += n;
}

static uint64_t pls_drop(struct st_correlate_pl *k);

void st_correlate_ans_free(struct st_correlate_ans *a)
{
	uint64_t *held = a->held, max = a->held_max, plmem = a->pl ? pls_drop(a->pl) : 0;

	if (held)
		*held -= (uint64_t)a->hdr_len + a->body_len + plmem;
	ans_z_end(a);
	free(a->hdr);
	free(a->body);
	memset(a, 0, sizeof(*a));
	a->held = held;
	a->held_max = max;
}

/* ---- places: where values sit in an answer -------------------------------------------------- */

/* A value at a place: key says where ("c:NAME", "h:NAME#I", "j:PATH"). */
struct place {
	uint64_t khash;
	uint32_t koff, klen;         /* in the key arena */
	const char *v;
	uint32_t vn;
	uint32_t min;                /* shortest value learned here */
	bool wanted;                 /* the place, or production's value, names an id */
};

struct places {
	struct place *p;
	uint32_t n, cap;
	char *keys;
	size_t klen, kcap;
	char *vals;                  /* values decoded (a form's), pointed to by places */
	bool fail;
};

#define PLACES_MAX 4096u

static void pl_add(struct places *pl, const char *k1, size_t n1, const char *k2, size_t n2,
		   const char *v, size_t vn, uint32_t min, bool wanted)
{
	struct place *p;

	if (pl->fail || pl->n >= PLACES_MAX || vn > UINT16_MAX)
		return;
	if (pl->n == pl->cap) {
		uint32_t nc = pl->cap ? pl->cap * 2 : 32;
		struct place *np = realloc(pl->p, nc * sizeof(*np));

		if (!np) {
			pl->fail = true;
			return;
		}
		pl->p = np;
		pl->cap = nc;
	}
	if (pl->klen + n1 + n2 > pl->kcap) {
		size_t nc = (pl->kcap ? pl->kcap * 2 : 1024) + n1 + n2;
		char *nk = realloc(pl->keys, nc);

		if (!nk) {
			pl->fail = true;
			return;
		}
		pl->keys = nk;
		pl->kcap = nc;
	}
	p = &pl->p[pl->n++];
	p->koff = (uint32_t)pl->klen;
	memcpy(pl->keys + pl->klen, k1, n1);
	if (n2)
		memcpy(pl->keys + pl->klen + n1, k2, n2);
	pl->klen += n1 + n2;
	p->klen = (uint32_t)(n1 + n2);
	p->khash = st_fnv1a(ST_FNV1A_INIT, pl->keys + p->koff, p->klen);
	p->v = v;
	p->vn = (uint32_t)vn;
	p->min = min;
	p->wanted = wanted;
}

static void pl_free(struct places *pl)
{
	free(pl->p);
	free(pl->keys);
	free(pl->vals);
}

/* ASCII letters and digits by range (isalnum(), the C locale's, through no table lookup:
 * the rewriter asks for every byte of every request) */
static inline bool strict_char(unsigned char c)
{
	unsigned char l = c | 0x20;

	return (c >= '0' && c <= '9') || (l >= 'a' && l <= 'z') || c == '-' || c == '_' ||
	       c == '.' || c == '~';
}

static inline bool wide_char(unsigned char c)
{
	return strict_char(c) || c == '+' || c == '/' || c == '=';
}

/* A Set-Cookie value: NAME=VALUE[; attributes]. */
static void cookie_places(struct places *pl, const char *v, size_t n)
{
	const char *eq = memchr(v, '=', n), *end;
	size_t nl, vl;

	if (!eq)
		return;
	nl = (size_t)(eq - v);
	while (nl && (v[nl - 1] == ' ' || v[nl - 1] == '\t'))
		nl--;
	end = memchr(eq + 1, ';', n - (size_t)(eq + 1 - v));
	vl = (size_t)((end ? end : v + n) - (eq + 1));
	eq++;
	while (vl && (*eq == ' ' || *eq == '"')) {
		eq++;
		vl--;
	}
	while (vl && (eq[vl - 1] == ' ' || eq[vl - 1] == '"'))
		vl--;
	pl_add(pl, "c:", 2, v, nl, eq, vl, ST_CORRELATE_MIN_LEN, true);
}

/* A header value: its whole value when named, and its tokens by position. */
static void header_places(struct places *pl, const char *name, size_t nn, const char *v, size_t n,
			  bool named)
{
	char k[96];
	unsigned idx = 0;

	if (nn > 64)
		return;
	if (named) {
		int kl = snprintf(k, sizeof(k), "H:%.*s", (int)nn, name);

		pl_add(pl, k, (size_t)kl, NULL, 0, v, n, ST_CORRELATE_MIN_LEN_NAMED, true);
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;
		int kl;

		if (!strict_char((unsigned char)v[i])) {
			i++;
			continue;
		}
		while (j < n && strict_char((unsigned char)v[j]))
			j++;
		kl = snprintf(k, sizeof(k), "h:%.*s#%u", (int)nn, name, idx++);
		pl_add(pl, k, (size_t)kl, NULL, 0, v + i, j - i,
		       named ? ST_CORRELATE_MIN_LEN_NAMED : ST_CORRELATE_MIN_LEN,
		       named || st_correlate_is_token(v + i, j - i));
		i = j;
	}
}

/* Whether a JSON path (indexes as [N]) matches a rule ($.a.b, $.items[*].id, $..name). */
static bool path_rule(const char *rule, const char *path, size_t pn, const char *key, size_t kn)
{
	size_t rl = strlen(rule), i = 0, j = 0;

	if (rl > 3 && !strncmp(rule, "$..", 3))
		return key && rl - 3 == kn && !memcmp(rule + 3, key, kn);
	while (i < rl && j < pn) {
		if (!strncmp(rule + i, "[*]", 3) && path[j] == '[') {
			i += 3;
			while (j < pn && path[j] != ']')
				j++;
			j++;
			continue;
		}
		if (rule[i] != path[j])
			return false;
		i++;
		j++;
	}
	return i == rl && j == pn;
}

struct jwalk {
	struct places *pl;
	const struct st_correlate_config *cfg;
	const struct st_json_doc *d;
	char path[512];
	size_t plen;
};

/* w's path with ".KEY" (k, kn) or "[IDX]" (k NULL) appended at save: its length, or 0 when it
 * does not fit. Called for every member of every answer learned from: no printf. */
static size_t path_step(struct jwalk *w, size_t save, const char *k, size_t kn, uint32_t idx)
{
	char num[12];
	size_t nl = 0;

	if (!k) {
		do
			num[sizeof(num) - ++nl] = (char)('0' + idx % 10);
		while ((idx /= 10));
		k = num + sizeof(num) - nl;
		kn = nl;
	}
	if (save + kn + 2 >= sizeof(w->path))
		return 0;
	w->path[save] = nl ? '[' : '.';
	memcpy(w->path + save + 1, k, kn);
	if (nl)
		w->path[save + 1 + kn++] = ']';
	w->path[save + 1 + kn] = 0;
	return save + 1 + kn;
}

static void json_walk(struct jwalk *w, uint32_t i, const char *key, size_t kn, unsigned depth)
{
	const struct st_json_node *nd = st_json_node(w->d, i);
	size_t save = w->plen;

	if (depth > 64)
		return;
	if (nd->type == ST_JSON_OBJECT || nd->type == ST_JSON_ARRAY) {
		uint32_t c = nd->n ? i + 1 : 0, idx = 0;

		for (; c; c = st_json_node(w->d, c)->next, idx++) {
			const struct st_json_node *ch = st_json_node(w->d, c);
			size_t l = nd->type == ST_JSON_OBJECT ?
					   path_step(w, save, st_json_key(w->d, ch), ch->key_len, 0) :
					   path_step(w, save, NULL, 0, idx);

			if (!l)
				continue; /* too deep a path to name */
			w->plen = l;
			json_walk(w, c, nd->type == ST_JSON_OBJECT ? st_json_key(w->d, ch) : NULL,
				  nd->type == ST_JSON_OBJECT ? ch->key_len : 0, depth + 1);
			w->plen = save;
			if (!ch->next)
				break;
		}
		return;
	}
	if (nd->type == ST_JSON_STRING || nd->type == ST_JSON_NUMBER) {
		const char *v = st_json_bytes(w->d, nd);
		bool named = false, wanted;

		for (unsigned r = 0; r < w->cfg->n_fields; r++)
			if (path_rule(w->cfg->fields[r], w->path, w->plen, key, kn))
				named = true;
		wanted = named || (!w->cfg->no_auto &&
				   ((key && st_correlate_is_id_name(key, kn)) ||
				    (nd->type == ST_JSON_STRING && st_correlate_is_token(v, nd->len))));
		pl_add(w->pl, "j:", 2, w->path, w->plen, v, nd->len,
		       named ? ST_CORRELATE_MIN_LEN_NAMED : ST_CORRELATE_MIN_LEN, wanted);
	}
}

static int hexval(unsigned char c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* s[0, n) of a URL-encoded form, decoded into out ('+' a space, %XX a byte; a '%' without
 * two hex digits stays). Returns the length (at most n). */
static size_t form_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
			   (lo = hexval((unsigned char)s[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

/* A URL-encoded form (application/x-www-form-urlencoded: OAuth's token answers): each
 * NAME=VALUE at the place "$.NAME", as a JSON member of that name (--correlate-field names
 * it the same way), its value decoded into pl's copy of the body. */
static void form_places(struct places *pl, const struct st_correlate_config *cfg, const char *b,
			size_t n)
{
	size_t at = 0, i = 0;

	pl->vals = malloc(n ? n : 1);
	if (!pl->vals) {
		pl->fail = true;
		return;
	}
	while (i < n) {
		const char *pair = b + i, *amp = memchr(pair, '&', n - i), *eq;
		size_t pn = (size_t)((amp ? amp : b + n) - pair), kn, vn;
		char path[512];               /* as a JSON member's (jwalk) */
		bool named = false, wanted;
		char *v = pl->vals + at;
		int l;

		i += pn + 1;
		eq = memchr(pair, '=', pn);
		if (!eq)
			continue;
		kn = (size_t)(eq - pair);
		vn = form_decode(eq + 1, pn - kn - 1, v);
		at += vn;
		l = snprintf(path, sizeof(path), "$.%.*s", (int)kn, pair);
		if (l < 0 || (size_t)l >= sizeof(path))
			continue; /* too long a name to name */
		for (unsigned r = 0; r < cfg->n_fields; r++)
			if (path_rule(cfg->fields[r], path, (size_t)l, pair, kn))
				named = true;
		wanted = named || (!cfg->no_auto && (st_correlate_is_id_name(pair, kn) ||
						      st_correlate_is_token(v, vn)));
		pl_add(pl, "f:", 2, path, (size_t)l, v, vn,
		       named ? ST_CORRELATE_MIN_LEN_NAMED : ST_CORRELATE_MIN_LEN, wanted);
	}
}

/* Every place of an answer. doc must outlive the places (they point into it). */
static void places_of(struct places *pl, const struct st_correlate_config *cfg,
		      const struct st_correlate_ans *a, struct st_json_doc *doc)
{
	for (uint32_t o = 0; o < a->hdr_len;) {
		const char *name = a->hdr + o, *v;
		size_t nn = strlen(name), vn;

		v = name + nn + 1;
		vn = strlen(v);
		o += (uint32_t)(nn + vn + 2);
		if (!strcmp(name, "set-cookie"))
			cookie_places(pl, v, vn);
		else
			header_places(pl, name, nn, v, vn, named_header(cfg, name, nn));
	}
	if (a->json && a->form && !a->cut && a->body_len) {
		form_places(pl, cfg, a->body, a->body_len);
	} else if (a->json && !a->cut && a->body_len) {
		size_t i = 0;

		while (i < a->body_len && isspace((unsigned char)a->body[i]))
			i++;
		if (i < a->body_len && (a->body[i] == '{' || a->body[i] == '[') &&
		    !st_json_parse(doc, a->body, a->body_len)) {
			struct jwalk w = { .pl = pl, .cfg = cfg, .d = doc, .path = "$", .plen = 1 };

			json_walk(&w, 0, NULL, 0, 0);
		}
	}
}

/* One byte repeated: no session or id, but what redaction leaves of one (a tee's "****"). */
static bool one_byte(const char *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[0])
			return false;
	return true;
}

static bool place_ok(const struct place *p)
{
	return p->wanted && p->vn >= p->min && !one_byte(p->v, p->vn);
}

/* An answer's places and the document they point into. Production's are made once and kept
 * with its answer (ans->pl) for every step and target (expect, learn, explain), their memory
 * counted with the answer's bytes (*held: past held_max they are made again each time). */
struct st_correlate_pl {
	struct places pl;
	struct st_json_doc doc;
	uint64_t mem;
};

static void pls_free(struct st_correlate_pl *k)
{
	pl_free(&k->pl);
	st_json_doc_free(&k->doc);
}

/* Kept places freed: the memory they were counted for. */
static uint64_t pls_drop(struct st_correlate_pl *k)
{
	uint64_t mem = k->mem;

	pls_free(k);
	free(k);
	return mem;
}

/* a's places: the kept ones, or made into tmp and kept when keep and they fit (then tmp is
 * left empty). The caller frees tmp (pls_free) either way. */
static const struct places *places_get(const struct st_correlate *c, struct st_correlate_ans *a,
				       struct st_correlate_pl *tmp, bool keep)
{
	struct st_correlate_pl *k;
	uint64_t mem;

	memset(tmp, 0, sizeof(*tmp));
	if (a->pl)
		return &a->pl->pl;
	st_json_doc_init(&tmp->doc, PLACES_MAX, 64);
	places_of(&tmp->pl, &c->cfg, a, &tmp->doc);
	if (!keep || !a->done || tmp->pl.fail)
		return &tmp->pl;
	mem = sizeof(*k) + (uint64_t)tmp->pl.cap * sizeof(struct place) + tmp->pl.kcap +
	      (tmp->pl.vals ? a->body_len : 0) + st_json_doc_mem(&tmp->doc);
	if (a->held && *a->held + mem > a->held_max)
		return &tmp->pl;
	k = malloc(sizeof(*k));
	if (!k)
		return &tmp->pl;
	*k = *tmp;
	k->mem = mem;
	memset(tmp, 0, sizeof(*tmp));
	a->pl = k;
	if (a->held)
		*a->held += mem;
	return &k->pl;
}

void st_correlate__expect(struct st_correlate *c, struct st_correlate_ans *prod, uint64_t now)
{
	struct st_correlate_pl tmp;
	const struct places *pl;

	if (!c->cfg.wait_ns)
		return;
	pl = places_get(c, prod, &tmp, true);
	for (uint32_t i = 0; i < pl->n; i++)
		if (place_ok(&pl->p[i]))
			pend(c, pl->p[i].v, pl->p[i].vn, now);
	pls_free(&tmp);
}

void st_correlate__explain(struct st_correlate *c, struct st_correlate_ans *prod, uint64_t now,
			   void (*fn)(void *ctx, const char *pv, size_t pn, const char *tv, size_t tn),
			   void *ctx)
{
	struct st_correlate_pl tmp;
	const struct places *pl = places_get(c, prod, &tmp, true);

	for (uint32_t i = 0; i < pl->n; i++) {
		const char *o;
		size_t on;

		if (place_ok(&pl->p[i]) &&
		    st_correlate__lookup(c, pl->p[i].v, pl->p[i].vn, now, &o, &on) == ST_COR_MAPPED)
			fn(ctx, pl->p[i].v, pl->p[i].vn, o, on);
	}
	pls_free(&tmp);
}

static int place_cmp(const void *a, const void *b)
{
	const struct place *x = a, *y = b;

	return x->khash < y->khash ? -1 : x->khash > y->khash;
}

unsigned st_correlate__learn(struct st_correlate *c, struct st_correlate_ans *prod,
			     const struct st_correlate_ans *tgt, uint64_t now)
{
	struct st_correlate_pl ptmp, td = { 0 };
	struct places tp = { 0 };
	const struct places *pp = places_get(c, prod, &ptmp, true);
	unsigned learned = 0;

	st_json_doc_init(&td.doc, PLACES_MAX, 64);
	places_of(&tp, &c->cfg, tgt, &td.doc);
	if (tp.n)
		qsort(tp.p, tp.n, sizeof(*tp.p), place_cmp);
	for (uint32_t i = 0; i < pp->n; i++) {
		const struct place *p = &pp->p[i];
		uint32_t lo = 0, hi = tp.n;

		if (!place_ok(p))
			continue;
		while (lo < hi) { /* the first target place with this key hash */
			uint32_t mid = (lo + hi) / 2;

			if (tp.p[mid].khash < p->khash)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < tp.n && tp.p[lo].khash == p->khash; lo++) {
			const struct place *t = &tp.p[lo];

			if (t->klen != p->klen ||
			    memcmp(tp.keys + t->koff, pp->keys + p->koff, p->klen))
				continue;
			if (t->vn < p->min)
				break;
			learned += (unsigned)st_correlate__put(c, p->v, p->vn, t->v, t->vn, now);
			break;
		}
	}
	pls_free(&ptmp);
	pl_free(&tp);
	st_json_doc_free(&td.doc);
	return learned;
}

/* ---- the rewriter ------------------------------------------------------------------------- */

struct obuf {
	uint8_t *p;
	size_t len, cap;
	bool fail;
};

static void ob_put(struct obuf *b, const void *p, size_t n)
{
	if (b->fail || !n)
		return;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		uint8_t *np;

		while (nc < b->len + n)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np) {
			b->fail = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

struct rw {
	st_correlate_lookup_fn fn;
	void *ctx;
	unsigned replaced, pending;
};

/* One whole token: replaced when known. */
static bool rw_token(struct rw *r, struct obuf *b, const char *s, size_t n)
{
	const char *o;
	size_t on;

	if (n < ST_CORRELATE_MIN_LEN_NAMED)
		return false;
	switch (r->fn(r->ctx, s, n, &o, &on)) {
	case ST_COR_MAPPED:
		ob_put(b, o, on);
		r->replaced++;
		return true;
	case ST_COR_PENDING:
		r->pending++;
		return false;
	default:
		return false;
	}
}

/* Text: each run of token characters whole (base64's + / = included), else its parts. */
static void rw_text(struct rw *r, struct obuf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, k;
		bool mixed = false;

		if (!wide_char((unsigned char)s[i])) {
			while (j < n && !wide_char((unsigned char)s[j]))
				j++;
			ob_put(b, s + i, j - i);
			i = j;
			continue;
		}
		while (j < n && wide_char((unsigned char)s[j]))
			mixed |= !strict_char((unsigned char)s[j++]);
		if (rw_token(r, b, s + i, j - i)) {
			i = j;
			continue;
		}
		if (!mixed) { /* tried whole already */
			ob_put(b, s + i, j - i);
			i = j;
			continue;
		}
		for (k = i; k < j;) {
			size_t m = k;

			if (!strict_char((unsigned char)s[k])) {
				ob_put(b, s + k, 1);
				k++;
				continue;
			}
			while (m < j && strict_char((unsigned char)s[m]))
				m++;
			if (!rw_token(r, b, s + k, m - k))
				ob_put(b, s + k, m - k);
			k = m;
		}
		i = j;
	}
}

/* A value: whole, else its tokens (a value of token characters only is tried whole once). */
static void rw_value(struct rw *r, struct obuf *b, const char *s, size_t n)
{
	size_t k = 0;

	while (k < n && wide_char((unsigned char)s[k]))
		k++;
	if (k == n || !rw_token(r, b, s, n))
		rw_text(r, b, s, n);
}

/* Cookie: NAME=VALUE; ...: each value whole, else its tokens. */
static void rw_cookie(struct rw *r, struct obuf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *semi = memchr(s + i, ';', n - i);
		size_t e = semi ? (size_t)(semi - s) : n, q;
		const char *eq = memchr(s + i, '=', e - i);

		if (!eq) {
			ob_put(b, s + i, e - i);
		} else {
			q = (size_t)(eq - s) + 1;
			ob_put(b, s + i, q - i);
			rw_value(r, b, s + q, e - q);
		}
		if (semi)
			ob_put(b, ";", 1);
		i = e + (semi ? 1 : 0);
	}
}

static const char b64a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(unsigned char c)
{
	const char *p = c ? strchr(b64a, c) : NULL;

	return p ? (int)(p - b64a) : -1;
}

/* Standard base64 with padding; -1 when s is not that. */
static ssize_t b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];

		for (int k = 0; k < 4; k++) {
			v[k] = s[i + k] == '=' && i + 4 == n && k >= 2 ? 0 : b64val((unsigned char)s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		if (s[i + 2] == '=' && s[i + 3] != '=')
			return -1;
		if (o + 3 > cap)
			return -1;
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (s[i + 2] != '=' || i + 4 != n)
			out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
		if (s[i + 3] != '=' || i + 4 != n)
			out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
	}
	return (ssize_t)o;
}

static void b64_encode(struct obuf *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		char q[4] = { b64a[v >> 18 & 63], b64a[v >> 12 & 63],
			      i + 1 < n ? b64a[v >> 6 & 63] : '=', i + 2 < n ? b64a[v & 63] : '=' };

		ob_put(b, q, 4);
	}
}

/* Authorization: Basic's user and password decoded, rewritten, encoded; anything else as
 * text (Bearer's token). */
static void rw_auth(struct rw *r, struct obuf *b, const char *s, size_t n)
{
	uint8_t dec[768];
	ssize_t dn;

	if (n > 6 && !strncasecmp(s, "basic ", 6) &&
	    (dn = b64_decode(s + 6, n - 6, dec, sizeof(dec))) > 0) {
		struct obuf t = { 0 };
		unsigned before = r->replaced;
		const char *colon = memchr(dec, ':', (size_t)dn);

		if (colon) {
			size_t ul = (size_t)(colon - (char *)dec);

			rw_value(r, &t, (char *)dec, ul);
			ob_put(&t, ":", 1);
			rw_value(r, &t, colon + 1, (size_t)dn - ul - 1);
		}
		if (colon && r->replaced != before && !t.fail) {
			ob_put(b, s, 6);
			b64_encode(b, t.p, t.len);
		} else {
			ob_put(b, s, n);
		}
		free(t.p);
		return;
	}
	rw_text(r, b, s, n);
}

/* One header field's value, by its name (HTTP/1 and HTTP/2 alike; framing fields are the
 * callers'). */
static void rw_field(struct rw *r, struct obuf *b, const char *name, size_t nn, const char *v,
		     size_t vn)
{
	if (name_is(name, nn, "cookie"))
		rw_cookie(r, b, v, vn);
	else if (name_is(name, nn, "authorization") || name_is(name, nn, "proxy-authorization"))
		rw_auth(r, b, v, vn);
	else
		rw_text(r, b, v, vn);
}

static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

static bool tchar(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* A chunked body decoded into d; *trailers: the trailer section (its final CRLF included).
 * Returns the bytes consumed, or -1. */
static ssize_t dechunk(const uint8_t *p, size_t n, struct obuf *d, const uint8_t **tr, size_t *trn)
{
	const uint8_t *s = p, *end = p + n;

	for (;;) {
		const uint8_t *le = find_crlf(s, end);
		uint64_t sz = 0;
		const uint8_t *q = s;

		if (!le || le == s)
			return -1;
		for (; q < le && isxdigit(*q); q++) {
			if (sz > (UINT64_MAX >> 4))
				return -1;
			sz = sz * 16 + (uint64_t)(isdigit(*q) ? *q - '0' : (tolower(*q) - 'a' + 10));
		}
		if (q == s || (q < le && *q != ';' && *q != ' ' && *q != '\t'))
			return -1;
		s = le + 2;
		if (!sz)
			break;
		if (sz > (uint64_t)(end - s) || (uint64_t)(end - s) - sz < 2 || s[sz] != '\r' ||
		    s[sz + 1] != '\n')
			return -1;
		ob_put(d, s, (size_t)sz);
		s += sz + 2;
	}
	*tr = s;
	for (;;) { /* trailer field lines, then an empty line */
		const uint8_t *le = find_crlf(s, end);
		bool empty;

		if (!le)
			return -1;
		empty = le == s;
		s = le + 2;
		if (empty)
			break;
	}
	*trn = (size_t)(s - *tr);
	return s - p;
}

/* A request's head as st_correlate_rewrite() reads it: the request line's two spaces, where
 * the head ends, and the body's framing. */
struct req_head {
	const uint8_t *sp1, *sp2, *hend;
	bool chunked, has_cl;
	uint64_t cl;
};

/* A Content-Length value between q and le: one number, blanks around it. 0 or -1. */
static int cl_value(const uint8_t *q, const uint8_t *le, uint64_t *out)
{
	uint64_t cl = 0;

	while (q < le && (*q == ' ' || *q == '\t'))
		q++;
	if (q == le)
		return -1;
	for (; q < le && isdigit(*q); q++) {
		if (cl > UINT64_MAX / 10 - 10)
			return -1;
		cl = cl * 10 + (uint64_t)(*q - '0');
	}
	while (q < le && (*q == ' ' || *q == '\t'))
		q++;
	*out = cl;
	return q == le ? 0 : -1;
}

/* Reads the head of [req, end): 0, or -1 when it is not one this rewriter takes whole (a
 * malformed line or field, two lengths, a length and chunked). */
static int head_read(const uint8_t *req, const uint8_t *end, struct req_head *h)
{
	const uint8_t *le = find_crlf(req, end), *line;

	if (!le)
		return -1;
	/* the request line: METHOD SP target SP version */
	h->sp1 = memchr(req, ' ', (size_t)(le - req));
	h->sp2 = h->sp1 ? memchr(h->sp1 + 1, ' ', (size_t)(le - h->sp1 - 1)) : NULL;
	if (!h->sp1 || !h->sp2 || h->sp1 == req)
		return -1;
	/* the fields: where the head ends, and the framing */
	for (line = le + 2;; line = le + 2) {
		const uint8_t *colon;

		le = find_crlf(line, end);
		if (!le)
			return -1;
		if (le == line)
			break;
		colon = memchr(line, ':', (size_t)(le - line));
		if (!colon || colon == line || *line == ' ' || *line == '\t')
			return -1;
		for (const uint8_t *q = line; q < colon; q++)
			if (!tchar(*q))
				return -1;
		if (name_is((const char *)line, (size_t)(colon - line), "content-length")) {
			if (h->has_cl || cl_value(colon + 1, le, &h->cl))
				return -1;
			h->has_cl = true;
		} else if (name_is((const char *)line, (size_t)(colon - line), "transfer-encoding")) {
			if (h->chunked || !has_word((const char *)colon + 1, (size_t)(le - colon - 1),
						    "chunked"))
				return -1;
			h->chunked = true;
		}
	}
	h->hend = le + 2;
	return h->chunked && h->has_cl ? -1 : 0;
}

/* The body after the head, decoded into bd (dechunked: its trailers at *tr): 0, -EINVAL
 * when it is not whole as its framing says, -ENOMEM. */
static int body_read(const struct req_head *h, const uint8_t *end, struct obuf *bd,
		     const uint8_t **tr, size_t *trn)
{
	const uint8_t *body = h->hend;

	if (h->chunked) {
		ssize_t used = dechunk(body, (size_t)(end - body), bd, tr, trn);

		return used < 0 || (size_t)used != (size_t)(end - body) || bd->fail ? -EINVAL : 0;
	}
	if ((uint64_t)(end - body) != (h->has_cl ? h->cl : 0))
		return -EINVAL;
	ob_put(bd, body, (size_t)(end - body));
	return bd->fail ? -ENOMEM : 0;
}

/* The head again into o, the target and the values rewritten, Content-Length saying blen. */
static void head_write(struct rw *r, struct obuf *o, const uint8_t *req, const uint8_t *end,
		       const struct req_head *h, size_t blen)
{
	const uint8_t *le = find_crlf(req, end), *line;

	ob_put(o, req, (size_t)(h->sp1 + 1 - req));
	rw_text(r, o, (const char *)h->sp1 + 1, (size_t)(h->sp2 - h->sp1 - 1));
	ob_put(o, h->sp2, (size_t)(le + 2 - h->sp2));
	for (line = le + 2; line < h->hend - 2; line = le + 2) {
		const uint8_t *colon, *v, *ve;

		le = find_crlf(line, end);
		colon = memchr(line, ':', (size_t)(le - line));
		v = colon + 1;
		while (v < le && (*v == ' ' || *v == '\t'))
			v++;
		ve = le;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		ob_put(o, line, (size_t)(v - line));
		if (name_is((const char *)line, (size_t)(colon - line), "content-length")) {
			char num[32];
			int k = snprintf(num, sizeof(num), "%zu", blen);

			ob_put(o, num, (size_t)k);
		} else if (name_is((const char *)line, (size_t)(colon - line), "transfer-encoding")) {
			ob_put(o, v, (size_t)(ve - v));
		} else {
			rw_field(r, o, (const char *)line, (size_t)(colon - line), (const char *)v,
				 (size_t)(ve - v));
		}
		ob_put(o, ve, (size_t)(le + 2 - ve));
	}
	ob_put(o, "\r\n", 2);
}

/* The new body into o: chunked again when it came chunked (one chunk, then the trailers as
 * they came). */
static void body_write(struct obuf *o, const struct req_head *h, const struct obuf *nb,
		       const uint8_t *tr, size_t trn)
{
	char num[32];

	if (!h->chunked) {
		ob_put(o, nb->p, nb->len);
		return;
	}
	if (nb->len) {
		int k = snprintf(num, sizeof(num), "%zx\r\n", nb->len);

		ob_put(o, num, (size_t)k);
		ob_put(o, nb->p, nb->len);
		ob_put(o, "\r\n", 2);
	}
	ob_put(o, "0\r\n", 3);
	ob_put(o, tr, trn);
}

int st_correlate_rewrite(const uint8_t *req, size_t len, st_correlate_lookup_fn fn, void *ctx,
			 struct st_correlate_out *out)
{
	struct obuf o = { .p = out->buf, .cap = out->cap }, bd = { 0 }, nb = { 0 };
	struct rw r = { .fn = fn, .ctx = ctx };
	struct req_head h = { 0 };
	const uint8_t *tr = NULL;
	size_t trn = 0;
	int ret;

	out->replaced = out->pending = 0;
	out->len = 0;
	ret = head_read(req, req + len, &h) ? -EINVAL : body_read(&h, req + len, &bd, &tr, &trn);
	if (!ret) {
		/* the body first: its new length goes into the head */
		rw_text(&r, &nb, (const char *)bd.p, bd.len);
		ret = nb.fail ? -ENOMEM : 0;
	}
	if (!ret) {
		head_write(&r, &o, req, req + len, &h, nb.len);
		body_write(&o, &h, &nb, tr, trn);
		ret = o.fail ? -ENOMEM : r.replaced ? 1 : 0;
	}
	out->buf = o.p;
	out->cap = o.cap;
	out->len = ret == 1 ? o.len : 0;
	out->replaced = r.replaced;
	out->pending = r.pending;
	free(bd.p);
	free(nb.p);
	return ret;
}

struct maplook {
	struct st_correlate *c;
	uint64_t now;
};

static enum st_correlate_hit map_fn(void *ctx, const char *v, size_t n, const char **out,
				    size_t *outlen)
{
	struct maplook *m = ctx;

	return st_correlate__lookup(m->c, v, n, m->now, out, outlen);
}

int st_correlate__rewrite(struct st_correlate *c, const uint8_t *req, size_t len, uint64_t now,
			  struct st_correlate_out *out)
{
	struct maplook m = { c, now };

	return st_correlate_rewrite(req, len, map_fn, &m, out);
}

void st_correlate_out_free(struct st_correlate_out *out)
{
	free(out->buf);
	memset(out, 0, sizeof(*out));
}

/* ---- the HTTP/2 rewriter ------------------------------------------------------------------ */

static bool field_is(const struct st_h2_field *f, const char *lit)
{
	return name_is(f->name, f->name_len, lit);
}

/* A gRPC request: its body is length-prefixed messages, never text. */
static bool grpc_request(const struct st_h2_field *f, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (field_is(&f[i], "content-type") && f[i].value_len >= 16 &&
		    !strncasecmp(f[i].value, "application/grpc", 16))
			return true;
	return false;
}

/* One field's new value into o (the caller has the body's new length: blen). */
static void rw_h2_field(struct rw *r, struct obuf *o, const struct st_h2_field *f, size_t blen)
{
	if (field_is(f, "content-length")) {
		char num[32];
		int k = snprintf(num, sizeof(num), "%zu", blen);

		ob_put(o, num, (size_t)k);
	} else if (f->name_len && f->name[0] == ':') {
		/* the request target and the authority, as HTTP/1's; never the method, the
		 * scheme, the protocol */
		if (field_is(f, ":path") || field_is(f, ":authority"))
			rw_text(r, o, f->value, f->value_len);
		else
			ob_put(o, f->value, f->value_len);
	} else if (field_is(f, "te")) {
		ob_put(o, f->value, f->value_len);
	} else {
		rw_field(r, o, f->name, f->name_len, f->value, f->value_len);
	}
}

int st_correlate_rewrite_h2(const struct st_h2_field *f, uint32_t n, const uint8_t *body,
			    size_t blen, st_correlate_lookup_fn fn, void *ctx,
			    struct st_correlate_h2out *out)
{
	struct obuf o = { .p = out->buf, .cap = out->cap };
	struct rw r = { .fn = fn, .ctx = ctx };
	size_t *voff = NULL;
	int ret = -ENOMEM;

	out->replaced = out->pending = 0;
	out->nfields = 0;
	out->body = NULL;
	out->body_len = 0;
	if (n > out->fcap) {
		struct st_h2_field *nf = realloc(out->fields, n * sizeof(*nf));

		if (!nf)
			goto done;
		out->fields = nf;
		out->fcap = n;
	}
	if (n && !(voff = malloc(n * sizeof(*voff))))
		goto done;
	/* the body first: its new length goes into content-length */
	if (grpc_request(f, n))
		ob_put(&o, body, blen);
	else
		rw_text(&r, &o, (const char *)body, blen);
	out->body_len = o.len;
	for (uint32_t i = 0; i < n; i++) {
		voff[i] = o.len;
		rw_h2_field(&r, &o, &f[i], out->body_len);
	}
	if (o.fail)
		goto done;
	for (uint32_t i = 0; i < n; i++) {
		out->fields[i] = f[i];
		/* (every value and the body empty: nothing was put, o.p is NULL) */
		out->fields[i].value = o.p ? (const char *)o.p + voff[i] : "";
		out->fields[i].value_len = (uint32_t)((i + 1 < n ? voff[i + 1] : o.len) - voff[i]);
	}
	out->nfields = n;
	out->body = o.p;
	ret = r.replaced ? 1 : 0;
done:
	out->buf = o.p;
	out->cap = o.cap;
	out->len = o.len;
	out->replaced = r.replaced;
	out->pending = r.pending;
	if (ret != 1) {
		out->nfields = 0;
		out->body = NULL;
		out->body_len = 0;
	}
	free(voff);
	return ret;
}

int st_correlate__rewrite_h2(struct st_correlate *c, const struct st_h2_field *f, uint32_t n,
			     const uint8_t *body, size_t blen, uint64_t now,
			     struct st_correlate_h2out *out)
{
	struct maplook m = { c, now };

	return st_correlate_rewrite_h2(f, n, body, blen, map_fn, &m, out);
}

void st_correlate_h2out_free(struct st_correlate_h2out *out)
{
	free(out->fields);
	free(out->buf);
	memset(out, 0, sizeof(*out));
}

/* ---- exchanges ------------------------------------------------------------------------------ */

struct st_correlate_ex *st_correlate_ex_new(unsigned nslots, uint64_t *held, uint64_t held_max)
{
	struct st_correlate_ex *x = calloc(1, sizeof(*x) + nslots * sizeof(x->tgt[0]));

	if (!x)
		return NULL;
	x->refs = 1;
	x->nslots = nslots;
	x->prod.held = held;
	x->prod.held_max = held_max;
	for (unsigned i = 0; i < nslots; i++) {
		x->tgt[i].held = held;
		x->tgt[i].held_max = held_max;
	}
	return x;
}

void st_correlate_ex_get(struct st_correlate_ex *x)
{
	x->refs++;
}

void st_correlate_ex_put(struct st_correlate_ex *x)
{
	if (!x || --x->refs)
		return;
	st_correlate_ans_free(&x->prod);
	for (unsigned i = 0; i < x->nslots; i++)
		st_correlate_ans_free(&x->tgt[i]);
	free(x);
}
