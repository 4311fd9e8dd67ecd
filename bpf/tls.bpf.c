// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shadowtap's TLS plaintext probes: uprobes and uretprobes on OpenSSL's
 * SSL_read(_ex), SSL_write(_ex), SSL_do_handshake, SSL_set_fd and SSL_free, and
 * tracepoints on the socket I/O syscalls, turning each SSL call's plaintext into
 * the same ring records as the packet programs (bpf/shadowtap.h, ST_RF_TLS).
 *
 * Connection identity needs no OpenSSL struct offsets: the entry probe records
 * the thread as "inside an SSL call on SSL* s"; the read/write/send/recv
 * syscall the library makes inside that call names the fd; the fd's socket
 * (task->files, CO-RE: kernel offsets come from the running kernel's BTF)
 * gives the real 4-tuple. The SSL* -> connection entry is then kept, so calls
 * served from OpenSSL's buffer (no syscall) are placed too. SSL_set_fd(s, fd)
 * names the fd directly where the application uses it (nginx does).
 *
 * Sequence numbers are synthesised per connection and direction, reserved
 * atomically per call: bytes the ring could not take leave an exact hole and a
 * loss record, as for packets. A session whose start was seen gets a SYN pair,
 * SSL_free a FIN pair. The probes only read (bpf_probe_read_user of the
 * caller's buffer, after the call) and never wait.
 *
 * Keys mode (docs/TLS.md): an entry probe on libcrypto's EVP_KDF_derive reads
 * the OSSL_PARAM array (OpenSSL's public ABI) and sends the parameters of the
 * calls that derive a traffic secret (ST_REC_KDF); the agent decrypts the
 * ciphertext the packet programs capture. A process's mode is the "modes" map:
 * in keys mode the per-call probes leave the sessions that start to the keys.
 * "procs" counts what each process costs (traps) and does (sessions, client
 * flights), for the agent's choice of mode. A selected process that forks, or
 * a process that execs in the --cgroup, is announced (ST_REC_PROC, with a
 * wakeup): the agent attaches its per-process probes to it at once.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "shadowtap.h"
#include "connhash.h"
#include "ring.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The few kernel types the fd -> socket walk reads; CO-RE relocates each field
 * against the running kernel's BTF (anonymous unions in the kernel's layout
 * are matched by member name). */
struct in6_addr___st {
	__u32 a[4];
};
struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));
struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));
struct task_struct {
	struct files_struct *files;
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));
struct sock_common {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr___st skc_v6_daddr;
	struct in6_addr___st skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));
struct sock {
	struct sock_common __sk_common;
	int sk_rx_dst_ifindex;
} __attribute__((preserve_access_index));
struct socket {
	short type;
	struct file *file;
	struct sock *sk;
} __attribute__((preserve_access_index));

#define ST_S_IFMT 0170000
#define ST_S_IFSOCK 0140000
#define ST_AF_INET 2
#define ST_AF_INET6 10
#define ST_SOCK_STREAM 1

/* enum st_tls_filter: which processes */
const volatile __u32 filter_mode = ST_TLS_FILTER_ALL;
/* --iface: the interface whose packets keys mode decrypts (0: a cgroup's, any interface).
 * A session whose packets arrive through another is left to the per-call probes. */
const volatile __u32 keys_ifindex = 0;
/* Longest plaintext of one SSL call delivered; the rest is marked lost
 * (ST_CHUNK_MAX parts, bpf_loop). 4096 parts = 64 MiB. */
#define ST_TLS_MAX_PARTS 4096u

/* --cgroup: the service's cgroup (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroups SEC(".maps");

/* ST_TLS_FILTER_TGID: the processes (tgid -> 1), filled by the agent; children
 * forked by them are added by tls_fork. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_tls_counters);
} tls_counters SEC(".maps");

/* tgid -> enum st_tls_mode, set by the agent (absent: calls). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} modes SEC(".maps");

/* tgid -> what the process costs and does (the agent reads and compares). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct st_tls_proc);
} procs SEC(".maps");

/* tls_kdf's record is built here (too large for the stack), then wiped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_kdf_rec);
} kdf_scratch SEC(".maps");

enum call_kind {
	CALL_READ = ST_TLS_FN_READ,
	CALL_READ_EX = ST_TLS_FN_READ_EX,
	CALL_WRITE = ST_TLS_FN_WRITE,
	CALL_WRITE_EX = ST_TLS_FN_WRITE_EX,
	CALL_HANDSHAKE = ST_TLS_FN_HANDSHAKE,
};

/* A thread inside an SSL call (key: pid_tgid). */
struct call {
	__u64 ssl;
	__u64 buf;
	__u64 lenp; /* _ex: where the length goes */
	__u64 sk;   /* the socket of the I/O made inside the call, 0 until seen */
	__u64 sp;   /* stack pointer at entry: a deeper call is nested, a shallower one is new */
	__u32 kind;
	__u32 depth; /* nested SSL calls still open inside this one */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call);
} calls SEC(".maps");

