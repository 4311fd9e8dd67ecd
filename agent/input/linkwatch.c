/* SPDX-License-Identifier: GPL-2.0-only */
/* Following one network interface through rtnetlink (see linkwatch.h). */
#include "linkwatch.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Link messages are small (~1 KiB); a host with many containers makes bursts of them. */
#define LW_RCVBUF (1 << 20)
#define LW_BUF (64 * 1024)

struct st_linkwatch {
	int fd;
	int ifindex; /* followed; 0 while gone */
	char name[IF_NAMESIZE];
	st_linkwatch_fn fn;
	void *ctx;
	char buf[LW_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
};

void st_linkwatch_parse(const void *buf, size_t len, const char *name, int *ifindex,
			st_linkwatch_fn fn, void *ctx)
{
	const struct nlmsghdr *nh = buf;
	int rem = len > (size_t)1 << 30 ? 1 << 30 : (int)len;

	for (; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
		const struct ifinfomsg *ifi;
		const struct rtattr *rta;
		const char *ifname = NULL;
		int alen, old;

		if (nh->nlmsg_type != RTM_NEWLINK && nh->nlmsg_type != RTM_DELLINK)
			continue;
		if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
			continue;
		ifi = NLMSG_DATA(nh);
		alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
		for (rta = IFLA_RTA(ifi); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
			size_t plen = RTA_PAYLOAD(rta);

			if (rta->rta_type == IFLA_IFNAME && plen &&
			    strnlen(RTA_DATA(rta), plen) < plen)
				ifname = RTA_DATA(rta);
		}
		if (nh->nlmsg_type == RTM_DELLINK) {
			/* deleted, or moved to another namespace: either way, no longer here */
			if (*ifindex && ifi->ifi_index == *ifindex) {
				old = *ifindex;
				*ifindex = 0;
				fn(ctx, ST_LINK_GONE, old);
			}
		} else if (!*ifindex && ifi->ifi_index > 0 && ifname && !strcmp(ifname, name)) {
			/* created, moved in, or renamed to the name: the one to follow now */
			*ifindex = ifi->ifi_index;
			fn(ctx, ST_LINK_BACK, *ifindex);
		}
		/* anything else (flags, a rename of the followed device, other devices): nothing */
	}
}

/* Messages were lost (ENOBUFS): take the state from what exists now. */
static void resync(struct st_linkwatch *lw)
{
	char name[IF_NAMESIZE];
	int now, old;

	if (lw->ifindex && !if_indextoname((unsigned)lw->ifindex, name)) {
		old = lw->ifindex;
		lw->ifindex = 0;
		lw->fn(lw->ctx, ST_LINK_GONE, old);
	}
	if (!lw->ifindex && (now = (int)if_nametoindex(lw->name)) > 0) {
		lw->ifindex = now;
		lw->fn(lw->ctx, ST_LINK_BACK, now);
	}
}

struct st_linkwatch *st_linkwatch__new(const char *name, int ifindex, st_linkwatch_fn fn,
				       void *ctx)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	struct st_linkwatch *lw;
	int rcvbuf = LW_RCVBUF, err;

	if (strlen(name) >= IF_NAMESIZE) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	lw = calloc(1, sizeof(*lw));
	if (!lw)
		return NULL;
	strcpy(lw->name, name);
	lw->ifindex = ifindex;
	lw->fn = fn;
	lw->ctx = ctx;
	lw->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (lw->fd < 0)
		goto fail;
	/* best effort: the default is small, and an overflow only costs a resync */
	setsockopt(lw->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(lw->fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	return lw;
fail:
	err = errno;
	st_linkwatch__free(lw);
	errno = err;
	return NULL;
}

int st_linkwatch__fd(const struct st_linkwatch *lw)
{
	return lw->fd;
}

int st_linkwatch__ifindex(const struct st_linkwatch *lw)
{
	return lw->ifindex;
}

int st_linkwatch__read(struct st_linkwatch *lw)
{
	for (;;) {
		struct sockaddr_nl from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(lw->fd, lw->buf, sizeof(lw->buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == ENOBUFS) {
				resync(lw);
				continue;
			}
			return -errno;
		}
		if (!n)
			return 0;
		if (flen != sizeof(from) || from.nl_pid != 0)
			continue; /* only the kernel speaks for the links */
		st_linkwatch_parse(lw->buf, (size_t)n, lw->name, &lw->ifindex, lw->fn, lw->ctx);
	}
}

void st_linkwatch__free(struct st_linkwatch *lw)
{
	if (!lw)
		return;
	if (lw->fd >= 0)
		close(lw->fd);
	free(lw);
}
