/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the BPF programs select and copy (rodata set before load, as the agent
 * does through struct st_tap_opts), through bpf_prog_test_run_opts on crafted
 * frames:
 *  - connection sampling: a sampled-out connection produces no record in
 *    either direction (only the sampled_out counter moves); a sampled-in one
 *    does; the kernel's decision equals the shadow engine's for thousands of
 *    tuples, v4 and v6, ingress and egress, TC and cgroup programs;
 *  - headers-only: exactly the first N payload bytes and the elided mark, the
 *    rest counted as elided, never as lost (also when the ring is full); a
 *    connection listed in copy_whole comes whole, the others stay cut; so does
 *    every connection of a port marked ST_PORT_WHOLE; a segment to the service that opens
 *    with the HTTP/2 preface lists its connection in copy_whole itself (egress segments,
 *    "PRI * HT" lookalikes cut short and other connections are not);
 *  - none: no payload records, but SYN/FIN/RST still come, marked;
 *  - the verdict is always "pass".
 * Needs root (CAP_BPF, CAP_NET_ADMIN): skips without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>

#include "bpf/connhash.h"
#include "bpf_test_util.h"
#include "reasm.h"
#include "record.h"
#include "shadow.h"
#include "tap.h"

#define V4(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))
#define SERVER V4(10, 0, 0, 1)
#define PORT 80

struct fx {
	struct tap_bpf *skel;
	struct ring_buffer *rb;
	struct bt_got got;
};

static bool root_ok(void)
{
	return geteuid() == 0;
}

#define SKIP_UNLESS_ROOT()        \
	do {                      \
		if (!root_ok())   \
			skip();   \
	} while (0)

/* Loads the programs as st_tap__open_opts() configures them (host filter off). */
static void fx_load(struct fx *f, const struct st_tap_opts *o, unsigned ring_bytes)
{
	struct tap_bpf *s = tap_bpf__open();
	__u32 port = PORT;
	__u8 one = 1;

	assert_non_null(s);
	bpf_map__set_max_entries(s->maps.ring, ring_bytes);
	s->rodata->host_filter = ST_HOST_FILTER_OFF;
	s->rodata->sample_permyriad = o->sample_permyriad ? o->sample_permyriad : ST_SAMPLE_ALL;
	s->rodata->copy_in = o->copy[ST_DIR_IN];
	s->rodata->copy_out = o->copy[ST_DIR_OUT];
	if (o->head_bytes)
		s->rodata->head_bytes = o->head_bytes;
	if (tap_bpf__load(s)) {
		fprintf(stderr, "cannot load BPF programs: %s\n", strerror(errno));
		tap_bpf__destroy(s);
		fail();
	}
	assert_int_equal(bpf_map__update_elem(s->maps.ports, &port, 4, &one, 1, 0), 0);
	f->skel = s;
	f->rb = ring_buffer__new(bpf_map__fd(s->maps.ring), bt_collect, &f->got, NULL);
	assert_non_null(f->rb);
}

static void fx_free(struct fx *f)
{
	bt_got_reset(&f->got);
	ring_buffer__free(f->rb);
	tap_bpf__destroy(f->skel);
	memset(f, 0, sizeof(*f));
}

static __u32 run(struct fx *f, enum bt_prog p, const struct bt_spec *s)
{
	__u32 v = bt_run(f->skel, f->rb, &f->got, p, s);

	assert_int_equal(v, bt_pass_verdict(p));
	return v;
}

/* The frames of one exchange on a connection, as seen at TC: the client's SYN and
 * request (ingress), the server's SYN-ACK, response and FIN (egress). */
static void exchange(struct fx *f, uint32_t client, uint16_t cport, size_t *recs)
{
	struct bt_spec in = { .src = client, .dst = SERVER, .sport = cport, .dport = PORT,
			      .seq = 100, .flags = ST_TCP_SYN };
	struct bt_spec out = { .src = SERVER, .dst = client, .sport = PORT, .dport = cport,
			       .seq = 900, .ack = 101, .flags = ST_TCP_SYN | ST_TCP_ACK };

	*recs = 0;
	run(f, BT_TC_IN, &in);
	*recs += f->got.n;
	run(f, BT_TC_OUT, &out);
	*recs += f->got.n;
	in.flags = ST_TCP_ACK | ST_TCP_PSH;
	in.seq = 101;
	in.len = 60;
	run(f, BT_TC_IN, &in);
	*recs += f->got.n;
	out.flags = ST_TCP_ACK | ST_TCP_PSH | ST_TCP_FIN;
	out.seq = 901;
	out.len = 200;
	run(f, BT_TC_OUT, &out);
	*recs += f->got.n;
}

