/* SPDX-License-Identifier: GPL-2.0-only */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct st_httpd {
	struct MHD_Daemon *d;
	struct st_httpd_ops ops;
	unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **state)
{
	struct st_httpd *h = cls;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
	if (!strcmp(url, "/metrics")) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		enum MHD_Result ret;
		int err;

		if (!f)
			return MHD_NO;
		err = h->ops.metrics ? h->ops.metrics(h->ops.ctx, f) : 0;
		if (fclose(f) || err) {
			free(text);
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				     "metrics unavailable\n", 20);
		}
		ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
		free(text);
		return ret;
	}
	if (!strcmp(url, "/healthz")) {
		const char *why = h->ops.health ? h->ops.health(h->ops.ctx) : NULL;
		char buf[256];
		int n;

		if (!why)
			return reply(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3);
		n = snprintf(buf, sizeof(buf), "%s\n", why);
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", buf,
			     (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found: /metrics, /healthz\n", 30);
}

/* ADDR:PORT into a sockaddr; "" or ":PORT" is every address (IPv6 dual stack). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *flags)
{
	char buf[128], *colon, *host;
	unsigned long port;
	char *end;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port > 65535)
		return -1;
	host = buf;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		size_t l = strlen(host);

		if (l < 2 || host[l - 1] != ']')
			return -1;
		host[l - 1] = 0;
		host++;
	}
	if (!*host) {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_DUAL_STACK;
		return 0;
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	return -1;
}

struct st_httpd *st_httpd__start(const char *listen, const struct st_httpd_ops *ops, char *err,
				 size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL;
	struct st_httpd *h;
	const union MHD_DaemonInfo *info;

	if (parse_listen(listen, &ss, &flags)) {
		snprintf(err, errlen, "'%s' is not ADDR:PORT (127.0.0.1:9464, [::1]:9464, :9464)",
			 listen);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->ops = *ops;
	/* idle or slow clients cannot starve the scrape: each connection idle for
	 * ST_HTTPD_IDLE_S is closed, one address holds at most ST_HTTPD_PER_ADDR of them (more
	 * are closed at once), and all together at most ST_HTTPD_CONNS */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)ST_HTTPD_CONNS,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ST_HTTPD_PER_ADDR,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ST_HTTPD_IDLE_S,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s: %s", listen,
			 errno ? strerror(errno) : "address in use or not local");
		free(h);
		return NULL;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	return h;
}

int st_httpd__fd(const struct st_httpd *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

void st_httpd__run(struct st_httpd *h)
{
	MHD_run(h->d);
}

unsigned st_httpd__port(const struct st_httpd *h)
{
	return h->port;
}

void st_httpd__stop(struct st_httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
