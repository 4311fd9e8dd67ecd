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

struct st_loop;
struct st_tap;

/* Called once per decoded record, in ring order. Return < 0 to stop consuming. */
typedef int (*st_tap_cb)(void *ctx, const struct st_segment *seg);

struct st_tap_stats {
	struct st_counters kern[ST_DIR_MAX]; /* summed over CPUs */
	uint64_t bad_records;                /* records user space rejected (size, version) */
	uint64_t detaches;                   /* times the interface went away under the tap */
	uint64_t blind_ns;                   /* time without an interface (the current gap too) */
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
/*
 * An interface target is watched (agent/linkwatch.c): when the interface goes away the tap
 * says so at once (one line) and captures nothing; when an interface of that name comes back
 * the programs are attached to it again (st_tap__reattach) and it says so. With
 * --exit-on-detach the loop stops instead (-ENODEV: the command exits 1). Adds the watch to the
 * loop; nothing to do for a cgroup target.
 */
int st_tap__watch(struct st_tap *tap, struct st_loop *l);
/* Attaches the programs to interface ifindex (the one of its name that came back), the same
 * way as at start (TCX links or clsact filters); the maps and the ring stay as they are. What
 * was attached before is detached first. 0 or -errno. */
int st_tap__reattach(struct st_tap *tap, int ifindex);
/* Detaches everything and frees; safe on NULL. */
void st_tap__destroy(struct st_tap *tap);

#endif /* ST_TAP_H */
