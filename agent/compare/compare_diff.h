/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare, one comparison: production's response against a shadow's, as a
 * list of differences, each a field path and a kind (docs/COMPARE.md has the
 * rules). Pure: no I/O, no threads, no globals; the worker (compare.c) calls it
 * with scratch memory it reuses, and the unit tests and the fuzzer call it
 * directly.
 *
 *  - status: path "status";
 *  - header fields: "headers.<name>" (names lower-cased, case-insensitive), a
 *    default set of volatile and hop-by-hop fields ignored (ST_CMP_IGNORED_HEADERS,
 *    Content-Length whenever a body is there to compare), Set-Cookie compared by
 *    cookie name only ("headers.set-cookie[NAME]"), secrets never shown;
 *  - bodies, decoded first (gzip, x-gzip, deflate; zlib, capped against bombs):
 *    JSON structurally (object key order ignored; arrays ordered unless the
 *    rules say otherwise), each difference at a path with array indexes and
 *    id-like keys collapsed ("$.items[*].price", "$.users.{id}.name") and a
 *    kind (value, type, missing, extra, array_length); gRPC bodies message by
 *    message, each decoded from its prefix and grpc-encoding (grpc.h) as protobuf
 *    (protobuf.h: "$.2[*].5" by field number, "$.items[*].price" by name with a
 *    schema) and walked as JSON is; text as a line-diff
 *    summary ("body", kind lines); anything else by length and hash ("body",
 *    kind bytes). Only the first max_body bytes are held and compared; the
 *    rest by its length and hash.
 */
#ifndef ST_COMPARE_DIFF_H
#define ST_COMPARE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

struct st_redact_rules;
struct st_protobuf_schema;

#define ST_CMP_PATH_MAX 200   /* a field path, bytes (longer ones end in "...") */
#define ST_CMP_VAL_MAX 120    /* a value shown in a difference, bytes (cut with "...") */
#define ST_CMP_NOTE_MAX 80
#define ST_CMP_DIFFS_MAX 128  /* distinct paths kept per comparison */
#define ST_CMP_CORR_PATHS 16  /* distinct paths of correlated differences kept per comparison */
#define ST_CMP_MAX_BODY_DEFAULT (1u << 20)

/* The header fields ignored unless asked otherwise (lower case). */
#define ST_CMP_IGNORED_HEADERS                                                             \
	"date", "server", "connection", "keep-alive", "transfer-encoding", "age", "expires", \
		"last-modified", "etag"

enum st_cmp_kind {
	ST_CMP_VALUE = 0,       /* same type, another value */
	ST_CMP_TYPE,            /* another JSON type (or JSON on one side only) */
	ST_CMP_MISSING,         /* production has it, the shadow does not */
	ST_CMP_EXTRA,           /* the shadow has it, production does not */
	ST_CMP_ARRAY_LENGTH,    /* arrays of another length (elements compared up to the shorter) */
	ST_CMP_LINES,           /* text bodies: lines differ */
	ST_CMP_BYTES,           /* other bodies: length or hash differ */
	ST_CMP_KIND__COUNT,
};

const char *st_cmp_kind_name(enum st_cmp_kind k);

struct st_cmp_diff {
	char path[ST_CMP_PATH_MAX + 4];
	uint8_t kind;          /* enum st_cmp_kind (of the first occurrence) */
	bool a_set, b_set;     /* the value exists on that side */
	bool vol;              /* both values look like timestamps or random ids */
	uint32_t count;        /* occurrences at this path in this comparison */
	char a[ST_CMP_VAL_MAX + 4]; /* production's value (display text) */
	char b[ST_CMP_VAL_MAX + 4]; /* the shadow's */
	char note[ST_CMP_NOTE_MAX];
};

/* Where the shadow's correlation list explained a difference, and how often in one comparison. */
struct st_cmp_corr_path {
	char path[ST_CMP_PATH_MAX + 4];
	uint32_t count;
};

struct st_cmp_diffs {
	uint32_t n;
	uint32_t correlated;   /* value differences the shadow's correlation list explains */
	uint32_t ncorr;        /* ... at these paths (the first ST_CMP_CORR_PATHS distinct ones) */
	struct st_cmp_corr_path corr_at[ST_CMP_CORR_PATHS];
	const char *corr;      /* that list (the shadow's st_cmp_msg.corr), during st_cmp_diff */
	uint32_t corr_len;
	uint64_t more;         /* differences at further paths, not kept */
	uint16_t slot[2 * ST_CMP_DIFFS_MAX]; /* path hash -> index + 1 */
	struct st_cmp_diff d[ST_CMP_DIFFS_MAX];
};

/* One response as the engine captured it. */
struct st_cmp_msg {
	uint16_t status;
	bool has_body;          /* a body follows the head (not HEAD, 1xx, 204, 304) */
	const char *hdrs;       /* nhdrs fields, each "name\0value\0" */
	uint32_t hdrs_len, nhdrs;
	const char *trls;       /* HTTP/2 trailers (gRPC's status is there), as hdrs; may be NULL */
	uint32_t trls_len, ntrls;
	const char *corr;       /* --correlate: pairs production value -> this side's value, each
				 * u16 length, u16 length, the two values (st_compare__pair_correlated) */
	uint32_t corr_len;
	const uint8_t *body;    /* the first body bytes held (chunked: decoded) */
	size_t body_len;
	uint64_t body_total;    /* the whole body's length */
	uint64_t rest_hash;     /* st_cmp_hash of the bytes after body_len */
	const char *path;       /* the request's target (a gRPC method's :path: with a schema, the
				 * type of its answer's messages); may be NULL */
	uint32_t path_len;
};

