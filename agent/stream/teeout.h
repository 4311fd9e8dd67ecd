/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee's output (tee -o FILE, -o -, --to HOST:PORT; docs/TEE.md, "Production is never
 * harmed", "The link"): the stream encoder's finished frames in a queue, written by a thread
 * of its own to a file, stdout or a TCP link to a `receive --listen` (TLS through tlslink.h,
 * or plaintext), reconnected with backoff when it is lost. Kafka is not here: the tee hands
 * its records to kafka.h's producer, which has its own queue.
 *
 * What it guarantees:
 *  - the caller (the event loop) never waits for the output: st_teeout__push() appends a
 *    frame under a lock no write holds, and never refuses one for lack of room. The bound is
 *    the caller's: it asks st_teeout__state()'s queued before it encodes a record and drops
 *    the record whole when it would not fit (a frame, once encoded, cannot be dropped: the
 *    zlib stream would break);
 *  - frames are written in the order pushed, each to the link generation it was encoded
 *    for: when a link is lost, what was queued for it (and what is pushed for it until the
 *    caller starts a new stream with the new generation) is thrown away and counted
 *    (discarded), as is the rest of a frame whose write failed; pushed = written +
 *    discarded + queued, always, in bytes;
 *  - a lost link (a write failed on --to) is reconnected by the writer with backoff (0.2 s
 *    doubling to 10 s) until the output is closed; st_teeout__poll() says it went down (downs
 *    counts it) and, once, that it is back (reconnected, gen the new generation);
 *  - the end (st_teeout__close()) writes out what is queued: a file always (but a daemon
 *    job's FIFO), a pipe, socket or link while the reader takes bytes, at most wait_ms
 *    without progress; a writer given up on is detached and frees the output when it ends.
 *
 * Threads: one writer per output; every st_teeout__ call is the caller's thread's (one).
 * Memory: the queue (bounded by the caller) and the frame being written.
 */
#ifndef ST_TEEOUT_H
#define ST_TEEOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tlslink.h"

struct st_teeout_config {
	const char *path;   /* -o: a file, or "-" for stdout; NULL with to */
	const char *to;     /* --to HOST:PORT ([v6]:PORT) */
	const struct st_tlslink_opts *tls; /* --to's TLS; NULL: plaintext (--insecure) */
	mode_t mode;        /* a file's mode (--output-mode; 0: output.h's default) */
	/* A daemon job: nothing may block the caller's loop. A FIFO without a reader fails at
	 * open, and a link's first connect is the writer's (st_teeout__poll() says connecting,
	 * then connect_failed or not). */
	bool in_daemon;
	const char *what;   /* the messages' prefix ("tee") */
	int fd;             /* tests: with neither path nor to, this fd is written (a pipe),
			     * never closed */
};

struct st_teeout;

/* What the output is at: a copy, taken under the writer's lock. */
struct st_teeout_state {
	int err;              /* the output's error (-errno; -ENOTCONN: the first connect
			       * failed), 0 while it writes */
	bool connecting;      /* a daemon job's first connect is not done */
	bool connect_failed;  /* ... and it failed (why says why) */
	bool down;            /* --to: the link is lost, the writer reconnects */
	bool reconnected;     /* --to: it came back (st_teeout__poll() reports it once) */
	uint64_t gen;         /* the link's generation: frames are pushed for it */
	uint64_t queued;      /* bytes waiting for the writer */
	uint64_t peak;        /* most bytes waiting at once */
	uint64_t written;     /* bytes written */
	uint64_t discarded;   /* bytes thrown away: frames of a stream a lost link cut */
	uint64_t downs;       /* times the link was lost */
	bool given_up;        /* st_teeout__close(): the writer was given up on (said) */
	char why[256];        /* why the link is down, or the first connect failed */
};

/* Opens the output before anything attaches: -o's file (a temporary one until the end; a
 * FIFO waits for its reader, but in a daemon job), --to's strings copied. NULL with one line
 * in err ("-o PATH: reason", "out of memory"). */
struct st_teeout *st_teeout__open(const struct st_teeout_config *c, char *err, size_t errlen);
/* --to connects (and authenticates; in a daemon job the writer does), then the writer
 * starts. 0, or -1 with one line in err ("--to HOST:PORT: reason"). */
int st_teeout__start(struct st_teeout *q, char *err, size_t errlen);
/* Queues one finished frame, encoded for link generation gen (a copy is taken). 0, or the
 * output's error (-errno): the frame is not queued. Never waits for the writer. */
int st_teeout__push(struct st_teeout *q, uint64_t gen, const uint8_t *frame, size_t len);
/* Bytes waiting for the writer now (what the caller's bound reads before each record). */
uint64_t st_teeout__queued(struct st_teeout *q);
/* The state now. */
void st_teeout__state(struct st_teeout *q, struct st_teeout_state *s);
/* The same, and reconnected is cleared: the caller starts a new stream for s->gen. */
void st_teeout__poll(struct st_teeout *q, struct st_teeout_state *s);
/*
 * Ends the output and frees it. discard: what is queued is thrown away and a file is not
 * committed (nothing of it stays); else what is queued is written (see above, wait_ms) and
 * a file committed. 0, or -errno: the output's error, -EPIPE (a reader that stopped taking
 * bytes), -ENOTCONN (a link down, or not connected yet, at the end): said in one line. last
 * (optional) gets the final state. Safe on NULL (0).
 */
int st_teeout__close(struct st_teeout *q, bool discard, int wait_ms,
		     struct st_teeout_state *last);

#endif /* ST_TEEOUT_H */
