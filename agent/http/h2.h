/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * HTTP/2 framing of one captured connection (RFC 9113), both directions, for
 * the engines that follow a connection they only watch: the shadow engine's
 * arbiter, tap compare, receive --print. docs/HTTP2.md has the design.
 *
 * One struct st_h2 per connection. The caller feeds each direction's bytes as
 * reassembly hands them over (in order, exact gaps: reasm.h), in the order
 * they were captured; the framer hands out events, one per call, in the style
 * of http.h:
 *
 *	for (;;) {
 *		size_t n = st_h2__feed(c, dir, buf, len, &ev);
 *		... handle ev ...
 *		buf += n, len -= n;
 *		if (ev.type == ST_H2_EV_NEED_MORE)
 *			break;      // len is 0 now
 *	}
 *
 * Several events may come out of one frame (HEAD then END): they are queued and
 * returned by the next calls, which consume nothing (n == 0). A call with len 0
 * returns what is queued (after st_h2__gap(), st_h2__eof()).
 *
 * Streams are interleaved on the wire: every event but STOP carries its stream
 * id (GOAWAY: 0), and the consumer keeps its own per-stream state in a table
 * keyed by it (the framer's table is private). What a consumer sees of a
 * stream, in order for each direction:
 *   - client: HEAD (the request), DATA..., then TRAILERS and/or END;
 *   - server: HEAD with ST_H2_HF_INTERIM (1xx) any number of times, HEAD (the
 *     final response), DATA..., then TRAILERS and/or END;
 *   - RESET (either side) ends both directions; DROP (the framer gave up on
 *     the stream: a bound) too; nothing more comes for that id.
 * The two directions of a stream are not ordered against each other: a
 * capture does not order them exactly (a reassembly hole delays one side), so
 * a response head may come before its request head. A stream is over when
 * both sides ended, or at RESET or DROP. After a GOAWAY from the server,
 * streams above its last stream id get no event each: the GOAWAY says which.
 * Server push: PUSH_PROMISE and pushed streams are decoded (HPACK state) and
 * counted, never handed out: a pushed response is no request's.
 *
 * The connection cannot always be decoded: joined midway (its HPACK tables are
 * lost: never guessed at), a gap in either direction (the same), a connection
 * error (RFC 9113 5.4.1: its name, st_h2_errname()), a bound that stops a
 * connection (below). The framer then says so once (STOP, with the reason)
 * and takes every later byte without looking (counted in ignored_bytes).
 * Stream errors (RFC 9113 5.4.2) end only what they touch: the frame is
 * skipped (stream_errors), and the peer's RST_STREAM follows on the wire.
 * Flow control is not followed: it needs the exact order of both directions,
 * which a capture does not give; the peers enforce it, and what they do about
 * a violation (RST_STREAM, GOAWAY) is seen.
 *
 * Bounds (struct st_h2_opts; each counted in st_h2_stats when hit):
 *   - max_header_list: decoded size of one header block (RFC 9113 6.5.2:
 *     name + value + 32 per field). Over it the block is still decoded (the
 *     HPACK table must follow) but not kept: the stream is dropped (DROP).
 *     An HPACK bomb (one small indexed entry repeated) costs the framer
 *     nothing more than this. Default 256 KiB.
 *   - max_block: compressed bytes of one header block (HEADERS or
 *     PUSH_PROMISE and its CONTINUATIONs); max_continuation: CONTINUATION
 *     frames in one block. Either stops the connection (a CONTINUATION flood
 *     never ends its block). Defaults 256 KiB, 64.
 *   - max_streams: streams open at once; a stream over it is decoded (HPACK)
 *     and dropped whole (DROP), never tracked. Default 1024.
 *   - max_streams_total: streams over the connection's life; stops it. 0 (the
 *     default): no bound but the stream id space.
 *   - max_early_resets: RST_STREAM from the client on streams production had
 *     not answered, beyond one per answered stream; stops the connection (a
 *     rapid-reset storm, CVE-2023-44487). Default 1000.
 *   - max_table: the HPACK dynamic table followed per direction; a peer that
 *     announces a larger SETTINGS_HEADER_TABLE_SIZE is followed up to it, and
 *     an encoder that goes further stops the connection. Default 64 KiB.
 *   - SETTINGS frames not yet acknowledged: ST_H2_SETTINGS_PENDING_MAX per
 *     direction; more stops the connection.
 * Memory per connection: the two HPACK tables (max_table each), one decoded
 * header block per direction (max_header_list), the stream table (8 bytes a
 * slot, a quarter of them free; max_streams); DATA is never copied (DATA
 * events point into the fed buffer) and compressed header bytes are never
 * buffered (HPACK is decoded as the bytes come). CPU is linear in the bytes fed.
 *
 * HPACK is libnghttp2's (nghttp2_hd_inflate_*), one inflater per direction.
 * A SETTINGS_HEADER_TABLE_SIZE applies to the other direction's inflater from
 * the other side's SETTINGS ACK, which is where that encoder starts using it.
 * SETTINGS_MAX_FRAME_SIZE: a frame may be as large as any value its receiver
 * announced whose ACK is due or seen (a receiver accepts the new size from
 * when it sent it, the old one until the ACK).
 *
 * Detection: st_h2_detect() for the client connection preface (h2c with prior
 * knowledge, or ALPN h2 behind --tls); an HTTP/1.1 connection upgraded by
 * "Upgrade: h2c" and a 101 is handed over with st_h2__upgrade().
 *
 * No I/O, no threads, no globals: one connection is used by one thread.
 */
