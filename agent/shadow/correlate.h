/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Sessions and ids (`--correlate`): production's values mapped to a target's, learned from
 * the paired answers and written into later requests. docs/SHADOW.md, "Sessions and ids".
 *
 *  - Learning: for one request, production's answer and a target's answer are compared by
 *    place: Set-Cookie by cookie name, Location and the --correlate-header fields by
 *    position of their tokens, JSON bodies by path (any depth). Where the two differ, and
 *    the place names a session or an id (a cookie; a JSON member called token, sid, *_id
 *    ...; a value shaped like a JWT, a UUID, long hex or base64; or a place named by
 *    --correlate-field / --correlate-header), production's value maps to the target's.
 *    Values shorter than ST_CORRELATE_MIN_LEN (ST_CORRELATE_MIN_LEN_NAMED for named
 *    places) are never learned. A production value seen mapping to two different values
 *    is ambiguous: never rewritten (counted in conflicts).
 *  - Expecting: production's answer alone says which values are coming (the target's
 *    answer is still on its way); they are pending until learned or the wait ends, so a
 *    request that carries one can wait for it.
 *  - Rewriting (st_correlate_rewrite, pure, fuzzed): a whole HTTP/1 request in wire form;
 *    every whole token that is a known production value is replaced in the request target
 *    (path segments, query values), every header field value (Cookie by cookie value,
 *    Authorization: Bearer and Basic, decoded and encoded again) but the framing ones, and
 *    the body (JSON, forms, any text); Content-Length is rewritten to the new length, a
 *    chunked body goes out as one chunk (trailers kept). HTTP/2 (st_correlate_rewrite_h2,
 *    pure, fuzzed): a decoded header list and its body, the same rules field by field
 *    (:path as the request target, :authority as a field, never :method, :scheme,
 *    :protocol), content-length set to the new body's length; the caller encodes the list
 *    afresh (its own HPACK encoder).
 *  - HTTP/2 answers are learned from through the same calls as HTTP/1's
 *    (st_correlate_ans_head with the response's fields as an st_http_head, _ans_body with
 *    its DATA).
 *  - Bounds: the map is an LRU under a memory cap (--correlate-max-mb: entries evicted,
 *    counted) with a TTL since last use; answer bodies are kept to ST_CORRELATE_BODY_MAX.
 *    Table keys come from the network: the hash is seeded.
 *
 * One map per target slot (a --multiply copy logs in on its own). Engine thread only.
 */
#ifndef ST_CORRELATE_H
#define ST_CORRELATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "h2.h"
#include "http.h"

#define ST_CORRELATE_MIN_LEN 8                 /* shortest value learned by shape or name */
#define ST_CORRELATE_MIN_LEN_NAMED 4           /* ... in a place the operator named */
#define ST_CORRELATE_BODY_MAX (64u * 1024)     /* answer body bytes kept to learn from */
#define ST_CORRELATE_HDR_MAX (16u * 1024)      /* answer header bytes kept */
#define ST_CORRELATE_MAX_RULES 32              /* --correlate-field, --correlate-header each */
#define ST_CORRELATE_WAIT_MS_DEFAULT 300
#define ST_CORRELATE_MAX_MB_DEFAULT 16
#define ST_CORRELATE_TTL_NS_DEFAULT (3600ull * 1000000000)

struct st_correlate_config {
	const char *fields[ST_CORRELATE_MAX_RULES];  /* JSON paths: $.a.b, $.items[*].id, $..name */
	unsigned n_fields;
	const char *headers[ST_CORRELATE_MAX_RULES]; /* response header names (Location always) */
	unsigned n_headers;
	uint64_t max_mem;          /* bytes; 0: ST_CORRELATE_MAX_MB_DEFAULT MiB */
	uint64_t ttl_ns;           /* 0: ST_CORRELATE_TTL_NS_DEFAULT */
	uint64_t wait_ns;          /* how long a pending value is waited for (0: no wait) */
	bool no_auto;              /* learn only named places (tests) */
};

