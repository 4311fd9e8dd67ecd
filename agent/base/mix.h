/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * st_mix64: MurmurHash3's 64-bit finaliser, the agent's one integer mixer (hash tables,
 * sampling, sums). No libc, fixed-width types: it builds under clang -target bpf and gcc
 * alike, and bpf/connhash.h includes it, so the kernel's connection hash and the agent's
 * are the same function.
 */
#ifndef ST_MIX_H
#define ST_MIX_H

#include <linux/types.h>

static inline __attribute__((always_inline)) __u64 st_mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

#endif /* ST_MIX_H */
