/* SPDX-License-Identifier: GPL-2.0-only */
/* The flows engine: reassembly events to one file per connection direction (flowsink.h). */
#include "flowsink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "connmap.h"
#include "list.h"
#include "log.h"
#include "opts.h"
#include "output.h"

#define NAME_MAX_LEN 128
/* A direction's first buffer; it doubles up to buf_size as bytes come. Most connections are
 * small: a full-size buffer for each, malloc'd and freed, made the heap grow and shrink
 * (brk, page faults) at every connection. */
#define BUF_MIN 4096u

ST_STAT_TABLE_DEFINE(st_flowsink_stat, struct st_flowsink_stats, ST_FLOWSINK_STATS);

struct fconn;

/* One direction's output file and its buffer. */
struct fdir {
	struct fconn *fc;
	int dir;
	int fd;                     /* -1 when not open */
	bool created;               /* the file exists (this run created it) */
	uint64_t size;              /* bytes (and gap bytes) in the file */
	struct st_list_head open;   /* in the LRU of open files while fd >= 0 */
	uint8_t *buf;               /* cap bytes, or NULL */
	uint32_t cap;               /* BUF_MIN, doubled as needed up to buf_size */
	uint32_t len;               /* bytes waiting in buf */
	uint64_t last_ts;           /* when bytes were last added */
	struct st_list_head buffered; /* in the list of held buffers while buf != NULL */
};

struct fconn {
	struct st_reasm_conn *c;
	uint32_t nth; /* 0 until the connection's first byte: #N counts connections with bytes */
	struct st_connmap_ent *tuple; /* its 4-tuple's count, pinned once numbered */
	struct fdir d[2];
};

struct st_flowsink {
	struct st_flowsink_config cfg;
	struct st_connmap *tuples; /* 4-tuple -> connections numbered on it (val) */
	struct st_list_head open; /* open files, least recently used first */
	size_t n_open;
	struct st_list_head buffered; /* held buffers, least recently added to first */
	uint64_t buf_mem;         /* bytes of buffers held */
	int err;                  /* first error (negative errno): later events are ignored */
	struct st_flowsink_stats st;
};

/* ---- output files ------------------------------------------------------------- */

static void name_of(const struct st_flow_key *k, int dir, uint32_t nth, char *buf, size_t len)
{
	const struct st_addr *s = dir == ST_DIR_IN ? &k->src : &k->dst;
	const struct st_addr *d = dir == ST_DIR_IN ? &k->dst : &k->src;
	uint16_t sp = dir == ST_DIR_IN ? k->sport : k->dport;
	uint16_t dp = dir == ST_DIR_IN ? k->dport : k->sport;
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int n;

	st_addr_str(s, sa, sizeof(sa));
	st_addr_str(d, da, sizeof(da));
	n = snprintf(buf, len, "%s.%u-%s.%u", sa, sp, da, dp);
	if (nth > 1 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - n, "#%u", nth);
}

static void file_name(const struct fconn *fc, int dir, char *buf, size_t len)
{
	name_of(&fc->c->key, dir, fc->nth, buf, len);
}

static void fail(struct st_flowsink *s, int err, const char *what, const char *name)
{
	if (!s->err) {
		pr_err("flows: %s %s/%s: %s", what, s->cfg.dirname, name, strerror(-err));
		s->err = err;
	}
}

/* A 4-tuple the map forgot comes back: how many connections it had, as the folder says
 * (every connection numbered on it before is closed, so its files are there). */