/* Counters of one map (the engine adds every slot's into its own table). */
struct st_correlate_stats {
	uint64_t learned;          /* production values mapped (correlated_values) */
	uint64_t conflicts;        /* production values seen mapping to two values */
	uint64_t evicted;          /* entries evicted by the memory cap */
	uint64_t expired;          /* entries dropped by the TTL or the end of a wait */
	uint64_t entries;          /* now */
	uint64_t mem;              /* bytes now */
};

/* An answer as far as learning needs it. */
struct st_correlate_ans {
	unsigned status;
	char *hdr;                 /* "name\0value\0" for Set-Cookie, Location, named fields */
	uint32_t hdr_len;
	bool json;                 /* the body is learned from: JSON (by media type or content), or a
				    * URL-encoded form (form); not compressed, or gzip or deflate (zip) */
	bool form;
	bool zip;                  /* the body kept is inflated as it comes (z, counted in *held
				    * while it lives; ended at the stream's end: zdone) */
	bool zdone;
	bool cut;                  /* the body (inflated) was longer than ST_CORRELATE_BODY_MAX, or
				    * did not inflate */
	bool done;
	char *body;
	uint32_t body_len;
	uint64_t *held;            /* optional: bytes every answer holds, kept up to date */
	uint64_t held_max;         /* ... and past it, bodies are not kept (cut) */
	struct z_stream_s *z;
	struct st_correlate_pl *pl; /* production's: its places, made once (correlate.c) */
};

struct st_correlate;

/* NULL with errno set. cfg is copied; its strings must outlive the map. */
struct st_correlate *st_correlate__new(const struct st_correlate_config *cfg, uint64_t seed);
void st_correlate__free(struct st_correlate *c);
void st_correlate__stats(const struct st_correlate *c, struct st_correlate_stats *out);

/* An answer's head (final), body bytes (decoded from chunked framing), end. */
void st_correlate_ans_head(struct st_correlate_ans *a, const struct st_correlate_config *cfg,
			   const struct st_http_head *h);
void st_correlate_ans_body(struct st_correlate_ans *a, const void *p, size_t n);
void st_correlate_ans_free(struct st_correlate_ans *a);

/* Production's answer (done): the values it brings are pending (for twice cfg.wait_ns). Its
 * places (where its values sit) are made once and kept with it for learn and explain, every
 * map's (the maps of one engine share one configuration), counted in *held. */
void st_correlate__expect(struct st_correlate *c, struct st_correlate_ans *prod, uint64_t now);
/* Both answers to one request: pairs learned (how many new). */
unsigned st_correlate__learn(struct st_correlate *c, struct st_correlate_ans *prod,
			     const struct st_correlate_ans *tgt, uint64_t now);
/* Every value of production's answer the map knows, with the target's (fn): what explains a
 * difference between the two answers (tap compare's correlated). */
void st_correlate__explain(struct st_correlate *c, struct st_correlate_ans *prod, uint64_t now,
			   void (*fn)(void *ctx, const char *pv, size_t pn, const char *tv, size_t tn),
			   void *ctx);
/* Puts one pair (tests, and the learners). 1 learned, 0 known or refused. */
int st_correlate__put(struct st_correlate *c, const char *pv, size_t pn, const char *tv, size_t tn,
		      uint64_t now);

enum st_correlate_hit {
	ST_COR_UNKNOWN = 0,
	ST_COR_MAPPED,             /* *out, *outlen: the target's value */
	ST_COR_PENDING,            /* production issued it, the target's value is not in yet */
};
enum st_correlate_hit st_correlate__lookup(struct st_correlate *c, const char *v, size_t n,
					   uint64_t now, const char **out, size_t *outlen);
/* Every mapped value as a line "label TAB production's TAB target's" (bytes other than
 * printable ASCII as \xHH). 0, or -1 with errno (a write to f failed). */
int st_correlate__dump(struct st_correlate *c, const char *label, FILE *f);
/* Entries whose time ran out (TTL, wait) are dropped; a tick calls it. */
void st_correlate__expire(struct st_correlate *c, uint64_t now);

/* ---- the rewriter (pure) --------------------------------------------------------------- */

