/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Record decoding (record.c), the pcap writer (pcapw.c) and the BPF parser
 * (bpf/parse.h) compiled for the host: a segment written as a frame parses
 * back to the same segment, with valid checksums, and libpcap reads it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcapw.h"
#include "record.h"

#include "pktparse.h"

static uint8_t rec_buf[sizeof(struct st_rec) + ST_CHUNK_MAX];

static struct st_rec *mkrec(uint8_t type, uint32_t len)
{
	struct st_rec *r = (struct st_rec *)rec_buf;

	memset(rec_buf, 0, sizeof(rec_buf));
	r->version = ST_ABI_VERSION;
	r->type = type;
	r->dir = ST_DIR_OUT;
	r->family = 4;
	r->tcp_flags = ST_TCP_ACK | ST_TCP_PSH;
	r->window = 501;
	r->ts_ns = 5000000000ull;
	r->saddr[0] = htonl(0x0a000001);
	r->daddr[0] = htonl(0x0a000002);
	r->sport = 80;
	r->dport = 41000;
	r->seq = 1000 + 16384;
	r->ack = 77;
	r->seg_len = 16384 + len;
	r->off = 16384;
	r->len = len;
	for (uint32_t i = 0; i < len && type == ST_REC_DATA; i++)
		rec_buf[sizeof(*r) + i] = (uint8_t)i;
	return r;
}

static void test_decode_ok(void **state)
{
	struct st_rec *r = mkrec(ST_REC_DATA, 100);
	struct st_segment s;

	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 1000, &s), 0);
	assert_int_equal(s.kind, ST_SEG_DATA);
	assert_int_equal(s.dir, ST_DIR_OUT);
	assert_int_equal(s.key.src.family, 4);
	assert_int_equal(ntohl(s.key.src.a[0]), 0x0a000001);
	assert_int_equal(s.key.sport, 80);
	assert_int_equal(s.key.dport, 41000);
	assert_int_equal(s.seq, 1000 + 16384);
	assert_int_equal(s.ack, 77);
	assert_int_equal(s.window, 501);
	assert_int_equal(s.flags, ST_TCP_ACK | ST_TCP_PSH);
	assert_int_equal(s.ts_ns, 5000001000ull);
	assert_int_equal(s.len, 100);
	assert_ptr_equal(s.data, rec_buf + sizeof(*r));
	/* The ring may hand a record longer than its payload (size classes). */
	assert_int_equal(st_record_decode(r, sizeof(*r) + 256, 0, &s), 0);
	assert_int_equal(s.len, 100);

	r = mkrec(ST_REC_LOSS, 5000);
	assert_int_equal(st_record_decode(r, sizeof(*r), 0, &s), 0);
	assert_int_equal(s.kind, ST_SEG_LOSS);
	assert_int_equal(s.len, 5000);
	assert_null(s.data);
}

static void test_decode_bad(void **state)
{
	struct st_segment s;
	struct st_rec *r;

	r = mkrec(ST_REC_DATA, 100);
	assert_int_equal(st_record_decode(r, sizeof(*r) - 1, 0, &s), -EINVAL);
	assert_int_equal(st_record_decode(r, sizeof(*r) + 99, 0, &s), -EINVAL); /* cut payload */
	r->version = ST_ABI_VERSION + 1;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), -EINVAL);
	r = mkrec(ST_REC_DATA, 100);
	r->type = 9;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), -EINVAL);
	r = mkrec(ST_REC_DATA, 100);
	r->family = 5;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), -EINVAL);
	r = mkrec(ST_REC_DATA, 100);
	r->dir = 2;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), -EINVAL);
	r = mkrec(ST_REC_DATA, 100);
	r->seg_len = 16384 + 99; /* part beyond its segment */
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), -EINVAL);
	r = mkrec(ST_REC_DATA, ST_CHUNK_MAX);
	r->len = ST_CHUNK_MAX + 1;
	r->seg_len = r->off + r->len;
	assert_int_equal(st_record_decode(r, sizeof(rec_buf), 0, &s), -EINVAL);
}

