/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every shadowtap BPF object that emits records shares (tap.bpf.c, the
 * packet programs; tls.bpf.c, the OpenSSL uprobes): the selection and copy
 * knobs fixed before load, the ring and the filter maps the agent fills
 * (agent/input/tap.c fills both objects' maps the same way), the wakeup policy and
 * the header-only record. One definition, so the two inputs cannot drift.
 *
 * Include after bpf_helpers.h and shadowtap.h. ST_HOST_FILTER_DEFAULT, when
 * defined first, is host_filter's value for a skeleton nobody configured.
 */
#ifndef ST_BPF_RING_H
#define ST_BPF_RING_H

#ifndef ST_HOST_FILTER_DEFAULT
#define ST_HOST_FILTER_DEFAULT ST_HOST_FILTER_OFF
#endif

/* Force a consumer wakeup each time the data waiting in the ring crosses a
 * multiple of this (a power of two); otherwise records go in without a wakeup
 * (the agent drains on a short timer). Per-record wakeups cost production
 * throughput, and so does one per record while the agent catches up
 * (docs/FACTS.md, "Ring buffer wakeups"). */
const volatile __u64 wakeup_bytes = 1 << 20;
/* Connections kept per 10000 by st_conn_hash(); ST_SAMPLE_ALL: no sampling. */
const volatile __u32 sample_permyriad = ST_SAMPLE_ALL;
/* enum st_host_filter */
const volatile __u32 host_filter = ST_HOST_FILTER_DEFAULT;
/* enum st_copy_policy per direction; head_bytes for ST_COPY_HEAD (1..ST_CHUNK_MAX). */
const volatile __u32 copy_in = ST_COPY_FULL;
const volatile __u32 copy_out = ST_COPY_FULL;
const volatile __u32 head_bytes = 256;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* set from --ring-mb before load */
} ring SEC(".maps");

/* Index: the service's port (host order); value non-zero: captured (ST_PORT_ON, and
 * ST_PORT_WHOLE: copied whole, bpf/shadowtap.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u8);
} ports SEC(".maps");

/* --host: the peers kept (longest-prefix match), when host_filter says so. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ST_MAX_HOSTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct st_lpm_v4);
	__type(value, __u8);
} hosts_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ST_MAX_HOSTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct st_lpm_v6);
	__type(value, __u8);
} hosts_v6 SEC(".maps");

/* Per CPU, per direction (enum st_dir). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_DIR_MAX);
	__type(key, __u32);
	__type(value, struct st_counters);
} counters SEC(".maps");

/* Connections copied whole under the headers-only policy (bpf/shadowtap.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ST_MAX_WHOLE);
	__type(key, struct st_conn_key);
	__type(value, __u8);
} copy_whole SEC(".maps");

/* Whether the connection (client caddr:cport, service saddr:sport) is in copy_whole. */
static __always_inline bool whole_listed(__u8 family, const __u32 *caddr, __u16 cport,
					 const __u32 *saddr, __u16 sport)
{
	struct st_conn_key k;

	__builtin_memset(&k, 0, sizeof(k));
	k.family = family;
	k.cport = cport;
	k.sport = sport;
	__builtin_memcpy(k.caddr, caddr, 16);
	__builtin_memcpy(k.saddr, saddr, 16);
	return bpf_map_lookup_elem(&copy_whole, &k) != NULL;
}

/* Ring record size classes: reserve sizes must be constants, so the last
 * (or only) part of a segment picks the smallest class that holds it. */
#define ST_CLASS_S 256u
#define ST_CLASS_M 2048u

/* Ring record sizes as the ring buffer counts them (8-byte header, 8-aligned). */
#define ST_RB_SIZE(n) ((((__u64)(n)) + 8 + 7) & ~7ull)

/* Whether the peer (family 4 or 6; addr in network order) is in the --host tries. */
static __always_inline bool host_listed(__u8 family, const __u32 *addr)
{
	if (family == 4) {
		struct st_lpm_v4 k = { .prefixlen = 32, .addr = addr[0] };

		return bpf_map_lookup_elem(&hosts_v4, &k) != NULL;
	} else {
		struct st_lpm_v6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, addr, 16);
		return bpf_map_lookup_elem(&hosts_v6, &k) != NULL;
	}
}

/*
 * The wakeup flag for a record of sz bytes, given *avail, the data waiting
 * before it (queried once per skb or call and advanced here): force a wakeup
 * only when the record crosses a multiple of wakeup_bytes. Another CPU's
 * records may make us miss a crossing; the next one, or the agent's timer,
 * drains the ring.
 */
static __always_inline __u64 wakeup_flag(__u64 *avail, __u64 sz)
{
	__u64 before = *avail;

	*avail = before + ST_RB_SIZE(sz);
	return (before ^ *avail) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* A record without payload (a connection end, a loss mark): the template's, as type,
 * for bytes [off, off + len) of the segment. */
static __always_inline int emit_header_only(const struct st_rec *tmpl, __u8 type, __u32 off,
					    __u32 len, __u64 *avail)
{
	struct st_rec *r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);

	if (!r)
		return -1;
	__builtin_memcpy(r, tmpl, sizeof(*r));
	r->type = type;
	r->seq = tmpl->seq + off;
	r->off = off;
	r->len = len;
	bpf_ringbuf_submit(r, wakeup_flag(avail, sizeof(*r)));
	return 0;
}

#endif /* ST_BPF_RING_H */
