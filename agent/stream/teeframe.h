/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee's framing (docs/TEE.md, "Secrets stay on the host"): reassembly's events (reasm.h)
 * turned into tee stream records (stream.h's encoder), redacted. st_teeframe_ops is the
 * reassembly's ops, with the st_teeframe as its ctx.
 *
 * Each connection's treatment is decided at its first bytes: framed as HTTP/1.x (http.h, the
 * client speaking first with a request's start) and redacted (redact.h: header and trailer
 * fields, URLs, JSON bodies; every value overwritten in place, the length kept, so offsets
 * stay those of the capture); or, when it cannot be framed, held back: its bytes become GAP
 * records of their exact length (ST_SGAP_HELD), or go as they are with raw. With rules->none
 * (--no-redact) every connection goes as it is. Once framed, a framing error, a capture gap
 * the framer cannot step over by length, or a body the redaction cannot copy (memory) holds
 * the rest of that direction back; bytes after an Upgrade are held (or raw). No byte of a
 * framed connection reaches the encoder unredacted.
 *
 * Filters (--match-method, --match-path, --exclude-path): a connection's first request
 * decides; one left out is closed in the stream (CLOSE, ST_END_FLUSH) before its first byte.
 * Answer bytes that come before that head is whole wait unwritten; when the connection
 * passes they go as held (the answer direction is held from there on).
 * Exchange boundaries: a MARK before each request's head while the connection has been
 * framed exactly since its first byte and every earlier request was answered whole.
 *
 * The output's bound: before each DATA record (and each OPEN) the caller's room() says
 * whether n more stream bytes may go. When not, the record is dropped whole and counted
 * (dropped_records, dropped_bytes, and its reason), and the direction's next record is
 * preceded by a GAP of the dropped length (ST_SGAP_DROPPED); an OPEN that finds no room
 * leaves the connection out whole (dropped_conns). GAP, END, CLOSE and MARK records always
 * go: they keep the receiver's view consistent and bound nothing. Per connection and
 * direction the records tile the stream from offset 0, whatever was dropped or held.
 *
 * Memory: at most ST_TEEFRAME_MAX_FRAMED connections framed at once, heads up to
 * ST_TEEFRAME_HEAD_CAP (a connection beyond it is held back, held_busy; a longer head is a
 * framing error), one head's copy and the largest JSON body piece redacted. One thread.
 */
#ifndef ST_TEEFRAME_H
#define ST_TEEFRAME_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "reasm.h"
#include "redact.h"
#include "stats.h"
#include "stream.h"

/* 8192 x 2 heads x 16 KiB = 256 MiB at worst (docs/ARCHITECTURE.md, "Memory") */
#define ST_TEEFRAME_HEAD_CAP (16u << 10)
#define ST_TEEFRAME_MAX_FRAMED 8192

/* What room() answers: the bytes may go, or why not. */
enum st_teeframe_room {
	ST_TEEFRAME_ROOM = 0,
	ST_TEEFRAME_NO_LINK,  /* the link is down or connecting */
	ST_TEEFRAME_NO_QUEUE, /* the output's queue is full */
	ST_TEEFRAME_NO_RATE,  /* beyond the rate cap */
};

struct st_teeframe_config {
	const struct st_redact_rules *rules; /* kept by the caller; none: every byte as is */
	bool raw;                        /* what cannot be framed goes as is, not held back */
	const char *const *methods;      /* --match-method (n_methods of them) */
	unsigned n_methods;
	const regex_t *match;            /* --match-path, or NULL */
	const regex_t *exclude;          /* --exclude-path, or NULL */
	/* May n more stream bytes go? Asked before each DATA and OPEN record. */
	enum st_teeframe_room (*room)(void *ctx, uint64_t n);
	void *ctx;
};

#define ST_TEEFRAME_STATS(X, T)                                                                \
	X(T, connections, COUNTER, "connections reassembled")                                 \
	X(T, teed, COUNTER, "connections in the stream")                                      \
	X(T, dropped_conns, COUNTER, "connections left out whole: the output was too slow")   \
	X(T, held_conns, COUNTER, "connections held back: not HTTP, cannot be redacted (--raw)") \
	X(T, held_busy, DETAIL, "... of which because 8192 connections were being framed")  \
	X(T, raw_conns, COUNTER, "connections teed as raw bytes (--raw, --no-redact)")        \
	X(T, filtered_conns, COUNTER, "connections whose first request --match-*/--exclude-path left out") \
	X(T, bytes, COUNTER, "stream bytes teed")                                             \
	X(T, held_bytes, COUNTER, "bytes held back (gaps): not framed as HTTP")              \
	X(T, redacted, COUNTER, "values redacted: header and trailer fields, URLs, JSON")    \
	X(T, marks, DETAIL, "exchange boundaries marked (a receiver resumes a connection there)") \
	X(T, dropped_records, COUNTER, "data records dropped: the output or --max-rate was too slow") \
	X(T, dropped_bytes, COUNTER, "stream bytes of those records (gaps for the receiver)") \
	X(T, dropped_link, DETAIL, "... dropped records: the --to link was down or connecting") \
	X(T, dropped_queue, DETAIL, "... dropped records: --max-queue-mb was full")           \
	X(T, dropped_rate, DETAIL, "... dropped records: beyond --max-rate")                  \
	X(T, gap_bytes, COUNTER, "bytes reassembly reported missing (capture loss)")

struct st_teeframe_stats {
	ST_TEEFRAME_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_teeframe_stat);

struct st_teeframe;

/* The reassembly's ops; ctx is the struct st_teeframe. */
extern const struct st_reasm_ops st_teeframe_ops;

/* Frames into enc (the caller's; records mode too). NULL with errno. */
struct st_teeframe *st_teeframe__new(const struct st_teeframe_config *c,
				     struct st_stream_enc *enc);
/*
 * A new stream (the link came back, stream.h's encoder e in place of the old one): every
 * connection r still has open is opened again in it, joined midway (ST_REASM_F_JOINED),
 * with what it carried before as a GAP the sender dropped (ST_SGAP_DROPPED) and its ENDs
 * already written; it goes on at the offsets it was at.
 */
void st_teeframe__restart(struct st_teeframe *f, struct st_stream_enc *e, struct st_reasm *r);
const struct st_teeframe_stats *st_teeframe__stats(const struct st_teeframe *f);
/* Connections with HTTP parsers now (at most ST_TEEFRAME_MAX_FRAMED). */
unsigned st_teeframe__framed(const struct st_teeframe *f);
/* Safe on NULL. The reassembly's connections must be closed first (their state is freed
 * by the close event). */
void st_teeframe__free(struct st_teeframe *f);

#endif /* ST_TEEFRAME_H */
