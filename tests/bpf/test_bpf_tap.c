/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * BPF program tests: crafted packets through bpf_prog_test_run_opts (no
 * interface attached), table-driven, each row its own test; plus real sends
 * over loopback, each test in a network namespace of its own, to see GSO
 * super-packets arrive whole. Every case asserts the verdict is "pass" and the
 * records are exact. Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN):
 * skips without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf/shadowtap.h"
#include "pktparse.h" /* the parser's limits */
#include "record.h"
#include "tap.h"
#include "tap.skel.h"

/* Table rows name only the fields that matter. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MAX_RECS 512

struct got {
	size_t n;
	struct st_rec recs[MAX_RECS];
	uint8_t *data[MAX_RECS];
};

struct fixture {
	struct tap_bpf *skel;
	struct ring_buffer *rb;
	struct got got;
};

static int collect(void *ctx, void *data, size_t size)
{
	struct got *g = ctx;
	const struct st_rec *r = data;

	assert_true(size >= sizeof(*r));
	assert_true(g->n < MAX_RECS);
	g->recs[g->n] = *r;
	g->data[g->n] = NULL;
	if (r->type == ST_REC_DATA && r->len) {
		assert_true(size >= sizeof(*r) + r->len);
		g->data[g->n] = malloc(r->len);
		memcpy(g->data[g->n], r + 1, r->len);
	}
	g->n++;
	return 0;
}

static void got_reset(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

static struct tap_bpf *load(unsigned ring_bytes)
{
	struct tap_bpf *s = tap_bpf__open();

	if (!s)
		return NULL;
	bpf_map__set_max_entries(s->maps.ring, ring_bytes);
	if (tap_bpf__load(s)) {
		tap_bpf__destroy(s);
		return NULL;
	}
	return s;
}

/* The programs loaded once, ports 80 and 8080 on, for the tests that run crafted frames.
 * NULL when not root or when loading failed (the tests then skip or fail). */
static struct fixture *fixture_new(void)
{
	struct fixture *f;
	__u8 one = 1;
	__u32 ports[] = { 80, 8080 };

	if (geteuid() != 0)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->skel = load(1 << 22);
	if (!f->skel) {
		fprintf(stderr, "cannot load BPF programs: %s\n", strerror(errno));
		free(f);
		return NULL;
	}
	for (size_t i = 0; i < 2; i++)
		bpf_map__update_elem(f->skel->maps.ports, &ports[i], 4, &one, 1, 0);
	f->rb = ring_buffer__new(bpf_map__fd(f->skel->maps.ring), collect, &f->got, NULL);
	if (!f->rb) {
		tap_bpf__destroy(f->skel);
		free(f);
		return NULL;
	}
	return f;
}

static void fixture_free(struct fixture *f)
{
	if (!f)
		return;
	got_reset(&f->got);
	ring_buffer__free(f->rb);
	tap_bpf__destroy(f->skel);
	free(f);
}

/* Skips without root; as root, a fixture that did not load is a failure. */
#define FIXTURE_OR_SKIP(f)                                                       \
	do {                                                                     \
		if (geteuid() != 0)                                              \
			skip();                                                  \
		if (!(f))                                                        \
			fail_msg("the BPF programs did not load (see stderr)"); \
	} while (0)
#define SKIP_UNLESS_ROOT()                  \
	do {                                \
		if (geteuid() != 0)         \
			skip();             \
	} while (0)

/*
 * Tests that send real traffic each get a network namespace of their own, with only lo up,
 * and leave it for the original one afterwards: none depends on another having run (or
 * skipped) first, and none ever attaches to the host's lo.
 */
struct netns {
	int orig;  /* the namespace to return to */
	bool in;   /* inside a fresh one */
};

static int netns_enter(void **state)
{
	struct netns *ns;

	if (geteuid() != 0)
		return 0; /* the test skips */
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -1;
	*state = ns;
	ns->orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->orig < 0 || unshare(CLONE_NEWNET))
		return 0;
	ns->in = true;
	if (system("ip link set lo up"))
		ns->in = false;
	return 0;
}

static int netns_leave(void **state)
{
	struct netns *ns = *state;
	int rc = 0;

	if (!ns)
		return 0;
	if (ns->orig >= 0) {
		if (setns(ns->orig, CLONE_NEWNET)) {
			fprintf(stderr, "cannot return to the original network namespace: %s\n",
				strerror(errno));
			rc = -1;
		}
		close(ns->orig);
	}
	free(ns);
	return rc;
}

