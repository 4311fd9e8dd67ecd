/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap flows` on pcaps the tests write themselves (libpcap's
 * pcap_open_dead + pcap_dump, and a hand-made pcapng), in every link type the
 * decoder knows, checked byte for byte: the set of files and their contents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <pcap/pcap.h>
#include <cmocka.h>

#include "commands.h"
#include "pcapin.h"

#define MAX_PKTS 4096
#define MAX_FILES 64

struct pkt {
	int family;
	const char *src, *dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	const char *data;
	uint32_t len;
	uint32_t snap_cut; /* bytes of the frame left out of the file */
	uint8_t proto;     /* 0 = TCP, 17 = a UDP packet the decoder must skip */
	uint16_t vlan[2];  /* Ethernet only: 802.1ad + 802.1Q tags when non-zero */
};

struct expect {
	const char *name;
	const char *data;
	size_t len;
};

struct scen {
	struct pkt p[MAX_PKTS];
	size_t n;
	struct expect e[MAX_FILES];
	size_t ne;
	char dir[64];
	char pcap[96];
	char errlog[96];
};

/* ---- frames -------------------------------------------------------------------- */

static size_t put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
	return 2;
}

static size_t put32(uint8_t *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
	return 4;
}

/* IP + TCP (or UDP) packet; returns its length. */
static size_t build_ip(const struct pkt *p, uint8_t *b)
{
	size_t l4 = (p->proto == 17 ? 8 : 20) + p->len, hl;
	uint8_t *t;

	if (p->family == 4) {
		hl = 20;
		memset(b, 0, hl);
		b[0] = 0x45;
		put16(b + 2, (uint16_t)(hl + l4));
		put16(b + 6, 0x4000); /* DF */
		b[8] = 64;
		b[9] = p->proto ? p->proto : 6;
		inet_pton(AF_INET, p->src, b + 12);
		inet_pton(AF_INET, p->dst, b + 16);
	} else {
		hl = 40;
		memset(b, 0, hl);
		b[0] = 0x60;
		put16(b + 4, (uint16_t)l4);
		b[6] = p->proto ? p->proto : 6;
		b[7] = 64;
		inet_pton(AF_INET6, p->src, b + 8);
		inet_pton(AF_INET6, p->dst, b + 24);
	}
	t = b + hl;
	put16(t, p->sport);
	put16(t + 2, p->dport);
	if (p->proto == 17) {
		put16(t + 4, (uint16_t)l4);
		put16(t + 6, 0);
		memcpy(t + 8, p->data, p->len);
		return hl + l4;
	}
	put32(t + 4, p->seq);
	put32(t + 8, p->ack);
	t[12] = 5 << 4;
	t[13] = p->flags;
	put16(t + 14, 65535);
	put32(t + 16, 0);
	memcpy(t + 20, p->data, p->len);
	return hl + l4;
}

static size_t build_frame(int dlt, const struct pkt *p, uint8_t *b, bool null_swapped)
{
	uint16_t et = p->family == 4 ? 0x0800 : 0x86dd;
	size_t h = 0;

	switch (dlt) {
	case DLT_EN10MB:
		memset(b, 0, 12);
		b[5] = 1;
		b[11] = 2;
		h = 12;
		if (p->vlan[0]) {
			h += put16(b + h, 0x88a8);
			h += put16(b + h, p->vlan[0]);
		}
		if (p->vlan[1]) {
			h += put16(b + h, 0x8100);
			h += put16(b + h, p->vlan[1]);
		}
		h += put16(b + h, et);
		break;
	case DLT_LINUX_SLL:
		memset(b, 0, 16);
		put16(b + 2, 772); /* ARPHRD_LOOPBACK */
		put16(b + 4, 6);
		put16(b + 14, et);
		h = 16;
		break;
	case DLT_LINUX_SLL2:
		memset(b, 0, 20);
		put16(b, et);
		put32(b + 4, 1);
		put16(b + 8, 1);
		b[11] = 6;
		h = 20;
		break;
	case DLT_NULL: {
		uint32_t af = p->family == 4 ? 2 : 24;

		if (null_swapped)
			af = __builtin_bswap32(af);
		memcpy(b, &af, 4); /* the writer's byte order */
		h = 4;
		break;
	}
	case DLT_LOOP:
		put32(b, p->family == 4 ? 2 : 30);
		h = 4;
		break;
	default: /* raw IP */
		break;
	}
	return h + build_ip(p, b + h);
}

static void write_pcap(struct scen *s, int dlt, bool null_swapped)
{
	pcap_t *pd = pcap_open_dead(dlt, 262144);
	pcap_dumper_t *w;
	static uint8_t frame[70000];
	size_t i;

	assert_non_null(pd);
	w = pcap_dump_open(pd, s->pcap);
	assert_non_null(w);
	for (i = 0; i < s->n; i++) {
		struct pcap_pkthdr h = { 0 };
		size_t len = build_frame(dlt, &s->p[i], frame, null_swapped);

		h.ts.tv_sec = 1700000000 + (time_t)(i / 1000);
		h.ts.tv_usec = (suseconds_t)(i % 1000) * 1000;
		h.len = (uint32_t)len;
		h.caplen = (uint32_t)(len - s->p[i].snap_cut);
		pcap_dump((u_char *)w, &h, frame);
	}
	pcap_dump_close(w);
	pcap_close(pd);
}

/* pcapng by hand: libpcap reads it but does not write it. */
static void write_pcapng(struct scen *s, int dlt)
{
	FILE *f = fopen(s->pcap, "wb");
	static uint8_t frame[70000];
	uint32_t shb[7] = { 0x0a0d0d0a, 28, 0x1a2b3c4d, 0x00000001, 0xffffffff, 0xffffffff, 28 };
	uint32_t idb[5] = { 1, 20, (uint32_t)dlt, 262144, 20 };
	size_t i;

	assert_non_null(f);
	fwrite(shb, 1, sizeof(shb), f);
	fwrite(idb, 1, sizeof(idb), f);
	for (i = 0; i < s->n; i++) {
		size_t len = build_frame(dlt, &s->p[i], frame, false);
		uint32_t cap = (uint32_t)(len - s->p[i].snap_cut), pad = (4 - cap % 4) % 4;
		uint64_t us = 1700000000ull * 1000000 + i * 1000;
		uint32_t hdr[7] = { 6, 32 + cap + pad, 0, (uint32_t)(us >> 32), (uint32_t)us, cap,
				    (uint32_t)len };
		uint32_t zero = 0, tot = hdr[1];

		fwrite(hdr, 1, sizeof(hdr), f);
		fwrite(frame, 1, cap, f);
		fwrite(&zero, 1, pad, f);
		fwrite(&tot, 1, 4, f);
	}
	fclose(f);
}

/* ---- scenarios --------------------------------------------------------------------------- */

static struct pkt *add(struct scen *s, int fam, const char *src, uint16_t sp, const char *dst,
		       uint16_t dp, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
	struct pkt *p = &s->p[s->n++];

	assert_true(s->n <= MAX_PKTS);
	memset(p, 0, sizeof(*p));
	p->family = fam;
	p->src = src;
	p->dst = dst;
	p->sport = sp;
	p->dport = dp;
	p->seq = seq;
	p->ack = ack;
	p->flags = flags;
	p->data = data ? data : "";
	p->len = data ? (uint32_t)strlen(data) : 0;
	return p;
}

static void expect(struct scen *s, const char *name, const char *data, size_t len)
{
	assert_true(s->ne < MAX_FILES);
	s->e[s->ne].name = name;
	s->e[s->ne].data = data;
	s->e[s->ne].len = len;
	s->ne++;
}

#define S 0x02
#define A 0x10
#define F 0x01
#define P 0x08
#define R 0x04

/*
 * Three connections on one address pair: a clean one with reordering and a
 * duplicate, a second one on the same 4-tuple, and one joined mid-stream with
 * a lost segment (a 4-byte gap). Plus a UDP packet to be skipped.
 */
static void scenario(struct scen *s, int fam, bool with_expect)
{
	const char *c = fam == 4 ? "10.0.0.1" : "2001:db8::1";
	const char *v = fam == 4 ? "10.0.0.2" : "2001:db8::2";
	struct pkt *u;

	add(s, fam, c, 40000, v, 80, 1000, 0, S, NULL);
	add(s, fam, v, 80, c, 40000, 5000, 1001, S | A, NULL);
	add(s, fam, c, 40000, v, 80, 1001, 5001, A, NULL);
	add(s, fam, c, 40000, v, 80, 1008, 5001, A | P, "HTTP/1.1\r\n\r\n");
	add(s, fam, c, 40000, v, 80, 1001, 5001, A, "GET /a ");
	add(s, fam, c, 40000, v, 80, 1001, 5001, A, "GET /a "); /* duplicate */
	u = add(s, fam, c, 5353, v, 5353, 0, 0, 0, "not tcp");
	u->proto = 17;
	add(s, fam, v, 80, c, 40000, 5001, 1021, A, "HTTP/1.1 200 OK\r\n\r\n");
	add(s, fam, v, 80, c, 40000, 5020, 1021, A | P | F, "hello");
	add(s, fam, c, 40000, v, 80, 1020, 5026, A | F, NULL);
	add(s, fam, v, 80, c, 40000, 5026, 1022, A, NULL);
	/* the same 4-tuple again, new ISNs */
	add(s, fam, c, 40000, v, 80, 70000, 0, S, NULL);
	add(s, fam, v, 80, c, 40000, 90000, 70001, S | A, NULL);
	add(s, fam, c, 40000, v, 80, 70001, 90001, A | P, "again");
	add(s, fam, v, 80, c, 40000, 90001, 70006, A | P | F, "ok2");
	add(s, fam, c, 40000, v, 80, 70006, 90005, A | F, NULL);
	/* joined mid-stream; the server's "efgh" never makes it into the capture */
	add(s, fam, c, 40001, v, 80, 300, 800, A | P, "more");
	add(s, fam, v, 80, c, 40001, 800, 304, A, "abcd");
	add(s, fam, v, 80, c, 40001, 808, 304, A | P, "ijkl");
	add(s, fam, v, 80, c, 40001, 812, 304, A | F, NULL);
	add(s, fam, c, 40001, v, 80, 304, 813, A | F, NULL);
	if (!with_expect)
		return;
	if (fam == 4) {
		expect(s, "10.0.0.1.40000-10.0.0.2.80", "GET /a HTTP/1.1\r\n\r\n", 19);
		expect(s, "10.0.0.2.80-10.0.0.1.40000", "HTTP/1.1 200 OK\r\n\r\nhello", 24);
		expect(s, "10.0.0.1.40000-10.0.0.2.80#2", "again", 5);
		expect(s, "10.0.0.2.80-10.0.0.1.40000#2", "ok2", 3);
		expect(s, "10.0.0.1.40001-10.0.0.2.80", "more", 4);
		expect(s, "10.0.0.2.80-10.0.0.1.40001", "abcd\0\0\0\0ijkl", 12);
	} else {
		expect(s, "2001:db8::1.40000-2001:db8::2.80", "GET /a HTTP/1.1\r\n\r\n", 19);
		expect(s, "2001:db8::2.80-2001:db8::1.40000", "HTTP/1.1 200 OK\r\n\r\nhello", 24);
		expect(s, "2001:db8::1.40000-2001:db8::2.80#2", "again", 5);
		expect(s, "2001:db8::2.80-2001:db8::1.40000#2", "ok2", 3);
		expect(s, "2001:db8::1.40001-2001:db8::2.80", "more", 4);
		expect(s, "2001:db8::2.80-2001:db8::1.40001", "abcd\0\0\0\0ijkl", 12);
	}
}

static int setup(void **state)
{
	struct scen *s = calloc(1, sizeof(*s));
	char tmpl[] = "/tmp/st-flows-XXXXXX";

	assert_non_null(s);
	assert_non_null(mkdtemp(tmpl));
	snprintf(s->pcap, sizeof(s->pcap), "%s.pcap", tmpl);
	snprintf(s->errlog, sizeof(s->errlog), "%s.err", tmpl);
	snprintf(s->dir, sizeof(s->dir), "%s", tmpl);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct scen *s = *state;
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", s->dir, s->pcap, s->errlog);
	if (system(cmd))
		print_error("cleanup failed: %s\n", cmd);
	free(s);
	return 0;
}

/* Runs `flows` with stderr going to s->errlog; returns the exit code. */
static int run(struct scen *s, const char *const *extra)
{
	char *argv[32];
	int argc = 0, rc, saved, fd;

	argv[argc++] = "flows";
	argv[argc++] = s->pcap;
	argv[argc++] = "-o";
	argv[argc++] = s->dir;
	while (extra && *extra)
		argv[argc++] = (char *)*extra++;
	argv[argc] = NULL;
	fflush(stderr);
	saved = dup(2);
	fd = open(s->errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	rc = cmd_flows(argc, argv);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	return rc;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

static bool errlog_has(struct scen *s, const char *needle)
{
	size_t n;
	char *log = slurp(s->errlog, &n);
	bool found = log && strstr(log, needle);

	if (!found)
		print_error("stderr lacks '%s':\n%s\n", needle, log ? log : "(none)");
	free(log);
	return found;
}

/* The output folder holds exactly the expected files with exactly their bytes. */
static void check_files(struct scen *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	size_t seen = 0, i;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512];
		char *got;
		size_t len;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		for (i = 0; i < s->ne; i++)
			if (!strcmp(s->e[i].name, e->d_name))
				break;
		if (i == s->ne) {
			print_error("unexpected file %s\n", e->d_name);
			fail();
		}
		snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
		got = slurp(path, &len);
		assert_non_null(got);
		if (len != s->e[i].len || memcmp(got, s->e[i].data, len)) {
			print_error("%s: %zu bytes, want %zu\n", e->d_name, len, s->e[i].len);
			fail();
		}
		free(got);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, s->ne);
}

static void linktype(void **state, int dlt, bool v4, bool v6, bool swapped)
{
	struct scen *s = *state;

	if (v4)
		scenario(s, 4, true);
	if (v6)
		scenario(s, 6, true);
	write_pcap(s, dlt, swapped);
	assert_int_equal(run(s, NULL), 0);
	check_files(s);
	if (v4)
		assert_true(errlog_has(s, "gap: 10.0.0.2.80-10.0.0.1.40001 offset=4 length=4 "
					  "(close)"));
	assert_true(errlog_has(s, v4 && v6 ? "connections=6 files=12" :
				  "connections=3 files=6"));
	assert_true(errlog_has(s, "gaps=") && errlog_has(s, "overlaps=0"));
}

static void t_ethernet(void **state) { linktype(state, DLT_EN10MB, true, true, false); }
static void t_linux_sll(void **state) { linktype(state, DLT_LINUX_SLL, true, true, false); }
static void t_linux_sll2(void **state) { linktype(state, DLT_LINUX_SLL2, true, true, false); }
static void t_raw(void **state) { linktype(state, DLT_RAW, true, true, false); }
static void t_ipv4(void **state) { linktype(state, DLT_IPV4, true, false, false); }
static void t_ipv6(void **state) { linktype(state, DLT_IPV6, false, true, false); }
static void t_null(void **state) { linktype(state, DLT_NULL, true, true, false); }
static void t_null_swapped(void **state) { linktype(state, DLT_NULL, true, true, true); }
static void t_loop(void **state) { linktype(state, DLT_LOOP, true, true, false); }

static void t_ethernet_vlan(void **state)
{
	struct scen *s = *state;
	size_t i;

	scenario(s, 4, true);
	scenario(s, 6, true);
	for (i = 0; i < s->n; i++) {
		s->p[i].vlan[0] = i % 3 ? 100 : 0; /* a mix: untagged, 802.1Q, QinQ */
		s->p[i].vlan[1] = i % 2 ? 200 : 0;
	}
	write_pcap(s, DLT_EN10MB, false);
	assert_int_equal(run(s, NULL), 0);
	check_files(s);
}

static void t_pcapng(void **state)
{
	struct scen *s = *state;

	scenario(s, 4, true);
	scenario(s, 6, true);
	write_pcapng(s, DLT_EN10MB);
	assert_int_equal(run(s, NULL), 0);
	check_files(s);
}

/* A packet cut by the snap length: what the file lacks is a gap, not spliced. */
static void t_snaplen_cut(void **state)
{
	struct scen *s = *state;
	const char *c = "10.0.0.1", *v = "10.0.0.2";
	struct pkt *p;

	add(s, 4, c, 40000, v, 80, 1000, 0, S, NULL);
	add(s, 4, v, 80, c, 40000, 5000, 1001, S | A, NULL);
	p = add(s, 4, v, 80, c, 40000, 5001, 1001, A, "0123456789");
	p->snap_cut = 6;
	p = add(s, 4, v, 80, c, 40000, 5011, 1001, A | F, "X");
	add(s, 4, c, 40000, v, 80, 1001, 5013, A | F, NULL);
	expect(s, "10.0.0.2.80-10.0.0.1.40000", "0123\0\0\0\0\0\0X", 11);
	write_pcap(s, DLT_EN10MB, false);
	assert_int_equal(run(s, NULL), 0);
	check_files(s);
	assert_true(errlog_has(s, "gap: 10.0.0.2.80-10.0.0.1.40000 offset=4 length=6 "
				  "(capture-loss)"));
}

static void t_filters(void **state)
{
	struct scen *s = *state;
	static const char *const port[] = { "--port", "40001", NULL };
	static const char *const host[] = { "--host", "2001:db8::/64", "--force", NULL };

	scenario(s, 4, false);
	scenario(s, 6, false);
	write_pcap(s, DLT_EN10MB, false);
	expect(s, "10.0.0.1.40001-10.0.0.2.80", "more", 4);
	expect(s, "10.0.0.2.80-10.0.0.1.40001", "abcd\0\0\0\0ijkl", 12);
	expect(s, "2001:db8::1.40001-2001:db8::2.80", "more", 4);
	expect(s, "2001:db8::2.80-2001:db8::1.40001", "abcd\0\0\0\0ijkl", 12);
	assert_int_equal(run(s, port), 0);
	check_files(s);
	/* a CIDR keeps the IPv6 connections only; --force writes into the used folder */
	s->ne = 0;
	scenario(s, 6, true); /* only to fill the expectations: the pcap is not rewritten */
	expect(s, "10.0.0.1.40001-10.0.0.2.80", "more", 4);
	expect(s, "10.0.0.2.80-10.0.0.1.40001", "abcd\0\0\0\0ijkl", 12);
	assert_int_equal(run(s, host), 0);
	check_files(s);
}

/* Where record idx of a pcap file starts. */
static off_t record_offset(const char *path, int idx)
{
	FILE *f = fopen(path, "rb");
	off_t off = 24;
	uint32_t h[4];
	int i;

	assert_non_null(f);
	for (i = 0; i < idx; i++) {
		assert_int_equal(fseeko(f, off, SEEK_SET), 0);
		assert_int_equal(fread(h, 4, 4, f), 4);
		off += 16 + h[2];
	}
	fclose(f);
	return off;
}

/* A truncated file: everything before the cut is kept, a warning, exit 0. */
static void t_truncated(void **state)
{
	struct scen *s = *state;

	scenario(s, 4, false);
	write_pcap(s, DLT_EN10MB, false);
	/* cut inside record 13 ("again"): the first connection is whole, the second has no bytes */
	assert_int_equal(truncate(s->pcap, record_offset(s->pcap, 13) + 16 + 10), 0);
	expect(s, "10.0.0.1.40000-10.0.0.2.80", "GET /a HTTP/1.1\r\n\r\n", 19);
	expect(s, "10.0.0.2.80-10.0.0.1.40000", "HTTP/1.1 200 OK\r\n\r\nhello", 24);
	assert_int_equal(run(s, NULL), 0);
	check_files(s);
	assert_true(errlog_has(s, "is truncated"));
	assert_true(errlog_has(s, "shadowtap: summary connections=2 files=2 "));
}

static void t_not_a_pcap(void **state)
{
	struct scen *s = *state;
	FILE *f = fopen(s->pcap, "w");
	struct stat st;

	assert_non_null(f);
	fputs("GET / HTTP/1.1\r\nHost: not-a-capture\r\n\r\n", f);
	fclose(f);
	rmdir(s->dir);
	assert_int_equal(run(s, NULL), 1);
	assert_true(errlog_has(s, "not a readable pcap or pcapng file"));
	assert_int_not_equal(stat(s->dir, &st), 0); /* no output folder left behind */
	mkdir(s->dir, 0700);
}

/* A link type the decoder does not know: said at once (number, name when libpcap has one),
 * exit 1, no output folder; not an empty run with 0 connections. */
static void t_unknown_linktype(void **state)
{
	struct scen *s = *state;
	struct stat st;

	scenario(s, 4, true);
	write_pcap(s, 147 /* DLT_USER0: libpcap has no name for it */, false);
	rmdir(s->dir);
	assert_int_equal(run(s, NULL), 1);
	assert_true(errlog_has(s, "link type 147 (unknown to libpcap) is not one shadowtap decodes"));
	assert_int_not_equal(stat(s->dir, &st), 0);
	write_pcapng(s, 127 /* DLT_IEEE802_11_RADIO */);
	assert_int_equal(run(s, NULL), 1);
	assert_true(errlog_has(s, "link type 127 (IEEE802_11_RADIO: 802.11 plus radiotap header)"));
	assert_int_not_equal(stat(s->dir, &st), 0);
	mkdir(s->dir, 0700);
}

static void t_nonempty_dir(void **state)
{
	struct scen *s = *state;
	static const char *const force[] = { "--force", NULL };
	char path[256];
	FILE *f;

	scenario(s, 4, true);
	write_pcap(s, DLT_EN10MB, false);
	snprintf(path, sizeof(path), "%s/10.0.0.1.40000-10.0.0.2.80", s->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("stale bytes of an older run, longer than the new ones", f);
	fclose(f);
	assert_int_equal(run(s, NULL), 1);
	assert_true(errlog_has(s, "is not empty"));
	assert_int_equal(run(s, force), 0);
	check_files(s); /* the stale file was replaced, not appended to */
}

static void t_usage(void **state)
{
	struct scen *s = *state;
	char *noout[] = { "flows", s->pcap, NULL };
	char *both[] = { "flows", s->pcap, "-o", s->dir, "--iface", "lo", NULL };
	char *badmem[] = { "flows", s->pcap, "-o", s->dir, "--max-mem", "lots", NULL };
	char *help[] = { "flows", "--help", NULL };

	assert_int_equal(cmd_flows(2, noout), 2);
	assert_int_equal(cmd_flows(6, both), 2);
	assert_int_equal(cmd_flows(6, badmem), 2);
	assert_int_equal(cmd_flows(2, help), 0);
}

/* More live connections than file descriptors: files are closed and reopened to append. */
static void t_many_open_files(void **state)
{
	struct scen *s = *state;
	enum { N = 300, ROUNDS = 4 };
	static char names[N][2][64];
	static char bodies[N][2][64];
	static char chunk[N][ROUNDS][2][24];
	struct rlimit old, rl;
	int i, r, d;

	for (i = 0; i < N; i++)
		add(s, 4, "10.9.0.1", (uint16_t)(20000 + i), "10.9.0.2", 8080, 10, 0, S, NULL);
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < N; i++) {
			for (d = 0; d < 2; d++) {
				assert_true(snprintf(chunk[i][r][d], sizeof(chunk[i][r][d]), "%c%d.%d;",
							 d ? 's' : 'c', i, r) < (int)sizeof(chunk[i][r][d]));
				if (d == 0)
					add(s, 4, "10.9.0.1", (uint16_t)(20000 + i), "10.9.0.2", 8080,
					    11 + (uint32_t)strlen(bodies[i][0]), 0, A, chunk[i][r][d]);
				else
					add(s, 4, "10.9.0.2", 8080, "10.9.0.1", (uint16_t)(20000 + i),
					    500 + (uint32_t)strlen(bodies[i][1]), 0, A, chunk[i][r][d]);
				strcat(bodies[i][d], chunk[i][r][d]);
			}
		}
	}
	for (i = 0; i < N; i++) {
		snprintf(names[i][0], 64, "10.9.0.1.%d-10.9.0.2.8080", 20000 + i);
		snprintf(names[i][1], 64, "10.9.0.2.8080-10.9.0.1.%d", 20000 + i);
	}
	write_pcap(s, DLT_RAW, false);
	getrlimit(RLIMIT_NOFILE, &old);
	rl = old;
	rl.rlim_cur = 64;
	rl.rlim_max = 64; /* flows may not raise it back */
	if (setrlimit(RLIMIT_NOFILE, &rl))
		skip();
	assert_int_equal(run(s, NULL), 0);
	setrlimit(RLIMIT_NOFILE, &old);
	/* all 600 files exist with the right bytes; check every one, not just MAX_FILES */
	for (i = 0; i < N; i++) {
		for (d = 0; d < 2; d++) {
			char path[256];
			size_t len;
			char *got;

			snprintf(path, sizeof(path), "%s/%s", s->dir, names[i][d]);
			got = slurp(path, &len);
			assert_non_null(got);
			assert_int_equal(len, strlen(bodies[i][d]));
			assert_memory_equal(got, bodies[i][d], len);
			free(got);
		}
	}
	assert_true(errlog_has(s, "connections=300 files=600"));
}

/* Over --max-mem the oldest connections are evicted: their holes become gaps, their
 * buffered bytes still reach the files. */
static void t_max_mem(void **state)
{
	struct scen *s = *state;
	static const char *const cap[] = { "--max-mem", "1M", NULL };
	enum { N = 2000, HELD = 1000 };
	static char held[HELD + 1];
	static char want[10 + HELD];
	size_t len;
	char path[256], *got, *log;
	int i;

	memset(held, 'h', HELD);
	memset(want, 0, 10);
	memset(want + 10, 'h', HELD);
	for (i = 0; i < N; i++) { /* each connection: a SYN, then bytes after a 10-byte hole */
		add(s, 4, "10.8.0.1", (uint16_t)(10000 + i), "10.8.0.2", 80, 100, 0, S, NULL);
		add(s, 4, "10.8.0.1", (uint16_t)(10000 + i), "10.8.0.2", 80, 111, 0, A, held);
	}
	write_pcap(s, DLT_RAW, false);
	assert_int_equal(run(s, cap), 0);
	for (i = 0; i < N; i += 7) {
		snprintf(path, sizeof(path), "%s/10.8.0.1.%d-10.8.0.2.80", s->dir, 10000 + i);
		got = slurp(path, &len);
		assert_non_null(got);
		assert_int_equal(len, sizeof(want));
		assert_memory_equal(got, want, len);
		free(got);
	}
	assert_true(errlog_has(s, "offset=0 length=10 (mem-cap)"));
	assert_true(errlog_has(s, "connections=2000 files=2000 "));
	assert_true(errlog_has(s, "gaps=2000 gap_bytes=20000 "));
	log = slurp(s->errlog, &len);
	assert_non_null(log);
	assert_non_null(strstr(log, " evicted="));
	assert_false(strstr(log, " evicted=0 ")); /* the cap was hit */
	free(log);
}

/* The decoder alone: malformed and non-TCP frames are classified, never read past. */
static void t_decode_edges(void **state)
{
	struct st_segment seg;
	uint8_t b[128] = { 0 };
	uint32_t cut;
	struct pkt p = { .family = 4, .src = "1.2.3.4", .dst = "5.6.7.8", .sport = 1, .dport = 2,
			 .data = "abc", .len = 3 };
	size_t n = build_ip(&p, b), i;

	assert_int_equal(st_pcapin_decode(DLT_RAW, b, (uint32_t)n, &seg, &cut), ST_DEC_TCP);
	assert_int_equal(seg.len, 3);
	assert_int_equal(seg.key.sport, 1);
	for (i = 0; i < n; i++) /* every shorter capture: never a crash, cut or malformed */
		assert_true(st_pcapin_decode(DLT_RAW, b, (uint32_t)i, &seg, &cut) != ST_DEC_OTHER ||
			    i == 0);
	b[6] = 0x20; /* more fragments */
	assert_int_equal(st_pcapin_decode(DLT_RAW, b, (uint32_t)n, &seg, &cut), ST_DEC_FRAGMENT);
	b[6] = 0x40;
	b[0] = 0x44; /* IHL 16 bytes */
	assert_int_equal(st_pcapin_decode(DLT_RAW, b, (uint32_t)n, &seg, &cut), ST_DEC_MALFORMED);
	b[0] = 0x45;
	b[9] = 17;
	assert_int_equal(st_pcapin_decode(DLT_RAW, b, (uint32_t)n, &seg, &cut), ST_DEC_OTHER);
	assert_int_equal(st_pcapin_decode(147 /* DLT_USER0 */, b, (uint32_t)n, &seg, &cut),
			 ST_DEC_OTHER);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_ethernet, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ethernet_vlan, setup, teardown),
		cmocka_unit_test_setup_teardown(t_linux_sll, setup, teardown),
		cmocka_unit_test_setup_teardown(t_linux_sll2, setup, teardown),
		cmocka_unit_test_setup_teardown(t_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(t_null, setup, teardown),
		cmocka_unit_test_setup_teardown(t_null_swapped, setup, teardown),
		cmocka_unit_test_setup_teardown(t_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(t_pcapng, setup, teardown),
		cmocka_unit_test_setup_teardown(t_snaplen_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(t_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(t_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(t_not_a_pcap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_unknown_linktype, setup, teardown),
		cmocka_unit_test_setup_teardown(t_nonempty_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(t_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(t_many_open_files, setup, teardown),
		cmocka_unit_test_setup_teardown(t_max_mem, setup, teardown),
		cmocka_unit_test(t_decode_edges),
	};

	return cmocka_run_group_tests_name("flows", tests, NULL, NULL);
}
