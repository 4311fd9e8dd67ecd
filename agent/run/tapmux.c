/* SPDX-License-Identifier: GPL-2.0-only */
/* Tap sharing between the jobs of one process: see tapmux.h. */
#include "tapmux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/connhash.h"
#include "list.h"
#include "log.h"

struct shared;

struct st_tapsub {
	struct st_list_head node;  /* in shared->subs */
	struct shared *sh;
	struct st_tapsub_spec spec;
	uint32_t permyriad;        /* the job's sample, ST_SAMPLE_ALL for all */
	uint64_t delivered, filtered;
};

/* One loaded program set and its ring, and the jobs on it. */
struct shared {
	struct st_list_head node;  /* in mux->taps */
	struct st_tapmux *mux;
	char *name;                /* the interface or the cgroup path (owned) */
	bool is_iface, tls;
	struct st_target u;        /* the union of the jobs' targets (u.iface/u.cgroup = name) */
	struct st_tap_opts kopts;  /* what it was loaded with */
	unsigned kring_mb;         /* ... its ring's size */
	bool khosts;               /* ... with the peer filter on */
	struct st_tap *tap;
	struct st_list_head subs;
	unsigned n_subs;
	unsigned loads;
};

struct st_tapmux {
	struct st_loop *loop;
	struct st_list_head taps;
};

static uint32_t permyriad_of(const struct st_tap_opts *o)
{
	return o->sample_permyriad && o->sample_permyriad < ST_SAMPLE_ALL ? o->sample_permyriad :
									    ST_SAMPLE_ALL;
}

bool st_tapmux_takes(const struct st_target *t, uint32_t permyriad, const struct st_segment *seg)
{
	const struct st_flow_key *k = &seg->key;
	bool in;

	/* the service's side: ingress carries its port as destination, egress as source */
	if (seg->dir == ST_DIR_IN)
		in = st_opts_port_listed(t->ports, t->n_ports, k->dport);
	else if (seg->dir == ST_DIR_OUT)
		in = st_opts_port_listed(t->ports, t->n_ports, k->sport);
	else
		in = st_opts_port_listed(t->ports, t->n_ports, k->sport) ||
		     st_opts_port_listed(t->ports, t->n_ports, k->dport);
	if (!in)
		return false;
	if (t->n_hosts && !st_cidr_match_any(t->hosts, t->n_hosts, &k->src) &&
	    !st_cidr_match_any(t->hosts, t->n_hosts, &k->dst))
		return false;
	if (permyriad < ST_SAMPLE_ALL) {
		/* the kernel's decision, over client -> server (egress: the service sends) */
		uint64_t h = seg->dir == ST_DIR_OUT ?
			st_conn_hash(k->src.family, k->dst.a, k->src.a, k->dport, k->sport) :
			st_conn_hash(k->src.family, k->src.a, k->dst.a, k->sport, k->dport);

		if (!st_conn_sampled_in(h, permyriad))
			return false;
	}
	return true;
}

void st_tapmux_widen(struct st_tap_opts *out, const struct st_tap_opts *a,
		     const struct st_tap_opts *b)
{
	uint32_t pa = permyriad_of(a), pb = permyriad_of(b);
	struct st_tap_opts r = { 0 };

	r.sample_permyriad = pa > pb ? pa : pb;
	if (r.sample_permyriad >= ST_SAMPLE_ALL)
		r.sample_permyriad = 0;
	for (int d = 0; d < ST_DIR_MAX; d++)
		r.copy[d] = a->copy[d] < b->copy[d] ? a->copy[d] : b->copy[d]; /* FULL < HEAD < NONE */
	r.head_bytes = (a->head_bytes ? a->head_bytes : 256) > (b->head_bytes ? b->head_bytes : 256) ?
			       a->head_bytes : b->head_bytes;
	*out = r;
}

bool st_tapmux_covers(const struct st_tap_opts *a, const struct st_tap_opts *b)
{
	bool head = false;

	if (permyriad_of(a) < permyriad_of(b))
		return false;
	for (int d = 0; d < ST_DIR_MAX; d++) {
		if (a->copy[d] > b->copy[d])
			return false;
		head |= a->copy[d] == ST_COPY_HEAD && b->copy[d] == ST_COPY_HEAD;
	}
	return !head || (a->head_bytes ? a->head_bytes : 256) >= (b->head_bytes ? b->head_bytes : 256);
}

