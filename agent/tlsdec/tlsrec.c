/* SPDX-License-Identifier: GPL-2.0-only */
#include "tlsrec.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define S256 "SHA256"
#define S384 "SHA384"

/* What shadowtap opens: every AEAD suite of RFC 8446 and the TLS 1.2 registry's AEAD ones. */
static const struct st_tlsrec_suite suites[] = {
	/* TLS 1.3 */
	{ 0x1301, 1, ST_AEAD_AES_128_GCM, 16, 12, 0, 16, S256, "TLS_AES_128_GCM_SHA256" },
	{ 0x1302, 1, ST_AEAD_AES_256_GCM, 32, 12, 0, 16, S384, "TLS_AES_256_GCM_SHA384" },
	{ 0x1303, 1, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "TLS_CHACHA20_POLY1305_SHA256" },
	{ 0x1304, 1, ST_AEAD_AES_128_CCM, 16, 12, 0, 16, S256, "TLS_AES_128_CCM_SHA256" },
	{ 0x1305, 1, ST_AEAD_AES_128_CCM, 16, 12, 0, 8, S256, "TLS_AES_128_CCM_8_SHA256" },
	/* TLS 1.2 AES-GCM (RFC 5288, 5289, 5487) */
	{ 0x009c, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "RSA_WITH_AES_128_GCM_SHA256" },
	{ 0x009d, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "RSA_WITH_AES_256_GCM_SHA384" },
	{ 0x009e, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "DHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ 0x009f, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "DHE_RSA_WITH_AES_256_GCM_SHA384" },
	{ 0x00a2, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "DHE_DSS_WITH_AES_128_GCM_SHA256" },
	{ 0x00a3, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "DHE_DSS_WITH_AES_256_GCM_SHA384" },
	{ 0x00a8, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "PSK_WITH_AES_128_GCM_SHA256" },
	{ 0x00a9, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "PSK_WITH_AES_256_GCM_SHA384" },
	{ 0x00aa, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "DHE_PSK_WITH_AES_128_GCM_SHA256" },
	{ 0x00ab, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "DHE_PSK_WITH_AES_256_GCM_SHA384" },
	{ 0x00ac, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "RSA_PSK_WITH_AES_128_GCM_SHA256" },
	{ 0x00ad, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "RSA_PSK_WITH_AES_256_GCM_SHA384" },
	{ 0xc02b, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc02c, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
	{ 0xc02f, 0, ST_AEAD_AES_128_GCM, 16, 4, 8, 16, S256, "ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc030, 0, ST_AEAD_AES_256_GCM, 32, 4, 8, 16, S384, "ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
	/* TLS 1.2 ChaCha20-Poly1305 (RFC 7905) */
	{ 0xcca8, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xcca9, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xccaa, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xccab, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "PSK_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xccac, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xccad, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "DHE_PSK_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xccae, 0, ST_AEAD_CHACHA20_POLY1305, 32, 12, 0, 16, S256, "RSA_PSK_WITH_CHACHA20_POLY1305_SHA256" },
	/* TLS 1.2 AES-CCM (RFC 6655, 7251) */
	{ 0xc09c, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 16, S256, "RSA_WITH_AES_128_CCM" },
	{ 0xc09d, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 16, S256, "RSA_WITH_AES_256_CCM" },
	{ 0xc09e, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 16, S256, "DHE_RSA_WITH_AES_128_CCM" },
	{ 0xc09f, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 16, S256, "DHE_RSA_WITH_AES_256_CCM" },
	{ 0xc0a0, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 8, S256, "RSA_WITH_AES_128_CCM_8" },
	{ 0xc0a1, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 8, S256, "RSA_WITH_AES_256_CCM_8" },
	{ 0xc0a2, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 8, S256, "DHE_RSA_WITH_AES_128_CCM_8" },
	{ 0xc0a3, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 8, S256, "DHE_RSA_WITH_AES_256_CCM_8" },
	{ 0xc0a4, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 16, S256, "PSK_WITH_AES_128_CCM" },
	{ 0xc0a5, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 16, S256, "PSK_WITH_AES_256_CCM" },
	{ 0xc0a6, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 16, S256, "DHE_PSK_WITH_AES_128_CCM" },
	{ 0xc0a7, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 16, S256, "DHE_PSK_WITH_AES_256_CCM" },
	{ 0xc0a8, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 8, S256, "PSK_WITH_AES_128_CCM_8" },
	{ 0xc0a9, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 8, S256, "PSK_WITH_AES_256_CCM_8" },
	{ 0xc0aa, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 8, S256, "PSK_DHE_WITH_AES_128_CCM_8" },
	{ 0xc0ab, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 8, S256, "PSK_DHE_WITH_AES_256_CCM_8" },
	{ 0xc0ac, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 16, S256, "ECDHE_ECDSA_WITH_AES_128_CCM" },
	{ 0xc0ad, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 16, S256, "ECDHE_ECDSA_WITH_AES_256_CCM" },
	{ 0xc0ae, 0, ST_AEAD_AES_128_CCM, 16, 4, 8, 8, S256, "ECDHE_ECDSA_WITH_AES_128_CCM_8" },
	{ 0xc0af, 0, ST_AEAD_AES_256_CCM, 32, 4, 8, 8, S256, "ECDHE_ECDSA_WITH_AES_256_CCM_8" },
};

const struct st_tlsrec_suite *st_tlsrec_suite(uint16_t id)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == id)
			return &suites[i];
	return NULL;
}

static const EVP_CIPHER *cipher_of(const struct st_tlsrec_suite *s)
{
	switch (s->aead) {
	case ST_AEAD_AES_128_GCM: return EVP_aes_128_gcm();
	case ST_AEAD_AES_256_GCM: return EVP_aes_256_gcm();
	case ST_AEAD_CHACHA20_POLY1305: return EVP_chacha20_poly1305();
	case ST_AEAD_AES_128_CCM: return EVP_aes_128_ccm();
	case ST_AEAD_AES_256_CCM: return EVP_aes_256_ccm();
	}
	return NULL;
}

const char *st_tlsrec_aead_name(const struct st_tlsrec_suite *s)
{
	switch (s->aead) {
	case ST_AEAD_AES_128_GCM: return "AES-128-GCM";
	case ST_AEAD_AES_256_GCM: return "AES-256-GCM";
	case ST_AEAD_CHACHA20_POLY1305: return "ChaCha20-Poly1305";
	case ST_AEAD_AES_128_CCM: return "AES-128-CCM";
	case ST_AEAD_AES_256_CCM: return "AES-256-CCM";
	}
	return NULL;
}

static bool is_ccm(const struct st_tlsrec_suite *s)
{
	return s->aead == ST_AEAD_AES_128_CCM || s->aead == ST_AEAD_AES_256_CCM;
}

void st_tlsrec_keys_wipe(struct st_tlsrec_keys *k)
{
	EVP_CIPHER_CTX_free(k->ctx);
	OPENSSL_cleanse(k, sizeof(*k));
	k->ctx = NULL;
	k->suite = NULL;
}

int st_tlsrec_keys_set(struct st_tlsrec_keys *k, const struct st_tlsrec_suite *suite,
		       const uint8_t *key, const uint8_t *iv, const void *cipher)
{
	const EVP_CIPHER *c = cipher ? cipher : cipher_of(suite);
	EVP_CIPHER_CTX *ctx;

	st_tlsrec_keys_wipe(k);
	if (!c || suite->key_len > ST_TLS_KEY_MAX || suite->iv_len > ST_TLS_IV_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* GCM and ChaCha20-Poly1305 keep the key schedule: each record only sets its nonce. CCM
	 * needs its tag before the key, so it is set up again per record (st_tlsrec_open). */
	if (!is_ccm(suite) && EVP_DecryptInit_ex(ctx, c, NULL, key, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EINVAL;
	}
	k->suite = suite;
	k->ctx = ctx;
	k->cipher = c;
	memcpy(k->key, key, suite->key_len);
	memcpy(k->iv, iv, suite->iv_len);
	return 0;
}

/* The per-record nonce: 1.3 and 1.2 ChaCha20: iv XOR the 64-bit sequence number (RFC 8446
 * 5.3, RFC 7905 2); 1.2 GCM/CCM: the salt and the record's explicit nonce (RFC 5288 3). */
static void nonce_of(const struct st_tlsrec_keys *k, uint64_t seq, const uint8_t *body,
		     uint8_t nonce[12])
{
	if (k->suite->explicit_len) {
		memcpy(nonce, k->iv, 4);
		memcpy(nonce + 4, body, 8);
		return;
	}
	memcpy(nonce, k->iv, 12);
	for (int i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
}

/* The additional data: 1.3: the record's header (RFC 8446 5.2); 1.2: seq_num, type, version
 * and the plaintext's length (RFC 5246 6.2.3.3). Returns its length. */
static size_t aad_of(const struct st_tlsrec_keys *k, uint64_t seq, const uint8_t hdr[ST_TLS_HDR],
		     size_t plen, uint8_t aad[13])
{
	if (k->suite->tls13) {
		memcpy(aad, hdr, ST_TLS_HDR);
		return ST_TLS_HDR;
	}
	for (int i = 0; i < 8; i++)
		aad[i] = (uint8_t)(seq >> (8 * (7 - i)));
	aad[8] = hdr[0];
	aad[9] = hdr[1];
	aad[10] = hdr[2];
	aad[11] = (uint8_t)(plen >> 8);
	aad[12] = (uint8_t)plen;
	return 13;
}

/* AEAD-decrypts ct[0, n) with tag into out; true when the tag verifies. */
static bool aead_open(struct st_tlsrec_keys *k, const uint8_t nonce[12], const uint8_t *aad,
		      size_t aadlen, const uint8_t *ct, size_t n, const uint8_t *tag, uint8_t *out)
{
	const struct st_tlsrec_suite *s = k->suite;
	EVP_CIPHER_CTX *ctx = k->ctx;
	int l = 0, l2 = 0;

	if (is_ccm(s)) {
		if (EVP_DecryptInit_ex(ctx, k->cipher, NULL, NULL, NULL) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_CCM_SET_IVLEN, 12, NULL) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_CCM_SET_TAG, s->tag_len, (void *)tag) != 1 ||
		    EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, nonce) != 1 ||
		    EVP_DecryptUpdate(ctx, NULL, &l, NULL, (int)n) != 1 ||
		    EVP_DecryptUpdate(ctx, NULL, &l, aad, (int)aadlen) != 1)
			return false;
		/* CCM checks the tag in this (single) update */
		return EVP_DecryptUpdate(ctx, out, &l, ct, (int)n) == 1;
	}
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &l, aad, (int)aadlen) != 1 ||
	    (n && EVP_DecryptUpdate(ctx, out, &l, ct, (int)n) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, s->tag_len, (void *)tag) != 1)
		return false;
	return EVP_DecryptFinal_ex(ctx, out + l, &l2) == 1;
}

