/* SPDX-License-Identifier: GPL-2.0-only */
#include "tls.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "opts.h"
#include "tap.h"
#include "tlsdec.h"
#include "tlsfind.h"
#include "tls.skel.h"

#define PROC "/proc"
#define MAX_PIDS 65536
#define MAX_LISTEN 4096
#define MAX_LIBS_PER_PID 8
#define MAX_DRAIN_SOCKS 4096
#define MS 1000000ull
/* The timer: modes are decided every tick, the processes rescanned every RESCAN_TICKS. */
#define TICK_MS 250
#define RESCAN_TICKS (ST_TLS_RESCAN_MS / TICK_MS)
/* A mode stays at least this long; a decision needs this many new sessions (or, for calls
 * -> keys, this many traps) since the last one. */
#define DWELL_NS (1000 * MS)
#define MIN_SESSIONS 16
#define MIN_TRAPS 2000
/* The other mode must cost less than this share of the current one's traps. */
#define HYSTERESIS 0.7
/* Traps before any are measured: EVP_KDF_derive calls of a TLS 1.3 server handshake (21,
 * 22 resumed; TLS 1.2: 3-4), per-call probes' per session (SSL_set_fd, the handshake's
 * calls and returns, SSL_free) and per request (SSL_read twice, SSL_write, with returns). */
#define EST_KDF_PER_HS 21.0
#define EST_CALLS_PER_SESSION 6.0
#define EST_CALLS_PER_FLIGHT 6.0
/* A program that started in the cgroup is looked at this often until it maps a libssl. */
#define EXEC_RETRY_NS (20 * MS)
#define EXEC_GIVE_UP_NS (5000 * MS)

enum prog_id { P_READ, P_READ_EX, P_WRITE, P_WRITE_EX, P_HANDSHAKE, P_EXIT, P_SET_FD, P_FREE };

/* Every function probed in a libssl in calls mode. SSL_read and SSL_write are required (a
 * library without them is not an OpenSSL-compatible libssl); the rest are attached where the
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

/* The same functions for uprobe_multi links: one link of tls_m_enter over every entry (each
 * named by its cookie), one of tls_m_exit over the returns of the calls. */
static const struct {
	const char *fn;
	uint8_t kind;  /* enum st_tls_fn: the entry's cookie */
	bool ret;
	bool required;
} fns[] = {
	{ "SSL_read", ST_TLS_FN_READ, true, true },
	{ "SSL_write", ST_TLS_FN_WRITE, true, true },
	{ "SSL_read_ex", ST_TLS_FN_READ_EX, true, false },
	{ "SSL_write_ex", ST_TLS_FN_WRITE_EX, true, false },
	{ "SSL_read_early_data", ST_TLS_FN_READ_EX, true, false },
	{ "SSL_write_early_data", ST_TLS_FN_WRITE_EX, true, false },
	{ "SSL_do_handshake", ST_TLS_FN_HANDSHAKE, true, false },
	{ "SSL_set_fd", ST_TLS_FN_SET_FD, false, false },
	{ "SSL_free", ST_TLS_FN_FREE, false, false },
};
#define N_FNS (sizeof(fns) / sizeof(fns[0]))

/* libbpf 1.1 predates uprobe_multi links (kernel 6.6+): BPF_LINK_CREATE's attributes for them
 * (UAPI, stable). */
#define ST_BPF_TRACE_UPROBE_MULTI 48
#define ST_BPF_F_UPROBE_MULTI_RETURN 1u
struct uprobe_multi_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 mflags;
	__u32 pid;
	__u32 pad;
};

/* A uprobe_multi link of prog on path's offs (cookies) for pid alone: its fd, or -errno. */
static int multi_link(struct bpf_program *prog, const char *path, const __u64 *offs,
		      const __u64 *cookies, __u32 n, bool ret, pid_t pid)
{
	struct uprobe_multi_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)bpf_program__fd(prog);
	a.attach_type = ST_BPF_TRACE_UPROBE_MULTI;
	a.path = (__u64)(uintptr_t)path;
	a.offsets = (__u64)(uintptr_t)offs;
	a.cookies = (__u64)(uintptr_t)cookies;
	a.cnt = n;
	a.mflags = ret ? ST_BPF_F_UPROBE_MULTI_RETURN : 0;
	a.pid = (__u32)pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : (int)fd;
}

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

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

/* A library file (device and inode): libssl, libcrypto, or a --libssl file. */
struct tls_lib {
	dev_t dev;
	uint64_t ino;
	char *name;      /* the path as given or as the first process mapped it */
	bool bad;        /* the per-call probes cannot be attached (said once; not retried) */
	bool named;      /* said that it is probed */
	char missing[256]; /* optional functions it lacks */
	bool offs_done;  /* uprobe_multi: the functions' file offsets, looked up once */
	uint64_t offs[N_FNS];
	uint64_t kdf_off; /* a libcrypto's EVP_KDF_derive */
};

struct tls_proc {
	pid_t pid;
	char comm[32];
	struct tls_lib *ssl;        /* what the per-call probes go on (libssl or --libssl file) */
	char ssl_path[PATH_MAX];    /* ... opened through the process's root */
	struct tls_lib *crypto;     /* its libcrypto (keys mode) */
	char crypto_path[PATH_MAX];
	bool keys_ok;
	char why[256];              /* why keys mode cannot be used for it */
	uint8_t mode;               /* enum st_tls_mode */
	bool keys_pending;          /* keys chosen: the sessions go to the keys once the packet
				     * programs have had a rescan to see handshakes start */
	bool started;               /* a mode was given (and said) */
	uint64_t since;             /* when the mode was set */
	struct bpf_link *calls[N_PROBES]; /* a perf event per function (no uprobe_multi) */
	int calls_fd[2];            /* uprobe_multi: the entries' link, the returns' */
	bool calls_on;
	struct bpf_link *kdf;
	int kdf_fd;
	uint64_t kdf_until;         /* calls mode: the KDF probe stays for handshakes under way */
	/* keys mode: the per-call probes stay for the sessions begun before (their sockets) */
	uint64_t *drain;
	size_t n_drain;
	uint64_t drain_until;
	/* what the last decision saw, and what was measured */
	struct st_tls_proc snap;
	struct st_tlsdec_proc dsnap;
	double kdf_per_hs, calls_per_flight;
	bool gone;
	bool blind;                 /* named as not seen (looked at again each rescan) */
	uint64_t exec_retry;        /* started in the cgroup, no libssl yet: look again then */
	uint64_t exec_since;
};

