/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TCP stream reassembly (see reasm.h for the contract).
 *
 * Layout: a chained hash table keyed by the unordered 4-tuple; two LRU lists
 * (open connections, closed ones lingering to absorb stray ACK/FIN), oldest
 * first, which give idle timeouts and eviction order in O(1) per connection;
 * a list of connections with a hole, scanned on each timer tick. Each
 * direction keeps its next expected sequence number and a sorted list of
 * out-of-order pieces that never overlap each other.
 *
 * Positions inside a stream are 64-bit offsets; a sequence number is mapped
 * to one by its signed 32-bit distance from the next expected byte, which is
 * what makes wrap-around a non-event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flowset.h"
#include "list.h"
#include "reasm.h"

enum conn_state {
	CONN_OPEN = 0,
	CONN_CLOSED, /* events done; the 4-tuple lingers to absorb late segments */
};

struct chunk {
	struct chunk *next;
	uint64_t off;
	uint64_t ts;
	uint32_t len;
	uint8_t lost; /* a capture-loss marker: no bytes, becomes a gap when reached */
	uint8_t elided; /* ... of bytes the capture's copy policy left out (ST_GAP_ELIDED) */
	uint8_t data[];
};

struct half {
	uint32_t next_seq;   /* sequence number of the byte at next_off */
	uint32_t isn;        /* valid when syn */
	uint64_t next_off;   /* stream offset of the next byte to hand over */
	uint64_t hint_off;   /* bytes are known to exist up to here (seen ahead, acked, FIN) */
	uint64_t fin_off;    /* valid when fin */
	uint64_t progress_ts; /* last time the network (not a gap) moved next_off */
	uint64_t hint_ts;    /* when hint_off last rose with nothing buffered beyond next_off */
	struct chunk *head, *tail;
	uint32_t ooo_bytes;
	uint32_t ooo_n;
	uint32_t oow_next;   /* the byte after the last out-of-window segment */
	uint32_t oow_run;    /* out-of-window segments in a row, each following the last */
	uint8_t started, syn, fin, ended;
	uint8_t oow_valid;
	uint8_t no_payload;  /* copy policy "none": every byte of this direction is elided */
};

struct conn {
	struct st_reasm_conn pub;
	struct conn *hnext;
	struct st_list_head lru;  /* open or closed list, by state, least recent first */
	struct st_list_head pend; /* connections with a hole */
	uint64_t last_ts;
	uint64_t hash;
	uint8_t state;
	uint8_t pending;
	struct half h[2];
};


struct st_reasm {
	struct st_reasm_config cfg;
	struct st_reasm_ops ops;
	void *ctx;
	struct conn **tab;
	size_t tab_size; /* power of two */
	size_t n_conns;  /* in the table: open and closed */
	struct st_list_head open, closed;
	struct st_list_head pend; /* unordered */
	uint64_t now;
	uint64_t next_tick;
	uint64_t tick_ns;
	uint64_t next_id;
	struct st_reasm_stats st;
};

#define TAB_MIN 1024u
/* Out-of-window segments in a row, each continuing the last, that prove a stream out there. */
#define OOW_RESYNC_RUN 4
/* A longer payload is not a TCP segment: reject it before it can confuse the arithmetic. */
#define SEG_LEN_MAX (1u << 30)

static void mem_add(struct st_reasm *r, size_t n)
{
	r->st.mem += n;
	if (r->st.mem > r->st.mem_peak)
		r->st.mem_peak = r->st.mem;
}

static void mem_sub(struct st_reasm *r, size_t n)
{
	r->st.mem -= n;
}

/* ---- hashing and the table -------------------------------------------- */


static uint64_t ep_hash(const struct st_addr *a, uint16_t port, uint64_t seed)
{
	uint64_t h = seed ^ ((uint64_t)port << 8) ^ a->family;

	h = st_mix64(h ^ (((uint64_t)a->a[0] << 32) | a->a[1]));
	return st_mix64(h ^ (((uint64_t)a->a[2] << 32) | a->a[3]));
}

/* The same for both directions of a connection. */
static uint64_t key_hash(const struct st_flow_key *k, uint64_t seed)
{
	return st_mix64(ep_hash(&k->src, k->sport, seed) + ep_hash(&k->dst, k->dport, seed));
}

static bool addr_eq(const struct st_addr *x, const struct st_addr *y)
{
	return x->family == y->family && x->a[0] == y->a[0] && x->a[1] == y->a[1] &&
	       x->a[2] == y->a[2] && x->a[3] == y->a[3];
}

/* 0: k goes client -> server, 1: server -> client, -1: another connection. */
static int key_dir(const struct st_flow_key *ck, const struct st_flow_key *k)
{
	if (ck->sport == k->sport && ck->dport == k->dport && addr_eq(&ck->src, &k->src) &&
	    addr_eq(&ck->dst, &k->dst))
		return ST_DIR_IN;
	if (ck->sport == k->dport && ck->dport == k->sport && addr_eq(&ck->src, &k->dst) &&
	    addr_eq(&ck->dst, &k->src))
		return ST_DIR_OUT;
	return -1;
}

