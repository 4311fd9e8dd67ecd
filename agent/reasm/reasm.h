/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TCP stream reassembly: turns struct st_segment (live records or pcap
 * packets) into ordered byte streams, one per connection and direction.
 *
 * Every consumer after capture (flows, shadow, tap compare, replay) shares
 * this engine, so its contract is strict:
 *  - bytes come out in sequence order, each byte at most once, each copied
 *    at most once (in-order bytes are handed over straight from the segment);
 *  - a byte that will never come is reported as a gap of exact length, after
 *    at most gap_wait_ns without progress, at close, when a cap is hit, or at
 *    once for a capture loss (ST_SEG_LOSS); a stream never stalls forever
 *    and is never spliced silently across missing bytes;
 *  - overlapping bytes: the first copy to arrive wins (what most stacks'
 *    reassembly queues do). Bytes that overlap still-buffered bytes with a
 *    different value are counted in overlaps/overlap_bytes; bytes already
 *    handed over are not kept, so a retransmission of them is dropped
 *    uncompared (retrans_bytes);
 *  - a segment (or FIN, or ACK) claiming bytes more than max_ahead beyond the
 *    next expected byte is out of window: a stray from an earlier connection
 *    on the 4-tuple, most likely, and dropped (counted). Only when the stream
 *    has stalled for gap_wait_ns and out-of-window segments keep coming near
 *    each other does the engine take them as a real loss and move on;
 *  - memory is bounded: out-of-order bytes per connection (ooo_max) and all
 *    state together (max_mem). When a cap is hit the holes holding bytes back
 *    become gaps, and the least recently active connections are evicted
 *    (their buffered bytes delivered after the gaps, then closed).
 *
 * Direction: 0 (ST_DIR_IN) is client -> server, 1 (ST_DIR_OUT) server ->
 * client. A segment's dir field, when >= 0, says which side sent it (live
 * capture knows the service's port). When it is -1 (pcap): SYN and SYN-ACK
 * decide; else the side whose port is in the port list is the server; else
 * the first sender is the client.
 *
 * Callbacks run from st_reasm__feed(), __tick() and __flush(); they may not
 * call back into the engine (except st_reasm__stats()).
 */
#ifndef ST_REASM_H
#define ST_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define ST_REASM_MAX_MEM_DEFAULT (256ull << 20)
#define ST_REASM_OOO_MAX_DEFAULT (4u << 20)
#define ST_REASM_OOO_MAX_MIN (64u << 10)
#define ST_REASM_OOO_SEGS_DEFAULT 4096u
#define ST_REASM_IDLE_DEFAULT_NS (300ull * 1000000000ull)
#define ST_REASM_GAP_WAIT_DEFAULT_NS (2ull * 1000000000ull)
#define ST_REASM_LINGER_DEFAULT_NS (10ull * 1000000000ull)
#define ST_REASM_MAX_AHEAD_DEFAULT (64u << 20)

/* st_reasm_conn.flags */
#define ST_REASM_F_JOINED (1u << 0)    /* no SYN seen: the capture started mid-connection */
#define ST_REASM_F_DIR_GUESSED (1u << 1) /* client/server decided by port list or first sender */

enum st_reasm_end {
	ST_END_FIN = 0,     /* FIN seen and every byte before it delivered (or reported as gap) */
	ST_END_RST,         /* reset by either side */
	ST_END_TIMEOUT,     /* no segment for idle_ns */
	ST_END_EVICTED,     /* memory cap: least recently active connection closed early */
	ST_END_REUSED,      /* a SYN with a new ISN started a new connection on the 4-tuple */
	ST_END_FLUSH,       /* st_reasm__flush(): end of input */
	ST_END_MAX,
};

enum st_reasm_gap_why {
	ST_GAP_LOSS = 0, /* the capture said it lost these bytes (ST_SEG_LOSS) */
	ST_GAP_WAIT,     /* a hole stayed open for gap_wait_ns */
	ST_GAP_OOO_CAP,  /* out-of-order bytes of the connection hit ooo_max / ooo_segs */
	ST_GAP_MEM,      /* the global cap evicted the connection */
	ST_GAP_CLOSE,    /* the connection closed with a hole (FIN, RST, timeout, end of input) */
	ST_GAP_ELIDED,   /* the capture's copy policy left these bytes out on purpose (headers-only,
			  * none: st_segment.elided, .elided_before): nothing was lost; not counted
			  * in gaps, gap_bytes, loss_bytes, st_reasm_conn.gap_bytes */
	ST_GAP_MAX,
};

/* What consumers see of a connection. The engine owns it; valid from open to close. */
struct st_reasm_conn {
	struct st_flow_key key; /* client -> server */
	uint64_t id;            /* 1, 2, ... in order of opening */
	uint64_t open_ts;       /* ts_ns of the first segment */
	uint32_t flags;         /* ST_REASM_F_* */
	uint32_t pad;
	uint64_t bytes[2];      /* bytes delivered, per direction */
	uint64_t gap_bytes[2];  /* bytes reported as gaps, per direction */
	void *user;             /* free for the consumer */
};

