/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kafka messages of the tee stream (kafka_msg.h): records from the stream encoder (record
 * mode) batched per connection into messages and read back give the same events per
 * connection; a message read alone gives its connection, joined, with what it missed as a
 * gap; messages stay within the size bound; a lost message is a gap of its exact length, a
 * duplicate nothing, a damaged one an error and no event; --kafka-opt refuses secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "kafka.h"
#include "kafka_msg.h"
#include "stream.h"

#define NCONN 4
#define LOG_MAX (1u << 20)
#define MSGS_MAX 4096

/* Events per connection (by client port 1000 + i), as text. */
struct logs {
	char *s[NCONN];
	size_t len[NCONN];
	unsigned opens, joined, closes;
};

static void logf_(struct logs *l, unsigned port, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct logs *l, unsigned port, const char *fmt, ...)
{
	unsigned i = port - 1000;
	va_list ap;
	int n;

	assert_true(i < NCONN);
	if (!l->s[i]) {
		l->s[i] = calloc(1, LOG_MAX);
		assert_non_null(l->s[i]);
	}
	va_start(ap, fmt);
	n = vsnprintf(l->s[i] + l->len[i], LOG_MAX - l->len[i], fmt, ap);
	va_end(ap);
	assert_true(n > 0 && l->len[i] + (size_t)n < LOG_MAX);
	l->len[i] += (size_t)n;
}

static void logs_free(struct logs *l)
{
	for (int i = 0; i < NCONN; i++)
		free(l->s[i]);
	memset(l, 0, sizeof(*l));
}

static void d_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct logs *l = ctx;

	l->opens++;
	if (c->flags & ST_REASM_F_JOINED)
		l->joined++;
	logf_(l, c->key.sport, "open %u ts%lu\n", c->key.dport, (unsigned long)ts);
}

static void d_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		   uint32_t len, uint64_t ts)
{
	logf_(ctx, c->key.sport, "data %d %lu %u %08lx ts%lu\n", dir, (unsigned long)off, len,
	      crc32(0, data, len), (unsigned long)ts);
}

static void d_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		  enum st_reasm_gap_why why, uint64_t ts)
{
	logf_(ctx, c->key.sport, "gap %d %lu %lu w%u\n", dir, (unsigned long)off,
	      (unsigned long)len, (unsigned)why);
}

static void d_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why, uint64_t ts)
{
	logf_(ctx, c->key.sport, "end %d w%u\n", dir, (unsigned)why);
}

static void d_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	((struct logs *)ctx)->closes++;
	logf_(ctx, c->key.sport, "close w%u\n", (unsigned)why);
}

static void d_mark(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	logf_(ctx, c->key.sport, "mark %lu/%lu ts%lu\n", (unsigned long)(c->bytes[0] + c->gap_bytes[0]),
	      (unsigned long)(c->bytes[1] + c->gap_bytes[1]), (unsigned long)ts);
}

static const struct st_stream_ops ops = {
	.conn = { .open = d_open, .data = d_data, .gap = d_gap, .end = d_end, .close = d_close },
	.mark = d_mark,
};

/* The messages the batcher made. */
struct msg {
	uint8_t *b;
	size_t len;
	char key[ST_KMSG_KEY_MAX];
	uint32_t records;
	uint64_t data;
};

struct sink {
	struct msg m[MSGS_MAX];
	unsigned n;
	size_t max_len;
	bool refuse;
};

static int emit(void *ctx, const char *key, size_t klen, const uint8_t *b, size_t len,
		uint32_t records, uint64_t data)
{
	struct sink *s = ctx;
	struct msg *m;

	if (s->refuse)
		return -1;
	assert_true(s->n < MSGS_MAX);
	m = &s->m[s->n++];
	m->b = malloc(len);
	assert_non_null(m->b);
	memcpy(m->b, b, len);
	m->len = len;
	assert_true(klen < sizeof(m->key));
	memcpy(m->key, key, klen);
	m->records = records;
	m->data = data;
	if (len > s->max_len)
		s->max_len = len;
	return 0;
}

static void sink_free(struct sink *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->m[i].b);
	s->n = 0;
}

static const struct st_stream_rec_ops bops = {
	.record = (int (*)(void *, const uint8_t *, size_t, const uint8_t *, size_t))
		st_kmsg_batcher__record,
	.flush = (int (*)(void *))st_kmsg_batcher__flush,
};

