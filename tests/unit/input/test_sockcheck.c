/* SPDX-License-Identifier: GPL-2.0-only */
/* A target's listening sockets (sockcheck.c), without privileges: a socket this test listens
 * on is found, with the cgroup it was created in; a port nothing listens on is not; the
 * check of a target says so for that port alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockcheck.h"

/* A socket listening on 127.0.0.1 at an ephemeral port; its port in *port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* This process's cgroup v2 directory, from /proc/self/cgroup ("0::/path") and the mount. */
static int own_cgroup(char *buf, size_t len)
{
	char line[512], mnt[256] = "";
	FILE *f = fopen("/proc/self/mounts", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char dev[64], dir[256], type[32];

		if (sscanf(line, "%63s %255s %31s", dev, dir, type) == 3 && !strcmp(type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", dir);
			break;
		}
	}
	fclose(f);
	f = fopen("/proc/self/cgroup", "r");
	if (!f || !mnt[0]) {
		if (f)
			fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			fclose(f);
			return snprintf(buf, len, "%s%s", mnt, line + 3) < (int)len ? 0 : -1;
		}
	}
	fclose(f);
	return -1;
}

static void test_listeners(void **state)
{
	struct st_listener ls[8];
	uint16_t port, none;
	char cg[512];
	int fd = listener(&port), fd2 = listener(&none), n;

	close(fd2); /* a port nothing listens on now */
	n = st_sockcheck_listeners(&port, 1, ls, 8);
	if (n == -EPERM || n == -EACCES || n == -EPROTONOSUPPORT)
		skip(); /* sock_diag unavailable here */
	assert_int_equal(n, 1);
	assert_int_equal(ls[0].port, port);
	assert_true(ls[0].inode > 0);
	/* created in this process's cgroup: the id that directory has */
	if (!own_cgroup(cg, sizeof(cg)) && st_sockcheck_cgroup_id(cg))
		assert_true(ls[0].cgroup_id == st_sockcheck_cgroup_id(cg));
	assert_int_equal(st_sockcheck_listeners(&none, 1, ls, 8), 0);
	{
		struct st_target t = { .iface = "lo" };

		t.ports[t.n_ports++] = port;
		assert_int_equal(st_sockcheck_target(&t, "test"), 0);
		t.ports[t.n_ports++] = none;
		assert_int_equal(st_sockcheck_target(&t, "test"), 1);
	}
	close(fd);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listeners),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
