/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TLS record protection (tlsrec.h): every suite of the table seals and opens its own records
 * (OpenSSL's sessions are test_tlsdec's), and a record opens only as itself: under its own
 * sequence number and keys, undamaged, unshortened. TLS 1.3's padding and inner type; TLS
 * 1.2's explicit nonce as a sequence number; unknown suites (CBC) refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tlsrec.h"

static const uint16_t ids[] = {
	0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0xc02b, 0xc02c, 0xc02f, 0xc030, 0x009c,
	0x009d, 0xcca8, 0xcca9, 0xccaa, 0xc0ac, 0xc0ad, 0xc0ae, 0xc0af, 0xc09c, 0xc0a0,
};

static void keys_for(struct st_tlsrec_keys *k, uint16_t id, uint8_t seed)
{
	const struct st_tlsrec_suite *s = st_tlsrec_suite(id);
	uint8_t key[32], iv[12];

	assert_non_null(s);
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(seed + i * 7);
	for (int i = 0; i < 12; i++)
		iv[i] = (uint8_t)(seed * 3 + i);
	memset(k, 0, sizeof(*k));
	assert_int_equal(st_tlsrec_keys_set(k, s, key, iv, NULL), 0);
}

static void test_round_trip(void **state)
{
	static uint8_t in[ST_TLS_PLAIN_MAX], rec[ST_TLS_PLAIN_MAX + 64], out[ST_TLS_BODY_MAX];
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, ST_TLS_PLAIN_MAX };

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct st_tlsrec_keys k;

		keys_for(&k, ids[i], (uint8_t)i);
		for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			uint64_t seq = 7 + j * 1000003;
			int n = st_tlsrec_seal(&k, seq, ST_TLS_CT_APPDATA, in, sizes[j], rec);
			uint8_t ct = 0;

			assert_int_equal(n, (int)(sizes[j] + st_tlsrec_overhead(k.suite)));
			if (!sizes[j] && k.suite->tls13) {
				/* an empty record still carries its type */
				assert_int_equal(st_tlsrec_open(&k, seq, rec, rec + 5, (size_t)n - 5, out,
								&ct), 0);
				continue;
			}
			assert_int_equal(st_tlsrec_open(&k, seq, rec, rec + 5, (size_t)n - 5, out, &ct),
					 (int)sizes[j]);
			assert_int_equal(ct, ST_TLS_CT_APPDATA);
			assert_memory_equal(out, in, sizes[j]);
			/* another sequence number, a damaged byte, a shorter body: no plaintext */
			assert_int_equal(st_tlsrec_open(&k, seq + 1, rec, rec + 5, (size_t)n - 5, out,
							&ct),
					 ST_TLSREC_AUTH);
			rec[5 + n / 2] ^= 1;
			assert_int_equal(st_tlsrec_open(&k, seq, rec, rec + 5, (size_t)n - 5, out, &ct),
					 ST_TLSREC_AUTH);
			rec[5 + n / 2] ^= 1;
			assert_true(st_tlsrec_open(&k, seq, rec, rec + 5, (size_t)n - 6, out, &ct) < 0);
		}
		st_tlsrec_keys_wipe(&k);
		assert_false(st_tlsrec_keys_on(&k));
	}
}

/* Another key does not open it. */
static void test_other_key(void **state)
{
	struct st_tlsrec_keys a, b;
	uint8_t rec[100], out[100], ct;
	int n;

	keys_for(&a, 0x1301, 1);
	keys_for(&b, 0x1301, 2);
	n = st_tlsrec_seal(&a, 0, ST_TLS_CT_APPDATA, (const uint8_t *)"hello", 5, rec);
	assert_int_equal(st_tlsrec_open(&b, 0, rec, rec + 5, (size_t)n - 5, out, &ct), ST_TLSREC_AUTH);
	st_tlsrec_keys_wipe(&a);
	st_tlsrec_keys_wipe(&b);
}

/* TLS 1.3: zeros after the inner type are padding; the type is the last non-zero byte. */
static void test_tls13_padding(void **state)
{
	struct st_tlsrec_keys k;
	uint8_t in[40] = "abc", rec[100], out[100], ct = 0;
	int n;

	keys_for(&k, 0x1303, 5);
	/* plaintext "abc", type 22, then padding: sealed as content "abc\x16" + zeros with a
	 * fake outer type: seal's inner type byte is the last one we give */
	in[3] = ST_TLS_CT_HANDSHAKE;
	n = st_tlsrec_seal(&k, 3, 0, in, 20, rec); /* inner type 0 after 16 zero bytes of padding */
	assert_int_equal(st_tlsrec_open(&k, 3, rec, rec + 5, (size_t)n - 5, out, &ct), 3);
	assert_int_equal(ct, ST_TLS_CT_HANDSHAKE);
	assert_memory_equal(out, "abc", 3);
	/* nothing but zeros: no type */
	memset(in, 0, sizeof(in));
	n = st_tlsrec_seal(&k, 4, 0, in, 10, rec);
	assert_int_equal(st_tlsrec_open(&k, 4, rec, rec + 5, (size_t)n - 5, out, &ct), ST_TLSREC_SHORT);
	st_tlsrec_keys_wipe(&k);
}

static void test_explicit_seq(void **state)
{
	struct st_tlsrec_keys k;
	uint8_t rec[100];
	uint64_t seq = 0;
	int n;

	keys_for(&k, 0xc02b, 9);
	n = st_tlsrec_seal(&k, 0x0102030405060708ull, ST_TLS_CT_APPDATA, (const uint8_t *)"x", 1, rec);
	assert_true(st_tlsrec_explicit_seq(&k, rec + 5, (size_t)n - 5, &seq));
	assert_int_equal(seq, 0x0102030405060708ull);
	st_tlsrec_keys_wipe(&k);
	keys_for(&k, 0xcca9, 9);
	assert_false(st_tlsrec_explicit_seq(&k, rec + 5, (size_t)n - 5, &seq));
	st_tlsrec_keys_wipe(&k);
}

static void test_suites(void **state)
{
	assert_null(st_tlsrec_suite(0x002f)); /* AES128-SHA (CBC) */
	assert_null(st_tlsrec_suite(0xc027)); /* ECDHE-RSA-AES128-SHA256 (CBC) */
	assert_null(st_tlsrec_suite(0x0000));
	assert_int_equal(st_tlsrec_suite(0x1302)->key_len, 32);
	assert_string_equal(st_tlsrec_suite(0x1302)->hash, "SHA384");
	assert_int_equal(st_tlsrec_suite(0x1305)->tag_len, 8);
	assert_int_equal(st_tlsrec_overhead(st_tlsrec_suite(0x1301)), 5 + 16 + 1);
	assert_int_equal(st_tlsrec_overhead(st_tlsrec_suite(0xc02f)), 5 + 8 + 16);
	assert_int_equal(st_tlsrec_overhead(st_tlsrec_suite(0xcca8)), 5 + 16);
	assert_int_equal(st_tlsrec_overhead(st_tlsrec_suite(0xc0ae)), 5 + 8 + 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_tls13_padding), cmocka_unit_test(test_explicit_seq),
		cmocka_unit_test(test_suites),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
