/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The reassembly engine, one case per test: hand-built segment sequences in,
 * exact events, bytes and counters out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "reasm.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define MAX_CONNS 8

/* What the callbacks saw: an event log, and each stream with gaps as zero bytes. */
struct rec {
	char log[16384];
	size_t n;
	uint8_t *buf[MAX_CONNS + 1][2];
	size_t len[MAX_CONNS + 1][2];
	size_t cap[MAX_CONNS + 1][2];
	int opens, closes;
};

struct fx {
	struct st_reasm *r;
	struct rec rec;
	struct st_reasm_config cfg;
	uint64_t now;
	uint64_t mem0;
	struct st_flow_key cs; /* client -> server */
	uint16_t ports[2];
};

static void logf_(struct rec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rec *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	x->n += vsnprintf(x->log + x->n, sizeof(x->log) - x->n, fmt, ap);
	va_end(ap);
	assert_true(x->n < sizeof(x->log));
}

static void put(struct rec *x, uint64_t id, int d, uint64_t off, const uint8_t *p, uint64_t len)
{
	assert_true(id >= 1 && id <= MAX_CONNS);
	/* the engine promises contiguous offsets: check it on every event */
	assert_int_equal(off, x->len[id][d]);
	if (x->len[id][d] + len > x->cap[id][d]) {
		x->cap[id][d] = (x->len[id][d] + len) * 2;
		x->buf[id][d] = realloc(x->buf[id][d], x->cap[id][d]);
		assert_non_null(x->buf[id][d]);
	}
	if (p)
		memcpy(x->buf[id][d] + off, p, len);
	else
		memset(x->buf[id][d] + off, 0, len);
	x->len[id][d] += len;
}

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct rec *x = ctx;

	x->opens++;
	logf_(x, "open %llu%s%s;", (unsigned long long)c->id,
	      c->flags & ST_REASM_F_JOINED ? " joined" : "",
	      c->flags & ST_REASM_F_DIR_GUESSED ? " guessed" : "");
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct rec *x = ctx;

	logf_(x, "data %llu %d %llu+%u;", (unsigned long long)c->id, dir, (unsigned long long)off,
	      len);
	put(x, c->id, dir, off, d, len);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct rec *x = ctx;

	logf_(x, "gap %llu %d %llu+%llu %s;", (unsigned long long)c->id, dir,
	      (unsigned long long)off, (unsigned long long)len, st_reasm_gap_str(why));
	put(x, c->id, dir, off, NULL, len);
}

static void on_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why,
		   uint64_t ts)
{
	logf_(ctx, "end %llu %d %s;", (unsigned long long)c->id, dir, st_reasm_end_str(why));
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct rec *x = ctx;

	x->closes++;
	logf_(x, "close %llu %s;", (unsigned long long)c->id, st_reasm_end_str(why));
}

static const struct st_reasm_ops ops = {
	.open = on_open, .data = on_data, .gap = on_gap, .end = on_end, .close = on_close,
};

static void key4(struct st_flow_key *k, const char *c, uint16_t cp, const char *s, uint16_t sp)
{
	memset(k, 0, sizeof(*k));
	k->src.family = k->dst.family = 4;
	inet_pton(AF_INET, c, &k->src.a[0]);
	inet_pton(AF_INET, s, &k->dst.a[0]);
	k->sport = cp;
	k->dport = sp;
}

static void key6(struct st_flow_key *k, const char *c, uint16_t cp, const char *s, uint16_t sp)
{
	memset(k, 0, sizeof(*k));
	k->src.family = k->dst.family = 6;
	inet_pton(AF_INET6, c, k->src.a);
	inet_pton(AF_INET6, s, k->dst.a);
	k->sport = cp;
	k->dport = sp;
}

static void fx_start(struct fx *f)
{
	struct st_reasm_stats st;

	f->r = st_reasm__new(&f->cfg, &ops, &f->rec);
	assert_non_null(f->r);
	st_reasm__stats(f->r, &st);
	f->mem0 = st.mem;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	key4(&f->cs, "10.0.0.1", 40000, "10.0.0.2", 80);
	f->now = 1000 * SEC;
	fx_start(f);
	*state = f;
	return 0;
}

/* Reconfigure before the first segment. */
static void fx_config(struct fx *f, const struct st_reasm_config *cfg)
{
	st_reasm__free(f->r);
	f->cfg = *cfg;
	fx_start(f);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i, d;

	st_reasm__free(f->r);
	for (i = 0; i <= MAX_CONNS; i++)
		for (d = 0; d < 2; d++)
			free(f->rec.buf[i][d]);
	free(f);
	return 0;
}

/* Sends one segment; dir 0 = client -> server. Time moves 1 ms per segment. */
static void sendk(struct fx *f, const struct st_flow_key *k, int dir, uint32_t seq, uint32_t ack,
		  uint8_t flags, const void *data, uint32_t len)
{
	struct st_segment s;

	memset(&s, 0, sizeof(s));
	if (dir == 0) {
		s.key = *k;
	} else {
		s.key.src = k->dst;
		s.key.dst = k->src;
		s.key.sport = k->dport;
		s.key.dport = k->sport;
	}
	f->now += MS;
	s.ts_ns = f->now;
	s.seq = seq;
	s.ack = ack;
	s.flags = flags;
	s.kind = ST_SEG_DATA;
	s.dir = -1;
	s.len = len;
	s.data = data;
	assert_int_equal(st_reasm__feed(f->r, &s), 0);
}

