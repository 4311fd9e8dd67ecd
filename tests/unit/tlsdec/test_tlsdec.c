/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The TLS decryptor (tlsdec.h) on real OpenSSL sessions (tests/unit/tls_session.h: client and
 * server in memory, the server's EVP_KDF_derive parameters recorded where the probe reads
 * them): every TLS 1.3 and TLS 1.2 AEAD suite OpenSSL speaks, a HelloRetryRequest, resumed
 * sessions, 0-RTT, KeyUpdates both ways; what it delivers is byte for byte what each side
 * wrote, with a SYN pair and a FIN pair in a gap-free sequence space, and its key-log lines are
 * OpenSSL's own (the client's keylog callback). Secrets that come after the records still
 * open them. A capture loss (inside a record, across several, at a boundary) and a damaged
 * record are holes of exactly the plaintext lost, the rest intact; a handshake with a gap,
 * bytes that are not TLS, a connection the per-call probes deliver: nothing delivered,
 * counted. Unused secrets expire and are counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mix.h"
#include "tls_session.h"
#include "tlsrec.h"

static struct st_tlsdec *dec_new(struct ts_out *o, bool keylog_only)
{
	static const struct st_tlsdec_ops ops = { .segment = ts_out_cb, .keylog = ts_out_keylog };
	struct st_tlsdec_config cfg = { .keylog_only = keylog_only };
	struct st_tlsdec *d;

	memset(o, 0, sizeof(*o));
	d = st_tlsdec__new(&cfg, &ops, o);
	assert_non_null(d);
	return d;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(st_mix64(i * 31 + seed) >> 13);
	return p;
}

/* A request/response exchange of the given sizes (several records each when large). */
static void exchange(struct ts_session *t, size_t req, size_t resp, unsigned seed)
{
	uint8_t *a = pattern(req, seed), *b = pattern(resp, seed + 1);

	ts_send(t, TS_IN, a, req);
	ts_send(t, TS_OUT, b, resp);
	free(a);
	free(b);
}

/* The engine's output equals what the sides wrote, in a clean sequence space. */
static void assert_same(const struct ts_session *t, const struct ts_out *o)
{
	for (int dir = 0; dir < 2; dir++) {
		assert_int_equal(o->len[dir], t->sent_len[dir]);
		if (t->sent_len[dir])
			assert_memory_equal(o->data[dir], t->sent[dir], t->sent_len[dir]);
		assert_int_equal(o->loss[dir], 0);
		assert_true(o->syn[dir]);
		assert_true(o->fin[dir]);
	}
	assert_int_equal(o->bad, 0);
}

static void assert_keylog(const struct ts_ctx *x, const struct ts_out *o)
{
	char a[16384], b[16384];

	ts_sort_lines(x->keylog, a, sizeof(a));
	ts_sort_lines(o->keylog, b, sizeof(b));
	assert_true(a[0]);
	assert_string_equal(b, a);
}

/* A whole session with opts: the exchanges (request, response sizes), then closed; fed with
 * fo (NULL: in order, 1448-byte segments); everything delivered, OpenSSL's own key-log lines;
 * the engine's stats into st_out (may be NULL). */
static void check_session(const struct ts_opts *opts, const size_t (*ex)[2], size_t n_ex,
			  const struct ts_feed_opts *fo, struct st_tlsdec_stats *st_out)
{
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec *d = dec_new(&o, false);
	struct st_tlsdec_stats st;

	assert_int_equal(ts_ctx_init(&x, opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	for (size_t i = 0; i < n_ex; i++)
		exchange(&t, ex[i][0], ex[i][1], (unsigned)i + 1);
	ts_shutdown(&t);
	assert_int_equal(ts_feed(&t, d, fo), 0);
	assert_same(&t, &o);
	assert_keylog(&x, &o);
	st_tlsdec__stats(d, &st);
	assert_int_equal(st.keyed, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.loss_bytes, 0);
	assert_int_equal(st_tlsdec__open_keyed(d), 0);
	if (st_out)
		*st_out = st;
	st_tlsdec__free(d);
	ts_free(&t);
	ts_ctx_free(&x);
	ts_out_free(&o);
}

/* Small and large requests and responses (several records each when large). */
static const size_t mix[][2] = { { 80, 1000 }, { 70000, 5 }, { 300, 200000 }, { 1, 1 } };

static void run_session(const struct ts_opts *opts, struct st_tlsdec_stats *st_out)
{
	check_session(opts, mix, sizeof(mix) / sizeof(mix[0]), NULL, st_out);
}

static void test_tls13_suites(void **state)
{
	static const char *const suites[] = {
		"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
		"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256",
	};

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		struct ts_opts o = { .version = TLS1_3_VERSION, .suites = suites[i] };

		print_message("  %s\n", suites[i]);
		run_session(&o, NULL);
	}
}

static void test_tls12_suites(void **state)
{
	static const char *const ciphers[] = {
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES256-CCM8",
	};

	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
		struct ts_opts o = { .version = TLS1_2_VERSION, .ciphers = ciphers[i] };

		print_message("  %s\n", ciphers[i]);
		run_session(&o, NULL);
	}
}

