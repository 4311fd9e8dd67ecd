/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap flows`: one file per connection direction, named
 * <src-ip>.<src-port>-<dst-ip>.<dst-port>[#N], holding that direction's bytes
 * in order, with every gap written as that many zero bytes (a sparse hole)
 * and reported on stderr. Input from a pcap/pcapng file (pcapin) or from the
 * live tap; the reassembly engine (reasm) does the rest.
 *
 * Files are created on a direction's first byte (or gap), so connections
 * without payload leave no file, as with tcpflow. Open descriptors are kept
 * in an LRU bounded below RLIMIT_NOFILE; a file closed early is reopened in
 * append mode when more bytes come.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flows.h"
#include "flowset.h"
#include "log.h"
#include "loop.h"
#include "opts.h"
#include "output.h"
#include "pcapin.h"
#include "reasm.h"
#include "tap.h"

#define NAME_MAX_LEN 128
#define OPEN_FILES_MAX 4096
#define LIVE_TICK_MS 100

struct fconn;

/* One direction's output file. */
struct fdir {
	struct fconn *fc;
	int fd;            /* -1 when not open */
	bool created;      /* the file exists (this run created it) */
	uint64_t size;     /* bytes (and gap bytes) written */
	struct fdir *prev, *next; /* LRU of open files, oldest first */
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

struct flows {
	const char *outdir;
	int dirfd;
	struct st_reasm *r;
	struct tuples tuples;
	struct fdir *lru_head, *lru_tail;
	size_t n_open, max_open;
	uint64_t files;
	int err;       /* first write/open error (negative errno): the run fails */
	bool verbose;
	/* filters for file input (live capture filters in the kernel) */
	struct st_target *t;
	uint64_t filtered;
	struct st_tap *tap;
	uint64_t detaches, blind_ms; /* live: the interface's absences */
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

static void addr_fmt(const struct st_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

static void file_name(const struct fconn *fc, int dir, char *buf, size_t len)
{
	const struct st_flow_key *k = &fc->c->key;
	const struct st_addr *s = dir == ST_DIR_IN ? &k->src : &k->dst;
	const struct st_addr *d = dir == ST_DIR_IN ? &k->dst : &k->src;
	uint16_t sp = dir == ST_DIR_IN ? k->sport : k->dport;
	uint16_t dp = dir == ST_DIR_IN ? k->dport : k->sport;
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int n;

	addr_fmt(s, sa, sizeof(sa));
	addr_fmt(d, da, sizeof(da));
	n = snprintf(buf, len, "%s.%u-%s.%u", sa, sp, da, dp);
	if (fc->nth > 1 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - n, "#%u", fc->nth);
}

static void lru_del(struct flows *fl, struct fdir *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		fl->lru_head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		fl->lru_tail = f->prev;
	f->prev = f->next = NULL;
}

static void lru_add(struct flows *fl, struct fdir *f)
{
	f->prev = fl->lru_tail;
	f->next = NULL;
	if (fl->lru_tail)
		fl->lru_tail->next = f;
	else
		fl->lru_head = f;
	fl->lru_tail = f;
}

static void fail(struct flows *fl, int err, const char *what, const char *name)
{
	if (!fl->err) {
		fprintf(stderr, "shadowtap: flows: %s %s/%s: %s\n", what, fl->outdir, name,
			strerror(-err));
		fl->err = err;
	}
}

static void file_close(struct flows *fl, struct fdir *f)
{
	if (f->fd < 0)
		return;
	lru_del(fl, f);
	close(f->fd);
	f->fd = -1;
	fl->n_open--;
}

/* The direction's file, open for appending; NULL after a failure (already reported). */
static struct fdir *file_get(struct flows *fl, struct fconn *fc, int dir)
{
	struct fdir *f = &fc->d[dir];
	char name[NAME_MAX_LEN];
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC;

	if (fl->err)
		return NULL;
	if (f->fd >= 0) {
		if (fl->lru_tail != f) {
			lru_del(fl, f);
			lru_add(fl, f);
		}
		return f;
	}
	if (!fc->nth) {
		fc->nth = tuples_next(&fl->tuples, &fc->c->key);
		if (!fc->nth) {
			fail(fl, -ENOMEM, "numbering", "");
			return NULL;
		}
	}
	file_name(fc, dir, name, sizeof(name));
	if (!f->created)
		flags |= O_CREAT | O_TRUNC; /* --force: a file of a former run is replaced */
	while (fl->n_open >= fl->max_open && fl->lru_head)
		file_close(fl, fl->lru_head);
	/* only ever a regular file: not a symlink or FIFO someone left under a flow's name */
	f->fd = st_output_openat(fl->dirfd, name, flags, 0644);
	if (f->fd < 0 && (errno == EMFILE || errno == ENFILE) && fl->lru_head) {
		/* fewer descriptors than the limit said (the caller holds some): shrink */
		fl->max_open = fl->n_open > 16 ? fl->n_open / 2 : 8;
		while (fl->n_open >= fl->max_open && fl->lru_head)
			file_close(fl, fl->lru_head);
		f->fd = st_output_openat(fl->dirfd, name, flags, 0644);
	}
	if (f->fd < 0) {
		fail(fl, -errno, "cannot open", name);
		return NULL;
	}
	if (!f->created) {
		f->created = true;
		fl->files++;
	}
	fl->n_open++;
	lru_add(fl, f);
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
	int d;

	if (!fc) {
		fail(ctx, -ENOMEM, "connection state for", "");
		return;
	}
	fc->c = c;
	for (d = 0; d < 2; d++) {
		fc->d[d].fc = fc;
		fc->d[d].fd = -1;
	}
	c->user = fc;
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		    uint32_t len, uint64_t ts)
{
	struct flows *fl = ctx;
	struct fdir *f;
	int err;

	if (!c->user || !(f = file_get(fl, c->user, dir)))
		return;
	err = write_all(f->fd, data, len);
	if (err) {
		char name[NAME_MAX_LEN];

		file_name(c->user, dir, name, sizeof(name));
		fail(fl, err, "cannot write", name);
		return;
	}
	f->size += len;
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct flows *fl = ctx;
	char name[NAME_MAX_LEN];
	struct fdir *f;

	if (!c->user || !(f = file_get(fl, c->user, dir)))
		return;
	file_name(c->user, dir, name, sizeof(name));
	fprintf(stderr, "shadowtap: gap: %s offset=%" PRIu64 " length=%" PRIu64 " (%s)\n", name,
		off, len, st_reasm_gap_str(why));
	/* a hole in the file reads as zeros, as tcpflow writes them, without writing them */
	if (ftruncate(f->fd, (off_t)(f->size + len))) {
		fail(fl, -errno, "cannot extend", name);
		return;
	}
	f->size += len;
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct flows *fl = ctx;
	struct fconn *fc = c->user;

	if (!fc)
		return;
	file_close(fl, &fc->d[0]);
	file_close(fl, &fc->d[1]);
	free(fc);
	c->user = NULL;
}

static const struct st_reasm_ops flows_ops = {
	.open = on_open,
	.data = on_data,
	.gap = on_gap,
	.close = on_close,
};

/* ---- the command -------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: shadowtap flows FILE -o DIR [--port P ...] [--host CIDR ...] [--force]\n"
		"                       [--max-mem BYTES]\n"
		"       shadowtap flows (--iface IFACE | --cgroup PATH) --port P ... -o DIR\n"
		"                       [--host CIDR ...] [--duration SEC] [--force] [--max-mem BYTES]\n"
		"\n"
		"Reassembles every TCP connection and writes each direction to its own file in DIR,\n"
		"named SRC-IP.SRC-PORT-DST-IP.DST-PORT, with #N appended for the N-th connection\n"
		"(N >= 2) on the same 4-tuple. Missing bytes are written as zeros and reported on\n"
		"stderr; a summary line ends the run.\n"
		"\n"
		"  FILE               pcap or pcapng file (- for stdin)\n"
		"  -o, --output DIR   output directory; created if missing, must be empty\n"
		"      --force        write into a non-empty DIR (files of the same name are replaced)\n"
		"  -p, --port P       only connections with this port (repeatable); with a file, also\n"
		"                     tells the server side of connections whose SYN is not seen\n"
		"      --host CIDR    only connections with an endpoint in CIDR (repeatable)\n"
		"      --max-mem SIZE memory cap for reassembly state (K/M/G suffixes; default 256M)\n"
		"  -i, --iface IFACE  live capture on a network interface\n"
		"      --cgroup PATH  live capture of a cgroup v2 (a service)\n"
		"      --duration SEC stop live capture after SEC seconds (default: until SIGINT)\n"
		"      --ring-mb MB   ring buffer size for live capture (default %u)\n"
		"      --attach MODE  interface hooks: auto (TCX, else clsact), tcx, clsact\n"
		"      --exit-on-detach  exit (1) when the interface goes away, instead of waiting\n"
		"                     for an interface of that name to capture it again\n"
		"  -v, --verbose      more messages\n"
		"  -h, --help         this help\n",
		ST_RING_MB_DEFAULT);
}

/* Opens (creating it if needed) the output folder; refuses a non-empty one without --force. */
static int open_outdir(const char *path, bool force)
{
	struct dirent *e;
	DIR *d;
	int fd;

	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "shadowtap: flows: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "shadowtap: flows: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (force)
		return fd;
	d = fdopendir(dup(fd));
	if (!d) {
		fprintf(stderr, "shadowtap: flows: cannot read %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			fprintf(stderr, "shadowtap: flows: %s is not empty (use --force to write into "
					"it anyway)\n", path);
			closedir(d);
			close(fd);
			return -1;
		}
	}
	closedir(d);
	return fd;
}

static size_t files_limit(void)
{
	struct rlimit rl;
	size_t n = 256;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		/* raise the soft limit as far as allowed: fewer reopens */
		if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < OPEN_FILES_MAX + 64) {
			rl.rlim_cur = rl.rlim_max < OPEN_FILES_MAX + 64 ? rl.rlim_max :
									  OPEN_FILES_MAX + 64;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY)
			n = rl.rlim_cur > 96 ? (size_t)rl.rlim_cur - 64 : 32;
		else
			n = OPEN_FILES_MAX;
	}
	return n > OPEN_FILES_MAX ? OPEN_FILES_MAX : n;
}

static int run_file(struct flows *fl, struct st_pcapin *p, const char *path)
{
	struct st_segment s;
	int rc;

	while ((rc = st_pcapin__next(p, &s)) > 0 && !fl->err) {
		if (!st_target_keeps(fl->t, &s.key)) {
			fl->filtered++;
			continue;
		}
		st_reasm__feed(fl->r, &s);
	}
	if (rc < 0) {
		if (st_pcapin__truncated(p))
			fprintf(stderr, "shadowtap: flows: %s is truncated; kept everything before the "
					"cut (%s)\n", path, st_pcapin__error(p));
		else
			fprintf(stderr, "shadowtap: flows: %s is damaged; kept everything before it "
					"(%s)\n", path, st_pcapin__error(p));
		rc = st_pcapin__truncated(p) ? 0 : -1;
	}
	if (fl->verbose) {
		struct st_pcapin_stats ps;

		st_pcapin__stats(p, &ps);
		fprintf(stderr, "shadowtap: pcap packets=%" PRIu64 " segments=%" PRIu64
				" not_tcp=%" PRIu64 " malformed=%" PRIu64 " fragments=%" PRIu64
				" snap_cut_bytes=%" PRIu64 " filtered=%" PRIu64 "\n",
			ps.packets, ps.segments, ps.not_tcp, ps.malformed, ps.fragments,
			ps.snap_bytes, fl->filtered);
	}
	return rc;
}

/* ---- live capture ------------------------------------------------------------------- */

static int live_seg(void *ctx, const struct st_segment *s)
{
	struct flows *fl = ctx;

	if (fl->t->n_hosts && !st_hosts_match(fl->t->hosts, fl->t->n_hosts, &s->key.src) &&
	    !st_hosts_match(fl->t->hosts, fl->t->n_hosts, &s->key.dst)) {
		fl->filtered++;
		return 0;
	}
	st_reasm__feed(fl->r, s);
	return fl->err ? -1 : 0;
}

static int live_ready(void *ctx)
{
	struct flows *fl = ctx;
	int n = st_tap__consume(fl->tap);

	return n < 0 ? n : fl->err;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int live_tick(void *ctx)
{
	struct flows *fl = ctx;

	st_reasm__tick(fl->r, realtime_ns());
	return fl->err;
}

static int run_live(struct flows *fl, double duration, bool verbose)
{
	struct st_loop *l = st_loop__new();
	struct st_tap_stats ts;
	int rc = -1, d;

	if (!l) {
		fprintf(stderr, "shadowtap: flows: event loop: %s\n", strerror(errno));
		return -1;
	}
	fl->tap = st_tap__open(fl->t, verbose, live_seg, fl);
	if (!fl->tap)
		goto out;
	if (st_loop__add(l, st_tap__fd(fl->tap), live_ready, fl) || st_tap__watch(fl->tap, l) ||
	    st_loop__set_tick(l, LIVE_TICK_MS, live_tick, fl)) {
		fprintf(stderr, "shadowtap: flows: event loop: %s\n", strerror(errno));
		goto out;
	}
	if (verbose)
		fprintf(stderr, "shadowtap: flows: capturing on %s %s\n",
			fl->t->iface ? "interface" : "cgroup", fl->t->iface ? fl->t->iface :
									  fl->t->cgroup);
	rc = st_loop__run(l, duration);
	if (st_tap__consume(fl->tap) < 0 && !rc)
		rc = -1;
	st_tap__stats(fl->tap, &ts);
	fl->detaches = ts.detaches;
	fl->blind_ms = ts.blind_ns / 1000000;
	for (d = 0; d < ST_DIR_MAX; d++) {
		if (ts.kern[d].lost_bytes || ts.kern[d].lost_unreported)
			fprintf(stderr, "shadowtap: flows: kernel %s: lost_bytes=%llu "
					"lost_unreported=%llu\n", d == ST_DIR_IN ? "in" : "out",
				(unsigned long long)ts.kern[d].lost_bytes,
				(unsigned long long)ts.kern[d].lost_unreported);
	}
out:
	st_tap__destroy(fl->tap);
	fl->tap = NULL;
	st_loop__free(l);
	return rc < 0 ? -1 : 0;
}

int cmd_flows(int argc, char **argv)
{
	enum { O_FORCE = ST_OPT_FIRST_FREE, O_DURATION };
	static const struct option lopts[] = {
		ST_TARGET_LONGOPTS,
		ST_REASM_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, O_FORCE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct st_target *t = calloc(1, sizeof(*t));
	struct st_reasm_config cfg = { 0 };
	struct flows fl = { .dirfd = -1 };
	struct st_reasm_stats st;
	const char *out = NULL, *file = NULL;
	bool force = false, verbose = false;
	struct st_pcapin *pin = NULL;
	struct st_pcapin_stats ps = { 0 };
	char perr[512], live[96] = "";
	double duration = 0;
	int c, r, rc = ST_EXIT_USAGE;

	if (!t) {
		fprintf(stderr, "shadowtap: flows: out of memory\n");
		return ST_EXIT_RUNTIME;
	}
	t->ring_mb = ST_RING_MB_DEFAULT;
	opterr = 0;
	optind = 0; /* reset getopt: cmd_flows may run more than once in a process (tests) */
	while ((c = getopt_long(argc, argv, ":o:i:p:vh", lopts, NULL)) != -1) {
		r = st_target_opt(t, c, optarg);
		if (r < 0)
			goto out;
		if (r)
			continue;
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case O_FORCE:
			force = true;
			break;
		case O_DURATION:
			if (st_parse_double("--duration", optarg, 0, 1e9, &duration))
				goto out;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			rc = ST_EXIT_OK;
			goto out;
		default:
			rc = st_getopt_error("flows", c, argv);
			goto out;
		}
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "shadowtap: flows: unexpected argument '%s'\n", argv[optind]);
		goto out;
	}
	if (!out) {
		fprintf(stderr, "shadowtap: flows: -o DIR is required (see shadowtap flows --help)\n");
		goto out;
	}
	if (file && (t->iface || t->cgroup)) {
		fprintf(stderr, "shadowtap: flows: give either FILE or --iface/--cgroup, not both\n");
		goto out;
	}
	if (!file && !t->iface && !t->cgroup) {
		fprintf(stderr, "shadowtap: flows: give a pcap FILE, or --iface/--cgroup for live "
				"capture (see shadowtap flows --help)\n");
		goto out;
	}
	if (!file && st_target_check(t, "flows"))
		goto out;
	if (file && duration > 0) {
		fprintf(stderr, "shadowtap: flows: --duration applies to live capture only\n");
		goto out;
	}

	rc = ST_EXIT_RUNTIME;
	if (file) {
		/* the input first: a wrong file must not leave an output folder behind */
		pin = st_pcapin__open(file, perr, sizeof(perr));
		if (!pin && errno == EPROTONOSUPPORT) {
			pr_err("flows: %s: %s", file, perr);
			goto out;
		}
		if (!pin) {
			fprintf(stderr, "shadowtap: flows: %s: not a readable pcap or pcapng file (%s)\n",
				file, perr);
			goto out;
		}
	}
	fl.outdir = out;
	fl.t = t;
	fl.verbose = verbose;
	fl.max_open = files_limit();
	fl.dirfd = open_outdir(out, force);
	if (fl.dirfd < 0)
		goto out;
	cfg.max_mem = t->max_mem; /* 0: reassembly's default, 256 MiB */
	cfg.ports = t->ports;
	cfg.n_ports = t->n_ports;
	/* flow-table hashing seeded per run: whoever made the traffic chose the 4-tuples */
	cfg.hash_seed = realtime_ns() ^ ((uint64_t)getpid() << 32);
	fl.r = st_reasm__new(&cfg, &flows_ops, &fl);
	if (!fl.r) {
		fprintf(stderr, "shadowtap: flows: %s\n", strerror(errno));
		goto out;
	}
	if (file)
		c = run_file(&fl, pin, file);
	else
		c = run_live(&fl, duration, verbose);
	st_reasm__flush(fl.r);
	st_reasm__stats(fl.r, &st);
	if (pin)
		st_pcapin__stats(pin, &ps);
	if (!file) /* live: how long the interface was away */
		snprintf(live, sizeof(live), " detaches=%" PRIu64 " blind_ms=%" PRIu64, fl.detaches,
			 fl.blind_ms);
	fprintf(stderr, "shadowtap: summary connections=%" PRIu64 " files=%" PRIu64
			" bytes=%" PRIu64 " gaps=%" PRIu64 " gap_bytes=%" PRIu64
			" overlaps=%" PRIu64 " overlap_bytes=%" PRIu64 " retrans_bytes=%" PRIu64
			" drops=%" PRIu64 " drop_bytes=%" PRIu64 " joined=%" PRIu64
			" timeouts=%" PRIu64 " evicted=%" PRIu64 " mem_peak=%" PRIu64
			" packets=%" PRIu64 " skipped=%" PRIu64 " filtered=%" PRIu64 "%s\n",
		st.conns, fl.files, st.bytes, st.gaps, st.gap_bytes, st.overlaps, st.overlap_bytes,
		st.retrans_bytes, st.drop_segs, st.drop_bytes, st.conns_joined, st.conns_timeout,
		st.conns_evicted, st.mem_peak, pin ? ps.packets : st.segments,
		ps.not_tcp + ps.malformed + ps.fragments, fl.filtered, live);
	if (c == 0 && !fl.err)
		rc = ST_EXIT_OK;
out:
	st_pcapin__close(pin);
	st_reasm__free(fl.r);
	while (fl.lru_head)
		file_close(&fl, fl.lru_head);
	if (fl.dirfd >= 0)
		close(fl.dirfd);
	free(fl.tuples.s);
	free(t);
	return rc;
}
