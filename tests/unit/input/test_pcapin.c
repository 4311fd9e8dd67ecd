/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The pcap decoder (agent/input/pcapin.c) frame by frame: every link type, VLAN
 * tags, IPv4 options, IPv6 extension headers, Ethernet padding, TSO frames
 * with a zero length, snap-length cuts, fragments, and the reader's split of
 * a cut packet into data, loss and FIN.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <cmocka.h>

#include "pcapin.h"
#include "pktparse.h" /* the parser's limits */

struct frame {
	uint8_t b[2048];
	size_t n;
};

static void put(struct frame *f, const void *p, size_t n)
{
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void put16(struct frame *f, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(f, b, 2);
}

static void put32(struct frame *f, uint32_t v)
{
	put16(f, (uint16_t)(v >> 16));
	put16(f, (uint16_t)v);
}

/* TCP header (20 bytes + opt_len of NOPs) and payload. */
static void tcp(struct frame *f, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack,
		uint8_t flags, size_t opt_len, const char *data)
{
	size_t i;

	put16(f, sp);
	put16(f, dp);
	put32(f, seq);
	put32(f, ack);
	f->b[f->n++] = (uint8_t)(((20 + opt_len) / 4) << 4);
	f->b[f->n++] = flags;
	put16(f, 1234);
	put32(f, 0);
	for (i = 0; i < opt_len; i++)
		f->b[f->n++] = 1;
	put(f, data, strlen(data));
}

/* IPv4 header with opt_len bytes of options (NOPs), protocol proto; total = 0 means TSO. */
static size_t ip4(struct frame *f, size_t opt_len, uint8_t proto, uint16_t frag)
{
	size_t at = f->n, i;

	f->b[f->n++] = (uint8_t)(0x40 | ((20 + opt_len) / 4));
	f->b[f->n++] = 0;
	put16(f, 0); /* total length, set by ip4_done */
	put16(f, 1);
	put16(f, frag);
	f->b[f->n++] = 64;
	f->b[f->n++] = proto;
	put16(f, 0);
	put32(f, 0x0a000001);
	put32(f, 0x0a000002);
	for (i = 0; i < opt_len; i++)
		f->b[f->n++] = 1;
	return at;
}

static void ip4_done(struct frame *f, size_t at, size_t total)
{
	f->b[at + 2] = (uint8_t)(total >> 8);
	f->b[at + 3] = (uint8_t)total;
}

static size_t ip6(struct frame *f, uint8_t nh)
{
	size_t at = f->n;
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	put32(f, 0x60000000);
	put16(f, 0);
	f->b[f->n++] = nh;
	f->b[f->n++] = 64;
	a[15] = 1;
	put(f, a, 16);
	a[15] = 2;
	put(f, a, 16);
	return at;
}

static void ip6_done(struct frame *f, size_t at, size_t payload)
{
	f->b[at + 4] = (uint8_t)(payload >> 8);
	f->b[at + 5] = (uint8_t)payload;
}

static void eth(struct frame *f, uint16_t type)
{
	static const uint8_t macs[12] = { 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2 };

	put(f, macs, 12);
	put16(f, type);
}

static int dec(int dlt, struct frame *f, size_t caplen, struct st_segment *s, uint32_t *cut)
{
	memset(s, 0, sizeof(*s));
	return st_pcapin_decode(dlt, f->b, (uint32_t)caplen, s, cut);
}

static void assert_v4_seg(const struct st_segment *s, const char *data)
{
	assert_int_equal(s->key.src.family, 4);
	assert_int_equal(s->key.src.a[0], htonl(0x0a000001));
	assert_int_equal(s->key.dst.a[0], htonl(0x0a000002));
	assert_int_equal(s->key.sport, 40000);
	assert_int_equal(s->key.dport, 80);
	assert_int_equal(s->seq, 0x11223344);
	assert_int_equal(s->ack, 0x55667788);
	assert_int_equal(s->window, 1234);
	assert_int_equal(s->len, strlen(data));
	assert_memory_equal(s->data, data, s->len);
}

/* An IPv4 TCP packet with IP and TCP options, behind Ethernet with trailing padding. */
static void t_ethernet_ipv4_options_padding(void **state)
{
	struct frame f = { .n = 0 };
	struct st_segment s;
	uint32_t cut;
	size_t at;

	eth(&f, 0x0800);
	at = ip4(&f, 8, 6, 0x4000);
	tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_ACK | ST_TCP_PSH, 12, "hi");
	ip4_done(&f, at, f.n - at);
	memset(f.b + f.n, 0xee, 20); /* Ethernet minimum-size padding: not payload */
	f.n += 20;
	assert_int_equal(dec(DLT_EN10MB, &f, f.n, &s, &cut), ST_DEC_TCP);
	assert_v4_seg(&s, "hi");
	assert_int_equal(s.flags, ST_TCP_ACK | ST_TCP_PSH);
	assert_int_equal(cut, 0);
	(void)state;
}

