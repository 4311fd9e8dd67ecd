/* SPDX-License-Identifier: GPL-2.0-only */
#include "tlskeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "bpf/shadowtap.h"

static const struct {
	const char *label;
	const char *keylog;
} names13[ST_S13_MAX] = {
	[ST_S13_CLIENT_EARLY] = { "c e traffic", "CLIENT_EARLY_TRAFFIC_SECRET" },
	[ST_S13_CLIENT_HS] = { "c hs traffic", "CLIENT_HANDSHAKE_TRAFFIC_SECRET" },
	[ST_S13_SERVER_HS] = { "s hs traffic", "SERVER_HANDSHAKE_TRAFFIC_SECRET" },
	[ST_S13_CLIENT_AP] = { "c ap traffic", "CLIENT_TRAFFIC_SECRET_0" },
	[ST_S13_SERVER_AP] = { "s ap traffic", "SERVER_TRAFFIC_SECRET_0" },
	[ST_S13_EXPORTER] = { "exp master", "EXPORTER_SECRET" },
	[ST_S13_EARLY_EXPORTER] = { "e exp master", "EARLY_EXPORTER_SECRET" },
};

const char *st_tlskeys_label13(enum st_tlskeys_secret i)
{
	return i < ST_S13_MAX ? names13[i].label : "?";
}

const char *st_tlskeys_keylog_name(enum st_tlskeys_secret i)
{
	return i < ST_S13_MAX ? names13[i].keylog : "?";
}

/* Everything fetched once: OpenSSL 3 looks algorithms up by name (a lock, string compares)
 * at each implicit use, which was most of a handshake's cost here. */
struct st_tlskeys {
	EVP_KDF *prf;
	EVP_MD *sha256, *sha384;
	EVP_MAC *hmac;
	EVP_MAC_CTX *hmac256, *hmac384; /* HMAC with its digest set: duplicated per use */
	EVP_CIPHER *ciphers[ST_AEAD_AES_256_CCM + 1];
};

static EVP_MAC_CTX *hmac_template(EVP_MAC *mac, const EVP_MD *md)
{
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
	OSSL_PARAM p[2];

	if (!c)
		return NULL;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)EVP_MD_get0_name(md),
						0);
	p[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(c, p) != 1) {
		EVP_MAC_CTX_free(c);
		return NULL;
	}
	return c;
}

struct st_tlskeys *st_tlskeys__new(void)
{
	struct st_tlskeys *k = calloc(1, sizeof(*k));
	bool ok;

	if (!k)
		return NULL;
	k->prf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	k->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ok = k->prf && k->sha256 && k->sha384 && k->hmac;
	if (ok) {
		k->hmac256 = hmac_template(k->hmac, k->sha256);
		k->hmac384 = hmac_template(k->hmac, k->sha384);
		ok = k->hmac256 && k->hmac384;
	}
	for (int a = ST_AEAD_AES_128_GCM; ok && a <= ST_AEAD_AES_256_CCM; a++) {
		struct st_tlsrec_suite s = { .aead = (uint8_t)a };

		k->ciphers[a] = EVP_CIPHER_fetch(NULL, st_tlsrec_aead_name(&s), NULL);
		ok = k->ciphers[a] != NULL;
	}
	if (!ok) {
		st_tlskeys__free(k);
		return NULL;
	}
	return k;
}

void st_tlskeys__free(struct st_tlskeys *k)
{
	if (!k)
		return;
	EVP_KDF_free(k->prf);
	EVP_MD_free(k->sha256);
	EVP_MD_free(k->sha384);
	EVP_MAC_CTX_free(k->hmac256);
	EVP_MAC_CTX_free(k->hmac384);
	EVP_MAC_free(k->hmac);
	for (size_t a = 0; a < sizeof(k->ciphers) / sizeof(k->ciphers[0]); a++)
		EVP_CIPHER_free(k->ciphers[a]);
	free(k);
}


/* OpenSSL calls SHA-256 "SHA256", "SHA2-256" or "SHA-256" depending on where the name came
 * from (EVP_MD_get0_name gives the fetched algorithm's first name). */
static const EVP_MD *md_of(struct st_tlskeys *k, const char *digest)
{
	if (!strcasecmp(digest, "SHA256") || !strcasecmp(digest, "SHA2-256") ||
	    !strcasecmp(digest, "SHA-256"))
		return k->sha256;
	if (!strcasecmp(digest, "SHA384") || !strcasecmp(digest, "SHA2-384") ||
	    !strcasecmp(digest, "SHA-384"))
		return k->sha384;
	return NULL;
}

const void *st_tlskeys__md(struct st_tlskeys *k, const char *digest)
{
	return md_of(k, digest);
}

size_t st_tlskeys__hash_len(struct st_tlskeys *k, const char *digest)
{
	const EVP_MD *md = md_of(k, digest);

	return md ? (size_t)EVP_MD_get_size(md) : 0;
}

