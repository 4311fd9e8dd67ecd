/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow engine: replays captured client->server traffic to one or more
 * shadow targets, live (tap) or from a pcap (replay). Segments go in
 * (st_shadow__feed), are reassembled (reasm), framed (http) and written to
 * non-blocking sockets, one per captured connection and target.
 *
 * Contract, which production depends on:
 *  - the shadow never runs a request production did not: client requests are
 *    framed strictly (RFC 9112, http.c), and a complete request is released
 *    only once production's own answer to it is in the capture (the server's
 *    side of the same connection): answered normally => released; refused
 *    (an error, then a close) => neither it nor anything after it on that
 *    connection. ST_RELEASE_FRAMED trades this for latency;
 *  - a framing error, or a capture gap that framing cannot step over, ends
 *    the replay of that connection: the stream is never "repaired" or
 *    resynchronised into a new request (unless cfg.resync, documented risk);
 *    a request that crossed a gap is never sent, partly or spliced;
 *  - nothing here ever blocks: sockets are non-blocking, output is queued in
 *    bounded per-connection and global queues; when a shadow is slow, stuck
 *    or down, whole requests are dropped and counted; reading the shadows'
 *    answers is bounded per I/O turn, and an answer that is not HTTP closes
 *    that shadow connection;
 *  - in raw mode bytes are forwarded as they come, and the shadow connection
 *    is closed at a gap (a byte stream cannot be resynchronised);
 *  - the agent's own connections to the shadows are recognised and never fed
 *    back (st_shadow__own()), so a shadow on the same port does not loop;
 *  - HTTP/2 (prior knowledge, TLS plaintext, an h2c upgrade production accepted)
 *    is framed per stream (h2.h) and replayed per stream on the engine's own
 *    HTTP/2 connection to each target (libnghttp2's client session): a stream
 *    goes out once its request is complete and production's final response
 *    head for it is in the capture; a stream production reset or refused, or
 *    one on a connection that can no longer be decoded (joined midway, a gap,
 *    a protocol error), never does. docs/HTTP2.md.
 *
 * The engine has its own epoll instance; st_shadow__fd() is readable when one
 * of its sockets has an event, so it nests in any event loop (st_loop).
 *
 * A load test (cfg.load, agent/load/, docs/LOAD.md) changes only when requests go out
 * and what is said about them: each released request waits in its shadow connection's
 * queue until it is due (the load ops say when), a shadow connection is opened when its
 * first request is due (at most cfg.max_conns at once: the next waits, in order), a request
 * the recording did not pipeline waits for the answer before it, and every request given
 * a due time ends in one load->done() (answered, or failed by kind). What is replayed, and
 * the rules above, do not change: a request production did not run is never due.
 */
#ifndef ST_SHADOW_H
#define ST_SHADOW_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "http_rewrite.h"
#include "progress.h"
#include "segment.h"
#include "stats.h"

struct st_hdr;

#define ST_SHADOW_MAX_TARGETS 16
#define ST_SHADOW_MAX_SLOTS 1024 /* targets x multiply */
#define ST_SHADOW_MAX_METHODS 16
#define ST_SHADOW_MAX_SET 32
#define ST_SHADOW_CONN_QUEUE_DEFAULT (16u << 20)
#define ST_SHADOW_MAX_QUEUE_DEFAULT (256ull << 20)
#define ST_SHADOW_BACKOFF_MIN_NS (100ull * 1000000)
#define ST_SHADOW_BACKOFF_MAX_NS (5000ull * 1000000)
/* A detached connection waits this long for the shadow's next byte: an overloaded shadow may
 * leave a connection in its accept queue for seconds (5 s lost requests a busy nginx had not
 * read yet); production never waits on it, the queue caps bound what it holds. */
#define ST_SHADOW_LINGER_NS (30000ull * 1000000)
#define ST_SHADOW_STALL_NS (10000ull * 1000000)   /* no write progress this long: give up */

/* When a framed request goes to the shadows. */
enum st_shadow_release {
	/* once production's own answer to it is in the capture, and only if production ran it:
	 * the shadow never runs a request production did not (the default) */
	ST_RELEASE_ANSWERED = 0,
	/* as soon as it is framed (lower latency): strict framing alone decides; a request that
	 * production then refuses has already gone out */
	ST_RELEASE_FRAMED,
};

enum st_shadow_proto {
	ST_PROTO_AUTO = 0, /* HTTP/2 (the client connection preface), HTTP/1.x (a request line),
			    * else raw */
	ST_PROTO_HTTP,     /* HTTP/1.x or HTTP/2; anything else is not replayed */
	ST_PROTO_RAW,
	ST_PROTO_H2,       /* HTTP/2 only (from the first byte: prior knowledge, TLS ALPN h2) */
};

struct st_shadow_target {
	char name[128];                /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned pct;                  /* 0: all connections; else a share (HOST:PORT/PCT) */
};

struct st_compare;
struct st_correlate_config;

/* The response hook: every final response a shadow sends, as framed. */
struct st_shadow_resp {
	uint64_t conn_id;              /* captured connection (reasm id) */
	unsigned slot;                 /* target index * multiply + copy */
	uint64_t req_seq;              /* 0, 1, ...: requests sent on this shadow connection */
	const struct st_http_head *head;
	uint64_t body_len;
};

/* What became of a load test's request (struct st_shadow_done.fail). */
enum st_shadow_fail {
	ST_SHADOW_ANSWERED = 0,        /* a final answer, any status */
	ST_SHADOW_F_REFUSED,           /* its connection was refused */
	ST_SHADOW_F_CONNECT,           /* its connection could not be made otherwise (unreachable,
					* no socket or local port left) */
	ST_SHADOW_F_RESET,             /* reset, or closed by the target before answering */
	ST_SHADOW_F_TIMEOUT,           /* no answer in time (the timeout, or the end of the run) */
	ST_SHADOW_F_MALFORMED,         /* the answer did not frame as HTTP */
	ST_SHADOW_F_DROPPED,           /* never sent: the queue caps */
	ST_SHADOW_F__COUNT,
};

struct st_shadow_done {
	uint32_t tag;                  /* what load->tag() said of it */
	unsigned slot;                 /* target index (0: the --to; 1: tap compare's reference) */
	enum st_shadow_fail fail;
	uint16_t status;               /* answered: the final answer's status */
	uint64_t due;                  /* CLOCK_MONOTONIC ns, as every time here */
	uint64_t sent;                 /* written whole; 0: never */
	uint64_t end;                  /* its answer read whole, or the failure */
};

#define ST_SHADOW_NEVER UINT64_MAX     /* load->due(): not sent */

/* A load test's side of the engine (see the top). ctx: cfg.load_ctx. */
struct st_shadow_load_ops {
	/* A request selected for replay, its head just framed: a tag it carries (an endpoint). */
	uint32_t (*tag)(void *ctx, const struct st_http_head *h);
	/* A request released (production ran it), captured at ts (the capture's clock), now:
	 * when it is due (at or before now: at once), or ST_SHADOW_NEVER (past the test's end:
	 * not sent, counted in past_end). */
	uint64_t (*due)(void *ctx, uint64_t ts, uint64_t now);
	/* The engine took up slot's request due at due, at now: now - due is the generator's
	 * own lag (the wait for a connection or an answer comes after). */
	void (*taken)(void *ctx, unsigned slot, uint64_t due, uint64_t now);
	/* What became of a request that was given a due time (each ends here once, unless the
	 * run stops before it is due). */
	void (*done)(void *ctx, const struct st_shadow_done *d);
};

struct st_shadow_config {
	struct st_shadow_target targets[ST_SHADOW_MAX_TARGETS];
	unsigned n_targets;
	unsigned multiply;             /* each connection replayed this many times per target */
	enum st_shadow_proto proto;
	double sample_pct;             /* 0 or 100: everything */
	bool sample_by_request;        /* default: by a stable hash of the connection */
	double rate;                   /* requests/s over all targets; 0 = unlimited */
	const char *methods[ST_SHADOW_MAX_METHODS];
	unsigned n_methods;
	regex_t *match_path;           /* owned by the caller */
	regex_t *exclude_path;
	bool safe_only;                /* GET, HEAD, OPTIONS only (and no raw streams) */
	struct st_http_kv set[ST_SHADOW_MAX_SET];
	unsigned n_set;
	const char *host;              /* Host header value */
	const char *mark_name;         /* marker header (NULL: none) */
	const char *mark_value;
	uint64_t conn_queue_max;       /* bytes queued per shadow connection; 0 = default */
	uint64_t max_queue;            /* all queues together; 0 = default */
	bool live;                     /* tick drives reassembly timers with the wall clock */
	const uint16_t *ports;         /* service ports (client/server side without SYN) */
	size_t n_ports;
	uint64_t reasm_max_mem;        /* 0 = reasm default */
	uint64_t hash_seed;            /* for reassembly tables only; sampling is stable */
	enum st_shadow_release release;
	bool resync;                   /* join connections midway and resume after a capture gap
					* at the next request line (released without production's
					* confirmation: a body that looks like a request can pass) */
	uint32_t head_cap;             /* largest request head framed (0: http.c's default) */
	uint64_t (*clock)(void *ctx);  /* CLOCK_MONOTONIC ns; NULL: the real one (tests inject) */
	void *clock_ctx;
	void (*on_response)(void *ctx, const struct st_shadow_resp *r);
	void *ctx;
	/*
	 * Tap compare (compare.h; owned by the caller, outlives the engine): each replayed
	 * request is paired with production's answer and the shadows' (target 0 is the
	 * candidate, target 1 the reference); needs multiply 1 and at most 2 targets.
	 */
	struct st_compare *compare;
	/* A load test (see the top): NULL for shadowing and plain replay. Needs HTTP/1.x (raw
	 * connections and tunnels are not replayed; HTTP/2 connections are skipped, counted in
	 * skipped_conns, and no h2c offer is followed) and multiply 1. */
	const struct st_shadow_load_ops *load;
	void *load_ctx;
	unsigned max_conns;            /* load: shadow connections open at once (0: no cap) */
	uint64_t answer_timeout_ns;    /* load: written whole and unanswered this long: failed */
	/* load: keep the first pass's released requests, at most this many bytes, so that the
	 * next passes replay them without reading, reassembling and framing the recording again
	 * (st_shadow__cache_*); 0: no cache. Not with tap compare (it needs production's
	 * answers, which only the recording has). */
	uint64_t load_cache_max;
	/*
	 * --correlate (correlate.h; owned by the caller, outlives the engine): production's
	 * session and id values learned against each target's and rewritten in the requests
	 * that target gets (HTTP/1). NULL: off.
	 */
	const struct st_correlate_config *correlate;
};

/*
 * The engine's counters (stats.h): the struct, the summary/stats line and the
 * metrics all come from this list. With one target and no --multiply, at the
 * end of a run: requests = replayed + dropped + filtered + gaps_skipped + prod_rejected
 * + prod_unanswered + h2_reset (an HTTP/2 stream is a request). The gRPC counters
 * follow the order of the status codes (grpc_ok is 0): st_shadow_stats.grpc_ok + code.
 */
#define ST_SHADOW_STATS(X, T)                                                                   \
	X(T, requests, COUNTER, "HTTP requests framed from replayed captured connections")     \
	X(T, replayed, COUNTER, "requests written whole to a shadow (per target copy)")       \
	X(T, dropped, COUNTER, "requests not replayed: queue caps, shadow down, rate")         \
	X(T, errors, COUNTER, "shadow connection failures: connect, reset, write, stall")      \
	X(T, filtered, COUNTER, "requests not selected: sampling, method, path, --safe-only")  \
	X(T, gaps_skipped, COUNTER, "requests that crossed a capture gap or framing error")    \
	X(T, resyncs, COUNTER, "HTTP resynchronisations (after gaps and errors)")              \
	X(T, dropped_queue, COUNTER, "dropped: a queue cap was reached")                       \
	X(T, dropped_down, COUNTER, "dropped: the shadow was down or failed")                  \
	X(T, dropped_rate, COUNTER, "dropped: beyond --rate")                                  \
	X(T, responses, COUNTER, "final responses read from shadows")                          \
	X(T, responses_2xx, DETAIL, "... of which status 2xx")                                 \
	X(T, responses_3xx, DETAIL, "... of which status 3xx")                                 \
	X(T, responses_4xx, DETAIL, "... of which status 4xx")                                 \
	X(T, responses_5xx, DETAIL, "... of which status 5xx")                                 \
	X(T, resent, COUNTER, "requests sent again: the shadow closed without answering them") \
	X(T, unanswered, COUNTER, "requests written whole, closed before an answer")           \
	X(T, bytes, COUNTER, "bytes written to shadows")                                       \
	X(T, resp_bytes, COUNTER, "bytes read from shadows")                                   \
	X(T, connections, COUNTER, "captured client connections seen")                        \
	X(T, http, COUNTER, "captured connections framed as HTTP/1.x")                         \
	X(T, raw, COUNTER, "captured connections replayed as raw byte streams")                \
	X(T, skipped_conns, COUNTER, "captured connections not replayed (sampled out, ...)")   \
	X(T, upgrades, COUNTER, "connections switched to raw after Upgrade/CONNECT")           \
	X(T, raw_closed, COUNTER, "raw shadow connections closed at a gap or full queue")      \
	X(T, malformed, COUNTER, "framing errors in captured requests: replay of the connection stops") \
	X(T, prod_rejected, COUNTER, "requests production refused (error, then close): not replayed") \
	X(T, prod_unanswered, COUNTER, "requests production never answered: not replayed")    \
	X(T, stopped_conns, COUNTER, "captured connections whose replay stopped early")       \
	X(T, arbiter_lost, COUNTER, "connections where production's answers could not be followed") \
	X(T, joined, COUNTER, "connections joined midway: not replayed without --resync")     \
	X(T, not_http, COUNTER, "connections that did not speak HTTP on an HTTP port")        \
	X(T, bad_responses, COUNTER, "shadow connections closed: the shadow's answer was not HTTP") \
	X(T, connects, COUNTER, "shadow connections opened")                                   \
	X(T, reconnects, COUNTER, "shadow connections opened while the target was failing")    \
	X(T, target_downs, COUNTER, "times a target went down: its connect refused or failed " \
	  "(the first said on stderr, with its return)")                                      \
	X(T, gap_bytes, COUNTER, "client bytes reassembly reported missing")                   \
	X(T, own_segments, COUNTER, "segments of the agent's own shadow connections, ignored") \
	X(T, sampled_out_segments, COUNTER, "segments of connections --sample left out")       \
	X(T, shadow_conns, GAUGE, "shadow connections open now")                               \
	X(T, queued, GAUGE_BYTES, "bytes queued for the shadows now (chunk memory)")           \
	X(T, queued_peak, GAUGE_BYTES, "most bytes ever queued")                               \
	X(T, staged, GAUGE, "requests framed and waiting for production's answer now")         \
	X(T, reasm_mem, GAUGE_BYTES, "reassembly memory now (what --max-mem bounds)")         \
	X(T, reasm_mem_peak, GAUGE_BYTES, "most reassembly memory held")                      \
	X(T, malformed_start_line, DETAIL, "framing errors: malformed request line")           \
	X(T, malformed_version, DETAIL, "framing errors: not HTTP/1.x")                        \
	X(T, malformed_header, DETAIL, "framing errors: bad field line")                       \
	X(T, malformed_obs_fold, DETAIL, "framing errors: obsolete line folding")              \
	X(T, malformed_bare_cr, DETAIL, "framing errors: CR without LF")                       \
	X(T, malformed_bare_lf, DETAIL, "framing errors: LF without CR")                       \
	X(T, malformed_head_too_large, DETAIL, "framing errors: head larger than the cap")     \
	X(T, malformed_too_many_headers, DETAIL, "framing errors: too many fields")            \
	X(T, malformed_content_length, DETAIL, "framing errors: bad or repeated Content-Length") \
	X(T, malformed_transfer_encoding, DETAIL, "framing errors: Transfer-Encoding not chunked") \
	X(T, malformed_cl_and_te, DETAIL, "framing errors: Content-Length and Transfer-Encoding") \
	X(T, malformed_chunk, DETAIL, "framing errors: bad chunk framing")                     \
	X(T, malformed_trailer, DETAIL, "framing errors: bad trailer section")                 \
	X(T, missed_reads, DETAIL, "shadow connections found readable by the 1 s safety read " \
	  "(an edge the engine did not see)")                                                  \
	X(T, h2, COUNTER, "captured connections framed as HTTP/2 (prior knowledge, TLS, h2c)") \
	X(T, h2_upgrades, COUNTER, "HTTP/1.1 connections production upgraded to h2c")          \
	X(T, h2_streams, COUNTER, "HTTP/2 streams framed (each is one of requests)")           \
	X(T, h2_reset, COUNTER, "streams reset (by the client or production) before release")  \
	X(T, h2_refused, COUNTER, "streams production refused (REFUSED_STREAM, above a GOAWAY)") \
	X(T, h2_joined, COUNTER, "HTTP/2 connections joined midway (HPACK state lost)")        \
	X(T, h2_gap, COUNTER, "HTTP/2 connections that crossed a capture gap: replay stopped") \
	X(T, h2_errors, COUNTER, "HTTP/2 connections stopped by a protocol error or a bound")  \
	X(T, h2_shadow_conns, COUNTER, "HTTP/2 connections opened to shadows")                 \
	X(T, h2_goaways, COUNTER, "GOAWAYs from shadows (their unprocessed streams go again)")  \
	X(T, h2_shadow_resets, COUNTER, "streams a shadow reset before answering")             \
	X(T, h2_error_protocol, DETAIL, "HTTP/2 stops: PROTOCOL_ERROR")                        \
	X(T, h2_error_frame_size, DETAIL, "HTTP/2 stops: FRAME_SIZE_ERROR")                    \
	X(T, h2_error_compression, DETAIL, "HTTP/2 stops: COMPRESSION_ERROR (HPACK)")          \
	X(T, h2_error_other, DETAIL, "HTTP/2 stops: another connection error")                 \
	X(T, h2_error_truncated, DETAIL, "HTTP/2 stops: a direction ended inside a frame")     \
	X(T, h2_error_goaway, DETAIL, "HTTP/2 stops: a GOAWAY with an error code")             \
	X(T, h2_limit_header_list, DETAIL, "HTTP/2 streams dropped: header list over the bound") \
	X(T, h2_limit_streams, DETAIL, "HTTP/2 streams dropped: too many open at once")        \
	X(T, h2_limit_block, DETAIL, "HTTP/2 stops: header block over the bound")              \
	X(T, h2_limit_continuation, DETAIL, "HTTP/2 stops: CONTINUATION flood")                \
	X(T, h2_limit_streams_total, DETAIL, "HTTP/2 stops: streams over the connection's bound") \
	X(T, h2_limit_early_resets, DETAIL, "HTTP/2 stops: rapid reset (CVE-2023-44487)")      \
	X(T, h2_limit_table, DETAIL, "HTTP/2 stops: HPACK table over the bound")               \
	X(T, h2_limit_settings, DETAIL, "HTTP/2 stops: too many unacknowledged SETTINGS")      \
	X(T, h2_malformed, DETAIL, "HTTP/2 requests malformed (RFC 9113 8.1.1): never replayed") \
	X(T, h2_pushes, DETAIL, "server pushes seen in the capture (never replayed)")          \
	X(T, grpc_ok, DETAIL, "shadows' gRPC answers: OK")                                     \
	X(T, grpc_cancelled, DETAIL, "shadows' gRPC answers: CANCELLED")                       \
	X(T, grpc_unknown, DETAIL, "shadows' gRPC answers: UNKNOWN")                           \
	X(T, grpc_invalid_argument, DETAIL, "shadows' gRPC answers: INVALID_ARGUMENT")         \
	X(T, grpc_deadline_exceeded, DETAIL, "shadows' gRPC answers: DEADLINE_EXCEEDED")       \
	X(T, grpc_not_found, DETAIL, "shadows' gRPC answers: NOT_FOUND")                       \
	X(T, grpc_already_exists, DETAIL, "shadows' gRPC answers: ALREADY_EXISTS")             \
	X(T, grpc_permission_denied, DETAIL, "shadows' gRPC answers: PERMISSION_DENIED")       \
	X(T, grpc_resource_exhausted, DETAIL, "shadows' gRPC answers: RESOURCE_EXHAUSTED")     \
	X(T, grpc_failed_precondition, DETAIL, "shadows' gRPC answers: FAILED_PRECONDITION")   \
	X(T, grpc_aborted, DETAIL, "shadows' gRPC answers: ABORTED")                           \
	X(T, grpc_out_of_range, DETAIL, "shadows' gRPC answers: OUT_OF_RANGE")                 \
	X(T, grpc_unimplemented, DETAIL, "shadows' gRPC answers: UNIMPLEMENTED")               \
	X(T, grpc_internal, DETAIL, "shadows' gRPC answers: INTERNAL")                         \
	X(T, grpc_unavailable, DETAIL, "shadows' gRPC answers: UNAVAILABLE")                   \
	X(T, grpc_data_loss, DETAIL, "shadows' gRPC answers: DATA_LOSS")                       \
	X(T, grpc_unauthenticated, DETAIL, "shadows' gRPC answers: UNAUTHENTICATED")           \
	X(T, grpc_other, DETAIL, "shadows' gRPC answers: no or another grpc-status")             \
	X(T, past_end, DETAIL, "load test: requests released past the test's end (not sent)")    \
	X(T, conn_waits, DETAIL, "load test: connections that waited for a free one (--connections)") \
	X(T, correlated_values, COUNTER, "--correlate: production values mapped to a target's")  \
	X(T, rewritten_requests, COUNTER, "--correlate: requests a target got with values rewritten") \
	X(T, unmapped_requests, COUNTER, "--correlate: requests sent after waiting in vain for a value") \
	X(T, correlate_waits, COUNTER, "--correlate: requests that waited for a value to be learned") \
	X(T, correlate_evicted, COUNTER, "--correlate: mapped values evicted by --correlate-max-mb") \
	X(T, correlate_conflicts, DETAIL, "--correlate: production values seen mapping to two values") \
	X(T, correlate_expired, DETAIL, "--correlate: values dropped by the TTL or the wait's end") \
	X(T, correlate_dropped, DETAIL, "--correlate: waiting requests dropped (caps, shadow closed)") \
	X(T, correlate_entries, GAUGE, "--correlate: values held now (mapped and pending)")   \
	X(T, correlate_mem, GAUGE_BYTES, "--correlate: memory the maps hold now")

struct st_shadow_stats {
	ST_SHADOW_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_shadow_stat);

struct st_shadow;

/* NULL with errno set. cfg is copied (regexes and strings must outlive the engine). */
struct st_shadow *st_shadow__new(const struct st_shadow_config *cfg);
/* Frees everything, closing every socket; safe on NULL. */
void st_shadow__free(struct st_shadow *sh);

/* One captured segment. Never blocks. Complete requests are written at the next kick. */
void st_shadow__feed(struct st_shadow *sh, const struct st_segment *seg);
/* Writes the requests fed since the last kick (call after each batch of segments); io, poll
 * and tick kick too. */
void st_shadow__kick(struct st_shadow *sh);
/* True when seg belongs to one of the agent's own shadow connections. */
bool st_shadow__own(const struct st_shadow *sh, const struct st_segment *seg);
/* A reload's new --sample and ports (ports: kept, as cfg.ports is): connections that started
 * before keep the decision they got; new ones follow the new share. */
void st_shadow__set_filter(struct st_shadow *sh, double sample_pct, const uint16_t *ports,
			   size_t n_ports);
/* End of input: every captured connection closes (complete requests still go out). */
void st_shadow__flush(struct st_shadow *sh);

/* Readable when shadow sockets have events: add it to the event loop. */
int st_shadow__fd(const struct st_shadow *sh);
/* Handles whatever is ready, without waiting. Returns 0. */
int st_shadow__io(struct st_shadow *sh);
/* Timers: reassembly (live: now_real_ns is the wall clock), backoffs, stalls, lingering. */
void st_shadow__tick(struct st_shadow *sh, uint64_t now_real_ns);
/* Waits for I/O up to timeout_ms and handles it (tests, drain at exit). */
int st_shadow__poll(struct st_shadow *sh, int timeout_ms);
/* No shadow connection has anything left to send or receive. */
bool st_shadow__idle(const struct st_shadow *sh);
/* Queues are filling up (or tap compare is behind): a reader that may wait (replay --fast)
 * should. */
bool st_shadow__busy(const struct st_shadow *sh);
/* Runs I/O and timers until idle or timeout_ms; then closes what is left (counted). */
void st_shadow__drain(struct st_shadow *sh, int timeout_ms);
/* Load test: takes up the requests due by now (CLOCK_MONOTONIC ns) and writes what may go;
 * returns when the next one is due (0: none waits). From the loop's wake hook. */
uint64_t st_shadow__due(struct st_shadow *sh, uint64_t now);

void st_shadow__stats(const struct st_shadow *sh, struct st_shadow_stats *out);
/* The shadows' final answers, every target together: from the request's last byte written to
 * the answer's head read, in microseconds (HDR histogram, hdr.h). An answer that came before
 * its request was written whole has none. */
const struct st_hdr *st_shadow__answer_latency(const struct st_shadow *sh);
/* --correlate-dump: every target's learned values into path (0600, output.h's rules).
 * 0 or -errno. */
int st_shadow__correlate_dump(struct st_shadow *sh, const char *path);

/*
 * A load test's pass cache (cfg.load_cache_max): the first pass, fed as segments, is kept;
 * once it is over (a flush), st_shadow__cache_ready() says whether all of it was. The next
 * passes come from it: st_shadow__cache_rewind() starts one (every connection of the last
 * ends, as at the end of a file), st_shadow__cache_ts() gives the capture time of what comes
 * next (false at the end of the pass), st_shadow__cache_feed() releases it (a request, due as
 * load->due() says, or a connection's end): the same requests, bytes, order per connection
 * and connection ends as the first pass, on new connections.
 */
bool st_shadow__cache_ready(const struct st_shadow *sh);
void st_shadow__cache_rewind(struct st_shadow *sh);
bool st_shadow__cache_ts(const struct st_shadow *sh, uint64_t *ts);
void st_shadow__cache_feed(struct st_shadow *sh);

/* The engine's few counters that matter, for --stats and the status line (progress.h):
 * requests in and out, drops by reason, the shadows' answers by status class, errors, the
 * queues against their cap. Every command that runs the engine (shadow, replay, receive
 * --to) shows these. */
void st_shadow__brief(const struct st_shadow *sh, struct st_brief *b);

/* One target's state (metrics labelled by target). */
struct st_shadow_target_stats {
	bool up;                /* its last connect succeeded (or none was tried yet) */
	uint64_t downs;         /* times it went down */
	uint64_t dropped_down;  /* requests dropped because it was down or its connection failed */
};
/* Target i (0 <= i < the config's n_targets; the reference, with tap compare, is the last). */
void st_shadow__target_stats(const struct st_shadow *sh, unsigned i,
			     struct st_shadow_target_stats *out);

/* Parses HOST:PORT[/PCT] ([v6]:PORT too); resolves HOST now. 0 or -1 with a message. */
int st_shadow_parse_target(const char *s, struct st_shadow_target *t, char *err, size_t errlen);

#endif /* ST_SHADOW_H */