static void tx(struct fx *f, int dir, uint32_t seq, uint8_t flags, const char *data)
{
	sendk(f, &f->cs, dir, seq, 0, flags | (flags & ST_TCP_SYN ? 0 : ST_TCP_ACK), data,
	      data ? (uint32_t)strlen(data) : 0);
}

static void loss(struct fx *f, int dir, uint32_t seq, uint32_t len)
{
	struct st_segment s;

	memset(&s, 0, sizeof(s));
	s.key = f->cs;
	if (dir) {
		s.key.src = f->cs.dst;
		s.key.dst = f->cs.src;
		s.key.sport = f->cs.dport;
		s.key.dport = f->cs.sport;
	}
	f->now += MS;
	s.ts_ns = f->now;
	s.seq = seq;
	s.kind = ST_SEG_LOSS;
	s.dir = -1;
	s.len = len;
	assert_int_equal(st_reasm__feed(f->r, &s), 0);
}

#define CISN 1000u
#define SISN 5000u

static void handshake(struct fx *f)
{
	tx(f, 0, CISN, ST_TCP_SYN, NULL);
	sendk(f, &f->cs, 1, SISN, CISN + 1, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	tx(f, 0, CISN + 1, 0, NULL);
}

static void assert_log(struct fx *f, const char *want)
{
	if (strcmp(f->rec.log, want)) {
		print_error("log:  %s\nwant: %s\n", f->rec.log, want);
		fail();
	}
}

static void assert_stream(struct fx *f, int id, int d, const void *want, size_t len)
{
	assert_int_equal(f->rec.len[id][d], len);
	if (len)
		assert_memory_equal(f->rec.buf[id][d], want, len);
}

static struct st_reasm_stats stats(struct fx *f)
{
	struct st_reasm_stats st;

	st_reasm__stats(f->r, &st);
	return st;
}

/* After a flush nothing may be left: every byte of state given back. */
static void assert_all_freed(struct fx *f)
{
	struct st_reasm_stats st;

	st_reasm__flush(f->r);
	st = stats(f);
	assert_int_equal(st.conns_active, 0);
	assert_int_equal(st.mem, f->mem0);
}

/* ---- tests ------------------------------------------------------------------ */

static void t_handshake_and_close(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, ST_TCP_PSH, "GET /");
	tx(f, 1, SISN + 1, ST_TCP_PSH, "HTTP/1.1 200");
	tx(f, 0, CISN + 6, ST_TCP_FIN, NULL);
	tx(f, 1, SISN + 13, ST_TCP_FIN, NULL);
	tx(f, 0, CISN + 7, 0, NULL); /* last ACK: absorbed by the closed 4-tuple */
	assert_log(f, "open 1;data 1 0 0+5;data 1 1 0+12;end 1 0 fin;end 1 1 fin;close 1 fin;");
	assert_stream(f, 1, 0, "GET /", 5);
	assert_stream(f, 1, 1, "HTTP/1.1 200", 12);
	st = stats(f);
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.conns_joined, 0);
	assert_int_equal(st.bytes, 17);
	assert_int_equal(st.gaps, 0);
	assert_int_equal(st.retrans_bytes, 0);
	assert_int_equal(st.drop_segs, 0);
	assert_all_freed(f);
}

static void t_out_of_order(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1 + 8, 0, "IJKL");
	tx(f, 0, CISN + 1 + 4, 0, "EFGH");
	assert_log(f, "open 1;");
	tx(f, 0, CISN + 1, 0, "ABCD");
	assert_log(f, "open 1;data 1 0 0+4;data 1 0 4+4;data 1 0 8+4;");
	assert_stream(f, 1, 0, "ABCDEFGHIJKL", 12);
	st = stats(f);
	assert_int_equal(st.ooo_segments, 2);
	assert_int_equal(st.gaps, 0);
	assert_int_equal(st.retrans_bytes, 0);
	assert_all_freed(f);
}

static void t_duplicates_and_retransmissions(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "ABCD");
	tx(f, 0, CISN + 1, 0, "ABCD");       /* duplicate of delivered bytes */
	tx(f, 0, CISN + 1 + 8, 0, "IJ");     /* ahead */
	tx(f, 0, CISN + 1 + 8, 0, "IJ");     /* duplicate of buffered bytes */
	tx(f, 0, CISN + 1 + 2, 0, "CDEFGH"); /* retransmission straddling delivered bytes */
	assert_stream(f, 1, 0, "ABCDEFGHIJ", 10);
	st = stats(f);
	assert_int_equal(st.bytes, 10);
	assert_int_equal(st.retrans_bytes, 4 + 2 + 2);
	assert_int_equal(st.overlaps, 0);
	assert_int_equal(st.gaps, 0);
	assert_all_freed(f);
}

/* Policy: the first copy of a byte wins; differing overlaps are counted. */
static void t_overlap_first_wins(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1 + 10, 0, "KLMNOPQRST");      /* [10,20) first */
	tx(f, 0, CISN + 1 + 5, 0, "fghijklmno");       /* [5,15): [10,15) differs */
	tx(f, 0, CISN + 1 + 18, 0, "STUV");            /* [18,22): [18,20) same */
	tx(f, 0, CISN + 1, 0, "abcdeFGHIJKL");         /* [0,12): in order, overlaps buffer */
	assert_stream(f, 1, 0, "abcdefghijKLMNOPQRSTUV", 22);
	st = stats(f);
	assert_int_equal(st.overlaps, 2);
	/* "klmno" vs "KLMNO": 5 differ; "ST" vs "ST": none; "FGHIJ" vs "fghij": 5, "KL": none */
	assert_int_equal(st.overlap_bytes, 5 + 5);
	assert_int_equal(st.retrans_bytes, 5 + 2 + 7);
	assert_int_equal(st.bytes, 22);
	assert_all_freed(f);
}