/* 802.1ad outer tag, 802.1Q inner tag: the outermost VLAN id is kept. */
static void t_qinq(void **state)
{
	struct frame f = { .n = 0 };
	struct st_segment s;
	uint32_t cut;
	size_t at;

	eth(&f, 0x88a8);
	put16(&f, 0x2000 | 300); /* PCP 1, VLAN 300 */
	put16(&f, 0x8100);
	put16(&f, 42);
	put16(&f, 0x0800);
	at = ip4(&f, 0, 6, 0);
	tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_ACK, 0, "vlan");
	ip4_done(&f, at, f.n - at);
	assert_int_equal(dec(DLT_EN10MB, &f, f.n, &s, &cut), ST_DEC_TCP);
	assert_v4_seg(&s, "vlan");
	assert_int_equal(s.vlan, 300);
	(void)state;
}

/* IPv6 with hop-by-hop and destination options and an atomic fragment header. */
static void t_ipv6_extension_headers(void **state)
{
	struct frame f = { .n = 0 };
	struct st_segment s;
	uint32_t cut;
	size_t at;
	uint8_t hbh[8] = { 60, 0, 1, 4, 0, 0, 0, 0 };       /* next: destination options */
	uint8_t dst[16] = { 44, 1, 1, 12 };                   /* 16 bytes; next: fragment */
	uint8_t frag[8] = { 6, 0, 0, 0, 0, 0, 0, 1 };         /* offset 0, M = 0: atomic */

	at = ip6(&f, 0);
	put(&f, hbh, 8);
	put(&f, dst, 16);
	put(&f, frag, 8);
	tcp(&f, 443, 50000, 7, 9, ST_TCP_ACK | ST_TCP_FIN, 4, "v6!");
	ip6_done(&f, at, f.n - at - 40);
	assert_int_equal(dec(DLT_RAW, &f, f.n, &s, &cut), ST_DEC_TCP);
	assert_int_equal(s.key.src.family, 6);
	assert_int_equal(s.key.src.a[0], htonl(0x20010db8));
	assert_int_equal(s.key.dst.a[3], htonl(2));
	assert_int_equal(s.key.sport, 443);
	assert_int_equal(s.key.dport, 50000);
	assert_int_equal(s.flags, ST_TCP_ACK | ST_TCP_FIN);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.data, "v6!", 3);
	/* a real fragment (M set) is skipped */
	f.b[40 + 8 + 16 + 2] = 0;
	f.b[40 + 8 + 16 + 3] = 0x09; /* offset 1 (8 bytes), M = 1 */
	assert_int_equal(dec(DLT_RAW, &f, f.n, &s, &cut), ST_DEC_FRAGMENT);
	(void)state;
}

