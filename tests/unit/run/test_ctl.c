/* SPDX-License-Identifier: GPL-2.0-only */
/* The control socket (ctl.c): a request answered from the loop's thread, stale sockets; the
 * server never waits on a client: silent, slow and too many clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "loop.h"

static bool server_closed; /* by the "close" command: ask() runs it no more */

static int handle(void *ctx, const char *cmd, const char *args, FILE *f)
{
	if (!strcmp(cmd, "status")) {
		fprintf(f, "job web capture running\n");
		return 0;
	}
	if (!strcmp(cmd, "close")) { /* as a reload that moves the socket */
		st_ctl__close(*(struct st_ctl **)ctx);
		server_closed = true;
		fprintf(f, "closed\n");
		return 0;
	}
	if (!strcmp(cmd, "echo")) {
		fprintf(f, "[%s]\n", args);
		return 0;
	}
	return -1;
}

struct req {
	const char *path, *cmd;
	char *out;
	size_t len;
};

static void *client(void *arg)
{
	struct req *r = arg;
	FILE *f = open_memstream(&r->out, &r->len);

	st_ctl_request(r->path, r->cmd, f);
	fclose(f);
	return NULL;
}

/* Runs one request: the client in a thread, the server here, as the daemon's loop would
 * (every 5 ms, at most 2 s). */
static char *ask(struct st_ctl *c, const char *path, const char *cmd)
{
	struct req r = { .path = path, .cmd = cmd };
	pthread_t th;

	server_closed = false;
	assert_int_equal(pthread_create(&th, NULL, client, &r), 0);
	for (int i = 0; i < 400 && pthread_tryjoin_np(th, NULL); i++) {
		if (i == 399)
			fail_msg("'%s' not answered within 2 s", cmd);
		if (!server_closed)
			st_ctl__run(c);
		usleep(5000);
	}
	return r.out;
}

/* The daemon's loop for ms: st_ctl__run() whenever its fd is readable. */
static void serve(struct st_ctl *c, unsigned ms)
{
	uint64_t end = st_loop_mono_ns() + ms * 1000000ull;

	while (st_loop_mono_ns() < end) {
		struct pollfd p = { .fd = st_ctl__fd(c), .events = POLLIN };

		if (poll(&p, 1, 10) > 0)
			st_ctl__run(c);
	}
}

static int raw_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Closed by the server: recv sees the end (0) once what was sent is read. */
static bool closed_by_server(int fd, char *out, size_t outlen)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	ssize_t n;

	while (poll(&p, 1, 0) > 0 && (n = recv(fd, out + len, outlen - 1 - len, 0)) > 0)
		len += (size_t)n;
	out[len] = 0;
	return poll(&p, 1, 0) > 0 && recv(fd, out + len, 1, MSG_DONTWAIT) == 0;
}

/* A server at DIR/ctl.sock in a new temporary DIR (a mkdtemp template); ctx for handle(). */
static struct st_ctl *listen_tmp(char *dir, char *path, size_t len, void *ctx)
{
	char err[256];
	struct st_ctl *c;

	assert_non_null(mkdtemp(dir));
	snprintf(path, len, "%s/ctl.sock", dir);
	c = st_ctl__listen(path, handle, ctx, err, sizeof(err));
	assert_non_null(c);
	return c;
}

/* A client that says nothing holds no one up, and goes after ST_CTL_WAIT_MS; a line that
 * comes in pieces, slower than the old 100 ms, is answered. */
