/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flows engine: reassembly events (reasm.h) in, one file per connection
 * direction out, in a folder the caller opened. `shadowtap flows` (flows.c)
 * is a thin command around it; tests drive it directly.
 *
 *	struct st_flowsink *fs = st_flowsink__new(&cfg);
 *	struct st_reasm *r = st_reasm__new(&rcfg, &st_flowsink_ops, fs);
 *	... st_reasm__feed(r, &seg) ...
 *	st_reasm__flush(r);             (closes every connection)
 *	st_flowsink__flush(fs);         (closes the files)
 *	err = st_flowsink__error(fs);
 *
 * Contract:
 *  - Names. A direction's file is <sender-ip>.<sender-port>-<receiver-ip>.<receiver-port>
 *    (addresses as inet_ntop writes them), with "#N" appended for the N-th connection
 *    (N >= 2) with bytes on the same 4-tuple, either direction. A connection gets its number
 *    at its first byte or gap, in that order; connections without any leave no file and take
 *    no number.
 *  - Content. A file holds exactly its direction's stream: the bytes at their offsets, every
 *    gap as a hole of its exact length (reads as zeros; one warning line each,
 *    "gap: NAME offset=N length=N (why)"). Files are regular files only
 *    (st_output_openat: a symlink or FIFO under a flow's name is refused); the first open
 *    truncates a file of that name (a former run's, with --force).
 *  - Descriptors. Open files are an LRU of at most max_open; a file closed early is
 *    reopened to append.
 *  - Numbering memory. The count of connections per 4-tuple lives in a connection map
 *    (connmap.h) bounded by max_tuples: least recently numbered 4-tuples are forgotten
 *    first, never one with a connection still open. When a forgotten 4-tuple comes back,
 *    its next number is read from the folder (the highest N whose file exists, in either
 *    direction, + 1; every connection closed before has its files there), so names stay
 *    right past the bound at the cost of a few stat calls. Only with --force into a
 *    folder holding another run's files of those names would such a connection be
 *    numbered after them instead of replacing them.
 *  - Errors. The first failed open, write or extension is reported (one line) and kept;
 *    later events are ignored; st_flowsink__error() returns it (negative errno).
 * Callbacks must come from one thread (the reassembly's).
 */
#ifndef ST_FLOWSINK_H
#define ST_FLOWSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reasm.h"
#include "stats.h"

#define ST_FLOWSINK_MAX_OPEN_DEFAULT 256
#define ST_FLOWSINK_MAX_TUPLES_DEFAULT 65536

struct st_flowsink_config {
	int dirfd;             /* the output folder (the caller's: not closed) */
	const char *dirname;   /* for messages */
	size_t max_open;       /* open files at most; 0 = default */
	size_t max_tuples;     /* 4-tuples remembered for #N; 0 = default (65536) */
	uint64_t seed;         /* hash seed of that map (random bits) */
};

/* The engine's counters (stats.h): flows' summary line carries them. */
#define ST_FLOWSINK_STATS(X, T)                                                                \
	X(T, writes, COUNTER, "write calls made")                                             \
	X(T, reopens, COUNTER, "files opened again after the open-file limit closed them")    \
	X(T, tuples_forgotten, COUNTER, "4-tuples whose #N count left memory (read back from " \
					"the folder if they return)")

struct st_flowsink_stats {
	uint64_t files; /* files created: in flows' own table, next to connections */
	ST_FLOWSINK_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_flowsink_stat);

struct st_flowsink;

/* NULL with errno on failure. */
struct st_flowsink *st_flowsink__new(const struct st_flowsink_config *cfg);
/* The reassembly callbacks; their ctx is the st_flowsink. */
extern const struct st_reasm_ops st_flowsink_ops;
/* Closes every file. 0 or the first error (-errno). */
int st_flowsink__flush(struct st_flowsink *s);
/* 0, or the first error (-errno), already reported. */
int st_flowsink__error(const struct st_flowsink *s);
void st_flowsink__stats(const struct st_flowsink *s, struct st_flowsink_stats *out);
/* Closes the files; safe on NULL. */
void st_flowsink__free(struct st_flowsink *s);

#endif /* ST_FLOWSINK_H */
