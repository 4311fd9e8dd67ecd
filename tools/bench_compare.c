/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare's throughput on one core: the work the compare worker does per pair
 * (decode, parse, diff candidate and reference against production, endpoint template,
 * aggregate), on JSON answers of a given size, in a loop.
 *
 *   build/tools/bench_compare [SIZE_BYTES [SECONDS [gzip]]]
 *
 * The three answers of a pair differ the way real ones do: a request id changes on every
 * answer (so nothing is byte-identical and every pair takes the full path), and the
 * candidate changes one price in ten items. Prints pairs/s and MB/s of production body.
 * Pin it to a CPU (taskset -c 1) for the one-core figure: tools/bench-compare.sh does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "compare_agg.h"
#include "compare_diff.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A catalog-like document of about size bytes: items with ids, names, prices, tags. */
static size_t make_doc(char *out, size_t size, unsigned seq, int who)
{
	size_t o = 0;
	unsigned i = 0;

	o += (size_t)sprintf(out + o, "{\"request_id\": \"%08x%08x%08x%08x\", \"page\": 1, \"items\": [",
			     seq * 2654435761u, seq ^ 0x9e3779b9u, (unsigned)who * 40503u + seq, seq);
	while (o + 100 < size) {
		double price = 10 + (i % 97) * 0.25 + (who == 1 && i % 10 == 3 ? 1 : 0);

		o += (size_t)sprintf(out + o, "%s{\"id\": %u, \"sku\": \"SKU-%06u\", \"name\": \"item %u\", "
				     "\"price\": %.2f, \"tags\": [\"a\", \"b\"], \"stock\": %u}",
				     i ? ", " : "", i, i * 7, i, price, i % 13);
		i++;
	}
	o += (size_t)sprintf(out + o, "], \"total\": %u}", i);
	return o;
}

static size_t gzip(const char *in, size_t n, char *out, size_t cap)
{
	z_stream z = { 0 };

	deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	deflateEnd(&z);
	return cap - z.avail_out;
}

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	double secs = argc > 2 ? atof(argv[2]) : 3;
	int gz = argc > 3 && !strcmp(argv[3], "gzip");
	static const char hdr_plain[] = "Content-Type\0application/json\0Server\0x\0";
	static const char hdr_gzip[] = "Content-Type\0application/json\0Content-Encoding\0gzip\0";
	enum { NDOCS = 16 };
	char *docs[NDOCS][3];
	size_t lens[NDOCS][3], prod_bytes = 0;
	struct st_cmp_rules rules = { 0 };
	struct st_cmp_view v[3];
	struct st_cmp_scratch sc = { 0 };
	struct st_cmp_diffs *raw = calloc(1, sizeof(*raw)), *noise = calloc(1, sizeof(*noise));
	struct st_cmp_agg_config ac = { .reference = true };
	struct st_cmp_agg agg;
	uint64_t pairs = 0, differing = 0;
	double t0, t;

	if (size < 256 || secs <= 0 || !raw || !noise) {
		fprintf(stderr, "usage: %s [SIZE_BYTES >= 256 [SECONDS [gzip]]]\n", argv[0]);
		return 2;
	}
	/* answers made beforehand: the loop measures comparing, not formatting */
	for (int d = 0; d < NDOCS; d++)
		for (int w = 0; w < 3; w++) {
			char *tmp = malloc(size + 512);

			lens[d][w] = make_doc(tmp, size, (unsigned)(d * 3 + w), w);
			if (gz) {
				docs[d][w] = malloc(lens[d][w] + 1024);
				lens[d][w] = gzip(tmp, lens[d][w], docs[d][w], lens[d][w] + 1024);
				free(tmp);
			} else {
				docs[d][w] = tmp;
			}
		}
	for (int w = 0; w < 3; w++)
		st_cmp_view_init(&v[w]);
	st_cmp_agg_init(&agg, &ac);
	t0 = now_s();
	do {
		for (int d = 0; d < NDOCS; d++) {
			struct st_cmp_msg m[3];
			struct st_cmp_result r = { 0 };
			char ep[ST_CMP_ENDPOINT_MAX];
			static const char target[] = "/api/catalog?page=1";

			for (int w = 0; w < 3; w++) {
				memset(&m[w], 0, sizeof(m[w]));
				m[w].status = 200;
				m[w].has_body = true;
				m[w].hdrs = gz ? hdr_gzip : hdr_plain;
				m[w].hdrs_len = (uint32_t)(gz ? sizeof(hdr_gzip) : sizeof(hdr_plain)) - 1;
				m[w].nhdrs = 2;
				m[w].body = (const uint8_t *)docs[d][w];
				m[w].body_len = m[w].body_total = lens[d][w];
				m[w].rest_hash = st_cmp_hash_init();
				st_cmp_view_load(&v[w], &rules, &m[w]);
			}
			st_cmp_diff(&rules, &sc, &v[0], &v[1], raw);
			st_cmp_diff(&rules, &sc, &v[0], &v[2], noise);
			st_cmp_endpoint(NULL, 0, "GET", 3, target, sizeof(target) - 1, ep, sizeof(ep));
			r.method = "GET";
			r.mlen = 3;
			r.target = target;
			r.tlen = sizeof(target) - 1;
			r.have_ref = true;
			r.raw = raw;
			r.noise = noise;
			r.lat_ns[0] = 100000;
			r.lat_ns[1] = 200000;
			r.lat_ns[2] = 200000;
			differing += st_cmp_agg_add(&agg, ep, &r) == ST_CMP_DIFFERING;
			prod_bytes += lens[d][0];
			pairs++;
		}
		t = now_s() - t0;
	} while (t < secs);
	printf("size %zu%s: %llu pairs in %.2f s = %.0f pairs/s, %.1f MB/s of production body "
	       "(3 answers parsed, 2 diffs a pair; %llu differing)\n",
	       lens[0][0], gz ? " (gzip)" : "", (unsigned long long)pairs, t, pairs / t,
	       prod_bytes / t / 1e6, (unsigned long long)differing);
	for (int d = 0; d < NDOCS; d++)
		for (int w = 0; w < 3; w++)
			free(docs[d][w]);
	for (int w = 0; w < 3; w++)
		st_cmp_view_free(&v[w]);
	st_cmp_scratch_free(&sc);
	st_cmp_agg_free(&agg);
	free(raw);
	free(noise);
	return 0;
}