#ifndef ST_H2_H
#define ST_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define ST_H2_MAX_HEADER_LIST_DEFAULT (256u * 1024)
#define ST_H2_MAX_BLOCK_DEFAULT (256u * 1024)
#define ST_H2_MAX_CONTINUATION_DEFAULT 64u
#define ST_H2_MAX_STREAMS_DEFAULT 1024u
#define ST_H2_MAX_EARLY_RESETS_DEFAULT 1000u
#define ST_H2_MAX_TABLE_DEFAULT (64u * 1024)
#define ST_H2_SETTINGS_PENDING_MAX 16u

#define ST_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define ST_H2_PREFACE_LEN 24u

/* Directions, as reassembly numbers them (reasm.h: ST_DIR_IN, ST_DIR_OUT). */
#define ST_H2_CLIENT 0
#define ST_H2_SERVER 1

/* RFC 9113 7: error codes. */
enum st_h2_error {
	ST_H2_NO_ERROR = 0x0,
	ST_H2_PROTOCOL_ERROR = 0x1,
	ST_H2_INTERNAL_ERROR = 0x2,
	ST_H2_FLOW_CONTROL_ERROR = 0x3,
	ST_H2_SETTINGS_TIMEOUT = 0x4,
	ST_H2_STREAM_CLOSED = 0x5,
	ST_H2_FRAME_SIZE_ERROR = 0x6,
	ST_H2_REFUSED_STREAM = 0x7,
	ST_H2_CANCEL = 0x8,
	ST_H2_COMPRESSION_ERROR = 0x9,
	ST_H2_CONNECT_ERROR = 0xa,
	ST_H2_ENHANCE_YOUR_CALM = 0xb,
	ST_H2_INADEQUATE_SECURITY = 0xc,
	ST_H2_HTTP_1_1_REQUIRED = 0xd,
};

enum st_h2_ev {
	ST_H2_EV_NEED_MORE = 0, /* all input consumed, nothing to report */
	ST_H2_EV_HEAD,          /* a header block that starts a message: ev.head */
	ST_H2_EV_TRAILERS,      /* a header block that ends one: ev.head (END follows) */
	ST_H2_EV_DATA,          /* ev.data[0, ev.data_len): body bytes (padding removed) */
	ST_H2_EV_END,           /* END_STREAM from ev.dir */
	ST_H2_EV_RESET,         /* RST_STREAM from ev.dir, ev.error_code */
	ST_H2_EV_DROP,          /* the framer dropped the stream: ev.limit */
	ST_H2_EV_GOAWAY,        /* GOAWAY from ev.dir: ev.last_stream, ev.error_code */
	ST_H2_EV_STOP,          /* the connection can no longer be decoded: ev.stop */
};

enum st_h2_stop {
	ST_H2_STOP_NONE = 0,
	ST_H2_STOP_JOINED,      /* joined midway: no client connection preface (or said so) */
	ST_H2_STOP_GAP,         /* bytes of a direction were lost (st_h2__gap) */
	ST_H2_STOP_PROTOCOL,    /* a connection error: ev.error_code, ev.detail */
	ST_H2_STOP_LIMIT,       /* a bound: ev.limit */
	ST_H2_STOP_TRUNCATED,   /* a direction ended inside a frame or a header block */
	ST_H2_STOP_NOMEM,
	ST_H2_STOP__COUNT,
};

enum st_h2_limit {
	ST_H2_LIMIT_NONE = 0,
	ST_H2_LIMIT_HEADER_LIST,  /* DROP */
	ST_H2_LIMIT_STREAMS,      /* DROP */
	ST_H2_LIMIT_BLOCK,        /* STOP */
	ST_H2_LIMIT_CONTINUATION, /* STOP */
	ST_H2_LIMIT_STREAMS_TOTAL, /* STOP */
	ST_H2_LIMIT_EARLY_RESETS, /* STOP */
	ST_H2_LIMIT_TABLE,        /* STOP */
	ST_H2_LIMIT_SETTINGS,     /* STOP */
	ST_H2_LIMIT__COUNT,
};

