/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Not a test: real TLS sessions between an OpenSSL client and server in this process (memory
 * BIOs, no network), for the decryptor's unit tests and its fuzzer. It records what the agent
 * would see of them:
 *  - the wire, as events in the order the bytes went (client -> server TS_IN, server ->
 *    client TS_OUT), each event one segment's worth;
 *  - the server's EVP_KDF_derive calls, as the probe reads them (struct st_kdf_rec: the
 *    first ST_KDF_PARAMS OSSL_PARAMs, names cut at ST_KDF_NAME_MAX, data at ST_KDF_DATA_MAX),
 *    in order with the wire (TS_KDF). libssl calls EVP_KDF_derive through its PLT, so this
 *    executable's definition of it (below) sees every call, then calls libcrypto's: the same
 *    place the uprobe sits;
 *  - the plaintext each side wrote, and the client's SSLKEYLOGFILE lines (OpenSSL's own keylog
 *    callback: the referee the engine's --keylog lines are checked against).
 * ts_feed() replays a session into a struct st_tlsdec as the tap would (SYN pair, segments
 * of at most ts_feed_opts.mss bytes, FIN pair), with the faults a test asks for; ts_out_cb
 * collects what the engine delivers.
 *
 * Include once per test binary (it defines EVP_KDF_derive).
 */
#ifndef ST_TEST_TLS_SESSION_H
#define ST_TEST_TLS_SESSION_H

#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "bpf/shadowtap.h"
#include "segment.h"
#include "tlsdec.h"
#include "tlskeys.h"

enum ts_kind { TS_IN = ST_DIR_IN, TS_OUT = ST_DIR_OUT, TS_KDF = 2 };

struct ts_event {
	int kind;
	uint8_t *data;
	size_t len;
};

/* Contexts shared by the sessions of one test (so a session can be resumed). */
struct ts_ctx {
	SSL_CTX *cctx, *sctx;
	char keylog[16384]; /* the client's SSLKEYLOGFILE lines */
	size_t keylog_len;
};

struct ts_session {
	struct ts_ctx *x;
	SSL *c, *s;
	BIO *c_in, *c_out, *s_in, *s_out;
	struct ts_event *ev;
	size_t n_ev, cap_ev;
	uint8_t *sent[2];   /* plaintext written: [TS_IN] by the client, [TS_OUT] by the server */
	size_t sent_len[2], sent_cap[2];
	uint32_t tgid;
};

/* The session whose server is being driven (the interposer records only its calls). */
static struct ts_session *ts_recording;

static void ts_push(struct ts_session *t, int kind, const void *p, size_t n)
{
	if (t->n_ev == t->cap_ev) {
		t->cap_ev = t->cap_ev ? t->cap_ev * 2 : 64;
		t->ev = realloc(t->ev, t->cap_ev * sizeof(*t->ev));
	}
	t->ev[t->n_ev].kind = kind;
	t->ev[t->n_ev].data = malloc(n ? n : 1);
	memcpy(t->ev[t->n_ev].data, p, n);
	t->ev[t->n_ev].len = n;
	t->n_ev++;
}

/* What bpf/tls.bpf.c's tls_kdf reads of one call. */
static void ts_kdf_record(struct ts_session *t, size_t outlen, const OSSL_PARAM *params)
{
	struct st_kdf_rec r;

	memset(&r, 0, sizeof(r));
	r.version = ST_ABI_VERSION;
	r.type = ST_REC_KDF;
	r.tgid = t->tgid;
	r.outlen = outlen;
	for (const OSSL_PARAM *p = params; p && p->key && r.n < ST_KDF_PARAMS; p++, r.n++) {
		struct st_kdf_param *q = &r.p[r.n];
		size_t cp = p->data_size < ST_KDF_DATA_MAX ? p->data_size : ST_KDF_DATA_MAX;

		strncpy(q->name, p->key, ST_KDF_NAME_MAX);
		q->size = (uint32_t)p->data_size;
		q->type = p->data_type;
		if (p->data && cp)
			memcpy(q->data, p->data, cp);
	}
	ts_push(t, TS_KDF, &r, sizeof(r));
}

int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[]);
int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
	static int (*real)(EVP_KDF_CTX *, unsigned char *, size_t, const OSSL_PARAM *);

	if (!real)
		real = (int (*)(EVP_KDF_CTX *, unsigned char *, size_t, const OSSL_PARAM *))dlsym(
			RTLD_NEXT, "EVP_KDF_derive");
	if (ts_recording && params)
		ts_kdf_record(ts_recording, keylen, params);
	return real(ctx, key, keylen, params);
}

