/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small strict JSON parser (RFC 8259) for tap compare: it turns a response
 * body into a flat tree of nodes that point into the body's bytes, so two
 * documents can be compared structurally. Bodies come from production and from
 * shadows: untrusted bytes, parsed under bounds fixed by the caller.
 *
 *  - Bounded: at most max_nodes nodes (the caller derives it from the body
 *    cap), nesting at most max_depth (ST_JSON_MAX_DEPTH by default). Parsing is
 *    iterative (no recursion on the input's nesting); memory is one node array
 *    and one pool for decoded strings, both reused from one document to the
 *    next (st_json_doc keeps them).
 *  - Strict: no comments, trailing commas, leading zeros, bare control
 *    characters in strings, invalid escapes, or bytes after the value. A body
 *    that is not JSON is the caller's to compare another way.
 *  - Exact: numbers keep their text; st_json_num_eq() compares values exactly
 *    at any size (12345678901234567890123 != 12345678901234567890124, 1.0 ==
 *    1 == 10e-1, -0 == 0), where a double or int64 would round or fail.
 *    Strings with escapes are decoded (into the pool), so "\u00e9" == "é".
 *
 * Nodes are in document order: a container's children follow it, linked by
 * next (0 ends the list; node 0, the root, is never a sibling). An object's
 * members are their value nodes, each carrying its key. Other decoders build the
 * same tree (protobuf.h), with st_json_doc_start(), st_json_node_add() and
 * st_json_pool_add(), so that one walker compares them all.
 */
#ifndef ST_JSON_H
#define ST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_JSON_MAX_DEPTH 256

enum st_json_type {
	ST_JSON_NULL = 0,
	ST_JSON_FALSE,
	ST_JSON_TRUE,
	ST_JSON_NUMBER,
	ST_JSON_STRING,
	ST_JSON_ARRAY,
	ST_JSON_OBJECT,
};

enum st_json_err {
	ST_JSON_OK = 0,
	ST_JSON_E_SYNTAX,    /* not JSON */
	ST_JSON_E_DEPTH,     /* nested deeper than max_depth */
	ST_JSON_E_NODES,     /* more values than max_nodes */
	ST_JSON_E_NOMEM,
	ST_JSON_E_TRAILING,  /* bytes after the value */
	ST_JSON_E_EMPTY,     /* nothing but whitespace */
};

/* st_json_node.flags */
#define ST_JSON_F_STR_POOL 0x1u /* off/len are in the pool (a string with escapes) */
#define ST_JSON_F_KEY_POOL 0x2u /* key_off/key_len are in the pool */
#define ST_JSON_F_KEY_FIELD 0x4u /* the key is a schema's field (protobuf.h: a field number or
				  * name): a path keeps it as it is, never as {id} */

struct st_json_node {
	uint8_t type;      /* enum st_json_type */
	uint8_t flags;     /* ST_JSON_F_* */
	uint16_t pad;
	uint32_t off, len; /* string: its bytes (unquoted, decoded); number: its text; array,
			    * object: the source span, brackets included; literal: its text */
	uint32_t key_off, key_len; /* object members */
	uint32_t n;        /* containers: number of children */
	uint32_t next;     /* the next sibling, or 0 */
};

struct st_json_doc {
	const char *src;
	size_t src_len;
	struct st_json_node *nodes;
	uint32_t n, cap;
	char *pool;                  /* decoded strings */
	size_t pool_len, pool_cap;
	uint32_t max_nodes;
	unsigned max_depth;
	enum st_json_err err;
	size_t err_off;              /* where parsing stopped */
};

/* max_nodes 0: no limit but memory; max_depth 0: ST_JSON_MAX_DEPTH. */
void st_json_doc_init(struct st_json_doc *d, uint32_t max_nodes, unsigned max_depth);
void st_json_doc_free(struct st_json_doc *d);
/* Parses src (which must outlive the tree); the previous tree is dropped. 0, or -1 with
 * d->err and d->err_off set. len is at most 4 GiB - 1. */
int st_json_parse(struct st_json_doc *d, const char *src, size_t len);
const char *st_json_strerror(enum st_json_err e);
/* Memory the document holds now (node array and pool capacities). */
size_t st_json_doc_mem(const struct st_json_doc *d);

/* Building a tree by hand: an empty document over src (its previous tree dropped). */
void st_json_doc_start(struct st_json_doc *d, const char *src, size_t len);
/* A new node, zeroed, at the end: its index; -1 with d->err set (NODES, NOMEM). The caller
 * links it (next, the container's n) and keeps document order. */
