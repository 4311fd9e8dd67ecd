/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * watch's HTTP/2 source: one connection that opened with the client connection preface (h2c
 * with prior knowledge, or ALPN h2 behind --tls), framed by h2.h in both directions, each
 * stream handed to the aggregate (watch_agg.h) as an exchange: the endpoint from :method and
 * :path at the request's head, the times from the client's END_STREAM to the server's final
 * head (first byte) and its END_STREAM (last byte), the sizes from the DATA payloads, gRPC's
 * grpc-status from the trailers (or a trailers-only answer). watch.c detects the connection
 * and hands its reassembly events here. docs/WATCH.md, "HTTP/2 and gRPC", has the rules.
 *
 * What cannot be measured is counted, never guessed: a connection that stops (a gap in either
 * direction, elided bytes that are not all DATA, a connection error or a bound of the framer:
 * h2_gap, h2_elided, h2_errors) has its streams with a final answer counted as incomplete and
 * the others as lost_exchanges, and nothing after. Elided bytes inside DATA (the headers-only
 * policy, before the whole copy watch.c asks for takes effect) are stepped over exactly
 * (st_h2__skip): sizes and ends stay exact.
 *
 * Bounded: at most ST_WATCH_H2_STREAMS streams of a connection are followed at once (the
 * framer's max_streams is the same: a stream over it is dropped by the framer, counted in
 * h2_stream_cap and lost_exchanges); a rapid-reset storm stops the connection at the framer's
 * max_early_resets (h2_errors). Memory per connection: the framer's (h2.h: its HPACK tables,
 * one header block per direction, its stream table) and this table, 40 bytes a slot, grown by
 * doubling up to 2 * ST_WATCH_H2_STREAMS slots.
 * Single-threaded (the event loop's).
 */
#ifndef ST_WATCH_H2_H
#define ST_WATCH_H2_H

#include <stdbool.h>
#include <stdint.h>

#include "watch.h"

#define ST_WATCH_H2_STREAMS 256u /* streams of a connection followed at once */

struct st_watch_h2;
struct st_http_head;

/* A connection's source: exchanges go to agg, counters to st (both outlive it). NULL with
 * errno. */
struct st_watch_h2 *st_watch_h2__new(struct st_watch_agg *agg, struct st_watch_stats *st);
/* An HTTP/1.1 request offered h2c (st_h2_upgrade_requested): a new source takes it as stream
 * 1 (st_h2__upgrade), before any byte. 0, or -EINVAL / -ENOMEM (not taken: free the source). */
int st_watch_h2__offer(struct st_watch_h2 *h, const struct st_http_head *req);
/* The offer was accepted (a 101) and the request's last byte came at req_last: stream 1's
 * request is handed over with that time; then each direction's bytes after the HTTP/1
 * messages are fed with st_watch_h2__data. */
void st_watch_h2__upgraded(struct st_watch_h2 *h, uint64_t req_last);
/* Bytes of dir (ST_DIR_IN: the client's) captured at ts, in order. */
void st_watch_h2__data(struct st_watch_h2 *h, int dir, const uint8_t *d, uint32_t len,
		       uint64_t ts);
/* len bytes of dir missing: elided by the copy policy (stepped over when they are all DATA,
 * else the connection stops: h2_elided), or lost (h2_gap). */
void st_watch_h2__gap(struct st_watch_h2 *h, int dir, uint64_t len, bool elided, uint64_t ts);
/* Direction dir ended (FIN, RST). */
void st_watch_h2__end(struct st_watch_h2 *h, int dir, uint64_t ts);
/* The connection is over: the streams still open are counted (an answer cut short, code none
 * for a request never answered), then it is freed. Safe on NULL. */
void st_watch_h2__close(struct st_watch_h2 *h);

#endif /* ST_WATCH_H2_H */