static void t_ipv4_fragments_and_other(void **state)
{
	struct frame f = { .n = 0 };
	struct st_segment s;
	uint32_t cut;
	size_t at;

	at = ip4(&f, 0, 6, 0x2000); /* MF */
	tcp(&f, 40000, 80, 1, 2, ST_TCP_ACK, 0, "frag");
	ip4_done(&f, at, f.n - at);
	assert_int_equal(dec(DLT_IPV4, &f, f.n, &s, &cut), ST_DEC_FRAGMENT);
	f.b[6] = 0x00;
	f.b[7] = 0x10; /* offset only */
	assert_int_equal(dec(DLT_IPV4, &f, f.n, &s, &cut), ST_DEC_FRAGMENT);
	f.b[7] = 0;
	f.b[9] = 17; /* UDP */
	assert_int_equal(dec(DLT_IPV4, &f, f.n, &s, &cut), ST_DEC_OTHER);
	f.b[9] = 6;
	assert_int_equal(dec(DLT_IPV4, &f, f.n, &s, &cut), ST_DEC_TCP);
	/* an IPv6 packet on an IPv4-only link type is still decoded by its version */
	f.n = 0;
	eth(&f, 0x0806); /* ARP */
	assert_int_equal(dec(DLT_EN10MB, &f, f.n + 28, &s, &cut), ST_DEC_OTHER);
	(void)state;
}

/*
 * The parser's limits (bpf/parse.h, the kernel's too): a frame with as many VLAN tags or
 * IPv6 extension headers as the limit is TCP, one more is not. Every row is checked and
 * every mismatch named before the test fails.
 */
static void t_parser_limits(void **state)
{
	static const struct {
		const char *name;
		int vlans, v6, v6_ext, want;
	} rows[] = {
		{ "vlan tags at the limit", ST_MAX_VLAN_TAGS, 0, 0, ST_DEC_TCP },
		{ "vlan tags past the limit", ST_MAX_VLAN_TAGS + 1, 0, 0, ST_DEC_OTHER },
		{ "ipv6 ext headers at the limit", 0, 1, ST_MAX_V6_EXT, ST_DEC_TCP },
		{ "ipv6 ext headers past the limit", 0, 1, ST_MAX_V6_EXT + 1, ST_DEC_OTHER },
		{ "both at the limit", ST_MAX_VLAN_TAGS, 1, ST_MAX_V6_EXT, ST_DEC_TCP },
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct frame f = { .n = 0 };
		struct st_segment s;
		uint32_t cut;
		size_t at;
		int rc;

		eth(&f, rows[i].vlans > 1 ? 0x88a8 : rows[i].vlans ? 0x8100 : rows[i].v6 ? 0x86dd : 0x0800);
		for (int v = 0; v < rows[i].vlans; v++) {
			put16(&f, (uint16_t)(100 + v));
			put16(&f, v + 1 < rows[i].vlans ? 0x8100 : rows[i].v6 ? 0x86dd : 0x0800);
		}
		if (rows[i].v6) {
			at = ip6(&f, rows[i].v6_ext ? 0 /* HBH */ : 6);
			for (int e = 0; e < rows[i].v6_ext; e++) {
				/* 8 bytes each: next header, length 0, PadN of 4 */
				uint8_t ext[8] = { e + 1 < rows[i].v6_ext ? 60 /* DSTOPTS */ : 6, 0, 1, 4 };

				put(&f, ext, sizeof(ext));
			}
			tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_ACK, 0, "limit");
			ip6_done(&f, at, f.n - at - 40);
		} else {
			at = ip4(&f, 0, 6, 0);
			tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_ACK, 0, "limit");
			ip4_done(&f, at, f.n - at);
		}
		rc = dec(DLT_EN10MB, &f, f.n, &s, &cut);
		if (rc != rows[i].want) {
			print_error("%s: decoded as %d, want %d\n", rows[i].name, rc, rows[i].want);
			bad++;
		} else if (rc == ST_DEC_TCP &&
			   (s.len != 5 || memcmp(s.data, "limit", 5) || s.vlan != (rows[i].vlans ? 100 : 0))) {
			print_error("%s: wrong payload or VLAN id\n", rows[i].name);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu rows wrong", bad, sizeof(rows) / sizeof(rows[0]));
	(void)state;
}

