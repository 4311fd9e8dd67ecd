/* SPDX-License-Identifier: GPL-2.0-only */
/* The keyed connection map (see connmap.h). */
#include "connmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS_MIN 1024u

struct st_connmap {
	struct st_connmap_config cfg;
	struct st_connmap_ent **b; /* chains */
	size_t nb;                 /* buckets: a power of two */
	size_t n;
	struct st_list_head lru;   /* unpinned entries, least recently used first */
	struct st_connmap_stats st;
};

static int endpoint_cmp(const struct st_addr *a, uint16_t ap, const struct st_addr *b, uint16_t bp)
{
	int c = memcmp(a->a, b->a, sizeof(a->a));

	if (c)
		return c;
	return (int)ap - (int)bp;
}

void st_flow_key_canon(const struct st_flow_key *in, struct st_flow_key *out)
{
	memset(out, 0, sizeof(*out));
	if (endpoint_cmp(&in->src, in->sport, &in->dst, in->dport) <= 0) {
		out->src = in->src;
		out->sport = in->sport;
		out->dst = in->dst;
		out->dport = in->dport;
	} else {
		out->src = in->dst;
		out->sport = in->dport;
		out->dst = in->src;
		out->dport = in->sport;
	}
	memset(out->src.pad, 0, sizeof(out->src.pad));
	memset(out->dst.pad, 0, sizeof(out->dst.pad));
}

uint64_t st_flow_key_hash_seeded(const struct st_flow_key *k, uint64_t seed)
{
	/* A multiply-xorshift round per 32-bit word (the key is 44 bytes, hashed once per
	 * lookup), from a seeded state: each round is a bijection of the state, so which keys
	 * share a bucket depends on the seed. */
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ seed;
	uint32_t w;

	for (size_t i = 0; i + 4 <= sizeof(*k); i += 4) {
		memcpy(&w, p + i, 4);
		h ^= w;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return st_mix64(h);
}

uint64_t st_connmap_random_seed(void)
{
	struct timespec ts;
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	clock_gettime(CLOCK_REALTIME, &ts);
	return st_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
			((uint64_t)getpid() << 48));
}

static size_t slot(const struct st_connmap *m, const struct st_flow_key *canon)
{
	return (size_t)st_flow_key_hash_seeded(canon, m->cfg.seed) & (m->nb - 1);
}

struct st_connmap *st_connmap__new(const struct st_connmap_config *cfg)
{
	struct st_connmap *m;

	if (!cfg || !cfg->max_entries) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = *cfg;
	m->nb = BUCKETS_MIN;
	m->b = calloc(m->nb, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return NULL;
	}
	st_list_init(&m->lru);
	m->st.mem = sizeof(*m) + m->nb * sizeof(*m->b);
	return m;
}

static struct st_connmap_ent *find(struct st_connmap *m, const struct st_flow_key *canon,
				   size_t i)
{
	struct st_connmap_ent *e;

	for (e = m->b[i]; e; e = e->hnext)
		if (!memcmp(&e->key, canon, sizeof(*canon)))
			return e;
	return NULL;
}

static void touch(struct st_connmap *m, struct st_connmap_ent *e)
{
	if (!e->pins)
		st_list_move_tail(&e->lru, &m->lru);
}

struct st_connmap_ent *st_connmap__get(struct st_connmap *m, const struct st_flow_key *k)
{
	struct st_flow_key c;
	struct st_connmap_ent *e;

	st_flow_key_canon(k, &c);
	e = find(m, &c, slot(m, &c));
	if (e)
		touch(m, e);
	return e;
}

static void unchain(struct st_connmap *m, struct st_connmap_ent *e)
{
	struct st_connmap_ent **pp = &m->b[slot(m, &e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
}

/* Doubles the buckets while the chains average more than one entry (up to the bound). A
 * failed allocation only leaves the chains longer. */
static void grow(struct st_connmap *m)
{
	size_t nb = m->nb * 2, i;
	struct st_connmap_ent **b, *e, *next;

	if (m->n <= m->nb || m->nb >= m->cfg.max_entries)
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (i = 0; i < m->nb; i++) {
		for (e = m->b[i]; e; e = next) {
			size_t j = (size_t)st_flow_key_hash_seeded(&e->key, m->cfg.seed) & (nb - 1);

			next = e->hnext;
			e->hnext = b[j];
			b[j] = e;
		}
	}
	free(m->b);
	m->st.mem += (nb - m->nb) * sizeof(*b);
	m->b = b;
	m->nb = nb;
}

int st_connmap__put(struct st_connmap *m, const struct st_flow_key *k, struct st_connmap_ent **out)
{
	struct st_connmap_ent *e;
	struct st_flow_key c;
	size_t i;

	st_flow_key_canon(k, &c);
	i = slot(m, &c);
	e = find(m, &c, i);
	if (e) {
		touch(m, e);
		*out = e;
		return 0;
	}
	if (m->n >= m->cfg.max_entries && !m->cfg.evict) {
		m->st.refused++;
		return -ENOSPC;
	}
	e = NULL;
	/* least recently used first, down below the bound (pinned entries may have pushed the
	 * map past it); the last one evicted holds the new key */
	while (m->n >= m->cfg.max_entries && !st_list_empty(&m->lru)) {
		if (e) {
			free(e);
			m->st.mem -= sizeof(*e);
		}
		e = st_list_first_entry(&m->lru, struct st_connmap_ent, lru);
		unchain(m, e);
		st_list_del_init(&e->lru);
		m->n--;
		m->st.evicted++;
	}
	if (!e) {
		e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		m->st.mem += sizeof(*e);
	}
	memset(e, 0, sizeof(*e));
	e->key = c;
	e->hnext = m->b[i];
	m->b[i] = e;
	st_list_init(&e->lru);
	st_list_add_tail(&e->lru, &m->lru);
	m->n++;
	if (m->n > m->st.peak)
		m->st.peak = m->n;
	grow(m);
	*out = e;
	return 1;
}

void st_connmap__pin(struct st_connmap *m, struct st_connmap_ent *e)
{
	if (!e->pins++)
		st_list_del_init(&e->lru);
}

void st_connmap__unpin(struct st_connmap *m, struct st_connmap_ent *e)
{
	if (e->pins && !--e->pins)
		st_list_add_tail(&e->lru, &m->lru);
}

size_t st_connmap__count(const struct st_connmap *m)
{
	return m->n;
}

void st_connmap__stats(const struct st_connmap *m, struct st_connmap_stats *out)
{
	*out = m->st;
	out->entries = m->n;
}

void st_connmap__free(struct st_connmap *m)
{
	struct st_connmap_ent *e, *next;

	if (!m)
		return;
	for (size_t i = 0; i < m->nb; i++)
		for (e = m->b[i]; e; e = next) {
			next = e->hnext;
			free(e);
		}
	free(m->b);
	free(m);
}
