/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stable connection hash behind `shadow --sample`, one definition for the
 * BPF program (which samples before it copies anything) and the agent (which
 * samples pcap input, splits target shares, samples by request). No libc,
 * fixed-width types: it builds under clang -target bpf and gcc alike.
 *
 * Stable means: the same connection is in or out on every agent, every run,
 * in the kernel and in user space. tests/unit/base/test_connhash.c pins its values:
 * changing anything here changes which connections every deployed agent picks.
 */
#ifndef SHADOWTAP_CONNHASH_H
#define SHADOWTAP_CONNHASH_H

#include <linux/types.h>

#include "../agent/base/mix.h"

/* sample_permyriad: connections kept per 10000; this many keeps them all. */
#define ST_SAMPLE_ALL 10000u

#define ST_CONNHASH_INLINE static inline __attribute__((always_inline))

/*
 * Hash of a connection oriented client -> server: src/sport are the client's.
 * Addresses are four 32-bit words in network order (IPv4 in [0]; the other
 * words are not read for family 4), ports in host order. One mix: it runs for
 * every segment when sampling.
 */
ST_CONNHASH_INLINE __u64 st_conn_hash(__u8 family, const __u32 *src, const __u32 *dst,
				      __u16 sport, __u16 dport)
{
	__u64 h = 0x5348414430574150ull ^ ((__u64)sport << 16 | dport);

	h ^= (__u64)src[0] * 0x9e3779b97f4a7c15ull;
	h ^= (__u64)dst[0] * 0xc2b2ae3d27d4eb4full;
	if (family == 6) {
		for (int i = 1; i < 4; i++)
			h ^= ((__u64)src[i] << 32 | dst[i]) * (0x165667b19e3779f9ull + (__u64)i);
	}
	return st_mix64(h);
}

/* The sampling decision: in when hash % 10000 < permyriad (ST_SAMPLE_ALL: all). */
ST_CONNHASH_INLINE int st_conn_sampled_in(__u64 hash, __u32 permyriad)
{
	return hash % 10000 < permyriad;
}

#endif /* SHADOWTAP_CONNHASH_H */
