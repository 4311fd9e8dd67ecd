/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pcap writer: turns segments back into Ethernet/IP/TCP frames (valid
 * checksums, the 802.1Q tag when the segment had one) in nanosecond pcap
 * records, and hands them to a thread of its own that writes them.
 *
 * The caller (capture's event loop, which must drain the kernel's ring) never
 * waits for the disk or for a reader:
 *  - records are built into chunks (1 MiB, less for a small queue) that the
 *    writer thread writes whole, in order; a chunk goes when it is full, or at
 *    st_pcapw__flush() when the writer has nothing else to do;
 *  - at most queue_bytes of chunks exist (allocated when needed, handed back
 *    beyond a few spares). When all are taken (a stalled disk, a slow or
 *    stopped reader of a pipe), a segment is dropped whole and counted
 *    (dropped_writes, dropped_write_bytes): the file has a hole, never half a
 *    packet, and the kernel's ring never waits;
 *  - pipes and FIFOs are written non-blocking, so the writer can give up: at
 *    close it writes what is queued while the reader takes bytes, and drops
 *    the rest (counted) once the reader has taken nothing for
 *    ST_PCAPW_STALL_NS. A regular file is always written whole before close
 *    returns: the pcap is complete and valid.
 */
#ifndef ST_PCAPW_H
#define ST_PCAPW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "segment.h"
#include "stats.h"

/* Ethernet + 802.1Q + IPv6 + TCP headers. */
#define ST_FRAME_HDR_MAX (14 + 4 + 40 + 20)
#define ST_FRAME_MAX (ST_FRAME_HDR_MAX + ST_CHUNK_MAX)

/* Memory between the capture and the output, default and range (capture --write-queue-mb). */
#define ST_PCAPW_QUEUE_DEFAULT (64ull << 20)
#define ST_PCAPW_QUEUE_MB_MIN 1
#define ST_PCAPW_QUEUE_MB_MAX 4096
/* At close, a pipe's reader that takes nothing for this long is given up on. */
#define ST_PCAPW_STALL_NS (2000ull * 1000000)

/* The writer's counters (stats.h); capture's summary line carries them. */
#define ST_PCAPW_STATS(X, T)                                                                   \
	X(T, packets, COUNTER, "packets written")                                             \
	X(T, bytes, COUNTER, "payload bytes written")                                         \
	X(T, dropped_writes, COUNTER, "packets not written: the output was slower than the " \
				      "capture (queue full), or stopped taking bytes at the end") \
	X(T, dropped_write_bytes, COUNTER, "payload bytes of those packets")                  \
	X(T, write_queue_peak, GAUGE_BYTES, "most bytes waiting for the output at once")     \
	X(T, rotations, DETAIL, "files started by rotation (--rotate-mb, --rotate-sec)")     \
	X(T, files_removed, DETAIL, "complete files removed to keep --keep")

struct st_pcapw_stats {
	ST_PCAPW_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_pcapw_stat);

struct st_pcapw;

/*
 * path "-" writes to stdout. NULL (errno set) after one line on stderr. A regular file (or a
 * missing path) is written to a temporary file next to it (agent/output/output.h) until
 * st_pcapw__commit(); devices and FIFOs are written in place (a FIFO's open waits for its
 * reader); a symlink is refused. queue_bytes: the bound above (0: ST_PCAPW_QUEUE_DEFAULT);
 * mode: the files' (--output-mode; 0: output.h's default). The writer thread starts with every
 * signal blocked (they are the event loop's).
 */
struct st_pcapw *st_pcapw__open(const char *path, uint64_t queue_bytes, mode_t mode);
/* The file takes its place at path (until then, a run that fails leaves path as it was). */
int st_pcapw__commit(struct st_pcapw *w);
/*
 * logrotate (SIGHUP): when path no longer names the file being written (moved away or
 * deleted), what is queued goes on to that file, which the writer then closes, and a new
 * pcap starts at path. 1 when reopened, 0 when there is nothing to reopen (path is still
 * this file; stdout, a device, a FIFO), -errno when the new file cannot be made (after one
 * line on stderr; the old file goes on).
 */
int st_pcapw__reopen(struct st_pcapw *w);
/* Queues a DATA segment (LOSS segments carry no bytes and are skipped), or drops it and
 * counts it when the queue is full. 0, or -EINVAL for a segment too big for a frame. */
int st_pcapw__write(struct st_pcapw *w, const struct st_segment *seg);
/* Hands what is buffered to the writer if it is idle (call it periodically: every tick for
 * a pipe's live reader). 0, or the output's error (-errno: disk full, EPIPE: the reader
 * went away). */
int st_pcapw__flush(struct st_pcapw *w);
/* True for outputs written in place (stdout, a FIFO, a device): flush them often. */
int st_pcapw__streaming(const struct st_pcapw *w);
/*
 * Rotation, instead of st_pcapw__commit(): the file being written takes its name only when
 * complete (renamed by the writer once its last record is written: st_pcapw__rotate or
 * close); until then it is a hidden temporary file next to it. At most keep files (0: no
 * limit; else >= 2: a file being completed and the next one exist together) stay, counting
 * the ones being written: the oldest complete ones go first, including those of earlier
 * runs that the glob pattern older matches (names that sort by time; may be NULL) and that
 * this job could have written: name_ok(path) (NULL: any name) and a regular file, never a
 * symlink, owned by our user, with a pcap or pcapng header; anything else stays. A file is
 * removed only if it still is a regular file of ours. 0, or -EINVAL for stdout, a device or a
 * FIFO.
 */
int st_pcapw__rotation(struct st_pcapw *w, unsigned keep, const char *older,
		       bool (*name_ok)(const char *path));
/* Rotation: records from now on go to next_path; the current file is complete after what is
 * queued for it. 0, or -errno after one line (the current file goes on). */
int st_pcapw__rotate(struct st_pcapw *w, const char *next_path);
/* The counters so far, while it runs (what the writer wrote up to now); zeros for NULL. */
void st_pcapw__stats(const struct st_pcapw *w, struct st_pcapw_stats *out);
/* Bytes waiting for the output now, and the queue's bound (NULL: not asked); any thread. */
uint64_t st_pcapw__queued(const struct st_pcapw *w, uint64_t *bound);
/*
 * Writes what is queued (see above for pipes), stops the thread, closes the output; a file
 * never committed is removed (nothing of a failed run stays). The final counters go to out
 * (may be NULL). 0, or the output's error (-errno).
 */
int st_pcapw__close(struct st_pcapw *w, struct st_pcapw_stats *out);

/* Builds the frame for seg into buf; returns its length, 0 if it does not fit. */
size_t st_pcapw_frame_build(const struct st_segment *seg, uint8_t *buf, size_t cap);

#endif /* ST_PCAPW_H */
