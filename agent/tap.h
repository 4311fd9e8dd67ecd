/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The live tap: loads the BPF programs, fills their filter maps, attaches them
 * to an interface (TCX links, else clsact filters) or a cgroup (cgroup_skb
 * links), and turns ring buffer records into struct st_segment callbacks.
 */
#ifndef ST_TAP_H
#define ST_TAP_H

#include <stdbool.h>

#include "opts.h"
#include "segment.h"

struct st_tap;

/* Called once per decoded record, in ring order. Return < 0 to stop consuming. */
typedef int (*st_tap_cb)(void *ctx, const struct st_segment *seg);

struct st_tap_stats {
	struct st_counters kern[ST_DIR_MAX]; /* summed over CPUs */
	uint64_t bad_records;                /* records user space rejected (size, version) */
};

/*
 * Opens, configures and attaches. On failure returns NULL with errno set,
 * after printing one line on stderr, and leaves nothing attached.
 */
struct st_tap *st_tap__open(const struct st_target *t, bool verbose, st_tap_cb cb, void *ctx);
/* A file descriptor that becomes readable when records wait (epoll it). */
int st_tap__fd(const struct st_tap *tap);
/* Delivers every waiting record to the callback; returns records consumed or < 0. */
int st_tap__consume(struct st_tap *tap);
void st_tap__stats(const struct st_tap *tap, struct st_tap_stats *out);
/* Detaches everything and frees; safe on NULL. */
void st_tap__destroy(struct st_tap *tap);

#endif /* ST_TAP_H */
