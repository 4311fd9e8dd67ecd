/* SPDX-License-Identifier: GPL-2.0-only */
#include "tap.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "connmap.h"
#include "linkwatch.h"
#include "log.h"
#include "loop.h"
#include "output.h"
#include "record.h"
#include "tap.skel.h"
#include "tls.h"
#include "tlsdec.h"
#include "tlskeys.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct st_tap {
	struct tap_bpf *skel;
	struct ring_buffer *rb;
	int link_fds[2]; /* TCX links: detach when closed or when we die */
	struct bpf_link *links[2];
	bool tc_legacy;
	struct bpf_tc_hook hook;
	int ifindex;
	int cgroup_fd;
	st_tap_cb cb;
	void *ctx;
	int64_t real_offset_ns;
	uint64_t bad_records;
	/* the interface followed (linkwatch): gone, back, blind time */
	const char *iface;
	int attach_mode;
	bool exit_on_detach;
	bool gone;          /* no interface: nothing attached, nothing captured */
	bool stop;          /* gone with --exit-on-detach: the loop stops */
	struct st_linkwatch *lw;
	uint64_t gone_ns;   /* st_loop_mono_ns() when it went */
	uint64_t blind_ns;  /* earlier gaps */
	uint64_t detaches;
	struct st_tls *tls; /* --tls, --keylog: the TLS probes */
	/* keys mode: the packet programs' ciphertext decrypted (--tls), or read for the secrets'
	 * connections only (--keylog alone); NULL in calls mode only */
	struct st_tlsdec *dec;
	bool plain;         /* --tls: consumers get plaintext (packets go to the decryptor) */
	bool packets_on;    /* the packet programs are attached (--tls: while keys mode needs) */
	uint64_t dup_calls; /* per-call plaintext of a connection the decryptor delivers */
	struct st_output keylog;
	uint16_t ports[ST_MAX_PORTS_CLI]; /* what the port map lists (st_tap__set_filters) */
	size_t n_ports;
	/* the cgroup followed (inotify): removed, created again under the same path */
	const char *cgroup;
	int cg_watch_fd;    /* inotify on the cgroup's parent: its entry removed or created */
	char cg_name[NAME_MAX + 1];
};

/*
 * One ring record. Without --tls and --keylog: a packet's segment, to the consumer. With the
 * TLS probes: their process events go to tls.c, their secrets (ST_REC_KDF) to the decryptor;
 * per-call plaintext goes to the consumer unless the decryptor delivers that connection
 * (tells it otherwise: its ciphertext is then not decrypted); the packets' ciphertext goes to
 * the decryptor (--tls: its plaintext is what the consumer gets; --keylog alone: the
 * consumer gets the ciphertext too).
 */
static int ring_cb(void *ctx, void *data, size_t size)
{
	struct st_tap *tap = ctx;
	struct st_segment seg;
	int r;

	if (tap->tls && size >= 4) {
		uint8_t type = ((const uint8_t *)data)[2];

		if (type == ST_REC_PROC) {
			st_tls__proc_event(tap->tls, data, size);
			return 0;
		}
		if (type == ST_REC_KDF) {
			uint64_t ts = size >= 16 ? *(const uint64_t *)((const uint8_t *)data + 8) : 0;

			return tap->dec ? st_tlsdec__kdf(tap->dec, data, size,
							 (uint64_t)((int64_t)ts + tap->real_offset_ns)) :
					  0;
		}
	}
	if (st_record_decode(data, size, tap->real_offset_ns, &seg)) {
		tap->bad_records++;
		return 0;
	}
	if (!tap->dec)
		return tap->cb(tap->ctx, &seg);
	if (((const struct st_rec *)data)->rflags & ST_RF_TLS) {
		if (st_tlsdec__keyed(tap->dec, &seg.key)) {
			tap->dup_calls++;
			return 0;
		}
		if (tap->packets_on)
			st_tlsdec__called(tap->dec, &seg.key, seg.ts_ns);
		return tap->cb(tap->ctx, &seg);
	}
	r = st_tlsdec__cipher(tap->dec, &seg);
	if (!tap->plain) {
		int e = tap->cb(tap->ctx, &seg);

		if (e < 0)
			r = e;
	}
	return r;
}

/* The decryptor's plaintext: what the per-call probes would have delivered. */
static int dec_segment(void *ctx, const struct st_segment *seg)
{
	struct st_tap *tap = ctx;

	return tap->cb(tap->ctx, seg);
}

/* --keylog: one line per secret, written as it is learned (Wireshark may read it live); the
 * line is wiped after. */
