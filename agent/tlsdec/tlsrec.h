/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TLS record protection, one direction and one key epoch at a time: the AEAD cipher suites
 * of TLS 1.2 (RFC 5288 AES-GCM, RFC 7905 ChaCha20-Poly1305, RFC 6655/7251 AES-CCM) and TLS 1.3
 * (RFC 8446 5.2-5.3), opened through OpenSSL's EVP. Pure: no I/O, no state beyond the keys;
 * agent/tlsdec/tlsdec.c decides which keys and which sequence number a record gets.
 *
 * A record is its 5-byte header and its body as on the wire. st_tlsrec_open() never guesses:
 * it returns the plaintext only when the authentication tag verifies for that sequence
 * number (an attacker's or a damaged record fails; so does a right record under a wrong
 * sequence number, which is how a resynchronisation proves where it is).
 *
 * Keys are wiped (OPENSSL_cleanse) by st_tlsrec_keys_wipe(); the EVP context's copy of the
 * schedule goes with EVP_CIPHER_CTX_free, which cleanses it.
 */
#ifndef ST_TLSREC_H
#define ST_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_TLS_HDR 5u
#define ST_TLS_V12 0x0303
#define ST_TLS_V13 0x0304
/* Largest record body a peer may send (RFC 8446 5.2: 2^14 + 256; RFC 5246 6.2.3: 2^14 + 2048). */
#define ST_TLS_BODY_MAX (16384u + 2048u)
#define ST_TLS_PLAIN_MAX 16384u
#define ST_TLS_SECRET_MAX 48 /* SHA-384 */
#define ST_TLS_KEY_MAX 32
#define ST_TLS_IV_MAX 12

/* Record content types. */
enum {
	ST_TLS_CT_CCS = 20,
	ST_TLS_CT_ALERT = 21,
	ST_TLS_CT_HANDSHAKE = 22,
	ST_TLS_CT_APPDATA = 23,
};

enum st_tlsrec_aead {
	ST_AEAD_AES_128_GCM = 1,
	ST_AEAD_AES_256_GCM,
	ST_AEAD_CHACHA20_POLY1305,
	ST_AEAD_AES_128_CCM,
	ST_AEAD_AES_256_CCM,
};

struct st_tlsrec_suite {
	uint16_t id;
	uint8_t tls13;        /* a TLS 1.3 suite (RFC 8446 B.4) */
	uint8_t aead;         /* enum st_tlsrec_aead */
	uint8_t key_len;
	uint8_t iv_len;       /* 1.3 and 1.2 ChaCha20: 12 (XOR with the sequence number); 1.2 GCM
			       * and CCM: the 4-byte salt before the record's explicit nonce */
	uint8_t explicit_len; /* 1.2 GCM and CCM: 8 bytes of nonce at the body's start */
	uint8_t tag_len;      /* 16, or 8 for the CCM_8 suites */
	const char *hash;     /* the suite's hash (1.3 key schedule, 1.2 PRF): "SHA256", "SHA384" */
	const char *name;
};

/* The AEAD suite id (a ServerHello's cipher_suite), or NULL when shadowtap cannot open its
 * records (CBC, NULL, export, unknown ones). */
const struct st_tlsrec_suite *st_tlsrec_suite(uint16_t id);

/* Bytes a protected record adds to its plaintext: header, explicit nonce, tag, and TLS 1.3's
 * inner content type (padding is not counted: senders shadowtap has met do not pad). */
static inline uint32_t st_tlsrec_overhead(const struct st_tlsrec_suite *s)
{
	return ST_TLS_HDR + s->explicit_len + s->tag_len + (s->tls13 ? 1u : 0u);
}

/* One direction's keys of one epoch. Zeroed = none. */
struct st_tlsrec_keys {
	const struct st_tlsrec_suite *suite;
	void *ctx;          /* EVP_CIPHER_CTX */
	const void *cipher; /* EVP_CIPHER */
	uint8_t key[ST_TLS_KEY_MAX];
	uint8_t iv[ST_TLS_IV_MAX];
};

/* Sets k (wiping what it held) for suite with key and iv (suite's lengths). cipher: the
 * suite's AEAD as an EVP_CIPHER fetched once by the caller (OpenSSL 3 looks an implicit one up
 * by name at every use: a lock and string compares per connection), or NULL for that.
 * 0 or -ENOMEM/-EINVAL. */
int st_tlsrec_keys_set(struct st_tlsrec_keys *k, const struct st_tlsrec_suite *suite,
		       const uint8_t *key, const uint8_t *iv, const void *cipher);
/* The OpenSSL name of a suite's AEAD ("AES-128-GCM"), for a caller that fetches it. */
const char *st_tlsrec_aead_name(const struct st_tlsrec_suite *suite);
static inline bool st_tlsrec_keys_on(const struct st_tlsrec_keys *k)
{
	return k->suite != NULL;
}
/* Wipes and frees; k is "none" after. */
void st_tlsrec_keys_wipe(struct st_tlsrec_keys *k);

#define ST_TLSREC_AUTH -1 /* the tag does not verify: damaged, or another key or sequence number */
#define ST_TLSREC_SHORT -2 /* the body cannot be a protected record (shorter than the overhead, or
			    * TLS 1.3 plaintext of padding only) */

/*
 * Opens the record hdr + body[0, len) under k at sequence number seq. Returns the plaintext's
 * length, written to out (room for len bytes), and its content type in *ctype (TLS 1.3: the
 * inner type; TLS 1.2: the header's), or ST_TLSREC_AUTH / ST_TLSREC_SHORT.
 */
int st_tlsrec_open(struct st_tlsrec_keys *k, uint64_t seq, const uint8_t hdr[ST_TLS_HDR],
		   const uint8_t *body, size_t len, uint8_t *out, uint8_t *ctype);

/* The sequence number a TLS 1.2 GCM/CCM record's explicit nonce carries when the sender
 * counts its nonces (OpenSSL does): a resynchronisation's first guess. false for other suites. */
bool st_tlsrec_explicit_seq(const struct st_tlsrec_keys *k, const uint8_t *body, size_t len,
			    uint64_t *seq);

/*
 * Protects plaintext (ctype, in[0, n)) as the sender would, for tests and the fuzzer's
 * corpus: writes header + body to out (room for n + st_tlsrec_overhead() bytes) and returns
 * the record's length, or -1.
 */
int st_tlsrec_seal(struct st_tlsrec_keys *k, uint64_t seq, uint8_t ctype, const uint8_t *in,
		   size_t n, uint8_t *out);

#endif /* ST_TLSREC_H */