static uint64_t hash_of(uint32_t client, uint16_t cport)
{
	uint32_t c[4] = { htonl(client) }, s[4] = { htonl(SERVER) };

	return st_conn_hash(4, c, s, cport, PORT);
}

/* A sampled-out connection: no record, in either direction, whatever its segments carry;
 * segs/bytes/records untouched, sampled_out counts its segments. A sampled-in one: all. */
static void test_sampled_out_no_record(void **state)
{
	struct st_tap_opts o = { .sample_permyriad = st_tap_permyriad(10) };
	struct st_counters in0, out0, in1, out1;
	uint16_t p_out = 0, p_in = 0;
	struct fx f;
	size_t recs;

	SKIP_UNLESS_ROOT();
	for (uint16_t p = 1024; !p_out || !p_in; p++) {
		if (st_conn_sampled_in(hash_of(V4(10, 1, 2, 3), p), o.sample_permyriad))
			p_in = p_in ? p_in : p;
		else
			p_out = p_out ? p_out : p;
	}
	fx_load(&f, &o, 1 << 20);
	bt_counters(f.skel, ST_DIR_IN, &in0);
	bt_counters(f.skel, ST_DIR_OUT, &out0);
	exchange(&f, V4(10, 1, 2, 3), p_out, &recs);
	assert_int_equal(recs, 0);
	bt_counters(f.skel, ST_DIR_IN, &in1);
	bt_counters(f.skel, ST_DIR_OUT, &out1);
	assert_int_equal(in1.sampled_out - in0.sampled_out, 2);
	assert_int_equal(out1.sampled_out - out0.sampled_out, 2);
	assert_int_equal(in1.segs + out1.segs + in1.records + out1.records + in1.bytes + out1.bytes,
			 0);
	exchange(&f, V4(10, 1, 2, 3), p_in, &recs);
	assert_int_equal(recs, 4);
	bt_counters(f.skel, ST_DIR_IN, &in0);
	bt_counters(f.skel, ST_DIR_OUT, &out0);
	assert_int_equal(in0.sampled_out, in1.sampled_out);
	assert_int_equal(out0.sampled_out, out1.sampled_out);
	assert_int_equal(in0.segs + out0.segs, 4);
	assert_int_equal(in0.records + out0.records, 4);
	fx_free(&f);

	/* sampling off (the default): everything, the same way */
	o.sample_permyriad = 0;
	fx_load(&f, &o, 1 << 20);
	exchange(&f, V4(10, 1, 2, 3), p_out, &recs);
	assert_int_equal(recs, 4);
	fx_free(&f);
}

/* The user-space decision: the shadow engine's, for the segment the frame is. */
static int engine_sampled_out(struct st_shadow *sh, const struct bt_spec *s, int egress)
{
	struct st_shadow_stats a, b;
	struct st_segment seg;

	memset(&seg, 0, sizeof(seg));
	seg.key.src.family = seg.key.dst.family = s->v6 ? 6 : 4;
	bt_addrs(s, seg.key.src.a, seg.key.dst.a);
	seg.key.sport = s->sport;
	seg.key.dport = s->dport;
	seg.kind = ST_SEG_DATA;
	seg.dir = (int8_t)(egress ? ST_DIR_OUT : ST_DIR_IN);
	seg.flags = s->flags;
	seg.seq = s->seq;
	seg.ts_ns = 1000000000ull;
	st_shadow__stats(sh, &a);
	st_shadow__feed(sh, &seg);
	st_shadow__stats(sh, &b);
	return b.sampled_out_segments != a.sampled_out_segments;
}

static uint32_t rng = 2463534242u;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* The kernel decides what the engine decides: many tuples, v4 and v6, both directions,
 * TC and cgroup programs, two sampling shares. */