int st_tlsrec_open(struct st_tlsrec_keys *k, uint64_t seq, const uint8_t hdr[ST_TLS_HDR],
		   const uint8_t *body, size_t len, uint8_t *out, uint8_t *ctype)
{
	const struct st_tlsrec_suite *s = k->suite;
	uint8_t nonce[12], aad[13];
	size_t n, aadlen;

	if (!s || len < (size_t)s->explicit_len + s->tag_len + (s->tls13 ? 1 : 0) ||
	    len > ST_TLS_BODY_MAX)
		return ST_TLSREC_SHORT;
	n = len - s->explicit_len - s->tag_len;
	nonce_of(k, seq, body, nonce);
	aadlen = aad_of(k, seq, hdr, n, aad);
	if (!aead_open(k, nonce, aad, aadlen, body + s->explicit_len, n, body + len - s->tag_len,
		       out)) {
		OPENSSL_cleanse(out, n);
		return ST_TLSREC_AUTH;
	}
	if (!s->tls13) {
		*ctype = hdr[0];
		return (int)n;
	}
	/* TLSInnerPlaintext: content, the real type, zeros (RFC 8446 5.2) */
	while (n && !out[n - 1])
		n--;
	if (!n)
		return ST_TLSREC_SHORT;
	*ctype = out[n - 1];
	return (int)(n - 1);
}

