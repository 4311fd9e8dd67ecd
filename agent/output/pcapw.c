/* SPDX-License-Identifier: GPL-2.0-only */
#include "pcapw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "loop.h"
#include "output.h"

ST_STAT_TABLE_DEFINE(st_pcapw_stat, struct st_pcapw_stats, ST_PCAPW_STATS);

#define CHUNK_MAX (1u << 20)
#define SPARE_CHUNKS 4      /* buffers kept for reuse; more are handed back */
#define REC_HDR 16          /* a pcap record header */
#define PCAP_SNAPLEN 262144

/* An output file: the first one, or one a reopen started. */
struct wfile {
	struct st_output out; /* the path's file (not used for stdout) */
	int fd;
	bool is_stdout;
	bool nonblock_set;    /* we made stdout non-blocking: restored at close */
	int saved_flags;
	bool committed;
	bool finish;          /* rotation: renamed into place when complete (st_pcapw__rotate) */
	atomic_int err;       /* first write error (negative errno), set by the writer thread */
};

/* Records for one file, written whole and in order; buf NULL: the mark that closes file. */
struct chunk {
	struct st_list_head node;
	struct wfile *file;
	uint8_t *buf;
	size_t len;
	uint64_t records, payload;
	bool close_file;
};

struct st_pcapw {
	const char *path;      /* as given: reopened by name */
	mode_t mode;           /* --output-mode, or 0 (output.h) */
	/* the event loop's side */
	struct wfile *cur;     /* where new records go */
	struct chunk *fill;    /* records being added, or NULL */
	size_t chunk_size;
	unsigned max_chunks;
	bool streaming;        /* stdout, a FIFO, a device */
	uint64_t dropped, dropped_bytes, peak;
	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct st_list_head ready;  /* chunks to write, oldest first */
	struct st_list_head spare;  /* buffers to reuse */
	unsigned n_chunks;     /* buffers in existence (filling, ready, being written, spare) */
	unsigned n_spare;
	uint64_t queued;       /* bytes ready or being written */
	bool stop;
	/* the writer thread's (read by the other side after the join) */
	int wake;              /* eventfd: wakes the writer out of poll() */
	pthread_t thread;
	bool started;
	uint64_t written, written_bytes, lost, lost_bytes;
	/* rotation (--keep): the complete files, oldest first, under mu */
	unsigned keep;         /* 0: every file stays */
	char **done;
	size_t n_done, cap_done;
	uint64_t rotations, removed;
};

/*
 * Internet checksum (RFC 1071) in the host's byte order, 64 bits at a time:
 * the one's complement sum does not depend on byte order as long as every
 * piece starts at an even offset, so the folded result is stored as is. This
 * is the writer's only per-byte work besides one copy.
 */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	uint64_t w;
	uint16_t t = 0;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		sum += (w & 0xffffffffu) + (w >> 32);
	}
	for (; len >= 2; p += 2, len -= 2) {
		memcpy(&t, p, 2);
		sum += t;
	}
	if (len) {
		t = 0;
		memcpy(&t, p, 1); /* odd tail: padded with a zero byte */
		sum += t;
	}
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

size_t st_pcapw_frame_build(const struct st_segment *seg, uint8_t *buf, size_t cap)
{
	size_t l3 = seg->key.src.family == 6 ? 40 : 20;
	size_t l2 = seg->vlan ? 18 : 14;
	size_t len = l2 + l3 + 20 + seg->len;
	uint8_t *ip, *tcp;
	uint64_t sum;
	uint16_t c;

	if (len > cap || (seg->len && !seg->data))
		return 0;
	memset(buf, 0, l2 + l3 + 20);
	/* Locally administered MACs: 02:..:01 for the client, :02 for the service. */
	buf[0] = 0x02;
	buf[5] = seg->dir == ST_DIR_IN ? 2 : 1;
	buf[6] = 0x02;
	buf[11] = seg->dir == ST_DIR_IN ? 1 : 2;
	if (seg->vlan) {
		put16(buf + 12, 0x8100);
		put16(buf + 14, seg->vlan & 0x0fff);
	}
	put16(buf + l2 - 2, seg->key.src.family == 6 ? 0x86dd : 0x0800);
	ip = buf + l2;
	tcp = ip + l3;
	if (seg->key.src.family == 6) {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(20 + seg->len));
		ip[6] = 6;  /* TCP */
		ip[7] = 64; /* hop limit */
		memcpy(ip + 8, seg->key.src.a, 16);
		memcpy(ip + 24, seg->key.dst.a, 16);
	} else {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + 20 + seg->len));
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, &seg->key.src.a[0], 4);
		memcpy(ip + 16, &seg->key.dst.a[0], 4);
		c = csum_fold(csum_add(0, ip, 20));
		memcpy(ip + 10, &c, 2);
	}
	put16(tcp, seg->key.sport);
	put16(tcp + 2, seg->key.dport);
	put32(tcp + 4, seg->seq);
	put32(tcp + 8, seg->ack);
	tcp[12] = 5 << 4;
	tcp[13] = seg->flags;
	put16(tcp + 14, seg->window);
	if (seg->len)
		memcpy(tcp + 20, seg->data, seg->len);
	/* Pseudo header: addresses, protocol, TCP length. */
	sum = csum_add(0, ip + (l3 == 40 ? 8 : 12), l3 == 40 ? 32 : 8);
	sum += htons(6) + htons((uint16_t)(20 + seg->len));
	sum = csum_add(sum, tcp, 20 + seg->len);
	c = csum_fold(sum);
	memcpy(tcp + 16, &c, 2);
	return len;
}