static struct conn *tab_find(struct st_reasm *r, const struct st_flow_key *k, uint64_t h,
			     int *dir)
{
	struct conn *c;

	for (c = r->tab[h & (r->tab_size - 1)]; c; c = c->hnext) {
		if (c->hash != h)
			continue;
		*dir = key_dir(&c->pub.key, k);
		if (*dir >= 0)
			return c;
	}
	return NULL;
}

static void tab_grow(struct st_reasm *r)
{
	size_t n = r->tab_size * 2, i;
	struct conn **t = calloc(n, sizeof(*t));

	if (!t)
		return; /* longer chains, still correct */
	for (i = 0; i < r->tab_size; i++) {
		struct conn *c = r->tab[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			c->hnext = t[c->hash & (n - 1)];
			t[c->hash & (n - 1)] = c;
		}
	}
	free(r->tab);
	mem_sub(r, r->tab_size * sizeof(*t));
	mem_add(r, n * sizeof(*t));
	r->tab = t;
	r->tab_size = n;
}

static void tab_insert(struct st_reasm *r, struct conn *c)
{
	struct conn **b;

	if (r->n_conns >= r->tab_size)
		tab_grow(r);
	b = &r->tab[c->hash & (r->tab_size - 1)];
	c->hnext = *b;
	*b = c;
	r->n_conns++;
}

static void tab_remove(struct st_reasm *r, struct conn *c)
{
	struct conn **p = &r->tab[c->hash & (r->tab_size - 1)];

	for (; *p; p = &(*p)->hnext) {
		if (*p == c) {
			*p = c->hnext;
			r->n_conns--;
			return;
		}
	}
}

/* ---- lists --------------------------------------------------------------- */

/* The least recently active connection of a list, or NULL. */
static struct conn *lru_first(struct st_list_head *l)
{
	return st_list_empty(l) ? NULL : st_list_first_entry(l, struct conn, lru);
}

static void pend_set(struct st_reasm *r, struct conn *c, bool on)
{
	if (on == !!c->pending)
		return;
	if (on)
		st_list_add(&c->pend, &r->pend);
	else
		st_list_del_init(&c->pend);
	c->pending = on;
}

static bool half_has_hole(const struct half *h)
{
	return h->started && !h->ended && h->hint_off > h->next_off;
}

static void pend_update(struct st_reasm *r, struct conn *c)
{
	pend_set(r, c, c->state == CONN_OPEN && (half_has_hole(&c->h[0]) ||
						 half_has_hole(&c->h[1])));
}

/* ---- delivery ------------------------------------------------------------ */

static void deliver(struct st_reasm *r, struct conn *c, int d, const uint8_t *data, uint32_t len,
		    uint64_t ts)
{
	struct half *h = &c->h[d];

	if (r->ops.data)
		r->ops.data(r->ctx, &c->pub, d, h->next_off, data, len, ts);
	h->next_off += len;
	h->next_seq += len;
	if (h->hint_off < h->next_off)
		h->hint_off = h->next_off;
	c->pub.bytes[d] += len;
	r->st.bytes += len;
}

static void emit_gap(struct st_reasm *r, struct conn *c, int d, uint64_t len,
		     enum st_reasm_gap_why why)
{
	struct half *h = &c->h[d];

	if (!len)
		return;
	if (r->ops.gap)
		r->ops.gap(r->ctx, &c->pub, d, h->next_off, len, why, r->now);
	h->next_off += len;
	h->next_seq += (uint32_t)len;
	if (h->hint_off < h->next_off)
		h->hint_off = h->next_off;
	if (why == ST_GAP_ELIDED) {
		r->st.elided_bytes += len; /* left out on purpose: no gap, no loss */
		return;
	}
	c->pub.gap_bytes[d] += len;
	r->st.gaps++;
	r->st.gap_bytes += len;
	if (why == ST_GAP_LOSS)
		r->st.loss_bytes += len;
}

static void chunk_free(struct st_reasm *r, struct half *h, struct chunk *k)
{
	h->ooo_bytes -= k->lost ? 0 : k->len;
	h->ooo_n--;
	mem_sub(r, sizeof(*k) + (k->lost ? 0 : k->len));
	free(k);
}

/* Hands over every buffered piece that has become contiguous. */
static void drain(struct st_reasm *r, struct conn *c, int d)
{
	struct half *h = &c->h[d];
	struct chunk *k;

	while ((k = h->head) && k->off <= h->next_off) {
		uint64_t end = k->off + k->len;

		if (end > h->next_off) {
			uint32_t skip = (uint32_t)(h->next_off - k->off);

			if (k->lost)
				emit_gap(r, c, d, k->len - skip,
					 k->elided ? ST_GAP_ELIDED : ST_GAP_LOSS);
			else
				deliver(r, c, d, k->data + skip, k->len - skip, k->ts);
		}
		h->head = k->next;
		if (!h->head)
			h->tail = NULL;
		chunk_free(r, h, k);
	}
}