static void dec_keylog(void *ctx, const char *name, const uint8_t cr[32], const uint8_t *secret,
		       size_t len)
{
	struct st_tap *tap = ctx;
	char line[256];
	size_t n;

	if (tap->keylog.fd < 0)
		return;
	n = st_tlskeys_keylog_line(line, sizeof(line), name, cr, secret, len);
	if (n && write(tap->keylog.fd, line, n) != (ssize_t)n)
		pr_warn("tls: --keylog %s: %s", tap->keylog.path, strerror(errno));
	OPENSSL_cleanse(line, sizeof(line));
}

static void perr(const char *what, int err)
{
	/* EACCES/EPERM as root is the verifier refusing a program, not privileges. */
	if ((err == EPERM || err == EACCES) && geteuid() != 0)
		pr_err("%s: %s (run as root: needs CAP_BPF and CAP_NET_ADMIN)", what, strerror(err));
	else if (err == EPERM || err == EACCES)
		pr_err("%s: %s (-v shows the kernel's reason)", what, strerror(err));
	else
		pr_err("%s: %s", what, strerror(err));
}

static unsigned long round_pow2(unsigned long v)
{
	unsigned long r = 1;

	while (r < v)
		r <<= 1;
	return r;
}

int st_tap__fill_filters(struct bpf_map *ports, struct bpf_map *hosts_v4, struct bpf_map *hosts_v6,
			 const struct st_target *t)
{
	__u8 one = 1;

	for (size_t i = 0; i < t->n_ports; i++) {
		__u32 port = t->ports[i];
		__u8 v = 0;

		/* a port already copied whole (st_tap__copy_port_whole) stays so */
		if (bpf_map__lookup_elem(ports, &port, sizeof(port), &v, 1, 0))
			v = 0;
		v = (__u8)(v & ST_PORT_WHOLE) | ST_PORT_ON;
		if (bpf_map__update_elem(ports, &port, sizeof(port), &v, 1, 0))
			return -errno;
	}
	for (size_t i = 0; i < t->n_hosts; i++) {
		const struct st_cidr *c = &t->hosts[i];
		int err;

		if (c->addr.family == 4) {
			struct st_lpm_v4 k = { .prefixlen = c->prefix, .addr = c->addr.a[0] };

			err = bpf_map__update_elem(hosts_v4, &k, sizeof(k), &one, 1, 0);
		} else {
			struct st_lpm_v6 k = { .prefixlen = c->prefix };

			memcpy(k.addr, c->addr.a, sizeof(k.addr));
			err = bpf_map__update_elem(hosts_v6, &k, sizeof(k), &one, 1, 0);
		}
		if (err)
			return -errno;
	}
	return 0;
}

/* The packet programs' maps from t, and the ports listed remembered (st_tap__set_filters). */
static int fill_filters(struct st_tap *tap, const struct st_target *t)
{
	int err = st_tap__fill_filters(tap->skel->maps.ports, tap->skel->maps.hosts_v4,
				       tap->skel->maps.hosts_v6, t);

	if (err)
		return err;
	for (size_t i = 0; i < t->n_ports; i++)
		if (!st_opts_port_listed(tap->ports, tap->n_ports, t->ports[i]) &&
		    tap->n_ports < ST_MAX_PORTS_CLI)
			tap->ports[tap->n_ports++] = t->ports[i];
	return 0;
}

static bool host_kept(const struct st_target *t, const void *key, int family)
{
	for (size_t i = 0; i < t->n_hosts; i++) {
		const struct st_cidr *c = &t->hosts[i];

		if (c->addr.family != family)
			continue;
		if (family == 4) {
			struct st_lpm_v4 k;

			memcpy(&k, key, sizeof(k));
			if (k.prefixlen == c->prefix && k.addr == c->addr.a[0])
				return true;
		} else {
			struct st_lpm_v6 k;

			memcpy(&k, key, sizeof(k));
			if (k.prefixlen == c->prefix && !memcmp(k.addr, c->addr.a, sizeof(k.addr)))
				return true;
		}
	}
	return false;
}

/* The port map is an array indexed by port: the ports t does not list go back to 0. */
static int prune_ports(struct st_tap *tap, const struct st_target *t)
{
	__u8 zero = 0;
	size_t n = 0;

	for (size_t i = 0; i < tap->n_ports; i++) {
		__u32 port = tap->ports[i];

		if (st_opts_port_listed(t->ports, t->n_ports, tap->ports[i])) {
			tap->ports[n++] = tap->ports[i];
			continue;
		}
		if (bpf_map__update_elem(tap->skel->maps.ports, &port, sizeof(port), &zero, 1, 0))
			return -errno;
	}
	tap->n_ports = n;
	return 0;
}

/* Removes the entries of an LPM trie that t does not list (keys of size ksz). */
static int prune_map(struct bpf_map *m, size_t ksz, const struct st_target *t, int family)
{
	uint8_t key[sizeof(struct st_lpm_v6)], next[sizeof(struct st_lpm_v6)];
	bool first = true;

	for (;;) {
		bool kept;

		if (bpf_map__get_next_key(m, first ? NULL : key, next, ksz))
			return errno == ENOENT ? 0 : -errno;
		first = false;
		memcpy(key, next, ksz);
		kept = host_kept(t, key, family);
		if (!kept) {
			if (bpf_map__delete_elem(m, key, ksz, 0))
				return -errno;
			first = true; /* the walk starts again: the deleted key has no successor */
		}
	}
}

