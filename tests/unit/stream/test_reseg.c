/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Re-segmentation (reseg.c): a tee stream's connection events, given by hand, become TCP
 * segments, checked one by one (the handshake's numbers, MSS-sized data with PSH on the last,
 * loss segments of at most 1 GiB, FIN and RST, the ACK counting the peer's end, a restart's
 * SYNs just before the next byte), and as a whole: fed to the real reassembly (reasm.h), the
 * segments give back the same bytes, gaps and ends, in a connection it saw open (not
 * joined). An output that wants no segments (emit NULL) keeps the numbers of later ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shadowtap.h"
#include "reasm.h"
#include "reseg.h"

#define SEGS_MAX 64
#define TEXT_MAX (64u << 10)

/* What emit() was given (data copied: it is valid during the call only). */
struct got {
	struct st_segment s[SEGS_MAX];
	uint8_t *data[SEGS_MAX];
	size_t n;
};

static void emit(void *ctx, struct st_segment *s)
{
	struct got *g = ctx;

	assert_true(g->n < SEGS_MAX);
	g->s[g->n] = *s;
	g->data[g->n] = NULL;
	if (s->kind == ST_SEG_DATA && s->len) {
		g->data[g->n] = malloc(s->len);
		assert_non_null(g->data[g->n]);
		memcpy(g->data[g->n], s->data, s->len);
		g->s[g->n].data = g->data[g->n];
	}
	g->n++;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

static struct st_flow_key key(void)
{
	struct st_flow_key k = { 0 };

	k.src.family = 4;
	k.src.a[0] = 0x0100000a; /* 10.0.0.1 */
	k.dst.family = 4;
	k.dst.a[0] = 0x0200000a;
	k.sport = 40000;
	k.dport = 80;
	return k;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)('a' + (seed + i * 7) % 26);
}

/* The client's number from its id alone, the server's from its id and the seed. */
static void test_isn(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg a, b, c;

	(void)state;
	st_reseg_init(&a, &k, 1, 7);
	st_reseg_init(&b, &k, 1, 8);
	st_reseg_init(&c, &k, 2, 7);
	assert_int_equal(a.isn[0], b.isn[0]);
	assert_int_not_equal(a.isn[1], b.isn[1]);
	assert_int_not_equal(a.isn[0], c.isn[0]);
	assert_int_equal(a.isn[0], (uint32_t)(1 * 2654435761u));
	assert_int_equal(a.isn[1], (uint32_t)((1 ^ 7) * 2246822519u));
	assert_int_equal(a.next[0] + a.next[1], 0);
	assert_false(a.ended[0] || a.ended[1]);
}

static void test_handshake(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint32_t ci, si;

	(void)state;
	st_reseg_init(&r, &k, 3, 99);
	ci = r.isn[0];
	si = r.isn[1];
	st_reseg_open(&r, 1000, emit, &g);
	assert_int_equal(g.n, 3);
	/* SYN */
	assert_int_equal(g.s[0].flags, ST_TCP_SYN);
	assert_int_equal(g.s[0].dir, ST_DIR_IN);
	assert_int_equal(g.s[0].seq, ci);
	assert_int_equal(g.s[0].ack, 0);
	assert_memory_equal(&g.s[0].key, &k, sizeof(k));
	/* SYN+ACK: the server's key, its number, the client's SYN acknowledged */
	assert_int_equal(g.s[1].flags, ST_TCP_SYN | ST_TCP_ACK);
	assert_int_equal(g.s[1].dir, ST_DIR_OUT);
	assert_int_equal(g.s[1].seq, si);
	assert_int_equal(g.s[1].ack, ci + 1);
	assert_int_equal(g.s[1].key.sport, 80);
	assert_int_equal(g.s[1].key.dport, 40000);
	assert_int_equal(g.s[1].key.src.a[0], k.dst.a[0]);
	assert_int_equal(g.s[1].key.dst.a[0], k.src.a[0]);
	/* ACK */
	assert_int_equal(g.s[2].flags, ST_TCP_ACK);
	assert_int_equal(g.s[2].seq, ci + 1);
	assert_int_equal(g.s[2].ack, si + 1);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(g.s[i].ts_ns, 1000);
		assert_int_equal(g.s[i].window, ST_RESEG_WINDOW);
		assert_int_equal(g.s[i].kind, ST_SEG_DATA);
		assert_int_equal(g.s[i].len, 0);
	}
	got_free(&g);
	/* nothing to make: nothing made */
	st_reseg_open(&r, 1000, NULL, NULL);
}