static void test_slow_clients(void **state)
{
	char dir[] = "/tmp/st-ctl-XXXXXX", path[128], buf[256], *out;
	struct st_ctl *c = listen_tmp(dir, path, sizeof(path), NULL);
	int silent = raw_connect(path), slow = raw_connect(path);
	uint64_t t0 = st_loop_mono_ns();

	serve(c, 50);
	out = ask(c, path, "status");
	assert_string_equal(out, "job web capture running\n");
	free(out);
	assert_int_equal(send(slow, "ech", 3, 0), 3);
	serve(c, 300);
	assert_false(closed_by_server(slow, buf, sizeof(buf)));
	assert_int_equal(send(slow, "o x\n", 4, 0), 4);
	serve(c, 50);
	assert_true(closed_by_server(slow, buf, sizeof(buf)));
	assert_string_equal(buf, "[x]\n");
	assert_false(closed_by_server(silent, buf, sizeof(buf)));
	serve(c, ST_CTL_WAIT_MS + ST_CTL_WAIT_MS / 5 - (st_loop_mono_ns() - t0) / 1000000);
	assert_true(closed_by_server(silent, buf, sizeof(buf)));
	assert_string_equal(buf, "");
	close(silent);
	close(slow);
	st_ctl__close(c);
	rmdir(dir);
}

/* Past ST_CTL_CLIENTS_MAX waiting, a new client takes the place of the one waiting longest:
 * a request still gets through a crowd of silent ones. */
static void test_crowd(void **state)
{
	char dir[] = "/tmp/st-ctl-XXXXXX", path[128], buf[64], *out;
	struct st_ctl *c = listen_tmp(dir, path, sizeof(path), NULL);
	int fds[ST_CTL_CLIENTS_MAX + 4];

	for (int i = 0; i < ST_CTL_CLIENTS_MAX + 4; i++) {
		fds[i] = raw_connect(path);
		serve(c, 2);
	}
	out = ask(c, path, "status");
	assert_string_equal(out, "job web capture running\n");
	free(out);
	/* the oldest five made room (four more silent ones, then the request) */
	for (int i = 0; i < ST_CTL_CLIENTS_MAX + 4; i++) {
		assert_int_equal(closed_by_server(fds[i], buf, sizeof(buf)), i < 5);
		close(fds[i]);
	}
	st_ctl__close(c);
	rmdir(dir);
}

/* A command that closes the server it came through (a reload moving the socket) gets its
 * answer, and the server is freed after (ASan: no use after free). */
static void test_close_from_command(void **state)
{
	char dir[] = "/tmp/st-ctl-XXXXXX", path[128], *out;
	struct st_ctl *c;

	c = listen_tmp(dir, path, sizeof(path), &c);
	out = ask(c, path, "close");
	assert_string_equal(out, "closed\n");
	free(out);
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
}

static void test_requests(void **state)
{
	char dir[] = "/tmp/st-ctl-XXXXXX", path[128], err[256], *out;
	struct st_ctl *c, *c2;
	struct stat sb;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/ctl.sock", dir);
	c = st_ctl__listen(path, handle, NULL, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	out = ask(c, path, "status");
	assert_string_equal(out, "job web capture running\n");
	free(out);
	out = ask(c, path, "echo a b");
	assert_string_equal(out, "[a b]\n");
	free(out);
	out = ask(c, path, "frobnicate");
	assert_non_null(strstr(out, "unknown command 'frobnicate'"));
	free(out);
	/* a live daemon's socket is not taken over */
	assert_null(st_ctl__listen(path, handle, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "another daemon"));
	/* a killed daemon's (socket file, nobody listening) is */
	st_ctl__close(c);
	assert_int_equal(stat(path, &sb), -1);
	/* a killed daemon's socket file (nobody listens) is replaced */
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		strcpy(a.sun_path, path);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd); /* as kill -9 leaves it */
		c2 = st_ctl__listen(path, handle, NULL, err, sizeof(err));
		assert_non_null(c2);
		out = ask(c2, path, "status");
		assert_string_equal(out, "job web capture running\n");
		free(out);
		st_ctl__close(c2);
	}
	/* not a socket: never removed */
	{
		FILE *f = fopen(path, "w");

		fclose(f);
		assert_null(st_ctl__listen(path, handle, NULL, err, sizeof(err)));
		assert_non_null(strstr(err, "not a socket"));
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_slow_clients),
		cmocka_unit_test(test_crowd),
		cmocka_unit_test(test_close_from_command),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
