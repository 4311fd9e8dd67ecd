/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for one comparison (agent/compare/compare_diff.c): the bodies production and
 * shadows answer are untrusted, and so is what they claim about them (Content-Type,
 * Content-Encoding).
 *
 * Input: 3 config bytes, then body A, a 0xff 0x00 separator, body B.
 *  byte 0: bits 0-1 Content-Type (JSON, text, binary, none); bits 2-3 Content-Encoding
 *          (none, gzip of the real body, deflate of it, "gzip" over the raw bytes);
 *          bit 4 unordered arrays (all); bit 5 an ignore-field rule; bit 6 a 64-byte cap
 *          on held bodies; bit 7 B gets a different Content-Type.
 *  byte 1: the decompression cap in KiB (0: the default).
 *  byte 2: bits 0-1 gRPC (off; both sides application/grpc; and grpc-encoding gzip; and
 *          the descriptor set of tests/integration/grpc_shop.proto as --proto-descriptor,
 *          the method from bit 2: GetCart or ListCarts), replacing byte 0's Content-Type.
 * Checks: a response compared with itself has no difference; "no difference" is
 * symmetric; the list stays within its bounds; every string is terminated and within
 * its field; a view's prefix is within the body cap; a gRPC body that decodes holds as many
 * messages as its tree's root.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "compare_diff.h"
#include "fuzz_check.h"
#include "protobuf.h"

/* protoc -I tests/integration --include_imports --descriptor_set_out=F grpc_shop.proto */
static const char shop_set[] =
	"\x0a\x97\x04\x0a\x0f\x67\x72\x70\x63\x5f\x73\x68\x6f\x70\x2e\x70\x72\x6f\x74\x6f\x12\x04"
	"\x73\x68\x6f\x70\x22\x56\x0a\x04\x49\x74\x65\x6d\x12\x10\x0a\x03\x73\x6b\x75\x18\x01\x20"
	"\x01\x28\x09\x52\x03\x73\x6b\x75\x12\x10\x0a\x03\x71\x74\x79\x18\x02\x20\x01\x28\x05\x52"
	"\x03\x71\x74\x79\x12\x14\x0a\x05\x70\x72\x69\x63\x65\x18\x03\x20\x01\x28\x01\x52\x05\x70"
	"\x72\x69\x63\x65\x12\x14\x0a\x05\x64\x65\x6c\x74\x61\x18\x04\x20\x01\x28\x11\x52\x05\x64"
	"\x65\x6c\x74\x61\x22\xeb\x01\x0a\x04\x43\x61\x72\x74\x12\x0e\x0a\x02\x69\x64\x18\x01\x20"
	"\x01\x28\x09\x52\x02\x69\x64\x12\x20\x0a\x05\x69\x74\x65\x6d\x73\x18\x02\x20\x03\x28\x0b"
	"\x32\x0a\x2e\x73\x68\x6f\x70\x2e\x49\x74\x65\x6d\x52\x05\x69\x74\x65\x6d\x73\x12\x24\x0a"
	"\x06\x73\x74\x61\x74\x75\x73\x18\x03\x20\x01\x28\x0e\x32\x0c\x2e\x73\x68\x6f\x70\x2e\x53"
	"\x74\x61\x74\x75\x73\x52\x06\x73\x74\x61\x74\x75\x73\x12\x2e\x0a\x06\x63\x6f\x75\x6e\x74"
	"\x73\x18\x04\x20\x03\x28\x0b\x32\x16\x2e\x73\x68\x6f\x70\x2e\x43\x61\x72\x74\x2e\x43\x6f"
	"\x75\x6e\x74\x73\x45\x6e\x74\x72\x79\x52\x06\x63\x6f\x75\x6e\x74\x73\x12\x20\x0a\x0c\x73"
	"\x65\x72\x76\x65\x64\x5f\x61\x74\x5f\x6e\x73\x18\x05\x20\x01\x28\x03\x52\x0a\x73\x65\x72"
	"\x76\x65\x64\x41\x74\x4e\x73\x1a\x39\x0a\x0b\x43\x6f\x75\x6e\x74\x73\x45\x6e\x74\x72\x79"
	"\x12\x10\x0a\x03\x6b\x65\x79\x18\x01\x20\x01\x28\x09\x52\x03\x6b\x65\x79\x12\x14\x0a\x05"
	"\x76\x61\x6c\x75\x65\x18\x02\x20\x01\x28\x05\x52\x05\x76\x61\x6c\x75\x65\x3a\x02\x38\x01"
	"\x22\x1d\x0a\x0b\x43\x61\x72\x74\x52\x65\x71\x75\x65\x73\x74\x12\x0e\x0a\x02\x69\x64\x18"
	"\x01\x20\x01\x28\x09\x52\x02\x69\x64\x2a\x30\x0a\x06\x53\x74\x61\x74\x75\x73\x12\x12\x0a"
	"\x0e\x53\x54\x41\x54\x55\x53\x5f\x55\x4e\x4b\x4e\x4f\x57\x4e\x10\x00\x12\x08\x0a\x04\x4f"
	"\x50\x45\x4e\x10\x01\x12\x08\x0a\x04\x50\x41\x49\x44\x10\x02\x32\x5f\x0a\x05\x43\x61\x72"
	"\x74\x73\x12\x28\x0a\x07\x47\x65\x74\x43\x61\x72\x74\x12\x11\x2e\x73\x68\x6f\x70\x2e\x43"
	"\x61\x72\x74\x52\x65\x71\x75\x65\x73\x74\x1a\x0a\x2e\x73\x68\x6f\x70\x2e\x43\x61\x72\x74"
	"\x12\x2c\x0a\x09\x4c\x69\x73\x74\x43\x61\x72\x74\x73\x12\x11\x2e\x73\x68\x6f\x70\x2e\x43"
	"\x61\x72\x74\x52\x65\x71\x75\x65\x73\x74\x1a\x0a\x2e\x73\x68\x6f\x70\x2e\x43\x61\x72\x74"
	"\x30\x01\x62\x06\x70\x72\x6f\x74\x6f\x33";