static struct st_reasm_conn conn(unsigned i)
{
	struct st_reasm_conn c = { 0 };

	c.id = 10 + i;
	c.key.src.family = c.key.dst.family = 4;
	c.key.src.a[0] = 10;
	c.key.dst.a[0] = 10;
	c.key.dst.a[3] = 1;
	c.key.sport = (uint16_t)(1000 + i);
	c.key.dport = 8080;
	return c;
}

/*
 * The workload, to enc (record mode: batched; or a plain log writer): NCONN connections
 * interleaved, requests of varied sizes (up to 300 KiB: several messages), a gap, ends and
 * closes; a flush in the middle (the tee's tick).
 */
static void workload(struct st_stream_enc *e, uint8_t *buf)
{
	uint64_t off[NCONN][2] = { { 0 } };
	uint64_t ts = 1000;

	for (size_t k = 0; k < 300u << 10; k++)
		buf[k] = (uint8_t)(k * 7 + k / 1000);
	for (unsigned i = 0; i < NCONN; i++) {
		struct st_reasm_conn c = conn(i);

		assert_int_equal(st_stream_enc__open(e, &c, ts++), 0);
	}
	for (unsigned round = 0; round < 12; round++) {
		for (unsigned i = 0; i < NCONN; i++) {
			uint32_t n = (uint32_t)((round * 7919 + i * 104729) % (300u << 10)) + 1;
			int dir = (round + i) & 1;

			/* a request starts: an exchange boundary (the tee's MARK) */
			if (dir == 0)
				assert_int_equal(st_stream_enc__mark(e, 10 + i, off[i][0], off[i][1],
								     ts++), 0);
			assert_int_equal(st_stream_enc__data(e, 10 + i, dir, off[i][dir], buf, n,
							     ts++), 0);
			off[i][dir] += n;
			if (round == 5 && i == 1) {
				assert_int_equal(st_stream_enc__gap(e, 11, dir, off[i][dir], 777, 0,
								    ts++), 0);
				off[i][dir] += 777;
			}
		}
		if (round == 6)
			assert_int_equal(st_stream_enc__flush(e), 0);
	}
	for (unsigned i = 0; i < NCONN; i++) {
		assert_int_equal(st_stream_enc__end(e, 10 + i, 0, ST_END_FIN, ts++), 0);
		assert_int_equal(st_stream_enc__end(e, 10 + i, 1, ST_END_FIN, ts++), 0);
		assert_int_equal(st_stream_enc__close(e, 10 + i, ST_END_FIN, ts++), 0);
	}
}

/* The reference: the same workload through a whole tee stream. */
static int ref_emit(void *ctx, const uint8_t *frame, size_t len)
{
	return st_stream_dec__feed(ctx, frame, len);
}

static void reference(struct logs *l, uint8_t *buf)
{
	struct st_stream_dec *d = st_stream_dec__new(&ops, l, 0);
	struct st_stream_enc *e = st_stream_enc__new("host=t\n", 1, ref_emit, d);
	struct st_stream_trailer t = { 0 };

	assert_non_null(d);
	assert_non_null(e);
	workload(e, buf);
	assert_int_equal(st_stream_enc__finish(e, &t), 0);
	assert_true(st_stream_dec__done(d));
	st_stream_enc__free(e);
	st_stream_dec__free(d);
}

static void batch(struct sink *s, int level, size_t raw_max, uint8_t *buf)
{
	struct st_kmsg_batcher *b = st_kmsg_batcher__new("h1", 0xabcdef, raw_max, level, emit, s);
	struct st_stream_enc *e;
	struct st_kmsg_batch_stats st;

	assert_non_null(b);
	e = st_stream_enc__new_records(&bops, b);
	assert_non_null(e);
	workload(e, buf);
	assert_int_equal(st_stream_enc__flush(e), 0);
	assert_int_equal(st_kmsg_batcher__pending(b), 0);
	st_kmsg_batcher__stats(b, &st);
	assert_int_equal(st.kafka_messages, s->n);
	assert_int_equal(st.kafka_refused_msgs, 0);
	st_stream_enc__free(e);
	st_kmsg_batcher__free(b);
}