/* ---- files ---------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The output and its pcap header: stdout, or path through the output module. NULL after one
 * line on stderr, errno set. */
static struct wfile *file_start(const char *path, mode_t mode, bool *streaming)
{
	/* nanosecond pcap 2.4, host byte order, Ethernet (as libpcap writes it) */
	const struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t thiszone;
		uint32_t sigfigs, snaplen, linktype;
	} hdr = { 0xa1b23c4d, 2, 4, 0, 0, PCAP_SNAPLEN, 1 };
	struct wfile *f = calloc(1, sizeof(*f));
	struct stat st;
	int err;

	if (!f)
		return NULL;
	f->out.fd = -1;
	if (!strcmp(path, "-")) {
		f->is_stdout = true;
		f->fd = STDOUT_FILENO;
	} else {
		f->fd = st_output_open(&f->out, path, 0, mode);
		if (f->fd < 0) {
			err = f->fd;
			goto fail;
		}
	}
	_Static_assert(sizeof(hdr) == 24, "the pcap file header");
	err = write_all(f->fd, &hdr, sizeof(hdr));
	if (err)
		goto fail;
	*streaming = f->is_stdout || f->out.in_place;
	/* a pipe or a socket is written non-blocking: its reader may stall, and the writer must
	 * still be able to give up at the end (our own description, or stdout's, restored) */
	if (!fstat(f->fd, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		f->saved_flags = fcntl(f->fd, F_GETFL);
		if (f->saved_flags >= 0 && !(f->saved_flags & O_NONBLOCK) &&
		    !fcntl(f->fd, F_SETFL, f->saved_flags | O_NONBLOCK))
			f->nonblock_set = f->is_stdout;
	}
	return f;
fail:
	pr_err("%s: %s", path, st_output_strerror(err));
	if (!f->is_stdout)
		st_output_abort(&f->out);
	free(f);
	errno = -err;
	return NULL;
}

static void prune(struct st_pcapw *w, size_t max);

/* Rotation: path is complete; the oldest complete files go beyond `keep` (slots: keep,
 * less one while a next file is being written). Under mu. */
static void done_add(struct st_pcapw *w, const char *path, bool more)
{
	char *copy = strdup(path);

	if (copy && w->n_done == w->cap_done) {
		size_t cap = w->cap_done ? w->cap_done * 2 : 16;
		char **n = realloc(w->done, cap * sizeof(*n));

		if (n) {
			w->done = n;
			w->cap_done = cap;
		}
	}
	if (copy && w->n_done < w->cap_done)
		w->done[w->n_done++] = copy;
	else
		free(copy); /* out of memory: that file is not counted (kept) */
	if (w->keep)
		prune(w, more && w->keep > 1 ? w->keep - 1 : w->keep);
}