#define NETNS_OR_SKIP()                                                                \
	do {                                                                           \
		const struct netns *ns_ = *state;                                      \
		if (geteuid() != 0)                                                    \
			skip();                                                        \
		if (!ns_ || !ns_->in) {                                                \
			print_message("cannot make a network namespace: skipped\n");  \
			skip();                                                        \
		}                                                                      \
	} while (0)

/* ---- packet builder ------------------------------------------------------------------ */

struct spec {
	int v6;
	int vlans;       /* in-band tags: 802.1ad outside when more than one, 802.1Q inside */
	int ip_opt;      /* IPv4 option bytes (multiple of 4) */
	int v6_ext;      /* IPv6: number of extension headers (HBH, then DSTOPTS) */
	int tcp_opt;     /* TCP option bytes (multiple of 4) */
	uint32_t src, dst; /* IPv4 addresses (host order); IPv6 uses fd00::src / fd00::dst */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint32_t len;     /* payload bytes */
	int pad;          /* Ethernet padding bytes after the IP datagram */
	int frag;         /* IPv4: non-first fragment */
	int udp;
	int truncate;     /* cut the frame this many bytes into the TCP header */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint8_t payload_byte(uint32_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static void v6addr(uint8_t *p, uint32_t low)
{
	memset(p, 0, 16);
	p[0] = 0xfd;
	put32(p + 12, low);
}

/* Returns the frame length; *l3 gets the IP header offset. */
static size_t build(const struct spec *s, uint8_t *buf, size_t *l3)
{
	size_t off = 12;
	size_t tcp_len = 20 + (size_t)s->tcp_opt + s->len;
	uint8_t *ip, *th;

	memset(buf, 0, 14);
	buf[0] = 0x02;
	buf[6] = 0x02;
	for (int i = 0; i < s->vlans; i++) {
		put16(buf + off, i == 0 && s->vlans > 1 ? 0x88a8 : 0x8100);
		put16(buf + off + 2, (uint16_t)(100 + i));
		off += 4;
	}
	put16(buf + off, s->v6 ? 0x86dd : 0x0800);
	off += 2;
	*l3 = off;
	ip = buf + off;
	if (!s->v6) {
		size_t hl = 20 + (size_t)s->ip_opt;

		memset(ip, 0, hl);
		ip[0] = (uint8_t)(0x40 | (hl / 4));
		put16(ip + 2, (uint16_t)(hl + tcp_len));
		put16(ip + 6, s->frag ? 0x0010 : 0x4000);
		ip[8] = 64;
		ip[9] = s->udp ? 17 : 6;
		put32(ip + 12, s->src);
		put32(ip + 16, s->dst);
		for (int i = 0; i < s->ip_opt; i++)
			ip[20 + i] = 1; /* NOP options */
		off += hl;
	} else {
		uint8_t next = s->udp ? 17 : 6;
		size_t ext = (size_t)s->v6_ext * 8;

		memset(ip, 0, 40 + ext);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(ext + tcp_len));
		ip[6] = s->v6_ext ? 0 /* HBH */ : next;
		ip[7] = 64;
		v6addr(ip + 8, s->src);
		v6addr(ip + 24, s->dst);
		for (int i = 0; i < s->v6_ext; i++) {
			uint8_t *e = ip + 40 + i * 8;

			e[0] = i + 1 < s->v6_ext ? 60 /* DSTOPTS */ : next;
			e[1] = 0;
			e[2] = 1; /* PadN */
			e[3] = 4;
		}
		off += 40 + ext;
	}
	th = buf + off;
	memset(th, 0, 20 + (size_t)s->tcp_opt);
	put16(th, s->sport);
	put16(th + 2, s->dport);
	put32(th + 4, s->seq);
	put32(th + 8, s->ack);
	th[12] = (uint8_t)(((20 + s->tcp_opt) / 4) << 4);
	th[13] = s->flags;
	put16(th + 14, 512);
	for (int i = 0; i < s->tcp_opt; i++)
		th[20 + i] = 1; /* NOP */
	off += 20 + (size_t)s->tcp_opt;
	for (uint32_t i = 0; i < s->len; i++)
		buf[off + i] = payload_byte(i);
	off += s->len;
	memset(buf + off, 0xee, (size_t)s->pad);
	off += (size_t)s->pad;
	if (s->truncate)
		off = (size_t)(th - buf) + (size_t)s->truncate;
	return off;
}

enum prog { TC_IN, TC_OUT, CG_IN, CG_OUT };

static int run(struct fixture *f, enum prog which, const struct spec *s, __u32 *retval)
{
	static uint8_t buf[4096];
	size_t l3, len = build(s, buf, &l3);
	struct bpf_program *progs[] = { f->skel->progs.tc_ingress, f->skel->progs.tc_egress,
					f->skel->progs.cgroup_skb_ingress,
					f->skel->progs.cgroup_skb_egress };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = (__u32)len);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(progs[which]), &o);
	*retval = o.retval;
	got_reset(&f->got);
	ring_buffer__consume(f->rb);
	return err;
}

