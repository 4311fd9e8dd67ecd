/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shadowtap kernel/user ABI: every record that crosses the ring buffer, the
 * counters the programs keep and the filter maps' layout. Included by bpf/,
 * agent/, tests/ and tools/; compiles under clang -target bpf and gcc alike.
 * Change a layout => bump ST_ABI_VERSION.
 */
#ifndef SHADOWTAP_ABI_H
#define SHADOWTAP_ABI_H

#include <linux/types.h>

#define ST_ABI_VERSION 4

/* Most bytes one record carries. A larger skb (GSO, BIG TCP) is split into
 * several records, each with the byte offset of its part. */
#define ST_CHUNK_MAX 16384u
/* Upper bound on parts per skb: ST_CHUNK_MAX * ST_MAX_CHUNKS = 1 MiB, more
 * than the largest GSO super-packet Linux builds (BIG TCP: 512 KiB). */
#define ST_MAX_CHUNKS 64u
#define ST_MAX_PORTS 65536u
#define ST_MAX_HOSTS 1024u

enum st_rec_type {
	ST_REC_DATA = 1, /* a TCP segment (or one part of it) with payload bytes */
	ST_REC_LOSS = 2, /* bytes [off, off+len) of the segment could not be delivered */
	ST_REC_KDF = 3,  /* struct st_kdf_rec: one EVP_KDF_derive call's parameters (tls.bpf.c,
			  * --tls keys mode; ABI 4) */
	ST_REC_PROC = 4, /* struct st_proc_rec: a selected process forked, or a process started
			  * in the --cgroup (tls.bpf.c; ABI 4) */
};

/* st_rec.rflags */
#define ST_RF_ELIDED 0x01     /* bytes [off + len, seg_len) were left out by the copy policy
			       * (headers-only, or none): on purpose, never a loss */
#define ST_RF_NO_PAYLOAD 0x02 /* copy policy "none" for this direction: no payload record
			       * ever comes, only SYN/FIN/RST ones; bytes before seq that a
			       * reader did not see were elided, not lost */
#define ST_RF_TLS 0x04        /* TLS plaintext from the uprobes (bpf/tls.bpf.c), not a packet:
			       * the 4-tuple is the socket's, seq/ack are synthesised per
			       * connection and direction (gap-free: a byte not delivered is a
			       * hole), SYN/FIN mark the TLS session's start and end; seg_len
			       * and off are the SSL call's length and this part's offset */

enum st_dir {
	ST_DIR_IN = 0,  /* peer -> service (arrives for a captured port) */
	ST_DIR_OUT = 1, /* service -> peer (leaves from a captured port) */
	ST_DIR_MAX = 2,
};

/* What the program copies of one direction's payload (rodata copy_in/copy_out). */
enum st_copy_policy {
	ST_COPY_FULL = 0, /* every byte (capture, flows, tee, compare) */
	ST_COPY_HEAD = 1, /* the first head_bytes of each segment (skb); the rest elided */
	ST_COPY_NONE = 2, /* no payload; SYN/FIN/RST as header-only records (ST_RF_NO_PAYLOAD) */
};

/* rodata host_filter: the agent sets OFF or ON before load, so the verifier
 * prunes what is not used; FROM_MAP (the default of an unconfigured skeleton)
 * reads st_config.host_filter from the "config" map on every packet. */
enum st_host_filter {
	ST_HOST_FILTER_OFF = 0,
	ST_HOST_FILTER_ON = 1,
	ST_HOST_FILTER_FROM_MAP = 2,
};

/* TCP flag bits as in the TCP header's 13th byte. */
#define ST_TCP_FIN 0x01
#define ST_TCP_SYN 0x02
#define ST_TCP_RST 0x04
#define ST_TCP_PSH 0x08
#define ST_TCP_ACK 0x10
#define ST_TCP_URG 0x20

/*
 * Ring buffer record header; for ST_REC_DATA the payload bytes follow it
 * directly (the ring record may be longer than sizeof + len: the kernel
 * reserves fixed size classes, readers use len).
 *
 * Every payload byte of a segment, [0, seg_len), is accounted for by its
 * records: delivered (DATA: [off, off + len)), lost (LOSS: [off, off + len),
 * the ring was full), or elided by the copy policy (the record with
 * ST_RF_ELIDED: [off + len, seg_len)).
 */
