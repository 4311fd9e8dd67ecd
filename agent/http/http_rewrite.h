/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Rewriting a request head for the shadows: a marker field, the Host, fields
 * set with --set-header. Framing fields (Content-Length, Transfer-Encoding)
 * can never be set, so a rewritten request frames exactly as the original.
 */
#ifndef ST_HTTP_REWRITE_H
#define ST_HTTP_REWRITE_H

#include "http.h"

struct st_http_kv {
	const char *name;
	const char *value;
};

struct st_http_rewrite {
	const struct st_http_kv *set; /* replace (first occurrence, drop others) or append */
	size_t nset;
	const char *host;             /* non-NULL: Host value */
	const char *marker_name;      /* non-NULL: added (replacing any same-named field) */
	const char *marker_value;
};

/*
 * Write a rewritten copy of head h into out: start line as received, header
 * fields in order with set/host/marker applied, CRLF line endings. Returns the
 * length, -ENOSPC if out is too small, -EINVAL for a bad name/value (not a
 * token, CR/LF/NUL in a value, or an attempt to set Content-Length or
 * Transfer-Encoding, which would break framing, or a marker named Host).
 * host and marker take precedence over a same-named set entry; a name given
 * twice in set: the first wins. At most 64 set entries.
 */
ssize_t st_http_rewrite_head(const struct st_http_head *h, const struct st_http_rewrite *rw,
			     char *out, size_t outlen);
/* The same checks on rw alone (for option parsing). 0 or -EINVAL. */
int st_http_rewrite_check(const struct st_http_rewrite *rw);
/* Which rewrite applies to a field named name[0, n) (case-insensitive): 0..nset-1 a set
 * entry, nset the Host, nset+1 the marker; -1 none. Host and marker win over a set entry. */
long st_http_rewrite_match(const struct st_http_rewrite *rw, const char *name, size_t n);
/* Rewrite k's field name (as configured) and value. */
void st_http_rewrite_value(const struct st_http_rewrite *rw, long k, const char **name,
			   const char **val);

#endif /* ST_HTTP_REWRITE_H */