static void test_kernel_equals_user_space(void **state)
{
	static const double pcts[] = { 10, 33.33 };
	static const uint16_t ports[] = { PORT };

	SKIP_UNLESS_ROOT();
	for (size_t pi = 0; pi < 2; pi++) {
		struct st_tap_opts o = { .sample_permyriad = st_tap_permyriad(pcts[pi]) };
		struct st_shadow_config cfg;
		struct st_shadow *sh;
		unsigned kin = 0, n = 2000;
		char err[128];
		struct fx f;

		memset(&cfg, 0, sizeof(cfg));
		assert_int_equal(st_shadow_parse_target("127.0.0.1:9", &cfg.targets[0], err,
							sizeof(err)), 0);
		cfg.n_targets = 1;
		cfg.sample_pct = pcts[pi];
		cfg.ports = ports;
		cfg.n_ports = 1;
		sh = st_shadow__new(&cfg);
		assert_non_null(sh);
		fx_load(&f, &o, 1 << 22);
		for (unsigned i = 0; i < n; i++) {
			enum bt_prog p = (enum bt_prog)(i % 4);
			int eg = bt_egress(p);
			uint32_t peer = rnd(), peer_hi = rnd();
			uint16_t cport = (uint16_t)(rnd() | 1024);
			struct bt_spec s = { .v6 = (int)((i / 4) & 1), .flags = ST_TCP_ACK,
					     .len = 10, .seq = rnd(), .ack = rnd() };
			int kout, uout;

			if (eg) {
				s.src = SERVER;
				s.dst = peer;
				s.dst_hi = peer_hi;
				s.sport = PORT;
				s.dport = cport;
			} else {
				s.src = peer;
				s.src_hi = peer_hi;
				s.dst = SERVER;
				s.sport = cport;
				s.dport = PORT;
			}
			run(&f, p, &s);
			kout = f.got.n == 0;
			uout = engine_sampled_out(sh, &s, eg);
			if (kout != uout)
				fail_msg("--sample %.2f, frame %u (v%d, %s): kernel %s, engine %s",
					 pcts[pi], i, s.v6 ? 6 : 4, eg ? "egress" : "ingress",
					 kout ? "out" : "in", uout ? "out" : "in");
			kin += !kout;
		}
		print_message("--sample %.2f: kernel kept %u of %u\n", pcts[pi], kin, n);
		assert_true(kin > n * pcts[pi] / 200 && kin < n * pcts[pi] / 50);
		fx_free(&f);
		st_shadow__free(sh);
	}
}

/* Headers-only for server -> client: the first N bytes and the elided mark; the client's
 * direction whole; what is elided is counted apart from loss. */
static void test_headers_only(void **state)
{
	struct st_tap_opts o = { .copy = { ST_COPY_FULL, ST_COPY_HEAD }, .head_bytes = 100 };
	struct bt_spec out = { .src = SERVER, .dst = V4(10, 1, 2, 3), .sport = PORT,
			       .dport = 40000, .seq = 7000, .ack = 1,
			       .flags = ST_TCP_ACK | ST_TCP_PSH | ST_TCP_FIN, .len = 3000 };
	struct bt_spec in = { .src = V4(10, 1, 2, 3), .dst = SERVER, .sport = 40000,
			      .dport = PORT, .seq = 1, .flags = ST_TCP_ACK, .len = 3000 };
	struct st_counters c0, c1;
	struct st_segment seg;
	const struct st_rec *r;
	struct fx f;

	SKIP_UNLESS_ROOT();
	for (int cg = 0; cg < 2; cg++) {
		fx_load(&f, &o, 1 << 20);
		bt_counters(f.skel, ST_DIR_OUT, &c0);
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.n, 1);
		r = &f.got.recs[0];
		assert_int_equal(r->type, ST_REC_DATA);
		assert_int_equal(r->off, 0);
		assert_int_equal(r->len, 100);
		assert_int_equal(r->seg_len, 3000);
		assert_int_equal(r->seq, 7000);
		assert_int_equal(r->rflags, ST_RF_ELIDED);
		/* the FIN comes after the elided bytes: it stays on the record */
		assert_int_equal(r->tcp_flags, ST_TCP_ACK | ST_TCP_PSH | ST_TCP_FIN);
		for (uint32_t j = 0; j < 100; j++)
			assert_int_equal(f.got.data[0][j], bt_payload_byte(j));
		/* a small class: the head alone, not a 16 KiB reservation */
		assert_true(f.got.size[0] <= sizeof(*r) + 256);
		bt_counters(f.skel, ST_DIR_OUT, &c1);
		assert_int_equal(c1.segs - c0.segs, 1);
		assert_int_equal(c1.bytes - c0.bytes, 3000);
		assert_int_equal(c1.elided_bytes - c0.elided_bytes, 2900);
		assert_int_equal(c1.lost_bytes, 0);
		assert_int_equal(c1.records - c0.records, 1);
		/* decoded: 100 bytes, then 2900 elided by policy */
		{
			static uint8_t rec[sizeof(struct st_rec) + 100];

			memcpy(rec, r, sizeof(*r));
			memcpy(rec + sizeof(*r), f.got.data[0], 100);
			assert_int_equal(st_record_decode(rec, sizeof(rec), 0, &seg), 0);
			assert_int_equal(seg.len, 100);
			assert_int_equal(seg.elided, 2900);
			assert_int_equal(seg.kind, ST_SEG_DATA);
		}
		/* no longer than the head: whole, unmarked */
		out.len = 100;
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.n, 1);
		assert_int_equal(f.got.recs[0].len, 100);
		assert_int_equal(f.got.recs[0].rflags, 0);
		out.len = 3000;
		/* the other direction: full */
		run(&f, cg ? BT_CG_IN : BT_TC_IN, &in);
		assert_int_equal(f.got.n, 1);
		assert_int_equal(f.got.recs[0].len, 3000);
		assert_int_equal(f.got.recs[0].rflags, 0);
		fx_free(&f);
	}
}