/* Removes the oldest complete files until at most max are left. Under mu. */
static void prune(struct st_pcapw *w, size_t max)
{
	while (w->n_done > max) {
		struct stat st;

		/* what became something else since (a link, another owner's file) is not ours:
		 * forgotten, not removed */
		if (!lstat(w->done[0], &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
			if (unlink(w->done[0]) && errno != ENOENT)
				pr_warn("-w: removing %s (--keep %u): %s", w->done[0], w->keep,
					strerror(errno));
			else
				w->removed++;
		}
		free(w->done[0]);
		memmove(w->done, w->done + 1, (w->n_done - 1) * sizeof(*w->done));
		w->n_done--;
	}
}

/* Closes a file; one never committed is removed, unless it is a rotation's complete file,
 * which takes its name now (more: another file follows it). 0 or -errno. */
static int file_end(struct st_pcapw *w, struct wfile *f, bool more)
{
	int err = 0;

	if (f->finish && !f->committed && !f->is_stdout) {
		err = st_output_commit(&f->out);
		if (err) {
			pr_err("%s: %s", f->out.path, st_output_strerror(err));
		} else {
			f->committed = true;
			pthread_mutex_lock(&w->mu);
			done_add(w, f->out.path, more);
			pthread_mutex_unlock(&w->mu);
		}
	}
	if (f->is_stdout) {
		if (f->nonblock_set)
			fcntl(f->fd, F_SETFL, f->saved_flags);
	} else if (f->committed) {
		err = st_output_close(&f->out);
	} else {
		st_output_abort(&f->out);
	}
	free(f);
	return err;
}

/* ---- the writer thread ---------------------------------------------------------------- */

/* Payload bytes of the record at r (its frame's TCP payload). */
static uint64_t rec_payload(const uint8_t *r)
{
	uint32_t caplen;
	const uint8_t *fr = r + REC_HDR;
	size_t l2 = 14, l3;

	memcpy(&caplen, r + 8, 4);
	if (fr[12] == 0x81 && fr[13] == 0x00)
		l2 = 18;
	l3 = fr[l2 - 2] == 0x86 && fr[l2 - 1] == 0xdd ? 40 : 20;
	return caplen - l2 - l3 - 20;
}

/* Waits until fd takes bytes again. While closing, gives up (-ETIMEDOUT) once nothing was
 * taken for ST_PCAPW_STALL_NS since last_ns. */
static int wait_writable(struct st_pcapw *w, int fd, uint64_t last_ns)
{
	for (;;) {
		struct pollfd p[2] = { { fd, POLLOUT, 0 }, { w->wake, POLLIN, 0 } };
		int timeout = -1;
		uint64_t now, v;
		bool stop;

		pthread_mutex_lock(&w->mu);
		stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		if (stop) {
			now = st_loop_mono_ns();
			if (now - last_ns >= ST_PCAPW_STALL_NS)
				return -ETIMEDOUT;
			timeout = (int)((ST_PCAPW_STALL_NS - (now - last_ns)) / 1000000) + 1;
		}
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents & POLLIN && read(w->wake, &v, sizeof(v)) < 0)
			v = 0; /* nothing to do: the counter was read by an earlier wakeup */
		if (p[0].revents)
			return 0; /* writable, or an error the next write reports */
	}
}

static void write_chunk(struct st_pcapw *w, struct chunk *c)
{
	struct wfile *f = c->file;
	uint64_t last = st_loop_mono_ns(), recs = 0, bytes = 0;
	int err = atomic_load(&f->err);
	size_t off = 0, r;

	while (!err && off < c->len) {
		ssize_t n = write(f->fd, c->buf + off, c->len - off);

		if (n > 0) {
			off += (size_t)n;
			last = st_loop_mono_ns();
		} else if (n < 0 && errno == EAGAIN) {
			err = wait_writable(w, f->fd, last);
		} else if (!(n < 0 && errno == EINTR)) {
			err = n < 0 ? -errno : -EIO;
		}
	}
	if (err) {
		int none = 0;

		atomic_compare_exchange_strong(&f->err, &none, err);
	}
	if (off == c->len) {
		recs = c->records;
		bytes = c->payload;
	} else {
		/* the records that made it whole (the next one may have gone out in part) */
		for (r = 0; r + REC_HDR <= off; ) {
			uint32_t caplen;

			memcpy(&caplen, c->buf + r + 8, 4);
			if (r + REC_HDR + caplen > off)
				break;
			recs++;
			bytes += rec_payload(c->buf + r);
			r += REC_HDR + caplen;
		}
	}
	/* relaxed atomics: st_pcapw__stats() reads them from the loop while this thread runs */
	__atomic_fetch_add(&w->written, recs, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->written_bytes, bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->lost, c->records - recs, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->lost_bytes, c->payload - bytes, __ATOMIC_RELAXED);
}