static uint32_t numbered_before(struct st_flowsink *s, const struct st_flow_key *k)
{
	char name[NAME_MAX_LEN];
	struct stat st;
	uint32_t n = 0;

	for (;;) {
		bool seen = false;

		for (int dir = 0; dir < 2 && !seen; dir++) {
			name_of(k, dir, n + 1, name, sizeof(name));
			seen = !fstatat(s->cfg.dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
		}
		if (!seen)
			return n;
		n++;
	}
}

/* The connection's #N, at its first byte or gap. 0 or -errno. */
static int number(struct st_flowsink *s, struct fconn *fc)
{
	struct st_connmap_ent *e;
	struct st_connmap_stats ms;
	int r = st_connmap__put(s->tuples, &fc->c->key, &e);

	if (r < 0)
		return r;
	st_connmap__stats(s->tuples, &ms);
	if (r == 1 && ms.evicted)
		e->val = numbered_before(s, &fc->c->key);
	fc->nth = (uint32_t)++e->val;
	fc->tuple = e;
	/* kept while the connection is open: its files may not exist yet */
	st_connmap__pin(s->tuples, e);
	return 0;
}

static void file_close(struct st_flowsink *s, struct fdir *f)
{
	if (f->fd < 0)
		return;
	st_list_del_init(&f->open);
	close(f->fd);
	f->fd = -1;
	s->n_open--;
}

static void close_oldest(struct st_flowsink *s)
{
	file_close(s, st_list_first_entry(&s->open, struct fdir, open));
}

/* The direction's file, open for appending; NULL after a failure (already reported). */
static struct fdir *file_get(struct st_flowsink *s, struct fdir *f)
{
	char name[NAME_MAX_LEN];
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC;

	if (s->err)
		return NULL;
	if (f->fd >= 0) {
		st_list_move_tail(&f->open, &s->open);
		return f;
	}
	file_name(f->fc, f->dir, name, sizeof(name));
	/* in a folder that was empty, a name is new (O_EXCL: nothing can be planted there);
	 * with --force, a file of a former run is replaced, never anything else */
	if (!f->created)
		flags |= O_CREAT | (s->cfg.replace ? O_TRUNC : O_EXCL);
	while (s->n_open >= s->cfg.max_open && !st_list_empty(&s->open))
		close_oldest(s);
	/* only ever a regular file: not a symlink or FIFO someone left under a flow's name */
	f->fd = st_output_openat(s->cfg.dirfd, name, flags, s->cfg.mode);
	if (f->fd < 0 && (errno == EMFILE || errno == ENFILE) && !st_list_empty(&s->open)) {
		/* fewer descriptors than the limit said (the caller holds some): shrink */
		s->cfg.max_open = s->n_open > 16 ? s->n_open / 2 : 8;
		while (s->n_open >= s->cfg.max_open && !st_list_empty(&s->open))
			close_oldest(s);
		f->fd = st_output_openat(s->cfg.dirfd, name, flags, s->cfg.mode);
	}
	if (f->fd < 0) {
		fail(s, -errno, "cannot open", name);
		return NULL;
	}
	if (!f->created) {
		f->created = true;
		s->st.files++;
	} else {
		s->st.reopens++;
	}
	s->n_open++;
	st_list_add_tail(&f->open, &s->open);
	return f;
}

/* Writes the iovecs whole (a regular file: short writes only on errors, but retried). */
static int writev_all(struct st_flowsink *s, int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);

		s->st.writes++;
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Writes what f holds, then data (len 0: nothing more); a failure is reported and kept. */
static void write_out(struct st_flowsink *s, struct fdir *f, const uint8_t *data, uint32_t len)
{
	struct iovec iov[2];
	int n = 0, err;

	if (f->len)
		iov[n++] = (struct iovec){ f->buf, f->len };
	if (len)
		iov[n++] = (struct iovec){ (void *)data, len };
	if (!n || !file_get(s, f))
		return;
	err = writev_all(s, f->fd, iov, n);
	if (err) {
		char name[NAME_MAX_LEN];

		file_name(f->fc, f->dir, name, sizeof(name));
		fail(s, err, "cannot write", name);
		return;
	}
	f->size += f->len + len;
	f->len = 0;
}

/* Writes what f holds and gives its buffer back. */
static void buf_release(struct st_flowsink *s, struct fdir *f)
{
	if (!f->buf)
		return;
	write_out(s, f, NULL, 0);
	st_list_del_init(&f->buffered);
	free(f->buf);
	f->buf = NULL;
	f->len = 0;
	s->buf_mem -= f->cap;
	f->cap = 0;
}

/* Room for len more bytes in f's buffer (f->len + len <= buf_size), within max_buffered: the
 * least recently added to are written and released first (f itself, maybe). False when none
 * can be had (f's bytes then go out unbuffered). */
static bool buf_room(struct st_flowsink *s, struct fdir *f, uint32_t len)
{
	uint32_t want;
	uint8_t *b;

	if (f->len + len <= f->cap)
		return true;
	for (;;) {
		want = f->cap ? f->cap : BUF_MIN;
		while (want < f->len + len)
			want *= 2;
		if (want > s->cfg.buf_size)
			want = s->cfg.buf_size;
		if (s->buf_mem + want - f->cap <= s->cfg.max_buffered || st_list_empty(&s->buffered))
			break;
		buf_release(s, st_list_first_entry(&s->buffered, struct fdir, buffered));
	}
	b = realloc(f->buf, want);
	if (!b)
		return false;
	if (!f->buf)
		st_list_add_tail(&f->buffered, &s->buffered);
	f->buf = b;
	s->buf_mem += want - f->cap;
	f->cap = want;
	if (s->buf_mem > s->st.buffered_peak)
		s->st.buffered_peak = s->buf_mem;
	return true;
}

/* ---- engine callbacks ------------------------------------------------------------- */

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct fconn *fc = calloc(1, sizeof(*fc));

	if (!fc) {
		fail(ctx, -ENOMEM, "connection state for", "");
		return;
	}
	fc->c = c;
	for (int d = 0; d < 2; d++) {
		fc->d[d].fc = fc;
		fc->d[d].dir = d;
		fc->d[d].fd = -1;
		st_list_init(&fc->d[d].open);
		st_list_init(&fc->d[d].buffered);
	}
	c->user = fc;
}

/* The direction of c that gets an event, numbered on its first; NULL when there is nothing
 * to do (an earlier failure, or this one: reported). */
static struct fdir *event_dir(struct st_flowsink *s, struct st_reasm_conn *c, int dir)
{
	struct fconn *fc = c->user;
	int err;