int64_t st_json_node_add(struct st_json_doc *d);
/* n bytes copied into the pool: their offset; -1 with d->err set (NOMEM). */
int64_t st_json_pool_add(struct st_json_doc *d, const void *p, size_t n);

/* Valid UTF-8 without NUL or other C0 controls than TAB, CR, LF, FF (cut: a sequence may be
 * cut at the end): text, for a body's media type and a protobuf field's. */
bool st_json_utf8_text(const uint8_t *p, size_t n, bool cut);

static inline const struct st_json_node *st_json_node(const struct st_json_doc *d, uint32_t i)
{
	return &d->nodes[i];
}

/* A string node's bytes (decoded), a number's or literal's text, a container's source. */
static inline const char *st_json_bytes(const struct st_json_doc *d, const struct st_json_node *n)
{
	return (n->flags & ST_JSON_F_STR_POOL ? d->pool : d->src) + n->off;
}

static inline const char *st_json_key(const struct st_json_doc *d, const struct st_json_node *n)
{
	return (n->flags & ST_JSON_F_KEY_POOL ? d->pool : d->src) + n->key_off;
}

/* Two number texts (valid JSON numbers) have the same value. */
bool st_json_num_eq(const char *a, size_t alen, const char *b, size_t blen);
/* A hash of a number's value (equal values hash equal). */
uint64_t st_json_num_hash(const char *s, size_t len);

/*
 * A structural hash of every node (out[i] for node i; out holds d->n entries): equal
 * values hash equal, object member order ignored, array order kept (ignored too with
 * unordered_arrays). For unordered array comparison.
 */
void st_json_hashes(const struct st_json_doc *d, uint64_t *out, bool unordered_arrays);

/*
 * Reading a parsed document whose shape the caller knows (a report read back: untrusted
 * bytes from another host) under bounds, every failure one line in err: "WHERE: what".
 * Node indexes are the tree's; 0 (the root, never a member nor an element) means "absent".
 */
struct st_json_rd {
	const struct st_json_doc *d;
	char *err;
	size_t errlen;
	char where[512];     /* what is being read ("endpoint X, field Y"), prefixed; "" none */
};

/* Fills err (control bytes quoted from the file as '?'); returns -1. */
int st_json_rd_fail(struct st_json_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const struct st_json_node *st_json_rd_node(const struct st_json_rd *r, uint32_t i)
{
	return st_json_node(r->d, i);
}
/* The first child of container i, or 0; the next sibling of i, or 0. */
uint32_t st_json_rd_child(const struct st_json_rd *r, uint32_t i);
uint32_t st_json_rd_next(const struct st_json_rd *r, uint32_t i);
/* The member key of object obj, or 0. */
uint32_t st_json_rd_member(const struct st_json_rd *r, uint32_t obj, const char *key);
bool st_json_rd_is(const struct st_json_rd *r, uint32_t i, enum st_json_type t);
/* A whole number in [0, max] (digits only: no sign, fraction or exponent) from node i. */
int st_json_rd_num_u64(struct st_json_rd *r, uint32_t i, const char *key, uint64_t max,
		       uint64_t *out);
int st_json_rd_u64(struct st_json_rd *r, uint32_t obj, const char *key, uint64_t max,
		   uint64_t *out);
/* A number (finite or not: the caller checks its range) from node i, or obj's member key. */
int st_json_rd_num_dbl(struct st_json_rd *r, uint32_t i, const char *key, double *out);
int st_json_rd_dbl(struct st_json_rd *r, uint32_t obj, const char *key, double *out);
int st_json_rd_bool(struct st_json_rd *r, uint32_t obj, const char *key, bool *out);
/* A string of UTF-8 without NUL, shorter than cap, into out. */
int st_json_rd_str_node(struct st_json_rd *r, uint32_t i, const char *key, char *out, size_t cap);
int st_json_rd_str(struct st_json_rd *r, uint32_t obj, const char *key, char *out, size_t cap);
/* A time like "2026-11-30T15:03:10.710Z" (st_cmp_time_str), to ns since the epoch. */
int st_json_rd_time(struct st_json_rd *r, uint32_t obj, const char *key, uint64_t *out);

/* buf parsed into d (initialised here: a node per byte at most, nesting at most depth). 0, or
 * -1 with one line in err (and d freed). */
int st_json_rd_parse(struct st_json_doc *d, const char *buf, size_t len, size_t max,
		     unsigned depth, char *err, size_t errlen);

/* A regular file of at most max bytes, read whole into *buf (malloc'd, NUL-terminated, the
 * caller frees). Opened without blocking (a FIFO is refused, not waited on). 0, or -1 with
 * err. */
int st_json_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		      size_t errlen);

#endif /* ST_JSON_H */