struct st_rec {
	__u16 version;    /* ST_ABI_VERSION */
	__u8 type;        /* enum st_rec_type */
	__u8 dir;         /* enum st_dir */
	__u8 family;      /* 4 or 6 */
	__u8 tcp_flags;   /* ST_TCP_*; on a part, SYN only on the first, FIN/PSH only on the last */
	__u16 window;     /* raw TCP window field, host order */
	__u64 ts_ns;      /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 saddr[4];   /* network order; IPv4 uses saddr[0] */
	__u32 daddr[4];
	__u16 sport;      /* host order */
	__u16 dport;
	__u32 seq;        /* sequence number of this record's first byte (segment seq + off) */
	__u32 ack;
	__u32 seg_len;    /* TCP payload length of the whole skb */
	__u32 off;        /* offset of this record's bytes within the skb's payload */
	__u32 len;        /* DATA: payload bytes that follow; LOSS: bytes lost */
	__u32 ifindex;    /* interface (TC) or 0 (cgroup) */
	__u16 vlan;       /* outermost 802.1Q VLAN id, 0 if none */
	__u8 rflags;      /* ST_RF_* */
	__u8 pad;
};

_Static_assert(sizeof(struct st_rec) == 80, "st_rec layout");
_Static_assert(__builtin_offsetof(struct st_rec, ts_ns) == 8, "st_rec.ts_ns");
_Static_assert(__builtin_offsetof(struct st_rec, saddr) == 16, "st_rec.saddr");
_Static_assert(__builtin_offsetof(struct st_rec, daddr) == 32, "st_rec.daddr");
_Static_assert(__builtin_offsetof(struct st_rec, sport) == 48, "st_rec.sport");
_Static_assert(__builtin_offsetof(struct st_rec, seq) == 52, "st_rec.seq");
_Static_assert(__builtin_offsetof(struct st_rec, seg_len) == 60, "st_rec.seg_len");
_Static_assert(__builtin_offsetof(struct st_rec, len) == 68, "st_rec.len");
_Static_assert(__builtin_offsetof(struct st_rec, vlan) == 76, "st_rec.vlan");
_Static_assert(__builtin_offsetof(struct st_rec, rflags) == 78, "st_rec.rflags");

/* Per-CPU, per-direction counters (array map "counters", index = enum st_dir). */
struct st_counters {
	__u64 segs;            /* segments that matched the filters */
	__u64 bytes;           /* payload bytes of those segments */
	__u64 records;         /* records delivered to the ring */
	__u64 lost_segs;       /* segments with at least one byte not delivered */
	__u64 lost_bytes;      /* payload bytes not delivered (ring full) */
	__u64 lost_unreported; /* ST_REC_LOSS records that could not be delivered either */
	__u64 parse_skipped;   /* packets the parser gave up on (truncated, fragments) */
	__u64 sampled_out;     /* segments of connections outside the sample (not in segs) */
	__u64 elided_bytes;    /* payload bytes of segs not copied by the copy policy */
};
/* bytes = delivered + lost_bytes + elided_bytes */
_Static_assert(sizeof(struct st_counters) == 72, "st_counters layout");
_Static_assert(__builtin_offsetof(struct st_counters, sampled_out) == 56, "st_counters.sampled_out");

/* Array map "config", one entry: read only when rodata host_filter is
 * ST_HOST_FILTER_FROM_MAP (a skeleton loaded without the agent's setup). */
struct st_config {
	__u32 host_filter; /* non-zero: only peers in hosts_v4/hosts_v6 are captured */
	__u32 pad;
};
_Static_assert(sizeof(struct st_config) == 8, "st_config layout");

/*
 * Hash map "copy_whole" (LRU, ST_MAX_WHOLE entries), filled by the agent: connections whose
 * payload is copied whole whatever the headers-only policy says, because framing lost its
 * place in them (a head past head_bytes in a segment: agent/watch/watch.h) or they speak
 * HTTP/2; and by the tap itself for a connection whose segment to the service opens with the
 * HTTP/2 client preface (under the headers-only policy, on a port not ST_PORT_WHOLE). Read
 * only when a direction's policy is ST_COPY_HEAD and a segment is longer than head_bytes.
 */
#define ST_MAX_WHOLE 16384u