/* Declares the first hole lost and moves on to the bytes after it. False if none. */
static bool skip_hole(struct st_reasm *r, struct conn *c, int d, enum st_reasm_gap_why why)
{
	struct half *h = &c->h[d];
	uint64_t to;

	if (h->head)
		to = h->head->off;
	else if (h->hint_off > h->next_off)
		to = h->hint_off;
	else
		return false;
	emit_gap(r, c, d, to - h->next_off, why);
	drain(r, c, d);
	return true;
}

static void end_half(struct st_reasm *r, struct conn *c, int d, enum st_reasm_end why)
{
	struct half *h = &c->h[d];

	if (h->ended)
		return;
	h->ended = 1;
	if (r->ops.end)
		r->ops.end(r->ctx, &c->pub, d, why, r->now);
}

/* Drops buffered pieces (they can only be beyond a FIN: data after it never counts). */
static void drop_after(struct st_reasm *r, struct half *h, uint64_t off)
{
	struct chunk **p = &h->head, *k;

	h->tail = NULL;
	while ((k = *p)) {
		if (k->off + k->len <= off) {
			h->tail = k;
			p = &k->next;
			continue;
		}
		if (k->off < off) {
			/* keep the part before off: shrink in place */
			uint32_t cut = (uint32_t)(k->off + k->len - off);

			if (!k->lost) {
				r->st.drop_bytes += cut;
				h->ooo_bytes -= cut;
				mem_sub(r, cut);
			}
			k->len -= cut;
			h->tail = k;
			p = &k->next;
			continue;
		}
		*p = k->next;
		if (!k->lost)
			r->st.drop_bytes += k->len;
		chunk_free(r, h, k);
	}
	if (h->hint_off > off)
		h->hint_off = off > h->next_off ? off : h->next_off;
}

/* ---- connection life ----------------------------------------------------- */

static void conn_free(struct st_reasm *r, struct conn *c)
{
	int d;

	tab_remove(r, c);
	st_list_del_init(&c->lru);
	pend_set(r, c, false);
	for (d = 0; d < 2; d++) {
		struct chunk *k = c->h[d].head, *next;

		for (; k; k = next) {
			next = k->next;
			chunk_free(r, &c->h[d], k);
		}
	}
	mem_sub(r, sizeof(*c));
	free(c);
}

/*
 * Delivers what is buffered (holes become gaps), ends both directions and
 * reports the close. FIN and RST leave the 4-tuple lingering; anything else
 * frees it.
 */
static void conn_close(struct st_reasm *r, struct conn *c, enum st_reasm_end why,
		       enum st_reasm_gap_why gwhy)
{
	int d;

	if (c->state != CONN_OPEN)
		return;
	for (d = 0; d < 2; d++) {
		if (!c->h[d].ended)
			while (skip_hole(r, c, d, gwhy))
				;
		end_half(r, c, d, why);
	}
	if (r->ops.close)
		r->ops.close(r->ctx, &c->pub, why, r->now);
	c->pub.user = NULL;
	r->st.conns_active--;
	if (why == ST_END_TIMEOUT)
		r->st.conns_timeout++;
	else if (why == ST_END_EVICTED)
		r->st.conns_evicted++;
	else if (why == ST_END_REUSED)
		r->st.conns_reused++;
	pend_set(r, c, false);
	if (why == ST_END_FIN || why == ST_END_RST) {
		st_list_del_init(&c->lru);
		c->state = CONN_CLOSED;
		st_list_add_tail(&c->lru, &r->closed);
	} else {
		conn_free(r, c);
	}
}