static void counters(struct fixture *f, __u32 dir, struct st_counters *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct st_counters *v = calloc((size_t)ncpu, sizeof(*v));

	memset(out, 0, sizeof(*out));
	assert_int_equal(bpf_map__lookup_elem(f->skel->maps.counters, &dir, 4, v,
					      sizeof(*v) * (size_t)ncpu, 0), 0);
	for (int i = 0; i < ncpu; i++) {
		out->segs += v[i].segs;
		out->bytes += v[i].bytes;
		out->records += v[i].records;
		out->lost_bytes += v[i].lost_bytes;
		out->lost_segs += v[i].lost_segs;
		out->parse_skipped += v[i].parse_skipped;
	}
	free(v);
}

/* Asserts the records of one segment: contiguous parts, exact bytes. */
static void check_records(struct fixture *f, const struct spec *s, __u8 dir)
{
	uint32_t off = 0;

	assert_true(f->got.n >= 1);
	for (size_t i = 0; i < f->got.n; i++) {
		const struct st_rec *r = &f->got.recs[i];

		assert_int_equal(r->version, ST_ABI_VERSION);
		assert_int_equal(r->type, ST_REC_DATA);
		assert_int_equal(r->dir, dir);
		assert_int_equal(r->family, s->v6 ? 6 : 4);
		assert_int_equal(r->sport, s->sport);
		assert_int_equal(r->dport, s->dport);
		assert_int_equal(r->off, off);
		assert_int_equal(r->seq, s->seq + off);
		assert_int_equal(r->ack, s->ack);
		assert_int_equal(r->seg_len, s->len);
		assert_int_equal(r->window, 512);
		if (s->v6) {
			uint8_t a[16];

			v6addr(a, s->src);
			assert_memory_equal(r->saddr, a, 16);
			v6addr(a, s->dst);
			assert_memory_equal(r->daddr, a, 16);
		} else {
			assert_int_equal(ntohl(r->saddr[0]), s->src);
			assert_int_equal(ntohl(r->daddr[0]), s->dst);
			assert_int_equal(r->saddr[1] | r->daddr[3], 0);
		}
		for (uint32_t j = 0; j < r->len; j++)
			if (f->got.data[i][j] != payload_byte(off + j))
				fail_msg("payload byte %u differs", off + j);
		off += r->len;
		if (i + 1 < f->got.n)
			assert_int_equal(r->tcp_flags, s->flags & ~(ST_TCP_FIN | ST_TCP_PSH));
		else
			assert_int_equal(r->tcp_flags, i ? (s->flags & ~ST_TCP_SYN) : s->flags);
	}
	assert_int_equal(off, s->len);
}

#define V4(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))
#define CLIENT V4(10, 1, 2, 3)
#define SERVER V4(10, 0, 0, 1)

struct table_case {
	const char *name;
	enum prog prog;
	struct spec s;
	int records; /* -1: at least one, checked by check_records */
	__u16 vlan;
};