static void read_all(struct logs *l, struct sink *s, struct st_kmsg_read_stats *rs)
{
	struct st_kmsg_reader *r = st_kmsg_reader__new(&ops, l, 0);
	char err[256];

	assert_non_null(r);
	for (unsigned i = 0; i < s->n; i++)
		assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len, 0, err,
						      sizeof(err)), 0);
	if (rs)
		st_kmsg_reader__stats(r, rs);
	st_kmsg_reader__free(r);
}

static void test_round_trip(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs ref = { 0 }, got = { 0 };
	struct st_kmsg_read_stats rs;

	for (int level = 0; level <= 6; level += 6) {
		reference(&ref, buf);
		batch(s, level, ST_KMSG_RAW_DEFAULT, buf);
		assert_true(s->n > 2 * NCONN);
		read_all(&got, s, &rs);
		for (int i = 0; i < NCONN; i++)
			assert_string_equal(ref.s[i], got.s[i]);
		assert_int_equal(got.joined, 0);
		assert_int_equal(rs.kafka_lost_bytes, 0);
		assert_int_equal(rs.kafka_dup_records, 0);
		/* a connection's messages share one key */
		for (unsigned i = 0; i < s->n; i++) {
			struct st_kmsg_info mi;
			char err[128], want[64];

			assert_int_equal(st_kmsg_parse_header(s->m[i].b, s->m[i].len, &mi, err,
							      sizeof(err)), 0);
			assert_int_equal(mi.codec, level ? ST_KMSG_CODEC_ZLIB : ST_KMSG_CODEC_NONE);
			assert_string_equal(mi.host, "h1");
			snprintf(want, sizeof(want), "h1/0000000000abcdef/%lu",
				 (unsigned long)mi.conn);
			assert_string_equal(s->m[i].key, want);
		}
		logs_free(&ref);
		logs_free(&got);
		sink_free(s);
	}
	free(s);
	free(buf);
}

/* No message carries more than raw_max bytes of records; compressed or not, it stays below
 * what a broker takes by default. */
static void test_size_bound(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	size_t raw_max = ST_KMSG_RAW_MIN;

	batch(s, 0, raw_max, buf);
	for (unsigned i = 0; i < s->n; i++) {
		struct st_kmsg_info mi;
		char err[128];

		assert_int_equal(st_kmsg_parse_header(s->m[i].b, s->m[i].len, &mi, err, sizeof(err)),
				 0);
		assert_true(mi.raw_len <= raw_max);
		assert_true(mi.raw_len > 0);
	}
	assert_true(s->max_len <= ST_KMSG_HDR_MAX + raw_max);
	sink_free(s);
	batch(s, 9, ST_KMSG_RAW_MAX, buf);
	assert_true(s->max_len < 1000000);
	sink_free(s);
	/* out of range */
	assert_null(st_kmsg_batcher__new("h", 1, ST_KMSG_RAW_MIN - 1, 1, emit, s));
	assert_null(st_kmsg_batcher__new("h", 1, ST_KMSG_RAW_MAX + 1, 1, emit, s));
	free(s);
	free(buf);
}

/* A message of the middle of a connection, alone: its connection opens joined, what it
 * missed is a gap, its records follow. */
static void test_alone(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_reader *r;
	struct st_kmsg_info mi;
	char err[256];
	unsigned k;

	batch(s, 1, ST_KMSG_RAW_DEFAULT, buf);
	for (k = 0; k < s->n; k++) {
		assert_int_equal(st_kmsg_parse_header(s->m[k].b, s->m[k].len, &mi, err, sizeof(err)),
				 0);
		if (mi.seq == 3)
			break;
	}
	assert_true(k < s->n);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	assert_int_equal(st_kmsg_reader__feed(r, s->m[k].b, s->m[k].len, 2, err, sizeof(err)), 0);
	assert_int_equal(got.opens, 1);
	assert_int_equal(got.joined, 1);
	assert_non_null(strstr(got.s[mi.conn - 10], "gap "));
	assert_non_null(strstr(got.s[mi.conn - 10], "data "));
	/* another partition's close leaves it; its own closes it */
	assert_int_equal(st_kmsg_reader__close_partition(r, 1, 5), 0);
	assert_int_equal(st_kmsg_reader__close_partition(r, 2, 5), 1);
	assert_int_equal(got.closes, 1);
	st_kmsg_reader__free(r);
	logs_free(&got);
	sink_free(s);
	free(s);
	free(buf);
}

