/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Following an interface through rtnetlink (agent/input/linkwatch.c): the parser on crafted
 * RTM_NEWLINK/RTM_DELLINK messages, and the socket against the kernel in a private network
 * namespace (root: skipped without it) with a veth deleted, made again and renamed to the name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linkwatch.h"

struct log {
	char s[512];
};

static void on_ev(void *ctx, enum st_link_event ev, int ifindex)
{
	struct log *l = ctx;
	size_t n = strlen(l->s);

	snprintf(l->s + n, sizeof(l->s) - n, "%s %d;", ev == ST_LINK_GONE ? "gone" : "back",
		 ifindex);
}

/* Appends one link message (type, ifindex, name or NULL) to buf at *len. */
static void msg(uint8_t *buf, size_t *len, uint16_t type, int ifindex, const char *name)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(buf + *len);
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	size_t alen = name ? RTA_LENGTH(strlen(name) + 1) : 0;

	memset(nh, 0, NLMSG_SPACE(sizeof(*ifi) + RTA_ALIGN(alen)));
	nh->nlmsg_len = (uint32_t)NLMSG_LENGTH(sizeof(*ifi) + RTA_ALIGN(alen));
	nh->nlmsg_type = type;
	ifi->ifi_index = ifindex;
	if (name) {
		struct rtattr *rta = IFLA_RTA(ifi);

		rta->rta_type = IFLA_IFNAME;
		rta->rta_len = (unsigned short)alen;
		memcpy(RTA_DATA(rta), name, strlen(name) + 1);
	}
	*len += NLMSG_ALIGN(nh->nlmsg_len);
}

static void t_parse(void **state)
{
	static uint8_t buf[4096] __attribute__((aligned(4)));
	struct log l = { "" };
	size_t len = 0;
	int ifx = 7;

	/* other devices, a flag change of ours, a rename of ours: nothing */
	msg(buf, &len, RTM_NEWLINK, 8, "eth1");
	msg(buf, &len, RTM_DELLINK, 8, "eth1");
	msg(buf, &len, RTM_NEWLINK, 7, "eth0");
	msg(buf, &len, RTM_NEWLINK, 7, "renamed");
	/* while ours exists, another device taking the name changes nothing either */
	msg(buf, &len, RTM_NEWLINK, 9, "eth0");
	/* ours deleted; a create of the name: followed; deleted and made again at once */
	msg(buf, &len, RTM_DELLINK, 7, "renamed");
	msg(buf, &len, RTM_NEWLINK, 11, "eth0");
	msg(buf, &len, RTM_DELLINK, 11, "eth0");
	msg(buf, &len, RTM_NEWLINK, 12, "eth0");
	st_linkwatch_parse(buf, len, "eth0", &ifx, on_ev, &l);
	assert_string_equal(l.s, "gone 7;back 11;gone 11;back 12;");
	assert_int_equal(ifx, 12);

	/* malformed: cut messages, no name, a name without its NUL, a name longer than its attr */
	l.s[0] = 0;
	ifx = 0;
	len = 0;
	msg(buf, &len, RTM_NEWLINK, 5, NULL);
	st_linkwatch_parse(buf, len, "eth0", &ifx, on_ev, &l);
	len = 0;
	msg(buf, &len, RTM_NEWLINK, 5, "eth0");
	st_linkwatch_parse(buf, len - 8, "eth0", &ifx, on_ev, &l); /* cut */
	((struct rtattr *)IFLA_RTA((struct ifinfomsg *)NLMSG_DATA((struct nlmsghdr *)buf)))->rta_len =
		RTA_LENGTH(4); /* "eth0" without its NUL */
	st_linkwatch_parse(buf, len, "eth0", &ifx, on_ev, &l);
	st_linkwatch_parse(buf, 3, "eth0", &ifx, on_ev, &l);
	assert_string_equal(l.s, "");
	assert_int_equal(ifx, 0);
	(void)state;
}

/* The real socket, in a private network namespace: a dummy device deleted and made again. */
static void t_kernel(void **state)
{
	struct log l = { "" };
	struct st_linkwatch *lw;
	int ifx, i;

	if (geteuid() != 0 || unshare(CLONE_NEWNET) ||
	    system("ip link add st-lw0 type veth peer name st-lw9 2>/dev/null")) {
		skip();
		return;
	}
	ifx = (int)if_nametoindex("st-lw0");
	assert_true(ifx > 0);
	lw = st_linkwatch__new("st-lw0", ifx, on_ev, &l);
	assert_non_null(lw);
	assert_int_equal(system("ip link set st-lw0 up && ip link del st-lw0 && "
				"ip link add st-lw1 type veth peer name st-lw8 && "
				"ip link set st-lw1 name st-lw0"), 0);
	for (i = 0; i < 100 && !strstr(l.s, "back"); i++) {
		assert_int_equal(st_linkwatch__read(lw), 0);
		usleep(10000);
	}
	{
		char want[64];

		snprintf(want, sizeof(want), "gone %d;back %u;", ifx, if_nametoindex("st-lw0"));
		assert_string_equal(l.s, want);
	}
	assert_int_equal(st_linkwatch__ifindex(lw), (int)if_nametoindex("st-lw0"));
	st_linkwatch__free(lw);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_parse),
		cmocka_unit_test(t_kernel),
	};

	return cmocka_run_group_tests_name("linkwatch", tests, NULL, NULL);
}
