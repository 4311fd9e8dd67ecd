/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Incremental HTTP/1.x framing over one direction of a TCP byte stream.
 *
 * The framer never holds a body: it finds message boundaries and tells the
 * caller which wire bytes belong to which message, so the caller can forward
 * them unchanged and in order. Only the head (start line + header fields) is
 * buffered, up to a cap, so that it can be parsed and handed out whole.
 * docs/HTTP.md has the framing rules.
 *
 * Driving it, for each piece of the stream:
 *
 *	for (;;) {
 *		size_t n = st_http__feed(p, buf, len, &ev);
 *		... handle ev (buf[0, n) are the bytes it covers) ...
 *		buf += n, len -= n;
 *		if (ev.type == ST_HTTP_EV_NEED_MORE)
 *			break;      // len is 0 now
 *	}
 *
 * MSG_DONE and UPGRADED consume no bytes, so a loop on len alone would miss
 * the MSG_DONE of a message that ends at the end of the piece. After an
 * ERROR, call st_http__resync() (or reset) before feeding on.
 *
 * Every call returns at most one event and consumes buf[0, return value).
 * Which bytes a caller forwards:
 *   - HEAD: the whole head, ev.head->raw[0, ev.head->raw_len) (or a rewritten
 *     copy of it, st_http_rewrite_head()). It may have been consumed over
 *     several calls (those returned NEED_MORE); those bytes are *not* to be
 *     forwarded separately.
 *   - BODY: the consumed span, buf[0, n), exactly as on the wire.
 *   - RAW (after UPGRADED): the consumed span.
 *   - SKIP: nothing (resynchronisation discarded ev.skip_len bytes).
 * Byte accounting, at any moment:
 *   consumed = sum(MSG_DONE.msg_len) + sum(ERROR.lost_len) + sum(SKIP.skip_len)
 *            + sum(RAW bytes) + st_http__pending(p) + bytes of the message in progress
 *                                                   already handed out (HEAD + BODY)
 *
 * Threading: a parser is used by one thread; there are no globals.
 */
#ifndef ST_HTTP_H
#define ST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ST_HTTP_HEAD_CAP_DEFAULT   (64u * 1024)
#define ST_HTTP_MAX_HEADERS_DEFAULT 4096u /* more than any common server's limit fits in 64 KiB */
#define ST_HTTP_METHOD_QUEUE       64u   /* requests awaiting a response, per parser */
#define ST_HTTP_CHUNK_LINE_MAX     4096u /* chunk-size line incl. extensions */

enum st_http_kind {
	ST_HTTP_REQUEST = 0,
	ST_HTTP_RESPONSE = 1,
};

enum st_http_method {
	ST_HTTP_M_OTHER = 0,
	ST_HTTP_M_GET,
	ST_HTTP_M_HEAD,
	ST_HTTP_M_POST,
	ST_HTTP_M_PUT,
	ST_HTTP_M_DELETE,
	ST_HTTP_M_CONNECT,
	ST_HTTP_M_OPTIONS,
	ST_HTTP_M_TRACE,
	ST_HTTP_M_PATCH,
	ST_HTTP_M__COUNT,
};

enum st_http_ev {
	ST_HTTP_EV_NEED_MORE = 0, /* all input consumed (maybe buffered), nothing to report */
	ST_HTTP_EV_HEAD,          /* head complete: ev.head */
	ST_HTTP_EV_BODY,          /* consumed bytes are body wire bytes */
	ST_HTTP_EV_MSG_DONE,      /* message complete (consumes nothing) */
	ST_HTTP_EV_UPGRADED,      /* after MSG_DONE: stream is raw from here (consumes nothing) */
	ST_HTTP_EV_RAW,           /* consumed bytes are raw (post-upgrade) bytes */
	ST_HTTP_EV_SKIP,          /* resync discarded ev.skip_len bytes */
	ST_HTTP_EV_ERROR,         /* ev.err; the parser stays in error until resync/reset */
};

enum st_http_err {
	ST_HTTP_E_NONE = 0,
	ST_HTTP_E_START_LINE,     /* malformed request or status line */
	ST_HTTP_E_VERSION,        /* not HTTP/1.x */
	ST_HTTP_E_HEADER,         /* bad field name/value, whitespace before ':' */
	ST_HTTP_E_OBS_FOLD,       /* line folding (obsolete, rejected) */
	ST_HTTP_E_BARE_CR,        /* CR not followed by LF */
	ST_HTTP_E_HEAD_TOO_LARGE, /* head exceeds head_cap */
	ST_HTTP_E_TOO_MANY_HEADERS,
	ST_HTTP_E_CONTENT_LENGTH, /* invalid or conflicting Content-Length */
	ST_HTTP_E_TRANSFER_ENCODING, /* request TE other than exactly one "chunked", or in 1.0 */
	ST_HTTP_E_CL_AND_TE,      /* request with both Content-Length and Transfer-Encoding */
	ST_HTTP_E_BARE_LF,        /* request: a line ended in LF without CR */
	ST_HTTP_E_CHUNK,          /* bad chunk size line or missing CRLF after chunk data */
	ST_HTTP_E_TRAILER,        /* bad or oversized trailer section */
	ST_HTTP_E_TRUNCATED,      /* end of stream inside a message */
	ST_HTTP_E_NOMEM,
	ST_HTTP_E_INTERNAL,
	ST_HTTP_E__COUNT,
};