/* st_h2_field.flags */
#define ST_H2_FF_NEVER_INDEX (1u << 0) /* sent as never-indexed literal (a secret, as a rule) */

struct st_h2_field {
	const char *name;       /* as decoded (HTTP/2 field names are lower case) */
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
	uint32_t flags;         /* ST_H2_FF_* */
};

/* st_h2_head.flags */
#define ST_H2_HF_END_STREAM (1u << 0)  /* the block's HEADERS carried END_STREAM (END follows) */
#define ST_H2_HF_INTERIM    (1u << 1)  /* a 1xx response head: the final one comes later */
#define ST_H2_HF_MALFORMED  (1u << 2)  /* RFC 9113 8.1.1/8.3: the peer refuses it (never replay) */
#define ST_H2_HF_UPGRADE    (1u << 3)  /* stream 1's request, from the HTTP/1.1 upgrade request */
#define ST_H2_HF_HTTP1_BODY (1u << 4)  /* ... whose body the HTTP/1 framer handed out */
#define ST_H2_HF_CONTENT_LENGTH (1u << 5) /* a valid content-length: content_length */

struct st_h2_head {
	uint32_t nfields;
	const struct st_h2_field *fields; /* in the order decoded (pseudo-header fields first,
					   * unless ST_H2_HF_MALFORMED) */
	/* requests: the pseudo-header fields (NULL when absent) */
	const struct st_h2_field *method, *scheme, *authority, *path, *protocol;
	uint16_t status;        /* responses: :status (0 when absent or not 3 digits) */
	uint32_t flags;         /* ST_H2_HF_* */
	uint32_t list_size;     /* RFC 9113 6.5.2 size */
	uint64_t content_length;
};

struct st_h2_event {
	enum st_h2_ev type;
	uint8_t dir;            /* who sent it: ST_H2_CLIENT or ST_H2_SERVER */
	uint8_t stop;           /* STOP: enum st_h2_stop */
	uint8_t limit;          /* DROP, STOP (LIMIT): enum st_h2_limit */
	uint32_t stream;        /* every event but STOP (GOAWAY: 0) */
	const struct st_h2_head *head; /* HEAD, TRAILERS: valid until the next call */
	const uint8_t *data;    /* DATA: inside the buffer of this call's consumed span; NULL:
				 * data_len bytes st_h2__skip() stepped over */
	size_t data_len;
	uint32_t error_code;    /* RESET, GOAWAY, STOP (PROTOCOL) */
	uint32_t last_stream;   /* GOAWAY */
	const char *detail;     /* STOP: what was seen (static text) */
};

struct st_h2_opts {
	uint32_t max_header_list;   /* 0: default; see the bounds above */
	uint32_t max_block;
	uint32_t max_continuation;
	uint32_t max_streams;
	uint64_t max_streams_total; /* 0: no bound */
	uint32_t max_early_resets;
	uint32_t max_table;         /* at least 4096 (HPACK's initial size) */
};

struct st_h2_stats {
	uint64_t bytes[2];          /* fed, per direction */
	uint64_t frames[2];         /* complete frames, per direction */
	uint64_t data_bytes[2];     /* DATA payload handed out (padding excluded) */
	uint64_t padding_bytes;     /* padding (and pad length octets) of DATA, HEADERS, PUSH_PROMISE */
	uint64_t header_blocks;     /* decoded, both directions, pushes included */
	uint64_t continuations;
	uint64_t streams;           /* opened (tracked or not) */
	uint64_t streams_peak;      /* most tracked at once */
	uint64_t resets[2];         /* RST_STREAM frames, by sender */
	uint64_t early_resets;      /* client resets before production's final head */
	uint64_t refused;           /* client streams above the server's GOAWAY last stream id */
	uint64_t push_promises;
	uint64_t pushed_frames;     /* frames on server-initiated streams (not handed out) */
	uint64_t settings[2];       /* SETTINGS frames (not ACKs), by sender */
	uint64_t settings_acks[2];
	uint64_t pings;
	uint64_t window_updates;
	uint64_t priorities;        /* PRIORITY frames */
	uint64_t goaways;
	uint64_t unknown_frames;    /* extension frame types, skipped */
	uint64_t stream_errors;     /* frames skipped as RFC 9113 stream errors */
	uint64_t closed_frames;     /* frames on streams already over (races with RST_STREAM) */
	uint64_t table_changes;     /* SETTINGS_HEADER_TABLE_SIZE applied to an inflater */
	uint64_t ignored_bytes;     /* taken without looking after STOP */
	uint64_t skipped_bytes;     /* not copied, stepped over (st_h2__skip) */
	uint64_t limits[ST_H2_LIMIT__COUNT]; /* each bound hit (streams or connections) */
};

