/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One intrusive doubly-linked list for the whole agent, in the kernel's shape
 * (include/linux/list.h): a circular list through a head that is itself a
 * node, so insertion and removal never test for the ends. A node is embedded
 * in the object it links (no allocation per element); st_list_entry() gets
 * the object back.
 *
 *	struct conn { struct st_list_head lru; ... };
 *	struct st_list_head lru = ST_LIST_HEAD_INIT(lru);   (or st_list_init(&lru))
 *	st_list_add_tail(&c->lru, &lru);                     (newest last)
 *	st_list_move_tail(&c->lru, &lru);                    (touched: newest again)
 *	oldest = st_list_first_entry(&lru, struct conn, lru);
 *	st_list_for_each_entry_safe(c, tmp, &lru, lru)       (c may be deleted inside)
 *		...
 *
 * A node taken out with st_list_del_init() points to itself, so
 * st_list_linked(node) tells whether it is in a list: an LRU of open files
 * needs no separate "is open" flag. Header-only, no state: usable by every
 * engine (flows' LRUs; reasm's and shadow's lists can move onto it).
 */
#ifndef ST_LIST_H
#define ST_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct st_list_head {
	struct st_list_head *next, *prev;
};

#define ST_LIST_HEAD_INIT(name) { &(name), &(name) }

#define st_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define st_list_entry(ptr, type, member) st_container_of(ptr, type, member)
/* The first (oldest, with add_tail) element; the list must not be empty. */
#define st_list_first_entry(head, type, member) st_list_entry((head)->next, type, member)
#define st_list_last_entry(head, type, member) st_list_entry((head)->prev, type, member)

static inline void st_list_init(struct st_list_head *h)
{
	h->next = h->prev = h;
}

static inline bool st_list_empty(const struct st_list_head *h)
{
	return h->next == h;
}

/* For a node: whether it is in a list (it was initialised or deleted with _init since). */
static inline bool st_list_linked(const struct st_list_head *n)
{
	return n->next != n;
}

static inline void st_list_insert_(struct st_list_head *n, struct st_list_head *prev,
				   struct st_list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}

/* n becomes the first element. */
static inline void st_list_add(struct st_list_head *n, struct st_list_head *head)
{
	st_list_insert_(n, head, head->next);
}

/* n becomes the last element. */
static inline void st_list_add_tail(struct st_list_head *n, struct st_list_head *head)
{
	st_list_insert_(n, head->prev, head);
}

/* Unlinks n and leaves it pointing to itself (st_list_linked() is false). */
static inline void st_list_del_init(struct st_list_head *n)
{
	n->next->prev = n->prev;
	n->prev->next = n->next;
	st_list_init(n);
}

/* Unlinks n from wherever it is and makes it the last element of head. */
static inline void st_list_move_tail(struct st_list_head *n, struct st_list_head *head)
{
	n->next->prev = n->prev;
	n->prev->next = n->next;
	st_list_add_tail(n, head);
}

/* Moves every element of from to the end of to, in order; from is left empty. */
static inline void st_list_splice_tail_init(struct st_list_head *from, struct st_list_head *to)
{
	if (st_list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	st_list_init(from);
}

#define st_list_for_each(pos, head) for (pos = (head)->next; pos != (head); pos = pos->next)

#define st_list_for_each_entry(pos, head, member)                                        \
	for (pos = st_list_entry((head)->next, __typeof__(*pos), member); &pos->member != (head); \
	     pos = st_list_entry(pos->member.next, __typeof__(*pos), member))

/* As above; pos may be unlinked (and freed) in the body. */
#define st_list_for_each_entry_safe(pos, n, head, member)                                 \
	for (pos = st_list_entry((head)->next, __typeof__(*pos), member),                   \
	    n = st_list_entry(pos->member.next, __typeof__(*pos), member);                  \
	     &pos->member != (head);                                                        \
	     pos = n, n = st_list_entry(n->member.next, __typeof__(*n), member))

#endif /* ST_LIST_H */