/* Segments of 1 and 7 bytes: every record (and header) split across segments. */
static void test_tiny_segments(void **state)
{
	static const size_t one[][2] = { { 300, 20000 } };
	struct ts_opts opts[2] = { { .version = TLS1_3_VERSION }, { .version = TLS1_2_VERSION } };

	for (int v = 0; v < 2; v++) {
		for (uint32_t mss = 1; mss <= 7; mss += 6) {
			struct ts_feed_opts fo = { .mss = mss, .lose_dir = -1, .flip_dir = -1 };

			check_session(&opts[v], one, 1, &fo, NULL);
		}
	}
}

/* The client's key share is not one the server takes: HelloRetryRequest, a second hello. */
static void test_tls13_hrr(void **state)
{
	struct ts_opts o = { .version = TLS1_3_VERSION, .server_groups = "P-256",
			     .client_groups = "X25519:P-256" };

	run_session(&o, NULL);
}

/* Secrets after every record (the probe's ring drained later than the packets'). */
static void test_secrets_late(void **state)
{
	static const size_t one[][2] = { { 500, 40000 } };
	struct ts_opts opts[2] = { { .version = TLS1_3_VERSION }, { .version = TLS1_2_VERSION } };
	struct ts_feed_opts fo = { .kdf_last = true, .lose_dir = -1, .flip_dir = -1 };

	for (int i = 0; i < 2; i++)
		check_session(&opts[i], one, 1, &fo, NULL);
}

/* A second connection resumes the first's session (1.3 PSK; 1.2 ticket and session id). */
static void test_resumed(void **state)
{
	struct ts_opts opts[3] = {
		{ .version = TLS1_3_VERSION },
		{ .version = TLS1_2_VERSION },
		{ .version = TLS1_2_VERSION, .tickets_off = true },
	};

	for (int i = 0; i < 3; i++) {
		struct ts_ctx x;
		struct ts_session t1, t2;
		struct ts_out o;
		struct st_tlsdec *d = dec_new(&o, false);
		SSL_SESSION *sess;
		struct ts_feed_opts fo = { .cport = 40001, .lose_dir = -1, .flip_dir = -1 };

		assert_int_equal(ts_ctx_init(&x, &opts[i]), 0);
		assert_int_equal(ts_open(&t1, &x, NULL, NULL, 0), 0);
		exchange(&t1, 100, 100, 9);
		sess = SSL_get1_session(t1.c);
		ts_shutdown(&t1);
		assert_non_null(sess);
		x.keylog_len = 0;
		x.keylog[0] = '\0';
		assert_int_equal(ts_open(&t2, &x, sess, NULL, 0), 0);
		assert_true(SSL_session_reused(t2.c));
		exchange(&t2, 3000, 30000, 10);
		ts_shutdown(&t2);
		assert_int_equal(ts_feed(&t2, d, &fo), 0);
		assert_same(&t2, &o);
		assert_keylog(&x, &o);
		SSL_SESSION_free(sess);
		st_tlsdec__free(d);
		ts_free(&t1);
		ts_free(&t2);
		ts_ctx_free(&x);
		ts_out_free(&o);
	}
}