/* Cut by the snap length: what is there is returned, the rest counted in cut. */
static void t_snap_cut(void **state)
{
	struct frame f = { .n = 0 };
	struct st_segment s;
	uint32_t cut;
	size_t at;

	eth(&f, 0x0800);
	at = ip4(&f, 0, 6, 0);
	tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_ACK, 0, "0123456789");
	ip4_done(&f, at, f.n - at);
	assert_int_equal(dec(DLT_EN10MB, &f, f.n - 6, &s, &cut), ST_DEC_TCP);
	assert_v4_seg(&s, "0123");
	assert_int_equal(cut, 6);
	/* cut inside the TCP header: nothing usable */
	assert_int_equal(dec(DLT_EN10MB, &f, 14 + 20 + 10, &s, &cut), ST_DEC_MALFORMED);
	/* TSO frame captured on its way out: IP total length 0, take what is there */
	ip4_done(&f, at, 0);
	assert_int_equal(dec(DLT_EN10MB, &f, f.n, &s, &cut), ST_DEC_TCP);
	assert_v4_seg(&s, "0123456789");
	assert_int_equal(cut, 0);
	(void)state;
}

/* The same packet behind every other link-layer header. */
static void t_link_headers(void **state)
{
	static const struct {
		int dlt;
		uint8_t hdr[20];
		size_t len;
	} links[] = {
		{ DLT_LINUX_SLL, { 0, 0, 3, 4, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00 }, 16 },
		{ DLT_LINUX_SLL2, { 0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6 }, 20 },
		{ DLT_NULL, { 2, 0, 0, 0 }, 4 },       /* little-endian writer */
		{ DLT_NULL, { 0, 0, 0, 2 }, 4 },       /* big-endian writer */
		{ DLT_LOOP, { 0, 0, 0, 2 }, 4 },
		{ DLT_RAW, { 0 }, 0 },
		{ DLT_IPV4, { 0 }, 0 },
	};
	struct st_segment s;
	uint32_t cut;
	size_t i, at;

	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct frame f = { .n = 0 };

		put(&f, links[i].hdr, links[i].len);
		at = ip4(&f, 0, 6, 0);
		tcp(&f, 40000, 80, 0x11223344, 0x55667788, ST_TCP_SYN, 0, "x");
		ip4_done(&f, at, f.n - at);
		assert_int_equal(dec(links[i].dlt, &f, f.n, &s, &cut), ST_DEC_TCP);
		assert_v4_seg(&s, "x");
		assert_int_equal(s.flags, ST_TCP_SYN);
		/* every shorter capture of it: cut or malformed, never a read past the end */
		for (at = 0; at < f.n; at++) {
			int rc = dec(links[i].dlt, &f, at, &s, &cut);

			assert_true(rc == ST_DEC_MALFORMED || (rc == ST_DEC_TCP && cut > 0));
		}
	}
	/* BSD null with an IPv6 family value of each OS */
	for (i = 0; i < 4; i++) {
		static const uint8_t afs[4] = { 10, 24, 28, 30 };
		struct frame f = { .n = 0 };

		put32(&f, afs[i]);
		at = ip6(&f, 6);
		tcp(&f, 1, 2, 3, 4, ST_TCP_ACK, 0, "six");
		ip6_done(&f, at, f.n - at - 40);
		assert_int_equal(dec(DLT_LOOP, &f, f.n, &s, &cut), ST_DEC_TCP);
		assert_int_equal(s.len, 3);
	}
	(void)state;
}

