/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Segments paced to their capture times, for the shadow engine (`receive --to`, shadow.h). A
 * stream read from a file or from a Kafka backlog comes far faster than it was captured, and
 * a client's requests would reach the shadows together, pipelined, where production got them
 * one by one (a shadow's latency then measures its queue: tap compare's verdicts are wrong).
 * The caller holds each segment here and releases what is due; like replay's original timing.
 *
 * The schedule: a segment is due at its capture time (ts_ns) shifted by one offset, set by the
 * first segment held and set again when a segment would be due more than ahead_ns after the
 * later of now and every due time given so far (another host's clock, a backlog read from its
 * middle: a source decoded ahead of its pace is not a jump, and an offset set again never
 * makes a segment due before one held earlier, whatever its connection: a value --correlate
 * learns from an earlier answer on another connection must not come too late); never before
 * an earlier segment of its connection (the caller keeps each connection's last due time, 0
 * at its start); what is late is due at once. Segments due at the same time go in the order
 * they were held.
 *
 * Bounds: at most max_bytes of payload are held (a loss segment's length is not held); beyond
 * it a segment is refused (ST_SEGPACE_FULL), as it is when memory runs out (ST_SEGPACE_NOMEM):
 * the caller then releases everything held and sends the segment itself, so that the order
 * per connection stays. st_segpace_full() and st_segpace_ahead() say when the caller's input
 * should wait (a file is read at most so far ahead of its pace).
 *
 * Times are the caller's (now: CLOCK_MONOTONIC ns; a segment's ts_ns its capture's
 * CLOCK_REALTIME): no clock is read here. The caller owns the struct; one thread.
 * Tests: tests/unit/shadow/test_segpace.c.
 */
#ifndef ST_SEGPACE_H
#define ST_SEGPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

struct st_segpace_seg;

struct st_segpace {
	uint64_t max_bytes;             /* payload held at most */
	int64_t ahead_ns;               /* a source ahead by more sets the offset again */
	struct st_segpace_seg **heap;   /* a min-heap on (due, seq) */
	size_t n, cap;
	uint64_t bytes;                 /* payload held now */
	uint64_t seq;                   /* segments held so far: the order among equal dues */
	int64_t off;                    /* now minus ts_ns, once set */
	bool off_set;
	uint64_t last;                  /* the latest due time given (an offset set again starts there) */
};

enum st_segpace_hold {
	ST_SEGPACE_HELD = 0,
	ST_SEGPACE_FULL,  /* max_bytes would be passed */
	ST_SEGPACE_NOMEM,
};

/* What a release hands over: the segment (its data held here), valid during the call. */
typedef void st_segpace_release_fn(void *ctx, const struct st_segment *s);

void st_segpace_init(struct st_segpace *p, uint64_t max_bytes, int64_t ahead_ns);

/* Holds a copy of s until its time; *last_due is its connection's (NULL: no order to keep),
 * updated when held. */
enum st_segpace_hold st_segpace_hold(struct st_segpace *p, const struct st_segment *s,
				     uint64_t *last_due, uint64_t now);

/* Hands over every segment due at now or before (UINT64_MAX: all), in due order; how many. */
size_t st_segpace_release(struct st_segpace *p, uint64_t now, st_segpace_release_fn *fn,
			  void *ctx);

/* The payload held reached max_bytes: the input should wait. */
bool st_segpace_full(const struct st_segpace *p);
/* Segments are held that are due more than read_ahead_ns after now: the input should wait. */
bool st_segpace_ahead(const struct st_segpace *p, uint64_t now, uint64_t read_ahead_ns);

/* Drops what is held (nothing is handed over) and the heap. */
void st_segpace_free(struct st_segpace *p);

#endif /* ST_SEGPACE_H */
