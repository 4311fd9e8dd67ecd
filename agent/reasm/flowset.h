/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A set of connections (4-tuples, either direction), to count flows: the
 * connection map (connmap.h) in its refusing mode. Past max_entries the set
 * stops growing and counts no more (full() says so: the count is then a lower
 * bound); it never forgets a connection it counted.
 */
#ifndef ST_FLOWSET_H
#define ST_FLOWSET_H

#include <stddef.h>
#include <stdint.h>

#include "connmap.h"
#include "segment.h"

struct st_flowset;

/* max_entries bounds memory (~100 bytes each). Hashing is seeded with random bits. */
struct st_flowset *st_flowset__new(size_t max_entries);
/* 1 if the connection of k is new, 0 if known or the set is full, -ENOMEM. */
int st_flowset__add(struct st_flowset *s, const struct st_flow_key *k);
size_t st_flowset__count(const struct st_flowset *s);
/* True when the set hit max_entries: count() is then a lower bound. */
int st_flowset__full(const struct st_flowset *s);
void st_flowset__free(struct st_flowset *s);

#endif /* ST_FLOWSET_H */
