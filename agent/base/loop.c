/* SPDX-License-Identifier: GPL-2.0-only */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The daemon: per shared tap its ring and link watch, per shadow job its sockets, the HTTP
 * server and the control socket. */
#define ST_LOOP_MAX_FDS 64

struct st_loop_ent {
	int fd;
	st_loop_fn fn;
	void *ctx;
};

struct st_loop_sig {
	st_loop_sig_fn fn;
	void *ctx;
};

struct st_loop {
	int epfd;
	int sigfd;
	int timerfd;
	sigset_t old_mask;
	sigset_t mask;       /* the signals the loop took */
	sigset_t was_ignored; /* ... of which inherited as ignored: ignored again at free */
	struct st_loop_sig sigs[_NSIG];
	st_loop_fn tick;
	void *tick_ctx;
	st_loop_wake_fn wake;
	void *wake_ctx;
	bool stop;
	int signal;
	int sig_err;         /* a stop signal that makes the run fail (a resource limit) */
	size_t n;
	struct st_loop_ent ents[ST_LOOP_MAX_FDS];
};

uint64_t st_loop_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t st_loop_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* What an unregistered signal does (loop.h lists them). */
enum sig_default {
	SD_NONE = 0, /* not the loop's */
	SD_GO_ON,    /* SIGHUP: nothing to reopen */
	SD_STOP,     /* stop quietly */
	SD_STOP_SAY, /* stop, saying which signal */
	SD_STOP_ERR, /* stop with an error: a resource limit */
};

static enum sig_default sig_default(int sig)
{
	switch (sig) {
	case SIGHUP:
		return SD_GO_ON;
	case SIGINT:
	case SIGTERM:
		return SD_STOP;
	case SIGQUIT:
	case SIGUSR1:
	case SIGUSR2:
	case SIGALRM:
	case SIGVTALRM:
	case SIGPROF:
	case SIGPWR:
	case SIGIO:
#ifdef SIGSTKFLT
	case SIGSTKFLT:
#endif
		return SD_STOP_SAY;
	case SIGXCPU:
	case SIGXFSZ:
		return SD_STOP_ERR;
	default:
		return sig >= SIGRTMIN && sig <= SIGRTMAX ? SD_STOP_SAY : SD_NONE;
	}
}

static bool sig_ignored(int sig)
{
	struct sigaction sa;

	return !sigaction(sig, NULL, &sa) && sa.sa_handler == SIG_IGN;
}

struct st_loop *st_loop__new(void)
{
	struct st_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (!l)
		return NULL;
	l->epfd = l->sigfd = l->timerfd = -1;
	sigemptyset(&l->mask);
	sigemptyset(&l->was_ignored);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (!sig_default(sig))
			continue;
		if (sig_ignored(sig)) {
			/*
			 * Taken all the same: SIGHUP (nohup: a hangup must not end the run, and
			 * here it does not), SIGINT and SIGTERM (a script's background job starts
			 * with SIGINT ignored, and `kill -INT` must stop it as it stops tcpdump).
			 * Any other stop signal ignored by whoever started us stays ignored.
			 */
			if (sig != SIGHUP && sig != SIGINT && sig != SIGTERM)
				continue;
			sigaddset(&l->was_ignored, sig);
		}
		sigaddset(&l->mask, sig);
	}
	if (sigprocmask(SIG_BLOCK, &l->mask, &l->old_mask))
		goto fail;
	/* blocked first: one that comes meanwhile waits in the signalfd, it cannot kill us */
	for (int sig = 1; sig < _NSIG; sig++)
		if (sigismember(&l->was_ignored, sig))
			signal(sig, SIG_DFL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->sigfd = signalfd(-1, &l->mask, SFD_CLOEXEC | SFD_NONBLOCK);
	l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->epfd < 0 || l->sigfd < 0 || l->timerfd < 0)
		goto fail;
	/* Negative u64 tags the loop's own fds; entries use their index. */
	ev.data.u64 = (uint64_t)-1;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev))
		goto fail;
	ev.data.u64 = (uint64_t)-2;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev))
		goto fail;
	return l;
fail:
	err = errno;
	st_loop__free(l);
	errno = err;
	return NULL;
}

int st_loop__on_signal(struct st_loop *l, int sig, st_loop_sig_fn fn, void *ctx)
{
	if (sig <= 0 || sig >= _NSIG || !sig_default(sig))
		return -EINVAL;
	l->sigs[sig] = (struct st_loop_sig){ .fn = fn, .ctx = ctx };
	return 0;
}

/* One signal taken from the signalfd: the command's meaning for it, or its default. */
static int on_signal(struct st_loop *l, int sig)
{
	const struct st_loop_sig *s = sig > 0 && sig < _NSIG ? &l->sigs[sig] : NULL;
	const char *name = sigabbrev_np(sig);

	if (s && s->fn)
		return s->fn(s->ctx, sig);
	switch (sig_default(sig)) {
	case SD_GO_ON:
		pr_info("SIG%s: nothing to reopen", name ? name : "HUP");
		return 0;
	case SD_STOP_SAY:
		if (name)
			pr_warn("SIG%s: stopping", name);
		else
			pr_warn("signal %d: stopping", sig);
		break;
	case SD_STOP_ERR:
		pr_warn("SIG%s: %s limit reached: stopping", name ? name : "?",
			sig == SIGXCPU ? "CPU time (RLIMIT_CPU)" : "file size (RLIMIT_FSIZE)");
		/* returned after the last tick: what was captured is still drained and written */
		l->sig_err = sig == SIGXCPU ? -ECANCELED : -EFBIG;
		break;
	default:
		break;
	}
	l->signal = sig;
	l->stop = true;
	return 0;
}

