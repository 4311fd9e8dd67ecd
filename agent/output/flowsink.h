/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flows engine: reassembly events (reasm.h) in, one file per connection
 * direction out, in a folder the caller opened. `shadowtap flows` (flows.c)
 * is a thin command around it; tests drive it directly.
 *
 *	struct st_flowsink *fs = st_flowsink__new(&cfg);
 *	struct st_reasm *r = st_reasm__new(&rcfg, &st_flowsink_ops, fs);
 *	... st_reasm__feed(r, &seg); st_flowsink__tick(fs, now) (live) ...
 *	st_reasm__flush(r);             (closes every connection: their bytes are written)
 *	st_flowsink__flush(fs);         (anything left; closes the files)
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
 *    (st_output_openat: a symlink or FIFO under a flow's name is refused); with replace
 *    (--force) the first open truncates a file of that name (a former run's), else it
 *    creates the file exclusively.
 *  - Buffers. Bytes are held per direction (buf_size) and written when the buffer is full,
 *    when the connection closes, when the direction had no new bytes for idle_ns
 *    (st_flowsink__tick), when buffers would pass max_buffered in all (least recently
 *    added to first), before a gap, and at st_flowsink__flush(). A segment of half a
 *    buffer or more is not copied: it goes out at once, in one writev with what was held.
 *    So a file lags its stream by at most one buffer or idle_ns (live), and buffers never
 *    hold more than max_buffered.
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
#include <sys/types.h>

#include "reasm.h"
#include "stats.h"

#define ST_FLOWSINK_MAX_OPEN_DEFAULT 256
#define ST_FLOWSINK_MAX_TUPLES_DEFAULT 65536
#define ST_FLOWSINK_BUF_DEFAULT (64u << 10)
#define ST_FLOWSINK_MAX_BUFFERED_DEFAULT (32ull << 20)
#define ST_FLOWSINK_IDLE_DEFAULT_NS (1000ull * 1000000)

struct st_flowsink_config {
	int dirfd;             /* the output folder (the caller's: not closed) */
	bool replace;          /* the folder may hold files of the same names (flows --force):
				* they are replaced; else a name already taken is an error */
	const char *dirname;   /* for messages */
	size_t max_open;       /* open files at most; 0 = default */
	uint32_t buf_size;     /* per-direction buffer (>= 4 KiB); 0 = default (64 KiB) */
	uint64_t max_buffered; /* all buffers together; 0 = default (32 MiB) */
	uint64_t idle_ns;      /* st_flowsink__tick() writes what waited this long; 0 = 1 s */
	size_t max_tuples;     /* 4-tuples remembered for #N; 0 = default (65536) */
	uint64_t seed;         /* hash seed of that map (random bits) */
	mode_t mode;           /* the files' (--output-mode); 0: output.h's default (0600) */
	/* a gap's reason in its warning line; NULL: reassembly's (st_reasm_gap_str). A tee
	 * stream's receiver names its sender's reasons too (st_stream_gap_str). */
	const char *(*gap_str)(unsigned why);
};

/* The engine's counters (stats.h): flows' summary line carries them. */
#define ST_FLOWSINK_STATS(X, T)                                                                \
	X(T, writes, COUNTER, "write calls made (bytes are buffered per direction)")          \
	X(T, reopens, COUNTER, "files opened again after the open-file limit closed them")    \
	X(T, tuples_forgotten, COUNTER, "4-tuples whose #N count left memory (read back from " \
					"the folder if they return)")                 \
	X(T, buffered_peak, GAUGE_BYTES, "most bytes of output buffers held at once")

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
/* Live capture: writes what has waited idle_ns or longer at now_ns (the events' clock). */
void st_flowsink__tick(struct st_flowsink *s, uint64_t now_ns);
/* Writes everything held and closes every file. 0 or the first error (-errno). */
int st_flowsink__flush(struct st_flowsink *s);
/* 0, or the first error (-errno), already reported. */
int st_flowsink__error(const struct st_flowsink *s);
void st_flowsink__stats(const struct st_flowsink *s, struct st_flowsink_stats *out);
/* Closes the files without writing what is held (call __flush first); safe on NULL. */
void st_flowsink__free(struct st_flowsink *s);

#endif /* ST_FLOWSINK_H */