/* A TLS session (SSL* of a process). */
struct conn_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

enum conn_state {
	CONN_CAPTURED = 1,
	CONN_OTHER = 2, /* not the service's port, --host or --sample: no records */
	CONN_KEYED = 3, /* started while its process was in keys mode: decrypted by the agent */
};

struct conn {
	__u64 sk;
	__u32 next_seq[ST_DIR_MAX]; /* next byte's sequence number per direction */
	__u32 local[4];             /* network order */
	__u32 peer[4];
	__u16 lport, pport;         /* host order */
	__u8 family;
	__u8 state;
	__u8 last_dir;              /* 1 + the direction of the last call (client flights) */
	__u8 pad;
	__u32 flights;              /* client flights so far */
	__u32 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

/* Plaintext bytes per process that could not be tied to a socket: the agent
 * names such processes once (memory BIOs: their I/O is done outside the call). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} unattributed SEC(".maps");

/* One SSL call's delivery, shared with the bpf_loop callback. */
struct emit_ctx {
	struct st_rec tmpl;
	__u64 buf;
	__u64 avail;
	__u32 copy_len;
	__u32 lost_off; /* first byte not delivered, copy_len when all went */
	__u32 records;
	__u32 fault;    /* 1: the loss was an unreadable buffer, not a full ring */
};

static __always_inline struct st_tls_counters *tls_ctr(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tls_counters, &zero);
}

/* The process's entry in "procs", made when missing (NULL when the map is full). */
static __always_inline struct st_tls_proc *proc_stats(__u32 tgid)
{
	struct st_tls_proc *p = bpf_map_lookup_elem(&procs, &tgid), zero = {};

	if (p)
		return p;
	bpf_map_update_elem(&procs, &tgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* One uprobe trap in the current process. */
static __always_inline void count_trap(void)
{
	struct st_tls_proc *p = proc_stats(bpf_get_current_pid_tgid() >> 32);

	if (p)
		p->traps++;
}

static __always_inline bool process_wanted(void)
{
	if (filter_mode == ST_TLS_FILTER_CGROUP)
		return bpf_current_task_under_cgroup(&cgroups, 0) == 1;
	if (filter_mode == ST_TLS_FILTER_TGID) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		return bpf_map_lookup_elem(&tgids, &tgid) != NULL;
	}
	return true;
}

/* The TCP socket behind fd of the current process, or 0. */
static __always_inline __u64 fd_sock(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *so;
	unsigned short mode;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd & 0xffffff]) || !f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & ST_S_IFMT) != ST_S_IFSOCK)
		return 0;
	so = BPF_CORE_READ(f, private_data);
	if (!so || BPF_CORE_READ(so, file) != f || BPF_CORE_READ(so, type) != ST_SOCK_STREAM)
		return 0;
	return (__u64)BPF_CORE_READ(so, sk);
}

static __always_inline bool peer_wanted(const struct conn *c)
{
	if (host_filter != ST_HOST_FILTER_ON)
		return true;
	return host_listed(c->family, c->peer);
}

/* Reads the socket's 4-tuple into c; false when it is not (yet) a connected
 * IPv4/IPv6 socket. An IPv4-mapped IPv6 pair is reported as IPv4, as the
 * packets on the wire are. */
