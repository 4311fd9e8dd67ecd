/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee link's receiving end (linklisten.c), in plaintext on loopback, driven from one
 * thread as receive drives it: a tee is handed over with its preamble and what followed it;
 * a peer that sends something else, one that is too slow, one over the per-address or the
 * global bound (the oldest makes room), one that comes while a tee is connected: refused,
 * closed, counted by reason, the listener goes on. (TLS handshakes, and strangers of every
 * kind against the real command: tests/integration/test_receive_listen.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linklisten.h"
#include "loop.h"
#include "stream.h"

struct got {
	int fd;
	uint8_t pre[16];
	size_t n;
	int tees;
};

static void on_tee(void *ctx, int fd, struct st_tlslink *tls, const uint8_t *pre, size_t n)
{
	struct got *g = ctx;

	assert_null(tls);
	g->fd = fd;
	memcpy(g->pre, pre, n);
	g->n = n;
	g->tees++;
}

/* A port free now on 127.0.0.1 (ADDR:PORT takes no port 0). */
static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static struct st_linklisten *start(struct got *g, unsigned max_pending, unsigned per_addr)
{
	char addr[32], err[256] = "";
	const struct st_linklisten_config c = {
		.addr = addr, .what = "test", .on_tee = on_tee, .ctx = g,
		.max_pending = max_pending, .max_per_addr = per_addr,
	};
	struct st_linklisten *l;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
	l = st_linklisten__new(&c, err, sizeof(err));

	if (!l)
		fail_msg("st_linklisten__new: %s", err);
	memset(g, 0, sizeof(*g));
	g->fd = -1;
	return l;
}

/* A connection to l from 127.0.0.SRC. */
static int dial(struct st_linklisten *l, int src)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)st_linklisten__port(l)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000000u | src) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Lets the listener work for about ms. */
static void pump(struct st_linklisten *l, int ms)
{
	for (int i = 0; i < ms; i++) {
		struct pollfd p = { .fd = st_linklisten__fd(l), .events = POLLIN };

		if (poll(&p, 1, 1) > 0)
			st_linklisten__run(l);
	}
}

/* What the listener did to the peer on fd: 0 it was closed (with or without K first), 1 it
 * is still open after the listener worked for 100 ms. */
static int fate(struct st_linklisten *l, int fd)
{
	char b[8];

	for (int i = 0; i < 100; i++) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		pump(l, 1);
	}
	return 1;
}

static uint64_t counter(struct st_linklisten *l, const char *name)
{
	struct st_linklisten_stats st;

	st_linklisten__stats(l, &st);
	for (size_t i = 0; i < st_linklisten_stat_n; i++)
		if (!strcmp(st_linklisten_stat_desc[i].name, name))
			return st_stats_get(&st_linklisten_stat_desc[i], &st);
	fail_msg("no counter %s", name);
	return 0;
}

static void t_tee(void **state)
{
	struct got g;
	struct st_linklisten *l = start(&g, 0, 0);
	uint8_t pre[ST_STREAM_PREAMBLE_LEN + 5] = ST_STREAM_MAGIC;
	int fd = dial(l, 1);
	char k = 0, more[8];

	pump(l, 50);
	assert_int_equal(recv(fd, &k, 1, 0), 1);
	assert_int_equal(k, ST_STREAM_LINK_OK);
	pre[6] = 1;
	pre[7] = 1;
	memcpy(pre + 8, "frame", 5);
	/* the preamble in two parts: a peer is a tee once all of it came */
	assert_int_equal(send(fd, pre, 3, 0), 3);
	pump(l, 20);
	assert_int_equal(g.tees, 0);
	assert_int_equal(send(fd, pre + 3, sizeof(pre) - 3, 0), (ssize_t)sizeof(pre) - 3);
	pump(l, 50);
	assert_int_equal(g.tees, 1);
	assert_int_equal(g.n, ST_STREAM_PREAMBLE_LEN);
	assert_memory_equal(g.pre, pre, ST_STREAM_PREAMBLE_LEN);
	/* what followed the preamble is the caller's to read */
	assert_int_equal(recv(g.fd, more, sizeof(more), 0), 5);
	assert_memory_equal(more, "frame", 5);
	assert_int_equal(counter(l, "rejected_peers"), 0);
	/* while the caller has its tee, a connection is closed at once */
	st_linklisten__busy(l, true);
	{
		int fd2 = dial(l, 1);

		assert_int_equal(fate(l, fd2), 0);
		close(fd2);
	}
	assert_int_equal(counter(l, "rejected_busy"), 1);
	close(g.fd);
	close(fd);
	st_linklisten__free(l);
	(void)state;
}

static void t_strangers(void **state)
{
	struct got g;
	struct st_linklisten *l = start(&g, 0, 0);
	int http = dial(l, 1), rst = dial(l, 1), quiet = dial(l, 2);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	assert_int_equal(send(http, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
	setsockopt(rst, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(rst);
	assert_int_equal(fate(l, http), 0);
	assert_int_equal(counter(l, "rejected_not_tee"), 1);
	assert_int_equal(counter(l, "rejected_closed"), 1);
	/* the quiet one waits for its time */
	assert_int_equal(fate(l, quiet), 1);
	st_linklisten__tick(l, st_loop_mono_ns() + ST_LINKLISTEN_TIMEOUT_NS / 2);
	assert_int_equal(counter(l, "rejected_timeout"), 0);
	st_linklisten__tick(l, st_loop_mono_ns() + ST_LINKLISTEN_TIMEOUT_NS + 1);
	assert_int_equal(counter(l, "rejected_timeout"), 1);
	assert_int_equal(fate(l, quiet), 0);
	assert_int_equal(counter(l, "rejected_peers"), 3);
	assert_int_equal(g.tees, 0);
	close(http);
	close(quiet);
	st_linklisten__free(l);
	(void)state;
}

/* Over a bound, the oldest peer (of the address, or in all) makes room for the newest. */
static void t_bounds(void **state)
{
	struct got g;
	struct st_linklisten *l = start(&g, 4, 2);
	int a[3], b[3];

	for (int i = 0; i < 3; i++) {
		a[i] = dial(l, 5);
		pump(l, 10);
	}
	/* two at once from 127.0.0.5: the first made room for the third */
	assert_int_equal(fate(l, a[0]), 0);
	assert_int_equal(fate(l, a[1]), 1);
	assert_int_equal(fate(l, a[2]), 1);
	assert_int_equal(counter(l, "rejected_crowded"), 1);
	for (int i = 0; i < 3; i++) {
		b[i] = dial(l, 6 + i);
		pump(l, 10);
	}
	/* four in all: the oldest (a[1]) made room for the fifth peer */
	assert_int_equal(fate(l, a[1]), 0);
	assert_int_equal(fate(l, a[2]), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fate(l, b[i]), 1);
	assert_int_equal(counter(l, "rejected_crowded"), 2);
	assert_int_equal(counter(l, "handshakes_peak"), 4);
	for (int i = 0; i < 3; i++) {
		close(a[i]);
		close(b[i]);
	}
	st_linklisten__free(l);
	(void)state;
}

static void t_bad_address(void **state)
{
	const struct st_linklisten_config c = { .addr = "nowhere", .on_tee = on_tee };
	char err[256] = "";

	assert_null(st_linklisten__new(&c, err, sizeof(err)));
	assert_string_equal(err, "not ADDR:PORT");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_tee),
		cmocka_unit_test(t_strangers),
		cmocka_unit_test(t_bounds),
		cmocka_unit_test(t_bad_address),
	};

	return cmocka_run_group_tests_name("linklisten", tests, NULL, NULL);
}