/* The whole-copy tests' segments of one connection (client 10.1.2.3:40000): the service's
 * 3000-byte answer and the client's 3000-byte request. */
static void conn_segs(struct bt_spec *out, struct bt_spec *in)
{
	*out = (struct bt_spec){ .src = SERVER, .dst = V4(10, 1, 2, 3), .sport = PORT,
				 .dport = 40000, .seq = 7000, .ack = 1,
				 .flags = ST_TCP_ACK | ST_TCP_PSH, .len = 3000 };
	*in = (struct bt_spec){ .src = V4(10, 1, 2, 3), .dst = SERVER, .sport = 40000,
				.dport = PORT, .seq = 1, .flags = ST_TCP_ACK, .len = 3000 };
}

/* One segment of each direction (cg: the cgroup programs, else TC), each a single record
 * copied whole (3000 bytes, no elided mark); check_bytes: its payload compared too. */
static void expect_whole(struct fx *f, int cg, const struct bt_spec *out, const struct bt_spec *in,
			 bool check_bytes)
{
	for (int dir = 0; dir < 2; dir++) {
		run(f, dir ? (cg ? BT_CG_OUT : BT_TC_OUT) : (cg ? BT_CG_IN : BT_TC_IN),
		    dir ? out : in);
		assert_int_equal(f->got.n, 1);
		assert_int_equal(f->got.recs[0].len, 3000);
		assert_int_equal(f->got.recs[0].rflags, 0);
		for (uint32_t j = 0; check_bytes && j < 3000; j++)
			assert_int_equal(f->got.data[0][j], bt_payload_byte(j));
	}
}

/* Headers-only, and a connection the agent listed in copy_whole (watch's fallback): that
 * connection's segments come whole in both directions, the others' stay cut. */
static void test_headers_only_copy_whole(void **state)
{
	struct st_tap_opts o = { .copy = { ST_COPY_HEAD, ST_COPY_HEAD }, .head_bytes = 100 };
	struct bt_spec out, in;
	struct st_flow_key k = { .sport = 40000, .dport = PORT };
	struct st_counters c0, c1;
	struct st_conn_key key;
	uint8_t one = 1;
	struct fx f;

	SKIP_UNLESS_ROOT();
	conn_segs(&out, &in);
	k.src.family = k.dst.family = 4;
	k.src.a[0] = htonl(V4(10, 1, 2, 3));
	k.dst.a[0] = htonl(SERVER);
	st_tap_conn_key(&k, &key);
	for (int cg = 0; cg < 2; cg++) {
		fx_load(&f, &o, 1 << 20);
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.n, 1);
		assert_int_equal(f.got.recs[0].len, 100);
		assert_int_equal(bpf_map__update_elem(f.skel->maps.copy_whole, &key, sizeof(key), &one,
						      1, 0), 0);
		bt_counters(f.skel, ST_DIR_OUT, &c0);
		expect_whole(&f, cg, &out, &in, true);
		bt_counters(f.skel, ST_DIR_OUT, &c1);
		assert_int_equal(c1.elided_bytes, c0.elided_bytes);
		/* another connection of the same client: still cut */
		out.dport = 40001;
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.recs[0].len, 100);
		assert_int_equal(f.got.recs[0].rflags, ST_RF_ELIDED);
		out.dport = 40000;
		fx_free(&f);
	}
}

