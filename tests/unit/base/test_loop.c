/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The event loop's signals (agent/base/loop.h): every signal whose default action ends the process
 * arrives through the loop; stop signals end the run (the last tick still runs), SIGHUP calls
 * the command's callback or goes on, a registered callback replaces a default, signals
 * inherited as ignored stay ignored (but SIGHUP, SIGINT and SIGTERM), and the old state is
 * back after free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"

struct counts {
	int ticks, hups, last_sig;
	int ret;
};

static int tick(void *ctx)
{
	((struct counts *)ctx)->ticks++;
	return 0;
}

static int on_sig(void *ctx, int sig)
{
	struct counts *c = ctx;

	c->hups++;
	c->last_sig = sig;
	return c->ret;
}

/* Runs a loop in which sig is raised at once; returns st_loop__run's value. */
static int run_with(int sig, struct counts *c, bool hup_cb, double secs, int *ended_by)
{
	struct st_loop *l = st_loop__new();
	int r;

	assert_non_null(l);
	assert_int_equal(st_loop__set_tick(l, 10, tick, c), 0);
	if (hup_cb)
		assert_int_equal(st_loop__on_signal(l, SIGHUP, on_sig, c), 0);
	raise(sig);
	r = st_loop__run(l, secs);
	*ended_by = st_loop__signal(l);
	st_loop__free(l);
	return r;
}

static void t_stop_signals(void **state)
{
	const int stop[] = { SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
			     SIGPROF, SIGPWR, SIGIO, SIGSTKFLT };
	struct counts c = { 0 };
	int by;

	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++) {
		memset(&c, 0, sizeof(c));
		/* without the loop the process would die here; with it the run ends at once */
		assert_int_equal(run_with(stop[i], &c, false, 5, &by), 0);
		assert_int_equal(by, stop[i]);
		assert_true(c.ticks >= 1); /* the last tick: the command drains and flushes */
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(run_with(SIGRTMIN + 3, &c, false, 5, &by), 0);
	assert_int_equal(by, SIGRTMIN + 3);
	/* resource limits: stop, with an error (the command exits 1 after its summary) */
	assert_int_equal(run_with(SIGXFSZ, &c, false, 5, &by), -EFBIG);
	assert_int_equal(by, SIGXFSZ);
	assert_int_equal(run_with(SIGXCPU, &c, false, 5, &by), -ECANCELED);
	(void)state;
}

static void t_hup(void **state)
{
	struct counts c = { 0 };
	int by;

	/* no callback: nothing to reopen, the run goes on until its duration */
	assert_int_equal(run_with(SIGHUP, &c, false, 0.2, &by), 0);
	assert_int_equal(by, 0);
	assert_true(c.ticks >= 5);
	/* the command's meaning for it */
	memset(&c, 0, sizeof(c));
	assert_int_equal(run_with(SIGHUP, &c, true, 0.2, &by), 0);
	assert_int_equal(c.hups, 1);
	assert_int_equal(c.last_sig, SIGHUP);
	assert_int_equal(by, 0);
	/* a callback that fails stops the run with its error */
	memset(&c, 0, sizeof(c));
	c.ret = -EIO;
	assert_int_equal(run_with(SIGHUP, &c, true, 5, &by), -EIO);
	/* SIGHUP inherited as ignored (nohup) is taken all the same, and ignored again after */
	signal(SIGHUP, SIG_IGN);
	memset(&c, 0, sizeof(c));
	assert_int_equal(run_with(SIGHUP, &c, true, 0.2, &by), 0);
	assert_int_equal(c.hups, 1);
	{
		struct sigaction sa;

		assert_int_equal(sigaction(SIGHUP, NULL, &sa), 0);
		assert_true(sa.sa_handler == SIG_IGN);
	}
	signal(SIGHUP, SIG_DFL);
	(void)state;
}

static void t_inherited_ignore_and_restore(void **state)
{
	struct st_loop *l;
	struct counts c = { 0 };
	sigset_t before, after;
	int by;

	sigemptyset(&before);
	sigemptyset(&after);

	/* a script's background job starts with SIGINT ignored: the loop takes it all the same
	 * (kill -INT stops the run, as it stops tcpdump), and it is ignored again after free;
	 * SIGTERM likewise */
	for (int sig = SIGINT; sig; sig = sig == SIGINT ? SIGTERM : 0) {
		struct sigaction sa;

		signal(sig, SIG_IGN);
		memset(&c, 0, sizeof(c));
		assert_int_equal(run_with(sig, &c, false, 5, &by), 0);
		assert_int_equal(by, sig);
		assert_int_equal(sigaction(sig, NULL, &sa), 0);
		assert_true(sa.sa_handler == SIG_IGN);
		signal(sig, SIG_DFL);
	}
	/* any other stop signal ignored by whoever started us stays ignored (raise: a no-op) */
	signal(SIGQUIT, SIG_IGN);
	memset(&c, 0, sizeof(c));
	assert_int_equal(run_with(SIGQUIT, &c, false, 0.1, &by), 0);
	assert_int_equal(by, 0);
	signal(SIGQUIT, SIG_DFL);
	/* the mask is what it was after free; a signal pending at free is dropped, not delivered */
	sigprocmask(SIG_SETMASK, NULL, &before);
	l = st_loop__new();
	assert_non_null(l);
	assert_int_equal(st_loop__on_signal(l, SIGKILL, on_sig, &c), -EINVAL);
	assert_int_equal(st_loop__on_signal(l, SIGSEGV, on_sig, &c), -EINVAL);
	raise(SIGTERM);
	st_loop__free(l);
	sigprocmask(SIG_SETMASK, NULL, &after);
	for (int sig = 1; sig < SIGRTMAX; sig++)
		assert_int_equal(sigismember(&before, sig), sigismember(&after, sig));
	(void)state;
}

/* The wake hook: called before every wait, the wait ends at the time it asks for (finer than
 * the tick, which here is a second: 200 wakes 0.5 ms apart cannot ride on it). */
struct wakes {
	uint64_t next;
	int n;
	struct st_loop *l;
};

static uint64_t on_wake(void *ctx)
{
	struct wakes *w = ctx;
	uint64_t now = st_loop_mono_ns();

	if (now < w->next)
		return w->next; /* woken early (an event): not yet */
	if (++w->n == 200) {
		st_loop__stop(w->l);
		return 0;
	}
	w->next += 500000;
	return w->next;
}

static void t_wake(void **state)
{
	struct counts c = { 0 };
	struct wakes w = { 0 };
	uint64_t t0;

	w.l = st_loop__new();
	assert_non_null(w.l);
	assert_int_equal(st_loop__set_tick(w.l, 1000, tick, &c), 0);
	st_loop__set_wake(w.l, on_wake, &w);
	t0 = w.next = st_loop_mono_ns();
	assert_int_equal(st_loop__run(w.l, 30), 0);
	assert_int_equal(w.n, 200);
	/* 100 ms of schedule; far less than the 200 ticks a second each it would take without */
	assert_true(st_loop_mono_ns() - t0 < 10ull * 1000000000);
	assert_true(c.ticks <= 11);
	st_loop__free(w.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_stop_signals),
		cmocka_unit_test(t_hup),
		cmocka_unit_test(t_inherited_ignore_and_restore),
		cmocka_unit_test(t_wake),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