/* Array map "ports" (bpf/ring.h; index: the service's port, host order), its value's bits:
 * ST_PORT_ON, the port is captured; ST_PORT_WHOLE, its connections are copied whole whatever
 * the headers-only policy says (the agent sets it where HTTP/2 was seen: HPACK needs every
 * header byte from a connection's first, agent/watch/watch_h2.h). */
#define ST_PORT_ON 0x1u
#define ST_PORT_WHOLE 0x2u
struct st_conn_key {
	__u8 family;     /* 4 or 6 */
	__u8 pad;
	__u16 cport;     /* the client's port, host order */
	__u16 sport;     /* the service's port */
	__u16 pad2;
	__u32 caddr[4];  /* the client's address, network order (IPv4 in [0], the rest 0) */
	__u32 saddr[4];  /* the service's */
};
_Static_assert(sizeof(struct st_conn_key) == 40, "st_conn_key layout");

/* LPM trie keys for the --host filter. */
struct st_lpm_v4 {
	__u32 prefixlen;
	__u32 addr; /* network order */
};
struct st_lpm_v6 {
	__u32 prefixlen;
	__u32 addr[4];
};
_Static_assert(sizeof(struct st_lpm_v4) == 8, "st_lpm_v4 layout");
_Static_assert(sizeof(struct st_lpm_v6) == 20, "st_lpm_v6 layout");

/*
 * The TLS probes' own counters (bpf/tls.bpf.c; per-CPU array "tls_counters",
 * one entry). Their payload accounting is in "counters" like the packet
 * programs': segs = SSL calls that carried plaintext of a captured
 * connection, bytes = their plaintext, lost_* = ring full or unreadable.
 */
struct st_tls_counters {
	__u64 calls;              /* SSL_read/_write(_ex) calls of the selected processes */
	__u64 filtered;           /* probe hits of other processes (outside --cgroup / pids) */
	__u64 unattributed_calls; /* calls with plaintext whose socket could not be found
				   * (no socket I/O inside the call, e.g. a memory BIO) */
	__u64 unattributed_bytes; /* ... their plaintext bytes (not delivered) */
	__u64 conns;              /* TLS connections captured */
	__u64 conns_joined;       /* ... of which first seen after their handshake */
	__u64 conns_ended;        /* ... ended by SSL_free (FIN records) */
	__u64 conns_other;        /* connections left out (port, --host, --sample) */
	__u64 nested;             /* SSL calls made inside another (counted once) */
	__u64 fault_bytes;        /* plaintext bpf_probe_read_user could not read (in lost) */
	__u64 not_socket;         /* SSL calls whose I/O used an fd that is not a TCP socket */
	__u64 conns_keyed;        /* fresh sessions of processes in keys mode: not captured by
				   * the per-call probes, decrypted from the packets instead */
	__u64 kdf_calls;          /* EVP_KDF_derive calls of the selected processes */
	__u64 kdf_sent;           /* ... whose parameters went to the ring (traffic secrets) */
	__u64 kdf_lost;           /* ... that the ring could not take (a connection without keys) */
	__u64 procs_lost;         /* process events (ST_REC_PROC) the ring could not take */
};
_Static_assert(sizeof(struct st_tls_counters) == 128, "st_tls_counters layout");
_Static_assert(__builtin_offsetof(struct st_tls_counters, conns) == 32, "st_tls_counters.conns");

/* rodata filter_mode of bpf/tls.bpf.c: which processes' SSL calls are captured. */
enum st_tls_filter {
	ST_TLS_FILTER_ALL = 0,    /* every process that maps the probed library (tests) */
	ST_TLS_FILTER_CGROUP = 1, /* tasks under the cgroup in the "cgroups" array (--cgroup) */
	ST_TLS_FILTER_TGID = 2,   /* processes listed in "tgids" (and their children) */
};

/*
 * ST_REC_KDF (--tls keys mode, docs/TLS.md): the parameters of one EVP_KDF_derive(ctx, out,
 * outlen, params) call of a selected process, read at its entry from the OSSL_PARAM array
 * (OpenSSL's public ABI: key name, data type, data, data size): OpenSSL 3 derives every TLS
 * 1.3 secret with its label, input secret and transcript hash as separate parameters, and
 * TLS 1.2's key block with the master secret and both randoms as the "secret" and "seed"
 * parameters. Only the calls that carry a traffic secret's inputs come (the kernel filters by
 * label); the agent computes the secrets, ties them to connections and keeps them in its
 * memory only. Every record starts with the version and the type, like struct st_rec.
 */