/* Headers-only, and the port marked ST_PORT_WHOLE (watch saw HTTP/2 there): every connection
 * of it comes whole, from its first segment, in both directions; the mark survives the
 * filters being written again (a reload). */
static void test_headers_only_port_whole(void **state)
{
	struct st_tap_opts o = { .copy = { ST_COPY_HEAD, ST_COPY_HEAD }, .head_bytes = 100 };
	struct bt_spec out, in;
	struct st_target t = { .ports = { PORT }, .n_ports = 1 };
	__u8 v = ST_PORT_ON | ST_PORT_WHOLE;
	__u32 port = PORT;
	struct fx f;

	SKIP_UNLESS_ROOT();
	conn_segs(&out, &in);
	fx_load(&f, &o, 1 << 20);
	run(&f, BT_TC_OUT, &out);
	assert_int_equal(f.got.recs[0].len, 100);
	assert_int_equal(f.got.recs[0].rflags, ST_RF_ELIDED);
	assert_int_equal(bpf_map__update_elem(f.skel->maps.ports, &port, 4, &v, 1, 0), 0);
	assert_int_equal(st_tap__fill_filters(f.skel->maps.ports, f.skel->maps.hosts_v4,
					      f.skel->maps.hosts_v6, &t), 0);
	v = 0;
	assert_int_equal(bpf_map__lookup_elem(f.skel->maps.ports, &port, 4, &v, 1, 0), 0);
	assert_int_equal(v, ST_PORT_ON | ST_PORT_WHOLE);
	for (int cg = 0; cg < 2; cg++)
		for (uint16_t cport = 40000; cport < 40003; cport++) {
			out.dport = in.sport = cport;
			expect_whole(&f, cg, &out, &in, false);
		}
	fx_free(&f);
}

/* Headers-only: the HTTP/2 client preface at the start of a segment to the service lists
 * that connection in copy_whole in the kernel itself (before the agent can mark the port):
 * the preface's segment and the later ones of the connection come whole, both directions;
 * another connection, a preface sent by the service, or 8 bytes of it with no room for the
 * rest (shorter than the preface's 24) change nothing. */
static void test_headers_only_h2_preface(void **state)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct st_tap_opts o = { .copy = { ST_COPY_HEAD, ST_COPY_HEAD }, .head_bytes = 100 };
	struct bt_spec out, in;
	struct fx f;

	SKIP_UNLESS_ROOT();
	conn_segs(&out, &in);
	for (int cg = 0; cg < 2; cg++) {
		fx_load(&f, &o, 1 << 20);
		/* the service's own "preface" and a cut-short lookalike: still cut */
		out.prefix = preface;
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.recs[0].len, 100);
		out.prefix = NULL;
		in.prefix = "PRI * HT";
		in.len = 20;
		run(&f, cg ? BT_CG_IN : BT_TC_IN, &in);
		in.len = 3000;
		in.prefix = NULL;
		run(&f, cg ? BT_CG_IN : BT_TC_IN, &in);
		assert_int_equal(f.got.recs[0].len, 100);
		/* the preface: this segment whole, and the connection's later ones */
		in.prefix = preface;
		run(&f, cg ? BT_CG_IN : BT_TC_IN, &in);
		assert_int_equal(f.got.n, 1);
		assert_int_equal(f.got.recs[0].len, 3000);
		assert_int_equal(f.got.recs[0].rflags, 0);
		assert_memory_equal(f.got.data[0], preface, sizeof(preface) - 1);
		in.prefix = NULL;
		expect_whole(&f, cg, &out, &in, false);
		/* another connection of the same client: still cut */
		out.dport = 40001;
		run(&f, cg ? BT_CG_OUT : BT_TC_OUT, &out);
		assert_int_equal(f.got.recs[0].len, 100);
		assert_int_equal(f.got.recs[0].rflags, ST_RF_ELIDED);
		out.dport = 40000;
		fx_free(&f);
	}
}