/* A connection joined midway through a message with exchange boundaries: what it missed is a
 * gap in each direction before the first MARK (the decoder checks the MARK's offsets), and
 * the MARKs are delivered; read again, the message gives nothing more. */
static void test_mark_joined(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_reader *r;
	struct st_kmsg_read_stats rs;
	struct st_kmsg_info mi;
	char err[256], *m, *o;
	unsigned k, marks = 0;

	batch(s, 1, ST_KMSG_RAW_DEFAULT, buf);
	/* a message of the middle holding a MARK */
	for (k = 0; k < s->n; k++) {
		struct logs one = { 0 };

		assert_int_equal(st_kmsg_parse_header(s->m[k].b, s->m[k].len, &mi, err, sizeof(err)),
				 0);
		if (mi.seq < 2)
			continue;
		r = st_kmsg_reader__new(&ops, &one, 0);
		assert_non_null(r);
		assert_int_equal(st_kmsg_reader__feed(r, s->m[k].b, s->m[k].len, 0, err,
						      sizeof(err)), 0);
		st_kmsg_reader__free(r);
		m = one.s[mi.conn - 10] ? strstr(one.s[mi.conn - 10], "mark ") : NULL;
		logs_free(&one);
		if (m)
			break;
	}
	assert_true(k < s->n);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	assert_int_equal(st_kmsg_reader__feed(r, s->m[k].b, s->m[k].len, 0, err, sizeof(err)), 0);
	assert_int_equal(got.joined, 1);
	o = got.s[mi.conn - 10];
	m = strstr(o, "mark ");
	assert_non_null(m);
	/* before the first MARK, the connection's start is a gap in both directions */
	*m = 0;
	assert_non_null(strstr(o, "gap 0 0 "));
	assert_non_null(strstr(o, "gap 1 0 "));
	*m = 'm';
	for (const char *p = o; (p = strstr(p, "mark ")); p++)
		marks++;
	assert_int_equal(st_kmsg_reader__feed(r, s->m[k].b, s->m[k].len, 0, err, sizeof(err)), 0);
	st_kmsg_reader__stats(r, &rs);
	assert_true(rs.kafka_dup_records > marks);
	for (const char *p = got.s[mi.conn - 10]; (p = strstr(p, "mark ")); p++)
		marks--;
	assert_int_equal(marks, 0);
	st_kmsg_reader__free(r);
	logs_free(&got);
	sink_free(s);
	free(s);
	free(buf);
}

/* A connection whose CLOSE never comes is closed once its partition's time moved
 * ST_KMSG_IDLE_NS past its last record; another partition's time does not count. */
static void test_idle_expiry(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_batcher *b = st_kmsg_batcher__new("h1", 7, ST_KMSG_RAW_DEFAULT, 1, emit, s);
	struct st_stream_enc *e;
	struct st_kmsg_reader *r;
	struct st_kmsg_read_stats rs;
	const uint64_t t0 = 1000000000000ull;
	char err[256];

	assert_non_null(b);
	e = st_stream_enc__new_records(&bops, b);
	assert_non_null(e);
	/* conns 0 (partition 0) and 1 (partition 1) go quiet at t0; conn 2 (partition 0)
	 * speaks on until past the idle time */
	for (unsigned i = 0; i < 3; i++) {
		struct st_reasm_conn c = conn(i);

		assert_int_equal(st_stream_enc__open(e, &c, t0), 0);
		assert_int_equal(st_stream_enc__data(e, 10 + i, 0, 0, (const uint8_t *)"GET", 3, t0),
				 0);
	}
	assert_int_equal(st_stream_enc__flush(e), 0);
	for (unsigned k = 1; k <= 3; k++) {
		assert_int_equal(st_stream_enc__data(e, 12, 0, 3 * k, (const uint8_t *)"GET", 3,
						     t0 + k * (ST_KMSG_IDLE_NS / 2)), 0);
		assert_int_equal(st_stream_enc__flush(e), 0);
	}
	st_stream_enc__free(e);
	st_kmsg_batcher__free(b);
	assert_int_equal(s->n, 6);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	for (unsigned i = 0; i < s->n; i++) {
		struct st_kmsg_info mi;

		assert_int_equal(st_kmsg_parse_header(s->m[i].b, s->m[i].len, &mi, err, sizeof(err)),
				 0);
		assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len,
						      mi.conn == 11 ? 1 : 0, err, sizeof(err)), 0);
		if (i == 4) { /* partition 0 at t0 + idle: not past it yet */
			assert_int_equal(got.closes, 0);
		}
	}
	st_kmsg_reader__stats(r, &rs);
	assert_int_equal(rs.kafka_idle_conns, 1);
	assert_int_equal(got.closes, 1);
	assert_non_null(strstr(got.s[0], "close w2\n")); /* ST_END_TIMEOUT */
	assert_null(strstr(got.s[1], "close"));
	assert_null(strstr(got.s[2], "close"));
	st_kmsg_reader__free(r);
	logs_free(&got);
	sink_free(s);
	free(s);
}