static __always_inline bool sock_tuple(__u64 skp, struct conn *c)
{
	struct sock *sk = (struct sock *)skp;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->pport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!c->lport || !c->pport)
		return false;
	if (family == ST_AF_INET) {
		c->family = 4;
		c->local[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		c->peer[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		return true;
	}
	if (family != ST_AF_INET6)
		return false;
	BPF_CORE_READ_INTO(&c->local, sk, __sk_common.skc_v6_rcv_saddr);
	BPF_CORE_READ_INTO(&c->peer, sk, __sk_common.skc_v6_daddr);
	/* ::ffff:a.b.c.d on both ends: an IPv4 connection on a dual-stack socket */
	if (!c->local[0] && !c->local[1] && c->local[2] == __builtin_bswap32(0xffff) &&
	    !c->peer[0] && !c->peer[1] && c->peer[2] == __builtin_bswap32(0xffff)) {
		c->family = 4;
		c->local[0] = c->local[3];
		c->peer[0] = c->peer[3];
		c->local[1] = c->local[2] = c->local[3] = 0;
		c->peer[1] = c->peer[2] = c->peer[3] = 0;
	} else {
		c->family = 6;
	}
	return true;
}

/* The record template of direction dir of connection c. */
static __always_inline void conn_tmpl(const struct conn *c, __u32 dir, struct st_rec *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->version = ST_ABI_VERSION;
	t->type = ST_REC_DATA;
	t->dir = (__u8)dir;
	t->family = c->family;
	t->tcp_flags = ST_TCP_ACK;
	t->window = 0xffff;
	t->ts_ns = bpf_ktime_get_ns();
	if (dir == ST_DIR_IN) {
		__builtin_memcpy(t->saddr, c->peer, 16);
		__builtin_memcpy(t->daddr, c->local, 16);
		t->sport = c->pport;
		t->dport = c->lport;
	} else {
		__builtin_memcpy(t->saddr, c->local, 16);
		__builtin_memcpy(t->daddr, c->peer, 16);
		t->sport = c->lport;
		t->dport = c->pport;
	}
	t->rflags = ST_RF_TLS;
}

/* A SYN or FIN (flags) of direction dir, header only; a record the ring cannot
 * take is counted as in tap.bpf.c (a loss of no bytes). */
static __always_inline void emit_flag(const struct conn *c, __u32 dir, __u8 flags, __u32 seq,
				      __u32 ack, __u64 *avail)
{
	struct st_counters *ctr = bpf_map_lookup_elem(&counters, &dir);
	struct st_rec t;

	if (!ctr)
		return;
	conn_tmpl(c, dir, &t);
	t.tcp_flags = flags;
	t.seq = seq;
	t.ack = ack;
	if ((dir == ST_DIR_IN ? copy_in : copy_out) == ST_COPY_NONE)
		t.rflags |= ST_RF_NO_PAYLOAD;
	ctr->segs++;
	if (!emit_header_only(&t, ST_REC_DATA, 0, 0, avail)) {
		ctr->records++;
		return;
	}
	ctr->lost_segs++;
	if (emit_header_only(&t, ST_REC_LOSS, 0, 0, avail))
		ctr->lost_unreported++;
	else
		ctr->records++;
}

static __always_inline int emit_part(struct emit_ctx *e, __u32 off, __u32 n, const __u32 cls)
{
	struct st_rec *r;

	r = bpf_ringbuf_reserve(&ring, sizeof(*r) + cls, 0);
	if (!r)
		return -1;
	__builtin_memcpy(r, &e->tmpl, sizeof(*r));
	r->seq = e->tmpl.seq + off;
	r->off = off;
	r->len = n;
	if (off + n < e->copy_len) { /* more parts follow */
		r->tcp_flags &= ~ST_TCP_PSH;
		r->rflags &= ~ST_RF_ELIDED;
	}
	/* Verifier workaround (as in tap.bpf.c): prove 1 <= m <= cls on the register
	 * the helper gets; n is already in range, so this is the identity. */
	__u64 m = n;
	asm volatile("" : "+r"(m));
	m = ((m - 1) & (cls - 1)) + 1;
	if (bpf_probe_read_user((void *)(r + 1), (__u32)m, (const void *)(e->buf + off))) {
		bpf_ringbuf_discard(r, 0);
		e->fault = 1;
		return -1;
	}
	bpf_ringbuf_submit(r, wakeup_flag(&e->avail, sizeof(*r) + cls));
	return 0;
}

/* bpf_loop body: part i of the call's plaintext. 1 stops the loop. */
static long emit_one(__u32 i, void *data)
{
	struct emit_ctx *e = data;
	__u32 off = i * ST_CHUNK_MAX, n;
	int err;

	if (off >= e->copy_len)
		return 1;
	n = e->copy_len - off;
	if (n > ST_CHUNK_MAX)
		n = ST_CHUNK_MAX;
	if (n <= ST_CLASS_S)
		err = emit_part(e, off, n, ST_CLASS_S);
	else if (n <= ST_CLASS_M)
		err = emit_part(e, off, n, ST_CLASS_M);
	else
		err = emit_part(e, off, n, ST_CHUNK_MAX);
	if (err) {
		e->lost_off = off;
		return 1;
	}
	e->records++;
	return 0;
}

/* The service's port is copied whole (ST_PORT_WHOLE: HTTP/2 was seen there). */
static __always_inline bool port_whole(__u16 lport)
{
	__u32 port = lport;
	__u8 *on = bpf_map_lookup_elem(&ports, &port);

	return on && (*on & ST_PORT_WHOLE);
}

/* Delivers len plaintext bytes at buf of direction dir of connection c. */
static __always_inline void emit_data(struct conn *c, __u32 dir, __u64 buf, __u32 len)
{
	struct st_counters *ctr = bpf_map_lookup_elem(&counters, &dir);
	struct st_tls_counters *tc = tls_ctr();
	struct emit_ctx e;
	__u32 policy = dir == ST_DIR_IN ? copy_in : copy_out;
	__u32 seq, other = dir ^ 1;

	if (!ctr || !tc || !len)
		return;
	/* The call's bytes own [seq, seq + len) whatever becomes of them. Not atomic:
	 * OpenSSL forbids concurrent calls of one direction on one SSL (and clang 14's
	 * default BPF target has no fetch-and-add with a result). */
	seq = c->next_seq[dir & 1];
	c->next_seq[dir & 1] = seq + len;
	ctr->segs++;
	ctr->bytes += len;
	conn_tmpl(c, dir, &e.tmpl);
	e.tmpl.tcp_flags = ST_TCP_ACK | ST_TCP_PSH;
	e.tmpl.seq = seq;
	e.tmpl.ack = c->next_seq[other & 1];
	e.tmpl.seg_len = len;
	e.copy_len = len;
	if (policy == ST_COPY_NONE) {
		ctr->elided_bytes += len;
		return; /* nothing goes out; the FIN's seq still counts these bytes */
	}
	if (policy == ST_COPY_HEAD && len > head_bytes && !port_whole(c->lport) &&
	    !whole_listed(c->family, c->peer, c->pport, c->local, c->lport)) {
		ctr->elided_bytes += len - head_bytes;
		e.copy_len = head_bytes;
		e.tmpl.rflags |= ST_RF_ELIDED;
	}
	e.buf = buf;
	e.avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
	e.lost_off = e.copy_len;
	e.records = 0;
	e.fault = 0;
	bpf_loop(ST_TLS_MAX_PARTS, emit_one, &e, 0);
	ctr->records += e.records;
	if (e.lost_off < e.copy_len || e.copy_len > ST_TLS_MAX_PARTS * ST_CHUNK_MAX) {
		__u32 off = e.lost_off < e.copy_len ? e.lost_off : ST_TLS_MAX_PARTS * ST_CHUNK_MAX;
		__u32 lost = e.copy_len - off;

		ctr->lost_segs++;
		ctr->lost_bytes += lost;
		if (e.fault)
			tc->fault_bytes += lost;
		if (emit_header_only(&e.tmpl, ST_REC_LOSS, off, lost, &e.avail))
			ctr->lost_unreported++;
		else
			ctr->records++;
	}
}

/* Whether keys mode's packet programs see this socket's packets: a cgroup's do (any
 * interface); an interface's, when the socket's packets come in through it (the receive
 * route's interface, kept in the socket from its first packet). */
static __always_inline bool keys_sees(__u64 skp)
{
	struct sock *sk = (struct sock *)skp;

	if (!keys_ifindex || !bpf_core_field_exists(sk->sk_rx_dst_ifindex))
		return true;
	return (__u32)BPF_CORE_READ(sk, sk_rx_dst_ifindex) == keys_ifindex;
}

/*
 * The connection of SSL* ssl in this process, made from socket sk when it is
 * new (or when ssl now does its I/O on another socket: an SSL reused with
 * SSL_clear/SSL_set_fd). fresh: its start was seen (SSL_set_fd, the
 * handshake): it opens with a SYN pair. NULL: not known, or not captured.
 */
static __always_inline struct conn *conn_get(__u64 ssl, __u64 sk, bool fresh)
{
	struct st_tls_counters *tc = tls_ctr();
	struct conn_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ssl };
	struct conn *c = bpf_map_lookup_elem(&conns, &k), n;
	__u64 avail;

	if (c && (!sk || c->sk == sk))
		return c->state == CONN_CAPTURED ? c : NULL;
	if (!sk || !tc)
		return NULL;
	if (c) { /* another socket under the same SSL*: the old session is over */
		if (c->state == CONN_CAPTURED) {
			avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
			emit_flag(c, ST_DIR_OUT, ST_TCP_FIN | ST_TCP_ACK, c->next_seq[ST_DIR_OUT],
				  c->next_seq[ST_DIR_IN], &avail);
			emit_flag(c, ST_DIR_IN, ST_TCP_FIN | ST_TCP_ACK, c->next_seq[ST_DIR_IN],
				  c->next_seq[ST_DIR_OUT] + 1, &avail);
			tc->conns_ended++;
		}
		bpf_map_delete_elem(&conns, &k);
	}
	__builtin_memset(&n, 0, sizeof(n));
	n.sk = sk;
	if (!sock_tuple(sk, &n))
		return NULL; /* not connected yet: decided at a later call */
	n.state = CONN_CAPTURED;
	{
		__u32 port = n.lport;
		__u8 *on = bpf_map_lookup_elem(&ports, &port);

		if (!on || !*on)
			n.state = CONN_OTHER;
	}
	if (n.state == CONN_CAPTURED && sample_permyriad < ST_SAMPLE_ALL &&
	    !st_conn_sampled_in(st_conn_hash(n.family, n.peer, n.local, n.pport, n.lport),
				sample_permyriad))
		n.state = CONN_OTHER;
	if (n.state == CONN_CAPTURED && !peer_wanted(&n))
		n.state = CONN_OTHER;
	if (n.state == CONN_CAPTURED && fresh) {
		__u8 *mode = bpf_map_lookup_elem(&modes, &k.tgid);

		if (mode && *mode == ST_TLS_MODE_KEYS && keys_sees(sk)) {
			/* the handshake's secrets come to the agent: it decrypts this one */
			struct st_tls_proc *p = proc_stats(k.tgid);

			n.state = CONN_KEYED;
			tc->conns_keyed++;
			if (p)
				p->keyed++;
			bpf_map_update_elem(&conns, &k, &n, BPF_ANY);
			return NULL;
		}
	}
	if (n.state == CONN_OTHER) {
		tc->conns_other++;
		bpf_map_update_elem(&conns, &k, &n, BPF_ANY);
		return NULL;
	}
	n.next_seq[ST_DIR_IN] = bpf_get_prandom_u32();
	n.next_seq[ST_DIR_OUT] = bpf_get_prandom_u32();
	tc->conns++;
	{
		struct st_tls_proc *p = proc_stats(k.tgid);

		if (p)
			p->sessions++;
	}
	if (fresh) {
		avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
		emit_flag(&n, ST_DIR_IN, ST_TCP_SYN, n.next_seq[ST_DIR_IN], 0, &avail);
		emit_flag(&n, ST_DIR_OUT, ST_TCP_SYN | ST_TCP_ACK, n.next_seq[ST_DIR_OUT],
			  n.next_seq[ST_DIR_IN] + 1, &avail);
		n.next_seq[ST_DIR_IN]++;
		n.next_seq[ST_DIR_OUT]++;
	} else {
		tc->conns_joined++;
	}
	if (bpf_map_update_elem(&conns, &k, &n, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&conns, &k);
}

/* ---- the SSL calls ------------------------------------------------------------------- */

static __always_inline int call_enter(struct pt_regs *ctx, __u32 kind, __u64 ssl, __u64 buf,
				      __u64 lenp)
{
	struct st_tls_counters *tc = tls_ctr();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	struct call *cur, c = {};

	if (!tc)
		return 0;
	if (!process_wanted()) {
		tc->filtered++;
		return 0;
	}
	count_trap();
	cur = bpf_map_lookup_elem(&calls, &id);
	/* An open call deeper in this thread's stack: this one runs inside it
	 * (SSL_accept -> SSL_do_handshake). A stale entry (its return never came)
	 * sits at or below this frame's stack pointer: replaced. */
	if (cur && sp < cur->sp) {
		cur->depth++;
		tc->nested++;
		return 0;
	}
	c.ssl = ssl;
	c.buf = buf;
	c.lenp = lenp;
	c.sp = sp;
	c.kind = kind;
	bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read_enter, void *ssl, void *buf, int num)
{
	return call_enter(ctx, CALL_READ, (__u64)ssl, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_enter, void *ssl, void *buf, __u64 num, void *readbytes)
{
	return call_enter(ctx, CALL_READ_EX, (__u64)ssl, (__u64)buf, (__u64)readbytes);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_enter, void *ssl, const void *buf, int num)
{
	return call_enter(ctx, CALL_WRITE, (__u64)ssl, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_enter, void *ssl, const void *buf, __u64 num, void *written)
{
	return call_enter(ctx, CALL_WRITE_EX, (__u64)ssl, (__u64)buf, (__u64)written);
}

SEC("uprobe")
int BPF_KPROBE(tls_handshake_enter, void *ssl)
{
	return call_enter(ctx, CALL_HANDSHAKE, (__u64)ssl, 0, 0);
}

/* The return of every SSL call: the entry said what it was. */
static __always_inline int call_exit(long ret)
{
	struct st_tls_counters *tc = tls_ctr();
	__u64 id = bpf_get_current_pid_tgid();
	struct call *cp = bpf_map_lookup_elem(&calls, &id);
	struct call c;
	struct conn *conn;
	__u64 len = 0;
	__u32 dir;

	if (!cp || !tc)
		return 0;
	count_trap();
	if (cp->depth) {
		cp->depth--;
		return 0;
	}
	c = *cp;
	bpf_map_delete_elem(&calls, &id);
	if (c.kind == CALL_HANDSHAKE) {
		if (c.sk)
			conn_get(c.ssl, c.sk, true);
		return 0;
	}
	tc->calls++;
	if (c.kind == CALL_READ || c.kind == CALL_WRITE) {
		if ((int)ret > 0)
			len = (__u32)(int)ret;
	} else if ((int)ret == 1 && c.lenp) {
		if (bpf_probe_read_user(&len, sizeof(len), (const void *)c.lenp))
			len = 0;
	}
	if (!len)
		return 0;
	if (len > 0xffffffffull)
		len = 0xffffffffull;
	conn = conn_get(c.ssl, c.sk, false);
	if (!conn) {
		struct conn_key k = { .tgid = id >> 32, .ssl = c.ssl };
		__u32 tgid = id >> 32;
		__u64 *u, one = len;

		if (bpf_map_lookup_elem(&conns, &k))
			return 0; /* a connection that is not captured */
		tc->unattributed_calls++;
		tc->unattributed_bytes += len;
		u = bpf_map_lookup_elem(&unattributed, &tgid);
		if (u)
			*u += len; /* a warning's figure: races may lose a few */
		else
			bpf_map_update_elem(&unattributed, &tgid, &one, BPF_NOEXIST);
		return 0;
	}
	dir = (c.kind == CALL_READ || c.kind == CALL_READ_EX) ? ST_DIR_IN : ST_DIR_OUT;
	if (dir == ST_DIR_IN && conn->last_dir != 1 + ST_DIR_IN) {
		/* a request: the client speaks after the service did (or first) */
		struct st_tls_proc *p = proc_stats(id >> 32);

		if (p)
			p->flights++;
		conn->flights++;
	}
	conn->last_dir = (__u8)(1 + dir);
	emit_data(conn, dir, c.buf, (__u32)len);
	return 0;
}

/* One return probe for every SSL call (perf event per function). */
SEC("uretprobe")
int BPF_KRETPROBE(tls_call_exit, long ret)
{
	return call_exit(ret);
}

/* SSL_set_fd(ssl, fd): the application names the socket; the session starts. */
static __always_inline int set_fd(void *ssl, int fd)
{
	__u64 sk;

	if (!process_wanted())
		return 0;
	count_trap();
	if (fd < 0)
		return 0;
	sk = fd_sock((__u64)fd);
	if (sk)
		conn_get((__u64)ssl, sk, true);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_set_fd, void *ssl, int fd)
{
	return set_fd(ssl, fd);
}

/* SSL_free(ssl): the session is over (FIN pair). */
static __always_inline int ssl_free(void *ssl)
{
	struct st_tls_counters *tc = tls_ctr();
	struct conn_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = (__u64)ssl };
	struct conn *c;
	__u64 avail;

	if (!tc || !process_wanted())
		return 0;
	count_trap();
	c = bpf_map_lookup_elem(&conns, &k);
	if (!c)
		return 0;
	if (c->state == CONN_CAPTURED) {
		struct st_tls_proc *p = proc_stats(k.tgid);

		avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
		emit_flag(c, ST_DIR_OUT, ST_TCP_FIN | ST_TCP_ACK, c->next_seq[ST_DIR_OUT],
			  c->next_seq[ST_DIR_IN], &avail);
		emit_flag(c, ST_DIR_IN, ST_TCP_FIN | ST_TCP_ACK, c->next_seq[ST_DIR_IN],
			  c->next_seq[ST_DIR_OUT] + 1, &avail);
		tc->conns_ended++;
		if (p) {
			/* a whole session's requests: what the choice of mode goes by */
			p->ended++;
			p->ended_flights += c->flights;
		}
	}
	bpf_map_delete_elem(&conns, &k);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_free, void *ssl)
{
	return ssl_free(ssl);
}

/*
 * The same probes through uprobe_multi links (one link per process for the entries, one for
 * the returns: a link's detach waits for one grace period, a perf event per function for one
 * each). The loader gives these programs the uprobe_multi attach type; the link's cookie of
 * each function says which it is (enum st_tls_fn).
 */
SEC("uprobe")
int tls_m_enter(struct pt_regs *ctx)
{
	__u64 kind = bpf_get_attach_cookie(ctx);
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a4 = PT_REGS_PARM4(ctx);

	switch (kind) {
	case CALL_READ:
	case CALL_WRITE:
		return call_enter(ctx, (__u32)kind, a1, a2, 0);
	case CALL_READ_EX:
	case CALL_WRITE_EX:
		return call_enter(ctx, (__u32)kind, a1, a2, a4);
	case CALL_HANDSHAKE:
		return call_enter(ctx, CALL_HANDSHAKE, a1, 0, 0);
	case ST_TLS_FN_SET_FD:
		return set_fd((void *)a1, (int)a2);
	case ST_TLS_FN_FREE:
		return ssl_free((void *)a1);
	}
	return 0;
}

SEC("uretprobe")
int tls_m_exit(struct pt_regs *ctx)
{
	return call_exit(PT_REGS_RC(ctx));
}

/* ---- the socket I/O made inside an SSL call ---------------------------------------- */

/* syscalls:sys_enter_* layout: 8 bytes of common fields, the syscall number, args. */
struct sys_enter_ctx {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

static __always_inline int on_io(__u64 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &id);
	__u64 sk;

	if (!c || c->sk)
		return 0;
	sk = fd_sock(fd);
	if (sk) {
		c->sk = sk;
	} else {
		struct st_tls_counters *tc = tls_ctr();

		if (tc)
			tc->not_socket++;
	}
	return 0;
}

#define ST_IO_TP(name)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                     \
	int tls_sys_##name(struct sys_enter_ctx *ctx)                   \
	{                                                               \
		return on_io(ctx->args[0]);                             \
	}

ST_IO_TP(read)
ST_IO_TP(write)
ST_IO_TP(readv)
ST_IO_TP(writev)
ST_IO_TP(recvfrom)
ST_IO_TP(sendto)
ST_IO_TP(recvmsg)
ST_IO_TP(sendmsg)

/* A process event for the agent, with a wakeup: it attaches the new process's probes at once
 * (a uprobe attached per process does not follow a fork). */
static __always_inline void proc_event(__u8 event, __u32 tgid, __u32 parent)
{
	struct st_tls_counters *tc = tls_ctr();
	struct st_proc_rec r = {
		.version = ST_ABI_VERSION,
		.type = ST_REC_PROC,
		.event = event,
		.tgid = tgid,
		.parent = parent,
		.ts_ns = bpf_ktime_get_ns(),
	};

	if (bpf_ringbuf_output(&ring, &r, sizeof(r), BPF_RB_FORCE_WAKEUP) && tc)
		tc->procs_lost++;
}

/* A selected process's children are selected (nginx's master forks its workers; a worker
 * respawned after a crash, a reload's new ones): ST_TLS_FILTER_TGID adds them to the map at
 * once; either way the agent hears of them. */
SEC("raw_tp/sched_process_fork")
int tls_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ctgid == ptgid || !process_wanted())
		return 0;
	if (filter_mode == ST_TLS_FILTER_TGID)
		bpf_map_update_elem(&tgids, &ctgid, &one, BPF_ANY);
	proc_event(ST_PROC_FORK, ctgid, ptgid);
	return 0;
}