struct st_tls {
	struct tls_bpf *skel;
	const struct st_target *t;
	struct st_tls_hooks hooks;
	struct st_tlsdec *dec;
	int cgroup_fd;
	int timer_fd;
	unsigned ticks;
	bool multi;                 /* the kernel has uprobe_multi links (6.6+) */
	bool keys;                  /* keys mode may be used */
	bool keylog_only;           /* --keylog without --tls: keys mode only, no plaintext */
	bool cipher_on;             /* the tap's packet programs are attached */
	struct bpf_link *io_links[N_IO];
	struct bpf_link *fork_link, *exec_link;
	struct tls_lib *libs;
	size_t n_libs, cap_libs;
	bool fixed;                 /* --libssl: only those files */
	struct tls_proc **procs;
	size_t n_procs, cap_procs;
	uint64_t *listen;           /* iface mode: the listening socket inodes last seen */
	size_t n_listen;
	uint32_t *warned;           /* tgids named for unattributed plaintext */
	size_t n_warned, cap_warned;
	uint64_t pids, attach_failed, mode_changes, cut;
	bool exec_pending;
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

static const char *mode_name(uint8_t mode)
{
	return mode == ST_TLS_MODE_KEYS ? "keys" : "calls";
}

/* ---- libraries --------------------------------------------------------------------------- */

static struct tls_lib *lib_find(struct st_tls *tls, dev_t dev, uint64_t ino)
{
	for (size_t i = 0; i < tls->n_libs; i++)
		if (tls->libs[i].dev == dev && tls->libs[i].ino == ino)
			return &tls->libs[i];
	return NULL;
}

/* The library (dev, ino), added when new. Pointers into libs stay valid: it never moves once
 * processes point at it (its capacity is fixed at open). */
static struct tls_lib *lib_get(struct st_tls *tls, dev_t dev, uint64_t ino, const char *name)
{
	struct tls_lib *l = lib_find(tls, dev, ino);

	if (l)
		return l;
	if (tls->n_libs == tls->cap_libs)
		return NULL;
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

/* ---- probes of one process --------------------------------------------------------------- */

static void calls_detach(struct tls_proc *p)
{
	for (size_t i = 0; i < N_PROBES; i++) {
		bpf_link__destroy(p->calls[i]);
		p->calls[i] = NULL;
	}
	fd_close(&p->calls_fd[0]);
	fd_close(&p->calls_fd[1]);
	p->calls_on = false;
}

/* uprobe_multi: the entries and the returns of p's libssl functions, two links. 0 or -errno
 * (-ENOENT: SSL_read or SSL_write missing). */
static int calls_attach_multi(struct st_tls *tls, struct tls_proc *p)
{
	struct tls_lib *l = p->ssl;
	__u64 offs[N_FNS], cookies[N_FNS], roffs[N_FNS];
	__u32 n = 0, nr = 0;
	size_t ml = 0;

	if (!l->offs_done) {
		const char *names[N_FNS];

		for (size_t i = 0; i < N_FNS; i++)
			names[i] = fns[i].fn;
		st_tls_elf_func_offsets(p->ssl_path, names, N_FNS, l->offs);
		l->offs_done = true;
		l->missing[0] = '\0';
		for (size_t i = 0; i < N_FNS && ml < sizeof(l->missing) - 40; i++)
			if (!l->offs[i] && !fns[i].required)
				ml += (size_t)snprintf(l->missing + ml, sizeof(l->missing) - ml, " %s",
						       fns[i].fn);
	}
	for (size_t i = 0; i < N_FNS; i++) {
		if (!l->offs[i]) {
			if (fns[i].required)
				return -ENOENT;
			continue;
		}
		offs[n] = l->offs[i];
		cookies[n++] = fns[i].kind;
		if (fns[i].ret)
			roffs[nr++] = l->offs[i];
	}
	p->calls_fd[0] = multi_link(tls->skel->progs.tls_m_enter, p->ssl_path, offs, cookies, n,
				    false, p->pid);
	if (p->calls_fd[0] < 0)
		return p->calls_fd[0];
	p->calls_fd[1] = multi_link(tls->skel->progs.tls_m_exit, p->ssl_path, roffs, NULL, nr, true,
				    p->pid);
	if (p->calls_fd[1] < 0) {
		int err = p->calls_fd[1];

		fd_close(&p->calls_fd[0]);
		return err;
	}
	return 0;
}

/* The per-call probes on p's libssl, for p alone. 0, or -errno when a required function is
 * missing (the library is marked: it is not tried again). */
static int calls_attach(struct st_tls *tls, struct tls_proc *p)
{
	struct tls_lib *l = p->ssl;
	size_t ml = 0;

	if (p->calls_on)
		return 0;
	if (!l || l->bad)
		return -ENOENT;
	if (tls->multi) {
		int err = calls_attach_multi(tls, p);

		if (err == -ESRCH || (err == -ENOENT && access(p->ssl_path, F_OK)))
			return err; /* the process (or its view of the file) is gone */
		if (err) {
			pr_err("tls: %s: cannot probe %s: %s", l->name,
			       err == -ENOENT ? "SSL_read and SSL_write (one is missing)" : "it",
			       strerror(-err));
			l->bad = true;
			tls->attach_failed++;
			return err;
		}
		goto attached;
	}
	l->missing[0] = '\0';
	for (size_t i = 0; i < N_PROBES; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = probes[i].fn, .retprobe = probes[i].ret);

		p->calls[i] = bpf_program__attach_uprobe_opts(prog_of(tls->skel, probes[i].prog),
							      p->pid, p->ssl_path, 0, &o);
		if (p->calls[i])
			continue;
		if (probes[i].required) {
			int err = -errno;

			if (err == -ESRCH || err == -ENOENT) {
				/* the process (or its view of the file) is gone */
				calls_detach(p);
				return err;
			}
			pr_err("tls: %s: cannot probe %s: %s", l->name, probes[i].fn, strerror(-err));
			calls_detach(p);
			l->bad = true;
			tls->attach_failed++;
			return err ? err : -ENOENT;
		}
		if (!probes[i].ret && ml < sizeof(l->missing) - 40)
			ml += (size_t)snprintf(l->missing + ml, sizeof(l->missing) - ml, " %s",
					       probes[i].fn);
	}
attached:
	p->calls_on = true;
	if (!l->named) {
		l->named = true;
		pr_info("tls: probing %s (first for pid %d, %s)", l->name, (int)p->pid, p->comm);
		if (l->missing[0])
			pr_info("tls: %s has no%s (not probed)", l->name, l->missing);
	}
	return 0;
}

/* EVP_KDF_derive probed in p (a uprobe_multi link, or a perf event) */
static bool kdf_on(const struct tls_proc *p)
{
	return p->kdf || p->kdf_fd >= 0;
}

static void kdf_detach(struct tls_proc *p)
{
	bpf_link__destroy(p->kdf);
	p->kdf = NULL;
	fd_close(&p->kdf_fd);
	p->kdf_until = 0;
}

static int kdf_attach(struct st_tls *tls, struct tls_proc *p)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = "EVP_KDF_derive");
	int err = 0;

	p->kdf_until = 0;
	if (kdf_on(p))
		return 0;
	if (tls->multi && p->crypto) {
		static const char *const name[] = { "EVP_KDF_derive" };
		__u64 cookie = 0;

		if (!p->crypto->kdf_off)
			st_tls_elf_func_offsets(p->crypto_path, name, 1, &p->crypto->kdf_off);
		p->kdf_fd = p->crypto->kdf_off ?
			multi_link(tls->skel->progs.tls_m_kdf, p->crypto_path,
				   (const __u64 *)&p->crypto->kdf_off, &cookie, 1, false, p->pid) :
			-ENOENT;
		err = p->kdf_fd < 0 ? p->kdf_fd : 0;
	} else {
		p->kdf = bpf_program__attach_uprobe_opts(tls->skel->progs.tls_kdf, p->pid,
							 p->crypto_path, 0, &o);
		err = p->kdf ? 0 : -errno;
	}
	if (err) {
		if (err != -ESRCH && err != -ENOENT)
			pr_warn("tls: pid %d (%s): cannot probe EVP_KDF_derive in %s: %s", (int)p->pid,
				p->comm, p->crypto ? p->crypto->name : "?", strerror(-err));
		return err;
	}
	if (p->crypto && !p->crypto->named) {
		p->crypto->named = true;
		pr_info("tls: probing EVP_KDF_derive in %s (first for pid %d, %s)", p->crypto->name,
			(int)p->pid, p->comm);
	}
	return 0;
}

