/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow engine: replays captured client->server traffic to one or more
 * shadow targets, live (tap) or from a pcap (replay). Segments go in
 * (st_shadow__feed), are reassembled (reasm), framed (http) and written to
 * non-blocking sockets, one per captured connection and target.
 *
 * Contract, which production depends on:
 *  - nothing here ever blocks: sockets are non-blocking, output is queued in
 *    bounded per-connection and global queues; when a shadow is slow, stuck
 *    or down, whole requests are dropped and counted;
 *  - in HTTP mode a request is queued for sending only once it is complete
 *    (MSG_DONE): a request that crossed a gap or a framing error is never
 *    sent, partly or spliced; the stream resynchronises at the next request;
 *  - in raw mode bytes are forwarded as they come, and the shadow connection
 *    is closed at a gap (a byte stream cannot be resynchronised);
 *  - the agent's own connections to the shadows are recognised and never fed
 *    back (st_shadow__own()), so a shadow on the same port does not loop.
 *
 * The engine has its own epoll instance; st_shadow__fd() is readable when one
 * of its sockets has an event, so it nests in any event loop (st_loop).
 */
#ifndef ST_SHADOW_H
#define ST_SHADOW_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "segment.h"

#define ST_SHADOW_MAX_TARGETS 16
#define ST_SHADOW_MAX_SLOTS 1024 /* targets x multiply */
#define ST_SHADOW_MAX_METHODS 16
#define ST_SHADOW_MAX_SET 32
#define ST_SHADOW_CONN_QUEUE_DEFAULT (16u << 20)
#define ST_SHADOW_MAX_QUEUE_DEFAULT (256ull << 20)
#define ST_SHADOW_BACKOFF_MIN_NS (100ull * 1000000)
#define ST_SHADOW_BACKOFF_MAX_NS (5000ull * 1000000)
#define ST_SHADOW_LINGER_NS (5000ull * 1000000)   /* a detached connection drains this long */
#define ST_SHADOW_STALL_NS (10000ull * 1000000)   /* no write progress this long: give up */

enum st_shadow_proto {
	ST_PROTO_AUTO = 0, /* HTTP/1.x if the first client bytes start a request, else raw */
	ST_PROTO_HTTP,
	ST_PROTO_RAW,
};

struct st_shadow_target {
	char name[128];                /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned pct;                  /* 0: all connections; else a share (HOST:PORT/PCT) */
};

/* The response hook (tap compare will pair responses with their requests here). */
struct st_shadow_resp {
	uint64_t conn_id;              /* captured connection (reasm id) */
	unsigned slot;                 /* target index * multiply + copy */
	uint64_t req_seq;              /* 0, 1, ...: requests sent on this shadow connection */
	const struct st_http_head *head;
	uint64_t body_len;
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
	void (*on_response)(void *ctx, const struct st_shadow_resp *r);
	void *ctx;
};

struct st_shadow_stats {
	uint64_t conns;          /* captured client connections seen */
	uint64_t conns_http;
	uint64_t conns_raw;
	uint64_t conns_skipped;  /* sampled out, joined raw streams, raw under --safe-only */
	uint64_t requests;       /* HTTP requests framed from captured client streams */
	uint64_t filtered;       /* not selected: sampling, method, path, --safe-only */
	uint64_t replayed;       /* requests written whole to a shadow (per target copy) */
	uint64_t dropped;        /* requests not replayed: queue caps, shadow down, rate, failures */
	uint64_t dropped_rate;   /* ... of which beyond --rate */
	uint64_t dropped_queue;  /* ... of which because a queue cap was reached */
	uint64_t dropped_down;   /* ... of which because the shadow was down or failed */
	uint64_t gaps_skipped;   /* requests that crossed a capture gap or framing error: never sent */
	uint64_t resyncs;        /* HTTP resynchronisations (after gaps and errors) */
	uint64_t malformed;      /* framing errors in captured requests */
	uint64_t raw_closed;     /* raw shadow connections closed at a gap or full queue */
	uint64_t upgrades;       /* connections switched to raw after Upgrade/CONNECT */
	uint64_t responses;      /* final responses read from shadows */
	uint64_t resent;         /* requests sent again: the shadow closed without answering them */
	uint64_t unanswered;     /* requests written whole, connection closed before an answer */
	uint64_t resp_bytes;     /* bytes read from shadows */
	uint64_t bytes;          /* bytes written to shadows */
	uint64_t connects;       /* shadow connections opened */
	uint64_t reconnects;     /* ... of which attempted while the target was failing */
	uint64_t errors;         /* connect failures, resets, write errors, stalls */
	uint64_t own_segments;   /* segments of the agent's own shadow connections, ignored */
	uint64_t sampled_out_segments; /* segments of connections --sample left out */
	uint64_t shadow_conns;   /* shadow connections open now */
	uint64_t queued;         /* bytes queued now */
	uint64_t queued_peak;
	uint64_t gap_bytes;      /* client bytes reassembly reported missing */
};

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
/* Queues are filling up: a reader that may wait (replay --fast) should. */
bool st_shadow__busy(const struct st_shadow *sh);
/* Runs I/O and timers until idle or timeout_ms; then closes what is left (counted). */
void st_shadow__drain(struct st_shadow *sh, int timeout_ms);

void st_shadow__stats(const struct st_shadow *sh, struct st_shadow_stats *out);
/* The engine's reassembly memory now and at its peak (what --max-mem bounds). */
void st_shadow__reasm_mem(const struct st_shadow *sh, uint64_t *mem, uint64_t *peak);
/* "requests=N replayed=N ..." (no prefix, no newline). */
void st_shadow__format(const struct st_shadow_stats *s, char *buf, size_t len);

/* Parses HOST:PORT[/PCT] ([v6]:PORT too); resolves HOST now. 0 or -1 with a message. */
int st_shadow_parse_target(const char *s, struct st_shadow_target *t, char *err, size_t errlen);

#endif /* ST_SHADOW_H */