static void t_seq_wraparound(void **state)
{
	struct fx *f = *state;
	uint32_t isn = 0xfffffff0u;

	tx(f, 0, isn, ST_TCP_SYN, NULL);
	sendk(f, &f->cs, 1, SISN, isn + 1, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	/* bytes 0..31 straddle 2^32 at offset 15; sent out of order */
	tx(f, 0, isn + 1 + 16, 0, "QRSTUVWXYZ012345");
	tx(f, 0, isn + 1, 0, "ABCDEFGHIJKLMNOP");
	tx(f, 0, isn + 1 + 32, ST_TCP_FIN, "6789");
	tx(f, 1, SISN + 1, ST_TCP_FIN, NULL);
	assert_stream(f, 1, 0, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 36);
	assert_log(f, "open 1;data 1 0 0+16;data 1 0 16+16;data 1 0 32+4;end 1 0 fin;"
		      "end 1 1 fin;close 1 fin;");
	assert_int_equal(stats(f).gaps, 0);
	assert_all_freed(f);
}

/* The server closes first; the client keeps sending on its half. */
static void t_half_close_server_first(void **state)
{
	struct fx *f = *state;

	handshake(f);
	tx(f, 1, SISN + 1, ST_TCP_FIN, "bye");
	tx(f, 0, CISN + 1, 0, "still");
	tx(f, 0, CISN + 6, ST_TCP_FIN, "here");
	assert_log(f, "open 1;data 1 1 0+3;end 1 1 fin;data 1 0 0+5;data 1 0 5+4;end 1 0 fin;"
		      "close 1 fin;");
	assert_all_freed(f);
}

/* A FIN that arrives before the bytes it follows waits for them. */
static void t_fin_before_data(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1 + 3, ST_TCP_FIN, NULL);
	tx(f, 0, CISN + 1 + 3 + 1, 0, "xx"); /* beyond the FIN: never counts */
	assert_log(f, "open 1;");
	tx(f, 0, CISN + 1, 0, "abc");
	assert_log(f, "open 1;data 1 0 0+3;end 1 0 fin;");
	st = stats(f);
	assert_int_equal(st.drop_bytes, 2);
	assert_int_equal(st.drop_segs, 1);
	assert_all_freed(f);
}

static void t_rst(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "abc");
	tx(f, 0, CISN + 1 + 6, 0, "ghi"); /* a hole at [3,6) */
	tx(f, 1, SISN + 1, ST_TCP_RST, NULL);
	tx(f, 0, CISN + 1 + 9, 0, "late"); /* after the reset: dropped, counted */
	assert_log(f, "open 1;data 1 0 0+3;gap 1 0 3+3 close;data 1 0 6+3;end 1 0 rst;"
		      "end 1 1 rst;close 1 rst;");
	assert_stream(f, 1, 0, "abc\0\0\0ghi", 9);
	st = stats(f);
	assert_int_equal(st.gap_bytes, 3);
	assert_int_equal(st.drop_bytes, 4);
	assert_all_freed(f);
}

static void t_midstream_join(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { 0 };
	struct st_reasm_stats st;

	f->ports[0] = 80;
	cfg.ports = f->ports;
	cfg.n_ports = 1;
	fx_config(f, &cfg);
	/* the server speaks first in the capture: its port is listed, so it is the server */
	sendk(f, &f->cs, 1, 777777, 123456, ST_TCP_ACK, "tail of response", 16);
	sendk(f, &f->cs, 0, 123456, 777777 + 16, ST_TCP_ACK, "GET /next", 9);
	sendk(f, &f->cs, 1, 777777 + 16, 123456 + 9, ST_TCP_ACK, "HTTP", 4);
	assert_log(f, "open 1 joined guessed;data 1 1 0+16;data 1 0 0+9;data 1 1 16+4;");
	assert_stream(f, 1, 0, "GET /next", 9);
	assert_stream(f, 1, 1, "tail of responseHTTP", 20);
	st = stats(f);
	assert_int_equal(st.conns_joined, 1);
	assert_int_equal(st.gaps, 0);
	assert_all_freed(f);
}

/* A reload's new port list orients the connections that start after it. */
static void t_set_ports(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { 0 };
	const uint16_t now80[] = { 80 };

	f->ports[0] = 8080; /* not this connection's server port: the first sender would lead */
	cfg.ports = f->ports;
	cfg.n_ports = 1;
	fx_config(f, &cfg);
	f->ports[0] = 1; /* the engine kept its own copy */
	assert_int_equal(st_reasm__set_ports(f->r, now80, 1), 0);
	sendk(f, &f->cs, 1, 777777, 123456, ST_TCP_ACK, "tail of response", 16);
	assert_log(f, "open 1 joined guessed;data 1 1 0+16;");
	assert_int_equal(st_reasm__set_ports(f->r, NULL, 0), 0);
	assert_all_freed(f);
}

/* Without SYN and without a port list, the first sender is the client. */
static void t_direction_first_sender(void **state)
{
	struct fx *f = *state;
	struct rec *x = &f->rec;

	sendk(f, &f->cs, 1, 10, 20, ST_TCP_ACK, "hello", 5);
	assert_log(f, "open 1 joined guessed;data 1 0 0+5;");
	(void)x;
	assert_all_freed(f);
}