/* Copy policies: the elided rest of a segment and "no payload" come through, apart from loss. */
static void test_decode_elided(void **state)
{
	struct st_segment s;
	struct st_rec *r;

	r = mkrec(ST_REC_DATA, 100);
	assert_int_equal(st_record_decode(r, sizeof(*r) + 100, 0, &s), 0);
	assert_int_equal(s.elided, 0); /* a part that is not the last: nothing elided */
	assert_int_equal(s.elided_before, 0);
	/* headers-only: 256 of a 3000-byte segment copied, the rest elided by policy */
	r = mkrec(ST_REC_DATA, 256);
	r->off = 0;
	r->seg_len = 3000;
	r->rflags = ST_RF_ELIDED;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 256, 0, &s), 0);
	assert_int_equal(s.kind, ST_SEG_DATA);
	assert_int_equal(s.len, 256);
	assert_int_equal(s.elided, 3000 - 256);
	/* the ring was full for that head: a loss of the head, the rest still elided */
	r = mkrec(ST_REC_LOSS, 256);
	r->off = 0;
	r->seg_len = 3000;
	r->rflags = ST_RF_ELIDED;
	assert_int_equal(st_record_decode(r, sizeof(*r), 0, &s), 0);
	assert_int_equal(s.kind, ST_SEG_LOSS);
	assert_int_equal(s.len, 256);
	assert_int_equal(s.elided, 3000 - 256);
	/* policy none: a FIN with 10 payload bytes, none copied */
	r = mkrec(ST_REC_DATA, 0);
	r->off = 0;
	r->seg_len = 10;
	r->tcp_flags = ST_TCP_FIN | ST_TCP_ACK;
	r->rflags = ST_RF_ELIDED | ST_RF_NO_PAYLOAD;
	assert_int_equal(st_record_decode(r, sizeof(*r), 0, &s), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.elided, 10);
	assert_int_equal(s.elided_before, 1);
	assert_int_equal(s.flags, ST_TCP_FIN | ST_TCP_ACK);
	/* TLS plaintext (bpf/tls.bpf.c): a record like any other, headers-only included */
	r = mkrec(ST_REC_DATA, 256);
	r->off = 0;
	r->seg_len = 3000;
	r->rflags = ST_RF_TLS | ST_RF_ELIDED;
	assert_int_equal(st_record_decode(r, sizeof(*r) + 256, 0, &s), 0);
	assert_int_equal(s.len, 256);
	assert_int_equal(s.elided, 3000 - 256);
	/* unknown flag bits: a newer writer, refused */
	r->rflags = 0x80;
	assert_int_equal(st_record_decode(r, sizeof(*r), 0, &s), -EINVAL);
	r->rflags = ST_RF_TLS | 0x08;
	assert_int_equal(st_record_decode(r, sizeof(*r), 0, &s), -EINVAL);
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t sum16(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (; len >= 2; p += 2, len -= 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (len)
		s += (uint32_t)p[0] << 8;
	return s;
}

/* Segment -> frame -> parse.h: the same fields back, checksums verify. */
static void roundtrip(int v6, uint16_t vlan, uint32_t len)
{
	static uint8_t frame[ST_FRAME_MAX], payload[ST_CHUNK_MAX];
	struct st_segment s = { 0 };
	struct st_pkt p;
	struct st_pktbuf hb;
	size_t n, l2 = vlan ? 18 : 14, l3 = v6 ? 40 : 20;

	for (uint32_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i ^ 0x5a);
	s.key.src.family = s.key.dst.family = v6 ? 6 : 4;
	if (v6) {
		inet_pton(AF_INET6, "fd00::1", s.key.src.a);
		inet_pton(AF_INET6, "fd00::2", s.key.dst.a);
	} else {
		inet_pton(AF_INET, "10.0.0.1", s.key.src.a);
		inet_pton(AF_INET, "10.0.0.2", s.key.dst.a);
	}
	s.key.sport = 40001;
	s.key.dport = 8080;
	s.seq = 0xfffffff0;
	s.ack = 12345;
	s.window = 1000;
	s.flags = ST_TCP_ACK | ST_TCP_PSH;
	s.dir = ST_DIR_IN;
	s.vlan = vlan;
	s.len = len;
	s.data = payload;
	n = st_pcapw_frame_build(&s, frame, sizeof(frame));
	assert_int_equal(n, l2 + l3 + 20 + len);
	hb.p = frame;
	hb.avail = (uint32_t)n;
	assert_int_equal(st_parse(&hb, (uint32_t)n, 1, &p), ST_PARSE_TCP);
	assert_int_equal(p.family, v6 ? 6 : 4);
	assert_int_equal(p.vlan, vlan);
	assert_memory_equal(p.saddr, s.key.src.a, v6 ? 16 : 4);
	assert_memory_equal(p.daddr, s.key.dst.a, v6 ? 16 : 4);
	assert_int_equal(p.sport, 40001);
	assert_int_equal(p.dport, 8080);
	assert_int_equal(p.seq, 0xfffffff0);
	assert_int_equal(p.ack, 12345);
	assert_int_equal(p.window, 1000);
	assert_int_equal(p.tcp_flags, ST_TCP_ACK | ST_TCP_PSH);
	assert_int_equal(p.payload_len, len);
	assert_memory_equal(frame + p.payload_off, payload, len);
	/* Checksums: the IPv4 header sums to 0xffff, and so does TCP + pseudo header. */
	if (!v6)
		assert_int_equal(fold(sum16(frame + l2, 20)), 0xffff);
	{
		uint32_t sum = sum16(frame + l2 + (v6 ? 8 : 12), v6 ? 32 : 8);

		sum += 6 + 20 + len;
		sum += sum16(frame + l2 + l3, 20 + len);
		assert_int_equal(fold(sum), 0xffff);
	}
	/* Host parser on the same bytes cut short: never reads past the end. */
	hb.avail = (uint32_t)(l2 + l3 + 10);
	assert_int_equal(st_parse(&hb, hb.avail, 1, &p), ST_PARSE_BAD);
}

static void test_frame_roundtrip(void **state)
{
	roundtrip(0, 0, 0);
	roundtrip(0, 0, 1);
	roundtrip(0, 7, 1001);
	roundtrip(1, 0, 16384);
	roundtrip(1, 4095, 3);
}

static void test_frame_too_big(void **state)
{
	static uint8_t frame[100];
	static const uint8_t data[200];
	struct st_segment s = { .len = 200, .data = data };

	s.key.src.family = 4;
	assert_int_equal(st_pcapw_frame_build(&s, frame, sizeof(frame)), 0);
}

static void test_pcap_file(void **state)
{
	char path[] = "/tmp/st-test-pcapw-XXXXXX";
	int fd = mkstemp(path);
	static const uint8_t data[3000];
	struct st_segment s = { 0 };
	struct st_pcapw *w;
	struct st_pcapw_stats ws;
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *pkt;
	pcap_t *rd;
	int n = 0;

	assert_true(fd >= 0);
	close(fd);
	w = st_pcapw__open(path, 0, 0);
	assert_non_null(w);
	assert_int_equal(st_pcapw__commit(w), 0); /* the file takes its name (output.h) */
	s.key.src.family = s.key.dst.family = 4;
	s.key.sport = 1;
	s.key.dport = 2;
	s.ts_ns = 1700000000123456789ull;
	s.len = sizeof(data);
	s.data = data;
	assert_int_equal(st_pcapw__write(w, &s), 0);
	s.kind = ST_SEG_LOSS; /* carries no bytes: not written */
	assert_int_equal(st_pcapw__write(w, &s), 0);
	assert_int_equal(st_pcapw__close(w, &ws), 0);
	assert_int_equal(ws.packets, 1);
	assert_int_equal(ws.bytes, 3000);
	assert_int_equal(ws.dropped_writes, 0);

	rd = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	assert_non_null(rd);
	assert_int_equal(pcap_datalink(rd), DLT_EN10MB);
	while (pcap_next_ex(rd, &h, &pkt) == 1) {
		assert_int_equal(h->caplen, 14 + 20 + 20 + 3000);
		assert_int_equal(h->ts.tv_sec, 1700000000);
		assert_int_equal(h->ts.tv_usec, 123456789);
		n++;
	}
	assert_int_equal(n, 1);
	pcap_close(rd);

	/* closed uncommitted (capture whose attach failed): what was at the path stays as it was */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	w = st_pcapw__open(path, 0, 0);
	assert_non_null(w);
	s.kind = ST_SEG_DATA;
	assert_int_equal(st_pcapw__write(w, &s), 0);
	st_pcapw__close(w, NULL);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, err, sizeof(err)), 8);
	assert_memory_equal(err, "precious", 8);
	close(fd);
	unlink(path);

	assert_null(st_pcapw__open("/nonexistent-dir/x.pcap", 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_ok),       cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_decode_elided),
		cmocka_unit_test(test_frame_roundtrip), cmocka_unit_test(test_frame_too_big),
		cmocka_unit_test(test_pcap_file),
	};

	return cmocka_run_group_tests_name("records", tests, NULL, NULL);
}