#define ST_KDF_PARAMS 8     /* parameters read per call (TLS1-PRF passes 7 and the end) */
#define ST_KDF_NAME_MAX 8   /* a parameter's name, NUL-padded ("digest", "label", "seed") */
#define ST_KDF_DATA_MAX 64  /* bytes of a parameter's data kept (a SHA-384 secret is 48) */
struct st_kdf_param {
	char name[ST_KDF_NAME_MAX];
	__u32 size;         /* data_size as the caller gave it (at most ST_KDF_DATA_MAX copied) */
	__u32 type;         /* OSSL_PARAM data_type */
	__u8 data[ST_KDF_DATA_MAX];
};
struct st_kdf_rec {
	__u16 version;      /* ST_ABI_VERSION */
	__u8 type;          /* ST_REC_KDF */
	__u8 n;             /* parameters in p */
	__u32 tgid;         /* the process */
	__u64 ts_ns;        /* CLOCK_MONOTONIC */
	__u64 outlen;       /* the call's output length */
	struct st_kdf_param p[ST_KDF_PARAMS];
};
_Static_assert(sizeof(struct st_kdf_param) == 80, "st_kdf_param layout");
_Static_assert(sizeof(struct st_kdf_rec) == 24 + 8 * 80, "st_kdf_rec layout");

enum st_proc_event {
	ST_PROC_FORK = 1, /* a selected process forked tgid (parent: its tgid) */
	ST_PROC_EXEC = 2, /* tgid ran execve inside the --cgroup (a service starting) */
};
/* ST_REC_PROC: submitted with a wakeup, so the agent probes the new process at once. */
struct st_proc_rec {
	__u16 version;
	__u8 type;          /* ST_REC_PROC */
	__u8 event;         /* enum st_proc_event */
	__u32 tgid;
	__u32 parent;
	__u32 pad;
	__u64 ts_ns;
};
_Static_assert(sizeof(struct st_proc_rec) == 24, "st_proc_rec layout");

/* The cookie of each function a uprobe_multi link of tls.bpf.c probes (tls_m_enter): which
 * call it is. */
enum st_tls_fn {
	ST_TLS_FN_READ = 1,      /* SSL_read: the return value is the length */
	ST_TLS_FN_READ_EX = 2,   /* SSL_read_ex, SSL_read_early_data: 1 = ok, *lenp the length */
	ST_TLS_FN_WRITE = 3,
	ST_TLS_FN_WRITE_EX = 4,
	ST_TLS_FN_HANDSHAKE = 5, /* SSL_do_handshake (SSL_accept, SSL_connect): the socket only */
	ST_TLS_FN_SET_FD = 6,    /* SSL_set_fd: the socket, the session's start */
	ST_TLS_FN_FREE = 7,      /* SSL_free: the session's end */
};

/* tls.bpf.c's map "modes" (tgid -> u8): how the agent reads a process's TLS. */
enum st_tls_mode {
	ST_TLS_MODE_CALLS = 0, /* per-call probes: SSL_read/SSL_write's plaintext (the default) */
	ST_TLS_MODE_KEYS = 1,  /* secrets once per handshake, the ciphertext decrypted in the
				* agent: sessions that start now are left to the keys */
};

/* tls.bpf.c's map "procs" (tgid -> this): what each process costs and does, for the agent's
 * choice of mode (agent/input/tls.c). Updated by the probes without atomics: figures. */
struct st_tls_proc {
	__u64 traps;        /* uprobe hits in the process (entry and return probes alike) */
	__u64 kdf;          /* ... of which EVP_KDF_derive */
	__u64 kdf_sent;     /* EVP_KDF_derive calls whose parameters went to the ring */
	__u64 sessions;     /* sessions captured by the per-call probes (fresh or joined) */
	__u64 flights;      /* client flights of those (a read after a write, or the first read) */
	__u64 keyed;        /* fresh sessions left to the keys (mode keys) */
	__u64 ended;        /* sessions of the per-call probes ended (SSL_free) */
	__u64 ended_flights; /* ... their client flights: requests per connection */
};
_Static_assert(sizeof(struct st_tls_proc) == 64, "st_tls_proc layout");

#endif /* SHADOWTAP_ABI_H */