static void ts_keylog_cb(const SSL *ssl, const char *line)
{
	struct ts_ctx *x = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	size_t n = strlen(line);

	if (x->keylog_len + n + 2 < sizeof(x->keylog)) {
		memcpy(x->keylog + x->keylog_len, line, n);
		x->keylog_len += n;
		x->keylog[x->keylog_len++] = '\n';
		x->keylog[x->keylog_len] = '\0';
	}
}

struct ts_opts {
	int version;           /* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *ciphers;   /* TLS 1.2 cipher list (ECDSA certificate), or NULL */
	const char *suites;    /* TLS 1.3 suites, or NULL */
	const char *server_groups; /* e.g. "P-256" with client "X25519:P-256": HelloRetryRequest */
	const char *client_groups;
	bool tickets_off;      /* TLS 1.2: session ids instead of tickets */
	uint32_t max_early;    /* TLS 1.3 0-RTT: the server's max_early_data */
};

/* Contexts with a fresh ECDSA P-256 certificate; 0 or -1. */
static int ts_ctx_init(struct ts_ctx *x, const struct ts_opts *o)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *crt = X509_new();
	X509_NAME *nm;
	int ok;

	memset(x, 0, sizeof(*x));
	if (!pk || !crt)
		return -1;
	ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
	X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	X509_gmtime_adj(X509_getm_notAfter(crt), 86400);
	X509_set_pubkey(crt, pk);
	nm = X509_get_subject_name(crt);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"st", -1, -1, 0);
	X509_set_issuer_name(crt, nm);
	X509_sign(crt, pk, EVP_sha256());
	x->cctx = SSL_CTX_new(TLS_client_method());
	x->sctx = SSL_CTX_new(TLS_server_method());
	ok = x->cctx && x->sctx && SSL_CTX_use_certificate(x->sctx, crt) == 1 &&
	     SSL_CTX_use_PrivateKey(x->sctx, pk) == 1;
	X509_free(crt);
	EVP_PKEY_free(pk);
	if (!ok)
		return -1;
	SSL_CTX_set_security_level(x->cctx, 0);
	SSL_CTX_set_security_level(x->sctx, 0);
	SSL_CTX_set_min_proto_version(x->cctx, o->version);
	SSL_CTX_set_max_proto_version(x->cctx, o->version);
	SSL_CTX_set_min_proto_version(x->sctx, o->version);
	SSL_CTX_set_max_proto_version(x->sctx, o->version);
	if (o->ciphers && (SSL_CTX_set_cipher_list(x->cctx, o->ciphers) != 1 ||
			   SSL_CTX_set_cipher_list(x->sctx, o->ciphers) != 1))
		return -1;
	if (o->suites && (SSL_CTX_set_ciphersuites(x->cctx, o->suites) != 1 ||
			  SSL_CTX_set_ciphersuites(x->sctx, o->suites) != 1))
		return -1;
	if (o->server_groups && SSL_CTX_set1_groups_list(x->sctx, o->server_groups) != 1)
		return -1;
	if (o->client_groups && SSL_CTX_set1_groups_list(x->cctx, o->client_groups) != 1)
		return -1;
	if (o->tickets_off)
		SSL_CTX_set_options(x->sctx, SSL_OP_NO_TICKET);
	if (o->max_early) {
		SSL_CTX_set_max_early_data(x->sctx, o->max_early);
		SSL_CTX_set_recv_max_early_data(x->sctx, o->max_early);
	}
	SSL_CTX_set_session_cache_mode(x->cctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_set_session_cache_mode(x->sctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(x->sctx, (const unsigned char *)"st", 2);
	SSL_CTX_set_app_data(x->cctx, x);
	SSL_CTX_set_keylog_callback(x->cctx, ts_keylog_cb);
	return 0;
}

static void ts_ctx_free(struct ts_ctx *x)
{
	SSL_CTX_free(x->cctx);
	SSL_CTX_free(x->sctx);
}

static void ts_sent(struct ts_session *t, int dir, const void *p, size_t n)
{
	while (t->sent_len[dir] + n > t->sent_cap[dir]) {
		t->sent_cap[dir] = t->sent_cap[dir] ? t->sent_cap[dir] * 2 : 4096;
		t->sent[dir] = realloc(t->sent[dir], t->sent_cap[dir]);
	}
	memcpy(t->sent[dir] + t->sent_len[dir], p, n);
	t->sent_len[dir] += n;
}

/* Moves what each side wrote to the other, recording it. */
static void ts_pump(struct ts_session *t)
{
	uint8_t buf[65536];
	int n;

	while ((n = BIO_read(t->c_out, buf, sizeof(buf))) > 0) {
		ts_push(t, TS_IN, buf, (size_t)n);
		BIO_write(t->s_in, buf, n);
	}
	while ((n = BIO_read(t->s_out, buf, sizeof(buf))) > 0) {
		ts_push(t, TS_OUT, buf, (size_t)n);
		BIO_write(t->c_in, buf, n);
	}
}

/* The server side's own call, recorded. */
#define TS_SERVER(t, call)                                                                 \
	({                                                                                 \
		ts_recording = (t);                                                        \
		__typeof__(call) r_ = (call);                                              \
		ts_recording = NULL;                                                       \
		r_;                                                                        \
	})

/* Reads what the side has (its plaintext is the peer's record of what it sent). */
static void ts_drain(struct ts_session *t, bool server)
{
	uint8_t buf[65536];
	int n;

	for (;;) {
		n = server ? TS_SERVER(t, SSL_read(t->s, buf, sizeof(buf))) :
			     SSL_read(t->c, buf, sizeof(buf));
		if (n <= 0)
			break;
	}
	ts_pump(t);
}

/* A handshake (resuming sess when given, with 0-RTT early bytes when given); 0 or -1. */
static int ts_open(struct ts_session *t, struct ts_ctx *x, SSL_SESSION *sess, const void *early,
		   size_t early_len)
{
	int cdone = 0, sdone = 0;

	memset(t, 0, sizeof(*t));
	t->x = x;
	t->tgid = 4242;
	t->c = SSL_new(x->cctx);
	t->s = SSL_new(x->sctx);
	t->c_in = BIO_new(BIO_s_mem());
	t->c_out = BIO_new(BIO_s_mem());
	t->s_in = BIO_new(BIO_s_mem());
	t->s_out = BIO_new(BIO_s_mem());
	SSL_set_bio(t->c, t->c_in, t->c_out);
	SSL_set_bio(t->s, t->s_in, t->s_out);
	SSL_set_connect_state(t->c);
	SSL_set_accept_state(t->s);
	if (sess)
		SSL_set_session(t->c, sess);
	if (early_len) {
		size_t w = 0;

		if (SSL_write_early_data(t->c, early, early_len, &w) != 1 || w != early_len)
			return -1;
		ts_pump(t);
		/* the server reads the hello and the early data, answers; the client finishes (its
		 * EndOfEarlyData); the server reads to the end of the early data */
		bool fin = false;

		for (int round = 0; round < 2; round++) {
			while (!fin) {
				uint8_t buf[65536];
				size_t r = 0;
				int e = TS_SERVER(t, SSL_read_early_data(t->s, buf, sizeof(buf), &r));

				if (r)
					ts_sent(t, TS_IN, buf, r); /* what the server took */
				if (e == SSL_READ_EARLY_DATA_FINISH)
					fin = true;
				if (e == SSL_READ_EARLY_DATA_ERROR) {
					if (SSL_get_error(t->s, 0) != SSL_ERROR_WANT_READ)
						return -1;
					break;
				}
			}
			ts_pump(t);
			if (!round) {
				cdone = SSL_do_handshake(t->c) == 1;
				ts_pump(t);
			}
		}
	}
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(t->c) == 1;
		ts_pump(t);
		if (!sdone)
			sdone = TS_SERVER(t, SSL_do_handshake(t->s)) == 1;
		ts_pump(t);
	}
	if (!cdone || !sdone)
		return -1;
	ts_drain(t, false); /* session tickets */
	return 0;
}