static const struct table_case cases[] = {
	{ "syn", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 40000, .dport = 80, .seq = 1000,
			  .flags = ST_TCP_SYN }, 1 },
	{ "bare ack skipped", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 40000, .dport = 80,
				       .flags = ST_TCP_ACK }, 0 },
	{ "fin no payload", TC_OUT, { .src = SERVER, .dst = CLIENT, .sport = 80, .dport = 40000,
				      .flags = ST_TCP_FIN | ST_TCP_ACK }, 1 },
	{ "rst", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 40000, .dport = 80,
			  .flags = ST_TCP_RST }, 1 },
	{ "1 byte", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 40000, .dport = 80, .seq = 7,
			     .ack = 9, .flags = ST_TCP_ACK | ST_TCP_PSH, .len = 1 }, 1 },
	{ "256 bytes (small class edge)", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 1,
						   .dport = 8080, .seq = 0xfffffff0,
						   .flags = ST_TCP_ACK, .len = 256 }, 1 },
	{ "257 bytes", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 2, .dport = 80,
				.flags = ST_TCP_ACK, .len = 257 }, 1 },
	{ "2048 bytes", TC_OUT, { .src = SERVER, .dst = CLIENT, .sport = 80, .dport = 3,
				  .flags = ST_TCP_ACK, .len = 2048 }, 1 },
	{ "3600 bytes", TC_OUT, { .src = SERVER, .dst = CLIENT, .sport = 80, .dport = 3,
				  .flags = ST_TCP_ACK | ST_TCP_PSH | ST_TCP_FIN, .len = 3600 }, 1 },
	{ "ipv4 options + tcp options", TC_IN, { .ip_opt = 40, .tcp_opt = 40, .src = CLIENT,
						 .dst = SERVER, .sport = 5, .dport = 80,
						 .flags = ST_TCP_ACK, .len = 100 }, 1 },
	{ "ethernet padding", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80,
				       .flags = ST_TCP_ACK, .len = 2, .pad = 4 }, 1 },
	{ "ipv6", TC_IN, { .v6 = 1, .src = 2, .dst = 1, .sport = 5, .dport = 80,
			   .flags = ST_TCP_ACK, .len = 500 }, 1 },
	{ "ipv6 ext headers + tcp options", TC_OUT, { .v6 = 1, .v6_ext = 3, .tcp_opt = 12,
						      .src = 1, .dst = 2, .sport = 80,
						      .dport = 5, .flags = ST_TCP_ACK,
						      .len = 1000 }, 1 },
	{ "vlan", TC_IN, { .vlans = 1, .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80,
			   .flags = ST_TCP_ACK, .len = 10 }, 1, 100 },
	{ "qinq ipv6", TC_IN, { .vlans = 2, .v6 = 1, .src = 2, .dst = 1, .sport = 5, .dport = 80,
				.flags = ST_TCP_ACK, .len = 10 }, 1, 100 },
	/* The parser's limits (bpf/parse.h): at each, parsed; past it, not TCP to us. */
	{ "vlan tags at the limit", TC_IN, { .vlans = ST_MAX_VLAN_TAGS, .src = CLIENT,
					     .dst = SERVER, .sport = 5, .dport = 80,
					     .flags = ST_TCP_ACK, .len = 10 }, 1, 100 },
	{ "vlan tags past the limit", TC_IN, { .vlans = ST_MAX_VLAN_TAGS + 1, .src = CLIENT,
					       .dst = SERVER, .sport = 5, .dport = 80,
					       .flags = ST_TCP_ACK, .len = 10 }, 0 },
	{ "ipv6 ext headers at the limit", TC_OUT, { .v6 = 1, .v6_ext = ST_MAX_V6_EXT, .src = 1,
						     .dst = 2, .sport = 80, .dport = 5,
						     .flags = ST_TCP_ACK, .len = 10 }, 1 },
	{ "ipv6 ext headers past the limit", TC_OUT, { .v6 = 1, .v6_ext = ST_MAX_V6_EXT + 1,
						       .src = 1, .dst = 2, .sport = 80,
						       .dport = 5, .flags = ST_TCP_ACK,
						       .len = 10 }, 0 },
	{ "cgroup ipv6 ext headers at the limit", CG_IN, { .v6 = 1, .v6_ext = ST_MAX_V6_EXT,
							   .src = 2, .dst = 1, .sport = 5,
							   .dport = 80, .flags = ST_TCP_ACK,
							   .len = 10 }, 1 },
	{ "other port in", TC_IN, { .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 81,
				    .flags = ST_TCP_ACK, .len = 10 }, 0 },
	{ "host's own connection to port 80 (egress dport)", TC_OUT,
	  { .src = SERVER, .dst = CLIENT, .sport = 40000, .dport = 80, .flags = ST_TCP_SYN }, 0 },
	{ "reply from a remote port 80 (ingress sport)", TC_IN,
	  { .src = CLIENT, .dst = SERVER, .sport = 80, .dport = 40000, .flags = ST_TCP_ACK,
	    .len = 10 }, 0 },
	{ "udp", TC_IN, { .udp = 1, .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80,
			  .len = 10 }, 0 },
	{ "cgroup ingress", CG_IN, { .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80,
				     .flags = ST_TCP_ACK, .len = 300 }, 1 },
	{ "cgroup egress ipv6", CG_OUT, { .v6 = 1, .src = 1, .dst = 2, .sport = 80, .dport = 5,
					  .flags = ST_TCP_ACK, .len = 3000 }, 1 },
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* One row of the table, as a cmocka test of its own (named after the row). */
struct row_test {
	struct fixture *f;
	const struct table_case *c;
};

