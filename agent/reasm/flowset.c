/* SPDX-License-Identifier: GPL-2.0-only */
#include "flowset.h"

#include <errno.h>
#include <stdlib.h>

struct st_flowset {
	struct st_connmap *m;
	int full;
};

struct st_flowset *st_flowset__new(size_t max_entries)
{
	struct st_connmap_config cfg = { .max_entries = max_entries, .seed = st_connmap_random_seed() };
	struct st_flowset *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->m = st_connmap__new(&cfg);
	if (!s->m) {
		free(s);
		return NULL;
	}
	return s;
}

int st_flowset__add(struct st_flowset *s, const struct st_flow_key *k)
{
	struct st_connmap_ent *e;
	int r = st_connmap__put(s->m, k, &e);

	if (r == -ENOSPC) {
		/* full: still "known" for a counted connection (put looked it up first) */
		s->full = 1;
		return 0;
	}
	return r;
}

size_t st_flowset__count(const struct st_flowset *s)
{
	return st_connmap__count(s->m);
}

int st_flowset__full(const struct st_flowset *s)
{
	return s->full;
}

void st_flowset__free(struct st_flowset *s)
{
	if (!s)
		return;
	st_connmap__free(s->m);
	free(s);
}