/* The reader: a cut packet becomes data, then a loss, then its FIN at the right place. */
static void t_reader_splits_cut_packet(void **state)
{
	char path[] = "/tmp/st-pcapin-XXXXXX";
	int fd = mkstemp(path);
	pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *w;
	struct pcap_pkthdr h = { .ts = { 1700000000, 5 } };
	struct frame f = { .n = 0 };
	struct st_pcapin_stats st;
	struct st_segment s;
	struct st_pcapin *p;
	char err[512];
	size_t at;

	assert_true(fd >= 0);
	close(fd);
	assert_non_null(pd);
	w = pcap_dump_open(pd, path);
	assert_non_null(w);
	eth(&f, 0x0800);
	at = ip4(&f, 0, 6, 0);
	tcp(&f, 40000, 80, 1000, 1, ST_TCP_ACK | ST_TCP_FIN, 0, "0123456789");
	ip4_done(&f, at, f.n - at);
	h.len = (uint32_t)f.n;
	h.caplen = (uint32_t)f.n - 4;
	pcap_dump((u_char *)w, &h, f.b);
	f.n = 0;
	eth(&f, 0x86dd); /* an IPv6 header cut short: skipped as malformed */
	put32(&f, 0x60000000);
	h.len = h.caplen = (uint32_t)f.n;
	pcap_dump((u_char *)w, &h, f.b);
	pcap_dump_close(w);
	pcap_close(pd);

	p = st_pcapin__open(path, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(st_pcapin__linktype(p), DLT_EN10MB);
	assert_int_equal(st_pcapin__next(p, &s), 1);
	assert_int_equal(s.kind, ST_SEG_DATA);
	assert_int_equal(s.seq, 1000);
	assert_int_equal(s.len, 6);
	assert_int_equal(s.flags, ST_TCP_ACK); /* the FIN moved after the loss */
	assert_int_equal(s.dir, -1);
	assert_int_equal(s.ts_ns, 1700000000ull * 1000000000ull + 5000);
	assert_int_equal(st_pcapin__next(p, &s), 1);
	assert_int_equal(s.kind, ST_SEG_LOSS);
	assert_int_equal(s.seq, 1006);
	assert_int_equal(s.len, 4);
	assert_int_equal(st_pcapin__next(p, &s), 1);
	assert_int_equal(s.kind, ST_SEG_DATA);
	assert_int_equal(s.seq, 1010);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.flags, ST_TCP_FIN | ST_TCP_ACK);
	assert_int_equal(st_pcapin__next(p, &s), 0);
	st_pcapin__stats(p, &st);
	assert_int_equal(st.packets, 2);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.snap_cut, 1);
	assert_int_equal(st.snap_bytes, 4);
	st_pcapin__close(p);

	/* not a capture at all */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello, world\n", 13), 13);
	close(fd);
	assert_null(st_pcapin__open(path, err, sizeof(err)));
	assert_true(err[0] != 0);
	unlink(path);
	(void)state;
}

/* Both readers on one file: pcapin's own (st_pcapin__open on a regular file) and libpcap's
 * (st_pcapin__fopen); the same segments, bytes, stamps and errors. */
static void same_reading(const char *path, bool want_buffered)
{
	char err[512];
	FILE *f = fopen(path, "rb");
	struct st_pcapin *a, *b;
	struct st_segment sa, sb;
	int ra, rb, n = 0;

	assert_non_null(f);
	a = st_pcapin__fopen(f, err, sizeof(err));
	b = st_pcapin__open(path, err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	assert_false(st_pcapin__buffered(a));
	assert_int_equal(st_pcapin__buffered(b), want_buffered);
	do {
		ra = st_pcapin__next(a, &sa);
		rb = st_pcapin__next(b, &sb);
		assert_int_equal(ra, rb);
		if (ra <= 0)
			break;
		n++;
		assert_memory_equal(&sa.key, &sb.key, sizeof(sa.key));
		assert_int_equal(sa.ts_ns, sb.ts_ns);
		assert_int_equal(sa.seq, sb.seq);
		assert_int_equal(sa.kind, sb.kind);
		assert_int_equal(sa.len, sb.len);
		if (sa.kind == ST_SEG_DATA && sa.len)
			assert_memory_equal(sa.data, sb.data, sa.len);
	} while (1);
	assert_int_equal(st_pcapin__truncated(a), st_pcapin__truncated(b));
	if (ra < 0)
		assert_string_equal(st_pcapin__error(a), st_pcapin__error(b));
	st_pcapin__close(a);
	st_pcapin__close(b);
}

static void t_buffered_reader(void **state)
{
	char path[] = "/tmp/st-pcapin-XXXXXX";
	int fd = mkstemp(path);
	pcap_t *pd;
	pcap_dumper_t *w;
	struct pcap_pkthdr h = { .ts = { 1700000000, 0 } };
	struct frame f;
	struct stat st;
	char payload[1800];
	size_t at;

	assert_true(fd >= 0);
	close(fd);
	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = 0;
	for (int prec = 0; prec < 2; prec++) {
		pd = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, prec ?
							  PCAP_TSTAMP_PRECISION_NANO :
							  PCAP_TSTAMP_PRECISION_MICRO);
		w = pcap_dump_open(pd, path);
		assert_non_null(w);
		for (int i = 0; i < 50; i++) {
			f.n = 0;
			eth(&f, 0x0800);
			at = ip4(&f, 0, 6, 0);
			tcp(&f, 40000, 80, 1000 + 100 * (uint32_t)i, 1, ST_TCP_ACK, 0,
			    i % 7 ? "0123456789" : payload);
			ip4_done(&f, at, f.n - at);
			h.ts.tv_usec = i * 1001;
			h.len = (uint32_t)f.n;
			h.caplen = (uint32_t)f.n - (i % 5 == 4 ? 3 : 0); /* a few cut packets */
			pcap_dump((u_char *)w, &h, f.b);
		}
		pcap_dump_close(w);
		pcap_close(pd);
		same_reading(path, true);
		/* cut anywhere in the last two records: the same truncation, the same message */
		assert_int_equal(stat(path, &st), 0);
		for (off_t cut = st.st_size - 1; cut > st.st_size - 120; cut -= 7) {
			assert_int_equal(truncate(path, cut), 0);
			same_reading(path, true);
		}
	}
	/* a record longer than the file's snap length: its first snaplen bytes */
	pd = pcap_open_dead(DLT_EN10MB, 100);
	w = pcap_dump_open(pd, path);
	f.n = 0;
	eth(&f, 0x0800);
	at = ip4(&f, 0, 6, 0);
	tcp(&f, 40000, 80, 7, 1, ST_TCP_ACK, 0, payload);
	ip4_done(&f, at, f.n - at);
	h.len = h.caplen = (uint32_t)f.n;
	pcap_dump((u_char *)w, &h, f.b);
	pcap_dump((u_char *)w, &h, f.b);
	pcap_dump_close(w);
	pcap_close(pd);
	same_reading(path, true);
	unlink(path);
	(void)state;
}

