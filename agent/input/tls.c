/* SPDX-License-Identifier: GPL-2.0-only */
#include "tls.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <signal.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "opts.h"
#include "tap.h"
#include "tlsfind.h"
#include "tls.skel.h"

#define PROC "/proc"
#define MAX_PIDS 65536
#define MAX_LISTEN 4096
#define MAX_LIBS_PER_PID 8

enum prog_id { P_READ, P_READ_EX, P_WRITE, P_WRITE_EX, P_HANDSHAKE, P_EXIT, P_SET_FD, P_FREE };

/* Every function probed in a libssl. SSL_read and SSL_write are required (a library
 * without them is not an OpenSSL-compatible libssl); the rest are attached where the
 * library has them: the _ex variants (OpenSSL 1.1.1+), 0-RTT data, the handshake and
 * SSL_set_fd (they name the socket before any data), SSL_free (the session's end). */
static const struct probe {
	const char *fn;
	enum prog_id prog;
	bool ret;
	bool required;
} probes[] = {
	{ "SSL_read", P_READ, false, true },
	{ "SSL_read", P_EXIT, true, true },
	{ "SSL_write", P_WRITE, false, true },
	{ "SSL_write", P_EXIT, true, true },
	{ "SSL_read_ex", P_READ_EX, false, false },
	{ "SSL_read_ex", P_EXIT, true, false },
	{ "SSL_write_ex", P_WRITE_EX, false, false },
	{ "SSL_write_ex", P_EXIT, true, false },
	{ "SSL_read_early_data", P_READ_EX, false, false },
	{ "SSL_read_early_data", P_EXIT, true, false },
	{ "SSL_write_early_data", P_WRITE_EX, false, false },
	{ "SSL_write_early_data", P_EXIT, true, false },
	{ "SSL_do_handshake", P_HANDSHAKE, false, false },
	{ "SSL_do_handshake", P_EXIT, true, false },
	{ "SSL_set_fd", P_SET_FD, false, false },
	{ "SSL_free", P_FREE, false, false },
};
#define N_PROBES (sizeof(probes) / sizeof(probes[0]))

/* The socket I/O syscalls an SSL call makes; read and write are what OpenSSL's socket
 * BIO uses, and required. */
static const struct {
	const char *tp;
	bool required;
} io_tps[] = {
	{ "sys_enter_read", true },     { "sys_enter_write", true },
	{ "sys_enter_readv", false },   { "sys_enter_writev", false },
	{ "sys_enter_recvfrom", false }, { "sys_enter_sendto", false },
	{ "sys_enter_recvmsg", false },  { "sys_enter_sendmsg", false },
};
#define N_IO (sizeof(io_tps) / sizeof(io_tps[0]))

struct tls_lib {
	dev_t dev;
	uint64_t ino;
	char *name; /* the path as given or as the first process mapped it */
	bool ok;    /* attached (else: failed, not retried) */
	struct bpf_link *links[N_PROBES];
};

struct st_tls {
	struct tls_bpf *skel;
	const struct st_target *t;
	int cgroup_fd;
	int timer_fd;
	struct bpf_link *io_links[N_IO];
	struct bpf_link *fork_link;
	struct tls_lib *libs;
	size_t n_libs, cap_libs;
	bool fixed;        /* --libssl: only those files */
	pid_t *seen;       /* processes examined (sorted) */
	size_t n_seen;
	uint64_t *listen;  /* iface mode: the listening socket inodes last seen */
	size_t n_listen;
	pid_t *blind;      /* processes of the target without a probed library, named once;
			    * looked at again at each rescan (a late dlopen of libssl) */
	size_t n_blind, cap_blind;
	uint32_t *warned;  /* tgids named for unattributed plaintext */
	size_t n_warned, cap_warned;
	uint64_t pids, attach_failed;
};

static struct bpf_program *prog_of(struct tls_bpf *s, enum prog_id id)
{
	switch (id) {
	case P_READ: return s->progs.tls_read_enter;
	case P_READ_EX: return s->progs.tls_read_ex_enter;
	case P_WRITE: return s->progs.tls_write_enter;
	case P_WRITE_EX: return s->progs.tls_write_ex_enter;
	case P_HANDSHAKE: return s->progs.tls_handshake_enter;
	case P_EXIT: return s->progs.tls_call_exit;
	case P_SET_FD: return s->progs.tls_set_fd;
	case P_FREE: return s->progs.tls_free;
	}
	return NULL;
}

