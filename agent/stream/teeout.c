/* SPDX-License-Identifier: GPL-2.0-only */
/* The tee's output: a frame queue, its writer thread, the file/stdout/TCP link (teeout.h). */
#include "teeout.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "opts.h"
#include "output.h"
#include "stream.h"

/* A finished frame, waiting for the writer. */
struct oframe {
	struct oframe *next;
	uint64_t gen;         /* the link generation it was encoded for */
	size_t len;
	uint8_t data[];
};

/* Heap-allocated: a writer given up on at the end (a reader that stopped taking bytes) is
 * detached and frees it when it ends (abandoned); in the daemon the process goes on
 * meanwhile. */
struct st_teeout {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, closing, finished, abandoned;
	bool in_daemon;
	struct oframe *head, *tail;
	uint64_t queued, peak, written, discarded;
	int fd;
	int wfd;               /* under mu: fd while it is a connected link (shutdown() wakes a
				* writer blocked on it), else -1 */
	int err;               /* first write error (-errno) */
	struct st_output o;    /* -o FILE */
	bool is_file;
	struct st_tlslink *tls; /* --to without --insecure */
	/* --to: a lost link is reconnected by the writer, with backoff; the frames of the
	 * stream that was cut (older generations) are thrown away, and the caller starts a new
	 * stream when it sees reconnected. The strings are the output's own copies (an
	 * abandoned writer outlives the caller's options). */
	char *to;
	char *what;
	struct st_tlslink_opts tlso_own;
	const struct st_tlslink_opts *tlso; /* &tlso_own, or NULL: --insecure */
	/* a daemon job's first connect is the writer's (the shared loop never waits for it):
	 * connecting until it is done; connect_failed when it failed (down_why says why) */
	bool connecting, connect_failed;
	uint64_t gen;
	bool down, reconnected;
	uint64_t downs;
	char down_why[256];
};

/* ---- the link (--to) ---------------------------------------------------------------- */

/* A TCP connection to HOST:PORT ([v6]:PORT too), connect bounded by 5 s. -1 with a reason
 * in err. */
static int connect_to(const char *hostport, char *err, size_t errlen)
{
	char host[256], port[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = 5 };
	int fd = -1, rc;

	if (st_opts_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) || !*host) {
		snprintf(err, errlen, "not HOST:PORT");
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			tv.tv_sec = 0;
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			break;
		}
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "%s", strerror(errno));
	return fd;
}

