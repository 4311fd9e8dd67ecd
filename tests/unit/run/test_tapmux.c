/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap sharing (agent/run/tapmux.c): which job takes which segment (ports by direction, peers,
 * the kernel's connection sample), the widest policy of two jobs, and, as root in a private
 * network namespace, two jobs on one loopback: one load, the union of their ports in the
 * kernel, each job handed only its own connections; a wider job loads again, a narrower
 * one does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf/connhash.h"
#include "loop.h"
#include "opts.h"
#include "tapmux.h"

static struct st_segment seg_v4(const char *src, uint16_t sport, const char *dst, uint16_t dport,
				int dir)
{
	struct st_segment s = { 0 };

	s.key.src.family = s.key.dst.family = 4;
	inet_pton(AF_INET, src, &s.key.src.a[0]);
	inet_pton(AF_INET, dst, &s.key.dst.a[0]);
	s.key.sport = sport;
	s.key.dport = dport;
	s.dir = (int8_t)dir;
	return s;
}

static void test_takes_ports_and_peers(void **state)
{
	struct st_target t = { 0 };
	struct st_segment in = seg_v4("10.0.0.1", 40000, "10.0.0.2", 80, ST_DIR_IN);
	struct st_segment out = seg_v4("10.0.0.2", 80, "10.0.0.1", 40000, ST_DIR_OUT);
	struct st_segment other = seg_v4("10.0.0.1", 80, "10.0.0.2", 40000, ST_DIR_IN);

	assert_int_equal(st_target_add_port(&t, "80"), 0);
	assert_true(st_tapmux_takes(&t, ST_SAMPLE_ALL, &in));
	assert_true(st_tapmux_takes(&t, ST_SAMPLE_ALL, &out));
	/* ingress whose destination is not the service's port: a client of port 80 elsewhere */
	assert_false(st_tapmux_takes(&t, ST_SAMPLE_ALL, &other));
	other.dir = -1; /* unknown direction: either port */
	assert_true(st_tapmux_takes(&t, ST_SAMPLE_ALL, &other));

	assert_int_equal(st_target_add_host(&t, "10.0.0.0/30"), 0);
	assert_true(st_tapmux_takes(&t, ST_SAMPLE_ALL, &in));
	t.n_hosts = 0;
	assert_int_equal(st_target_add_host(&t, "192.168.0.0/16"), 0);
	assert_false(st_tapmux_takes(&t, ST_SAMPLE_ALL, &in));
	assert_false(st_tapmux_takes(&t, ST_SAMPLE_ALL, &out));
}

/* The sample is the kernel's: the same connection in both directions, the same decision as
 * bpf/connhash.h over client -> server, and about the share asked for. */
static void test_takes_sample(void **state)
{
	struct st_target t = { 0 };
	unsigned kept = 0, n = 20000;

	assert_int_equal(st_target_add_port(&t, "80"), 0);
	for (unsigned i = 0; i < n; i++) {
		uint16_t cport = (uint16_t)(1024 + i % 60000);
		char cli[32];
		struct st_segment in, out;
		uint64_t h;
		bool a, b;

		snprintf(cli, sizeof(cli), "10.1.%u.%u", (i / 250) % 250, i % 250 + 1);
		in = seg_v4(cli, cport, "10.0.0.2", 80, ST_DIR_IN);
		out = seg_v4("10.0.0.2", 80, cli, cport, ST_DIR_OUT);
		a = st_tapmux_takes(&t, 1000, &in);
		b = st_tapmux_takes(&t, 1000, &out);
		assert_int_equal(a, b);
		h = st_conn_hash(4, in.key.src.a, in.key.dst.a, in.key.sport, in.key.dport);
		assert_int_equal(a, st_conn_sampled_in(h, 1000));
		kept += a;
	}
	assert_in_range(kept, n / 10 - n / 50, n / 10 + n / 50);
}

static void test_widen_covers(void **state)
{
	struct st_tap_opts all = { 0 }, ten = { .sample_permyriad = 1000 },
			   half = { .sample_permyriad = 5000 }, head = { .copy = { ST_COPY_HEAD,
									   ST_COPY_NONE } },
			   head1k = { .copy = { ST_COPY_HEAD, ST_COPY_HEAD }, .head_bytes = 1024 }, w;

	st_tapmux_widen(&w, &ten, &all);
	assert_int_equal(w.sample_permyriad, 0); /* one job wants all: no kernel sampling */
	st_tapmux_widen(&w, &ten, &half);
	assert_int_equal(w.sample_permyriad, 5000);
	assert_true(st_tapmux_covers(&w, &ten));
	assert_false(st_tapmux_covers(&ten, &w));
	assert_true(st_tapmux_covers(&all, &ten));

	st_tapmux_widen(&w, &head, &ten);
	assert_int_equal(w.copy[ST_DIR_IN], ST_COPY_FULL);
	st_tapmux_widen(&w, &head, &head1k);
	assert_int_equal(w.copy[ST_DIR_IN], ST_COPY_HEAD);
	assert_int_equal(w.copy[ST_DIR_OUT], ST_COPY_HEAD);
	assert_int_equal(w.head_bytes, 1024);
	assert_true(st_tapmux_covers(&w, &head));
	assert_false(st_tapmux_covers(&head, &head1k)); /* 256 head bytes do not serve 1024 */
	assert_false(st_tapmux_covers(&head, &all));
}

/* ---- live, as root ----------------------------------------------------------------------- */

struct job {
	uint64_t segs, bytes, other_port;
	uint16_t port;
};

static int on_seg(void *ctx, const struct st_segment *s)
{
	struct job *j = ctx;

	j->segs++;
	j->bytes += s->kind == ST_SEG_DATA ? s->len : 0;
	if (s->key.sport != j->port && s->key.dport != j->port)
		j->other_port++;
	return 0;
}

static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* One connection to port, n bytes sent and echoed back once. */
static void exchange(int lfd, uint16_t port, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	char buf[4096] = { 'x' };
	int c = socket(AF_INET, SOCK_STREAM, 0), s;
	size_t got = 0;

	assert_true(n <= sizeof(buf));
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(lfd, NULL, NULL);
	assert_true(s >= 0);
	assert_int_equal(write(c, buf, n), (ssize_t)n);
	while (got < n) {
		ssize_t r = read(s, buf, n - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(write(s, buf, n), (ssize_t)n);
	close(c);
	close(s);
}

static void test_two_jobs_one_load(void **state)
{
	struct st_target ta = { .iface = "lo", .ring_mb = 1 }, tb = { .iface = "lo", .ring_mb = 1 };
	struct job ja = { 0 }, jb = { 0 };
	struct st_tapsub *sa, *sb;
	struct st_tapmux *m;
	struct st_loop *l;
	struct st_tap_opts k;
	uint16_t pa, pb;
	int la, lb;
	char p[8];

	if (geteuid() != 0 || unshare(CLONE_NEWNET) || system("ip link set lo up 2>/dev/null")) {
		skip();
		return;
	}
	la = listener(&pa);
	lb = listener(&pb);
	ja.port = pa;
	jb.port = pb;
	snprintf(p, sizeof(p), "%u", pa);
	assert_int_equal(st_target_add_port(&ta, p), 0);
	snprintf(p, sizeof(p), "%u", pb);
	assert_int_equal(st_target_add_port(&tb, p), 0);
	l = st_loop__new();
	m = st_tapmux__new(l);
	assert_non_null(m);
	{
		struct st_tapsub_spec a = { .t = &ta, .seg = on_seg, .ctx = &ja };
		struct st_tapsub_spec b = { .t = &tb, .seg = on_seg, .ctx = &jb,
					    .opts.sample_permyriad = 5000 };

		sa = st_tapmux__join(m, &a);
		assert_non_null(sa);
		sb = st_tapmux__join(m, &b);
		assert_non_null(sb);
	}
	/* the second job (half the connections) is served by the first one's load (all) */
	assert_int_equal(st_tapsub__jobs(sb), 2);
	assert_int_equal(st_tapsub__loads(sb), 1);
	st_tapsub__kernel_opts(sb, &k);
	assert_int_equal(k.sample_permyriad, 0);

	for (int i = 0; i < 20; i++) {
		exchange(la, pa, 1000);
		exchange(lb, pb, 1000);
	}
	assert_int_equal(st_tapmux__consume(m), 0);
	/* each job only its own port: the kernel map holds both */
	assert_int_equal(ja.other_port, 0);
	assert_int_equal(jb.other_port, 0);
	assert_int_equal(ja.bytes, 20 * 2000);
	/* the sampled job: some of its 20 connections, whole (2000 bytes each), not all */
	assert_int_equal(jb.bytes % 2000, 0);
	assert_in_range(jb.bytes, 2000, 19 * 2000);

	/* the first job leaves: its port leaves the kernel's map, the load stays */
	st_tapmux__leave(sa);
	ja.segs = 0;
	exchange(la, pa, 100);
	assert_int_equal(st_tapmux__consume(m), 0);
	assert_int_equal(ja.segs, 0);
	assert_int_equal(st_tapsub__loads(sb), 1);

	/* the load still takes every connection: a wide job back needs no new load */
	{
		struct st_tapsub_spec a = { .t = &ta, .seg = on_seg, .ctx = &ja };

		sa = st_tapmux__join(m, &a);
		assert_non_null(sa);
		assert_int_equal(st_tapsub__loads(sa), 1);
	}
	st_tapmux__leave(sa);
	st_tapmux__leave(sb);
	st_tapmux__free(m);

	/* narrow first, then wide: the second join loads again */
	m = st_tapmux__new(l);
	{
		struct st_tapsub_spec a = { .t = &ta, .seg = on_seg, .ctx = &ja };
		struct st_tapsub_spec b = { .t = &tb, .seg = on_seg, .ctx = &jb,
					    .opts.sample_permyriad = 5000 };

		sb = st_tapmux__join(m, &b);
		assert_non_null(sb);
		st_tapsub__kernel_opts(sb, &k);
		assert_int_equal(k.sample_permyriad, 5000);
		sa = st_tapmux__join(m, &a);
		assert_non_null(sa);
		assert_int_equal(st_tapsub__loads(sa), 2);
		st_tapsub__kernel_opts(sa, &k);
		assert_int_equal(k.sample_permyriad, 0);
	}
	ja.bytes = 0;
	for (int i = 0; i < 5; i++)
		exchange(la, pa, 1000);
	assert_int_equal(st_tapmux__consume(m), 0);
	assert_int_equal(ja.bytes, 5 * 2000);
	st_tapmux__leave(sa);
	st_tapmux__leave(sb);
	st_tapmux__free(m);
	st_loop__free(l);
	close(la);
	close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_takes_ports_and_peers),
		cmocka_unit_test(test_takes_sample),
		cmocka_unit_test(test_widen_covers),
		cmocka_unit_test(test_two_jobs_one_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