static int dispatch(void *ctx, const struct st_segment *seg)
{
	struct shared *sh = ctx;
	struct st_tapsub *s, *n;
	int ret = 0;

	if (sh->n_subs == 1) {
		/* alone: the kernel's filters are the job's */
		s = st_list_first_entry(&sh->subs, struct st_tapsub, node);
		s->delivered++;
		return s->spec.seg(s->spec.ctx, seg);
	}
	st_list_for_each_entry_safe(s, n, &sh->subs, node) {
		int r;

		/* a loss has no connection of its own to sample by: every job whose port it is */
		if (!st_tapmux_takes(s->spec.t, seg->kind == ST_SEG_LOSS ? ST_SAMPLE_ALL : s->permyriad,
				     seg)) {
			s->filtered++;
			continue;
		}
		s->delivered++;
		r = s->spec.seg(s->spec.ctx, seg);
		if (r < 0 && !ret)
			ret = r;
	}
	return ret;
}

static int drain(struct shared *sh)
{
	struct st_tapsub *s, *n;
	int r = st_tap__consume(sh->tap);

	st_list_for_each_entry_safe(s, n, &sh->subs, node) {
		if (s->spec.batch) {
			int e = s->spec.batch(s->spec.ctx);

			if (e < 0 && r >= 0)
				r = e;
		}
	}
	return r < 0 ? r : 0;
}

static int on_ring(void *ctx)
{
	return drain(ctx);
}

/* The union of the jobs' ports and peers into sh->u (the peer filter only when every job
 * has one), and the widest policy into *o. */
static void unite(struct shared *sh, const struct st_tapsub *extra, struct st_tap_opts *o)
{
	struct st_target *u = &sh->u;
	const struct st_tapsub *s;
	bool all_hosts = true, first = true;

	u->n_ports = 0;
	u->n_hosts = 0;
	u->ring_mb = 0;
	u->exit_on_detach = false;
	memset(o, 0, sizeof(*o));
	for (const struct st_list_head *p = sh->subs.next;; p = p->next) {
		const struct st_target *t;

		if (p == &sh->subs) {
			if (!extra)
				break;
			s = extra;
			extra = NULL;
		} else {
			s = st_list_entry(p, struct st_tapsub, node);
		}
		t = s->spec.t;
		for (size_t i = 0; i < t->n_ports; i++)
			if (!st_opts_port_listed(u->ports, u->n_ports, t->ports[i]) &&
			    u->n_ports < ST_MAX_PORTS_CLI)
				u->ports[u->n_ports++] = t->ports[i];
		all_hosts &= t->n_hosts > 0;
		for (size_t i = 0; i < t->n_hosts && u->n_hosts < ST_MAX_HOSTS_CLI; i++) {
			size_t j;

			for (j = 0; j < u->n_hosts; j++)
				if (u->hosts[j].prefix == t->hosts[i].prefix &&
				    !memcmp(&u->hosts[j].addr, &t->hosts[i].addr, sizeof(t->hosts[i].addr)))
					break;
			if (j == u->n_hosts)
				u->hosts[u->n_hosts++] = t->hosts[i];
		}
		if ((t->ring_mb ? t->ring_mb : ST_RING_MB_DEFAULT) > u->ring_mb)
			u->ring_mb = t->ring_mb ? t->ring_mb : ST_RING_MB_DEFAULT;
		u->exit_on_detach |= t->exit_on_detach;
		if (first) {
			u->attach = t->attach;
			u->tls_mode = t->tls_mode;
			u->keylog = t->keylog;
			u->n_libssl = t->n_libssl;
			memcpy(u->libssl, t->libssl, sizeof(u->libssl));
			u->max_mem = t->max_mem;
			*o = s->spec.opts;
			first = false;
		} else {
			st_tapmux_widen(o, o, &s->spec.opts);
		}
	}
	if (!all_hosts)
		u->n_hosts = 0;
}

