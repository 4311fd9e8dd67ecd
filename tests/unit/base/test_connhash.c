/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The connection hash behind --sample (bpf/connhash.h), built here for the
 * host exactly as the BPF program builds it, against the user-space decision:
 *  - its values are pinned (golden values, and the formula the shadow engine
 *    used before the hash moved into the shared header): a change here would
 *    silently change which connections every deployed agent samples;
 *  - the kernel's way (orient the wire tuple client -> server by capture
 *    direction, hash, keep when hash % 10000 < st_tap_permyriad(PCT)) decides
 *    exactly what the shadow engine decides for the same segment (its
 *    sampled_out_segments counter), v4 and v6, both directions, many tuples;
 *  - st_tap_permyriad() turns every --sample PCT (0.01 steps) into the
 *    threshold that keeps exactly the hash values the engine keeps.
 * The BPF program itself is checked against the engine in tests/bpf/test_bpf_policy.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "bpf/connhash.h"
#include "shadow.h"
#include "tap.h"

/* The shadow engine's conn_hash() as it was before it moved to bpf/connhash.h. */
static uint64_t ref_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t ref_conn_hash(const struct st_flow_key *k)
{
	uint64_t h = 0x5348414430574150ull ^ ((uint64_t)k->sport << 16 | k->dport);

	h ^= (uint64_t)k->src.a[0] * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)k->dst.a[0] * 0xc2b2ae3d27d4eb4full;
	if (k->src.family == 6) {
		int i;

		for (i = 1; i < 4; i++)
			h ^= ((uint64_t)k->src.a[i] << 32 | k->dst.a[i]) * (0x165667b19e3779f9ull + i);
	}
	return ref_mix64(h);
}

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* A client -> server key; v6 half the time when both is set. */
static void rand_key(struct st_flow_key *k, int v6)
{
	memset(k, 0, sizeof(*k));
	k->src.family = k->dst.family = v6 ? 6 : 4;
	for (int i = 0; i < (v6 ? 4 : 1); i++) {
		k->src.a[i] = rnd();
		k->dst.a[i] = rnd();
	}
	k->sport = (uint16_t)rnd();
	k->dport = (uint16_t)(rnd() % 3 ? 80 : rnd());
}

static uint64_t key_hash(const struct st_flow_key *k)
{
	return st_conn_hash(k->src.family, k->src.a, k->dst.a, k->sport, k->dport);
}

static void test_golden(void **state)
{
	struct st_flow_key k;
	uint64_t h4, h6;

	memset(&k, 0, sizeof(k));
	k.src.family = k.dst.family = 4;
	inet_pton(AF_INET, "10.1.2.3", &k.src.a[0]);
	inet_pton(AF_INET, "10.0.0.1", &k.dst.a[0]);
	k.sport = 40000;
	k.dport = 80;
	h4 = key_hash(&k);
	k.src.family = k.dst.family = 6;
	inet_pton(AF_INET6, "fd00::1:2", k.src.a);
	inet_pton(AF_INET6, "fd00::1", k.dst.a);
	h6 = key_hash(&k);
	print_message("v4 %#llx v6 %#llx\n", (unsigned long long)h4, (unsigned long long)h6);
	assert_true(h4 == 0x816ef5207fcc7d41ull);
	assert_true(h6 == 0x718fa38c377e0fe2ull);
	/* IPv4: the unused address words are not read */
	k.src.family = k.dst.family = 4;
	inet_pton(AF_INET, "10.1.2.3", &k.src.a[0]);
	inet_pton(AF_INET, "10.0.0.1", &k.dst.a[0]);
	assert_true(key_hash(&k) == h4);
}

static void test_same_as_before(void **state)
{
	struct st_flow_key k;

	for (int i = 0; i < 200000; i++) {
		rand_key(&k, i & 1);
		if (key_hash(&k) != ref_conn_hash(&k))
			fail_msg("tuple %d: hash differs from the engine's former conn_hash", i);
	}
}

/* Every PCT the command line takes (0.01 .. 100 in 0.01 steps, and between): the
 * kernel's integer threshold keeps exactly the hash values the engine's double keeps. */