bool st_tlsrec_explicit_seq(const struct st_tlsrec_keys *k, const uint8_t *body, size_t len,
			    uint64_t *seq)
{
	uint64_t v = 0;

	if (!k->suite || !k->suite->explicit_len || len < 8)
		return false;
	for (int i = 0; i < 8; i++)
		v = v << 8 | body[i];
	*seq = v;
	return true;
}

int st_tlsrec_seal(struct st_tlsrec_keys *k, uint64_t seq, uint8_t ctype, const uint8_t *in,
		   size_t n, uint8_t *out)
{
	const struct st_tlsrec_suite *s = k->suite;
	EVP_CIPHER_CTX *ctx;
	uint8_t nonce[12], aad[13], *body = out + ST_TLS_HDR, *ct;
	size_t plen, blen, aadlen;
	int l = 0, l2 = 0;
	bool ok;

	if (!s || n > ST_TLS_PLAIN_MAX)
		return -1;
	plen = n + (s->tls13 ? 1 : 0);
	blen = s->explicit_len + plen + s->tag_len;
	out[0] = s->tls13 ? ST_TLS_CT_APPDATA : ctype;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(blen >> 8);
	out[4] = (uint8_t)blen;
	if (s->explicit_len)
		for (int i = 0; i < 8; i++)
			body[i] = (uint8_t)(seq >> (8 * (7 - i)));
	ct = body + s->explicit_len;
	nonce_of(k, seq, body, nonce);
	aadlen = aad_of(k, seq, out, plen, aad);
	memcpy(ct, in, n);
	if (s->tls13)
		ct[n] = ctype;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	if (is_ccm(s))
		ok = EVP_EncryptInit_ex(ctx, cipher_of(s), NULL, NULL, NULL) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_CCM_SET_IVLEN, 12, NULL) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_CCM_SET_TAG, s->tag_len, NULL) == 1 &&
		     EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, nonce) == 1 &&
		     EVP_EncryptUpdate(ctx, NULL, &l, NULL, (int)plen) == 1 &&
		     EVP_EncryptUpdate(ctx, NULL, &l, aad, (int)aadlen) == 1 &&
		     EVP_EncryptUpdate(ctx, ct, &l, ct, (int)plen) == 1 &&
		     EVP_EncryptFinal_ex(ctx, ct + l, &l2) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_CCM_GET_TAG, s->tag_len, ct + plen) == 1;
	else
		ok = EVP_EncryptInit_ex(ctx, cipher_of(s), NULL, k->key, nonce) == 1 &&
		     EVP_EncryptUpdate(ctx, NULL, &l, aad, (int)aadlen) == 1 &&
		     EVP_EncryptUpdate(ctx, ct, &l, ct, (int)plen) == 1 &&
		     EVP_EncryptFinal_ex(ctx, ct + l, &l2) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, s->tag_len, ct + plen) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? (int)(ST_TLS_HDR + blen) : -1;
}
