/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A Prometheus server's HTTP API, read by `report --canary --prometheus URL`: one instant
 * query (GET /api/v1/query) over plain HTTP/1.1, blocking (a command's, never the daemon's
 * loop), bounded: ST_PROMREAD_TIMEOUT_S for the connection and every read or write, an
 * answer of at most ST_PROMREAD_MAX bytes. The answer is framed by http.c (Content-Length
 * or chunked) and handed over as it came; canary.h reads it (untrusted: the strict parser).
 */
#ifndef ST_PROMREAD_H
#define ST_PROMREAD_H

#include <stddef.h>

#define ST_PROMREAD_MAX (64u << 20)
#define ST_PROMREAD_TIMEOUT_S 20

/* "http://HOST[:PORT][/PREFIX]" (HOST a name, an IPv4 address or [IPv6]; PORT 80 when
 * missing). 0, or -1 with the reason in err. */
int st_promread_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
		    char *prefix, size_t prefixcap, char *err, size_t errlen);

/* The answer's body to the instant query q (evaluated now) at url: 0 and *body (malloc'd,
 * NUL-terminated; the caller frees), or -1 with one line in err (the address, the
 * connection, a status other than 200 with the server's error, an answer too large). */
int st_promread_query(const char *url, const char *q, char **body, size_t *len, char *err,
		      size_t errlen);

#endif /* ST_PROMREAD_H */
