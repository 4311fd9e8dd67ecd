/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/compare/protobuf.c: the wire reader, messages decoded without a
 * schema (bytes built by hand, and messages `protoc --encode` writes here from a .proto of the
 * test's), the same with the FileDescriptorSet `protoc --include_imports --descriptor_set_out`
 * writes, the bounds, and compare_diff walking the trees with field paths ($.2[*].3,
 * $.items[*].price). The tests that need protoc skip without it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare_diff.h"
#include "protobuf.h"

struct out {
	char *p;
	size_t len, cap;
};

static void oput(struct out *o, const void *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		assert_non_null(o->p);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = 0;
}

/* The tree as compact JSON (strings escaped \xHH outside printable ASCII); map entries'
 * keys (no ST_JSON_F_KEY_FIELD) are marked with a '=' before them. */
static void render(const struct st_json_doc *d, uint32_t i, struct out *o)
{
	const struct st_json_node *n = &d->nodes[i];
	const char *b = st_json_bytes(d, n);
	bool first = true;

	switch (n->type) {
	case ST_JSON_OBJECT:
	case ST_JSON_ARRAY:
		oput(o, n->type == ST_JSON_OBJECT ? "{" : "[", 1);
		for (uint32_t c = n->n ? i + 1 : 0; c; c = d->nodes[c].next) {
			const struct st_json_node *m = &d->nodes[c];

			if (!first)
				oput(o, ",", 1);
			first = false;
			if (n->type == ST_JSON_OBJECT) {
				if (!(m->flags & ST_JSON_F_KEY_FIELD))
					oput(o, "=", 1);
				oput(o, "\"", 1);
				oput(o, st_json_key(d, m), m->key_len);
				oput(o, "\":", 2);
			}
			render(d, c, o);
		}
		oput(o, n->type == ST_JSON_OBJECT ? "}" : "]", 1);
		break;
	case ST_JSON_STRING:
		oput(o, "\"", 1);
		for (uint32_t k = 0; k < n->len; k++) {
			unsigned char ch = (unsigned char)b[k];
			char e[8];

			if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
				oput(o, &ch, 1);
			} else {
				snprintf(e, sizeof(e), "\\x%02x", ch);
				oput(o, e, 4);
			}
		}
		oput(o, "\"", 1);
		break;
	default:
		oput(o, b, n->len);
		break;
	}
}

static char *decode(const void *buf, size_t len, const struct st_protobuf_type *t,
		    const struct st_protobuf_opts *o)
{
	struct st_json_doc d;
	struct out r = { 0 };

	st_json_doc_init(&d, 0, 0);
	if (st_protobuf_decode(&d, buf, len, t, o)) {
		oput(&r, "ERR ", 4);
		oput(&r, st_json_strerror(d.err), strlen(st_json_strerror(d.err)));
	} else {
		render(&d, 0, &r);
	}
	st_json_doc_free(&d);
	return r.p;
}

static void expect(const void *buf, size_t len, const struct st_protobuf_type *t, const char *want)
{
	char *got = decode(buf, len, t, NULL);

	if (strcmp(got, want))
		print_error("got  %s\nwant %s\n", got, want);
	assert_string_equal(got, want);
	free(got);
}

#define B(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

/* ---- the wire format ------------------------------------------------------------------------ */