/* A program starting in the --cgroup (a service started, or restarted): its libssl is probed
 * as soon as it maps it. */
SEC("raw_tp/sched_process_exec")
int tls_exec(struct bpf_raw_tracepoint_args *ctx)
{
	if (filter_mode != ST_TLS_FILTER_CGROUP || !process_wanted())
		return 0;
	proc_event(ST_PROC_EXEC, bpf_get_current_pid_tgid() >> 32, 0);
	return 0;
}

/* ---- keys mode: EVP_KDF_derive ------------------------------------------------------- */

/* OpenSSL's OSSL_PARAM (openssl/core.h): public ABI, the same in every OpenSSL 3. */
struct ossl_param {
	__u64 key;         /* const char * */
	__u32 data_type;
	__u32 pad;
	__u64 data;
	__u64 data_size;
	__u64 return_size;
};

#define NAME(a, b, c, d, e, f, g, h)                                                         \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 | \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

/* Whether the call derives what the agent uses: a TLS 1.3 traffic (or exporter, early
 * exporter) secret, by its label; TLS 1.2's key block ("key expansion", the first seed). The others of a handshake
 * ("derived", "key", "iv", "finished", "res binder", ...) stay in the kernel. */
static __always_inline bool kdf_wanted(const struct st_kdf_rec *r)
{
	for (int i = 0; i < ST_KDF_PARAMS; i++) {
		const struct st_kdf_param *q = &r->p[i];
		__u64 name, head;

		if (i >= r->n)
			break;
		name = *(const __u64 *)q->name;
		head = *(const __u64 *)q->data;
		if (name == NAME('l', 'a', 'b', 'e', 'l', 0, 0, 0)) {
			if (q->size == 12)
				return head == NAME('c', ' ', 'h', 's', ' ', 't', 'r', 'a') ||
				       head == NAME('s', ' ', 'h', 's', ' ', 't', 'r', 'a') ||
				       head == NAME('c', ' ', 'a', 'p', ' ', 't', 'r', 'a') ||
				       head == NAME('s', ' ', 'a', 'p', ' ', 't', 'r', 'a') ||
				       head == NAME('e', ' ', 'e', 'x', 'p', ' ', 'm', 'a');
			if (q->size == 11)
				return head == NAME('c', ' ', 'e', ' ', 't', 'r', 'a', 'f');
			if (q->size == 10)
				return head == NAME('e', 'x', 'p', ' ', 'm', 'a', 's', 't');
			return false;
		}
		if (name == NAME('s', 'e', 'e', 'd', 0, 0, 0, 0))
			return q->size == 13 && head == NAME('k', 'e', 'y', ' ', 'e', 'x', 'p', 'a');
	}
	return false;
}