struct st_reasm_ops {
	/* A connection starts (its first segment). */
	void (*open)(void *ctx, struct st_reasm_conn *c, uint64_t ts);
	/* len > 0 bytes of direction dir at stream offset off (0 = first byte after SYN, or the
	 * first byte seen for a joined stream). data is valid only during the call. */
	void (*data)(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		     uint32_t len, uint64_t ts);
	/* len bytes at off will never come; the stream goes on at off + len. */
	void (*gap)(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		    enum st_reasm_gap_why why, uint64_t ts);
	/* Direction dir is over (its FIN reached, RST, or the connection closes). Once per dir. */
	void (*end)(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why,
		    uint64_t ts);
	/* The connection is gone; c (and c->user) must not be used after this returns. */
	void (*close)(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts);
};

struct st_reasm_config {
	uint64_t max_mem;      /* all state and buffered bytes; 0 = ST_REASM_MAX_MEM_DEFAULT */
	uint32_t ooo_max;      /* out-of-order bytes held per connection direction; 0 = max_mem / 16,
				* within ST_REASM_OOO_MAX_MIN .. ST_REASM_OOO_MAX_DEFAULT */
	uint32_t ooo_segs;     /* out-of-order pieces held per connection; 0 = default */
	uint32_t max_ahead;    /* bytes beyond the next expected one a segment, FIN or ACK may
				* claim; further is out of window (0 = default, 64 MiB) */
	uint64_t idle_ns;      /* close after this long without a segment; 0 = default */
	uint64_t gap_wait_ns;  /* longest wait for a missing byte; 0 = default */
	uint64_t linger_ns;    /* closed 4-tuples absorb stray ACK/FIN this long; 0 = default */
	const uint16_t *ports; /* server ports, to tell client from server without a SYN */
	size_t n_ports;
	uint64_t hash_seed;    /* 0 = fixed seed (deterministic); pass random bits in production */
};

struct st_reasm_stats {
	uint64_t segments;       /* segments fed */
	uint64_t conns;          /* connections opened */
	uint64_t conns_joined;   /* ... of which without SYN */
	uint64_t conns_active;   /* open now */
	uint64_t conns_reused;   /* closed by a new SYN on the same 4-tuple */
	uint64_t conns_timeout;  /* closed by idle_ns */
	uint64_t conns_evicted;  /* closed by max_mem */
	uint64_t bytes;          /* bytes delivered */
	uint64_t gaps;           /* gap events */
	uint64_t gap_bytes;      /* bytes reported as gaps (every one of them) */
	uint64_t loss_bytes;     /* ... of which announced by ST_SEG_LOSS */
	uint64_t elided_bytes;   /* bytes reported as ST_GAP_ELIDED gaps (not in gap_bytes) */
	uint64_t ooo_segments;   /* segments that arrived ahead of a hole */
	uint64_t retrans_bytes;  /* bytes that arrived again (dropped, first copy wins) */
	uint64_t overlaps;       /* segments overlapping buffered bytes with different values */
	uint64_t overlap_bytes;  /* ... the differing bytes */
	uint64_t drop_segs;      /* segments not used at all (after close, beyond FIN, out of window,
				  * no memory) */
	uint64_t oow_segs;       /* ... of which out of window */
	uint64_t drop_bytes;     /* payload bytes of segments dropped, not retransmissions */
	uint64_t mem;            /* bytes of state held now */
	uint64_t mem_peak;
};

struct st_reasm;

/* NULL with errno on failure. cfg may be NULL (defaults); it is copied. */
struct st_reasm *st_reasm__new(const struct st_reasm_config *cfg, const struct st_reasm_ops *ops,
			       void *ctx);
/* Feeds one segment; seg->ts_ns is "now" (the clock never goes back: earlier stamps count as
 * the latest seen). Returns 0; never fails on bad input (it is counted instead). */
int st_reasm__feed(struct st_reasm *r, const struct st_segment *seg);
/* Runs timers (gap waits, idle timeouts) at now_ns without a segment (live capture). */
void st_reasm__tick(struct st_reasm *r, uint64_t now_ns);
/* End of input: delivers what is buffered (holes become gaps) and closes everything. */
void st_reasm__flush(struct st_reasm *r);
void st_reasm__stats(const struct st_reasm *r, struct st_reasm_stats *out);
/* The server ports from now on (a reload's new --port set): they orient connections that
 * start after it. 0, or -ENOMEM (the old ones stay). */
int st_reasm__set_ports(struct st_reasm *r, const uint16_t *ports, size_t n_ports);
/* Calls fn for every open connection (a consumer's setting changed for all of them); fn may
 * not call back into the engine. */
void st_reasm__foreach(struct st_reasm *r, void (*fn)(void *ctx, struct st_reasm_conn *c),
		       void *ctx);
/* Frees everything without callbacks (call __flush first to get them); safe on NULL. */
void st_reasm__free(struct st_reasm *r);

const char *st_reasm_end_str(enum st_reasm_end why);
const char *st_reasm_gap_str(enum st_reasm_gap_why why);

#endif /* ST_REASM_H */
