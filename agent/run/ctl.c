/* SPDX-License-Identifier: GPL-2.0-only */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define REQ_MAX 512
#define REQ_WAIT_MS 100

struct st_ctl {
	int fd;
	char *path;
	st_ctl_fn fn;
	void *ctx;
};

static int addr_of(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -1;
	strcpy(a->sun_path, path);
	return 0;
}

/* Is a daemon answering at path? (a socket file left by a killed one is not) */
static int live(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return 0;
	r = connect(fd, (const struct sockaddr *)a, sizeof(*a));
	close(fd);
	return r == 0;
}

static void mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	mkdir(dir, 0700); /* exists already: fine; else bind says why */
}

struct st_ctl *st_ctl__listen(const char *path, st_ctl_fn fn, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_un a;
	struct stat sb;
	struct st_ctl *c;
	mode_t old;

	if (addr_of(path, &a)) {
		snprintf(err, errlen, "%s: path too long for a unix socket", path);
		return NULL;
	}
	mkdir_parent(path);
	if (!lstat(path, &sb)) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return NULL;
		}
		if (live(&a)) {
			snprintf(err, errlen, "%s: another daemon listens there", path);
			return NULL;
		}
		unlink(path); /* a killed daemon's */
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0177); /* the socket is created 0600: root's only */
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a)) || listen(c->fd, 8)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		umask(old);
		if (c->fd >= 0)
			close(c->fd);
		free(c->path);
		free(c);
		return NULL;
	}
	umask(old);
	return c;
}

int st_ctl__fd(const struct st_ctl *c)
{
	return c->fd;
}

static void answer(struct st_ctl *c, int fd)
{
	char req[REQ_MAX + 1], *nl, *args, *text = NULL;
	size_t len = 0, tlen = 0;
	FILE *f;

	/* the client writes its line right after connecting: wait a little for it, no more */
	while (len < REQ_MAX) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, REQ_WAIT_MS) <= 0)
			return;
		n = recv(fd, req + len, REQ_MAX - len, MSG_DONTWAIT);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = 0;
		if (strchr(req, '\n'))
			break;
	}
	req[len] = 0;
	nl = strpbrk(req, "\r\n");
	if (nl)
		*nl = 0;
	args = strchr(req, ' ');
	if (args)
		*args++ = 0;
	f = open_memstream(&text, &tlen);
	if (!f)
		return;
	if (c->fn(c->ctx, req, args ? args : "", f))
		fprintf(f, "error: unknown command '%s' (status, reload)\n", req);
	if (!fclose(f)) {
		size_t off = 0;

		while (off < tlen) {
			ssize_t n = send(fd, text + off, tlen - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	free(text);
}

void st_ctl__run(struct st_ctl *c)
{
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		answer(c, fd);
		close(fd);
	}
}

void st_ctl__close(struct st_ctl *c)
{
	if (!c)
		return;
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

int st_ctl_request(const char *path, const char *cmd, FILE *out)
{
	struct sockaddr_un a;
	char buf[4096];
	int fd;

	if (addr_of(path, &a)) {
		pr_err("%s: path too long for a unix socket", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		pr_err("%s: %s (is the daemon running? --socket names another one)", path,
		       strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* the line in one send, right after connecting: the daemon waits 100 ms for it, no
	 * more, and a client descheduled between two sends (a loaded host) was dropped halfway
	 * and got EPIPE */
	if ((size_t)snprintf(buf, sizeof(buf), "%s\n", cmd) >= sizeof(buf)) {
		pr_err("%s: command too long", path);
		close(fd);
		return -1;
	}
	if (send(fd, buf, strlen(buf), MSG_NOSIGNAL) < 0) {
		pr_err("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, out);
	}
	close(fd);
	return 0;
}
