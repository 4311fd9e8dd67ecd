/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A byte queue addressed by absolute stream offsets, in chunks that grow with
 * the stream (512 B to 64 KiB), so that small requests stay small and big
 * bodies do not cost one allocation per segment.
 *
 * Offsets: acked <= sent <= commit <= end. The queue holds [acked, end);
 * what the offsets between mean is the user's (the shadow engine: sent to the
 * socket, released for sending, framed so far). Memory is counted by chunk
 * allocation (header + capacity), which is what caps must bound.
 *
 * Pure: no I/O, no globals; unit-tested on its own (tests/unit/shadow/test_bytequeue.c).
 */
#ifndef ST_BYTEQUEUE_H
#define ST_BYTEQUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define ST_BQ_CHUNK_MIN 512u
#define ST_BQ_CHUNK_MAX (64u * 1024)

struct st_bq_chunk {
	struct st_bq_chunk *next;
	uint64_t off;  /* absolute stream offset of data[0] */
	uint32_t len;
	uint32_t cap;
	uint8_t data[];
};

struct st_bq {
	struct st_bq_chunk *head, *tail;
	uint64_t acked, sent, commit, end;
	uint64_t alloc;  /* bytes held by the chunks, headers included */
};

/* Memory the queue holds now. */
static inline uint64_t st_bq_mem(const struct st_bq *q)
{
	return q->alloc;
}

/* Memory appending len bytes would add. */
uint64_t st_bq_cost(const struct st_bq *q, size_t len);
/* Appends at end. 0 or -ENOMEM (nothing appended then... or a prefix: end says). */
int st_bq_append(struct st_bq *q, const void *data, size_t len);
/* Appends src's bytes [from, to) (they must be held by src). 0 or -ENOMEM. */
int st_bq_append_from(struct st_bq *q, const struct st_bq *src, uint64_t from, uint64_t to);
/* Cuts the queue back to pos (bytes at and after pos are gone; end = pos). */
void st_bq_truncate(struct st_bq *q, uint64_t pos);
/* Bytes before pos are no longer needed (acked = pos): frees whole chunks before it. */
void st_bq_release(struct st_bq *q, uint64_t pos);
/* Fills at most max iovecs with the bytes [from, to); returns how many. */
int st_bq_iov(const struct st_bq *q, uint64_t from, uint64_t to, struct iovec *iov, int max);
/* Copies the bytes [from, to) (held by q) to out; returns how many it copied. */
size_t st_bq_copy(const struct st_bq *q, uint64_t from, uint64_t to, void *out);
void st_bq_free(struct st_bq *q);

#endif /* ST_BYTEQUEUE_H */
