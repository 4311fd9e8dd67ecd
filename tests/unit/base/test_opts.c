/* SPDX-License-Identifier: GPL-2.0-only */
/* Option parsing and the user-space filter logic (opts.c, flowset.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "flowset.h"
#include "opts.h"

static struct st_addr addr(const char *s)
{
	struct st_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.a) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, s, a.a) == 1)
		a.family = 6;
	return a;
}

static void test_ports(void **state)
{
	uint16_t p;
	const char *bad[] = { "", "0", "65536", "-1", "+80", "80x", "x", " 80", "99999999999999999999" };

	assert_int_equal(st_opts_port("--port", "1", &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(st_opts_port("--port", "65535", &p), 0);
	assert_int_equal(p, 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(st_opts_port("--port", bad[i], &p), -1);
}

static void test_target(void **state)
{
	static struct st_target t;
	char buf[16];

	memset(&t, 0, sizeof(t));
	assert_int_equal(st_target_check(&t, "capture"), -1); /* neither iface nor cgroup */
	t.iface = "lo";
	assert_int_equal(st_target_check(&t, "capture"), -1); /* no port */
	assert_int_equal(st_target_add_port(&t, "80"), 0);
	assert_int_equal(st_target_add_port(&t, "80"), 0); /* duplicate: kept once */
	assert_int_equal(t.n_ports, 1);
	assert_int_equal(st_target_check(&t, "capture"), 0);
	t.cgroup = "/sys/fs/cgroup/x";
	assert_int_equal(st_target_check(&t, "capture"), -1); /* both */
	t.cgroup = NULL;
	/* At least 64 ports (the issue), up to ST_MAX_PORTS_CLI. */
	for (int i = 1; i < ST_MAX_PORTS_CLI; i++) {
		snprintf(buf, sizeof(buf), "%d", 1000 + i);
		assert_int_equal(st_target_add_port(&t, buf), 0);
	}
	assert_int_equal(t.n_ports, ST_MAX_PORTS_CLI);
	assert_int_equal(st_target_add_port(&t, "9"), -1);
	assert_true(st_opts_port_listed(t.ports, t.n_ports, 1064));
	assert_false(st_opts_port_listed(t.ports, t.n_ports, 999));

	assert_int_equal(st_target_opt(&t, ST_OPT_RING_MB, "8"), 1);
	assert_int_equal(t.ring_mb, 8);
	assert_int_equal(st_target_opt(&t, ST_OPT_RING_MB, "0"), -1);
	assert_int_equal(st_target_opt(&t, 'w', "x"), 0);
	assert_false(t.exit_on_detach);
	assert_int_equal(st_target_opt(&t, ST_OPT_EXIT_ON_DETACH, NULL), 1);
	assert_true(t.exit_on_detach);
}

/* --ring-mb: a power of 2 the kernel takes for a ring buffer (max_entries is a u32, so at most
 * 2 GiB); 3 is not rounded, 3000 and 4096 are refused at parse time, not at load time. */
static void test_ring_mb(void **state)
{
	static struct st_target t;
	const char *bad[] = { "0", "3", "5", "1000", "3000", "4096", "8192", "-8", "+8", "8M",
			      " 8", "", "x", "99999999999999999999999" };
	unsigned good[] = { 1, 2, 4, 8, 64, 256, 1024, 2048 };
	char buf[16];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), "%u", good[i]);
		t.ring_mb = 0;
		assert_int_equal(st_target_opt(&t, ST_OPT_RING_MB, buf), 1);
		assert_int_equal(t.ring_mb, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t.ring_mb = 77;
		assert_int_equal(st_target_opt(&t, ST_OPT_RING_MB, bad[i]), -1);
		assert_int_equal(t.ring_mb, 77);
	}
	/* the largest accepted size still fits the map's u32 max_entries */
	assert_true(((uint64_t)ST_RING_MB_MAX << 20) <= UINT32_MAX);
	assert_true(((uint64_t)ST_RING_MB_MAX << 21) > UINT32_MAX);
}