struct st_cmp_rules {
	const char *const *ignore_headers;   /* lower case */
	unsigned n_ignore_headers;
	bool no_default_ignores;             /* compare ST_CMP_IGNORED_HEADERS too */
	const char *const *ignore_fields;    /* normalised paths (st_cmp_path_normalize) */
	unsigned n_ignore_fields;
	bool unordered_all;                  /* every array compared as a multiset */
	const char *const *unordered;        /* these arrays (normalised paths) */
	unsigned n_unordered;
	size_t max_body;                     /* body prefix compared (decoded); 0: default */
	const struct st_redact_rules *redact; /* what the values shown hide (redact.h); NULL: the
					      * default set */
	uint64_t max_decoded;                /* decompression stops here; 0: 32 x max_body */
	const struct st_protobuf_schema *schema; /* --proto-descriptor: gRPC messages' fields by
						  * name; NULL: by number */
};

/* GRPC: application/grpc, length-prefixed messages (gRPC over HTTP/2); compared message by
 * message, each decoded as protobuf (protobuf.h) into the tree JSON bodies use. */
enum st_cmp_media { ST_CMP_M_NONE = 0, ST_CMP_M_JSON, ST_CMP_M_TEXT, ST_CMP_M_BINARY, ST_CMP_M_GRPC };

/* A response ready to compare: body decoded, media type known, JSON parsed. Owns its
 * buffers; load() reuses them. */
struct st_cmp_view {
	const struct st_cmp_msg *m;
	uint8_t media;                 /* enum st_cmp_media */
	const uint8_t *body;           /* the decoded (or raw) prefix */
	size_t len;
	uint64_t total;                /* the whole body's length (decoded when decoded whole) */
	uint64_t rest_hash;            /* past len */
	bool cut;                      /* total > len: the rest is known by length and hash */
	const char *coding;            /* Content-Encoding decoded ("gzip", "deflate"), or NULL */
	const char *coding_note;       /* why the body was not decoded, or NULL */
	bool json_tried, json_ok;      /* JSON, or gRPC's messages (json_ok: doc holds them) */
	uint32_t grpc_msgs;            /* gRPC: the messages doc holds (its root's elements) */
	const char *grpc_note;         /* gRPC: why its messages are compared as bytes, or NULL */
	struct st_json_doc doc;
	uint64_t *hashes;              /* node hashes (unordered arrays), when hashed */
	size_t hashes_cap;
	bool hashed;
	uint8_t *dec;                  /* decoding buffer */
	size_t dec_cap;
	uint8_t *msgs;                 /* gRPC: the messages, decoded, one after the other */
	size_t msgs_cap;
	struct st_protobuf_span *spans; /* ... where each is */
	size_t spans_cap;
};

/* Scratch memory one comparison uses (reused). */
struct st_cmp_scratch {
	uint32_t *idx;
	size_t idx_cap, idx_top;
	uint64_t *h;
	size_t h_cap;
};

void st_cmp_view_init(struct st_cmp_view *v);
void st_cmp_view_free(struct st_cmp_view *v);
/* Decodes and classifies m (kept by pointer: it must outlive the view's use). */
void st_cmp_view_load(struct st_cmp_view *v, const struct st_cmp_rules *r,
		      const struct st_cmp_msg *m);
size_t st_cmp_view_mem(const struct st_cmp_view *v);

void st_cmp_scratch_free(struct st_cmp_scratch *s);

/* out gets every difference of b against a (a = production). */
void st_cmp_diff(const struct st_cmp_rules *r, struct st_cmp_scratch *s,
		 const struct st_cmp_view *a, const struct st_cmp_view *b,
		 struct st_cmp_diffs *out);

/* The kept difference at path, or NULL. */
const struct st_cmp_diff *st_cmp_diffs_find(const struct st_cmp_diffs *d, const char *path);

/* A running hash of body bytes (crc32 and adler32 of zlib, 64 bits together). */
uint64_t st_cmp_hash_init(void);
uint64_t st_cmp_hash(uint64_t h, const void *p, size_t n);

/*
 * "$.items[3].id" -> "$.items[*].id", "$['a b']" -> "$[\"a b\"]": the form paths take in
 * differences, for --ignore-field and --unordered-arrays. A segment of digits stays as it is
 * (a protobuf field number, or a JSON key that is an id: st_cmp_path_match takes it for
 * either); other id-like keys become {id}. "$..name" (any member called name, anywhere) is
 * kept as is. 0, or -1 when s is not such a path.
 */
int st_cmp_path_normalize(const char *s, char *out, size_t outlen);
/* A normalised path (not "$..name") names the difference path p: the same segments, but
 * that a segment of digits matches that field number or an id ("$.users.42" matches
 * "$.users.{id}", "$.2.5" matches "$.2.5"). */
bool st_cmp_path_match(const char *pattern, const char *p);

/* A path segment or value that is an id: digits, a UUID, 16+ hex digits. */
bool st_cmp_looks_id(const char *s, size_t n);
/* A value that looks like a timestamp or a random id (display text, quotes allowed). */
bool st_cmp_looks_volatile(const char *s, size_t n);

#endif /* ST_COMPARE_DIFF_H */
