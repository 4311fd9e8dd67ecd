/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The keyed connection map: one entry per connection 4-tuple (either
 * direction: keys are canonicalised), with a small value for the user, a
 * seeded hash (the 4-tuples come from the network: whoever sends the traffic
 * chooses them, so a fixed hash would let them pile every key into one chain)
 * and a bound on the number of entries.
 *
 * At the bound, what happens is the user's choice (st_connmap_config.evict):
 *  - evict: the least recently used entry that is not pinned makes room (an
 *    LRU through agent/base/list.h). Pinned entries (st_connmap__pin) are never
 *    evicted: a user pins what it must not forget while it is in use (flows:
 *    a 4-tuple while one of its connections is open). If every entry is
 *    pinned, the map goes past its bound rather than forget one (the pins'
 *    owners are bounded themselves: reassembly's --max-mem);
 *  - refuse: st_connmap__put() returns -ENOSPC and the map stays as it is
 *    (capture's connection count: a count that stops, marked as capped).
 *
 * Memory: ~100 bytes per entry (entry + bucket), at most max_entries entries
 * (plus pinned ones past it, above), buckets grown by doubling up to the
 * bound. Lookups and insertions are O(1).
 */
#ifndef ST_CONNMAP_H
#define ST_CONNMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/connhash.h"
#include "list.h"
#include "segment.h"

_Static_assert(sizeof(struct st_flow_key) % 4 == 0, "st_flow_key hashes by 32-bit words");

/* st_mix64 (fmix64) is the one the BPF program shares (bpf/connhash.h). */

/* Orders a key so both directions of one connection compare equal (pads zeroed). */
void st_flow_key_canon(const struct st_flow_key *in, struct st_flow_key *out);
/* Hash of a key as it is (canonicalise first to merge directions); pads must be zero.
 * seed 0 is a fixed, reproducible hash; pass random bits for keys from the network. */
uint64_t st_flow_key_hash_seeded(const struct st_flow_key *k, uint64_t seed);
static inline uint64_t st_flow_key_hash(const struct st_flow_key *k)
{
	return st_flow_key_hash_seeded(k, 0);
}

/* Random bits for a hash seed (getrandom; the clock and pid if it fails). */
uint64_t st_connmap_random_seed(void);

struct st_connmap_config {
	size_t max_entries; /* the bound (>= 1) */
	uint64_t seed;      /* hash seed: random bits for keys from the network */
	bool evict;         /* at the bound: evict the least recently used unpinned entry (else
			     * refuse with -ENOSPC) */
};

/* An entry. key and val are the user's (key read-only); the rest is the map's. */
struct st_connmap_ent {
	struct st_flow_key key;     /* canonical */
	uint32_t pins;
	uint64_t val;               /* the user's value; 0 in a new entry */
	struct st_connmap_ent *hnext;
	struct st_list_head lru;    /* unpinned entries, least recently used first */
};

struct st_connmap_stats {
	uint64_t entries;  /* now */
	uint64_t peak;     /* most entries at once */
	uint64_t evicted;  /* entries evicted to make room */
	uint64_t refused;  /* insertions refused at the bound (refuse mode) */
	uint64_t mem;      /* bytes held now (entries and buckets) */
};

struct st_connmap;

/* NULL with errno on failure. */
struct st_connmap *st_connmap__new(const struct st_connmap_config *cfg);
/* The entry of k's connection (either direction), or NULL. Marks it recently used. */
struct st_connmap_ent *st_connmap__get(struct st_connmap *m, const struct st_flow_key *k);
/*
 * The entry of k's connection, created (val 0) if missing: *e is set and the return is 1
 * when created, 0 when it existed; -ENOSPC at the bound in refuse mode; -ENOMEM. Marks it
 * recently used.
 */
int st_connmap__put(struct st_connmap *m, const struct st_flow_key *k, struct st_connmap_ent **e);
/* While pinned (pins nest), an entry is never evicted. */
void st_connmap__pin(struct st_connmap *m, struct st_connmap_ent *e);
void st_connmap__unpin(struct st_connmap *m, struct st_connmap_ent *e);
size_t st_connmap__count(const struct st_connmap *m);
void st_connmap__stats(const struct st_connmap *m, struct st_connmap_stats *out);
void st_connmap__free(struct st_connmap *m);

#endif /* ST_CONNMAP_H */
