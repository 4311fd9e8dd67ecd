/* SPDX-License-Identifier: GPL-2.0-only */
/* The metrics endpoint (httpd.c), driven the way the daemon drives it: from one thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"

static const char *health_why;

static int metrics(void *ctx, FILE *f)
{
	fprintf(f, "# TYPE shadowtap_demo_total counter\nshadowtap_demo_total{job=\"a\"} %d\n",
		*(int *)ctx);
	return 0;
}

static const char *health(void *ctx)
{
	return health_why;
}

/* GET path from the server on port; the whole answer, NUL-terminated. */
static char *get(struct st_httpd *h, unsigned port, const char *path)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[256], *out = calloc(1, 65536);
	size_t len = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	connect(fd, (struct sockaddr *)&a, sizeof(a));
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
		ssize_t n;

		st_httpd__run(h);
		poll(&p, 1, 5);
		if (req[0] && (p.revents & POLLOUT)) {
			if (send(fd, req, strlen(req), 0) == (ssize_t)strlen(req))
				req[0] = 0;
		}
		n = recv(fd, out + len, 65535 - len, 0);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
	}
	close(fd);
	return out;
}

static void test_endpoints(void **state)
{
	int counter = 42;
	struct st_httpd_ops ops = { .metrics = metrics, .health = health, .ctx = &counter };
	char err[256];
	struct st_httpd *h = st_httpd__start("127.0.0.1:0", &ops, err, sizeof(err));
	char *r;

	assert_non_null(h);
	assert_true(st_httpd__fd(h) >= 0);
	assert_true(st_httpd__port(h) > 0);
	r = get(h, st_httpd__port(h), "/metrics");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "shadowtap_demo_total{job=\"a\"} 42\n"));
	free(r);
	r = get(h, st_httpd__port(h), "/healthz");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	free(r);
	health_why = "job web: interface eth9 is gone";
	r = get(h, st_httpd__port(h), "/healthz");
	assert_non_null(strstr(r, "HTTP/1.1 503"));
	assert_non_null(strstr(r, "interface eth9 is gone"));
	free(r);
	r = get(h, st_httpd__port(h), "/nope");
	assert_non_null(strstr(r, "HTTP/1.1 404"));
	free(r);
	st_httpd__stop(h);
}

/* 100 idle connections from one client (127.0.0.2) do not starve a scrape from another:
 * at most 8 connections per address are taken (the rest closed at once), 64 in all, each
 * idle one dropped after 10 s. */
static void test_idle_clients(void **state)
{
	int counter = 7, idle[100];
	struct st_httpd_ops ops = { .metrics = metrics, .health = health, .ctx = &counter };
	char err[256];
	struct st_httpd *h = st_httpd__start("127.0.0.1:0", &ops, err, sizeof(err));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)st_httpd__port(h)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002) };
	struct timespec t0, t1;
	char *r;

	health_why = NULL;
	for (int i = 0; i < 100; i++) {
		idle[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(idle[i] >= 0);
		assert_int_equal(bind(idle[i], (struct sockaddr *)&from, sizeof(from)), 0);
		connect(idle[i], (struct sockaddr *)&a, sizeof(a));
		st_httpd__run(h);
	}
	for (int i = 0; i < 100; i++) {
		st_httpd__run(h);
		usleep(1000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = get(h, st_httpd__port(h), "/metrics");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(strstr(r, "shadowtap_demo_total{job=\"a\"} 7\n"));
	/* at once, not after the idle ones timed out */
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	free(r);
	for (int i = 0; i < 100; i++)
		close(idle[i]);
	st_httpd__stop(h);
}

static void test_bad_listen(void **state)
{
	struct st_httpd_ops ops = { 0 };
	char err[256];

	assert_null(st_httpd__start("nonsense", &ops, err, sizeof(err)));
	assert_non_null(strstr(err, "not ADDR:PORT"));
	assert_null(st_httpd__start("127.0.0.1:99999", &ops, err, sizeof(err)));
	assert_null(st_httpd__start("[::1:80", &ops, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_idle_clients),
		cmocka_unit_test(test_bad_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