/* A ring too small: only copied bytes can be lost; elided ones are never counted lost,
 * and every byte is delivered, lost or elided. */
static void test_headers_only_ring_full(void **state)
{
	struct st_tap_opts o = { .copy = { ST_COPY_HEAD, ST_COPY_HEAD }, .head_bytes = 2048 };
	uint64_t delivered = 0, announced = 0, elided_marked = 0;
	struct st_counters c;
	struct fx f;

	SKIP_UNLESS_ROOT();
	fx_load(&f, &o, 16384);
	for (int i = 0; i < 20; i++) {
		static uint8_t buf[4096];
		struct bt_spec s = { .src = V4(10, 1, 2, 3), .dst = SERVER, .sport = 5,
				     .dport = PORT, .seq = (uint32_t)i * 3000, .flags = ST_TCP_ACK,
				     .len = 3000 };
		size_t len = bt_build(&s, buf);
		LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = buf, .data_size_in = (__u32)len);

		assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f.skel->progs.tc_ingress),
							&t), 0);
		assert_int_equal(t.retval, (__u32)TC_ACT_UNSPEC);
	}
	ring_buffer__consume(f.rb);
	for (size_t i = 0; i < f.got.n; i++) {
		const struct st_rec *r = &f.got.recs[i];

		if (r->type == ST_REC_DATA)
			delivered += r->len;
		else
			announced += r->len;
		assert_int_equal(r->rflags, ST_RF_ELIDED);
		elided_marked += r->seg_len - r->off - r->len;
	}
	bt_counters(f.skel, ST_DIR_IN, &c);
	assert_true(c.lost_bytes > 0);
	assert_int_equal(c.bytes, 20 * 3000);
	assert_int_equal(c.elided_bytes, 20 * (3000 - 2048));
	assert_int_equal(delivered + c.lost_bytes, 20 * 2048);
	assert_int_equal(delivered + c.lost_bytes + c.elided_bytes, c.bytes);
	assert_true(announced > 0 && announced <= c.lost_bytes);
	assert_true(elided_marked <= c.elided_bytes);
	fx_free(&f);
}

/* Policy none for server -> client: no payload record; SYN-ACK, FIN and RST still come as
 * header-only records marked ST_RF_NO_PAYLOAD; the client's direction is whole. */
