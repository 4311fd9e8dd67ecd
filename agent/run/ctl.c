/* SPDX-License-Identifier: GPL-2.0-only */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define REQ_MAX 512

/* A client connected, its line not read whole yet. */
struct client {
	int fd; /* -1: a free place */
	uint64_t deadline_ns;
	size_t len;
	char req[REQ_MAX + 1];
};

struct st_ctl {
	int fd;    /* the epoll the agent's loop waits on: the listener, the timer, the clients */
	int lfd;   /* the listening socket */
	int tfd;   /* a timerfd, ticking while a client is waiting */
	bool ticking;
	bool running; /* in st_ctl__run(): a close from a command (a reload) waits for its end */
	bool closed;
	char *path;
	st_ctl_fn fn;
	void *ctx;
	struct client clients[ST_CTL_CLIENTS_MAX];
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

static int watch(struct st_ctl *c, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(c->fd, EPOLL_CTL_ADD, fd, &ev);
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
	c->fd = c->tfd = -1;
	for (int i = 0; i < ST_CTL_CLIENTS_MAX; i++)
		c->clients[i].fd = -1;
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0177); /* the socket is created 0600: root's only */
	if (c->lfd < 0 || bind(c->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(c->lfd, 8)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		umask(old);
		if (c->lfd >= 0)
			close(c->lfd);
		free(c->path);
		free(c);
		return NULL;
	}
	umask(old);
	c->fd = epoll_create1(EPOLL_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->fd < 0 || c->tfd < 0 || watch(c, c->lfd) || watch(c, c->tfd)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		st_ctl__close(c);
		return NULL;
	}
	return c;
}

int st_ctl__fd(const struct st_ctl *c)
{
	return c->fd;
}

static void drop(struct st_ctl *c, struct client *cl)
{
	epoll_ctl(c->fd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
}

/* The timer ticks while a client is waiting, ten times a wait: a silent client goes within
 * a tenth of the wait after its deadline. */
static void timer_set(struct st_ctl *c, bool on)
{
	const unsigned tick_ms = ST_CTL_WAIT_MS / 10;
	struct itimerspec t = { 0 };

	if (on == c->ticking)
		return;
	if (on) {
		t.it_value.tv_sec = tick_ms / 1000;
		t.it_value.tv_nsec = (long)(tick_ms % 1000) * 1000000;
		t.it_interval = t.it_value;
	}
	if (!timerfd_settime(c->tfd, 0, &t, NULL))
		c->ticking = on;
}

/* The line is whole: answered in one send that never waits (a client that does not read an
 * answer longer than its socket's buffer, ~200 KB, gets it cut), then the connection closes. */
static void answer(struct st_ctl *c, struct client *cl)
{
	char *nl, *args, *text = NULL;
	size_t tlen = 0, off = 0;
	FILE *f;

	cl->req[cl->len] = 0;
	nl = strpbrk(cl->req, "\r\n");
	if (nl)
		*nl = 0;
	args = strchr(cl->req, ' ');
	if (args)
		*args++ = 0;
	f = open_memstream(&text, &tlen);
	if (f) {
		if (c->fn(c->ctx, cl->req, args ? args : "", f))
			fprintf(f, "error: unknown command '%s' (status, reload)\n", cl->req);
		if (!fclose(f)) {
			while (off < tlen) {
				ssize_t n = send(cl->fd, text + off, tlen - off,
						 MSG_NOSIGNAL | MSG_DONTWAIT);

				if (n <= 0)
					break;
				off += (size_t)n;
			}
		}
		free(text);
	}
	drop(c, cl);
}

/* Reads what a client sent; its line whole (a newline, or REQ_MAX bytes), answers it. */
static void client_read(struct st_ctl *c, struct client *cl)
{
	ssize_t n = recv(cl->fd, cl->req + cl->len, REQ_MAX - cl->len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c, cl); /* gone before its line ended */
		return;
	}
	cl->len += (size_t)n;
	cl->req[cl->len] = 0;
	if (cl->len == REQ_MAX || memchr(cl->req, '\n', cl->len))
		answer(c, cl);
}

/* A new client takes a free place, or the one waiting longest (it had its chance). */
static void client_accept(struct st_ctl *c, int fd, uint64_t now)
{
	struct client *cl = &c->clients[0];

	for (int i = 0; i < ST_CTL_CLIENTS_MAX; i++) {
		if (c->clients[i].fd < 0) {
			cl = &c->clients[i];
			break;
		}
		if (c->clients[i].deadline_ns < cl->deadline_ns)
			cl = &c->clients[i];
	}
	if (cl->fd >= 0)
		drop(c, cl);
	cl->fd = fd;
	cl->len = 0;
	cl->deadline_ns = now + ST_CTL_WAIT_MS * 1000000ull;
	if (watch(c, fd)) {
		close(fd);
		cl->fd = -1;
	}
}

static void ctl_free(struct st_ctl *c)
{
	for (int i = 0; i < ST_CTL_CLIENTS_MAX; i++)
		if (c->clients[i].fd >= 0)
			close(c->clients[i].fd);
	if (c->fd >= 0)
		close(c->fd);
	if (c->tfd >= 0)
		close(c->tfd);
	close(c->lfd);
	unlink(c->path);
	free(c->path);
	free(c);
}

void st_ctl__run(struct st_ctl *c)
{
	struct epoll_event ev[ST_CTL_CLIENTS_MAX + 2];
	uint64_t now = st_loop_mono_ns();
	int n = epoll_wait(c->fd, ev, ST_CTL_CLIENTS_MAX + 2, 0);
	bool waiting = false;

	c->running = true;
	for (int i = 0; i < n && !c->closed; i++) {
		int fd = ev[i].data.fd;

		if (fd == c->lfd) {
			for (;;) {
				int cfd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				if (cfd < 0)
					break;
				client_accept(c, cfd, now);
			}
		} else if (fd == c->tfd) {
			uint64_t ticks;

			if (read(c->tfd, &ticks, sizeof(ticks)) < 0)
				continue;
		} else {
			for (int j = 0; j < ST_CTL_CLIENTS_MAX; j++)
				if (c->clients[j].fd == fd)
					client_read(c, &c->clients[j]);
		}
	}
	c->running = false;
	if (c->closed) {
		ctl_free(c); /* closed by the command just answered */
		return;
	}
	for (int j = 0; j < ST_CTL_CLIENTS_MAX; j++) {
		struct client *cl = &c->clients[j];

		if (cl->fd >= 0 && now >= cl->deadline_ns)
			drop(c, cl); /* silent for the whole wait */
		waiting |= cl->fd >= 0;
	}
	timer_set(c, waiting);
}

void st_ctl__close(struct st_ctl *c)
{
	if (!c)
		return;
	if (c->running)
		c->closed = true;
	else
		ctl_free(c);
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
	/* the line in one send, right after connecting (the daemon waits ST_CTL_WAIT_MS for
	 * it) */
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