int st_tlskeys__expand_label(struct st_tlskeys *k, const char *digest, const uint8_t *secret,
			     size_t slen, const char *label, const uint8_t *context, size_t clen,
			     uint8_t *out, size_t outlen)
{
	const EVP_MD *md = md_of(k, digest);
	size_t llen = strlen(label), n = 0, hl, done = 0, l = 0;
	uint8_t info[2 + 1 + 6 + 255 + 1 + 255], t[EVP_MAX_MD_SIZE];
	uint8_t ctr = 0;
	int ret = 0;

	if (!md || llen > 249 || clen > 255 || outlen > 0xffff)
		return -1;
	hl = (size_t)EVP_MD_get_size(md);
	/* HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255> */
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = (uint8_t)clen;
	if (clen)
		memcpy(info + n, context, clen);
	n += clen;
	/* HKDF-Expand (RFC 5869 2.3): T(i) = HMAC(secret, T(i-1) | info | i) */
	while (done < outlen && !ret) {
		EVP_MAC_CTX *c = EVP_MAC_CTX_dup(md == k->sha384 ? k->hmac384 : k->hmac256);

		ctr++;
		ret = !c || EVP_MAC_init(c, secret, slen, NULL) != 1 ||
		      (done && EVP_MAC_update(c, t, hl) != 1) || EVP_MAC_update(c, info, n) != 1 ||
		      EVP_MAC_update(c, &ctr, 1) != 1 || EVP_MAC_final(c, t, &l, sizeof(t)) != 1 ||
		      l != hl;
		EVP_MAC_CTX_free(c);
		if (!ret) {
			memcpy(out + done, t, outlen - done < hl ? outlen - done : hl);
			done += hl;
		}
	}
	OPENSSL_cleanse(t, sizeof(t));
	return ret ? -1 : 0;
}

int st_tlskeys__derive13(struct st_tlskeys *k, const struct st_tlskeys_kdf *kdf, uint8_t *out,
			 size_t *outlen)
{
	size_t hl = st_tlskeys__hash_len(k, kdf->digest);

	if (kdf->kind != ST_KDF_TLS13 || !hl || hl > ST_TLS_SECRET_MAX || kdf->secret_len != hl)
		return -1;
	*outlen = hl;
	return st_tlskeys__expand_label(k, kdf->digest, kdf->secret, kdf->secret_len,
					st_tlskeys_label13(kdf->label), kdf->context, kdf->context_len,
					out, hl);
}

int st_tlskeys__traffic(struct st_tlskeys *k, const struct st_tlsrec_suite *suite,
			const uint8_t *secret, struct st_tlsrec_keys *keys)
{
	size_t hl = st_tlskeys__hash_len(k, suite->hash);
	uint8_t key[ST_TLS_KEY_MAX], iv[ST_TLS_IV_MAX];
	int err;

	if (!hl || st_tlskeys__expand_label(k, suite->hash, secret, hl, "key", NULL, 0, key,
					    suite->key_len) ||
	    st_tlskeys__expand_label(k, suite->hash, secret, hl, "iv", NULL, 0, iv, suite->iv_len))
		return -EINVAL;
	err = st_tlsrec_keys_set(keys, suite, key, iv, k->ciphers[suite->aead]);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return err;
}

int st_tlskeys__update(struct st_tlskeys *k, const struct st_tlsrec_suite *suite, uint8_t *secret)
{
	size_t hl = st_tlskeys__hash_len(k, suite->hash);
	uint8_t next[ST_TLS_SECRET_MAX];

	if (!hl || st_tlskeys__expand_label(k, suite->hash, secret, hl, "traffic upd", NULL, 0,
					    next, hl))
		return -1;
	memcpy(secret, next, hl);
	OPENSSL_cleanse(next, sizeof(next));
	return 0;
}

int st_tlskeys__tls12(struct st_tlskeys *k, const struct st_tlsrec_suite *suite,
		      const uint8_t master[48], const uint8_t client_random[32],
		      const uint8_t server_random[32], struct st_tlsrec_keys *client,
		      struct st_tlsrec_keys *server)
{
	const EVP_MD *md = md_of(k, suite->hash);
	uint8_t block[2 * (ST_TLS_KEY_MAX + ST_TLS_IV_MAX)], seed[13 + 64];
	size_t need = 2u * suite->key_len + 2u * suite->iv_len;
	OSSL_PARAM params[4];
	EVP_KDF_CTX *ctx;
	int ok;