/* A SYN-ACK seen without its SYN still tells both sides and both starts. */
static void t_direction_synack(void **state)
{
	struct fx *f = *state;

	sendk(f, &f->cs, 1, SISN, CISN + 1, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	sendk(f, &f->cs, 0, CISN + 1 + 2, SISN + 1, ST_TCP_ACK, "cd", 2);
	sendk(f, &f->cs, 0, CISN + 1, SISN + 1, ST_TCP_ACK, "ab", 2);
	assert_log(f, "open 1;data 1 0 0+2;data 1 0 2+2;");
	assert_all_freed(f);
}

/* Live capture says who sent a segment: dir = ST_DIR_OUT means the server. */
static void t_direction_live(void **state)
{
	struct fx *f = *state;
	struct st_segment s;
	struct st_reasm_stats st;

	memset(&s, 0, sizeof(s));
	s.key = f->cs; /* 10.0.0.1:40000 -> 10.0.0.2:80, but the kernel says it is outgoing */
	s.ts_ns = f->now;
	s.seq = 1;
	s.flags = ST_TCP_ACK;
	s.dir = ST_DIR_OUT;
	s.data = (const uint8_t *)"x";
	s.len = 1;
	st_reasm__feed(f->r, &s);
	assert_log(f, "open 1 joined;data 1 1 0+1;");
	st = stats(f);
	assert_int_equal(st.conns_joined, 1);
	assert_all_freed(f);
}

/* After a close, a stray ACK does not open a connection; a new SYN does. */
static void t_reuse_after_close(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, ST_TCP_FIN, "one");
	tx(f, 1, SISN + 1, ST_TCP_FIN, "1");
	tx(f, 0, CISN + 5, 0, NULL);
	tx(f, 0, CISN + 1, ST_TCP_FIN, "one"); /* a late retransmission */
	tx(f, 0, 90000, ST_TCP_SYN, NULL);
	sendk(f, &f->cs, 1, 70000, 90001, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	tx(f, 0, 90001, 0, "two");
	assert_log(f, "open 1;data 1 0 0+3;end 1 0 fin;data 1 1 0+1;end 1 1 fin;close 1 fin;"
		      "open 2;data 2 0 0+3;");
	assert_stream(f, 1, 0, "one", 3);
	assert_stream(f, 2, 0, "two", 3);
	st = stats(f);
	assert_int_equal(st.conns, 2);
	assert_int_equal(st.retrans_bytes, 3);
	assert_all_freed(f);
}

/* TIME_WAIT reuse: a SYN with a new ISN while the old one is still finishing. */
static void t_reuse_time_wait(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "old");
	tx(f, 0, CISN + 4, ST_TCP_FIN, NULL);
	tx(f, 0, CISN, ST_TCP_SYN, NULL); /* the old SYN again: the same connection */
	tx(f, 0, CISN + 1000000, ST_TCP_SYN, NULL);
	tx(f, 0, CISN + 1000001, 0, "new");
	assert_log(f, "open 1;data 1 0 0+3;end 1 0 fin;end 1 1 reused;close 1 reused;"
		      "open 2;data 2 0 0+3;");
	st = stats(f);
	assert_int_equal(st.conns, 2);
	assert_int_equal(st.conns_reused, 1);
	assert_all_freed(f);
}

/* ST_SEG_LOSS: the capture knows it lost bytes; the gap is reported at once. */
static void t_capture_loss(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 1, SISN + 1, 0, "abcd");
	loss(f, 1, SISN + 5, 1000);
	tx(f, 1, SISN + 1005, 0, "efgh");
	/* a loss ahead of a hole is kept in place and reported when reached */
	loss(f, 1, SISN + 1019, 5);
	tx(f, 1, SISN + 1024, 0, "tail");
	tx(f, 1, SISN + 1009, 0, "0123456789");
	assert_log(f, "open 1;data 1 1 0+4;gap 1 1 4+1000 capture-loss;data 1 1 1004+4;"
		      "data 1 1 1008+10;gap 1 1 1018+5 capture-loss;data 1 1 1023+4;");
	st = stats(f);
	assert_int_equal(st.gaps, 2);
	assert_int_equal(st.gap_bytes, 1005);
	assert_int_equal(st.loss_bytes, 1005);
	assert_int_equal(f->rec.len[1][1], 1027);
	assert_all_freed(f);
}

/* Headers-only copy policy: a segment's first bytes, then its rest elided (st_segment.elided),
 * as the tap's record says (ST_RF_ELIDED). */
static void headers_only(struct fx *f, int dir, uint32_t seq, uint8_t flags, const char *head,
			 uint32_t elided)
{
	struct st_segment s;

	memset(&s, 0, sizeof(s));
	s.key = f->cs;
	if (dir) {
		s.key.src = f->cs.dst;
		s.key.dst = f->cs.src;
		s.key.sport = f->cs.dport;
		s.key.dport = f->cs.sport;
	}
	f->now += MS;
	s.ts_ns = f->now;
	s.seq = seq;
	s.flags = flags | ST_TCP_ACK;
	s.kind = ST_SEG_DATA;
	s.dir = (int8_t)dir;
	s.len = (uint32_t)strlen(head);
	s.data = (const uint8_t *)head;
	s.elided = elided;
	assert_int_equal(st_reasm__feed(f->r, &s), 0);
}

/* Bytes left out by the copy policy are a gap of their own kind: exact, in place, never a
 * loss (not in gaps, gap_bytes, loss_bytes, conn gap_bytes), even when out of order. */
