// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shadowtap's capture programs. The same body runs at TC ingress/egress of an
 * interface and at cgroup_skb ingress/egress of a cgroup. It delivers every
 * TCP segment of the service's ports that matters (SYN, FIN, RST or payload)
 * to the ring buffer, whole: a GSO super-packet goes out as several records.
 * What cannot be delivered is counted and announced. The verdict is always
 * "pass": production packets are never dropped, delayed or changed.
 *
 * What it selects and copies is fixed before load (rodata below), so the
 * verifier prunes the paths a command does not use: connection sampling by
 * the stable hash shadow --sample uses (bpf/connhash.h), the peer filter, and
 * per direction how much payload to copy (bpf/shadowtap.h, enum st_copy_policy).
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define ST_LOAD(ctx, off, dst, len) bpf_skb_load_bytes(ctx, off, dst, len)
#include "parse.h"
#include "connhash.h"
#define ST_HOST_FILTER_DEFAULT ST_HOST_FILTER_FROM_MAP
#include "ring.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_config);
} config SEC(".maps");

/* copy_len: bytes of the segment's payload that are copied (the rest elided). */
static __always_inline int emit_part(struct __sk_buff *skb, const struct st_rec *tmpl,
				     __u32 pay_off, __u32 off, __u32 n, __u32 copy_len,
				     __u64 *avail, const __u32 cls)
{
	struct st_rec *r;

	r = bpf_ringbuf_reserve(&ring, sizeof(*r) + cls, 0);
	if (!r)
		return -1;
	__builtin_memcpy(r, tmpl, sizeof(*r));
	r->seq = tmpl->seq + off;
	r->off = off;
	r->len = n;
	if (off)
		r->tcp_flags &= ~ST_TCP_SYN;
	if (off + n < copy_len) { /* more parts follow */
		r->tcp_flags &= ~(ST_TCP_FIN | ST_TCP_PSH);
		r->rflags &= ~ST_RF_ELIDED;
	}
	/* Verifier workaround: prove 1 <= m <= cls (cls is a power of two) on the
	 * register the helper gets; callers guarantee n is already in range, so
	 * this is the identity. The empty asm keeps clang from folding it away. */
	__u64 m = n;
	asm volatile("" : "+r"(m));
	m = ((m - 1) & (cls - 1)) + 1;
	if (bpf_skb_load_bytes(skb, pay_off + off, (void *)(r + 1), (__u32)m)) {
		bpf_ringbuf_discard(r, 0);
		return -1;
	}
	bpf_ringbuf_submit(r, wakeup_flag(avail, sizeof(*r) + cls));
	return 0;
}

static __always_inline int emit_tail(struct __sk_buff *skb, const struct st_rec *tmpl,
				     __u32 pay_off, __u32 off, __u32 n, __u32 copy_len,
				     __u64 *avail)
{
	if (n <= ST_CLASS_S)
		return emit_part(skb, tmpl, pay_off, off, n, copy_len, avail, ST_CLASS_S);
	if (n <= ST_CLASS_M)
		return emit_part(skb, tmpl, pay_off, off, n, copy_len, avail, ST_CLASS_M);
	return emit_part(skb, tmpl, pay_off, off, n, copy_len, avail, ST_CHUNK_MAX);
}

/* Bytes [off, copy_len) could not be delivered; what the policy elides is not lost. */
static __always_inline void account_loss(struct st_counters *c, const struct st_rec *tmpl,
					 __u32 off, __u32 copy_len, __u64 *avail)
{
	__u32 lost = copy_len - off;

	c->lost_segs++;
	c->lost_bytes += lost;
	if (emit_header_only(tmpl, ST_REC_LOSS, off, lost, avail))
		c->lost_unreported++;
	else
		c->records++;
}

static __always_inline bool peer_wanted(const struct st_pkt *p, bool egress)
{
	const __u32 *peer = egress ? p->daddr : p->saddr;

	if (host_filter == ST_HOST_FILTER_OFF)
		return true;
	if (host_filter == ST_HOST_FILTER_FROM_MAP) {
		__u32 zero = 0;
		struct st_config *cfg = bpf_map_lookup_elem(&config, &zero);

		if (!cfg || !cfg->host_filter)
			return true;
	}
	return host_listed(p->family, peer);
}