/* dir TS_IN: the client writes n bytes of p, the server reads them; TS_OUT the other way. */
static void ts_send(struct ts_session *t, int dir, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		size_t k = n > 98304 ? 98304 : n; /* whole 16 KiB records */
		int w = dir == TS_IN ? SSL_write(t->c, b, (int)k) :
				       TS_SERVER(t, SSL_write(t->s, b, (int)k));

		if (w <= 0)
			break;
		ts_sent(t, dir, b, (size_t)w);
		b += w;
		n -= (size_t)w;
		ts_pump(t);
		ts_drain(t, dir == TS_IN);
	}
}

/* A KeyUpdate from one side (requested: the peer answers with its own at its next write). */
static void ts_key_update(struct ts_session *t, bool server, bool requested)
{
	int type = requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED;

	if (server) {
		SSL_key_update(t->s, type);
		TS_SERVER(t, SSL_do_handshake(t->s));
	} else {
		SSL_key_update(t->c, type);
		SSL_do_handshake(t->c);
	}
	ts_pump(t);
	ts_drain(t, !server);
}

/* close_notify both ways. */
static void ts_shutdown(struct ts_session *t)
{
	SSL_shutdown(t->c);
	ts_pump(t);
	TS_SERVER(t, SSL_shutdown(t->s));
	ts_pump(t);
}