static void mode_map(struct st_tls *tls, pid_t pid, uint8_t mode)
{
	__u32 tgid = (__u32)pid;

	if (mode == ST_TLS_MODE_CALLS)
		bpf_map__delete_elem(tls->skel->maps.modes, &tgid, sizeof(tgid), 0);
	else
		bpf_map__update_elem(tls->skel->maps.modes, &tgid, sizeof(tgid), &mode, sizeof(mode), 0);
}

static void drain_end(struct tls_proc *p)
{
	free(p->drain);
	p->drain = NULL;
	p->n_drain = 0;
	p->drain_until = 0;
}

/* The keys take p's new sessions; the per-call probes stay for the ones under way (their
 * sockets now), until they end. */
static void drain_start(struct st_tls *tls, struct tls_proc *p)
{
	uint64_t *socks = malloc(MAX_DRAIN_SOCKS * sizeof(*socks));
	int n;

	drain_end(p);
	if (!socks)
		return;
	n = st_tls_established(PROC, p->pid, tls->t->ports, tls->t->n_ports, socks,
			       MAX_DRAIN_SOCKS);
	if (n <= 0) {
		free(socks);
		calls_detach(p);
		return;
	}
	if (!p->calls_on && calls_attach(tls, p)) {
		free(socks);
		return;
	}
	p->drain = socks;
	p->n_drain = (size_t)n;
	p->drain_until = st_loop_mono_ns() + ST_TLS_DRAIN_MAX_MS * MS;
	pr_info("tls: pid %d (%s): %d session(s) began before keys mode: per-call probes kept "
		"until they end (at most %d s)", (int)p->pid, p->comm, n, ST_TLS_DRAIN_MAX_MS / 1000);
}

/* Whether a draining process's old sessions ended (their sockets gone); at the limit the ones
 * left are cut (said and counted). */
static void drain_check(struct st_tls *tls, struct tls_proc *p, uint64_t now)
{
	uint64_t *cur;
	size_t left = 0;
	int n;

	if (!p->drain)
		return;
	cur = malloc(MAX_DRAIN_SOCKS * sizeof(*cur));
	if (!cur)
		return;
	n = st_tls_established(PROC, p->pid, tls->t->ports, tls->t->n_ports, cur, MAX_DRAIN_SOCKS);
	for (size_t i = 0; i < p->n_drain; i++)
		for (int j = 0; j < n; j++)
			if (cur[j] == p->drain[i]) {
				p->drain[left++] = p->drain[i];
				break;
			}
	free(cur);
	p->n_drain = left;
	if (left && now < p->drain_until)
		return;
	if (left) {
		tls->cut += left;
		pr_warn("tls: pid %d (%s): %zu session(s) begun before keys mode still open after "
			"%d s: no longer captured (tls_cut)", (int)p->pid, p->comm, left,
			ST_TLS_DRAIN_MAX_MS / 1000);
	}
	drain_end(p);
	if (p->mode == ST_TLS_MODE_KEYS)
		calls_detach(p);
}

