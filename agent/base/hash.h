/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * FNV-1a, 64 bits: the one string and byte-run hash of the agent's own tables and sums
 * (compare's endpoints, fields and samples, JSON values). Not seeded: for what the agent
 * makes up itself or reads from its own files, never for keys an attacker picks from the
 * network (st_flow_key_hash_seeded() in connmap.h). Finalise with st_mix64 (mix.h) where the
 * low bits index a table.
 */
#ifndef ST_HASH_H
#define ST_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "mix.h"

#define ST_FNV1A_INIT 0xcbf29ce484222325ull

static inline uint64_t st_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#endif /* ST_HASH_H */
