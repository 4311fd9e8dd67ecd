/* SPDX-License-Identifier: GPL-2.0-only */
/* A live target's listening sockets, checked at its start (sockcheck.h). */
#include "sockcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tlsfind.h"

#define LISTENERS_MAX 4096  /* listening sockets on the target's ports, read at most */
#define CG_DIRS_MAX 4096    /* a cgroup's descendants whose ids are taken */
#define CG_PIDS_MAX 256     /* processes of a cgroup looked at */
#define PID_FDS_MAX 8192    /* descriptors of one process looked at */
#define DIAG_TIMEOUT_MS 1000
#define TCP_STATE_LISTEN 10 /* the kernel's TCP_LISTEN (include/net/tcp_states.h) */

static bool port_listed(const uint16_t *ports, size_t n, uint16_t p)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++)
		if (ports[i] == p)
			return true;
	return false;
}

/* One family's listeners into out[*n..]; *found counts past max too. 0 or -errno. */
static int dump_family(int fd, uint8_t family, const uint16_t *ports, size_t n_ports,
		       struct st_listener *out, size_t max, size_t *found)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = family },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = 1u << TCP_STATE_LISTEN },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static __thread char buf[32768] __attribute__((aligned(8)));

	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			struct inet_diag_msg *m;
			struct rtattr *a;
			int alen;
			struct st_listener l = { 0 };

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EIO;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			l.port = ntohs(m->id.idiag_sport);
			if (!port_listed(ports, n_ports, l.port))
				continue;
			l.family = m->idiag_family;
			l.inode = m->idiag_inode;
			alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == INET_DIAG_CGROUP_ID &&
				    RTA_PAYLOAD(a) >= (int)sizeof(uint64_t))
					memcpy(&l.cgroup_id, RTA_DATA(a), sizeof(uint64_t));
			if (*found < max)
				out[*found] = l;
			(*found)++;
		}
	}
}

int st_sockcheck_listeners(const uint16_t *ports, size_t n_ports, struct st_listener *out,
			   size_t max)
{
	struct timeval tv = { .tv_sec = DIAG_TIMEOUT_MS / 1000,
			      .tv_usec = DIAG_TIMEOUT_MS % 1000 * 1000 };
	size_t found = 0;
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	/* bounded: the kernel answers at once, but a wait must never hold a start */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	err = dump_family(fd, AF_INET, ports, n_ports, out, max, &found);
	if (!err)
		err = dump_family(fd, AF_INET6, ports, n_ports, out, max, &found);
	close(fd);
	if (err)
		return err;
	return found > INT_MAX ? INT_MAX : (int)found;
}

uint64_t st_sockcheck_cgroup_id(const char *path)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t) } };
	int mount_id;

	/* cgroup v2's file handle is its id (what iproute2's ss --cgroup reads) */
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) ||
	    h.fh.handle_bytes != sizeof(uint64_t))
		return 0;
	return h.id; /* f_handle's bytes: the member right after the header */
}

/* The ids of dir and of the cgroups below it (a cgroup_skb program of dir runs for them
 * too), up to max. */
static void cgroup_ids(const char *dir, uint64_t *ids, size_t max, size_t *n, int depth)
{
	struct dirent *e;
	uint64_t id;
	DIR *d;

	if (*n >= max || depth > 32)
		return;
	id = st_sockcheck_cgroup_id(dir);
	if (id)
		ids[(*n)++] = id;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)) && *n < max) {
		char sub[PATH_MAX];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < (int)sizeof(sub))
			cgroup_ids(sub, ids, max, n, depth + 1);
	}
	closedir(d);
}