int st_loop__add(struct st_loop *l, int fd, st_loop_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };

	size_t slot = 0;

	/* a slot st_loop__del() freed first */
	while (slot < l->n && l->ents[slot].fn)
		slot++;
	if (slot >= ST_LOOP_MAX_FDS)
		return -ENOSPC;
	ev.data.u64 = slot;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	l->ents[slot] = (struct st_loop_ent){ .fd = fd, .fn = fn, .ctx = ctx };
	if (slot == l->n)
		l->n++;
	return 0;
}

int st_loop__del(struct st_loop *l, int fd)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->ents[i].fn && l->ents[i].fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			l->ents[i] = (struct st_loop_ent){ .fd = -1 };
			return 0;
		}
	}
	return -ENOENT;
}

int st_loop__set_tick(struct st_loop *l, unsigned tick_ms, st_loop_fn tick, void *ctx)
{
	struct itimerspec its = { 0 };

	its.it_interval.tv_sec = tick_ms / 1000;
	its.it_interval.tv_nsec = (long)(tick_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(l->timerfd, 0, &its, NULL))
		return -errno;
	l->tick = tick;
	l->tick_ctx = ctx;
	return 0;
}

void st_loop__stop(struct st_loop *l)
{
	l->stop = true;
}

int st_loop__signal(const struct st_loop *l)
{
	return l->signal;
}

void st_loop__set_wake(struct st_loop *l, st_loop_wake_fn wake, void *ctx)
{
	l->wake = wake;
	l->wake_ctx = ctx;
}

int st_loop__run(struct st_loop *l, double duration_s)
{
	uint64_t deadline = duration_s > 0 ? st_loop_mono_ns() + (uint64_t)(duration_s * 1e9) : 0;
	int ret = 0;

	while (!l->stop) {
		struct epoll_event evs[ST_LOOP_MAX_FDS + 2];
		uint64_t until = deadline, left = 0;
		int timeout = -1, n;

		if (l->wake) {
			/* what is due now is done; the next wake is at the nanosecond asked */
			uint64_t w = l->wake(l->wake_ctx);

			if (l->stop)
				break;
			if (w && (!until || w < until))
				until = w;
		}
		if (until) {
			uint64_t now = st_loop_mono_ns();

			if (deadline && now >= deadline)
				break;
			timeout = until > now ? (int)((until - now + 999999) / 1000000) : 0;
			left = until > now ? until - now : 0;
		}
		if (l->wake && until) {
			struct timespec ts = { .tv_sec = (time_t)(left / 1000000000ull),
					       .tv_nsec = (long)(left % 1000000000ull) };

			n = epoll_pwait2(l->epfd, evs, ST_LOOP_MAX_FDS + 2, &ts, NULL);
		} else {
			n = epoll_wait(l->epfd, evs, ST_LOOP_MAX_FDS + 2, timeout);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == (uint64_t)-1) {
				struct signalfd_siginfo si;

				while (!l->stop && read(l->sigfd, &si, sizeof(si)) == sizeof(si)) {
					if ((ret = on_signal(l, (int)si.ssi_signo)) < 0)
						l->stop = true;
				}
			} else if (tag == (uint64_t)-2) {
				uint64_t expirations;

				if (read(l->timerfd, &expirations, sizeof(expirations)) < 0)
					continue;
				if (l->tick && (ret = l->tick(l->tick_ctx)) < 0)
					l->stop = true;
			} else if (tag < l->n && l->ents[tag].fn) {
				struct st_loop_ent *e = &l->ents[tag];

				if ((ret = e->fn(e->ctx)) < 0)
					l->stop = true;
			}
		}
	}
	/* A last tick so callers drain and flush what is left. */
	if (l->tick && ret >= 0) {
		int r = l->tick(l->tick_ctx);

		if (r < 0)
			ret = r;
	}
	if (ret >= 0 && l->sig_err)
		ret = l->sig_err;
	return ret < 0 ? ret : 0;
}

void st_loop__free(struct st_loop *l)
{
	if (!l)
		return;
	if (l->timerfd >= 0)
		close(l->timerfd);
	if (l->sigfd >= 0) {
		struct signalfd_siginfo si;

		/* pending ones came during the stop already under way: unblocked, they would
		 * kill the process while it finishes */
		while (read(l->sigfd, &si, sizeof(si)) == sizeof(si))
			;
		close(l->sigfd);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	for (int sig = 1; sig < _NSIG; sig++)
		if (sigismember(&l->was_ignored, sig))
			signal(sig, SIG_IGN);
	sigprocmask(SIG_SETMASK, &l->old_mask, NULL);
	free(l);
}
