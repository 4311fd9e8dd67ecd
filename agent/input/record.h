/* SPDX-License-Identifier: GPL-2.0-only */
/* Decoding of ring buffer records (bpf/shadowtap.h) into struct st_segment. */
#ifndef ST_RECORD_H
#define ST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

/*
 * Checks a record of size bytes (as the ring delivered it) and fills seg;
 * seg->data points into the record. real_offset_ns turns the record's
 * CLOCK_MONOTONIC stamp into CLOCK_REALTIME. Returns 0 or -EINVAL (too
 * short, wrong version, unknown type or family, length beyond the record).
 */
int st_record_decode(const void *rec, size_t size, int64_t real_offset_ns,
		     struct st_segment *seg);

/* CLOCK_REALTIME - CLOCK_MONOTONIC, now. */
int64_t st_record_realtime_offset_ns(void);

#endif /* ST_RECORD_H */