/* A link type the decoder does not know fails at open, naming it (by number; by name when
 * libpcap has one): read on, it would give no segment, which looks like an empty capture. */
static void t_unknown_linktype(void **state)
{
	static const struct { int dlt; const char *want; } cases[] = {
		{ 147, "link type 147 (unknown to libpcap) is not one shadowtap decodes" },
		{ 127, "link type 127 (IEEE802_11_RADIO: 802.11 plus radiotap header) is not one" },
		{ 105, "link type 105 (IEEE802_11: 802.11)" },
	};
	struct pcap_pkthdr h = { .ts = { 1700000000, 5 }, .caplen = 60, .len = 60 };
	static const uint8_t pkt[60] = { 0x45 };
	char path[] = "/tmp/st-pcapin-XXXXXX";
	int fd = mkstemp(path);
	char err[512];

	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pcap_t *pd = pcap_open_dead(cases[i].dlt, 65535);
		pcap_dumper_t *w = pd ? pcap_dump_open(pd, path) : NULL;

		assert_non_null(w);
		pcap_dump((u_char *)w, &h, pkt);
		pcap_dump_close(w);
		pcap_close(pd);
		assert_false(st_pcapin_linktype_known(cases[i].dlt));
		err[0] = 0;
		errno = 0;
		assert_null(st_pcapin__open(path, err, sizeof(err)));
		assert_int_equal(errno, EPROTONOSUPPORT);
		if (!strstr(err, cases[i].want)) {
			print_error("got '%s', want '%s'\n", err, cases[i].want);
			fail();
		}
	}
	assert_true(st_pcapin_linktype_known(DLT_EN10MB));
	assert_true(st_pcapin_linktype_known(DLT_LINUX_SLL2));
	unlink(path);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ethernet_ipv4_options_padding),
		cmocka_unit_test(t_qinq),
		cmocka_unit_test(t_ipv6_extension_headers),
		cmocka_unit_test(t_ipv4_fragments_and_other),
		cmocka_unit_test(t_parser_limits),
		cmocka_unit_test(t_snap_cut),
		cmocka_unit_test(t_link_headers),
		cmocka_unit_test(t_reader_splits_cut_packet),
		cmocka_unit_test(t_unknown_linktype),
		cmocka_unit_test(t_buffered_reader),
	};

	return cmocka_run_group_tests_name("pcapin", tests, NULL, NULL);
}