/* A partition read again from an older offset after its connections closed (a rebalance
 * whose commit did not go through): their messages give nothing, no connection opens again
 * (joined, it would be replayed again from its next MARK). */
static void test_reread_after_close(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_reader *r;
	struct st_kmsg_read_stats rs;
	char err[256], *before[NCONN];
	uint32_t records = 0;

	batch(s, 1, ST_KMSG_RAW_DEFAULT, buf);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	for (unsigned i = 0; i < s->n; i++)
		assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len, 0, err,
						      sizeof(err)), 0);
	assert_int_equal(got.closes, NCONN);
	for (int i = 0; i < NCONN; i++)
		before[i] = strdup(got.s[i]);
	for (unsigned i = s->n / 2; i < s->n; i++) {
		assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len, 0, err,
						      sizeof(err)), 0);
		records += s->m[i].records;
	}
	st_kmsg_reader__stats(r, &rs);
	assert_int_equal(got.opens, NCONN);
	assert_int_equal(rs.kafka_joined_conns, 0);
	assert_int_equal(rs.kafka_dup_records, records);
	for (int i = 0; i < NCONN; i++) {
		assert_string_equal(got.s[i], before[i]);
		free(before[i]);
	}
	st_kmsg_reader__free(r);
	logs_free(&got);
	sink_free(s);
	free(s);
	free(buf);
}

/* A lost message: a gap of exactly its data; a message twice: nothing more. */
static void test_lost_and_dup(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_reader *r;
	struct st_kmsg_read_stats rs;
	char err[256];
	unsigned lost = 0;
	uint64_t lost_data = 0;

	batch(s, 1, ST_KMSG_RAW_DEFAULT, buf);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	for (unsigned i = 0; i < s->n; i++) {
		struct st_kmsg_info mi;

		assert_int_equal(st_kmsg_parse_header(s->m[i].b, s->m[i].len, &mi, err, sizeof(err)),
				 0);
		if (mi.conn == 12 && mi.seq == 2 && !lost) {
			lost = i + 1;
			lost_data = s->m[i].data;
			continue;
		}
		assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len, 0, err,
						      sizeof(err)), 0);
		if (i == 5)
			assert_int_equal(st_kmsg_reader__feed(r, s->m[i].b, s->m[i].len, 0, err,
							      sizeof(err)), 0);
	}
	assert_true(lost);
	assert_true(lost_data > 0);
	st_kmsg_reader__stats(r, &rs);
	assert_true(rs.kafka_dup_records > 0);
	assert_int_equal(rs.kafka_lost_bytes, lost_data);
	assert_int_equal(got.opens, NCONN);
	assert_int_equal(got.closes, NCONN);
	assert_non_null(strstr(got.s[2], " w32\n")); /* ST_SGAP_DROPPED */
	st_kmsg_reader__free(r);
	logs_free(&got);
	sink_free(s);
	free(s);
	free(buf);
}

/* Any flipped bit, a cut, another magic: refused whole, no event. (Uncompressed: deflate's
 * padding bits before its checksum are ignored by inflate, and a flip there changes
 * nothing that is read.) */
