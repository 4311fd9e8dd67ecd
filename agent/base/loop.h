/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's one event loop: epoll over registered fds, a signalfd and a
 * timerfd tick. No globals: everything hangs off st_loop.
 *
 * Signals. st_loop__new() blocks every signal whose default action would end
 * the process, so that each one arrives through the loop and a run always
 * ends by its own path (the last tick drains the ring; the command flushes,
 * detaches and prints its summary) instead of dying with buffered packets:
 *  - SIGHUP: "reopen your output files" (logrotate). A command that writes
 *    files registers what that means (st_loop__on_signal); without one there
 *    is nothing to reopen and the run goes on. Also taken when inherited as
 *    ignored (nohup): it never ends the run.
 *  - SIGINT, SIGTERM: stop, silently (as always). Also taken when inherited as
 *    ignored: a non-interactive shell starts background jobs with SIGINT
 *    ignored, and a script's `kill -INT` must stop the command as it stops
 *    tcpdump.
 *  - SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPWR, SIGIO,
 *    SIGSTKFLT and the real-time signals: stop, with one line naming the
 *    signal (someone sent it on purpose or by mistake: say why the run ended).
 *  - SIGXCPU, SIGXFSZ (a resource limit was hit): stop with a line and an
 *    error (-ECANCELED, -EFBIG): the command exits 1 after its summary.
 * Any other stop signal inherited as ignored (a shell's background job ignores
 * SIGQUIT too) stays ignored. SIGPIPE is ignored by main() (writes
 * fail with EPIPE instead). Faults of the agent itself (SIGSEGV, SIGBUS,
 * SIGABRT ...) are not caught: the process dies and its BPF links with it.
 */
#ifndef ST_LOOP_H
#define ST_LOOP_H

#include <stdint.h>

struct st_loop;

/* CLOCK_MONOTONIC in nanoseconds: the agent's clock for timeouts and pacing. */
uint64_t st_loop_mono_ns(void);
/* CLOCK_REALTIME in nanoseconds: the clock of segments' ts_ns (segment.h). */
uint64_t st_loop_realtime_ns(void);

/* Return < 0 to stop the loop with an error, 0 to go on. */
typedef int (*st_loop_fn)(void *ctx);
/* A signal's meaning for a command: return < 0 to stop the loop with that error, 0 to go on. */
typedef int (*st_loop_sig_fn)(void *ctx, int sig);

/* Takes the signals above (delivered through the loop from now on). NULL on error. */
struct st_loop *st_loop__new(void);
/* sig (one of the signals above) now calls fn instead of its default action. */
int st_loop__on_signal(struct st_loop *l, int sig, st_loop_sig_fn fn, void *ctx);
int st_loop__add(struct st_loop *l, int fd, st_loop_fn fn, void *ctx);
/* Takes fd out of the loop (a job or a shared tap that ends while the loop runs). 0 or -ENOENT. */
int st_loop__del(struct st_loop *l, int fd);
/*
 * The ticks, defined here once. ST_TICK_MS: the live commands' and the daemon's tick, how
 * often the ring is read without a wakeup (the kernel wakes the agent only once
 * wakeup_bytes wait: docs/FACTS.md) and timers run. ST_TICK_LAZY_MS: a command whose tick
 * only flushes and counts (flows' buffered files, the tee's frames and rate), so its ring
 * fills a little longer between reads. ST_TICK_PACE_MS: a replay's pacing, each segment
 * within a millisecond of its time.
 */
#define ST_TICK_MS 20
#define ST_TICK_LAZY_MS 100
#define ST_TICK_PACE_MS 1

/* Calls tick every tick_ms (also right before returning). */
int st_loop__set_tick(struct st_loop *l, unsigned tick_ms, st_loop_fn tick, void *ctx);
/*
 * A schedule finer than any tick (the load test's requests, each due at its nanosecond):
 * wake is called before every wait, does what is due, and returns when the loop must wake
 * next (CLOCK_MONOTONIC ns; 0: no need). The wait then ends at that nanosecond
 * (epoll_pwait2), or at the first event. It may call st_loop__stop().
 */
typedef uint64_t (*st_loop_wake_fn)(void *ctx);
void st_loop__set_wake(struct st_loop *l, st_loop_wake_fn wake, void *ctx);
/*
 * Runs until a signal arrives, duration_s elapses (0 = forever), a callback
 * fails (returns < 0) or st_loop__stop() is called. Returns 0 or the
 * failing callback's value.
 */
int st_loop__run(struct st_loop *l, double duration_s);
void st_loop__stop(struct st_loop *l);
/* The signal that ended the run, or 0. */
int st_loop__signal(const struct st_loop *l);
/* Signals still pending are dropped (a stop is under way already); the signal mask and
 * dispositions are restored (those inherited as ignored are ignored again). */
void st_loop__free(struct st_loop *l);

#endif /* ST_LOOP_H */
