/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap flows`: every direction of every TCP connection, reassembled, into one file
 * each, from a pcap/pcapng file (pcapin) or from the live tap. The command: options, the
 * output folder, the input loop and the summary. The engine that turns reassembly events
 * into files is flowsink.[ch].
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "connmap.h"
#include "flowsink.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "pcapin.h"
#include "reasm.h"
#include "tap.h"

#define OPEN_FILES_MAX 4096

struct flows {
	struct st_job_head h; /* first (job.h): the target, -v -q --stats, --duration */
	/* options */
	const char *out;
	const char *file; /* pcap input, or NULL for live capture */
	bool force;
	mode_t out_mode; /* --output-mode */
	/* the run */
	int dirfd;
	struct st_reasm *r;
	struct st_flowsink *sink;
	struct st_pcapin *pin;
	struct st_tap_summary tap_sum; /* the tap's counters, kept after the detach */
	uint64_t filtered;             /* file input: left out by --port/--host */
	uint64_t kept;                 /* file input: segments the filters kept */
	struct st_ports_seen seen;     /* file input: where its connections went */
};
_Static_assert(offsetof(struct flows, h) == 0, "job.h: the head first");

/* The summary line (stats.h): reassembly's figures under flows' names; then the engine's. */
#define FLOWS_STATS(X, T)                                                                      \
	X(T, connections, COUNTER, "connections reassembled")                                 \
	X(T, files, COUNTER, "files written (one per connection direction with bytes)")      \
	X(T, bytes, COUNTER, "stream bytes written")                                          \
	X(T, gaps, COUNTER, "holes written as zeros")                                         \
	X(T, gap_bytes, COUNTER, "bytes of those holes")                                      \
	X(T, overlaps, COUNTER, "segments overlapping buffered bytes with other values")      \
	X(T, overlap_bytes, COUNTER, "the differing bytes (first copy kept)")                 \
	X(T, retrans_bytes, COUNTER, "bytes that arrived again (dropped)")                    \
	X(T, drops, COUNTER, "segments not used (after close, out of window, no memory)")     \
	X(T, drop_bytes, COUNTER, "payload bytes of those segments")                          \
	X(T, joined, COUNTER, "connections joined midway (no SYN seen)")                      \
	X(T, timeouts, COUNTER, "connections closed by the idle timeout")                     \
	X(T, evicted, COUNTER, "connections closed early by the memory cap")                  \
	X(T, mem_peak, GAUGE_BYTES, "most reassembly memory held")                            \
	X(T, packets, COUNTER, "packets (file) or segments (live) read")                      \
	X(T, skipped, COUNTER, "packets not TCP, malformed or fragments")                     \
	X(T, filtered, COUNTER, "segments the --port/--host filters left out (file input)")

struct flows_summary {
	FLOWS_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(st_flows_stat, struct flows_summary, FLOWS_STATS);

static const char usage_head[] =
	"Usage: shadowtap flows FILE -o DIR [--port P ...] [--host CIDR ...] [--force]\n"
	"                       [--max-mem SIZE]\n"
	"       shadowtap flows (--iface IFACE | --cgroup PATH) --port P ... -o DIR\n"
	"                       [--host CIDR ...] [--duration SEC] [--force] [--max-mem SIZE]\n"
	"\n"
	"Reassembles every TCP connection and writes each direction to its own file in DIR,\n"
	"named SRC-IP.SRC-PORT-DST-IP.DST-PORT, with #N appended for the N-th connection\n"
	"(N >= 2) on the same 4-tuple. Missing bytes are written as zeros and reported on\n"
	"stderr; a summary line ends the run.\n"
	"\n"
	"  FILE                  pcap or pcapng file (- for stdin); with a file, --port also\n"
	"                        tells the server side of connections whose SYN is not seen,\n"
	"                        and --port/--host keep connections with either end matching\n";

static const struct st_opt flows_opts[] = {
	ST_OPT_STRING("output", 'o', struct flows, out, "DIR",
		      "output directory; created if missing, must be empty"),
	ST_OPT_FLAG("force", 0, struct flows, force,
		    "write into a non-empty DIR (files of the same name are replaced)"),
	ST_OPT_SECONDS("duration", 0, struct flows, h.duration, 0, 1e9,
		      "stop live capture after SEC seconds (default: until SIGINT)"),
};

static size_t optsets(void *obj, struct st_optset *sets)
{
	struct flows *fl = obj;

	sets[0] = (struct st_optset)ST_OPTSET(flows_opts, fl);
	sets[1] = (struct st_optset){ st_target_opts, st_target_opts_n, &fl->h.target, NULL };
	sets[2] = (struct st_optset){ st_run_opts, st_run_opts_n, &fl->h.run, NULL };
	sets[3] = (struct st_optset){ st_output_opts, st_output_opts_n, &fl->out_mode, NULL };
	sets[4] = (struct st_optset){ st_tap_tuning_opts, st_tap_tuning_opts_n, &fl->h.target,
				      ST_OPT_TITLE_TAP };
	sets[5] = (struct st_optset){ st_reasm_opts, st_reasm_opts_n, &fl->h.target,
				      ST_OPT_TITLE_LIMITS };
	return 6;
}

/* 0, or ST_EXIT_USAGE after one line on stderr. */
static int check(void *obj, int argc, char **argv, int first)
{
	struct flows *fl = obj;

	if (first < argc)
		fl->file = argv[first++];
	if (first < argc) {
		pr_err("flows: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (!fl->out) {
		pr_err("flows: -o DIR is required (see shadowtap flows --help)");
		return ST_EXIT_USAGE;
	}
	if (fl->file && (fl->h.target.iface || fl->h.target.cgroup)) {
		pr_err("flows: give either FILE or --iface/--cgroup, not both");
		return ST_EXIT_USAGE;
	}
	if (!fl->file && !fl->h.target.iface && !fl->h.target.cgroup) {
		pr_err("flows: give a pcap FILE, or --iface/--cgroup for live capture (see "
		       "shadowtap flows --help)");
		return ST_EXIT_USAGE;
	}
	if (!fl->file && st_target_check(&fl->h.target, "flows"))
		return ST_EXIT_USAGE;
	if (fl->file && fl->h.duration > 0) {
		pr_err("flows: --duration applies to live capture only");
		return ST_EXIT_USAGE;
	}
	return 0;
}


/* How many files may be open at once: below RLIMIT_NOFILE (raised to its hard limit). */
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

/* ---- file input ----------------------------------------------------------------------- */

static int run_file(struct flows *fl)
{
	struct st_pcapin_stats ps;
	struct st_segment s;
	int rc;

	while ((rc = st_pcapin__next(fl->pin, &s)) > 0 && !st_flowsink__error(fl->sink)) {
		st_ports_seen_add(&fl->seen, &s);
		if (!st_target_keeps(&fl->h.target, &s.key)) {
			fl->filtered++;
			continue;
		}
		fl->kept++;
		st_reasm__feed(fl->r, &s);
	}
	if (rc < 0) {
		if (st_pcapin__truncated(fl->pin))
			pr_warn("flows: %s is truncated; kept everything before the cut (%s)",
				fl->file, st_pcapin__error(fl->pin));
		else
			pr_err("flows: %s is damaged; kept everything before it (%s)", fl->file,
			       st_pcapin__error(fl->pin));
		rc = st_pcapin__truncated(fl->pin) ? 0 : -1;
	}
	if (fl->h.target.n_ports && !fl->kept && rc >= 0) {
		char seen[512];

		/* not an error (the files are what the capture holds: none), but not what was
		 * asked for: say what the file holds instead */
		pr_warn("flows: %s has no connection on --port (its connections: %s): no file "
			"written", fl->file, st_ports_seen_str(&fl->seen, seen, sizeof(seen)));
	}
	st_pcapin__stats(fl->pin, &ps);
	pr_info("pcap packets=%" PRIu64 " segments=%" PRIu64 " not_tcp=%" PRIu64
		" malformed=%" PRIu64 " fragments=%" PRIu64 " snap_cut_bytes=%" PRIu64
		" filtered=%" PRIu64, ps.packets, ps.segments, ps.not_tcp, ps.malformed,
		ps.fragments, ps.snap_bytes, fl->filtered);
	return rc;
}

/* ---- live capture ------------------------------------------------------------------- */

static int live_seg(void *ctx, const struct st_segment *s)
{
	struct flows *fl = ctx;

	/* the kernel filters ports and peers; this is the user-space check of --host */
	if (!st_target_hosts_keep(&fl->h.target, &s->key)) {
		fl->filtered++;
		return 0;
	}
	st_reasm__feed(fl->r, s);
	return st_flowsink__error(fl->sink) ? -1 : 0;
}

static int live_batch(void *ctx)
{
	struct flows *fl = ctx;

	return st_flowsink__error(fl->sink);
}

static int live_tick(void *ctx, uint64_t mono)
{
	struct flows *fl = ctx;
	uint64_t now = st_loop_realtime_ns();

	st_reasm__tick(fl->r, now);
	st_flowsink__tick(fl->sink, now);
	return st_flowsink__error(fl->sink);
}

/* Flows' counters into l: reassembly's under flows' names, the engine's, and the tap's when
 * the input is live (ts). Both the summary and the daemon's stats lines are this. */
static void add_stats(struct flows *fl, struct st_statline *l, const struct st_tap_summary *ts)
{
	struct st_pcapin_stats ps = { 0 };
	struct st_flowsink_stats ks;
	struct st_reasm_stats st;
	struct flows_summary fs;

	st_reasm__stats(fl->r, &st);
	st_flowsink__stats(fl->sink, &ks);
	if (fl->pin)
		st_pcapin__stats(fl->pin, &ps);
	fs = (struct flows_summary){
		.connections = st.conns, .files = ks.files, .bytes = st.bytes,
		.gaps = st.gaps, .gap_bytes = st.gap_bytes, .overlaps = st.overlaps,
		.overlap_bytes = st.overlap_bytes, .retrans_bytes = st.retrans_bytes,
		.drops = st.drop_segs, .drop_bytes = st.drop_bytes, .joined = st.conns_joined,
		.timeouts = st.conns_timeout, .evicted = st.conns_evicted,
		.mem_peak = st.mem_peak, .packets = fl->pin ? ps.packets : st.segments,
		.skipped = ps.not_tcp + ps.malformed + ps.fragments, .filtered = fl->filtered,
	};
	st_statline_add_table(l, st_flows_stat_desc, st_flows_stat_n, &fs);
	st_statline_add_table(l, st_flowsink_stat_desc, st_flowsink_stat_n, &ks);
	if (ts)
		st_statline_add_table(l, st_tap_stat_desc, st_tap_stat_n, ts);
}

static void summary(struct flows *fl, const char *what)
{
	struct st_statline l;

	st_statline_init(&l);
	add_stats(fl, &l, fl->pin ? NULL : &fl->tap_sum);
	st_statline_print(&l, what);
}

static void init(void *obj)
{
	struct flows *fl = obj;

	fl->dirfd = -1;
	fl->h.target.ring_mb = ST_RING_MB_DEFAULT;
}

/* The output folder and the engine. 0, or -1 after one line. */
static int start(void *obj)
{
	struct flows *fl = obj;
	struct st_reasm_config cfg = { 0 };
	struct st_flowsink_config kcfg = { 0 };

	fl->dirfd = st_output_opendir("flows", fl->out, fl->force, fl->out_mode);
	if (fl->dirfd < 0)
		return -1;
	kcfg.dirfd = fl->dirfd;
	kcfg.dirname = fl->out;
	kcfg.replace = fl->force;
	kcfg.max_open = files_limit();
	kcfg.seed = st_connmap_random_seed();
	kcfg.mode = fl->out_mode;
	fl->sink = st_flowsink__new(&kcfg);
	cfg.max_mem = fl->h.target.max_mem; /* 0: reassembly's default, 256 MiB */
	cfg.ports = fl->h.target.ports;
	cfg.n_ports = fl->h.target.n_ports;
	/* flow-table hashing seeded per run: whoever made the traffic chose the 4-tuples */
	cfg.hash_seed = st_connmap_random_seed();
	fl->r = fl->sink ? st_reasm__new(&cfg, &st_flowsink_ops, fl->sink) : NULL;
	if (!fl->r) {
		pr_err("flows: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The input is over (file) or the tap is gone (live): the last bytes, the summary. */
static int finish(void *obj, int err, bool ran, const struct st_tap_summary *ts, const char *what)
{
	struct flows *fl = obj;

	if (ts)
		fl->tap_sum = *ts;
	st_reasm__flush(fl->r);
	if (st_flowsink__flush(fl->sink))
		err = -1;
	summary(fl, what);
	return err ? ST_EXIT_RUNTIME : ST_EXIT_OK;
}

static int offline(void *obj)
{
	struct flows *fl = obj;
	char perr[512];

	/* the input first: a wrong file must not leave an output folder behind */
	fl->pin = st_pcapin__open(fl->file, perr, sizeof(perr));
	if (!fl->pin && errno == EPROTONOSUPPORT) {
		pr_err("flows: %s: %s", fl->file, perr);
		return ST_EXIT_RUNTIME;
	}
	if (!fl->pin) {
		pr_err("flows: %s: not a readable pcap or pcapng file (%s)", fl->file, perr);
		return ST_EXIT_RUNTIME;
	}
	if (start(fl))
		return ST_EXIT_RUNTIME;
	if (!fl->h.run.quiet)
		st_log_out("flows running: reading %s -> one file per direction in %s/ (to the "
			   "file's end)", strcmp(fl->file, "-") ? fl->file : "stdin", fl->out);
	return finish(fl, run_file(fl), false, NULL, "summary");
}

static void stats(void *obj, struct st_statline *l, const struct st_tap_summary *ts)
{
	add_stats(obj, l, ts);
}

static void destroy(void *obj)
{
	struct flows *fl = obj;

	st_pcapin__close(fl->pin);
	st_reasm__free(fl->r);
	st_flowsink__free(fl->sink);
	if (fl->dirfd >= 0)
		close(fl->dirfd);
}

static struct st_target *target(void *obj)
{
	struct flows *fl = obj;

	return fl->file ? NULL : &fl->h.target;
}


static void describe(void *obj, struct st_job_desc *d)
{
	struct flows *fl = obj;

	snprintf(d->outputs, sizeof(d->outputs), "one file per direction in %s/", fl->out);
}

/* Segments in, stream bytes out, connections, what reassembly found missing. */
static void brief(void *obj, const struct st_tap_summary *ts, struct st_brief *b)
{
	struct flows *fl = obj;
	struct st_reasm_stats st;
	struct st_flowsink_stats ks;

	st_reasm__stats(fl->r, &st);
	st_flowsink__stats(fl->sink, &ks);
	st_brief_add(b, "segments", st.segments, ST_BRIEF_RATE);
	st_brief_add(b, "written", st.bytes, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "connections", st.conns, 0);
	st_brief_add(b, "files", ks.files, 0);
	st_brief_add(b, "gaps", st.gap_bytes, ST_BRIEF_BYTES);
	st_brief_add(b, "lost", ts ? ts->lost : 0, ST_BRIEF_BYTES);
	st_brief_add(b, "memory", st.mem, ST_BRIEF_BYTES);
}


const struct st_job_kind st_flows_kind = {
	.name = "flows",
	.usage_head = usage_head,
	.size = sizeof(struct flows),
	.tick_ms = ST_TICK_LAZY_MS,
	.init = init,
	.optsets = optsets,
	.check = check,
	.target = target,
	.run_opts = st_job_head_run_opts,
	.duration = st_job_head_duration,
	.describe = describe,
	.brief = brief,
	.start = start,
	.segment = live_seg,
	.batch = live_batch,
	.tick = live_tick,
	.finish = finish,
	.stats = stats,
	.offline = offline,
	.destroy = destroy,
};

int cmd_flows(int argc, char **argv)
{
	return st_job_command(&st_flows_kind, argc, argv);
}
