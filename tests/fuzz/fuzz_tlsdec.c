/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the TLS decryptor (agent/tlsdec/): real sessions (OpenSSL client and
 * server in memory, made once at start: tests/unit/tls_session.h) replayed with damaged,
 * truncated, reordered, duplicated, lost and inserted records, secrets late or missing, into
 * st_tlsdec. Checked on every input: no crash or leak (the sanitizers), the delivered
 * plaintext in sequence (no overlap, no hole that is not announced as a loss), and every
 * delivered byte is a byte the sender wrote: a record is only delivered when it
 * authenticates, so no input makes the engine deliver anything else. An input without
 * faults gives exactly what each side wrote.
 *
 * Input: [0] the session (TLS 1.3 AES-256-GCM with a KeyUpdate each way, 1.3 ChaCha20,
 * 1.3 CCM_8 with a HelloRetryRequest, 1.2 AES-128-GCM, 1.2 ChaCha20), [1] the segment size (16 + 64 x),
 * [2] flags (bit 0: secrets after every record, bit 1: the secrets reversed, bit 2: the
 * connection's start not captured), then 4-byte faults: [op, record, arg, arg2] with op % 8:
 * 0 flip byte arg*256+arg2 % len of the record, 1 cut the record to its first arg bytes (the
 * rest lost), 2 swap it with the next one of its direction, 3 send it twice, 4 lose it whole
 * (a capture loss), 5 insert arg bytes of noise after it, 6 drop secret record number arg,
 * 7 replace its header's type and length bytes with arg, arg2.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/tls_session.h"
#include "fuzz_check.h"
#include "mix.h"
#include "tlsdec.h"

#define N_SESS 5
#define MAX_RECS 512

struct rec {
	uint8_t *p;   /* header and body */
	uint32_t len;
	int dir;
	size_t ev;    /* the wire event it came in (order between directions) */
	uint32_t cut; /* bytes delivered of it (the rest lost); len when whole */
	bool lost, dup;
	uint32_t noise;
};

struct sess {
	struct ts_ctx x;
	struct ts_session t;
	struct rec recs[MAX_RECS];
	unsigned n;
	unsigned kdf_n;
};

static struct sess sessions[N_SESS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void make(struct sess *s, const struct ts_opts *o, bool key_update)
{
	static uint8_t a[40000], b[80000];
	uint8_t *all[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 }, off[2] = { 0, 0 };
	size_t *evof[2];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 7 + (i >> 9));
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 13 + 1);
	CHECK(!ts_ctx_init(&s->x, o));
	CHECK(!ts_open(&s->t, &s->x, NULL, NULL, 0));
	ts_send(&s->t, TS_IN, a, 300);
	ts_send(&s->t, TS_OUT, b, 20000);
	if (key_update) {
		ts_key_update(&s->t, false, true);
		ts_send(&s->t, TS_IN, a, 17000);
		ts_send(&s->t, TS_OUT, b, 3000);
	}
	ts_send(&s->t, TS_IN, a + 7, 100);
	ts_send(&s->t, TS_OUT, b + 3, 34000);
	ts_shutdown(&s->t);
	/* the wire, cut into records, each remembering the event it came in */
	evof[0] = calloc(s->t.n_ev + 1, sizeof(size_t));
	evof[1] = calloc(s->t.n_ev + 1, sizeof(size_t));
	for (size_t i = 0; i < s->t.n_ev; i++) {
		struct ts_event *e = &s->t.ev[i];

		if (e->kind == TS_KDF) {
			s->kdf_n++;
			continue;
		}
		all[e->kind] = realloc(all[e->kind], len[e->kind] + e->len);
		memcpy(all[e->kind] + len[e->kind], e->data, e->len);
		len[e->kind] += e->len;
		evof[e->kind][i] = len[e->kind];
	}
	for (size_t i = 0; i < s->t.n_ev && s->n < MAX_RECS; i++) {
		int d = s->t.ev[i].kind;

		if (d == TS_KDF)
			continue;
		while (off[d] + 5 <= evof[d][i] && s->n < MAX_RECS) {
			uint32_t l = 5 + ((uint32_t)all[d][off[d] + 3] << 8 | all[d][off[d] + 4]);
			struct rec *r = &s->recs[s->n++];

			r->p = malloc(l);
			memcpy(r->p, all[d] + off[d], l);
			r->len = l;
			r->dir = d;
			r->ev = i;
			off[d] += l;
		}
	}
	free(all[0]);
	free(all[1]);
	free(evof[0]);
	free(evof[1]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ts_opts o[N_SESS] = {
		{ .version = TLS1_3_VERSION, .suites = "TLS_AES_256_GCM_SHA384" },
		{ .version = TLS1_3_VERSION, .suites = "TLS_CHACHA20_POLY1305_SHA256" },
		{ .version = TLS1_3_VERSION, .suites = "TLS_AES_128_CCM_8_SHA256",
		  .server_groups = "P-256", .client_groups = "X25519:P-256" },
		{ .version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256" },
		{ .version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305" },
	};

	for (int i = 0; i < N_SESS; i++)
		make(&sessions[i], &o[i], i == 0);
	return 0;
}

/* What the engine delivered (ts_out: in sequence, nothing after the end), and each byte one
 * the sender wrote. */
struct out {
	struct ts_out o;
	const struct ts_session *t;
};

static int on_seg(void *ctx, const struct st_segment *s)
{
	struct out *x = ctx;

	CHECK(s->dir == 0 || s->dir == 1);
	if (s->kind == ST_SEG_DATA && s->len)
		CHECK(memmem(x->t->sent[s->dir], x->t->sent_len[s->dir], s->data, s->len));
	ts_out_cb(&x->o, s);
	CHECK(!x->o.bad);
	return 0;
}

static void feed(struct st_tlsdec *d, int dir, uint32_t *seq, const uint8_t *p, uint32_t n,
		 uint32_t mss, uint64_t *ts, bool loss)
{
	struct st_segment s;

	while (n) {
		uint32_t k = n < mss ? n : mss;

		memset(&s, 0, sizeof(s));
		ts_key(&s.key, dir, 40000);
		s.dir = (int8_t)dir;
		s.flags = ST_TCP_ACK;
		s.seq = *seq;
		s.ts_ns = (*ts)++;
		s.kind = loss ? ST_SEG_LOSS : ST_SEG_DATA;
		s.len = k;
		s.data = loss ? NULL : p;
		st_tlsdec__cipher(d, &s);
		*seq += k;
		if (!loss)
			p += k;
		n -= k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct st_tlsdec_ops ops = { .segment = on_seg };
	struct rec recs[MAX_RECS];
	unsigned order[MAX_RECS], n;
	bool kdf_drop[64] = { false }, faults = false;
	struct sess *s;
	struct st_tlsdec *d;
	struct out o;
	uint32_t mss, seq[2] = { 1, 7777 };
	uint64_t ts = 1000;
	uint8_t flags;
	uint8_t noise[256];

	if (size < 3)
		return 0;
	s = &sessions[data[0] % N_SESS];
	mss = 16 + (uint32_t)data[1] * 64; /* tiny segments: test_tlsdec */
	flags = data[2];
	n = s->n;
	memcpy(recs, s->recs, n * sizeof(*recs));
	for (unsigned i = 0; i < n; i++) {
		recs[i].p = malloc(recs[i].len);
		memcpy(recs[i].p, s->recs[i].p, recs[i].len);
		recs[i].cut = recs[i].len;
		order[i] = i;
	}
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (uint8_t)(st_mix64(i) >> 7);
	for (size_t i = 3; i + 4 <= size; i += 4) {
		unsigned r = data[i + 1] % n, r2;
		struct rec *x = &recs[order[r]];
		uint8_t a = data[i + 2], b = data[i + 3];

		faults = true;
		switch (data[i] % 8) {
		case 0:
			x->p[((uint32_t)a << 8 | b) % x->len] ^= (uint8_t)(1 + (a ^ b));
			break;
		case 1:
			x->cut = a % x->len;
			break;
		case 2: /* the next record of the same direction */
			for (r2 = r + 1; r2 < n && recs[order[r2]].dir != x->dir; r2++)
				;
			if (r2 < n) {
				unsigned t = order[r];

				order[r] = order[r2];
				order[r2] = t;
			}
			break;
		case 3:
			x->dup = true;
			break;
		case 4:
			x->lost = true;
			break;
		case 5:
			x->noise = a;
			break;
		case 6:
			kdf_drop[a % 64] = true;
			break;
		case 7:
			x->p[0] = a;
			x->p[3] = b;
			break;
		}
	}
	memset(&o, 0, sizeof(o));
	o.t = &s->t;
	d = st_tlsdec__new(NULL, &ops, &o);
	CHECK(d);
	if (!(flags & 4)) {
		struct st_segment sy;

		for (int dir = 0; dir < 2; dir++) {
			memset(&sy, 0, sizeof(sy));
			ts_key(&sy.key, dir, 40000);
			sy.dir = (int8_t)dir;
			sy.flags = dir ? ST_TCP_SYN | ST_TCP_ACK : ST_TCP_SYN;
			sy.seq = seq[dir]++;
			sy.ts_ns = ts++;
			st_tlsdec__cipher(d, &sy);
		}
	}
	{
		/* secrets in their place (before the records of the next wire event), late, or
		 * reversed; records in the (faulted) order */
		size_t ev = 0;
		unsigned k = 0;
		const struct ts_session *t = &s->t;

		for (unsigned i = 0; i < n; i++) {
			struct rec *x = &recs[order[i]];

			for (; !(flags & 3) && ev <= s->recs[order[i]].ev && ev < t->n_ev; ev++)
				if (t->ev[ev].kind == TS_KDF && !kdf_drop[k++ % 64])
					st_tlsdec__kdf(d, t->ev[ev].data, t->ev[ev].len, ts++);
			for (int rep = 0; rep < (x->dup ? 2 : 1); rep++) {
				feed(d, x->dir, &seq[x->dir], x->p, x->cut, mss, &ts, x->lost);
				if (x->cut < x->len)
					feed(d, x->dir, &seq[x->dir], NULL, x->len - x->cut, mss, &ts, true);
			}
			if (x->noise)
				feed(d, x->dir, &seq[x->dir], noise, x->noise, mss, &ts, false);
		}
		if (flags & 3) {
			for (size_t j = 0; j < t->n_ev; j++) {
				size_t e = (flags & 2) ? t->n_ev - 1 - j : j;

				if (t->ev[e].kind == TS_KDF && !kdf_drop[k++ % 64])
					st_tlsdec__kdf(d, t->ev[e].data, t->ev[e].len, ts++);
			}
		}
		for (; ev < t->n_ev; ev++)
			if (t->ev[ev].kind == TS_KDF && !kdf_drop[k++ % 64])
				st_tlsdec__kdf(d, t->ev[ev].data, t->ev[ev].len, ts++);
	}
	for (int dir = 0; dir < 2; dir++) {
		struct st_segment f;

		memset(&f, 0, sizeof(f));
		ts_key(&f.key, dir, 40000);
		f.dir = (int8_t)dir;
		f.flags = ST_TCP_FIN | ST_TCP_ACK;
		f.seq = seq[dir];
		f.ts_ns = ts++;
		st_tlsdec__cipher(d, &f);
	}
	st_tlsdec__tick(d, ts + 60ull * 1000000000ull);
	st_tlsdec__flush(d);
	if (!faults && !(flags & 4)) {
		/* nothing wrong: exactly what each side wrote */
		for (int dir = 0; dir < 2; dir++) {
			CHECK(o.o.loss[dir] == 0);
			CHECK(o.o.len[dir] == s->t.sent_len[dir]);
			CHECK(!memcmp(o.o.data[dir], s->t.sent[dir], o.o.len[dir]));
		}
	}
	{
		struct st_tlsdec_stats st;

		st_tlsdec__stats(d, &st);
		CHECK(st.held_bytes == 0);
	}
	st_tlsdec__free(d);
	for (unsigned i = 0; i < n; i++)
		free(recs[i].p);
	ts_out_free(&o.o);
	return 0;
}
