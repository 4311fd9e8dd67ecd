/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gRPC over HTTP/2, as a captured stream carries it (gRPC's PROTOCOL-HTTP2.md): the
 * length-prefixed messages in one direction of a stream's DATA, and the call's status.
 * docs/HTTP2.md has the design.
 *
 * A reader per stream direction takes the bytes of h2.h's DATA events as they come (a message
 * may be split anywhere, several may share a DATA frame) and hands out whole messages, one
 * event per call, in the style of http.h and h2.h:
 *
 *	for (;;) {
 *		size_t n = st_grpc_feed(r, buf, len, &ev);
 *		... MSG: ev.data[0, ev.len), ERROR: ev.err ...
 *		buf += n, len -= n;
 *		if (ev.type == ST_GRPC_EV_NEED_MORE)
 *			break;
 *	}
 *
 * A message is the 5-byte prefix (compressed flag, big-endian length) and its bytes. A
 * compressed one (flag 1) is decoded with the coding its side's "grpc-encoding" field names
 * (st_grpc_set_coding: gzip, deflate through zlib), under max_decoded: a decompression bomb
 * stops there. A message whose bytes come whole in one call is handed out in place, else it
 * is gathered (up to max_msg).
 *
 * Errors: a message that cannot be handed out (over max_msg, compressed with no coding or an
 * unknown one, bytes that do not decode, a bomb) is an ERROR event and is skipped by its
 * length: the next message is framed as usual. A flag byte other than 0 and 1 leaves nothing
 * to frame by (gRPC implementations refuse it): an ERROR (ST_GRPC_E_FLAG), then every later
 * byte is taken without a look. st_grpc_end() at END_STREAM says whether the stream ended
 * inside a message.
 *
 * Memory: the gathering buffer (max_msg) and the decoding buffer (twice max_decoded at
 * most: it doubles as it fills), both kept for the next message. No I/O, no threads, no globals.
 */
#ifndef ST_GRPC_H
#define ST_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2.h"

#define ST_GRPC_MAX_MSG_DEFAULT (4u << 20) /* gRPC's own default receive limit */
#define ST_GRPC_PREFIX 5u

enum st_grpc_coding {
	ST_GRPC_IDENTITY = 0,   /* no grpc-encoding, or "identity" */
	ST_GRPC_GZIP,
	ST_GRPC_DEFLATE,        /* zlib-wrapped as the RFC says; raw deflate taken too */
	ST_GRPC_OTHER,          /* snappy, zstd, ...: compressed messages are not decoded */
};

enum st_grpc_ev {
	ST_GRPC_EV_NEED_MORE = 0,
	ST_GRPC_EV_MSG,         /* ev.data[0, ev.len): a whole message, decoded */
	ST_GRPC_EV_ERROR,       /* ev.err: the message ev.index was not handed out */
};

enum st_grpc_err {
	ST_GRPC_E_NONE = 0,
	ST_GRPC_E_FLAG,         /* a flag byte other than 0 or 1: nothing more is framed */
	ST_GRPC_E_TOO_LARGE,    /* longer than max_msg (skipped) */
	ST_GRPC_E_CODING,       /* compressed, with no coding or one not decoded here (skipped) */
	ST_GRPC_E_INFLATE,      /* does not decode as its coding says (skipped) */
	ST_GRPC_E_BOMB,         /* decodes past max_decoded (skipped) */
	ST_GRPC_E_TRUNCATED,    /* st_grpc_end(): the stream ended inside a message */
	ST_GRPC_E_NOMEM,        /* (skipped) */
	ST_GRPC_E__COUNT,
};

struct st_grpc_event {
	enum st_grpc_ev type;
	enum st_grpc_err err;   /* ERROR */
	const uint8_t *data;    /* MSG: valid until the next call */
	size_t len;
	uint32_t wire_len;      /* MSG, ERROR: the length its prefix gave */
	bool compressed;        /* its flag said so */
	uint64_t index;         /* the message's number in this direction (0, 1, ...) */
};

struct st_grpc_reader {
	uint32_t max_msg;
	uint64_t max_decoded;
	uint8_t coding;         /* enum st_grpc_coding */
	uint8_t state;
	uint8_t hfill;
	uint8_t hdr[ST_GRPC_PREFIX];
	bool dead;              /* a bad flag byte: nothing more is framed */
	bool skip;              /* the current message's bytes are skipped (reported already) */
	uint32_t want;          /* the current message's length */
	uint32_t got;           /* its bytes consumed */
	uint64_t index;
	uint8_t *buf;           /* gathered message bytes */
	size_t buf_cap;
	uint8_t *dec;           /* decoded message bytes */
	size_t dec_cap;
	uint64_t msgs, errors, bytes, skipped_bytes;
};

/* max_msg 0: ST_GRPC_MAX_MSG_DEFAULT; max_decoded 0: max_msg. */
void st_grpc_init(struct st_grpc_reader *r, uint32_t max_msg, uint64_t max_decoded);
void st_grpc_free(struct st_grpc_reader *r);
/* The coding of this direction's compressed messages (its head's grpc-encoding). */
void st_grpc_set_coding(struct st_grpc_reader *r, enum st_grpc_coding c);
size_t st_grpc_feed(struct st_grpc_reader *r, const void *buf, size_t len,
		    struct st_grpc_event *ev);
/* The stream direction ended (END_STREAM): ERROR (TRUNCATED) when inside a message not
 * reported already, else NEED_MORE. */
void st_grpc_end(struct st_grpc_reader *r, struct st_grpc_event *ev);
/* Memory the reader holds now. */
size_t st_grpc_mem(const struct st_grpc_reader *r);

/* A grpc-encoding value (case-insensitive, spaces around ignored). */
enum st_grpc_coding st_grpc_coding_of(const char *v, size_t n);
const char *st_grpc_strerror(enum st_grpc_err e);

/* A head whose content-type is application/grpc, alone or followed by '+' or ';'. */
bool st_grpc_is_grpc(const struct st_h2_head *h);

/* A call's status, from the trailers or a trailers-only response (a HEAD with END_STREAM). */
struct st_grpc_status {
	bool present;           /* grpc-status was there */
	bool valid;             /* ... a decimal number (else code is -1) */
	bool trailers_only;     /* it came in the response's one and only header block */
	bool message_cut;       /* grpc-message did not fit the caller's buffer */
	int32_t code;
	char *message;          /* grpc-message percent-decoded, NUL-terminated (the caller's buffer) */
	size_t message_len;
};

/*
 * Reads the status of h (trailers, or a response head) into out; grpc-message is decoded into
 * buf (cap bytes, cap >= 1; a message is never longer decoded than sent). Percent-encoding that
 * is not "%XX" is kept as sent, as the gRPC spec asks. Returns out->present.
 */
bool st_grpc_read_status(const struct st_h2_head *h, char *buf, size_t cap,
			 struct st_grpc_status *out);
/* "OK", "CANCELLED", ... "UNAUTHENTICATED" for 0..16, else "UNKNOWN_CODE". */
const char *st_grpc_code_name(int32_t code);

#endif /* ST_GRPC_H */