enum st_http_body {
	ST_HTTP_BODY_NONE = 0,
	ST_HTTP_BODY_LENGTH,      /* Content-Length */
	ST_HTTP_BODY_CHUNKED,
	ST_HTTP_BODY_UNTIL_CLOSE, /* responses only: ends at st_http__feed_eof() */
};

/* st_http_head.flags */
#define ST_HTTP_HF_CONTENT_LENGTH  (1u << 0)  /* a valid Content-Length was present */
#define ST_HTTP_HF_TE              (1u << 1)  /* Transfer-Encoding present */
#define ST_HTTP_HF_CHUNKED         (1u << 2)  /* body is chunked */
#define ST_HTTP_HF_CL_AND_TE       (1u << 3)  /* both: chunked won, connection must close */
#define ST_HTTP_HF_EXPECT_CONTINUE (1u << 4)  /* Expect: 100-continue */
#define ST_HTTP_HF_CONN_CLOSE      (1u << 5)  /* Connection: close */
#define ST_HTTP_HF_CONN_KEEP_ALIVE (1u << 6)  /* Connection: keep-alive */
#define ST_HTTP_HF_CONN_UPGRADE    (1u << 7)  /* Connection: upgrade */
#define ST_HTTP_HF_UPGRADE_HDR     (1u << 8)  /* Upgrade header present */
#define ST_HTTP_HF_UPGRADE         (1u << 9)  /* stream goes raw after this message */
#define ST_HTTP_HF_KEEP_ALIVE      (1u << 10) /* connection persists after this message */
#define ST_HTTP_HF_BARE_LF         (1u << 11) /* some head line ended in LF without CR */
#define ST_HTTP_HF_INTERIM         (1u << 12) /* 1xx other than 101 */
#define ST_HTTP_HF_NO_REQUEST      (1u << 13) /* response with an empty method queue */

struct st_http_header {
	const char *name;
	const char *value;         /* leading/trailing whitespace trimmed */
	uint32_t name_len;
	uint32_t value_len;
};

struct st_http_head {
	const char *raw;           /* the head's wire bytes, incl. final empty line */
	uint32_t raw_len;
	uint32_t line_off;         /* start line offset in raw (after ignored empty lines) */
	uint8_t version_major;     /* always 1 */
	uint8_t version_minor;
	uint16_t status;           /* responses */
	enum st_http_method method; /* requests: parsed method; responses: the request's */
	const char *method_str;    /* requests */
	uint32_t method_len;
	uint32_t target_len;
	const char *target;        /* requests: request-target as sent */
	const char *reason;        /* responses */
	uint32_t reason_len;
	uint32_t nheaders;
	struct st_http_header *headers;
	uint32_t flags;            /* ST_HTTP_HF_* */
	enum st_http_body body;
	uint64_t content_length;   /* when body == ST_HTTP_BODY_LENGTH */
};

struct st_http_event {
	enum st_http_ev type;
	enum st_http_err err;      /* ERROR */
	/*
	 * HEAD, BODY, MSG_DONE: the message's head. Valid until the first
	 * st_http__feed() call after MSG_DONE (or resync/reset/free).
	 */
	const struct st_http_head *head;
	uint64_t data_len;         /* BODY: 0 for framing bytes (chunk lines, CRLF, trailers),
				    * else == bytes consumed (all payload) */
	uint64_t trailer_len;      /* BODY, framing bytes: how many of the last ones consumed belong
				    * to the trailer section (header fields, and its final empty
				    * line), which redaction treats as a head's (redact.h) */
	uint64_t msg_len;          /* MSG_DONE: wire bytes of the message (head + body) */
	uint64_t body_len;         /* MSG_DONE: decoded body bytes */
	uint64_t lost_len;         /* ERROR: bytes of the failed message already handed out */
	uint64_t skip_len;         /* SKIP: bytes discarded (may include earlier buffered bytes) */
};

struct st_http_opts {
	uint32_t head_cap;         /* 0: ST_HTTP_HEAD_CAP_DEFAULT; at least 64 */
	uint32_t max_headers;      /* 0: ST_HTTP_MAX_HEADERS_DEFAULT */
};