static void t_elided_headers_only(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	headers_only(f, 1, SISN + 1, 0, "HTTP/1.1 200", 1000);
	/* out of order: the third segment first, its elided tail waits in place */
	headers_only(f, 1, SISN + 1 + 2012, ST_TCP_FIN, "xy", 98);
	headers_only(f, 1, SISN + 1 + 1012, 0, "body", 996);
	assert_log(f, "open 1;data 1 1 0+12;gap 1 1 12+1000 elided;data 1 1 1012+4;"
		      "gap 1 1 1016+996 elided;data 1 1 2012+2;gap 1 1 2014+98 elided;end 1 1 fin;");
	assert_int_equal(f->rec.len[1][1], 2112);
	st = stats(f);
	assert_int_equal(st.gaps, 0);
	assert_int_equal(st.gap_bytes, 0);
	assert_int_equal(st.loss_bytes, 0);
	assert_int_equal(st.elided_bytes, 2094);
	assert_int_equal(st.bytes, 18);
	/* a real loss next to elided bytes is still a loss */
	loss(f, 0, CISN + 1, 10);
	st = stats(f);
	assert_int_equal(st.loss_bytes, 10);
	assert_int_equal(st.elided_bytes, 2094);
	assert_all_freed(f);
}

/* Copy policy "none": only SYN/FIN/RST come (elided_before); what they and the peer's ACKs
 * prove existed is elided, never a gap that waits or a loss. */
static void t_elided_no_payload(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;
	struct st_segment s;

	tx(f, 0, CISN, ST_TCP_SYN, NULL);
	memset(&s, 0, sizeof(s));
	s.key.src = f->cs.dst;
	s.key.dst = f->cs.src;
	s.key.sport = f->cs.dport;
	s.key.dport = f->cs.sport;
	s.seq = SISN;
	s.ack = CISN + 1;
	s.flags = ST_TCP_SYN | ST_TCP_ACK;
	s.dir = ST_DIR_OUT;
	s.elided_before = 1;
	f->now += MS;
	s.ts_ns = f->now;
	assert_int_equal(st_reasm__feed(f->r, &s), 0);
	/* the client's next request acknowledges 300 response bytes never copied */
	sendk(f, &f->cs, 0, CISN + 1, SISN + 1 + 300, ST_TCP_ACK | ST_TCP_PSH, "GET /", 5);
	/* no wait-gap for them, however long */
	st_reasm__tick(f->r, f->now + 3 * ST_REASM_GAP_WAIT_DEFAULT_NS);
	/* the server's FIN after 500 bytes in all */
	s.seq = SISN + 1 + 500;
	s.flags = ST_TCP_FIN | ST_TCP_ACK;
	s.ack = CISN + 6;
	f->now += 4 * ST_REASM_GAP_WAIT_DEFAULT_NS;
	s.ts_ns = f->now;
	assert_int_equal(st_reasm__feed(f->r, &s), 0);
	assert_log(f, "open 1;data 1 0 0+5;gap 1 1 0+300 elided;gap 1 1 300+200 elided;"
		      "end 1 1 fin;");
	st = stats(f);
	assert_int_equal(st.gaps, 0);
	assert_int_equal(st.gap_bytes, 0);
	assert_int_equal(st.loss_bytes, 0);
	assert_int_equal(st.elided_bytes, 500);
	assert_all_freed(f);
}

/* Missing bytes: a gap after gap_wait without progress, exact length, and on. */
static void t_gap_after_wait(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "abc");
	tx(f, 0, CISN + 1 + 1003, 0, "xyz"); /* 1000 bytes never come */
	st_reasm__tick(f->r, f->now + ST_REASM_GAP_WAIT_DEFAULT_NS - MS);
	assert_log(f, "open 1;data 1 0 0+3;");
	st_reasm__tick(f->r, f->now + ST_REASM_GAP_WAIT_DEFAULT_NS);
	assert_log(f, "open 1;data 1 0 0+3;gap 1 0 3+1000 timeout;data 1 0 1003+3;");
	f->now += ST_REASM_GAP_WAIT_DEFAULT_NS;
	tx(f, 0, CISN + 1 + 1006, 0, "!");
	tx(f, 0, CISN + 1 + 500, 0, "too late"); /* inside the gap: already reported */
	assert_int_equal(f->rec.len[1][0], 1007);
	assert_memory_equal(f->rec.buf[1][0], "abc", 3);
	assert_memory_equal(f->rec.buf[1][0] + 1003, "xyz!", 4);
	st = stats(f);
	assert_int_equal(st.gaps, 1);
	assert_int_equal(st.gap_bytes, 1000);
	assert_int_equal(st.retrans_bytes, 8);
	assert_all_freed(f);
}

/* Ongoing progress keeps a hole far ahead from firing (a stray segment). */
static void t_gap_wait_restarts_on_progress(void **state)
{
	struct fx *f = *state;
	int i;

	handshake(f);
	tx(f, 0, CISN + 1 + 100, 0, "Z");
	for (i = 0; i < 10; i++) {
		tx(f, 0, CISN + 1 + i * 10, 0, "0123456789");
		f->now += SEC; /* 1 s between segments, less than the 2 s wait */
	}
	assert_int_equal(stats(f).gaps, 0);
	assert_int_equal(f->rec.len[1][0], 101);
	assert_all_freed(f);
}