static void close_tap(struct shared *sh)
{
	if (!sh->tap)
		return;
	st_loop__del(sh->mux->loop, st_tap__fd(sh->tap));
	st_tap__unwatch(sh->tap, sh->mux->loop);
	st_tap__destroy(sh->tap);
	sh->tap = NULL;
}

/* Loads and attaches sh->u with o. 0 or -errno (after a line). */
static int open_tap(struct shared *sh, const struct st_tap_opts *o, bool verbose)
{
	int err;

	sh->tap = st_tap__open_opts(&sh->u, verbose, o, dispatch, sh);
	if (!sh->tap)
		return -(errno ? errno : EINVAL);
	sh->kopts = *o;
	sh->kring_mb = sh->u.ring_mb;
	sh->khosts = sh->u.n_hosts > 0;
	sh->loads++;
	err = st_loop__add(sh->mux->loop, st_tap__fd(sh->tap), on_ring, sh);
	if (!err) {
		err = st_tap__watch(sh->tap, sh->mux->loop);
		if (err)
			st_loop__del(sh->mux->loop, st_tap__fd(sh->tap));
	}
	if (err) {
		pr_err("%s %s: event loop: %s", sh->is_iface ? "interface" : "cgroup", sh->name,
		       strerror(-err));
		st_tap__destroy(sh->tap);
		sh->tap = NULL;
	}
	return err;
}

/* The maps take sh->u (ports, peers) while attached. A load without the peer filter keeps
 * it off (the jobs check their peers here); one with it needs every job to have peers. */
static int in_place(struct shared *sh)
{
	if (!sh->khosts)
		sh->u.n_hosts = 0;
	else if (!sh->u.n_hosts)
		return -EOPNOTSUPP;
	return st_tap__set_filters(sh->tap, &sh->u);
}

struct st_tapmux *st_tapmux__new(struct st_loop *l)
{
	struct st_tapmux *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = l;
	st_list_init(&m->taps);
	return m;
}

void st_tapmux__free(struct st_tapmux *m)
{
	free(m);
}

static struct shared *find(struct st_tapmux *m, const struct st_target *t)
{
	struct shared *sh;
	const char *name = t->iface ? t->iface : t->cgroup;

	st_list_for_each_entry(sh, &m->taps, node) {
		if (sh->is_iface == !!t->iface && sh->tls == (t->tls || t->n_libssl) &&
		    !sh->u.keylog == !t->keylog && sh->u.tls_mode == t->tls_mode &&
		    !strcmp(sh->name, name))
			return sh;
	}
	return NULL;
}

struct st_tapsub *st_tapmux__join(struct st_tapmux *m, const struct st_tapsub_spec *spec)
{
	const struct st_target *t = spec->t;
	struct st_tapsub *s = calloc(1, sizeof(*s));
	struct shared *sh;
	struct st_tap_opts o;
	bool created = false;
	int err;