static void test_table_row(void **state)
{
	const struct row_test *t = *state;
	const struct table_case *c = t->c;
	struct fixture *f = t->f;
	int egress = c->prog == TC_OUT || c->prog == CG_OUT;
	int cg = c->prog == CG_IN || c->prog == CG_OUT;
	struct st_counters before, after;
	__u32 retval;

	FIXTURE_OR_SKIP(f);
	counters(f, egress, &before);
	assert_int_equal(run(f, c->prog, &c->s, &retval), 0);
	/* Always the pass verdict: TC_ACT_UNSPEC (TCX_NEXT), cgroup "allow". */
	assert_int_equal(retval, cg ? 1u : (__u32)TC_ACT_UNSPEC);
	counters(f, egress, &after);
	if (!c->records) {
		assert_int_equal(f->got.n, 0);
		assert_int_equal(after.segs, before.segs);
		return;
	}
	check_records(f, &c->s, (__u8)egress);
	assert_int_equal(f->got.recs[0].vlan, c->vlan);
	assert_int_equal(after.segs - before.segs, 1);
	assert_int_equal(after.bytes - before.bytes, c->s.len);
	assert_int_equal(after.records - before.records, f->got.n);
	assert_int_equal(after.lost_bytes, before.lost_bytes);
}

static void test_malformed_pass_and_counted(void **state)
{
	struct fixture *f = *state;
	const struct spec bad[] = {
		{ .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80, .len = 0, .truncate = 10 },
		{ .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80, .len = 10, .frag = 1 },
	};

	FIXTURE_OR_SKIP(f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct st_counters before, after;
		__u32 retval;

		counters(f, ST_DIR_IN, &before);
		assert_int_equal(run(f, TC_IN, &bad[i], &retval), 0);
		assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
		assert_int_equal(f->got.n, 0);
		counters(f, ST_DIR_IN, &after);
		assert_int_equal(after.parse_skipped - before.parse_skipped, 1);
	}
}

static void test_host_filter(void **state)
{
	struct fixture *f = *state;
	struct st_config on = { .host_filter = 1 }, off = { 0 };
	struct st_lpm_v4 k4 = { .prefixlen = 8, .addr = htonl(V4(10, 0, 0, 0)) };
	struct st_lpm_v6 k6 = { .prefixlen = 128 };
	struct spec s = { .src = V4(10, 9, 9, 9), .dst = SERVER, .sport = 5, .dport = 80,
			  .flags = ST_TCP_ACK, .len = 4 };
	__u32 zero = 0, retval;
	__u8 one = 1;

	FIXTURE_OR_SKIP(f);
	v6addr((uint8_t *)k6.addr, 7);
	assert_int_equal(bpf_map__update_elem(f->skel->maps.hosts_v4, &k4, sizeof(k4), &one, 1, 0), 0);
	assert_int_equal(bpf_map__update_elem(f->skel->maps.hosts_v6, &k6, sizeof(k6), &one, 1, 0), 0);
	assert_int_equal(bpf_map__update_elem(f->skel->maps.config, &zero, 4, &on, sizeof(on), 0), 0);

	run(f, TC_IN, &s, &retval); /* 10.9.9.9 in 10/8 */
	assert_int_equal(f->got.n, 1);
	s.src = V4(192, 0, 2, 1);
	run(f, TC_IN, &s, &retval);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	/* Egress: the peer is the destination. */
	s = (struct spec){ .src = SERVER, .dst = V4(10, 0, 0, 2), .sport = 80, .dport = 5,
			   .flags = ST_TCP_ACK, .len = 4 };
	run(f, TC_OUT, &s, &retval);
	assert_int_equal(f->got.n, 1);
	s.dst = V4(198, 51, 100, 1);
	run(f, TC_OUT, &s, &retval);
	assert_int_equal(f->got.n, 0);
	s = (struct spec){ .v6 = 1, .src = 7, .dst = 1, .sport = 5, .dport = 80,
			   .flags = ST_TCP_ACK, .len = 4 };
	run(f, TC_IN, &s, &retval);
	assert_int_equal(f->got.n, 1);
	s.src = 8;
	run(f, TC_IN, &s, &retval);
	assert_int_equal(f->got.n, 0);
	/* Filters are maps: switching off needs no reload. */
	assert_int_equal(bpf_map__update_elem(f->skel->maps.config, &zero, 4, &off, sizeof(off), 0), 0);
	run(f, TC_IN, &s, &retval);
	assert_int_equal(f->got.n, 1);
}