/* 3000 bytes: 1448 + 1448 + 104, PSH on the last, numbers consecutive, the bytes the same. */
static void test_data_mss(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint8_t d[3000];
	uint32_t off = 0;

	(void)state;
	fill(d, sizeof(d), 1);
	st_reseg_init(&r, &k, 1, 1);
	st_reseg_data(&r, ST_DIR_IN, d, 10, 5, emit, &g);     /* a request of 10 */
	st_reseg_data(&r, ST_DIR_OUT, d, sizeof(d), 6, emit, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[0].seq, r.isn[0] + 1);
	assert_int_equal(g.s[0].len, 10);
	assert_int_equal(g.s[0].flags, ST_TCP_ACK | ST_TCP_PSH);
	for (size_t i = 1; i < 4; i++) {
		uint32_t want = i < 3 ? ST_RESEG_MSS : 3000 - 2 * ST_RESEG_MSS;

		assert_int_equal(g.s[i].dir, ST_DIR_OUT);
		assert_int_equal(g.s[i].len, want);
		assert_int_equal(g.s[i].seq, r.isn[1] + 1 + off);
		assert_int_equal(g.s[i].ack, r.isn[0] + 1 + 10);
		assert_int_equal(g.s[i].flags, ST_TCP_ACK | (i == 3 ? ST_TCP_PSH : 0));
		assert_memory_equal(g.s[i].data, d + off, want);
		off += want;
	}
	assert_int_equal(r.next[0], 10);
	assert_int_equal(r.next[1], 3000);
	got_free(&g);
	/* an empty piece makes nothing */
	st_reseg_data(&r, ST_DIR_IN, d, 0, 7, emit, &g);
	assert_int_equal(g.n, 0);
}

/* emit NULL: no segment, the numbers advance as if there had been. */
static void test_no_emit_keeps_numbers(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint8_t d[5000];

	(void)state;
	fill(d, sizeof(d), 2);
	st_reseg_init(&r, &k, 4, 4);
	st_reseg_data(&r, ST_DIR_IN, d, sizeof(d), 1, NULL, NULL);
	st_reseg_gap(&r, ST_DIR_IN, 700, 2, NULL, NULL);
	st_reseg_end(&r, ST_DIR_OUT, ST_END_FIN, 3, NULL, NULL);
	st_reseg_data(&r, ST_DIR_IN, d, 1, 4, emit, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.s[0].seq, r.isn[0] + 1 + 5700);
	assert_int_equal(g.s[0].ack, r.isn[1] + 1 + 1); /* the server's end counted */
	assert_true(r.ended[ST_DIR_OUT]);
	got_free(&g);
}

/* A gap of 3 GiB + 5: loss segments of 1 GiB, 1 GiB, 1 GiB, 5; numbers wrap as TCP's do. */
static void test_gap_pieces(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint64_t len = 3ull * ST_RESEG_LOSS_MAX + 5;

	(void)state;
	st_reseg_init(&r, &k, 9, 9);
	st_reseg_gap(&r, ST_DIR_OUT, len, 77, emit, &g);
	assert_int_equal(g.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(g.s[i].kind, ST_SEG_LOSS);
		assert_int_equal(g.s[i].flags, ST_TCP_ACK);
		assert_int_equal(g.s[i].dir, ST_DIR_OUT);
		assert_int_equal(g.s[i].len, i < 3 ? ST_RESEG_LOSS_MAX : 5);
		assert_int_equal(g.s[i].seq,
				 (uint32_t)(r.isn[1] + 1 + i * (uint64_t)ST_RESEG_LOSS_MAX));
		assert_null(g.s[i].data);
	}
	assert_int_equal(r.next[1], len);
	got_free(&g);
}