	if (!s)
		return NULL;
	s->spec = *spec;
	s->permyriad = permyriad_of(&spec->opts);
	sh = find(m, t);
	if (!sh) {
		sh = calloc(1, sizeof(*sh));
		if (!sh || !(sh->name = strdup(t->iface ? t->iface : t->cgroup))) {
			free(sh);
			free(s);
			errno = ENOMEM;
			return NULL;
		}
		sh->mux = m;
		sh->is_iface = !!t->iface;
		sh->tls = t->tls || t->n_libssl;
		sh->u.tls = sh->tls;
		if (sh->is_iface)
			sh->u.iface = sh->name;
		else
			sh->u.cgroup = sh->name;
		st_list_init(&sh->subs);
		created = true;
	}
	unite(sh, s, &o);
	err = created ? open_tap(sh, &o, spec->verbose) : -EOPNOTSUPP;
	if (!created && st_tapmux_covers(&sh->kopts, &o) && sh->u.ring_mb <= sh->kring_mb) {
		err = in_place(sh);
		if (err && err != -EOPNOTSUPP)
			pr_err("%s %s: updating the filters: %s", sh->is_iface ? "interface" : "cgroup",
			       sh->name, strerror(-err));
	}
	if (!created && err == -EOPNOTSUPP) {
		/* the running load cannot serve the new job: load again, wider */
		pr_warn("%s %s: loading the shared programs again for a wider job (the %u job(s) "
			"on it miss what passes meanwhile)", sh->is_iface ? "interface" : "cgroup",
			sh->name, sh->n_subs);
		drain(sh);
		close_tap(sh);
		err = open_tap(sh, &o, spec->verbose);
		if (err && sh->n_subs) {
			/* the jobs already there get their own load back */
			struct st_tap_opts old;

			unite(sh, NULL, &old);
			if (open_tap(sh, &old, spec->verbose))
				pr_err("%s %s: the %u job(s) on it capture nothing until they restart",
				       sh->is_iface ? "interface" : "cgroup", sh->name, sh->n_subs);
		}
	}
	if (err) {
		if (sh->tap) {
			/* the others keep their filters */
			unite(sh, NULL, &o);
			in_place(sh);
		}
		if (!sh->n_subs) {
			close_tap(sh);
			if (!created)
				st_list_del_init(&sh->node);
			free(sh->name);
			free(sh);
		}
		free(s);
		errno = -err;
		return NULL;
	}
	if (created)
		st_list_add_tail(&sh->node, &m->taps);
	s->sh = sh;
	st_list_add_tail(&s->node, &sh->subs);
	sh->n_subs++;
	return s;
}

void st_tapmux__leave(struct st_tapsub *s)
{
	struct shared *sh;
	struct st_tap_opts o;

	if (!s)
		return;
	sh = s->sh;
	if (sh->tap)
		drain(sh);
	st_list_del_init(&s->node);
	sh->n_subs--;
	if (!sh->n_subs) {
		close_tap(sh);
		st_list_del_init(&sh->node);
		free(sh->name);
		free(sh);
	} else if (sh->tap) {
		/* narrower now: the maps shrink in place; the load stays as wide as it was */
		unite(sh, NULL, &o);
		in_place(sh);
	}
	free(s);
}

int st_tapsub__update(struct st_tapsub *s, const struct st_tap_opts *opts)
{
	struct shared *sh = s->sh;
	struct st_tap_opts o, old = s->spec.opts;
	int err;

	if (!sh->tap)
		return -ENODEV;
	s->spec.opts = *opts;
	unite(sh, NULL, &o);
	if (!st_tapmux_covers(&sh->kopts, &o) || sh->u.ring_mb > sh->kring_mb) {
		s->spec.opts = old;
		unite(sh, NULL, &o);
		return -EOPNOTSUPP;
	}
	err = in_place(sh);
	if (!err)
		s->permyriad = permyriad_of(opts);
	return err;
}

int st_tapmux__consume(struct st_tapmux *m)
{
	struct shared *sh, *n;
	int ret = 0;

	st_list_for_each_entry_safe(sh, n, &m->taps, node) {
		int r = sh->tap ? drain(sh) : 0;

		if (r < 0 && !ret)
			ret = r;
	}
	return ret;
}

void st_tapsub__summary(const struct st_tapsub *s, struct st_tap_summary *out)
{
	st_tap__summary(s && s->sh ? s->sh->tap : NULL, out);
}

unsigned st_tapsub__jobs(const struct st_tapsub *s)
{
	return s->sh->n_subs;
}

unsigned st_tapsub__loads(const struct st_tapsub *s)
{
	return s->sh->loads;
}

void st_tapsub__kernel_opts(const struct st_tapsub *s, struct st_tap_opts *out)
{
	*out = s->sh->kopts;
}

int st_tapsub__copy_whole(struct st_tapsub *s, const struct st_flow_key *k)
{
	return s->sh->tap ? st_tap__copy_whole(s->sh->tap, k) : -ENODEV;
}

int st_tapsub__copy_port_whole(struct st_tapsub *s, uint16_t port)
{
	return s->sh->tap ? st_tap__copy_port_whole(s->sh->tap, port) : -ENODEV;
}

void st_tapsub__counts(const struct st_tapsub *s, uint64_t *delivered, uint64_t *filtered)
{
	*delivered = s->delivered;
	*filtered = s->filtered;
}
