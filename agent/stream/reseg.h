/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Re-segmentation (`receive -w` and `--to`): a connection of the tee stream (its events:
 * open, data, gaps, ends, docs/TEE.md) rebuilt as the TCP segments (segment.h) a capture of it
 * would have held, for the pcap writer and the shadow engine: a handshake, data in segments of
 * at most ST_RESEG_MSS bytes with consistent sequence and acknowledgement numbers (each
 * direction's from its own initial number, the data's offset + 1; the ACK counts a peer's FIN),
 * a loss segment per gap of at most ST_RESEG_LOSS_MAX bytes, FIN or RST.
 *
 * The caller owns a struct st_reseg per connection and says what each event makes; every
 * segment goes to its emit(ctx, segment), valid during that call only (data points into the
 * caller's bytes). emit NULL: nothing is made, the numbers advance as if it had been (an
 * output that wants no segments now keeps those of later ones right). The key is the
 * connection's client -> server; a segment's key is its sender's (ST_DIR_IN: the client).
 *
 * Pure: no I/O, no allocation, no globals; tests/unit/stream/test_reseg.c.
 */
#ifndef ST_RESEG_H
#define ST_RESEG_H

#include <stdbool.h>
#include <stdint.h>

#include "reasm.h"
#include "segment.h"

#define ST_RESEG_MSS 1448u            /* payload per data segment */
#define ST_RESEG_LOSS_MAX (1u << 30)  /* lost bytes per loss segment */
#define ST_RESEG_WINDOW 65535u

struct st_reseg {
	struct st_flow_key key;  /* client -> server */
	uint32_t isn[2];         /* per direction (ST_DIR_IN: the client's) */
	uint64_t next[2];        /* stream bytes (and gaps) made per direction */
	bool ended[2];           /* a direction's end (FIN, RST or another) was given */
};

typedef void st_reseg_emit_fn(void *ctx, struct st_segment *s);

/* A connection: its key, its initial sequence numbers: the client's from its id (reasm.h's,
 * 1, 2, ...), the server's from its id and the run's seed. */
void st_reseg_init(struct st_reseg *r, const struct st_flow_key *key, uint64_t id, uint64_t seed);

/* A segment of direction dir at the current numbers: no payload, flags as given. */
void st_reseg_seg(const struct st_reseg *r, struct st_segment *s, int dir, uint8_t flags,
		  uint64_t ts);

/* The three-way handshake (SYN, SYN+ACK, ACK) of a connection seen from its start. */
void st_reseg_open(struct st_reseg *r, uint64_t ts, st_reseg_emit_fn *emit, void *ctx);

/* Bytes of direction dir: ACK segments of at most ST_RESEG_MSS, PSH on the last. */
void st_reseg_data(struct st_reseg *r, int dir, const uint8_t *d, uint32_t len, uint64_t ts,
		   st_reseg_emit_fn *emit, void *ctx);

/* A gap of len bytes in direction dir: loss segments (ST_SEG_LOSS) of at most
 * ST_RESEG_LOSS_MAX. */
void st_reseg_gap(struct st_reseg *r, int dir, uint64_t len, uint64_t ts,
		  st_reseg_emit_fn *emit, void *ctx);

/* Direction dir ends: ST_END_FIN makes FIN+ACK, ST_END_RST a RST, another reason nothing;
 * whatever the reason, the other direction's later ACKs count one more (as for a FIN). */
void st_reseg_end(struct st_reseg *r, int dir, enum st_reasm_end why, uint64_t ts,
		  st_reseg_emit_fn *emit, void *ctx);

/* The connection starts again where it is (`receive --to` after a gap: shadow.h sees a new
 * connection from an exchange boundary): a client RST, then a handshake whose SYNs take the
 * sequence numbers just before each direction's next byte. Four segments. */
void st_reseg_restart(struct st_reseg *r, uint64_t ts, st_reseg_emit_fn *emit, void *ctx);

#endif /* ST_RESEG_H */