/* 0-RTT: the resumed client's early data, accepted; and refused (no early data allowed). */
static void test_early_data(void **state)
{
	for (int accept = 1; accept >= 0; accept--) {
		struct ts_opts opts = { .version = TLS1_3_VERSION, .max_early = 16384 };
		struct ts_ctx x;
		struct ts_session t1, t2;
		struct ts_out o;
		struct st_tlsdec *d = dec_new(&o, false);
		struct st_tlsdec_stats st;
		SSL_SESSION *sess;
		uint8_t *early = pattern(3000, 11);

		assert_int_equal(ts_ctx_init(&x, &opts), 0);
		assert_int_equal(ts_open(&t1, &x, NULL, NULL, 0), 0);
		exchange(&t1, 10, 10, 12);
		sess = SSL_get1_session(t1.c);
		ts_shutdown(&t1);
		assert_true(SSL_SESSION_get_max_early_data(sess) > 0);
		if (!accept)
			SSL_CTX_set_max_early_data(x.sctx, 0); /* refused, and skipped */
		x.keylog_len = 0;
		x.keylog[0] = '\0';
		assert_int_equal(ts_open(&t2, &x, sess, early, 3000), 0);
		assert_int_equal(SSL_get_early_data_status(t2.s) == SSL_EARLY_DATA_ACCEPTED, accept);
		exchange(&t2, 500, 5000, 13);
		ts_shutdown(&t2);
		assert_int_equal(ts_feed(&t2, d, NULL), 0);
		/* delivered: what the server took (the early data only when it accepted it) */
		assert_same(&t2, &o);
		st_tlsdec__stats(d, &st);
		if (!accept)
			assert_true(st.early_skipped > 0);
		else /* the early secrets too, as OpenSSL logs them */
			assert_keylog(&x, &o);
		SSL_SESSION_free(sess);
		free(early);
		st_tlsdec__free(d);
		ts_free(&t1);
		ts_free(&t2);
		ts_ctx_free(&x);
		ts_out_free(&o);
	}
}