static void test_none(void **state)
{
	struct st_tap_opts o = { .copy = { ST_COPY_FULL, ST_COPY_NONE } };
	struct bt_spec out = { .src = SERVER, .dst = V4(10, 1, 2, 3), .sport = PORT,
			       .dport = 40000, .seq = 7000, .ack = 1 };
	struct bt_spec in = { .src = V4(10, 1, 2, 3), .dst = SERVER, .sport = 40000,
			      .dport = PORT, .seq = 1, .flags = ST_TCP_ACK, .len = 500 };
	struct st_counters c0, c1;
	struct fx f;

	SKIP_UNLESS_ROOT();
	fx_load(&f, &o, 1 << 20);
	bt_counters(f.skel, ST_DIR_OUT, &c0);
	/* payload without SYN/FIN/RST: nothing */
	out.flags = ST_TCP_ACK | ST_TCP_PSH;
	out.len = 1400;
	run(&f, BT_TC_OUT, &out);
	assert_int_equal(f.got.n, 0);
	run(&f, BT_CG_OUT, &out);
	assert_int_equal(f.got.n, 0);
	bt_counters(f.skel, ST_DIR_OUT, &c1);
	assert_int_equal(c1.segs - c0.segs, 2);
	assert_int_equal(c1.elided_bytes - c0.elided_bytes, 2800);
	assert_int_equal(c1.records, c0.records);
	assert_int_equal(c1.lost_bytes, 0);
	/* SYN-ACK */
	out.flags = ST_TCP_SYN | ST_TCP_ACK;
	out.len = 0;
	run(&f, BT_TC_OUT, &out);
	assert_int_equal(f.got.n, 1);
	assert_int_equal(f.got.recs[0].type, ST_REC_DATA);
	assert_int_equal(f.got.recs[0].rflags, ST_RF_NO_PAYLOAD);
	assert_int_equal(f.got.recs[0].tcp_flags, ST_TCP_SYN | ST_TCP_ACK);
	/* FIN carrying the last 10 payload bytes: header-only, those 10 elided */
	out.flags = ST_TCP_FIN | ST_TCP_ACK;
	out.seq = 9000;
	out.len = 10;
	run(&f, BT_TC_OUT, &out);
	assert_int_equal(f.got.n, 1);
	assert_int_equal(f.got.recs[0].len, 0);
	assert_int_equal(f.got.recs[0].seg_len, 10);
	assert_int_equal(f.got.recs[0].seq, 9000);
	assert_int_equal(f.got.recs[0].rflags, ST_RF_ELIDED | ST_RF_NO_PAYLOAD);
	assert_int_equal(f.got.recs[0].tcp_flags, ST_TCP_FIN | ST_TCP_ACK);
	assert_true(f.got.size[0] <= sizeof(struct st_rec) + 8);
	/* RST (cgroup program too) */
	out.flags = ST_TCP_RST;
	out.len = 0;
	run(&f, BT_CG_OUT, &out);
	assert_int_equal(f.got.n, 1);
	assert_int_equal(f.got.recs[0].tcp_flags, ST_TCP_RST);
	assert_int_equal(f.got.recs[0].rflags, ST_RF_NO_PAYLOAD);
	/* the client's bytes: whole */
	run(&f, BT_TC_IN, &in);
	assert_int_equal(f.got.n, 1);
	assert_int_equal(f.got.recs[0].len, 500);
	assert_int_equal(f.got.recs[0].rflags, 0);
	bt_counters(f.skel, ST_DIR_OUT, &c1);
	assert_int_equal(c1.bytes - c0.bytes, 2810);
	assert_int_equal(c1.elided_bytes - c0.elided_bytes, 2810);
	fx_free(&f);
}

/* Options out of range: refused before anything is loaded or attached. */
static void test_bad_opts_refused(void **state)
{
	struct st_target t = { .iface = "lo", .ports = { 5557 }, .n_ports = 1, .ring_mb = 1 };
	struct st_tap_opts bad[] = {
		{ .copy = { 3, 0 } },
		{ .copy = { ST_COPY_HEAD, 0 }, .head_bytes = ST_CHUNK_MAX + 1 },
		{ .sample_permyriad = ST_SAMPLE_ALL + 1 },
	};

	SKIP_UNLESS_ROOT();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(st_tap__open_opts(&t, false, &bad[i], NULL, NULL));
		assert_int_equal(errno, EINVAL);
	}
}

/* ---- the agent's own loader on loopback (private network namespace) ------------------- */

struct live {
	struct st_reasm *r;
	uint8_t *resp;      /* what the server sent */
	size_t resp_len;
	uint64_t out_data, out_elided, out_gap, in_data, records;
	int bad;
};

static void live_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off,
		      const uint8_t *data, uint32_t len, uint64_t ts)
{
	struct live *l = ctx;

	if (dir == ST_DIR_IN) {
		l->in_data += len;
		return;
	}
	l->out_data += len;
	if (off + len > l->resp_len || memcmp(l->resp + off, data, len))
		l->bad++;
}

static void live_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		     enum st_reasm_gap_why why, uint64_t ts)
{
	struct live *l = ctx;

	if (why == ST_GAP_ELIDED && dir == ST_DIR_OUT)
		l->out_elided += len;
	else
		l->out_gap += len;
}

static int live_seg(void *ctx, const struct st_segment *seg)
{
	struct live *l = ctx;

	l->records++;
	st_reasm__feed(l->r, seg);
	return 0;
}

