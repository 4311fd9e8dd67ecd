/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the kernel's socket table says about a live target, at its start: whether anything
 * listens on its ports in this network namespace, and, for a cgroup target, whether those
 * listening sockets are the cgroup's. cgroup_skb programs see a socket by the cgroup it was
 * created in (the kernel stamps it at socket(); accepted connections take their listener's):
 * a service that opened its port and then joined the cgroup (moved by hand, or a unit whose
 * process is adopted later) is not seen at all, whatever the cgroup's processes are now.
 *
 * The listening sockets come from NETLINK_SOCK_DIAG with a state filter, so only listeners
 * are read: bounded whatever the host's connection count, and without privileges. Each
 * carries its cgroup's id (INET_DIAG_CGROUP_ID, Linux 5.9+; 0 when absent). The job runner
 * calls st_sockcheck_target() once attached (job.h: st_job_check_target); nothing here
 * touches what is captured.
 */
#ifndef ST_SOCKCHECK_H
#define ST_SOCKCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "opts.h"

struct st_listener {
	uint16_t port;
	uint8_t family;      /* AF_INET, AF_INET6 */
	uint64_t cgroup_id;  /* the cgroup the socket was created in; 0: not said */
	uint64_t inode;
};

/* Listening TCP sockets (IPv4 and IPv6) on one of ports, in this network namespace: how
 * many were found (at most max filled in) or -errno. */
int st_sockcheck_listeners(const uint16_t *ports, size_t n_ports, struct st_listener *out,
			   size_t max);

/* A cgroup v2 directory's id (what the kernel's INET_DIAG_CGROUP_ID and bpf helpers say):
 * 0 when it cannot be read. */
uint64_t st_sockcheck_cgroup_id(const char *path);

/*
 * One warning per thing wrong with t's ports (each line names what, cmd in front):
 *  - nothing listens on a port (in this network namespace; a cgroup target whose processes
 *    all live in another one is not checked);
 *  - a cgroup target: a port's listening sockets were all created outside the cgroup, and
 *    one is held by a process now in it (it joined after making it: not seen), or none is
 *    (another service's port);
 *  - a cgroup target with no process in it yet.
 * Returns how many warnings were said.
 */
int st_sockcheck_target(const struct st_target *t, const char *cmd);

#endif /* ST_SOCKCHECK_H */