/*
 * Delivers one segment: its first copy_len payload bytes in parts of
 * ST_CHUNK_MAX, the last in the smallest class that holds it, or one
 * header-only record when nothing is copied. The ring is queried once per
 * segment for the wakeup decision.
 * A global function, so the verifier checks it once on its own instead of
 * once per parser path (the inlined version exceeds the 1M-instruction limit).
 */
__attribute__((noinline)) int emit_segment(struct __sk_buff *skb, struct st_rec *tmpl,
					   __u32 pay_off, __u32 copy_len)
{
	struct st_counters *c;
	__u32 dir, off;
	__u64 avail;

	if (!tmpl)
		return 0;
	dir = tmpl->dir;
	c = bpf_map_lookup_elem(&counters, &dir);
	if (!c)
		return 0;
	avail = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
	if (!copy_len) {
		if (emit_header_only(tmpl, ST_REC_DATA, 0, 0, &avail))
			account_loss(c, tmpl, 0, 0, &avail);
		else
			c->records++;
		return 0;
	}
	for (__u32 i = 0; i < ST_MAX_CHUNKS; i++) {
		off = i * ST_CHUNK_MAX;
		if (copy_len - off <= ST_CHUNK_MAX) {
			if (emit_tail(skb, tmpl, pay_off, off, copy_len - off, copy_len, &avail))
				account_loss(c, tmpl, off, copy_len, &avail);
			else
				c->records++;
			return 0;
		}
		if (emit_part(skb, tmpl, pay_off, off, ST_CHUNK_MAX, copy_len, &avail,
			      ST_CHUNK_MAX)) {
			account_loss(c, tmpl, off, copy_len, &avail);
			return 0;
		}
		c->records++;
	}
	/* Longer than any skb Linux builds today: say so rather than cut silently. */
	account_loss(c, tmpl, ST_MAX_CHUNKS * ST_CHUNK_MAX, copy_len, &avail);
	return 0;
}

/* Out of the sample: the hash of the connection oriented client -> server
 * (ingress: the peer sent it; egress: the service did). */
static __always_inline bool sampled_out(const struct st_pkt *p, bool egress)
{
	__u64 h;

	if (sample_permyriad >= ST_SAMPLE_ALL)
		return false;
	if (egress)
		h = st_conn_hash(p->family, p->daddr, p->saddr, p->dport, p->sport);
	else
		h = st_conn_hash(p->family, p->saddr, p->daddr, p->sport, p->dport);
	return !st_conn_sampled_in(h, sample_permyriad);
}

/* Under the headers-only policy, a segment to the service that opens with the HTTP/2 client
 * preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", RFC 9113 3.4; its first 8 bytes, which no
 * HTTP/1 request starts with) lists its connection in copy_whole at once: HPACK needs every
 * header byte from the connection's first, and the agent's own mark for the port
 * (ST_PORT_WHOLE) comes only once it has read the preface, a few ms later. */
static __always_inline void h2_preface_whole(struct __sk_buff *skb, const struct st_pkt *p)
{
	struct st_conn_key k;
	char b[8];
	__u8 one = 1;

	if (p->payload_len < 24 || bpf_skb_load_bytes(skb, p->payload_off, b, sizeof(b)))
		return;
	if (b[0] != 'P' || b[1] != 'R' || b[2] != 'I' || b[3] != ' ' || b[4] != '*' ||
	    b[5] != ' ' || b[6] != 'H' || b[7] != 'T')
		return;
	__builtin_memset(&k, 0, sizeof(k));
	k.family = p->family;
	k.cport = p->sport;
	k.sport = p->dport;
	__builtin_memcpy(k.caddr, p->saddr, 16);
	__builtin_memcpy(k.saddr, p->daddr, 16);
	bpf_map_update_elem(&copy_whole, &k, &one, BPF_ANY);
}