typedef enum st_correlate_hit (*st_correlate_lookup_fn)(void *ctx, const char *v, size_t n,
							 const char **out, size_t *outlen);

struct st_correlate_out {
	uint8_t *buf;              /* the rewritten request (owned; reused from call to call) */
	size_t len, cap;
	unsigned replaced;         /* values replaced */
	unsigned pending;          /* pending values met (left as they are) */
};

/*
 * Rewrites the HTTP/1 request req[0, len) (head and whole body, as framed). 1: out->buf
 * holds the new request; 0: nothing replaced (out->pending still counts); -EINVAL: not a
 * request this can rewrite (sent unchanged); -ENOMEM. Every call resets out's counts.
 */
int st_correlate_rewrite(const uint8_t *req, size_t len, st_correlate_lookup_fn fn, void *ctx,
			 struct st_correlate_out *out);
/* st_correlate_rewrite with a map's lookup at now. */
int st_correlate__rewrite(struct st_correlate *c, const uint8_t *req, size_t len, uint64_t now,
			  struct st_correlate_out *out);
void st_correlate_out_free(struct st_correlate_out *out);

/* An HTTP/2 request rewritten: the same fields in the same order, values rewritten. */
struct st_correlate_h2out {
	struct st_h2_field *fields; /* nfields: the input's (names, flags), values rewritten */
	uint32_t nfields, fcap;
	const uint8_t *body;       /* the body rewritten (body_len bytes), in buf */
	size_t body_len;
	uint8_t *buf;              /* owned: the values and the body (reused from call to call) */
	size_t len, cap;
	unsigned replaced;         /* values replaced */
	unsigned pending;          /* pending values met (left as they are) */
};

/*
 * Rewrites an HTTP/2 request: its decoded header list f[0, n) (pseudo-header fields
 * included) and its whole body[0, blen), as st_correlate_rewrite does an HTTP/1 request:
 * :path as the request target, :authority and the other fields by name (cookie,
 * authorization, proxy-authorization, any other as text), never :method, :scheme,
 * :protocol, te; content-length (when there is one) becomes the new body's length; a gRPC
 * body (content-type application/grpc...: length-prefixed messages) is left as it is. No
 * field is added, removed or renamed. 1: out holds the new list and body (valid until the
 * next call); 0: nothing replaced (out->pending still counts); -ENOMEM. Every call resets
 * out's counts. Trailers are not rewritten (the caller sends them as they came).
 */
int st_correlate_rewrite_h2(const struct st_h2_field *f, uint32_t n, const uint8_t *body,
			    size_t blen, st_correlate_lookup_fn fn, void *ctx,
			    struct st_correlate_h2out *out);
/* st_correlate_rewrite_h2 with a map's lookup at now. */
int st_correlate__rewrite_h2(struct st_correlate *c, const struct st_h2_field *f, uint32_t n,
			     const uint8_t *body, size_t blen, uint64_t now,
			     struct st_correlate_h2out *out);
void st_correlate_h2out_free(struct st_correlate_h2out *out);

/* Value shapes (learning by shape; exported for the tests). */
bool st_correlate_is_jwt(const char *s, size_t n);
bool st_correlate_is_uuid(const char *s, size_t n);
bool st_correlate_is_token(const char *s, size_t n); /* any of JWT, UUID, hex >= 16, base64 >= 20 */
/* A JSON member name that names a session or an id (token, sid, user_id, orderId ...). */
bool st_correlate_is_id_name(const char *s, size_t n);

/* ---- an exchange: one request's answers, production's and each slot's ---------------------- */

struct st_correlate_ex {
	uint32_t refs;
	unsigned nslots;
	struct st_correlate_ans prod;
	struct st_correlate_ans tgt[];   /* per slot */
};

/* held, held_max: every answer's (st_correlate_ans). */
struct st_correlate_ex *st_correlate_ex_new(unsigned nslots, uint64_t *held, uint64_t held_max);
void st_correlate_ex_get(struct st_correlate_ex *x);
void st_correlate_ex_put(struct st_correlate_ex *x);

#endif /* ST_CORRELATE_H */