/* The tap's packet programs follow whether keys mode needs the ciphertext. */
static int cipher_want(struct st_tls *tls, bool on)
{
	int err;

	if (on == tls->cipher_on || !tls->hooks.cipher)
		return 0;
	err = tls->hooks.cipher(tls->hooks.ctx, on);
	if (err) {
		pr_err("tls: %s the packet programs for keys mode: %s", on ? "attaching" : "detaching",
		       strerror(-err));
		return err;
	}
	tls->cipher_on = on;
	if (!tls->keylog_only) /* --keylog alone: a capture, the ciphertext all along */
		pr_info("tls: the ciphertext of --port is %s (keys mode %s)",
			on ? "captured" : "no longer captured", on ? "in use" : "unused");
	return 0;
}

/*
 * Gives p mode (start: its first). Keys: the ciphertext on, EVP_KDF_derive probed, the
 * sessions that start go to the keys (now at start or when the packet programs were already
 * on, else after a rescan: handshakes must be seen from their first packet), the per-call
 * probes kept for the sessions under way. Calls: the per-call probes on, the sessions go to
 * them; the EVP_KDF_derive probe stays ST_TLS_KDF_LINGER_MS for handshakes under way.
 */
static int set_mode(struct st_tls *tls, struct tls_proc *p, uint8_t mode, bool start)
{
	uint64_t now = st_loop_mono_ns();
	int err;

	if (mode == ST_TLS_MODE_KEYS) {
		bool was_on = tls->cipher_on;

		err = cipher_want(tls, true);
		if (!err)
			err = kdf_attach(tls, p);
		if (err)
			return err;
		p->keys_pending = !start && !was_on;
		if (!p->keys_pending) {
			mode_map(tls, p->pid, mode);
			if (!tls->keylog_only)
				drain_start(tls, p);
		} else if (!p->calls_on) {
			calls_attach(tls, p);
		}
	} else {
		err = calls_attach(tls, p);
		if (err)
			return err;
		drain_end(p);
		p->keys_pending = false;
		mode_map(tls, p->pid, mode);
		if (kdf_on(p))
			p->kdf_until = now + ST_TLS_KDF_LINGER_MS * MS;
	}
	p->mode = mode;
	/* a first mode may change at the first decision (a start costs nothing to undo); a
	 * change stays DWELL_NS at least */
	p->since = start ? now - DWELL_NS : now;
	p->started = true;
	return 0;
}

static void proc_free(struct st_tls *tls, struct tls_proc *p)
{
	__u32 tgid = (__u32)p->pid;

	calls_detach(p);
	kdf_detach(p);
	drain_end(p);
	bpf_map__delete_elem(tls->skel->maps.modes, &tgid, sizeof(tgid), 0);
	free(p);
}

static struct tls_proc *proc_find(struct st_tls *tls, pid_t pid)
{
	for (size_t i = 0; i < tls->n_procs; i++)
		if (tls->procs[i]->pid == pid)
			return tls->procs[i];
	return NULL;
}

static struct tls_proc *proc_new(struct st_tls *tls, pid_t pid)
{
	struct tls_proc *p;