static void ts_free(struct ts_session *t)
{
	SSL_free(t->c);
	SSL_free(t->s);
	for (size_t i = 0; i < t->n_ev; i++)
		free(t->ev[i].data);
	free(t->ev);
	free(t->sent[0]);
	free(t->sent[1]);
}

/* ---- replaying a session into the engine --------------------------------------------- */

struct ts_feed_opts {
	uint32_t mss;           /* bytes per segment; 0 = 1448 */
	bool kdf_last;          /* the secrets after every byte (records wait for their keys) */
	bool kdf_none;          /* no secrets at all */
	bool no_syn;            /* the capture joined after the SYNs */
	/* a capture loss of lose_len bytes of direction lose_dir at its stream offset lose_at */
	int lose_dir;
	uint64_t lose_at, lose_len;
	/* a byte of direction flip_dir at stream offset flip_at arrives damaged */
	int flip_dir;
	uint64_t flip_at;
	uint16_t cport;         /* the client's port; 0 = 40000 */
};

static void ts_key(struct st_flow_key *k, int dir, uint16_t cport)
{
	memset(k, 0, sizeof(*k));
	k->src.family = k->dst.family = 4;
	if (dir == ST_DIR_IN) {
		k->src.a[0] = htonl(0x0a000002);
		k->dst.a[0] = htonl(0x0a000001);
		k->sport = cport;
		k->dport = 443;
	} else {
		k->src.a[0] = htonl(0x0a000001);
		k->dst.a[0] = htonl(0x0a000002);
		k->sport = 443;
		k->dport = cport;
	}
}

/* The segments of a session (and its secrets) into d, as the tap would give them. */
static int ts_feed(struct ts_session *t, struct st_tlsdec *d, const struct ts_feed_opts *o)
{
	static const struct ts_feed_opts none = { .lose_dir = -1, .flip_dir = -1 };
	uint32_t seq[2] = { 1000, 500000 }, mss;
	uint64_t off[2] = { 0, 0 }, ts = 1000000000ull;
	uint16_t cport;
	struct st_segment s;
	int err = 0;

	if (!o)
		o = &none;
	mss = o->mss ? o->mss : 1448;
	cport = o->cport ? o->cport : 40000;
	if (!o->no_syn) {
		for (int dir = 0; dir < 2; dir++) {
			memset(&s, 0, sizeof(s));
			ts_key(&s.key, dir, cport);
			s.dir = (int8_t)dir;
			s.flags = dir ? ST_TCP_SYN | ST_TCP_ACK : ST_TCP_SYN;
			s.seq = seq[dir]++;
			s.ts_ns = ts++;
			err |= st_tlsdec__cipher(d, &s);
		}
	}
	for (size_t i = 0; i < t->n_ev; i++) {
		struct ts_event *e = &t->ev[i];

		if (e->kind == TS_KDF) {
			if (!o->kdf_last && !o->kdf_none)
				err |= st_tlsdec__kdf(d, e->data, e->len, ts++);
			continue;
		}
		for (size_t p = 0; p < e->len;) {
			uint32_t n = e->len - p > mss ? mss : (uint32_t)(e->len - p);
			int dir = e->kind;
			uint8_t buf[65536];

			memcpy(buf, e->data + p, n);
			memset(&s, 0, sizeof(s));
			ts_key(&s.key, dir, cport);
			s.dir = (int8_t)dir;
			s.flags = ST_TCP_ACK | ST_TCP_PSH;
			s.seq = seq[dir];
			s.ts_ns = ts++;
			if (dir == o->flip_dir && o->flip_at >= off[dir] && o->flip_at < off[dir] + n)
				buf[o->flip_at - off[dir]] ^= 0x5a;
			if (dir == o->lose_dir && off[dir] + n > o->lose_at &&
			    off[dir] < o->lose_at + o->lose_len) {
				/* the part of this segment inside the loss is announced as lost */
				uint64_t a = o->lose_at > off[dir] ? o->lose_at - off[dir] : 0;
				uint64_t b = o->lose_at + o->lose_len - off[dir];

				if (b > n)
					b = n;
				if (a) {
					s.len = (uint32_t)a;
					s.data = buf;
					err |= st_tlsdec__cipher(d, &s);
				}
				s.kind = ST_SEG_LOSS;
				s.seq = seq[dir] + (uint32_t)a;
				s.len = (uint32_t)(b - a);
				s.data = NULL;
				err |= st_tlsdec__cipher(d, &s);
				if (b < n) {
					s.kind = ST_SEG_DATA;
					s.seq = seq[dir] + (uint32_t)b;
					s.len = n - (uint32_t)b;
					s.data = buf + b;
					err |= st_tlsdec__cipher(d, &s);
				}
			} else {
				s.len = n;
				s.data = buf;
				err |= st_tlsdec__cipher(d, &s);
			}
			seq[dir] += n;
			off[dir] += n;
			p += n;
		}
	}
	if (o->kdf_last && !o->kdf_none)
		for (size_t i = 0; i < t->n_ev; i++)
			if (t->ev[i].kind == TS_KDF)
				err |= st_tlsdec__kdf(d, t->ev[i].data, t->ev[i].len, ts++);
	for (int dir = 0; dir < 2; dir++) {
		memset(&s, 0, sizeof(s));
		ts_key(&s.key, dir, cport);
		s.dir = (int8_t)dir;
		s.flags = ST_TCP_FIN | ST_TCP_ACK;
		s.seq = seq[dir];
		s.ts_ns = ts++;
		err |= st_tlsdec__cipher(d, &s);
	}
	return err;
}

