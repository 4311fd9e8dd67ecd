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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_stop_signals),
		cmocka_unit_test(t_hup),
		cmocka_unit_test(t_inherited_ignore_and_restore),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