/* One connection from a chosen client port: a request, a response of n bytes, closes. */
static void live_exchange(uint16_t cport, const uint8_t *resp, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5557),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in ca = a;
	int ls, cs, ss, one = 1;
	size_t got = 0;

	ca.sin_port = htons(cport);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(cs, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(cs, (struct sockaddr *)&ca, sizeof(ca)), 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	ss = accept(ls, NULL, NULL);
	assert_true(ss >= 0);
	assert_int_equal(send(cs, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
	assert_int_equal(send(ss, resp, n, 0), (ssize_t)n);
	while (got < n) {
		static uint8_t sink[65536];
		ssize_t r = recv(cs, sink, sizeof(sink), 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(ss);
	close(cs);
	close(ls);
	usleep(100 * 1000);
}

/*
 * st_tap__open_opts() as shadow would use it, on real traffic: 10% of the connections,
 * the server's bytes headers-only (64 per skb; on loopback skbs are GSO super-packets).
 * A sampled-out connection gives no record at all; a sampled-in one reassembles into the
 * whole request and a response of exactly its length, copied heads equal to what was
 * sent, the rest elided: no gap, no loss.
 */
static void test_loopback_policy(void **state)
{
	const size_t N = 300 * 1024;
	struct st_target t = { .iface = "lo", .ports = { 5557 }, .n_ports = 1, .ring_mb = 16 };
	struct st_tap_opts o = { .sample_permyriad = st_tap_permyriad(10),
				 .copy = { ST_COPY_FULL, ST_COPY_HEAD }, .head_bytes = 64 };
	static const struct st_reasm_ops ops = { .data = live_data, .gap = live_gap };
	uint32_t lo[4] = { htonl(INADDR_LOOPBACK) };
	uint16_t p_in = 0, p_out = 0;
	struct st_tap_stats ts;
	struct live l = { 0 };
	struct st_tap *tap;

	SKIP_UNLESS_ROOT();
	if (unshare(CLONE_NEWNET) || system("ip link set lo up")) {
		print_message("cannot make a network namespace: skipped\n");
		skip();
	}
	for (uint16_t p = 20000; !p_in || !p_out; p++) {
		if (st_conn_sampled_in(st_conn_hash(4, lo, lo, p, 5557), o.sample_permyriad))
			p_in = p_in ? p_in : p;
		else
			p_out = p_out ? p_out : p;
	}
	l.resp = malloc(N);
	l.resp_len = N;
	for (size_t i = 0; i < N; i++)
		l.resp[i] = (uint8_t)(i * 31 + (i >> 9));
	l.r = st_reasm__new(NULL, &ops, &l);
	tap = st_tap__open_opts(&t, false, &o, live_seg, &l);
	assert_non_null(tap);

	live_exchange(p_out, l.resp, N);
	assert_true(st_tap__consume(tap) >= 0);
	assert_int_equal(l.records, 0);
	st_tap__stats(tap, &ts);
	assert_true(ts.kern[ST_DIR_IN].sampled_out >= 2 && ts.kern[ST_DIR_OUT].sampled_out >= 2);
	assert_int_equal(ts.kern[ST_DIR_IN].segs + ts.kern[ST_DIR_OUT].segs, 0);

	live_exchange(p_in, l.resp, N);
	assert_true(st_tap__consume(tap) >= 0);
	st_reasm__flush(l.r);
	st_tap__stats(tap, &ts);
	print_message("response: %llu bytes copied, %llu elided (%llu records)\n",
		      (unsigned long long)l.out_data, (unsigned long long)l.out_elided,
		      (unsigned long long)l.records);
	assert_int_equal(l.bad, 0);
	assert_int_equal(l.in_data, 18);
	assert_int_equal(l.out_data + l.out_elided, N);
	assert_int_equal(l.out_gap, 0);
	assert_true(l.out_data >= 64 && l.out_data < N / 4);
	assert_int_equal(ts.kern[ST_DIR_OUT].bytes, N);
	assert_int_equal(ts.kern[ST_DIR_OUT].elided_bytes, l.out_elided);
	assert_int_equal(ts.kern[ST_DIR_OUT].lost_bytes + ts.kern[ST_DIR_IN].lost_bytes, 0);
	st_tap__destroy(tap);
	st_reasm__free(l.r);
	free(l.resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sampled_out_no_record),
		cmocka_unit_test(test_kernel_equals_user_space),
		cmocka_unit_test(test_headers_only),
		cmocka_unit_test(test_headers_only_copy_whole),
		cmocka_unit_test(test_headers_only_port_whole),
		cmocka_unit_test(test_headers_only_h2_preface),
		cmocka_unit_test(test_headers_only_ring_full),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_bad_opts_refused),
		cmocka_unit_test(test_loopback_policy), /* last: moves into a new netns */
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests_name("bpf_policy", tests, NULL, NULL);
}