static struct bpf_program *io_prog(struct tls_bpf *s, size_t i)
{
	struct bpf_program *p[N_IO] = {
		s->progs.tls_sys_read,     s->progs.tls_sys_write,  s->progs.tls_sys_readv,
		s->progs.tls_sys_writev,   s->progs.tls_sys_recvfrom, s->progs.tls_sys_sendto,
		s->progs.tls_sys_recvmsg,  s->progs.tls_sys_sendmsg,
	};
	return p[i];
}

/* A process's name, for messages: any process sets its own (prctl), so it is escaped. */
static void comm_of(pid_t pid, char *buf, size_t len)
{
	char fn[64], raw[32] = "";
	FILE *f;

	snprintf(fn, sizeof(fn), PROC "/%d/comm", (int)pid);
	f = fopen(fn, "re");
	if (f) {
		if (fgets(raw, (int)sizeof(raw), f))
			raw[strcspn(raw, "\n")] = '\0';
		fclose(f);
	}
	if (!raw[0])
		snprintf(raw, sizeof(raw), "?");
	st_log_escape(buf, len, raw, strlen(raw));
}

static void lib_detach(struct tls_lib *l)
{
	for (size_t i = 0; i < N_PROBES; i++) {
		bpf_link__destroy(l->links[i]);
		l->links[i] = NULL;
	}
}

/* Attaches every probe to the file at path (a path this process can open: the target's
 * own through /proc/PID/root). 0, or -errno when a required function is missing. */
static int lib_attach(struct st_tls *tls, struct tls_lib *l, const char *path)
{
	char missing[256] = "";
	size_t ml = 0;

	for (size_t i = 0; i < N_PROBES; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = probes[i].fn, .retprobe = probes[i].ret);

		l->links[i] = bpf_program__attach_uprobe_opts(prog_of(tls->skel, probes[i].prog), -1,
							      path, 0, &o);
		if (l->links[i])
			continue;
		if (probes[i].required) {
			int err = -errno;

			pr_err("tls: %s: cannot probe %s: %s", l->name, probes[i].fn, strerror(-err));
			lib_detach(l);
			return err ? err : -ENOENT;
		}
		if (!probes[i].ret && ml < sizeof(missing) - 40)
			ml += (size_t)snprintf(missing + ml, sizeof(missing) - ml, " %s", probes[i].fn);
	}
	if (ml)
		pr_info("tls: %s has no%s (not probed)", l->name, missing);
	return 0;
}

static struct tls_lib *lib_find(struct st_tls *tls, dev_t dev, uint64_t ino)
{
	for (size_t i = 0; i < tls->n_libs; i++)
		if (tls->libs[i].dev == dev && tls->libs[i].ino == ino)
			return &tls->libs[i];
	return NULL;
}

static struct tls_lib *lib_add(struct st_tls *tls, dev_t dev, uint64_t ino, const char *name)
{
	struct tls_lib *l;

	if (tls->n_libs == tls->cap_libs) {
		size_t cap = tls->cap_libs ? tls->cap_libs * 2 : 4;
		void *p = realloc(tls->libs, cap * sizeof(*tls->libs));

		if (!p)
			return NULL;
		tls->libs = p;
		tls->cap_libs = cap;
	}
	l = &tls->libs[tls->n_libs];
	memset(l, 0, sizeof(*l));
	l->dev = dev;
	l->ino = ino;
	l->name = strdup(name);
	if (!l->name)
		return NULL;
	tls->n_libs++;
	return l;
}

/* --libssl PATH: attached at start, whatever maps it. */
static int attach_fixed(struct st_tls *tls)
{
	for (size_t i = 0; i < tls->t->n_libssl; i++) {
		const char *path = tls->t->libssl[i];
		struct tls_lib *l;
		struct stat st;
		int err;

		if (stat(path, &st)) {
			err = -errno;
			pr_err("tls: --libssl %s: %s", path, strerror(errno));
			return err;
		}
		if (lib_find(tls, st.st_dev, st.st_ino))
			continue;
		l = lib_add(tls, st.st_dev, st.st_ino, path);
		if (!l)
			return -ENOMEM;
		err = lib_attach(tls, l, path);
		if (err)
			return err;
		l->ok = true;
		pr_info("tls: probing %s", path);
	}
	return 0;
}