static bool id_in(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* PID's network namespace is ours. */
static bool same_netns(pid_t pid, const struct stat *mine)
{
	char fn[64];
	struct stat st;

	snprintf(fn, sizeof(fn), "/proc/%d/ns/net", (int)pid);
	return !stat(fn, &st) && st.st_ino == mine->st_ino && st.st_dev == mine->st_dev;
}

/* One of pids holds a socket of inode (their descriptors, bounded). */
static bool held_by(const pid_t *pids, size_t n, uint64_t inode)
{
	for (size_t i = 0; i < n; i++) {
		char dn[64];
		struct dirent *e;
		size_t seen = 0;
		DIR *d;

		snprintf(dn, sizeof(dn), "/proc/%d/fd", (int)pids[i]);
		d = opendir(dn);
		if (!d)
			continue;
		while ((e = readdir(d)) && seen++ < PID_FDS_MAX) {
			char fn[64 + 258], link[64];
			ssize_t l;

			if (e->d_name[0] == '.')
				continue;
			snprintf(fn, sizeof(fn), "%s/%s", dn, e->d_name);
			l = readlink(fn, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = 0;
			if (st_tls_socket_inode(link) == inode) {
				closedir(d);
				return true;
			}
		}
		closedir(d);
	}
	return false;
}

int st_sockcheck_target(const struct st_target *t, const char *cmd)
{
	struct st_listener *ls = NULL;
	uint64_t *ids = NULL;
	pid_t *pids = NULL;
	size_t nids = 0, npids = 0;
	struct stat mine;
	int nls, said = 0;

	if (!t->n_ports || stat("/proc/self/ns/net", &mine))
		return 0;
	if (t->cgroup) {
		bool here = false;
		int r;

		pids = calloc(CG_PIDS_MAX, sizeof(*pids));
		ids = calloc(CG_DIRS_MAX, sizeof(*ids));
		if (!pids || !ids)
			goto out;
		r = st_tls_cgroup_pids(t->cgroup, pids, CG_PIDS_MAX);
		if (r < 0) {
			pr_info("%s: cgroup %s: its processes cannot be read (%s): its listening "
				"sockets are not checked", cmd, t->cgroup, strerror(-r));
			goto out;
		}
		npids = (size_t)r;
		if (!npids) {
			pr_warn("%s: cgroup %s has no process in it yet: its traffic is seen once a "
				"process in it opens the port (sockets are its cgroup's from their "
				"creation on)", cmd, t->cgroup);
			said++;
			goto out;
		}
		for (size_t i = 0; i < npids && !here; i++)
			here = same_netns(pids[i], &mine);
		if (!here) {
			/* a container's: its sockets are not in this namespace's table */
			pr_info("%s: cgroup %s: its processes are in another network namespace; "
				"its listening sockets are not checked", cmd, t->cgroup);
			goto out;
		}
		cgroup_ids(t->cgroup, ids, CG_DIRS_MAX, &nids, 0);
	}
	ls = calloc(LISTENERS_MAX, sizeof(*ls));
	if (!ls)
		goto out;
	nls = st_sockcheck_listeners(t->ports, t->n_ports, ls, LISTENERS_MAX);
	if (nls < 0) {
		pr_info("%s: the listening sockets cannot be read (%s): not checked", cmd,
			strerror(-nls));
		goto out;
	}
	if ((size_t)nls > LISTENERS_MAX)
		nls = LISTENERS_MAX;
	for (size_t p = 0; p < t->n_ports; p++) {
		uint16_t port = t->ports[p];
		bool any = false, ours = false, joined = false, unknown = false;

		for (int i = 0; i < nls; i++) {
			if (ls[i].port != port)
				continue;
			any = true;
			if (!t->cgroup)
				continue;
			if (!ls[i].cgroup_id || !nids)
				unknown = true; /* the kernel or the cgroup does not say: no claim */
			else if (id_in(ids, nids, ls[i].cgroup_id))
				ours = true;
			else if (!joined)
				joined = held_by(pids, npids, ls[i].inode);
		}
		if (!any) {
			pr_warn("%s: nothing listens on port %u in this network namespace (ss -ltn "
				"sport = :%u): a service's connections show once it listens there",
				cmd, port, port);
			said++;
		} else if (t->cgroup && !ours && !unknown && joined) {
			pr_warn("%s: port %u: its listening socket was created before its process "
				"joined cgroup %s: its connections are not seen (a socket is its "
				"cgroup's from its creation on: start the service inside the cgroup)",
				cmd, port, t->cgroup);
			said++;
		} else if (t->cgroup && !ours && !unknown) {
			pr_warn("%s: port %u is listened on outside cgroup %s (ss -ltn --cgroup): "
				"only sockets created in the cgroup are seen", cmd, port, t->cgroup);
			said++;
		}
	}
out:
	free(ls);
	free(ids);
	free(pids);
	return said;
}