/* The peer acknowledged bytes the capture never saw: a gap after the wait. */
static void t_gap_from_ack(void **state)
{
	struct fx *f = *state;

	handshake(f);
	tx(f, 1, SISN + 1, 0, "0123456789");
	sendk(f, &f->cs, 0, CISN + 1, SISN + 1 + 30, ST_TCP_ACK, NULL, 0);
	st_reasm__tick(f->r, f->now + ST_REASM_GAP_WAIT_DEFAULT_NS);
	tx(f, 1, SISN + 31, 0, "more");
	assert_log(f, "open 1;data 1 1 0+10;gap 1 1 10+20 timeout;data 1 1 30+4;");
	assert_all_freed(f);
}

/* The ACK of a FIN the capture lost is not a lost byte. */
static void t_ack_of_lost_fin(void **state)
{
	struct fx *f = *state;

	handshake(f);
	tx(f, 1, SISN + 1, 0, "bye");
	/* the server's FIN (seq SISN + 4) is lost; the client acknowledges it */
	sendk(f, &f->cs, 0, CISN + 1, SISN + 5, ST_TCP_ACK | ST_TCP_FIN, NULL, 0);
	st_reasm__tick(f->r, f->now + 10 * SEC);
	st_reasm__flush(f->r);
	assert_log(f, "open 1;data 1 1 0+3;end 1 0 fin;end 1 1 flush;close 1 flush;");
	assert_int_equal(stats(f).gaps, 0);
	assert_all_freed(f);
}

/* End of input with a hole: the gap, then the buffered bytes, then the end. */
static void t_gap_at_flush(void **state)
{
	struct fx *f = *state;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "ab");
	tx(f, 0, CISN + 1 + 4, 0, "ef");
	st_reasm__flush(f->r);
	assert_log(f, "open 1;data 1 0 0+2;gap 1 0 2+2 close;data 1 0 4+2;end 1 0 flush;"
		      "end 1 1 flush;close 1 flush;");
	assert_all_freed(f);
}

/* FIN behind a hole: once the wait is over the gap goes out and the close follows. */
static void t_gap_before_fin(void **state)
{
	struct fx *f = *state;

	handshake(f);
	tx(f, 0, CISN + 1 + 2, ST_TCP_FIN, "cd");
	tx(f, 1, SISN + 1, ST_TCP_FIN, NULL);
	assert_log(f, "open 1;end 1 1 fin;");
	st_reasm__tick(f->r, f->now + ST_REASM_GAP_WAIT_DEFAULT_NS);
	assert_log(f, "open 1;end 1 1 fin;gap 1 0 0+2 timeout;data 1 0 2+2;end 1 0 fin;"
		      "close 1 fin;");
	assert_all_freed(f);
}

/* The per-connection out-of-order cap turns the oldest hole into a gap. */
static void t_ooo_cap(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { .ooo_max = 10 };
	struct st_reasm_stats st;

	fx_config(f, &cfg);
	handshake(f);
	tx(f, 0, CISN + 1 + 2, 0, "cdefgh");    /* hole [0,2), 6 held */
	tx(f, 0, CISN + 1 + 10, 0, "klm");      /* hole [8,10), 9 held */
	tx(f, 0, CISN + 1 + 15, 0, "pq");       /* 11 > 10: [0,2) lost */
	assert_log(f, "open 1;gap 1 0 0+2 ooo-cap;data 1 0 2+6;");
	/* a segment larger than the cap alone: everything before it is given up */
	tx(f, 0, CISN + 1 + 30, 0, "0123456789ABCDEF");
	assert_log(f, "open 1;gap 1 0 0+2 ooo-cap;data 1 0 2+6;gap 1 0 8+2 ooo-cap;"
		      "data 1 0 10+3;gap 1 0 13+2 ooo-cap;data 1 0 15+2;gap 1 0 17+13 ooo-cap;"
		      "data 1 0 30+16;");
	st = stats(f);
	assert_int_equal(st.gap_bytes, 2 + 2 + 2 + 13);
	assert_int_equal(st.bytes, 6 + 3 + 2 + 16);
	assert_all_freed(f);
}

/* A full out-of-order buffer never turns bytes in hand into a gap. */
static void t_ooo_cap_in_order_overlap(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { .ooo_max = 10 };

	fx_config(f, &cfg);
	handshake(f);
	tx(f, 0, CISN + 1 + 5, 0, "FGHIJKLM");  /* [5,13) held: 8 of 10 */
	tx(f, 0, CISN + 1, 0, "abcdefgh");      /* in order, overlaps the held bytes */
	assert_log(f, "open 1;data 1 0 0+5;data 1 0 5+8;");
	assert_stream(f, 1, 0, "abcdeFGHIJKLM", 13);
	assert_int_equal(stats(f).gaps, 0);
	assert_int_equal(stats(f).overlaps, 1);
	assert_all_freed(f);
}

/* Over the global cap the least recently active connection goes first. */
static void t_mem_cap_evicts_oldest(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { 0 };
	struct st_reasm_stats st;
	struct st_flow_key k2;
	static uint8_t big[3000];

	fx_config(f, &cfg);
	cfg.max_mem = f->mem0 + 5000; /* room for one connection's buffer, not two */
	fx_config(f, &cfg);
	key4(&k2, "10.0.0.3", 40001, "10.0.0.2", 80);
	memset(big, 'B', sizeof(big));
	handshake(f);
	sendk(f, &f->cs, 0, CISN + 1 + 100, 0, ST_TCP_ACK, big, sizeof(big)); /* a hole */
	sendk(f, &k2, 0, 1, 0, ST_TCP_SYN, NULL, 0);
	sendk(f, &k2, 0, 2 + 10, 0, ST_TCP_ACK, big, sizeof(big)); /* conn 2: over the cap */
	assert_log(f, "open 1;open 2;gap 1 0 0+100 mem-cap;data 1 0 100+3000;end 1 0 evicted;"
		      "end 1 1 evicted;close 1 evicted;");
	st = stats(f);
	assert_int_equal(st.conns_evicted, 1);
	assert_true(st.mem <= cfg.max_mem);
	assert_all_freed(f);
}

