/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's HTTP endpoint (libmicrohttpd, run from the agent's own event
 * loop: no thread, so the metrics are read where they are kept):
 *   /metrics  Prometheus text format (version 0.0.4), written by a callback
 *   /healthz  200 "ok", or 503 with the reason the health callback gives
 * Anything else is 404; only GET and HEAD.
 * Bounds, so that idle or slow clients cannot starve the scrape: a connection idle for
 * ST_HTTPD_IDLE_S is closed, one client address holds at most ST_HTTPD_PER_ADDR connections
 * at once (more are closed as they come), all clients at most ST_HTTPD_CONNS.
 */
#ifndef ST_HTTPD_H
#define ST_HTTPD_H

#include <stddef.h>
#include <stdio.h>

#define ST_HTTPD_IDLE_S 10
#define ST_HTTPD_PER_ADDR 8
#define ST_HTTPD_CONNS 64

struct st_httpd;

struct st_httpd_ops {
	/* Writes the metrics to f. 0 or -errno. */
	int (*metrics)(void *ctx, FILE *f);
	/* NULL when healthy, else a one-line reason (503). */
	const char *(*health)(void *ctx);
	void *ctx;
};

/*
 * Listens on ADDR:PORT ("127.0.0.1:9464", "[::1]:9464", ":9464" for every address).
 * NULL after filling err with the reason (a bad address, a port in use).
 */
struct st_httpd *st_httpd__start(const char *listen, const struct st_httpd_ops *ops, char *err,
				 size_t errlen);
/* An fd that is readable when the server has work: add it to the event loop. */
int st_httpd__fd(const struct st_httpd *h);
/* Does the work that is ready (call when the fd is readable, and on the loop's tick). */
void st_httpd__run(struct st_httpd *h);
/* The port it listens on (useful with port 0). */
unsigned st_httpd__port(const struct st_httpd *h);
void st_httpd__stop(struct st_httpd *h);

#endif /* ST_HTTPD_H */
