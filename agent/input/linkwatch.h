/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Watches one network interface through rtnetlink (a NETLINK_ROUTE socket subscribed to
 * RTMGRP_LINK): says when the interface being followed goes away (deleted, or moved to another
 * namespace: RTM_DELLINK for its ifindex) and when an interface of its name appears again
 * (RTM_NEWLINK with that IFLA_IFNAME: created, or renamed to it), with its new ifindex.
 *
 * The device is followed, not the name: renaming the followed interface changes nothing (the
 * programs stay on it). Only once it is gone does the name matter. When the socket overflowed
 * (ENOBUFS: events were lost), the state is taken again from if_nametoindex().
 */
#ifndef ST_LINKWATCH_H
#define ST_LINKWATCH_H

#include <stdbool.h>
#include <stddef.h>

enum st_link_event {
	ST_LINK_GONE = 1, /* the followed interface went away (ifindex: the one it had) */
	ST_LINK_BACK,     /* an interface of the name appeared (ifindex: its new one) */
};

/* Called for each change, in order (a delete and a create read together give both). */
typedef void (*st_linkwatch_fn)(void *ctx, enum st_link_event ev, int ifindex);

struct st_linkwatch;

/* Follows ifindex, named name. NULL with errno set (socket, bind). */
struct st_linkwatch *st_linkwatch__new(const char *name, int ifindex, st_linkwatch_fn fn,
				       void *ctx);
/* Readable when link messages wait: add it to the event loop. */
int st_linkwatch__fd(const struct st_linkwatch *lw);
/* Reads every waiting message (non-blocking) and calls fn per change. 0 or -errno. */
int st_linkwatch__read(struct st_linkwatch *lw);
/* The ifindex followed now, 0 while the interface is gone. */
int st_linkwatch__ifindex(const struct st_linkwatch *lw);
void st_linkwatch__free(struct st_linkwatch *lw);

/*
 * The message parser, on its own for tests: feeds one buffer of netlink messages to the state
 * (*ifindex followed, 0 when gone) and calls fn per change. Malformed messages are skipped.
 */
void st_linkwatch_parse(const void *buf, size_t len, const char *name, int *ifindex,
			st_linkwatch_fn fn, void *ctx);

#endif /* ST_LINKWATCH_H */