	if (!fc || s->err)
		return NULL;
	if (!fc->nth && (err = number(s, fc))) {
		fail(s, err, "numbering", "");
		return NULL;
	}
	return &fc->d[dir];
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		    uint32_t len, uint64_t ts)
{
	struct st_flowsink *s = ctx;
	struct fdir *f = event_dir(s, c, dir);

	if (!f)
		return;
	/* a large segment goes out at once with what is held, without a copy */
	if (len >= s->cfg.buf_size / 2) {
		write_out(s, f, data, len);
		return;
	}
	if (f->len + len > s->cfg.buf_size)
		write_out(s, f, NULL, 0);
	if (!buf_room(s, f, len)) {
		write_out(s, f, data, len);
		return;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	f->last_ts = ts;
	st_list_move_tail(&f->buffered, &s->buffered);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_flowsink *s = ctx;
	struct fdir *f = event_dir(s, c, dir);
	char name[NAME_MAX_LEN];

	if (!f)
		return;
	file_name(c->user, dir, name, sizeof(name));
	pr_warn("gap: %s offset=%" PRIu64 " length=%" PRIu64 " (%s)", name, off, len,
		s->cfg.gap_str ? s->cfg.gap_str(why) : st_reasm_gap_str(why));
	write_out(s, f, NULL, 0);
	if (!file_get(s, f))
		return;
	/* a hole in the file reads as zeros, as tcpflow writes them, without writing them */
	if (ftruncate(f->fd, (off_t)(f->size + len))) {
		fail(s, -errno, "cannot extend", name);
		return;
	}
	f->size += len;
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct st_flowsink *s = ctx;
	struct fconn *fc = c->user;

	if (!fc)
		return;
	for (int d = 0; d < 2; d++) {
		buf_release(s, &fc->d[d]);
		file_close(s, &fc->d[d]);
	}
	if (fc->tuple)
		st_connmap__unpin(s->tuples, fc->tuple);
	free(fc);
	c->user = NULL;
}

const struct st_reasm_ops st_flowsink_ops = {
	.open = on_open,
	.data = on_data,
	.gap = on_gap,
	.close = on_close,
};

/* ---- the engine ----------------------------------------------------------------------- */

struct st_flowsink *st_flowsink__new(const struct st_flowsink_config *cfg)
{
	struct st_flowsink *s = calloc(1, sizeof(*s));
	struct st_connmap_config mc = { .evict = true };

	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (!s->cfg.mode)
		s->cfg.mode = ST_OUTPUT_MODE_DEFAULT;
	if (!s->cfg.max_open)
		s->cfg.max_open = ST_FLOWSINK_MAX_OPEN_DEFAULT;
	if (!s->cfg.buf_size)
		s->cfg.buf_size = ST_FLOWSINK_BUF_DEFAULT;
	if (s->cfg.buf_size < 4096)
		s->cfg.buf_size = 4096;
	if (!s->cfg.max_buffered)
		s->cfg.max_buffered = ST_FLOWSINK_MAX_BUFFERED_DEFAULT;
	if (!s->cfg.idle_ns)
		s->cfg.idle_ns = ST_FLOWSINK_IDLE_DEFAULT_NS;
	if (!s->cfg.max_tuples)
		s->cfg.max_tuples = ST_FLOWSINK_MAX_TUPLES_DEFAULT;
	if (!s->cfg.dirname)
		s->cfg.dirname = ".";
	st_list_init(&s->open);
	st_list_init(&s->buffered);
	mc.max_entries = s->cfg.max_tuples;
	mc.seed = s->cfg.seed;
	s->tuples = st_connmap__new(&mc);
	if (!s->tuples) {
		free(s);
		return NULL;
	}
	return s;
}

void st_flowsink__tick(struct st_flowsink *s, uint64_t now_ns)
{
	struct fdir *f;

	/* oldest additions first: stop at the first one that has not waited long enough */
	while (!st_list_empty(&s->buffered)) {
		f = st_list_first_entry(&s->buffered, struct fdir, buffered);
		if (f->last_ts + s->cfg.idle_ns > now_ns)
			break;
		buf_release(s, f);
	}
}

int st_flowsink__flush(struct st_flowsink *s)
{
	while (!st_list_empty(&s->buffered))
		buf_release(s, st_list_first_entry(&s->buffered, struct fdir, buffered));
	while (!st_list_empty(&s->open))
		close_oldest(s);
	return s->err;
}

int st_flowsink__error(const struct st_flowsink *s)
{
	return s->err;
}

void st_flowsink__stats(const struct st_flowsink *s, struct st_flowsink_stats *out)
{
	struct st_connmap_stats ms;

	st_connmap__stats(s->tuples, &ms);
	*out = s->st;
	out->tuples_forgotten = ms.evicted;
}

void st_flowsink__free(struct st_flowsink *s)
{
	struct fdir *f;

	if (!s)
		return;
	while (!st_list_empty(&s->buffered)) {
		f = st_list_first_entry(&s->buffered, struct fdir, buffered);
		st_list_del_init(&f->buffered);
		free(f->buf);
		f->buf = NULL;
		f->cap = 0;
	}
	while (!st_list_empty(&s->open))
		close_oldest(s);
	st_connmap__free(s->tuples);
	free(s);
}