/* FIN+ACK, RST, and an end of another reason that makes nothing; each counted in the ACKs. */
static void test_ends(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint8_t d[4] = "abcd";

	(void)state;
	st_reseg_init(&r, &k, 5, 5);
	st_reseg_data(&r, ST_DIR_IN, d, 4, 1, emit, &g);
	st_reseg_end(&r, ST_DIR_IN, ST_END_FIN, 2, emit, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.s[1].flags, ST_TCP_FIN | ST_TCP_ACK);
	assert_int_equal(g.s[1].seq, r.isn[0] + 1 + 4);
	assert_int_equal(g.s[1].len, 0);
	/* the server's answer acknowledges the FIN */
	st_reseg_data(&r, ST_DIR_OUT, d, 2, 3, emit, &g);
	assert_int_equal(g.s[2].ack, r.isn[0] + 1 + 4 + 1);
	st_reseg_end(&r, ST_DIR_OUT, ST_END_RST, 4, emit, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[3].flags, ST_TCP_RST);
	assert_int_equal(g.s[3].dir, ST_DIR_OUT);
	assert_int_equal(g.s[3].seq, r.isn[1] + 1 + 2);
	got_free(&g);

	st_reseg_init(&r, &k, 6, 6);
	st_reseg_end(&r, ST_DIR_IN, ST_END_TIMEOUT, 5, emit, &g);
	st_reseg_end(&r, ST_DIR_OUT, ST_END_FLUSH, 5, emit, &g);
	assert_int_equal(g.n, 0);
	assert_true(r.ended[0] && r.ended[1]);
	st_reseg_seg(&r, &g.s[0], ST_DIR_IN, ST_TCP_ACK, 6);
	assert_int_equal(g.s[0].ack, r.isn[1] + 1 + 1);
}

/* A restart: RST, then SYNs one before each direction's next byte, then the ACK. */
static void test_restart(void **state)
{
	struct st_flow_key k = key();
	struct st_reseg r;
	struct got g = { 0 };
	uint8_t d[100];

	(void)state;
	fill(d, sizeof(d), 3);
	st_reseg_init(&r, &k, 7, 7);
	st_reseg_data(&r, ST_DIR_IN, d, 100, 1, NULL, NULL);
	st_reseg_gap(&r, ST_DIR_OUT, 50, 1, NULL, NULL);
	st_reseg_restart(&r, 9, emit, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[0].flags, ST_TCP_RST);
	assert_int_equal(g.s[0].seq, r.isn[0] + 101);
	assert_int_equal(g.s[1].flags, ST_TCP_SYN);
	assert_int_equal(g.s[1].seq, r.isn[0] + 100);
	assert_int_equal(g.s[1].ack, 0);
	assert_int_equal(g.s[2].flags, ST_TCP_SYN | ST_TCP_ACK);
	assert_int_equal(g.s[2].dir, ST_DIR_OUT);
	assert_int_equal(g.s[2].seq, r.isn[1] + 50);
	assert_int_equal(g.s[2].ack, r.isn[0] + 101);
	assert_int_equal(g.s[3].flags, ST_TCP_ACK);
	assert_int_equal(g.s[3].seq, r.isn[0] + 101);
	assert_int_equal(g.s[3].ack, r.isn[1] + 51);
	/* the numbers themselves do not move */
	assert_int_equal(r.next[0], 100);
	assert_int_equal(r.next[1], 50);
	got_free(&g);
}

/* ---- the whole: through the real reassembly ------------------------------------------- */