static void t_idle_timeout(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "zz");
	st_reasm__tick(f->r, f->now + ST_REASM_IDLE_DEFAULT_NS - 1);
	assert_log(f, "open 1;data 1 0 0+2;");
	st_reasm__tick(f->r, f->now + ST_REASM_IDLE_DEFAULT_NS);
	assert_log(f, "open 1;data 1 0 0+2;end 1 0 timeout;end 1 1 timeout;close 1 timeout;");
	st = stats(f);
	assert_int_equal(st.conns_timeout, 1);
	assert_int_equal(st.conns_active, 0);
	assert_all_freed(f);
}

/* 64 KB GSO segments and 1-byte ones, in and out of order. */
static void t_big_and_tiny_segments(void **state)
{
	struct fx *f = *state;
	enum { BIG = 65536, N = 4 };
	uint8_t *want = malloc(BIG * N + 3);
	uint32_t i;

	assert_non_null(want);
	for (i = 0; i < BIG * N + 3; i++)
		want[i] = (uint8_t)(i * 7 + (i >> 16));
	handshake(f);
	sendk(f, &f->cs, 1, SISN + 1 + 2 * BIG, 0, ST_TCP_ACK, want + 2 * BIG, BIG);
	sendk(f, &f->cs, 1, SISN + 1, 0, ST_TCP_ACK, want, BIG);
	sendk(f, &f->cs, 1, SISN + 1 + 3 * BIG, 0, ST_TCP_ACK, want + 3 * BIG, BIG);
	sendk(f, &f->cs, 1, SISN + 1 + BIG, 0, ST_TCP_ACK, want + BIG, BIG);
	for (i = 0; i < 3; i++)
		sendk(f, &f->cs, 1, SISN + 1 + N * BIG + 2 - i, 0, ST_TCP_ACK,
		      want + N * BIG + 2 - i, 1);
	assert_stream(f, 1, 1, want, BIG * N + 3);
	assert_int_equal(stats(f).gaps, 0);
	free(want);
	assert_all_freed(f);
}

static void t_ipv6(void **state)
{
	struct fx *f = *state;

	key6(&f->cs, "2001:db8::1", 50000, "2001:db8::2", 443);
	handshake(f);
	tx(f, 0, CISN + 1 + 3, 0, "def");
	tx(f, 0, CISN + 1, 0, "abc");
	tx(f, 1, SISN + 1, ST_TCP_FIN, "ok");
	assert_log(f, "open 1;data 1 0 0+3;data 1 0 3+3;data 1 1 0+2;end 1 1 fin;");
	assert_stream(f, 1, 0, "abcdef", 6);
	assert_all_freed(f);
}

