/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reports read back (compare_merge.c, load_merge.c): a whole file, parsed under bounds
 * (json.h), and bounded accessors over the tree that say in one line what is wrong and where.
 * The files are untrusted (they come from other hosts): every number is checked against a
 * maximum, every string against its buffer, UTF-8 and the absence of NUL.
 */
#ifndef ST_JSON_READ_H
#define ST_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

struct st_json_read {
	const struct st_json_doc *d;
	char *err;                   /* where a failure's line goes */
	size_t errlen;
	char where[512];             /* "endpoint X, field Y": said before the reason ("" none) */
};

/* A whole regular file of at most max bytes (NUL-terminated; the caller frees it), or NULL
 * with one line in err. */
char *st_json_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* buf parsed into d (initialised here: a node per byte at most, nesting at most depth). 0, or
 * -1 with one line in err (and d freed). */
int st_json_read_parse(struct st_json_doc *d, const char *buf, size_t len, size_t max,
		       unsigned depth, char *err, size_t errlen);

/* Writes "where: reason" to l->err (control characters as '?': one line whatever the file
 * holds); returns -1. */
int st_json_read_fail(struct st_json_read *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const struct st_json_node *st_json_read_node(const struct st_json_read *l, uint32_t i);
/* The first child of container i, or 0; the next sibling, or 0. */
uint32_t st_json_read_child(const struct st_json_read *l, uint32_t i);
uint32_t st_json_read_next(const struct st_json_read *l, uint32_t i);
/* Member key of object obj, or 0 (node 0, the root, is never a member). */
uint32_t st_json_read_member(const struct st_json_read *l, uint32_t obj, const char *key);
/* Node i exists (not 0) and is of type t. */
bool st_json_read_is(const struct st_json_read *l, uint32_t i, enum st_json_type t);
/* A whole number in [0, max] at node i (key names it in the message). 0 or -1. */
int st_json_read_u64(struct st_json_read *l, uint32_t i, const char *key, uint64_t max,
		     uint64_t *out);
int st_json_read_get_u64(struct st_json_read *l, uint32_t obj, const char *key, uint64_t max,
			 uint64_t *out);
int st_json_read_get_dbl(struct st_json_read *l, uint32_t obj, const char *key, double *out);
int st_json_read_get_bool(struct st_json_read *l, uint32_t obj, const char *key, bool *out);
/* A string of at most cap - 1 bytes, UTF-8, no NUL. */
int st_json_read_str(struct st_json_read *l, uint32_t i, const char *key, char *out, size_t cap);
int st_json_read_get_str(struct st_json_read *l, uint32_t obj, const char *key, char *out,
			 size_t cap);
/* "2026-11-30T15:03:10.710Z" (st_cmp_time_str) to ns. */
int st_json_read_get_time(struct st_json_read *l, uint32_t obj, const char *key, uint64_t *out);

#endif /* ST_JSON_READ_H */