static bool seen_has(const struct st_tls *tls, pid_t pid)
{
	size_t lo = 0, hi = tls->n_seen;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (tls->seen[mid] == pid)
			return true;
		if (tls->seen[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Looks at a process of the target: attaches to the libssl it maps (unless --libssl fixed
 * them) and, the first time (!again), says so when none of its TLS can be seen. Returns 1
 * when it is seen, 0 when not, -1 when it is gone. */
static int examine(struct st_tls *tls, pid_t pid, bool again)
{
	struct st_tls_libref refs[MAX_LIBS_PER_PID];
	char comm[128], why[PATH_MAX + 128], path[ST_TLS_PATH_MAX + 64];
	bool probed = false;
	struct stat st;
	int n;

	n = st_tls_find_libssl(PROC, pid, refs, MAX_LIBS_PER_PID, NULL, NULL);
	if (n == -ENOENT || n == -ESRCH)
		return -1; /* gone already */
	if (!again)
		tls->pids++;
	comm_of(pid, comm, sizeof(comm));
	for (int i = 0; i < n; i++) {
		dev_t dev = makedev(refs[i].dev_major, refs[i].dev_minor);
		struct tls_lib *l = lib_find(tls, dev, refs[i].ino);

		if (l) {
			probed |= l->ok;
			continue;
		}
		if (tls->fixed)
			continue;
		/* the process's own view of the file (a container's libssl), by inode */
		snprintf(path, sizeof(path), PROC "/%d/root%.4095s", (int)pid, refs[i].path);
		if (stat(path, &st) || st.st_ino != refs[i].ino)
			continue;
		l = lib_add(tls, dev, refs[i].ino, refs[i].path);
		if (!l)
			continue;
		if (lib_attach(tls, l, path)) {
			tls->attach_failed++;
			pr_warn("tls: %s mapped by pid %d (%s) cannot be probed: its TLS is not seen",
				refs[i].path, (int)pid, comm);
			continue;
		}
		l->ok = true;
		probed = true;
		pr_info("tls: probing %s (first mapped by pid %d, %s)", refs[i].path, (int)pid,
			comm);
	}
	if (!probed && tls->fixed) {
		/* --libssl: a process is seen when it maps one of them, or runs one */
		snprintf(path, sizeof(path), PROC "/%d/exe", (int)pid);
		if (!stat(path, &st) && lib_find(tls, st.st_dev, st.st_ino))
			probed = true;
	}
	if (probed) {
		if (again)
			pr_warn("tls: pid %d (%s) maps a probed libssl now: its TLS is seen from here on",
				(int)pid, comm);
		return 1;
	}
	if (again)
		return 0;
	if (tls->fixed && n > 0)
		snprintf(why, sizeof(why), "it maps %s, not a --libssl file", refs[0].path);
	else
		st_tls_explain(PROC, pid, why, sizeof(why));
	pr_warn("tls: pid %d (%s): its TLS cannot be seen: %s", (int)pid, comm, why);
	return 0;
}

static void blind_add(struct st_tls *tls, pid_t pid)
{
	if (tls->n_blind == tls->cap_blind) {
		size_t cap = tls->cap_blind ? tls->cap_blind * 2 : 16;
		void *p = realloc(tls->blind, cap * sizeof(*tls->blind));

		if (!p)
			return;
		tls->blind = p;
		tls->cap_blind = cap;
	}
	tls->blind[tls->n_blind++] = pid;
}

/* The processes named blind, looked at again: a libssl loaded late (Python's ssl module,
 * a plugin) is probed then; gone ones drop out. */
static void blind_recheck(struct st_tls *tls)
{
	size_t kept = 0;

	for (size_t i = 0; i < tls->n_blind; i++)
		if (!examine(tls, tls->blind[i], true))
			tls->blind[kept++] = tls->blind[i];
	tls->n_blind = kept;
}

/* --iface: processes of the tgid map that are gone leave it (their pid may be another
 * process's later). */
static void tgids_prune(struct st_tls *tls)
{
	int fd = bpf_map__fd(tls->skel->maps.tgids);
	__u32 key, next, *prev = NULL, gone[256];
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next) && n < sizeof(gone) / sizeof(gone[0])) {
		key = next;
		prev = &key;
		if (kill((pid_t)key, 0) && errno == ESRCH)
			gone[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &gone[i]);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The target's processes now (sorted), or NULL with *n = 0. iface mode: the owners of
 * the listening sockets of the ports; only looked up when those sockets changed
 * (*unchanged then says so and nothing is returned). */
static pid_t *candidates(struct st_tls *tls, size_t *n, bool *unchanged)
{
	pid_t *pids = malloc(MAX_PIDS * sizeof(*pids));
	int r;

	*n = 0;
	*unchanged = false;
	if (!pids)
		return NULL;
	if (tls->t->cgroup) {
		r = st_tls_cgroup_pids(tls->t->cgroup, pids, MAX_PIDS);
	} else {
		uint64_t *ino = malloc(MAX_LISTEN * sizeof(*ino));

		if (!ino) {
			free(pids);
			return NULL;
		}
		r = st_tls_listen_inodes(PROC, tls->t->ports, tls->t->n_ports, ino, MAX_LISTEN);
		if (r >= 0) {
			qsort(ino, (size_t)r, sizeof(*ino), u64_cmp);
			if (tls->listen && (size_t)r == tls->n_listen &&
			    !memcmp(ino, tls->listen, (size_t)r * sizeof(*ino))) {
				*unchanged = true;
				free(ino);
				free(pids);
				return NULL;
			}
			free(tls->listen);
			tls->listen = ino;
			tls->n_listen = (size_t)r;
			r = st_tls_socket_owners(PROC, ino, (size_t)r, pids, MAX_PIDS);
		} else {
			free(ino);
		}
	}
	if (r < 0) {
		free(pids);
		return NULL;
	}
	*n = (size_t)r;
	return pids;
}

static void name_unattributed(struct st_tls *tls)
{
	__u32 key, next, *prev = NULL;
	int fd = bpf_map__fd(tls->skel->maps.unattributed);

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		bool done = false;
		__u64 bytes = 0;
		char comm[128];

		key = next;
		prev = &key;
		for (size_t i = 0; i < tls->n_warned; i++)
			done |= tls->warned[i] == key;
		if (done || bpf_map_lookup_elem(fd, &key, &bytes))
			continue;
		if (tls->n_warned == tls->cap_warned) {
			size_t cap = tls->cap_warned ? tls->cap_warned * 2 : 16;
			void *p = realloc(tls->warned, cap * sizeof(*tls->warned));

			if (!p)
				return;
			tls->warned = p;
			tls->cap_warned = cap;
		}
		tls->warned[tls->n_warned++] = key;
		comm_of((pid_t)key, comm, sizeof(comm));
		pr_warn("tls: pid %u (%s): %llu bytes of plaintext in SSL calls that did no socket "
			"I/O of their own (a memory BIO: Node.js, Envoy, Netty do that): no connection "
			"to put them on, not captured (tls_unattributed)", key, comm,
			(unsigned long long)bytes);
	}
}

static int scan(struct st_tls *tls)
{
	size_t n = 0, kept = 0;
	bool unchanged;
	pid_t *pids = candidates(tls, &n, &unchanged);
	__u8 one = 1;

	name_unattributed(tls);
	blind_recheck(tls);
	if (!tls->t->cgroup)
		tgids_prune(tls);
	if (unchanged)
		return 0;
	if (!pids)
		return tls->n_seen ? 0 : -ENOENT;
	for (size_t i = 0; i < n; i++) {
		if (i && pids[i] == pids[i - 1])
			continue;
		if (!tls->t->cgroup) {
			__u32 tgid = (__u32)pids[i];

			bpf_map__update_elem(tls->skel->maps.tgids, &tgid, sizeof(tgid), &one,
					     sizeof(one), 0);
		}
		if (!seen_has(tls, pids[i]) && !examine(tls, pids[i], false))
			blind_add(tls, pids[i]);
		pids[kept++] = pids[i];
	}
	/* what is seen now replaces what was: gone processes drop out, and a pid the
	 * kernel gives to another process later is examined afresh */
	free(tls->seen);
	tls->seen = pids;
	tls->n_seen = kept;
	return 0;
}

int st_tls__rescan(struct st_tls *tls)
{
	uint64_t ticks;

	if (read(tls->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	/* libbpf's complaints about a library's missing optional functions are detail */
	st_log_libbpf_setup(1);
	scan(tls);
	st_log_libbpf_setup(0);
	return 0;
}

static int open_timer(struct st_tls *tls)
{
	struct itimerspec its = {
		.it_interval = { ST_TLS_RESCAN_MS / 1000, (ST_TLS_RESCAN_MS % 1000) * 1000000L },
		.it_value = { ST_TLS_RESCAN_MS / 1000, (ST_TLS_RESCAN_MS % 1000) * 1000000L },
	};

	tls->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tls->timer_fd < 0 || timerfd_settime(tls->timer_fd, 0, &its, NULL))
		return -errno;
	return 0;
}

static int fill_maps(struct st_tls *tls, const struct st_target *t)
{
	struct tls_bpf *s = tls->skel;
	int err = st_tap__fill_filters(s->maps.ports, s->maps.hosts_v4, s->maps.hosts_v6, t);

	if (err)
		return err;
	if (t->cgroup) {
		__u32 zero = 0, fd = (__u32)tls->cgroup_fd;

		if (bpf_map__update_elem(s->maps.cgroups, &zero, sizeof(zero), &fd, sizeof(fd), 0))
			return -errno;
	}
	return 0;
}

/* The syscall tracepoints are opened by their id, which only tracefs tells (libbpf reads
 * it under /sys/kernel/debug/tracing when that exists, else /sys/kernel/tracing). Hosts
 * without it mounted (this VM: neither) get tracefs at its standard place, left mounted:
 * a pseudo filesystem other tools may start using meanwhile. */
static void ensure_tracefs(void)
{
	if (!access("/sys/kernel/debug/tracing/events/syscalls", F_OK) ||
	    !access("/sys/kernel/tracing/events/syscalls", F_OK))
		return;
	if (!access("/sys/kernel/debug/tracing", F_OK))
		return; /* debugfs's view of it, but without syscall events: nothing to mount */
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		pr_warn("tls: mounting tracefs on /sys/kernel/tracing: %s", strerror(errno));
	else
		pr_info("tls: mounted tracefs on /sys/kernel/tracing (the syscall tracepoints' ids)");
}

static int attach_io(struct st_tls *tls)
{
	ensure_tracefs();
	for (size_t i = 0; i < N_IO; i++) {
		tls->io_links[i] = bpf_program__attach_tracepoint(io_prog(tls->skel, i), "syscalls",
								  io_tps[i].tp);
		if (tls->io_links[i])
			continue;
		if (io_tps[i].required) {
			int err = -errno;

			pr_err("tls: attaching to tracepoint syscalls:%s: %s", io_tps[i].tp,
			       strerror(-err));
			return err;
		}
		pr_warn("tls: no tracepoint syscalls:%s: SSL calls doing their I/O with it are not "
			"placed on a connection", io_tps[i].tp);
	}
	if (!tls->t->cgroup) {
		tls->fork_link = bpf_program__attach_raw_tracepoint(tls->skel->progs.tls_fork,
								    "sched_process_fork");
		if (!tls->fork_link) {
			int err = -errno;

			pr_err("tls: attaching to sched_process_fork: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

struct st_tls *st_tls__open(const struct st_target *t, const struct st_tap_opts *o,
			    uint32_t ring_bytes)
{
	static const struct st_tap_opts all;
	struct st_tls *tls = calloc(1, sizeof(*tls));
	struct tls_bpf *s;
	int err;

	if (!tls)
		return NULL;
	if (!o)
		o = &all;
	tls->t = t;
	tls->cgroup_fd = -1;
	tls->timer_fd = -1;
	tls->fixed = t->n_libssl > 0;
	if (t->cgroup) {
		tls->cgroup_fd = open(t->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tls->cgroup_fd < 0) {
			err = -errno;
			pr_err("cgroup %s: %s", t->cgroup, strerror(errno));
			goto fail;
		}
	}
	s = tls->skel = tls_bpf__open();
	if (!s) {
		err = -errno;
		pr_err("tls: opening BPF object: %s", strerror(errno));
		goto fail;
	}
	bpf_map__set_max_entries(s->maps.ring, ring_bytes);
	s->rodata->wakeup_bytes = ring_bytes / 4 < (1u << 20) ? ring_bytes / 4 : (1u << 20);
	s->rodata->sample_permyriad = o->sample_permyriad ? o->sample_permyriad : ST_SAMPLE_ALL;
	s->rodata->host_filter = t->n_hosts ? ST_HOST_FILTER_ON : ST_HOST_FILTER_OFF;
	s->rodata->copy_in = o->copy[ST_DIR_IN];
	s->rodata->copy_out = o->copy[ST_DIR_OUT];
	s->rodata->head_bytes = o->head_bytes ? o->head_bytes : 256;
	s->rodata->filter_mode = t->cgroup ? ST_TLS_FILTER_CGROUP : ST_TLS_FILTER_TGID;
	bpf_program__set_autoload(s->progs.tls_fork, !t->cgroup);
	err = tls_bpf__load(s);
	if (err) {
		pr_err("tls: loading BPF programs: %s%s", strerror(-err),
		       err == -EPERM || err == -EACCES ? " (-v shows the kernel's reason)" : "");
		goto fail;
	}
	err = fill_maps(tls, t);
	if (err) {
		pr_err("tls: configuring filters: %s", strerror(-err));
		goto fail;
	}
	err = attach_io(tls);
	if (err)
		goto fail;
	if (tls->fixed) {
		err = attach_fixed(tls);
		if (err)
			goto fail;
	}
	err = open_timer(tls);
	if (err) {
		pr_err("tls: timer: %s", strerror(-err));
		goto fail;
	}
	scan(tls);
	if (!tls->n_libs || (!tls->fixed && !tls->pids)) {
		pr_warn("tls: %s: nothing to probe yet (%s); looked at again every %d s",
			t->cgroup ? t->cgroup : "the listening sockets of --port",
			tls->pids ? "no process maps a libssl" : "no process", ST_TLS_RESCAN_MS / 1000);
	} else {
		char names[512] = "";
		size_t nl = 0;

		for (size_t i = 0; i < tls->n_libs && nl < sizeof(names) - 2; i++)
			if (tls->libs[i].ok)
				nl += (size_t)snprintf(names + nl, sizeof(names) - nl, "%s%s",
						       nl ? ", " : "", tls->libs[i].name);
		pr_info("tls: %llu process(es), probing %s", (unsigned long long)tls->pids, names);
	}
	return tls;
fail:
	st_tls__destroy(tls);
	errno = -err;
	return NULL;
}

int st_tls__ring_fd(const struct st_tls *tls)
{
	return bpf_map__fd(tls->skel->maps.ring);
}

int st_tls__timer_fd(const struct st_tls *tls)
{
	return tls->timer_fd;
}

int st_tls__copy_whole_fd(const struct st_tls *tls)
{
	return bpf_map__fd(tls->skel->maps.copy_whole);
}

void st_tls__stats(const struct st_tls *tls, struct st_tls_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct st_counters *vals;
	struct st_tls_counters *tv;
	__u32 zero = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < tls->n_libs; i++)
		out->libs += tls->libs[i].ok;
	out->attach_failed = tls->attach_failed;
	out->pids = tls->pids;
	out->blind_pids = tls->n_blind;
	if (ncpu <= 0 || !tls->skel)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	tv = calloc((size_t)ncpu, sizeof(*tv));
	if (!vals || !tv)
		goto out;
	for (__u32 dir = 0; dir < ST_DIR_MAX; dir++) {
		struct st_counters *o = &out->kern[dir];

		if (bpf_map__lookup_elem(tls->skel->maps.counters, &dir, sizeof(dir), vals,
					 sizeof(*vals) * (size_t)ncpu, 0))
			continue;
		for (int c = 0; c < ncpu; c++) {
			const __u64 *src = (const __u64 *)&vals[c];
			__u64 *dst = (__u64 *)o;

			for (size_t k = 0; k < sizeof(*o) / sizeof(__u64); k++)
				dst[k] += src[k];
		}
	}
	if (!bpf_map__lookup_elem(tls->skel->maps.tls_counters, &zero, sizeof(zero), tv,
				  sizeof(*tv) * (size_t)ncpu, 0)) {
		for (int c = 0; c < ncpu; c++) {
			const __u64 *src = (const __u64 *)&tv[c];
			__u64 *dst = (__u64 *)&out->tls;

			for (size_t k = 0; k < sizeof(out->tls) / sizeof(__u64); k++)
				dst[k] += src[k];
		}
	}
out:
	free(vals);
	free(tv);
}

void st_tls__destroy(struct st_tls *tls)
{
	if (!tls)
		return;
	for (size_t i = 0; i < tls->n_libs; i++) {
		lib_detach(&tls->libs[i]);
		free(tls->libs[i].name);
	}
	for (size_t i = 0; i < N_IO; i++)
		bpf_link__destroy(tls->io_links[i]);
	bpf_link__destroy(tls->fork_link);
	tls_bpf__destroy(tls->skel);
	if (tls->cgroup_fd >= 0)
		close(tls->cgroup_fd);
	if (tls->timer_fd >= 0)
		close(tls->timer_fd);
	free(tls->libs);
	free(tls->seen);
	free(tls->listen);
	free(tls->warned);
	free(tls->blind);
	free(tls);
}
