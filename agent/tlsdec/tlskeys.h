/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TLS key schedules and what the probes say about them (docs/TLS.md, "Keys mode"):
 *  - an ST_REC_KDF record (bpf/shadowtap.h: the parameters of one EVP_KDF_derive call, read
 *    from OpenSSL's public OSSL_PARAM array) parsed into what it derives: a TLS 1.3 secret
 *    (its label, the input secret, the transcript hash it binds) or TLS 1.2's key block (the
 *    master secret and both randoms). No OpenSSL struct offsets, no per-version tables: the
 *    parameter names are OpenSSL's documented ones ("label", "key", "data", "secret", "seed");
 *  - the derivations the agent does itself from those: HKDF-Expand-Label (RFC 8446 7.1) for a
 *    TLS 1.3 secret, its traffic keys (7.3) and the next generation after a KeyUpdate (7.2);
 *    TLS 1.2's key block (RFC 5246 6.3) through OpenSSL's TLS1-PRF;
 *  - SSLKEYLOGFILE lines (NSS's format, what Wireshark reads: "LABEL <client random hex>
 *    <secret hex>").
 *
 * One struct st_tlskeys per engine holds the fetched algorithms (fetching is slow). Secrets
 * pass through caller buffers: wiping them is the caller's (OPENSSL_cleanse).
 */
#ifndef ST_TLSKEYS_H
#define ST_TLSKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsrec.h"

/* The TLS 1.3 secrets the engine uses, by their HKDF label (RFC 8446 7.1). */
enum st_tlskeys_secret {
	ST_S13_CLIENT_EARLY = 0, /* "c e traffic" */
	ST_S13_CLIENT_HS,        /* "c hs traffic" */
	ST_S13_SERVER_HS,        /* "s hs traffic" */
	ST_S13_CLIENT_AP,        /* "c ap traffic" */
	ST_S13_SERVER_AP,        /* "s ap traffic" */
	ST_S13_EXPORTER,         /* "exp master" */
	ST_S13_EARLY_EXPORTER,   /* "e exp master" */
	ST_S13_MAX,
};

/* The label of secret i ("c hs traffic") and its key-log name (CLIENT_HANDSHAKE_TRAFFIC_SECRET). */
const char *st_tlskeys_label13(enum st_tlskeys_secret i);
const char *st_tlskeys_keylog_name(enum st_tlskeys_secret i);

enum st_tlskeys_kdf_kind {
	ST_KDF_TLS13 = 1, /* a TLS 1.3 secret: out = HKDF-Expand-Label(secret, label, context) */
	ST_KDF_TLS12 = 2, /* TLS 1.2 "key expansion": the master secret and the randoms */
};

/* What one ST_REC_KDF record derives. */
struct st_tlskeys_kdf {
	int kind;
	uint32_t tgid;
	uint64_t ts_ns;
	char digest[24];                   /* the hash's name as OpenSSL gave it ("SHA256") */
	uint8_t secret[ST_TLS_SECRET_MAX]; /* 1.3: the input secret; 1.2: the master secret */
	uint8_t secret_len;
	uint8_t label;                     /* 1.3: enum st_tlskeys_secret */
	uint8_t context_len;               /* 1.3: the transcript hash's length */
	uint8_t context[ST_TLS_SECRET_MAX];
	uint8_t client_random[32];         /* 1.2 */
	uint8_t server_random[32];
	uint32_t outlen;
};

/*
 * Parses an ST_REC_KDF record of size bytes. 0 and *out filled, or -EINVAL: malformed (too
 * short, wrong version), or a derivation the engine has no use for (another label, another
 * KDF: PBKDF2, HKDF of an application). Wipe *out after use.
 */
int st_tlskeys_parse_kdf(const void *rec, size_t size, struct st_tlskeys_kdf *out);

struct st_tlskeys;
/* NULL when OpenSSL lacks HKDF or TLS1-PRF (never on OpenSSL 3). */
struct st_tlskeys *st_tlskeys__new(void);
void st_tlskeys__free(struct st_tlskeys *k);

/* The EVP_MD of an OpenSSL hash name ("SHA256", "SHA2-384"; fetched once), or NULL. */
const void *st_tlskeys__md(struct st_tlskeys *k, const char *digest);
/* The digest's output length for an OpenSSL hash name ("SHA256", "SHA2-384"), 0 if unknown. */
size_t st_tlskeys__hash_len(struct st_tlskeys *k, const char *digest);

/* HKDF-Expand-Label(secret, label, context, outlen) with hash digest. 0 or -1. */
int st_tlskeys__expand_label(struct st_tlskeys *k, const char *digest, const uint8_t *secret,
			     size_t slen, const char *label, const uint8_t *context, size_t clen,
			     uint8_t *out, size_t outlen);

/* What a ST_KDF_TLS13 record derives: its secret (hash length bytes into out). 0 or -1. */
int st_tlskeys__derive13(struct st_tlskeys *k, const struct st_tlskeys_kdf *kdf, uint8_t *out,
			 size_t *outlen);

/* A TLS 1.3 traffic secret's keys for suite (RFC 8446 7.3) into keys. 0 or -errno. */
int st_tlskeys__traffic(struct st_tlskeys *k, const struct st_tlsrec_suite *suite,
			const uint8_t *secret, struct st_tlsrec_keys *keys);
/* The next generation of a TLS 1.3 traffic secret (KeyUpdate, RFC 8446 7.2), in place. 0 or -1. */
int st_tlskeys__update(struct st_tlskeys *k, const struct st_tlsrec_suite *suite, uint8_t *secret);

/* TLS 1.2: both directions' keys from the master secret and the randoms (RFC 5246 6.3). */
int st_tlskeys__tls12(struct st_tlskeys *k, const struct st_tlsrec_suite *suite,
		      const uint8_t master[48], const uint8_t client_random[32],
		      const uint8_t server_random[32], struct st_tlsrec_keys *client,
		      struct st_tlsrec_keys *server);

/* One SSLKEYLOGFILE line with its newline into buf (>= 64 + 2 * 32 + 2 * len bytes); its length. */
size_t st_tlskeys_keylog_line(char *buf, size_t size, const char *name,
			      const uint8_t client_random[32], const uint8_t *secret, size_t len);

#endif /* ST_TLSKEYS_H */
