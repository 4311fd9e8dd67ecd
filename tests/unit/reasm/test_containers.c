/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's containers: the intrusive list (list.h) and the keyed connection map
 * (connmap.c), with its two modes at the bound (evict, refuse) and its pins. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "connmap.h"
#include "flowset.h"
#include "list.h"

struct item {
	int v;
	struct st_list_head node;
};

static void check_order(struct st_list_head *h, const int *want, size_t n)
{
	struct item *it;
	size_t i = 0;

	st_list_for_each_entry(it, h, node) {
		assert_true(i < n);
		assert_int_equal(it->v, want[i]);
		i++;
	}
	assert_int_equal(i, n);
	/* and backwards, through prev */
	for (struct st_list_head *p = h->prev; p != h; p = p->prev)
		assert_int_equal(st_list_entry(p, struct item, node)->v, want[--i]);
}

static void t_list(void **state)
{
	struct st_list_head h = ST_LIST_HEAD_INIT(h);
	struct item it[5], *pos, *tmp;
	int i;

	assert_true(st_list_empty(&h));
	for (i = 0; i < 5; i++) {
		it[i].v = i;
		st_list_init(&it[i].node);
		assert_false(st_list_linked(&it[i].node));
		st_list_add_tail(&it[i].node, &h);
		assert_true(st_list_linked(&it[i].node));
	}
	check_order(&h, (int[]){ 0, 1, 2, 3, 4 }, 5);
	st_list_move_tail(&it[1].node, &h); /* touched: newest */
	check_order(&h, (int[]){ 0, 2, 3, 4, 1 }, 5);
	assert_int_equal(st_list_first_entry(&h, struct item, node)->v, 0);
	assert_int_equal(st_list_last_entry(&h, struct item, node)->v, 1);
	st_list_del_init(&it[3].node);
	assert_false(st_list_linked(&it[3].node));
	check_order(&h, (int[]){ 0, 2, 4, 1 }, 4);
	st_list_add(&it[3].node, &h);
	check_order(&h, (int[]){ 3, 0, 2, 4, 1 }, 5);
	/* deleting while walking */
	st_list_for_each_entry_safe(pos, tmp, &h, node)
		if (pos->v % 2 == 0)
			st_list_del_init(&pos->node);
	check_order(&h, (int[]){ 3, 1 }, 2);
	/* splicing: everything moves, in order, behind what is there; the source is left empty */
	{
		struct st_list_head h2 = ST_LIST_HEAD_INIT(h2);

		st_list_splice_tail_init(&h2, &h); /* empty: nothing changes */
		check_order(&h, (int[]){ 3, 1 }, 2);
		st_list_add_tail(&it[0].node, &h2);
		st_list_add_tail(&it[2].node, &h2);
		st_list_splice_tail_init(&h2, &h);
		assert_true(st_list_empty(&h2));
		check_order(&h, (int[]){ 3, 1, 0, 2 }, 4);
		st_list_splice_tail_init(&h, &h2);
		assert_true(st_list_empty(&h));
		check_order(&h2, (int[]){ 3, 1, 0, 2 }, 4);
		st_list_for_each_entry_safe(pos, tmp, &h2, node)
			st_list_del_init(&pos->node);
	}
	assert_true(st_list_empty(&h));
	(void)state;
}

static struct st_flow_key key(uint32_t a, uint16_t sport)
{
	struct st_flow_key k = { 0 };

	k.src.family = k.dst.family = 4;
	k.src.a[0] = a;
	k.dst.a[0] = 0x0a000001;
	k.sport = sport;
	k.dport = 80;
	return k;
}

static struct st_flow_key reversed(struct st_flow_key k)
{
	struct st_flow_key r = k;

	r.src = k.dst;
	r.dst = k.src;
	r.sport = k.dport;
	r.dport = k.sport;
	return r;
}