static void link_down(struct st_teeout *q)
{
	st_tlslink__free(q->tls);
	q->tls = NULL;
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

/* --to: connects (and authenticates). 0, or -1 with a reason in err. */
static int link_up(struct st_teeout *q, char *err, size_t errlen)
{
	q->fd = connect_to(q->to, err, errlen);
	if (q->fd < 0)
		return -1;
	if (q->tlso) {
		q->tls = st_tlslink__client(q->fd, q->tlso, 10, err, errlen);
		if (!q->tls) {
			close(q->fd);
			q->fd = -1;
			return -1;
		}
	}
	/* The receiver says it took this tee (docs/TEE.md, "The link"): with TLS 1.3 the
	 * client's handshake ends before the server has checked the client's certificate. */
	{
		struct timeval tv = { .tv_sec = 10 };
		char k = 0;
		ssize_t n;

		setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = q->tls ? st_tlslink__read(q->tls, &k, 1) : read(q->fd, &k, 1);
		if (n < 0 && !q->tls)
			n = -errno; /* read()'s -1 is not a reason (st_tlslink__read gives -errno) */
		tv.tv_sec = 0;
		setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (n != 1 || k != ST_STREAM_LINK_OK) {
			snprintf(err, errlen, "the receiver did not accept this tee (%s)",
				 n == 0 || n == -EPROTO ? (q->tls ? "it refused its certificate, "
						 "or is not a shadowtap receive" :
						 "it closed the connection") :
				 n == -EAGAIN ? "it said nothing for 10 s" :
				 n < 0 ? strerror((int)-n) : "not a shadowtap receive");
			link_down(q);
			return -1;
		}
	}
	return 0;
}

/* Throws away the queued frames (called with the lock held). */
static void drop_queue(struct st_teeout *q)
{
	while (q->head) {
		struct oframe *f = q->head;

		q->head = f->next;
		q->queued -= f->len;
		q->discarded += f->len;
		free(f);
	}
	q->tail = NULL;
}

/* The writer, after a write failed on --to: reconnects with backoff (0.2 s doubling to 10 s)
 * until it succeeds or the run ends. Called and returns with the lock held. */
static void reconnect(struct st_teeout *q, int err)
{
	uint64_t backoff_ms = 200;
	char why[256];

	q->down = true;
	q->downs++;
	q->gen++; /* what is queued belongs to the stream that was cut */
	snprintf(q->down_why, sizeof(q->down_why), "%s",
		 err == -EPIPE || err == -ECONNRESET ? "the receiver went away" : strerror(-err));
	drop_queue(q);
	q->wfd = -1;
	pthread_mutex_unlock(&q->mu);
	link_down(q);
	pthread_mutex_lock(&q->mu);
	while (!q->closing) {
		struct timespec until;
		int rc;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(backoff_ms / 1000);
		until.tv_nsec += (long)(backoff_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!q->closing &&
		       pthread_cond_timedwait(&q->cv, &q->mu, &until) != ETIMEDOUT)
			drop_queue(q);
		drop_queue(q);
		if (q->closing)
			break;
		pthread_mutex_unlock(&q->mu);
		rc = link_up(q, why, sizeof(why));
		pthread_mutex_lock(&q->mu);
		drop_queue(q);
		if (!rc) {
			q->wfd = q->fd;
			q->down = false;
			q->reconnected = true;
			return;
		}
		snprintf(q->down_why, sizeof(q->down_why), "%s", why);
		backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
	}
}

/* ---- the writer thread -------------------------------------------------------------- */

/* The output's resources, and q itself (the writer is done). */
static void out_free(struct st_teeout *q)
{
	if (!q)
		return;
	drop_queue(q);
	/* q->fd is the link's, the file's (o.fd: closed there), stdout or a test's (never
	 * closed) */
	if (q->to)
		link_down(q);
	else if (q->is_file)
		st_output_abort(&q->o); /* not committed: nothing of it stays */
	q->fd = -1;
	free(q->to);
	free(q->what);
	free((char *)q->tlso_own.cert);
	free((char *)q->tlso_own.key);
	free((char *)q->tlso_own.ca);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static void *writer(void *arg)
{
	struct st_teeout *q = arg;
	bool own;

	pthread_mutex_lock(&q->mu);
	if (q->connecting) {
		/* a daemon job's first connect (connect, handshake, the receiver's word: up to
		 * 25 s): here, never in the shared loop; a failure fails the job, which the
		 * daemon starts again with its backoff */
		char why[256];
		int rc;

		pthread_mutex_unlock(&q->mu);
		rc = link_up(q, why, sizeof(why));
		pthread_mutex_lock(&q->mu);
		q->connecting = false;
		if (rc) {
			snprintf(q->down_why, sizeof(q->down_why), "%s", why);
			q->connect_failed = true;
			q->err = -ENOTCONN;
		} else {
			q->wfd = q->fd;
		}
	}
	for (;;) {
		struct oframe *f;
		size_t done = 0;
		int wrc = 0;

		while (!q->head && !q->closing)
			pthread_cond_wait(&q->cv, &q->mu);
		f = q->head;
		if (!f)
			break;
		q->head = f->next;
		if (!q->head)
			q->tail = NULL;
		if (f->gen != q->gen || q->err) {
			/* a frame of a stream that was cut, or nowhere to write it */
			q->queued -= f->len;
			q->discarded += f->len;
			free(f);
			continue;
		}
		pthread_mutex_unlock(&q->mu);
		if (q->tls) {
			wrc = st_tlslink__write(q->tls, f->data, f->len);
			done = wrc ? 0 : f->len;
		}
		while (!q->tls && done < f->len) {
			ssize_t n = write(q->fd, f->data + done, f->len - done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				wrc = n < 0 ? -errno : -EIO;
				break;
			}
			done += (size_t)n;
		}
		pthread_mutex_lock(&q->mu);
		q->queued -= f->len;
		q->written += done;
		q->discarded += f->len - done;
		free(f);
		if (wrc && q->to && !q->closing)
			reconnect(q, wrc);
		else if (wrc)
			q->err = wrc;
	}
	q->finished = true;
	own = q->abandoned;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (own)
		out_free(q);
	return NULL;
}

int st_teeout__push(struct st_teeout *q, uint64_t gen, const uint8_t *frame, size_t len)
{
	struct oframe *f;
	int err;

	pthread_mutex_lock(&q->mu);
	err = q->err;
	pthread_mutex_unlock(&q->mu);
	if (err)
		return err;
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->gen = gen;
	f->len = len;
	memcpy(f->data, frame, len);
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->queued += len;
	if (q->queued > q->peak)
		q->peak = q->queued;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* Called with the lock held. */
static void state(struct st_teeout *q, struct st_teeout_state *s)
{
	s->err = q->err;
	s->connecting = q->connecting;
	s->connect_failed = q->connect_failed;
	s->down = q->down;
	s->reconnected = q->reconnected;
	s->gen = q->gen;
	s->queued = q->queued;
	s->peak = q->peak;
	s->written = q->written;
	s->discarded = q->discarded;
	s->downs = q->downs;
	s->given_up = false;
	snprintf(s->why, sizeof(s->why), "%s", q->down_why);
}

uint64_t st_teeout__queued(struct st_teeout *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->mu);
	n = q->queued;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void st_teeout__state(struct st_teeout *q, struct st_teeout_state *s)
{
	pthread_mutex_lock(&q->mu);
	state(q, s);
	pthread_mutex_unlock(&q->mu);
}

void st_teeout__poll(struct st_teeout *q, struct st_teeout_state *s)
{
	pthread_mutex_lock(&q->mu);
	state(q, s);
	q->reconnected = false;
	pthread_mutex_unlock(&q->mu);
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *r = s ? strdup(s) : NULL;

	if (s && !r)
		*oom = true;
	return r;
}

struct st_teeout *st_teeout__open(const struct st_teeout_config *c, char *err, size_t errlen)
{
	struct st_teeout *q = calloc(1, sizeof(*q));
	bool oom = !q;
	int rc;

	if (q) {
		pthread_mutex_init(&q->mu, NULL);
		pthread_cond_init(&q->cv, NULL);
		q->fd = q->wfd = q->o.fd = -1;
		q->in_daemon = c->in_daemon;
		q->what = dup_or_null(c->what ? c->what : "tee", &oom);
		q->to = dup_or_null(c->to, &oom);
		if (c->tls) {
			q->tlso_own.cert = dup_or_null(c->tls->cert, &oom);
			q->tlso_own.key = dup_or_null(c->tls->key, &oom);
			q->tlso_own.ca = dup_or_null(c->tls->ca, &oom);
			q->tlso = &q->tlso_own;
		}
	}
	if (oom) {
		snprintf(err, errlen, "out of memory");
		out_free(q);
		return NULL;
	}
	if (c->to)
		return q;
	if (!c->path) {
		q->fd = c->fd;
		return q;
	}
	if (!strcmp(c->path, "-")) {
		q->fd = STDOUT_FILENO;
		return q;
	}
	rc = st_output_open(&q->o, c->path, c->in_daemon ? ST_OUT_NONBLOCK : 0, c->mode);
	if (rc < 0) {
		snprintf(err, errlen, "-o %s: %s", c->path, rc == -ENXIO && c->in_daemon ?
			 "a FIFO without a reader (a daemon job never waits for one)" :
			 st_output_strerror(rc));
		out_free(q);
		return NULL;
	}
	/* the writer thread writes blocking: it is alone to wait */
	if (c->in_daemon && q->o.in_place)
		fcntl(rc, F_SETFL, fcntl(rc, F_GETFL) & ~O_NONBLOCK);
	q->fd = rc;
	q->is_file = true;
	return q;
}

int st_teeout__start(struct st_teeout *q, char *err, size_t errlen)
{
	int rc;

	if (q->to && q->in_daemon) {
		q->connecting = true;
	} else if (q->to) {
		char why[512];

		if (link_up(q, why, sizeof(why))) {
			snprintf(err, errlen, "--to %s: %s", q->to, why);
			return -1;
		}
		q->wfd = q->fd;
	}
	{
		sigset_t all, old;

		/* the writer takes no signals: they are the event loop's */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&q->th, NULL, writer, q);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (rc) {
		snprintf(err, errlen, "writer thread: %s", strerror(rc));
		return -1;
	}
	q->started = true;
	return 0;
}

/* Waits for the writer to write everything (a file: always, but a daemon job's FIFO; a pipe
 * or socket: while the reader takes bytes, at most wait_ms without progress), or, discard,
 * for it to throw the queue away. A writer given up on is left to end alone (it frees the
 * output). */
int st_teeout__close(struct st_teeout *q, bool discard, int wait_ms,
		     struct st_teeout_state *last)
{
	bool waits_always;
	struct timespec until;
	int err = 0;

	if (!q)
		return 0;
	waits_always = q->is_file && !(q->in_daemon && q->o.in_place);
	if (!q->started)
		goto files;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->mu);
	q->closing = true;
	if (discard && !q->err)
		q->err = -ECANCELED; /* the writer drops what is queued */
	pthread_cond_broadcast(&q->cv);
	/* a daemon job whose first connect is not done: nothing of its stream can go, and
	 * nothing is waited for (the writer may be in a 25 s connect) */
	while (!q->finished && !q->connecting) {
		uint64_t before = q->written;

		if (pthread_cond_timedwait(&q->cv, &q->mu, &until) == ETIMEDOUT) {
			if (!discard && (waits_always || q->written != before)) {
				until.tv_sec += wait_ms / 1000 ? wait_ms / 1000 : 1;
				continue;
			}
			break;
		}
	}
	err = discard ? 0 : q->err;
	if (!q->finished) {
		if (!discard && q->connecting)
			pr_warn("%s: --to %s: not connected yet at the end: the stream was not "
				"sent", q->what, q->to);
		else if (!discard)
			pr_warn("%s: the reader stopped taking bytes: %" PRIu64 " bytes of the "
				"stream not sent", q->what, q->queued);
		err = q->connecting ? -ENOTCONN : -EPIPE;
		/* the writer ends alone: a link's blocked write is woken, the rest goes */
		q->abandoned = true;
		drop_queue(q);
		if (last) {
			state(q, last);
			last->given_up = true;
		}
		if (q->wfd >= 0)
			shutdown(q->wfd, SHUT_RDWR);
		pthread_mutex_unlock(&q->mu);
		pthread_detach(q->th);
		return err;
	}
	if (!discard && q->to && q->down) {
		pr_warn("%s: --to %s: the link was down at the end (%s): the stream's end was not "
			"sent", q->what, q->to, q->down_why);
		err = -ENOTCONN;
	}
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->th, NULL);
	q->started = false;
files:
	if (q->is_file && !discard) {
		if (!err)
			err = st_output_commit(&q->o);
		if (!err)
			err = st_output_close(&q->o);
		st_output_abort(&q->o);
	} else if (q->is_file) {
		st_output_abort(&q->o);
	} else if (q->to) {
		link_down(q);
	}
	if (last)
		state(q, last);
	out_free(q);
	return err;
}
