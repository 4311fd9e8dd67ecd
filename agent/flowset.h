/* SPDX-License-Identifier: GPL-2.0-only */
/* A set of connections (4-tuples, either direction), to count flows. */
#ifndef ST_FLOWSET_H
#define ST_FLOWSET_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/connhash.h"
#include "segment.h"

struct st_flowset;

/* max_entries bounds memory; past it the set stops growing and counts no more. */
struct st_flowset *st_flowset__new(size_t max_entries);
/* 1 if the connection of seg is new, 0 if known or the set is full, -ENOMEM. */
int st_flowset__add(struct st_flowset *s, const struct st_flow_key *k);
size_t st_flowset__count(const struct st_flowset *s);
/* True when the set hit max_entries: count() is then a lower bound. */
int st_flowset__full(const struct st_flowset *s);
void st_flowset__free(struct st_flowset *s);

_Static_assert(sizeof(struct st_flow_key) % 4 == 0, "st_flow_key hashes by 32-bit words");

/* st_mix64 (fmix64) lives with the connection hash the BPF program shares. */

/* Orders a key so both directions of one connection compare equal. */
void st_flow_key_canon(const struct st_flow_key *in, struct st_flow_key *out);
/* Hash of a key as it is (canonicalise first to merge directions); pads must be zero. */
uint64_t st_flow_key_hash(const struct st_flow_key *k);

#endif /* ST_FLOWSET_H */