static void test_permyriad(void **state)
{
	for (int step = 1; step <= 10000; step++) {
		double pcts[3] = { step / 100.0, step / 100.0 - 0.001, step / 100.0 + 0.004 };

		for (int j = 0; j < 3; j++) {
			double pct = pcts[j];
			uint32_t p = st_tap_permyriad(pct);

			if (pct <= 0 || pct > 100)
				continue;
			for (uint64_t m = 0; m < 10000; m++) {
				int user_in = !((double)m >= pct * 100);

				if (user_in != st_conn_sampled_in(m, p))
					fail_msg("pct %.4f m %llu: user %d kernel %d (permyriad %u)", pct,
						 (unsigned long long)m, user_in, !user_in, p);
			}
		}
	}
	assert_int_equal(st_tap_permyriad(100), ST_SAMPLE_ALL);
	assert_int_equal(st_tap_permyriad(0), ST_SAMPLE_ALL); /* as the engine: 0 = all */
	assert_int_equal(st_tap_permyriad(10), 1000);
	assert_int_equal(st_tap_permyriad(0.01), 1);
}

/* The kernel's decision for a segment as the BPF program makes it: ingress (dir IN) the
 * wire tuple is client -> server; egress (dir OUT) it is swapped. */
static int kernel_sampled_out(const struct st_segment *s, uint32_t permyriad)
{
	const struct st_flow_key *k = &s->key;
	uint64_t h;

	if (s->dir == ST_DIR_OUT)
		h = st_conn_hash(k->src.family, k->dst.a, k->src.a, k->dport, k->sport);
	else
		h = st_conn_hash(k->src.family, k->src.a, k->dst.a, k->sport, k->dport);
	return !st_conn_sampled_in(h, permyriad);
}

static void test_kernel_equals_engine(void **state)
{
	static const double pcts[] = { 0.01, 1, 10, 33.33, 50, 99.99 };
	static const uint16_t ports[] = { 80 };

	for (size_t pi = 0; pi < sizeof(pcts) / sizeof(pcts[0]); pi++) {
		struct st_shadow_config cfg;
		struct st_shadow_stats st;
		struct st_shadow *sh;
		char err[128];
		uint64_t before = 0;
		unsigned in = 0, n = 0;

		memset(&cfg, 0, sizeof(cfg));
		/* never connected to: only SYNs are fed */
		assert_int_equal(st_shadow_parse_target("127.0.0.1:9", &cfg.targets[0], err,
							sizeof(err)), 0);
		cfg.n_targets = 1;
		cfg.sample_pct = pcts[pi];
		cfg.ports = ports;
		cfg.n_ports = 1;
		sh = st_shadow__new(&cfg);
		assert_non_null(sh);
		for (int i = 0; i < 4000; i++, n++) {
			struct st_flow_key k;
			struct st_segment s;
			int dir = (i >> 1) & 1, kout;

			rand_key(&k, i & 1);
			memset(&s, 0, sizeof(s));
			s.kind = ST_SEG_DATA;
			s.dir = (int8_t)dir;
			s.ts_ns = 1000000000ull + (uint64_t)i;
			if (dir == ST_DIR_IN) {
				s.key = k;
				s.flags = ST_TCP_SYN;
			} else {
				s.key.src = k.dst;
				s.key.dst = k.src;
				s.key.sport = k.dport;
				s.key.dport = k.sport;
				s.flags = ST_TCP_SYN | ST_TCP_ACK;
			}
			kout = kernel_sampled_out(&s, st_tap_permyriad(pcts[pi]));
			st_shadow__feed(sh, &s);
			st_shadow__stats(sh, &st);
			if ((int)(st.sampled_out_segments - before) != kout)
				fail_msg("pct %.2f tuple %d (v%d, dir %d): engine %s, kernel %s", pcts[pi],
					 i, i & 1 ? 6 : 4, dir,
					 st.sampled_out_segments - before ? "out" : "in",
					 kout ? "out" : "in");
			before = st.sampled_out_segments;
			in += !kout;
		}
		print_message("--sample %.2f: %u of %u in\n", pcts[pi], in, n);
		/* and the share is about right: not all in, not all out */
		if (pcts[pi] >= 1 && pcts[pi] <= 99)
			assert_true(in > n * pcts[pi] / 200 && in < n * pcts[pi] / 50 + 20);
		st_shadow__free(sh);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_same_as_before),
		cmocka_unit_test(test_permyriad),
		cmocka_unit_test(test_kernel_equals_engine),
	};

	return cmocka_run_group_tests_name("connhash", tests, NULL, NULL);
}