/* A ring too small for the traffic: every byte is either delivered or counted
 * lost, and each loss is announced with its exact range. */
static void test_ring_full(void **state)
{
	struct tap_bpf *s;
	struct got *g;
	struct ring_buffer *rb;
	struct st_counters c = { 0 };
	struct fixture f;
	__u32 port = 80;
	__u8 one = 1;
	uint64_t delivered = 0, announced = 0, total = 0;

	SKIP_UNLESS_ROOT();
	g = calloc(1, sizeof(*g));
	s = load(16384);
	assert_non_null(s);
	bpf_map__update_elem(s->maps.ports, &port, 4, &one, 1, 0);
	rb = ring_buffer__new(bpf_map__fd(s->maps.ring), collect, g, NULL);
	f.skel = s;
	for (int i = 0; i < 20; i++) {
		static uint8_t buf[4096];
		struct spec sp = { .src = CLIENT, .dst = SERVER, .sport = 5, .dport = 80,
				   .seq = (uint32_t)i * 3000, .flags = ST_TCP_ACK, .len = 3000 };
		size_t l3, len = build(&sp, buf, &l3);
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = (__u32)len);

		assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(s->progs.tc_ingress), &o), 0);
		assert_int_equal(o.retval, (__u32)TC_ACT_UNSPEC);
		total += 3000;
	}
	ring_buffer__consume(rb);
	for (size_t i = 0; i < g->n; i++) {
		if (g->recs[i].type == ST_REC_DATA)
			delivered += g->recs[i].len;
		else
			announced += g->recs[i].len;
	}
	counters(&f, ST_DIR_IN, &c);
	assert_true(c.lost_bytes > 0);
	assert_int_equal(delivered + c.lost_bytes, total);
	/* Header-only loss records fit where data did not, up to the ring's end. */
	assert_true(announced <= c.lost_bytes);
	assert_true(announced > 0);
	got_reset(g);
	free(g);
	ring_buffer__free(rb);
	tap_bpf__destroy(s);
}

/* ---- loopback in a private network namespace: GSO super-packets ------------------- */

struct stream {
	uint8_t *buf;
	uint8_t *seen;    /* per byte: captured already (a retransmission on a loaded host is not new) */
	size_t cap;
	uint32_t isn;
	int have_isn;
	size_t bytes;
	size_t parts_off_nonzero; /* records that were a later part of a big skb */
	size_t max_seg_len;
};

static int on_seg(void *ctx, const struct st_segment *seg)
{
	struct stream *st = ctx;

	if (seg->dir != ST_DIR_IN || seg->key.dport != 5555)
		return 0;
	if (seg->flags & ST_TCP_SYN) {
		st->isn = seg->seq + 1;
		st->have_isn = 1;
		return 0;
	}
	if (!st->have_isn || seg->kind != ST_SEG_DATA || !seg->len)
		return 0;
	uint32_t rel = seg->seq - st->isn;

	assert_true(rel + seg->len <= st->cap);
	memcpy(st->buf + rel, seg->data, seg->len);
	for (uint32_t i = 0; i < seg->len; i++) {
		st->bytes += !st->seen[rel + i];
		st->seen[rel + i] = 1;
	}
	return 0;
}

static int rec_peek(void *ctx, void *data, size_t size)
{
	struct stream *st = ctx;
	const struct st_rec *r = data;

	if (r->off)
		st->parts_off_nonzero++;
	if (r->seg_len > st->max_seg_len)
		st->max_seg_len = r->seg_len;
	return 0;
}