/* Opaque in spirit: fields are private to http.c. */
struct st_http_parser {
	uint8_t kind;
	uint8_t state;
	uint8_t cstate;            /* chunked sub-state */
	uint8_t err;
	bool hpending;             /* hbuf holds bytes not yet handed out */
	bool hreset;               /* hbuf is stale (message done) */
	bool err_reported;
	bool start_ok;             /* the head's start line matched the scanner's pattern */
	uint8_t mq_head;
	uint8_t mq_len;
	uint8_t mq[ST_HTTP_METHOD_QUEUE];
	uint32_t head_cap;
	uint32_t max_headers;
	char *hbuf;
	uint32_t hsize;            /* allocated */
	uint32_t hlen;
	uint32_t scan_pos;         /* head: bytes of hbuf already scanned for line ends */
	uint32_t line_start;
	uint32_t nlines;           /* non-empty head lines seen */
	uint32_t rs_from;          /* resync: first buffered byte that may start a message */
	uint32_t cline;            /* bytes in the current chunk-size line */
	uint32_t hdrs_size;
	struct st_http_header *hdrs;
	uint64_t remaining;        /* body/chunk bytes left */
	uint64_t msg_len;          /* wire bytes of this message handed out so far */
	uint64_t body_len;
	uint64_t trailer_len;
	struct st_http_head head;
};

int st_http__init(struct st_http_parser *p, enum st_http_kind kind,
		  const struct st_http_opts *opts);
void st_http__free(struct st_http_parser *p);
/* Forget everything (new connection, or back to HTTP after a refused Upgrade). */
void st_http__reset(struct st_http_parser *p);

/* Returns bytes consumed from buf (<= len); *ev says what they were. */
size_t st_http__feed(struct st_http_parser *p, const void *buf, size_t len,
		     struct st_http_event *ev);
/*
 * The stream ended (FIN/RST). Call until NEED_MORE: completes a read-until-close
 * response (MSG_DONE) or reports ST_HTTP_E_TRUNCATED for a partial message.
 */
void st_http__feed_eof(struct st_http_parser *p, struct st_http_event *ev);

/*
 * Resynchronise: from the next feed on, discard bytes (SKIP events) until
 * something that looks like a start line (st_http__scan_start()), then frame
 * from there. Usable in any state: after an ERROR, or when the caller knows
 * bytes were lost (a capture gap) - then pass drop_buffered so buffered head
 * bytes from before the gap are not spliced onto bytes after it. Without
 * drop_buffered, head bytes buffered when an error hit are rescanned (from
 * their second byte), so a request that follows garbage within one head is
 * found. An in-progress message is abandoned (its handed-out bytes are lost).
 */
void st_http__resync(struct st_http_parser *p, bool drop_buffered);

/* Bytes consumed but buffered, not yet handed out (partial head / resync candidate). */
size_t st_http__pending(const struct st_http_parser *p);

/*
 * Response parsers: the method of each request, in order, so that responses
 * to HEAD (no body) and CONNECT (tunnel on 2xx) are framed right. Popped by
 * each final (non-1xx, or 101) response. -ENOSPC when full, -EINVAL for a
 * request parser.
 */
int st_http__push_method(struct st_http_parser *p, enum st_http_method m);
/* Response parsers: requests pushed and not yet answered by a final response's head. */
unsigned st_http__awaiting(const struct st_http_parser *p);

/*
 * len bytes of the stream will never come (a capture gap of known length).
 * When they fall inside a body whose length framing knows (Content-Length,
 * chunk data, read-until-close, or a raw stream after an upgrade), framing
 * goes on after them: returns 0, the message is counted as if the bytes had
 * come (the caller must treat that message as damaged). Otherwise framing
 * cannot go on: returns -1 and changes nothing.
 */
int st_http__skip(struct st_http_parser *p, uint64_t len);
/* Body bytes framing knows come next and will only be counted (st_http__skip() takes them
 * without looking): Content-Length or chunk data left; 0 anywhere else. */
uint64_t st_http__body_left(const struct st_http_parser *p);

enum st_http_scan {
	ST_HTTP_SCAN_NONE = 0,  /* nothing in buf can start a message: discard all */
	ST_HTTP_SCAN_PARTIAL,   /* buf[*off..len) may be the start of one: need more bytes */
	ST_HTTP_SCAN_FOUND,     /* buf[*off..] starts like a message */
};

/*
 * Find the first offset in buf where a message could start: for requests
 * "METHOD SP target SP HTTP/1." with METHOD 1-24 chars of [A-Z0-9_-] starting
 * with a letter and target 1+ visible bytes; for responses "HTTP/1.D DDD"
 * followed by SP, CR or LF. A candidate longer than max_len without matching
 * is rejected (0: no limit). *off = len for NONE.
 */
enum st_http_scan st_http__scan_start(enum st_http_kind kind, const void *buf, size_t len,
				      size_t max_len, size_t *off);

enum st_http_method st_http__method_from(const char *s, size_t len);
const char *st_http__method_name(enum st_http_method m);
const char *st_http__strerror(enum st_http_err e);

/* Index of the first header named name (case-insensitive) at or after from, or -1. */
int st_http__head_find(const struct st_http_head *h, const char *name, uint32_t from);

#endif /* ST_HTTP_H */
