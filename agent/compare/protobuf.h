/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Protocol Buffers for tap compare: a message's wire format decoded into the tree json.h
 * holds for JSON bodies (struct st_json_doc), so compare_diff.c walks both alike. Member
 * keys are field numbers without a schema ($.2[*].5) and field names with one
 * ($.items[*].price); they carry ST_JSON_F_KEY_FIELD, so a path never takes them for ids.
 * docs/HTTP2.md has the rules. Bodies are untrusted: everything is bounded.
 *
 * Without a schema (the wire format alone):
 *  - varint: a number, unsigned (a negative int32 shows as 18446744073709551615: only a
 *    schema says it is signed or zigzag); fixed32, fixed64: the unsigned little-endian value;
 *  - length-delimited, in this order: a nested message when all of it parses cleanly (every
 *    field number in 1..2^29-1, a known wire type, every length inside, a group closed by its
 *    own end, no byte left over); else text when it is valid UTF-8 without control characters
 *    but TAB, CR, LF, FF; else packed varints (an array of numbers) when it splits into
 *    varints of at most 10 bytes none of which ends in a needless zero byte; else bytes,
 *    shown in base64. An empty one is "" (an empty string, bytes or message alike). These are
 *    guesses, the same for both sides of a comparison: a short string may parse as a message,
 *    a hash may split into varints; a descriptor removes them;
 *  - a group: an object of its fields;
 *  - a field number seen more than once in a message: an array of its values in order.
 * Members come in field number order.
 *
 * With a schema (st_protobuf_schema__load(): a FileDescriptorSet, `protoc --include_imports
 * --descriptor_set_out`, read with the same wire reader) and a message type (by name, or a
 * gRPC method's request or response type from its :path): names for keys; int32/int64
 * signed, sint32/sint64 zigzag, sfixed signed, float and double as numbers (NaN and the
 * infinities as strings), bool as true/false, enums by value name (the number when the
 * schema has none), bytes in base64, nested and map fields by their types (a map is an
 * object keyed by the entry keys); repeated fields are always arrays, packed or not; a
 * singular field sent twice is its last value (a message too: not merged). A field the
 * schema does not know, or whose wire type does not match it, falls back to the rules above.
 *
 * Bounds: nesting up to max_depth (deeper length-delimited values are not parsed as
 * messages); nodes up to max_nodes (2 per input byte at most, which the default allows).
 * Recursion is bounded by max_depth; scratch memory by the input's length. No I/O but
 * st_protobuf_schema__load_file(), no threads, no globals.
 */
#ifndef ST_PROTOBUF_H
#define ST_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define ST_PROTOBUF_MAX_DEPTH 64
#define ST_PROTOBUF_MAX_FIELD 536870911u        /* 2^29 - 1 */
#define ST_PROTOBUF_SCHEMA_MAX (64u << 20)      /* a descriptor set file, bytes */

/* The wire format, one field at a time (the decoder and the descriptor loader share it). */
enum st_protobuf_wire {
	ST_PROTOBUF_VARINT = 0,
	ST_PROTOBUF_I64 = 1,
	ST_PROTOBUF_LEN = 2,
	ST_PROTOBUF_SGROUP = 3,
	ST_PROTOBUF_EGROUP = 4,
	ST_PROTOBUF_I32 = 5,
};

struct st_protobuf_field {
	uint32_t num;
	uint8_t wire;           /* enum st_protobuf_wire (a group comes whole: SGROUP) */
	uint64_t v;             /* VARINT, I64, I32 */
	const uint8_t *p;       /* LEN: the bytes; SGROUP: the group's fields */
	size_t len;
};

/* Reads a varint at buf[*pos]: 0, or -1 (cut short, or longer than 10 bytes). */
int st_protobuf_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v);
/*
 * The field at buf[*pos] (a group with everything up to its end, nested groups counted up to
 * ST_PROTOBUF_MAX_DEPTH): 1 and *pos past it, 0 at the end of buf, -1 when the bytes are not a
 * field (field number 0 or over 2^29-1, wire type 6 or 7, a length past the end, a group
 * never closed, an end of group without its start).
 */
int st_protobuf_next(const uint8_t *buf, size_t len, size_t *pos, struct st_protobuf_field *f);

struct st_protobuf_schema;
struct st_protobuf_type;

/* NULL with err filled ("descriptor: ..."). buf is not kept. */
struct st_protobuf_schema *st_protobuf_schema__load(const uint8_t *buf, size_t len, char *err,
						    size_t errlen);
/* The same from a file of at most ST_PROTOBUF_SCHEMA_MAX bytes; err names it ("descriptor
 * FILE: ..."). */
struct st_protobuf_schema *st_protobuf_schema__load_file(const char *path, char *err,
							 size_t errlen);
void st_protobuf_schema__free(struct st_protobuf_schema *s);
/* A message type by its full name ("pkg.Msg", a leading dot allowed), or NULL. */
const struct st_protobuf_type *st_protobuf_schema__type(const struct st_protobuf_schema *s,
							const char *name);
/* A gRPC method's types from its :path ("/pkg.Service/Method"): 0, or -1 (unknown). */
int st_protobuf_schema__method(const struct st_protobuf_schema *s, const char *path, size_t len,
			       const struct st_protobuf_type **in,
			       const struct st_protobuf_type **out);
const char *st_protobuf_type__name(const struct st_protobuf_type *t);
/* The i-th message type the set defines (0 .. the count st_protobuf_schema__counts gives), or NULL. */
const struct st_protobuf_type *st_protobuf_schema__type_at(const struct st_protobuf_schema *s,
							   uint32_t i);
/* What the schema holds: messages, enums, methods. */
void st_protobuf_schema__counts(const struct st_protobuf_schema *s, uint32_t *msgs, uint32_t *enums,
				uint32_t *methods);

struct st_protobuf_opts {
	unsigned max_depth;     /* 0: ST_PROTOBUF_MAX_DEPTH */
	uint32_t max_nodes;     /* 0: 2 per input byte and a few */
};

/*
 * Decodes buf[0, len) (which must outlive the tree: strings point into it) into d, the
 * previous tree dropped; type NULL: no schema. 0, or -1 with d->err: ST_JSON_E_SYNTAX (not a
 * protobuf message at the top: compare it as bytes), ST_JSON_E_NODES, ST_JSON_E_NOMEM.
 */
int st_protobuf_decode(struct st_json_doc *d, const uint8_t *buf, size_t len,
		       const struct st_protobuf_type *type, const struct st_protobuf_opts *o);

/* One message of several in one buffer (a gRPC stream's, decoded). */
struct st_protobuf_span {
	uint32_t off, len;
};

/*
 * Several messages of one type (a gRPC stream's, each decoded from its prefix and coding) into
 * one tree: node 0 an array of n elements, element i the message buf[m[i].off, + m[i].len)
 * as st_protobuf_decode() makes it, or, when it does not parse as a message, a string of
 * its bytes in base64 (compared whole). Spans must lie inside buf. 0, or -1 with d->err:
 * ST_JSON_E_SYNTAX (a span outside buf), ST_JSON_E_NODES, ST_JSON_E_NOMEM.
 */
int st_protobuf_decode_list(struct st_json_doc *d, const uint8_t *buf, size_t len,
			    const struct st_protobuf_span *m, uint32_t n,
			    const struct st_protobuf_type *type, const struct st_protobuf_opts *o);

#endif /* ST_PROTOBUF_H */