void st_tap_conn_key(const struct st_flow_key *k, struct st_conn_key *out)
{
	memset(out, 0, sizeof(*out));
	out->family = k->src.family;
	out->cport = k->sport;
	out->sport = k->dport;
	memcpy(out->caddr, k->src.a, sizeof(out->caddr));
	memcpy(out->saddr, k->dst.a, sizeof(out->saddr));
}

int st_tap__copy_whole(struct st_tap *tap, const struct st_flow_key *k)
{
	struct st_conn_key key;
	uint8_t one = 1;
	int fd = tap->tls ? st_tls__copy_whole_fd(tap->tls) : bpf_map__fd(tap->skel->maps.copy_whole);

	st_tap_conn_key(k, &key);
	return bpf_map_update_elem(fd, &key, &one, BPF_ANY) ? -errno : 0;
}

int st_tap__copy_port_whole(struct st_tap *tap, uint16_t port)
{
	int fd = tap->tls ? st_tls__ports_fd(tap->tls) : bpf_map__fd(tap->skel->maps.ports);
	__u32 k = port;
	__u8 v;

	if (bpf_map_lookup_elem(fd, &k, &v))
		return -errno;
	if (!v)
		return -ENOENT; /* not captured: nothing to copy */
	v |= ST_PORT_WHOLE;
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

int st_tap__set_filters(struct st_tap *tap, const struct st_target *t)
{
	struct tap_bpf *s = tap->skel;
	int err;

	if (!s)
		return -EOPNOTSUPP; /* --tls: its selection is its own (processes) */
	if (!!t->n_hosts != (s->rodata->host_filter == ST_HOST_FILTER_ON))
		return -EOPNOTSUPP; /* the peer filter on or off is fixed at load */
	/* the new entries first, then the old ones the new set lacks go: a port (a CIDR) in
	 * both is never missing, not even for a packet */
	err = fill_filters(tap, t);
	if (!err)
		err = prune_ports(tap, t);
	if (!err)
		err = prune_map(s->maps.hosts_v4, sizeof(struct st_lpm_v4), t, 4);
	if (!err)
		err = prune_map(s->maps.hosts_v6, sizeof(struct st_lpm_v6), t, 6);
	return err;
}

/* Removes clsact filters a previous shadowtap left (killed before it could
 * detach): ours carry ST_TC_HANDLE/ST_TC_PRIO and a tc_* program. */
static void tc_remove_stale(struct bpf_tc_hook *hook)
{
	for (int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = ST_TC_HANDLE, .priority = ST_TC_PRIO);
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd;

		hook->attach_point = i ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		if (bpf_tc_query(hook, &q))
			continue;
		fd = bpf_prog_get_fd_by_id(q.prog_id);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, "tc_", 3)) {
			LIBBPF_OPTS(bpf_tc_opts, d, .handle = ST_TC_HANDLE, .priority = ST_TC_PRIO);

			bpf_tc_detach(hook, &d);
		}
		close(fd);
	}
}

static int attach_tc_legacy(struct st_tap *tap)
{
	int progs[2] = { bpf_program__fd(tap->skel->progs.tc_ingress),
			 bpf_program__fd(tap->skel->progs.tc_egress) };
	int err;

	memset(&tap->hook, 0, sizeof(tap->hook));
	tap->hook.sz = sizeof(tap->hook);
	tap->hook.ifindex = tap->ifindex;
	tap->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	/* Someone else's clsact is fine: we add a filter and never remove the
	 * qdisc (it may carry other filters, or gain them while we run). */
	err = bpf_tc_hook_create(&tap->hook);
	if (err && err != -EEXIST)
		return err;
	tc_remove_stale(&tap->hook);
	tap->tc_legacy = true;
	for (int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_opts, o, .handle = ST_TC_HANDLE, .priority = ST_TC_PRIO,
			    .prog_fd = progs[i]);

		tap->hook.attach_point = i ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		err = bpf_tc_attach(&tap->hook, &o);
		if (err)
			return err;
	}
	return 0;
}

static int attach_iface(struct st_tap *tap, int mode)
{
	int progs[2] = { bpf_program__fd(tap->skel->progs.tc_ingress),
			 bpf_program__fd(tap->skel->progs.tc_egress) };
	int types[2] = { ST_BPF_TCX_INGRESS, ST_BPF_TCX_EGRESS };

	if (mode == ST_ATTACH_CLSACT)
		return attach_tc_legacy(tap);
	for (int i = 0; i < 2; i++) {
		int fd = bpf_link_create(progs[i], tap->ifindex, (enum bpf_attach_type)types[i], NULL);

		if (fd >= 0) {
			tap->link_fds[i] = fd;
			continue;
		}
		/* Kernels before 6.6 do not know TCX: fall back to clsact. */
		if (i == 0 && mode == ST_ATTACH_AUTO && (fd == -EINVAL || fd == -EOPNOTSUPP || fd == -524 /* ENOTSUPP */))
			return attach_tc_legacy(tap);
		return fd;
	}
	return 0;
}

