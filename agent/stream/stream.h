/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee stream (docs/TEE.md): reassembled connections, not packets, from `shadowtap tee`
 * to `shadowtap receive`. Encoder and decoder only; neither does I/O.
 *
 * On the wire:
 *   preamble  "STTEE\n" MAJOR MINOR                         (8 bytes, not compressed)
 *   frames    u32le len, u32le crc32(payload), payload[len] (len <= ST_STREAM_FRAME_MAX)
 * The frames' payloads, concatenated, are one zlib stream (deflate), cut at Z_SYNC_FLUSH
 * points, so each frame decompresses on its own once the earlier ones did and ends on a
 * record boundary. Decompressed, records follow each other:
 *   u32le len (bytes after this field, >= 1), u8 type, body[len - 1]
 * The first record is HEADER; the last, END_STREAM (without it the stream was cut short).
 * Integers are little-endian; timestamps CLOCK_REALTIME ns.
 *
 * Decoder contract: every byte is checked (frame lengths and checksums, record sizes and
 * types, connection ids, per-direction offsets contiguous, nothing after a direction's end
 * or a connection's close), so whatever comes out is a consistent set of streams. The first
 * problem stops decoding with one message naming the stream offset; every event before it
 * has been delivered. Memory: one frame, one inflate window, one record and the open
 * connections (max_conns).
 */
#ifndef ST_STREAM_H
#define ST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reasm.h"
#include "segment.h"

#define ST_STREAM_MAGIC "STTEE\n"
#define ST_STREAM_MAGIC_LEN 6
#define ST_STREAM_PREAMBLE_LEN 8
#define ST_STREAM_MAJOR 1
#define ST_STREAM_MINOR 1 /* 1.1: MARK */
#define ST_STREAM_FRAME_HDR 8
#define ST_STREAM_FRAME_MAX (4u << 20)   /* compressed payload of one frame */
#define ST_STREAM_DATA_MAX (64u << 10)   /* stream bytes in one DATA record */
/* Missing bytes in one GAP record: a sender cuts longer gaps (a connection's whole past after
 * a reconnect, a long outage) into several records. A record over it is not a tee's: receive
 * ends that connection's outputs there (docs/TEE.md). */
#define ST_STREAM_GAP_MAX (1ull << 30)
#define ST_STREAM_HEADER_MAX (16u << 10) /* the HEADER record's text */
#define ST_STREAM_RECORD_MAX (ST_STREAM_DATA_MAX + 64)
#define ST_STREAM_MAX_CONNS_DEFAULT (256u << 10)
/* Over a link (tee --to, receive --listen), the receiver sends this one byte once it accepted
 * the tee (after TLS's handshake and its check of the tee's certificate); then the stream. */
#define ST_STREAM_LINK_OK 'K'

enum st_stream_rec {
	ST_SREC_HEADER = 1,     /* "key=value\n" lines (docs/TEE.md lists the keys) */
	ST_SREC_OPEN = 2,       /* u64 id, u64 ts, u32 flags, u8 family, u8 pad, u16 sport,
				* u16 dport, u16 pad, u8 src[16], u8 dst[16] (client -> server) */
	ST_SREC_DATA = 3,       /* u64 id, u64 ts, u64 off, u8 dir, bytes[] */
	ST_SREC_GAP = 4,        /* u64 id, u64 ts, u64 off, u64 len, u8 dir, u8 why */
	ST_SREC_END = 5,        /* u64 id, u64 ts, u8 dir, u8 why (enum st_reasm_end) */
	ST_SREC_CLOSE = 6,      /* u64 id, u64 ts, u8 why (enum st_reasm_end) */
	ST_SREC_END_STREAM = 7, /* u64 ts, u64 dropped_records, u64 dropped_bytes,
				* u64 dropped_conns, u64 held_conns */
	ST_SREC_MARK = 8,       /* u64 id, u64 ts, u64 off_in, u64 off_out (1.1): an exchange
				* boundary, below */
};

/* A gap's why: reassembly's reasons (enum st_reasm_gap_why), then the sender's own. */
enum st_stream_gap_why {
	ST_SGAP_DROPPED = 32, /* the sender dropped these bytes: its output was too slow */
	ST_SGAP_HELD = 33,    /* held back: could not be redacted (not HTTP, framing error) */
};

/* What END_STREAM says about the sender's losses. */
struct st_stream_trailer {
	uint64_t ts;
	uint64_t dropped_records; /* records the sender's output was too slow for */
	uint64_t dropped_bytes;   /* stream bytes of those */
	uint64_t dropped_conns;   /* connections left out whole */
	uint64_t held_conns;      /* connections held back: could not be redacted */
};

/* ---- encoder ------------------------------------------------------------------------ */

/* A finished frame (header included); the encoder reuses buf after the call returns. */
typedef int (*st_stream_emit_fn)(void *ctx, const uint8_t *frame, size_t len);

struct st_stream_enc;

/* Starts a stream: the preamble and the HEADER record (header: "key=value\n" lines) are
 * emitted at the first flush. level: zlib's 1..9 (0: 1, the cheapest). NULL with errno. */
struct st_stream_enc *st_stream_enc__new(const char *header, int level, st_stream_emit_fn emit,
					 void *ctx);
int st_stream_enc__open(struct st_stream_enc *e, const struct st_reasm_conn *c, uint64_t ts);
/* Splits len into DATA records of at most ST_STREAM_DATA_MAX bytes. */
int st_stream_enc__data(struct st_stream_enc *e, uint64_t id, int dir, uint64_t off,
			const uint8_t *data, uint32_t len, uint64_t ts);
/* A GAP record, whole (its length included): ST_STREAM_GAP_REC bytes at r. The encoder
 * writes its records with it; the Kafka reader its own gaps (what it did not get). */
#define ST_STREAM_GAP_REC 39
void st_stream_gap_rec(uint8_t *r, uint64_t id, int dir, uint64_t off, uint64_t len,
		       unsigned why, uint64_t ts);
/* Splits len into GAP records of at most ST_STREAM_GAP_MAX bytes. */
int st_stream_enc__gap(struct st_stream_enc *e, uint64_t id, int dir, uint64_t off, uint64_t len,
		       unsigned why, uint64_t ts);
int st_stream_enc__end(struct st_stream_enc *e, uint64_t id, int dir, unsigned why, uint64_t ts);
int st_stream_enc__close(struct st_stream_enc *e, uint64_t id, unsigned why, uint64_t ts);
/*
 * MARK: an exchange boundary, written by a sender that framed the connection as HTTP from
 * its first byte (a gap framing stepped over by length does not count against it): the
 * client's next byte, at off_in, starts a request, every request before it was answered
 * whole, and the server's next byte, at off_out, starts the answer to it. Both offsets are
 * the directions' next ones in the stream (the sender writes pending gaps first). A receiver
 * whose replay of the connection stopped (a gap, a connection joined midway) starts it again
 * there as a new connection: whole requests only, never a spliced one.
 */
int st_stream_enc__mark(struct st_stream_enc *e, uint64_t id, uint64_t off_in, uint64_t off_out,
			uint64_t ts);
/* END_STREAM, then a flush: the stream is complete. */
int st_stream_enc__finish(struct st_stream_enc *e, const struct st_stream_trailer *t);
/* Ends the current frame (Z_SYNC_FLUSH) and emits it, if it holds anything. The encoder
 * flushes by itself when a frame's compressed bytes pass 64 KiB. */
int st_stream_enc__flush(struct st_stream_enc *e);
/* Uncompressed record bytes since the last flush (what a flush would emit, at most). */
uint64_t st_stream_enc__pending(const struct st_stream_enc *e);
/* Uncompressed and compressed bytes so far (the compression ratio). */
void st_stream_enc__totals(const struct st_stream_enc *e, uint64_t *raw, uint64_t *wire);
void st_stream_enc__free(struct st_stream_enc *e);

/* Record mode (tee --kafka, docs/KAFKA.md): the same calls, but each record goes to
 * ops->record as it is encoded (its fixed part with the length and type first, then its
 * data bytes, uncompressed; no preamble, HEADER or frames), st_stream_enc__flush() calls
 * ops->flush and st_stream_enc__pending() answers ops->pending. */
struct st_stream_rec_ops {
	int (*record)(void *ctx, const uint8_t *fixed, size_t flen, const uint8_t *data,
		      size_t dlen);
	int (*flush)(void *ctx);
	uint64_t (*pending)(void *ctx);
};

struct st_stream_enc *st_stream_enc__new_records(const struct st_stream_rec_ops *ops, void *ctx);

/* ---- decoder ------------------------------------------------------------------------ */

/*
 * Events, in stream order, like reassembly's (reasm.h): a decoded connection is a
 * struct st_reasm_conn (key, id, open_ts, flags, bytes and gap_bytes kept up to date, user
 * free for the caller), valid from open to close. why of gap is enum st_reasm_gap_why or
 * enum st_stream_gap_why.
 */
struct st_stream_ops {
	struct st_reasm_ops conn;
	/* The HEADER record, text NUL-terminated; major, minor the preamble's. */
	void (*header)(void *ctx, const char *text, unsigned major, unsigned minor);
	/* END_STREAM: the stream is complete. */
	void (*finish)(void *ctx, const struct st_stream_trailer *t);
	/* MARK (st_stream_enc__mark()): both directions of c are at an exchange boundary, at
	 * their next offsets. */
	void (*mark)(void *ctx, struct st_reasm_conn *c, uint64_t ts);
};

struct st_stream_dec;

/* max_conns: connections open at once (0: default). NULL with errno. */
struct st_stream_dec *st_stream_dec__new(const struct st_stream_ops *ops, void *ctx,
					 size_t max_conns);
/* Decodes len more bytes. 0, or -1 at the first problem (st_stream_dec__error()); further
 * calls return -1 again. */
int st_stream_dec__feed(struct st_stream_dec *d, const void *buf, size_t len);
/* End of input. 0 when END_STREAM was decoded; else -1 (cut short) with the error set. */
int st_stream_dec__eof(struct st_stream_dec *d);
/* True once END_STREAM was decoded (bytes after it are an error). */
bool st_stream_dec__done(const struct st_stream_dec *d);
/* The error: one line naming the stream offset, or NULL. */
const char *st_stream_dec__error(const struct st_stream_dec *d);
/* Bytes of the stream consumed (decoded frames and the preamble). */
uint64_t st_stream_dec__offset(const struct st_stream_dec *d);
/* Calls the close callback (why ST_END_FLUSH) for every connection still open (after an
 * error or a cut: the consumers keep what arrived). */
void st_stream_dec__close_all(struct st_stream_dec *d, uint64_t ts);
void st_stream_dec__free(struct st_stream_dec *d);

/* Record mode (receive --kafka): a decoder fed whole records (no preamble, frames or
 * HEADER), with the same checks and events. st_stream_dec__feed_records() takes whole
 * records only: 0, or -1 with the error set (and the decoder failed, as with feed). */
struct st_stream_dec *st_stream_dec__new_records(const struct st_stream_ops *ops, void *ctx,
						 size_t max_conns);
int st_stream_dec__feed_records(struct st_stream_dec *d, const uint8_t *buf, size_t len);

/* The value of key in a HEADER text, into buf. true if found. */
bool st_stream_header_get(const char *text, const char *key, char *buf, size_t len);
const char *st_stream_gap_str(unsigned why);

#endif /* ST_STREAM_H */