/* Under mu: the chunk's buffer goes back to the spares (beyond a few, to the system). */
static void recycle(struct st_pcapw *w, struct chunk *c)
{
	if (c->buf && w->n_spare < SPARE_CHUNKS) {
		st_list_add_tail(&c->node, &w->spare);
		w->n_spare++;
		return;
	}
	if (c->buf) {
		munmap(c->buf, w->chunk_size);
		w->n_chunks--;
	}
	free(c);
}

static void *writer_main(void *arg)
{
	struct st_pcapw *w = arg;
	struct chunk *c;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (st_list_empty(&w->ready) && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (st_list_empty(&w->ready))
			break;
		c = st_list_first_entry(&w->ready, struct chunk, node);
		st_list_del_init(&c->node);
		pthread_mutex_unlock(&w->mu);
		if (c->buf)
			write_chunk(w, c);
		if (c->close_file) {
			/* a file moved away by logrotate: everything queued for it is written */
			int err = atomic_load(&c->file->err), cerr = file_end(w, c->file, true);

			if (err || cerr)
				pr_warn("-w %s: the file moved away may be incomplete (%s)", w->path,
					strerror(err ? -err : -cerr));
		}
		pthread_mutex_lock(&w->mu);
		w->queued -= c->len;
		recycle(w, c);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the event loop's side ------------------------------------------------------------ */

/* Under mu. */
static void push_locked(struct st_pcapw *w, struct chunk *c)
{
	st_list_add_tail(&c->node, &w->ready);
	w->queued += c->len;
	if (w->queued > w->peak)
		w->peak = w->queued;
	pthread_cond_signal(&w->cv);
}

static void push(struct st_pcapw *w, struct chunk *c)
{
	pthread_mutex_lock(&w->mu);
	push_locked(w, c);
	pthread_mutex_unlock(&w->mu);
}

/* An empty chunk for the current file, or NULL when the queue's memory is all taken. */
static struct chunk *chunk_get(struct st_pcapw *w)
{
	struct chunk *c = NULL;
	void *buf;

	pthread_mutex_lock(&w->mu);
	if (!st_list_empty(&w->spare)) {
		c = st_list_first_entry(&w->spare, struct chunk, node);
		st_list_del_init(&c->node);
		w->n_spare--;
	} else if (w->n_chunks < w->max_chunks) {
		w->n_chunks++; /* reserved; allocated outside the lock */
	} else {
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	pthread_mutex_unlock(&w->mu);
	if (!c) {
		c = calloc(1, sizeof(*c));
		buf = mmap(NULL, w->chunk_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
		if (!c || buf == MAP_FAILED) {
			free(c);
			if (buf != MAP_FAILED)
				munmap(buf, w->chunk_size);
			pthread_mutex_lock(&w->mu);
			w->n_chunks--;
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		c->buf = buf;
		st_list_init(&c->node);
	}
	c->file = w->cur;
	c->len = 0;
	c->records = c->payload = 0;
	c->close_file = false;
	return c;
}

struct st_pcapw *st_pcapw__open(const char *path, uint64_t queue_bytes, mode_t mode)
{
	struct st_pcapw *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int err;

	if (!w)
		return NULL;
	if (!queue_bytes)
		queue_bytes = ST_PCAPW_QUEUE_DEFAULT;
	w->path = path;
	w->mode = mode;
	w->chunk_size = queue_bytes / 4 < CHUNK_MAX ? (size_t)queue_bytes / 4 : CHUNK_MAX;
	if (w->chunk_size < REC_HDR + ST_FRAME_MAX)
		w->chunk_size = REC_HDR + ST_FRAME_MAX;
	w->max_chunks = (unsigned)(queue_bytes / w->chunk_size);
	if (w->max_chunks < 2)
		w->max_chunks = 2;
	st_list_init(&w->ready);
	st_list_init(&w->spare);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake < 0) {
		err = errno;
		pr_err("%s: %s", path, strerror(err));
		goto fail;
	}
	w->cur = file_start(path, mode, &w->streaming);
	if (!w->cur) {
		err = errno;
		goto fail;
	}
	/* the signals are the event loop's (signalfd): none may land in the writer */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pr_err("%s: writer thread: %s", path, strerror(err));
		file_end(w, w->cur, false);
		goto fail;
	}
	w->started = true;
	return w;
fail:
	if (w->wake >= 0)
		close(w->wake);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	errno = err;
	return NULL;
}

int st_pcapw__commit(struct st_pcapw *w)
{
	int err;

	if (w->cur->is_stdout)
		return 0;
	err = st_output_commit(&w->cur->out);
	if (err)
		pr_err("%s: %s", w->path, st_output_strerror(err));
	else
		w->cur->committed = true;
	return err;
}

/* The file old is done: what is filled for it goes to the writer, then mark (taken), which
 * has the writer close it (and rename it into place when it was written under a temporary
 * name) once everything before it is written. */
static void queue_close(struct st_pcapw *w, struct chunk *mark, struct wfile *old)
{
	st_list_init(&mark->node);
	mark->file = old;
	mark->close_file = true;
	pthread_mutex_lock(&w->mu);
	if (w->fill && w->fill->len)
		push_locked(w, w->fill);
	else if (w->fill)
		recycle(w, w->fill);
	w->fill = NULL;
	push_locked(w, mark);
	pthread_mutex_unlock(&w->mu);
}

int st_pcapw__reopen(struct st_pcapw *w)
{
	struct wfile *old = w->cur, *next;
	struct stat cur, now;
	struct chunk *mark;
	bool streaming;
	int err;

	if (old->is_stdout || old->out.in_place || old->finish)
		return 0; /* rotating: every file gets a new name anyway */
	if (fstat(old->fd, &cur))
		return -errno;
	if (!stat(w->path, &now) && now.st_dev == cur.st_dev && now.st_ino == cur.st_ino)
		return 0; /* not moved: a new file would truncate this one's bytes away */
	mark = calloc(1, sizeof(*mark));
	if (!mark)
		return -ENOMEM;
	next = file_start(w->path, w->mode, &streaming);
	if (!next) {
		free(mark);
		return -errno;
	}
	w->cur = next;
	err = st_pcapw__commit(w);
	if (err) {
		w->cur = old;
		file_end(w, next, false);
		free(mark);
		return err;
	}
	/* what is queued for the old file is written first; then the writer closes it */
	queue_close(w, mark, old);
	return 1;
}

/* An earlier run's file that --keep may count and remove: a regular file (never a symlink),
 * owned by the user we run as, starting with a pcap or pcapng header; anything else under
 * the pattern is someone else's and stays. */
static bool older_ours(const char *path)
{
	uint32_t magic = 0;
	struct stat st;
	bool ok;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return false;
	ok = !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	     read(fd, &magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	     (magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 || magic == 0xa1b23c4d ||
	      magic == 0x4d3cb2a1 || magic == 0x0a0d0d0a /* pcapng's section header */);
	close(fd);
	return ok;
}

int st_pcapw__rotation(struct st_pcapw *w, unsigned keep, const char *older,
		       bool (*name_ok)(const char *path))
{
	glob_t g;

	if (w->cur->is_stdout || w->cur->out.in_place)
		return -EINVAL;
	w->keep = keep;
	w->cur->finish = true;
	/* files of earlier runs count against --keep too (their names sort by time), but only
	 * those this job could have written */
	if (older && !glob(older, 0, NULL, &g)) {
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (strcmp(g.gl_pathv[i], w->cur->out.path) &&
			    (!name_ok || name_ok(g.gl_pathv[i])) && older_ours(g.gl_pathv[i]))
				done_add(w, g.gl_pathv[i], true);
		pthread_mutex_unlock(&w->mu);
		globfree(&g);
	}
	return 0;
}

int st_pcapw__rotate(struct st_pcapw *w, const char *next_path)
{
	struct wfile *old = w->cur, *next;
	struct chunk *mark;
	bool streaming;

	mark = calloc(1, sizeof(*mark));
	if (!mark)
		return -ENOMEM;
	/* the file being completed and the next one both count against keep until the first
	 * takes its name: room for both before the next one exists */
	if (w->keep >= 2) {
		pthread_mutex_lock(&w->mu);
		prune(w, w->keep - 2);
		pthread_mutex_unlock(&w->mu);
	}
	next = file_start(next_path, w->mode, &streaming);
	if (!next) {
		free(mark);
		return -errno;
	}
	next->finish = true;
	w->cur = next;
	w->rotations++;
	/* what is queued for the old file is written first; then the writer renames it into
	 * place (complete) and closes it */
	queue_close(w, mark, old);
	return 0;
}

int st_pcapw__write(struct st_pcapw *w, const struct st_segment *seg)
{
	size_t need = REC_HDR + ST_FRAME_HDR_MAX + seg->len, n;
	uint32_t rh[4];
	uint8_t *rec;

	if (seg->kind != ST_SEG_DATA)
		return 0;
	if (seg->len > ST_CHUNK_MAX)
		return -EINVAL;
	if (!w->fill || w->fill->len + need > w->chunk_size) {
		if (w->fill)
			push(w, w->fill);
		w->fill = chunk_get(w);
		if (!w->fill) {
			/* the output is behind by the whole queue: this packet is not written */
			w->dropped++;
			w->dropped_bytes += seg->len;
			return 0;
		}
	}
	rec = w->fill->buf + w->fill->len;
	n = st_pcapw_frame_build(seg, rec + REC_HDR, w->chunk_size - w->fill->len - REC_HDR);
	if (!n)
		return -EINVAL;
	rh[0] = (uint32_t)(seg->ts_ns / 1000000000ull);
	rh[1] = (uint32_t)(seg->ts_ns % 1000000000ull);
	rh[2] = rh[3] = (uint32_t)n;
	memcpy(rec, rh, sizeof(rh));
	w->fill->len += REC_HDR + n;
	w->fill->records++;
	w->fill->payload += seg->len;
	return 0;
}

int st_pcapw__flush(struct st_pcapw *w)
{
	if (w->fill && w->fill->len) {
		/* only to an idle writer: a busy one takes the chunk when it is full, in fewer and
		 * larger writes */
		pthread_mutex_lock(&w->mu);
		if (st_list_empty(&w->ready)) {
			push_locked(w, w->fill);
			w->fill = NULL;
		}
		pthread_mutex_unlock(&w->mu);
	}
	return atomic_load(&w->cur->err);
}

int st_pcapw__streaming(const struct st_pcapw *w)
{
	return w->streaming;
}

void st_pcapw__stats(const struct st_pcapw *w, struct st_pcapw_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!w)
		return;
	out->packets = __atomic_load_n(&w->written, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&w->written_bytes, __ATOMIC_RELAXED);
	out->dropped_writes = w->dropped + __atomic_load_n(&w->lost, __ATOMIC_RELAXED);
	out->dropped_write_bytes = w->dropped_bytes + __atomic_load_n(&w->lost_bytes, __ATOMIC_RELAXED);
	out->write_queue_peak = w->peak;
	out->rotations = w->rotations;
	pthread_mutex_lock((pthread_mutex_t *)&w->mu);
	out->files_removed = w->removed;
	pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
}

uint64_t st_pcapw__queued(const struct st_pcapw *w, uint64_t *bound)
{
	uint64_t q;

	if (bound)
		*bound = w ? (uint64_t)w->max_chunks * w->chunk_size : 0;
	if (!w)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&w->mu);
	q = w->queued;
	pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
	return q;
}

int st_pcapw__close(struct st_pcapw *w, struct st_pcapw_stats *out)
{
	struct chunk *c, *tmp;
	uint64_t one = 1;
	int err, cerr;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	if (w->fill && w->fill->len)
		push_locked(w, w->fill);
	else if (w->fill)
		recycle(w, w->fill);
	w->fill = NULL;
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (write(w->wake, &one, sizeof(one)) < 0)
		one = 0; /* the counter is not full: cannot fail */
	pthread_join(w->thread, NULL);
	err = atomic_load(&w->cur->err);
	if (err == -ETIMEDOUT) {
		pr_warn("-w %s: the reader took nothing for %llu s; %llu packets were not written",
			w->path, (unsigned long long)(ST_PCAPW_STALL_NS / 1000000000ull),
			(unsigned long long)w->lost);
		err = 0;
	}
	cerr = file_end(w, w->cur, false);
	if (out)
		*out = (struct st_pcapw_stats){
			.packets = w->written,
			.bytes = w->written_bytes,
			.dropped_writes = w->dropped + w->lost,
			.dropped_write_bytes = w->dropped_bytes + w->lost_bytes,
			.write_queue_peak = w->peak,
			.rotations = w->rotations,
			.files_removed = w->removed,
		};
	st_list_for_each_entry_safe(c, tmp, &w->spare, node) {
		munmap(c->buf, w->chunk_size);
		free(c);
	}
	for (size_t i = 0; i < w->n_done; i++)
		free(w->done[i]);
	free(w->done);
	close(w->wake);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return err ? err : cerr;
}