static void t_connmap_basic(void **state)
{
	struct st_connmap_config cfg = { .max_entries = 100000, .seed = 42, .evict = true };
	struct st_connmap *m = st_connmap__new(&cfg);
	struct st_connmap_ent *e, *e2;
	struct st_flow_key k = key(0x0b000001, 40000);
	struct st_connmap_stats st;

	assert_non_null(m);
	assert_null(st_connmap__get(m, &k));
	assert_int_equal(st_connmap__put(m, &k, &e), 1);
	assert_int_equal(e->val, 0);
	e->val = 7;
	/* either direction: the same entry */
	k = reversed(k);
	assert_int_equal(st_connmap__put(m, &k, &e2), 0);
	assert_ptr_equal(e, e2);
	assert_ptr_equal(st_connmap__get(m, &k), e);
	assert_int_equal(e2->val, 7);
	/* many: all found again, buckets grew */
	for (uint32_t i = 0; i < 50000; i++) {
		k = key(0x0c000000 + i, (uint16_t)(i * 7));
		assert_int_equal(st_connmap__put(m, &k, &e), 1);
		e->val = i;
	}
	for (uint32_t i = 0; i < 50000; i++) {
		k = key(0x0c000000 + i, (uint16_t)(i * 7));
		e = st_connmap__get(m, &k);
		assert_non_null(e);
		assert_int_equal(e->val, i);
	}
	st_connmap__stats(m, &st);
	assert_int_equal(st.entries, 50001);
	assert_int_equal(st.evicted, 0);
	st_connmap__free(m);
	(void)state;
}

/* At the bound the least recently used unpinned entry goes; memory stays flat however many
 * connections pass (the table flows used for #N grew with every 4-tuple ever seen). */
static void t_connmap_evict(void **state)
{
	struct st_connmap_config cfg = { .max_entries = 1000, .seed = 1, .evict = true };
	struct st_connmap *m = st_connmap__new(&cfg);
	struct st_connmap_ent *e, *pinned;
	struct st_flow_key k;
	struct st_connmap_stats st;
	uint64_t mem_at_bound = 0;

	assert_non_null(m);
	for (uint32_t i = 0; i < 1000; i++) {
		k = key(0x0d000000 + i, 1000);
		assert_int_equal(st_connmap__put(m, &k, &e), 1);
		e->val = i + 1;
	}
	k = key(0x0d000000 + 5, 1000);
	pinned = st_connmap__get(m, &k);
	st_connmap__pin(m, pinned);
	k = key(0x0d000000 + 0, 1000);
	assert_non_null(st_connmap__get(m, &k)); /* 0 used again: 1 is the oldest now */
	k = key(0x0e000000, 1000);
	assert_int_equal(st_connmap__put(m, &k, &e), 1);
	k = key(0x0d000000 + 1, 1000);
	assert_null(st_connmap__get(m, &k));     /* evicted */
	k = key(0x0d000000 + 0, 1000);
	assert_non_null(st_connmap__get(m, &k)); /* kept: used recently */
	st_connmap__stats(m, &st);
	assert_int_equal(st.entries, 1000);
	assert_int_equal(st.evicted, 1);
	mem_at_bound = st.mem;
	/* a million more connections: the pinned one stays, the count and memory do not grow */
	for (uint32_t i = 0; i < 1000000; i++) {
		k = key(0x20000000 + i, (uint16_t)i);
		assert_true(st_connmap__put(m, &k, &e) >= 0);
	}
	k = key(0x0d000000 + 5, 1000);
	assert_ptr_equal(st_connmap__get(m, &k), pinned);
	assert_int_equal(pinned->val, 6);
	st_connmap__stats(m, &st);
	assert_int_equal(st.entries, 1000);
	assert_int_equal(st.mem, mem_at_bound);
	assert_true(st.mem < 1000 * 200 + 64 * 1024);
	/* unpinned, it ages out like the rest */
	st_connmap__unpin(m, pinned);
	for (uint32_t i = 0; i < 1000; i++) {
		k = key(0x30000000 + i, 1);
		assert_true(st_connmap__put(m, &k, &e) >= 0);
	}
	k = key(0x0d000000 + 5, 1000);
	assert_null(st_connmap__get(m, &k));
	st_connmap__free(m);
	(void)state;
}

