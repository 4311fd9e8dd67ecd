/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare's throughput on one core: the work the compare worker does per pair
 * (decode, parse, diff candidate and reference against production, endpoint template,
 * aggregate), on JSON answers of a given size, in a loop.
 *
 *   build/tools/bench_compare [SIZE_BYTES [SECONDS [plain|gzip|grpc [DESCRIPTOR_SET]]]]
 *
 * The three answers of a pair differ the way real ones do: a request id changes on every
 * answer (so nothing is byte-identical and every pair takes the full path), and the
 * candidate changes one price in ten items. Prints pairs/s and MB/s of production body.
 * grpc: the same carts as one gRPC message of tests/integration/grpc_shop.proto's shop.Cart
 * (the id in served_at_ns), answers of POST /shop.Carts/GetCart, decoded as protobuf without
 * a schema, or with the FileDescriptorSet named (protoc --include_imports
 * --descriptor_set_out). Pin it to a CPU (taskset -c 1) for the one-core figure:
 * tools/bench-compare.sh does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "compare_agg.h"
#include "compare_diff.h"
#include "protobuf.h"

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

static size_t varint(uint8_t *o, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		o[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	o[n++] = (uint8_t)v;
	return n;
}

/* A length-delimited field: its tag and length (len < 2^14), then the bytes written by the
 * caller at the returned offset. */
static size_t ld_head(uint8_t *o, unsigned field, size_t len)
{
	size_t n = varint(o, (uint64_t)field << 3 | 2);

	return n + varint(o + n, len);
}

/* The same cart as make_doc, as a gRPC message of shop.Cart (grpc_shop.proto): id, items
 * {sku, qty, price, delta}, status, counts, served_at_ns (the request id). */
static size_t make_grpc(char *out, size_t size, unsigned seq, int who)
{
	uint8_t *o = (uint8_t *)out + 5, item[128];
	size_t n = 0;
	unsigned i = 0;
	char id[32];

	n += ld_head(o + n, 1, (size_t)sprintf(id, "cart-%u", seq % 16));
	memcpy(o + n, id, strlen(id));
	n += strlen(id);
	while (n + 80 < size) {
		double price = 10 + (i % 97) * 0.25 + (who == 1 && i % 10 == 3 ? 1 : 0);
		size_t k = 0;
		char sku[16];

		k += ld_head(item + k, 1, (size_t)sprintf(sku, "SKU-%06u", i * 7));
		memcpy(item + k, sku, strlen(sku));
		k += strlen(sku);
		item[k++] = 2 << 3;
		k += varint(item + k, i % 13);
		item[k++] = 3 << 3 | 1;
		memcpy(item + k, &price, 8); /* little-endian hosts */
		k += 8;
		item[k++] = 4 << 3;
		k += varint(item + k, (i % 7) * 2 + 1); /* sint32 -(i % 7) - 1, zigzag */
		n += ld_head(o + n, 2, k);
		memcpy(o + n, item, k);
		n += k;
		i++;
	}
	o[n++] = 3 << 3;
	o[n++] = 1;
	o[n++] = 5 << 3;
	n += varint(o + n, (uint64_t)seq * 2654435761u + (uint64_t)who * 40503u);
	out[0] = 0;
	out[1] = (char)(n >> 24);
	out[2] = (char)(n >> 16);
	out[3] = (char)(n >> 8);
	out[4] = (char)n;
	return n + 5;
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
	int grpc = argc > 3 && !strcmp(argv[3], "grpc");
	static const char hdr_plain[] = "Content-Type\0application/json\0Server\0x\0";
	static const char hdr_gzip[] = "Content-Type\0application/json\0Content-Encoding\0gzip\0";
	static const char hdr_grpc[] = "content-type\0application/grpc\0grpc-encoding\0identity\0";
	const char *hdrs = grpc ? hdr_grpc : gz ? hdr_gzip : hdr_plain;
	uint32_t hdrs_len = (uint32_t)(grpc ? sizeof(hdr_grpc) : gz ? sizeof(hdr_gzip) :
							sizeof(hdr_plain)) - 1;
	struct st_protobuf_schema *schema = NULL;
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

	if (size < 256 || secs <= 0 || !raw || !noise ||
	    (argc > 3 && !gz && !grpc && strcmp(argv[3], "plain")) || (argc > 4 && !grpc)) {
		fprintf(stderr, "usage: %s [SIZE_BYTES >= 256 [SECONDS [plain|gzip|grpc "
			"[DESCRIPTOR_SET]]]]\n", argv[0]);
		free(raw);
		free(noise);
		return 2;
	}
	if (argc > 4) {
		char err[256];

		schema = st_protobuf_schema__load_file(argv[4], err, sizeof(err));
		if (!schema) {
			fprintf(stderr, "bench_compare: %s\n", err);
			free(raw);
			free(noise);
			return 2;
		}
		rules.schema = schema;
	}
	/* answers made beforehand: the loop measures comparing, not formatting */
	for (int d = 0; d < NDOCS; d++)
		for (int w = 0; w < 3; w++) {
			char *tmp = malloc(size + 512);

			lens[d][w] = grpc ? make_grpc(tmp, size, (unsigned)(d * 3 + w), w) :
					    make_doc(tmp, size, (unsigned)(d * 3 + w), w);
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
			const char *target = grpc ? "/shop.Carts/GetCart" : "/api/catalog?page=1";
			const char *method = grpc ? "POST" : "GET";

			for (int w = 0; w < 3; w++) {
				memset(&m[w], 0, sizeof(m[w]));
				m[w].status = 200;
				m[w].has_body = true;
				m[w].hdrs = hdrs;
				m[w].hdrs_len = hdrs_len;
				m[w].nhdrs = 2;
				m[w].path = target;
				m[w].path_len = (uint32_t)strlen(target);
				m[w].body = (const uint8_t *)docs[d][w];
				m[w].body_len = m[w].body_total = lens[d][w];
				m[w].rest_hash = st_cmp_hash_init();
				st_cmp_view_load(&v[w], &rules, &m[w]);
			}
			st_cmp_diff(&rules, &sc, &v[0], &v[1], raw);
			st_cmp_diff(&rules, &sc, &v[0], &v[2], noise);
			st_cmp_endpoint(NULL, 0, method, strlen(method), target, strlen(target), ep,
					sizeof(ep));
			r.method = method;
			r.mlen = strlen(method);
			r.target = target;
			r.tlen = strlen(target);
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
	       lens[0][0], gz ? " (gzip)" : grpc ? (schema ? " (gRPC, descriptor)" : " (gRPC)") : "",
	       (unsigned long long)pairs, t, pairs / t, prod_bytes / t / 1e6,
	       (unsigned long long)differing);
	for (int d = 0; d < NDOCS; d++)
		for (int w = 0; w < 3; w++)
			free(docs[d][w]);
	for (int w = 0; w < 3; w++)
		st_cmp_view_free(&v[w]);
	st_cmp_scratch_free(&sc);
	st_cmp_agg_free(&agg);
	st_protobuf_schema__free(schema);
	free(raw);
	free(noise);
	return 0;
}