int st_reasm__set_ports(struct st_reasm *r, const uint16_t *ports, size_t n_ports)
{
	uint16_t *p = NULL;

	if (n_ports) {
		p = malloc(n_ports * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memcpy(p, ports, n_ports * sizeof(*p));
	}
	free((void *)r->cfg.ports);
	r->cfg.ports = p;
	r->cfg.n_ports = n_ports;
	return 0;
}

static bool port_listed(const struct st_reasm *r, uint16_t port)
{
	size_t i;

	for (i = 0; i < r->cfg.n_ports; i++)
		if (r->cfg.ports[i] == port)
			return true;
	return false;
}

static bool src_is_client(const struct st_reasm *r, const struct st_segment *s, bool *guessed)
{
	bool sl, dl;

	*guessed = false;
	if (s->dir >= 0)
		return s->dir == ST_DIR_IN;
	if ((s->flags & (ST_TCP_SYN | ST_TCP_ACK)) == ST_TCP_SYN)
		return true;
	if (s->flags & ST_TCP_SYN)
		return false;
	*guessed = true;
	sl = port_listed(r, s->key.sport);
	dl = port_listed(r, s->key.dport);
	return !(sl && !dl);
}

static struct conn *conn_new(struct st_reasm *r, const struct st_segment *s, uint64_t h)
{
	struct conn *c = calloc(1, sizeof(*c));
	bool guessed;

	if (!c)
		return NULL;
	st_list_init(&c->lru);
	st_list_init(&c->pend);
	mem_add(r, sizeof(*c));
	if (src_is_client(r, s, &guessed)) {
		c->pub.key = s->key;
	} else {
		c->pub.key.src = s->key.dst;
		c->pub.key.dst = s->key.src;
		c->pub.key.sport = s->key.dport;
		c->pub.key.dport = s->key.sport;
	}
	if (guessed)
		c->pub.flags |= ST_REASM_F_DIR_GUESSED;
	if (!(s->flags & ST_TCP_SYN))
		c->pub.flags |= ST_REASM_F_JOINED;
	c->pub.id = ++r->next_id;
	c->pub.open_ts = r->now;
	c->hash = h;
	c->last_ts = r->now;
	tab_insert(r, c);
	st_list_add_tail(&c->lru, &r->open);
	r->st.conns++;
	r->st.conns_active++;
	if (c->pub.flags & ST_REASM_F_JOINED)
		r->st.conns_joined++;
	if (r->ops.open)
		r->ops.open(r->ctx, &c->pub, r->now);
	return c;
}

static void half_start(struct st_reasm *r, struct conn *c, int d, uint32_t seq, bool joined)
{
	struct half *h = &c->h[d];

	h->started = 1;
	h->next_seq = seq;
	h->next_off = 0;
	h->hint_off = 0;
	h->progress_ts = r->now;
	if (joined && !(c->pub.flags & ST_REASM_F_JOINED)) {
		c->pub.flags |= ST_REASM_F_JOINED;
		r->st.conns_joined++;
	}
}

static struct chunk *chunk_new(struct st_reasm *r, struct half *h, uint64_t off,
			       const uint8_t *data, uint32_t len, bool lost)
{
	size_t sz = sizeof(struct chunk) + (lost ? 0 : len);
	struct chunk *k = malloc(sz);

	if (!k)
		return NULL;
	k->next = NULL;
	k->off = off;
	k->ts = r->now;
	k->len = len;
	k->lost = lost;
	if (!lost)
		memcpy(k->data, data, len);
	h->ooo_bytes += lost ? 0 : len;
	h->ooo_n++;
	mem_add(r, sz);
	return k;
}

/*
 * Adds [off, off + len) to the sorted out-of-order list, keeping what is
 * there already (first copy wins) and storing only the pieces not yet held.
 * data is NULL for a loss marker (elided: bytes left out by the copy policy).
 */
static void ooo_insert(struct st_reasm *r, struct conn *c, int d, uint64_t off,
		       const uint8_t *data, uint32_t len, bool elided)
{
	struct half *h = &c->h[d];
	struct chunk *prev = NULL, *cur = h->head, *k;
	uint64_t p = off, end = off + len;
	bool lost = !data, differed = false;

	if (h->hint_off < end) {
		if (h->hint_off <= h->next_off && !h->head)
			h->hint_ts = r->now;
		h->hint_off = end;
	}
	if (h->tail && off >= h->tail->off + h->tail->len) {
		prev = h->tail; /* the common case: appended in order after a hole */
		cur = NULL;
	}
	while (p < end) {
		uint64_t cend, piece_end;

		if (cur && cur->off + cur->len <= p) {
			prev = cur;
			cur = cur->next;
			continue;
		}
		if (!cur || cur->off > p) {
			piece_end = cur && cur->off < end ? cur->off : end;
			k = chunk_new(r, h, p, lost ? NULL : data + (p - off),
				      (uint32_t)(piece_end - p), lost);
			if (!k) {
				/* no memory: these bytes become part of a hole, reported later */
				r->st.drop_bytes += piece_end - p;
				p = piece_end;
				continue;
			}
			k->elided = lost && elided;
			k->next = cur;
			if (prev)
				prev->next = k;
			else
				h->head = k;
			if (!cur)
				h->tail = k;
			prev = k;
			p = piece_end;
			continue;
		}
		/* cur holds [cur->off, cend) with cur->off <= p: those bytes are kept as they are */
		cend = cur->off + cur->len;
		piece_end = cend < end ? cend : end;
		if (!lost && !cur->lost) {
			const uint8_t *a = data + (p - off), *b = cur->data + (p - cur->off);
			uint32_t n = (uint32_t)(piece_end - p), i;

			if (memcmp(a, b, n)) {
				for (i = 0; i < n; i++)
					r->st.overlap_bytes += a[i] != b[i];
				differed = true;
			}
		}
		if (!lost)
			r->st.retrans_bytes += piece_end - p;
		p = piece_end;
		prev = cur;
		cur = cur->next;
	}
	if (differed)
		r->st.overlaps++;
}

static bool ooo_full(const struct st_reasm *r, const struct half *h, uint32_t len)
{
	return h->head && (h->ooo_bytes + (uint64_t)len > r->cfg.ooo_max ||
			   h->ooo_n + 1 > r->cfg.ooo_segs);
}

/*
 * Bytes [seq, seq + len) of direction d (data NULL: the capture lost them, or
 * elided them by policy). In-order bytes go straight to the consumer; the rest
 * waits in the list.
 */
static void half_bytes(struct st_reasm *r, struct conn *c, int d, uint32_t seq,
		       const uint8_t *data, uint32_t len, bool elided)
{
	struct half *h = &c->h[d];
	int64_t rel, skip;
	uint64_t off;

again:
	rel = (int32_t)(seq - h->next_seq);
	if (h->ended) {
		if (data) {
			if (rel + (int64_t)len <= 0) {
				r->st.retrans_bytes += len;
			} else {
				r->st.drop_bytes += len;
				r->st.drop_segs++;
			}
		}
		return;
	}
	if (rel + (int64_t)len <= 0) {
		if (data)
			r->st.retrans_bytes += len;
		return;
	}
	if (rel < 0) {
		skip = -rel;
		if (data) {
			r->st.retrans_bytes += (uint64_t)skip;
			data += skip;
		}
		seq += (uint32_t)skip;
		len -= (uint32_t)skip;
		rel = 0;
	}
	if (rel > (int64_t)r->cfg.max_ahead) {
		/*
		 * A stray from an earlier connection, or a loss larger than any window (live
		 * capture: the loss reports lost too). A stray is alone; a real stream out
		 * there goes on, segment after segment: resync after OOW_RESYNC_RUN of them,
		 * or on a stalled stream once out-of-window segments agree with each other.
		 */
		bool near = h->oow_valid && (uint32_t)(seq - h->oow_next + r->cfg.max_ahead) <=
							     2 * r->cfg.max_ahead;

		h->oow_run = h->oow_valid && seq == h->oow_next ? h->oow_run + 1 : 1;
		h->oow_next = seq + len;
		h->oow_valid = 1;
		if (h->oow_run < OOW_RESYNC_RUN &&
		    (!near || r->now - h->progress_ts < r->cfg.gap_wait_ns)) {
			r->st.oow_segs++;
			r->st.drop_segs++;
			if (data)
				r->st.drop_bytes += len;
			return;
		}
		while (h->head)
			skip_hole(r, c, d, ST_GAP_WAIT);
		h->oow_valid = 0;
		rel = (int32_t)(seq - h->next_seq);
		if (rel > 0)
			emit_gap(r, c, d, (uint64_t)rel, ST_GAP_WAIT);
		goto again;
	}
	off = h->next_off + (uint64_t)rel;
	if (h->fin && off + len > h->fin_off) {
		uint64_t cut = off >= h->fin_off ? len : off + len - h->fin_off;

		if (data) {
			r->st.drop_bytes += cut;
			if (cut == len)
				r->st.drop_segs++;
		}
		len -= (uint32_t)cut;
		if (!len)
			return;
	}
	if (rel == 0 && (!h->head || off + len <= h->head->off)) {
		if (data) {
			deliver(r, c, d, data, len, r->now);
		} else {
			emit_gap(r, c, d, len, elided ? ST_GAP_ELIDED : ST_GAP_LOSS);
		}
		h->progress_ts = r->now;
		drain(r, c, d);
		return;
	}
	/* (in order but overlapping buffered bytes: merged through the list, no cap check, as
	 * the drain right after frees at least as much as was added) */
	if (rel > 0) {
		if (ooo_full(r, h, data ? len : 0)) {
			/* make room: holes before buffered bytes become gaps, the bytes go out */
			while (ooo_full(r, h, data ? len : 0))
				skip_hole(r, c, d, ST_GAP_OOO_CAP);
			goto again;
		}
		if (data && len > r->cfg.ooo_max) {
			/* alone larger than what may be held: the hole before it is lost */
			emit_gap(r, c, d, (uint64_t)rel, ST_GAP_OOO_CAP);
			goto again;
		}
		r->st.ooo_segments++;
	}
	ooo_insert(r, c, d, off, data, len, elided);
	if (rel == 0) {
		h->progress_ts = r->now;
		drain(r, c, d);
	}
}

static void half_fin(struct st_reasm *r, struct conn *c, int d, uint32_t fin_seq)
{
	struct half *h = &c->h[d];
	int32_t rel;

	if (!h->started)
		half_start(r, c, d, fin_seq, true);
	if (h->fin || h->ended)
		return;
	rel = (int32_t)(fin_seq - h->next_seq);
	if (rel < 0 || (uint32_t)rel > r->cfg.max_ahead)
		return; /* before bytes already handed over, or out of window: not believable */
	h->fin = 1;
	h->fin_off = h->next_off + (uint32_t)rel;
	drop_after(r, h, h->fin_off);
	if (h->hint_off < h->fin_off) {
		if (h->hint_off <= h->next_off && !h->head)
			h->hint_ts = r->now;
		h->hint_off = h->fin_off;
	}
}

/* The peer acknowledged up to ack: bytes before it exist even if we never see them. */
static void half_acked(struct st_reasm *r, struct half *h, uint32_t ack)
{
	int32_t rel;
	uint64_t off;

	if (!h->started || h->ended)
		return;
	rel = (int32_t)(ack - h->next_seq);
	if (rel <= 0 || (uint32_t)rel > r->cfg.max_ahead)
		return;
	/* one beyond everything seen, nothing buffered: the ACK of a FIN the capture lost, far
	 * more often than a lost 1-byte segment; no phantom byte for it */
	if (rel == 1 && !h->head && h->hint_off <= h->next_off)
		return;
	off = h->next_off + (uint32_t)rel;
	if (h->fin && off > h->fin_off)
		off = h->fin_off; /* the ACK of the FIN itself */
	if (off > h->hint_off) {
		if (h->hint_off <= h->next_off && !h->head)
			h->hint_ts = r->now;
		h->hint_off = off;
	}
}

/*
 * Copy policy "none": the bytes of direction d before seq exist (a later
 * segment or, ack, the peer's ACK says so) and were left out on purpose.
 */
static void half_elide_to(struct st_reasm *r, struct conn *c, int d, uint32_t seq, bool ack)
{
	struct half *h = &c->h[d];
	int32_t rel;

	if (!h->started || h->ended)
		return;
	rel = (int32_t)(seq - h->next_seq);
	if (rel <= 0 || (uint32_t)rel > r->cfg.max_ahead)
		return;
	if (h->fin && h->next_off + (uint32_t)rel > h->fin_off)
		rel = (int32_t)(h->fin_off - h->next_off); /* the ACK of the FIN */
	else if (ack && !h->fin && rel == 1)
		return; /* most likely the ACK of a FIN not seen yet (as in half_acked) */
	half_bytes(r, c, d, h->next_seq, NULL, (uint32_t)rel, true);
}

static void conn_segment(struct st_reasm *r, struct conn *c, int d, const struct st_segment *s)
{
	struct half *h = &c->h[d];
	uint32_t seq = s->seq;
	int e;

	if (s->elided_before && s->kind == ST_SEG_DATA) {
		h->no_payload = 1;
		if (!(s->flags & ST_TCP_SYN))
			half_elide_to(r, c, d, s->seq, false);
	}
	if (s->flags & ST_TCP_RST) {
		conn_close(r, c, ST_END_RST, ST_GAP_CLOSE);
		return;
	}
	if (s->kind == ST_SEG_DATA && (s->flags & ST_TCP_SYN)) {
		if (!h->started) {
			half_start(r, c, d, s->seq + 1, false);
			h->syn = 1;
			h->isn = s->seq;
			/* a SYN-ACK tells exactly where the client's bytes start */
			if ((s->flags & ST_TCP_ACK) && !c->h[!d].started) {
				half_start(r, c, !d, s->ack, false);
				/* so the SYN, if it shows up late, is not taken for a new one */
				c->h[!d].syn = 1;
				c->h[!d].isn = s->ack - 1;
			}
		} else if (!h->syn || h->isn != s->seq) {
			r->st.drop_segs++;
			r->st.drop_bytes += s->len;
			return;
		}
		seq = s->seq + 1;
	}
	if (s->len) {
		if (!h->started)
			half_start(r, c, d, seq, true);
		half_bytes(r, c, d, seq, s->kind == ST_SEG_DATA ? s->data : NULL, s->len, false);
	}
	if (s->elided) {
		/* the rest of the segment, left out by the copy policy (headers-only) */
		if (!h->started)
			half_start(r, c, d, seq + s->len, true);
		half_bytes(r, c, d, seq + s->len, NULL, s->elided, true);
	}
	if (s->kind == ST_SEG_DATA && (s->flags & ST_TCP_FIN))
		half_fin(r, c, d, seq + s->len + s->elided);
	if (s->kind == ST_SEG_DATA && (s->flags & ST_TCP_ACK)) {
		if (c->h[!d].no_payload)
			half_elide_to(r, c, !d, s->ack, true);
		half_acked(r, &c->h[!d], s->ack);
	}
	for (e = 0; e < 2; e++) {
		struct half *x = &c->h[e];

		if (x->fin && !x->ended && x->next_off >= x->fin_off)
			end_half(r, c, e, ST_END_FIN);
	}
	if (c->h[0].ended && c->h[1].ended)
		conn_close(r, c, ST_END_FIN, ST_GAP_CLOSE);
	else
		pend_update(r, c);
}

/* A segment for a 4-tuple whose connection is over: absorb it quietly. */
static void closed_segment(struct st_reasm *r, struct conn *c, int d, const struct st_segment *s)
{
	struct half *h = &c->h[d];
	uint32_t seq = s->seq + !!(s->flags & ST_TCP_SYN);

	if (!s->len || s->kind != ST_SEG_DATA)
		return;
	if (h->started && (int32_t)(seq - h->next_seq) + (int64_t)s->len <= 0) {
		r->st.retrans_bytes += s->len;
	} else {
		r->st.drop_segs++;
		r->st.drop_bytes += s->len;
	}
}

/* ---- timers and caps ------------------------------------------------------ */

static uint64_t hole_since(const struct half *h)
{
	uint64_t ev = h->head ? h->head->ts : h->hint_ts;

	return ev > h->progress_ts ? ev : h->progress_ts;
}

static void run_timers(struct st_reasm *r)
{
	struct conn *c, *next;
	int d;

	st_list_for_each_entry_safe(c, next, &r->pend, pend) {
		for (d = 0; d < 2; d++) {
			struct half *h = &c->h[d];

			/* a hole is lost once nothing moved for gap_wait since the bytes after it
			 * (or the ACK proving them) were seen */
			while (half_has_hole(h) && r->now - hole_since(h) >= r->cfg.gap_wait_ns)
				skip_hole(r, c, d, ST_GAP_WAIT);
			if (h->fin && !h->ended && h->next_off >= h->fin_off)
				end_half(r, c, d, ST_END_FIN);
		}
		if (c->h[0].ended && c->h[1].ended)
			conn_close(r, c, ST_END_FIN, ST_GAP_CLOSE);
		else
			pend_update(r, c);
	}
	while ((c = lru_first(&r->open)) && r->now - c->last_ts >= r->cfg.idle_ns)
		conn_close(r, c, ST_END_TIMEOUT, ST_GAP_CLOSE);
	while ((c = lru_first(&r->closed)) && r->now - c->last_ts >= r->cfg.linger_ns)
		conn_free(r, c);
}

static void enforce_mem(struct st_reasm *r)
{
	struct conn *c;

	while (r->st.mem > r->cfg.max_mem) {
		if ((c = lru_first(&r->closed)))
			conn_free(r, c);
		else if ((c = lru_first(&r->open)))
			conn_close(r, c, ST_END_EVICTED, ST_GAP_MEM);
		else
			break;
	}
}

/* ---- API ----------------------------------------------------------------- */

struct st_reasm *st_reasm__new(const struct st_reasm_config *cfg, const struct st_reasm_ops *ops,
			       void *ctx)
{
	struct st_reasm *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (cfg)
		r->cfg = *cfg;
	if (ops)
		r->ops = *ops;
	r->ctx = ctx;
	st_list_init(&r->open);
	st_list_init(&r->closed);
	st_list_init(&r->pend);
	if (!r->cfg.max_mem)
		r->cfg.max_mem = ST_REASM_MAX_MEM_DEFAULT;
	if (!r->cfg.ooo_max) {
		/* A sixteenth of the global cap: a few half-lost streams (ring overflow) turn
		 * their holes into gaps before their buffers evict every other connection. */
		uint64_t m = r->cfg.max_mem / 16;

		r->cfg.ooo_max = (uint32_t)(m < ST_REASM_OOO_MAX_MIN ? ST_REASM_OOO_MAX_MIN :
					    m > ST_REASM_OOO_MAX_DEFAULT ? ST_REASM_OOO_MAX_DEFAULT : m);
	}
	if (!r->cfg.ooo_segs)
		r->cfg.ooo_segs = ST_REASM_OOO_SEGS_DEFAULT;
	if (!r->cfg.idle_ns)
		r->cfg.idle_ns = ST_REASM_IDLE_DEFAULT_NS;
	if (!r->cfg.gap_wait_ns)
		r->cfg.gap_wait_ns = ST_REASM_GAP_WAIT_DEFAULT_NS;
	if (!r->cfg.linger_ns)
		r->cfg.linger_ns = ST_REASM_LINGER_DEFAULT_NS;
	if (!r->cfg.max_ahead)
		r->cfg.max_ahead = ST_REASM_MAX_AHEAD_DEFAULT;
	if (r->cfg.max_ahead > (1u << 30))
		r->cfg.max_ahead = 1u << 30;
	if (r->cfg.n_ports) {
		uint16_t *p = malloc(r->cfg.n_ports * sizeof(*p));

		if (!p) {
			free(r);
			return NULL;
		}
		memcpy(p, cfg->ports, r->cfg.n_ports * sizeof(*p));
		r->cfg.ports = p;
	} else {
		r->cfg.ports = NULL;
	}
	/* timers need not be finer than a quarter of the shortest wait */
	r->tick_ns = r->cfg.gap_wait_ns / 4;
	if (r->tick_ns > 250000000ull)
		r->tick_ns = 250000000ull;
	if (!r->tick_ns)
		r->tick_ns = 1;
	r->tab_size = TAB_MIN;
	r->tab = calloc(r->tab_size, sizeof(*r->tab));
	if (!r->tab) {
		free((void *)r->cfg.ports);
		free(r);
		return NULL;
	}
	mem_add(r, sizeof(*r) + r->tab_size * sizeof(*r->tab));
	return r;
}

static void set_now(struct st_reasm *r, uint64_t ts)
{
	if (ts > r->now)
		r->now = ts;
	if (!r->next_tick)
		r->next_tick = r->now + r->tick_ns;
	if (r->now >= r->next_tick) {
		run_timers(r);
		r->next_tick = r->now + r->tick_ns;
	}
}

int st_reasm__feed(struct st_reasm *r, const struct st_segment *s)
{
	struct conn *c;
	uint64_t h;
	int d = 0;

	r->st.segments++;
	set_now(r, s->ts_ns);
	if (s->len > SEG_LEN_MAX || s->elided > SEG_LEN_MAX ||
	    (s->kind == ST_SEG_DATA && s->len && !s->data) ||
	    s->kind > ST_SEG_LOSS || (s->key.src.family != 4 && s->key.src.family != 6) ||
	    s->key.src.family != s->key.dst.family) {
		r->st.drop_segs++;
		return 0;
	}
	h = key_hash(&s->key, r->cfg.hash_seed);
	c = tab_find(r, &s->key, h, &d);
	if (c && s->kind == ST_SEG_DATA && (s->flags & (ST_TCP_SYN | ST_TCP_ACK)) == ST_TCP_SYN) {
		/* a SYN with a new ISN: the old connection is over (TIME_WAIT reuse) */
		const struct half *x = &c->h[d];

		if (c->state == CONN_CLOSED)
			conn_free(r, c), c = NULL;
		else if (!x->syn || x->isn != s->seq)
			conn_close(r, c, ST_END_REUSED, ST_GAP_CLOSE), c = NULL;
	}
	if (c && c->state == CONN_CLOSED) {
		closed_segment(r, c, d, s);
		return 0;
	}
	if (!c) {
		if (s->flags & ST_TCP_RST) {
			r->st.drop_segs++; /* nothing to reset */
			return 0;
		}
		c = conn_new(r, s, h);
		if (!c) {
			r->st.drop_segs++;
			r->st.drop_bytes += s->kind == ST_SEG_DATA ? s->len : 0;
			return 0;
		}
		d = key_dir(&c->pub.key, &s->key);
	}
	c->last_ts = r->now;
	st_list_move_tail(&c->lru, &r->open);
	conn_segment(r, c, d, s);
	enforce_mem(r);
	return 0;
}

void st_reasm__tick(struct st_reasm *r, uint64_t now_ns)
{
	if (now_ns > r->now)
		r->now = now_ns;
	run_timers(r);
	r->next_tick = r->now + r->tick_ns;
	enforce_mem(r);
}

void st_reasm__foreach(struct st_reasm *r, void (*fn)(void *ctx, struct st_reasm_conn *c),
		       void *ctx)
{
	struct conn *c;

	st_list_for_each_entry(c, &r->open, lru)
		fn(ctx, &c->pub);
}

void st_reasm__flush(struct st_reasm *r)
{
	struct conn *c;

	while ((c = lru_first(&r->open)))
		conn_close(r, c, ST_END_FLUSH, ST_GAP_CLOSE);
	while ((c = lru_first(&r->closed)))
		conn_free(r, c);
}

void st_reasm__stats(const struct st_reasm *r, struct st_reasm_stats *out)
{
	*out = r->st;
}

void st_reasm__free(struct st_reasm *r)
{
	struct conn *c;

	if (!r)
		return;
	while ((c = lru_first(&r->open)))
		conn_free(r, c);
	while ((c = lru_first(&r->closed)))
		conn_free(r, c);
	free(r->tab);
	free((void *)r->cfg.ports);
	free(r);
}

const char *st_reasm_end_str(enum st_reasm_end why)
{
	static const char *const s[ST_END_MAX] = {
		[ST_END_FIN] = "fin", [ST_END_RST] = "rst", [ST_END_TIMEOUT] = "timeout",
		[ST_END_EVICTED] = "evicted", [ST_END_REUSED] = "reused", [ST_END_FLUSH] = "flush",
	};

	return (unsigned)why < ST_END_MAX ? s[why] : "?";
}

const char *st_reasm_gap_str(enum st_reasm_gap_why why)
{
	static const char *const s[ST_GAP_MAX] = {
		[ST_GAP_LOSS] = "capture-loss", [ST_GAP_WAIT] = "timeout",
		[ST_GAP_OOO_CAP] = "ooo-cap", [ST_GAP_MEM] = "mem-cap", [ST_GAP_CLOSE] = "close",
		[ST_GAP_ELIDED] = "elided",
	};

	return (unsigned)why < ST_GAP_MAX ? s[why] : "?";
}