struct view {
	int opens, closes;
	uint32_t flags;
	char text[2][TEXT_MAX]; /* data as is, gaps as "<gap LEN>" */
	size_t len[2];
	enum st_reasm_end ends[2];
	bool ended[2];
};

static void v_add(struct view *v, int dir, const char *p, size_t n)
{
	assert_true(v->len[dir] + n < TEXT_MAX);
	memcpy(v->text[dir] + v->len[dir], p, n);
	v->len[dir] += n;
	v->text[dir][v->len[dir]] = 0;
}

static void v_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct view *v = ctx;

	v->opens++;
	v->flags = c->flags;
}

static void v_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		   uint32_t len, uint64_t ts)
{
	v_add(ctx, dir, (const char *)d, len);
}

static void v_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		  enum st_reasm_gap_why why, uint64_t ts)
{
	char b[64];

	v_add(ctx, dir, b, (size_t)snprintf(b, sizeof(b), "<gap %llu>", (unsigned long long)len));
}

static void v_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	struct view *v = ctx;

	v->ends[dir] = why;
	v->ended[dir] = true;
}

static void v_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct view *v = ctx;

	v->closes++;
}

static const struct st_reasm_ops v_ops = {
	.open = v_open, .data = v_data, .gap = v_gap, .end = v_end, .close = v_close,
};

static void to_reasm(void *ctx, struct st_segment *s)
{
	assert_int_equal(st_reasm__feed(ctx, s), 0);
}

/* A pipelined exchange in pieces larger and smaller than the MSS, a gap in the answer, FINs:
 * reassembly sees a connection opened by its SYN, the same bytes, the gap, both FINs. */
static void test_through_reasm(void **state)
{
	static struct view v;
	struct st_reasm_config cfg = { 0 };
	struct st_flow_key k = key();
	struct st_reasm *ra;
	struct st_reseg r;
	static uint8_t body[5000];
	char want[2][TEXT_MAX];
	const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	memset(&v, 0, sizeof(v));
	fill(body, sizeof(body), 4);
	ra = st_reasm__new(&cfg, &v_ops, &v);
	assert_non_null(ra);
	st_reseg_init(&r, &k, 1, 12345);
	st_reseg_open(&r, 1000, to_reasm, ra);
	st_reseg_data(&r, ST_DIR_IN, (const uint8_t *)req, (uint32_t)strlen(req), 2000, to_reasm,
		      ra);
	st_reseg_data(&r, ST_DIR_OUT, body, 3000, 3000, to_reasm, ra);
	st_reseg_gap(&r, ST_DIR_OUT, 1234, 4000, to_reasm, ra);
	st_reseg_data(&r, ST_DIR_OUT, body + 3000, 2000, 5000, to_reasm, ra);
	st_reseg_end(&r, ST_DIR_IN, ST_END_FIN, 6000, to_reasm, ra);
	st_reseg_end(&r, ST_DIR_OUT, ST_END_FIN, 7000, to_reasm, ra);
	st_reasm__flush(ra);
	st_reasm__free(ra);

	assert_int_equal(v.opens, 1);
	assert_int_equal(v.closes, 1);
	assert_false(v.flags & ST_REASM_F_JOINED);
	snprintf(want[0], sizeof(want[0]), "%s", req);
	memcpy(want[1], body, 3000);
	snprintf(want[1] + 3000, sizeof(want[1]) - 3000, "<gap 1234>");
	memcpy(want[1] + strlen(want[1]), body + 3000, 2000);
	want[1][3000 + strlen("<gap 1234>") + 2000] = 0;
	assert_string_equal(v.text[0], want[0]);
	assert_string_equal(v.text[1], want[1]);
	assert_true(v.ended[0] && v.ended[1]);
	assert_int_equal(v.ends[0], ST_END_FIN);
	assert_int_equal(v.ends[1], ST_END_FIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isn),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_data_mss),
		cmocka_unit_test(test_no_emit_keeps_numbers),
		cmocka_unit_test(test_gap_pieces),
		cmocka_unit_test(test_ends),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_through_reasm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