struct st_h2;

/* NULL with errno on failure. opts may be NULL (defaults); it is copied. */
struct st_h2 *st_h2__new(const struct st_h2_opts *opts);
/* Safe on NULL. */
void st_h2__free(struct st_h2 *c);

/* Returns bytes consumed from buf (<= len); *ev says what happened. */
size_t st_h2__feed(struct st_h2 *c, int dir, const void *buf, size_t len, struct st_h2_event *ev);
/* Bytes of dir were lost (a reassembly gap), or the capture joined the connection midway
 * (reasm's ST_REASM_F_JOINED: why ST_H2_STOP_JOINED): the connection stops; the STOP event
 * comes from the next feed (len 0 will do). Nothing happens when it already stopped. */
void st_h2__stop(struct st_h2 *c, enum st_h2_stop why);
/*
 * len bytes of dir were not copied (the headers-only policy elided them: reasm.h's
 * ST_GAP_ELIDED) where the framer would take them without looking: inside the current frame's
 * DATA content or padding, or a PING, PRIORITY, GOAWAY debug data or unknown frame. The framer
 * steps over them: DATA content is handed out as a DATA event with data NULL (its count only,
 * data_len), and the frame's end as usual (END at END_STREAM); the next feed (len 0 will do)
 * returns them. 0; -ENOENT when the bytes are not all such (a frame header, a header block, a
 * SETTINGS: nothing is consumed, and the caller stops the connection with st_h2__stop(GAP));
 * -EBUSY when events are still queued (call after a feed returned NEED_MORE). On a stopped
 * connection the bytes are ignored (0).
 */
int st_h2__skip(struct st_h2 *c, int dir, uint64_t len);
/* Direction dir ended (FIN, RST): STOP (TRUNCATED) is queued when it ended inside a frame or
 * a header block, else nothing. */
void st_h2__eof(struct st_h2 *c, int dir);
/* The connection stopped (STOP handed out or queued). */
bool st_h2__stopped(const struct st_h2 *c);
void st_h2__stats(const struct st_h2 *c, struct st_h2_stats *out);
/* Memory the connection holds now (its own, and the HPACK tables' dynamic size). */
size_t st_h2__mem(const struct st_h2 *c);

enum st_h2_detect {
	ST_H2_DETECT_NO = 0,    /* not the preface */
	ST_H2_DETECT_MAYBE,     /* all of buf matches the preface's start: need more */
	ST_H2_DETECT_YES,       /* buf starts with the whole preface */
};
enum st_h2_detect st_h2_detect(const void *buf, size_t len);

/* An HTTP/1.1 request asks to upgrade to h2c: an Upgrade token "h2c" and exactly one
 * HTTP2-Settings field. */
bool st_h2_upgrade_requested(const struct st_http_head *req);
/* An HTTP/1.1 response accepts it: 101 with an Upgrade token "h2c". */
bool st_h2_upgrade_accepted(const struct st_http_head *resp);
/*
 * Hands over a connection upgraded to h2c: req is the upgrading request, accepted by a 101
 * (st_h2_upgrade_accepted). Call on a new framer, before any byte is fed; then feed each
 * direction's bytes after the HTTP/1 messages (http.c's RAW after UPGRADED): the client's
 * start with the connection preface, the server's with its SETTINGS. The request becomes
 * stream 1, half-closed by the client; its HTTP2-Settings apply as the client's SETTINGS,
 * acknowledged. The next feed returns stream 1's HEAD (pseudo-header fields made from the
 * request line and Host; hop-by-hop fields left out; ST_H2_HF_UPGRADE, and
 * ST_H2_HF_HTTP1_BODY when the request had a body) and END. 0, -EINVAL (not an h2c
 * upgrade, HTTP2-Settings not base64url SETTINGS, bytes already fed), -ENOMEM.
 */
int st_h2__upgrade(struct st_h2 *c, const struct st_http_head *req);

/* The RFC 9113 name of an error code ("PROTOCOL_ERROR"), or "unknown". */
const char *st_h2_errname(uint32_t code);
const char *st_h2_stop_str(enum st_h2_stop why);
const char *st_h2_limit_str(enum st_h2_limit l);
/* The first field named name (lower case, exact) in h at or after from, or -1. */
int st_h2_head_find(const struct st_h2_head *h, const char *name, uint32_t from);

#endif /* ST_H2_H */
