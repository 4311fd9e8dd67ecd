/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pcap writer: turns segments back into Ethernet/IP/TCP frames (valid
 * checksums, the 802.1Q tag when the segment had one) and writes them with
 * libpcap, nanosecond timestamps. A GSO super-packet that the kernel delivered
 * in several parts is written as several segments, each with its own seq.
 */
#ifndef ST_PCAPW_H
#define ST_PCAPW_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

/* Ethernet + 802.1Q + IPv6 + TCP headers. */
#define ST_FRAME_HDR_MAX (14 + 4 + 40 + 20)
#define ST_FRAME_MAX (ST_FRAME_HDR_MAX + ST_CHUNK_MAX)

struct st_pcapw;

/*
 * path "-" writes to stdout. NULL (errno set) after one line on stderr. A regular file (or a
 * missing path) is written to a temporary file next to it (agent/output.h) that takes path's
 * place at st_pcapw__commit() or st_pcapw__close(), so st_pcapw__abort() before that leaves
 * path as it was; devices and FIFOs are written in place.
 */
struct st_pcapw *st_pcapw__open(const char *path);
/* The file takes its place at path now (it goes on being written). */
int st_pcapw__commit(struct st_pcapw *w);
/* Gives up: closes and removes what this run wrote if not committed yet; safe on NULL. */
void st_pcapw__abort(struct st_pcapw *w);
/*
 * logrotate (SIGHUP): when path no longer names the file being written (moved away or
 * deleted), finishes that file properly and starts a new pcap at path. 1 when reopened, 0 when
 * there is nothing to reopen (path is still this file; stdout, a device, a FIFO), -errno when
 * the new file cannot be made (after one line on stderr; the old file goes on).
 */
int st_pcapw__reopen(struct st_pcapw *w);
/* Writes a DATA segment (LOSS segments carry no bytes and are skipped). */
int st_pcapw__write(struct st_pcapw *w, const struct st_segment *seg);
/* 0, or -errno when the output failed (disk full, reader went away). */
int st_pcapw__flush(struct st_pcapw *w);
/* Flushes, commits (if not yet) and closes. */
int st_pcapw__close(struct st_pcapw *w);

/* Builds the frame for seg into buf; returns its length, 0 if it does not fit. */
size_t st_frame_build(const struct st_segment *seg, uint8_t *buf, size_t cap);

#endif /* ST_PCAPW_H */