/* What the engine delivered: each direction's plaintext by offset (holes zero-filled). */
struct ts_out {
	uint8_t *data[2];
	size_t len[2], cap[2];
	uint64_t loss[2];
	uint32_t holes[2];
	bool syn[2], fin[2], rst[2], started[2];
	uint32_t next[2];
	uint32_t bad;          /* segments out of sequence or after the end (must stay 0) */
	uint64_t segments;
	char keylog[16384];
	size_t keylog_len;
};

static void ts_out_put(struct ts_out *o, int dir, const uint8_t *p, size_t n)
{
	while (o->len[dir] + n > o->cap[dir]) {
		o->cap[dir] = o->cap[dir] ? o->cap[dir] * 2 : 65536;
		o->data[dir] = realloc(o->data[dir], o->cap[dir]);
	}
	if (p)
		memcpy(o->data[dir] + o->len[dir], p, n);
	else
		memset(o->data[dir] + o->len[dir], 0, n);
	o->len[dir] += n;
}

static int ts_out_cb(void *ctx, const struct st_segment *s)
{
	struct ts_out *o = ctx;
	int dir = s->dir;

	o->segments++;
	if (dir < 0 || dir > 1) {
		o->bad++;
		return 0;
	}
	if (s->flags & ST_TCP_SYN) {
		if (o->started[dir])
			o->bad++; /* a second start */
		o->syn[dir] = true;
		o->started[dir] = true;
		o->next[dir] = s->seq + 1;
		return 0;
	}
	if (!o->started[dir]) {
		o->started[dir] = true;
		o->next[dir] = s->seq;
	}
	if (s->seq != o->next[dir] || o->fin[dir] || o->rst[dir])
		o->bad++; /* out of sequence, or after the end */
	if (s->kind == ST_SEG_LOSS) {
		ts_out_put(o, dir, NULL, s->len);
		o->loss[dir] += s->len;
		o->holes[dir]++;
		o->next[dir] += s->len;
		return 0;
	}
	if (s->len) {
		ts_out_put(o, dir, s->data, s->len);
		o->next[dir] += s->len;
	}
	if (s->flags & ST_TCP_FIN)
		o->fin[dir] = true;
	if (s->flags & ST_TCP_RST)
		o->rst[dir] = true;
	return 0;
}

static void ts_out_keylog(void *ctx, const char *name, const uint8_t cr[32], const uint8_t *secret,
			  size_t len)
{
	struct ts_out *o = ctx;
	char line[256];
	size_t n = st_tlskeys_keylog_line(line, sizeof(line), name, cr, secret, len);

	if (n && o->keylog_len + n < sizeof(o->keylog)) {
		memcpy(o->keylog + o->keylog_len, line, n);
		o->keylog_len += n;
		o->keylog[o->keylog_len] = '\0';
	}
}

static void ts_out_free(struct ts_out *o)
{
	free(o->data[0]);
	free(o->data[1]);
	memset(o, 0, sizeof(*o));
}

/* Sorted lines of s (for comparing key logs whose order differs), in out. */
static void ts_sort_lines(const char *s, char *out, size_t size)
{
	char *copy = strdup(s), *lines[256], *save = NULL;
	size_t n = 0, used = 0;

	for (char *l = strtok_r(copy, "\n", &save); l && n < 256; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
			char *x = lines[j];

			lines[j] = lines[j - 1];
			lines[j - 1] = x;
		}
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, size > used ? size - used : 0, "%s\n", lines[i]);
	free(copy);
}

#endif /* ST_TEST_TLS_SESSION_H */