static void test_sizes(void **state)
{
	static struct st_target t;
	const struct { const char *s; uint64_t v; } good[] = {
		{ "1M", 1ull << 20 }, { "64M", 64ull << 20 }, { "64MiB", 64ull << 20 },
		{ "64MB", 64ull << 20 }, { "2g", 2ull << 30 }, { "1048576", 1ull << 20 },
		{ "4096K", 4ull << 20 }, { "1T", 1ull << 40 }, { "1024G", 1ull << 40 },
	};
	const char *bad[] = { "", "M", "0", "1", "1048575", "1023K", "2T", "1025G", "-64M", "+64M",
			      " 64M", "64X", "64MiBs", "64 M", "18446744073709551615",
			      "99999999999999999999999M", "17179869184T" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(st_opts_size("--max-mem", good[i].s, ST_MAX_MEM_MIN,
					      ST_MAX_MEM_MAX, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(st_opts_size("--max-mem", bad[i], ST_MAX_MEM_MIN, ST_MAX_MEM_MAX,
					      &v), -1);
	assert_int_equal(st_target_opt(&t, ST_OPT_MAX_MEM, "16M"), 1);
	assert_int_equal(t.max_mem, 16ull << 20);
	assert_int_equal(st_target_opt(&t, ST_OPT_MAX_MEM, "lots"), -1);
	assert_int_equal(t.max_mem, 16ull << 20);
}

static void test_cidr(void **state)
{
	struct st_cidr c;
	struct st_addr a;
	const char *bad[] = { "", "10.0.0.0/33", "::/129", "10.0.0.256", "10.0.0.0/", "10.0.0.0/-1",
			      "host.example", "10.0.0.0/8/8", "fe80::1%eth0" };

	assert_int_equal(st_opts_cidr("--host", "10.1.2.3/8", &c), 0);
	assert_int_equal(c.addr.family, 4);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(ntohl(c.addr.a[0]), 0x0a000000); /* masked */
	a = addr("10.200.0.1");
	assert_true(st_cidr_match(&c, &a));
	a = addr("11.0.0.1");
	assert_false(st_cidr_match(&c, &a));
	a = addr("::ffff:10.0.0.1");
	assert_false(st_cidr_match(&c, &a)); /* other family */

	assert_int_equal(st_opts_cidr("--host", "192.0.2.7", &c), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(st_opts_cidr("--host", "0.0.0.0/0", &c), 0);
	a = addr("203.0.113.9");
	assert_true(st_cidr_match(&c, &a));

	assert_int_equal(st_opts_cidr("--host", "fd00:1:2::/48", &c), 0);
	assert_int_equal(c.addr.family, 6);
	a = addr("fd00:1:2:ffff::1");
	assert_true(st_cidr_match(&c, &a));
	a = addr("fd00:1:3::1");
	assert_false(st_cidr_match(&c, &a));
	assert_int_equal(st_opts_cidr("--host", "fd00::1:0/113", &c), 0);
	a = addr("fd00::1:7fff");
	assert_true(st_cidr_match(&c, &a));
	a = addr("fd00::1:8000");
	assert_false(st_cidr_match(&c, &a));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(st_opts_cidr("--host", bad[i], &c), -1);
}

static void test_hosts_match(void **state)
{
	struct st_cidr cs[2];
	struct st_addr a = addr("192.0.2.1");

	assert_true(st_cidr_match_any(cs, 0, &a)); /* no filter: everyone */
	st_opts_cidr("--host", "10.0.0.0/8", &cs[0]);
	st_opts_cidr("--host", "fd00::/8", &cs[1]);
	assert_false(st_cidr_match_any(cs, 2, &a));
	a = addr("10.9.8.7");
	assert_true(st_cidr_match_any(cs, 2, &a));
	a = addr("fd12::1");
	assert_true(st_cidr_match_any(cs, 2, &a));
}

static void test_numbers(void **state)
{
	unsigned long v;
	double d;

	assert_int_equal(st_opts_uint("--x", "5", 1, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(st_opts_uint("--x", "11", 1, 10, &v), -1);
	assert_int_equal(st_opts_double("--duration", "1.5", 0.001, 10, &d), 0);
	assert_true(d == 1.5);
	assert_int_equal(st_opts_double("--duration", "0", 0.001, 10, &d), -1);
	assert_int_equal(st_opts_double("--duration", "nan", 0.001, 10, &d), -1);
	assert_int_equal(st_opts_double("--duration", "1s", 0.001, 10, &d), -1);
}

static void test_flowset(void **state)
{
	struct st_flowset *s = st_flowset__new(3000);
	struct st_flow_key k = { 0 }, r;

	k.src = addr("10.0.0.1");
	k.dst = addr("10.0.0.2");
	k.sport = 40000;
	k.dport = 80;
	r.src = k.dst;
	r.dst = k.src;
	r.sport = k.dport;
	r.dport = k.sport;
	assert_int_equal(st_flowset__add(s, &k), 1);
	assert_int_equal(st_flowset__add(s, &r), 0); /* the reverse direction: same flow */
	for (int i = 0; i < 5000; i++) {
		k.sport = (uint16_t)(1000 + i);
		st_flowset__add(s, &k);
	}
	assert_int_equal(st_flowset__count(s), 3000);
	assert_true(st_flowset__full(s));
	k.sport = 1000; /* known even when full */
	assert_int_equal(st_flowset__add(s, &k), 0);
	st_flowset__free(s);
}

static void test_hostport(void **state)
{
	static const struct {
		const char *s, *host, *port; /* host NULL: refused */
	} rows[] = {
		{ "127.0.0.1:80", "127.0.0.1", "80" },
		{ "shadow.example:8080", "shadow.example", "8080" },
		{ "[::1]:443", "::1", "443" },
		{ "[fe80::1%eth0]:1", "fe80::1%eth0", "1" },
		{ ":9000", "", "9000" },        /* a listener's "any" */
		{ "[::]:65535", "::", "65535" },
		{ "::1:80", "::1", "80" },      /* the last colon splits, as getaddrinfo wants */
		{ "h:0", NULL, NULL },
		{ "h:65536", NULL, NULL },
		{ "h:8x", NULL, NULL },
		{ "h:+80", NULL, NULL },
		{ "h:", NULL, NULL },
		{ "h", NULL, NULL },
		{ "[::1]80", NULL, NULL },
		{ "[::1:80", NULL, NULL },
		{ "h:99999999999999999999", NULL, NULL },
	};
	char host[64], port[8];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = st_opts_split_hostport(rows[i].s, host, sizeof(host), port, sizeof(port));

		if (!rows[i].host) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(host, rows[i].host);
		assert_string_equal(port, rows[i].port);
	}
	/* a host that does not fit is refused, not cut */
	assert_int_equal(st_opts_split_hostport("abcdefgh:80", host, 8, port, sizeof(port)), -1);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports),     cmocka_unit_test(test_target),
		cmocka_unit_test(test_cidr),      cmocka_unit_test(test_hosts_match),
		cmocka_unit_test(test_numbers),   cmocka_unit_test(test_flowset),
		cmocka_unit_test(test_ring_mb),   cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_hostport),
	};

	return cmocka_run_group_tests_name("opts", tests, NULL, NULL);
}