	if (!md || suite->tls13)
		return -EINVAL;
	/* key_block = PRF(master, "key expansion", server_random + client_random): AEAD suites
	 * have no MAC keys, so client key, server key, client IV, server IV */
	memcpy(seed, "key expansion", 13);
	memcpy(seed + 13, server_random, 32);
	memcpy(seed + 45, client_random, 32);
	ctx = EVP_KDF_CTX_new(k->prf);
	if (!ctx)
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, 48);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed));
	params[3] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, block, need, params) == 1;
	EVP_KDF_CTX_free(ctx);
	if (ok)
		ok = !st_tlsrec_keys_set(client, suite, block, block + 2 * suite->key_len,
					 k->ciphers[suite->aead]) &&
		     !st_tlsrec_keys_set(server, suite, block + suite->key_len,
					 block + 2 * suite->key_len + suite->iv_len,
					 k->ciphers[suite->aead]);
	OPENSSL_cleanse(block, sizeof(block));
	return ok ? 0 : -EINVAL;
}

static bool name_is(const struct st_kdf_param *p, const char *name)
{
	return !strncmp(p->name, name, ST_KDF_NAME_MAX) &&
	       (strlen(name) >= ST_KDF_NAME_MAX || p->name[strlen(name)] == '\0');
}

/* The data of parameter p when it was copied whole. */
static bool whole(const struct st_kdf_param *p)
{
	return p->size <= ST_KDF_DATA_MAX;
}

int st_tlskeys_parse_kdf(const void *rec, size_t size, struct st_tlskeys_kdf *out)
{
	const struct st_kdf_rec *r = rec;
	const struct st_kdf_param *label = NULL, *key = NULL, *data = NULL, *digest = NULL;
	const struct st_kdf_param *secret = NULL, *seeds[3] = { NULL };
	unsigned nseeds = 0;

	memset(out, 0, sizeof(*out));
	if (size < sizeof(*r) || r->version != ST_ABI_VERSION || r->type != ST_REC_KDF ||
	    r->n > ST_KDF_PARAMS)
		return -EINVAL;
	for (unsigned i = 0; i < r->n; i++) {
		const struct st_kdf_param *p = &r->p[i];

		if (name_is(p, "label"))
			label = p;
		else if (name_is(p, "key"))
			key = p;
		else if (name_is(p, "data"))
			data = p;
		else if (name_is(p, "digest"))
			digest = p;
		else if (name_is(p, "secret"))
			secret = p;
		else if (name_is(p, "seed") && p->size && nseeds < 3)
			seeds[nseeds++] = p; /* TLS1-PRF passes up to five; the empty ones are unused */
	}
	if (!digest || !digest->size || !whole(digest) || digest->size >= sizeof(out->digest))
		return -EINVAL;
	memcpy(out->digest, digest->data, digest->size);
	out->tgid = r->tgid;
	out->ts_ns = r->ts_ns;
	out->outlen = (uint32_t)r->outlen;
	if (label && key) {
		/* TLS13-KDF, expand: "tls13 " + label over key, with data the transcript hash */
		int i;

		for (i = 0; i < ST_S13_MAX; i++)
			if (label->size == strlen(names13[i].label) &&
			    !memcmp(label->data, names13[i].label, label->size))
				break;
		if (i == ST_S13_MAX || !whole(key) || key->size > ST_TLS_SECRET_MAX || !data ||
		    !whole(data) || data->size > ST_TLS_SECRET_MAX)
			return -EINVAL;
		out->kind = ST_KDF_TLS13;
		out->label = (uint8_t)i;
		out->secret_len = (uint8_t)key->size;
		memcpy(out->secret, key->data, key->size);
		out->context_len = (uint8_t)data->size;
		memcpy(out->context, data->data, data->size);
		return 0;
	}
	if (secret && nseeds == 3 && seeds[0]->size == 13 &&
	    !memcmp(seeds[0]->data, "key expansion", 13) && seeds[1]->size == 32 &&
	    seeds[2]->size == 32 && secret->size == 48) {
		/* TLS1-PRF: seed "key expansion", then server_random, client_random */
		out->kind = ST_KDF_TLS12;
		out->secret_len = 48;
		memcpy(out->secret, secret->data, 48);
		memcpy(out->server_random, seeds[1]->data, 32);
		memcpy(out->client_random, seeds[2]->data, 32);
		return 0;
	}
	OPENSSL_cleanse(out, sizeof(*out));
	return -EINVAL;
}

size_t st_tlskeys_keylog_line(char *buf, size_t size, const char *name,
			      const uint8_t client_random[32], const uint8_t *secret, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = strlen(name) + 1 + 64 + 1 + 2 * len + 1, n;

	if (size < need + 1)
		return 0;
	n = (size_t)snprintf(buf, size, "%s ", name);
	for (int i = 0; i < 32; i++) {
		buf[n++] = hex[client_random[i] >> 4];
		buf[n++] = hex[client_random[i] & 15];
	}
	buf[n++] = ' ';
	for (size_t i = 0; i < len; i++) {
		buf[n++] = hex[secret[i] >> 4];
		buf[n++] = hex[secret[i] & 15];
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}
