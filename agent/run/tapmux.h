/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap sharing: the jobs of one process that capture the same interface or cgroup
 * share one loaded program set and one ring (one struct st_tap).
 *
 *  - The kernel's port and peer maps hold the union of the jobs' filters; each
 *    record is handed to the jobs whose own filters match, checked here in user
 *    space: its service port (ingress: destination, egress: source), its peer
 *    (--host: either address in a CIDR) and its connection sample (the kernel's
 *    hash, bpf/connhash.h, so a job keeps exactly what it would keep alone).
 *  - What is fixed at load is the widest of the jobs': sampling (one job wanting
 *    every connection means no kernel sampling), the copy policy per direction,
 *    the ring's size; the peer filter is on in the kernel only when every job has
 *    one. A job that needs a wider load than the running one makes the shared
 *    tap load again (its jobs see a gap, logged); narrower needs never do.
 *  - A job that changes its ports or peers (a reload) updates the maps in place.
 *
 * A single command is one job on its own tap: the same path, no extra check (a
 * lone job's filters are the kernel's).
 */
#ifndef ST_TAPMUX_H
#define ST_TAPMUX_H

#include <stdbool.h>

#include "loop.h"
#include "tap.h"

struct st_tapmux;
struct st_tapsub;

struct st_tapsub_spec {
	const struct st_target *t;  /* the job's target and filters; kept (outlives the sub) */
	struct st_tap_opts opts;    /* what it needs the kernel to select and copy */
	st_tap_cb seg;              /* its segments (and losses) */
	st_loop_fn batch;           /* after each ring drain, or NULL (shadow: send now) */
	void *ctx;
	bool verbose;
};

/* The loop every shared tap's ring joins. NULL on error (errno). */
struct st_tapmux *st_tapmux__new(struct st_loop *l);
/* Every sub must have left. */
void st_tapmux__free(struct st_tapmux *m);

/* Joins (opening, or loading again wider, the shared tap of spec->t's target).
 * NULL with errno after one line on stderr; nothing attached for it then. */
struct st_tapsub *st_tapmux__join(struct st_tapmux *m, const struct st_tapsub_spec *spec);
/* Drains the ring first (what was captured for it is delivered), then leaves; the last
 * job out detaches. Safe on NULL. */
void st_tapmux__leave(struct st_tapsub *s);
/* The job's filters changed (spec->t was edited, same target) and it needs opts now: the
 * kernel's union is updated in place. 0, or -EOPNOTSUPP when it needs a wider load (nothing
 * changed then: the caller restarts the job), or -errno. */
int st_tapsub__update(struct st_tapsub *s, const struct st_tap_opts *opts);
/* Drains every shared tap's ring (the tick: records come without wakeups). 0 or < 0
 * (--exit-on-detach: -ENODEV). */
int st_tapmux__consume(struct st_tapmux *m);
/* The shared tap's counters (the kernel's are the tap's, not one job's). */
void st_tapsub__summary(const struct st_tapsub *s, struct st_tap_summary *out);
/* Jobs on the same tap, this one included. */
unsigned st_tapsub__jobs(const struct st_tapsub *s);
/* Loads of the shared tap so far (1 = never loaded again). */
unsigned st_tapsub__loads(const struct st_tapsub *s);
/* The policy the shared tap was loaded with (tests). */
void st_tapsub__kernel_opts(const struct st_tapsub *s, struct st_tap_opts *out);
/* The shared tap copies connection k whole from now on (st_tap__copy_whole): every job on it
 * gets its bytes whole (jobs that ask for whole copies get them anyway). 0 or -errno. */
int st_tapsub__copy_whole(struct st_tapsub *s, const struct st_flow_key *k);
/* The shared tap copies the service's port whole from now on (st_tap__copy_port_whole): every
 * job on it gets that port's segments whole. 0 or -errno. */
int st_tapsub__copy_port_whole(struct st_tapsub *s, uint16_t port);
/* Segments this job was handed, and those its filters left out of the shared ring. */
void st_tapsub__counts(const struct st_tapsub *s, uint64_t *delivered, uint64_t *filtered);

/* The pure parts, for tests: does the job of target t and sample permyriad take seg? */
bool st_tapmux_takes(const struct st_target *t, uint32_t permyriad, const struct st_segment *seg);
/* The widest of a and b into out (sampling, copy per direction, head bytes). */
void st_tapmux_widen(struct st_tap_opts *out, const struct st_tap_opts *a,
		     const struct st_tap_opts *b);
/* a is at least as wide as b (a load with a serves a job that needs b). */
bool st_tapmux_covers(const struct st_tap_opts *a, const struct st_tap_opts *b);

#endif /* ST_TAPMUX_H */