static void test_loopback_gso_whole(void **state)
{
	const size_t N = 256 * 1024;
	struct st_target t = { .iface = "lo", .ports = { 5555 }, .n_ports = 1, .ring_mb = 64 };
	struct stream st = { .cap = N };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5555),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct st_tap *tap;
	uint8_t *src;
	int ls, cs, ss, one = 1;
	size_t got = 0;

	NETNS_OR_SKIP();
	st.buf = calloc(1, N);
	st.seen = calloc(1, N);
	src = malloc(N);
	for (size_t i = 0; i < N; i++)
		src[i] = (uint8_t)(i * 13 + (i >> 11));
	tap = st_tap__open(&t, false, on_seg, &st);
	assert_non_null(tap);

	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	ss = accept(ls, NULL, NULL);
	assert_true(ss >= 0);
	assert_int_equal(send(cs, src, N, 0), (ssize_t)N);
	while (got < N) {
		static uint8_t sink[65536];
		ssize_t r = recv(ss, sink, sizeof(sink), 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(cs);
	close(ss);
	close(ls);
	usleep(100 * 1000);
	assert_true(st_tap__consume(tap) >= 0);
	assert_int_equal(st.bytes, N);
	assert_memory_equal(st.buf, src, N);
	{
		struct st_tap_stats s;

		st_tap__stats(tap, &s);
		assert_int_equal(s.kern[ST_DIR_IN].lost_bytes, 0);
		assert_int_equal(s.bad_records, 0);
		assert_true(s.kern[ST_DIR_IN].bytes >= N); /* retransmissions count twice here */
	}
	st_tap__destroy(tap);
	free(st.buf);
	free(st.seen);
	free(src);
}

/* Raw look at the same traffic: super-packets larger than one part must show
 * up as several records with offsets (that is what "whole" costs). */
static void test_loopback_gso_parts(void **state)
{
	const size_t N = 512 * 1024;
	struct tap_bpf *s;
	struct ring_buffer *rb;
	struct stream st = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5556),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	__u32 port = 5556;
	__u8 one = 1;
	int ls, cs, ss, lo, fd_in, fd_out, on = 1;
	size_t got = 0;
	uint8_t *src;

	NETNS_OR_SKIP();
	lo = (int)if_nametoindex("lo");
	s = load(1 << 24);
	assert_non_null(s);
	bpf_map__update_elem(s->maps.ports, &port, 4, &one, 1, 0);
	fd_in = bpf_link_create(bpf_program__fd(s->progs.tc_ingress), lo,
				(enum bpf_attach_type)ST_BPF_TCX_INGRESS, NULL);
	fd_out = bpf_link_create(bpf_program__fd(s->progs.tc_egress), lo,
				 (enum bpf_attach_type)ST_BPF_TCX_EGRESS, NULL);
	if (fd_in < 0 || fd_out < 0) {
		tap_bpf__destroy(s);
		skip();
	}
	rb = ring_buffer__new(bpf_map__fd(s->maps.ring), rec_peek, &st, NULL);
	src = calloc(1, N);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	listen(ls, 1);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	ss = accept(ls, NULL, NULL);
	assert_int_equal(send(cs, src, N, 0), (ssize_t)N);
	while (got < N) {
		static uint8_t sink[65536];
		ssize_t r = recv(ss, sink, sizeof(sink), 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(cs);
	close(ss);
	close(ls);
	ring_buffer__consume(rb);
	print_message("largest segment %zu bytes, %zu later parts\n", st.max_seg_len,
		      st.parts_off_nonzero);
	assert_true(st.max_seg_len > ST_CHUNK_MAX);
	assert_true(st.parts_off_nonzero > 0);
	close(fd_in);
	close(fd_out);
	ring_buffer__free(rb);
	tap_bpf__destroy(s);
	free(src);
}

int main(void)
{
	struct fixture *f;
	struct row_test rows[N_CASES];
	struct CMUnitTest tests[N_CASES + 5];
	size_t n = 0;
	int rc;

	libbpf_set_print(NULL);
	f = fixture_new();
	for (size_t i = 0; i < N_CASES; i++) {
		rows[i] = (struct row_test){ .f = f, .c = &cases[i] };
		tests[n++] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_table_row,
						  .initial_state = &rows[i] };
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate(test_malformed_pass_and_counted, f);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate(test_host_filter, f);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_ring_full);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(test_loopback_gso_whole,
									 netns_enter, netns_leave);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(test_loopback_gso_parts,
									 netns_enter, netns_leave);
	assert_int_equal(n, sizeof(tests) / sizeof(tests[0]));
	rc = cmocka_run_group_tests_name("bpf_tap", tests, NULL, NULL);
	fixture_free(f);
	return rc;
}
