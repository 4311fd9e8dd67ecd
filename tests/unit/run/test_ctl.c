/* SPDX-License-Identifier: GPL-2.0-only */
/* The control socket (ctl.c): a request answered from the loop's thread, stale sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

static int handle(void *ctx, const char *cmd, const char *args, FILE *f)
{
	if (!strcmp(cmd, "status")) {
		fprintf(f, "job web capture running\n");
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

/* Runs one request: the client in a thread, the server here, as the daemon's loop would. */
static char *ask(struct st_ctl *c, const char *path, const char *cmd)
{
	struct req r = { .path = path, .cmd = cmd };
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, client, &r), 0);
	for (int i = 0; i < 200 && !r.out; i++) {
		st_ctl__run(c);
		usleep(5000);
		if (!pthread_tryjoin_np(th, NULL))
			return r.out;
	}
	pthread_join(th, NULL);
	return r.out;
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
