/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * watch's HTTP/1 source: reassembly's events (reasm.h) framed as HTTP/1.x in both directions
 * (http.h), requests paired with their answers in order, each exchange handed to the
 * aggregate (watch_agg.h) with its times and sizes, taken from the segments' capture
 * timestamps: request's last byte in -> answer's first byte out, and -> its last byte out.
 * docs/WATCH.md has the rules.
 *
 * What the kernel copies: with the headers-only policy (st_tap_opts, ST_COPY_HEAD) the first
 * head_bytes of each segment come, the rest are elided gaps (ST_GAP_ELIDED) that framing
 * steps over when they fall inside a body whose length it knows (Content-Length, the current
 * chunk): sizes and ends stay exact. Elided bytes that are not all body (a head past
 * head_bytes in a segment or a GSO super-packet: pipelining, a long head, chunk lines) lose
 * the direction's framing: that is counted (desyncs), the connection is handed to
 * cfg.copy_whole (the kernel copies it whole from then on: fallbacks), the answer in
 * progress is counted with what is known of it, the requests waiting for answers are
 * counted as lost_exchanges, and framing starts again at the next head. A capture loss is
 * handled the same way, without the fallback. A chunked message hands its connection to
 * copy_whole at its head, before chunk lines are lost (a body that began in the head's segment
 * may still lose its end: the answer is counted, incomplete). Exact counts, then, are those of
 * a run whose lost_exchanges and unpaired are 0.
 *
 * Bounded: at most max_conns connections are framed at once (the rest are counted, not
 * measured), each holding two parsers (heads up to ST_WATCH_HEAD_CAP) and at most
 * ST_WATCH_PIPELINE_MAX requests waiting for answers (past it the pairing is given up: framing
 * starts again, counted); the aggregate is bounded by its caps.
 * Single-threaded (the event loop's).
 */
#ifndef ST_WATCH_H
#define ST_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "reasm.h"
#include "segment.h"
#include "stats.h"
#include "watch_agg.h"

#define ST_WATCH_MAX_CONNS_DEFAULT 8192
#define ST_WATCH_HEAD_CAP (16u << 10)
#define ST_WATCH_PIPELINE_MAX 256u /* requests of a connection waiting for answers */

#define ST_WATCH_STATS(X, T)                                                                   \
	X(T, connections, COUNTER, "connections reassembled")                                 \
	X(T, http_conns, COUNTER, "connections framed as HTTP/1.x")                           \
	X(T, other_conns, COUNTER, "connections that speak neither HTTP/1.x nor HTTP/2 (not measured)") \
	X(T, h2_conns, COUNTER, "connections framed as HTTP/2 (the client connection preface)") \
	X(T, busy_conns, COUNTER, "connections not measured: --max-conns were being framed") \
	X(T, joined_conns, DETAIL, "connections joined midway: framed from the first head found") \
	X(T, upgraded_conns, DETAIL, "connections that switched protocols: measured up to the switch") \
	X(T, h2_upgraded, DETAIL, "HTTP/1.1 connections upgraded to h2c by a 101: HTTP/2 after it, the offer as stream 1") \
	X(T, h2_whole, DETAIL, "HTTP/2 connections listed for whole copies at their preface") \
	X(T, h2_ports, DETAIL, "service ports where HTTP/2 was seen: copied whole from then on") \
	X(T, h2_joined, DETAIL, "HTTP/2 connections joined midway (a port where HTTP/2 was seen): HPACK state never seen, not measured") \
	X(T, h2_gap, DETAIL, "HTTP/2 connections that stopped at bytes lost (capture loss): HPACK state lost") \
	X(T, h2_elided, DETAIL, "HTTP/2 connections that stopped at elided bytes outside DATA (before the whole copy took effect)") \
	X(T, h2_errors, DETAIL, "HTTP/2 connections that stopped at a connection error or a bound of the framer") \
	X(T, requests, COUNTER, "request heads framed (HTTP/2: streams)")                    \
	X(T, h2_streams, DETAIL, "... of which HTTP/2 streams")                                \
	X(T, h2_resets, DETAIL, "HTTP/2 streams reset before their answer ended (counted: the answer's code, or none)") \
	X(T, h2_refused, DETAIL, "HTTP/2 streams the server did not process (REFUSED_STREAM, above its GOAWAY): not counted") \
	X(T, h2_stream_cap, DETAIL, "HTTP/2 streams not measured: 256 were open on their connection (not counted)") \
	X(T, h2_dropped, DETAIL, "HTTP/2 streams the framer gave up on: a header list over its bound (not counted)") \
	X(T, grpc_calls, DETAIL, "gRPC calls counted by grpc-status (shadowtap_grpc_requests_total)") \
	X(T, exchanges, COUNTER, "exchanges counted: a final answer, or none at the end")     \
	X(T, unanswered, COUNTER, "requests whose connection ended before an answer (code none)") \
	X(T, incomplete, COUNTER, "answers counted whose end was not seen (last byte and size not measured)") \
	X(T, unpaired, COUNTER, "answers to no request seen (not counted)")                   \
	X(T, interim, DETAIL, "1xx interim answers (part of their exchange)")                  \
	X(T, lost_exchanges, COUNTER, "requests whose answers could not be told after framing was lost (not counted)") \
	X(T, desyncs, COUNTER, "times a direction's framing was lost (a gap, elided bytes outside a body, an error)") \
	X(T, framing_errors, DETAIL, "... of which bytes that did not frame as HTTP/1.x")     \
	X(T, fallbacks, COUNTER, "connections copied whole from then on: a head fell in bytes the copy policy left out") \
	X(T, skipped, COUNTER_BYTES, "body bytes the kernel did not copy, stepped over by framing") \
	X(T, gap_bytes, COUNTER_BYTES, "bytes reassembly reported missing (capture loss)")    \
	X(T, series, GAUGE, "series exported (endpoint, method, code; gRPC's endpoint, grpc_code)") \
	X(T, endpoints, GAUGE, "endpoints named (past --max-endpoints: other)")               \
	X(T, other_endpoint, DETAIL, "exchanges of endpoints past --max-endpoints (endpoint other)") \
	X(T, overflow, DETAIL, "exchanges past --max-series (counted in the class rows; gRPC calls: endpoint other)")

struct st_watch_stats {
	ST_WATCH_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_watch_stat);

struct st_watch_config {
	struct st_watch_agg_config agg;
	unsigned max_conns;          /* 0: ST_WATCH_MAX_CONNS_DEFAULT */
	/* The connection (client -> server) lost framing in bytes the copy policy left out:
	 * copy it whole from now on. NULL: no fallback (policy whole, or a file). */
	void (*copy_whole)(void *ctx, const struct st_flow_key *k);
	/* HTTP/2 was seen on the service's port: copy every connection of it whole from now on
	 * (their first answers too: HPACK needs every header byte). NULL: none. Same ctx. */
	void (*copy_port_whole)(void *ctx, uint16_t port);
	void *copy_whole_ctx;
};

struct st_watch;

/* NULL with errno. */
struct st_watch *st_watch__new(const struct st_watch_config *cfg);
void st_watch__free(struct st_watch *w);
/* The reassembly callbacks; their ctx is the st_watch. */
extern const struct st_reasm_ops st_watch_reasm_ops;
void st_watch__stats(const struct st_watch *w, struct st_watch_stats *out);
const struct st_watch_agg *st_watch__agg(const struct st_watch *w);

#endif /* ST_WATCH_H */