/* KeyUpdates: the client's (answered by the server), the server's alone; data after each. */
static void test_key_update(void **state)
{
	struct ts_opts opts = { .version = TLS1_3_VERSION };
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec *d = dec_new(&o, false);
	struct st_tlsdec_stats st;

	assert_int_equal(ts_ctx_init(&x, &opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	exchange(&t, 100, 20000, 20);
	ts_key_update(&t, false, true);
	exchange(&t, 200, 30000, 21);
	ts_key_update(&t, true, false);
	exchange(&t, 300, 40000, 22);
	ts_key_update(&t, false, false);
	exchange(&t, 400, 50000, 23);
	ts_shutdown(&t);
	assert_int_equal(ts_feed(&t, d, NULL), 0);
	assert_same(&t, &o);
	st_tlsdec__stats(d, &st);
	assert_int_equal(st.key_updates, 4); /* client 2, server 2 (one answering the request) */
	st_tlsdec__free(d);
	ts_free(&t);
	ts_ctx_free(&x);
	ts_out_free(&o);
}

/* Offset in direction dir's ciphertext of the first byte of its n-th record of type 23
 * (counting from 0) and that record's body length. */
static uint64_t record_at(const struct ts_session *t, int dir, unsigned nth, uint32_t *blen)
{
	uint8_t *all = NULL;
	size_t len = 0;
	uint64_t off = 0;
	unsigned k = 0;

	for (size_t i = 0; i < t->n_ev; i++) {
		if (t->ev[i].kind != dir)
			continue;
		all = realloc(all, len + t->ev[i].len);
		memcpy(all + len, t->ev[i].data, t->ev[i].len);
		len += t->ev[i].len;
	}
	while (off + 5 <= len) {
		uint32_t l = (uint32_t)all[off + 3] << 8 | all[off + 4];

		if (all[off] == 23 && k++ == nth) {
			*blen = l;
			free(all);
			return off;
		}
		off += 5 + l;
	}
	free(all);
	fail_msg("no record %u", nth);
	return 0;
}

/* Only the plaintext of [hole_at, hole_at + hole_len) is missing from direction dir. */
static void assert_hole(const struct ts_session *t, const struct ts_out *o, int dir,
			uint64_t hole_at, uint64_t hole_len)
{
	assert_int_equal(o->bad, 0);
	assert_int_equal(o->len[dir], t->sent_len[dir]);
	assert_int_equal(o->loss[dir], hole_len);
	assert_memory_equal(o->data[dir], t->sent[dir], hole_at);
	assert_memory_equal(o->data[dir] + hole_at + hole_len, t->sent[dir] + hole_at + hole_len,
			    t->sent_len[dir] - hole_at - hole_len);
	assert_true(o->fin[dir]);
}

/*
 * A 1 MB response (full 16 KiB records) with capture losses: inside one record (its framing
 * kept), across several records (found again by trying sequence numbers), starting at a
 * record's header. The hole is exactly the plaintext the lost records held.
 */
static void test_loss(void **state)
{
	struct ts_opts vers[2] = { { .version = TLS1_3_VERSION }, { .version = TLS1_2_VERSION } };
	struct {
		unsigned rec;     /* the record the loss starts in */
		int64_t from;     /* bytes after its header's first byte (< 0: before) */
		uint64_t len;
		unsigned records; /* records it takes */
	} cases[] = {
		{ 10, 100, 1000, 1 },
		{ 10, 100, 50000, 4 },
		{ 20, 0, 16000, 1 },
		{ 30, 3, 200000, 13 },
		{ 40, -2, 10, 2 },
	};

	for (int v = 0; v < 2; v++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct ts_ctx x;
			struct ts_session t;
			struct ts_out o;
			struct st_tlsdec *d = dec_new(&o, false);
			struct ts_feed_opts fo = { .lose_dir = ST_DIR_OUT, .flip_dir = -1 };
			struct st_tlsdec_stats st;
			uint32_t blen;
			uint64_t first, plain_before, per;
			const struct st_tlsrec_suite *s;
			uint8_t *big = pattern(1 << 20, 30);

			assert_int_equal(ts_ctx_init(&x, &vers[v]), 0);
			assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
			ts_send(&t, TS_IN, "GET / HTTP/1.1\r\n\r\n", 18);
			ts_send(&t, TS_OUT, big, 1 << 20);
			ts_shutdown(&t);
			s = st_tlsrec_suite((uint16_t)SSL_CIPHER_get_protocol_id(
				SSL_get_current_cipher(t.s)));
			assert_non_null(s);
			per = 16384;
			first = record_at(&t, ST_DIR_OUT, cases[i].rec, &blen);
			assert_int_equal(blen, per + st_tlsrec_overhead(s) - 5);
			fo.lose_at = (uint64_t)((int64_t)first + cases[i].from);
			fo.lose_len = cases[i].len;
			assert_int_equal(ts_feed(&t, d, &fo), 0);
			/* the data's records come after the session tickets' (1.3: type 23 too) */
			{
				uint32_t b0;
				unsigned app0 = 0;

				while (record_at(&t, ST_DIR_OUT, app0, &b0),
				       b0 != per + st_tlsrec_overhead(s) - 5)
					app0++;
				plain_before = (uint64_t)(cases[i].rec - app0 -
							  (cases[i].from < 0 ? 1u : 0u)) * per;
			}
			print_message("  %s loss at record %u%+lld, %llu bytes: hole %llu\n",
				      v ? "1.2" : "1.3", cases[i].rec, (long long)cases[i].from,
				      (unsigned long long)cases[i].len, (unsigned long long)o.loss[1]);
			assert_hole(&t, &o, ST_DIR_OUT, plain_before, (uint64_t)cases[i].records * per);
			assert_int_equal(o.len[ST_DIR_IN], t.sent_len[ST_DIR_IN]);
			st_tlsdec__stats(d, &st);
			assert_int_equal(st.loss_records, cases[i].records);
			assert_int_equal(st.resync_failed, 0);
			free(big);
			st_tlsdec__free(d);
			ts_free(&t);
			ts_ctx_free(&x);
			ts_out_free(&o);
		}
	}
}

/* A damaged byte: its record does not authenticate; exactly its plaintext is a hole. */
static void test_damaged(void **state)
{
	struct ts_opts opts = { .version = TLS1_3_VERSION };
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec *d = dec_new(&o, false);
	struct ts_feed_opts fo = { .lose_dir = -1, .flip_dir = ST_DIR_IN };
	struct st_tlsdec_stats st;
	uint8_t *a = pattern(100000, 40);
	uint32_t blen, b0;
	unsigned app0 = 0;

	assert_int_equal(ts_ctx_init(&x, &opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	ts_send(&t, TS_IN, a, 100000);
	ts_send(&t, TS_OUT, "ok", 2);
	ts_shutdown(&t);
	/* the client's first records are its Finished (type 23 too): find the data's */
	while (record_at(&t, ST_DIR_IN, app0, &b0), b0 != 16384 + 17)
		app0++;
	fo.flip_at = record_at(&t, ST_DIR_IN, app0 + 2, &blen) + 100;
	assert_int_equal(ts_feed(&t, d, &fo), 0);
	assert_hole(&t, &o, ST_DIR_IN, 2 * 16384, 16384);
	st_tlsdec__stats(d, &st);
	assert_int_equal(st.failed, 1);
	free(a);
	st_tlsdec__free(d);
	ts_free(&t);
	ts_ctx_free(&x);
	ts_out_free(&o);
}

/* Nothing is delivered for: a gap in the handshake, bytes that are not TLS, no secrets, a
 * connection the per-call probes deliver. */
static void test_not_delivered(void **state)
{
	struct ts_opts opts = { .version = TLS1_3_VERSION };
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec_stats st;
	struct st_tlsdec *d;
	struct st_flow_key k;

	assert_int_equal(ts_ctx_init(&x, &opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	exchange(&t, 100, 100, 50);
	ts_shutdown(&t);

	{ /* a loss inside the server's hello */
		struct ts_feed_opts fo = { .lose_dir = ST_DIR_OUT, .lose_at = 20, .lose_len = 10,
					   .flip_dir = -1 };

		d = dec_new(&o, false);
		assert_int_equal(ts_feed(&t, d, &fo), 0);
		st_tlsdec__stats(d, &st);
		assert_int_equal(o.segments, 0);
		assert_int_equal(st.given_up, 1);
		st_tlsdec__free(d);
		ts_out_free(&o);
	}
	{ /* no secrets */
		struct ts_feed_opts fo = { .kdf_none = true, .lose_dir = -1, .flip_dir = -1 };

		d = dec_new(&o, false);
		assert_int_equal(ts_feed(&t, d, &fo), 0);
		st_tlsdec__stats(d, &st);
		assert_int_equal(o.segments, 0);
		assert_int_equal(st.nokeys, 1);
		assert_true(st.held_peak > 0);
		assert_int_equal(st.held_bytes, 0);
		st_tlsdec__free(d);
		ts_out_free(&o);
	}
	{ /* the per-call probes named it first */
		d = dec_new(&o, false);
		ts_key(&k, ST_DIR_OUT, 40000);
		st_tlsdec__called(d, &k, 1000000000ull);
		assert_int_equal(ts_feed(&t, d, NULL), 0);
		st_tlsdec__stats(d, &st);
		assert_int_equal(o.segments, 0);
		assert_int_equal(st.called, 1);
		assert_false(st_tlsdec__keyed(d, &k));
		st_tlsdec__free(d);
		ts_out_free(&o);
	}
	{ /* plain HTTP on the port */
		struct st_segment s = { 0 };
		static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

		d = dec_new(&o, false);
		ts_key(&s.key, ST_DIR_IN, 40000);
		s.dir = ST_DIR_IN;
		s.flags = ST_TCP_SYN;
		s.seq = 1;
		s.ts_ns = 1;
		st_tlsdec__cipher(d, &s);
		s.flags = ST_TCP_ACK;
		s.seq = 2;
		s.data = (const uint8_t *)req;
		s.len = sizeof(req) - 1;
		st_tlsdec__cipher(d, &s);
		st_tlsdec__flush(d);
		st_tlsdec__stats(d, &st);
		assert_int_equal(o.segments, 0);
		assert_int_equal(st.not_tls, 1);
		st_tlsdec__free(d);
		ts_out_free(&o);
	}
	ts_free(&t);
	ts_ctx_free(&x);
}

/* While a connection is decrypted here, st_tlsdec__keyed says so for either direction. */
static void test_keyed_lookup(void **state)
{
	struct ts_opts opts = { .version = TLS1_2_VERSION };
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec *d = dec_new(&o, false);
	struct st_flow_key in, out;
	struct ts_feed_opts fo = { .lose_dir = -1, .flip_dir = -1 };

	assert_int_equal(ts_ctx_init(&x, &opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	exchange(&t, 100, 100, 60);
	ts_key(&in, ST_DIR_IN, 40000);
	ts_key(&out, ST_DIR_OUT, 40000);
	assert_false(st_tlsdec__keyed(d, &in));
	assert_int_equal(ts_feed(&t, d, &fo), 0);
	/* closed by its FINs: no longer */
	assert_false(st_tlsdec__keyed(d, &out));
	assert_int_equal(st_tlsdec__open_keyed(d), 0);
	{
		struct st_tlsdec_proc p;

		st_tlsdec__proc(d, t.tgid, &p);
		assert_int_equal(p.handshakes, 1);
		assert_int_equal(p.ended, 1);
		assert_int_equal(p.flights, 1);
		assert_int_equal(p.ended_flights, 1);
	}
	st_tlsdec__free(d);
	ts_free(&t);
	ts_ctx_free(&x);
	ts_out_free(&o);
}

/* --keylog without --tls: the lines, no plaintext. */
static void test_keylog_only(void **state)
{
	struct ts_opts opts[2] = { { .version = TLS1_3_VERSION }, { .version = TLS1_2_VERSION } };

	for (int i = 0; i < 2; i++) {
		struct ts_ctx x;
		struct ts_session t;
		struct ts_out o;
		struct st_tlsdec *d = dec_new(&o, true);

		assert_int_equal(ts_ctx_init(&x, &opts[i]), 0);
		assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
		exchange(&t, 100, 100000, 70);
		ts_shutdown(&t);
		assert_int_equal(ts_feed(&t, d, NULL), 0);
		assert_int_equal(o.segments, 0);
		assert_keylog(&x, &o);
		st_tlsdec__free(d);
		ts_free(&t);
		ts_ctx_free(&x);
		ts_out_free(&o);
	}
}

/* Secrets of connections never captured (a client-side session of the process) expire. */
static void test_secrets_expire(void **state)
{
	struct ts_opts opts = { .version = TLS1_3_VERSION };
	struct ts_ctx x;
	struct ts_session t;
	struct ts_out o;
	struct st_tlsdec *d = dec_new(&o, false);
	struct st_tlsdec_stats st;
	unsigned n = 0;

	assert_int_equal(ts_ctx_init(&x, &opts), 0);
	assert_int_equal(ts_open(&t, &x, NULL, NULL, 0), 0);
	for (size_t i = 0; i < t.n_ev; i++)
		if (t.ev[i].kind == TS_KDF) {
			st_tlsdec__kdf(d, t.ev[i].data, t.ev[i].len, 1000);
			n++;
		}
	st_tlsdec__stats(d, &st);
	assert_true(n >= 5);
	assert_int_equal(st.secrets, 5); /* c/s hs, c/s ap, exp: the rest are not traffic secrets */
	st_tlsdec__tick(d, 1000 + ST_TLSDEC_SECRET_TTL_NS + 1);
	st_tlsdec__stats(d, &st);
	assert_int_equal(st.secrets_expired, 2); /* the slots: ..ServerHello, ..Finished */
	st_tlsdec__free(d);
	ts_free(&t);
	ts_ctx_free(&x);
	ts_out_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_suites),  cmocka_unit_test(test_tls12_suites),
		cmocka_unit_test(test_tiny_segments), cmocka_unit_test(test_tls13_hrr),
		cmocka_unit_test(test_secrets_late),
		cmocka_unit_test(test_resumed),       cmocka_unit_test(test_early_data),
		cmocka_unit_test(test_key_update),    cmocka_unit_test(test_loss),
		cmocka_unit_test(test_damaged),       cmocka_unit_test(test_not_delivered),
		cmocka_unit_test(test_keyed_lookup),  cmocka_unit_test(test_keylog_only),
		cmocka_unit_test(test_secrets_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