	if (tls->n_procs == tls->cap_procs) {
		size_t cap = tls->cap_procs ? tls->cap_procs * 2 : 16;
		void *q = realloc(tls->procs, cap * sizeof(*tls->procs));

		if (!q)
			return NULL;
		tls->procs = q;
		tls->cap_procs = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->calls_fd[0] = p->calls_fd[1] = p->kdf_fd = -1;
	p->kdf_per_hs = EST_KDF_PER_HS;
	p->calls_per_flight = EST_CALLS_PER_FLIGHT;
	comm_of(pid, p->comm, sizeof(p->comm));
	tls->procs[tls->n_procs++] = p;
	tls->pids++;
	return p;
}

/* ---- what a process maps ------------------------------------------------------------------ */

/* A --libssl file the process maps or runs, into p->ssl (its path through the process's
 * root). */
static bool find_fixed(struct st_tls *tls, struct tls_proc *p)
{
	char fn[64], line[ST_TLS_PATH_MAX + 256], path[ST_TLS_PATH_MAX];
	unsigned maj, min;
	uint64_t ino;
	FILE *f;

	snprintf(fn, sizeof(fn), PROC "/%d/maps", (int)p->pid);
	f = fopen(fn, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		struct tls_lib *l;

		if (st_tls_parse_maps_line(line, path, sizeof(path), &ino, &maj, &min) != 1)
			continue;
		l = lib_find(tls, makedev(maj, min), ino);
		if (l && !l->bad) {
			p->ssl = l;
			snprintf(p->ssl_path, sizeof(p->ssl_path), PROC "/%d/root%.4000s", (int)p->pid,
				 path);
			fclose(f);
			return true;
		}
	}
	fclose(f);
	return false;
}

/*
 * What p maps: the libssl the per-call probes go on (or a --libssl file), its libcrypto, and
 * whether keys mode can read it (said why not). Returns 1 when it has one, 0 when not (yet),
 * -1 when the process is gone.
 */
static int examine(struct st_tls *tls, struct tls_proc *p)
{
	struct st_tls_libref refs[MAX_LIBS_PER_PID], cr;
	struct stat st;
	char path[PATH_MAX];
	int n;

	n = st_tls_find_libssl(PROC, p->pid, refs, MAX_LIBS_PER_PID, NULL, NULL);
	if (n == -ENOENT || n == -ESRCH)
		return -1;
	p->ssl = NULL;
	if (tls->fixed) {
		if (!find_fixed(tls, p))
			return 0;
		snprintf(p->why, sizeof(p->why), "--libssl %s is probed with per-call probes only",
			 p->ssl->name);
		p->keys_ok = false;
		return 1;
	}
	for (int i = 0; i < n && !p->ssl; i++) {
		struct tls_lib *l;

		/* the process's own view of the file (a container's libssl), by inode */
		snprintf(path, sizeof(path), PROC "/%d/root%.4000s", (int)p->pid, refs[i].path);
		if (stat(path, &st) || st.st_ino != refs[i].ino)
			continue;
		l = lib_get(tls, makedev(refs[i].dev_major, refs[i].dev_minor), refs[i].ino,
			    refs[i].path);
		if (!l || l->bad)
			continue;
		p->ssl = l;
		snprintf(p->ssl_path, sizeof(p->ssl_path), "%s", path);
	}
	if (!p->ssl)
		return 0;
	p->crypto = NULL;
	p->keys_ok = false;
	if (st_tls_find_libcrypto(PROC, p->pid, &cr) == 1) {
		snprintf(p->crypto_path, sizeof(p->crypto_path), PROC "/%d/root%.4000s", (int)p->pid,
			 cr.path);
		if (!stat(p->crypto_path, &st) && st.st_ino == cr.ino)
			p->crypto = lib_get(tls, makedev(cr.dev_major, cr.dev_minor), cr.ino, cr.path);
	}
	p->keys_ok = st_tls_keys_capable(p->ssl_path, p->crypto ? p->crypto_path : NULL, p->why,
					 sizeof(p->why));
	return 1;
}

/* The mode p starts in: --tls-mode's, or (auto) keys where it can: one handshake's traps
 * instead of several per request, until what it does says otherwise. */
static uint8_t start_mode(const struct st_tls *tls, const struct tls_proc *p)
{
	if (!tls->keys || !p->keys_ok)
		return ST_TLS_MODE_CALLS;
	return ST_TLS_MODE_KEYS;
}

/* Probes a process that has a library now: its mode, said. */
static void proc_begin(struct st_tls *tls, struct tls_proc *p, uint8_t mode, const char *how)
{
	if (tls->keylog_only) {
		if (!p->keys_ok) {
			pr_warn("tls: pid %d (%s): its secrets cannot be read (%s): --keylog has "
				"nothing of it", (int)p->pid, p->comm, p->why);
			p->started = true;
			p->mode = ST_TLS_MODE_CALLS;
			return;
		}
		mode = ST_TLS_MODE_KEYS;
	}
	if (set_mode(tls, p, mode, true)) {
		if (mode == ST_TLS_MODE_KEYS && !tls->keylog_only && !set_mode(tls, p,
									       ST_TLS_MODE_CALLS, true))
			mode = ST_TLS_MODE_CALLS;
		else
			return;
	}
	if (mode == ST_TLS_MODE_KEYS)
		pr_info("tls: pid %d (%s)%s: keys mode: secrets once per handshake (EVP_KDF_derive "
			"in %s), %s", (int)p->pid, p->comm, how, p->crypto ? p->crypto->name : "?",
			tls->keylog_only ? "for --keylog" : "the ciphertext of --port decrypted");
	else if (p->keys_ok)
		pr_info("tls: pid %d (%s)%s: calls mode: per-call probes on %s%s", (int)p->pid, p->comm,
			how, p->ssl->name, tls->keys ? "" : " (--tls-mode calls)");
	else if (tls->t->tls_mode == ST_TLSM_KEYS || tls->t->keylog)
		pr_warn("tls: pid %d (%s)%s: calls mode, not keys: %s", (int)p->pid, p->comm, how,
			p->why);
	else
		pr_info("tls: pid %d (%s)%s: calls mode: per-call probes on %s (keys mode cannot be "
			"used: %s)", (int)p->pid, p->comm, how, p->ssl->name, p->why);
}

/* Says once why a process of the target is not seen (it is looked at again later). */
static void name_blind(struct st_tls *tls, struct tls_proc *p)
{
	char why[PATH_MAX + 128];

	if (p->blind)
		return;
	p->blind = true;
	if (tls->fixed)
		snprintf(why, sizeof(why), "it maps none of the --libssl files");
	else
		st_tls_explain(PROC, p->pid, why, sizeof(why));
	pr_warn("tls: pid %d (%s): its TLS cannot be seen: %s", (int)p->pid, p->comm, why);
}

/* A process of the target seen: probed when it maps a library, else named (once). */
static void look_at(struct st_tls *tls, struct tls_proc *p, const char *how)
{
	int r;

	if (p->started)
		return;
	r = examine(tls, p);
	if (r < 0) {
		p->gone = true;
		return;
	}
	if (!r) {
		if (!p->exec_since)
			name_blind(tls, p);
		return;
	}
	if (p->blind)
		pr_warn("tls: pid %d (%s) maps a probed library now: its TLS is seen from here on",
			(int)p->pid, p->comm);
	p->blind = false;
	p->exec_since = 0;
	proc_begin(tls, p, start_mode(tls, p), how);
}

/* ---- modes, decided ----------------------------------------------------------------------- */

static void read_proc(const struct st_tls *tls, pid_t pid, struct st_tls_proc *out)
{
	__u32 tgid = (__u32)pid;

	if (bpf_map__lookup_elem(tls->skel->maps.procs, &tgid, sizeof(tgid), out, sizeof(*out), 0))
		memset(out, 0, sizeof(*out));
}

/*
 * auto: what p's connections cost in its current mode against what they would cost in the
 * other, per connection, with the requests per connection of the connections that ended since
 * the last decision (a connection's requests are known when it ends; one still open, a
 * keep-alive one, goes on adding requests the keys do not pay for):
 *   keys:  the EVP_KDF_derive traps a handshake cost p (measured, else 21);
 *   calls: EST_CALLS_PER_SESSION + requests x the traps a request cost p in calls mode
 *          (measured, else 6).
 * It switches when the other costs less than HYSTERESIS of the current, with at least
 * MIN_SESSIONS connections ended behind the decision. In calls mode, sessions that carry many
 * requests and do not end (MIN_TRAPS traps in a window with few new sessions) go to keys mode
 * too: their cost is the requests'. Keys mode that finds no secrets for the sessions left to
 * it (an OpenSSL that derives otherwise) is given up for that process, said.
 */
static void decide(struct st_tls *tls, struct tls_proc *p, uint64_t now)
{
	struct st_tls_proc k;
	struct st_tlsdec_proc dp = { 0 };
	uint64_t traps, sessions, flights, kdf, keyed, hs, ended, eflights;
	double cost, other, fpc;
	uint8_t to;

	read_proc(tls, p->pid, &k);
	if (tls->dec)
		st_tlsdec__proc(tls->dec, (uint32_t)p->pid, &dp);
	kdf = k.kdf - p->snap.kdf;
	/* the per-call probes' own (EVP_KDF_derive stays a moment after keys mode) */
	traps = k.traps - p->snap.traps - kdf;
	sessions = k.sessions - p->snap.sessions;
	flights = k.flights - p->snap.flights;
	keyed = k.keyed - p->snap.keyed;
	hs = dp.handshakes - p->dsnap.handshakes;
	if (p->mode == ST_TLS_MODE_KEYS && !p->keys_pending && keyed >= MIN_SESSIONS && !hs &&
	    k.kdf_sent == p->snap.kdf_sent) {
		p->keys_ok = false;
		snprintf(p->why, sizeof(p->why), "%llu sessions left to the keys, no secret came "
			 "(EVP_KDF_derive not called with its parameters)", (unsigned long long)keyed);
		pr_warn("tls: pid %d (%s): keys mode given up: %s; calls mode", (int)p->pid, p->comm,
			p->why);
		if (!set_mode(tls, p, ST_TLS_MODE_CALLS, false))
			tls->mode_changes++;
		goto snap;
	}
	if (tls->t->tls_mode != ST_TLSM_AUTO || tls->keylog_only || !p->keys_ok ||
	    p->keys_pending || p->drain || now - p->since < DWELL_NS)
		goto snap;
	if (p->mode == ST_TLS_MODE_CALLS) {
		ended = k.ended - p->snap.ended;
		eflights = k.ended_flights - p->snap.ended_flights;
		if (sessions >= 4 && flights) {
			double b = ((double)traps - EST_CALLS_PER_SESSION * (double)sessions) /
				   (double)flights;

			p->calls_per_flight = b < 1 ? 1 : b > 64 ? 64 : b;
		}
		if (ended >= MIN_SESSIONS) {
			fpc = (double)eflights / (double)ended;
			cost = EST_CALLS_PER_SESSION + p->calls_per_flight * fpc;
			other = p->kdf_per_hs;
		} else if (traps >= MIN_TRAPS && sessions < MIN_SESSIONS) {
			/* long sessions, many requests: what they cost against one handshake each */
			fpc = (double)flights / (double)(sessions ? sessions : 1);
			cost = (double)traps / (double)(sessions ? sessions : 1);
			other = p->kdf_per_hs;
		} else {
			return; /* not enough seen yet: the window grows */
		}
		to = ST_TLS_MODE_KEYS;
	} else {
		ended = dp.ended - p->dsnap.ended;
		eflights = dp.ended_flights - p->dsnap.ended_flights;
		if (hs >= 4)
			p->kdf_per_hs = (double)kdf / (double)hs;
		if (ended < MIN_SESSIONS)
			return;
		fpc = (double)eflights / (double)ended;
		cost = p->kdf_per_hs;
		other = EST_CALLS_PER_SESSION + p->calls_per_flight * fpc;
		to = ST_TLS_MODE_CALLS;
	}
	if (other < HYSTERESIS * cost && !set_mode(tls, p, to, false)) {
		tls->mode_changes++;
		pr_info("tls: pid %d (%s): %s -> %s mode (%.1f requests per connection: ~%.0f traps "
			"per connection instead of ~%.0f)", (int)p->pid, p->comm,
			mode_name(to == ST_TLS_MODE_KEYS ? ST_TLS_MODE_CALLS : ST_TLS_MODE_KEYS),
			mode_name(to), fpc, other, cost);
	}
snap:
	p->snap = k;
	p->dsnap = dp;
}

/* ---- processes: scan, events -------------------------------------------------------------- */

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

/* Processes gone (or no longer the target's) leave, with their probes. */
static void procs_prune(struct st_tls *tls, const pid_t *cand, size_t n, bool have_cand)
{
	size_t kept = 0;

	for (size_t i = 0; i < tls->n_procs; i++) {
		struct tls_proc *p = tls->procs[i];
		bool in = !have_cand || p->exec_since;

		for (size_t j = 0; !in && j < n; j++)
			in = cand[j] == p->pid;
		if (p->gone || !in || (kill(p->pid, 0) && errno == ESRCH)) {
			proc_free(tls, p);
			continue;
		}
		tls->procs[kept++] = p;
	}
	tls->n_procs = kept;
}

static void scan(struct st_tls *tls)
{
	size_t n = 0;
	bool unchanged;
	pid_t *pids = candidates(tls, &n, &unchanged);
	__u8 one = 1;

	name_unattributed(tls);
	if (!tls->t->cgroup)
		tgids_prune(tls);
	for (size_t i = 0; i < n; i++) {
		struct tls_proc *p;

		if (i && pids[i] == pids[i - 1])
			continue;
		if (!tls->t->cgroup) {
			__u32 tgid = (__u32)pids[i];

			bpf_map__update_elem(tls->skel->maps.tgids, &tgid, sizeof(tgid), &one,
					     sizeof(one), 0);
		}
		p = proc_find(tls, pids[i]);
		if (!p)
			p = proc_new(tls, pids[i]);
		if (p)
			look_at(tls, p, "");
	}
	/* named blind before: a library loaded late (Python's ssl module, a plugin) */
	for (size_t i = 0; i < tls->n_procs; i++)
		if (!tls->procs[i]->started && !tls->procs[i]->exec_since)
			look_at(tls, tls->procs[i], "");
	procs_prune(tls, pids, n, !unchanged && pids);
	free(pids);
}

/* Every tick: modes decided, drains and lingering probes ended, the ciphertext kept only
 * while keys mode needs it; every RESCAN_TICKS: the processes looked for. */
static void tick(struct st_tls *tls)
{
	uint64_t now = st_loop_mono_ns();
	bool want = false;

	if (++tls->ticks % RESCAN_TICKS == 0)
		scan(tls);
	for (size_t i = 0; i < tls->n_procs; i++) {
		struct tls_proc *p = tls->procs[i];

		if (!p->started)
			continue;
		if (p->keys_pending && tls->cipher_on) {
			/* the packet programs have had a tick to see handshakes begin */
			p->keys_pending = false;
			mode_map(tls, p->pid, ST_TLS_MODE_KEYS);
			drain_start(tls, p);
		}
		drain_check(tls, p, now);
		if (p->mode == ST_TLS_MODE_CALLS && kdf_on(p) && p->kdf_until && now >= p->kdf_until)
			kdf_detach(p);
		decide(tls, p, now);
		want |= p->mode == ST_TLS_MODE_KEYS || kdf_on(p);
	}
	if (tls->dec && st_tlsdec__open_keyed(tls->dec))
		want = true; /* connections still decrypted */
	if (!want && tls->cipher_on && !tls->keylog_only)
		cipher_want(tls, false);
}

int st_tls__rescan(struct st_tls *tls)
{
	uint64_t ticks;

	if (read(tls->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	/* libbpf's complaints about a library's missing optional functions are detail */
	st_log_libbpf_setup(1);
	tick(tls);
	st_log_libbpf_setup(0);
	return 0;
}

void st_tls__proc_event(struct st_tls *tls, const void *rec, size_t size)
{
	const struct st_proc_rec *r = rec;
	struct tls_proc *p, *parent;

	if (size < sizeof(*r) || r->version != ST_ABI_VERSION || r->type != ST_REC_PROC)
		return;
	st_log_libbpf_setup(1);
	p = proc_find(tls, (pid_t)r->tgid);
	if (r->event == ST_PROC_FORK) {
		parent = proc_find(tls, (pid_t)r->parent);
		if (!p)
			p = proc_new(tls, (pid_t)r->tgid);
		if (p && !p->started) {
			int e = examine(tls, p);

			if (e < 0)
				p->gone = true;
			else if (e > 0)
				/* the parent's mode: its children do what it did */
				proc_begin(tls, p, parent && parent->started && p->keys_ok ?
						   parent->mode : start_mode(tls, p),
					   " (forked)");
		}
	} else if (r->event == ST_PROC_EXEC) {
		/* a program started in the cgroup: it maps its libraries shortly */
		if (p && p->started) {
			/* another program in the same process: its probes start over */
			calls_detach(p);
			kdf_detach(p);
			drain_end(p);
			p->started = false;
			mode_map(tls, p->pid, ST_TLS_MODE_CALLS);
		}
		if (!p)
			p = proc_new(tls, (pid_t)r->tgid);
		if (p) {
			p->exec_since = st_loop_mono_ns();
			p->exec_retry = p->exec_since;
			comm_of(p->pid, p->comm, sizeof(p->comm));
			tls->exec_pending = true;
		}
	}
	st_log_libbpf_setup(0);
}

void st_tls__poll(struct st_tls *tls)
{
	uint64_t now;
	bool more = false;

	if (!tls->exec_pending)
		return;
	now = st_loop_mono_ns();
	st_log_libbpf_setup(1);
	for (size_t i = 0; i < tls->n_procs; i++) {
		struct tls_proc *p = tls->procs[i];

		if (!p->exec_since)
			continue;
		if (p->gone) {
			p->exec_since = 0; /* exited already: the rescan prunes it */
			continue;
		}
		if (now < p->exec_retry) {
			more = true;
			continue;
		}
		comm_of(p->pid, p->comm, sizeof(p->comm));
		look_at(tls, p, " (started)");
		if (p->exec_since && now - p->exec_since > EXEC_GIVE_UP_NS) {
			p->exec_since = 0; /* the rescan names it blind and looks again */
		} else if (p->exec_since) {
			p->exec_retry = now + EXEC_RETRY_NS;
			more = true;
		}
	}
	tls->exec_pending = more;
	st_log_libbpf_setup(0);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int open_timer(struct st_tls *tls)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
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
	for (size_t i = 0; i < N_IO && !tls->keylog_only; i++) {
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
	tls->fork_link = bpf_program__attach_raw_tracepoint(tls->skel->progs.tls_fork,
							    "sched_process_fork");
	if (!tls->fork_link) {
		int err = -errno;

		pr_err("tls: attaching to sched_process_fork: %s", strerror(-err));
		return err;
	}
	if (tls->t->cgroup) {
		tls->exec_link = bpf_program__attach_raw_tracepoint(tls->skel->progs.tls_exec,
								    "sched_process_exec");
		if (!tls->exec_link)
			pr_warn("tls: no sched_process_exec: a program started in the cgroup is "
				"probed at the next rescan (within %d s)", ST_TLS_RESCAN_MS / 1000);
	}
	return 0;
}

/* --libssl PATH: the files; processes that map or run them are probed. */
static int add_fixed(struct st_tls *tls)
{
	for (size_t i = 0; i < tls->t->n_libssl; i++) {
		const char *path = tls->t->libssl[i];
		struct stat st;

		if (stat(path, &st)) {
			int err = -errno;

			pr_err("tls: --libssl %s: %s", path, strerror(errno));
			return err;
		}
		if (!lib_get(tls, st.st_dev, st.st_ino, path))
			return -ENOMEM;
	}
	return 0;
}

/* Opens and loads the object (tls->multi: its uprobe_multi programs get that attach type). 0,
 * -EBADF after saying what failed, or the load's -errno. */
static int load(struct st_tls *tls, const struct st_target *t, const struct st_tap_opts *o,
		uint32_t ring_bytes, int ring_fd)
{
	struct tls_bpf *s = tls->skel = tls_bpf__open();

	if (!s) {
		pr_err("tls: opening BPF object: %s", strerror(errno));
		return -EBADF;
	}
	bpf_map__set_max_entries(s->maps.ring, ring_bytes);
	if (ring_fd >= 0 && bpf_map__reuse_fd(s->maps.ring, ring_fd)) {
		pr_err("tls: sharing the packet programs' ring: %s", strerror(errno));
		return -EBADF;
	}
	s->rodata->wakeup_bytes = ring_bytes / 4 < (1u << 20) ? ring_bytes / 4 : (1u << 20);
	s->rodata->sample_permyriad = o->sample_permyriad ? o->sample_permyriad : ST_SAMPLE_ALL;
	s->rodata->host_filter = t->n_hosts ? ST_HOST_FILTER_ON : ST_HOST_FILTER_OFF;
	s->rodata->copy_in = o->copy[ST_DIR_IN];
	s->rodata->copy_out = o->copy[ST_DIR_OUT];
	s->rodata->head_bytes = o->head_bytes ? o->head_bytes : 256;
	s->rodata->filter_mode = t->cgroup ? ST_TLS_FILTER_CGROUP : ST_TLS_FILTER_TGID;
	s->rodata->keys_ifindex = t->iface ? if_nametoindex(t->iface) : 0;
	if (tls->multi) {
		bpf_program__set_expected_attach_type(s->progs.tls_m_enter, ST_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(s->progs.tls_m_exit, ST_BPF_TRACE_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(s->progs.tls_m_kdf, ST_BPF_TRACE_UPROBE_MULTI);
	}
	return tls_bpf__load(s);
}

struct st_tls *st_tls__open(const struct st_target *t, const struct st_tap_opts *o,
			    uint32_t ring_bytes, int ring_fd, bool keys,
			    const struct st_tls_hooks *hooks)
{
	static const struct st_tap_opts all;
	struct st_tls *tls = calloc(1, sizeof(*tls));
	size_t seen = 0;
	int err;

	if (!tls)
		return NULL;
	if (!o)
		o = &all;
	tls->t = t;
	tls->cgroup_fd = -1;
	tls->timer_fd = -1;
	tls->fixed = t->n_libssl > 0;
	tls->keys = keys && !tls->fixed;
	tls->keylog_only = !t->tls && t->keylog;
	if (hooks)
		tls->hooks = *hooks;
	tls->cap_libs = 256;
	tls->libs = calloc(tls->cap_libs, sizeof(*tls->libs));
	if (!tls->libs) {
		err = -ENOMEM;
		goto fail;
	}
	if (t->cgroup) {
		tls->cgroup_fd = open(t->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tls->cgroup_fd < 0) {
			err = -errno;
			pr_err("cgroup %s: %s", t->cgroup, strerror(errno));
			goto fail;
		}
	}
	/* uprobe_multi links where the kernel has them (6.6+), a perf event per function else */
	tls->multi = true;
	err = load(tls, t, o, ring_bytes, ring_fd);
	if (err && err != -ENOMEM) {
		tls_bpf__destroy(tls->skel);
		tls->skel = NULL;
		tls->multi = false;
		err = load(tls, t, o, ring_bytes, ring_fd);
		if (!err)
			pr_info("tls: no uprobe_multi links here: one perf event per probed function");
	}
	if (err) {
		if (err != -EBADF)
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
		err = add_fixed(tls);
		if (err)
			goto fail;
	}
	err = open_timer(tls);
	if (err) {
		pr_err("tls: timer: %s", strerror(-err));
		goto fail;
	}
	scan(tls);
	for (size_t i = 0; i < tls->n_procs; i++)
		seen += tls->procs[i]->started;
	if (!seen) {
		pr_warn("tls: %s: nothing to probe yet (%s); looked at again every %d s",
			t->cgroup ? t->cgroup : "the listening sockets of --port",
			tls->n_procs ? "no process maps a libssl" : "no process",
			ST_TLS_RESCAN_MS / 1000);
	} else {
		char names[512] = "";
		size_t nl = 0;

		for (size_t i = 0; i < tls->n_libs && nl < sizeof(names) - 2; i++)
			if (tls->libs[i].named)
				nl += (size_t)snprintf(names + nl, sizeof(names) - nl, "%s%s",
						       nl ? ", " : "", tls->libs[i].name);
		pr_info("tls: %zu process(es), probing %s", tls->n_procs, names);
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

void st_tls__set_decryptor(struct st_tls *tls, struct st_tlsdec *dec)
{
	tls->dec = dec;
}

int st_tls__timer_fd(const struct st_tls *tls)
{
	return tls->timer_fd;
}

int st_tls__ports_fd(const struct st_tls *tls)
{
	return bpf_map__fd(tls->skel->maps.ports);
}

int st_tls__copy_whole_fd(const struct st_tls *tls)
{
	return bpf_map__fd(tls->skel->maps.copy_whole);
}

bool st_tls__keys(const struct st_tls *tls)
{
	return tls->keys || tls->keylog_only;
}

void st_tls__stats(const struct st_tls *tls, struct st_tls_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct st_counters *vals;
	struct st_tls_counters *tv;
	__u32 zero = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < tls->n_libs; i++)
		out->libs += tls->libs[i].named;
	out->attach_failed = tls->attach_failed;
	out->pids = tls->pids;
	for (size_t i = 0; i < tls->n_procs; i++) {
		const struct tls_proc *p = tls->procs[i];

		out->blind_pids += !p->started;
		if (p->started && p->mode == ST_TLS_MODE_KEYS)
			out->procs_keys++;
		else if (p->started)
			out->procs_calls++;
	}
	out->mode_changes = tls->mode_changes;
	out->cut = tls->cut;
	for (size_t i = 0; tls->skel && i < tls->n_procs; i++) {
		struct st_tls_proc k;

		read_proc(tls, tls->procs[i]->pid, &k);
		out->traps += k.traps;
	}
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
	for (size_t i = 0; i < tls->n_procs; i++)
		proc_free(tls, tls->procs[i]);
	for (size_t i = 0; i < tls->n_libs; i++)
		free(tls->libs[i].name);
	for (size_t i = 0; i < N_IO; i++)
		bpf_link__destroy(tls->io_links[i]);
	bpf_link__destroy(tls->fork_link);
	bpf_link__destroy(tls->exec_link);
	tls_bpf__destroy(tls->skel);
	if (tls->cgroup_fd >= 0)
		close(tls->cgroup_fd);
	if (tls->timer_fd >= 0)
		close(tls->timer_fd);
	free(tls->libs);
	free(tls->procs);
	free(tls->listen);
	free(tls->warned);
	free(tls);
}