/* EVP_KDF_derive(ctx, key, keylen, params), entry only: the parameters say everything (the
 * secret a call derives is the agent's to compute). */
static __always_inline int kdf(__u64 outlen, const void *params)
{
	struct st_tls_counters *tc = tls_ctr();
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct st_kdf_rec *r = bpf_map_lookup_elem(&kdf_scratch, &zero);
	struct st_tls_proc *p;

	if (!tc || !r)
		return 0;
	if (!process_wanted()) {
		tc->filtered++;
		return 0;
	}
	p = proc_stats(tgid);
	if (p) {
		p->traps++;
		p->kdf++;
	}
	tc->kdf_calls++;
	if (!params)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	r->version = ST_ABI_VERSION;
	r->type = ST_REC_KDF;
	r->tgid = tgid;
	r->ts_ns = bpf_ktime_get_ns();
	r->outlen = outlen;
	for (int i = 0; i < ST_KDF_PARAMS; i++) {
		struct st_kdf_param *q = &r->p[i];
		struct ossl_param op;
		__u64 n;

		if (bpf_probe_read_user(&op, sizeof(op), (const char *)params + i * sizeof(op)) ||
		    !op.key)
			break;
		bpf_probe_read_user_str(q->name, sizeof(q->name), (const void *)op.key);
		q->size = op.data_size > 0xffffffffull ? 0xffffffffu : (__u32)op.data_size;
		q->type = op.data_type;
		n = op.data_size < ST_KDF_DATA_MAX ? op.data_size : ST_KDF_DATA_MAX;
		if (op.data && n) {
			/* Verifier workaround (as in emit_part): 1 <= n <= ST_KDF_DATA_MAX on the
			 * register the helper gets */
			asm volatile("" : "+r"(n));
			n = ((n - 1) & (ST_KDF_DATA_MAX - 1)) + 1;
			bpf_probe_read_user(q->data, (__u32)n, (const void *)op.data);
		}
		r->n = (__u8)(i + 1);
	}
	if (kdf_wanted(r)) {
		tc->kdf_sent++;
		if (p)
			p->kdf_sent++;
		if (bpf_ringbuf_output(&ring, r, sizeof(*r), 0))
			tc->kdf_lost++;
	}
	/* the secrets do not stay in a map root can read */
	__builtin_memset(r, 0, sizeof(*r));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_kdf, void *kctx, void *out, __u64 outlen, const void *params)
{
	return kdf(outlen, params);
}

/* tls_kdf through a uprobe_multi link (see tls_m_enter). */
SEC("uprobe")
int tls_m_kdf(struct pt_regs *ctx)
{
	return kdf(PT_REGS_PARM3(ctx), (const void *)PT_REGS_PARM4(ctx));
}
