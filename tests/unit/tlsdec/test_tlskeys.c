/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The key schedules (tlskeys.h): an ST_REC_KDF record says what it derives only when its
 * parameters are a TLS 1.3 traffic secret's (by label) or TLS 1.2's key expansion, whole;
 * HKDF-Expand-Label agrees with OpenSSL's own TLS13-KDF; a key-log line is NSS's format.
 * (Whole sessions: test_tlsdec.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "bpf/shadowtap.h"
#include "tlskeys.h"

static void param(struct st_kdf_rec *r, const char *name, const void *data, uint32_t size)
{
	struct st_kdf_param *p = &r->p[r->n++];

	strncpy(p->name, name, ST_KDF_NAME_MAX);
	p->size = size;
	memcpy(p->data, data, size < ST_KDF_DATA_MAX ? size : ST_KDF_DATA_MAX);
}

static void rec13(struct st_kdf_rec *r, const char *label)
{
	uint8_t key[32], data[32];
	int mode = 2;

	memset(r, 0, sizeof(*r));
	r->version = ST_ABI_VERSION;
	r->type = ST_REC_KDF;
	r->tgid = 77;
	r->outlen = 32;
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		data[i] = (uint8_t)(100 + i);
	}
	/* what tls13_hkdf_expand_ex passes (OpenSSL 3.0) */
	param(r, "mode", &mode, sizeof(mode));
	param(r, "digest", "SHA256", 6);
	param(r, "key", key, 32);
	param(r, "prefix", "tls13 ", 6);
	param(r, "label", label, (uint32_t)strlen(label));
	param(r, "data", data, 32);
}

static void test_parse13(void **state)
{
	struct st_kdf_rec r;
	struct st_tlskeys_kdf k;

	rec13(&r, "s hs traffic");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), 0);
	assert_int_equal(k.kind, ST_KDF_TLS13);
	assert_int_equal(k.label, ST_S13_SERVER_HS);
	assert_int_equal(k.tgid, 77);
	assert_string_equal(k.digest, "SHA256");
	assert_int_equal(k.secret_len, 32);
	assert_int_equal(k.secret[5], 5);
	assert_int_equal(k.context_len, 32);
	assert_int_equal(k.context[0], 100);
	rec13(&r, "exp master");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), 0);
	assert_int_equal(k.label, ST_S13_EXPORTER);
	/* the other expansions of a handshake: not traffic secrets */
	rec13(&r, "key");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	rec13(&r, "c hs traffik");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	rec13(&r, "res master");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	/* a secret longer than what the probe copies: not whole, refused */
	rec13(&r, "c ap traffic");
	r.p[2].size = 65;
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	/* short, another version, no digest */
	rec13(&r, "c ap traffic");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r) - 1, &k), -EINVAL);
	r.version++;
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	rec13(&r, "c ap traffic");
	r.p[1].name[0] = 'x';
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	rec13(&r, "c ap traffic");
	r.n = ST_KDF_PARAMS + 1;
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
}

static void rec12(struct st_kdf_rec *r, const char *label)
{
	uint8_t ms[48], sr[32], cr[32];

	memset(r, 0, sizeof(*r));
	r->version = ST_ABI_VERSION;
	r->type = ST_REC_KDF;
	r->outlen = 40;
	for (int i = 0; i < 48; i++)
		ms[i] = (uint8_t)(200 + i);
	for (int i = 0; i < 32; i++) {
		sr[i] = (uint8_t)(1 + i);
		cr[i] = (uint8_t)(50 + i);
	}
	/* what tls1_PRF passes: digest, secret, five seeds (the unused ones empty) */
	param(r, "digest", "SHA2-256", 8);
	param(r, "secret", ms, 48);
	param(r, "seed", label, (uint32_t)strlen(label));
	param(r, "seed", sr, 32);
	param(r, "seed", cr, 32);
	param(r, "seed", "", 0);
	param(r, "seed", "", 0);
}

static void test_parse12(void **state)
{
	struct st_kdf_rec r;
	struct st_tlskeys_kdf k;

	rec12(&r, "key expansion");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), 0);
	assert_int_equal(k.kind, ST_KDF_TLS12);
	assert_int_equal(k.secret_len, 48);
	assert_int_equal(k.secret[0], 200);
	assert_int_equal(k.server_random[0], 1);
	assert_int_equal(k.client_random[0], 50);
	/* the master secret's own derivation and the Finished ones carry no key block */
	rec12(&r, "master secret");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
	rec12(&r, "client finished");
	assert_int_equal(st_tlskeys_parse_kdf(&r, sizeof(r), &k), -EINVAL);
}

/* HKDF-Expand-Label against OpenSSL's TLS13-KDF (its own HkdfLabel encoding). */
static void test_expand_label(void **state)
{
	struct st_tlskeys *k = st_tlskeys__new();
	const char *digests[] = { "SHA256", "SHA384" };

	assert_non_null(k);
	for (int d = 0; d < 2; d++) {
		size_t hl = st_tlskeys__hash_len(k, digests[d]);
		uint8_t secret[48], ctx[48], a[48], b[48];
		int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
		EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
		EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
		OSSL_PARAM p[7];

		assert_true(hl == 32 || hl == 48);
		for (size_t i = 0; i < sizeof(secret); i++) {
			secret[i] = (uint8_t)(i * 3);
			ctx[i] = (uint8_t)(i * 5 + 1);
		}
		assert_int_equal(st_tlskeys__expand_label(k, digests[d], secret, hl, "c ap traffic",
							  ctx, hl, a, hl),
				 0);
		p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
		p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digests[d], 0);
		p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, hl);
		p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6);
		p[4] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "c ap traffic", 12);
		p[5] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, ctx, hl);
		p[6] = OSSL_PARAM_construct_end();
		assert_int_equal(EVP_KDF_derive(c, b, hl, p), 1);
		assert_memory_equal(a, b, hl);
		EVP_KDF_CTX_free(c);
		EVP_KDF_free(kdf);
	}
	assert_int_equal(st_tlskeys__hash_len(k, "SHA2-384"), 48);
	assert_int_equal(st_tlskeys__hash_len(k, "MD5"), 0);
	st_tlskeys__free(k);
}

static void test_keylog_line(void **state)
{
	uint8_t cr[32], s[3] = { 0xab, 0x00, 0x7f };
	char buf[256];
	size_t n;

	for (int i = 0; i < 32; i++)
		cr[i] = (uint8_t)i;
	n = st_tlskeys_keylog_line(buf, sizeof(buf), "CLIENT_RANDOM", cr, s, 3);

	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "CLIENT_RANDOM 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ab007f\n");
	assert_int_equal(st_tlskeys_keylog_line(buf, 50, "CLIENT_RANDOM", cr, s, 3), 0);
	assert_string_equal(st_tlskeys_keylog_name(ST_S13_CLIENT_AP), "CLIENT_TRAFFIC_SECRET_0");
	assert_string_equal(st_tlskeys_label13(ST_S13_SERVER_HS), "s hs traffic");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse13), cmocka_unit_test(test_parse12),
		cmocka_unit_test(test_expand_label), cmocka_unit_test(test_keylog_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
