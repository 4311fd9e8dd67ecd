/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A connection's HTTP exchanges, from its reassembled bytes in both directions: each request
 * paired with its final answer and handed to the caller once both have ended, in the order
 * they end. The client's first bytes say which HTTP the connection speaks: HTTP/2's preface
 * (h2.h's framer, one exchange per stream, up to ST_EXCHANGE_STREAMS followed at once), or
 * HTTP/1.x (http.h's framer, answers paired with requests in order, pipelining up to
 * ST_EXCHANGE_QUEUE); until then both directions' bytes are held (ST_EXCHANGE_DETECT_MAX: an
 * HTTP/2 server may speak first).
 *
 * The contract:
 *  - every exchange handed over is whole both ways: a stream reset or dropped by the framer,
 *    an interim (1xx) answer, a request never answered are not exchanges;
 *  - a connection that can no longer be followed (not HTTP, a framing error, an Upgrade, a
 *    bound reached, bytes missing where framing cannot step over them: anywhere in HTTP/2,
 *    whose HPACK state goes with them, or outside a body of known length in HTTP/1) stops:
 *    the call that met it returns false, what it held is freed, nothing more comes until
 *    st_exchange__init() again (an exchange boundary, say);
 *  - memory is bounded: the held detection bytes, ST_HTTP head caps, the queue and the
 *    stream table.
 * Texts (method, target) are the bytes as sent, cut to their buffers and NUL-terminated: the
 * caller redacts and escapes what it shows. Times are the caller's (capture times).
 */
#ifndef ST_EXCHANGE_H
#define ST_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "h2.h"
#include "http.h"

#define ST_EXCHANGE_TARGET_MAX 160
#define ST_EXCHANGE_QUEUE 32          /* HTTP/1 requests awaiting their answers */
#define ST_EXCHANGE_STREAMS 256       /* HTTP/2 streams followed at once (more: not followed) */
#define ST_EXCHANGE_DETECT_MAX (16u << 10)
#define ST_EXCHANGE_HEAD_CAP (16u << 10)

struct st_exchange {
	char method[24];
	char target[ST_EXCHANGE_TARGET_MAX]; /* the request target (HTTP/2: :path, else
					      * :authority, else "-") */
	uint64_t req_bytes, resp_bytes;  /* HTTP/1: the messages as sent; HTTP/2: DATA bytes */
	uint64_t req_end_ts;             /* the request's last byte */
	uint64_t resp_ts;                /* the final answer's head */
	uint16_t status;
	int16_t grpc;                    /* the answer's grpc-status, or -1 */
	uint32_t stream;                 /* HTTP/2's stream id; 0 in HTTP/1 */
	bool req_done, resp_done;
};

typedef void (*st_exchange_fn)(void *ctx, const struct st_exchange *x);

enum { ST_EXCHANGE_DETECT = 0, ST_EXCHANGE_H1, ST_EXCHANGE_H2 };

/* One connection's state (embed it; st_exchange__init before use). */
struct st_exchange_conn {
	st_exchange_fn fn;
	void *ctx;
	bool on;                     /* following: not stopped */
	uint8_t mode;                /* ST_EXCHANGE_DETECT, _H1, _H2 */
	/* HTTP/1 */
	struct st_http_parser p[2];  /* [ST_DIR_IN] requests, [ST_DIR_OUT] answers */
	struct st_exchange *q;       /* ST_EXCHANGE_QUEUE, allocated at the first request */
	unsigned qh, qn;
	unsigned nresp;              /* exchanges at the queue's front with their answer done */
	/* before the client's first bytes say which */
	uint8_t *det[2];
	uint32_t det_len[2];
	/* HTTP/2 */
	struct st_h2 *h2;
	struct st_exchange *xs;
	uint32_t nxs, xcap;
};

/* Follows c from here (a connection's start, or an exchange boundary): each exchange goes to
 * fn(ctx, x) when complete. 0, or -ENOMEM. */
int st_exchange__init(struct st_exchange_conn *c, st_exchange_fn fn, void *ctx);
/* What c holds, let go (c stops; init again to follow). */
void st_exchange__free(struct st_exchange_conn *c);
/* len bytes of direction dir (ST_DIR_IN: the client's) at capture time ts. false: c stopped
 * (above; it was freed). */
bool st_exchange__feed(struct st_exchange_conn *c, int dir, const uint8_t *d, uint32_t len,
		       uint64_t ts);
/* len bytes of dir missing. false: c stopped. */
bool st_exchange__gap(struct st_exchange_conn *c, int dir, uint64_t len);
/* dir ended (its FIN): an HTTP/1 answer read until the close ends here. */
void st_exchange__end(struct st_exchange_conn *c, int dir, uint64_t ts);
/* Both directions are at an exchange boundary (a tee stream's MARK): bytes held before the
 * protocol was known (the middle of a connection that began earlier) are not the start of
 * anything and are dropped. */
void st_exchange__boundary(struct st_exchange_conn *c);

#endif /* ST_EXCHANGE_H */
