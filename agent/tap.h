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
#include "stats.h"

struct st_loop;
struct st_tap;

/* Called once per decoded record, in ring order. Return < 0 to stop consuming. */
typedef int (*st_tap_cb)(void *ctx, const struct st_segment *seg);

/* libbpf 1.1's headers predate TCX; the kernel numbers are stable UAPI. */
#define ST_BPF_TCX_INGRESS 46
#define ST_BPF_TCX_EGRESS 47
/* Legacy clsact filters (kernels without TCX) carry this handle and priority,
 * so a restart after kill -9 finds and removes its own stale filters and
 * never touches anyone else's (tests/integration/test_capture_clsact.sh
 * looks for the handle). */
#define ST_TC_HANDLE 0x5354
#define ST_TC_PRIO 0x5354

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

/* What every live command reports about the capture itself (stats.h table). */
#define ST_TAP_STATS(X, T)                                                                     \
	X(T, lost, COUNTER, "payload bytes the kernel could not deliver (ring buffer full)")  \
	X(T, lost_segs, COUNTER, "segments with at least one byte not delivered")             \
	X(T, lost_in, COUNTER, "lost bytes, client to service")                               \
	X(T, lost_out, COUNTER, "lost bytes, service to client")                              \
	X(T, loss_unmarked, COUNTER, "loss records that could not be delivered either")       \
	X(T, loss_unmarked_in, DETAIL, "... of which client to service")                      \
	X(T, loss_unmarked_out, DETAIL, "... of which service to client")                     \
	X(T, parse_skipped, COUNTER, "packets the kernel parser gave up on (truncated, fragments)") \
	X(T, bad_records, COUNTER, "ring records user space rejected (size, version)")       \
	X(T, detaches, COUNTER, "times the captured interface went away")                     \
	X(T, blind_ms, COUNTER, "milliseconds the capture was blind (interface gone)")
struct st_tap_summary {
	ST_TAP_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_tap_stat);
/* The kernel's counters summed over CPUs and directions; zeros for a NULL tap. */
void st_tap__summary(const struct st_tap *tap, struct st_tap_summary *out);
/* Detaches everything and frees; safe on NULL. */
void st_tap__destroy(struct st_tap *tap);

#endif /* ST_TAP_H */