static __always_inline void handle(struct __sk_buff *skb, int l2, bool egress)
{
	__u32 dir = egress ? ST_DIR_OUT : ST_DIR_IN;
	struct st_counters *c;
	struct st_pkt p;
	struct st_rec tmpl;
	__u32 port, len, copy, policy;
	__u8 *on, ends;
	int ret;

	c = bpf_map_lookup_elem(&counters, &dir);
	if (!c)
		return;
	ret = st_parse(skb, skb->len, l2, &p);
	if (ret != ST_PARSE_TCP) {
		if (ret == ST_PARSE_BAD || ret == ST_PARSE_FRAG)
			c->parse_skipped++;
		return;
	}
	/* The service's side of its ports only: arriving for P, leaving from P.
	 * Connections this host opens to port P elsewhere are not the service's. */
	port = egress ? p.sport : p.dport;
	on = bpf_map_lookup_elem(&ports, &port);
	if (!on || !*on)
		return;
	len = p.payload_len;
	ends = p.tcp_flags & (ST_TCP_SYN | ST_TCP_FIN | ST_TCP_RST);
	if (!len && !ends)
		return;
	if (sampled_out(&p, egress)) {
		c->sampled_out++;
		return;
	}
	if (!peer_wanted(&p, egress))
		return;

	c->segs++;
	c->bytes += len;
	copy = len;
	policy = egress ? copy_out : copy_in;
	if (!egress && (copy_in == ST_COPY_HEAD || copy_out == ST_COPY_HEAD) &&
	    !(*on & ST_PORT_WHOLE))
		h2_preface_whole(skb, &p);
	if (policy == ST_COPY_NONE) {
		c->elided_bytes += len;
		if (!ends)
			return;
		copy = 0;
	} else if (policy == ST_COPY_HEAD && len > head_bytes && !(*on & ST_PORT_WHOLE) &&
		   !(egress ? whole_listed(p.family, p.daddr, p.dport, p.saddr, p.sport) :
			      whole_listed(p.family, p.saddr, p.sport, p.daddr, p.dport))) {
		/* a connection the agent lost its place in is copied whole (copy_whole) */
		c->elided_bytes += len - head_bytes;
		copy = head_bytes;
	}

	__builtin_memset(&tmpl, 0, sizeof(tmpl));
	tmpl.version = ST_ABI_VERSION;
	tmpl.type = ST_REC_DATA;
	tmpl.dir = (__u8)dir;
	tmpl.family = p.family;
	tmpl.tcp_flags = p.tcp_flags;
	tmpl.window = p.window;
	tmpl.ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(tmpl.saddr, p.saddr, sizeof(tmpl.saddr));
	__builtin_memcpy(tmpl.daddr, p.daddr, sizeof(tmpl.daddr));
	tmpl.sport = p.sport;
	tmpl.dport = p.dport;
	tmpl.seq = p.seq;
	tmpl.ack = p.ack;
	tmpl.seg_len = len;
	if (copy < len)
		tmpl.rflags = ST_RF_ELIDED;
	if (policy == ST_COPY_NONE)
		tmpl.rflags |= ST_RF_NO_PAYLOAD;
	if (l2) {
		tmpl.ifindex = skb->ifindex;
		tmpl.vlan = p.vlan;
		/* Offloaded tag (veth, most NICs): not in the packet bytes. */
		if (!tmpl.vlan && skb->vlan_present)
			tmpl.vlan = skb->vlan_tci & 0x0fff;
	}

	emit_segment(skb, &tmpl, p.payload_off, copy);
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	handle(skb, 1, false);
	/* TC_ACT_UNSPEC (TCX_NEXT): let every other program and filter run as if
	 * we were not there. */
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	handle(skb, 1, true);
	return TC_ACT_UNSPEC;
}

SEC("cgroup_skb/ingress")
int cgroup_skb_ingress(struct __sk_buff *skb)
{
	handle(skb, 0, false);
	return 1; /* allow */
}

SEC("cgroup_skb/egress")
int cgroup_skb_egress(struct __sk_buff *skb)
{
	handle(skb, 0, true);
	return 1;
}