struct side {
	struct st_cmp_msg m;
	char hdrs[256];
	uint8_t *enc;
};

static const char *const ctypes[] = { "application/json", "text/plain", "image/png", NULL };

/* grpc: 0 none, 1 application/grpc, 2 and grpc-encoding gzip */
static void build(struct side *s, const uint8_t *body, size_t len, int ct, int ce, size_t held,
		  int grpc)
{
	size_t o = 0;
	const char *coding = NULL;
	const char *type = grpc ? "application/grpc" : ctypes[ct];

	memset(&s->m, 0, sizeof(s->m));
	s->enc = NULL;
	if (type) {
		o += (size_t)sprintf(s->hdrs + o, "Content-Type") + 1;
		o += (size_t)sprintf(s->hdrs + o, "%s", type) + 1;
		s->m.nhdrs++;
	}
	if (grpc == 2) {
		o += (size_t)sprintf(s->hdrs + o, "grpc-encoding") + 1;
		o += (size_t)sprintf(s->hdrs + o, "gzip") + 1;
		s->m.nhdrs++;
	}
	if (ce == 1 || ce == 2) {
		z_stream z = { 0 };
		size_t cap = compressBound((uLong)len) + 64;

		s->enc = malloc(cap);
		CHECK(s->enc);
		CHECK(deflateInit2(&z, 6, Z_DEFLATED, ce == 1 ? 31 : 15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
		z.next_in = (Bytef *)body;
		z.avail_in = (uInt)len;
		z.next_out = s->enc;
		z.avail_out = (uInt)cap;
		CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
		len = cap - z.avail_out;
		deflateEnd(&z);
		body = s->enc;
		coding = ce == 1 ? "gzip" : "deflate";
	} else if (ce == 3) {
		coding = "gzip";
	}
	if (coding) {
		o += (size_t)sprintf(s->hdrs + o, "Content-Encoding") + 1;
		o += (size_t)sprintf(s->hdrs + o, "%s", coding) + 1;
		s->m.nhdrs++;
	}
	s->m.hdrs = s->hdrs;
	s->m.hdrs_len = (uint32_t)o;
	s->m.status = 200;
	s->m.has_body = true;
	s->m.body = body;
	s->m.body_len = held && len > held ? held : len;
	s->m.body_total = len;
	s->m.rest_hash = st_cmp_hash(st_cmp_hash_init(), body + s->m.body_len, len - s->m.body_len);
}

static void check_list(const struct st_cmp_diffs *d)
{
	CHECK(d->n <= ST_CMP_DIFFS_MAX);
	for (uint32_t i = 0; i < d->n; i++) {
		const struct st_cmp_diff *x = &d->d[i];

		CHECK(memchr(x->path, 0, sizeof(x->path)));
		CHECK(memchr(x->a, 0, sizeof(x->a)));
		CHECK(memchr(x->b, 0, sizeof(x->b)));
		CHECK(memchr(x->note, 0, sizeof(x->note)));
		CHECK(x->kind < ST_CMP_KIND__COUNT);
		CHECK(x->count >= 1);
		CHECK(st_cmp_diffs_find(d, x->path) == x);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st_cmp_view va, vb;
	static struct st_cmp_scratch sc;
	static struct st_cmp_diffs d1, d2;
	static int init;
	static const char *const ig[] = { "$..id", "$.items[*].ts", "$.2[*].3" };
	static const char *const paths[] = { "/shop.Carts/GetCart", "/shop.Carts/ListCarts" };
	static struct st_protobuf_schema *schema;
	struct st_cmp_rules r = { 0 };
	struct side a, b;
	const uint8_t *sep = NULL;
	const char *path;
	size_t la, lb;
	int ct, ce, grpc;

	if (!init) {
		char err[256];

		init = 1;
		st_cmp_view_init(&va);
		st_cmp_view_init(&vb);
		schema = st_protobuf_schema__load((const uint8_t *)shop_set, sizeof(shop_set) - 1,
						  err, sizeof(err));
		CHECK(schema);
	}
	if (size < 3)
		return 0;
	ct = data[0] & 3;
	ce = (data[0] >> 2) & 3;
	grpc = data[2] & 3;
	if (grpc == 3) {
		r.schema = schema;
		grpc = 1;
	}
	path = paths[(data[2] >> 2) & 1];
	r.unordered_all = data[0] & 0x10;
	if (data[0] & 0x20) {
		r.ignore_fields = ig;
		r.n_ignore_fields = 3;
	}
	r.max_body = data[0] & 0x40 ? 64 : 0;
	r.max_decoded = data[1] ? (uint64_t)data[1] << 10 : 0;
	data += 3;
	size -= 3;
	for (size_t i = 0; i + 1 < size; i++)
		if (data[i] == 0xff && data[i + 1] == 0) {
			sep = data + i;
			break;
		}
	la = sep ? (size_t)(sep - data) : size;
	lb = sep ? size - la - 2 : 0;
	build(&a, data, la, ct, ce, r.max_body, grpc);
	/* byte 0 bit 7: B another type (not gRPC when A is) */
	build(&b, sep ? sep + 2 : data + size, lb, (data[-3] & 0x80) ? (ct + 1) & 3 : ct, ce,
	      r.max_body, (data[-3] & 0x80) ? 0 : grpc);
	a.m.path = b.m.path = path;
	a.m.path_len = b.m.path_len = (uint32_t)strlen(path);

	/* itself: nothing */
	st_cmp_view_load(&va, &r, &a.m);
	st_cmp_view_load(&vb, &r, &a.m);
	CHECK(va.len <= (r.max_body ? r.max_body : ST_CMP_MAX_BODY_DEFAULT));
	if (va.media == ST_CMP_M_GRPC && va.json_ok)
		CHECK(va.doc.n >= 1 && va.doc.nodes[0].type == ST_JSON_ARRAY &&
		      va.doc.nodes[0].n == va.grpc_msgs);
	st_cmp_diff(&r, &sc, &va, &vb, &d1);
	check_list(&d1);
	CHECK(d1.n == 0 && d1.more == 0);

	/* a against b, and b against a */
	st_cmp_view_load(&vb, &r, &b.m);
	st_cmp_diff(&r, &sc, &va, &vb, &d1);
	check_list(&d1);
	st_cmp_diff(&r, &sc, &vb, &va, &d2);
	check_list(&d2);
	CHECK((d1.n == 0) == (d2.n == 0));
	free(a.enc);
	free(b.enc);
	return 0;
}