static void test_wire(void **state)
{
	struct st_protobuf_field f;
	size_t pos;
	uint64_t v;

	pos = 0;
	assert_int_equal(st_protobuf_varint(B("\x96\x01"), &pos, &v), 0);
	assert_int_equal(v, 150);
	pos = 0;
	assert_int_equal(st_protobuf_varint(B("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), &pos, &v), 0);
	assert_true(v == UINT64_MAX);
	pos = 0; /* past 64 bits, 11 bytes, cut short */
	assert_int_equal(st_protobuf_varint(B("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"), &pos, &v), -1);
	pos = 0;
	assert_int_equal(st_protobuf_varint(B("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"), &pos, &v),
			 -1);
	pos = 0;
	assert_int_equal(st_protobuf_varint(B("\x80"), &pos, &v), -1);

	pos = 0;
	assert_int_equal(st_protobuf_next(B("\x12\x03" "abc\x08\x01"), &pos, &f), 1);
	assert_int_equal(f.num, 2);
	assert_int_equal(f.wire, ST_PROTOBUF_LEN);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.p, "abc", 3);
	assert_int_equal(st_protobuf_next(B("\x12\x03" "abc\x08\x01"), &pos, &f), 1);
	assert_int_equal(f.v, 1);
	assert_int_equal(st_protobuf_next(B("\x12\x03" "abc\x08\x01"), &pos, &f), 0);
	/* a group with a nested group: its content up to its own end */
	pos = 0;
	assert_int_equal(st_protobuf_next(B("\x0b\x10\x01\x1b\x20\x02\x1c\x0c\x08\x07"), &pos, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.wire, ST_PROTOBUF_SGROUP);
	assert_int_equal(f.len, 6);
	assert_int_equal(pos, 8);
	/* not fields */
	static const struct {
		const char *b;
		size_t n;
	} bad[] = {
		{ "\x00\x01", 2 },          /* field 0 */
		{ "\x0e\x01", 2 },          /* wire type 6 */
		{ "\x0f\x01", 2 },          /* wire type 7 */
		{ "\x12\x05" "abc", 5 },    /* a length past the end */
		{ "\x0b\x10\x01", 3 },      /* a group never closed */
		{ "\x0c", 1 },              /* the end of a group never opened */
		{ "\x0b\x14", 2 },          /* closed by another group's end */
		{ "\x0d\x01\x02", 3 },      /* fixed32 cut short */
		{ "\xf8\xff\xff\xff\x7f\x01", 6 }, /* field 2^32-1 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pos = 0;
		assert_int_equal(st_protobuf_next((const uint8_t *)bad[i].b, bad[i].n, &pos, &f), -1);
	}
	pos = 0; /* field 2^29 - 1 is the last one there is */
	assert_int_equal(st_protobuf_next(B("\xf8\xff\xff\xff\x0f\x01"), &pos, &f), 1);
	assert_int_equal(f.num, ST_PROTOBUF_MAX_FIELD);
}

/* ---- without a schema --------------------------------------------------------------------- */

static void test_schemaless(void **state)
{
	/* the examples of the protobuf encoding guide */
	expect(B("\x08\x96\x01"), NULL, "{\"1\":150}");
	expect(B("\x12\x07testing"), NULL, "{\"2\":\"testing\"}");
	expect(B("\x1a\x03\x08\x96\x01"), NULL, "{\"3\":{\"1\":150}}");
	/* packed varints (not text, not a message), repeated fields, fixed widths, bytes */
	expect(B("\x22\x06\x03\x8e\x02\x9e\xa7\x05"), NULL, "{\"4\":[3,270,86942]}");
	expect(B("\x28\x01\x28\x02\x28\x03"), NULL, "{\"5\":[1,2,3]}");
	expect(B("\x0d\x01\x00\x00\x80\x11\x02\x00\x00\x00\x00\x00\x00\x00"), NULL,
	       "{\"1\":2147483649,\"2\":2}");
	expect(B("\x32\x02\xff\xfe"), NULL, "{\"6\":\"//4=\"}");
	expect(B("\x32\x00"), NULL, "{\"6\":\"\"}");
	/* members in field number order; a negative int32 without a schema is unsigned */
	expect(B("\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x08\x00"), NULL,
	       "{\"1\":0,\"2\":18446744073709551615}");
	/* a group */
	expect(B("\x0b\x10\x01\x1b\x20\x02\x1c\x0c"), NULL, "{\"1\":{\"2\":1,\"3\":{\"4\":2}}}");
	/* text that parses as a message is a message (the documented guess): "(a" is {5: 97} */
	expect(B("\x0a\x02(a"), NULL, "{\"1\":{\"5\":97}}");
	/* the empty message */
	expect("", 0, NULL, "{}");
	/* not a message at the top */
	expect(B("\x12\x05" "abc"), NULL, "ERR not JSON");
	expect(B("hello world"), NULL, "ERR not JSON");
}

/* One field number seen twice, even with two wire types: an array, in order. */
static void test_repeated_mixed(void **state)
{
	expect(B("\x0d\x01\x00\x00\x80\x08\x05"), NULL, "{\"1\":[2147483649,5]}");
	expect(B("\x08\x05\x10\x01\x08\x06"), NULL, "{\"1\":[5,6],\"2\":1}");
}

static void test_bounds(void **state)
{
	struct st_protobuf_opts o = { .max_depth = 3 };
	uint8_t *b = malloc(4000);
	struct st_json_doc d;
	char *got;
	size_t n = 0;

	assert_non_null(b);
	/* {1: {1: {1: ... "x"}}} nested 200 deep: with max_depth 3, what is deeper is not taken
	 * for a message (here it splits into varints) */
	b[0] = 'x';
	n = 1;
	for (int i = 0; i < 200; i++) {
		memmove(b + 2 + (n > 127), b, n);
		b[0] = 0x0a;
		if (n > 127) {
			b[1] = (uint8_t)(0x80 | (n & 0x7f));
			b[2] = (uint8_t)(n >> 7);
			n += 3;
		} else {
			b[1] = (uint8_t)n;
			n += 2;
		}
	}
	got = decode(b, n, NULL, &o);
	/* the top message and three nested ones */
	assert_int_equal(strncmp(got, "{\"1\":{\"1\":{\"1\":{\"1\":[10,", 24), 0);
	free(got);
	got = decode(b, n, NULL, NULL);
	assert_int_equal(strncmp(got, "{\"1\":{\"1\":", 10), 0);
	free(got);
	/* the node cap */
	st_json_doc_init(&d, 0, 0);
	o = (struct st_protobuf_opts){ .max_nodes = 3 };
	assert_int_equal(st_protobuf_decode(&d, B("\x08\x01\x10\x02\x18\x03"), NULL, &o), -1);
	assert_int_equal(d.err, ST_JSON_E_NODES);
	assert_int_equal(st_protobuf_decode(&d, B("\x08\x01\x10\x02"), NULL, &o), 0);
	assert_int_equal(d.n, 3);
	st_json_doc_free(&d);
	free(b);
}

/* A set written by hand: a message without fields (fuzz_protobuf: its empty field list went
 * to qsort as NULL), an enum, a service whose types are missing. */
static void test_schema_by_hand(void **state)
{
	static const uint8_t set[] = "\x0a\x0e\x0a\x07" "e.proto" "\x22\x03\x0a\x01" "E";
	static const uint8_t bad_method[] =
		"\x0a\x1b\x0a\x07" "m.proto" "\x32\x10\x0a\x01" "S" "\x12\x0b\x0a\x01" "M" "\x12\x02" ".X"
		"\x1a\x02" ".Y";
	struct st_protobuf_schema *s;
	const struct st_protobuf_type *t;
	char err[200];

	s = st_protobuf_schema__load(set, sizeof(set) - 1, err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	t = st_protobuf_schema__type(s, "E");
	assert_non_null(t);
	assert_ptr_equal(st_protobuf_schema__type_at(s, 0), t);
	assert_null(st_protobuf_schema__type_at(s, 1));
	expect(B("\x08\x01"), t, "{\"1\":1}");
	st_protobuf_schema__free(s);
	s = st_protobuf_schema__load(bad_method, sizeof(bad_method) - 1, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "method /S/M"));
}

/* ---- protoc ----------------------------------------------------------------------------- */

static const char common_proto[] =
	"syntax = \"proto3\";\n"
	"package common;\n"
	"message Money { int64 units = 1; int32 nanos = 2; }\n";

static const char cart_proto[] =
	"syntax = \"proto3\";\n"
	"package shop;\n"
	"import \"common.proto\";\n"
	"enum Status { STATUS_UNKNOWN = 0; ACTIVE = 1; CLOSED = 2; }\n"
	"message Item {\n"
	"  string sku = 1; int32 qty = 2; double price = 3; sint64 delta = 4;\n"
	"  common.Money cost = 5; repeated uint32 tags = 6;\n"
	"  message Note { string text = 1; }\n"
	"  Note note = 7;\n"
	"}\n"
	"message Cart {\n"
	"  string id = 1; repeated Item items = 2; map<string, int32> counts = 3;\n"
	"  Status status = 4; bool gift = 5; bytes token = 6; float ratio = 7; int32 neg = 8;\n"
	"  sfixed32 sf = 9; fixed64 f64 = 10; map<int64, Item> by_id = 11;\n"
	"  repeated sint32 zz = 12; repeated Status history = 13;\n"
	"}\n"
	"message GetReq { string id = 1; }\n"
	"service CartService {\n"
	"  rpc Get(GetReq) returns (Cart);\n"
	"  rpc List(GetReq) returns (stream Cart);\n"
	"}\n";

static const char cart_text[] =
	"id: \"c-42\"\n"
	"items { sku: \"A1\" qty: 2 price: 9.99 delta: -5 cost { units: 9 nanos: 990000000 }"
	" tags: [1, 2, 300] note { text: \"fragile\" } }\n"
	"items { sku: \"B2\" qty: 1 price: 0.5 }\n"
	"counts { key: \"x\" value: 3 } counts { key: \"y\" value: -1 }\n"
	"status: CLOSED gift: true token: \"\\377\\000ab\" ratio: 0.25 neg: -7 sf: -2\n"
	"f64: 12345678901234 by_id { key: 7 value { sku: \"C3\" } } zz: [-1, 1, -64]\n"
	"history: [ACTIVE, CLOSED]\n";

struct pdir {
	char dir[64];
	bool ok;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = malloc(1 << 20);

	assert_non_null(f);
	assert_non_null(b);
	*n = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

static bool have_protoc(void)
{
	return !system("protoc --version >/dev/null 2>&1");
}

/* protoc --encode=TYPE of text, in the test's directory: the bytes. */
static uint8_t *encode(const char *dir, const char *type, const char *text, size_t *n)
{
	char cmd[512], path[256];

	write_file(dir, "in.txt", text);
	snprintf(cmd, sizeof(cmd), "cd %s && protoc --encode=%s cart.proto <in.txt >out.bin", dir,
		 type);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/out.bin", dir);
	return slurp(path, n);
}

static int setup_protoc(void **state)
{
	struct pdir *p = calloc(1, sizeof(*p));
	char cmd[512];

	if (!p)
		return -1;
	snprintf(p->dir, sizeof(p->dir), "/tmp/st-pb.XXXXXX");
	if (!mkdtemp(p->dir))
		return -1;
	*state = p;
	if (!have_protoc())
		return 0;
	write_file(p->dir, "common.proto", common_proto);
	write_file(p->dir, "cart.proto", cart_proto);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && protoc --include_imports --descriptor_set_out=set.pb cart.proto && "
		 "protoc --descriptor_set_out=partial.pb cart.proto", p->dir);
	p->ok = !system(cmd);
	return p->ok ? 0 : -1;
}

static int teardown_protoc(void **state)
{
	struct pdir *p = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
	if (system(cmd))
		return -1;
	free(p);
	return 0;
}

static struct st_protobuf_schema *load(const struct pdir *p, const char *name, char *err, size_t el)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	return st_protobuf_schema__load_file(path, err, el);
}

static void test_protoc_schemaless(void **state)
{
	struct pdir *p = *state;
	uint8_t *b;
	size_t n;

	if (!p->ok)
		skip();
	b = encode(p->dir, "shop.Cart", cart_text, &n);
	expect(b, n, NULL,
	       "{\"1\":\"c-42\","
	       "\"2\":[{\"1\":\"A1\",\"2\":2,\"3\":4621813488089437307,\"4\":9,"
	       "\"5\":{\"1\":9,\"2\":990000000},\"6\":[1,2,300],\"7\":{\"1\":\"fragile\"}},"
	       "{\"1\":\"B2\",\"2\":1,\"3\":4602678819172646912}],"
	       "\"3\":[{\"1\":\"x\",\"2\":3},{\"1\":\"y\",\"2\":18446744073709551615}],"
	       "\"4\":2,\"5\":1,\"6\":\"/wBhYg==\",\"7\":1048576000,\"8\":18446744073709551609,"
	       "\"9\":4294967294,\"10\":12345678901234,\"11\":{\"1\":7,\"2\":{\"1\":\"C3\"}},"
	       "\"12\":[1,2,127],\"13\":[1,2]}");
	free(b);
}

static void test_protoc_schema(void **state)
{
	struct pdir *p = *state;
	const struct st_protobuf_type *in, *out;
	struct st_protobuf_schema *s;
	uint32_t nm, ne, nmd;
	char err[256];
	uint8_t *b;
	size_t n;

	if (!p->ok)
		skip();
	s = load(p, "set.pb", err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	st_protobuf_schema__counts(s, &nm, &ne, &nmd);
	assert_int_equal(nm, 7); /* Money, Item, Item.Note, Cart, its two map entries, GetReq */
	assert_int_equal(ne, 1);
	assert_int_equal(nmd, 2);
	assert_int_equal(st_protobuf_schema__method(s, "/shop.CartService/Get", 21, &in, &out), 0);
	assert_string_equal(st_protobuf_type__name(in), "shop.GetReq");
	assert_string_equal(st_protobuf_type__name(out), "shop.Cart");
	assert_int_equal(st_protobuf_schema__method(s, "/shop.CartService/List?x=1", 26, &in, NULL), 0);
	assert_int_equal(st_protobuf_schema__method(s, "/shop.CartService/Gets", 22, &in, &out), -1);
	assert_int_equal(st_protobuf_schema__method(s, "/shop.CartService/Ge", 20, &in, &out), -1);
	assert_non_null(st_protobuf_schema__type(s, ".shop.Item.Note"));
	assert_non_null(st_protobuf_schema__type(s, "common.Money"));
	assert_null(st_protobuf_schema__type(s, "shop.Nope"));

	b = encode(p->dir, "shop.Cart", cart_text, &n);
	expect(b, n, out,
	       "{\"id\":\"c-42\","
	       "\"items\":[{\"sku\":\"A1\",\"qty\":2,\"price\":9.99,\"delta\":-5,"
	       "\"cost\":{\"units\":9,\"nanos\":990000000},\"tags\":[1,2,300],"
	       "\"note\":{\"text\":\"fragile\"}},"
	       "{\"sku\":\"B2\",\"qty\":1,\"price\":0.5}],"
	       "\"counts\":{=\"x\":3,=\"y\":-1},\"status\":\"CLOSED\",\"gift\":true,"
	       "\"token\":\"/wBhYg==\",\"ratio\":0.25,\"neg\":-7,\"sf\":-2,\"f64\":12345678901234,"
	       "\"by_id\":{=\"7\":{\"sku\":\"C3\"}},\"zz\":[-1,1,-64],"
	       "\"history\":[\"ACTIVE\",\"CLOSED\"]}");
	free(b);
	/* a field the schema does not know, and one whose wire type does not match: by number */
	expect(B("\x0a\x02id\xb8\x06\x05\x10\x07"), out, "{\"id\":\"id\",\"2\":7,\"103\":5}");
	/* an enum value the schema does not name: its number */
	expect(B("\x20\x09"), out, "{\"status\":9}");
	/* a singular field sent twice: its last value */
	expect(B("\x0a\x01" "a\x0a\x01" "b"), out, "{\"id\":\"b\"}");
	/* a float's NaN, a double's infinity */
	expect(B("\x3d\x00\x00\xc0\x7f"), out, "{\"ratio\":\"NaN\"}");
	expect(B("\x12\x09\x19\x00\x00\x00\x00\x00\x00\xf0\xff"), out,
	       "{\"items\":[{\"price\":\"-Infinity\"}]}");
	/* unpacked repeated scalars are an array too */
	expect(B("\x60\x01\x60\x02"), out, "{\"zz\":[-1,1]}");
	st_protobuf_schema__free(s);

	/* without --include_imports: common.Money is not there */
	s = load(p, "partial.pb", err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "common.Money"));
	assert_non_null(strstr(err, "--include_imports"));
	s = load(p, "cart.proto", err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "not a FileDescriptorSet"));
	s = load(p, "nope.pb", err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "nope.pb"));
	assert_null(st_protobuf_schema__load(B("\x0a\x03\x0a\x01"), err, sizeof(err)));
	assert_null(st_protobuf_schema__load((const uint8_t *)"", 0, err, sizeof(err)));
}

/* ---- compare_diff walks the trees with field paths ------------------------------------------ */

static void view(struct st_cmp_view *v, struct st_cmp_msg *m, const uint8_t *b, size_t n,
		 const struct st_protobuf_type *t)
{
	memset(m, 0, sizeof(*m));
	m->status = 200;
	m->has_body = true;
	m->body = b;
	m->body_len = n;
	m->body_total = n;
	m->rest_hash = st_cmp_hash_init();
	st_cmp_view_init(v);
	v->m = m;
	v->media = ST_CMP_M_JSON;
	v->body = b;
	v->len = n;
	v->total = n;
	v->rest_hash = m->rest_hash;
	v->json_tried = true;
	v->json_ok = !st_protobuf_decode(&v->doc, b, n, t, NULL);
	assert_true(v->json_ok);
}

static void test_compare_paths(void **state)
{
	struct pdir *p = *state;
	const struct st_protobuf_type *out;
	struct st_protobuf_schema *s;
	struct st_cmp_rules rules = { 0 };
	struct st_cmp_scratch sc = { 0 };
	struct st_cmp_diffs *o = calloc(1, sizeof(*o));
	struct st_cmp_view va, vb;
	struct st_cmp_msg ma, mb;
	const struct st_cmp_diff *d;
	uint8_t *a, *b;
	size_t na, nb;
	char err[256], *text2;

	assert_non_null(o);
	if (!p->ok)
		skip();
	s = load(p, "set.pb", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(st_protobuf_schema__method(s, "/shop.CartService/Get", 21, NULL, &out), 0);
	a = encode(p->dir, "shop.Cart", cart_text, &na);
	text2 = strdup(cart_text);
	assert_non_null(text2);
	memcpy(strstr(text2, "price: 0.5"), "price: 0.7", 10);
	b = encode(p->dir, "shop.Cart", text2, &nb);
	/* without a schema: the field by number, never an {id} */
	view(&va, &ma, a, na, NULL);
	view(&vb, &mb, b, nb, NULL);
	st_cmp_diff(&rules, &sc, &va, &vb, o);
	assert_int_equal(o->n, 1);
	d = st_cmp_diffs_find(o, "$.2[*].3");
	assert_non_null(d);
	assert_int_equal(d->kind, ST_CMP_VALUE);
	st_cmp_view_free(&va);
	st_cmp_view_free(&vb);
	/* with one: by name */
	view(&va, &ma, a, na, out);
	view(&vb, &mb, b, nb, out);
	st_cmp_diff(&rules, &sc, &va, &vb, o);
	assert_int_equal(o->n, 1);
	d = st_cmp_diffs_find(o, "$.items[*].price");
	assert_non_null(d);
	assert_string_equal(d->a, "0.5");
	assert_string_equal(d->b, "0.7");
	/* the same message: no difference; map keys that look like ids collapse as in JSON */
	st_cmp_view_free(&vb);
	free(b);
	free(text2);
	text2 = strdup(cart_text);
	memcpy(strstr(text2, "sku: \"C3\""), "sku: \"C4\"", 9);
	b = encode(p->dir, "shop.Cart", text2, &nb);
	view(&vb, &mb, b, nb, out);
	st_cmp_diff(&rules, &sc, &va, &vb, o);
	assert_int_equal(o->n, 1);
	assert_non_null(st_cmp_diffs_find(o, "$.by_id.{id}.sku"));
	st_cmp_view_free(&va);
	st_cmp_view_free(&vb);
	st_cmp_scratch_free(&sc);
	st_protobuf_schema__free(s);
	free(a);
	free(b);
	free(text2);
	free(o);
}

/* A gRPC answer of the messages m[0..n) (flag 0), for st_cmp_view_load with :path path. */
static uint8_t *grpc_body(struct st_cmp_msg *m, uint8_t *const *msgs, const size_t *lens,
			  unsigned n, const char *path)
{
	static const char hdrs[] = "content-type\0application/grpc";
	size_t tot = 0, o = 0;
	uint8_t *b;

	for (unsigned i = 0; i < n; i++)
		tot += 5 + lens[i];
	b = malloc(tot + 1);
	assert_non_null(b);
	for (unsigned i = 0; i < n; i++) {
		b[o] = 0;
		b[o + 1] = (uint8_t)(lens[i] >> 24);
		b[o + 2] = (uint8_t)(lens[i] >> 16);
		b[o + 3] = (uint8_t)(lens[i] >> 8);
		b[o + 4] = (uint8_t)lens[i];
		memcpy(b + o + 5, msgs[i], lens[i]);
		o += 5 + lens[i];
	}
	memset(m, 0, sizeof(*m));
	m->status = 200;
	m->hdrs = hdrs;
	m->hdrs_len = sizeof(hdrs);
	m->nhdrs = 1;
	m->has_body = true;
	m->body = b;
	m->body_len = o;
	m->body_total = o;
	m->rest_hash = st_cmp_hash_init();
	m->path = path;
	m->path_len = path ? (uint32_t)strlen(path) : 0;
	return b;
}

/*
 * gRPC answers through st_cmp_view_load, as compare takes them: with the schema in the rules,
 * the type the method's :path answers names the fields (a server-streaming List: every
 * message); a method the schema does not hold, or no schema, gives field numbers. A field
 * the redaction policy names is masked once the schema names it.
 */
static void test_compare_grpc(void **state)
{
	struct pdir *p = *state;
	struct st_protobuf_schema *s;
	struct st_cmp_rules rules = { 0 };
	struct st_cmp_scratch sc = { 0 };
	struct st_cmp_diffs *o = calloc(1, sizeof(*o));
	struct st_cmp_view va, vb;
	struct st_cmp_msg ma, mb;
	uint8_t *m[2], *ba, *bb;
	size_t n[2];
	char err[256], *text2;
	static const struct {
		const char *path;
		unsigned nmsg;
		bool schema;
		const char *want;
		const char *note;
	} rows[] = {
		{ "/shop.CartService/Get", 1, true, "$.items[*].price", "" },
		{ "/shop.CartService/List", 2, true, "$.items[*].price", "first in gRPC message 1" },
		{ "/shop.CartService/Nope", 1, true, "$.2[*].3", "" },
		{ "/shop.CartService/Get", 1, false, "$.2[*].3", "" },
		{ NULL, 1, true, "$.2[*].3", "" },
	};

	assert_non_null(o);
	if (!p->ok)
		skip();
	s = load(p, "set.pb", err, sizeof(err));
	assert_non_null(s);
	text2 = strdup(cart_text);
	assert_non_null(text2);
	memcpy(strstr(text2, "price: 0.5"), "price: 0.7", 10);
	m[0] = encode(p->dir, "shop.Cart", cart_text, &n[0]);
	m[1] = encode(p->dir, "shop.Cart", text2, &n[1]);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint8_t *am[2] = { m[0], m[0] }, *bm[2] = { m[0], m[1] };
		size_t al[2] = { n[0], n[0] }, bl[2] = { n[0], n[1] };
		const struct st_cmp_diff *d;

		if (rows[i].nmsg == 1) {
			bm[0] = m[1];
			bl[0] = n[1];
		}
		rules.schema = rows[i].schema ? s : NULL;
		ba = grpc_body(&ma, am, al, rows[i].nmsg, rows[i].path);
		bb = grpc_body(&mb, bm, bl, rows[i].nmsg, rows[i].path);
		st_cmp_view_init(&va);
		st_cmp_view_init(&vb);
		st_cmp_view_load(&va, &rules, &ma);
		st_cmp_view_load(&vb, &rules, &mb);
		assert_true(va.json_ok && vb.json_ok);
		st_cmp_diff(&rules, &sc, &va, &vb, o);
		if (o->n != 1 || !(d = st_cmp_diffs_find(o, rows[i].want))) {
			print_error("row %zu: %u differences, want one at %s:\n", i, o->n, rows[i].want);
			for (uint32_t k = 0; k < o->n; k++)
				print_error("  %s\n", o->d[k].path);
			fail();
		}
		assert_string_equal(d->note, rows[i].note);
		if (rows[i].schema && rows[i].want[2] == 'i') {
			assert_string_equal(d->a, "0.5");
			assert_string_equal(d->b, "0.7");
		}
		st_cmp_view_free(&va);
		st_cmp_view_free(&vb);
		free(ba);
		free(bb);
	}
	/* a field whose name the redaction policy lists (token, by default) is masked when the
	 * descriptor names it; by number nobody can tell it is one */
	free(m[1]);
	free(text2);
	text2 = strdup(cart_text);
	assert_non_null(text2);
	memcpy(strstr(text2, "token: \"\\377"), "token: \"\\376", 12);
	m[1] = encode(p->dir, "shop.Cart", text2, &n[1]);
	for (int named = 1; named >= 0; named--) {
		const struct st_cmp_diff *d;

		rules.schema = named ? s : NULL;
		ba = grpc_body(&ma, &m[0], &n[0], 1, "/shop.CartService/Get");
		bb = grpc_body(&mb, &m[1], &n[1], 1, "/shop.CartService/Get");
		st_cmp_view_init(&va);
		st_cmp_view_init(&vb);
		st_cmp_view_load(&va, &rules, &ma);
		st_cmp_view_load(&vb, &rules, &mb);
		st_cmp_diff(&rules, &sc, &va, &vb, o);
		assert_int_equal(o->n, 1);
		d = st_cmp_diffs_find(o, named ? "$.token" : "$.6");
		assert_non_null(d);
		if (named) {
			assert_string_equal(d->a, "(masked)");
			assert_string_equal(d->b, "(masked)");
		} else {
			assert_string_equal(d->a, "\"/wBhYg==\"");
		}
		st_cmp_view_free(&va);
		st_cmp_view_free(&vb);
		free(ba);
		free(bb);
	}
	st_cmp_scratch_free(&sc);
	st_protobuf_schema__free(s);
	free(m[0]);
	free(m[1]);
	free(text2);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_schemaless),
		cmocka_unit_test(test_repeated_mixed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_schema_by_hand),
	};
	const struct CMUnitTest protoc_tests[] = {
		cmocka_unit_test(test_protoc_schemaless),
		cmocka_unit_test(test_protoc_schema),
		cmocka_unit_test(test_compare_paths),
		cmocka_unit_test(test_compare_grpc),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	return r + cmocka_run_group_tests(protoc_tests, setup_protoc, teardown_protoc);
}
