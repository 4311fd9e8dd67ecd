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
#include <unistd.h>

#include "connmap.h"
#include "list.h"
#include "log.h"
#include "opts.h"
#include "output.h"

#define NAME_MAX_LEN 128

ST_STAT_TABLE_DEFINE(st_flowsink_stat, struct st_flowsink_stats, ST_FLOWSINK_STATS);

struct fconn;

/* One direction's output file. */
struct fdir {
	struct fconn *fc;
	int dir;
	int fd;                     /* -1 when not open */
	bool created;               /* the file exists (this run created it) */
	uint64_t size;              /* bytes (and gap bytes) written */
	struct st_list_head open;   /* in the LRU of open files while fd >= 0 */
};

struct fconn {
	struct st_reasm_conn *c;
	uint32_t nth; /* 0 until the connection's first byte: #N counts connections with bytes */
	struct fdir d[2];
};

/* How many connections with bytes each 4-tuple (either direction) had so far. */
struct tslot {
	struct st_flow_key k; /* canonical order */
	uint32_t n;
	uint32_t used;
};

struct tuples {
	struct tslot *s;
	size_t cap, n; /* cap: power of two */
};

struct st_flowsink {
	struct st_flowsink_config cfg;
	struct tuples tuples;
	struct st_list_head open; /* open files, least recently used first */
	size_t n_open;
	int err;                  /* first error (negative errno): later events are ignored */
	struct st_flowsink_stats st;
};

/* ---- 4-tuple counters ------------------------------------------------------ */

static struct tslot *tuples_slot(struct tuples *t, const struct st_flow_key *k)
{
	size_t i = st_flow_key_hash(k) & (t->cap - 1);

	while (t->s[i].used && memcmp(&t->s[i].k, k, sizeof(*k)))
		i = (i + 1) & (t->cap - 1);
	return &t->s[i];
}

static int tuples_grow(struct tuples *t)
{
	struct tuples n = { .cap = t->cap ? t->cap * 2 : 4096 };
	size_t i;

	n.s = calloc(n.cap, sizeof(*n.s));
	if (!n.s)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->s[i].used)
			*tuples_slot(&n, &t->s[i].k) = t->s[i];
	n.n = t->n;
	free(t->s);
	*t = n;
	return 0;
}

/* Counts one more connection on k's 4-tuple; returns its number (1, 2, ...), 0 on ENOMEM. */
static uint32_t tuples_next(struct tuples *t, const struct st_flow_key *key)
{
	struct st_flow_key k;
	struct tslot *s;

	if (t->n * 2 >= t->cap && tuples_grow(t))
		return 0;
	st_flow_key_canon(key, &k);
	s = tuples_slot(t, &k);
	if (!s->used) {
		s->used = 1;
		s->k = k;
		t->n++;
	}
	return ++s->n;
}

/* ---- output files ------------------------------------------------------------- */

static void file_name(const struct fconn *fc, int dir, char *buf, size_t len)
{
	const struct st_flow_key *k = &fc->c->key;
	const struct st_addr *s = dir == ST_DIR_IN ? &k->src : &k->dst;
	const struct st_addr *d = dir == ST_DIR_IN ? &k->dst : &k->src;
	uint16_t sp = dir == ST_DIR_IN ? k->sport : k->dport;
	uint16_t dp = dir == ST_DIR_IN ? k->dport : k->sport;
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int n;

	st_addr_str(s, sa, sizeof(sa));
	st_addr_str(d, da, sizeof(da));
	n = snprintf(buf, len, "%s.%u-%s.%u", sa, sp, da, dp);
	if (fc->nth > 1 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - n, "#%u", fc->nth);
}

static void fail(struct st_flowsink *s, int err, const char *what, const char *name)
{
	if (!s->err) {
		pr_err("flows: %s %s/%s: %s", what, s->cfg.dirname, name, strerror(-err));
		s->err = err;
	}
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
static struct fdir *file_get(struct st_flowsink *s, struct fconn *fc, int dir)
{
	struct fdir *f = &fc->d[dir];
	char name[NAME_MAX_LEN];
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC;

	if (s->err)
		return NULL;
	if (f->fd >= 0) {
		st_list_move_tail(&f->open, &s->open);
		return f;
	}
	if (!fc->nth) {
		fc->nth = tuples_next(&s->tuples, &fc->c->key);
		if (!fc->nth) {
			fail(s, -ENOMEM, "numbering", "");
			return NULL;
		}
	}
	file_name(fc, dir, name, sizeof(name));
	if (!f->created)
		flags |= O_CREAT | O_TRUNC; /* --force: a file of a former run is replaced */
	while (s->n_open >= s->cfg.max_open && !st_list_empty(&s->open))
		close_oldest(s);
	/* only ever a regular file: not a symlink or FIFO someone left under a flow's name */
	f->fd = st_output_openat(s->cfg.dirfd, name, flags, 0644);
	if (f->fd < 0 && (errno == EMFILE || errno == ENFILE) && !st_list_empty(&s->open)) {
		/* fewer descriptors than the limit said (the caller holds some): shrink */
		s->cfg.max_open = s->n_open > 16 ? s->n_open / 2 : 8;
		while (s->n_open >= s->cfg.max_open && !st_list_empty(&s->open))
			close_oldest(s);
		f->fd = st_output_openat(s->cfg.dirfd, name, flags, 0644);
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

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
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
	}
	c->user = fc;
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		    uint32_t len, uint64_t ts)
{
	struct st_flowsink *s = ctx;
	struct fdir *f;
	int err;

	if (!c->user || !(f = file_get(s, c->user, dir)))
		return;
	err = write_all(f->fd, data, len);
	s->st.writes++;
	if (err) {
		char name[NAME_MAX_LEN];

		file_name(c->user, dir, name, sizeof(name));
		fail(s, err, "cannot write", name);
		return;
	}
	f->size += len;
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_flowsink *s = ctx;
	char name[NAME_MAX_LEN];
	struct fdir *f;

	if (!c->user || !(f = file_get(s, c->user, dir)))
		return;
	file_name(c->user, dir, name, sizeof(name));
	pr_warn("gap: %s offset=%" PRIu64 " length=%" PRIu64 " (%s)", name, off, len,
		st_reasm_gap_str(why));
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
	file_close(s, &fc->d[0]);
	file_close(s, &fc->d[1]);
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

	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (!s->cfg.max_open)
		s->cfg.max_open = ST_FLOWSINK_MAX_OPEN_DEFAULT;
	if (!s->cfg.dirname)
		s->cfg.dirname = ".";
	st_list_init(&s->open);
	return s;
}

int st_flowsink__flush(struct st_flowsink *s)
{
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
	*out = s->st;
}

void st_flowsink__free(struct st_flowsink *s)
{
	if (!s)
		return;
	while (!st_list_empty(&s->open))
		close_oldest(s);
	free(s->tuples.s);
	free(s);
}