/* Every entry pinned: the map goes past its bound rather than forget a pinned one. */
static void t_connmap_all_pinned(void **state)
{
	struct st_connmap_config cfg = { .max_entries = 4, .seed = 3, .evict = true };
	struct st_connmap *m = st_connmap__new(&cfg);
	struct st_connmap_ent *e[6];
	struct st_flow_key k;

	assert_non_null(m);
	for (int i = 0; i < 6; i++) {
		k = key(0x0f000000 + (uint32_t)i, 9);
		assert_int_equal(st_connmap__put(m, &k, &e[i]), 1);
		st_connmap__pin(m, e[i]);
	}
	assert_int_equal(st_connmap__count(m), 6);
	for (int i = 0; i < 6; i++)
		st_connmap__unpin(m, e[i]);
	k = key(0x10000000, 9);
	assert_int_equal(st_connmap__put(m, &k, &e[0]), 1); /* back to the bound */
	assert_int_equal(st_connmap__count(m), 4);
	st_connmap__free(m);
	(void)state;
}

static void t_connmap_refuse(void **state)
{
	struct st_connmap_config cfg = { .max_entries = 10, .seed = 9 };
	struct st_connmap *m = st_connmap__new(&cfg);
	struct st_connmap_ent *e;
	struct st_connmap_stats st;
	struct st_flow_key k;

	assert_non_null(m);
	for (uint32_t i = 0; i < 10; i++) {
		k = key(0x11000000 + i, 1);
		assert_int_equal(st_connmap__put(m, &k, &e), 1);
	}
	k = key(0x12000000, 1);
	assert_int_equal(st_connmap__put(m, &k, &e), -ENOSPC);
	k = key(0x11000000 + 3, 1);
	assert_int_equal(st_connmap__put(m, &k, &e), 0); /* known ones still answer */
	st_connmap__stats(m, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.entries, 10);
	st_connmap__free(m);
	(void)state;
}

/* The hash depends on its seed: keys that share a bucket under one seed are spread under
 * another (the old table hashed with a fixed function). */
static void t_connmap_seeded(void **state)
{
	struct st_flow_key a = key(0x0a0a0a0a, 1000), c;
	uint64_t h1 = st_flow_key_hash_seeded(&a, 1), h2 = st_flow_key_hash_seeded(&a, 2);
	int same = 0;

	st_flow_key_canon(&a, &c);
	assert_int_not_equal(h1, h2);
	/* of the keys landing in a's bucket (1024 buckets) under seed 1, few do under seed 2 */
	for (uint32_t i = 0; i < 200000; i++) {
		struct st_flow_key b = key(0x0a0a0a0a, (uint16_t)i), cb;

		b.src.a[0] += i >> 16;
		st_flow_key_canon(&b, &cb);
		if ((st_flow_key_hash_seeded(&cb, 1) & 1023) == (st_flow_key_hash_seeded(&c, 1) & 1023))
			same += (st_flow_key_hash_seeded(&cb, 2) & 1023) ==
				(st_flow_key_hash_seeded(&c, 2) & 1023);
	}
	assert_true(same < 20);
	(void)state;
}

static void t_flowset(void **state)
{
	struct st_flowset *s = st_flowset__new(3);
	struct st_flow_key k;

	assert_non_null(s);
	for (uint32_t i = 0; i < 3; i++) {
		k = key(0x13000000 + i, 1);
		assert_int_equal(st_flowset__add(s, &k), 1);
	}
	k = reversed(key(0x13000000, 1));
	assert_int_equal(st_flowset__add(s, &k), 0);
	assert_false(st_flowset__full(s));
	k = key(0x14000000, 1);
	assert_int_equal(st_flowset__add(s, &k), 0);
	assert_true(st_flowset__full(s));
	assert_int_equal(st_flowset__count(s), 3);
	st_flowset__free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_list),
		cmocka_unit_test(t_connmap_basic),
		cmocka_unit_test(t_connmap_evict),
		cmocka_unit_test(t_connmap_all_pinned),
		cmocka_unit_test(t_connmap_refuse),
		cmocka_unit_test(t_connmap_seeded),
		cmocka_unit_test(t_flowset),
	};

	return cmocka_run_group_tests_name("containers", tests, NULL, NULL);
}
