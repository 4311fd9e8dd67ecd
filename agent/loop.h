/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's one event loop: epoll over registered fds, a signalfd for
 * SIGINT/SIGTERM and a timerfd tick. No globals: everything hangs off st_loop.
 */
#ifndef ST_LOOP_H
#define ST_LOOP_H

#include <stdint.h>

struct st_loop;

/* CLOCK_MONOTONIC in nanoseconds: the agent's clock for timeouts and pacing. */
uint64_t st_mono_ns(void);

/* Return < 0 to stop the loop with an error, 0 to go on. */
typedef int (*st_loop_fn)(void *ctx);

/* Blocks SIGINT/SIGTERM (delivered through the loop from now on). NULL on error. */
struct st_loop *st_loop__new(void);
int st_loop__add(struct st_loop *l, int fd, st_loop_fn fn, void *ctx);
/* Calls tick every tick_ms (also right before returning). */
int st_loop__set_tick(struct st_loop *l, unsigned tick_ms, st_loop_fn tick, void *ctx);
/*
 * Runs until a signal arrives, duration_s elapses (0 = forever), a callback
 * fails (returns < 0) or st_loop__stop() is called. Returns 0 or the
 * failing callback's value.
 */
int st_loop__run(struct st_loop *l, double duration_s);
void st_loop__stop(struct st_loop *l);
/* The signal that ended the run, or 0. */
int st_loop__signal(const struct st_loop *l);
void st_loop__free(struct st_loop *l);

#endif /* ST_LOOP_H */
