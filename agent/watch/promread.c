/* SPDX-License-Identifier: GPL-2.0-only */
/* A Prometheus server's instant query over HTTP/1.1 (promread.h). */
#include "promread.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"

int st_promread_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
		    char *prefix, size_t prefixcap, char *err, size_t errlen)
{
	const char *h, *end, *slash, *colon = NULL;
	size_t hl;

	if (strncmp(url, "http://", 7)) {
		snprintf(err, errlen, "'%s' is not http://HOST[:PORT][/PREFIX] (https is not read: "
			 "reach the server through a local proxy or its plain port)", url);
		return -1;
	}
	h = url + 7;
	slash = strchr(h, '/');
	end = slash ? slash : h + strlen(h);
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb || (rb + 1 < end && rb[1] != ':'))
			goto bad;
		hl = (size_t)(rb - h - 1);
		if (hl >= hostcap)
			goto bad;
		memcpy(host, h + 1, hl);
		host[hl] = 0;
		colon = rb + 1 < end ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
		if (hl >= hostcap)
			goto bad;
		memcpy(host, h, hl);
		host[hl] = 0;
	}
	if (!host[0])
		goto bad;
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);

		if (!pl || pl >= portcap || strspn(colon + 1, "0123456789") < pl)
			goto bad;
		memcpy(port, colon + 1, pl);
		port[pl] = 0;
	} else {
		snprintf(port, portcap, "80");
	}
	/* the path below which /api/v1 is (a --web.route-prefix), without its last '/' */
	if (snprintf(prefix, prefixcap, "%s", slash ? slash : "") >= (int)prefixcap)
		goto bad;
	hl = strlen(prefix);
	while (hl && prefix[hl - 1] == '/')
		prefix[--hl] = 0;
	for (const char *p = prefix; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || (unsigned char)*p >= 0x7f)
			goto bad;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not http://HOST[:PORT][/PREFIX]", url);
	return -1;
}

/* q percent-encoded as a query parameter's value (RFC 3986: all but the unreserved). */
static char *encode(const char *q)
{
	char *out = malloc(strlen(q) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)q; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~')
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = 0;
	return out;
}

static int dial(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *a;
	struct timeval tv = { .tv_sec = ST_PROMREAD_TIMEOUT_S };
	int fd = -1, rc = getaddrinfo(host, port, &hints, &res);

	if (rc) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		/* a server that stops answering cannot hold the command */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		snprintf(err, errlen, "%s port %s: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The answer (up to the server's close), framed: its status and body. */
static int frame(const char *raw, size_t n, int *status, char **body, size_t *blen, char *err,
		 size_t errlen)
{
	struct st_http_parser p;
	struct st_http_event ev;
	size_t used = 0, cap = 4096, bl = 0;
	char *b = malloc(cap);
	bool done = false;

	*status = 0;
	if (!b || st_http__init(&p, ST_HTTP_RESPONSE, NULL) ||
	    st_http__push_method(&p, ST_HTTP_M_GET)) {
		free(b);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (!done) {
		size_t k = st_http__feed(&p, raw + used, n - used, &ev);

		if (ev.type == ST_HTTP_EV_HEAD && !(ev.head->flags & ST_HTTP_HF_INTERIM)) {
			*status = ev.head->status;
		} else if (ev.type == ST_HTTP_EV_BODY && ev.data_len) {
			if (bl + k + 1 > cap) {
				char *nb;

				while (bl + k + 1 > cap)
					cap *= 2;
				nb = realloc(b, cap);
				if (!nb)
					break;
				b = nb;
			}
			memcpy(b + bl, raw + used, k);
			bl += k;
		} else if (ev.type == ST_HTTP_EV_MSG_DONE && *status) {
			done = true;
		} else if (ev.type == ST_HTTP_EV_ERROR || ev.type == ST_HTTP_EV_UPGRADED) {
			break;
		}
		used += k;
		if (ev.type == ST_HTTP_EV_NEED_MORE) {
			/* the server closed: an answer read until the close ends here */
			st_http__feed_eof(&p, &ev);
			done = ev.type == ST_HTTP_EV_MSG_DONE && *status;
			break;
		}
	}
	st_http__free(&p);
	if (!done) {
		free(b);
		snprintf(err, errlen, "the answer is not HTTP/1.x or is cut short");
		return -1;
	}
	b[bl] = 0;
	*body = b;
	*blen = bl;
	return 0;
}

int st_promread_query(const char *url, const char *q, char **body, size_t *len, char *err,
		      size_t errlen)
{
	char host[256], port[8], prefix[512], *eq = NULL, *req = NULL, *raw = NULL;
	size_t n = 0, cap = 1 << 16;
	int fd = -1, status, rc = -1;

	*body = NULL;
	if (st_promread_url(url, host, sizeof(host), port, sizeof(port), prefix, sizeof(prefix),
			    err, errlen))
		return -1;
	eq = encode(q);
	raw = malloc(cap);
	if (!eq || !raw || asprintf(&req, "GET %s/api/v1/query?query=%s HTTP/1.1\r\nHost: %s%s%s\r\n"
				    "Accept: application/json\r\nConnection: close\r\n"
				    "User-Agent: shadowtap\r\n\r\n", prefix, eq,
				    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "") < 0) {
		req = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	fd = dial(host, port, err, errlen);
	if (fd < 0)
		goto out;
	for (size_t off = 0, rl = strlen(req); off < rl;) {
		ssize_t k = send(fd, req + off, rl - off, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(err, errlen, "%s: %s", url, k ? strerror(errno) : "closed");
			goto out;
		}
		off += (size_t)k;
	}
	for (;;) {
		ssize_t k;

		if (n == cap) {
			char *nr;

			if (cap >= ST_PROMREAD_MAX + 65536) {
				snprintf(err, errlen, "%s: an answer larger than %u MiB", url,
					 ST_PROMREAD_MAX >> 20);
				goto out;
			}
			nr = realloc(raw, cap * 2);
			if (!nr) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			raw = nr;
			cap *= 2;
		}
		k = recv(fd, raw + n, cap - n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "%s: %s", url, errno == EAGAIN ? "no answer within "
				 "20 s" : strerror(errno));
			goto out;
		}
		if (!k)
			break;
		n += (size_t)k;
	}
	if (frame(raw, n, &status, body, len, err, errlen))
		goto out;
	if (status != 200) {
		/* the server's own error ({"error": ...}), a line of it */
		char said[200];
		size_t k = 0;

		for (const char *p = *body; *p && k + 1 < sizeof(said); p++)
			said[k++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
		said[k] = 0;
		snprintf(err, errlen, "%s: status %d: %s", url, status, said);
		free(*body);
		*body = NULL;
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(raw);
	free(req);
	free(eq);
	return rc;
}