static int attach_cgroup(struct st_tap *tap)
{
	tap->links[0] = bpf_program__attach_cgroup(tap->skel->progs.cgroup_skb_ingress,
						   tap->cgroup_fd);
	if (!tap->links[0])
		return -errno;
	tap->links[1] = bpf_program__attach_cgroup(tap->skel->progs.cgroup_skb_egress,
						   tap->cgroup_fd);
	if (!tap->links[1])
		return -errno;
	return 0;
}

static int open_cgroup(const char *path)
{
	struct statfs sfs;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		pr_err("cgroup %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		pr_err("cgroup %s: not a cgroup v2 directory", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* ---- the cgroup followed: removed, created again (inotify) ------------------------------ */

static void detach_cgroup(struct st_tap *tap)
{
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(tap->links[i]);
		tap->links[i] = NULL;
	}
	if (tap->cgroup_fd >= 0)
		close(tap->cgroup_fd);
	tap->cgroup_fd = -1;
}

/*
 * Watches the cgroup's parent for the cgroup's entry going and coming: the directory's own
 * IN_DELETE_SELF does not come while the agent holds it open (the cgroup's fd).
 */
static int watch_cgroup(struct st_tap *tap, const char *path)
{
	char buf[PATH_MAX], *base, *dir;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	base = basename(buf);
	snprintf(tap->cg_name, sizeof(tap->cg_name), "%s", base);
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	dir = dirname(buf);
	tap->cg_watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (tap->cg_watch_fd < 0)
		return -errno;
	if (inotify_add_watch(tap->cg_watch_fd, dir,
			      IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0)
		return -errno;
	return 0;
}

static void cgroup_gone(struct st_tap *tap)
{
	if (tap->gone)
		return;
	detach_cgroup(tap);
	tap->gone = true;
	tap->gone_ns = st_loop_mono_ns();
	tap->detaches++;
	if (tap->exit_on_detach) {
		pr_err("cgroup %s was removed: stopping (--exit-on-detach)", tap->cgroup);
		tap->stop = true;
	} else {
		pr_warn("cgroup %s was removed: capturing nothing until a cgroup of that path "
			"exists again", tap->cgroup);
	}
}

static void cgroup_back(struct st_tap *tap)
{
	uint64_t now = st_loop_mono_ns();
	int err;

	if (!tap->gone || tap->stop)
		return;
	tap->cgroup_fd = open_cgroup(tap->cgroup);
	err = tap->cgroup_fd < 0 ? -errno : attach_cgroup(tap);
	if (err) {
		pr_err("cgroup %s exists again, but attaching to it failed: %s; capturing nothing",
		       tap->cgroup, strerror(-err));
		detach_cgroup(tap);
		return;
	}
	tap->blind_ns += now - tap->gone_ns;
	tap->gone = false;
	pr_warn("cgroup %s exists again: capturing again after %.1f s blind", tap->cgroup,
		(double)(now - tap->gone_ns) / 1e9);
}

static int on_cgroup_fd(void *ctx)
{
	struct st_tap *tap = ctx;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(tap->cg_watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			bool ours = (ev->mask & IN_ISDIR) && ev->len && !strcmp(ev->name, tap->cg_name);

			if (ours && (ev->mask & (IN_DELETE | IN_MOVED_FROM)))
				cgroup_gone(tap);
			else if (ours && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
				cgroup_back(tap);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return tap->stop ? -ENODEV : 0;
}

/* ---- the interface followed: gone, back (linkwatch.c) ------------------------------------- */

/* Closes the interface's links (defunct once it is gone) and removes clsact filters from it
 * while it exists: a deleted device took its qdisc and filters with it, and its ifindex may
 * be someone else's by now. */
static void detach_iface(struct st_tap *tap, bool exists)
{
	for (int i = 0; i < 2; i++) {
		if (tap->link_fds[i] >= 0)
			close(tap->link_fds[i]);
		tap->link_fds[i] = -1;
	}
	if (tap->tc_legacy && exists) {
		for (int i = 0; i < 2; i++) {
			LIBBPF_OPTS(bpf_tc_opts, d, .handle = ST_TC_HANDLE, .priority = ST_TC_PRIO);

			tap->hook.attach_point = i ? BPF_TC_EGRESS : BPF_TC_INGRESS;
			bpf_tc_detach(&tap->hook, &d);
		}
	}
	tap->tc_legacy = false;
}

int st_tap__reattach(struct st_tap *tap, int ifindex)
{
	if (!tap->iface)
		return -EINVAL;
	detach_iface(tap, !tap->gone);
	tap->ifindex = ifindex;
	return attach_iface(tap, tap->attach_mode);
}

static void on_link(void *ctx, enum st_link_event ev, int ifindex)
{
	struct st_tap *tap = ctx;
	uint64_t now = st_loop_mono_ns();
	int err;

	if (ev == ST_LINK_GONE) {
		if (tap->gone)
			return;
		detach_iface(tap, false);
		tap->gone = true;
		tap->gone_ns = now;
		tap->detaches++;
		if (tap->exit_on_detach) {
			pr_err("interface %s (ifindex %d) is gone: stopping (--exit-on-detach)",
			       tap->iface, ifindex);
			tap->stop = true;
		} else {
			pr_warn("interface %s (ifindex %d) is gone: capturing nothing until an "
				"interface of that name comes back", tap->iface, ifindex);
		}
		return;
	}
	if (tap->stop)
		return;
	err = st_tap__reattach(tap, ifindex);
	if (err) {
		pr_err("interface %s is back (ifindex %d), but attaching to it failed: %s; "
		       "capturing nothing", tap->iface, ifindex, strerror(-err));
		detach_iface(tap, true);
		if (!tap->gone) {
			tap->gone = true;
			tap->gone_ns = now;
		}
		return;
	}
	if (tap->gone) {
		tap->blind_ns += now - tap->gone_ns;
		pr_warn("interface %s is back (ifindex %d): capturing again after %.1f s blind",
			tap->iface, ifindex, (double)(now - tap->gone_ns) / 1e9);
	} else {
		pr_warn("interface %s is back (ifindex %d): capturing again", tap->iface, ifindex);
	}
	tap->gone = false;
}

static int on_link_fd(void *ctx)
{
	struct st_tap *tap = ctx;
	int err = st_linkwatch__read(tap->lw);

	if (tap->stop)
		return -ENODEV;
	return err;
}

static int on_tls_timer(void *ctx)
{
	struct st_tap *tap = ctx;

	return st_tls__rescan(tap->tls);
}

int st_tap__watch(struct st_tap *tap, struct st_loop *l)
{
	if (tap->tls) {
		int err = st_loop__add(l, st_tls__timer_fd(tap->tls), on_tls_timer, tap);

		if (err || tap->plain)
			return err;
		/* --keylog alone: the capture's target is followed as without it */
	}
	if (tap->cg_watch_fd >= 0)
		return st_loop__add(l, tap->cg_watch_fd, on_cgroup_fd, tap);
	if (!tap->lw)
		return 0;
	return st_loop__add(l, st_linkwatch__fd(tap->lw), on_link_fd, tap);
}

int st_tap__unwatch(struct st_tap *tap, struct st_loop *l)
{
	if (tap->tls) {
		int err = st_loop__del(l, st_tls__timer_fd(tap->tls));

		if (err || tap->plain)
			return err;
	}
	if (tap->cg_watch_fd >= 0)
		return st_loop__del(l, tap->cg_watch_fd);
	if (!tap->lw)
		return 0;
	return st_loop__del(l, st_linkwatch__fd(tap->lw));
}

/* Selection and copy policy: rodata, before load. */
static int set_policy(struct tap_bpf *s, const struct st_target *t, const struct st_tap_opts *o)
{
	static const struct st_tap_opts all;

	if (!o)
		o = &all;
	for (int d = 0; d < ST_DIR_MAX; d++)
		if (o->copy[d] > ST_COPY_NONE)
			return -EINVAL;
	if (o->head_bytes > ST_CHUNK_MAX || o->sample_permyriad > ST_SAMPLE_ALL)
		return -EINVAL;
	s->rodata->sample_permyriad = o->sample_permyriad ? o->sample_permyriad : ST_SAMPLE_ALL;
	s->rodata->host_filter = t->n_hosts ? ST_HOST_FILTER_ON : ST_HOST_FILTER_OFF;
	s->rodata->copy_in = o->copy[ST_DIR_IN];
	s->rodata->copy_out = o->copy[ST_DIR_OUT];
	s->rodata->head_bytes = o->head_bytes ? o->head_bytes : 256;
	return 0;
}

struct st_tap *st_tap__open(const struct st_target *t, bool verbose, st_tap_cb cb, void *ctx)
{
	return st_tap__open_opts(t, verbose, NULL, cb, ctx);
}

/* The interface's index, or the cgroup opened. 0 or an errno (said). */
static int open_target(struct st_tap *tap, const struct st_target *t)
{
	if (t->iface) {
		tap->ifindex = (int)if_nametoindex(t->iface);
		if (!tap->ifindex) {
			pr_err("interface %s: no such interface", t->iface);
			return ENODEV;
		}
		return 0;
	}
	tap->cgroup_fd = open_cgroup(t->cgroup);
	return tap->cgroup_fd < 0 ? errno : 0;
}

/* The reader of a ring (the tap's, or the TLS probes'). 0 or an errno (said). */
static int open_ring(struct st_tap *tap, int map_fd)
{
	tap->rb = ring_buffer__new(map_fd, ring_cb, tap, NULL);
	if (!tap->rb) {
		int err = errno;

		perr("opening ring buffer", err);
		return err;
	}
	tap->real_offset_ns = st_record_realtime_offset_ns();
	return 0;
}

/* The packet programs: the ring's size and wakeup, the policy (rodata), the entry points of
 * the target's kind, loaded, the filter maps filled. 0 or an errno (said). */
static int load_programs(struct st_tap *tap, const struct st_target *t,
			 const struct st_tap_opts *opts, unsigned long ring_bytes)
{
	int err;

	tap->skel = tap_bpf__open();
	if (!tap->skel) {
		err = errno;
		perr("opening BPF object", err);
		return err;
	}
	bpf_map__set_max_entries(tap->skel->maps.ring, (__u32)ring_bytes);
	/* Wake the reader each time another quarter of the ring is waiting, at most 1 MiB
	 * (a power of two: the ring's size is one). */
	tap->skel->rodata->wakeup_bytes = ring_bytes / 4 < (1u << 20) ? ring_bytes / 4 : (1u << 20);
	err = -set_policy(tap->skel, t, opts);
	if (err) {
		perr("tap options", err);
		return err;
	}
	bpf_program__set_autoload(tap->skel->progs.tc_ingress, !!t->iface);
	bpf_program__set_autoload(tap->skel->progs.tc_egress, !!t->iface);
	bpf_program__set_autoload(tap->skel->progs.cgroup_skb_ingress, !t->iface);
	bpf_program__set_autoload(tap->skel->progs.cgroup_skb_egress, !t->iface);
	err = -tap_bpf__load(tap->skel);
	if (err) {
		perr("loading BPF programs", err);
		return err;
	}
	err = -fill_filters(tap, t);
	if (err)
		perr("configuring filters", err);
	return err;
}

/* Follows the interface (rtnetlink) or the cgroup (inotify), from before the attach: a
 * removal right after it is seen too. 0 or an errno (said). */
static int watch_target(struct st_tap *tap, const struct st_target *t)
{
	int err;

	tap->exit_on_detach = t->exit_on_detach;
	if (t->iface) {
		tap->iface = t->iface;
		tap->attach_mode = t->attach;
		tap->lw = st_linkwatch__new(t->iface, tap->ifindex, on_link, tap);
		if (!tap->lw) {
			err = errno;
			perr("watching the interface (rtnetlink)", err);
			return err;
		}
		return 0;
	}
	tap->cgroup = t->cgroup;
	err = -watch_cgroup(tap, t->cgroup);
	if (err)
		perr("watching the cgroup (inotify)", err);
	return err;
}

static int attach(struct st_tap *tap, const struct st_target *t)
{
	int err = -(t->iface ? attach_iface(tap, t->attach) : attach_cgroup(tap));

	if (err) {
		char what[300];

		snprintf(what, sizeof(what), "attaching to %s %s", t->iface ? "interface" : "cgroup",
			 t->iface ? t->iface : t->cgroup);
		perr(what, err);
	}
	return err;
}

/* The packet programs come off the target (keys mode no longer needs the ciphertext). */
static void packets_detach(struct st_tap *tap)
{
	detach_iface(tap, true);
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(tap->links[i]);
		tap->links[i] = NULL;
	}
	tap->packets_on = false;
}

/* tls.c's hook: keys mode needs the ciphertext of --port (on) or no longer (off). */
static int cipher_hook(void *ctx, bool on)
{
	struct st_tap *tap = ctx;
	int err;

	if (!tap->plain || on == tap->packets_on)
		return 0; /* --keylog alone is a capture: attached all along */
	if (!on) {
		packets_detach(tap);
		return 0;
	}
	err = tap->cgroup_fd >= 0 ? attach_cgroup(tap) : attach_iface(tap, ST_ATTACH_AUTO);
	if (err) {
		packets_detach(tap);
		return err;
	}
	tap->packets_on = true;
	return 0;
}

/*
 * The TLS input (--tls, --keylog). Keys mode possible (not --tls-mode calls, not --libssl
 * files alone): the packet programs are loaded too, copying every ciphertext byte (a record
 * opens only whole), and the TLS probes write into their ring (one ring: the secrets, the
 * per-call plaintext and the packets in the order they happened); the decryptor turns the
 * packets into plaintext (--tls) or reads them for the secrets' connections (--keylog alone,
 * which is a capture of the packets as without --tls, attached and watched as one).
 */
static int open_tls(struct st_tap *tap, const struct st_target *t, const struct st_tap_opts *opts,
		    unsigned long ring_bytes)
{
	static const struct st_tap_opts all;
	bool keys = t->keylog || (t->tls_mode != ST_TLSM_CALLS && !t->n_libssl);
	struct st_tls_hooks hooks = { .cipher = cipher_hook, .ctx = tap };
	struct st_tap_opts whole = opts ? *opts : all;
	int err, ring_fd = -1;

	tap->plain = t->tls;
	if (t->keylog) {
		err = st_output_open(&tap->keylog, t->keylog, ST_OUT_PRIVATE | ST_OUT_NONBLOCK, 0);
		if (err >= 0)
			err = st_output_commit(&tap->keylog);
		if (err < 0) {
			pr_err("keylog %s: %s", t->keylog, strerror(-err));
			return -err;
		}
	}
	if (keys) {
		struct st_tlsdec_config cfg = {
			.ports = t->ports,
			.n_ports = t->n_ports,
			.keylog_only = !t->tls,
			.hash_seed = st_connmap_random_seed(),
		};
		struct st_tlsdec_ops ops = { .segment = dec_segment,
					     .keylog = t->keylog ? dec_keylog : NULL };

		whole.copy[ST_DIR_IN] = whole.copy[ST_DIR_OUT] = ST_COPY_FULL;
		err = load_programs(tap, t, &whole, ring_bytes);
		if (err)
			return err;
		ring_fd = bpf_map__fd(tap->skel->maps.ring);
		tap->dec = st_tlsdec__new(&cfg, &ops, tap);
		if (!tap->dec) {
			perr("tls: the decryptor", errno);
			return errno;
		}
		if (!t->tls) {
			err = watch_target(tap, t);
			if (!err)
				err = attach(tap, t);
			if (err)
				return err;
			tap->packets_on = true;
		}
	}
	tap->tls = st_tls__open(t, opts, (uint32_t)ring_bytes, ring_fd, keys, &hooks);
	if (!tap->tls)
		return errno;
	st_tls__set_decryptor(tap->tls, tap->dec);
	return open_ring(tap, keys ? ring_fd : st_tls__ring_fd(tap->tls));
}

/*
 * Opens the target, then the TLS input (--tls: the plaintext instead of the ciphertext of the
 * port, which would be a second, unreadable copy of every connection for every consumer;
 * --keylog: the secrets too) or the packet programs, watched and attached.
 */
struct st_tap *st_tap__open_opts(const struct st_target *t, bool verbose,
				 const struct st_tap_opts *opts, st_tap_cb cb, void *ctx)
{
	unsigned long ring_bytes;
	struct st_tap *tap;
	int err;

	tap = calloc(1, sizeof(*tap));
	if (!tap)
		return NULL;
	tap->link_fds[0] = tap->link_fds[1] = -1;
	tap->cgroup_fd = -1;
	tap->cg_watch_fd = -1;
	tap->keylog.fd = -1;
	tap->cb = cb;
	tap->ctx = ctx;
	/* libbpf's warnings while we set up are detail: every failure is reported below */
	st_log_libbpf_setup(1);
	ring_bytes = round_pow2((unsigned long)(t->ring_mb ? t->ring_mb : ST_RING_MB_DEFAULT) << 20);
	err = open_target(tap, t);
	if (!err && (t->tls || t->keylog)) {
		err = open_tls(tap, t, opts, ring_bytes);
	} else if (!err) {
		err = load_programs(tap, t, opts, ring_bytes);
		if (!err)
			err = open_ring(tap, bpf_map__fd(tap->skel->maps.ring));
		if (!err)
			err = watch_target(tap, t);
		if (!err)
			err = attach(tap, t);
	}
	st_log_libbpf_setup(0);
	if (!err)
		return tap;
	st_tap__destroy(tap);
	errno = err;
	return NULL;
}

int st_tap__fd(const struct st_tap *tap)
{
	return ring_buffer__epoll_fd(tap->rb);
}

int st_tap__consume(struct st_tap *tap)
{
	/* consume, not poll: records go in without wakeups (see wakeup_bytes),
	 * so the ring must be read whether or not it signalled. */
	int n = ring_buffer__consume(tap->rb);

	if (tap->tls)
		st_tls__poll(tap->tls);
	if (tap->dec) {
		int e = st_tlsdec__tick(tap->dec, (uint64_t)((int64_t)st_loop_mono_ns() +
							     tap->real_offset_ns));

		if (e < 0 && n >= 0)
			n = e;
	}
	return n;
}

void st_tap__stats(const struct st_tap *tap, struct st_tap_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct st_counters *vals;

	memset(out, 0, sizeof(*out));
	out->bad_records = tap->bad_records;
	out->detaches = tap->detaches;
	out->blind_ns = tap->blind_ns + (tap->gone ? st_loop_mono_ns() - tap->gone_ns : 0);
	if (tap->tls) {
		/* the per-call plaintext's (the packets' below, in keys mode) */
		struct st_tls_stats ts;

		st_tls__stats(tap->tls, &ts);
		memcpy(out->kern, ts.kern, sizeof(out->kern));
	}
	if (ncpu <= 0 || !tap->skel)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return;
	for (__u32 dir = 0; dir < ST_DIR_MAX; dir++) {
		struct st_counters *o = &out->kern[dir];

		if (bpf_map__lookup_elem(tap->skel->maps.counters, &dir, sizeof(dir), vals,
					 sizeof(*vals) * (size_t)ncpu, 0))
			continue;
		for (int c = 0; c < ncpu; c++) {
			o->segs += vals[c].segs;
			o->bytes += vals[c].bytes;
			o->records += vals[c].records;
			o->lost_segs += vals[c].lost_segs;
			o->lost_bytes += vals[c].lost_bytes;
			o->lost_unreported += vals[c].lost_unreported;
			o->parse_skipped += vals[c].parse_skipped;
			o->sampled_out += vals[c].sampled_out;
			o->elided_bytes += vals[c].elided_bytes;
		}
	}
	free(vals);
}

ST_STAT_TABLE_DEFINE(st_tap_stat, struct st_tap_summary, ST_TAP_STATS);

void st_tap__summary(const struct st_tap *tap, struct st_tap_summary *out)
{
	struct st_tap_stats st;

	memset(out, 0, sizeof(*out));
	if (!tap)
		return;
	st_tap__stats(tap, &st);
	for (int d = 0; d < ST_DIR_MAX; d++) {
		out->lost += st.kern[d].lost_bytes;
		out->lost_segs += st.kern[d].lost_segs;
		out->loss_unmarked += st.kern[d].lost_unreported;
		out->parse_skipped += st.kern[d].parse_skipped;
		out->sampled_out += st.kern[d].sampled_out;
		out->elided += st.kern[d].elided_bytes;
	}
	out->lost_in = st.kern[ST_DIR_IN].lost_bytes;
	out->lost_out = st.kern[ST_DIR_OUT].lost_bytes;
	out->loss_unmarked_in = st.kern[ST_DIR_IN].lost_unreported;
	out->loss_unmarked_out = st.kern[ST_DIR_OUT].lost_unreported;
	out->detaches = st.detaches;
	out->blind_ms = st.blind_ns / 1000000;
	out->bad_records = st.bad_records;
	if (tap->tls) {
		struct st_tls_stats ts;

		st_tls__stats(tap->tls, &ts);
		out->tls_calls = ts.tls.calls;
		out->tls_conns = ts.tls.conns;
		out->tls_conns_joined = ts.tls.conns_joined;
		out->tls_conns_other = ts.tls.conns_other;
		out->tls_unattributed = ts.tls.unattributed_bytes;
		out->tls_filtered = ts.tls.filtered;
		out->tls_libs = ts.libs;
		out->tls_blind_pids = ts.blind_pids;
		out->tls_conns_keyed = ts.tls.conns_keyed;
		out->tls_kdf = ts.tls.kdf_calls;
		out->tls_kdf_lost = ts.tls.kdf_lost;
		out->tls_procs_keys = ts.procs_keys;
		out->tls_procs_calls = ts.procs_calls;
		out->tls_mode_changes = ts.mode_changes;
		out->tls_traps = ts.traps;
		out->tls_cut = ts.cut;
	}
	if (tap->dec) {
		struct st_tlsdec_stats ds;

		st_tlsdec__stats(tap->dec, &ds);
		out->tls_keyed = ds.keyed;
		out->tls_decrypted = ds.plain_bytes;
		out->tls_dec_lost = ds.loss_bytes;
		out->tls_dec_failed = ds.failed;
		out->tls_resyncs = ds.resyncs;
		out->tls_key_updates = ds.key_updates;
		out->tls_nokeys = ds.nokeys;
		out->tls_unusable = ds.not_tls;
		out->tls_given_up = ds.given_up;
		out->tls_joined = ds.joined;
		out->tls_dup = tap->dup_calls;
	}
}

void st_tap__destroy(struct st_tap *tap)
{
	if (!tap)
		return;
	detach_iface(tap, !tap->gone);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(tap->links[i]);
	st_linkwatch__free(tap->lw);
	ring_buffer__free(tap->rb);
	st_tls__destroy(tap->tls);
	st_tlsdec__free(tap->dec);
	if (tap->keylog.fd >= 0)
		st_output_close(&tap->keylog);
	tap_bpf__destroy(tap->skel);
	if (tap->cgroup_fd >= 0)
		close(tap->cgroup_fd);
	if (tap->cg_watch_fd >= 0)
		close(tap->cg_watch_fd);
	free(tap);
}