/* Data on a SYN (TCP Fast Open) starts right after the ISN. */
static void t_syn_with_data(void **state)
{
	struct fx *f = *state;

	sendk(f, &f->cs, 0, CISN, 0, ST_TCP_SYN, "GET", 3);
	sendk(f, &f->cs, 1, SISN, CISN + 4, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	tx(f, 0, CISN + 4, 0, " /");
	assert_log(f, "open 1;data 1 0 0+3;data 1 0 3+2;");
	assert_all_freed(f);
}

/* A stray segment far ahead (an earlier connection's) is dropped; the stream goes on. */
static void t_out_of_window(void **state)
{
	struct fx *f = *state;
	struct st_reasm_stats st;

	handshake(f);
	tx(f, 0, CISN + 1, 0, "abc");
	tx(f, 0, CISN + 1 + (100u << 20), 0, "stray");   /* 100 MiB ahead */
	sendk(f, &f->cs, 1, SISN + 1, CISN + 1 + (200u << 20), ST_TCP_ACK, NULL, 0); /* bogus ACK */
	tx(f, 0, CISN + 4, ST_TCP_FIN, "def");
	tx(f, 1, SISN + 1, ST_TCP_FIN, NULL);
	st_reasm__tick(f->r, f->now + 10 * SEC);
	assert_log(f, "open 1;data 1 0 0+3;data 1 0 3+3;end 1 0 fin;end 1 1 fin;close 1 fin;");
	st = stats(f);
	assert_int_equal(st.oow_segs, 1);
	assert_int_equal(st.drop_bytes, 5);
	assert_int_equal(st.gaps, 0);
	assert_all_freed(f);
}

/* A loss larger than the window: once the stream stalls and segments out there keep
 * coming, the engine reports the gap and follows them. */
static void t_resync_after_huge_loss(void **state)
{
	struct fx *f = *state;
	uint32_t far = CISN + 1 + 3 + (100u << 20);

	handshake(f);
	tx(f, 0, CISN + 1, 0, "abc");
	f->now += ST_REASM_GAP_WAIT_DEFAULT_NS;
	tx(f, 0, far, 0, "XY");   /* first one out there: remembered, dropped */
	tx(f, 0, far + 2, 0, "Z"); /* a second, near it, on a stalled stream: resync */
	tx(f, 0, far, 0, "XY");   /* now in the past */
	tx(f, 0, far + 3, 0, "!");
	assert_log(f, "open 1;data 1 0 0+3;gap 1 0 3+104857602 timeout;data 1 0 104857605+1;"
		      "data 1 0 104857606+1;");
	assert_int_equal(stats(f).oow_segs, 1);
	assert_all_freed(f);
}

/* Live capture that lost even its loss reports: a run of segments far ahead, each continuing
 * the last, is the stream itself; the engine follows it without waiting for a stall. */
static void t_resync_on_a_run(void **state)
{
	struct fx *f = *state;
	uint32_t far = CISN + 1 + 3 + (200u << 20);

	handshake(f);
	tx(f, 0, CISN + 1, 0, "abc");
	tx(f, 0, far, 0, "0123");
	tx(f, 0, far + 4, 0, "4567");
	tx(f, 0, far + 8, 0, "89ab");
	tx(f, 0, far + 12, 0, "cdef"); /* the 4th in a row */
	tx(f, 0, far + 16, 0, "!");
	assert_log(f, "open 1;data 1 0 0+3;gap 1 0 3+209715212 timeout;data 1 0 209715215+4;"
		      "data 1 0 209715219+1;");
	assert_int_equal(stats(f).oow_segs, 3);
	assert_int_equal(stats(f).drop_bytes, 12);
	assert_all_freed(f);
}

/* The SYN-ACK seen before its SYN (a capture merging interfaces): the SYN is not a reuse. */
static void t_synack_before_syn(void **state)
{
	struct fx *f = *state;

	sendk(f, &f->cs, 1, SISN, CISN + 1, ST_TCP_SYN | ST_TCP_ACK, NULL, 0);
	tx(f, 0, CISN, ST_TCP_SYN, NULL);
	tx(f, 0, CISN + 1, 0, "hi");
	assert_log(f, "open 1;data 1 0 0+2;");
	assert_int_equal(stats(f).conns, 1);
	assert_all_freed(f);
}

/* Hundreds of thousands of short connections: fast, and all state returned. */
static void t_many_connections(void **state)
{
	struct fx *f = *state;
	struct st_reasm_config cfg = { 0 };
	const struct st_reasm_ops none = { 0 };
	struct st_reasm *r = st_reasm__new(&cfg, &none, NULL);
	struct st_reasm_stats st;
	struct st_segment s;
	struct timespec t0, t1;
	enum { CONNS = 300000 };
	uint32_t i, j;
	double dt;

	assert_non_null(r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&s, 0, sizeof(s));
	s.dir = -1;
	s.data = (const uint8_t *)"GET / HTTP/1.1\r\n\r\n";
	/* all open at once, then each one's request, then all closed */
	for (j = 0; j < 3; j++) {
		for (i = 0; i < CONNS; i++) {
			key4(&s.key, "10.1.0.1", 0, "10.2.0.1", 80);
			s.key.src.a[0] = htonl(0x0a010000u + (i >> 14));
			s.key.sport = 1024 + (i & 16383);
			s.ts_ns = f->now + i;
			s.seq = 100;
			s.flags = j == 0 ? ST_TCP_SYN : j == 1 ? ST_TCP_ACK : ST_TCP_RST;
			s.seq = j == 0 ? 100 : 101;
			s.len = j == 1 ? 18 : 0;
			st_reasm__feed(r, &s);
		}
		if (j == 1) {
			st_reasm__stats(r, &st);
			assert_int_equal(st.conns_active, CONNS);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	st_reasm__stats(r, &st);
	print_message("%u connections, %u segments: %.3f s, peak mem %.1f MiB\n", CONNS, 3 * CONNS,
		      dt, st.mem_peak / 1048576.0);
	assert_int_equal(st.conns, CONNS);
	assert_int_equal(st.bytes, 18ull * CONNS);
	assert_int_equal(st.conns_active, 0);
	st_reasm__flush(r);
	st_reasm__free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_handshake_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(t_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(t_duplicates_and_retransmissions, setup, teardown),
		cmocka_unit_test_setup_teardown(t_overlap_first_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(t_seq_wraparound, setup, teardown),
		cmocka_unit_test_setup_teardown(t_half_close_server_first, setup, teardown),
		cmocka_unit_test_setup_teardown(t_fin_before_data, setup, teardown),
		cmocka_unit_test_setup_teardown(t_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(t_midstream_join, setup, teardown),
		cmocka_unit_test_setup_teardown(t_direction_first_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(t_set_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(t_direction_synack, setup, teardown),
		cmocka_unit_test_setup_teardown(t_direction_live, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reuse_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reuse_time_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(t_capture_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(t_elided_headers_only, setup, teardown),
		cmocka_unit_test_setup_teardown(t_elided_no_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gap_after_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gap_wait_restarts_on_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gap_from_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ack_of_lost_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gap_at_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gap_before_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ooo_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ooo_cap_in_order_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_mem_cap_evicts_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(t_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(t_big_and_tiny_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(t_syn_with_data, setup, teardown),
		cmocka_unit_test_setup_teardown(t_out_of_window, setup, teardown),
		cmocka_unit_test_setup_teardown(t_resync_after_huge_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(t_resync_on_a_run, setup, teardown),
		cmocka_unit_test_setup_teardown(t_synack_before_syn, setup, teardown),
		cmocka_unit_test_setup_teardown(t_many_connections, setup, teardown),
	};

	return cmocka_run_group_tests_name("reasm", tests, NULL, NULL);
}