static void test_damaged(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct logs got = { 0 };
	struct st_kmsg_reader *r;
	struct st_kmsg_read_stats rs;
	char err[256];
	struct msg *m;
	uint8_t *copy;

	batch(s, 0, ST_KMSG_RAW_DEFAULT, buf);
	m = &s->m[s->n / 2];
	copy = malloc(m->len);
	r = st_kmsg_reader__new(&ops, &got, 0);
	assert_non_null(r);
	for (size_t bit = 0; bit < m->len * 8; bit += bit < 4096 ? 1 : 997) {
		memcpy(copy, m->b, m->len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		err[0] = 0;
		assert_int_equal(st_kmsg_reader__feed(r, copy, m->len, 0, err, sizeof(err)), -1);
		assert_true(err[0]);
	}
	assert_int_equal(st_kmsg_reader__feed(r, m->b, m->len - 1, 0, err, sizeof(err)), -1);
	assert_int_equal(st_kmsg_reader__feed(r, (const uint8_t *)"hello", 5, 0, err, sizeof(err)),
			 -1);
	assert_int_equal(got.opens, 0);
	st_kmsg_reader__stats(r, &rs);
	assert_int_equal(rs.kafka_messages, 0);
	assert_true(rs.kafka_bad_messages > 10);
	/* the reader goes on with good messages */
	assert_int_equal(st_kmsg_reader__feed(r, m->b, m->len, 0, err, sizeof(err)), 0);
	assert_int_equal(got.opens, 1);
	st_kmsg_reader__free(r);
	logs_free(&got);
	free(copy);
	sink_free(s);
	free(s);
	free(buf);
}

/* Messages the producer refuses are counted with their records and data. */
static void test_refused_counted(void **state)
{
	uint8_t *buf = malloc(300u << 10);
	struct sink *s = calloc(1, sizeof(*s));
	struct st_kmsg_batcher *b = st_kmsg_batcher__new("h", 1, ST_KMSG_RAW_DEFAULT, 1, emit, s);
	struct st_stream_enc *e = st_stream_enc__new_records(&bops, b);
	struct st_kmsg_batch_stats st;

	s->refuse = true;
	workload(e, buf);
	st_stream_enc__flush(e);
	st_kmsg_batcher__stats(b, &st);
	assert_int_equal(st.kafka_refused_msgs, st.kafka_messages);
	assert_int_equal(st.kafka_refused_records, st.kafka_records);
	assert_true(st.kafka_refused_bytes > (1u << 20));
	assert_true(st.kafka_batch_peak <= ST_KMSG_RAW_DEFAULT * NCONN);
	st_stream_enc__free(e);
	st_kmsg_batcher__free(b);
	free(s);
	free(buf);
}

static void test_secrets_refused(void **state)
{
	struct st_kafka_conf k = { 0 };
	const struct st_opt *o = NULL;

	for (size_t i = 0; i < st_kafka_opts_n; i++)
		if (!strcmp(st_kafka_opts[i].name, "kafka-opt"))
			o = &st_kafka_opts[i];
	assert_non_null(o);
	assert_int_equal(st_opt_set(o, &k, "sasl.password=hunter2", "--kafka-opt"), -1);
	assert_int_equal(st_opt_set(o, &k, "ssl.key.password=x", "--kafka-opt"), -1);
	assert_int_equal(st_opt_set(o, &k, "queue.buffering.max.kbytes=1", "--kafka-opt"), -1);
	assert_int_equal(st_opt_set(o, &k, "novalue", "--kafka-opt"), -1);
	assert_int_equal(k.n_kv, 0);
	assert_int_equal(st_opt_set(o, &k, "sasl.username=u", "--kafka-opt"), 0);
	assert_int_equal(k.n_kv, 1);
	k.brokers = "127.0.0.1:1";
	k.topic = "t";
	assert_true(st_kafka_conf_valid(&k, "test"));
	assert_int_equal(st_opt_set(o, &k, "no.such.setting=1", "--kafka-opt"), 0);
	assert_false(st_kafka_conf_valid(&k, "test"));
	assert_false(st_kafka_conf_check(&k, true, "test")); /* no --group */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_size_bound),
		cmocka_unit_test(test_alone),
		cmocka_unit_test(test_mark_joined),
		cmocka_unit_test(test_idle_expiry),
		cmocka_unit_test(test_reread_after_close),
		cmocka_unit_test(test_lost_and_dup),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_refused_counted),
		cmocka_unit_test(test_secrets_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
